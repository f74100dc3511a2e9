//! Human passwords: Argon2id hashing, verification, rehash detection and a strength check.
//!
//! Hashes are PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`) with the argon2
//! crate's defaults, which equal the OWASP Password Storage Cheat Sheet minimum for Argon2id
//! (19 MiB, 2 iterations, 1 lane). Parameters are read back from the string when verifying, so
//! they can be raised later: [`needs_rehash`] says when a stored hash should be replaced after a
//! successful login.
//!
//! Hashing takes tens of milliseconds and 19 MiB of memory by design: run it on control-plane
//! threads and rate-limit login attempts. Nothing here logs or formats a password.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::generate::{self, RandomError};

/// Argon2 salt length in bytes (RFC 9106 recommends 16).
pub const SALT_BYTES: usize = 16;
/// Fewest characters (Unicode scalar values) in a password a user chooses.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Most bytes (UTF-8) in any password, chosen or verified.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The Argon2id hash [`verify_or_dummy`] checks against when the account does not exist, so
/// that unknown and known accounts cost the same time. Made once with [`hash`] (current
/// parameters; a test keeps them in step) from a random password nobody knows.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$9tQAA7wrVy9KTFuDBMO7Hg$w0wMdTiZmgzInqg7U0ZS1d5XT4yQGrxMq8qxNpf+Z0c";

/// Hashing a password failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// No salt could be drawn.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// The password is longer than [`MAX_PASSWORD_BYTES`].
    #[error("the password is longer than {max} bytes")]
    TooLong {
        /// The limit in bytes.
        max: usize,
    },
    /// The argon2 crate refused (cannot happen with the fixed parameters and salt length).
    #[error("Argon2id hashing failed: {0}")]
    Hash(argon2::password_hash::Error),
}

/// Why a password chosen by a user is refused by [`check_strength`]. The messages never quote
/// the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Weakness {
    /// Fewer than [`MIN_PASSWORD_CHARS`] characters.
    #[error("the password must have at least {min} characters")]
    TooShort {
        /// The minimum in characters.
        min: usize,
    },
    /// More than [`MAX_PASSWORD_BYTES`] bytes.
    #[error("the password must not be longer than {max} bytes")]
    TooLong {
        /// The maximum in bytes.
        max: usize,
    },
    /// One character repeated (`aaaaaaaaaaaa`).
    #[error("the password must not be a single repeated character")]
    RepeatedCharacter,
    /// The password is the user name (ignoring case).
    #[error("the password must not be the user name")]
    SameAsUsername,
}

/// The hasher with the current parameters (argon2 crate defaults: Argon2id v0x13, m=19456 KiB,
/// t=2, p=1, 32-byte output).
fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// Hashes `password` with Argon2id and a random 16-byte salt; returns the PHC string to store.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong {
            max: MAX_PASSWORD_BYTES,
        });
    }
    let salt_bytes = generate::random_bytes::<SALT_BYTES>()?;
    let salt = SaltString::encode_b64(&salt_bytes[..]).map_err(PasswordError::Hash)?;
    let hash = hasher()
        .hash_password(password.as_bytes(), &salt)
        .map_err(PasswordError::Hash)?;
    Ok(hash.to_string())
}

/// Whether `password` matches the stored PHC string. Parameters come from the string. A
/// malformed string, a non-Argon2 algorithm or an over-long password gives `false`.
///
/// For logins, prefer [`verify_or_dummy`], which also costs the same when the account is
/// unknown or its hash is damaged.
pub fn verify(phc: &str, password: &str) -> bool {
    match parse(phc) {
        Some(parsed) => verify_parsed(&parsed, password),
        None => false,
    }
}

/// Login verification that does not reveal whether the account exists.
///
/// With `Some(phc)` this is [`verify`]. With `None` (unknown account), or a stored string
/// that does not parse, it still runs a full Argon2id verification against a fixed dummy hash
/// with the current parameters, and returns `false`.
pub fn verify_or_dummy(phc: Option<&str>, password: &str) -> bool {
    if let Some(parsed) = phc.and_then(parse) {
        return verify_parsed(&parsed, password);
    }
    if let Some(dummy) = parse(DUMMY_HASH) {
        // The result is discarded: nobody may log in through the dummy hash.
        let _ = std::hint::black_box(verify_parsed(&dummy, password));
    }
    false
}

/// Whether a stored hash is weaker than what [`hash`] makes today and should be replaced
/// (after a successful [`verify`], while the plaintext is at hand): not Argon2id v0x13, any of
/// m/t/p below the current parameters, a shorter output or salt, or not parseable at all.
pub fn needs_rehash(phc: &str) -> bool {
    let Some(parsed) = parse(phc) else {
        return true;
    };
    if Algorithm::try_from(parsed.algorithm) != Ok(Algorithm::Argon2id) {
        return true;
    }
    if parsed.version != Some(Version::V0x13.into()) {
        return true;
    }
    let Ok(params) = Params::try_from(&parsed) else {
        return true;
    };
    let current = Params::default();
    let output_len = parsed.hash.map_or(0, |h| h.len());
    // 16 salt bytes are 22 characters of unpadded base64.
    let salt_chars = parsed.salt.map_or(0, |s| s.len());
    params.m_cost() < current.m_cost()
        || params.t_cost() < current.t_cost()
        || params.p_cost() < current.p_cost()
        || output_len < Params::DEFAULT_OUTPUT_LEN
        || salt_chars < SALT_BYTES.div_ceil(3) * 4 - 2
}

