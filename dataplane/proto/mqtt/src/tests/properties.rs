//! Every property, where it may appear, and the property error rules.

use bytes::{Bytes, BytesMut};

use super::*;
use crate::reason::{MALFORMED, PROTOCOL_ERROR, TOPIC_ALIAS_INVALID};
use crate::{
    Ack, Auth, Connack, Connect, Disconnect, Properties, Publish, QoS, Suback, Subscribe,
    SubscriptionOptions, TopicFilter, TopicName, Unsuback, Unsubscribe, Will,
};

fn user() -> Vec<(String, String)> {
    vec![
        ("k".into(), "v".into()),
        ("k".into(), "v2".into()),
        ("".into(), "".into()),
    ]
}

/// Every property a PUBLISH (and, but for the last two, a will) may carry.
fn message_props() -> Properties {
    Properties {
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(3600),
        content_type: Some("text/plain".into()),
        response_topic: Some(TopicName::new("reply/to").unwrap()),
        correlation_data: Some(Bytes::from_static(b"\x00\x01corr")),
        user_properties: user(),
        ..Properties::default()
    }
}

#[test]
fn every_property_round_trips() {
    let v = Version::V5;
    let connect = Properties {
        session_expiry_interval: Some(u32::MAX),
        authentication_method: Some("SCRAM-SHA-256".into()),
        authentication_data: Some(Bytes::from_static(b"client-first")),
        request_problem_information: Some(0),
        request_response_information: Some(1),
        receive_maximum: Some(1),
        topic_alias_maximum: Some(10),
        maximum_packet_size: Some(1),
        user_properties: user(),
        ..Properties::default()
    };
    let will = Properties {
        will_delay_interval: Some(30),
        ..message_props()
    };
    roundtrip(
        &Packet::Connect(Box::new(Connect {
            version: v,
            clean_start: false,
            keep_alive: 0,
            client_id: "c".into(),
            will: Some(Will {
                topic: TopicName::new("w").unwrap(),
                payload: Bytes::new(),
                qos: QoS::ExactlyOnce,
                retain: false,
                properties: will,
            }),
            username: Some("u".into()),
            password: Some(Bytes::from_static(b"p")),
            properties: connect,
        })),
        v,
    );
    let connack = Properties {
        session_expiry_interval: Some(0),
        assigned_client_identifier: Some("auto-1".into()),
        server_keep_alive: Some(120),
        authentication_method: Some("m".into()),
        authentication_data: Some(Bytes::new()),
        response_information: Some("resp/".into()),
        server_reference: Some("other:1883".into()),
        reason_string: Some("why".into()),
        receive_maximum: Some(u16::MAX),
        topic_alias_maximum: Some(0),
        maximum_qos: Some(1),
        retain_available: Some(0),
        user_properties: user(),
        maximum_packet_size: Some(u32::MAX),
        wildcard_subscription_available: Some(1),
        subscription_identifier_available: Some(0),
        shared_subscription_available: Some(1),
        ..Properties::default()
    };
    roundtrip(
        &Packet::Connack(Connack {
            session_present: true,
            reason_code: 0,
            properties: connack,
        }),
        v,
    );
    let publish = Properties {
        subscription_identifiers: vec![1, 127, 128, 16_384, 268_435_455],
        topic_alias: Some(u16::MAX),
        ..message_props()
    };
    roundtrip(
        &Packet::Publish(Publish {
            dup: true,
            qos: QoS::AtLeastOnce,
            retain: true,
            topic: "t".into(),
            packet_id: Some(1),
            properties: publish.into(),
            payload: Bytes::from_static(b"payload"),
        }),
        v,
    );
    let reason_only = Properties {
        reason_string: Some("r".into()),
        user_properties: user(),
        ..Properties::default()
    };
    for make in [
        Packet::Puback,
        Packet::Pubrec,
        Packet::Pubrel,
        Packet::Pubcomp,
    ] {
        roundtrip(
            &make(Ack {
                packet_id: 9,
                reason_code: 0,
                properties: reason_only.clone(),
            }),
            v,
        );
    }
    roundtrip(
        &Packet::Subscribe(Subscribe {
            packet_id: 3,
            filters: vec![(
                TopicFilter::new("a").unwrap(),
                SubscriptionOptions::qos(QoS::AtMostOnce),
            )],
            properties: Properties {
                subscription_identifiers: vec![268_435_455],
                user_properties: user(),
                ..Properties::default()
            },
        }),
        v,
    );
    roundtrip(
        &Packet::Suback(Suback {
            packet_id: 3,
            reason_codes: vec![0],
            properties: reason_only.clone(),
        }),
        v,
    );
    roundtrip(
        &Packet::Unsubscribe(Unsubscribe {
            packet_id: 3,
            filters: vec![TopicFilter::new("a").unwrap()],
            properties: Properties {
                user_properties: user(),
                ..Properties::default()
            },
        }),
        v,
    );
    roundtrip(
        &Packet::Unsuback(Unsuback {
            packet_id: 3,
            reason_codes: vec![0, 0x11],
            properties: reason_only.clone(),
        }),
        v,
    );
    roundtrip(
        &Packet::Disconnect(Disconnect {
            reason_code: 0,
            properties: Properties {
                session_expiry_interval: Some(5),
                server_reference: Some("s".into()),
                ..reason_only.clone()
            },
        }),
        v,
    );
    roundtrip(
        &Packet::Auth(Auth {
            reason_code: 0x18,
            properties: Properties {
                authentication_method: Some("m".into()),
                authentication_data: Some(Bytes::from_static(b"d")),
                ..reason_only
            },
        }),
        v,
    );
}

