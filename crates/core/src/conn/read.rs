//! The blocking read loop of [`Conn`](super::Conn) and [`ConnReader`](super::ConnReader): poll
//! the engine's reader, and read the stream when it needs bytes. Answers go through whatever
//! the caller passes (the connection's own writer, or the shared one of a split connection).

use std::io::{self, Read};

use crate::decode::{Event, Frame, Output};
use crate::engine::{Reader, Reply};
use crate::error::{Error, Result};
use crate::frame::{Header, OpCode};

/// The read half of a blocking connection.
pub(crate) struct ReadHalf<S> {
    pub(crate) stream: S,
    pub(crate) reader: Reader,
    /// Bytes that arrived with the handshake, decoded before anything is read from the stream.
    early: Vec<u8>,
}

impl<S: Read> ReadHalf<S> {
    pub(crate) fn new(stream: S, reader: Reader, early: &[u8]) -> Self {
        Self { stream, reader, early: early.to_vec() }
    }

    /// Polls until the reader has an output, reading the stream whenever it needs bytes.
    /// `answer` sends a reply on the stream this half holds (a split reader sends it elsewhere).
    fn next(&mut self, frames: bool, answer: &mut impl FnMut(&mut S, Reply<'_>) -> Result<()>) -> Result<Output> {
        loop {
            let Self { stream, reader, .. } = self;
            if let Some(out) = reader.poll(frames, &mut |reply| answer(stream, reply))? {
                return Ok(out);
            }
            self.fill()?;
        }
    }

    fn fill(&mut self) -> Result<()> {
        if !self.early.is_empty() {
            let n = self.reader.feed(&self.early);
            self.early.drain(..n);
            return Ok(());
        }
        loop {
            match self.stream.read(self.reader.read_buf()) {
                Ok(0) => return self.reader.eof(),
                Ok(n) => {
                    self.reader.advance(n);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The reader keeps its state: after a timeout the caller may read again.
                Err(e) => return Err(Error::Io(e)),
            }
        }
    }

    /// The next data message or the peer's close, its payload in `buf`; returns its opcode
    /// and RSV bits. Pings are answered and handlers run on the way.
    pub(crate) fn read_message(
        &mut self,
        buf: &mut Vec<u8>,
        answer: &mut impl FnMut(&mut S, Reply<'_>) -> Result<()>,
    ) -> Result<(OpCode, u8)> {
        loop {
            let out = self.next(false, answer)?;
            // A message assembled in the decoder's buffer changes hands instead of being copied.
            if let Output::Data { op, rsv, .. } = out
                && self.reader.swap_message(&out, buf)
            {
                return Ok((op, rsv));
            }
            let (op, rsv, payload) = match self.reader.event(out) {
                Event::Message { op, rsv, payload } => (op, rsv, payload),
                Event::Close { body, .. } => (OpCode::Close, 0, body),
                Event::Ping(_) | Event::Pong(_) => continue,
            };
            buf.clear();
            buf.extend_from_slice(payload);
            return Ok((op, rsv));
        }
    }

    /// The next frame, control frames included and nothing answered; its payload in `buf`.
    pub(crate) fn read_frame<'b>(
        &mut self,
        buf: &'b mut Vec<u8>,
        answer: &mut impl FnMut(&mut S, Reply<'_>) -> Result<()>,
    ) -> Result<Frame<'b>> {
        let out = self.next(true, answer)?;
        let Frame { is_final, rsv, op, payload } = self.reader.frame(out);
        buf.clear();
        buf.extend_from_slice(payload);
        Ok(Frame { is_final, rsv, op, payload: buf })
    }

    /// Parses the next header without consuming it.
    pub(crate) fn read_header(&mut self, answer: &mut impl FnMut(&mut S, Reply<'_>) -> Result<()>) -> Result<Header> {
        loop {
            let Self { stream, reader, .. } = self;
            if let Some(h) = reader.peek_header(&mut |reply| answer(stream, reply))? {
                return Ok(h);
            }
            self.fill()?;
        }
    }

    /// After our close went out: reads and discards until the peer's close arrives.
    pub(crate) fn drain_until_close(&mut self, answer: &mut impl FnMut(&mut S, Reply<'_>) -> Result<()>) -> Result<()> {
        while !self.reader.is_closed() {
            self.next(false, answer)?;
        }
        Ok(())
    }
}
