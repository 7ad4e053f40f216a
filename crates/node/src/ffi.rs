//! A plain C ABI over the same [`Conn`], for `Deno.dlopen` (and any C caller).
//!
//! Every function takes the handle from [`lbws_new`]. Byte inputs are `(pointer, length)`;
//! byte outputs stay inside the handle and are read through `*_ptr`/`*_len` pairs until the
//! next call that changes them. Status returns: `0` success, `1` incomplete (handshake needs
//! more bytes), a close code (1002, 1007, 1009, ...) when a protocol violation was answered
//! with a close frame, an HTTP status (400–599) when a request was refused, `-1` any other
//! error. [`lbws_error_ptr`]/[`lbws_error_len`] hold the message of the last error.
//!
//! Events of [`lbws_receive`] are packed into one buffer ([`lbws_events_ptr`]): per event a
//! 8-byte head — kind (`u8`: 1 text, 2 binary, 8 close, 9 ping, 10 pong), a zero byte, the
//! close code (`u16` little-endian, 0 unless close), the payload length (`u32` LE) — then the
//! payload (the close reason for a close).

#![allow(unsafe_code, clippy::missing_safety_doc)]

use std::slice;

use lowbit_websockets::Role;
use lowbit_websockets::upgrade::SubprotocolPolicy;

use crate::glue::{self, Conn, DEFAULT_MAX_FRAME, DEFAULT_MAX_PAYLOAD, DeflateSettings, Failure, Handshake};

/// A connection handle.
pub struct Handle {
    conn: Conn,
    events: Vec<u8>,
    error: String,
    /// Handshake results: bytes used, protocol and extensions chosen, request path.
    used: usize,
    info: String,
}

