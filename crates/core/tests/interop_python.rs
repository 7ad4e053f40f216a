//! Interop with Python `websockets` (pinned below) over loopback, both roles, with and without
//! permessage-deflate: every parameter combination Python can offer or demand, the exact
//! negotiated answer on both sides, and long runs of mixed messages (0 B to 4 MiB, JSON-like
//! text and binary) over context takeover, each echoed and compared byte for byte.
//!
//! The peers are `tests/peers/echo_server.py` and `tests/peers/echo_client.py`. The venv is
//! `$LOWBIT_PY_VENV` when set (as `cargo xtask test` does), else `target/py-venv`, created and
//! filled here on first use (`python3 -m venv` + pip), under a file lock.

use std::collections::HashMap;
use std::env;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Cursor, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use lowbit_websockets::deflate::negotiate::NegotiationError;
use lowbit_websockets::handshake::ClientOptions;
use lowbit_websockets::{AcceptOptions, Config, Conn, ConnectOptions, DeflateOptions, OpCode, READ_LIMIT_LARGE, Role};

mod common;
use common::Rng;

/// The `websockets` release these tests are written against: the latest that installs on
/// Python 3.11 when they were written.
const WEBSOCKETS_VERSION: &str = "17.4";
/// Hang guard for sockets and peer processes; nothing waits on it for correctness.
const GUARD: Duration = Duration::from_secs(120);
const MIB: usize = 1 << 20;

// ---------------------------------------------------------------------------------------------
// The Python environment

fn target_dir() -> PathBuf {
    if let Some(dir) = env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    // target/<profile>/deps/<this test binary>
    let exe = env::current_exe().unwrap();
    exe.ancestors().nth(3).expect("the test binary lives in target/<profile>/deps").to_path_buf()
}

fn websockets_version(python: &Path) -> Option<String> {
    let out = Command::new(python).args(["-c", "import websockets; print(websockets.__version__)"]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn run(cmd: &mut Command) {
    let status = cmd.status().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(status.success(), "{cmd:?} failed: {status}");
}

/// The venv's python, with `websockets` importable (installing it on first use).
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        if let Some(venv) = env::var_os("LOWBIT_PY_VENV") {
            let py = Path::new(&venv).join("bin").join("python");
            let v = websockets_version(&py)
                .unwrap_or_else(|| panic!("LOWBIT_PY_VENV={venv:?} has no python with `websockets` importable"));
            eprintln!("python websockets {v} from LOWBIT_PY_VENV");
            return py;
        }
        let target = target_dir();
        fs::create_dir_all(&target).unwrap();
        let venv = target.join("py-venv");
        let py = venv.join("bin").join("python");
        // Other test binaries (and other checkouts' runs) may be installing at the same time.
        let lock = File::create(target.join("py-venv.lock")).unwrap();
        lock.lock().unwrap();
        if websockets_version(&py).as_deref() != Some(WEBSOCKETS_VERSION) {
            if !py.exists() {
                run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
            }
            run(Command::new(&py)
                .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
                .arg(format!("websockets=={WEBSOCKETS_VERSION}")));
        }
        let v = websockets_version(&py).expect("websockets installed");
        assert_eq!(v, WEBSOCKETS_VERSION);
        eprintln!("python websockets {v} from {}", venv.display());
        py
    })
}

fn peer_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("peers").join(name)
}

/// Kills a peer process (by its id) that outlives `GUARD`: a hang guard, never a timer the
/// tests rely on.
struct Watchdog(Option<mpsc::Sender<()>>);

impl Watchdog {
    fn new(pid: u32, limit: Duration) -> Self {
        let (tx, rx) = mpsc::channel::<()>();
        thread::spawn(move || {
            if rx.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout) {
                eprintln!("peer {pid} hung: killing it");
                let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            }
        });
        Self(Some(tx))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.take();
    }
}

// ---------------------------------------------------------------------------------------------
// Message plans and content

/// One message of a plan: kind `t` (JSON-like text), `b` (random bytes) or `r` (repetitive
/// bytes), its size, the seed of its content, and a fragment size (0 = one piece).
#[derive(Debug, Clone, Copy)]
struct Msg {
    kind: char,
    size: usize,
    seed: u64,
    frag: usize,
}

const WORDS: [&str; 10] = ["alpha", "beta", "lowbit", "socket", "frame", "déjà", "über", "naïve", "漢字", "ß"];

