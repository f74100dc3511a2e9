//! End to end over a real Unix socket: the control plane's link server and snapshot feed
//! (`rampart_controlplane::link::serve`, `feed::Feed`) against the data plane's link thread
//! (`rampart_dataplane::link::spawn`) and its `PolicyHandle`.
//!
//! Publish, apply and acknowledge; revoke a user and measure how long the data plane keeps
//! accepting them; lose the control plane and keep the policy; refuse a corrupt snapshot after
//! reconnecting to a new control plane, and recover with a good one.
//!
//! With the control plane's API state on a real SQLite store (`service::build_api`,
//! `link::serve_with`): human accounts' passwords checked by the control plane for the data
//! plane (`LinkHandle::check_password`), throttled like web logins, `Unavailable` at once while
//! the link is down; audit records from the data plane (`LinkHandle::audit`) in the store and
//! the audit log file.

use std::net::IpAddr;
use std::os::unix::net::UnixListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_controlplane::audit::{Audit, AuditSink};
use rampart_controlplane::feed::Feed;
use rampart_controlplane::link::{serve, serve_with};
use rampart_controlplane::service::{self, ApiSettings};
use rampart_credentials::{AmtSecretStore, Kek, password};
use rampart_dataplane::PolicyHandle;
use rampart_dataplane::link::{AuditRecord, LinkHooks, PasswordVerdict};
use rampart_policy::cred::{self, DOMAIN_ACCOUNT};
use rampart_policy::snapshot::{
    self, AccountEntry, AccountKind, AuthDecision, DenyReason, Limits, Snapshot, Verifier,
};
use rampart_store::{
    AccountUpdate, AuditQuery, Credential, NewAccount, OpenOptions, Outcome, Role,
};
use zeroize::Zeroizing;

const KEY: [u8; 32] = [0x5a; 32];

fn snapshot_of(generation: u64, users: &[&str]) -> Snapshot {
    let mut users = users.to_vec();
    users.sort();
    Snapshot {
        generation,
        created_at_ms: 0,
        credential_key: KEY,
        accounts: users
            .iter()
            .map(|u| AccountEntry {
                name: (*u).into(),
                kind: AccountKind::Service,
                role: None,
                disabled: false,
                verifier: Verifier::Digest(cred::digest(
                    &KEY,
                    DOMAIN_ACCOUNT,
                    format!("{u}-secret").as_bytes(),
                )),
            })
            .collect(),
        acls: vec![],
        api_keys: vec![],
        devices: vec![],
        limits: Limits::default(),
    }
}

fn auth(handle: &PolicyHandle, user: &str) -> Option<AuthDecision> {
    handle
        .current()
        .map(|p| p.authenticate(user, format!("{user}-secret").as_bytes()))
}

/// Polls `cond` every millisecond for up to `limit`; returns how long it took.
fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    start.elapsed()
}

