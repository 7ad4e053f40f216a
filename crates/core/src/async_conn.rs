//! The tokio driver (feature `tokio`): [`AsyncConn`] over any `AsyncRead + AsyncWrite` stream,
//! the blocking [`Conn`](crate::Conn)'s API in async form, over the same engine.
//!
//! Like `Conn`, it reads the stream into the engine and answers pings and the peer's close.
//! Frames are encoded into one reused output buffer and written from there, so a write
//! cancelled half-way resumes where it stopped at the next call; a server's large payload
//! (4 KiB up to `max_chunk_size`, uncompressed) instead leaves from the caller's buffer in one
//! vectored write, uncopied.
//!
//! # Cancel safety
//! [`AsyncConn::read_message`] and [`AsyncConn::read_frame`] are cancel-safe: they can sit in
//! a `tokio::select!` branch. Bytes read from the stream go into the engine before the next
//! `.await`, and a message is handed out only at the very end, so dropping the future loses
//! neither bytes nor a message: the next call picks up where it stopped. The write methods are
//! not cancel-safe in that sense (a dropped write may or may not have sent its message), but a
//! dropped write never corrupts the framing: bytes already queued go out at the next call, and
//! a payload cut short by the drop ends the connection for writing
//! ([`Error::WebSocketClosed`](crate::Error::WebSocketClosed)) rather than being followed by
//! another frame.
//!
//! ```no_run
//! # async fn run(stream: tokio::net::TcpStream) -> lowbit_websockets::Result<()> {
//! use lowbit_websockets::{AsyncConn, OpCode};
//! let mut conn = AsyncConn::new(stream, 0, 0); // an upgraded server-side stream
//! let mut buf = Vec::new();
//! loop {
//!     let (op, payload) = conn.read_message(&mut buf).await?;
//!     if op == OpCode::Close {
//!         return Ok(());
//!     }
//!     conn.write_message(op, payload).await?;
//! }
//! # }
//! ```

#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "hyper")]
pub mod hyper;
mod io;
mod split;
mod upgrade;

use tokio::io::{AsyncRead, AsyncWrite};

use self::io::{Inbox, Outbox};
pub use self::split::{AsyncConnReader, AsyncConnWriter};
pub use self::upgrade::{accept_async, accept_async_with, connect_async};
use crate::close::CloseCode;
use crate::decode::Frame;
use crate::deflate::{Compressor, DeflateConfig};
use crate::engine::{Handlers, Reader, Writer};
use crate::error::Result;
use crate::frame::OpCode;
use crate::role::{Config, Role};

/// A WebSocket connection over an async stream. See the [module docs](self).
pub struct AsyncConn<S> {
    stream: S,
    inbox: Inbox,
    outbox: Outbox,
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncConn<S> {
    /// Wraps an upgraded server-side stream; limits as in [`Conn::new`](crate::Conn::new).
    pub fn new(stream: S, max_read_limit: usize, max_chunk_size: usize) -> Self {
        Self::with_config(stream, Config::with_limits(Role::Server, max_read_limit, max_chunk_size))
    }

    /// Wraps an upgraded client-side stream; limits as in [`Conn::new`](crate::Conn::new).
    pub fn new_client(stream: S, max_read_limit: usize, max_chunk_size: usize) -> Self {
        Self::with_config(stream, Config::with_limits(Role::Client, max_read_limit, max_chunk_size))
    }

    /// Wraps a stream with explicit settings.
    pub fn with_config(stream: S, config: Config) -> Self {
        Self::with_early_data(stream, config, &[])
    }

    /// Wraps a stream whose handshake read `early` bytes past its end; they are decoded
    /// before anything is read from the stream.
    pub fn with_early_data(stream: S, config: Config, early: &[u8]) -> Self {
        Self { stream, inbox: Inbox::new(Reader::new(&config), early), outbox: Outbox::new(Writer::new(&config)) }
    }

    /// Reads the next text or binary message into `buf` (reused: no allocation per message
    /// once warm) and returns its type and payload. Pings are answered on the way. The peer's
    /// close is echoed and returned once as `(OpCode::Close, body)`; later reads return
    /// [`Error::WebSocketClosed`](crate::Error::WebSocketClosed). Cancel-safe.
    pub async fn read_message<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<(OpCode, &'b [u8])> {
        let (op, _) = self.inbox.read_message(&mut self.stream, &mut self.outbox, buf).await?;
        Ok((op, buf))
    }

    /// [`AsyncConn::read_message`], also returning the RSV bits of the message's first frame.
    pub async fn read_message_ext<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<(OpCode, u8, &'b [u8])> {
        let (op, rsv) = self.inbox.read_message(&mut self.stream, &mut self.outbox, buf).await?;
        Ok((op, rsv, buf))
    }

    /// Reads one raw frame into `buf`, as [`Conn::read_frame`](crate::Conn::read_frame):
    /// control frames too, nothing answered. Cancel-safe.
    pub async fn read_frame<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<Frame<'b>> {
        self.inbox.read_frame(&mut self.stream, &mut self.outbox, buf).await
    }

