//! The server session: an in-memory device (the client decoder) and a virtual clock.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::client_decode_all;
use crate::client::ClientDecoder;
use crate::{
    AuthMethod, ChannelError, ChannelId, CloseReason, Event, GlobalKind, Guid, Limits, Message,
    ServerSession, SessionConfig, State, encode, reason,
};

const GUID: Guid = Guid([
    0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
]);

struct Pair {
    s: ServerSession,
    dev: ClientDecoder,
    now: Instant,
}

impl Pair {
    fn new(config: SessionConfig) -> Self {
        let now = Instant::now();
        Self {
            dev: ClientDecoder::new(config.limits),
            s: ServerSession::new(config, now),
            now,
        }
    }

    fn fresh() -> Self {
        Self::new(SessionConfig::default())
    }

    /// The device's bytes for `msgs` (recorded in the device's decoder).
    fn wire(&mut self, msgs: &[Message]) -> Vec<u8> {
        let mut b = BytesMut::new();
        for m in msgs {
            self.dev.encode(m, &mut b);
        }
        b.to_vec()
    }

    fn feed(&mut self, msgs: &[Message]) {
        let b = self.wire(msgs);
        self.s.handle_input(&b, self.now);
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.s.poll_event()).collect()
    }

    /// What the server sent, decoded by the device.
    fn out(&mut self) -> Vec<Message> {
        let mut b = BytesMut::new();
        let n = self.s.poll_transmit(&mut b);
        assert_eq!(n, b.len());
        client_decode_all(&mut self.dev, &b)
    }

    fn advance(&mut self, secs: u64) {
        self.now += Duration::from_secs(secs);
    }

    fn assert_closed(&mut self, why: CloseReason, disconnect: u32) {
        assert_eq!(self.s.state(), State::Closed);
        assert_eq!(self.events().last(), Some(&Event::Closed { reason: why }));
        assert_eq!(
            self.out().last(),
            Some(&Message::Disconnect { reason: disconnect })
        );
        assert_eq!(self.s.poll_timeout(), None);
    }

    fn assert_protocol_error(&mut self, label: &str) {
        self.assert_closed(CloseReason::Protocol(label.into()), reason::PROTOCOL_ERROR);
    }

    /// Runs the handshake up to Forwarding with 16992 and 16993 forwarded; drains everything.
    fn established(config: SessionConfig) -> Self {
        let mut p = Self::new(config);
        p.feed(&[version(1)]);
        p.s.accept_device(p.now);
        p.feed(&[service("auth@amt.intel.com"), password("admin", b"pw")]);
        p.s.auth_result(true, p.now);
        p.feed(&[
            service("pfwd@amt.intel.com"),
            forward(16992),
            forward(16993),
        ]);
        assert_eq!(p.s.state(), State::Forwarding);
        p.events();
        p.out();
        p
    }

    /// Opens a channel to 16992 and has the device confirm it with `window`.
    fn open(&mut self, peer: u32, window: u32) -> ChannelId {
        let id = self.s.open_channel(16992, self.now).unwrap();
        self.out();
        self.feed(&[Message::ChannelOpenConfirmation {
            recipient: id.0,
            sender: peer,
            window,
        }]);
        assert_eq!(self.events(), vec![Event::ChannelOpened { id }]);
        id
    }
}

fn version(major: u32) -> Message {
    Message::ProtocolVersion {
        major,
        minor: 0,
        trigger: 1,
        guid: GUID,
    }
}

fn service(s: &str) -> Message {
    Message::ServiceRequest { service: s.into() }
}

fn service_accept(s: &str) -> Message {
    Message::ServiceAccept { service: s.into() }
}

fn password(user: &str, pw: &[u8]) -> Message {
    Message::UserAuthRequest {
        username: user.into(),
        service: "pfwd@amt.intel.com".into(),
        method: AuthMethod::Password(pw.to_vec()),
    }
}

fn method_none() -> Message {
    Message::UserAuthRequest {
        username: "admin".into(),
        service: "pfwd@amt.intel.com".into(),
        method: AuthMethod::None,
    }
}

fn forward(port: u32) -> Message {
    Message::GlobalRequest {
        want_reply: true,
        kind: GlobalKind::TcpipForward {
            address: "host".into(),
            port,
        },
    }
}

fn cancel(port: u32) -> Message {
    Message::GlobalRequest {
        want_reply: true,
        kind: GlobalKind::CancelTcpipForward {
            address: "host".into(),
            port,
        },
    }
}

fn auth_failure() -> Message {
    Message::UserAuthFailure {
        methods: "password".into(),
        partial: false,
    }
}

