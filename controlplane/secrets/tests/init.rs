//! `init` in self-signed mode, checked with the real `openssl` tool.

mod common;

use std::collections::HashSet;
use std::fs::{self, Permissions};
use std::os::unix::fs::PermissionsExt as _;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordVerifier as _};
use common::*;
use rampart_ca::{CertPass, Service};
use rampart_secrets::{
    Layout, SecretsError, ServiceAccount, check_private, ensure_keys, init, read_auth_file,
    read_key32,
};

#[test]
fn self_signed_certificates_verify_with_openssl() {
    let (_tmp, dir) = secrets_dir();
    init_ok(&options(&dir));
    let layout = Layout::new(&dir);
    let ca = path_str_owned(&layout.ca_cert());

    let ca_text = openssl_ok(&["x509", "-in", &ca, "-noout", "-text"]);
    assert!(ca_text.contains("ecdsa-with-SHA384"), "{ca_text}");
    assert!(ca_text.contains("NIST CURVE: P-384"), "{ca_text}");
    assert!(ca_text.contains("CA:TRUE"), "{ca_text}");
    assert!(ca_text.contains("Certificate Sign, CRL Sign"), "{ca_text}");
    assert!(
        ca_text.contains(&format!("Subject: CN = Rampart Root CA {CN}, O = Rampart")),
        "{ca_text}"
    );
    assert_eq!(validity_days(&layout.ca_cert()), 1825);

    let mut serials = HashSet::new();
    assert!(serials.insert(serial(&layout.ca_cert())));
    for service in Service::ALL {
        let cert = path_str_owned(&layout.service_cert(service));
        let verify = openssl_ok(&["verify", "-CAfile", &ca, &cert]);
        assert!(verify.contains(": OK"), "{service}: {verify}");

        let text = openssl_ok(&["x509", "-in", &cert, "-noout", "-text"]);
        assert!(text.contains("ecdsa-with-SHA384"), "{text}");
        assert!(text.contains("NIST CURVE: P-384"), "{text}");
        assert!(text.contains(&format!("Subject: CN = {CN}")), "{text}");
        assert!(text.contains(&format!("DNS:{CN}")), "{text}");
        assert!(text.contains(&format!("IP Address:{IP}")), "{text}");
        assert!(text.contains("CA:FALSE"), "{text}");
        assert!(text.contains("TLS Web Server Authentication"), "{text}");
        assert!(text.contains("X509v3 Authority Key Identifier"), "{text}");
        assert_eq!(validity_days(&layout.service_cert(service)), 360);
        let this_serial = serial(&layout.service_cert(service));
        // 16 random bytes (DER may drop leading zeros), not rcgen's 20-byte key hash.
        assert!((12..=16).contains(&this_serial.len()), "{this_serial:?}");
        assert!(serials.insert(this_serial), "serial repeated");

        // The key next to the certificate is its key.
        let key = path_str_owned(&layout.service_key(service));
        let from_key = openssl_ok(&["pkey", "-in", &key, "-pubout"]);
        let from_cert = openssl_ok(&["x509", "-in", &cert, "-noout", "-pubkey"]);
        assert_eq!(from_key, from_cert);
        assert!(
            fs::read_to_string(&key)
                .unwrap()
                .starts_with("-----BEGIN PRIVATE KEY-----\n")
        );
    }
}

#[test]
fn serials_and_keys_differ_between_runs() {
    let (_a, dir_a) = secrets_dir();
    let (_b, dir_b) = secrets_dir();
    init_ok(&options(&dir_a));
    init_ok(&options(&dir_b));
    let (a, b) = (Layout::new(&dir_a), Layout::new(&dir_b));
    assert_ne!(serial(&a.ca_cert()), serial(&b.ca_cert()));
    for service in Service::ALL {
        assert_ne!(
            serial(&a.service_cert(service)),
            serial(&b.service_cert(service))
        );
        assert_ne!(
            fs::read(a.service_key(service)).unwrap(),
            fs::read(b.service_key(service)).unwrap()
        );
    }
}

