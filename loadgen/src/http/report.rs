//! The `http` report: the table on stdout and the JSON document.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;

use serde::Serialize;

use super::attack::{Kind, KindTally};
use super::legit::Tally;
use crate::report::{ErrorReport, Latency, Report, fmt_us};
use crate::rss::RssStats;

/// Every figure of one run; this is the JSON document.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct HttpReport {
    pub(crate) tool: &'static str,
    pub(crate) version: &'static str,
    pub(crate) mode: &'static str,
    pub(crate) command_line: Vec<String>,
    pub(crate) target: SocketAddr,
    pub(crate) server_name: String,
    pub(crate) tls_version: String,
    pub(crate) tls_cipher_suite: String,
    pub(crate) method: &'static str,
    pub(crate) path: String,
    /// POST body size; 0 for GET.
    pub(crate) body_bytes: usize,
    pub(crate) connections: u32,
    /// Requests per second offered on a fixed schedule; 0 = closed loop.
    pub(crate) rate_per_s: u64,
    /// `open` (fixed schedule, latency from the scheduled send time) or `closed`.
    pub(crate) load: &'static str,
    pub(crate) timeout_s: f64,
    pub(crate) warmup_s: f64,
    /// The measured window.
    pub(crate) duration_s: f64,
    /// From the first attacker's connect to the last thread's end.
    pub(crate) elapsed_s: f64,
    pub(crate) started_unix_ms: u128,
    pub(crate) legit: LegitReport,
    pub(crate) attackers: AttackReport,
    pub(crate) server_rss: Option<RssStats>,
}

/// The legitimate clients' figures, measured window only.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LegitReport {
    /// Open loop: requests due in the measured window (rate × duration); closed loop: = sent.
    pub(crate) scheduled: u64,
    pub(crate) sent: u64,
    /// Due but never sent: the connection was still busy with earlier requests at the end.
    pub(crate) unsent: u64,
    /// Answered with a 2xx status.
    pub(crate) ok: u64,
    pub(crate) failed: u64,
    /// ok / sent (0 when nothing was sent).
    pub(crate) availability: f64,
    /// ok per second of the measured window.
    pub(crate) throughput_per_s: f64,
    pub(crate) failures_by_kind: BTreeMap<&'static str, ErrorReport>,
    /// Every status received, by code.
    pub(crate) statuses: BTreeMap<u16, u64>,
    pub(crate) connections_opened: u64,
    pub(crate) stale_retries: u64,
    pub(crate) body_bytes: u64,
    /// Latency of the 2xx answers, µs; `null` if none.
    pub(crate) latency_us: Option<Latency>,
}

impl LegitReport {
    pub(crate) fn new(t: &Tally, duration_s: f64) -> Self {
        Self {
            scheduled: t.scheduled,
            sent: t.sent,
            unsent: t.scheduled.saturating_sub(t.sent),
            ok: t.ok,
            failed: t.failed(),
            availability: if t.sent == 0 {
                0.0
            } else {
                t.ok as f64 / t.sent as f64
            },
            throughput_per_s: t.ok as f64 / duration_s.max(1e-9),
            failures_by_kind: Report::errors_from(&t.failures),
            statuses: t.statuses.clone(),
            connections_opened: t.connections_opened,
            stale_retries: t.stale_retries,
            body_bytes: t.body_bytes,
            latency_us: Latency::from_histogram(&t.latency_us),
        }
    }
}

/// The attackers' figures.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AttackReport {
    /// `null` without attackers.
    pub(crate) interval_s: Option<f64>,
    pub(crate) slowloris: KindReport,
    pub(crate) slow_body: KindReport,
    pub(crate) slow_read: KindReport,
}

impl AttackReport {
    fn kinds(&self) -> [(Kind, &KindReport); 3] {
        [
            (Kind::Slowloris, &self.slowloris),
            (Kind::SlowBody, &self.slow_body),
            (Kind::SlowRead, &self.slow_read),
        ]
    }
}

/// One kind of attacker.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct KindReport {
    /// Attackers of this kind (connections held at once, at most).
    pub(crate) attackers: u32,
    /// Their request target; `null` without attackers.
    pub(crate) path: Option<String>,
    pub(crate) opened: u64,
    pub(crate) closed_by_server: u64,
    pub(crate) connect_failed: u64,
    pub(crate) alive_at_end: u64,
    pub(crate) errors: u64,
    pub(crate) errors_by_kind: BTreeMap<&'static str, ErrorReport>,
    /// Statuses the server answered them with (408 at a stage deadline, say).
    pub(crate) responses: BTreeMap<u16, u64>,
    pub(crate) bytes_sent: u64,
    pub(crate) bytes_received: u64,
    /// Connect to close by the server, ms; `null` if the server closed none.
    pub(crate) lifetime_ms: Option<Latency>,
}

