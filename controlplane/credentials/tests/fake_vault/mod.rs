//! A small, faithful fake of HashiCorp Vault's KV v2 HTTP API, for the client tests.
//!
//! Why it exists: a real Vault cannot be installed on the build machine (no package registry
//! we can use ships it: not Debian, PyPI or npm, and downloads from HashiCorp's release site
//! are blocked). So this fake implements exactly the endpoints `rampart_credentials::vault`
//! uses, with the status codes and JSON shapes of the KV v2 documentation
//! (<https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2>,
//! <https://developer.hashicorp.com/vault/api-docs/system/health>):
//!
//! - `GET /v1/<mount>/data/<path>`: 200 `{"data":{"data":{..},"metadata":{..,"version":N}}}`;
//!   404 `{"errors":[]}` if the path was never written; 404 with `data.data = null` and a
//!   `deletion_time` if the latest version was soft-deleted.
//! - `POST /v1/<mount>/data/<path>` with `{"data":{..}}` (optional `options.cas`): stores a
//!   new version, 200 with the version's metadata; 400 on a body that is not that shape.
//! - `DELETE /v1/<mount>/data/<path>`: soft-deletes the latest version, 204.
//! - `DELETE /v1/<mount>/metadata/<path>`: removes every version and the metadata, 204
//!   (also when nothing was there, as Vault does).
//! - `GET /v1/sys/health` (unauthenticated): 200 active, 429 standby, 503 sealed, 501 not
//!   initialised, each with the `{"initialized","sealed","standby",..}` body.
//! - Everything else under `/v1/` needs `X-Vault-Token` to equal the configured token, or it is
//!   403 `{"errors":["permission denied"]}`.
//!
//! Every request is recorded (method, path, lower-cased headers, body) so the tests can assert
//! exactly what the client sent. A canned response can be queued to test odd answers
//! (redirects, garbage). The server speaks HTTP/1.1 with `Connection: close`, optionally over
//! rustls with a certificate made by rcgen in the test.

#![allow(dead_code, unreachable_pub)]
// A test-only fake server on its own threads; no data path involved.
#![allow(clippy::disallowed_types)]

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::{Value, json};

pub const TOKEN: &str = "hvs.CAESIFaketokenForTests0123456789";

/// One recorded HTTP request.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }
}

/// What `sys/health` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Active,
    Standby,
    Sealed,
    Uninitialised,
}

#[derive(Debug, Default)]
struct Secret {
    /// Version n is at index n-1; `None` data means soft-deleted.
    versions: Vec<Option<Value>>,
}

/// A canned answer for the next request.
#[derive(Debug, Clone)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

#[derive(Debug)]
struct State {
    token: String,
    mount: String,
    secrets: HashMap<String, Secret>,
    health: Health,
    requests: Vec<Recorded>,
    canned: Vec<Canned>,
    /// Accept connections but never answer (to test timeouts).
    silent: bool,
}

/// TLS material for the fake: certificate chain and PKCS#8 key, DER.
pub struct TlsIdentity {
    pub chain: Vec<Vec<u8>>,
    pub key: Vec<u8>,
}

pub struct FakeVault {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl FakeVault {
    /// A plain-HTTP fake on 127.0.0.1 with the KV v2 engine mounted at `secret/`.
    pub fn start() -> FakeVault {
        FakeVault::start_with("secret", None)
    }

