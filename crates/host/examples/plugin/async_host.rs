use lowbit_ws_host::{Host, Limits, Opcode, accept_options};
use tokio::net::TcpListener;

/// An async host: one task per connection, many per thread; a guest waiting on its socket
/// suspends and lets the others run.
pub async fn serve(host: Host, listener: TcpListener) -> wasmtime::Result<()> {
    let options = accept_options(Limits::default(), true); // permessage-deflate on offer
    loop {
        let (tcp, _) = listener.accept().await?;
        let (host, options) = (host.clone(), options.clone());
        tokio::spawn(async move {
            let mut session = host.session_async().await?; // a Store + instance
            let (conn, _accepted) = session.accept(tcp, &options).await??;
            loop {
                let msg = session.read_message(conn).await??; // or session.echo(conn)
                if msg.op == Opcode::Close {
                    return Ok::<_, wasmtime::Error>(());
                }
                session.write_message(conn, msg.op, &msg.payload).await??;
            }
        });
    }
}