fn content(m: &Msg) -> (OpCode, Vec<u8>) {
    let mut r = Rng(m.seed);
    match m.kind {
        't' => {
            let mut s = String::with_capacity(m.size + 200);
            while s.len() < m.size {
                let tags: Vec<String> =
                    (0..r.below(4)).map(|_| format!("\"{}\"", WORDS[r.below(10) as usize])).collect();
                s.push_str(&format!(
                    "{{\"id\":{},\"name\":\"{} {}\",\"active\":{},\"score\":{}.{},\"tags\":[{}]}},",
                    r.below(1_000_000_000),
                    WORDS[r.below(10) as usize],
                    WORDS[r.below(10) as usize],
                    r.below(2) == 0,
                    r.below(1000),
                    r.below(10_000),
                    tags.join(",")
                ));
            }
            let mut end = m.size;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
            while s.len() < m.size {
                s.push(' ');
            }
            (OpCode::Text, s.into_bytes())
        }
        'b' => {
            let mut v = Vec::with_capacity(m.size + 8);
            while v.len() < m.size {
                v.extend_from_slice(&r.next().to_le_bytes());
            }
            v.truncate(m.size);
            (OpCode::Binary, v)
        }
        'r' => {
            let pattern: Vec<u8> = (0..1 + r.below(64)).map(|_| r.next() as u8).collect();
            let mut v: Vec<u8> = pattern.iter().copied().cycle().take(m.size).collect();
            for _ in 0..m.size / 1000 {
                let i = r.below(m.size as u64) as usize;
                v[i] = r.next() as u8;
            }
            (OpCode::Binary, v)
        }
        k => panic!("unknown kind {k}"),
    }
}

/// A few messages, most above the 1 KiB compression threshold, one repeated so the second
/// copy leans on the window of the first.
fn light_plan(seed: u64) -> Vec<Msg> {
    let m = |kind, size, s: u64, frag| Msg { kind, size, seed: seed * 100 + s, frag };
    vec![
        m('t', 0, 1, 0),
        m('t', 1500, 2, 0),
        m('b', 3000, 3, 0),
        m('r', 40_000, 4, 0),
        m('t', 20_000, 5, 4096),
        m('t', 1500, 2, 0),
    ]
}

/// At least 100 messages from 0 B to 4 MiB: text and binary, some fragmented.
fn heavy_plan(seed: u64) -> Vec<Msg> {
    let mut r = Rng(seed);
    (0..110)
        .map(|i| {
            let kind = ['t', 'b', 'r'][r.below(3) as usize];
            let size = if i % 55 == 54 {
                4 * MIB
            } else {
                match r.below(10) {
                    0 => 0,
                    1..=4 => r.below(1024) as usize,
                    5..=7 => 1024 + r.below(32 * 1024) as usize,
                    8 => 32 * 1024 + r.below(256 * 1024) as usize,
                    _ => 256 * 1024 + r.below(768 * 1024) as usize,
                }
            };
            let frag = if r.below(6) == 0 { [1000, 4096, 16_384][r.below(3) as usize] } else { 0 };
            Msg { kind, size, seed: seed << 16 | i, frag }
        })
        .collect()
}

fn plan_json(plan: &[Msg]) -> String {
    let items: Vec<String> =
        plan.iter().map(|m| format!("[\"{}\",{},{},{}]", m.kind, m.size, m.seed, m.frag)).collect();
    format!("[{}]", items.join(","))
}

// ---------------------------------------------------------------------------------------------
// Parameters

/// Python's `client_max_window_bits`: not offered, offered without a value, or a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmwb {
    Absent,
    Any,
    Bits(u8),
}

/// One `ClientPerMessageDeflateFactory` of the Python client.
#[derive(Debug, Clone, Copy)]
struct PyOffer {
    snct: bool,
    cnct: bool,
    smwb: Option<u8>,
    cmwb: Cmwb,
    mem: Option<u8>,
}

impl PyOffer {
    fn json(&self) -> String {
        let opt = |v: Option<u8>| v.map_or("null".to_owned(), |b| b.to_string());
        let cmwb = match self.cmwb {
            Cmwb::Absent => "null".to_owned(),
            Cmwb::Any => "true".to_owned(),
            Cmwb::Bits(b) => b.to_string(),
        };
        format!(
            "{{\"snct\":{},\"cnct\":{},\"smwb\":{},\"cmwb\":{},\"mem\":{}}}",
            self.snct,
            self.cnct,
            opt(self.smwb),
            cmwb,
            opt(self.mem)
        )
    }

    /// Python's default (`compression="deflate"`): memLevel 5, client_max_window_bits offered.
    fn python_default() -> Self {
        Self { snct: false, cnct: false, smwb: None, cmwb: Cmwb::Any, mem: Some(5) }
    }
}

/// What our server must answer to `offer` (RFC 7692 §7.1, and our policy: we honor
/// `server_max_window_bits` only for windows our engine writes, add our own no-context-takeover
/// demands, and echo a `client_max_window_bits` value only when the client named one).
fn our_answer(offer: &PyOffer, ours: &DeflateOptions) -> Option<String> {
    if let Some(b) = offer.smwb
        && !ours.supports_window_bits(b)
    {
        return None;
    }
    let mut s = String::from("permessage-deflate");
    if offer.snct || ours.server_no_context_takeover {
        s.push_str("; server_no_context_takeover");
    }
    if offer.cnct || ours.client_no_context_takeover {
        s.push_str("; client_no_context_takeover");
    }
    if let Some(b) = offer.smwb {
        s.push_str(&format!("; server_max_window_bits={b}"));
    }
    if let Cmwb::Bits(b) = offer.cmwb {
        s.push_str(&format!("; client_max_window_bits={b}"));
    }
    Some(s)
}

