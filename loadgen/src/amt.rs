//! A simulated Intel AMT device: the CIRA client side of APF over TLS, with blocking sockets.
//!
//! It does what AMT firmware does when it dials its Management Presence Server: TLS, then
//! PROTOCOLVERSION with its GUID, `auth@amt.intel.com`, password authentication,
//! `pfwd@amt.intel.com`, one `tcpip-forward` per port, keepalives at the interval the server
//! asks for. Once forwarding, [`Device::serve`] answers what the server does: channel opens are
//! confirmed (with a 4 KiB window, as AMT's), channel data is echoed back within the server's
//! window, window adjusts are sent for what it consumed, and closes are answered.
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
        })
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
                self.channels.insert(
                    id,
                    Channel {
                        server_id: sender,
                        send_window: window,
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
                ch.pending.extend_from_slice(&data);
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
        if n == 0 {
            return Ok(());
        }
        let data: Vec<u8> = ch.pending.drain(..n).collect();
        ch.send_window -= n as u32;
        let recipient = ch.server_id;
        self.send(&Message::ChannelData {
            recipient,
            data: data.into(),
        })?;
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
