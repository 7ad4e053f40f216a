//! `cargo xtask bench-memory`: memory per connection on every face, with `ws` 8 and Python
//! `websockets` as anchors.
//!
//! Each server is a fresh child process (its fd limit raised with ours). [`rss::run`] opens N
//! idle upgraded connections (10,000 by default), holds them, and divides the growth of the
//! server's resident set by N: "cold" right after the upgrades, "warm" after one 1 KiB echo
//! on each. Every server runs plain and with permessage-deflate at its default settings (what a
//! user gets without tuning). For deflate, one more connection echoes a fixed corpus (the
//! load test's 1 MiB of text-like words, as 1 KiB messages) and the bytes the server sent are
//! counted: the other side of the memory/ratio trade-off.
//!
//! ```text
//! cargo xtask bench-memory [--connections N] [--only LIST] [--no-deflate] [--write | --no-write]
//! ```

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use lowbit_websockets::handshake::ClientOptions;
use lowbit_websockets::{ConnectOptions, DeflateOptions, OpCode, connect};

use super::swarm::Plan;
use super::sys::Server;
use super::{load, os, report, rss};
use crate::util::{Ctx, Result, free_port, run as run_command};
use crate::{component, node};

const USAGE: &str = "usage: cargo xtask bench-memory [OPTIONS]
  --connections N     idle connections per server (default 10000)
  --only LIST         servers to run: async, blocking, component, node, deno-ffi,
                      fastwebsockets, ws, python
  --no-deflate        plain connections only
  --write/--no-write  update the \"Memory per connection\" section of BENCHMARKS.md
                      (default: yes, unless --only or --connections is given)";

const HEADING: &str = "## Memory per connection";
/// The corpus's messages, for the bytes on the wire.
const WIRE_MESSAGE: usize = 1024;