impl Handle {
    fn status(&mut self, result: Result<(), Failure>) -> i32 {
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

unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
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

unsafe fn handle<'a>(h: *mut Handle) -> &'a mut Handle {
    unsafe { &mut *h }
}

/// Packs deflate settings: bit 0 on, bit 1 server_no_context_takeover, bit 2
/// client_no_context_takeover; `window` 0 or 8–15 (client: server_max_window_bits);
/// `level` 0–9 or 255 for the default; `threshold` u32::MAX for the default.
fn deflate(flags: u32, window: u32, level: u32, threshold: u32) -> Option<DeflateSettings> {
    (flags & 1 != 0).then(|| DeflateSettings {
        server_no_context_takeover: flags & 2 != 0,
        client_no_context_takeover: flags & 4 != 0,
        server_max_window_bits: (window != 0).then_some(window.min(255) as u8),
        level: (level <= 9).then_some(level as u8),
        threshold: (threshold != u32::MAX).then_some(threshold as usize),
    })
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
    let settings = deflate(deflate_flags, window, level, threshold);
    let result = h.conn.accept(head, SubprotocolPolicy::FirstSupported(supported), settings.as_ref());
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
    let settings = deflate(deflate_flags, window, level, threshold);
    let result = h.conn.client_request(host, path, protocols, settings.as_ref());
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
    h.events.clear();
    let events = &mut h.events;
    let result = h.conn.receive(unsafe { bytes(data, len) }, |event| {
        let (kind, code, payload) = glue::event_parts(event);
        events.extend_from_slice(&event_head(kind, code, payload.len()));
        events.extend_from_slice(payload);
    });
    h.status(result)
}

/// The hot path of a caller that hands out slices of its own buffers (Deno's `mod.ts` pool):
/// decodes `data` and writes the events (the layout of [`lbws_receive`]) straight into
/// `out[off..off + cap]`, followed by the bytes to write, which then count as written.
/// Lengths are `u32` (cheaper to pass from JavaScript than `usize`). `info` (four `u32`)
/// receives the events' length, the output's length, 1 when both were written to `out` (0:
/// they did not fit; copy them with [`lbws_take_events`] into a larger buffer), and
/// [`lbws_state`]. Returns the status of [`lbws_receive`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbws_receive_at(
    h: *mut Handle,
    data: *const u8,
    len: u32,
    out: *mut u8,
    off: u32,
    cap: u32,
    info: *mut u32,
) -> i32 {
    let h = unsafe { handle(h) };
    let data = unsafe { bytes(data, len as usize) };
    let out: &mut [u8] =
        if out.is_null() { &mut [] } else { unsafe { slice::from_raw_parts_mut(out.add(off as usize), cap as usize) } };
    let Handle { conn, events, .. } = h;
    events.clear();
    // Events go to `out` while they fit; from the first one that does not, all of them go to
    // `events` (for lbws_take_events).
    let mut pos = 0;
    let mut spilled = false;
    let result = conn.receive(data, |event| {
        let (kind, code, payload) = glue::event_parts(event);
        let head = event_head(kind, code, payload.len());
        if !spilled && out.len() - pos >= 8 + payload.len() {
            out[pos..pos + 8].copy_from_slice(&head);
            out[pos + 8..pos + 8 + payload.len()].copy_from_slice(payload);
            pos += 8 + payload.len();
        } else {
            if !spilled {
                events.extend_from_slice(&out[..pos]);
                spilled = true;
            }
            events.extend_from_slice(&head);
            events.extend_from_slice(payload);
        }
    });
    let status = h.status(result);
    let output = h.conn.output();
    let output_len = output.len();
    let events_len = if spilled { h.events.len() } else { pos };
    let fits = !spilled && out.len() - pos >= output_len;
    if fits {
        out[pos..pos + output_len].copy_from_slice(output);
        h.conn.consume_output(output_len);
    } else if !spilled {
        h.events.extend_from_slice(&out[..pos]);
    }
    if !info.is_null() {
        let info = unsafe { slice::from_raw_parts_mut(info, 4) };
        info[0] = events_len as u32;
        info[1] = output_len as u32;
        info[2] = u32::from(fits);
        info[3] = h.conn.state_bits();
    }
    status
}

/// After [`lbws_receive_at`] reported that its results did not fit: copies the events, then
/// the bytes to write (which then count as written), to `out[off..off + cap]`. Returns their
/// total length, or -1 (nothing copied) when `cap` is too small.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbws_take_events(h: *mut Handle, out: *mut u8, off: u32, cap: u32) -> i32 {
    let h = unsafe { handle(h) };
    let (events, output) = (&h.events, h.conn.output());
    let total = events.len() + output.len();
    if out.is_null() || total > cap as usize || total > i32::MAX as usize {
        return -1;
    }
    let out = unsafe { slice::from_raw_parts_mut(out.add(off as usize), total) };
    out[..events.len()].copy_from_slice(events);
    out[events.len()..].copy_from_slice(output);
    let n = output.len();
    h.conn.consume_output(n);
    h.events.clear();
    total as i32
}

/// [`lbws_send`] with `u32` lengths, then the bytes to write copied to `out[off..off + cap]`,
/// where they count as written: returns their length, or -1 when they did not fit (they wait
/// in `lbws_output_*`; [`lbws_output_at`] copies them), or -2 when the send failed (status
/// in `lbws_error_*`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbws_send_at(
    h: *mut Handle,
    op: u32,
    data: *const u8,
    len: u32,
    compress: u32,
    fin: u32,
    out: *mut u8,
    off: u32,
    cap: u32,
) -> i32 {
    if unsafe { lbws_send(h, op, data, len as usize, compress, fin) } != 0 {
        return -2;
    }
    unsafe { output_at(h, out, off, cap) }
}

/// Copies the bytes to write to `out[off..off + cap]`, where they count as written: returns
/// their length, or -1 (nothing copied) when they do not fit.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbws_output_at(h: *mut Handle, out: *mut u8, off: u32, cap: u32) -> i32 {
    unsafe { output_at(h, out, off, cap) }
}

unsafe fn output_at(h: *mut Handle, out: *mut u8, off: u32, cap: u32) -> i32 {
    let h = unsafe { handle(h) };
    let output = h.conn.output();
    let n = output.len();
    if n == 0 {
        return 0;
    }
    if out.is_null() || n > cap as usize || n > i32::MAX as usize {
        return -1;
    }
    unsafe { slice::from_raw_parts_mut(out.add(off as usize), n) }.copy_from_slice(output);
    h.conn.consume_output(n);
    n as i32
}

