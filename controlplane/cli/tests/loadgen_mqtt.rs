//! `rampart-loadgen mqtt` (and its alias `mqtt-fanout`) against a real `rampart up`: plain TCP
//! (the loopback `plain_listen` listener) and TLS (the MQTT listener with the CA `rampart init`
//! made), QoS 0, 1 and 2, MQTT 3.1.1 and 5.0, as the service account `scenectrl` (readwrite
//! `scenescape/#`); filters, message counts, retained messages, a payload file and a
//! credentials file.
//!
//! The load generator is another package's binary, so Cargo gives no `CARGO_BIN_EXE_` for it:
//! it is taken from the same target directory as this test (`target/<profile>/`), where
//! `cargo test --workspace` builds it. If it is missing (`cargo test -p rampart-cli`), it is
//! built once into `target/loadgen-for-tests/` (not the outer build's directory, whose lock the
//! running `cargo test` holds).
//!
//! Every run is bounded (2 s measured, plus setup and at most 10 s of drain); the broker is
//! killed when its handle drops.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::{Install, Running, free_port, loadgen, text};

/// `rampart up` with a plain-TCP loopback listener next to the TLS one.
struct Broker {
    install: Install,
    up: Running,
    plain: u16,
    user: String,
    password_file: PathBuf,
}

impl Broker {
    fn start() -> Self {
        let plain = free_port();
        let install = Install::with(
            &format!("[dataplane.broker]\nplain_listen = [\"127.0.0.1:{plain}\"]\n"),
            ["off", "", "off"],
        );
        let up = install.start("up");
        let raw = std::fs::read(install.secrets().join("controller.auth")).unwrap();
        let account: Value = serde_json::from_slice(&raw).unwrap();
        let user = account["user"].as_str().unwrap().to_owned();
        let password_file = install.dir.path().join("scenectrl.password");
        std::fs::write(&password_file, account["password"].as_str().unwrap()).unwrap();
        let b = Self {
            install,
            up,
            plain,
            user,
            password_file,
        };
        b.wait_ready();
        b
    }

    fn tls(&self) -> u16 {
        self.install.ports[1]
    }

