//! Credential digests and API-key tokens.
//!
//! **Digests.** Every secret the data plane can check itself (a service account's password, a
//! device's MPS password, an API key's secret, a session token) is stored only as
//! `HMAC-SHA256(credential_key, domain || 0x00 || secret)`. The installation's 32-byte
//! credential key makes a stolen database useless for offline guessing, and the domain (one of
//! the `DOMAIN_*` constants) keeps a digest made for one purpose from ever verifying for
//! another. The secrets are generated with at least 256 bits of entropy, so a fast keyed hash is
//! enough; human passwords are Argon2id and never reach this module (or the data plane's
//! cores).
//!
//! **API-key tokens** look like GitHub's (<https://github.blog/2021-04-05-behind-githubs-new-authentication-token-formats/>):
//!
//! ```text
//! rpk_<key_id>_<secret><checksum>
//!      12 chars  43 chars 6 chars          all base62 (0-9A-Za-z); 66 chars in total
//! ```
//!
//! The fixed prefix makes leaked keys easy to scan for ([`is_api_key_shaped`]). The `key_id` is
//! the public lookup handle. The secret carries `43 * log2(62) ≈ 256.03` bits. The checksum is
//! the CRC-32 (IEEE) of everything before it, as 6 base62 digits, so a mistyped or truncated key
//! is refused offline ([`TokenError::Checksum`]) without a lookup.
//!
//! What this module deliberately does not do: generate randomness (the caller brings the bytes,
//! see [`api_key_from_random`]) or hash passwords.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Domain of a service account's password digest.
pub const DOMAIN_ACCOUNT: &str = "rampart/account/v1";
/// Domain of a device's MPS (CIRA) password digest.
pub const DOMAIN_DEVICE: &str = "rampart/device-mps/v1";
/// Domain of an API key's secret digest.
pub const DOMAIN_API_KEY: &str = "rampart/api-key/v1";
/// Domain of a web session token's digest.
pub const DOMAIN_SESSION: &str = "rampart/session/v1";

/// The fixed start of every API-key token.
pub const API_KEY_PREFIX: &str = "rpk_";
/// Length of an API key's public id, in base62 characters.
pub const KEY_ID_LEN: usize = 12;
/// Length of an API key's secret, in base62 characters (≥ 256 bits).
pub const SECRET_LEN: usize = 43;
/// Length of the checksum that ends a token, in base62 characters.
pub const CHECKSUM_LEN: usize = 6;
/// Length of a whole token: prefix, key id, `_`, secret, checksum.
pub const API_KEY_LEN: usize = API_KEY_PREFIX.len() + KEY_ID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `HMAC-SHA256(key, domain || 0x00 || secret)`.
///
/// The `0x00` separator cannot occur in a domain (they are fixed ASCII strings), so no
/// (domain, secret) pair can collide with another's message.
pub fn digest(key: &[u8; 32], domain: &str, secret: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length; 32 bytes is always accepted.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts a key of any length"));
    mac.update(domain.as_bytes());
    mac.update(&[0]);
    mac.update(secret);
    mac.finalize().into_bytes().into()
}

/// Whether `secret` has the digest `expected`, compared in constant time.
pub fn verify(key: &[u8; 32], domain: &str, secret: &[u8], expected: &[u8; 32]) -> bool {
    ct_eq(&digest(key, domain, secret), expected)
}

/// Constant-time equality of two digests.
pub fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    bool::from(a.ct_eq(b))
}

// === API-key tokens ===

/// The two parts of a well-formed token, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiKeyParts<'a> {
    /// The public id: the lookup handle, safe to log.
    pub key_id: &'a str,
    /// The secret: never log it; digest it with [`DOMAIN_API_KEY`].
    pub secret: &'a str,
}

/// Why a string is not an API-key token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not [`API_KEY_LEN`] bytes long.
    #[error("not an API key: wrong length")]
    Length,
    /// Does not start with [`API_KEY_PREFIX`].
    #[error("not an API key: wrong prefix")]
    Prefix,
    /// No `_` between the key id and the secret.
    #[error("not an API key: missing separator")]
    Separator,
    /// A character outside base62 where base62 is required.
    #[error("not an API key: invalid character")]
    Charset,
    /// Shaped like a Rampart key but the checksum does not match: a typo, a truncated copy, or
    /// not a key Rampart made.
    #[error("API key checksum mismatch (mistyped or not a Rampart key)")]
    Checksum,
}

/// Builds a token from its key id and secret.
///
/// Both must already have the right length and alphabet (as [`api_key_from_random`] makes
/// them); otherwise the result is a string that [`parse_api_key`] refuses.
pub fn format_api_key(key_id: &str, secret: &str) -> String {
    let mut token = String::with_capacity(API_KEY_LEN);
    token.push_str(API_KEY_PREFIX);
    token.push_str(key_id);
    token.push('_');
    token.push_str(secret);
    token.push_str(&checksum(token.as_bytes()));
    token
}

