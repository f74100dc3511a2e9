//! Every packet round-trips in MQTT 3.1.1 (where it exists there) and 5.0.

use bytes::Bytes;

use super::*;
use crate::{
    Ack, Auth, Connack, Connect, Disconnect, Properties, Publish, QoS, RetainHandling, Suback,
    Subscribe, SubscriptionOptions, TopicFilter, TopicName, Unsuback, Unsubscribe, Will, reason,
};

const BOTH: [Version; 2] = [Version::V311, Version::V5];

fn filter(s: &str) -> TopicFilter {
    TopicFilter::new(s).unwrap()
}

#[test]
fn connect() {
    for version in [Version::V31, Version::V311, Version::V5] {
        let base = Connect {
            version,
            clean_start: true,
            keep_alive: 30,
            client_id: "client-é".into(),
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        };
        roundtrip(&Packet::Connect(Box::new(base.clone())), version);
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let full = Connect {
                clean_start: false,
                keep_alive: u16::MAX,
                client_id: String::new(),
                will: Some(Will {
                    topic: TopicName::new("last/will").unwrap(),
                    payload: Bytes::from_static(b"\x00gone\xff"),
                    qos,
                    retain: qos == QoS::AtLeastOnce,
                    properties: Properties::default(),
                }),
                username: Some(String::new()),
                password: Some(Bytes::new()),
                ..base.clone()
            };
            roundtrip(&Packet::Connect(Box::new(full)), version);
        }
        let user_only = Connect {
            username: Some("u".into()),
            ..base.clone()
        };
        roundtrip(&Packet::Connect(Box::new(user_only)), version);
    }
}

#[test]
fn connack() {
    for v in BOTH {
        for session_present in [false, true] {
            for reason_code in [
                reason::SUCCESS,
                reason::NOT_AUTHORIZED,
                reason::SERVER_UNAVAILABLE,
            ] {
                roundtrip(
                    &Packet::Connack(Connack {
                        session_present,
                        reason_code,
                        properties: Properties::default(),
                    }),
                    v,
                );
            }
        }
    }
}

#[test]
fn publish() {
    for v in BOTH {
        for (qos, packet_id) in [
            (QoS::AtMostOnce, None),
            (QoS::AtLeastOnce, Some(1)),
            (QoS::ExactlyOnce, Some(u16::MAX)),
        ] {
            for (dup, retain) in [(false, false), (true, true)] {
                if dup && qos == QoS::AtMostOnce {
                    continue;
                }
                for payload in [Bytes::new(), Bytes::from(vec![7u8; 1000])] {
                    roundtrip(
                        &Packet::Publish(Publish {
                            dup,
                            qos,
                            retain,
                            topic: "$SYS/broker/ü".into(),
                            packet_id,
                            properties: Properties::default().into(),
                            payload,
                        }),
                        v,
                    );
                }
            }
        }
    }
    // 5.0: empty topic with an alias.
    roundtrip(
        &Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: String::new(),
            packet_id: None,
            properties: Properties {
                topic_alias: Some(1),
                ..Properties::default()
            }
            .into(),
            payload: Bytes::from_static(b"x"),
        }),
        Version::V5,
    );
}

#[test]
fn acks() {
    for v in BOTH {
        for make in [
            Packet::Puback,
            Packet::Pubrec,
            Packet::Pubrel,
            Packet::Pubcomp,
        ] {
            roundtrip(
                &make(Ack {
                    packet_id: 0x1234,
                    reason_code: reason::SUCCESS,
                    properties: Properties::default(),
                }),
                v,
            );
        }
    }
    roundtrip(
        &Packet::Pubrec(Ack {
            packet_id: 1,
            reason_code: reason::QUOTA_EXCEEDED,
            properties: Properties::default(),
        }),
        Version::V5,
    );
    roundtrip(
        &Packet::Pubcomp(Ack {
            packet_id: 1,
            reason_code: reason::PACKET_ID_NOT_FOUND,
            properties: Properties {
                reason_string: Some("gone".into()),
                ..Properties::default()
            },
        }),
        Version::V5,
    );
}

