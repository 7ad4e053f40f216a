//! Measured prototypes of changes proposed for `crates/core/src` (see BENCHMARKS.md,
//! "Codec (criterion)", recommended changes). Each group puts the code as it is in `src/`
//! (`current`: the real crate function where it is public, else a verbatim copy) next to the
//! proposed version, on the same inputs as `benches/codec.rs`:
//!
//! - `proto_apply_mask/{16B,64KiB}`: `mask::apply_mask` with word-sized tails;
//! - `proto_utf8_pieces/64KiB`: simdutf8 `compat` (today) vs `basic` + tail carry in
//!   `Utf8Validator` (measured: no reliable gain, so not proposed);
//! - `proto_decode_text/{16B,64KiB,1MiB}`: a copy of the decoder's message path with its hot
//!   functions `#[inline]` (`inline_only`), and with the proposed `apply_mask` too (`proposed`);
//! - `proto_encode_client/{1KiB,64KiB}`: a verbatim copy of the `Conn` write path
//!   (`copy_of_current`, which reproduces the real `Conn`'s byte-at-a-time masking) against
//!   the same with the proposed masking, copy then `apply_mask` in place (`proposed`).
//!
//! Nothing here is used by the crate; once a change lands in `src/`, its group can go.
//!
//! Run with `cargo bench -p lowbit-websockets --bench proto`.

use std::hint::black_box;
use std::io::{self, IoSlice, Write};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lowbit_websockets::frame::{Header, MAX_HEADER_LEN, OpCode};
use lowbit_websockets::mask::{apply_mask, copy_masked};
use lowbit_websockets::utf8::Utf8Validator;
use lowbit_websockets::{Config, Decoder, Encoder, Event, READ_LIMIT_LARGE, Role};

// ---------------------------------------------------------------------------------------------
// Fixtures (the same text and framing as benches/codec.rs)
// ---------------------------------------------------------------------------------------------

const PATTERN: &str =
    "{\"user\":\"zoë\",\"text\":\"hello wörld, see you at 10:30 — ok?\",\"ts\":1718000000,\"tags\":[\"chat\",\"π\"]}\n";

fn text(len: usize) -> String {
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
    s
}

fn encode_masked(payload: &[u8], n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut seed = 0x9e37_79b9_u32;
    for _ in 0..n {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let key = seed.to_le_bytes();
        let h = Header { is_final: true, rsv: 0, op: OpCode::Text, mask: Some(key), payload_len: payload.len() as u64 };
        let mut head = [0u8; MAX_HEADER_LEN];
        let hl = h.encode(&mut head);
        out.extend_from_slice(&head[..hl]);
        let at = out.len();
        out.resize(at + payload.len(), 0);
        copy_masked(&mut out[at..], payload, key, 0);
    }
    out
}

fn server_config() -> Config {
    Config::new(Role::Server).max_read_limit(READ_LIMIT_LARGE)
}

// ---------------------------------------------------------------------------------------------
// Proposed mask kernels (safe code; `src/mask.rs` is `#![forbid(unsafe_code)]` too)
// ---------------------------------------------------------------------------------------------

mod new_mask {
    /// `key` as if the payload started `offset` bytes in: plain indexing, where `src/` calls
    /// the generic `<[T]>::rotate_left`, which is not inlined (1.4% of the 16 B decode).
    #[inline(always)]
    fn rotate(key: [u8; 4], offset: usize) -> [u8; 4] {
        let o = offset % 4;
        [key[o], key[(o + 1) % 4], key[(o + 2) % 4], key[(o + 3) % 4]]
    }

    #[inline(always)]
    fn widen(key: [u8; 4]) -> [u8; 32] {
        let mut w = [0u8; 32];
        for i in 0..32 {
            w[i] = key[i % 4];
        }
        w
    }

