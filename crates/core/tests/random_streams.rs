//! Randomized robustness of the sans-IO `Decoder`: over 1,000,000 valid, mutated and random frame
//! streams (both roles, `poll_message` and `poll_frame`, random feed chunking) never panic, never
//! stall, never yield a payload over `max_read_limit`, fail only with protocol errors that carry
//! a close code (then only `WebSocketClosed`), and decode the same however they are chunked; plus
//! a proptest round trip: whatever `Encoder` writes, `Decoder` reads back exactly.

use lowbit_websockets::decode::Frame;
use lowbit_websockets::{CloseCode, Config, Decoder, Encoder, Error, Event, OpCode, Role};
use proptest::prelude::*;

/// A small limit, so generated messages cross it now and then.
const LIMIT: usize = 64 * 1024;

/// Debug builds run a twentieth of the streams; `cargo test --release` runs them all.
const SCALE: usize = if cfg!(debug_assertions) { 20 } else { 1 };

/// xorshift64*: seeded, fast, plenty for picking sizes, positions and bits.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True `percent`% of the time.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = vec![0; n];
        for chunk in out.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes()[..chunk.len()]);
        }
        out
    }

    /// `lo..=hi` random bytes.
    fn junk(&mut self, lo: usize, hi: usize) -> Vec<u8> {
        let n = self.between(lo, hi);
        self.bytes(n)
    }

    /// Exactly `n` bytes of valid UTF-8 mixing 1- to 4-byte characters: a random slice of
    /// [`utf8_corpus`], its cut characters patched with ASCII.
    fn utf8(&mut self, n: usize) -> Vec<u8> {
        let corpus = utf8_corpus();
        let start = self.below(corpus.len() - n);
        let mut out = corpus[start..start + n].to_vec();
        let lead = out.iter().position(|&b| b & 0xc0 != 0x80).unwrap_or(n);
        out[..lead].fill(b'.');
        if let Some(last) = out.iter().rposition(|&b| b & 0xc0 != 0x80) {
            let width = match out[last] {
                0xf0.. => 4,
                0xe0.. => 3,
                0xc0.. => 2,
                _ => 1,
            };
            if last + width > n {
                out[last..].fill(b'.');
            }
        }
        out
    }

    /// A size skewed small, now and then large, rarely at the limit's edge.
    fn size(&mut self) -> usize {
        match self.below(100) {
            0..60 => self.below(64),
            60..85 => self.between(64, 1024),
            85..95 => self.between(1024, 8192),
            95..99 => self.between(8192, LIMIT),
            _ => self.between(LIMIT - 4, LIMIT + 4),
        }
    }
}

/// 256 KiB of random text, a quarter of its characters 2 to 4 bytes long; built once.
fn utf8_corpus() -> &'static [u8] {
    static CORPUS: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut rng = Rng::new(42);
        let mut s = String::new();
        while s.len() < (LIMIT + 8) * 4 {
            s.push(
                match rng.below(12) {
                    0 => char::from_u32(0x80 + rng.below(0x780) as u32),
                    1 => char::from_u32(0x800 + rng.below(0xd000 - 0x800) as u32),
                    2 => char::from_u32(0x10000 + rng.below(0x100000) as u32),
                    _ => Some((b' ' + rng.below(95) as u8) as char),
                }
                .unwrap_or('?'),
            );
        }
        s.into_bytes()
    })
}

/// A cheap fingerprint of a payload: its length and a 64-bit hash.
type Digest = (usize, u64);

fn digest(bytes: &[u8]) -> Digest {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ bytes.len() as u64;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        h = (h ^ u64::from_le_bytes(w.try_into().unwrap())).wrapping_mul(0x0100_0000_01b3).rotate_left(23);
    }
    for &b in words.remainder() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    (bytes.len(), h)
}

/// What `poll_message` reports, payloads fingerprinted.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Message(OpCode, u8, Digest),
    Ping(Digest),
    Pong(Digest),
    Close(Digest),
}

/// How decoding a stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// All bytes were used and the decoder wants more.
    NeedMore,
    /// A close frame was decoded; the decoder reports `WebSocketClosed` from then on.
    Closed,
    /// A protocol error (its `Debug` form).
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Log {
    events: Vec<Ev>,
    end: End,
}

/// How bytes are handed to the decoder.
enum Chunking<'a> {
    /// As much as fits, through `feed`.
    Whole,
    /// Random piece sizes (often 1 byte), alternating `feed` and `read_buf` + `advance`.
    Random(&'a mut Rng),
}

