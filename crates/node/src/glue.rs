//! The one connection object both faces wrap: a core [`Session`] plus the handshake that
//! precedes it. Everything here converts and moves bytes; every protocol decision is a call
//! into `lowbit_websockets` (handshake parsing and checks, accept keys, deflate negotiation,
//! framing, masking, UTF-8, close codes, limits).

use lowbit_websockets::handshake::{ClientOptions, HandshakeError, Step};
use lowbit_websockets::upgrade::{self, AcceptOptions, ClientUpgrade, ConnectOptions, SubprotocolPolicy};
use lowbit_websockets::{CloseCode, Config, DeflateOptions, Error, Event, OpCode, Role, Session, Spare};

use crate::contract::{EVENT_BINARY, EVENT_TEXT, STATE_CLOSE_RECEIVED, STATE_CLOSE_SENT};

/// Default `maxPayload`, as in `ws`: 100 MiB.
pub const DEFAULT_MAX_PAYLOAD: usize = 100 * 1024 * 1024;
/// Default largest frame written: 64 KiB (longer messages are fragmented by core).
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024;

/// The outcome of feeding handshake bytes.
#[derive(Debug)]
pub enum Handshake {
    /// Not a whole head yet: call again with more bytes appended.
    Incomplete,
    /// Done: the session is live; bytes past `used` are the peer's first frames.
    Done { used: usize, protocol: Option<String>, extensions: Option<String>, path: Option<String> },
}

/// A failure: the close code to report (`None`: nothing was sent, e.g. misuse or a closed
/// connection) and core's message.
#[derive(Debug)]
pub struct Failure {
    pub code: Option<u16>,
    pub message: String,
    /// The core error kind ([`Error::kind`]: `UnmaskedFrame`, `MessageTooBig`, ...), for
    /// callers, tests and logs.
    pub kind: &'static str,
}

impl Failure {
    pub(crate) fn misuse(message: impl Into<String>) -> Self {
        Self { code: None, message: message.into(), kind: "Misuse" }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Self { code: e.close_code().map(|c| c.0), message: e.to_string(), kind: e.kind() }
    }
}

impl From<HandshakeError> for Failure {
    /// The status is the HTTP status of the rejection, the kind the handshake error's
    /// variant ([`HandshakeError::kind`]).
    fn from(e: HandshakeError) -> Self {
        let (status, kind) = (e.status(), e.kind());
        Self { code: status, message: Error::Handshake(e).to_string(), kind }
    }
}

/// A client upgrade error as the faces report it: a handshake error by its own variant and
/// status, as before the upgrade moved into core.
fn upgrade_failure(e: Error) -> Failure {
    match e {
        Error::Handshake(e) => e.into(),
        other => other.into(),
    }
}

thread_local! {
    /// The input and output buffers of this thread's idle sessions: JavaScript hands a
    /// session its bytes in whole calls and takes the output before the call returns, so one
    /// set serves every connection between calls ([`Session::park`]).
    static SPARE: std::cell::RefCell<Spare> = std::cell::RefCell::default();
}

/// One WebSocket connection, before and after its handshake.
pub struct Conn {
    config: Config,
    session: Option<Session>,
    /// The client's request, kept to check the answer against.
    offer: Option<ClientUpgrade>,
    /// Handshake bytes (request or response) while the session is not live.
    handshake_out: Vec<u8>,
    /// [`Conn::release`] freed everything: the connection is over.
    released: bool,
}

impl Conn {
    pub fn new(role: Role, max_payload: usize, max_frame: usize) -> Self {
        let config = Config::new(role).max_read_limit(max_payload).max_chunk_size(max_frame);
        Self { config, session: None, offer: None, handshake_out: Vec::new(), released: false }
    }

    /// Sets core's fragment cap (`ws`'s `maxFragments`: 0 turns it off, as there); takes
    /// effect for a session started afterwards.
    pub fn set_max_fragments(&mut self, frames: usize) {
        self.config.max_fragments = if frames == 0 { usize::MAX } else { frames };
    }

    /// A live session without a handshake (for `Codec`).
    pub fn start(&mut self, deflate: Option<&lowbit_websockets::DeflateConfig>) {
        self.session = Some(self.live(deflate));
    }

    /// The session after a handshake. The answer to the peer's close waits for
    /// [`Conn::reply_close`]: the faces hand a chunk's events to the application at once, and
    /// its replies to the messages before the close must go out before the close.
    fn live(&self, deflate: Option<&lowbit_websockets::DeflateConfig>) -> Session {
        let mut session = Session::new(self.config, deflate);
        session.defer_close_reply(true);
        session
    }

    pub fn role(&self) -> Role {
        self.config.role
    }

