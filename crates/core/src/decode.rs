//! The sans-IO read side: bytes in, validated frames and messages out.
//!
//! The [`Decoder`] owns an input buffer and a message buffer, both sized by use: the input
//! buffer grows while reads fill it (up to the configured read buffer size) and both give back
//! what recent traffic did not need (the `sizing` module). A frame whose payload is already whole in the input buffer is unmasked in
//! place and handed out without a copy; anything longer is unmasked straight into the message
//! buffer as its bytes arrive, so text is validated piece by piece and fails on the first bad
//! piece (RFC 6455 §8.1), and `max_read_limit` is checked against each header before any
//! payload memory is spent. While a long payload is in progress and nothing else is buffered,
//! [`Decoder::read_buf`] hands out the message buffer itself, so the socket's bytes land where
//! they stay (one copy, like a frame that fits the input buffer).
//!
//! Call order: put bytes in with [`Decoder::read_buf`] + [`Decoder::advance`] (zero copy from a
//! socket) or [`Decoder::feed`]; then call [`Decoder::poll_message`] (or
//! [`Decoder::poll_frame`]) until it returns `Ok(None)`, which means it needs more bytes. An
//! event borrows the decoder; drop it before the next call. After an error the decoder is
//! failed for good: every later poll returns [`Error::WebSocketClosed`].

use crate::close::{CloseCode, CloseFrame};
use crate::deflate::{DeflateConfig, Inflater};
use crate::error::Error;
use crate::frame::{Header, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode, RSV1};
use crate::mask::apply_mask;
use crate::role::{Config, Role};
use crate::sizing::{INPUT_START, Trim};

// A control frame is decoded whole from the input buffer, however small it has become.
const _: () = assert!(INPUT_START >= MAX_HEADER_LEN + MAX_CONTROL_PAYLOAD);
use crate::utf8::Utf8Validator;

/// A complete message or a control frame, as [`Decoder::poll_message`] returns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A whole text or binary message. Text has been validated as UTF-8.
    Message {
        /// [`OpCode::Text`] or [`OpCode::Binary`].
        op: OpCode,
        /// The RSV bits of the message's first frame (`0x40` = compressed).
        rsv: u8,
        /// The unmasked payload of all its fragments.
        payload: &'a [u8],
    },
    /// A ping; the peer expects a pong with the same payload.
    Ping(&'a [u8]),
    /// A pong.
    Pong(&'a [u8]),
    /// A close frame, validated (code allowed on the wire, reason UTF-8).
    Close {
        /// The parsed code and reason.
        frame: CloseFrame<'a>,
        /// The raw body, to echo back unchanged.
        body: &'a [u8],
    },
}

/// One frame, as [`Decoder::poll_frame`] returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// FIN: the last frame of its message.
    pub is_final: bool,
    /// The RSV bits as they sit in the first header byte.
    pub rsv: u8,
    /// The frame type.
    pub op: OpCode,
    /// The unmasked payload.
    pub payload: &'a [u8],
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Waiting for the next header.
    Header,
    /// Copying a data frame's payload into the message buffer.
    Payload { header: Header, remaining: u64, offset: usize },
    /// Failed or closed: nothing more is read.
    Done,
}

/// What one step produced, before it is shaped into an [`Event`] or a [`Frame`]: indices, not
/// borrows, so a driver can loop on steps and still hand the decoder bytes in between.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Output {
    /// A data frame or message: payload in the input buffer (`Some(range)`) or the message buffer.
    Data { is_final: bool, rsv: u8, op: OpCode, input: Option<(usize, usize)> },
    /// A ping or pong, its payload at `start..end` of the input buffer.
    Control { op: OpCode, start: usize, end: usize },
    /// A close frame, validated when it was decoded: its code, and its body at `start..end`.
    Close { code: Option<CloseCode>, start: usize, end: usize },
}

