//! TLS for the Rampart data plane.
//!
//! - [`server_config`] builds the one rustls policy every public port uses: TLS 1.3 and 1.2
//!   only, ECDHE key exchange only (X25519, P-384, P-256), AEAD suites only, the `ring`
//!   provider (the single crypto provider of the workspace), no client authentication.
//!   Each core builds its own config, so session caches are core-local.
//! - [`ReloadableCert`] serves the certificate of one listener and swaps it atomically on
//!   [`ReloadableCert::reload`] (SIGHUP). Handshakes in progress and live connections keep the
//!   certificate they started with; a reload that fails validation keeps the old one.
//! - [`stream::TlsStream`] drives a rustls server connection over a compio TCP stream: the
//!   handshake under a [`rampart_deadline::StageClock`] counted on raw socket bytes, reads under
//!   the caller's stage clock, writes under a write-progress deadline.
//!
//! What this crate deliberately does not do: choose stages, parse protocols, or read config
//! files (it takes paths and typed limits).

#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, ServerSessionMemoryCache};
use rustls::sign::CertifiedKey;
use rustls::{CipherSuite, SupportedCipherSuite};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

pub mod duplex;
mod engine;
pub mod stream;

/// Re-exported so the data plane reaches rustls only through this crate (house style rule 8).
pub use rustls::ServerConfig;
pub use stream::{ConnError, IoLimits, ReadSize, TlsParts, TlsStream};

/// Why certificates could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("{path}: {source}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: rustls_pki_types::pem::Error,
    },
    /// The certificate file held no certificate.
    #[error("{0}: no certificate in file")]
    NoCertificate(PathBuf),
    /// The key is of a type or curve the provider does not support.
    #[error("{path}: unusable private key: {source}")]
    Key {
        /// The file.
        path: PathBuf,
        /// What rustls said.
        source: rustls::Error,
    },
    /// The key does not belong to the certificate.
    #[error("{cert}: the private key does not match the certificate: {source}")]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// What rustls said.
        source: rustls::Error,
    },
    /// rustls rejected the configuration.
    #[error("TLS configuration: {0}")]
    Config(rustls::Error),
}

/// The crypto provider of the workspace: ring, restricted to ECDHE key exchange and AEAD suites.
pub fn provider() -> Arc<CryptoProvider> {
    let base = rustls::crypto::ring::default_provider();
    let cipher_suites: Vec<SupportedCipherSuite> = base
        .cipher_suites
        .iter()
        .copied()
        .filter(|s| is_allowed_suite(s.suite()))
        .collect();
    Arc::new(CryptoProvider {
        cipher_suites,
        kx_groups: vec![
            rustls::crypto::ring::kx_group::X25519,
            rustls::crypto::ring::kx_group::SECP384R1,
            rustls::crypto::ring::kx_group::SECP256R1,
        ],
        ..base
    })
}

/// TLS 1.3 suites (their key exchange is always (EC)DHE) and TLS 1.2 ECDHE AEAD suites.
fn is_allowed_suite(suite: CipherSuite) -> bool {
    matches!(
        suite,
        CipherSuite::TLS13_AES_256_GCM_SHA384
            | CipherSuite::TLS13_AES_128_GCM_SHA256
            | CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
            | CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
            | CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            | CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
            | CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
            | CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
            | CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
    )
}

/// Builds a server config for one listener on one core.
///
/// `alpn` is the list of application protocols offered (empty: no ALPN).
pub fn server_config(
    cert: Arc<ReloadableCert>,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // Core-local cache: resumption works on the core that saw the first handshake.
    config.session_storage = ServerSessionMemoryCache::new(4096);
    config.ignore_client_order = true;
    Ok(Arc::new(config))
}

// === impl ReloadableCert ===

/// Where a listener's certificate chain and key live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPaths {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM PKCS#8 (or SEC1) private key.
    pub key: PathBuf,
}

/// A listener's certificate, swapped atomically on reload; reads take no lock.
pub struct ReloadableCert {
    paths: CertPaths,
    current: ArcSwap<CertifiedKey>,
}

impl ReloadableCert {
    /// Loads and validates the certificate and key.
    pub fn load(paths: CertPaths) -> Result<Self, TlsError> {
        let key = load_certified_key(&paths)?;
        Ok(Self {
            paths,
            current: ArcSwap::from_pointee(key),
        })
    }

    /// Re-reads the files; on success new handshakes use the new certificate. On failure the
    /// old certificate stays in service and the error is returned for logging.
    pub fn reload(&self) -> Result<(), TlsError> {
        let key = load_certified_key(&self.paths)?;
        self.current.store(Arc::new(key));
        Ok(())
    }

    /// The certificate now in service.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }

    /// The files it is loaded from.
    pub fn paths(&self) -> &CertPaths {
        &self.paths
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

impl fmt::Debug for ReloadableCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadableCert")
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

/// Reads a PEM chain and key through rustls-pki-types and checks that they belong together.
pub fn load_certified_key(paths: &CertPaths) -> Result<CertifiedKey, TlsError> {
    let pem_err = |path: &Path| {
        let path = path.to_owned();
        move |source| TlsError::Pem { path, source }
    };
    let chain = CertificateDer::pem_file_iter(&paths.cert)
        .map_err(pem_err(&paths.cert))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_err(&paths.cert))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(paths.cert.clone()));
    }
    let key = PrivateKeyDer::from_pem_file(&paths.key).map_err(pem_err(&paths.key))?;
    let signing_key = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|source| TlsError::Key {
            path: paths.key.clone(),
            source,
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified
        .keys_match()
        .map_err(|source| TlsError::Mismatch {
            cert: paths.cert.clone(),
            source,
        })?;
    Ok(certified)
}

/// Drives the TLS engine (rustls's unbuffered API and the buffers around it) with arbitrary
/// bytes, for the `tls_engine` fuzz target: the reads are cut where `input`'s control bytes
/// say, and the writing side (application data, close_notify) runs between reads, as the
/// duplex writer does. Nothing here may panic, whatever the bytes.
#[doc(hidden)]
pub fn fuzz_engine(config: Arc<ServerConfig>, input: &[u8]) {
    let (ctl, data) = input.split_at(input.len().min(8));
    let Ok(mut engine) = engine::Engine::new(config) else {
        return;
    };
    let mut data = data.to_vec();
    let mut rest = &mut data[..];
    let mut plain = Vec::new();
    for &c in ctl.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let n = (usize::from(c) * 37 + 1).min(rest.len());
        let (read, tail) = rest.split_at_mut(n);
        rest = tail;
        if engine.feed(read, &mut plain).is_err() {
            engine.send_close_notify();
            break;
        }
        match c % 4 {
            0 => drop(engine.encrypt(b"reply")),
            1 => engine.send_close_notify(),
            _ => {}
        }
        drop(engine.take_out());
        if c % 3 == 0 {
            engine.release_buffers();
        }
    }
}
