//! The device GUID and its two byte orders.

use std::fmt;
use std::str::FromStr;

/// A device GUID in textual (RFC 4122 big-endian) byte order: the order
/// `rampart_policy::snapshot::parse_guid` produces, so `Guid(parse_guid(s)?)` works.
///
/// AMT sends it in PROTOCOLVERSION in the SMBIOS/Microsoft order: the first three groups
/// (4, 2 and 2 bytes) little-endian, the last 8 bytes as written (reference §1.3). Example:
/// `12345678-9abc-def0-1122-334455667788` is `78 56 34 12 bc 9a f0 de 11 22 33 44 55 66 77 88`
/// on the wire. [`Guid::from_wire`] and [`Guid::to_wire`] convert.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid(pub [u8; 16]);

/// The text is not a GUID in the 8-4-4-4-12 hexadecimal form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a GUID in 8-4-4-4-12 hexadecimal form")]
pub struct ParseGuidError;

impl Guid {
    /// The GUID from the 16 bytes of PROTOCOLVERSION (first three groups little-endian).
    pub fn from_wire(b: [u8; 16]) -> Self {
        Self(swap_groups(b))
    }

    /// The 16 bytes as AMT sends them (first three groups little-endian).
    pub fn to_wire(&self) -> [u8; 16] {
        swap_groups(self.0)
    }
}

/// Reverses the bytes of the first three groups; its own inverse.
fn swap_groups(b: [u8; 16]) -> [u8; 16] {
    let mut out = b;
    out[..4].reverse();
    out[4..6].reverse();
    out[6..8].reverse();
    out
}

impl fmt::Display for Guid {
    /// Lowercase 8-4-4-4-12.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Guid {
    type Err = ParseGuidError;

    /// Parses 8-4-4-4-12 hexadecimal, either case; nothing else (no braces, no `urn:uuid:`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        if b.len() != 36 {
            return Err(ParseGuidError);
        }
        let mut out = [0u8; 16];
        let mut nibbles = 0usize;
        for (i, &c) in b.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if c != b'-' {
                    return Err(ParseGuidError);
                }
                continue;
            }
            let v = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => return Err(ParseGuidError),
            };
            let byte = out.get_mut(nibbles / 2).ok_or(ParseGuidError)?;
            *byte = (*byte << 4) | v;
            nibbles += 1;
        }
        if nibbles == 32 {
            Ok(Self(out))
        } else {
            Err(ParseGuidError)
        }
    }
}
