//! The server-side session: a strict state machine over one CIRA connection's plaintext.
//!
//! Order enforced (reference §1.4; the reference servers check none of it):
//!
//! ```text
//! AwaitVersion       PROTOCOLVERSION (major 1)           → Event::Version, pause
//! AwaitDecision      caller: accept_device() | reject()
//! AwaitAuthService   SERVICE_REQUEST auth@amt.intel.com  → SERVICE_ACCEPT
//! AwaitAuth          USERAUTH_REQUEST password           → Event::Auth, pause
//!                    (method none/other                  → USERAUTH_FAILURE, stay)
//! AwaitAuthDecision  caller: auth_result(ok)             → USERAUTH_SUCCESS | FAILURE+DISCONNECT
//! AwaitPfwdService   SERVICE_REQUEST pfwd@amt.intel.com  → SERVICE_ACCEPT
//! Forwarding         GLOBAL_REQUEST, channels, keepalives
//! ```
//!
//! While paused for the caller nothing more from the device is processed: its bytes stay
//! buffered (up to one maximal message, [`crate::Limits::max_message_len`], beyond which the
//! session ends with a protocol error). So after [`ServerSession::reject`] no later message
//! (a USERAUTH_REQUEST already in the same read, say) is ever looked at.
//!
//! Anything else ends the session: DISCONNECT is queued (PROTOCOL_ERROR, or
//! SERVICE_NOT_AVAILABLE for an unknown service, PROTOCOL_VERSION_NOT_SUPPORTED for major
//! version ≠ 1) and [`Event::Closed`] is raised, always exactly once and always last.
//!
//! Authentication: one password attempt. A wrong password is answered with
//! USERAUTH_FAILURE("password") followed by DISCONNECT(NO_MORE_AUTH_METHODS_AVAILABLE). A
//! request with method `none` (or any other non-password method) never authenticates: the
//! session answers USERAUTH_FAILURE("password") itself, raises no event and waits for the
//! password request; after [`MAX_NON_PASSWORD_AUTH`] of them it disconnects with
//! NO_MORE_AUTH_METHODS_AVAILABLE.
//!
//! Deadlines: the idle deadline ([`SessionConfig::idle_timeout`] after the last complete
//! message received) and, until the tunnel is up ([`Event::Established`]), the handshake
//! deadline ([`SessionConfig::handshake_timeout`] after [`ServerSession::new`]), so that a
//! device that only sends keepalives cannot hold a connection unauthenticated. Both end the
//! session with DISCONNECT(CONNECTION_TIMED_OUT).
//!
//! Channels (reference §1.6): every channel ends with exactly one [`Event::ChannelOpenFailed`]
//! or [`Event::ChannelClosed`] (unless the whole session closes first). A channel closed
//! locally gets no [`Event::ChannelOpened`] and no more [`Event::ChannelData`]; it stays
//! (counting towards [`SessionConfig::max_channels`]) until the device's CHANNEL_CLOSE.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::encode::encode_channel_data;
use crate::{AuthMethod, GlobalKind, Guid, Limits, Message, decode, encode, names, reason};

/// How many USERAUTH_REQUESTs with a method other than `password` a device may send before the
/// session disconnects with NO_MORE_AUTH_METHODS_AVAILABLE.
pub const MAX_NON_PASSWORD_AUTH: u32 = 3;

/// The first channel id the server allocates (as MPS does).
pub const FIRST_CHANNEL_ID: u32 = 4;

/// Session settings. Every default is documented on its field.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Decoder limits; `max_data` also caps each CHANNEL_DATA we send. Default
    /// [`Limits::default`].
    pub limits: Limits,
    /// The keepalive interval asked of the device in KEEPALIVE_OPTIONS_REQUEST (whole
    /// seconds). Default 30 s.
    pub keepalive_interval: Duration,
    /// Silence after which the session ends; also sent as the timeout in
    /// KEEPALIVE_OPTIONS_REQUEST (whole seconds). Default 90 s, three intervals.
    pub idle_timeout: Duration,
    /// Time from [`ServerSession::new`] until the tunnel must be up (first accepted
    /// tcpip-forward), including the caller's allowlist and credential decisions. Default 30 s.
    pub handshake_timeout: Duration,
    /// Our receive window per channel, announced in CHANNEL_OPEN. Must be at least 1.
    /// Default 81920 (the current MPS default).
    pub our_window: u32,
    /// Channels per session, including those still opening or closing. Default 16.
    pub max_channels: usize,
    /// Forwarded ports per session; one more is a protocol error. Default 16.
    pub max_forwards: usize,
    /// Bytes per channel waiting for the device's window; [`ServerSession::send`] refuses more.
    /// Default 1 MiB.
    pub max_pending_send: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            keepalive_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
            handshake_timeout: Duration::from_secs(30),
            our_window: 81920,
            max_channels: 16,
            max_forwards: 16,
            max_pending_send: 1 << 20,
        }
    }
}

