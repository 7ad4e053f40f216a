//! permessage-deflate through `Conn`, mostly the negative side: RSV bits where no extension
//! allows them (1002), corrupt DEFLATE data (1007), inflation past the limit (1009), offers and
//! answers that must be declined; plus the positive controls these tests lean on.

// Options are written as changes to the defaults, field by field.
#![allow(clippy::field_reassign_with_default)]

use lowbit_websockets::deflate::Engine;
use lowbit_websockets::deflate::negotiate::NegotiationError;
use lowbit_websockets::handshake::ClientOptions;
use lowbit_websockets::handshake::HandshakeError;
use lowbit_websockets::{
    AcceptOptions, CloseCode, Config, Conn, ConnectOptions, DeflateConfig, DeflateOptions, Error, OpCode, Role,
};
use miniz_oxide::MZFlush;
use miniz_oxide::deflate::core::{CompressorOxide, create_comp_flags_from_zip_params};

mod common;
use common::{Answering, Feed, OP_CLOSE, RawFrame, Script, TEST_KEY, WireFrame, assert_masking};

// ---------------------------------------------------------------------------------------------
// Helpers

const RSV1: u8 = 0x40;
const RSV2: u8 = 0x20;
const RSV3: u8 = 0x10;

/// One client frame (masked), built by hand so it can carry any RSV bits.
fn frame(fin: bool, rsv: u8, op: u8, payload: &[u8]) -> Vec<u8> {
    RawFrame::new(op, payload).fin(fin).rsv(rsv).mask(TEST_KEY).build()
}

/// A raw-DEFLATE compressor, independent of the crate's, with context kept across messages.
struct Deflater(Box<CompressorOxide>);

impl Deflater {
    fn new(level: i32) -> Self {
        Self(Box::new(CompressorOxide::new(create_comp_flags_from_zip_params(level, -15, 0))))
    }

    /// One message: sync flush, then the 00 00 ff ff tail stripped (RFC 7692 §7.2.1).
    fn message(&mut self, mut data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let mut chunk = vec![0u8; data.len() + 1024];
            let r = miniz_oxide::deflate::stream::deflate(&mut self.0, data, &mut chunk, MZFlush::Sync);
            out.extend_from_slice(&chunk[..r.bytes_written]);
            data = &data[r.bytes_consumed..];
            assert!(r.status.is_ok());
            if data.is_empty() && r.bytes_written < chunk.len() {
                break;
            }
        }
        assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
        out.truncate(out.len() - 4);
        out
    }

    fn reset(&mut self) {
        self.0.reset();
    }
}

fn server(input: Vec<u8>, deflate: bool) -> Conn<Script> {
    server_with(input, deflate.then(DeflateConfig::default), 0)
}

fn server_with(input: Vec<u8>, deflate: Option<DeflateConfig>, limit: usize) -> Conn<Script> {
    let mut conn = Conn::with_config(Script::new(input, Feed::Whole), Config::new(Role::Server).max_read_limit(limit));
    conn.set_deflate(deflate.as_ref(), None);
    conn
}

/// The close code of the last frame the connection wrote (unmasked server frames).
fn close_written(conn: &Conn<Script>) -> Option<u16> {
    let frames = conn.get_ref().frames();
    assert_masking(&frames, Role::Server);
    frames.last().filter(|f| f.opcode == OP_CLOSE).and_then(WireFrame::close_code)
}

/// Reads messages until an error; returns the messages read before it and the error.
fn read_until_error(conn: &mut Conn<Script>) -> (Vec<(OpCode, Vec<u8>)>, Error) {
    let mut buf = Vec::new();
    let mut got = Vec::new();
    loop {
        match conn.read_message(&mut buf) {
            Ok((op, p)) => got.push((op, p.to_vec())),
            Err(e) => return (got, e),
        }
    }
}

/// The input is read to the end without a protocol error (it ends without a close frame).
fn read_all_ok(conn: &mut Conn<Script>) -> Vec<(OpCode, Vec<u8>)> {
    let (got, e) = read_until_error(conn);
    assert!(matches!(e, Error::AbnormalClosure), "unexpected error {e:?}");
    assert_eq!(close_written(conn), None);
    got
}

