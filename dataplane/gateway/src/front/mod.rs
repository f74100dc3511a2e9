//! The HTTPS front: the web console's static files, the REST API proxied to the control plane,
//! MQTT over WebSocket, and health checks, on one TLS port, under mod_reqtimeout's stages.
//!
//! - `mod.rs`: one connection's request loop (keep-alive, pipelining, the stages), routing and
//!   responses.
//! - `proxy`: `/api/...` streamed to the control plane's `api.sock`.
//! - `upgrade`: the WebSocket handshake on `/mqtt`, then the broker takes the connection.
//! - `site`: static files, loaded into memory at start.
//! - `guard`: caps per source address and in total, shedding idle connections first.
//! - `stats`: counters and the JSON access log.
//!
//! Stages (see `docs/architecture.md`, "The HTTPS front"): `header` runs from the first byte of
//! a request (for a new connection: from the end of the TLS handshake) to the end of its head;
//! `body` until the body is complete; `idle` is the keep-alive wait for the next request's
//! first byte; `send` bounds how slowly a response may be taken (a minimum send rate, the
//! slow-read defence). A request that runs out of `header` or `body` time gets 408 and the
//! connection closes; an idle connection that runs out of time is closed quietly.

pub(crate) mod guard;
mod proxy;
mod relay;
pub(crate) mod site;
pub(crate) mod stats;
mod upgrade;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use futures_util::future::{Either, select};
use rampart_deadline::{StageClock, StageLimit, Timeout};
use rampart_http_proto::{BodyKind, HeadError, Limits, RequestHead, RequestParser, status_reason};
use rampart_tls::{ConnError, TlsStream};
use tracing::debug;

use crate::conn::ConnCtx;
use crate::link::LinkHandle;
use crate::metrics::Event;
use crate::mqtt::conn::MqttCore;
use crate::policy::PolicyHandle;
use guard::{Admission, IdleSet, Refusal, Ticket};
use site::Site;
pub use stats::AccessLog;
use stats::{AccessLogger, AccessRecord, FrontStats};

/// How long a closing connection gets to take our close_notify.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Bytes of a response body written per socket write (bounded output per connection).
const SEND_CHUNK: usize = 16 * 1024;
/// The socket send buffer of an HTTPS connection: modest, so that a slow reader's unread
/// bytes pile up here, where the send-rate clock sees them, not in the kernel.
pub(crate) const SEND_BUFFER: usize = 64 * 1024;

/// The send-rate clock of one response (the slow-read defence): `T` plus one second per
/// `MinRate` bytes written, where the first [`SEND_BUFFER`] bytes earn nothing (the kernel
/// takes them whether or not the client reads).
#[derive(Debug)]
pub(crate) struct SendClock {
    clock: StageClock,
    uncredited: usize,
}

impl SendClock {
    pub(crate) fn start(limit: StageLimit) -> Self {
        Self {
            clock: StageClock::start(limit, Instant::now()),
            uncredited: SEND_BUFFER,
        }
    }

    fn on_sent(&mut self, n: usize) {
        let skip = n.min(self.uncredited);
        self.uncredited -= skip;
        self.clock.on_bytes(n - skip);
    }
}

