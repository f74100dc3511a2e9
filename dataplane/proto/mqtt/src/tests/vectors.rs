//! Byte vectors written out by hand from the spec's packet layouts (MQTT 3.1.1 §3.1, MQTT 5.0
//! §3.1), shaped like what `mosquitto_pub` sends.

use bytes::Bytes;

use super::*;
use crate::{Properties, QoS, TopicName, Will};

/// `mosquitto_pub -V mqttv311 -i test -k 60 -t a/b -m hi`: CONNECT, clean session.
pub(super) const V311_CONNECT: &[u8] = &[
    0x10, 0x10, // CONNECT, remaining length 16
    0x00, 0x04, b'M', b'Q', b'T', b'T', // protocol name
    0x04, // level 4
    0x02, // clean session
    0x00, 0x3c, // keep alive 60
    0x00, 0x04, b't', b'e', b's', b't', // client id
];

/// PUBLISH QoS 0 `a/b` = `hi`.
pub(super) const V311_PUBLISH: &[u8] = &[0x30, 0x07, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i'];

/// CONNECT with a will (QoS 1, retained), user name and password.
const V311_CONNECT_FULL: &[u8] = &[
    0x10,
    0x25, // remaining length 37
    0x00,
    0x04,
    b'M',
    b'Q',
    b'T',
    b'T',
    0x04,        //
    0b1110_1110, // user, password, will retain, will QoS 1, will, clean session
    0x00,
    0x0a, // keep alive 10
    0x00,
    0x02,
    b'c',
    b'1', // client id
    0x00,
    0x04,
    b'l',
    b'w',
    b'/',
    b't', // will topic
    0x00,
    0x03,
    b'b',
    b'y',
    b'e', // will payload
    0x00,
    0x04,
    b'u',
    b's',
    b'e',
    b'r', // user name
    0x00,
    0x04,
    b'p',
    b'a',
    b's',
    b's', // password
];

/// MQTT 3.1 (`MQIsdp`, level 3) CONNECT.
const V31_CONNECT: &[u8] = &[
    0x10, 0x10, //
    0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 0x03, //
    0x02, 0x00, 0x3c, //
    0x00, 0x02, b'i', b'd',
];

/// `mosquitto_pub -V mqttv5 -t a -m x` style CONNECT: receive maximum 20, empty client id.
pub(super) const V5_CONNECT: &[u8] = &[
    0x10, 0x10, //
    0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, //
    0x02, 0x00, 0x3c, //
    0x03, 0x21, 0x00, 0x14, // properties: receive maximum 20
    0x00, 0x00, // empty client id
];

#[test]
fn v311_connect() {
    let Packet::Connect(c) = dec(V311_CONNECT, ctx_new()).unwrap() else {
        panic!("not a CONNECT");
    };
    assert_eq!(c.version, Version::V311);
    assert!(c.clean_start);
    assert_eq!(c.keep_alive, 60);
    assert_eq!(c.client_id, "test");
    assert_eq!((&c.will, &c.username, &c.password), (&None, &None, &None));
    assert!(c.properties.is_empty());
    assert_eq!(&enc(&Packet::Connect(c), Version::V311)[..], V311_CONNECT);
}

#[test]
fn v311_connect_with_will_and_credentials() {
    let Packet::Connect(c) = dec(V311_CONNECT_FULL, ctx_new()).unwrap() else {
        panic!("not a CONNECT");
    };
    assert_eq!(
        c.will,
        Some(Will {
            topic: TopicName::new("lw/t").unwrap(),
            payload: Bytes::from_static(b"bye"),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: Properties::default(),
        })
    );
    assert_eq!(c.username.as_deref(), Some("user"));
    assert_eq!(c.password.as_deref(), Some(&b"pass"[..]));
    // The password never shows in Debug output.
    let debug = format!("{c:?}");
    assert!(
        debug.contains("<redacted>") && !debug.contains("pass\""),
        "{debug}"
    );
    assert_eq!(
        &enc(&Packet::Connect(c), Version::V311)[..],
        V311_CONNECT_FULL
    );
}

#[test]
fn v31_connect() {
    let Packet::Connect(c) = dec(V31_CONNECT, ctx_new()).unwrap() else {
        panic!("not a CONNECT");
    };
    assert_eq!(c.version, Version::V31);
    assert_eq!(c.client_id, "id");
    // Encoded for its own version whatever version is asked for.
    assert_eq!(&enc(&Packet::Connect(c), Version::V5)[..], V31_CONNECT);
}

#[test]
fn v5_connect() {
    let Packet::Connect(c) = dec(V5_CONNECT, ctx_new()).unwrap() else {
        panic!("not a CONNECT");
    };
    assert_eq!(c.version, Version::V5);
    assert_eq!(c.client_id, "");
    assert_eq!(c.properties.receive_maximum, Some(20));
    assert_eq!(&enc(&Packet::Connect(c), Version::V5)[..], V5_CONNECT);
}

#[test]
fn v311_publish() {
    let Packet::Publish(p) = dec(V311_PUBLISH, ctx(Version::V311)).unwrap() else {
        panic!("not a PUBLISH");
    };
    assert_eq!((p.topic.as_str(), &p.payload[..]), ("a/b", &b"hi"[..]));
    assert_eq!(
        (p.qos, p.packet_id, p.dup, p.retain),
        (QoS::AtMostOnce, None, false, false)
    );
    assert_eq!(&enc(&Packet::Publish(p), Version::V311)[..], V311_PUBLISH);
}

#[test]
fn short_forms() {
    use crate::{Ack, Auth, Disconnect, reason};
    let ack = |reason_code| {
        Packet::Puback(Ack {
            packet_id: 7,
            reason_code,
            properties: Properties::default(),
        })
    };
    assert_eq!(
        &enc(&ack(reason::SUCCESS), Version::V5)[..],
        &[0x40, 2, 0, 7]
    );
    assert_eq!(&enc(&ack(0x10), Version::V5)[..], &[0x40, 3, 0, 7, 0x10]);
    assert_eq!(&enc(&ack(0x10), Version::V311)[..], &[0x40, 2, 0, 7]);
    // The long form with an explicit success and empty properties decodes the same.
    assert_eq!(
        dec(&[0x40, 4, 0, 7, 0, 0], ctx(Version::V5)).unwrap(),
        ack(0)
    );
    assert_eq!(dec(&[0x40, 3, 0, 7, 0], ctx(Version::V5)).unwrap(), ack(0));

    let disconnect = |reason_code| {
        Packet::Disconnect(Disconnect {
            reason_code,
            properties: Properties::default(),
        })
    };
    assert_eq!(&enc(&disconnect(0), Version::V5)[..], &[0xe0, 0]);
    assert_eq!(&enc(&disconnect(0x8e), Version::V5)[..], &[0xe0, 1, 0x8e]);
    assert_eq!(&enc(&disconnect(0x8e), Version::V311)[..], &[0xe0, 0]);
    assert_eq!(
        dec(&[0xe0, 2, 0, 0], ctx(Version::V5)).unwrap(),
        disconnect(0)
    );

    let auth = |reason_code| {
        Packet::Auth(Auth {
            reason_code,
            properties: Properties::default(),
        })
    };
    assert_eq!(&enc(&auth(0), Version::V5)[..], &[0xf0, 0]);
    assert_eq!(&enc(&auth(0x18), Version::V5)[..], &[0xf0, 2, 0x18, 0]);
    assert_eq!(dec(&[0xf0, 2, 0, 0], ctx(Version::V5)).unwrap(), auth(0));
    assert!(
        Packet::Auth(Auth {
            reason_code: 0,
            properties: Properties::default()
        })
        .encode(Version::V311, &mut BytesMut::new())
        .is_err()
    );
}

#[test]
fn connack_maps_to_v3_codes() {
    use crate::{Connack, reason, v3_connack, v3_connack_code};
    let table = [
        (reason::SUCCESS, v3_connack::ACCEPTED),
        (
            reason::UNSUPPORTED_PROTOCOL_VERSION,
            v3_connack::UNACCEPTABLE_PROTOCOL_VERSION,
        ),
        (reason::CLIENT_ID_NOT_VALID, v3_connack::IDENTIFIER_REJECTED),
        (reason::SERVER_UNAVAILABLE, v3_connack::SERVER_UNAVAILABLE),
        (reason::SERVER_BUSY, v3_connack::SERVER_UNAVAILABLE),
        (
            reason::BAD_USERNAME_OR_PASSWORD,
            v3_connack::BAD_USERNAME_OR_PASSWORD,
        ),
        (reason::NOT_AUTHORIZED, v3_connack::NOT_AUTHORIZED),
        (reason::BANNED, v3_connack::NOT_AUTHORIZED),
        (reason::BAD_AUTH_METHOD, v3_connack::NOT_AUTHORIZED),
        (reason::UNSPECIFIED, v3_connack::SERVER_UNAVAILABLE),
        (reason::QUOTA_EXCEEDED, v3_connack::SERVER_UNAVAILABLE),
        (
            reason::CONNECTION_RATE_EXCEEDED,
            v3_connack::SERVER_UNAVAILABLE,
        ),
        (0x01, v3_connack::SERVER_UNAVAILABLE),
    ];
    for (v5, v3) in table {
        assert_eq!(v3_connack_code(v5), v3, "{v5:#x}");
        let p = Packet::Connack(Connack {
            session_present: false,
            reason_code: v5,
            properties: Properties::default(),
        });
        assert_eq!(&enc(&p, Version::V311)[..], &[0x20, 2, 0, v3]);
    }
    // Every v3 code decodes to a v5 reason that maps back to it.
    for code in 0..=5u8 {
        let Packet::Connack(c) = dec(&[0x20, 2, 1, code], ctx(Version::V311)).unwrap() else {
            panic!("not a CONNACK");
        };
        assert!(c.session_present);
        assert_eq!(v3_connack_code(c.reason_code), code);
    }
}

#[test]
fn subscribe_v311() {
    // SUBSCRIBE id 10: "a/+" QoS 1, "#" QoS 0.
    let wire = [
        0x82, 0x0c, 0x00, 0x0a, 0x00, 0x03, b'a', b'/', b'+', 0x01, 0x00, 0x01, b'#', 0x00,
    ];
    let p = dec(&wire, ctx(Version::V311)).unwrap();
    let Packet::Subscribe(s) = &p else {
        panic!("not a SUBSCRIBE");
    };
    assert_eq!(s.packet_id, 10);
    assert_eq!(s.filters.len(), 2);
    assert_eq!(s.filters[0].0.as_str(), "a/+");
    assert_eq!(s.filters[0].1.qos, QoS::AtLeastOnce);
    assert_eq!(&enc(&p, Version::V311)[..], &wire);
}

#[test]
fn kinds() {
    assert_eq!(dec(&[0xc0, 0], ctx(Version::V5)).unwrap().kind(), "PINGREQ");
    assert_eq!(
        dec(&[0xd0, 0], ctx(Version::V311)).unwrap().kind(),
        "PINGRESP"
    );
    assert_eq!(dec(V5_CONNECT, ctx_new()).unwrap().kind(), "CONNECT");
}
