//! The broker's external auth backend against a real HTTPS auth server speaking
//! mosquitto-go-auth's protocol as SceneScape configures it (form parameters, answer by
//! status), with real MQTT clients (mosquitto_pub / mosquitto_sub) over TLS.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Install, free_port, text};
use serde_json::Value;

/// The auth server (Python's http.server over TLS), killed on drop.
struct AuthServer {
    child: Child,
    log: std::path::PathBuf,
}

impl AuthServer {
    fn start(i: &Install, port: u16) -> Self {
        let log = i.dir.path().join("auth-requests.jsonl");
        let mut child = Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/mqtt_ext/auth_server.py"
            ))
            .arg(port.to_string())
            .arg(i.secrets().join("certs/https.pem"))
            .arg(i.secrets().join("certs/https.key"))
            .arg(&log)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        Self { child, log }
    }

    fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mosq(tool: &str, i: &Install, args: &[&str]) -> Command {
    let mut c = Command::new(tool);
    c.args(["-h", "127.0.0.1", "-p", &i.ports[1].to_string()])
        .arg("--cafile")
        .arg(i.ca())
        .args(args)
        .stdin(Stdio::null());
    c
}

fn run_for(mut c: Command, limit: Duration) -> Output {
    let child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(limit);
        let _ = Command::new("kill").arg(pid.to_string()).status();
    });
    let out = child.wait_with_output().unwrap();
    drop(killer);
    out
}

fn wait_for_policy(r: &common::Running) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !r.log_text().contains("Policy snapshot applied") {
        assert!(Instant::now() < deadline, "no policy:\n{}", r.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn external_users_authenticate_and_are_acl_checked_once_per_topic() {
    let auth_port = free_port();
    let i = Install::with(
        &format!(
            "[dataplane.broker.external_auth]\nurl = \"https://127.0.0.1:{auth_port}\"\n\
             ca_file = \"{}\"\n",
            "CA_PLACEHOLDER"
        ),
        ["off", "", "off"],
    );
    // The CA exists only after `init`: point the config at it now.
    let cfg = std::fs::read_to_string(i.config()).unwrap();
    std::fs::write(
        i.config(),
        cfg.replace("CA_PLACEHOLDER", &i.ca().display().to_string()),
    )
    .unwrap();
    let server = AuthServer::start(&i, auth_port);
    let r = i.start("up");
    wait_for_policy(&r);

    // A subscriber and a publisher the control plane does not know, allowed by the server.
    let mut sub = mosq(
        "mosquitto_sub",
        &i,
        &[
            "-u", "ext-cam", "-P", "pw", "-i", "ext-sub", "-t", "ext/#", "-C", "2", "-v", "-W",
            "20",
        ],
    );
    let sub = sub
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The SUBACK comes after the server's answer: wait for the subscription's ACL request.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server
        .requests()
        .iter()
        .any(|r| r["path"] == "/api/v1/aclcheck" && r["clientid"] == "ext-sub")
    {
        assert!(Instant::now() < deadline, "no subscribe check");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    for m in ["one", "two", "three"] {
        let out = run_for(
            mosq(
                "mosquitto_pub",
                &i,
                &[
                    "-u", "ext-cam", "-P", "pw", "-i", "ext-pub", "-t", "ext/cam1", "-m", m,
                ],
            ),
            Duration::from_secs(10),
        );
        assert!(out.status.success(), "{}", text(&out));
    }
    let out = sub.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ext/cam1 one\next/cam1 two\n",
        "{}",
        text(&out)
    );

    // Denied by the server's ACL: MQTT 5 gets 0x87 in PUBACK.
    let out = run_for(
        mosq(
            "mosquitto_pub",
            &i,
            &[
                "-u", "ext-cam", "-P", "pw", "-i", "ext-pub", "-t", "other/x", "-m", "x", "-q",
                "1", "-V", "mqttv5", "-d",
            ],
        ),
        Duration::from_secs(10),
    );
    assert!(text(&out).contains("RC:135"), "{}", text(&out));

    // A wrong password is refused (CONNACK 4 in MQTT 3.1.1).
    let out = run_for(
        mosq(
            "mosquitto_pub",
            &i,
            &[
                "-u", "ext-cam", "-P", "wrong", "-i", "ext-bad", "-t", "ext/x", "-m", "x",
            ],
        ),
        Duration::from_secs(10),
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("bad user name or password"),
        "{}",
        text(&out)
    );

    let reqs = server.requests();
    // Form parameters, as SceneScape's server reads them.
    assert!(
        reqs.iter()
            .all(|r| r["type"] == "application/x-www-form-urlencoded"),
        "{reqs:?}"
    );
    // One ACL question for (ext-pub, ext/cam1, write) although it published three times.
    let asked = reqs
        .iter()
        .filter(|r| r["clientid"] == "ext-pub" && r["topic"] == "ext/cam1" && r["acc"] == "2")
        .count();
    assert_eq!(asked, 1, "{reqs:?}");
    // The subscription was asked as acc 4 with its filter.
    assert!(
        reqs.iter()
            .any(|r| r["clientid"] == "ext-sub" && r["topic"] == "ext/#" && r["acc"] == "4")
    );
    // The password never reaches the broker's logs.
    let log = r.stop();
    assert!(!log.contains("\"pw\"") && !log.contains("wrong"), "{log}");
    assert!(log.contains("mqtt_login_denied"), "{log}");
}

#[test]
fn an_unreachable_auth_server_denies_without_blocking_other_logins() {
    // Nothing listens on the auth port: external logins fail after the retries, while an
    // account of the control plane still logs in at once.
    let auth_port = free_port();
    let i = Install::with(
        &format!(
            "[dataplane.broker.external_auth]\nurl = \"https://127.0.0.1:{auth_port}\"\n\
             retry_count = 1\ntimeout_secs = 1\n"
        ),
        ["off", "", "off"],
    );
    let r = i.start("up");
    wait_for_policy(&r);
    let ctl: Value = serde_json::from_str(
        &std::fs::read_to_string(i.secrets().join("controller.auth")).unwrap(),
    )
    .unwrap();
    let ext = mosq(
        "mosquitto_pub",
        &i,
        &[
            "-u", "ext-cam", "-P", "pw", "-i", "ext-x", "-t", "ext/x", "-m", "x",
        ],
    );
    let ext = std::thread::spawn(move || run_for(ext, Duration::from_secs(15)));
    let started = Instant::now();
    let out = run_for(
        mosq(
            "mosquitto_pub",
            &i,
            &[
                "-u",
                "scenectrl",
                "-P",
                ctl["password"].as_str().unwrap(),
                "-i",
                "ctl-1",
                "-t",
                "scenescape/x",
                "-m",
                "x",
            ],
        ),
        Duration::from_secs(10),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(started.elapsed() < Duration::from_secs(3));
    let out = ext.join().unwrap();
    assert!(!out.status.success(), "{}", text(&out));
}
