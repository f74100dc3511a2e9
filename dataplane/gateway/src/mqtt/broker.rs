//! One core's broker: sessions, subscriptions, retained messages and routing. No I/O.
//!
//! Every client id has a home core (`home_core`); a connection is moved to its client id's
//! home core right after CONNECT, so a session, its takeover and its will are always handled
//! by one core without locks. What crosses cores is only:
//!
//! - every accepted PUBLISH, as one `Arc<Message>` per other core (`BrokerMsg::Publish`): the
//!   receiving core matches it against its own subscriptions and fans it out locally, and
//!   updates its replica of the retained messages;
//! - shared-subscription membership (`ShareJoin`/`ShareLeave`), replicated on every core, so
//!   every core computes the same member for a message (`pick_member`) and only that member's
//!   core delivers it.
//!
//! A message is encoded once: QoS 0 deliveries share one `Bytes` per (protocol version, retain
//! flag); QoS 1 and 2 deliveries get their own small header (packet id, subscription ids) in
//! front of the shared payload `Bytes`.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::Waker;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rampart_mqtt_proto::{
    Ack, Connack, Connect, Disconnect, Packet, Properties, Publish, PublishProperties, QoS,
    RetainHandling, Suback, Subscribe, SubscriptionOptions, TopicFilter, TopicName, Unsuback,
    Unsubscribe, Version, encode_qos0_publish, reason,
};
use rampart_policy::acl::AclAction;
use rampart_rt::channel::Sender;

use super::persist::{self, StoredMessage, StoredPending, StoredSession};
use super::stats::{CoreStats, bump};
use super::{BrokerConfig, SlowPolicy};
use crate::policy::PolicyHandle;
use rampart_mqtt_proto::trie::Trie;

/// Payloads up to this size are copied out of the read buffer once at ingress.
const SMALL_PAYLOAD: usize = 4096;

/// Messages between the broker parts of two cores.
#[derive(Debug)]
pub(crate) enum BrokerMsg {
    /// A message published on another core, with the shared-subscription members chosen for
    /// it.
    Publish(Arc<Message>, Arc<[(Member, ShareKey)]>),
    /// A session joined a shared subscription group.
    ShareJoin(ShareKey, Member),
    /// A session left a shared subscription group.
    ShareLeave(ShareKey, Member),
    /// A connection whose client id lives on this core.
    Handoff(Box<super::conn::Handoff>),
}

/// `(group, filter)` of a shared subscription.
pub(crate) type ShareKey = (Box<str>, TopicFilter);

/// A session, anywhere: `(core, session key)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Member {
    core: u32,
    key: u64,
}

/// The core that owns a client id's session (FNV-1a, stable across restarts).
///
/// FNV-1a alone spreads badly: its low bits depend only on the input's low bits (`h % 2` was
/// the parity of the id's odd bytes, so `cam-a`, `cam-c`, `cam-e` all had one home), and its
/// last byte barely reaches the high bits. A finaliser mixes it, and the core comes from the
/// high bits (`h * cores / 2^64`). A restart with another hash or core count finds every
/// session: every core's file is read before the cores start, and each session is handed to its
/// home (`persist::Restored`).
pub(crate) fn home_core(client_id: &str, cores: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in client_id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // MurmurHash3's 64-bit finaliser: every input bit reaches the high bits.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    ((u128::from(h) * cores.max(1) as u128) >> 64) as usize
}

/// One application message, shared by every core and subscriber.
#[derive(Debug)]
pub(crate) struct Message {
    pub(crate) topic: TopicName,
    pub(crate) payload: Bytes,
    pub(crate) qos: QoS,
    pub(crate) retain: bool,
    /// The properties forwarded to subscribers (format, content type, response topic,
    /// correlation data, user properties); never the alias or subscription ids. `None` when
    /// there are none (every MQTT 3 message): a `Properties` is a few hundred bytes, and a
    /// message is allocated, zeroed and moved once per PUBLISH.
    pub(crate) props: Option<Box<Properties>>,
    /// When the message expires (v5 message expiry interval).
    pub(crate) expires_at: Option<Instant>,
    /// The publishing session, for no-local.
    pub(crate) origin: Member,
    /// Unique per message, for shared-subscription member choice.
    pub(crate) id: u64,
    /// When the broker took it (orders retained updates the same way on every core).
    pub(crate) accepted_at: Instant,
    /// Whole QoS 0 packets: [v3 retain=0, v3 retain=1, v5 retain=0, v5 retain=1].
    encoded: [OnceLock<Bytes>; 4],
}

impl Message {
    fn expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|t| now >= t)
    }

    /// The PUBLISH for one subscriber.
    fn publish(&self, d: &Delivery<'_>, now: Instant) -> Publish {
        let (mut publish, properties) = self.publish_parts(d, now);
        publish.properties = properties.into();
        publish
    }

    /// The PUBLISH for one subscriber with its properties apart, on the stack: for a frame,
    /// encoded and dropped, where a `Publish` would box them.
    fn publish_parts(&self, d: &Delivery<'_>, now: Instant) -> (Publish, Properties) {
        let mut properties = self.props.as_deref().cloned().unwrap_or_default();
        properties.subscription_identifiers = d.sub_ids.to_vec();
        if let Some(t) = self.expires_at {
            let left = t.saturating_duration_since(now).as_secs().max(1);
            properties.message_expiry_interval = Some(u32::try_from(left).unwrap_or(u32::MAX));
        }
        let mut topic = self.topic.as_str().to_string();
        if let Some((alias, with_topic)) = d.alias {
            properties.topic_alias = Some(alias);
            if !with_topic {
                topic.clear();
            }
        }
        let publish = Publish {
            dup: false,
            qos: d.qos,
            retain: d.retain,
            topic,
            packet_id: d.pid,
            properties: PublishProperties::default(),
            payload: self.payload.clone(),
        };
        (publish, properties)
    }

    /// The frame of one delivery.
    fn frame(&self, v: Version, d: &Delivery<'_>, now: Instant) -> Option<Frame> {
        let per_sub = d.qos != QoS::AtMostOnce
            || (v.is_v5()
                && (!d.sub_ids.is_empty() || self.expires_at.is_some() || d.alias.is_some()));
        if !per_sub && self.payload.len() <= 4096 {
            let slot = usize::from(v.is_v5()) * 2 + usize::from(d.retain);
            let whole = self.encoded[slot].get_or_init(|| {
                if !v.is_v5() || self.props.is_none() {
                    // No properties to send: straight from the topic and payload.
                    return encode_qos0_publish(v, d.retain, &self.topic, &self.payload)
                        .map(BytesMut::freeze)
                        .unwrap_or_default();
                }
                let (p, props) = self.publish_parts(d, now);
                // A message that decoded encodes: the codec's limits are the same both ways.
                // Head and payload go into one buffer of the exact size (the head's encoder
                // takes the `Publish` by reference: no move of it into a `Packet`).
                let head = p.head_encoded_len_with(&props, v).unwrap_or(0);
                let mut b = BytesMut::with_capacity(head + p.payload.len());
                if p.encode_head_with(&props, v, &mut b).is_ok() {
                    b.extend_from_slice(&p.payload);
                } else {
                    b.clear();
                }
                b.freeze()
            });
            if whole.is_empty() {
                return None;
            }
            return Some(Frame::Whole(whole.clone()));
        }
        let (p, props) = self.publish_parts(d, now);
        let mut head = BytesMut::with_capacity(16 + self.topic.as_str().len());
        p.encode_head_with(&props, v, &mut head).ok()?;
        Some(Frame::Parts(head.freeze(), self.payload.clone()))
    }
}

/// How one subscriber gets a message.
#[derive(Debug, Clone, Copy)]
struct Delivery<'a> {
    qos: QoS,
    retain: bool,
    pid: Option<u16>,
    sub_ids: &'a [u32],
    /// `(alias, send the topic too)`: a topic alias for this client (MQTT 5 §3.3.2.3.4).
    alias: Option<(u16, bool)>,
}

/// Bytes on their way to one connection.
#[derive(Debug, Clone)]
pub(crate) enum Frame {
    /// A whole packet.
    Whole(Bytes),
    /// A PUBLISH header and its shared payload.
    Parts(Bytes, Bytes),
}

impl Frame {
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Whole(b) => b.len(),
            Self::Parts(h, p) => h.len() + p.len(),
        }
    }
}

/// The connection end of a session: what the broker pushes packets into.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    pub(crate) frames: VecDeque<Frame>,
    pub(crate) bytes: usize,
    waker: Option<Waker>,
    /// Set by the broker: send this DISCONNECT reason (v5) and close.
    pub(crate) close: Option<u8>,
    /// TLS has records of its own to send (alerts, key updates).
    pub(crate) poke: bool,
    /// When the oldest frame now waiting was queued.
    pub(crate) since: Option<Instant>,
    /// The reader, paused while the outbox is over its limits.
    pub(crate) reader_waker: Option<Waker>,
    /// The reader is discarding input after a protocol error (see `conn::linger`).
    pub(crate) lingering: bool,
}

impl Outbox {
    pub(crate) fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    pub(crate) fn register(&mut self, w: &Waker) {
        match &self.waker {
            Some(old) if old.will_wake(w) => {}
            _ => self.waker = Some(w.clone()),
        }
    }
}

pub(crate) type OutboxRef = Rc<RefCell<Outbox>>;

/// What a subscription needs at delivery.
#[derive(Debug, Clone)]
struct SubEntry {
    key: u64,
    opts: SubscriptionOptions,
    id: Option<u32>,
    /// Every topic the filter matches may be received (`AclAction::ReadFilter`); otherwise
    /// each delivery is checked.
    readable: bool,
}

/// A session's own record of one subscription.
#[derive(Debug, Clone)]
struct OwnSub {
    opts: SubscriptionOptions,
    id: Option<u32>,
    readable: bool,
}