/// A v5 PUBACK with the given property bytes.
fn puback_with(props: &[u8]) -> Vec<u8> {
    let mut body = vec![0, 1, 0, props.len() as u8];
    body.extend_from_slice(props);
    frame(0x40, &body)
}

/// A v5 PUBLISH to `t` with the given property bytes.
fn publish_with(props: &[u8]) -> Vec<u8> {
    let mut body = vec![0, 1, b't', props.len() as u8];
    body.extend_from_slice(props);
    frame(0x30, &body)
}

#[test]
fn property_errors() {
    let c = ctx(Version::V5);
    let code = |bytes: Vec<u8>| err(&bytes, c).reason_code();
    // Unknown identifiers, and one with a multi-byte identifier.
    for id in [0x00, 0x04, 0x10, 0x14, 0x2b, 0x7f] {
        assert_eq!(code(puback_with(&[id, 0])), MALFORMED, "{id:#x}");
    }
    assert_eq!(code(puback_with(&[0x80, 0x01, 0])), MALFORMED);
    // Allowed elsewhere but not in PUBACK: topic alias, session expiry, content type.
    assert_eq!(code(puback_with(&[0x23, 0, 1])), MALFORMED);
    assert_eq!(code(puback_with(&[0x11, 0, 0, 0, 1])), MALFORMED);
    assert_eq!(code(puback_with(&[0x03, 0, 0])), MALFORMED);
    // Not allowed in PUBLISH: reason string, will delay.
    assert_eq!(code(publish_with(&[0x1f, 0, 0])), MALFORMED);
    assert_eq!(code(publish_with(&[0x18, 0, 0, 0, 0])), MALFORMED);
    // Repeated non-repeatable property.
    assert_eq!(code(puback_with(&[0x1f, 0, 0, 0x1f, 0, 0])), PROTOCOL_ERROR);
    assert_eq!(code(publish_with(&[0x01, 0, 0x01, 0])), PROTOCOL_ERROR);
    // Repeated subscription identifier: fine in PUBLISH, not in SUBSCRIBE.
    assert!(dec(&publish_with(&[0x0b, 1, 0x0b, 2]), c).is_ok());
    let sub = frame(0x82, &[0, 1, 4, 0x0b, 1, 0x0b, 2, 0, 1, b'a', 0]);
    assert_eq!(code(sub), PROTOCOL_ERROR);
    // User properties repeat, in order.
    let Packet::Puback(a) = dec(
        &puback_with(&[0x26, 0, 1, b'a', 0, 0, 0x26, 0, 1, b'a', 0, 1, b'x']),
        c,
    )
    .unwrap() else {
        panic!("not a PUBACK");
    };
    assert_eq!(
        a.properties.user_properties,
        vec![("a".into(), "".into()), ("a".into(), "x".into())]
    );
    // Values out of range.
    assert_eq!(code(publish_with(&[0x01, 2])), PROTOCOL_ERROR);
    assert_eq!(code(publish_with(&[0x23, 0, 0])), TOPIC_ALIAS_INVALID);
    assert_eq!(code(publish_with(&[0x0b, 0])), PROTOCOL_ERROR);
    assert_eq!(code(publish_with(&[0x08, 0, 1, b'#'])), PROTOCOL_ERROR);
    let connack = |props: &[u8]| {
        let mut body = vec![0, 0, props.len() as u8];
        body.extend_from_slice(props);
        frame(0x20, &body)
    };
    assert_eq!(code(connack(&[0x21, 0, 0])), PROTOCOL_ERROR);
    assert_eq!(code(connack(&[0x27, 0, 0, 0, 0])), PROTOCOL_ERROR);
    for id in [0x24, 0x25, 0x28, 0x29, 0x2a] {
        assert_eq!(code(connack(&[id, 2])), PROTOCOL_ERROR, "{id:#x}");
        assert!(dec(&connack(&[id, 1]), c).is_ok(), "{id:#x}");
    }
    // Authentication data without a method.
    assert_eq!(code(connack(&[0x16, 0, 1, 7])), PROTOCOL_ERROR);
    assert!(dec(&connack(&[0x16, 0, 1, 7, 0x15, 0, 1, b'm']), c).is_ok());
    // Non-minimal subscription identifier, truncated values.
    assert_eq!(code(publish_with(&[0x0b, 0x81, 0x00])), MALFORMED);
    assert_eq!(code(publish_with(&[0x02, 0, 0])), MALFORMED);
    assert_eq!(code(publish_with(&[0x03, 0, 5, b'a'])), MALFORMED);
    // Property length past the end of the packet; property length itself truncated.
    assert_eq!(code(frame(0x30, &[0, 1, b't', 9, 0x01, 0])), MALFORMED);
    assert_eq!(code(frame(0x30, &[0, 1, b't', 0x80])), MALFORMED);
}

