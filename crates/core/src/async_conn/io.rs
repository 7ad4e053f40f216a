//! The async read loop ([`Inbox`]) and write buffer ([`Outbox`]) that [`AsyncConn`](super::AsyncConn)
//! and its split halves are made of.

use std::io::IoSlice;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::close::CloseCode;
use crate::decode::{Event, Frame, Output};
use crate::engine::{Reader, Reply, Writer};
use crate::error::{Error, Result};
use crate::frame::{MAX_CONTROL_PAYLOAD, OpCode};
use crate::sizing::Trim;

/// Where the read loop's answers go, and how they are sent before it waits for the peer.
pub(crate) trait Answer<R> {
    /// Queues an answer (called inside the engine's poll, so it cannot wait).
    fn reply(&mut self, reply: Reply<'_>) -> Result<()>;
    /// Sends what was queued. Cancel-safe: what is not sent yet stays queued.
    #[allow(async_fn_in_trait)] // crate-private; every caller knows the concrete type
    async fn flush(&mut self, stream: &mut R) -> Result<()>;
}

/// The read side of an async connection: the engine's reader and bytes not yet decoded.
pub(crate) struct Inbox {
    pub(crate) reader: Reader,
    /// Bytes that arrived with the handshake, decoded before the stream is read.
    early: Vec<u8>,
    /// The peer's close, taken from the engine while its echo is still being sent: a read
    /// cancelled then hands it out next time instead of losing it.
    held_close: Option<ControlBody>,
}

/// A control frame's payload, copied out of the engine.
#[derive(Clone, Copy)]
pub(crate) struct ControlBody {
    bytes: [u8; MAX_CONTROL_PAYLOAD],
    len: u8,
}

impl ControlBody {
    pub(crate) fn new(payload: &[u8]) -> Self {
        let mut bytes = [0; MAX_CONTROL_PAYLOAD];
        let len = payload.len().min(MAX_CONTROL_PAYLOAD);
        bytes[..len].copy_from_slice(&payload[..len]);
        Self { bytes, len: len as u8 }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl Inbox {
    pub(crate) fn new(reader: Reader, early: &[u8]) -> Self {
        Self { reader, early: early.to_vec(), held_close: None }
    }

    /// Polls the engine until it has an output, sending owed answers before each wait and
    /// reading the stream when it needs bytes. Cancel-safe: there is no `.await` between a
    /// read's completion and its bytes entering the engine, nor after an output is taken.
    async fn next<R: AsyncRead + Unpin, A: Answer<R>>(
        &mut self,
        stream: &mut R,
        answer: &mut A,
        frames: bool,
    ) -> Result<Output> {
        loop {
            answer.flush(stream).await?;
            match self.reader.poll(frames, &mut |reply| answer.reply(reply)) {
                Ok(Some(out)) => return Ok(out),
                Ok(None) => {}
                Err(e) => {
                    // A violation's close frame goes out before the error is reported.
                    let _ = answer.flush(stream).await;
                    return Err(e);
                }
            }
            self.fill(stream).await?;
        }
    }

    async fn fill<R: AsyncRead + Unpin>(&mut self, stream: &mut R) -> Result<()> {
        if !self.early.is_empty() {
            let n = self.reader.feed(&self.early);
            self.early.drain(..n);
            return Ok(());
        }
        match stream.read(self.reader.read_buf()).await {
            Ok(0) => self.reader.eof(),
            Ok(n) => {
                self.reader.advance(n);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(Error::Io(e)),
        }
    }

    /// The next data message or the peer's close (once its echo is sent), its payload in
    /// `buf`; pings are answered on the way.
    pub(crate) async fn read_message<R: AsyncRead + Unpin, A: Answer<R>>(
        &mut self,
        stream: &mut R,
        answer: &mut A,
        buf: &mut Vec<u8>,
    ) -> Result<(OpCode, u8)> {
        loop {
            if let Some(close) = self.held_close {
                answer.flush(stream).await?;
                self.held_close = None;
                buf.clear();
                buf.extend_from_slice(close.as_slice());
                return Ok((OpCode::Close, 0));
            }
            let out = self.next(stream, answer, false).await?;
            if let Output::Data { op, rsv, .. } = out
                && self.reader.swap_message(&out, buf)
            {
                return Ok((op, rsv));
            }
            match self.reader.event(out) {
                Event::Message { op, rsv, payload } => {
                    buf.clear();
                    buf.extend_from_slice(payload);
                    return Ok((op, rsv));
                }
                Event::Close { body, .. } => self.held_close = Some(ControlBody::new(body)),
                Event::Ping(_) | Event::Pong(_) => {}
            }
        }
    }

    /// The next frame, control frames included and nothing answered; its payload in `buf`.
    pub(crate) async fn read_frame<'b, R: AsyncRead + Unpin, A: Answer<R>>(
        &mut self,
        stream: &mut R,
        answer: &mut A,
        buf: &'b mut Vec<u8>,
    ) -> Result<Frame<'b>> {
        let out = self.next(stream, answer, true).await?;
        let Frame { is_final, rsv, op, payload } = self.reader.frame(out);
        buf.clear();
        buf.extend_from_slice(payload);
        Ok(Frame { is_final, rsv, op, payload: buf })
    }

    /// After our close went out: reads and discards until the peer's close arrives.
    pub(crate) async fn drain_until_close<R: AsyncRead + Unpin, A: Answer<R>>(
        &mut self,
        stream: &mut R,
        answer: &mut A,
    ) -> Result<()> {
        self.held_close = None;
        while !self.reader.is_closed() {
            self.next(stream, answer, false).await?;
        }
        answer.flush(stream).await
    }
}

/// The write side of an async connection: the engine's writer and the bytes it produced that
/// the stream has not taken yet.
pub(crate) struct Outbox {
    pub(crate) writer: Writer,
    out: Vec<u8>,
    /// Flushes, for giving back `out`'s capacity ([`crate::sizing`]).
    out_trim: Trim,
    /// How much of `out` the stream has taken (a cancelled write resumes from here).
    sent: usize,
    /// An uncopied payload is (or was, if its future was dropped) being written after the
    /// header in `out`.
    cut: bool,
}

impl Outbox {
    pub(crate) fn new(writer: Writer) -> Self {
        Self { writer, out: Vec::new(), out_trim: Trim::default(), sent: 0, cut: false }
    }

