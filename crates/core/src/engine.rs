//! The engine: one WebSocket connection as a sans-IO state machine. Bytes in → events;
//! commands in → bytes out. It owns every rule of a live connection once: framing, masking,
//! fragmentation in and out, control frames and their answers, UTF-8, limits, permessage-deflate
//! and the close handshake. It does no I/O, keeps no clock and spawns nothing: every driver
//! (the blocking [`Conn`](crate::Conn), an event loop, a JavaScript runtime) moves its bytes.
//!
//! # Calling order
//! Methods come in four groups:
//! - **input**: [`Session::read_buf`] + [`Session::advance`] (read from a socket straight into
//!   the engine), or [`Session::receive`] (bytes read elsewhere), and [`Session::receive_eof`];
//! - **events**: [`Session::poll_event`], until it returns `Ok(None)` (more input needed).
//!   [`Session::receive`] polls for you and calls back per event;
//! - **commands** from the application: [`Session::send_message`], [`Session::send_frame`],
//!   [`Session::send_part`], [`Session::ping`], [`Session::pong`], [`Session::close`],
//!   [`Session::fail`];
//! - **output**: [`Session::output`] then [`Session::consume_output`] with what was written.
//!
//! Flush the output after every input and every command: answers to pings and the peer's close
//! are queued there by the engine itself (in the spirit of Python websockets' `data_to_send`).
//! When [`Session::should_close_transport`] turns true, half-close the transport (a server
//! first, RFC 6455 §7.1.1) and drop it once the peer has hung up or a timeout has passed;
//! the engine has no clock, so the timeout is the driver's.
//!
//! ```
//! use lowbit_websockets::{Config, Event, OpCode, Role, Session};
//! let mut client = Session::new(Config::new(Role::Client), None);
//! let mut server = Session::new(Config::new(Role::Server), None);
//! client.send_message(OpCode::Text, b"hi").unwrap();
//! server.receive(client.output(), |event| {
//!     assert!(matches!(event, Event::Message { op: OpCode::Text, payload: b"hi", .. }));
//! }).unwrap();
//! ```

mod read;
mod write;

use crate::close::CloseCode;
use crate::decode::Event;
use crate::deflate::{Compressor, DeflateConfig};
use crate::error::Result;
use crate::frame::OpCode;
use crate::role::Config;
use crate::sizing::Trim;
pub use read::{CloseHandler, ControlHandler, Handlers};
pub(crate) use read::{Reader, Reply};
pub(crate) use write::{Stream, Writer};

/// A close frame held back by [`Session::defer_close_reply`].
#[derive(Debug)]
enum OwedClose {
    /// Echo the peer's status code.
    Echo(Option<CloseCode>),
    /// Fail the connection with this code and reason.
    Fail(CloseCode, String),
}

/// Buffers one thread keeps for the idle sessions it drives: see [`Session::park`].
#[derive(Debug, Default)]
pub struct Spare {
    input: Vec<u8>,
    output: Vec<u8>,
}

