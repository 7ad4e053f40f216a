//! Incremental UTF-8 validation for text that arrives in pieces.
//!
//! Each piece is checked as soon as it arrives (so a bad fragment fails the message at once,
//! RFC 6455 §8.1), and a character split across pieces or frames is carried over in at most
//! three pending bytes. The bulk of the work is `simdutf8`.

use simdutf8::compat::from_utf8;

/// Validates a byte stream piece by piece.
#[derive(Debug, Default, Clone)]
pub struct Utf8Validator {
    /// The start of a character whose remaining bytes have not arrived yet.
    pending: [u8; 4],
    pending_len: u8,
}

/// The input is not UTF-8, or cannot become UTF-8 with more bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

impl Utf8Validator {
    /// A validator at the start of a stream.
    pub const fn new() -> Self {
        Self { pending: [0; 4], pending_len: 0 }
    }

    /// Forgets any pending partial character.
    pub fn reset(&mut self) {
        self.pending_len = 0;
    }

    /// Whether the stream so far ends on a character boundary.
    pub fn is_complete(&self) -> bool {
        self.pending_len == 0
    }

    /// Validates the next piece. Fails as soon as the bytes so far cannot be a prefix of UTF-8.
    #[inline]
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), InvalidUtf8> {
        if self.pending_len > 0 {
            let have = self.pending_len as usize;
            let need = char_width(self.pending[0]) - have;
            let take = need.min(data.len());
            self.pending[have..have + take].copy_from_slice(&data[..take]);
            let filled = have + take;
            match std::str::from_utf8(&self.pending[..filled]) {
                Ok(_) => self.pending_len = 0,
                Err(e) if e.error_len().is_none() => {
                    self.pending_len = filled as u8;
                    return Ok(());
                }
                Err(_) => return Err(InvalidUtf8),
            }
            data = &data[take..];
        }
        match from_utf8(data) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let tail = &data[e.valid_up_to()..];
                self.pending[..tail.len()].copy_from_slice(tail);
                self.pending_len = tail.len() as u8;
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }

    /// Ends the stream: a partial character left over is an error.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let complete = self.is_complete();
        self.reset();
        if complete { Ok(()) } else { Err(InvalidUtf8) }
    }
}

/// The width of the character a valid lead byte starts (1 for anything else, which
/// `from_utf8` then rejects).
fn char_width(lead: u8) -> usize {
    match lead {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_everywhere(bytes: &[u8]) -> bool {
        let whole = std::str::from_utf8(bytes).is_ok();
        for cut1 in 0..=bytes.len() {
            for cut2 in cut1..=bytes.len() {
                let mut v = Utf8Validator::new();
                let ok = v.feed(&bytes[..cut1]).is_ok()
                    && v.feed(&bytes[cut1..cut2]).is_ok()
                    && v.feed(&bytes[cut2..]).is_ok()
                    && v.finish().is_ok();
                assert_eq!(ok, whole, "{bytes:x?} cut at {cut1},{cut2}");
            }
        }
        whole
    }

    #[test]
    fn agrees_with_std_for_every_split() {
        assert!(split_everywhere("κόσμε a€𝄞z".as_bytes()));
        assert!(split_everywhere(b""));
        for bad in [
            &b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"[..],
            b"\xf4\x90\x80\x80",
            b"\xc0\xaf",
            b"\xe0\x80",
            b"\xff",
            b"ab\xf0\x9f\x98",
        ] {
            assert!(!split_everywhere(bad));
        }
    }

    #[test]
    fn fails_on_the_first_bad_piece() {
        let mut v = Utf8Validator::new();
        assert!(v.feed(b"hello \xce").is_ok());
        assert!(v.feed(b"\xba").is_ok());
        assert_eq!(v.feed(b"\xed\xa0\x80"), Err(InvalidUtf8), "a surrogate fails before the message ends");
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xf4\x90"), Err(InvalidUtf8), "an impossible prefix fails at once");
    }
}
