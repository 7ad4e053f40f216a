//! Codec benchmarks: lowbit-websockets side by side with `tungstenite` 0.30 and
//! `fastwebsockets` 0.10, in the same run, on the same bytes.
//!
//! Groups (each has one function per library, so criterion's report lines them up):
//!
//! - `unmask/64KiB`: XOR-unmask a 64 KiB buffer in place.
//! - `decode_text/{16B,1KiB,64KiB,1MiB}`: server role, a pre-encoded buffer of N masked TEXT
//!   messages is replayed through each library's reader; every message is unmasked and its
//!   UTF-8 validated. Every library copies the bytes out of the same immutable source buffer
//!   (as a socket read would), so rewinding is an O(1) position reset and nothing is
//!   re-encoded inside the timed loop.
//! - `encode_{server,client}/{16B,1KiB,64KiB}`: N text messages encoded per iteration and
//!   written to a sink that copies them into a reused buffer (a stand-in for a socket, whose
//!   kernel copy every library pays once; a vectored write of a borrowed payload pays only
//!   that one).
//! - `echo/{16B,64KiB}`: client encodes (masked) → server decodes → server re-encodes
//!   (unmasked) → client decodes, over in-memory pipes.
//!
//! `lowbit` is the sans-IO codec (`Decoder`/`Encoder`), `lowbit_conn` the blocking `Conn` over
//! the same in-memory stream the other two read from.
//!
//! Run with `cargo bench -p lowbit-websockets --bench codec`; `BENCHMARKS.md` at the repo root
//! says how the ratio table is made from criterion's estimates (`benches/ratios.py`).

use std::cell::{Cell, RefCell};
use std::hint::black_box;
use std::io::{self, IoSlice, Read, Write};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lowbit_websockets::frame::Header;
use lowbit_websockets::mask::{apply_mask, copy_masked};
use lowbit_websockets::{Config, Conn, Decoder, Encoder, Event, OpCode, READ_LIMIT_LARGE, Role};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, Utf8Bytes};

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// A chat-style JSON line, about 90% ASCII: the kind of text a WebSocket carries. Repeated
/// and cut on a character boundary to the wanted length, so every size is valid UTF-8 with
/// multi-byte characters all the way through (no validator gets a pure-ASCII fast path).
const PATTERN: &str =
    "{\"user\":\"zoë\",\"text\":\"hello wörld, see you at 10:30 — ok?\",\"ts\":1718000000,\"tags\":[\"chat\",\"π\"]}\n";

fn text(len: usize) -> &'static str {
    let mut s = String::with_capacity(len);
    'fill: loop {
        for c in PATTERN.chars() {
            if s.len() + c.len_utf8() > len {
                break 'fill;
            }
            s.push(c);
        }
    }
    while s.len() < len {
        s.push(' ');
    }
    assert_eq!(s.len(), len);
    // Leaked once per size so tungstenite can take it as `Utf8Bytes::from_static` (no copy).
    Box::leak(s.into_boxed_str())
}

/// `n` masked single-frame TEXT messages (client → server), each with its own mask key.
fn encode_masked(payload: &[u8], n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut seed = 0x9e37_79b9_u32;
    for _ in 0..n {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let key = seed.to_le_bytes();
        let h = Header { is_final: true, rsv: 0, op: OpCode::Text, mask: Some(key), payload_len: payload.len() as u64 };
        let mut head = [0u8; 14];
        let hl = h.encode(&mut head);
        out.extend_from_slice(&head[..hl]);
        let at = out.len();
        out.resize(at + payload.len(), 0);
        copy_masked(&mut out[at..], payload, key, 0);
    }
    out
}

struct Size {
    name: &'static str,
    len: usize,
    /// Messages per timed iteration.
    n: usize,
}

const fn size(name: &'static str, len: usize, n: usize) -> Size {
    Size { name, len, n }
}

/// Small messages are reported per message, large ones per byte.
fn throughput(s: &Size) -> Throughput {
    if s.len <= 1024 { Throughput::Elements(s.n as u64) } else { Throughput::Bytes((s.len * s.n) as u64) }
}

