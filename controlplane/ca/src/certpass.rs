//! CERTPASS and the encrypted CA key.
//!
//! The guide generates CERTPASS with `openssl rand -base64 33` and never shows it to anyone, so
//! the CA can sign the first set of service certificates and then never again. The CA key is
//! stored as PKCS#8 `EncryptedPrivateKeyInfo` with PBES2 = PBKDF2-HMAC-SHA256 (600 000
//! iterations, OWASP 2023) + AES-256-CBC, random 16-byte salt and IV (RFC 8018 §6.2). pkcs8's
//! default scheme (scrypt, 128 MiB) is not used: OpenSSL 3 refuses it ("memory limit exceeded").

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use pkcs8::der::pem::LineEnding;
use pkcs8::{EncryptedPrivateKeyInfo, PrivateKeyInfo, pkcs5};
use zeroize::Zeroizing;

use crate::error::CaError;
use crate::key::PrivateKey;
use crate::{pem, random};

/// Random bytes behind a generated CERTPASS, as in `openssl rand -base64 33`.
pub const CERTPASS_RANDOM_BYTES: usize = 33;
/// Shortest CERTPASS accepted from a caller, in characters.
pub const MIN_CUSTOM_CERTPASS_LEN: usize = 16;
/// PBKDF2-HMAC-SHA256 iterations for the encrypted CA key.
pub const PBKDF2_ITERATIONS: u32 = 600_000;
/// PEM label of the encrypted CA key (RFC 7468 §11).
pub const ENCRYPTED_KEY_PEM_LABEL: &str = "ENCRYPTED PRIVATE KEY";

const SALT_LEN: usize = 16;
const IV_LEN: usize = 16;

/// The password that encrypts the CA key. Zeroized on drop; `Debug` is redacted and there is no
/// `Display` and no accessor, so a generated CERTPASS cannot leave this crate.
pub struct CertPass(Zeroizing<String>);

impl CertPass {
    /// A fresh CERTPASS: 33 random bytes in standard base64 (44 characters).
    pub fn generate() -> Result<CertPass, CaError> {
        let mut bytes = Zeroizing::new([0u8; CERTPASS_RANDOM_BYTES]);
        random::fill(&mut bytes[..])?;
        let mut text = Zeroizing::new(String::with_capacity(CERTPASS_RANDOM_BYTES / 3 * 4));
        STANDARD.encode_string(&bytes[..], &mut text);
        Ok(CertPass(text))
    }

    /// A caller-chosen CERTPASS (the guide's custom `CERTPASS`, for operators who want to sign
    /// more certificates with the same CA later). Must be at least
    /// [`MIN_CUSTOM_CERTPASS_LEN`] characters.
    pub fn from_secret(secret: Zeroizing<String>) -> Result<CertPass, CaError> {
        if secret.chars().count() < MIN_CUSTOM_CERTPASS_LEN {
            return Err(CaError::WeakCertPass {
                min: MIN_CUSTOM_CERTPASS_LEN,
            });
        }
        Ok(CertPass(secret))
    }

    fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Debug for CertPass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CertPass(redacted)")
    }
}

/// Encrypts `key` as PEM "ENCRYPTED PRIVATE KEY" (PBES2, PBKDF2-SHA256 600 000, AES-256-CBC)
/// that `openssl pkey -passin` reads. The result is ciphertext and may be stored as is.
pub fn encrypt_private_key(key: &PrivateKey, pass: &CertPass) -> Result<String, CaError> {
    let mut salt = [0u8; SALT_LEN];
    let mut iv = [0u8; IV_LEN];
    random::fill(&mut salt)?;
    random::fill(&mut iv)?;
    let params = pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(PBKDF2_ITERATIONS, &salt, &iv)
        .map_err(|e| CaError::KeyEncryption(e.into()))?;
    let info = PrivateKeyInfo::try_from(key.pkcs8_der()).map_err(CaError::KeyEncryption)?;
    let encrypted = info
        .encrypt_with_params(params, pass.as_bytes())
        .map_err(CaError::KeyEncryption)?;
    let pem_text = encrypted
        .to_pem(ENCRYPTED_KEY_PEM_LABEL, LineEnding::LF)
        .map_err(|e| CaError::KeyEncryption(e.into()))?;
    Ok(pem_text.as_str().to_owned())
}

