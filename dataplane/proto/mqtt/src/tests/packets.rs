//! Proptests over arbitrary packets: encode then decode gives the same packet, in every
//! version; arbitrary bytes never panic and decode the same however they are split.

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::codec::{MAX_VARINT, Reader, put_varint};
use crate::reason::allowed;
use crate::{
    Ack, Auth, Connack, Connect, Disconnect, Properties, Publish, QoS, RetainHandling, Suback,
    Subscribe, SubscriptionOptions, TopicFilter, TopicName, Unsuback, Unsubscribe, Will,
};

/// Where a property block goes; mirrors the table of MQTT 5.0 §2.2.2.2, written independently
/// of the implementation's own table.
#[derive(Debug, Clone, Copy)]
enum Place {
    Connect,
    Will,
    Connack,
    Publish,
    Ack,
    Subscribe,
    Unsubscribe,
    Disconnect,
    Auth,
}

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,6}"
}

fn bin() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..8).prop_map(Bytes::from)
}

fn topic_name() -> impl Strategy<Value = TopicName> {
    prop::collection::vec("[a-z0-9$ é]{0,3}", 1..4)
        .prop_map(|l| l.join("/"))
        .prop_filter_map("valid", |t| TopicName::new(t).ok())
}

fn topic_filter() -> impl Strategy<Value = TopicFilter> {
    (
        prop::option::of("[a-z]{1,3}"),
        prop::collection::vec(prop_oneof!["[a-z0-9]{0,3}", Just("+".to_owned())], 1..4),
        any::<bool>(),
    )
        .prop_filter_map("valid", |(share, mut levels, hash)| {
            if hash {
                levels.push("#".into());
            }
            let f = levels.join("/");
            let f = match share {
                Some(g) => format!("$share/{g}/{f}"),
                None => f,
            };
            TopicFilter::new(f).ok()
        })
}

fn flag() -> impl Strategy<Value = Option<u8>> {
    prop::option::of(0u8..=1)
}

/// A random `Properties` with every property possibly set, then cut down to `place`.
fn props(place: Place) -> BoxedStrategy<Properties> {
    use prop::option::of;
    let a = (
        flag(),
        of(any::<u32>()),
        of(text()),
        of(topic_name()),
        of(bin()),
        prop::collection::vec(1u32..=MAX_VARINT, 0..3),
        of(any::<u32>()),
        of(text()),
        of(any::<u16>()),
    );
    let b = (
        of(text()),
        of(bin()),
        flag(),
        of(any::<u32>()),
        flag(),
        of(text()),
        of(text()),
        of(text()),
        of(1u16..),
    );
    let c = (
        of(any::<u16>()),
        of(1u16..),
        flag(),
        flag(),
        prop::collection::vec((text(), text()), 0..3),
        of(1u32..),
        flag(),
        flag(),
        flag(),
    );
    (a, b, c)
        .prop_map(move |(a, b, c)| {
            let full = Properties {
                payload_format_indicator: a.0,
                message_expiry_interval: a.1,
                content_type: a.2,
                response_topic: a.3,
                correlation_data: a.4,
                subscription_identifiers: a.5,
                session_expiry_interval: a.6,
                assigned_client_identifier: a.7,
                server_keep_alive: a.8,
                authentication_method: b.0,
                authentication_data: b.1,
                request_problem_information: b.2,
                will_delay_interval: b.3,
                request_response_information: b.4,
                response_information: b.5,
                server_reference: b.6,
                reason_string: b.7,
                receive_maximum: b.8,
                topic_alias_maximum: c.0,
                topic_alias: c.1,
                maximum_qos: c.2,
                retain_available: c.3,
                user_properties: c.4,
                maximum_packet_size: c.5,
                wildcard_subscription_available: c.6,
                subscription_identifier_available: c.7,
                shared_subscription_available: c.8,
            };
            restrict(full, place)
        })
        .boxed()
}

