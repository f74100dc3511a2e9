//! One MQTT connection: CONNECT under its deadline, authentication, the move to the client
//! id's home core, then a reader and a writer side by side until either ends.

use std::cell::RefCell;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use compio::io::{AsyncWrite, AsyncWriteExt};
use compio::net::TcpStream;
use futures_util::future::{Either, select};
use rampart_deadline::{StageClock, StageLimit, Timeout};
use rampart_mqtt_proto::{
    Connack, Connect, DecodeCtx, DecodeError, Disconnect, Packet, Properties, Version, decode,
    reason,
};
use rampart_policy::snapshot::{AuthDecision, DenyReason};
use rampart_rt::channel::Sender;
use rampart_tls::{ConnError, ReadSize, TlsParts, TlsStream};
use tracing::{debug, info};

use super::BrokerConfig;
use super::audit;
use super::broker::{Broker, BrokerMsg, Frame, Login, Outbox, OutboxRef, home_core};
use super::extauth::{self, ACC_SUBSCRIBE, ACC_WRITE, ExtAuth};
use super::stats::{CoreStats, bump};
use super::throttle::Throttle;
use super::transport::{MAX_PLAIN_READ, Reader, Writer, WsIn, read_plain};
use crate::conn::{ConnCtx, Session};
use crate::link::{LinkHandle, PasswordVerdict};
use crate::metrics::Event;
use crate::policy::PolicyHandle;

/// How long a human login waits for the control plane's answer (Argon2 takes tens of ms).
const HUMAN_LOGIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a connection closed for a protocol error keeps reading (and discarding).
const LINGER: Duration = Duration::from_secs(2);
/// A lingering connection whose client sends nothing for this long is closed.
const LINGER_IDLE: Duration = Duration::from_millis(200);

/// How long a closing connection gets to flush its last packets.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Frames taken from the outbox per flush.
const BATCH_FRAMES: usize = 1024;
/// Bytes taken from the outbox per flush (beyond the first frame).
const BATCH_BYTES: usize = 256 * 1024;

/// One core's broker and what its connections share.
#[derive(Debug)]
pub(crate) struct MqttCore {
    pub(crate) broker: RefCell<Broker>,
    pub(crate) throttle: RefCell<Throttle>,
    pub(crate) cfg: Rc<BrokerConfig>,
    pub(crate) policy: PolicyHandle,
    pub(crate) stats: Arc<CoreStats>,
    pub(crate) peers: Vec<Sender<BrokerMsg>>,
    /// This core's contexts by listener index, for connections handed over from other cores.
    pub(crate) listeners: RefCell<Vec<Rc<ConnCtx>>>,
    /// The external auth backend, if configured.
    pub(crate) ext: Option<Arc<ExtAuth>>,
    /// The control link (human password checks), when running under the control plane.
    pub(crate) link: Option<LinkHandle>,
    /// This core's cache of its answers.
    pub(crate) ext_cache: RefCell<extauth::Cache>,
}

/// A connection on its way to its client id's home core. Everything in it is `Send`.
#[derive(Debug)]
pub(crate) struct Handoff {
    fd: std::net::TcpStream,
    tls: Option<TlsParts>,
    /// MQTT over WebSocket: the framing state.
    ws: Option<Box<WsIn>>,
    peer: SocketAddr,
    listener: usize,
    connect: Box<Connect>,
    leftover: BytesMut,
    login: Login,
}

/// The socket, before the connection is split into halves.
#[derive(Debug)]
pub(crate) enum Io {
    Tls(Box<TlsStream>),
    Plain(TcpStream),
    /// MQTT over WebSocket, upgraded by the HTTPS front.
    Ws(Box<TlsStream>, Box<WsIn>),
}

impl Io {
    async fn read(
        &mut self,
        dst: &mut BytesMut,
        clock: &mut StageClock,
    ) -> Result<usize, ConnError> {
        let stage = Timeout::Stage("connect");
        match self {
            Self::Tls(s) => {
                let mut v = Vec::new();
                let n = s.read(&mut v, clock, stage).await?;
                dst.extend_from_slice(&v);
                Ok(n)
            }
            Self::Plain(tcp) => {
                let mut size = ReadSize::new(MAX_PLAIN_READ);
                let n = read_plain(tcp, dst, clock.deadline(), stage, &mut size).await?;
                clock.on_bytes(n);
                Ok(n)
            }
            Self::Ws(s, ws) => ws.read(s, dst, clock, stage).await,
        }
    }

