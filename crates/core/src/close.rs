//! Close codes (RFC 6455 §7.4) and close-frame bodies.

use crate::error::Error;

/// A WebSocket close status code (RFC 6455 §7.4, IANA "WebSocket Close Code Number Registry").
///
/// Every `u16` is representable, so no incoming value is lost; [`CloseCode::is_sendable`] says
/// whether a code may appear on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection has been fulfilled.
    pub const NORMAL_CLOSURE: Self = Self(1000);
    /// 1001: an endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: Self = Self(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// 1003: the peer sent a data type this endpoint cannot accept.
    pub const UNSUPPORTED_DATA: Self = Self(1003);
    /// 1004: reserved; never sent.
    pub const RESERVED: Self = Self(1004);
    /// 1005: no status code was present; never sent.
    pub const NO_STATUS_RECEIVED: Self = Self(1005);
    /// 1006: closed without a close frame; never sent.
    pub const ABNORMAL_CLOSURE: Self = Self(1006);
    /// 1007: a message's payload was inconsistent with its type (bad UTF-8, corrupt deflate data).
    pub const INVALID_FRAME_PAYLOAD_DATA: Self = Self(1007);
    /// 1008: a policy was violated.
    pub const POLICY_VIOLATION: Self = Self(1008);
    /// 1009: a message was too big to process.
    pub const MESSAGE_TOO_BIG: Self = Self(1009);
    /// 1010: the client expected an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: Self = Self(1010);
    /// 1011: the server hit an unexpected condition.
    pub const INTERNAL_SERVER_ERROR: Self = Self(1011);
    /// 1012: the service is restarting (IANA).
    pub const SERVICE_RESTART: Self = Self(1012);
    /// 1013: try again later (IANA).
    pub const TRY_AGAIN_LATER: Self = Self(1013);
    /// 1014: a gateway received an invalid response (IANA).
    pub const BAD_GATEWAY: Self = Self(1014);
    /// 1015: the TLS handshake failed; never sent.
    pub const TLS_HANDSHAKE: Self = Self(1015);

    /// Whether this code may be sent in (and accepted from) a close frame: the codes defined by
    /// RFC 6455 and registered with IANA (1000–1003, 1007–1014) and the ranges for libraries,
    /// frameworks and applications (3000–4999). 1004, 1005, 1006, 1015, the rest of 1000–2999
    /// and everything outside 1000–4999 are not.
    pub const fn is_sendable(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        Self(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> u16 {
        code.0
    }
}

impl std::fmt::Display for CloseCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The longest close reason that fits a control frame: 125 bytes less the 2-byte code.
pub const MAX_CLOSE_REASON: usize = 123;

/// A parsed close-frame body: an optional code and a UTF-8 reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseFrame<'a> {
    /// The status code, or `None` for an empty body (reported as 1005 by convention).
    pub code: Option<CloseCode>,
    /// The reason text; empty when absent.
    pub reason: &'a str,
}

impl<'a> CloseFrame<'a> {
    /// Parses and validates a received close body (RFC 6455 §5.5.1): empty, or a sendable code
    /// followed by valid UTF-8.
    pub fn parse(body: &'a [u8]) -> Result<Self, Error> {
        match body {
            [] => Ok(Self { code: None, reason: "" }),
            [_] => Err(Error::InvalidClosePayload),
            [hi, lo, reason @ ..] => {
                let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
                if !code.is_sendable() {
                    return Err(Error::InvalidCloseCode(code.0));
                }
                let reason = simdutf8::basic::from_utf8(reason).map_err(|_| Error::InvalidUtf8)?;
                Ok(Self { code: Some(code), reason })
            }
        }
    }

    /// The code to report to the application: the sent code, or 1005 when there was none.
    pub fn code_or_no_status(&self) -> CloseCode {
        self.code.unwrap_or(CloseCode::NO_STATUS_RECEIVED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sendable_codes_follow_rfc_and_iana() {
        for code in [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999] {
            assert!(CloseCode(code).is_sendable(), "{code}");
        }
        for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535] {
            assert!(!CloseCode(code).is_sendable(), "{code}");
        }
    }

    #[test]
    fn close_body_rules() {
        assert_eq!(CloseFrame::parse(b"").unwrap().code, None);
        assert!(matches!(CloseFrame::parse(b"\x03"), Err(Error::InvalidClosePayload)));
        assert!(matches!(CloseFrame::parse(b"\x03\xed"), Err(Error::InvalidCloseCode(1005))));
        assert!(matches!(CloseFrame::parse(b"\x03\xe8\xff"), Err(Error::InvalidUtf8)));
        let f = CloseFrame::parse(b"\x0f\xa0bye").unwrap();
        assert_eq!((f.code, f.reason), (Some(CloseCode(4000)), "bye"));
    }
}
