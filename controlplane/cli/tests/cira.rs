//! The CIRA server end to end: `rampart up` with the CIRA port, and simulated Intel AMT devices
//! (`rampart_loadgen::amt`) over real TLS with the CA `rampart init` made.
//!
//! Each test allowlists its devices with the real CLI (`rampart device add`, which prints the
//! generated MPS password once), waits until the data plane has applied that policy, then drives
//! the APF session message by message. The device registry (connection status over the control
//! link) is read and driven through the admin socket.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rampart_apf_proto::{Message, reason};
use rampart_loadgen::amt::Setup;
use serde_json::Value;

mod common;

use common::cira::{Cira, T};
use common::{Install, free_port, text};

const G1: &str = "12345678-9abc-def0-1122-334455667788";
const G2: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
const G3: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

#[test]
fn allowlisted_device_is_admitted_keeps_alive_and_is_evented() {
    let plain = free_port();
    let mut c = Cira::start("", "", plain);
    let out = c.install.run(&[
        "acl",
        "add",
        "--user",
        "scenectrl",
        "--topic",
        "mps/events",
        "--access",
        "read",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let pw = c.add_device(G1);
    // A subscriber on mps/events, as MPS's consumers have.
    let mut sub = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &plain.to_string(),
            "-t",
            "mps/events",
            "-v",
        ])
        .args(["-u", "scenectrl", "-P"])
        .arg(controller_password(&c.install))
        .args(["-W", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));

    let mut d = c.device(G1, &pw, &[16992, 623, 16994, 5900]);
    let setup = d.setup(0, T).unwrap();
    assert_eq!(
        setup,
        Setup::Forwarding {
            keepalive: Some((30, 90))
        },
        "{}",
        c.log()
    );
    assert_eq!(d.keepalive(0xff, T).unwrap(), 0xff);
    assert_eq!(c.metric("rampart_cira_tunnels"), Some(1));
    c.wait_audit(|r| {
        r["action"] == "cira.connect" && r["outcome"] == "success" && r["object"] == G1
    });
    // The device leaves with DISCONNECT: the tunnel is gone and the event says so.
    d.send(&Message::Disconnect {
        reason: reason::BY_APPLICATION,
    })
    .unwrap();
    let (_, closed) = d.serve_for(T).unwrap();
    assert!(closed);
    let deadline = Instant::now() + T;
    while c.metric("rampart_cira_tunnels") != Some(0) {
        assert!(Instant::now() < deadline, "tunnel still counted");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    let _ = sub.kill();
    let out = sub.wait_with_output().unwrap();
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("mps/events "))
        .map(|j| serde_json::from_str(j).unwrap())
        .collect();
    assert_eq!(events.len(), 2, "{events:?}\n{}", text(&out));
    assert_eq!(events[0]["methods"][0], "CIRA_Connected");
    assert_eq!(events[0]["type"], "success");
    assert_eq!(events[0]["guid"], G1);
    assert_eq!(events[1]["methods"][0], "CIRA_Disconnected");
    c.stop();
}

/// The password `init` made for the `scenectrl` service account.
fn controller_password(install: &Install) -> String {
    let raw = std::fs::read(install.secrets().join("controller.auth")).unwrap();
    let v: Value = serde_json::from_slice(&raw).unwrap();
    v["password"].as_str().unwrap().to_owned()
}

#[test]
fn unknown_guid_is_refused_before_credentials_and_wrong_password_after() {
    let mut c = Cira::start("", "", free_port());
    let pw = c.add_device(G1);
    // Unknown GUID: DISCONNECT(HOST_NOT_ALLOWED_TO_CONNECT) right after PROTOCOLVERSION, even
    // though the credentials arrived in the same write; no USERAUTH answer comes.
    let mut d = c.device(G2, &pw, &[16992]);
    let setup = d.setup(0, T).unwrap();
    assert_eq!(
        setup,
        Setup::Disconnected(reason::HOST_NOT_ALLOWED_TO_CONNECT),
        "{}",
        c.log()
    );
    let row = c.wait_audit(|r| r["action"] == "cira.connect" && r["object"] == G2);
    assert_eq!(row["outcome"], "failure");
    assert!(
        row["detail"].as_str().unwrap().contains("unknown_guid"),
        "{row}"
    );

    // Wrong password on an allowlisted GUID: USERAUTH_FAILURE, audited as bad_credentials.
    let mut d = c.device(G1, "wrong-password", &[16992]);
    let setup = d.setup(0, T).unwrap();
    assert!(
        matches!(setup, Setup::AuthFailed | Setup::Disconnected(_)),
        "{setup:?}"
    );
    let row = c.wait_audit(|r| {
        r["action"] == "cira.connect" && r["object"] == G1 && r["outcome"] == "failure"
    });
    assert!(
        row["detail"].as_str().unwrap().contains("bad_credentials"),
        "{row}"
    );
    assert_eq!(c.metric("rampart_cira_tunnels"), Some(0));
    assert!(c.metric("rampart_cira_unknown_guid_total").unwrap() >= 1);
    assert!(c.metric("rampart_cira_bad_credentials_total").unwrap() >= 1);
    let log = c.stop();
    assert!(!log.contains(&pw), "the MPS password is in the log");
}

