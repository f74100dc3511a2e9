//! What TLS an AMT device gets on the CIRA port: an RSA-3072/SHA-384 certificate (what newer AMT
//! firmware expects of its MPS) made by openssl and configured for the CIRA listener, TLS 1.2
//! with ECDHE-RSA for a simulated device; and no static-RSA key exchange, which is why AMT 11 and
//! 12 firmware that needs it cannot connect (docs/config.md, "Which AMT devices can connect").

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rampart_loadgen::amt::{Device, DeviceSpec, Setup};

mod common;

use common::{Install, text, wait_applied};

const GUID: &str = "12345678-9abc-def0-1122-334455667788";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("openssl is installed");
    assert!(out.status.success(), "openssl {args:?}: {}", text(&out));
}

/// An RSA-3072 CA and a server certificate it signed with SHA-384, for 127.0.0.1/localhost.
fn rsa_chain(dir: &Path) {
    openssl(dir, &["genrsa", "-out", "ca.key", "3072"]);
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-sha384",
            "-days",
            "30",
            "-subj",
            "/CN=AMT test CA",
            "-out",
            "ca.pem",
        ],
    );
    openssl(dir, &["genrsa", "-out", "cira.key", "3072"]);
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "cira.key",
            "-subj",
            "/CN=localhost",
            "-out",
            "cira.csr",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "cira.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-sha384",
            "-days",
            "30",
            "-extfile",
            "ext.cnf",
            "-out",
            "cira.pem",
        ],
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("cira.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A TLS 1.2-only client (as AMT firmware is) trusting `ca`.
fn tls12_client(ca: &Path) -> Arc<rustls::ClientConfig> {
    let pem = std::fs::read(ca).unwrap();
    let (_, der) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der.contents.into()).unwrap();
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

#[test]
fn rsa_3072_certificate_over_tls12_ecdhe_and_no_static_rsa() {
    let pki = tempfile::tempdir().unwrap();
    rsa_chain(pki.path());
    let cira = format!(
        "cert = \"{}\"\nkey = \"{}\"",
        pki.path().join("cira.pem").display(),
        pki.path().join("cira.key").display()
    );
    let install = Install::with("", ["off", "off", &cira]);
    let up = install.start("up");
    let out = install.run(&["device", "add", "--guid", GUID, "--mps-username", "admin"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let pw = stdout
        .lines()
        .find_map(|l| l.strip_prefix("MPS password (shown once): "))
        .unwrap()
        .trim()
        .to_owned();
    wait_applied(&install);
    let port = install.ports[2];

    // A device on TLS 1.2 verifies the RSA chain and gets its tunnel.
    let spec = DeviceSpec {
        guid: GUID.parse().unwrap(),
        username: "admin".into(),
        password: pw,
        ports: vec![16992],
    };
    let target = ([127, 0, 0, 1], port).into();
    let client = tls12_client(&pki.path().join("ca.pem"));
    let mut d = Device::connect(target, client, "localhost", spec, Duration::from_secs(5)).unwrap();
    let setup = d.setup(0, Duration::from_secs(5)).unwrap();
    assert!(
        matches!(setup, Setup::Forwarding { .. }),
        "{setup:?}\n{}",
        up.log_text()
    );

    // openssl: ECDHE-RSA with AES-GCM is offered; static RSA key exchange (what AMT 11/12
    // needs) is not.
    let connect = format!("127.0.0.1:{port}");
    let s_client = |cipher: &str| {
        Command::new("openssl")
            .args([
                "s_client", "-connect", &connect, "-tls1_2", "-cipher", cipher,
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let ok = s_client("ECDHE-RSA-AES256-GCM-SHA384");
    let t = text(&ok);
    assert!(t.contains("ECDHE-RSA-AES256-GCM-SHA384"), "{t}");
    assert!(t.contains("3072 bit"), "{t}");
    let refused = s_client("AES256-GCM-SHA384:AES128-SHA:AES256-SHA");
    assert!(
        !refused.status.success(),
        "static RSA accepted: {}",
        text(&refused)
    );
    up.stop();
}
