use std::net::TcpListener;

use lowbit_ws_host::{Host, Limits, Opcode, accept_options};

/// A blocking host: one thread per connection, each with its own store and instance.
pub fn serve(host: &Host, listener: TcpListener) -> wasmtime::Result<()> {
    let options = accept_options(Limits::default(), true); // permessage-deflate on offer
    for tcp in listener.incoming() {
        let (host, options, tcp) = (host.clone(), options.clone(), tcp?);
        std::thread::spawn(move || -> wasmtime::Result<()> {
            let mut session = host.session()?; // a Store + instance for this connection
            let (conn, _accepted) = session.accept(tcp, &options)??; // trap, then WebSocket error
            loop {
                let msg = session.read_message(conn)??; // or session.echo(conn)
                if msg.op == Opcode::Close {
                    return Ok(()); // the component answered the close
                }
                session.write_message(conn, msg.op, &msg.payload)??;
            }
        });
    }
    Ok(())
}