/// The settings a stream is decoded with.
#[derive(Debug, Clone, Copy)]
struct Setup {
    role: Role,
    /// RSV bits passed to `set_reserved_bits`.
    rsv: u8,
    /// `max_read_limit`.
    limit: usize,
}

impl Setup {
    fn new(role: Role, rsv: u8) -> Self {
        Self { role, rsv, limit: LIMIT }
    }

    fn decoder(&self) -> Decoder {
        let mut dec = Decoder::new(&Config::new(self.role).max_read_limit(self.limit));
        if self.rsv != 0 {
            dec.set_reserved_bits(self.rsv);
        }
        dec
    }
}

/// What one poll gave.
enum Polled {
    Nothing,
    Item,
    Close,
}

/// Feeds `bytes` to `dec` in pieces and calls `poll` until it yields nothing more. Checks the
/// decoder always makes progress, reports `WebSocketClosed` only after a close, and after an
/// error or a close says `WebSocketClosed` forever.
fn drive(
    dec: &mut Decoder,
    bytes: &[u8],
    mut chunking: Chunking<'_>,
    mut poll: impl FnMut(&mut Decoder) -> Result<Polled, Error>,
) -> End {
    let mut pos = 0;
    let mut items = 0usize;
    let mut closed = false;
    loop {
        loop {
            match poll(dec) {
                Ok(Polled::Nothing) => break,
                Ok(item) => {
                    assert!(!closed, "an item after the close");
                    closed = matches!(item, Polled::Close);
                    items += 1;
                    // Every item consumes at least a 2-byte header.
                    assert!(items <= bytes.len() / 2 + 1, "decoder yields items out of nothing");
                }
                Err(e) => {
                    let end = match e {
                        Error::WebSocketClosed => {
                            assert!(closed, "WebSocketClosed without a close or an earlier error");
                            End::Closed
                        }
                        e => {
                            assert!(is_decoder_error(&e) && e.close_code().is_some(), "not a protocol error: {e:?}");
                            End::Failed(format!("{e:?}"))
                        }
                    };
                    for _ in 0..2 {
                        assert!(matches!(poll(dec), Err(Error::WebSocketClosed)), "decoder usable after {end:?}");
                    }
                    assert!(matches!(dec.peek_header(), Err(Error::WebSocketClosed)));
                    return end;
                }
            }
        }
        if pos == bytes.len() {
            return End::NeedMore;
        }
        let rest = &bytes[pos..];
        let n = match &mut chunking {
            Chunking::Whole => dec.feed(rest),
            Chunking::Random(rng) => {
                let want = match rng.below(4) {
                    0 => 1,
                    1 => rng.between(1, 16),
                    2 => rng.between(1, 300),
                    _ => rng.between(1, 20_000),
                }
                .min(rest.len());
                if rng.chance(50) {
                    dec.feed(&rest[..want])
                } else {
                    let buf = dec.read_buf();
                    assert!(!buf.is_empty(), "read_buf is never empty");
                    let n = want.min(buf.len());
                    buf[..n].copy_from_slice(&rest[..n]);
                    dec.advance(n);
                    n
                }
            }
        };
        assert!(n > 0, "decoder stalled: it wants more bytes but takes none ({} buffered)", dec.buffered());
        pos += n;
    }
}

/// The protocol errors a decoder without deflate can report (each sends 1002, 1007 or 1009).
fn is_decoder_error(e: &Error) -> bool {
    use Error::*;
    matches!(
        e,
        MessageTooBig { .. }
            | ProtocolReservedBits { .. }
            | UnexpectedContinuation
            | ExpectedContinuation
            | InvalidOpCode(_)
            | ControlFramePayloadTooLarge(_)
            | FragmentedControlFrame
            | UnmaskedFrame
            | MaskedFrame
            | InvalidPayloadLength
            | InvalidUtf8
            | InvalidCloseCode(_)
            | InvalidClosePayload
    )
}

fn check_control(payload: &[u8]) {
    assert!(payload.len() <= 125, "control payload of {} bytes", payload.len());
}

/// Checks a message; `oracle` also checks text against std's UTF-8 validator (costly, so done
/// on one of the decodings only: the others must equal it).
fn check_data(setup: Setup, op: OpCode, rsv: u8, payload: &[u8], oracle: bool) {
    assert!(op.is_data(), "message with opcode {op:?}");
    assert!(payload.len() <= setup.limit, "message of {} bytes over the {}-byte limit", payload.len(), setup.limit);
    if oracle && op == OpCode::Text && rsv == 0 {
        assert!(std::str::from_utf8(payload).is_ok(), "text message is not UTF-8");
    }
}

