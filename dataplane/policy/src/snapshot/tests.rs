use super::*;
use crate::acl::AclAction;
use crate::cred::{self, DOMAIN_ACCOUNT, DOMAIN_API_KEY, DOMAIN_DEVICE};

const KEY: [u8; 32] = [42; 32];
const GUID: &str = "01234567-89ab-cdef-0123-456789abcdef";

fn service(name: &str, password: &str) -> AccountEntry {
    AccountEntry {
        name: name.into(),
        kind: AccountKind::Service,
        role: None,
        disabled: false,
        verifier: Verifier::Digest(cred::digest(&KEY, DOMAIN_ACCOUNT, password.as_bytes())),
    }
}

fn human(name: &str, role: Role) -> AccountEntry {
    AccountEntry {
        name: name.into(),
        kind: AccountKind::Human,
        role: Some(role),
        disabled: false,
        verifier: Verifier::ControlPlane,
    }
}

fn acl(subject: Subject, topic: &str, access: Access) -> AclEntry {
    AclEntry {
        subject,
        topic: topic.into(),
        access,
    }
}

/// An API key made from `seed`: (token, entry).
pub(crate) fn api_key(seed: u8, scope: Scope, expires_at_ms: Option<i64>) -> (String, ApiKeyEntry) {
    let (id, secret) = cred::api_key_from_random(&[seed; 64]);
    let entry = ApiKeyEntry {
        key_id: id.clone(),
        digest: cred::digest(&KEY, DOMAIN_API_KEY, secret.as_bytes()),
        scope,
        expires_at_ms,
    };
    (cred::format_api_key(&id, &secret), entry)
}

fn sample(generation: u64) -> Snapshot {
    let mut disabled = service("old-cam", "pw-old");
    disabled.disabled = true;
    Snapshot {
        generation,
        created_at_ms: 1_700_000_000_000,
        credential_key: KEY,
        accounts: vec![
            human("alice", Role::Admin),
            human("bob", Role::Viewer),
            service("cam1", "pw-cam1"),
            disabled,
        ],
        acls: vec![
            acl(Subject::User("cam1".into()), "cams/%u/#", Access::ReadWrite),
            acl(Subject::User("cam1".into()), "cams/%u/secret", Access::Deny),
            acl(Subject::User("old-cam".into()), "#", Access::ReadWrite),
            acl(Subject::Role(Role::Admin), "#", Access::ReadWrite),
            acl(Subject::Role(Role::Viewer), "cams/+/status", Access::Read),
        ],
        api_keys: vec![
            api_key(1, Scope::Read, None).1,
            api_key(2, Scope::Admin, Some(2_000)).1,
        ],
        devices: vec![
            DeviceEntry {
                guid: parse_guid(GUID).unwrap(),
                mps_username: "admin".into(),
                mps_digest: Some(cred::digest(&KEY, DOMAIN_DEVICE, b"dev-pw")),
                tenant_id: String::new(),
            },
            DeviceEntry {
                guid: [9; 16],
                mps_username: "admin".into(),
                mps_digest: None,
                tenant_id: "t1".into(),
            },
        ],
        limits: Limits::default(),
    }
}

/// A small valid encoding, also written as the fuzz seed (see `fuzz/seeds/snapshot_decode`).
pub(crate) fn sample_bytes() -> Vec<u8> {
    encode(&sample(7)).unwrap()
}

#[test]
fn round_trip() {
    let snap = sample(7);
    let bytes = encode(&snap).unwrap();
    assert_eq!(&bytes[..8], b"RMPTSNAP");
    assert_eq!(peek_generation(&bytes), Some(7));
    assert_eq!(decode_snapshot(&bytes).unwrap(), snap);
    let policy = decode(&bytes).unwrap();
    assert_eq!(policy.generation(), 7);
    assert_eq!(policy.created_at_ms(), 1_700_000_000_000);
    assert_eq!(policy.limits(), &Limits::default());
    assert_eq!(
        policy.counts(),
        Counts {
            accounts: 4,
            acls: 5,
            api_keys: 2,
            devices: 2
        }
    );
    // Debug never shows the key or a digest.
    let debug = format!("{snap:?} {policy:?}");
    assert!(!debug.contains("42, 42"), "{debug}");
    assert!(debug.contains("<redacted>"));
}

