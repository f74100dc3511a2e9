//! End to end over a real Unix socket: the control plane's link server and snapshot feed
//! (`rampart_controlplane::link::serve`, `feed::Feed`) against the data plane's link thread
//! (`rampart_dataplane::link::spawn`) and its `PolicyHandle`.
//!
//! Publish, apply and acknowledge; revoke a user and measure how long the data plane keeps
//! accepting them; lose the control plane and keep the policy; refuse a corrupt snapshot after
//! reconnecting to a new control plane, and recover with a good one.

use std::os::unix::net::UnixListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_controlplane::feed::Feed;
use rampart_controlplane::link::serve;
use rampart_dataplane::PolicyHandle;
use rampart_policy::cred::{self, DOMAIN_ACCOUNT};
use rampart_policy::snapshot::{
    self, AccountEntry, AccountKind, AuthDecision, DenyReason, Limits, Snapshot, Verifier,
};

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
    rampart_dataplane::link::spawn(path.clone(), handle.clone());

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
