//! The sans-IO write side: frames in, wire bytes out.

use crate::close::{CloseCode, MAX_CLOSE_REASON};
use crate::error::{Error, Misuse};
use crate::frame::{Header, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode};
use crate::mask::apply_mask;
use crate::role::Role;

/// Mask keys from the OS random source, fetched in batches so a small message does not pay a
/// system call for its four bytes.
#[derive(Debug)]
struct MaskKeys {
    pool: [u8; 256],
    used: usize,
}

impl MaskKeys {
    fn new() -> Self {
        Self { pool: [0; 256], used: 256 }
    }

    fn next(&mut self) -> Result<[u8; 4], Error> {
        if self.used == self.pool.len() {
            getrandom::fill(&mut self.pool).map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?;
            self.used = 0;
        }
        let k = &self.pool[self.used..self.used + 4];
        self.used += 4;
        Ok([k[0], k[1], k[2], k[3]])
    }
}

/// Turns frames into wire bytes for one role, appending to a buffer the caller owns.
#[derive(Debug)]
pub struct Encoder {
    role: Role,
    keys: MaskKeys,
}

impl Encoder {
    /// An encoder for `role`: a client masks with fresh OS-random keys, a server does not mask.
    pub fn new(role: Role) -> Self {
        Self { role, keys: MaskKeys::new() }
    }

    /// The role this encoder writes for.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Appends one frame to `out`. Control frames must be final and carry at most 125 bytes.
    #[inline]
    pub fn encode_frame(
        &mut self,
        is_final: bool,
        rsv: u8,
        op: OpCode,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        out.reserve(MAX_HEADER_LEN + payload.len());
        let mask = self.encode_header(is_final, rsv, op, payload.len(), out)?;
        match mask {
            None => out.extend_from_slice(payload),
            Some(key) => {
                // Copy, then mask in place: two passes, but both vectorize wherever this is
                // inlined (an inlined `copy_masked` can lose that), and nothing is zero-filled.
                let old = out.len();
                out.extend_from_slice(payload);
                apply_mask(&mut out[old..], key, 0);
            }
        }
        Ok(())
    }

    /// Appends only the header of a frame with a `len`-byte payload, and returns the mask key the
    /// payload must be XORed with (`None` for a server). For a server this lets a large payload
    /// go to the socket straight from the caller's buffer, in a vectored write after the header.
    #[inline]
    pub fn encode_header(
        &mut self,
        is_final: bool,
        rsv: u8,
        op: OpCode,
        len: usize,
        out: &mut Vec<u8>,
    ) -> Result<Option<[u8; 4]>, Error> {
        if op.is_control() {
            if len > MAX_CONTROL_PAYLOAD {
                return Err(Error::Misuse(Misuse::ControlPayloadTooLong(len)));
            }
            if !is_final {
                return Err(Error::Misuse(Misuse::FragmentedControl));
            }
        }
        let mask = match self.role {
            Role::Client => Some(self.keys.next()?),
            Role::Server => None,
        };
        let header = Header { is_final, rsv: rsv & 0x70, op, mask, payload_len: len as u64 };
        let mut head = [0; MAX_HEADER_LEN];
        let n = header.encode(&mut head);
        out.extend_from_slice(&head[..n]);
        Ok(mask)
    }

    /// Appends `payload` as frames of at most `max_chunk` bytes: the first carries `op` and
    /// `rsv`, the rest are continuations; FIN goes on the last one if `is_final`. An empty
    /// payload is one empty frame. Splitting a data frame this way does not change the message.
    pub fn encode_fragments(
        &mut self,
        is_final: bool,
        rsv: u8,
        op: OpCode,
        payload: &[u8],
        max_chunk: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        if op.is_control() || payload.len() <= max_chunk {
            return self.encode_frame(is_final, rsv, op, payload, out);
        }
        let mut chunks = payload.chunks(max_chunk.max(1)).peekable();
        let (mut op, mut rsv) = (op, rsv);
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            self.encode_frame(is_final && last, rsv, op, chunk, out)?;
            (op, rsv) = (OpCode::Continuation, 0);
        }
        Ok(())
    }

    /// Appends a close frame with `code` and `reason`. The code must be sendable
    /// ([`CloseCode::is_sendable`]) and the reason at most 123 bytes.
    pub fn encode_close(&mut self, code: CloseCode, reason: &str, out: &mut Vec<u8>) -> Result<(), Error> {
        if !code.is_sendable() {
            return Err(Error::Misuse(Misuse::UnsendableCloseCode(code.0)));
        }
        if reason.len() > MAX_CLOSE_REASON {
            return Err(Error::Misuse(Misuse::ControlPayloadTooLong(2 + reason.len())));
        }
        let mut body = [0u8; MAX_CONTROL_PAYLOAD];
        body[..2].copy_from_slice(&code.0.to_be_bytes());
        body[2..2 + reason.len()].copy_from_slice(reason.as_bytes());
        self.encode_frame(true, 0, OpCode::Close, &body[..2 + reason.len()], out)
    }
}

/// Cuts `reason` to at most 123 bytes on a character boundary, for close frames built from
/// error messages.
pub fn truncate_reason(reason: &str) -> &str {
    if reason.len() <= MAX_CLOSE_REASON {
        return reason;
    }
    let mut end = MAX_CLOSE_REASON;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}
