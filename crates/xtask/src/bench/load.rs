//! The load generator: `connections` WebSocket clients in a closed loop (each has one message
//! in flight: send, wait for the echo, check it byte for byte, send the next), for a fixed time.
//!
//! Design: one blocking thread per connection over the crate's own client
//! (`lowbit_websockets::connect`, then `Conn::write_message` / `Conn::read_message`, which
//! allocate nothing per message once warm). The generator shares the 2 cores with the server,
//! so what matters is the CPU it spends per echo. An epoll event loop (2 threads driving 50
//! connections each with the sans-IO `Encoder`/`Decoder` through `mio`, skipping the `read`
//! that would only say `WouldBlock`) was built and measured against this on the 2-core VM,
//! 2 rounds × 2 s per scenario, both servers: the generator spent the same CPU per echo either
//! way (≈ 9 µs for 20 B, ≈ 13 µs for 16 KiB), because ~90 % of it is the kernel's loopback TCP
//! path and scheduler, which the sender pays whatever the design, and a wake-up from a
//! blocking `read` costs no more than `epoll_wait` and its callbacks. What differed was the
//! noise: with 2 generator threads, other work on the shared machine took 5–73 % of the cores
//! during the windows; with 100 generator threads facing the server's 100, it took 0–2 % in
//! those runs (a heavy neighbour still shows, in the "other" CPU column). Same cost, steadier
//! numbers, fewer lines and no dependency for xtask: this design.
//!
//! What is measured: messages/s is echoes completed during the measured window divided by its
//! length; the latency of a message runs from just before `write_message` to the return of the
//! `read_message` that got its echo (so it includes the client's masking, and with deflate its
//! compression and inflation: the same for every server).

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

use lowbit_websockets::handshake::ClientOptions;
use lowbit_websockets::{Config, ConnectOptions, DeflateOptions, OpCode, Role};

use super::hist::Histogram;
use super::sys::{CpuSample, CpuUse};

/// The client's `max_chunk_size`, hence its read buffer: a 16 KiB echo fits in one read.
const CHUNK: usize = 64 * 1024;
/// A server that stops answering fails the run after this long instead of hanging it.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// One scenario.
pub struct Load {
    pub addr: SocketAddr,
    /// The server process, for its CPU time.
    pub server_pid: u32,
    pub size: usize,
    pub deflate: bool,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

pub struct Outcome {
    pub messages: u64,
    pub elapsed: Duration,
    pub latency: Histogram,
    pub cpu: Option<CpuUse>,
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }
}

#[derive(Default)]
struct Shared {
    phase: AtomicU8,
    failed: AtomicBool,
}

/// The bytes messages are cut from: pseudo-random words, so that deflate sees text-like data
/// (compressible, but not one message repeated verbatim, which context takeover would shrink
/// to a few bytes). Each connection walks through it, one message after the other.
pub fn corpus() -> Arc<Vec<u8>> {
    const WORDS: &str = "the websocket frame message server client \"id\": \"name\": \"value\": true, false, \
                         null, { } [ ], lowbit echo payload mask deflate window status update event price \
                         quantity timestamp user session ok error";
    let words: Vec<&str> = WORDS.split_whitespace().collect();
    let mut out = Vec::with_capacity(1 << 20);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while out.len() < 1 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x.is_multiple_of(5) {
            out.extend_from_slice((x >> 20).to_string().as_bytes());
        } else {
            out.extend_from_slice(words[(x >> 40) as usize % words.len()].as_bytes());
        }
        out.push(if x.is_multiple_of(11) { b'\n' } else { b' ' });
    }
    out.truncate(1 << 20);
    Arc::new(out)
}