/// A sans-IO WebSocket connection. See the [module docs](self) for the calling order.
pub struct Session {
    reader: Reader,
    writer: Writer,
    out: Vec<u8>,
    /// Drained outputs, for giving back output capacity ([`crate::sizing`]).
    out_trim: Trim,
    /// Hold the close frames the read side owes (see [`Session::defer_close_reply`]).
    defer_close_reply: bool,
    owed_close: Option<OwedClose>,
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
        let mut reader = Reader::new(&config);
        reader.set_deflate(deflate);
        let mut writer = Writer::new(&config);
        writer.set_deflate(deflate, compressor);
        Self { reader, writer, out: Vec::new(), out_trim: Trim::default(), defer_close_reply: false, owed_close: None }
    }

    /// Where to read the next bytes from the transport: never empty. Follow it with
    /// [`Session::advance`]. Its length is how many bytes the engine takes now.
    #[inline]
    pub fn read_buf(&mut self) -> &mut [u8] {
        self.reader.read_buf()
    }

    /// Marks `n` bytes of [`Session::read_buf`] as received; then poll for events.
    #[inline]
    pub fn advance(&mut self, n: usize) {
        self.reader.advance(n);
    }

    /// The next event decoded from the input so far, or `Ok(None)` when more is needed. A
    /// ping's pong and the echo of the peer's close are queued in the output as they come out.
    /// On a protocol violation the close frame is queued and the error returned; after that,
    /// and after the peer's close, every call returns [`Error::WebSocketClosed`](crate::Error::WebSocketClosed).
    #[inline]
    pub fn poll_event(&mut self) -> Result<Option<Event<'_>>> {
        let Self { reader, writer, out, defer_close_reply, owed_close, .. } = self;
        let polled = reader.poll(false, &mut |reply| match reply {
            Reply::Echo(code) if *defer_close_reply => {
                *owed_close = Some(OwedClose::Echo(code));
                Ok(())
            }
            Reply::Fail(code, reason) if *defer_close_reply => {
                *owed_close = Some(OwedClose::Fail(code, reason.to_owned()));
                Ok(())
            }
            reply => writer.reply(out, reply),
        })?;
        Ok(polled.map(|out| reader.event(out)))
    }

    /// Decodes `data` (any amount, any split), calling `on_event` for each event completed.
    /// Stops after the peer's close; errors as [`Session::poll_event`].
    pub fn receive(&mut self, mut data: &[u8], mut on_event: impl FnMut(Event<'_>)) -> Result<()> {
        loop {
            while let Some(event) = self.poll_event()? {
                let close = matches!(event, Event::Close { .. });
                on_event(event);
                if close {
                    return Ok(());
                }
            }
            if data.is_empty() {
                return Ok(());
            }
            let n = self.reader.feed(data);
            data = &data[n..];
        }
    }

    /// The peer ended the stream. Before its close frame that is an abnormal closure (1006).
    pub fn receive_eof(&mut self) -> Result<()> {
        self.reader.eof()
    }

    /// Queues a whole message, compressed if deflate is on and it reaches the threshold, and
    /// fragmented at `max_chunk_size`.
    pub fn send_message(&mut self, op: OpCode, payload: &[u8]) -> Result<()> {
        self.writer.write_message(&mut self.out, op, payload)
    }

    /// Queues one frame, uncompressed. `is_final: false` starts or continues a fragmented
    /// message, which goes on with [`OpCode::Continuation`] frames; any other data frame
    /// before the one with FIN is refused with [`Misuse::MessageInProgress`](crate::Misuse).
    /// Control frames may come between fragments.
    pub fn send_frame(&mut self, is_final: bool, op: OpCode, payload: &[u8]) -> Result<()> {
        self.writer.write_frame(&mut self.out, is_final, 0, op, payload)
    }

    /// Queues a part of a message the way `ws`'s `send(data, { fin, compress })` does: `op`
    /// names the message's type, and while a fragmented message is in progress the part goes
    /// out as its continuation. A whole message (`is_final` and none in progress) is
    /// compressed if `compress` and deflate is on; fragments go uncompressed.
    pub fn send_part(&mut self, op: OpCode, payload: &[u8], is_final: bool, compress: bool) -> Result<()> {
        if self.writer.in_message() {
            self.send_frame(is_final, OpCode::Continuation, payload)
        } else if is_final && compress {
            self.send_message(op, payload)
        } else {
            self.send_frame(is_final, op, payload)
        }
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

    /// Queues a close frame with no status code (the peer reports 1005, No Status Received),
    /// as `ws` and browsers send for a `close()` without a code. Keep receiving as after
    /// [`Session::close`].
    pub fn close_without_status(&mut self) -> Result<()> {
        self.writer.close_without_status(&mut self.out)
    }

    /// Fails the connection with `code` without waiting for the peer: queues the close frame
    /// (if ours has not gone out) and stops reading.
    pub fn fail(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        self.reader.stop();
        self.writer.close_once(&mut self.out, code, reason)
    }

    /// With `on`, the close frames the read side owes (the answer to the peer's close, and
    /// the close a protocol violation sends) are held until [`Session::reply_close`]. A face
    /// that hands a whole chunk's events to the application at once then lets it answer the
    /// messages that arrived before the close or the bad frame (RFC 6455 §5.5.1 allows
    /// finishing the current message first). Reading still stops at once. Off by default.
    pub fn defer_close_reply(&mut self, on: bool) {
        self.defer_close_reply = on;
    }

    /// Queues the held close frame (see [`Session::defer_close_reply`]), unless our own close
    /// has gone out already. Does nothing when none is held.
    pub fn reply_close(&mut self) -> Result<()> {
        match self.owed_close.take() {
            Some(OwedClose::Echo(code)) => self.writer.reply(&mut self.out, Reply::Echo(code)),
            Some(OwedClose::Fail(code, reason)) => self.writer.reply(&mut self.out, Reply::Fail(code, &reason)),
            None => Ok(()),
        }
    }

    /// Bytes waiting to be sent.
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// Whether bytes wait to be sent.
    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Marks the first `n` output bytes as sent.
    pub fn consume_output(&mut self, n: usize) {
        if n >= self.out.len() {
            // Keeps the capacity (up to what recent output needed), and moves nothing.
            self.out_trim.clear(&mut self.out);
        } else {
            self.out_trim.see(self.out.len());
            self.out.drain(..n);
        }
    }

    /// Takes all waiting output, leaving an empty buffer (keeps no capacity: prefer
    /// [`Session::output`] + [`Session::consume_output`] on a hot path).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Gives this session's input and output buffers to `spare` while they hold nothing (no
    /// bytes buffered, no output waiting), so that a thread driving many sessions, each handed
    /// its bytes in whole calls (a JavaScript runtime's), keeps one set of buffers instead of
    /// one per idle connection. [`Session::unpark`] takes them back before the next call; a
    /// session called without it allocates its own. Buffers that are in use stay.
    pub fn park(&mut self, spare: &mut Spare) {
        self.reader.swap_input(&mut spare.input, true);
        if self.out.is_empty() && spare.output.capacity() == 0 {
            std::mem::swap(&mut self.out, &mut spare.output);
        }
    }

    /// Takes the buffers [`Session::park`] left in `spare` where this session has none.
    pub fn unpark(&mut self, spare: &mut Spare) {
        self.reader.swap_input(&mut spare.input, false);
        if self.out.capacity() == 0 && spare.output.capacity() != 0 {
            std::mem::swap(&mut self.out, &mut spare.output);
        }
    }

    /// Our close frame has been queued.
    pub fn close_sent(&self) -> bool {
        self.writer.close_sent()
    }

    /// The peer's close arrived or the connection failed: nothing more is read.
    pub fn is_closed(&self) -> bool {
        self.reader.is_closed()
    }

    /// The close handshake is complete in both directions (or the connection failed and its
    /// close frame is queued): nothing more is read or sent.
    pub fn is_finished(&self) -> bool {
        self.reader.is_closed() && self.writer.close_sent()
    }

    /// The connection is finished and all output has been handed over: half-close the
    /// transport now (shut down its write side), then close it when the peer hangs up.
    pub fn should_close_transport(&self) -> bool {
        self.is_finished() && self.out.is_empty()
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("closed", &self.is_closed())
            .field("close_sent", &self.close_sent())
            .field("output", &self.out.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, Misuse};
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
        assert_eq!(got, ["Message { op: Text, rsv: 0, payload: [104, 101, 108, 108, 111] }", "Ping([112])"]);
        let pong = server.take_output();
        assert_eq!(events(&mut client, &pong), ["Pong([112])"]);

        client.close(CloseCode(4000), "bye").unwrap();
        let close = client.take_output();
        assert_eq!(
            events(&mut server, &close),
            [
                r#"Close { frame: CloseFrame { code: Some(CloseCode(4000)), reason: "bye" }, body: [15, 160, 98, 121, 101] }"#
            ]
        );
        assert!(server.is_finished());
        let echo = server.take_output();
        assert_eq!(
            events(&mut client, &echo),
            [r#"Close { frame: CloseFrame { code: Some(CloseCode(4000)), reason: "" }, body: [15, 160] }"#]
        );
        assert!(client.is_finished());
        assert!(matches!(client.send_message(OpCode::Text, b"late"), Err(Error::WebSocketClosed)));
    }

    #[test]
    fn close_without_status_is_an_empty_close_answered_empty() {
        let mut client = Session::new(Config::new(Role::Client), None);
        let mut server = Session::new(Config::new(Role::Server), None);
        client.close_without_status().unwrap();
        assert!(client.close_sent());
        let close = client.take_output();
        assert_eq!(close.len(), 6, "header and mask key, no body");
        assert_eq!(events(&mut server, &close), [r#"Close { frame: CloseFrame { code: None, reason: "" }, body: [] }"#]);
        let echo = server.take_output();
        assert_eq!(echo, [0x88, 0x00]);
        assert!(matches!(client.close_without_status(), Err(Error::WebSocketClosed)));
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
            [
                "Message { op: Text, rsv: 0, payload: [108, 97, 115, 116] }",
                r#"Close { frame: CloseFrame { code: Some(CloseCode(1000)), reason: "" }, body: [3, 232] }"#
            ]
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
        assert_eq!(back[0], "Message { op: Text, rsv: 0, payload: [111, 107] }");
        assert!(back[1].starts_with("Close { frame: CloseFrame { code: Some(CloseCode(1002))"), "{back:?}");
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

    #[test]
    fn a_data_frame_after_fin_false_is_misuse() {
        let mut s = Session::new(Config::new(Role::Server), None);
        s.send_frame(false, OpCode::Text, b"a").unwrap();
        s.ping(b"between fragments").unwrap();
        for refused in [
            s.send_frame(true, OpCode::Binary, b"b"),
            s.send_frame(false, OpCode::Text, b"b"),
            s.send_message(OpCode::Text, b"b"),
        ] {
            assert!(matches!(refused, Err(Error::Misuse(Misuse::MessageInProgress))), "{refused:?}");
        }
        s.send_frame(false, OpCode::Continuation, b"b").unwrap();
        s.send_frame(true, OpCode::Continuation, b"c").unwrap();
        let refused = s.send_frame(true, OpCode::Continuation, b"d");
        assert!(matches!(refused, Err(Error::Misuse(Misuse::NoMessageInProgress))), "{refused:?}");
        // The refusals wrote nothing: the peer sees one whole message around the ping.
        let mut peer = Session::new(Config::new(Role::Client), None);
        let got = events(&mut peer, s.output());
        assert_eq!(
            got,
            [
                "Ping([98, 101, 116, 119, 101, 101, 110, 32, 102, 114, 97, 103, 109, 101, 110, 116, 115])",
                "Message { op: Text, rsv: 0, payload: [97, 98, 99] }"
            ]
        );
    }

    #[test]
    fn send_part_continues_a_message_as_ws_does() {
        let mut s = Session::new(Config::new(Role::Server), None);
        s.send_part(OpCode::Text, b"a", false, true).unwrap();
        s.send_part(OpCode::Binary, b"b", true, true).unwrap(); // the type of a part is ignored
        s.send_part(OpCode::Binary, b"c", true, true).unwrap();
        let mut peer = Session::new(Config::new(Role::Client), None);
        let got = events(&mut peer, s.output());
        assert_eq!(
            got,
            ["Message { op: Text, rsv: 0, payload: [97, 98] }", "Message { op: Binary, rsv: 0, payload: [99] }"]
        );
    }

    #[test]
    fn the_transport_closes_once_the_handshake_is_done_and_flushed() {
        let mut client = Session::new(Config::new(Role::Client), None);
        let mut server = Session::new(Config::new(Role::Server), None);
        client.close(CloseCode::NORMAL_CLOSURE, "").unwrap();
        events(&mut server, &client.take_output());
        assert!(server.is_finished() && !server.should_close_transport(), "the echo is not sent yet");
        let echo = server.output().len();
        server.consume_output(echo);
        assert!(server.should_close_transport());
    }
}