/// Where the session is (see the module docs for the order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Waiting for PROTOCOLVERSION.
    AwaitVersion,
    /// [`Event::Version`] raised; waiting for [`ServerSession::accept_device`] or
    /// [`ServerSession::reject`].
    AwaitDecision,
    /// Waiting for SERVICE_REQUEST `auth@amt.intel.com`.
    AwaitAuthService,
    /// Waiting for USERAUTH_REQUEST.
    AwaitAuth,
    /// [`Event::Auth`] raised; waiting for [`ServerSession::auth_result`].
    AwaitAuthDecision,
    /// Waiting for SERVICE_REQUEST `pfwd@amt.intel.com`.
    AwaitPfwdService,
    /// Port forwarding: global requests, keepalives and channels.
    Forwarding,
    /// Ended; [`Event::Closed`] has been raised.
    Closed,
}

/// A channel, by our channel id (the one the device addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(pub u32);

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Something the caller must act on or know about.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// PROTOCOLVERSION arrived. The caller checks the allowlist and calls
    /// [`ServerSession::accept_device`] or [`ServerSession::reject`]. Nothing else from the
    /// device is processed until then (bytes stay buffered).
    Version {
        /// Major version (always 1 here: others are refused).
        major: u32,
        /// Minor version.
        minor: u32,
        /// Trigger reason.
        trigger: u32,
        /// The device GUID.
        guid: Guid,
    },
    /// USERAUTH_REQUEST with method password. The caller verifies (constant-time) and calls
    /// [`ServerSession::auth_result`]. Method `none` or another: the session itself answers
    /// USERAUTH_FAILURE and this event is not raised (`none` never authenticates). The
    /// password is redacted from `Debug`.
    Auth {
        /// The user name.
        username: String,
        /// The password.
        password: Vec<u8>,
    },
    /// `pfwd` accepted and the first tcpip-forward too: the tunnel is up. Raised once, with
    /// the forwarded ports so far (the first one); later ports come as [`Event::Forward`].
    Established {
        /// The forwarded ports.
        ports: Vec<u32>,
    },
    /// A further port is forwarded (not raised for the first, which [`Event::Established`]
    /// carries, nor for a repeated one).
    Forward {
        /// The port.
        port: u32,
    },
    /// A forwarded port was withdrawn.
    Unforward {
        /// The port.
        port: u32,
    },
    /// KEEPALIVE_OPTIONS_REPLY: what the device will use.
    KeepaliveOptions {
        /// Interval in seconds.
        interval: u32,
        /// Timeout in seconds.
        timeout: u32,
    },
    /// The device confirmed a channel we opened.
    ChannelOpened {
        /// The channel.
        id: ChannelId,
    },
    /// The device refused a channel we opened; the channel is gone.
    ChannelOpenFailed {
        /// The channel.
        id: ChannelId,
        /// An `OPEN_*` [`crate::reason`] code.
        reason: u32,
    },
    /// Data from the device. Report it with [`ServerSession::consumed`] once processed, or the
    /// device's window runs dry.
    ChannelData {
        /// The channel.
        id: ChannelId,
        /// The payload (never empty).
        data: Bytes,
    },
    /// The device closed a channel (answering ours, or on its own); the channel is gone.
    ChannelClosed {
        /// The channel.
        id: ChannelId,
    },
    /// The device sent DISCONNECT, or the session ended itself (idle or handshake timeout,
    /// protocol error with DISCONNECT(PROTOCOL_ERROR) queued first, or a caller decision).
    /// After this the caller flushes [`ServerSession::poll_transmit`] and closes the socket.
    Closed {
        /// Why.
        reason: CloseReason,
    },
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Version {
                major,
                minor,
                trigger,
                guid,
            } => f
                .debug_struct("Version")
                .field("major", major)
                .field("minor", minor)
                .field("trigger", trigger)
                .field("guid", guid)
                .finish(),
            Self::Auth { username, .. } => f
                .debug_struct("Auth")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Self::Established { ports } => {
                f.debug_struct("Established").field("ports", ports).finish()
            }
            Self::Forward { port } => f.debug_struct("Forward").field("port", port).finish(),
            Self::Unforward { port } => f.debug_struct("Unforward").field("port", port).finish(),
            Self::KeepaliveOptions { interval, timeout } => f
                .debug_struct("KeepaliveOptions")
                .field("interval", interval)
                .field("timeout", timeout)
                .finish(),
            Self::ChannelOpened { id } => f.debug_struct("ChannelOpened").field("id", id).finish(),
            Self::ChannelOpenFailed { id, reason } => f
                .debug_struct("ChannelOpenFailed")
                .field("id", id)
                .field("reason", reason)
                .finish(),
            Self::ChannelData { id, data } => f
                .debug_struct("ChannelData")
                .field("id", id)
                .field("data", data)
                .finish(),
            Self::ChannelClosed { id } => f.debug_struct("ChannelClosed").field("id", id).finish(),
            Self::Closed { reason } => f.debug_struct("Closed").field("reason", reason).finish(),
        }
    }
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The device sent DISCONNECT with this reason.
    PeerDisconnect(u32),
    /// Nothing received for [`SessionConfig::idle_timeout`].
    IdleTimeout,
    /// The tunnel was not up within [`SessionConfig::handshake_timeout`].
    HandshakeTimeout,
    /// A protocol violation; the stable snake_case label (a [`crate::DecodeError::reason`] or
    /// a session rule such as `out_of_order`, `window_exceeded`, `unknown_service`).
    Protocol(String),
    /// [`ServerSession::reject`] with this reason.
    Rejected(u32),
    /// The password was refused ([`ServerSession::auth_result`] with `false`), or too many
    /// requests with another method.
    AuthFailed,
    /// [`ServerSession::disconnect`] with this reason.
    Local(u32),
}

