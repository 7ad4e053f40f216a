//! The Node-API face: one session (an `External`) per socket. JavaScript reads and writes the
//! socket; each call here moves bytes through core and hands back what to write.
//!
//! Crossings are batched: [`session_receive`] takes one socket chunk and returns every event
//! it completed plus the bytes to write (pongs) in one array.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::glue::{self, Conn, DEFAULT_MAX_FRAME, DEFAULT_MAX_PAYLOAD, DeflateSettings, Failure, Handshake};
use lowbit_websockets::upgrade::SubprotocolPolicy;
use lowbit_websockets::{Event, Role};

/// Outputs up to this size leave their capacity in the session for the next one; larger ones
/// free it (a connection that once sent a big message should not keep holding that much).
const KEEP_OUTPUT_MAX: usize = 16 * 1024;

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

/// One connection's protocol state, held by JavaScript as an `External` (plain functions on an
/// external cost a tenth of `#[napi]` class methods per call; see `lib/native.js` for the
/// class over them).
pub struct State {
    conn: Conn,
    /// `session_receive`'s payloads and output, gathered for one JS buffer (kept capacity).
    bytes: Vec<u8>,
    /// `session_receive`'s events: kind, start, length, close code.
    events: Vec<[i32; 4]>,
    /// The last `session_receive` error: message and core error kind.
    error: (String, String),
}

/// Results up to this size are copied into the caller's scratch buffer (which it copies from
/// into pooled Buffers: cheaper than creating a Buffer through Node-API); larger ones are
/// copied into a new Buffer that Node allocates (see `output_buffer` for why not an external
/// one).
const SCRATCH_MAX: usize = 16 * 1024;

/// A new session. `maxPayload`: the largest message accepted, after inflation (default
/// 100 MiB); `maxFrame`: the largest frame written (default 64 KiB).
#[napi]
pub fn session_new(client: bool, max_payload: Option<f64>, max_frame: Option<u32>) -> External<State> {
    let role = if client { Role::Client } else { Role::Server };
    let max_payload =
        max_payload.filter(|m| *m >= 1.0).map_or(DEFAULT_MAX_PAYLOAD, |m| m.min(usize::MAX as f64) as usize);
    let max_frame = max_frame.filter(|m| *m > 0).map_or(DEFAULT_MAX_FRAME, |m| m as usize);
    External::new(State {
        conn: Conn::new(role, max_payload, max_frame),
        bytes: Vec::new(),
        events: Vec::new(),
        error: (String::new(), String::new()),
    })
}

/// Starts the session without a handshake (the `Codec`), deflate on with defaults if asked.
#[napi]
pub fn session_start(s: &mut External<State>, deflate: bool) {
    s.conn.start(deflate.then(lowbit_websockets::DeflateConfig::default).as_ref());
}

/// Server: accepts the request head (`choose`: `protocol` is `handleProtocols`' answer; else
/// `ws`'s default, core's [`SubprotocolPolicy::ClientFirst`]). The 101 response or the
/// rejection is in the output.
#[napi]
pub fn session_accept(
    s: &mut External<State>,
    head: &[u8],
    choose: bool,
    protocol: Option<String>,
    deflate: Option<DeflateOptions>,
) -> HandshakeResult {
    let settings = deflate.map(|d| d.settings());
    let protocols = if choose { SubprotocolPolicy::Chosen(protocol) } else { SubprotocolPolicy::ClientFirst };
    HandshakeResult::from(s.conn.accept(head, protocols, settings.as_ref()))
}

/// Server: the subprotocols a request head offers (for `handleProtocols`); `null` while the
/// head is incomplete. Throws on a bad request.
#[napi]
pub fn offered_protocols(head: &[u8]) -> Result<Option<Vec<String>>> {
    Conn::offered_protocols(head).map_err(js_error)
}

/// Client: queues the upgrade request.
#[napi]
pub fn session_request(
    s: &mut External<State>,
    host: String,
    path: String,
    protocols: Vec<String>,
    deflate: Option<DeflateOptions>,
) -> Result<()> {
    let settings = deflate.map(|d| d.settings());
    s.conn.client_request(&host, &path, protocols, settings.as_ref()).map_err(js_error)
}

/// Client: checks the response head received so far.
#[napi]
pub fn session_response(s: &mut External<State>, head: &[u8]) -> HandshakeResult {
    HandshakeResult::from(s.conn.client_response(head))
}

