//! Zero allocations per message once warm: 10,000 messages read and 10,000 written through `Conn`
//! (server and client role, 16 B to 64 KiB, text and binary, fragmented, pings answered) and the
//! same traffic through the sans-IO `Decoder` and `Encoder`, counted by a global allocator.
//!
//! One `#[test]` in this binary and a per-thread counter, so nothing else is counted. Set
//! `ALLOC_BACKTRACE=1` (with `--nocapture`) to print where the first counted allocations happen.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use lowbit_websockets::decode::Frame;
use lowbit_websockets::{Config, Conn, Decoder, Encoder, Event, OpCode, Role};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static IN_TRACE: Cell<bool> = const { Cell::new(false) };
}

/// Whether counted allocations print a backtrace (`ALLOC_BACKTRACE` set, inside `count`).
static TRACE: AtomicBool = AtomicBool::new(false);

fn note_allocation() {
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
    if TRACE.load(Ordering::Relaxed) {
        let _ = IN_TRACE.try_with(|busy| {
            if !busy.replace(true) {
                eprintln!("allocation at:\n{}", std::backtrace::Backtrace::force_capture());
                busy.set(false);
            }
        });
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations (including reallocations) made by this thread while `f` runs.
fn count(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    TRACE.store(std::env::var_os("ALLOC_BACKTRACE").is_some(), Ordering::Relaxed);
    f();
    TRACE.store(false, Ordering::Relaxed);
    ALLOCATIONS.with(Cell::get) - before
}

/// Messages per measured run, read and written.
const MESSAGES: usize = 10_000;

/// Sizes cycled through: every length form, around the 4 KiB chunk and read buffer, up to 64 KiB.
const SIZES: [usize; 14] = [16, 100, 125, 126, 1000, 4000, 4082, 4096, 4097, 10_000, 16_384, 32_768, 65_535, 65_536];

/// One message of the cycle.
struct Msg {
    op: OpCode,
    payload: Vec<u8>,
}

/// The cycle of messages: sizes above, text and binary alternating. Text mixes 1- to 4-byte
/// characters.
fn messages() -> Vec<Msg> {
    SIZES
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let op = if i % 2 == 0 { OpCode::Text } else { OpCode::Binary };
            let mut payload = Vec::with_capacity(n);
            for c in "ab€d𝄞 ".chars().cycle() {
                if payload.len() + c.len_utf8() > n {
                    break;
                }
                payload.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
            }
            payload.resize(n, b'.');
            if op == OpCode::Binary {
                payload.iter_mut().enumerate().for_each(|(j, b)| *b ^= j as u8);
            }
            assert_eq!(payload.len(), n);
            Msg { op, payload }
        })
        .collect()
}

/// The cycle as a peer of `reader` sends it: every third message fragmented in three with a
/// ping between the fragments, the rest as single frames.
fn peer_bytes(msgs: &[Msg], reader: Role) -> Vec<u8> {
    let mut enc = Encoder::new(if reader == Role::Server { Role::Client } else { Role::Server });
    let mut out = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        if i % 3 == 0 {
            let (a, rest) = m.payload.split_at(m.payload.len() / 3);
            let (b, c) = rest.split_at(rest.len() / 2);
            enc.encode_frame(false, 0, m.op, a, &mut out).unwrap();
            enc.encode_frame(true, 0, OpCode::Ping, PING, &mut out).unwrap();
            enc.encode_frame(false, 0, OpCode::Continuation, b, &mut out).unwrap();
            enc.encode_frame(true, 0, OpCode::Continuation, c, &mut out).unwrap();
        } else {
            enc.encode_frame(true, 0, m.op, &m.payload, &mut out).unwrap();
        }
    }
    out
}

/// A stream whose reads loop over a pre-encoded input forever (in TCP-sized pieces) and whose
/// writes land in a buffer reserved up front: the stream itself never allocates.
struct Loopback {
    input: Vec<u8>,
    pos: usize,
    out: Vec<u8>,
}

