//! MQTT 5.0 reason codes (§2.4), as sent in CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK,
//! UNSUBACK, DISCONNECT and AUTH. A value below 0x80 is a success, 0x80 and above a failure.
//!
//! Which codes each packet may carry (§3.2.2.2, §3.4.2.1, §3.5.2.1, §3.6.2.1, §3.7.2.1,
//! §3.9.3, §3.11.3, §3.14.2.1, §3.15.2.1) is checked by the decoder; see [`allowed`].

/// Success / normal disconnection / granted QoS 0.
pub const SUCCESS: u8 = 0x00;
/// SUBACK: granted QoS 1.
pub const GRANTED_QOS_1: u8 = 0x01;
/// SUBACK: granted QoS 2.
pub const GRANTED_QOS_2: u8 = 0x02;
/// DISCONNECT: the client wants its will message published.
pub const DISCONNECT_WITH_WILL: u8 = 0x04;
/// PUBACK/PUBREC: accepted, but nobody subscribes to the topic.
pub const NO_MATCHING_SUBSCRIBERS: u8 = 0x10;
/// UNSUBACK: there was no such subscription.
pub const NO_SUBSCRIPTION_EXISTED: u8 = 0x11;
/// AUTH: continue the authentication exchange.
pub const CONTINUE_AUTH: u8 = 0x18;
/// AUTH: start re-authentication.
pub const RE_AUTH: u8 = 0x19;
/// Unspecified error.
pub const UNSPECIFIED: u8 = 0x80;
/// Malformed packet.
pub const MALFORMED: u8 = 0x81;
/// Protocol error.
pub const PROTOCOL_ERROR: u8 = 0x82;
/// Implementation specific error.
pub const IMPLEMENTATION_SPECIFIC: u8 = 0x83;
/// CONNACK: unsupported protocol version.
pub const UNSUPPORTED_PROTOCOL_VERSION: u8 = 0x84;
/// CONNACK: client identifier not valid.
pub const CLIENT_ID_NOT_VALID: u8 = 0x85;
/// CONNACK: bad user name or password.
pub const BAD_USERNAME_OR_PASSWORD: u8 = 0x86;
/// Not authorized.
pub const NOT_AUTHORIZED: u8 = 0x87;
/// CONNACK: server unavailable.
pub const SERVER_UNAVAILABLE: u8 = 0x88;
/// Server busy.
pub const SERVER_BUSY: u8 = 0x89;
/// CONNACK: banned.
pub const BANNED: u8 = 0x8A;
/// DISCONNECT: server shutting down.
pub const SERVER_SHUTTING_DOWN: u8 = 0x8B;
/// CONNACK/DISCONNECT: bad authentication method.
pub const BAD_AUTH_METHOD: u8 = 0x8C;
/// DISCONNECT: keep alive timeout.
pub const KEEP_ALIVE_TIMEOUT: u8 = 0x8D;
/// DISCONNECT: another connection took the session over.
pub const SESSION_TAKEN_OVER: u8 = 0x8E;
/// Topic filter invalid.
pub const TOPIC_FILTER_INVALID: u8 = 0x8F;
/// Topic name invalid.
pub const TOPIC_NAME_INVALID: u8 = 0x90;
/// Packet identifier in use.
pub const PACKET_ID_IN_USE: u8 = 0x91;
/// Packet identifier not found.
pub const PACKET_ID_NOT_FOUND: u8 = 0x92;
/// DISCONNECT: receive maximum exceeded.
pub const RECEIVE_MAX_EXCEEDED: u8 = 0x93;
/// DISCONNECT: topic alias invalid.
pub const TOPIC_ALIAS_INVALID: u8 = 0x94;
/// Packet too large.
pub const PACKET_TOO_LARGE: u8 = 0x95;
/// DISCONNECT: message rate too high.
pub const MESSAGE_RATE_TOO_HIGH: u8 = 0x96;
/// Quota exceeded.
pub const QUOTA_EXCEEDED: u8 = 0x97;
/// DISCONNECT: administrative action.
pub const ADMINISTRATIVE_ACTION: u8 = 0x98;
/// Payload format invalid.
pub const PAYLOAD_FORMAT_INVALID: u8 = 0x99;
/// Retain not supported.
pub const RETAIN_NOT_SUPPORTED: u8 = 0x9A;
/// QoS not supported.
pub const QOS_NOT_SUPPORTED: u8 = 0x9B;
/// Use another server.
pub const USE_ANOTHER_SERVER: u8 = 0x9C;
/// Server moved.
pub const SERVER_MOVED: u8 = 0x9D;
/// Shared subscriptions not supported.
pub const SHARED_SUBS_NOT_SUPPORTED: u8 = 0x9E;
/// Connection rate exceeded.
pub const CONNECTION_RATE_EXCEEDED: u8 = 0x9F;
/// DISCONNECT: maximum connect time.
pub const MAXIMUM_CONNECT_TIME: u8 = 0xA0;
/// Subscription identifiers not supported.
pub const SUBSCRIPTION_IDS_NOT_SUPPORTED: u8 = 0xA1;
/// Wildcard subscriptions not supported.
pub const WILDCARD_SUBS_NOT_SUPPORTED: u8 = 0xA2;

