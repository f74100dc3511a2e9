//! Payload masking (§5.3).

/// XORs `data` in place with the repeating 4-byte masking key, starting at key byte 0. Masking
/// and unmasking are the same operation. To continue a payload after `n` bytes, rotate the key
/// left by `n % 4` first.
pub fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    let key = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut words = data.chunks_exact_mut(8);
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        word.copy_from_slice(&(u64::from_ne_bytes(w) ^ key).to_ne_bytes());
    }
    // The tail starts at a multiple of 8, so key byte 0 again.
    for (b, m) in words.into_remainder().iter_mut().zip(mask.iter().cycle()) {
        *b ^= m;
    }
}
