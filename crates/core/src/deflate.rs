//! permessage-deflate (RFC 7692): negotiated settings, the pluggable [`Compressor`], and the
//! bounded inflater.
//!
//! A compressed message is raw DEFLATE data ending in a sync flush whose `00 00 ff ff` tail is
//! stripped by the sender and restored by the receiver (§7.2.1, §7.2.2). Both sides keep their
//! LZ77 history across messages ("context takeover") unless `*_no_context_takeover` was
//! negotiated, in which case the engine is reset, not rebuilt, after each message.
//! Inflation is bounded: output stops at `max_read_limit`, whatever the input claims.

pub mod negotiate;

use miniz_oxide::deflate::core::{CompressorOxide, create_comp_flags_from_zip_params};
use miniz_oxide::{MZError, MZFlush};

use crate::error::Error;

/// The four bytes a sync flush ends with; stripped on write, restored on read (RFC 7692 §7.2.1).
pub const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// What this endpoint asks for or accepts, before negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateOptions {
    /// Server: always reset our compressor per message. Client: ask the server to.
    pub server_no_context_takeover: bool,
    /// Server: ask the client to reset its compressor per message. Client: reset ours.
    pub client_no_context_takeover: bool,
    /// Client: ask the server to compress with at most this window (8–15). Server: compress
    /// with at most this window, and say so in the answer even when the client did not ask
    /// (RFC 7692 §7.1.2.1): the peer then needs only that much memory to inflate.
    pub server_max_window_bits: Option<u8>,
    /// Client: compress with at most this window, and name it in the offer. Server: when the
    /// client offers `client_max_window_bits`, ask it to compress with at most this window
    /// (or the smaller one it named). That saves the client memory; ours stays the same (see
    /// [`Inflater::new`]).
    pub client_max_window_bits: Option<u8>,
    /// Compression level, 0 (store) to 9 (best), with zlib's meaning: each engine writes
    /// about as many bytes as zlib does at the same level (see [`Engine`]). Default 6, zlib's
    /// default, as in `ws` and Python `websockets`.
    pub level: u8,
    /// zlib's `memLevel`, 1–9 (default 8, zlib's): the compressor buffers `2^(mem_level + 6)`
    /// symbols per block, 7 bytes each. Lower saves memory (8: 112 KiB, 5: 14 KiB) for a few
    /// more block headers on the wire. zlib-rs only; miniz_oxide's buffers are fixed.
    pub mem_level: u8,
    /// Without context takeover for our compressor, messages shorter than this are sent
    /// uncompressed. Default 1024, like `ws`, which applies it the same way: with context
    /// takeover a short message compresses well against the history, so every one is.
    pub threshold: usize,
    /// The compression engine; negotiation accepts only the windows it can write with.
    pub engine: Engine,
    /// What the compressor holds between messages: everything (the default, best ratio) or
    /// nothing ([`Memory::Lean`]).
    pub memory: Memory,
}

/// How much compression memory a connection holds between messages.
///
/// Measured with zlib-rs 0.6.8 (live heap bytes after one message): a compressor with a
/// 15-bit window and memLevel 8 holds 371 KiB, 15/5 273 KiB, 12/5 161 KiB, 9/1 134 KiB
/// (zlib-rs's hash table is 128 KiB whatever the window and memLevel), and the inflater
/// 46 KiB (zlib-rs keeps a 32 KiB window whatever the negotiated one). So no window or
/// memLevel brings a kept compressor near Python `websockets`' 57 KiB per connection (C zlib,
/// 12/5); only not keeping it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Memory {
    /// Context takeover as negotiated and the compressor kept for the connection: the best
    /// ratio, as `ws` does.
    #[default]
    Full,
    /// Our compressor takes no context over: a server answers `server_no_context_takeover`
    /// (RFC 7692 §7.1.1.1 lets it add that unasked), a client offers
    /// `client_no_context_takeover`. The compressor is then built for each compressed message
    /// and freed after it, so between messages a connection holds only its inflater (46 KiB
    /// with zlib-rs). Costs ratio: each message is compressed on its own, and, as in `ws`,
    /// without context takeover messages below the threshold go out raw; against `ws`'s
    /// default on our corpus (`tests/deflate_parity.rs`), 1.55x the bytes on the mix and 3.7x
    /// on short chat messages. And one allocation per compressed message.
    Lean,
}

