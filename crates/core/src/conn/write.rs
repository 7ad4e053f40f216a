//! The write state shared by [`Conn`](super::Conn) and [`ConnWriter`](super::ConnWriter): an
//! encoder, a reused output buffer, and whether our close frame has gone out.

use std::io::{self, Read, Write};

use crate::close::CloseCode;
use crate::encode::Encoder;
use crate::error::{Error, Result};
use crate::frame::OpCode;
use crate::role::Config;

/// Frames of a long message are gathered up to this many bytes per `write` call.
const BATCH: usize = 64 * 1024;

#[derive(Debug)]
pub(crate) struct WriteState {
    enc: Encoder,
    out: Vec<u8>,
    max_chunk: usize,
    /// Our close frame has been written: only the close handshake remains.
    pub(crate) close_sent: bool,
    /// The two lookahead buffers of `stream_message`, sized on first use and kept.
    lookahead: [Vec<u8>; 2],
}

impl WriteState {
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            enc: Encoder::new(config.role),
            out: Vec::new(),
            max_chunk: config.max_chunk_size,
            close_sent: false,
            lookahead: [Vec::new(), Vec::new()],
        }
    }

    fn check_open(&self) -> Result<()> {
        if self.close_sent { Err(Error::WebSocketClosed) } else { Ok(()) }
    }

    /// Writes one frame, fragmented into `max_chunk_size` pieces if it is longer.
    pub(crate) fn write_frame<W: Write>(&mut self, w: &mut W, fin: bool, rsv: u8, op: OpCode, payload: &[u8]) -> Result<()> {
        self.check_open()?;
        if OpCode::from_u8(op as u8).is_none() {
            return Err(Error::InvalidOpCode(op as u8));
        }
        self.out.clear();
        if op.is_control() || payload.len() <= self.max_chunk {
            self.enc.encode_frame(fin, rsv, op, payload, &mut self.out)?;
        } else {
            // Encode a chunk at a time so a long message never needs a second copy of itself.
            let mut chunks = payload.chunks(self.max_chunk).peekable();
            let (mut op, mut rsv) = (op, rsv);
            while let Some(chunk) = chunks.next() {
                let last = chunks.peek().is_none();
                self.enc.encode_frame(fin && last, rsv, op, chunk, &mut self.out)?;
                (op, rsv) = (OpCode::Continuation, 0);
                if self.out.len() >= BATCH && !last {
                    w.write_all(&self.out)?;
                    self.out.clear();
                }
            }
        }
        w.write_all(&self.out)?;
        w.flush()?;
        Ok(())
    }

    /// Writes a close frame and records that it went out.
    pub(crate) fn write_close<W: Write>(&mut self, w: &mut W, code: CloseCode, reason: &str) -> Result<()> {
        self.check_open()?;
        self.out.clear();
        self.enc.encode_close(code, reason, &mut self.out)?;
        self.close_sent = true;
        w.write_all(&self.out)?;
        w.flush()?;
        Ok(())
    }

    /// Echoes a received close body (already validated) and records that it went out.
    pub(crate) fn echo_close<W: Write>(&mut self, w: &mut W, body: &[u8]) -> Result<()> {
        self.check_open()?;
        self.out.clear();
        // RFC 6455 §5.5.1: echo the status code received; an empty close is answered empty.
        let code = body.get(..2).unwrap_or(&[]);
        self.enc.encode_frame(true, 0, OpCode::Close, code, &mut self.out)?;
        self.close_sent = true;
        w.write_all(&self.out)?;
        w.flush()?;
        Ok(())
    }

    /// Streams `r` as one message of `chunk`-sized fragments. Two buffers alternate so the
    /// frame being written always knows whether another follows: no empty trailing fragment.
    pub(crate) fn stream_message<W: Write, R: Read>(
        &mut self,
        w: &mut W,
        op: OpCode,
        rsv: u8,
        chunk: usize,
        r: &mut R,
    ) -> Result<()> {
        self.check_open()?;
        if !op.is_data() {
            return Err(Error::InvalidOpCode(op as u8));
        }
        let chunk = if chunk == 0 { self.max_chunk } else { chunk };
        if chunk > self.max_chunk {
            return Err(Error::ChunkSizeExceeded { requested: chunk, limit: self.max_chunk });
        }
        let [a, b] = &mut self.lookahead;
        for buf in [&mut *a, &mut *b] {
            if buf.len() < chunk {
                buf.resize(chunk, 0);
            }
        }
        let (mut cur, mut next) = (&mut a[..chunk], &mut b[..chunk]);
        let mut n = read_full(r, cur)?;
        let (mut op, mut rsv) = (op, rsv);
        loop {
            let m = if n < chunk { 0 } else { read_full(r, next)? };
            let last = m == 0;
            self.out.clear();
            self.enc.encode_frame(last, rsv, op, &cur[..n], &mut self.out)?;
            w.write_all(&self.out)?;
            if last {
                break;
            }
            std::mem::swap(&mut cur, &mut next);
            n = m;
            (op, rsv) = (OpCode::Continuation, 0);
        }
        w.flush()?;
        Ok(())
    }
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