/// Runs one scenario: connects, warms up, measures, closes every connection cleanly.
pub fn run(load: &Load, corpus: &Arc<Vec<u8>>) -> Result<Outcome, String> {
    let opts = ConnectOptions {
        request: ClientOptions::new(load.addr.to_string()),
        // Core's default engine (zlib-rs), as the echo server's `--deflate`: the faster one, so
        // the generator takes less of the CPU that the server needs.
        deflate: load.deflate.then(DeflateOptions::default),
        config: Config::new(Role::Client).max_chunk_size(CHUNK),
    };
    let mut conns = Vec::with_capacity(load.connections);
    for i in 0..load.connections {
        let stream = TcpStream::connect(load.addr).map_err(|e| format!("cannot connect to {}: {e}", load.addr))?;
        let setup = stream.set_nodelay(true).and_then(|()| stream.set_read_timeout(Some(IO_TIMEOUT)));
        setup.and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT))).map_err(|e| e.to_string())?;
        let (conn, connected) =
            lowbit_websockets::connect(stream, &opts).map_err(|e| format!("handshake failed: {e}"))?;
        if load.deflate && connected.extensions.is_none() {
            return Err("the server declined permessage-deflate".to_owned());
        }
        // Connections start at different places in the corpus.
        conns.push((conn, (i * 4099) % (corpus.len() - load.size)));
    }

    let shared = Arc::new(Shared::default());
    let mut handles = Vec::with_capacity(conns.len());
    for (mut conn, mut offset) in conns {
        let (mine, corpus, size) = (Arc::clone(&shared), Arc::clone(corpus), load.size);
        // Small stacks: 100 threads, and the connection's buffers are on the heap.
        let spawned = thread::Builder::new().name("loadgen".into()).stack_size(256 * 1024).spawn(move || {
            let shared = &*mine;
            let mut latency = Histogram::new();
            let (mut count, mut buf) = (0u64, Vec::with_capacity(CHUNK));
            let result = loop {
                if shared.phase.load(Relaxed) == STOP || shared.failed.load(Relaxed) {
                    break conn.close().map_err(|e| format!("close handshake failed: {e}"));
                }
                let payload = &corpus[offset..offset + size];
                let sent_at = Instant::now();
                if let Err(e) = conn.write_message(OpCode::Binary, payload) {
                    break Err(format!("write failed: {e}"));
                }
                match conn.read_message(&mut buf) {
                    Ok((OpCode::Binary, echo)) if echo == payload => {}
                    Ok((op, echo)) => break Err(format!("the echo differs: {op:?}, {} bytes", echo.len())),
                    Err(e) => break Err(format!("read failed: {e}")),
                }
                // Counted if it completed inside the window (phase is read after the echo).
                if shared.phase.load(Relaxed) == MEASURE {
                    latency.record(nanos(sent_at.elapsed()));
                    count += 1;
                }
                offset += size;
                if offset + size > corpus.len() {
                    offset = 0;
                }
            };
            if result.is_err() {
                shared.failed.store(true, Relaxed);
            }
            result.map(|()| (count, latency))
        });
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                shared.failed.store(true, Relaxed);
                join(handles)?;
                return Err(format!("cannot start a generator thread: {e}"));
            }
        }
    }
    let window = measure(load, &shared);
    let (messages, latency) = join(handles)?;
    let (elapsed, cpu) = window.ok_or("a generator thread failed")?;
    Ok(Outcome { messages, elapsed, latency, cpu })
}

/// Warm-up, then the measured window; returns its length and the CPU used during it, or
/// `None` when a generator thread failed. Leaves the phase at STOP whatever happens.
fn measure(load: &Load, shared: &Shared) -> Option<(Duration, Option<CpuUse>)> {
    let sleep = |d: Duration| {
        let end = Instant::now() + d;
        while let Some(left) = end.checked_duration_since(Instant::now()).filter(|l| !l.is_zero()) {
            if shared.failed.load(Relaxed) {
                return false;
            }
            thread::sleep(left.min(Duration::from_millis(50)));
        }
        !shared.failed.load(Relaxed)
    };
    debug_assert_eq!(shared.phase.load(Relaxed), WARMUP);
    let result = sleep(load.warmup).then(|| {
        let before = CpuSample::take(load.server_pid);
        shared.phase.store(MEASURE, Relaxed);
        let ok = sleep(load.duration);
        shared.phase.store(STOP, Relaxed);
        let after = CpuSample::take(load.server_pid);
        ok.then(|| (after.at - before.at, after.since(&before)))
    });
    shared.phase.store(STOP, Relaxed);
    result.flatten()
}

type ThreadResult = Result<(u64, Histogram), String>;

fn join(handles: Vec<thread::JoinHandle<ThreadResult>>) -> ThreadResult {
    let mut total = (0, Histogram::new());
    let mut first_error = None;
    for h in handles {
        match h.join() {
            Ok(Ok((n, hist))) => {
                total.0 += n;
                total.1.merge(&hist);
            }
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(_) => {
                first_error.get_or_insert_with(|| "a generator thread panicked".to_owned());
            }
        }
    }
    first_error.map_or(Ok(total), Err)
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}