/// The built-in compression engines.
///
/// The default, for every face, is zlib-rs: it compresses faster (see the deflate benchmarks
/// in `BENCHMARKS.md`) and can honor a peer's smaller window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Engine {
    /// miniz_oxide: pure Rust, writes with a 32 KiB window only, so a peer's demand for a
    /// smaller window is declined.
    Miniz,
    /// zlib-rs through flate2 (the default): faster, and honors windows of 9–15 bits.
    #[default]
    ZlibRs,
}

impl Engine {
    /// The smallest window (bits) this engine can write with.
    pub const fn min_window_bits(self) -> u8 {
        match self {
            Engine::Miniz => 15,
            Engine::ZlibRs => 9,
        }
    }

    /// A compressor for a negotiated configuration.
    pub fn compressor(self, config: &DeflateConfig) -> Box<dyn Compressor> {
        match self {
            Engine::Miniz => Box::new(MinizCompressor::new(config.level)),
            Engine::ZlibRs => {
                Box::new(ZlibRsCompressor::with_mem_level(config.level, config.compress_window_bits, config.mem_level))
            }
        }
    }
}

impl Default for DeflateOptions {
    fn default() -> Self {
        Self {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: None,
            client_max_window_bits: None,
            level: DEFAULT_LEVEL,
            mem_level: DEFAULT_MEM_LEVEL,
            threshold: 1024,
            engine: Engine::default(),
            memory: Memory::default(),
        }
    }
}

/// zlib's default compression level (`Z_DEFAULT_COMPRESSION`), the one `ws` uses.
pub const DEFAULT_LEVEL: u8 = 6;

/// zlib's default `memLevel`.
pub const DEFAULT_MEM_LEVEL: u8 = 8;

impl DeflateOptions {
    /// Whether the compressor of `ours` (this endpoint's role) takes no context over: asked
    /// for by its option, or by [`Memory::Lean`].
    pub fn no_context_takeover(&self, ours: crate::Role) -> bool {
        let asked = match ours {
            crate::Role::Server => self.server_no_context_takeover,
            crate::Role::Client => self.client_no_context_takeover,
        };
        asked || self.memory == Memory::Lean
    }

    /// Whether our compressor can honor a peer's window limit of `bits`.
    pub fn supports_window_bits(&self, bits: u8) -> bool {
        (self.engine.min_window_bits()..=15).contains(&bits)
    }
}

/// The outcome of negotiation, from this endpoint's point of view: the one value the codec and
/// `Conn` take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Reset our compressor after each message.
    pub compress_no_context_takeover: bool,
    /// Reset our inflater after each message.
    pub decompress_no_context_takeover: bool,
    /// The window our compressor may use (8–15).
    pub compress_window_bits: u8,
    /// The window the peer compresses with (our inflater reads any: see [`Inflater::new`]).
    pub decompress_window_bits: u8,
    /// Compression level, 0–9, with zlib's meaning.
    pub level: u8,
    /// zlib's `memLevel` for the compressor, 1–9 (zlib-rs only).
    pub mem_level: u8,
    /// Without context takeover, messages shorter than this are sent uncompressed (see
    /// [`DeflateConfig::threshold_in_force`]).
    pub threshold: usize,
    /// The engine that compresses.
    pub engine: Engine,
    /// Free the compressor after each message (and build it for the next compressed one):
    /// [`Memory::Lean`] with no context takeover for our compressor.
    pub transient_compressor: bool,
}

impl DeflateConfig {
    /// The size from which a message is compressed: [`Self::threshold`] without context
    /// takeover; with it, 0. A short message then costs a few bytes against the history
    /// (`ws`'s rule: on a corpus of chat messages below 1 KiB, the threshold would send 3.5x
    /// what `ws` sends).
    pub fn threshold_in_force(&self) -> usize {
        if self.compress_no_context_takeover { self.threshold } else { 0 }
    }

