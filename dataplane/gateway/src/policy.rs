//! The policy the data plane enforces now: one validated [`Policy`] generation, swapped
//! atomically by the control link thread and read lock-free by every core.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwapOption;
use rampart_policy::Policy;

/// Installation serials: unique in this process, whatever generations the control plane sends.
static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

/// A policy as installed here: the policy, and the serial of its installation.
///
/// The generation comes from the control plane's store and can repeat with other content (a
/// restored or recreated store starts again lower); the serial never repeats, so what is
/// remembered per serial (a connection's last allowed topic, say) cannot outlive the policy
/// it was decided under.
#[derive(Debug)]
pub struct Installed {
    serial: u64,
    policy: Policy,
}

impl Installed {
    /// This installation's serial, unique in the process.
    pub fn serial(&self) -> u64 {
        self.serial
    }
}

impl Deref for Installed {
    type Target = Policy;

    fn deref(&self) -> &Policy {
        &self.policy
    }
}

/// A shared handle on the current policy. Cloning it is cheap; every clone sees the same
/// policy.
///
/// Empty until the control plane's first snapshot arrives: until then, the data plane has no
/// accounts, keys or devices and refuses everything that needs one. Once set, it is only ever
/// replaced by a newer valid snapshot, never cleared: losing the control plane keeps the last
/// good policy.
#[derive(Clone, Default)]
pub struct PolicyHandle {
    inner: Arc<ArcSwapOption<Installed>>,
}

impl PolicyHandle {
    /// An empty handle.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current policy, if any. The `Arc` keeps that generation alive for as long as the
    /// caller holds it (a connection may finish a decision on the generation it started with).
    pub fn current(&self) -> Option<Arc<Installed>> {
        self.inner.load_full()
    }

    /// The generation held, 0 if none (what the link greeting reports).
    pub fn generation(&self) -> u64 {
        self.inner.load().as_ref().map_or(0, |p| p.generation())
    }

    /// Installs `policy`, returning the one it replaces. Normally only the control link
    /// thread calls this, with a snapshot it has validated.
    pub fn replace(&self, policy: Policy) -> Option<Arc<Installed>> {
        let serial = NEXT_SERIAL.fetch_add(1, Ordering::Relaxed);
        self.inner
            .swap(Some(Arc::new(Installed { serial, policy })))
    }
}

impl fmt::Debug for PolicyHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyHandle")
            .field("generation", &self.generation())
            .finish()
    }
}