fn data(recipient: u32, n: usize) -> Message {
    Message::ChannelData {
        recipient,
        data: Bytes::from(vec![b'x'; n]),
    }
}

// --- handshake ---

#[test]
fn happy_path() {
    let mut p = Pair::fresh();
    assert_eq!(p.s.state(), State::AwaitVersion);
    p.feed(&[version(1)]);
    assert_eq!(
        p.events(),
        vec![Event::Version {
            major: 1,
            minor: 0,
            trigger: 1,
            guid: GUID
        }]
    );
    assert_eq!(p.s.state(), State::AwaitDecision);
    assert_eq!(p.s.guid(), Some(GUID));
    assert!(p.out().is_empty(), "no PROTOCOLVERSION reply");

    p.s.accept_device(p.now);
    p.feed(&[service("auth@amt.intel.com")]);
    assert_eq!(p.out(), vec![service_accept("auth@amt.intel.com")]);
    assert_eq!(p.s.state(), State::AwaitAuth);

    p.feed(&[password("admin", b"P@ss")]);
    assert_eq!(
        p.events(),
        vec![Event::Auth {
            username: "admin".into(),
            password: b"P@ss".to_vec()
        }]
    );
    assert_eq!(p.s.state(), State::AwaitAuthDecision);
    assert!(p.out().is_empty());
    p.s.auth_result(true, p.now);
    assert_eq!(p.out(), vec![Message::UserAuthSuccess]);

    p.feed(&[service("pfwd@amt.intel.com")]);
    assert_eq!(p.out(), vec![service_accept("pfwd@amt.intel.com")]);
    assert_eq!(p.s.state(), State::Forwarding);
    assert!(p.events().is_empty(), "not established before a forward");

    p.feed(&[forward(16992)]);
    assert_eq!(
        p.out(),
        vec![
            Message::RequestSuccess { port: Some(16992) },
            Message::KeepaliveOptionsRequest {
                interval: 30,
                timeout: 90
            },
        ]
    );
    assert_eq!(p.events(), vec![Event::Established { ports: vec![16992] }]);
    assert!(p.s.is_established());

    // Further forwards: no second options request.
    p.feed(&[forward(16993), forward(5900)]);
    assert_eq!(
        p.out(),
        vec![
            Message::RequestSuccess { port: Some(16993) },
            Message::RequestSuccess { port: Some(5900) },
        ]
    );
    assert_eq!(
        p.events(),
        vec![
            Event::Forward { port: 16993 },
            Event::Forward { port: 5900 }
        ]
    );
    assert_eq!(p.s.forwarded_ports(), &[16992, 16993, 5900]);

    p.feed(&[
        Message::KeepaliveOptionsReply {
            interval: 30,
            timeout: 90,
        },
        Message::KeepaliveRequest { cookie: 255 },
    ]);
    assert_eq!(
        p.events(),
        vec![Event::KeepaliveOptions {
            interval: 30,
            timeout: 90
        }]
    );
    assert_eq!(p.out(), vec![Message::KeepaliveReply { cookie: 255 }]);
    assert_eq!(p.s.state(), State::Forwarding);
}

/// The whole device side in one buffer, and byte by byte: same events, same bytes out.
#[test]
fn coalesced_and_byte_by_byte_input() {
    fn run(chunk: usize) -> (Vec<Event>, Vec<u8>) {
        let mut p = Pair::fresh();
        let wire = p.wire(&[
            version(1),
            service("auth@amt.intel.com"),
            password("admin", b"pw"),
            service("pfwd@amt.intel.com"),
            forward(16992),
            Message::KeepaliveRequest { cookie: 7 },
            forward(16994),
            cancel(16994),
            Message::KeepaliveOptionsReply {
                interval: 30,
                timeout: 90,
            },
        ]);
        let mut events = Vec::new();
        for piece in wire.chunks(chunk) {
            p.s.handle_input(piece, p.now);
            while let Some(ev) = p.s.poll_event() {
                match &ev {
                    Event::Version { .. } => p.s.accept_device(p.now),
                    Event::Auth { .. } => p.s.auth_result(true, p.now),
                    _ => {}
                }
                events.push(ev);
            }
        }
        let mut out = BytesMut::new();
        p.s.poll_transmit(&mut out);
        (events, out.to_vec())
    }
    let whole = run(usize::MAX);
    assert_eq!(whole.0.len(), 6, "{:?}", whole.0);
    assert_eq!(
        whole.0[5],
        Event::KeepaliveOptions {
            interval: 30,
            timeout: 90
        }
    );
    for chunk in [1, 2, 3, 10, 33] {
        assert_eq!(run(chunk), whole, "chunk {chunk}");
    }
}

