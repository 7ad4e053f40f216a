//! The read loop shared by [`Conn`](super::Conn) and [`ConnReader`](super::ConnReader): it
//! drives the decoder from a stream and answers pings and closes through whatever gives it
//! the write state (the connection itself, or the shared writer of a split connection).

use std::io::{self, Write};

use super::write::WriteState;
use crate::close::CloseCode;
use crate::decode::{Decoder, Event, Output};
use crate::encode::truncate_reason;
use crate::error::{Error, Misuse, Result};
use crate::frame::{Header, OpCode};
use crate::role::Config;

/// Called with the payload of each ping or pong received.
pub type ControlHandler = Box<dyn FnMut(&[u8]) + Send>;
/// Called with the code (1005 if none) and reason of the peer's close frame.
pub type CloseHandler = Box<dyn FnMut(CloseCode, &str) + Send>;

/// Where the read loop gets bytes from and sends its replies through.
pub(crate) trait Link {
    type W: Write;
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    fn with_writer<R>(&mut self, f: impl FnOnce(&mut WriteState, &mut Self::W) -> R) -> R;
}

pub(crate) struct ReadState {
    dec: Decoder,
    /// Bytes that arrived with the handshake, read before the stream.
    early: Vec<u8>,
    /// The peer's close arrived, or the connection failed: nothing more is read.
    pub(crate) closed: bool,
    pub(crate) on_ping: Option<ControlHandler>,
    pub(crate) on_pong: Option<ControlHandler>,
    pub(crate) on_close: Option<CloseHandler>,
    /// Hold our close frame (the answer to the peer's close, or the one a violation sends) in
    /// `owed_close` instead of queuing it at once (set by faces that hand events out in
    /// batches; see `Session::defer_close_reply`).
    pub(crate) defer_close_reply: bool,
    /// The close frame held back while `defer_close_reply` is on.
    pub(crate) owed_close: Option<OwedClose>,
}

/// A close frame held back (see `ReadState::defer_close_reply`).
pub(crate) enum OwedClose {
    /// Echo the peer's status code (0 or 2 bytes).
    Echo([u8; 2], usize),
    /// Fail the connection with this code and reason.
    Fail(CloseCode, String),
}

/// A message, frame or close as the read loop returns it; payloads are in the caller's buffer.
pub(crate) enum Got {
    Data { is_final: bool, rsv: u8, op: OpCode },
    Ping,
    Pong,
    Close,
}

impl Got {
    /// The frame type this stands for.
    pub(crate) fn op(&self) -> OpCode {
        match self {
            Got::Data { op, .. } => *op,
            Got::Ping => OpCode::Ping,
            Got::Pong => OpCode::Pong,
            Got::Close => OpCode::Close,
        }
    }

    /// The RSV bits (data only).
    pub(crate) fn rsv(&self) -> u8 {
        if let Got::Data { rsv, .. } = self { *rsv } else { 0 }
    }

    /// FIN (control frames are always final).
    pub(crate) fn is_final(&self) -> bool {
        if let Got::Data { is_final, .. } = self { *is_final } else { true }
    }
}

impl ReadState {
    pub(crate) fn new(config: &Config, early: &[u8]) -> Self {
        Self {
            dec: Decoder::new(config),
            early: early.to_vec(),
            closed: false,
            on_ping: None,
            on_pong: None,
            on_close: None,
            defer_close_reply: false,
            owed_close: None,
        }
    }

    pub(crate) fn set_deflate(&mut self, config: Option<&crate::deflate::DeflateConfig>) {
        self.dec.set_deflate(config);
    }

    pub(crate) fn set_reserved_bits(&mut self, rsv: u8) {
        self.dec.set_reserved_bits(rsv);
    }

    /// Reads until the decoder yields, failing the connection on a protocol violation.
    fn next<L: Link>(&mut self, link: &mut L, frames: bool) -> Result<Output> {
        if self.closed {
            return Err(Error::WebSocketClosed);
        }
        loop {
            match self.dec.step(frames) {
                Ok(Some(out)) => return Ok(out),
                Ok(None) => {}
                Err(e) => return Err(self.fail(link, e)),
            }
            if let Err(e) = self.fill(link) {
                if matches!(e, Error::AbnormalClosure) {
                    self.closed = true;
                }
                return Err(e);
            }
        }
    }