/// Decodes with `poll_message`.
fn decode_messages(setup: Setup, bytes: &[u8], chunking: Chunking<'_>) -> Log {
    let oracle = matches!(chunking, Chunking::Whole);
    let mut dec = setup.decoder();
    let mut events = Vec::new();
    let end = drive(&mut dec, bytes, chunking, |dec| {
        let Some(ev) = dec.poll_message()? else { return Ok(Polled::Nothing) };
        let polled = if matches!(ev, Event::Close { .. }) { Polled::Close } else { Polled::Item };
        events.push(match ev {
            Event::Message { op, rsv, payload } => {
                check_data(setup, op, rsv, payload, oracle);
                assert_eq!(rsv & !setup.rsv, 0, "RSV bits {rsv:#x} not allowed came through");
                Ev::Message(op, rsv, digest(payload))
            }
            Event::Ping(p) => {
                check_control(p);
                Ev::Ping(digest(p))
            }
            Event::Pong(p) => {
                check_control(p);
                Ev::Pong(digest(p))
            }
            Event::Close { frame, body } => {
                check_control(body);
                assert!(frame.code.is_none_or(CloseCode::is_sendable), "close code {:?} accepted", frame.code);
                assert_eq!(body.len() >= 2, frame.code.is_some());
                Ev::Close(digest(body))
            }
        });
        Ok(polled)
    });
    Log { events, end }
}

/// Decodes with `poll_frame`, checks each frame, and assembles messages the way
/// `poll_message` would report them.
fn decode_frames(setup: Setup, bytes: &[u8], chunking: Chunking<'_>) -> Log {
    let mut dec = setup.decoder();
    let mut events = Vec::new();
    let mut message: Option<(OpCode, u8, Vec<u8>)> = None;
    let end = drive(&mut dec, bytes, chunking, |dec| {
        let Some(Frame { is_final, rsv, op, payload }) = dec.poll_frame()? else { return Ok(Polled::Nothing) };
        if op.is_control() {
            check_control(payload);
            assert!(is_final && rsv == 0, "bad control frame came through");
            let (ev, polled) = match op {
                OpCode::Ping => (Ev::Ping(digest(payload)), Polled::Item),
                OpCode::Pong => (Ev::Pong(digest(payload)), Polled::Item),
                _ => (Ev::Close(digest(payload)), Polled::Close),
            };
            events.push(ev);
            return Ok(polled);
        }
        assert!(payload.len() <= setup.limit, "frame of {} bytes over the limit", payload.len());
        match (&mut message, op) {
            (None, OpCode::Text | OpCode::Binary) => message = Some((op, rsv, payload.to_vec())),
            (Some((_, _, buf)), OpCode::Continuation) => {
                assert_eq!(rsv, 0, "RSV bits on a continuation came through");
                buf.extend_from_slice(payload);
            }
            (m, op) => panic!("poll_frame let {op:?} through with a message in progress: {}", m.is_some()),
        }
        if is_final {
            let (op, rsv, buf) = message.take().unwrap();
            check_data(setup, op, rsv, &buf, false);
            events.push(Ev::Message(op, rsv, digest(&buf)));
        }
        Ok(Polled::Item)
    });
    Log { events, end }
}

/// A frame stream built by the `Encoder`, and what decoding it must give.
struct Generated {
    bytes: Vec<u8>,
    /// Where each frame starts, for mutations aimed at headers.
    starts: Vec<usize>,
    expected: Log,
}