#[test]
fn unknown_guid_rejected_before_any_credential_is_asked() {
    let mut p = Pair::fresh();
    // The device sends everything at once; the credentials are already buffered.
    p.feed(&[
        version(1),
        service("auth@amt.intel.com"),
        password("admin", b"secret"),
        service("pfwd@amt.intel.com"),
    ]);
    assert!(matches!(p.events().as_slice(), [Event::Version { .. }]));
    assert!(p.out().is_empty());
    p.s.reject(reason::HOST_NOT_ALLOWED_TO_CONNECT);
    assert_eq!(
        p.events(),
        vec![Event::Closed {
            reason: CloseReason::Rejected(reason::HOST_NOT_ALLOWED_TO_CONNECT)
        }]
    );
    assert_eq!(
        p.out(),
        vec![Message::Disconnect {
            reason: reason::HOST_NOT_ALLOWED_TO_CONNECT
        }]
    );
    // Nothing more, ever.
    p.s.accept_device(p.now);
    p.s.auth_result(true, p.now);
    p.feed(&[password("admin", b"secret")]);
    p.s.handle_timeout(p.now + Duration::from_secs(1000));
    assert!(p.events().is_empty());
    assert!(p.out().is_empty());
    assert_eq!(p.s.state(), State::Closed);
}

#[test]
fn wrong_password_is_one_attempt() {
    let mut p = Pair::fresh();
    p.feed(&[version(1)]);
    p.s.accept_device(p.now);
    p.feed(&[
        service("auth@amt.intel.com"),
        password("admin", b"wrong"),
        password("admin", b"right"),
    ]);
    p.events();
    p.out();
    p.s.auth_result(false, p.now);
    assert_eq!(
        p.out(),
        vec![
            auth_failure(),
            Message::Disconnect {
                reason: reason::NO_MORE_AUTH_METHODS_AVAILABLE
            }
        ]
    );
    assert_eq!(
        p.events(),
        vec![Event::Closed {
            reason: CloseReason::AuthFailed
        }]
    );
    assert_eq!(p.s.state(), State::Closed);
}

#[test]
fn method_none_never_authenticates() {
    let mut p = Pair::fresh();
    p.feed(&[version(1)]);
    p.events();
    p.s.accept_device(p.now);
    p.feed(&[service("auth@amt.intel.com"), method_none()]);
    assert_eq!(
        p.out(),
        vec![service_accept("auth@amt.intel.com"), auth_failure()]
    );
    assert!(p.events().is_empty(), "no Auth event for none");
    assert_eq!(p.s.state(), State::AwaitAuth);
    // Another method likewise; then the password request still works.
    p.feed(&[Message::UserAuthRequest {
        username: "admin".into(),
        service: "pfwd@amt.intel.com".into(),
        method: AuthMethod::Other("publickey".into()),
    }]);
    assert_eq!(p.out(), vec![auth_failure()]);
    p.feed(&[password("admin", b"pw")]);
    assert!(matches!(p.events().as_slice(), [Event::Auth { .. }]));
}

#[test]
fn too_many_non_password_attempts() {
    let mut p = Pair::fresh();
    p.feed(&[version(1)]);
    p.s.accept_device(p.now);
    p.feed(&[service("auth@amt.intel.com")]);
    p.out();
    p.feed(&[method_none(), method_none(), method_none()]);
    assert_eq!(p.out(), vec![auth_failure(); 3]);
    p.feed(&[method_none()]);
    p.assert_closed(
        CloseReason::AuthFailed,
        reason::NO_MORE_AUTH_METHODS_AVAILABLE,
    );
}

#[test]
fn userauth_for_another_service() {
    let mut p = Pair::fresh();
    p.feed(&[version(1)]);
    p.s.accept_device(p.now);
    p.feed(&[
        service("auth@amt.intel.com"),
        Message::UserAuthRequest {
            username: "admin".into(),
            service: "ssh-connection".into(),
            method: AuthMethod::Password(b"pw".to_vec()),
        },
    ]);
    p.assert_closed(
        CloseReason::Protocol("unknown_service".into()),
        reason::SERVICE_NOT_AVAILABLE,
    );
}

#[test]
fn unsupported_major_version() {
    let mut p = Pair::fresh();
    p.feed(&[version(2)]);
    p.assert_closed(
        CloseReason::Protocol("unsupported_version".into()),
        reason::PROTOCOL_VERSION_NOT_SUPPORTED,
    );
}

#[test]
fn unknown_service() {
    let mut p = Pair::fresh();
    p.feed(&[version(1)]);
    p.s.accept_device(p.now);
    p.feed(&[service("ssh-userauth")]);
    p.assert_closed(
        CloseReason::Protocol("unknown_service".into()),
        reason::SERVICE_NOT_AVAILABLE,
    );
}

