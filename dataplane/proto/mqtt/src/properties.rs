//! MQTT 5.0 properties (§2.2.2): one struct holding every property, decoded and encoded with
//! the set each packet may carry (the table of §2.2.2.2).
//!
//! Decoding errors, consistently: an unknown identifier or one not allowed in the packet is
//! malformed (§2.2.2.2: "a Control Packet which contains an Identifier which is not valid for
//! its packet type ... is a Malformed Packet"), as is a property running past the property
//! length. A non-repeatable property given twice and a value out of its range are protocol
//! errors (the per-property rules of §3.x, e.g. §3.1.2.11.2).

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::{MAX_VARINT, Reader, field_len, put_field, put_varint, varint_len};
use crate::error::{DecodeError, EncodeError};
use crate::topic::TopicName;

/// Every MQTT 5.0 property. `None` or empty means absent.
///
/// Properties are only on the wire in MQTT 5.0; encoding for 3.x drops them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Properties {
    /// 0x01 Payload Format Indicator: 0 unspecified bytes, 1 UTF-8 (PUBLISH, will).
    pub payload_format_indicator: Option<u8>,
    /// 0x02 Message Expiry Interval, seconds (PUBLISH, will).
    pub message_expiry_interval: Option<u32>,
    /// 0x03 Content Type (PUBLISH, will).
    pub content_type: Option<String>,
    /// 0x08 Response Topic: a topic name, no wildcards (PUBLISH, will).
    pub response_topic: Option<TopicName>,
    /// 0x09 Correlation Data (PUBLISH, will).
    pub correlation_data: Option<Bytes>,
    /// 0x0B Subscription Identifier, 1..=268 435 455. A PUBLISH sent by the server may carry
    /// several (one per matching subscription); a SUBSCRIBE at most one.
    pub subscription_identifiers: Vec<u32>,
    /// 0x11 Session Expiry Interval, seconds (CONNECT, CONNACK, DISCONNECT).
    pub session_expiry_interval: Option<u32>,
    /// 0x12 Assigned Client Identifier (CONNACK).
    pub assigned_client_identifier: Option<String>,
    /// 0x13 Server Keep Alive, seconds (CONNACK).
    pub server_keep_alive: Option<u16>,
    /// 0x15 Authentication Method (CONNECT, CONNACK, AUTH).
    pub authentication_method: Option<String>,
    /// 0x16 Authentication Data (CONNECT, CONNACK, AUTH); only with a method.
    pub authentication_data: Option<Bytes>,
    /// 0x17 Request Problem Information, 0 or 1 (CONNECT).
    pub request_problem_information: Option<u8>,
    /// 0x18 Will Delay Interval, seconds (will).
    pub will_delay_interval: Option<u32>,
    /// 0x19 Request Response Information, 0 or 1 (CONNECT).
    pub request_response_information: Option<u8>,
    /// 0x1A Response Information (CONNACK).
    pub response_information: Option<String>,
    /// 0x1C Server Reference (CONNACK, DISCONNECT).
    pub server_reference: Option<String>,
    /// 0x1F Reason String (every packet with a reason code).
    pub reason_string: Option<String>,
    /// 0x21 Receive Maximum, not 0 (CONNECT, CONNACK).
    pub receive_maximum: Option<u16>,
    /// 0x22 Topic Alias Maximum (CONNECT, CONNACK).
    pub topic_alias_maximum: Option<u16>,
    /// 0x23 Topic Alias, not 0 (PUBLISH).
    pub topic_alias: Option<u16>,
    /// 0x24 Maximum QoS, 0 or 1 (CONNACK).
    pub maximum_qos: Option<u8>,
    /// 0x25 Retain Available, 0 or 1 (CONNACK).
    pub retain_available: Option<u8>,
    /// 0x26 User Property: name/value pairs, repeatable, order kept (every packet but PINGs).
    pub user_properties: Vec<(String, String)>,
    /// 0x27 Maximum Packet Size, not 0 (CONNECT, CONNACK).
    pub maximum_packet_size: Option<u32>,
    /// 0x28 Wildcard Subscription Available, 0 or 1 (CONNACK).
    pub wildcard_subscription_available: Option<u8>,
    /// 0x29 Subscription Identifiers Available, 0 or 1 (CONNACK).
    pub subscription_identifier_available: Option<u8>,
    /// 0x2A Shared Subscription Available, 0 or 1 (CONNACK).
    pub shared_subscription_available: Option<u8>,
}

