//! PostgreSQL over TLS, against a private cluster this test starts.
//!
//! The cluster is made with the distribution's `initdb` (Debian package `postgresql`) in a
//! temporary directory, listens on a free high loopback port with `ssl=on` and a P-384 server
//! certificate from a test CA, and is stopped at the end. initdb refuses to run as root, so as
//! root the cluster runs as the `postgres` user through `runuser`. A missing initdb fails the
//! test with the package to install; it never skips.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use rampart_store::{OpenOptions, StoreError, open};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, PKCS_ECDSA_P384_SHA384,
};

/// Where Debian puts the server binaries: the newest `/usr/lib/postgresql/<v>/bin`.
fn pg_bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "the TLS test needs PostgreSQL's initdb and pg_ctl (/usr/lib/postgresql/*/bin): \
             install the Debian package `postgresql` (apt-get install postgresql)"
        ),
    }
}

fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Runs a PostgreSQL tool, as the `postgres` user when we are root.
fn run_pg(bin: &Path, args: &[&str]) -> Output {
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.args(args)
        .env("LC_ALL", "C")
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn make_ca(name: &str) -> (CertificateParams, KeyPair, String) {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    (params, key, cert.pem())
}

fn make_pki() -> Pki {
    let (ca_params, ca_key, ca_pem) = make_ca("rampart test CA");
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "rampart test postgres");
    let cert = params.signed_by(&key, &issuer).unwrap();
    Pki {
        ca_pem,
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// A private PostgreSQL cluster, stopped on drop.
struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn start(pki: &Pki) -> Cluster {
        let bin = pg_bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("rampart-pg-tls-")
            .tempdir()
            .unwrap();
        let root = dir.path().to_path_buf();
        let data = root.join("data");
        let cert = root.join("server.crt");
        let key = root.join("server.key");
        fs::write(&cert, &pki.cert_pem).unwrap();
        fs::write(&key, &pki.key_pem).unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        if is_root() {
            let out = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&root)
                .output()
                .unwrap();
            assert!(out.status.success(), "chown: {out:?}");
        }
        let out = run_pg(
            &bin.join("initdb"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
        );
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {port}\n\
             unix_socket_directories = '{sock}'\nssl = on\n\
             ssl_cert_file = '{cert}'\nssl_key_file = '{key}'\n\
             fsync = off\nshared_buffers = 16MB\nmax_connections = 20\n",
            sock = root.display(),
            cert = cert.display(),
            key = key.display(),
        );
        let conf_path = data.join("postgresql.conf");
        let mut existing = fs::read_to_string(&conf_path).unwrap();
        existing.push_str(&conf);
        fs::write(&conf_path, existing).unwrap();
        let cluster = Cluster {
            bin,
            data,
            port,
            dir,
        };
        let log = root.join("postgres.log");
        let out = run_pg(
            &cluster.bin.join("pg_ctl"),
            &[
                "-D",
                cluster.data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "30",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            fs::read_to_string(&log).unwrap_or_default()
        );
        cluster
    }

    fn url(&self, extra: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?application_name=rampart-tls-test{extra}",
            self.port
        )
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        fs::write(&p, contents).unwrap();
        p
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = run_pg(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                self.data.to_str().unwrap_or_default(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }
}

fn tls_error(r: Result<std::sync::Arc<dyn rampart_store::Store>, StoreError>) -> String {
    match r {
        Err(StoreError::Backend(m)) => m,
        Err(e) => panic!("expected a backend (TLS) error, got {e:?}"),
        Ok(_) => panic!("connected despite an untrusted server certificate"),
    }
}

#[test]
fn postgres_over_verified_tls() {
    let pki = make_pki();
    let cluster = Cluster::start(&pki);
    let ca = cluster.write("ca.pem", &pki.ca_pem);

    let options = OpenOptions {
        tls_ca: Some(ca),
        pool_size: 2,
        ..OpenOptions::default()
    };
    let store = open(&cluster.url("&sslmode=require"), &options).expect("open over TLS");
    let rx = store.changes();
    store
        .create_account(
            &rampart_store::NewAccount {
                name: "tls".into(),
                kind: rampart_store::AccountKind::Service,
                role: None,
                credential: rampart_store::Credential::Digest([1; 32]),
            },
            1,
        )
        .unwrap();
    // NOTIFY arrives over the listener's TLS connection.
    assert_eq!(rx.recv_timeout(Duration::from_secs(1)), Ok(1));

    // Every connection the store holds (pool and listener) is TLS 1.3, seen from the server.
    let admin_url = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=disable",
        cluster.port
    );
    let mut admin = postgres::Client::connect(&admin_url, postgres::NoTls).unwrap();
    let row = admin
        .query_one(
            "SELECT COUNT(*), COALESCE(bool_and(s.ssl), false), MIN(s.version) \
             FROM pg_stat_activity a JOIN pg_stat_ssl s ON s.pid = a.pid \
             WHERE a.application_name = 'rampart-tls-test'",
            &[],
        )
        .unwrap();
    let (n, all_ssl, version): (i64, bool, Option<String>) = (row.get(0), row.get(1), row.get(2));
    assert!(n >= 2, "expected pool + listener connections, saw {n}");
    assert!(all_ssl, "a store connection is not TLS");
    assert_eq!(version.as_deref(), Some("TLSv1.3"));
    // And this admin connection, for contrast, is not.
    let plain: bool = admin
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(!plain);
    drop(store);

    // verify-full is accepted as a synonym, and the "localhost" SAN matches too.
    let url = cluster
        .url("&sslmode=verify-full")
        .replace("127.0.0.1", "localhost");
    open(&url, &options).expect("open with verify-full via localhost");

    // A CA that did not sign the server certificate: refused, saying why.
    let (_, _, other_ca) = make_ca("some other CA");
    let wrong = OpenOptions {
        tls_ca: Some(cluster.write("other-ca.pem", &other_ca)),
        ..OpenOptions::default()
    };
    let m = tls_error(open(&cluster.url("&sslmode=require"), &wrong));
    assert!(m.contains("TLS") && m.contains("certificate"), "{m}");
    // Without tls_ca the public web roots apply, which do not know our test CA either.
    let m = tls_error(open(
        &cluster.url("&sslmode=require"),
        &OpenOptions::default(),
    ));
    assert!(m.contains("certificate"), "{m}");
    // A CA file that is not PEM is a clear error too.
    let junk = OpenOptions {
        tls_ca: Some(cluster.write("junk.pem", "not a certificate")),
        ..OpenOptions::default()
    };
    let m = tls_error(open(&cluster.url("&sslmode=require"), &junk));
    assert!(m.contains("no certificate"), "{m}");
}
