//! # lowbit-websockets
//!
//! A fast, strict, allocation-free WebSocket transport (RFC 6455 framing, RFC 7692
//! permessage-deflate). The crate is two layers:
//!
//! - a **sans-IO codec** ([`Decoder`], [`Encoder`]): bytes in, events out; encode requests in,
//!   bytes out. It never does I/O, never blocks, never panics on any input, and allocates
//!   nothing per message once its buffers are warm;
//! - a **blocking [`Conn`]** over any `Read + Write` stream, with the API of the Go package this
//!   project grew from (`read_message`, `write_frame`, `stream_message`, `close_with_code`, ...).
//!
//! It does not spawn threads, run timers or keep connection maps: the caller owns scheduling,
//! buffers and I/O.
//!
//! ```text
//!            bytes in                                      bytes out
//! socket ──▶ Decoder: header → unmask → assemble → UTF-8 ──▶ Event ──▶ app
//! app ──▶ Encoder: header + mask into a reused buffer ──▶ socket
//! ```
//!
//! The HTTP upgrade lives in [`handshake`] (HTTP rules) and [`upgrade`] (the subprotocol
//! policy and permessage-deflate negotiation on top, as sans-IO steps and as the blocking
//! [`accept`] and [`connect`]); [`tcp::linger`] closes a TCP connection without losing the last
//! bytes written. Errors, each with the close code it sends, are in [`Error`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod close;
pub mod conn;
pub mod decode;
pub mod deflate;
pub mod encode;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod mask;
pub mod role;
pub mod session;
pub mod tcp;
pub mod upgrade;
pub mod utf8;

pub use close::{CloseCode, CloseFrame};
pub use conn::{Conn, ConnReader, ConnWriter, Frame};
pub use decode::{Decoder, Event};
pub use deflate::{DeflateConfig, DeflateOptions};
pub use encode::Encoder;
pub use error::{Error, Misuse, Result};
pub use frame::{Header, OpCode};
pub use role::{
    CHUNK_SIZE_BALANCED, CHUNK_SIZE_LOW_MEMORY, CHUNK_SIZE_STREAMING, Config, READ_LIMIT_LARGE, READ_LIMIT_SMALL,
    READ_LIMIT_STANDARD, Role,
};
pub use session::{Session, SessionEvent};
pub use upgrade::{AcceptOptions, ConnectOptions, SubprotocolPolicy, accept, connect};
