//! The policy snapshot and the decisions the data plane makes with it.
//!
//! - `policy/snapshot`: encode and decode (rkyv validation, semantic validation, index build) of
//!   a realistic snapshot: 10k accounts, 1k ACL rules, 10k API keys, 10k devices.
//! - `policy/acl`: one ACL decision for a user with 100 rules of their own plus role rules.
//! - `policy/auth`: a service account's password check (one HMAC-SHA256 and a constant-time
//!   compare), an unknown user, and an API-key check.

#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rampart_policy::acl::{Access, AclAction};
use rampart_policy::cred::{self, DOMAIN_ACCOUNT, DOMAIN_API_KEY, DOMAIN_DEVICE};
use rampart_policy::snapshot::{
    self, AccountEntry, AccountKind, AclEntry, ApiKeyEntry, AuthDecision, DeviceEntry, Limits,
    Role, Scope, Snapshot, Subject, Verifier,
};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const KEY: [u8; 32] = [0x42; 32];
const ACCOUNTS: usize = 10_000;
const HUMANS: usize = 1_000;
const ACL_USERS: usize = 10;
const RULES_PER_USER: usize = 100;
const API_KEYS: usize = 10_000;
const DEVICES: usize = 10_000;

fn account_name(i: usize) -> String {
    format!("svc-{i:05}")
}

/// 100 rules for one user: literals, `+`, `#` and `%u`, with the matching rule last and a deny.
fn rules_for(user: &str) -> Vec<AclEntry> {
    let mut rules: Vec<AclEntry> = (0..RULES_PER_USER - 2)
        .map(|i| AclEntry {
            subject: Subject::User(user.to_owned()),
            topic: match i % 4 {
                0 => format!("site/{i}/sensors/+/temp"),
                1 => format!("site/{i}/cams/#"),
                2 => format!("devices/%u/{i}/out"),
                _ => format!("plant/line{i}/status"),
            },
            access: if i % 3 == 0 {
                Access::Read
            } else {
                Access::ReadWrite
            },
        })
        .collect();
    rules.push(AclEntry {
        subject: Subject::User(user.to_owned()),
        topic: "devices/%u/secret/#".into(),
        access: Access::Deny,
    });
    rules.push(AclEntry {
        subject: Subject::User(user.to_owned()),
        topic: "devices/%u/#".into(),
        access: Access::ReadWrite,
    });
    rules
}

fn realistic() -> Snapshot {
    let mut accounts: Vec<AccountEntry> = (0..ACCOUNTS)
        .map(|i| {
            let human = i < HUMANS;
            AccountEntry {
                name: if human {
                    format!("human-{i:05}")
                } else {
                    account_name(i)
                },
                kind: if human {
                    AccountKind::Human
                } else {
                    AccountKind::Service
                },
                role: human.then_some(Role::Viewer),
                disabled: i % 97 == 0,
                verifier: if human {
                    Verifier::ControlPlane
                } else {
                    Verifier::Digest(cred::digest(
                        &KEY,
                        DOMAIN_ACCOUNT,
                        account_name(i).as_bytes(),
                    ))
                },
            }
        })
        .collect();
    accounts.sort_by(|a, b| a.name.cmp(&b.name));
    let mut acls: Vec<AclEntry> = (0..ACL_USERS)
        .flat_map(|u| rules_for(&account_name(HUMANS + u + 1)))
        .collect();
    acls.truncate(ACL_USERS * RULES_PER_USER);
    let api_keys = (0..API_KEYS)
        .map(|i| {
            let mut seed = [0u8; 64];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            let (key_id, secret) = cred::api_key_from_random(&seed);
            ApiKeyEntry {
                key_id,
                digest: cred::digest(&KEY, DOMAIN_API_KEY, secret.as_bytes()),
                scope: Scope::Read,
                expires_at_ms: (i % 2 == 0).then_some(4_000_000_000_000),
            }
        })
        .collect();
    let devices = (0..DEVICES)
        .map(|i| {
            let mut guid = [0u8; 16];
            guid[..8].copy_from_slice(&(i as u64).to_be_bytes());
            DeviceEntry {
                guid,
                mps_username: "admin".into(),
                mps_digest: Some(cred::digest(&KEY, DOMAIN_DEVICE, b"device password")),
                tenant_id: String::new(),
            }
        })
        .collect();
    Snapshot {
        generation: 1,
        created_at_ms: 0,
        credential_key: KEY,
        accounts,
        acls,
        api_keys,
        devices,
        limits: Limits::default(),
    }
}

