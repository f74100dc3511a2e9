//! The metrics endpoint: Prometheus text format (version 0.0.4) on a loopback address.
//!
//! A plain thread, not a core: a scrape never competes with connections for a core's event
//! loop, and reads only relaxed atomics. It answers `GET /metrics` (anything else: 404) and
//! closes each connection after one response; a client gets 2 s to send its request line.

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tracing::{info, warn};

use crate::config::Protocol;
use crate::metrics::{Counters, Event};
use crate::mqtt::broker::BrokerMsg;
use crate::mqtt::stats::{BrokerStats, LATENCY_BUCKETS_US};
use rampart_rt::channel::Sender;

/// What the endpoint reports.
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    pub(crate) counters: Arc<Counters>,
    pub(crate) broker: BrokerStats,
    /// Each core's cross-core inbox, for its depth.
    pub(crate) inboxes: Vec<Sender<BrokerMsg>>,
    /// Bytes queued to MQTT clients on every core (outboxes and session queues).
    pub(crate) queued_bytes: Arc<AtomicUsize>,
    /// The HTTPS front's counters, when it listens.
    pub(crate) front: Option<Arc<crate::front::FrontShared>>,
    /// The CIRA server's counters, when it listens.
    pub(crate) cira: Option<Arc<crate::cira::CiraShared>>,
}

/// Binds `addr` and serves from a background thread.
pub(crate) fn spawn(addr: SocketAddr, sources: Sources) -> io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    info!(message = "Metrics endpoint listening.", %addr);
    std::thread::Builder::new()
        .name("rampart-metrics".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(s) => {
                        if let Err(error) = answer(s, &sources) {
                            warn!(message = "Metrics request failed.", %error);
                        }
                    }
                    Err(error) => {
                        warn!(message = "Metrics accept failed.", %error);
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        })?;
    Ok(())
}

fn answer(stream: TcpStream, sources: &Sources) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    BufReader::new(stream.try_clone()?.take(1024)).read_line(&mut line)?;
    let mut stream = stream;
    let path = line.split_whitespace().nth(1).unwrap_or("");
    let (status, body) = if line.starts_with("GET ") && (path == "/metrics" || path == "/") {
        ("200 OK", render(sources))
    } else {
        ("404 Not Found", "not found\n".to_string())
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

/// The whole exposition.
pub(crate) fn render(s: &Sources) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# HELP rampart_connections_total Connection outcomes by protocol."
    );
    let _ = writeln!(o, "# TYPE rampart_connections_total counter");
    for p in Protocol::ALL {
        for e in Event::ALL {
            let _ = writeln!(
                o,
                "rampart_connections_total{{protocol=\"{}\",event=\"{}\"}} {}",
                p.as_str(),
                e.as_str(),
                s.counters.get(p, e)
            );
        }
    }
    let t = s.broker.totals();
    let _ = writeln!(o, "# HELP rampart_mqtt_clients Connected MQTT clients.");
    let _ = writeln!(o, "# TYPE rampart_mqtt_clients gauge");
    let _ = writeln!(o, "rampart_mqtt_clients {}", t.connected);
    for (name, v) in t.counters() {
        let _ = writeln!(o, "# TYPE rampart_mqtt_{name}_total counter");
        let _ = writeln!(o, "rampart_mqtt_{name}_total {v}");
    }
    let _ = writeln!(
        o,
        "# HELP rampart_mqtt_outbox_messages Messages waiting in outboxes, per core."
    );
    let _ = writeln!(o, "# TYPE rampart_mqtt_outbox_messages gauge");
    for (core, q) in s.broker.queued_per_core().iter().enumerate() {
        let _ = writeln!(o, "rampart_mqtt_outbox_messages{{core=\"{core}\"}} {q}");
    }
    let _ = writeln!(
        o,
        "# HELP rampart_mqtt_queued_bytes Bytes queued to clients (the global memory budget's use)."
    );
    let _ = writeln!(o, "# TYPE rampart_mqtt_queued_bytes gauge");
    let _ = writeln!(
        o,
        "rampart_mqtt_queued_bytes {}",
        s.queued_bytes.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        o,
        "# HELP rampart_mqtt_inbox_messages Messages from other cores waiting, per core."
    );
    let _ = writeln!(o, "# TYPE rampart_mqtt_inbox_messages gauge");
    for (core, q) in s.inboxes.iter().map(Sender::len).enumerate() {
        let _ = writeln!(o, "rampart_mqtt_inbox_messages{{core=\"{core}\"}} {q}");
    }
    let _ = writeln!(
        o,
        "# HELP rampart_mqtt_delivery_wait_seconds How long the oldest frame of a flush waited in its outbox."
    );
    let _ = writeln!(o, "# TYPE rampart_mqtt_delivery_wait_seconds histogram");
    let mut cumulative = 0;
    for (i, n) in t.latency.iter().enumerate() {
        cumulative += n;
        let le = LATENCY_BUCKETS_US
            .get(i)
            .map_or("+Inf".to_string(), |us| format!("{}", *us as f64 / 1e6));
        let _ = writeln!(
            o,
            "rampart_mqtt_delivery_wait_seconds_bucket{{le=\"{le}\"}} {cumulative}"
        );
    }
    let _ = writeln!(
        o,
        "rampart_mqtt_delivery_wait_seconds_sum {}",
        t.latency_sum_us as f64 / 1e6
    );
    let _ = writeln!(o, "rampart_mqtt_delivery_wait_seconds_count {cumulative}");
    if let Some(f) = &s.front {
        render_front(&mut o, f);
    }
    if let Some(c) = &s.cira {
        let _ = writeln!(o, "# HELP rampart_cira_tunnels APF tunnels forwarding now.");
        let _ = writeln!(o, "# TYPE rampart_cira_tunnels gauge");
        let _ = writeln!(o, "rampart_cira_tunnels {}", c.registry.len());
        let _ = writeln!(
            o,
            "# HELP rampart_cira_channels APF channels open for the control plane now."
        );
        let _ = writeln!(o, "# TYPE rampart_cira_channels gauge");
        let _ = writeln!(
            o,
            "rampart_cira_channels {}",
            c.stats.channels.load(Ordering::Relaxed)
        );
        for (name, v) in c.stats.counters() {
            let _ = writeln!(o, "# TYPE rampart_cira_{name}_total counter");
            let _ = writeln!(o, "rampart_cira_{name}_total {v}");
        }
    }
    o
}

