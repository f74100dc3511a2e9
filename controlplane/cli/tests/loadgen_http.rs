//! `rampart-loadgen http` against a real `rampart up` (HTTPS front only): 200 legitimate
//! requests/s on 4 keep-alive connections for 3 s while 20 slowloris and 5 slow-read attackers
//! hold connections. The header stage is shortened to `header=2-4,MinRate=500` so the slowloris
//! connections are closed within the run; every legitimate request must still be answered 200,
//! and the JSON report must agree with the summary. `--html` writes the chart page.

use std::process::{Command, Stdio};

use serde_json::Value;

mod common;

use common::{Install, loadgen, text};

/// Size of the slow readers' file: far more than the socket buffers hold.
const BIG: usize = 8 * 1024 * 1024;

#[test]
fn http_mode_stays_available_under_slow_attackers() {
    let web = tempfile::tempdir().unwrap();
    std::fs::write(web.path().join("big.bin"), vec![7u8; BIG]).unwrap();
    let install = Install::with(
        &format!(
            "[dataplane.front]\nweb_root = \"{}\"\naccess_log = \"off\"\n\
             send_timeout = \"2,MinRate=16384\"\n",
            web.path().display()
        ),
        [
            "request_read_timeout = \"handshake=5 header=2-4,MinRate=500\"",
            "off",
            "off",
        ],
    );
    let up = install.start("up");
    let report = install.dir.path().join("http.json");
    let html = install.dir.path().join("http.html");
    let out = Command::new(loadgen())
        .args(["http", "--target"])
        .arg(format!("127.0.0.1:{}", install.ports[0]))
        .arg("--ca")
        .arg(install.ca())
        .args([
            "--rate",
            "200",
            "--connections",
            "4",
            "--duration",
            "3s",
            "--warmup",
            "500ms",
            "--slowloris",
            "20",
            "--slow-read",
            "5",
            "--slow-read-path",
            "/big.bin",
            "--attack-interval",
            "1s",
        ])
        .arg("--json")
        .arg(&report)
        .arg("--html")
        .arg(&html)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let summary = text(&out);
    assert!(out.status.success(), "{summary}\n{}", up.log_text());
    let v: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let ctx = format!("{summary}\n{v:#}");
    // The HTML page: charts drawn inline, the summary in it.
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("<svg") && page.contains("availability"),
        "{page}"
    );

    // The command line is in the report, as given.
    let argv: Vec<&str> = v["command_line"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(argv.windows(2).any(|w| w == ["--slowloris", "20"]), "{ctx}");
    assert_eq!(v["mode"], "http", "{ctx}");
    assert_eq!(v["load"], "open", "{ctx}");

    // Legitimate traffic: every request sent on schedule and answered 200.
    let l = &v["legit"];
    let n = |key: &str| l[key].as_u64().unwrap_or_else(|| panic!("{key}: {ctx}"));
    let scheduled = n("scheduled");
    let sent = n("sent");
    assert!((599..=601).contains(&scheduled), "rate × duration: {ctx}");
    assert!(
        (570..=630).contains(&sent),
        "sent {sent}, want 600 ± 5 %: {ctx}"
    );
    assert_eq!(n("ok"), sent, "{ctx}");
    assert_eq!(n("failed"), 0, "{ctx}");
    assert_eq!(l["availability"], 1.0, "{ctx}");
    assert_eq!(l["statuses"]["200"].as_u64(), Some(sent), "{ctx}");
    assert_eq!(
        l["failures_by_kind"].as_object().map(|m| m.len()),
        Some(0),
        "{ctx}"
    );
    let throughput = l["throughput_per_s"].as_f64().unwrap();
    assert!((190.0..=210.0).contains(&throughput), "{ctx}");
    // The front stays responsive: even the slowest answers are far from the 10 s timeout.
    let lat = &l["latency_us"];
    let (p50, p99, max) = (
        lat["p50"].as_u64().unwrap(),
        lat["p99"].as_u64().unwrap(),
        lat["max"].as_u64().unwrap(),
    );
    assert!(p50 > 0 && p50 <= p99 && p99 <= max, "{ctx}");
    assert!(p99 < 1_000_000, "p99 {p99} µs: {ctx}");
    // Keep-alive: a handful of connections (the front closes one after 100 requests).
    let opened = n("connections_opened");
    assert!((4..=20).contains(&opened), "{ctx}");

    // Slowloris: each of the 20 first connections was closed at the header deadline (T = 2 s,
    // capped at 4 s) with a 408, then reconnected.
    let a = &v["attackers"];
    assert_eq!(a["interval_s"], 1.0, "{ctx}");
    let loris = &a["slowloris"];
    let k = |kind: &Value, key: &str| kind[key].as_u64().unwrap_or_else(|| panic!("{key}: {ctx}"));
    assert_eq!(k(loris, "attackers"), 20, "{ctx}");
    assert!(k(loris, "opened") >= 20, "{ctx}");
    assert!(k(loris, "closed_by_server") >= 20, "{ctx}");
    assert_eq!(k(loris, "connect_failed"), 0, "{ctx}");
    assert_eq!(k(loris, "errors"), 0, "{ctx}");
    assert!(k(&loris["responses"], "408") >= 20, "{ctx}");
    let life = &loris["lifetime_ms"];
    assert!(
        (1_800..=4_500).contains(&k(life, "p50")) && k(life, "max") <= 5_000,
        "slowloris lifetimes outside the header stage's 2-4 s: {ctx}"
    );
    // Slow readers: all connected, and the books balance.
    let slow = &a["slow_read"];
    assert_eq!(k(slow, "attackers"), 5, "{ctx}");
    assert!(k(slow, "opened") >= 5, "{ctx}");
    assert_eq!(k(slow, "connect_failed"), 0, "{ctx}");
    assert!(k(slow, "bytes_received") > 0, "{ctx}");
    for kind in [loris, slow] {
        // Errors count failed connects and connections ended on an error alike.
        assert_eq!(
            k(kind, "opened") + k(kind, "connect_failed"),
            k(kind, "closed_by_server") + k(kind, "errors") + k(kind, "alive_at_end"),
            "every attacker connection ends exactly one way: {ctx}"
        );
    }
    assert_eq!(k(&a["slow_body"], "opened"), 0, "{ctx}");

    // The summary says the same.
    assert!(summary.contains("availability     100.000 %"), "{summary}");
    assert!(
        summary.contains(&format!("sent             {sent}")),
        "{summary}"
    );
    assert!(
        summary
            .lines()
            .any(|line| line.trim_start().starts_with("slowloris") && line.contains("408: ")),
        "{summary}"
    );
    up.stop();
}