impl Loopback {
    fn new(input: Vec<u8>) -> Self {
        Self { input, pos: 0, out: Vec::with_capacity(1 << 20) }
    }
}

impl Read for Loopback {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(1500).min(self.input.len() - self.pos);
        buf[..n].copy_from_slice(&self.input[self.pos..self.pos + n]);
        self.pos = (self.pos + n) % self.input.len();
        Ok(n)
    }
}

impl Write for Loopback {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        assert!(self.out.len() + buf.len() <= self.out.capacity(), "test sink would grow");
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The payload of every ping (and so of every pong) in these tests.
const PING: &[u8] = b"are you there";

/// Whether `body` masked with `key` (from its first byte) equals `plain`; 8 bytes at a time so
/// debug builds stay quick.
fn unmasks_to(body: &[u8], key: Option<[u8; 4]>, plain: &[u8]) -> bool {
    let Some(k) = key else { return body == plain };
    if body.len() != plain.len() {
        return false;
    }
    let wide = u64::from_ne_bytes([k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]]);
    let (mut b, mut p) = (body.chunks_exact(8), plain.chunks_exact(8));
    let words = (&mut b)
        .zip(&mut p)
        .all(|(b, p)| u64::from_ne_bytes(b.try_into().unwrap()) ^ wide == u64::from_ne_bytes(p.try_into().unwrap()));
    let tail = b.remainder().iter().zip(p.remainder()).zip(k.iter().cycle()).all(|((b, p), k)| b ^ k == *p);
    words && tail
}

/// Checks, without allocating, that `wire` (written by a `writer`) holds `controls` control
/// frames carrying [`PING`] and, unless `msg` is `None`, exactly one data message equal to it,
/// in fragments of at most 4 KiB.
fn check_wire(wire: &[u8], writer: Role, msg: Option<&Msg>, controls: usize) {
    let (mut at, mut got_controls, mut offset, mut done) = (0, 0, 0, false);
    let mut first = true;
    while at < wire.len() {
        let (b0, b1) = (wire[at], wire[at + 1]);
        let (mut len, mut head) = ((b1 & 0x7f) as usize, 2);
        if len == 126 {
            len = u16::from_be_bytes([wire[at + 2], wire[at + 3]]) as usize;
            head = 4;
        } else if len == 127 {
            len = u64::from_be_bytes(wire[at + 2..at + 10].try_into().unwrap()) as usize;
            head = 10;
        }
        let key =
            (b1 & 0x80 != 0).then(|| [wire[at + head], wire[at + head + 1], wire[at + head + 2], wire[at + head + 3]]);
        assert_eq!(key.is_some(), writer == Role::Client, "masking of a {writer:?} frame");
        head += if key.is_some() { 4 } else { 0 };
        let body = &wire[at + head..at + head + len];
        let op = b0 & 0x0f;
        if op >= 8 {
            assert!(unmasks_to(body, key, PING), "control frame payload");
            got_controls += 1;
        } else {
            let m = msg.expect("no data frame expected");
            assert!(!done, "data after the message ended");
            assert_eq!(op, if first { m.op as u8 } else { 0 }, "opcode of fragment");
            assert!(len <= 4096, "fragment over max_chunk_size");
            assert!(
                unmasks_to(body, key, &m.payload[offset..(offset + len).min(m.payload.len())]),
                "payload at {offset}"
            );
            offset += len;
            first = false;
            done = b0 & 0x80 != 0;
        }
        at += head + len;
    }
    assert_eq!(got_controls, controls, "control frames written");
    if let Some(m) = msg {
        assert!(done && offset == m.payload.len(), "message incomplete on the wire");
    }
}