/// A queued or in-flight outgoing QoS 1/2 delivery.
#[derive(Debug, Clone)]
struct Pending {
    msg: Arc<Message>,
    qos: QoS,
    retain: bool,
    sub_ids: Vec<u32>,
}

#[derive(Debug, Clone)]
enum Inflight {
    /// PUBLISH sent, waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    Publish(Pending),
    /// PUBREL sent, waiting for PUBCOMP.
    Release,
}

/// The live connection of a session.
#[derive(Debug)]
struct Link {
    conn: u64,
    version: Version,
    outbox: OutboxRef,
    /// Client's receive maximum (v5) or our in-flight limit (v3).
    receive_max: u16,
    /// Client's maximum packet size.
    max_packet: u32,
    /// Aliases the client may use (topic alias → topic name).
    aliases: HashMap<u16, TopicName>,
    will: Option<WillMsg>,
    username: String,
    /// Authenticated by the external backend: its ACL answers come with each packet.
    external: bool,
    /// Topic aliases the client accepts from us (its Topic Alias Maximum; 0: none).
    alias_max_out: u16,
    /// The aliases we set on this connection.
    aliases_out: HashMap<TopicName, u16>,
    /// The last topic the policy let this connection publish to, and the serial of that
    /// policy's installation ([`crate::policy::Installed::serial`]): a camera publishes to the
    /// same topic again and again, and an installed policy never changes, so the same topic
    /// under the same installation is allowed without asking again. Not the generation: a
    /// restored store can send a generation again with other rules. Its buffer is reused when
    /// the topic changes.
    published_ok: Option<(u64, String)>,
}

impl Link {
    /// Whether the policy installed as `serial` let this connection publish to `topic` last.
    fn published_before(&self, serial: u64, topic: &str) -> bool {
        self.published_ok
            .as_ref()
            .is_some_and(|(s, t)| *s == serial && t == topic)
    }

    /// Remembers that the policy installed as `serial` lets this connection publish to `topic`.
    fn remember_published(&mut self, serial: u64, topic: &str) {
        match &mut self.published_ok {
            Some((s, t)) => {
                *s = serial;
                t.clear();
                t.push_str(topic);
            }
            None => self.published_ok = Some((serial, topic.to_owned())),
        }
    }

    /// The alias to send `topic` with: `(alias, true)` the first time (topic and alias, which
    /// sets it), `(alias, false)` after (alias only). None once every alias is taken: the
    /// first topics keep theirs for the connection's life.
    fn alias_for(&mut self, topic: &TopicName) -> Option<(u16, bool)> {
        if self.alias_max_out == 0 {
            return None;
        }
        if let Some(a) = self.aliases_out.get(topic) {
            return Some((*a, false));
        }
        let next = u16::try_from(self.aliases_out.len() + 1).ok()?;
        if next > self.alias_max_out {
            return None;
        }
        self.aliases_out.insert(topic.clone(), next);
        Some((next, true))
    }

    /// Forgets an alias set by `alias_for` for a delivery that was not sent after all.
    fn unalias(&mut self, topic: &TopicName, alias: Option<(u16, bool)>) {
        if let Some((_, true)) = alias {
            self.aliases_out.remove(topic);
        }
    }
}

#[derive(Debug, Clone)]
struct WillMsg {
    msg: Arc<Message>,
    delay: u32,
    /// Message expiry interval, counted from the will's publication.
    expiry: Option<u32>,
}

#[derive(Debug)]
struct Session {
    client_id: String,
    username: String,
    subs: BTreeMap<TopicFilter, OwnSub>,
    inflight: BTreeMap<u16, Inflight>,
    queue: VecDeque<Pending>,
    /// Payload bytes in `queue` (counted in the global budget too).
    queued_bytes: usize,
    /// Incoming QoS 2 packet ids delivered and waiting for PUBREL.
    incoming: HashSet<u16>,
    next_pid: u16,
    /// Seconds the session outlives its connection (u32::MAX: never).
    expiry: u32,
    /// When a disconnected session expires.
    expires_at: Option<Instant>,
    link: Option<Link>,
    /// Authenticated by the external backend (not an account of the policy).
    external: bool,
    /// Bumped on every connect; timers carry it so a reconnect cancels them.
    epoch: u64,
    /// This session's entries in `Broker::timers`.
    timers: Vec<(Instant, TimerKind, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    Will,
    Expire,
}

/// Who logged in, as what.
#[derive(Debug)]
pub(crate) struct Login {
    pub(crate) client_id: String,
    /// The client id was assigned by us (MQTT 5: sent back in CONNACK).
    pub(crate) assigned: bool,
    pub(crate) username: String,
    /// Authenticated by the external backend.
    pub(crate) external: bool,
}

/// What the connection gets back from a successful CONNECT.
#[derive(Debug)]
pub(crate) struct Accepted {
    pub(crate) key: u64,
    pub(crate) conn: u64,
    pub(crate) client_id: String,
}

/// Why the broker wants a connection closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Close {
    pub(crate) reason: u8,
    pub(crate) why: &'static str,
}

impl Close {
    fn new(reason: u8, why: &'static str) -> Self {
        Self { reason, why }
    }
}

/// A map by session key. Keys are numbers a core hands out in sequence, never chosen by a
/// client, so they need no keyed hash. std's SipHash is made for keys an attacker picks; in a
/// perf profile of fan-in, hashing was about 5 % of the data plane's CPU, much of it these
/// lookups (several per message; docs/benchmarks.md). Names and topics keep SipHash.
type KeyMap<V> = HashMap<u64, V, BuildHasherDefault<KeyHasher>>;

/// Fibonacci hashing of a `u64` (the multiplier is 2^64 / φ): consecutive keys spread over
/// the high bits the table uses.
#[derive(Debug, Default, Clone, Copy)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(26) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A subscription a message matched: session key, options, subscription id, wholly readable.
type Target = (u64, SubscriptionOptions, Option<u32>, bool);

/// One core's broker.
#[derive(Debug)]
pub(crate) struct Broker {
    core: usize,
    cfg: Rc<BrokerConfig>,
    policy: PolicyHandle,
    stats: Arc<CoreStats>,
    /// Queued bytes over every core (the global memory budget).
    budget: Arc<AtomicUsize>,
    peers: Vec<Sender<BrokerMsg>>,
    /// Subscriptions (not shared ones) indexed on each core, by core: a message no core's
    /// subscriber could want is not sent there (fan-in: most cores have none).
    interest: Arc<[AtomicUsize]>,
    /// The empty list of chosen shared-subscription members, shared by every message that
    /// has none (one allocation, not one per message).
    no_shares: Arc<[(Member, ShareKey)]>,
    sessions: KeyMap<Session>,
    by_client: HashMap<String, u64>,
    next_key: u64,
    next_conn: u64,
    seq: u64,
    subs: Trie<SubEntry>,
    /// `deliver_local`'s list of matching subscriptions, kept between messages so that
    /// delivering one allocates nothing for it.
    targets: Vec<Target>,
    /// Shared groups by inner filter: (group, inner filter, members on every core, sorted).
    shared: Trie<(Box<str>, TopicFilter, Vec<Member>)>,
    retained: HashMap<TopicName, Arc<Message>>,
    timers: BTreeSet<(Instant, u64, TimerKind, u64)>,
    /// Wills waiting for their delay, by session.
    will_pending: KeyMap<(u64, WillMsg)>,
    /// Where snapshots go, if persistence is on.
    persist: Option<(Arc<persist::Writer>, PathBuf)>,
    /// Something persistent changed since the last snapshot.
    dirty: bool,
    next_persist: Instant,
    /// The policy installation (serial, not generation: a restored store can repeat a
    /// generation with other rules) the subscriptions were last checked against; 0: none.
    checked_serial: u64,
    /// Live connections per account on this core.
    per_account: HashMap<String, u32>,
    /// Drops already reported in the log, and when.
    drops_logged: u64,
    drops_logged_at: Instant,
}

impl Broker {
    pub(crate) fn new(
        core: usize,
        cfg: Rc<BrokerConfig>,
        policy: PolicyHandle,
        stats: Arc<CoreStats>,
        budget: Arc<AtomicUsize>,
        peers: Vec<Sender<BrokerMsg>>,
        interest: Arc<[AtomicUsize]>,
    ) -> Self {
        Self {
            core,
            cfg,
            policy,
            stats,
            budget,
            peers,
            interest,
            no_shares: Arc::from([]),
            sessions: KeyMap::default(),
            by_client: HashMap::new(),
            next_key: 1,
            next_conn: 1,
            seq: 0,
            subs: Trie::default(),
            targets: Vec::new(),
            shared: Trie::default(),
            retained: HashMap::new(),
            timers: BTreeSet::new(),
            will_pending: KeyMap::default(),
            persist: None,
            dirty: false,
            next_persist: Instant::now(),
            checked_serial: 0,
            per_account: HashMap::new(),
            drops_logged: 0,
            drops_logged_at: Instant::now(),
        }
    }

    pub(crate) fn core(&self) -> usize {
        self.core
    }

    fn me(&self, key: u64) -> Member {
        Member {
            core: self.core as u32,
            key,
        }
    }

    /// Whether the connection `conn` still owns session `key`.
    pub(crate) fn is_current(&self, key: u64, conn: u64) -> bool {
        self.sessions
            .get(&key)
            .and_then(|s| s.link.as_ref())
            .is_some_and(|l| l.conn == conn)
    }

    // === CONNECT ===