/// The read half of the protocol engine. See the [module docs](self) for the call order.
#[derive(Debug)]
pub struct Decoder {
    role: Role,
    limit: u64,
    /// `max_fragments`: frames per message.
    max_frames: usize,
    /// RSV bits that a negotiated extension claims on a message's first frame.
    rsv_allowed: u8,
    /// The bits the caller allowed with `set_reserved_bits` (deflate adds RSV1 to them).
    rsv_extra: u8,
    /// The input buffer: its length is what reads may fill now (see [`crate::sizing`]).
    buf: Vec<u8>,
    /// The largest the input buffer may grow: the configured read buffer size.
    buf_max: usize,
    /// What the input buffer should hold at the next `read_buf` (0: as it is): twice its
    /// size after a read filled it, or what `feed` was handed.
    grow_to: usize,
    /// The input buffer is cut to this at the next `read_buf` that finds it empty.
    cut_to: Option<usize>,
    /// Reads, for giving back input buffer capacity.
    buf_trim: Trim,
    /// Messages, for giving back message buffer capacity.
    msg_trim: Trim,
    start: usize,
    end: usize,
    state: State,
    /// Assembled payload of the message (or, in frame mode, the frame) in progress: its first
    /// `fill` bytes. The rest of `msg` is old bytes, kept so that reads straight into the
    /// message buffer need no zero-fill (this crate has no `unsafe` to skip it).
    msg: Vec<u8>,
    fill: usize,
    /// `read_buf` handed out `msg[fill..fill + direct]` instead of the input buffer.
    direct: usize,
    /// Bytes `advance` put at `msg[fill..]` that the next step has to unmask and validate.
    direct_pending: usize,
    /// Set when the last output borrowed `msg`: it is cleared at the next poll.
    msg_taken: bool,
    /// The opcode and RSV bits of the fragmented message in progress.
    fragment: Option<(OpCode, u8)>,
    /// Payload bytes of the message in progress, counted against `limit`.
    msg_len: u64,
    /// Frames of the fragmented message in progress so far, counted against `max_frames`.
    frames: usize,
    utf8: Utf8Validator,
    /// permessage-deflate, when negotiated.
    inflate: Option<Inflate>,
}

/// The read side of permessage-deflate.
#[derive(Debug)]
struct Inflate {
    inflater: Inflater,
    /// The peer resets its compressor per message, so we reset ours too.
    reset_each: bool,
    /// Where a message is inflated before it is swapped into the message buffer.
    out: Vec<u8>,
}

impl Decoder {
    /// A decoder for `config.role`. Its input buffer is allocated at the first read, small, and
    /// grows up to the read buffer size `config` implies (the `sizing` module).
    pub fn new(config: &Config) -> Self {
        Self {
            role: config.role,
            limit: config.max_read_limit as u64,
            max_frames: config.max_fragments,
            rsv_allowed: 0,
            rsv_extra: 0,
            buf: Vec::new(),
            buf_max: config.read_buffer_size().max(INPUT_START),
            grow_to: 0,
            cut_to: None,
            buf_trim: Trim::default(),
            msg_trim: Trim::default(),
            start: 0,
            end: 0,
            state: State::Header,
            msg: Vec::new(),
            fill: 0,
            direct: 0,
            direct_pending: 0,
            msg_taken: false,
            fragment: None,
            msg_len: 0,
            frames: 0,
            utf8: Utf8Validator::new(),
            inflate: None,
        }
    }

    /// Turns permessage-deflate on (or off, with `None`) as negotiated: RSV1 marks a compressed
    /// message, which is inflated (bounded by `max_read_limit`) before it is handed out.
    pub fn set_deflate(&mut self, config: Option<&DeflateConfig>) {
        self.inflate = config.map(|c| Inflate {
            inflater: Inflater::new(),
            reset_each: c.decompress_no_context_takeover,
            out: Vec::new(),
        });
        self.rsv_allowed = self.rsv_extra | if config.is_some() { RSV1 } else { 0 };
    }

    /// Lets RSV bits through on the first frame of a message, for a negotiated extension
    /// (`0x40` for permessage-deflate). RSV bits on continuation or control frames stay errors.
    pub fn set_reserved_bits(&mut self, rsv: u8) {
        self.rsv_extra = rsv & 0x70;
        self.rsv_allowed = self.rsv_extra | if self.inflate.is_some() { RSV1 } else { 0 };
    }

