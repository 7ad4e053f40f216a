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
    // Blocks as arrays, so their length is a type and not a runtime value.
    let (blocks, rest) = buf.as_chunks_mut::<32>();
    for b in blocks {
        for i in 0..32 {
            b[i] ^= wide[i];
        }
    }
    // Short payloads (most messages) and block tails: words, not bytes.
    let k8 = u64::from_ne_bytes([key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]]);
    let (words, rest) = rest.as_chunks_mut::<8>();
    for w in words {
        *w = (u64::from_ne_bytes(*w) ^ k8).to_ne_bytes();
    }
    let (quads, rest) = rest.as_chunks_mut::<4>();
    for q in quads {
        *q = (u32::from_ne_bytes(*q) ^ u32::from_ne_bytes(key)).to_ne_bytes();
    }
    for (b, k) in rest.iter_mut().zip(key) {
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
    let (d, d_rest) = dst.as_chunks_mut::<32>();
    let (s, s_rest) = src.as_chunks::<32>();
    for (d, s) in d.iter_mut().zip(s) {
        // Load the whole block before storing any of it: then the loop vectorizes wherever it
        // is inlined, without the compiler having to prove `dst` and `src` apart.
        let mut x = *s;
        for i in 0..32 {
            x[i] ^= wide[i];
        }
        *d = x;
    }
    for ((o, i), k) in d_rest.iter_mut().zip(s_rest).zip(key.iter().cycle()) {
        *o = i ^ k;
    }
}

/// `key` as if the payload started `offset` bytes in. Indexing, not `<[u8]>::rotate_left`,
/// which is a generic call that is not inlined.
#[inline(always)]
fn rotate(key: [u8; 4], offset: usize) -> [u8; 4] {
    let o = offset % 4;
    [key[o], key[(o + 1) % 4], key[(o + 2) % 4], key[(o + 3) % 4]]
}

#[inline(always)]
fn widen(key: [u8; 4]) -> [u8; 32] {
    let mut wide = [0u8; 32];
    for (i, w) in wide.iter_mut().enumerate() {
        *w = key[i % 4];
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
        for len in 0..200 {
            for offset in 0..8 {
                let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
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
