//! `--html` of `http`: the page that charts the legitimate load second by second (the seconds
//! come from [`crate::timeline`]: 2xx answers are its successes, failed requests its failures).

use super::report::HttpReport;
use crate::chart::{self, Block, Chart, Page, Scale, Series};
pub(crate) use crate::timeline::{Second, Timeline};

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
