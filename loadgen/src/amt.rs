//! A simulated Intel AMT device: the CIRA client side of APF over TLS, with blocking sockets.
//!
//! It does what AMT firmware does when it dials its Management Presence Server: TLS, then
//! PROTOCOLVERSION with its GUID, `auth@amt.intel.com`, password authentication,
//! `pfwd@amt.intel.com`, one `tcpip-forward` per port, keepalives at the interval the server
//! asks for. Once forwarding, [`Device::handle`] answers what the server does: channel opens are
//! confirmed (with a 4 KiB window, as AMT's), channel data is echoed back within the server's
//! window (or, on port 16992 of a device [`Device::with_wsman`], answered by a small WS-MAN
//! service with AMT's digest challenge and chunked answers), window adjusts are sent for what it
//! consumed, and closes are answered.
//!
//! The integration tests drive it message by message (and byte by byte, for split input);
//! the `cira` load mode will run many of them.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::BytesMut;
use rampart_apf_proto::client::ClientDecoder;
use rampart_apf_proto::{AuthMethod, GlobalKind, Guid, Limits, Message};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

pub use crate::amt_sim::AmtState;

/// The window a simulated device grants per channel (AMT's LME uses 4096).
pub const DEVICE_WINDOW: u32 = 4096;

/// Who the device is.
#[derive(Debug, Clone)]
pub struct DeviceSpec {
    /// Its GUID (textual order).
    pub guid: Guid,
    /// Its MPS user name.
    pub username: String,
    /// Its MPS password.
    pub password: String,
    /// Ports it forwards (AMT: 16992 WS-MAN, 16994 redirection, ...).
    pub ports: Vec<u32>,
}

/// How the session setup ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setup {
    /// Forwarding; the server asked for keepalives at this interval (seconds), if it did.
    Forwarding {
        /// KEEPALIVE_OPTIONS_REQUEST's interval and timeout.
        keepalive: Option<(u32, u32)>,
    },
    /// The server sent DISCONNECT with this reason.
    Disconnected(u32),
    /// The server refused the password (USERAUTH_FAILURE).
    AuthFailed,
    /// The server closed the connection without a word.
    Closed,
}

/// One channel the server opened.
#[derive(Debug, Default)]
struct Channel {
    /// The server's id for it.
    server_id: u32,
    /// What we may still send.
    send_window: u32,
    /// Received, not yet acknowledged with a window adjust.
    unacked: u32,
    /// Data waiting for window.
    pending: Vec<u8>,
    /// On port 16992 of a device with AMT credentials: its WS-MAN service.
    wsman: Option<WsmanResponder>,
    /// On port 16994 of a device with AMT credentials: its redirection service.
    redir: Option<crate::amt_redir::RedirResponder>,
    /// Received bytes not yet taken by the WS-MAN service.
    rx: BytesMut,
    /// Close the channel once `pending` is sent (after a 401, as AMT does).
    close_after: bool,
}

/// A simulated device with one TLS connection.
#[derive(Debug)]
pub struct Device {
    tls: StreamOwned<ClientConnection, TcpStream>,
    dec: ClientDecoder,
    rx: BytesMut,
    spec: DeviceSpec,
    channels: HashMap<u32, Channel>,
    next_channel: u32,
    /// Data received on channels, by our channel id, for tests.
    pub received: HashMap<u32, Vec<u8>>,
    /// Messages received and not otherwise handled, oldest first.
    pub inbox: Vec<Message>,
    /// The AMT admin credentials of the WS-MAN service (see [`Device::with_wsman`]).
    amt: Option<(String, String)>,
    /// WS-MAN requests answered with 200, over every channel.
    pub wsman_served: u32,
    /// WS-MAN requests answered with a 401 challenge, over every channel.
    pub wsman_challenged: u32,
    /// The simulated AMT's state, shared by its WS-MAN channels.
    amt_state: AmtState,
}

