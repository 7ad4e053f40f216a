//! A plain C ABI over the same [`Conn`], for `Deno.dlopen` (and any C caller).
//!
//! Every function takes the handle from [`lbws_new`]. Byte inputs are `(pointer, length)`;
//! byte outputs stay inside the handle and are read through `*_ptr`/`*_len` pairs until the
//! next call that changes them. Status returns: `0` success, `1` incomplete (handshake needs
//! more bytes), a close code (1002, 1007, 1009, ...) when a protocol violation was answered
//! with a close frame, an HTTP status (400–599) when a request was refused, `-1` any other
//! error. [`lbws_error_ptr`]/[`lbws_error_len`] hold the message of the last error.
//!
//! Events of [`lbws_receive`] are packed into one buffer ([`lbws_events_ptr`]) in the layout
//! of [`pack`](crate::pack), which the Node-API face uses too. The numbers in it (event
//! kinds, state bits, deflate flags) are the [`contract`](crate::contract)'s, which
//! [`lbws_contract`] hands out by name.
//!
//! [`pool`] holds the hot path of a caller that owns the buffers (Deno's `deno/connection.ts`).

#![allow(unsafe_code, clippy::missing_safety_doc)]

pub mod pool;

use std::ffi::{CString, c_char};
use std::slice;
use std::sync::OnceLock;

use lowbit_websockets::upgrade::SubprotocolPolicy;
use lowbit_websockets::{DeflateOptions, Role};

use crate::contract::{
    self, DEFLATE_CLIENT_NO_CONTEXT_TAKEOVER, DEFLATE_DEFAULT_THRESHOLD, DEFLATE_ON, DEFLATE_SERVER_NO_CONTEXT_TAKEOVER,
};
use crate::glue::{self, Conn, DEFAULT_MAX_FRAME, DEFAULT_MAX_PAYLOAD, Failure, Handshake};
use crate::pack;

/// A connection handle.
pub struct Handle {
    pub(crate) conn: Conn,
    /// Packed events of [`lbws_receive`], or those of [`pool::lbws_receive_at`] that did not
    /// fit.
    pub(crate) events: Vec<u8>,
    error: String,
    /// Handshake results: bytes used, protocol and extensions chosen, request path.
    used: usize,
    info: String,
}

impl Handle {
    pub(crate) fn status(&mut self, result: Result<(), Failure>) -> i32 {
        match result {
            Ok(()) => 0,
            Err(f) => {
                self.error = f.message;
                f.code.map_or(-1, i32::from)
            }
        }
    }

    fn handshake(&mut self, result: Result<Handshake, Failure>) -> i32 {
        match result {
            Ok(Handshake::Incomplete) => 1,
            Ok(Handshake::Done { used, protocol, extensions, path }) => {
                self.used = used;
                // "protocol\nextensions\npath": three lines, each possibly empty.
                self.info = format!(
                    "{}\n{}\n{}",
                    protocol.unwrap_or_default(),
                    extensions.unwrap_or_default(),
                    path.unwrap_or_default()
                );
                0
            }
            Err(f) => self.status(Err(f)),
        }
    }
}

pub(crate) unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 { &[] } else { unsafe { slice::from_raw_parts(ptr, len) } }
}

unsafe fn text<'a>(ptr: *const u8, len: usize) -> &'a str {
    std::str::from_utf8(unsafe { bytes(ptr, len) }).unwrap_or("")
}

/// The names in a comma-separated argument (how the C ABI passes a list of subprotocols).
unsafe fn names(ptr: *const u8, len: usize) -> Vec<String> {
    let list = unsafe { text(ptr, len) };
    list.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect()
}

pub(crate) unsafe fn handle<'a>(h: *mut Handle) -> &'a mut Handle {
    unsafe { &mut *h }
}

