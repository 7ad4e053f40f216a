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
    /// Client: ask the server to compress with at most this window (8–15).
    pub server_max_window_bits: Option<u8>,
    /// Compression level, 0 (store) to 9 (best). Default 1: fast, and most of the gain.
    pub level: u8,
    /// Messages shorter than this are sent uncompressed. Default 1024, like `ws`.
    pub threshold: usize,
    /// The compression engine; negotiation accepts only the windows it can write with.
    pub engine: Engine,
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
            Engine::ZlibRs => Box::new(ZlibRsCompressor::new(config.level, config.compress_window_bits)),
        }
    }
}

impl Default for DeflateOptions {
    fn default() -> Self {
        Self {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: None,
            level: 1,
            threshold: 1024,
            engine: Engine::default(),
        }
    }
}

impl DeflateOptions {
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
    /// The window the peer said it compresses with (our inflater accepts any).
    pub decompress_window_bits: u8,
    /// Compression level, 0–9.
    pub level: u8,
    /// Messages shorter than this are sent uncompressed.
    pub threshold: usize,
    /// The engine that compresses.
    pub engine: Engine,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            compress_no_context_takeover: false,
            decompress_no_context_takeover: false,
            compress_window_bits: 15,
            decompress_window_bits: 15,
            level: 1,
            threshold: 1024,
            engine: Engine::default(),
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

/// The default engine: miniz_oxide, raw DEFLATE, 32 KiB window, state reused across messages.
pub struct MinizCompressor {
    inner: Box<CompressorOxide>,
}

impl MinizCompressor {
    /// A compressor at `level` (0–9).
    pub fn new(level: u8) -> Self {
        // Negative window bits select raw DEFLATE (no zlib header), as RFC 7692 requires.
        let flags = create_comp_flags_from_zip_params(level.min(9) as i32, -15, 0);
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

/// The fast engine: zlib-rs through flate2, raw DEFLATE with the negotiated window.
pub struct ZlibRsCompressor {
    inner: flate2::Compress,
}

impl ZlibRsCompressor {
    /// A compressor at `level` (0–9) writing with a window of `window_bits` (9–15).
    pub fn new(level: u8, window_bits: u8) -> Self {
        let bits = window_bits.clamp(9, 15);
        Self {
            inner: flate2::Compress::new_with_window_bits(flate2::Compression::new(level.min(9) as u32), false, bits),
        }
    }
}

impl Compressor for ZlibRsCompressor {
    fn compress(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        loop {
            out.reserve((input.len() / 2).max(1024) + 64);
            let room = out.capacity() - out.len();
            let (before_in, before_out) = (self.inner.total_in(), self.inner.total_out());
            self.inner
                .compress_vec(input, out, flate2::FlushCompress::Sync)
                .map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?;
            let consumed = (self.inner.total_in() - before_in) as usize;
            let written = (self.inner.total_out() - before_out) as usize;
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

    #[test]
    fn roundtrips_with_context_takeover() {
        let mut c = MinizCompressor::new(1);
        let mut inf = Inflater::new();
        for i in 0..50usize {
            let msg: Vec<u8> = (0..i * 997).map(|j| (j % 251) as u8 ^ (i as u8)).collect();
            roundtrip(&mut c, &mut inf, &msg);
            roundtrip(&mut c, &mut inf, b"");
        }
    }

    #[test]
    fn roundtrips_without_context_takeover() {
        let mut c = MinizCompressor::new(6);
        let mut inf = Inflater::new();
        for _ in 0..5 {
            roundtrip(&mut c, &mut inf, b"hello hello hello hello");
            c.reset();
            inf.reset();
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