impl CloseReason {
    /// A stable snake_case label for counters: `peer_disconnect`, `idle_timeout`,
    /// `handshake_timeout`, `protocol`, `rejected`, `auth_failed`, `local`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::PeerDisconnect(_) => "peer_disconnect",
            Self::IdleTimeout => "idle_timeout",
            Self::HandshakeTimeout => "handshake_timeout",
            Self::Protocol(_) => "protocol",
            Self::Rejected(_) => "rejected",
            Self::AuthFailed => "auth_failed",
            Self::Local(_) => "local",
        }
    }
}

/// Why a channel operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// The session is not in [`State::Forwarding`] (not yet, or closed).
    #[error("session is not forwarding")]
    NotForwarding,
    /// The device does not forward this port.
    #[error("port {0} is not forwarded")]
    PortNotForwarded(u32),
    /// [`SessionConfig::max_channels`] channels exist.
    #[error("too many channels")]
    TooManyChannels,
    /// No such channel (never opened, or already gone).
    #[error("unknown channel")]
    UnknownChannel,
    /// The channel is being closed.
    #[error("channel is closing")]
    Closing,
    /// More than [`SessionConfig::max_pending_send`] bytes would wait for the device's window;
    /// nothing was queued.
    #[error("channel send buffer full")]
    Full,
}

impl ChannelError {
    /// A stable snake_case label; one per variant.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotForwarding => "not_forwarding",
            Self::PortNotForwarded(_) => "port_not_forwarded",
            Self::TooManyChannels => "too_many_channels",
            Self::UnknownChannel => "unknown_channel",
            Self::Closing => "closing",
            Self::Full => "full",
        }
    }
}

/// One channel we opened.
#[derive(Debug)]
struct Channel {
    /// Confirmed by the device.
    open: bool,
    /// The device's id for it (valid once open).
    peer: u32,
    /// Bytes we may still send (the device's window).
    send_window: u32,
    /// Bytes waiting for `send_window`.
    pending: BytesMut,
    /// Bytes the device may still send (what we granted minus what arrived).
    recv_window: u32,
    /// Delivered to the caller, not yet reported consumed.
    outstanding: u32,
    /// Consumed, not yet returned to the device by WINDOW_ADJUST.
    unacked: u32,
    /// [`ServerSession::close_channel`] was called.
    close_requested: bool,
    /// Our CHANNEL_CLOSE went out.
    close_sent: bool,
}

/// The server side of one APF session. See the module docs.
pub struct ServerSession {
    config: SessionConfig,
    state: State,
    guid: Option<Guid>,
    /// Received bytes not yet decoded.
    rx: BytesMut,
    /// Encoded bytes not yet handed to [`Self::poll_transmit`].
    tx: BytesMut,
    events: VecDeque<Event>,
    /// When the last complete message arrived (start of the session before that).
    last_rx: Instant,
    /// Until established.
    handshake_deadline: Option<Instant>,
    established: bool,
    forwards: Vec<u32>,
    non_password_auth: u32,
    channels: BTreeMap<u32, Channel>,
    next_id: u32,
    opened: u64,
    ignored: u64,
}

