//! The control plane end to end: the real `rampart controlplane` (or `rampart up`) on SQLite and
//! PostgreSQL, driven by the real `rampart` CLI and by curl on its Unix sockets.
//!
//! Covers the admin CLI, sessions with CSRF, roles and API-key scopes, refusal of bad input with
//! JSON errors and no change, login throttling, the audit log, and how fast a change reaches the
//! data plane.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;

use common::{Install, Running, shown_once, text};

/// An installation with the data-plane listeners off, plus `[controlplane]` lines.
fn install(controlplane: &str) -> Install {
    let i = Install::with("", ["off", "off", "off"]);
    append_controlplane(&i, controlplane);
    i
}

fn append_controlplane(i: &Install, lines: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(i.config())
        .unwrap();
    writeln!(f, "\n[controlplane]\n{lines}").unwrap();
}

fn run_dir(i: &Install) -> PathBuf {
    i.dir.path().join("var/run")
}

fn admin_sock(i: &Install) -> PathBuf {
    run_dir(i).join("admin.sock")
}

fn api_sock(i: &Install) -> PathBuf {
    run_dir(i).join("api.sock")
}

/// Starts `rampart <what>` and waits for the admin socket to answer.
fn start(i: &Install, what: &str) -> Running {
    let running = i.start(what);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if admin_sock(i).exists()
            && curl(&admin_sock(i), "GET", "/api/v1/status", &[], None).0 == 200
        {
            return running;
        }
        assert!(
            Instant::now() < deadline,
            "control plane never answered:\n{}",
            running.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The admin password `rampart init` printed.
fn admin_password(i: &Install) -> String {
    i.init_output
        .lines()
        .find_map(|l| l.strip_prefix("Password (shown once, stored only as an Argon2id hash): "))
        .expect("init printed the admin password")
        .trim()
        .to_owned()
}

/// One HTTP request with curl over a Unix socket: status, JSON body (Null if empty), headers.
fn curl(
    sock: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> (u16, Value, String) {
    let mut c = Command::new("curl");
    c.args(["-sS", "-i", "--unix-socket"])
        .arg(sock)
        .args(["-X", method, "-H", "Expect:"]);
    for (k, v) in headers {
        c.args(["-H", &format!("{k}: {v}")]);
    }
    if body.is_some() {
        c.args(["--data-binary", "@-"]);
    }
    c.arg(format!("http://rampart{path}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("curl is installed");
    {
        let mut stdin = child.stdin.take().unwrap();
        if let Some(b) = body {
            stdin.write_all(b).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "curl failed: {}", text(&out));
    let raw = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let json = if body.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
    };
    (status, json, head.to_owned())
}

fn json_req(
    sock: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> (u16, Value, String) {
    let mut h = headers.to_vec();
    h.push(("Content-Type", "application/json"));
    curl(sock, method, path, &h, Some(body.to_string().as_bytes()))
}

/// Runs the CLI with `stdin`; returns the output.
fn cli(i: &Install, args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = i.cmd(args);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        let mut pipe = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            pipe.write_all(s.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

fn cli_ok(i: &Install, args: &[&str], stdin: Option<&str>) -> String {
    let out = cli(i, args, stdin);
    assert!(
        out.status.success(),
        "rampart {args:?} failed: {}",
        text(&out)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn cli_json(i: &Install, args: &[&str]) -> Value {
    serde_json::from_str(&cli_ok(i, args, None)).unwrap()
}

fn find<'a>(list: &'a Value, key: &str, value: &str) -> Option<&'a Value> {
    list.as_array().unwrap().iter().find(|v| v[key] == value)
}

const GUID: &str = "123e4567-e89b-12d3-a456-426614174000";

#[test]
fn cli_manages_users_acls_keys_and_devices() {
    let i = install("");
    let cp = start(&i, "controlplane");

    // First start created init's accounts, with SceneScape's default ACLs.
    let users = cli_json(&i, &["user", "list", "--json"]);
    assert_eq!(find(&users, "name", "admin").unwrap()["role"], "admin");
    for svc in ["scenectrl", "webuser", "calibration"] {
        assert_eq!(
            find(&users, "name", svc).unwrap()["kind"],
            "service",
            "{svc}"
        );
    }
    assert_eq!(
        cli_json(&i, &["acl", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let mut secrets = Vec::new();
    let out = cli_ok(&i, &["user", "add", "alice", "--role", "operator"], None);
    let alice_pw = shown_once(&out, "password");
    assert_eq!(alice_pw.len(), 24);
    secrets.push(alice_pw);
    let out = cli_ok(
        &i,
        &["user", "add", "bob", "--password-stdin"],
        Some("correct horse battery staple\n"),
    );
    assert!(!out.contains("shown once"), "{out}");
    secrets.push("correct horse battery staple".into());
    let out = cli_ok(&i, &["user", "add", "cam01", "--service"], None);
    let cam_secret = shown_once(&out, "password");
    assert_eq!(cam_secret.len(), 43);
    secrets.push(cam_secret);
    secrets.push(shown_once(
        &cli_ok(&i, &["user", "passwd", "alice"], None),
        "password",
    ));
    cli_ok(&i, &["user", "disable", "alice"], None);
    let users = cli_json(&i, &["user", "list", "--json"]);
    assert_eq!(find(&users, "name", "alice").unwrap()["disabled"], true);
    cli_ok(&i, &["user", "enable", "alice"], None);

    let out = cli_ok(
        &i,
        &[
            "acl",
            "add",
            "--user",
            "cam01",
            "--topic",
            "cameras/%c/#",
            "--access",
            "write",
        ],
        None,
    );
    let rule: String = out.trim().rsplit(' ').next().unwrap().to_owned();
    cli_ok(
        &i,
        &[
            "acl",
            "add",
            "--role",
            "viewer",
            "--topic",
            "scenescape/#",
            "--access",
            "read",
        ],
        None,
    );
    let acls = cli_json(&i, &["acl", "list", "--json"]);
    assert_eq!(acls.as_array().unwrap().len(), 5);
    assert!(find(&acls, "topic", "cameras/%c/#").is_some());
    cli_ok(&i, &["acl", "delete", &rule], None);
    assert_eq!(
        cli_json(&i, &["acl", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        4
    );

    let out = cli_ok(
        &i,
        &[
            "apikey",
            "create",
            "--name",
            "ci",
            "--scope",
            "read",
            "--expires-days",
            "30",
        ],
        None,
    );
    let key = shown_once(&out, "key");
    assert!(key.starts_with("rpk_"), "{key}");
    secrets.push(key.clone());
    let keys = cli_json(&i, &["apikey", "list", "--json"]);
    assert!(!keys.to_string().contains(&key));
    let id = keys[0]["id"].to_string();
    cli_ok(&i, &["apikey", "revoke", &id], None);
    assert_eq!(
        cli_json(&i, &["apikey", "list", "--json"])[0]["state"],
        "revoked"
    );

    let out = cli_ok(
        &i,
        &[
            "device",
            "add",
            "--guid",
            GUID,
            "--mps-username",
            "admin",
            "--hostname",
            "h1",
            "--tag",
            "lab",
            "--tag",
            "floor1",
        ],
        None,
    );
    secrets.push(shown_once(&out, "MPS password"));
    cli_ok(
        &i,
        &["device", "set-amt-password", GUID],
        Some("P@ssw0rd-AMT-1\n"),
    );
    secrets.push("P@ssw0rd-AMT-1".into());
    let devices = cli_json(&i, &["device", "list", "--json"]);
    let d = find(&devices, "guid", GUID).unwrap();
    assert_eq!(d["mpsPasswordSet"], true);
    assert_eq!(d["amtPasswordSet"], true);
    assert_eq!(d["tags"], json!(["lab", "floor1"]));

    // Refusals come back as the API's error, exit 1.
    let out = cli(&i, &["user", "delete", "admin"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("last_admin"), "{}", text(&out));
    let out = cli(&i, &["user", "delete", "nobody"], None);
    assert!(text(&out).contains("not_found"), "{}", text(&out));

    cli_ok(&i, &["device", "delete", GUID], None);
    cli_ok(&i, &["user", "delete", "bob"], None);
    assert!(find(&cli_json(&i, &["user", "list", "--json"]), "name", "bob").is_none());

    // Every change is audited with the local actor; nothing secret is in the log or the database.
    let audit = cli_json(&i, &["audit", "--json", "--limit", "200"]);
    for action in [
        "user.create",
        "user.password",
        "user.update",
        "user.delete",
        "acl.create",
        "acl.delete",
        "apikey.create",
        "apikey.revoke",
        "device.create",
        "device.amt_password",
        "device.delete",
    ] {
        let e = find(&audit, "action", action).unwrap_or_else(|| panic!("no {action}"));
        assert!(e["actor"].as_str().unwrap().starts_with("local:"), "{e}");
        assert_eq!(e["outcome"], "success");
    }
    let log = std::fs::read_to_string(i.dir.path().join("var/audit.log")).unwrap();
    assert!(log.lines().count() >= 14);
    for line in log.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        for f in [
            "id", "time", "actor", "source", "action", "object", "outcome", "detail",
        ] {
            assert!(v.get(f).is_some(), "{f} missing in {line}");
        }
    }
    let mut db = Vec::new();
    for f in ["rampart.db", "rampart.db-wal"] {
        if let Ok(b) = std::fs::read(i.dir.path().join("var").join(f)) {
            db.extend(b);
        }
    }
    let db = String::from_utf8_lossy(&db);
    for s in &secrets {
        assert!(!log.contains(s.as_str()), "a secret is in the audit log");
        assert!(
            !db.contains(s.as_str()),
            "a secret is in the database in clear"
        );
        assert!(
            !cp.log_text().contains(s.as_str()),
            "a secret is in the control plane's log"
        );
    }
    cp.stop();
}

fn login(sock: &Path, user: &str, password: &str, from: &str) -> (u16, Value, String) {
    json_req(
        sock,
        "POST",
        "/api/v1/auth/login",
        &[("X-Forwarded-For", from)],
        &json!({"username": user, "password": password}),
    )
}

/// The session cookie (`name=value`) from a login's headers.
fn session_cookie(head: &str) -> String {
    let line = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .expect("a Set-Cookie header");
    for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(line.contains(attr), "{attr} missing: {line}");
    }
    line.split_once(':')
        .unwrap()
        .1
        .trim()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn sessions_need_csrf_and_roles_and_keys_are_enforced() {
    let i = install("");
    let _cp = start(&i, "controlplane");
    let api = api_sock(&i);
    let admin_pw = admin_password(&i);

    // No credentials: 401 JSON.
    let (code, body, _) = curl(&api, "GET", "/api/v1/users", &[], None);
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    // The OpenAPI document is public.
    let (code, doc, _) = curl(&api, "GET", "/api/v1/openapi.json", &[], None);
    assert_eq!(code, 200);
    assert!(doc["paths"]["/api/v1/users"]["post"].is_object());

    let (code, ok, head) = login(&api, "admin", &admin_pw, "192.0.2.10");
    assert_eq!(code, 200, "{ok}");
    let cookie = session_cookie(&head);
    let csrf = ok["csrf_token"].as_str().unwrap().to_owned();
    let with_cookie = [("Cookie", cookie.as_str())];
    assert_eq!(
        curl(&api, "GET", "/api/v1/users", &with_cookie, None).0,
        200
    );

    let vera = json!({"name": "vera", "role": "viewer", "password": "a long viewer password"});
    let (code, body, _) = json_req(&api, "POST", "/api/v1/users", &with_cookie, &vera);
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (403, Some("csrf_failed"))
    );
    let (code, body, _) = json_req(
        &api,
        "POST",
        "/api/v1/users",
        &[("Cookie", &cookie), ("X-CSRF-Token", "wrong")],
        &vera,
    );
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (403, Some("csrf_failed"))
    );
    let admin_h = [("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf.as_str())];
    let (code, body, _) = json_req(&api, "POST", "/api/v1/users", &admin_h, &vera);
    assert_eq!(code, 201, "{body}");
    assert!(
        body.get("password").is_none(),
        "a given password is not echoed"
    );

    // A viewer reads but cannot change.
    let (code, v, head) = login(&api, "vera", "a long viewer password", "192.0.2.11");
    assert_eq!(code, 200, "{v}");
    let vc = session_cookie(&head);
    let vh = [
        ("Cookie", vc.as_str()),
        ("X-CSRF-Token", v["csrf_token"].as_str().unwrap()),
    ];
    assert_eq!(curl(&api, "GET", "/api/v1/devices", &vh, None).0, 200);
    let (code, body, _) = json_req(&api, "POST", "/api/v1/users", &vh, &json!({"name": "x"}));
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    assert_eq!(curl(&api, "GET", "/api/v1/audit", &vh, None).0, 403);
    // A password reset ends the account's sessions: the old cookie stops working.
    let (code, reset, _) = json_req(
        &api,
        "PUT",
        "/api/v1/users/vera/password",
        &admin_h,
        &json!({}),
    );
    assert_eq!(code, 200, "{reset}");
    assert_eq!(reset["password"].as_str().unwrap().len(), 24);
    assert_eq!(curl(&api, "GET", "/api/v1/devices", &vh, None).0, 401);
    // Service accounts cannot log in to the web.
    let svc = std::fs::read_to_string(i.secrets().join("controller.auth")).unwrap();
    let svc: Value = serde_json::from_str(&svc).unwrap();
    assert_eq!(
        login(
            &api,
            "scenectrl",
            svc["password"].as_str().unwrap(),
            "192.0.2.12"
        )
        .0,
        401
    );

    // API keys: scope read reads, cannot write; X-Api-Key works too; a typo or a revoked key is 401.
    let (code, k, _) = json_req(
        &api,
        "POST",
        "/api/v1/apikeys",
        &admin_h,
        &json!({"name": "reader", "scope": "read"}),
    );
    assert_eq!(code, 201, "{k}");
    let key = k["key"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {key}");
    assert_eq!(
        curl(
            &api,
            "GET",
            "/api/v1/devices",
            &[("Authorization", &bearer)],
            None
        )
        .0,
        200
    );
    assert_eq!(
        curl(&api, "GET", "/api/v1/devices", &[("X-Api-Key", &key)], None).0,
        200
    );
    let (code, _, _) = json_req(
        &api,
        "POST",
        "/api/v1/devices",
        &[("Authorization", &bearer)],
        &json!({"guid": GUID, "mpsusername": "admin"}),
    );
    assert_eq!(code, 403);
    let mut typo = key.clone().into_bytes();
    let n = typo.len() - 10;
    typo[n] = if typo[n] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    assert_eq!(
        curl(
            &api,
            "GET",
            "/api/v1/devices",
            &[("X-Api-Key", &typo)],
            None
        )
        .0,
        401
    );
    let (code, k2, _) = json_req(
        &api,
        "POST",
        "/api/v1/apikeys",
        &admin_h,
        &json!({"name": "ops", "scope": "devices"}),
    );
    assert_eq!(code, 201);
    let ops = format!("Bearer {}", k2["key"].as_str().unwrap());
    let (code, body, _) = json_req(
        &api,
        "POST",
        "/api/v1/devices",
        &[("Authorization", &ops)],
        &json!({"guid": GUID, "mpsusername": "admin"}),
    );
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["mpspassword"].as_str().unwrap().len(), 43);
    let (code, _, _) = json_req(
        &api,
        "POST",
        "/api/v1/devices",
        &[("Authorization", &ops)],
        &json!({"guid": GUID, "hostname": "renamed"}),
    );
    assert_eq!(code, 200, "MPS upsert: an existing device is updated");
    assert_eq!(
        json_req(
            &api,
            "POST",
            "/api/v1/apikeys",
            &[("Authorization", &ops)],
            &json!({"name": "x", "scope": "admin"})
        )
        .0,
        403
    );
    let (code, _, _) = curl(
        &api,
        "DELETE",
        &format!("/api/v1/apikeys/{}", k["id"]),
        &admin_h,
        None,
    );
    assert_eq!(code, 200);
    assert_eq!(
        curl(
            &api,
            "GET",
            "/api/v1/devices",
            &[("Authorization", &bearer)],
            None
        )
        .0,
        401
    );

    // Logout ends the session.
    assert_eq!(
        curl(&api, "POST", "/api/v1/auth/logout", &admin_h, None).0,
        204
    );
    assert_eq!(
        curl(&api, "GET", "/api/v1/users", &with_cookie, None).0,
        401
    );

    // Authentication outcomes are audited with the source address the front reported.
    let audit = cli_json(&i, &["audit", "--json", "--limit", "200"]);
    let rows = audit.as_array().unwrap();
    assert!(rows.iter().any(|e| e["action"] == "auth.login"
        && e["outcome"] == "success"
        && e["source"] == "192.0.2.10"));
    assert!(rows.iter().any(|e| e["action"] == "auth.login"
        && e["outcome"] == "failure"
        && e["object"] == "scenectrl"));
    assert!(rows.iter().any(|e| e["action"] == "auth.apikey"
        && e["outcome"] == "failure"
        && e["detail"] == "revoked"));
    let text = audit.to_string();
    assert!(!text.contains(&key) && !text.contains(&admin_pw));
}

/// Method, path, content type, body, expected status and error code.
type Case<'a> = (&'a str, String, Option<&'a str>, Vec<u8>, u16, &'a str);

#[test]
fn bad_input_gets_a_json_4xx_and_changes_nothing() {
    let i = install("");
    let _cp = start(&i, "controlplane");
    let s = admin_sock(&i);
    let state = |s: &Path| -> Vec<Value> {
        [
            "/api/v1/users",
            "/api/v1/acls",
            "/api/v1/apikeys",
            "/api/v1/devices",
            "/api/v1/status",
        ]
        .iter()
        .map(|p| {
            let mut v = curl(s, "GET", p, &[], None).1;
            if let Some(d) = v.get_mut("dataplanes") {
                *d = Value::Null;
            }
            v
        })
        .collect()
    };
    let before = state(&s);
    let big = format!("{{\"name\":\"{}\"}}", "a".repeat(100 * 1024));
    let cases: Vec<Case<'_>> = vec![
        (
            "POST",
            "/api/v1/users".into(),
            Some("application/json"),
            b"{".to_vec(),
            400,
            "invalid_json",
        ),
        (
            "POST",
            "/api/v1/users".into(),
            Some("application/json"),
            b"[1,2]".to_vec(),
            400,
            "invalid_type",
        ),
        (
            "POST",
            "/api/v1/users".into(),
            Some("application/json"),
            br#"{"name":5}"#.to_vec(),
            400,
            "invalid_type",
        ),
        (
            "POST",
            "/api/v1/users".into(),
            Some("application/json"),
            br#"{"name":"x","admin":true}"#.to_vec(),
            400,
            "unknown_field",
        ),
        (
            "POST",
            "/api/v1/users".into(),
            Some("application/json"),
            br#"{}"#.to_vec(),
            400,
            "missing_field",
        ),
        (
            "POST",
            "/api/v1/users".into(),
            Some("application/json"),
            big.into_bytes(),
            413,
            "payload_too_large",
        ),
        (
            "POST",
            "/api/v1/users".into(),
            Some("text/plain"),
            br#"{"name":"x"}"#.to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "POST",
            "/api/v1/users".into(),
            None,
            br#"{"name":"x"}"#.to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "POST",
            "/api/v1/users".into(),
            Some("application/json"),
            br#"{"name":"x'; DROP TABLE accounts;--"}"#.to_vec(),
            400,
            "invalid_name",
        ),
        (
            "POST",
            "/api/v1/users".into(),
            Some("application/json"),
            br#"{"name":"eve","role":"root"}"#.to_vec(),
            400,
            "invalid_value",
        ),
        (
            "POST",
            "/api/v1/users".into(),
            Some("application/json"),
            br#"{"name":"eve","password":"short"}"#.to_vec(),
            400,
            "weak_password",
        ),
        (
            "POST",
            "/api/v1/users".into(),
            Some("application/json"),
            br#"{"name":"eve","kind":"service","role":"admin"}"#.to_vec(),
            400,
            "invalid_value",
        ),
        (
            "POST",
            "/api/v1/users".into(),
            Some("application/json"),
            br#"{"name":"admin"}"#.to_vec(),
            409,
            "conflict",
        ),
        (
            "PATCH",
            "/api/v1/users/admin".into(),
            Some("application/json"),
            br#"{"disabled":true}"#.to_vec(),
            409,
            "last_admin",
        ),
        (
            "PATCH",
            "/api/v1/users/admin".into(),
            Some("application/json"),
            br#"{"disabled":"yes"}"#.to_vec(),
            400,
            "invalid_type",
        ),
        (
            "POST",
            "/api/v1/acls".into(),
            Some("application/json"),
            br#"{"user":"scenectrl","topic":"a/#/b","access":"read"}"#.to_vec(),
            400,
            "invalid_topic",
        ),
        (
            "POST",
            "/api/v1/acls".into(),
            Some("application/json"),
            br#"{"user":"scenectrl","topic":"a/b+","access":"read"}"#.to_vec(),
            400,
            "invalid_topic",
        ),
        (
            "POST",
            "/api/v1/acls".into(),
            Some("application/json"),
            br#"{"user":"nobody","topic":"a","access":"read"}"#.to_vec(),
            400,
            "unknown_user",
        ),
        (
            "POST",
            "/api/v1/acls".into(),
            Some("application/json"),
            br#"{"topic":"a","access":"read"}"#.to_vec(),
            400,
            "invalid_value",
        ),
        (
            "POST",
            "/api/v1/acls".into(),
            Some("application/json"),
            br#"{"role":"viewer","topic":"a","access":"all"}"#.to_vec(),
            400,
            "invalid_value",
        ),
        (
            "DELETE",
            "/api/v1/acls/abc".into(),
            None,
            vec![],
            400,
            "invalid_id",
        ),
        (
            "DELETE",
            "/api/v1/acls/1%20OR%201=1".into(),
            None,
            vec![],
            400,
            "invalid_id",
        ),
        (
            "DELETE",
            "/api/v1/acls/999999".into(),
            None,
            vec![],
            404,
            "not_found",
        ),
        (
            "POST",
            "/api/v1/apikeys".into(),
            Some("application/json"),
            br#"{"name":"k","scope":"admin","expires_days":0}"#.to_vec(),
            400,
            "invalid_value",
        ),
        (
            "POST",
            "/api/v1/apikeys".into(),
            Some("application/json"),
            br#"{"name":"k","scope":"root"}"#.to_vec(),
            400,
            "invalid_value",
        ),
        (
            "POST",
            "/api/v1/devices".into(),
            Some("application/json"),
            br#"{"guid":"not-a-guid","mpsusername":"a"}"#.to_vec(),
            400,
            "invalid_guid",
        ),
        (
            "POST",
            "/api/v1/devices".into(),
            Some("application/json"),
            br#"{"guid":"123e4567-e89b-12d3-a456-42661417400'","mpsusername":"a"}"#.to_vec(),
            400,
            "invalid_guid",
        ),
        (
            "POST",
            "/api/v1/devices".into(),
            Some("application/json"),
            format!(r#"{{"guid":"{GUID}"}}"#).into_bytes(),
            400,
            "missing_field",
        ),
        (
            "POST",
            "/api/v1/devices".into(),
            Some("application/json"),
            format!(r#"{{"guid":"{GUID}","mpsusername":"a","tags":["x,y"]}}"#).into_bytes(),
            400,
            "invalid_value",
        ),
        (
            "POST",
            "/api/v1/devices".into(),
            Some("application/json"),
            format!(r#"{{"guid":"{GUID}","mpsusername":"a","mpspassword":"short"}}"#).into_bytes(),
            400,
            "invalid_value",
        ),
        (
            "GET",
            "/api/v1/devices/zzz".into(),
            None,
            vec![],
            400,
            "invalid_guid",
        ),
        (
            "GET",
            format!("/api/v1/devices/{GUID}"),
            None,
            vec![],
            404,
            "not_found",
        ),
        (
            "PUT",
            format!("/api/v1/devices/{GUID}/amt-password"),
            Some("application/json"),
            br#"{"password":"12345678"}"#.to_vec(),
            404,
            "not_found",
        ),
        (
            "GET",
            "/api/v1/devices?$top=abc".into(),
            None,
            vec![],
            400,
            "invalid_query",
        ),
        (
            "GET",
            "/api/v1/devices?$top=100000".into(),
            None,
            vec![],
            400,
            "invalid_query",
        ),
        (
            "GET",
            "/api/v1/devices?bogus=1".into(),
            None,
            vec![],
            400,
            "unknown_parameter",
        ),
        (
            "GET",
            "/api/v1/audit?limit=0".into(),
            None,
            vec![],
            400,
            "invalid_query",
        ),
        ("GET", "/api/v1/nope".into(), None, vec![], 404, "not_found"),
        (
            "PUT",
            "/api/v1/users".into(),
            None,
            vec![],
            405,
            "method_not_allowed",
        ),
    ];
    for (method, path, ctype, body, status, code) in cases {
        let mut h = Vec::new();
        if let Some(c) = ctype {
            h.push(("Content-Type", c));
        }
        let body = (!body.is_empty()).then_some(body.as_slice());
        let (got, json, head) = curl(&s, method, &path, &h, body);
        assert_eq!(
            (got, json["error"]["code"].as_str()),
            (status, Some(code)),
            "{method} {path}: {json}"
        );
        assert!(
            json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{head}"
        );
    }
    assert_eq!(state(&s), before, "a refused request changed something");
}

#[test]
fn brute_force_logins_are_throttled_per_account_and_per_source() {
    let i = install("");
    let _cp = start(&i, "controlplane");
    let api = api_sock(&i);
    let pw = admin_password(&i);
    // Five free failures for the account, then a lock that holds even for the right password.
    for n in 0..6 {
        let (code, body, _) = login(&api, "admin", "wrong password!", "198.51.100.1");
        assert_eq!(code, 401, "attempt {n}: {body}");
        assert_eq!(body["error"]["code"], "invalid_credentials");
    }
    let (code, body, head) = login(&api, "admin", &pw, "198.51.100.9");
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (429, Some("throttled"))
    );
    assert!(head.to_ascii_lowercase().contains("retry-after:"), "{head}");
    // A source guessing many accounts may fail twenty times; the twenty-first failure locks it,
    // whatever the account.
    for n in 0..21 {
        assert_eq!(
            login(
                &api,
                &format!("user{n}"),
                "guess guess guess",
                "198.51.100.2"
            )
            .0,
            401
        );
    }
    assert_eq!(
        login(&api, "someone", "guess guess guess", "198.51.100.2").0,
        429
    );
    // Another source is not affected.
    assert_eq!(
        login(&api, "someone", "guess guess guess", "198.51.100.3").0,
        401
    );
    // The lock is temporary: one second after the sixth failure, the admin gets in again.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(login(&api, "admin", &pw, "198.51.100.9").0, 200);
    let audit = cli_json(
        &i,
        &[
            "audit",
            "--json",
            "--limit",
            "100",
            "--action",
            "auth.login",
        ],
    );
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["detail"] == "throttled")
    );
}

/// The generation the data plane has applied, from `/status`.
fn applied(s: &Path) -> (u64, Option<u64>) {
    let st = curl(s, "GET", "/api/v1/status", &[], None).1;
    let g = st["generation"].as_u64().unwrap();
    let dp = st["dataplanes"]
        .as_array()
        .and_then(|a| a.first())
        .and_then(|d| d["applied_generation"].as_u64());
    (g, dp)
}

fn wait_applied(s: &Path, running: &Running) -> Duration {
    let t0 = Instant::now();
    loop {
        let (g, dp) = applied(s);
        if dp.is_some_and(|d| d >= g) {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "data plane never applied {g}:\n{}",
            running.log_text()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Makes changes with the CLI and measures until the data plane has applied each one.
fn propagation(i: &Install, up: &Running) -> Vec<(&'static str, Duration)> {
    let s = admin_sock(i);
    wait_applied(&s, up);
    cli_ok(i, &["user", "add", "cam02", "--service"], None);
    let key = cli_ok(
        i,
        &["apikey", "create", "--name", "k", "--scope", "read"],
        None,
    );
    let key_id = key
        .lines()
        .next()
        .unwrap()
        .split(' ')
        .nth(3)
        .unwrap()
        .to_owned();
    cli_ok(
        i,
        &["device", "add", "--guid", GUID, "--mps-username", "admin"],
        None,
    );
    wait_applied(&s, up);
    let keys = cli_json(i, &["apikey", "list", "--json"]);
    let id = find(&keys, "key_id", &key_id).unwrap()["id"].to_string();
    let mut times = Vec::new();
    for (what, args) in [
        ("delete user", vec!["user", "delete", "cam02"]),
        ("revoke key", vec!["apikey", "revoke", id.as_str()]),
        ("remove device", vec!["device", "delete", GUID]),
    ] {
        let before = applied(&s).0;
        let t0 = Instant::now();
        cli_ok(i, &args, None);
        let after = applied(&s).0;
        assert!(after > before, "{what} did not move the generation");
        let _ = wait_applied(&s, up);
        let took = t0.elapsed();
        eprintln!("{what}: applied by the data plane {took:?} after the command started");
        assert!(took < Duration::from_secs(1), "{what} took {took:?}");
        times.push((what, took));
    }
    times
}

#[test]
fn changes_reach_the_data_plane_within_a_second_on_sqlite() {
    let i = Install::with("", ["", "off", "off"]);
    let up = start(&i, "up");
    propagation(&i, &up);
    let log = up.stop();
    assert!(log.contains("Policy snapshot applied."), "{log}");
}

/// A database of its own on the machine's PostgreSQL, dropped at the end.
struct PgDb(String);

impl PgDb {
    fn new() -> PgDb {
        let name = format!(
            "rampart_e2e_{}_{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos() % 1_000_000
        );
        psql(&format!("CREATE DATABASE {name}"));
        PgDb(name)
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        psql(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0));
    }
}

fn psql(sql: &str) {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()
        .expect("psql (postgresql-client) is installed");
    assert!(
        out.status.success(),
        "PostgreSQL at 127.0.0.1:5432 is required: {}",
        text(&out)
    );
}

#[test]
fn changes_reach_the_data_plane_within_a_second_on_postgres() {
    let db = PgDb::new();
    let i = Install::with("", ["", "off", "off"]);
    append_controlplane(
        &i,
        &format!(
            "database_url = \"postgres://postgres@127.0.0.1:5432/{}\"",
            db.0
        ),
    );
    let up = start(&i, "up");
    let st = curl(&admin_sock(&i), "GET", "/api/v1/status", &[], None).1;
    assert_eq!(st["backend"], "postgres");
    propagation(&i, &up);
    up.stop();
}
