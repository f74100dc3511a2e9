//! The CPU cost of one full TLS handshake against our server policy, in memory.
//!
//! The server side is exactly what a listener runs: `rampart_tls::server_config` over a
//! `ReloadableCert` loaded from PEM files, with an rcgen P-384 ECDSA leaf signed by a P-384 CA.
//! The client is plain rustls with the ring provider, trusting that CA, with resumption
//! disabled so every iteration is a full handshake. Records move between the two through `Vec`
//! buffers: no sockets, no syscalls, so the figures are pure handshake CPU.
//!
//! - `pair/*`: client and server CPU together (one iteration = one handshake).
//! - `server_only/tls13`: only the time spent inside the server connection, i.e. the cost a
//!   data-plane core pays per handshake (ECDHE + P-384 signature + key schedule).

#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rampart_tls::{CertPaths, ReloadableCert, ServerConfig, server_config};
use rustls::client::Resumption;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ConnectionCommon, RootCertStore, ServerConnection};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Fixture {
    server: Arc<ServerConfig>,
    tls13: Arc<ClientConfig>,
    tls12: Arc<ClientConfig>,
    name: ServerName<'static>,
    // Keeps the PEM files alive for the whole run (the cert is loaded once, but a reload
    // would re-read them).
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let alg = &rcgen::PKCS_ECDSA_P384_SHA384;
        let ca_key = rcgen::KeyPair::generate_for(alg).expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "rampart bench CA");
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");

        let leaf_key = rcgen::KeyPair::generate_for(alg).expect("leaf key");
        let leaf_params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("leaf params");
        let issuer = rcgen::Issuer::from_ca_cert_der(ca.der(), &ca_key).expect("issuer");
        let leaf = leaf_params
            .signed_by(&leaf_key, &issuer)
            .expect("leaf certificate");

        let dir = tempfile::tempdir().expect("tempdir");
        let paths = CertPaths {
            cert: dir.path().join("leaf.pem"),
            key: dir.path().join("leaf.key"),
        };
        // Chain: leaf then CA, as a deployment would serve it.
        std::fs::write(&paths.cert, format!("{}{}", leaf.pem(), ca.pem())).expect("write cert");
        std::fs::write(&paths.key, leaf_key.serialize_pem()).expect("write key");
        let cert = Arc::new(ReloadableCert::load(paths).expect("load certificate"));
        let server = server_config(cert, &[]).expect("server config");

        let mut roots = RootCertStore::empty();
        roots.add(ca.der().clone()).expect("trust CA");
        let client = |version: &'static rustls::SupportedProtocolVersion| {
            let mut config = ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_protocol_versions(&[version])
            .expect("client versions")
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
            config.resumption = Resumption::disabled();
            Arc::new(config)
        };
        Self {
            server,
            tls13: client(&rustls::version::TLS13),
            tls12: client(&rustls::version::TLS12),
            name: ServerName::try_from("localhost").expect("server name"),
            _dir: dir,
        }
    }
}

/// Moves all pending records of `from` into `to` and lets `to` process them. Returns the time
/// spent inside each side (`from` writing, `to` reading and processing).
fn send<A, B>(
    from: &mut ConnectionCommon<A>,
    to: &mut ConnectionCommon<B>,
    buf: &mut Vec<u8>,
) -> (Duration, Duration) {
    buf.clear();
    let t0 = Instant::now();
    while from.wants_write() {
        from.write_tls(buf).expect("write to Vec");
    }
    let t1 = Instant::now();
    let mut rd = &buf[..];
    while !rd.is_empty() {
        to.read_tls(&mut rd).expect("read from slice");
        to.process_new_packets().expect("handshake step");
    }
    (t1 - t0, t1.elapsed())
}

/// One full handshake; returns the time spent inside the server connection.
fn handshake(fx: &Fixture, client: &Arc<ClientConfig>, buf: &mut Vec<u8>) -> Duration {
    let t0 = Instant::now();
    let mut server = ServerConnection::new(fx.server.clone()).expect("server connection");
    let mut in_server = t0.elapsed();
    let mut client = ClientConnection::new(client.clone(), fx.name.clone()).expect("client");
    while client.is_handshaking() || server.is_handshaking() {
        let (_, s) = send(&mut client, &mut server, buf);
        in_server += s;
        let (s, _) = send(&mut server, &mut client, buf);
        in_server += s;
    }
    // Drain whatever is still queued (TLS 1.3 session tickets the server sends last).
    let (s, _) = send(&mut server, &mut client, buf);
    in_server += s;
    debug_assert!(!server.is_handshaking() && !client.is_handshaking());
    in_server
}

fn bench(c: &mut Criterion) {
    let fx = Fixture::new();
    let mut buf = Vec::with_capacity(16 * 1024);
    // Check once that the handshake really completes with the expected versions.
    for (config, version) in [
        (&fx.tls13, rustls::ProtocolVersion::TLSv1_3),
        (&fx.tls12, rustls::ProtocolVersion::TLSv1_2),
    ] {
        let mut server = ServerConnection::new(fx.server.clone()).expect("server");
        let mut client = ClientConnection::new(config.clone(), fx.name.clone()).expect("client");
        for _ in 0..4 {
            send(&mut client, &mut server, &mut buf);
            send(&mut server, &mut client, &mut buf);
        }
        assert!(!server.is_handshaking() && !client.is_handshaking());
        assert_eq!(server.protocol_version(), Some(version));
    }

    let mut group = c.benchmark_group("tls_handshake");
    group.throughput(Throughput::Elements(1));
    group.bench_function("pair/tls13", |b| {
        b.iter(|| handshake(&fx, &fx.tls13, &mut buf))
    });
    group.bench_function("pair/tls12", |b| {
        b.iter(|| handshake(&fx, &fx.tls12, &mut buf))
    });
    group.bench_function("server_only/tls13", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| handshake(&fx, &fx.tls13, &mut buf))
                .sum()
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench
}
criterion_main!(benches);
