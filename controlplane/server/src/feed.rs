//! The snapshot feed: the newest encoded policy snapshot, handed to every control link, and
//! what each connected data plane answered.
//!
//! Whoever compiles the policy calls [`Feed::publish`]; every link thread ([`crate::link`])
//! is woken and sends the new snapshot to its data plane, which answers `APPLIED` or
//! `REJECTED`; the link records that here ([`Feed::links`], [`Feed::wait_applied`]). The API
//! reaches every connected data plane through it too ([`Feed::kick`]).
//!
//! No locks: the current snapshot and the list of links are `arc-swap` cells, each link has a
//! bounded(1) crossbeam channel that coalesces wake-ups, and per-link status lives in atomics
//! and `arc-swap` cells.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::{ArcSwap, ArcSwapOption};
use crossbeam_channel::{Receiver, Sender};
use rampart_policy::snapshot::{self, Snapshot, SnapshotError};

/// An encoded snapshot as published.
#[derive(Clone)]
pub struct Published {
    /// Its generation.
    pub generation: u64,
    /// Its encoding ([`rampart_policy::snapshot::encode`]).
    pub bytes: Arc<[u8]>,
}

impl fmt::Debug for Published {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Published")
            .field("generation", &self.generation)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// One connected data plane, as [`Feed::links`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkStatus {
    /// Link id, unique for the life of the feed.
    pub id: u64,
    /// When it connected, Unix milliseconds.
    pub connected_at_ms: i64,
    /// The generation it said it held in its greeting (0: none).
    pub greeted_generation: u64,
    /// The last generation it applied on this link, if any.
    pub applied_generation: Option<u64>,
    /// When it acknowledged that, Unix milliseconds.
    pub applied_at_ms: Option<i64>,
    /// The last generation it rejected on this link, and its reason token.
    pub last_rejection: Option<(u64, String)>,
    /// The node name it reports its CIRA devices under, once it has sent a report.
    pub node: Option<String>,
}

/// The newest snapshot and the links that distribute it. Share it as `Arc<Feed>`.
pub struct Feed {
    current: ArcSwapOption<Published>,
    links: ArcSwap<Vec<Arc<LinkSlot>>>,
    next_id: AtomicU64,
    closed: AtomicBool,
}

/// A link's record in the feed.
struct LinkSlot {
    id: u64,
    connected_at_ms: i64,
    greeted_generation: u64,
    /// (generation, at_ms) of the last APPLIED.
    applied: ArcSwapOption<(u64, i64)>,
    /// (generation, reason) of the last REJECTED.
    rejected: ArcSwapOption<(u64, String)>,
    /// The node name of its device reports.
    node: ArcSwapOption<String>,
    wake: Sender<()>,
    /// Lines for the link's writer (`KICK`).
    lines: Sender<String>,
}

impl Default for Feed {
    fn default() -> Self {
        Self::new()
    }
}

impl Feed {
    /// An empty feed: links connect and wait for the first snapshot.
    pub fn new() -> Self {
        Self {
            current: ArcSwapOption::empty(),
            links: ArcSwap::from_pointee(Vec::new()),
            next_id: AtomicU64::new(1),
            closed: AtomicBool::new(false),
        }
    }

    /// Publishes an encoded snapshot of `generation` and wakes every link to send it.
    /// Returns `false` (and changes nothing) unless `generation` is newer than the current
    /// one, so racing publishers can never move the feed backwards.
    pub fn publish(&self, generation: u64, bytes: impl Into<Arc<[u8]>>) -> bool {
        let new = Some(Arc::new(Published {
            generation,
            bytes: bytes.into(),
        }));
        let mut accepted = false;
        self.current.rcu(|cur| {
            accepted = cur.as_ref().is_none_or(|c| c.generation < generation);
            if accepted { new.clone() } else { cur.clone() }
        });
        if accepted {
            self.wake_all();
        }
        accepted
    }

    /// Encodes `snapshot` (validating it as the data plane will) and publishes it. Returns
    /// whether it was newer than the current one.
    pub fn publish_snapshot(&self, snapshot: &Snapshot) -> Result<bool, SnapshotError> {
        let bytes = snapshot::encode(snapshot)?;
        Ok(self.publish(snapshot.generation, bytes))
    }

    /// The current snapshot, if one was published.
    pub fn current(&self) -> Option<Published> {
        self.current.load().as_deref().cloned()
    }

