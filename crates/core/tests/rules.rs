//! One test per RFC 6455 rule, through `Conn` in both roles: the exact error, the close frame on
//! the wire (1002 / 1007 / 1009), then `WebSocketClosed` — with the input fed whole and a byte at a
//! time — plus the write-side rules (fragmentation, masking, close codes, streaming, close handshake).

mod common;

use common::*;
use lowbit_websockets::{CloseCode, Config, Conn, Error, Misuse, OpCode, Role};

const ROLES: [Role; 2] = [Role::Server, Role::Client];

/// Every code that may appear in a close frame's body, at the edges of their ranges.
const VALID_CLOSE_CODES: [u16; 16] =
    [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999];
/// Codes that must never appear in a close frame's body.
const INVALID_CLOSE_CODES: [u16; 11] = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000];

/// The connection under test: its role and settings.
#[derive(Debug, Clone, Copy)]
struct Setup {
    role: Role,
    limit: usize,
    chunk: usize,
    rsv: u8,
}

impl Setup {
    fn new(role: Role) -> Self {
        Self { role, limit: 0, chunk: 0, rsv: 0 }
    }

    fn limit(self, limit: usize) -> Self {
        Self { limit, ..self }
    }

    fn chunk(self, chunk: usize) -> Self {
        Self { chunk, ..self }
    }

    fn allow_rsv(self, rsv: u8) -> Self {
        Self { rsv, ..self }
    }

    /// A `Conn` of this role (`Conn::new` / `Conn::new_client`) reading `input`.
    fn open(&self, input: &[u8], feed: Feed) -> Conn<Script> {
        self.wrap(Script::new(input, feed))
    }

    /// A `Conn` of this role over `script`.
    fn wrap(&self, script: Script) -> Conn<Script> {
        let mut conn = match self.role {
            Role::Server => Conn::new(script, self.limit, self.chunk),
            Role::Client => Conn::new_client(script, self.limit, self.chunk),
        };
        if self.rsv != 0 {
            conn.allow_reserved_bits(self.rsv);
        }
        conn
    }
}

type Messages = Vec<(OpCode, Vec<u8>)>;
/// What `read_message_ext` returns, owned.
type ReadExt = (OpCode, u8, Vec<u8>);
/// A frame's `(fin, opcode, payload length)`.
type Shape = (bool, u8, usize);

/// What a connection made of an input: the messages `read_message` returned (a peer close
/// included, as `(Close, body)`), the error that ended reading, and the frames it wrote.
#[derive(Debug)]
struct Outcome {
    messages: Messages,
    end: Error,
    wire: Vec<WireFrame>,
}

fn read_all(setup: Setup, input: &[u8], feed: Feed) -> Outcome {
    let mut conn = setup.open(input, feed);
    let mut buf = Vec::new();
    let mut messages = Vec::new();
    let end = loop {
        match conn.read_message(&mut buf) {
            Ok((op, payload)) => messages.push((op, payload.to_vec())),
            Err(e) => break e,
        }
        assert!(messages.len() < 10_000, "read loop does not end");
    };
    let wire = conn.get_ref().frames();
    assert_masking(&wire, setup.role);
    Outcome { messages, end, wire }
}

/// [`read_all`] with the input whole and a byte at a time; both must agree.
#[track_caller]
fn read_both(setup: Setup, input: &[u8]) -> Outcome {
    let whole = read_all(setup, input, Feed::Whole);
    let bytewise = read_all(setup, input, Feed::Bytewise);
    assert_eq!(whole.messages, bytewise.messages, "{setup:?}: messages differ when fed a byte at a time");
    assert_eq!(format!("{:?}", whole.end), format!("{:?}", bytewise.end), "{setup:?}: end differs bytewise");
    // Mask keys are random per frame; everything else must match.
    let unkeyed = |wire: &[WireFrame]| {
        wire.iter().map(|f| (f.fin, f.rsv, f.opcode, f.mask.is_some(), f.payload.clone())).collect::<Vec<_>>()
    };
    assert_eq!(unkeyed(&whole.wire), unkeyed(&bytewise.wire), "{setup:?}: wire differs when fed a byte at a time");
    whole
}

/// Reads `input` (whole, then a byte at a time) and asserts: `before` messages come out, then
/// the next read fails with an error accepted by `is_expected`, whose close code is `code`;
/// the wire holds pongs (answers to pings) and then exactly one close frame with `code`, masked
/// as the role requires; a further read returns `WebSocketClosed` and writes nothing.
#[track_caller]
fn check_failure(
    setup: Setup,
    input: &[u8],
    before: &[(OpCode, &[u8])],
    what: &str,
    is_expected: &dyn Fn(&Error) -> bool,
    code: u16,
) {
    for feed in FEEDS {
        let ctx = format!("{:?} {feed:?} (expecting {what})", setup.role);
        let mut conn = setup.open(input, feed);
        let mut buf = Vec::new();
        for (op, payload) in before {
            match conn.read_message(&mut buf) {
                Ok((got_op, got)) => assert_eq!((got_op, got), (*op, *payload), "{ctx}"),
                Err(e) => panic!("{ctx}: expected a message before the failure, got {e:?}"),
            }
        }
        let err = match conn.read_message(&mut buf) {
            Ok((op, payload)) => panic!("{ctx}: read succeeded with {op:?} of {} bytes", payload.len()),
            Err(e) => e,
        };
        assert!(is_expected(&err), "{ctx}: got {err:?}");
        assert_eq!(err.close_code(), Some(CloseCode(code)), "{ctx}: the error's own close code");

        let wire = conn.get_ref().frames();
        assert_masking(&wire, setup.role);
        let (last, rest) = wire.split_last().unwrap_or_else(|| panic!("{ctx}: no close frame written"));
        assert!(rest.iter().all(|f| f.opcode == OP_PONG), "{ctx}: only pongs may precede the close: {wire:?}");
        assert_eq!(last.opcode, OP_CLOSE, "{ctx}: last frame written: {last:?}");
        assert_eq!(last.close_code(), Some(code), "{ctx}: close code on the wire");
        assert!(std::str::from_utf8(last.close_reason()).is_ok(), "{ctx}: close reason must be UTF-8");

        let written = conn.get_ref().written.len();
        assert!(matches!(conn.read_message(&mut buf), Err(Error::WebSocketClosed)), "{ctx}: second read");
        assert!(matches!(conn.read_message(&mut buf), Err(Error::WebSocketClosed)), "{ctx}: third read");
        assert_eq!(conn.get_ref().written.len(), written, "{ctx}: nothing is written after the failure");
    }
}