/// How a server is started.
enum Launch {
    /// An example of the core crate, `--addr`, "listening on ADDR".
    Example(&'static str, &'static [&'static str]),
    /// A binary of `bench-peers`, the same way.
    Peer(&'static str),
    /// `lowbit-ws-host serve --component PATH`, the same way.
    Component,
    /// `node SCRIPT --port P` (a path under npm/).
    Node(&'static str),
    /// `deno run … npm/examples/echo-server-deno.ts --port P`.
    DenoFfi,
    /// `python crates/xtask/peers/websockets_echo.py --port P`.
    Python,
}

struct Face {
    key: &'static str,
    label: &'static str,
    launch: Launch,
    /// Negotiates permessage-deflate when started with `--deflate`.
    deflate: bool,
}

const FACES: [Face; 8] = [
    Face {
        key: "async",
        label: "lowbit async (tokio, 1 thread)",
        launch: Launch::Example("async-echo-server", &["--threads", "1"]),
        deflate: true,
    },
    Face {
        key: "blocking",
        label: "lowbit blocking (thread per connection)",
        launch: Launch::Example("echo-server", &[]),
        deflate: true,
    },
    Face { key: "component", label: "lowbit component (wasmtime)", launch: Launch::Component, deflate: true },
    Face { key: "node", label: "lowbit Node", launch: Launch::Node("examples/echo-server.mjs"), deflate: true },
    Face { key: "deno-ffi", label: "lowbit Deno FFI", launch: Launch::DenoFfi, deflate: true },
    Face {
        key: "fastwebsockets",
        label: "fastwebsockets (tokio, 1 thread)",
        launch: Launch::Peer("fastwebsockets-echo-server"),
        deflate: false,
    },
    Face { key: "ws", label: "ws 8 (Node)", launch: Launch::Node("bench/ws-echo-server.cjs"), deflate: true },
    Face { key: "python", label: "Python websockets 17 (asyncio)", launch: Launch::Python, deflate: true },
];

struct Options {
    connections: usize,
    only: Option<Vec<String>>,
    deflate: bool,
    write: bool,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self> {
        let mut o = Options { connections: 10_000, only: None, deflate: true, write: true };
        let mut write = None;
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value\n{USAGE}"));
            match arg.as_str() {
                "--connections" => {
                    let v = value()?;
                    o.connections = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=50_000).contains(n))
                        .ok_or_else(|| format!("--connections: expected a count from 1 to 50000, got {v:?}"))?;
                    write.get_or_insert(false);
                }
                "--only" => {
                    let keys: Vec<String> = value()?.split(',').map(|k| k.trim().to_owned()).collect();
                    if let Some(bad) = keys.iter().find(|k| !FACES.iter().any(|f| f.key == k.as_str())) {
                        return Err(format!("--only: unknown server {bad:?}\n{USAGE}"));
                    }
                    o.only = Some(keys);
                    write.get_or_insert(false);
                }
                "--no-deflate" => o.deflate = false,
                "--write" => write = Some(true),
                "--no-write" => write = Some(false),
                "-h" | "--help" => return Err(USAGE.to_owned()),
                other => return Err(format!("unknown option {other:?}\n{USAGE}")),
            }
        }
        o.write = write.unwrap_or(true);
        Ok(o)
    }
}

/// One server's figures.
struct Row {
    label: &'static str,
    deflate: bool,
    footprint: Result<rss::Footprint>,
    /// Bytes the server sent echoing the corpus (deflate only).
    wire: Option<Result<u64>>,
}

pub fn run(args: &[String]) -> Result {
    let opts = Options::parse(args)?;
    let ctx = Ctx::new();
    if let Some(handed_over) = super::hand_over_to_release(&ctx) {
        return handed_over;
    }
    let faces: Vec<&Face> =
        FACES.iter().filter(|f| opts.only.as_ref().is_none_or(|only| only.iter().any(|k| k == f.key))).collect();
    build(&ctx, &faces)?;
    os::raise_open_files(opts.connections)?;
    let corpus = load::corpus();
    let mut rows = Vec::new();
    for face in &faces {
        for deflate in [false, true] {
            if deflate && !(opts.deflate && face.deflate) {
                continue;
            }
            let row = measure(&ctx, face, deflate, opts.connections, &corpus);
            println!("{}", line(&row));
            rows.push(row);
        }
    }
    let section = render(&rows, opts.connections);
    println!("\n{section}");
    if opts.write {
        let path = ctx.root.join("BENCHMARKS.md");
        report::write_section(&path, &section).map_err(|e| format!("cannot update {}: {e}", path.display()))?;
        println!("updated the \"Memory per connection\" section of {}", path.display());
    }
    Ok(())
}

/// Builds what the chosen servers need: the examples, the peers, the component and its host,
/// the npm package.
fn build(ctx: &Ctx, faces: &[&Face]) -> Result {
    let has = |f: fn(&Launch) -> bool| faces.iter().any(|face| f(&face.launch));
    if has(|l| matches!(l, Launch::Example(..))) {
        run_command(ctx.cargo().args([
            "build",
            "--release",
            "-p",
            "lowbit-websockets",
            "--features",
            "tokio",
            "--example",
            "echo-server",
            "--example",
            "async-echo-server",
        ]))?;
    }
    if has(|l| matches!(l, Launch::Peer(_))) {
        run_command(ctx.cargo().args(["build", "--release", "-p", "bench-peers", "--bins"]))?;
    }
    if has(|l| matches!(l, Launch::Component)) {
        component::build(ctx)?;
    }
    if has(|l| matches!(l, Launch::Node(_) | Launch::DenoFfi)) {
        node::setup(ctx)?;
    }
    Ok(())
}

fn measure(ctx: &Ctx, face: &Face, deflate: bool, connections: usize, corpus: &Arc<Vec<u8>>) -> Row {
    let started = start(ctx, face, deflate);
    let (footprint, wire) = match started {
        Err(e) => (Err(e), None),
        Ok(server) => {
            let plan = Plan { addr: server.addr, connections, threads: 1, cpu: None, deflate };
            let footprint = rss::run(&plan, server.pid(), corpus);
            let wire = deflate.then(|| wire_bytes(server.addr, corpus));
            let (errors, first) = server.errors();
            if errors > 0 {
                println!("({} wrote {errors} line(s) to stderr, first: {first:?})", face.label);
            }
            (footprint, wire)
        }
    };
    Row { label: face.label, deflate, footprint, wire }
}

fn start(ctx: &Ctx, face: &Face, deflate: bool) -> Result<Server> {
    let flag: &[&str] = if deflate { &["--deflate"] } else { &[] };
    let by_port = |mut command: Command| {
        let port = free_port()?;
        command.args(["--port", &port.to_string()]).args(flag);
        Server::spawn(face.label, command, Some(SocketAddr::from(([127, 0, 0, 1], port))))
    };
    match face.launch {
        Launch::Example(name, args) => Server::start(&ctx.example(name), &[args, flag].concat(), None),
        Launch::Peer(name) => Server::start(&ctx.target.join("release").join(name), &[], None),
        Launch::Component => {
            let host = component::host_binary(ctx);
            let wasm = component::component(ctx);
            let mut command = Command::new(host);
            command.args(["serve", "--addr", "127.0.0.1:0", "--component"]).arg(wasm).args(flag);
            Server::spawn(face.label, command, None)
        }
        Launch::Node(script) => {
            let mut command = Command::new("node");
            command.arg(node::npm_dir(ctx).join(script));
            by_port(command)
        }
        Launch::DenoFfi => {
            let mut command = Command::new(node::deno(ctx));
            command
                .args(["run", "--allow-ffi", "--allow-net", "--allow-read", "--allow-env"])
                .arg(node::npm_dir(ctx).join("examples/echo-server-deno.ts"));
            by_port(command)
        }
        Launch::Python => {
            let mut command = Command::new(python(ctx)?);
            command.arg(ctx.root.join("crates/xtask/peers/websockets_echo.py"));
            by_port(command)
        }
    }
}

/// The venv the Python interop tests fill (`$LOWBIT_PY_VENV`, else target/py-venv).
fn python(ctx: &Ctx) -> Result<PathBuf> {
    let venv = std::env::var_os("LOWBIT_PY_VENV").map_or_else(|| ctx.target.join("py-venv"), PathBuf::from);
    let py = venv.join("bin/python");
    if py.exists() {
        Ok(py)
    } else {
        Err(format!(
            "no Python venv at {} (the Python interop tests make it: cargo test --release -p lowbit-websockets --test interop_python)",
            venv.display()
        ))
    }
}

/// A stream that counts the bytes read from it.
struct Counted {
    stream: TcpStream,
    read: u64,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.stream.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// Bytes the server sends (frames, after the upgrade response) echoing the corpus as
/// [`WIRE_MESSAGE`]-byte text messages on one permessage-deflate connection.
fn wire_bytes(addr: SocketAddr, corpus: &[u8]) -> Result<u64> {
    let stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    let opts = ConnectOptions {
        request: ClientOptions::new(addr.to_string()),
        deflate: Some(DeflateOptions::default()),
        ..ConnectOptions::default()
    };
    let (mut conn, connected) =
        connect(Counted { stream, read: 0 }, &opts).map_err(|e| format!("upgrade with deflate: {e}"))?;
    if connected.deflate.is_none() {
        return Err("the server declined permessage-deflate".to_owned());
    }
    let handshake = conn.get_ref().read;
    let mut buf = Vec::new();
    for message in corpus.chunks(WIRE_MESSAGE) {
        conn.write_message(OpCode::Text, message).map_err(|e| format!("write: {e}"))?;
        let (_, echoed) = conn.read_message(&mut buf).map_err(|e| format!("read: {e}"))?;
        if echoed != message {
            return Err("the echo differs from the message".to_owned());
        }
    }
    // Bytes past the upgrade response that arrived with it are counted with it; at most a
    // frame, and the same for every server.
    Ok(conn.get_ref().read - handshake)
}

fn kib(bytes: f64) -> String {
    format!("{:.1} KiB", bytes / 1024.0)
}

fn line(row: &Row) -> String {
    let mode = if row.deflate { "deflate" } else { "plain" };
    let memory = match &row.footprint {
        Ok(f) => format!("{} cold, {} warm per connection", kib(f.cold), kib(f.warm)),
        Err(e) => format!("failed: {e}"),
    };
    let wire = match &row.wire {
        Some(Ok(n)) => format!(", corpus echoed in {n} bytes"),
        Some(Err(e)) => format!(", wire bytes failed: {e}"),
        None => String::new(),
    };
    format!("{:<42} {mode:<8} {memory}{wire}", row.label)
}

/// The section for BENCHMARKS.md.
fn render(rows: &[Row], connections: usize) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "{HEADING}\n");
    let _ = writeln!(
        s,
        "`cargo xtask bench-memory`: each echo server freshly started, {connections} idle upgraded \
         connections held, the growth of its resident set divided by {connections}. Cold: right \
         after the upgrades; warm: after one 1 KiB echo on each. Deflate: every server's default \
         permessage-deflate settings; \"corpus on the wire\" is what the server sent echoing the \
         load test's 1 MiB text-like corpus as 1 KiB messages on one connection (its ratio to ws's \
         beside it). One run; the machine is shared, so a figure can be off by a KiB or two.\n"
    );
    let _ = writeln!(s, "| server | plain, cold | plain, warm | deflate, cold | deflate, warm | corpus on the wire |");
    let _ = writeln!(s, "| --- | ---: | ---: | ---: | ---: | ---: |");
    let ws_wire = rows
        .iter()
        .find(|r| r.label.starts_with("ws ") && r.deflate)
        .and_then(|r| r.wire.as_ref()?.as_ref().ok().copied());
    let mut labels: Vec<&str> = Vec::new();
    for r in rows {
        if !labels.contains(&r.label) {
            labels.push(r.label);
        }
    }
    let cell = |row: Option<&Row>, warm: bool| match row.map(|r| &r.footprint) {
        Some(Ok(f)) => kib(if warm { f.warm } else { f.cold }),
        Some(Err(_)) => "failed".to_owned(),
        None => "–".to_owned(),
    };
    for label in labels {
        let plain = rows.iter().find(|r| r.label == label && !r.deflate);
        let deflate = rows.iter().find(|r| r.label == label && r.deflate);
        let wire = match deflate.and_then(|r| r.wire.as_ref()) {
            Some(Ok(n)) => match ws_wire {
                Some(ws) => format!("{n} B ({:.2}× ws)", *n as f64 / ws as f64),
                None => format!("{n} B"),
            },
            Some(Err(_)) => "failed".to_owned(),
            None => "–".to_owned(),
        };
        let _ = writeln!(
            s,
            "| {label} | {} | {} | {} | {} | {wire} |",
            cell(plain, false),
            cell(plain, true),
            cell(deflate, false),
            cell(deflate, true)
        );
    }
    for r in rows {
        if let Err(e) = &r.footprint {
            let _ = writeln!(s, "\n{} ({}) failed: {e}", r.label, if r.deflate { "deflate" } else { "plain" });
        }
    }
    s
}
