//! MQTT 3.1 / 3.1.1 CONNACK return codes (3.1.1 §3.2.2.3) and the mapping from MQTT 5.0
//! CONNACK reason codes.

use crate::reason;

/// Connection accepted.
pub const ACCEPTED: u8 = 0;
/// The server does not support the requested protocol level.
pub const UNACCEPTABLE_PROTOCOL_VERSION: u8 = 1;
/// The client identifier is valid UTF-8 but not allowed by the server.
pub const IDENTIFIER_REJECTED: u8 = 2;
/// The MQTT service is unavailable.
pub const SERVER_UNAVAILABLE: u8 = 3;
/// The user name or password is malformed (in practice: wrong).
pub const BAD_USERNAME_OR_PASSWORD: u8 = 4;
/// The client is not authorized to connect.
pub const NOT_AUTHORIZED: u8 = 5;

/// Maps an MQTT 5.0 CONNACK reason code to the MQTT 3.1.1 return code sent in its place.
///
/// - 0x00 Success: 0, accepted;
/// - 0x84 Unsupported protocol version: 1, unacceptable protocol version;
/// - 0x85 Client identifier not valid: 2, identifier rejected;
/// - 0x86 Bad user name or password: 4, bad user name or password;
/// - 0x87 Not authorized, 0x8A Banned, 0x8C Bad authentication method: 5, not authorized;
/// - everything else (0x88 Server unavailable, 0x89 Server busy, 0x80..=0x83, 0x90, 0x95,
///   0x97, 0x99..=0x9D, 0x9F, and any non-zero value below 0x80): 3, server unavailable.
///
/// A non-zero success-range value never maps to "accepted": only 0x00 accepts a connection.
pub fn v3_connack_code(v5_reason: u8) -> u8 {
    match v5_reason {
        reason::SUCCESS => ACCEPTED,
        reason::UNSUPPORTED_PROTOCOL_VERSION => UNACCEPTABLE_PROTOCOL_VERSION,
        reason::CLIENT_ID_NOT_VALID => IDENTIFIER_REJECTED,
        reason::BAD_USERNAME_OR_PASSWORD => BAD_USERNAME_OR_PASSWORD,
        reason::NOT_AUTHORIZED | reason::BANNED | reason::BAD_AUTH_METHOD => NOT_AUTHORIZED,
        _ => SERVER_UNAVAILABLE,
    }
}

/// The inverse used when decoding an MQTT 3.1.1 CONNACK: the v5 reason code each v3 return code
/// stands for. `None` for the reserved values 6..=255.
pub fn v5_reason_of(v3_code: u8) -> Option<u8> {
    match v3_code {
        ACCEPTED => Some(reason::SUCCESS),
        UNACCEPTABLE_PROTOCOL_VERSION => Some(reason::UNSUPPORTED_PROTOCOL_VERSION),
        IDENTIFIER_REJECTED => Some(reason::CLIENT_ID_NOT_VALID),
        SERVER_UNAVAILABLE => Some(reason::SERVER_UNAVAILABLE),
        BAD_USERNAME_OR_PASSWORD => Some(reason::BAD_USERNAME_OR_PASSWORD),
        NOT_AUTHORIZED => Some(reason::NOT_AUTHORIZED),
        _ => None,
    }
}