#[test]
fn header_errors() {
    let good = sample_bytes();
    let mut b = good.clone();
    b[0] = b'X';
    assert_eq!(decode(&b).unwrap_err(), SnapshotError::Magic);
    let mut b = good.clone();
    b[8] = 2;
    assert_eq!(decode(&b).unwrap_err(), SnapshotError::Schema(2));
    let mut b = good.clone();
    b[12] = 1;
    assert_eq!(decode(&b).unwrap_err(), SnapshotError::Reserved);
    let mut b = good.clone();
    b[16] = 8;
    assert_eq!(
        decode(&b).unwrap_err(),
        SnapshotError::Generation { header: 8, body: 7 }
    );
    let mut b = good.clone();
    b[24] ^= 1;
    assert_eq!(decode(&b).unwrap_err(), SnapshotError::Length);
    let mut b = good.clone();
    b[32] ^= 1;
    assert_eq!(decode(&b).unwrap_err(), SnapshotError::Checksum);
    let mut b = good.clone();
    let last = b.len() - 1;
    b[last] ^= 0x55;
    assert_eq!(decode(&b).unwrap_err(), SnapshotError::Checksum);
    assert_eq!(decode(&good[..63]).unwrap_err(), SnapshotError::Truncated);
    assert_eq!(decode(&[]).unwrap_err(), SnapshotError::Truncated);
    assert_eq!(
        decode(&good[..good.len() - 1]).unwrap_err(),
        SnapshotError::Length
    );
    let huge = vec![0u8; MAX_SNAPSHOT + 1];
    assert_eq!(
        decode(&huge).unwrap_err(),
        SnapshotError::TooLarge(MAX_SNAPSHOT + 1)
    );
    assert_eq!(peek_generation(&huge), None);
    assert_eq!(peek_generation(b"RMPTSNAP"), None);
}

/// Re-frames a body with a correct header, so the body checks are what fails.
fn reframe(generation: u64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&SCHEMA_VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&generation.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&Sha256::digest(body));
    out.extend_from_slice(body);
    out
}

#[test]
fn corrupt_bodies_with_valid_checksums_are_refused() {
    let good = sample_bytes();
    let body = &good[HEADER_LEN..];
    assert!(decode(&reframe(7, body)).is_ok());
    assert_eq!(decode(&reframe(7, &[])).unwrap_err(), SnapshotError::Body);
    assert_eq!(
        decode(&reframe(7, &body[..body.len() / 2])).unwrap_err(),
        SnapshotError::Body
    );
    // Flip every byte in turn: never a panic; whatever decodes still passed validation.
    for i in 0..body.len() {
        for flip in [0x01, 0x80, 0xff] {
            let mut b = body.to_vec();
            b[i] ^= flip;
            if let Ok(policy) = decode(&reframe(7, &b)) {
                assert_eq!(policy.generation(), 7);
            }
        }
    }
}

fn reject(mut edit: impl FnMut(&mut Snapshot)) -> SnapshotError {
    let mut s = sample(3);
    edit(&mut s);
    let err = encode(&s).unwrap_err();
    // What `encode` refuses, `decode` refuses too.
    let bytes = encode_unvalidated(&s).unwrap();
    assert_eq!(decode(&bytes).unwrap_err(), err);
    err
}

fn problem(table: Table, index: usize, problem: Problem) -> SnapshotError {
    SnapshotError::Invalid {
        table,
        index,
        problem,
    }
}

