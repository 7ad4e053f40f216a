//! Frame headers (RFC 6455 §5.2): opcodes, parsing in all three length forms, encoding.

use crate::error::Error;

/// The longest frame header: 2 bytes, an 8-byte extended length and a 4-byte mask key.
pub const MAX_HEADER_LEN: usize = 14;

/// The longest control-frame payload (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// RSV1, as it sits in the first header byte; permessage-deflate's "compressed" bit.
pub const RSV1: u8 = 0x40;
/// RSV2, as it sits in the first header byte.
pub const RSV2: u8 = 0x20;
/// RSV3, as it sits in the first header byte.
pub const RSV3: u8 = 0x10;

/// The type of a frame (RFC 6455 §5.2). Reserved opcodes are rejected when parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OpCode {
    /// Continues a fragmented text or binary message.
    Continuation = 0,
    /// A UTF-8 text message (or its first fragment).
    Text = 1,
    /// A binary message (or its first fragment).
    Binary = 2,
    /// Starts or answers the closing handshake.
    Close = 8,
    /// Asks the peer for a pong.
    Ping = 9,
    /// Answers a ping, or a unidirectional heartbeat.
    Pong = 10,
}

impl OpCode {
    /// The opcode for a 4-bit value, or `None` for the reserved 3–7 and 11–15.
    pub const fn from_u8(op: u8) -> Option<Self> {
        Some(match op {
            0 => Self::Continuation,
            1 => Self::Text,
            2 => Self::Binary,
            8 => Self::Close,
            9 => Self::Ping,
            10 => Self::Pong,
            _ => return None,
        })
    }

    /// Close, ping and pong: at most 125 bytes, never fragmented, may interleave with fragments.
    pub const fn is_control(self) -> bool {
        self as u8 >= 8
    }

    /// Text or binary: the opcodes that start a message.
    pub const fn is_data(self) -> bool {
        matches!(self, Self::Text | Self::Binary)
    }
}

/// The parsed metadata of one frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// FIN: this is the last frame of its message.
    pub is_final: bool,
    /// The RSV bits as they sit in the first byte (`0x40` = RSV1, `0x20` = RSV2, `0x10` = RSV3).
    pub rsv: u8,
    /// The frame type.
    pub op: OpCode,
    /// The masking key, present on every client-to-server frame.
    pub mask: Option<[u8; 4]>,
    /// The payload length in bytes.
    pub payload_len: u64,
}

impl Header {
    /// Parses a header from the front of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` does not yet hold the whole header (nothing is consumed),
    /// or the header and its length in bytes. Enforces the rules that hold for every frame
    /// regardless of role or extensions: known opcodes, minimal length encoding, the 64-bit
    /// top bit clear, control frames final and at most 125 bytes. Role (masking) and RSV rules
    /// depend on the connection and are checked by the decoder.
    #[inline]
    pub fn parse(buf: &[u8]) -> Result<Option<(Header, usize)>, Error> {
        let [b0, b1, ..] = *buf else { return Ok(None) };
        let op = OpCode::from_u8(b0 & 0x0f).ok_or(Error::InvalidOpCode(b0 & 0x0f))?;
        let is_final = b0 & 0x80 != 0;
        let masked = b1 & 0x80 != 0;
        let (payload_len, mut len) = match b1 & 0x7f {
            126 => {
                let Some(b) = buf.get(2..4) else { return Ok(None) };
                let n = u16::from_be_bytes([b[0], b[1]]) as u64;
                if n < 126 {
                    return Err(Error::InvalidPayloadLength);
                }
                (n, 4)
            }
            127 => {
                let Some(b) = buf.get(2..10) else { return Ok(None) };
                let n = u64::from_be_bytes(b.try_into().expect("8 bytes"));
                if n <= u16::MAX as u64 || n >> 63 != 0 {
                    return Err(Error::InvalidPayloadLength);
                }
                (n, 10)
            }
            n => (n as u64, 2),
        };
        if op.is_control() {
            if payload_len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(Error::ControlFramePayloadTooLarge(payload_len));
            }
            if !is_final {
                return Err(Error::FragmentedControlFrame);
            }
        }
        let mask = if masked {
            let Some(k) = buf.get(len..len + 4) else { return Ok(None) };
            len += 4;
            Some([k[0], k[1], k[2], k[3]])
        } else {
            None
        };
        Ok(Some((Header { is_final, rsv: b0 & 0x70, op, mask, payload_len }, len)))
    }

    /// Writes the header into `out` and returns its length (2 to 14 bytes).
    #[inline]
    pub fn encode(&self, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
        out[0] = (self.is_final as u8) << 7 | (self.rsv & 0x70) | self.op as u8;
        let mask_bit = (self.mask.is_some() as u8) << 7;
        let mut len = if self.payload_len < 126 {
            out[1] = mask_bit | self.payload_len as u8;
            2
        } else if self.payload_len <= u16::MAX as u64 {
            out[1] = mask_bit | 126;
            out[2..4].copy_from_slice(&(self.payload_len as u16).to_be_bytes());
            4
        } else {
            out[1] = mask_bit | 127;
            out[2..10].copy_from_slice(&self.payload_len.to_be_bytes());
            10
        };
        if let Some(key) = self.mask {
            out[len..len + 4].copy_from_slice(&key);
            len += 4;
        }
        len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(h: Header) {
        let mut out = [0; MAX_HEADER_LEN];
        let n = h.encode(&mut out);
        assert_eq!(Header::parse(&out[..n]).unwrap(), Some((h, n)));
        for short in 0..n {
            assert_eq!(Header::parse(&out[..short]).unwrap(), None, "prefix of {short} bytes");
        }
    }

    #[test]
    fn all_three_length_forms_roundtrip() {
        for len in [0, 1, 125, 126, 127, 65535, 65536, 1 << 40, (1 << 63) - 1] {
            for mask in [None, Some([1, 2, 3, 4])] {
                roundtrip(Header { is_final: true, rsv: 0, op: OpCode::Binary, mask, payload_len: len });
            }
        }
        roundtrip(Header { is_final: false, rsv: RSV1 | RSV3, op: OpCode::Text, mask: None, payload_len: 3 });
    }

    #[test]
    fn rejects_non_minimal_and_oversized_lengths() {
        assert!(matches!(Header::parse(&[0x82, 126, 0, 125]), Err(Error::InvalidPayloadLength)));
        assert!(matches!(Header::parse(&[0x82, 127, 0, 0, 0, 0, 0, 0, 0xff, 0xff]), Err(Error::InvalidPayloadLength)));
        assert!(matches!(Header::parse(&[0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0]), Err(Error::InvalidPayloadLength)));
    }

    #[test]
    fn rejects_reserved_opcodes_and_bad_control_frames() {
        for op in [3u8, 4, 5, 6, 7, 11, 12, 13, 14, 15] {
            assert!(matches!(Header::parse(&[0x80 | op, 0]), Err(Error::InvalidOpCode(o)) if o == op));
        }
        assert!(matches!(Header::parse(&[0x89, 126, 0, 126]), Err(Error::ControlFramePayloadTooLarge(126))));
        assert!(matches!(Header::parse(&[0x09, 0]), Err(Error::FragmentedControlFrame)));
    }
}
