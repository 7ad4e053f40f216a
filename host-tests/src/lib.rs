//! Shared helpers for the component's integration tests and benchmarks: build the component
//! once, load it once, run it as a server or client on real loopback TCP, and run the same
//! traffic through the native core for comparison.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::thread::JoinHandle;

use lowbit_ws_host::serve::{ServeOptions, serve_connection};
use lowbit_ws_host::{AcceptOptions, Error, Host, Limits};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host-tests sits in the workspace").to_path_buf()
}

/// The target directory cargo uses.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"))
}

/// Builds the component (release, wasm32-wasip2) once per test process and returns the
/// `.wasm` path; `LOWBIT_WS_COMPONENT` names a prebuilt one instead.
pub fn component_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(p) = std::env::var_os("LOWBIT_WS_COMPONENT") {
            return PathBuf::from(p);
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(workspace())
            .args(["build", "--quiet", "--release", "--target", "wasm32-wasip2", "-p", "lowbit-websockets-component"])
            .status()
            .expect("running cargo to build the component");
        assert!(status.success(), "building the component failed");
        target_dir().join("wasm32-wasip2/release/lowbit_websockets_component.wasm")
    })
}

/// The component, compiled once per process.
pub fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| Host::from_file(component_path()).expect("loading the component"))
}

/// How a component-side connection ended.
#[derive(Debug)]
pub struct Outcome {
    /// `Ok(messages echoed)` or the component's error.
    pub result: Result<u64, Error>,
    /// `types.close-code` of the error, asked of the component.
    pub close_code: Option<u16>,
    /// The guest's peak linear memory.
    pub peak_memory: usize,
}

/// Serves one connection with the component's handshake + echo loop, on a fresh port.
/// The thread's result is `Err` on a trap.
pub fn component_server(options: AcceptOptions) -> (SocketAddr, JoinHandle<Result<Outcome, String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let host = host().clone();
    let handle = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().map_err(|e| e.to_string())?;
        let mut session = host.session().map_err(|e| format!("{e:#}"))?;
        let result = match session.accept(tcp, &options).map_err(|e| format!("trap: {e:#}"))? {
            Ok((conn, _)) => session.echo(conn).map_err(|e| format!("trap: {e:#}"))?,
            Err(e) => Err(e),
        };
        let close_code = match &result {
            Err(e) => session.close_code(e).map_err(|e| format!("trap: {e:#}"))?,
            Ok(_) => None,
        };
        Ok(Outcome { result, close_code, peak_memory: session.peak_memory() })
    });
    (addr, handle)
}

/// Serves one connection the way `lowbit-ws-host serve` does ([`serve_connection`]), on a
/// current-thread tokio runtime of its own, on a fresh port. The thread's result is `Err` on
/// a trap.
pub fn serve_one(options: ServeOptions) -> (SocketAddr, JoinHandle<Result<Result<u64, Error>, String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    listener.set_nonblocking(true).expect("nonblocking");
    let handle = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
            let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
            serve_connection(host(), tcp, &options).await.map_err(|e| format!("trap: {e:#}"))
        })
    });
    (addr, handle)
}

/// Serves connections with the native core (accept + echo), one thread each, forever.
pub fn native_server(deflate: bool, limits: Limits) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            std::thread::spawn(move || native_echo(tcp, deflate, limits));
        }
    });
    addr
}

/// The native core's accept + echo loop, with the component's options.
pub fn native_echo(tcp: TcpStream, deflate: bool, limits: Limits) -> lowbit_websockets::Result<u64> {
    use lowbit_websockets::{AcceptOptions, Config, DeflateOptions, OpCode, Role};
    tcp.set_nodelay(true)?;
    let opts = AcceptOptions {
        config: Config::new(Role::Server)
            .max_read_limit(limits.max_read_limit as usize)
            .max_chunk_size(limits.max_chunk_size as usize),
        deflate: deflate.then(DeflateOptions::default),
        ..AcceptOptions::default()
    };
    let (mut conn, _) = lowbit_websockets::accept(tcp, &opts)?;
    let mut buf = Vec::new();
    let mut n = 0;
    loop {
        let (op, payload) = conn.read_message(&mut buf)?;
        if op == OpCode::Close {
            return Ok(n);
        }
        conn.write_message(op, payload)?;
        n += 1;
    }
}