impl Default for Properties {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl Properties {
    /// No property set: what [`Default`] gives, usable in a `static`.
    const EMPTY: Properties = Properties {
        payload_format_indicator: None,
        message_expiry_interval: None,
        content_type: None,
        response_topic: None,
        correlation_data: None,
        subscription_identifiers: Vec::new(),
        session_expiry_interval: None,
        assigned_client_identifier: None,
        server_keep_alive: None,
        authentication_method: None,
        authentication_data: None,
        request_problem_information: None,
        will_delay_interval: None,
        request_response_information: None,
        response_information: None,
        server_reference: None,
        reason_string: None,
        receive_maximum: None,
        topic_alias_maximum: None,
        topic_alias: None,
        maximum_qos: None,
        retain_available: None,
        user_properties: Vec::new(),
        maximum_packet_size: None,
        wildcard_subscription_available: None,
        subscription_identifier_available: None,
        shared_subscription_available: None,
    };
}

/// The empty set that [`PublishProperties`] shows when it holds none.
static NO_PROPERTIES: Properties = Properties::EMPTY;

/// A PUBLISH's properties, on the heap and only when there are some.
///
/// Most messages carry none (no MQTT 3.1.1 message can), and an inline [`Properties`] (344
/// bytes) made a `Publish` 408 bytes, moved several times on its way from the decoder to the
/// subscribers. Reading an empty set sees a shared empty [`Properties`]; the first mutable
/// access allocates one.
#[derive(Clone, Default)]
pub struct PublishProperties(Option<Box<Properties>>);

impl PublishProperties {
    /// The properties to change, if there are any: unlike `DerefMut`, this boxes nothing.
    pub fn get_mut(&mut self) -> Option<&mut Properties> {
        self.0.as_deref_mut()
    }

    /// True if a set is on the heap.
    #[cfg(test)]
    pub(crate) fn is_boxed(&self) -> bool {
        self.0.is_some()
    }
}

impl From<Properties> for PublishProperties {
    fn from(properties: Properties) -> Self {
        Self((!properties.is_empty()).then(|| Box::new(properties)))
    }
}

impl std::ops::Deref for PublishProperties {
    type Target = Properties;

