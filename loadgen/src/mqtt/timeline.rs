//! `--html` of `mqtt`: the page that charts the run second by second (the seconds come from
//! [`crate::timeline`]: PUBLISH packets the subscribers received are its successes, errors its
//! failures; the latencies are those of the measured deliveries).

use super::summary::FanoutReport;
use crate::timeline::{self, Labels, Second};

/// The `--html` document: both charts, the summary table and the command line.
pub(crate) fn page(report: &FanoutReport, seconds: &[Second]) -> String {
    let title = format!("rampart-loadgen mqtt → {}", report.target);
    let about = format!(
        "{} publishers ({}) to {} subscribers, QoS {}, {} B payloads over {}; x: seconds since \
         the measured window started (warm-up {:.2} s not shown). Each point is the second \
         ending there: PUBLISH packets the subscribers received and errors in it, and the \
         p50/p99 latency of the measured deliveries shipped in it (per-second histogram, reset \
         every second; latencies reach it up to 250 ms late). Points after the measured window \
         are the drain.",
        report.publishers,
        if report.rate_per_publisher > 0 {
            format!("{} msg/s each, open loop", report.rate_per_publisher)
        } else {
            "as fast as the broker takes them".to_owned()
        },
        report.subscribers,
        report.qos,
        report.payload_bytes,
        report.transport,
        report.warmup_s,
    );
    timeline::page(
        &title,
        &about,
        Labels {
            throughput_title: "Messages received by all subscribers, per second",
            unit: "msg",
            ok: "received",
            failed: "errors",
            latency_title: "End-to-end latency of the measured deliveries, per second",
        },
        seconds,
        &report.table(),
        &report.command_line,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::Timeline;

    #[test]
    fn page_has_both_charts_the_table_and_the_command_line() {
        let mut report = crate::mqtt::summary::tests::report();
        report.command_line.push("--topic=<b>x</b>/{i}".into());
        let mut t = Timeline::starting_at(1_000, 0);
        t.record(800);
        t.tick(1.0, 6_000, 0);
        t.record(1_500);
        t.tick(2.0, 11_000, 2);
        let doc = page(&report, &t.finish(2.0, 11_000, 2));
        assert_eq!(doc.matches("<svg").count(), 2, "{doc}");
        assert!(doc.contains("rampart-loadgen mqtt"), "{doc}");
        assert!(doc.contains("delivered"), "{doc}");
        assert!(!doc.contains("<b>"), "{doc}");
        assert!(doc.contains("&lt;b&gt;x&lt;/b&gt;"), "{doc}");
    }
}
