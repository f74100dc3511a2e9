//! Admission to the HTTPS front: a cap per source address, a global cap, and shedding of idle
//! connections when the global cap is reached.
//!
//! Both caps are counted across every core without a lock: the global count is one atomic, and
//! source addresses are counted in a fixed table of atomic buckets chosen by a keyed hash
//! (SipHash with a per-process random key, so a client cannot aim at another's bucket). Two
//! addresses that share a bucket share its cap, which only ever errs on the side of refusing.
//!
//! Shedding is per core: a connection waiting for the first byte of a request (new, or idle in
//! keep-alive) registers in its core's [`IdleSet`]; when the global cap is reached, the core
//! that accepts a new connection closes its own oldest idle one instead of refusing.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::poll_fn;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::task::{Poll, Waker};

/// Buckets of the per-address table (256 KiB of counters).
const BUCKETS: usize = 1 << 16;

/// Connection caps shared by every core.
#[derive(Debug)]
pub(crate) struct Admission {
    max_global: usize,
    max_per_ip: u32,
    global: AtomicUsize,
    per_ip: Box<[AtomicU32]>,
    hasher: RandomState,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    PerIp,
    Global,
}

impl Refusal {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::PerIp => "per_ip_cap",
            Self::Global => "global_cap",
        }
    }
}

/// A connection's place under both caps; given back on drop.
#[derive(Debug)]
pub(crate) struct Ticket {
    adm: Arc<Admission>,
    bucket: usize,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.adm.per_ip[self.bucket].fetch_sub(1, Ordering::Relaxed);
        self.adm.global.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Admission {
    pub(crate) fn new(max_global: usize, max_per_ip: u32) -> Arc<Self> {
        Arc::new(Self {
            max_global,
            max_per_ip,
            global: AtomicUsize::new(0),
            per_ip: (0..BUCKETS).map(|_| AtomicU32::new(0)).collect(),
            hasher: RandomState::new(),
        })
    }

    /// Connections held now.
    pub(crate) fn live(&self) -> usize {
        self.global.load(Ordering::Relaxed)
    }

    fn bucket(&self, ip: IpAddr) -> usize {
        // IPv4-mapped IPv6 addresses count as the IPv4 address they are; other IPv6 addresses
        // by their /64, the block one subscriber usually holds.
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let mut o = v6.octets();
                    o[8..].fill(0);
                    IpAddr::from(o)
                }
            },
            v4 => v4,
        };
        (self.hasher.hash_one(ip) as usize) & (BUCKETS - 1)
    }

    /// Admits a connection from `ip`. At the global cap, `shed` is asked to close an idle
    /// connection; the new one is admitted if it did.
    pub(crate) fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        shed: impl FnOnce() -> bool,
    ) -> Result<(Ticket, bool), Refusal> {
        let bucket = self.bucket(ip);
        if self.per_ip[bucket].fetch_add(1, Ordering::Relaxed) >= self.max_per_ip {
            self.per_ip[bucket].fetch_sub(1, Ordering::Relaxed);
            return Err(Refusal::PerIp);
        }
        let mut shed_one = false;
        if self.global.fetch_add(1, Ordering::Relaxed) >= self.max_global {
            // The shed connection gives its ticket back as soon as its task runs.
            if shed() {
                shed_one = true;
            } else {
                self.global.fetch_sub(1, Ordering::Relaxed);
                self.per_ip[bucket].fetch_sub(1, Ordering::Relaxed);
                return Err(Refusal::Global);
            }
        }
        let ticket = Ticket {
            adm: self.clone(),
            bucket,
        };
        Ok((ticket, shed_one))
    }
}

/// One idle connection's slot: set when it is told to go.
#[derive(Debug, Default)]
struct Slot {
    shed: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

/// One core's connections that wait for a request, oldest first.
#[derive(Debug, Default)]
pub(crate) struct IdleSet {
    next: Cell<u64>,
    slots: RefCell<BTreeMap<u64, Rc<Slot>>>,
}

/// Registration of an idle connection; dropping it (a request began) unregisters it.
#[derive(Debug)]
pub(crate) struct Idle {
    set: Rc<IdleSet>,
    id: u64,
    slot: Rc<Slot>,
}

impl IdleSet {
    pub(crate) fn enter(self: &Rc<Self>) -> Idle {
        let id = self.next.get();
        self.next.set(id + 1);
        let slot = Rc::new(Slot::default());
        self.slots.borrow_mut().insert(id, slot.clone());
        Idle {
            set: self.clone(),
            id,
            slot,
        }
    }

    /// Tells the oldest idle connection to close; false if there is none.
    pub(crate) fn shed_oldest(&self) -> bool {
        let Some((_, slot)) = self.slots.borrow_mut().pop_first() else {
            return false;
        };
        slot.shed.set(true);
        if let Some(w) = slot.waker.borrow_mut().take() {
            w.wake();
        }
        true
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.borrow().len()
    }
}

impl Idle {
    /// Resolves when this connection is shed.
    pub(crate) async fn shed(&self) {
        poll_fn(|cx| {
            if self.slot.shed.get() {
                Poll::Ready(())
            } else {
                *self.slot.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
    }
}

impl Drop for Idle {
    fn drop(&mut self) {
        self.set.slots.borrow_mut().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_and_global_caps() {
        let adm = Admission::new(3, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let t1 = adm.admit(a, || false).unwrap();
        let _t2 = adm.admit(a, || false).unwrap();
        assert_eq!(adm.admit(a, || false).unwrap_err(), Refusal::PerIp);
        // The mapped form is the same address.
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(adm.admit(mapped, || false).unwrap_err(), Refusal::PerIp);
        // Two addresses of one IPv6 /64 share a place.
        let v6 = Admission::new(10, 1);
        let _one = v6.admit("2001:db8::1".parse().unwrap(), || false).unwrap();
        assert!(v6.admit("2001:db8::2".parse().unwrap(), || false).is_err());
        assert!(
            v6.admit("2001:db8:0:1::2".parse().unwrap(), || false)
                .is_ok()
        );
        let _t3 = adm.admit(b, || false).unwrap();
        assert_eq!(adm.live(), 3);
        assert_eq!(adm.admit(b, || false).unwrap_err(), Refusal::Global);
        // Shedding admits over the cap; the shed connection's ticket comes back later.
        let (_t4, shed) = adm.admit(b, || true).unwrap();
        assert!(shed);
        drop(t1);
        assert_eq!(adm.live(), 3);
        let _t5 = adm.admit(a, || false).unwrap_err();
    }

    #[test]
    fn idle_set_sheds_oldest_and_forgets_dropped() {
        let set = Rc::new(IdleSet::default());
        let first = set.enter();
        let second = set.enter();
        let third = set.enter();
        drop(second);
        assert_eq!(set.len(), 2);
        assert!(set.shed_oldest());
        assert!(first.slot.shed.get());
        assert!(!third.slot.shed.get());
        assert!(set.shed_oldest());
        assert!(third.slot.shed.get());
        assert!(!set.shed_oldest());
        drop(first);
        drop(third);
        assert_eq!(set.len(), 0);
    }
}
