//! `rampart-loadgen handshake` against an in-process rustls server on loopback, with rcgen
//! P-384 fixtures; plus the refusals (non-loopback target, missing CA, bad options).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection};

const BIN: &str = env!("CARGO_BIN_EXE_rampart-loadgen");

/// A CA and a `localhost` leaf signed by it, both P-384.
fn pki() -> (rcgen::Certificate, rcgen::Certificate, rcgen::KeyPair) {
    let alg = &rcgen::PKCS_ECDSA_P384_SHA384;
    let ca_key = rcgen::KeyPair::generate_for(alg).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "loadgen test CA");
    let ca = params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate_for(alg).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_der(ca.der(), &ca_key).unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca, leaf, key)
}

/// A tiny blocking TLS server: a thread per connection, handshake, then wait for the client's
/// close and close too. Counts completed handshakes.
struct TestServer {
    addr: SocketAddr,
    ca_file: PathBuf,
    handshakes: Arc<AtomicU64>,
    dir: tempfile::TempDir,
}

impl TestServer {
    fn start() -> Self {
        let (ca, leaf, key) = pki();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let config = Arc::new(
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![leaf.der().clone(), ca.der().clone()],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
                )
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handshakes = Arc::new(AtomicU64::new(0));
        let counter = handshakes.clone();
        // Detached: lives until the test process ends.
        thread::spawn(move || {
            for tcp in listener.incoming() {
                let Ok(tcp) = tcp else { continue };
                let config = config.clone();
                let counter = counter.clone();
                thread::spawn(move || serve(tcp, config, &counter));
            }
        });
        Self {
            addr,
            ca_file,
            handshakes,
            dir,
        }
    }
}

fn serve(mut tcp: TcpStream, config: Arc<ServerConfig>, handshakes: &AtomicU64) {
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut conn = ServerConnection::new(config).unwrap();
    while conn.is_handshaking() {
        if conn.complete_io(&mut tcp).is_err() {
            return;
        }
    }
    handshakes.fetch_add(1, Ordering::Relaxed);
    // Flush what is queued (TLS 1.3 tickets), then read until close_notify or EOF.
    let _ = conn.complete_io(&mut tcp);
    loop {
        match conn.read_tls(&mut tcp) {
            Ok(0) | Err(_) => break,
            Ok(_) => match conn.process_new_packets() {
                Ok(state) if state.peer_has_closed() => break,
                Ok(_) => {}
                Err(_) => break,
            },
        }
    }
    conn.send_close_notify();
    while conn.wants_write() {
        if conn.write_tls(&mut tcp).is_err() {
            break;
        }
    }
}

