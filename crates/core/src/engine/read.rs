//! The engine's read side: the decoder, the application's handlers, and what each event owes
//! the peer. It never writes: an answer (a pong, the echo of a close, the close a violation
//! sends) is handed to the caller as a [`Reply`], which the write side sends.

use crate::close::{CloseCode, CloseFrame};
use crate::decode::{Decoder, Event, Frame, Output};
use crate::deflate::DeflateConfig;
use crate::encode::truncate_reason;
use crate::error::{Error, Misuse, Result};
use crate::frame::{Header, OpCode};
use crate::role::Config;

/// Called with the payload of each ping or pong received.
pub type ControlHandler = Box<dyn FnMut(&[u8]) + Send>;
/// Called with the code (1005 if none) and reason of the peer's close frame.
pub type CloseHandler = Box<dyn FnMut(CloseCode, &str) + Send>;

/// The application's callbacks for control frames, run as each one is decoded in message mode
/// (frame reads hand control frames back instead).
#[derive(Default)]
pub struct Handlers {
    on_ping: Option<ControlHandler>,
    on_pong: Option<ControlHandler>,
    on_close: Option<CloseHandler>,
}

impl Handlers {
    /// Called with each ping's payload (the pong is sent regardless).
    pub fn set_ping_handler(&mut self, h: impl FnMut(&[u8]) + Send + 'static) {
        self.on_ping = Some(Box::new(h));
    }

    /// Called with each pong's payload.
    pub fn set_pong_handler(&mut self, h: impl FnMut(&[u8]) + Send + 'static) {
        self.on_pong = Some(Box::new(h));
    }

    /// Called with the peer's close code (1005 if none) and reason.
    pub fn set_close_handler(&mut self, h: impl FnMut(CloseCode, &str) + Send + 'static) {
        self.on_close = Some(Box::new(h));
    }

    fn close(&mut self, frame: &CloseFrame<'_>) {
        if let Some(h) = &mut self.on_close {
            h(frame.code_or_no_status(), frame.reason);
        }
    }
}

impl std::fmt::Debug for Handlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handlers")
            .field("ping", &self.on_ping.is_some())
            .field("pong", &self.on_pong.is_some())
            .field("close", &self.on_close.is_some())
            .finish()
    }
}

