//! Device GUIDs as they appear in secret paths and record contexts.

use std::fmt;
use std::str::FromStr;

/// A device's GUID in canonical UUID text form (`8-4-4-4-12` hex digits), stored lower-case.
///
/// Parsing is the only way to get one, so a value can be put into a Vault path or an
/// associated-data context without escaping: it contains only `0-9`, `a-f` and `-`, which rules
/// out path traversal (`..`, `/`, `%2f`) and query injection.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceGuid([u8; 36]);

/// The text is not a canonical UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "not a canonical GUID (expected 8-4-4-4-12 hex digits, e.g. 123e4567-e89b-12d3-a456-426614174000)"
)]
pub struct InvalidGuid;

impl DeviceGuid {
    /// Parses `8-4-4-4-12` hex digits, either case; any other shape (braces, `urn:uuid:`,
    /// missing dashes, whitespace) is refused. Upper-case digits are lowered so that one device
    /// has one path.
    pub fn parse(text: &str) -> Result<DeviceGuid, InvalidGuid> {
        // The one GUID grammar of the project is the snapshot's; its formatter lower-cases.
        let bytes = rampart_policy::snapshot::parse_guid(text).ok_or(InvalidGuid)?;
        let canonical = rampart_policy::snapshot::format_guid(&bytes);
        let mut out = [0u8; 36];
        if canonical.len() != out.len() {
            return Err(InvalidGuid);
        }
        out.copy_from_slice(canonical.as_bytes());
        Ok(DeviceGuid(out))
    }

    /// The canonical lower-case text.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits and dashes are ever stored, so this never fails; the fallback
        // keeps the function total.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl FromStr for DeviceGuid {
    type Err = InvalidGuid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeviceGuid::parse(s)
    }
}

impl fmt::Display for DeviceGuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for DeviceGuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceGuid({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_guids_parse_and_lower() {
        let g = DeviceGuid::parse("123E4567-e89b-12d3-A456-426614174000").unwrap();
        assert_eq!(g.as_str(), "123e4567-e89b-12d3-a456-426614174000");
        assert_eq!(g.to_string(), g.as_str());
        assert_eq!("123e4567-e89b-12d3-a456-426614174000".parse(), Ok(g));
    }

    #[test]
    fn everything_else_is_refused() {
        for bad in [
            "",
            "123e4567e89b12d3a456426614174000",
            "{123e4567-e89b-12d3-a456-426614174000}",
            "urn:uuid:123e4567-e89b-12d3-a456-426614174000",
            " 123e4567-e89b-12d3-a456-42661417400",
            "123e4567-e89b-12d3-a456-42661417400g",
            "123e4567-e89b-12d3-a456_426614174000",
            "../../../../sys/raw/../../../../../..",
            "123e4567-e89b-12d3-a456-4266141740/0",
            "123e4567-e89b-12d3-a456-42661417%2f0",
            "123e4567-e89b-12d3-a456-4266141740é",
            "123e4567-e89b-12d3-a456-426614174000/",
        ] {
            assert_eq!(DeviceGuid::parse(bad), Err(InvalidGuid), "{bad:?}");
        }
    }
}
