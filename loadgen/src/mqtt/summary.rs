//! The `mqtt` report: the arithmetic, the table on stdout and the JSON document.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use hdrhistogram::Histogram;
use rampart_mqtt_proto::QoS;
use serde::Serialize;

use super::publisher::PubResult;
use super::subscriber::SubResult;
use crate::runner::ErrorTally;

use crate::report::{ErrorReport, Latency, fmt_us};
use crate::rss::RssStats;

/// `/proc` reports CPU times in USER_HZ ticks, 100 per second on every Linux ABI.
const USER_HZ: f64 = 100.0;

/// The headline figures of a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Figures {
    /// Messages published with a send time in the measured window.
    pub(crate) sent: u64,
    pub(crate) sent_per_s: f64,
    /// What a lossless broker delivers: sent × the subscribers whose filters match.
    pub(crate) expected: u64,
    /// Distinct deliveries of those messages (duplicates not counted).
    pub(crate) delivered: u64,
    pub(crate) delivered_per_s: f64,
    pub(crate) lost: u64,
    pub(crate) lost_pct: f64,
}

impl Figures {
    /// `expected` deliveries of `sent` messages (filters decide who expects what).
    pub(crate) fn with_expected(sent: u64, expected: u64, delivered: u64, window_s: f64) -> Self {
        let lost = expected.saturating_sub(delivered);
        let window_s = window_s.max(1e-9);
        Self {
            sent,
            sent_per_s: sent as f64 / window_s,
            expected,
            delivered,
            delivered_per_s: delivered as f64 / window_s,
            lost,
            lost_pct: if expected == 0 {
                0.0
            } else {
                100.0 * lost as f64 / expected as f64
            },
        }
    }
}

/// What the publisher and subscriber threads measured, added up.
#[derive(Debug)]
pub(crate) struct Totals {
    /// Every subscriber thread's latencies in one histogram.
    pub(crate) latency: Histogram<u64>,
    pub(crate) delivered: u64,
    pub(crate) received_total: u64,
    pub(crate) retained: u64,
    pub(crate) duplicates: u64,
    pub(crate) out_of_order: u64,
    pub(crate) incomplete: u32,
    pub(crate) failed: u32,
    /// Measured publications.
    pub(crate) sent: u64,
    pub(crate) sent_total: u64,
    /// Measured publications × the subscribers that expect them.
    pub(crate) expected: u64,
    pub(crate) unacked: u64,
    /// QoS 1 or 2: the smallest in-flight window of any publisher.
    pub(crate) inflight: Option<u16>,
    /// The worst publisher's lag behind its schedule, ns.
    pub(crate) max_lag_ns: u64,
    /// Publishers that gave a stalled subscriber up and went on without `--max-ahead`.
    pub(crate) released: u32,
    pub(crate) errors: BTreeMap<&'static str, ErrorTally>,
}

impl Totals {
    pub(crate) fn new() -> Self {
        Self {
            latency: super::new_histogram(),
            delivered: 0,
            received_total: 0,
            retained: 0,
            duplicates: 0,
            out_of_order: 0,
            incomplete: 0,
            failed: 0,
            sent: 0,
            sent_total: 0,
            expected: 0,
            unacked: 0,
            inflight: None,
            max_lag_ns: 0,
            released: 0,
            errors: BTreeMap::new(),
        }
    }

    /// Adds one subscriber thread's results; its histogram may have grown past the default
    /// range (a latency of minutes), which the merged one then grows to hold.
    pub(crate) fn add_subscriber(&mut self, s: SubResult) -> anyhow::Result<()> {
        self.latency
            .add(&s.latency_us)
            .map_err(|e| anyhow::anyhow!("merging latency histograms: {e}"))?;
        self.delivered += s.delivered;
        self.received_total += s.received_total;
        self.retained += s.retained;
        self.duplicates += s.duplicates;
        self.out_of_order += s.out_of_order;
        self.incomplete += s.incomplete;
        self.failed += s.failed;
        self.merge_errors(s.errors);
        Ok(())
    }

