//! A load run second by second, for the `--html` charts of `http` and `mqtt`.
//!
//! The progress thread closes one interval per progress tick (once a second) in the measured
//! window:
//! - ok and failed are the differences of the live counters between two ticks, so they count
//!   what was *answered* (or failed) in that second;
//! - p50 and p99 come from a histogram of that second only, reset at every tick (not a
//!   subtraction of cumulative histograms). It holds the latencies the workers shipped in that
//!   second; workers ship every 250 ms, so a latency can land in the second after its answer.
//!
//! The interval after the last tick (answers after the end) is one more, shorter point, when
//! anything happened in it. The x axis is seconds since the measured window started.

use hdrhistogram::Histogram;

use crate::chart::{self, Block, Chart, Page, Scale, Series};
use crate::runner::{new_histogram, record};

/// One interval of the measured window.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Second {
    /// End of the interval, seconds since the measured window started.
    pub(crate) t_s: f64,
    /// Successes in the interval (HTTP: requests answered 2xx; MQTT: messages delivered).
    pub(crate) ok: u64,
    /// Failures in the interval (HTTP: requests failed; MQTT: errors).
    pub(crate) failed: u64,
    /// Latency percentiles of the interval's successes, µs; `None` without any.
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
        Self::starting_at(0, 0)
    }

    /// A timeline whose first interval counts from these totals (what came before the
    /// measured window).
    pub(crate) fn starting_at(ok_total: u64, failed_total: u64) -> Self {
        Self {
            seconds: Vec::new(),
            hist: new_histogram(),
            last_ok: ok_total,
            last_failed: failed_total,
        }
    }

    /// A latency shipped by a worker, µs.
    pub(crate) fn record(&mut self, us: u64) {
        record(&mut self.hist, us);
    }

    /// Latencies shipped by a worker as a histogram.
    pub(crate) fn add(&mut self, h: &Histogram<u64>) {
        // Both auto-resize; adding cannot fail for lack of range.
        let _ = self.hist.add(h);
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

/// What a page calls the counts and latencies of its seconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Labels {
    pub(crate) throughput_title: &'static str,
    /// The unit of the counts, per second.
    pub(crate) unit: &'static str,
    pub(crate) ok: &'static str,
    pub(crate) failed: &'static str,
    pub(crate) latency_title: &'static str,
}

/// An `--html` document: `about`, a chart of the counts and one of the p50/p99 latency per
/// second, the summary `table` and the command line. Every text is escaped by [`chart`].
pub(crate) fn page(
    title: &str,
    about: &str,
    labels: Labels,
    seconds: &[Second],
    table: &str,
    command_line: &[String],
) -> String {
    let ms = |us: Option<u64>| us.map(|v| v as f64 / 1e3);
    let series = |f: &dyn Fn(&Second) -> Option<f64>| -> Vec<(f64, Option<f64>)> {
        seconds.iter().map(|s| (s.t_s, f(s))).collect()
    };
    let throughput = Chart {
        title: labels.throughput_title,
        x_unit: "s",
        y_unit: labels.unit,
        y_scale: Scale::Linear,
        series: vec![
            Series {
                name: labels.ok,
                color: "#2ca02c",
                points: series(&|s| Some(s.ok as f64)),
            },
            Series {
                name: labels.failed,
                color: "#d62728",
                points: series(&|s| Some(s.failed as f64)),
            },
        ],
    };
    let latency = Chart {
        title: labels.latency_title,
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
    let command_line = chart::shell_line(command_line);
    chart::html(&Page {
        title,
        blocks: vec![
            Block::Text(about),
            Block::Chart(throughput),
            Block::Chart(latency),
            Block::Heading("Summary"),
            Block::Pre(table),
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
    fn whole_histograms_add_up() {
        let mut t = Timeline::new();
        let mut h = new_histogram();
        for v in [100, 200, 300] {
            h.record(v).unwrap();
        }
        t.add(&h);
        t.add(&h);
        t.record(10_000);
        t.tick(1.0, 7, 0);
        let s = t.finish(1.0, 7, 0);
        assert_eq!(s.len(), 1);
        let p50 = s[0].p50_us.unwrap();
        assert!((199..=201).contains(&p50), "{p50}");
        assert!(s[0].p99_us.unwrap() >= 9_990);
    }
}
