//! The Vault KV v2 client against the in-process fake Vault in `fake_vault/` (a real Vault
//! cannot be installed here; see that module's documentation for why and what it implements).
//!
//! What is checked:
//! - the exact requests: method, path (MPS layout, `/data/` vs `/metadata/`), `X-Vault-Token`,
//!   `X-Vault-Namespace`, content type and JSON body;
//! - parsing of real-shaped answers: versions, missing paths, soft-deleted versions, health;
//! - errors: 403 with Vault's `errors` array, GUID validation before any request, token file
//!   modes, no token or secret in any message, timeouts, no redirects followed;
//! - TLS: a rustls server with an rcgen certificate, trusted through `ca_file` only.

mod fake_vault;

use std::fs::{self, Permissions};
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use fake_vault::{Canned, FakeVault, Health, TOKEN, TlsIdentity};
use rampart_credentials::{
    AmtSecretError, AmtSecretStore, VaultClient, VaultConfig, VaultError, VaultTokenSource,
};
use serde_json::json;
use zeroize::Zeroizing;

const GUID: &str = "4c4c4544-0035-5910-8044-b4c04f4a4e32";
const DATA_PATH: &str = "/v1/secret/data/devices/4c4c4544-0035-5910-8044-b4c04f4a4e32";
const METADATA_PATH: &str = "/v1/secret/metadata/devices/4c4c4544-0035-5910-8044-b4c04f4a4e32";

fn config(address: String) -> VaultConfig {
    let mut config = VaultConfig::new(address, VaultTokenSource::Env("UNUSED".into()));
    config.connect_timeout = Duration::from_secs(2);
    config.request_timeout = Duration::from_secs(5);
    config
}

fn client(vault: &FakeVault) -> VaultClient {
    VaultClient::with_token(&config(vault.http_address()), token()).unwrap()
}

fn token() -> Zeroizing<String> {
    Zeroizing::new(TOKEN.to_owned())
}

#[test]
fn put_then_get_sends_exactly_the_mps_requests() {
    let vault = FakeVault::start();
    let client = client(&vault);

    client.put_amt_password(GUID, "Amt-P@ss\"w0rd").unwrap();
    let put = vault.last_request();
    assert_eq!(put.method, "POST");
    assert_eq!(put.path, DATA_PATH);
    assert_eq!(put.header("x-vault-token"), Some(TOKEN));
    assert_eq!(put.header("content-type"), Some("application/json"));
    assert_eq!(put.header("x-vault-namespace"), None);
    assert_eq!(
        put.json(),
        json!({"data": {"AMT_PASSWORD": "Amt-P@ss\"w0rd"}})
    );
    assert_eq!(
        put.body,
        br#"{"data":{"AMT_PASSWORD":"Amt-P@ss\"w0rd"}}"#.to_vec()
    );

    let got = client.get_amt_password(GUID).unwrap().unwrap();
    assert_eq!(got.as_str(), "Amt-P@ss\"w0rd");
    let get = vault.last_request();
    assert_eq!(get.method, "GET");
    assert_eq!(get.path, DATA_PATH);
    assert_eq!(get.header("x-vault-token"), Some(TOKEN));
    assert!(get.body.is_empty());

    // A second write is a new version; reads return the latest.
    client.put_amt_password(GUID, "second").unwrap();
    assert_eq!(
        vault.version_count("devices/4c4c4544-0035-5910-8044-b4c04f4a4e32"),
        2
    );
    assert_eq!(
        client.get_amt_password(GUID).unwrap().unwrap().as_str(),
        "second"
    );
    assert_eq!(vault.requests().len(), 4);
}

#[test]
fn upper_case_guids_use_the_canonical_path() {
    let vault = FakeVault::start();
    let client = client(&vault);
    client
        .put_amt_password(&GUID.to_ascii_uppercase(), "x")
        .unwrap();
    assert_eq!(vault.last_request().path, DATA_PATH);
}

