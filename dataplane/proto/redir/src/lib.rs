//! Sans-IO Intel AMT redirection relay: the interceptor that authenticates a browser's SOL,
//! IDER or KVM session to the device without the browser ever learning the AMT password.
//!
//! A browser (the Open AMT sample UI, MeshCentral-style clients) reaches a device's redirection
//! service (port 16994, plain, inside the CIRA tunnel) through a WebSocket relay. The relay
//! runs an [`Interceptor`] over the two byte streams:
//!
//! - StartRedirectionSession (0x10) and its reply (0x11) pass through unchanged.
//! - An AuthenticateSession query (0x13, auth type 0) and its reply (0x14, the list of
//!   supported methods) pass through unchanged, as Open AMT's MPS does.
//! - The browser's digest AuthenticateSession (0x13, auth type 4) is dropped, whatever it
//!   contains. Without a challenge yet, the interceptor sends the device an empty digest for
//!   user `admin` and URI `/RedirectionService`; the device answers with its challenge (0x14,
//!   status 1, realm, nonce, qop), which the interceptor captures and passes on. With a
//!   challenge, the interceptor emits [`Event::NeedDigest`] and holds everything the browser
//!   sends; the caller asks the control plane (which holds the password) for the response and
//!   hands it back with [`Interceptor::digest_response`]; only then does the interceptor send
//!   its own AuthenticateSession to the device.
//! - When the device reports success (0x14, status 0), both directions switch to transparent
//!   pass-through: no parsing, bytes are only appended to the output buffer.
//!
//! The browser's user name, digest response, cnonce and nonce count are never forwarded. Auth
//! types other than query and digest (1 user/password, 2 Kerberos, 3 the qop-less "bad
//! digest") are refused with [`RedirError::UnsupportedAuthType`]. MPS passes those through
//! unchanged; we do not, because they would carry browser-chosen credentials (user/password in
//! the clear) to the device and let a browser guess the AMT password through the gateway.
//!
//! The digest is RFC 2617 §3.2.2.1 with MD5 and `qop=auth`:
//! `MD5(MD5(user:realm:password):nonce:nc:cnonce:auth:MD5(POST:/RedirectionService))`, in
//! lowercase hex. The interceptor chooses the cnonce (32 hex digits from 16 random bytes the
//! caller supplies, see [`Cnonce`]) and the nonce count (`00000001` for the first response to
//! a nonce), and puts everything the control plane needs in the [`DigestRequest`].
//!
//! Wire format (Intel AMT SDK, redirection protocol; byte-compatible with MPS
//! `src/utils/redirectInterceptor.ts` and MeshCentral `amt-redir-ws`): the first byte is the
//! command; AuthenticateSession and its reply carry a little-endian `u32` data length at offset
//! 5; the strings inside digest data are each prefixed by a one-byte length. See [`wire`].
//!
//! What this crate deliberately does not do: touch sockets or WebSockets, read the clock or
//! draw random numbers, compute MD5 or know any password, check that the realm names the
//! device the caller meant (the realm is in the [`DigestRequest`]; the caller may compare it
//! with `Digest:<GUID>`), or parse anything after authentication (SOL, IDER and KVM messages
//! pass through untouched). Deadlines for the handshake belong to the caller.

#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]
#![warn(missing_docs)]

mod error;
mod interceptor;
pub mod wire;

pub use error::{RedirError, Side};
pub use interceptor::{Cnonce, DigestRequest, Event, Interceptor};
pub use wire::SessionType;

/// The AMT account the interceptor authenticates as.
pub const USER: &str = "admin";
/// The digest URI of the redirection service.
pub const URI: &str = "/RedirectionService";
/// The digest method AMT expects for the redirection service.
pub const METHOD: &str = "POST";
/// The only `qop` the interceptor uses.
pub const QOP: &str = "auth";

/// The default [`Limits::max_handshake`]: 4 KiB per direction.
pub const DEFAULT_MAX_HANDSHAKE: usize = 4096;
/// The default [`Limits::max_held`]: 16 KiB.
pub const DEFAULT_MAX_HELD: usize = 16 * 1024;
/// The default [`Limits::max_field`]: 128 bytes.
pub const DEFAULT_MAX_FIELD: u8 = 128;
/// The default [`Limits::max_auth_attempts`]: 3.
pub const DEFAULT_MAX_AUTH_ATTEMPTS: u8 = 3;

/// Bounds on what a peer can make the interceptor buffer or do before pass-through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Handshake bytes accepted from each side, counting every message consumed plus the one
    /// being assembled. A message whose announced length would exceed it is refused as soon as
    /// its length field arrives. Default [`DEFAULT_MAX_HANDSHAKE`].
    pub max_handshake: usize,
    /// Browser bytes held while the interceptor waits for the device (or for
    /// [`Interceptor::digest_response`]). Default [`DEFAULT_MAX_HELD`].
    pub max_held: usize,
    /// The longest realm, nonce or qop accepted in the device's challenge. Default
    /// [`DEFAULT_MAX_FIELD`].
    pub max_field: u8,
    /// How many digest responses the interceptor asks for in one session (AMT answers a wrong
    /// one with a fresh challenge, and the browser retries). Default
    /// [`DEFAULT_MAX_AUTH_ATTEMPTS`].
    pub max_auth_attempts: u8,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_handshake: DEFAULT_MAX_HANDSHAKE,
            max_held: DEFAULT_MAX_HELD,
            max_field: DEFAULT_MAX_FIELD,
            max_auth_attempts: DEFAULT_MAX_AUTH_ATTEMPTS,
        }
    }
}

#[cfg(test)]
mod tests;
