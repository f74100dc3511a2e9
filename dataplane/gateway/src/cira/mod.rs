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

pub(crate) mod registry;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::future::{Either, select};
use rampart_apf_proto::{CloseReason, Event, Guid, ServerSession, SessionConfig, State, reason};
use rampart_deadline::{StageClock, StageLimit, Timeout};
use rampart_mqtt_proto::TopicName;
use rampart_policy::snapshot::DeviceDecision;
use rampart_tls::{ConnError, TlsStream};
use tracing::{debug, info};

use crate::conn::ConnCtx;
use crate::link::LinkHandle;
use crate::metrics::Event as ConnEvent;
use crate::mqtt::audit;
use crate::mqtt::conn::MqttCore;
use crate::mqtt::throttle::Throttle;
use crate::policy::PolicyHandle;
use registry::{Live, Registry, unix_ms};

/// How long a closing tunnel gets to send its DISCONNECT and close_notify.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
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
}

impl CiraStats {
    /// `(name, value)` of every counter.
    pub(crate) fn counters(&self) -> [(&'static str, u64); 9] {
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

/// Why the wait ended.
enum Wake {
    Read(Result<usize, ConnError>),
    Killed,
    Drained,
}

/// Serves one tunnel after its TLS handshake.
pub(crate) async fn serve(
    mut stream: TlsStream,
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
    let mut session = ServerSession::new(session_cfg, start);
    // The auth stage bounds everything before forwarding: version, credentials, services.
    let auth_clock = StageClock::start(ctx.first_stage.1, start);
    let mut live: Option<(Guid, Arc<Live>)> = None;
    let mut out = BytesMut::new();
    let mut buf = Vec::with_capacity(4096);
    let mut ended: Option<CloseReason> = None;
    'conn: loop {
        let now = Instant::now();
        while let Some(ev) = session.poll_event() {
            match ev {
                Event::Version { guid: g, .. } => {
                    admit_version(&core, &mut session, g, peer, now);
                }
                Event::Auth { username, password } => {
                    // The session raises Auth only after Version, so it knows the GUID.
                    let g = session.guid().unwrap_or(Guid([0; 16]));
                    check_credentials(&core, &mut session, g, &username, &password, peer, now);
                }
                Event::Established { ports } => {
                    let g = session.guid().unwrap_or(Guid([0; 16]));
                    let (l, old) = shared.registry.register(g, core.core);
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
                        &core,
                        "success",
                        "CIRA Connection Established",
                        "CIRA_Connected",
                        &g,
                    );
                    if let Some(link) = &core.link {
                        link.device_event(g.to_string(), true, l.since_ms, l.since_ms);
                    }
                    live = Some((g, l));
                }
                Event::Closed { reason } => {
                    ended = Some(reason);
                }
                // No channel user yet; the session keeps the bookkeeping.
                _ => {}
            }
        }
        if session.poll_transmit(&mut out) > 0 {
            let data = out.split().freeze();
            if let Err(e) = write(&mut stream, &data, ctx.limits.write_stall).await {
                ctx.close_with(peer, &e);
                break 'conn;
            }
        }
        if ended.is_some() || session.state() == State::Closed {
            stream.shutdown(CLOSE_GRACE).await;
            break 'conn;
        }
        // Wait for bytes, the session's timer, the pre-forwarding deadline, a replacement or a
        // drain.
        let forwarding = session.state() == State::Forwarding;
        let deadline = match (forwarding, session.poll_timeout(), auth_clock.deadline()) {
            (false, Some(t), Some(a)) => Some(t.min(a)),
            (false, None, a) => a,
            (_, t, _) => t,
        };
        let now = Instant::now();
        let limit = deadline.map_or(StageLimit::DISABLED, |d| {
            StageLimit::fixed(d.saturating_duration_since(now))
        });
        let mut clock = StageClock::start(limit, now);
        buf.clear();
        let wake = {
            let read = pin!(stream.read(&mut buf, &mut clock, Timeout::Stage("auth")));
            let drained = pin!(ctx.drain.signaled());
            let killed = pin!(async {
                match &live {
                    Some((_, l)) => l.killed().await,
                    None => std::future::pending().await,
                }
            });
            let stop = pin!(select(killed, drained));
            match select(read, stop).await {
                Either::Left((r, _)) => Wake::Read(r),
                Either::Right((Either::Left(_), _)) => Wake::Killed,
                Either::Right((Either::Right(_), _)) => Wake::Drained,
            }
        };
        let now = Instant::now();
        match wake {
            Wake::Read(Ok(0)) => {
                ctx.record(ConnEvent::PeerClosed);
                break 'conn;
            }
            Wake::Read(Ok(_)) => {
                session.handle_input(&buf, now);
                if let Some((_, l)) = &live {
                    l.seen(unix_ms());
                }
            }
            Wake::Read(Err(ConnError::Timeout(Timeout::Stage(_)))) => {
                if !forwarding && auth_clock.is_expired(now) {
                    bump(&shared.stats.auth_timeouts);
                    ctx.record(ConnEvent::TimeoutStage);
                    debug!(message = "CIRA tunnel not forwarding in time.", %peer);
                    session.disconnect(reason::CONNECTION_TIMED_OUT);
                } else {
                    session.handle_timeout(now);
                }
            }
            Wake::Read(Err(e)) => {
                ctx.close_with(peer, &e);
                break 'conn;
            }
            Wake::Killed => {
                // A newer tunnel of this GUID took over, or the control plane kicked it.
                session.disconnect(reason::BY_APPLICATION);
            }
            Wake::Drained => {
                ctx.record(ConnEvent::Drained);
                session.disconnect(reason::BY_APPLICATION);
            }
        }
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

/// Writes `data` under the write-stall limit.
async fn write(stream: &mut TlsStream, data: &Bytes, stall: Duration) -> Result<(), ConnError> {
    compio::time::timeout(stall, stream.write_all(data))
        .await
        .map_err(|_| ConnError::Timeout(Timeout::WriteStall))?
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
