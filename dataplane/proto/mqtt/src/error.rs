//! The decoder's and encoder's error types (house style rule 14: one enum per layer, static
//! context only, never text taken from peer data).

use crate::reason;
use crate::topic::TopicError;

/// Why a packet could not be decoded. The connection must be closed; [`Self::reason_code`] is
/// the MQTT 5.0 reason to send first (in CONNACK before the session exists, in DISCONNECT after).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The fixed header announces a packet (header included) larger than the caller's limit.
    /// Detected from the header alone, before the body is buffered (MQTT 5.0 §3.2.2.3.6).
    #[error("packet of {size} bytes exceeds the maximum of {max}")]
    PacketTooLarge {
        /// Whole packet size announced by the fixed header, in bytes.
        size: u64,
        /// The caller's limit.
        max: u32,
    },
    /// The remaining length has a continuation bit in its fourth byte (§1.5.5, 3.1.1 §2.2.3).
    #[error("malformed remaining length")]
    MalformedRemainingLength,
    /// The packet cannot be parsed or breaks a rule the spec calls malformed (reason 0x81).
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// The packet parses but holds a value the protocol forbids (reason 0x82).
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// CONNECT names a protocol or level this crate does not speak (§3.1.2.1-2): reason 0x84, or
    /// MQTT 3.1.1 return code 1.
    #[error("unsupported protocol level {level}")]
    UnsupportedProtocol {
        /// The protocol level byte; 0 if the packet ends before it.
        level: u8,
    },
    /// A PUBLISH or will topic name is not valid (§4.7): reason 0x90.
    #[error("invalid topic name: {0}")]
    InvalidTopic(TopicError),
    /// A SUBSCRIBE or UNSUBSCRIBE filter is valid UTF-8 but breaks the wildcard or `$share`
    /// rules (§4.7.1, §4.8.2): reason 0x8F. The whole packet is refused, as Mosquitto does, rather
    /// than answering that one filter with a SUBACK failure.
    #[error("invalid topic filter: {0}")]
    InvalidTopicFilter(TopicError),
    /// A PUBLISH carries Topic Alias 0 (MQTT 5.0 §3.3.2.3.4): reason 0x94.
    #[error("topic alias 0")]
    TopicAliasInvalid,
    /// Reserved for the broker: the client identifier is not acceptable (reason 0x85). The
    /// decoder itself accepts any valid UTF-8 client identifier.
    #[error("client identifier not valid")]
    ClientIdInvalid,
}

impl DecodeError {
    /// The MQTT 5.0 reason code to send for this error.
    pub fn reason_code(&self) -> u8 {
        match self {
            Self::PacketTooLarge { .. } => reason::PACKET_TOO_LARGE,
            Self::MalformedRemainingLength | Self::Malformed(_) => reason::MALFORMED,
            Self::Protocol(_) => reason::PROTOCOL_ERROR,
            Self::UnsupportedProtocol { .. } => reason::UNSUPPORTED_PROTOCOL_VERSION,
            Self::InvalidTopic(_) => reason::TOPIC_NAME_INVALID,
            Self::InvalidTopicFilter(_) => reason::TOPIC_FILTER_INVALID,
            Self::ClientIdInvalid => reason::CLIENT_ID_NOT_VALID,
            Self::TopicAliasInvalid => reason::TOPIC_ALIAS_INVALID,
        }
    }
}

/// Why a packet could not be encoded. Always a bug or a limit in the caller's data, never
/// caused by a peer; nothing is written to the destination buffer when this is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The remaining length would exceed 268 435 455 bytes (§1.5.5).
    #[error("packet too large to encode")]
    TooLarge,
    /// A UTF-8 string or binary data field is longer than 65 535 bytes (§1.5.4, §1.5.6).
    #[error("string or binary field longer than 65535 bytes")]
    StringTooLong,
    /// The packet cannot be represented: a missing or zero packet identifier, a property not
    /// allowed in that packet, a subscription identifier out of range, ...
    #[error("invalid packet: {0}")]
    Invalid(&'static str),
}
