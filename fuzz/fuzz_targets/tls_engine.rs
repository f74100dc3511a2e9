//! The TLS engine (rustls's unbuffered API and the buffers Rampart keeps around it) on hostile
//! bytes: never panics, whether the bytes are cut into many reads or few, and whether the
//! writing side (application data, close_notify) runs between reads. rustls keeps offsets into
//! the bytes it was given; the engine must always give them back, even after an error.
//!
//! Input: up to eight control bytes (read sizes, and what the writing side does between
//! reads), then the bytes from the "client". The seed is a real TLS 1.3 ClientHello.

#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use rustls::ServerConfig;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// One self-signed P-384 server config for the whole run: key generation is slow.
fn config() -> Arc<ServerConfig> {
    static CONFIG: OnceLock<Arc<ServerConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)
                .expect("key generation");
            let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
                .expect("params")
                .self_signed(&key)
                .expect("self-signed certificate");
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_no_client_auth()
                .with_single_cert(
                    vec![cert.der().clone()],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
                )
                .expect("server config");
            Arc::new(config)
        })
        .clone()
}

fuzz_target!(|input: &[u8]| {
    rampart_tls::fuzz_engine(config(), input);
});