#[track_caller]
fn assert_fails(input: Vec<u8>, deflate: bool, want: u16, check: impl Fn(&Error) -> bool) {
    let mut conn = server(input, deflate);
    let (_, e) = read_until_error(&mut conn);
    assert!(check(&e), "unexpected error {e:?}");
    assert_eq!(e.close_code(), Some(CloseCode(want)));
    assert_eq!(close_written(&conn), Some(want), "close frame on the wire for {e:?}");
    let mut buf = Vec::new();
    assert!(matches!(conn.read_message(&mut buf), Err(Error::WebSocketClosed)), "the connection is failed for good");
}

/// JSON-like UTF-8 text of exactly `n` bytes.
fn json(n: usize) -> Vec<u8> {
    let s = "{\"id\":12,\"name\":\"lowbit ✓\",\"tags\":[\"x\",\"y\"]},".repeat(n / 40 + 1);
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut v = s.as_bytes()[..end].to_vec();
    v.resize(n, b' ');
    v
}

// ---------------------------------------------------------------------------------------------
// Positive controls

#[test]
fn compressed_messages_inflate_through_conn() {
    let mut z = Deflater::new(6);
    let a = json(10_000);
    let b = json(20_000); // mostly references the previous message's window
    let za = z.message(&a);
    let zb = z.message(&b);
    assert!(zb.len() < 200, "the second message leans on context takeover ({} bytes)", zb.len());
    let bin: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let zbin = z.message(&bin);
    let (p1, p2) = zbin.split_at(zbin.len() / 3);
    let zempty = z.message(b"");
    let mut input = Vec::new();
    input.extend(frame(true, RSV1, 1, &za));
    input.extend(frame(true, RSV1, 1, &zb));
    // Fragmented: RSV1 on the first frame only, a ping between fragments, an empty fragment.
    input.extend(frame(false, RSV1, 2, p1));
    input.extend(frame(true, 0, 9, b"ping"));
    input.extend(frame(false, 0, 0, b""));
    input.extend(frame(true, 0, 0, p2));
    input.extend(frame(true, RSV1, 2, &zempty));
    // Uncompressed messages stay legal with deflate on.
    input.extend(frame(true, 0, 1, b"plain"));
    let mut conn = server(input, true);
    let got = read_all_ok(&mut conn);
    let want = vec![
        (OpCode::Text, a),
        (OpCode::Text, b),
        (OpCode::Binary, bin),
        (OpCode::Binary, Vec::new()),
        (OpCode::Text, b"plain".to_vec()),
    ];
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(g == w, "message {i} differs");
    }
}

#[test]
fn no_context_takeover_inflates_each_message_alone() {
    let mut z = Deflater::new(6);
    let cfg = DeflateConfig { decompress_no_context_takeover: true, ..DeflateConfig::default() };
    let mut input = Vec::new();
    let msgs: Vec<Vec<u8>> = (0..5).map(|i| json(3000 + i * 100)).collect();
    for m in &msgs {
        input.extend(frame(true, RSV1, 1, &z.message(m)));
        z.reset();
    }
    let mut conn = server_with(input, Some(cfg), 0);
    let got = read_all_ok(&mut conn);
    assert_eq!(got, msgs.into_iter().map(|m| (OpCode::Text, m)).collect::<Vec<_>>());
}