/// Checks a password a user wants to set: at least [`MIN_PASSWORD_CHARS`] characters, at most
/// [`MAX_PASSWORD_BYTES`] bytes, not one character repeated, and not the user name (ignoring
/// case). Generated passwords do not need this.
pub fn check_strength(password: &str, username: &str) -> Result<(), Weakness> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Weakness::TooLong {
            max: MAX_PASSWORD_BYTES,
        });
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Weakness::TooShort {
            min: MIN_PASSWORD_CHARS,
        });
    }
    let mut chars = password.chars();
    if let Some(first) = chars.next()
        && chars.all(|c| c == first)
    {
        return Err(Weakness::RepeatedCharacter);
    }
    if !username.is_empty() && password.to_lowercase() == username.to_lowercase() {
        return Err(Weakness::SameAsUsername);
    }
    Ok(())
}

/// Parses a PHC string that can really be verified: an Argon2 variant (not scrypt, pbkdf2, ...),
/// a known version, valid parameters, and both salt and hash present. Anything less would make
/// verification fail early and quickly, so [`verify_or_dummy`] treats it like a missing account.
fn parse(phc: &str) -> Option<PasswordHash<'_>> {
    let parsed = PasswordHash::new(phc).ok()?;
    Algorithm::try_from(parsed.algorithm).ok()?;
    Version::try_from(parsed.version.unwrap_or(Version::V0x13.into())).ok()?;
    Params::try_from(&parsed).ok()?;
    parsed.salt?;
    parsed.hash?;
    Some(parsed)
}

