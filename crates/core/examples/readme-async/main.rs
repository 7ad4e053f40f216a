//! The hyper and axum servers of README.md, each answering a client with permessage-deflate:
//! `cargo run -p lowbit-websockets --features hyper,axum --example readme-async`.
//!
//! README.md's async code blocks are `with_hyper.rs` and `with_axum.rs` verbatim; a test in xtask
//! (`readme_code_is_the_example`) fails if they drift apart.

mod with_axum;
mod with_hyper;

use lowbit_websockets::handshake::ClientOptions;
use lowbit_websockets::{ConnectOptions, DeflateOptions, OpCode, connect_async};
use tokio::net::{TcpListener, TcpStream};

/// Sends one text message to the echo server at `addr` and prints the reply.
async fn hello(addr: &str) -> lowbit_websockets::Result<()> {
    let opts = ConnectOptions {
        request: ClientOptions::new(addr).path("/ws"),
        deflate: Some(DeflateOptions::default()),
        ..ConnectOptions::default()
    };
    let (mut conn, connected) = connect_async(TcpStream::connect(addr).await?, &opts).await?;
    conn.write_message(OpCode::Text, b"hello").await?;
    let mut buf = Vec::new();
    let (op, reply) = conn.read_message(&mut buf).await?;
    println!("{addr}: {op:?}: {} (deflate: {:?})", String::from_utf8_lossy(reply), connected.extensions);
    conn.close().await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> lowbit_websockets::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    tokio::spawn(with_hyper::serve(listener));
    hello(&addr).await?;

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    tokio::spawn(async move { axum::serve(listener, with_axum::app()).await });
    hello(&addr).await
}
