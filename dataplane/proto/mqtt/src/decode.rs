//! The streaming decoder: fixed header (§2.1), size limit, then one function per packet type
//! reading the body through the bounds-checked [`Reader`].

use bytes::BytesMut;

use crate::codec::Reader;
use crate::error::DecodeError;
use crate::packet::{
    AUTH, Ack, Auth, CONNACK, CONNECT, Connack, Connect, DISCONNECT, Disconnect, PINGREQ, PINGRESP,
    PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, Packet, Publish, RetainHandling, SUBACK, SUBSCRIBE,
    Suback, Subscribe, SubscriptionOptions, UNSUBACK, UNSUBSCRIBE, Unsuback, Unsubscribe, Will,
};
use crate::properties::{PropCtx, Properties};
use crate::reason::{self, allowed};
use crate::topic::{TopicFilter, TopicName};
use crate::{QoS, Version, v3_connack};

/// What the decoder needs to know about the connection.
#[derive(Debug, Clone, Copy)]
pub struct DecodeCtx {
    /// `None` before CONNECT: then only a CONNECT decodes, and anything else is
    /// `Protocol("first packet must be CONNECT")` [MQTT-3.1.0-1]. After CONNECT, the negotiated
    /// version. A CONNECT is always decoded with the version it names itself.
    pub version: Option<Version>,
    /// Largest whole packet (fixed header + remaining length) accepted, in bytes. Checked from
    /// the fixed header before the body is buffered.
    pub max_packet_size: u32,
}

/// A parsed fixed header.
#[derive(Debug, Clone, Copy)]
struct Header {
    first: u8,
    /// Fixed header length: 2 to 5 bytes.
    len: usize,
    /// Header plus remaining length.
    total: usize,
}

/// Reads the fixed header (§2.1.1) and checks the size limit.
fn header(buf: &[u8], max_packet_size: u32) -> Result<Option<Header>, DecodeError> {
    let Some((&first, rest)) = buf.split_first() else {
        return Ok(None);
    };
    let mut remaining = 0usize;
    for i in 0..4 {
        let Some(&b) = rest.get(i) else {
            return Ok(None);
        };
        remaining |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if i > 0 && b == 0 {
                return Err(DecodeError::Malformed("non-minimal remaining length"));
            }
            let len = 2 + i;
            let total = len + remaining;
            // usize -> u64 is lossless on every supported target.
            let size = total as u64;
            if size > u64::from(max_packet_size) {
                return Err(DecodeError::PacketTooLarge {
                    size,
                    max: max_packet_size,
                });
            }
            return Ok(Some(Header { first, len, total }));
        }
    }
    Err(DecodeError::MalformedRemainingLength)
}

/// Peeks the fixed header: `Ok(Some((first_byte, total_len)))` once the remaining length is
/// readable, with the same size check as [`decode`]. Lets the caller see a large PUBLISH coming
/// (and size its read buffer) before the body arrives.
pub fn peek_header(buf: &[u8], max_packet_size: u32) -> Result<Option<(u8, usize)>, DecodeError> {
    Ok(header(buf, max_packet_size)?.map(|h| (h.first, h.total)))
}

/// Checks the packet type and fixed-header flags (§2.1.2, §2.1.3), from the first byte alone.
fn check_first_byte(first: u8, version: Option<Version>) -> Result<(), DecodeError> {
    let (kind, flags) = (first >> 4, first & 0x0f);
    if version.is_none() && kind != CONNECT {
        return Err(DecodeError::Protocol("first packet must be CONNECT"));
    }
    match kind {
        0 => Err(DecodeError::Malformed("reserved packet type 0")),
        PUBLISH => {
            let qos = (flags >> 1) & 0b11;
            if qos == 3 {
                return Err(DecodeError::Malformed("PUBLISH with QoS 3"));
            }
            // MQTT 5.0 §3.3.1.1 [MQTT-3.3.1-2]; 3.1.1 says the same.
            if qos == 0 && flags & 0b1000 != 0 {
                return Err(DecodeError::Malformed("DUP set on a QoS 0 PUBLISH"));
            }
            Ok(())
        }
        PUBREL | SUBSCRIBE | UNSUBSCRIBE if flags != 0b0010 => {
            Err(DecodeError::Malformed("fixed header flags must be 0010"))
        }
        PUBREL | SUBSCRIBE | UNSUBSCRIBE => Ok(()),
        AUTH if !version.is_some_and(Version::is_v5) => {
            Err(DecodeError::Malformed("reserved packet type 15"))
        }
        _ if flags != 0 => Err(DecodeError::Malformed("fixed header flags must be 0000")),
        _ => Ok(()),
    }
}

