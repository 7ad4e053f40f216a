//! Test helpers: an in-memory scripted stream for `Conn`, a raw frame builder that can build
//! frames no library would (bad opcodes, RSV bits, non-minimal lengths, lying lengths), and an
//! independent parser for the frames a `Conn` wrote, so tests can assert what went on the wire.
#![allow(dead_code)]

use std::io::{self, Cursor, Read, Write};

use lowbit_websockets::Role;

/// splitmix64: a tiny deterministic generator for test content.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// How a [`Script`] hands its input to the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// As much as the reader's buffer takes per `read` call.
    Whole,
    /// One byte per `read` call: every header and payload boundary gets split.
    Bytewise,
}

/// Both feeds, for tests that must behave the same however the bytes arrive.
pub const FEEDS: [Feed; 2] = [Feed::Whole, Feed::Bytewise];

/// An in-memory duplex stream: reads come from a fixed input (then `Ok(0)`, end of stream);
/// writes are collected in `written`.
#[derive(Debug)]
pub struct Script {
    input: Vec<u8>,
    pos: usize,
    per_read: usize,
    /// Everything written to the stream, in order.
    pub written: Vec<u8>,
    /// How many `read` calls returned data.
    pub reads: usize,
    /// Every other `read` fails with `WouldBlock` (a socket read timeout).
    stutter: bool,
    calls: usize,
}

impl Script {
    pub fn new(input: impl Into<Vec<u8>>, feed: Feed) -> Self {
        let per_read = match feed {
            Feed::Whole => usize::MAX,
            Feed::Bytewise => 1,
        };
        Self { input: input.into(), pos: 0, per_read, written: Vec::new(), reads: 0, stutter: false, calls: 0 }
    }

    /// Makes every other `read` call fail with `WouldBlock`, as a socket with a read timeout.
    pub fn stuttering(mut self) -> Self {
        self.stutter = true;
        self
    }

    /// Input bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    /// The frames written so far, parsed.
    pub fn frames(&self) -> Vec<WireFrame> {
        parse_frames(&self.written)
    }
}

impl Read for Script {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        if self.stutter && self.calls % 2 == 1 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.per_read).min(self.remaining());
        buf[..n].copy_from_slice(&self.input[self.pos..self.pos + n]);
        self.pos += n;
        if n > 0 {
            self.reads += 1;
        }
        Ok(n)
    }
}

impl Write for Script {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A client's stream to a fake server: once the client has written its upgrade request, the
/// first read answers it with a 101 carrying that request's accept key and, unless
/// `extensions` is empty, that `Sec-WebSocket-Extensions` value. The request is kept in
/// `request`; `written` collects what is written after it.
pub struct Answering {
    extensions: String,
    input: Cursor<Vec<u8>>,
    answered: bool,
    /// The upgrade request the client wrote.
    pub request: String,
    /// Everything written after the request.
    pub written: Vec<u8>,
}

impl Answering {
    pub fn new(extensions: &str) -> Self {
        Self {
            extensions: extensions.to_owned(),
            input: Cursor::new(Vec::new()),
            answered: false,
            request: String::new(),
            written: Vec::new(),
        }
    }
}

impl Read for Answering {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.answered {
            self.request = String::from_utf8_lossy(&self.written).into_owned();
            self.written.clear();
            let key = self
                .request
                .lines()
                .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                .expect("client sent a key")
                .trim();
            let mut head = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
                lowbit_websockets::handshake::accept_key(key)
            );
            if !self.extensions.is_empty() {
                head.push_str(&format!("Sec-WebSocket-Extensions: {}\r\n", self.extensions));
            }
            head.push_str("\r\n");
            self.input = Cursor::new(head.into_bytes());
            self.answered = true;
        }
        self.input.read(buf)
    }
}

