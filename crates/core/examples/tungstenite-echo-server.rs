//! The comparison server for `cargo xtask bench`: the same echo server as `echo-server.rs`,
//! written with blocking tungstenite. Every text message comes back as text, every binary
//! message as binary.
//!
//! ```sh
//! cargo run --release -p lowbit-websockets --example tungstenite-echo-server -- --addr 127.0.0.1:9002 [--max-message BYTES]
//! ```
//!
//! It keeps the shape of `echo-server.rs` so the load test compares the libraries, not the
//! servers: one thread per connection, TCP_NODELAY, a 10 s handshake timeout, the same
//! message limit (16 MiB by default) and a 64 KiB read buffer (our server reads in
//! `max_chunk_size` = 64 KiB pieces; tungstenite's default would be 128 KiB). Each echo is
//! `send` (write + flush), as our `write_message` writes and flushes.

use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Error, Message};

/// Matches `echo-server.rs`'s default message limit (`READ_LIMIT_LARGE`).
const DEFAULT_MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// Matches the read size of `echo-server.rs` (its `max_chunk_size`).
const READ_BUFFER_SIZE: usize = 64 * 1024;
/// How long a client may take to send its upgrade request.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

const USAGE: &str = "usage: tungstenite-echo-server [--addr HOST:PORT] [--max-message BYTES]
  --addr         address to listen on (default 127.0.0.1:9001; port 0 picks a free one)
  --max-message  largest message accepted, in bytes (default 16777216)";

struct Args {
    addr: String,
    max_message: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { addr: "127.0.0.1:9001".to_owned(), max_message: DEFAULT_MAX_MESSAGE };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--addr" => args.addr = value("--addr")?,
            "--max-message" => {
                let v = value("--max-message")?;
                args.max_message = v.parse().map_err(|_| format!("--max-message: not a byte count: {v}"))?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("tungstenite-echo-server: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(&args.addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tungstenite-echo-server: cannot listen on {}: {e}", args.addr);
            return ExitCode::FAILURE;
        }
    };
    let local = listener.local_addr().map_or_else(|_| args.addr.clone(), |a| a.to_string());
    // Whoever started us waits for this line to know the port (and that it is open).
    println!("listening on {local}");
    let _ = io::stdout().flush();

    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_SIZE)
        .max_message_size(Some(args.max_message))
        .max_frame_size(Some(args.max_message));
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                eprintln!("accept failed: {e}");
                continue;
            }
        };
        let peer = stream.peer_addr().map_or_else(|_| "?".to_owned(), |a| a.to_string());
        let spawned = thread::Builder::new().name(peer.clone()).spawn(move || {
            if let Err(e) = serve(stream, config) {
                eprintln!("{peer}: {e}");
            }
        });
        if let Err(e) = spawned {
            eprintln!("cannot start a thread for a connection: {e}");
        }
    }
    ExitCode::SUCCESS
}

/// One connection: handshake, then echo until the close handshake or an error.
fn serve(stream: TcpStream, config: WebSocketConfig) -> Result<(), Box<dyn std::error::Error>> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
    let mut ws = tungstenite::accept_with_config(stream, Some(config)).map_err(|e| e.to_string())?;
    ws.get_mut().set_read_timeout(None)?;
    loop {
        match ws.read() {
            Ok(msg @ (Message::Text(_) | Message::Binary(_))) => ws.send(msg)?,
            // Pings are answered and the close is echoed by tungstenite on the next read.
            Ok(_) => {}
            // The close handshake is complete (tungstenite, as a server, then drops the socket).
            Err(Error::ConnectionClosed) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}