#[test]
fn encoder_refuses_what_the_decoder_would() {
    let mut dst = BytesMut::new();
    let mut ack = Ack {
        packet_id: 1,
        reason_code: 0,
        properties: Properties {
            topic_alias: Some(1),
            ..Properties::default()
        },
    };
    let e = Packet::Puback(ack.clone()).encode(Version::V5, &mut dst);
    assert_eq!(
        e,
        Err(crate::EncodeError::Invalid(
            "property not allowed in this packet"
        ))
    );
    // 3.x drops properties, so the same packet encodes there.
    assert!(
        Packet::Puback(ack.clone())
            .encode(Version::V311, &mut dst)
            .is_ok()
    );
    dst.clear();
    ack.properties = Properties {
        reason_string: Some("x".repeat(70_000)),
        ..Properties::default()
    };
    let e = Packet::Puback(ack.clone()).encode(Version::V5, &mut dst);
    assert_eq!(e, Err(crate::EncodeError::StringTooLong));
    ack.properties = Properties::default();
    ack.packet_id = 0;
    assert!(Packet::Puback(ack).encode(Version::V5, &mut dst).is_err());
    assert!(dst.is_empty(), "nothing written on error");

    let publish = |qos, packet_id, dup| {
        Packet::Publish(Publish {
            dup,
            qos,
            retain: false,
            topic: "t".into(),
            packet_id,
            properties: Properties::default().into(),
            payload: Bytes::new(),
        })
    };
    assert!(
        publish(QoS::AtMostOnce, Some(1), false)
            .encode(Version::V5, &mut dst)
            .is_err()
    );
    assert!(
        publish(QoS::AtMostOnce, None, true)
            .encode(Version::V5, &mut dst)
            .is_err()
    );
    assert!(
        publish(QoS::AtLeastOnce, None, false)
            .encode(Version::V5, &mut dst)
            .is_err()
    );
    assert!(
        publish(QoS::AtLeastOnce, Some(0), false)
            .encode(Version::V5, &mut dst)
            .is_err()
    );
    assert!(dst.is_empty());
    let flags = Properties {
        maximum_qos: Some(2),
        ..Properties::default()
    };
    let connack = Packet::Connack(Connack {
        session_present: false,
        reason_code: 0,
        properties: flags,
    });
    assert!(connack.encode(Version::V5, &mut dst).is_err());
    let sub_ids = Properties {
        subscription_identifiers: vec![1, 2],
        ..Properties::default()
    };
    let sub = Packet::Subscribe(Subscribe {
        packet_id: 1,
        filters: vec![(
            TopicFilter::new("a").unwrap(),
            SubscriptionOptions::qos(QoS::AtMostOnce),
        )],
        properties: sub_ids,
    });
    assert!(sub.encode(Version::V5, &mut dst).is_err());
    assert!(dst.is_empty());
}

#[test]
fn encode_head_then_payload() {
    let p = Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "a/b".into(),
        packet_id: Some(5),
        properties: Properties {
            subscription_identifiers: vec![7],
            ..Properties::default()
        }
        .into(),
        payload: Bytes::from(vec![0xab; 300]),
    };
    for v in [Version::V311, Version::V5] {
        let whole = enc(&Packet::Publish(p.clone()), v);
        let mut head = BytesMut::new();
        p.encode_head(v, &mut head).unwrap();
        assert_eq!(head.len(), p.head_encoded_len(v).unwrap());
        head.extend_from_slice(&p.payload);
        assert_eq!(head, whole);
    }
}