impl Device {
    /// Opens TCP and TLS to `target`.
    pub fn connect(
        target: SocketAddr,
        tls: Arc<ClientConfig>,
        server_name: &str,
        spec: DeviceSpec,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let tcp = TcpStream::connect_timeout(&target, timeout).context("TCP connect")?;
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(timeout))?;
        tcp.set_write_timeout(Some(timeout))?;
        let name = ServerName::try_from(server_name.to_string()).context("server name")?;
        let conn = ClientConnection::new(tls, name)?;
        let mut tls = StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            tls.conn
                .complete_io(&mut tls.sock)
                .context("TLS handshake")?;
        }
        Ok(Self {
            tls,
            dec: ClientDecoder::new(Limits::default()),
            rx: BytesMut::new(),
            spec,
            channels: HashMap::new(),
            next_channel: 0x100,
            received: HashMap::new(),
            inbox: Vec::new(),
            amt: None,
            wsman_served: 0,
            wsman_challenged: 0,
            amt_state: AmtState::default(),
        })
    }

    /// Serves WS-MAN on channels to port 16992 with these AMT admin credentials (digest
    /// challenge first), instead of echoing.
    pub fn with_wsman(mut self, user: &str, password: &str) -> Self {
        self.amt = Some((user.to_string(), password.to_string()));
        self
    }

    /// The simulated AMT's state (power, redirection, consent, logs), as WS-MAN requests over
    /// any channel left it.
    pub fn amt_state(&self) -> &AmtState {
        &self.amt_state
    }

    /// The simulated AMT's state, to set up a scenario (e.g. a device that is off).
    pub fn amt_state_mut(&mut self) -> &mut AmtState {
        &mut self.amt_state
    }

    /// The encoded setup messages, in order: what a device sends before forwarding.
    pub fn setup_bytes(&mut self) -> Vec<u8> {
        let mut out = BytesMut::new();
        for m in self.setup_messages() {
            self.dec.encode(&m, &mut out);
        }
        out.to_vec()
    }

    fn setup_messages(&self) -> Vec<Message> {
        let mut v = vec![
            Message::ProtocolVersion {
                major: 1,
                minor: 0,
                trigger: 1,
                guid: self.spec.guid,
            },
            Message::ServiceRequest {
                service: "auth@amt.intel.com".into(),
            },
            Message::UserAuthRequest {
                username: self.spec.username.clone(),
                service: "pfwd@amt.intel.com".into(),
                method: AuthMethod::Password(self.spec.password.clone().into_bytes()),
            },
            Message::ServiceRequest {
                service: "pfwd@amt.intel.com".into(),
            },
        ];
        for &port in &self.spec.ports {
            v.push(Message::GlobalRequest {
                want_reply: true,
                kind: GlobalKind::TcpipForward {
                    address: String::new(),
                    port,
                },
            });
        }
        v
    }

    /// Sends raw bytes (for split and coalesced input, or garbage).
    pub fn send_raw(&mut self, data: &[u8]) -> io::Result<()> {
        self.tls.write_all(data)?;
        self.tls.flush()
    }

    /// Sends one message.
    pub fn send(&mut self, m: &Message) -> io::Result<()> {
        let mut out = BytesMut::new();
        self.dec.encode(m, &mut out);
        self.send_raw(&out)
    }

    /// The next message from the server within `timeout`; `Ok(None)` when the server closed.
    pub fn recv(&mut self, timeout: Duration) -> anyhow::Result<Option<Message>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(m) = self
                .dec
                .decode(&mut self.rx)
                .context("server sent bad APF")?
            {
                return Ok(Some(m));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("no message from the server within {timeout:?}");
            }
            self.tls.sock.set_read_timeout(Some(left))?;
            let mut chunk = [0u8; 16 * 1024];
            match self.tls.read(&mut chunk) {
                Ok(0) => return Ok(None),
                Ok(n) => self.rx.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    bail!("no message from the server within {timeout:?}")
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A reset or a TLS close without close_notify: the server is gone.
                Err(_) => return Ok(None),
            }
        }
    }

    /// Runs the whole setup, sending `chunk` bytes at a time (0: all at once, coalesced).
    pub fn setup(&mut self, chunk: usize, timeout: Duration) -> anyhow::Result<Setup> {
        let bytes = self.setup_bytes();
        if chunk == 0 {
            // A server may close half way; what it said is read below.
            let _ = self.send_raw(&bytes);
        } else {
            for piece in bytes.chunks(chunk) {
                if self.send_raw(piece).is_err() {
                    break;
                }
            }
        }
        self.await_setup(timeout)
    }

    /// Reads the server's answers to the setup until forwarding (one REQUEST_SUCCESS per port).
    pub fn await_setup(&mut self, timeout: Duration) -> anyhow::Result<Setup> {
        let mut forwarded = 0;
        let mut keepalive = None;
        let deadline = Instant::now() + timeout;
        while forwarded < self.spec.ports.len() || keepalive.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = match self.recv(left) {
                Ok(Some(m)) => m,
                Ok(None) => return Ok(Setup::Closed),
                // Forwarding without keepalive options is still forwarding.
                Err(_) if forwarded == self.spec.ports.len() => break,
                Err(e) => return Err(e),
            };
            match m {
                Message::ServiceAccept { .. } | Message::UserAuthSuccess => {}
                Message::UserAuthFailure { .. } => return Ok(Setup::AuthFailed),
                Message::Disconnect { reason } => return Ok(Setup::Disconnected(reason)),
                Message::RequestSuccess { .. } => forwarded += 1,
                Message::KeepaliveOptionsRequest { interval, timeout } => {
                    keepalive = Some((interval, timeout));
                    self.send(&Message::KeepaliveOptionsReply { interval, timeout })?;
                }
                other => self.inbox.push(other),
            }
        }
        Ok(Setup::Forwarding { keepalive })
    }

    /// Sends KEEPALIVE_REQUEST and waits for its reply (other messages are handled by
    /// [`Device::handle`]); returns the echoed cookie.
    pub fn keepalive(&mut self, cookie: u32, timeout: Duration) -> anyhow::Result<u32> {
        self.send(&Message::KeepaliveRequest { cookie })?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left)? {
                Some(Message::KeepaliveReply { cookie }) => return Ok(cookie),
                Some(m) => self.handle(m)?,
                None => bail!("the server closed instead of answering the keepalive"),
            }
        }
    }

    /// Answers what a server sends once forwarding: channel opens, data (echoed), window
    /// adjusts, closes, keepalive requests. Others go to [`Device::inbox`].
    pub fn handle(&mut self, m: Message) -> anyhow::Result<()> {
        match m {
            Message::ChannelOpen {
                sender,
                window,
                connected_port,
                ..
            } => {
                if !self.spec.ports.contains(&connected_port) {
                    return Ok(self.send(&Message::ChannelOpenFailure {
                        recipient: sender,
                        reason: 2,
                    })?);
                }
                let id = self.next_channel;
                self.next_channel += 1;
                let wsman = match (&self.amt, connected_port) {
                    // One nonce per device, as AMT keeps its nonce across connections: a
                    // client that learnt the challenge authenticates at once.
                    (Some((user, pw)), 16992) => Some(WsmanResponder::new(
                        &self.spec.guid,
                        user,
                        pw,
                        u64::from_le_bytes(self.spec.guid.0[..8].try_into().unwrap_or_default()),
                    )),
                    _ => None,
                };
                let redir = match (&self.amt, connected_port) {
                    (Some((user, pw)), 16994) => Some(crate::amt_redir::RedirResponder::new(
                        &self.spec.guid,
                        user,
                        pw,
                        u64::from(id),
                    )),
                    _ => None,
                };
                self.channels.insert(
                    id,
                    Channel {
                        server_id: sender,
                        send_window: window,
                        wsman,
                        redir,
                        ..Channel::default()
                    },
                );
                self.send(&Message::ChannelOpenConfirmation {
                    recipient: sender,
                    sender: id,
                    window: DEVICE_WINDOW,
                })?;
            }
            Message::ChannelData { recipient, data } => {
                let Some(ch) = self.channels.get_mut(&recipient) else {
                    return Ok(());
                };
                self.received
                    .entry(recipient)
                    .or_default()
                    .extend_from_slice(&data);
                ch.unacked += data.len() as u32;
                match ch.wsman.as_mut() {
                    Some(w) => {
                        ch.rx.extend_from_slice(&data);
                        let before = (w.served, w.challenged);
                        while let Some((reply, close)) =
                            w.feed_with(&mut ch.rx, &mut self.amt_state)?
                        {
                            ch.pending.extend_from_slice(&reply);
                            if close {
                                ch.close_after = true;
                                break;
                            }
                        }
                        self.wsman_served += w.served - before.0;
                        self.wsman_challenged += w.challenged - before.1;
                    }
                    None => match ch.redir.as_mut() {
                        Some(r) => {
                            ch.rx.extend_from_slice(&data);
                            let reply = r.feed(&mut ch.rx)?;
                            ch.pending.extend_from_slice(&reply);
                        }
                        None => ch.pending.extend_from_slice(&data),
                    },
                }
                let adjust = (ch.unacked >= DEVICE_WINDOW / 2).then(|| {
                    let n = ch.unacked;
                    ch.unacked = 0;
                    Message::WindowAdjust {
                        recipient: ch.server_id,
                        bytes: n,
                    }
                });
                if let Some(a) = adjust {
                    self.send(&a)?;
                }
                self.flush_channel(recipient)?;
            }
            Message::WindowAdjust { recipient, bytes } => {
                if let Some(ch) = self.channels.get_mut(&recipient) {
                    ch.send_window = ch.send_window.saturating_add(bytes);
                }
                self.flush_channel(recipient)?;
            }
            Message::ChannelClose { recipient } => {
                if let Some(ch) = self.channels.remove(&recipient) {
                    self.send(&Message::ChannelClose {
                        recipient: ch.server_id,
                    })?;
                }
            }
            Message::KeepaliveRequest { cookie } => {
                self.send(&Message::KeepaliveReply { cookie })?;
            }
            other => self.inbox.push(other),
        }
        Ok(())
    }

    /// Sends what the channel's window allows of its echo backlog.
    fn flush_channel(&mut self, id: u32) -> anyhow::Result<()> {
        let Some(ch) = self.channels.get_mut(&id) else {
            return Ok(());
        };
        let n = ch.pending.len().min(ch.send_window as usize);
        let recipient = ch.server_id;
        if n > 0 {
            let data: Vec<u8> = ch.pending.drain(..n).collect();
            ch.send_window -= n as u32;
            self.send(&Message::ChannelData {
                recipient,
                data: data.into(),
            })?;
        }
        let done = self
            .channels
            .get(&id)
            .is_some_and(|ch| ch.close_after && ch.pending.is_empty());
        if done {
            self.send(&Message::ChannelClose { recipient })?;
        }
        Ok(())
    }

    /// Handles server messages until `timeout` passes or the server closes; returns the
    /// DISCONNECT reason if one came, and whether the connection closed.
    pub fn serve_for(&mut self, timeout: Duration) -> anyhow::Result<(Option<u32>, bool)> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok((None, false));
            }
            match self.recv(left) {
                Ok(Some(Message::Disconnect { reason })) => {
                    let closed = matches!(self.recv(Duration::from_secs(2)), Ok(None) | Err(_));
                    return Ok((Some(reason), closed));
                }
                Ok(Some(m)) => self.handle(m)?,
                Ok(None) => return Ok((None, true)),
                Err(_) => return Ok((None, false)),
            }
        }
    }

    /// The device's spec.
    pub fn spec(&self) -> &DeviceSpec {
        &self.spec
    }
}

