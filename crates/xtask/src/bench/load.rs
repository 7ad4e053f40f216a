//! The load generator: `connections` WebSocket clients in a closed loop (each has one message
//! in flight: send, wait for the echo, check it, send the next), for a fixed time.
//!
//! Why this design. The machine has 2 cores and the server under test needs them too, so the
//! generator has to spend as little CPU per message as possible. A thread per connection
//! (100 blocking threads) pays a sleep and a wake-up, two context switches, for every echo;
//! a few threads each driving their share of the connections with epoll (through `mio`) pay
//! one `epoll_wait` for a whole batch of ready connections, plus the `read` and the `write`
//! that any client pays. The protocol work is the crate's own sans-IO codec: the client
//! [`Encoder`] masks each message with a fresh key into a reused buffer and the [`Decoder`]
//! unmasks nothing (server frames are unmasked) and hands the echo out without a copy when it
//! fits the 64 KiB read buffer; no allocation per message. The handshake is the ordinary
//! blocking `lowbit_websockets::connect`. `--blocking` switches to the thread-per-connection
//! generator over the blocking `Conn`, to compare (see [`run_blocking`]).
//!
//! What is measured: messages/s is echoes completed during the measured window divided by
//! its length; the latency of a message is from just before it is encoded to the moment its
//! whole echo is decoded (so it includes the client's masking, and with deflate its
//! compression and inflation: the same for every server).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

use lowbit_websockets::deflate::negotiate::client_verify;
use lowbit_websockets::deflate::{Compressor, DeflateConfig, DeflateOptions, MinizCompressor, SYNC_TAIL};
use lowbit_websockets::{CloseCode, Config, ConnectOptions, Decoder, Encoder, Event, OpCode, Role};
use mio::{Events, Interest, Poll, Registry, Token};

use super::hist::Histogram;
use super::sys::{CpuSample, CpuUse};

/// The generator's read buffer (the decoder's input buffer): one 16 KiB echo fits in one read.
const READ_BUFFER: usize = 64 * 1024;
/// How long the generator waits for the echoes in flight when the window closes, and for each
/// close handshake.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
const RSV1: u8 = 0x40;

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
    pub threads: usize,
    pub blocking: bool,
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
/// (compressible, but not a message repeated verbatim, which context takeover would shrink to
/// a few bytes). Each connection walks through it, one message after the other.
pub fn corpus() -> Arc<Vec<u8>> {
    const WORDS: &[&str] = &[
        "the", "websocket", "frame", "message", "server", "client", "\"id\":", "\"name\":", "\"value\":", "true,",
        "false,", "null,", "{", "}", "[", "],", "lowbit", "echo", "payload", "mask", "deflate", "window", "status",
        "update", "event", "price", "quantity", "timestamp", "user", "session", "ok", "error",
    ];
    let mut out = Vec::with_capacity(1 << 20);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while out.len() < 1 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x % 5 == 0 {
            out.extend_from_slice((x >> 20).to_string().as_bytes());
        } else {
            out.extend_from_slice(WORDS[(x >> 40) as usize % WORDS.len()].as_bytes());
        }
        out.push(if x % 11 == 0 { b'\n' } else { b' ' });
    }
    out.truncate(1 << 20);
    Arc::new(out)
}