fn restrict(f: Properties, place: Place) -> Properties {
    let mut p = Properties {
        user_properties: f.user_properties.clone(),
        ..Properties::default()
    };
    let auth = |p: &mut Properties| {
        p.authentication_method = f.authentication_method.clone();
        p.authentication_data = f.authentication_data.clone();
        if p.authentication_data.is_some() && p.authentication_method.is_none() {
            p.authentication_method = Some("method".into());
        }
    };
    let message = |p: &mut Properties| {
        p.payload_format_indicator = f.payload_format_indicator;
        p.message_expiry_interval = f.message_expiry_interval;
        p.content_type = f.content_type.clone();
        p.response_topic = f.response_topic.clone();
        p.correlation_data = f.correlation_data.clone();
    };
    match place {
        Place::Connect => {
            p.session_expiry_interval = f.session_expiry_interval;
            auth(&mut p);
            p.request_problem_information = f.request_problem_information;
            p.request_response_information = f.request_response_information;
            p.receive_maximum = f.receive_maximum;
            p.topic_alias_maximum = f.topic_alias_maximum;
            p.maximum_packet_size = f.maximum_packet_size;
        }
        Place::Will => {
            message(&mut p);
            p.will_delay_interval = f.will_delay_interval;
        }
        Place::Connack => {
            p.session_expiry_interval = f.session_expiry_interval;
            p.assigned_client_identifier = f.assigned_client_identifier.clone();
            p.server_keep_alive = f.server_keep_alive;
            auth(&mut p);
            p.response_information = f.response_information.clone();
            p.server_reference = f.server_reference.clone();
            p.reason_string = f.reason_string.clone();
            p.receive_maximum = f.receive_maximum;
            p.topic_alias_maximum = f.topic_alias_maximum;
            p.maximum_qos = f.maximum_qos;
            p.retain_available = f.retain_available;
            p.maximum_packet_size = f.maximum_packet_size;
            p.wildcard_subscription_available = f.wildcard_subscription_available;
            p.subscription_identifier_available = f.subscription_identifier_available;
            p.shared_subscription_available = f.shared_subscription_available;
        }
        Place::Publish => {
            message(&mut p);
            p.subscription_identifiers = f.subscription_identifiers.clone();
            p.topic_alias = f.topic_alias;
        }
        Place::Ack => p.reason_string = f.reason_string.clone(),
        Place::Subscribe => {
            p.subscription_identifiers =
                f.subscription_identifiers.iter().take(1).copied().collect();
        }
        Place::Unsubscribe => {}
        Place::Disconnect => {
            p.session_expiry_interval = f.session_expiry_interval;
            p.server_reference = f.server_reference.clone();
            p.reason_string = f.reason_string.clone();
        }
        Place::Auth => {
            auth(&mut p);
            p.reason_string = f.reason_string.clone();
        }
    }
    p
}

/// Properties in 5.0, none in 3.x.
fn props_for(v5: bool, place: Place) -> BoxedStrategy<Properties> {
    if v5 {
        props(place)
    } else {
        Just(Properties::default()).boxed()
    }
}