/// What the Python client then uses: remote (our) and local no-context-takeover and windows.
fn python_client_view(offer: &PyOffer, answer: &Option<String>) -> String {
    let Some(a) = answer else { return "-".to_owned() };
    let has = |p: &str| a.split("; ").any(|x| x == p);
    let value = |p: &str| a.split("; ").find_map(|x| x.strip_prefix(p)).map(|v| v.parse::<u8>().unwrap());
    let remote_bits = value("server_max_window_bits=").unwrap_or(15);
    let local_bits = value("client_max_window_bits=").or(match offer.cmwb {
        Cmwb::Bits(b) => Some(b),
        _ => None,
    });
    format!(
        "{},{},{},{}",
        has("server_no_context_takeover") as u8,
        has("client_no_context_takeover") as u8,
        remote_bits,
        local_bits.unwrap_or(15)
    )
}

/// One configuration of the Python server's `ServerPerMessageDeflateFactory`.
#[derive(Debug, Clone, Copy)]
struct PyServerCfg {
    deflate: bool,
    snct: bool,
    cnct: bool,
    smwb: Option<u8>,
    cmwb: Option<u8>,
    require_cmwb: bool,
    mem: Option<u8>,
}

impl PyServerCfg {
    const NONE: Self =
        Self { deflate: true, snct: false, cnct: false, smwb: None, cmwb: None, require_cmwb: false, mem: None };
    /// Python's default (`compression="deflate"`).
    const DEFAULT: Self = Self { smwb: Some(12), cmwb: Some(12), mem: Some(5), ..Self::NONE };

    fn query(&self) -> String {
        let opt = |v: Option<u8>| v.map_or(String::new(), |b| b.to_string());
        format!(
            "/?deflate={}&snct={}&cnct={}&smwb={}&cmwb={}&req={}&mem={}",
            self.deflate as u8,
            self.snct as u8,
            self.cnct as u8,
            opt(self.smwb),
            opt(self.cmwb),
            self.require_cmwb as u8,
            opt(self.mem)
        )
    }

    /// What the Python server answers to our client's offer (websockets' rules, which follow
    /// RFC 7692 §7.1). Our client offers a bare `client_max_window_bits` only when its engine
    /// can write with a smaller window (zlib-rs; miniz_oxide writes a 32 KiB window only).
    fn answer(&self, ours: &DeflateOptions) -> Option<String> {
        let offers_cmwb = ours.supports_window_bits(9);
        if !self.deflate || (self.cmwb.is_some() && self.require_cmwb && !offers_cmwb) {
            return None;
        }
        let smwb = match (self.smwb, ours.server_max_window_bits) {
            (None, asked) => asked,
            (Some(mine), None) => Some(mine),
            (Some(mine), Some(asked)) => Some(asked.min(mine)),
        };
        if smwb == Some(8) {
            return None; // websockets declines: zlib cannot write with an 8-bit window
        }
        let mut s = String::from("permessage-deflate");
        if self.snct || ours.server_no_context_takeover {
            s.push_str("; server_no_context_takeover");
        }
        if self.cnct || ours.client_no_context_takeover {
            s.push_str("; client_no_context_takeover");
        }
        if let Some(b) = smwb {
            s.push_str(&format!("; server_max_window_bits={b}"));
        }
        if let (true, Some(b)) = (offers_cmwb, self.cmwb) {
            s.push_str(&format!("; client_max_window_bits={b}"));
        }
        Some(s)
    }
}

/// The miniz_oxide engine, for the variants about it: it writes a 32 KiB window only, so it
/// declines every smaller window a peer asks for, and never offers `client_max_window_bits`.
/// Everything else runs on the default engine, zlib-rs.
fn miniz() -> DeflateOptions {
    DeflateOptions { engine: lowbit_websockets::deflate::Engine::Miniz, ..DeflateOptions::default() }
}

