//! Type conversions between the WIT types and core's; no protocol decisions.

use lowbit_websockets as core;
use lowbit_websockets::OpCode;
use lowbit_websockets::deflate::{DeflateConfig as CoreConfig, DeflateOptions as CoreOptions};

use crate::bindings::exports::lowbit::websockets::types::{
    ChunkSizeExceeded, DeflateConfig, DeflateOptions, Error, HandshakeError, Limits, Opcode, Role,
};

pub fn opcode_in(op: Opcode) -> OpCode {
    match op {
        Opcode::Continuation => OpCode::Continuation,
        Opcode::Text => OpCode::Text,
        Opcode::Binary => OpCode::Binary,
        Opcode::Close => OpCode::Close,
        Opcode::Ping => OpCode::Ping,
        Opcode::Pong => OpCode::Pong,
    }
}

pub fn opcode_out(op: OpCode) -> Opcode {
    match op {
        OpCode::Continuation => Opcode::Continuation,
        OpCode::Text => Opcode::Text,
        OpCode::Binary => Opcode::Binary,
        OpCode::Close => Opcode::Close,
        OpCode::Ping => Opcode::Ping,
        OpCode::Pong => Opcode::Pong,
    }
}

pub fn role_in(role: Role) -> core::Role {
    match role {
        Role::Server => core::Role::Server,
        Role::Client => core::Role::Client,
    }
}

pub fn role_out(role: core::Role) -> Role {
    match role {
        core::Role::Server => Role::Server,
        core::Role::Client => Role::Client,
    }
}

/// Limits to a core config; a limit beyond the guest's address space saturates.
pub fn config(role: core::Role, limits: Limits) -> core::Config {
    let read = usize::try_from(limits.max_read_limit).unwrap_or(usize::MAX);
    core::Config::new(role).max_read_limit(read).max_chunk_size(limits.max_chunk_size as usize)
}

pub fn limits_out(config: &core::Config) -> Limits {
    Limits {
        max_read_limit: config.max_read_limit as u64,
        max_chunk_size: u32::try_from(config.max_chunk_size).unwrap_or(u32::MAX),
    }
}

pub fn options_in(o: DeflateOptions) -> CoreOptions {
    CoreOptions {
        server_no_context_takeover: o.server_no_context_takeover,
        client_no_context_takeover: o.client_no_context_takeover,
        server_max_window_bits: o.server_max_window_bits,
        level: o.level,
        threshold: o.threshold as usize,
        ..CoreOptions::default()
    }
}

pub fn options_out(o: &CoreOptions) -> DeflateOptions {
    DeflateOptions {
        server_no_context_takeover: o.server_no_context_takeover,
        client_no_context_takeover: o.client_no_context_takeover,
        server_max_window_bits: o.server_max_window_bits,
        level: o.level,
        threshold: u32::try_from(o.threshold).unwrap_or(u32::MAX),
    }
}

pub fn deflate_in(c: DeflateConfig) -> CoreConfig {
    CoreConfig {
        compress_no_context_takeover: c.compress_no_context_takeover,
        decompress_no_context_takeover: c.decompress_no_context_takeover,
        compress_window_bits: c.compress_window_bits,
        decompress_window_bits: c.decompress_window_bits,
        level: c.level,
        threshold: c.threshold as usize,
        ..CoreConfig::default()
    }
}

pub fn deflate_out(c: &CoreConfig) -> DeflateConfig {
    DeflateConfig {
        compress_no_context_takeover: c.compress_no_context_takeover,
        decompress_no_context_takeover: c.decompress_no_context_takeover,
        compress_window_bits: c.compress_window_bits,
        decompress_window_bits: c.decompress_window_bits,
        level: c.level,
        threshold: u32::try_from(c.threshold).unwrap_or(u32::MAX),
    }
}

/// Core's error to the WIT variant, case for case.
pub fn error_out(e: core::Error) -> Error {
    use core::Error as E;
    match e {
        E::MessageTooBig { limit } => Error::MessageTooBig(limit),
        E::ProtocolReservedBits { rsv } => Error::ProtocolReservedBits(rsv),
        E::WebSocketClosed => Error::WebsocketClosed,
        E::UnexpectedContinuation => Error::UnexpectedContinuation,
        E::ExpectedContinuation => Error::ExpectedContinuation,
        E::ChunkSizeExceeded { requested, limit } => {
            Error::ChunkSizeExceeded(ChunkSizeExceeded { requested: requested as u64, limit: limit as u64 })
        }
        E::InvalidOpCode(op) => Error::InvalidOpCode(op),
        E::ControlFramePayloadTooLarge(n) => Error::ControlFramePayloadTooLarge(n),
        E::FragmentedControlFrame => Error::FragmentedControlFrame,
        E::UnmaskedFrame => Error::UnmaskedFrame,
        E::MaskedFrame => Error::MaskedFrame,
        E::InvalidPayloadLength => Error::InvalidPayloadLength,
        E::InvalidUtf8 => Error::InvalidUtf8,
        E::InvalidCompressedData => Error::InvalidCompressedData,
        E::InvalidCloseCode(code) => Error::InvalidCloseCode(code),
        E::InvalidClosePayload => Error::InvalidClosePayload,
        E::AbnormalClosure => Error::AbnormalClosure,
        E::Misuse(m) => Error::Misuse(m.to_string()),
        E::Io(e) => Error::Io(e.to_string()),
        E::Handshake(e) => Error::Handshake(HandshakeError { status: e.status(), message: e.to_string() }),
        E::Negotiation(e) => Error::Negotiation(e.to_string()),
        other => Error::Other(other.to_string()),
    }
}

/// The close code of a WIT error: the same table as `core::Error::close_code`, which is
/// asked, not copied (the payload-free cases are rebuilt as core errors).
pub fn close_code(e: &Error) -> Option<u16> {
    use core::Error as E;
    let core = match e {
        Error::MessageTooBig(limit) => E::MessageTooBig { limit: *limit },
        Error::ProtocolReservedBits(rsv) => E::ProtocolReservedBits { rsv: *rsv },
        Error::UnexpectedContinuation => E::UnexpectedContinuation,
        Error::ExpectedContinuation => E::ExpectedContinuation,
        Error::InvalidOpCode(op) => E::InvalidOpCode(*op),
        Error::ControlFramePayloadTooLarge(n) => E::ControlFramePayloadTooLarge(*n),
        Error::FragmentedControlFrame => E::FragmentedControlFrame,
        Error::UnmaskedFrame => E::UnmaskedFrame,
        Error::MaskedFrame => E::MaskedFrame,
        Error::InvalidPayloadLength => E::InvalidPayloadLength,
        Error::InvalidUtf8 => E::InvalidUtf8,
        Error::InvalidCompressedData => E::InvalidCompressedData,
        Error::InvalidCloseCode(code) => E::InvalidCloseCode(*code),
        Error::InvalidClosePayload => E::InvalidClosePayload,
        Error::WebsocketClosed
        | Error::ChunkSizeExceeded(_)
        | Error::AbnormalClosure
        | Error::Misuse(_)
        | Error::Io(_)
        | Error::Handshake(_)
        | Error::Negotiation(_)
        | Error::Other(_) => return None,
    };
    core.close_code().map(|c| c.0)
}
