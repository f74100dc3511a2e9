//! Start-up, the per-core main loop, signals and drain.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use compio::net::TcpListener;
use futures_util::future::{Either, select};
use rampart_rt::drain::Drain;
use rampart_rt::{CoreCtx, CoreFuture, Cores, Driver, DriverChoice};
use rampart_tls::{IoLimits, ReloadableCert, TlsError};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use tracing::{error, info, warn};

use crate::config::{DataplaneConfig, ListenerConfig, Protocol};
use crate::conn::{self, ConnCtx};
use crate::link;
use crate::metrics::{Counters, Event, LogLimiter};
use crate::mqtt::broker::{Broker, BrokerMsg};
use crate::mqtt::conn::MqttCore;
use crate::mqtt::stats::BrokerStats;
use crate::mqtt::{self, BrokerConfig};
use crate::policy::PolicyHandle;

/// Why the data plane could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A listener's certificate or key could not be loaded.
    #[error("{protocol} listener: {source}")]
    Tls {
        /// The listener.
        protocol: &'static str,
        /// What failed.
        source: TlsError,
    },
    /// A listening socket could not be opened.
    #[error("cannot listen on {addr} ({protocol}): {source}")]
    Bind {
        /// The listener.
        protocol: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The system error.
        source: io::Error,
    },
    /// The runtime could not start (e.g. io_uring forced where it is blocked).
    #[error(transparent)]
    Runtime(#[from] rampart_rt::RtError),
    /// The broker's state directory could not be prepared.
    #[error("broker state directory {path}: {source}")]
    Persist {
        /// The directory.
        path: std::path::PathBuf,
        /// The system error.
        source: io::Error,
    },
    /// The external auth backend could not be set up.
    #[error("external auth backend: {0}")]
    ExternalAuth(String),
    /// The HTTPS front could not be set up (web root, access log).
    #[error("HTTPS front: {0}")]
    Front(io::Error),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(io::Error),
    /// A local socket could not be set up.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The system error.
        source: io::Error,
    },
}

/// How often each core runs its broker's timers (delayed wills, session expiry, policy
/// re-checks): a revoked account is disconnected within this plus the link's latency.
const TICK: Duration = Duration::from_millis(250);

/// A core's share of the persisted broker state: retained messages and its sessions.
type Restore = (
    Vec<mqtt::persist::StoredMessage>,
    Vec<mqtt::persist::StoredSession>,
);

/// Messages to a core.
#[derive(Debug)]
enum CoreMsg {
    /// This core's sockets: (listener index, socket), and its broker's inbox.
    Start(
        Vec<(usize, std::net::TcpListener)>,
        Option<rampart_rt::channel::Receiver<BrokerMsg>>,
        Option<Restore>,
    ),
    /// Stop accepting, close connections, return within the drain timeout.
    Drain,
}