#[test]
fn missing_and_soft_deleted_secrets_are_none() {
    let vault = FakeVault::start();
    let client = client(&vault);
    assert!(client.get_amt_password(GUID).unwrap().is_none());
    assert_eq!(vault.last_request().path, DATA_PATH);

    // Written by someone else without the field: no password.
    vault.insert(
        "devices/4c4c4544-0035-5910-8044-b4c04f4a4e32",
        json!({"MEBX_PASSWORD": "other"}),
    );
    assert!(client.get_amt_password(GUID).unwrap().is_none());

    // Latest version soft-deleted (DELETE on the data path): 404 with metadata.
    client.put_amt_password(GUID, "x").unwrap();
    let soft = ureq::Agent::new_with_defaults()
        .delete(format!("{}{DATA_PATH}", vault.http_address()))
        .header("X-Vault-Token", TOKEN)
        .call()
        .unwrap();
    assert_eq!(soft.status().as_u16(), 204);
    assert!(client.get_amt_password(GUID).unwrap().is_none());
}

#[test]
fn delete_removes_every_version_through_the_metadata_path() {
    let vault = FakeVault::start();
    let client = client(&vault);
    client.put_amt_password(GUID, "one").unwrap();
    client.put_amt_password(GUID, "two").unwrap();

    client.delete_device(GUID).unwrap();
    let delete = vault.last_request();
    assert_eq!(delete.method, "DELETE");
    assert_eq!(delete.path, METADATA_PATH);
    assert_eq!(delete.header("x-vault-token"), Some(TOKEN));
    assert!(delete.body.is_empty());
    assert_eq!(
        vault.version_count("devices/4c4c4544-0035-5910-8044-b4c04f4a4e32"),
        0
    );
    assert!(client.get_amt_password(GUID).unwrap().is_none());
    // Deleting again (nothing there) is fine.
    client.delete_device(GUID).unwrap();
}

#[test]
fn a_bad_token_is_a_403_with_vaults_errors_and_no_token_in_the_message() {
    let vault = FakeVault::start();
    let wrong = "hvs.WRONGtoken-should-not-leak";
    let client =
        VaultClient::with_token(&config(vault.http_address()), Zeroizing::new(wrong.into()))
            .unwrap();
    let err = client.get_amt_password(GUID).unwrap_err();
    match &err {
        VaultError::Status {
            method,
            path,
            status,
            errors,
        } => {
            assert_eq!(*method, "GET");
            assert_eq!(path, DATA_PATH);
            assert_eq!(*status, 403);
            assert_eq!(errors, &["permission denied".to_owned()]);
        }
        other => panic!("unexpected {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("403") && message.contains("permission denied"),
        "{message}"
    );
    assert!(!message.contains(wrong), "{message}");
    assert!(!format!("{err:?}").contains(wrong));
    assert!(!format!("{client:?}").contains(wrong));
    assert_eq!(vault.last_request().header("x-vault-token"), Some(wrong));

    let err = client
        .put_amt_password(GUID, "secret-pw-value")
        .unwrap_err();
    assert!(matches!(err, VaultError::Status { status: 403, .. }));
    assert!(!err.to_string().contains("secret-pw-value"));
    assert!(matches!(
        client.delete_device(GUID),
        Err(VaultError::Status { status: 403, .. })
    ));
}

#[test]
fn invalid_guids_are_refused_before_any_request() {
    let vault = FakeVault::start();
    let client = client(&vault);
    for bad in [
        "../../sys/seal",
        "4c4c4544-0035-5910-8044-b4c04f4a4e32/../x",
        "4c4c4544-0035-5910-8044-b4c04f4a4e3%",
        "",
        "4c4c4544003559108044b4c04f4a4e32",
    ] {
        assert!(matches!(
            client.get_amt_password(bad),
            Err(VaultError::InvalidGuid(_))
        ));
        assert!(matches!(
            client.put_amt_password(bad, "x"),
            Err(VaultError::InvalidGuid(_))
        ));
        assert!(matches!(
            client.delete_device(bad),
            Err(VaultError::InvalidGuid(_))
        ));
    }
    assert!(vault.requests().is_empty());
}

#[test]
fn health_reports_active_standby_sealed_and_uninitialised_without_the_token() {
    let vault = FakeVault::start();
    let client = client(&vault);
    for (state, status, ok, sealed, initialized) in [
        (Health::Active, 200, true, false, true),
        (Health::Standby, 429, true, false, true),
        (Health::Sealed, 503, false, true, true),
        (Health::Uninitialised, 501, false, true, false),
    ] {
        vault.set_health(state);
        let health = client.health().unwrap();
        assert_eq!(health.status, status, "{state:?}");
        assert_eq!(health.is_ok(), ok, "{state:?}");
        assert_eq!(health.sealed, sealed);
        assert_eq!(health.initialized, initialized);
        assert_eq!(health.standby, state == Health::Standby);
        assert_eq!(health.version.as_deref(), Some("1.15.6"));
        let request = vault.last_request();
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, "/v1/sys/health");
        assert_eq!(request.header("x-vault-token"), None);
    }
}