/// Builds a valid stream for a decoder of `setup.role`: a few messages, some fragmented, with
/// pings and pongs between and inside them, sometimes a message over the limit, sometimes a
/// close at the end (followed by junk that must be ignored).
fn generate(rng: &mut Rng, enc: &mut Encoder, setup: Setup) -> Generated {
    let mut g =
        Generated { bytes: Vec::new(), starts: Vec::new(), expected: Log { events: Vec::new(), end: End::NeedMore } };
    let mut frame = |g: &mut Generated, fin: bool, rsv: u8, op: OpCode, payload: &[u8]| {
        g.starts.push(g.bytes.len());
        enc.encode_frame(fin, rsv, op, payload, &mut g.bytes).unwrap();
    };
    let control = |rng: &mut Rng| {
        let op = if rng.chance(70) { OpCode::Ping } else { OpCode::Pong };
        let n = if rng.chance(10) { 125 } else { rng.below(20) };
        (op, rng.bytes(n))
    };
    for _ in 0..rng.between(0, 5) {
        if rng.chance(15) {
            let (op, p) = control(rng);
            frame(&mut g, true, 0, op, &p);
            g.expected.events.push(if op == OpCode::Ping { Ev::Ping(digest(&p)) } else { Ev::Pong(digest(&p)) });
        }
        let op = if rng.chance(50) { OpCode::Text } else { OpCode::Binary };
        let rsv = if setup.rsv != 0 && rng.chance(25) { 0x40 } else { 0 };
        let len = rng.size();
        // Text is UTF-8 unless its RSV1 says "compressed" (then it is opaque here).
        let payload = if op == OpCode::Text && rsv == 0 { rng.utf8(len) } else { rng.bytes(len) };
        let too_big = len > LIMIT;
        let mut cuts: Vec<usize> =
            if rng.chance(50) { vec![] } else { (0..rng.between(1, 4)).map(|_| rng.below(len + 1)).collect() };
        cuts.sort_unstable();
        cuts.push(len);
        let mut from = 0;
        for (i, &to) in cuts.iter().enumerate() {
            let first = i == 0;
            let last = i == cuts.len() - 1;
            if first {
                frame(&mut g, last, rsv, op, &payload[from..to]);
            } else {
                frame(&mut g, last, 0, OpCode::Continuation, &payload[from..to]);
            }
            from = to;
            // Control frames between fragments (not in an over-limit message, whose error
            // would otherwise depend on where the control frames sit).
            if !last && !too_big && rng.chance(30) {
                let (cop, p) = control(rng);
                frame(&mut g, true, 0, cop, &p);
                g.expected.events.push(if cop == OpCode::Ping { Ev::Ping(digest(&p)) } else { Ev::Pong(digest(&p)) });
            }
        }
        if too_big {
            g.expected.end = End::Failed(format!("{:?}", Error::MessageTooBig { limit: LIMIT as u64 }));
            return g;
        }
        g.expected.events.push(Ev::Message(op, rsv, digest(&payload)));
    }
    if rng.chance(25) {
        let body = match rng.below(3) {
            0 => vec![],
            1 => 1000u16.to_be_bytes().to_vec(),
            _ => [&[0x0f, 0xa0][..], "au revoir ✓".as_bytes()].concat(),
        };
        frame(&mut g, true, 0, OpCode::Close, &body);
        g.expected.events.push(Ev::Close(digest(&body)));
        g.expected.end = End::Closed;
        if rng.chance(50) {
            let junk = rng.junk(0, 63);
            g.bytes.extend_from_slice(&junk);
        }
    }
    g
}

/// Damages a stream: flipped bits (anywhere or in a header), changed bytes, truncation,
/// inserted or deleted bytes, a duplicated range, a length field rewritten.
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>, starts: &[usize], headers_only: bool) {
    for _ in 0..rng.between(1, 3) {
        if bytes.is_empty() {
            bytes.extend(rng.junk(1, 32));
            continue;
        }
        let header = |rng: &mut Rng, bytes: &Vec<u8>| {
            let s = if starts.is_empty() { 0 } else { starts[rng.below(starts.len())] };
            (s + rng.below(10)).min(bytes.len() - 1)
        };
        let kind = if headers_only { rng.below(2) } else { rng.below(9) };
        match kind {
            0 => {
                let at = header(rng, bytes);
                bytes[at] ^= 1 << rng.below(8);
            }
            1 => {
                // Rewrite a length field: a random 7-bit, 16-bit or 64-bit value.
                let at = header(rng, bytes);
                let at = at - (at > 0 && rng.chance(50)) as usize;
                if at + 1 < bytes.len() {
                    bytes[at + 1] = (bytes[at + 1] & 0x80) | [rng.below(126) as u8, 126, 127][rng.below(3)];
                    for b in bytes.iter_mut().skip(at + 2).take(8) {
                        if rng.chance(50) {
                            *b = rng.next() as u8;
                        }
                    }
                }
            }
            2 => {
                let at = rng.below(bytes.len());
                bytes[at] ^= 1 << rng.below(8);
            }
            3 => {
                let at = rng.below(bytes.len());
                bytes[at] = rng.next() as u8;
            }
            4 => bytes.truncate(rng.below(bytes.len())),
            5 => {
                let at = rng.below(bytes.len() + 1);
                let junk = rng.junk(1, 16);
                bytes.splice(at..at, junk);
            }
            6 => {
                let at = rng.below(bytes.len());
                let end = (at + rng.between(1, 32)).min(bytes.len());
                bytes.drain(at..end);
            }
            7 => {
                // Duplicate a range elsewhere: frames spliced into the middle of others.
                let a = rng.below(bytes.len());
                let b = (a + rng.between(1, 200)).min(bytes.len());
                let piece = bytes[a..b].to_vec();
                let at = rng.below(bytes.len() + 1);
                bytes.splice(at..at, piece);
            }
            _ => {
                let at = rng.below(bytes.len());
                bytes.truncate(at);
                bytes.extend(rng.junk(0, 63));
            }
        }
    }
}