fn render_front(o: &mut String, shared: &crate::front::FrontShared) {
    let f = &shared.stats;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let _ = writeln!(
        o,
        "# HELP rampart_https_connections HTTPS connections held (all cores)."
    );
    let _ = writeln!(o, "# TYPE rampart_https_connections gauge");
    let _ = writeln!(o, "rampart_https_connections {}", shared.admission.live());
    let _ = writeln!(
        o,
        "# HELP rampart_https_requests_total Requests parsed by the HTTPS front."
    );
    let _ = writeln!(o, "# TYPE rampart_https_requests_total counter");
    let _ = writeln!(o, "rampart_https_requests_total {}", load(&f.requests));
    let _ = writeln!(
        o,
        "# HELP rampart_https_responses_total Responses by status class."
    );
    let _ = writeln!(o, "# TYPE rampart_https_responses_total counter");
    for (i, v) in f.responses.iter().enumerate() {
        let _ = writeln!(
            o,
            "rampart_https_responses_total{{class=\"{}xx\"}} {}",
            i + 1,
            load(v)
        );
    }
    let _ = writeln!(
        o,
        "# HELP rampart_https_timeouts_total Connections ended by a stage's deadline."
    );
    let _ = writeln!(o, "# TYPE rampart_https_timeouts_total counter");
    for (stage, v) in f.timeouts() {
        let _ = writeln!(o, "rampart_https_timeouts_total{{stage=\"{stage}\"}} {v}");
    }
    let _ = writeln!(
        o,
        "# HELP rampart_https_rejections_total Requests and connections refused, by reason."
    );
    let _ = writeln!(o, "# TYPE rampart_https_rejections_total counter");
    for (reason, v) in f.rejections() {
        let _ = writeln!(
            o,
            "rampart_https_rejections_total{{reason=\"{reason}\"}} {v}"
        );
    }
    for (name, v) in [
        ("ws_upgrades", &f.ws_upgrades),
        ("relays", &f.relays),
        ("proxied", &f.proxied),
        ("bytes_out", &f.bytes_out),
        ("access_log_dropped", &f.access_log_dropped),
    ] {
        let _ = writeln!(o, "# TYPE rampart_https_{name}_total counter");
        let _ = writeln!(o, "rampart_https_{name}_total {}", load(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_a_cumulative_histogram() {
        let broker = BrokerStats::new(2);
        broker.core(0).observe_latency(70);
        broker.core(1).observe_latency(2_000_000);
        crate::mqtt::stats::bump(&broker.core(1).messages_in, 3);
        let counters = Arc::new(Counters::default());
        counters.record(Protocol::Mqtt, Event::Accepted);
        let (tx0, _rx0) = rampart_rt::channel::bounded::<BrokerMsg>(8);
        let (tx1, _rx1) = rampart_rt::channel::bounded::<BrokerMsg>(8);
        for _ in 0..5 {
            let key = (
                "g".into(),
                rampart_mqtt_proto::TopicFilter::new("t").unwrap(),
            );
            tx1.try_send(BrokerMsg::ShareLeave(key, Default::default()))
                .unwrap();
        }
        let text = render(&Sources {
            counters,
            broker,
            inboxes: vec![tx0, tx1],
            queued_bytes: Arc::new(AtomicUsize::new(7)),
            front: Some(
                crate::front::FrontShared::new(
                    crate::front::FrontConfig::default(),
                    crate::policy::PolicyHandle::new(),
                    None,
                    None,
                )
                .unwrap(),
            ),
            cira: None,
        });
        assert!(text.contains("rampart_https_timeouts_total{stage=\"header\"} 0"));
        assert!(text.contains("rampart_mqtt_queued_bytes 7"));
        assert!(text.contains("rampart_connections_total{protocol=\"mqtt\",event=\"accepted\"} 1"));
        assert!(text.contains("rampart_mqtt_messages_in_total 3"));
        assert!(text.contains("rampart_mqtt_inbox_messages{core=\"1\"} 5"));
        assert!(text.contains("rampart_mqtt_delivery_wait_seconds_bucket{le=\"0.00005\"} 0"));
        assert!(text.contains("rampart_mqtt_delivery_wait_seconds_bucket{le=\"0.0001\"} 1"));
        assert!(text.contains("rampart_mqtt_delivery_wait_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(text.contains("rampart_mqtt_delivery_wait_seconds_count 2"));
    }
}
