//! A whole connection as a sans-IO state machine, for faces that own their socket (Node's
//! `net.Socket`, Deno's streams, a C caller): bytes in → events, and every byte to send
//! (answers included) gathered in one output buffer.
//!
//! It runs the very same read loop and write state as [`Conn`](crate::Conn): pings are
//! answered, a peer's close is echoed, a protocol violation queues the right close frame and
//! returns the error. Call order:
//!
//! 1. [`Session::receive`] with each chunk read from the socket; it calls back once per event.
//! 2. Send what [`Session::output`] holds, then [`Session::consume_output`] (after `receive`
//!    and after every `send_*`: answers to pings and closes are queued there too).
//! 3. On end of stream, [`Session::receive_eof`].

use std::io;

use crate::close::CloseCode;
use crate::conn::read::{Got, Link, OwedClose, ReadState};
use crate::conn::write::WriteState;
use crate::deflate::{Compressor, DeflateConfig};
use crate::error::{Error, Result};
use crate::frame::OpCode;
use crate::role::Config;

/// What [`Session::receive`] hands to its callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEvent<'a> {
    /// A whole text (UTF-8 checked) or binary message.
    Message {
        /// [`OpCode::Text`] or [`OpCode::Binary`].
        op: OpCode,
        /// The payload, inflated if it was compressed.
        payload: &'a [u8],
    },
    /// A ping; its pong is already queued in the output.
    Ping(&'a [u8]),
    /// A pong.
    Pong(&'a [u8]),
    /// The peer's close (code 1005 if it had none); our answer is already queued. Nothing is
    /// read after it.
    Close {
        /// The peer's code, or 1005.
        code: CloseCode,
        /// The peer's reason.
        reason: &'a str,
    },
}

/// A sans-IO WebSocket connection. See the [module docs](self) for the call order.
pub struct Session {
    reader: ReadState,
    writer: WriteState,
    out: Vec<u8>,
    msg: Vec<u8>,
}

/// The link of a session: reads come from the chunk being received, writes go to the output.
struct Chunk<'a> {
    input: &'a [u8],
    writer: &'a mut WriteState,
    out: &'a mut Vec<u8>,
}

impl Link for Chunk<'_> {
    type W = Vec<u8>;
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            // Not an end of stream: this chunk is used up, the decoder keeps its state.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.input.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
    fn with_writer<R>(&mut self, f: impl FnOnce(&mut WriteState, &mut Vec<u8>) -> R) -> R {
        f(self.writer, self.out)
    }
}

impl Session {
    /// A session for `config.role`, with permessage-deflate as negotiated (`None`: off).
    pub fn new(config: Config, deflate: Option<&DeflateConfig>) -> Self {
        Self::with_compressor(config, deflate, None)
    }

    /// [`Session::new`] with a compressor of your own.
    pub fn with_compressor(
        config: Config,
        deflate: Option<&DeflateConfig>,
        compressor: Option<Box<dyn Compressor>>,
    ) -> Self {
        let mut reader = ReadState::new(&config, &[]);
        reader.set_deflate(deflate);
        let mut writer = WriteState::new(&config);
        writer.set_deflate(deflate, compressor);
        Self { reader, writer, out: Vec::new(), msg: Vec::new() }
    }

