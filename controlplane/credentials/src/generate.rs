//! Random secrets: machine secrets, human-typable passwords, raw key bytes and session tokens.
//!
//! Everything comes from the operating system's CSPRNG (`getrandom`) and is returned in
//! zeroizing buffers. A failing random number generator is reported as [`RandomError`], never
//! papered over and never a panic.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

/// The operating system's random number generator failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the operating system random number generator failed: {0}")]
pub struct RandomError(pub getrandom::Error);

/// Random bytes behind a [`machine_secret`] and a [`session_token`].
pub const MACHINE_SECRET_BYTES: usize = 32;
/// Characters in a [`machine_secret`]: 32 bytes in base64url without padding.
pub const MACHINE_SECRET_LEN: usize = 43;
/// Characters in a [`human_password`] (about 139 bits of entropy).
pub const HUMAN_PASSWORD_LEN: usize = 24;
/// The [`human_password`] alphabet: letters and digits without the look-alikes 0/O/o and
/// 1/l/I. 56 symbols, read aloud or typed from a screen without mistakes.
pub const HUMAN_PASSWORD_ALPHABET: &str =
    "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// Domain separation for [`SessionTokenDigest`].
const SESSION_DIGEST_DOMAIN: &[u8] = b"rampart/session-token/v1\0";

/// `N` bytes from the operating system's CSPRNG, in a buffer that is wiped on drop.
pub fn random_bytes<const N: usize>() -> Result<Zeroizing<[u8; N]>, RandomError> {
    let mut bytes = Zeroizing::new([0u8; N]);
    fill(&mut bytes[..])?;
    Ok(bytes)
}

/// Fills `buf` from the operating system's CSPRNG.
pub fn fill(buf: &mut [u8]) -> Result<(), RandomError> {
    getrandom::fill(buf).map_err(RandomError)
}

/// A secret for machines (service accounts, device credentials): 32 random bytes in base64url
/// without padding, [`MACHINE_SECRET_LEN`] characters, safe in JSON, URLs, HTTP headers and MQTT
/// CONNECT without escaping.
pub fn machine_secret() -> Result<Zeroizing<String>, RandomError> {
    let bytes = random_bytes::<MACHINE_SECRET_BYTES>()?;
    Ok(base64url(&bytes[..]))
}

/// A password for people (the generated `admin` password): [`HUMAN_PASSWORD_LEN`] characters
/// drawn uniformly from [`HUMAN_PASSWORD_ALPHABET`].
///
/// Bytes at or above the largest multiple of the alphabet size (224 for 56 symbols) are
/// rejected and redrawn, so `byte % 56` carries no modulo bias.
pub fn human_password() -> Result<Zeroizing<String>, RandomError> {
    let alphabet = HUMAN_PASSWORD_ALPHABET.as_bytes();
    let limit = 256 - 256 % alphabet.len();
    let mut password = Zeroizing::new(String::with_capacity(HUMAN_PASSWORD_LEN));
    while password.len() < HUMAN_PASSWORD_LEN {
        let batch = random_bytes::<64>()?;
        for &byte in batch.iter() {
            let byte = usize::from(byte);
            if byte < limit && password.len() < HUMAN_PASSWORD_LEN {
                // `byte % len` is always a valid index.
                password.push(char::from(alphabet[byte % alphabet.len()]));
            }
        }
    }
    Ok(password)
}

/// A new session token and the digest to store for it.
///
/// The token (32 random bytes, base64url without padding, [`MACHINE_SECRET_LEN`] characters)
/// goes to the client once, for example in a `Secure; HttpOnly` cookie. Store only the
/// [`SessionTokenDigest`]; on each request recompute it with [`session_token_digest`], look the
/// session up by it and compare with [`SessionTokenDigest::ct_eq`].
///
/// An unkeyed SHA-256 is enough here: the token has 256 bits of entropy, so a leaked table of
/// digests cannot be reversed or brute-forced. Keyed digests for credentials shared with the
/// data plane are `rampart_policy::cred`'s job.
pub fn session_token() -> Result<(Zeroizing<String>, SessionTokenDigest), RandomError> {
    let token = machine_secret()?;
    let digest = session_token_digest(&token);
    Ok((token, digest))
}