    /// The settings `options` fix before negotiation (level, memory, threshold, engine), with
    /// context takeover both ways and full windows.
    pub fn from_options(options: &DeflateOptions) -> Self {
        Self {
            level: options.level,
            mem_level: options.mem_level,
            threshold: options.threshold,
            engine: options.engine,
            transient_compressor: options.memory == Memory::Lean,
            ..Self::default()
        }
    }
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            compress_no_context_takeover: false,
            decompress_no_context_takeover: false,
            compress_window_bits: 15,
            decompress_window_bits: 15,
            level: DEFAULT_LEVEL,
            mem_level: DEFAULT_MEM_LEVEL,
            threshold: 1024,
            engine: Engine::default(),
            transient_compressor: false,
        }
    }
}

/// A DEFLATE engine for the write side, like the seed's `Compressor` interface.
pub trait Compressor: Send {
    /// Compresses `input` as part of the current message and appends the output to `out`,
    /// ending with a sync flush (so the output ends with [`SYNC_TAIL`]).
    fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), Error>;
    /// Forgets the history, so the next message starts a fresh window. Must be cheap.
    fn reset(&mut self);
}

/// The pure-Rust engine: miniz_oxide, raw DEFLATE, 32 KiB window, state reused across messages.
pub struct MinizCompressor {
    inner: Box<CompressorOxide>,
}

impl MinizCompressor {
    /// A compressor at `level` (0–9, zlib's meaning: miniz_oxide's level 1 writes up to 1.2x
    /// what zlib's does on our corpus, its level 2 no more, so level 1 runs as 2).
    pub fn new(level: u8) -> Self {
        let level = if level == 1 { 2 } else { level.min(9) };
        // Negative window bits select raw DEFLATE (no zlib header), as RFC 7692 requires.
        let flags = create_comp_flags_from_zip_params(i32::from(level), -15, 0);
        Self { inner: Box::new(CompressorOxide::new(flags)) }
    }
}

impl Compressor for MinizCompressor {
    fn compress(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        loop {
            let old = out.len();
            let room = (input.len() / 2).max(1024) + 64;
            out.resize(old + room, 0);
            let r = miniz_oxide::deflate::stream::deflate(&mut self.inner, input, &mut out[old..], MZFlush::Sync);
            out.truncate(old + r.bytes_written);
            input = &input[r.bytes_consumed..];
            match r.status {
                // Done when all input is in and the flush fit: the output was not filled and
                // ends with the sync marker. (A call that only drains output pending from a
                // full buffer returns early without the flush; the next call emits it.)
                Ok(_) if input.is_empty() && r.bytes_written < room && out.ends_with(&SYNC_TAIL) => return Ok(()),
                Ok(_) | Err(MZError::Buf) => {}
                Err(_) => return Err(Error::Io(std::io::Error::other("deflate engine failed"))),
            }
        }
    }

    fn reset(&mut self) {
        self.inner.reset();
    }
}

/// The default engine: zlib-rs, raw DEFLATE with the negotiated window.
///
/// Levels keep zlib's meaning. zlib-rs follows zlib-ng, whose levels pick other matchers than
/// zlib's: its level 1 writes static Huffman codes only (random data grows; a repeated pattern
/// costs 1.3x zlib's level 1), and its levels 3–6 use the "medium" matcher, which on our
/// corpus (`tests/deflate_parity.rs`) writes up to 1.8x what zlib's level 6 does, the default
/// of `ws` and Python `websockets`. So each level runs the zlib-rs level whose matcher is
/// zlib's: zlib-rs's level 2 is zlib's level 1 (the fast matcher with the same parameters), and
/// its level 7 is zlib's lazy matcher, which writes no more than zlib's levels 4–6 do.
pub struct ZlibRsCompressor {
    inner: zlib_rs::Deflate,
}

impl ZlibRsCompressor {
    /// A compressor at `level` (0–9) writing with a window of `window_bits` (9–15).
    pub fn new(level: u8, window_bits: u8) -> Self {
        Self::with_mem_level(level, window_bits, DEFAULT_MEM_LEVEL)
    }