#[test]
fn split_and_coalesced_input_both_work() {
    let c = Cira::start("", "", free_port());
    let pw = c.add_device(G1);
    // One byte per TLS record.
    let mut d = c.device(G1, &pw, &[16992, 16994]);
    assert!(
        matches!(d.setup(1, T).unwrap(), Setup::Forwarding { .. }),
        "{}",
        c.log()
    );
    // Keepalives coalesced with each other in one write: both answered.
    let mut two = bytes::BytesMut::new();
    rampart_apf_proto::encode(&Message::KeepaliveRequest { cookie: 1 }, &mut two);
    rampart_apf_proto::encode(&Message::KeepaliveRequest { cookie: 2 }, &mut two);
    d.send_raw(&two).unwrap();
    let mut cookies = Vec::new();
    while cookies.len() < 2 {
        match d.recv(T).unwrap() {
            Some(Message::KeepaliveReply { cookie }) => cookies.push(cookie),
            Some(_) => {}
            None => panic!("closed"),
        }
    }
    assert_eq!(cookies, vec![1, 2]);
}

#[test]
fn idle_tunnels_time_out_and_silent_devices_miss_the_auth_deadline() {
    let c = Cira::start(
        "keepalive_interval_secs = 1\nidle_timeout_secs = 2",
        "request_read_timeout = \"handshake=5 auth=2\"",
        free_port(),
    );
    let pw = c.add_device(G1);
    let mut d = c.device(G1, &pw, &[16992]);
    assert_eq!(
        d.setup(0, T).unwrap(),
        Setup::Forwarding {
            keepalive: Some((1, 2))
        }
    );
    // Keepalives keep it: 3 s of keepalives every 500 ms.
    for i in 0..6 {
        assert_eq!(d.keepalive(i, T).unwrap(), i);
        std::thread::sleep(Duration::from_millis(500));
    }
    // Then silence: closed after the idle timeout.
    let start = Instant::now();
    let (reason, closed) = d.serve_for(Duration::from_secs(6)).unwrap();
    let took = start.elapsed();
    assert!(closed || reason.is_some(), "still open after {took:?}");
    assert!(
        // The last keepalive was 500 ms before the silence began: 2 s idle ends 1.5 s in.
        took >= Duration::from_millis(1200) && took < Duration::from_millis(3500),
        "idle close after {took:?}"
    );
    assert!(c.metric("rampart_cira_idle_timeouts_total").unwrap() >= 1);

    // A device that completes TLS and then says nothing is gone at the auth deadline.
    let mut quiet = c.device(G1, &pw, &[16992]);
    let start = Instant::now();
    let (_, closed) = quiet.serve_for(Duration::from_secs(6)).unwrap();
    let took = start.elapsed();
    assert!(closed, "still open");
    assert!(took < Duration::from_millis(3500), "closed after {took:?}");
}

#[test]
fn a_second_connection_replaces_the_first() {
    let c = Cira::start("", "", free_port());
    let pw = c.add_device(G1);
    let mut first = c.device(G1, &pw, &[16992]);
    assert!(matches!(
        first.setup(0, T).unwrap(),
        Setup::Forwarding { .. }
    ));
    let mut second = c.device(G1, &pw, &[16992]);
    assert!(matches!(
        second.setup(0, T).unwrap(),
        Setup::Forwarding { .. }
    ));
    // The first is told to go and closed; the second keeps working.
    let (reason, closed) = first.serve_for(T).unwrap();
    assert_eq!(reason, Some(reason::BY_APPLICATION));
    assert!(closed);
    assert_eq!(second.keepalive(7, T).unwrap(), 7);
    assert_eq!(c.metric("rampart_cira_tunnels"), Some(1));
    assert!(c.metric("rampart_cira_replaced_total").unwrap() >= 1);
}

#[test]
fn malformed_input_closes_only_that_tunnel() {
    let c = Cira::start("", "", free_port());
    let pw1 = c.add_device(G1);
    let pw3 = c.add_device(G3);
    let mut good = c.device(G1, &pw1, &[16992]);
    assert!(matches!(
        good.setup(0, T).unwrap(),
        Setup::Forwarding { .. }
    ));
    let mut bad = c.device(G3, &pw3, &[16992]);
    assert!(matches!(bad.setup(0, T).unwrap(), Setup::Forwarding { .. }));
    // An unknown message type: DISCONNECT(PROTOCOL_ERROR), then the close.
    bad.send_raw(&[0x77, 1, 2, 3]).unwrap();
    let (reason, closed) = bad.serve_for(T).unwrap();
    assert_eq!(reason, Some(reason::PROTOCOL_ERROR));
    assert!(closed);
    // A string longer than the 2048-byte limit, announced in a SERVICE_REQUEST on a fresh
    // tunnel: refused from the length field, before the bytes.
    let mut huge = c.device(G3, &pw3, &[16992]);
    huge.send(&Message::ProtocolVersion {
        major: 1,
        minor: 0,
        trigger: 1,
        guid: G3.parse().unwrap(),
    })
    .unwrap();
    huge.send_raw(&[5, 0, 0x10, 0, 0]).unwrap();
    let (reason, closed) = huge.serve_for(T).unwrap();
    assert_eq!(reason, Some(reason::PROTOCOL_ERROR));
    assert!(closed);
    // The good one still has its keepalives answered.
    assert_eq!(good.keepalive(42, T).unwrap(), 42);
    assert!(c.metric("rampart_cira_protocol_errors_total").unwrap() >= 2);
}