/// Empty messages, written whole (threshold 0) and streamed, between others over context
/// takeover, from every engine: each is an empty DEFLATE block whose sync tail was stripped
/// (zlib-rs: `00`, an empty stored block; miniz_oxide: `02 00`, an empty fixed-Huffman block
/// and the stored block's first byte), never nothing, and the reader's stream stays whole.
/// zlib-rs wrote nothing for an empty message after a sync flush; the peer restored the tail
/// onto the empty payload, read a broken stored block, and failed on the next message
/// ("invalid stored block lengths" in Python's zlib).
#[test]
fn empty_messages_from_every_engine_keep_the_stream_whole() {
    for engine in [Engine::Miniz, Engine::ZlibRs] {
        let cfg = DeflateConfig { threshold: 0, engine, compress_window_bits: 12, ..DeflateConfig::default() };
        let mut client = Conn::with_config(Script::new(Vec::new(), Feed::Whole), Config::new(Role::Client));
        client.set_deflate(Some(&cfg), None);
        let a = json(3000);
        client.write_message(OpCode::Text, &a).unwrap();
        client.write_message(OpCode::Text, b"").unwrap();
        client.stream_message(OpCode::Binary, 100, &mut &b""[..]).unwrap();
        client.write_message(OpCode::Text, &a).unwrap();
        client.stream_message(OpCode::Text, 1000, &mut &a[..]).unwrap();
        let frames = client.get_ref().frames();
        let empties: Vec<&[u8]> = frames[1..3].iter().map(|f| &f.payload[..]).collect();
        let empty: &[u8] = if engine == Engine::ZlibRs { &[0x00] } else { &[0x02, 0x00] };
        assert_eq!(empties, [empty, empty], "{engine:?}: the empty messages on the wire");
        assert!(frames.iter().take(4).all(|f| f.rsv == RSV1), "{engine:?}: every message is compressed");
        let mut server = server(client.get_ref().written.clone(), true);
        let got = read_all_ok(&mut server);
        let want =
            [(OpCode::Text, a.clone()), (OpCode::Text, vec![]), (OpCode::Binary, vec![]), (OpCode::Text, a.clone())];
        assert_eq!(got.len(), 5, "{engine:?}");
        for (i, (g, w)) in got.iter().zip(want.iter().chain([&(OpCode::Text, a.clone())])).enumerate() {
            assert!(g == w, "{engine:?}: message {i} differs");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// RSV bits: 1002

#[test]
fn rsv1_on_a_continuation_frame_is_1002() {
    let mut z = Deflater::new(1);
    let zd = z.message(&json(5000));
    let (p1, p2) = zd.split_at(zd.len() / 2);
    for first_rsv in [RSV1, 0] {
        let mut input = frame(false, first_rsv, 2, p1);
        input.extend(frame(true, RSV1, 0, p2));
        assert_fails(input, true, 1002, |e| matches!(e, Error::ProtocolReservedBits { rsv: RSV1 }));
    }
}

#[test]
fn rsv1_on_a_control_frame_is_1002() {
    for op in [8u8, 9, 10] {
        let body: &[u8] = if op == 8 { &[0x03, 0xe8] } else { b"x" };
        for rsv in [RSV1, RSV2, RSV3] {
            assert_fails(frame(true, rsv, op, body), true, 1002, |e| matches!(e, Error::ProtocolReservedBits { .. }));
        }
    }
    // Between the fragments of a compressed message, too.
    let mut z = Deflater::new(1);
    let zd = z.message(&json(5000));
    let mut input = frame(false, RSV1, 1, &zd[..10]);
    input.extend(frame(true, RSV1, 9, b""));
    assert_fails(input, true, 1002, |e| matches!(e, Error::ProtocolReservedBits { rsv: RSV1 }));
}

#[test]
fn rsv1_without_negotiation_is_1002() {
    let zd = Deflater::new(1).message(&json(5000));
    assert_fails(frame(true, RSV1, 1, &zd), false, 1002, |e| matches!(e, Error::ProtocolReservedBits { rsv: RSV1 }));
    assert_fails(frame(false, RSV1, 2, &zd), false, 1002, |e| matches!(e, Error::ProtocolReservedBits { rsv: RSV1 }));
    // Through the handshake: the client offered, the server declined (deflate off), the client
    // compresses anyway.
    for server_deflate in [None, Some(DeflateOptions::default())] {
        let offer = if server_deflate.is_none() { Some("permessage-deflate") } else { None };
        let mut input = request(offer).into_bytes();
        input.extend(frame(true, RSV1, 1, &zd));
        let opts = AcceptOptions { deflate: server_deflate, ..AcceptOptions::default() };
        let (mut conn, accepted) = lowbit_websockets::accept(Script::new(input, Feed::Whole), &opts).unwrap();
        assert_eq!(accepted.extensions, None);
        let head = conn.get_ref().written.len();
        conn.get_mut().written.drain(..head);
        let (_, e) = read_until_error(&mut conn);
        assert!(matches!(e, Error::ProtocolReservedBits { rsv: RSV1 }), "{e:?}");
        assert_eq!(close_written(&conn), Some(1002));
    }
}

#[test]
fn rsv2_and_rsv3_stay_reserved_with_deflate_on() {
    let zd = Deflater::new(1).message(&json(5000));
    for rsv in [RSV2, RSV3, RSV1 | RSV2, RSV1 | RSV3] {
        assert_fails(frame(true, rsv, 1, &zd), true, 1002, |e| matches!(e, Error::ProtocolReservedBits { .. }));
    }
}

// ---------------------------------------------------------------------------------------------
// Corrupt data: 1007

/// Writes DEFLATE bit fields: values LSB first, Huffman codes MSB first (RFC 1951 §3.1.1).
struct Bits {
    out: Vec<u8>,
    n: u32,
}

impl Bits {
    fn new() -> Self {
        Self { out: Vec::new(), n: 0 }
    }
    fn bit(&mut self, b: u32) {
        if self.n.is_multiple_of(8) {
            self.out.push(0);
        }
        *self.out.last_mut().unwrap() |= ((b & 1) as u8) << (self.n % 8);
        self.n += 1;
    }
    fn value(&mut self, v: u32, len: u32) {
        (0..len).for_each(|i| self.bit(v >> i));
    }
    fn code(&mut self, c: u32, len: u32) {
        (0..len).rev().for_each(|i| self.bit(c >> i));
    }
}

/// A fixed-Huffman block: `first_literal` (if any) then a match of length 3 at `distance`,
/// end of block, then the 3 header bits of the sync flush's empty stored block (the receiver
/// restores its 00 00 ff ff).
fn fixed_block_with_match(first_literal: Option<u8>, distance_code: u32) -> Vec<u8> {
    let mut b = Bits::new();
    b.value(0, 1); // BFINAL
    b.value(1, 2); // BTYPE = fixed Huffman
    if let Some(lit) = first_literal {
        b.code(0x30 + u32::from(lit), 8); // literals 0–143: 8-bit codes from 00110000
    }
    b.code(1, 7); // 257: length 3
    b.code(distance_code, 5); // distance code (0 = distance 1)
    b.code(0, 7); // 256: end of block
    b.value(0, 3); // the sync flush's stored block header; padding follows
    b.out
}

/// "Hello" compressed in one block (RFC 7692 §7.2.3.1), with BFINAL set (§7.2.3.4, before
/// its padding byte).
const HELLO: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
const HELLO_FINAL: [u8; 7] = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

/// RFC 7692 §7.2.3's example payloads, each a message (or messages) of "Hello", whole and
/// split over two frames, with context takeover on.
#[test]
fn rfc7692_examples_inflate_to_hello() {
    let padded_final = [&HELLO_FINAL[..], &[0x00]].concat();
    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("7.2.3.1 one compressed block", vec![HELLO.to_vec()]),
        ("7.2.3.2 the second message refers to the first", vec![HELLO.to_vec(), vec![0xf2, 0x00, 0x11, 0x00, 0x00]]),
        ("7.2.3.3 a stored block", vec![vec![0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00]]),
        ("7.2.3.4 a final block, padded; the next message starts afresh", vec![padded_final.clone(), HELLO.to_vec()]),
        ("7.2.3.4 twice", vec![padded_final.clone(), padded_final]),
        (
            "7.2.3.5 two blocks",
            vec![vec![0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00]],
        ),
        ("a final block without the padding byte", vec![HELLO_FINAL.to_vec(), HELLO.to_vec()]),
    ];
    for (what, messages) in cases {
        let whole: Vec<u8> = messages.iter().flat_map(|m| frame(true, RSV1, 1, m)).collect();
        let split: Vec<u8> = messages
            .iter()
            .flat_map(|m| {
                let (a, b) = m.split_at(m.len() / 2);
                [frame(false, RSV1, 1, a), frame(true, 0, 0, b)].concat()
            })
            .collect();
        for input in [whole, split] {
            let got = read_all_ok(&mut server(input, true));
            let want = vec![(OpCode::Text, b"Hello".to_vec()); messages.len()];
            assert_eq!(got, want, "{what}");
        }
    }
}

#[test]
fn data_after_a_final_block_other_than_its_padding_is_1007() {
    let is_corrupt = |e: &Error| matches!(e, Error::InvalidCompressedData);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("two bytes after it", [&HELLO_FINAL[..], &[0x00, 0x00]].concat()),
        ("a padding byte that opens a final block", [&HELLO_FINAL[..], &[0x01]].concat()),
        ("a padding byte that opens a compressed block", [&HELLO_FINAL[..], &[0x02]].concat()),
        ("a second stream", [&HELLO_FINAL[..], &HELLO[..]].concat()),
    ];
    for (what, data) in cases {
        let mut conn = server(frame(true, RSV1, 1, &data), true);
        let (got, e) = read_until_error(&mut conn);
        assert!(got.is_empty() && is_corrupt(&e), "{what}: {got:?} {e:?}");
        assert_eq!(close_written(&conn), Some(1007), "{what}");
    }
}

#[test]
fn corrupt_deflate_data_is_1007() {
    let is_corrupt = |e: &Error| matches!(e, Error::InvalidCompressedData);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", vec![0xff, 0xff, 0xff, 0xff, 0xff]),
        ("reserved block type 11", vec![0x07, 0x00]),
        ("stored block with LEN != ~NLEN", vec![0x00, 0x05, 0x00, 0x00, 0x00, b'a', b'b', b'c', b'd', b'e']),
        ("data after the final block", vec![0x01, 0x00, 0x00, 0xff, 0xff, 0x12, 0x34, 0x56]),
        ("invalid distance code 30", fixed_block_with_match(Some(b'a'), 30)),
    ];
    for (what, data) in cases {
        let mut conn = server(frame(true, RSV1, 2, &data), true);
        let (_, e) = read_until_error(&mut conn);
        assert!(is_corrupt(&e), "{what}: {e:?}");
        assert_eq!(close_written(&conn), Some(1007), "{what}");
        // The same data fragmented.
        let (a, b) = data.split_at(data.len() / 2);
        let mut input = frame(false, RSV1, 2, a);
        input.extend(frame(true, 0, 0, b));
        assert_fails(input, true, 1007, is_corrupt);
    }
}