    pub fn start_with(mount: &str, tls: Option<TlsIdentity>) -> FakeVault {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            token: TOKEN.to_owned(),
            mount: mount.to_owned(),
            secrets: HashMap::new(),
            health: Health::Active,
            requests: Vec::new(),
            canned: Vec::new(),
            silent: false,
        }));
        let tls = tls.map(|identity| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    identity
                        .chain
                        .into_iter()
                        .map(rustls::pki_types::CertificateDer::from)
                        .collect(),
                    rustls::pki_types::PrivateKeyDer::Pkcs8(identity.key.into()),
                )
                .unwrap();
            Arc::new(config)
        });
        let server = FakeVault {
            addr,
            state: Arc::clone(&state),
            tls: tls.clone(),
        };
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let state = Arc::clone(&state);
                let tls = tls.clone();
                thread::spawn(move || {
                    let _ = serve(stream, &state, tls);
                });
            }
        });
        server
    }

    pub fn http_address(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn https_address(&self, host: &str) -> String {
        format!("https://{host}:{}", self.addr.port())
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn last_request(&self) -> Recorded {
        self.requests().pop().expect("a request was made")
    }

    pub fn set_health(&self, health: Health) {
        self.state.lock().unwrap().health = health;
    }

    pub fn set_silent(&self, silent: bool) {
        self.state.lock().unwrap().silent = silent;
    }

    /// Queues a canned answer for the next request (after recording it).
    pub fn answer_next(&self, canned: Canned) {
        self.state.lock().unwrap().canned.push(canned);
    }

    /// The data of the latest live version at `path` (below the mount's `data/`).
    pub fn stored(&self, path: &str) -> Option<Value> {
        let state = self.state.lock().unwrap();
        state
            .secrets
            .get(path)
            .and_then(|s| s.versions.last().cloned().flatten())
    }

    /// How many versions were written at `path`.
    pub fn version_count(&self, path: &str) -> usize {
        let state = self.state.lock().unwrap();
        state.secrets.get(path).map_or(0, |s| s.versions.len())
    }

    /// Writes a secret directly, as another Vault client would.
    pub fn insert(&self, path: &str, data: Value) {
        let mut state = self.state.lock().unwrap();
        state
            .secrets
            .entry(path.to_owned())
            .or_default()
            .versions
            .push(Some(data));
    }
}

fn serve(
    stream: TcpStream,
    state: &Mutex<State>,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    match tls {
        None => {
            let mut stream = stream;
            handle(&mut stream, state)
        }
        Some(config) => {
            let conn = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
            let mut tls = rustls::StreamOwned::new(conn, stream);
            let result = handle(&mut tls, state);
            tls.conn.send_close_notify();
            let _ = tls.flush();
            result
        }
    }
}

fn handle(stream: &mut (impl Read + Write), state: &Mutex<State>) -> io::Result<()> {
    let request = read_request(stream)?;
    let (status, headers, body) = {
        let mut state = state.lock().unwrap();
        state.requests.push(request.clone());
        if state.silent {
            drop(state);
            thread::sleep(Duration::from_secs(5));
            return Ok(());
        }
        if state.canned.is_empty() {
            let (status, body) = route(&mut state, &request);
            (
                status,
                Vec::new(),
                body.map(|b| b.to_string()).unwrap_or_default(),
            )
        } else {
            let canned = state.canned.remove(0);
            (canned.status, canned.headers, canned.body)
        }
    };
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    if status != 204 {
        out.push_str("Content-Type: application/json\r\n");
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("Connection: close\r\n\r\n");
    if status != 204 {
        out.push_str(&body);
    }
    stream.write_all(out.as_bytes())?;
    stream.flush()
}

fn read_request(stream: &mut impl Read) -> io::Result<Recorded> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if buf.len() > 64 * 1024 {
            return Err(io::Error::other("request head too large"));
        }
        if stream.read(&mut byte)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "eof in head"));
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).map_err(io::Error::other)?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    assert_eq!(parts.next(), Some("HTTP/1.1"), "{request_line}");
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').expect("header line");
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(0, |(_, v)| v.parse().expect("content-length"));
    assert!(
        !headers.iter().any(|(n, _)| n == "transfer-encoding"),
        "the fake only supports Content-Length bodies"
    );
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body)?;
    Ok(Recorded {
        method,
        path,
        headers,
        body,
    })
}

const TIME: &str = "2026-01-01T00:00:00.000000000Z";