    /// Where to read socket bytes into: the free tail of the input buffer, or, while a payload
    /// longer than the input buffer is in progress and nothing else is buffered, the message
    /// buffer (so a large payload is copied once). Never empty. Follow it with
    /// [`Decoder::advance`].
    #[inline]
    pub fn read_buf(&mut self) -> &mut [u8] {
        self.direct = 0;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if let Some(size) = self.cut_to.take() {
                crate::sizing::cut(&mut self.buf, size);
            }
            if let State::Payload { remaining, .. } = self.state
                && remaining >= self.buf_max as u64
                && self.direct_pending == 0
            {
                // As far ahead of what has arrived as `begin_frame` reserves, no further.
                let n = remaining.min(self.ahead() as u64) as usize;
                let end = self.fill + n;
                if self.msg.len() < end {
                    self.msg.resize(end, 0);
                }
                self.direct = n;
                return &mut self.msg[self.fill..end];
            }
        } else if self.start > 0 {
            // Only a partial header or control frame is ever left over (data payloads are
            // drained as they arrive), so this moves at most a few dozen bytes.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let want = std::mem::take(&mut self.grow_to);
        if self.buf.is_empty() || want > self.buf.len() {
            let size = want.checked_next_power_of_two().unwrap_or(usize::MAX).clamp(INPUT_START, self.buf_max);
            self.buf.reserve_exact(size - self.buf.len());
            self.buf.resize(size, 0);
        }
        &mut self.buf[self.end..]
    }

    /// How far ahead of the bytes that arrived the message buffer may be reserved or read
    /// into: a header alone must not make us allocate a whole message.
    fn ahead(&self) -> usize {
        self.buf_max * 16
    }

    /// Swaps the input buffer with `spare` when that moves an unused buffer to where it is
    /// needed: `park` gives an empty one away (nothing is buffered), otherwise one is taken
    /// when this decoder has none. See [`Session::park`](crate::Session::park).
    pub(crate) fn swap_input(&mut self, spare: &mut Vec<u8>, park: bool) {
        let swap = if park {
            self.start == self.end && self.direct == 0 && spare.capacity() == 0
        } else {
            self.buf.capacity() == 0 && !spare.is_empty()
        };
        if swap {
            std::mem::swap(&mut self.buf, spare);
            self.buf.truncate(self.buf_max);
            (self.start, self.end) = (0, 0);
        }
    }

    /// Marks `n` bytes of [`Decoder::read_buf`] as filled.
    #[inline]
    pub fn advance(&mut self, n: usize) {
        if self.direct > 0 {
            self.direct_pending = n.min(self.direct);
            self.direct = 0;
        } else {
            self.end = (self.end + n).min(self.buf.len());
            if self.end == self.buf.len() {
                self.grow_to = self.buf.len() * 2;
            }
            if let Some(keep) = self.buf_trim.end_use(n) {
                self.cut_to = Some(keep);
            }
        }
    }

    /// Copies as much of `data` into the input buffer as fits and returns how much that was.
    /// Poll until `Ok(None)` before feeding the rest.
    pub fn feed(&mut self, data: &[u8]) -> usize {
        // Bytes pushed in whole (a JavaScript runtime's chunk): make room for all of them at
        // once, up to the largest input buffer, so a frame that came whole is decoded whole.
        let want = self.end - self.start + data.len();
        if want > self.buf.len() {
            self.grow_to = want;
        }
        let room = self.read_buf();
        let n = room.len().min(data.len());
        room[..n].copy_from_slice(&data[..n]);
        self.advance(n);
        n
    }

    /// Bytes received but not yet decoded.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Whether a fragmented message, or a frame's payload, is in progress.
    pub fn in_message(&self) -> bool {
        self.fragment.is_some() || self.in_payload()
    }

    /// Whether a frame's payload is being read (after an interrupted read): no header to peek.
    pub fn in_payload(&self) -> bool {
        matches!(self.state, State::Payload { .. })
    }

    /// Parses the next frame header without consuming anything, or `Ok(None)` if it is not
    /// whole yet (or a frame's payload is still being read). Applies the same checks as
    /// [`Decoder::poll_frame`].
    pub fn peek_header(&self) -> Result<Option<Header>, Error> {
        match self.state {
            State::Header => Ok(self.parse_header()?.map(|(h, _)| h)),
            State::Payload { .. } => Ok(None),
            State::Done => Err(Error::WebSocketClosed),
        }
    }