    /// Server: core's upgrade step on the request in `head`, with the subprotocol picked by
    /// `protocols` (each face passes one of core's named policies). On success the 101 response
    /// is queued and the session is live; on a bad request the rejection is queued and the
    /// error returned.
    pub fn accept(
        &mut self,
        head: &[u8],
        protocols: SubprotocolPolicy,
        deflate: Option<&DeflateOptions>,
    ) -> Result<Handshake, Failure> {
        let opts = AcceptOptions { config: self.config, deflate: deflate.copied(), protocols, ..AcceptOptions::default() };
        match upgrade::server_step(head, &opts, |_| None) {
            Step::NeedMore => Ok(Handshake::Incomplete),
            Step::Refused { response, error } => {
                self.handshake_out.extend_from_slice(&response);
                Err(error.into())
            }
            Step::Done { response, used, result } => {
                self.handshake_out.extend_from_slice(&response);
                self.session = Some(self.live(result.deflate.as_ref()));
                let (protocol, extensions, path) = (result.protocol, result.extensions, Some(result.path));
                Ok(Handshake::Done { used, protocol, extensions, path })
            }
        }
    }

    /// The subprotocols a request offers (for `handleProtocols`), checked by core.
    pub fn offered_protocols(head: &[u8]) -> Result<Option<Vec<String>>, Failure> {
        Ok(upgrade::offered_protocols(head)?)
    }

    /// Client: queues the upgrade request (core builds it, with a fresh random key).
    pub fn client_request(
        &mut self,
        host: &str,
        path: &str,
        protocols: Vec<String>,
        deflate: Option<&DeflateOptions>,
    ) -> Result<(), Failure> {
        let opts = ConnectOptions {
            config: self.config,
            request: ClientOptions { protocols, ..ClientOptions::new(host).path(path) },
            deflate: deflate.copied(),
        };
        self.offer = Some(ClientUpgrade::new(&opts, &mut self.handshake_out).map_err(upgrade_failure)?);
        Ok(())
    }

    /// Client: core's upgrade step on the server's answer (status, accept key, protocol and
    /// extension offered, deflate parameters); starts the session when it is done.
    pub fn client_response(&mut self, head: &[u8]) -> Result<Handshake, Failure> {
        let Some(offer) = &self.offer else {
            return Err(Failure::misuse("no request was sent"));
        };
        match offer.step(head) {
            Step::NeedMore => Ok(Handshake::Incomplete),
            Step::Refused { error, .. } => Err(upgrade_failure(error)),
            Step::Done { used, result, .. } => {
                self.session = Some(self.live(result.deflate.as_ref()));
                self.offer = None;
                Ok(Handshake::Done { used, protocol: result.protocol, extensions: result.extensions, path: None })
            }
        }
    }

    fn session(&mut self) -> Result<&mut Session, Failure> {
        if self.released {
            return Err(Error::WebSocketClosed.into());
        }
        let session = self.session.as_mut().ok_or_else(|| Failure::misuse("the handshake has not completed"))?;
        SPARE.with(|spare| session.unpark(&mut spare.borrow_mut()));
        Ok(session)
    }

    /// Hands the session's buffers back to the thread while they hold nothing.
    fn park(&mut self) {
        if let Some(session) = &mut self.session {
            SPARE.with(|spare| session.park(&mut spare.borrow_mut()));
        }
    }

    /// The transport is gone: frees the session and every buffer now, rather than whenever the
    /// runtime collects the object holding this. Every later call fails with
    /// [`Error::WebSocketClosed`], and the state reads as finished.
    pub fn release(&mut self) {
        self.session = None;
        self.offer = None;
        self.handshake_out = Vec::new();
        self.released = true;
    }

