//! Randomness from the operating system.

use crate::error::CaError;

/// Bytes in a certificate serial number: 128 bits, top bit cleared (RFC 5280 §4.1.2.2 wants a
/// positive integer of at most 20 octets; CA/B Forum asks for at least 64 random bits).
const SERIAL_LEN: usize = 16;

/// Fills `buf` from the operating system's CSPRNG.
pub(crate) fn fill(buf: &mut [u8]) -> Result<(), CaError> {
    getrandom::fill(buf).map_err(CaError::Random)
}

/// A fresh random serial number: 16 bytes, top bit cleared, never zero.
///
/// rcgen's default serial is a hash of the public key, which repeats when a key is re-certified;
/// we never use it.
pub(crate) fn serial_number() -> Result<rcgen::SerialNumber, CaError> {
    let mut bytes = [0u8; SERIAL_LEN];
    loop {
        fill(&mut bytes)?;
        bytes[0] &= 0x7f;
        if bytes.iter().any(|&b| b != 0) {
            return Ok(rcgen::SerialNumber::from_slice(&bytes));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn serials_are_positive_16_bytes_and_distinct() {
        let mut seen = HashSet::new();
        let mut top_bytes_or = 0u8;
        for _ in 0..256 {
            let serial = serial_number().unwrap().to_bytes();
            assert_eq!(serial.len(), SERIAL_LEN);
            assert_eq!(serial[0] & 0x80, 0, "top bit must be clear");
            top_bytes_or |= serial[0];
            assert!(seen.insert(serial), "serial repeated");
        }
        // 256 draws leave some bit of the first byte set unless the generator is broken.
        assert_ne!(top_bytes_or, 0);
    }
}
