//! # lowbit-ws-node
//!
//! The Node-API addon (`@lowbit/websockets`) and a plain C ABI (for `Deno.dlopen`) over the
//! sans-IO [`lowbit_websockets::Session`]. The JavaScript side owns the socket; this crate
//! owns no protocol rule either: it converts values and moves bytes, and every decision
//! (handshake checks, accept keys, deflate negotiation, framing, masking, UTF-8, close codes,
//! limits) is a call into `lowbit_websockets`.
//!
//! - [`glue`]: the connection object both faces wrap (handshake, then the session);
//! - [`addon`]: the `NativeSession` class for Node-API, batching one socket chunk per call;
//! - [`ffi`]: `extern "C"` functions (`lbws_*`) with events packed into a caller-readable buffer.

pub mod addon;
pub mod ffi;
pub mod glue;