#[test]
fn namespace_header_and_custom_secrets_path() {
    let vault = FakeVault::start_with("kv", None);
    let mut config = config(vault.http_address());
    config.secrets_path = "kv/data/rampart/".into();
    config.namespace = Some("team-a".into());
    let client = VaultClient::with_token(&config, token()).unwrap();

    client.put_amt_password(GUID, "pw").unwrap();
    let put = vault.last_request();
    assert_eq!(put.path, format!("/v1/kv/data/rampart/devices/{GUID}"));
    assert_eq!(put.header("x-vault-namespace"), Some("team-a"));
    assert_eq!(
        client.get_amt_password(GUID).unwrap().unwrap().as_str(),
        "pw"
    );
    client.delete_device(GUID).unwrap();
    let delete = vault.last_request();
    assert_eq!(
        delete.path,
        format!("/v1/kv/metadata/rampart/devices/{GUID}")
    );
    assert_eq!(delete.header("x-vault-namespace"), Some("team-a"));
    assert!(vault.stored(&format!("rampart/devices/{GUID}")).is_none());
}

#[test]
fn odd_answers_become_typed_errors() {
    let vault = FakeVault::start();
    let client = client(&vault);

    vault.answer_next(Canned {
        status: 200,
        headers: vec![],
        body: "this is not json".into(),
    });
    assert!(matches!(
        client.get_amt_password(GUID),
        Err(VaultError::Response { status: 200, .. })
    ));

    // A non-string password is refused without quoting it.
    vault.answer_next(Canned {
        status: 200,
        headers: vec![],
        body: r#"{"data":{"data":{"AMT_PASSWORD":123456789},"metadata":{}}}"#.into(),
    });
    let err = client.get_amt_password(GUID).unwrap_err();
    assert!(!err.to_string().contains("123456789"), "{err}");

    // Long error lists are cut short and control characters dropped.
    let many: Vec<String> = (0..20)
        .map(|i| format!("error {i}\n{}", "x".repeat(400)))
        .collect();
    vault.answer_next(Canned {
        status: 500,
        headers: vec![],
        body: json!({ "errors": many }).to_string(),
    });
    match client.put_amt_password(GUID, "x").unwrap_err() {
        VaultError::Status { status, errors, .. } => {
            assert_eq!(status, 500);
            assert_eq!(errors.len(), 8);
            assert!(
                errors
                    .iter()
                    .all(|e| e.chars().count() <= 256 && !e.contains('\n'))
            );
        }
        other => panic!("unexpected {other:?}"),
    }

    vault.answer_next(Canned {
        status: 200,
        headers: vec![],
        body: "{}".into(),
    });
    assert!(matches!(client.health(), Err(VaultError::Response { .. })));
}

#[test]
fn redirects_are_not_followed() {
    let vault = FakeVault::start();
    let elsewhere = FakeVault::start();
    let client = client(&vault);
    vault.answer_next(Canned {
        status: 307,
        headers: vec![(
            "Location".into(),
            format!("{}{DATA_PATH}", elsewhere.http_address()),
        )],
        body: String::new(),
    });
    assert!(matches!(
        client.get_amt_password(GUID),
        Err(VaultError::Status { status: 307, .. })
    ));
    assert!(elsewhere.requests().is_empty(), "the token went elsewhere");
}

