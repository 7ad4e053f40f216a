//! `lowbit-ws-host`: runs the lowbit websockets component on real TCP connections.
//!
//! ```text
//! lowbit-ws-host serve --addr 127.0.0.1:9001 [--deflate] [OPTIONS]
//!     accept connections; the component does the handshake and echoes every message
//! lowbit-ws-host autobahn-client [--no-deflate] [OPTIONS]
//!     the Autobahn|Testsuite client loop against $AUTOBAHN_URL as $AUTOBAHN_AGENT
//! OPTIONS: --component PATH (default: $LOWBIT_WS_COMPONENT, else the workspace's
//!          target/wasm32-wasip2/release/lowbit_websockets_component.wasm)
//!          --max-read-limit BYTES (default 16 MiB)  --max-chunk-size BYTES (default 64 KiB)
//!          --deflate-threshold BYTES (compress messages from this size; default 1024)
//!          --threads N (serve: 1 = one current-thread tokio runtime, the default; more =
//!          a multi-thread runtime; every connection is a task, many per thread)
//!          --handshake-timeout SECS (serve: the whole upgrade request; default 10)
//!          --stall-timeout SECS (serve: drop a peer whose pending output makes no progress
//!          for this long; default 30; 0 = never)
//!          --verbose (one line per connection)
//! ```

use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use lowbit_ws_host::serve::{ServeOptions, ServeStats};
use lowbit_ws_host::{ConnectOptions, Host, Limits, Opcode, accept_options, default_deflate};

struct Args {
    cmd: String,
    addr: String,
    deflate: Option<bool>,
    component: String,
    limits: Limits,
    verbose: bool,
    threshold: Option<u32>,
    threads: usize,
    handshake_timeout: Duration,
    stall_timeout: Option<Duration>,
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: lowbit-ws-host serve --addr HOST:PORT [--deflate] [--component PATH] [--max-read-limit N] [--max-chunk-size N] [--deflate-threshold N] [--threads N] [--handshake-timeout SECS] [--stall-timeout SECS] [--verbose]"
    );
    eprintln!(
        "       lowbit-ws-host autobahn-client [--no-deflate] [--component PATH] [--max-read-limit N] [--max-chunk-size N]"
    );
    ExitCode::from(2)
}

fn default_component() -> String {
    if let Ok(p) = std::env::var("LOWBIT_WS_COMPONENT") {
        return p;
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../target").into());
    format!("{target}/wasm32-wasip2/release/lowbit_websockets_component.wasm")
}

fn parse() -> Option<Args> {
    let mut it = std::env::args().skip(1).peekable();
    // `serve` is the default command, so flags may come first (as the bench harness passes
    // `--addr` before the rest).
    let cmd = if it.peek()?.starts_with("--") { "serve".to_owned() } else { it.next()? };
    let mut a = Args {
        cmd,
        addr: "127.0.0.1:9001".into(),
        deflate: None,
        component: default_component(),
        limits: Limits { max_read_limit: 16 << 20, max_chunk_size: 64 << 10 },
        verbose: false,
        threshold: None,
        threads: 1,
        handshake_timeout: lowbit_ws_host::serve::HANDSHAKE_TIMEOUT,
        stall_timeout: Some(lowbit_ws_host::serve::STALL_TIMEOUT),
    };
    let secs = |v: String| v.parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0).map(Duration::from_secs_f64);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "serve" if a.cmd == "serve" => {} // named after leading flags
            "--addr" => a.addr = it.next()?,
            "--deflate" => a.deflate = Some(true),
            "--no-deflate" => a.deflate = Some(false),
            "--component" => a.component = it.next()?,
            "--max-read-limit" => a.limits.max_read_limit = it.next()?.parse().ok()?,
            "--max-chunk-size" => a.limits.max_chunk_size = it.next()?.parse().ok()?,
            "--verbose" => a.verbose = true,
            "--deflate-threshold" => a.threshold = Some(it.next()?.parse().ok()?),
            "--threads" => a.threads = it.next()?.parse().ok().filter(|n| *n > 0)?,
            "--handshake-timeout" => a.handshake_timeout = secs(it.next()?)?,
            "--stall-timeout" => a.stall_timeout = Some(secs(it.next()?)?).filter(|d| !d.is_zero()),
            _ => return None,
        }
    }
    Some(a)
}

