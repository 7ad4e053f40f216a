//! What one sans-IO handshake step returns, and the one blocking loop that drives step
//! functions over a `Read + Write` stream.
//!
//! A step function takes every byte received so far (the caller appends each read to the same
//! buffer) and decides nothing until the head is complete. It never reads, writes or blocks, so
//! an event loop, a JavaScript runtime or a test can drive it as well as [`drive`] does.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use super::{HandshakeError, read_to_line_end};

/// The outcome of feeding the bytes received so far to a handshake step function
/// ([`server_step`](super::server_step), [`ClientHandshake::step`](super::ClientHandshake::step),
/// and their counterparts in [`upgrade`](crate::upgrade)).
#[derive(Debug)]
#[must_use]
pub enum Step<T, E = HandshakeError> {
    /// The head is not complete: append more bytes to the buffer and call again.
    NeedMore,
    /// The handshake failed. Send `response` (a server's 4xx/5xx answer; empty when there is
    /// nothing to send, as for a client), then close the connection.
    Refused {
        /// The bytes to send before closing; may be empty.
        response: Vec<u8>,
        /// Why the handshake failed.
        error: E,
    },
    /// The handshake is complete. Send `response` (a server's 101; empty for a client).
    Done {
        /// The bytes to send; may be empty.
        response: Vec<u8>,
        /// How many bytes of the buffer the head used. Bytes after them are the peer's first
        /// frames, sent in the same packet: they belong to the WebSocket, not to the handshake.
        used: usize,
        /// What was agreed; its `leftover` holds a copy of the bytes after `used`.
        result: T,
    },
}

/// A total deadline for reading a handshake head: checked before every read, and each read
/// bounded by the time left through `bound` (a socket's read timeout), so neither a silent
/// peer nor one trickling a byte at a time holds the handshake past `at`.
pub(crate) struct Deadline<'a, S> {
    /// When the head must be complete.
    pub at: Instant,
    /// Bounds the next blocking read of the stream to the time given; streams that cannot
    /// (`Read` in general) do nothing, and the deadline is then met at the first read that
    /// returns after it.
    pub bound: &'a mut dyn FnMut(&mut S, Duration) -> io::Result<()>,
}

impl<S> Deadline<'_, S> {
    /// Fails with [`HandshakeError::Timeout`] if the deadline has passed; bounds the next read
    /// to the time left otherwise.
    pub(crate) fn before_read(&mut self, stream: &mut S) -> Result<(), HandshakeError> {
        let left = self.at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HandshakeError::Timeout);
        }
        (self.bound)(stream, left).map_err(HandshakeError::Io)
    }

    /// A failed read: the timeout if the read was cut short by the bound, else the I/O error.
    pub(crate) fn explain(&self, error: io::Error) -> HandshakeError {
        let cut = matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut);
        if cut && Instant::now() >= self.at { HandshakeError::Timeout } else { HandshakeError::Io(error) }
    }
}

/// Runs a handshake over a blocking stream: writes `request` (a client's upgrade request;
/// empty for a server), then reads onto one buffer (within `deadline`, if any) and calls `step`
/// until it is done or refused, and writes the answer it gives.
///
/// A refusal's response is written best effort: the handshake has failed already, and its
/// error says why better than a broken pipe would. Read failures are refused the same way
/// (a head over [`MAX_HANDSHAKE_SIZE`](super::MAX_HANDSHAKE_SIZE) gets its 431, a deadline
/// passed its 408).
pub(crate) fn drive<S: Read + Write, T, E: From<HandshakeError>>(
    stream: &mut S,
    request: &[u8],
    too_large: fn() -> HandshakeError,
    mut deadline: Option<Deadline<'_, S>>,
    mut step: impl FnMut(&[u8]) -> Step<T, E>,
) -> Result<T, E> {
    if !request.is_empty() {
        send(stream, request)?;
    }
    let mut buf = Vec::with_capacity(1024);
    loop {
        match step(&buf) {
            Step::NeedMore => {}
            Step::Refused { response, error } => {
                let _ = send(stream, &response);
                return Err(error);
            }
            Step::Done { response, result, .. } => {
                send(stream, &response)?;
                return Ok(result);
            }
        }
        if let Err(error) = read_to_line_end(stream, &mut buf, too_large(), &mut deadline) {
            let mut response = Vec::new();
            error.write_rejection(&mut response);
            let _ = send(stream, &response);
            return Err(error.into());
        }
    }
}

/// Writes and flushes `bytes`, if there are any.
fn send<S: Write>(stream: &mut S, bytes: &[u8]) -> Result<(), HandshakeError> {
    if !bytes.is_empty() {
        stream.write_all(bytes)?;
        stream.flush()?;
    }
    Ok(())
}