/// Each sequence ends with one message out of order.
#[test]
fn out_of_order_messages() {
    let before_version = [
        service("auth@amt.intel.com"),
        Message::KeepaliveRequest { cookie: 1 },
        forward(16992),
    ];
    for m in before_version {
        let mut p = Pair::fresh();
        p.feed(std::slice::from_ref(&m));
        p.assert_protocol_error("out_of_order");
    }

    // After acceptance, in AwaitAuthService.
    let in_auth_service = [
        service("pfwd@amt.intel.com"),
        password("admin", b"pw"),
        forward(16992),
        version(1),
        Message::ChannelClose { recipient: 4 },
    ];
    for m in in_auth_service {
        let mut p = Pair::fresh();
        p.feed(&[version(1)]);
        p.s.accept_device(p.now);
        p.feed(std::slice::from_ref(&m));
        p.assert_protocol_error("out_of_order");
    }

    // In AwaitAuth.
    for m in [service("pfwd@amt.intel.com"), forward(16992)] {
        let mut p = Pair::fresh();
        p.feed(&[version(1)]);
        p.s.accept_device(p.now);
        p.feed(&[service("auth@amt.intel.com"), m.clone()]);
        p.assert_protocol_error("out_of_order");
    }

    // In AwaitPfwdService: a forward before pfwd, a second auth.
    for m in [
        forward(16992),
        password("admin", b"pw"),
        service("auth@amt.intel.com"),
    ] {
        let mut p = Pair::fresh();
        p.feed(&[version(1)]);
        p.s.accept_device(p.now);
        p.feed(&[service("auth@amt.intel.com"), password("admin", b"pw")]);
        p.s.auth_result(true, p.now);
        p.feed(std::slice::from_ref(&m));
        p.assert_protocol_error("out_of_order");
    }

    // Forwarding: handshake messages again.
    for m in [
        version(1),
        service("pfwd@amt.intel.com"),
        password("admin", b"pw"),
    ] {
        let mut p = Pair::established(SessionConfig::default());
        p.feed(std::slice::from_ref(&m));
        p.assert_protocol_error("out_of_order");
    }
}

#[test]
fn server_only_types_from_the_device() {
    for ty in [6u8, 51, 52, 81, 82, 210] {
        let mut p = Pair::established(SessionConfig::default());
        p.s.handle_input(&[ty, 0, 0, 0, 0, 0, 0, 0, 0, 0], p.now);
        p.assert_protocol_error("wrong_direction");
    }
    let mut p = Pair::fresh();
    p.s.handle_input(&[0xfa, 0, 0, 0, 0], p.now);
    p.assert_protocol_error("unknown_type");
}

#[test]
fn decode_errors_close_the_session() {
    let mut p = Pair::fresh();
    // SERVICE_REQUEST announcing a 4 KiB name.
    p.s.handle_input(&[5, 0, 0, 0x10, 0], p.now);
    p.assert_protocol_error("string_too_long");
}

#[test]
fn keepalive_answered_in_every_state_after_version() {
    let mut p = Pair::fresh();
    p.feed(&[version(1), Message::KeepaliveRequest { cookie: 1 }]);
    // Paused: not yet processed.
    assert!(p.out().is_empty());
    p.s.accept_device(p.now);
    assert_eq!(p.out(), vec![Message::KeepaliveReply { cookie: 1 }]);
    p.feed(&[
        service("auth@amt.intel.com"),
        Message::KeepaliveRequest { cookie: 2 },
        Message::KeepaliveReply { cookie: 9 },
    ]);
    assert_eq!(
        p.out(),
        vec![
            service_accept("auth@amt.intel.com"),
            Message::KeepaliveReply { cookie: 2 }
        ]
    );
    let mut p = Pair::established(SessionConfig::default());
    p.feed(&[Message::KeepaliveRequest {
        cookie: 0xdead_beef,
    }]);
    assert_eq!(
        p.out(),
        vec![Message::KeepaliveReply {
            cookie: 0xdead_beef
        }]
    );
}

#[test]
fn idle_timeout_after_90_seconds_of_silence() {
    let mut p = Pair::established(SessionConfig::default());
    let start = p.now;
    assert_eq!(p.s.poll_timeout(), Some(start + Duration::from_secs(90)));
    p.s.handle_timeout(start + Duration::from_secs(89));
    assert_eq!(p.s.state(), State::Forwarding);
    // A message resets the deadline.
    p.advance(60);
    p.feed(&[Message::KeepaliveRequest { cookie: 1 }]);
    p.out();
    assert_eq!(p.s.poll_timeout(), Some(start + Duration::from_secs(150)));
    p.s.handle_timeout(start + Duration::from_secs(149));
    assert_eq!(p.s.state(), State::Forwarding);
    p.s.handle_timeout(start + Duration::from_secs(150));
    p.assert_closed(CloseReason::IdleTimeout, reason::CONNECTION_TIMED_OUT);
}