/// The device's WS-MAN service on port 16992, as far as a simulator needs it: HTTP/1.1 requests
/// to `POST /wsman` with digest authentication (a 401 with a challenge and `Connection: close`
/// first, as AMT answers), then the SOAP answer of a small AMT ([`AmtState`]: Get, Put,
/// Enumerate/Pull, the methods behind MPS's routes, AMT's faults) chunked in small chunks, as
/// AMT sends them.
#[derive(Debug)]
pub struct WsmanResponder {
    realm: String,
    nonce: String,
    user: String,
    password: Vec<u8>,
    parser: rampart_http_proto::RequestParser,
    head: Option<rampart_http_proto::RequestHead>,
    body: Option<rampart_http_proto::BodyDecoder>,
    got: Vec<u8>,
    /// Requests answered with 200.
    pub served: u32,
    /// Requests answered with 401.
    pub challenged: u32,
    /// Authorised requests answered with a SOAP fault (HTTP 400).
    pub faults: u32,
    /// The device state [`WsmanResponder::feed`] uses (a [`Device`] passes its own, shared by
    /// its channels, to [`WsmanResponder::feed_with`]).
    pub state: AmtState,
}

impl WsmanResponder {
    /// A responder for a device with AMT `user`/`password`; `seed` makes the nonce.
    pub fn new(guid: &Guid, user: &str, password: &str, seed: u64) -> Self {
        Self {
            realm: format!(
                "Digest:{}",
                guid.to_string().replace('-', "").to_uppercase()
            ),
            nonce: format!("{seed:016x}{:016x}", seed.rotate_left(17) ^ 0x5a5a_5a5a),
            user: user.to_string(),
            password: password.as_bytes().to_vec(),
            parser: rampart_http_proto::RequestParser::new(rampart_http_proto::Limits::default()),
            head: None,
            body: None,
            got: Vec::new(),
            served: 0,
            challenged: 0,
            faults: 0,
            state: AmtState::default(),
        }
    }