    /// [`Self::new`] with zlib's `memLevel` (1–9): how many symbols a block buffers.
    pub fn with_mem_level(level: u8, window_bits: u8, mem_level: u8) -> Self {
        let config = zlib_rs::DeflateConfig {
            level: Self::engine_level(level),
            method: zlib_rs::Method::Deflated,
            // Negative window bits select raw DEFLATE (no zlib header), as RFC 7692 requires.
            window_bits: -i32::from(window_bits.clamp(9, 15)),
            mem_level: i32::from(mem_level.clamp(1, 9)),
            strategy: zlib_rs::Strategy::Default,
        };
        Self { inner: zlib_rs::Deflate::new_with_config(config) }
    }

    /// The zlib-rs level that writes about what zlib writes at `level` (see the type's doc).
    fn engine_level(level: u8) -> i32 {
        match level {
            0 => 0,
            1 | 2 => 2,
            3 => 3,
            4..=7 => 7,
            l => i32::from(l.min(9)),
        }
    }
}

/// An empty non-final stored block: the whole of a sync flush that has no data to flush.
const EMPTY_STORED_BLOCK: [u8; 5] = [0x00, 0x00, 0x00, 0xff, 0xff];

impl Compressor for ZlibRsCompressor {
    fn compress(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if input.is_empty() {
            // zlib's deflate() makes no progress on no input right after a completed flush
            // (Z_BUF_ERROR, nothing written), so an empty message would come out empty, without
            // the sync marker. The peer would restore the tail onto nothing: `00 00 ff ff` reads
            // as a stored-block header with LEN 0xff00 whose NLEN is cut short, and that block
            // swallows the start of the next message ("invalid stored block lengths" in zlib).
            // Every call ends with a completed sync flush (and a fresh or reset stream has
            // written nothing), so the stream is byte-aligned at a block boundary here: the
            // empty stored block the flush would have written is exactly right, and leaves the
            // engine's window untouched.
            out.extend_from_slice(&EMPTY_STORED_BLOCK);
            return Ok(());
        }
        loop {
            // Output into the capacity the buffer already has (it is reused across messages).
            let old = out.len();
            out.reserve((input.len() / 2).max(1024) + 64);
            let room = out.capacity() - old;
            out.resize(old + room, 0);
            let (before_in, before_out) = (self.inner.total_in(), self.inner.total_out());
            let status = self.inner.compress(input, &mut out[old..], zlib_rs::DeflateFlush::SyncFlush);
            let consumed = (self.inner.total_in() - before_in) as usize;
            let written = (self.inner.total_out() - before_out) as usize;
            out.truncate(old + written);
            status.map_err(|e| Error::Io(std::io::Error::other(e.as_str())))?;
            input = &input[consumed..];
            if input.is_empty() && written < room {
                return Ok(());
            }
        }
    }

    fn reset(&mut self) {
        self.inner.reset();
    }
}

/// The read side: a raw-DEFLATE inflater whose output never passes a limit.
///
/// It is zlib-rs (through flate2), not miniz_oxide: miniz_oxide's streaming inflater copies
/// from its wrapping window without checking that a back-reference stays inside the data
/// seen since the last reset, so a peer could reference bytes before the stream started (or,
/// after `no_context_takeover`, stale history) without an error. zlib-rs rejects both.
pub struct Inflater {
    state: flate2::Decompress,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Inflater")
    }
}

impl Default for Inflater {
    fn default() -> Self {
        Self::new()
    }
}

impl Inflater {
    /// An inflater with a 32 KiB window, which reads data written with any window size.
    ///
    /// A smaller negotiated window is not enforced here, and saves no memory: zlib-rs keeps
    /// 32 KiB of history whatever window bits it is given, and checks distances against that.
    pub fn new() -> Self {
        Self { state: flate2::Decompress::new_with_window_bits(false, 15) }
    }

    /// Forgets the history (the peer resets its compressor per message).
    pub fn reset(&mut self) {
        self.state.reset(false);
    }

