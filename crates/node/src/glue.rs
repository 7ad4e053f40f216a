//! The one connection object both faces wrap: a core [`Session`] plus the handshake that
//! precedes it. Everything here converts and moves bytes; every protocol decision is a call
//! into `lowbit_websockets` (handshake parsing and checks, accept keys, deflate negotiation,
//! framing, masking, UTF-8, close codes, limits).

use lowbit_websockets::deflate::Engine;
use lowbit_websockets::handshake::{ClientOptions, HandshakeError, Step};
use lowbit_websockets::upgrade::{self, AcceptOptions, ClientUpgrade, ConnectOptions, SubprotocolPolicy};
use lowbit_websockets::{CloseCode, Config, DeflateOptions, Error, Event, OpCode, Role, Session};

/// Default `maxPayload`, as in `ws`: 100 MiB.
pub const DEFAULT_MAX_PAYLOAD: usize = 100 * 1024 * 1024;
/// Default largest frame written: 64 KiB (longer messages are fragmented by core).
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024;

/// permessage-deflate settings, named as `ws` names them (`perMessageDeflate: {...}`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DeflateSettings {
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
    /// Client: ask the server for at most this window.
    pub server_max_window_bits: Option<u8>,
    /// zlib level 0–9 (`zlibDeflateOptions.level`); `None`: core's default (1).
    pub level: Option<u8>,
    /// Messages shorter than this go uncompressed (`threshold`, default 1024).
    pub threshold: Option<usize>,
}

impl DeflateSettings {
    /// Core's options for these settings, with the zlib-rs engine.
    pub fn options(&self) -> DeflateOptions {
        let defaults = DeflateOptions::default();
        DeflateOptions {
            server_no_context_takeover: self.server_no_context_takeover,
            client_no_context_takeover: self.client_no_context_takeover,
            server_max_window_bits: self.server_max_window_bits,
            level: self.level.map_or(defaults.level, |l| l.min(9)),
            threshold: self.threshold.unwrap_or(defaults.threshold),
            engine: Engine::ZlibRs,
        }
    }
}

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
    /// The core error variant (`UnmaskedFrame`, `MessageTooBig`, ...), for tests and logs.
    pub kind: String,
}

impl Failure {
    fn misuse(message: impl Into<String>) -> Self {
        Self { code: None, message: message.into(), kind: "Misuse".into() }
    }
}

/// The variant name of an error's `Debug` form (`MessageTooBig { limit: 1 }` → `MessageTooBig`).
fn variant(debug: &str) -> String {
    debug.split(|c: char| !c.is_ascii_alphanumeric()).next().unwrap_or("").to_owned()
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Self { code: e.close_code().map(|c| c.0), message: e.to_string(), kind: variant(&format!("{e:?}")) }
    }
}

impl From<HandshakeError> for Failure {
    fn from(e: HandshakeError) -> Self {
        Self { code: e.status(), message: e.to_string(), kind: variant(&format!("{e:?}")) }
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

/// One WebSocket connection, before and after its handshake.
pub struct Conn {
    config: Config,
    session: Option<Session>,
    /// The client's request, kept to check the answer against.
    offer: Option<ClientUpgrade>,
    /// Handshake bytes (request or response) while the session is not live.
    handshake_out: Vec<u8>,
}

impl Conn {
    pub fn new(role: Role, max_payload: usize, max_frame: usize) -> Self {
        let config = Config::new(role).max_read_limit(max_payload).max_chunk_size(max_frame);
        Self { config, session: None, offer: None, handshake_out: Vec::new() }
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
        deflate: Option<&DeflateSettings>,
    ) -> Result<Handshake, Failure> {
        let opts = AcceptOptions { config: self.config, deflate: deflate.map(DeflateSettings::options), protocols };
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
        deflate: Option<&DeflateSettings>,
    ) -> Result<(), Failure> {
        let opts = ConnectOptions {
            config: self.config,
            request: ClientOptions { protocols, ..ClientOptions::new(host).path(path) },
            deflate: deflate.map(DeflateSettings::options),
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
        self.session.as_mut().ok_or_else(|| Failure::misuse("the handshake has not completed"))
    }

    /// Decodes `data`, calling `on_event` per event.
    pub fn receive(&mut self, data: &[u8], on_event: impl FnMut(Event<'_>)) -> Result<(), Failure> {
        Ok(self.session()?.receive(data, on_event)?)
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
        } else if let Some(s) = &mut self.session {
            s.consume_output(n);
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

    /// The close state both faces report: bit 0 our close frame is queued, bit 1 the peer's
    /// close arrived or the connection failed (3: the close handshake is complete).
    pub fn state_bits(&self) -> u32 {
        u32::from(self.close_sent()) | (u32::from(self.is_closed()) << 1)
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

/// Parses an opcode number from the faces (1 text, 2 binary).
pub fn data_op(op: u32) -> Result<OpCode, Failure> {
    match op {
        1 => Ok(OpCode::Text),
        2 => Ok(OpCode::Binary),
        other => Err(Failure::misuse(format!("not a data opcode: {other}"))),
    }
}

/// An event as the faces hand it to JavaScript: the opcode it came in (1 text, 2 binary,
/// 8 close, 9 ping, 10 pong), the close code (0 for the others), and the payload (the close
/// reason for a close).
pub fn event_parts(event: Event<'_>) -> (u8, u16, &[u8]) {
    match event {
        Event::Message { op, payload, .. } => (op as u8, 0, payload),
        Event::Ping(p) => (9, 0, p),
        Event::Pong(p) => (10, 0, p),
        Event::Close { frame, .. } => (8, frame.code_or_no_status().0, frame.reason.as_bytes()),
    }
}