fn loadgen(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn handshake_load_writes_sane_json() {
    let server = TestServer::start();
    let json = server.dir.path().join("out.json");
    let target = server.addr.to_string();
    let pid = std::process::id().to_string();
    let out = loadgen(&[
        "handshake",
        "--target",
        &target,
        "--server-name",
        "localhost",
        "--ca",
        server.ca_file.to_str().unwrap(),
        "--connections",
        "4",
        "--duration",
        "1s",
        "--json",
        json.to_str().unwrap(),
        "--sample-rss-pid",
        &pid,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    eprintln!("{}", stderr(&out));
    assert!(out.status.success(), "loadgen failed");
    assert!(stdout.contains("handshakes") && stdout.contains("p99.9"));

    let report = read_json(&json);
    let handshakes = report["handshakes"].as_u64().unwrap();
    assert!(handshakes > 0, "{report:#}");
    assert_eq!(report["errors"].as_u64(), Some(0), "{report:#}");
    assert_eq!(report["errors_by_kind"], serde_json::json!({}));
    // The server saw every measured handshake, plus the probe.
    assert!(server.handshakes.load(Ordering::Relaxed) > handshakes);
    assert_eq!(report["mode"], "handshake");
    assert_eq!(report["target"], target.as_str());
    assert_eq!(report["connections"], 4);
    assert_eq!(report["details"]["tls_version"], "TLSv1_3");
    assert_eq!(report["details"]["unclean_closes"], 0);
    let argv: Vec<&str> = report["command_line"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        argv.contains(&"handshake") && argv.contains(&"--json"),
        "{argv:?}"
    );

    let elapsed = report["elapsed_s"].as_f64().unwrap();
    assert!((0.9..10.0).contains(&elapsed), "{elapsed}");
    let rate = report["rate_per_s"].as_f64().unwrap();
    assert!((rate - handshakes as f64 / elapsed).abs() < 1.0, "{rate}");

    let lat = &report["latency_us"];
    let p = |k: &str| lat[k].as_u64().unwrap();
    // A full handshake with a P-384 ECDSA signature cannot take less than tens of µs.
    assert!(p("min") >= 50, "{lat}");
    assert!(p("min") <= p("p50"), "{lat}");
    assert!(p("p50") <= p("p90") && p("p90") <= p("p99"), "{lat}");
    assert!(p("p99") <= p("p999") && p("p999") <= p("max"), "{lat}");
    // A loopback handshake takes well under a second even on a loaded 2-core machine.
    assert!(p("p50") < 1_000_000, "{lat}");
    // The workers cannot have spent more time in handshakes than they existed.
    let mean = lat["mean"].as_f64().unwrap();
    assert!(mean >= p("min") as f64 && mean <= p("max") as f64, "{lat}");
    assert!(mean * handshakes as f64 <= elapsed * 1e6 * 4.0, "{lat}");

    let rss = &report["server_rss"];
    assert_eq!(rss["pid"].as_u64(), Some(u64::from(std::process::id())));
    assert!(rss["peak_kib"].as_u64().unwrap() >= rss["start_kib"].as_u64().unwrap());
    assert!(rss["final_kib"].as_u64().unwrap() > 0);
    assert!(rss["samples"].as_u64().unwrap() >= 3, "{rss}");
}

#[test]
fn count_limit_and_tls12() {
    let server = TestServer::start();
    let json = server.dir.path().join("out.json");
    let out = loadgen(&[
        "handshake",
        "--target",
        &server.addr.to_string(),
        "--ca",
        server.ca_file.to_str().unwrap(),
        "--connections",
        "3",
        "--count",
        "25",
        "--tls12",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = read_json(&json);
    assert_eq!(report["handshakes"], 25, "{report:#}");
    assert_eq!(report["errors"], 0);
    assert_eq!(report["limit_count"], 25);
    assert_eq!(report["details"]["tls_version"], "TLSv1_2");
}

#[test]
fn refuses_non_loopback_targets() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki().0.pem()).unwrap();
    for target in ["192.0.2.1:443", "[2001:db8::1]:443", "0.0.0.0:8443"] {
        let out = loadgen(&[
            "handshake",
            "--target",
            target,
            "--ca",
            ca.to_str().unwrap(),
        ]);
        assert!(!out.status.success(), "{target}");
        let err = stderr(&out);
        assert!(err.contains("not a loopback address"), "{target}: {err}");
    }
    // Names are never resolved.
    let out = loadgen(&["handshake", "--target", "example.com:443", "--ca", "x"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("host names are not resolved"));
}

#[test]
fn missing_or_bad_ca_file() {
    let server = TestServer::start();
    let target = server.addr.to_string();
    let missing = server.dir.path().join("nope.pem");
    let out = loadgen(&[
        "handshake",
        "--target",
        &target,
        "--ca",
        missing.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("cannot read CA file") && err.contains("nope.pem"),
        "{err}"
    );

    let empty = server.dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let out = loadgen(&[
        "handshake",
        "--target",
        &target,
        "--ca",
        empty.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no PEM CERTIFICATE"),
        "{}",
        stderr(&out)
    );

    // A CA that did not sign the server's certificate: a clear TLS error, before any load.
    let other = server.dir.path().join("other-ca.pem");
    std::fs::write(&other, pki().0.pem()).unwrap();
    let out = loadgen(&[
        "handshake",
        "--target",
        &target,
        "--ca",
        other.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("does --ca hold the CA"), "{err}");
}

#[test]
fn unreachable_target_and_bad_options() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki().0.pem()).unwrap();
    let ca = ca.to_str().unwrap();
    // A port nobody listens on: bind, note the port, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = format!("127.0.0.1:{port}");
    let json = dir.path().join("out.json");
    let out = loadgen(&[
        "handshake",
        "--target",
        &target,
        "--ca",
        ca,
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("cannot connect to") && err.contains("running"),
        "{err}"
    );
    assert!(!json.exists(), "no report for a run that never started");

    // A PID that does not exist (pid_max is at most 2^22 on Linux).
    let out = loadgen(&[
        "handshake",
        "--target",
        &target,
        "--ca",
        ca,
        "--sample-rss-pid",
        "4294967295",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is the process running?"),
        "{}",
        stderr(&out)
    );

    for bad in [
        &["--connections", "0"][..],
        &["--connections", "5000"],
        &["--duration", "0s"],
        &["--duration", "soon"],
        &["--count", "0"],
        &["--server-name", "not a name!"],
    ] {
        let mut args = vec!["handshake", "--target", &target, "--ca", ca];
        args.extend_from_slice(bad);
        let out = loadgen(&args);
        assert!(!out.status.success(), "{bad:?}");
        assert!(!stderr(&out).is_empty(), "{bad:?}");
    }
    // No subcommand / unknown subcommand.
    assert!(!loadgen(&[]).status.success());
    assert!(!loadgen(&["flood"]).status.success());
}