/// Decodes one packet from the front of `buf`.
///
/// - `Ok(None)`: not enough bytes yet; `buf` is untouched. Read more and call again.
/// - `Ok(Some(packet))`: the packet's bytes were split off the front of `buf` (frozen, so a
///   PUBLISH payload shares them without copying).
/// - `Err(_)`: the connection must be closed, after sending [`DecodeError::reason_code`].
///
/// The first byte is checked as soon as it arrives, and the size limit as soon as the fixed
/// header is complete: a peer announcing a huge packet is refused after at most five bytes.
///
/// Decoding is direction-agnostic: packets only a server sends (CONNACK, SUBACK, UNSUBACK,
/// PINGRESP) decode too; the broker refuses the wrong ones itself.
pub fn decode(buf: &mut BytesMut, ctx: DecodeCtx) -> Result<Option<Packet>, DecodeError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    check_first_byte(first, ctx.version)?;
    let Some(h) = header(buf, ctx.max_packet_size)? else {
        return Ok(None);
    };
    if buf.len() < h.total {
        return Ok(None);
    }
    let frame = buf.split_to(h.total).freeze();
    let mut r = Reader::new(frame.slice(h.len..));
    let packet = match first >> 4 {
        CONNECT => Packet::Connect(Box::new(connect(&mut r)?)),
        kind => {
            // `check_first_byte` refused everything but CONNECT without a version.
            let version = ctx
                .version
                .ok_or(DecodeError::Protocol("first packet must be CONNECT"))?;
            body(kind, first, version.is_v5(), &mut r)?
        }
    };
    Ok(Some(packet))
}

/// Every packet but CONNECT.
fn body(kind: u8, first: u8, v5: bool, r: &mut Reader) -> Result<Packet, DecodeError> {
    Ok(match kind {
        CONNACK => Packet::Connack(connack(r, v5)?),
        PUBLISH => Packet::Publish(publish(r, first, v5)?),
        PUBACK => Packet::Puback(ack(r, v5, allowed::PUBACK)?),
        PUBREC => Packet::Pubrec(ack(r, v5, allowed::PUBACK)?),
        PUBREL => Packet::Pubrel(ack(r, v5, allowed::PUBREL)?),
        PUBCOMP => Packet::Pubcomp(ack(r, v5, allowed::PUBREL)?),
        SUBSCRIBE => Packet::Subscribe(subscribe(r, v5)?),
        SUBACK => Packet::Suback(suback(r, v5)?),
        UNSUBSCRIBE => Packet::Unsubscribe(unsubscribe(r, v5)?),
        UNSUBACK => Packet::Unsuback(unsuback(r, v5)?),
        PINGREQ => {
            r.finish("PINGREQ with a body")?;
            Packet::Pingreq
        }
        PINGRESP => {
            r.finish("PINGRESP with a body")?;
            Packet::Pingresp
        }
        DISCONNECT => Packet::Disconnect(disconnect(r, v5)?),
        AUTH => Packet::Auth(auth(r)?),
        // `check_first_byte` refused type 0; every other value of four bits is listed above.
        _ => return Err(DecodeError::Malformed("reserved packet type")),
    })
}

fn props(r: &mut Reader, v5: bool, ctx: PropCtx) -> Result<Properties, DecodeError> {
    if v5 {
        Properties::decode(r, ctx)
    } else {
        Ok(Properties::default())
    }
}

