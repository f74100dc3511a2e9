//! `/relay/webrelay.ashx`: the redirection relay (KVM, SOL, IDER), MPS's path and query
//! (`?p=2&host=<guid>&port=16994&tls=0&mode=kvm|sol|ider`), with the token from
//! `GET /api/v1/authorize/redirection/{guid}` in `Sec-WebSocket-Protocol`.
//!
//! Before the 101:
//! 1. the control plane's `relay.sock` spends the token for this device and mode (`AUTHORIZE`);
//!    the connection stays open for the session: the control plane holds the mode (one session
//!    per mode per device) until it closes, and audits the end;
//! 2. the device's tunnel opens an APF channel to the port, through the same hand-over as the
//!    channel service (a socket pair to the tunnel's core: the bytes cross cores in the kernel,
//!    never through the control plane).
//!
//! Then the browser's WebSocket frames and the channel's bytes are relayed both ways through
//! `rampart_redir_proto::Interceptor`, which replaces the browser's AuthenticateSession with a
//! digest the control plane computes (`DIGEST`, with the device's realm and nonce): the browser
//! never learns the AMT password, and what it sends as credentials never reaches the device. A
//! session type other than the authorised mode ends the session (1008). Each direction stops
//! reading its source while more than [`HIGH_WATER`] bytes wait for the other side. A session
//! must authenticate within [`HANDSHAKE_LIMIT`]; a silent browser is pinged after
//! [`PING_AFTER`] and dropped after [`IDLE_LIMIT`]; a device that takes nothing for the write
//! stall limit ends the session too.

use std::cell::{Cell, RefCell};
use std::future::pending;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::Path;
use std::pin::pin;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use compio::BufResult;
use compio::io::{AsyncRead, AsyncWriteExt};
use compio::net::UnixStream;
use futures_util::future::{join4, select};
use rampart_apf_proto::Guid;
use rampart_deadline::Timeout;
use rampart_http_proto::RequestHead;
use rampart_redir_proto::{Cnonce, Event as RedirEvent, Interceptor, Limits, SessionType};
use rampart_tls::duplex::{TlsReader, TlsWriter};
use rampart_ws_proto::{Decoder, DecoderLimits, Event as WsEvent, OpCode};
use tracing::{debug, info};

use super::{HttpConn, Reply, upgrade};
use crate::cira::channel::{ChannelRequest, OPEN_TIMEOUT, Signal};

/// The relay's path (MPS's).
pub(crate) const PATH: &str = "/relay/webrelay.ashx";
/// Bytes waiting for one side before the other side's reads pause.
const HIGH_WATER: usize = 256 * 1024;
/// Largest frame the browser may send (KVM input and IDER sectors are small; this is ample).
const MAX_FRAME: u64 = 1 << 20;
/// Largest frame we send: what we have, in frames of at most this.
const OUT_FRAME: usize = 16 * 1024;
/// How long the control plane gets to answer.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long closing the browser's side may take.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// From the 101 until the device has accepted the digest.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(60);
/// The browser is pinged after this much silence ...
const PING_AFTER: Duration = Duration::from_secs(30);
/// ... and the session ends after this much (three pings unanswered).
const IDLE_LIMIT: Duration = Duration::from_secs(100);
/// How often the watchdog looks.
const WATCH_TICK: Duration = Duration::from_secs(5);