    fn deref(&self) -> &Properties {
        self.0.as_deref().unwrap_or(&NO_PROPERTIES)
    }
}

impl std::ops::DerefMut for PublishProperties {
    fn deref_mut(&mut self) -> &mut Properties {
        self.0.get_or_insert_with(Box::default)
    }
}

impl PartialEq for PublishProperties {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for PublishProperties {}

impl std::fmt::Debug for PublishProperties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

// Property identifiers (§2.2.2.2).
const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
const CONTENT_TYPE: u8 = 0x03;
const RESPONSE_TOPIC: u8 = 0x08;
const CORRELATION_DATA: u8 = 0x09;
const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
const SERVER_KEEP_ALIVE: u8 = 0x13;
const AUTHENTICATION_METHOD: u8 = 0x15;
const AUTHENTICATION_DATA: u8 = 0x16;
const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
const WILL_DELAY_INTERVAL: u8 = 0x18;
const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
const RESPONSE_INFORMATION: u8 = 0x1A;
const SERVER_REFERENCE: u8 = 0x1C;
const REASON_STRING: u8 = 0x1F;
const RECEIVE_MAXIMUM: u8 = 0x21;
const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
const TOPIC_ALIAS: u8 = 0x23;
const MAXIMUM_QOS: u8 = 0x24;
const RETAIN_AVAILABLE: u8 = 0x25;
const USER_PROPERTY: u8 = 0x26;
const MAXIMUM_PACKET_SIZE: u8 = 0x27;
const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;

const fn bits(ids: &[u8]) -> u64 {
    let mut mask = 0;
    let mut i = 0;
    while i < ids.len() {
        mask |= 1 << ids[i];
        i += 1;
    }
    mask
}

/// Where a property block sits: decides which identifiers are allowed (§2.2.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PropCtx {
    Connect,
    Will,
    Connack,
    Publish,
    /// PUBACK, PUBREC, PUBREL, PUBCOMP.
    Ack,
    Subscribe,
    Suback,
    Unsubscribe,
    Unsuback,
    Disconnect,
    Auth,
}

impl PropCtx {
    /// Bit `id` is set for every identifier allowed here.
    fn allowed(self) -> u64 {
        const MESSAGE: &[u8] = &[
            PAYLOAD_FORMAT_INDICATOR,
            MESSAGE_EXPIRY_INTERVAL,
            CONTENT_TYPE,
            RESPONSE_TOPIC,
            CORRELATION_DATA,
            USER_PROPERTY,
        ];
        match self {
            Self::Connect => bits(&[
                SESSION_EXPIRY_INTERVAL,
                AUTHENTICATION_METHOD,
                AUTHENTICATION_DATA,
                REQUEST_PROBLEM_INFORMATION,
                REQUEST_RESPONSE_INFORMATION,
                RECEIVE_MAXIMUM,
                TOPIC_ALIAS_MAXIMUM,
                USER_PROPERTY,
                MAXIMUM_PACKET_SIZE,
            ]),
            Self::Will => bits(MESSAGE) | bits(&[WILL_DELAY_INTERVAL]),
            Self::Connack => bits(&[
                SESSION_EXPIRY_INTERVAL,
                ASSIGNED_CLIENT_IDENTIFIER,
                SERVER_KEEP_ALIVE,
                AUTHENTICATION_METHOD,
                AUTHENTICATION_DATA,
                RESPONSE_INFORMATION,
                SERVER_REFERENCE,
                REASON_STRING,
                RECEIVE_MAXIMUM,
                TOPIC_ALIAS_MAXIMUM,
                MAXIMUM_QOS,
                RETAIN_AVAILABLE,
                USER_PROPERTY,
                MAXIMUM_PACKET_SIZE,
                WILDCARD_SUBSCRIPTION_AVAILABLE,
                SUBSCRIPTION_IDENTIFIER_AVAILABLE,
                SHARED_SUBSCRIPTION_AVAILABLE,
            ]),
            Self::Publish => bits(MESSAGE) | bits(&[SUBSCRIPTION_IDENTIFIER, TOPIC_ALIAS]),
            Self::Ack | Self::Suback | Self::Unsuback => bits(&[REASON_STRING, USER_PROPERTY]),
            Self::Subscribe => bits(&[SUBSCRIPTION_IDENTIFIER, USER_PROPERTY]),
            Self::Unsubscribe => bits(&[USER_PROPERTY]),
            Self::Disconnect => bits(&[
                SESSION_EXPIRY_INTERVAL,
                SERVER_REFERENCE,
                REASON_STRING,
                USER_PROPERTY,
            ]),
            Self::Auth => bits(&[
                AUTHENTICATION_METHOD,
                AUTHENTICATION_DATA,
                REASON_STRING,
                USER_PROPERTY,
            ]),
        }
    }

    /// Whether the Subscription Identifier may repeat (only in PUBLISH, §3.3.4).
    fn repeats_subscription_id(self) -> bool {
        matches!(self, Self::Publish)
    }
}

/// Stores a non-repeatable property, refusing a second occurrence.
fn set_once<T>(slot: &mut Option<T>, value: T) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DecodeError::Protocol("property included more than once"));
    }
    *slot = Some(value);
    Ok(())
}

/// A byte property that may only be 0 or 1.
fn flag(r: &mut Reader, ctx: &'static str) -> Result<u8, DecodeError> {
    match r.u8(ctx)? {
        v @ (0 | 1) => Ok(v),
        _ => Err(DecodeError::Protocol(ctx)),
    }
}

/// A two- or four-byte property that must not be 0.
fn non_zero<T: Default + PartialEq>(v: T, ctx: &'static str) -> Result<T, DecodeError> {
    if v == T::default() {
        return Err(DecodeError::Protocol(ctx));
    }
    Ok(v)
}

// === impl Properties ===

impl Properties {
    /// True if no property is set.
    pub fn is_empty(&self) -> bool {
        self.present() == 0
    }