/// Runs one scenario: connects, warms up, measures, closes every connection cleanly.
pub fn run(load: &Load, corpus: &Arc<Vec<u8>>) -> Result<Outcome, String> {
    if load.blocking {
        return run_blocking(load, corpus);
    }
    let threads = load.threads.clamp(1, load.connections.max(1));
    let mut groups: Vec<Vec<Client>> = (0..threads).map(|_| Vec::new()).collect();
    for i in 0..load.connections {
        let start = (i * 4099) % (corpus.len() - load.size);
        groups[i % threads].push(Client::connect(load.addr, load.deflate, start)?);
    }
    let shared = Arc::new(Shared::default());
    let mut handles = Vec::new();
    for group in groups {
        let (mine, corpus, size) = (Arc::clone(&shared), Arc::clone(corpus), load.size);
        let spawned = thread::Builder::new().name("loadgen".into()).spawn(move || {
            let result = drive(group, &mine, &corpus, size);
            if result.is_err() {
                mine.failed.store(true, Relaxed);
            }
            result
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
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            if shared.failed.load(Relaxed) {
                return false;
            }
            thread::sleep(left.min(Duration::from_millis(50)));
        }
        !shared.failed.load(Relaxed)
    };
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

fn join(handles: Vec<thread::JoinHandle<Result<(u64, Histogram), String>>>) -> Result<(u64, Histogram), String> {
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

/// One generator thread: an event loop over its connections.
fn drive(mut clients: Vec<Client>, shared: &Shared, corpus: &[u8], size: usize) -> Result<(u64, Histogram), String> {
    let io = |e: io::Error| format!("generator: {e}");
    let mut poll = Poll::new().map_err(io)?;
    for (i, c) in clients.iter_mut().enumerate() {
        poll.registry().register(&mut c.stream, Token(i), Interest::READABLE).map_err(io)?;
    }
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(corpus, size, poll.registry(), Token(i))?;
    }
    let mut events = Events::with_capacity(256);
    let mut latency = Histogram::new();
    let mut count = 0u64;
    let mut deadline = None;
    loop {
        if shared.failed.load(Relaxed) {
            return Err("stopped: another generator thread failed".to_owned());
        }
        if shared.phase.load(Relaxed) == STOP {
            let waiting = clients.iter().filter(|c| c.in_flight).count();
            if waiting == 0 {
                break;
            }
            if Instant::now() > *deadline.get_or_insert_with(|| Instant::now() + DRAIN_TIMEOUT) {
                return Err(format!("{waiting} connections got no echo within {DRAIN_TIMEOUT:?}"));
            }
        }
        match poll.poll(&mut events, Some(Duration::from_millis(20))) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        }
        for ev in events.iter() {
            let token = ev.token();
            let c = &mut clients[token.0];
            if ev.is_writable() && c.written < c.out.len() {
                c.flush(poll.registry(), token)?;
            }
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                let Some(done) = c.receive(corpus, size)? else { continue };
                let phase = shared.phase.load(Relaxed);
                if phase == MEASURE {
                    latency.record(nanos(done - c.sent_at));
                    count += 1;
                }
                if phase != STOP {
                    c.next_offset(corpus.len(), size);
                    c.send(corpus, size, poll.registry(), token)?;
                }
            }
        }
    }
    drop(poll);
    // The close handshake: all the close frames first, then all the answers.
    let mut open = Vec::with_capacity(clients.len());
    for c in clients {
        open.push(c.send_close()?);
    }
    for (stream, dec) in open {
        await_close(stream, dec)?;
    }
    Ok((count, latency))
}

/// Client-side permessage-deflate for the sans-IO path: what `Conn` does on write, in short.
struct Deflate {
    compressor: MinizCompressor,
    reset_each: bool,
    threshold: usize,
    z: Vec<u8>,
}

struct Client {
    stream: mio::net::TcpStream,
    dec: Decoder,
    enc: Encoder,
    deflate: Option<Deflate>,
    /// The encoded message in flight, and how much of it the socket has taken.
    out: Vec<u8>,
    written: usize,
    /// The corpus offset of the message in flight.
    offset: usize,
    sent_at: Instant,
    in_flight: bool,
    want_write: bool,
}

/// The blocking handshake with the crate's client; returns the stream, the negotiated
/// deflate settings and a decoder holding any bytes read past the handshake.
fn handshake(addr: SocketAddr, deflate: bool) -> Result<(TcpStream, Option<DeflateConfig>, Decoder), String> {
    let stream = TcpStream::connect(addr).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let offer = DeflateOptions::default();
    let opts = ConnectOptions {
        host: addr.to_string(),
        deflate: deflate.then_some(offer),
        config: Config::new(Role::Client).max_chunk_size(READ_BUFFER),
        ..ConnectOptions::default()
    };
    let (conn, connected) =
        lowbit_websockets::connect(stream, &opts).map_err(|e| format!("handshake with {addr} failed: {e}"))?;
    let negotiated = match deflate {
        true => Some(
            client_verify(connected.extensions.as_deref(), &offer)
                .map_err(|e| format!("deflate negotiation failed: {e:?}"))?
                .ok_or("the server declined permessage-deflate")?,
        ),
        false => None,
    };
    let mut dec = Decoder::new(&Config::new(Role::Client).max_chunk_size(READ_BUFFER));
    dec.set_deflate(negotiated.as_ref());
    if dec.feed(&connected.leftover) < connected.leftover.len() {
        return Err("the server sent more than a buffer of frames before any request".to_owned());
    }
    Ok((conn.into_inner(), negotiated, dec))
}