    /// Attaches an authenticated CONNECT to its session (this core is the client id's home).
    /// Queues CONNACK and whatever the session had pending.
    pub(crate) fn connect(
        &mut self,
        c: &Connect,
        login: &Login,
        outbox: OutboxRef,
        now: Instant,
    ) -> Accepted {
        let Login {
            client_id,
            assigned,
            username,
            external,
        } = login;
        let (client_id, assigned, external) = (client_id.clone(), *assigned, *external);
        let v = c.version;
        let conn = self.next_conn;
        self.next_conn += 1;
        // Take over a live connection with the same client id.
        let mut present = false;
        let key = match self.by_client.get(&client_id).copied() {
            Some(key) => {
                if let Some(old) = self.sessions.get_mut(&key).and_then(|s| s.link.take()) {
                    bump(&self.stats.takeovers, 1);
                    {
                        let mut ob = old.outbox.borrow_mut();
                        ob.close = Some(reason::SESSION_TAKEN_OVER);
                        ob.wake();
                    }
                    self.stats.connected.fetch_sub(1, Ordering::Relaxed);
                    self.account_left(&old.username);
                    if let Some(w) = old.will {
                        // The old connection ended without DISCONNECT: its will stands, unless
                        // delayed and the session resumes now (MQTT 5 §3.1.3.2.2).
                        if w.delay == 0 || c.clean_start {
                            self.publish_will(w, now);
                        }
                    }
                }
                // A delayed will of the previous connection: the session resumes (the will is
                // cancelled) or ends here (the will is sent), MQTT 5 §3.1.3.2.2.
                let pending = self.will_pending.remove(&key);
                // A session is only ever resumed by the identity that made it: its
                // subscriptions and queued messages were authorised for that identity.
                let same_owner = self
                    .sessions
                    .get(&key)
                    .is_some_and(|s| s.username == *username && s.external == external);
                if c.clean_start || !same_owner {
                    if let Some((_, w)) = pending {
                        self.publish_will(w, now);
                    }
                    self.drop_session(key);
                    self.new_session(&client_id, username)
                } else {
                    present = true;
                    self.cancel_timers(key);
                    key
                }
            }
            None => self.new_session(&client_id, username),
        };
        let session_expiry = if v.is_v5() {
            c.properties.session_expiry_interval.unwrap_or(0)
        } else if c.clean_start {
            0
        } else {
            u32::MAX
        };
        let will = c.will.as_ref().map(|w| WillMsg {
            delay: w.properties.will_delay_interval.unwrap_or(0),
            expiry: w.properties.message_expiry_interval,
            msg: self.new_message(
                w.topic.clone(),
                Bytes::copy_from_slice(&w.payload),
                w.qos,
                w.retain,
                forwarded(&w.properties),
                None,
                key,
                now,
            ),
        });
        let receive_max = if v.is_v5() {
            c.properties
                .receive_maximum
                .unwrap_or(u16::MAX)
                .min(self.cfg.max_inflight)
        } else {
            self.cfg.max_inflight
        };
        let max_packet = c.properties.maximum_packet_size.unwrap_or(u32::MAX);
        let epoch;
        {
            let s = self
                .sessions
                .get_mut(&key)
                .expect("session just created or found");
            s.expiry = session_expiry.min(self.cfg.max_session_expiry_secs);
            s.expires_at = None;
            s.username = username.to_string();
            s.external = external;
            s.epoch += 1;
            epoch = s.epoch;
            s.link = Some(Link {
                conn,
                version: v,
                outbox: outbox.clone(),
                receive_max: receive_max.max(1),
                max_packet,
                aliases: HashMap::new(),
                will,
                username: username.to_string(),
                external,
                alias_max_out: if v.is_v5() {
                    c.properties
                        .topic_alias_maximum
                        .unwrap_or(0)
                        .min(self.cfg.topic_alias_maximum_out)
                } else {
                    0
                },
                aliases_out: HashMap::new(),
                published_ok: None,
            });
        }
        let _ = epoch;
        self.stats.connected.fetch_add(1, Ordering::Relaxed);
        *self.per_account.entry(username.clone()).or_default() += 1;
        bump(&self.stats.connects, 1);
        self.dirty = true;

        let mut props = Properties::default();
        if v.is_v5() {
            props.receive_maximum = Some(self.cfg.receive_maximum);
            props.maximum_packet_size = Some(self.cfg.max_packet_size);
            props.topic_alias_maximum = Some(self.cfg.topic_alias_maximum);
            props.retain_available = None; // supported (absent means yes)
            if assigned {
                props.assigned_client_identifier = Some(client_id.clone());
            }
            if session_expiry > self.cfg.max_session_expiry_secs {
                props.session_expiry_interval = Some(self.cfg.max_session_expiry_secs);
            }
            if c.keep_alive == 0 || c.keep_alive > self.cfg.max_keepalive_secs {
                props.server_keep_alive = Some(self.cfg.max_keepalive_secs);
            }
        }
        let connack = Packet::Connack(Connack {
            session_present: present,
            reason_code: reason::SUCCESS,
            properties: props,
        });
        self.send_packet(key, &connack);
        if present {
            self.resume(key, now);
        }
        Accepted {
            key,
            conn,
            client_id,
        }
    }

    /// Whether `username` already holds `limit` connections on this core (a connection that
    /// would take over one of them does not count: it replaces it).
    pub(crate) fn account_full(&self, username: &str, client_id: &str, limit: u32) -> bool {
        let held = self.per_account.get(username).copied().unwrap_or(0);
        let replaces = self
            .by_client
            .get(client_id)
            .and_then(|k| self.link(*k))
            .is_some_and(|l| l.username == username);
        held >= limit && !replaces
    }