#[test]
fn ca_key_is_encrypted_under_a_discarded_certpass() {
    let (_tmp, dir) = secrets_dir();
    init_ok(&options(&dir));
    let layout = Layout::new(&dir);
    let key_text = fs::read_to_string(layout.ca_key()).unwrap();
    assert!(key_text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
    assert!(!key_text.contains("BEGIN PRIVATE KEY"));

    let key = path_str_owned(&layout.ca_key());
    for wrong in ["pass:wrong", "pass:"] {
        let out = openssl(&["pkey", "-in", &key, "-passin", wrong, "-noout"]);
        assert!(
            !out.status.success(),
            "openssl opened the CA key with {wrong}"
        );
    }
    // The CERTPASS appears in no file of the secrets directory.
    let asn1 = openssl_ok(&["asn1parse", "-in", &key]);
    assert!(asn1.contains("PBES2") && asn1.contains("PBKDF2"), "{asn1}");
}

#[test]
fn known_certpass_key_opens_in_openssl_with_pbkdf2_sha256_and_aes_256_cbc() {
    const PASSWORD: &str = "known-test-certpass-0123456789";
    let pass = CertPass::from_secret(zs(PASSWORD)).unwrap();
    let pki = rampart_ca::generate_self_signed_with_certpass(&names(), &pass).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("ca.key");
    let cert = tmp.path().join("ca.pem");
    fs::write(&key, &pki.ca_key_pem).unwrap();
    fs::write(&cert, &pki.ca_cert_pem).unwrap();
    let (key, cert) = (path_str(&key), path_str(&cert));

    let passin = format!("pass:{PASSWORD}");
    openssl_ok(&["pkey", "-in", key, "-passin", &passin, "-noout"]);
    let public = openssl_ok(&["pkey", "-in", key, "-passin", &passin, "-pubout"]);
    assert_eq!(
        public,
        openssl_ok(&["x509", "-in", cert, "-noout", "-pubkey"])
    );
    let wrong = openssl(&[
        "pkey",
        "-in",
        key,
        "-passin",
        "pass:known-test-certpass-x",
        "-noout",
    ]);
    assert!(!wrong.status.success());

    let asn1 = openssl_ok(&["asn1parse", "-in", key]);
    for needle in ["PBES2", "PBKDF2", "hmacWithSHA256", "aes-256-cbc"] {
        assert!(asn1.contains(needle), "{needle} missing:\n{asn1}");
    }
    // 600 000 iterations = 0x0927C0.
    assert!(asn1.contains(":0927C0"), "{asn1}");
    assert!(!asn1.contains("scrypt"), "{asn1}");
}

#[test]
fn every_directory_is_0700_and_every_file_0600() {
    let (_tmp, dir) = secrets_dir();
    let report = init_ok(&options(&dir));
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o7777,
        0o700
    );
    let mut files = 0;
    walk(&dir, &mut |path| {
        let meta = fs::symlink_metadata(path).unwrap();
        let mode = meta.permissions().mode() & 0o7777;
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(
            !name.contains(".tmp-"),
            "temporary file left: {}",
            path.display()
        );
        if meta.is_dir() {
            assert_eq!(mode, 0o700, "{}", path.display());
        } else {
            assert!(meta.is_file());
            assert_eq!(mode, 0o600, "{}", path.display());
            files += 1;
        }
    });
    // ca.pem, ca.key, 4 x (pem, key), admin.argon2, session.key, master.key, credential.key,
    // dbpass, 3 x auth.
    assert_eq!(files, 18);
    assert_eq!(report.created.len(), 18);
    assert!(report.kept.is_empty());
    check_private(&dir).unwrap();
}

#[test]
fn check_private_names_loose_directories_and_files() {
    let (_tmp, dir) = secrets_dir();
    init_ok(&options(&dir));
    let layout = Layout::new(&dir);

    fs::set_permissions(&dir, Permissions::from_mode(0o755)).unwrap();
    let err = check_private(&dir).unwrap_err();
    assert!(
        matches!(&err, SecretsError::LoosePermissions { path, mode: 0o755 } if *path == dir),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains(path_str(&dir)) && message.contains("0755"),
        "{message}"
    );
    // init refuses to work in it rather than fixing it silently.
    assert!(matches!(
        init(&options(&dir)),
        Err(SecretsError::LoosePermissions { .. })
    ));
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o7777,
        0o755
    );
    fs::set_permissions(&dir, Permissions::from_mode(0o700)).unwrap();

    let key = layout.service_key(Service::Https);
    fs::set_permissions(&key, Permissions::from_mode(0o644)).unwrap();
    let err = check_private(&dir).unwrap_err();
    assert!(
        matches!(&err, SecretsError::LoosePermissions { path, mode: 0o644 } if *path == key),
        "{err}"
    );
    assert!(err.to_string().contains("certs/https.key"), "{err}");
    fs::set_permissions(&key, Permissions::from_mode(0o600)).unwrap();

    fs::set_permissions(layout.certs_dir(), Permissions::from_mode(0o710)).unwrap();
    assert!(matches!(
        check_private(&dir),
        Err(SecretsError::LoosePermissions { mode: 0o710, .. })
    ));
    fs::set_permissions(layout.certs_dir(), Permissions::from_mode(0o700)).unwrap();
    check_private(&dir).unwrap();

    assert!(matches!(
        check_private(&dir.join("missing")),
        Err(SecretsError::Missing { .. })
    ));
}