    /// Decodes `data`, calling `on_event` per event.
    pub fn receive(&mut self, data: &[u8], on_event: impl FnMut(Event<'_>)) -> Result<(), Failure> {
        let result = self.session()?.receive(data, on_event);
        self.park();
        Ok(result?)
    }

    /// The peer ended the stream: `Err` (1006) before its close frame.
    pub fn receive_eof(&mut self) -> Result<(), Failure> {
        Ok(self.session()?.receive_eof()?)
    }

    /// Queues a data message or a part of one, as `ws`'s `send` does (see
    /// [`Session::send_part`]).
    pub fn send(&mut self, op: OpCode, payload: &[u8], compress: bool, fin: bool) -> Result<(), Failure> {
        Ok(self.session()?.send_part(op, payload, fin, compress)?)
    }

    /// Queues the answer to the peer's close, once the events before it were handled.
    pub fn reply_close(&mut self) -> Result<(), Failure> {
        Ok(self.session()?.reply_close()?)
    }

    pub fn ping(&mut self, payload: &[u8]) -> Result<(), Failure> {
        Ok(self.session()?.ping(payload)?)
    }

    pub fn pong(&mut self, payload: &[u8]) -> Result<(), Failure> {
        Ok(self.session()?.pong(payload)?)
    }

    pub fn close(&mut self, code: u16, reason: &str) -> Result<(), Failure> {
        Ok(self.session()?.close(CloseCode(code), reason)?)
    }

    /// Queues a close frame without a status code.
    pub fn close_without_status(&mut self) -> Result<(), Failure> {
        Ok(self.session()?.close_without_status()?)
    }

    pub fn fail(&mut self, code: u16, reason: &str) -> Result<(), Failure> {
        Ok(self.session()?.fail(CloseCode(code), reason)?)
    }

    /// Bytes to write: handshake bytes first, then the session's.
    pub fn output(&self) -> &[u8] {
        if !self.handshake_out.is_empty() {
            return &self.handshake_out;
        }
        self.session.as_ref().map_or(&[], Session::output)
    }

    pub fn consume_output(&mut self, n: usize) {
        if !self.handshake_out.is_empty() {
            self.handshake_out.drain(..n.min(self.handshake_out.len()));
            if self.handshake_out.is_empty() {
                // Handshake bytes are written once: keep no capacity for them.
                self.handshake_out = Vec::new();
            }
        } else if let Some(s) = &mut self.session {
            s.consume_output(n);
            self.park();
        }
    }

    /// All waiting bytes, moved out (for large outputs: no copy).
    pub fn take_output(&mut self) -> Vec<u8> {
        if !self.handshake_out.is_empty() {
            return std::mem::take(&mut self.handshake_out);
        }
        self.session.as_mut().map(Session::take_output).unwrap_or_default()
    }

    pub fn is_open(&self) -> bool {
        self.session.is_some()
    }

    pub fn close_sent(&self) -> bool {
        self.session.as_ref().is_some_and(Session::close_sent)
    }

    pub fn is_closed(&self) -> bool {
        self.session.as_ref().is_some_and(Session::is_closed)
    }

    pub fn is_finished(&self) -> bool {
        self.session.as_ref().is_some_and(Session::is_finished)
    }

    /// The close state both faces report: [`STATE_CLOSE_SENT`] and [`STATE_CLOSE_RECEIVED`]
    /// (both: [`STATE_FINISHED`](crate::contract::STATE_FINISHED)).
    pub fn state_bits(&self) -> u32 {
        if self.released {
            return STATE_CLOSE_SENT | STATE_CLOSE_RECEIVED;
        }
        let sent = if self.close_sent() { STATE_CLOSE_SENT } else { 0 };
        let received = if self.is_closed() { STATE_CLOSE_RECEIVED } else { 0 };
        sent | received
    }
}

/// The close code core sends for `bytes` arriving at a fresh server (or client) session, with
/// deflate on or off: the oracle for the conformance tests. `None`: no error.
pub fn close_code_for(role: Role, deflate: bool, max_payload: usize, bytes: &[u8]) -> Option<u16> {
    let mut conn = Conn::new(role, max_payload, DEFAULT_MAX_FRAME);
    conn.start(deflate.then(lowbit_websockets::DeflateConfig::default).as_ref());
    match conn.receive(bytes, |_| {}) {
        Ok(()) => None,
        Err(f) => f.code,
    }
}

/// The opcode of a send from the faces ([`EVENT_TEXT`] or [`EVENT_BINARY`]).
pub fn data_op(op: u32) -> Result<OpCode, Failure> {
    match op {
        EVENT_TEXT => Ok(OpCode::Text),
        EVENT_BINARY => Ok(OpCode::Binary),
        other => Err(Failure::misuse(format!("not a data opcode: {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::STATE_FINISHED;

    #[test]
    fn a_released_connection_is_finished_and_refuses_everything() {
        let mut conn = Conn::new(Role::Server, DEFAULT_MAX_PAYLOAD, DEFAULT_MAX_FRAME);
        conn.start(None);
        conn.send(OpCode::Text, b"queued", true, true).unwrap();
        conn.release();
        assert_eq!(conn.state_bits(), STATE_FINISHED);
        assert!(conn.output().is_empty(), "nothing is left to write");
        let refused = conn.send(OpCode::Text, b"late", true, true).unwrap_err();
        assert_eq!(refused.kind, "WebSocketClosed");
        assert_eq!(conn.receive(b"\x81\x80\0\0\0\0", |_| {}).unwrap_err().kind, "WebSocketClosed");
    }
}