    /// 32-byte blocks as arrays (`as_chunks_mut`, so the length is a type, not a runtime value),
    /// then 8-byte words, then 4-byte words, then at most 3 bytes: a 16 B payload is two u64
    /// XORs instead of 16 byte XORs.
    #[inline]
    pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
        let key = rotate(key, offset);
        let wide = widen(key);
        let (blocks, rest) = buf.as_chunks_mut::<32>();
        for b in blocks {
            for i in 0..32 {
                b[i] ^= wide[i];
            }
        }
        let k8 = u64::from_ne_bytes([key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]]);
        let (words, rest) = rest.as_chunks_mut::<8>();
        for w in words {
            *w = (u64::from_ne_bytes(*w) ^ k8).to_ne_bytes();
        }
        let (quads, rest) = rest.as_chunks_mut::<4>();
        for q in quads {
            *q = (u32::from_ne_bytes(*q) ^ u32::from_ne_bytes(key)).to_ne_bytes();
        }
        for (b, k) in rest.iter_mut().zip(key) {
            *b ^= k;
        }
    }

    /// `copy_masked` that vectorizes wherever it is inlined: each block is loaded whole into a
    /// local array before anything is stored, so no alias analysis is needed (the `src/`
    /// version interleaves byte loads and stores and falls back to scalar code when the
    /// `noalias` of its arguments is lost by inlining, as it is inside `Conn::write_message`).
    #[inline]
    pub fn copy_masked(dst: &mut [u8], src: &[u8], key: [u8; 4], offset: usize) {
        assert_eq!(dst.len(), src.len());
        let key = rotate(key, offset);
        let wide = widen(key);
        let (d, dr) = dst.as_chunks_mut::<32>();
        let (s, sr) = src.as_chunks::<32>();
        for (d, s) in d.iter_mut().zip(s) {
            let mut x = *s;
            for i in 0..32 {
                x[i] ^= wide[i];
            }
            *d = x;
        }
        for ((o, i), k) in dr.iter_mut().zip(sr).zip(key.iter().cycle()) {
            *o = i ^ k;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Proposed UTF-8 validator: simdutf8 `basic` on everything but an incomplete last character
// ---------------------------------------------------------------------------------------------

mod new_utf8 {
    #[derive(Debug, Default, Clone)]
    pub struct Utf8Validator {
        pending: [u8; 4],
        pending_len: u8,
    }

    #[derive(Debug)]
    pub struct InvalidUtf8;

    fn char_width(lead: u8) -> usize {
        match lead {
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => 1,
        }
    }

    /// Where an incomplete last character starts (`data.len()` if the last one is whole, or
    /// the bytes are invalid anyway, which the full check then reports).
    #[inline]
    fn incomplete_tail(data: &[u8]) -> usize {
        let n = data.len();
        for i in 1..=n.min(4) {
            let b = data[n - i];
            if b & 0xc0 != 0x80 {
                return if char_width(b) > i { n - i } else { n };
            }
        }
        n
    }

    impl Utf8Validator {
        pub const fn new() -> Self {
            Self { pending: [0; 4], pending_len: 0 }
        }

        pub fn reset(&mut self) {
            self.pending_len = 0;
        }

        /// Same contract as `src/utf8.rs`: fails as soon as the bytes so far cannot be a prefix
        /// of UTF-8. The bulk goes through simdutf8's `basic` validator (no error position:
        /// the decoder never reports one), where `src/` uses `compat`, which tracks the
        /// position and measured 1.5–2x slower on this text.
        #[inline]
        pub fn feed(&mut self, mut data: &[u8]) -> Result<(), InvalidUtf8> {
            if self.pending_len > 0 {
                let have = self.pending_len as usize;
                let need = char_width(self.pending[0]) - have;
                let take = need.min(data.len());
                self.pending[have..have + take].copy_from_slice(&data[..take]);
                let filled = have + take;
                match std::str::from_utf8(&self.pending[..filled]) {
                    Ok(_) => self.pending_len = 0,
                    Err(e) if e.error_len().is_none() => {
                        self.pending_len = filled as u8;
                        return Ok(());
                    }
                    Err(_) => return Err(InvalidUtf8),
                }
                data = &data[take..];
            }
            let cut = incomplete_tail(data);
            simdutf8::basic::from_utf8(&data[..cut]).map_err(|_| InvalidUtf8)?;
            let tail = &data[cut..];
            if !tail.is_empty() {
                // At most 3 bytes: is it still a possible prefix of a character?
                match std::str::from_utf8(tail) {
                    Err(e) if e.error_len().is_none() => {}
                    _ => return Err(InvalidUtf8),
                }
                self.pending[..tail.len()].copy_from_slice(tail);
                self.pending_len = tail.len() as u8;
            }
            Ok(())
        }

        pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
            let complete = self.pending_len == 0;
            self.reset();
            if complete { Ok(()) } else { Err(InvalidUtf8) }
        }
    }

    /// The unit test of `src/utf8.rs`, run before the benches (a bench target has no tests).
    pub fn self_check() {
        let cases: &[&[u8]] = &[
            "κόσμε a€𝄞z".as_bytes(),
            b"",
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            b"\xf4\x90\x80\x80",
            b"\xc0\xaf",
            b"\xe0\x80",
            b"\xff",
            b"ab\xf0\x9f\x98",
        ];
        for bytes in cases {
            let whole = std::str::from_utf8(bytes).is_ok();
            for a in 0..=bytes.len() {
                for b in a..=bytes.len() {
                    let mut v = Utf8Validator::new();
                    let ok = v.feed(&bytes[..a]).is_ok()
                        && v.feed(&bytes[a..b]).is_ok()
                        && v.feed(&bytes[b..]).is_ok()
                        && v.finish().is_ok();
                    assert_eq!(ok, whole, "{bytes:x?} cut at {a},{b}");
                }
            }
        }
        let mut v = Utf8Validator::new();
        assert!(v.feed(b"\xf4\x90").is_err(), "an impossible prefix fails at once");
    }
}

/// The kernels a decoder copy runs with: `src/`'s as they are, or the proposed ones.
trait Kernels {
    type V: Default;
    fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize);
    /// Appends `src` unmasked to the message buffer.
    fn extend_unmasked(msg: &mut Vec<u8>, src: &[u8], key: [u8; 4], offset: usize);
    fn feed(v: &mut Self::V, data: &[u8]) -> bool;
    fn finish(v: &mut Self::V) -> bool;
    fn reset(v: &mut Self::V);
}