fn deflate_options(snct: bool, cnct: bool, smwb: Option<u8>, level: u8, threshold: usize) -> DeflateOptions {
    DeflateOptions {
        server_no_context_takeover: snct,
        client_no_context_takeover: cnct,
        server_max_window_bits: smwb,
        level,
        threshold,
        ..DeflateOptions::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Our server against the Python client

/// How one connection to our server went: the extension answer sent and the echo count.
type Served = (Option<String>, Result<usize, String>);

/// Results as the connection threads send them, and those received but not asked for yet.
type Results = (mpsc::Receiver<(String, Served)>, HashMap<String, Served>);

/// Our echo server: a listener and a thread per connection, results by request path.
struct OurServer {
    addr: SocketAddr,
    results: Mutex<Results>,
}

/// The options both of our servers accept with.
fn server_options(deflate: Option<DeflateOptions>, max_chunk: usize) -> AcceptOptions {
    AcceptOptions {
        config: Config::new(Role::Server).max_read_limit(READ_LIMIT_LARGE).max_chunk_size(max_chunk),
        deflate,
        ..AcceptOptions::default()
    }
}

impl OurServer {
    fn start(deflate: Option<DeflateOptions>, max_chunk: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::channel();
        let opts = server_options(deflate, max_chunk);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (opts, tx) = (opts.clone(), tx.clone());
                thread::spawn(move || {
                    stream.set_read_timeout(Some(GUARD)).unwrap();
                    let (mut conn, accepted) = match lowbit_websockets::accept(stream, &opts) {
                        Ok(x) => x,
                        Err(e) => panic!("handshake with the Python client failed: {e}"),
                    };
                    let mut buf = Vec::new();
                    let mut n = 0;
                    let result = loop {
                        match conn.read_message(&mut buf) {
                            Ok((OpCode::Close, _)) => break Ok(n),
                            Ok((op, payload)) => {
                                if let Err(e) = conn.write_message(op, payload) {
                                    break Err(e.to_string());
                                }
                                n += 1;
                            }
                            Err(e) => break Err(e.to_string()),
                        }
                    };
                    let _ = tx.send((accepted.path.clone(), (accepted.extensions.clone(), result)));
                });
            }
        });
        Self { addr, results: Mutex::new((rx, HashMap::new())) }
    }

    /// [`OurServer::start`] on the async face: `accept_async`, then `AsyncConn`, every
    /// connection a task on one current-thread tokio runtime.
    #[cfg(feature = "tokio")]
    fn start_async(deflate: Option<DeflateOptions>, max_chunk: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let (tx, rx) = mpsc::channel();
        let opts = server_options(deflate, max_chunk);
        thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((stream, _)) = listener.accept().await else { continue };
                    let (opts, tx) = (opts.clone(), tx.clone());
                    tokio::spawn(async move {
                        let (mut conn, accepted) = match lowbit_websockets::accept_async(stream, &opts).await {
                            Ok(x) => x,
                            Err(e) => panic!("handshake with the Python client failed: {e}"),
                        };
                        let mut buf = Vec::new();
                        let mut n = 0;
                        let result = loop {
                            match conn.read_message(&mut buf).await {
                                Ok((OpCode::Close, _)) => break Ok(n),
                                Ok((op, payload)) => {
                                    if let Err(e) = conn.write_message(op, payload).await {
                                        break Err(e.to_string());
                                    }
                                    n += 1;
                                }
                                Err(e) => break Err(e.to_string()),
                            }
                        };
                        let _ = tx.send((accepted.path.clone(), (accepted.extensions.clone(), result)));
                    });
                }
            });
        });
        Self { addr, results: Mutex::new((rx, HashMap::new())) }
    }

    /// The connection with request path `path`, once it has ended.
    fn served(&self, path: &str) -> Served {
        let mut g = self.results.lock().unwrap();
        let (rx, seen) = &mut *g;
        loop {
            if let Some(s) = seen.remove(path) {
                return s;
            }
            let (p, s) = rx.recv_timeout(GUARD).unwrap_or_else(|_| panic!("no result for {path}"));
            seen.insert(p, s);
        }
    }
}

/// One connection of the Python client: its path, offers (`None`: no deflate) and plan.
struct PyConn {
    path: String,
    offers: Option<Vec<PyOffer>>,
    plan: Vec<Msg>,
}

/// What the Python client printed for one connection.
#[derive(Debug)]
struct PyReport {
    answer: Option<String>,
    negotiated: String,
    messages: usize,
}

static PLAN_FILES: AtomicUsize = AtomicUsize::new(0);

/// Runs the Python echo client over `conns`, one after another, against `addr`.
fn run_python_client(addr: SocketAddr, conns: &[PyConn]) -> Vec<PyReport> {
    let items: Vec<String> = conns
        .iter()
        .map(|c| {
            let offers = c.offers.as_ref().map_or("null".to_owned(), |os| {
                format!("[{}]", os.iter().map(PyOffer::json).collect::<Vec<_>>().join(","))
            });
            format!("{{\"path\":\"{}\",\"offers\":{},\"messages\":{}}}", c.path, offers, plan_json(&c.plan))
        })
        .collect();
    let dir = target_dir().join("py-plans");
    fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("plan-{}-{}.json", std::process::id(), PLAN_FILES.fetch_add(1, Ordering::Relaxed)));
    fs::write(&file, format!("{{\"connections\":[{}]}}", items.join(","))).unwrap();
    let mut child = Command::new(python())
        .arg(peer_script("echo_client.py"))
        .arg(format!("ws://{addr}"))
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let watchdog = Watchdog::new(child.id(), GUARD);
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let status = child.wait().unwrap();
    drop(watchdog);
    let _ = fs::remove_file(&file);
    assert!(status.success() && out.ends_with("DONE\n"), "Python client failed ({status}):\n{out}");
    let reports: Vec<PyReport> = out
        .lines()
        .filter(|l| l.starts_with("CONN\t"))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            PyReport {
                answer: (f[2] != "-").then(|| f[2].to_owned()),
                negotiated: f[3].to_owned(),
                messages: f[4].parse().unwrap(),
            }
        })
        .collect();
    assert_eq!(reports.len(), conns.len());
    reports
}

/// Checks every connection: both sides saw the expected answer, Python the expected
/// parameters, and every message was echoed.
fn check_python_client_run(server: &OurServer, conns: &[PyConn], expected: &[Option<String>], reports: &[PyReport]) {
    for ((c, want), r) in conns.iter().zip(expected).zip(reports) {
        let (sent, result) = server.served(&c.path);
        assert_eq!(&sent, want, "{}: our answer to {:?}", c.path, c.offers);
        assert_eq!(&r.answer, want, "{}: the answer Python read", c.path);
        if let Some(offers) = &c.offers {
            // The offer that matched (the first one whose rules the answer meets).
            let view = offers.iter().map(|o| python_client_view(o, want)).next().unwrap();
            if offers.len() == 1 {
                assert_eq!(r.negotiated, view, "{}: parameters Python uses", c.path);
            }
        } else {
            assert_eq!(r.negotiated, "-");
        }
        assert_eq!(r.messages, c.plan.len());
        assert_eq!(result, Ok(c.plan.len()), "{}: our server's echo loop", c.path);
    }
}