fn main() -> ExitCode {
    let Some(args) = parse() else { return usage() };
    let host = match Host::from_file(&args.component) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("lowbit-ws-host: cannot load {}: {e:#}", args.component);
            return ExitCode::FAILURE;
        }
    };
    let result = match args.cmd.as_str() {
        "serve" => serve(&host, &args),
        "autobahn-client" => autobahn_client(&host, &args),
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lowbit-ws-host: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(host: &Host, args: &Args) -> wasmtime::Result<()> {
    let mut accept = accept_options(args.limits, args.deflate.unwrap_or(false));
    if let (Some(d), Some(t)) = (accept.deflate.as_mut(), args.threshold) {
        d.threshold = t;
    }
    let options = ServeOptions {
        handshake_timeout: args.handshake_timeout,
        stall_timeout: args.stall_timeout,
        verbose: args.verbose,
        ..ServeOptions::new(accept)
    };
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads).enable_all().build()?
    };
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.addr).await?;
        // The same first line as core's echo-server example, so scripts can wait for it (and
        // learn the port when --addr asks for port 0).
        println!("listening on {}", listener.local_addr()?);
        std::io::Write::flush(&mut std::io::stdout())?;
        eprintln!(
            "lowbit-ws-host: serving on ws://{} (deflate {}, {} thread(s))",
            listener.local_addr()?,
            options.accept.deflate.is_some(),
            args.threads
        );
        lowbit_ws_host::serve::serve(host.clone(), listener, options, Arc::new(ServeStats::default())).await;
        Ok::<_, wasmtime::Error>(())
    })
}

/// The Autobahn client loop (see /work/shared/autobahn/README.md, "Testing a client").
fn autobahn_client(host: &Host, args: &Args) -> wasmtime::Result<()> {
    let url = std::env::var("AUTOBAHN_URL").unwrap_or_else(|_| "ws://127.0.0.1:9001".into());
    let agent = std::env::var("AUTOBAHN_AGENT").unwrap_or_else(|_| "lowbit-component".into());
    let authority = url.strip_prefix("ws://").unwrap_or(&url).trim_end_matches('/').to_string();
    let deflate = args.deflate.unwrap_or(true).then(default_deflate);
    let options = |path: String| ConnectOptions {
        limits: args.limits,
        host: authority.clone(),
        path,
        protocols: Vec::new(),
        deflate,
    };

    let mut session = host.session()?;
    let (conn, _) =
        session.connect(TcpStream::connect(&authority)?, &options("/getCaseCount".into()))?.map_err(as_error)?;
    let msg = session.read_message(conn)?.map_err(as_error)?;
    let count: u32 = std::str::from_utf8(&msg.payload)?.trim().parse()?;
    let _ = session.close_with_code(conn, 1000, "")?;
    session.drop_connection(conn)?;
    eprintln!("autobahn: {count} cases");

    for case in 1..=count {
        let mut session = host.session()?;
        let tcp = TcpStream::connect(&authority)?;
        match session.connect(tcp, &options(format!("/runCase?case={case}&agent={agent}"))) {
            // Errors inside a case are the point of many cases: they are judged by the
            // fuzzing server, not here. A trap is a bug, and fails the run.
            Ok(Ok((conn, _))) => {
                let _ = session.echo(conn)?;
            }
            Ok(Err(e)) => eprintln!("case {case}: handshake: {e:?}"),
            Err(trap) => return Err(trap),
        }
    }

    let mut session = host.session()?;
    let (conn, _) = session
        .connect(TcpStream::connect(&authority)?, &options(format!("/updateReports?agent={agent}")))?
        .map_err(as_error)?;
    loop {
        match session.read_message(conn)? {
            Ok(m) if m.op == Opcode::Close => break,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    session.drop_connection(conn)?;
    Ok(())
}

fn as_error(e: lowbit_ws_host::Error) -> wasmtime::Error {
    wasmtime::format_err!("{e:?}")
}