    /// Inflates one message's `data` (with the sync tail restored) and appends it to `out`.
    /// Fails with `MessageTooBig` as soon as `out` would pass `limit` bytes, having grown `out`
    /// to at most `limit + 1` bytes, and with `InvalidCompressedData` on corrupt input.
    ///
    /// A message may end its DEFLATE stream with a final block (BFINAL, RFC 7692 §7.2.3.4).
    /// What may follow that block is only the padding the RFC describes: one byte holding the
    /// header of an empty stored block, which the restored tail completes, or nothing at all.
    /// Anything else lies outside the stream and is corrupt. The next message starts a new
    /// stream, with no history.
    pub fn inflate(&mut self, data: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), Error> {
        match self.feed(data, out, limit)? {
            // The tail would complete the padding's empty stored block: nothing to inflate.
            Some(rest) if rest.is_empty() || (rest.len() == 1 && rest[0] & 0b111 == 0) => {}
            Some(_) => return Err(Error::InvalidCompressedData),
            None => match self.feed(&SYNC_TAIL, out, limit)? {
                // The tail itself ended a final block that `data` left unfinished.
                Some(rest) if !rest.is_empty() => return Err(Error::InvalidCompressedData),
                _ => {}
            },
        }
        if out.len() > limit {
            return Err(Error::MessageTooBig { limit: limit as u64 });
        }
        Ok(())
    }

