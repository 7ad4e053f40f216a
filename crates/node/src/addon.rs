//! The Node-API face: one session (an `External`) per socket. JavaScript reads and writes the
//! socket; each call here moves bytes through core and hands back what to write.
//!
//! Crossings are batched: [`session_receive_into`] takes one socket chunk and packs every event
//! it completed plus the bytes to write (pongs) into one buffer, in the layout of
//! [`pack`](crate::pack) that the C ABI uses too.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::glue::{self, Conn, DEFAULT_MAX_FRAME, DEFAULT_MAX_PAYLOAD, Failure, Handshake};
use crate::pack;
use lowbit_websockets::Role;
use lowbit_websockets::upgrade::SubprotocolPolicy;

/// Outputs up to this size leave their capacity in the session for the next one; larger ones
/// free it (a connection that once sent a big message should not keep holding that much).
const KEEP_OUTPUT_MAX: usize = 16 * 1024;

/// permessage-deflate settings with `ws`'s names.
#[napi(object)]
#[derive(Default)]
pub struct DeflateOptions {
    pub server_no_context_takeover: Option<bool>,
    pub client_no_context_takeover: Option<bool>,
    /// Client: the window the server may compress with (8–15). Server: the window we
    /// compress with, declared in the answer.
    pub server_max_window_bits: Option<u32>,
    /// Client: the window we compress with, named in the offer. Server: the window a client
    /// that offers `client_max_window_bits` is asked to compress with.
    pub client_max_window_bits: Option<u32>,
    /// zlib level 0–9 (`zlibDeflateOptions.level`).
    pub level: Option<u32>,
    /// zlib memLevel 1–9 (`zlibDeflateOptions.memLevel`).
    pub mem_level: Option<u32>,
    /// Messages shorter than this many bytes are sent uncompressed (default 1024).
    pub threshold: Option<u32>,
}

impl From<DeflateOptions> for lowbit_websockets::DeflateOptions {
    /// The options given, core's defaults for the rest (a level above 9 is 9, a memLevel
    /// outside 1–9 the nearest).
    fn from(o: DeflateOptions) -> Self {
        let defaults = Self::default();
        Self {
            server_no_context_takeover: o.server_no_context_takeover.unwrap_or(false),
            client_no_context_takeover: o.client_no_context_takeover.unwrap_or(false),
            server_max_window_bits: o.server_max_window_bits.map(|b| b.min(255) as u8),
            client_max_window_bits: o.client_max_window_bits.map(|b| b.min(255) as u8),
            level: o.level.map_or(defaults.level, |l| l.min(9) as u8),
            mem_level: o.mem_level.map_or(defaults.mem_level, |m| m.clamp(1, 9) as u8),
            threshold: o.threshold.map_or(defaults.threshold, |t| t as usize),
            ..defaults
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
    /// The core error kind of the failure: a handshake error's variant
    /// (`"AcceptMismatch"`, `"UnofferedProtocol"`, ...) or `"Negotiation"`.
    pub kind: Option<String>,
}

impl HandshakeResult {
    fn from(result: std::result::Result<Handshake, Failure>) -> Self {
        let mut r =
            Self { done: false, used: 0, protocol: None, extensions: None, path: None, error: None, status: None, kind: None };
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
                r.kind = Some(f.kind.to_owned());
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
    /// The events of a `session_receive_into` that did not fit the scratch buffer, and then
    /// the bytes to write (kept capacity, up to [`KEEP_OUTPUT_MAX`]).
    spill: Vec<u8>,
    /// The last `session_receive_into` error: message and core error kind.
    error: (String, &'static str),
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
        spill: Vec::new(),
        error: (String::new(), ""),
    })
}

/// Sets the most frames one incoming message may arrive in (`ws`'s `maxFragments`; 0: no
/// cap); past it core closes with 1009. Call before the handshake or `sessionStart`.
#[napi]
pub fn session_set_max_fragments(s: &mut External<State>, frames: f64) {
    s.conn.set_max_fragments(if frames >= 1.0 { frames.min(usize::MAX as f64) as usize } else { 0 });
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
    let deflate = deflate.map(lowbit_websockets::DeflateOptions::from);
    let protocols = if choose { SubprotocolPolicy::Chosen(protocol) } else { SubprotocolPolicy::ClientFirst };
    HandshakeResult::from(s.conn.accept(head, protocols, deflate.as_ref()))
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
    let deflate = deflate.map(lowbit_websockets::DeflateOptions::from);
    s.conn.client_request(&host, &path, protocols, deflate.as_ref()).map_err(js_error)
}

/// Client: checks the response head received so far.
#[napi]
pub fn session_response(s: &mut External<State>, head: &[u8]) -> HandshakeResult {
    HandshakeResult::from(s.conn.client_response(head))
}

/// Decodes one socket chunk and packs its events, then the bytes to write, into `scratch` (the
/// layout of `pack`: per event an `EVENT_HEAD_LEN`-byte head, then the payload). `info` (four
/// values) receives the events' length, the output's length, 1 when both are in `scratch` (0:
/// they did not fit; `sessionTakePacked` has them), and `sessionState`. Returns 0, or the
/// close code of a protocol violation (its close frame waits for `sessionReplyClose`), or -1
/// for another error (e.g. already closed); `sessionError` has the message and kind.
#[napi]
pub fn session_receive_into(
    s: &mut External<State>,
    data: &[u8],
    mut scratch: Uint8ArraySlice<'_>,
    mut info: Uint32ArraySlice<'_>,
) -> i32 {
    // SAFETY: the typed arrays' memory stays alive for this call, and nothing else touches it
    // during the call (JavaScript is single-threaded and waits for us).
    #[allow(unsafe_code)]
    let (scratch_bytes, info_words) = unsafe { (scratch.as_mut(), info.as_mut()) };
    let State { conn, spill, error } = &mut **s;
    let room = scratch_bytes.len().min(SCRATCH_MAX);
    let (result, packed) = pack::receive(conn, data, &mut scratch_bytes[..room], spill);
    let packed_info = packed.info(conn);
    if let Some(info) = info_words.get_mut(..4) {
        info.copy_from_slice(&packed_info);
    }
    if packed_info[2] == 1 {
        wasm::written_back(&scratch, (packed_info[0] + packed_info[1]) as usize);
    }
    wasm::written_back(&info, 4 * size_of::<u32>());
    match result {
        Ok(()) => 0,
        Err(f) => {
            *error = (f.message, f.kind);
            f.code.map_or(-1, i32::from)
        }
    }
}

/// After `sessionReceiveInto` reported that its results did not fit: the events, then the
/// bytes to write (which then count as written), in a new Buffer.
#[napi]
pub fn session_take_packed<'env>(env: &'env Env, s: &mut External<State>) -> Result<BufferSlice<'env>> {
    let State { conn, spill, .. } = &mut **s;
    pack::spill_output(conn, spill);
    let b = BufferSlice::copy_from(env, &spill[..])?;
    if spill.capacity() > KEEP_OUTPUT_MAX {
        *spill = Vec::new();
    } else {
        spill.clear();
    }
    Ok(b)
}