impl fmt::Debug for ServerSession {
    /// State and counts only: buffered bytes may hold credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSession")
            .field("state", &self.state)
            .field("guid", &self.guid)
            .field("forwards", &self.forwards)
            .field("channels", &self.channels.len())
            .field("rx", &self.rx.len())
            .field("tx", &self.tx.len())
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

// === impl ServerSession ===

impl ServerSession {
    /// A session for a connection accepted at `now`.
    pub fn new(config: SessionConfig, now: Instant) -> Self {
        let handshake_deadline = now.checked_add(config.handshake_timeout);
        Self {
            config,
            state: State::AwaitVersion,
            guid: None,
            rx: BytesMut::new(),
            tx: BytesMut::new(),
            events: VecDeque::new(),
            last_rx: now,
            handshake_deadline,
            established: false,
            forwards: Vec::new(),
            non_password_auth: 0,
            channels: BTreeMap::new(),
            next_id: FIRST_CHANNEL_ID,
            opened: 0,
            ignored: 0,
        }
    }

    /// Where the session is.
    pub fn state(&self) -> State {
        self.state
    }

    /// The device GUID, once PROTOCOLVERSION has arrived.
    pub fn guid(&self) -> Option<Guid> {
        self.guid
    }

    /// Whether [`Event::Established`] has been raised.
    pub fn is_established(&self) -> bool {
        self.established
    }

    /// Channel messages for unknown or already closed channel ids that were skipped.
    pub fn ignored_messages(&self) -> u64 {
        self.ignored
    }

    /// Feed received plaintext. Never returns an error: protocol errors become
    /// [`Event::Closed`] plus a queued DISCONNECT. Ignored once closed.
    pub fn handle_input(&mut self, data: &[u8], now: Instant) {
        if self.state == State::Closed {
            return;
        }
        self.rx.extend_from_slice(data);
        self.process(now);
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Appends everything queued to send to `dst`; returns the number of bytes appended.
    pub fn poll_transmit(&mut self, dst: &mut BytesMut) -> usize {
        let n = self.tx.len();
        if dst.is_empty() {
            std::mem::swap(dst, &mut self.tx);
        } else {
            dst.extend_from_slice(&self.tx);
            self.tx.clear();
        }
        n
    }

    /// When [`Self::handle_timeout`] should next be called: the idle deadline, or the
    /// handshake deadline if earlier. `None` once closed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Closed {
            return None;
        }
        let idle = self.last_rx.checked_add(self.config.idle_timeout);
        match (idle, self.handshake_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Ends the session if a deadline has passed (DISCONNECT(CONNECTION_TIMED_OUT) queued).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Closed {
            return;
        }
        if self.handshake_deadline.is_some_and(|d| now >= d) {
            self.queue(&Message::Disconnect {
                reason: reason::CONNECTION_TIMED_OUT,
            });
            self.close(CloseReason::HandshakeTimeout);
        } else if self
            .last_rx
            .checked_add(self.config.idle_timeout)
            .is_some_and(|d| now >= d)
        {
            self.queue(&Message::Disconnect {
                reason: reason::CONNECTION_TIMED_OUT,
            });
            self.close(CloseReason::IdleTimeout);
        }
    }

    /// The device is allowed: continue with what it sent after PROTOCOLVERSION. Ignored unless
    /// in [`State::AwaitDecision`].
    pub fn accept_device(&mut self, now: Instant) {
        if self.state == State::AwaitDecision {
            self.state = State::AwaitAuthService;
            self.process(now);
        }
    }

    /// Refuses the device: queues DISCONNECT(`reason`, e.g. HOST_NOT_ALLOWED_TO_CONNECT) and
    /// closes with [`CloseReason::Rejected`]. Nothing buffered is processed any more. Ignored
    /// once closed.
    pub fn reject(&mut self, reason: u32) {
        if self.state != State::Closed {
            self.queue(&Message::Disconnect { reason });
            self.close(CloseReason::Rejected(reason));
        }
    }

