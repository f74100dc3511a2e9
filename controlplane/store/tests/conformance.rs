//! One conformance suite, run unchanged against both backends.
//!
//! Every `suite::*` function takes a [`Harness`] and is instantiated twice by `conformance!`:
//! `on_sqlite::<name>` on a fresh file in a temporary directory, and `on_postgres::<name>` on a fresh
//! database of the PostgreSQL server at 127.0.0.1:5432 (user `postgres`, trust auth), created
//! with a unique name and dropped at the end. If that server is unreachable the PostgreSQL
//! tests fail; they never skip. Backend-specific tests follow the suite.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rampart_store::{
    Access, AccountKind, AccountUpdate, AclSubject, AuditEvent, AuditQuery, ConnectionEvent,
    ConnectionReport, ConnectionsRecorded, Credential, DeviceConnection, DeviceQuery, DeviceUpdate,
    NewAccount, NewAclRule, NewApiKey, NewDevice, OpenOptions, Outcome, Role, Scope, Session,
    Store, StoreError, open,
};

// === harnesses ===

trait Harness {
    /// The backend's name.
    fn name(&self) -> &'static str;
    /// The store under test.
    fn store(&self) -> &dyn Store;
    /// Opens a second store on the same database.
    fn reopen(&self) -> Result<Arc<dyn Store>, StoreError>;
    /// Runs raw SQL on the database (the first string on PostgreSQL, the second on SQLite).
    fn raw(&self, pg: &str, sqlite: &str);
    /// Runs a raw query returning one integer.
    fn raw_i64(&self, sql: &str) -> i64;
}

fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.load(Ordering::Relaxed));
    format!(
        "{}_{}_{:08x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        h.finish() as u32
    )
}

struct SqliteHarness {
    store: Arc<dyn Store>,
    url: String,
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl SqliteHarness {
    fn new() -> SqliteHarness {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("rampart.db");
        let url = format!("sqlite://{}", path.display());
        let store = open(&url, &OpenOptions::default()).expect("open sqlite");
        SqliteHarness {
            store,
            url,
            path,
            _dir: dir,
        }
    }

    fn conn(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(&self.path).unwrap();
        c.busy_timeout(Duration::from_secs(5)).unwrap();
        c
    }
}

impl Harness for SqliteHarness {
    fn name(&self) -> &'static str {
        "sqlite"
    }
    fn store(&self) -> &dyn Store {
        &*self.store
    }
    fn reopen(&self) -> Result<Arc<dyn Store>, StoreError> {
        open(&self.url, &OpenOptions::default())
    }
    fn raw(&self, _pg: &str, sqlite: &str) {
        self.conn().execute_batch(sqlite).unwrap();
    }
    fn raw_i64(&self, sql: &str) -> i64 {
        self.conn().query_row(sql, [], |r| r.get(0)).unwrap()
    }
}

const PG_ADMIN: &str =
    "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=5 sslmode=disable";

fn pg_admin() -> postgres::Client {
    postgres::Client::connect(PG_ADMIN, postgres::NoTls).unwrap_or_else(|e| {
        panic!(
            "these tests need PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth), and it \
             is unreachable: {e}"
        )
    })
}

/// A database that exists for one test.
struct TestDb {
    name: String,
}

impl TestDb {
    fn create() -> TestDb {
        let name = format!("rampart_test_{}", unique_suffix());
        // The name is ours (digits, letters, underscores): safe to format into DDL.
        pg_admin()
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        TestDb { name }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }

    fn client(&self) -> postgres::Client {
        let url = format!("{}?sslmode=disable", self.url());
        postgres::Client::connect(&url, postgres::NoTls).unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(PG_ADMIN, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

struct PgHarness {
    // Fields drop in order: the store before its database.
    store: Arc<dyn Store>,
    db: TestDb,
}

impl PgHarness {
    fn new() -> PgHarness {
        let db = TestDb::create();
        let store = open(&db.url(), &OpenOptions::default()).expect("open postgres");
        PgHarness { store, db }
    }
}

impl Harness for PgHarness {
    fn name(&self) -> &'static str {
        "postgres"
    }
    fn store(&self) -> &dyn Store {
        &*self.store
    }
    fn reopen(&self) -> Result<Arc<dyn Store>, StoreError> {
        open(&self.db.url(), &OpenOptions::default())
    }
    fn raw(&self, pg: &str, _sqlite: &str) {
        self.db.client().batch_execute(pg).unwrap();
    }
    fn raw_i64(&self, sql: &str) -> i64 {
        self.db.client().query_one(sql, &[]).unwrap().get(0)
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $( #[test] fn $name() { super::suite::$name(&super::SqliteHarness::new()); } )*
        }
        mod on_postgres {
            $( #[test] fn $name() { super::suite::$name(&super::PgHarness::new()); } )*
        }
    };
}

conformance!(
    basics,
    accounts,
    acls,
    delete_account_cascades,
    api_keys,
    devices,
    device_listing,
    device_connections,
    device_connections_in_bulk,
    sessions,
    audit,
    policy_data,
    policy_data_is_one_snapshot,
    changes_after_write,
    sql_metacharacters_verbatim,
    migrations_idempotent,
    newer_schema_refused,
    corrupt_rows_are_errors,
);

// === fixtures ===

const DIGEST_A: [u8; 32] = [0xa5; 32];
const DIGEST_B: [u8; 32] = [0x5a; 32];
const PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";

fn human(name: &str, role: Role) -> NewAccount {
    NewAccount {
        name: name.into(),
        kind: AccountKind::Human,
        role: Some(role),
        credential: Credential::Argon2(PHC.into()),
    }
}

fn service(name: &str) -> NewAccount {
    NewAccount {
        name: name.into(),
        kind: AccountKind::Service,
        role: None,
        credential: Credential::Digest(DIGEST_A),
    }
}

fn key(key_id: &str, expires_at: Option<i64>) -> NewApiKey {
    NewApiKey {
        key_id: key_id.into(),
        name: format!("label {key_id}"),
        scope: Scope::Devices,
        digest: DIGEST_B,
        created_by: "admin".into(),
        expires_at,
    }
}

fn device(guid: &str, tags: &[&str]) -> NewDevice {
    NewDevice {
        guid: guid.into(),
        hostname: Some(format!("host-{guid}")),
        friendly_name: None,
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        tenant_id: String::new(),
        dns_suffix: Some("example.test".into()),
        mps_username: "admin".into(),
        mps_digest: Some(DIGEST_A),
        device_info: Some(r#"{"fwVersion":"16.1"}"#.into()),
    }
}

fn session(token: u8, account: &str, expires_at: i64) -> Session {
    Session {
        token_digest: [token; 32],
        csrf_digest: [token ^ 0xff; 32],
        account: account.into(),
        created_at: 1_000,
        expires_at,
    }
}

fn event(time: i64, actor: &str, action: &str) -> AuditEvent {
    AuditEvent {
        id: 0,
        time,
        actor: actor.into(),
        source: Some("192.0.2.7".into()),
        action: action.into(),
        object: Some("obj".into()),
        outcome: Outcome::Success,
        detail: None,
    }
}

fn gen_of(s: &dyn Store) -> u64 {
    s.generation().unwrap()
}

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
}

#[track_caller]
fn assert_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    assert!(matches!(r, Err(StoreError::Conflict)), "{r:?}");
}

fn guids(devices: &[rampart_store::Device]) -> Vec<&str> {
    devices.iter().map(|d| d.guid.as_str()).collect()
}

// === the suite ===

mod suite {
    use super::*;

    pub(super) fn basics(h: &dyn Harness) {
        let s = h.store();
        assert_eq!(s.backend(), h.name());
        s.ping().unwrap();
        assert_eq!(gen_of(s), 0);
        let p = s.policy_data(0).unwrap();
        assert_eq!(p.generation, 0);
        assert!(p.accounts.is_empty() && p.acls.is_empty() && p.api_keys.is_empty());
        assert!(p.devices.is_empty());
        assert!(
            format!("{s:?}").len() < 200,
            "Debug stays small and secret-free"
        );
    }

    pub(super) fn accounts(h: &dyn Harness) {
        let s = h.store();
        let alice = s.create_account(&human("alice", Role::Admin), 100).unwrap();
        assert_eq!(gen_of(s), 1);
        assert!(alice.id > 0);
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.kind, AccountKind::Human);
        assert_eq!(alice.role, Some(Role::Admin));
        assert!(!alice.disabled);
        assert_eq!(alice.credential, Credential::Argon2(PHC.into()));
        assert_eq!((alice.created_at, alice.updated_at), (100, 100));
        let cam = s.create_account(&service("camera-1"), 101).unwrap();
        assert_eq!(cam.credential, Credential::Digest(DIGEST_A));
        assert_eq!(cam.role, None);
        assert_eq!(gen_of(s), 2);

        assert_eq!(s.account("alice").unwrap(), alice);
        assert_not_found(s.account("nobody"));
        // Case matters: names are compared exactly.
        assert_not_found(s.account("ALICE"));
        let names: Vec<_> = s
            .list_accounts()
            .unwrap()
            .into_iter()
            .map(|a| a.name)
            .collect();
        assert_eq!(names, ["alice", "camera-1"]);

        // A taken name conflicts and bumps nothing.
        assert_conflict(s.create_account(&service("alice"), 102));
        assert_eq!(gen_of(s), 2);

        let up = s
            .update_account(
                "alice",
                &AccountUpdate {
                    role: Some(Role::Viewer),
                    disabled: Some(true),
                    credential: None,
                },
                200,
            )
            .unwrap();
        assert_eq!(up.role, Some(Role::Viewer));
        assert!(up.disabled);
        assert_eq!(up.credential, alice.credential);
        assert_eq!((up.created_at, up.updated_at), (100, 200));
        assert_eq!(gen_of(s), 3);
        // Switching credential form clears the other one.
        let up = s
            .update_account(
                "alice",
                &AccountUpdate {
                    credential: Some(Credential::Digest(DIGEST_B)),
                    disabled: Some(false),
                    ..AccountUpdate::default()
                },
                300,
            )
            .unwrap();
        assert_eq!(up.credential, Credential::Digest(DIGEST_B));
        assert!(!up.disabled);
        assert_eq!(up.role, Some(Role::Viewer));
        assert_eq!(s.account("alice").unwrap(), up);
        assert_eq!(gen_of(s), 4);

        assert_not_found(s.update_account("nobody", &AccountUpdate::default(), 1));
        assert_eq!(gen_of(s), 4);

        s.delete_account("camera-1").unwrap();
        assert_eq!(gen_of(s), 5);
        assert_not_found(s.delete_account("camera-1"));
        assert_eq!(gen_of(s), 5);
        assert_eq!(s.list_accounts().unwrap().len(), 1);
        // The name is free again.
        s.create_account(&service("camera-1"), 400).unwrap();
    }

    pub(super) fn acls(h: &dyn Harness) {
        let s = h.store();
        s.create_account(&service("cam"), 1).unwrap();
        let g = gen_of(s);
        let r1 = s
            .add_acl(
                &NewAclRule {
                    subject: AclSubject::User("cam".into()),
                    topic: "cameras/%u/#".into(),
                    access: Access::Write,
                },
                10,
            )
            .unwrap();
        assert_eq!(gen_of(s), g + 1);
        let r2 = s
            .add_acl(
                &NewAclRule {
                    subject: AclSubject::Role(Role::Operator),
                    topic: "#".into(),
                    access: Access::Read,
                },
                11,
            )
            .unwrap();
        assert!(r2.id > r1.id);
        assert_eq!(r1.subject, AclSubject::User("cam".into()));
        assert_eq!(r1.topic, "cameras/%u/#");
        assert_eq!(r1.access, Access::Write);
        assert_eq!(r1.created_at, 10);
        assert_eq!(r2.subject, AclSubject::Role(Role::Operator));
        assert_eq!(s.list_acls().unwrap(), [r1.clone(), r2.clone()]);

        // Every access spelling round-trips.
        for a in [
            Access::Read,
            Access::Write,
            Access::Readwrite,
            Access::Subscribe,
            Access::Deny,
        ] {
            let r = s
                .add_acl(
                    &NewAclRule {
                        subject: AclSubject::Role(Role::Viewer),
                        topic: "t".into(),
                        access: a,
                    },
                    12,
                )
                .unwrap();
            assert_eq!(r.access, a);
            s.delete_acl(r.id).unwrap();
        }

        let g = gen_of(s);
        assert_not_found(s.add_acl(
            &NewAclRule {
                subject: AclSubject::User("ghost".into()),
                topic: "x".into(),
                access: Access::Read,
            },
            13,
        ));
        assert_eq!(gen_of(s), g, "a refused rule bumps nothing");

        s.delete_acl(r1.id).unwrap();
        assert_eq!(gen_of(s), g + 1);
        assert_not_found(s.delete_acl(r1.id));
        assert_not_found(s.delete_acl(i64::MAX));
        assert_eq!(gen_of(s), g + 1);
        assert_eq!(s.list_acls().unwrap(), [r2]);
    }

    pub(super) fn delete_account_cascades(h: &dyn Harness) {
        let s = h.store();
        s.create_account(&human("bob", Role::Operator), 1).unwrap();
        s.create_account(&human("carol", Role::Operator), 1)
            .unwrap();
        let user_rule = |n: &str| NewAclRule {
            subject: AclSubject::User(n.into()),
            topic: format!("users/{n}"),
            access: Access::Readwrite,
        };
        s.add_acl(&user_rule("bob"), 2).unwrap();
        s.add_acl(&user_rule("bob"), 2).unwrap();
        let carols = s.add_acl(&user_rule("carol"), 2).unwrap();
        let role_rule = s
            .add_acl(
                &NewAclRule {
                    subject: AclSubject::Role(Role::Operator),
                    topic: "ops/#".into(),
                    access: Access::Read,
                },
                2,
            )
            .unwrap();
        s.create_session(&session(1, "bob", 10_000)).unwrap();
        s.create_session(&session(2, "carol", 10_000)).unwrap();
        let mut k = key("bobs-key", None);
        k.created_by = "bob".into();
        s.create_api_key(&k, 3).unwrap();

        s.delete_account("bob").unwrap();
        assert_eq!(s.list_acls().unwrap(), [carols, role_rule]);
        assert_not_found(s.session(&[1; 32]));
        assert_eq!(s.session(&[2; 32]).unwrap().account, "carol");
        // Keys stay, still attributed.
        assert_eq!(s.api_key("bobs-key").unwrap().created_by, "bob");
        // A new "bob" does not inherit anything.
        s.create_account(&human("bob", Role::Viewer), 4).unwrap();
        assert_eq!(s.list_acls().unwrap().len(), 2);
        assert_not_found(s.session(&[1; 32]));
    }

    pub(super) fn api_keys(h: &dyn Harness) {
        let s = h.store();
        let k1 = s.create_api_key(&key("k1", Some(5_000)), 100).unwrap();
        assert_eq!(gen_of(s), 1);
        assert!(k1.id > 0);
        assert_eq!(k1.key_id, "k1");
        assert_eq!(k1.name, "label k1");
        assert_eq!(k1.scope, Scope::Devices);
        assert_eq!(k1.digest, DIGEST_B);
        assert_eq!(k1.created_by, "admin");
        assert_eq!(k1.created_at, 100);
        assert_eq!(k1.expires_at, Some(5_000));
        assert_eq!((k1.last_used_at, k1.revoked_at), (None, None));
        for (i, scope) in [Scope::Read, Scope::Admin].into_iter().enumerate() {
            let mut n = key(&format!("s{i}"), None);
            n.scope = scope;
            assert_eq!(s.create_api_key(&n, 100).unwrap().scope, scope);
        }
        assert_eq!(gen_of(s), 3);
        assert_conflict(s.create_api_key(&key("k1", None), 101));
        assert_eq!(gen_of(s), 3);
        assert_eq!(s.api_key("k1").unwrap(), k1);
        assert_not_found(s.api_key("nope"));
        let ids: Vec<_> = s
            .list_api_keys()
            .unwrap()
            .into_iter()
            .map(|k| k.key_id)
            .collect();
        assert_eq!(ids, ["k1", "s0", "s1"]);

        // Use is recorded, never moves backwards, and does not bump.
        s.touch_api_key("k1", 200).unwrap();
        assert_eq!(s.api_key("k1").unwrap().last_used_at, Some(200));
        s.touch_api_key("k1", 150).unwrap();
        assert_eq!(s.api_key("k1").unwrap().last_used_at, Some(200));
        s.touch_api_key("k1", 200).unwrap();
        assert_not_found(s.touch_api_key("nope", 1));
        assert_eq!(gen_of(s), 3);

        let r = s.revoke_api_key(k1.id, 300).unwrap();
        assert_eq!(r.revoked_at, Some(300));
        assert_eq!(r.last_used_at, Some(200));
        assert_eq!(gen_of(s), 4);
        // Again: Ok, first time kept, nothing changes so nothing bumps.
        let again = s.revoke_api_key(k1.id, 400).unwrap();
        assert_eq!(again.revoked_at, Some(300));
        assert_eq!(gen_of(s), 4);
        assert_not_found(s.revoke_api_key(i64::MAX, 1));
        assert_eq!(s.api_key("k1").unwrap().revoked_at, Some(300));
    }

    pub(super) fn devices(h: &dyn Harness) {
        let s = h.store();
        let g0 = "8dad96cb-c3db-11e6-9c43-bc0000d20000";
        let d = s
            .create_device(&device(g0, &["b", "a", "b", "c"]), 100)
            .unwrap();
        assert_eq!(gen_of(s), 1);
        assert_eq!(d.guid, g0);
        assert_eq!(d.tags, ["b", "a", "c"], "order kept, repeats dropped");
        assert_eq!(d.hostname.as_deref(), Some(&*format!("host-{g0}")));
        assert_eq!(d.friendly_name, None);
        assert_eq!(d.tenant_id, "");
        assert_eq!(d.dns_suffix.as_deref(), Some("example.test"));
        assert_eq!(d.mps_username, "admin");
        assert_eq!(d.mps_digest, Some(DIGEST_A));
        assert_eq!(d.amt_password, None);
        assert_eq!(d.device_info.as_deref(), Some(r#"{"fwVersion":"16.1"}"#));
        assert_eq!((d.created_at, d.updated_at), (100, 100));
        assert_eq!(d.connection, DeviceConnection::default());
        assert_eq!(s.device(g0).unwrap(), d);
        assert_not_found(s.device("00000000-0000-0000-0000-000000000000"));
        assert_conflict(s.create_device(&device(g0, &[]), 101));
        assert_eq!(gen_of(s), 1);

        // No tags at all.
        let g1 = "00000000-0000-0000-0000-000000000001";
        let mut bare = device(g1, &[]);
        bare.hostname = None;
        bare.mps_digest = None;
        bare.dns_suffix = None;
        bare.device_info = None;
        let d1 = s.create_device(&bare, 100).unwrap();
        assert!(d1.tags.is_empty());
        assert_eq!((d1.hostname, d1.mps_digest), (None, None));

        let up = s
            .update_device(
                g0,
                &DeviceUpdate {
                    hostname: Some(None),
                    friendly_name: Some(Some("Lab PC".into())),
                    tags: Some(vec!["z".into(), "a".into()]),
                    tenant_id: Some("t1".into()),
                    dns_suffix: Some(None),
                    mps_username: Some("mps".into()),
                    mps_digest: Some(Some(DIGEST_B)),
                    amt_password: Some(Some(vec![1, 2, 3, 0, 255])),
                    device_info: Some(None),
                },
                200,
            )
            .unwrap();
        assert_eq!(up.hostname, None);
        assert_eq!(up.friendly_name.as_deref(), Some("Lab PC"));
        assert_eq!(up.tags, ["z", "a"]);
        assert_eq!(up.tenant_id, "t1");
        assert_eq!(up.dns_suffix, None);
        assert_eq!(up.mps_username, "mps");
        assert_eq!(up.mps_digest, Some(DIGEST_B));
        assert_eq!(up.amt_password.as_deref(), Some(&[1, 2, 3, 0, 255][..]));
        assert_eq!(up.device_info, None);
        assert_eq!((up.created_at, up.updated_at), (100, 200));
        assert_eq!(s.device(g0).unwrap(), up);
        assert_eq!(gen_of(s), 3);

        // An update touching nothing but leaving tags alone keeps them.
        let up2 = s.update_device(g0, &DeviceUpdate::default(), 250).unwrap();
        assert_eq!(up2.tags, ["z", "a"]);
        assert_eq!(up2.amt_password, up.amt_password);
        // Clearing the sealed password and digest.
        let up3 = s
            .update_device(
                g0,
                &DeviceUpdate {
                    amt_password: Some(None),
                    mps_digest: Some(None),
                    tags: Some(vec![]),
                    ..DeviceUpdate::default()
                },
                260,
            )
            .unwrap();
        assert_eq!((up3.amt_password, up3.mps_digest), (None, None));
        assert!(up3.tags.is_empty());
        let g = gen_of(s);
        assert_not_found(s.update_device("nope", &DeviceUpdate::default(), 1));
        assert_eq!(gen_of(s), g);

        // Connection state: recorded, no bump, not part of updated_at.
        let conn = DeviceConnection {
            connected: true,
            node: Some("node-a".into()),
            last_connected: Some(300),
            last_seen: Some(310),
            last_disconnected: Some(50),
        };
        s.set_device_connection(g0, &conn).unwrap();
        let d = s.device(g0).unwrap();
        assert_eq!(d.connection, conn);
        assert_eq!(d.updated_at, 260);
        assert_eq!(gen_of(s), g);
        assert_not_found(s.set_device_connection("nope", &conn));

        s.update_device(
            g0,
            &DeviceUpdate {
                tags: Some(vec!["x".into()]),
                ..DeviceUpdate::default()
            },
            270,
        )
        .unwrap();
        assert_eq!(s.device_tags().unwrap(), ["x"]);
        s.delete_device(g0).unwrap();
        assert_eq!(gen_of(s), g + 2);
        assert_not_found(s.device(g0));
        assert_not_found(s.delete_device(g0));
        assert_eq!(gen_of(s), g + 2);
        assert!(
            s.device_tags().unwrap().is_empty(),
            "tags went with the device"
        );
        // The GUID can be listed again.
        s.create_device(&device(g0, &["again"]), 400).unwrap();
    }

    fn ev(guid: &str, connected: bool, at: i64, last_seen: i64) -> ConnectionEvent {
        ConnectionEvent {
            guid: guid.into(),
            connected,
            at,
            last_seen,
        }
    }

    fn report(node: &str, full: bool, events: Vec<ConnectionEvent>) -> ConnectionReport {
        ConnectionReport {
            node: node.into(),
            full,
            events,
        }
    }

    fn recorded(updated: u64, reconciled: u64) -> ConnectionsRecorded {
        ConnectionsRecorded {
            updated,
            reconciled,
        }
    }

    pub(super) fn device_connections(h: &dyn Harness) {
        let s = h.store();
        let [g1, g2, g3, g4] = [
            "00000000-0000-0000-0000-000000000001",
            "00000000-0000-0000-0000-000000000002",
            "00000000-0000-0000-0000-000000000003",
            "00000000-0000-0000-0000-000000000004",
        ];
        for g in [g1, g2, g3, g4] {
            s.create_device(&device(g, &[]), 1).unwrap();
        }
        let g = gen_of(s);
        let conn = |guid: &str| s.device(guid).unwrap().connection;

        // Connects, one of an unknown device (deleted meanwhile): ignored.
        let r = s
            .record_connections(
                &report(
                    "a",
                    false,
                    vec![
                        ev(g1, true, 100, 100),
                        ev("99999999-0000-0000-0000-000000000000", true, 100, 100),
                        ev(g2, true, 110, 120),
                    ],
                ),
                130,
            )
            .unwrap();
        assert_eq!(r, recorded(2, 0));
        assert_eq!(
            conn(g1),
            DeviceConnection {
                connected: true,
                node: Some("a".into()),
                last_connected: Some(100),
                last_seen: Some(100),
                last_disconnected: None,
            }
        );
        assert_eq!(conn(g2).last_seen, Some(120));

        // A late disconnect from a node that no longer holds the device changes nothing.
        let r = s
            .record_connections(&report("b", false, vec![ev(g1, false, 150, 150)]), 150)
            .unwrap();
        assert_eq!(r, recorded(0, 0));
        assert!(conn(g1).connected);
        // From its node it does.
        s.record_connections(&report("a", false, vec![ev(g1, false, 200, 150)]), 200)
            .unwrap();
        assert_eq!(
            conn(g1),
            DeviceConnection {
                connected: false,
                node: Some("a".into()),
                last_connected: Some(100),
                last_seen: Some(150),
                last_disconnected: Some(200),
            }
        );

        // Last seen never moves backwards; a reconnect records its time.
        s.record_connections(&report("a", false, vec![ev(g2, true, 115, 50)]), 210)
            .unwrap();
        assert_eq!(
            (conn(g2).last_connected, conn(g2).last_seen),
            (Some(115), Some(120))
        );

        // One device twice in one report: both apply, in order.
        let r = s
            .record_connections(
                &report(
                    "a",
                    false,
                    vec![ev(g3, true, 300, 300), ev(g3, false, 310, 305)],
                ),
                320,
            )
            .unwrap();
        assert_eq!(r, recorded(2, 0));
        assert_eq!(
            conn(g3),
            DeviceConnection {
                connected: false,
                node: Some("a".into()),
                last_connected: Some(300),
                last_seen: Some(305),
                last_disconnected: Some(310),
            }
        );
        // The device moves to node b.
        s.record_connections(&report("b", false, vec![ev(g4, true, 330, 330)]), 330)
            .unwrap();

        // A full report from a: g1 connected again; g2 is not listed, so it is gone; b's g4
        // is not a's to touch.
        let r = s
            .record_connections(&report("a", true, vec![ev(g1, true, 400, 450)]), 500)
            .unwrap();
        assert_eq!(r, recorded(1, 1));
        assert_eq!(
            conn(g1),
            DeviceConnection {
                connected: true,
                node: Some("a".into()),
                last_connected: Some(400),
                last_seen: Some(450),
                last_disconnected: Some(200),
            }
        );
        assert_eq!(
            (conn(g2).connected, conn(g2).last_disconnected),
            (false, Some(500))
        );
        assert!(conn(g4).connected);
        // An empty full report: nothing connected on a any more.
        let r = s
            .record_connections(&report("a", true, vec![]), 510)
            .unwrap();
        assert_eq!(r, recorded(0, 1));
        assert!(!conn(g1).connected);
        s.record_connections(&report("a", false, vec![ev(g1, true, 520, 520)]), 520)
            .unwrap();

        // A data plane going away, then a control plane starting.
        assert_eq!(s.disconnect_devices(Some("b"), 600).unwrap(), 1);
        assert_eq!(
            (conn(g4).connected, conn(g4).last_disconnected),
            (false, Some(600))
        );
        assert!(conn(g1).connected);
        assert_eq!(s.disconnect_devices(Some("b"), 610).unwrap(), 0);
        assert_eq!(s.disconnect_devices(None, 700).unwrap(), 1);
        assert_eq!(
            conn(g1),
            DeviceConnection {
                connected: false,
                node: Some("a".into()),
                last_connected: Some(520),
                last_seen: Some(520),
                last_disconnected: Some(700),
            }
        );
        assert_eq!(s.disconnect_devices(None, 800).unwrap(), 0);
        // The listing's status filter sees it.
        let (on, _) = s
            .list_devices(&DeviceQuery {
                connected: Some(true),
                top: 10,
                ..DeviceQuery::default()
            })
            .unwrap();
        assert!(on.is_empty());
        // None of this is policy.
        assert_eq!(gen_of(s), g);
    }

    pub(super) fn device_connections_in_bulk(h: &dyn Harness) {
        let s = h.store();
        // More than one statement's worth of devices.
        let n = 1234;
        let guid = |i: usize| format!("00000000-0000-0000-0000-{i:012x}");
        for i in 0..n {
            s.create_device(&device(&guid(i), &[]), 1).unwrap();
        }
        let all: Vec<_> = (0..n).map(|i| ev(&guid(i), true, 10, 20)).collect();
        let r = s.record_connections(&report("a", true, all), 30).unwrap();
        assert_eq!(r, recorded(n as u64, 0));
        let connected = |s: &dyn Store| {
            s.list_devices(&DeviceQuery {
                connected: Some(true),
                top: 1,
                ..DeviceQuery::default()
            })
            .unwrap()
            .1
        };
        assert_eq!(connected(s), n as u64);
        // Every other one listed: the rest are reconciled.
        let half: Vec<_> = (0..n)
            .step_by(2)
            .map(|i| ev(&guid(i), true, 10, 40))
            .collect();
        let r = s.record_connections(&report("a", true, half), 50).unwrap();
        assert_eq!(r, recorded(n as u64 / 2, n as u64 / 2));
        assert_eq!(connected(s), n as u64 / 2);
        let d = s.device(&guid(1)).unwrap().connection;
        assert_eq!((d.connected, d.last_disconnected), (false, Some(50)));
        let d = s.device(&guid(2)).unwrap().connection;
        assert_eq!((d.connected, d.last_seen), (true, Some(40)));
        // Disconnects in bulk.
        let gone: Vec<_> = (0..n)
            .step_by(2)
            .map(|i| ev(&guid(i), false, 60, 55))
            .collect();
        let r = s.record_connections(&report("a", false, gone), 60).unwrap();
        assert_eq!(r, recorded(n as u64 / 2, 0));
        assert_eq!(connected(s), 0);
    }

    pub(super) fn device_listing(h: &dyn Harness) {
        let s = h.store();
        // 12 devices: guid d00..d11; tags by divisibility; tenants alternate; every third
        // connected.
        for i in (0..12).rev() {
            let mut tags = Vec::new();
            if i % 2 == 0 {
                tags.push("even");
            }
            if i % 3 == 0 {
                tags.push("three");
            }
            if i == 5 {
                tags.push("five");
            }
            let mut d = device(&format!("d{i:02}"), &tags);
            d.tenant_id = if i % 2 == 0 { "ta" } else { "tb" }.into();
            d.friendly_name = (i == 7).then(|| "seven".to_owned());
            s.create_device(&d, 1).unwrap();
            if i % 3 == 0 {
                let c = DeviceConnection {
                    connected: true,
                    ..DeviceConnection::default()
                };
                s.set_device_connection(&format!("d{i:02}"), &c).unwrap();
            }
        }
        let q = |f: &dyn Fn(&mut DeviceQuery)| {
            let mut q = DeviceQuery {
                top: 100,
                ..DeviceQuery::default()
            };
            f(&mut q);
            let (list, total) = s.list_devices(&q).unwrap();
            (
                guids(&list)
                    .iter()
                    .map(|g| g[1..].to_owned())
                    .collect::<Vec<_>>(),
                total,
            )
        };
        let n = |v: &[u32]| v.iter().map(|i| format!("{i:02}")).collect::<Vec<_>>();

        // No filter: all, by GUID.
        let (all, total) = q(&|_| {});
        assert_eq!(total, 12);
        assert_eq!(all, n(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]));
        // Tags any / all; empty tags = no filter.
        let tags = |t: &[&str]| t.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            q(&|q| q.tags = tags(&["even", "three"])),
            (n(&[0, 2, 3, 4, 6, 8, 9, 10]), 8)
        );
        assert_eq!(
            q(&|q| {
                q.tags = tags(&["even", "three"]);
                q.tags_all = true;
            }),
            (n(&[0, 6]), 2)
        );
        // A repeated tag in an all-query still means "has this tag".
        assert_eq!(
            q(&|q| {
                q.tags = tags(&["five", "five"]);
                q.tags_all = true;
            }),
            (n(&[5]), 1)
        );
        assert_eq!(
            q(&|q| {
                q.tags = tags(&["five", "missing"]);
                q.tags_all = true;
            }),
            (vec![], 0)
        );
        assert_eq!(q(&|q| q.tags = tags(&["five", "missing"])), (n(&[5]), 1));
        assert_eq!(q(&|q| q.tags_all = true).1, 12);
        // Exact matches on the other fields.
        assert_eq!(q(&|q| q.hostname = Some("host-d04".into())), (n(&[4]), 1));
        assert_eq!(q(&|q| q.hostname = Some("host-d0%".into())), (vec![], 0));
        assert_eq!(q(&|q| q.friendly_name = Some("seven".into())), (n(&[7]), 1));
        assert_eq!(q(&|q| q.tenant_id = Some("tb".into())).1, 6);
        assert_eq!(q(&|q| q.connected = Some(true)), (n(&[0, 3, 6, 9]), 4));
        assert_eq!(q(&|q| q.connected = Some(false)).1, 8);
        // Combined.
        assert_eq!(
            q(&|q| {
                q.tenant_id = Some("ta".into());
                q.connected = Some(true);
                q.tags = tags(&["three"]);
            }),
            (n(&[0, 6]), 2)
        );
        // Paging after filtering, total before paging.
        assert_eq!(
            q(&|q| {
                q.skip = 2;
                q.top = 3;
            }),
            (n(&[2, 3, 4]), 12)
        );
        assert_eq!(
            q(&|q| {
                q.tags = tags(&["even"]);
                q.skip = 4;
                q.top = 10;
            }),
            (n(&[8, 10]), 6)
        );
        assert_eq!(
            q(&|q| q.top = 0),
            (vec![], 12),
            "top=0 counts but returns none"
        );
        assert_eq!(q(&|q| q.skip = 12), (vec![], 12));
        assert_eq!(
            q(&|q| {
                q.skip = u32::MAX;
                q.top = u32::MAX;
            }),
            (vec![], 12)
        );
        assert_eq!(
            q(&|q| {
                q.skip = 11;
                q.top = u32::MAX;
            }),
            (n(&[11]), 12)
        );
        // Paged results carry their tags.
        let (page, _) = s
            .list_devices(&DeviceQuery {
                skip: 5,
                top: 2,
                ..DeviceQuery::default()
            })
            .unwrap();
        assert_eq!(page[0].tags, ["five"]);
        assert_eq!(page[1].tags, ["even", "three"]);
        assert!(page[1].connection.connected);

        assert_eq!(s.device_tags().unwrap(), ["even", "five", "three"]);
    }

    pub(super) fn sessions(h: &dyn Harness) {
        let s = h.store();
        s.create_account(&human("dana", Role::Viewer), 1).unwrap();
        let g = gen_of(s);
        let a = session(1, "dana", 1_000);
        s.create_session(&a).unwrap();
        s.create_session(&session(2, "dana", 2_000)).unwrap();
        s.create_session(&session(3, "dana", 3_000)).unwrap();
        assert_eq!(s.session(&[1; 32]).unwrap(), a);
        assert_not_found(s.session(&[9; 32]));
        assert_conflict(s.create_session(&a));
        assert_not_found(s.create_session(&session(4, "ghost", 1)));

        s.delete_session(&[1; 32]).unwrap();
        assert_not_found(s.session(&[1; 32]));
        assert_not_found(s.delete_session(&[1; 32]));

        // Expired sessions still read back: the caller decides.
        assert_eq!(s.session(&[2; 32]).unwrap().expires_at, 2_000);
        assert_eq!(s.purge_sessions(1_999).unwrap(), 0);
        // Unusable from expires_at on, so one expiring exactly now is purged.
        assert_eq!(s.purge_sessions(2_000).unwrap(), 1);
        assert_eq!(s.purge_sessions(2_000).unwrap(), 0);
        assert_eq!(s.session(&[3; 32]).unwrap().account, "dana");
        assert_eq!(gen_of(s), g, "sessions never bump the generation");
    }

    pub(super) fn audit(h: &dyn Harness) {
        let s = h.store();
        let mut ids = Vec::new();
        for (i, (actor, action)) in [
            ("alice", "auth.login"),
            ("bob", "auth.login"),
            ("alice", "user.create"),
            ("system", "device.connect"),
            ("alice", "auth.login"),
        ]
        .into_iter()
        .enumerate()
        {
            let e = s
                .append_audit(&event(1_000 + i as i64, actor, action))
                .unwrap();
            assert!(e.id > ids.last().copied().unwrap_or(0));
            assert_eq!(e.actor, actor);
            assert_eq!(e.time, 1_000 + i as i64);
            ids.push(e.id);
        }
        let mut failure = event(2_000, "mallory", "acl.deny");
        failure.outcome = Outcome::Failure;
        failure.source = None;
        failure.object = None;
        failure.detail = Some("topic not allowed".into());
        failure.id = 12_345; // ignored
        let f = s.append_audit(&failure).unwrap();
        assert_ne!(f.id, 12_345);
        assert_eq!(
            AuditEvent {
                id: f.id,
                ..failure.clone()
            },
            f
        );
        ids.push(f.id);
        assert_eq!(gen_of(s), 0, "audit never bumps");

        let list = |q: AuditQuery| -> Vec<i64> {
            s.list_audit(&q)
                .unwrap()
                .into_iter()
                .map(|e| e.id)
                .collect()
        };
        let rev: Vec<i64> = ids.iter().rev().copied().collect();
        assert_eq!(
            list(AuditQuery {
                limit: 100,
                ..AuditQuery::default()
            }),
            rev
        );
        assert_eq!(
            list(AuditQuery {
                limit: 2,
                ..AuditQuery::default()
            }),
            rev[..2]
        );
        assert!(list(AuditQuery::default()).is_empty(), "limit 0");
        assert_eq!(
            list(AuditQuery {
                actor: Some("alice".into()),
                limit: 10,
                ..AuditQuery::default()
            }),
            [ids[4], ids[2], ids[0]]
        );
        assert_eq!(
            list(AuditQuery {
                action: Some("auth.login".into()),
                limit: 10,
                ..AuditQuery::default()
            }),
            [ids[4], ids[1], ids[0]]
        );
        assert_eq!(
            list(AuditQuery {
                actor: Some("alice".into()),
                action: Some("auth.login".into()),
                before_id: Some(ids[4]),
                limit: 10,
            }),
            [ids[0]]
        );
        // Paging backwards.
        let page1 = list(AuditQuery {
            limit: 4,
            ..AuditQuery::default()
        });
        let page2 = list(AuditQuery {
            limit: 4,
            before_id: page1.last().copied(),
            ..AuditQuery::default()
        });
        assert_eq!([page1, page2].concat(), rev);
        let got = s
            .list_audit(&AuditQuery {
                limit: 1,
                ..AuditQuery::default()
            })
            .unwrap();
        assert_eq!(got, [f]);
    }

    pub(super) fn policy_data(h: &dyn Harness) {
        let s = h.store();
        s.create_account(&human("zed", Role::Admin), 1).unwrap();
        s.create_account(&service("amy"), 1).unwrap();
        s.add_acl(
            &NewAclRule {
                subject: AclSubject::User("amy".into()),
                topic: "a/#".into(),
                access: Access::Write,
            },
            1,
        )
        .unwrap();
        s.create_device(&device("g2", &["t"]), 1).unwrap();
        s.create_device(&device("g1", &[]), 1).unwrap();
        let now = 10_000;
        let forever = s.create_api_key(&key("forever", None), 1).unwrap();
        let later = s.create_api_key(&key("later", Some(now + 1)), 1).unwrap();
        s.create_api_key(&key("exactly-now", Some(now)), 1).unwrap();
        s.create_api_key(&key("past", Some(now - 1)), 1).unwrap();
        let revoked = s.create_api_key(&key("revoked", None), 1).unwrap();
        s.revoke_api_key(revoked.id, 5).unwrap();
        // Audit, sessions and use don't bump.
        s.touch_api_key("forever", 7).unwrap();
        s.append_audit(&event(1, "x", "y")).unwrap();

        let p = s.policy_data(now).unwrap();
        assert_eq!(p.generation, gen_of(s));
        assert_eq!(p.generation, 11);
        assert_eq!(p.accounts, s.list_accounts().unwrap());
        assert_eq!(p.accounts[0].name, "amy");
        assert_eq!(p.acls, s.list_acls().unwrap());
        let forever = s.api_key(&forever.key_id).unwrap();
        assert_eq!(p.api_keys, [forever, later]);
        assert_eq!(guids(&p.devices), ["g1", "g2"]);
        assert_eq!(p.devices[1].tags, ["t"]);
        assert_eq!(
            p.devices,
            s.list_devices(&DeviceQuery {
                top: 10,
                ..DeviceQuery::default()
            })
            .unwrap()
            .0
        );
        // Earlier, the expired keys were still valid.
        assert_eq!(s.policy_data(now - 2).unwrap().api_keys.len(), 4);
    }

    /// A writer creates accounts (one bump each) while a reader takes snapshots: every
    /// snapshot's generation must match its account count, which only holds if both were read
    /// in one transaction.
    pub(super) fn policy_data_is_one_snapshot(h: &dyn Harness) {
        let s = h.store();
        std::thread::scope(|scope| {
            let writer = scope.spawn(|| {
                for i in 0..40 {
                    s.create_account(&service(&format!("svc-{i:03}")), i)
                        .unwrap();
                }
            });
            let mut snapshots = 0;
            while !writer.is_finished() {
                let p = s.policy_data(0).unwrap();
                assert_eq!(p.generation, p.accounts.len() as u64);
                snapshots += 1;
            }
            writer.join().unwrap();
            let p = s.policy_data(0).unwrap();
            assert_eq!((p.generation, p.accounts.len()), (40, 40));
            assert!(snapshots > 0);
        });
    }

    pub(super) fn changes_after_write(h: &dyn Harness) {
        let s = h.store();
        let a = s.changes();
        let b = s.changes();
        let wait = Duration::from_secs(1);
        s.create_account(&service("svc"), 1).unwrap();
        let expected = gen_of(s);
        assert_eq!(a.recv_timeout(wait), Ok(expected));
        assert_eq!(b.recv_timeout(wait), Ok(expected));
        drop(b);

        // Writes that do not bump send nothing.
        s.append_audit(&event(1, "x", "y")).unwrap();
        s.create_session(&session(1, "svc", 10)).unwrap();
        s.create_device(&device("g", &[]), 1).unwrap();
        assert_eq!(a.recv_timeout(wait), Ok(expected + 1));
        s.set_device_connection("g", &DeviceConnection::default())
            .unwrap();
        s.create_api_key(&key("k", None), 1).unwrap();
        s.touch_api_key("k", 5).unwrap();
        assert_eq!(a.recv_timeout(wait), Ok(expected + 2));
        assert!(a.recv_timeout(Duration::from_millis(300)).is_err());

        // A receiver made later hears later changes only.
        let c = s.changes();
        s.delete_device("g").unwrap();
        assert_eq!(c.recv_timeout(wait), Ok(expected + 3));
        assert_eq!(a.recv_timeout(wait), Ok(expected + 3));
        // Failed writes send nothing.
        assert!(s.delete_device("g").is_err());
        assert!(c.recv_timeout(Duration::from_millis(300)).is_err());
    }

    pub(super) fn sql_metacharacters_verbatim(h: &dyn Harness) {
        let s = h.store();
        let evil = [
            "x'; DROP TABLE accounts;--",
            "\"quoted\" `back` \\ slash",
            "100% _under_ $1 ?1 :name @p",
            "ünïcödé ✓ 名前",
            "a\nb\tc",
        ];
        for (i, e) in evil.iter().enumerate() {
            let a = s.create_account(&service(e), 1).unwrap();
            assert_eq!(a.name, *e);
            s.add_acl(
                &NewAclRule {
                    subject: AclSubject::User((*e).to_owned()),
                    topic: format!("{e}/#"),
                    access: Access::Read,
                },
                1,
            )
            .unwrap();
            let guid = format!("{e}-{i}");
            s.create_device(&device(&guid, &[e, "plain"]), 1).unwrap();
            s.create_api_key(&key(e, None), 1).unwrap();
            s.append_audit(&event(1, e, e)).unwrap();
            s.create_session(&session(i as u8, e, 10)).unwrap();
        }
        for (i, e) in evil.iter().enumerate() {
            assert_eq!(s.account(e).unwrap().name, *e);
            assert_eq!(s.api_key(e).unwrap().key_id, *e);
            let guid = format!("{e}-{i}");
            let d = s.device(&guid).unwrap();
            assert_eq!(d.tags, [*e, "plain"]);
            let (found, n) = s
                .list_devices(&DeviceQuery {
                    tags: vec![(*e).to_owned()],
                    top: 10,
                    ..DeviceQuery::default()
                })
                .unwrap();
            assert_eq!((guids(&found), n), (vec![guid.as_str()], 1));
            let audit = s
                .list_audit(&AuditQuery {
                    actor: Some((*e).to_owned()),
                    action: Some((*e).to_owned()),
                    limit: 5,
                    ..AuditQuery::default()
                })
                .unwrap();
            assert_eq!(audit.len(), 1);
            assert_eq!(s.session(&[i as u8; 32]).unwrap().account, *e);
        }
        let topics: Vec<_> = s
            .list_acls()
            .unwrap()
            .into_iter()
            .map(|r| r.topic)
            .collect();
        assert_eq!(topics, evil.map(|e| format!("{e}/#")));
        // Byte order, the same on both backends.
        let mut tags: Vec<String> = evil.iter().map(|e| (*e).to_owned()).collect();
        tags.push("plain".into());
        tags.sort();
        assert_eq!(s.device_tags().unwrap(), tags);
        assert_eq!(s.list_accounts().unwrap().len(), evil.len());
        s.delete_account(evil[0]).unwrap();
        assert_eq!(s.list_accounts().unwrap().len(), evil.len() - 1);
    }

    pub(super) fn migrations_idempotent(h: &dyn Harness) {
        let s = h.store();
        s.create_account(&service("keep"), 1).unwrap();
        let g = gen_of(s);
        for _ in 0..2 {
            let again = h.reopen().unwrap();
            assert_eq!(again.generation().unwrap(), g);
            assert_eq!(again.account("keep").unwrap().name, "keep");
        }
        assert_eq!(h.raw_i64("SELECT COUNT(*) FROM schema_migrations"), 1);
        assert_eq!(h.raw_i64("SELECT COUNT(*) FROM meta"), 1);
    }

    pub(super) fn newer_schema_refused(h: &dyn Harness) {
        let sql = "INSERT INTO schema_migrations (version, name, applied_at) \
                   VALUES (999, 'from_the_future', 0)";
        h.raw(sql, sql);
        match h.reopen() {
            Err(StoreError::Migration(m)) => assert!(m.contains("999"), "{m}"),
            other => panic!("expected a migration error, got {other:?}"),
        }
        // The store already open keeps working; nothing was applied.
        h.store().ping().unwrap();
        assert_eq!(h.raw_i64("SELECT COUNT(*) FROM schema_migrations"), 2);
    }

    pub(super) fn corrupt_rows_are_errors(h: &dyn Harness) {
        let s = h.store();
        s.create_account(&service("odd"), 1).unwrap();
        s.create_api_key(&key("short", None), 1).unwrap();
        s.create_device(&device("dev", &[]), 1).unwrap();
        let s1 = "UPDATE accounts SET kind = 'robot' WHERE name = 'odd'";
        h.raw(s1, s1);
        h.raw(
            "UPDATE api_keys SET digest = '\\x0102'::bytea WHERE key_id = 'short'",
            "UPDATE api_keys SET digest = X'0102' WHERE key_id = 'short'",
        );
        h.raw(
            "UPDATE devices SET mps_digest = '\\x'::bytea WHERE guid = 'dev'",
            "UPDATE devices SET mps_digest = X'' WHERE guid = 'dev'",
        );
        let corrupt = |r: Result<String, StoreError>, column: &str| match r {
            Err(StoreError::Backend(m)) => {
                assert!(m.contains("corrupt row") && m.contains(column), "{m}");
            }
            other => panic!("expected a corrupt-row error, got {other:?}"),
        };
        corrupt(s.account("odd").map(|a| a.name), "kind");
        corrupt(s.list_accounts().map(|_| String::new()), "kind");
        corrupt(s.policy_data(0).map(|_| String::new()), "kind");
        corrupt(s.api_key("short").map(|k| k.key_id), "digest");
        corrupt(s.device("dev").map(|d| d.guid), "mps_digest");
        // Both credentials set: not exactly one.
        h.raw(
            "UPDATE accounts SET kind = 'service', password_hash = 'x' WHERE name = 'odd'",
            "UPDATE accounts SET kind = 'service', password_hash = 'x' WHERE name = 'odd'",
        );
        corrupt(s.account("odd").map(|a| a.name), "credential");
    }
}

// === PostgreSQL only ===

mod postgres_only {
    use std::sync::Barrier;