fn code(v5: bool, allowed: &'static [u8], v3: u8) -> BoxedStrategy<u8> {
    if v5 {
        prop::sample::select(allowed).boxed()
    } else {
        Just(v3).boxed()
    }
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn connect(version: Version) -> impl Strategy<Value = Packet> {
    let v5 = version.is_v5();
    let will = (
        topic_name(),
        bin(),
        qos(),
        any::<bool>(),
        props_for(v5, Place::Will),
    )
        .prop_map(|(topic, payload, qos, retain, properties)| Will {
            topic,
            payload,
            qos,
            retain,
            properties,
        });
    (
        any::<bool>(),
        any::<u16>(),
        text(),
        prop::option::of(will),
        prop::option::of(text()),
        prop::option::of(bin()),
        props_for(v5, Place::Connect),
    )
        .prop_map(
            move |(
                clean_start,
                keep_alive,
                client_id,
                will,
                mut username,
                password,
                properties,
            )| {
                if !v5 && password.is_some() && username.is_none() {
                    username = Some("user".into());
                }
                Packet::Connect(Box::new(Connect {
                    version,
                    clean_start,
                    keep_alive,
                    client_id,
                    will,
                    username,
                    password,
                    properties,
                }))
            },
        )
}

fn publish(v5: bool) -> impl Strategy<Value = Packet> {
    (
        qos(),
        any::<bool>(),
        any::<bool>(),
        topic_name(),
        1u16..,
        props_for(v5, Place::Publish),
        bin(),
        any::<bool>(),
    )
        .prop_map(
            move |(qos, dup, retain, topic, id, properties, payload, alias_only)| {
                let qos0 = qos == QoS::AtMostOnce;
                let topic = if v5 && alias_only && properties.topic_alias.is_some() {
                    String::new()
                } else {
                    topic.into_string()
                };
                Packet::Publish(Publish {
                    dup: dup && !qos0,
                    qos,
                    retain,
                    topic,
                    packet_id: (!qos0).then_some(id),
                    properties: properties.into(),
                    payload,
                })
            },
        )
}

fn ack(v5: bool) -> impl Strategy<Value = Packet> {
    (0..4u8, 1u16..).prop_flat_map(move |(kind, packet_id)| {
        let codes = if kind < 2 {
            allowed::PUBACK
        } else {
            allowed::PUBREL
        };
        (code(v5, codes, 0), props_for(v5, Place::Ack)).prop_map(
            move |(reason_code, properties)| {
                let a = Ack {
                    packet_id,
                    reason_code,
                    properties,
                };
                match kind {
                    0 => Packet::Puback(a),
                    1 => Packet::Pubrec(a),
                    2 => Packet::Pubrel(a),
                    _ => Packet::Pubcomp(a),
                }
            },
        )
    })
}

fn subscription_options(v5: bool) -> impl Strategy<Value = SubscriptionOptions> {
    (qos(), any::<bool>(), any::<bool>(), 0u8..3).prop_map(move |(qos, nl, rap, rh)| {
        if v5 {
            SubscriptionOptions {
                qos,
                no_local: nl,
                retain_as_published: rap,
                retain_handling: RetainHandling::from_u8(rh).unwrap(),
            }
        } else {
            SubscriptionOptions::qos(qos)
        }
    })
}

fn subscribe(v5: bool) -> impl Strategy<Value = Packet> {
    (
        1u16..,
        prop::collection::vec((topic_filter(), subscription_options(v5)), 1..4),
        props_for(v5, Place::Subscribe),
    )
        .prop_map(|(packet_id, mut filters, properties)| {
            for (f, o) in &mut filters {
                if f.shared().is_some() {
                    o.no_local = false;
                }
            }
            Packet::Subscribe(Subscribe {
                packet_id,
                filters,
                properties,
            })
        })
}

fn suback(v5: bool) -> impl Strategy<Value = Packet> {
    let codes = if v5 {
        allowed::SUBACK
    } else {
        allowed::SUBACK_V3
    };
    (
        1u16..,
        prop::collection::vec(prop::sample::select(codes), 1..5),
        props_for(v5, Place::Ack),
    )
        .prop_map(|(packet_id, reason_codes, properties)| {
            Packet::Suback(Suback {
                packet_id,
                reason_codes,
                properties,
            })
        })
}

fn unsubscribe(v5: bool) -> impl Strategy<Value = Packet> {
    (
        1u16..,
        prop::collection::vec(topic_filter(), 1..4),
        props_for(v5, Place::Unsubscribe),
    )
        .prop_map(|(packet_id, filters, properties)| {
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                filters,
                properties,
            })
        })
}