/// Core's deflate options from the C ABI's arguments: `flags` the `DEFLATE_*` bits (none
/// without [`DEFLATE_ON`]); `window` 0 or 8–15 (client: server_max_window_bits); `level` 0–9
/// ([`DEFLATE_DEFAULT_LEVEL`](contract::DEFLATE_DEFAULT_LEVEL) or any other: core's default); `threshold`
/// ([`DEFLATE_DEFAULT_THRESHOLD`]: core's default).
fn deflate(flags: u32, window: u32, level: u32, threshold: u32) -> Option<DeflateOptions> {
    let defaults = DeflateOptions::default();
    (flags & DEFLATE_ON != 0).then(|| DeflateOptions {
        server_no_context_takeover: flags & DEFLATE_SERVER_NO_CONTEXT_TAKEOVER != 0,
        client_no_context_takeover: flags & DEFLATE_CLIENT_NO_CONTEXT_TAKEOVER != 0,
        server_max_window_bits: (window != 0).then_some(window.min(255) as u8),
        level: if level <= 9 { level as u8 } else { defaults.level },
        threshold: if threshold == DEFLATE_DEFAULT_THRESHOLD { defaults.threshold } else { threshold as usize },
        ..defaults
    })
}

/// The [`contract`](crate::contract) as a NUL-terminated JSON object
/// (`{"EVENT_TEXT":1,...}`), valid for the life of the library.
#[unsafe(no_mangle)]
pub extern "C" fn lbws_contract() -> *const c_char {
    static JSON: OnceLock<CString> = OnceLock::new();
    // The JSON holds names and digits only: no NUL byte.
    JSON.get_or_init(|| CString::new(contract::json()).unwrap_or_default()).as_ptr()
}

/// A new connection (`client` 0: server, 1: client). `max_payload` 0: 100 MiB;
/// `max_frame` 0: 64 KiB. Free it with [`lbws_free`].
#[unsafe(no_mangle)]
pub extern "C" fn lbws_new(client: u32, max_payload: f64, max_frame: u32) -> *mut Handle {
    let role = if client != 0 { Role::Client } else { Role::Server };
    let max_payload = if max_payload >= 1.0 { max_payload as usize } else { DEFAULT_MAX_PAYLOAD };
    let max_frame = if max_frame > 0 { max_frame as usize } else { DEFAULT_MAX_FRAME };
    let conn = Conn::new(role, max_payload, max_frame);
    Box::into_raw(Box::new(Handle { conn, events: Vec::new(), error: String::new(), used: 0, info: String::new() }))
}

/// Sets the most frames one incoming message may arrive in (0: no cap); past it core closes
/// with 1009. Call before the handshake.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbws_set_max_fragments(h: *mut Handle, frames: f64) {
    if let Some(h) = unsafe { h.as_mut() } {
        h.conn.set_max_fragments(if frames >= 1.0 { frames as usize } else { 0 });
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbws_free(h: *mut Handle) {
    if !h.is_null() {
        drop(unsafe { Box::from_raw(h) });
    }
}

/// Server: accepts the request head. `protocols` is a comma-separated list of the subprotocols
/// the server speaks: core's [`SubprotocolPolicy::FirstSupported`] picks the client's first
/// offer among them (empty: none).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbws_accept(
    h: *mut Handle,
    head: *const u8,
    head_len: usize,
    protocols: *const u8,
    protocols_len: usize,
    deflate_flags: u32,
    window: u32,
    level: u32,
    threshold: u32,
) -> i32 {
    let h = unsafe { handle(h) };
    let head = unsafe { bytes(head, head_len) };
    let supported = unsafe { names(protocols, protocols_len) };
    let deflate = deflate(deflate_flags, window, level, threshold);
    let result = h.conn.accept(head, SubprotocolPolicy::FirstSupported(supported), deflate.as_ref());
    h.handshake(result)
}

/// Client: queues the upgrade request; `protocols` comma-separated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbws_request(
    h: *mut Handle,
    host: *const u8,
    host_len: usize,
    path: *const u8,
    path_len: usize,
    protocols: *const u8,
    protocols_len: usize,
    deflate_flags: u32,
    window: u32,
    level: u32,
    threshold: u32,
) -> i32 {
    let h = unsafe { handle(h) };
    let (host, path) = unsafe { (text(host, host_len), text(path, path_len)) };
    let protocols = unsafe { names(protocols, protocols_len) };
    let deflate = deflate(deflate_flags, window, level, threshold);
    let result = h.conn.client_request(host, path, protocols, deflate.as_ref());
    h.status(result)
}

/// Client: checks the response head received so far (0 done, 1 incomplete).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbws_response(h: *mut Handle, head: *const u8, head_len: usize) -> i32 {
    let h = unsafe { handle(h) };
    let result = h.conn.client_response(unsafe { bytes(head, head_len) });
    h.handshake(result)
}