/// Decodes one socket chunk. Returns `[output, errorCode, errorMessage, errorKind,
/// ...events]`: `output` the bytes to write (or `null`), `errorCode` 0 or the close code of a
/// protocol violation (its close frame waits for `sessionReplyClose`; -1: another error, e.g.
/// already closed), `errorKind` the core error variant (or `null`), then per event
/// `1|2, Buffer` (text, binary message), `9|10, Buffer` (ping, pong) or `8, code, reason`
/// (the answer to a close waits for `sessionReplyClose`).
#[napi]
pub fn session_receive<'env>(env: &'env Env, s: &mut External<State>, data: &[u8]) -> Result<Array<'env>> {
    let mut out = env.create_array(4)?;
    let mut failed: Result<()> = Ok(());
    let result = s.conn.receive(data, |event| {
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
    match output_buffer(env, &mut s.conn)? {
        Some(b) => out.set(0, &b)?,
        None => out.set(0, Null)?,
    }
    Ok(out)
}

/// [`session_receive`] in one buffer, for the hot path: returns one Buffer holding every
/// payload (close reasons too) followed by the bytes to write, or `null` when there are none,
/// and describes it in `meta` (an Int32Array the caller reuses): `meta[0]` the number of
/// events, `meta[1]` 0 or the error code (as in `sessionReceive`; `sessionError` has the
/// message), `meta[2..4]` the output's start and length in the buffer, then per event
/// `kind, start, length, close code`. `meta` must hold `4 + 4 * (data.length / 2 + 1)`
/// values (no frame is shorter than 2 bytes); a shorter one is an error (the events are lost).
///
/// With a `scratch` buffer big enough for everything, the bytes go there instead (no buffer is
/// created and `null` is returned); the caller copies out what it keeps.
#[napi]
pub fn session_receive_into<'env>(
    env: &'env Env,
    s: &mut External<State>,
    data: &[u8],
    mut meta: Int32ArraySlice<'env>,
    mut scratch: Uint8ArraySlice<'env>,
) -> Result<Option<BufferSlice<'env>>> {
    // SAFETY: the typed arrays' memory stays alive for this call, and nothing else touches it
    // during the call (JavaScript is single-threaded and waits for us).
    #[allow(unsafe_code)]
    let (meta, scratch) = unsafe { (meta.as_mut(), scratch.as_mut()) };
    let State { conn, bytes, events, error } = &mut **s;
    bytes.clear();
    events.clear();
    let result = conn.receive(data, |event| {
        let (kind, code, payload) = glue::event_parts(event);
        events.push([i32::from(kind), bytes.len() as i32, payload.len() as i32, i32::from(code)]);
        bytes.extend_from_slice(payload);
    });
    if meta.len() < 4 + 4 * events.len() {
        // The JS side sizes `meta` from the chunk's length, so this is misuse.
        return Err(Error::from_reason(format!(
            "meta holds {} events, {} arrived",
            (meta.len().max(4) - 4) / 4,
            events.len()
        )));
    }
    meta[0] = events.len() as i32;
    meta[1] = match result {
        Ok(()) => 0,
        Err(f) => {
            *error = (f.message, f.kind);
            f.code.map_or(-1, i32::from)
        }
    };
    let out = conn.output();
    meta[2] = bytes.len() as i32;
    meta[3] = out.len() as i32;
    bytes.extend_from_slice(out);
    let n = out.len();
    conn.consume_output(n);
    for (i, e) in events.iter().enumerate() {
        meta[4 + 4 * i..8 + 4 * i].copy_from_slice(e);
    }
    if bytes.len() <= SCRATCH_MAX
        && let Some(room) = scratch.get_mut(..bytes.len())
    {
        room.copy_from_slice(bytes);
        Ok(None)
    } else {
        let b = BufferSlice::copy_from(env, &bytes[..])?;
        if bytes.capacity() > KEEP_OUTPUT_MAX {
            *bytes = Vec::new();
        }
        Ok(Some(b))
    }
}

/// The message and core error kind of the last `sessionReceiveInto` error.
#[napi]
pub fn session_error(s: &External<State>) -> Vec<String> {
    vec![s.error.0.clone(), s.error.1.clone()]
}

/// The peer ended the stream; returns the close code to report (1006 before its close frame,
/// 0 after it).
#[napi]
pub fn session_receive_eof(s: &mut External<State>) -> u32 {
    match s.conn.receive_eof() {
        Ok(()) => 0,
        Err(_) => 1006,
    }
}

/// Queues a message (`op` 1 text, 2 binary) and returns the bytes to write. `fin: false` sends
/// a fragment (uncompressed); `compress` compresses when deflate is on and the message reaches
/// the threshold.
#[napi]
pub fn session_send<'env>(
    env: &'env Env,
    s: &mut External<State>,
    op: u32,
    data: &[u8],
    compress: bool,
    fin: bool,
) -> Result<Option<BufferSlice<'env>>> {
    let op = glue::data_op(op).map_err(js_error)?;
    s.conn.send(op, data, compress, fin).map_err(js_error)?;
    output_buffer(env, &mut s.conn)
}

