use std::net::TcpStream;

use lowbit_websockets::handshake::ClientOptions;
use lowbit_websockets::{ConnectOptions, OpCode};

/// Sends one text message and prints the reply.
pub fn hello(addr: &str) -> lowbit_websockets::Result<()> {
    let stream = TcpStream::connect(addr)?;
    let opts = ConnectOptions { request: ClientOptions::new(addr).path("/chat"), ..ConnectOptions::default() };
    let (mut conn, _connected) = lowbit_websockets::connect(stream, &opts)?;
    conn.write_message(OpCode::Text, b"hello")?;
    let mut buf = Vec::new();
    let (op, reply) = conn.read_message(&mut buf)?;
    println!("{op:?}: {}", String::from_utf8_lossy(reply));
    conn.close() // sends 1000, then waits for the server's close
}