/// Whether `token` has the shape `GET /authorize/redirection` gives (`rdr_` and 43 base64url
/// characters): anything else is refused without asking the control plane.
fn token_shape(token: &str) -> bool {
    token.strip_prefix("rdr_").is_some_and(|t| {
        t.len() == 43
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// A relay request that passed the checks that need no I/O. Its `Debug` leaves the token out.
pub(crate) struct Accepted {
    accept: String,
    token: String,
    guid: Guid,
    port: u32,
    mode: &'static str,
}

impl std::fmt::Debug for Accepted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accepted")
            .field("guid", &self.guid)
            .field("port", &self.port)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// Checks the upgrade request; the error is the answer to send.
pub(super) fn check(c: &HttpConn, head: &RequestHead) -> Result<Accepted, Reply> {
    let shared = &c.front.shared;
    if shared.cira.is_none() || shared.cfg.relay_socket.is_none() {
        return Err(Reply::error(503, "relay_unavailable"));
    }
    let accept = upgrade::handshake_accept(head)?;
    let query = head.target.split_once('?').map_or("", |(_, q)| q);
    let (mut host, mut port, mut mode, mut p, mut tls) = (None, None, None, None, None);
    for pair in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match k {
            "host" => &mut host,
            "port" => &mut port,
            "mode" => &mut mode,
            "p" => &mut p,
            "tls" => &mut tls,
            // MPS's clients send it; TLS inside the tunnel is not offered, so it means nothing.
            "tls1only" => continue,
            _ => return Err(Reply::error(400, "relay_query")),
        };
        if slot.replace(v).is_some() {
            return Err(Reply::error(400, "relay_query"));
        }
    }
    let guid = host
        .and_then(|h| h.parse::<Guid>().ok())
        .ok_or(Reply::error(400, "relay_query"))?;
    // Plain redirection only (MPS's `tls=0`), with the interceptor (`p=2`).
    let port = match port.unwrap_or("16994") {
        "16994" => 16994,
        _ => return Err(Reply::error(400, "relay_port")),
    };
    if !matches!(p, None | Some("2")) || !matches!(tls, None | Some("0")) {
        return Err(Reply::error(400, "relay_query"));
    }
    let mode = match mode {
        Some("kvm") => "kvm",
        Some("sol") => "sol",
        Some("ider") => "ider",
        _ => return Err(Reply::error(400, "relay_mode")),
    };
    // MPS's clients send the token as the only subprotocol.
    let token = head
        .headers
        .get("sec-websocket-protocol")
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(|v| v.split(',').next().unwrap_or("").trim().to_owned())
        .filter(|t| token_shape(t))
        .ok_or(Reply::error(401, "relay_token"))?;
    Ok(Accepted {
        accept,
        token,
        guid,
        port,
        mode,
    })
}

/// Authorises, opens the channel, answers 101 and relays until either side ends.
pub(super) async fn take_over(mut c: HttpConn, a: Accepted, head: &RequestHead, start: Instant) {
    match prepare(&c, &a).await {
        Ok((control, channel)) => {
            relay(c, a, head, start, control, channel).await;
        }
        Err(r) => {
            let status = r.status;
            let sent = c.reply(&r, false, false).await;
            c.log(Some(head), status, sent.unwrap_or(0), start, r.reason);
            c.close().await;
        }
    }
}

/// The control plane's authorisation, then the channel.
async fn prepare(c: &HttpConn, a: &Accepted) -> Result<(Control, UnixStream), Reply> {
    let shared = &c.front.shared;
    let (Some(cira), Some(path)) = (&shared.cira, &shared.cfg.relay_socket) else {
        return Err(Reply::error(503, "relay_unavailable"));
    };
    let mut control = Control::connect(path)
        .await
        .map_err(|_| Reply::error(503, "relay_unavailable"))?;
    let answer = control
        .ask(&format!(
            "AUTHORIZE {} {} {} {}\n",
            a.token,
            a.guid,
            a.mode,
            c.peer.ip()
        ))
        .await
        .map_err(|_| Reply::error(503, "relay_unavailable"))?;
    match answer.as_str() {
        "OK" => {}
        "ERR busy" => return Err(Reply::error(409, "relay_busy")),
        "ERR no_password" => return Err(Reply::error(409, "amt_password_missing")),
        "ERR throttled" => return Err(Reply::error(429, "relay_throttled")),
        _ => return Err(Reply::error(401, "relay_token")),
    }
    let live = cira
        .registry
        .get(&a.guid)
        .ok_or(Reply::error(404, "not_connected"))?;
    let (ours, theirs) =
        StdUnixStream::pair().map_err(|_| Reply::error(503, "relay_unavailable"))?;
    live.request(ChannelRequest {
        port: a.port,
        sock: theirs,
    })
    .map_err(|_| Reply::error(503, "relay_busy"))?;
    let mut channel =
        UnixStream::from_std(ours).map_err(|_| Reply::error(503, "relay_unavailable"))?;
    let line = compio::time::timeout(
        OPEN_TIMEOUT + Duration::from_secs(1),
        read_line(&mut channel),
    )
    .await
    .map_err(|_| Reply::error(504, "device_timeout"))?
    .map_err(|_| Reply::error(502, "channel_refused"))?;
    if line != "OK" {
        debug!(message = "Relay channel refused.", guid = %a.guid, answer = line);
        return Err(Reply::error(502, "channel_refused"));
    }
    Ok((control, channel))
}

/// The control plane's `relay.sock` connection for one session.
struct Control {
    sock: UnixStream,
}

impl Control {
    async fn connect(path: &Path) -> std::io::Result<Self> {
        Ok(Self {
            sock: UnixStream::connect(path).await?,
        })
    }

    /// Sends one request line and reads the answer line (without its newline).
    async fn ask(&mut self, line: &str) -> std::io::Result<String> {
        let sent = compio::time::timeout(CONTROL_TIMEOUT, self.sock.write_all(line.to_owned()))
            .await
            .map_err(|_| std::io::ErrorKind::TimedOut)?;
        sent.0?;
        compio::time::timeout(CONTROL_TIMEOUT, read_line(&mut self.sock))
            .await
            .map_err(|_| std::io::ErrorKind::TimedOut)?
    }
}

/// Reads one line of at most 512 bytes, one byte at a time (what follows is not ours).
async fn read_line(s: &mut UnixStream) -> std::io::Result<String> {
    let mut line = Vec::with_capacity(64);
    let mut byte = Vec::with_capacity(1);
    loop {
        byte.clear();
        let BufResult(r, b) = s.read(byte).await;
        byte = b;
        match (r?, byte.first()) {
            (0, _) | (_, None) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            (_, Some(b'\n')) => break,
            (_, Some(&b)) => line.push(b),
        }
        if line.len() > 512 {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
    }
    String::from_utf8(line).map_err(|_| std::io::ErrorKind::InvalidData.into())
}

/// One relay session's shared state (one core; no borrow across an await).
struct Session {
    icpt: RefCell<Interceptor>,
    mode: &'static str,
    to_device: RefCell<BytesMut>,
    device_ready: Signal,
    device_drained: Signal,
    to_browser: RefCell<BytesMut>,
    pongs: RefCell<Vec<Bytes>>,
    browser_ready: Signal,
    browser_drained: Signal,
    digest: RefCell<Option<rampart_redir_proto::DigestRequest>>,
    digest_ready: Signal,
    /// Set once the session ends: the close code to send the browser.
    end: Cell<Option<u16>>,
    /// When the browser last sent a frame (any, pongs included).
    last_heard: Cell<Instant>,
    /// A ping to send.
    ping: Cell<bool>,
}

impl Session {
    fn finish(&self, code: u16) {
        if self.end.get().is_none() {
            self.end.set(Some(code));
        }
        self.browser_ready.notify();
    }

    /// Acts on the interceptor's events; false if the session must end.
    fn pump(&self) -> bool {
        let mut icpt = self.icpt.borrow_mut();
        while let Some(ev) = icpt.poll_event() {
            match ev {
                RedirEvent::StartRequested(t) => {
                    let asked = match t {
                        SessionType::Kvm => "kvm",
                        SessionType::Sol => "sol",
                        SessionType::Ider => "ider",
                    };
                    if asked != self.mode {
                        // 1008: policy violation (the token was for another mode). The start
                        // message never reaches the device.
                        self.to_device.borrow_mut().clear();
                        self.finish(1008);
                        return false;
                    }
                }
                RedirEvent::NeedDigest(req) => {
                    *self.digest.borrow_mut() = Some(req);
                    self.digest_ready.notify();
                }
                RedirEvent::Authenticated | RedirEvent::AuthFailed { .. } => {
                    if icpt
                        .flush_to_device(&mut self.to_device.borrow_mut())
                        .is_err()
                    {
                        self.finish(1011);
                        return false;
                    }
                    self.device_ready.notify();
                }
                _ => {}
            }
        }
        true
    }
}

async fn relay(
    c: HttpConn,
    a: Accepted,
    head: &RequestHead,
    start: Instant,
    control: Control,
    channel: UnixStream,
) {
    let HttpConn {
        mut stream,
        buf,
        peer,
        ctx,
        front,
        ticket,
        ..
    } = c;
    let _ticket = ticket;
    // MPS's clients expect their token back as the chosen subprotocol.
    if !upgrade::switch(
        &mut stream,
        &front,
        &ctx,
        peer,
        head,
        start,
        &a.accept,
        &a.token,
    )
    .await
    {
        return;
    }
    let shared = &front.shared;
    shared
        .stats
        .relays
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    info!(message = "Redirection relay started.", guid = %a.guid, mode = a.mode, %peer);
    let mut cnonce = [0u8; 16];
    let _ = getrandom::fill(&mut cnonce);
    let s = Session {
        icpt: RefCell::new(Interceptor::new(
            Limits::default(),
            Cnonce::from_random(cnonce),
        )),
        mode: a.mode,
        to_device: RefCell::default(),
        device_ready: Signal::default(),
        device_drained: Signal::default(),
        to_browser: RefCell::default(),
        pongs: RefCell::default(),
        browser_ready: Signal::default(),
        browser_drained: Signal::default(),
        digest: RefCell::new(None),
        digest_ready: Signal::default(),
        end: Cell::new(None),
        last_heard: Cell::new(Instant::now()),
        ping: Cell::new(false),
    };
    let write_stall = ctx.limits.write_stall;
    let (mut reader, mut writer) = stream.into_duplex();
    let (ch_rd, ch_wr) = channel.into_split();
    let raw = BytesMut::from(&buf[..]);
    {
        let out = pin!(browser_out(&s, &mut writer));
        let rest = pin!(async {
            let drained = pin!(async {
                ctx.drain.signaled().await;
                s.finish(1001);
                pending::<()>().await;
            });
            let control = pin!(control_loop(&s, control));
            let watchdog = pin!(watchdog(&s));
            join4(
                browser_in(&s, &mut reader, raw),
                device_in(&s, ch_rd),
                device_out(&s, ch_wr, write_stall),
                select(control, select(drained, watchdog)),
            )
            .await;
        });
        let _ = select(out, rest).await;
    }
    writer.shutdown(CLOSE_GRACE).await;
    info!(message = "Redirection relay ended.", guid = %a.guid, mode = a.mode, %peer, code = s.end.get());
}

/// Browser → interceptor → device queue.
async fn browser_in(s: &Session, reader: &mut TlsReader, mut raw: BytesMut) {
    let mut dec = Decoder::new(DecoderLimits {
        max_frame: MAX_FRAME,
        require_mask: true,
    });
    loop {
        if !raw.is_empty() {
            s.last_heard.set(Instant::now());
        }
        loop {
            match dec.decode(&mut raw) {
                Ok(None) => break,
                Ok(Some(WsEvent::Data { bytes, .. })) => {
                    let r = s
                        .icpt
                        .borrow_mut()
                        .from_browser(&bytes, &mut s.to_device.borrow_mut());
                    if r.is_err() || !s.pump() {
                        s.finish(1008);
                        return pending().await;
                    }
                    s.device_ready.notify();
                }
                Ok(Some(WsEvent::Ping(p))) => {
                    let mut pongs = s.pongs.borrow_mut();
                    if pongs.len() >= 4 {
                        pongs.remove(0);
                    }
                    pongs.push(p);
                    s.browser_ready.notify();
                }
                Ok(Some(WsEvent::Pong(_))) => {}
                Ok(Some(WsEvent::Close { code, .. })) => {
                    s.finish(code.unwrap_or(1000));
                    return pending().await;
                }
                Err(e) => {
                    s.finish(e.close_code());
                    return pending().await;
                }
            }
        }
        while s.to_device.borrow().len() > HIGH_WATER && s.end.get().is_none() {
            s.device_drained.wait().await;
        }
        if s.end.get().is_some() {
            return pending().await;
        }
        match reader.read(&mut raw, None, Timeout::Stage("relay")).await {
            Ok(n) if n > 0 => {}
            _ => {
                s.finish(1000);
                return pending().await;
            }
        }
    }
}

/// Channel → interceptor → browser queue.
async fn device_in(s: &Session, mut rd: UnixStream) {
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        while s.to_browser.borrow().len() > HIGH_WATER && s.end.get().is_none() {
            s.browser_drained.wait().await;
        }
        if s.end.get().is_some() {
            return pending().await;
        }
        buf.clear();
        let BufResult(r, b) = rd.read(buf).await;
        buf = b;
        let n = match r {
            Ok(n) if n > 0 => n,
            // The device closed the channel, or the tunnel went.
            _ => {
                s.finish(1000);
                return pending().await;
            }
        };
        let r = s
            .icpt
            .borrow_mut()
            .from_device(&buf[..n], &mut s.to_browser.borrow_mut());
        if r.is_err() || !s.pump() {
            s.finish(1011);
            return pending().await;
        }
        s.browser_ready.notify();
        s.device_ready.notify();
    }
}

/// The device queue → channel; a device that takes nothing for `stall` ends the session.
async fn device_out(s: &Session, mut wr: UnixStream, stall: Duration) {
    loop {
        s.device_ready.wait().await;
        let data = s.to_device.borrow_mut().split();
        if data.is_empty() {
            continue;
        }
        let sent = compio::time::timeout(stall, wr.write_all(data.freeze())).await;
        if !matches!(sent, Ok(BufResult(Ok(()), _))) {
            s.finish(1011);
            return pending().await;
        }
        s.device_drained.notify();
    }
}

/// Ends a session that does not authenticate within [`HANDSHAKE_LIMIT`] or whose browser is
/// silent for [`IDLE_LIMIT`]; pings the browser after [`PING_AFTER`] of silence.
async fn watchdog(s: &Session) {
    let start = Instant::now();
    let mut pinged = start;
    loop {
        compio::time::sleep(WATCH_TICK).await;
        if !s.icpt.borrow().is_passthrough() && start.elapsed() >= HANDSHAKE_LIMIT {
            s.finish(1008);
            return pending().await;
        }
        let silent = s.last_heard.get().elapsed();
        if silent >= IDLE_LIMIT {
            s.finish(1001);
            return pending().await;
        }
        if silent >= PING_AFTER && pinged.elapsed() >= PING_AFTER {
            pinged = Instant::now();
            s.ping.set(true);
            s.browser_ready.notify();
        }
    }
}

/// The browser queue → WebSocket frames; ends the session with a Close frame.
async fn browser_out(s: &Session, writer: &mut TlsWriter) {
    let mut frames = BytesMut::new();
    loop {
        s.browser_ready.wait().await;
        for p in s.pongs.borrow_mut().drain(..) {
            rampart_ws_proto::encode_frame(&mut frames, OpCode::Pong, &p);
        }
        if s.ping.take() {
            rampart_ws_proto::encode_frame(&mut frames, OpCode::Ping, b"rampart");
        }
        let data = s.to_browser.borrow_mut().split();
        for chunk in data.chunks(OUT_FRAME) {
            rampart_ws_proto::encode_frame(&mut frames, OpCode::Binary, chunk);
        }
        let end = s.end.get();
        if let Some(code) = end {
            rampart_ws_proto::encode_close(&mut frames, code, "");
        }
        if !frames.is_empty() {
            let sent = match writer.stage(&frames) {
                Ok(()) => writer.flush().await,
                Err(e) => Err(e),
            };
            frames.clear();
            if sent.is_err() {
                return;
            }
        }
        s.browser_drained.notify();
        if end.is_some() {
            return;
        }
    }
}

/// Digest requests → the control plane → the interceptor.
async fn control_loop(s: &Session, mut control: Control) {
    loop {
        s.digest_ready.wait().await;
        let Some(req) = s.digest.borrow_mut().take() else {
            continue;
        };
        let hex = |t: &str| -> String { t.bytes().map(|b| format!("{b:02x}")).collect() };
        let answer = control
            .ask(&format!(
                "DIGEST {} {} {} {}\n",
                hex(&req.realm),
                hex(&req.nonce),
                req.cnonce,
                req.nc
            ))
            .await;
        let fields: Vec<&str> = answer.as_deref().unwrap_or("").split(' ').collect();
        let ["RESPONSE", _user, response] = fields.as_slice() else {
            s.finish(1011);
            return pending().await;
        };
        let response = (*response).to_owned();
        let r = s
            .icpt
            .borrow_mut()
            .digest_response(&response, &mut s.to_device.borrow_mut());
        if r.is_err() || !s.pump() {
            s.finish(1011);
            return pending().await;
        }
        s.device_ready.notify();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_tokens_reach_the_control_plane() {
        assert!(token_shape(&format!("rdr_{}", "A".repeat(43))));
        assert!(token_shape(
            "rdr_abcdefghijklmnopqrstuvwxyz-_0123456789ABCDE"
        ));
        for bad in [
            String::new(),
            "rdr_".to_owned(),
            format!("rdr_{}", "A".repeat(42)),
            format!("rdr_{}", "A".repeat(44)),
            format!("rdx_{}", "A".repeat(43)),
            format!("rdr_{}=", "A".repeat(42)),
            format!("rdr_{} ", "A".repeat(42)),
            format!("rdr_{}\n", "A".repeat(42)),
        ] {
            assert!(!token_shape(&bad), "{bad:?}");
        }
    }
}