#[test]
fn a_qos0_frame_without_a_publish_is_the_publish_encoded() {
    let long = "t".repeat(usize::from(u16::MAX));
    // Payload sizes on both sides of each remaining-length byte boundary.
    for (topic, len) in [
        ("a/b", 0),
        ("a/b", 120),
        ("a/b", 122),
        ("scenescape/data/camera/1", 16_000),
        ("x", 16_380),
        ("x", 2_097_200),
        (long.as_str(), 10),
    ] {
        let name = TopicName::new(topic).unwrap();
        let payload = Bytes::from(vec![0x5a; len]);
        for v in [Version::V311, Version::V5] {
            for retain in [false, true] {
                let p = Publish {
                    dup: false,
                    qos: QoS::AtMostOnce,
                    retain,
                    topic: topic.into(),
                    packet_id: None,
                    properties: Properties::default().into(),
                    payload: payload.clone(),
                };
                let frame = crate::encode_qos0_publish(v, retain, &name, &payload).unwrap();
                assert_eq!(frame, enc(&Packet::Publish(p), v), "{v:?} {len}");
                assert_eq!(frame.capacity(), frame.len(), "exact size");
            }
        }
    }
    // Over the largest remaining length: an error, as for the `Publish`.
    let big = vec![0u8; crate::MAX_REMAINING_LENGTH];
    let name = TopicName::new("a").unwrap();
    assert_eq!(
        crate::encode_qos0_publish(Version::V311, false, &name, &big).unwrap_err(),
        crate::EncodeError::TooLarge
    );
}

#[test]
fn publish_properties_are_on_the_heap_only_when_set() {
    // The point of the box: a `Publish` is moved several times per message.
    assert!(
        std::mem::size_of::<Publish>() <= 96,
        "Publish is {} bytes",
        std::mem::size_of::<Publish>()
    );
    let empty = crate::PublishProperties::from(Properties::default());
    assert!(!empty.is_boxed());
    assert_eq!(*empty, Properties::default());
    assert_eq!(empty, crate::PublishProperties::default());

    let mut set = crate::PublishProperties::default();
    set.topic_alias = Some(3);
    assert!(set.is_boxed());
    assert_eq!(set.topic_alias, Some(3));
    assert_ne!(set, empty);
    set.topic_alias = None;
    assert_eq!(set, empty, "equal by content, boxed or not");
    // `get_mut` changes what is there and boxes nothing.
    let mut none = crate::PublishProperties::default();
    assert!(none.get_mut().is_none());
    assert!(!none.is_boxed());
    set.get_mut().expect("boxed").topic_alias = Some(4);
    assert_eq!(set.topic_alias, Some(4));

    // What the decoder gives: nothing boxed for 3.1.1, or for 5.0 without properties.
    let publish = |props: Properties| {
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: "a/b".into(),
            packet_id: None,
            properties: props.into(),
            payload: Bytes::from_static(b"x"),
        })
    };
    let with_alias = Properties {
        topic_alias: Some(1),
        ..Properties::default()
    };
    for (version, props, boxed) in [
        (Version::V311, with_alias.clone(), false),
        (Version::V5, Properties::default(), false),
        (Version::V5, with_alias, true),
    ] {
        let wire = enc(&publish(props), version);
        let Ok(Packet::Publish(p)) = dec(&wire, ctx(version)) else {
            panic!("decodes");
        };
        assert_eq!(p.properties.is_boxed(), boxed, "{version:?}");
    }
}

#[test]
fn a_head_with_properties_apart_is_the_head_of_the_publish_holding_them() {
    let props = Properties {
        subscription_identifiers: vec![3, 300],
        message_expiry_interval: Some(60),
        topic_alias: Some(2),
        user_properties: user(),
        ..Properties::default()
    };
    let holding = Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: true,
        topic: "a/b".into(),
        packet_id: Some(7),
        properties: props.clone().into(),
        payload: Bytes::from_static(b"payload"),
    };
    // Its own properties, whatever they are, are not read.
    let apart = Publish {
        properties: Properties {
            content_type: Some("ignored".into()),
            ..Properties::default()
        }
        .into(),
        ..holding.clone()
    };
    for v in [Version::V311, Version::V5] {
        let mut want = BytesMut::new();
        holding.encode_head(v, &mut want).unwrap();
        let mut got = BytesMut::new();
        apart.encode_head_with(&props, v, &mut got).unwrap();
        assert_eq!(got, want, "{v:?}");
        assert_eq!(apart.head_encoded_len_with(&props, v).unwrap(), want.len());
    }
}