    async fn write_all(&mut self, data: Vec<u8>) -> Result<(), ConnError> {
        match self {
            Self::Tls(s) => s.write_all(&data).await,
            Self::Ws(s, _) => {
                let mut b = BytesMut::new();
                rampart_ws_proto::encode_header(
                    &mut b,
                    rampart_ws_proto::OpCode::Binary,
                    true,
                    data.len() as u64,
                );
                b.extend_from_slice(&data);
                s.write_all(&b).await
            }
            Self::Plain(tcp) => {
                let fut = tcp.write_all(data);
                let compio::BufResult(res, _) = compio::time::timeout(CLOSE_GRACE, fut)
                    .await
                    .map_err(|_| ConnError::Timeout(Timeout::WriteStall))?;
                Ok(res?)
            }
        }
    }

    async fn close(self) {
        match self {
            Self::Tls(s) => (*s).shutdown(CLOSE_GRACE).await,
            Self::Ws(mut s, ws) => {
                let mut b = BytesMut::new();
                rampart_ws_proto::encode_close(&mut b, ws.close.unwrap_or(1000), "");
                let _ = compio::time::timeout(CLOSE_GRACE, s.write_all(&b)).await;
                (*s).shutdown(CLOSE_GRACE).await;
            }
            Self::Plain(mut tcp) => {
                let _ = compio::time::timeout(CLOSE_GRACE, tcp.shutdown()).await;
            }
        }
    }

    /// The connection again, on the core it was handed to.
    fn rebuild(tcp: TcpStream, tls: Option<TlsParts>, ws: Option<Box<WsIn>>) -> Self {
        match (tls, ws) {
            (Some(parts), Some(ws)) => Self::Ws(Box::new(TlsStream::from_parts(tcp, parts)), ws),
            (Some(parts), None) => Self::Tls(Box::new(TlsStream::from_parts(tcp, parts))),
            (None, _) => Self::Plain(tcp),
        }
    }

    fn split(self, write_stall: Duration) -> (Reader, Writer) {
        match self {
            Self::Tls(s) => {
                let (r, w) = (*s).into_duplex();
                (Reader::Tls(r), Writer::Tls(w))
            }
            Self::Ws(s, ws) => {
                let (r, w) = (*s).into_duplex();
                let ctl = std::rc::Rc::default();
                (Reader::Ws(r, ws, Rc::clone(&ctl)), Writer::Ws(w, ctl))
            }
            Self::Plain(tcp) => {
                let (r, w) = tcp.into_split();
                (
                    Reader::Plain(r, ReadSize::new(MAX_PLAIN_READ)),
                    Writer::plain(w, write_stall),
                )
            }
        }
    }
}

/// Serves a new connection from its first byte after the TLS handshake (or the WebSocket
/// upgrade); `connect` bounds the wait for CONNECT.
#[must_use = "the session stage is returned, to be run by the caller"]
pub(crate) async fn serve(
    io: Io,
    peer: SocketAddr,
    ctx: Rc<ConnCtx>,
    core: Rc<MqttCore>,
    connect: StageLimit,
) -> Option<Session> {
    // The CONNECT and its authentication are a boxed future of their own, and the session
    // the next stage: a quiet connection holds only `run`.
    let admitted = Box::pin(admit(io, peer, &ctx, &core, connect)).await;
    let (io, connect, buf, login) = admitted?;
    let home = home_core(&login.client_id, core.peers.len());
    let me = core.broker.borrow().core();
    if home != me {
        Box::pin(hand_off(io, peer, &ctx, &core, home, connect, buf, login)).await;
        return None;
    }
    Some(Session::last(run(Box::new(Admitted {
        io,
        peer,
        ctx,
        core,
        connect,
        buf,
        login,
    }))))
}

