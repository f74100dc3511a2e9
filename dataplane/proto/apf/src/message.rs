//! The APF messages (reference §1.2).

use std::fmt;

use bytes::Bytes;

use crate::{Guid, msg};

/// The request carried by a GLOBAL_REQUEST. Only these three names can be framed: a
/// GLOBAL_REQUEST has no length field, so an unknown name leaves the rest of the stream
/// unparseable and the decoder refuses it ([`crate::DecodeError::UnknownGlobalRequest`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlobalKind {
    /// `tcpip-forward`: the device offers a port (16992, 16993, 16994, 16995, 623, 664, 5900).
    TcpipForward {
        /// The address the device binds (ignored by servers).
        address: String,
        /// The forwarded port.
        port: u32,
    },
    /// `cancel-tcpip-forward`: the device withdraws a port.
    CancelTcpipForward {
        /// The address.
        address: String,
        /// The port.
        port: u32,
    },
    /// `udp-send-to@amt.intel.com`: the device asks the server to send a datagram.
    UdpSendTo {
        /// Destination address.
        address: String,
        /// Destination port.
        port: u32,
        /// Originator address.
        originator: String,
        /// Originator port.
        originator_port: u32,
        /// The datagram (limited by [`crate::Limits::max_data`]).
        data: Bytes,
    },
}

/// The method of a USERAUTH_REQUEST. `Debug` redacts the password.
#[derive(Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// `password`: a FALSE byte (must be 0) and the password string.
    Password(Vec<u8>),
    /// `none`: no further fields.
    None,
    /// Any other method name. AMT sends only `password` and `none` (LMS); an unknown method is
    /// taken to carry no further fields. Should a peer send fields after it anyway, they will
    /// not parse as a valid next message and the session ends with a protocol error.
    Other(String),
}

impl fmt::Debug for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Password(_) => f.write_str("Password(<redacted>)"),
            Self::None => f.write_str("None"),
            Self::Other(name) => f.debug_tuple("Other").field(name).finish(),
        }
    }
}

/// One APF message. Decoded by [`crate::decode`] (device to server) or
/// [`crate::client::ClientDecoder`] (server to device), written by [`crate::encode`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// DISCONNECT (1).
    Disconnect {
        /// A [`crate::reason`] code.
        reason: u32,
    },
    /// SERVICE_REQUEST (5).
    ServiceRequest {
        /// `auth@amt.intel.com` or `pfwd@amt.intel.com`.
        service: String,
    },
    /// SERVICE_ACCEPT (6).
    ServiceAccept {
        /// The accepted service.
        service: String,
    },
    /// USERAUTH_REQUEST (50).
    UserAuthRequest {
        /// The CIRA user name.
        username: String,
        /// The service to start after authentication, `pfwd@amt.intel.com`.
        service: String,
        /// The method and its fields.
        method: AuthMethod,
    },
    /// USERAUTH_FAILURE (51), in the 14-byte SSH/LMS form for `password`.
    UserAuthFailure {
        /// Comma-separated methods that may continue, `password`.
        methods: String,
        /// Partial success (always false here).
        partial: bool,
    },
    /// USERAUTH_SUCCESS (52).
    UserAuthSuccess,
    /// GLOBAL_REQUEST (80).
    GlobalRequest {
        /// Whether the device wants REQUEST_SUCCESS or REQUEST_FAILURE back.
        want_reply: bool,
        /// The request.
        kind: GlobalKind,
    },
    /// REQUEST_SUCCESS (81): `Some(port)` answers tcpip-forward (5 bytes), `None` answers
    /// cancel-tcpip-forward (1 byte).
    RequestSuccess {
        /// The bound port, for tcpip-forward.
        port: Option<u32>,
    },
    /// REQUEST_FAILURE (82).
    RequestFailure,
    /// CHANNEL_OPEN (90). The reserved word (0xFFFFFFFF) is written, and ignored on input.
    ChannelOpen {
        /// `forwarded-tcpip` (server to device) or `direct-tcpip`.
        kind: String,
        /// The opener's channel id.
        sender: u32,
        /// The opener's initial receive window.
        window: u32,
        /// The target host (empty from this server).
        connected_address: String,
        /// The target port.
        connected_port: u32,
        /// The originator address.
        originator_address: String,
        /// The originator port.
        originator_port: u32,
    },
    /// CHANNEL_OPEN_CONFIRMATION (91). The reserved word (0xFFFFFFFF) is written, and ignored
    /// on input.
    ChannelOpenConfirmation {
        /// The opener's channel id.
        recipient: u32,
        /// The confirmer's channel id.
        sender: u32,
        /// The confirmer's initial receive window.
        window: u32,
    },
    /// CHANNEL_OPEN_FAILURE (92). The two reserved zero words are written, and ignored on
    /// input.
    ChannelOpenFailure {
        /// The opener's channel id.
        recipient: u32,
        /// An `OPEN_*` [`crate::reason`] code.
        reason: u32,
    },
    /// CHANNEL_WINDOW_ADJUST (93).
    WindowAdjust {
        /// The receiver's channel id.
        recipient: u32,
        /// Bytes added to the receiver's send window.
        bytes: u32,
    },
    /// CHANNEL_DATA (94). The payload is a zero-copy slice of the read buffer.
    ChannelData {
        /// The receiver's channel id.
        recipient: u32,
        /// The payload (limited by [`crate::Limits::max_data`]).
        data: Bytes,
    },
    /// CHANNEL_CLOSE (97).
    ChannelClose {
        /// The receiver's channel id.
        recipient: u32,
    },
    /// PROTOCOLVERSION (192). The 64 reserved bytes are written as zeros and ignored on input.
    ProtocolVersion {
        /// Major version; CIRA devices send 1.
        major: u32,
        /// Minor version; CIRA devices send 0.
        minor: u32,
        /// Why the device connected: 1 user initiated, 2 alert, 3 provisioning, 4 periodic.
        trigger: u32,
        /// The device GUID (converted from the wire byte order).
        guid: Guid,
    },
    /// KEEPALIVE_REQUEST (208).
    KeepaliveRequest {
        /// Echoed in the reply.
        cookie: u32,
    },
    /// KEEPALIVE_REPLY (209).
    KeepaliveReply {
        /// The request's cookie.
        cookie: u32,
    },
    /// KEEPALIVE_OPTIONS_REQUEST (210).
    KeepaliveOptionsRequest {
        /// Keepalive interval in seconds.
        interval: u32,
        /// Timeout in seconds.
        timeout: u32,
    },
    /// KEEPALIVE_OPTIONS_REPLY (211).
    KeepaliveOptionsReply {
        /// The interval the device will use, in seconds.
        interval: u32,
        /// The timeout the device will use, in seconds.
        timeout: u32,
    },
}