#[test]
fn semantic_errors() {
    use Problem::*;
    assert_eq!(
        reject(|s| s.accounts[1].name = String::new()),
        problem(Table::Accounts, 1, Name)
    );
    assert_eq!(
        reject(|s| s.accounts[1].name = "b\nb".into()),
        problem(Table::Accounts, 1, Name)
    );
    assert_eq!(
        reject(|s| s.accounts[1].name = "b".repeat(257)),
        problem(Table::Accounts, 1, Name)
    );
    assert_eq!(
        reject(|s| s.accounts.swap(0, 1)),
        problem(Table::Accounts, 1, Unsorted)
    );
    assert_eq!(
        reject(|s| s.accounts[1].name = "alice".into()),
        problem(Table::Accounts, 1, Duplicate)
    );
    assert_eq!(
        reject(|s| s.accounts[2].role = Some(Role::Admin)),
        problem(Table::Accounts, 2, ServiceWithRole)
    );
    assert_eq!(
        reject(|s| s.acls[0].topic = "a/#/b".into()),
        problem(Table::Acls, 0, Topic)
    );
    assert_eq!(
        reject(|s| s.acls[0].topic = String::new()),
        problem(Table::Acls, 0, Topic)
    );
    assert_eq!(
        reject(|s| s.acls[1].subject = Subject::User("mallory".into())),
        problem(Table::Acls, 1, UnknownAccount)
    );
    assert_eq!(
        reject(|s| s.api_keys[1].key_id = "short".into()),
        problem(Table::ApiKeys, 1, KeyId)
    );
    assert_eq!(
        reject(|s| s.api_keys[1].key_id = s.api_keys[0].key_id.clone()),
        problem(Table::ApiKeys, 1, Duplicate)
    );
    assert_eq!(
        reject(|s| s.devices[1].guid = s.devices[0].guid),
        problem(Table::Devices, 1, Duplicate)
    );
    assert_eq!(
        reject(|s| s.devices[0].mps_username = String::new()),
        problem(Table::Devices, 0, MpsUsername)
    );
    assert_eq!(
        reject(|s| s.devices[0].tenant_id = "\u{7f}".into()),
        problem(Table::Devices, 0, TenantId)
    );
    let err = reject(|s| s.acls[0].topic = "+x".into());
    assert_eq!(err.reason(), "invalid_acls");
    assert_eq!(
        err.to_string(),
        "invalid snapshot: acls[0]: invalid topic filter"
    );
}

#[test]
fn reason_tokens_are_link_safe() {
    let all = [
        SnapshotError::TooLarge(1),
        SnapshotError::Truncated,
        SnapshotError::Magic,
        SnapshotError::Schema(9),
        SnapshotError::Reserved,
        SnapshotError::Length,
        SnapshotError::Checksum,
        SnapshotError::Body,
        SnapshotError::Generation { header: 1, body: 2 },
        problem(Table::Accounts, 0, Problem::Name),
        problem(Table::Acls, 0, Problem::Name),
        problem(Table::ApiKeys, 0, Problem::Name),
        problem(Table::Devices, 0, Problem::Name),
        SnapshotError::Encode,
    ];
    for e in all {
        assert!(crate::link::valid_reason(e.reason()), "{e:?}");
    }
}

#[test]
fn authenticate() {
    let p = Policy::new(sample(1)).unwrap();
    assert_eq!(p.authenticate("cam1", b"pw-cam1"), AuthDecision::Allowed);
    assert_eq!(
        p.authenticate("cam1", b"pw-cam2"),
        AuthDecision::Denied(DenyReason::BadPassword)
    );
    assert_eq!(
        p.authenticate("cam1", b""),
        AuthDecision::Denied(DenyReason::BadPassword)
    );
    assert_eq!(
        p.authenticate("old-cam", b"pw-old"),
        AuthDecision::Denied(DenyReason::Disabled)
    );
    assert_eq!(
        p.authenticate("nobody", b"pw-cam1"),
        AuthDecision::Denied(DenyReason::UnknownUser)
    );
    assert_eq!(p.authenticate("alice", b"x"), AuthDecision::AskControlPlane);
    let mut s = sample(1);
    s.accounts[0].disabled = true;
    let p = Policy::new(s).unwrap();
    assert_eq!(
        p.authenticate("alice", b"x"),
        AuthDecision::Denied(DenyReason::Disabled)
    );
    assert_eq!(DenyReason::BadPassword.as_str(), "bad_password");
}