/// The kernels of `src/` today.
struct Cur;
impl Kernels for Cur {
    type V = Utf8Validator;
    #[inline]
    fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
        apply_mask(buf, key, offset)
    }
    #[inline]
    fn extend_unmasked(msg: &mut Vec<u8>, src: &[u8], key: [u8; 4], offset: usize) {
        let old = msg.len();
        msg.extend_from_slice(src);
        apply_mask(&mut msg[old..], key, offset);
    }
    #[inline]
    fn feed(v: &mut Utf8Validator, data: &[u8]) -> bool {
        v.feed(data).is_ok()
    }
    #[inline]
    fn finish(v: &mut Utf8Validator) -> bool {
        v.finish().is_ok()
    }
    #[inline]
    fn reset(v: &mut Utf8Validator) {
        v.reset()
    }
}

/// The proposed kernels: `apply_mask` as in the proposed `src/mask.rs`; the payload copy and
/// the UTF-8 validator stay as they are (their alternatives measured no gain, see
/// `proto_utf8_pieces`).
struct New;
impl Kernels for New {
    type V = Utf8Validator;
    #[inline]
    fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
        new_mask::apply_mask(buf, key, offset)
    }
    #[inline]
    fn extend_unmasked(msg: &mut Vec<u8>, src: &[u8], key: [u8; 4], offset: usize) {
        let old = msg.len();
        msg.extend_from_slice(src);
        new_mask::apply_mask(&mut msg[old..], key, offset);
    }
    #[inline]
    fn feed(v: &mut Utf8Validator, data: &[u8]) -> bool {
        v.feed(data).is_ok()
    }
    #[inline]
    fn finish(v: &mut Utf8Validator) -> bool {
        v.finish().is_ok()
    }
    #[inline]
    fn reset(v: &mut Utf8Validator) {
        v.reset()
    }
}

// ---------------------------------------------------------------------------------------------
// A copy of `src/decode.rs`'s message path (deflate and frame mode left out; neither runs in
// these benches), generic over the kernels, with the hot path `#[inline]`.
// ---------------------------------------------------------------------------------------------

mod proto_decode {
    use super::Kernels;
    use lowbit_websockets::close::CloseFrame;
    use lowbit_websockets::error::Error;
    use lowbit_websockets::frame::{Header, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode};
    use lowbit_websockets::{Config, Event, Role};
    use std::marker::PhantomData;

    #[derive(Debug, Clone, Copy)]
    enum State {
        Header,
        Payload { header: Header, remaining: u64, offset: usize },
        Done,
    }

    enum Output {
        Data { rsv: u8, op: OpCode, input: Option<(usize, usize)> },
        Control { op: OpCode, start: usize, end: usize },
    }

