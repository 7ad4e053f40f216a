//! The blocking driver: [`Conn`] over any `Read + Write` stream, with the seed's API.
//!
//! `Conn` is a thin loop over the engine's read and write sides (the halves of
//! [`Session`](crate::Session)): it reads the stream into the engine, sends the answers the
//! engine owes straight to the stream, and writes frames from the caller's buffer (a large
//! server payload goes out in one vectored write, uncopied). For a stream that can be cloned (`TcpStream`), [`Conn::split`]
//! gives a reader and a cloneable writer that serializes whole messages, so a keep-alive
//! thread's pings never land inside another writer's frame.

mod read;
mod split;

use std::io::{self, Read, Write};

use read::ReadHalf;
pub use split::{ConnReader, ConnWriter, TryClone};

use crate::close::CloseCode;
pub use crate::decode::Frame;
use crate::deflate::{Compressor, DeflateConfig};
pub use crate::engine::{CloseHandler, ControlHandler, Handlers};
use crate::engine::{Reader, Reply, Stream, Writer};
use crate::error::Result;
use crate::frame::{Header, OpCode};
use crate::role::{Config, Role};

/// A WebSocket connection over a blocking stream.
///
/// Methods come in three groups: reads (`read_message`, `read_message_ext`, `read_frame`,
/// `read_header`), which also answer pings and the peer's close; writes (`write_message`,
/// `write_frame`, `stream_message`, `ping`, `pong`); and the close handshake
/// (`close`, `close_with_code`). A protocol violation by the peer sends the matching close
/// frame before the error is returned, and every later call returns
/// [`Error::WebSocketClosed`](crate::Error::WebSocketClosed).
///
/// ```no_run
/// use lowbit_websockets::{Conn, OpCode};
/// # fn run(stream: std::net::TcpStream) -> lowbit_websockets::Result<()> {
/// let mut conn = Conn::new(stream, 0, 0); // an upgraded server-side stream, default limits
/// let mut buf = Vec::new();
/// loop {
///     let (op, payload) = conn.read_message(&mut buf)?;
///     if op == OpCode::Close {
///         return Ok(());
///     }
///     conn.write_message(op, payload)?;
/// }
/// # }
/// ```
pub struct Conn<S> {
    half: ReadHalf<S>,
    writer: Writer,
}

impl<S: Read + Write> Conn<S> {
    /// Wraps an upgraded server-side stream. `max_read_limit` bounds every incoming message
    /// (0 = [`READ_LIMIT_STANDARD`](crate::READ_LIMIT_STANDARD)); `max_chunk_size` bounds
    /// every frame written (0 = [`CHUNK_SIZE_LOW_MEMORY`](crate::CHUNK_SIZE_LOW_MEMORY)).
    pub fn new(stream: S, max_read_limit: usize, max_chunk_size: usize) -> Self {
        Self::with_config(stream, Config::with_limits(Role::Server, max_read_limit, max_chunk_size))
    }

    /// Wraps an upgraded client-side stream; limits as in [`Conn::new`].
    pub fn new_client(stream: S, max_read_limit: usize, max_chunk_size: usize) -> Self {
        Self::with_config(stream, Config::with_limits(Role::Client, max_read_limit, max_chunk_size))
    }

    /// Wraps a stream with explicit settings.
    pub fn with_config(stream: S, config: Config) -> Self {
        Self::with_early_data(stream, config, &[])
    }

    /// Wraps a stream whose handshake read `early` bytes past its end (frames the peer sent
    /// right away); they are decoded before anything is read from the stream.
    pub fn with_early_data(stream: S, config: Config, early: &[u8]) -> Self {
        Self { half: ReadHalf::new(stream, Reader::new(&config), early), writer: Writer::new(&config) }
    }

    /// The read half, and where its answers go: this connection's writer, on its stream.
    fn reading(&mut self) -> (&mut ReadHalf<S>, impl FnMut(&mut S, Reply<'_>) -> Result<()>) {
        let Self { half, writer } = self;
        (half, move |stream: &mut S, reply| writer.reply(&mut Stream(stream), reply))
    }

    /// Reads the next text or binary message into `buf` (reused, so a read loop allocates
    /// nothing once warm) and returns its type and payload. Pings are answered on the way.
    /// When the peer closes, the close is echoed and `(OpCode::Close, body)` is returned once;
    /// later reads return [`Error::WebSocketClosed`](crate::Error::WebSocketClosed).
    pub fn read_message<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<(OpCode, &'b [u8])> {
        let (op, _, payload) = self.read_message_ext(buf)?;
        Ok((op, payload))
    }

    /// [`Conn::read_message`], also returning the RSV bits of the message's first frame.
    pub fn read_message_ext<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<(OpCode, u8, &'b [u8])> {
        let (half, mut answer) = self.reading();
        let (op, rsv) = half.read_message(buf, &mut answer)?;
        Ok((op, rsv, buf))
    }

    /// Reads one raw frame into `buf`. Control frames are returned too and nothing is
    /// answered automatically; the framing, continuation, UTF-8 and limit rules still apply.
    /// Compressed frames (RSV1) come out as they are on the wire: with permessage-deflate on,
    /// do not mix `read_frame` with `read_message`, whose inflater would miss their history.
    pub fn read_frame<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<Frame<'b>> {
        let (half, mut answer) = self.reading();
        half.read_frame(buf, &mut answer)
    }

    /// Parses the next frame header without consuming it or allocating; the next
    /// [`Conn::read_frame`] returns that frame.
    pub fn read_header(&mut self) -> Result<Header> {
        let (half, mut answer) = self.reading();
        half.read_header(&mut answer)
    }