impl Write for Answering {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub const OP_CONT: u8 = 0;
pub const OP_TEXT: u8 = 1;
pub const OP_BINARY: u8 = 2;
pub const OP_CLOSE: u8 = 8;
pub const OP_PING: u8 = 9;
pub const OP_PONG: u8 = 10;

/// The mask key the builder uses for frames sent to a server (RFC 6455 §5.7's example key).
pub const TEST_KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// How the builder writes the payload length field.
#[derive(Debug, Clone, Copy)]
enum Len {
    /// The minimal form for the actual payload length.
    Minimal,
    /// The 16-bit form (`126` + 2 bytes) carrying this value.
    U16(u16),
    /// The 64-bit form (`127` + 8 bytes) carrying this value.
    U64(u64),
    /// The minimal form for this value, whatever the payload really is.
    Declared(u64),
}

/// A frame built byte by byte, valid or not.
#[derive(Debug, Clone)]
pub struct RawFrame {
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    len: Len,
    payload: Vec<u8>,
}

impl RawFrame {
    /// A final, unmasked frame with RSV clear and a minimal length.
    pub fn new(opcode: u8, payload: impl AsRef<[u8]>) -> Self {
        Self { fin: true, rsv: 0, opcode, mask: None, len: Len::Minimal, payload: payload.as_ref().to_vec() }
    }

    pub fn fin(mut self, fin: bool) -> Self {
        self.fin = fin;
        self
    }

    /// RSV bits as they sit in the first byte (`0x40` = RSV1).
    pub fn rsv(mut self, rsv: u8) -> Self {
        self.rsv = rsv;
        self
    }

    pub fn mask(mut self, key: [u8; 4]) -> Self {
        self.mask = Some(key);
        self
    }

    /// The 16-bit length form with the real payload length (non-minimal below 126).
    pub fn len16(mut self) -> Self {
        self.len = Len::U16(self.payload.len() as u16);
        self
    }

    /// The 64-bit length form with the real payload length (non-minimal below 65536).
    pub fn len64(mut self) -> Self {
        self.len = Len::U64(self.payload.len() as u64);
        self
    }

    /// The 64-bit length form carrying `value`, whatever the payload is.
    pub fn raw_len64(mut self, value: u64) -> Self {
        self.len = Len::U64(value);
        self
    }

    /// Announces `value` bytes in the minimal form; the payload actually appended is whatever
    /// was given (usually nothing: a header that promises more than is ever sent).
    pub fn declare_len(mut self, value: u64) -> Self {
        self.len = Len::Declared(value);
        self
    }

    /// Masks the frame as the peer of a `receiver` must: frames to a server are masked.
    pub fn to(self, receiver: Role) -> Vec<u8> {
        match receiver {
            Role::Server => self.mask(TEST_KEY).build(),
            Role::Client => self.build(),
        }
    }

    /// The wire bytes.
    pub fn build(&self) -> Vec<u8> {
        let mut out = vec![(self.fin as u8) << 7 | (self.rsv & 0x70) | (self.opcode & 0x0f)];
        let mask_bit = (self.mask.is_some() as u8) << 7;
        let len = match self.len {
            Len::Minimal => Len::Declared(self.payload.len() as u64),
            other => other,
        };
        match len {
            Len::U16(v) => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&v.to_be_bytes());
            }
            Len::U64(v) => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&v.to_be_bytes());
            }
            Len::Declared(v) if v < 126 => out.push(mask_bit | v as u8),
            Len::Declared(v) if v <= u16::MAX as u64 => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(v as u16).to_be_bytes());
            }
            Len::Declared(v) => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&v.to_be_bytes());
            }
            Len::Minimal => unreachable!(),
        }
        if let Some(key) = self.mask {
            out.extend_from_slice(&key);
        }
        out.extend(self.payload.iter().enumerate().map(|(i, b)| b ^ self.mask.map_or(0, |k| k[i % 4])));
        out
    }
}

pub fn text(payload: impl AsRef<[u8]>) -> RawFrame {
    RawFrame::new(OP_TEXT, payload)
}

pub fn binary(payload: impl AsRef<[u8]>) -> RawFrame {
    RawFrame::new(OP_BINARY, payload)
}

pub fn cont(payload: impl AsRef<[u8]>) -> RawFrame {
    RawFrame::new(OP_CONT, payload)
}

pub fn ping(payload: impl AsRef<[u8]>) -> RawFrame {
    RawFrame::new(OP_PING, payload)
}

pub fn pong(payload: impl AsRef<[u8]>) -> RawFrame {
    RawFrame::new(OP_PONG, payload)
}

