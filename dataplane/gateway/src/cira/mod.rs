//! The CIRA server: Intel AMT devices dial in over TLS (port 4433) and hold APF tunnels.
//!
//! - `mod.rs`: one tunnel's life: the APF session (`rampart_apf_proto::ServerSession`) driven
//!   by socket bytes and the clock, admission cheapest check first, keepalive and idle, and
//!   the device's connect and disconnect events (on `mps/events`, and to the control plane's
//!   device registry through [`LinkHandle::device_event`]).
//! - `registry`: which GUIDs hold a tunnel now, across cores, without a lock.
//!
//! Admission: the GUID (from PROTOCOLVERSION) must be on the allowlist of the policy snapshot
//! before any credential is looked at; then the device's own MPS user name and password (a
//! keyed digest compared in constant time, `Policy::verify_device`); method `none` never
//! authenticates. Every outcome is audited (`cira.connect`), failures are throttled per source
//! address, and the whole pre-forwarding part runs under the `auth` stage deadline.

pub(crate) mod channel;
pub(crate) mod registry;

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::future::{Either, select};
use rampart_apf_proto::{
    ChannelId, CloseReason, Event, Guid, ServerSession, SessionConfig, State, reason,
};
use rampart_deadline::{StageClock, Timeout};
use rampart_mqtt_proto::TopicName;
use rampart_policy::snapshot::DeviceDecision;
use rampart_rt::channel::Receiver;
use rampart_tls::duplex::{TlsReader, TlsWriter};
use rampart_tls::{ConnError, TlsStream};
use tracing::{debug, info};

use crate::conn::ConnCtx;
use crate::link::LinkHandle;
use crate::metrics::Event as ConnEvent;
use crate::mqtt::audit;
use crate::mqtt::conn::MqttCore;
use crate::mqtt::throttle::Throttle;
use crate::policy::PolicyHandle;
use channel::{ChanState, ChannelRequest, Signal};
use registry::{Live, Registry, unix_ms};

/// How long a closing tunnel gets to send its DISCONNECT and close_notify.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Input buffers larger than this are given back once drained.
const READ_KEEP: usize = 16 * 1024;
/// The topic of device events (MPS's).
const EVENTS_TOPIC: &str = "mps/events";

/// The CIRA server's settings. Every field is documented with its default in `docs/config.md`.
#[derive(Debug, Clone)]
pub struct CiraConfig {
    /// The keepalive interval asked of devices (KEEPALIVE_OPTIONS_REQUEST). Default 30 s.
    pub keepalive_interval: Duration,
    /// A forwarding tunnel silent for this long is closed. Default 90 s (three intervals).
    pub idle_timeout: Duration,
    /// Our receive window per channel. Default 81920.
    pub window: u32,
    /// Publish `CIRA_Connected` / `CIRA_Disconnected` on `mps/events`. Default true.
    pub events: bool,
}

impl Default for CiraConfig {
    fn default() -> Self {
        Self {
            keepalive_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
            window: 81_920,
            events: true,
        }
    }
}

/// Counters of the CIRA server, shared by every core.
#[derive(Debug, Default)]
pub(crate) struct CiraStats {
    pub(crate) tunnels: AtomicI64,
    pub(crate) established: AtomicU64,
    pub(crate) unknown_guid: AtomicU64,
    pub(crate) bad_credentials: AtomicU64,
    pub(crate) throttled: AtomicU64,
    pub(crate) replaced: AtomicU64,
    pub(crate) idle_timeouts: AtomicU64,
    pub(crate) auth_timeouts: AtomicU64,
    pub(crate) protocol_errors: AtomicU64,
    pub(crate) peer_disconnects: AtomicU64,
    /// Channels open for the control plane now.
    pub(crate) channels: AtomicI64,
    pub(crate) channels_opened: AtomicU64,
    pub(crate) channel_refusals: AtomicU64,
}

impl CiraStats {
    /// `(name, value)` of every counter.
    pub(crate) fn counters(&self) -> [(&'static str, u64); 11] {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [
            ("established", l(&self.established)),
            ("unknown_guid", l(&self.unknown_guid)),
            ("bad_credentials", l(&self.bad_credentials)),
            ("throttled", l(&self.throttled)),
            ("replaced", l(&self.replaced)),
            ("idle_timeouts", l(&self.idle_timeouts)),
            ("auth_timeouts", l(&self.auth_timeouts)),
            ("protocol_errors", l(&self.protocol_errors)),
            ("peer_disconnects", l(&self.peer_disconnects)),
            ("channels_opened", l(&self.channels_opened)),
            ("channel_refusals", l(&self.channel_refusals)),
        ]
    }
}

