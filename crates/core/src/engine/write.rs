//! The engine's write side: frames and messages in, wire bytes out to any `Write` sink (the
//! session's output buffer, or a blocking driver's stream, so a large payload can go out
//! straight from the caller's buffer). It owns the outgoing rules: one fragmented message at
//! a time, control frames between fragments, compression, and nothing after our close.

use std::io::{self, IoSlice, Read, Write};

use super::read::Reply;
use crate::close::{CloseCode, CloseFrame};
use crate::deflate::{Compressor, DeflateConfig, SYNC_TAIL};
use crate::encode::Encoder;
use crate::error::Misuse;
use crate::error::{Error, Result};
use crate::frame::{OpCode, RSV1};
use crate::role::{CHUNK_SIZE_LOW_MEMORY, Config, Role};
use crate::sizing::Trim;

/// Where the writer's frames go: a stream (each frame is encoded in the writer's own buffer,
/// then written), or a buffer frames are encoded straight into (the session's output: no
/// second copy).
pub(crate) trait Sink: Write {
    /// The buffer to encode into, when the sink is one.
    fn buffer(&mut self) -> Option<&mut Vec<u8>>;
}

impl Sink for Vec<u8> {
    fn buffer(&mut self) -> Option<&mut Vec<u8>> {
        Some(self)
    }
}

/// A stream as a [`Sink`].
pub(crate) struct Stream<'a, S>(pub(crate) &'a mut S);

impl<S: Write> Write for Stream<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<S: Write> Sink for Stream<'_, S> {
    fn buffer(&mut self) -> Option<&mut Vec<u8>> {
        None
    }
}

/// Frames of a long message are gathered up to this many bytes per `write` call.
const BATCH: usize = 64 * 1024;
/// From this size a server's payload is written from the caller's buffer (one vectored
/// write with the header) instead of being copied after the header.
const VECTORED: usize = 4096;

/// The write state of one connection.
pub(crate) struct Writer {
    enc: Encoder,
    deflate: Option<Deflate>,
    /// Where frames for a stream are encoded before they are written.
    out: Vec<u8>,
    out_trim: Trim,
    max_chunk: usize,
    /// Bytes of payload per write to a stream: whole frames, about [`BATCH`].
    per_batch: usize,
    /// Our close frame has been written: only the close handshake remains.
    close_sent: bool,
    /// A data frame without FIN went out: the message goes on with continuation frames.
    fragmented: bool,
    /// A write failed after part of a message may have reached the wire: the framing can no
    /// longer be trusted, so nothing more is written.
    broken: bool,
    /// The two lookahead buffers of `stream_message`, sized on first use and kept.
    lookahead: [Vec<u8>; 2],
}

/// The write side of permessage-deflate.
struct Deflate {
    /// `None` between messages when it is transient ([`DeflateConfig::transient_compressor`]).
    compressor: Option<Box<dyn Compressor>>,
    /// Set when the compressor is freed after each message: how to build it again.
    rebuild: Option<DeflateConfig>,
    reset_each: bool,
    threshold: usize,
    /// The compressed form of the message (or chunk) being written.
    buf: Vec<u8>,
    buf_trim: Trim,
}

impl Writer {
    pub(crate) fn new(config: &Config) -> Self {
        // 0 means the default here too, even when set on the field directly.
        let max_chunk = if config.max_chunk_size == 0 { CHUNK_SIZE_LOW_MEMORY } else { config.max_chunk_size };
        Self {
            deflate: None,
            enc: Encoder::new(config.role),
            out: Vec::new(),
            out_trim: Trim::default(),
            max_chunk,
            per_batch: max_chunk.saturating_mul(BATCH.div_ceil(max_chunk)),
            close_sent: false,
            fragmented: false,
            broken: false,
            lookahead: [Vec::new(), Vec::new()],
        }
    }

