//! Local secret storage with envelope encryption (XChaCha20-Poly1305).
//!
//! The master key ([`Kek`], the key-encryption key) is 32 bytes from `master.key` in the
//! secrets directory. Each record gets its own random 32-byte data key (DEK):
//!
//! - the DEK is encrypted under the KEK with a random 24-byte nonce and the associated data
//!   [`DEK_AAD`];
//! - the secret is encrypted under the DEK with a second random nonce and associated data bound
//!   to the record: [`RECORD_AAD_PREFIX`] followed by the caller's context, e.g.
//!   `device:<guid>:amt_password`. A blob copied onto another row therefore fails to open.
//!
//! Blob layout, version 1 (all fixed-size fields, so no length prefixes to trust):
//!
//! ```text
//! offset  size  field
//!      0     1  version (1)
//!      1     8  KEK id: first 8 bytes of SHA-256(KEK)
//!      9    24  nonce for the DEK
//!     33    48  DEK sealed under the KEK (32 bytes + 16-byte Poly1305 tag)
//!     81    24  nonce for the secret
//!    105  n+16  secret sealed under the DEK
//! ```
//!
//! XChaCha20's 24-byte nonces are random, so no counter state is needed: the chance of a
//! repeat stays negligible far beyond any number of records we will hold. Rotating the master
//! key re-encrypts only the small DEK ([`rewrap`]); the KEK id tells which key a blob needs.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead as _, AeadInPlace as _, KeyInit as _, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::generate::{self, RandomError};

/// Length of a master key or data key.
pub const KEY_LEN: usize = 32;
/// The blob format this module writes.
pub const BLOB_VERSION: u8 = 1;
/// Associated data when sealing a DEK under the KEK.
pub const DEK_AAD: &[u8] = b"rampart/dek/v1";
/// Prefix of the associated data when sealing a secret under its DEK; the caller's context
/// follows it.
pub const RECORD_AAD_PREFIX: &[u8] = b"rampart/record/v1\0";

const KEY_ID_LEN: usize = 8;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const WRAPPED_DEK_LEN: usize = KEY_LEN + TAG_LEN;
const KEY_ID_AT: usize = 1;
const DEK_NONCE_AT: usize = KEY_ID_AT + KEY_ID_LEN;
const WRAPPED_DEK_AT: usize = DEK_NONCE_AT + NONCE_LEN;
const DATA_NONCE_AT: usize = WRAPPED_DEK_AT + WRAPPED_DEK_LEN;
const CIPHERTEXT_AT: usize = DATA_NONCE_AT + NONCE_LEN;
/// Shortest valid blob: header plus the tag of an empty secret.
pub const MIN_BLOB_LEN: usize = CIPHERTEXT_AT + TAG_LEN;