#[test]
fn distance_before_the_start_of_the_stream_is_1007() {
    // Sanity: the same construction with a literal first is valid ("aaaa").
    let mut conn = server(frame(true, RSV1, 1, &fixed_block_with_match(Some(b'a'), 0)), true);
    assert_eq!(read_all_ok(&mut conn), vec![(OpCode::Text, b"aaaa".to_vec())]);
    // A match at distance 1 as the very first symbol of a fresh stream refers to nothing
    // (RFC 1951 §3.2.5; zlib: "invalid distance too far back").
    let mut conn = server(frame(true, RSV1, 2, &fixed_block_with_match(None, 0)), true);
    let (got, e) = read_until_error(&mut conn);
    assert!(
        matches!(e, Error::InvalidCompressedData) && close_written(&conn) == Some(1007),
        "a match before the start of the stream was accepted: {e:?}, messages {got:?}, close {:?}",
        close_written(&conn)
    );
}

#[test]
fn compressed_text_with_invalid_utf8_is_1007() {
    let zd = Deflater::new(1).message(b"valid start \xc3\x28 then invalid");
    assert_fails(frame(true, RSV1, 1, &zd), true, 1007, |e| matches!(e, Error::InvalidUtf8));
    // Fragmented, the bad byte pair split across fragments of the compressed data.
    let zd = Deflater::new(0).message(&[b"ok".as_slice(), &[0xe2, 0x82], b"x"].concat());
    let (a, b) = zd.split_at(zd.len() - 2);
    let mut input = frame(false, RSV1, 1, a);
    input.extend(frame(true, 0, 0, b));
    assert_fails(input, true, 1007, |e| matches!(e, Error::InvalidUtf8));
}

