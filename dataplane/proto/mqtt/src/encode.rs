//! The encoder: each packet computes its remaining length first (which validates every field),
//! then writes. MQTT 3.x drops properties and reason codes it has no room for.
//!
//! The encoder writes the shortest forms MQTT 5.0 allows: PUBACK/PUBREC/PUBREL/PUBCOMP and
//! DISCONNECT without properties omit the property length, and with reason success also the
//! reason code (§3.4.2.1, §3.14.2.1); AUTH with success and no properties is empty (§3.15.2.1).
//! It does not check reason codes against the packet's allowed list: they are the caller's.

use bytes::{BufMut, BytesMut};

use crate::codec::{field_len, put_field, put_varint, varint_len};
use crate::error::EncodeError;
use crate::packet::{
    Ack, Auth, Connack, Connect, Disconnect, Packet, Publish, Suback, Subscribe, Unsuback,
    Unsubscribe,
};
use crate::properties::{PropCtx, Properties};
use crate::{MAX_REMAINING_LENGTH, QoS, TopicName, Version, reason, v3_connack_code};

fn add(a: usize, b: usize) -> Result<usize, EncodeError> {
    a.checked_add(b).ok_or(EncodeError::TooLarge)
}

fn check_remaining(len: usize) -> Result<usize, EncodeError> {
    if len > MAX_REMAINING_LENGTH {
        return Err(EncodeError::TooLarge);
    }
    Ok(len)
}

fn check_packet_id(id: u16) -> Result<u16, EncodeError> {
    if id == 0 {
        return Err(EncodeError::Invalid("packet identifier 0"));
    }
    Ok(id)
}

/// Property block length in 5.0, nothing in 3.x.
fn props_len(p: &Properties, v5: bool, ctx: PropCtx) -> Result<usize, EncodeError> {
    if v5 { p.wire_len(ctx) } else { Ok(0) }
}

fn put_props(
    dst: &mut BytesMut,
    p: &Properties,
    v5: bool,
    ctx: PropCtx,
) -> Result<(), EncodeError> {
    if v5 { p.encode(ctx, dst) } else { Ok(()) }
}

// === impl Packet ===

impl Packet {
    /// Appends the packet encoded for `version` to `dst`. MQTT 3.x has no properties and no
    /// reason codes where 3.x has none: they are dropped; a CONNACK's reason is mapped with
    /// [`v3_connack_code`] and SUBACK failures become 0x80. A CONNECT is encoded for its own
    /// [`Connect::version`]. AUTH cannot be encoded for 3.x.
    ///
    /// On error nothing is appended.
    pub fn encode(&self, version: Version, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let remaining = self.remaining_len(version)?;
        let start = dst.len();
        dst.reserve(1 + varint_len(remaining)? + remaining);
        let result = self.write(version, remaining, dst);
        if result.is_err() {
            dst.truncate(start);
        }
        result
    }

    /// The exact number of bytes [`Self::encode`] appends for `version`.
    pub fn encoded_len(&self, version: Version) -> Result<usize, EncodeError> {
        let remaining = self.remaining_len(version)?;
        Ok(1 + varint_len(remaining)? + remaining)
    }

    fn remaining_len(&self, version: Version) -> Result<usize, EncodeError> {
        let v5 = version.is_v5();
        check_remaining(match self {
            Self::Connect(c) => c.body_len()?,
            Self::Connack(c) => c.body_len(v5)?,
            Self::Publish(p) => p.body_len(&p.properties, v5)?,
            Self::Puback(a) | Self::Pubrec(a) | Self::Pubrel(a) | Self::Pubcomp(a) => {
                a.body_len(v5)?
            }
            Self::Subscribe(s) => s.body_len(v5)?,
            Self::Suback(s) => s.body_len(v5)?,
            Self::Unsubscribe(u) => u.body_len(v5)?,
            Self::Unsuback(u) => u.body_len(v5)?,
            Self::Pingreq | Self::Pingresp => 0,
            Self::Disconnect(d) => d.body_len(v5)?,
            Self::Auth(a) => a.body_len(v5)?,
        })
    }