    /// The caller's verdict on [`Event::Auth`]. `true`: USERAUTH_SUCCESS, and processing goes
    /// on. `false`: one attempt only, so USERAUTH_FAILURE("password") then
    /// DISCONNECT(NO_MORE_AUTH_METHODS_AVAILABLE), closing with [`CloseReason::AuthFailed`].
    /// Ignored unless in [`State::AwaitAuthDecision`].
    pub fn auth_result(&mut self, ok: bool, now: Instant) {
        if self.state != State::AwaitAuthDecision {
            return;
        }
        if ok {
            self.queue(&Message::UserAuthSuccess);
            self.state = State::AwaitPfwdService;
            self.process(now);
        } else {
            self.queue(&auth_failure());
            self.queue(&Message::Disconnect {
                reason: reason::NO_MORE_AUTH_METHODS_AVAILABLE,
            });
            self.close(CloseReason::AuthFailed);
        }
    }

    /// Ends the session from our side, e.g. replaced by a newer connection of the same GUID
    /// (reason BY_APPLICATION): queues DISCONNECT(`reason`) and closes with
    /// [`CloseReason::Local`]. Ignored once closed.
    pub fn disconnect(&mut self, reason: u32) {
        if self.state != State::Closed {
            self.queue(&Message::Disconnect { reason });
            self.close(CloseReason::Local(reason));
        }
    }

    /// The ports the device forwards, in the order it offered them.
    pub fn forwarded_ports(&self) -> &[u32] {
        &self.forwards
    }

    /// Opens a channel to a forwarded port (WS-MAN 16992/16993, redirection 16994/16995):
    /// CHANNEL_OPEN `forwarded-tcpip` with our window, target `""`:`port`, originator
    /// `127.0.0.1`:(1024 + n mod 30000). Wait for [`Event::ChannelOpened`] or
    /// [`Event::ChannelOpenFailed`]; data sent before is queued. `now` is not used yet
    /// (channel-open deadlines are the caller's).
    pub fn open_channel(&mut self, port: u32, now: Instant) -> Result<ChannelId, ChannelError> {
        let _ = now;
        if self.state != State::Forwarding {
            return Err(ChannelError::NotForwarding);
        }
        if !self.forwards.contains(&port) {
            return Err(ChannelError::PortNotForwarded(port));
        }
        if self.channels.len() >= self.config.max_channels {
            return Err(ChannelError::TooManyChannels);
        }
        let mut id = self.next_id;
        while self.channels.contains_key(&id) {
            id = id.checked_add(1).unwrap_or(FIRST_CHANNEL_ID);
        }
        self.next_id = id.checked_add(1).unwrap_or(FIRST_CHANNEL_ID);
        // Cannot truncate: the remainder is below 30000.
        let originator_port = 1024 + (self.opened % 30_000) as u32;
        self.opened += 1;
        self.queue(&Message::ChannelOpen {
            kind: names::FORWARDED_TCPIP.to_owned(),
            sender: id,
            window: self.config.our_window,
            connected_address: String::new(),
            connected_port: port,
            originator_address: "127.0.0.1".to_owned(),
            originator_port,
        });
        self.channels.insert(
            id,
            Channel {
                open: false,
                peer: 0,
                send_window: 0,
                pending: BytesMut::new(),
                recv_window: self.config.our_window,
                outstanding: 0,
                unacked: 0,
                close_requested: false,
                close_sent: false,
            },
        );
        Ok(ChannelId(id))
    }

    /// Queues data. It is sent only within the device's window, split so no CHANNEL_DATA
    /// exceeds the window or [`Limits::max_data`]; the rest waits for WINDOW_ADJUST. If more
    /// than [`SessionConfig::max_pending_send`] bytes would wait, nothing is queued and the
    /// result is [`ChannelError::Full`]. Data sent before the confirmation waits too.
    pub fn send(&mut self, id: ChannelId, data: &[u8]) -> Result<(), ChannelError> {
        if self.state != State::Forwarding {
            return Err(ChannelError::NotForwarding);
        }
        let max_data = self.config.limits.max_data;
        let ch = self
            .channels
            .get_mut(&id.0)
            .ok_or(ChannelError::UnknownChannel)?;
        if ch.close_requested {
            return Err(ChannelError::Closing);
        }
        let window = if ch.open {
            usize::try_from(ch.send_window).unwrap_or(usize::MAX)
        } else {
            0
        };
        let waiting = (ch.pending.len() + data.len()).saturating_sub(window);
        if waiting > self.config.max_pending_send {
            return Err(ChannelError::Full);
        }
        ch.pending.extend_from_slice(data);
        if ch.open {
            flush(ch, max_data, &mut self.tx);
        }
        Ok(())
    }

    /// The device's remaining window for the channel (0 until confirmed).
    pub fn send_window(&self, id: ChannelId) -> Option<u32> {
        self.channels.get(&id.0).map(|c| c.send_window)
    }

