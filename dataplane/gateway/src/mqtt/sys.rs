//! `$SYS/broker/...`: the broker's statistics as retained messages, published by core 0 every
//! `sys_interval` (Mosquitto's topic names where they exist). Clients see them only with a
//! `read` rule on `$SYS/#` (or below), like any other topic.

use std::time::Instant;

use bytes::Bytes;
use rampart_mqtt_proto::TopicName;

use super::broker::Broker;
use super::stats::BrokerStats;

/// Publishes every statistic once.
pub(crate) fn publish(broker: &mut Broker, stats: &BrokerStats, started: Instant, now: Instant) {
    let t = stats.totals();
    let mut topics: Vec<(String, String)> = vec![
        (
            "$SYS/broker/version".into(),
            format!("rampart {}", env!("CARGO_PKG_VERSION")),
        ),
        (
            "$SYS/broker/uptime".into(),
            format!("{} seconds", now.duration_since(started).as_secs()),
        ),
        (
            "$SYS/broker/clients/connected".into(),
            t.connected.to_string(),
        ),
        (
            "$SYS/broker/messages/received".into(),
            t.messages_in.to_string(),
        ),
        (
            "$SYS/broker/messages/sent".into(),
            t.messages_out.to_string(),
        ),
        (
            "$SYS/broker/publish/bytes/received".into(),
            t.bytes_in.to_string(),
        ),
        (
            "$SYS/broker/publish/bytes/sent".into(),
            t.bytes_out.to_string(),
        ),
        (
            "$SYS/broker/retained messages/count".into(),
            broker.retained_count().to_string(),
        ),
        (
            "$SYS/broker/store/messages/count".into(),
            t.queued.to_string(),
        ),
    ];
    for (name, value) in t.counters() {
        topics.push((format!("$SYS/broker/rampart/{name}"), value.to_string()));
    }
    for (topic, value) in topics {
        if let Ok(topic) = TopicName::new(topic) {
            broker.publish_internal(topic, Bytes::from(value), now);
        }
    }
}
