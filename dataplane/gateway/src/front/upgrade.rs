//! `/mqtt`: the WebSocket handshake (RFC 6455 §4.2), then the broker takes the connection as an
//! ordinary MQTT connection (same CONNECT deadline, authentication and ACLs), with WebSocket
//! framing underneath (`mqtt::transport::WsIn`).

use std::time::Instant;

use bytes::BytesMut;
use rampart_http_proto::{BodyKind, RequestHead, Version};
use rampart_ws_proto::handshake;

use super::{HttpConn, Reply};
use crate::metrics::Event;
use crate::mqtt::conn::Io;
use crate::mqtt::transport::WsIn;

/// Subprotocols we speak, in order of preference: `mqtt` (MQTT 3.1.1 and 5), `mqttv3.1`.
const SUBPROTOCOLS: [&str; 2] = ["mqtt", "mqttv3.1"];

/// A handshake that passed every check.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Accepted {
    accept: String,
    protocol: &'static str,
}

/// Checks the upgrade request; the error is the answer to send.
pub(super) fn check(c: &HttpConn, head: &RequestHead) -> Result<Accepted, Reply> {
    if c.front.mqtt.is_none() {
        return Err(Reply::error(503, "upstream_unavailable"));
    }
    let accept = handshake_accept(head)?;
    let h = &head.headers;
    let Some(protocol) = SUBPROTOCOLS
        .into_iter()
        .find(|p| handshake::offers_subprotocol(h.get_all("sec-websocket-protocol"), p))
    else {
        // MQTT 5 §6.0: the client must offer "mqtt".
        return Err(Reply::error(400, "ws_handshake"));
    };
    Ok(Accepted { accept, protocol })
}

/// Checks a WebSocket opening handshake (RFC 6455 §4.2.1) whatever the resource; the
/// `Sec-WebSocket-Accept` value, or the answer to send.
pub(super) fn handshake_accept(head: &RequestHead) -> Result<String, Reply> {
    let h = &head.headers;
    if head.method != "GET" {
        return Err(Reply::error(405, "method_not_allowed").header("Allow", "GET"));
    }
    if !h.has_token("upgrade", "websocket") {
        // A plain GET: say what this resource needs (RFC 9110 §15.5.22).
        return Err(Reply::error(426, "ws_handshake")
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Version", "13"));
    }
    if head.version != Version::Http11
        || !h.has_token("connection", "upgrade")
        || head.body != BodyKind::None
    {
        return Err(Reply::error(400, "ws_handshake"));
    }
    if h.get("sec-websocket-version").map(<[u8]>::trim_ascii) != Some(b"13".as_slice()) {
        return Err(Reply::error(426, "ws_handshake").header("Sec-WebSocket-Version", "13"));
    }
    match (h.count("sec-websocket-key"), h.get("sec-websocket-key")) {
        (1, Some(k)) if handshake::valid_key(k) => Ok(handshake::accept_key(k.trim_ascii())),
        _ => Err(Reply::error(400, "ws_handshake")),
    }
}

/// Answers 101 and hands the connection to the broker. Consumes it.
pub(super) async fn take_over(c: HttpConn, a: Accepted, head: &RequestHead, start: Instant) {
    let HttpConn {
        mut stream,
        buf,
        peer,
        ctx,
        front,
        ticket,
        ..
    } = c;
    let shared = &front.shared;
    if !switch(
        &mut stream,
        &front,
        &ctx,
        peer,
        head,
        start,
        &a.accept,
        a.protocol,
    )
    .await
    {
        return;
    }
    shared
        .stats
        .ws_upgrades
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let Some(mqtt) = front.mqtt.clone() else {
        ctx.record(Event::PeerClosed);
        return;
    };
    // A frame may carry several MQTT packets (MQTT 5 §6.0); the broker's decoder enforces the
    // packet size, the frame limit only bounds what a header may announce.
    let max_frame = u64::from(mqtt.cfg.max_packet_size)
        .saturating_mul(2)
        .max(rampart_ws_proto::DEFAULT_MAX_FRAME);
    let ws = WsIn::new(BytesMut::from(&buf[..]), max_frame, ticket);
    let connect = shared.cfg.mqtt_connect;
    // The CONNECT stage, then the session stage it hands over to.
    let session = crate::mqtt::conn::serve(
        Io::Ws(Box::new(stream), Box::new(ws)),
        peer,
        ctx,
        mqtt,
        connect,
    )
    .await;
    crate::conn::Session::run(session).await;
}

/// Answers 101 Switching Protocols with `accept` and the chosen `protocol`, counted and
/// access-logged; false if the write failed (the connection is then done).
#[allow(clippy::too_many_arguments)]
pub(super) async fn switch(
    stream: &mut rampart_tls::TlsStream,
    front: &super::FrontCore,
    ctx: &crate::conn::ConnCtx,
    peer: std::net::SocketAddr,
    head: &RequestHead,
    start: Instant,
    accept: &str,
    protocol: &str,
) -> bool {
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n"
    );
    let shared = &front.shared;
    shared.stats.response(101);
    shared.access.log(&super::stats::AccessRecord {
        method: &head.method,
        path: head.path(),
        status: 101,
        bytes: 0,
        duration: start.elapsed(),
        peer,
        reason: None,
    });
    match stream.write_all(response.as_bytes()).await {
        Ok(()) => true,
        Err(e) => {
            ctx.close_with(peer, &e);
            false
        }
    }
}
