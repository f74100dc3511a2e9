//! Generated passwords and keys.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher as _, SaltString};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

use crate::error::SecretsError;

/// The superuser's login name.
pub const ADMIN_USER: &str = "admin";
/// Characters in a generated admin password (about 139 bits of entropy).
pub const ADMIN_PASSWORD_LEN: usize = 24;

/// Letters and digits without the look-alikes 0/O/o, 1/l/I: 56 symbols, read aloud or typed
/// from a screen without mistakes.
const ADMIN_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// Random bytes behind the session-signing secret.
const SESSION_KEY_BYTES: usize = 64;
/// Random bytes behind a generated database password (`openssl rand -base64 12`).
const DB_PASSWORD_BYTES: usize = 12;
/// Random bytes behind a service-account password.
const ACCOUNT_PASSWORD_BYTES: usize = 32;
/// Argon2 salt length (RFC 9106 recommends 16 bytes).
const SALT_BYTES: usize = 16;

/// `N` bytes from the operating system's CSPRNG.
fn random<const N: usize>() -> Result<Zeroizing<[u8; N]>, SecretsError> {
    let mut bytes = Zeroizing::new([0u8; N]);
    getrandom::fill(&mut bytes[..]).map_err(SecretsError::Random)?;
    Ok(bytes)
}

fn encode(engine: &impl base64::Engine, bytes: &[u8], extra: usize) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(bytes.len().div_ceil(3) * 4 + extra));
    engine.encode_string(bytes, &mut out);
    out
}

/// The admin password (SUPASS): [`ADMIN_PASSWORD_LEN`] characters drawn uniformly from
/// [`ADMIN_ALPHABET`]. Bytes at or above the largest multiple of the alphabet size are rejected
/// and redrawn, so `byte % 56` carries no modulo bias.
pub(crate) fn admin_password() -> Result<Zeroizing<String>, SecretsError> {
    const ALPHABET_LEN: usize = ADMIN_ALPHABET.len();
    const LIMIT: usize = 256 - 256 % ALPHABET_LEN;
    let mut password = Zeroizing::new(String::with_capacity(ADMIN_PASSWORD_LEN));
    while password.len() < ADMIN_PASSWORD_LEN {
        let batch = random::<64>()?;
        for &byte in batch.iter() {
            let byte = usize::from(byte);
            if byte < LIMIT && password.len() < ADMIN_PASSWORD_LEN {
                password.push(char::from(ADMIN_ALPHABET[byte % ALPHABET_LEN]));
            }
        }
    }
    Ok(password)
}

/// The Argon2id PHC string for `password`, with the argon2 crate's defaults (m=19456 KiB, t=2,
/// p=1: the OWASP minimum) and a random 16-byte salt.
pub(crate) fn hash_password(password: &str) -> Result<String, SecretsError> {
    let salt_bytes = random::<SALT_BYTES>()?;
    let salt = SaltString::encode_b64(&salt_bytes[..]).map_err(SecretsError::PasswordHash)?;
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(SecretsError::PasswordHash)?;
    Ok(hash.to_string())
}

/// The session-signing secret: 64 random bytes, standard base64, newline-terminated.
pub(crate) fn session_key() -> Result<Zeroizing<String>, SecretsError> {
    let bytes = random::<SESSION_KEY_BYTES>()?;
    let mut text = encode(&STANDARD, &bytes[..], 1);
    text.push('\n');
    Ok(text)
}

/// A database password like `openssl rand -base64 12`: 16 characters of standard base64.
pub(crate) fn db_password() -> Result<Zeroizing<String>, SecretsError> {
    let bytes = random::<DB_PASSWORD_BYTES>()?;
    Ok(encode(&STANDARD, &bytes[..], 1))
}

/// A service-account password: 32 random bytes, base64url without padding (43 characters,
/// safe in JSON, URLs and MQTT CONNECT without escaping).
pub(crate) fn account_password() -> Result<Zeroizing<String>, SecretsError> {
    let bytes = random::<ACCOUNT_PASSWORD_BYTES>()?;
    Ok(encode(&URL_SAFE_NO_PAD, &bytes[..], 0))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use argon2::password_hash::{PasswordHash, PasswordVerifier as _};
    use base64::Engine as _;

    use super::*;

    #[test]
    fn admin_passwords_use_the_alphabet_uniformly() {
        let mut counts: HashMap<u8, usize> = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..400 {
            let password = admin_password().unwrap();
            assert_eq!(password.len(), ADMIN_PASSWORD_LEN);
            assert!(seen.insert(password.to_string()));
            for b in password.bytes() {
                assert!(ADMIN_ALPHABET.contains(&b), "{b}");
                *counts.entry(b).or_default() += 1;
            }
        }
        // 9600 draws over 56 symbols: about 171 each. Every symbol shows up, none dominates.
        assert_eq!(counts.len(), ADMIN_ALPHABET.len());
        assert!(
            counts.values().all(|&n| (90..=260).contains(&n)),
            "{counts:?}"
        );
        for confusable in b"0O1lI" {
            assert!(!ADMIN_ALPHABET.contains(confusable));
        }
    }

    #[test]
    fn hash_is_argon2id_with_owasp_parameters_and_verifies() {
        let phc = hash_password("hunter2-but-longer").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        let parsed = PasswordHash::new(&phc).unwrap();
        Argon2::default()
            .verify_password(b"hunter2-but-longer", &parsed)
            .unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"hunter3-but-longer", &parsed)
                .is_err()
        );
        assert_ne!(
            phc,
            hash_password("hunter2-but-longer").unwrap(),
            "salt must be random"
        );
    }

    #[test]
    fn generated_secret_shapes() {
        let session = session_key().unwrap();
        assert_eq!(STANDARD.decode(session.trim_end()).unwrap().len(), 64);
        let db = db_password().unwrap();
        assert_eq!(db.len(), 16);
        assert_eq!(STANDARD.decode(db.as_bytes()).unwrap().len(), 12);
        let account = account_password().unwrap();
        assert_eq!(account.len(), 43);
        assert_eq!(
            URL_SAFE_NO_PAD.decode(account.as_bytes()).unwrap().len(),
            32
        );
    }
}