fn event_head(kind: u8, code: u16, len: usize) -> [u8; 8] {
    let mut head = [kind, 0, 0, 0, 0, 0, 0, 0];
    head[2..4].copy_from_slice(&code.to_le_bytes());
    head[4..8].copy_from_slice(&(len as u32).to_le_bytes());
    head
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

/// Queues a message (`op` 1 text, 2 binary); `fin` 0 sends a fragment; `compress` 1 compresses
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
        Err(_) => {
            Err(Failure { code: None, message: format!("invalid close code {code}"), kind: "InvalidCloseCode".into() })
        }
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

/// Bit 0: our close frame is queued; bit 1: the peer's close arrived or the connection
/// failed; so 3 means the close handshake is complete.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbws_state(h: *mut Handle) -> u32 {
    unsafe { handle(h) }.conn.state_bits()
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe fn output(h: *mut Handle) -> Vec<u8> {
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
    fn receive_at_and_send_at_write_into_caller_buffers_or_say_they_did_not_fit() {
        unsafe {
            let (server, client) = (lbws_new(0, 0.0, 0), lbws_new(1, 0.0, 0));
            (*server).conn.start(None);
            (*client).conn.start(None);
            assert_eq!(lbws_send(client, 1, b"hello".as_ptr(), 5, 1, 1), 0);
            assert_eq!(lbws_ping(client, b"p".as_ptr(), 1), 0);
            let wire = output(client);
            let (mut out, mut info) = ([0u8; 64], [0u32; 4]);
            let rc =
                lbws_receive_at(server, wire.as_ptr(), wire.len() as u32, out.as_mut_ptr(), 4, 60, info.as_mut_ptr());
            assert_eq!(rc, 0);
            assert_eq!(info, [8 + 5 + 8 + 1, 3, 1, 0], "events, the pong, fitted, open");
            assert_eq!(&out[4..17], b"\x01\0\0\0\x05\0\0\0hello");
            assert_eq!(&out[26..29], b"\x8a\x01p", "the pong follows the events");
            assert_eq!(lbws_output_len(server), 0, "copied out counts as written");

            // Too small: nothing fits, lbws_take_events copies it all afterwards.
            assert_eq!(lbws_send(client, 2, [7u8; 40].as_ptr(), 40, 1, 1), 0);
            assert_eq!(lbws_ping(client, b"q".as_ptr(), 1), 0);
            let wire = output(client);
            let rc =
                lbws_receive_at(server, wire.as_ptr(), wire.len() as u32, out.as_mut_ptr(), 0, 30, info.as_mut_ptr());
            assert_eq!((rc, info), (0, [48 + 9, 3, 0, 0]));
            assert_eq!(lbws_take_events(server, out.as_mut_ptr(), 0, 59), -1, "cap too small");
            assert_eq!(lbws_take_events(server, out.as_mut_ptr(), 2, 62), 60);
            assert_eq!((out[2], &out[10..50]), (2, &[7u8; 40][..]));
            assert_eq!((out[50], out[54], out[58]), (9, 1, b'q'), "then the ping event");
            assert_eq!(&out[59..62], b"\x8a\x01q");

            assert_eq!(lbws_send_at(server, 1, b"abc".as_ptr(), 3, 1, 1, out.as_mut_ptr(), 60, 4), -1);
            assert_eq!(lbws_output_at(server, out.as_mut_ptr(), 1, 5), 5);
            assert_eq!(&out[1..6], b"\x81\x03abc");
            assert_eq!(lbws_send_at(server, 1, b"abc".as_ptr(), 3, 1, 1, out.as_mut_ptr(), 10, 5), 5);
            assert_eq!(&out[10..15], b"\x81\x03abc");
            assert_eq!(lbws_send_at(server, 9, b"abc".as_ptr(), 3, 1, 1, out.as_mut_ptr(), 10, 5), -2, "not a data op");
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