/// A packet identifier, non-zero (§2.2.1 [MQTT-2.2.1-3]).
fn packet_id(r: &mut Reader) -> Result<u16, DecodeError> {
    match r.u16("packet identifier")? {
        0 => Err(DecodeError::Protocol("packet identifier 0")),
        id => Ok(id),
    }
}

/// A reason code from the packet's allowed list.
fn reason_code(r: &mut Reader, allowed: &[u8]) -> Result<u8, DecodeError> {
    let code = r.u8("reason code")?;
    if !allowed.contains(&code) {
        return Err(DecodeError::Protocol(
            "reason code not allowed in this packet",
        ));
    }
    Ok(code)
}

// === CONNECT (§3.1) ===

fn connect(r: &mut Reader) -> Result<Connect, DecodeError> {
    let name_len = r.u16("protocol name")?;
    let name = match r.take(usize::from(name_len), "protocol name")? {
        b"MQTT" => "MQTT",
        b"MQIsdp" => "MQIsdp",
        _ => {
            let level = r.u8("protocol level").unwrap_or(0);
            return Err(DecodeError::UnsupportedProtocol { level });
        }
    };
    let level = r.u8("protocol level")?;
    let version = match (name, level) {
        ("MQTT", 4) => Version::V311,
        ("MQTT", 5) => Version::V5,
        ("MQIsdp", 3) => Version::V31,
        _ => return Err(DecodeError::UnsupportedProtocol { level }),
    };
    let v5 = version.is_v5();

    // Connect flags (§3.1.2.3).
    let flags = r.u8("connect flags")?;
    if flags & 0x01 != 0 {
        return Err(DecodeError::Malformed("reserved CONNECT flag set"));
    }
    let clean_start = flags & 0x02 != 0;
    let will_flag = flags & 0x04 != 0;
    let will_qos = (flags >> 3) & 0b11;
    let will_retain = flags & 0x20 != 0;
    let password_flag = flags & 0x40 != 0;
    let username_flag = flags & 0x80 != 0;
    let will_qos = QoS::from_u8(will_qos).ok_or(DecodeError::Malformed("will QoS 3"))?;
    if !will_flag && (will_qos != QoS::AtMostOnce || will_retain) {
        return Err(DecodeError::Malformed(
            "will QoS or retain without will flag",
        ));
    }
    // 3.1.1 §3.1.2.9 [MQTT-3.1.2-22]; MQTT 5.0 allows a password alone.
    if !v5 && password_flag && !username_flag {
        return Err(DecodeError::Malformed("password without user name"));
    }
    let keep_alive = r.u16("keep alive")?;
    let properties = props(r, v5, PropCtx::Connect)?;

    // Payload (§3.1.3).
    let client_id = r.string("client identifier")?;
    let will = if will_flag {
        let properties = props(r, v5, PropCtx::Will)?;
        let topic = TopicName::new(r.string("will topic")?).map_err(DecodeError::InvalidTopic)?;
        let payload = r.binary("will payload")?;
        Some(Will {
            topic,
            payload,
            qos: will_qos,
            retain: will_retain,
            properties,
        })
    } else {
        None
    };
    let username = if username_flag {
        Some(r.string("user name")?)
    } else {
        None
    };
    let password = if password_flag {
        Some(r.binary("password")?)
    } else {
        None
    };
    r.finish("trailing bytes after CONNECT")?;
    Ok(Connect {
        version,
        clean_start,
        keep_alive,
        client_id,
        will,
        username,
        password,
        properties,
    })
}

// === CONNACK (§3.2) ===

fn connack(r: &mut Reader, v5: bool) -> Result<Connack, DecodeError> {
    let flags = r.u8("connect acknowledge flags")?;
    if flags & 0xfe != 0 {
        return Err(DecodeError::Malformed("reserved CONNACK flags set"));
    }
    let (reason_code, properties) = if v5 {
        let code = reason_code(r, allowed::CONNACK)?;
        (code, Properties::decode(r, PropCtx::Connack)?)
    } else {
        let code = r.u8("return code")?;
        let code = v3_connack::v5_reason_of(code)
            .ok_or(DecodeError::Malformed("reserved CONNACK return code"))?;
        (code, Properties::default())
    };
    r.finish("trailing bytes after CONNACK")?;
    Ok(Connack {
        session_present: flags & 0x01 != 0,
        reason_code,
        properties,
    })
}