impl Client {
    fn connect(addr: SocketAddr, deflate: bool, offset: usize) -> Result<Self, String> {
        let (stream, negotiated, dec) = handshake(addr, deflate)?;
        stream.set_nonblocking(true).map_err(|e| e.to_string())?;
        Ok(Self {
            stream: mio::net::TcpStream::from_std(stream),
            dec,
            enc: Encoder::new(Role::Client),
            deflate: negotiated.map(|c| Deflate {
                compressor: MinizCompressor::new(c.level),
                reset_each: c.compress_no_context_takeover,
                threshold: c.threshold,
                z: Vec::new(),
            }),
            out: Vec::with_capacity(READ_BUFFER),
            written: 0,
            offset,
            sent_at: Instant::now(),
            in_flight: false,
            want_write: false,
        })
    }

    fn next_offset(&mut self, len: usize, size: usize) {
        self.offset += size;
        if self.offset + size > len {
            self.offset = 0;
        }
    }

    /// Encodes the next message and writes as much of it as the socket takes.
    fn send(&mut self, corpus: &[u8], size: usize, registry: &Registry, token: Token) -> Result<(), String> {
        self.sent_at = Instant::now();
        let payload = &corpus[self.offset..self.offset + size];
        self.out.clear();
        self.written = 0;
        let encoded = match &mut self.deflate {
            Some(d) if size >= d.threshold => {
                d.z.clear();
                d.compressor.compress(payload, &mut d.z).map_err(|e| e.to_string())?;
                if d.z.ends_with(&SYNC_TAIL) {
                    d.z.truncate(d.z.len() - SYNC_TAIL.len());
                }
                if d.reset_each {
                    d.compressor.reset();
                }
                self.enc.encode_frame(true, RSV1, OpCode::Binary, &d.z, &mut self.out)
            }
            _ => self.enc.encode_frame(true, 0, OpCode::Binary, payload, &mut self.out),
        };
        encoded.map_err(|e| e.to_string())?;
        self.in_flight = true;
        self.flush(registry, token)
    }

    /// Writes what the socket takes; waits for writability (edge-triggered) only when it is
    /// full, so the common case costs no extra epoll registration change.
    fn flush(&mut self, registry: &Registry, token: Token) -> Result<(), String> {
        while self.written < self.out.len() {
            match self.stream.write(&self.out[self.written..]) {
                Ok(0) => return Err("the socket took no bytes".to_owned()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !self.want_write {
                        registry
                            .reregister(&mut self.stream, token, Interest::READABLE | Interest::WRITABLE)
                            .map_err(|e| e.to_string())?;
                        self.want_write = true;
                    }
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("write failed: {e}")),
            }
        }
        if self.want_write {
            registry.reregister(&mut self.stream, token, Interest::READABLE).map_err(|e| e.to_string())?;
            self.want_write = false;
        }
        Ok(())
    }

    /// Reads what has arrived; returns when the echo of the message in flight was completed
    /// (after checking it is exactly the message sent).
    fn receive(&mut self, corpus: &[u8], size: usize) -> Result<Option<Instant>, String> {
        let mut done = None;
        loop {
            let buf = self.dec.read_buf();
            let room = buf.len();
            let n = match self.stream.read(buf) {
                Ok(0) => return Err("the server closed the connection".to_owned()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("read failed: {e}")),
            };
            self.dec.advance(n);
            loop {
                match self.dec.poll_message() {
                    Ok(None) => break,
                    Ok(Some(Event::Message { op, payload, .. })) => {
                        let now = Instant::now();
                        if !self.in_flight {
                            return Err("a message arrived that was not an echo".to_owned());
                        }
                        if op != OpCode::Binary || payload != &corpus[self.offset..self.offset + size] {
                            return Err(format!("the echo differs from the message ({op:?}, {} bytes)", payload.len()));
                        }
                        self.in_flight = false;
                        done = Some(now);
                    }
                    Ok(Some(Event::Ping(_) | Event::Pong(_))) => {
                        return Err("an echo server sent a ping or pong".to_owned());
                    }
                    Ok(Some(Event::Close { frame, .. })) => {
                        return Err(format!("the server closed the connection ({:?})", frame.code));
                    }
                    Err(e) => return Err(format!("bad frame from the server: {e}")),
                }
            }
            // A short read emptied the socket. Readiness is edge-triggered and the next bytes to
            // arrive raise a new edge, so the read() that would only say WouldBlock is skipped
            // (tokio does the same); it would be one more system call per message.
            if n < room {
                break;
            }
        }
        Ok(done)
    }

