//! ECDSA P-384 private keys.

use std::fmt;

use rcgen::{KeyPair, PKCS_ECDSA_P384_SHA384, PublicKeyData as _};
use zeroize::Zeroizing;

use crate::error::CaError;
use crate::pem;

/// PEM label of an unencrypted PKCS#8 private key (RFC 7468 §10).
pub(crate) const PRIVATE_KEY_PEM_LABEL: &str = "PRIVATE KEY";

/// An ECDSA P-384 private key. Its PKCS#8 bytes are zeroized on drop; `Debug` is redacted and
/// there is no `Display`.
pub struct PrivateKey {
    pair: Zeroizing<KeyPair>,
}

impl PrivateKey {
    /// Generates a fresh P-384 key with the operating system's CSPRNG.
    pub fn generate() -> Result<PrivateKey, CaError> {
        KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384)
            .map(PrivateKey::from_pair)
            .map_err(CaError::rcgen("generating a P-384 key"))
    }

    /// Parses an unencrypted PKCS#8 PEM ("PRIVATE KEY") holding a P-384 key.
    pub fn from_pkcs8_pem(pem_text: &str) -> Result<PrivateKey, CaError> {
        let der = pem::decode_one("private key", PRIVATE_KEY_PEM_LABEL, pem_text)?;
        PrivateKey::from_pkcs8_der(&der)
    }

    /// Parses unencrypted PKCS#8 DER holding a P-384 key.
    pub(crate) fn from_pkcs8_der(der: &[u8]) -> Result<PrivateKey, CaError> {
        let pair = KeyPair::try_from(der).map_err(|_| CaError::UnsupportedKey)?;
        let key = PrivateKey::from_pair(pair);
        if key.pair.algorithm() != &PKCS_ECDSA_P384_SHA384 {
            return Err(CaError::UnsupportedKey);
        }
        Ok(key)
    }

    fn from_pair(pair: KeyPair) -> PrivateKey {
        PrivateKey {
            pair: Zeroizing::new(pair),
        }
    }

    /// The key as unencrypted PKCS#8 PEM ("PRIVATE KEY"). Protect it by file mode.
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        pem::encode(PRIVATE_KEY_PEM_LABEL, self.pair.serialized_der())
    }

    /// The DER SubjectPublicKeyInfo of the public half (public, not secret).
    pub fn public_key_spki_der(&self) -> Vec<u8> {
        self.pair.subject_public_key_info()
    }

    /// The public key in SPKI PEM ("PUBLIC KEY").
    pub fn public_key_pem(&self) -> String {
        self.pair.public_key_pem()
    }

    /// The PKCS#8 DER bytes, for encryption.
    pub(crate) fn pkcs8_der(&self) -> &[u8] {
        self.pair.serialized_der()
    }

    /// The rcgen key pair, for signing.
    pub(crate) fn pair(&self) -> &KeyPair {
        &self.pair
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(P-384, redacted)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_keeps_the_public_key() {
        let key = PrivateKey::generate().unwrap();
        let pem_text = key.to_pkcs8_pem();
        assert!(pem_text.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let back = PrivateKey::from_pkcs8_pem(&pem_text).unwrap();
        assert_eq!(back.public_key_spki_der(), key.public_key_spki_der());
        assert_eq!(format!("{back:?}"), "PrivateKey(P-384, redacted)");
    }

    #[test]
    fn other_curves_are_rejected() {
        let p256 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let pem_text = pem::encode(PRIVATE_KEY_PEM_LABEL, p256.serialized_der());
        assert!(matches!(
            PrivateKey::from_pkcs8_pem(&pem_text),
            Err(CaError::UnsupportedKey)
        ));
    }
}