#[test]
fn timeouts_and_refused_connections_are_transport_errors() {
    let vault = FakeVault::start();
    vault.set_silent(true);
    let mut cfg = config(vault.http_address());
    cfg.request_timeout = Duration::from_millis(500);
    let client = VaultClient::with_token(&cfg, token()).unwrap();
    let start = Instant::now();
    let err = client.get_amt_password(GUID).unwrap_err();
    assert!(matches!(err, VaultError::Transport { .. }), "{err:?}");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    assert!(!err.to_string().contains(TOKEN));

    // Nothing listens on this port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client =
        VaultClient::with_token(&config(format!("http://127.0.0.1:{port}")), token()).unwrap();
    assert!(matches!(client.health(), Err(VaultError::Transport { .. })));
}

#[test]
fn plain_http_only_to_loopback() {
    for address in ["http://192.0.2.10:8200", "http://vault.example:8200"] {
        assert!(matches!(
            VaultClient::with_token(&config(address.into()), token()),
            Err(VaultError::InsecureAddress)
        ));
    }
    for address in [
        "http://127.0.0.1:8200",
        "http://localhost:8200",
        "http://[::1]:8200",
    ] {
        VaultClient::with_token(&config(address.into()), token()).unwrap();
    }
}

#[test]
fn token_file_must_be_private() {
    let vault = FakeVault::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault-token");
    fs::write(&path, format!("{TOKEN}\n")).unwrap();
    fs::set_permissions(&path, Permissions::from_mode(0o600)).unwrap();
    let mut cfg = config(vault.http_address());
    cfg.token = VaultTokenSource::File(path.clone());
    let client = VaultClient::new(&cfg).unwrap();
    client.put_amt_password(GUID, "x").unwrap();
    assert_eq!(vault.last_request().header("x-vault-token"), Some(TOKEN));

    fs::set_permissions(&path, Permissions::from_mode(0o640)).unwrap();
    let err = VaultClient::new(&cfg).unwrap_err();
    assert!(
        matches!(&err, VaultError::TokenFileMode { mode: 0o640, path: p } if *p == path),
        "{err:?}"
    );
    assert!(err.to_string().contains("0640"));

    fs::set_permissions(&path, Permissions::from_mode(0o600)).unwrap();
    fs::write(&path, "\n").unwrap();
    assert!(matches!(
        VaultClient::new(&cfg),
        Err(VaultError::InvalidToken(_))
    ));

    cfg.token = VaultTokenSource::File(dir.path().join("missing"));
    assert!(matches!(
        VaultClient::new(&cfg),
        Err(VaultError::TokenFile { .. })
    ));
    cfg.token = VaultTokenSource::Env("RAMPART_TEST_SURELY_UNSET_VARIABLE_4711".into());
    assert!(matches!(
        VaultClient::new(&cfg),
        Err(VaultError::TokenEnvMissing { .. })
    ));
}

const ENV_TOKEN_VAR: &str = "RAMPART_TEST_VAULT_TOKEN";

/// Runs [`env_token_child`] in a child process with the variable set (the workspace bans
/// `std::env::set_var`, which is not thread-safe).
#[test]
fn token_from_an_environment_variable() {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            "env_token_child",
            "--test-threads=1",
        ])
        .env(ENV_TOKEN_VAR, format!("  {TOKEN}\n"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("1 passed"), "{text}");
}

#[test]
#[ignore = "run by token_from_an_environment_variable with the variable set"]
fn env_token_child() {
    let vault = FakeVault::start();
    let mut cfg = config(vault.http_address());
    cfg.token = VaultTokenSource::Env(ENV_TOKEN_VAR.into());
    let client = VaultClient::new(&cfg).unwrap();
    client.get_amt_password(GUID).unwrap();
    assert_eq!(vault.last_request().header("x-vault-token"), Some(TOKEN));
}