    fn send_close(self) -> Result<(TcpStream, Decoder), String> {
        let Self { stream, dec, mut enc, mut out, .. } = self;
        let mut stream = TcpStream::from(stream);
        let setup = stream.set_nonblocking(false).and_then(|()| stream.set_read_timeout(Some(DRAIN_TIMEOUT)));
        setup.map_err(|e| e.to_string())?;
        out.clear();
        enc.encode_close(CloseCode::NORMAL_CLOSURE, "", &mut out).map_err(|e| e.to_string())?;
        stream.write_all(&out).map_err(|e| format!("cannot send the close frame: {e}"))?;
        Ok((stream, dec))
    }
}

/// Reads until the server's close frame; then the socket is dropped (the server closes the
/// TCP connection first, as RFC 6455 §7.1.1 prefers, or sees our FIN).
fn await_close(mut stream: TcpStream, mut dec: Decoder) -> Result<(), String> {
    loop {
        match dec.poll_message() {
            Ok(Some(Event::Close { .. })) => return Ok(()),
            Ok(Some(_)) => continue,
            Ok(None) => {}
            Err(e) => return Err(format!("bad frame from the server while closing: {e}")),
        }
        match stream.read(dec.read_buf()) {
            Ok(0) => return Err("the server hung up without answering our close".to_owned()),
            Ok(n) => dec.advance(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("no close frame from the server: {e}")),
        }
    }
}

/// The alternative generator: one blocking thread per connection, over the crate's `Conn`.
/// Kept to check the choice above (`cargo xtask bench --blocking`), not for the table.
pub fn run_blocking(load: &Load, corpus: &Arc<Vec<u8>>) -> Result<Outcome, String> {
    let shared = Arc::new(Shared::default());
    let mut conns = Vec::new();
    for i in 0..load.connections {
        let opts = ConnectOptions {
            host: load.addr.to_string(),
            deflate: load.deflate.then(DeflateOptions::default),
            config: Config::new(Role::Client).max_chunk_size(READ_BUFFER),
            ..ConnectOptions::default()
        };
        let stream = TcpStream::connect(load.addr).map_err(|e| format!("cannot connect to {}: {e}", load.addr))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (conn, _) = lowbit_websockets::connect(stream, &opts).map_err(|e| format!("handshake failed: {e}"))?;
        conns.push((conn, (i * 4099) % (corpus.len() - load.size)));
    }
    let mut handles = Vec::new();
    for (mut conn, mut offset) in conns {
        let (mine, corpus, size) = (Arc::clone(&shared), Arc::clone(corpus), load.size);
        let spawned = thread::Builder::new().stack_size(256 * 1024).spawn(move || {
            let shared = &*mine;
            let mut latency = Histogram::new();
            let (mut count, mut buf) = (0u64, Vec::new());
            let result = loop {
                let phase = shared.phase.load(Relaxed);
                if phase == STOP || shared.failed.load(Relaxed) {
                    break conn.close().map_err(|e| format!("close failed: {e}"));
                }
                let sent_at = Instant::now();
                let payload = &corpus[offset..offset + size];
                if let Err(e) = conn.write_message(OpCode::Binary, payload) {
                    break Err(format!("write failed: {e}"));
                }
                match conn.read_message(&mut buf) {
                    Ok((OpCode::Binary, echo)) if echo == payload => {}
                    Ok((op, echo)) => break Err(format!("bad echo ({op:?}, {} bytes)", echo.len())),
                    Err(e) => break Err(format!("read failed: {e}")),
                }
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
