//! A tokio `TcpStream` as a guest's two `wasi:io` streams, for a host that serves many
//! connections per thread ([`AsyncSession`](crate::AsyncSession)).
//!
//! Both halves use the socket directly, with no background task or channel: a read is one
//! `read(2)` into a fresh buffer that wasmtime copies into the guest's (see
//! `crates/component/src/io.rs`: it lands in the guest's read buffer). Writes keep the lists
//! wasmtime lifted out of guest memory (no further copy) until the guest flushes, then go in
//! one `writev(2)`; what the kernel does not take waits for the socket to be writable.
//! When a read finds nothing or a write cannot finish, the guest's `blocking-read` /
//! `blocking-flush` waits on the socket's readiness, which suspends its fiber and lets
//! the thread serve other connections.
//!
//! Fairness: every wait first spends one unit of tokio's cooperative budget, so a peer
//! whose bytes are always there (a flood of empty frames) still yields its thread after a
//! bounded number of reads. A guest that computes without I/O is preempted by epochs
//! ([`EPOCH_TICK`](crate::EPOCH_TICK)).

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::net::TcpStream;
use tokio::time::Instant;
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, InputStream, OutputStream, Pollable, StreamError, StreamResult,
};

/// The most a single `read` returns (the guest asks for up to its buffer's size).
const MAX_READ: usize = 256 << 10;
/// What `check-write` grants when nothing is pending: the guest may hand over this much.
const WRITE_BUDGET: usize = 4 << 20;

/// A tokio TCP stream to hand to a guest, with the server's stalled-peer policy.
pub struct TokioTcp {
    /// The socket; keep a clone to linger on it after the session ([`linger`]).
    pub stream: Arc<TcpStream>,
    /// Fail the output stream when written bytes make no progress for this long
    /// (a peer that stopped reading); `None` waits forever.
    pub stall_timeout: Option<Duration>,
}

impl crate::Transport for TokioTcp {
    fn into_streams(self) -> io::Result<(DynInputStream, DynOutputStream)> {
        self.stream.set_nodelay(true)?;
        let input = TcpInput { stream: Arc::clone(&self.stream), closed: false };
        let output = TcpOutput::new(self.stream, self.stall_timeout);
        Ok((Box::new(input), Box::new(output)))
    }
}

impl crate::Transport for TcpStream {
    fn into_streams(self) -> io::Result<(DynInputStream, DynOutputStream)> {
        TokioTcp { stream: Arc::new(self), stall_timeout: None }.into_streams()
    }
}

/// The read half.
struct TcpInput {
    stream: Arc<TcpStream>,
    closed: bool,
}

impl InputStream for TcpInput {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if self.closed {
            return Err(StreamError::Closed);
        }
        let size = size.min(MAX_READ);
        if size == 0 {
            return Ok(Bytes::new());
        }
        // Not zeroed, and handed over whole: wasmtime turns it into the `Vec` it copies
        // into the guest without copying it first.
        let mut buf = BytesMut::with_capacity(size);
        match self.stream.try_read_buf(&mut buf) {
            Ok(0) => {
                self.closed = true;
                Err(StreamError::Closed)
            }
            Ok(_) => Ok(buf.freeze()),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => Ok(Bytes::new()),
            Err(e) => {
                self.closed = true;
                Err(StreamError::LastOperationFailed(e.into()))
            }
        }
    }
}

#[async_trait::async_trait]
impl Pollable for TcpInput {
    async fn ready(&mut self) {
        tokio::task::consume_budget().await;
        if !self.closed {
            // An error here shows up in the next `read`.
            let _ = self.stream.readable().await;
        }
    }
}

/// The write half. Writes are kept (the same `Bytes`, no copy) until the guest flushes,
/// then sent in one `writev`: a large frame's header and payload leave in one segment.
struct TcpOutput {
    stream: Arc<TcpStream>,
    /// Written and not yet taken by the kernel, oldest first.
    pending: VecDeque<Bytes>,
    pending_len: usize,
    /// A flush was asked for and `pending` is not sent yet: `check-write` grants nothing.
    flushing: bool,
    /// Why the stream broke: a write error, or no progress within `stall_timeout`.
    failed: Option<io::ErrorKind>,
    stall_timeout: Option<Duration>,
}

