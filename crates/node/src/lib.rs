//! # lowbit-ws-node
//!
//! The Node-API addon (`@lowbit/websockets`) and a plain C ABI (for `Deno.dlopen`) over the
//! sans-IO [`lowbit_websockets::Session`]. The JavaScript side owns the socket; this crate
//! owns no protocol rule either: it converts values and moves bytes, and every decision
//! (handshake checks, accept keys, deflate negotiation, framing, masking, UTF-8, close codes,
//! limits) is a call into `lowbit_websockets`.
//!
//! - [`contract`]: the numbers both faces share with JavaScript (event kinds, state bits),
//!   exported to it by name;
//! - [`glue`]: the connection object both faces wrap (handshake, then the session);
//! - [`pack`]: the one layout of the events handed to JavaScript, for both faces;
//! - [`addon`]: the Node-API functions over an `External` session, batching one socket chunk
//!   per call;
//! - [`ffi`]: `extern "C"` functions (`lbws_*`), with the pooled hot path in [`ffi::pool`].

pub mod addon;
pub mod contract;
pub mod ffi;
pub mod glue;
pub mod pack;
