//! The MQTT codec's hot paths.
//!
//! - `mqtt/decode`: one PUBLISH with a 100-byte payload (QoS 0 and QoS 1, MQTT 3.1.1 and 5.0,
//!   the 5.0 ones with a message expiry and a user property), and a CONNECT (3.1.1 with
//!   credentials; 5.0 with properties and a will). The read buffer is rebuilt outside the
//!   measurement for every iteration, since `decode` consumes it.
//! - `mqtt/encode`: the same packets into a reused buffer, plus `encode_head` (what the broker
//!   writes per subscriber while sharing the payload), and a whole QoS 0 frame (the broker's
//!   one per message and version) built through a `Publish` and with `encode_qos0_publish`.
//! - `mqtt/topic_matches`: one topic against 100k filters (literals, `+`, `#`, `$share/`, a few
//!   hundred of them matching), the cost of a linear scan that the broker's trie avoids.
//! - `mqtt/trie`: the broker's index ([`rampart_mqtt_proto::trie::Trie`]) with the same 100k
//!   subscriptions (shared ones indexed by their inner filter): one match of a topic, and one
//!   subscribe plus unsubscribe.

#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rampart_mqtt_proto::TopicFilter;
use rampart_mqtt_proto::trie::Trie;
use rampart_mqtt_proto::{
    Connect, DecodeCtx, Packet, Properties, Publish, QoS, TopicName, Version, Will, decode,
    encode_qos0_publish, topic_matches,
};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const FILTERS: usize = 100_000;
const TOPIC: &str = "site/42/device/4242/telemetry/temp";

fn publish(qos: QoS, v5: bool) -> Packet {
    let properties = if v5 {
        Properties {
            message_expiry_interval: Some(3600),
            user_properties: vec![("trace".into(), "abc123".into())],
            ..Properties::default()
        }
    } else {
        Properties::default()
    };
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: TOPIC.into(),
        packet_id: (qos != QoS::AtMostOnce).then_some(4242),
        properties: properties.into(),
        payload: Bytes::from(vec![0x5a; 100]),
    })
}

fn connect(version: Version) -> Packet {
    let v5 = version.is_v5();
    let properties = if v5 {
        Properties {
            session_expiry_interval: Some(3600),
            receive_maximum: Some(100),
            maximum_packet_size: Some(1 << 20),
            topic_alias_maximum: Some(16),
            ..Properties::default()
        }
    } else {
        Properties::default()
    };
    Packet::Connect(Box::new(Connect {
        version,
        clean_start: true,
        keep_alive: 60,
        client_id: "device-4242".into(),
        will: v5.then(|| Will {
            topic: TopicName::new("site/17/device/4242/status").expect("valid topic"),
            payload: Bytes::from_static(b"offline"),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: Properties::default(),
        }),
        username: Some("device-4242".into()),
        password: Some(Bytes::from_static(b"correct horse battery staple")),
        properties,
    }))
}

