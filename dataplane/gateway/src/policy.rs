//! The policy the data plane enforces now: one validated [`Policy`] generation, swapped
//! atomically by the control link thread and read lock-free by every core.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use rampart_policy::Policy;

/// A shared handle on the current policy. Cloning it is cheap; every clone sees the same
/// policy.
///
/// Empty until the control plane's first snapshot arrives: until then, the data plane has no
/// accounts, keys or devices and refuses everything that needs one. Once set, it is only ever
/// replaced by a newer valid snapshot, never cleared: losing the control plane keeps the last
/// good policy.
#[derive(Clone, Default)]
pub struct PolicyHandle {
    inner: Arc<ArcSwapOption<Policy>>,
}

impl PolicyHandle {
    /// An empty handle.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current policy, if any. The `Arc` keeps that generation alive for as long as the
    /// caller holds it (a connection may finish a decision on the generation it started with).
    pub fn current(&self) -> Option<Arc<Policy>> {
        self.inner.load_full()
    }

    /// The generation held, 0 if none (what the link greeting reports).
    pub fn generation(&self) -> u64 {
        self.inner.load().as_ref().map_or(0, |p| p.generation())
    }

    /// Installs `policy`, returning the one it replaces. Normally only the control link
    /// thread calls this, with a snapshot it has validated.
    pub fn replace(&self, policy: Policy) -> Option<Arc<Policy>> {
        self.inner.swap(Some(Arc::new(policy)))
    }
}

impl fmt::Debug for PolicyHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyHandle")
            .field("generation", &self.generation())
            .finish()
    }
}