/// Parses a token strictly: length, prefix, separator, alphabet, then checksum.
pub fn parse_api_key(token: &str) -> Result<ApiKeyParts<'_>, TokenError> {
    let (key_id, secret, sum) = split_token(token)?;
    if checksum(&token.as_bytes()[..API_KEY_LEN - CHECKSUM_LEN]).as_bytes() != sum.as_bytes() {
        return Err(TokenError::Checksum);
    }
    Ok(ApiKeyParts { key_id, secret })
}

/// Whether `s` has the shape of a token (prefix, lengths, separator, alphabet), without
/// checking the checksum. For leak scanners: a hit is then confirmed with [`parse_api_key`],
/// whose checksum makes false positives on random text about one in 4·10⁹.
pub fn is_api_key_shaped(s: &str) -> bool {
    split_token(s).is_ok()
}

/// Whether `s` is a valid key id: exactly [`KEY_ID_LEN`] base62 characters.
pub fn valid_key_id(s: &str) -> bool {
    s.len() == KEY_ID_LEN && is_base62(s)
}

/// Maps 64 caller-supplied random bytes to a key id and a secret, deterministically.
///
/// The bytes are read as one 512-bit big-endian integer `N`, and the 55 base62 digits of
/// `N mod 62^55` become the key id (12 digits) then the secret (43 digits). Reducing a uniform
/// 512-bit number modulo `62^55 < 2^328` leaves a statistical distance from uniform below
/// `62^55 / 2^512 < 2^-184`: unbiased for every practical purpose, with no rejection step that
/// could run out of input (the usual "drop bytes ≥ 248" sampling would fail for about one input
/// in 20 000 when it has only 64 bytes to draw from).
pub fn api_key_from_random(bytes: &[u8; 64]) -> (String, String) {
    let mut n = *bytes;
    let mut digits = [0u8; KEY_ID_LEN + SECRET_LEN];
    for d in &mut digits {
        *d = BASE62[usize::from(divmod(&mut n, 62))];
    }
    let (id, secret) = digits.split_at(KEY_ID_LEN);
    (ascii_string(id), ascii_string(secret))
}

/// The key id, secret and checksum of a token of the right shape.
fn split_token(token: &str) -> Result<(&str, &str, &str), TokenError> {
    if token.len() != API_KEY_LEN {
        return Err(TokenError::Length);
    }
    let Some(rest) = token.strip_prefix(API_KEY_PREFIX) else {
        return Err(TokenError::Prefix);
    };
    // `rest` is ASCII up to the separator if the prefix matched and everything is base62;
    // check the separator by byte so a multi-byte character cannot split a char boundary.
    if rest.as_bytes().get(KEY_ID_LEN) != Some(&b'_') {
        return Err(TokenError::Separator);
    }
    let (key_id, rest) = rest.split_at(KEY_ID_LEN);
    let rest = &rest[1..];
    if !is_base62(key_id) || !is_base62(rest) {
        return Err(TokenError::Charset);
    }
    let (secret, sum) = rest.split_at(SECRET_LEN);
    Ok((key_id, secret, sum))
}

