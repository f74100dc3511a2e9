//! Which devices hold a tunnel now, across every core, without a lock.
//!
//! The map is split into 256 shards by GUID; each shard is an immutable `HashMap` behind an
//! `ArcSwap`, replaced whole (read-copy-update) when a tunnel comes or goes. Readers never
//! wait; a writer copies one shard (a few dozen entries with ten thousand devices). A tunnel is
//! registered once it is authenticated and forwarding; registering a GUID that already has one
//! tells the older one to go ([`Live::killed`]), which is how a reconnecting device replaces
//! its stale tunnel on whichever core that one lives.

use std::collections::HashMap;
use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::Poll;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use atomic_waker::AtomicWaker;
use rampart_apf_proto::Guid;
use rampart_rt::channel::{Sender, TrySendError};

use super::channel::ChannelRequest;

const SHARDS: usize = 256;

/// One shard: an immutable map, replaced whole.
type Shard = ArcSwap<HashMap<Guid, Arc<Live>>>;

/// One live tunnel.
#[derive(Debug)]
pub(crate) struct Live {
    /// Unique per registration.
    pub(crate) id: u64,
    /// The core that serves it.
    pub(crate) core: usize,
    /// When it was established, ms since the epoch.
    pub(crate) since_ms: u64,
    /// When the device was last heard from, ms since the epoch (updated at most once a
    /// second per tunnel).
    pub(crate) last_seen_ms: AtomicU64,
    killed: AtomicBool,
    waker: AtomicWaker,
    /// Channel requests for the tunnel's core (the channel service's thread sends them).
    requests: Sender<ChannelRequest>,
}

impl Live {
    /// Tells the tunnel to close (a newer one for its GUID arrived, or the control plane asked).
    pub(crate) fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Resolves once [`Live::kill`] was called.
    pub(crate) async fn killed(&self) {
        poll_fn(|cx| {
            if self.killed.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            self.waker.register(cx.waker());
            if self.killed.load(Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }

    /// Hands a channel request to the tunnel; it comes back if the tunnel's queue is full or
    /// the tunnel has gone.
    pub(crate) fn request(&self, req: ChannelRequest) -> Result<(), ChannelRequest> {
        self.requests
            .try_send(req)
            .map_err(TrySendError::into_inner)
    }

    /// Records that the device was heard from.
    pub(crate) fn seen(&self, now_ms: u64) {
        if now_ms >= self.last_seen_ms.load(Ordering::Relaxed) + 1000 {
            self.last_seen_ms.store(now_ms, Ordering::Relaxed);
        }
    }
}

/// Every live tunnel by GUID.
#[derive(Debug)]
pub(crate) struct Registry {
    shards: Box<[Shard]>,
    next: AtomicU64,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| ArcSwap::default()).collect(),
            next: AtomicU64::new(1),
        }
    }
}

pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Registry {
    fn shard(&self, guid: &Guid) -> &Shard {
        // GUIDs are random enough in their last bytes; no hashing needed.
        &self.shards[usize::from(guid.0[15]) % SHARDS]
    }

    /// Registers `guid`'s new tunnel on `core`, which takes channel requests from `requests`;
    /// the one it replaces, if any, is told to go and returned.
    pub(crate) fn register(
        &self,
        guid: Guid,
        core: usize,
        requests: Sender<ChannelRequest>,
    ) -> (Arc<Live>, Option<Arc<Live>>) {
        let now = unix_ms();
        let live = Arc::new(Live {
            id: self.next.fetch_add(1, Ordering::Relaxed),
            core,
            since_ms: now,
            last_seen_ms: AtomicU64::new(now),
            killed: AtomicBool::new(false),
            waker: AtomicWaker::new(),
            requests,
        });
        let prev = self.shard(&guid).rcu(|m| {
            let mut m = HashMap::clone(m);
            m.insert(guid, live.clone());
            m
        });
        let old = prev.get(&guid).cloned();
        if let Some(old) = &old {
            old.kill();
        }
        (live, old)
    }

    /// Removes `guid`'s entry if it is still `live` (a replaced tunnel leaves its successor).
    /// Returns whether it was.
    pub(crate) fn unregister(&self, guid: &Guid, live: &Arc<Live>) -> bool {
        let mut removed = false;
        self.shard(guid).rcu(|m| {
            removed = m.get(guid).is_some_and(|e| Arc::ptr_eq(e, live));
            if removed {
                let mut m = HashMap::clone(m);
                m.remove(guid);
                m
            } else {
                HashMap::clone(m)
            }
        });
        removed
    }

    /// `guid`'s tunnel, if it holds one now.
    pub(crate) fn get(&self, guid: &Guid) -> Option<Arc<Live>> {
        self.shard(guid).load().get(guid).cloned()
    }

    /// Tunnels held now.
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.load().len()).sum()
    }

    /// Every tunnel held now: (GUID, since, last seen), ms since the epoch. Each shard is read
    /// at once; the whole is not one instant.
    pub(crate) fn snapshot(&self) -> Vec<(Guid, u64, u64)> {
        let mut out = Vec::with_capacity(self.len());
        for shard in self.shards.iter() {
            out.extend(
                shard
                    .load()
                    .iter()
                    .map(|(g, l)| (*g, l.since_ms, l.last_seen_ms.load(Ordering::Relaxed))),
            );
        }
        out
    }

    /// Tells `guid`'s tunnel, if there is one, to go (it sends DISCONNECT and closes; its
    /// entry leaves when it does). Returns whether there was one.
    pub(crate) fn kick(&self, guid: &Guid) -> bool {
        match self.shard(guid).load().get(guid) {
            Some(live) => {
                live.kill();
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requests() -> Sender<ChannelRequest> {
        rampart_rt::channel::bounded(1).0
    }

    #[test]
    fn replacement_kills_the_older_and_keeps_the_newer() {
        let r = Registry::default();
        let g: Guid = "12345678-9abc-def0-1122-334455667788".parse().unwrap();
        let (first, old) = r.register(g, 0, requests());
        assert!(old.is_none());
        let (second, old) = r.register(g, 1, requests());
        let old = old.unwrap();
        assert!(Arc::ptr_eq(&old, &first));
        assert!(first.killed.load(Ordering::Acquire));
        assert!(!second.killed.load(Ordering::Acquire));
        // The replaced one leaving does not remove its successor.
        assert!(!r.unregister(&g, &first));
        assert_eq!(r.shard(&g).load().get(&g).unwrap().id, second.id);
        assert_eq!(r.len(), 1);
        assert!(r.unregister(&g, &second));
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn snapshot_lists_and_kick_kills() {
        let r = Registry::default();
        let a: Guid = "12345678-9abc-def0-1122-334455667788".parse().unwrap();
        let b: Guid = "00000000-0000-0000-0000-000000000001".parse().unwrap();
        assert!(r.snapshot().is_empty());
        assert!(!r.kick(&a));
        let (la, _) = r.register(a, 0, requests());
        let (lb, _) = r.register(b, 1, requests());
        lb.last_seen_ms.store(lb.since_ms + 5000, Ordering::Relaxed);
        let mut snap = r.snapshot();
        snap.sort();
        assert_eq!(
            snap,
            vec![
                (b, lb.since_ms, lb.since_ms + 5000),
                (a, la.since_ms, la.since_ms)
            ]
        );
        assert!(r.kick(&a));
        assert!(la.killed.load(Ordering::Acquire));
        assert!(!lb.killed.load(Ordering::Acquire));
        // The kicked tunnel stays listed until it has gone, and then leaves as its own.
        assert_eq!(r.len(), 2);
        assert!(r.unregister(&a, &la));
        assert_eq!(r.snapshot().len(), 1);
    }
}