// === PUBLISH (§3.3) ===

fn publish(r: &mut Reader, first: u8, v5: bool) -> Result<Publish, DecodeError> {
    // `check_first_byte` refused QoS 3.
    let qos = QoS::from_u8((first >> 1) & 0b11).ok_or(DecodeError::Malformed("PUBLISH QoS 3"))?;
    let topic = r.string("topic name")?;
    let packet_id = match qos {
        QoS::AtMostOnce => None,
        QoS::AtLeastOnce | QoS::ExactlyOnce => Some(packet_id(r)?),
    };
    let properties = props(r, v5, PropCtx::Publish)?;
    // An empty topic name stands for a topic alias (MQTT 5.0 §3.3.2.3.4); otherwise the name
    // must be valid [MQTT-3.3.2-1, -2].
    let topic = if topic.is_empty() && v5 && properties.topic_alias.is_some() {
        topic
    } else {
        TopicName::new(topic)
            .map_err(DecodeError::InvalidTopic)?
            .into_string()
    };
    Ok(Publish {
        dup: first & 0b1000 != 0,
        qos,
        retain: first & 0b0001 != 0,
        topic,
        packet_id,
        properties: properties.into(),
        payload: r.rest(),
    })
}

// === PUBACK, PUBREC, PUBREL, PUBCOMP (§3.4-3.7) ===

/// MQTT 5.0 allows leaving out the reason code (remaining length 2: success) and the property
/// length (remaining length 3), §3.4.2.1 and §3.4.2.2.1.
fn ack(r: &mut Reader, v5: bool, allowed: &[u8]) -> Result<Ack, DecodeError> {
    let packet_id = packet_id(r)?;
    let mut reason_code = reason::SUCCESS;
    let mut properties = Properties::default();
    if v5 && !r.is_empty() {
        reason_code = self::reason_code(r, allowed)?;
        if !r.is_empty() {
            properties = Properties::decode(r, PropCtx::Ack)?;
        }
    }
    r.finish("trailing bytes after acknowledgement")?;
    Ok(Ack {
        packet_id,
        reason_code,
        properties,
    })
}

// === SUBSCRIBE, SUBACK (§3.8, §3.9) ===

fn subscribe(r: &mut Reader, v5: bool) -> Result<Subscribe, DecodeError> {
    let packet_id = packet_id(r)?;
    let properties = props(r, v5, PropCtx::Subscribe)?;
    let mut filters = Vec::new();
    while !r.is_empty() {
        let filter = r.string("topic filter")?;
        let options = r.u8("subscription options")?;
        let filter = TopicFilter::new(filter).map_err(DecodeError::InvalidTopicFilter)?;
        let options = subscription_options(options, v5)?;
        // MQTT 5.0 [MQTT-3.8.3-4].
        if options.no_local && filter.shared().is_some() {
            return Err(DecodeError::Protocol("no local on a shared subscription"));
        }
        filters.push((filter, options));
    }
    // [MQTT-3.8.3-2] (3.1.1: [MQTT-3.8.3-3]).
    if filters.is_empty() {
        return Err(DecodeError::Protocol("SUBSCRIBE without topic filters"));
    }
    Ok(Subscribe {
        packet_id,
        filters,
        properties,
    })
}