fn is_base62(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// CRC-32 of `data` as [`CHECKSUM_LEN`] base62 digits, most significant first.
fn checksum(data: &[u8]) -> String {
    let mut crc = crc32fast::hash(data);
    let mut out = [b'0'; CHECKSUM_LEN];
    for d in out.iter_mut().rev() {
        *d = BASE62[(crc % 62) as usize];
        crc /= 62;
    }
    ascii_string(&out)
}

/// Divides the big-endian integer `n` by `d` in place and returns the remainder.
fn divmod(n: &mut [u8; 64], d: u8) -> u8 {
    let mut rem: u16 = 0;
    for byte in n.iter_mut() {
        let cur = (rem << 8) | u16::from(*byte);
        // cur < 256 * d, so the quotient fits in a byte.
        *byte = (cur / u16::from(d)) as u8;
        rem = cur % u16::from(d);
    }
    rem as u8
}

fn ascii_string(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    #[test]
    fn digest_known_vector_and_domain_separation() {
        // HMAC-SHA256(key = 32 × 0x07, "rampart/account/v1\0hunter2"), computed independently
        // with Python's hmac module.
        let d = digest(&KEY, DOMAIN_ACCOUNT, b"hunter2");
        assert_eq!(
            hex(&d),
            "e65b69c00299157957494db1bcab37c6571b1dd07753a010b996940bb91b4ec2"
        );
        // Domain and separator matter.
        assert_ne!(d, digest(&KEY, DOMAIN_DEVICE, b"hunter2"));
        assert_ne!(
            digest(&KEY, "rampart/account/v", b"1\0hunter2"),
            digest(&KEY, DOMAIN_ACCOUNT, b"hunter2")
        );
        assert_ne!(d, digest(&[8; 32], DOMAIN_ACCOUNT, b"hunter2"));
        assert!(verify(&KEY, DOMAIN_ACCOUNT, b"hunter2", &d));
        assert!(!verify(&KEY, DOMAIN_ACCOUNT, b"hunter3", &d));
        assert!(!verify(&KEY, DOMAIN_API_KEY, b"hunter2", &d));
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn token_round_trip() {
        let (id, secret) = api_key_from_random(&[0xA5; 64]);
        assert_eq!(id.len(), KEY_ID_LEN);
        assert_eq!(secret.len(), SECRET_LEN);
        assert!(valid_key_id(&id));
        let token = format_api_key(&id, &secret);
        assert_eq!(token.len(), API_KEY_LEN);
        assert_eq!(API_KEY_LEN, 66);
        assert!(is_api_key_shaped(&token));
        let parts = parse_api_key(&token).unwrap();
        assert_eq!(parts.key_id, id);
        assert_eq!(parts.secret, secret);
    }

    #[test]
    fn random_mapping_is_deterministic_and_spreads() {
        let a = api_key_from_random(&[1; 64]);
        assert_eq!(a, api_key_from_random(&[1; 64]));
        let mut other = [1; 64];
        other[63] = 2;
        assert_ne!(a, api_key_from_random(&other));
        // All zero bytes are the number 0: every digit is '0'.
        let (id, secret) = api_key_from_random(&[0; 64]);
        assert_eq!(id, "0".repeat(12));
        assert_eq!(secret, "0".repeat(43));
        // The least significant digit comes first: N = 61 gives 'z' then zeros.
        let mut n = [0; 64];
        n[63] = 61;
        let (id, _) = api_key_from_random(&n);
        assert_eq!(id, "z00000000000");
        // N = 62 + 1 gives "11".
        n[63] = 63;
        assert_eq!(api_key_from_random(&n).0, "110000000000");
    }

    #[test]
    fn random_digits_are_roughly_uniform() {
        // A cheap deterministic generator (xorshift) feeding 2000 keys: every base62 symbol
        // must appear, and none more than twice its fair share.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut counts = [0u32; 62];
        for _ in 0..2000 {
            let mut bytes = [0u8; 64];
            for chunk in bytes.chunks_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                chunk.copy_from_slice(&state.to_le_bytes());
            }
            let (id, secret) = api_key_from_random(&bytes);
            for b in id.bytes().chain(secret.bytes()) {
                let i = BASE62.iter().position(|&c| c == b).unwrap();
                counts[i] += 1;
            }
        }
        let fair = 2000 * 55 / 62;
        for (i, &c) in counts.iter().enumerate() {
            assert!(c > fair / 2 && c < fair * 2, "symbol {i}: {c} vs {fair}");
        }
    }

    #[test]
    fn known_token_vectors() {
        // Computed independently (Python: zlib.crc32, big-integer base62), so that the format
        // cannot drift silently between the planes or from tools that scan for leaked keys.
        let token = format_api_key("AbCdEf012345", &"x".repeat(43));
        assert_eq!(
            token,
            "rpk_AbCdEf012345_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx19IkBB"
        );
        assert!(parse_api_key(&token).is_ok());
        let (id, secret) = api_key_from_random(&[0xA5; 64]);
        assert_eq!(id, "reC6ec4GTHxo");
        assert_eq!(secret, "nY5nQaRwC6SkDltQiHrzAIeNTaqyWwqaP0XaY2gbeal");
    }

    #[test]
    fn strict_parsing() {
        let (id, secret) = api_key_from_random(&[3; 64]);
        let token = format_api_key(&id, &secret);
        assert_eq!(parse_api_key(""), Err(TokenError::Length));
        assert_eq!(parse_api_key(&token[1..]), Err(TokenError::Length));
        assert_eq!(parse_api_key(&format!("{token}x")), Err(TokenError::Length));
        let wrong_prefix = format!("gpk_{}", &token[4..]);
        assert_eq!(parse_api_key(&wrong_prefix), Err(TokenError::Prefix));
        let mut no_sep = token.clone().into_bytes();
        no_sep[16] = b'x';
        let no_sep = String::from_utf8(no_sep).unwrap();
        assert_eq!(parse_api_key(&no_sep), Err(TokenError::Separator));
        let mut bad_char = token.clone().into_bytes();
        bad_char[20] = b'-';
        let bad_char = String::from_utf8(bad_char).unwrap();
        assert_eq!(parse_api_key(&bad_char), Err(TokenError::Charset));
        assert!(!is_api_key_shaped(&bad_char));
        // A multi-byte character in place of the separator (same byte length overall).
        let multibyte = format!("rpk_{}é{}", &token[4..16], &token[18..]);
        assert_eq!(multibyte.len(), API_KEY_LEN);
        assert!(parse_api_key(&multibyte).is_err());
        // One changed secret character: still key-shaped, but the checksum refuses it.
        let mut typo = token.clone().into_bytes();
        typo[30] = if typo[30] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(typo).unwrap();
        assert!(is_api_key_shaped(&typo));
        assert_eq!(parse_api_key(&typo), Err(TokenError::Checksum));
        // Swapped checksum digits.
        let mut swapped = token.clone().into_bytes();
        swapped.swap(60, 65);
        let swapped = String::from_utf8(swapped).unwrap();
        if swapped != token {
            assert_eq!(parse_api_key(&swapped), Err(TokenError::Checksum));
        }
        assert!(!valid_key_id("short"));
        assert!(!valid_key_id("abcdefghijk_"));
        assert!(valid_key_id("abcdefghijkl"));
    }
}