/// The HTTPS front's settings. Every field is documented with its default in `docs/config.md`.
#[derive(Debug, Clone)]
pub struct FrontConfig {
    /// The web console's directory; None: a built-in page at `/`.
    pub web_root: Option<PathBuf>,
    /// The control plane's API socket that `/api/` is proxied to; None: `/api/` answers 503.
    pub api_socket: Option<PathBuf>,
    /// The control plane's relay socket for `/relay/webrelay.ashx` (redirection sessions);
    /// None: the relay answers 503.
    pub relay_socket: Option<PathBuf>,
    /// The keep-alive wait for the next request. Default 5 s.
    pub keepalive_timeout: Duration,
    /// How slowly a response may be taken: `T` plus one second per `MinRate` bytes sent.
    /// Default `20,MinRate=1024`.
    pub send_timeout: StageLimit,
    /// Longest wait for the control plane's answer to a proxied request. Default 30 s.
    pub upstream_timeout: Duration,
    /// Requests served on one connection before it is closed. Default 100.
    pub max_requests_per_connection: u32,
    /// Connections held at most (all cores). Default 10000.
    pub max_connections: usize,
    /// Connections from one source address at most (all cores). Default 256.
    pub max_connections_per_ip: u32,
    /// Largest request body proxied to the API. Default 1 MiB.
    pub max_request_body: u64,
    /// Limits of a request head.
    pub head_limits: Limits,
    /// `Strict-Transport-Security: max-age`. Default one year.
    pub hsts_max_age: u64,
    /// `Content-Security-Policy` of every response the front makes itself.
    pub content_security_policy: String,
    /// Where the access log goes. Default `<data_dir>/access.log`.
    pub access_log: AccessLog,
    /// The CONNECT deadline of MQTT over WebSocket (the MQTT listener's `connect` stage).
    pub mqtt_connect: StageLimit,
}

impl Default for FrontConfig {
    fn default() -> Self {
        Self {
            web_root: None,
            api_socket: None,
            relay_socket: None,
            keepalive_timeout: Duration::from_secs(5),
            send_timeout: StageLimit::parse("20,MinRate=1024")
                .unwrap_or(StageLimit::fixed(Duration::from_secs(20))),
            upstream_timeout: Duration::from_secs(30),
            max_requests_per_connection: 100,
            max_connections: 10_000,
            max_connections_per_ip: 256,
            max_request_body: 1024 * 1024,
            head_limits: Limits::default(),
            hsts_max_age: 31_536_000,
            content_security_policy: DEFAULT_CSP.into(),
            access_log: AccessLog::Off,
            mqtt_connect: StageLimit::fixed(Duration::from_secs(10)),
        }
    }
}

/// The default `Content-Security-Policy`: same-origin everything, WebSocket to this origin, no
/// framing.
pub const DEFAULT_CSP: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// What every core's front shares.
#[derive(Debug)]
pub(crate) struct FrontShared {
    pub(crate) cfg: FrontConfig,
    pub(crate) site: Site,
    pub(crate) admission: Arc<Admission>,
    pub(crate) stats: Arc<FrontStats>,
    pub(crate) access: AccessLogger,
    pub(crate) policy: PolicyHandle,
    pub(crate) link: Option<LinkHandle>,
    /// The CIRA server's tunnels, for the redirection relay.
    pub(crate) cira: Option<Arc<crate::cira::CiraShared>>,
    /// The security headers every response carries, preformatted.
    security_headers: String,
}

impl FrontShared {
    pub(crate) fn new(
        cfg: FrontConfig,
        policy: PolicyHandle,
        link: Option<LinkHandle>,
        cira: Option<Arc<crate::cira::CiraShared>>,
    ) -> std::io::Result<Arc<Self>> {
        let site = Site::load(cfg.web_root.as_deref())?;
        tracing::info!(
            message = "HTTPS front ready.",
            web_root = %cfg.web_root.as_deref().map_or("(built-in page)".into(), |p| p.display().to_string()),
            files = site.len(),
            api_socket = %cfg.api_socket.as_deref().map_or("(none)".into(), |p| p.display().to_string()),
        );
        let stats = Arc::new(FrontStats::default());
        let access = AccessLogger::start(&cfg.access_log, stats.clone())?;
        let security_headers = format!(
            "Strict-Transport-Security: max-age={}; includeSubDomains\r\n\
             X-Content-Type-Options: nosniff\r\n\
             X-Frame-Options: DENY\r\n\
             Referrer-Policy: no-referrer\r\n",
            cfg.hsts_max_age
        );
        Ok(Arc::new(Self {
            admission: Admission::new(cfg.max_connections, cfg.max_connections_per_ip),
            cfg,
            site,
            stats,
            access,
            policy,
            link,
            cira,
            security_headers,
        }))
    }
}