/// The message and core error kind of the last `sessionReceiveInto` error.
#[napi]
pub fn session_error(s: &External<State>) -> Vec<String> {
    vec![s.error.0.clone(), s.error.1.to_owned()]
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

/// Queues a message (`op` `EVENT_TEXT` or `EVENT_BINARY`) and returns the bytes to write. `fin: false` sends
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
    let scratch_bytes = unsafe { scratch.as_mut() };
    let out = s.conn.output();
    let n = out.len();
    match scratch_bytes.get_mut(..n).filter(|_| n <= SCRATCH_MAX) {
        Some(room) => {
            room.copy_from_slice(out);
            s.conn.consume_output(n);
            wasm::written_back(&scratch, n);
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

/// Queues our close frame (core checks the code and the reason's length); without a code, a
/// close frame with no body (the peer sees 1005), as `ws` sends for `close()`.
#[napi]
pub fn session_close<'env>(
    env: &'env Env,
    s: &mut External<State>,
    code: Option<u32>,
    reason: String,
) -> Result<Option<BufferSlice<'env>>> {
    match code {
        None => s.conn.close_without_status(),
        Some(code) => {
            let code = u16::try_from(code).map_err(|_| Error::from_reason(format!("invalid close code {code}")))?;
            s.conn.close(code, &reason)
        }
    }
    .map_err(js_error)?;
    output_buffer(env, &mut s.conn)
}

/// Queues the close frame `sessionReceiveInto` held (the answer to the peer's close, or the one a
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

/// The socket closed: frees the native session and its buffers now (not when V8 collects the
/// handle). Later calls fail as on a closed connection; the state reads as finished.
#[napi]
pub fn session_release(s: &mut External<State>) {
    s.conn.release();
    s.spill = Vec::new();
    s.error = (String::new(), "");
}

/// The close state: `STATE_CLOSE_SENT` and `STATE_CLOSE_RECEIVED` bits (both:
/// `STATE_FINISHED`).
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

/// The close code core sends when `bytes` arrive at a fresh session (the conformance oracle);
/// `null` when they are accepted.
#[napi]
pub fn close_code_for(client: bool, deflate: bool, max_payload: f64, bytes: &[u8]) -> Option<u32> {
    let role = if client { Role::Client } else { Role::Server };
    glue::close_code_for(role, deflate, max_payload as usize, bytes).map(u32::from)
}

/// The WebAssembly fallback (`wasm32-wasip1-threads` on emnapi): there a typed array from
/// JavaScript reaches Rust as a copy in the module's memory, so the bytes Rust wrote into it
/// must be copied back before JavaScript reads them. Natively the slice is the array's own
/// memory and there is nothing to do.
mod wasm {
    #[cfg(target_family = "wasm")]
    pub fn written_back<'env>(view: &impl napi::JsValue<'env>, bytes: usize) {
        unsafe extern "C" {
            fn emnapi_sync_memory(
                env: napi::sys::napi_env,
                js_to_wasm: bool,
                view: *mut napi::sys::napi_value,
                offset: usize,
                len: usize,
            ) -> napi::sys::napi_status;
        }
        if bytes == 0 {
            return;
        }
        let raw = view.value();
        let mut value = raw.value;
        // SAFETY: `view` is a live typed array of this call, and `bytes` is within it (the
        // callers wrote that many bytes into its slice).
        #[allow(unsafe_code)]
        unsafe {
            emnapi_sync_memory(raw.env, false, &mut value, 0, bytes);
        }
    }

    #[cfg(not(target_family = "wasm"))]
    pub fn written_back<'env>(_view: &impl napi::JsValue<'env>, _bytes: usize) {}
}
