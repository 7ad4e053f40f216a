//! # lowbit-websockets
//!
//! A fast, strict, allocation-free WebSocket transport (RFC 6455 framing, RFC 7692
//! permessage-deflate). It does not spawn threads, run timers or keep connection maps: the
//! caller owns scheduling, buffers and I/O.
//!
//! # Layers, bottom up
//! ```text
//!  codec     decode::Decoder  bytes → frames/messages: header, unmask, assemble, UTF-8, limits,
//!                             inflate (deflate::Inflater)
//!            encode::Encoder  frames → bytes: header, mask keys, fragments
//!  engine    engine::Session  one connection, sans-IO: bytes in → events, commands in → bytes
//!                             out. engine/read.rs: control-frame answers, handlers, failing on
//!                             a violation; engine/write.rs: the outgoing fragmentation rule,
//!                             compression, nothing after our close
//!  upgrade   handshake        the HTTP/1.1 upgrade, both roles; deflate::negotiate its RFC 7692
//!                             parameters
//!  pump      pump             nonblocking: read until WouldBlock (with a budget), flush until
//!                             WouldBlock, for event-loop drivers
//!  ───────────────────────────────────────────────────────────────────────────────────────────
//!  drivers   conn::Conn       blocking, the Go package's API: a read loop over the engine's
//!                             halves, writing answers and large payloads straight to the stream
//!            upgrade          accept / connect: the blocking handshake, then a Conn
//!            async_conn       AsyncConn on tokio (feature `tokio`), accept_async /
//!                             connect_async; hyper::upgrade (feature `hyper`) and
//!                             axum::WebSocketUpgrade (feature `axum`) answer a request hyper
//!                             parsed with the same upgrade step
//!            faces            the component (Conn over wasi:io), Node and Deno (Session fed by
//!                             their sockets): they convert types and move bytes
//! ```
//!
//! The HTTP upgrade lives in [`handshake`] (HTTP rules) and [`upgrade`] (the subprotocol
//! policy and permessage-deflate negotiation on top, as sans-IO steps and as the blocking
//! [`accept`] and [`connect`]); [`tcp::linger`] closes a TCP connection without losing the last
//! bytes written. Against resource attacks: [`AcceptOptions::handshake_timeout`] (a total
//! deadline, held exactly by [`tcp::accept`] and `accept_async`),
//! [`Config::max_fragments`], [`tcp::AcceptBackoff`] for accept loops at the file descriptor
//! limit, and the opt-in [`liveness`] policy that drops stalled peers. Errors, each with the close code it sends, are in [`Error`].
//!
//! Every rule lives once: an error names the rule it broke and the close code it sends
//! ([`Error::close_code`]); the engine sends that close before the error reaches the caller.
//!
//! # Feature flags
//! None is on by default: the blocking [`Conn`], the sans-IO layers and permessage-deflate
//! need nothing but `std`.
//!
//! | feature | adds | pulls in |
//! | --- | --- | --- |
//! | `tokio` | `AsyncConn`, its split halves, `accept_async` / `connect_async` | tokio (`io-util`, `sync`, `time`) |
//! | `hyper` | `hyper::upgrade`: a hyper 1 request upgraded, checked and answered by this crate, into an `AsyncConn` | `tokio`, hyper, hyper-util, http |
//! | `axum` | `axum::WebSocketUpgrade`: the same as an axum 0.8 extractor | `hyper`, axum-core |

#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "tokio")]
pub mod async_conn;
pub mod close;
pub mod conn;
pub mod decode;
pub mod deflate;
pub mod encode;
pub mod engine;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod liveness;
pub mod mask;
pub mod pump;
pub mod role;
mod sizing;
pub mod tcp;
pub mod upgrade;
pub mod utf8;

#[cfg(feature = "axum")]
pub use async_conn::axum;
#[cfg(feature = "hyper")]
pub use async_conn::hyper;
#[cfg(feature = "tokio")]
pub use async_conn::{AsyncConn, AsyncConnReader, AsyncConnWriter, accept_async, accept_async_with, connect_async};
pub use close::{CloseCode, CloseFrame};
pub use conn::{Conn, ConnReader, ConnWriter};
pub use decode::{Decoder, Event, Frame};
pub use deflate::{DeflateConfig, DeflateOptions};
pub use encode::Encoder;
pub use engine::{Handlers, Session, Spare};
pub use error::{Error, Misuse, Result};
pub use frame::{Header, OpCode};
pub use role::{
    CHUNK_SIZE_BALANCED, CHUNK_SIZE_LOW_MEMORY, CHUNK_SIZE_STREAMING, Config, MAX_FRAGMENTS, READ_LIMIT_LARGE,
    READ_LIMIT_SMALL, READ_LIMIT_STANDARD, Role,
};
pub use upgrade::{AcceptOptions, ConnectOptions, HANDSHAKE_TIMEOUT, SubprotocolPolicy, accept, connect};