#[test]
fn handshake_timeout() {
    let mut p = Pair::fresh();
    let start = p.now;
    assert_eq!(p.s.poll_timeout(), Some(start + Duration::from_secs(30)));
    p.feed(&[version(1)]);
    p.s.accept_device(p.now);
    // Keepalives alone do not keep an unauthenticated device connected.
    p.advance(20);
    p.feed(&[Message::KeepaliveRequest { cookie: 1 }]);
    p.out();
    assert_eq!(p.s.poll_timeout(), Some(start + Duration::from_secs(30)));
    p.s.handle_timeout(start + Duration::from_secs(30));
    p.assert_closed(CloseReason::HandshakeTimeout, reason::CONNECTION_TIMED_OUT);
}

#[test]
fn replaced_by_a_newer_connection() {
    let mut p = Pair::established(SessionConfig::default());
    p.s.disconnect(reason::BY_APPLICATION);
    p.assert_closed(
        CloseReason::Local(reason::BY_APPLICATION),
        reason::BY_APPLICATION,
    );
    p.feed(&[Message::KeepaliveRequest { cookie: 1 }]);
    assert!(p.out().is_empty());
    assert!(p.events().is_empty());
    assert_eq!(
        p.s.open_channel(16992, p.now),
        Err(ChannelError::NotForwarding)
    );
    p.s.disconnect(reason::BY_APPLICATION);
    assert!(p.out().is_empty(), "only one DISCONNECT");
}

#[test]
fn peer_disconnect() {
    let mut p = Pair::established(SessionConfig::default());
    p.feed(&[Message::Disconnect { reason: 11 }]);
    assert_eq!(
        p.events(),
        vec![Event::Closed {
            reason: CloseReason::PeerDisconnect(11)
        }]
    );
    assert!(p.out().is_empty(), "no answer to DISCONNECT");
}

#[test]
fn input_buffered_while_paused_is_bounded() {
    let mut p = Pair::fresh();
    p.feed(&[version(1)]);
    let junk = vec![0xd0; Limits::default().max_message_len() + 1];
    p.s.handle_input(&junk, p.now);
    p.assert_protocol_error("input_overflow");
}

// --- global requests ---

#[test]
fn forwards_cancel_and_udp() {
    let mut p = Pair::established(SessionConfig::default());
    // A repeated forward is acknowledged without an event.
    p.feed(&[forward(16992)]);
    assert_eq!(p.out(), vec![Message::RequestSuccess { port: Some(16992) }]);
    assert!(p.events().is_empty());
    p.feed(&[cancel(16993), cancel(1)]);
    assert_eq!(
        p.out(),
        vec![
            Message::RequestSuccess { port: None },
            Message::RequestFailure
        ]
    );
    assert_eq!(p.events(), vec![Event::Unforward { port: 16993 }]);
    assert_eq!(p.s.forwarded_ports(), &[16992]);
    // Ports outside 1..=65535 are refused.
    p.feed(&[forward(0), forward(70000)]);
    assert_eq!(p.out(), vec![Message::RequestFailure; 2]);
    // udp-send-to is refused; without want_reply nothing is sent.
    let udp = |want_reply| Message::GlobalRequest {
        want_reply,
        kind: GlobalKind::UdpSendTo {
            address: "10.0.0.1".into(),
            port: 53,
            originator: "10.0.0.2".into(),
            originator_port: 5353,
            data: Bytes::from_static(b"q"),
        },
    };
    p.feed(&[udp(true), udp(false)]);
    assert_eq!(p.out(), vec![Message::RequestFailure]);
    assert_eq!(p.s.state(), State::Forwarding);
}

#[test]
fn too_many_forwards() {
    let mut p = Pair::established(SessionConfig {
        max_forwards: 3,
        ..SessionConfig::default()
    });
    p.feed(&[forward(1)]);
    assert_eq!(p.s.forwarded_ports().len(), 3);
    p.out();
    p.feed(&[forward(2)]);
    p.assert_protocol_error("too_many_forwards");
}