/// Reads the CONNECT and authenticates it: the connection with what `run` needs, or `None`
/// once it has been refused and closed.
async fn admit(
    mut io: Io,
    peer: SocketAddr,
    ctx: &ConnCtx,
    core: &MqttCore,
    connect: StageLimit,
) -> Option<(Io, Box<Connect>, BytesMut, Login)> {
    let mut clock = StageClock::start(connect, Instant::now());
    let mut buf = BytesMut::new();
    let dctx = DecodeCtx {
        version: None,
        max_packet_size: core.cfg.max_packet_size,
    };
    let connect = loop {
        match decode(&mut buf, dctx) {
            Ok(Some(Packet::Connect(c))) => break c,
            Ok(Some(_)) => {
                bump(&core.stats.protocol_errors, 1);
                io.close().await;
                return None;
            }
            Ok(None) => {}
            Err(e) => {
                bump(&core.stats.protocol_errors, 1);
                debug!(message = "Bad CONNECT.", %peer, error = %e);
                if let DecodeError::UnsupportedProtocol { .. } = e {
                    // MQTT 3.1.1 §3.1.2.2: answer with return code 1 in the 3.1.1 format.
                    refuse(&mut io, Version::V311, reason::UNSUPPORTED_PROTOCOL_VERSION).await;
                }
                io.close().await;
                return None;
            }
        }
        let read = unless_drained(ctx, pin!(io.read(&mut buf, &mut clock))).await;
        match read {
            None => {
                ctx.record(Event::Drained);
                io.close().await;
                return None;
            }
            Some(Ok(0)) => {
                ctx.record(Event::PeerClosed);
                io.close().await;
                return None;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                ctx.close_with(peer, &e);
                // After a read timeout the stream is intact; after a WebSocket protocol error
                // the peer gets its Close frame with the reason code.
                let ws_error = matches!(&io, Io::Ws(_, ws) if ws.close.is_some());
                if ws_error || matches!(e, ConnError::Timeout(t) if t != Timeout::WriteStall) {
                    io.close().await;
                }
                return None;
            }
        }
    };
    let v = connect.version;

    // Authentication: no anonymous access; the cheapest refusals first.
    let now = Instant::now();
    let client_id_for_log = connect.client_id.clone();
    let Some(username) = connect.username.clone() else {
        bump(&core.stats.auth_failures, 1);
        audit::denied_login("", &client_id_for_log, peer, "anonymous", true);
        refuse(&mut io, v, reason::NOT_AUTHORIZED).await;
        io.close().await;
        return None;
    };
    let Some(policy) = core.policy.current() else {
        refuse(&mut io, v, reason::SERVER_UNAVAILABLE).await;
        io.close().await;
        return None;
    };
    let limit = policy.limits().max_auth_failures_per_minute;
    if !core.throttle.borrow_mut().allowed(peer.ip(), limit, now) {
        bump(&core.stats.auth_throttled, 1);
        audit::denied_login(&username, &client_id_for_log, peer, "throttled", true);
        refuse(&mut io, v, reason::CONNECTION_RATE_EXCEEDED).await;
        io.close().await;
        return None;
    }
    // Client identifier (MQTT 3.1.1 §3.1.3.1, MQTT 5 §3.1.3.1).
    let (client_id, assigned) = if connect.client_id.is_empty() {
        if v != Version::V5 && (!connect.clean_start || v == Version::V31) {
            refuse(&mut io, v, reason::CLIENT_ID_NOT_VALID).await;
            io.close().await;
            return None;
        }
        (
            assign_client_id(core.broker.borrow().core(), core.peers.len()),
            true,
        )
    } else {
        (connect.client_id.clone(), false)
    };

    let password = connect.password.clone().unwrap_or_default();
    let mut external = false;
    let mut asked_control_plane = false;
    let denied = match policy.authenticate(&username, &password) {
        AuthDecision::Allowed => None,
        AuthDecision::Denied(DenyReason::UnknownUser) if core.ext.is_some() => {
            drop(policy);
            external = true;
            external_login(core, &connect, &username, &password, &client_id).await
        }
        AuthDecision::Denied(why) => Some((reason::BAD_USERNAME_OR_PASSWORD, why.as_str())),
        // A human's Argon2 hash is checked by the control plane (its pool, its throttle, its
        // audit record), never on a core; the core awaits the answer like any I/O.
        AuthDecision::AskControlPlane => {
            drop(policy);
            asked_control_plane = true;
            match &core.link {
                None => Some((reason::NOT_AUTHORIZED, "no_control_plane")),
                Some(link) => match link
                    .check_password(&username, &password, peer.ip(), HUMAN_LOGIN_TIMEOUT)
                    .await
                {
                    PasswordVerdict::Allowed => None,
                    PasswordVerdict::Denied => {
                        Some((reason::BAD_USERNAME_OR_PASSWORD, "bad_password"))
                    }
                    PasswordVerdict::Throttled => {
                        Some((reason::CONNECTION_RATE_EXCEEDED, "throttled"))
                    }
                    PasswordVerdict::Unavailable => {
                        Some((reason::SERVER_UNAVAILABLE, "control_plane_unavailable"))
                    }
                },
            }
        }
    };
    if let Some((code, why)) = denied {
        bump(&core.stats.auth_failures, 1);
        core.throttle.borrow_mut().failed(peer.ip(), now);
        audit::denied_login(
            &username,
            &client_id_for_log,
            peer,
            why,
            !asked_control_plane,
        );
        refuse(&mut io, v, code).await;
        io.close().await;
        return None;
    }
    let login = Login {
        client_id,
        assigned,
        username,
        external,
    };
    Some((io, connect, buf, login))
}