/// A started data plane.
#[derive(Debug)]
struct Running {
    cores: Cores<CoreMsg>,
    certs: Vec<(&'static str, Arc<ReloadableCert>)>,
    counters: Arc<Counters>,
    broker_stats: BrokerStats,
}

impl Running {
    /// Waits for every core to finish its drain.
    fn wait(self) {
        let panicked = self.cores.join();
        if panicked > 0 {
            error!(message = "Cores panicked.", count = panicked);
        }
        let broker = self
            .broker_stats
            .totals()
            .counters()
            .into_iter()
            .filter(|(_, v)| *v > 0)
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ");
        info!(
            message = "Data plane stopped.",
            counters = self.counters.summary(),
            broker
        );
    }
}

fn reload_certs(certs: &[(&'static str, Arc<ReloadableCert>)]) -> usize {
    let mut failed = 0;
    for (protocol, cert) in certs {
        match cert.reload() {
            Ok(()) => info!(message = "Certificate reloaded.", protocol),
            Err(error) => {
                failed += 1;
                error!(message = "Certificate reload failed; keeping the current one.", protocol, %error);
            }
        }
    }
    failed
}

/// Runs the data plane until SIGTERM or SIGINT, then drains. SIGHUP reloads certificates.
pub fn run(config: DataplaneConfig) -> Result<(), Error> {
    let mut signals =
        signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP]).map_err(Error::Signals)?;
    let handle = signals.handle();
    let running = start(config)?;
    let certs = running.certs.clone();
    let mailboxes = running.cores.mailboxes().to_vec();
    std::thread::Builder::new()
        .name("rampart-signals".into())
        .spawn(move || {
            let mut draining = false;
            for sig in signals.forever() {
                match sig {
                    SIGHUP => {
                        reload_certs(&certs);
                    }
                    SIGINT if draining => {
                        // A second Ctrl-C means "now". A repeated SIGTERM (systemd, the
                        // supervisor) must not cut the drain short.
                        warn!(message = "Second interrupt; exiting without waiting.");
                        std::process::exit(1);
                    }
                    _ if draining => {
                        info!(message = "Already draining.", signal = sig);
                    }
                    _ => {
                        info!(message = "Draining.", signal = sig);
                        draining = true;
                        for tx in &mailboxes {
                            let _ = tx.try_send(CoreMsg::Drain);
                        }
                    }
                }
            }
        })
        .map_err(Error::Signals)?;
    running.wait();
    handle.close();
    Ok(())
}

/// Loads certificates, opens every socket, starts the cores. Fails before serving anything if
/// any part cannot start.
fn start(config: DataplaneConfig) -> Result<Running, Error> {
    let counters = Arc::new(Counters::default());
    let mut certs = Vec::new();
    let mut listener_certs = Vec::new();
    for l in &config.listeners {
        if l.plaintext {
            listener_certs.push(None);
            continue;
        }
        let cert = ReloadableCert::load(l.cert.clone()).map_err(|source| Error::Tls {
            protocol: l.protocol.as_str(),
            source,
        })?;
        let cert = Arc::new(cert);
        certs.push((l.protocol.as_str(), cert.clone()));
        listener_certs.push(Some(cert));
    }

    // One SO_REUSEPORT socket per core, listener and address, opened here so that a port in
    // use is a start-up error with the address in it.
    let n = config.rt.cores.get();
    let mut sockets: Vec<Vec<(usize, std::net::TcpListener)>> =
        (0..n).map(|_| Vec::new()).collect();
    for (idx, l) in config.listeners.iter().enumerate() {
        for &addr in &l.addrs {
            for core in sockets.iter_mut() {
                let s = rampart_rt::listener::reuseport(addr, config.listen_backlog).map_err(
                    |source| Error::Bind {
                        protocol: l.protocol.as_str(),
                        addr,
                        source,
                    },
                )?;
                core.push((idx, s));
            }
        }
    }

    // Filled by the control link thread; read by the cores.
    let policy = PolicyHandle::new();
    let broker_stats = BrokerStats::new(n);
    // One inbox per core for messages between the brokers of two cores.
    // The broker runs wherever MQTT can arrive: its own port or WebSocket on the HTTPS front.
    let has_mqtt = config.listeners.iter().any(|l| {
        matches!(
            l.protocol,
            Protocol::Mqtt | Protocol::Https | Protocol::Cira
        )
    });
    let (broker_tx, mut broker_rx): (Vec<_>, Vec<_>) = (0..n)
        .map(|_| {
            let (tx, rx) = rampart_rt::channel::bounded(config.broker.cross_core_queue);
            (tx, Some(rx))
        })
        .unzip();
    let persist = match (&config.broker.persist_dir, has_mqtt) {
        (Some(dir), true) => {
            Some(
                mqtt::persist::Writer::start(dir).map_err(|source| Error::Persist {
                    path: dir.clone(),
                    source,
                })?,
            )
        }
        _ => None,
    };
    // Every core's share of the persisted state, read before any core starts (and so before
    // any rewrites its file).
    let mut restored = match (&config.broker.persist_dir, &persist) {
        (Some(dir), Some(_)) => Some(mqtt::persist::Restored::load(dir, n)),
        _ => None,
    };
    let ext_auth = match (&config.broker.external_auth, has_mqtt) {
        (Some(cfg), true) => {
            Some(mqtt::extauth::ExtAuth::start(cfg.clone()).map_err(Error::ExternalAuth)?)
        }
        _ => None,
    };
    let cira = config
        .listeners
        .iter()
        .any(|l| l.protocol == Protocol::Cira)
        .then(|| {
            Arc::new(crate::cira::CiraShared {
                cfg: config.cira.clone(),
                registry: crate::cira::registry::Registry::default(),
                stats: crate::cira::CiraStats::default(),
                policy: policy.clone(),
            })
        });
    if let (Some(c), Some(path)) = (&cira, &config.channel_socket) {
        crate::cira::channel::spawn(path.clone(), c.clone()).map_err(|source| Error::Io {
            context: format!("channel service {}", path.display()),
            source,
        })?;
    }
    // The link before the cores: their brokers and CIRA servers take its handle (human logins,
    // audit records, device events); it reads the CIRA registry for the control plane.
    let link = config
        .control_socket
        .clone()
        .map(|path| link::spawn(path, policy.clone(), link_hooks(cira.clone())));
    let front = if config
        .listeners
        .iter()
        .any(|l| l.protocol == Protocol::Https)
    {
        Some(
            crate::front::FrontShared::new(
                config.front.clone(),
                policy.clone(),
                link.clone(),
                cira.clone(),
            )
            .map_err(Error::Front)?,
        )
    } else {
        None
    };
    let front_stats = front.clone();
    let cira_metrics = cira.clone();
    let shared = Arc::new(Shared {
        cira,
        front,
        link,
        ext_auth,
        persist,
        policy: policy.clone(),
        listeners: config.listeners.clone(),
        certs: listener_certs,
        broker: config.broker.clone(),
        broker_stats: broker_stats.clone(),
        broker_budget: Arc::new(AtomicUsize::new(0)),
        broker_interest: (0..broker_tx.len()).map(|_| AtomicUsize::new(0)).collect(),
        broker_tx: if has_mqtt { broker_tx } else { Vec::new() },
        counters: counters.clone(),
        max_connections: config.max_connections_per_core,
        drain_timeout: config.drain_timeout,
    });
    let metrics_inboxes = shared.broker_tx.clone();
    let metrics_budget = shared.broker_budget.clone();
    let main = Arc::new(move |ctx: CoreCtx<CoreMsg>| -> CoreFuture {
        Box::pin(core_main(ctx, shared.clone()))
    });
    let cores = rampart_rt::start(&config.rt, main)?;
    for (core, (tx, socks)) in cores.mailboxes().iter().zip(sockets).enumerate() {
        let rx = if has_mqtt {
            broker_rx[core].take()
        } else {
            None
        };
        let state = restored.as_mut().map(|r| r.take(core));
        if tx.try_send(CoreMsg::Start(socks, rx, state)).is_err() {
            error!(message = "Core did not take its sockets.", core);
        }
    }

    let drivers = cores.drivers();
    let driver = drivers.first().copied().unwrap_or(Driver::Poll);
    let hint = (config.rt.driver == DriverChoice::Auto && driver == Driver::Poll)
        .then(rampart_rt::io_uring_hint)
        .flatten()
        .unwrap_or_default();
    info!(
        message = "Data plane started.",
        cores = n,
        driver = driver.as_str(),
        driver_setting = config.rt.driver.as_str(),
        io_uring_hint = hint,
        listeners = listener_summary(&config.listeners)
    );
    if let Some(addr) = config.metrics_listen {
        let sources = crate::prometheus::Sources {
            counters: counters.clone(),
            broker: broker_stats.clone(),
            inboxes: metrics_inboxes,
            queued_bytes: metrics_budget,
            front: front_stats,
            cira: cira_metrics,
        };
        crate::prometheus::spawn(addr, sources).map_err(|source| Error::Bind {
            protocol: "metrics",
            addr,
            source,
        })?;
    }

    Ok(Running {
        cores,
        certs,
        counters,
        broker_stats,
    })
}

/// What the control link reads from and does to the CIRA registry (nothing without a CIRA
/// listener), and the name it reports devices under: this machine's host name.
fn link_hooks(cira: Option<Arc<crate::cira::CiraShared>>) -> link::LinkHooks {
    let Some(cira) = cira else {
        return link::LinkHooks {
            node: node_name(),
            ..link::LinkHooks::default()
        };
    };
    let listed = cira.clone();
    link::LinkHooks {
        devices: Arc::new(move || {
            listed
                .registry
                .snapshot()
                .into_iter()
                .map(|(g, since, seen)| (g.to_string(), since, seen))
                .collect()
        }),
        kick: Arc::new(move |guid| {
            let held = guid
                .parse::<rampart_apf_proto::Guid>()
                .is_ok_and(|g| cira.registry.kick(&g));
            info!(message = "CIRA device kick.", guid, held);
        }),
        node: node_name(),
    }
}

/// The host name (`/proc/sys/kernel/hostname`), or [`link::DEFAULT_NODE`] if it cannot be read
/// or is not a valid node name.
fn node_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| rampart_policy::link::valid_node(h))
        .unwrap_or_else(|| link::DEFAULT_NODE.to_owned())
}

