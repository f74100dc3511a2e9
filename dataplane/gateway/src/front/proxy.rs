//! `/api/...`: the REST API, reverse-proxied to the control plane's `api.sock`.
//!
//! One upstream connection per request (`Connection: close`; a Unix socket connect costs
//! microseconds). Both bodies are streamed, never buffered whole: the request body under the
//! `body` stage and the size cap, the response under the send-rate clock. The request head is
//! rewritten: hop-by-hop fields and every forwarding field the client sent are dropped, and
//! `X-Forwarded-For` is set to the TCP peer (the control plane trusts it because only the front
//! can reach `api.sock`).

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use compio::BufResult;
use compio::io::{AsyncRead, AsyncWriteExt};
use compio::net::UnixStream;
use rampart_deadline::StageClock;
use rampart_http_proto::{
    BodyDecoder, BodyEvent, BodyKind, BodyLimits, CHUNK_END, LAST_CHUNK, RequestHead, ResponseHead,
    ResponseParser, Version, encode_chunk_header,
};
use rampart_tls::ConnError;
use tracing::debug;

use std::rc::Rc;

use super::{FrontCore, HttpConn, Next, ReadErr, Reply, SendClock};

/// Request fields never forwarded: hop-by-hop (RFC 9110 §7.6.1), framing we set ourselves, and
/// forwarding claims only the front may make.
const DROP_REQUEST: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "expect",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-real-ip",
    "x-client-ip",
];

/// Response fields not passed on: hop-by-hop, framing, and those the front sets on every
/// response.
const DROP_RESPONSE: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "date",
    "server",
    "strict-transport-security",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
];

/// Upstream reads are this large.
const UP_READ: usize = 16 * 1024;
/// Requests one core has in flight to the control plane at most; more get 503.
const UPSTREAMS_PER_CORE: usize = 64;

fn dropped(name: &str, list: &[&str], connection_tokens: &[String]) -> bool {
    list.iter().any(|d| name.eq_ignore_ascii_case(d))
        || connection_tokens
            .iter()
            .any(|t| name.eq_ignore_ascii_case(t))
}