/// Moves the connection to core `home`.
#[allow(clippy::too_many_arguments)]
async fn hand_off(
    io: Io,
    peer: SocketAddr,
    ctx: &Rc<ConnCtx>,
    core: &Rc<MqttCore>,
    home: usize,
    connect: Box<Connect>,
    leftover: BytesMut,
    login: Login,
) {
    let v = connect.version;
    let (tcp, tls, ws) = match io {
        Io::Tls(s) => {
            let (tcp, parts) = (*s).into_parts();
            (tcp, Some(parts), None)
        }
        Io::Ws(s, ws) => {
            let (tcp, parts) = (*s).into_parts();
            (tcp, Some(parts), Some(ws))
        }
        Io::Plain(tcp) => (tcp, None, None),
    };
    // The descriptor is duplicated, the original closed with its compio registration: no
    // operation is in flight on it now, so nothing of this core's driver refers to it.
    let fd = match rustix::io::fcntl_dupfd_cloexec(&tcp, 0) {
        Ok(fd) => std::net::TcpStream::from(fd),
        Err(error) => {
            info!(message = "Cannot move connection to its home core.", %peer, %error);
            return;
        }
    };
    drop(tcp);
    let h = Box::new(Handoff {
        fd,
        tls,
        ws,
        peer,
        listener: ctx.listener,
        connect,
        leftover,
        login,
    });
    if let Err(e) = core.peers[home].try_send(BrokerMsg::Handoff(h)) {
        // The home core is overwhelmed: tell the client to come back later.
        if let BrokerMsg::Handoff(h) = e.into_inner() {
            bump(&core.stats.dropped_cross_core, 1);
            if let Ok(tcp) = TcpStream::from_std(h.fd) {
                let mut io = Io::rebuild(tcp, h.tls, h.ws);
                refuse(&mut io, v, reason::SERVER_BUSY).await;
                io.close().await;
            }
        }
    }
}

/// Takes a connection handed over by another core (called on the home core).
pub(crate) fn adopt(h: Box<Handoff>, core: &Rc<MqttCore>) {
    let Some(ctx) = core.listeners.borrow().get(h.listener).cloned() else {
        return;
    };
    let tracked = ctx.drain.track();
    let Handoff {
        fd,
        tls,
        ws,
        peer,
        connect,
        leftover,
        login,
        ..
    } = *h;
    let Ok(tcp) = TcpStream::from_std(fd) else {
        return;
    };
    let io = Io::rebuild(tcp, tls, ws);
    let task = run(Box::new(Admitted {
        io,
        peer,
        ctx,
        core: core.clone(),
        connect,
        buf: leftover,
        login,
    }));
    // The session boxed in a small task, as on the accepting core (a task is allocated at
    // its future's size, and compio's header would take `run` over an allocator size class);
    // `map`, not an async block, which would hold the future twice. The drain tracker ends
    // with the session.
    let task = futures_util::FutureExt::map(Box::pin(task), move |()| drop(tracked));
    compio::runtime::spawn(task).detach();
}

/// `fut`'s output, or None if the core starts draining first. Takes the future pinned where
/// it is: moved in, it would be held twice, as argument and as pinned local.
async fn unless_drained<F: Future>(ctx: &ConnCtx, fut: Pin<&mut F>) -> Option<F::Output> {
    let drained = pin!(ctx.drain.signaled());
    match select(fut, drained).await {
        Either::Left((r, _)) => Some(r),
        Either::Right(_) => None,
    }
}

