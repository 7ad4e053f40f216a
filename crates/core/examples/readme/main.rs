//! The server and client of README.md, run together:
//! `cargo run -p lowbit-websockets --example readme`.
//!
//! README.md's two code blocks are `server.rs` and `client.rs` verbatim; a test in xtask
//! (`readme_code_is_the_example`) fails if they drift apart.

mod client;
mod server;

fn main() -> lowbit_websockets::Result<()> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    std::thread::spawn(move || server::serve(listener));
    client::hello(&addr)
}
