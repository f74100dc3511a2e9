//! `--html`: the legitimate load second by second, and the page that charts it.
//!
//! The progress thread closes one interval per progress tick (once a second) in the measured
//! window:
//! - ok and failed are the differences of the live counters between two ticks, so they count
//!   the measured requests *answered* (or failed) in that second;
//! - p50 and p99 come from a histogram of that second only, reset at every tick (not a
//!   subtraction of cumulative histograms). It holds the latencies of the 2xx answers the
//!   workers shipped in that second; workers ship every 250 ms, so a latency can land in the
//!   second after its answer.
//!
//! The interval after the last tick (requests due before the end, answered after it) is one
//! more, shorter point, when anything happened in it. The x axis is seconds since the measured
//! window started.

use hdrhistogram::Histogram;

use super::report::HttpReport;
use crate::chart::{self, Block, Chart, Page, Scale, Series};
use crate::http::legit::record;
use crate::runner::new_histogram;

/// One interval of the measured window.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Second {
    /// End of the interval, seconds since the measured window started.
    pub(crate) t_s: f64,
    /// Requests answered 2xx in the interval.
    pub(crate) ok: u64,
    /// Requests failed in the interval.
    pub(crate) failed: u64,
    /// Latency percentiles of the interval's 2xx answers, µs; `None` without any.
    pub(crate) p50_us: Option<u64>,
    pub(crate) p99_us: Option<u64>,
}

/// Collects [`Second`]s from the live counters and the shipped latencies.
#[derive(Debug)]
pub(crate) struct Timeline {
    seconds: Vec<Second>,
    hist: Histogram<u64>,
    last_ok: u64,
    last_failed: u64,
}

impl Timeline {
    pub(crate) fn new() -> Self {
        Self {
            seconds: Vec::new(),
            hist: new_histogram(),
            last_ok: 0,
            last_failed: 0,
        }
    }

    /// A latency shipped by a worker, µs.
    pub(crate) fn record(&mut self, us: u64) {
        record(&mut self.hist, us);
    }

    /// Closes the interval ending at `t_s`, given the live counters' totals.
    pub(crate) fn tick(&mut self, t_s: f64, ok_total: u64, failed_total: u64) {
        let quantile = |q| (!self.hist.is_empty()).then(|| self.hist.value_at_quantile(q));
        self.seconds.push(Second {
            t_s,
            ok: ok_total.saturating_sub(self.last_ok),
            failed: failed_total.saturating_sub(self.last_failed),
            p50_us: quantile(0.5),
            p99_us: quantile(0.99),
        });
        self.hist.reset();
        self.last_ok = ok_total;
        self.last_failed = failed_total;
    }

    /// Closes the last, partial interval if anything happened in it.
    pub(crate) fn finish(mut self, t_s: f64, ok_total: u64, failed_total: u64) -> Vec<Second> {
        let busy = ok_total > self.last_ok || failed_total > self.last_failed;
        if busy || !self.hist.is_empty() {
            let last = self.seconds.last().map_or(f64::NEG_INFINITY, |s| s.t_s);
            self.tick(t_s.max(last), ok_total, failed_total);
        }
        self.seconds
    }
}