    fn account_left(&mut self, username: &str) {
        if let Some(n) = self.per_account.get_mut(username) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_account.remove(username);
            }
        }
    }

    fn new_session(&mut self, client_id: &str, username: &str) -> u64 {
        let key = self.next_key;
        self.next_key += 1;
        self.sessions.insert(
            key,
            Session {
                client_id: client_id.to_string(),
                username: username.to_string(),
                subs: BTreeMap::new(),
                inflight: BTreeMap::new(),
                queue: VecDeque::new(),
                queued_bytes: 0,
                incoming: HashSet::new(),
                next_pid: 1,
                expiry: 0,
                expires_at: None,
                link: None,
                external: false,
                epoch: 0,
                timers: Vec::new(),
            },
        );
        self.by_client.insert(client_id.to_string(), key);
        key
    }

    fn drop_session(&mut self, key: u64) {
        self.cancel_timers(key);
        self.will_pending.remove(&key);
        let Some(s) = self.sessions.remove(&key) else {
            return;
        };
        self.budget.fetch_sub(s.queued_bytes, Ordering::Relaxed);
        if self.by_client.get(&s.client_id) == Some(&key) {
            self.by_client.remove(&s.client_id);
        }
        for filter in s.subs.keys() {
            self.unindex(key, filter);
        }
    }

    /// Removes the session's pending timers (a reconnect or the end of the session makes them
    /// moot), so a flapping client does not grow the timer set.
    fn cancel_timers(&mut self, key: u64) {
        if let Some(s) = self.sessions.get_mut(&key) {
            for (at, kind, epoch) in s.timers.drain(..) {
                self.timers.remove(&(at, key, kind, epoch));
            }
        }
    }

    fn add_timer(&mut self, key: u64, at: Instant, kind: TimerKind) {
        if let Some(s) = self.sessions.get_mut(&key) {
            s.timers.push((at, kind, s.epoch));
            self.timers.insert((at, key, kind, s.epoch));
        }
    }

    /// Resends what a resumed session had in flight (DUP set), then its queue (§4.4).
    fn resume(&mut self, key: u64, now: Instant) {
        let Some(s) = self.sessions.get(&key) else {
            return;
        };
        let inflight: Vec<(u16, Inflight)> =
            s.inflight.iter().map(|(k, v)| (*k, v.clone())).collect();
        for (pid, state) in inflight {
            match state {
                Inflight::Publish(p) => {
                    let Some(link) = self.sessions.get(&key).and_then(|s| s.link.as_ref()) else {
                        return;
                    };
                    let (v, max_packet) = (link.version, link.max_packet as usize);
                    let d = Delivery {
                        qos: p.qos,
                        retain: p.retain,
                        pid: Some(pid),
                        sub_ids: &p.sub_ids,
                        alias: None,
                    };
                    let mut publish = p.msg.publish(&d, now);
                    publish.dup = true;
                    let mut head = BytesMut::new();
                    let fits = publish.encode_head(v, &mut head).is_ok()
                        && head.len() + p.msg.payload.len() <= max_packet;
                    if fits {
                        self.push(key, Frame::Parts(head.freeze(), p.msg.payload.clone()));
                    } else {
                        // Too large for what this connection accepts (MQTT 5 §3.1.2.25):
                        // discarded as if delivered, never resent forever.
                        bump(&self.stats.dropped_too_large, 1);
                        self.session(key).inflight.remove(&pid);
                    }
                }
                Inflight::Release => {
                    let rel = Packet::Pubrel(ack(pid, reason::SUCCESS));
                    self.send_packet(key, &rel);
                }
            }
        }
        self.pump(key, now);
    }

    // === packets from a connected client ===

    /// Handles one packet from the connection `conn` of session `key`.
    pub(crate) fn packet(
        &mut self,
        key: u64,
        conn: u64,
        p: Packet,
        ext: &[bool],
        now: Instant,
    ) -> Result<(), Close> {
        if !self.is_current(key, conn) {
            return Err(Close::new(reason::SESSION_TAKEN_OVER, "session taken over"));
        }
        if !matches!(
            p,
            Packet::Pingreq
                | Packet::Publish(Publish {
                    qos: QoS::AtMostOnce,
                    ..
                })
        ) {
            self.dirty = true;
        }
        match p {
            Packet::Publish(p) => self.on_publish(key, p, ext, now),
            Packet::Puback(a) => {
                if let Some(Inflight::Publish(_)) = self.session(key).inflight.get(&a.packet_id) {
                    self.session(key).inflight.remove(&a.packet_id);
                    self.pump(key, now);
                }
                Ok(())
            }
            Packet::Pubrec(a) => {
                let s = self.session(key);
                match s.inflight.get(&a.packet_id) {
                    Some(Inflight::Publish(_)) if a.reason_code >= 0x80 => {
                        s.inflight.remove(&a.packet_id);
                        self.pump(key, now);
                    }
                    Some(Inflight::Publish(_)) | Some(Inflight::Release) => {
                        s.inflight.insert(a.packet_id, Inflight::Release);
                        self.send_packet(key, &Packet::Pubrel(ack(a.packet_id, reason::SUCCESS)));
                    }
                    None => {
                        self.send_packet(
                            key,
                            &Packet::Pubrel(ack(a.packet_id, reason::PACKET_ID_NOT_FOUND)),
                        );
                    }
                }
                Ok(())
            }
            Packet::Pubcomp(a) => {
                if let Some(Inflight::Release) = self.session(key).inflight.get(&a.packet_id) {
                    self.session(key).inflight.remove(&a.packet_id);
                    self.pump(key, now);
                }
                Ok(())
            }
            Packet::Pubrel(a) => {
                let found = self.session(key).incoming.remove(&a.packet_id);
                let code = if found {
                    reason::SUCCESS
                } else {
                    reason::PACKET_ID_NOT_FOUND
                };
                self.send_packet(key, &Packet::Pubcomp(ack(a.packet_id, code)));
                Ok(())
            }
            Packet::Subscribe(s) => self.on_subscribe(key, s, ext, now),
            Packet::Unsubscribe(u) => {
                self.on_unsubscribe(key, u);
                Ok(())
            }
            Packet::Pingreq => {
                self.send_packet(key, &Packet::Pingresp);
                Ok(())
            }
            Packet::Disconnect(d) => self.on_disconnect(key, d),
            Packet::Connect(_) => Err(Close::new(reason::PROTOCOL_ERROR, "second CONNECT")),
            Packet::Auth(_) => Err(Close::new(
                reason::PROTOCOL_ERROR,
                "AUTH without an authentication method",
            )),
            Packet::Connack(_) | Packet::Suback(_) | Packet::Unsuback(_) | Packet::Pingresp => Err(
                Close::new(reason::PROTOCOL_ERROR, "server-only packet from a client"),
            ),
        }
    }

    fn session(&mut self, key: u64) -> &mut Session {
        self.sessions
            .get_mut(&key)
            .expect("caller checked the session exists")
    }

    fn link(&self, key: u64) -> Option<&Link> {
        self.sessions.get(&key).and_then(|s| s.link.as_ref())
    }

    /// The topic a PUBLISH is for, resolving a topic alias without changing anything; None
    /// if it cannot be resolved (the broker will refuse the packet anyway).
    pub(crate) fn publish_topic(&self, key: u64, p: &Publish) -> Option<String> {
        if !p.topic.is_empty() {
            return Some(p.topic.clone());
        }
        let alias = p.properties.topic_alias?;
        self.link(key)?
            .aliases
            .get(&alias)
            .map(|t| t.as_str().to_string())
    }

    fn on_disconnect(&mut self, key: u64, d: Disconnect) -> Result<(), Close> {
        let max_expiry = self.cfg.max_session_expiry_secs;
        let s = self.session(key);
        if let Some(e) = d.properties.session_expiry_interval {
            if s.expiry == 0 && e != 0 {
                return Err(Close::new(
                    reason::PROTOCOL_ERROR,
                    "session expiry set after 0",
                ));
            }
            s.expiry = e.min(max_expiry);
        }
        // A normal DISCONNECT discards the will; 0x04 asks for it (MQTT 5 §3.14.2.1).
        if d.reason_code != reason::DISCONNECT_WITH_WILL
            && let Some(l) = s.link.as_mut()
        {
            l.will = None;
        }
        Err(Close::new(reason::SUCCESS, "client disconnected"))
    }

    fn on_publish(
        &mut self,
        key: u64,
        mut p: Publish,
        ext: &[bool],
        now: Instant,
    ) -> Result<(), Close> {
        let (v, external) = match self.link(key) {
            Some(l) => (l.version, l.external),
            None => return Ok(()),
        };
        // Topic alias (client → server, MQTT 5 §3.3.2.3.4).
        let alias = p
            .properties
            .get_mut()
            .and_then(|props| props.topic_alias.take());
        let topic = if let Some(alias) = alias {
            if alias == 0 || alias > self.cfg.topic_alias_maximum {
                return Err(Close::new(
                    reason::TOPIC_ALIAS_INVALID,
                    "topic alias out of range",
                ));
            }
            let link = self.session(key).link.as_mut().expect("checked above");
            if p.topic.is_empty() {
                match link.aliases.get(&alias) {
                    Some(t) => t.clone(),
                    None => return Err(Close::new(reason::PROTOCOL_ERROR, "unknown topic alias")),
                }
            } else {
                let t = TopicName::new(std::mem::take(&mut p.topic))
                    .map_err(|_| Close::new(reason::TOPIC_NAME_INVALID, "bad topic"))?;
                link.aliases.insert(alias, t.clone());
                t
            }
        } else {
            TopicName::new(std::mem::take(&mut p.topic))
                .map_err(|_| Close::new(reason::TOPIC_NAME_INVALID, "bad topic"))?
        };
        if p.qos == QoS::ExactlyOnce {
            let pid = p.packet_id.unwrap_or(0);
            let s = self.session(key);
            if s.incoming.contains(&pid) {
                // A resend of a message we already took: acknowledge, do not deliver twice.
                self.send_packet(key, &Packet::Pubrec(ack(pid, reason::SUCCESS)));
                return Ok(());
            }
            if s.incoming.len() >= usize::from(self.cfg.receive_maximum) {
                return Err(Close::new(
                    reason::RECEIVE_MAX_EXCEEDED,
                    "receive maximum exceeded",
                ));
            }
        }
        // One look at the policy for both the ACL and the size limit. The names are borrowed,
        // not cloned: this runs for every PUBLISH.
        let policy = self.policy.current();
        let s = &self.sessions[&key];
        let username = s.link.as_ref().map_or("", |l| l.username.as_str());
        let serial = policy.as_ref().map(|p| p.serial());
        let cached = serial.is_some_and(|serial| {
            s.link
                .as_ref()
                .is_some_and(|l| l.published_before(serial, topic.as_str()))
        });
        let allowed = if external {
            ext.first().copied().unwrap_or(false)
        } else {
            cached
                || policy.as_ref().is_some_and(|pol| {
                    pol.check(username, &s.client_id, AclAction::Publish(topic.as_str()))
                })
        };
        let remember = allowed && !external && !cached;
        let max_payload = policy
            .as_ref()
            .map_or(u32::MAX, |p| p.limits().max_message_bytes)
            .min(self.cfg.max_packet_size) as usize;
        drop(policy);
        let too_large = p.payload.len() > max_payload;
        // 0x95 is not a PUBACK/PUBREC reason (MQTT 5 §3.4.2.1): a payload over the policy's
        // limit (which may be below the packet size told in CONNACK) exceeds a quota.
        let code = if too_large {
            reason::QUOTA_EXCEEDED
        } else if !allowed {
            bump(&self.stats.acl_denied_publish, 1);
            super::audit::denied_publish(username, &s.client_id, topic.as_str());
            reason::NOT_AUTHORIZED
        } else {
            reason::SUCCESS
        };
        // MQTT 3 has no negative acknowledgement: a refused message is acknowledged and
        // dropped, as Mosquitto does.
        let code_on_wire = if v.is_v5() { code } else { reason::SUCCESS };
        match (p.qos, p.packet_id) {
            (QoS::AtLeastOnce, Some(pid)) => {
                self.send_packet(key, &Packet::Puback(ack(pid, code_on_wire)))
            }
            (QoS::ExactlyOnce, Some(pid)) => {
                if code == reason::SUCCESS {
                    self.session(key).incoming.insert(pid);
                }
                self.send_packet(key, &Packet::Pubrec(ack(pid, code_on_wire)))
            }
            _ => {}
        }
        if code != reason::SUCCESS {
            return Ok(());
        }
        if remember
            && let Some(serial) = serial
            && let Some(link) = self.session(key).link.as_mut()
        {
            link.remember_published(serial, topic.as_str());
        }
        bump(&self.stats.messages_in, 1);
        bump(&self.stats.bytes_in, p.payload.len() as u64);
        // A small payload is a slice of a large read buffer: copy it once here, so a retained
        // or queued message does not keep the whole buffer alive. Large payloads stay slices
        // (their buffer is mostly them). Never copied per subscriber.
        if p.payload.len() <= SMALL_PAYLOAD {
            p.payload = Bytes::copy_from_slice(&p.payload);
        }
        let expiry = p.properties.message_expiry_interval;
        let msg = self.new_message(
            topic,
            p.payload,
            p.qos,
            p.retain,
            forwarded(&p.properties),
            expiry,
            key,
            now,
        );
        self.route(msg, now);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn new_message(
        &mut self,
        topic: TopicName,
        payload: Bytes,
        qos: QoS,
        retain: bool,
        props: Option<Box<Properties>>,
        expiry: Option<u32>,
        key: u64,
        now: Instant,
    ) -> Arc<Message> {
        self.seq += 1;
        Arc::new(Message {
            topic,
            payload,
            qos,
            retain,
            props,
            expires_at: expiry.map(|s| now + Duration::from_secs(u64::from(s))),
            origin: self.me(key),
            id: (self.seq << 8) | self.core as u64,
            accepted_at: now,
            encoded: Default::default(),
        })
    }

    /// Routes a message accepted on this core: every other core gets one handle, then this
    /// core fans it out to its own subscribers. The members of shared subscriptions are
    /// chosen here, once, and travel with the message, so exactly one member of each group
    /// gets it whatever the other cores' replicas of the membership say at that moment.
    pub(crate) fn route(&mut self, msg: Arc<Message>, now: Instant) {
        let mut chosen: Vec<(Member, ShareKey)> = Vec::new();
        self.shared
            .for_each_match(msg.topic.as_str(), |(group, filter, members)| {
                if let Some(m) = pick_member(members, msg.id) {
                    chosen.push((m, (group.clone(), filter.clone())));
                }
            });
        let chosen: Arc<[(Member, ShareKey)]> = if chosen.is_empty() {
            self.no_shares.clone()
        } else {
            chosen.into()
        };
        for (core, peer) in self.peers.iter().enumerate() {
            if core == self.core {
                continue;
            }
            // Every core keeps a replica of the retained messages; otherwise a core is sent
            // the message only if it has subscriptions, or a shared-subscription member
            // chosen for it.
            let wanted = msg.retain
                || self.interest[core].load(Ordering::SeqCst) > 0
                || chosen.iter().any(|(m, _)| m.core as usize == core);
            if wanted
                && peer
                    .try_send(BrokerMsg::Publish(msg.clone(), chosen.clone()))
                    .is_err()
            {
                bump(&self.stats.dropped_cross_core, 1);
            }
        }
        self.deliver_local(&msg, &chosen, now);
    }

    /// A message from any core: retained replica, local subscribers, the shared-subscription
    /// members chosen for it that live here.
    pub(crate) fn deliver_local(
        &mut self,
        msg: &Arc<Message>,
        chosen: &[(Member, ShareKey)],
        now: Instant,
    ) {
        if msg.retain {
            if !msg.topic.is_dollar() {
                self.dirty = true;
            }
            // Last writer wins by acceptance time, so every core's replica ends equal even
            // when two cores take a retained message for one topic at the same time.
            let newer = self
                .retained
                .get(&msg.topic)
                .is_none_or(|old| (old.accepted_at, old.id) <= (msg.accepted_at, msg.id));
            if newer {
                if msg.payload.is_empty() {
                    self.retained.remove(&msg.topic);
                } else {
                    self.retained.insert(msg.topic.clone(), msg.clone());
                }
            }
        }
        // Collect first: delivering needs `&mut self`. One subscriber may have several
        // matching subscriptions: it gets the message once, at the highest QoS, with every
        // subscription id (MQTT 5 §3.3.4).
        let mut targets = std::mem::take(&mut self.targets);
        targets.clear();
        self.subs.for_each_match(msg.topic.as_str(), |e| {
            targets.push((e.key, e.opts, e.id, e.readable));
        });
        if targets.len() > 1 {
            targets.sort_by_key(|t| t.0);
        }
        let mut i = 0;
        while i < targets.len() {
            let key = targets[i].0;
            let mut opts = targets[i].1;
            let mut ids: Vec<u32> = Vec::new();
            let mut readable = false;
            while i < targets.len() && targets[i].0 == key {
                opts.qos = opts.qos.max(targets[i].1.qos);
                opts.retain_as_published |= targets[i].1.retain_as_published;
                readable |= targets[i].3;
                if let Some(id) = targets[i].2 {
                    ids.push(id);
                }
                i += 1;
            }
            if opts.no_local && msg.origin == self.me(key) {
                continue;
            }
            if !readable && !self.may_receive(key, &msg.topic) {
                continue;
            }
            let retain = opts.retain_as_published && msg.retain;
            self.deliver(key, msg, opts.qos, retain, ids, now);
        }
        self.targets = targets;
        let me = self.core as u32;
        for (member, (group, filter)) in chosen {
            if member.core != me {
                continue;
            }
            let Ok(key) = TopicFilter::new(format!("$share/{group}/{}", filter.as_str())) else {
                continue;
            };
            let Some(own) = self
                .sessions
                .get(&member.key)
                .and_then(|s| s.subs.get(&key))
                .cloned()
            else {
                continue;
            };
            if !own.readable && !self.may_receive(member.key, &msg.topic) {
                continue;
            }
            let ids = own.id.into_iter().collect();
            self.deliver(member.key, msg, own.opts.qos, false, ids, now);
        }
    }

    /// Whether session `key` may receive a message on `topic`: asked per delivery only for
    /// subscriptions whose filter is not wholly readable (a `subscribe`-only rule).
    fn may_receive(&self, key: u64, topic: &TopicName) -> bool {
        let Some(s) = self.sessions.get(&key) else {
            return false;
        };
        // An external backend answered for the subscription as a whole (acc 4).
        s.external
            || self.policy.current().is_some_and(|p| {
                p.check(
                    &s.username,
                    &s.client_id,
                    AclAction::Receive(topic.as_str()),
                )
            })
    }

    /// One delivery to one local session.
    fn deliver(
        &mut self,
        key: u64,
        msg: &Arc<Message>,
        sub_qos: QoS,
        retain: bool,
        sub_ids: Vec<u32>,
        now: Instant,
    ) {
        if msg.expired(now) {
            bump(&self.stats.dropped_expired, 1);
            return;
        }
        let qos = msg.qos.min(sub_qos);
        let Some(s) = self.sessions.get_mut(&key) else {
            return;
        };
        // Receiving was authorised by the caller: at SUBSCRIBE for a wholly readable filter
        // (`readable`), per message otherwise (`may_receive`); `recheck_policy` keeps both
        // true to the policy in force.
        if qos == QoS::AtMostOnce {
            let Some(link) = s.link.as_mut() else {
                return; // QoS 0 is not queued for offline sessions.
            };
            let alias = link.alias_for(&msg.topic);
            let d = Delivery {
                qos,
                retain,
                pid: None,
                sub_ids: &sub_ids,
                alias,
            };
            let frame = msg.frame(link.version, &d, now);
            let Some(frame) = frame.filter(|f| f.len() <= link.max_packet as usize) else {
                bump(&self.stats.dropped_too_large, 1);
                link.unalias(&msg.topic, alias);
                return;
            };
            let full = {
                let ob = link.outbox.borrow();
                ob.frames.len() >= self.cfg.max_queued_messages
                    || (ob.bytes + frame.len() > self.cfg.max_queued_bytes && !ob.frames.is_empty())
            };
            if full {
                link.unalias(&msg.topic, alias);
                bump(&self.stats.dropped_qos0_slow, 1);
                if self.cfg.slow_policy == SlowPolicy::Disconnect {
                    bump(&self.stats.disconnected_slow, 1);
                    let mut ob = link.outbox.borrow_mut();
                    ob.close = Some(reason::QUOTA_EXCEEDED);
                    ob.wake();
                }
                return;
            }
            if self.budget.load(Ordering::Relaxed) + frame.len() > self.cfg.memory_budget_bytes {
                link.unalias(&msg.topic, alias);
                bump(&self.stats.dropped_memory, 1);
                return;
            }
            bump(&self.stats.messages_out, 1);
            bump(&self.stats.bytes_out, msg.payload.len() as u64);
            self.push(key, frame);
            return;
        }
        let size = msg.payload.len();
        // The session queue is bounded in messages and bytes (a single message larger than
        // the byte bound still goes into an empty queue), and counts against the global
        // memory budget like the outboxes.
        let full = s.queue.len() >= self.cfg.max_queued_messages
            || (s.queued_bytes + size > self.cfg.max_queued_bytes && !s.queue.is_empty());
        if full {
            bump(&self.stats.dropped_queue_full, 1);
            return;
        }
        if self.budget.load(Ordering::Relaxed) + size > self.cfg.memory_budget_bytes {
            bump(&self.stats.dropped_memory, 1);
            return;
        }
        self.budget.fetch_add(size, Ordering::Relaxed);
        s.queued_bytes += size;
        self.dirty = true;
        s.queue.push_back(Pending {
            msg: msg.clone(),
            qos,
            retain,
            sub_ids,
        });
        self.pump(key, now);
    }

    /// Moves queued QoS 1/2 deliveries into flight while the client's window allows.
    fn pump(&mut self, key: u64, now: Instant) {
        loop {
            let Some(s) = self.sessions.get_mut(&key) else {
                return;
            };
            let Some((receive_max, v, max_packet)) = s
                .link
                .as_ref()
                .map(|l| (l.receive_max, l.version, l.max_packet))
            else {
                return;
            };
            if s.inflight.len() >= usize::from(receive_max) {
                return;
            }
            let Some(p) = s.queue.pop_front() else {
                return;
            };
            s.queued_bytes = s.queued_bytes.saturating_sub(p.msg.payload.len());
            self.budget
                .fetch_sub(p.msg.payload.len(), Ordering::Relaxed);
            if p.msg.expired(now) {
                bump(&self.stats.dropped_expired, 1);
                continue;
            }
            let pid = next_pid(s);
            let Some(link) = s.link.as_mut() else {
                return;
            };
            let alias = link.alias_for(&p.msg.topic);
            let d = Delivery {
                qos: p.qos,
                retain: p.retain,
                pid: Some(pid),
                sub_ids: &p.sub_ids,
                alias,
            };
            let frame = p.msg.frame(v, &d, now);
            let Some(frame) = frame.filter(|f| f.len() <= max_packet as usize) else {
                link.unalias(&p.msg.topic, alias);
                bump(&self.stats.dropped_too_large, 1);
                continue;
            };
            bump(&self.stats.messages_out, 1);
            bump(&self.stats.bytes_out, p.msg.payload.len() as u64);
            s.inflight.insert(pid, Inflight::Publish(p));
            self.push(key, frame);
        }
    }

    fn push(&mut self, key: u64, frame: Frame) {
        let Some(link) = self.sessions.get(&key).and_then(|s| s.link.as_ref()) else {
            return;
        };
        let mut ob = link.outbox.borrow_mut();
        ob.bytes += frame.len();
        if ob.since.is_none() {
            ob.since = Some(Instant::now());
        }
        self.budget.fetch_add(frame.len(), Ordering::Relaxed);
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        ob.frames.push_back(frame);
        ob.wake();
    }

    /// Encodes a control packet for the session's connection.
    fn send_packet(&mut self, key: u64, p: &Packet) {
        let Some(v) = self.link(key).map(|l| l.version) else {
            return;
        };
        let mut b = BytesMut::new();
        if p.encode(v, &mut b).is_ok() {
            self.push(key, Frame::Whole(b.freeze()));
        }
    }

    /// The connection took `frames` frames of `bytes` bytes out of its outbox.
    pub(crate) fn taken(&self, frames: usize, bytes: usize) {
        self.budget.fetch_sub(bytes, Ordering::Relaxed);
        self.stats
            .queued
            .fetch_sub(frames as i64, Ordering::Relaxed);
    }

    // === SUBSCRIBE / UNSUBSCRIBE ===

    fn on_subscribe(
        &mut self,
        key: u64,
        sub: Subscribe,
        ext: &[bool],
        now: Instant,
    ) -> Result<(), Close> {
        let (v, username, external) = match self.link(key) {
            Some(l) => (l.version, l.username.clone(), l.external),
            None => return Ok(()),
        };
        let client_id = self.sessions[&key].client_id.clone();
        let sub_id = sub.properties.subscription_identifiers.first().copied();
        let policy = self.policy.current();
        let max_subs = policy
            .as_ref()
            .map_or(0, |p| p.limits().max_subscriptions_per_client as usize);
        let mut codes = Vec::with_capacity(sub.filters.len());
        let mut retained_out: Vec<(Arc<Message>, QoS, bool, Option<u32>)> = Vec::new();
        for (i, (filter, opts)) in sub.filters.into_iter().enumerate() {
            let inner = filter.shared().map_or(filter.as_str(), |(_, f)| f);
            let allowed = if external {
                ext.get(i).copied().unwrap_or(false)
            } else {
                policy
                    .as_ref()
                    .is_some_and(|p| p.check(&username, &client_id, AclAction::Subscribe(inner)))
            };
            // External users: the server's answer for the subscription covers reading too.
            let readable = external
                || policy
                    .as_ref()
                    .is_some_and(|p| p.check(&username, &client_id, AclAction::ReadFilter(inner)));
            if !allowed {
                bump(&self.stats.acl_denied_subscribe, 1);
                super::audit::denied_subscribe(&username, &client_id, filter.as_str());
                codes.push(if v.is_v5() {
                    reason::NOT_AUTHORIZED
                } else {
                    0x80
                });
                continue;
            }
            if filter.shared().is_some() && opts.no_local {
                // MQTT 5 §3.8.3.1: no-local on a shared subscription is a protocol error.
                return Err(Close::new(
                    reason::PROTOCOL_ERROR,
                    "no-local on a shared subscription",
                ));
            }
            let s = self.session(key);
            let existed = s.subs.contains_key(&filter);
            if !existed && s.subs.len() >= max_subs {
                codes.push(if v.is_v5() {
                    reason::QUOTA_EXCEEDED
                } else {
                    0x80
                });
                continue;
            }
            let own = OwnSub {
                opts,
                id: sub_id,
                readable,
            };
            s.subs.insert(filter.clone(), own.clone());
            if existed {
                self.unindex(key, &filter);
            }
            self.index(key, &filter, &own);
            codes.push(opts.qos.as_u8());
            // Retained messages (MQTT 5 §3.3.1.3, retain handling); never for shared
            // subscriptions (§4.8.2).
            let send = filter.shared().is_none()
                && match opts.retain_handling {
                    RetainHandling::SendAtSubscribe => true,
                    RetainHandling::SendIfNew => !existed,
                    RetainHandling::DoNotSend => false,
                };
            if send {
                for m in self.retained.values() {
                    if filter.matches(&m.topic) && !m.expired(now) {
                        retained_out.push((m.clone(), opts.qos, readable, sub_id));
                    }
                }
            }
        }
        let suback = Packet::Suback(Suback {
            packet_id: sub.packet_id,
            reason_codes: codes,
            properties: Properties::default(),
        });
        self.send_packet(key, &suback);
        for (m, qos, readable, id) in retained_out {
            if !readable && !self.may_receive(key, &m.topic) {
                continue;
            }
            let retain = true;
            self.deliver(key, &m, qos, retain, id.into_iter().collect(), now);
        }
        Ok(())
    }

    fn on_unsubscribe(&mut self, key: u64, u: Unsubscribe) {
        let mut codes = Vec::with_capacity(u.filters.len());
        for f in u.filters {
            if self.session(key).subs.remove(&f).is_some() {
                self.unindex(key, &f);
                codes.push(reason::SUCCESS);
            } else {
                codes.push(reason::NO_SUBSCRIPTION_EXISTED);
            }
        }
        let v5 = self.link(key).is_some_and(|l| l.version.is_v5());
        let unsuback = Packet::Unsuback(Unsuback {
            packet_id: u.packet_id,
            reason_codes: if v5 { codes } else { Vec::new() },
            properties: Properties::default(),
        });
        self.send_packet(key, &unsuback);
    }

    fn index(&mut self, key: u64, filter: &TopicFilter, own: &OwnSub) {
        if filter.shared().is_some() {
            self.share_membership(key, filter, true);
        } else {
            // Counted before the SUBACK is queued: a PUBLISH another core accepts after the
            // subscriber has its SUBACK finds this core interested.
            self.interest[self.core].fetch_add(1, Ordering::SeqCst);
            self.subs.slot(filter.as_str()).push(SubEntry {
                key,
                opts: own.opts,
                id: own.id,
                readable: own.readable,
            });
        }
    }

    fn unindex(&mut self, key: u64, filter: &TopicFilter) {
        if filter.shared().is_some() {
            self.share_membership(key, filter, false);
        } else {
            let removed = self.subs.remove_where(filter.as_str(), |e| e.key == key);
            self.interest[self.core].fetch_sub(removed, Ordering::SeqCst);
        }
    }

    /// Session `key` joins (or leaves) the shared group of `filter`, on this core's replica
    /// and on every other core's. A membership message dropped by a full queue would leave
    /// the replicas disagreeing: it is counted like any cross-core drop.
    fn share_membership(&mut self, key: u64, filter: &TopicFilter, join: bool) {
        let Some((group, inner)) = filter.shared() else {
            return;
        };
        let Ok(inner) = TopicFilter::new(inner) else {
            return;
        };
        let share: ShareKey = (Box::from(group), inner);
        let me = self.me(key);
        if join {
            self.share_join(&share, me);
        } else {
            self.share_leave(&share, me);
        }
        for (core, peer) in self.peers.iter().enumerate() {
            if core == self.core {
                continue;
            }
            let msg = if join {
                BrokerMsg::ShareJoin(share.clone(), me)
            } else {
                BrokerMsg::ShareLeave(share.clone(), me)
            };
            if peer.try_send(msg).is_err() {
                bump(&self.stats.dropped_cross_core, 1);
            }
        }
    }

    pub(crate) fn share_join(&mut self, (group, filter): &ShareKey, m: Member) {
        let mut slot = self.shared.slot(filter.as_str());
        match slot.find(|(g, _, _)| g == group) {
            Some((_, _, members)) => {
                if let Err(at) = members.binary_search(&m) {
                    members.insert(at, m);
                }
            }
            None => slot.push((group.clone(), filter.clone(), vec![m])),
        }
    }

    pub(crate) fn share_leave(&mut self, (group, filter): &ShareKey, m: Member) {
        let Some(groups) = self.shared.get_mut(filter.as_str()) else {
            return;
        };
        let mut emptied = false;
        if let Some((_, _, members)) = groups.iter_mut().find(|(g, _, _)| g == group) {
            members.retain(|x| *x != m);
            emptied = members.is_empty();
        }
        if emptied {
            self.shared
                .remove_where(filter.as_str(), |(g, _, ms)| g == group && ms.is_empty());
        }
    }

    // === disconnect, wills, expiry ===

    /// The connection `conn` of session `key` has ended. `graceful`: after a DISCONNECT
    /// without will.
    pub(crate) fn disconnected(&mut self, key: u64, conn: u64, now: Instant) {
        if !self.is_current(key, conn) {
            return;
        }
        self.stats.connected.fetch_sub(1, Ordering::Relaxed);
        let s = self.session(key);
        let link = s.link.take().expect("is_current checked the link");
        self.account_left(&link.username);
        let s = self.session(key);
        let epoch = s.epoch;
        let expiry = s.expiry;
        s.expires_at = (expiry != 0 && expiry != u32::MAX)
            .then(|| now + Duration::from_secs(u64::from(expiry)));
        self.dirty = true;
        // Undelivered QoS 0 frames die with the connection; the budget gets them back.
        {
            let mut ob = link.outbox.borrow_mut();
            let n = ob.frames.len();
            let bytes = ob.bytes;
            ob.frames.clear();
            ob.bytes = 0;
            drop(ob);
            self.taken(n, bytes);
        }
        if let Some(w) = link.will {
            let delay = w.delay.min(expiry);
            if delay == 0 {
                self.publish_will(w, now);
            } else {
                self.will_pending.insert(key, (epoch, w));
                self.add_timer(
                    key,
                    now + Duration::from_secs(u64::from(delay)),
                    TimerKind::Will,
                );
            }
        }
        if expiry == 0 {
            self.drop_session(key);
        } else if expiry != u32::MAX {
            let at = now + Duration::from_secs(u64::from(expiry));
            self.add_timer(key, at, TimerKind::Expire);
        }
    }

    fn publish_will(&mut self, w: WillMsg, now: Instant) {
        // The will's message expiry counts from its publication (MQTT 5 §3.1.3.2.4).
        let msg = match w.expiry {
            None => w.msg,
            Some(secs) => match Arc::try_unwrap(w.msg) {
                Ok(mut m) => {
                    m.expires_at = Some(now + Duration::from_secs(u64::from(secs)));
                    Arc::new(m)
                }
                Err(shared) => shared,
            },
        };
        let Some(s) = self.sessions.get(&msg.origin.key) else {
            return;
        };
        // The will is checked against the ACLs when it is sent, not when it was set (an
        // external backend's answer was asked at CONNECT).
        let allowed = s.external
            || self.policy.current().is_some_and(|p| {
                p.check(
                    &s.username,
                    &s.client_id,
                    AclAction::Publish(msg.topic.as_str()),
                )
            });
        if allowed {
            bump(&self.stats.wills_published, 1);
            self.route(msg, now);
        } else {
            bump(&self.stats.acl_denied_publish, 1);
        }
    }

    /// Runs due timers (delayed wills, session expiry) and the policy re-check. Called by the
    /// core's ticker a few times a second.
    pub(crate) fn tick(&mut self, now: Instant) {
        while let Some(&(at, key, kind, epoch)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            self.dirty = true;
            let live = self
                .sessions
                .get(&key)
                .is_some_and(|s| s.epoch == epoch && s.link.is_none());
            match kind {
                TimerKind::Will => {
                    if live
                        && self
                            .will_pending
                            .get(&key)
                            .is_some_and(|(e, _)| *e == epoch)
                        && let Some((_, w)) = self.will_pending.remove(&key)
                    {
                        self.publish_will(w, now);
                    }
                }
                TimerKind::Expire => {
                    if live {
                        bump(&self.stats.sessions_expired, 1);
                        if let Some((_, w)) = self.will_pending.remove(&key) {
                            self.publish_will(w, now);
                        }
                        self.drop_session(key);
                    }
                }
            }
        }
        self.recheck_policy();
        self.log_drops(now);
        if self.dirty && now >= self.next_persist {
            self.persist(now, false);
        }
    }

    /// Says, at most every 10 s per core, how many deliveries were dropped since it last said
    /// (every drop is counted in the metrics; this makes overload visible in the log too).
    fn log_drops(&mut self, now: Instant) {
        if now.duration_since(self.drops_logged_at) < Duration::from_secs(10) {
            return;
        }
        let st = &self.stats;
        let counts = [
            st.dropped_qos0_slow.load(Ordering::Relaxed),
            st.dropped_queue_full.load(Ordering::Relaxed),
            st.dropped_memory.load(Ordering::Relaxed),
            st.dropped_cross_core.load(Ordering::Relaxed),
        ];
        let total: u64 = counts.iter().sum();
        if total > self.drops_logged {
            tracing::warn!(
                message = "Deliveries dropped: subscribers or cores could not keep up.",
                core = self.core,
                since_last = total - self.drops_logged,
                qos0_outbox_full = counts[0],
                session_queue_full = counts[1],
                memory_budget = counts[2],
                cross_core_queue_full = counts[3]
            );
            self.drops_logged = total;
        }
        self.drops_logged_at = now;
    }

    /// After a policy change: disconnect sessions whose account is gone or disabled, and drop
    /// subscriptions the ACLs no longer allow.
    fn recheck_policy(&mut self) {
        let Some(policy) = self.policy.current() else {
            return;
        };
        if policy.serial() == self.checked_serial {
            return;
        }
        self.checked_serial = policy.serial();
        let keys: Vec<u64> = self.sessions.keys().copied().collect();
        for key in keys {
            let s = &self.sessions[&key];
            if s.external {
                // Answered by the external backend, whose answers expire from the cache.
                continue;
            }
            if !policy.account_active(&s.username) {
                if let Some(link) = self.sessions[&key].link.as_ref() {
                    bump(&self.stats.revoked, 1);
                    let mut ob = link.outbox.borrow_mut();
                    ob.close = Some(reason::ADMINISTRATIVE_ACTION);
                    ob.wake();
                }
                continue;
            }
            // Subscriptions the rules no longer allow go; the others get their readability
            // decided again (a `read` rule added or removed since).
            let mut gone = Vec::new();
            let mut changed = Vec::new();
            for (f, own) in &s.subs {
                let inner = f.shared().map_or(f.as_str(), |(_, i)| i);
                if !policy.check(&s.username, &s.client_id, AclAction::Subscribe(inner)) {
                    gone.push(f.clone());
                    continue;
                }
                let readable =
                    policy.check(&s.username, &s.client_id, AclAction::ReadFilter(inner));
                if readable != own.readable {
                    changed.push((f.clone(), readable));
                }
            }
            for f in gone {
                self.session(key).subs.remove(&f);
                self.unindex(key, &f);
            }
            for (f, readable) in changed {
                let Some(own) = self.session(key).subs.get_mut(&f) else {
                    continue;
                };
                own.readable = readable;
                let own = own.clone();
                self.unindex(key, &f);
                self.index(key, &f, &own);
            }
        }
    }

    // === persistence ===

    /// Restores this core's share of what the persistence directory held (read for every core
    /// before any started: `persist::Restored`) and persists to `dir` from now on.
    pub(crate) fn restore(
        &mut self,
        writer: Arc<persist::Writer>,
        dir: PathBuf,
        (retained, sessions): (Vec<StoredMessage>, Vec<StoredSession>),
        now: Instant,
    ) {
        for m in retained {
            if let Some(msg) = self.message_of(m, 0, now)
                && !msg.expired(now)
            {
                self.retained.insert(msg.topic.clone(), msg);
            }
        }
        for st in sessions {
            self.restore_session(st, now);
        }
        self.persist = Some((writer, dir));
        self.dirty = true;
    }

    fn restore_session(&mut self, st: StoredSession, now: Instant) {
        if st.expiry == 0 || self.by_client.contains_key(&st.client_id) {
            return;
        }
        let expires_at = if st.expires_unix_ms != 0 {
            persist::instant_of(st.expires_unix_ms, now)
        } else {
            now + Duration::from_secs(u64::from(st.expiry))
        };
        if st.expiry != u32::MAX && expires_at <= now {
            return;
        }
        let key = self.new_session(&st.client_id, &st.username);
        for p in st.pending {
            let Some(msg) = self.message_of(p.msg, key, now) else {
                continue;
            };
            let pending = Pending {
                msg,
                qos: p.qos,
                retain: p.retain,
                sub_ids: p.sub_ids,
            };
            let size = pending.msg.payload.len();
            let s = self.sessions.get_mut(&key).expect("session just created");
            match p.pid {
                Some(pid) => {
                    s.inflight.insert(pid, Inflight::Publish(pending));
                }
                None => {
                    s.queued_bytes += size;
                    s.queue.push_back(pending);
                    self.budget.fetch_add(size, Ordering::Relaxed);
                }
            }
        }
        let s = self.session(key);
        s.expiry = st.expiry;
        s.incoming = st.incoming.into_iter().collect();
        for pid in st.releasing {
            s.inflight.insert(pid, Inflight::Release);
        }
        if st.expiry != u32::MAX {
            s.expires_at = Some(expires_at);
            self.add_timer(key, expires_at, TimerKind::Expire);
        }
        for (filter, opts, id) in st.subs {
            // Readability is decided again by `recheck_policy` once a policy is in force.
            let own = OwnSub {
                opts,
                id,
                readable: false,
            };
            self.session(key).subs.insert(filter.clone(), own.clone());
            self.index(key, &filter, &own);
        }
        // The next tick re-checks every subscription against the policy.
        self.checked_serial = 0;
    }

    fn message_of(&mut self, m: StoredMessage, key: u64, now: Instant) -> Option<Arc<Message>> {
        let p = m.publish;
        let topic = TopicName::new(p.topic).ok()?;
        let msg = self.new_message(
            topic,
            p.payload,
            p.qos,
            p.retain,
            forwarded(&p.properties),
            None,
            key,
            now,
        );
        if m.expires_unix_ms == 0 {
            return Some(msg);
        }
        let mut msg = Arc::try_unwrap(msg).ok()?;
        msg.expires_at = Some(persist::instant_of(m.expires_unix_ms, now));
        Some(Arc::new(msg))
    }

    fn stored(msg: &Message, now: Instant) -> StoredMessage {
        StoredMessage {
            publish: Publish {
                dup: false,
                qos: msg.qos,
                retain: msg.retain,
                topic: msg.topic.as_str().to_string(),
                packet_id: (msg.qos != QoS::AtMostOnce).then_some(1),
                properties: msg.props.as_deref().cloned().unwrap_or_default().into(),
                payload: msg.payload.clone(),
            },
            expires_unix_ms: msg.expires_at.map_or(0, |t| persist::unix_ms(t, now)),
        }
    }

    /// Snapshots this core's persistent state to the writer thread; with `sync`, writes it
    /// from this thread (the final write of a drain).
    pub(crate) fn persist(&mut self, now: Instant, sync: bool) {
        let Some((writer, dir)) = self.persist.clone() else {
            return;
        };
        self.dirty = false;
        self.next_persist = now + self.cfg.persist_interval;
        let mut sessions = Vec::new();
        for s in self.sessions.values() {
            if s.expiry == 0 {
                continue;
            }
            let mut pending = Vec::new();
            let mut releasing = Vec::new();
            for (pid, state) in &s.inflight {
                match state {
                    Inflight::Publish(p) => pending.push(stored_pending(p, Some(*pid), now)),
                    Inflight::Release => releasing.push(*pid),
                }
            }
            pending.extend(s.queue.iter().map(|p| stored_pending(p, None, now)));
            sessions.push(StoredSession {
                client_id: s.client_id.clone(),
                username: s.username.clone(),
                expiry: s.expiry,
                expires_unix_ms: s.expires_at.map_or(0, |t| persist::unix_ms(t, now)),
                subs: s
                    .subs
                    .iter()
                    .map(|(f, o)| (f.clone(), o.opts, o.id))
                    .collect(),
                pending,
                releasing,
                incoming: s.incoming.iter().copied().collect(),
            });
        }
        let mut files = vec![(
            persist::core_file(&dir, self.core),
            persist::encode_sessions(&sessions),
        )];
        if self.core == 0 {
            let retained: Vec<StoredMessage> = self
                .retained
                .values()
                .filter(|m| !m.expired(now) && !m.topic.as_str().starts_with("$SYS/"))
                .map(|m| Self::stored(m, now))
                .collect();
            files.push((
                persist::retained_file(&dir),
                persist::encode_retained(&retained),
            ));
        }
        for (path, data) in files {
            if sync {
                // Through the writer, after anything it still holds, so nothing older lands
                // after this last word.
                if let Err(error) = writer.write_now(path.clone(), data, Duration::from_secs(10)) {
                    tracing::error!(message = "Cannot write broker state.", path = %path.display(), %error);
                }
            } else if !writer.submit(path, data) {
                // The writer is behind: keep the state dirty and try again next tick.
                self.dirty = true;
            }
        }
    }

    /// Publishes a message of the broker's own (`$SYS`), retained, QoS 0.
    pub(crate) fn publish_internal(&mut self, topic: TopicName, payload: Bytes, now: Instant) {
        let msg = self.new_message(topic, payload, QoS::AtMostOnce, true, None, None, 0, now);
        self.route(msg, now);
    }

    /// A message from another core.
    pub(crate) fn remote(
        &mut self,
        msg: BrokerMsg,
        now: Instant,
    ) -> Option<Box<super::conn::Handoff>> {
        match msg {
            BrokerMsg::Publish(m, chosen) => self.deliver_local(&m, &chosen, now),
            BrokerMsg::ShareJoin(k, m) => self.share_join(&k, m),
            BrokerMsg::ShareLeave(k, m) => self.share_leave(&k, m),
            BrokerMsg::Handoff(h) => return Some(h),
        }
        None
    }

    /// Every retained message, for `$SYS` counts and persistence.
    pub(crate) fn retained_count(&self) -> usize {
        self.retained.len()
    }
}

