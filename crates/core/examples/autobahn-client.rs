//! The Autobahn|Testsuite client loop: echo every message of every case back to the
//! fuzzing server.
//!
//! ```sh
//! AUTOBAHN_URL=ws://127.0.0.1:9002 AUTOBAHN_AGENT=lowbit target/release/examples/autobahn-client
//! ```
//!
//! `client-test.sh` (run by `cargo xtask autobahn`) sets both variables. Asks the server for
//! the number of cases, runs each one (an error ends that case only: many cases are meant to
//! fail the connection), then asks the server to write its reports.

use std::io::Read;
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use lowbit_websockets::deflate::Engine;
use lowbit_websockets::handshake::ClientOptions;
use lowbit_websockets::{Config, Conn, ConnectOptions, DeflateOptions, OpCode, READ_LIMIT_LARGE, Role};

type BoxError = Box<dyn std::error::Error>;

/// Cases 9.1.6 and 9.2.6 send 16 MiB messages.
const MAX_MESSAGE: usize = READ_LIMIT_LARGE;
const MAX_CHUNK_SIZE: usize = 64 * 1024;
/// How long to wait for the server to hang up after the close handshake.
const LINGER: Duration = Duration::from_secs(2);

fn main() -> ExitCode {
    let url = std::env::var("AUTOBAHN_URL").unwrap_or_else(|_| "ws://127.0.0.1:9001".to_owned());
    let agent = std::env::var("AUTOBAHN_AGENT").unwrap_or_else(|_| "lowbit".to_owned());
    let Some(host) = url.strip_prefix("ws://").map(|h| h.trim_end_matches('/').to_owned()) else {
        eprintln!("autobahn-client: AUTOBAHN_URL must be ws://HOST:PORT, not {url}");
        return ExitCode::from(2);
    };

    let count = match case_count(&host) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("autobahn-client: getCaseCount failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("autobahn-client: {count} cases");
    for case in 1..=count {
        if let Err(e) = echo(&host, &format!("/runCase?case={case}&agent={agent}")) {
            // Expected for the cases that break the protocol on purpose.
            eprintln!("case {case}: {e}");
        }
    }
    match echo(&host, &format!("/updateReports?agent={agent}")) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("autobahn-client: updateReports failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn connect(host: &str, path: &str) -> Result<Conn<TcpStream>, BoxError> {
    let stream = TcpStream::connect(host)?;
    stream.set_nodelay(true)?;
    let opts = ConnectOptions {
        request: ClientOptions::new(host.to_owned()).path(path.to_owned()),
        config: Config::new(Role::Client).max_read_limit(MAX_MESSAGE).max_chunk_size(MAX_CHUNK_SIZE),
        deflate: Some(deflate_options()),
    };
    let (conn, _connected) = lowbit_websockets::connect(stream, &opts)?;
    Ok(conn)
}

/// permessage-deflate as Autobahn's 13.* cases want it: we offer to drop context takeover
/// (so a server may ask for it), and with the zlib-rs engine to compress with a small window.
fn deflate_options() -> DeflateOptions {
    DeflateOptions { client_no_context_takeover: true, engine: Engine::ZlibRs, ..DeflateOptions::default() }
}

/// The first text message on `/getCaseCount`: the number of cases.
fn case_count(host: &str) -> Result<u32, BoxError> {
    let mut conn = connect(host, "/getCaseCount")?;
    let mut buf = Vec::new();
    let (op, payload) = conn.read_message(&mut buf)?;
    if op != OpCode::Text {
        return Err(format!("expected a text message, got {op:?}").into());
    }
    let count = std::str::from_utf8(payload)?.trim().parse()?;
    // The server closes right after; complete the close handshake.
    while conn.read_message(&mut buf)?.0 != OpCode::Close {}
    wait_for_hangup(conn.into_inner());
    Ok(count)
}

/// Echoes every message on `path` until the server closes.
fn echo(host: &str, path: &str) -> Result<(), BoxError> {
    let mut conn = connect(host, path)?;
    let mut buf = Vec::new();
    loop {
        match conn.read_message(&mut buf)? {
            (OpCode::Close, _) => break,
            (op, payload) => conn.write_message(op, payload)?,
        }
    }
    wait_for_hangup(conn.into_inner());
    Ok(())
}

/// After the close handshake the server closes TCP first (RFC 6455 §7.1.1); wait for that
/// (bounded) so the server does not see the client's FIN before its own.
fn wait_for_hangup(mut stream: TcpStream) {
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 1024];
    while let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
        if stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
