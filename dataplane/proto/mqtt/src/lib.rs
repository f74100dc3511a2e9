//! Sans-IO MQTT codec: MQTT 3.1 (`MQIsdp`), 3.1.1 and 5.0 control packets.
//!
//! What this crate does:
//!
//! - [`decode`] takes one packet off the front of a [`bytes::BytesMut`] read buffer. It returns
//!   `Ok(None)` for a partial packet (leaving the buffer untouched), and checks the caller's size
//!   limit from the fixed header alone, before the body is buffered ([`peek_header`] exposes that
//!   check). A PUBLISH payload is a zero-copy slice of the read buffer.
//! - [`Packet::encode`] writes a packet for a given protocol [`Version`] (MQTT 3.x has no
//!   properties and fewer reason codes; the encoder drops or maps them), and
//!   [`Publish::encode_head`] writes a PUBLISH without its payload so one payload can be shared by
//!   every subscriber.
//! - [`TopicName`] and [`TopicFilter`] are validated newtypes (MQTT 5.0 §4.7, §4.8.2), and
//!   [`topic_matches`] is the matcher with the `$` rule of §4.7.2.
//! - Every [`DecodeError`] maps to the reason code to send in a CONNACK or DISCONNECT
//!   ([`DecodeError::reason_code`]); [`v3_connack_code`] maps that to an MQTT 3.1.1 CONNACK code.
//!
//! The decoder checks everything that can be checked from one packet alone: fixed-header flags
//! (§2.1.3), exact remaining length, UTF-8 string rules (§1.5.4), which properties a packet may
//! carry (§2.2.2.2) and their value ranges, reason codes allowed per packet, and the topic and
//! filter syntax. Packets are decoded whichever side sends them (a CONNACK decodes too), so the
//! same decoder serves the broker, the load generator and the tests.
//!
//! What this crate deliberately does not do: touch sockets, read the clock, or keep session
//! state. It does not know which packets are legal *in which order* (a second CONNECT, a
//! SUBACK sent by a client, a topic alias beyond the negotiated maximum, QoS flows, keep-alive
//! deadlines): that is the session state machine's job in the broker. It does not validate the
//! client identifier beyond the UTF-8 rules, nor PUBLISH payloads marked as UTF-8.
//!
//! Error classes used consistently throughout (MQTT 5.0 §1.2, §2.2.2.2, §4.13): a packet that
//! cannot be parsed, carries an unknown property or a property not allowed in that packet, or
//! breaks a rule the spec calls malformed, is [`DecodeError::Malformed`] (reason 0x81). A packet
//! that parses but holds a forbidden value (a repeated property, a zero packet identifier, a
//! reason code not defined for that packet, an out-of-range property value) is
//! [`DecodeError::Protocol`] (reason 0x82).
//!
//! Non-minimal variable byte integers (e.g. `0x80 0x00` for zero) are rejected as malformed in
//! every version: MQTT 5.0 §1.5.5 requires the minimal encoding, and MQTT 3.1.1 senders never
//! produce anything else.

#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]
#![warn(missing_docs)]

mod codec;
mod decode;
mod encode;
mod error;
mod packet;
mod properties;
pub mod reason;
mod topic;
pub mod trie;
pub mod v3_connack;

pub use decode::{DecodeCtx, decode, peek_header};
pub use encode::encode_qos0_publish;
pub use error::{DecodeError, EncodeError};
pub use packet::{
    Ack, Auth, Connack, Connect, Disconnect, Packet, Publish, RetainHandling, Suback, Subscribe,
    SubscriptionOptions, Unsuback, Unsubscribe, Will,
};
pub use properties::{Properties, PublishProperties};
pub use topic::{MAX_TOPIC_LEN, TopicError, TopicFilter, TopicName, topic_matches};
pub use v3_connack::v3_connack_code;

/// The largest remaining length a fixed header can announce (MQTT 5.0 §1.5.5, 3.1.1 §2.2.3).
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;

/// The MQTT protocol version, from the protocol name and level in CONNECT (§3.1.2.1-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// MQTT 3.1: protocol name `MQIsdp`, level 3. Encoded and decoded like 3.1.1.
    V31,
    /// MQTT 3.1.1: protocol name `MQTT`, level 4.
    V311,
    /// MQTT 5.0: protocol name `MQTT`, level 5.
    V5,
}

impl Version {
    /// True for MQTT 5.0 (properties and reason codes on the wire).
    pub fn is_v5(self) -> bool {
        matches!(self, Self::V5)
    }

    /// The protocol level byte of CONNECT.
    pub fn level(self) -> u8 {
        match self {
            Self::V31 => 3,
            Self::V311 => 4,
            Self::V5 => 5,
        }
    }

    /// The protocol name of CONNECT.
    pub fn protocol_name(self) -> &'static str {
        match self {
            Self::V31 => "MQIsdp",
            Self::V311 | Self::V5 => "MQTT",
        }
    }
}

/// Quality of service (§4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QoS {
    /// QoS 0: fire and forget.
    AtMostOnce = 0,
    /// QoS 1: acknowledged by PUBACK.
    AtLeastOnce = 1,
    /// QoS 2: the PUBREC/PUBREL/PUBCOMP handshake.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for a wire value 0..=2; `None` for 3 and above.
    pub fn from_u8(v: u8) -> Option<QoS> {
        match v {
            0 => Some(Self::AtMostOnce),
            1 => Some(Self::AtLeastOnce),
            2 => Some(Self::ExactlyOnce),
            _ => None,
        }
    }

    /// The wire value.
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

#[cfg(test)]
mod tests;