    /// The fixed header's first byte (§2.1.2): type and flags.
    fn first_byte(&self) -> Result<u8, EncodeError> {
        let flags = match self {
            Self::Publish(p) => p.flags()?,
            Self::Pubrel(_) | Self::Subscribe(_) | Self::Unsubscribe(_) => 0b0010,
            _ => 0,
        };
        Ok(self.packet_type() << 4 | flags)
    }

    fn write(
        &self,
        version: Version,
        remaining: usize,
        dst: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let v5 = version.is_v5();
        dst.put_u8(self.first_byte()?);
        put_varint(dst, remaining)?;
        match self {
            Self::Connect(c) => c.write(dst),
            Self::Connack(c) => c.write(v5, dst),
            Self::Publish(p) => {
                p.write_head(&p.properties, v5, dst)?;
                dst.put_slice(&p.payload);
                Ok(())
            }
            Self::Puback(a) | Self::Pubrec(a) | Self::Pubrel(a) | Self::Pubcomp(a) => {
                a.write(v5, dst)
            }
            Self::Subscribe(s) => s.write(v5, dst),
            Self::Suback(s) => s.write(v5, dst),
            Self::Unsubscribe(u) => u.write(v5, dst),
            Self::Unsuback(u) => u.write(v5, dst),
            Self::Pingreq | Self::Pingresp => Ok(()),
            Self::Disconnect(d) => d.write(v5, dst),
            Self::Auth(a) => a.write(dst),
        }
    }
}

// === impl Connect ===

impl Connect {
    fn flags(&self) -> Result<u8, EncodeError> {
        if !self.version.is_v5() && self.password.is_some() && self.username.is_none() {
            return Err(EncodeError::Invalid("password without user name in MQTT 3"));
        }
        let mut flags = 0u8;
        if self.clean_start {
            flags |= 0x02;
        }
        if let Some(will) = &self.will {
            flags |= 0x04 | will.qos.as_u8() << 3;
            if will.retain {
                flags |= 0x20;
            }
        }
        if self.password.is_some() {
            flags |= 0x40;
        }
        if self.username.is_some() {
            flags |= 0x80;
        }
        Ok(flags)
    }

    fn body_len(&self) -> Result<usize, EncodeError> {
        let v5 = self.version.is_v5();
        self.flags()?;
        // Protocol name, level, flags, keep alive.
        let mut n = field_len(self.version.protocol_name().len())? + 1 + 1 + 2;
        n += props_len(&self.properties, v5, PropCtx::Connect)?;
        n += field_len(self.client_id.len())?;
        if let Some(will) = &self.will {
            n += props_len(&will.properties, v5, PropCtx::Will)?;
            n += field_len(will.topic.as_str().len())?;
            n += field_len(will.payload.len())?;
        }
        if let Some(u) = &self.username {
            n += field_len(u.len())?;
        }
        if let Some(p) = &self.password {
            n += field_len(p.len())?;
        }
        Ok(n)
    }

    fn write(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let v5 = self.version.is_v5();
        put_field(dst, self.version.protocol_name().as_bytes())?;
        dst.put_u8(self.version.level());
        dst.put_u8(self.flags()?);
        dst.put_u16(self.keep_alive);
        put_props(dst, &self.properties, v5, PropCtx::Connect)?;
        put_field(dst, self.client_id.as_bytes())?;
        if let Some(will) = &self.will {
            put_props(dst, &will.properties, v5, PropCtx::Will)?;
            put_field(dst, will.topic.as_str().as_bytes())?;
            put_field(dst, &will.payload)?;
        }
        if let Some(u) = &self.username {
            put_field(dst, u.as_bytes())?;
        }
        if let Some(p) = &self.password {
            put_field(dst, p)?;
        }
        Ok(())
    }
}