#[test]
fn device_initiated_channel_open_is_refused_not_fatal() {
    let mut p = Pair::established(SessionConfig::default());
    p.feed(&[Message::ChannelOpen {
        kind: "direct-tcpip".into(),
        sender: 77,
        window: 4096,
        connected_address: "1.2.3.4".into(),
        connected_port: 80,
        originator_address: "5.6.7.8".into(),
        originator_port: 1000,
    }]);
    assert_eq!(
        p.out(),
        vec![Message::ChannelOpenFailure {
            recipient: 77,
            reason: reason::OPEN_ADMINISTRATIVELY_PROHIBITED
        }]
    );
    assert!(p.events().is_empty());
    assert_eq!(p.s.state(), State::Forwarding);
}

// --- channels ---

#[test]
fn channel_open_confirm_data_close() {
    let mut p = Pair::established(SessionConfig::default());
    let id = p.s.open_channel(16992, p.now).unwrap();
    assert_eq!(id, ChannelId(4));
    assert_eq!(
        p.out(),
        vec![Message::ChannelOpen {
            kind: "forwarded-tcpip".into(),
            sender: 4,
            window: 81920,
            connected_address: String::new(),
            connected_port: 16992,
            originator_address: "127.0.0.1".into(),
            originator_port: 1024,
        }]
    );
    let id2 = p.s.open_channel(16993, p.now).unwrap();
    assert_eq!(id2, ChannelId(5));
    assert!(matches!(
        p.out().as_slice(),
        [Message::ChannelOpen {
            sender: 5,
            connected_port: 16993,
            originator_port: 1025,
            ..
        }]
    ));
    assert_eq!(
        p.s.open_channel(16994, p.now),
        Err(ChannelError::PortNotForwarded(16994))
    );
    assert_eq!(p.s.send_window(id), Some(0));

    // Data queued before the confirmation waits for it.
    p.s.send(id, b"POST /wsman").unwrap();
    assert!(p.out().is_empty());
    assert_eq!(p.s.pending(id), Some(11));
    p.feed(&[Message::ChannelOpenConfirmation {
        recipient: 4,
        sender: 0x1234,
        window: 4096,
    }]);
    assert_eq!(p.events(), vec![Event::ChannelOpened { id }]);
    assert_eq!(
        p.out(),
        vec![Message::ChannelData {
            recipient: 0x1234,
            data: Bytes::from_static(b"POST /wsman")
        }]
    );
    assert_eq!(p.s.send_window(id), Some(4096 - 11));
    assert_eq!(p.s.pending(id), Some(0));

    p.feed(&[Message::ChannelData {
        recipient: 4,
        data: Bytes::from_static(b"HTTP/1.1 200 OK"),
    }]);
    assert_eq!(
        p.events(),
        vec![Event::ChannelData {
            id,
            data: Bytes::from_static(b"HTTP/1.1 200 OK")
        }]
    );

    // Local close: once.
    p.s.close_channel(id);
    p.s.close_channel(id);
    assert_eq!(p.out(), vec![Message::ChannelClose { recipient: 0x1234 }]);
    assert_eq!(p.s.send(id, b"x"), Err(ChannelError::Closing));
    // Data still in flight is dropped, within the window.
    p.feed(&[data(4, 10)]);
    assert!(p.events().is_empty());
    // The device answers: the channel is gone, no second close.
    p.feed(&[Message::ChannelClose { recipient: 4 }]);
    assert_eq!(p.events(), vec![Event::ChannelClosed { id }]);
    assert!(p.out().is_empty());
    assert_eq!(p.s.send(id, b"x"), Err(ChannelError::UnknownChannel));
    assert_eq!(p.s.send_window(id), None);
}

#[test]
fn device_closes_first() {
    let mut p = Pair::established(SessionConfig::default());
    let id = p.open(9, 100);
    p.feed(&[Message::ChannelClose { recipient: id.0 }]);
    assert_eq!(p.out(), vec![Message::ChannelClose { recipient: 9 }]);
    assert_eq!(p.events(), vec![Event::ChannelClosed { id }]);
    // A second close is for an unknown id now: ignored and counted.
    p.feed(&[Message::ChannelClose { recipient: id.0 }]);
    assert!(p.out().is_empty());
    assert_eq!(p.s.ignored_messages(), 1);
    p.s.close_channel(id);
    assert!(p.out().is_empty());
}

#[test]
fn close_while_opening() {
    let mut p = Pair::established(SessionConfig::default());
    let id = p.s.open_channel(16992, p.now).unwrap();
    p.out();
    p.s.send(id, b"discarded").unwrap();
    p.s.close_channel(id);
    assert!(p.out().is_empty(), "no id to address yet");
    p.feed(&[Message::ChannelOpenConfirmation {
        recipient: id.0,
        sender: 3,
        window: 100,
    }]);
    assert_eq!(p.out(), vec![Message::ChannelClose { recipient: 3 }]);
    assert!(
        p.events().is_empty(),
        "no ChannelOpened after a local close"
    );
    p.feed(&[Message::ChannelClose { recipient: id.0 }]);
    assert!(p.out().is_empty());
    assert_eq!(p.events(), vec![Event::ChannelClosed { id }]);
}