    /// Bit `id` set for every property present.
    fn present(&self) -> u64 {
        let mut m = 0u64;
        let mut mark = |on: bool, id: u8| {
            if on {
                m |= 1 << id;
            }
        };
        mark(
            self.payload_format_indicator.is_some(),
            PAYLOAD_FORMAT_INDICATOR,
        );
        mark(
            self.message_expiry_interval.is_some(),
            MESSAGE_EXPIRY_INTERVAL,
        );
        mark(self.content_type.is_some(), CONTENT_TYPE);
        mark(self.response_topic.is_some(), RESPONSE_TOPIC);
        mark(self.correlation_data.is_some(), CORRELATION_DATA);
        mark(
            !self.subscription_identifiers.is_empty(),
            SUBSCRIPTION_IDENTIFIER,
        );
        mark(
            self.session_expiry_interval.is_some(),
            SESSION_EXPIRY_INTERVAL,
        );
        mark(
            self.assigned_client_identifier.is_some(),
            ASSIGNED_CLIENT_IDENTIFIER,
        );
        mark(self.server_keep_alive.is_some(), SERVER_KEEP_ALIVE);
        mark(self.authentication_method.is_some(), AUTHENTICATION_METHOD);
        mark(self.authentication_data.is_some(), AUTHENTICATION_DATA);
        mark(
            self.request_problem_information.is_some(),
            REQUEST_PROBLEM_INFORMATION,
        );
        mark(self.will_delay_interval.is_some(), WILL_DELAY_INTERVAL);
        mark(
            self.request_response_information.is_some(),
            REQUEST_RESPONSE_INFORMATION,
        );
        mark(self.response_information.is_some(), RESPONSE_INFORMATION);
        mark(self.server_reference.is_some(), SERVER_REFERENCE);
        mark(self.reason_string.is_some(), REASON_STRING);
        mark(self.receive_maximum.is_some(), RECEIVE_MAXIMUM);
        mark(self.topic_alias_maximum.is_some(), TOPIC_ALIAS_MAXIMUM);
        mark(self.topic_alias.is_some(), TOPIC_ALIAS);
        mark(self.maximum_qos.is_some(), MAXIMUM_QOS);
        mark(self.retain_available.is_some(), RETAIN_AVAILABLE);
        mark(!self.user_properties.is_empty(), USER_PROPERTY);
        mark(self.maximum_packet_size.is_some(), MAXIMUM_PACKET_SIZE);
        mark(
            self.wildcard_subscription_available.is_some(),
            WILDCARD_SUBSCRIPTION_AVAILABLE,
        );
        mark(
            self.subscription_identifier_available.is_some(),
            SUBSCRIPTION_IDENTIFIER_AVAILABLE,
        );
        mark(
            self.shared_subscription_available.is_some(),
            SHARED_SUBSCRIPTION_AVAILABLE,
        );
        m
    }

    /// Reads a property length and the properties it covers (§2.2.2.1).
    pub(crate) fn decode(r: &mut Reader, ctx: PropCtx) -> Result<Self, DecodeError> {
        let len = r.varint("property length")?;
        let len = usize::try_from(len).map_err(|_| DecodeError::Malformed("property length"))?;
        let mut r = r.sub(len, "property length exceeds the packet")?;
        let allowed = ctx.allowed();
        let mut p = Properties::default();
        while !r.is_empty() {
            let id = r.varint("property identifier")?;
            let id = u8::try_from(id)
                .ok()
                .filter(|&id| id < 64 && allowed & (1 << id) != 0)
                .ok_or(DecodeError::Malformed(
                    "property not allowed in this packet",
                ))?;
            p.decode_one(&mut r, id, ctx)?;
        }
        if p.authentication_data.is_some() && p.authentication_method.is_none() {
            return Err(DecodeError::Protocol(
                "authentication data without authentication method",
            ));
        }
        Ok(p)
    }