// === impl Connack ===

impl Connack {
    fn body_len(&self, v5: bool) -> Result<usize, EncodeError> {
        Ok(2 + props_len(&self.properties, v5, PropCtx::Connack)?)
    }

    fn write(&self, v5: bool, dst: &mut BytesMut) -> Result<(), EncodeError> {
        dst.put_u8(u8::from(self.session_present));
        if v5 {
            dst.put_u8(self.reason_code);
        } else {
            dst.put_u8(v3_connack_code(self.reason_code));
        }
        put_props(dst, &self.properties, v5, PropCtx::Connack)
    }
}

// === impl Publish ===

impl Publish {
    fn flags(&self) -> Result<u8, EncodeError> {
        match (self.qos, self.packet_id) {
            (QoS::AtMostOnce, Some(_)) => {
                return Err(EncodeError::Invalid("packet identifier on a QoS 0 PUBLISH"));
            }
            (QoS::AtMostOnce, None) if self.dup => {
                return Err(EncodeError::Invalid("DUP on a QoS 0 PUBLISH"));
            }
            (QoS::AtLeastOnce | QoS::ExactlyOnce, None) => {
                return Err(EncodeError::Invalid(
                    "QoS > 0 PUBLISH without packet identifier",
                ));
            }
            _ => {}
        }
        Ok(u8::from(self.dup) << 3 | self.qos.as_u8() << 1 | u8::from(self.retain))
    }

    /// Variable header length: topic, packet identifier, properties.
    fn head_len(&self, props: &Properties, v5: bool) -> Result<usize, EncodeError> {
        if self.topic.is_empty() && !(v5 && props.topic_alias.is_some()) {
            return Err(EncodeError::Invalid("empty topic name without topic alias"));
        }
        if let Some(id) = self.packet_id {
            check_packet_id(id)?;
        }
        let mut n = field_len(self.topic.len())?;
        if self.packet_id.is_some() {
            n += 2;
        }
        n += props_len(props, v5, PropCtx::Publish)?;
        Ok(n)
    }

    fn body_len(&self, props: &Properties, v5: bool) -> Result<usize, EncodeError> {
        self.flags()?;
        check_remaining(add(self.head_len(props, v5)?, self.payload.len())?)
    }

    fn write_head(
        &self,
        props: &Properties,
        v5: bool,
        dst: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        put_field(dst, self.topic.as_bytes())?;
        if let Some(id) = self.packet_id {
            dst.put_u16(id);
        }
        put_props(dst, props, v5, PropCtx::Publish)
    }

    /// Appends the fixed and variable header of this PUBLISH (the remaining length counts
    /// `self.payload.len()`), but not the payload: the caller sends `self.payload` right after
    /// it. This is how one payload is shared by every subscriber with per-subscriber packet
    /// identifiers, topic aliases and subscription identifiers.
    ///
    /// On error nothing is appended.
    pub fn encode_head(&self, version: Version, dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.encode_head_with(&self.properties, version, dst)
    }

    /// [`Self::encode_head`] with `properties` in place of `self.properties` (which are not
    /// read): a broker builds each subscriber's properties on the stack, where a `Publish`
    /// would box them.
    pub fn encode_head_with(
        &self,
        properties: &Properties,
        version: Version,
        dst: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let v5 = version.is_v5();
        let remaining = self.body_len(properties, v5)?;
        let head = self.head_len(properties, v5)?;
        let start = dst.len();
        dst.reserve(1 + varint_len(remaining)? + head);
        let result = (|| {
            dst.put_u8(crate::packet::PUBLISH << 4 | self.flags()?);
            put_varint(dst, remaining)?;
            self.write_head(properties, v5, dst)
        })();
        if result.is_err() {
            dst.truncate(start);
        }
        result
    }

    /// The length of what [`Self::encode_head`] appends.
    pub fn head_encoded_len(&self, version: Version) -> Result<usize, EncodeError> {
        self.head_encoded_len_with(&self.properties, version)
    }