/// A random client id whose home is `core`.
fn assign_client_id(core: usize, cores: usize) -> String {
    loop {
        let mut r = [0u8; 12];
        if getrandom::fill(&mut r).is_err() {
            // No entropy source is a broken system; a counter still keeps ids unique.
            r[..8].copy_from_slice(&(Instant::now().elapsed().as_nanos() as u64).to_le_bytes());
        }
        let id: String = r.iter().map(|b| format!("{b:02x}")).collect();
        let id = format!("rampart-{id}");
        if home_core(&id, cores) == core {
            return id;
        }
    }
}

/// Sends a refusing CONNACK.
async fn refuse(io: &mut Io, v: Version, code: u8) {
    let mut b = BytesMut::new();
    let p = Packet::Connack(Connack {
        session_present: false,
        reason_code: code,
        properties: Properties::default(),
    });
    if p.encode(v, &mut b).is_ok() {
        let _ = io.write_all(b.to_vec()).await;
    }
}

/// Why the reader stopped.
#[derive(Debug)]
struct ReadEnd {
    /// DISCONNECT reason to send (v5), SUCCESS for none.
    reason: u8,
    event: Option<Event>,
    error: Option<ConnError>,
}

/// An authenticated connection, as `run` takes it: one box, moved out of at once, because an
/// async fn keeps a second copy of each argument it owns for its whole life.
struct Admitted {
    io: Io,
    peer: SocketAddr,
    ctx: Rc<ConnCtx>,
    core: Rc<MqttCore>,
    connect: Box<Connect>,
    buf: BytesMut,
    login: Login,
}

/// The session part of a connection, on its home core.
async fn run(admitted: Box<Admitted>) {
    let Admitted {
        io,
        peer,
        ctx,
        core,
        connect,
        mut buf,
        login,
    } = *admitted;
    let v = connect.version;
    // The account's connection limit, counted on the core that holds its sessions: with `n`
    // cores an account may hold up to `n ×` the limit (see docs/notes.md).
    let limit = core
        .policy
        .current()
        .map_or(0, |p| p.limits().max_connections_per_account);
    if core
        .broker
        .borrow()
        .account_full(&login.username, &login.client_id, limit)
    {
        bump(&core.stats.auth_failures, 1);
        audit::denied_login(
            &login.username,
            &login.client_id,
            peer,
            "connection_limit",
            true,
        );
        Box::pin(async move {
            let mut io = io;
            refuse(&mut io, v, reason::QUOTA_EXCEEDED).await;
            io.close().await;
        })
        .await;
        return;
    }
    let keepalive = effective_keepalive(&connect, &core.cfg);
    let outbox: OutboxRef = Rc::new(RefCell::new(Outbox::default()));
    let acc = core
        .broker
        .borrow_mut()
        .connect(&connect, &login, outbox.clone(), Instant::now());
    drop(connect);
    debug!(message = "MQTT client connected.", %peer, client_id = acc.client_id, username = login.username, core = core.broker.borrow().core());
    let (mut reader, writer) = io.split(ctx.limits.write_stall);
    reader.attach(&outbox);

    let ext_ids = login
        .external
        .then(|| (login.username.clone(), acc.client_id.clone()));
    // The two halves live in this block only: the closing steps after it do not carry them.
    let (end, writer) = {
        let rd = pin!(read_loop(
            &mut reader,
            &mut buf,
            &core,
            &ctx,
            acc.key,
            acc.conn,
            v,
            keepalive,
            &outbox,
            ext_ids.as_ref()
        ));
        let wr = pin!(write_loop(writer, &core, &outbox, v));
        match select(rd, wr).await {
            Either::Left((end, wr)) => {
                {
                    let mut ob = outbox.borrow_mut();
                    if ob.close.is_none() {
                        ob.close = Some(end.reason);
                    }
                    ob.wake();
                }
                // Boxed, like the other closing steps: `run` is as large as its largest state.
                let writer = Box::pin(compio::time::timeout(CLOSE_GRACE, wr))
                    .await
                    .ok()
                    .and_then(Result::ok);
                (Some(end), writer)
            }
            Either::Right((w, rd)) => {
                // The writer stopped first. A reader that is lingering after a protocol error
                // gets its (bounded) time; any other reader is dropped.
                let lingering = outbox.borrow().lingering;
                let end = if lingering {
                    Box::pin(compio::time::timeout(LINGER + CLOSE_GRACE, rd))
                        .await
                        .ok()
                } else {
                    None
                };
                (end, w.ok())
            }
        }
    };
    core.broker
        .borrow_mut()
        .disconnected(acc.key, acc.conn, Instant::now());
    // Whatever is still queued (a writer that failed, stalled or was taken over) gives its
    // bytes back to the global budget.
    {
        let mut ob = outbox.borrow_mut();
        let (n, bytes) = (ob.frames.len(), ob.bytes);
        ob.frames.clear();
        ob.bytes = 0;
        drop(ob);
        core.broker.borrow().taken(n, bytes);
    }
    match end {
        Some(ReadEnd { error: Some(e), .. }) => ctx.close_with(peer, &e),
        Some(ReadEnd {
            event: Some(ev), ..
        }) => ctx.record(ev),
        _ => {}
    }
    if let Some(w) = writer {
        Box::pin(w.shutdown(CLOSE_GRACE)).await;
    }
}