    use super::*;

    /// A change made by one store (standing in for another process) reaches another store's
    /// receivers through NOTIFY.
    #[test]
    fn changes_cross_instance() {
        let h = PgHarness::new();
        let other = h.reopen().unwrap();
        let rx = h.store().changes();
        let rx_other = other.changes();
        other.create_account(&service("remote"), 1).unwrap();
        let g = other.generation().unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(1)), Ok(g));
        assert_eq!(rx_other.recv_timeout(Duration::from_secs(1)), Ok(g));
        h.store().create_account(&service("local"), 1).unwrap();
        assert_eq!(rx_other.recv_timeout(Duration::from_secs(1)), Ok(g + 1));
    }

    /// Killing the listener's connection: it reconnects, announces the current generation,
    /// and hears later changes.
    #[test]
    fn listener_reconnects() {
        let h = PgHarness::new();
        let rx = h.store().changes();
        let writer = h.reopen().unwrap();
        writer.create_account(&service("before"), 1).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(1)), Ok(1));
        let mut admin = pg_admin();
        let killed = admin
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&h.db.name],
            )
            .unwrap();
        assert!(killed >= 2);
        // After reconnecting the listener re-reads and announces the generation.
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(1));
        // The pools recover too (connections are checked on checkout).
        writer.create_account(&service("after"), 1).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(2)), Ok(2));
        assert_eq!(h.store().generation().unwrap(), 2);
    }

    /// Several processes starting at once on an empty database apply the schema once.
    #[test]
    fn concurrent_opens_migrate_once() {
        let db = TestDb::create();
        let url = db.url();
        let barrier = Barrier::new(4);
        let stores: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        open(&url, &OpenOptions::default())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for s in &stores {
            assert_eq!(s.as_ref().map(|s| s.generation().unwrap()).unwrap(), 0);
        }
        let mut c = db.client();
        let n: i64 = c
            .query_one("SELECT COUNT(*) FROM schema_migrations", &[])
            .unwrap()
            .get(0);
        assert_eq!(n, 1);
        let n: i64 = c
            .query_one("SELECT COUNT(*) FROM meta", &[])
            .unwrap()
            .get(0);
        assert_eq!(n, 1);
        drop(stores);
    }

    #[test]
    fn unreachable_server_is_a_clear_error_without_the_password() {
        let e = open(
            "postgres://postgres:s3cr%3Ft@127.0.0.1:1/nodb?connect_timeout=2",
            &OpenOptions::default(),
        )
        .unwrap_err();
        let m = e.to_string();
        assert!(matches!(e, StoreError::Backend(_)), "{m}");
        assert!(m.contains("connecting to PostgreSQL"), "{m}");
        assert!(!m.contains("s3cr"), "{m}");
    }

    #[test]
    fn password_from_options_is_used() {
        // Trust auth ignores the password, but it must not break anything or leak.
        let db = TestDb::create();
        let o = OpenOptions {
            password: Some("unused-secret".into()),
            pool_size: 2,
            ..OpenOptions::default()
        };
        let s = open(&db.url(), &o).unwrap();
        s.ping().unwrap();
        assert!(!format!("{s:?}").contains("unused-secret"));
        drop(s);
    }

    #[test]
    fn wrong_database_fails_clearly() {
        let e = open(
            "postgresql://postgres@127.0.0.1:5432/rampart_no_such_db_x",
            &OpenOptions::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
    }
}

