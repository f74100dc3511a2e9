//! MPS's `/amt/*` routes end to end: `rampart up` with the CIRA port, a simulated AMT device over
//! real TLS with its WS-MAN service (digest challenge, chunked answers, simulated power and
//! redirection state), and REST calls on the admin API. The control plane decrypts the device's
//! AMT password, opens APF channels through the data plane's channel service and drives WS-MAN.
//!
//! The simulated device is single-threaded and blocking: the test thread serves it while the
//! REST calls run on other threads.

use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rampart_loadgen::amt::{Device, Setup};
use serde_json::{Value, json};

mod common;

use common::cira::{Cira, T, admin_at};
use common::free_port;

const G1: &str = "12345678-9abc-def0-1122-334455667788";
const G2: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
const G3: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
const G4: &str = "44444444-4444-4444-4444-444444444444";
const AMT_PW: &str = "Amt-P@ssw0rd-1";

/// A request for [`calls`]: method, path, body.
type Req = (&'static str, String, Option<String>);

/// Runs `reqs` one after another on another thread.
fn calls(socket: PathBuf, reqs: Vec<Req>) -> JoinHandle<Vec<(u16, Value)>> {
    std::thread::spawn(move || {
        reqs.into_iter()
            .map(|(m, p, b)| admin_at(&socket, m, &p, b.as_deref()))
            .collect()
    })
}

/// Serves `d` until `client` has finished; returns its result.
fn serve_until<R>(d: &mut Device, client: JoinHandle<R>, limit: Duration) -> R {
    let deadline = Instant::now() + limit;
    while !client.is_finished() {
        assert!(Instant::now() < deadline, "the REST client did not finish");
        if let Ok(Some(m)) = d.recv(Duration::from_millis(20)) {
            d.handle(m).unwrap();
        }
    }
    client.join().unwrap()
}

/// Allowlists `guid`, stores `amt_pw` as its AMT password (if any) and connects it with a
/// WS-MAN service that knows `device_pw`.
fn device(c: &Cira, guid: &str, amt_pw: Option<&str>, device_pw: &str, ports: &[u32]) -> Device {
    let pw = c.add_device(guid);
    if let Some(amt_pw) = amt_pw {
        let (code, body) = admin_at(
            &c.admin_socket(),
            "PUT",
            &format!("/api/v1/devices/{guid}/amt-password"),
            Some(&json!({ "password": amt_pw }).to_string()),
        );
        assert_eq!(code, 204, "{body}");
    }
    let mut d = c.device(guid, &pw, ports).with_wsman("admin", device_pw);
    assert!(
        matches!(d.setup(0, T).unwrap(), Setup::Forwarding { .. }),
        "{}",
        c.log()
    );
    c.wait_device(guid, "connected", |r| r["connectionStatus"] == true);
    d
}

fn get(path: &str) -> Req {
    ("GET", format!("/api/v1/amt/{path}/{G1}"), None)
}

fn post(path: &str, body: Value) -> Req {
    (
        "POST",
        format!("/api/v1/amt/{path}/{G1}"),
        Some(body.to_string()),
    )
}

#[test]
fn every_amt_route_answers_through_the_tunnel() {
    let c = Cira::start("", "", free_port());
    let mut d = device(&c, G1, Some(AMT_PW), AMT_PW, &[16992, 16994]);
    let reqs = vec![
        get("version"),
        get("generalSettings"),
        get("hardwareInfo"),
        get("power/state"),
        get("power/capabilities"),
        post("power/action", json!({ "action": 8 })),
        get("power/state"),
        post(
            "power/bootOptions",
            json!({ "action": 401, "useSOL": true }),
        ),
        get("features"),
        post(
            "features",
            json!({ "userConsent": "none", "enableSOL": false, "enableIDER": true,
                    "enableKVM": true }),
        ),
        get("features"),
        (
            "GET",
            format!("/api/v1/amt/log/audit/{G1}?startIndex=1"),
            None,
        ),
        get("log/event"),
    ];
    let n = reqs.len();
    let client = calls(c.admin_socket(), reqs);
    let answers = serve_until(&mut d, client, Duration::from_secs(120));
    assert_eq!(answers.len(), n);
    for (i, (code, body)) in answers.iter().enumerate() {
        assert_eq!(*code, 200, "request {i}: {body}\n{}", c.log());
    }
    let [
        version,
        general,
        hardware,
        state,
        caps,
        off,
        state_off,
        boot,
        _features,
        set,
        features,
        audit,
        events,
    ] = <[(u16, Value); 13]>::try_from(answers)
        .unwrap()
        .map(|(_, v)| v);
    let ids = version["CIM_SoftwareIdentity"]["responses"]
        .as_array()
        .unwrap();
    assert!(
        ids.iter()
            .any(|r| r["InstanceID"] == "AMT" && r["VersionString"] == "16.1.25"),
        "{version}"
    );
    assert!(version["AMT_SetupAndConfigurationService"]["response"].is_object());
    assert_eq!(general["Body"]["HostName"], "sim-device", "{general}");
    assert_eq!(
        hardware["CIM_Chassis"]["response"]["SerialNumber"],
        "SIM0001"
    );
    assert_eq!(state["powerstate"], 2, "{state}");
    assert_eq!(caps["Power up"], 2, "{caps}");
    assert_eq!(off["Body"]["ReturnValue"], 0, "{off}");
    assert_eq!(state_off["powerstate"], 8);
    assert_eq!(
        boot["Body"]["ReturnValue"],
        0,
        "{boot} {:?}",
        d.amt_state().power_requests
    );
    assert_eq!(set["status"], "Updated AMT Features");
    assert_eq!(features["userConsent"], "none", "{features}");
    assert_eq!(
        (&features["SOL"], &features["IDER"], &features["KVM"]),
        (&json!(false), &json!(true), &json!(true))
    );
    assert!(audit["totalCnt"].as_u64().unwrap() >= 2, "{audit}");
    assert!(events.is_array(), "{events}");
    // The device's own state moved: powered on again by the PXE boot, SOL off, IDER on.
    let st = d.amt_state();
    assert_eq!(st.power_state, 2);
    assert!(!st.sol && st.ider && st.kvm);
    assert!(st.power_requests.iter().any(|&(a, _)| a == 8));
    // The control plane learnt the digest challenge once and reused it on every later channel.
    assert_eq!(d.wsman_challenged, 1);
    assert!(d.wsman_served >= n as u32);
    // Actions are audited with their outcome; reads are not.
    let rows = c.audit();
    let actions: Vec<&str> = rows
        .iter()
        .filter(|r| r["object"] == G1 && r["outcome"] == "success")
        .filter_map(|r| r["action"].as_str())
        .collect();
    for a in ["amt.power_action", "amt.boot_options", "amt.features"] {
        assert!(actions.contains(&a), "{a} not audited: {actions:?}");
    }
    // The tunnel is still up.
    assert_eq!(d.keepalive(9, T).unwrap(), 9);
}

#[test]
fn amt_routes_refuse_clearly_and_limit_calls_per_device() {
    let c = Cira::start("", "", free_port());
    let socket = c.admin_socket();
    // The device knows another AMT password than the one stored for it.
    let mut d = device(&c, G1, Some(AMT_PW), "Other-P@ssw0rd", &[16992]);
    // Known but never connected; and one with no AMT password stored.
    let _ = c.add_device(G2);
    let _bare = device(&c, G3, None, AMT_PW, &[16992]);
    let unknown = "00000000-0000-0000-0000-00000000abcd";
    for (method, path, body, code, error) in [
        (
            "GET",
            format!("/api/v1/amt/power/state/{unknown}"),
            None,
            404,
            "not_found",
        ),
        (
            "GET",
            format!("/api/v1/amt/power/state/{G2}"),
            None,
            404,
            "not_connected",
        ),
        (
            "GET",
            format!("/api/v1/amt/power/state/{G3}"),
            None,
            409,
            "amt_password_missing",
        ),
        (
            "GET",
            "/api/v1/amt/power/state/not-a-guid".to_owned(),
            None,
            400,
            "invalid_guid",
        ),
        (
            "POST",
            format!("/api/v1/amt/power/action/{G1}"),
            Some(json!({ "action": 9999 }).to_string()),
            400,
            "invalid_value",
        ),
        (
            "POST",
            format!("/api/v1/amt/power/action/{G1}"),
            Some(json!({ "action": 8, "extra": 1 }).to_string()),
            400,
            "unknown_field",
        ),
        (
            "POST",
            format!("/api/v1/amt/features/{G1}"),
            Some(
                json!({ "userConsent": "maybe", "enableSOL": true, "enableIDER": true,
                        "enableKVM": true })
                .to_string(),
            ),
            400,
            "invalid_value",
        ),
    ] {
        let (got, v) = admin_at(&socket, method, &path, body.as_deref());
        assert_eq!(
            (got, v["error"]["code"].as_str()),
            (code, Some(error)),
            "{path}: {v}"
        );
    }

    // The wrong AMT password: the device refuses the digest, the action fails and is audited.
    let client = calls(
        socket.clone(),
        vec![post("power/action", json!({ "action": 8 }))],
    );
    let answers = serve_until(&mut d, client, Duration::from_secs(60));
    assert_eq!(answers[0].0, 502, "{}", answers[0].1);
    assert_eq!(answers[0].1["error"]["code"], "amt_unauthorized");
    assert_eq!(d.amt_state().power_state, 2, "nothing happened");
    let failed = c.wait_audit(|r| {
        r["action"] == "amt.power_action" && r["outcome"] == "failure" && r["object"] == G1
    });
    assert!(!failed.to_string().contains("Other-P@ssw0rd"));
    assert!(!c.log().contains(AMT_PW), "the AMT password reached a log");

    // With the right password, six parallel calls all succeed: past the three running at once
    // (the limit itself is tested in `controlplane/server/src/amt.rs`), the others wait.
    let (code, _) = admin_at(
        &socket,
        "PUT",
        &format!("/api/v1/devices/{G1}/amt-password"),
        Some(&json!({ "password": "Other-P@ssw0rd" }).to_string()),
    );
    assert_eq!(code, 204);
    let clients: Vec<_> = (0..6)
        .map(|_| calls(socket.clone(), vec![get("power/state")]))
        .collect();
    let all = std::thread::spawn(move || {
        clients
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect::<Vec<_>>()
    });
    let answers = serve_until(&mut d, all, Duration::from_secs(60));
    assert!(
        answers
            .iter()
            .all(|(code, v)| *code == 200 && v["powerstate"] == 2),
        "{answers:?}"
    );

    // A port the device does not forward is refused by its tunnel.
    let pw = c.add_device(G4);
    let mut no_wsman = c.device(G4, &pw, &[16994]).with_wsman("admin", AMT_PW);
    assert!(matches!(
        no_wsman.setup(0, T).unwrap(),
        Setup::Forwarding { .. }
    ));
    let (code, _) = admin_at(
        &socket,
        "PUT",
        &format!("/api/v1/devices/{G4}/amt-password"),
        Some(&json!({ "password": AMT_PW }).to_string()),
    );
    assert_eq!(code, 204);
    c.wait_device(G4, "connected", |r| r["connectionStatus"] == true);
    let (code, v) = admin_at(
        &socket,
        "GET",
        &format!("/api/v1/amt/power/state/{G4}"),
        None,
    );
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (502, Some("channel_refused")),
        "{v}"
    );
}
