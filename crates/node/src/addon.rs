//! The Node-API face: one `NativeSession` class per socket. JavaScript reads and writes the
//! socket; each call here moves bytes through core and hands back what to write.
//!
//! Crossings are batched: [`NativeSession::receive`] takes one socket chunk and returns every
//! event it completed plus the bytes to write (pongs, close echoes) in one array.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::glue::{self, Conn, DEFAULT_MAX_FRAME, DEFAULT_MAX_PAYLOAD, DeflateSettings, Failure, Handshake};
use lowbit_websockets::{Role, SessionEvent};

/// Outputs up to this size are copied into a fresh JS buffer (the native buffer keeps its
/// capacity); larger ones are moved out without a copy.
const COPY_OUTPUT_MAX: usize = 64 * 1024;

/// permessage-deflate settings with `ws`'s names.
#[napi(object)]
#[derive(Default)]
pub struct DeflateOptions {
    pub server_no_context_takeover: Option<bool>,
    pub client_no_context_takeover: Option<bool>,
    /// Client only: the window the server may compress with (8–15).
    pub server_max_window_bits: Option<u32>,
    /// zlib level 0–9 (`zlibDeflateOptions.level`).
    pub level: Option<u32>,
    /// Messages shorter than this many bytes are sent uncompressed (default 1024).
    pub threshold: Option<u32>,
}

impl DeflateOptions {
    fn settings(&self) -> DeflateSettings {
        DeflateSettings {
            server_no_context_takeover: self.server_no_context_takeover.unwrap_or(false),
            client_no_context_takeover: self.client_no_context_takeover.unwrap_or(false),
            server_max_window_bits: self.server_max_window_bits.map(|b| b.min(255) as u8),
            level: self.level.map(|l| l.min(9) as u8),
            threshold: self.threshold.map(|t| t as usize),
        }
    }
}

/// The result of a handshake step.
#[napi(object)]
pub struct HandshakeResult {
    /// The head is complete and the session is live.
    pub done: bool,
    /// Bytes of the input the head used; the rest are frames.
    pub used: u32,
    pub protocol: Option<String>,
    pub extensions: Option<String>,
    pub path: Option<String>,
    /// Why the handshake failed; the rejection response (server) is in the output.
    pub error: Option<String>,
    /// The HTTP status of the rejection (server side).
    pub status: Option<u32>,
}

impl HandshakeResult {
    fn from(result: std::result::Result<Handshake, Failure>) -> Self {
        let mut r =
            Self { done: false, used: 0, protocol: None, extensions: None, path: None, error: None, status: None };
        match result {
            Ok(Handshake::Incomplete) => {}
            Ok(Handshake::Done { used, protocol, extensions, path }) => {
                r.done = true;
                r.used = used as u32;
                r.protocol = protocol;
                r.extensions = extensions;
                r.path = path;
            }
            Err(f) => {
                r.error = Some(f.message);
                r.status = f.code.map(u32::from);
            }
        }
        r
    }
}

fn js_error(f: Failure) -> Error {
    let code = f.code.map_or_else(String::new, |c| format!(" ({c})"));
    Error::from_reason(format!("{}{code}", f.message))
}

/// One connection's protocol state. See `lib/websocket.js` for the JavaScript that drives it.
#[napi]
pub struct NativeSession {
    conn: Conn,
}

#[napi]
impl NativeSession {
    /// `maxPayload`: the largest message accepted, after inflation (default 100 MiB);
    /// `maxFrame`: the largest frame written (default 64 KiB).
    #[napi(constructor)]
    pub fn new(client: bool, max_payload: Option<f64>, max_frame: Option<u32>) -> Self {
        let role = if client { Role::Client } else { Role::Server };
        let max_payload =
            max_payload.filter(|m| *m >= 1.0).map_or(DEFAULT_MAX_PAYLOAD, |m| m.min(usize::MAX as f64) as usize);
        let max_frame = max_frame.filter(|m| *m > 0).map_or(DEFAULT_MAX_FRAME, |m| m as usize);
        Self { conn: Conn::new(role, max_payload, max_frame) }
    }