/// The reason codes each packet type may carry in MQTT 5.0, used by the decoder.
pub mod allowed {
    use super::*;

    /// CONNACK (§3.2.2.2).
    pub const CONNACK: &[u8] = &[
        SUCCESS,
        UNSPECIFIED,
        MALFORMED,
        PROTOCOL_ERROR,
        IMPLEMENTATION_SPECIFIC,
        UNSUPPORTED_PROTOCOL_VERSION,
        CLIENT_ID_NOT_VALID,
        BAD_USERNAME_OR_PASSWORD,
        NOT_AUTHORIZED,
        SERVER_UNAVAILABLE,
        SERVER_BUSY,
        BANNED,
        BAD_AUTH_METHOD,
        TOPIC_NAME_INVALID,
        PACKET_TOO_LARGE,
        QUOTA_EXCEEDED,
        PAYLOAD_FORMAT_INVALID,
        RETAIN_NOT_SUPPORTED,
        QOS_NOT_SUPPORTED,
        USE_ANOTHER_SERVER,
        SERVER_MOVED,
        CONNECTION_RATE_EXCEEDED,
    ];

    /// PUBACK and PUBREC (§3.4.2.1, §3.5.2.1).
    pub const PUBACK: &[u8] = &[
        SUCCESS,
        NO_MATCHING_SUBSCRIBERS,
        UNSPECIFIED,
        IMPLEMENTATION_SPECIFIC,
        NOT_AUTHORIZED,
        TOPIC_NAME_INVALID,
        PACKET_ID_IN_USE,
        QUOTA_EXCEEDED,
        PAYLOAD_FORMAT_INVALID,
    ];

    /// PUBREL and PUBCOMP (§3.6.2.1, §3.7.2.1).
    pub const PUBREL: &[u8] = &[SUCCESS, PACKET_ID_NOT_FOUND];

    /// SUBACK (§3.9.3).
    pub const SUBACK: &[u8] = &[
        SUCCESS,
        GRANTED_QOS_1,
        GRANTED_QOS_2,
        UNSPECIFIED,
        IMPLEMENTATION_SPECIFIC,
        NOT_AUTHORIZED,
        TOPIC_FILTER_INVALID,
        PACKET_ID_IN_USE,
        QUOTA_EXCEEDED,
        SHARED_SUBS_NOT_SUPPORTED,
        SUBSCRIPTION_IDS_NOT_SUPPORTED,
        WILDCARD_SUBS_NOT_SUPPORTED,
    ];

    /// SUBACK return codes in MQTT 3.1.1 (§3.9.3 of 3.1.1): granted QoS or failure.
    pub const SUBACK_V3: &[u8] = &[SUCCESS, GRANTED_QOS_1, GRANTED_QOS_2, UNSPECIFIED];

    /// UNSUBACK (§3.11.3).
    pub const UNSUBACK: &[u8] = &[
        SUCCESS,
        NO_SUBSCRIPTION_EXISTED,
        UNSPECIFIED,
        IMPLEMENTATION_SPECIFIC,
        NOT_AUTHORIZED,
        TOPIC_FILTER_INVALID,
        PACKET_ID_IN_USE,
    ];

    /// DISCONNECT (§3.14.2.1).
    pub const DISCONNECT: &[u8] = &[
        SUCCESS,
        DISCONNECT_WITH_WILL,
        UNSPECIFIED,
        MALFORMED,
        PROTOCOL_ERROR,
        IMPLEMENTATION_SPECIFIC,
        NOT_AUTHORIZED,
        SERVER_BUSY,
        SERVER_SHUTTING_DOWN,
        KEEP_ALIVE_TIMEOUT,
        SESSION_TAKEN_OVER,
        TOPIC_FILTER_INVALID,
        TOPIC_NAME_INVALID,
        RECEIVE_MAX_EXCEEDED,
        TOPIC_ALIAS_INVALID,
        PACKET_TOO_LARGE,
        MESSAGE_RATE_TOO_HIGH,
        QUOTA_EXCEEDED,
        ADMINISTRATIVE_ACTION,
        PAYLOAD_FORMAT_INVALID,
        RETAIN_NOT_SUPPORTED,
        QOS_NOT_SUPPORTED,
        USE_ANOTHER_SERVER,
        SERVER_MOVED,
        SHARED_SUBS_NOT_SUPPORTED,
        CONNECTION_RATE_EXCEEDED,
        MAXIMUM_CONNECT_TIME,
        SUBSCRIPTION_IDS_NOT_SUPPORTED,
        WILDCARD_SUBS_NOT_SUPPORTED,
    ];

    /// AUTH (§3.15.2.1).
    pub const AUTH: &[u8] = &[SUCCESS, CONTINUE_AUTH, RE_AUTH];
}