#[test]
fn open_failure() {
    let mut p = Pair::established(SessionConfig::default());
    let id = p.s.open_channel(16992, p.now).unwrap();
    p.out();
    p.feed(&[Message::ChannelOpenFailure {
        recipient: id.0,
        reason: reason::OPEN_CONNECT_FAILED,
    }]);
    assert_eq!(
        p.events(),
        vec![Event::ChannelOpenFailed {
            id,
            reason: reason::OPEN_CONNECT_FAILED
        }]
    );
    assert_eq!(p.s.pending(id), None);
    assert!(p.out().is_empty());
}

#[test]
fn max_channels() {
    let mut p = Pair::established(SessionConfig {
        max_channels: 2,
        ..SessionConfig::default()
    });
    let a = p.s.open_channel(16992, p.now).unwrap();
    p.s.open_channel(16992, p.now).unwrap();
    assert_eq!(
        p.s.open_channel(16992, p.now),
        Err(ChannelError::TooManyChannels)
    );
    p.out();
    p.feed(&[Message::ChannelOpenFailure {
        recipient: a.0,
        reason: 2,
    }]);
    assert_eq!(p.s.open_channel(16992, p.now), Ok(ChannelId(6)));
}

#[test]
fn messages_for_unknown_channels_are_ignored() {
    let mut p = Pair::established(SessionConfig::default());
    p.feed(&[
        data(99, 5),
        Message::WindowAdjust {
            recipient: 99,
            bytes: 5,
        },
        Message::ChannelClose { recipient: 99 },
        Message::ChannelOpenConfirmation {
            recipient: 99,
            sender: 1,
            window: 1,
        },
        Message::ChannelOpenFailure {
            recipient: 99,
            reason: 1,
        },
    ]);
    assert_eq!(p.s.ignored_messages(), 5);
    assert!(p.events().is_empty());
    assert!(p.out().is_empty());
    assert_eq!(p.s.state(), State::Forwarding);
}

#[test]
fn channel_messages_before_confirmation_are_errors() {
    for m in [
        data(4, 1),
        Message::WindowAdjust {
            recipient: 4,
            bytes: 1,
        },
        Message::ChannelClose { recipient: 4 },
    ] {
        let mut p = Pair::established(SessionConfig::default());
        p.s.open_channel(16992, p.now).unwrap();
        p.out();
        p.feed(&[m]);
        p.assert_protocol_error("channel_not_open");
    }
    let mut p = Pair::established(SessionConfig::default());
    let id = p.open(1, 1);
    p.feed(&[Message::ChannelOpenConfirmation {
        recipient: id.0,
        sender: 1,
        window: 1,
    }]);
    p.assert_protocol_error("unexpected_confirmation");
}

#[test]
fn inbound_window_is_enforced_and_replenished() {
    let mut p = Pair::established(SessionConfig {
        our_window: 100,
        ..SessionConfig::default()
    });
    let id = p.open(7, 1000);
    p.feed(&[data(id.0, 60), data(id.0, 40)]);
    assert_eq!(p.events().len(), 2);
    // Consuming less than half: no adjust yet.
    p.s.consumed(id, 49);
    assert!(p.out().is_empty());
    p.s.consumed(id, 1);
    assert_eq!(
        p.out(),
        vec![Message::WindowAdjust {
            recipient: 7,
            bytes: 50
        }]
    );
    // Consuming more than was delivered is clamped to what was delivered.
    p.s.consumed(id, 1000);
    assert_eq!(
        p.out(),
        vec![Message::WindowAdjust {
            recipient: 7,
            bytes: 50
        }]
    );
    p.s.consumed(id, 1000);
    assert!(p.out().is_empty());
    // The full window again, then one byte too many.
    p.feed(&[data(id.0, 100)]);
    assert_eq!(p.events().len(), 1);
    p.feed(&[data(id.0, 1)]);
    p.assert_protocol_error("window_exceeded");
}

#[test]
fn unconsumed_data_backpressures_the_device() {
    let mut p = Pair::established(SessionConfig {
        our_window: 100,
        ..SessionConfig::default()
    });
    let id = p.open(7, 1000);
    p.feed(&[data(id.0, 100)]);
    p.events();
    // Not consumed: no adjust, so even one more byte is beyond the window.
    assert!(p.out().is_empty());
    p.feed(&[data(id.0, 1)]);
    p.assert_protocol_error("window_exceeded");
}

