//! Denial records of the broker.
//!
//! Each refused login, PUBLISH and SUBSCRIBE becomes an audit record sent over the control link
//! into the control plane's audit log (store and file): actions `mqtt.login`, `mqtt.publish`,
//! `mqtt.subscribe`, outcome `denied`. The link queues without blocking and counts what it must
//! drop. Each record is also written as a structured event with target `rampart::audit`; a
//! peer can trigger these at will, so each core writes at most [`PER_SECOND`] of those per
//! second and reports how many it suppressed in the next one. The counters in `stats` count
//! every denial.

use std::cell::{Cell, RefCell};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tracing::info;

use crate::link::{AuditRecord, LinkHandle};

/// Log lines per core per second.
const PER_SECOND: u32 = 100;

thread_local! {
    static WINDOW: Cell<(Option<Instant>, u32, u64)> = const { Cell::new((None, 0, 0)) };
    static LINK: RefCell<Option<LinkHandle>> = const { RefCell::new(None) };
}

/// Sends this core's records over `link` from now on.
pub(crate) fn set_link(link: Option<LinkHandle>) {
    LINK.with(|l| *l.borrow_mut() = link);
}

fn send(action: &str, actor: &str, target: &str, source: Option<IpAddr>, detail: &str) {
    record(action, actor, target, "denied", source, detail);
}

/// Queues one audit record on this core's control link (if any). Also used by the CIRA server.
pub(crate) fn record(
    action: &str,
    actor: &str,
    target: &str,
    outcome: &str,
    source: Option<IpAddr>,
    detail: &str,
) {
    LINK.with(|l| {
        if let Some(link) = l.borrow().as_ref() {
            link.audit(AuditRecord {
                action: action.to_string(),
                actor: actor.to_string(),
                target: target.to_string(),
                outcome: outcome.to_string(),
                source,
                detail: detail.to_string(),
            });
        }
    });
}

/// Whether a log line may be written now, and how many were suppressed before it.
pub(crate) fn allow() -> Option<u64> {
    WINDOW.with(|w| {
        let (start, n, suppressed) = w.get();
        let now = Instant::now();
        match start {
            Some(s) if now.duration_since(s) < Duration::from_secs(1) => {
                if n < PER_SECOND {
                    w.set((start, n + 1, 0));
                    Some(suppressed)
                } else {
                    w.set((start, n, suppressed + 1));
                    None
                }
            }
            _ => {
                w.set((Some(now), 1, 0));
                Some(suppressed)
            }
        }
    })
}

pub(crate) fn denied_publish(username: &str, client_id: &str, topic: &str) {
    send(
        "mqtt.publish",
        username,
        topic,
        None,
        &format!("client {client_id}"),
    );
    if let Some(suppressed) = allow() {
        info!(target: "rampart::audit", event = "mqtt_publish_denied", username, client_id, topic, suppressed);
    }
}

pub(crate) fn denied_subscribe(username: &str, client_id: &str, filter: &str) {
    send(
        "mqtt.subscribe",
        username,
        filter,
        None,
        &format!("client {client_id}"),
    );
    if let Some(suppressed) = allow() {
        info!(target: "rampart::audit", event = "mqtt_subscribe_denied", username, client_id, filter, suppressed);
    }
}

/// A refused login. `to_link`: false when the control plane decided (and audited) it itself.
pub(crate) fn denied_login(
    username: &str,
    client_id: &str,
    peer: SocketAddr,
    why: &'static str,
    to_link: bool,
) {
    if to_link {
        send(
            "mqtt.login",
            "anonymous",
            username,
            Some(peer.ip()),
            &format!("{why}; client {client_id}"),
        );
    }
    if let Some(suppressed) = allow() {
        info!(target: "rampart::audit", event = "mqtt_login_denied", username, client_id, %peer, reason = why, suppressed);
    }
}
