//! How a connection's buffers follow use instead of its limits.
//!
//! Every buffer a connection owns (the decoder's input and message buffers, the inflated
//! message, the session's output, the compressed message) starts empty and grows with what
//! arrives or is sent; no buffer is sized from `max_read_limit` or `max_chunk_size` up front.
//! The input buffer starts at [`INPUT_START`] on the first read and doubles when a read fills
//! it, up to the configured read buffer size.
//!
//! A [`Trim`] gives memory back. It counts the uses of one buffer (a read, a message, a drained
//! output) in windows of [`WINDOW`] uses and remembers the largest use in the window, `keep`
//! (at least [`FLOOR`]). At the end of a window, a buffer whose capacity is more than
//! `4 × keep` is cut down to `2 × keep`. The bound: [`WINDOW`] to `2 × WINDOW` uses after a
//! large message, the buffer holds at most `4 × max(FLOOR, the largest use of the last
//! window)`, so a connection that once received 16 MiB does not keep 16 MiB.
//!
//! A steady message size never triggers a cut: a buffer grown to fit a use (by doubling, by
//! an exact reserve, or by the inflater's and compressor's reserves, which stay within twice
//! the larger of their input and output) has less than four times that use as capacity, so
//! the zero-allocation rule of the steady state holds. A window is long enough to cover a
//! repeating mix of sizes of up to [`WINDOW`] uses.

/// Uses per window: a buffer is cut at most once per window.
pub(crate) const WINDOW: u32 = 64;
/// Capacity below which no buffer is cut: small enough that 10,000 idle connections stay
/// small, large enough that typical messages do not regrow a buffer every window.
pub(crate) const FLOOR: usize = 4096;
/// The input buffer's size at the first read. It holds a whole control frame (139 bytes) and
/// the typical small message; a read that fills it doubles it.
pub(crate) const INPUT_START: usize = 1024;

/// The use a buffer has seen in the current window (see the [module docs](self)).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Trim {
    peak: usize,
    uses: u32,
}

impl Trim {
    /// Records that `used` bytes of the buffer were in use (call as often as it helps; only the
    /// largest counts).
    #[inline]
    pub(crate) fn see(&mut self, used: usize) {
        self.peak = self.peak.max(used);
    }

    /// Empties `buf`, whose contents were one use, and cuts it at the end of a window.
    #[inline]
    pub(crate) fn clear(&mut self, buf: &mut Vec<u8>) {
        let used = buf.len();
        buf.clear();
        if let Some(keep) = self.end_use(used) {
            cut(buf, keep);
        }
    }

    /// Ends one use of `used` bytes. At the end of a window, returns the capacity to keep:
    /// give it to [`cut`] for each buffer this `Trim` watches.
    #[inline]
    pub(crate) fn end_use(&mut self, used: usize) -> Option<usize> {
        self.see(used);
        self.uses += 1;
        if self.uses < WINDOW {
            return None;
        }
        let keep = self.peak.max(FLOOR);
        *self = Self::default();
        Some(keep)
    }
}

/// Cuts `buf` down to `2 × keep` bytes of capacity if it holds more than `4 × keep`. The
/// caller guarantees that no byte of `buf` past `2 × keep` is still needed.
pub(crate) fn cut(buf: &mut Vec<u8>, keep: usize) {
    if buf.capacity() > keep.saturating_mul(4) {
        buf.truncate(keep * 2);
        buf.shrink_to(keep * 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_use_is_given_back_after_a_window_of_small_ones() {
        let mut trim = Trim::default();
        let mut buf = vec![0u8; 16 << 20];
        // The window with the large use keeps it.
        for i in 0..WINDOW {
            if let Some(keep) = trim.end_use(if i == 0 { 16 << 20 } else { 10 }) {
                cut(&mut buf, keep);
            }
        }
        assert_eq!(buf.capacity(), 16 << 20);
        for _ in 0..WINDOW {
            if let Some(keep) = trim.end_use(10) {
                cut(&mut buf, keep);
            }
        }
        assert!(buf.capacity() <= 2 * FLOOR, "kept {}", buf.capacity());
        // Cutting again at the same use changes nothing.
        for _ in 0..WINDOW {
            if let Some(keep) = trim.end_use(10) {
                cut(&mut buf, keep);
            }
        }
        assert_eq!(buf.capacity(), 2 * FLOOR);
    }

    #[test]
    fn a_steady_use_is_never_cut() {
        let mut trim = Trim::default();
        let mut buf: Vec<u8> = Vec::new();
        for _ in 0..10 * WINDOW {
            buf.clear();
            buf.extend_from_slice(&[1; 65_537]);
            let cap = buf.capacity();
            if let Some(keep) = trim.end_use(buf.len()) {
                cut(&mut buf, keep);
            }
            assert_eq!(buf.capacity(), cap);
        }
    }
}