/// Field names listed in `Connection` (hop-by-hop by declaration).
fn connection_tokens(headers: &rampart_http_proto::Headers) -> Vec<String> {
    headers
        .get_all("connection")
        .filter_map(|v| std::str::from_utf8(v).ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Appends every field of `headers` as `name: value` lines, except those in `drop` and those
/// named in `Connection`.
fn copy_fields(headers: &rampart_http_proto::Headers, drop: &[&str], out: &mut Vec<u8>) {
    let tokens = connection_tokens(headers);
    for h in headers.iter() {
        if dropped(&h.name, drop, &tokens) {
            continue;
        }
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(&h.value);
        out.extend_from_slice(b"\r\n");
    }
}

/// The head sent to the control plane.
fn upstream_head(head: &RequestHead, c: &HttpConn, framing: Option<String>) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(head.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    copy_fields(&head.headers, DROP_REQUEST, &mut out);
    if head.host().is_none() {
        out.extend_from_slice(b"Host: rampart\r\n");
    }
    out.extend_from_slice(format!("X-Forwarded-For: {}\r\n", c.peer.ip()).as_bytes());
    out.extend_from_slice(b"X-Forwarded-Proto: https\r\nConnection: close\r\n");
    if let Some(f) = framing {
        out.extend_from_slice(f.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Why a proxied exchange failed, and what the client gets.
enum Fail {
    /// Answer with this error (nothing of the response was sent yet).
    Reply(u16, &'static str),
    /// The client's read failed (timeout, close): handled by the request loop.
    Read(ReadErr),
    /// Mid-response: the connection can only be closed.
    Abort,
    /// Mid-response, the client stopped reading: reset it.
    Send(ConnError),
}

/// Proxies one request.
pub(super) async fn forward(
    c: &mut HttpConn,
    head: &RequestHead,
    keep: bool,
    start: Instant,
) -> Next {
    c.front
        .shared
        .stats
        .proxied
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let has_body = head.body != BodyKind::None;
    let res = exchange(c, head).await;
    match res {
        Ok((status, bytes, reusable)) => {
            c.log(Some(head), status, bytes, start, None);
            if keep && reusable {
                Next::KeepAlive
            } else {
                Next::Close
            }
        }
        Err(Fail::Read(e)) => Next::ReadFailed(e),
        Err(Fail::Abort) => Next::Close,
        Err(Fail::Send(e)) => c.send_failed(&e),
        Err(Fail::Reply(status, reason)) => {
            // The request body may be unread: the connection ends after the answer.
            let keep = keep && !has_body;
            let r = Reply::error(status, reason);
            super::finish(c, head, r, keep, start).await
        }
    }
}

/// The exchange: returns the status, body bytes sent, and whether the client connection may
/// serve another request.
async fn exchange(c: &mut HttpConn, head: &RequestHead) -> Result<(u16, u64, bool), Fail> {
    let cfg = c.front.shared.cfg.clone();
    let Some(sock) = cfg.api_socket.clone() else {
        return Err(Fail::Reply(503, "upstream_unavailable"));
    };
    if let BodyKind::Length(n) = head.body
        && n > cfg.max_request_body
    {
        return Err(Fail::Reply(413, "body_too_large"));
    }
    // The request body is read whole (it is capped) before the control plane sees the
    // request: a slow client then holds only its own connection, never one of the control
    // plane's.
    let body = read_body(c, head, &cfg).await?;
    let Some(_slot) = UpstreamSlot::take(&c.front) else {
        return Err(Fail::Reply(503, "upstream_busy"));
    };
    let mut up = match compio::time::timeout(cfg.upstream_timeout, UnixStream::connect(&sock)).await
    {
        Ok(Ok(s)) => s,
        Ok(Err(error)) => {
            debug!(message = "API socket unreachable.", %error);
            return Err(Fail::Reply(503, "upstream_unavailable"));
        }
        Err(_) => return Err(Fail::Reply(503, "upstream_unavailable")),
    };
    let framing = (head.body != BodyKind::None).then(|| format!("Content-Length: {}", body.len()));
    let mut out = upstream_head(head, c, framing);
    out.extend_from_slice(&body);
    drop(body);
    // If the control plane stops taking the request (it answered early and closed), its
    // answer is still read and passed on.
    let _ = upstream_write(&mut up, out, &cfg).await;

    // The response head.
    let mut ubuf = BytesMut::new();
    let mut parser = ResponseParser::new(cfg.head_limits);
    let resp: ResponseHead = loop {
        match parser.parse(&ubuf, &head.method) {
            Ok(Some((r, used))) => {
                let _ = ubuf.split_to(used);
                if (100..200).contains(&r.status) {
                    parser.reset();
                    continue;
                }
                break r;
            }
            Ok(None) => {}
            Err(_) => return Err(Fail::Reply(502, "upstream_error")),
        }
        match upstream_read(&mut up, &mut ubuf, &cfg).await {
            Ok(0) => return Err(Fail::Reply(502, "upstream_error")),
            Ok(_) => {}
            Err(Fail::Abort) => return Err(Fail::Reply(504, "upstream_error")),
            Err(e) => return Err(e),
        }
    };

    // Our head to the client.
    let client_11 = head.version == Version::Http11;
    let (framing, reusable) = match resp.body {
        BodyKind::None => (
            // A HEAD answer keeps the length the GET would have.
            resp.headers
                .get_str("content-length")
                .filter(|_| head.method == "HEAD")
                .map(|n| format!("Content-Length: {n}")),
            true,
        ),
        BodyKind::Length(n) => (Some(format!("Content-Length: {n}")), true),
        BodyKind::Chunked | BodyKind::UntilClose if client_11 => {
            (Some("Transfer-Encoding: chunked".to_string()), true)
        }
        // An HTTP/1.0 client gets a body delimited by the close.
        BodyKind::Chunked | BodyKind::UntilClose => (None, false),
    };
    let rechunk = framing.as_deref() == Some("Transfer-Encoding: chunked");
    let mut raw = Vec::with_capacity(256);
    let csp_set = resp.headers.get("content-security-policy").is_some();
    copy_fields(&resp.headers, DROP_RESPONSE, &mut raw);
    let keep = reusable;
    let mut out = c.head_raw(
        resp.status,
        &resp.reason,
        &raw,
        csp_set,
        framing.as_deref(),
        keep,
    );
    let mut clock = SendClock::start(cfg.send_timeout);
    let mut sent = 0u64;
    let mut dec = BodyDecoder::new(resp.body, BodyLimits::default());
    loop {
        let ev = match dec.decode(&mut ubuf) {
            Ok(ev) => ev,
            Err(_) => return Err(abort(c, &out, &mut clock).await),
        };
        match ev {
            Some(BodyEvent::Data(b)) => {
                sent += b.len() as u64;
                append_body(&mut out, &b, rechunk);
                if out.len() >= UP_READ {
                    c.send(&out, &mut clock).await.map_err(Fail::Send)?;
                    out.clear();
                }
            }
            Some(BodyEvent::End) => {
                if rechunk {
                    out.extend_from_slice(LAST_CHUNK);
                }
                c.send(&out, &mut clock).await.map_err(Fail::Send)?;
                return Ok((resp.status, sent, keep));
            }
            None => {
                // Send what we have before waiting on the control plane.
                if !out.is_empty() {
                    c.send(&out, &mut clock).await.map_err(Fail::Send)?;
                    out.clear();
                }
                let waited = Instant::now();
                let read = upstream_read(&mut up, &mut ubuf, &cfg).await;
                // Time spent waiting on the control plane is not the client's.
                if waited.elapsed() > Duration::from_millis(100) {
                    clock = SendClock::start(cfg.send_timeout);
                }
                match read {
                    Ok(0) => {
                        if dec.eof().is_err() {
                            return Err(Fail::Abort);
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return Err(Fail::Abort),
                }
            }
        }
    }
}

/// Reads the request body under the `body` stage: decoded bytes up to `max_request_body`, and
/// raw bytes (chunk framing included) up to twice that plus 64 KiB, so chunk extensions cannot
/// keep a connection in its body stage without end.
async fn read_body(
    c: &mut HttpConn,
    head: &RequestHead,
    cfg: &super::FrontConfig,
) -> Result<Vec<u8>, Fail> {
    let mut body = Vec::new();
    if head.body == BodyKind::None {
        return Ok(body);
    }
    if head.expects_continue() {
        let mut clock = SendClock::start(cfg.send_timeout);
        c.send(b"HTTP/1.1 100 Continue\r\n\r\n", &mut clock)
            .await
            .map_err(Fail::Send)?;
    }
    let raw_limit = cfg
        .max_request_body
        .saturating_mul(2)
        .saturating_add(64 * 1024);
    let mut raw = c.buf.len() as u64;
    let mut clock = StageClock::start(c.front.body_stage, Instant::now());
    let mut dec = BodyDecoder::new(head.body, BodyLimits::default());
    loop {
        match dec.decode(&mut c.buf) {
            Ok(Some(BodyEvent::Data(b))) => {
                if (body.len() + b.len()) as u64 > cfg.max_request_body {
                    return Err(Fail::Reply(413, "body_too_large"));
                }
                body.extend_from_slice(&b);
            }
            Ok(Some(BodyEvent::End)) => return Ok(body),
            Ok(None) => {
                let n = c.fill(&mut clock, "body", None).await.map_err(Fail::Read)?;
                raw += n as u64;
                if raw > raw_limit {
                    return Err(Fail::Reply(413, "body_too_large"));
                }
            }
            Err(e) => return Err(Fail::Reply(400, e.reason())),
        }
    }
}

/// One of the core's connections to the control plane: at most [`UPSTREAMS_PER_CORE`] at a
/// time, so that slow readers of API answers cannot take all of the control plane's.
struct UpstreamSlot(Rc<FrontCore>);

impl UpstreamSlot {
    fn take(front: &Rc<FrontCore>) -> Option<Self> {
        let n = front.upstreams.get();
        if n >= UPSTREAMS_PER_CORE {
            return None;
        }
        front.upstreams.set(n + 1);
        Some(Self(front.clone()))
    }
}

impl Drop for UpstreamSlot {
    fn drop(&mut self) {
        self.0
            .upstreams
            .set(self.0.upstreams.get().saturating_sub(1));
    }
}

/// The upstream body broke mid-response: send what is pending, then the connection ends (the
/// client sees a truncated body, which is all HTTP/1.1 allows).
async fn abort(c: &mut HttpConn, out: &[u8], clock: &mut SendClock) -> Fail {
    let _ = c.send(out, clock).await;
    Fail::Abort
}

fn append_body(out: &mut Vec<u8>, data: &Bytes, chunked: bool) {
    if data.is_empty() {
        return;
    }
    if chunked {
        let mut h = BytesMut::new();
        encode_chunk_header(data.len(), &mut h);
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.extend_from_slice(CHUNK_END);
    } else {
        out.extend_from_slice(data);
    }
}

async fn upstream_write(
    up: &mut UnixStream,
    data: Vec<u8>,
    cfg: &super::FrontConfig,
) -> Result<(), Fail> {
    match compio::time::timeout(cfg.upstream_timeout, up.write_all(data)).await {
        Ok(BufResult(Ok(()), _)) => Ok(()),
        _ => Err(Fail::Reply(502, "upstream_error")),
    }
}

/// One upstream read appended to `dst`; `Abort` on timeout.
async fn upstream_read(
    up: &mut UnixStream,
    dst: &mut BytesMut,
    cfg: &super::FrontConfig,
) -> Result<usize, Fail> {
    let buf = Vec::with_capacity(UP_READ);
    match compio::time::timeout(cfg.upstream_timeout, up.read(buf)).await {
        Ok(BufResult(Ok(n), buf)) => {
            dst.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        Ok(BufResult(Err(_), _)) => Err(Fail::Reply(502, "upstream_error")),
        Err(_) => Err(Fail::Abort),
    }
}
