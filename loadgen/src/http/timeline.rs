//! `--html` of `http`: the page that charts the legitimate load second by second (the seconds
//! come from [`crate::timeline`]: 2xx answers are its successes, failed requests its failures).

use super::report::HttpReport;
use crate::timeline::{self, Labels};
pub(crate) use crate::timeline::{Second, Timeline};

/// The `--html` document: both charts, the summary table and the command line.
pub(crate) fn page(report: &HttpReport, seconds: &[Second]) -> String {
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
    timeline::page(
        &title,
        &about,
        Labels {
            throughput_title: "Requests per second (measured window)",
            unit: "req",
            ok: "ok (2xx)",
            failed: "failed",
            latency_title: "Latency of the 2xx answers, per second",
        },
        seconds,
        &report.table(),
        &report.command_line,
    )
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