    /// Waits until the data plane has a policy: scenectrl's CONNECT is accepted.
    fn wait_ready(&self) {
        let password = std::fs::read_to_string(&self.password_file).unwrap();
        let connect = connect_packet("loadgen-test-ready", &self.user, &password);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let accepted = TcpStream::connect(("127.0.0.1", self.plain))
                .and_then(|mut tcp| {
                    tcp.set_read_timeout(Some(Duration::from_secs(2)))?;
                    tcp.write_all(&connect)?;
                    let mut connack = [0u8; 4];
                    tcp.read_exact(&mut connack)?;
                    Ok(connack == [0x20, 2, 0, 0])
                })
                .unwrap_or(false);
            if accepted {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the broker never accepted scenectrl:\n{}",
                self.up.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `rampart-loadgen mqtt-fanout` as scenectrl with 10 subscribers for 2 s.
    fn fanout(&self, tls: bool, password_file: &Path, extra: &[&str]) -> (Output, PathBuf) {
        let mut args = vec!["--username", &self.user, "--password-file"];
        let password_file = password_file.to_str().unwrap();
        args.push(password_file);
        args.extend_from_slice(&["--duration", "2s"]);
        args.extend_from_slice(extra);
        self.loadgen("mqtt-fanout", tls, &args)
    }

    /// Runs `rampart-loadgen <mode>` with 10 subscribers under `scenescape/loadgen`.
    fn loadgen(&self, mode: &str, tls: bool, extra: &[&str]) -> (Output, PathBuf) {
        let (mut cmd, json) = self.loadgen_cmd(mode, tls, extra);
        (cmd.output().unwrap(), json)
    }

    /// The command [`Self::loadgen`] runs, and its JSON report's path.
    fn loadgen_cmd(&self, mode: &str, tls: bool, extra: &[&str]) -> (Command, PathBuf) {
        let json = self
            .install
            .dir
            .path()
            .join(format!("fanout-{}.json", free_port()));
        let port = if tls { self.tls() } else { self.plain };
        let mut cmd = Command::new(loadgen());
        cmd.arg(mode)
            .args(["--target", &format!("127.0.0.1:{port}")])
            .args(["--topic-prefix", "scenescape/loadgen"])
            .args(["--subscribers", "10", "--warmup", "500ms"])
            .arg("--json")
            .arg(&json)
            .args(extra)
            .stdin(Stdio::null());
        if tls {
            cmd.arg("--tls").arg("--ca").arg(self.install.ca());
        }
        (cmd, json)
    }

    /// Like [`Self::fanout`], which must succeed; returns the JSON report.
    fn fanout_ok(&self, tls: bool, extra: &[&str]) -> Value {
        let (out, json) = self.fanout(tls, &self.password_file, extra);
        self.report(tls, extra, &out, &json)
    }

    /// The JSON report of a successful run.
    fn report(&self, tls: bool, extra: &[&str], out: &Output, json: &Path) -> Value {
        assert!(
            out.status.success(),
            "loadgen (tls {tls}, {extra:?}) failed:\n{}\nbroker log:\n{}",
            text(out),
            self.up.log_text()
        );
        let report: Value = serde_json::from_slice(&std::fs::read(json).unwrap())
            .unwrap_or_else(|e| panic!("the --json report does not parse: {e}"));
        let summary = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(summary.contains("delivered"), "{summary}");
        report
    }
}

/// A minimal MQTT 3.1.1 CONNECT with user name and password, clean session.
fn connect_packet(client_id: &str, user: &str, password: &str) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0xC2, 0, 60];
    for field in [client_id, user, password] {
        body.extend_from_slice(&u16::try_from(field.len()).unwrap().to_be_bytes());
        body.extend_from_slice(field.as_bytes());
    }
    let mut packet = vec![0x10];
    let mut len = body.len();
    loop {
        let byte = (len % 128) as u8;
        len /= 128;
        packet.push(if len > 0 { byte | 0x80 } else { byte });
        if len == 0 {
            break;
        }
    }
    packet.extend_from_slice(&body);
    packet
}