#[test]
fn outbound_window_is_respected() {
    let mut p = Pair::established(SessionConfig::default());
    let id = p.open(7, 10);
    p.s.send(id, &[b'a'; 25]).unwrap();
    assert_eq!(
        p.out(),
        vec![Message::ChannelData {
            recipient: 7,
            data: Bytes::from(vec![b'a'; 10])
        }]
    );
    assert_eq!(p.s.send_window(id), Some(0));
    assert_eq!(p.s.pending(id), Some(15));
    p.feed(&[Message::WindowAdjust {
        recipient: id.0,
        bytes: 5,
    }]);
    assert_eq!(
        p.out(),
        vec![Message::ChannelData {
            recipient: 7,
            data: Bytes::from(vec![b'a'; 5])
        }]
    );
    p.feed(&[Message::WindowAdjust {
        recipient: id.0,
        bytes: 100,
    }]);
    assert_eq!(
        p.out(),
        vec![Message::ChannelData {
            recipient: 7,
            data: Bytes::from(vec![b'a'; 10])
        }]
    );
    assert_eq!(p.s.send_window(id), Some(90));
    assert_eq!(p.s.pending(id), Some(0));
}

#[test]
fn outbound_data_is_split_by_max_data() {
    let mut p = Pair::established(SessionConfig {
        limits: Limits {
            max_data: 4,
            ..Limits::default()
        },
        ..SessionConfig::default()
    });
    let id = p.open(7, 1000);
    p.s.send(id, b"0123456789").unwrap();
    let out = p.out();
    let sizes: Vec<usize> = out
        .iter()
        .map(|m| match m {
            Message::ChannelData { data, .. } => data.len(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(sizes, vec![4, 4, 2]);
}

#[test]
fn pending_send_is_bounded() {
    let mut p = Pair::established(SessionConfig {
        max_pending_send: 20,
        ..SessionConfig::default()
    });
    let id = p.open(7, 10);
    // 10 go out at once, 20 wait: exactly the limit.
    p.s.send(id, &[0; 30]).unwrap();
    assert_eq!(p.s.pending(id), Some(20));
    assert_eq!(p.s.send(id, &[0; 1]), Err(ChannelError::Full));
    assert_eq!(p.s.pending(id), Some(20), "nothing queued");
    p.out();
    p.feed(&[Message::WindowAdjust {
        recipient: id.0,
        bytes: 5,
    }]);
    assert_eq!(p.s.pending(id), Some(15));
    p.s.send(id, &[0; 5]).unwrap();
    assert_eq!(p.s.send(id, &[0; 1]), Err(ChannelError::Full));
}

#[test]
fn window_adjust_overflow_is_an_error() {
    let mut p = Pair::established(SessionConfig::default());
    let id = p.open(7, u32::MAX - 1);
    p.feed(&[Message::WindowAdjust {
        recipient: id.0,
        bytes: 1,
    }]);
    assert_eq!(p.s.send_window(id), Some(u32::MAX));
    p.feed(&[Message::WindowAdjust {
        recipient: id.0,
        bytes: 1,
    }]);
    p.assert_protocol_error("window_overflow");
}

#[test]
fn channel_operations_before_forwarding() {
    let mut p = Pair::fresh();
    assert_eq!(
        p.s.open_channel(16992, p.now),
        Err(ChannelError::NotForwarding)
    );
    assert_eq!(
        p.s.send(ChannelId(4), b"x"),
        Err(ChannelError::NotForwarding)
    );
    p.s.close_channel(ChannelId(4));
    p.s.consumed(ChannelId(4), 1);
    assert!(p.out().is_empty());
}

#[test]
fn debug_output_hides_credentials() {
    let ev = Event::Auth {
        username: "admin".into(),
        password: b"hunter2".to_vec(),
    };
    let s = format!("{ev:?}");
    assert!(s.contains("admin") && !s.contains("104"), "{s}");
    let mut p = Pair::fresh();
    p.feed(&[version(1), password("admin", b"hunter2")]);
    let s = format!("{:?}", p.s);
    assert!(!s.contains("hunter2") && !s.contains("104, 117"), "{s}");
}

#[test]
fn poll_transmit_appends() {
    let mut p = Pair::established(SessionConfig::default());
    p.feed(&[Message::KeepaliveRequest { cookie: 1 }]);
    let mut out = BytesMut::from(&b"prefix"[..]);
    let n = p.s.poll_transmit(&mut out);
    assert_eq!(n, 5);
    let mut expected = BytesMut::from(&b"prefix"[..]);
    encode(&Message::KeepaliveReply { cookie: 1 }, &mut expected);
    assert_eq!(out, expected);
    assert_eq!(p.s.poll_transmit(&mut out), 0);
}