    /// Writes one frame; the lowest-level write. Payloads longer than `max_chunk_size` are
    /// split into continuation frames (the message is unchanged). `rsv` sets RSV bits for
    /// extensions (`0x40` = RSV1).
    pub fn write_frame(&mut self, is_final: bool, rsv: u8, op: OpCode, payload: &[u8]) -> Result<()> {
        self.writer.write_frame(&mut Stream(&mut self.half.stream), is_final, rsv, op, payload)
    }

    /// Writes a whole message (fragmented at `max_chunk_size`), compressed when
    /// permessage-deflate is on and the message reaches its threshold. Control opcodes are
    /// sent as control frames, never compressed.
    pub fn write_message(&mut self, op: OpCode, payload: &[u8]) -> Result<()> {
        self.writer.write_message(&mut Stream(&mut self.half.stream), op, payload)
    }

    /// Sends a ping (at most 125 bytes).
    pub fn ping(&mut self, payload: &[u8]) -> Result<()> {
        self.write_frame(true, 0, OpCode::Ping, payload)
    }

    /// Sends an unsolicited pong (at most 125 bytes).
    pub fn pong(&mut self, payload: &[u8]) -> Result<()> {
        self.write_frame(true, 0, OpCode::Pong, payload)
    }

    /// Streams `r` as one message in fragments of `chunk_size` bytes (0 = `max_chunk_size`),
    /// holding two chunks of memory whatever the message length. The last fragment is never
    /// empty unless the whole message is.
    pub fn stream_message<R: Read>(&mut self, op: OpCode, chunk_size: usize, r: &mut R) -> Result<()> {
        self.stream_message_ext(op, 0, chunk_size, r)
    }

    /// [`Conn::stream_message`] with RSV bits on the first fragment.
    pub fn stream_message_ext<R: Read>(&mut self, op: OpCode, rsv: u8, chunk_size: usize, r: &mut R) -> Result<()> {
        self.writer.stream_message(&mut Stream(&mut self.half.stream), op, rsv, chunk_size, r)
    }

    /// Closes with 1000 (normal closure); see [`Conn::close_with_code`].
    pub fn close(&mut self) -> Result<()> {
        self.close_with_code(CloseCode::NORMAL_CLOSURE, "")
    }

    /// Completes the close handshake: sends a close frame with `code` and `reason` (unless one
    /// went out already), then reads and discards until the peer's close arrives. The stream
    /// is closed when the `Conn` is dropped. Set a read timeout on the stream to bound the wait.
    pub fn close_with_code(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        self.writer.close_once(&mut Stream(&mut self.half.stream), code, reason)?;
        let (half, mut answer) = self.reading();
        half.drain_until_close(&mut answer)
    }

    /// Fails the connection with `code` (as after a protocol violation): sends the close frame
    /// and stops reading, without waiting for the peer.
    pub fn fail(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        self.half.reader.stop();
        self.writer.close_once(&mut Stream(&mut self.half.stream), code, reason)
    }

    /// Turns permessage-deflate on with a negotiated configuration (see
    /// [`deflate::negotiate`](crate::deflate::negotiate)), or off with `None`. Messages are
    /// inflated on read (bounded by `max_read_limit`) and compressed on write with the
    /// configured [`Engine`](crate::deflate::Engine), or with `compressor` if given.
    pub fn set_deflate(&mut self, config: Option<&DeflateConfig>, compressor: Option<Box<dyn Compressor>>) {
        self.half.reader.set_deflate(config);
        self.writer.set_deflate(config, compressor);
    }

    /// Lets RSV bits through on the first frame of each message, for an extension the caller
    /// negotiated itself (`0x40` = RSV1). RSV bits on continuation and control frames stay
    /// protocol errors.
    pub fn allow_reserved_bits(&mut self, rsv: u8) {
        self.half.reader.set_reserved_bits(rsv);
    }

    /// The ping, pong and close handlers ([`Handlers::set_ping_handler`], ...).
    pub fn handlers(&mut self) -> &mut Handlers {
        &mut self.half.reader.handlers
    }

    /// Called with each ping's payload (the pong is sent regardless).
    pub fn set_ping_handler(&mut self, h: impl FnMut(&[u8]) + Send + 'static) {
        self.handlers().set_ping_handler(h);
    }

    /// Called with each pong's payload.
    pub fn set_pong_handler(&mut self, h: impl FnMut(&[u8]) + Send + 'static) {
        self.handlers().set_pong_handler(h);
    }

    /// Called with the peer's close code (1005 if none) and reason.
    pub fn set_close_handler(&mut self, h: impl FnMut(CloseCode, &str) + Send + 'static) {
        self.handlers().set_close_handler(h);
    }

    /// The stream, by reference.
    pub fn get_ref(&self) -> &S {
        &self.half.stream
    }

    /// The stream, mutably (writing to it directly corrupts the framing).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.half.stream
    }

    /// Gives back the stream.
    pub fn into_inner(self) -> S {
        self.half.stream
    }
}

impl<S: Read + Write + TryClone> Conn<S> {
    /// Splits the connection into a reader and a cloneable writer over clones of the stream.
    /// The writer serializes whole messages, so any number of threads (a keep-alive among
    /// them) may write; the reader answers pings and closes through the same writer.
    pub fn split(self) -> io::Result<(ConnReader<S>, ConnWriter<S>)> {
        let writer = ConnWriter::new(self.half.stream.try_clone()?, self.writer);
        Ok((ConnReader::new(self.half, writer.clone()), writer))
    }
}

impl<S> std::fmt::Debug for Conn<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("closed", &self.half.reader.is_closed())
            .field("close_sent", &self.writer.close_sent())
            .finish()
    }
}