/// The core `Error` variant name a WIT error mirrors (the conformance list speaks core's
/// names).
pub fn wit_kind(e: &Error) -> &'static str {
    match e {
        Error::MessageTooBig(_) => "MessageTooBig",
        Error::ProtocolReservedBits(_) => "ProtocolReservedBits",
        Error::WebsocketClosed => "WebSocketClosed",
        Error::UnexpectedContinuation => "UnexpectedContinuation",
        Error::ExpectedContinuation => "ExpectedContinuation",
        Error::ChunkSizeExceeded(_) => "ChunkSizeExceeded",
        Error::InvalidOpCode(_) => "InvalidOpCode",
        Error::ControlFramePayloadTooLarge(_) => "ControlFramePayloadTooLarge",
        Error::FragmentedControlFrame => "FragmentedControlFrame",
        Error::UnmaskedFrame => "UnmaskedFrame",
        Error::MaskedFrame => "MaskedFrame",
        Error::InvalidPayloadLength => "InvalidPayloadLength",
        Error::InvalidUtf8 => "InvalidUtf8",
        Error::InvalidCompressedData => "InvalidCompressedData",
        Error::InvalidCloseCode(_) => "InvalidCloseCode",
        Error::InvalidClosePayload => "InvalidClosePayload",
        Error::AbnormalClosure => "AbnormalClosure",
        Error::Misuse(_) => "Misuse",
        Error::Io(_) => "Io",
        Error::Handshake(_) => "Handshake",
        Error::Negotiation(_) => "Negotiation",
        Error::Other(_) => "Other",
    }
}

/// The variant name of a core error (`MessageTooBig { limit: 1 }` → `MessageTooBig`).
pub fn core_kind(e: &lowbit_websockets::Error) -> String {
    format!("{e:?}").split(|c: char| !c.is_alphanumeric()).next().unwrap_or_default().to_string()
}

/// Writes a client upgrade request on `tcp` (offering permessage-deflate when `deflate`) and
/// reads the response head; returns the head and any bytes read past it.
pub fn raw_client_handshake(tcp: &mut TcpStream, deflate: bool) -> io::Result<(String, Vec<u8>)> {
    let ext = if deflate { "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" } else { "" };
    write!(
        tcp,
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{ext}\r\n"
    )?;
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = tcp.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        got.extend_from_slice(&chunk[..n]);
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = got.split_off(end + 4);
            return Ok((String::from_utf8_lossy(&got).into_owned(), rest));
        }
    }
}

/// Server frames (unmasked) parsed from `bytes`: `(opcode, payload)` pairs, fragments
/// reassembled. Stops at the first incomplete frame.
pub fn parse_server_frames(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut partial: Option<(u8, Vec<u8>)> = None;
    let mut i = 0;
    while i + 2 <= bytes.len() {
        let (b0, b1) = (bytes[i], bytes[i + 1]);
        let (fin, op) = (b0 & 0x80 != 0, b0 & 0x0f);
        let mut len = (b1 & 0x7f) as usize;
        let mut at = i + 2;
        if len == 126 {
            let Some(b) = bytes.get(at..at + 2) else { break };
            len = u16::from_be_bytes([b[0], b[1]]) as usize;
            at += 2;
        } else if len == 127 {
            let Some(b) = bytes.get(at..at + 8) else { break };
            len = u64::from_be_bytes(b.try_into().expect("8 bytes")) as usize;
            at += 8;
        }
        let Some(payload) = bytes.get(at..at + len) else { break };
        i = at + len;
        if op >= 8 {
            out.push((op, payload.to_vec()));
        } else if op == 0 {
            if let Some((_, p)) = partial.as_mut() {
                p.extend_from_slice(payload);
            }
            if fin {
                out.extend(partial.take());
            }
        } else if fin {
            out.push((op, payload.to_vec()));
        } else {
            partial = Some((op, payload.to_vec()));
        }
    }
    out
}

/// The close code in the first close frame among `frames` (`Some(1005)` for an empty body).
pub fn close_code_of(frames: &[(u8, Vec<u8>)]) -> Option<u16> {
    frames
        .iter()
        .find(|(op, _)| *op == 8)
        .map(|(_, p)| if p.len() >= 2 { u16::from_be_bytes([p[0], p[1]]) } else { 1005 })
}

/// A test whose peer or input cannot be had here: says why and returns, so a developer's
/// machine without it still runs the rest; under `CI=true` it fails instead, so a broken
/// install step cannot turn into a green run.
pub fn skip(why: &str) {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(!ci, "{why}: CI=true, so this test fails rather than skipping");
    eprintln!("{why}: skipping (this fails under CI=true)");
}

/// A Python interpreter with `websockets` installed: `target/py-venv`, created (python3 -m
/// venv + pip install websockets) when missing. `None` when Python is not available.
pub fn python() -> Option<PathBuf> {
    static PY: OnceLock<Option<PathBuf>> = OnceLock::new();
    PY.get_or_init(|| {
        let venv = target_dir().join("py-venv");
        let py = venv.join("bin/python");
        let has_ws = |py: &Path| Command::new(py).args(["-c", "import websockets"]).status().is_ok_and(|s| s.success());
        if !has_ws(&py) {
            Command::new("python3").arg("-m").arg("venv").arg(&venv).status().ok()?;
            Command::new(venv.join("bin/pip")).args(["install", "--quiet", "websockets"]).status().ok()?;
        }
        has_ws(&py).then_some(py)
    })
    .clone()
}