    /// Decodes `data` (any amount, any split), calling `on_event` for each event completed.
    /// On a protocol violation the close frame is queued in the output and the error returned;
    /// after that, and after the peer's close, every call returns [`Error::WebSocketClosed`].
    pub fn receive(&mut self, data: &[u8], mut on_event: impl FnMut(SessionEvent<'_>)) -> Result<()> {
        let mut link = Chunk { input: data, writer: &mut self.writer, out: &mut self.out };
        loop {
            let got = match self.reader.read_event(&mut link, &mut self.msg) {
                Ok(got) => got,
                Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            };
            let payload = &self.msg[..];
            on_event(match got {
                Got::Data { op, .. } => SessionEvent::Message { op, payload },
                Got::Ping => SessionEvent::Ping(payload),
                Got::Pong => SessionEvent::Pong(payload),
                Got::Close => {
                    let frame = crate::close::CloseFrame::parse(payload)
                        .unwrap_or(crate::close::CloseFrame { code: None, reason: "" });
                    SessionEvent::Close { code: frame.code_or_no_status(), reason: frame.reason }
                }
            });
            if got.op() == OpCode::Close {
                return Ok(());
            }
        }
    }

    /// The peer ended the stream. Before its close frame that is an abnormal closure (1006).
    pub fn receive_eof(&mut self) -> Result<()> {
        if self.reader.closed {
            return Ok(());
        }
        self.reader.closed = true;
        Err(Error::AbnormalClosure)
    }

    /// Queues a whole message, compressed if deflate is on and it reaches the threshold.
    pub fn send_message(&mut self, op: OpCode, payload: &[u8]) -> Result<()> {
        self.writer.write_message(&mut self.out, op, payload)
    }

    /// Queues one frame, uncompressed (`is_final: false` starts or continues a fragmented
    /// message; continue it with [`OpCode::Continuation`]).
    pub fn send_frame(&mut self, is_final: bool, op: OpCode, payload: &[u8]) -> Result<()> {
        self.writer.write_frame(&mut self.out, is_final, 0, op, payload)
    }

    /// Queues a ping (at most 125 bytes).
    pub fn ping(&mut self, payload: &[u8]) -> Result<()> {
        self.send_frame(true, OpCode::Ping, payload)
    }

    /// Queues a pong (at most 125 bytes).
    pub fn pong(&mut self, payload: &[u8]) -> Result<()> {
        self.send_frame(true, OpCode::Pong, payload)
    }

    /// Queues our close frame. Keep receiving until the peer's close arrives (or time out).
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        self.writer.write_close(&mut self.out, code, reason)
    }

    /// Fails the connection with `code` without waiting for the peer: queues the close frame
    /// (if ours has not gone out) and stops reading.
    pub fn fail(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        self.reader.closed = true;
        if self.writer.close_sent { Ok(()) } else { self.close(code, reason) }
    }

    /// With `on`, the close frames [`Session::receive`] would queue (the answer to the peer's
    /// close, and the close a protocol violation sends) are held until
    /// [`Session::reply_close`]. A face that hands a whole chunk's events to the application
    /// at once then lets it answer the messages that arrived before the close or the bad frame
    /// (RFC 6455 §5.5.1 allows finishing the current message first). Reading still stops at
    /// once. Off by default.
    pub fn defer_close_reply(&mut self, on: bool) {
        self.reader.defer_close_reply = on;
    }

    /// Queues the held close frame (see [`Session::defer_close_reply`]), unless our own close
    /// has gone out already. Does nothing when none is held.
    pub fn reply_close(&mut self) -> Result<()> {
        match self.reader.owed_close.take() {
            Some(_) if self.writer.close_sent => Ok(()),
            Some(OwedClose::Echo(code, n)) => self.writer.echo_close(&mut self.out, &code[..n]),
            Some(OwedClose::Fail(code, reason)) => self.writer.write_close(&mut self.out, code, &reason),
            None => Ok(()),
        }
    }

    /// Bytes waiting to be sent.
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// Marks the first `n` output bytes as sent.
    pub fn consume_output(&mut self, n: usize) {
        self.out.drain(..n.min(self.out.len()));
    }

    /// Takes all waiting output, leaving an empty buffer (keeps no capacity: prefer
    /// [`Session::output`] + [`Session::consume_output`] on a hot path).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Our close frame has been queued.
    pub fn close_sent(&self) -> bool {
        self.writer.close_sent
    }

    /// The peer's close arrived or the connection failed: nothing more is read.
    pub fn is_closed(&self) -> bool {
        self.reader.closed
    }