/// `assert_fails!(setup, input, [messages before,] ErrorPattern [if guard], close_code)`
macro_rules! assert_fails {
    ($setup:expr, $input:expr, after [$($before:expr),*], $pat:pat $(if $guard:expr)?, $code:expr) => {
        check_failure(
            $setup,
            &$input,
            &[$($before),*],
            stringify!($pat $(if $guard)?),
            &|e: &Error| matches!(e, $pat $(if $guard)?),
            $code,
        )
    };
    ($setup:expr, $input:expr, $pat:pat $(if $guard:expr)?, $code:expr) => {
        assert_fails!($setup, $input, after [], $pat $(if $guard)?, $code)
    };
}

/// A payload of `n` bytes that is valid UTF-8 (ASCII) and easy to tell apart.
fn filler(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

// ---------------------------------------------------------------------------------------------
// Masking (RFC 6455 §5.1)

#[test]
fn server_rejects_unmasked_frame() {
    let setup = Setup::new(Role::Server);
    for frame in [text("hi"), binary("hi"), ping("hi"), pong(""), close(1000, ""), text("hi").fin(false)] {
        assert_fails!(setup, frame.build(), Error::UnmaskedFrame, 1002);
    }
}

#[test]
fn client_rejects_masked_frame() {
    let setup = Setup::new(Role::Client);
    for frame in [text("hi"), binary("hi"), ping("hi"), pong(""), close(1000, ""), text("hi").fin(false)] {
        assert_fails!(setup, frame.mask(TEST_KEY).build(), Error::MaskedFrame, 1002);
    }
}

#[test]
fn each_role_reads_frames_masked_as_its_peer_must() {
    for role in ROLES {
        let out = read_both(Setup::new(role), &stream([text("héllo").to(role), binary([0, 255, 7]).to(role)]));
        assert_eq!(out.messages, vec![(OpCode::Text, "héllo".into()), (OpCode::Binary, vec![0, 255, 7])]);
        assert!(matches!(out.end, Error::AbnormalClosure), "{role:?}: end of stream without a close: {:?}", out.end);
        assert!(out.wire.is_empty(), "{role:?}: nothing to answer: {:?}", out.wire);
    }
}

#[test]
fn server_accepts_an_all_zero_mask_key() {
    let out = read_both(Setup::new(Role::Server), &text("zero key").mask([0; 4]).build());
    assert_eq!(out.messages, vec![(OpCode::Text, b"zero key".to_vec())]);
}

// ---------------------------------------------------------------------------------------------
// Opcodes (RFC 6455 §5.2)

macro_rules! reserved_opcode_tests {
    ($($name:ident = $op:literal),* $(,)?) => {$(
        #[test]
        fn $name() {
            for role in ROLES {
                assert_fails!(Setup::new(role), RawFrame::new($op, "x").to(role), Error::InvalidOpCode($op), 1002);
                assert_fails!(Setup::new(role), RawFrame::new($op, "").fin(false).to(role), Error::InvalidOpCode($op), 1002);
                // Inside a fragmented message, too.
                let input = stream([text("a").fin(false).to(role), RawFrame::new($op, "x").to(role)]);
                assert_fails!(Setup::new(role), input, Error::InvalidOpCode($op), 1002);
            }
        }
    )*};
}

reserved_opcode_tests!(
    rejects_reserved_opcode_3 = 3,
    rejects_reserved_opcode_4 = 4,
    rejects_reserved_opcode_5 = 5,
    rejects_reserved_opcode_6 = 6,
    rejects_reserved_opcode_7 = 7,
    rejects_reserved_opcode_11 = 11,
    rejects_reserved_opcode_12 = 12,
    rejects_reserved_opcode_13 = 13,
    rejects_reserved_opcode_14 = 14,
    rejects_reserved_opcode_15 = 15,
);

// ---------------------------------------------------------------------------------------------
// Reserved bits (RFC 6455 §5.2): an error unless an extension claims them

/// `bit` is rejected on a data frame, on each control frame and on a continuation.
fn check_rsv_rejected(setup: Setup, bit: u8) {
    let role = setup.role;
    for frame in [text("x"), binary("x"), text("x").fin(false), ping("x"), pong("x"), close(1000, "")] {
        assert_fails!(setup, frame.rsv(bit).to(role), Error::ProtocolReservedBits { rsv } if *rsv == bit, 1002);
    }
    let input = stream([text("a").fin(false).to(role), cont("b").rsv(bit).to(role)]);
    assert_fails!(setup, input, Error::ProtocolReservedBits { rsv } if *rsv == bit, 1002);
}

#[test]
fn rejects_rsv1_without_extension() {
    for role in ROLES {
        check_rsv_rejected(Setup::new(role), 0x40);
    }
}

#[test]
fn rejects_rsv2_without_extension() {
    for role in ROLES {
        check_rsv_rejected(Setup::new(role), 0x20);
    }
}

#[test]
fn rejects_rsv3_without_extension() {
    for role in ROLES {
        check_rsv_rejected(Setup::new(role), 0x10);
    }
}

#[test]
fn allowed_rsv1_passes_on_the_first_data_frame() {
    // Without deflate, RSV1 messages are handed out as they are, with their RSV bits.
    for role in ROLES {
        let setup = Setup::new(role).allow_rsv(0x40);
        let cases: [(&str, Vec<u8>, ReadExt); 4] = [
            ("single frame", binary([1, 2, 3]).rsv(0x40).to(role), (OpCode::Binary, 0x40, vec![1, 2, 3])),
            (
                "fragmented",
                stream([text("ab").rsv(0x40).fin(false).to(role), cont("cd").to(role)]),
                (OpCode::Text, 0x40, b"abcd".to_vec()),
            ),
            (
                "single frame longer than the read buffer",
                binary(filler(5000)).rsv(0x40).to(role),
                (OpCode::Binary, 0x40, filler(5000)),
            ),
            ("no RSV bits", text("plain").to(role), (OpCode::Text, 0, b"plain".to_vec())),
        ];
        for (what, input, expected) in cases {
            for feed in FEEDS {
                let mut conn = setup.open(&input, feed);
                let mut buf = Vec::new();
                let got = conn.read_message_ext(&mut buf).map(|(op, rsv, p)| (op, rsv, p.to_vec()));
                assert_eq!(got.as_ref().ok(), Some(&expected), "{role:?} {feed:?} {what}: {got:?}");
            }
        }
    }
}

#[test]
fn allowed_rsv1_is_still_rejected_on_continuation_frames() {
    for role in ROLES {
        let setup = Setup::new(role).allow_rsv(0x40);
        let input = stream([text("a").rsv(0x40).fin(false).to(role), cont("b").rsv(0x40).to(role)]);
        assert_fails!(setup, input, Error::ProtocolReservedBits { rsv: 0x40 }, 1002);
        let input = stream([binary("a").fin(false).to(role), cont("b").rsv(0x40).to(role)]);
        assert_fails!(setup, input, Error::ProtocolReservedBits { rsv: 0x40 }, 1002);
    }
}

#[test]
fn allowed_rsv1_is_still_rejected_on_control_frames() {
    for role in ROLES {
        let setup = Setup::new(role).allow_rsv(0x40);
        for frame in [ping("x"), pong("x"), close(1000, "")] {
            assert_fails!(setup, frame.rsv(0x40).to(role), Error::ProtocolReservedBits { rsv: 0x40 }, 1002);
        }
    }
}

#[test]
fn allowed_rsv1_does_not_allow_rsv2_or_rsv3() {
    for role in ROLES {
        let setup = Setup::new(role).allow_rsv(0x40);
        for bit in [0x20, 0x10, 0x40 | 0x20] {
            assert_fails!(setup, binary("x").rsv(bit).to(role), Error::ProtocolReservedBits { rsv } if *rsv == bit, 1002);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Payload length encoding (RFC 6455 §5.2: "the minimal number of bytes MUST be used")

#[test]
fn rejects_non_minimal_16bit_length() {
    for role in ROLES {
        for n in [0, 1, 125] {
            assert_fails!(Setup::new(role), binary(filler(n)).len16().to(role), Error::InvalidPayloadLength, 1002);
        }
    }
}

#[test]
fn rejects_non_minimal_64bit_length() {
    for role in ROLES {
        for n in [0, 125, 126, 65535] {
            assert_fails!(Setup::new(role), binary(filler(n)).len64().to(role), Error::InvalidPayloadLength, 1002);
        }
    }
}

#[test]
fn rejects_64bit_length_with_top_bit_set() {
    for role in ROLES {
        for value in [1 << 63, u64::MAX, (1 << 63) | 70_000] {
            // Header only: the length alone is the violation.
            assert_fails!(Setup::new(role), binary("").raw_len64(value).to(role), Error::InvalidPayloadLength, 1002);
        }
    }
}

#[test]
fn accepts_each_length_form_at_its_boundaries() {
    for role in ROLES {
        let sizes = [0, 125, 126, 65535, 65536, 70_000];
        let out = read_both(Setup::new(role), &stream(sizes.map(|n| binary(filler(n)).to(role))));
        assert_eq!(out.messages, sizes.map(|n| (OpCode::Binary, filler(n))).to_vec(), "{role:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Control frames (RFC 6455 §5.5): at most 125 bytes, never fragmented

#[test]
fn rejects_control_frame_payload_126() {
    for role in ROLES {
        for op in [OP_PING, OP_PONG, OP_CLOSE] {
            let mut payload = vec![0x03, 0xe8]; // a close code, so only the length is wrong
            payload.resize(126, b'x');
            let frame = RawFrame::new(op, &payload).to(role);
            assert_fails!(Setup::new(role), frame, Error::ControlFramePayloadTooLarge(126), 1002);
        }
        // A length no control frame may announce, header only.
        let frame = ping("").declare_len(65536).to(role);
        assert_fails!(Setup::new(role), frame, Error::ControlFramePayloadTooLarge(65536), 1002);
    }
}

#[test]
fn ping_of_125_bytes_is_answered_with_the_same_payload() {
    for role in ROLES {
        let payload: Vec<u8> = (0..125).collect();
        let out = read_both(Setup::new(role), &stream([ping(&payload).to(role), text("after").to(role)]));
        assert_eq!(out.messages, vec![(OpCode::Text, b"after".to_vec())]);
        assert_eq!(out.wire.len(), 1, "{role:?}: {:?}", out.wire);
        assert_eq!((out.wire[0].fin, out.wire[0].opcode, &out.wire[0].payload), (true, OP_PONG, &payload));
    }
}

#[test]
fn rejects_fragmented_control_frame() {
    for role in ROLES {
        for frame in [ping("x"), pong("x"), close(1000, ""), ping("")] {
            assert_fails!(Setup::new(role), frame.fin(false).to(role), Error::FragmentedControlFrame, 1002);
        }
        // Also inside a fragmented data message.
        let input = stream([text("a").fin(false).to(role), ping("p").fin(false).to(role)]);
        assert_fails!(Setup::new(role), input, Error::FragmentedControlFrame, 1002);
    }
}

// ---------------------------------------------------------------------------------------------
// Fragmentation (RFC 6455 §5.4)

#[test]
fn rejects_unexpected_continuation() {
    for role in ROLES {
        for frame in [cont("x"), cont("x").fin(false), cont("")] {
            assert_fails!(Setup::new(role), frame.to(role), Error::UnexpectedContinuation, 1002);
        }
        // After a message has ended, a continuation has nothing to continue.
        let input = stream([text("a").fin(false).to(role), cont("b").to(role), cont("c").to(role)]);
        assert_fails!(Setup::new(role), input, after[(OpCode::Text, &b"ab"[..])], Error::UnexpectedContinuation, 1002);
    }
}

#[test]
fn rejects_new_data_frame_inside_fragmented_message() {
    for role in ROLES {
        for (first, second) in [
            (text("a"), text("b")),
            (text("a"), binary("b")),
            (binary("a"), text("b")),
            (binary("a"), binary("b").fin(false)),
        ] {
            let input = stream([first.fin(false).to(role), second.to(role)]);
            assert_fails!(Setup::new(role), input, Error::ExpectedContinuation, 1002);
        }
    }
}

#[test]
fn control_frames_interleaved_in_fragmented_message_are_answered_and_the_message_assembles() {
    for role in ROLES {
        let input = stream([
            text("Hel").fin(false).to(role),
            ping("p1").to(role),
            pong("unsolicited").to(role),
            cont("lo, ").fin(false).to(role),
            ping("").to(role),
            ping((0..125).collect::<Vec<u8>>()).to(role),
            cont("world").to(role),
            binary([9; 3]).to(role),
        ]);
        let out = read_both(Setup::new(role), &input);
        assert_eq!(out.messages, vec![(OpCode::Text, b"Hello, world".to_vec()), (OpCode::Binary, vec![9; 3])]);
        let pongs: Vec<_> = out.wire.iter().map(|f| (f.fin, f.opcode, f.payload.clone())).collect();
        assert_eq!(
            pongs,
            vec![(true, OP_PONG, b"p1".to_vec()), (true, OP_PONG, vec![]), (true, OP_PONG, (0..125).collect())],
            "{role:?}: one pong per ping, same payload"
        );
        assert!(matches!(out.end, Error::AbnormalClosure), "{:?}", out.end);
    }
}

// ---------------------------------------------------------------------------------------------
// UTF-8 (RFC 6455 §8.1): text must be valid, and fails as soon as it cannot become valid

const BAD_UTF8: [&[u8]; 5] = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x28\xa1"];

#[test]
fn rejects_invalid_utf8_in_single_frame() {
    for role in ROLES {
        for bad in BAD_UTF8 {
            let payload = [b"hello ".as_slice(), bad, b" world"].concat();
            assert_fails!(Setup::new(role), text(&payload).to(role), Error::InvalidUtf8, 1007);
            // Longer than the read buffer: validated as it streams in.
            let long = [filler(10_000).as_slice(), bad, b"end"].concat();
            assert_fails!(Setup::new(role), text(&long).to(role), Error::InvalidUtf8, 1007);
        }
    }
}

#[test]
fn rejects_invalid_utf8_in_middle_fragment_before_later_fragments_arrive() {
    for role in ROLES {
        for bad in BAD_UTF8 {
            // Only the first two frames arrive, then the stream ends: a decoder that waited for
            // the end of the message would report AbnormalClosure instead.
            let input =
                stream([text("hello ").fin(false).to(role), cont([b"x".as_slice(), bad].concat()).fin(false).to(role)]);
            assert_fails!(Setup::new(role), input, Error::InvalidUtf8, 1007);
            let input = stream([
                text(filler(5000)).fin(false).to(role),
                cont([filler(5000).as_slice(), bad].concat()).fin(false).to(role),
            ]);
            assert_fails!(Setup::new(role), input, Error::InvalidUtf8, 1007);
        }
    }
}

#[test]
fn accepts_multibyte_character_split_across_fragments() {
    for role in ROLES {
        let input = stream([
            // "a€b", the euro sign cut after its first and second byte.
            text(b"a\xe2").fin(false).to(role),
            cont(b"\x82").fin(false).to(role),
            ping("between").to(role),
            cont(b"\xacb").to(role),
            // "𝄞", one byte per fragment.
            text(b"\xf0").fin(false).to(role),
            cont(b"\x9d").fin(false).to(role),
            cont(b"").fin(false).to(role),
            cont(b"\x84").fin(false).to(role),
            cont(b"\x9e").to(role),
        ]);
        let out = read_both(Setup::new(role), &input);
        assert_eq!(out.messages, vec![(OpCode::Text, "a€b".into()), (OpCode::Text, "𝄞".into())], "{role:?}");
    }
}

#[test]
fn rejects_character_truncated_at_message_end() {
    for role in ROLES {
        assert_fails!(Setup::new(role), text(b"a\xe2\x82").to(role), Error::InvalidUtf8, 1007);
        let input = stream([text(b"a\xe2").fin(false).to(role), cont(b"\x82").to(role)]);
        assert_fails!(Setup::new(role), input, Error::InvalidUtf8, 1007);
        let input = stream([text(b"a").fin(false).to(role), cont(b"\xf0\x9d\x84").to(role)]);
        assert_fails!(Setup::new(role), input, Error::InvalidUtf8, 1007);
    }
}

#[test]
fn binary_payload_is_not_utf8_checked() {
    for role in ROLES {
        let out = read_both(Setup::new(role), &binary(b"\xff\xc0\xaf\xe2").to(role));
        assert_eq!(out.messages, vec![(OpCode::Binary, b"\xff\xc0\xaf\xe2".to_vec())]);
    }
}

// ---------------------------------------------------------------------------------------------
// Close frames (RFC 6455 §5.5.1, §7.4)

#[test]
fn rejects_close_with_one_byte_body() {
    for role in ROLES {
        assert_fails!(Setup::new(role), close_body([0x03]).to(role), Error::InvalidClosePayload, 1002);
    }
}

#[test]
fn rejects_each_invalid_close_code() {
    for role in ROLES {
        for code in INVALID_CLOSE_CODES {
            assert_fails!(Setup::new(role), close(code, "").to(role), Error::InvalidCloseCode(c) if *c == code, 1002);
            assert_fails!(Setup::new(role), close(code, "why").to(role), Error::InvalidCloseCode(c) if *c == code, 1002);
        }
    }
}

#[test]
fn peer_close_with_each_valid_code_is_echoed_with_the_same_code() {
    for role in ROLES {
        for code in VALID_CLOSE_CODES {
            let body = [code.to_be_bytes().as_slice(), b"bye"].concat();
            let out = read_both(Setup::new(role), &close(code, "bye").to(role));
            assert_eq!(out.messages, vec![(OpCode::Close, body)], "{role:?} {code}");
            assert!(matches!(out.end, Error::WebSocketClosed), "{role:?} {code}: {:?}", out.end);
            assert_eq!(out.wire.len(), 1, "{role:?} {code}: {:?}", out.wire);
            assert_eq!((out.wire[0].opcode, out.wire[0].close_code()), (OP_CLOSE, Some(code)), "{role:?}");
        }
    }
}

#[test]
fn empty_close_is_echoed_empty() {
    for role in ROLES {
        let out = read_both(Setup::new(role), &close_body([]).to(role));
        assert_eq!(out.messages, vec![(OpCode::Close, vec![])]);
        assert_eq!(out.wire.len(), 1, "{:?}", out.wire);
        assert_eq!((out.wire[0].opcode, out.wire[0].payload.len()), (OP_CLOSE, 0), "{role:?}");
    }
}

#[test]
fn rejects_close_reason_with_invalid_utf8() {
    for role in ROLES {
        for bad in BAD_UTF8 {
            assert_fails!(Setup::new(role), close(1000, bad).to(role), Error::InvalidUtf8, 1007);
        }
    }
}

#[test]
fn accepts_close_reason_of_123_bytes() {
    for role in ROLES {
        let reason = format!("{}a", "é".repeat(61)); // 123 bytes, multi-byte characters
        assert_eq!(reason.len(), 123);
        let out = read_both(Setup::new(role), &close(4000, &reason).to(role));
        assert_eq!(out.messages, vec![(OpCode::Close, [&4000u16.to_be_bytes()[..], reason.as_bytes()].concat())]);
        assert_eq!(out.wire[0].close_code(), Some(4000));
    }
}

#[test]
fn peer_close_is_returned_once_then_websocket_closed() {
    for role in ROLES {
        for feed in FEEDS {
            let mut conn = Setup::new(role).open(&stream([text("hi").to(role), close(1001, "away").to(role)]), feed);
            let mut buf = Vec::new();
            assert_eq!(conn.read_message(&mut buf).unwrap(), (OpCode::Text, &b"hi"[..]));
            assert_eq!(conn.read_message(&mut buf).unwrap(), (OpCode::Close, &b"\x03\xe9away"[..]));
            for _ in 0..3 {
                assert!(matches!(conn.read_message(&mut buf), Err(Error::WebSocketClosed)), "{role:?} {feed:?}");
            }
            // Our echo went out: writing more is an error and puts nothing on the wire.
            let written = conn.get_ref().written.len();
            assert!(matches!(conn.write_message(OpCode::Text, b"late"), Err(Error::WebSocketClosed)));
            assert_eq!(conn.get_ref().written.len(), written);
            // Closing after the handshake completed is a no-op.
            conn.close().unwrap();
            assert_eq!(conn.get_ref().written.len(), written);
        }
    }
}

#[test]
fn data_after_peer_close_is_not_delivered() {
    for role in ROLES {
        let input = stream([close(1000, "").to(role), text("late").to(role), ping("late").to(role)]);
        let out = read_both(Setup::new(role), &input);
        assert_eq!(out.messages, vec![(OpCode::Close, 1000u16.to_be_bytes().to_vec())]);
        assert!(matches!(out.end, Error::WebSocketClosed), "{:?}", out.end);
        assert_eq!(out.wire.iter().map(|f| f.opcode).collect::<Vec<_>>(), vec![OP_CLOSE], "no pong after close");
    }
}

// ---------------------------------------------------------------------------------------------
// max_read_limit: checked against each header, before the payload arrives

#[test]
fn rejects_frame_announcing_limit_plus_one_before_its_payload_arrives() {
    for role in ROLES {
        // One limit per length form: 7-bit, 16-bit and 64-bit.
        for limit in [100usize, 1000, 100_000] {
            let setup = Setup::new(role).limit(limit);
            for frame in [binary(""), text("")] {
                // The header alone; were the payload awaited, the read would end in AbnormalClosure.
                let header = frame.declare_len(limit as u64 + 1).to(role);
                assert_fails!(setup, header, Error::MessageTooBig { limit: l } if *l == limit as u64, 1009);
            }
        }
    }
}

#[test]
fn rejects_fragmented_message_at_the_fragment_crossing_the_limit() {
    for role in ROLES {
        let setup = Setup::new(role).limit(100);
        // 60 + 40 = 100 is fine; the next fragment's header crosses: fail without its payload.
        let input = stream([
            text(filler(60)).fin(false).to(role),
            ping("p").to(role),
            cont(filler(40)).fin(false).to(role),
            cont("").declare_len(1).to(role),
        ]);
        assert_fails!(setup, input, Error::MessageTooBig { limit: 100 }, 1009);
        let input = stream([binary(filler(99)).fin(false).to(role), cont("").declare_len(2).to(role)]);
        assert_fails!(setup, input, Error::MessageTooBig { limit: 100 }, 1009);
    }
}

#[test]
fn accepts_message_exactly_at_the_limit() {
    for role in ROLES {
        let input = stream([
            binary(filler(100)).to(role),
            text(filler(60)).fin(false).to(role),
            ping(filler(125)).to(role), // control frames do not count
            cont(filler(40)).to(role),
            text(filler(100)).fin(false).to(role),
            cont("").to(role),
        ]);
        let out = read_both(Setup::new(role).limit(100), &input);
        let sixty_forty = [filler(60), filler(40)].concat();
        assert_eq!(
            out.messages,
            vec![(OpCode::Binary, filler(100)), (OpCode::Text, sixty_forty), (OpCode::Text, filler(100))]
        );
        assert!(matches!(out.end, Error::AbnormalClosure), "{:?}", out.end);
    }
}

// ---------------------------------------------------------------------------------------------
// Writes

/// A connection with nothing to read, for write tests.
fn writer(role: Role, chunk: usize) -> Conn<Script> {
    Setup::new(role).chunk(chunk).open(&[], Feed::Whole)
}

#[test]
fn write_frame_fragments_payloads_larger_than_max_chunk_size() {
    for role in ROLES {
        for len in [1usize << 20, (1 << 20) + 17, 4097] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let mut conn = writer(role, 4096);
            conn.write_frame(true, 0, OpCode::Binary, &payload).unwrap();
            let wire = conn.get_ref().frames();
            assert_masking(&wire, role);
            assert_eq!(wire.len(), len.div_ceil(4096), "{role:?} {len}");
            assert!(wire.iter().all(|f| f.payload.len() <= 4096 && f.rsv == 0), "{role:?}: frame over max_chunk_size");
            assert!(wire.iter().all(|f| !f.payload.is_empty()), "{role:?}: empty fragment");
            assert_eq!(reassemble(&wire), vec![(OP_BINARY, payload.clone())], "{role:?} {len}");
        }
        // Non-final: every fragment stays non-final, the message continues with the next write.
        let mut conn = writer(role, 4096);
        conn.write_frame(false, 0x40, OpCode::Text, &filler(10_000)).unwrap();
        conn.write_frame(true, 0, OpCode::Continuation, b"!").unwrap();
        let wire = conn.get_ref().frames();
        assert_eq!(
            wire.iter().map(WireFrame::shape).collect::<Vec<_>>(),
            vec![(false, OP_TEXT, 4096), (false, OP_CONT, 4096), (false, OP_CONT, 1808), (true, OP_CONT, 1)]
        );
        assert_eq!(wire.iter().map(|f| f.rsv).collect::<Vec<_>>(), vec![0x40, 0, 0, 0], "RSV on the first frame only");
    }
}

#[test]
fn write_frame_rejects_control_payload_over_125_bytes() {
    for role in ROLES {
        let mut conn = writer(role, 0);
        for op in [OpCode::Ping, OpCode::Pong, OpCode::Close] {
            assert!(matches!(
                conn.write_frame(true, 0, op, &[0; 126]),
                Err(Error::Misuse(Misuse::ControlPayloadTooLong(126)))
            ));
        }
        assert!(matches!(conn.ping(&[0; 1000]), Err(Error::Misuse(Misuse::ControlPayloadTooLong(1000)))));
        assert!(matches!(conn.write_frame(false, 0, OpCode::Ping, b""), Err(Error::Misuse(Misuse::FragmentedControl))));
        assert!(conn.get_ref().written.is_empty(), "{role:?}: nothing on the wire");
        // The connection is still usable.
        conn.ping(&[7; 125]).unwrap();
        assert_eq!(
            conn.get_ref().frames().iter().map(WireFrame::shape).collect::<Vec<_>>(),
            vec![(true, OP_PING, 125)]
        );
    }
}

#[test]
fn close_with_code_rejects_codes_not_allowed_on_the_wire() {
    for role in ROLES {
        let mut conn = Setup::new(role).open(&close(1000, "").to(role), Feed::Whole);
        for code in [1005, 1006, 1015, 0, 1004, 5000] {
            assert!(
                matches!(conn.close_with_code(CloseCode(code), ""), Err(Error::Misuse(Misuse::UnsendableCloseCode(c))) if c == code),
                "{role:?} {code}"
            );
        }
        assert!(conn.get_ref().written.is_empty(), "{role:?}: nothing on the wire");
        // A reason that does not fit is refused too.
        assert!(matches!(
            conn.close_with_code(CloseCode(1000), &"x".repeat(124)),
            Err(Error::Misuse(Misuse::ControlPayloadTooLong(126)))
        ));
        assert!(conn.get_ref().written.is_empty());
        // The refused attempts did not count as a close: a valid one still goes out.
        conn.close().unwrap();
        let wire = conn.get_ref().frames();
        assert_eq!(wire.len(), 1);
        assert_eq!(wire[0].close_code(), Some(1000));
    }
}

#[test]
fn client_writes_are_masked_with_fresh_keys() {
    let mut conn = writer(Role::Client, 0);
    // 300 frames drain the key pool several times over.
    for i in 0..300u32 {
        conn.write_message(OpCode::Binary, &i.to_le_bytes()).unwrap();
    }
    let wire = conn.get_ref().frames();
    assert_masking(&wire, Role::Client);
    for (i, f) in wire.iter().enumerate() {
        assert_eq!(f.payload, (i as u32).to_le_bytes(), "frame {i} unmasks to its payload");
    }
    let keys: std::collections::HashSet<[u8; 4]> = wire.iter().map(|f| f.mask.unwrap()).collect();
    // 300 random 32-bit keys collide with probability ~1e-5; a fixed or cycling key always does.
    assert_eq!(keys.len(), 300, "mask keys repeat");
    let mut other = writer(Role::Client, 0);
    other.write_message(OpCode::Binary, b"x").unwrap();
    assert!(!keys.contains(&other.get_ref().frames()[0].mask.unwrap()), "a second connection reuses keys");
}

#[test]
fn server_writes_are_unmasked() {
    let mut conn = writer(Role::Server, 0);
    conn.write_message(OpCode::Text, b"hello").unwrap();
    conn.ping(b"p").unwrap();
    conn.write_message(OpCode::Binary, &filler(10_000)).unwrap();
    conn.close_with_code(CloseCode(1000), "").unwrap_err(); // no peer close to read: fine here
    let wire = conn.get_ref().frames();
    assert_masking(&wire, Role::Server);
    assert_eq!(&conn.get_ref().written[..7], b"\x81\x05hello", "exact server bytes");
    assert_eq!(wire.len(), 1 + 1 + 3 + 1);
}

/// `stream_message` of `len` bytes in `chunk`-byte fragments, read from a source fed `feed`.
fn streamed(role: Role, max_chunk: usize, chunk: usize, len: usize, feed: Feed) -> Vec<WireFrame> {
    let mut conn = writer(role, max_chunk);
    let mut source = Script::new(filler(len), feed);
    conn.stream_message(OpCode::Text, chunk, &mut source).unwrap();
    assert_eq!(source.remaining(), 0);
    let wire = conn.get_ref().frames();
    assert_masking(&wire, role);
    assert_eq!(reassemble(&wire), vec![(OP_TEXT, filler(len))]);
    wire
}

#[test]
fn stream_message_sends_no_empty_trailing_fragment() {
    const C: usize = 16;
    let expected: [(usize, &[Shape]); 5] = [
        (0, &[(true, OP_TEXT, 0)]),
        (C - 1, &[(true, OP_TEXT, C - 1)]),
        (C, &[(true, OP_TEXT, C)]),
        (C + 1, &[(false, OP_TEXT, C), (true, OP_CONT, 1)]),
        (3 * C, &[(false, OP_TEXT, C), (false, OP_CONT, C), (true, OP_CONT, C)]),
    ];
    for role in ROLES {
        for feed in FEEDS {
            for (len, frames) in expected {
                // An explicit chunk size, and 0 meaning max_chunk_size.
                for (max_chunk, chunk) in [(64, C), (C, 0)] {
                    let wire = streamed(role, max_chunk, chunk, len, feed);
                    let shapes: Vec<_> = wire.iter().map(WireFrame::shape).collect();
                    assert_eq!(shapes, frames, "{role:?} {feed:?} len {len} max_chunk {max_chunk} chunk {chunk}");
                }
            }
        }
    }
}

#[test]
fn stream_message_rejects_chunk_size_above_max_chunk_size() {
    for role in ROLES {
        let mut conn = writer(role, 64);
        let mut source = Script::new(filler(100), Feed::Whole);
        let err = conn.stream_message(OpCode::Binary, 65, &mut source).unwrap_err();
        assert!(matches!(err, Error::ChunkSizeExceeded { requested: 65, limit: 64 }), "{err:?}");
        assert_eq!(err.close_code(), None, "local misuse sends nothing");
        assert!(conn.get_ref().written.is_empty());
        assert_eq!(source.remaining(), 100, "nothing read from the source");
    }
}

#[test]
fn close_with_code_sends_close_then_drains_until_the_peer_close() {
    for role in ROLES {
        for feed in FEEDS {
            let input = stream([
                text("queued").to(role),
                ping("p").to(role),
                binary(filler(9000)).fin(false).to(role),
                cont("").to(role),
                close(1000, "ok").to(role),
                text("after close").to(role),
            ]);
            let mut conn = Setup::new(role).open(&input, feed);
            conn.close_with_code(CloseCode(4001), "bye").unwrap();
            let wire = conn.get_ref().frames();
            assert_masking(&wire, role);
            assert_eq!(wire.len(), 1, "{role:?} {feed:?}: only our close goes out: {wire:?}");
            assert_eq!((wire[0].close_code(), wire[0].close_reason()), (Some(4001), &b"bye"[..]));
            assert!(matches!(conn.read_message(&mut Vec::new()), Err(Error::WebSocketClosed)));
            assert!(matches!(conn.write_message(OpCode::Text, b"x"), Err(Error::WebSocketClosed)));
            assert_eq!(conn.get_ref().frames().len(), 1);
        }
    }
}

#[test]
fn close_with_code_reports_a_peer_that_never_answers() {
    for role in ROLES {
        let mut conn = Setup::new(role).open(&text("no close follows").to(role), Feed::Whole);
        assert!(matches!(conn.close_with_code(CloseCode(1000), ""), Err(Error::AbnormalClosure)));
        assert_eq!(conn.get_ref().frames()[0].close_code(), Some(1000), "our close still went out");
        assert!(matches!(conn.read_message(&mut Vec::new()), Err(Error::WebSocketClosed)));
    }
}

#[test]
fn write_frame_with_zero_max_chunk_size_does_not_panic() {
    // `Config`'s fields are public, so a zero chunk size can reach the writer without the
    // builder's "0 keeps the default". Whatever it does, it must not panic, and must not lose data.
    for role in ROLES {
        let mut config = Config::new(role);
        config.max_chunk_size = 0;
        let mut conn = Conn::with_config(Script::new([], Feed::Whole), config);
        let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = conn.write_message(OpCode::Binary, b"payload");
            let _ = conn.stream_message(OpCode::Binary, 0, &mut &b"streamed"[..]);
        }));
        assert!(written.is_ok(), "{role:?}: write with max_chunk_size 0 panicked");
        let messages = reassemble(&conn.get_ref().frames());
        assert!(
            messages.iter().all(|(_, p)| !p.is_empty()),
            "{role:?}: a message was silently sent empty: {messages:?}"
        );
    }
}

#[test]
fn close_with_code_reports_a_violation_during_the_drain_without_a_second_close() {
    for role in ROLES {
        let input = stream([text("fine").to(role), RawFrame::new(3, "bad").to(role), close(1000, "").to(role)]);
        for feed in FEEDS {
            let mut conn = Setup::new(role).open(&input, feed);
            let err = conn.close_with_code(CloseCode(1001), "").unwrap_err();
            assert!(matches!(err, Error::InvalidOpCode(3)), "{role:?} {feed:?}: {err:?}");
            let wire = conn.get_ref().frames();
            assert_eq!(wire.len(), 1, "{role:?}: only our first close: {wire:?}");
            assert_eq!(wire[0].close_code(), Some(1001));
            assert!(matches!(conn.read_message(&mut Vec::new()), Err(Error::WebSocketClosed)));
        }
    }
}

#[test]
fn reading_resumes_after_a_read_timeout_mid_frame() {
    // The decoder keeps its state when the stream times out; the caller just reads again.
    for role in ROLES {
        let input = stream([
            text("héllo").fin(false).to(role),
            ping("p").to(role),
            cont(" wörld").to(role),
            binary(filler(9000)).to(role),
            close(1000, "").to(role),
        ]);
        for feed in FEEDS {
            let mut conn = Setup::new(role).wrap(Script::new(input.clone(), feed).stuttering());
            let mut buf = Vec::new();
            let (mut messages, mut timeouts) = (Vec::new(), 0);
            loop {
                match conn.read_message(&mut buf) {
                    Ok((op, payload)) => messages.push((op, payload.to_vec())),
                    Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => timeouts += 1,
                    Err(Error::WebSocketClosed) => break,
                    Err(e) => panic!("{role:?} {feed:?}: {e:?}"),
                }
                assert!(timeouts < 100_000);
            }
            assert!(timeouts > 0);
            let expected = vec![
                (OpCode::Text, "héllo wörld".as_bytes().to_vec()),
                (OpCode::Binary, filler(9000)),
                (OpCode::Close, 1000u16.to_be_bytes().to_vec()),
            ];
            assert_eq!(messages, expected, "{role:?} {feed:?}");
            let shapes: Vec<_> = conn.get_ref().frames().iter().map(|f| (f.opcode, f.payload.clone())).collect();
            assert_eq!(shapes, vec![(OP_PONG, b"p".to_vec()), (OP_CLOSE, 1000u16.to_be_bytes().to_vec())]);
        }
    }
}

#[test]
fn close_sent_with_write_frame_counts_as_our_close() {
    // RFC 6455 §5.5.1: after sending a close, no more data frames; the peer's answering close
    // completes the handshake and is not answered again.
    for role in ROLES {
        let mut conn = Setup::new(role).open(&close(1000, "").to(role), Feed::Whole);
        conn.write_frame(true, 0, OpCode::Close, &1000u16.to_be_bytes()).unwrap();
        assert!(
            matches!(conn.write_message(OpCode::Text, b"after our close"), Err(Error::WebSocketClosed)),
            "{role:?}: data frame sent after a close sent with write_frame"
        );
        assert_eq!(conn.read_message(&mut Vec::new()).unwrap().0, OpCode::Close);
        let closes = conn.get_ref().frames().iter().filter(|f| f.opcode == OP_CLOSE).count();
        assert_eq!(closes, 1, "{role:?}: the peer's answer to our close was answered with a second close");
    }
}

#[test]
fn write_frame_refuses_close_bodies_not_allowed_on_the_wire() {
    // close_with_code refuses these; the low-level write_frame must not be a way around it.
    for role in ROLES {
        let mut conn = writer(role, 0);
        for code in [1005u16, 1006, 1015, 999] {
            assert!(
                matches!(conn.write_frame(true, 0, OpCode::Close, &code.to_be_bytes()), Err(Error::Misuse(Misuse::UnsendableCloseCode(c))) if c == code),
                "{role:?}: close code {code} accepted by write_frame"
            );
        }
        assert!(
            matches!(conn.write_frame(true, 0, OpCode::Close, &[0x03]), Err(Error::Misuse(Misuse::InvalidCloseBody))),
            "{role:?}: 1-byte close body accepted by write_frame"
        );
        assert!(conn.get_ref().written.is_empty(), "{role:?}: invalid close frames went out");
    }
}