    /// The length of what [`Self::encode_head_with`] appends.
    pub fn head_encoded_len_with(
        &self,
        properties: &Properties,
        version: Version,
    ) -> Result<usize, EncodeError> {
        let v5 = version.is_v5();
        let remaining = self.body_len(properties, v5)?;
        Ok(1 + varint_len(remaining)? + self.head_len(properties, v5)?)
    }
}

/// A whole QoS 0 PUBLISH without properties (in 5.0, an empty property list) in one buffer of
/// exactly its size: the packet a broker sends most subscribers, built without a [`Publish`]
/// (a few hundred bytes to fill and drop, and the topic copied into a `String`). The bytes are
/// those of encoding the equal `Publish` with [`Packet::encode`].
pub fn encode_qos0_publish(
    version: Version,
    retain: bool,
    topic: &TopicName,
    payload: &[u8],
) -> Result<BytesMut, EncodeError> {
    let head = add(
        field_len(topic.as_str().len())?,
        usize::from(version.is_v5()),
    )?;
    let remaining = check_remaining(add(head, payload.len())?)?;
    let mut dst = BytesMut::with_capacity(1 + varint_len(remaining)? + remaining);
    dst.put_u8(crate::packet::PUBLISH << 4 | u8::from(retain));
    put_varint(&mut dst, remaining)?;
    put_field(&mut dst, topic.as_str().as_bytes())?;
    if version.is_v5() {
        // The property length: none.
        dst.put_u8(0);
    }
    dst.put_slice(payload);
    Ok(dst)
}

// === impl Ack ===

impl Ack {
    fn body_len(&self, v5: bool) -> Result<usize, EncodeError> {
        check_packet_id(self.packet_id)?;
        if !v5 {
            return Ok(2);
        }
        if self.properties.is_empty() {
            return Ok(if self.reason_code == reason::SUCCESS {
                2
            } else {
                3
            });
        }
        Ok(3 + self.properties.wire_len(PropCtx::Ack)?)
    }

    fn write(&self, v5: bool, dst: &mut BytesMut) -> Result<(), EncodeError> {
        dst.put_u16(self.packet_id);
        if v5 && !(self.reason_code == reason::SUCCESS && self.properties.is_empty()) {
            dst.put_u8(self.reason_code);
            if !self.properties.is_empty() {
                self.properties.encode(PropCtx::Ack, dst)?;
            }
        }
        Ok(())
    }
}

// === impl Subscribe, Suback ===

impl Subscribe {
    fn body_len(&self, v5: bool) -> Result<usize, EncodeError> {
        check_packet_id(self.packet_id)?;
        if self.filters.is_empty() {
            return Err(EncodeError::Invalid("SUBSCRIBE without topic filters"));
        }
        let mut n = 2 + props_len(&self.properties, v5, PropCtx::Subscribe)?;
        for (filter, options) in &self.filters {
            if options.no_local && v5 && filter.shared().is_some() {
                return Err(EncodeError::Invalid("no local on a shared subscription"));
            }
            n = add(n, field_len(filter.as_str().len())? + 1)?;
        }
        Ok(n)
    }

    fn write(&self, v5: bool, dst: &mut BytesMut) -> Result<(), EncodeError> {
        dst.put_u16(self.packet_id);
        put_props(dst, &self.properties, v5, PropCtx::Subscribe)?;
        for (filter, o) in &self.filters {
            put_field(dst, filter.as_str().as_bytes())?;
            let mut b = o.qos.as_u8();
            if v5 {
                b |= u8::from(o.no_local) << 2
                    | u8::from(o.retain_as_published) << 3
                    | o.retain_handling.as_u8() << 4;
            }
            dst.put_u8(b);
        }
        Ok(())
    }
}