    /// Feeds channel data; returns the answer bytes once a request is complete, and whether the
    /// channel should close after them. Uses [`WsmanResponder::state`].
    pub fn feed(&mut self, buf: &mut BytesMut) -> anyhow::Result<Option<(Vec<u8>, bool)>> {
        let mut state = std::mem::take(&mut self.state);
        let r = self.feed_with(buf, &mut state);
        self.state = state;
        r
    }

    /// [`WsmanResponder::feed`] against a device state kept elsewhere.
    pub fn feed_with(
        &mut self,
        buf: &mut BytesMut,
        state: &mut AmtState,
    ) -> anyhow::Result<Option<(Vec<u8>, bool)>> {
        use rampart_http_proto::{BodyDecoder, BodyEvent, BodyLimits};
        if self.head.is_none() {
            let Some((head, used)) = self
                .parser
                .parse(buf)
                .map_err(|e| anyhow::anyhow!("bad request: {}", e.reason()))?
            else {
                return Ok(None);
            };
            let _ = buf.split_to(used);
            self.body = Some(BodyDecoder::new(head.body, BodyLimits::default()));
            self.head = Some(head);
            self.got.clear();
        }
        let Some(dec) = self.body.as_mut() else {
            return Ok(None);
        };
        loop {
            match dec
                .decode(buf)
                .map_err(|e| anyhow::anyhow!("bad body: {}", e.reason()))?
            {
                Some(BodyEvent::Data(d)) => self.got.extend_from_slice(&d),
                Some(BodyEvent::End) => break,
                None => return Ok(None),
            }
        }
        let Some(head) = self.head.take() else {
            return Ok(None);
        };
        self.body = None;
        self.parser.reset();
        Ok(Some(self.answer(&head, state)))
    }

