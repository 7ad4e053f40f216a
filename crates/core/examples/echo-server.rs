//! An echo server: every text message comes back as text, every binary message as binary.
//!
//! ```sh
//! cargo run --release -p lowbit-websockets --example echo-server -- --addr 127.0.0.1:9001 [--max-message BYTES] [--deflate]
//! ```
//!
//! One thread per connection, no shared state: a client that sends garbage, hangs up
//! mid-frame or stalls costs only its own thread. This is the server the Autobahn|Testsuite
//! runs against (`cargo xtask autobahn`), so the default message limit is 16 MiB (cases
//! 9.1.6 and 9.2.6 send messages of that size).
//!
//! Against resource attacks (flags in `common/hardening.rs`): the whole upgrade request must
//! arrive within 10 s ([`tcp::accept`]), a message may come in at most 131,072 frames, the
//! accept loop pauses at the file descriptor limit instead of spinning ([`AcceptBackoff`]),
//! and a peer that stops reading or goes quiet is dropped ([`Liveness::SERVER`]).
//!
//! [`tcp::accept`]: lowbit_websockets::tcp::accept
//! [`AcceptBackoff`]: lowbit_websockets::tcp::AcceptBackoff
//! [`Liveness::SERVER`]: lowbit_websockets::liveness::Liveness::SERVER

use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;

use lowbit_websockets::deflate::Engine;
use lowbit_websockets::liveness::{Liveness, Stall, Verdict};
use lowbit_websockets::tcp::{self, LINGER, linger};
use lowbit_websockets::{AcceptOptions, Config, DeflateOptions, OpCode, READ_LIMIT_LARGE, Role};

#[path = "common/hardening.rs"]
mod hardening;
use hardening::{Hardening, TimeoutWatch, dropped};

/// The largest frame written: big enough that echoing a large message takes few frames.
const MAX_CHUNK_SIZE: usize = 64 * 1024;

const USAGE: &str = "usage: echo-server [--addr HOST:PORT] [--max-message BYTES] [--deflate] [hardening flags]
  --addr         address to listen on (default 127.0.0.1:9001; port 0 picks a free one)
  --max-message  largest message accepted, in bytes (default 16777216)
  --deflate      accept permessage-deflate offers (zlib-rs engine: honors every window size)";

struct Args {
    addr: String,
    max_message: usize,
    deflate: bool,
    hardening: Hardening,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        addr: "127.0.0.1:9001".to_owned(),
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
        match arg.as_str() {
            "--addr" => args.addr = value("--addr")?,
            "--max-message" => {
                let v = value("--max-message")?;
                args.max_message = v.parse().map_err(|_| format!("--max-message: not a byte count: {v}"))?;
            }
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
            eprintln!("echo-server: {e}\n{USAGE}\n{}", hardening::USAGE);
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(&args.addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("echo-server: cannot listen on {}: {e}", args.addr);
            return ExitCode::FAILURE;
        }
    };
    let local = listener.local_addr().map_or_else(|_| args.addr.clone(), |a| a.to_string());
    // Whoever started us waits for this line to know the port (and that it is open).
    println!("listening on {local}");
    let _ = io::stdout().flush();

    let opts = args.hardening.apply(AcceptOptions {
        config: Config::new(Role::Server).max_read_limit(args.max_message).max_chunk_size(MAX_CHUNK_SIZE),
        deflate: args.deflate.then(deflate_options),
        ..AcceptOptions::default()
    });
    let liveness = args.hardening.liveness;
    let mut backoff = args.hardening.backoff();
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors the pending connection stays queued, so accepting
                // again at once would fail at once: pause, and log once per interval.
                thread::sleep(hardening::accept_failed(&mut backoff, &e));
                continue;
            }
        };
        let peer = stream.peer_addr().map_or_else(|_| "?".to_owned(), |a| a.to_string());
        let opts = opts.clone();
        let spawned = thread::Builder::new().name(peer.clone()).spawn(move || {
            if let Err(e) = serve(stream, &opts, liveness) {
                eprintln!("{peer}: {e}");
            }
        });
        if let Err(e) = spawned {
            eprintln!("cannot start a thread for a connection: {e}");
        }
    }
}

/// permessage-deflate settings: the defaults, with the zlib-rs engine (faster than miniz_oxide,
/// and it honors a client's server_max_window_bits below 15).
fn deflate_options() -> DeflateOptions {
    DeflateOptions { engine: Engine::ZlibRs, ..DeflateOptions::default() }
}

/// One connection: handshake, then echo until the close handshake, an error, or a stall.
fn serve(stream: TcpStream, opts: &AcceptOptions, liveness: Liveness) -> lowbit_websockets::Result<()> {
    stream.set_nodelay(true)?;
    // A refused request has been answered with its 4xx by `accept` already; linger so that
    // the answer is not lost to a reset while the client is still sending (a 70 KB head).
    let (mut conn, _accepted) = tcp::accept(&stream, opts).inspect_err(|_| linger(&stream, LINGER))?;
    // Writes that make no progress for `write_stall` fail; reads wake up after `idle`.
    tcp::set_liveness(conn.get_ref(), &liveness)?;
    let mut watch = TimeoutWatch::new(liveness);
    let pong = Arc::clone(&watch.pong);
    conn.set_pong_handler(move |_| pong.store(true, Ordering::Relaxed));

    let mut buf = Vec::new();
    let result = loop {
        match conn.read_message(&mut buf) {
            Ok((OpCode::Close, _)) => break Ok(()),
            Ok((op, payload)) => {
                watch.heard();
                if let Err(e) = conn.write_message(op, payload) {
                    break Err(if tcp::timed_out(&e) { dropped(Stall::WriteStalled) } else { e });
                }
            }
            Err(e) if tcp::timed_out(&e) => match watch.timed_out() {
                Verdict::Alive => {}
                Verdict::Ping => {
                    if let Err(e) = conn.ping(b"") {
                        break Err(if tcp::timed_out(&e) { dropped(Stall::WriteStalled) } else { e });
                    }
                }
                Verdict::Drop(why) => break Err(dropped(why)),
            },
            Err(e) => break Err(e),
        }
    };
    if !hardening::stalled(&result) {
        linger(&stream, LINGER);
    }
    result
}
