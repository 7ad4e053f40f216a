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
//! multi-thread runtime.
//!
//! Against resource attacks, as the blocking echo server (flags in `common/hardening.rs`): the
//! whole upgrade request must arrive within 10 s (`accept_async` holds
//! `AcceptOptions::handshake_timeout`), a message may come in at most 131,072 frames, the accept
//! loop pauses at the file descriptor limit instead of spinning (`tcp::AcceptBackoff`), and a
//! peer that goes quiet is pinged, then dropped (`Liveness::SERVER`). Here the write-stall
//! timeout bounds each whole echo write rather than the time without progress (a tokio write
//! shows no progress short of completion), which at loopback speeds is the same thing.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use lowbit_websockets::liveness::{Liveness, Stall, Verdict};
use lowbit_websockets::{
    AcceptOptions, AsyncConn, Config, DeflateOptions, OpCode, READ_LIMIT_LARGE, Role, accept_async,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[path = "common/hardening.rs"]
mod hardening;
use hardening::{Hardening, TimeoutWatch, dropped};

/// The largest frame written: big enough that echoing a large message takes few frames.
const MAX_CHUNK_SIZE: usize = 64 * 1024;
/// How long to wait for the client to hang up after the close handshake.
const LINGER: Duration = Duration::from_secs(2);

const USAGE: &str =
    "usage: async-echo-server [--addr HOST:PORT] [--threads N] [--max-message BYTES] [--deflate] [hardening flags]
  --addr         address to listen on (default 127.0.0.1:9001; port 0 picks a free one)
  --threads      runtime threads: 1 = one current-thread runtime (default), more = multi-thread
  --max-message  largest message accepted, in bytes (default 16777216)
  --deflate      accept permessage-deflate offers";

struct Args {
    addr: String,
    threads: usize,
    max_message: usize,
    deflate: bool,
    hardening: Hardening,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        addr: "127.0.0.1:9001".to_owned(),
        threads: 1,
        max_message: READ_LIMIT_LARGE,
        deflate: false,
        hardening: Hardening::default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        if args.hardening.parse(&arg, &mut value)? {
            continue;
        }
        let number = |name: &str, v: String| v.parse::<usize>().map_err(|_| format!("{name}: not a number: {v}"));
        match arg.as_str() {
            "--addr" => args.addr = value("--addr")?,
            "--threads" => args.threads = number("--threads", value("--threads")?)?.max(1),
            "--max-message" => args.max_message = number("--max-message", value("--max-message")?)?,
            "--deflate" => args.deflate = true,
            "-h" | "--help" => {
                println!("{USAGE}\n{}", hardening::USAGE);
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
            eprintln!("async-echo-server: {e}\n{USAGE}\n{}", hardening::USAGE);
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
    let opts = args.hardening.apply(AcceptOptions {
        config: Config::new(Role::Server).max_read_limit(args.max_message).max_chunk_size(MAX_CHUNK_SIZE),
        deflate: args.deflate.then(DeflateOptions::default),
        ..AcceptOptions::default()
    });
    let liveness = args.hardening.liveness;
    let mut backoff = args.hardening.backoff();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors the pending connection stays queued, so accepting
                // again at once would fail at once: pause, and log once per interval.
                tokio::time::sleep(hardening::accept_failed(&mut backoff, &e)).await;
                continue;
            }
        };
        let opts = opts.clone();
        tokio::spawn(async move {
            if let Err(e) = echo(stream, &opts, liveness).await {
                eprintln!("connection: {e}");
            }
        });
    }
}

/// One connection: handshake (within the options' deadline), then echo until the close
/// handshake, an error or a stall.
async fn echo(mut stream: TcpStream, opts: &AcceptOptions, liveness: Liveness) -> lowbit_websockets::Result<()> {
    stream.set_nodelay(true)?;
    let result = async {
        let (mut conn, _accepted) = accept_async(&mut stream, opts).await?;
        echo_messages(&mut conn, liveness).await
    }
    .await;
    // After a refused request too: its 4xx answer must not be lost to a reset.
    if !hardening::stalled(&result) {
        linger(stream).await;
    }
    result
}

/// Echoes until the close handshake completes, the connection fails or the peer stalls.
async fn echo_messages(conn: &mut AsyncConn<&mut TcpStream>, liveness: Liveness) -> lowbit_websockets::Result<()> {
    let mut watch = TimeoutWatch::new(liveness);
    let pong = Arc::clone(&watch.pong);
    conn.handlers().set_pong_handler(move |_| pong.store(true, Ordering::Relaxed));
    let mut buf = Vec::new();
    loop {
        // `read_message` is cancel-safe: a timeout loses nothing of a message half read.
        let read = match liveness.idle {
            Some(idle) => tokio::time::timeout(idle, conn.read_message(&mut buf)).await.ok(),
            None => Some(conn.read_message(&mut buf).await),
        };
        let Some(read) = read else {
            match watch.timed_out() {
                Verdict::Alive => {}
                Verdict::Ping => within(liveness.write_stall, conn.ping(b"")).await?,
                Verdict::Drop(why) => return Err(dropped(why)),
            }
            continue;
        };
        let (op, payload) = read?;
        if op == OpCode::Close {
            return Ok(());
        }
        watch.heard();
        within(liveness.write_stall, conn.write_message(op, payload)).await?;
    }
}

/// Runs a write, failing it as a stalled peer if it takes longer than `limit`.
async fn within(
    limit: Option<Duration>,
    write: impl Future<Output = lowbit_websockets::Result<()>>,
) -> lowbit_websockets::Result<()> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, write).await.unwrap_or_else(|_| Err(dropped(Stall::WriteStalled))),
        None => write.await,
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