    /// Adds one publisher's results; `matched`: its topic matches the filters, so each of the
    /// `subscribers` expects its measured messages.
    pub(crate) fn add_publisher(
        &mut self,
        p: PubResult,
        matched: bool,
        subscribers: u64,
        qos: QoS,
    ) {
        self.sent += p.sent_measured;
        self.sent_total += p.sent_total;
        self.unacked += p.unacked;
        self.max_lag_ns = self.max_lag_ns.max(p.max_lag_ns);
        self.released += u32::from(p.released);
        if matched {
            self.expected = self
                .expected
                .saturating_add(p.sent_measured.saturating_mul(subscribers));
        }
        if qos != QoS::AtMostOnce {
            self.inflight = Some(self.inflight.map_or(p.inflight, |i| i.min(p.inflight)));
        }
        self.merge_errors(p.errors);
    }

    fn merge_errors(&mut self, from: BTreeMap<&'static str, ErrorTally>) {
        for (kind, tally) in from {
            self.errors
                .entry(kind)
                .and_modify(|t| t.count += tally.count)
                .or_insert(tally);
        }
    }
}

/// The client's own CPU use over the run (publishers, subscribers and all).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct CpuUse {
    pub(crate) user_s: f64,
    pub(crate) system_s: f64,
    /// (user + system) / elapsed, in % of one core.
    pub(crate) pct_of_one_core: f64,
}

/// This process's CPU time so far, from `/proc/self/stat`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CpuTimes {
    user_ticks: u64,
    system_ticks: u64,
}

impl CpuTimes {
    pub(crate) fn read() -> Option<Self> {
        Self::parse(&std::fs::read_to_string("/proc/self/stat").ok()?)
    }

    /// Fields 14 and 15 (utime, stime) of `proc(5)`, counted after the `(comm)` field, which
    /// may itself hold spaces and parentheses.
    fn parse(stat: &str) -> Option<Self> {
        let rest = &stat[stat.rfind(')')? + 1..];
        let mut fields = rest.split_whitespace().skip(11);
        Some(Self {
            user_ticks: fields.next()?.parse().ok()?,
            system_ticks: fields.next()?.parse().ok()?,
        })
    }

    pub(crate) fn since(&self, before: &Self, elapsed: Duration) -> CpuUse {
        let user_s = self.user_ticks.saturating_sub(before.user_ticks) as f64 / USER_HZ;
        let system_s = self.system_ticks.saturating_sub(before.system_ticks) as f64 / USER_HZ;
        CpuUse {
            user_s,
            system_s,
            pct_of_one_core: 100.0 * (user_s + system_s) / elapsed.as_secs_f64().max(1e-9),
        }
    }
}

