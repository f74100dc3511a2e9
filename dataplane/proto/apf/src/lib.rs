//! Sans-IO Intel AMT APF protocol, CIRA flavour: the message codec and the server-side session.
//!
//! APF ("AMT Port Forwarding") is the SSH-like protocol an Intel AMT device speaks to a
//! Management Presence Server after it has opened a TLS connection to it (CIRA). The device is
//! the TLS client and the APF client; we are the server. Everything here works on the plaintext
//! inside TLS.
//!
//! What this crate does:
//!
//! - [`decode`] takes one device-to-server [`Message`] off the front of a [`bytes::BytesMut`]
//!   read buffer. APF has no outer length header, so the decoder walks the fields: it returns
//!   `Ok(None)` for input that is merely incomplete (leaving the buffer untouched), checks every
//!   length field against the caller's [`Limits`] as soon as the length field itself has
//!   arrived (before waiting for the bytes), and hands out CHANNEL_DATA payload as a zero-copy
//!   slice of the read buffer.
//! - [`encode`] writes any message. USERAUTH_FAILURE is written in the 14-byte SSH/LMS form
//!   (`s(methods)`, `bool partial`), not the 15-byte form of the Node MPS.
//! - [`client::ClientDecoder`] decodes the server-to-device direction for device simulators and
//!   tests. REQUEST_SUCCESS is one byte (cancel) or five (tcpip-forward, with the port); the
//!   byte stream alone cannot tell which, so the client decoder is told what it asked for (see
//!   [`client`]). The server-side [`decode`] never sees REQUEST_SUCCESS: a device does not send
//!   it, and [`decode`] refuses every type only a server sends ([`DecodeError::WrongDirection`]).
//! - [`Guid`] converts between the wire byte order of PROTOCOLVERSION (first three groups
//!   little-endian) and the textual RFC 4122 order used everywhere else.
//! - [`ServerSession`] is the server-side state machine, strict about the message order the
//!   reference servers leave unchecked: PROTOCOLVERSION, the caller's allowlist decision,
//!   `auth@amt.intel.com`, password authentication decided by the caller, `pfwd@amt.intel.com`,
//!   then port forwards, keepalives and channels with window flow control in both directions.
//!   Time enters as `now: Instant`; output is [`Event`]s, bytes to send
//!   ([`ServerSession::poll_transmit`]) and a deadline ([`ServerSession::poll_timeout`]).
//!
//! What this crate deliberately does not do: touch sockets or TLS, read the clock, look up
//! GUIDs or credentials (the caller decides, see [`Event::Version`] and [`Event::Auth`]), or
//! parse what travels inside a channel (HTTP/WS-MAN, redirection). It implements no
//! device-initiated channels (they are refused), no `JSON_CONTROL` (MeshCentral's type 250) and
//! no PROTOCOLVERSION reply (CIRA servers never send one).
//!
//! Wire types (RFC 4251 style): `u32` is 4 bytes big-endian, a string is a `u32` length and raw
//! bytes, a `bool` is one byte that must be 0 or 1. Reserved fields (DISCONNECT's `u16`, the
//! `0xFFFFFFFF` of CHANNEL_OPEN and CHANNEL_OPEN_CONFIRMATION, CHANNEL_OPEN_FAILURE's two zero
//! words, PROTOCOLVERSION's 64 bytes) are written with the reference values and ignored on
//! input.

#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]
#![warn(missing_docs)]

pub mod client;
mod decode;
mod encode;
mod error;
mod guid;
mod message;
mod session;

pub use decode::decode;
pub use encode::encode;
pub use error::DecodeError;
pub use guid::{Guid, ParseGuidError};
pub use message::{AuthMethod, GlobalKind, Message};
pub use session::{
    ChannelError, ChannelId, CloseReason, Event, FIRST_CHANNEL_ID, MAX_NON_PASSWORD_AUTH,
    ServerSession, SessionConfig, State,
};

