//! The one scanner for HTTP list syntax (RFC 9110 §5.6.1): header token lists (`Connection`,
//! `Upgrade`, `Sec-WebSocket-Protocol`), `Sec-WebSocket-Extensions` elements, and the `;`
//! separated parameters inside each element (RFC 6455 §9.1).
//!
//! Separators inside a quoted-string (RFC 9110 §5.6.4) do not split, and a backslash inside
//! one escapes the next byte.
//!
//! **An unterminated quoted-string makes the whole value invalid.** Without its closing quote
//! nothing says where the element ends, so no element of the value can be trusted. The callers
//! turn that into the answer the RFCs give for a header that does not match its grammar: a
//! server refuses the request with 400 (RFC 6455 §4.2.1: a handshake that does not match the
//! description gets "an appropriate error code (such as 400 Bad Request)"), and a client fails
//! the connection (RFC 6455 §4.1). RFC 7692 §5's "decline the offer" is for an offer whose
//! syntax is valid but whose parameters are unknown or out of range; that one is declined, not
//! refused.

/// Where a byte of a value sits relative to quoted-strings.
#[derive(Default)]
struct Quoting {
    quoted: bool,
    escaped: bool,
}

impl Quoting {
    /// Advances over `b`; true when `b` is outside any quoted-string (so a separator there
    /// splits).
    fn outside(&mut self, b: u8) -> bool {
        match b {
            _ if self.escaped => self.escaped = false,
            b'\\' if self.quoted => self.escaped = true,
            b'"' => self.quoted = !self.quoted,
            _ => return !self.quoted,
        }
        false
    }
}

/// Splits `value` at every `sep` outside quoted-strings, yielding each piece untrimmed, empty
/// ones included (`"a;"` gives `"a"` and `""`). `None` when a quoted-string is unterminated.
pub(crate) fn split(value: &str, sep: u8) -> Option<Split<'_>> {
    let mut quoting = Quoting::default();
    value.bytes().for_each(|b| {
        quoting.outside(b);
    });
    (!quoting.quoted).then_some(Split { rest: Some(value), sep })
}

/// The elements of a comma-separated list, trimmed, empty ones dropped (RFC 9110 §5.6.1
/// allows and ignores them). `None` when a quoted-string is unterminated.
pub(crate) fn elements(value: &str) -> Option<impl Iterator<Item = &str>> {
    Some(split(value, b',')?.map(str::trim_ascii).filter(|element| !element.is_empty()))
}

/// The iterator behind [`split`].
pub(crate) struct Split<'a> {
    rest: Option<&'a str>,
    sep: u8,
}

impl<'a> Iterator for Split<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        let mut quoting = Quoting::default();
        let at = rest.bytes().position(|b| quoting.outside(b) && b == self.sep);
        // The separator is one ASCII byte, so neither `get` can split a character.
        match at.and_then(|i| Some((rest.get(..i)?, rest.get(i + 1..)?))) {
            Some((piece, after)) => {
                self.rest = Some(after);
                Some(piece)
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_outside_quotes_only() {
        let got: Vec<&str> = elements(" a ,, b;x=\"1,2\\\",3\" , ,c,").unwrap().collect();
        assert_eq!(got, ["a", "b;x=\"1,2\\\",3\"", "c"]);
        assert_eq!(elements("").unwrap().count(), 0);
        assert_eq!(elements(" , ").unwrap().count(), 0);
        let params: Vec<&str> = split("x; a=\"p;q\"; b;", b';').unwrap().collect();
        assert_eq!(params, ["x", " a=\"p;q\"", " b", ""]);
        // A backslash outside quotes is an ordinary byte.
        assert_eq!(elements("a\\\"b\"").unwrap().collect::<Vec<_>>(), ["a\\\"b\""]);
    }

    #[test]
    fn an_unterminated_quoted_string_makes_the_value_invalid() {
        for value in ["a, b=\"x, y", "\"", "a; b=\"x\\\"", "x=\"ok\", y=\"open"] {
            assert!(elements(value).is_none(), "{value}");
            assert!(split(value, b';').is_none(), "{value}");
        }
        assert!(elements("a=\"\\\\\"").is_some(), "an escaped backslash does not escape the quote");
    }
}