#[test]
fn init_refuses_an_existing_loose_directory() {
    let (_tmp, dir) = secrets_dir();
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, Permissions::from_mode(0o750)).unwrap();
    let err = init(&options(&dir)).unwrap_err();
    assert!(
        matches!(err, SecretsError::LoosePermissions { mode: 0o750, .. }),
        "{err}"
    );
    assert_eq!(
        fs::read_dir(&dir).unwrap().count(),
        0,
        "nothing may be written"
    );
}

#[test]
fn second_init_keeps_every_file_byte_for_byte() {
    let (_tmp, dir) = secrets_dir();
    let first = init_ok(&options(&dir));
    assert!(first.admin_password.is_some());
    let before = snapshot(&dir);

    let second = init_ok(&options(&dir));
    assert!(second.admin_password.is_none());
    assert!(second.created.is_empty(), "{:?}", second.created);
    let kept: HashSet<_> = second.kept.iter().cloned().collect();
    let all: HashSet<_> = before.keys().cloned().collect();
    assert_eq!(kept, all);
    assert_eq!(snapshot(&dir), before);
}

#[test]
fn pki_is_kept_whole_even_if_partly_missing() {
    let (_tmp, dir) = secrets_dir();
    init_ok(&options(&dir));
    let layout = Layout::new(&dir);
    fs::remove_file(layout.service_cert(Service::Mqtt)).unwrap();
    fs::remove_file(layout.session_key()).unwrap();
    let before = snapshot(&dir);

    let report = init_ok(&options(&dir));
    // The lone secret is recreated; the PKI is not patched with a certificate from a new CA.
    assert_eq!(report.created, vec![layout.session_key()]);
    assert!(!layout.service_cert(Service::Mqtt).exists());
    let after = snapshot(&dir);
    for (path, bytes) in &before {
        assert_eq!(after.get(path), Some(bytes), "{}", path.display());
    }
}

#[test]
fn force_regenerates_everything_but_the_data_keys_and_returns_a_new_password() {
    let (_tmp, dir) = secrets_dir();
    let first = init_ok(&options(&dir));
    let old_password = first.admin_password.unwrap();
    let before = snapshot(&dir);

    let mut opts = options(&dir);
    opts.force = true;
    let second = init_ok(&opts);
    let new_password = second
        .admin_password
        .expect("force returns the new password");
    assert_ne!(old_password, new_password);
    // The data keys protect sealed secrets and digests: --force keeps them.
    let layout = Layout::new(&dir);
    let data_keys = layout.key_files();
    assert_eq!(second.kept, data_keys.to_vec());

    let after = snapshot(&dir);
    assert_eq!(after.len(), before.len());
    for (path, bytes) in &before {
        if data_keys.contains(path) {
            assert_eq!(after.get(path), Some(bytes), "{} changed", path.display());
            continue;
        }
        assert_ne!(
            after.get(path),
            Some(bytes),
            "{} did not change",
            path.display()
        );
    }
    let phc = fs::read_to_string(Layout::new(&dir).admin_hash()).unwrap();
    let parsed = PasswordHash::new(phc.trim_end()).unwrap();
    assert!(
        Argon2::default()
            .verify_password(new_password.as_bytes(), &parsed)
            .is_ok()
    );
    assert!(
        Argon2::default()
            .verify_password(old_password.as_bytes(), &parsed)
            .is_err()
    );
    every_file_private(&dir);
}

#[test]
fn given_db_password_is_stored_and_generated_one_looks_like_openssl_rand() {
    let (_tmp, dir) = secrets_dir();
    let mut opts = options(&dir);
    opts.db_password = Some(zs("caller-chosen DBPASS"));
    init_ok(&opts);
    let stored = fs::read_to_string(Layout::new(&dir).db_password()).unwrap();
    assert_eq!(stored, "caller-chosen DBPASS\n");

    let (_tmp2, dir2) = secrets_dir();
    init_ok(&options(&dir2));
    let generated = fs::read_to_string(Layout::new(&dir2).db_password()).unwrap();
    let generated = generated.trim_end();
    assert_eq!(generated.len(), 16);
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(generated)
        .unwrap();
    assert_eq!(raw.len(), 12);

    let (_tmp3, dir3) = secrets_dir();
    let mut bad = options(&dir3);
    bad.db_password = Some(zs("two\nlines"));
    assert!(matches!(
        init(&bad),
        Err(SecretsError::InvalidDbPassword { .. })
    ));
}