impl Message {
    /// The message type byte ([`crate::msg`]).
    pub fn message_type(&self) -> u8 {
        match self {
            Self::Disconnect { .. } => msg::DISCONNECT,
            Self::ServiceRequest { .. } => msg::SERVICE_REQUEST,
            Self::ServiceAccept { .. } => msg::SERVICE_ACCEPT,
            Self::UserAuthRequest { .. } => msg::USERAUTH_REQUEST,
            Self::UserAuthFailure { .. } => msg::USERAUTH_FAILURE,
            Self::UserAuthSuccess => msg::USERAUTH_SUCCESS,
            Self::GlobalRequest { .. } => msg::GLOBAL_REQUEST,
            Self::RequestSuccess { .. } => msg::REQUEST_SUCCESS,
            Self::RequestFailure => msg::REQUEST_FAILURE,
            Self::ChannelOpen { .. } => msg::CHANNEL_OPEN,
            Self::ChannelOpenConfirmation { .. } => msg::CHANNEL_OPEN_CONFIRMATION,
            Self::ChannelOpenFailure { .. } => msg::CHANNEL_OPEN_FAILURE,
            Self::WindowAdjust { .. } => msg::CHANNEL_WINDOW_ADJUST,
            Self::ChannelData { .. } => msg::CHANNEL_DATA,
            Self::ChannelClose { .. } => msg::CHANNEL_CLOSE,
            Self::ProtocolVersion { .. } => msg::PROTOCOL_VERSION,
            Self::KeepaliveRequest { .. } => msg::KEEPALIVE_REQUEST,
            Self::KeepaliveReply { .. } => msg::KEEPALIVE_REPLY,
            Self::KeepaliveOptionsRequest { .. } => msg::KEEPALIVE_OPTIONS_REQUEST,
            Self::KeepaliveOptionsReply { .. } => msg::KEEPALIVE_OPTIONS_REPLY,
        }
    }
}

/// Who may send a message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sender {
    /// Only the device (the APF client).
    Device,
    /// Only the server.
    Server,
    /// Either side.
    Both,
}

/// Who sends `ty`; `None` for an unknown type.
pub(crate) fn sender_of(ty: u8) -> Option<Sender> {
    Some(match ty {
        msg::SERVICE_REQUEST
        | msg::USERAUTH_REQUEST
        | msg::GLOBAL_REQUEST
        | msg::PROTOCOL_VERSION
        | msg::KEEPALIVE_OPTIONS_REPLY => Sender::Device,
        msg::SERVICE_ACCEPT
        | msg::USERAUTH_FAILURE
        | msg::USERAUTH_SUCCESS
        | msg::REQUEST_SUCCESS
        | msg::REQUEST_FAILURE
        | msg::KEEPALIVE_OPTIONS_REQUEST => Sender::Server,
        msg::DISCONNECT
        | msg::CHANNEL_OPEN
        | msg::CHANNEL_OPEN_CONFIRMATION
        | msg::CHANNEL_OPEN_FAILURE
        | msg::CHANNEL_WINDOW_ADJUST
        | msg::CHANNEL_DATA
        | msg::CHANNEL_CLOSE
        | msg::KEEPALIVE_REQUEST
        | msg::KEEPALIVE_REPLY => Sender::Both,
        _ => return None,
    })
}