/// Every combination Python's client factory can offer: no context takeover either way, any
/// `server_max_window_bits` request (8–15), `client_max_window_bits` absent, bare or 9–15.
fn all_python_offers() -> Vec<PyOffer> {
    let mut v = Vec::new();
    for snct in [false, true] {
        for cnct in [false, true] {
            for smwb in std::iter::once(None).chain((8..=15).map(Some)) {
                for cmwb in [Cmwb::Absent, Cmwb::Any].into_iter().chain((9..=15).map(Cmwb::Bits)) {
                    v.push(PyOffer { snct, cnct, smwb, cmwb, mem: None });
                }
            }
        }
    }
    v
}

#[test]
fn python_client_every_offer_against_our_server() {
    let offers = all_python_offers();
    assert_eq!(offers.len(), 2 * 2 * 9 * 9);
    // The offers each engine declines, for server_max_window_bits alone: zlib-rs writes with
    // 9 to 15 bits, so only 8 (zlib cannot write with a 256-byte window: it raises a raw 8 to
    // 9); miniz_oxide writes a 32 KiB window only, so 8 to 14.
    for (ours, declines) in [(DeflateOptions::default(), 2 * 2 * 9), (miniz(), 2 * 2 * 7 * 9)] {
        let server = OurServer::start(Some(ours), 0);
        let conns: Vec<PyConn> = offers
            .iter()
            .enumerate()
            .map(|(i, o)| PyConn { path: format!("/offer/{i}"), offers: Some(vec![*o]), plan: light_plan(i as u64) })
            .collect();
        let expected: Vec<Option<String>> = offers.iter().map(|o| our_answer(o, &ours)).collect();
        let reports = run_python_client(server.addr, &conns);
        check_python_client_run(&server, &conns, &expected, &reports);
        let declined = expected.iter().filter(|e| e.is_none()).count();
        assert_eq!(declined, declines, "{:?}", ours.engine);
        let smwb = |o: &PyOffer| o.smwb.is_some_and(|b| b < ours.engine.min_window_bits());
        assert!(offers.iter().zip(&expected).all(|(o, e)| e.is_none() == smwb(o)), "{:?}", ours.engine);
        let mut seen: Vec<&str> = expected.iter().flatten().map(String::as_str).collect();
        seen.sort_unstable();
        seen.dedup();
        eprintln!("{:?}: {} offers, {declined} declined, {} distinct answers", ours.engine, offers.len(), seen.len());
    }
}

/// The async face against every offer the Python client can make: the same answers, and every
/// message echoed, as the blocking server.
#[cfg(feature = "tokio")]
#[test]
fn python_client_every_offer_against_our_async_server() {
    let offers = all_python_offers();
    let ours = DeflateOptions::default();
    let server = OurServer::start_async(Some(ours), 0);
    let conns: Vec<PyConn> = offers
        .iter()
        .enumerate()
        .map(|(i, o)| PyConn { path: format!("/offer/{i}"), offers: Some(vec![*o]), plan: light_plan(i as u64) })
        .collect();
    let expected: Vec<Option<String>> = offers.iter().map(|o| our_answer(o, &ours)).collect();
    let reports = run_python_client(server.addr, &conns);
    check_python_client_run(&server, &conns, &expected, &reports);
    assert_eq!(expected.iter().filter(|e| e.is_none()).count(), 2 * 2 * 9, "declined offers");
}

#[test]
fn python_client_against_our_server_policies_and_fallback() {
    // Our server demands no context takeover both ways, whatever the client asks.
    let strict = deflate_options(true, true, None, 1, 1024);
    let server = OurServer::start(Some(strict), 0);
    let offers = [PyOffer::python_default(), PyOffer { cmwb: Cmwb::Bits(10), ..PyOffer::python_default() }];
    let conns: Vec<PyConn> = offers
        .iter()
        .enumerate()
        .map(|(i, o)| PyConn { path: format!("/strict/{i}"), offers: Some(vec![*o]), plan: light_plan(50 + i as u64) })
        .collect();
    let expected: Vec<_> = offers.iter().map(|o| our_answer(o, &strict)).collect();
    assert_eq!(
        expected[0].as_deref(),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
    );
    let reports = run_python_client(server.addr, &conns);
    check_python_client_run(&server, &conns, &expected, &reports);

    // Two offers, the first asking for a window we cannot write: the second is accepted. That
    // is a 256-byte window for zlib-rs, and anything below 32 KiB for miniz_oxide.
    for (ours, smwb) in [(DeflateOptions::default(), 8), (miniz(), 10)] {
        let server = OurServer::start(Some(ours), 0);
        let first = PyOffer { smwb: Some(smwb), ..PyOffer::python_default() };
        let conns = vec![PyConn {
            path: "/fallback".into(),
            offers: Some(vec![first, PyOffer::python_default()]),
            plan: light_plan(60),
        }];
        let reports = run_python_client(server.addr, &conns);
        check_python_client_run(&server, &conns, &[Some("permessage-deflate".into())], &reports);
        assert_eq!(reports[0].negotiated, "0,0,15,15");
    }

    // Deflate off on our side: Python's offer is declined and everything goes plain.
    let server = OurServer::start(None, 0);
    let conns = vec![
        PyConn { path: "/off/offered".into(), offers: Some(vec![PyOffer::python_default()]), plan: light_plan(70) },
        PyConn { path: "/off/plain".into(), offers: None, plan: light_plan(71) },
    ];
    let reports = run_python_client(server.addr, &conns);
    check_python_client_run(&server, &conns, &[None, None], &reports);
}