/// What the read side owes the peer. The write side sends it unless our close went out first
/// ([`Writer::reply`](super::write::Writer::reply)).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reply<'a> {
    /// RFC 6455 §5.5.2: a ping is answered with a pong carrying its payload.
    Pong(&'a [u8]),
    /// RFC 6455 §5.5.1: a close is answered with a close echoing its status code.
    Echo(Option<CloseCode>),
    /// RFC 6455 §7.1.7: a violation fails the connection with this code and reason.
    Fail(CloseCode, &'a str),
}

/// The read state of one connection.
#[derive(Debug)]
pub(crate) struct Reader {
    dec: Decoder,
    /// The peer's close arrived, or the connection failed: nothing more is read.
    closed: bool,
    pub(crate) handlers: Handlers,
}

impl Reader {
    pub(crate) fn new(config: &Config) -> Self {
        Self { dec: Decoder::new(config), closed: false, handlers: Handlers::default() }
    }

    pub(crate) fn set_deflate(&mut self, config: Option<&DeflateConfig>) {
        self.dec.set_deflate(config);
    }

    pub(crate) fn set_reserved_bits(&mut self, rsv: u8) {
        self.dec.set_reserved_bits(rsv);
    }

    /// Where the next input bytes go (see [`Decoder::read_buf`]); follow with `advance`.
    #[inline]
    pub(crate) fn read_buf(&mut self) -> &mut [u8] {
        self.dec.read_buf()
    }

    /// See [`Decoder::swap_input`].
    pub(crate) fn swap_input(&mut self, spare: &mut Vec<u8>, park: bool) {
        self.dec.swap_input(spare, park);
    }

    #[inline]
    pub(crate) fn advance(&mut self, n: usize) {
        self.dec.advance(n);
    }

    /// Copies what fits of `data` in; returns how much. Poll until `None` before the rest.
    pub(crate) fn feed(&mut self, data: &[u8]) -> usize {
        self.dec.feed(data)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// Stops reading (the connection failed locally, or was closed without a handshake).
    pub(crate) fn stop(&mut self) {
        self.closed = true;
    }

    /// The end of the stream. Before the peer's close it is an abnormal closure (1006).
    pub(crate) fn eof(&mut self) -> Result<()> {
        if std::mem::replace(&mut self.closed, true) { Ok(()) } else { Err(Error::AbnormalClosure) }
    }

    /// Decodes the next output from the bytes put in so far; `Ok(None)` means more are needed.
    /// In message mode (`frames: false`) handlers run and answers go to `reply`; in frame mode
    /// nothing is answered. A violation sends its close through `reply` and returns the error;
    /// after that, and after the peer's close, every call returns [`Error::WebSocketClosed`].
    #[inline]
    pub(crate) fn poll(
        &mut self,
        frames: bool,
        reply: &mut impl FnMut(Reply<'_>) -> Result<()>,
    ) -> Result<Option<Output>> {
        if self.closed {
            return Err(Error::WebSocketClosed);
        }
        let out = match self.dec.step(frames) {
            Ok(Some(out)) => out,
            Ok(None) => return Ok(None),
            Err(e) => return Err(self.fail(e, reply)),
        };
        match out {
            Output::Data { .. } => {}
            Output::Close { code, start, end } => {
                self.closed = true;
                if !frames {
                    let frame = self.dec.close_frame(code, start, end);
                    self.handlers.close(&frame);
                    reply(Reply::Echo(frame.code))?;
                }
            }
            Output::Control { op, start, end } if !frames => {
                let payload = self.dec.control_payload(start, end);
                let (handler, answer) = match op {
                    OpCode::Ping => (&mut self.handlers.on_ping, Some(Reply::Pong(payload))),
                    _ => (&mut self.handlers.on_pong, None),
                };
                if let Some(h) = handler {
                    h(payload);
                }
                if let Some(answer) = answer {
                    reply(answer)?;
                }
            }
            Output::Control { .. } => {}
        }
        Ok(Some(out))
    }

    /// Fails the connection on `e`: stops reading and sends its close (if it has a code).
    fn fail(&mut self, e: Error, reply: &mut impl FnMut(Reply<'_>) -> Result<()>) -> Error {
        self.closed = true;
        if let Some(code) = e.close_code() {
            // The error is what the caller needs; a failed close write adds nothing to it.
            let _ = reply(Reply::Fail(code, truncate_reason(&e.to_string())));
        }
        e
    }

    /// Parses the next frame header without consuming it; `Ok(None)` until it is whole.
    pub(crate) fn peek_header(&mut self, reply: &mut impl FnMut(Reply<'_>) -> Result<()>) -> Result<Option<Header>> {
        if self.closed {
            return Err(Error::WebSocketClosed);
        }
        if self.dec.in_payload() {
            // Mid-payload (after an interrupted read): there is no header to peek.
            return Err(Error::Misuse(Misuse::MidFrame));
        }
        self.dec.peek_header().map_err(|e| self.fail(e, reply))
    }

    /// Shapes an output of a message-mode poll.
    #[inline(always)]
    pub(crate) fn event(&self, out: Output) -> Event<'_> {
        self.dec.event(out)
    }

    /// Shapes an output of a frame-mode poll.
    pub(crate) fn frame(&self, out: Output) -> Frame<'_> {
        self.dec.frame(out)
    }

    /// Moves a message assembled in the decoder into `buf` without a copy, if `out` is one.
    pub(crate) fn swap_message(&mut self, out: &Output, buf: &mut Vec<u8>) -> bool {
        self.dec.swap_message(out, buf)
    }
}
