//! `rampart-loadgen cira` against a real `rampart up`: 30 allowlisted devices and one that is
//! not, dialling at 50/s over TLS 1.2 and holding their tunnels with keepalives for 2 s. The
//! summary and the JSON report must agree with what the server did.

use std::process::{Command, Stdio};

use serde_json::Value;

mod common;

use common::{Install, loadgen, text, wait_applied};

#[test]
fn cira_mode_brings_up_and_holds_the_fleet() {
    let install = Install::with("", ["off", "off", ""]);
    let up = install.start("up");
    let mut csv = String::new();
    for i in 1..=30u32 {
        let guid = format!("{i:08x}-0000-4000-8000-{i:012x}");
        let pw = format!("device-password-{i}");
        let mut add = install.cmd(&[
            "device",
            "add",
            "--guid",
            &guid,
            "--mps-username",
            "admin",
            "--mps-password-stdin",
        ]);
        let mut child = add
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(pw.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        csv.push_str(&format!("{guid},admin,{pw}\n"));
    }
    // Not on the allowlist.
    csv.push_str("ffffffff-0000-4000-8000-ffffffffffff,admin,whatever\n");
    wait_applied(&install);
    let devices = install.dir.path().join("devices.csv");
    std::fs::write(&devices, csv).unwrap();
    let report = install.dir.path().join("report.json");
    let out = Command::new(loadgen())
        .args(["cira", "--target"])
        .arg(format!("127.0.0.1:{}", install.ports[2]))
        .arg("--ca")
        .arg(install.ca())
        .arg("--tls12")
        .arg("--devices-file")
        .arg(&devices)
        .args([
            "--rate",
            "50",
            "--hold",
            "2s",
            "--keepalive",
            "500ms",
            "--threads",
            "4",
        ])
        .arg("--json")
        .arg(&report)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let summary = text(&out);
    assert!(out.status.success(), "{summary}\n{}", up.log_text());
    let v: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(v["devices"], 31, "{v}");
    assert_eq!(v["established"], 30, "{v}\n{summary}");
    assert_eq!(v["alive_at_end"], 30, "{v}");
    // The unknown GUID: DISCONNECT(1, host not allowed).
    assert_eq!(v["refused"]["disconnect_1"], 1, "{v}");
    assert!(v["keepalives"].as_u64().unwrap() >= 30, "{v}");
    assert!(
        v["admission_latency_us"]["p50"].as_u64().unwrap() > 0,
        "{v}"
    );
    assert!(summary.contains("established        30"), "{summary}");
    up.stop();
}