fn snapshot_codec(c: &mut Criterion) {
    let snap = realistic();
    let bytes = snapshot::encode(&snap).unwrap();
    let policy = snapshot::decode(&bytes).unwrap();
    assert_eq!(policy.counts().accounts, ACCOUNTS);
    assert_eq!(policy.counts().acls, ACL_USERS * RULES_PER_USER);

    let mut group = c.benchmark_group("policy/snapshot");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.sample_size(10);
    group.bench_function("encode_10k", |b| {
        b.iter(|| snapshot::encode(black_box(&snap)))
    });
    group.bench_function("decode_10k", |b| {
        b.iter(|| snapshot::decode(black_box(&bytes)))
    });
    group.finish();
}

fn acl_check(c: &mut Criterion) {
    let policy = snapshot::decode(&snapshot::encode(&realistic()).unwrap()).unwrap();
    let user = account_name(HUMANS + 1);
    let allowed = format!("devices/{user}/telemetry");
    let denied = format!("devices/{user}/secret/key");
    let sub = format!("devices/{user}/cmd/#");
    assert!(policy.check(&user, "c1", AclAction::Publish(&allowed)));
    assert!(!policy.check(&user, "c1", AclAction::Publish(&denied)));
    assert!(!policy.check(&user, "c1", AclAction::Publish("nowhere/at/all")));
    assert!(policy.check(&user, "c1", AclAction::Subscribe(&sub)));

    let mut group = c.benchmark_group("policy/acl_100_rules");
    group.throughput(Throughput::Elements(1));
    group.bench_function("publish_allowed_last_rule", |b| {
        b.iter(|| {
            policy.check(
                black_box(&user),
                "c1",
                AclAction::Publish(black_box(&allowed)),
            )
        })
    });
    group.bench_function("publish_denied", |b| {
        b.iter(|| {
            policy.check(
                black_box(&user),
                "c1",
                AclAction::Publish(black_box(&denied)),
            )
        })
    });
    group.bench_function("publish_default_deny", |b| {
        b.iter(|| policy.check(black_box(&user), "c1", AclAction::Publish("nowhere/at/all")))
    });
    group.bench_function("subscribe_within", |b| {
        b.iter(|| {
            policy.check(
                black_box(&user),
                "c1",
                AclAction::Subscribe(black_box(&sub)),
            )
        })
    });
    group.finish();
}

fn authenticate(c: &mut Criterion) {
    let policy = snapshot::decode(&snapshot::encode(&realistic()).unwrap()).unwrap();
    let user = account_name(HUMANS + 1);
    assert_eq!(
        policy.authenticate(&user, user.as_bytes()),
        AuthDecision::Allowed
    );
    let (key_id, secret) = cred::api_key_from_random(&[0; 64]);
    let token = cred::format_api_key(&key_id, &secret);
    assert_eq!(policy.api_key(&token, 0), Ok(Scope::Read));

    let mut group = c.benchmark_group("policy/auth");
    group.throughput(Throughput::Elements(1));
    group.bench_function("service_account_ok", |b| {
        b.iter(|| policy.authenticate(black_box(&user), black_box(user.as_bytes())))
    });
    group.bench_function("unknown_user", |b| {
        b.iter(|| policy.authenticate(black_box("nobody"), black_box(b"password")))
    });
    group.bench_function("api_key_ok", |b| {
        b.iter(|| policy.api_key(black_box(&token), 0))
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = snapshot_codec, acl_check, authenticate
}
criterion_main!(benches);
