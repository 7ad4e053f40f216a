//! A `std` `TcpStream`'s two halves as `wasi:io` streams, for a host that gives each
//! connection its own thread ([`Session`](crate::Session)).
//!
//! The halves block the calling thread in `read` and `write` (and report themselves always
//! ready), which is exactly what the guest's `blocking-read`/`check-write` loop wants when
//! one thread serves one connection: one host call per read, one `write(2)`-loop per write,
//! no background task, no extra copy through a channel. A host that multiplexes many
//! connections on one thread uses [`tokio_tcp`](crate::tokio_tcp) instead; the guest works
//! unchanged with either.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};

use bytes::{Bytes, BytesMut};
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, InputStream, OutputStream, Pollable, StreamError, StreamResult,
};

/// The most a single `read` returns (the guest asks for its buffer's size).
const MAX_READ: usize = 1 << 20;
/// What `check-write` grants: the guest may hand over up to this much per `write`.
const WRITE_BUDGET: usize = 4 << 20;

impl crate::Transport for TcpStream {
    fn into_streams(self) -> io::Result<(DynInputStream, DynOutputStream)> {
        tcp_streams(self)
    }
}

/// Splits `stream` into an input and an output stream for a guest. Dropping both closes
/// the socket; dropping the output half shuts down the write direction (TCP FIN).
pub fn tcp_streams(stream: TcpStream) -> io::Result<(DynInputStream, DynOutputStream)> {
    stream.set_nodelay(true)?;
    let reader = stream.try_clone()?;
    Ok((
        Box::new(TcpInput { stream: reader, buf: BytesMut::new(), closed: false }),
        Box::new(TcpOutput { stream, failed: false }),
    ))
}

/// The read half.
pub struct TcpInput {
    stream: TcpStream,
    /// Reused between reads once the guest has taken the previous bytes.
    buf: BytesMut,
    closed: bool,
}

#[async_trait::async_trait]
impl Pollable for TcpInput {
    async fn ready(&mut self) {}
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
        self.buf.clear();
        self.buf.resize(size, 0);
        loop {
            match self.stream.read(&mut self.buf) {
                Ok(0) => {
                    self.closed = true;
                    return Err(StreamError::Closed);
                }
                Ok(n) => {
                    self.buf.truncate(n);
                    return Ok(self.buf.split().freeze());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.closed = true;
                    return Err(StreamError::LastOperationFailed(e.into()));
                }
            }
        }
    }
}

/// The write half.
pub struct TcpOutput {
    stream: TcpStream,
    failed: bool,
}

#[async_trait::async_trait]
impl Pollable for TcpOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for TcpOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        if self.failed {
            return Err(StreamError::Closed);
        }
        self.stream.write_all(&bytes).map_err(|e| {
            self.failed = true;
            StreamError::LastOperationFailed(e.into())
        })
    }

    fn flush(&mut self) -> StreamResult<()> {
        // `write` hands everything to the kernel before returning; there is no buffer here.
        if self.failed { Err(StreamError::Closed) } else { Ok(()) }
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        if self.failed { Err(StreamError::Closed) } else { Ok(WRITE_BUDGET) }
    }
}

impl Drop for TcpOutput {
    fn drop(&mut self) {
        // The guest is done writing: send FIN now rather than when the read half goes too.
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}