/// Decodes `bytes` three ways — messages fed whole, messages fed in random pieces, frames fed
/// in random pieces — checks each, and asserts they tell the same story. Returns that story.
fn decode_every_way(rng: &mut Rng, setup: Setup, bytes: &[u8]) -> Log {
    let whole = decode_messages(setup, bytes, Chunking::Whole);
    let pieces = decode_messages(setup, bytes, Chunking::Random(rng));
    assert_eq!(whole, pieces, "{setup:?}: poll_message depends on how the bytes are chunked\ninput: {bytes:02x?}");
    let frames = decode_frames(setup, bytes, Chunking::Random(rng));
    assert_eq!(whole, frames, "{setup:?}: poll_frame and poll_message disagree\ninput: {bytes:02x?}");
    whole
}

/// What kind of streams a run feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Unchanged encoder output: must decode to exactly what was encoded.
    Valid,
    /// Encoder output with a few random mutations anywhere.
    Mutated,
    /// Encoder output with header bits and length fields mutated.
    HeaderMutated,
    /// Random bytes, alone or after a valid prefix.
    Random,
}

/// Runs `count` streams of `kind`, both roles, from `seed`.
fn run(kind: Kind, seed: u64, count: usize, rsv: u8) {
    let started = std::time::Instant::now();
    let mut rng = Rng::new(seed);
    // The peer of a server is a client (masks), and the reverse.
    let mut to_server = Encoder::new(Role::Client);
    let mut to_client = Encoder::new(Role::Server);
    let mut outcomes = [0usize; 3];
    let mut errors = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..count / SCALE {
        let role = if i % 2 == 0 { Role::Server } else { Role::Client };
        let setup = Setup::new(role, rsv);
        let enc = if role == Role::Server { &mut to_server } else { &mut to_client };
        let mut g = generate(&mut rng, enc, setup);
        match kind {
            Kind::Valid => {}
            Kind::Mutated => mutate(&mut rng, &mut g.bytes, &g.starts, false),
            Kind::HeaderMutated => mutate(&mut rng, &mut g.bytes, &g.starts, true),
            Kind::Random => {
                if rng.chance(50) {
                    g.bytes.clear();
                } else {
                    g.bytes.truncate(rng.below(g.bytes.len() + 1));
                }
                let n = rng.below(300);
                g.bytes.extend(rng.bytes(n));
            }
        }
        // Sometimes the wrong role: every frame's masking is then a violation.
        let setup = if kind != Kind::Valid && rng.chance(5) {
            Setup { role: if role == Role::Server { Role::Client } else { Role::Server }, ..setup }
        } else {
            setup
        };
        let log = decode_every_way(&mut rng, setup, &g.bytes);
        if kind == Kind::Valid {
            assert_eq!(log, g.expected, "{setup:?}: encoder output did not decode to what was encoded");
        }
        outcomes[match &log.end {
            End::NeedMore => 0,
            End::Closed => 1,
            End::Failed(e) => {
                let variant = e.split([' ', '(', '{']).next().unwrap_or_default();
                *errors.entry(variant.to_string()).or_default() += 1;
                2
            }
        }] += 1;
    }
    let [more, closed, failed] = outcomes;
    eprintln!(
        "{kind:?}: {} streams in {:.1?}: {more} wanted more, {closed} closed, {failed} failed: {errors:?}",
        count / SCALE,
        started.elapsed()
    );
    // The mix must exercise every ending, or the generator is broken.
    assert!(more > 0 && closed > 0, "{kind:?}: endings {outcomes:?}");
    if kind != Kind::Valid {
        assert!(failed > count / SCALE / 10, "{kind:?}: too few failures {outcomes:?}");
        // Damaged streams must reach most of the decoder's rules, or the mutations are too tame.
        assert!(errors.len() >= 9, "{kind:?}: only {errors:?}");
    }
}