fn verify_parsed(parsed: &PasswordHash<'_>, password: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    // `verify_password` takes algorithm, version and parameters from the hash and compares the
    // outputs in constant time.
    hasher()
        .verify_password(password.as_bytes(), parsed)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// Parses `m=..,t=..,p=..` out of a PHC string by hand (independently of the argon2 crate).
    fn phc_params(phc: &str) -> (String, String, u32, u32, u32) {
        let fields: Vec<&str> = phc.split('$').collect();
        assert_eq!(fields.len(), 6, "{phc}");
        assert_eq!(fields[0], "");
        let mut m = 0;
        let mut t = 0;
        let mut p = 0;
        for kv in fields[3].split(',') {
            let (k, v) = kv.split_once('=').unwrap();
            let v: u32 = v.parse().unwrap();
            match k {
                "m" => m = v,
                "t" => t = v,
                "p" => p = v,
                other => panic!("unexpected parameter {other}"),
            }
        }
        (fields[1].to_owned(), fields[2].to_owned(), m, t, p)
    }

    #[test]
    fn hash_uses_argon2id_with_owasp_parameters() {
        let phc = hash("correct horse battery staple").unwrap();
        let (alg, version, m, t, p) = phc_params(&phc);
        assert_eq!(alg, "argon2id");
        assert_eq!(version, "v=19");
        assert_eq!((m, t, p), (19456, 2, 1), "OWASP minimum: 19 MiB, t=2, p=1");

        let parsed = PasswordHash::new(&phc).unwrap();
        let salt = parsed.salt.unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(salt.decode_b64(&mut buf).unwrap().len(), SALT_BYTES);
        assert_eq!(parsed.hash.unwrap().len(), 32);

        assert_ne!(
            phc,
            hash("correct horse battery staple").unwrap(),
            "salt must be random"
        );
        assert!(!needs_rehash(&phc));
    }

    #[test]
    fn verify_accepts_the_password_and_nothing_else() {
        let phc = hash("correct horse battery staple").unwrap();
        assert!(verify(&phc, "correct horse battery staple"));
        assert!(!verify(&phc, "correct horse battery stapl"));
        assert!(!verify(&phc, "Correct horse battery staple"));
        assert!(!verify(&phc, ""));
        assert!(!verify("", "x"));
        assert!(!verify("not a phc string", "x"));
        assert!(!verify("$argon2id$v=19$m=19456,t=2,p=1$$", "x"));
        assert!(!verify(
            "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E",
            "x"
        ));
        assert!(!verify(&phc, &"x".repeat(MAX_PASSWORD_BYTES + 1)));
        assert_eq!(
            hash(&"x".repeat(MAX_PASSWORD_BYTES + 1)),
            Err(PasswordError::TooLong {
                max: MAX_PASSWORD_BYTES
            })
        );
    }

    #[test]
    fn unknown_accounts_never_verify_and_cost_a_real_verification() {
        let phc = hash("correct horse battery staple").unwrap();
        assert!(verify_or_dummy(Some(&phc), "correct horse battery staple"));
        assert!(!verify_or_dummy(Some(&phc), "wrong"));
        assert!(!verify_or_dummy(None, "correct horse battery staple"));
        assert!(!verify_or_dummy(None, ""));
        assert!(!verify_or_dummy(Some("garbage"), "garbage"));

        // Fastest of a few interleaved runs each (the least disturbed by other tests running
        // in parallel): the dummy path must cost about as much as a real verification, i.e.
        // milliseconds, not the microseconds of an early return.
        let time = |phc: Option<&str>| {
            let start = Instant::now();
            verify_or_dummy(phc, "wrong password");
            start.elapsed()
        };
        let mut fastest = [Duration::MAX; 3];
        for _ in 0..5 {
            for (slot, phc) in
                fastest
                    .iter_mut()
                    .zip([Some(phc.as_str()), None, Some("$argon2id$broken")])
            {
                *slot = (*slot).min(time(phc));
            }
        }
        let [known, unknown, damaged] = fastest;
        for other in [unknown, damaged] {
            let ratio = other.as_secs_f64() / known.as_secs_f64();
            assert!(
                (0.25..4.0).contains(&ratio),
                "known {known:?}, other {other:?}"
            );
        }
    }

    #[test]
    fn dummy_hash_has_the_current_parameters() {
        let (alg, version, m, t, p) = phc_params(DUMMY_HASH);
        let current = Params::default();
        assert_eq!(alg, "argon2id");
        assert_eq!(version, "v=19");
        assert_eq!(
            (m, t, p),
            (current.m_cost(), current.t_cost(), current.p_cost())
        );
        assert!(!needs_rehash(DUMMY_HASH));
        assert!(parse(DUMMY_HASH).is_some());
    }

    #[test]
    fn rehash_is_needed_for_weaker_or_foreign_hashes() {
        let salt = SaltString::encode_b64(&[7u8; 16]).unwrap();
        let weak = |alg, m, t, p| {
            Argon2::new(alg, Version::V0x13, Params::new(m, t, p, None).unwrap())
                .hash_password(b"pw", &salt)
                .unwrap()
                .to_string()
        };
        assert!(!needs_rehash(&weak(Algorithm::Argon2id, 19456, 2, 1)));
        assert!(!needs_rehash(&weak(Algorithm::Argon2id, 65536, 3, 2)));
        assert!(needs_rehash(&weak(Algorithm::Argon2id, 4096, 3, 1)));
        assert!(needs_rehash(&weak(Algorithm::Argon2id, 19456, 1, 1)));
        assert!(needs_rehash(&weak(Algorithm::Argon2i, 19456, 2, 1)));
        assert!(needs_rehash(&weak(Algorithm::Argon2d, 19456, 2, 1)));
        let old_version = Argon2::new(Algorithm::Argon2id, Version::V0x10, Params::default())
            .hash_password(b"pw", &salt)
            .unwrap()
            .to_string();
        assert!(needs_rehash(&old_version));
        let short_salt = SaltString::encode_b64(&[7u8; 8]).unwrap();
        let short = hasher().hash_password(b"pw", &short_salt).unwrap();
        assert!(needs_rehash(&short.to_string()));
        assert!(needs_rehash("garbage"));
        assert!(needs_rehash(""));

        // A weaker hash still verifies (parameters come from the string).
        assert!(verify(&weak(Algorithm::Argon2id, 4096, 3, 1), "pw"));
    }

    #[test]
    fn strength_rules() {
        assert_eq!(check_strength("twelve chars", "admin"), Ok(()));
        assert_eq!(
            check_strength("eleven char", "admin"),
            Err(Weakness::TooShort { min: 12 })
        );
        // Characters, not bytes: 11 two-byte characters are still too short.
        assert_eq!(
            check_strength(
                &"é"
                    .repeat(5)
                    .chars()
                    .chain("ab12xy".chars())
                    .collect::<String>(),
                "u"
            ),
            Err(Weakness::TooShort { min: 12 })
        );
        assert_eq!(
            check_strength(
                &"é"
                    .repeat(6)
                    .chars()
                    .chain("ab12xy".chars())
                    .collect::<String>(),
                "u"
            ),
            Ok(())
        );
        assert_eq!(
            check_strength(&"ab".repeat(513), "admin"),
            Err(Weakness::TooLong { max: 1024 })
        );
        assert_eq!(check_strength(&"ab".repeat(512), "admin"), Ok(()));
        assert_eq!(
            check_strength("aaaaaaaaaaaaaaaa", "admin"),
            Err(Weakness::RepeatedCharacter)
        );
        assert_eq!(
            check_strength("Administrator", "administrator"),
            Err(Weakness::SameAsUsername)
        );
        assert_eq!(check_strength("administrator1", "administrator"), Ok(()));
        assert_eq!(check_strength("anything long enough", ""), Ok(()));

        let message = Weakness::SameAsUsername.to_string();
        assert!(!message.contains("administrator"), "{message}");
    }
}