    /// The next whole message or control frame, or `Ok(None)` when more bytes are needed.
    #[inline]
    pub fn poll_message(&mut self) -> Result<Option<Event<'_>>, Error> {
        let Some(out) = self.step(false)? else { return Ok(None) };
        Ok(Some(self.event(out)))
    }

    /// Shapes a step's output (from a message-mode step) as an [`Event`].
    #[inline(always)]
    pub(crate) fn event(&self, out: Output) -> Event<'_> {
        match out {
            Output::Data { op, rsv, input, .. } => Event::Message { op, rsv, payload: self.payload(input) },
            Output::Control { op: OpCode::Ping, start, end } => Event::Ping(&self.buf[start..end]),
            Output::Control { start, end, .. } => Event::Pong(&self.buf[start..end]),
            Output::Close { code, start, end } => {
                Event::Close { frame: self.close_frame(code, start, end), body: &self.buf[start..end] }
            }
        }
    }

    /// The payload of a ping or pong output.
    pub(crate) fn control_payload(&self, start: usize, end: usize) -> &[u8] {
        &self.buf[start..end]
    }

    /// The close frame of a close output (validated when it was decoded).
    pub(crate) fn close_frame(&self, code: Option<CloseCode>, start: usize, end: usize) -> CloseFrame<'_> {
        let reason = self.buf[start..end].get(2..).and_then(|r| std::str::from_utf8(r).ok()).unwrap_or("");
        CloseFrame { code, reason }
    }

    /// The next frame, or `Ok(None)` when more bytes are needed. Control frames come out as
    /// frames too; nothing is answered automatically. The continuation rules, UTF-8 of text
    /// and `max_read_limit` per message still apply.
    pub fn poll_frame(&mut self) -> Result<Option<Frame<'_>>, Error> {
        let Some(out) = self.step(true)? else { return Ok(None) };
        Ok(Some(self.frame(out)))
    }

    /// Shapes a step's output (from a frame-mode step) as a [`Frame`].
    pub(crate) fn frame(&self, out: Output) -> Frame<'_> {
        match out {
            Output::Data { is_final, rsv, op, input } => Frame { is_final, rsv, op, payload: self.payload(input) },
            Output::Control { op, start, end } => Frame { is_final: true, rsv: 0, op, payload: &self.buf[start..end] },
            Output::Close { start, end, .. } => {
                Frame { is_final: true, rsv: 0, op: OpCode::Close, payload: &self.buf[start..end] }
            }
        }
    }

    /// Moves the message just output from the message buffer into `out` by swapping buffers
    /// (no copy); `out`'s old buffer becomes the decoder's. For drivers that hand messages to
    /// a caller-owned buffer. Returns `false` (and does nothing) if `out_was` was not a
    /// message assembled in the message buffer.
    pub(crate) fn swap_message(&mut self, out_was: &Output, out: &mut Vec<u8>) -> bool {
        if !matches!(out_was, Output::Data { input: None, .. }) {
            return false;
        }
        self.msg.truncate(self.fill);
        std::mem::swap(&mut self.msg, out);
        // `msg_taken` is still set, so the old buffer now in `msg` is cleared at the next step.
        true
    }

    #[inline(always)]
    fn payload(&self, input: Option<(usize, usize)>) -> &[u8] {
        match input {
            Some((a, b)) => &self.buf[a..b],
            None => &self.msg[..self.fill],
        }
    }

    #[inline]
    fn parse_header(&self) -> Result<Option<(Header, usize)>, Error> {
        let Some((h, len)) = Header::parse(&self.buf[self.start..self.end])? else { return Ok(None) };
        let allowed = if h.op.is_data() { self.rsv_allowed } else { 0 };
        if h.rsv & !allowed != 0 {
            return Err(Error::ProtocolReservedBits { rsv: h.rsv });
        }
        match (self.role, h.mask.is_some()) {
            (Role::Server, false) => return Err(Error::UnmaskedFrame),
            (Role::Client, true) => return Err(Error::MaskedFrame),
            _ => {}
        }
        match (h.op, self.fragment) {
            (OpCode::Continuation, None) => return Err(Error::UnexpectedContinuation),
            (OpCode::Text | OpCode::Binary, Some(_)) => return Err(Error::ExpectedContinuation),
            (OpCode::Continuation, Some(_)) if self.frames >= self.max_frames => {
                return Err(Error::TooManyFragments { limit: self.max_frames as u64 });
            }
            _ => {}
        }
        if h.op.is_data() || h.op == OpCode::Continuation {
            let rsv = if h.op == OpCode::Continuation { self.fragment.map_or(0, |(_, r)| r) } else { h.rsv };
            let total = self.msg_len.saturating_add(h.payload_len);
            if total > self.wire_limit(rsv) {
                return Err(Error::MessageTooBig { limit: self.limit });
            }
        }
        Ok(Some((h, len)))
    }

    /// The most payload bytes a message may take on the wire. The limit is on the message as
    /// delivered: compressed data that does not shrink (random bytes) grows by up to 5 bytes per
    /// 16 KiB stored block, so a compressed message gets that much slack; the inflater then
    /// holds the output to the limit itself.
    fn wire_limit(&self, rsv: u8) -> u64 {
        if rsv & RSV1 != 0 && self.inflate.is_some() {
            self.limit.saturating_add(self.limit / 1024 + 64)
        } else {
            self.limit
        }
    }

    /// One decoding step; the output holds indices, not borrows, so a driver can loop on it.
    #[inline]
    pub(crate) fn step(&mut self, frames: bool) -> Result<Option<Output>, Error> {
        if self.msg_taken {
            self.msg_taken = false;
            let used = std::mem::take(&mut self.fill);
            self.end_message_use(used);
        }
        let result = self.step_inner(frames);
        if result.is_err() {
            self.state = State::Done;
        }
        result
    }

    #[inline]
    fn step_inner(&mut self, frames: bool) -> Result<Option<Output>, Error> {
        loop {
            match self.state {
                State::Done => return Err(Error::WebSocketClosed),
                State::Header => {
                    let Some((h, hlen)) = self.parse_header()? else { return Ok(None) };
                    let body = self.start + hlen;
                    let whole = (self.end - body) as u64 >= h.payload_len;
                    if h.op.is_control() {
                        if !whole {
                            return Ok(None);
                        }
                        return self.control(h, body).map(Some);
                    }
                    // Zero copy: a frame that is its own message (or, in frame mode, any frame)
                    // whose payload is all here is unmasked in place.
                    let alone = frames || (h.is_final && h.op != OpCode::Continuation);
                    if alone && whole {
                        return self.in_place(h, body, frames).map(Some);
                    }
                    self.start = body;
                    self.begin_frame(&h);
                    self.state = State::Payload { header: h, remaining: h.payload_len, offset: 0 };
                }
                State::Payload { header, remaining, offset } => {
                    if !self.take_payload(header, remaining, offset)? {
                        return Ok(None);
                    }
                    self.state = State::Header;
                    if let Some(out) = self.end_frame(&header, frames)? {
                        return Ok(Some(out));
                    }
                }
            }
        }
    }

    /// Moves the payload bytes that arrived (read straight into the message buffer by
    /// `read_buf`, or waiting in the input buffer) into the message, unmasked and validated.
    /// Returns whether the frame's payload is complete. Out of line: frames that arrive whole
    /// never come here, and `step` stays small enough to inline into the read loops.
    #[inline(never)]
    fn take_payload(&mut self, header: Header, remaining: u64, offset: usize) -> Result<bool, Error> {
        let old = self.fill;
        let n = if self.direct_pending > 0 {
            std::mem::take(&mut self.direct_pending)
        } else {
            let n = remaining.min((self.end - self.start) as u64) as usize;
            self.put(n);
            n
        };
        self.fill += n;
        if let Some(key) = header.mask {
            apply_mask(&mut self.msg[old..old + n], key, offset);
        }
        if self.is_plain_text() {
            self.utf8.feed(&self.msg[old..old + n]).map_err(|_| Error::InvalidUtf8)?;
        }
        let remaining = remaining - n as u64;
        if remaining > 0 {
            self.state = State::Payload { header, remaining, offset: offset + n };
        }
        Ok(remaining == 0)
    }

    /// Moves `n` input bytes to the message buffer's `fill` position, overwriting old bytes
    /// before growing it.
    #[inline]
    fn put(&mut self, n: usize) {
        let src = &self.buf[self.start..self.start + n];
        self.start += n;
        let overwrite = (self.msg.len() - self.fill).min(n);
        self.msg[self.fill..self.fill + overwrite].copy_from_slice(&src[..overwrite]);
        self.msg.extend_from_slice(&src[overwrite..]);
    }

    /// Whether the message in progress is text that is validated as it arrives (compressed
    /// text is validated after inflation).
    fn is_plain_text(&self) -> bool {
        matches!(self.fragment, Some((OpCode::Text, 0)))
    }

    /// Records the start of a data frame whose payload goes through the message buffer.
    fn begin_frame(&mut self, h: &Header) {
        if h.op != OpCode::Continuation {
            self.fragment = Some((h.op, h.rsv));
            self.utf8.reset();
            self.frames = 0;
        }
        self.frames += 1;
        self.msg_len += h.payload_len;
        // Reserve what the header announced (already checked against the limit), so a long
        // message grows the buffer once instead of doubling its way up; but never more than a
        // few read buffers ahead of what has arrived, so 14 bytes of header cannot make us
        // allocate a whole message (or overflow with a huge limit).
        let ahead = usize::try_from(h.payload_len).unwrap_or(usize::MAX).min(self.ahead());
        let want = self.fill.saturating_add(ahead);
        if want > self.msg.capacity() {
            self.msg.reserve(want - self.msg.len());
        }
    }

    /// A data frame's payload is complete in the message buffer.
    fn end_frame(&mut self, h: &Header, frames: bool) -> Result<Option<Output>, Error> {
        let (op, rsv) = self.fragment.unwrap_or((h.op, h.rsv));
        if h.is_final {
            if self.is_plain_text() {
                self.utf8.finish().map_err(|_| Error::InvalidUtf8)?;
            }
            self.fragment = None;
            self.msg_len = 0;
        }
        if !h.is_final && !frames {
            return Ok(None);
        }
        if h.is_final && !frames && rsv & RSV1 != 0 && self.inflate.is_some() {
            self.inflate_msg(op, None)?;
        }
        self.msg_taken = true;
        Ok(Some(if frames {
            Output::Data { is_final: h.is_final, rsv: h.rsv, op: h.op, input: None }
        } else {
            Output::Data { is_final: true, rsv, op, input: None }
        }))
    }

    /// A whole data frame sitting in the input buffer: unmask and validate it where it lies.
    #[inline]
    fn in_place(&mut self, h: Header, body: usize, frames: bool) -> Result<Output, Error> {
        if self.fill == 0 {
            // A message that never touched the message buffer still counts as one of its uses:
            // small messages after a large one are what lets it shrink.
            self.end_message_use(0);
        }
        let end = body + h.payload_len as usize;
        let payload = &mut self.buf[body..end];
        if let Some(key) = h.mask {
            apply_mask(payload, key, 0);
        }
        self.start = end;
        if !frames && h.rsv & RSV1 != 0 && self.inflate.is_some() {
            self.inflate_msg(h.op, Some((body, end)))?;
            self.msg_taken = true;
            return Ok(Output::Data { is_final: true, rsv: h.rsv, op: h.op, input: None });
        }
        let text = match h.op {
            OpCode::Text => {
                self.utf8.reset();
                h.rsv == 0
            }
            OpCode::Continuation => self.is_plain_text(),
            _ => false,
        };
        if text {
            if frames && !(h.op == OpCode::Text && h.is_final) {
                self.utf8.feed(&self.buf[body..end]).map_err(|_| Error::InvalidUtf8)?;
                if h.is_final {
                    self.utf8.finish().map_err(|_| Error::InvalidUtf8)?;
                }
            } else {
                simdutf8::basic::from_utf8(&self.buf[body..end]).map_err(|_| Error::InvalidUtf8)?;
            }
        }
        // In frame mode the fragment state still has to follow the frames.
        if h.op != OpCode::Continuation {
            self.fragment = (!h.is_final).then_some((h.op, h.rsv));
            self.msg_len = if h.is_final { 0 } else { h.payload_len };
            self.frames = 1;
        } else if h.is_final {
            self.fragment = None;
            self.msg_len = 0;
        } else {
            self.msg_len += h.payload_len;
            self.frames += 1;
        }
        Ok(Output::Data { is_final: h.is_final, rsv: h.rsv, op: h.op, input: Some((body, end)) })
    }

    /// Ends one use of the message buffer (which holds nothing needed now) with `used` bytes,
    /// giving capacity back at the end of a window; the inflate buffer, which swaps with it,
    /// follows the same count.
    fn end_message_use(&mut self, used: usize) {
        if let Some(keep) = self.msg_trim.end_use(used) {
            crate::sizing::cut(&mut self.msg, keep);
            if let Some(inf) = &mut self.inflate {
                crate::sizing::cut(&mut inf.out, keep);
            }
        }
    }

    /// Inflates a compressed message (from the input buffer at `input`, or from the message
    /// buffer) into the message buffer, then validates text.
    fn inflate_msg(&mut self, op: OpCode, input: Option<(usize, usize)>) -> Result<(), Error> {
        let Some(inf) = &mut self.inflate else { return Err(Error::ProtocolReservedBits { rsv: RSV1 }) };
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        inf.out.clear();
        let data = match input {
            Some((a, b)) => &self.buf[a..b],
            None => &self.msg[..self.fill],
        };
        inf.inflater.inflate(data, &mut inf.out, limit)?;
        if inf.reset_each {
            inf.inflater.reset();
        }
        std::mem::swap(&mut self.msg, &mut inf.out);
        self.fill = self.msg.len();
        if op == OpCode::Text {
            simdutf8::basic::from_utf8(&self.msg).map_err(|_| Error::InvalidUtf8)?;
        }
        Ok(())
    }

    /// A whole control frame sitting in the input buffer.
    fn control(&mut self, h: Header, body: usize) -> Result<Output, Error> {
        let end = body + h.payload_len as usize;
        if let Some(key) = h.mask {
            apply_mask(&mut self.buf[body..end], key, 0);
        }
        self.start = end;
        if h.op == OpCode::Close {
            let code = CloseFrame::parse(&self.buf[body..end])?.code;
            // RFC 6455 §5.5.1: nothing after a close frame is data.
            self.state = State::Done;
            return Ok(Output::Close { code, start: body, end });
        }
        Ok(Output::Control { op: h.op, start: body, end })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deflate::DeflateConfig;

    /// With no practical limit, a header announcing 2^62 bytes must not make the decoder
    /// reserve (or overflow computing) that much: memory follows the bytes that arrive.
    #[test]
    fn a_huge_announced_length_reserves_only_what_arrives() {
        let mut config = Config::new(Role::Client);
        config.max_read_limit = usize::MAX;
        for deflate in [None, Some(DeflateConfig::default())] {
            let mut dec = Decoder::new(&config);
            dec.set_deflate(deflate.as_ref());
            let mut header = vec![0x82 | if deflate.is_some() { RSV1 } else { 0 }, 127];
            header.extend_from_slice(&(1u64 << 62).to_be_bytes());
            header.extend_from_slice(&[0u8; 100]);
            assert_eq!(dec.feed(&header), header.len());
            assert!(dec.poll_message().unwrap().is_none());
            assert!(dec.msg.capacity() <= dec.ahead() + 100, "reserved {}", dec.msg.capacity());
        }
    }

    /// Client frames (masked) of `payload`, split into `parts` fragments.
    fn client_frames(op: OpCode, payload: &[u8], parts: usize) -> Vec<u8> {
        let mut enc = crate::encode::Encoder::new(Role::Client);
        let mut out = Vec::new();
        let step = payload.len().div_ceil(parts).max(1);
        let chunks: Vec<&[u8]> = payload.chunks(step).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let op = if i == 0 { op } else { OpCode::Continuation };
            enc.encode_frame(i + 1 == chunks.len(), 0, op, chunk, &mut out).unwrap();
        }
        out
    }

    /// Reads `wire` through `read_buf` + `advance` in pieces of at most `piece` bytes, polling
    /// after each; returns the messages and the largest slice `read_buf` handed out.
    fn read_all(dec: &mut Decoder, wire: &[u8], piece: usize) -> Result<(Vec<Vec<u8>>, usize), Error> {
        let (mut msgs, mut widest, mut pos) = (Vec::new(), 0, 0);
        while pos < wire.len() {
            let buf = dec.read_buf();
            widest = widest.max(buf.len());
            let n = buf.len().min(piece).min(wire.len() - pos);
            buf[..n].copy_from_slice(&wire[pos..pos + n]);
            dec.advance(n);
            pos += n;
            while let Some(ev) = dec.poll_message()? {
                if let Event::Message { payload, .. } = ev {
                    msgs.push(payload.to_vec());
                }
            }
        }
        Ok((msgs, widest))
    }

    #[test]
    fn a_long_payload_is_read_straight_into_the_message_buffer() {
        let config = Config::new(Role::Server);
        let text: Vec<u8> = "héllo wörld ✓ 🦀 ".repeat(10_000).into_bytes();
        let short = b"short after long".to_vec();
        for (parts, piece) in [(1, 65_536), (1, 1_000), (3, 7_777), (7, 100_000)] {
            let mut dec = Decoder::new(&config);
            let mut wire = client_frames(OpCode::Text, &text, parts);
            // A shorter message after the long one must not pick up the long one's old bytes.
            wire.extend(client_frames(OpCode::Binary, &short, 1));
            wire.extend(client_frames(OpCode::Text, &text[..text.len() / 2 + 1], 2));
            let (msgs, widest) = read_all(&mut dec, &wire, piece).unwrap();
            assert_eq!(msgs, [text.clone(), short.clone(), text[..text.len() / 2 + 1].to_vec()]);
            assert!(widest > dec.buf_max, "read_buf never went past the input buffer ({widest})");
        }
    }

    #[test]
    fn bad_utf8_read_straight_into_the_message_buffer_fails_before_the_message_ends() {
        let mut text = "a".repeat(100_000).into_bytes();
        text[20_000] = 0xff;
        let wire = client_frames(OpCode::Text, &text, 1);
        let mut dec = Decoder::new(&Config::new(Role::Server));
        let mut pos = 0;
        let err = loop {
            let buf = dec.read_buf();
            let n = buf.len().min(wire.len() - pos);
            buf[..n].copy_from_slice(&wire[pos..pos + n]);
            dec.advance(n);
            pos += n;
            match dec.poll_message() {
                Ok(None) => {}
                Ok(Some(ev)) => panic!("yielded {ev:?}"),
                Err(e) => break e,
            }
        };
        assert!(matches!(err, Error::InvalidUtf8));
        // Each read is validated as it lands (a read is at most 16 input buffers long here).
        assert!(pos < wire.len(), "failed only at the end of the message");
    }

    /// A text frame without FIN and `continuations` continuations (the last with FIN), each
    /// carrying `each` bytes: the shape of a fragment flood when `each` is empty.
    fn fragmented(continuations: usize, each: &[u8]) -> Vec<u8> {
        let mut enc = crate::encode::Encoder::new(Role::Client);
        let mut out = Vec::new();
        enc.encode_frame(false, 0, OpCode::Text, each, &mut out).unwrap();
        for i in 0..continuations {
            enc.encode_frame(i + 1 == continuations, 0, OpCode::Continuation, each, &mut out).unwrap();
        }
        out
    }

    /// `max_fragments` frames make a message, one more fails with 1009, whether the frames
    /// are decoded in place (empty or whole) or through the message buffer (longer than a
    /// read), as messages or as frames; the count starts again with the next message.
    #[test]
    fn a_message_past_the_fragment_cap_fails_with_too_many_fragments() {
        let config = Config::new(Role::Server).max_fragments(8);
        for (each, piece) in [(&b""[..], 1 << 16), (b"abc", 1 << 16), (&[b'x'; 5000][..], 3000)] {
            for frames in [false, true] {
                let poll = |dec: &mut Decoder| -> Result<usize, Error> {
                    let mut n = 0;
                    while if frames { dec.poll_frame()?.is_some() } else { dec.poll_message()?.is_some() } {
                        n += 1;
                    }
                    Ok(n)
                };
                let mut dec = Decoder::new(&config);
                let mut wire = fragmented(7, each);
                wire.extend(fragmented(7, each));
                let mut pos = 0;
                let mut out = 0;
                while pos < wire.len() {
                    let n = piece.min(wire.len() - pos);
                    pos += dec.feed(&wire[pos..pos + n]);
                    out += poll(&mut dec).unwrap();
                }
                assert_eq!(out, if frames { 16 } else { 2 }, "two messages of 8 frames pass");

                let mut dec = Decoder::new(&config);
                let wire = fragmented(8, each);
                let mut pos = 0;
                let err = loop {
                    assert!(pos < wire.len(), "9 frames went through");
                    let n = piece.min(wire.len() - pos);
                    pos += dec.feed(&wire[pos..pos + n]);
                    if let Err(e) = poll(&mut dec) {
                        break e;
                    }
                };
                assert!(matches!(err, Error::TooManyFragments { limit: 8 }), "{err:?}");
                assert_eq!(err.close_code(), Some(CloseCode::MESSAGE_TOO_BIG));
            }
        }
    }

    #[test]
    fn inflating_under_a_limit_of_usize_max_terminates() {
        let mut c = crate::deflate::MinizCompressor::new(1);
        let mut z = Vec::new();
        crate::deflate::Compressor::compress(&mut c, &[7u8; 100_000], &mut z).unwrap();
        z.truncate(z.len() - 4);
        let mut out = Vec::new();
        crate::deflate::Inflater::new().inflate(&z, &mut out, usize::MAX).unwrap();
        assert_eq!(out.len(), 100_000);
    }
}
