//! The pooled hot path of the C ABI, for a caller that hands out slices of its own buffers
//! (Deno's `deno/pool.ts`): results are copied straight into `out[off..off + cap]` and count
//! as consumed there, so a message costs the caller no buffer of its own. Lengths are `u32`
//! (cheaper to pass from JavaScript than `usize`).

use std::slice;

use super::{Handle, bytes, handle, lbws_send};
use crate::pack;

/// `cap` bytes of `out` from `off`, or none when `out` is null.
unsafe fn room<'a>(out: *mut u8, off: u32, cap: u32) -> &'a mut [u8] {
    if out.is_null() { &mut [] } else { unsafe { slice::from_raw_parts_mut(out.add(off as usize), cap as usize) } }
}

/// Decodes `data` and packs its events ([`pack`]) straight into `out[off..off + cap]`,
/// followed by the bytes to write, which then count as written. `info` (four `u32`) receives
/// [`pack::Packed::info`]: the events' length, the output's length, 1 when both were written
/// to `out` (0: they did not fit; copy them with [`lbws_take_events`] into a larger buffer),
/// and [`lbws_state`](super::lbws_state). Returns the status of
/// [`lbws_receive`](super::lbws_receive).
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
    let out = unsafe { room(out, off, cap) };
    let (result, packed) = pack::receive(&mut h.conn, data, out, &mut h.events);
    if !info.is_null() {
        unsafe { slice::from_raw_parts_mut(info, 4) }.copy_from_slice(&packed.info(&h.conn));
    }
    h.status(result)
}

/// After [`lbws_receive_at`] reported that its results did not fit: copies the events, then
/// the bytes to write (which then count as written), to `out[off..off + cap]`. Returns their
/// total length, or -1 (nothing copied) when `cap` is too small.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbws_take_events(h: *mut Handle, out: *mut u8, off: u32, cap: u32) -> i32 {
    let h = unsafe { handle(h) };
    let total = h.events.len() + h.conn.output().len();
    if out.is_null() || total > cap as usize || total > i32::MAX as usize {
        return -1;
    }
    pack::spill_output(&mut h.conn, &mut h.events);
    let out = unsafe { room(out, off, cap) };
    out[..total].copy_from_slice(&h.events);
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
    unsafe { lbws_output_at(h, out, off, cap) }
}

/// Copies the bytes to write to `out[off..off + cap]`, where they count as written: returns
/// their length, or -1 (nothing copied) when they do not fit.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbws_output_at(h: *mut Handle, out: *mut u8, off: u32, cap: u32) -> i32 {
    let h = unsafe { handle(h) };
    let output = h.conn.output();
    let n = output.len();
    if n == 0 {
        return 0;
    }
    if out.is_null() || n > cap as usize || n > i32::MAX as usize {
        return -1;
    }
    let out = unsafe { room(out, off, cap) };
    out[..n].copy_from_slice(output);
    h.conn.consume_output(n);
    n as i32
}

#[cfg(test)]
mod tests {
    use super::super::tests::output;
    use super::super::{lbws_free, lbws_new, lbws_output_len, lbws_ping, lbws_send};
    use super::*;

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
}