    /// Bytes waiting for the device's window.
    pub fn pending(&self, id: ChannelId) -> Option<usize> {
        self.channels.get(&id.0).map(|c| c.pending.len())
    }

    /// Closes a channel from our side: CHANNEL_CLOSE goes out once (right after the
    /// confirmation if the channel is still opening). Data still waiting for the window is
    /// discarded (wait for `pending(id) == Some(0)` for a graceful close). The channel ends
    /// with [`Event::ChannelClosed`] when the device's CHANNEL_CLOSE arrives (or
    /// [`Event::ChannelOpenFailed`]). Unknown ids are ignored.
    pub fn close_channel(&mut self, id: ChannelId) {
        if self.state != State::Forwarding {
            return;
        }
        let Some(ch) = self.channels.get_mut(&id.0) else {
            return;
        };
        ch.close_requested = true;
        ch.pending = BytesMut::new();
        if ch.open && !ch.close_sent {
            ch.close_sent = true;
            let peer = ch.peer;
            self.queue(&Message::ChannelClose { recipient: peer });
        }
    }

    /// Tells the session the caller consumed `n` bytes of a channel's data (more than was
    /// delivered is clamped). WINDOW_ADJUST goes back once half our window has been consumed,
    /// so a slow consumer holds the device back.
    pub fn consumed(&mut self, id: ChannelId, n: usize) {
        if self.state != State::Forwarding {
            return;
        }
        let threshold = (self.config.our_window / 2).max(1);
        let Some(ch) = self.channels.get_mut(&id.0) else {
            return;
        };
        if ch.close_requested {
            return;
        }
        let n = u32::try_from(n).unwrap_or(u32::MAX).min(ch.outstanding);
        ch.outstanding -= n;
        ch.unacked = ch.unacked.saturating_add(n);
        if ch.unacked >= threshold {
            let bytes = ch.unacked;
            ch.unacked = 0;
            ch.recv_window = ch.recv_window.saturating_add(bytes);
            let recipient = ch.peer;
            self.queue(&Message::WindowAdjust { recipient, bytes });
        }
    }

    // --- internals ---

    fn queue(&mut self, msg: &Message) {
        encode(msg, &mut self.tx);
    }

    fn close(&mut self, reason: CloseReason) {
        self.state = State::Closed;
        self.rx = BytesMut::new();
        self.channels.clear();
        self.events.push_back(Event::Closed { reason });
    }

    /// Queues DISCONNECT(`code`) and closes with [`CloseReason::Protocol`]`(label)`.
    fn fail(&mut self, label: &'static str, code: u32) {
        self.queue(&Message::Disconnect { reason: code });
        self.close(CloseReason::Protocol(label.to_owned()));
    }

    fn protocol_error(&mut self, label: &'static str) {
        self.fail(label, reason::PROTOCOL_ERROR);
    }

    /// Decodes and handles buffered messages while the state allows.
    fn process(&mut self, now: Instant) {
        while matches!(
            self.state,
            State::AwaitVersion
                | State::AwaitAuthService
                | State::AwaitAuth
                | State::AwaitPfwdService
                | State::Forwarding
        ) {
            match decode(&mut self.rx, &self.config.limits) {
                Ok(None) => break,
                Ok(Some(msg)) => {
                    self.last_rx = now;
                    self.on_message(msg);
                }
                Err(e) => self.protocol_error(e.reason()),
            }
        }
        if self.state != State::Closed && self.rx.len() > self.config.limits.max_message_len() {
            self.protocol_error("input_overflow");
        }
    }