fn server_config() -> Config {
    Config::new(Role::Server).max_read_limit(READ_LIMIT_LARGE)
}

fn tung_config() -> WebSocketConfig {
    WebSocketConfig::default().max_message_size(Some(64 << 20)).max_frame_size(Some(64 << 20))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("runtime")
}

// ---------------------------------------------------------------------------------------------
// In-memory streams
// ---------------------------------------------------------------------------------------------

/// Replays an immutable pre-encoded buffer (rewound by resetting `pos`); writes are counted
/// and dropped. Sync and async, so all three libraries read the very same way.
/// The read position is shared (`Rc<Cell>`) because `FragmentCollector` has no `get_mut`:
/// every library is rewound the same way, through the handle `Replay::new` returns.
struct Replay {
    data: Rc<[u8]>,
    pos: Rc<Cell<usize>>,
    written: usize,
}

impl Replay {
    fn new(data: &Rc<[u8]>) -> (Self, Rc<Cell<usize>>) {
        let pos = Rc::new(Cell::new(0));
        (Self { data: data.clone(), pos: pos.clone(), written: 0 }, pos)
    }

    fn take(&mut self, room: usize) -> &[u8] {
        let at = self.pos.get();
        let k = room.min(self.data.len() - at);
        self.pos.set(at + k);
        &self.data[at..at + k]
    }
}

impl Read for Replay {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let src = self.take(buf.len());
        let k = src.len();
        buf[..k].copy_from_slice(src);
        Ok(k)
    }
}