    /// Writes what is queued. A failed write breaks the connection: part of a frame may be out.
    pub(crate) async fn flush<W: AsyncWrite + Unpin>(&mut self, stream: &mut W) -> Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        if self.cut {
            // An uncopied payload was dropped part-way: what waits would follow half a frame.
            self.out.clear();
            self.sent = 0;
            return Err(Error::WebSocketClosed);
        }
        while self.sent < self.out.len() {
            match stream.write(&self.out[self.sent..]).await {
                Ok(0) => return Err(self.broken(std::io::ErrorKind::WriteZero.into())),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.broken(e)),
            }
        }
        self.out_trim.clear(&mut self.out);
        self.sent = 0;
        stream.flush().await.map_err(|e| self.broken(e))
    }

    fn broken(&mut self, e: std::io::Error) -> Error {
        self.writer.set_broken(true);
        Error::Io(e)
    }

    /// Writes the header queued by [`Writer::frame_head`] and then `payload` from the caller's
    /// buffer, in one vectored write where the stream allows: a large payload is not copied.
    async fn write_uncopied<W: AsyncWrite + Unpin>(&mut self, stream: &mut W, payload: &[u8]) -> Result<()> {
        self.cut = true;
        let mut bufs = [IoSlice::new(&self.out), IoSlice::new(payload)];
        let mut slices = &mut bufs[..];
        while !slices.is_empty() {
            match stream.write_vectored(slices).await {
                Ok(0) => return Err(Error::Io(std::io::ErrorKind::WriteZero.into())),
                Ok(n) => IoSlice::advance_slices(&mut slices, n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::Io(e)),
            }
        }
        self.out.clear();
        self.cut = false;
        self.writer.set_broken(false);
        Ok(stream.flush().await?)
    }