/// One core's front.
#[derive(Debug)]
pub(crate) struct FrontCore {
    pub(crate) shared: Arc<FrontShared>,
    pub(crate) idle: Rc<IdleSet>,
    /// The core's broker, for `/mqtt`.
    pub(crate) mqtt: Option<Rc<MqttCore>>,
    /// The `body` stage of the listener.
    pub(crate) body_stage: StageLimit,
    /// Requests this core has in flight to the control plane.
    pub(crate) upstreams: std::cell::Cell<usize>,
}

impl FrontCore {
    /// Admission at accept, before any TLS work.
    pub(crate) fn admit(&self, peer: SocketAddr) -> Result<Ticket, Refusal> {
        let idle = self.idle.clone();
        match self
            .shared
            .admission
            .admit(peer.ip(), move || idle.shed_oldest())
        {
            Ok((ticket, shed)) => {
                if shed {
                    self.shared.stats.reject("shed_idle");
                }
                Ok(ticket)
            }
            Err(r) => {
                self.shared.stats.reject(r.as_str());
                Err(r)
            }
        }
    }
}

/// How a request ended for the connection.
#[derive(Debug)]
pub(crate) enum Next {
    /// Serve the next request.
    KeepAlive,
    /// Close (with close_notify).
    Close,
    /// The connection is already gone.
    Gone,
    /// A slow reader: reset the connection, dropping what the kernel still holds for it.
    Abort,
    /// Reading the request failed (body timeout, close): ends the connection.
    ReadFailed(ReadErr),
    /// A valid WebSocket handshake on `/mqtt`: the broker takes the connection.
    Upgrade(upgrade::Accepted),
    /// The redirection relay takes the connection.
    Relay(relay::Accepted),
}

/// One HTTPS connection after its TLS handshake.
pub(crate) struct HttpConn {
    pub(crate) stream: TlsStream,
    /// Received plaintext not yet used.
    pub(crate) buf: BytesMut,
    scratch: Vec<u8>,
    pub(crate) peer: SocketAddr,
    pub(crate) ctx: Rc<ConnCtx>,
    pub(crate) front: Rc<FrontCore>,
    pub(crate) ticket: Option<Ticket>,
}

impl std::fmt::Debug for HttpConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConn")
            .field("peer", &self.peer)
            .finish()
    }
}

/// Why reading stopped.
#[derive(Debug)]
pub(crate) enum ReadErr {
    Closed,
    Drained,
    Shed,
    Conn(ConnError),
}

/// The response the front makes itself.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Bytes,
    /// Why (a rejection reason), for the counters and the access log.
    pub(crate) reason: Option<&'static str>,
}