/// The member of a shared group that gets message `id`: the same answer on every core.
fn pick_member(group: &[Member], id: u64) -> Option<Member> {
    if group.is_empty() {
        return None;
    }
    // Spread consecutive ids (which differ in the high bits) over the members.
    let h = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    group.get((h % group.len() as u64) as usize).copied()
}

fn next_pid(s: &mut Session) -> u16 {
    loop {
        let pid = s.next_pid;
        s.next_pid = s.next_pid.checked_add(1).unwrap_or(1);
        if !s.inflight.contains_key(&pid) {
            return pid;
        }
    }
}

fn ack(packet_id: u16, reason_code: u8) -> Ack {
    Ack {
        packet_id,
        reason_code,
        properties: Properties::default(),
    }
}

/// The properties a PUBLISH carries on to subscribers (MQTT 5 §3.3.2.3); `None` if it has
/// none of them.
fn forwarded(p: &Properties) -> Option<Box<Properties>> {
    let none = p.payload_format_indicator.is_none()
        && p.content_type.is_none()
        && p.response_topic.is_none()
        && p.correlation_data.is_none()
        && p.user_properties.is_empty();
    (!none).then(|| {
        Box::new(Properties {
            payload_format_indicator: p.payload_format_indicator,
            content_type: p.content_type.clone(),
            response_topic: p.response_topic.clone(),
            correlation_data: p.correlation_data.clone(),
            user_properties: p.user_properties.clone(),
            ..Properties::default()
        })
    })
}

