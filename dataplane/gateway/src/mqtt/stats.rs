//! Broker counters, one set per core.
//!
//! A delivery is counted on the core that makes it, in that core's own cache-line-aligned
//! block, so counting costs no cross-core traffic; readers ($SYS, metrics, the shutdown log)
//! sum the blocks.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

macro_rules! counters {
    ($($name:ident: $doc:literal,)*) => {
        /// One core's broker counters.
        #[derive(Debug, Default)]
        #[repr(align(128))]
        pub struct CoreStats {
            $(#[doc = $doc] pub $name: AtomicU64,)*
            /// Connected MQTT clients now.
            pub connected: AtomicI64,
            /// Messages waiting in connection outboxes now.
            pub queued: AtomicI64,
            /// Outbox wait before a flush: counts per bucket of [`LATENCY_BUCKETS_US`].
            pub latency: [AtomicU64; LATENCY_BUCKETS_US.len() + 1],
            /// Sum of the observed waits, microseconds.
            pub latency_sum_us: AtomicU64,
        }

        /// Sums over every core.
        #[derive(Debug, Default, Clone, PartialEq, Eq)]
        pub struct Totals {
            $(#[doc = $doc] pub $name: u64,)*
            /// Connected MQTT clients.
            pub connected: i64,
            /// Messages waiting in connection outboxes.
            pub queued: i64,
            /// Histogram counts per bucket (the last is +Inf), not cumulative.
            pub latency: [u64; LATENCY_BUCKETS_US.len() + 1],
            /// Sum of the observed waits, microseconds.
            pub latency_sum_us: u64,
        }

        impl Totals {
            /// `(name, value)` of every monotonic counter.
            pub fn counters(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name),)*]
            }
        }

        fn add(t: &mut Totals, c: &CoreStats) {
            $(t.$name += c.$name.load(Ordering::Relaxed);)*
            t.connected += c.connected.load(Ordering::Relaxed);
            t.queued += c.queued.load(Ordering::Relaxed);
            for (t, c) in t.latency.iter_mut().zip(&c.latency) {
                *t += c.load(Ordering::Relaxed);
            }
            t.latency_sum_us += c.latency_sum_us.load(Ordering::Relaxed);
        }
    };
}

counters! {
    connects: "CONNECTs accepted.",
    auth_failures: "CONNECTs refused for bad credentials or an unauthorised account.",
    auth_throttled: "CONNECTs refused unchecked because the source failed too often.",
    protocol_errors: "Connections closed for a malformed packet or a protocol violation.",
    messages_in: "PUBLISH packets accepted from clients.",
    bytes_in: "Payload bytes accepted from clients.",
    messages_out: "PUBLISH packets queued to subscribers.",
    bytes_out: "Payload bytes queued to subscribers.",
    acl_denied_publish: "PUBLISH packets refused by the ACLs.",
    acl_denied_subscribe: "Subscriptions refused by the ACLs.",
    dropped_qos0_slow: "QoS 0 deliveries dropped because the subscriber's outbox was full.",
    dropped_queue_full: "QoS 1/2 deliveries dropped because the session queue was full.",
    dropped_memory: "Deliveries dropped because the global memory budget was spent.",
    dropped_cross_core: "Messages dropped because another core's queue was full.",
    dropped_too_large: "Deliveries skipped because they exceed the client's maximum packet size.",
    dropped_expired: "Messages that expired before delivery.",
    disconnected_slow: "Subscribers disconnected by the slow-subscriber policy.",
    takeovers: "Sessions taken over by a new connection with the same client id.",
    revoked: "Connections closed because their account was disabled or deleted.",
    keepalive_timeouts: "Connections closed for a missed keepalive.",
    wills_published: "Will messages published.",
    sessions_expired: "Persistent sessions that expired.",
}

/// Every core's block.
#[derive(Debug, Clone, Default)]
pub struct BrokerStats {
    cores: Arc<Vec<Arc<CoreStats>>>,
}

impl BrokerStats {
    /// One block per core.
    pub fn new(cores: usize) -> Self {
        Self {
            cores: Arc::new((0..cores).map(|_| Arc::default()).collect()),
        }
    }

    /// The block of core `i`.
    pub fn core(&self, i: usize) -> Arc<CoreStats> {
        self.cores[i].clone()
    }

    /// Sums every block.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for c in self.cores.iter() {
            add(&mut t, c);
        }
        t
    }
}

/// Upper bounds of the latency histogram's buckets, microseconds.
pub const LATENCY_BUCKETS_US: [u64; 14] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000,
];

impl CoreStats {
    /// Records how long the oldest frame of a flush waited in its outbox.
    pub fn observe_latency(&self, us: u64) {
        let i = LATENCY_BUCKETS_US.partition_point(|b| *b < us);
        self.latency[i].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add(us, Ordering::Relaxed);
    }
}

impl BrokerStats {
    /// How many per-core blocks there are.
    pub fn cores(&self) -> usize {
        self.cores.len()
    }

    /// `(core, queued)` for every core: messages waiting in that core's outboxes.
    pub fn queued_per_core(&self) -> Vec<i64> {
        self.cores
            .iter()
            .map(|c| c.queued.load(Ordering::Relaxed))
            .collect()
    }
}

/// `c += n`, relaxed.
pub(crate) fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}
