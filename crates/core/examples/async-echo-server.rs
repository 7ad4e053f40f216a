//! The async echo server: every text message comes back as text, every binary message as
//! binary, one tokio task per connection.
//!
//! ```sh
//! cargo run --release -p lowbit-websockets --features tokio --example async-echo-server -- \
//!     [--addr 127.0.0.1:9001] [--threads N] [--max-message BYTES] [--deflate]
//! ```
//!
//! `--threads 1` (the default) runs everything on one current-thread runtime, the shape the
//! benchmarks compare with fastwebsockets and tokio-tungstenite; more threads use tokio's
//! multi-thread runtime. A client that stalls its upgrade is dropped after 10 s, and at the
//! descriptor limit the accept loop backs off instead of spinning.

use std::process::ExitCode;
use std::time::Duration;

use lowbit_websockets::{
    AcceptOptions, AsyncConn, Config, DeflateOptions, OpCode, READ_LIMIT_LARGE, Role, accept_async,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The largest frame written: big enough that echoing a large message takes few frames.
const MAX_CHUNK_SIZE: usize = 64 * 1024;
/// How long a client may take to send its whole upgrade request.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the client to hang up after the close handshake.
const LINGER: Duration = Duration::from_secs(2);
/// How long the accept loop pauses after a failure (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

const USAGE: &str = "usage: async-echo-server [--addr HOST:PORT] [--threads N] [--max-message BYTES] [--deflate]
  --addr         address to listen on (default 127.0.0.1:9001; port 0 picks a free one)
  --threads      runtime threads: 1 = one current-thread runtime (default), more = multi-thread
  --max-message  largest message accepted, in bytes (default 16777216)
  --deflate      accept permessage-deflate offers";

struct Args {
    addr: String,
    threads: usize,
    max_message: usize,
    deflate: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args =
        Args { addr: "127.0.0.1:9001".to_owned(), threads: 1, max_message: READ_LIMIT_LARGE, deflate: false };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        let number = |name: &str, v: String| v.parse::<usize>().map_err(|_| format!("{name}: not a number: {v}"));
        match arg.as_str() {
            "--addr" => args.addr = value("--addr")?,
            "--threads" => args.threads = number("--threads", value("--threads")?)?.max(1),
            "--max-message" => args.max_message = number("--max-message", value("--max-message")?)?,
            "--deflate" => args.deflate = true,
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
            eprintln!("async-echo-server: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads).enable_all().build()
    };
    match runtime.map_err(|e| e.to_string()).and_then(|rt| rt.block_on(serve(args))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("async-echo-server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args) -> Result<(), String> {
    let listener = TcpListener::bind(&args.addr).await.map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
    let local = listener.local_addr().map_or_else(|_| args.addr.clone(), |a| a.to_string());
    // Whoever started us waits for this line to know the port (and that it is open).
    println!("listening on {local}");
    let opts = AcceptOptions {
        config: Config::new(Role::Server).max_read_limit(args.max_message).max_chunk_size(MAX_CHUNK_SIZE),
        deflate: args.deflate.then(DeflateOptions::default),
        ..AcceptOptions::default()
    };
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // EMFILE and friends: the pending connection stays queued, so retrying at once
                // would spin; wait for descriptors to free up.
                eprintln!("accept failed: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let opts = opts.clone();
        tokio::spawn(async move {
            if let Err(e) = echo(stream, &opts).await {
                eprintln!("connection: {e}");
            }
        });
    }
}

/// One connection: handshake, then echo until the close handshake or an error.
async fn echo(mut stream: TcpStream, opts: &AcceptOptions) -> lowbit_websockets::Result<()> {
    stream.set_nodelay(true)?;
    let result = async {
        let (mut conn, _accepted) = match tokio::time::timeout(HANDSHAKE_TIMEOUT, accept_async(&mut stream, opts)).await
        {
            Ok(accepted) => accepted?,
            Err(_) => return Ok(()), // stalled: the connection is dropped
        };
        echo_messages(&mut conn).await
    }
    .await;
    // After a refused request too: its 4xx answer must not be lost to a reset.
    linger(stream).await;
    result
}

/// Echoes until the close handshake completes or the connection fails.
async fn echo_messages(conn: &mut AsyncConn<&mut TcpStream>) -> lowbit_websockets::Result<()> {
    let mut buf = Vec::new();
    loop {
        let (op, payload) = conn.read_message(&mut buf).await?;
        if op == OpCode::Close {
            return Ok(());
        }
        conn.write_message(op, payload).await?;
    }
}

/// Closes without losing what was sent last: FIN, then drop what the client still sends until
/// it hangs up (at most [`LINGER`]), so the kernel does not answer unread bytes with a reset.
async fn linger(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(LINGER, async {
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}