/// The storage digest of a session token: SHA-256 over a domain-separation prefix and the
/// token's text.
pub fn session_token_digest(token: &str) -> SessionTokenDigest {
    let mut hasher = Sha256::new();
    hasher.update(SESSION_DIGEST_DOMAIN);
    hasher.update(token.as_bytes());
    SessionTokenDigest(hasher.finalize().into())
}

/// What the database stores for a session: the SHA-256 digest of its token (see
/// [`session_token`]). Not a secret by itself; `Debug` shows only the first 4 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionTokenDigest([u8; 32]);

impl SessionTokenDigest {
    /// Wraps a digest read back from storage.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw digest, for storage.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time comparison.
    pub fn ct_eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
}

impl fmt::Debug for SessionTokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionTokenDigest({}…)", hex(&self.0[..4]))
    }
}

/// Base64url without padding into a zeroizing string sized up front (no reallocation copies).
pub(crate) fn base64url(bytes: &[u8]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(bytes.len().div_ceil(3) * 4));
    URL_SAFE_NO_PAD.encode_string(bytes, &mut out);
    out
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    #[test]
    fn human_passwords_use_the_alphabet_uniformly() {
        let alphabet = HUMAN_PASSWORD_ALPHABET.as_bytes();
        assert_eq!(alphabet.len(), 56);
        let mut counts: HashMap<u8, usize> = HashMap::new();
        let mut seen = HashSet::new();
        for _ in 0..400 {
            let password = human_password().unwrap();
            assert_eq!(password.len(), HUMAN_PASSWORD_LEN);
            assert!(seen.insert(password.to_string()));
            for b in password.bytes() {
                assert!(alphabet.contains(&b), "{b}");
                *counts.entry(b).or_default() += 1;
            }
        }
        // 9600 draws over 56 symbols: about 171 each. Every symbol shows up, none dominates.
        assert_eq!(counts.len(), alphabet.len());
        assert!(
            counts.values().all(|&n| (90..=260).contains(&n)),
            "{counts:?}"
        );
        for confusable in b"0Oo1lI" {
            assert!(!alphabet.contains(confusable));
        }
        let unique: HashSet<_> = alphabet.iter().collect();
        assert_eq!(unique.len(), alphabet.len());
    }

    #[test]
    fn machine_secrets_are_43_base64url_characters_of_32_bytes() {
        let mut seen = HashSet::new();
        for _ in 0..100 {
            let secret = machine_secret().unwrap();
            assert_eq!(secret.len(), MACHINE_SECRET_LEN);
            assert!(
                secret
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            assert_eq!(URL_SAFE_NO_PAD.decode(secret.as_bytes()).unwrap().len(), 32);
            assert!(seen.insert(secret.to_string()));
        }
    }

    #[test]
    fn random_bytes_differ() {
        let a = random_bytes::<32>().unwrap();
        let b = random_bytes::<32>().unwrap();
        assert_ne!(*a, *b);
        assert_eq!(random_bytes::<0>().unwrap().len(), 0);
    }

    #[test]
    fn session_tokens_and_digests() {
        let (token, digest) = session_token().unwrap();
        assert_eq!(token.len(), MACHINE_SECRET_LEN);
        assert!(digest.ct_eq(&session_token_digest(&token)));
        assert_eq!(digest, session_token_digest(&token));
        let (other, other_digest) = session_token().unwrap();
        assert_ne!(token, other);
        assert!(!digest.ct_eq(&other_digest));

        // Domain separated: not the plain SHA-256 of the token.
        let plain: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        assert_ne!(digest.as_bytes(), &plain);
        assert_eq!(SessionTokenDigest::from_bytes(*digest.as_bytes()), digest);
        assert_eq!(digest.to_hex().len(), 64);

        let debug = format!("{digest:?}");
        assert!(!debug.contains(&digest.to_hex()), "{debug}");
        assert!(!debug.contains(token.as_str()), "{debug}");
    }

    #[test]
    fn hex_encoding() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
    }
}