    /// The current generation, if a snapshot was published.
    pub fn generation(&self) -> Option<u64> {
        self.current.load().as_ref().map(|p| p.generation)
    }

    /// Every connected link's status, oldest first.
    pub fn links(&self) -> Vec<LinkStatus> {
        self.links
            .load()
            .iter()
            .map(|slot| {
                let applied = slot.applied.load();
                LinkStatus {
                    id: slot.id,
                    connected_at_ms: slot.connected_at_ms,
                    greeted_generation: slot.greeted_generation,
                    applied_generation: applied.as_ref().map(|a| a.0),
                    applied_at_ms: applied.as_ref().map(|a| a.1),
                    last_rejection: slot.rejected.load().as_deref().cloned(),
                    node: slot.node.load().as_deref().cloned(),
                }
            })
            .collect()
    }

    /// Waits until at least one link is connected and every connected link has applied
    /// `generation` or a newer one. Returns `false` if that does not happen within `timeout`
    /// (no data plane connected, one rejected it, or one is slow).
    pub fn wait_applied(&self, generation: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let links = self.links.load();
            let done = !links.is_empty()
                && links.iter().all(|slot| {
                    slot.applied
                        .load()
                        .as_ref()
                        .is_some_and(|a| a.0 >= generation)
                });
            if done {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5).min(deadline - now));
        }
    }

    /// Asks every connected data plane to disconnect CIRA device `guid` (canonical), whichever
    /// holds its tunnel. Returns how many links it was sent to (0 for a GUID that is not
    /// canonical).
    pub fn kick(&self, guid: &str) -> usize {
        let Ok(line) = rampart_policy::link::kick_line(guid) else {
            return 0;
        };
        self.links
            .load()
            .iter()
            .filter(|slot| slot.lines.send(line.clone()).is_ok())
            .count()
    }

    /// Whether a connected link other than `except` reports its devices under `node`.
    pub(crate) fn node_linked(&self, node: &str, except: u64) -> bool {
        self.links
            .load()
            .iter()
            .any(|s| s.id != except && s.node.load().as_deref().is_some_and(|n| n == node))
    }

    /// Ends every link (their threads close their sockets) and refuses new ones. For an
    /// orderly shutdown: data planes keep their current policy and reconnect later.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.wake_all();
    }

    /// Whether [`Feed::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    fn wake_all(&self) {
        for slot in self.links.load().iter() {
            // Full means a wake-up is already pending: the link will see the newest anyway.
            let _ = slot.wake.try_send(());
        }
    }

    /// Registers a link whose data plane greeted with `greeted_generation`. The receiver is
    /// woken on every publish and on close; `lines` takes what [`Feed::kick`] sends it.
    pub(crate) fn attach(
        self: &Arc<Self>,
        greeted_generation: u64,
        lines: Sender<String>,
    ) -> (LinkHandle, Receiver<()>) {
        let (wake, rx) = crossbeam_channel::bounded(1);
        let slot = Arc::new(LinkSlot {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            connected_at_ms: now_ms(),
            greeted_generation,
            applied: ArcSwapOption::empty(),
            rejected: ArcSwapOption::empty(),
            node: ArcSwapOption::empty(),
            wake,
            lines,
        });
        self.links.rcu(|links| {
            let mut links = Vec::clone(links);
            links.push(slot.clone());
            links
        });
        (
            LinkHandle {
                feed: self.clone(),
                slot,
            },
            rx,
        )
    }
}

impl fmt::Debug for Feed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Feed")
            .field("generation", &self.generation())
            .field("links", &self.links.load().len())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// A link's registration; dropping it removes the link from [`Feed::links`].
pub(crate) struct LinkHandle {
    feed: Arc<Feed>,
    slot: Arc<LinkSlot>,
}

impl LinkHandle {
    pub(crate) fn id(&self) -> u64 {
        self.slot.id
    }

    pub(crate) fn record_applied(&self, generation: u64) {
        self.slot
            .applied
            .store(Some(Arc::new((generation, now_ms()))));
    }

    pub(crate) fn record_rejected(&self, generation: u64, reason: &str) {
        self.slot
            .rejected
            .store(Some(Arc::new((generation, reason.to_owned()))));
    }

