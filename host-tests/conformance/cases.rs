// The shared conformance list: what a peer sends after the handshake, and what every face
// of lowbit websockets must answer. One file, loaded by the component tests
// (host-tests/tests/conformance.rs) and loadable by core's tests with
// `include!("../../../host-tests/conformance/cases.rs")`; it needs only `std` and
// `lowbit_websockets` (for the compressed cases).
//
// Every case plays a *client* against a *server* endpoint, so frames are masked unless the
// case is about masking. `deflate` says whether the server negotiated permessage-deflate
// (default settings) before the bytes arrive.

/// What the server must do with a case's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Echo `messages` messages, then complete the client's close (which sent `close`).
    Echo { messages: usize, close: u16 },
    /// Fail with the core `Error` variant named `kind`, having sent close code `code`
    /// (`None`: nothing sent, e.g. the transport ended).
    Fail { kind: &'static str, code: Option<u16> },
    /// Fail some way, with a close code in `codes`, without trapping or hanging: for inputs
    /// (garbage) where the first rule broken is an implementation detail.
    FailAnyOf { codes: &'static [u16] },
}

/// One conformance case.
pub struct Case {
    /// Short, unique, snake_case.
    pub name: &'static str,
    /// The server's `max_read_limit` (0 = default 1 MiB).
    pub max_read_limit: usize,
    /// Whether permessage-deflate is on.
    pub deflate: bool,
    /// The bytes the client sends after the handshake.
    pub bytes: Vec<u8>,
    /// The answer.
    pub expect: Expect,
}

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A client frame: FIN, RSV bits (as in the first byte), opcode, payload, masked or not.
/// The length is always minimally encoded.
pub fn frame(fin: bool, rsv: u8, op: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(if fin { 0x80 } else { 0 } | rsv | op);
    let m = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(m | n as u8),
        n if n <= 0xffff => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        out.extend_from_slice(&KEY);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// A masked client frame.
pub fn masked(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
    frame(fin, 0, op, payload, true)
}

/// A masked close frame with `code` and `reason` bytes.
pub fn close(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut body = code.to_be_bytes().to_vec();
    body.extend_from_slice(reason);
    masked(true, 0x8, &body)
}

/// `n` zero bytes compressed as one permessage-deflate message (sync tail stripped).
pub fn deflated_zeros(n: usize) -> Vec<u8> {
    use lowbit_websockets::deflate::{Compressor, MinizCompressor, SYNC_TAIL};
    let mut out = Vec::new();
    let zeros = vec![0u8; 1 << 20];
    let mut c = MinizCompressor::new(9);
    let mut left = n;
    while left > 0 {
        let k = left.min(zeros.len());
        c.compress(&zeros[..k], &mut out).expect("compressing zeros");
        left -= k;
    }
    if out.ends_with(&SYNC_TAIL) {
        out.truncate(out.len() - 4);
    }
    out
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

/// Bytes no WebSocket peer would send (deterministic).
fn garbage(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// The list.
pub fn cases() -> Vec<Case> {
    use Expect::*;
    let fail = |kind, code| Fail { kind, code: Some(code) };
    let c = |name, bytes, expect| Case { name, max_read_limit: 0, deflate: false, bytes, expect };
    let big = vec![0xa5u8; 16 << 20];
    vec![
        c("echo_text_then_close", cat(&[masked(true, 0x1, b"hello"), close(1000, b"")]), Echo { messages: 1, close: 1000 }),
        c(
            "echo_fragmented_with_ping_inside",
            cat(&[masked(false, 0x1, b"he"), masked(true, 0x9, b"p"), masked(true, 0x0, b"llo"), close(1000, b"bye")]),
            Echo { messages: 1, close: 1000 },
        ),
        Case {
            name: "echo_16_mib_binary",
            max_read_limit: 16 << 20,
            deflate: false,
            bytes: cat(&[masked(true, 0x2, &big), close(1000, b"")]),
            expect: Echo { messages: 1, close: 1000 },
        },
        c("unmasked_frame", frame(true, 0, 0x1, b"hi", false), fail("UnmaskedFrame", 1002)),
        c("reserved_opcode_data", masked(true, 0x3, b""), fail("InvalidOpCode", 1002)),
        c("reserved_opcode_control", masked(true, 0xb, b""), fail("InvalidOpCode", 1002)),
        c("rsv2_set", frame(true, 0x20, 0x1, b"x", true), fail("ProtocolReservedBits", 1002)),
        c("rsv1_without_deflate", frame(true, 0x40, 0x2, b"x", true), fail("ProtocolReservedBits", 1002)),
        c("ping_126_bytes", masked(true, 0x9, &[0u8; 126]), fail("ControlFramePayloadTooLarge", 1002)),
        c("fragmented_ping", masked(false, 0x9, b"p"), fail("FragmentedControlFrame", 1002)),
        c("continuation_first", masked(true, 0x0, b"x"), fail("UnexpectedContinuation", 1002)),
        c("text_inside_fragmented_text", cat(&[masked(false, 0x1, b"a"), masked(true, 0x1, b"b")]), fail("ExpectedContinuation", 1002)),
        c("invalid_utf8_text", masked(true, 0x1, &[0xce, 0xba, 0xff]), fail("InvalidUtf8", 1007)),
        c(
            "invalid_utf8_across_fragments",
            cat(&[masked(false, 0x1, &[0xce]), masked(true, 0x0, &[0x41])]),
            fail("InvalidUtf8", 1007),
        ),
        c("close_one_byte_body", masked(true, 0x8, &[0x03]), fail("InvalidClosePayload", 1002)),
        c("close_code_1005", close(1005, b""), fail("InvalidCloseCode", 1002)),
        c("close_code_999", close(999, b""), fail("InvalidCloseCode", 1002)),
        c("close_reason_invalid_utf8", close(1000, &[0xff]), fail("InvalidUtf8", 1007)),
        c("length_not_minimal", vec![0x82, 0x80 | 126, 0x00, 0x05, 1, 2, 3, 4, 0, 0, 0, 0, 0], fail("InvalidPayloadLength", 1002)),
        c(
            "length_top_bit_set",
            vec![0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4],
            fail("InvalidPayloadLength", 1002),
        ),
        Case {
            name: "message_over_limit",
            max_read_limit: 1024,
            deflate: false,
            bytes: masked(true, 0x2, &[7u8; 2000]),
            expect: fail("MessageTooBig", 1009),
        },
        Case {
            name: "fragmented_message_over_limit",
            max_read_limit: 1024,
            deflate: false,
            bytes: cat(&[masked(false, 0x2, &[7u8; 600]), masked(true, 0x0, &[7u8; 600])]),
            expect: fail("MessageTooBig", 1009),
        },
        Case {
            name: "deflate_bomb",
            max_read_limit: 1 << 20,
            deflate: true,
            // 256 MiB of zeros in ~256 KiB: inflation must stop at the 1 MiB limit.
            bytes: frame(true, 0x40, 0x2, &deflated_zeros(256 << 20), true),
            expect: fail("MessageTooBig", 1009),
        },
        Case {
            name: "deflate_invalid_data",
            max_read_limit: 0,
            deflate: true,
            bytes: frame(true, 0x40, 0x2, &[0xff, 0xff, 0xff, 0xff, 0x00], true),
            expect: fail("InvalidCompressedData", 1007),
        },
        Case {
            name: "deflate_rsv1_on_continuation",
            max_read_limit: 0,
            deflate: true,
            bytes: cat(&[frame(false, 0x40, 0x2, &deflated_zeros(10), true), frame(true, 0x40, 0x0, b"", true)]),
            expect: fail("ProtocolReservedBits", 1002),
        },
        c("eof_mid_frame", masked(true, 0x2, &[1u8; 100])[..50].to_vec(), Fail { kind: "AbnormalClosure", code: None }),
        c("eof_without_close", masked(true, 0x2, b"x"), Fail { kind: "AbnormalClosure", code: None }),
        c("garbage_1", garbage(4096, 1), FailAnyOf { codes: &[1002, 1007, 1009] }),
        c("garbage_2", garbage(100_000, 0xdead_beef), FailAnyOf { codes: &[1002, 1007, 1009] }),
        c("http_after_handshake", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), FailAnyOf { codes: &[1002, 1007, 1009] }),
    ]
}