#[test]
fn check() {
    let p = Policy::new(sample(1)).unwrap();
    use AclAction::*;
    assert!(p.check("cam1", "c", Publish("cams/cam1/temp")));
    assert!(p.check("cam1", "c", Subscribe("cams/cam1/cmd/#")));
    assert!(!p.check("cam1", "c", Publish("cams/cam1/secret")));
    assert!(!p.check("cam1", "c", Subscribe("cams/cam1/#")));
    assert!(!p.check("cam1", "c", Publish("cams/cam2/temp")));
    // Role rules: admins get everything, viewers read status.
    assert!(p.check("alice", "c", Publish("anything/at/all")));
    assert!(!p.check("alice", "c", Publish("$SYS/x")));
    assert!(p.check("bob", "c", Receive("cams/cam1/status")));
    assert!(p.check("bob", "c", Subscribe("cams/+/status")));
    assert!(!p.check("bob", "c", Publish("cams/cam1/status")));
    // Disabled and unknown accounts: nothing, whatever their rules say.
    assert!(!p.check("old-cam", "c", Publish("a")));
    assert!(!p.check("mallory", "c", Publish("a")));
}

#[test]
fn api_keys() {
    let p = Policy::new(sample(1)).unwrap();
    let (read, _) = api_key(1, Scope::Read, None);
    let (admin, _) = api_key(2, Scope::Admin, Some(2_000));
    let (unknown, _) = api_key(3, Scope::Admin, None);
    assert_eq!(p.api_key(&read, 0), Ok(Scope::Read));
    assert_eq!(p.api_key(&admin, 1_999), Ok(Scope::Admin));
    assert_eq!(p.api_key(&admin, 2_000), Err(ApiKeyDenied::Expired));
    assert_eq!(p.api_key(&unknown, 0), Err(ApiKeyDenied::Unknown));
    // Same key id, another secret (with a valid checksum): the secret is what is refused.
    let id = &read[4..16];
    let forged = cred::format_api_key(id, &"A".repeat(43));
    assert_eq!(p.api_key(&forged, 0), Err(ApiKeyDenied::BadSecret));
    let mut typo = read.clone().into_bytes();
    typo[40] = if typo[40] == b'Q' { b'R' } else { b'Q' };
    let typo = String::from_utf8(typo).unwrap();
    assert_eq!(
        p.api_key(&typo, 0),
        Err(ApiKeyDenied::Malformed(cred::TokenError::Checksum))
    );
    assert_eq!(
        p.api_key("Bearer xyz", 0),
        Err(ApiKeyDenied::Malformed(cred::TokenError::Length))
    );
}

#[test]
fn devices() {
    let p = Policy::new(sample(1)).unwrap();
    let guid = parse_guid(GUID).unwrap();
    assert_eq!(p.device(&guid).unwrap().mps_username, "admin");
    assert!(p.device(&[0; 16]).is_none());
    assert_eq!(
        p.verify_device(&guid, "admin", b"dev-pw"),
        DeviceDecision::Allowed
    );
    assert_eq!(
        p.verify_device(&guid, "admin", b"wrong"),
        DeviceDecision::BadCredentials
    );
    assert_eq!(
        p.verify_device(&guid, "root", b"dev-pw"),
        DeviceDecision::BadCredentials
    );
    assert_eq!(
        p.verify_device(&[9; 16], "admin", b""),
        DeviceDecision::NoCredential
    );
    assert_eq!(
        p.verify_device(&[1; 16], "admin", b"dev-pw"),
        DeviceDecision::NotAllowlisted
    );
}