fn route(state: &mut State, request: &Recorded) -> (u16, Option<Value>) {
    let path = request.path.as_str();
    if path == "/v1/sys/health" && request.method == "GET" {
        let (status, initialized, sealed, standby) = match state.health {
            Health::Active => (200, true, false, false),
            Health::Standby => (429, true, false, true),
            Health::Sealed => (503, true, true, false),
            Health::Uninitialised => (501, false, true, false),
        };
        return (
            status,
            Some(json!({
                "initialized": initialized,
                "sealed": sealed,
                "standby": standby,
                "performance_standby": false,
                "replication_performance_mode": "disabled",
                "replication_dr_mode": "disabled",
                "server_time_utc": 1767225600,
                "version": "1.15.6",
                "cluster_name": "vault-cluster-fake",
                "cluster_id": "00000000-0000-0000-0000-000000000000"
            })),
        );
    }
    if request.header("x-vault-token") != Some(state.token.as_str()) {
        return (403, Some(json!({"errors": ["permission denied"]})));
    }
    let data_prefix = format!("/v1/{}/data/", state.mount);
    let metadata_prefix = format!("/v1/{}/metadata/", state.mount);
    if let Some(key) = path.strip_prefix(&data_prefix) {
        let key = key.to_owned();
        return match request.method.as_str() {
            "GET" => read(state, &key),
            "POST" | "PUT" => write(state, &key, &request.body),
            "DELETE" => {
                if let Some(secret) = state.secrets.get_mut(&key)
                    && let Some(last) = secret.versions.last_mut()
                {
                    *last = None;
                }
                (204, None)
            }
            _ => (405, Some(json!({"errors": []}))),
        };
    }
    if let Some(key) = path.strip_prefix(&metadata_prefix) {
        return match request.method.as_str() {
            "DELETE" => {
                state.secrets.remove(key);
                (204, None)
            }
            _ => (405, Some(json!({"errors": []}))),
        };
    }
    (
        404,
        Some(json!({"errors": [format!("no handler for route \"{}\"", &path[4..])]})),
    )
}

fn metadata(version: usize, deleted: bool) -> Value {
    json!({
        "created_time": TIME,
        "custom_metadata": null,
        "deletion_time": if deleted { TIME } else { "" },
        "destroyed": false,
        "version": version
    })
}

fn read(state: &State, key: &str) -> (u16, Option<Value>) {
    let Some(secret) = state.secrets.get(key) else {
        return (404, Some(json!({"errors": []})));
    };
    let version = secret.versions.len();
    match secret.versions.last() {
        Some(Some(data)) => (
            200,
            Some(json!({
                "request_id": "11111111-2222-3333-4444-555555555555",
                "lease_id": "",
                "renewable": false,
                "lease_duration": 0,
                "data": {"data": data, "metadata": metadata(version, false)},
                "wrap_info": null,
                "warnings": null,
                "auth": null
            })),
        ),
        // Latest version soft-deleted: Vault answers 404 with the metadata.
        _ => (
            404,
            Some(json!({"data": {"data": null, "metadata": metadata(version, true)}})),
        ),
    }
}

fn write(state: &mut State, key: &str, body: &[u8]) -> (u16, Option<Value>) {
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return (400, Some(json!({"errors": ["error parsing JSON"]})));
    };
    let Some(data) = body.get("data").filter(|d| d.is_object()) else {
        return (400, Some(json!({"errors": ["no data provided"]})));
    };
    let secret = state.secrets.entry(key.to_owned()).or_default();
    if let Some(cas) = body.pointer("/options/cas").and_then(Value::as_u64)
        && cas as usize != secret.versions.len()
    {
        return (
            400,
            Some(json!({"errors": ["check-and-set parameter did not match the current version"]})),
        );
    }
    secret.versions.push(Some(data.clone()));
    let version = secret.versions.len();
    (
        200,
        Some(json!({
            "request_id": "11111111-2222-3333-4444-555555555555",
            "lease_id": "",
            "renewable": false,
            "lease_duration": 0,
            "data": metadata(version, false),
            "wrap_info": null,
            "warnings": null,
            "auth": null
        })),
    )
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}
