//! One connection: TLS handshake, then the protocol's first stage, under deadlines.

use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use compio::net::TcpStream;
use futures_util::future::{Either, select};
use rampart_deadline::{StageLimit, Timeout};
use rampart_rt::drain::Drain;
use rampart_tls::ServerConfig;
use rampart_tls::stream::ErrorSource;
use rampart_tls::{ConnError, IoLimits, TlsStream};
use tracing::{debug, info, warn};

use crate::config::Protocol;
use crate::metrics::{Counters, Event, LogLimiter};
use crate::mqtt::conn::{Io, MqttCore};

/// What one listener's connections share on one core.
#[derive(Debug)]
pub(crate) struct ConnCtx {
    pub(crate) protocol: Protocol,
    /// Index of the listener in the configuration.
    pub(crate) listener: usize,
    /// None on a plaintext listener.
    pub(crate) tls: Option<Arc<ServerConfig>>,
    /// The core's broker, on MQTT listeners.
    pub(crate) mqtt: Option<Rc<MqttCore>>,
    /// The core's HTTPS front, on HTTPS listeners.
    pub(crate) front: Option<Rc<crate::front::FrontCore>>,
    /// The core's CIRA server, on CIRA listeners.
    pub(crate) cira: Option<Rc<crate::cira::CiraCore>>,
    pub(crate) limits: IoLimits,
    pub(crate) first_stage: (&'static str, StageLimit),
    pub(crate) counters: Arc<Counters>,
    pub(crate) log: Rc<LogLimiter>,
    pub(crate) drain: Drain,
}

impl ConnCtx {
    pub(crate) fn record(&self, event: Event) {
        self.counters.record(self.protocol, event);
    }

    /// Counts an error outcome and logs it, rate-limited, at a level set by who caused it.
    pub(crate) fn close_with(&self, peer: SocketAddr, error: &ConnError) {
        let event = match error {
            ConnError::Timeout(Timeout::Handshake) => Event::TimeoutHandshake,
            ConnError::Timeout(Timeout::WriteStall) => Event::TimeoutWriteStall,
            ConnError::Timeout(_) => Event::TimeoutStage,
            ConnError::ClosedInHandshake => Event::ClosedInHandshake,
            ConnError::Tls(_) => Event::TlsError,
            _ => Event::IoError,
        };
        self.record(event);
        let Some(suppressed) = self.log.allow(Instant::now()) else {
            return;
        };
        let protocol = self.protocol.as_str();
        match error.source() {
            ErrorSource::Client => info!(
                message = "Closing connection.",
                reason = error.kind(),
                %error,
                protocol,
                %peer,
                suppressed
            ),
            ErrorSource::Internal => warn!(
                message = "Closing connection.",
                reason = error.kind(),
                %error,
                protocol,
                %peer,
                suppressed
            ),
        }
    }
}

/// One stage of a connection's life, boxed at its own size; it ends with the next stage, if
/// any. An MQTT connection's CONNECT stage hands over to its session stage, and is freed then:
/// a quiet connection holds only the stage it is in.
#[must_use = "a stage does nothing unless run: see `Session::run`"]
pub(crate) struct Session(Pin<Box<dyn Future<Output = Option<Session>>>>);

impl Session {
    /// Runs `first` and every stage after it, to the connection's end.
    pub(crate) async fn run(first: Option<Session>) {
        let mut next = first;
        while let Some(Session(stage)) = next {
            next = stage.await;
        }
    }

    /// A stage that is the last.
    pub(crate) fn last(fut: impl Future<Output = ()> + 'static) -> Self {
        // `map`, not an async block: a block would hold `fut` twice (rust-lang/rust#62958).
        Self(Box::pin(futures_util::FutureExt::map(fut, |()| None)))
    }

    /// A stage that may hand over to another.
    pub(crate) fn then(fut: impl Future<Output = Option<Session>> + 'static) -> Self {
        Self(Box::pin(fut))
    }
}

/// Serves one accepted TCP connection to its end. `ticket`: its place under the HTTPS front's
/// connection caps.
///
/// A future is as large as its largest state, and each connection's task is allocated at the
/// size of this one, for the connection's whole life: so the TLS handshake is a boxed future
/// freed when it ends, and each protocol's session a boxed future of its own size. A quiet MQTT
/// connection then holds what MQTT needs, not the HTTPS front's or the CIRA server's larger
/// states (memory per idle connection, docs/benchmarks.md).
pub(crate) async fn serve(
    tcp: TcpStream,
    peer: SocketAddr,
    ctx: Rc<ConnCtx>,
    ticket: Option<crate::front::guard::Ticket>,
) {
    Session::run(Box::pin(open(tcp, peer, ctx, ticket)).await).await;
}

/// The TLS handshake (for a TLS listener), then the listener's protocol; `None` when the
/// connection ended first.
async fn open(
    tcp: TcpStream,
    peer: SocketAddr,
    ctx: Rc<ConnCtx>,
    ticket: Option<crate::front::guard::Ticket>,
) -> Option<Session> {
    let _ = tcp.set_nodelay(true);
    let Some(tls) = ctx.tls.clone() else {
        // Plaintext listeners exist only for MQTT (the configuration refuses others).
        let mqtt = ctx.mqtt.clone()?;
        let connect = ctx.first_stage.1;
        let io = Io::Plain(tcp);
        return Some(Session::then(crate::mqtt::conn::serve(
            io, peer, ctx, mqtt, connect,
        )));
    };
    if ctx.front.is_some() {
        // Best effort: the default still bounds what a slow reader pins.
        let _ = rustix::net::sockopt::set_socket_send_buffer_size(&tcp, crate::front::SEND_BUFFER);
    }
    let handshake = {
        let accept = pin!(TlsStream::accept(tcp, tls, ctx.limits));
        let drained = pin!(ctx.drain.signaled());
        match select(accept, drained).await {
            Either::Left((res, _)) => res,
            Either::Right(_) => {
                ctx.record(Event::Drained);
                return None;
            }
        }
    };
    let stream = match handshake {
        Ok(s) => s,
        Err(e) => {
            ctx.close_with(peer, &e);
            return None;
        }
    };
    ctx.record(Event::HandshakeOk);
    debug!(
        message = "TLS established.",
        protocol = ctx.protocol.as_str(),
        %peer,
        version = ?stream.protocol_version(),
        alpn = ?stream.alpn_protocol().map(String::from_utf8_lossy),
    );
    session(stream, peer, ctx, ticket)
}

/// The session of the listener's protocol over an established TLS stream.
fn session(
    stream: TlsStream,
    peer: SocketAddr,
    ctx: Rc<ConnCtx>,
    ticket: Option<crate::front::guard::Ticket>,
) -> Option<Session> {
    if let Some(front) = ctx.front.clone() {
        return Some(Session::last(crate::front::serve(
            stream, peer, ctx, front, ticket,
        )));
    }
    if let Some(mqtt) = ctx.mqtt.clone() {
        let connect = ctx.first_stage.1;
        let io = Io::Tls(Box::new(stream));
        return Some(Session::then(crate::mqtt::conn::serve(
            io, peer, ctx, mqtt, connect,
        )));
    }
    let cira = ctx.cira.clone()?;
    Some(Session::last(crate::cira::serve(stream, peer, ctx, cira)))
}