    fn fill<L: Link>(&mut self, link: &mut L) -> Result<()> {
        if !self.early.is_empty() {
            let n = self.dec.feed(&self.early);
            self.early.drain(..n);
            return Ok(());
        }
        loop {
            match link.read(self.dec.read_buf()) {
                Ok(0) => return Err(Error::AbnormalClosure),
                Ok(n) => {
                    self.dec.advance(n);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The decoder keeps its state: after a timeout the caller may read again.
                Err(e) => return Err(Error::Io(e)),
            }
        }
    }

    /// Fails the connection: sends the error's close frame (if it has one and ours has not
    /// gone out) and stops reading. Returns the error for the caller.
    pub(crate) fn fail<L: Link>(&mut self, link: &mut L, e: Error) -> Error {
        self.closed = true;
        if let Some(code) = e.close_code() {
            let reason = e.to_string();
            if self.defer_close_reply {
                self.owed_close = Some(OwedClose::Fail(code, truncate_reason(&reason).to_owned()));
                return e;
            }
            let _ =
                link.with_writer(
                    |w, s| {
                        if w.close_sent { Ok(()) } else { w.write_close(s, code, truncate_reason(&reason)) }
                    },
                );
        }
        e
    }

    /// The next event, its payload copied into `buf`: a data message, a ping (already
    /// answered), a pong, or the peer's close (already echoed; nothing is read after it).
    pub(crate) fn read_event<L: Link>(&mut self, link: &mut L, buf: &mut Vec<u8>) -> Result<Got> {
        let out = self.next(link, false)?;
        if let Output::Data { op, rsv, .. } = out {
            // A message assembled in the decoder's buffer changes hands instead of being copied.
            if self.dec.swap_message(&out, buf) {
                return Ok(Got::Data { is_final: true, rsv, op });
            }
        }
        let Self { dec, on_ping, on_pong, on_close, closed, defer_close_reply, owed_close, .. } = self;
        let (got, payload) =
            match dec.event(out) {
                Event::Message { op, rsv, payload } => (Got::Data { is_final: true, rsv, op }, payload),
                Event::Ping(payload) => {
                    if let Some(h) = on_ping {
                        h(payload);
                    }
                    // RFC 6455 §5.5.2: a ping MUST be answered with a pong carrying its payload,
                    // unless our close frame has already gone out.
                    link.with_writer(|w, s| {
                        if w.close_sent { Ok(()) } else { w.write_frame(s, true, 0, OpCode::Pong, payload) }
                    })?;
                    (Got::Ping, payload)
                }
                Event::Pong(payload) => {
                    if let Some(h) = on_pong {
                        h(payload);
                    }
                    (Got::Pong, payload)
                }
                Event::Close { frame, body } => {
                    if let Some(h) = on_close {
                        h(frame.code_or_no_status(), frame.reason);
                    }
                    *closed = true;
                    if *defer_close_reply {
                        // The owner answers later (after replies to messages that came before).
                        let mut code = [0u8; 2];
                        let n = body.len().min(2);
                        code[..n].copy_from_slice(&body[..n]);
                        *owed_close = Some(OwedClose::Echo(code, n));
                    } else {
                        // RFC 6455 §5.5.1: answer a close with a close, unless ours went out first.
                        link.with_writer(|w, s| if w.close_sent { Ok(()) } else { w.echo_close(s, body) })?;
                    }
                    (Got::Close, body)
                }
            };
        buf.clear();
        buf.extend_from_slice(payload);
        Ok(got)
    }

    /// The next data message or the peer's close; pings and pongs are handled on the way.
    pub(crate) fn read_message<L: Link>(&mut self, link: &mut L, buf: &mut Vec<u8>) -> Result<Got> {
        loop {
            match self.read_event(link, buf)? {
                Got::Ping | Got::Pong => {}
                got => return Ok(got),
            }
        }
    }

    /// The next frame, control frames included, nothing answered.
    pub(crate) fn read_frame<L: Link>(&mut self, link: &mut L, buf: &mut Vec<u8>) -> Result<Got> {
        let out = self.next(link, true)?;
        let frame = self.dec.frame(out);
        buf.clear();
        buf.extend_from_slice(frame.payload);
        if frame.op == OpCode::Close {
            self.closed = true;
        }
        Ok(Got::Data { is_final: frame.is_final, rsv: frame.rsv, op: frame.op })
    }

    /// Parses the next header without consuming it.
    pub(crate) fn read_header<L: Link>(&mut self, link: &mut L) -> Result<Header> {
        if self.closed {
            return Err(Error::WebSocketClosed);
        }
        if self.dec.in_payload() {
            // Mid-payload (after an interrupted read): there is no header to peek.
            return Err(Error::Misuse(Misuse::MidFrame));
        }
        loop {
            match self.dec.peek_header() {
                Ok(Some(h)) => return Ok(h),
                Ok(None) => {}
                Err(e) => return Err(self.fail(link, e)),
            }
            self.fill(link)?;
        }
    }

    /// After our close went out: reads and discards until the peer's close arrives.
    pub(crate) fn drain_until_close<L: Link>(&mut self, link: &mut L) -> Result<()> {
        while !self.closed {
            let out = self.next(link, false)?;
            if let Event::Close { frame, .. } = self.dec.event(out) {
                if let Some(h) = &mut self.on_close {
                    h(frame.code_or_no_status(), frame.reason);
                }
                self.closed = true;
            }
        }
        Ok(())
    }
}
