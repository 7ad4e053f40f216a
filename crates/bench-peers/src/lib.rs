//! Echo servers over other WebSocket libraries, for `cargo xtask bench` to measure ours
//! against. They live in their own crate so that neither the core crate nor xtask compiles
//! hyper, fastwebsockets or tokio-tungstenite.
//!
//! Every server has the shape of our async echo server, so that the load test compares the
//! libraries rather than the servers: one current-thread tokio runtime, one task per
//! connection, TCP_NODELAY, every text and binary message echoed as it came (one write per
//! echo), no permessage-deflate, a 64 MiB message limit. Each takes `--addr HOST:PORT` and
//! prints `listening on ADDR` once it listens, which is how xtask learns the port.
//!
//! ```sh
//! cargo run --release -p bench-peers --bin fastwebsockets-echo-server -- --addr 127.0.0.1:0
//! ```

use std::future::Future;
use std::io::Write as _;
use std::process::ExitCode;

use tokio::net::{TcpListener, TcpStream};

/// The largest message the peers accept.
pub const MAX_MESSAGE: usize = 64 << 20;

/// Parses `--addr`, listens, says so on stdout, and serves every connection with `handle` on
/// one current-thread runtime until killed. A connection that fails writes one line to stderr
/// (the load test counts them) and costs nothing else.
pub fn serve<F, Fut>(name: &str, handle: F) -> ExitCode
where
    F: Fn(TcpStream) -> Fut,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let addr = match parse_addr(name) {
        Ok(addr) => addr,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_io().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let listener = match TcpListener::bind(&addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("{name}: cannot listen on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let local = listener.local_addr().map_or(addr, |a| a.to_string());
        println!("listening on {local}");
        let _ = std::io::stdout().flush();
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                // Out of file descriptors, most likely: the connections already open go on.
                Err(e) => {
                    eprintln!("accept failed: {e}");
                    continue;
                }
            };
            if let Err(e) = stream.set_nodelay(true) {
                eprintln!("cannot set TCP_NODELAY: {e}");
                continue;
            }
            let served = handle(stream);
            tokio::spawn(async move {
                if let Err(e) = served.await {
                    eprintln!("{e}");
                }
            });
        }
    })
}

/// The `--addr` value (default 127.0.0.1:9001), or the exit code for `--help` and bad usage.
fn parse_addr(name: &str) -> Result<String, ExitCode> {
    let usage = format!("usage: {name} [--addr HOST:PORT]  (port 0 picks a free one)");
    let mut addr = "127.0.0.1:9001".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--addr", Some(value)) => addr = value,
            ("-h" | "--help", _) => {
                println!("{usage}");
                return Err(ExitCode::SUCCESS);
            }
            _ => {
                eprintln!("{name}: unexpected argument {arg:?}\n{usage}");
                return Err(ExitCode::from(2));
            }
        }
    }
    Ok(addr)
}
