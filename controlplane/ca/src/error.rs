//! Error types. None of them carries secret material: messages name what failed, never a key,
//! password or decrypted byte.

use crate::service::Service;

/// A host or domain name that cannot be used in a certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field} {value:?}: {reason}")]
pub struct NameError {
    /// Which input was rejected: `"host"`, `"domain"` or `"name"` (the joined CN).
    pub field: &'static str,
    /// The rejected input, as given (names are public, not secret).
    pub value: String,
    /// Why it was rejected.
    pub reason: &'static str,
}

/// A string that is not one of the service names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown service {0:?}: expected one of https, mqtt, cira, controlplane")]
pub struct ParseServiceError(pub String);

/// Everything that can go wrong while generating, encrypting or checking PKI material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// A host or domain name was rejected.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// The operating system's random number generator failed.
    #[error("the operating system random number generator failed: {0}")]
    Random(getrandom::Error),
    /// rcgen failed to generate a key, or to build or sign a certificate or CSR.
    #[error("{context}: {source}")]
    Rcgen {
        /// What we were doing.
        context: &'static str,
        /// The underlying rcgen error.
        #[source]
        source: rcgen::Error,
    },
    /// A caller-chosen CERTPASS is too short to protect the CA key.
    #[error("CERTPASS must be at least {min} characters long")]
    WeakCertPass {
        /// The minimum length in characters.
        min: usize,
    },
    /// Encrypting a private key as PKCS#8 failed.
    #[error("encrypting the private key failed: {0}")]
    KeyEncryption(pkcs8::Error),
    /// An encrypted key could not be decrypted: wrong password, or a corrupt or unsupported
    /// file. The two cases are deliberately not told apart.
    #[error("the encrypted private key could not be decrypted (wrong password or corrupt key)")]
    KeyDecryption,
    /// A CA key does not belong to the CA certificate it was loaded with.
    #[error("the CA key does not belong to the CA certificate")]
    KeyMismatch,
    /// A private key is not an unencrypted PKCS#8 ECDSA P-384 key.
    #[error("the private key is not a PKCS#8 ECDSA P-384 key")]
    UnsupportedKey,
    /// Input was not the PEM we expected.
    #[error("{what} is not valid PEM: {reason}")]
    Pem {
        /// What we were parsing.
        what: &'static str,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// A certificate or CSR could not be parsed as DER X.509.
    #[error("{what} could not be parsed as X.509")]
    X509 {
        /// What we were parsing.
        what: &'static str,
    },
    /// A CSR's self-signature does not verify.
    #[error("the certificate signing request for {service} has an invalid signature")]
    CsrSignature {
        /// The service the CSR belongs to.
        service: Service,
    },
    /// A CSR does not carry the public key of the pending private key next to it.
    #[error("the certificate signing request for {service} does not match its private key")]
    CsrKeyMismatch {
        /// The service the CSR belongs to.
        service: Service,
    },
    /// A CSR has no usable common name.
    #[error("the certificate signing request for {service} has no common name")]
    CsrWithoutCommonName {
        /// The service the CSR belongs to.
        service: Service,
    },
    /// The external CA bundle holds no certificate.
    #[error("the CA file contains no certificate")]
    EmptyCaBundle,
    /// A certificate in the external CA bundle is not a CA certificate.
    #[error(
        "CA certificate #{index} (subject {subject}) is not a CA (basicConstraints cA is not set)"
    )]
    CaCertNotCa {
        /// Position in the bundle, starting at 1.
        index: usize,
        /// Its subject, for the operator.
        subject: String,
    },
    /// A certificate in the external CA bundle is outside its validity period.
    #[error(
        "CA certificate #{index} (subject {subject}) is not valid now ({not_before} .. {not_after})"
    )]
    CaCertNotValidNow {
        /// Position in the bundle, starting at 1.
        index: usize,
        /// Its subject, for the operator.
        subject: String,
        /// notBefore, e.g. `Jan  1 00:00:00 2030 +00:00`.
        not_before: String,
        /// notAfter, e.g. `Jan  1 00:00:00 2030 +00:00`.
        not_after: String,
    },
    /// A certificate in the external CA bundle claims an issuer in the bundle but its signature
    /// does not verify with that issuer's key.
    #[error(
        "CA certificate #{index} (subject {subject}) has a signature its issuer in the bundle does not verify"
    )]
    CaChainSignature {
        /// Position in the bundle, starting at 1.
        index: usize,
        /// Its subject, for the operator.
        subject: String,
    },
    /// A certificate file holds no certificate.
    #[error("the file contains no certificate")]
    NoCertificate,
    /// A certificate file holds extra certificates that are not in the CA bundle.
    #[error(
        "the file contains {count} certificates; pass the service certificate alone (intermediates belong in the CA file)"
    )]
    UnexpectedChain {
        /// How many certificates the file holds.
        count: usize,
    },
    /// The certificate's public key is not the key of any pending service.
    #[error(
        "the certificate (subject {subject}) does not match any pending service key; was it issued for a CSR from this secrets directory?"
    )]
    UnknownKey {
        /// Its subject, for the operator.
        subject: String,
    },
    /// No certificate in the CA bundle verifies the certificate's signature.
    #[error("the {service} certificate is not signed by the given CA (issuer {issuer})")]
    BadSignature {
        /// The service the key belongs to.
        service: Service,
        /// The issuer named in the certificate.
        issuer: String,
    },
    /// The certificate's notBefore lies in the future.
    #[error("the {service} certificate is not valid yet (notBefore {not_before})")]
    NotYetValid {
        /// The service the key belongs to.
        service: Service,
        /// notBefore, e.g. `Jan  1 00:00:00 2030 +00:00`.
        not_before: String,
    },
    /// The certificate's notAfter lies in the past.
    #[error("the {service} certificate has expired (notAfter {not_after})")]
    Expired {
        /// The service the key belongs to.
        service: Service,
        /// notAfter, e.g. `Jan  1 00:00:00 2030 +00:00`.
        not_after: String,
    },
    /// The certificate is a CA certificate; service certificates must not be.
    #[error("the {service} certificate is a CA certificate; a service certificate must not be")]
    LeafIsCa {
        /// The service the key belongs to.
        service: Service,
    },
    /// The certificate lacks the DNS subject alternative name its CSR asked for.
    #[error("the {service} certificate has no DNS subject alternative name {expected:?}")]
    MissingDnsSan {
        /// The service the key belongs to.
        service: Service,
        /// The DNS name the CSR requested.
        expected: String,
    },
    /// The certificate restricts its extended key usage and serverAuth is not among them.
    #[error(
        "the {service} certificate's extended key usage does not allow TLS server authentication"
    )]
    MissingServerAuth {
        /// The service the key belongs to.
        service: Service,
    },
}

impl CaError {
    pub(crate) fn rcgen(context: &'static str) -> impl FnOnce(rcgen::Error) -> CaError {
        move |source| CaError::Rcgen { context, source }
    }
}
