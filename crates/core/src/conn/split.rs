//! Split halves of a connection: a reader, and a writer that many threads can share.

use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::read::ReadHalf;
use super::{Frame, Handlers};
use crate::close::CloseCode;
use crate::engine::{Reply, Stream, Writer};
use crate::error::Result;
use crate::frame::{Header, OpCode};

/// A stream that can be duplicated into a second handle on the same connection.
pub trait TryClone: Sized {
    /// Another handle on the same underlying connection.
    fn try_clone(&self) -> io::Result<Self>;
}

impl TryClone for std::net::TcpStream {
    fn try_clone(&self) -> io::Result<Self> {
        std::net::TcpStream::try_clone(self)
    }
}

#[cfg(unix)]
impl TryClone for std::os::unix::net::UnixStream {
    fn try_clone(&self) -> io::Result<Self> {
        std::os::unix::net::UnixStream::try_clone(self)
    }
}

struct Shared<S> {
    stream: S,
    state: Writer,
}

/// The write half of a split [`Conn`](super::Conn). Clone it freely: each call holds the lock
/// for a whole message (or control frame), so frames of different writers never interleave.
pub struct ConnWriter<S> {
    inner: Arc<Mutex<Shared<S>>>,
}

impl<S> Clone for ConnWriter<S> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner) }
    }
}

impl<S: Write> ConnWriter<S> {
    pub(super) fn new(stream: S, state: Writer) -> Self {
        Self { inner: Arc::new(Mutex::new(Shared { stream, state })) }
    }

    fn lock(&self) -> MutexGuard<'_, Shared<S>> {
        // A writer that panicked mid-frame leaves the stream in an unknown state, but the
        // state itself stays consistent; the next write fails or succeeds on its own.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn with<R>(&self, f: impl FnOnce(&mut Writer, &mut Stream<'_, S>) -> R) -> R {
        let mut g = self.lock();
        let Shared { stream, state } = &mut *g;
        f(state, &mut Stream(stream))
    }

    /// See [`Conn::write_frame`](super::Conn::write_frame).
    pub fn write_frame(&self, is_final: bool, rsv: u8, op: OpCode, payload: &[u8]) -> Result<()> {
        self.with(|w, s| w.write_frame(s, is_final, rsv, op, payload))
    }

    /// See [`Conn::write_message`](super::Conn::write_message).
    pub fn write_message(&self, op: OpCode, payload: &[u8]) -> Result<()> {
        self.with(|w, s| w.write_message(s, op, payload))
    }

    /// Sends a ping (at most 125 bytes).
    pub fn ping(&self, payload: &[u8]) -> Result<()> {
        self.write_frame(true, 0, OpCode::Ping, payload)
    }

    /// See [`Conn::stream_message_ext`](super::Conn::stream_message_ext). Holds the lock until
    /// the whole message is written.
    pub fn stream_message_ext<R: Read>(&self, op: OpCode, rsv: u8, chunk_size: usize, r: &mut R) -> Result<()> {
        self.with(|w, s| w.stream_message(s, op, rsv, chunk_size, r))
    }

    /// Sends our close frame (the reader then sees the peer's answer as `OpCode::Close`).
    pub fn close_with_code(&self, code: CloseCode, reason: &str) -> Result<()> {
        self.with(|w, s| w.close_once(s, code, reason))
    }

    /// Sends an empty ping every `interval` until `stop` receives a message or its sender is
    /// dropped, or a write fails. Blocks: run it on a thread of your own.
    ///
    /// ```no_run
    /// # fn f(writer: lowbit_websockets::ConnWriter<std::net::TcpStream>) {
    /// let (stop, stopped) = std::sync::mpsc::channel::<()>();
    /// let w = writer.clone();
    /// let pinger = std::thread::spawn(move || w.keep_alive(std::time::Duration::from_secs(20), &stopped));
    /// // ... later:
    /// drop(stop);
    /// # }
    /// ```
    pub fn keep_alive(&self, interval: Duration, stop: &Receiver<()>) -> Result<()> {
        loop {
            match stop.recv_timeout(interval) {
                Err(RecvTimeoutError::Timeout) => self.ping(b"")?,
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
        }
    }
}

/// The read half of a split [`Conn`](super::Conn). Pings are answered and the peer's close
/// echoed through the shared [`ConnWriter`].
pub struct ConnReader<S> {
    half: ReadHalf<S>,
    writer: ConnWriter<S>,
}

impl<S: Read + Write> ConnReader<S> {
    pub(super) fn new(half: ReadHalf<S>, writer: ConnWriter<S>) -> Self {
        Self { half, writer }
    }

    /// The read half, and where its answers go: the shared writer, under its lock.
    fn reading(&mut self) -> (&mut ReadHalf<S>, impl FnMut(&mut S, Reply<'_>) -> Result<()>) {
        let Self { half, writer } = self;
        (half, move |_: &mut S, reply| writer.with(|w, s| w.reply(s, reply)))
    }

    /// See [`Conn::read_message`](super::Conn::read_message).
    pub fn read_message<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<(OpCode, &'b [u8])> {
        let (half, mut answer) = self.reading();
        let (op, _) = half.read_message(buf, &mut answer)?;
        Ok((op, buf))
    }

    /// See [`Conn::read_frame`](super::Conn::read_frame).
    pub fn read_frame<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<Frame<'b>> {
        let (half, mut answer) = self.reading();
        half.read_frame(buf, &mut answer)
    }

    /// See [`Conn::read_header`](super::Conn::read_header).
    pub fn read_header(&mut self) -> Result<Header> {
        let (half, mut answer) = self.reading();
        half.read_header(&mut answer)
    }

    /// The writer this reader answers through.
    pub fn writer(&self) -> &ConnWriter<S> {
        &self.writer
    }

    /// The ping, pong and close handlers, as for [`Conn::handlers`](super::Conn::handlers)
    /// (`reader.handlers().set_pong_handler(...)`).
    pub fn handlers(&mut self) -> &mut Handlers {
        &mut self.half.reader.handlers
    }
}
