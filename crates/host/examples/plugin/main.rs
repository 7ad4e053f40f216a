//! README.md's plugin recipe, for a blocking and an async host, run against our client:
//! `cargo run -p lowbit-ws-host --example plugin` (after building the component).
//!
//! README.md's two host blocks are `sync_host.rs` and `async_host.rs` verbatim; a test in
//! xtask (`readme_code_is_the_example`) fails if they drift apart.

mod async_host;
mod sync_host;

use lowbit_websockets::handshake::ClientOptions;
use lowbit_websockets::{ConnectOptions, DeflateOptions, OpCode};
use lowbit_ws_host::Host;

fn main() -> wasmtime::Result<()> {
    let path = std::env::var("LOWBIT_WS_COMPONENT").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/wasm32-wasip2/release/lowbit_websockets_component.wasm")
            .to_owned()
    });
    let host = Host::from_file(&path)?; // compile once, share with every connection

    let blocking = std::net::TcpListener::bind("127.0.0.1:0")?;
    let blocking_addr = blocking.local_addr()?;
    let sync_host = host.clone();
    std::thread::spawn(move || sync_host::serve(&sync_host, blocking));

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let async_addr = listener.local_addr()?;
    std::thread::spawn(move || runtime.block_on(async_host::serve(host, listener)));

    for (name, addr) in [("blocking host", blocking_addr), ("async host", async_addr)] {
        let opts = ConnectOptions {
            request: ClientOptions::new(addr.to_string()),
            deflate: Some(DeflateOptions::default()),
            ..ConnectOptions::default()
        };
        let (mut conn, _) = lowbit_websockets::connect(std::net::TcpStream::connect(addr)?, &opts)?;
        conn.write_message(OpCode::Text, b"hello, plugin")?;
        let mut buf = Vec::new();
        let (op, echo) = conn.read_message(&mut buf)?;
        println!("{name}: {op:?} {}", String::from_utf8_lossy(echo));
        conn.close()?;
    }
    Ok(())
}