impl Suback {
    fn body_len(&self, v5: bool) -> Result<usize, EncodeError> {
        check_packet_id(self.packet_id)?;
        if self.reason_codes.is_empty() {
            return Err(EncodeError::Invalid("SUBACK without reason codes"));
        }
        add(
            2 + props_len(&self.properties, v5, PropCtx::Suback)?,
            self.reason_codes.len(),
        )
    }

    fn write(&self, v5: bool, dst: &mut BytesMut) -> Result<(), EncodeError> {
        dst.put_u16(self.packet_id);
        put_props(dst, &self.properties, v5, PropCtx::Suback)?;
        if v5 {
            dst.put_slice(&self.reason_codes);
        } else {
            // 3.1.1 §3.9.3: granted QoS 0-2, or 0x80 failure.
            for &code in &self.reason_codes {
                dst.put_u8(if code <= 2 { code } else { reason::UNSPECIFIED });
            }
        }
        Ok(())
    }
}

// === impl Unsubscribe, Unsuback ===

impl Unsubscribe {
    fn body_len(&self, v5: bool) -> Result<usize, EncodeError> {
        check_packet_id(self.packet_id)?;
        if self.filters.is_empty() {
            return Err(EncodeError::Invalid("UNSUBSCRIBE without topic filters"));
        }
        let mut n = 2 + props_len(&self.properties, v5, PropCtx::Unsubscribe)?;
        for filter in &self.filters {
            n = add(n, field_len(filter.as_str().len())?)?;
        }
        Ok(n)
    }

    fn write(&self, v5: bool, dst: &mut BytesMut) -> Result<(), EncodeError> {
        dst.put_u16(self.packet_id);
        put_props(dst, &self.properties, v5, PropCtx::Unsubscribe)?;
        for filter in &self.filters {
            put_field(dst, filter.as_str().as_bytes())?;
        }
        Ok(())
    }
}

impl Unsuback {
    fn body_len(&self, v5: bool) -> Result<usize, EncodeError> {
        check_packet_id(self.packet_id)?;
        if !v5 {
            return Ok(2);
        }
        if self.reason_codes.is_empty() {
            return Err(EncodeError::Invalid("UNSUBACK without reason codes"));
        }
        add(
            2 + self.properties.wire_len(PropCtx::Unsuback)?,
            self.reason_codes.len(),
        )
    }

    fn write(&self, v5: bool, dst: &mut BytesMut) -> Result<(), EncodeError> {
        dst.put_u16(self.packet_id);
        if v5 {
            self.properties.encode(PropCtx::Unsuback, dst)?;
            dst.put_slice(&self.reason_codes);
        }
        Ok(())
    }
}

// === impl Disconnect, Auth ===

impl Disconnect {
    fn body_len(&self, v5: bool) -> Result<usize, EncodeError> {
        if !v5 {
            return Ok(0);
        }
        if self.properties.is_empty() {
            return Ok(usize::from(self.reason_code != reason::SUCCESS));
        }
        Ok(1 + self.properties.wire_len(PropCtx::Disconnect)?)
    }

    fn write(&self, v5: bool, dst: &mut BytesMut) -> Result<(), EncodeError> {
        if v5 && !(self.reason_code == reason::SUCCESS && self.properties.is_empty()) {
            dst.put_u8(self.reason_code);
            if !self.properties.is_empty() {
                self.properties.encode(PropCtx::Disconnect, dst)?;
            }
        }
        Ok(())
    }
}

impl Auth {
    fn body_len(&self, v5: bool) -> Result<usize, EncodeError> {
        if !v5 {
            return Err(EncodeError::Invalid("AUTH does not exist in MQTT 3"));
        }
        if self.reason_code == reason::SUCCESS && self.properties.is_empty() {
            return Ok(0);
        }
        Ok(1 + self.properties.wire_len(PropCtx::Auth)?)
    }

    fn write(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        if !(self.reason_code == reason::SUCCESS && self.properties.is_empty()) {
            dst.put_u8(self.reason_code);
            self.properties.encode(PropCtx::Auth, dst)?;
        }
        Ok(())
    }
}
