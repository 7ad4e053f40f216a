//! The one error type, and the close code each error sends.

use std::fmt;
use std::io;

use crate::close::CloseCode;
use crate::deflate::negotiate::NegotiationError;
use crate::handshake::HandshakeError;

/// Everything that can go wrong on a connection.
///
/// Errors caused by the peer know the close code they send ([`Error::close_code`]); the
/// connection sends that close frame before the error is returned. Errors caused by the local
/// caller (`ChunkSizeExceeded`, `Misuse`, ...) send nothing.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A message's payload (after inflation) exceeds `max_read_limit` (1009).
    MessageTooBig {
        /// The configured limit in bytes.
        limit: u64,
    },
    /// A message arrived in more frames than `max_fragments` allows (1009). 1009 rather than
    /// `ws`'s 1008: RFC 6455 §7.4.1 keeps 1008 for a policy no more specific code covers, and
    /// this is a message too big to process, counted in frames instead of bytes (the peer's
    /// remedy is the same: fewer, larger frames or a smaller message). Python websockets
    /// also sends 1009.
    TooManyFragments {
        /// The configured cap, in frames per message.
        limit: u64,
    },
    /// A frame has RSV bits set that no negotiated extension claims (RFC 6455 §5.2; 1002).
    ProtocolReservedBits {
        /// The RSV bits as they sit in the first header byte (`0x40` = RSV1).
        rsv: u8,
    },
    /// The connection has completed its close handshake or was severed.
    WebSocketClosed,
    /// A continuation frame arrived while no fragmented message was in progress (1002).
    UnexpectedContinuation,
    /// A new text or binary frame arrived before the fragmented message ended (1002).
    ExpectedContinuation,
    /// A streaming call asked for a chunk size above `max_chunk_size` (local misuse).
    ChunkSizeExceeded {
        /// The chunk size requested.
        requested: usize,
        /// The connection's `max_chunk_size`.
        limit: usize,
    },
    /// A frame uses a reserved opcode (RFC 6455 §5.2; 1002).
    InvalidOpCode(u8),
    /// A control frame carries more than 125 bytes (RFC 6455 §5.5; 1002).
    ControlFramePayloadTooLarge(u64),
    /// A control frame has FIN clear: control frames must not be fragmented (RFC 6455 §5.5; 1002).
    FragmentedControlFrame,
    /// A server received an unmasked frame: clients MUST mask (RFC 6455 §5.1; 1002).
    UnmaskedFrame,
    /// A client received a masked frame: servers MUST NOT mask (RFC 6455 §5.1; 1002).
    MaskedFrame,
    /// A payload length is not in its minimal form, or a 64-bit length has its top bit set
    /// (RFC 6455 §5.2; 1002).
    InvalidPayloadLength,
    /// Text (or a close reason) is not valid UTF-8 (RFC 6455 §8.1; 1007).
    InvalidUtf8,
    /// A compressed message is not valid DEFLATE data (RFC 7692 §7.2.2; 1007).
    InvalidCompressedData,
    /// A close frame carries a code that must not appear on the wire (RFC 6455 §7.4; 1002).
    InvalidCloseCode(u16),
    /// A close frame body is one byte long (RFC 6455 §5.5.1; 1002).
    InvalidClosePayload,
    /// The peer closed the transport without a close frame (reported as 1006).
    AbnormalClosure,
    /// The caller asked for something the protocol forbids; nothing was sent.
    Misuse(Misuse),
    /// The underlying stream failed.
    Io(io::Error),
    /// The HTTP upgrade handshake failed.
    Handshake(HandshakeError),
    /// The server's permessage-deflate answer does not match our offer (RFC 7692 §5).
    Negotiation(NegotiationError),
}

