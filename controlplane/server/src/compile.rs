//! The policy compiler: the store's records ([`PolicyData`]) to a policy [`Snapshot`].
//!
//! Every record either maps to a snapshot entry or is left out with a [`CompileWarning`], so
//! one bad row can never stop the whole policy from reaching the data plane; the result always
//! passes the snapshot's validation ([`rampart_policy::snapshot::encode`]).
//!
//! Mapping:
//! - accounts are sorted by name; humans get [`Verifier::ControlPlane`] (their Argon2id hash
//!   never leaves the control plane), service accounts [`Verifier::Digest`]; disabled accounts
//!   are kept, with their flag, so the data plane can say why it refuses them;
//! - ACL rules for an account that was left out are left out too;
//! - API keys that are revoked or expired at `now_ms` are left out silently (they are simply
//!   not usable);
//! - device GUIDs are parsed from the canonical text into 16 bytes in the order the hex digits
//!   are written ([`rampart_policy::snapshot::parse_guid`]), not SMBIOS's mixed-endian order.

use std::collections::HashSet;
use std::fmt;

use rampart_policy::acl::{self, Access};
use rampart_policy::cred;
use rampart_policy::snapshot::{
    self, AccountEntry, AccountKind, AclEntry, ApiKeyEntry, DeviceEntry, Limits, Role, Scope,
    Snapshot, Subject, Verifier,
};
use rampart_store::{self as store, PolicyData};

/// A record left out of the snapshot, or changed to fit it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileWarning {
    /// Which record: `account "name"`, `acl rule 12`, `api key "id"`, `device "guid"`.
    pub record: String,
    /// What is wrong with it.
    pub reason: &'static str,
    /// Whether it was left out (otherwise it was kept, adjusted as the reason says).
    pub skipped: bool,
}

impl fmt::Display for CompileWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.skipped { "left out" } else { "adjusted" };
        write!(f, "{}: {} ({what})", self.record, self.reason)
    }
}

/// A compiled snapshot and what did not fit in it.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The snapshot, valid by construction.
    pub snapshot: Snapshot,
    /// Records left out or adjusted.
    pub warnings: Vec<CompileWarning>,
}

