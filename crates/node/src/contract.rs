//! The numbers JavaScript and Rust agree on, defined once: event kinds, close-state bits and
//! the C ABI's deflate flags.
//!
//! Node gets them as Node-API constants (`binding.EVENT_TEXT`, also in the generated
//! `binding.d.ts`); Deno and other C callers get all of them as one JSON object from
//! [`lbws_contract`](crate::ffi::lbws_contract). JavaScript and TypeScript files use the
//! names, never the numbers, so a change here reaches every face.

use napi_derive::napi;

use lowbit_websockets::OpCode;

/// Declares each constant for Rust and as a Node-API export, and lists them all in [`ALL`]
/// for the C ABI, so that the three cannot disagree.
macro_rules! contract {
    ($( $(#[doc = $doc:literal])* $name:ident = $value:expr; )*) => {
        $(
            $(#[doc = $doc])*
            #[napi]
            pub const $name: u32 = $value;
        )*

        /// Every constant of the contract with its name.
        pub const ALL: &[(&str, u32)] = &[$((stringify!($name), $name)),*];
    };
}

contract! {
    /// Event kind (and the `op` of a send): a text message. Event kinds are the opcodes the
    /// events arrive in (RFC 6455 §5.2).
    EVENT_TEXT = OpCode::Text as u32;
    /// Event kind (and the `op` of a send): a binary message.
    EVENT_BINARY = OpCode::Binary as u32;
    /// Event kind: the peer's close frame (code and reason).
    EVENT_CLOSE = OpCode::Close as u32;
    /// Event kind: a ping.
    EVENT_PING = OpCode::Ping as u32;
    /// Event kind: a pong.
    EVENT_PONG = OpCode::Pong as u32;
    /// Bytes of the head before each packed event's payload: kind (u8), 0, close code (u16
    /// LE, 0 unless a close), payload length (u32 LE).
    EVENT_HEAD_LEN = 8;
    /// State bit: our close frame is queued.
    STATE_CLOSE_SENT = 1;
    /// State bit: the peer's close frame arrived, or the connection failed.
    STATE_CLOSE_RECEIVED = 2;
    /// State: both close bits, the close handshake is complete.
    STATE_FINISHED = 3;
    /// C ABI deflate flag: permessage-deflate on.
    DEFLATE_ON = 1;
    /// C ABI deflate flag: `server_no_context_takeover`.
    DEFLATE_SERVER_NO_CONTEXT_TAKEOVER = 2;
    /// C ABI deflate flag: `client_no_context_takeover`.
    DEFLATE_CLIENT_NO_CONTEXT_TAKEOVER = 4;
    /// C ABI deflate level that means core's default level.
    DEFLATE_DEFAULT_LEVEL = 255;
    /// C ABI deflate threshold that means core's default threshold.
    DEFLATE_DEFAULT_THRESHOLD = u32::MAX;
}

/// The contract as a JSON object (`{"EVENT_TEXT":1,...}`), for callers that read it at run
/// time.
pub fn json() -> String {
    let fields: Vec<String> = ALL.iter().map(|(name, value)| format!("\"{name}\":{value}")).collect();
    format!("{{{}}}", fields.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_finished_is_both_bits() {
        assert_eq!(STATE_FINISHED, STATE_CLOSE_SENT | STATE_CLOSE_RECEIVED);
    }

    #[test]
    fn json_lists_every_constant_once() {
        let json = json();
        for (name, value) in ALL {
            assert_eq!(json.matches(&format!("\"{name}\":")).count(), 1, "{name}");
            assert!(json.contains(&format!("\"{name}\":{value}")), "{name}");
        }
        assert_eq!(json.matches(':').count(), ALL.len());
        assert!(json.starts_with("{\"EVENT_TEXT\":1,") && json.ends_with('}'), "{json}");
    }
}