/// The `--html` document: both charts, the summary table and the command line.
pub(crate) fn page(report: &HttpReport, seconds: &[Second]) -> String {
    let ms = |us: Option<u64>| us.map(|v| v as f64 / 1e3);
    let series = |f: &dyn Fn(&Second) -> Option<f64>| -> Vec<(f64, Option<f64>)> {
        seconds.iter().map(|s| (s.t_s, f(s))).collect()
    };
    let throughput = Chart {
        title: "Requests per second (measured window)",
        x_unit: "s",
        y_unit: "req",
        y_scale: Scale::Linear,
        series: vec![
            Series {
                name: "ok (2xx)",
                color: "#2ca02c",
                points: series(&|s| Some(s.ok as f64)),
            },
            Series {
                name: "failed",
                color: "#d62728",
                points: series(&|s| Some(s.failed as f64)),
            },
        ],
    };
    let latency = Chart {
        title: "Latency of the 2xx answers, per second",
        x_unit: "s",
        y_unit: "ms",
        y_scale: Scale::Log,
        series: vec![
            Series {
                name: "p50",
                color: "#1f77b4",
                points: series(&|s| ms(s.p50_us)),
            },
            Series {
                name: "p99",
                color: "#ff7f0e",
                points: series(&|s| ms(s.p99_us)),
            },
        ],
    };
    let title = format!("rampart-loadgen http → {}", report.target);
    let about = format!(
        "{} {} on {} connections, {}; x: seconds since the measured window started \
         (warm-up {:.2} s not shown). Each point is the second ending there: requests answered \
         ok or failed in it, and the p50/p99 latency of its 2xx answers (per-second histogram, \
         reset every second; latencies reach it up to 250 ms late). The last point may cover \
         less than a second: requests due in the window but answered after its end.",
        report.method,
        report.path,
        report.connections,
        if report.rate_per_s > 0 {
            format!("{} req/s open loop", report.rate_per_s)
        } else {
            "closed loop".to_owned()
        },
        report.warmup_s,
    );
    let table = report.table();
    let command_line = chart::shell_line(&report.command_line);
    chart::html(&Page {
        title: &title,
        blocks: vec![
            Block::Text(&about),
            Block::Chart(throughput),
            Block::Chart(latency),
            Block::Heading("Summary"),
            Block::Pre(&table),
            Block::Heading("Command line"),
            Block::Pre(&command_line),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_differences_and_reset() {
        let mut t = Timeline::new();
        for us in [1_000, 2_000, 3_000] {
            t.record(us);
        }
        t.tick(1.0, 3, 1);
        // Nothing in the second second.
        t.tick(2.0, 3, 1);
        t.record(50_000);
        t.tick(3.0, 4, 1);
        // A tail with one failure only.
        let s = t.finish(3.2, 4, 2);
        assert_eq!(s.len(), 4);
        assert_eq!((s[0].ok, s[0].failed), (3, 1));
        let p50 = s[0].p50_us.unwrap();
        assert!((1_999..=2_001).contains(&p50), "{p50}");
        assert_eq!((s[1].ok, s[1].failed, s[1].p50_us), (0, 0, None));
        // Reset, not cumulative: only the 50 ms answer.
        let p50 = s[2].p50_us.unwrap();
        assert!((49_000..=50_100).contains(&p50), "{p50}");
        assert_eq!(s[2].p50_us, s[2].p99_us);
        assert_eq!((s[3].t_s, s[3].ok, s[3].failed), (3.2, 0, 1));
        // An idle tail adds nothing.
        let mut t = Timeline::new();
        t.tick(1.0, 5, 0);
        assert_eq!(t.finish(1.01, 5, 0).len(), 1);
    }

    #[test]
    fn page_has_both_charts_the_table_and_the_command_line() {
        let mut report = crate::http::report::tests::sample();
        report
            .command_line
            .push("/x?<script>alert(1)</script>".into());
        let mut t = Timeline::new();
        t.record(800);
        t.tick(1.0, 200, 0);
        t.record(1_500);
        t.tick(2.0, 399, 1);
        let doc = page(&report, &t.finish(2.0, 399, 1));
        assert_eq!(doc.matches("<svg").count(), 2, "{doc}");
        assert!(doc.contains("availability"), "{doc}");
        assert!(doc.contains("rampart-loadgen http"), "{doc}");
        assert!(!doc.contains("<script"), "{doc}");
        assert!(
            doc.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{doc}"
        );
        // No data at all is still a page.
        let empty = page(&report, &[]);
        assert_eq!(empty.matches("no data").count(), 2, "{empty}");
    }
}