/// Why sealing, opening or re-wrapping failed. Messages never contain key material or
/// plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The blob names a master key other than the one loaded.
    #[error(
        "the secret was sealed under another master key (key id {blob}; the loaded master key is {loaded})"
    )]
    WrongKey {
        /// The key id recorded in the blob.
        blob: KeyId,
        /// The id of the key that was tried.
        loaded: KeyId,
    },
    /// Authentication failed: the record context differs from the one used when sealing, or
    /// the blob was modified.
    #[error(
        "the sealed secret failed authentication (wrong record, or the stored data was modified)"
    )]
    Authentication,
    /// The blob is not something [`seal`] produced: too short, or garbage.
    #[error("the sealed secret is malformed: {0}")]
    Malformed(&'static str),
    /// The blob has a version this build does not know.
    #[error("the sealed secret has unsupported format version {0}")]
    UnsupportedVersion(u8),
    /// A master key in text form is not base64 of exactly 32 bytes.
    #[error("the master key is invalid: {0}")]
    InvalidKey(&'static str),
    /// No random nonce or data key could be drawn.
    #[error(transparent)]
    Random(#[from] RandomError),
}

// === impl KeyId ===

/// Identifies a master key without revealing it: the first 8 bytes of its SHA-256. Displayed
/// as 16 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId([u8; KEY_ID_LEN]);

impl KeyId {
    /// The raw 8 bytes.
    pub fn as_bytes(&self) -> &[u8; 8] {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&generate::hex(&self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

// === impl Kek ===

/// The master key (key-encryption key). Wiped from memory on drop; `Debug` shows its
/// [`KeyId`] only.
#[derive(Clone)]
pub struct Kek {
    key: Zeroizing<[u8; KEY_LEN]>,
    id: KeyId,
}

impl Kek {
    /// A master key from its 32 raw bytes (for example from `rampart_secrets::read_key32`).
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Kek {
        let digest = Sha256::digest(bytes);
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        Kek {
            key: Zeroizing::new(*bytes),
            id: KeyId(id),
        }
    }

    /// A master key from the text of a `master.key` file: standard base64 of 32 bytes, with
    /// surrounding whitespace (the trailing newline) ignored.
    pub fn from_base64(text: &str) -> Result<Kek, EnvelopeError> {
        let mut decoded = Zeroizing::new([0u8; 2 * KEY_LEN]);
        let len = STANDARD
            .decode_slice(text.trim().as_bytes(), &mut decoded[..])
            .map_err(|e| match e {
                base64::DecodeSliceError::OutputSliceTooSmall => {
                    EnvelopeError::InvalidKey("longer than 32 bytes")
                }
                base64::DecodeSliceError::DecodeError(_) => {
                    EnvelopeError::InvalidKey("not standard base64")
                }
            })?;
        let bytes: &[u8; KEY_LEN] = match len.cmp(&KEY_LEN) {
            std::cmp::Ordering::Less => {
                return Err(EnvelopeError::InvalidKey("shorter than 32 bytes"));
            }
            std::cmp::Ordering::Greater => {
                return Err(EnvelopeError::InvalidKey("longer than 32 bytes"));
            }
            // The slice has exactly KEY_LEN bytes.
            std::cmp::Ordering::Equal => decoded[..KEY_LEN]
                .try_into()
                .map_err(|_| EnvelopeError::InvalidKey("shorter than 32 bytes"))?,
        };
        Ok(Kek::from_bytes(bytes))
    }

    /// A fresh random master key.
    pub fn generate() -> Result<Kek, RandomError> {
        Ok(Kek::from_bytes(&*generate::random_bytes::<KEY_LEN>()?))
    }

    /// The key's id, recorded in every blob sealed under it.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The key as `master.key` stores it: standard base64 and a newline.
    pub fn to_base64(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::with_capacity(KEY_LEN.div_ceil(3) * 4 + 1));
        STANDARD.encode_string(&self.key[..], &mut out);
        out.push('\n');
        out
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(Key::from_slice(&self.key[..]))
    }
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kek").field("id", &self.id).finish()
    }
}

// === seal, open, rewrap ===

/// Encrypts `plaintext` for the record named by `aad_context` (e.g.
/// `device:<guid>:amt_password`) under a fresh data key wrapped by `kek`. Returns the blob to
/// store; [`open`] with the same key and context returns the plaintext.
pub fn seal(kek: &Kek, aad_context: &str, plaintext: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let dek = generate::random_bytes::<KEY_LEN>()?;
    let dek_nonce = generate::random_bytes::<NONCE_LEN>()?;
    let data_nonce = generate::random_bytes::<NONCE_LEN>()?;

    let mut blob = Vec::with_capacity(MIN_BLOB_LEN + plaintext.len());
    blob.push(BLOB_VERSION);
    blob.extend_from_slice(kek.id.as_bytes());
    blob.extend_from_slice(&dek_nonce[..]);
    blob.extend_from_slice(&wrap_dek(kek, &dek_nonce, &dek)?);
    blob.extend_from_slice(&data_nonce[..]);

    let aad = record_aad(aad_context);
    let ciphertext = XChaCha20Poly1305::new(Key::from_slice(&dek[..]))
        .encrypt(
            XNonce::from_slice(&data_nonce[..]),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| EnvelopeError::Malformed("the secret is too long to encrypt"))?;
    blob.extend_from_slice(&ciphertext);
    Ok(blob)
}

/// Decrypts a blob made by [`seal`] with the same master key and record context.
///
/// Errors: [`EnvelopeError::WrongKey`] if the blob was sealed under another master key,
/// [`EnvelopeError::Authentication`] if the context differs or the blob was modified,
/// [`EnvelopeError::Malformed`] / [`EnvelopeError::UnsupportedVersion`] for anything that is
/// not a blob at all. Never panics, whatever the input.
pub fn open(
    kek: &Kek,
    aad_context: &str,
    blob: &[u8],
) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    let parts = Parts::parse(blob)?;
    parts.check_key(kek)?;
    let dek = unwrap_dek(kek, &parts)?;
    let aad = record_aad(aad_context);
    let mut buffer = Zeroizing::new(Vec::with_capacity(parts.ciphertext.len()));
    buffer.extend_from_slice(parts.ciphertext);
    XChaCha20Poly1305::new(Key::from_slice(&dek[..]))
        .decrypt_in_place(XNonce::from_slice(parts.data_nonce), &aad, &mut *buffer)
        .map_err(|_| EnvelopeError::Authentication)?;
    Ok(buffer)
}

/// Re-encrypts a blob's data key from `old` to `new` for master-key rotation. The secret's
/// ciphertext is copied unchanged (its DEK stays the same), so the record context is not
/// needed; a blob tampered with in that part still fails later in [`open`].
///
/// A blob already under `new` is returned unchanged.
pub fn rewrap(old: &Kek, new: &Kek, blob: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let parts = Parts::parse(blob)?;
    if parts.key_id == new.id && old.id != new.id {
        // Already rotated; opening it under `new` proves it.
        unwrap_dek(new, &parts)?;
        return Ok(blob.to_vec());
    }
    parts.check_key(old)?;
    let dek = unwrap_dek(old, &parts)?;
    let dek_nonce = generate::random_bytes::<NONCE_LEN>()?;
    let mut out = Vec::with_capacity(blob.len());
    out.push(BLOB_VERSION);
    out.extend_from_slice(new.id.as_bytes());
    out.extend_from_slice(&dek_nonce[..]);
    out.extend_from_slice(&wrap_dek(new, &dek_nonce, &dek)?);
    out.extend_from_slice(parts.data_nonce);
    out.extend_from_slice(parts.ciphertext);
    Ok(out)
}

/// The id of the master key a blob was sealed under, e.g. to find the records that still need
/// [`rewrap`] after a rotation.
pub fn blob_key_id(blob: &[u8]) -> Result<KeyId, EnvelopeError> {
    Parts::parse(blob).map(|p| p.key_id)
}

/// The fields of a version-1 blob, borrowed from it.
struct Parts<'a> {
    key_id: KeyId,
    dek_nonce: &'a [u8],
    wrapped_dek: &'a [u8],
    data_nonce: &'a [u8],
    ciphertext: &'a [u8],
}

impl<'a> Parts<'a> {
    fn parse(blob: &'a [u8]) -> Result<Self, EnvelopeError> {
        let Some((&version, rest)) = blob.split_first() else {
            return Err(EnvelopeError::Malformed("empty"));
        };
        if version != BLOB_VERSION {
            return Err(EnvelopeError::UnsupportedVersion(version));
        }
        if blob.len() < MIN_BLOB_LEN {
            return Err(EnvelopeError::Malformed(
                "shorter than the fixed header and tag",
            ));
        }
        let (key_id, rest) = rest.split_at(KEY_ID_LEN);
        let (dek_nonce, rest) = rest.split_at(NONCE_LEN);
        let (wrapped_dek, rest) = rest.split_at(WRAPPED_DEK_LEN);
        let (data_nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(key_id);
        Ok(Parts {
            key_id: KeyId(id),
            dek_nonce,
            wrapped_dek,
            data_nonce,
            ciphertext,
        })
    }

    fn check_key(&self, kek: &Kek) -> Result<(), EnvelopeError> {
        if self.key_id == kek.id {
            Ok(())
        } else {
            Err(EnvelopeError::WrongKey {
                blob: self.key_id,
                loaded: kek.id,
            })
        }
    }
}

fn wrap_dek(
    kek: &Kek,
    nonce: &[u8; NONCE_LEN],
    dek: &[u8; KEY_LEN],
) -> Result<Vec<u8>, EnvelopeError> {
    kek.cipher()
        .encrypt(
            XNonce::from_slice(&nonce[..]),
            Payload {
                msg: &dek[..],
                aad: DEK_AAD,
            },
        )
        .map_err(|_| EnvelopeError::Malformed("the data key could not be wrapped"))
}

fn unwrap_dek(kek: &Kek, parts: &Parts<'_>) -> Result<Zeroizing<[u8; KEY_LEN]>, EnvelopeError> {
    let mut buffer = Zeroizing::new(Vec::with_capacity(WRAPPED_DEK_LEN));
    buffer.extend_from_slice(parts.wrapped_dek);
    kek.cipher()
        .decrypt_in_place(XNonce::from_slice(parts.dek_nonce), DEK_AAD, &mut *buffer)
        .map_err(|_| EnvelopeError::Authentication)?;
    let mut dek = Zeroizing::new([0u8; KEY_LEN]);
    if buffer.len() != KEY_LEN {
        return Err(EnvelopeError::Malformed(
            "the data key has the wrong length",
        ));
    }
    dek.copy_from_slice(&buffer);
    Ok(dek)
}

fn record_aad(context: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(RECORD_AAD_PREFIX.len() + context.len());
    aad.extend_from_slice(RECORD_AAD_PREFIX);
    aad.extend_from_slice(context.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const CTX_A: &str = "device:0f0e0d0c-0b0a-0908-0706-050403020100:amt_password";
    const CTX_B: &str = "device:00000000-0000-0000-0000-000000000001:amt_password";

    fn kek(byte: u8) -> Kek {
        Kek::from_bytes(&[byte; KEY_LEN])
    }

    #[test]
    fn round_trip_and_layout() {
        let k = kek(1);
        let blob = seal(&k, CTX_A, b"P@ssw0rd-for-amt").unwrap();
        assert_eq!(blob.len(), MIN_BLOB_LEN + 16);
        assert_eq!(blob[0], BLOB_VERSION);
        assert_eq!(&blob[1..9], k.id().as_bytes());
        assert_eq!(&open(&k, CTX_A, &blob).unwrap()[..], b"P@ssw0rd-for-amt");
        assert_eq!(blob_key_id(&blob).unwrap(), k.id());

        // Empty secrets work; two seals of the same secret differ (fresh DEK and nonces).
        let empty = seal(&k, CTX_A, b"").unwrap();
        assert_eq!(empty.len(), MIN_BLOB_LEN);
        assert!(open(&k, CTX_A, &empty).unwrap().is_empty());
        let again = seal(&k, CTX_A, b"P@ssw0rd-for-amt").unwrap();
        assert_ne!(blob, again);
        // The plaintext does not appear in the blob.
        assert!(!blob.windows(16).any(|w| w == b"P@ssw0rd-for-amt"));
    }

    #[test]
    fn key_id_is_the_first_8_bytes_of_sha256() {
        // SHA-256 of 32 zero bytes is 66687aadf862bd77...
        assert_eq!(kek(0).id().to_string(), "66687aadf862bd77");
        assert_ne!(kek(1).id(), kek(2).id());
    }

    #[test]
    fn wrong_context_and_swapped_records_fail_authentication() {
        let k = kek(1);
        let a = seal(&k, CTX_A, b"secret of record A").unwrap();
        let b = seal(&k, CTX_B, b"secret of record B").unwrap();
        assert_eq!(open(&k, CTX_B, &a), Err(EnvelopeError::Authentication));
        assert_eq!(open(&k, CTX_A, &b), Err(EnvelopeError::Authentication));
        assert_eq!(open(&k, "", &a), Err(EnvelopeError::Authentication));

        // Splice B's ciphertext (with its nonce) behind A's wrapped DEK, and the reverse.
        let spliced: Vec<u8> = a[..DATA_NONCE_AT]
            .iter()
            .chain(&b[DATA_NONCE_AT..])
            .copied()
            .collect();
        assert_eq!(
            open(&k, CTX_A, &spliced),
            Err(EnvelopeError::Authentication)
        );
        assert_eq!(
            open(&k, CTX_B, &spliced),
            Err(EnvelopeError::Authentication)
        );
    }

    #[test]
    fn another_master_key_is_named_clearly() {
        let blob = seal(&kek(1), CTX_A, b"x").unwrap();
        let err = open(&kek(2), CTX_A, &blob).unwrap_err();
        assert_eq!(
            err,
            EnvelopeError::WrongKey {
                blob: kek(1).id(),
                loaded: kek(2).id()
            }
        );
        let message = err.to_string();
        assert!(
            message.contains("sealed under another master key"),
            "{message}"
        );
        assert!(message.contains(&kek(1).id().to_string()), "{message}");

        // Same id but a forged header still fails: the key id is not a key.
        let mut forged = seal(&kek(2), CTX_A, b"x").unwrap();
        forged[1..9].copy_from_slice(kek(1).id().as_bytes());
        assert_eq!(
            open(&kek(1), CTX_A, &forged),
            Err(EnvelopeError::Authentication)
        );
    }

    #[test]
    fn every_truncation_fails_cleanly() {
        let k = kek(1);
        let blob = seal(&k, CTX_A, b"a secret worth keeping").unwrap();
        for len in 0..blob.len() {
            let err = open(&k, CTX_A, &blob[..len]).unwrap_err();
            if len < MIN_BLOB_LEN {
                assert!(matches!(err, EnvelopeError::Malformed(_)), "{len}: {err:?}");
            } else {
                assert_eq!(err, EnvelopeError::Authentication, "{len}");
            }
            // rewrap does not see the secret's ciphertext; a truncated one is carried over and
            // still fails in `open` under the new key.
            match rewrap(&k, &kek(2), &blob[..len]) {
                Err(e) => assert!(len < MIN_BLOB_LEN, "{len}: {e:?}"),
                Ok(moved) => assert_eq!(
                    open(&kek(2), CTX_A, &moved),
                    Err(EnvelopeError::Authentication)
                ),
            }
        }
        // An extra byte at the end is a different ciphertext, too.
        let mut longer = blob.clone();
        longer.push(0);
        assert_eq!(open(&k, CTX_A, &longer), Err(EnvelopeError::Authentication));
    }

    #[test]
    fn every_single_bit_flip_fails() {
        let k = kek(1);
        let blob = seal(&k, CTX_A, b"flip me").unwrap();
        for i in 0..blob.len() {
            for bit in 0..8 {
                let mut bad = blob.clone();
                bad[i] ^= 1 << bit;
                assert!(open(&k, CTX_A, &bad).is_err(), "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn unknown_versions_are_refused() {
        let mut blob = seal(&kek(1), CTX_A, b"x").unwrap();
        blob[0] = 2;
        assert_eq!(
            open(&kek(1), CTX_A, &blob),
            Err(EnvelopeError::UnsupportedVersion(2))
        );
        assert_eq!(
            open(&kek(1), CTX_A, &[]),
            Err(EnvelopeError::Malformed("empty"))
        );
    }

    #[test]
    fn rewrap_moves_a_blob_to_the_new_key() {
        let (old, new) = (kek(1), kek(2));
        let blob = seal(&old, CTX_A, b"rotate me").unwrap();
        let moved = rewrap(&old, &new, &blob).unwrap();
        assert_eq!(blob_key_id(&moved).unwrap(), new.id());
        assert_eq!(&open(&new, CTX_A, &moved).unwrap()[..], b"rotate me");
        assert!(matches!(
            open(&old, CTX_A, &moved),
            Err(EnvelopeError::WrongKey { .. })
        ));
        // The context binding survives the rotation.
        assert_eq!(
            open(&new, CTX_B, &moved),
            Err(EnvelopeError::Authentication)
        );
        // Idempotent: a second pass leaves it alone.
        assert_eq!(rewrap(&old, &new, &moved).unwrap(), moved);
        // A third key is neither.
        assert!(matches!(
            rewrap(&kek(3), &new, &blob),
            Err(EnvelopeError::WrongKey { .. })
        ));
    }

    #[test]
    fn kek_text_form_and_debug() {
        let k = Kek::generate().unwrap();
        let text = k.to_base64();
        assert!(text.ends_with('\n'));
        assert_eq!(text.len(), 45);
        let back = Kek::from_base64(&text).unwrap();
        assert_eq!(back.id(), k.id());
        let blob = seal(&k, CTX_A, b"x").unwrap();
        assert_eq!(&open(&back, CTX_A, &blob).unwrap()[..], b"x");

        for (bad, reason) in [
            ("", "shorter than 32 bytes"),
            ("AAAA\n", "shorter than 32 bytes"),
            ("not base64!", "not standard base64"),
            (&*STANDARD.encode([0u8; 33]), "longer than 32 bytes"),
            (&*STANDARD.encode([0u8; 64]), "longer than 32 bytes"),
        ] {
            assert_eq!(
                Kek::from_base64(bad).unwrap_err(),
                EnvelopeError::InvalidKey(reason),
                "{bad:?}"
            );
        }

        let debug = format!("{k:?}");
        assert_eq!(debug, format!("Kek {{ id: KeyId({}) }}", k.id()));
        assert!(!debug.contains(text.trim_end()));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Random bytes never panic and never open.
        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300), ctx in ".{0,40}") {
            let k = kek(1);
            prop_assert!(open(&k, &ctx, &bytes).is_err());
            let _ = rewrap(&k, &kek(2), &bytes);
            let _ = blob_key_id(&bytes);
        }

        /// Garbage behind a valid header reaches the AEAD and fails authentication there.
        #[test]
        fn garbage_behind_a_valid_header_fails_authentication(
            tail in prop::collection::vec(any::<u8>(), 0..300),
        ) {
            let k = kek(1);
            let mut blob = vec![BLOB_VERSION];
            blob.extend_from_slice(k.id().as_bytes());
            blob.extend_from_slice(&tail);
            let result = open(&k, CTX_A, &blob);
            if blob.len() < MIN_BLOB_LEN {
                prop_assert!(matches!(result, Err(EnvelopeError::Malformed(_))));
            } else {
                prop_assert_eq!(result, Err(EnvelopeError::Authentication));
            }
        }
    }
}