    fn decode_one(&mut self, r: &mut Reader, id: u8, ctx: PropCtx) -> Result<(), DecodeError> {
        const TRUNC: &str = "truncated property";
        match id {
            PAYLOAD_FORMAT_INDICATOR => {
                let v = flag(r, "payload format indicator not 0 or 1")?;
                set_once(&mut self.payload_format_indicator, v)
            }
            MESSAGE_EXPIRY_INTERVAL => set_once(&mut self.message_expiry_interval, r.u32(TRUNC)?),
            CONTENT_TYPE => set_once(&mut self.content_type, r.string(TRUNC)?),
            RESPONSE_TOPIC => {
                let topic = TopicName::new(r.string(TRUNC)?)
                    .map_err(|_| DecodeError::Protocol("response topic is not a topic name"))?;
                set_once(&mut self.response_topic, topic)
            }
            CORRELATION_DATA => set_once(&mut self.correlation_data, r.binary(TRUNC)?),
            SUBSCRIPTION_IDENTIFIER => {
                let v = r.varint(TRUNC)?;
                if v == 0 {
                    return Err(DecodeError::Protocol("subscription identifier 0"));
                }
                if !ctx.repeats_subscription_id() && !self.subscription_identifiers.is_empty() {
                    return Err(DecodeError::Protocol("property included more than once"));
                }
                self.subscription_identifiers.push(v);
                Ok(())
            }
            SESSION_EXPIRY_INTERVAL => set_once(&mut self.session_expiry_interval, r.u32(TRUNC)?),
            ASSIGNED_CLIENT_IDENTIFIER => {
                set_once(&mut self.assigned_client_identifier, r.string(TRUNC)?)
            }
            SERVER_KEEP_ALIVE => set_once(&mut self.server_keep_alive, r.u16(TRUNC)?),
            AUTHENTICATION_METHOD => set_once(&mut self.authentication_method, r.string(TRUNC)?),
            AUTHENTICATION_DATA => set_once(&mut self.authentication_data, r.binary(TRUNC)?),
            REQUEST_PROBLEM_INFORMATION => {
                let v = flag(r, "request problem information not 0 or 1")?;
                set_once(&mut self.request_problem_information, v)
            }
            WILL_DELAY_INTERVAL => set_once(&mut self.will_delay_interval, r.u32(TRUNC)?),
            REQUEST_RESPONSE_INFORMATION => {
                let v = flag(r, "request response information not 0 or 1")?;
                set_once(&mut self.request_response_information, v)
            }
            RESPONSE_INFORMATION => set_once(&mut self.response_information, r.string(TRUNC)?),
            SERVER_REFERENCE => set_once(&mut self.server_reference, r.string(TRUNC)?),
            REASON_STRING => set_once(&mut self.reason_string, r.string(TRUNC)?),
            RECEIVE_MAXIMUM => {
                let v = non_zero(r.u16(TRUNC)?, "receive maximum 0")?;
                set_once(&mut self.receive_maximum, v)
            }
            TOPIC_ALIAS_MAXIMUM => set_once(&mut self.topic_alias_maximum, r.u16(TRUNC)?),
            TOPIC_ALIAS => {
                let v = r.u16(TRUNC)?;
                if v == 0 {
                    return Err(DecodeError::TopicAliasInvalid);
                }
                set_once(&mut self.topic_alias, v)
            }
            MAXIMUM_QOS => {
                let v = flag(r, "maximum QoS not 0 or 1")?;
                set_once(&mut self.maximum_qos, v)
            }
            RETAIN_AVAILABLE => {
                let v = flag(r, "retain available not 0 or 1")?;
                set_once(&mut self.retain_available, v)
            }
            USER_PROPERTY => {
                let name = r.string(TRUNC)?;
                let value = r.string(TRUNC)?;
                self.user_properties.push((name, value));
                Ok(())
            }
            MAXIMUM_PACKET_SIZE => {
                let v = non_zero(r.u32(TRUNC)?, "maximum packet size 0")?;
                set_once(&mut self.maximum_packet_size, v)
            }
            WILDCARD_SUBSCRIPTION_AVAILABLE => {
                let v = flag(r, "wildcard subscription available not 0 or 1")?;
                set_once(&mut self.wildcard_subscription_available, v)
            }
            SUBSCRIPTION_IDENTIFIER_AVAILABLE => {
                let v = flag(r, "subscription identifier available not 0 or 1")?;
                set_once(&mut self.subscription_identifier_available, v)
            }
            SHARED_SUBSCRIPTION_AVAILABLE => {
                let v = flag(r, "shared subscription available not 0 or 1")?;
                set_once(&mut self.shared_subscription_available, v)
            }
            // `decode` only passes identifiers of the allowed set, all handled above.
            _ => Err(DecodeError::Malformed(
                "property not allowed in this packet",
            )),
        }
    }