/// Message type numbers (the first byte of every message).
pub mod msg {
    /// DISCONNECT: `u32 reason`, `u16 reserved`. Either side.
    pub const DISCONNECT: u8 = 1;
    /// SERVICE_REQUEST: `s(service)`. Device to server.
    pub const SERVICE_REQUEST: u8 = 5;
    /// SERVICE_ACCEPT: `s(service)`. Server to device.
    pub const SERVICE_ACCEPT: u8 = 6;
    /// USERAUTH_REQUEST: `s(user)`, `s(service)`, `s(method)`, method fields. Device to server.
    pub const USERAUTH_REQUEST: u8 = 50;
    /// USERAUTH_FAILURE: `s(methods)`, `bool partial`. Server to device.
    pub const USERAUTH_FAILURE: u8 = 51;
    /// USERAUTH_SUCCESS: no fields. Server to device.
    pub const USERAUTH_SUCCESS: u8 = 52;
    /// GLOBAL_REQUEST: `s(name)`, `bool want_reply`, request fields. Device to server.
    pub const GLOBAL_REQUEST: u8 = 80;
    /// REQUEST_SUCCESS: `u32 port` for tcpip-forward, nothing for cancel. Server to device.
    pub const REQUEST_SUCCESS: u8 = 81;
    /// REQUEST_FAILURE: no fields. Server to device.
    pub const REQUEST_FAILURE: u8 = 82;
    /// CHANNEL_OPEN. Either side (device-initiated opens are refused).
    pub const CHANNEL_OPEN: u8 = 90;
    /// CHANNEL_OPEN_CONFIRMATION. Either side.
    pub const CHANNEL_OPEN_CONFIRMATION: u8 = 91;
    /// CHANNEL_OPEN_FAILURE. Either side.
    pub const CHANNEL_OPEN_FAILURE: u8 = 92;
    /// CHANNEL_WINDOW_ADJUST. Either side.
    pub const CHANNEL_WINDOW_ADJUST: u8 = 93;
    /// CHANNEL_DATA. Either side.
    pub const CHANNEL_DATA: u8 = 94;
    /// CHANNEL_CLOSE. Either side.
    pub const CHANNEL_CLOSE: u8 = 97;
    /// PROTOCOLVERSION: `u32 major`, `u32 minor`, `u32 trigger`, 16-byte GUID, 64 reserved
    /// bytes. Device to server.
    pub const PROTOCOL_VERSION: u8 = 192;
    /// KEEPALIVE_REQUEST: `u32 cookie`. Either side (in practice the device).
    pub const KEEPALIVE_REQUEST: u8 = 208;
    /// KEEPALIVE_REPLY: `u32 cookie`. Either side.
    pub const KEEPALIVE_REPLY: u8 = 209;
    /// KEEPALIVE_OPTIONS_REQUEST: `u32 interval_s`, `u32 timeout_s`. Server to device.
    pub const KEEPALIVE_OPTIONS_REQUEST: u8 = 210;
    /// KEEPALIVE_OPTIONS_REPLY: `u32 interval_s`, `u32 timeout_s`. Device to server.
    pub const KEEPALIVE_OPTIONS_REPLY: u8 = 211;
}

/// Reason codes: DISCONNECT reasons (the SSH set, as used by MPS and LMS) and
/// CHANNEL_OPEN_FAILURE reasons (`OPEN_*`).
pub mod reason {
    /// DISCONNECT: the host is not allowed to connect (unknown GUID).
    pub const HOST_NOT_ALLOWED_TO_CONNECT: u32 = 1;
    /// DISCONNECT: protocol error.
    pub const PROTOCOL_ERROR: u32 = 2;
    /// DISCONNECT: key exchange failed (SSH; unused by APF).
    pub const KEY_EXCHANGE_FAILED: u32 = 3;
    /// DISCONNECT: reserved.
    pub const RESERVED: u32 = 4;
    /// DISCONNECT: MAC error (SSH; unused by APF).
    pub const MAC_ERROR: u32 = 5;
    /// DISCONNECT: compression error (SSH; unused by APF).
    pub const COMPRESSION_ERROR: u32 = 6;
    /// DISCONNECT: the requested service is not available.
    pub const SERVICE_NOT_AVAILABLE: u32 = 7;
    /// DISCONNECT: the protocol version is not supported.
    pub const PROTOCOL_VERSION_NOT_SUPPORTED: u32 = 8;
    /// DISCONNECT: host key not verifiable (SSH; unused by APF).
    pub const HOST_KEY_NOT_VERIFIABLE: u32 = 9;
    /// DISCONNECT: connection lost.
    pub const CONNECTION_LOST: u32 = 10;
    /// DISCONNECT: by application.
    pub const BY_APPLICATION: u32 = 11;
    /// DISCONNECT: too many connections.
    pub const TOO_MANY_CONNECTIONS: u32 = 12;
    /// DISCONNECT: authentication cancelled by the user.
    pub const AUTH_CANCELLED_BY_USER: u32 = 13;
    /// DISCONNECT: no more authentication methods available.
    pub const NO_MORE_AUTH_METHODS_AVAILABLE: u32 = 14;
    /// DISCONNECT: invalid credentials (LMS: illegal user name).
    pub const INVALID_CREDENTIALS: u32 = 15;
    /// DISCONNECT: connection timed out.
    pub const CONNECTION_TIMED_OUT: u32 = 16;
    /// DISCONNECT: by policy.
    pub const BY_POLICY: u32 = 17;
    /// DISCONNECT: temporarily unavailable.
    pub const TEMPORARILY_UNAVAILABLE: u32 = 18;