/// A write the protocol forbids, refused before anything reached the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Misuse {
    /// A control frame payload over 125 bytes (RFC 6455 §5.5).
    ControlPayloadTooLong(usize),
    /// A control frame without FIN (RFC 6455 §5.5).
    FragmentedControl,
    /// A close code that must not be sent (1005, 1006, 1015, unassigned; RFC 6455 §7.4).
    UnsendableCloseCode(u16),
    /// A close body that is one byte, or a reason that is not UTF-8 (RFC 6455 §5.5.1).
    InvalidCloseBody,
    /// `stream_message` needs a text or binary opcode.
    NotDataOpcode(u8),
    /// `read_header` was called while a frame's payload is still being read.
    MidFrame,
    /// A text or binary frame while a fragmented message is unfinished: it must go on with
    /// continuation frames (RFC 6455 §5.4).
    MessageInProgress,
    /// A continuation frame with no fragmented message started (RFC 6455 §5.4).
    NoMessageInProgress,
}

impl fmt::Display for Misuse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Misuse::ControlPayloadTooLong(n) => write!(f, "control frame payload of {n} bytes exceeds 125 bytes"),
            Misuse::FragmentedControl => f.write_str("control frames cannot be fragmented"),
            Misuse::UnsendableCloseCode(c) => write!(f, "close code {c} must not be sent"),
            Misuse::InvalidCloseBody => f.write_str("a close body is empty or a code plus a UTF-8 reason"),
            Misuse::NotDataOpcode(op) => write!(f, "opcode {op:#x} does not start a message"),
            Misuse::MidFrame => f.write_str("a frame's payload is still being read: there is no header to read"),
            Misuse::MessageInProgress => {
                f.write_str("a fragmented message is unfinished: send continuation frames until one has FIN")
            }
            Misuse::NoMessageInProgress => f.write_str("a continuation frame needs a fragmented message in progress"),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The close code this error sends to the peer, or `None` when nothing is sent (local
    /// misuse, I/O failures, an already closed connection).
    pub fn close_code(&self) -> Option<CloseCode> {
        use Error::*;
        Some(match self {
            MessageTooBig { .. } | TooManyFragments { .. } => CloseCode::MESSAGE_TOO_BIG,
            InvalidUtf8 | InvalidCompressedData => CloseCode::INVALID_FRAME_PAYLOAD_DATA,
            ProtocolReservedBits { .. }
            | UnexpectedContinuation
            | ExpectedContinuation
            | InvalidOpCode(_)
            | ControlFramePayloadTooLarge(_)
            | FragmentedControlFrame
            | UnmaskedFrame
            | MaskedFrame
            | InvalidPayloadLength
            | InvalidCloseCode(_)
            | InvalidClosePayload => CloseCode::PROTOCOL_ERROR,
            WebSocketClosed
            | ChunkSizeExceeded { .. }
            | AbnormalClosure
            | Misuse(_)
            | Io(_)
            | Handshake(_)
            | Negotiation(_) => return None,
        })
    }

    /// Whether the peer broke a rule (as opposed to local misuse or I/O).
    pub fn is_protocol_violation(&self) -> bool {
        self.close_code().is_some()
    }

    /// The variant's name (`"MessageTooBig"`, `"UnmaskedFrame"`, ...): a stable identifier the
    /// faces report beside the message (`err.kind` in JavaScript) so that callers and tests can
    /// tell errors apart without parsing the text, which may change.
    ///
    /// ```
    /// use lowbit_websockets::Error;
    /// assert_eq!(Error::MessageTooBig { limit: 10 }.kind(), "MessageTooBig");
    /// ```
    pub fn kind(&self) -> &'static str {
        use Error::*;
        match self {
            MessageTooBig { .. } => "MessageTooBig",
            TooManyFragments { .. } => "TooManyFragments",
            ProtocolReservedBits { .. } => "ProtocolReservedBits",
            WebSocketClosed => "WebSocketClosed",
            UnexpectedContinuation => "UnexpectedContinuation",
            ExpectedContinuation => "ExpectedContinuation",
            ChunkSizeExceeded { .. } => "ChunkSizeExceeded",
            InvalidOpCode(_) => "InvalidOpCode",
            ControlFramePayloadTooLarge(_) => "ControlFramePayloadTooLarge",
            FragmentedControlFrame => "FragmentedControlFrame",
            UnmaskedFrame => "UnmaskedFrame",
            MaskedFrame => "MaskedFrame",
            InvalidPayloadLength => "InvalidPayloadLength",
            InvalidUtf8 => "InvalidUtf8",
            InvalidCompressedData => "InvalidCompressedData",
            InvalidCloseCode(_) => "InvalidCloseCode",
            InvalidClosePayload => "InvalidClosePayload",
            AbnormalClosure => "AbnormalClosure",
            Misuse(_) => "Misuse",
            Io(_) => "Io",
            Handshake(_) => "Handshake",
            Negotiation(_) => "Negotiation",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Error::*;
        match self {
            MessageTooBig { limit } => write!(f, "message exceeds max read limit of {limit} bytes"),
            TooManyFragments { limit } => write!(f, "message exceeds the cap of {limit} frames per message"),
            ProtocolReservedBits { rsv } => {
                write!(f, "protocol error: reserved bits {rsv:#04x} set without a negotiated extension")
            }
            WebSocketClosed => f.write_str("websocket closed"),
            UnexpectedContinuation => f.write_str("protocol error: unexpected continuation frame"),
            ExpectedContinuation => f.write_str("protocol error: expected continuation frame"),
            ChunkSizeExceeded { requested, limit } => {
                write!(f, "requested chunk size {requested} exceeds the connection limit of {limit}")
            }
            InvalidOpCode(op) => write!(f, "invalid opcode {op:#x}"),
            ControlFramePayloadTooLarge(len) => write!(f, "control frame payload of {len} bytes exceeds 125 bytes"),
            FragmentedControlFrame => f.write_str("protocol error: fragmented control frame"),
            UnmaskedFrame => f.write_str("protocol error: client frame is not masked"),
            MaskedFrame => f.write_str("protocol error: server frame is masked"),
            InvalidPayloadLength => f.write_str("protocol error: payload length is not minimally encoded or too large"),
            InvalidUtf8 => f.write_str("invalid UTF-8 in text payload"),
            InvalidCompressedData => f.write_str("invalid DEFLATE data in a compressed message"),
            InvalidCloseCode(code) => write!(f, "protocol error: close code {code} is not allowed on the wire"),
            InvalidClosePayload => f.write_str("protocol error: close frame body of 1 byte"),
            AbnormalClosure => f.write_str("connection closed without a close frame"),
            Misuse(m) => write!(f, "not sent: {m}"),
            Io(e) => write!(f, "i/o error: {e}"),
            Handshake(e) => write!(f, "handshake failed: {e}"),
            Negotiation(e) => write!(f, "extension negotiation failed: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Handshake(e) => Some(e),
            Error::Negotiation(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<HandshakeError> for Error {
    fn from(e: HandshakeError) -> Self {
        Error::Handshake(e)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deflate::negotiate::NegotiationError;

    /// `kind()` is the name the faces used to parse out of `Debug`; it must stay that name.
    #[test]
    fn kind_is_the_variant_name() {
        let errors = [
            Error::MessageTooBig { limit: 1 },
            Error::ProtocolReservedBits { rsv: 0x40 },
            Error::WebSocketClosed,
            Error::UnexpectedContinuation,
            Error::ExpectedContinuation,
            Error::ChunkSizeExceeded { requested: 2, limit: 1 },
            Error::InvalidOpCode(3),
            Error::ControlFramePayloadTooLarge(126),
            Error::FragmentedControlFrame,
            Error::UnmaskedFrame,
            Error::MaskedFrame,
            Error::InvalidPayloadLength,
            Error::InvalidUtf8,
            Error::InvalidCompressedData,
            Error::InvalidCloseCode(1005),
            Error::InvalidClosePayload,
            Error::AbnormalClosure,
            Error::Misuse(Misuse::MidFrame),
            Error::Io(io::Error::other("x")),
            Error::Handshake(HandshakeError::Eof),
            Error::Negotiation(NegotiationError::Syntax),
        ];
        for e in errors {
            let debug = format!("{e:?}");
            let name = debug.split(|c: char| !c.is_ascii_alphanumeric()).next().unwrap();
            assert_eq!(e.kind(), name);
        }
    }
}