impl KindReport {
    pub(crate) fn new(attackers: u32, path: Option<String>, t: &KindTally) -> Self {
        let errors_by_kind = Report::errors_from(&t.errors);
        Self {
            attackers,
            path,
            opened: t.opened,
            closed_by_server: t.closed_by_server,
            connect_failed: t.connect_failed,
            alive_at_end: t.alive_at_end,
            errors: errors_by_kind.values().map(|e| e.count).sum(),
            errors_by_kind,
            responses: t.responses.clone(),
            bytes_sent: t.bytes_sent,
            bytes_received: t.bytes_received,
            lifetime_ms: Latency::from_histogram(&t.lifetime_ms),
        }
    }
}

fn fmt_ms(ms: u64) -> String {
    fmt_us(ms.saturating_mul(1000))
}

impl HttpReport {
    /// The human summary.
    pub(crate) fn table(&self) -> String {
        let l = &self.legit;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "rampart-loadgen http -> {} ({}, {}, SNI {})",
            self.target, self.tls_version, self.tls_cipher_suite, self.server_name
        );
        let body = if self.method == "POST" {
            format!(" with a {} B body", self.body_bytes)
        } else {
            String::new()
        };
        let load = if self.rate_per_s > 0 {
            format!(
                "{} req/s open loop (latency from the scheduled send time)",
                self.rate_per_s
            )
        } else {
            "closed loop".to_owned()
        };
        let _ = writeln!(
            out,
            "  {:<16} {} {}{body}; {} keep-alive connections, {load}",
            "requests", self.method, self.path, self.connections
        );
        let _ = writeln!(
            out,
            "  {:<16} warm-up {:.2} s, measured {:.2} s, total {:.2} s",
            "time", self.warmup_s, self.duration_s, self.elapsed_s
        );
        if self.rate_per_s > 0 {
            let _ = writeln!(out, "  {:<16} {}", "scheduled", l.scheduled);
        }
        let unsent = if l.unsent > 0 {
            format!(
                " ({} due but not sent: connections behind at the end)",
                l.unsent
            )
        } else {
            String::new()
        };
        let _ = writeln!(out, "  {:<16} {}{unsent}", "sent", l.sent);
        let _ = writeln!(
            out,
            "  {:<16} {} ({:.1} /s)",
            "ok (2xx)", l.ok, l.throughput_per_s
        );
        let _ = writeln!(out, "  {:<16} {}", "failed", l.failed);
        for (kind, e) in &l.failures_by_kind {
            let _ = writeln!(out, "    {kind:<22} {:>8}  e.g. {}", e.count, e.example);
        }
        let _ = writeln!(
            out,
            "  {:<16} {:.3} %",
            "availability",
            100.0 * l.availability
        );
        let statuses: Vec<String> = l
            .statuses
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        let _ = writeln!(
            out,
            "  {:<16} {}",
            "statuses",
            if statuses.is_empty() {
                "none".to_owned()
            } else {
                statuses.join(", ")
            }
        );
        let _ = writeln!(
            out,
            "  {:<16} {} opened, {} stale keep-alive retries",
            "connections", l.connections_opened, l.stale_retries
        );
        crate::report::write_latency(&mut out, l.latency_us.as_ref(), "request");
        match self.attackers.interval_s {
            None => {
                let _ = writeln!(out, "  {:<16} none", "attackers");
            }
            Some(interval) => {
                let _ = writeln!(
                    out,
                    "  {:<16} one step every {interval:.2} s; lifetime = connect to close by the \
                     server",
                    "attackers"
                );
                let _ = writeln!(
                    out,
                    "    {:<10} {:>6} {:>7} {:>7} {:>7} {:>6} {:>9} {:>9} {:>9}  responses",
                    "", "n", "opened", "closed", "failed", "alive", "life p50", "life p99", "max"
                );
                for (kind, k) in self.attackers.kinds() {
                    if k.attackers == 0 {
                        continue;
                    }
                    let (p50, p99, max) = k.lifetime_ms.as_ref().map_or_else(
                        || ("-".to_owned(), "-".to_owned(), "-".to_owned()),
                        |t| (fmt_ms(t.p50), fmt_ms(t.p99), fmt_ms(t.max)),
                    );
                    let responses: Vec<String> = k
                        .responses
                        .iter()
                        .map(|(s, n)| format!("{s}: {n}"))
                        .collect();
                    let _ = writeln!(
                        out,
                        "    {:<10} {:>6} {:>7} {:>7} {:>7} {:>6} {p50:>9} {p99:>9} {max:>9}  {}",
                        kind.as_str(),
                        k.attackers,
                        k.opened,
                        k.closed_by_server,
                        k.connect_failed,
                        k.alive_at_end,
                        if responses.is_empty() {
                            "-".to_owned()
                        } else {
                            responses.join(", ")
                        }
                    );
                    for (kind, e) in &k.errors_by_kind {
                        let _ =
                            writeln!(out, "      {kind:<20} {:>8}  e.g. {}", e.count, e.example);
                    }
                }
            }
        }
        if let Some(rss) = &self.server_rss {
            let _ = writeln!(out, "  {:<16} {}", "server RSS", rss.line());
        }
        out
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::runner::record;

