//! Payload masking (RFC 6455 §5.3), a word at a time.
//!
//! The XOR runs over 32-byte blocks with a 32-byte key pattern, which LLVM turns into SIMD on
//! every target with vector registers; no `unsafe`, no alignment tricks.

/// XORs `buf` with `key`, as if `buf` started `offset` bytes into the masked payload.
///
/// Masking is its own inverse, so this both masks and unmasks. `offset` lets a payload that
/// arrives in pieces be unmasked piece by piece.
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotate(key, offset);
    let wide = widen(key);
    let mut blocks = buf.chunks_exact_mut(32);
    for block in &mut blocks {
        for (b, k) in block.iter_mut().zip(wide.iter()) {
            *b ^= k;
        }
    }
    for (b, k) in blocks.into_remainder().iter_mut().zip(key.iter().cycle()) {
        *b ^= k;
    }
}

/// Copies `src` into `dst` (same length) XORed with `key`, `src` starting `offset` bytes into
/// the masked payload. One pass instead of a copy and then a mask.
#[inline]
pub fn copy_masked(dst: &mut [u8], src: &[u8], key: [u8; 4], offset: usize) {
    debug_assert_eq!(dst.len(), src.len());
    let key = rotate(key, offset);
    let wide = widen(key);
    let mut d = dst.chunks_exact_mut(32);
    let mut s = src.chunks_exact(32);
    for (db, sb) in (&mut d).zip(&mut s) {
        for ((o, i), k) in db.iter_mut().zip(sb.iter()).zip(wide.iter()) {
            *o = i ^ k;
        }
    }
    for ((o, i), k) in d.into_remainder().iter_mut().zip(s.remainder()).zip(key.iter().cycle()) {
        *o = i ^ k;
    }
}

#[inline]
fn rotate(key: [u8; 4], offset: usize) -> [u8; 4] {
    let mut k = key;
    k.rotate_left(offset % 4);
    k
}

#[inline]
fn widen(key: [u8; 4]) -> [u8; 32] {
    let mut wide = [0u8; 32];
    for (w, k) in wide.iter_mut().zip(key.iter().cycle()) {
        *w = *k;
    }
    wide
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(i + offset) % 4];
        }
    }

    #[test]
    fn matches_the_bytewise_definition_at_every_length_and_offset() {
        let key = [0x12, 0x34, 0x56, 0x78];
        for len in 0..100 {
            for offset in 0..8 {
                let data: Vec<u8> = (0..len as u8).collect();
                let mut fast = data.clone();
                let mut slow = data.clone();
                apply_mask(&mut fast, key, offset);
                naive(&mut slow, key, offset);
                assert_eq!(fast, slow, "len {len} offset {offset}");
                let mut copied = vec![0; len];
                copy_masked(&mut copied, &data, key, offset);
                assert_eq!(copied, slow);
            }
        }
    }

    #[test]
    fn unmasking_in_pieces_equals_unmasking_whole() {
        let key = [9, 8, 7, 6];
        let data: Vec<u8> = (0..=255).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        let mut pieces = data.clone();
        let (a, rest) = pieces.split_at_mut(13);
        let (b, c) = rest.split_at_mut(101);
        apply_mask(a, key, 0);
        apply_mask(b, key, 13);
        apply_mask(c, key, 114);
        assert_eq!(whole, pieces);
    }
}