    pub struct Decoder<K: Kernels> {
        role: Role,
        limit: u64,
        buf: Vec<u8>,
        start: usize,
        end: usize,
        state: State,
        msg: Vec<u8>,
        msg_taken: bool,
        fragment: Option<(OpCode, u8)>,
        msg_len: u64,
        utf8: K::V,
        _k: PhantomData<K>,
    }

    impl<K: Kernels> Decoder<K> {
        pub fn new(config: &Config) -> Self {
            Self {
                role: config.role,
                limit: config.max_read_limit as u64,
                buf: vec![0; config.max_chunk_size.clamp(4096, 1 << 20).max(MAX_HEADER_LEN + MAX_CONTROL_PAYLOAD)],
                start: 0,
                end: 0,
                state: State::Header,
                msg: Vec::new(),
                msg_taken: false,
                fragment: None,
                msg_len: 0,
                utf8: K::V::default(),
                _k: PhantomData,
            }
        }

        #[inline]
        pub fn read_buf(&mut self) -> &mut [u8] {
            if self.start == self.end {
                self.start = 0;
                self.end = 0;
            } else if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            &mut self.buf[self.end..]
        }

        #[inline]
        pub fn advance(&mut self, n: usize) {
            self.end = (self.end + n).min(self.buf.len());
        }

        #[inline]
        pub fn poll_message(&mut self) -> Result<Option<Event<'_>>, Error> {
            let Some(out) = self.step()? else { return Ok(None) };
            Ok(Some(self.event(out)))
        }

