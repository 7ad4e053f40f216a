//! Split halves of an [`AsyncConn`](super::AsyncConn): a reader one task owns, and a writer any
//! number of tasks share (a keep-alive among them).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};
use tokio::sync::Mutex;

use super::io::{Answer, ControlBody, Inbox, Outbox};
use crate::close::CloseCode;
use crate::decode::Frame;
use crate::engine::{Handlers, Reply};
use crate::error::Result;
use crate::frame::OpCode;

pub(super) fn halves<S>(
    r: ReadHalf<S>,
    inbox: Inbox,
    w: WriteHalf<S>,
    outbox: Outbox,
) -> (AsyncConnReader<S>, AsyncConnWriter<S>) {
    let writer = AsyncConnWriter { shared: Arc::new(Mutex::new(Shared { stream: w, outbox })) };
    let reader =
        AsyncConnReader { stream: r, inbox, relay: Relay { owed: None, unflushed: false, writer: writer.clone() } };
    (reader, writer)
}

struct Shared<S> {
    stream: WriteHalf<S>,
    outbox: Outbox,
}

/// The write half of a split [`AsyncConn`](super::AsyncConn). Clone it freely: each call holds
/// the lock for a whole message (or control frame), so frames of different tasks never
/// interleave.
pub struct AsyncConnWriter<S> {
    shared: Arc<Mutex<Shared<S>>>,
}

impl<S> Clone for AsyncConnWriter<S> {
    fn clone(&self) -> Self {
        Self { shared: Arc::clone(&self.shared) }
    }
}

impl<S: AsyncRead + AsyncWrite> AsyncConnWriter<S> {
    /// See [`AsyncConn::write_frame`](super::AsyncConn::write_frame).
    pub async fn write_frame(&self, is_final: bool, rsv: u8, op: OpCode, payload: &[u8]) -> Result<()> {
        let mut g = self.shared.lock().await;
        let Shared { stream, outbox } = &mut *g;
        outbox.write_frame(stream, is_final, rsv, op, payload).await
    }

    /// See [`AsyncConn::write_message`](super::AsyncConn::write_message).
    pub async fn write_message(&self, op: OpCode, payload: &[u8]) -> Result<()> {
        let mut g = self.shared.lock().await;
        let Shared { stream, outbox } = &mut *g;
        outbox.write_message(stream, op, payload).await
    }

    /// Sends a ping (at most 125 bytes).
    pub async fn ping(&self, payload: &[u8]) -> Result<()> {
        self.write_frame(true, 0, OpCode::Ping, payload).await
    }

    /// See [`AsyncConn::stream_message`](super::AsyncConn::stream_message). Holds the lock
    /// until the whole message is written.
    pub async fn stream_message<R: AsyncRead + Unpin>(&self, op: OpCode, chunk_size: usize, r: &mut R) -> Result<()> {
        let mut g = self.shared.lock().await;
        let Shared { stream, outbox } = &mut *g;
        outbox.stream_message(stream, op, 0, chunk_size, r).await
    }

    /// Sends our close frame (the reader then sees the peer's answer as `OpCode::Close`).
    pub async fn close_with_code(&self, code: CloseCode, reason: &str) -> Result<()> {
        let mut g = self.shared.lock().await;
        let Shared { stream, outbox } = &mut *g;
        outbox.close(stream, code, reason).await
    }

    /// Sends an empty ping every `interval` until a write fails; after our close that is
    /// [`Error::WebSocketClosed`](crate::Error::WebSocketClosed). Spawn it, and abort it or let
    /// it end with the connection.
    pub async fn keep_alive(&self, interval: Duration) -> Result<()> {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        loop {
            ticks.tick().await;
            self.ping(b"").await?;
        }
    }
}

/// An answer the reader owes, kept until the shared writer's lock is had.
enum OwedReply {
    Pong(ControlBody),
    Echo(Option<CloseCode>),
    Fail(CloseCode, String),
}

impl OwedReply {
    fn as_reply(&self) -> Reply<'_> {
        match self {
            OwedReply::Pong(body) => Reply::Pong(body.as_slice()),
            OwedReply::Echo(code) => Reply::Echo(*code),
            OwedReply::Fail(code, reason) => Reply::Fail(*code, reason),
        }
    }
}

/// The reader's answers, relayed to the shared writer.
struct Relay<S> {
    owed: Option<OwedReply>,
    /// An answer was queued but its flush may not have finished (it was cancelled).
    unflushed: bool,
    writer: AsyncConnWriter<S>,
}

impl<S: AsyncRead + AsyncWrite> Answer<ReadHalf<S>> for Relay<S> {
    fn reply(&mut self, reply: Reply<'_>) -> Result<()> {
        // The engine owes at most one answer per output, and it is sent before the next poll.
        self.owed = Some(match reply {
            Reply::Pong(payload) => OwedReply::Pong(ControlBody::new(payload)),
            Reply::Echo(code) => OwedReply::Echo(code),
            Reply::Fail(code, reason) => OwedReply::Fail(code, reason.to_owned()),
        });
        Ok(())
    }

    async fn flush(&mut self, _: &mut ReadHalf<S>) -> Result<()> {
        if self.owed.is_none() && !self.unflushed {
            return Ok(());
        }
        // Cancelled while waiting for the lock: the answer is still owed. Cancelled while
        // flushing: it is queued, and `unflushed` brings us back to finish the flush.
        let mut g = self.writer.shared.lock().await;
        let Shared { stream, outbox } = &mut *g;
        if let Some(reply) = self.owed.take() {
            self.unflushed = true;
            outbox.queue_reply(reply.as_reply())?;
        }
        outbox.flush(stream).await?;
        self.unflushed = false;
        Ok(())
    }
}

/// The read half of a split [`AsyncConn`](super::AsyncConn). Pings are answered and the peer's
/// close echoed through the shared [`AsyncConnWriter`]. Its reads are cancel-safe.
pub struct AsyncConnReader<S> {
    stream: ReadHalf<S>,
    inbox: Inbox,
    relay: Relay<S>,
}

impl<S: AsyncRead + AsyncWrite> AsyncConnReader<S> {
    /// See [`AsyncConn::read_message`](super::AsyncConn::read_message).
    pub async fn read_message<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<(OpCode, &'b [u8])> {
        let (op, _) = self.inbox.read_message(&mut self.stream, &mut self.relay, buf).await?;
        Ok((op, buf))
    }

    /// See [`AsyncConn::read_frame`](super::AsyncConn::read_frame).
    pub async fn read_frame<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<Frame<'b>> {
        self.inbox.read_frame(&mut self.stream, &mut self.relay, buf).await
    }

    /// The writer this reader answers through.
    pub fn writer(&self) -> &AsyncConnWriter<S> {
        &self.relay.writer
    }

    /// The ping, pong and close handlers.
    pub fn handlers(&mut self) -> &mut Handlers {
        &mut self.inbox.reader.handlers
    }
}