    /// Checks the properties can be encoded in `ctx`; returns the length of the property
    /// block's content (without the property length itself).
    pub(crate) fn content_len(&self, ctx: PropCtx) -> Result<usize, EncodeError> {
        if self.present() & !ctx.allowed() != 0 {
            return Err(EncodeError::Invalid("property not allowed in this packet"));
        }
        if !ctx.repeats_subscription_id() && self.subscription_identifiers.len() > 1 {
            return Err(EncodeError::Invalid(
                "more than one subscription identifier",
            ));
        }
        self.check_values()?;
        let mut n = 0usize;
        let byte = |o: &Option<u8>| o.map_or(0, |_| 2);
        let two = |o: &Option<u16>| o.map_or(0, |_| 3);
        let four = |o: &Option<u32>| o.map_or(0, |_| 5);
        let text = |o: &Option<String>| o.as_ref().map_or(Ok(0), |s| Ok(1 + field_len(s.len())?));
        let bin = |o: &Option<Bytes>| o.as_ref().map_or(Ok(0), |b| Ok(1 + field_len(b.len())?));
        n += byte(&self.payload_format_indicator);
        n += four(&self.message_expiry_interval);
        n += text(&self.content_type)?;
        if let Some(t) = &self.response_topic {
            n += 1 + field_len(t.as_str().len())?;
        }
        n += bin(&self.correlation_data)?;
        for &id in &self.subscription_identifiers {
            if id == 0 || id > MAX_VARINT {
                return Err(EncodeError::Invalid("subscription identifier out of range"));
            }
            n += 1 + varint_len(id as usize)?;
        }
        n += four(&self.session_expiry_interval);
        n += text(&self.assigned_client_identifier)?;
        n += two(&self.server_keep_alive);
        n += text(&self.authentication_method)?;
        n += bin(&self.authentication_data)?;
        n += byte(&self.request_problem_information);
        n += four(&self.will_delay_interval);
        n += byte(&self.request_response_information);
        n += text(&self.response_information)?;
        n += text(&self.server_reference)?;
        n += text(&self.reason_string)?;
        n += two(&self.receive_maximum);
        n += two(&self.topic_alias_maximum);
        n += two(&self.topic_alias);
        n += byte(&self.maximum_qos);
        n += byte(&self.retain_available);
        for (k, v) in &self.user_properties {
            n = n
                .checked_add(1 + field_len(k.len())? + field_len(v.len())?)
                .ok_or(EncodeError::TooLarge)?;
        }
        n += four(&self.maximum_packet_size);
        n += byte(&self.wildcard_subscription_available);
        n += byte(&self.subscription_identifier_available);
        n += byte(&self.shared_subscription_available);
        Ok(n)
    }

    /// The value rules the decoder enforces, so that whatever encodes also decodes.
    fn check_values(&self) -> Result<(), EncodeError> {
        let flags = [
            self.payload_format_indicator,
            self.request_problem_information,
            self.request_response_information,
            self.maximum_qos,
            self.retain_available,
            self.wildcard_subscription_available,
            self.subscription_identifier_available,
            self.shared_subscription_available,
        ];
        if flags.iter().flatten().any(|&v| v > 1) {
            return Err(EncodeError::Invalid("flag property not 0 or 1"));
        }
        if self.receive_maximum == Some(0)
            || self.topic_alias == Some(0)
            || self.maximum_packet_size == Some(0)
        {
            return Err(EncodeError::Invalid("property value 0 not allowed"));
        }
        if self.authentication_data.is_some() && self.authentication_method.is_none() {
            return Err(EncodeError::Invalid(
                "authentication data without authentication method",
            ));
        }
        Ok(())
    }

    /// The whole property block's length: property length plus content.
    pub(crate) fn wire_len(&self, ctx: PropCtx) -> Result<usize, EncodeError> {
        let content = self.content_len(ctx)?;
        Ok(varint_len(content)? + content)
    }