    /// Writes one frame, as [`Conn::write_frame`](crate::Conn::write_frame).
    pub async fn write_frame(&mut self, is_final: bool, rsv: u8, op: OpCode, payload: &[u8]) -> Result<()> {
        self.outbox.write_frame(&mut self.stream, is_final, rsv, op, payload).await
    }

    /// Writes a whole message, as [`Conn::write_message`](crate::Conn::write_message).
    pub async fn write_message(&mut self, op: OpCode, payload: &[u8]) -> Result<()> {
        self.outbox.write_message(&mut self.stream, op, payload).await
    }

    /// Sends a ping (at most 125 bytes).
    pub async fn ping(&mut self, payload: &[u8]) -> Result<()> {
        self.write_frame(true, 0, OpCode::Ping, payload).await
    }

    /// Sends an unsolicited pong (at most 125 bytes).
    pub async fn pong(&mut self, payload: &[u8]) -> Result<()> {
        self.write_frame(true, 0, OpCode::Pong, payload).await
    }

    /// Streams `r` as one message, as [`Conn::stream_message`](crate::Conn::stream_message).
    pub async fn stream_message<R: AsyncRead + Unpin>(
        &mut self,
        op: OpCode,
        chunk_size: usize,
        r: &mut R,
    ) -> Result<()> {
        self.outbox.stream_message(&mut self.stream, op, 0, chunk_size, r).await
    }

    /// Closes with 1000 (normal closure); see [`AsyncConn::close_with_code`].
    pub async fn close(&mut self) -> Result<()> {
        self.close_with_code(CloseCode::NORMAL_CLOSURE, "").await
    }

    /// Completes the close handshake: sends our close (unless one went out already), then
    /// reads and discards until the peer's close arrives. Wrap it in `tokio::time::timeout` to
    /// bound the wait.
    pub async fn close_with_code(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        self.outbox.close(&mut self.stream, code, reason).await?;
        self.inbox.drain_until_close(&mut self.stream, &mut self.outbox).await
    }

    /// Turns permessage-deflate on with a negotiated configuration, or off with `None`, as
    /// [`Conn::set_deflate`](crate::Conn::set_deflate).
    pub fn set_deflate(&mut self, config: Option<&DeflateConfig>, compressor: Option<Box<dyn Compressor>>) {
        self.inbox.reader.set_deflate(config);
        self.outbox.writer.set_deflate(config, compressor);
    }

    /// The ping, pong and close handlers.
    pub fn handlers(&mut self) -> &mut Handlers {
        &mut self.inbox.reader.handlers
    }

    /// Splits the connection into a read half and a cloneable write half that separate tasks
    /// can own; the reader answers pings and closes through the shared writer.
    pub fn split(self) -> (AsyncConnReader<S>, AsyncConnWriter<S>) {
        let (r, w) = tokio::io::split(self.stream);
        split::halves(r, self.inbox, w, self.outbox)
    }

    /// The stream, by reference.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream, mutably (writing to it directly corrupts the framing).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Gives back the stream.
    pub fn into_inner(self) -> S {
        self.stream
    }
}

impl<S> std::fmt::Debug for AsyncConn<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncConn")
            .field("closed", &self.inbox.reader.is_closed())
            .field("close_sent", &self.outbox.writer.close_sent())
            .finish()
    }
}