    fn answer(
        &mut self,
        head: &rampart_http_proto::RequestHead,
        state: &mut AmtState,
    ) -> (Vec<u8>, bool) {
        let authorized = head.method == "POST"
            && head.path() == "/wsman"
            && head.headers.get_str("authorization").is_some_and(|a| {
                a.contains(&format!("username=\"{}\"", self.user))
                    && rampart_wsman::digest::verify(
                        a,
                        &self.realm,
                        &self.nonce,
                        &self.password,
                        "POST",
                    )
            });
        if !authorized {
            self.challenged += 1;
            let page = "<html><head></head><body>Unauthorized</body></html>";
            let out = format!(
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"{}\", \
                 nonce=\"{}\",stale=\"false\",qop=\"auth\"\r\nContent-Type: text/html\r\n\
                 Server: Intel(R) Active Management Technology (simulated)\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{page}",
                self.realm,
                self.nonce,
                page.len()
            );
            return (out.into_bytes(), true);
        }
        let (status, xml) = state.answer(&self.got);
        let reason = if status == 200 {
            self.served += 1;
            "OK"
        } else {
            self.faults += 1;
            "Bad Request"
        };
        let mut out = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/soap+xml; charset=UTF-8\r\n\
             Transfer-Encoding: chunked\r\n\r\n"
        )
        .into_bytes();
        // AMT's chunks: four hex digits, the XML cut anywhere.
        for piece in xml.as_bytes().chunks(37) {
            out.extend_from_slice(format!("{:04x}\r\n", piece.len()).as_bytes());
            out.extend_from_slice(piece);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_wsman::amt::{AmtError, Operation, Request, UserConsent};
    use rampart_wsman::{Call, DigestClient, Next};
    use serde_json::{Value, json};

    const PW: &[u8] = b"P@ssw0rd";

    /// The control plane's WS-MAN client against the simulated device's responder, in memory.
    #[test]
    fn digest_retry_then_chunked_answer() {
        let guid: Guid = "12345678-9abc-def0-1122-334455667788".parse().unwrap();
        let mut dev = WsmanResponder::new(&guid, "admin", "P@ssw0rd", 7);
        let mut digest = DigestClient::new();
        let mut op = Operation::new(Request::GeneralSettings, &format!("{guid}:16992"));
        let body = op.next_request("uuid:1").unwrap();
        let mut call = Call::new(format!("{guid}:16992"), body);
        let mut wire = BytesMut::from(&call.request(&mut digest, "admin", PW, "c1")[..]);
        let mut answers = 0;
        let done = loop {
            let (reply, close) = dev.feed(&mut wire).unwrap().expect("a whole request");
            answers += 1;
            let mut rx = BytesMut::from(&reply[..]);
            let resp = call.on_data(&mut rx).unwrap().expect("a whole response");
            match call.after(resp, &mut digest, "admin", PW, "c2").unwrap() {
                Next::Done(r) => break r,
                Next::Retry(bytes) => {
                    assert!(close, "AMT closes after a 401");
                    wire = BytesMut::from(&bytes[..]);
                }
            }
        };
        assert_eq!(answers, 2);
        assert_eq!(done.status, 200);
        let xml = String::from_utf8(done.body.clone()).unwrap();
        assert!(xml.contains("<g:AMT_GeneralSettings>"), "{xml}");
        assert!(xml.contains("<b:RelatesTo>uuid:1</b:RelatesTo>"), "{xml}");
        op.on_response(done.status, &done.body).unwrap();
        assert_eq!(op.finish().unwrap()["Body"]["HostName"], "sim-device");
        assert_eq!((dev.challenged, dev.served), (1, 1));
        // The next call reuses the challenge: no 401, the nonce count moves on; an unknown
        // resource is AMT's fault, with HTTP 400.
        let mut call = Call::new(format!("{guid}:16992"), b"<x/>".to_vec());
        let mut wire = BytesMut::from(&call.request(&mut digest, "admin", PW, "c3")[..]);
        let (reply, _) = dev.feed(&mut wire).unwrap().unwrap();
        let resp = call
            .on_data(&mut BytesMut::from(&reply[..]))
            .unwrap()
            .unwrap();
        assert_eq!(resp.status, 400);
        assert!(String::from_utf8_lossy(&resp.body).contains("DestinationUnreachable"));
        assert_eq!((dev.challenged, dev.served, dev.faults), (1, 1, 1));
        // A wrong password is refused.
        let mut bad = DigestClient::new();
        let mut call = Call::new("h", Vec::new());
        let mut wire = BytesMut::from(&call.request(&mut bad, "admin", b"nope", "c")[..]);
        let (reply, _) = dev.feed(&mut wire).unwrap().unwrap();
        let resp = call
            .on_data(&mut BytesMut::from(&reply[..]))
            .unwrap()
            .unwrap();
        let Ok(Next::Retry(again)) = call.after(resp, &mut bad, "admin", b"nope", "c") else {
            panic!("expected a retry");
        };
        let (reply, _) = dev.feed(&mut BytesMut::from(&again[..])).unwrap().unwrap();
        let resp = call
            .on_data(&mut BytesMut::from(&reply[..]))
            .unwrap()
            .unwrap();
        assert_eq!(
            call.after(resp, &mut bad, "admin", b"nope", "c"),
            Err(rampart_wsman::CallError::Unauthorized)
        );
    }

    /// Runs one route's operation against the responder: every exchange through `Call` and
    /// the digest client, the answer fed back byte by byte.
    fn run(
        dev: &mut WsmanResponder,
        digest: &mut DigestClient,
        req: Request,
    ) -> Result<Value, AmtError> {
        req.validate()?;
        let mut op = Operation::new(req, "12345678-9abc-def0-1122-334455667788:16992");
        let mut n = 0;
        while let Some(body) = op.next_request(&format!("uuid:{n}")) {
            n += 1;
            let mut call = Call::new(op.host(), body);
            let mut wire = BytesMut::from(&call.request(digest, "admin", PW, "cn")[..]);
            let resp = loop {
                let (reply, _) = dev.feed(&mut wire).unwrap().expect("a whole request");
                let mut rx = BytesMut::new();
                let mut resp = None;
                for b in reply {
                    rx.extend_from_slice(&[b]);
                    if let Some(r) = call.on_data(&mut rx).unwrap() {
                        resp = Some(r);
                    }
                }
                match call.after(resp.expect("a whole response"), digest, "admin", PW, "cn") {
                    Ok(Next::Done(r)) => break r,
                    Ok(Next::Retry(b)) => wire = BytesMut::from(&b[..]),
                    Err(e) => panic!("{e}"),
                }
            };
            op.on_response(resp.status, &resp.body)?;
        }
        op.finish()
    }

    #[test]
    fn every_route_against_the_simulated_device() {
        let guid: Guid = "12345678-9abc-def0-1122-334455667788".parse().unwrap();
        let mut dev = WsmanResponder::new(&guid, "admin", "P@ssw0rd", 9);
        let mut d = DigestClient::new();

        // Version: CIM_SoftwareIdentity comes over two Pulls.
        let v = run(&mut dev, &mut d, Request::Version).unwrap();
        let ids = v["CIM_SoftwareIdentity"]["responses"].as_array().unwrap();
        assert_eq!(ids.len(), 11);
        assert!(
            ids.iter()
                .any(|i| i["InstanceID"] == "AMT" && i["VersionString"] == "16.1.25")
        );
        assert_eq!(
            v["AMT_SetupAndConfigurationService"]["response"]["ProvisioningMode"],
            1
        );

        let v = run(&mut dev, &mut d, Request::GeneralSettings).unwrap();
        assert_eq!(
            v["Body"]["DigestRealm"],
            "Digest:A3829B3827DE4D33D4449B366831FD01"
        );

        let v = run(&mut dev, &mut d, Request::HardwareInfo).unwrap();
        assert_eq!(v["CIM_Chassis"]["response"]["SerialNumber"], "SIM0001");
        assert_eq!(v["CIM_BIOSElement"]["response"]["Version"], "1.2.3");
        assert_eq!(
            v["CIM_PhysicalMemory"]["responses"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            v["CIM_MediaAccessDevice"]["responses"][0]["Capabilities"],
            json!([4, 10])
        );
        assert_eq!(
            v["CIM_SystemPackaging"]["responses"][0]["PlatformGUID"],
            "4C4C4544004D4410804C3CC04F345732"
        );
        assert_eq!(
            v["CIM_PhysicalPackage"]["responses"][0]["Model"],
            "SIM-BOARD"
        );

        let v = run(&mut dev, &mut d, Request::PowerCapabilities).unwrap();
        assert_eq!(v["Power up to BIOS"], 100);
        assert_eq!(v["Sleep"], 4);
        assert!(v.get("Power on to diagnostic").is_none());

        // Power: on, then off through power/action, which power/state then reports.
        assert_eq!(
            run(&mut dev, &mut d, Request::PowerState).unwrap(),
            json!({ "powerstate": 2, "OSPowerSavingState": 2 })
        );
        let v = run(&mut dev, &mut d, Request::PowerAction { action: 8 }).unwrap();
        assert_eq!(
            v["Body"],
            json!({ "ReturnValue": 0, "ReturnValueStr": "SUCCESS" })
        );
        assert_eq!(dev.state.power_state, 8);
        assert_eq!(
            run(&mut dev, &mut d, Request::PowerState).unwrap()["powerstate"],
            8
        );
        // A reset of a device that is off is refused by the device, reported, not an error.
        let v = run(&mut dev, &mut d, Request::PowerAction { action: 10 }).unwrap();
        assert_eq!(v["Body"]["ReturnValue"], 2);
        assert_eq!(v["Body"]["ReturnValueStr"], "NOT_READY");
        assert_eq!(dev.state.power_state, 8);
        // Boot to PXE with SOL: boot settings written, source set, powered up.
        let v = run(
            &mut dev,
            &mut d,
            Request::BootOptions {
                action: 401,
                use_sol: true,
            },
        )
        .unwrap();
        assert_eq!(v["Body"]["ReturnValue"], 0);
        assert_eq!(dev.state.power_state, 2);
        assert_eq!(
            dev.state.boot_source.as_deref(),
            Some("Intel(r) AMT: Force PXE Boot")
        );
        assert_eq!(dev.state.boot_settings["UseSOL"], "true");
        // OS power saving.
        let v = run(&mut dev, &mut d, Request::PowerAction { action: 501 }).unwrap();
        assert_eq!(v["Body"]["ReturnValueStr"], "COMPLETED_WITH_NO_ERROR");
        assert_eq!(dev.state.os_power_saving_state, 3);
        assert!(matches!(
            run(&mut dev, &mut d, Request::PowerAction { action: 9 }),
            Err(AmtError::InvalidArgument(_))
        ));

        // Features: set, then get shows it.
        let v = run(&mut dev, &mut d, Request::FeaturesGet).unwrap();
        assert_eq!(
            v,
            json!({
                "userConsent": "kvm", "redirection": true, "KVM": true, "SOL": true,
                "IDER": true, "optInState": 0, "kvmAvailable": true, "ocr": false,
                "httpsBootSupported": true, "winREBootSupported": false,
                "localPBABootSupported": false, "remoteErase": false,
            })
        );
        let set = Request::FeaturesSet {
            user_consent: UserConsent::All,
            enable_sol: false,
            enable_ider: true,
            enable_kvm: false,
            ocr: Some(true),
        };
        assert_eq!(
            run(&mut dev, &mut d, set).unwrap(),
            json!({ "status": "Updated AMT Features" })
        );
        assert!(!dev.state.sol && dev.state.ider && !dev.state.kvm && dev.state.ocr);
        assert_eq!(dev.state.opt_in_required, u32::MAX);
        let v = run(&mut dev, &mut d, Request::FeaturesGet).unwrap();
        assert_eq!(
            (
                &v["userConsent"],
                &v["SOL"],
                &v["IDER"],
                &v["KVM"],
                &v["ocr"],
                &v["redirection"]
            ),
            (
                &json!("all"),
                &json!(false),
                &json!(true),
                &json!(false),
                &json!(true),
                &json!(true)
            )
        );
        // Everything off: the listener goes too.
        let off = Request::FeaturesSet {
            user_consent: UserConsent::None,
            enable_sol: false,
            enable_ider: false,
            enable_kvm: false,
            ocr: None,
        };
        run(&mut dev, &mut d, off).unwrap();
        let v = run(&mut dev, &mut d, Request::FeaturesGet).unwrap();
        assert_eq!(
            (&v["redirection"], &v["userConsent"]),
            (&json!(false), &json!("none"))
        );

        // Logs: the power actions above were audited; newest first.
        let v = run(&mut dev, &mut d, Request::AuditLog { start_index: 0 }).unwrap();
        assert_eq!(v["totalCnt"], dev.state.audit_log.len());
        let recs = v["records"].as_array().unwrap();
        assert_eq!(recs[0]["Event"], "Performed Power Up");
        assert_eq!(recs[0]["Initiator"], "admin");
        assert_eq!(recs.last().unwrap()["Event"], "Provisioning Completed");
        let v = run(&mut dev, &mut d, Request::EventLog).unwrap();
        let evs = v.as_array().unwrap();
        assert_eq!(evs.len(), 3);
        assert_eq!(
            evs[2]["Desc"],
            "System firmware started (at least one CPU is properly executing)."
        );
        // One digest challenge for the whole session; every exchange after it authenticated.
        assert_eq!(dev.challenged, 1);
        assert_eq!(dev.faults, 0);
    }
}