    fn on_message(&mut self, msg: Message) {
        match (self.state, msg) {
            (_, Message::Disconnect { reason }) => self.close(CloseReason::PeerDisconnect(reason)),
            (
                State::AwaitVersion,
                Message::ProtocolVersion {
                    major,
                    minor,
                    trigger,
                    guid,
                },
            ) => {
                if major != 1 {
                    self.fail(
                        "unsupported_version",
                        reason::PROTOCOL_VERSION_NOT_SUPPORTED,
                    );
                    return;
                }
                self.guid = Some(guid);
                self.state = State::AwaitDecision;
                self.events.push_back(Event::Version {
                    major,
                    minor,
                    trigger,
                    guid,
                });
            }
            (State::AwaitVersion, _) | (_, Message::ProtocolVersion { .. }) => {
                self.protocol_error("out_of_order");
            }
            (_, Message::KeepaliveRequest { cookie }) => {
                self.queue(&Message::KeepaliveReply { cookie });
            }
            (_, Message::KeepaliveReply { .. }) => {}
            (_, Message::KeepaliveOptionsReply { interval, timeout }) => {
                self.events
                    .push_back(Event::KeepaliveOptions { interval, timeout });
            }
            (State::AwaitAuthService, Message::ServiceRequest { service }) => {
                self.service_request(&service, names::AUTH_SERVICE, State::AwaitAuth);
            }
            (State::AwaitPfwdService, Message::ServiceRequest { service }) => {
                self.service_request(&service, names::PFWD_SERVICE, State::Forwarding);
            }
            (
                State::AwaitAuth,
                Message::UserAuthRequest {
                    username,
                    service,
                    method,
                },
            ) => self.userauth(username, &service, method),
            (State::Forwarding, Message::GlobalRequest { want_reply, kind }) => {
                self.global_request(want_reply, kind);
            }
            (State::Forwarding, Message::ChannelOpen { sender, .. }) => {
                self.queue(&Message::ChannelOpenFailure {
                    recipient: sender,
                    reason: reason::OPEN_ADMINISTRATIVELY_PROHIBITED,
                });
            }
            (
                State::Forwarding,
                Message::ChannelOpenConfirmation {
                    recipient,
                    sender,
                    window,
                },
            ) => self.confirmation(recipient, sender, window),
            (State::Forwarding, Message::ChannelOpenFailure { recipient, reason }) => {
                self.open_failure(recipient, reason);
            }
            (State::Forwarding, Message::WindowAdjust { recipient, bytes }) => {
                self.window_adjust(recipient, bytes);
            }
            (State::Forwarding, Message::ChannelData { recipient, data }) => {
                self.channel_data(recipient, data);
            }
            (State::Forwarding, Message::ChannelClose { recipient }) => {
                self.channel_close(recipient);
            }
            _ => self.protocol_error("out_of_order"),
        }
    }

    /// SERVICE_REQUEST in a state expecting `expected`.
    fn service_request(&mut self, service: &str, expected: &str, next: State) {
        if service == expected {
            self.queue(&Message::ServiceAccept {
                service: service.to_owned(),
            });
            self.state = next;
        } else if service == names::AUTH_SERVICE || service == names::PFWD_SERVICE {
            self.protocol_error("out_of_order");
        } else {
            self.fail("unknown_service", reason::SERVICE_NOT_AVAILABLE);
        }
    }

    fn userauth(&mut self, username: String, service: &str, method: AuthMethod) {
        if service != names::PFWD_SERVICE {
            self.fail("unknown_service", reason::SERVICE_NOT_AVAILABLE);
            return;
        }
        match method {
            AuthMethod::Password(password) => {
                self.state = State::AwaitAuthDecision;
                self.events.push_back(Event::Auth { username, password });
            }
            AuthMethod::None | AuthMethod::Other(_) => {
                self.non_password_auth += 1;
                if self.non_password_auth > MAX_NON_PASSWORD_AUTH {
                    self.queue(&Message::Disconnect {
                        reason: reason::NO_MORE_AUTH_METHODS_AVAILABLE,
                    });
                    self.close(CloseReason::AuthFailed);
                } else {
                    self.queue(&auth_failure());
                }
            }
        }
    }

    fn global_request(&mut self, want_reply: bool, kind: GlobalKind) {
        match kind {
            GlobalKind::TcpipForward { port, .. } => {
                if port == 0 || port > u32::from(u16::MAX) {
                    self.reply(want_reply, None);
                } else if self.forwards.contains(&port) {
                    self.reply(want_reply, Some(Some(port)));
                } else if self.forwards.len() >= self.config.max_forwards {
                    self.protocol_error("too_many_forwards");
                } else {
                    self.forwards.push(port);
                    self.reply(want_reply, Some(Some(port)));
                    if self.established {
                        self.events.push_back(Event::Forward { port });
                    } else {
                        self.established = true;
                        self.handshake_deadline = None;
                        self.queue(&Message::KeepaliveOptionsRequest {
                            interval: secs(self.config.keepalive_interval),
                            timeout: secs(self.config.idle_timeout),
                        });
                        self.events.push_back(Event::Established {
                            ports: self.forwards.clone(),
                        });
                    }
                }
            }
            GlobalKind::CancelTcpipForward { port, .. } => {
                if let Some(i) = self.forwards.iter().position(|&p| p == port) {
                    self.forwards.remove(i);
                    self.reply(want_reply, Some(None));
                    self.events.push_back(Event::Unforward { port });
                } else {
                    self.reply(want_reply, None);
                }
            }
            GlobalKind::UdpSendTo { .. } => self.reply(want_reply, None),
        }
    }

