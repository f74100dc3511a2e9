//! Denial records of the broker.
//!
//! Each refused login, PUBLISH and SUBSCRIBE is written as a structured event with target
//! `rampart::audit` (fields: `event`, `username`, `client_id`, `topic`/`filter`, `peer`). A
//! peer can trigger these at will, so each core writes at most [`PER_SECOND`] per second and
//! reports how many it suppressed in the next record; the counters in `stats` count every one.

use std::cell::Cell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tracing::info;

/// Records per core per second.
const PER_SECOND: u32 = 100;

thread_local! {
    static WINDOW: Cell<(Option<Instant>, u32, u64)> = const { Cell::new((None, 0, 0)) };
}

/// Whether a record may be written now, and how many were suppressed before it.
fn allow() -> Option<u64> {
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
    if let Some(suppressed) = allow() {
        info!(target: "rampart::audit", event = "mqtt_publish_denied", username, client_id, topic, suppressed);
    }
}

pub(crate) fn denied_subscribe(username: &str, client_id: &str, filter: &str) {
    if let Some(suppressed) = allow() {
        info!(target: "rampart::audit", event = "mqtt_subscribe_denied", username, client_id, filter, suppressed);
    }
}

pub(crate) fn denied_login(username: &str, client_id: &str, peer: SocketAddr, why: &'static str) {
    if let Some(suppressed) = allow() {
        info!(target: "rampart::audit", event = "mqtt_login_denied", username, client_id, %peer, reason = why, suppressed);
    }
}