    /// Inflates `input` into `out` (see [`Self::inflate`]). Returns what follows a final block,
    /// the stream being reset, or `None` when the stream goes on.
    fn feed<'a>(&mut self, mut input: &'a [u8], out: &mut Vec<u8>, limit: usize) -> Result<Option<&'a [u8]>, Error> {
        use flate2::{FlushDecompress, Status};
        loop {
            let old = out.len();
            if old > limit {
                return Err(Error::MessageTooBig { limit: limit as u64 });
            }
            // Grow geometrically, but never past one byte over the limit: that byte is how
            // an over-long message is detected without inflating any further.
            let cap = limit.saturating_sub(old).saturating_add(1);
            let room = old.max(input.len().saturating_mul(2)).max(4096).min(cap);
            out.resize(old + room, 0);
            let (in0, out0) = (self.state.total_in(), self.state.total_out());
            let status = self.state.decompress(input, &mut out[old..], FlushDecompress::None);
            let written = (self.state.total_out() - out0) as usize;
            out.truncate(old + written);
            let consumed = (self.state.total_in() - in0) as usize;
            input = &input[consumed..];
            match status {
                Ok(Status::StreamEnd) => {
                    self.reset();
                    return Ok(Some(input));
                }
                // The output filled up: there may be more to come.
                Ok(_) if written == room => {}
                Ok(_) if input.is_empty() => return Ok(None),
                // Input left, room left, and no progress: the data cannot go on.
                Ok(_) if consumed == 0 && written == 0 => return Err(Error::InvalidCompressedData),
                Ok(_) => {}
                Err(_) => return Err(Error::InvalidCompressedData),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(c: &mut dyn Compressor, inf: &mut Inflater, msg: &[u8]) {
        let mut z = Vec::new();
        c.compress(msg, &mut z).unwrap();
        assert!(z.ends_with(&SYNC_TAIL));
        z.truncate(z.len() - 4);
        let mut out = Vec::new();
        inf.inflate(&z, &mut out, 1 << 24).unwrap();
        assert_eq!(out, msg);
    }

    fn engines(level: u8, bits: u8) -> [Box<dyn Compressor>; 2] {
        [Box::new(MinizCompressor::new(level)), Box::new(ZlibRsCompressor::new(level, bits))]
    }

    #[test]
    fn roundtrips_with_context_takeover() {
        for mut c in engines(1, 15) {
            let mut inf = Inflater::new();
            for i in 0..50usize {
                let msg: Vec<u8> = (0..i * 997).map(|j| (j % 251) as u8 ^ (i as u8)).collect();
                roundtrip(&mut *c, &mut inf, &msg);
                roundtrip(&mut *c, &mut inf, b"");
            }
        }
    }

    #[test]
    fn roundtrips_without_context_takeover() {
        for mut c in engines(6, 15) {
            let mut inf = Inflater::new();
            for _ in 0..5 {
                roundtrip(&mut *c, &mut inf, b"hello hello hello hello");
                roundtrip(&mut *c, &mut inf, b"");
                c.reset();
                inf.reset();
                roundtrip(&mut *c, &mut inf, b"");
                c.reset();
                inf.reset();
            }
        }
    }

    #[test]
    fn zlib_rs_roundtrips_at_every_window() {
        let mut inf = Inflater::new();
        for bits in 9..=15 {
            let mut c = ZlibRsCompressor::new(1, bits);
            for i in 0..20usize {
                let msg: Vec<u8> = (0..i * 4001).map(|j| (j * 7 % 253) as u8).collect();
                roundtrip(&mut c, &mut inf, &msg);
            }
            c.reset();
            inf.reset();
        }
    }

    /// A raw-DEFLATE reader that keeps exactly `2^bits` bytes of history, like the peer's zlib
    /// inflating with the negotiated window: miniz_oxide's inflater over a wrapping output
    /// buffer of that size. A distance past the window reads a stale byte from the ring, so the
    /// output differs from what was sent. (zlib-rs allocates a 32 KiB window whatever the bits,
    /// and zlib checks a distance against its window only past the bytes of the current call,
    /// so neither would notice.)
    struct WindowedInflater {
        state: Box<miniz_oxide::inflate::core::DecompressorOxide>,
        ring: Vec<u8>,
        pos: usize,
    }

    impl WindowedInflater {
        fn new(bits: u8) -> Self {
            Self { state: Box::default(), ring: vec![0; 1 << bits], pos: 0 }
        }

        /// Inflates one message (the tail restored): all of `z` must go in and `want` come out.
        fn inflate_exactly(&mut self, z: &[u8], want: &[u8], what: &str) {
            use miniz_oxide::inflate::TINFLStatus;
            use miniz_oxide::inflate::core::{decompress, inflate_flags::TINFL_FLAG_HAS_MORE_INPUT};
            let data = [z, &SYNC_TAIL[..]].concat();
            let (mut input, mut out) = (&data[..], Vec::new());
            loop {
                let (status, used, written) =
                    decompress(&mut self.state, input, &mut self.ring, self.pos, TINFL_FLAG_HAS_MORE_INPUT);
                out.extend_from_slice(&self.ring[self.pos..self.pos + written]);
                self.pos = (self.pos + written) & (self.ring.len() - 1);
                input = &input[used..];
                match status {
                    TINFLStatus::NeedsMoreInput if input.is_empty() => break,
                    TINFLStatus::NeedsMoreInput | TINFLStatus::HasMoreOutput => {}
                    s => panic!("{what}: {s:?}"),
                }
            }
            assert!(out == want, "{what}: inflated {} bytes, not the {} sent", out.len(), want.len());
        }
    }

    /// A message of `size` bytes: JSON-like text, random bytes, or a short pattern repeated
    /// with some bytes changed, from `seed` (splitmix64).
    fn varied(seed: u64, size: usize) -> Vec<u8> {
        let mut x = seed;
        let mut next = move || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let mut v = Vec::with_capacity(size + 64);
        match seed % 3 {
            0 => {
                while v.len() < size {
                    let (id, score) = (next() % 1_000_000_000, next() % 1000);
                    v.extend_from_slice(format!("{{\"id\":{id},\"name\":\"über\",\"score\":{score}}},").as_bytes());
                }
            }
            1 => {
                while v.len() < size {
                    v.extend_from_slice(&next().to_le_bytes());
                }
            }
            _ => {
                let pattern: Vec<u8> = (0..1 + next() % 64).map(|_| next() as u8).collect();
                v.extend(pattern.iter().cycle().take(size));
                for _ in 0..size / 1000 {
                    let i = (next() % size as u64) as usize;
                    v[i] = next() as u8;
                }
            }
        }
        v.truncate(size);
        v
    }

    /// The bug the Python interop tests found: over context takeover, an empty message after
    /// another one came out of zlib-rs empty, so the peer's inflater (which restores the tail)
    /// read a broken stored block and failed on the next message. Every message here is checked
    /// by an inflater that enforces the negotiated window, as the peer's zlib does (our own
    /// `Inflater` reads any window, so it would not notice a distance past it).
    #[test]
    fn zlib_rs_long_run_inflates_within_the_window() {
        for (bits, level) in [(12, 1), (9, 1), (12, 9), (15, 0), (10, 6)] {
            let mut c = ZlibRsCompressor::new(level, bits);
            let mut d = WindowedInflater::new(bits);
            for i in 0..60u64 {
                let size = [0, 1, 100, 1500, 5000, 40_000, 0, 70_000][(i % 8) as usize];
                let msg = varied(i * 31 + bits as u64, size);
                let mut z = Vec::new();
                c.compress(&msg, &mut z).unwrap();
                let what = format!("window {bits}, level {level}, message {i} ({size} bytes)");
                assert!(z.ends_with(&SYNC_TAIL), "{what}: no sync flush in {z:02x?}");
                z.truncate(z.len() - SYNC_TAIL.len());
                d.inflate_exactly(&z, &msg, &what);
            }
        }
    }

    /// The checker above does enforce the window: data compressed with 32 KiB of history
    /// fails against a 4 KiB window.
    #[test]
    fn a_windowed_inflater_rejects_distances_past_its_window() {
        let msg = varied(4, 20_000); // random bytes: the only matches are 20000 bytes back
        let data = [&msg[..], &msg[..]].concat();
        let mut z = Vec::new();
        ZlibRsCompressor::new(1, 15).compress(&data, &mut z).unwrap();
        z.truncate(z.len() - SYNC_TAIL.len());
        let strict = std::panic::catch_unwind(|| {
            WindowedInflater::new(12).inflate_exactly(&z, &data, "window 15 read with 12");
        });
        assert!(strict.is_err());
        // ... and the same data inflates with the window it was written with.
        WindowedInflater::new(15).inflate_exactly(&z, &data, "window 15");
    }

    /// An output buffer that the compressed data fills exactly, or ends just short of the
    /// flush's end: the loop calls again (Sync, no input left) to finish the flush, and the
    /// result is still one valid message.
    #[test]
    fn zlib_rs_output_filled_exactly() {
        let msg = varied(1, 100_000); // random bytes: the output outgrows the first reservation
        let mut full = Vec::new();
        ZlibRsCompressor::new(1, 15).compress(&msg, &mut full).unwrap();
        for short in 0..8 {
            let mut c = ZlibRsCompressor::new(1, 15);
            let mut d = WindowedInflater::new(15);
            let mut z = Vec::with_capacity(full.len() - short);
            c.compress(&msg, &mut z).unwrap();
            assert!(z.ends_with(&SYNC_TAIL), "{short} short");
            z.truncate(z.len() - SYNC_TAIL.len());
            d.inflate_exactly(&z, &msg, &format!("{short} short"));
            // The stream goes on: an empty message, then the same one again.
            for m in [&[][..], &msg[..]] {
                let mut z = Vec::new();
                c.compress(m, &mut z).unwrap();
                z.truncate(z.len() - SYNC_TAIL.len());
                d.inflate_exactly(&z, m, &format!("{short} short, then {} bytes", m.len()));
            }
        }
    }

    #[test]
    fn inflation_stops_at_the_limit() {
        let mut c = MinizCompressor::new(9);
        let big = vec![b'a'; 10 << 20];
        let mut z = Vec::new();
        c.compress(&big, &mut z).unwrap();
        z.truncate(z.len() - 4);
        let mut out = Vec::new();
        let err = Inflater::new().inflate(&z, &mut out, 1 << 20).unwrap_err();
        assert!(matches!(err, Error::MessageTooBig { limit } if limit == 1 << 20));
        assert!(out.len() <= (1 << 20) + 1, "grew to {}", out.len());
    }

    #[test]
    fn corrupt_data_is_invalid() {
        let mut out = Vec::new();
        let err = Inflater::new().inflate(&[0xff, 0xff, 0xff, 0xff], &mut out, 1 << 20).unwrap_err();
        assert!(matches!(err, Error::InvalidCompressedData));
    }
}