/// [`session_send`] for the hot path: the bytes to write go into `scratch` when they fit and
/// their length is returned; otherwise -1 is returned and `sessionTakeOutput` has them.
#[napi]
pub fn session_send_into(
    s: &mut External<State>,
    op: u32,
    data: &[u8],
    compress: bool,
    fin: bool,
    mut scratch: Uint8ArraySlice<'_>,
) -> Result<i32> {
    let op = glue::data_op(op).map_err(js_error)?;
    s.conn.send(op, data, compress, fin).map_err(js_error)?;
    // SAFETY: as in `session_receive_into`.
    #[allow(unsafe_code)]
    let scratch = unsafe { scratch.as_mut() };
    let out = s.conn.output();
    let n = out.len();
    match scratch.get_mut(..n).filter(|_| n <= SCRATCH_MAX) {
        Some(room) => {
            room.copy_from_slice(out);
            s.conn.consume_output(n);
            Ok(n as i32)
        }
        None => Ok(-1),
    }
}

#[napi]
pub fn session_ping<'env>(env: &'env Env, s: &mut External<State>, data: &[u8]) -> Result<Option<BufferSlice<'env>>> {
    s.conn.ping(data).map_err(js_error)?;
    output_buffer(env, &mut s.conn)
}

#[napi]
pub fn session_pong<'env>(env: &'env Env, s: &mut External<State>, data: &[u8]) -> Result<Option<BufferSlice<'env>>> {
    s.conn.pong(data).map_err(js_error)?;
    output_buffer(env, &mut s.conn)
}

/// Queues our close frame (core checks the code and the reason's length).
#[napi]
pub fn session_close<'env>(
    env: &'env Env,
    s: &mut External<State>,
    code: u32,
    reason: String,
) -> Result<Option<BufferSlice<'env>>> {
    let code = u16::try_from(code).map_err(|_| Error::from_reason(format!("invalid close code {code}")))?;
    s.conn.close(code, &reason).map_err(js_error)?;
    output_buffer(env, &mut s.conn)
}

/// Queues the close frame `sessionReceive` held (the answer to the peer's close, or the one a
/// violation sends) once the events before it were handled; returns the bytes to write.
#[napi]
pub fn session_reply_close<'env>(env: &'env Env, s: &mut External<State>) -> Result<Option<BufferSlice<'env>>> {
    s.conn.reply_close().map_err(js_error)?;
    output_buffer(env, &mut s.conn)
}

/// Fails the connection: queues a close frame with `code` if ours has not gone out, stops
/// reading.
#[napi]
pub fn session_fail<'env>(
    env: &'env Env,
    s: &mut External<State>,
    code: u32,
    reason: String,
) -> Result<Option<BufferSlice<'env>>> {
    let code = u16::try_from(code).unwrap_or(1011);
    let _ = s.conn.fail(code, &reason);
    output_buffer(env, &mut s.conn)
}

/// Everything waiting to be written, or `null`.
#[napi]
pub fn session_take_output<'env>(env: &'env Env, s: &mut External<State>) -> Result<Option<BufferSlice<'env>>> {
    output_buffer(env, &mut s.conn)
}

/// Bit 0: our close frame is queued; bit 1: the peer's close arrived or the connection
/// failed (3: the close handshake is complete).
#[napi]
pub fn session_state(s: &External<State>) -> u32 {
    s.conn.state_bits()
}

fn output_buffer<'env>(env: &'env Env, conn: &mut Conn) -> Result<Option<BufferSlice<'env>>> {
    let len = conn.output().len();
    if len == 0 {
        return Ok(None);
    }
    // Always a copy into a buffer Node allocates, never the Vec handed over as an external
    // buffer: those Vecs (grown by reallocation, freed whenever V8 collected their buffers)
    // fragmented glibc's heap, which kept the memory. Sending 1 GiB to a slow reader with 8 MiB
    // in flight, the server grew by 95–580 MiB (280–770 MiB with frequent GCs); with copies by
    // 40–50 MiB (25–30). A Node buffer is also cheaper to create (64 KiB sends: 3 µs, not 7).
    let b = BufferSlice::copy_from(env, conn.output())?;
    if len <= KEEP_OUTPUT_MAX {
        conn.consume_output(len);
    } else {
        drop(conn.take_output());
    }
    Ok(Some(b))
}

fn push_event(env: &Env, out: &mut Array<'_>, event: Event<'_>) -> Result<()> {
    match event {
        Event::Message { op, payload, .. } => {
            out.insert(op as u32)?;
            out.insert(&BufferSlice::copy_from(env, payload)?)?;
        }
        Event::Ping(payload) => {
            out.insert(9)?;
            out.insert(&BufferSlice::copy_from(env, payload)?)?;
        }
        Event::Pong(payload) => {
            out.insert(10)?;
            out.insert(&BufferSlice::copy_from(env, payload)?)?;
        }
        Event::Close { frame, .. } => {
            out.insert(8)?;
            out.insert(u32::from(frame.code_or_no_status().0))?;
            out.insert(frame.reason)?;
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
