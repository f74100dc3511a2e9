//! The MQTT broker: MQTT 3.1, 3.1.1 and 5.0 over TLS (and plain TCP on loopback), on every
//! core.
//!
//! - `conn`: one connection's life: CONNECT under its deadline, authentication against the
//!   policy snapshot, the move to the client id's home core, then a reader and a writer
//!   running side by side.
//! - `broker`: one core's sessions, subscriptions (a `rampart_mqtt_proto::trie::Trie`),
//!   retained messages and routing (no I/O).
//! - `transport`: the reading and writing halves over TLS or TCP, with batched egress.
//! - `persist`: retained messages and persistent sessions on disk.
//! - `extauth`: the optional mosquitto-go-auth HTTP backend.
//! - `stats`, `sys`, `audit`, `throttle`: counters, `$SYS`, denial records, failed-login
//!   throttling.
//!
//! Human accounts' passwords are checked by the control plane over the control link (Argon2
//! never runs on a core). What this module deliberately does not do: MQTT 5 enhanced
//! authentication (AUTH packets), bridging, or clustering across machines.

pub(crate) mod audit;
pub(crate) mod broker;
pub(crate) mod conn;
pub mod extauth;
pub(crate) mod persist;
pub mod stats;
pub(crate) mod sys;
pub(crate) mod throttle;
pub(crate) mod transport;

use std::path::PathBuf;
use std::time::Duration;

/// What to do when a subscriber's outbox is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlowPolicy {
    /// Drop QoS 0 deliveries to it (counted); QoS 1/2 wait in its session queue.
    DropQos0,
    /// Disconnect it (reason 0x97, quota exceeded).
    Disconnect,
}

impl SlowPolicy {
    /// Configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DropQos0 => "drop_qos0",
            Self::Disconnect => "disconnect",
        }
    }
}

/// Broker settings. Every field is documented with its default in `docs/config.md`.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Largest packet accepted or sent, bytes (also the PUBLISH payload cap, together with the
    /// policy's `max_message_bytes`). Default 1 MiB; SceneScape sends 100 MB.
    pub max_packet_size: u32,
    /// QoS 1/2 messages in flight to one client (v3; v5 clients may ask for fewer). Default 20.
    pub max_inflight: u16,
    /// QoS 2 messages from one client awaiting PUBREL (our v5 receive maximum). Default 64.
    pub receive_maximum: u16,
    /// Topic aliases a v5 client may set. Default 16.
    pub topic_alias_maximum: u16,
    /// Topic aliases the broker sets towards a v5 client that accepts them (at most what the
    /// client allows). Default 16; 0 turns outgoing aliases off.
    pub topic_alias_maximum_out: u16,
    /// Longest keepalive allowed; v5 clients asking for more (or 0) are told this one.
    /// Default 600 s.
    pub max_keepalive_secs: u16,
    /// Longest time a disconnected session is kept (v3 persistent sessions get this).
    /// Default 7 days.
    pub max_session_expiry_secs: u32,
    /// Deliveries queued per client: QoS 0 in its outbox, QoS 1/2 in its session. Default 1000.
    pub max_queued_messages: usize,
    /// Bytes queued in one client's outbox, and payload bytes in its session queue.
    /// Default 16 MiB.
    pub max_queued_bytes: usize,
    /// Bytes queued in every outbox and session queue of every core together. Default 1 GiB.
    pub memory_budget_bytes: usize,
    /// What a full outbox means. Default drop QoS 0.
    pub slow_policy: SlowPolicy,
    /// Capacity of each core's queue of messages from other cores. Default 65536.
    pub cross_core_queue: usize,
    /// How often `$SYS/broker/...` is published; zero disables it. Default 10 s.
    pub sys_interval: Duration,
    /// Where retained messages and persistent sessions are kept; None: in memory only.
    pub persist_dir: Option<PathBuf>,
    /// Longest time a change waits before it is written (the window of loss on a crash).
    /// Default 1 s.
    pub persist_interval: Duration,
    /// The external auth backend (mosquitto-go-auth's HTTP protocol), if configured.
    pub external_auth: Option<extauth::ExternalAuthConfig>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            max_packet_size: 1024 * 1024,
            max_inflight: 20,
            receive_maximum: 64,
            topic_alias_maximum: 16,
            topic_alias_maximum_out: 16,
            max_keepalive_secs: 600,
            max_session_expiry_secs: 7 * 24 * 3600,
            max_queued_messages: 1000,
            max_queued_bytes: 16 * 1024 * 1024,
            memory_budget_bytes: 1024 * 1024 * 1024,
            slow_policy: SlowPolicy::DropQos0,
            cross_core_queue: 65536,
            sys_interval: Duration::from_secs(10),
            persist_dir: None,
            persist_interval: Duration::from_secs(1),
            external_auth: None,
        }
    }
}