    /// REQUEST_SUCCESS(`Some(port)`) or REQUEST_FAILURE (`None`), if a reply is wanted.
    fn reply(&mut self, want_reply: bool, success: Option<Option<u32>>) {
        if !want_reply {
            return;
        }
        match success {
            Some(port) => self.queue(&Message::RequestSuccess { port }),
            None => self.queue(&Message::RequestFailure),
        }
    }

    fn confirmation(&mut self, recipient: u32, sender: u32, window: u32) {
        let max_data = self.config.limits.max_data;
        let Some(ch) = self.channels.get_mut(&recipient) else {
            self.ignored += 1;
            return;
        };
        if ch.open {
            self.protocol_error("unexpected_confirmation");
            return;
        }
        ch.open = true;
        ch.peer = sender;
        ch.send_window = window;
        if ch.close_requested {
            ch.close_sent = true;
            self.queue(&Message::ChannelClose { recipient: sender });
        } else {
            flush(ch, max_data, &mut self.tx);
            self.events.push_back(Event::ChannelOpened {
                id: ChannelId(recipient),
            });
        }
    }

    fn open_failure(&mut self, recipient: u32, reason: u32) {
        match self.channels.get(&recipient) {
            None => self.ignored += 1,
            Some(ch) if ch.open => self.protocol_error("unexpected_open_failure"),
            Some(_) => {
                self.channels.remove(&recipient);
                self.events.push_back(Event::ChannelOpenFailed {
                    id: ChannelId(recipient),
                    reason,
                });
            }
        }
    }

    fn window_adjust(&mut self, recipient: u32, bytes: u32) {
        let max_data = self.config.limits.max_data;
        let Some(ch) = self.channels.get_mut(&recipient) else {
            self.ignored += 1;
            return;
        };
        if !ch.open {
            self.protocol_error("channel_not_open");
            return;
        }
        let Some(window) = ch.send_window.checked_add(bytes) else {
            self.protocol_error("window_overflow");
            return;
        };
        ch.send_window = window;
        flush(ch, max_data, &mut self.tx);
    }

    fn channel_data(&mut self, recipient: u32, data: Bytes) {
        let Some(ch) = self.channels.get_mut(&recipient) else {
            self.ignored += 1;
            return;
        };
        if !ch.open {
            self.protocol_error("channel_not_open");
            return;
        }
        let len = match u32::try_from(data.len()) {
            Ok(len) if len <= ch.recv_window => len,
            _ => {
                self.protocol_error("window_exceeded");
                return;
            }
        };
        ch.recv_window -= len;
        if ch.close_requested || data.is_empty() {
            // Closed locally: the caller wants no more data, and the window no longer matters.
            return;
        }
        ch.outstanding = ch.outstanding.saturating_add(len);
        self.events.push_back(Event::ChannelData {
            id: ChannelId(recipient),
            data,
        });
    }

    fn channel_close(&mut self, recipient: u32) {
        let Some(ch) = self.channels.get(&recipient) else {
            self.ignored += 1;
            return;
        };
        if !ch.open {
            self.protocol_error("channel_not_open");
            return;
        }
        let (peer, close_sent) = (ch.peer, ch.close_sent);
        self.channels.remove(&recipient);
        if !close_sent {
            self.queue(&Message::ChannelClose { recipient: peer });
        }
        self.events.push_back(Event::ChannelClosed {
            id: ChannelId(recipient),
        });
    }
}

/// USERAUTH_FAILURE("password", partial false).
fn auth_failure() -> Message {
    Message::UserAuthFailure {
        methods: names::METHOD_PASSWORD.to_owned(),
        partial: false,
    }
}

/// Whole seconds, saturating.
fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

/// Sends what the window allows of a channel's pending data, in CHANNEL_DATA messages of at
/// most `max_data` bytes.
fn flush(ch: &mut Channel, max_data: usize, tx: &mut BytesMut) {
    let max_data = max_data.max(1);
    while ch.send_window > 0 && !ch.pending.is_empty() {
        let window = usize::try_from(ch.send_window).unwrap_or(usize::MAX);
        let n = window.min(max_data).min(ch.pending.len());
        let chunk = ch.pending.split_to(n);
        encode_channel_data(ch.peer, &chunk, tx);
        // `n <= send_window`, so it fits in u32.
        ch.send_window -= u32::try_from(n).unwrap_or(ch.send_window);
    }
}