    /// Turns compression on as negotiated, with `compressor` (default: the configured engine).
    pub(crate) fn set_deflate(&mut self, config: Option<&DeflateConfig>, compressor: Option<Box<dyn Compressor>>) {
        self.deflate = config.map(|c| Deflate {
            // A compressor of the caller's cannot be rebuilt, so it is kept.
            rebuild: (c.transient_compressor && compressor.is_none()).then_some(*c),
            compressor: match compressor {
                Some(given) => Some(given),
                None if c.transient_compressor => None,
                None => Some(c.engine.compressor(c)),
            },
            reset_each: c.compress_no_context_takeover,
            threshold: c.threshold_in_force(),
            buf: Vec::new(),
            buf_trim: Trim::default(),
        });
    }

    fn check_open(&self) -> Result<()> {
        if self.close_sent || self.broken { Err(Error::WebSocketClosed) } else { Ok(()) }
    }

    /// Our close frame has gone out.
    pub(crate) fn close_sent(&self) -> bool {
        self.close_sent
    }

    /// A fragmented message is in progress: the next data frame must be a continuation.
    pub(crate) fn in_message(&self) -> bool {
        self.fragmented
    }

    /// Refuses a data frame that breaks the fragmentation rules (RFC 6455 §5.4): a new message
    /// while one is unfinished, or a continuation with none started.
    fn check_sequence(&self, op: OpCode) -> Result<()> {
        match (op, self.fragmented) {
            (OpCode::Text | OpCode::Binary, true) => Err(Error::Misuse(Misuse::MessageInProgress)),
            (OpCode::Continuation, false) => Err(Error::Misuse(Misuse::NoMessageInProgress)),
            _ => Ok(()),
        }
    }

    /// Whether a frame of `len` payload bytes can leave from the caller's buffer: a server's
    /// (unmasked) frame from [`VECTORED`] bytes up to one chunk.
    fn uncopied(&self, len: usize) -> bool {
        self.enc.role() == Role::Server && (VECTORED..=self.max_chunk).contains(&len)
    }

    /// Sends what the read side owes the peer, unless our close went out first: after it,
    /// nothing but the close handshake may follow (RFC 6455 §5.5.1).
    pub(crate) fn reply<W: Sink>(&mut self, w: &mut W, reply: Reply<'_>) -> Result<()> {
        if self.close_sent {
            return Ok(());
        }
        match reply {
            Reply::Pong(payload) => self.write_frame(w, true, 0, OpCode::Pong, payload),
            Reply::Echo(code) => self.echo_close(w, code),
            Reply::Fail(code, reason) => self.write_close(w, code, reason),
        }
    }

    /// Sends our close frame unless one went out already.
    pub(crate) fn close_once<W: Sink>(&mut self, w: &mut W, code: CloseCode, reason: &str) -> Result<()> {
        if self.close_sent { Ok(()) } else { self.write_close(w, code, reason) }
    }

    /// Encodes with `encode` into the sink's buffer, or into ours and writes that to the sink.
    /// `closes`: the frame is our close, recorded as sent once it is encoded.
    fn emit<W: Sink>(
        &mut self,
        w: &mut W,
        closes: bool,
        encode: impl FnOnce(&mut Encoder, &mut Vec<u8>) -> Result<()>,
    ) -> Result<()> {
        match w.buffer() {
            Some(buf) => {
                let len = buf.len();
                // A refused frame leaves nothing behind.
                encode(&mut self.enc, buf).inspect_err(|_| buf.truncate(len))?;
                self.close_sent |= closes;
                Ok(())
            }
            None => {
                self.out_trim.clear(&mut self.out);
                encode(&mut self.enc, &mut self.out)?;
                self.close_sent |= closes;
                w.write_all(&self.out)?;
                Ok(w.flush()?)
            }
        }
    }

    /// Writes one frame, fragmented into `max_chunk_size` pieces if it is longer.
    pub(crate) fn write_frame<W: Sink>(
        &mut self,
        w: &mut W,
        fin: bool,
        rsv: u8,
        op: OpCode,
        payload: &[u8],
    ) -> Result<()> {
        let result = self.write_frame_unguarded(w, fin, rsv, op, payload);
        match &result {
            // A failed write may have put part of a frame on the wire: write nothing after it.
            Err(Error::Io(_)) => self.broken = true,
            Ok(()) if !op.is_control() => self.fragmented = !fin,
            _ => {}
        }
        result
    }