// ---------------------------------------------------------------------------------------------
// Limits: 1009

#[test]
fn inflating_past_the_limit_is_1009() {
    const LIMIT: usize = 64 * 1024;
    let mut z = Deflater::new(9);
    let exact = z.message(&vec![b'a'; LIMIT]);
    let over = z.message(&vec![b'b'; LIMIT + 1]);
    let mut input = frame(true, RSV1, 2, &exact);
    input.extend(frame(true, RSV1, 2, &over));
    let mut conn = server_with(input, Some(DeflateConfig::default()), LIMIT);
    let (got, e) = read_until_error(&mut conn);
    assert_eq!(got, vec![(OpCode::Binary, vec![b'a'; LIMIT])], "a message of exactly the limit is fine");
    assert!(matches!(e, Error::MessageTooBig { limit } if limit == LIMIT as u64), "{e:?}");
    assert_eq!(close_written(&conn), Some(1009));
}

/// The limit bounds the message after inflation (`Config::max_read_limit`: "the largest message
/// accepted, in bytes, after any inflation"). Incompressible data grows a little when
/// deflated (stored blocks: 5 bytes per 64 KiB), and peers such as Python's `websockets` and
/// browsers compress every message: a message of exactly the limit must still get through.
#[test]
fn incompressible_message_of_exactly_the_limit_is_accepted() {
    const LIMIT: usize = 64 * 1024;
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let random: Vec<u8> = (0..LIMIT)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect();
    let z = Deflater::new(6).message(&random);
    assert!(z.len() > LIMIT, "deflate made {} bytes of {LIMIT}", z.len());
    for fragmented in [false, true] {
        let input = if fragmented {
            let (a, b) = z.split_at(LIMIT / 2);
            [frame(false, RSV1, 2, a), frame(true, 0, 0, b)].concat()
        } else {
            frame(true, RSV1, 2, &z)
        };
        let mut conn = server_with(input, Some(DeflateConfig::default()), LIMIT);
        let (got, e) = read_until_error(&mut conn);
        assert!(
            matches!(e, Error::AbnormalClosure) && got.len() == 1 && got[0].1 == random,
            "a {LIMIT}-byte message ({} bytes compressed, fragmented: {fragmented}) against a {LIMIT}-byte limit: \
             got {} messages, then {e:?} (close {:?})",
            z.len(),
            got.len(),
            close_written(&conn)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Negotiation: bad offers declined, bad answers refused

fn request(extensions: Option<&str>) -> String {
    let mut r = String::from(
        "GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
    );
    if let Some(e) = extensions {
        r.push_str(&format!("Sec-WebSocket-Extensions: {e}\r\n"));
    }
    r.push_str("\r\n");
    r
}

/// Options with the miniz_oxide engine, which the negotiation tests below pin: their answers
/// rest on it declining windows below 15 (it writes a 32 KiB window only).
fn miniz() -> DeflateOptions {
    DeflateOptions { engine: lowbit_websockets::deflate::Engine::Miniz, ..DeflateOptions::default() }
}

/// The server's answer to an offer: the response head, and what `accept` negotiated.
fn answer(offer: &str, opts: DeflateOptions) -> (String, Option<String>) {
    let opts = AcceptOptions { deflate: Some(opts), ..AcceptOptions::default() };
    let (conn, accepted) = lowbit_websockets::accept(Script::new(request(Some(offer)), Feed::Whole), &opts).unwrap();
    (String::from_utf8(conn.get_ref().written.clone()).unwrap(), accepted.extensions)
}

#[test]
fn bad_extension_offers_are_declined() {
    for offer in [
        "permessage-deflate; server_max_window_bits=8",
        "permessage-deflate; server_max_window_bits=14", // miniz_oxide writes a 32 KiB window only
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=09",
        "permessage-deflate; server_max_window_bits=+9",
        "permessage-deflate; client_max_window_bits=+9",
        "permessage-deflate; server_max_window_bits=\"12\"x",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=abc",
        "permessage-deflate; server_no_context_takeover=true",
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; unknown_parameter",
        "permessage-deflate; mux",
        "permessage-deflate; server_max_window_bits=10, permessage-deflate; x=1",
        "permessage-deflate;",
        "permessage-deflate; =1",
        "permessage-deflate; \"server_no_context_takeover\"",
        "x-webkit-deflate-frame",
        "deflate-frame; no_context_takeover",
        "permessage-bzip2",
        "",
        ",,",
    ] {
        let (head, negotiated) = answer(offer, miniz());
        assert!(head.starts_with("HTTP/1.1 101 "), "{offer}: {head}");
        assert!(!head.to_ascii_lowercase().contains("sec-websocket-extensions"), "{offer:?} must be declined: {head}");
        assert_eq!(negotiated, None, "{offer:?}");
    }
}

#[test]
fn acceptable_offers_get_exact_answers() {
    let pairs = [
        ("permessage-deflate", "permessage-deflate"),
        ("permessage-deflate; client_max_window_bits", "permessage-deflate"),
        ("permessage-deflate; client_max_window_bits=9", "permessage-deflate; client_max_window_bits=9"),
        ("permessage-deflate; client_max_window_bits=\"12\"", "permessage-deflate; client_max_window_bits=12"),
        ("permessage-deflate; server_max_window_bits=15", "permessage-deflate; server_max_window_bits=15"),
        (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ),
        // The first offer asks for a window miniz_oxide cannot write: the fallback is taken.
        ("permessage-deflate; server_max_window_bits=10, permessage-deflate", "permessage-deflate"),
        ("x-unknown, permessage-deflate; client_no_context_takeover", "permessage-deflate; client_no_context_takeover"),
        ("PERMESSAGE-DEFLATE ; Client_Max_Window_Bits = 10", "permessage-deflate; client_max_window_bits=10"),
    ];
    for (offer, want) in pairs {
        let (head, negotiated) = answer(offer, miniz());
        assert_eq!(negotiated.as_deref(), Some(want), "{offer}");
        assert!(head.contains(&format!("\r\nSec-WebSocket-Extensions: {want}\r\n")), "{offer}: {head}");
    }
    // Server-side policy is added to the answer even when the client did not ask.
    let mut strict = miniz();
    strict.server_no_context_takeover = true;
    strict.client_no_context_takeover = true;
    let (_, negotiated) = answer("permessage-deflate", strict);
    assert_eq!(
        negotiated.as_deref(),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
    );
}

fn connect_with_answer(answer: &str, deflate: Option<DeflateOptions>) -> lowbit_websockets::Result<Option<String>> {
    let stream = Answering::new(answer);
    let opts = ConnectOptions { request: ClientOptions::new("example.com"), deflate, ..ConnectOptions::default() };
    lowbit_websockets::connect(stream, &opts).map(|(_, c)| c.extensions)
}

#[test]
fn bad_extension_answers_fail_the_client_handshake() {
    let offer = Some(miniz());
    for bad in [
        "permessage-deflate; client_max_window_bits=10", // we cannot write with a smaller window
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; unknown",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=+9",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate, permessage-deflate",
    ] {
        let r = connect_with_answer(bad, offer);
        assert!(matches!(r, Err(Error::Negotiation(_)) | Err(Error::Handshake(_))), "{bad}: {r:?}");
    }
    assert!(matches!(
        connect_with_answer("permessage-deflate, permessage-deflate", offer),
        Err(Error::Negotiation(NegotiationError::Duplicate))
    ));
    // An extension we never offered.
    assert!(matches!(connect_with_answer("x-foo", offer), Err(Error::Handshake(HandshakeError::UnofferedExtension))));
    assert!(matches!(
        connect_with_answer("permessage-deflate", None),
        Err(Error::Handshake(HandshakeError::UnofferedExtension))
    ));
    // We asked for server_no_context_takeover and a window: an answer without them fails.
    let mut strict = miniz();
    strict.server_no_context_takeover = true;
    strict.server_max_window_bits = Some(10);
    assert!(matches!(
        connect_with_answer("permessage-deflate; server_max_window_bits=10", Some(strict)),
        Err(Error::Negotiation(_))
    ));
    assert!(matches!(
        connect_with_answer("permessage-deflate; server_no_context_takeover; server_max_window_bits=11", Some(strict)),
        Err(Error::Negotiation(_))
    ));
    // Good answers.
    assert_eq!(connect_with_answer("", offer).unwrap(), None);
    assert_eq!(
        connect_with_answer("permessage-deflate; server_no_context_takeover; server_max_window_bits=9", Some(strict))
            .unwrap()
            .as_deref(),
        Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=9")
    );
}

/// What our client offers, by option: checked against RFC 7692's parameter grammar.
#[test]
fn client_offers_are_well_formed() {
    let offer_of = |d: DeflateOptions| {
        let mut s = Answering::new("");
        let opts = ConnectOptions { request: ClientOptions::new("h"), deflate: Some(d), ..ConnectOptions::default() };
        lowbit_websockets::connect(&mut s, &opts).unwrap();
        s.request.lines().find_map(|l| l.strip_prefix("Sec-WebSocket-Extensions: ")).map(str::to_owned)
    };
    assert_eq!(offer_of(miniz()).as_deref(), Some("permessage-deflate"));
    let mut all = miniz();
    all.server_no_context_takeover = true;
    all.client_no_context_takeover = true;
    all.server_max_window_bits = Some(9);
    assert_eq!(
        offer_of(all).as_deref(),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9")
    );
    // A window the RFC does not allow is refused before anything is sent.
    for bits in [0, 7, 16, 255] {
        let mut s = Answering::new("");
        let deflate = DeflateOptions { server_max_window_bits: Some(bits), ..miniz() };
        let opts =
            ConnectOptions { request: ClientOptions::new("h"), deflate: Some(deflate), ..ConnectOptions::default() };
        let r = lowbit_websockets::connect(&mut s, &opts);
        assert!(matches!(r, Err(Error::Negotiation(NegotiationError::BadParameter(_)))), "{bits}: {r:?}");
        assert!(s.request.is_empty(), "{bits}: sent {:?}", s.request);
    }
}