/// Compiles the store's policy data at `now_ms` (Unix milliseconds) into a snapshot of
/// generation `data.generation`, signed off with `credential_key` (the HMAC key of every digest
/// in the store) and carrying `limits`.
pub fn compile(
    data: &PolicyData,
    credential_key: &[u8; 32],
    limits: Limits,
    now_ms: i64,
) -> Compiled {
    let mut warnings = Vec::new();
    let mut warn = |record: String, reason: &'static str, skipped: bool| {
        warnings.push(CompileWarning {
            record,
            reason,
            skipped,
        });
    };

    // Accounts, sorted and unique by name.
    let mut sorted: Vec<&store::Account> = data.accounts.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut accounts: Vec<AccountEntry> = Vec::with_capacity(sorted.len());
    for a in sorted {
        let record = format!("account {:?}", a.name);
        if !snapshot::valid_name(&a.name) {
            warn(record, "invalid name", true);
            continue;
        }
        if accounts.last().is_some_and(|prev| prev.name == a.name) {
            warn(record, "duplicate name", true);
            continue;
        }
        let (kind, role, verifier) = match (a.kind, &a.credential) {
            (store::AccountKind::Human, _) => (
                AccountKind::Human,
                a.role.map(role),
                // Whatever the credential, a person's login is checked by the control plane.
                Verifier::ControlPlane,
            ),
            (store::AccountKind::Service, credential) => {
                if a.role.is_some() {
                    warn(
                        record.clone(),
                        "service account with a role: role ignored",
                        false,
                    );
                }
                let verifier = match credential {
                    store::Credential::Digest(d) => Verifier::Digest(*d),
                    store::Credential::Argon2(_) => {
                        warn(
                            record,
                            "service account with a password hash: verified by the control plane",
                            false,
                        );
                        Verifier::ControlPlane
                    }
                };
                (AccountKind::Service, None, verifier)
            }
        };
        accounts.push(AccountEntry {
            name: a.name.clone(),
            kind,
            role,
            disabled: a.disabled,
            verifier,
        });
    }

    // ACL rules, only for accounts that made it.
    let names: HashSet<&str> = accounts.iter().map(|a| a.name.as_str()).collect();
    let mut acls = Vec::with_capacity(data.acls.len());
    for r in &data.acls {
        let record = format!("acl rule {}", r.id);
        let subject = match &r.subject {
            store::AclSubject::User(name) if names.contains(name.as_str()) => {
                Subject::User(name.clone())
            }
            store::AclSubject::User(_) => {
                warn(record, "rule for an unknown or left-out account", true);
                continue;
            }
            store::AclSubject::Role(r) => Subject::Role(role(*r)),
        };
        if !acl::valid_topic_filter(&r.topic) {
            warn(record, "invalid topic filter", true);
            continue;
        }
        acls.push(AclEntry {
            subject,
            topic: r.topic.clone(),
            access: access(r.access),
        });
    }

    // Usable API keys.
    let mut key_ids = HashSet::new();
    let mut api_keys = Vec::with_capacity(data.api_keys.len());
    for k in &data.api_keys {
        if k.revoked_at.is_some() || k.expires_at.is_some_and(|t| t <= now_ms) {
            continue;
        }
        let record = format!("api key {:?}", k.key_id);
        if !cred::valid_key_id(&k.key_id) {
            warn(record, "invalid key id", true);
            continue;
        }
        if !key_ids.insert(k.key_id.as_str()) {
            warn(record, "duplicate key id", true);
            continue;
        }
        api_keys.push(ApiKeyEntry {
            key_id: k.key_id.clone(),
            digest: k.digest,
            scope: scope(k.scope),
            expires_at_ms: k.expires_at,
        });
    }

    // The device allowlist.
    let mut guids = HashSet::new();
    let mut devices = Vec::with_capacity(data.devices.len());
    for d in &data.devices {
        let record = format!("device {:?}", d.guid);
        let Some(guid) = snapshot::parse_guid(&d.guid) else {
            warn(record, "invalid GUID", true);
            continue;
        };
        if !guids.insert(guid) {
            warn(record, "duplicate GUID", true);
            continue;
        }
        if !snapshot::valid_name(&d.mps_username) {
            warn(record, "invalid MPS user name", true);
            continue;
        }
        if !snapshot::valid_tenant_id(&d.tenant_id) {
            warn(record, "invalid tenant id", true);
            continue;
        }
        devices.push(DeviceEntry {
            guid,
            mps_username: d.mps_username.clone(),
            mps_digest: d.mps_digest,
            tenant_id: d.tenant_id.clone(),
        });
    }

    Compiled {
        snapshot: Snapshot {
            generation: data.generation,
            created_at_ms: now_ms,
            credential_key: *credential_key,
            accounts,
            acls,
            api_keys,
            devices,
            limits,
        },
        warnings,
    }
}

fn role(r: store::Role) -> Role {
    match r {
        store::Role::Admin => Role::Admin,
        store::Role::Operator => Role::Operator,
        store::Role::Viewer => Role::Viewer,
    }
}

fn access(a: store::Access) -> Access {
    match a {
        store::Access::Read => Access::Read,
        store::Access::Write => Access::Write,
        store::Access::Readwrite => Access::ReadWrite,
        store::Access::Subscribe => Access::Subscribe,
        store::Access::Deny => Access::Deny,
    }
}

fn scope(s: store::Scope) -> Scope {
    match s {
        store::Scope::Read => Scope::Read,
        store::Scope::Devices => Scope::Devices,
        store::Scope::Admin => Scope::Admin,
    }
}