/// Reads the `i`th message of the cycle through `conn`, answering its ping; then writes it back
/// (every third time with `stream_message`). Both directions are checked byte for byte.
fn conn_round(conn: &mut Conn<Loopback>, role: Role, msgs: &[Msg], buf: &mut Vec<u8>, i: usize) {
    let m = &msgs[i % msgs.len()];
    let (op, payload) = conn.read_message(buf).unwrap();
    assert!(op == m.op && payload == &m.payload[..], "message {i} read back wrong");
    let pongs = usize::from((i % msgs.len()).is_multiple_of(3));
    check_wire(&conn.get_ref().out, role, None, pongs);
    conn.get_mut().out.clear();

    if i % 3 == 2 {
        conn.stream_message(m.op, 0, &mut &m.payload[..]).unwrap();
    } else {
        conn.write_message(m.op, &m.payload).unwrap();
    }
    check_wire(&conn.get_ref().out, role, Some(m), 0);
    conn.get_mut().out.clear();
}

/// The async face over the same in-memory stream: it never has to wait, so each call is polled
/// once with a no-op waker (no runtime, whose bookkeeping is not ours to count).
#[cfg(feature = "tokio")]
mod async_face {
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    use lowbit_websockets::AsyncConn;
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    use super::*;

    impl AsyncRead for Loopback {
        fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            let n = Read::read(self.get_mut(), buf.initialize_unfilled())?;
            buf.advance(n);
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for Loopback {
        fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            Poll::Ready(Write::write(self.get_mut(), buf))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Runs a future that cannot wait.
    fn now<F: Future>(f: F) -> F::Output {
        match std::pin::pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("in-memory I/O never waits"),
        }
    }

    /// [`conn_round`] through `AsyncConn`.
    fn round(conn: &mut AsyncConn<Loopback>, role: Role, msgs: &[Msg], buf: &mut Vec<u8>, i: usize) {
        let m = &msgs[i % msgs.len()];
        let (op, payload) = now(conn.read_message(buf)).unwrap();
        assert!(op == m.op && payload == &m.payload[..], "message {i} read back wrong");
        let pongs = usize::from((i % msgs.len()).is_multiple_of(3));
        check_wire(&conn.get_ref().out, role, None, pongs);
        conn.get_mut().out.clear();

        if i % 3 == 2 {
            now(conn.stream_message(m.op, 0, &mut &m.payload[..])).unwrap();
        } else {
            now(conn.write_message(m.op, &m.payload)).unwrap();
        }
        check_wire(&conn.get_ref().out, role, Some(m), 0);
        conn.get_mut().out.clear();
    }