#[test]
fn subscribe_and_suback() {
    let opts = |qos| SubscriptionOptions::qos(qos);
    for v in BOTH {
        roundtrip(
            &Packet::Subscribe(Subscribe {
                packet_id: 10,
                filters: vec![
                    (filter("a/+/c"), opts(QoS::AtMostOnce)),
                    (filter("#"), opts(QoS::AtLeastOnce)),
                    (filter("$share/grp/x/#"), opts(QoS::ExactlyOnce)),
                ],
                properties: Properties::default(),
            }),
            v,
        );
        roundtrip(
            &Packet::Suback(Suback {
                packet_id: 10,
                reason_codes: vec![0, 1, 2, 0x80],
                properties: Properties::default(),
            }),
            v,
        );
    }
    let full = SubscriptionOptions {
        qos: QoS::ExactlyOnce,
        no_local: true,
        retain_as_published: true,
        retain_handling: RetainHandling::DoNotSend,
    };
    let send_if_new = SubscriptionOptions {
        retain_handling: RetainHandling::SendIfNew,
        ..opts(QoS::AtLeastOnce)
    };
    roundtrip(
        &Packet::Subscribe(Subscribe {
            packet_id: 1,
            filters: vec![(filter("a"), full), (filter("b/#"), send_if_new)],
            properties: Properties {
                subscription_identifiers: vec![42],
                ..Properties::default()
            },
        }),
        Version::V5,
    );
    roundtrip(
        &Packet::Suback(Suback {
            packet_id: 1,
            reason_codes: vec![reason::NOT_AUTHORIZED, reason::WILDCARD_SUBS_NOT_SUPPORTED],
            properties: Properties::default(),
        }),
        Version::V5,
    );
    // In 3.1.1, v5 failure codes are sent as 0x80.
    let wire = enc(
        &Packet::Suback(Suback {
            packet_id: 1,
            reason_codes: vec![1, reason::NOT_AUTHORIZED],
            properties: Properties::default(),
        }),
        Version::V311,
    );
    assert_eq!(&wire[..], &[0x90, 4, 0, 1, 1, 0x80]);
    // In 3.1.1, only the QoS of the options is sent.
    let wire = enc(
        &Packet::Subscribe(Subscribe {
            packet_id: 1,
            filters: vec![(filter("a"), full)],
            properties: Properties::default(),
        }),
        Version::V311,
    );
    assert_eq!(&wire[..], &[0x82, 6, 0, 1, 0, 1, b'a', 2]);
}

#[test]
fn unsubscribe_and_unsuback() {
    for v in BOTH {
        roundtrip(
            &Packet::Unsubscribe(Unsubscribe {
                packet_id: 2,
                filters: vec![filter("a/#"), filter("$share/g/b")],
                properties: Properties::default(),
            }),
            v,
        );
    }
    roundtrip(
        &Packet::Unsuback(Unsuback {
            packet_id: 2,
            reason_codes: Vec::new(),
            properties: Properties::default(),
        }),
        Version::V311,
    );
    roundtrip(
        &Packet::Unsuback(Unsuback {
            packet_id: 2,
            reason_codes: vec![reason::SUCCESS, reason::NO_SUBSCRIPTION_EXISTED],
            properties: Properties::default(),
        }),
        Version::V5,
    );
}

#[test]
fn ping_disconnect_auth() {
    for v in BOTH {
        roundtrip(&Packet::Pingreq, v);
        roundtrip(&Packet::Pingresp, v);
        roundtrip(
            &Packet::Disconnect(Disconnect {
                reason_code: reason::SUCCESS,
                properties: Properties::default(),
            }),
            v,
        );
    }
    for reason_code in [reason::DISCONNECT_WITH_WILL, reason::SESSION_TAKEN_OVER] {
        roundtrip(
            &Packet::Disconnect(Disconnect {
                reason_code,
                properties: Properties::default(),
            }),
            Version::V5,
        );
    }
    for reason_code in [reason::SUCCESS, reason::CONTINUE_AUTH, reason::RE_AUTH] {
        roundtrip(
            &Packet::Auth(Auth {
                reason_code,
                properties: Properties::default(),
            }),
            Version::V5,
        );
    }
}