/// Bytes of the head the last completed handshake used.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbws_handshake_used(h: *mut Handle) -> usize {
    unsafe { handle(h) }.used
}

/// "protocol\nextensions\npath" of the last completed handshake.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbws_handshake_info_ptr(h: *mut Handle) -> *const u8 {
    unsafe { handle(h) }.info.as_ptr()
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbws_handshake_info_len(h: *mut Handle) -> usize {
    unsafe { handle(h) }.info.len()
}

/// Decodes bytes read from the socket; the events are in [`lbws_events_ptr`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbws_receive(h: *mut Handle, data: *const u8, len: usize) -> i32 {
    let h = unsafe { handle(h) };
    // No room of the caller's: every event goes to `events`, the output stays.
    let (result, _) = pack::receive(&mut h.conn, unsafe { bytes(data, len) }, &mut [], &mut h.events);
    h.status(result)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbws_events_ptr(h: *mut Handle) -> *const u8 {
    unsafe { handle(h) }.events.as_ptr()
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbws_events_len(h: *mut Handle) -> usize {
    unsafe { handle(h) }.events.len()
}

/// The peer ended the stream: 0 after its close frame, 1006 before it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbws_receive_eof(h: *mut Handle) -> i32 {
    if unsafe { handle(h) }.conn.receive_eof().is_ok() { 0 } else { 1006 }
}

/// Queues a message (`op` `EVENT_TEXT` or `EVENT_BINARY`); `fin` 0 sends a fragment; `compress` 1 compresses
/// when deflate is on and the message reaches the threshold.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbws_send(
    h: *mut Handle,
    op: u32,
    data: *const u8,
    len: usize,
    compress: u32,
    fin: u32,
) -> i32 {
    let h = unsafe { handle(h) };
    let result = glue::data_op(op).and_then(|op| h.conn.send(op, unsafe { bytes(data, len) }, compress != 0, fin != 0));
    h.status(result)
}

/// Queues the answer to the peer's close; call it after handling the events of the
/// [`lbws_receive`] that reported the close, so replies to earlier messages go out first.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbws_reply_close(h: *mut Handle) -> i32 {
    let h = unsafe { handle(h) };
    let result = h.conn.reply_close();
    h.status(result)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbws_ping(h: *mut Handle, data: *const u8, len: usize) -> i32 {
    let h = unsafe { handle(h) };
    let result = h.conn.ping(unsafe { bytes(data, len) });
    h.status(result)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbws_pong(h: *mut Handle, data: *const u8, len: usize) -> i32 {
    let h = unsafe { handle(h) };
    let result = h.conn.pong(unsafe { bytes(data, len) });
    h.status(result)
}

/// Queues our close frame (core checks the code and reason).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbws_close(h: *mut Handle, code: u32, reason: *const u8, reason_len: usize) -> i32 {
    let h = unsafe { handle(h) };
    let result = match u16::try_from(code) {
        Ok(code) => h.conn.close(code, unsafe { text(reason, reason_len) }),
        Err(_) => Err(Failure { code: None, message: format!("invalid close code {code}"), kind: "InvalidCloseCode" }),
    };
    h.status(result)
}

/// Bytes waiting to be written (handshake first, then frames).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbws_output_ptr(h: *mut Handle) -> *const u8 {
    unsafe { handle(h) }.conn.output().as_ptr()
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbws_output_len(h: *mut Handle) -> usize {
    unsafe { handle(h) }.conn.output().len()
}