    /// CHANNEL_OPEN_FAILURE: administratively prohibited.
    pub const OPEN_ADMINISTRATIVELY_PROHIBITED: u32 = 1;
    /// CHANNEL_OPEN_FAILURE: connect failed.
    pub const OPEN_CONNECT_FAILED: u32 = 2;
    /// CHANNEL_OPEN_FAILURE: unknown channel type.
    pub const OPEN_UNKNOWN_CHANNEL_TYPE: u32 = 3;
    /// CHANNEL_OPEN_FAILURE: resource shortage.
    pub const OPEN_RESOURCE_SHORTAGE: u32 = 4;
}

/// Service and request names on the wire.
pub mod names {
    /// The authentication service a device asks for first.
    pub const AUTH_SERVICE: &str = "auth@amt.intel.com";
    /// The port-forwarding service a device asks for after authenticating.
    pub const PFWD_SERVICE: &str = "pfwd@amt.intel.com";
    /// GLOBAL_REQUEST: start forwarding a port.
    pub const TCPIP_FORWARD: &str = "tcpip-forward";
    /// GLOBAL_REQUEST: stop forwarding a port.
    pub const CANCEL_TCPIP_FORWARD: &str = "cancel-tcpip-forward";
    /// GLOBAL_REQUEST: send a UDP datagram (refused by this server).
    pub const UDP_SEND_TO: &str = "udp-send-to@amt.intel.com";
    /// USERAUTH method: password.
    pub const METHOD_PASSWORD: &str = "password";
    /// USERAUTH method: none.
    pub const METHOD_NONE: &str = "none";
    /// CHANNEL_OPEN type the server uses.
    pub const FORWARDED_TCPIP: &str = "forwarded-tcpip";
}

/// The default [`Limits::max_string`]: 2048 bytes, as in MPS and MeshCentral.
pub const DEFAULT_MAX_STRING: usize = 2048;

/// The default [`Limits::max_data`]: 1 MiB, as in MPS (`MAX_CIRA_WINDOW`).
pub const DEFAULT_MAX_DATA: usize = 1 << 20;

/// Size limits the decoder enforces from length fields, before the bytes arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest string field (names, user, password, addresses). Default 2048.
    pub max_string: usize,
    /// The longest CHANNEL_DATA payload (and udp-send-to datagram). Default 1 MiB. The session
    /// also splits what it sends so no CHANNEL_DATA exceeds it.
    pub max_data: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_string: DEFAULT_MAX_STRING,
            max_data: DEFAULT_MAX_DATA,
        }
    }
}

impl Limits {
    /// An upper bound on the encoded size of any single message within these limits (the
    /// largest is a udp-send-to GLOBAL_REQUEST: four strings, one datagram, fixed fields).
    pub fn max_message_len(&self) -> usize {
        self.max_data
            .saturating_add(self.max_string.saturating_mul(4))
            .saturating_add(128)
    }
}

#[cfg(test)]
mod tests;