fn unsuback(v5: bool) -> impl Strategy<Value = Packet> {
    let codes = if v5 { 1..5 } else { 0..1 };
    (
        1u16..,
        prop::collection::vec(prop::sample::select(allowed::UNSUBACK), codes),
        props_for(v5, Place::Ack),
    )
        .prop_map(|(packet_id, reason_codes, properties)| {
            Packet::Unsuback(Unsuback {
                packet_id,
                reason_codes,
                properties,
            })
        })
}

fn packet(version: Version) -> BoxedStrategy<Packet> {
    let v5 = version.is_v5();
    let connack = (
        any::<bool>(),
        code(v5, allowed::CONNACK, 0),
        props_for(v5, Place::Connack),
        prop::sample::select(&[0x00u8, 0x84, 0x85, 0x88, 0x86, 0x87][..]),
    )
        .prop_map(move |(session_present, reason_code, properties, v3)| {
            Packet::Connack(Connack {
                session_present,
                reason_code: if v5 { reason_code } else { v3 },
                properties,
            })
        });
    let disconnect = (
        code(v5, allowed::DISCONNECT, 0),
        props_for(v5, Place::Disconnect),
    )
        .prop_map(|(reason_code, properties)| {
            Packet::Disconnect(Disconnect {
                reason_code,
                properties,
            })
        });
    let common = prop_oneof![
        connect(version),
        connack,
        publish(v5),
        ack(v5),
        subscribe(v5),
        suback(v5),
        unsubscribe(v5),
        unsuback(v5),
        Just(Packet::Pingreq),
        Just(Packet::Pingresp),
        disconnect,
    ];
    if v5 {
        let auth = (code(true, allowed::AUTH, 0), props(Place::Auth)).prop_map(
            |(reason_code, properties)| {
                Packet::Auth(Auth {
                    reason_code,
                    properties,
                })
            },
        );
        prop_oneof![10 => common, 1 => auth].boxed()
    } else {
        common.boxed()
    }
}

/// Decodes everything in `stream`, feeding it in chunks of `chunk` bytes.
fn decode_stream(stream: &[u8], chunk: usize, c: DecodeCtx) -> (Vec<Packet>, Option<DecodeError>) {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in stream.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match decode(&mut buf, c) {
                Ok(Some(p)) => out.push(p),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn roundtrip_v5(p in packet(Version::V5)) {
        roundtrip(&p, Version::V5);
    }

    #[test]
    fn roundtrip_v311(p in packet(Version::V311)) {
        roundtrip(&p, Version::V311);
    }

    #[test]
    fn roundtrip_v31(p in packet(Version::V31)) {
        roundtrip(&p, Version::V31);
    }

    /// A stream of packets decodes the same whole or byte by byte.
    #[test]
    fn stream_of_packets(
        ps in prop::collection::vec(packet(Version::V5), 1..5),
        chunk in 1usize..20,
    ) {
        let mut wire = BytesMut::new();
        for p in &ps {
            p.encode(Version::V5, &mut wire).unwrap();
        }
        let c = ctx(Version::V5);
        prop_assert_eq!(decode_stream(&wire, chunk, c), (ps, None));
    }

    /// Arbitrary bytes never panic, and the result does not depend on how they are split.
    #[test]
    fn arbitrary_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..64),
        chunk in 1usize..8,
        v5: bool,
    ) {
        let c = ctx(if v5 { Version::V5 } else { Version::V311 });
        let whole = decode_stream(&bytes, bytes.len(), c);
        prop_assert_eq!(decode_stream(&bytes, chunk, c), whole);
        let _ = decode_stream(&bytes, chunk, ctx_new());
    }

    /// Variable byte integers round-trip, with the encoded length predicted.
    #[test]
    fn varint(v in 0u32..=MAX_VARINT) {
        let mut dst = BytesMut::new();
        put_varint(&mut dst, v as usize).unwrap();
        prop_assert_eq!(dst.len(), crate::codec::varint_len(v as usize).unwrap());
        let mut r = Reader::new(dst.freeze());
        prop_assert_eq!(r.varint("v"), Ok(v));
        prop_assert!(r.is_empty());
    }
}
