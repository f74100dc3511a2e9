//! Service-account credential files: `{"user": "...", "password": "..."}`, the same shape as
//! SceneScape's `*.auth` files.

use std::path::Path;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::SecretsError;
use crate::fsutil;

#[derive(Serialize)]
struct AuthOut<'a> {
    user: &'a str,
    password: &'a str,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthIn {
    user: String,
    password: String,
}

/// Serializes credentials to JSON (newline-terminated) in a zeroizing buffer.
pub(crate) fn to_json(user: &str, password: &str) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
    // Sized for the worst case (every character escaped as \uXXXX) so serde_json never
    // reallocates and leaves a stale copy of the password behind.
    let capacity = 32 + 6 * (user.len() + password.len());
    let mut out = Zeroizing::new(Vec::with_capacity(capacity));
    serde_json::to_writer(&mut *out, &AuthOut { user, password }).map_err(|_| {
        SecretsError::Json {
            what: "credentials",
        }
    })?;
    out.push(b'\n');
    Ok(out)
}

/// Reads a service-account credentials file: returns the user name and the password.
///
/// Parse errors report line and column only, never the file's content.
pub fn read_auth_file(path: &Path) -> Result<(String, Zeroizing<String>), SecretsError> {
    let bytes = fsutil::read_private(path)?;
    match serde_json::from_slice::<AuthIn>(&bytes) {
        Ok(parsed) => Ok((parsed.user, Zeroizing::new(parsed.password))),
        Err(e) => Err(SecretsError::AuthFile {
            path: path.to_owned(),
            reason: match e.classify() {
                serde_json::error::Category::Io => "read error",
                serde_json::error::Category::Syntax => "invalid JSON",
                serde_json::error::Category::Data => {
                    "expected exactly the string fields \"user\" and \"password\""
                }
                serde_json::error::Category::Eof => "unexpected end of file",
            },
            line: e.line(),
            column: e.column(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn round_trip_and_escaping() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.auth");
        let json = to_json("scenectrl", "p\"w\\d").unwrap();
        fs::write(&path, &json[..]).unwrap();
        let (user, password) = read_auth_file(&path).unwrap();
        assert_eq!(user, "scenectrl");
        assert_eq!(password.as_str(), "p\"w\\d");
    }

    #[test]
    fn errors_do_not_quote_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.auth");
        fs::write(&path, br#"{"user": "u", "password": 123456789}"#).unwrap();
        let err = read_auth_file(&path).unwrap_err();
        assert!(!err.to_string().contains("123456789"), "{err}");

        fs::write(&path, br#"{"user": "u", "password": "p", "extra": 1}"#).unwrap();
        assert!(matches!(
            read_auth_file(&path),
            Err(SecretsError::AuthFile { .. })
        ));
    }
}