#[test]
fn auth_files_and_admin_hash() {
    let (_tmp, dir) = secrets_dir();
    let report = init_ok(&options(&dir));
    let layout = Layout::new(&dir);

    let mut passwords = HashSet::new();
    for (account, user) in [
        (ServiceAccount::Controller, "scenectrl"),
        (ServiceAccount::Browser, "webuser"),
        (ServiceAccount::Calibration, "calibration"),
    ] {
        let path = layout.auth_file(account);
        let json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        let object = json.as_object().unwrap();
        assert_eq!(object.len(), 2);
        assert_eq!(object["user"], user);
        let password = object["password"].as_str().unwrap();
        assert_eq!(password.len(), 43, "32 bytes, base64url without padding");
        assert!(
            password
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert!(passwords.insert(password.to_owned()));

        let (read_user, read_password) = read_auth_file(&path).unwrap();
        assert_eq!(read_user, user);
        assert_eq!(read_password.as_str(), password);
    }

    let admin = report.admin_password.unwrap();
    assert_eq!(admin.len(), 24);
    let phc = fs::read_to_string(layout.admin_hash()).unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    assert!(!phc.contains(admin.as_str()));
    let parsed = PasswordHash::new(phc.trim_end()).unwrap();
    Argon2::default()
        .verify_password(admin.as_bytes(), &parsed)
        .unwrap();

    // The plaintext admin password is in no file.
    for bytes in snapshot(&dir).values() {
        let text = String::from_utf8_lossy(bytes);
        assert!(!text.contains(admin.as_str()));
    }

    let session = fs::read_to_string(layout.session_key()).unwrap();
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(session.trim_end())
        .unwrap();
    assert_eq!(raw.len(), 64);
}

fn every_file_private(dir: &std::path::Path) {
    walk(dir, &mut |path| {
        let meta = fs::symlink_metadata(path).unwrap();
        let expected = if meta.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(
            meta.permissions().mode() & 0o7777,
            expected,
            "{}",
            path.display()
        );
    });
}

fn path_str_owned(path: &std::path::Path) -> String {
    path.to_str().unwrap().to_owned()
}

#[test]
fn key_files_are_32_random_bytes_and_load() {
    let (_tmp, dir) = secrets_dir();
    let report = init_ok(&options(&dir));
    let layout = Layout::new(&dir);
    for path in [layout.master_key(), layout.credential_key()] {
        assert!(report.created.contains(&path), "{}", path.display());
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.ends_with('\n') && text.len() == 45, "{text:?}");
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(text.trim_end())
            .unwrap();
        assert_eq!(&raw[..], &read_key32(&path).unwrap()[..]);
    }
    assert_ne!(
        *read_key32(&layout.master_key()).unwrap(),
        *read_key32(&layout.credential_key()).unwrap()
    );

    // The master key opens what it sealed, through rampart-credentials.
    let kek = rampart_credentials::Kek::from_bytes(&read_key32(&layout.master_key()).unwrap());
    let blob = rampart_credentials::envelope::seal(&kek, "device:x:amt_password", b"pw").unwrap();
    let again = rampart_credentials::Kek::from_bytes(&read_key32(&layout.master_key()).unwrap());
    assert_eq!(
        &rampart_credentials::envelope::open(&again, "device:x:amt_password", &blob).unwrap()[..],
        b"pw"
    );

    // A second init keeps them, and so does --force.
    let before = fs::read(layout.master_key()).unwrap();
    init_ok(&options(&dir));
    assert_eq!(fs::read(layout.master_key()).unwrap(), before);
    let mut opts = options(&dir);
    opts.force = true;
    init_ok(&opts);
    assert_eq!(fs::read(layout.master_key()).unwrap(), before);
}

#[test]
fn installations_from_before_the_key_files_get_them_at_start() {
    let (_tmp, dir) = secrets_dir();
    init_ok(&options(&dir));
    let layout = Layout::new(&dir);
    // What an older `rampart init` left behind.
    fs::remove_file(layout.master_key()).unwrap();
    fs::remove_file(layout.credential_key()).unwrap();
    let before = snapshot(&dir);

    let created = ensure_keys(&layout).unwrap();
    assert_eq!(created, vec![layout.master_key(), layout.credential_key()]);
    read_key32(&layout.master_key()).unwrap();
    read_key32(&layout.credential_key()).unwrap();
    // Nothing else was touched, and a second call does nothing.
    let after = snapshot(&dir);
    for (path, bytes) in &before {
        assert_eq!(after.get(path), Some(bytes), "{}", path.display());
    }
    let master = fs::read(layout.master_key()).unwrap();
    assert!(ensure_keys(&layout).unwrap().is_empty());
    assert_eq!(fs::read(layout.master_key()).unwrap(), master);
    every_file_private(&dir);
    check_private(&dir).unwrap();

    // An existing, loose key file is reported when loading, not silently fixed or replaced.
    fs::set_permissions(layout.master_key(), Permissions::from_mode(0o644)).unwrap();
    assert!(ensure_keys(&layout).is_err());
    assert!(matches!(
        read_key32(&layout.master_key()),
        Err(SecretsError::LoosePermissions { mode: 0o644, .. })
    ));
    assert_eq!(fs::read(layout.master_key()).unwrap(), master);
}