impl Reply {
    pub(crate) fn new(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Self {
        Self {
            status,
            headers: vec![("Content-Type", content_type.into())],
            body: body.into(),
            reason: None,
        }
    }

    /// A plain-text error: `400 Bad Request: bad_field_value`.
    pub(crate) fn error(status: u16, reason: &'static str) -> Self {
        let text = format!("{status} {}: {reason}\n", status_reason(status));
        let mut r = Self::new(status, "text/plain; charset=utf-8", text);
        r.reason = Some(reason);
        r
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

impl HttpConn {
    /// Reads more plaintext into `buf` under `clock`; the stage names the timeout.
    pub(crate) async fn fill(
        &mut self,
        clock: &mut StageClock,
        stage: &'static str,
        idle: Option<&guard::Idle>,
    ) -> Result<usize, ReadErr> {
        self.scratch.clear();
        let res = {
            let read = pin!(
                self.stream
                    .read(&mut self.scratch, clock, Timeout::Stage(stage))
            );
            let ctx = self.ctx.clone();
            // Every read also stops for a drain; a connection waiting for a request, when shed.
            let stop = pin!(async move {
                let drained = pin!(ctx.drain.signaled());
                match idle {
                    Some(i) => {
                        let shed = pin!(i.shed());
                        matches!(select(drained, shed).await, Either::Right(_))
                    }
                    None => {
                        drained.await;
                        false
                    }
                }
            });
            match select(read, stop).await {
                Either::Left((r, _)) => r,
                Either::Right((shed, _)) => {
                    return Err(if shed {
                        ReadErr::Shed
                    } else {
                        ReadErr::Drained
                    });
                }
            }
        };
        match res {
            Ok(0) => Err(ReadErr::Closed),
            Ok(n) => {
                self.buf.extend_from_slice(&self.scratch);
                if self.scratch.capacity() > 64 * 1024 {
                    self.scratch = Vec::new();
                }
                Ok(n)
            }
            Err(e) => Err(ReadErr::Conn(e)),
        }
    }

    /// Writes `data` under the send-rate clock (the slow-read defence), one bounded chunk at a
    /// time.
    pub(crate) async fn send(
        &mut self,
        data: &[u8],
        clock: &mut SendClock,
    ) -> Result<(), ConnError> {
        for chunk in data.chunks(SEND_CHUNK) {
            let write = self.stream.write_all(chunk);
            match clock.clock.deadline() {
                Some(d) => compio::time::timeout_at(d, write)
                    .await
                    .map_err(|_| ConnError::Timeout(Timeout::Stage("send")))??,
                None => write.await?,
            }
            clock.on_sent(chunk.len());
        }
        self.front
            .shared
            .stats
            .bytes_out
            .fetch_add(data.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// A response head: status line, `Date`, the security headers, `headers`, framing and
    /// `Connection`.
    pub(crate) fn head(
        &self,
        status: u16,
        reason: &str,
        headers: &[(&str, String)],
        framing: Option<&str>,
        keep: bool,
    ) -> Vec<u8> {
        let mut raw = Vec::new();
        for (name, value) in headers {
            raw.extend_from_slice(name.as_bytes());
            raw.extend_from_slice(b": ");
            raw.extend_from_slice(value.as_bytes());
            raw.extend_from_slice(b"\r\n");
        }
        self.head_raw(status, reason, &raw, false, framing, keep)
    }

    /// [`HttpConn::head`] with the fields already formatted (`raw`, each line ending in CRLF);
    /// `own_csp`: `raw` carries its own `Content-Security-Policy`.
    pub(crate) fn head_raw(
        &self,
        status: u16,
        reason: &str,
        raw: &[u8],
        own_csp: bool,
        framing: Option<&str>,
        keep: bool,
    ) -> Vec<u8> {
        let shared = &self.front.shared;
        let mut h = Vec::with_capacity(512 + raw.len());
        h.extend_from_slice(
            format!(
                "HTTP/1.1 {status} {reason}\r\nDate: {}\r\nServer: rampart\r\n",
                http_date(SystemTime::now())
            )
            .as_bytes(),
        );
        h.extend_from_slice(shared.security_headers.as_bytes());
        if !own_csp {
            h.extend_from_slice(b"Content-Security-Policy: ");
            h.extend_from_slice(shared.cfg.content_security_policy.as_bytes());
            h.extend_from_slice(b"\r\n");
        }
        h.extend_from_slice(raw);
        if let Some(f) = framing {
            h.extend_from_slice(f.as_bytes());
            h.extend_from_slice(b"\r\n");
        }
        h.extend_from_slice(if keep {
            b"Connection: keep-alive\r\n\r\n"
        } else {
            b"Connection: close\r\n\r\n"
        });
        h
    }

    /// Sends a reply the front made; returns the body bytes sent.
    pub(crate) async fn reply(
        &mut self,
        r: &Reply,
        head_only: bool,
        keep: bool,
    ) -> Result<u64, ConnError> {
        let no_body = r.status == 304 || r.status == 204 || r.status < 200;
        let framing = (!no_body).then(|| format!("Content-Length: {}", r.body.len()));
        let mut out = self.head(
            r.status,
            status_reason(r.status),
            &r.headers,
            framing.as_deref(),
            keep,
        );
        let body = !head_only && !no_body;
        if body && r.body.len() <= SEND_CHUNK {
            out.extend_from_slice(&r.body);
        }
        let mut clock = SendClock::start(self.front.shared.cfg.send_timeout);
        self.send(&out, &mut clock).await?;
        if body && r.body.len() > SEND_CHUNK {
            let b = r.body.clone();
            self.send(&b, &mut clock).await?;
        }
        Ok(if body { r.body.len() as u64 } else { 0 })
    }

    /// Counts a failed response write; a slow reader is reset.
    pub(crate) fn send_failed(&self, e: &ConnError) -> Next {
        self.ctx.close_with(self.peer, e);
        match e {
            ConnError::Timeout(t) => {
                self.stats().timeout(if *t == Timeout::WriteStall {
                    "send"
                } else {
                    t.as_str()
                });
                Next::Abort
            }
            _ => Next::Gone,
        }
    }

    fn stats(&self) -> &FrontStats {
        &self.front.shared.stats
    }

    /// Counts and logs a request's end.
    pub(crate) fn log(
        &self,
        head: Option<&RequestHead>,
        status: u16,
        bytes: u64,
        start: Instant,
        reason: Option<&str>,
    ) {
        let stats = self.stats();
        stats.response(status);
        if let Some(r) = reason
            && status >= 400
        {
            stats.reject(r);
        }
        self.front.shared.access.log(&AccessRecord {
            method: head.map_or("-", |h| h.method.as_str()),
            path: head.map_or("-", |h| h.path()),
            status,
            bytes,
            duration: start.elapsed(),
            peer: self.peer,
            reason,
        });
    }

    /// Resets the connection (SO_LINGER 0): a reader too slow for the send clock gets an RST,
    /// and the unsent bytes in the kernel's buffer are dropped instead of trickling out to it
    /// after we are gone.
    fn abort(self) {
        let (tcp, _) = self.stream.into_parts();
        let _ = rustix::net::sockopt::set_socket_linger(&tcp, Some(Duration::ZERO));
        drop(tcp);
    }

    /// Closes with close_notify, lingering (at most 2 s or 1 MiB) over what the client still
    /// sends, so that a refused request's unread body does not reset the answer.
    async fn close(self) {
        self.stream
            .shutdown_lingering(CLOSE_GRACE, Duration::from_secs(2), 1024 * 1024)
            .await;
    }
}

/// Serves one HTTPS connection after its TLS handshake: requests until the client closes, a
/// limit is reached, or the connection is upgraded.
pub(crate) async fn serve(
    stream: TlsStream,
    peer: SocketAddr,
    ctx: Rc<ConnCtx>,
    front: Rc<FrontCore>,
    ticket: Option<Ticket>,
) {
    let mut c = HttpConn {
        stream,
        buf: BytesMut::new(),
        scratch: Vec::new(),
        peer,
        ctx,
        front,
        ticket,
    };
    let cfg = c.front.shared.cfg.clone();
    let header_limit = c.ctx.first_stage.1;
    let mut parser = RequestParser::new(cfg.head_limits);
    let mut served = 0u32;
    loop {
        // The wait for a request's first byte: a new connection is already in its header
        // stage (Apache starts it with the connection); a kept-alive one waits under `idle`.
        let first = served == 0;
        let mut clock = StageClock::start(header_limit, Instant::now());
        if c.buf.is_empty() {
            let idle = c.front.idle.enter();
            let res = if first {
                c.fill(&mut clock, "header", Some(&idle)).await
            } else {
                let mut wait =
                    StageClock::start(StageLimit::fixed(cfg.keepalive_timeout), Instant::now());
                let r = c.fill(&mut wait, "idle", Some(&idle)).await;
                clock = StageClock::start(header_limit, Instant::now());
                r
            };
            drop(idle);
            match res {
                Ok(_) => {}
                Err(ReadErr::Conn(ConnError::Timeout(Timeout::Stage("idle")))) => {
                    c.stats().timeout("idle");
                    c.close().await;
                    return;
                }
                Err(e) => {
                    end_on_read_error(c, e, None, Instant::now()).await;
                    return;
                }
            }
        }
        let start = Instant::now();
        parser.reset();
        let head = loop {
            match parser.parse(&c.buf) {
                Ok(Some((head, used))) => {
                    let _ = c.buf.split_to(used);
                    break head;
                }
                Ok(None) => {}
                Err(e) => {
                    bad_head(c, &e, start).await;
                    return;
                }
            }
            if let Err(e) = c.fill(&mut clock, "header", None).await {
                end_on_read_error(c, e, None, start).await;
                return;
            }
        };
        served += 1;
        c.stats()
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let keep = head.keep_alive
            && served < cfg.max_requests_per_connection
            && !c.ctx.drain.is_draining();
        let next = route(&mut c, &head, keep, start).await;
        match next {
            Next::KeepAlive => {
                // Give back large buffers between requests.
                if c.buf.is_empty() && c.buf.capacity() > 16 * 1024 {
                    c.buf = BytesMut::new();
                }
            }
            Next::Close => {
                c.close().await;
                return;
            }
            Next::Gone => return,
            Next::Abort => {
                c.abort();
                return;
            }
            Next::ReadFailed(e) => {
                end_on_read_error(c, e, Some(&head), start).await;
                return;
            }
            Next::Upgrade(accepted) => {
                upgrade::take_over(c, accepted, &head, start).await;
                return;
            }
            Next::Relay(accepted) => {
                relay::take_over(c, accepted, &head, start).await;
                return;
            }
        }
    }
}

/// A head the parser refused: its status (400, 414, 501, 505) and close.
async fn bad_head(mut c: HttpConn, e: &HeadError, start: Instant) {
    debug!(message = "Bad request head.", peer = %c.peer, reason = e.reason());
    let r = Reply::error(e.status(), e.reason());
    let sent = c.reply(&r, false, false).await;
    c.log(None, r.status, sent.unwrap_or(0), start, Some(e.reason()));
    c.close().await;
}

/// Ends a connection whose read failed: a stage timeout gets 408 where a response can still be
/// sent (Apache's behaviour), then the connection closes.
pub(crate) async fn end_on_read_error(
    mut c: HttpConn,
    e: ReadErr,
    head: Option<&RequestHead>,
    start: Instant,
) {
    match e {
        ReadErr::Closed => {
            c.ctx.record(Event::PeerClosed);
            c.close().await;
        }
        ReadErr::Drained => {
            c.ctx.record(Event::Drained);
            c.close().await;
        }
        // Shedding frees the slot at once: no close_notify, no lingering.
        ReadErr::Shed => c.abort(),
        ReadErr::Conn(ConnError::Timeout(Timeout::Stage(stage))) => {
            c.stats().timeout(stage);
            c.ctx
                .close_with(c.peer, &ConnError::Timeout(Timeout::Stage(stage)));
            let r = Reply::error(
                408,
                if stage == "body" {
                    "body_timeout"
                } else {
                    "header_timeout"
                },
            );
            let sent = c.reply(&r, false, false).await;
            c.log(head, 408, sent.unwrap_or(0), start, None);
            c.close().await;
        }
        ReadErr::Conn(e) => {
            if let ConnError::Timeout(Timeout::WriteStall) = e {
                c.stats().timeout("send");
            }
            c.ctx.close_with(c.peer, &e);
        }
    }
}

/// Routes one request and answers it.
async fn route(c: &mut HttpConn, head: &RequestHead, keep: bool, start: Instant) -> Next {
    // Absolute-form targets are accepted (RFC 9112 §3.2.2); the path is what routes.
    let raw_path = match head.target.as_str() {
        t if t.starts_with('/') => head.path().to_string(),
        t if t.starts_with("http://") || t.starts_with("https://") => {
            let rest = t.split_once("://").map_or("", |(_, r)| r);
            let p = rest.find('/').map_or("/", |i| &rest[i..]);
            p.split('?').next().unwrap_or("/").to_string()
        }
        _ => String::new(),
    };
    let Some(path) = site::decode_path(&raw_path) else {
        return finish(c, head, Reply::error(400, "bad_path"), false, start).await;
    };
    let has_body = head.body != BodyKind::None;
    if path == "/api" || path.starts_with("/api/") {
        return proxy::forward(c, head, keep, start).await;
    }
    if path == relay::PATH {
        return match relay::check(c, head) {
            Ok(accepted) => Next::Relay(accepted),
            Err(r) => finish(c, head, r, keep && !has_body, start).await,
        };
    }
    if path == "/mqtt" {
        return match upgrade::check(c, head) {
            Ok(accepted) => Next::Upgrade(accepted),
            Err(r) => finish(c, head, r, keep && !has_body, start).await,
        };
    }
    // Nothing below reads a request body: one that was sent ends the connection after the
    // answer, so its bytes are never taken for the next request.
    let keep = keep && !has_body;
    let method = head.method.as_str();
    let head_only = method == "HEAD";
    if !matches!(method, "GET" | "HEAD") {
        if method == "OPTIONS" {
            let r =
                Reply::new(204, "text/plain", Bytes::new()).header("Allow", "GET, HEAD, OPTIONS");
            return finish(c, head, r, keep, start).await;
        }
        let r = Reply::error(405, "method_not_allowed").header("Allow", "GET, HEAD, OPTIONS");
        return finish(c, head, r, keep, start).await;
    }
    let reply = match path.as_str() {
        "/healthz" => {
            Reply::new(200, "text/plain; charset=utf-8", "ok\n").header("Cache-Control", "no-store")
        }
        "/readyz" => readiness(&c.front.shared).header("Cache-Control", "no-store"),
        _ => match c.front.shared.site.get(&path) {
            Some(a) => {
                let fresh = head
                    .headers
                    .get("if-none-match")
                    .is_some_and(|v| a.matches(v));
                let mut r = if fresh {
                    Reply {
                        status: 304,
                        headers: Vec::new(),
                        body: Bytes::new(),
                        reason: None,
                    }
                } else {
                    Reply::new(200, a.content_type, a.body.clone())
                };
                r.headers.push(("ETag", a.etag.clone()));
                r.headers.push(("Cache-Control", "no-cache".into()));
                r
            }
            None => Reply::error(404, "not_found"),
        },
    };
    finish_with(c, head, reply, head_only, keep, start).await
}

async fn finish(
    c: &mut HttpConn,
    head: &RequestHead,
    r: Reply,
    keep: bool,
    start: Instant,
) -> Next {
    let head_only = head.method == "HEAD";
    finish_with(c, head, r, head_only, keep, start).await
}

async fn finish_with(
    c: &mut HttpConn,
    head: &RequestHead,
    r: Reply,
    head_only: bool,
    keep: bool,
    start: Instant,
) -> Next {
    let sent = c.reply(&r, head_only, keep).await;
    c.log(
        Some(head),
        r.status,
        *sent.as_ref().unwrap_or(&0),
        start,
        r.reason,
    );
    match sent {
        Ok(_) if keep => Next::KeepAlive,
        Ok(_) => Next::Close,
        Err(e) => c.send_failed(&e),
    }
}

/// `/readyz`: a policy is loaded and, under the control plane, the link is up.
fn readiness(shared: &FrontShared) -> Reply {
    let policy = shared.policy.generation() > 0;
    let link = shared.link.as_ref().is_none_or(LinkHandle::is_up);
    if policy && link {
        Reply::new(200, "text/plain; charset=utf-8", "ready\n")
    } else {
        let why = if policy {
            "control link down\n"
        } else {
            "no policy yet\n"
        };
        Reply::new(
            503,
            "text/plain; charset=utf-8",
            format!("not ready: {why}"),
        )
    }
}

/// IMF-fixdate (RFC 9110 §5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) fn http_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // 1970-01-01 was a Thursday.
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(month - 1) as usize];
    format!("{weekday}, {day:02} {mon} {year} {h:02}:{m:02}:{s:02} GMT")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(
            http_date(SystemTime::UNIX_EPOCH),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(http_date(leap), "Tue, 29 Feb 2000 00:00:00 GMT");
    }
}