fn assert_delivered(report: &Value, transport: &str, qos: u64) {
    assert_eq!(report["mode"], "mqtt", "{report}");
    assert_eq!(report["transport"], transport, "{report}");
    assert_eq!(report["qos"], qos, "{report}");
    assert_eq!(report["subscribers"], 10, "{report}");
    assert!(
        report["command_line"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == "mqtt-fanout")),
        "{report}"
    );
    assert!(report["sent"].as_u64().unwrap() > 0, "{report}");
    assert!(report["delivered"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(
        report["expected"].as_u64().unwrap(),
        report["sent"].as_u64().unwrap() * 10,
        "{report}"
    );
    assert!(report["latency_us"]["p50"].as_u64().is_some(), "{report}");
    assert_eq!(report["subscribers_failed"], 0, "{report}");
}

#[test]
fn fanout_plain_and_tls() {
    let b = Broker::start();

    // QoS 0 as fast as the broker takes it: delivered, whatever the broker drops.
    for tls in [false, true] {
        let r = b.fanout_ok(tls, &["--qos", "0"]);
        assert_delivered(&r, if tls { "tls" } else { "tcp" }, 0);
        if tls {
            assert_eq!(r["tls_version"], "TLSv1_3", "{r}");
        }
    }

    // QoS 1 at a rate the (debug-built) broker sustains: nothing may be lost.
    for (tls, version) in [(false, "311"), (true, "5")] {
        let r = b.fanout_ok(
            tls,
            &["--qos", "1", "--rate", "500", "--mqtt-version", version],
        );
        assert_delivered(&r, if tls { "tls" } else { "tcp" }, 1);
        assert_eq!(r["lost"], 0, "{r}");
        assert_eq!(r["unacked"], 0, "{r}");
        assert_eq!(r["errors"], 0, "{r}");
        assert_eq!(r["granted_qos"], 1, "{r}");
        assert_eq!(r["delivered"], r["expected"], "{r}");
    }

    // A wrong password is one clear error, and no report is left behind.
    let wrong = b.install.dir.path().join("wrong.password");
    std::fs::write(&wrong, "not-the-password\n").unwrap();
    let (out, json) = b.fanout(false, &wrong, &["--qos", "0"]);
    let err = text(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("refused CONNECT"), "{err}");
    assert!(!json.exists());
}

#[test]
fn a_subscriber_that_receives_nothing_does_not_hold_the_publisher_back_forever() {
    let b = Broker::start();
    // `subscribe` without `read`: the SUBSCRIBE is granted and every delivery filtered, so
    // with --max-ahead the publisher finds its subscribers never catching up.
    let out = b.install.run(&["user", "add", "mute", "--service"]);
    let listed = text(&out);
    assert!(out.status.success(), "{listed}");
    let password = common::shown_once(&listed, "password");
    for access in ["subscribe", "write"] {
        let out = b.install.run(&[
            "acl",
            "add",
            "--user",
            "mute",
            "--topic",
            "scenescape/loadgen/#",
            "--access",
            access,
        ]);
        assert!(out.status.success(), "{}", text(&out));
    }
    common::wait_applied(&b.install);
    let password_file = b.install.dir.path().join("mute.password");
    std::fs::write(&password_file, password).unwrap();
    let (mut cmd, json) = b.loadgen_cmd(
        "mqtt",
        false,
        &[
            "--username",
            "mute",
            "--password-file",
            password_file.to_str().unwrap(),
            "--count",
            "300",
            "--max-ahead",
            "50",
        ],
    );
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Without the watchdog it would wait for the hour --count allows.
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the publisher was still held back after 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let said = text(&out);
    // Nothing was delivered: an error exit, with the report written and the reason given.
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("no message was delivered"), "{said}");
    assert!(said.contains("1 publishers gave up waiting"), "{said}");
    let r: Value = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
    assert_eq!(r["publishers_released"], 1, "{r}");
    assert_eq!(r["sent"], 300, "{r}");
    assert_eq!(r["delivered"], 0, "{r}");
    assert_eq!(r["lost"], 3000, "{r}");
}