impl Write for Replay {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written += black_box(buf).len();
        Ok(buf.len())
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let n = bufs.iter().map(|b| black_box(&**b).len()).sum();
        self.written += n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsyncRead for Replay {
    fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let src = this.take(buf.remaining());
        buf.put_slice(src);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Replay {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(self.get_mut().write(buf))
    }
    fn poll_write_vectored(self: Pin<&mut Self>, _: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Poll::Ready(self.get_mut().write_vectored(bufs))
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// One direction of an in-memory connection: bytes appended by one end, read by the other.
#[derive(Default)]
struct Pipe {
    buf: Vec<u8>,
    pos: usize,
}

/// One end of an in-memory connection.
struct End {
    rx: Rc<RefCell<Pipe>>,
    tx: Rc<RefCell<Pipe>>,
}

fn pipe_pair() -> (End, End) {
    let a = Rc::new(RefCell::new(Pipe::default()));
    let b = Rc::new(RefCell::new(Pipe::default()));
    (End { rx: a.clone(), tx: b.clone() }, End { rx: b, tx: a })
}

impl End {
    fn read_into(&mut self, out: &mut [u8]) -> usize {
        let mut p = self.rx.borrow_mut();
        let k = out.len().min(p.buf.len() - p.pos);
        out[..k].copy_from_slice(&p.buf[p.pos..p.pos + k]);
        p.pos += k;
        if p.pos == p.buf.len() {
            p.buf.clear();
            p.pos = 0;
        }
        k
    }
}

impl Read for End {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self.read_into(out) {
            0 => Err(io::ErrorKind::WouldBlock.into()),
            k => Ok(k),
        }
    }
}

impl Write for End {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx.borrow_mut().buf.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut p = self.tx.borrow_mut();
        let mut n = 0;
        for b in bufs {
            p.buf.extend_from_slice(b);
            n += b.len();
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsyncRead for End {
    fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut p = this.rx.borrow_mut();
        let k = buf.remaining().min(p.buf.len() - p.pos);
        assert!(k > 0 || buf.remaining() == 0, "read from an empty pipe: the bench would hang");
        buf.put_slice(&p.buf[p.pos..p.pos + k]);
        p.pos += k;
        if p.pos == p.buf.len() {
            p.buf.clear();
            p.pos = 0;
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for End {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(self.get_mut().write(buf))
    }
    fn poll_write_vectored(self: Pin<&mut Self>, _: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Poll::Ready(self.get_mut().write_vectored(bufs))
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

// ---------------------------------------------------------------------------------------------
// Unmask
// ---------------------------------------------------------------------------------------------

/// tungstenite 0.30's `protocol::frame::mask::apply_mask` (= `apply_mask_fast32`), verbatim:
/// the module is private, and every public path to it (`Frame::format`, the read path) adds
/// copies and allocation. `fastwebsockets::unmask` is the same algorithm compiled in that crate.
#[inline]
fn tungstenite_apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    #[inline]
    fn fallback(buf: &mut [u8], mask: [u8; 4]) {
        for (i, byte) in buf.iter_mut().enumerate() {
            *byte ^= mask[i & 3];
        }
    }
    let mask_u32 = u32::from_ne_bytes(mask);
    // SAFETY: u32 has no invalid bit patterns; this is tungstenite's own code.
    let (prefix, words, suffix) = unsafe { buf.align_to_mut::<u32>() };
    fallback(prefix, mask);
    let head = prefix.len() & 3;
    let mask_u32 = if head > 0 {
        if cfg!(target_endian = "big") {
            mask_u32.rotate_left(8 * head as u32)
        } else {
            mask_u32.rotate_right(8 * head as u32)
        }
    } else {
        mask_u32
    };
    for word in words.iter_mut() {
        *word ^= mask_u32;
    }
    fallback(suffix, mask_u32.to_ne_bytes());
}

fn bench_unmask(c: &mut Criterion) {
    const LEN: usize = 64 * 1024;
    let key = [0x12, 0x34, 0x56, 0x78];
    let mut g = c.benchmark_group("unmask/64KiB");
    g.throughput(Throughput::Bytes(LEN as u64));
    // A payload sits right after its header: start 8 bytes into the buffer (2 + 2 length + 4
    // key), as a 64 KiB masked frame's payload does in every library's read buffer.
    let mut buf = vec![0xa5u8; LEN + 8];
    g.bench_function("lowbit", |b| b.iter(|| apply_mask(black_box(&mut buf[8..]), black_box(key), 0)));
    g.bench_function("tungstenite", |b| b.iter(|| tungstenite_apply_mask(black_box(&mut buf[8..]), black_box(key))));
    g.bench_function("fastwebsockets", |b| b.iter(|| fastwebsockets::unmask(black_box(&mut buf[8..]), black_box(key))));
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// Decode + unmask + UTF-8 validate (server role)
// ---------------------------------------------------------------------------------------------

/// Reads exactly `n` messages from `src` through the sans-IO decoder, as a socket loop would
/// (read into `read_buf`, `advance`, poll until `None`). Returns the payload bytes seen.
fn lowbit_decode(dec: &mut Decoder, src: &[u8], n: usize) -> usize {
    let (mut pos, mut got, mut bytes) = (0, 0, 0);
    while got < n {
        match dec.poll_message() {
            Ok(Some(Event::Message { op: OpCode::Text, payload, .. })) => {
                bytes += black_box(payload).len();
                got += 1;
            }
            Ok(Some(e)) => panic!("unexpected event {e:?}"),
            Ok(None) => {
                let room = dec.read_buf();
                let k = room.len().min(src.len() - pos);
                assert!(k > 0, "ran out of input");
                room[..k].copy_from_slice(&src[pos..pos + k]);
                dec.advance(k);
                pos += k;
            }
            Err(e) => panic!("{e}"),
        }
    }
    bytes
}

fn lowbit_conn_decode(conn: &mut Conn<Replay>, buf: &mut Vec<u8>, n: usize) -> usize {
    let mut bytes = 0;
    for _ in 0..n {
        let (op, payload) = conn.read_message(buf).expect("read");
        debug_assert_eq!(op, OpCode::Text);
        bytes += black_box(payload).len();
    }
    bytes
}

fn tung_decode(ws: &mut tungstenite::WebSocket<Replay>, n: usize) -> usize {
    let mut bytes = 0;
    for _ in 0..n {
        match ws.read().expect("read") {
            Message::Text(t) => bytes += black_box(t.as_str()).len(),
            m => panic!("unexpected {m:?}"),
        }
    }
    bytes
}

type FastReader = fastwebsockets::FragmentCollector<Replay>;

fn fast_decode(rt: &tokio::runtime::Runtime, ws: &mut FastReader, n: usize) -> usize {
    rt.block_on(async {
        let mut bytes = 0;
        for _ in 0..n {
            let f = ws.read_frame().await.expect("read");
            assert!(f.opcode == fastwebsockets::OpCode::Text);
            bytes += black_box(&*f.payload).len();
        }
        bytes
    })
}

fn bench_decode(c: &mut Criterion) {
    let rt = runtime();
    for s in [size("16B", 16, 1000), size("1KiB", 1024, 200), size("64KiB", 64 << 10, 16), size("1MiB", 1 << 20, 4)] {
        let payload = text(s.len);
        let src: Rc<[u8]> = encode_masked(payload.as_bytes(), s.n).into();
        let expect = s.len * s.n;
        let mut g = c.benchmark_group(format!("decode_text/{}", s.name));
        g.throughput(throughput(&s));

        let mut dec = Decoder::new(&server_config());
        assert_eq!(lowbit_decode(&mut dec, &src, s.n), expect);
        g.bench_function("lowbit", |b| b.iter(|| lowbit_decode(&mut dec, &src, s.n)));

        // The same with a 128 KiB read buffer (tungstenite's default size; `Config`'s default
        // is 4 KiB): a 64 KiB frame then fits and is unmasked and validated where it lies.
        let mut dec = Decoder::new(&server_config().max_chunk_size(128 << 10));
        assert_eq!(lowbit_decode(&mut dec, &src, s.n), expect);
        g.bench_function("lowbit_rb128k", |b| b.iter(|| lowbit_decode(&mut dec, &src, s.n)));

        let (stream, pos) = Replay::new(&src);
        let mut conn = Conn::with_config(stream, server_config());
        let mut buf = Vec::new();
        assert_eq!(lowbit_conn_decode(&mut conn, &mut buf, s.n), expect);
        assert_eq!(buf, payload.as_bytes());
        g.bench_function("lowbit_conn", |b| {
            b.iter(|| {
                pos.set(0);
                lowbit_conn_decode(&mut conn, &mut buf, s.n)
            })
        });

        let (stream, pos) = Replay::new(&src);
        let mut ws =
            tungstenite::WebSocket::from_raw_socket(stream, tungstenite::protocol::Role::Server, Some(tung_config()));
        assert_eq!(tung_decode(&mut ws, s.n), expect);
        g.bench_function("tungstenite", |b| {
            b.iter(|| {
                pos.set(0);
                tung_decode(&mut ws, s.n)
            })
        });

        let (stream, pos) = Replay::new(&src);
        let ws = fastwebsockets::WebSocket::after_handshake(stream, fastwebsockets::Role::Server);
        let mut fw = fastwebsockets::FragmentCollector::new(ws);
        assert_eq!(fast_decode(&rt, &mut fw, s.n), expect);
        g.bench_function("fastwebsockets", |b| {
            b.iter(|| {
                pos.set(0);
                fast_decode(&rt, &mut fw, s.n)
            })
        });
        g.finish();
    }
}

// ---------------------------------------------------------------------------------------------
// Encode (server role: unmasked; client role: masked)
// ---------------------------------------------------------------------------------------------

/// Where encoded bytes go: a socket stand-in that copies what it is given into a reused
/// scratch buffer, as the kernel copies a `write`/`writev` into the socket buffer. Without that
/// copy, a vectored write of a borrowed payload (fastwebsockets above 1 KiB) would touch no
/// payload byte at all and time nothing.
struct Sink {
    scratch: Vec<u8>,
    written: usize,
}

const SINK_WINDOW: usize = 256 << 10;

impl Sink {
    fn new() -> Self {
        Self { scratch: Vec::with_capacity(2 * SINK_WINDOW), written: 0 }
    }

    fn put(&mut self, b: &[u8]) {
        if self.scratch.len() + b.len() > SINK_WINDOW {
            self.scratch.clear();
        }
        self.scratch.extend_from_slice(b);
        self.written += b.len();
    }
}

impl Read for Sink {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.put(buf);
        Ok(buf.len())
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        bufs.iter().for_each(|b| self.put(b));
        Ok(bufs.iter().map(|b| b.len()).sum())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsyncRead for Sink {
    fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, _: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Poll::Pending
    }
}

impl AsyncWrite for Sink {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(self.get_mut().write(buf))
    }
    fn poll_write_vectored(self: Pin<&mut Self>, _: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Poll::Ready(self.get_mut().write_vectored(bufs))
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn lowbit_encode(enc: &mut Encoder, out: &mut Vec<u8>, sink: &mut Sink, payload: &[u8], n: usize) {
    for _ in 0..n {
        out.clear();
        enc.encode_frame(true, 0, OpCode::Text, black_box(payload), out).expect("encode");
        sink.write_all(out).expect("sink");
    }
}

fn lowbit_conn_encode(conn: &mut Conn<Sink>, payload: &[u8], n: usize) {
    for _ in 0..n {
        conn.write_message(OpCode::Text, black_box(payload)).expect("write");
    }
}

fn tung_encode(ws: &mut tungstenite::WebSocket<Sink>, payload: &'static str, n: usize) {
    for _ in 0..n {
        ws.write(Message::Text(Utf8Bytes::from_static(black_box(payload)))).expect("write");
    }
    ws.flush().expect("flush");
}

fn fast_encode(rt: &tokio::runtime::Runtime, ws: &mut fastwebsockets::WebSocket<Sink>, payload: &[u8], n: usize) {
    rt.block_on(async {
        for _ in 0..n {
            let frame = fastwebsockets::Frame::text(fastwebsockets::Payload::Borrowed(black_box(payload)));
            ws.write_frame(frame).await.expect("write");
        }
    })
}

fn bench_encode(c: &mut Criterion) {
    let rt = runtime();
    for (role, group) in [(Role::Server, "encode_server"), (Role::Client, "encode_client")] {
        for s in [size("16B", 16, 1000), size("1KiB", 1024, 200), size("64KiB", 64 << 10, 16)] {
            let payload = text(s.len);
            let mut g = c.benchmark_group(format!("{group}/{}", s.name));
            g.throughput(throughput(&s));
            let head = if role == Role::Client { 4 } else { 0 }
                + if s.len < 126 {
                    2
                } else if s.len <= 0xffff {
                    4
                } else {
                    10
                };
            let wire = (head + s.len) * s.n;

            let mut enc = Encoder::new(role);
            let mut out = Vec::new();
            let mut sink = Sink::new();
            lowbit_encode(&mut enc, &mut out, &mut sink, payload.as_bytes(), s.n);
            assert_eq!(sink.written, wire);
            g.bench_function("lowbit", |b| {
                b.iter(|| lowbit_encode(&mut enc, &mut out, &mut sink, payload.as_bytes(), s.n))
            });

            // max_chunk_size = the message size, so Conn writes one frame like the others.
            let config = Config::new(role).max_chunk_size(s.len.max(4096));
            let mut conn = Conn::with_config(Sink::new(), config);
            lowbit_conn_encode(&mut conn, payload.as_bytes(), s.n);
            assert_eq!(conn.get_ref().written, wire);
            g.bench_function("lowbit_conn", |b| b.iter(|| lowbit_conn_encode(&mut conn, payload.as_bytes(), s.n)));

            let trole = if role == Role::Client {
                tungstenite::protocol::Role::Client
            } else {
                tungstenite::protocol::Role::Server
            };
            let mut ws = tungstenite::WebSocket::from_raw_socket(Sink::new(), trole, Some(tung_config()));
            tung_encode(&mut ws, payload, s.n);
            assert_eq!(ws.get_ref().written, wire);
            g.bench_function("tungstenite", |b| b.iter(|| tung_encode(&mut ws, payload, s.n)));

            let frole = if role == Role::Client { fastwebsockets::Role::Client } else { fastwebsockets::Role::Server };
            let mut fw = fastwebsockets::WebSocket::after_handshake(Sink::new(), frole);
            fast_encode(&rt, &mut fw, payload.as_bytes(), s.n);
            assert_eq!(fw.into_inner().written, wire);
            let mut fw = fastwebsockets::WebSocket::after_handshake(Sink::new(), frole);
            g.bench_function("fastwebsockets", |b| b.iter(|| fast_encode(&rt, &mut fw, payload.as_bytes(), s.n)));
            g.finish();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Echo round trip: client encode → server decode → server encode → client decode
// ---------------------------------------------------------------------------------------------

/// Feeds `src` (exactly one message) to `dec` and hands the message to `f`.
fn lowbit_decode_one(dec: &mut Decoder, mut src: &[u8], f: impl FnOnce(OpCode, &[u8])) {
    loop {
        match dec.poll_message() {
            Ok(Some(Event::Message { op, payload, .. })) => {
                assert!(src.is_empty());
                return f(op, payload);
            }
            Ok(Some(e)) => panic!("unexpected event {e:?}"),
            Ok(None) => {
                let k = dec.feed(src);
                assert!(k > 0, "ran out of input");
                src = &src[k..];
            }
            Err(e) => panic!("{e}"),
        }
    }
}

struct LowbitPair {
    cenc: Encoder,
    cdec: Decoder,
    senc: Encoder,
    sdec: Decoder,
    c2s: Vec<u8>,
    s2c: Vec<u8>,
}

fn lowbit_echo(p: &mut LowbitPair, payload: &[u8], n: usize) -> usize {
    let LowbitPair { cenc, cdec, senc, sdec, c2s, s2c } = p;
    let mut bytes = 0;
    for _ in 0..n {
        c2s.clear();
        cenc.encode_frame(true, 0, OpCode::Text, black_box(payload), c2s).expect("encode");
        lowbit_decode_one(sdec, c2s, |op, msg| {
            s2c.clear();
            senc.encode_frame(true, 0, op, msg, s2c).expect("encode");
        });
        lowbit_decode_one(cdec, s2c, |_, msg| bytes += black_box(msg).len());
    }
    bytes
}

fn lowbit_conn_echo(
    client: &mut Conn<End>,
    server: &mut Conn<End>,
    cbuf: &mut Vec<u8>,
    sbuf: &mut Vec<u8>,
    payload: &[u8],
    n: usize,
) -> usize {
    let mut bytes = 0;
    for _ in 0..n {
        client.write_message(OpCode::Text, black_box(payload)).expect("write");
        let (op, msg) = server.read_message(sbuf).expect("read");
        server.write_message(op, msg).expect("write");
        let (_, msg) = client.read_message(cbuf).expect("read");
        bytes += black_box(msg).len();
    }
    bytes
}

fn tung_echo(
    client: &mut tungstenite::WebSocket<End>,
    server: &mut tungstenite::WebSocket<End>,
    payload: &'static str,
    n: usize,
) -> usize {
    let mut bytes = 0;
    for _ in 0..n {
        client.send(Message::Text(Utf8Bytes::from_static(black_box(payload)))).expect("send");
        let msg = server.read().expect("read");
        server.send(msg).expect("send");
        match client.read().expect("read") {
            Message::Text(t) => bytes += black_box(t.as_str()).len(),
            m => panic!("unexpected {m:?}"),
        }
    }
    bytes
}

fn fast_echo(
    rt: &tokio::runtime::Runtime,
    client: &mut fastwebsockets::FragmentCollector<End>,
    server: &mut fastwebsockets::FragmentCollector<End>,
    payload: &[u8],
    n: usize,
) -> usize {
    rt.block_on(async {
        let mut bytes = 0;
        for _ in 0..n {
            let frame = fastwebsockets::Frame::text(fastwebsockets::Payload::Borrowed(black_box(payload)));
            client.write_frame(frame).await.expect("write");
            let msg = server.read_frame().await.expect("read");
            server.write_frame(msg).await.expect("write");
            let msg = client.read_frame().await.expect("read");
            bytes += black_box(&*msg.payload).len();
        }
        bytes
    })
}

fn bench_echo(c: &mut Criterion) {
    let rt = runtime();
    for s in [size("16B", 16, 200), size("64KiB", 64 << 10, 8)] {
        let payload = text(s.len);
        let expect = s.len * s.n;
        let mut g = c.benchmark_group(format!("echo/{}", s.name));
        g.throughput(throughput(&s));

        let mut p = LowbitPair {
            cenc: Encoder::new(Role::Client),
            cdec: Decoder::new(&Config::new(Role::Client).max_read_limit(READ_LIMIT_LARGE)),
            senc: Encoder::new(Role::Server),
            sdec: Decoder::new(&server_config()),
            c2s: Vec::new(),
            s2c: Vec::new(),
        };
        assert_eq!(lowbit_echo(&mut p, payload.as_bytes(), s.n), expect);
        g.bench_function("lowbit", |b| b.iter(|| lowbit_echo(&mut p, payload.as_bytes(), s.n)));

        // One frame per message, like the other two (Conn's default max_chunk_size, 4 KiB,
        // would split 64 KiB into 16 frames).
        let (ce, se) = pipe_pair();
        let mut client = Conn::with_config(
            ce,
            Config::new(Role::Client).max_read_limit(READ_LIMIT_LARGE).max_chunk_size(s.len.max(4096)),
        );
        let mut server = Conn::with_config(se, server_config().max_chunk_size(s.len.max(4096)));
        let (mut cbuf, mut sbuf) = (Vec::new(), Vec::new());
        assert_eq!(lowbit_conn_echo(&mut client, &mut server, &mut cbuf, &mut sbuf, payload.as_bytes(), s.n), expect);
        g.bench_function("lowbit_conn", |b| {
            b.iter(|| lowbit_conn_echo(&mut client, &mut server, &mut cbuf, &mut sbuf, payload.as_bytes(), s.n))
        });

        let (ce, se) = pipe_pair();
        let mut client =
            tungstenite::WebSocket::from_raw_socket(ce, tungstenite::protocol::Role::Client, Some(tung_config()));
        let mut server =
            tungstenite::WebSocket::from_raw_socket(se, tungstenite::protocol::Role::Server, Some(tung_config()));
        assert_eq!(tung_echo(&mut client, &mut server, payload, s.n), expect);
        g.bench_function("tungstenite", |b| b.iter(|| tung_echo(&mut client, &mut server, payload, s.n)));

        // tungstenite zero-fills its whole read buffer (128 KiB by default) before every read,
        // which is 70% of its 16 B echo; with a 4 KiB buffer it is the same code, tuned.
        let (ce, se) = pipe_pair();
        let small = tung_config().read_buffer_size(4096);
        let mut client = tungstenite::WebSocket::from_raw_socket(ce, tungstenite::protocol::Role::Client, Some(small));
        let mut server = tungstenite::WebSocket::from_raw_socket(se, tungstenite::protocol::Role::Server, Some(small));
        assert_eq!(tung_echo(&mut client, &mut server, payload, s.n), expect);
        g.bench_function("tungstenite_rb4k", |b| b.iter(|| tung_echo(&mut client, &mut server, payload, s.n)));

        let (ce, se) = pipe_pair();
        let mut client = fastwebsockets::FragmentCollector::new(fastwebsockets::WebSocket::after_handshake(
            ce,
            fastwebsockets::Role::Client,
        ));
        let mut server = fastwebsockets::FragmentCollector::new(fastwebsockets::WebSocket::after_handshake(
            se,
            fastwebsockets::Role::Server,
        ));
        assert_eq!(fast_echo(&rt, &mut client, &mut server, payload.as_bytes(), s.n), expect);
        g.bench_function("fastwebsockets", |b| {
            b.iter(|| fast_echo(&rt, &mut client, &mut server, payload.as_bytes(), s.n))
        });
        g.finish();
    }
}

criterion_group! {
    name = codec;
    config = Criterion::default()
        .without_plots()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .nresamples(20_000);
    targets = bench_unmask, bench_decode, bench_encode, bench_echo
}
criterion_main!(codec);