        #[inline]
        fn event(&self, out: Output) -> Event<'_> {
            match out {
                Output::Data { op, rsv, input } => Event::Message {
                    op,
                    rsv,
                    payload: match input {
                        Some((a, b)) => &self.buf[a..b],
                        None => &self.msg,
                    },
                },
                Output::Control { op, start, end } => {
                    let body = &self.buf[start..end];
                    match op {
                        OpCode::Ping => Event::Ping(body),
                        OpCode::Pong => Event::Pong(body),
                        _ => Event::Close {
                            frame: CloseFrame::parse(body).unwrap_or(CloseFrame { code: None, reason: "" }),
                            body,
                        },
                    }
                }
            }
        }

        #[inline]
        fn parse_header(&self) -> Result<Option<(Header, usize)>, Error> {
            let Some((h, len)) = Header::parse(&self.buf[self.start..self.end])? else { return Ok(None) };
            if h.rsv != 0 {
                return Err(Error::ProtocolReservedBits { rsv: h.rsv });
            }
            match (self.role, h.mask.is_some()) {
                (Role::Server, false) => return Err(Error::UnmaskedFrame),
                (Role::Client, true) => return Err(Error::MaskedFrame),
                _ => {}
            }
            match (h.op, self.fragment) {
                (OpCode::Continuation, None) => return Err(Error::UnexpectedContinuation),
                (OpCode::Text | OpCode::Binary, Some(_)) => return Err(Error::ExpectedContinuation),
                _ => {}
            }
            if h.op.is_data() || h.op == OpCode::Continuation {
                let total = self.msg_len.saturating_add(h.payload_len);
                if total > self.limit {
                    return Err(Error::MessageTooBig { limit: self.limit });
                }
            }
            Ok(Some((h, len)))
        }

        #[inline]
        fn step(&mut self) -> Result<Option<Output>, Error> {
            if self.msg_taken {
                self.msg.clear();
                self.msg_taken = false;
            }
            let result = self.step_inner();
            if result.is_err() {
                self.state = State::Done;
            }
            result
        }

        #[inline]
        fn step_inner(&mut self) -> Result<Option<Output>, Error> {
            loop {
                match self.state {
                    State::Done => return Err(Error::WebSocketClosed),
                    State::Header => {
                        let Some((h, hlen)) = self.parse_header()? else { return Ok(None) };
                        let body = self.start + hlen;
                        let whole = (self.end - body) as u64 >= h.payload_len;
                        if h.op.is_control() {
                            if !whole {
                                return Ok(None);
                            }
                            return self.control(h, body).map(Some);
                        }
                        if h.is_final && h.op != OpCode::Continuation && whole {
                            return self.in_place(h, body).map(Some);
                        }
                        self.start = body;
                        self.begin_frame(&h);
                        self.state = State::Payload { header: h, remaining: h.payload_len, offset: 0 };
                    }
                    State::Payload { header, remaining, offset } => {
                        let n = remaining.min((self.end - self.start) as u64) as usize;
                        let old = self.msg.len();
                        let src = &self.buf[self.start..self.start + n];
                        match header.mask {
                            Some(key) => K::extend_unmasked(&mut self.msg, src, key, offset),
                            None => self.msg.extend_from_slice(src),
                        }
                        if matches!(self.fragment, Some((OpCode::Text, 0)))
                            && !K::feed(&mut self.utf8, &self.msg[old..])
                        {
                            return Err(Error::InvalidUtf8);
                        }
                        self.start += n;
                        let remaining = remaining - n as u64;
                        if remaining > 0 {
                            self.state = State::Payload { header, remaining, offset: offset + n };
                            return Ok(None);
                        }
                        self.state = State::Header;
                        if let Some(out) = self.end_frame(&header)? {
                            return Ok(Some(out));
                        }
                    }
                }
            }
        }

        fn begin_frame(&mut self, h: &Header) {
            if h.op != OpCode::Continuation {
                self.fragment = Some((h.op, h.rsv));
                K::reset(&mut self.utf8);
            }
            self.msg_len += h.payload_len;
            let want = self.msg.len().saturating_add(h.payload_len as usize);
            if want > self.msg.capacity() {
                self.msg.reserve(want - self.msg.len());
            }
        }

        fn end_frame(&mut self, h: &Header) -> Result<Option<Output>, Error> {
            let (op, rsv) = self.fragment.unwrap_or((h.op, h.rsv));
            if h.is_final {
                if matches!(self.fragment, Some((OpCode::Text, 0))) && !K::finish(&mut self.utf8) {
                    return Err(Error::InvalidUtf8);
                }
                self.fragment = None;
                self.msg_len = 0;
            } else {
                return Ok(None);
            }
            self.msg_taken = true;
            Ok(Some(Output::Data { rsv, op, input: None }))
        }

        #[inline]
        fn in_place(&mut self, h: Header, body: usize) -> Result<Output, Error> {
            let end = body + h.payload_len as usize;
            if let Some(key) = h.mask {
                K::apply_mask(&mut self.buf[body..end], key, 0);
            }
            self.start = end;
            if h.op == OpCode::Text {
                K::reset(&mut self.utf8);
                simdutf8::basic::from_utf8(&self.buf[body..end]).map_err(|_| Error::InvalidUtf8)?;
            }
            self.fragment = None;
            self.msg_len = 0;
            Ok(Output::Data { rsv: h.rsv, op: h.op, input: Some((body, end)) })
        }

        fn control(&mut self, h: Header, body: usize) -> Result<Output, Error> {
            let end = body + h.payload_len as usize;
            if let Some(key) = h.mask {
                K::apply_mask(&mut self.buf[body..end], key, 0);
            }
            self.start = end;
            if h.op == OpCode::Close {
                CloseFrame::parse(&self.buf[body..end])?;
                self.state = State::Done;
            }
            Ok(Output::Control { op: h.op, start: body, end })
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Benches
// ---------------------------------------------------------------------------------------------

fn bench_mask(c: &mut Criterion) {
    let key = [0x12, 0x34, 0x56, 0x78];
    for (name, len, reps) in [("16B", 16usize, 1000usize), ("64KiB", 64 << 10, 1)] {
        let mut g = c.benchmark_group(format!("proto_apply_mask/{name}"));
        g.throughput(Throughput::Bytes((len * reps) as u64));
        // Payloads start right after a 6- or 8-byte header.
        let mut buf = vec![0xa5u8; (len + 8) * reps];
        let stride = len + 8;
        g.bench_function("current", |b| {
            b.iter(|| {
                for r in 0..reps {
                    apply_mask(black_box(&mut buf[r * stride + 6..r * stride + 6 + len]), key, 0)
                }
            })
        });
        g.bench_function("proposed", |b| {
            b.iter(|| {
                for r in 0..reps {
                    new_mask::apply_mask(black_box(&mut buf[r * stride + 6..r * stride + 6 + len]), key, 0)
                }
            })
        });
        g.finish();
    }
}

/// Verbatim copies of the write path of `src/` (`mask::copy_masked`, `encode::MaskKeys`,
/// `Encoder::encode_frame`, `conn::write::WriteState::write_frame`, `Conn::write_message`,
/// deflate left out), with one switch: `NEW` masks as the proposed `encode_frame` does. The
/// real `Conn` (benches/codec.rs `encode_client/*/lowbit_conn`) masks 4–8x slower than the real
/// `Encoder` alone because, inlined there, `copy_masked` compiles to a byte-at-a-time loop.
mod faithful {
    use lowbit_websockets::error::Error;
    use lowbit_websockets::frame::{Header, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode};
    use lowbit_websockets::role::Role;
    use std::io::Write;

    const BATCH: usize = 64 * 1024;

    #[inline]
    pub fn copy_masked_src(dst: &mut [u8], src: &[u8], key: [u8; 4], offset: usize) {
        debug_assert_eq!(dst.len(), src.len());
        let key = rotate(key, offset);
        let wide = widen(key);
        let mut d = dst.chunks_exact_mut(32);
        let mut s = src.chunks_exact(32);
        for (db, sb) in (&mut d).zip(&mut s) {
            for ((o, i), k) in db.iter_mut().zip(sb.iter()).zip(wide.iter()) {
                *o = i ^ k;
            }
        }
        for ((o, i), k) in d.into_remainder().iter_mut().zip(s.remainder()).zip(key.iter().cycle()) {
            *o = i ^ k;
        }
    }

    #[inline]
    fn rotate(key: [u8; 4], offset: usize) -> [u8; 4] {
        let mut k = key;
        k.rotate_left(offset % 4);
        k
    }

    #[inline]
    fn widen(key: [u8; 4]) -> [u8; 32] {
        let mut wide = [0u8; 32];
        for (w, k) in wide.iter_mut().zip(key.iter().cycle()) {
            *w = *k;
        }
        wide
    }

    pub struct MaskKeys {
        pool: [u8; 256],
        used: usize,
    }

    impl MaskKeys {
        pub fn new() -> Self {
            Self { pool: [0; 256], used: 256 }
        }

        pub fn next(&mut self) -> Result<[u8; 4], Error> {
            if self.used == self.pool.len() {
                getrandom::fill(&mut self.pool).map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?;
                self.used = 0;
            }
            let k = &self.pool[self.used..self.used + 4];
            self.used += 4;
            Ok([k[0], k[1], k[2], k[3]])
        }
    }

    pub struct Encoder<const NEW: bool> {
        role: Role,
        keys: MaskKeys,
    }

    impl<const NEW: bool> Encoder<NEW> {
        #[inline]
        pub fn encode_frame(
            &mut self,
            is_final: bool,
            rsv: u8,
            op: OpCode,
            payload: &[u8],
            out: &mut Vec<u8>,
        ) -> Result<(), Error> {
            if op.is_control() {
                if payload.len() > MAX_CONTROL_PAYLOAD {
                    return Err(Error::WebSocketClosed); // src: a misuse error
                }
                if !is_final {
                    return Err(Error::WebSocketClosed); // src: a misuse error
                }
            }
            let mask = match self.role {
                Role::Client => Some(self.keys.next()?),
                Role::Server => None,
            };
            let header = Header { is_final, rsv: rsv & 0x70, op, mask, payload_len: payload.len() as u64 };
            let mut head = [0; MAX_HEADER_LEN];
            let n = header.encode(&mut head);
            out.reserve(n + payload.len());
            out.extend_from_slice(&head[..n]);
            match mask {
                None => out.extend_from_slice(payload),
                // The proposed `encode_frame`: copy, then mask in place (no zero-fill).
                Some(key) if NEW => {
                    let old = out.len();
                    out.extend_from_slice(payload);
                    super::new_mask::apply_mask(&mut out[old..], key, 0);
                }
                Some(key) => {
                    let old = out.len();
                    out.resize(old + payload.len(), 0);
                    copy_masked_src(&mut out[old..], payload, key, 0);
                }
            }
            Ok(())
        }
    }

    pub struct Conn<S, const NEW: bool> {
        stream: S,
        enc: Encoder<NEW>,
        out: Vec<u8>,
        max_chunk: usize,
        close_sent: bool,
    }

    impl<S: Write, const NEW: bool> Conn<S, NEW> {
        pub fn new(stream: S, role: Role, max_chunk: usize) -> Self {
            let enc = Encoder { role, keys: MaskKeys { pool: [0; 256], used: 256 } };
            Self { stream, enc, out: Vec::new(), max_chunk, close_sent: false }
        }

        pub fn write_message(&mut self, op: OpCode, payload: &[u8]) -> Result<(), Error> {
            write_frame(
                &mut self.enc,
                &mut self.out,
                self.max_chunk,
                self.close_sent,
                &mut self.stream,
                true,
                0,
                op,
                payload,
            )
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn write_frame<W: Write, const NEW: bool>(
        enc: &mut Encoder<NEW>,
        out: &mut Vec<u8>,
        max_chunk: usize,
        close_sent: bool,
        w: &mut W,
        fin: bool,
        rsv: u8,
        op: OpCode,
        payload: &[u8],
    ) -> Result<(), Error> {
        if close_sent {
            return Err(Error::WebSocketClosed);
        }
        if OpCode::from_u8(op as u8).is_none() {
            return Err(Error::WebSocketClosed); // src: a misuse error
        }
        out.clear();
        if op.is_control() || payload.len() <= max_chunk {
            enc.encode_frame(fin, rsv, op, payload, out)?;
        } else {
            let mut chunks = payload.chunks(max_chunk).peekable();
            let (mut op, mut rsv) = (op, rsv);
            while let Some(chunk) = chunks.next() {
                let last = chunks.peek().is_none();
                enc.encode_frame(fin && last, rsv, op, chunk, out)?;
                (op, rsv) = (OpCode::Continuation, 0);
                if out.len() >= BATCH && !last {
                    w.write_all(out)?;
                    out.clear();
                }
            }
        }
        w.write_all(out)?;
        w.flush()?;
        Ok(())
    }
}

/// `Encoder::encode_frame` for a masked frame as proposed: copy, then mask in place. `src/`
/// does `out.resize(len, 0)` (a memset that perf puts at 30% of a fast 64 KiB masked encode)
/// and then `copy_masked` over it.
fn encode_masked_proposed(key: [u8; 4], payload: &[u8], out: &mut Vec<u8>) {
    let header =
        Header { is_final: true, rsv: 0, op: OpCode::Text, mask: Some(key), payload_len: payload.len() as u64 };
    let mut head = [0; MAX_HEADER_LEN];
    let n = header.encode(&mut head);
    out.reserve(n + payload.len());
    out.extend_from_slice(&head[..n]);
    let old = out.len();
    out.extend_from_slice(payload);
    new_mask::apply_mask(&mut out[old..], key, 0);
}

/// A socket stand-in that copies what it is given (see benches/codec.rs `Sink`).
struct Sink {
    scratch: Vec<u8>,
}

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if self.scratch.len() + b.len() > 256 << 10 {
            self.scratch.clear();
        }
        self.scratch.extend_from_slice(b);
        Ok(b.len())
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut n = 0;
        for b in bufs {
            n += self.write(b)?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn bench_encode(c: &mut Criterion) {
    for (name, len, n) in [("1KiB", 1024usize, 200usize), ("64KiB", 64 << 10, 16)] {
        let payload = text(len);
        let p = payload.as_bytes();
        let mut g = c.benchmark_group(format!("proto_encode_client/{name}"));
        g.throughput(if len <= 1024 { Throughput::Elements(n as u64) } else { Throughput::Bytes((len * n) as u64) });
        let sink = || Sink { scratch: Vec::with_capacity(512 << 10) };
        let chunk = len.max(4096);

        let mut conn =
            lowbit_websockets::Conn::with_config(ReadNothing(sink()), Config::new(Role::Client).max_chunk_size(chunk));
        g.bench_function("current", |b| {
            b.iter(|| (0..n).for_each(|_| conn.write_message(OpCode::Text, black_box(p)).unwrap()))
        });

        let mut f0 = faithful::Conn::<_, false>::new(sink(), Role::Client, chunk);
        g.bench_function("copy_of_current", |b| {
            b.iter(|| (0..n).for_each(|_| f0.write_message(OpCode::Text, black_box(p)).unwrap()))
        });

        let mut f1 = faithful::Conn::<_, true>::new(sink(), Role::Client, chunk);
        g.bench_function("proposed", |b| {
            b.iter(|| (0..n).for_each(|_| f1.write_message(OpCode::Text, black_box(p)).unwrap()))
        });

        // The Encoder alone (no Conn), as it is and with the zero-fill dropped.
        let mut out = Vec::new();
        let mut s = sink();
        let mut enc = Encoder::new(Role::Client);
        g.bench_function("encoder_alone", |b| {
            b.iter(|| {
                for _ in 0..n {
                    out.clear();
                    enc.encode_frame(true, 0, OpCode::Text, black_box(p), &mut out).unwrap();
                    s.write_all(&out).unwrap();
                }
            })
        });
        let mut keys = faithful::MaskKeys::new();
        g.bench_function("encoder_alone_proposed", |b| {
            b.iter(|| {
                for _ in 0..n {
                    out.clear();
                    encode_masked_proposed(keys.next().unwrap(), black_box(p), &mut out);
                    s.write_all(&out).unwrap();
                }
            })
        });
        g.finish();
    }
}

/// `Conn` needs `Read`; the encode benches never read.
struct ReadNothing(Sink);

impl io::Read for ReadNothing {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }
}

impl Write for ReadNothing {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The proposed kernels agree with `src/`'s at every length and offset.
fn self_check() {
    new_utf8::self_check();
    let key = [0x12, 0x34, 0x56, 0x78];
    for len in 0..300 {
        for offset in 0..8 {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut a = data.clone();
            let mut b = data.clone();
            apply_mask(&mut a, key, offset);
            new_mask::apply_mask(&mut b, key, offset);
            assert_eq!(a, b, "apply_mask len {len} offset {offset}");
            let mut c = vec![0; len];
            new_mask::copy_masked(&mut c, &data, key, offset);
            assert_eq!(a, c, "copy_masked len {len} offset {offset}");
        }
    }
}

fn bench_utf8(c: &mut Criterion) {
    self_check();
    // 64 KiB of text fed in 4 KiB pieces, as the decoder's payload path feeds it.
    let t = text(64 << 10);
    let mut g = c.benchmark_group("proto_utf8_pieces/64KiB");
    g.throughput(Throughput::Bytes(t.len() as u64));
    g.bench_function("current", |b| {
        b.iter(|| {
            let mut v = Utf8Validator::new();
            for piece in black_box(t.as_bytes()).chunks(4090) {
                v.feed(piece).unwrap();
            }
            v.finish().unwrap();
        })
    });
    g.bench_function("basic_tail_carry", |b| {
        b.iter(|| {
            let mut v = new_utf8::Utf8Validator::new();
            for piece in black_box(t.as_bytes()).chunks(4090) {
                v.feed(piece).unwrap();
            }
            v.finish().unwrap();
        })
    });
    g.bench_function("basic_whole_reference", |b| {
        b.iter(|| simdutf8::basic::from_utf8(black_box(t.as_bytes())).unwrap().len())
    });
    g.bench_function("compat_whole_reference", |b| {
        b.iter(|| simdutf8::compat::from_utf8(black_box(t.as_bytes())).unwrap().len())
    });
    g.finish();
}

macro_rules! decode_loop {
    ($dec:expr, $src:expr, $n:expr) => {{
        let (dec, src, n) = ($dec, $src, $n);
        let (mut pos, mut got, mut bytes) = (0, 0, 0);
        while got < n {
            match dec.poll_message() {
                Ok(Some(Event::Message { payload, .. })) => {
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
    }};
}

fn bench_decode(c: &mut Criterion) {
    for (name, len, n) in [("16B", 16usize, 1000usize), ("64KiB", 64 << 10, 16), ("1MiB", 1 << 20, 4)] {
        let payload = text(len);
        let src = encode_masked(payload.as_bytes(), n);
        let expect = len * n;
        let mut g = c.benchmark_group(format!("proto_decode_text/{name}"));
        g.throughput(if len <= 1024 { Throughput::Elements(n as u64) } else { Throughput::Bytes(expect as u64) });

        let mut d0 = Decoder::new(&server_config());
        assert_eq!(decode_loop!(&mut d0, &src, n), expect);
        g.bench_function("current", |b| b.iter(|| decode_loop!(&mut d0, &src, n)));

        let mut d1 = proto_decode::Decoder::<Cur>::new(&server_config());
        assert_eq!(decode_loop!(&mut d1, &src, n), expect);
        g.bench_function("inline_only", |b| b.iter(|| decode_loop!(&mut d1, &src, n)));

        let mut d2 = proto_decode::Decoder::<New>::new(&server_config());
        assert_eq!(decode_loop!(&mut d2, &src, n), expect);
        g.bench_function("proposed", |b| b.iter(|| decode_loop!(&mut d2, &src, n)));

        g.finish();
    }
}

criterion_group! {
    name = proto;
    config = Criterion::default()
        .without_plots()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1200))
        .sample_size(20)
        .nresamples(20_000);
    targets = bench_mask, bench_utf8, bench_decode, bench_encode
}
criterion_main!(proto);