    /// Starts the session without a handshake (the `Codec`), deflate on with defaults if asked.
    #[napi]
    pub fn start(&mut self, deflate: bool) {
        self.conn.start(deflate.then(lowbit_websockets::DeflateConfig::default).as_ref());
    }

    /// Server: accepts the request head (`choose`: use `protocol` as the subprotocol, else the
    /// client's first offer). The 101 response or the rejection is in the output.
    #[napi]
    pub fn accept(
        &mut self,
        head: &[u8],
        choose: bool,
        protocol: Option<String>,
        deflate: Option<DeflateOptions>,
    ) -> HandshakeResult {
        let settings = deflate.map(|d| d.settings());
        let protocol = choose.then_some(protocol.as_deref());
        HandshakeResult::from(self.conn.server_accept(head, protocol, settings.as_ref()))
    }

    /// Server: the subprotocols a request head offers (for `handleProtocols`); `null` while
    /// the head is incomplete. Throws on a bad request.
    #[napi]
    pub fn offered_protocols(head: &[u8]) -> Result<Option<Vec<String>>> {
        Conn::offered_protocols(head).map_err(js_error)
    }

    /// Client: queues the upgrade request.
    #[napi]
    pub fn request(
        &mut self,
        host: String,
        path: String,
        protocols: Vec<String>,
        deflate: Option<DeflateOptions>,
    ) -> Result<()> {
        let settings = deflate.map(|d| d.settings());
        self.conn.client_request(&host, &path, protocols, settings.as_ref()).map_err(js_error)
    }

    /// Client: checks the response head received so far.
    #[napi]
    pub fn response(&mut self, head: &[u8]) -> HandshakeResult {
        HandshakeResult::from(self.conn.client_response(head))
    }