fn stored_pending(p: &Pending, pid: Option<u16>, now: Instant) -> StoredPending {
    StoredPending {
        msg: Broker::stored(&p.msg, now),
        qos: p.qos,
        retain: p.retain,
        sub_ids: p.sub_ids.clone(),
        pid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Core 0's broker of two: the broker, core 1's inbox (both ends), the interest counts.
    type Core0 = (
        Broker,
        Sender<BrokerMsg>,
        rampart_rt::channel::Receiver<BrokerMsg>,
        Arc<[AtomicUsize]>,
    );

    fn core0_of_two() -> Core0 {
        let (tx0, _) = rampart_rt::channel::bounded(16);
        let (tx1, rx1) = rampart_rt::channel::bounded(16);
        let interest: Arc<[AtomicUsize]> = (0..2).map(|_| AtomicUsize::new(0)).collect();
        let broker = Broker::new(
            0,
            Rc::new(BrokerConfig::default()),
            PolicyHandle::new(),
            Arc::default(),
            Arc::default(),
            vec![tx0, tx1.clone()],
            interest.clone(),
        );
        (broker, tx1, rx1, interest)
    }

    #[test]
    fn client_ids_spread_over_the_cores() {
        // Ids that differ in one odd letter: with `h % 2` they all had one home.
        let odd: Vec<usize> = [
            "cam-a", "cam-c", "cam-e", "cam-g", "cam-i", "cam-k", "cam-m",
        ]
        .iter()
        .map(|id| home_core(id, 2))
        .collect();
        assert!(odd.contains(&0) && odd.contains(&1), "{odd:?}");
        // A fleet's numbered ids: every core gets its share, within 10 %.
        for cores in [2, 3, 4, 8] {
            let mut counts = vec![0usize; cores];
            for i in 0..4000 {
                counts[home_core(&format!("camera-{i:04}"), cores)] += 1;
            }
            let fair = 4000 / cores;
            assert!(
                counts.iter().all(|&n| n.abs_diff(fair) <= fair / 10),
                "{cores} cores: {counts:?}"
            );
        }
        assert_eq!(home_core("anything", 1), 0);
        assert_eq!(home_core("anything", 0), 0);
    }

    fn message(b: &mut Broker, topic: &str, retain: bool) -> Arc<Message> {
        let topic = TopicName::new(topic.to_string()).expect("valid topic");
        let payload = Bytes::from_static(b"x");
        b.new_message(
            topic,
            payload,
            QoS::AtMostOnce,
            retain,
            None,
            None,
            0,
            Instant::now(),
        )
    }

    #[test]
    fn a_whole_frame_is_the_encoded_publish() {
        let (mut b, ..) = core0_of_two();
        // Without properties (straight from topic and payload), and with forwarded ones (v5
        // sends them, v3 drops them).
        let props = Properties {
            content_type: Some("application/json".into()),
            user_properties: vec![("site".into(), "1".into())],
            ..Properties::default()
        };
        for (retain, props) in [(false, None), (true, None), (false, Some(props))] {
            let topic = TopicName::new("site/1/cam/7").expect("valid topic");
            let msg = b.new_message(
                topic,
                Bytes::from_static(b"{\"x\":1}"),
                QoS::AtMostOnce,
                retain,
                props.map(Box::new),
                None,
                0,
                Instant::now(),
            );
            for v in [Version::V311, Version::V5] {
                let d = Delivery {
                    qos: QoS::AtMostOnce,
                    retain,
                    pid: None,
                    sub_ids: &[],
                    alias: None,
                };
                let now = Instant::now();
                let Some(Frame::Whole(got)) = msg.frame(v, &d, now) else {
                    panic!("a QoS 0 delivery without per-subscriber fields is one whole frame");
                };
                let mut want = BytesMut::new();
                Packet::Publish(msg.publish(&d, now))
                    .encode(v, &mut want)
                    .expect("encodes");
                assert_eq!(got, want.freeze(), "{v:?} retain {retain}");
                let typed = got.windows(16).any(|w| w == b"application/json");
                assert_eq!(typed, v.is_v5() && msg.props.is_some(), "{v:?}");
            }
        }
    }

    #[test]
    fn a_message_goes_only_to_cores_that_could_want_it() {
        let (mut b, core1, _inbox, interest) = core0_of_two();
        let now = Instant::now();
        let m = message(&mut b, "cam/1", false);
        b.route(m, now);
        assert_eq!(core1.len(), 0, "core 1 has no subscription");
        let m = message(&mut b, "cam/1", true);
        b.route(m, now);
        assert_eq!(core1.len(), 1, "a retained message reaches every replica");
        interest[1].store(1, Ordering::SeqCst);
        let m = message(&mut b, "cam/1", false);
        b.route(m, now);
        assert_eq!(core1.len(), 2, "core 1 has a subscription now");
    }

    #[test]
    fn subscriptions_are_counted_in_and_out() {
        let (mut b, _, _inbox, interest) = core0_of_two();
        let own = OwnSub {
            opts: SubscriptionOptions::qos(QoS::AtMostOnce),
            id: None,
            readable: true,
        };
        let plain = TopicFilter::new("cam/+".to_string()).expect("valid filter");
        let shared = TopicFilter::new("$share/g/cam/+".to_string()).expect("valid filter");
        b.index(7, &plain, &own);
        b.index(8, &plain, &own);
        b.index(9, &shared, &own);
        // Shared members travel with each message (`chosen`); only plain ones are counted.
        assert_eq!(interest[0].load(Ordering::SeqCst), 2);
        assert_eq!(interest[1].load(Ordering::SeqCst), 0);
        b.unindex(7, &plain);
        b.unindex(7, &plain); // already gone: nothing more is taken off
        assert_eq!(interest[0].load(Ordering::SeqCst), 1);
        b.unindex(8, &plain);
        assert_eq!(interest[0].load(Ordering::SeqCst), 0);
    }
}