#[cfg(test)]
mod tests {
    use rampart_policy::acl::AclAction;
    use rampart_policy::cred::{DOMAIN_ACCOUNT, DOMAIN_API_KEY, DOMAIN_DEVICE};
    use rampart_policy::snapshot::{ApiKeyDenied, AuthDecision, DeviceDecision};

    use super::*;

    const KEY: [u8; 32] = [3; 32];

    fn account(
        name: &str,
        kind: store::AccountKind,
        credential: store::Credential,
    ) -> store::Account {
        store::Account {
            id: 0,
            name: name.into(),
            kind,
            role: None,
            disabled: false,
            credential,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn rule(
        id: i64,
        subject: store::AclSubject,
        topic: &str,
        access: store::Access,
    ) -> store::AclRule {
        store::AclRule {
            id,
            subject,
            topic: topic.into(),
            access,
            created_at: 0,
        }
    }

    fn key(
        key_id: &str,
        secret: &str,
        expires_at: Option<i64>,
        revoked_at: Option<i64>,
    ) -> store::ApiKey {
        store::ApiKey {
            id: 0,
            key_id: key_id.into(),
            name: "k".into(),
            scope: store::Scope::Devices,
            digest: cred::digest(&KEY, DOMAIN_API_KEY, secret.as_bytes()),
            created_by: "alice".into(),
            created_at: 0,
            expires_at,
            last_used_at: None,
            revoked_at,
        }
    }

    fn device(guid: &str, digest: Option<[u8; 32]>) -> store::Device {
        store::Device {
            guid: guid.into(),
            hostname: None,
            friendly_name: None,
            tags: vec![],
            tenant_id: String::new(),
            dns_suffix: None,
            mps_username: "admin".into(),
            mps_digest: digest,
            amt_password: Some(vec![1, 2, 3]),
            device_info: None,
            created_at: 0,
            updated_at: 0,
            connection: Default::default(),
        }
    }

    fn data() -> PolicyData {
        let mut alice = account(
            "alice",
            store::AccountKind::Human,
            store::Credential::Argon2("$argon2id$v=19$m=19456,t=2,p=1$x$y".into()),
        );
        alice.role = Some(store::Role::Operator);
        let mut off = account(
            "off",
            store::AccountKind::Service,
            store::Credential::Digest(cred::digest(&KEY, DOMAIN_ACCOUNT, b"pw")),
        );
        off.disabled = true;
        let mut roled = account(
            "roled",
            store::AccountKind::Service,
            store::Credential::Argon2("$argon2id$...".into()),
        );
        roled.role = Some(store::Role::Admin);
        let (id, secret) = cred::api_key_from_random(&[1; 64]);
        let (id2, _) = cred::api_key_from_random(&[2; 64]);
        let (id3, _) = cred::api_key_from_random(&[3; 64]);
        PolicyData {
            generation: 12,
            accounts: vec![
                account(
                    "cam",
                    store::AccountKind::Service,
                    store::Credential::Digest(cred::digest(&KEY, DOMAIN_ACCOUNT, b"cam-pw")),
                ),
                alice,
                off,
                roled,
                account(
                    "bad\nname",
                    store::AccountKind::Service,
                    store::Credential::Digest([0; 32]),
                ),
            ],
            acls: vec![
                rule(
                    1,
                    store::AclSubject::User("cam".into()),
                    "cams/%u/#",
                    store::Access::Readwrite,
                ),
                rule(
                    2,
                    store::AclSubject::Role(store::Role::Operator),
                    "cams/+/status",
                    store::Access::Read,
                ),
                rule(
                    3,
                    store::AclSubject::User("bad\nname".into()),
                    "#",
                    store::Access::Read,
                ),
                rule(
                    4,
                    store::AclSubject::User("cam".into()),
                    "a/#/b",
                    store::Access::Read,
                ),
                rule(
                    5,
                    store::AclSubject::User("cam".into()),
                    "cams/%u/secret",
                    store::Access::Deny,
                ),
            ],
            api_keys: vec![
                key(&id, &secret, None, None),
                key(&id2, "x", Some(1_000), None),
                key(&id3, "x", None, Some(5)),
                key("not-a-key-id", "x", None, None),
            ],
            devices: vec![
                device(
                    "01234567-89AB-cdef-0123-456789abcdef",
                    Some(cred::digest(&KEY, DOMAIN_DEVICE, b"dev")),
                ),
                device("01234567-89ab-cdef-0123-456789abcdef", None),
                device("not-a-guid", None),
            ],
        }
    }

    #[test]
    fn maps_store_records() {
        let Compiled { snapshot, warnings } = compile(&data(), &KEY, Limits::default(), 2_000);
        let names: Vec<&str> = snapshot.accounts.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["alice", "cam", "off", "roled"]);
        assert_eq!(snapshot.generation, 12);
        assert_eq!(snapshot.created_at_ms, 2_000);
        assert_eq!(snapshot.accounts[0].verifier, Verifier::ControlPlane);
        assert_eq!(snapshot.accounts[0].role, Some(Role::Operator));
        assert!(matches!(snapshot.accounts[1].verifier, Verifier::Digest(_)));
        assert!(snapshot.accounts[2].disabled);
        assert_eq!(snapshot.accounts[3].role, None);
        assert_eq!(snapshot.accounts[3].verifier, Verifier::ControlPlane);
        assert_eq!(snapshot.acls.len(), 3);
        assert_eq!(snapshot.api_keys.len(), 1);
        assert_eq!(snapshot.devices.len(), 1);
        assert_eq!(
            snapshot.devices[0].guid,
            snapshot::parse_guid("01234567-89ab-cdef-0123-456789abcdef").unwrap()
        );
        let mut reasons: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        reasons.sort();
        assert_eq!(
            reasons,
            [
                "account \"bad\\nname\": invalid name (left out)",
                "account \"roled\": service account with a password hash: verified by the control plane (adjusted)",
                "account \"roled\": service account with a role: role ignored (adjusted)",
                "acl rule 3: rule for an unknown or left-out account (left out)",
                "acl rule 4: invalid topic filter (left out)",
                "api key \"not-a-key-id\": invalid key id (left out)",
                "device \"01234567-89ab-cdef-0123-456789abcdef\": duplicate GUID (left out)",
                "device \"not-a-guid\": invalid GUID (left out)",
            ]
        );
    }

    #[test]
    fn compiled_snapshot_is_enforceable() {
        let data = data();
        let compiled = compile(&data, &KEY, Limits::default(), 2_000);
        let bytes = snapshot::encode(&compiled.snapshot).unwrap();
        let policy = snapshot::decode(&bytes).unwrap();
        assert_eq!(policy.generation(), 12);
        assert_eq!(policy.authenticate("cam", b"cam-pw"), AuthDecision::Allowed);
        assert_eq!(
            policy.authenticate("alice", b"x"),
            AuthDecision::AskControlPlane
        );
        assert!(policy.check("cam", "c", AclAction::Publish("cams/cam/x")));
        assert!(!policy.check("cam", "c", AclAction::Publish("cams/cam/secret")));
        assert!(policy.check("alice", "c", AclAction::Receive("cams/cam/status")));
        let (id, secret) = cred::api_key_from_random(&[1; 64]);
        let token = cred::format_api_key(&id, &secret);
        assert_eq!(policy.api_key(&token, 2_000), Ok(Scope::Devices));
        let (id3, _) = cred::api_key_from_random(&[3; 64]);
        let revoked = cred::format_api_key(&id3, &"x".repeat(43));
        assert_eq!(policy.api_key(&revoked, 0), Err(ApiKeyDenied::Unknown));
        let guid = snapshot::parse_guid("01234567-89ab-cdef-0123-456789abcdef").unwrap();
        assert_eq!(
            policy.verify_device(&guid, "admin", b"dev"),
            DeviceDecision::Allowed
        );
    }
}