/// Marks `n` output bytes as written.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbws_consume_output(h: *mut Handle, n: usize) {
    unsafe { handle(h) }.conn.consume_output(n);
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbws_error_ptr(h: *mut Handle) -> *const u8 {
    unsafe { handle(h) }.error.as_ptr()
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbws_error_len(h: *mut Handle) -> usize {
    unsafe { handle(h) }.error.len()
}

/// The close state: `STATE_CLOSE_SENT` and `STATE_CLOSE_RECEIVED` bits (both:
/// `STATE_FINISHED`, the close handshake is complete).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbws_state(h: *mut Handle) -> u32 {
    unsafe { handle(h) }.conn.state_bits()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) unsafe fn output(h: *mut Handle) -> Vec<u8> {
        unsafe {
            let out = slice::from_raw_parts(lbws_output_ptr(h), lbws_output_len(h)).to_vec();
            lbws_consume_output(h, out.len());
            out
        }
    }

    /// Events as (kind, code, payload).
    unsafe fn events(h: *mut Handle) -> Vec<(u8, u16, Vec<u8>)> {
        let buf = unsafe { slice::from_raw_parts(lbws_events_ptr(h), lbws_events_len(h)) };
        let mut out = Vec::new();
        let mut i = 0;
        while i + 8 <= buf.len() {
            let len = u32::from_le_bytes(buf[i + 4..i + 8].try_into().unwrap()) as usize;
            out.push((buf[i], u16::from_le_bytes([buf[i + 2], buf[i + 3]]), buf[i + 8..i + 8 + len].to_vec()));
            i += 8 + len;
        }
        out
    }

    #[test]
    fn client_and_server_handles_talk_with_deflate_and_close() {
        unsafe {
            let (server, client) = (lbws_new(0, 0.0, 0), lbws_new(1, 0.0, 0));
            let (host, path, protos) = (b"example.com", b"/chat", b"v1");
            let rc = lbws_request(client, host.as_ptr(), 11, path.as_ptr(), 5, protos.as_ptr(), 2, 1, 0, 255, u32::MAX);
            assert_eq!(rc, 0);
            let request = output(client);
            assert_eq!(
                lbws_accept(server, request.as_ptr(), 10, protos.as_ptr(), 2, 1, 0, 255, u32::MAX),
                1,
                "incomplete"
            );
            assert_eq!(
                lbws_accept(server, request.as_ptr(), request.len(), protos.as_ptr(), 2, 1, 0, 255, u32::MAX),
                0
            );
            let info = slice::from_raw_parts(lbws_handshake_info_ptr(server), lbws_handshake_info_len(server));
            assert!(info.starts_with(b"v1\npermessage-deflate"), "{}", String::from_utf8_lossy(info));
            let response = output(server);
            assert_eq!(lbws_response(client, response.as_ptr(), response.len()), 0);

            let text = "lowbit ".repeat(500);
            assert_eq!(lbws_send(client, 1, text.as_ptr(), text.len(), 1, 1), 0);
            assert_eq!(lbws_ping(client, b"p".as_ptr(), 1), 0);
            let wire = output(client);
            assert!(wire.len() < 200, "compressed: {} bytes", wire.len());
            assert_eq!(lbws_receive(server, wire.as_ptr(), wire.len()), 0);
            assert_eq!(events(server), [(1, 0, text.clone().into_bytes()), (9, 0, b"p".to_vec())]);
            let pong = output(server);
            assert_eq!(lbws_receive(client, pong.as_ptr(), pong.len()), 0);
            assert_eq!(events(client), [(10, 0, b"p".to_vec())]);

            assert_eq!(lbws_close(client, 4000, b"bye".as_ptr(), 3), 0);
            let close = output(client);
            assert_eq!(lbws_receive(server, close.as_ptr(), close.len()), 0);
            assert_eq!(events(server), [(8, 4000, b"bye".to_vec())]);
            assert_eq!(lbws_state(server), 2, "the answer is held until lbws_reply_close");
            assert_eq!(lbws_reply_close(server), 0);
            assert_eq!(lbws_state(server), 3);
            let answer = output(server);
            assert_eq!(lbws_receive(client, answer.as_ptr(), answer.len()), 0);
            assert_eq!(lbws_state(client), 3);
            lbws_free(server);
            lbws_free(client);
        }
    }

    #[test]
    fn violations_return_core_close_codes() {
        unsafe {
            let server = lbws_new(0, 0.0, 0);
            let h = &mut *server;
            h.conn.start(None);
            let unmasked = b"\x81\x02hi";
            assert_eq!(lbws_receive(server, unmasked.as_ptr(), unmasked.len()), 1002);
            let msg = slice::from_raw_parts(lbws_error_ptr(server), lbws_error_len(server));
            assert!(String::from_utf8_lossy(msg).contains("not masked"));
            assert_eq!(lbws_reply_close(server), 0);
            let close = output(server);
            assert_eq!((close[0], &close[2..4]), (0x88, &b"\x03\xea"[..]), "close 1002");
            assert_eq!(lbws_close(server, 1005, std::ptr::null(), 0), -1, "nothing more to send");
            lbws_free(server);
        }
    }
}