// === SQLite only ===

mod sqlite_only {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn files_are_private_and_wal() {
        let h = SqliteHarness::new();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(h.path.parent().unwrap()), 0o700);
        assert_eq!(mode(&h.path), 0o600);
        let jm: String = h
            .conn()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(jm, "wal");
        h.store().create_account(&service("x"), 1).unwrap();
        let wal = h.path.with_extension("db-wal");
        assert_eq!(mode(&wal), 0o600);
    }

    #[test]
    fn url_forms() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.db");
        let s = open(&format!("sqlite:{}", p.display()), &OpenOptions::default()).unwrap();
        s.create_account(&service("x"), 1).unwrap();
        drop(s);
        let s = open(
            &format!("sqlite://{}", p.display()),
            &OpenOptions::default(),
        )
        .unwrap();
        assert_eq!(s.backend(), "sqlite");
        assert_eq!(s.account("x").unwrap().name, "x");
    }

    #[test]
    fn unusable_path_is_a_backend_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"not a dir").unwrap();
        let e = open(
            &format!("sqlite://{}/db", file.display()),
            &OpenOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(e, StoreError::Backend(_)), "{e}");
        // Not a database at all.
        let e = open(
            &format!("sqlite://{}", file.display()),
            &OpenOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(e, StoreError::Backend(_)), "{e}");
    }

    /// Two stores on one file (two processes, in effect) see each other's data.
    #[test]
    fn two_stores_share_the_file() {
        let h = SqliteHarness::new();
        let other = h.reopen().unwrap();
        other.create_account(&service("x"), 1).unwrap();
        assert_eq!(h.store().generation().unwrap(), 1);
        std::thread::scope(|scope| {
            for t in 0..2 {
                let s: &dyn Store = if t == 0 { h.store() } else { &*other };
                scope.spawn(move || {
                    for i in 0..20 {
                        s.create_account(&service(&format!("t{t}-{i}")), 1).unwrap();
                    }
                });
            }
        });
        assert_eq!(h.store().generation().unwrap(), 41);
    }
}