#[test]
fn python_client_long_runs_against_our_server() {
    let runs: Vec<(DeflateOptions, Option<PyOffer>, usize)> = vec![
        // Python's defaults: context takeover both ways, memLevel 5.
        (DeflateOptions::default(), Some(PyOffer::python_default()), 0),
        // Python compresses with a 512-byte window, memLevel 1; we write 64 KiB frames.
        (
            DeflateOptions::default(),
            Some(PyOffer { cmwb: Cmwb::Bits(9), mem: Some(1), ..PyOffer::python_default() }),
            64 * 1024,
        ),
        // No context takeover either way, window 12 for Python, memLevel 9.
        (
            DeflateOptions::default(),
            Some(PyOffer { snct: true, cnct: true, smwb: None, cmwb: Cmwb::Bits(12), mem: Some(9) }),
            0,
        ),
        // Python limits us to a 4 KiB window over context takeover, and we compress everything,
        // the empty messages too (threshold 0): Python's zlib inflates with exactly that window.
        (deflate_options(false, false, None, 1, 0), Some(PyOffer { smwb: Some(12), ..PyOffer::python_default() }), 0),
        // Python asks for our full window and resets its own compressor; we compress
        // everything (threshold 0) at level 9.
        (
            deflate_options(false, false, None, 9, 0),
            Some(PyOffer { cnct: true, smwb: Some(15), ..PyOffer::python_default() }),
            0,
        ),
        // We store (level 0) and reset per message by our own policy.
        (deflate_options(true, false, None, 0, 0), Some(PyOffer::python_default()), 0),
        // The miniz_oxide engine over Python's defaults, compressing everything.
        (DeflateOptions { threshold: 0, ..miniz() }, Some(PyOffer::python_default()), 0),
        // No deflate at all.
        (DeflateOptions::default(), None, 0),
    ];
    for (i, (ours, offer, chunk)) in runs.into_iter().enumerate() {
        let server = OurServer::start(Some(ours), chunk);
        let conns = vec![PyConn {
            path: format!("/long/{i}"),
            offers: offer.map(|o| vec![o]),
            plan: heavy_plan(1000 + i as u64),
        }];
        let expected = [offer.and_then(|o| our_answer(&o, &ours))];
        let reports = run_python_client(server.addr, &conns);
        check_python_client_run(&server, &conns, &expected, &reports);
        eprintln!("long run {i}: {:?} -> {:?} ({})", offer, expected[0], reports[0].negotiated);
    }
}

// ---------------------------------------------------------------------------------------------
// Our client against the Python server

/// The Python echo server, running until dropped (its stdin closes).
struct PyServer {
    child: Child,
    stdin: Option<ChildStdin>,
    port: u16,
    _watchdog: Watchdog,
}

impl PyServer {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(python())
            .arg(peer_script("echo_server.py"))
            .arg("0")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let watchdog = Watchdog::new(child.id(), 5 * GUARD);
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line
            .strip_prefix("LISTENING ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("Python server did not start: {line:?}"));
        Self { stdin: child.stdin.take(), child, port, _watchdog: watchdog }
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        self.stdin.take(); // EOF: the server shuts down
        let _ = self.child.wait();
    }
}

/// Runs `plan` through the Python echo server at `path` and returns the answer we read.
fn our_client_run(port: u16, path: &str, ours: Option<DeflateOptions>, chunk: usize, plan: &[Msg]) -> Option<String> {
    try_our_client_run(port, path, ours, chunk, plan).unwrap()
}

/// [`our_client_run`], with a failed handshake returned.
fn try_our_client_run(
    port: u16,
    path: &str,
    ours: Option<DeflateOptions>,
    chunk: usize,
    plan: &[Msg],
) -> lowbit_websockets::Result<Option<String>> {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(GUARD)).unwrap();
    stream.set_nodelay(true).unwrap();
    let opts = ConnectOptions {
        request: ClientOptions::new(format!("127.0.0.1:{port}")).path(path.to_owned()),
        config: Config::new(Role::Client).max_read_limit(READ_LIMIT_LARGE).max_chunk_size(chunk),
        deflate: ours,
    };
    let (mut conn, connected): (Conn<TcpStream>, _) = lowbit_websockets::connect(stream, &opts)?;
    let compressed = connected.extensions.is_some();
    let mut buf = Vec::new();
    for (i, m) in plan.iter().enumerate() {
        let (op, data) = content(m);
        if m.frag > 0 {
            conn.stream_message(op, m.frag, &mut Cursor::new(&data)).unwrap();
        } else {
            conn.write_message(op, &data).unwrap();
        }
        let (got_op, rsv, got) = conn.read_message_ext(&mut buf).unwrap();
        assert_eq!(got_op, op, "{path}: message {i}");
        assert!(got == &data[..], "{path}: echo of message {i} ({:?}, {} bytes) differs", m.kind, m.size);
        // websockets compresses every data message once deflate is negotiated.
        assert_eq!(rsv, if compressed { 0x40 } else { 0 }, "{path}: message {i} RSV bits");
    }
    conn.close().unwrap();
    Ok(connected.extensions)
}