    fn write_frame_unguarded<W: Sink>(
        &mut self,
        w: &mut W,
        fin: bool,
        rsv: u8,
        op: OpCode,
        payload: &[u8],
    ) -> Result<()> {
        self.check_open()?;
        self.check_sequence(op)?;
        if op == OpCode::Close && payload.len() <= crate::frame::MAX_CONTROL_PAYLOAD {
            // A close sent by hand is still our close: check it and remember it.
            CloseFrame::parse(payload).map_err(|e| match e {
                Error::InvalidCloseCode(c) => Error::Misuse(Misuse::UnsendableCloseCode(c)),
                _ => Error::Misuse(Misuse::InvalidCloseBody),
            })?;
        }
        let max_chunk = self.max_chunk;
        let uncopied = self.uncopied(payload.len());
        // A batch of frames at a time to a stream, so a long message never needs a second copy
        // of itself; a buffer sink takes it whole.
        let per_batch = self.per_batch;
        if w.buffer().is_some() || (payload.len() <= per_batch && !uncopied) {
            return self
                .emit(w, op == OpCode::Close, |enc, out| enc.encode_fragments(fin, rsv, op, payload, max_chunk, out));
        }
        self.out_trim.clear(&mut self.out);
        if uncopied {
            // Unmasked and large: the payload goes out from the caller's buffer, not a copy.
            self.enc.encode_header(fin, rsv, op, payload.len(), &mut self.out)?;
            write_all_vectored(w, &mut [IoSlice::new(&self.out), IoSlice::new(payload)])?;
            w.flush()?;
            return Ok(());
        }
        let (mut frame_op, mut frame_rsv, mut rest) = (op, rsv, payload);
        loop {
            let (batch, tail) = rest.split_at(rest.len().min(per_batch));
            let last = tail.is_empty();
            self.enc.encode_fragments(fin && last, frame_rsv, frame_op, batch, max_chunk, &mut self.out)?;
            w.write_all(&self.out)?;
            if last {
                return Ok(w.flush()?);
            }
            self.out.clear();
            (frame_op, frame_rsv, rest) = (OpCode::Continuation, 0, tail);
        }
    }

    /// Writes a whole message, compressed if deflate is on and it reaches the threshold.
    pub(crate) fn write_message<W: Sink>(&mut self, w: &mut W, op: OpCode, payload: &[u8]) -> Result<()> {
        self.check_open()?;
        self.check_sequence(op)?;
        let Some(d) = self.deflate.as_mut().filter(|d| d.applies(op, payload.len())) else {
            return self.write_frame(w, true, 0, op, payload);
        };
        let mut z = d.take_buf(payload.len());
        let compressed = d.compress(payload, &mut z, true);
        let result = compressed.and_then(|()| self.write_frame(w, true, RSV1, op, &z));
        if let Some(d) = &mut self.deflate {
            d.buf = z;
        }
        result
    }

    /// Writes a close frame and records that it went out.
    pub(crate) fn write_close<W: Sink>(&mut self, w: &mut W, code: CloseCode, reason: &str) -> Result<()> {
        self.check_open()?;
        self.emit(w, true, |enc, out| enc.encode_close(code, reason, out))
    }

    /// Sends our close frame with an empty body (no status code).
    pub(crate) fn close_without_status<W: Sink>(&mut self, w: &mut W) -> Result<()> {
        self.echo_close(w, None)
    }

    /// Answers the peer's close, echoing its status code, and records that ours went out.
    fn echo_close<W: Sink>(&mut self, w: &mut W, code: Option<CloseCode>) -> Result<()> {
        self.check_open()?;
        // RFC 6455 §5.5.1: echo the status code received; an empty close is answered empty.
        let code = code.map(|c| c.0.to_be_bytes());
        self.emit(w, true, |enc, out| {
            enc.encode_frame(true, 0, OpCode::Close, code.as_ref().map_or(&[], |c| &c[..]), out)
        })
    }