    pub(super) fn allocations(role: Role, msgs: &[Msg]) -> u64 {
        let stream = Loopback::new(peer_bytes(msgs, role));
        let mut conn = match role {
            Role::Server => AsyncConn::new(stream, 0, 0),
            Role::Client => AsyncConn::new_client(stream, 0, 0),
        };
        let mut buf = Vec::new();
        for i in 0..2 * msgs.len() {
            round(&mut conn, role, msgs, &mut buf, i);
        }
        count(|| (0..MESSAGES).for_each(|i| round(&mut conn, role, msgs, &mut buf, i)))
    }
}

fn conn_allocations(role: Role, msgs: &[Msg]) -> u64 {
    let stream = Loopback::new(peer_bytes(msgs, role));
    let mut conn = match role {
        Role::Server => Conn::new(stream, 0, 0),
        Role::Client => Conn::new_client(stream, 0, 0),
    };
    let mut buf = Vec::new();
    // Warm-up: two whole cycles size every buffer for the largest message.
    for i in 0..2 * msgs.len() {
        conn_round(&mut conn, role, msgs, &mut buf, i);
    }
    count(|| {
        for i in 0..MESSAGES {
            conn_round(&mut conn, role, msgs, &mut buf, i);
        }
    })
}

/// Feeds the cycle to a `Decoder` in 1500-byte pieces until `n` messages came out of
/// `poll_message` (or, with `frames`, until `n` final data frames came out of `poll_frame`).
fn decode_run(dec: &mut Decoder, input: &[u8], msgs: &[Msg], pos: &mut usize, n: usize, frames: bool) {
    let mut got = 0;
    let mut partial = 0; // frame mode: bytes of the current message seen so far
    while got < n {
        loop {
            let expected = &msgs[got % msgs.len()];
            if frames {
                let Some(Frame { is_final, op, payload, .. }) = dec.poll_frame().unwrap() else { break };
                if op.is_control() {
                    continue;
                }
                assert!(payload == &expected.payload[partial..partial + payload.len()], "frame payload");
                partial += payload.len();
                if is_final {
                    assert_eq!(partial, expected.payload.len());
                    partial = 0;
                    got += 1;
                }
            } else {
                let Some(ev) = dec.poll_message().unwrap() else { break };
                match ev {
                    Event::Message { op, payload, .. } => {
                        assert!(op == expected.op && payload == &expected.payload[..], "message read back wrong");
                        got += 1;
                    }
                    Event::Ping(p) => assert_eq!(p, PING),
                    other => panic!("unexpected {other:?}"),
                }
            }
            if got == n {
                return;
            }
        }
        let piece = 1500.min(input.len() - *pos);
        let fed = dec.feed(&input[*pos..*pos + piece]);
        *pos = (*pos + fed) % input.len();
    }
}

fn decoder_allocations(role: Role, msgs: &[Msg], frames: bool) -> u64 {
    let input = peer_bytes(msgs, role);
    let mut dec = Decoder::new(&Config::new(role));
    let mut pos = 0;
    decode_run(&mut dec, &input, msgs, &mut pos, 2 * msgs.len(), frames);
    count(|| decode_run(&mut dec, &input, msgs, &mut pos, MESSAGES, frames))
}

fn encoder_allocations(role: Role, msgs: &[Msg]) -> u64 {
    let mut enc = Encoder::new(role);
    let mut out = Vec::with_capacity(1 << 20);
    let mut round = |i: usize| {
        let m = &msgs[i % msgs.len()];
        out.clear();
        // Alternately: a whole message in 4 KiB fragments; a ping, then 1000-byte fragments.
        let pings = i % 2;
        if pings == 1 {
            enc.encode_frame(true, 0, OpCode::Ping, PING, &mut out).unwrap();
        }
        let chunk = if pings == 1 { 1000 } else { 4096 };
        enc.encode_fragments(true, 0, m.op, &m.payload, chunk, &mut out).unwrap();
        check_wire(&out, role, Some(m), pings);
    };
    for i in 0..2 * msgs.len() {
        round(i);
    }
    count(|| (0..MESSAGES).for_each(&mut round))
}

#[test]
fn steady_state_reads_and_writes_allocate_nothing() {
    // The counter sees this thread's allocations (or every zero below would be meaningless).
    assert_eq!(count(|| drop(std::hint::black_box(Vec::<u8>::with_capacity(8)))), 1);
    assert!(count(|| drop(Conn::new(Loopback::new(vec![0]), 0, 0))) > 0, "a new Conn allocates its buffers");

    let msgs = messages();
    let mut report = Vec::new();
    for role in [Role::Server, Role::Client] {
        report.push((format!("{role:?} Conn: {MESSAGES} reads + {MESSAGES} writes"), conn_allocations(role, &msgs)));
        #[cfg(feature = "tokio")]
        report.push((
            format!("{role:?} AsyncConn: {MESSAGES} reads + {MESSAGES} writes"),
            async_face::allocations(role, &msgs),
        ));
        report.push((
            format!("{role:?} Decoder::poll_message: {MESSAGES} messages"),
            decoder_allocations(role, &msgs, false),
        ));
        report.push((
            format!("{role:?} Decoder::poll_frame: {MESSAGES} messages"),
            decoder_allocations(role, &msgs, true),
        ));
        report.push((format!("{role:?} Encoder: {MESSAGES} messages"), encoder_allocations(role, &msgs)));
    }
    for (what, n) in &report {
        eprintln!("{what}: {n} allocations");
    }
    let failing: Vec<_> = report.iter().filter(|(_, n)| *n != 0).collect();
    assert!(failing.is_empty(), "allocations in steady state: {failing:?}");
}
