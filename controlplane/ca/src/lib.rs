//! Rampart's certificate authority: the in-memory PKI behind `rampart secrets init`.
//!
//! What it does, following the SceneScape hardening guide, chapter 3:
//!
//! - generates a self-signed root CA (ECDSA P-384, ecdsa-with-SHA384, 1825 days) and encrypts its
//!   key as PKCS#8 PBES2 (PBKDF2-SHA256, 600 000 iterations, AES-256-CBC) under a CERTPASS that
//!   is 33 random bytes in standard base64, exactly like `openssl rand -base64 33`;
//! - issues one certificate per [`Service`] (fresh P-384 key, 360 days, DNS SAN equal to the CN
//!   plus optional IP SANs, random 128-bit serial, authority key identifier);
//! - alternatively generates per-service keys and CSRs for an organisation's own CA, and checks
//!   the certificates that CA sends back ([`ExternalCa`]) before they are installed.
//!
//! What it deliberately does not do:
//!
//! - no file or network I/O and no logging: callers (`rampart-secrets`) own paths, modes and
//!   atomic writes; this crate takes and returns PEM strings;
//! - no revocation, CRLs, OCSP or renewal scheduling;
//! - no RSA keys (ring cannot generate them); an RSA-3072 listener for old AMT clients would be a
//!   separate, explicit addition;
//! - it never stores or returns a generated CERTPASS: [`generate_self_signed`] drops (zeroizes)
//!   it once the service certificates are signed, so that CA can never sign again.
//!
//! Secrets held in memory (private keys, CERTPASS, private-key PEM) are wrapped in
//! [`zeroize::Zeroizing`] and none of them implements `Display`; their `Debug` is redacted.

#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

mod authority;
mod certpass;
mod csr;
mod error;
mod external;
mod key;
mod names;
mod pem;
mod random;
mod service;

pub use authority::{
    CA_VALIDITY_DAYS, CertificateAuthority, IssuedCert, SERVICE_VALIDITY_DAYS, SelfSignedPki,
    generate_self_signed, generate_self_signed_with_certpass,
};
pub use certpass::{
    CERTPASS_RANDOM_BYTES, CertPass, ENCRYPTED_KEY_PEM_LABEL, MIN_CUSTOM_CERTPASS_LEN,
    PBKDF2_ITERATIONS, decrypt_private_key, encrypt_private_key,
};
pub use csr::{PendingService, ServiceCsr, generate_csrs};
pub use error::{CaError, NameError, ParseServiceError};
pub use external::{ExternalCa, VerifiedCert};
pub use key::PrivateKey;
pub use names::Names;
pub use service::Service;