    pub(crate) fn sample() -> HttpReport {
        let mut t = Tally::new();
        t.scheduled = 600;
        t.sent = 599;
        t.ok = 598;
        t.statuses.insert(200, 598);
        t.statuses.insert(503, 1);
        for v in 1..=598 {
            record(&mut t.latency_us, v * 10);
        }
        t.failures.insert(
            "status_5xx",
            crate::runner::ErrorTally {
                count: 1,
                example: "HTTP 503 Service Unavailable".into(),
            },
        );
        t.connections_opened = 8;
        let mut loris = KindTally::new();
        loris.opened = 40;
        loris.closed_by_server = 20;
        loris.alive_at_end = 20;
        loris.responses.insert(408, 20);
        for _ in 0..20 {
            record(&mut loris.lifetime_ms, 2_050);
        }
        let mut slow_read = KindTally::new();
        slow_read.opened = 5;
        slow_read.alive_at_end = 5;
        HttpReport {
            tool: "rampart-loadgen",
            version: "0",
            mode: "http",
            command_line: vec!["rampart-loadgen".into(), "http".into()],
            target: "127.0.0.1:8443".parse().unwrap(),
            server_name: "localhost".into(),
            tls_version: "TLSv1_3".into(),
            tls_cipher_suite: "TLS13_AES_256_GCM_SHA384".into(),
            method: "GET",
            path: "/healthz".into(),
            body_bytes: 0,
            connections: 4,
            rate_per_s: 200,
            load: "open",
            timeout_s: 10.0,
            warmup_s: 0.5,
            duration_s: 3.0,
            elapsed_s: 3.6,
            started_unix_ms: 1,
            legit: LegitReport::new(&t, 3.0),
            attackers: AttackReport {
                interval_s: Some(1.0),
                slowloris: KindReport::new(20, Some("/healthz".into()), &loris),
                slow_body: KindReport::new(0, None, &KindTally::new()),
                slow_read: KindReport::new(5, Some("/big.bin".into()), &slow_read),
            },
            server_rss: None,
        }
    }

    #[test]
    fn json_shape() {
        let v = serde_json::to_value(sample()).unwrap();
        for key in [
            "command_line",
            "target",
            "tls_version",
            "method",
            "path",
            "connections",
            "rate_per_s",
            "load",
            "warmup_s",
            "duration_s",
            "elapsed_s",
            "legit",
            "attackers",
            "server_rss",
        ] {
            assert!(v.get(key).is_some(), "{key} missing in {v}");
        }
        let l = &v["legit"];
        for key in [
            "scheduled",
            "sent",
            "unsent",
            "ok",
            "failed",
            "availability",
            "throughput_per_s",
            "failures_by_kind",
            "statuses",
            "connections_opened",
            "stale_retries",
            "latency_us",
        ] {
            assert!(l.get(key).is_some(), "legit.{key} missing in {l}");
        }
        assert_eq!(l["unsent"], 1);
        assert_eq!(l["failed"], 1);
        assert_eq!(l["statuses"]["200"], 598);
        assert_eq!(l["failures_by_kind"]["status_5xx"]["count"], 1);
        assert!((l["availability"].as_f64().unwrap() - 598.0 / 599.0).abs() < 1e-12);
        assert!((l["throughput_per_s"].as_f64().unwrap() - 598.0 / 3.0).abs() < 1e-9);
        for q in ["p50", "p90", "p99", "p999", "max"] {
            assert!(l["latency_us"][q].as_u64().is_some(), "{q}: {l}");
        }
        let a = &v["attackers"];
        assert_eq!(a["interval_s"], 1.0);
        let loris = &a["slowloris"];
        assert_eq!(loris["opened"], 40);
        assert_eq!(loris["closed_by_server"], 20);
        assert_eq!(loris["alive_at_end"], 20);
        assert_eq!(loris["responses"]["408"], 20);
        let p50 = loris["lifetime_ms"]["p50"].as_u64().unwrap();
        assert!((2_049..=2_051).contains(&p50), "{p50}");
        assert_eq!(a["slow_read"]["lifetime_ms"], serde_json::Value::Null);
        assert_eq!(a["slow_body"]["attackers"], 0);
        assert_eq!(a["slow_body"]["path"], serde_json::Value::Null);
    }

    #[test]
    fn table() {
        let t = sample().table();
        assert!(t.contains("availability     99.833 %"), "{t}");
        assert!(
            t.contains("sent             599 (1 due but not sent"),
            "{t}"
        );
        assert!(t.contains("statuses         200: 598, 503: 1"), "{t}");
        assert!(t.contains("status_5xx"), "{t}");
        let loris = t.lines().find(|l| l.contains("slowloris")).unwrap();
        assert!(
            loris.contains("2.05 s") && loris.contains("408: 20"),
            "{loris}"
        );
        assert!(t.contains("slow_read"), "{t}");
        // No row for a kind without attackers.
        assert!(!t.contains("slow_body"), "{t}");
    }
}