/// Every figure of one run; this is the JSON document.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FanoutReport {
    pub(crate) tool: &'static str,
    pub(crate) version: &'static str,
    pub(crate) mode: &'static str,
    pub(crate) command_line: Vec<String>,
    pub(crate) target: SocketAddr,
    /// `tcp` or `tls`.
    pub(crate) transport: &'static str,
    pub(crate) server_name: Option<String>,
    pub(crate) tls_version: Option<String>,
    pub(crate) tls_cipher_suite: Option<String>,
    pub(crate) mqtt_version: &'static str,
    pub(crate) qos: u8,
    /// The lowest QoS the broker granted in the SUBACKs.
    pub(crate) granted_qos: Option<u8>,
    pub(crate) publishers: u32,
    pub(crate) subscribers: u32,
    pub(crate) subscriber_threads: usize,
    pub(crate) payload_bytes: usize,
    /// Messages per second per publisher; 0 = unlimited.
    pub(crate) rate_per_publisher: u64,
    /// QoS 1 or 2: the in-flight window used (the lowest over the publishers).
    pub(crate) inflight: Option<u16>,
    /// Most messages a publisher ran ahead of its slowest subscriber; 0 = no limit.
    pub(crate) max_ahead: u64,
    /// With a rate: the worst lag of a publisher behind its schedule, µs. Large values mean
    /// the load generator (or the broker's backpressure) could not keep the offered rate;
    /// the latency includes that lag.
    pub(crate) publisher_max_lag_us: Option<u64>,
    /// Publishers whose slowest subscribers received nothing from them for a second while
    /// `--max-ahead` held them back: they left those out of the limit until they received
    /// again (what they missed is lost).
    pub(crate) publishers_released: u32,
    pub(crate) topic_prefix: String,
    /// Publisher i's topic, `{i}` standing for i.
    pub(crate) topic: String,
    /// What every subscriber subscribed to.
    pub(crate) filters: Vec<String>,
    /// Publishers whose topic the filters match (their messages are expected).
    pub(crate) publishers_matched: u32,
    pub(crate) retain: bool,
    /// `--count`: measured messages per publisher (the window is then measured, not set).
    pub(crate) count: Option<u64>,
    /// `--ramp-up`: connections opened per second during the setup.
    pub(crate) ramp_up_per_s: Option<u32>,
    /// `--payload-file`, if the payload came from one.
    pub(crate) payload_file: Option<String>,
    /// `--credentials-file` entries, if given (the credentials themselves are never reported).
    pub(crate) credentials: Option<usize>,
    pub(crate) setup_s: f64,
    pub(crate) warmup_s: f64,
    /// The measured window.
    pub(crate) duration_s: f64,
    /// From the start of publishing to the end of the drain.
    pub(crate) elapsed_s: f64,
    pub(crate) started_unix_ms: u128,
    /// Publications written, warm-up included.
    pub(crate) sent_total: u64,
    /// PUBLISH packets received by all subscribers, warm-up and duplicates included.
    pub(crate) received_total: u64,
    /// Retained messages delivered at subscription time (RETAIN set), not measured.
    pub(crate) retained_received: u64,
    #[serde(flatten)]
    pub(crate) figures: Figures,
    pub(crate) duplicates: u64,
    pub(crate) out_of_order: u64,
    /// Subscribers without every publisher's last message at the end of the drain.
    pub(crate) subscribers_incomplete: u32,
    /// Subscriber connections that failed during the run.
    pub(crate) subscribers_failed: u32,
    /// QoS 1 or 2 publications never acknowledged by the broker (PUBACK or PUBCOMP).
    pub(crate) unacked: u64,
    pub(crate) errors: u64,
    pub(crate) errors_by_kind: BTreeMap<&'static str, ErrorReport>,
    /// End-to-end latency of the measured deliveries, µs; `null` if none.
    pub(crate) latency_us: Option<Latency>,
    pub(crate) client_cpu: Option<CpuUse>,
    pub(crate) server_rss: Option<RssStats>,
}