fn effective_keepalive(c: &Connect, cfg: &BrokerConfig) -> Option<Duration> {
    let asked = c.keep_alive;
    let secs = if c.version.is_v5() && (asked == 0 || asked > cfg.max_keepalive_secs) {
        cfg.max_keepalive_secs
    } else {
        asked
    };
    (secs > 0).then(|| Duration::from_millis(u64::from(secs) * 1500))
}

/// Reads and handles the client's packets until the connection ends. `reader` and `buf` are
/// borrowed, not owned: an async fn keeps a second copy of every argument it owns.
#[allow(clippy::too_many_arguments)]
async fn read_loop(
    reader: &mut Reader,
    buf: &mut BytesMut,
    core: &Rc<MqttCore>,
    ctx: &Rc<ConnCtx>,
    key: u64,
    conn: u64,
    v: Version,
    keepalive: Option<Duration>,
    outbox: &OutboxRef,
    ext_ids: Option<&(String, String)>,
) -> ReadEnd {
    let dctx = DecodeCtx {
        version: Some(v),
        max_packet_size: core.cfg.max_packet_size,
    };
    // The clock is read once per read, not per packet: the packets of one read arrived
    // together, and a read of small PUBLISHes holds hundreds of them.
    let mut now = Instant::now();
    let mut last = now;
    loop {
        // No packet and no decode result is held across an await here: they would take their
        // size (hundreds of bytes) in every idle connection's future. A packet that needs the
        // external backend moves into its own boxed future.
        loop {
            let p = match decode(buf, dctx) {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => {
                    bump(&core.stats.protocol_errors, 1);
                    debug!(message = "Malformed packet; closing.", error = %e);
                    let code = e.reason_code();
                    return Box::pin(close_after_error(reader, buf, outbox, code, core)).await;
                }
            };
            last = now;
            let res = match (ext_ids, &core.ext) {
                (Some((user, cid)), Some(ext)) => {
                    let res = Box::pin(external_packet(core, ext, key, conn, user, cid, p)).await;
                    now = Instant::now();
                    res
                }
                _ => core.broker.borrow_mut().packet(key, conn, p, &[], now),
            };
            if let Err(close) = res {
                if close.reason != reason::SUCCESS && close.reason != reason::SESSION_TAKEN_OVER {
                    bump(&core.stats.protocol_errors, 1);
                    let code = close.reason;
                    return Box::pin(close_after_error(reader, buf, outbox, code, core)).await;
                }
                return ReadEnd {
                    reason: close.reason,
                    event: Some(Event::PeerClosed),
                    error: None,
                };
            }
        }
        // Backpressure: a client that sends faster than it reads what it is sent (its own
        // acknowledgements pile up in its outbox) is not read until the writer catches up.
        let paused = poll_fn(|cx| {
            let mut ob = outbox.borrow_mut();
            if ob.close.is_some()
                || (ob.frames.len() < 2 * core.cfg.max_queued_messages
                    && ob.bytes < 2 * core.cfg.max_queued_bytes)
            {
                Poll::Ready(false)
            } else {
                ob.reader_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        });
        if paused.await {
            last = Instant::now();
        }
        // A drained buffer that grew large is given back while the connection waits.
        if buf.is_empty() && buf.capacity() > 16 * 1024 {
            *buf = BytesMut::new();
        }
        let deadline = keepalive.map(|k| last + k);
        let read = {
            let read = pin!(reader.read(buf, deadline, Timeout::Stage("keepalive")));
            unless_drained(ctx, read).await
        };
        now = Instant::now();
        match read {
            None => {
                return ReadEnd {
                    reason: reason::SERVER_SHUTTING_DOWN,
                    event: Some(Event::Drained),
                    error: None,
                };
            }
            Some(Ok(0)) => {
                return ReadEnd {
                    reason: reason::SUCCESS,
                    event: Some(Event::PeerClosed),
                    error: None,
                };
            }
            Some(Ok(_)) => {
                if reader.wants_write() {
                    let mut ob = outbox.borrow_mut();
                    ob.poke = true;
                    ob.wake();
                }
            }
            Some(Err(ConnError::Timeout(Timeout::Stage(_)))) => {
                bump(&core.stats.keepalive_timeouts, 1);
                return ReadEnd {
                    reason: reason::KEEP_ALIVE_TIMEOUT,
                    event: Some(Event::TimeoutStage),
                    error: None,
                };
            }
            Some(Err(e)) => {
                return ReadEnd {
                    reason: reason::SUCCESS,
                    event: None,
                    error: Some(e),
                };
            }
        }
    }
}

/// A packet from a client the external backend knows: its verdicts first, then the broker.
#[allow(clippy::too_many_arguments)]
async fn external_packet(
    core: &MqttCore,
    ext: &ExtAuth,
    key: u64,
    conn: u64,
    username: &str,
    client_id: &str,
    p: Packet,
) -> Result<(), crate::mqtt::broker::Close> {
    let verdicts = external_verdicts(core, ext, key, username, client_id, &p).await;
    core.broker
        .borrow_mut()
        .packet(key, conn, p, &verdicts, Instant::now())
}

/// A protocol error: counted by the caller; the DISCONNECT, a short linger, the end.
async fn close_after_error(
    reader: &mut Reader,
    buf: &mut BytesMut,
    outbox: &OutboxRef,
    code: u8,
    core: &MqttCore,
) -> ReadEnd {
    linger(reader, buf, outbox, code, core).await;
    ReadEnd {
        reason: code,
        event: Some(Event::PeerClosed),
        error: None,
    }
}

/// The external backend's answers for one packet: one for a PUBLISH (write access to its
/// topic), one per filter of a SUBSCRIBE. Cached per core; asked off the core.
async fn external_verdicts(
    core: &MqttCore,
    ext: &ExtAuth,
    key: u64,
    username: &str,
    client_id: &str,
    p: &Packet,
) -> Vec<bool> {
    match p {
        Packet::Publish(publish) => {
            let topic = core.broker.borrow().publish_topic(key, publish);
            let Some(topic) = topic else {
                return vec![false];
            };
            let ok =
                extauth::check_acl(ext, &core.ext_cache, username, client_id, &topic, ACC_WRITE)
                    .await;
            vec![ok]
        }
        Packet::Subscribe(sub) => {
            let mut out = Vec::with_capacity(sub.filters.len());
            for (f, _) in &sub.filters {
                let inner = f.shared().map_or(f.as_str(), |(_, i)| i);
                out.push(
                    extauth::check_acl(
                        ext,
                        &core.ext_cache,
                        username,
                        client_id,
                        inner,
                        ACC_SUBSCRIBE,
                    )
                    .await,
                );
            }
            out
        }
        _ => Vec::new(),
    }
}

/// A login the policy does not know, asked of the external backend: the user, then the
/// will's topic (MQTT 5 §3.1.2.5 lets a server refuse a will it would not allow).
async fn external_login(
    core: &MqttCore,
    connect: &Connect,
    username: &str,
    password: &[u8],
    client_id: &str,
) -> Option<(u8, &'static str)> {
    let ext = core.ext.as_ref()?;
    let Ok(password) = std::str::from_utf8(password) else {
        return Some((reason::BAD_USERNAME_OR_PASSWORD, "external_bad_password"));
    };
    let q = extauth::Query::User {
        username: username.to_string(),
        password: password.to_string(),
        client_id: client_id.to_string(),
    };
    if !extauth::check(ext, &core.ext_cache, q).await {
        return Some((reason::BAD_USERNAME_OR_PASSWORD, "external_denied"));
    }
    if let Some(w) = &connect.will {
        let ok = extauth::check_acl(
            ext,
            &core.ext_cache,
            username,
            client_id,
            w.topic.as_str(),
            ACC_WRITE,
        )
        .await;
        if !ok {
            return Some((reason::NOT_AUTHORIZED, "external_will_denied"));
        }
    }
    None
}

/// After a protocol error: the DISCONNECT goes out at once, and what the client is still
/// sending (the rest of an oversized packet, say) is read and discarded for a short while, so
/// the connection ends with the DISCONNECT and a FIN, not with a reset that the client may see
/// before the DISCONNECT, in the middle of its own write.
async fn linger(
    reader: &mut Reader,
    buf: &mut BytesMut,
    outbox: &OutboxRef,
    code: u8,
    core: &MqttCore,
) {
    {
        let mut ob = outbox.borrow_mut();
        ob.close.get_or_insert(code);
        ob.lingering = true;
        ob.wake();
    }
    let end = Instant::now() + LINGER;
    let limit = (core.cfg.max_packet_size as usize).saturating_mul(2);
    let mut discarded = 0usize;
    loop {
        buf.clear();
        // Until the client pauses (it has sent what it had) or the time is up.
        let deadline = end.min(Instant::now() + LINGER_IDLE);
        match reader
            .read(buf, Some(deadline), Timeout::Stage("linger"))
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                discarded += n;
                if discarded > limit {
                    return;
                }
            }
        }
    }
}

