use std::net::TcpListener;

use lowbit_websockets::{AcceptOptions, OpCode};

/// Echoes every message on every connection, one thread per connection.
pub fn serve(listener: TcpListener) -> lowbit_websockets::Result<()> {
    for stream in listener.incoming() {
        let stream = stream?;
        std::thread::spawn(move || -> lowbit_websockets::Result<()> {
            // Reads the upgrade request; a bad one is answered with a 4xx and fails here.
            let (mut conn, _accepted) = lowbit_websockets::accept(stream, &AcceptOptions::default())?;
            let mut buf = Vec::new(); // reused: no allocation per message once warm
            loop {
                let (op, payload) = conn.read_message(&mut buf)?; // pings are answered inside
                if op == OpCode::Close {
                    return Ok(()); // the close was echoed: the handshake is complete
                }
                conn.write_message(op, payload)?;
            }
        });
    }
    Ok(())
}