fn cases() -> Vec<(&'static str, Version, Packet)> {
    vec![
        (
            "publish_qos0_v311",
            Version::V311,
            publish(QoS::AtMostOnce, false),
        ),
        (
            "publish_qos1_v311",
            Version::V311,
            publish(QoS::AtLeastOnce, false),
        ),
        (
            "publish_qos0_v5",
            Version::V5,
            publish(QoS::AtMostOnce, true),
        ),
        (
            "publish_qos1_v5",
            Version::V5,
            publish(QoS::AtLeastOnce, true),
        ),
        ("connect_v311", Version::V311, connect(Version::V311)),
        ("connect_v5", Version::V5, connect(Version::V5)),
    ]
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("mqtt/decode");
    group.throughput(Throughput::Elements(1));
    for (name, version, packet) in cases() {
        let mut wire = BytesMut::new();
        packet.encode(version, &mut wire).expect("encodes");
        let ctx = DecodeCtx {
            // A CONNECT is the first packet; everything else follows one.
            version: (!matches!(packet, Packet::Connect(_))).then_some(version),
            max_packet_size: 1 << 20,
        };
        let decoded = decode(&mut wire.clone(), ctx).expect("decodes");
        assert_eq!(decoded.as_ref(), Some(&packet));
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || wire.clone(),
                |buf| decode(black_box(buf), ctx),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();

    let mut group = c.benchmark_group("mqtt/encode");
    group.throughput(Throughput::Elements(1));
    let mut dst = BytesMut::with_capacity(4096);
    for (name, version, packet) in cases() {
        group.bench_function(name, |b| {
            b.iter(|| {
                dst.clear();
                black_box(&packet).encode(version, &mut dst)
            })
        });
    }
    for (name, version, packet) in cases() {
        let Packet::Publish(p) = packet else {
            continue;
        };
        group.bench_function(format!("head_{name}"), |b| {
            b.iter(|| {
                dst.clear();
                black_box(&p).encode_head(version, &mut dst)
            })
        });
    }
    // A whole QoS 0 frame as the broker makes one per message and version: from a `Publish`
    // built for it (its properties default, the topic copied), and straight from the parts.
    let topic = TopicName::new(TOPIC).expect("valid topic");
    let payload = Bytes::from(vec![0x5a; 100]);
    for (name, version) in [("v311", Version::V311), ("v5", Version::V5)] {
        group.bench_function(format!("qos0_frame_via_publish_{name}"), |b| {
            b.iter(|| {
                let p = Publish {
                    dup: false,
                    qos: QoS::AtMostOnce,
                    retain: false,
                    topic: black_box(&topic).as_str().to_string(),
                    packet_id: None,
                    properties: Properties::default().into(),
                    payload: payload.clone(),
                };
                let mut b = BytesMut::with_capacity(p.head_encoded_len(version).unwrap_or(0) + 100);
                let _ = p.encode_head(version, &mut b);
                b.extend_from_slice(&p.payload);
                b.freeze()
            })
        });
        group.bench_function(format!("qos0_frame_direct_{name}"), |b| {
            b.iter(|| {
                encode_qos0_publish(version, false, black_box(&topic), &payload)
                    .map(BytesMut::freeze)
            })
        });
    }
    group.finish();
}

/// 100k filters: mostly near misses sharing the topic's prefix, some wildcards, a few hundred
/// matching.
fn filters() -> Vec<String> {
    (0..FILTERS)
        .map(|i| {
            let site = i / 10 % 50;
            let dev = i / 10 % 5000;
            match i % 10 {
                0 => format!("site/{site}/device/{dev}/telemetry/+"),
                1 => format!("site/{site}/device/+/telemetry/temp"),
                2 => format!("site/{site}/#"),
                3 => format!("site/+/device/{dev}/#"),
                4 => format!("$share/g{}/site/{site}/device/{dev}/telemetry/temp", i % 7),
                5 => "+/+/device/+/telemetry/humidity".to_owned(),
                _ => format!("site/{site}/device/{dev}/telemetry/temp"),
            }
        })
        .collect()
}

fn matching(c: &mut Criterion) {
    let filters = filters();
    let matched = filters.iter().filter(|f| topic_matches(f, TOPIC)).count();
    assert!(matched > 0 && matched < FILTERS / 10, "{matched} matches");

    // The check every decoded PUBLISH's topic goes through (the owned string is made outside
    // the timing, as the decoder has it already).
    let mut group = c.benchmark_group("mqtt/topic_name");
    group.bench_function("validate", |b| {
        b.iter_batched(
            || TOPIC.to_owned(),
            |s| TopicName::new(black_box(s)).map(TopicName::into_string),
            BatchSize::SmallInput,
        )
    });
    group.finish();

    let mut group = c.benchmark_group("mqtt/topic_matches");
    group.throughput(Throughput::Elements(FILTERS as u64));
    group.bench_function("one_topic_100k_filters", |b| {
        b.iter(|| {
            black_box(&filters)
                .iter()
                .filter(|f| topic_matches(f, black_box(TOPIC)))
                .count()
        })
    });
    group.finish();

    let mut trie: Trie<u32> = Trie::default();
    for (i, f) in filters.iter().enumerate() {
        let inner = TopicFilter::new(f.clone()).expect("valid filter");
        let indexed = inner.shared().map_or(f.as_str(), |(_, inner)| inner);
        trie.slot(indexed).push(i as u32);
    }
    let mut hits = 0;
    trie.for_each_match(TOPIC, |_| hits += 1);
    assert_eq!(hits, matched, "the trie and the linear scan agree");
    let mut group = c.benchmark_group("mqtt/trie");
    group.bench_function("match_one_topic_100k_subscriptions", |b| {
        b.iter(|| {
            let mut n = 0u32;
            black_box(&trie).for_each_match(black_box(TOPIC), |_| n += 1);
            n
        })
    });
    group.bench_function("subscribe_unsubscribe_100k_subscriptions", |b| {
        b.iter(|| {
            trie.slot(black_box("site/7/device/4242/telemetry/+"))
                .push(u32::MAX);
            trie.remove_where("site/7/device/4242/telemetry/+", |v| *v == u32::MAX)
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = codec, matching
}
criterion_main!(benches);