/// The node name the data plane reports devices under: the host name.
fn node_name() -> String {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let h = h.trim();
    let valid = (1..=64).contains(&h.len())
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        h.to_owned()
    } else {
        "dataplane".to_owned()
    }
}

#[test]
fn device_registry_follows_tunnels_and_disconnect_closes_one() {
    let mut c = Cira::start("", "", free_port());
    let pw = c.add_device(G1);
    let (code, row) = c.admin("GET", &format!("/api/v1/devices/{G1}"));
    assert_eq!(code, 200, "{row}");
    assert_eq!(row["connectionStatus"], false);
    assert_eq!(row["mpsInstance"], Value::Null);
    // Not connected: MPS's 404; not a device at all: ours.
    let (code, body) = c.admin("DELETE", &format!("/api/v1/devices/disconnect/{G1}"));
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (404, Some("not_connected"))
    );
    let (code, body) = c.admin("DELETE", &format!("/api/v1/devices/disconnect/{G2}"));
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    // Connected: the row says so, with the node, within moments (not at the next full list).
    let mut d = c.device(G1, &pw, &[16992]);
    let started = Instant::now();
    assert!(matches!(d.setup(0, T).unwrap(), Setup::Forwarding { .. }));
    let row = c.wait_device(G1, "connected", |r| r["connectionStatus"] == true);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(row["mpsInstance"], node_name().as_str(), "{row}");
    assert!(row["lastConnected"].is_string(), "{row}");
    assert!(row["lastSeen"].is_string(), "{row}");
    assert_eq!(row["lastDisconnected"], Value::Null);
    assert_eq!(d.keepalive(3, T).unwrap(), 3);

    // MPS's disconnect: the device is told (DISCONNECT BY_APPLICATION) and closed, and the row
    // follows.
    let (code, body) = c.admin("DELETE", &format!("/api/v1/devices/disconnect/{G1}"));
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["success"], 200);
    assert_eq!(
        body["description"],
        format!("CIRA connection disconnected : {G1}").as_str()
    );
    let (reason, closed) = d.serve_for(T).unwrap();
    assert_eq!(reason, Some(reason::BY_APPLICATION));
    assert!(closed);
    let row = c.wait_device(G1, "disconnected", |r| r["connectionStatus"] == false);
    assert!(row["lastDisconnected"].is_string(), "{row}");
    let audit = c.wait_audit(|r| r["action"] == "device.disconnect" && r["object"] == G1);
    assert_eq!(audit["outcome"], "success");

    // Connected again, then the control plane dies: its data plane is stopped and the device's
    // disconnect never reaches the store. The next start does not leave it "connected".
    let mut d = c.device(G1, &pw, &[16992]);
    assert!(matches!(d.setup(0, T).unwrap(), Setup::Forwarding { .. }));
    c.wait_device(G1, "connected again", |r| r["connectionStatus"] == true);
    let log = c.log();
    let pid = log
        .lines()
        .find(|l| l.contains("Rampart is up."))
        .and_then(|l| {
            let at = l.find("controlplane_pid")? + "controlplane_pid".len();
            let digits: String = l[at..]
                .chars()
                .skip_while(|c| !c.is_ascii_digit())
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse::<u32>().ok()
        })
        .unwrap_or_else(|| panic!("no control plane pid in the log:\n{log}"));
    let killed = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut up = c.up.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while up.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "rampart up still running");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(up);
    let (_, closed) = d.serve_for(T).unwrap();
    assert!(closed, "the tunnel outlived its data plane");
    c.up = Some(c.install.start("up"));
    let row = c.wait_device(G1, "disconnected after the restart", |r| {
        r["connectionStatus"] == false
    });
    assert!(row["lastDisconnected"].is_string(), "{row}");
    assert!(
        c.log()
            .contains("Devices recorded as connected at start marked disconnected."),
        "{}",
        c.log()
    );
    c.stop();
}

#[test]
fn ciracert_serves_the_ca_that_signed_the_cira_certificate() {
    let c = Cira::start("", "", free_port());
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", "--unix-socket"])
        .arg(c.install.dir.path().join("var/run/admin.sock"))
        .arg("http://rampart/api/v1/ciracert")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let pem = String::from_utf8(out.stdout).unwrap();
    assert_eq!(pem, std::fs::read_to_string(c.install.ca()).unwrap());
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
}