/// Every combination of the Python server's factory: no context takeover either way,
/// `server_max_window_bits` unset or 9–15, `client_max_window_bits` unset or 8–15, and the
/// requirement that the client offers `client_max_window_bits` (which ours never does).
fn all_python_server_configs() -> Vec<PyServerCfg> {
    let mut v = Vec::new();
    for snct in [false, true] {
        for cnct in [false, true] {
            for smwb in std::iter::once(None).chain((9..=15).map(Some)) {
                for cmwb in std::iter::once(None).chain((8..=15).map(Some)) {
                    v.push(PyServerCfg { snct, cnct, smwb, cmwb, ..PyServerCfg::NONE });
                }
            }
        }
    }
    for cmwb in [8, 12, 15] {
        v.push(PyServerCfg { cmwb: Some(cmwb), require_cmwb: true, ..PyServerCfg::NONE });
    }
    v.push(PyServerCfg { deflate: false, ..PyServerCfg::NONE });
    v
}

#[test]
fn our_client_against_every_python_server_config() {
    let server = PyServer::start(&[]);
    let configs = all_python_server_configs();
    assert_eq!(configs.len(), 2 * 2 * 8 * 9 + 4);
    let plan = light_plan(7);
    // zlib-rs offers client_max_window_bits, so a server that requires the offer accepts it,
    // and only deflate off declines; but a server limiting our window to 8 bits (2 * 2 * 8
    // configurations, and one that requires the offer) gets a handshake we fail: zlib cannot
    // write with a 256-byte window, and RFC 7692 §7.1.2.2 allows us no larger one.
    // miniz_oxide offers no client_max_window_bits: the three servers that require it and
    // deflate off decline, and no limit on our window is ever answered.
    for (ours, declines, failures) in [(DeflateOptions::default(), 1, 2 * 2 * 8 + 1), (miniz(), 4, 0)] {
        let (mut declined, mut failed) = (0, 0);
        for cfg in &configs {
            let want = cfg.answer(&ours);
            let got = try_our_client_run(server.port, &cfg.query(), Some(ours), 0, &plan);
            if want.as_deref().is_some_and(|a| a.ends_with("; client_max_window_bits=8")) {
                assert!(
                    matches!(&got, Err(lowbit_websockets::Error::Negotiation(NegotiationError::Unsupported(_)))),
                    "{:?} against {cfg:?}: {got:?}",
                    ours.engine
                );
                failed += 1;
                continue;
            }
            declined += want.is_none() as usize;
            assert_eq!(got.unwrap(), want, "{:?}: answer of {cfg:?}", ours.engine);
        }
        assert_eq!((declined, failed), (declines, failures), "{:?}: declined and failed handshakes", ours.engine);
    }
}

#[test]
fn our_client_offers_against_python_servers() {
    let server = PyServer::start(&[]);
    let plan = light_plan(8);
    let mut n = 0;
    for cfg in [PyServerCfg::DEFAULT, PyServerCfg::NONE] {
        for snct in [false, true] {
            for cnct in [false, true] {
                for smwb in std::iter::once(None).chain((8..=15).map(Some)) {
                    let ours = deflate_options(snct, cnct, smwb, 1, 1024);
                    let want = cfg.answer(&ours);
                    let got = our_client_run(server.port, &cfg.query(), Some(ours), 0, &plan);
                    assert_eq!(got, want, "our {snct}/{cnct}/{smwb:?} against {cfg:?}");
                    n += 1;
                }
            }
        }
    }
    assert_eq!(n, 2 * 2 * 2 * 9);
    // Command-line defaults (not the query string) configure the server as well.
    let plain = PyServer::start(&["--no-deflate"]);
    assert_eq!(our_client_run(plain.port, "/", Some(DeflateOptions::default()), 0, &plan), None);
    let tuned = PyServer::start(&["--snct", "--smwb", "10", "--mem", "2"]);
    assert_eq!(
        our_client_run(tuned.port, "/", Some(DeflateOptions::default()), 0, &plan).as_deref(),
        Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=10")
    );
}