#[test]
fn snapshots_flow_over_the_control_link() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("control.sock");

    // Control plane with generation 1: alice and bob.
    let feed = Arc::new(Feed::new());
    assert!(
        feed.publish_snapshot(&snapshot_of(1, &["alice", "bob"]))
            .unwrap()
    );
    serve(UnixListener::bind(&path).unwrap(), feed.clone());

    // Data plane.
    let handle = PolicyHandle::new();
    assert_eq!(handle.generation(), 0);
    rampart_dataplane::link::spawn(path.clone(), handle.clone(), LinkHooks::default());

    wait_for(Duration::from_secs(5), "generation 1", || {
        handle.generation() == 1
    });
    assert_eq!(auth(&handle, "alice"), Some(AuthDecision::Allowed));
    assert!(
        feed.wait_applied(1, Duration::from_secs(5)),
        "{:?}",
        feed.links()
    );
    let links = feed.links();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].greeted_generation, 0);
    assert_eq!(links[0].applied_generation, Some(1));
    assert!(links[0].applied_at_ms.is_some());

    // Generation 2 deletes alice: measure publish-to-enforcement.
    let published = Instant::now();
    assert!(feed.publish_snapshot(&snapshot_of(2, &["bob"])).unwrap());
    let took = wait_for(Duration::from_secs(1), "alice to be refused", || {
        auth(&handle, "alice") == Some(AuthDecision::Denied(DenyReason::UnknownUser))
    });
    println!("revocation: alice refused by the data plane {took:?} after publish");
    assert!(published.elapsed() < Duration::from_secs(1));
    assert!(
        feed.wait_applied(2, Duration::from_secs(5)),
        "{:?}",
        feed.links()
    );
    assert_eq!(auth(&handle, "bob"), Some(AuthDecision::Allowed));
    // An older generation is not published again.
    assert!(!feed.publish_snapshot(&snapshot_of(1, &["alice"])).unwrap());

    // The control plane goes away: the data plane keeps generation 2.
    feed.close();
    wait_for(Duration::from_secs(5), "the link to drop", || {
        feed.links().is_empty()
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(handle.generation(), 2);
    assert_eq!(auth(&handle, "bob"), Some(AuthDecision::Allowed));
    assert_eq!(
        auth(&handle, "alice"),
        Some(AuthDecision::Denied(DenyReason::UnknownUser))
    );

    // A new control plane whose generation 3 is corrupt: rejected, generation 2 stays.
    let mut corrupt = snapshot::encode(&snapshot_of(3, &["mallory"])).unwrap();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    let feed2 = Arc::new(Feed::new());
    assert!(feed2.publish(3, corrupt));
    // The first server's accept thread may still hold the old socket until its next accept.
    let _ = std::fs::remove_file(&path);
    serve(UnixListener::bind(&path).unwrap(), feed2.clone());
    wait_for(
        Duration::from_secs(15),
        "the corrupt snapshot to be rejected",
        || {
            feed2
                .links()
                .first()
                .is_some_and(|l| l.last_rejection.is_some())
        },
    );
    let link = &feed2.links()[0];
    assert_eq!(
        link.greeted_generation, 2,
        "the greeting reports the policy held"
    );
    assert_eq!(
        link.last_rejection,
        Some((3, "checksum_mismatch".to_owned()))
    );
    assert_eq!(link.applied_generation, None);
    assert!(!feed2.wait_applied(3, Duration::from_millis(100)));
    assert_eq!(handle.generation(), 2);
    assert_eq!(
        auth(&handle, "mallory"),
        Some(AuthDecision::Denied(DenyReason::UnknownUser))
    );
    assert_eq!(auth(&handle, "bob"), Some(AuthDecision::Allowed));

    // A good generation 4 still goes through on the same link.
    assert!(feed2.publish_snapshot(&snapshot_of(4, &["carol"])).unwrap());
    assert!(
        feed2.wait_applied(4, Duration::from_secs(5)),
        "{:?}",
        feed2.links()
    );
    assert_eq!(handle.generation(), 4);
    assert_eq!(auth(&handle, "carol"), Some(AuthDecision::Allowed));
    assert_eq!(
        auth(&handle, "bob"),
        Some(AuthDecision::Denied(DenyReason::UnknownUser))
    );
    feed2.close();
}

const RIGHT: &[u8] = b"correct horse battery staple";

#[test]
fn human_passwords_and_audit_over_the_control_link() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let url = format!("sqlite://{}", dir.path().join("db/rampart.db").display());
    let store = rampart_store::open(&url, &OpenOptions::default()).unwrap();
    let hash = password::hash(std::str::from_utf8(RIGHT).unwrap()).unwrap();
    for name in ["alice", "bob", "carol"] {
        store
            .create_account(
                &NewAccount {
                    name: name.into(),
                    kind: rampart_store::AccountKind::Human,
                    role: Some(Role::Operator),
                    credential: Credential::Argon2(hash.clone()),
                },
                0,
            )
            .unwrap();
    }
    let disable = AccountUpdate {
        disabled: Some(true),
        ..AccountUpdate::default()
    };
    store.update_account("carol", &disable, 0).unwrap();
    store
        .create_account(
            &NewAccount {
                name: "svc".into(),
                kind: rampart_store::AccountKind::Service,
                role: None,
                credential: Credential::Digest(cred::digest(&KEY, DOMAIN_ACCOUNT, RIGHT)),
            },
            0,
        )
        .unwrap();

    // The control plane: snapshot compiled from the store, the API's state and runtime, and
    // the link serving with them.
    let feed = Arc::new(Feed::new());
    service::publish_once(&*store, &feed, &KEY, &Limits::default(), &mut None);
    let audit_log = dir.path().join("audit.log");
    let api = service::build_api(
        ApiSettings {
            api_socket: run.join("api.sock"),
            admin_socket: run.join("admin.sock"),
            session_ttl: Duration::from_secs(3600),
            cira_ca: None,
            channel_socket: run.join("channels.sock"),
            relay_socket: run.join("relay.sock"),
        },
        store.clone(),
        Zeroizing::new(KEY),
        AmtSecretStore::Local(Kek::from_bytes(&[7; 32])),
        Audit::open(&AuditSink::File(audit_log.clone())).unwrap(),
        feed.clone(),
    )
    .unwrap();
    let path = run.join("control.sock");
    serve_with(
        rampart_controlplane::bind_socket(&path).unwrap(),
        feed.clone(),
        api.link_services(),
    );
    let (stop, stop_rx) = crossbeam_channel::bounded::<()>(0);
    let api = api.spawn(stop_rx).unwrap();

    // The data plane.
    let handle = PolicyHandle::new();
    let link = rampart_dataplane::link::spawn(path, handle.clone(), LinkHooks::default());
    wait_for(Duration::from_secs(5), "the first snapshot", || {
        handle.generation() > 0 && link.is_up()
    });
    // Humans are the control plane's to check.
    let policy = handle.current().unwrap();
    assert_eq!(
        policy.authenticate("alice", RIGHT),
        AuthDecision::AskControlPlane
    );
    assert_eq!(policy.authenticate("svc", RIGHT), AuthDecision::Allowed);

    // A core's executor asks; the answers arrive on it without blocking it.
    let rt = compio::runtime::Runtime::new().unwrap();
    let check = |user: &str, pw: &[u8], peer: &str| {
        let peer: IpAddr = peer.parse().unwrap();
        rt.block_on(link.check_password(user, pw, peer, Duration::from_secs(20)))
    };
    let started = Instant::now();
    assert_eq!(
        check("alice", RIGHT, "192.0.2.10"),
        PasswordVerdict::Allowed
    );
    println!("password check over the link: {:?}", started.elapsed());
    // Several at once from one executor, all through the control plane's Argon2 pool.
    let peer: IpAddr = "192.0.2.10".parse().unwrap();
    let many =
        rt.block_on(futures_util::future::join_all((0..6).map(|_| {
            link.check_password("alice", RIGHT, peer, Duration::from_secs(20))
        })));
    assert_eq!(many, vec![PasswordVerdict::Allowed; 6]);
    for (user, pw) in [
        ("alice", &b"wrong"[..]),
        ("alice", b"\xff\xfe not utf-8"),
        ("carol", RIGHT),  // disabled
        ("svc", RIGHT),    // a service account has no password to check here
        ("nobody", RIGHT), // unknown
        ("not a valid name!", RIGHT),
    ] {
        assert_eq!(
            check(user, pw, "192.0.2.10"),
            PasswordVerdict::Denied,
            "{user}"
        );
    }

    // Failures lock the account like web logins do: 5 free, the 6th locks, and then even the
    // right password from another address is refused without an Argon2 run.
    for i in 0..6 {
        let guess = format!("guess {i}");
        assert_eq!(
            check("bob", guess.as_bytes(), "198.51.100.20"),
            PasswordVerdict::Denied
        );
    }
    assert_eq!(
        check("bob", b"guess", "198.51.100.20"),
        PasswordVerdict::Throttled
    );
    assert_eq!(
        check("bob", RIGHT, "203.0.113.30"),
        PasswordVerdict::Throttled
    );
    // Another account is not affected.
    assert_eq!(
        check("alice", RIGHT, "203.0.113.30"),
        PasswordVerdict::Allowed
    );

    // Audit records from the data plane land in the store and the audit log.
    link.audit(AuditRecord {
        action: "mqtt.login".into(),
        actor: "anonymous".into(),
        target: "mallory".into(),
        outcome: "denied".into(),
        source: Some("192.0.2.66".parse().unwrap()),
        detail: "unknown user".into(),
    });
    link.audit(AuditRecord {
        action: "mqtt.acl".into(),
        actor: "alice".into(),
        target: "plant/secret".into(),
        outcome: "denied".into(),
        source: Some(peer),
        detail: "publish".into(),
    });
    let query = |action: &str| {
        store
            .list_audit(&AuditQuery {
                action: Some(action.into()),
                limit: 100,
                ..AuditQuery::default()
            })
            .unwrap()
    };
    wait_for(Duration::from_secs(5), "the audit records", || {
        !query("mqtt.login").is_empty() && !query("mqtt.acl").is_empty()
    });
    let login = &query("mqtt.login")[0];
    assert_eq!(
        (
            login.actor.as_str(),
            login.object.as_deref(),
            login.outcome,
            login.source.as_deref(),
            login.detail.as_deref()
        ),
        (
            "anonymous",
            Some("mallory"),
            Outcome::Failure,
            Some("192.0.2.66"),
            Some("denied: unknown user")
        )
    );
    let acl = &query("mqtt.acl")[0];
    assert_eq!(
        (acl.actor.as_str(), acl.object.as_deref()),
        ("alice", Some("plant/secret"))
    );
    // The control plane audited every check it answered, with the reason.
    let checks = query("auth.dataplane");
    let count = |outcome: Outcome, detail: Option<&str>| {
        checks
            .iter()
            .filter(|e| e.outcome == outcome && e.detail.as_deref() == detail)
            .count()
    };
    assert_eq!(count(Outcome::Success, None), 8);
    assert_eq!(count(Outcome::Failure, Some("bad password")), 8);
    assert_eq!(count(Outcome::Failure, Some("disabled")), 1);
    assert_eq!(count(Outcome::Failure, Some("service account")), 1);
    assert_eq!(count(Outcome::Failure, Some("unknown user")), 2);
    assert_eq!(count(Outcome::Failure, Some("throttled")), 2);
    let success = checks
        .iter()
        .find(|e| e.outcome == Outcome::Success)
        .unwrap();
    assert_eq!(success.actor, "alice");
    assert!(success.source.is_some());
    wait_for(Duration::from_secs(5), "the audit log file", || {
        std::fs::read_to_string(&audit_log).is_ok_and(|t| t.contains("plant/secret"))
    });
    let log = std::fs::read_to_string(&audit_log).unwrap();
    assert!(log.contains(r#""action":"mqtt.login""#), "{log}");
    assert!(log.contains(r#""object":"mallory""#), "{log}");
    assert!(
        !log.contains("correct horse") && !log.contains("guess"),
        "{log}"
    );

    // The control plane goes away: checks are refused at once, not after their timeout.
    feed.close();
    wait_for(Duration::from_secs(5), "the link to drop", || !link.is_up());
    let started = Instant::now();
    assert_eq!(
        check("alice", RIGHT, "192.0.2.10"),
        PasswordVerdict::Unavailable
    );
    let took = started.elapsed();
    assert!(took < Duration::from_millis(100), "{took:?}");
    drop(stop);
    api.join().unwrap();
}