fn listener_summary(listeners: &[ListenerConfig]) -> String {
    listeners
        .iter()
        .map(|l| {
            let addrs: Vec<String> = l.addrs.iter().map(ToString::to_string).collect();
            format!("{}@{} [{}]", l.protocol.as_str(), addrs.join(","), l.stages)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What every core shares, read-only.
struct Shared {
    /// The CIRA server's shared state, when it listens.
    cira: Option<Arc<crate::cira::CiraShared>>,
    /// The HTTPS front's shared state, when it listens.
    front: Option<Arc<crate::front::FrontShared>>,
    /// The policy in force (accounts, ACLs, API keys, devices).
    policy: PolicyHandle,
    listeners: Vec<ListenerConfig>,
    /// Per listener; None for plaintext ones.
    certs: Vec<Option<Arc<ReloadableCert>>>,
    broker: BrokerConfig,
    broker_stats: BrokerStats,
    /// Bytes queued to MQTT clients on every core.
    broker_budget: Arc<AtomicUsize>,
    /// Subscriptions indexed on each core (see `Broker::route`).
    broker_interest: Arc<[AtomicUsize]>,
    /// The control link, when running under the control plane.
    link: Option<link::LinkHandle>,
    /// The external auth backend, if configured.
    ext_auth: Option<Arc<mqtt::extauth::ExtAuth>>,
    /// The broker's state writer, if persistence is on.
    persist: Option<Arc<mqtt::persist::Writer>>,
    /// Every core's broker inbox (empty without an MQTT listener).
    broker_tx: Vec<rampart_rt::channel::Sender<BrokerMsg>>,
    counters: Arc<Counters>,
    max_connections: usize,
    drain_timeout: Duration,
}

async fn core_main(ctx: CoreCtx<CoreMsg>, shared: Arc<Shared>) {
    let CoreCtx {
        id,
        driver,
        cpu,
        mut mailbox,
        ..
    } = ctx;
    info!(message = "Core started.", core = id, driver = driver.as_str(), cpu = ?cpu);
    let (sockets, broker_rx, state) = match mailbox.recv().await {
        Some(CoreMsg::Start(s, rx, state)) => (s, rx, state),
        _ => return,
    };
    let drain = Drain::new();
    let log = Rc::new(LogLimiter::new(20, Duration::from_secs(1)));
    let mqtt = broker_rx.map(|rx| start_broker(id, &shared, rx, state, &drain));
    let front = shared.front.as_ref().map(|f| {
        Rc::new(crate::front::FrontCore {
            shared: f.clone(),
            idle: Rc::default(),
            mqtt: mqtt.clone(),
            body_stage: shared
                .listeners
                .iter()
                .find(|l| l.protocol == Protocol::Https)
                .map_or(f.cfg.send_timeout, |l| l.stage("body")),
            upstreams: std::cell::Cell::new(0),
        })
    });
    let cira = shared.cira.as_ref().map(|c| {
        Rc::new(crate::cira::CiraCore {
            shared: c.clone(),
            core: id,
            throttle: RefCell::default(),
            mqtt: mqtt.clone(),
            link: shared.link.clone(),
        })
    });
    let mut conn_ctxs = Vec::with_capacity(shared.listeners.len());
    for (idx, (l, cert)) in shared.listeners.iter().zip(&shared.certs).enumerate() {
        let tls = match cert {
            Some(cert) => match rampart_tls::server_config(cert.clone(), l.protocol.alpn()) {
                Ok(c) => Some(c),
                Err(error) => {
                    error!(message = "Cannot build TLS config.", core = id, %error);
                    return;
                }
            },
            None => None,
        };
        let first = l.protocol.first_stage();
        conn_ctxs.push(Rc::new(ConnCtx {
            protocol: l.protocol,
            listener: idx,
            tls,
            mqtt: mqtt.clone().filter(|_| l.protocol == Protocol::Mqtt),
            front: front.clone().filter(|_| l.protocol == Protocol::Https),
            cira: cira.clone().filter(|_| l.protocol == Protocol::Cira),
            limits: IoLimits {
                handshake: l.stage("handshake"),
                write_stall: l.write_stall,
            },
            first_stage: (first, l.stage(first)),
            counters: shared.counters.clone(),
            log: log.clone(),
            drain: drain.clone(),
        }));
    }
    if let Some(m) = &mqtt {
        *m.listeners.borrow_mut() = conn_ctxs.clone();
    }
    for (idx, socket) in sockets {
        let listener = match TcpListener::from_std(socket) {
            Ok(l) => l,
            Err(error) => {
                error!(message = "Cannot register listener.", core = id, %error);
                return;
            }
        };
        let ctx = conn_ctxs[idx].clone();
        compio::runtime::spawn(accept_loop(listener, ctx, shared.max_connections)).detach();
    }

    while let Some(msg) = mailbox.recv().await {
        if matches!(msg, CoreMsg::Drain) {
            break;
        }
    }
    drain.start();
    let live = drain.live();
    if compio::time::timeout(shared.drain_timeout, drain.idle())
        .await
        .is_err()
    {
        warn!(
            message = "Drain timeout; closing remaining connections.",
            core = id,
            live = drain.live()
        );
    }
    if let Some(m) = &mqtt {
        // The last word on disk: what the drain left.
        m.broker.borrow_mut().persist(Instant::now(), true);
    }
    info!(
        message = "Core drained.",
        core = id,
        connections_at_drain = live
    );
}

/// Lets every other ready task of this core run once.
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}

/// Builds this core's broker and starts its inbox and ticker tasks.
fn start_broker(
    id: usize,
    shared: &Arc<Shared>,
    mut rx: rampart_rt::channel::Receiver<BrokerMsg>,
    state: Option<Restore>,
    drain: &Drain,
) -> Rc<MqttCore> {
    let cfg = Rc::new(shared.broker.clone());
    let stats = shared.broker_stats.core(id);
    let broker = Broker::new(
        id,
        cfg.clone(),
        shared.policy.clone(),
        stats.clone(),
        shared.broker_budget.clone(),
        shared.broker_tx.clone(),
        shared.broker_interest.clone(),
    );
    let core = Rc::new(MqttCore {
        broker: RefCell::new(broker),
        throttle: RefCell::default(),
        cfg,
        policy: shared.policy.clone(),
        stats,
        peers: shared.broker_tx.clone(),
        listeners: RefCell::default(),
        ext: shared.ext_auth.clone(),
        link: shared.link.clone(),
        ext_cache: RefCell::default(),
    });
    mqtt::audit::set_link(shared.link.clone());
    if let (Some(writer), Some(dir), Some(state)) =
        (&shared.persist, &shared.broker.persist_dir, state)
    {
        core.broker
            .borrow_mut()
            .restore(writer.clone(), dir.clone(), state, Instant::now());
    }
    let inbox = core.clone();
    compio::runtime::spawn(async move {
        let mut handled = 0u32;
        // The clock is read after every wait and yield, not per message: what is queued is
        // taken back to back.
        let mut now = Instant::now();
        loop {
            let msg = match rx.try_recv() {
                Some(msg) => msg,
                None => {
                    let Some(msg) = rx.recv().await else { break };
                    now = Instant::now();
                    msg
                }
            };
            let handoff = inbox.broker.borrow_mut().remote(msg, now);
            if let Some(h) = handoff {
                mqtt::conn::adopt(h, &inbox);
            }
            // A flood from other cores must not starve this core's writers and readers.
            handled += 1;
            if handled.is_multiple_of(64) {
                yield_now().await;
                now = Instant::now();
            }
        }
    })
    .detach();
    let ticker = core.clone();
    let drain = drain.clone();
    let stats = shared.broker_stats.clone();
    let sys_every = shared.broker.sys_interval;
    compio::runtime::spawn(async move {
        let started = Instant::now();
        let mut next_sys = started;
        while !drain.is_draining() {
            compio::time::sleep(TICK).await;
            let now = Instant::now();
            let mut broker = ticker.broker.borrow_mut();
            broker.tick(now);
            if id == 0 && !sys_every.is_zero() && now >= next_sys {
                mqtt::sys::publish(&mut broker, &stats, started, now);
                next_sys = now + sys_every;
            }
        }
    })
    .detach();
    core
}

async fn accept_loop(listener: TcpListener, ctx: Rc<ConnCtx>, max_connections: usize) {
    loop {
        let accepted = {
            let accept = pin!(listener.accept());
            let drained = pin!(ctx.drain.signaled());
            match select(accept, drained).await {
                Either::Left((res, _)) => res,
                Either::Right(_) => return,
            }
        };
        match accepted {
            Ok((tcp, peer)) => {
                ctx.counters.record(ctx.protocol, Event::Accepted);
                if ctx.drain.live() >= max_connections {
                    ctx.counters.record(ctx.protocol, Event::RejectedAtCap);
                    if let Some(suppressed) = ctx.log.allow(Instant::now()) {
                        warn!(message = "Connection cap reached; closing new connection.", protocol = ctx.protocol.as_str(), %peer, suppressed);
                    }
                    drop(tcp);
                    continue;
                }
                // The HTTPS front's caps, before any TLS work.
                let ticket = match &ctx.front {
                    Some(front) => match front.admit(peer) {
                        Ok(t) => Some(t),
                        Err(refusal) => {
                            ctx.counters.record(ctx.protocol, Event::RejectedAtCap);
                            if let Some(suppressed) = ctx.log.allow(Instant::now()) {
                                info!(message = "HTTPS connection refused.", reason = refusal.as_str(), %peer, suppressed);
                            }
                            drop(tcp);
                            continue;
                        }
                    },
                    None => None,
                };
                let tracked = ctx.drain.track();
                let ctx = ctx.clone();
                compio::runtime::spawn(async move {
                    let _tracked = tracked;
                    conn::serve(tcp, peer, ctx, ticket).await;
                })
                .detach();
            }
            Err(error) => {
                if let Some(suppressed) = ctx.log.allow(Instant::now()) {
                    warn!(message = "Accept failed.", protocol = ctx.protocol.as_str(), %error, suppressed);
                }
                // Out of descriptors or memory: back off instead of spinning.
                compio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