/// Sends what the broker queues, one flush per turn, until told to close.
async fn write_loop(
    mut writer: Writer,
    core: &Rc<MqttCore>,
    outbox: &OutboxRef,
    v: Version,
) -> Result<Writer, ConnError> {
    let mut batch: Vec<Frame> = Vec::new();
    loop {
        poll_fn(|cx| {
            let mut ob = outbox.borrow_mut();
            if !ob.frames.is_empty() || ob.close.is_some() || ob.poke {
                Poll::Ready(())
            } else {
                ob.register(cx.waker());
                Poll::Pending
            }
        })
        .await;
        let close = {
            let mut ob = outbox.borrow_mut();
            ob.poke = false;
            let mut bytes = 0;
            if let Some(code) = ob.close {
                // Closing: what was queued is dropped (QoS 1/2 stay in the session).
                let n = ob.frames.len();
                let dropped = ob.bytes;
                ob.frames.clear();
                ob.bytes = 0;
                core.broker.borrow().taken(n, dropped);
                Some(code)
            } else {
                while let Some(f) = ob.frames.front() {
                    if !batch.is_empty()
                        && (batch.len() >= BATCH_FRAMES || bytes + f.len() > BATCH_BYTES)
                    {
                        break;
                    }
                    bytes += f.len();
                    batch.extend(ob.frames.pop_front());
                }
                ob.bytes = ob.bytes.saturating_sub(bytes);
                if let Some(t) = ob.since.take() {
                    let waited = t.elapsed().as_micros();
                    core.stats
                        .observe_latency(u64::try_from(waited).unwrap_or(u64::MAX));
                    if !ob.frames.is_empty() {
                        ob.since = Some(Instant::now());
                    }
                }
                core.broker.borrow().taken(batch.len(), bytes);
                if let Some(w) = ob.reader_waker.take() {
                    w.wake();
                }
                None
            }
        };
        if let Some(code) = close {
            if v.is_v5() && code != reason::SUCCESS {
                let mut b = BytesMut::new();
                let d = Packet::Disconnect(Disconnect {
                    reason_code: code,
                    properties: Properties::default(),
                });
                if d.encode(v, &mut b).is_ok() {
                    // Boxed: the close path's future would otherwise size every connection's.
                    let once = std::iter::once(Frame::Whole(b.freeze()));
                    let _ = Box::pin(writer.send(once)).await;
                }
            }
            return Ok(writer);
        }
        writer.send(batch.drain(..)).await?;
        if outbox.borrow().frames.is_empty() {
            writer.release_buffers();
        }
    }
}