#[test]
fn general_mode_qos2_filters_counts_retained_and_files() {
    let b = Broker::start();
    let dir = b.install.dir.path();
    // Per-connection credentials (one account here; the file format is what is tested: a
    // comment, a blank line, a password with a colon in it would be kept whole).
    let password = std::fs::read_to_string(&b.password_file).unwrap();
    let creds = dir.join("credentials");
    std::fs::write(
        &creds,
        format!("# bench accounts\n\n{}:{password}\n", b.user),
    )
    .unwrap();
    let creds = creds.to_str().unwrap();
    // A real-looking scene update: stays JSON with the stamp inside.
    let scene = dir.join("scene.json");
    std::fs::write(
        &scene,
        r#"{"id":"camera1","timestamp":"2026-11-29T12:00:00.000Z","objects":{"person":[{"id":1,"bounding_box":{"x":0.1,"y":0.2,"width":0.3,"height":0.4}}]}}"#,
    )
    .unwrap();
    let scene = scene.to_str().unwrap();
    let html = dir.join("run.html");

    // QoS 2, 3 publishers on their own topics, one wildcard filter, 200 messages each at
    // 400/s, connections ramped at 50/s: every message delivered exactly once to all 10.
    let args = [
        "--credentials-file",
        creds,
        "--payload-file",
        scene,
        "--qos",
        "2",
        "--publishers",
        "3",
        "--topic",
        "scenescape/loadgen/cam/{i}",
        "--filter",
        "{prefix}/cam/+",
        "--count",
        "200",
        "--rate",
        "400",
        "--ramp-up",
        "50",
        "--mqtt-version",
        "5",
        "--html",
        html.to_str().unwrap(),
    ];
    let (out, json) = b.loadgen("mqtt", true, &args);
    let r = b.report(true, &args, &out, &json);
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(page.matches("<svg").count(), 2, "{page}");
    assert!(page.contains("delivered"), "{page}");
    assert_eq!(r["mode"], "mqtt", "{r}");
    assert_eq!(
        (r["qos"].as_u64(), r["granted_qos"].as_u64()),
        (Some(2), Some(2)),
        "{r}"
    );
    assert_eq!(r["sent"], 600, "{r}");
    assert_eq!(r["expected"], 6000, "{r}");
    assert_eq!(r["delivered"], 6000, "{r}");
    assert_eq!(
        (r["lost"].as_u64(), r["duplicates"].as_u64()),
        (Some(0), Some(0)),
        "{r}"
    );
    assert_eq!(
        (r["unacked"].as_u64(), r["errors"].as_u64()),
        (Some(0), Some(0)),
        "{r}"
    );
    assert_eq!(r["credentials"], 1, "{r}");
    assert_eq!(r["filters"][0], "scenescape/loadgen/cam/+", "{r}");
    assert_eq!(r["publishers_matched"], 3, "{r}");
    // Open loop: how far the publishers fell behind their schedule is reported.
    assert!(r["publisher_max_lag_us"].as_u64().is_some(), "{r}");
    assert!(r["payload_bytes"].as_u64().unwrap() > 150, "{r}");
    // 13 connections at 50/s: the setup took at least a quarter of a second.
    assert!(r["setup_s"].as_f64().unwrap() >= 0.2, "{r}");
    // 200 messages at 400/s: the measured window is about half a second, not --duration.
    let window = r["duration_s"].as_f64().unwrap();
    assert!((0.3..2.0).contains(&window), "{r}");

    // A filter that matches one publisher of three: only its messages are expected. Retained,
    // so the next run's subscribers get one stored message per topic when they subscribe.
    let args = [
        "--username",
        &b.user,
        "--password-file",
        b.password_file.to_str().unwrap(),
        "--publishers",
        "3",
        "--topic",
        "scenescape/loadgen/ret/{i}",
        "--filter",
        "scenescape/loadgen/ret/1",
        "--retain",
        "--count",
        "50",
        "--rate",
        "200",
    ];
    let (out, json) = b.loadgen("mqtt", false, &args);
    let r = b.report(false, &args, &out, &json);
    assert_eq!(r["publishers_matched"], 1, "{r}");
    assert_eq!(r["sent"], 150, "{r}");
    assert_eq!(r["expected"], 500, "{r}");
    assert_eq!(r["delivered"], 500, "{r}");
    assert_eq!(r["retained_received"], 0, "{r}");
    let (out, json) = b.loadgen("mqtt", false, &args);
    let r = b.report(false, &args, &out, &json);
    assert_eq!(r["retained_received"], 10, "{r}");
    assert_eq!(r["delivered"], r["expected"], "{r}");

    // Bad files are clear errors.
    let bad = dir.join("bad-credentials");
    std::fs::write(&bad, "no colon here\n").unwrap();
    let (out, _) = b.loadgen(
        "mqtt",
        false,
        &["--credentials-file", bad.to_str().unwrap()],
    );
    let err = text(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("line 1: expected `username:password`"),
        "{err}"
    );
    assert!(!err.contains("no colon here"), "{err}");
    let (out, _) = b.loadgen(
        "mqtt",
        false,
        &[
            "--credentials-file",
            creds,
            "--topic",
            "scenescape/loadgen/a/{i}",
            "--filter",
            "scenescape/loadgen/b/#",
        ],
    );
    let err = text(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("no --filter matches"), "{err}");
}