    /// Streams `r` as one message of `chunk`-sized fragments. Two buffers alternate so the
    /// frame being written always knows whether another follows: no empty trailing fragment.
    pub(crate) fn stream_message<W: Sink, R: Read>(
        &mut self,
        w: &mut W,
        op: OpCode,
        rsv: u8,
        chunk: usize,
        r: &mut R,
    ) -> Result<()> {
        let (chunk, [mut a, mut b]) = self.begin_stream(op, chunk)?;
        let mut run = || -> Result<()> {
            let (mut cur, mut next) = (&mut a[..chunk], &mut b[..chunk]);
            let mut n = read_full(r, cur)?;
            let (mut op, mut rsv) = (op, rsv);
            loop {
                let m = if n < chunk { 0 } else { read_full(r, next)? };
                self.stream_fragment(w, op, rsv, &cur[..n], m == 0)?;
                if m == 0 {
                    return Ok(w.flush()?);
                }
                std::mem::swap(&mut cur, &mut next);
                (n, op, rsv) = (m, OpCode::Continuation, 0);
            }
        };
        let result = run();
        self.end_stream([a, b], result.is_ok());
        result
    }

    /// Starts a streamed message of `chunk`-byte fragments (0: `max_chunk_size`): checks that
    /// it may start, and lends out the two lookahead buffers, sized. Give them back with
    /// [`Writer::end_stream`].
    pub(crate) fn begin_stream(&mut self, op: OpCode, chunk: usize) -> Result<(usize, [Vec<u8>; 2])> {
        self.check_open()?;
        if !op.is_data() {
            return Err(Error::Misuse(Misuse::NotDataOpcode(op as u8)));
        }
        self.check_sequence(op)?;
        let chunk = if chunk == 0 { self.max_chunk } else { chunk };
        if chunk > self.max_chunk {
            return Err(Error::ChunkSizeExceeded { requested: chunk, limit: self.max_chunk });
        }
        let mut bufs = std::mem::take(&mut self.lookahead);
        for buf in &mut bufs {
            if buf.len() < chunk {
                buf.resize(chunk, 0);
            }
        }
        // From here on an error can leave half a message on the wire; cleared by `end_stream`.
        self.broken = true;
        Ok((chunk, bufs))
    }

    /// Writes one fragment of a streamed message (compressed if deflate is on); `last` ends it.
    pub(crate) fn stream_fragment<W: Sink>(
        &mut self,
        w: &mut W,
        op: OpCode,
        rsv: u8,
        data: &[u8],
        last: bool,
    ) -> Result<()> {
        let max_chunk = self.max_chunk;
        let Some(d) = &mut self.deflate else {
            return self.emit(w, false, |enc, out| enc.encode_frame(last, rsv, op, data, out));
        };
        let mut z = d.take_buf(data.len());
        let compressed = d.compress(data, &mut z, last);
        let rsv = rsv | if op == OpCode::Continuation { 0 } else { RSV1 };
        let result = compressed
            .and_then(|()| self.emit(w, false, |enc, out| enc.encode_fragments(last, rsv, op, &z, max_chunk, out)));
        if let Some(d) = &mut self.deflate {
            d.buf = z;
        }
        result
    }

    /// Ends a streamed message: takes the lookahead buffers back; `ok` if it was all written.
    pub(crate) fn end_stream(&mut self, bufs: [Vec<u8>; 2], ok: bool) {
        self.lookahead = bufs;
        self.broken = !ok;
    }

    /// Marks the connection broken after a driver's write failed (part of a frame may have
    /// reached the wire, so nothing more is written), or whole again after an uncopied frame
    /// ([`Writer::frame_head`]) went out in full.
    #[cfg(feature = "tokio")]
    pub(crate) fn set_broken(&mut self, broken: bool) {
        self.broken = broken;
    }