#[test]
fn removals_take_effect_in_the_next_generation() {
    let gen1 = decode(&encode(&sample(1)).unwrap()).unwrap();
    let guid = parse_guid(GUID).unwrap();
    let (read, _) = api_key(1, Scope::Read, None);
    assert_eq!(gen1.authenticate("cam1", b"pw-cam1"), AuthDecision::Allowed);
    assert!(gen1.check("cam1", "c", AclAction::Publish("cams/cam1/x")));
    assert_eq!(gen1.api_key(&read, 0), Ok(Scope::Read));
    assert!(gen1.device(&guid).is_some());

    // Generation 2: cam1 deleted (with its rules), the read key revoked, the device removed.
    let mut s = sample(2);
    s.accounts.retain(|a| a.name != "cam1");
    s.acls.retain(|r| r.subject != Subject::User("cam1".into()));
    s.api_keys.remove(0);
    s.devices.remove(0);
    let gen2 = decode(&encode(&s).unwrap()).unwrap();
    assert_eq!(
        gen2.authenticate("cam1", b"pw-cam1"),
        AuthDecision::Denied(DenyReason::UnknownUser)
    );
    assert!(!gen2.check("cam1", "c", AclAction::Publish("cams/cam1/x")));
    assert_eq!(gen2.api_key(&read, 0), Err(ApiKeyDenied::Unknown));
    assert!(gen2.device(&guid).is_none());
    assert_eq!(
        gen2.verify_device(&guid, "admin", b"dev-pw"),
        DeviceDecision::NotAllowlisted
    );
}

#[test]
fn guids() {
    let g = parse_guid(GUID).unwrap();
    assert_eq!(
        g,
        [
            0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
            0xcd, 0xef
        ]
    );
    assert_eq!(format_guid(&g), GUID);
    assert_eq!(parse_guid(&GUID.to_uppercase()), Some(g));
    for bad in [
        "",
        "01234567-89ab-cdef-0123-456789abcde",
        "01234567-89ab-cdef-0123-456789abcdeg",
        "0123456789ab-cdef-0123-456789abcdef-",
        "01234567+89ab-cdef-0123-456789abcdef",
        "01234567-89ab-cdef-0123-456789abcdéf",
    ] {
        assert_eq!(parse_guid(bad), None, "{bad:?}");
    }
}

#[test]
fn empty_snapshot_is_valid() {
    let s = Snapshot {
        generation: 0,
        created_at_ms: 0,
        credential_key: [0; 32],
        accounts: vec![],
        acls: vec![],
        api_keys: vec![],
        devices: vec![],
        limits: Limits::default(),
    };
    let p = decode(&encode(&s).unwrap()).unwrap();
    assert_eq!(p.counts(), Counts::default());
    assert!(!p.check("a", "b", AclAction::Receive("x")));
}

/// Writes the `snapshot_decode` fuzz seeds: a valid encoding and its bare body. Run it after a
/// format change: `cargo test -p rampart-policy -- --ignored write_fuzz_seeds`.
#[test]
#[ignore = "writes files into fuzz/seeds"]
fn write_fuzz_seeds() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/snapshot_decode");
    std::fs::create_dir_all(&dir).unwrap();
    let bytes = sample_bytes();
    std::fs::write(dir.join("valid"), &bytes).unwrap();
    std::fs::write(dir.join("valid_body"), &bytes[HEADER_LEN..]).unwrap();
    let empty = Snapshot {
        generation: 1,
        created_at_ms: 0,
        credential_key: [0; 32],
        accounts: vec![],
        acls: vec![],
        api_keys: vec![],
        devices: vec![],
        limits: Limits::default(),
    };
    std::fs::write(
        dir.join("empty_body"),
        &encode(&empty).unwrap()[HEADER_LEN..],
    )
    .unwrap();
}