    /// Queues what the read side owes (see [`Writer::reply`]).
    pub(crate) fn queue_reply(&mut self, reply: Reply<'_>) -> Result<()> {
        self.writer.reply(&mut self.out, reply)
    }

    pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(
        &mut self,
        stream: &mut W,
        is_final: bool,
        rsv: u8,
        op: OpCode,
        payload: &[u8],
    ) -> Result<()> {
        self.flush(stream).await?;
        if self.writer.frame_head(is_final, rsv, op, payload, false, &mut self.out)? {
            return self.write_uncopied(stream, payload).await;
        }
        self.writer.write_frame(&mut self.out, is_final, rsv, op, payload)?;
        self.flush(stream).await
    }

    pub(crate) async fn write_message<W: AsyncWrite + Unpin>(
        &mut self,
        stream: &mut W,
        op: OpCode,
        payload: &[u8],
    ) -> Result<()> {
        self.flush(stream).await?;
        if self.writer.frame_head(true, 0, op, payload, true, &mut self.out)? {
            return self.write_uncopied(stream, payload).await;
        }
        self.writer.write_message(&mut self.out, op, payload)?;
        self.flush(stream).await
    }

    /// Sends our close unless one went out already.
    pub(crate) async fn close<W: AsyncWrite + Unpin>(
        &mut self,
        stream: &mut W,
        code: CloseCode,
        reason: &str,
    ) -> Result<()> {
        self.writer.close_once(&mut self.out, code, reason)?;
        self.flush(stream).await
    }

    /// Streams `r` as one message of `chunk`-sized fragments (see `Writer::stream_message`).
    pub(crate) async fn stream_message<W: AsyncWrite + Unpin, R: AsyncRead + Unpin>(
        &mut self,
        stream: &mut W,
        op: OpCode,
        rsv: u8,
        chunk: usize,
        r: &mut R,
    ) -> Result<()> {
        self.flush(stream).await?;
        let (chunk, [mut a, mut b]) = self.writer.begin_stream(op, chunk)?;
        let result = self.stream_fragments(stream, op, rsv, r, &mut a[..chunk], &mut b[..chunk]).await;
        self.writer.end_stream([a, b], result.is_ok());
        result
    }

    async fn stream_fragments<W: AsyncWrite + Unpin, R: AsyncRead + Unpin>(
        &mut self,
        stream: &mut W,
        mut op: OpCode,
        mut rsv: u8,
        r: &mut R,
        mut cur: &mut [u8],
        mut next: &mut [u8],
    ) -> Result<()> {
        let mut n = read_full(r, cur).await?;
        loop {
            let m = if n < cur.len() { 0 } else { read_full(r, next).await? };
            self.writer.stream_fragment(&mut self.out, op, rsv, &cur[..n], m == 0)?;
            self.flush(stream).await?;
            if m == 0 {
                return Ok(());
            }
            std::mem::swap(&mut cur, &mut next);
            (n, op, rsv) = (m, OpCode::Continuation, 0);
        }
    }
}

impl<S: AsyncWrite + Unpin> Answer<S> for Outbox {
    fn reply(&mut self, reply: Reply<'_>) -> Result<()> {
        self.queue_reply(reply)
    }

    async fn flush(&mut self, stream: &mut S) -> Result<()> {
        Outbox::flush(self, stream).await
    }
}

/// Reads until `buf` is full or `r` ends; returns the bytes read.
async fn read_full<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]).await {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Io(e)),
        }
    }
    Ok(n)
}