    /// For drivers that cannot hand the payload to [`Writer::write_frame`]'s vectored write:
    /// when `payload` can leave from the caller's buffer (a server's uncompressed frame of
    /// `VECTORED..=max_chunk_size` bytes; `message`: it is a whole message, which must not be
    /// one deflate compresses), checks it as `write_frame` would, appends its header to `head`,
    /// records it as written and returns `true`. The caller then writes `head` and `payload`;
    /// the connection counts as broken until it calls `set_broken(false)`.
    #[cfg(feature = "tokio")]
    pub(crate) fn frame_head(
        &mut self,
        fin: bool,
        rsv: u8,
        op: OpCode,
        payload: &[u8],
        message: bool,
        head: &mut Vec<u8>,
    ) -> Result<bool> {
        let compressed = message && self.deflate.as_ref().is_some_and(|d| d.applies(op, payload.len()));
        if compressed || !self.uncopied(payload.len()) || op.is_control() {
            return Ok(false);
        }
        self.check_open()?;
        self.check_sequence(op)?;
        self.enc.encode_header(fin, rsv, op, payload.len(), head)?;
        self.fragmented = !fin;
        self.broken = true;
        Ok(true)
    }
}

impl Deflate {
    /// Lends out the compression buffer, empty, for compressing `input_len` bytes; counts the
    /// last use first. Put it back in `buf` afterwards. The compressor reserves by its input,
    /// so the input counts as used too ([`crate::sizing`]).
    fn take_buf(&mut self, input_len: usize) -> Vec<u8> {
        self.buf_trim.see(input_len);
        let mut z = std::mem::take(&mut self.buf);
        self.buf_trim.clear(&mut z);
        z
    }

    /// Whether a whole message of type `op` and `len` bytes is compressed (data, from the
    /// threshold up; control frames never are).
    fn applies(&self, op: OpCode, len: usize) -> bool {
        op.is_data() && len >= self.threshold
    }

    /// Compresses `data` into `z`. At the end of a message the sync tail is stripped and, without
    /// context takeover, the engine is reset.
    fn compress(&mut self, data: &[u8], z: &mut Vec<u8>, end_of_message: bool) -> Result<()> {
        if let (None, Some(c)) = (&self.compressor, &self.rebuild) {
            self.compressor = Some(c.engine.compressor(c));
        }
        // Absent only when transient, and then it was just rebuilt.
        let Some(compressor) = &mut self.compressor else {
            return Err(Error::Io(io::Error::other("no deflate compressor")));
        };
        compressor.compress(data, z)?;
        if end_of_message {
            // Even an empty message compresses to an empty block. Nothing at all (a compressor
            // breaking its contract, as zlib-rs once did after a sync flush) would have the peer
            // restore the tail onto nothing and read a broken stored block that corrupts its
            // stream: fail here, before anything goes out, instead.
            if z.is_empty() {
                return Err(Error::Io(io::Error::other("deflate engine wrote nothing for the end of a message")));
            }
            if z.ends_with(&SYNC_TAIL) {
                z.truncate(z.len() - SYNC_TAIL.len());
            }
            if self.rebuild.is_some() {
                self.compressor = None;
            } else if self.reset_each
                && let Some(c) = &mut self.compressor
            {
                c.reset();
            }
        }
        Ok(())
    }
}

