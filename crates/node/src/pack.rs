//! The one event packing both faces hand to JavaScript: per event an
//! [`EVENT_HEAD_LEN`](crate::contract::EVENT_HEAD_LEN)-byte head — kind (`u8`, an `EVENT_*`
//! constant), a zero byte, the close code (`u16` LE, 0 unless a close), the payload length
//! (`u32` LE) — then the payload (the close reason for a close); after the last event, the
//! bytes to write.
//!
//! [`receive`] packs straight into a buffer the caller owns (a slice of Deno's pool, Node's
//! scratch buffer), so the common case costs one copy of each payload and no allocation.

use lowbit_websockets::Event;

use crate::contract::{EVENT_CLOSE, EVENT_HEAD_LEN, EVENT_PING, EVENT_PONG};
use crate::glue::{Conn, Failure};

/// [`EVENT_HEAD_LEN`] as a length.
pub const HEAD_LEN: usize = EVENT_HEAD_LEN as usize;

/// An event's packed head, and its payload.
pub fn event(event: Event<'_>) -> ([u8; HEAD_LEN], &[u8]) {
    let (kind, code, payload) = match event {
        Event::Message { op, payload, .. } => (op as u32, 0, payload),
        Event::Ping(p) => (EVENT_PING, 0, p),
        Event::Pong(p) => (EVENT_PONG, 0, p),
        Event::Close { frame, .. } => (EVENT_CLOSE, frame.code_or_no_status().0, frame.reason.as_bytes()),
    };
    let mut head = [0; HEAD_LEN];
    // Kinds are opcodes (< 16). Lengths are `u32` in the format (cheap to read in
    // JavaScript); a message of 4 GiB or more needs a `maxPayload` far above the default.
    head[0] = kind as u8;
    head[2..4].copy_from_slice(&code.to_le_bytes());
    head[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    (head, payload)
}

/// What [`receive`] packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packed {
    /// Bytes of packed events.
    pub events_len: usize,
    /// Bytes to write.
    pub output_len: usize,
    /// Both are in `out`: the events first, then the bytes to write, which count as written.
    /// Otherwise the events are in `spill` and the bytes to write still wait in the session.
    pub fits: bool,
}

/// Decodes `data`, packing its events into `out` while they fit, followed by the bytes to
/// write. From the first event that does not fit, every event goes to `spill` (cleared first)
/// instead, and the bytes to write stay in the session.
pub fn receive(conn: &mut Conn, data: &[u8], out: &mut [u8], spill: &mut Vec<u8>) -> (Result<(), Failure>, Packed) {
    spill.clear();
    let mut pos = 0;
    let mut spilled = false;
    let result = conn.receive(data, |e| {
        let (head, payload) = event(e);
        let end = pos + HEAD_LEN + payload.len();
        if !spilled && end <= out.len() {
            out[pos..pos + HEAD_LEN].copy_from_slice(&head);
            out[pos + HEAD_LEN..end].copy_from_slice(payload);
            pos = end;
        } else {
            if !spilled {
                spill.extend_from_slice(&out[..pos]);
                spilled = true;
            }
            spill.extend_from_slice(&head);
            spill.extend_from_slice(payload);
        }
    });
    let output = conn.output();
    let output_len = output.len();
    let fits = !spilled && out.len() - pos >= output_len;
    if fits {
        out[pos..pos + output_len].copy_from_slice(output);
        conn.consume_output(output_len);
    } else if !spilled {
        spill.extend_from_slice(&out[..pos]);
    }
    let events_len = if fits { pos } else { spill.len() };
    (result, Packed { events_len, output_len, fits })
}

impl Packed {
    /// The four `u32`s both faces hand back beside the packed bytes: events' length, output's
    /// length, 1 when both are in `out` (0: take them from the spill), and the session's
    /// [`Conn::state_bits`].
    pub fn info(&self, conn: &Conn) -> [u32; 4] {
        // Lengths past `u32` do not fit the format; the callers' buffers are far smaller.
        [self.events_len as u32, self.output_len as u32, u32::from(self.fits), conn.state_bits()]
    }
}

/// After a [`receive`] that did not fit: appends the bytes to write to the spilled events,
/// where they count as written.
pub fn spill_output(conn: &mut Conn, spill: &mut Vec<u8>) {
    let output = conn.output();
    let n = output.len();
    spill.extend_from_slice(output);
    conn.consume_output(n);
}