    /// The close handshake is complete in both directions: the transport may be closed.
    pub fn is_finished(&self) -> bool {
        self.reader.closed && self.writer.close_sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::role::Role;

    fn events(s: &mut Session, data: &[u8]) -> Vec<String> {
        let mut seen = Vec::new();
        s.receive(data, |e| seen.push(format!("{e:?}"))).unwrap();
        seen
    }

    #[test]
    fn client_and_server_sessions_talk_and_close() {
        let mut client = Session::new(Config::new(Role::Client), None);
        let mut server = Session::new(Config::new(Role::Server), None);
        client.send_message(OpCode::Text, b"hello").unwrap();
        client.ping(b"p").unwrap();
        let wire = client.take_output();
        // Split the wire bytes anywhere: events come out the same.
        let (a, b) = wire.split_at(3);
        let mut got = events(&mut server, a);
        got.extend(events(&mut server, b));
        assert_eq!(got, ["Message { op: Text, payload: [104, 101, 108, 108, 111] }", "Ping([112])"]);
        let pong = server.take_output();
        assert_eq!(events(&mut client, &pong), ["Pong([112])"]);

        client.close(CloseCode(4000), "bye").unwrap();
        let close = client.take_output();
        assert_eq!(events(&mut server, &close), [r#"Close { code: CloseCode(4000), reason: "bye" }"#]);
        assert!(server.is_finished());
        let echo = server.take_output();
        assert_eq!(events(&mut client, &echo), [r#"Close { code: CloseCode(4000), reason: "" }"#]);
        assert!(client.is_finished());
        assert!(matches!(client.send_message(OpCode::Text, b"late"), Err(Error::WebSocketClosed)));
    }

    #[test]
    fn deferred_close_reply_lets_answers_go_first() {
        let mut client = Session::new(Config::new(Role::Client), None);
        let mut server = Session::new(Config::new(Role::Server), None);
        server.defer_close_reply(true);
        client.send_message(OpCode::Text, b"last").unwrap();
        client.close(CloseCode(1000), "").unwrap();
        let got = events(&mut server, &client.take_output());
        assert_eq!(got.len(), 2);
        assert!(server.output().is_empty(), "the close answer is held");
        assert!(!server.is_finished());
        server.send_message(OpCode::Text, b"last").unwrap();
        server.reply_close().unwrap();
        assert!(server.is_finished());
        let back = events(&mut client, &server.take_output());
        assert_eq!(
            back,
            ["Message { op: Text, payload: [108, 97, 115, 116] }", "Close { code: CloseCode(1000), reason: \"\" }"]
        );
        server.reply_close().unwrap(); // nothing owed any more

        // A violation's close is held the same way, after the message before it.
        let mut server = Session::new(Config::new(Role::Server), None);
        server.defer_close_reply(true);
        let mut client = Session::new(Config::new(Role::Client), None);
        client.send_message(OpCode::Text, b"ok").unwrap();
        let mut wire = client.take_output();
        wire.extend_from_slice(b"\x81\x02hi"); // unmasked
        let mut seen = 0;
        let err = server.receive(&wire, |_| seen += 1).unwrap_err();
        assert_eq!((seen, err.close_code()), (1, Some(CloseCode::PROTOCOL_ERROR)));
        assert!(server.output().is_empty());
        server.send_message(OpCode::Text, b"ok").unwrap();
        server.reply_close().unwrap();
        let back = events(&mut client, &server.take_output());
        assert_eq!(back[0], "Message { op: Text, payload: [111, 107] }");
        assert!(back[1].starts_with("Close { code: CloseCode(1002)"), "{back:?}");
    }

    #[test]
    fn violation_queues_the_close_frame() {
        let mut server = Session::new(Config::new(Role::Server), None);
        // An unmasked text frame: servers require masking.
        let err = server.receive(b"\x81\x02hi", |_| panic!("no event")).unwrap_err();
        assert!(matches!(err, Error::UnmaskedFrame));
        let out = server.output();
        assert_eq!((out[0], &out[2..4]), (0x88, &b"\x03\xea"[..]), "close 1002");
        assert_eq!(&out[4..], Error::UnmaskedFrame.to_string().as_bytes(), "the reason says why");
        assert!(matches!(server.receive(b"", |_| {}), Err(Error::WebSocketClosed)));
        assert!(matches!(server.receive_eof(), Ok(())));
    }
}
