//! CSR mode and `install_certs`, against a real external CA made with the `openssl` tool.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use rampart_ca::{CaError, Service};
use rampart_secrets::{Layout, SecretsError, check_private, install_certs};

/// An external CA made with `openssl`, in its own temporary directory.
struct OpensslCa {
    dir: tempfile::TempDir,
}

impl OpensslCa {
    fn new(cn: &str) -> OpensslCa {
        let dir = tempfile::tempdir().unwrap();
        let ca = OpensslCa { dir };
        let (key, cert) = (ca.path("ca.key"), ca.path("ca.pem"));
        openssl_ok(&[
            "ecparam",
            "-name",
            "secp384r1",
            "-genkey",
            "-noout",
            "-out",
            &key,
        ]);
        openssl_ok(&[
            "req",
            "-x509",
            "-new",
            "-key",
            &key,
            "-sha384",
            "-days",
            "30",
            "-subj",
            &format!("/CN={cn}/O=Example Org"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            &cert,
        ]);
        ca
    }

    fn path(&self, name: &str) -> String {
        path_str(&self.dir.path().join(name)).to_owned()
    }

    fn cert(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Signs `csr` like an organisation's CA would, carrying the SANs via `-extfile`. `days`
    /// may be negative for an already expired certificate.
    fn sign(&self, csr: &Path, out_name: &str, days: i32) -> PathBuf {
        let ext = self.path(&format!("{out_name}.ext"));
        fs::write(
            &ext,
            format!(
                "basicConstraints=critical,CA:FALSE\n\
                 keyUsage=critical,digitalSignature\n\
                 extendedKeyUsage=serverAuth\n\
                 subjectAltName=DNS:{CN},IP:{IP}\n"
            ),
        )
        .unwrap();
        let out = self.dir.path().join(out_name);
        openssl_ok(&[
            "x509",
            "-req",
            "-in",
            path_str(csr),
            "-CA",
            &self.path("ca.pem"),
            "-CAkey",
            &self.path("ca.key"),
            "-CAcreateserial",
            "-CAserial",
            &self.path("ca.srl"),
            "-sha384",
            "-days",
            &days.to_string(),
            "-extfile",
            &ext,
            "-out",
            path_str(&out),
        ]);
        out
    }
}

fn csr_init() -> (tempfile::TempDir, PathBuf, Layout) {
    let (tmp, dir) = secrets_dir();
    let mut opts = options(&dir);
    opts.csr = true;
    let report = init_ok(&opts);
    assert!(report.admin_password.is_some());
    let layout = Layout::new(&dir);
    (tmp, dir, layout)
}

fn certificate_error(err: SecretsError) -> CaError {
    match err {
        SecretsError::Certificate { source, .. } => source,
        other => panic!("expected a certificate error, got {other}"),
    }
}

#[test]
fn csr_mode_writes_keys_and_csrs_openssl_verifies() {
    let (_tmp, dir, layout) = csr_init();
    assert!(!layout.ca_key().exists(), "no CA key in CSR mode");
    assert!(!layout.ca_cert().exists());
    for service in Service::ALL {
        assert!(!layout.service_cert(service).exists());
        let csr = layout.service_csr(service);
        let verify = openssl_ok(&["req", "-verify", "-noout", "-in", path_str(&csr)]);
        assert!(verify.contains("verify OK"), "{verify}");
        let text = openssl_ok(&["req", "-noout", "-text", "-in", path_str(&csr)]);
        assert!(text.contains(&format!("Subject: CN = {CN}")), "{text}");
        assert!(text.contains(&format!("DNS:{CN}")), "{text}");
        assert!(text.contains(&format!("IP Address:{IP}")), "{text}");
        assert!(text.contains("ecdsa-with-SHA384"), "{text}");
        assert!(text.contains("NIST CURVE: P-384"), "{text}");

        let key = layout.service_key(service);
        let from_key = openssl_ok(&["pkey", "-in", path_str(&key), "-pubout"]);
        let from_csr = openssl_ok(&["req", "-in", path_str(&csr), "-noout", "-pubkey"]);
        assert_eq!(from_key, from_csr);
    }
    check_private(&dir).unwrap();
}

#[test]
fn externally_signed_certificates_install_and_verify() {
    let (_tmp, dir, layout) = csr_init();
    let ca = OpensslCa::new("Example Org Root");
    // Hand the files over in an order unrelated to the services.
    let mut signed: Vec<PathBuf> = Service::ALL
        .iter()
        .map(|&s| ca.sign(&layout.service_csr(s), &format!("signed-{s}.pem"), 90))
        .collect();
    signed.reverse();

    let installed = install_certs(&dir, &ca.cert(), &signed).unwrap();
    let mut services: Vec<Service> = installed.iter().map(|(s, _)| *s).collect();
    services.sort();
    assert_eq!(services, Service::ALL.to_vec());
    for (service, path) in &installed {
        assert_eq!(*path, layout.service_cert(*service));
    }

    let ca_pem = path_str(&layout.ca_cert()).to_owned();
    assert_eq!(
        with_cert(&layout.ca_cert(), |c| c.subject().to_string()),
        "CN=Example Org Root, O=Example Org"
    );
    for service in Service::ALL {
        let cert = layout.service_cert(service);
        let verify = openssl_ok(&["verify", "-CAfile", &ca_pem, path_str(&cert)]);
        assert!(verify.contains(": OK"), "{verify}");
        // Each certificate landed next to its own key.
        let from_key = openssl_ok(&[
            "pkey",
            "-in",
            path_str(&layout.service_key(service)),
            "-pubout",
        ]);
        let from_cert = openssl_ok(&["x509", "-in", path_str(&cert), "-noout", "-pubkey"]);
        assert_eq!(from_key, from_cert);
    }
    check_private(&dir).unwrap();
}

#[test]
fn installing_a_subset_is_fine() {
    let (_tmp, dir, layout) = csr_init();
    let ca = OpensslCa::new("Example Org Root");
    let https = ca.sign(&layout.service_csr(Service::Https), "https.pem", 90);
    let installed = install_certs(&dir, &ca.cert(), &[https]).unwrap();
    assert_eq!(
        installed,
        vec![(Service::Https, layout.service_cert(Service::Https))]
    );
    assert!(!layout.service_cert(Service::Mqtt).exists());
}

#[test]
fn bad_certificates_are_rejected_and_nothing_is_written() {
    let (_tmp, dir, layout) = csr_init();
    let ca = OpensslCa::new("Example Org Root");
    let good = ca.sign(&layout.service_csr(Service::Https), "good.pem", 90);
    let before = snapshot(&dir);

    // Signed by a different CA with the same name.
    let other = OpensslCa::new("Example Org Root");
    let forged = other.sign(&layout.service_csr(Service::Mqtt), "forged.pem", 90);
    let err = install_certs(&dir, &ca.cert(), &[good.clone(), forged]).unwrap_err();
    assert!(matches!(
        certificate_error(err),
        CaError::BadSignature {
            service: Service::Mqtt,
            ..
        }
    ));

    // Expired: `-days -1` puts notAfter a day before notBefore (now).
    let expired = ca.sign(&layout.service_csr(Service::Cira), "expired.pem", -1);
    let err = install_certs(&dir, &ca.cert(), &[expired]).unwrap_err();
    assert!(matches!(
        certificate_error(err),
        CaError::Expired {
            service: Service::Cira,
            ..
        }
    ));

    // A key this directory never generated.
    let stranger_key = ca.path("stranger.key");
    let stranger_csr = ca.path("stranger.csr");
    openssl_ok(&[
        "ecparam",
        "-name",
        "secp384r1",
        "-genkey",
        "-noout",
        "-out",
        &stranger_key,
    ]);
    openssl_ok(&[
        "req",
        "-new",
        "-key",
        &stranger_key,
        "-subj",
        &format!("/CN={CN}"),
        "-out",
        &stranger_csr,
    ]);
    let stranger = ca.sign(Path::new(&stranger_csr), "stranger.pem", 90);
    let err = install_certs(&dir, &ca.cert(), &[stranger]).unwrap_err();
    assert!(matches!(certificate_error(err), CaError::UnknownKey { .. }));

    // Two certificates for one service.
    let again = ca.sign(&layout.service_csr(Service::Https), "again.pem", 90);
    let err = install_certs(&dir, &ca.cert(), &[good.clone(), again]).unwrap_err();
    assert!(matches!(
        err,
        SecretsError::DuplicateCertificate {
            service: Service::Https,
            ..
        }
    ));

    // A CA file that is not a CA.
    let err = install_certs(&dir, &good, std::slice::from_ref(&good)).unwrap_err();
    assert!(matches!(
        certificate_error(err),
        CaError::CaCertNotCa { .. }
    ));

    assert_eq!(
        snapshot(&dir),
        before,
        "a rejected install must not write anything"
    );
}

#[test]
fn certificate_for_a_service_whose_key_is_absent_is_rejected() {
    let (_tmp, dir, layout) = csr_init();
    let ca = OpensslCa::new("Example Org Root");
    let cira = ca.sign(&layout.service_csr(Service::Cira), "cira.pem", 90);
    fs::remove_file(layout.service_key(Service::Cira)).unwrap();
    fs::remove_file(layout.service_csr(Service::Cira)).unwrap();
    let err = install_certs(&dir, &ca.cert(), &[cira]).unwrap_err();
    assert!(matches!(certificate_error(err), CaError::UnknownKey { .. }));
    assert!(!layout.service_cert(Service::Cira).exists());
}

#[test]
fn install_needs_a_private_secrets_directory() {
    let (_tmp, dir, layout) = csr_init();
    let ca = OpensslCa::new("Example Org Root");
    let https = ca.sign(&layout.service_csr(Service::Https), "https.pem", 90);
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    assert!(matches!(
        install_certs(&dir, &ca.cert(), &[https]),
        Err(SecretsError::LoosePermissions { .. })
    ));
}