#[test]
fn amt_secret_store_on_vault_keeps_nothing_in_the_database() {
    let vault = FakeVault::start();
    let store = AmtSecretStore::Vault(client(&vault));
    assert!(!store.uses_database());
    assert_eq!(store.store(GUID, "Amt-P@ssw0rd!").unwrap(), None);
    assert_eq!(
        vault.stored(&format!("devices/{GUID}")),
        Some(json!({"AMT_PASSWORD": "Amt-P@ssw0rd!"}))
    );
    // A blob argument is ignored for Vault.
    let loaded = store.load(GUID, Some(b"ignored")).unwrap().unwrap();
    assert_eq!(loaded.as_str(), "Amt-P@ssw0rd!");
    store.delete(GUID).unwrap();
    assert_eq!(vault.last_request().path, METADATA_PATH);
    assert!(store.load(GUID, None).unwrap().is_none());
    assert!(matches!(
        store.store("nope", "x"),
        Err(AmtSecretError::InvalidGuid(_))
    ));
}

// === TLS ===

struct Pki {
    ca_pem: String,
    identity: TlsIdentity,
}

/// A CA and a server certificate for `localhost` and 127.0.0.1.
fn pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "fake vault test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();

    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_der(ca.der(), &ca_key).unwrap();
    let leaf = params.signed_by(&key, &issuer).unwrap();
    Pki {
        ca_pem: ca.pem(),
        identity: TlsIdentity {
            chain: vec![leaf.der().to_vec()],
            key: key.serialize_der(),
        },
    }
}

fn write_ca(dir: &tempfile::TempDir, pem: &str) -> PathBuf {
    let path = dir.path().join("vault-ca.pem");
    fs::write(&path, pem).unwrap();
    path
}

#[test]
fn tls_with_the_configured_ca() {
    let pki = pki();
    let vault = FakeVault::start_with("secret", Some(pki.identity));
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(&dir, &pki.ca_pem);

    for host in ["localhost", "127.0.0.1"] {
        let mut cfg = config(vault.https_address(host));
        cfg.ca_file = Some(ca.clone());
        let client = VaultClient::with_token(&cfg, token()).unwrap();
        assert!(client.health().unwrap().is_ok());
        client.put_amt_password(GUID, "over-tls").unwrap();
        assert_eq!(
            client.get_amt_password(GUID).unwrap().unwrap().as_str(),
            "over-tls"
        );
        assert_eq!(vault.last_request().header("x-vault-token"), Some(TOKEN));
    }
}

#[test]
fn tls_refuses_servers_the_ca_did_not_sign() {
    let first = pki();
    let vault = FakeVault::start_with("secret", Some(first.identity));
    let dir = tempfile::tempdir().unwrap();

    // The Mozilla roots do not know the test CA.
    let client =
        VaultClient::with_token(&config(vault.https_address("localhost")), token()).unwrap();
    let err = client.get_amt_password(GUID).unwrap_err();
    assert!(matches!(err, VaultError::Transport { .. }), "{err:?}");

    // Nor does another CA.
    let other = pki();
    let mut cfg = config(vault.https_address("localhost"));
    cfg.ca_file = Some(write_ca(&dir, &other.ca_pem));
    let client = VaultClient::with_token(&cfg, token()).unwrap();
    assert!(matches!(
        client.get_amt_password(GUID),
        Err(VaultError::Transport { .. })
    ));

    // Nothing reached the application layer, so no token was sent.
    assert!(vault.requests().is_empty());
}

#[test]
fn ca_file_problems_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config("https://vault.example:8200".into());
    cfg.ca_file = Some(write_ca(&dir, "no certificates here\n"));
    assert!(matches!(
        VaultClient::with_token(&cfg, token()),
        Err(VaultError::CaFile { .. })
    ));
    cfg.ca_file = Some(dir.path().join("missing.pem"));
    assert!(matches!(
        VaultClient::with_token(&cfg, token()),
        Err(VaultError::CaFileRead { .. })
    ));
}