    /// Records the node name of the link's first device report; a later report under another
    /// name is refused (`false`).
    pub(crate) fn set_node(&self, node: &str) -> bool {
        match self.slot.node.load().as_deref() {
            Some(n) => n == node,
            None => {
                self.slot.node.store(Some(Arc::new(node.to_owned())));
                true
            }
        }
    }

    /// The node name of its device reports, if it sent one.
    pub(crate) fn node(&self) -> Option<String> {
        self.slot.node.load().as_deref().cloned()
    }
}

impl Drop for LinkHandle {
    fn drop(&mut self) {
        let id = self.slot.id;
        self.feed.links.rcu(|links| {
            links
                .iter()
                .filter(|s| s.id != id)
                .cloned()
                .collect::<Vec<_>>()
        });
    }
}

impl fmt::Debug for LinkHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkHandle")
            .field("id", &self.slot.id)
            .finish()
    }
}

/// Unix time in milliseconds (0 if the clock is before 1970).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_only_moves_forward() {
        let feed = Arc::new(Feed::new());
        assert_eq!(feed.generation(), None);
        assert!(feed.publish(2, vec![2u8]));
        assert!(!feed.publish(1, vec![1u8]));
        assert!(!feed.publish(2, vec![3u8]));
        assert_eq!(&*feed.current().unwrap().bytes, &[2]);
        assert!(feed.publish(3, vec![3u8]));
        assert_eq!(feed.generation(), Some(3));
    }

    #[test]
    fn links_are_woken_tracked_and_removed() {
        let feed = Arc::new(Feed::new());
        let (lines_a, kicks_a) = crossbeam_channel::unbounded();
        let (lines_b, kicks_b) = crossbeam_channel::unbounded();
        let (a, wake_a) = feed.attach(0, lines_a);
        let (b, wake_b) = feed.attach(7, lines_b);
        assert_eq!(feed.links().len(), 2);
        assert!(feed.publish(1, vec![0u8]));
        assert!(feed.publish(2, vec![0u8]));
        // Coalesced: one pending wake-up each.
        assert_eq!(wake_a.try_iter().count(), 1);
        assert_eq!(wake_b.try_iter().count(), 1);
        assert!(!feed.wait_applied(2, Duration::from_millis(10)));
        a.record_applied(2);
        b.record_rejected(2, "checksum_mismatch");
        assert!(!feed.wait_applied(2, Duration::from_millis(10)));
        b.record_applied(2);
        assert!(feed.wait_applied(2, Duration::from_millis(10)));
        assert!(feed.wait_applied(1, Duration::ZERO));
        let links = feed.links();
        assert_eq!(links[1].greeted_generation, 7);
        assert_eq!(links[1].applied_generation, Some(2));
        assert_eq!(
            links[1].last_rejection,
            Some((2, "checksum_mismatch".to_owned()))
        );
        assert!(links[0].applied_at_ms.is_some());
        // Kicks go to every link; device reports name their node, once.
        let guid = "12345678-9abc-def0-1122-334455667788";
        assert_eq!(feed.kick(guid), 2);
        assert_eq!(feed.kick("not-a-guid"), 0);
        let line = format!("KICK {guid}\n");
        assert_eq!(kicks_a.try_iter().collect::<Vec<_>>(), vec![line.clone()]);
        assert_eq!(kicks_b.try_iter().collect::<Vec<_>>(), vec![line]);
        assert_eq!(links[0].node, None);
        assert!(a.set_node("edge-1"));
        assert!(a.set_node("edge-1"));
        assert!(!a.set_node("edge-2"));
        assert_eq!(a.node().as_deref(), Some("edge-1"));
        assert!(!feed.node_linked("edge-1", a.id()));
        assert!(feed.node_linked("edge-1", b.id()));
        assert!(b.set_node("edge-1"));
        assert!(feed.node_linked("edge-1", a.id()) && feed.node_linked("edge-1", b.id()));
        assert_eq!(feed.links()[0].node.as_deref(), Some("edge-1"));
        drop(a);
        assert!(!feed.node_linked("edge-1", b.id()));
        assert_eq!(feed.links().len(), 1);
        assert_eq!(feed.links()[0].id, b.id());
        drop(b);
        assert!(feed.links().is_empty());
        // No links: nothing can be applied.
        assert!(!feed.wait_applied(0, Duration::ZERO));
        feed.close();
        assert!(feed.is_closed());
    }
}