/// A close frame with `code` and `reason`.
pub fn close(code: u16, reason: impl AsRef<[u8]>) -> RawFrame {
    let mut body = code.to_be_bytes().to_vec();
    body.extend_from_slice(reason.as_ref());
    RawFrame::new(OP_CLOSE, body)
}

/// A close frame with a raw body (empty, one byte, ...).
pub fn close_body(body: impl AsRef<[u8]>) -> RawFrame {
    RawFrame::new(OP_CLOSE, body)
}

/// Frames concatenated into one input.
pub fn stream(frames: impl IntoIterator<Item = Vec<u8>>) -> Vec<u8> {
    frames.into_iter().flatten().collect()
}

/// One frame as parsed back from the wire, payload unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireFrame {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    pub mask: Option<[u8; 4]>,
    pub payload: Vec<u8>,
}

impl WireFrame {
    /// The status code of a close frame with a body.
    pub fn close_code(&self) -> Option<u16> {
        assert_eq!(self.opcode, OP_CLOSE, "not a close frame: {self:?}");
        (self.payload.len() >= 2).then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }

    /// The reason of a close frame (bytes after the code).
    pub fn close_reason(&self) -> &[u8] {
        self.payload.get(2..).unwrap_or(&[])
    }

    /// `(fin, opcode, payload length)`: the shape of a frame, for exact frame-list assertions.
    pub fn shape(&self) -> (bool, u8, usize) {
        (self.fin, self.opcode, self.payload.len())
    }
}

/// Splits the bytes an endpoint wrote into frames. Independent of the library's parser, and
/// strict: a truncated frame or a non-minimal length (which no correct writer produces) panics.
pub fn parse_frames(mut bytes: &[u8]) -> Vec<WireFrame> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        assert!(bytes.len() >= 2, "truncated header: {bytes:x?}");
        let (b0, b1) = (bytes[0], bytes[1]);
        let mut at = 2;
        let len = match b1 & 0x7f {
            126 => {
                let v = u16::from_be_bytes(bytes[2..4].try_into().unwrap()) as u64;
                assert!(v >= 126, "non-minimal 16-bit length {v} written");
                at = 4;
                v
            }
            127 => {
                let v = u64::from_be_bytes(bytes[2..10].try_into().unwrap());
                assert!(v > u16::MAX as u64 && v >> 63 == 0, "bad 64-bit length {v} written");
                at = 10;
                v
            }
            v => v as u64,
        };
        let mask = (b1 & 0x80 != 0).then(|| {
            let k = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
            at += 4;
            k
        });
        let len = len as usize;
        assert!(bytes.len() >= at + len, "truncated payload: need {len}, have {}", bytes.len() - at);
        let payload = bytes[at..at + len].iter().enumerate().map(|(i, b)| b ^ mask.map_or(0, |k| k[i % 4])).collect();
        frames.push(WireFrame { fin: b0 & 0x80 != 0, rsv: b0 & 0x70, opcode: b0 & 0x0f, mask, payload });
        bytes = &bytes[at + len..];
    }
    frames
}

/// Asserts every frame is masked as a `writer` must mask: a client always, a server never.
pub fn assert_masking(frames: &[WireFrame], writer: Role) {
    for f in frames {
        match writer {
            Role::Client => assert!(f.mask.is_some(), "client wrote an unmasked frame: {f:?}"),
            Role::Server => assert!(f.mask.is_none(), "server wrote a masked frame: {f:?}"),
        }
    }
}

/// Joins data frames into messages `(opcode, payload)`, checking the fragmentation rules a
/// writer must keep; control frames are skipped.
pub fn reassemble(frames: &[WireFrame]) -> Vec<(u8, Vec<u8>)> {
    let mut messages = Vec::new();
    let mut current: Option<(u8, Vec<u8>)> = None;
    for f in frames.iter().filter(|f| f.opcode < 8) {
        match (&mut current, f.opcode) {
            (None, OP_TEXT | OP_BINARY) => current = Some((f.opcode, f.payload.clone())),
            (Some((_, buf)), OP_CONT) => buf.extend_from_slice(&f.payload),
            (cur, op) => panic!("bad fragmentation: opcode {op} with message in progress {}", cur.is_some()),
        }
        if f.fin {
            messages.push(current.take().unwrap());
        }
    }
    assert!(current.is_none(), "unfinished message on the wire");
    messages
}