#[test]
fn our_client_long_runs_against_python_server() {
    let server = PyServer::start(&[]);
    let runs: Vec<(PyServerCfg, Option<DeflateOptions>, usize)> = vec![
        // Python's default server: both sides compress with a 4 KiB window, Python at memLevel 5.
        (PyServerCfg::DEFAULT, Some(DeflateOptions::default()), 64 * 1024),
        // Full windows, context takeover both ways.
        (PyServerCfg::NONE, Some(DeflateOptions::default()), 64 * 1024),
        // A 512-byte window from Python at memLevel 1, over context takeover.
        (PyServerCfg { smwb: Some(9), mem: Some(1), ..PyServerCfg::NONE }, Some(DeflateOptions::default()), 16 * 1024),
        // No context takeover either way, asked by us; we compress everything at level 9.
        (
            PyServerCfg { mem: Some(9), ..PyServerCfg::NONE },
            Some(deflate_options(true, true, Some(11), 9, 0)),
            64 * 1024,
        ),
        // Python demands no context takeover both ways; we store (level 0).
        (
            PyServerCfg { snct: true, cnct: true, ..PyServerCfg::NONE },
            Some(deflate_options(false, false, None, 0, 0)),
            64 * 1024,
        ),
        // The miniz_oxide engine against Python's default server (which then leaves our window
        // alone: miniz_oxide does not offer client_max_window_bits).
        (PyServerCfg::DEFAULT, Some(miniz()), 64 * 1024),
        // No deflate.
        (PyServerCfg::NONE, None, 64 * 1024),
    ];
    for (i, (cfg, ours, chunk)) in runs.into_iter().enumerate() {
        let want = ours.and_then(|o| cfg.answer(&o));
        let got = our_client_run(server.port, &cfg.query(), ours, chunk, &heavy_plan(2000 + i as u64));
        assert_eq!(got, want, "long run {i}");
        eprintln!("long run {i}: {cfg:?} -> {got:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// The zlib-rs engine: windows below 15 bits, both directions

mod zlib_rs {
    use lowbit_websockets::deflate::Engine;

    use super::*;

    fn zlib(mut d: DeflateOptions) -> DeflateOptions {
        d.engine = Engine::ZlibRs;
        d
    }

    /// Python asks our server for every window: 9–15 are honored (Python's zlib inflates with
    /// exactly that window, so any longer distance from us would fail there), 8 is declined.
    #[test]
    fn python_client_every_window_against_our_zlib_rs_server() {
        let ours = zlib(DeflateOptions::default());
        let server = OurServer::start(Some(ours), 0);
        let offers: Vec<PyOffer> = all_python_offers().into_iter().filter(|o| !o.snct && !o.cnct).collect();
        let mut conns: Vec<PyConn> = offers
            .iter()
            .enumerate()
            .map(|(i, o)| PyConn { path: format!("/z/{i}"), offers: Some(vec![*o]), plan: light_plan(300 + i as u64) })
            .collect();
        let mut expected: Vec<Option<String>> = offers.iter().map(|o| our_answer(o, &ours)).collect();
        assert_eq!(expected.iter().filter(|e| e.is_none()).count(), 9, "only server_max_window_bits=8 is declined");
        // Smallest windows both ways, over context takeover, for a long run.
        let tight = PyOffer { snct: false, cnct: false, smwb: Some(9), cmwb: Cmwb::Bits(9), mem: Some(1) };
        conns.push(PyConn { path: "/z/long".into(), offers: Some(vec![tight]), plan: heavy_plan(3000) });
        expected.push(Some("permessage-deflate; server_max_window_bits=9; client_max_window_bits=9".into()));
        let reports = run_python_client(server.addr, &conns);
        check_python_client_run(&server, &conns, &expected, &reports);
    }

    /// Our zlib-rs client offers `client_max_window_bits`; the Python server limits it to
    /// 9–15 and we compress within it. A limit of 8 cannot be honored (zlib writes 9 at
    /// least), so that handshake fails, as it does for Python's own client.
    #[test]
    fn our_zlib_rs_client_every_window_against_python_server() {
        let server = PyServer::start(&[]);
        let ours = zlib(DeflateOptions::default());
        let plan = light_plan(9);
        for smwb in [None, Some(9), Some(12), Some(15)] {
            for cmwb in std::iter::once(None).chain((9..=15).map(Some)) {
                let cfg = PyServerCfg { smwb, cmwb, ..PyServerCfg::NONE };
                let want = cfg.answer(&ours);
                assert!(
                    cmwb.is_none()
                        || want.as_deref().unwrap().ends_with(&format!("client_max_window_bits={}", cmwb.unwrap()))
                );
                assert_eq!(our_client_run(server.port, &cfg.query(), Some(ours), 0, &plan), want, "{cfg:?}");
            }
        }
        let eight = PyServerCfg { cmwb: Some(8), ..PyServerCfg::NONE };
        let r = try_our_client_run(server.port, &eight.query(), Some(ours), 0, &plan);
        assert!(matches!(r, Err(lowbit_websockets::Error::Negotiation(_))), "{r:?}");
        // Python wants windows of 9 bits both ways: a long run over context takeover.
        let tight = PyServerCfg { smwb: Some(9), cmwb: Some(9), mem: Some(1), ..PyServerCfg::NONE };
        let got = our_client_run(server.port, &tight.query(), Some(ours), 64 * 1024, &heavy_plan(3001));
        assert_eq!(got.as_deref(), Some("permessage-deflate; server_max_window_bits=9; client_max_window_bits=9"));
    }
}