    /// Writes the property length and the properties, in identifier order (user properties in
    /// their own order).
    pub(crate) fn encode(&self, ctx: PropCtx, dst: &mut BytesMut) -> Result<(), EncodeError> {
        put_varint(dst, self.content_len(ctx)?)?;
        let byte = |dst: &mut BytesMut, id: u8, v: Option<u8>| {
            if let Some(v) = v {
                dst.put_u8(id);
                dst.put_u8(v);
            }
        };
        let two = |dst: &mut BytesMut, id: u8, v: Option<u16>| {
            if let Some(v) = v {
                dst.put_u8(id);
                dst.put_u16(v);
            }
        };
        let four = |dst: &mut BytesMut, id: u8, v: Option<u32>| {
            if let Some(v) = v {
                dst.put_u8(id);
                dst.put_u32(v);
            }
        };
        let field = |dst: &mut BytesMut, id: u8, v: Option<&[u8]>| {
            if let Some(v) = v {
                dst.put_u8(id);
                put_field(dst, v)?;
            }
            Ok::<_, EncodeError>(())
        };
        byte(dst, PAYLOAD_FORMAT_INDICATOR, self.payload_format_indicator);
        four(dst, MESSAGE_EXPIRY_INTERVAL, self.message_expiry_interval);
        field(
            dst,
            CONTENT_TYPE,
            self.content_type.as_deref().map(str::as_bytes),
        )?;
        field(
            dst,
            RESPONSE_TOPIC,
            self.response_topic.as_ref().map(|t| t.as_str().as_bytes()),
        )?;
        field(dst, CORRELATION_DATA, self.correlation_data.as_deref())?;
        for &id in &self.subscription_identifiers {
            dst.put_u8(SUBSCRIPTION_IDENTIFIER);
            put_varint(dst, id as usize)?;
        }
        four(dst, SESSION_EXPIRY_INTERVAL, self.session_expiry_interval);
        field(
            dst,
            ASSIGNED_CLIENT_IDENTIFIER,
            self.assigned_client_identifier
                .as_deref()
                .map(str::as_bytes),
        )?;
        two(dst, SERVER_KEEP_ALIVE, self.server_keep_alive);
        field(
            dst,
            AUTHENTICATION_METHOD,
            self.authentication_method.as_deref().map(str::as_bytes),
        )?;
        field(
            dst,
            AUTHENTICATION_DATA,
            self.authentication_data.as_deref(),
        )?;
        byte(
            dst,
            REQUEST_PROBLEM_INFORMATION,
            self.request_problem_information,
        );
        four(dst, WILL_DELAY_INTERVAL, self.will_delay_interval);
        byte(
            dst,
            REQUEST_RESPONSE_INFORMATION,
            self.request_response_information,
        );
        field(
            dst,
            RESPONSE_INFORMATION,
            self.response_information.as_deref().map(str::as_bytes),
        )?;
        field(
            dst,
            SERVER_REFERENCE,
            self.server_reference.as_deref().map(str::as_bytes),
        )?;
        field(
            dst,
            REASON_STRING,
            self.reason_string.as_deref().map(str::as_bytes),
        )?;
        two(dst, RECEIVE_MAXIMUM, self.receive_maximum);
        two(dst, TOPIC_ALIAS_MAXIMUM, self.topic_alias_maximum);
        two(dst, TOPIC_ALIAS, self.topic_alias);
        byte(dst, MAXIMUM_QOS, self.maximum_qos);
        byte(dst, RETAIN_AVAILABLE, self.retain_available);
        for (k, v) in &self.user_properties {
            dst.put_u8(USER_PROPERTY);
            put_field(dst, k.as_bytes())?;
            put_field(dst, v.as_bytes())?;
        }
        four(dst, MAXIMUM_PACKET_SIZE, self.maximum_packet_size);
        byte(
            dst,
            WILDCARD_SUBSCRIPTION_AVAILABLE,
            self.wildcard_subscription_available,
        );
        byte(
            dst,
            SUBSCRIPTION_IDENTIFIER_AVAILABLE,
            self.subscription_identifier_available,
        );
        byte(
            dst,
            SHARED_SUBSCRIPTION_AVAILABLE,
            self.shared_subscription_available,
        );
        Ok(())
    }
}