/// The most slices one `writev` takes here.
const MAX_SLICES: usize = 16;

impl TcpOutput {
    fn new(stream: Arc<TcpStream>, stall_timeout: Option<Duration>) -> Self {
        Self { stream, pending: VecDeque::new(), pending_len: 0, flushing: false, failed: None, stall_timeout }
    }

    fn check(&self) -> StreamResult<()> {
        match self.failed {
            None => Ok(()),
            Some(kind) => Err(StreamError::LastOperationFailed(io::Error::from(kind).into())),
        }
    }

    /// Sends as much of `pending` as the kernel takes now; returns whether any went.
    fn push(&mut self) -> bool {
        let before = self.pending_len;
        while self.pending_len > 0 {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let n = self.pending.iter().zip(&mut slices).map(|(b, s)| *s = IoSlice::new(b)).count();
            match self.stream.try_write_vectored(&slices[..n]) {
                Ok(sent) => self.consume(sent),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    self.failed = Some(e.kind());
                    self.pending.clear();
                    self.pending_len = 0;
                }
            }
        }
        self.flushing &= self.pending_len > 0;
        self.pending_len < before
    }

    fn consume(&mut self, mut sent: usize) {
        self.pending_len -= sent;
        while sent > 0 {
            let Some(front) = self.pending.front_mut() else { return };
            if front.len() > sent {
                front.advance(sent);
                return;
            }
            sent -= front.len();
            self.pending.pop_front();
        }
    }
}

impl OutputStream for TcpOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.check()?;
        if self.flushing || bytes.len() > WRITE_BUDGET - self.pending_len {
            return Err(StreamError::trap("write past the check-write permit"));
        }
        self.pending_len += bytes.len();
        self.pending.push_back(bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.check()?;
        self.flushing = self.pending_len > 0;
        self.push();
        self.check()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.check()?;
        Ok(if self.flushing { 0 } else { WRITE_BUDGET - self.pending_len })
    }
}

#[async_trait::async_trait]
impl Pollable for TcpOutput {
    async fn ready(&mut self) {
        tokio::task::consume_budget().await;
        // A guest waiting for a permit with the budget used up gets it by a flush.
        self.flushing |= self.pending_len >= WRITE_BUDGET;
        let mut deadline = self.stall_timeout.map(|t| Instant::now() + t);
        while self.flushing && self.failed.is_none() {
            let writable = self.stream.writable();
            let ready = match deadline {
                Some(at) => tokio::time::timeout_at(at, writable).await.ok(),
                None => Some(writable.await),
            };
            match ready {
                None => self.failed = Some(io::ErrorKind::TimedOut), // a stalled peer
                Some(Err(e)) => self.failed = Some(e.kind()),
                Some(Ok(())) => {
                    if self.push() {
                        deadline = self.stall_timeout.map(|t| Instant::now() + t);
                    }
                }
            }
        }
    }
}

impl Drop for TcpOutput {
    fn drop(&mut self) {
        // The guest is done writing: send FIN now rather than when the read half goes too.
        let _ = socket2::SockRef::from(&*self.stream).shutdown(Shutdown::Write);
    }
}

/// Closes our side without losing what the guest wrote last (core's
/// `lowbit_websockets::tcp::linger`, on tokio): FIN, then read and drop whatever the peer
/// still sends until it hangs up or `within` has passed.
pub async fn linger(stream: &TcpStream, within: Duration) {
    let _ = socket2::SockRef::from(stream).shutdown(Shutdown::Write);
    let mut sink = [0u8; 16 * 1024];
    let _ = tokio::time::timeout(within, async {
        loop {
            if stream.readable().await.is_err() {
                return;
            }
            match stream.try_read(&mut sink) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
                Err(_) => return,
            }
        }
    })
    .await;
}
