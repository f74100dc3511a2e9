//! The control packets (MQTT 5.0 §3; 3.1.1 §3), as plain data. Decoding is in `decode.rs`,
//! encoding in `encode.rs`.

use std::fmt;

use bytes::Bytes;

use crate::properties::{Properties, PublishProperties};
use crate::topic::{TopicFilter, TopicName};
use crate::{QoS, Version};

/// The will message of a CONNECT (§3.1.2.5, §3.1.3.2-4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    /// Where the will is published.
    pub topic: TopicName,
    /// The will payload.
    pub payload: Bytes,
    /// QoS of the will publication.
    pub qos: QoS,
    /// Whether the will is retained.
    pub retain: bool,
    /// Will properties (MQTT 5.0 §3.1.3.2); empty in 3.x.
    pub properties: Properties,
}

/// CONNECT (§3.1). `Debug` redacts the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Connect {
    /// Protocol version requested, from the protocol name and level. A CONNECT is always
    /// encoded for this version, whatever version [`crate::Packet::encode`] is given.
    pub version: Version,
    /// Clean Start (5.0) / Clean Session (3.x).
    pub clean_start: bool,
    /// Keep alive, seconds; 0 disables it.
    pub keep_alive: u16,
    /// Client identifier; may be empty (the server may assign one).
    pub client_id: String,
    /// The will, if the will flag is set.
    pub will: Option<Will>,
    /// User name, if the user name flag is set.
    pub username: Option<String>,
    /// Password, if the password flag is set. 3.x requires a user name with it.
    pub password: Option<Bytes>,
    /// CONNECT properties (5.0 only).
    pub properties: Properties,
}

impl fmt::Debug for Connect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connect")
            .field("version", &self.version)
            .field("clean_start", &self.clean_start)
            .field("keep_alive", &self.keep_alive)
            .field("client_id", &self.client_id)
            .field("will", &self.will)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("properties", &self.properties)
            .finish()
    }
}

/// CONNACK (§3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connack {
    /// Session Present flag.
    pub session_present: bool,
    /// MQTT 5.0 reason code. For 3.x the encoder sends [`crate::v3_connack_code`] of it, and the
    /// decoder maps the 3.x return code back to the matching 5.0 reason.
    pub reason_code: u8,
    /// CONNACK properties (5.0 only).
    pub properties: Properties,
}

/// PUBLISH (§3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// DUP flag: a redelivery. Never set at QoS 0.
    pub dup: bool,
    /// QoS.
    pub qos: QoS,
    /// RETAIN flag.
    pub retain: bool,
    /// Topic name. Empty only in 5.0 when `properties.topic_alias` is set (§3.3.2.3.4);
    /// otherwise a valid [`TopicName`] (checked on decode, and on encode for emptiness only).
    pub topic: String,
    /// Packet identifier: `Some` (non-zero) iff QoS > 0.
    pub packet_id: Option<u16>,
    /// PUBLISH properties (5.0 only), boxed when there are any.
    pub properties: PublishProperties,
    /// Application payload: a zero-copy slice of the read buffer when decoded.
    pub payload: Bytes,
}

/// PUBACK, PUBREC, PUBREL and PUBCOMP (§3.4-3.7), which share one layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// Packet identifier being acknowledged.
    pub packet_id: u16,
    /// MQTT 5.0 reason code; [`crate::reason::SUCCESS`] in 3.x.
    pub reason_code: u8,
    /// Properties (5.0 only): reason string and user properties.
    pub properties: Properties,
}

/// Retain Handling subscription option (MQTT 5.0 §3.8.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetainHandling {
    /// Send retained messages at the time of the subscribe.
    SendAtSubscribe = 0,
    /// Send retained messages only if the subscription did not exist.
    SendIfNew = 1,
    /// Do not send retained messages.
    DoNotSend = 2,
}

impl RetainHandling {
    /// The option value for a wire value 0..=2; `None` for 3.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::SendAtSubscribe),
            1 => Some(Self::SendIfNew),
            2 => Some(Self::DoNotSend),
            _ => None,
        }
    }

    /// The wire value.
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// Subscription options of one SUBSCRIBE filter (MQTT 5.0 §3.8.3.1). Only `qos` exists in 3.x.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubscriptionOptions {
    /// Maximum QoS granted.
    pub qos: QoS,
    /// No Local: do not forward the client's own publications to it.
    pub no_local: bool,
    /// Retain As Published: keep the RETAIN flag when forwarding.
    pub retain_as_published: bool,
    /// Retain Handling.
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    /// Options with `qos` and the 3.x defaults for everything else.
    pub fn qos(qos: QoS) -> Self {
        Self {
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainHandling::SendAtSubscribe,
        }
    }
}

/// SUBSCRIBE (§3.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// Packet identifier (non-zero).
    pub packet_id: u16,
    /// At least one filter with its options.
    pub filters: Vec<(TopicFilter, SubscriptionOptions)>,
    /// Properties (5.0 only): at most one subscription identifier, user properties.
    pub properties: Properties,
}