/// `Write::write_all` for several buffers (the std one is unstable).
fn write_all_vectored<W: Sink>(w: &mut W, mut bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !bufs.is_empty() {
        match w.write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads until `buf` is full or `r` ends; returns the bytes read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepts `left` bytes, then fails: a connection that dies mid-frame.
    struct Dying {
        left: usize,
    }

    impl Write for Dying {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.left == 0 {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let n = buf.len().min(self.left);
            self.left -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A compressor that writes nothing for an empty message, as zlib-rs did after a sync flush.
    struct Silent;

    impl Compressor for Silent {
        fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
            if !input.is_empty() {
                crate::deflate::MinizCompressor::new(1).compress(input, out)?;
            }
            Ok(())
        }
        fn reset(&mut self) {}
    }

    #[test]
    fn a_compressor_writing_nothing_for_a_message_is_an_error_before_the_wire() {
        let cfg = DeflateConfig { threshold: 0, ..DeflateConfig::default() };
        let mut w = Writer::new(&Config::new(Role::Server));
        w.set_deflate(Some(&cfg), Some(Box::new(Silent)));
        let mut sink = Vec::new();
        w.write_message(&mut sink, OpCode::Text, b"hello").unwrap();
        let sent = sink.len();
        assert!(matches!(w.write_message(&mut sink, OpCode::Text, b""), Err(Error::Io(_))));
        let mut r = io::empty();
        assert!(matches!(w.stream_message(&mut Stream(&mut sink), OpCode::Binary, 0, 100, &mut r), Err(Error::Io(_))));
        assert_eq!(sink.len(), sent, "nothing of the empty messages went out");
    }

    /// With a transient compressor, none is held between messages, and each message still
    /// inflates on its own (no context taken over).
    #[test]
    fn a_transient_compressor_exists_only_while_a_message_is_compressed() {
        let cfg = DeflateConfig {
            compress_no_context_takeover: true,
            transient_compressor: true,
            threshold: 0,
            ..DeflateConfig::default()
        };
        let mut w = Writer::new(&Config::new(Role::Server));
        w.set_deflate(Some(&cfg), None);
        let held = |w: &Writer| w.deflate.as_ref().unwrap().compressor.is_some();
        assert!(!held(&w));
        let msg = b"a transient compressor, a transient compressor".repeat(40);
        for _ in 0..3 {
            let mut sink = Vec::new();
            w.write_message(&mut sink, OpCode::Binary, &msg).unwrap();
            assert!(!held(&w));
            assert!(sink[1] < 126, "one short frame: {} bytes", sink.len());
            let (head, body) = sink.split_at(2);
            assert_eq!(head[0], 0x80 | RSV1 | OpCode::Binary as u8);
            let mut out = Vec::new();
            crate::deflate::Inflater::new().inflate(body, &mut out, 1 << 20).unwrap();
            assert_eq!(out, msg);
        }
        // Streamed: held between the fragments of a message, freed at its end.
        let (chunk, bufs) = w.begin_stream(OpCode::Binary, 0).unwrap();
        let mut sink = Vec::new();
        w.stream_fragment(&mut sink, OpCode::Binary, 0, &msg[..chunk.min(100)], false).unwrap();
        assert!(held(&w));
        w.stream_fragment(&mut sink, OpCode::Continuation, 0, b"end", true).unwrap();
        w.end_stream(bufs, true);
        assert!(!held(&w));
    }

    #[test]
    fn nothing_is_written_after_a_write_failed_mid_message() {
        let mut w = Writer::new(&Config::new(Role::Server));
        let mut sink = Dying { left: 10 };
        assert!(matches!(w.write_frame(&mut Stream(&mut sink), true, 0, OpCode::Binary, &[1; 100]), Err(Error::Io(_))));
        sink.left = usize::MAX;
        assert!(matches!(
            w.write_frame(&mut Stream(&mut sink), true, 0, OpCode::Binary, b"x"),
            Err(Error::WebSocketClosed)
        ));

        let mut w = Writer::new(&Config::new(Role::Server).max_chunk_size(4096));
        let mut sink = Dying { left: 5000 };
        let r = w.stream_message(&mut Stream(&mut sink), OpCode::Binary, 0, 0, &mut &[2u8; 20_000][..]);
        assert!(matches!(r, Err(Error::Io(_))));
        assert!(matches!(w.write_frame(&mut Vec::new(), true, 0, OpCode::Text, b"x"), Err(Error::WebSocketClosed)));
        // A refused write (misuse) leaves the connection usable.
        let mut w = Writer::new(&Config::new(Role::Server));
        assert!(matches!(w.write_frame(&mut Vec::new(), true, 0, OpCode::Ping, &[0; 126]), Err(Error::Misuse(_))));
        assert!(w.write_frame(&mut Vec::new(), true, 0, OpCode::Ping, b"ok").is_ok());
    }
}