#[test]
fn valid_streams_decode_to_exactly_what_was_encoded() {
    run(Kind::Valid, 1, 150_000, 0);
}

#[test]
fn mutated_streams_fail_cleanly_and_decode_the_same_however_chunked() {
    run(Kind::Mutated, 2, 400_000, 0);
}

#[test]
fn header_mutations_fail_cleanly_and_decode_the_same_however_chunked() {
    run(Kind::HeaderMutated, 3, 250_000, 0);
}

#[test]
fn random_bytes_fail_cleanly_and_decode_the_same_however_chunked() {
    run(Kind::Random, 4, 200_000, 0);
}

#[test]
fn streams_with_rsv1_allowed_decode_the_same_however_chunked() {
    // `set_reserved_bits(0x40)` without deflate: RSV1 messages pass through as they are.
    run(Kind::Valid, 5, 20_000, 0x40);
    run(Kind::Mutated, 6, 30_000, 0x40);
}

// ---------------------------------------------------------------------------------------------
// Round trip: any messages the Encoder writes, the Decoder reads back exactly.

/// One message to send: its type, size and content seed, where it is cut into fragments,
/// and the control frames sent between its fragments.
#[derive(Debug, Clone)]
struct Msg {
    text: bool,
    len: usize,
    seed: u64,
    cuts: Vec<usize>,
    pings: Vec<(bool, usize)>,
}

fn msg() -> impl Strategy<Value = Msg> {
    (
        any::<bool>(),
        prop_oneof![0..200usize, 0..70_000usize],
        any::<u64>(),
        prop::collection::vec(0..70_000usize, 0..4),
        prop::collection::vec((any::<bool>(), 0..=125usize), 0..3),
    )
        .prop_map(|(text, len, seed, cuts, pings)| Msg { text, len, seed, cuts, pings })
}

/// Encodes `msgs` for a decoder of `role`; returns the bytes and the events to expect.
fn encode_all(msgs: &[Msg], role: Role) -> (Vec<u8>, Vec<Ev>) {
    let mut enc = Encoder::new(if role == Role::Server { Role::Client } else { Role::Server });
    let (mut out, mut expected) = (Vec::new(), Vec::new());
    for m in msgs {
        let mut rng = Rng::new(m.seed);
        let payload = if m.text { rng.utf8(m.len) } else { rng.bytes(m.len) };
        let op = if m.text { OpCode::Text } else { OpCode::Binary };
        let mut cuts: Vec<usize> = m.cuts.iter().map(|c| c % (m.len + 1)).collect();
        cuts.sort_unstable();
        cuts.push(m.len);
        let mut pings = m.pings.iter();
        let mut from = 0;
        for (i, &to) in cuts.iter().enumerate() {
            let last = i == cuts.len() - 1;
            let frame_op = if i == 0 { op } else { OpCode::Continuation };
            enc.encode_frame(last, 0, frame_op, &payload[from..to], &mut out).unwrap();
            from = to;
            if let Some(&(is_ping, n)) = pings.next().filter(|_| !last) {
                let body = rng.bytes(n);
                let cop = if is_ping { OpCode::Ping } else { OpCode::Pong };
                enc.encode_frame(true, 0, cop, &body, &mut out).unwrap();
                expected.push(if is_ping { Ev::Ping(digest(&body)) } else { Ev::Pong(digest(&body)) });
            }
        }
        expected.push(Ev::Message(op, 0, digest(&payload)));
    }
    (out, expected)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(debug_assertions) { 48 } else { 256 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn encoded_messages_decode_back_exactly(msgs in prop::collection::vec(msg(), 0..8), chunk_seed in any::<u64>()) {
        let mut rng = Rng::new(chunk_seed);
        for role in [Role::Server, Role::Client] {
            let (bytes, events) = encode_all(&msgs, role);
            let expected = Log { events, end: End::NeedMore };
            let setup = Setup { role, rsv: 0, limit: 1 << 20 };
            prop_assert_eq!(&decode_messages(setup, &bytes, Chunking::Random(&mut rng)), &expected, "{:?} poll_message", role);
            prop_assert_eq!(&decode_frames(setup, &bytes, Chunking::Random(&mut rng)), &expected, "{:?} poll_frame", role);
        }
    }
}