fn bump(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

/// What every core's CIRA server shares.
#[derive(Debug)]
pub(crate) struct CiraShared {
    pub(crate) cfg: CiraConfig,
    pub(crate) registry: Registry,
    pub(crate) stats: CiraStats,
    pub(crate) policy: PolicyHandle,
}

/// One core's CIRA server.
#[derive(Debug)]
pub(crate) struct CiraCore {
    pub(crate) shared: Arc<CiraShared>,
    pub(crate) core: usize,
    pub(crate) throttle: RefCell<Throttle>,
    /// The core's broker, for device events.
    pub(crate) mqtt: Option<Rc<MqttCore>>,
    /// The control link, for the device registry (connects and disconnects).
    pub(crate) link: Option<LinkHandle>,
}

/// One tunnel's state, shared by its reading half, its driver and its channels (one core; a
/// `RefCell` is never borrowed across an await).
#[derive(Debug)]
pub(crate) struct Tunnel {
    pub(crate) shared: Arc<CiraShared>,
    pub(crate) session: RefCell<ServerSession>,
    /// Wakes the driver: input arrived, a channel queued data, consumed some or closed.
    pub(crate) wake: Signal,
    /// The channels opened for the control plane, by our id.
    pub(crate) channels: RefCell<HashMap<ChannelId, Rc<ChanState>>>,
    /// The registry entry, once forwarding.
    live: RefCell<Option<(Guid, Arc<Live>)>>,
    /// How the reading half ended: `Some(None)` at end of input, `Some(Some(e))` on an error.
    input_end: RefCell<Option<Option<ConnError>>>,
    pub(crate) write_stall: Duration,
}

/// Why the driver woke.
enum Wake {
    Poke,
    Timer,
    Killed,
    Drained,
    Request(Option<ChannelRequest>),
}

/// How the driver ended.
enum End {
    /// Say goodbye: flush, close_notify, shut down.
    Graceful,
    /// The connection is gone or broken: just close.
    Abrupt,
}

/// Serves one tunnel after its TLS handshake.
pub(crate) async fn serve(
    stream: TlsStream,
    peer: SocketAddr,
    ctx: Rc<ConnCtx>,
    core: Rc<CiraCore>,
) {
    let shared = core.shared.clone();
    let cfg = &shared.cfg;
    let start = Instant::now();
    let session_cfg = SessionConfig {
        keepalive_interval: cfg.keepalive_interval,
        idle_timeout: cfg.idle_timeout,
        our_window: cfg.window,
        // The same bound as the auth stage (which the data plane also enforces itself).
        handshake_timeout: ctx
            .first_stage
            .1
            .worst_case()
            .unwrap_or(Duration::from_secs(30)),
        ..SessionConfig::default()
    };
    let t = Rc::new(Tunnel {
        shared: shared.clone(),
        session: RefCell::new(ServerSession::new(session_cfg, start)),
        wake: Signal::default(),
        channels: RefCell::default(),
        live: RefCell::new(None),
        input_end: RefCell::new(None),
        write_stall: ctx.limits.write_stall,
    });
    let (mut reader, mut writer) = stream.into_duplex();
    let mut ended: Option<CloseReason> = None;
    let end = {
        let read_side = pin!(read_side(&t, &mut reader));
        let drive = pin!(drive(&t, &mut writer, peer, &ctx, &core, start, &mut ended));
        match select(read_side, drive).await {
            Either::Right((end, _)) => end,
            Either::Left(((), _)) => End::Abrupt,
        }
    };
    if matches!(end, End::Graceful) {
        writer.shutdown(CLOSE_GRACE).await;
    }
    // The channels end with the tunnel.
    for ch in t.channels.borrow_mut().drain().map(|(_, c)| c) {
        ch.end();
    }
    match &ended {
        Some(CloseReason::IdleTimeout) => bump(&shared.stats.idle_timeouts),
        Some(CloseReason::HandshakeTimeout) => bump(&shared.stats.auth_timeouts),
        Some(CloseReason::Protocol(label)) => {
            bump(&shared.stats.protocol_errors);
            debug!(message = "APF protocol error; tunnel closed.", %peer, reason = label.as_str());
        }
        Some(CloseReason::PeerDisconnect(_)) => bump(&shared.stats.peer_disconnects),
        _ => {}
    }
    let live = t.live.borrow_mut().take();
    if let Some((g, l)) = live {
        shared.stats.tunnels.fetch_sub(1, Ordering::Relaxed);
        let still_ours = shared.registry.unregister(&g, &l);
        info!(message = "CIRA tunnel closed.", guid = %g, %peer, reason = ?ended, replaced = !still_ours);
        if still_ours {
            if let Some(link) = &core.link {
                let seen = l.last_seen_ms.load(Ordering::Relaxed);
                link.device_event(g.to_string(), false, unix_ms(), seen);
            }
            publish_event(
                &core,
                "fail",
                "CIRA Connection Disconnected",
                "CIRA_Disconnected",
                &g,
            );
        }
    }
}

/// Reads the device's bytes into the session until the connection ends, then waits for the
/// driver to finish (it is the one that ends the tunnel).
async fn read_side(t: &Tunnel, reader: &mut TlsReader) {
    let mut rx = BytesMut::new();
    loop {
        rx.clear();
        match reader.read(&mut rx, None, Timeout::Stage("auth")).await {
            Ok(0) => {
                *t.input_end.borrow_mut() = Some(None);
                break;
            }
            Ok(_) => {
                t.session.borrow_mut().handle_input(&rx, Instant::now());
                if let Some((_, l)) = &*t.live.borrow() {
                    l.seen(unix_ms());
                }
                t.wake.notify();
            }
            Err(e) => {
                *t.input_end.borrow_mut() = Some(Some(e));
                break;
            }
        }
        if rx.capacity() > 4 * READ_KEEP {
            rx = BytesMut::new();
        }
    }
    t.wake.notify();
    std::future::pending::<()>().await;
}

/// The tunnel's driver: session events (admission, registration, channel traffic), what the
/// session has to send, its timers, replacement, drain and channel requests.
async fn drive(
    t: &Rc<Tunnel>,
    writer: &mut TlsWriter,
    peer: SocketAddr,
    ctx: &ConnCtx,
    core: &CiraCore,
    start: Instant,
    ended: &mut Option<CloseReason>,
) -> End {
    let shared = &core.shared;
    // The auth stage bounds everything before forwarding: version, credentials, services.
    let auth_clock = StageClock::start(ctx.first_stage.1, start);
    let mut requests: Option<Receiver<ChannelRequest>> = None;
    let mut out = BytesMut::new();
    loop {
        let now = Instant::now();
        loop {
            let ev = t.session.borrow_mut().poll_event();
            let Some(ev) = ev else { break };
            match ev {
                Event::Version { guid: g, .. } => {
                    admit_version(core, &mut t.session.borrow_mut(), g, peer, now);
                }
                Event::Auth { username, password } => {
                    let mut session = t.session.borrow_mut();
                    // The session raises Auth only after Version, so it knows the GUID.
                    let g = session.guid().unwrap_or(Guid([0; 16]));
                    check_credentials(core, &mut session, g, &username, &password, peer, now);
                }
                Event::Established { ports } => {
                    let g = t.session.borrow().guid().unwrap_or(Guid([0; 16]));
                    let (tx, rx) = rampart_rt::channel::bounded(channel::REQUEST_QUEUE);
                    requests = Some(rx);
                    let l = established(core, g, ports, peer, tx);
                    *t.live.borrow_mut() = Some((g, l));
                }
                Event::ChannelOpened { id } => {
                    if let Some(ch) = t.channels.borrow().get(&id) {
                        ch.opened.set(Some(Ok(())));
                        ch.down.notify();
                    }
                }
                Event::ChannelOpenFailed { id, reason } => {
                    if let Some(ch) = t.channels.borrow_mut().remove(&id) {
                        ch.opened.set(Some(Err(reason)));
                        ch.end();
                    }
                }
                Event::ChannelData { id, data } => {
                    if let Some(ch) = t.channels.borrow().get(&id) {
                        ch.inbound.borrow_mut().push_back(data);
                        ch.down.notify();
                    }
                }
                Event::ChannelClosed { id } => {
                    if let Some(ch) = t.channels.borrow_mut().remove(&id) {
                        ch.end();
                    }
                }
                Event::Closed { reason } => {
                    *ended = Some(reason);
                }
                _ => {}
            }
        }
        // Input may have opened the device's windows.
        for ch in t.channels.borrow().values() {
            ch.up.notify();
        }
        let sent = t.session.borrow_mut().poll_transmit(&mut out);
        if sent > 0 {
            let data = out.split();
            let r = match writer.stage(&data) {
                Ok(()) => writer.flush().await,
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                ctx.close_with(peer, &e);
                return End::Abrupt;
            }
            if out.capacity() > 4 * READ_KEEP {
                out = BytesMut::new();
            }
        }
        if ended.is_some() || t.session.borrow().state() == State::Closed {
            // The flush above yielded: input read meanwhile may have closed the session and
            // queued its DISCONNECT. End only after a pass that had nothing more to send.
            if sent > 0 {
                continue;
            }
            return End::Graceful;
        }
        match t.input_end.borrow_mut().take() {
            Some(None) => {
                ctx.record(ConnEvent::PeerClosed);
                return End::Abrupt;
            }
            Some(Some(e)) => {
                ctx.close_with(peer, &e);
                return End::Abrupt;
            }
            None => {}
        }
        // Wait for input, the session's timer, the pre-forwarding deadline, a replacement, a
        // drain or a channel request.
        let forwarding = t.session.borrow().state() == State::Forwarding;
        let timer = t.session.borrow().poll_timeout();
        let deadline = match (forwarding, timer, auth_clock.deadline()) {
            (false, Some(t), Some(a)) => Some(t.min(a)),
            (false, None, a) => a,
            (_, t, _) => t,
        };
        let wake = {
            let poke = pin!(t.wake.wait());
            let timer = pin!(async {
                match deadline {
                    Some(d) => compio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            });
            let live = t.live.borrow().as_ref().map(|(_, l)| l.clone());
            let killed = pin!(async {
                match &live {
                    Some(l) => l.killed().await,
                    None => std::future::pending().await,
                }
            });
            let drained = pin!(ctx.drain.signaled());
            let request = pin!(async {
                match requests.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            });
            // Polled in this order: a replacement, a drain and a channel request come before
            // input and the timer, so a busy channel cannot starve them.
            let stop = select(killed, drained);
            let busy = select(poke, timer);
            match select(select(stop, request), busy).await {
                Either::Left((Either::Left((Either::Left(_), _)), _)) => Wake::Killed,
                Either::Left((Either::Left((Either::Right(_), _)), _)) => Wake::Drained,
                Either::Left((Either::Right((r, _)), _)) => Wake::Request(r),
                Either::Right((Either::Left(_), _)) => Wake::Poke,
                Either::Right((Either::Right(_), _)) => Wake::Timer,
            }
        };
        let now = Instant::now();
        match wake {
            // Deadlines are checked below whatever woke the driver: input that never stops
            // must not hide them.
            Wake::Poke | Wake::Timer => {}
            Wake::Killed => {
                // A newer tunnel of this GUID took over, or the control plane kicked it.
                t.session.borrow_mut().disconnect(reason::BY_APPLICATION);
            }
            Wake::Drained => {
                ctx.record(ConnEvent::Drained);
                t.session.borrow_mut().disconnect(reason::BY_APPLICATION);
            }
            Wake::Request(None) => requests = None,
            Wake::Request(Some(req)) => open_for(t, req, now),
        }
        let state = t.session.borrow().state();
        if state != State::Forwarding && state != State::Closed && auth_clock.is_expired(now) {
            bump(&shared.stats.auth_timeouts);
            ctx.record(ConnEvent::TimeoutStage);
            debug!(message = "CIRA tunnel not forwarding in time.", %peer);
            t.session
                .borrow_mut()
                .disconnect(reason::CONNECTION_TIMED_OUT);
        } else if deadline.is_some_and(|d| d <= now) {
            t.session.borrow_mut().handle_timeout(now);
        }
    }
}

/// The tunnel is up: registry, counters, log, audit, event, control plane.
fn established(
    core: &CiraCore,
    g: Guid,
    ports: Vec<u32>,
    peer: SocketAddr,
    requests: rampart_rt::channel::Sender<ChannelRequest>,
) -> Arc<Live> {
    let shared = &core.shared;
    let (l, old) = shared.registry.register(g, core.core, requests);
    if let Some(old) = &old {
        bump(&shared.stats.replaced);
        info!(
            message = "CIRA tunnel replaced by a newer one.",
            guid = %g,
            old_tunnel = old.id,
            old_core = old.core,
            old_age_ms = unix_ms().saturating_sub(old.since_ms),
            old_last_seen_ms = old.last_seen_ms.load(Ordering::Relaxed),
        );
    }
    shared.stats.tunnels.fetch_add(1, Ordering::Relaxed);
    bump(&shared.stats.established);
    info!(message = "CIRA tunnel established.", guid = %g, %peer, tunnel = l.id, core = core.core, ports = ?ports);
    audit::record(
        "cira.connect",
        &g.to_string(),
        &g.to_string(),
        "allowed",
        Some(peer.ip()),
        &format!("ports {ports:?}"),
    );
    publish_event(
        core,
        "success",
        "CIRA Connection Established",
        "CIRA_Connected",
        &g,
    );
    if let Some(link) = &core.link {
        link.device_event(g.to_string(), true, l.since_ms, l.since_ms);
    }
    l
}

/// A channel request reached the tunnel's core: open the APF channel and start its task.
fn open_for(t: &Rc<Tunnel>, req: ChannelRequest, now: Instant) {
    let opened = t.session.borrow_mut().open_channel(req.port, now);
    match opened {
        Ok(id) => {
            let ch = Rc::new(ChanState::new(id));
            t.channels.borrow_mut().insert(id, ch.clone());
            compio::runtime::spawn(channel::run(t.clone(), ch, req.sock)).detach();
        }
        Err(e) => {
            bump(&t.shared.stats.channel_refusals);
            channel::refuse(&req.sock, channel::error_code(&e), e.reason());
        }
    }
}

/// PROTOCOLVERSION arrived: the allowlist, before any credential.
fn admit_version(
    core: &CiraCore,
    session: &mut ServerSession,
    guid: Guid,
    peer: SocketAddr,
    now: Instant,
) {
    let shared = &core.shared;
    let Some(policy) = shared.policy.current() else {
        session.reject(reason::TEMPORARILY_UNAVAILABLE);
        return;
    };
    let limit = policy.limits().max_auth_failures_per_minute;
    if !core.throttle.borrow_mut().allowed(peer.ip(), limit, now) {
        bump(&shared.stats.throttled);
        deny(guid, peer, "throttled");
        session.reject(reason::TEMPORARILY_UNAVAILABLE);
        return;
    }
    if policy.device(&guid.0).is_none() {
        bump(&shared.stats.unknown_guid);
        core.throttle.borrow_mut().failed(peer.ip(), now);
        deny(guid, peer, "unknown_guid");
        session.reject(reason::HOST_NOT_ALLOWED_TO_CONNECT);
        return;
    }
    session.accept_device(now);
}

/// USERAUTH_REQUEST with a password: the device's own credentials.
fn check_credentials(
    core: &CiraCore,
    session: &mut ServerSession,
    guid: Guid,
    username: &str,
    password: &[u8],
    peer: SocketAddr,
    now: Instant,
) {
    let shared = &core.shared;
    let decision = shared
        .policy
        .current()
        .map(|p| p.verify_device(&guid.0, username, password));
    match decision {
        Some(DeviceDecision::Allowed) => session.auth_result(true, now),
        other => {
            let why = match other {
                Some(DeviceDecision::NotAllowlisted) => "unknown_guid",
                Some(DeviceDecision::NoCredential) => "no_credential",
                None => "no_policy",
                _ => "bad_credentials",
            };
            bump(&shared.stats.bad_credentials);
            core.throttle.borrow_mut().failed(peer.ip(), now);
            deny(guid, peer, why);
            session.auth_result(false, now);
        }
    }
}

/// Audits and logs a refused device (rate-limited log).
fn deny(guid: Guid, peer: SocketAddr, why: &'static str) {
    let g = guid.to_string();
    audit::record("cira.connect", &g, &g, "denied", Some(peer.ip()), why);
    if let Some(suppressed) = audit::allow() {
        info!(target: "rampart::audit", event = "cira_connect_denied", guid = %g, %peer, reason = why, suppressed);
    }
}

/// MPS's event on `mps/events`: `{"type","message","methods":[..],"guid","timestamp"}`.
fn publish_event(core: &CiraCore, kind: &str, message: &str, method: &str, guid: &Guid) {
    if !core.shared.cfg.events {
        return;
    }
    let Some(mqtt) = &core.mqtt else { return };
    let payload = serde_json::json!({
        "type": kind,
        "message": message,
        "methods": [method],
        "guid": guid.to_string(),
        "timestamp": unix_ms(),
    })
    .to_string();
    if let Ok(topic) = TopicName::new(EVENTS_TOPIC.to_string()) {
        mqtt.broker
            .borrow_mut()
            .publish_internal(topic, Bytes::from(payload), Instant::now());
    }
}