/// SUBACK (§3.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suback {
    /// Packet identifier of the SUBSCRIBE.
    pub packet_id: u16,
    /// One reason code per filter. In 3.x every failure (0x80 and above) is sent as 0x80.
    pub reason_codes: Vec<u8>,
    /// Properties (5.0 only).
    pub properties: Properties,
}

/// UNSUBSCRIBE (§3.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Packet identifier (non-zero).
    pub packet_id: u16,
    /// At least one filter.
    pub filters: Vec<TopicFilter>,
    /// Properties (5.0 only): user properties.
    pub properties: Properties,
}

/// UNSUBACK (§3.11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsuback {
    /// Packet identifier of the UNSUBSCRIBE.
    pub packet_id: u16,
    /// One reason code per filter in 5.0; empty in 3.x (which has none on the wire).
    pub reason_codes: Vec<u8>,
    /// Properties (5.0 only).
    pub properties: Properties,
}

/// DISCONNECT (§3.14). In 3.x it has no body: reason and properties are dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect {
    /// MQTT 5.0 reason code; [`crate::reason::SUCCESS`] in 3.x.
    pub reason_code: u8,
    /// Properties (5.0 only).
    pub properties: Properties,
}

/// AUTH (MQTT 5.0 §3.15). Does not exist in 3.x.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// Reason code: success, continue authentication or re-authenticate.
    pub reason_code: u8,
    /// Properties: authentication method and data, reason string, user properties.
    pub properties: Properties,
}

/// Any control packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT (boxed: it is much larger than the others).
    Connect(Box<Connect>),
    /// CONNACK.
    Connack(Connack),
    /// PUBLISH.
    Publish(Publish),
    /// PUBACK.
    Puback(Ack),
    /// PUBREC.
    Pubrec(Ack),
    /// PUBREL.
    Pubrel(Ack),
    /// PUBCOMP.
    Pubcomp(Ack),
    /// SUBSCRIBE.
    Subscribe(Subscribe),
    /// SUBACK.
    Suback(Suback),
    /// UNSUBSCRIBE.
    Unsubscribe(Unsubscribe),
    /// UNSUBACK.
    Unsuback(Unsuback),
    /// PINGREQ.
    Pingreq,
    /// PINGRESP.
    Pingresp,
    /// DISCONNECT.
    Disconnect(Disconnect),
    /// AUTH (5.0 only).
    Auth(Auth),
}

impl Packet {
    /// The packet type's name, for logs and metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Connect(_) => "CONNECT",
            Self::Connack(_) => "CONNACK",
            Self::Publish(_) => "PUBLISH",
            Self::Puback(_) => "PUBACK",
            Self::Pubrec(_) => "PUBREC",
            Self::Pubrel(_) => "PUBREL",
            Self::Pubcomp(_) => "PUBCOMP",
            Self::Subscribe(_) => "SUBSCRIBE",
            Self::Suback(_) => "SUBACK",
            Self::Unsubscribe(_) => "UNSUBSCRIBE",
            Self::Unsuback(_) => "UNSUBACK",
            Self::Pingreq => "PINGREQ",
            Self::Pingresp => "PINGRESP",
            Self::Disconnect(_) => "DISCONNECT",
            Self::Auth(_) => "AUTH",
        }
    }

    /// The control packet type number of the fixed header (§2.1.2).
    pub fn packet_type(&self) -> u8 {
        match self {
            Self::Connect(_) => CONNECT,
            Self::Connack(_) => CONNACK,
            Self::Publish(_) => PUBLISH,
            Self::Puback(_) => PUBACK,
            Self::Pubrec(_) => PUBREC,
            Self::Pubrel(_) => PUBREL,
            Self::Pubcomp(_) => PUBCOMP,
            Self::Subscribe(_) => SUBSCRIBE,
            Self::Suback(_) => SUBACK,
            Self::Unsubscribe(_) => UNSUBSCRIBE,
            Self::Unsuback(_) => UNSUBACK,
            Self::Pingreq => PINGREQ,
            Self::Pingresp => PINGRESP,
            Self::Disconnect(_) => DISCONNECT,
            Self::Auth(_) => AUTH,
        }
    }
}

// Control packet types (§2.1.2).
pub(crate) const CONNECT: u8 = 1;
pub(crate) const CONNACK: u8 = 2;
pub(crate) const PUBLISH: u8 = 3;
pub(crate) const PUBACK: u8 = 4;
pub(crate) const PUBREC: u8 = 5;
pub(crate) const PUBREL: u8 = 6;
pub(crate) const PUBCOMP: u8 = 7;
pub(crate) const SUBSCRIBE: u8 = 8;
pub(crate) const SUBACK: u8 = 9;
pub(crate) const UNSUBSCRIBE: u8 = 10;
pub(crate) const UNSUBACK: u8 = 11;
pub(crate) const PINGREQ: u8 = 12;
pub(crate) const PINGRESP: u8 = 13;
pub(crate) const DISCONNECT: u8 = 14;
pub(crate) const AUTH: u8 = 15;