/// Decrypts a PEM "ENCRYPTED PRIVATE KEY" written by [`encrypt_private_key`] (or by
/// `openssl pkcs8 -topk8 -v2 aes-256-cbc`). A wrong password is an error.
pub fn decrypt_private_key(pem_text: &str, pass: &CertPass) -> Result<PrivateKey, CaError> {
    let der = pem::decode_one("encrypted private key", ENCRYPTED_KEY_PEM_LABEL, pem_text)?;
    let info = EncryptedPrivateKeyInfo::try_from(&der[..]).map_err(|_| CaError::KeyDecryption)?;
    let plain = info
        .decrypt(pass.as_bytes())
        .map_err(|_| CaError::KeyDecryption)?;
    PrivateKey::from_pkcs8_der(plain.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(s: &str) -> CertPass {
        CertPass::from_secret(Zeroizing::new(s.to_owned())).unwrap()
    }

    #[test]
    fn generated_certpass_looks_like_openssl_rand_base64_33() {
        let a = CertPass::generate().unwrap();
        let b = CertPass::generate().unwrap();
        assert_eq!(a.len(), 44);
        assert!(STANDARD.decode(a.as_bytes()).unwrap().len() == CERTPASS_RANDOM_BYTES);
        assert_ne!(a.as_bytes(), b.as_bytes());
        assert_eq!(format!("{a:?}"), "CertPass(redacted)");
    }

    #[test]
    fn short_custom_certpass_is_rejected() {
        let err = CertPass::from_secret(Zeroizing::new("too-short".to_owned())).unwrap_err();
        assert!(matches!(err, CaError::WeakCertPass { min: 16 }));
    }

    #[test]
    fn decrypt_round_trip_and_wrong_password() {
        let key = PrivateKey::generate().unwrap();
        let right = pass("correct horse battery staple");
        let encrypted = encrypt_private_key(&key, &right).unwrap();
        assert!(encrypted.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
        assert!(!encrypted.contains("BEGIN PRIVATE KEY"));

        let back = decrypt_private_key(&encrypted, &right).unwrap();
        assert_eq!(back.public_key_spki_der(), key.public_key_spki_der());

        let wrong = pass("incorrect horse battery staple");
        assert!(matches!(
            decrypt_private_key(&encrypted, &wrong),
            Err(CaError::KeyDecryption)
        ));
    }

    #[test]
    fn encryption_uses_pbkdf2_sha256_and_aes_256_cbc_with_fresh_salt() {
        let key = PrivateKey::generate().unwrap();
        let p = pass("0123456789abcdef");
        let first = encrypt_private_key(&key, &p).unwrap();
        let second = encrypt_private_key(&key, &p).unwrap();
        assert_ne!(first, second, "salt and IV must be random");

        let der = pem::decode_one("test", ENCRYPTED_KEY_PEM_LABEL, &first).unwrap();
        let info = EncryptedPrivateKeyInfo::try_from(&der[..]).unwrap();
        let pkcs5::EncryptionScheme::Pbes2(params) = info.encryption_algorithm else {
            panic!("not PBES2");
        };
        let pbkdf2 = params.kdf.pbkdf2().expect("PBKDF2, not scrypt");
        assert_eq!(pbkdf2.iteration_count, PBKDF2_ITERATIONS);
        assert_eq!(pbkdf2.prf, pkcs5::pbes2::Pbkdf2Prf::HmacWithSha256);
        assert_eq!(pbkdf2.salt.len(), SALT_LEN);
        assert!(matches!(
            params.encryption,
            pkcs5::pbes2::EncryptionScheme::Aes256Cbc { .. }
        ));
    }
}