/// Subscription options byte (MQTT 5.0 §3.8.3.1; 3.1.1 §3.8.3: requested QoS only).
fn subscription_options(b: u8, v5: bool) -> Result<SubscriptionOptions, DecodeError> {
    let reserved = if v5 { 0b1100_0000 } else { 0b1111_1100 };
    if b & reserved != 0 {
        return Err(DecodeError::Malformed(
            "reserved subscription option bits set",
        ));
    }
    let qos = QoS::from_u8(b & 0b11).ok_or(DecodeError::Malformed("subscription QoS 3"))?;
    let retain_handling = RetainHandling::from_u8((b >> 4) & 0b11)
        .ok_or(DecodeError::Malformed("retain handling 3"))?;
    Ok(SubscriptionOptions {
        qos,
        no_local: b & 0b0100 != 0,
        retain_as_published: b & 0b1000 != 0,
        retain_handling,
    })
}

fn suback(r: &mut Reader, v5: bool) -> Result<Suback, DecodeError> {
    let packet_id = packet_id(r)?;
    let properties = props(r, v5, PropCtx::Suback)?;
    let allowed = if v5 {
        allowed::SUBACK
    } else {
        allowed::SUBACK_V3
    };
    let mut reason_codes = Vec::with_capacity(r.remaining());
    while !r.is_empty() {
        reason_codes.push(reason_code(r, allowed)?);
    }
    if reason_codes.is_empty() {
        return Err(DecodeError::Protocol("SUBACK without reason codes"));
    }
    Ok(Suback {
        packet_id,
        reason_codes,
        properties,
    })
}

// === UNSUBSCRIBE, UNSUBACK (§3.10, §3.11) ===

fn unsubscribe(r: &mut Reader, v5: bool) -> Result<Unsubscribe, DecodeError> {
    let packet_id = packet_id(r)?;
    let properties = props(r, v5, PropCtx::Unsubscribe)?;
    let mut filters = Vec::new();
    while !r.is_empty() {
        let filter = r.string("topic filter")?;
        filters.push(TopicFilter::new(filter).map_err(DecodeError::InvalidTopicFilter)?);
    }
    // [MQTT-3.10.3-2].
    if filters.is_empty() {
        return Err(DecodeError::Protocol("UNSUBSCRIBE without topic filters"));
    }
    Ok(Unsubscribe {
        packet_id,
        filters,
        properties,
    })
}

fn unsuback(r: &mut Reader, v5: bool) -> Result<Unsuback, DecodeError> {
    let packet_id = packet_id(r)?;
    let mut reason_codes = Vec::new();
    let mut properties = Properties::default();
    if v5 {
        properties = Properties::decode(r, PropCtx::Unsuback)?;
        reason_codes.reserve(r.remaining());
        while !r.is_empty() {
            reason_codes.push(reason_code(r, allowed::UNSUBACK)?);
        }
        if reason_codes.is_empty() {
            return Err(DecodeError::Protocol("UNSUBACK without reason codes"));
        }
    }
    r.finish("trailing bytes after UNSUBACK")?;
    Ok(Unsuback {
        packet_id,
        reason_codes,
        properties,
    })
}

// === DISCONNECT, AUTH (§3.14, §3.15) ===

/// MQTT 5.0 §3.14.2.1: a remaining length of 0 means success, and below 2 no properties.
fn disconnect(r: &mut Reader, v5: bool) -> Result<Disconnect, DecodeError> {
    let mut reason_code = reason::SUCCESS;
    let mut properties = Properties::default();
    if v5 && !r.is_empty() {
        reason_code = self::reason_code(r, allowed::DISCONNECT)?;
        if !r.is_empty() {
            properties = Properties::decode(r, PropCtx::Disconnect)?;
        }
    }
    r.finish("trailing bytes after DISCONNECT")?;
    Ok(Disconnect {
        reason_code,
        properties,
    })
}

/// MQTT 5.0 §3.15.2.1: reason code and property length may both be left out (success), but the
/// property length may not be left out alone.
fn auth(r: &mut Reader) -> Result<Auth, DecodeError> {
    let mut reason_code = reason::SUCCESS;
    let mut properties = Properties::default();
    if !r.is_empty() {
        reason_code = self::reason_code(r, allowed::AUTH)?;
        properties = Properties::decode(r, PropCtx::Auth)?;
    }
    r.finish("trailing bytes after AUTH")?;
    Ok(Auth {
        reason_code,
        properties,
    })
}