impl FanoutReport {
    /// The human summary.
    pub(crate) fn table(&self) -> String {
        let f = &self.figures;
        let mut out = String::new();
        let transport = match (&self.tls_version, &self.tls_cipher_suite) {
            (Some(v), Some(s)) => format!("TLS ({v}, {s})"),
            _ => "plain TCP".to_owned(),
        };
        let _ = writeln!(
            out,
            "rampart-loadgen mqtt -> {} ({transport}, MQTT {}, QoS {}{})",
            self.target,
            self.mqtt_version,
            self.qos,
            if self.retain { ", retained" } else { "" }
        );
        let rate = match self.rate_per_publisher {
            0 => "unlimited".to_owned(),
            r => format!("{r} msg/s each"),
        };
        let ahead = match self.max_ahead {
            0 => String::new(),
            n => format!(", at most {n} ahead of the slowest subscriber"),
        };
        let _ = writeln!(
            out,
            "  {:<18} {} ({rate}{ahead})",
            "publishers", self.publishers
        );
        let _ = writeln!(
            out,
            "  {:<18} {} ({} reader threads)",
            "subscribers", self.subscribers, self.subscriber_threads
        );
        let _ = writeln!(
            out,
            "  {:<18} {} -> {} ({} of {} publishers matched)",
            "topics",
            self.topic,
            self.filters.join(" "),
            self.publishers_matched,
            self.publishers
        );
        match &self.payload_file {
            Some(file) => {
                let _ = writeln!(
                    out,
                    "  {:<18} {} B from {file}",
                    "payload", self.payload_bytes
                );
            }
            None => {
                let _ = writeln!(out, "  {:<18} {} B", "payload", self.payload_bytes);
            }
        }
        if let Some(n) = self.credentials {
            let _ = writeln!(out, "  {:<18} {n} from the credentials file", "accounts");
        }
        if let Some(r) = self.ramp_up_per_s {
            let _ = writeln!(out, "  {:<18} {r} connections/s", "ramp-up");
        }
        if let Some(c) = self.count {
            let _ = writeln!(out, "  {:<18} {c} measured messages per publisher", "count");
        }
        if self.retained_received > 0 {
            let _ = writeln!(
                out,
                "  {:<18} {} retained messages at subscription (not measured)",
                "retained", self.retained_received
            );
        }
        if let Some(g) = self.granted_qos
            && g != self.qos
        {
            let _ = writeln!(out, "  {:<18} {g}", "granted QoS");
        }
        if let Some(lag) = self.publisher_max_lag_us
            && lag >= 100_000
        {
            let _ = writeln!(
                out,
                "  {:<18} publishers fell up to {} behind their schedule (client or broker too \
                 slow for the offered rate; the latency includes it)",
                "warning",
                fmt_us(lag)
            );
        }
        if self.publishers_released > 0 {
            let _ = writeln!(
                out,
                "  {:<18} {} publishers gave up waiting for subscribers that received nothing \
                 from them for 1 s (--max-ahead) and left them out until they received again; \
                 what they missed is lost",
                "warning", self.publishers_released
            );
        }
        if let Some(w) = self.inflight {
            let _ = writeln!(out, "  {:<18} {w} per publisher", "in-flight window");
        }
        let _ = writeln!(
            out,
            "  {:<18} setup {:.2} s, warm-up {:.2} s, measured {:.2} s, total {:.2} s",
            "time", self.setup_s, self.warmup_s, self.duration_s, self.elapsed_s
        );
        let _ = writeln!(
            out,
            "  {:<18} {} ({:.1} msg/s)",
            "sent", f.sent, f.sent_per_s
        );
        let _ = writeln!(out, "  {:<18} {}", "expected", f.expected);
        let _ = writeln!(
            out,
            "  {:<18} {} ({:.1} msg/s)",
            "delivered", f.delivered, f.delivered_per_s
        );
        let _ = writeln!(out, "  {:<18} {} ({:.3} %)", "lost", f.lost, f.lost_pct);
        let _ = writeln!(
            out,
            "  {:<18} {} duplicates, {} out of order",
            "order", self.duplicates, self.out_of_order
        );
        if self.subscribers_incomplete > 0 || self.subscribers_failed > 0 || self.unacked > 0 {
            let _ = writeln!(
                out,
                "  {:<18} {} subscribers incomplete, {} failed, {} unacked publications",
                "anomalies", self.subscribers_incomplete, self.subscribers_failed, self.unacked
            );
        }
        let _ = writeln!(out, "  {:<18} {}", "errors", self.errors);
        for (kind, e) in &self.errors_by_kind {
            let _ = writeln!(out, "    {kind:<22} {:>8}  e.g. {}", e.count, e.example);
        }
        match &self.latency_us {
            Some(l) => {
                let _ = writeln!(
                    out,
                    "  latency            {:>10} {:>10} {:>10} {:>10} {:>10}",
                    "p50", "p99", "p99.9", "max", "mean"
                );
                let _ = writeln!(
                    out,
                    "                     {:>10} {:>10} {:>10} {:>10} {:>10}",
                    fmt_us(l.p50),
                    fmt_us(l.p99),
                    fmt_us(l.p999),
                    fmt_us(l.max),
                    fmt_us(l.mean.round() as u64),
                );
            }
            None => {
                let _ = writeln!(out, "  latency            (no delivery measured)");
            }
        }
        if let Some(c) = &self.client_cpu {
            let _ = writeln!(
                out,
                "  {:<18} user {:.2} s, system {:.2} s ({:.0} % of one core)",
                "client CPU", c.user_s, c.system_s, c.pct_of_one_core
            );
        }
        if let Some(rss) = &self.server_rss {
            let _ = writeln!(out, "  {:<18} {}", "server RSS", rss.line());
        }
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use hdrhistogram::Histogram;

    use super::*;

    #[test]
    fn figures() {
        let f = Figures::with_expected(1000, 10_000, 9_990, 2.0);
        assert_eq!(f.expected, 10_000);
        assert_eq!(f.lost, 10);
        assert!((f.lost_pct - 0.1).abs() < 1e-9);
        assert!((f.sent_per_s - 500.0).abs() < 1e-9);
        assert!((f.delivered_per_s - 4995.0).abs() < 1e-9);
        // Nothing sent: nothing lost, no division by zero.
        let none = Figures::with_expected(0, 0, 0, 10.0);
        assert_eq!((none.expected, none.lost, none.lost_pct), (0, 0, 0.0));
        // More delivered than expected (cannot happen, but must not underflow).
        assert_eq!(Figures::with_expected(1, 1, 2, 1.0).lost, 0);
    }

    fn sub(latencies: &[u64], delivered: u64) -> SubResult {
        let mut latency_us = crate::mqtt::new_histogram();
        for v in latencies {
            crate::mqtt::record(&mut latency_us, *v);
        }
        let mut errors = BTreeMap::new();
        errors.insert(
            "reset_by_server",
            ErrorTally {
                count: 1,
                example: "first".into(),
            },
        );
        SubResult {
            latency_us,
            received_total: delivered + 1,
            retained: 1,
            delivered,
            duplicates: 0,
            out_of_order: 2,
            incomplete: 0,
            failed: 1,
            errors,
        }
    }

    #[test]
    fn totals_merge_threads_and_count_only_matched_publishers() {
        let mut t = Totals::new();
        // One thread with fast deliveries, one with a latency far past the histogram's
        // initial range (it auto-resizes): the merged percentiles see both.
        t.add_subscriber(sub(&[100; 99], 99)).unwrap();
        t.add_subscriber(sub(&[600_000_000], 1)).unwrap();
        assert_eq!(t.latency.len(), 100);
        assert!((99..=101).contains(&t.latency.value_at_quantile(0.5)));
        assert!(t.latency.max() >= 600_000_000);
        assert_eq!((t.delivered, t.received_total, t.retained), (100, 102, 2));
        assert_eq!((t.out_of_order, t.failed), (4, 2));
        // Same error kind from two threads: one entry, counts added, first example kept.
        assert_eq!(t.errors["reset_by_server"].count, 2);
        assert_eq!(t.errors["reset_by_server"].example, "first");
        // Two publishers, only the first matched by the filters: 10 subscribers expect 50.
        let publisher = |sent, inflight| PubResult {
            sent_total: sent + 5,
            sent_measured: sent,
            unacked: 1,
            inflight,
            max_lag_ns: 0,
            released: sent == 7,
            errors: BTreeMap::new(),
        };
        t.add_publisher(publisher(5, 64), true, 10, QoS::ExactlyOnce);
        t.add_publisher(publisher(7, 16), false, 10, QoS::ExactlyOnce);
        assert_eq!((t.sent, t.sent_total, t.expected), (12, 22, 50));
        assert_eq!((t.unacked, t.inflight, t.released), (2, Some(16), 1));
        let f = Figures::with_expected(t.sent, t.expected, t.delivered, 1.0);
        assert_eq!((f.lost, f.delivered), (0, 100));
    }

    #[test]
    fn cpu_times() {
        let stat = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 \
                    3 0 100 0 0";
        let t = CpuTimes::parse(stat).unwrap();
        assert_eq!((t.user_ticks, t.system_ticks), (250, 75));
        let before = CpuTimes {
            user_ticks: 50,
            system_ticks: 25,
        };
        let u = t.since(&before, Duration::from_secs(4));
        assert!((u.user_s - 2.0).abs() < 1e-9 && (u.system_s - 0.5).abs() < 1e-9);
        assert!((u.pct_of_one_core - 62.5).abs() < 1e-9);
        assert!(CpuTimes::read().is_some());
        assert_eq!(CpuTimes::parse("garbage"), None);
    }

    pub(crate) fn report() -> FanoutReport {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for v in 1..=1000 {
            h.record(v).unwrap();
        }
        h.record(50_000).unwrap();
        let latency = Latency::from_histogram(&h).unwrap();
        assert_eq!(latency.max, 50_015); // hdrhistogram's highest equivalent value
        assert!((499..=501).contains(&latency.p50));
        assert!((989..=991).contains(&latency.p99));
        FanoutReport {
            tool: "rampart-loadgen",
            version: "0",
            mode: "mqtt",
            command_line: vec!["rampart-loadgen".into(), "mqtt".into()],
            target: "127.0.0.1:1883".parse().unwrap(),
            transport: "tcp",
            server_name: None,
            tls_version: None,
            tls_cipher_suite: None,
            mqtt_version: "3.1.1",
            qos: 1,
            granted_qos: Some(1),
            publishers: 1,
            subscribers: 10,
            subscriber_threads: 2,
            payload_bytes: 100,
            rate_per_publisher: 0,
            inflight: Some(64),
            max_ahead: 1000,
            publisher_max_lag_us: Some(250_000),
            publishers_released: 0,
            topic_prefix: "loadgen/1".into(),
            topic: "loadgen/1/pub/{i}".into(),
            filters: vec!["loadgen/1/pub/+".into()],
            publishers_matched: 1,
            retain: false,
            count: None,
            ramp_up_per_s: None,
            payload_file: None,
            credentials: Some(3),
            setup_s: 0.1,
            warmup_s: 1.0,
            duration_s: 2.0,
            elapsed_s: 3.2,
            started_unix_ms: 1,
            sent_total: 1500,
            received_total: 15_000,
            retained_received: 0,
            figures: Figures::with_expected(1000, 10_000, 10_000, 2.0),
            duplicates: 0,
            out_of_order: 0,
            subscribers_incomplete: 0,
            subscribers_failed: 0,
            unacked: 0,
            errors: 0,
            errors_by_kind: BTreeMap::new(),
            latency_us: Some(latency),
            client_cpu: None,
            server_rss: None,
        }
    }

    #[test]
    fn json_has_every_figure() {
        let v = serde_json::to_value(report()).unwrap();
        for key in [
            "command_line",
            "sent",
            "sent_per_s",
            "expected",
            "delivered",
            "delivered_per_s",
            "lost",
            "lost_pct",
            "duplicates",
            "out_of_order",
            "errors",
            "latency_us",
            "client_cpu",
            "server_rss",
        ] {
            assert!(v.get(key).is_some(), "{key} missing in {v}");
        }
        assert_eq!(v["expected"], 10_000);
        assert_eq!(v["delivered_per_s"], 5000.0);
        assert_eq!(
            v["latency_us"]["p999"].as_u64().map(|p| p >= 1000),
            Some(true)
        );
    }

    #[test]
    fn table() {
        let t = report().table();
        assert!(t.contains("delivered          10000 (5000.0 msg/s)"), "{t}");
        assert!(t.contains("lost               0 (0.000 %)"), "{t}");
        assert!(t.contains("in-flight window   64 per publisher"), "{t}");
        assert!(!t.contains("anomalies"), "{t}");
        assert!(
            t.contains("topics             loadgen/1/pub/{i} -> loadgen/1/pub/+ (1 of 1"),
            "{t}"
        );
        assert!(
            t.contains("accounts           3 from the credentials file"),
            "{t}"
        );
        assert!(t.contains("fell up to 250.00 ms behind"), "{t}");
        assert!(!t.contains("gave up waiting"), "{t}");
        let mut r = report();
        r.publishers_released = 2;
        let t = r.table();
        assert!(
            t.contains("warning            2 publishers gave up waiting"),
            "{t}"
        );
        let v = serde_json::to_value(r).unwrap();
        assert_eq!(v["publishers_released"], 2);
    }
}