    /// Decodes one socket chunk. Returns `[output, errorCode, errorMessage, errorKind,
    /// ...events]`: `output` the bytes to write (or `null`), `errorCode` 0 or the close code
    /// sent for a protocol violation (-1: another error, e.g. already closed), `errorKind` the
    /// core error variant (or `null`), then per event
    /// `1|2, Buffer` (text, binary message), `9|10, Buffer` (ping, pong) or `8, code, reason`.
    #[napi]
    pub fn receive<'env>(&mut self, env: &'env Env, data: &[u8]) -> Result<Array<'env>> {
        let mut out = env.create_array(4)?;
        let mut failed: Result<()> = Ok(());
        let result = self.conn.receive(data, |event| {
            if failed.is_err() {
                return;
            }
            failed = push_event(env, &mut out, event);
        });
        failed?;
        match result {
            Ok(()) => {
                out.set(1, 0)?;
                out.set(2, Null)?;
                out.set(3, Null)?;
            }
            Err(f) => {
                out.set(1, f.code.map_or(-1, i32::from))?;
                out.set(2, f.message.as_str())?;
                out.set(3, f.kind.as_str())?;
            }
        }
        match self.output_buffer(env)? {
            Some(b) => out.set(0, &b)?,
            None => out.set(0, Null)?,
        }
        Ok(out)
    }

    /// The peer ended the stream; returns the close code to report (1006 before its close
    /// frame, 0 after it).
    #[napi]
    pub fn receive_eof(&mut self) -> u32 {
        match self.conn.receive_eof() {
            Ok(()) => 0,
            Err(_) => 1006,
        }
    }

    /// Queues a message (`op` 1 text, 2 binary) and returns the bytes to write. `fin: false`
    /// sends a fragment (uncompressed); `compress` compresses when deflate is on and the
    /// message reaches the threshold.
    #[napi]
    pub fn send<'env>(
        &mut self,
        env: &'env Env,
        op: u32,
        data: &[u8],
        compress: bool,
        fin: bool,
    ) -> Result<Option<BufferSlice<'env>>> {
        let op = glue::data_op(op).map_err(js_error)?;
        self.conn.send(op, data, compress, fin).map_err(js_error)?;
        self.output_buffer(env)
    }

    #[napi]
    pub fn ping<'env>(&mut self, env: &'env Env, data: &[u8]) -> Result<Option<BufferSlice<'env>>> {
        self.conn.ping(data).map_err(js_error)?;
        self.output_buffer(env)
    }

    #[napi]
    pub fn pong<'env>(&mut self, env: &'env Env, data: &[u8]) -> Result<Option<BufferSlice<'env>>> {
        self.conn.pong(data).map_err(js_error)?;
        self.output_buffer(env)
    }

    /// Queues our close frame (core checks the code and the reason's length).
    #[napi]
    pub fn close<'env>(&mut self, env: &'env Env, code: u32, reason: String) -> Result<Option<BufferSlice<'env>>> {
        let code = u16::try_from(code).map_err(|_| Error::from_reason(format!("invalid close code {code}")))?;
        self.conn.close(code, &reason).map_err(js_error)?;
        self.output_buffer(env)
    }

    /// Queues the answer to the peer's close (held by `receive` so that replies to the
    /// messages before it go out first) and returns the bytes to write.
    #[napi]
    pub fn reply_close<'env>(&mut self, env: &'env Env) -> Result<Option<BufferSlice<'env>>> {
        self.conn.reply_close().map_err(js_error)?;
        self.output_buffer(env)
    }

    /// Fails the connection: queues a close frame with `code` if ours has not gone out, stops
    /// reading.
    #[napi]
    pub fn fail<'env>(&mut self, env: &'env Env, code: u32, reason: String) -> Result<Option<BufferSlice<'env>>> {
        let code = u16::try_from(code).unwrap_or(1011);
        let _ = self.conn.fail(code, &reason);
        self.output_buffer(env)
    }

    /// Everything waiting to be written, or `null`.
    #[napi]
    pub fn take_output<'env>(&mut self, env: &'env Env) -> Result<Option<BufferSlice<'env>>> {
        self.output_buffer(env)
    }

    #[napi(getter)]
    pub fn close_sent(&self) -> bool {
        self.conn.close_sent()
    }

    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.conn.is_closed()
    }

    #[napi(getter)]
    pub fn finished(&self) -> bool {
        self.conn.is_finished()
    }

    fn output_buffer<'env>(&mut self, env: &'env Env) -> Result<Option<BufferSlice<'env>>> {
        let len = self.conn.output().len();
        if len == 0 {
            return Ok(None);
        }
        if len <= COPY_OUTPUT_MAX {
            let b = BufferSlice::copy_from(env, self.conn.output())?;
            self.conn.consume_output(len);
            Ok(Some(b))
        } else {
            Ok(Some(BufferSlice::from_data(env, self.conn.take_output())?))
        }
    }
}

fn push_event(env: &Env, out: &mut Array<'_>, event: SessionEvent<'_>) -> Result<()> {
    match event {
        SessionEvent::Message { op, payload } => {
            out.insert(op as u32)?;
            out.insert(&BufferSlice::copy_from(env, payload)?)?;
        }
        SessionEvent::Ping(payload) => {
            out.insert(9)?;
            out.insert(&BufferSlice::copy_from(env, payload)?)?;
        }
        SessionEvent::Pong(payload) => {
            out.insert(10)?;
            out.insert(&BufferSlice::copy_from(env, payload)?)?;
        }
        SessionEvent::Close { code, reason } => {
            out.insert(8)?;
            out.insert(u32::from(code.0))?;
            out.insert(reason)?;
        }
    }
    Ok(())
}

/// The close code core sends when `bytes` arrive at a fresh session (the conformance oracle);
/// `null` when they are accepted.
#[napi]
pub fn close_code_for(client: bool, deflate: bool, max_payload: f64, bytes: &[u8]) -> Option<u32> {
    let role = if client { Role::Client } else { Role::Server };
    glue::close_code_for(role, deflate, max_payload as usize, bytes).map(u32::from)
}
