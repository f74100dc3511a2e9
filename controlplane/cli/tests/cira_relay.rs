//! The redirection relay end to end: `rampart up` with the HTTPS front and the CIRA port, a
//! simulated AMT device over real TLS whose port 16994 runs AMT's redirection service (digest
//! challenge, then an echo standing in for SOL, IDER or KVM), and a browser over real TLS and
//! WebSocket on `/relay/webrelay.ashx` with a token from `GET /api/v1/authorize/redirection`.
//!
//! The browser authenticates with credentials of its own; the relay replaces them with the
//! digest the control plane computes from the stored AMT password, so the device sees only
//! that, and the session then passes bytes through.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rampart_loadgen::amt::{Device, Setup};
use rampart_loadgen::amt_redir::{FAKE_USER, RedirBrowser};
use rampart_redir_proto::SessionType;
use rampart_ws_proto::{Decoder, DecoderLimits, Event, OpCode, encode_masked};
use serde_json::{Value, json};

mod common;

use common::cira::{Cira, T, admin_at};
use common::free_port;

const G1: &str = "12345678-9abc-def0-1122-334455667788";
const G2: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
const AMT_PW: &str = "Amt-P@ssw0rd-1";
const PROBE: &[u8] = b"\x28\x00\x00\x00\x01\x00\x00\x00\x05\x00hello";

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A browser's WebSocket over TLS to the front.
struct Ws {
    tls: Tls,
    dec: Decoder,
    rx: BytesMut,
}

impl Ws {
    /// Opens `path` with `protocol` as `Sec-WebSocket-Protocol`; the status line and the head.
    fn open(
        config: Arc<rustls::ClientConfig>,
        port: u16,
        path: &str,
        protocol: &str,
    ) -> (String, Option<Ws>) {
        let conn = rustls::ClientConnection::new(config, "localhost".try_into().unwrap()).unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        write!(
            tls,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n"
        )
        .unwrap();
        tls.flush().unwrap();
        let mut rx = BytesMut::new();
        let mut chunk = [0u8; 4096];
        while !rx.windows(4).any(|w| w == b"\r\n\r\n") {
            match tls.read(&mut chunk) {
                Ok(n) if n > 0 => rx.extend_from_slice(&chunk[..n]),
                _ => break,
            }
        }
        let end = rx
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(rx.len(), |p| p + 4);
        let head = String::from_utf8_lossy(&rx.split_to(end)).into_owned();
        if !head.starts_with("HTTP/1.1 101 ") {
            return (head, None);
        }
        let dec = Decoder::new(DecoderLimits {
            max_frame: 1 << 20,
            require_mask: false,
        });
        (head, Some(Ws { tls, dec, rx }))
    }

    fn send(&mut self, data: &[u8]) {
        let mut out = BytesMut::new();
        encode_masked(&mut out, OpCode::Binary, true, data, [7, 1, 7, 1]);
        self.tls.write_all(&out).unwrap();
        self.tls.flush().unwrap();
    }

    /// The next event: data bytes, or the close code (`Err`).
    fn recv(&mut self) -> Result<Vec<u8>, Option<u16>> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.dec.decode(&mut self.rx) {
                Ok(Some(Event::Data { bytes, .. })) if !bytes.is_empty() => {
                    return Ok(bytes.to_vec());
                }
                Ok(Some(Event::Close { code, .. })) => return Err(code),
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(_) => return Err(None),
            }
            match self.tls.read(&mut chunk) {
                Ok(n) if n > 0 => self.rx.extend_from_slice(&chunk[..n]),
                _ => return Err(None),
            }
        }
    }
}

fn relay_path(guid: &str, mode: &str) -> String {
    format!("/relay/webrelay.ashx?p=2&host={guid}&port=16994&tls=0&tls1only=0&mode={mode}")
}

/// A redirection token for `guid` (admin API).
fn token(c: &Cira, guid: &str) -> String {
    let (code, v) = admin_at(
        &c.admin_socket(),
        "GET",
        &format!("/api/v1/authorize/redirection/{guid}"),
        None,
    );
    assert_eq!(code, 200, "{v}");
    v["token"].as_str().unwrap().to_owned()
}

/// Serves `d` until `done` says so (or `client` ends); returns whether it did.
fn serve_while(d: &mut Device, until: impl Fn() -> bool, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !until() {
        assert!(Instant::now() < deadline, "the browser did not finish");
        if let Ok(Some(m)) = d.recv(Duration::from_millis(20)) {
            d.handle(m).unwrap();
        }
    }
}

fn connected_device(c: &Cira, guid: &str) -> Device {
    let pw = c.add_device(guid);
    let (code, body) = admin_at(
        &c.admin_socket(),
        "PUT",
        &format!("/api/v1/devices/{guid}/amt-password"),
        Some(&json!({ "password": AMT_PW }).to_string()),
    );
    assert_eq!(code, 204, "{body}");
    let mut d = c
        .device(guid, &pw, &[16992, 16994])
        .with_wsman("admin", AMT_PW);
    assert!(matches!(d.setup(0, T).unwrap(), Setup::Forwarding { .. }));
    c.wait_device(guid, "connected", |r| r["connectionStatus"] == true);
    d
}

/// What the browser thread saw.
struct Seen {
    head: String,
    authenticated: bool,
    echo: Vec<u8>,
    close: Option<u16>,
}

/// A browser session on another thread: handshake, authenticate, probe and read the echo, then
/// tell `ready` and wait for `go` before closing.
fn browser(
    c: &Cira,
    guid: &str,
    mode: &str,
    start: SessionType,
    token: String,
    ready: mpsc::Sender<()>,
    go: mpsc::Receiver<()>,
) -> JoinHandle<Seen> {
    let config = c.install.rustls_client();
    let port = c.install.ports[0];
    let path = relay_path(guid, mode);
    std::thread::spawn(move || {
        let (head, ws) = Ws::open(config, port, &path, &token);
        let mut seen = Seen {
            head,
            authenticated: false,
            echo: Vec::new(),
            close: None,
        };
        let Some(mut ws) = ws else {
            let _ = ready.send(());
            return seen;
        };
        let mut b = RedirBrowser::new();
        ws.send(&start.start_message());
        while !b.authenticated && !b.failed {
            match ws.recv() {
                Ok(data) => {
                    let reply = b.on_data(&data).unwrap();
                    if !reply.is_empty() {
                        ws.send(&reply);
                    }
                }
                Err(code) => {
                    seen.close = code;
                    let _ = ready.send(());
                    return seen;
                }
            }
        }
        seen.authenticated = b.authenticated;
        ws.send(PROBE);
        let mut echo = b.received_after_auth.clone();
        while echo.len() < PROBE.len() {
            match ws.recv() {
                Ok(data) => echo.extend_from_slice(&data),
                Err(code) => {
                    seen.close = code;
                    break;
                }
            }
        }
        seen.echo = echo;
        let _ = ready.send(());
        let _ = go.recv_timeout(Duration::from_secs(30));
        // The browser leaves: a Close frame, then the relay answers and ends.
        let mut out = BytesMut::new();
        rampart_ws_proto::encode_close_masked(&mut out, 1000, "", [1, 2, 3, 4]);
        let _ = ws.tls.write_all(&out);
        let _ = ws.tls.flush();
        if let Err(code) = ws.recv() {
            seen.close = code;
        }
        seen
    })
}

fn redirect_status(c: &Cira, guid: &str) -> Value {
    let (code, v) = admin_at(
        &c.admin_socket(),
        "GET",
        &format!("/api/v1/devices/redirectstatus/{guid}"),
        None,
    );
    assert_eq!(code, 200, "{v}");
    v
}

#[test]
fn a_browser_relays_sol_to_the_device_with_the_digest_injected() {
    let c = Cira::start_with("", "", "", free_port());
    let mut d = connected_device(&c, G1);
    let tok = token(&c, G1);
    let (ready_tx, ready_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel();
    let b = browser(
        &c,
        G1,
        "sol",
        SessionType::Sol,
        tok.clone(),
        ready_tx,
        go_rx,
    );
    let ready = std::cell::Cell::new(false);
    serve_while(
        &mut d,
        || {
            if ready_rx.try_recv().is_ok() {
                ready.set(true);
            }
            ready.get()
        },
        Duration::from_secs(60),
    );
    // While the session is open: it shows, and a second SOL session is refused.
    assert_eq!(redirect_status(&c, G1)["isSOLConnected"], true);
    assert_eq!(redirect_status(&c, G1)["isKVMConnected"], false);
    let (head, ws) = Ws::open(
        c.install.rustls_client(),
        c.install.ports[0],
        &relay_path(G1, "sol"),
        &token(&c, G1),
    );
    assert!(ws.is_none() && head.starts_with("HTTP/1.1 409 "), "{head}");
    // The spent token does not open another.
    let (head, _) = Ws::open(
        c.install.rustls_client(),
        c.install.ports[0],
        &relay_path(G1, "kvm"),
        &tok,
    );
    assert!(head.starts_with("HTTP/1.1 401 "), "{head}");
    go_tx.send(()).unwrap();
    serve_while(&mut d, || b.is_finished(), Duration::from_secs(30));
    let seen = b.join().unwrap();
    assert!(seen.head.starts_with("HTTP/1.1 101 "), "{}", seen.head);
    assert!(
        seen.head
            .contains(&format!("Sec-WebSocket-Protocol: {tok}")),
        "{}",
        seen.head
    );
    assert!(seen.authenticated, "{}", c.log());
    assert_eq!(seen.echo, PROBE);
    assert_eq!(seen.close, Some(1000));
    // The device saw the relay's digest for the AMT account, never the browser's user.
    let saw: Vec<u8> = d.received.values().flatten().copied().collect();
    let has = |needle: &[u8]| saw.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"/RedirectionService"));
    assert!(
        !has(FAKE_USER.as_bytes()),
        "the browser's credentials reached the device"
    );
    assert!(!c.log().contains(AMT_PW));
    // The session ended: the mode is free, and open and close are audited.
    let deadline = Instant::now() + T;
    while redirect_status(&c, G1)["isSOLConnected"] != false {
        assert!(Instant::now() < deadline, "SOL still marked open");
        std::thread::sleep(Duration::from_millis(50));
    }
    c.wait_audit(|r| r["action"] == "relay.open" && r["outcome"] == "success" && r["object"] == G1);
    c.wait_audit(|r| r["action"] == "relay.close" && r["object"] == G1);
    c.wait_audit(|r| r["action"] == "relay.authorize" && r["object"] == G1);
    // The tunnel is still up.
    assert_eq!(d.keepalive(5, T).unwrap(), 5);
}

#[test]
fn the_relay_refuses_bad_tokens_other_devices_and_another_mode() {
    let c = Cira::start_with("", "", "", free_port());
    let mut d = connected_device(&c, G1);
    let port = c.install.ports[0];
    let open = |path: &str, proto: &str| Ws::open(c.install.rustls_client(), port, path, proto).0;
    // No token, a forged one, one for another device, a bad query.
    let forged = "rdr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert!(open(&relay_path(G1, "sol"), forged).starts_with("HTTP/1.1 401 "));
    let _ = c.add_device(G2);
    let other = token(&c, G2);
    assert!(open(&relay_path(G1, "sol"), &other).starts_with("HTTP/1.1 401 "));
    let tok = token(&c, G1);
    assert!(open(&relay_path(G1, "rdp"), &tok).starts_with("HTTP/1.1 400 "));
    assert!(
        open(
            &format!("/relay/webrelay.ashx?p=2&host={G1}&port=16992&mode=sol"),
            &tok
        )
        .starts_with("HTTP/1.1 400 ")
    );
    // A malformed token is refused without asking the control plane.
    assert!(open(&relay_path(G1, "sol"), "not-a-token").starts_with("HTTP/1.1 401 "));
    // A device without an AMT password, then one without a tunnel.
    let t2 = token(&c, G2);
    assert!(open(&relay_path(G2, "sol"), &t2).starts_with("HTTP/1.1 409 "));
    let (code, _) = admin_at(
        &c.admin_socket(),
        "PUT",
        &format!("/api/v1/devices/{G2}/amt-password"),
        Some(&json!({ "password": AMT_PW }).to_string()),
    );
    assert_eq!(code, 204);
    let t2 = token(&c, G2);
    assert!(open(&relay_path(G2, "sol"), &t2).starts_with("HTTP/1.1 404 "));
    // A token for SOL used to start KVM: the relay ends the session with 1008.
    let (ready_tx, ready_rx) = mpsc::channel();
    let (_go_tx, go_rx) = mpsc::channel();
    let b = browser(&c, G1, "sol", SessionType::Kvm, tok, ready_tx, go_rx);
    serve_while(&mut d, || b.is_finished(), Duration::from_secs(30));
    drop(ready_rx);
    let seen = b.join().unwrap();
    assert!(seen.head.starts_with("HTTP/1.1 101 "), "{}", seen.head);
    assert!(!seen.authenticated);
    assert_eq!(seen.close, Some(1008));
    let saw: Vec<u8> = d.received.values().flatten().copied().collect();
    assert!(
        !saw.windows(4).any(|w| w == b"KVMR"),
        "the KVM start reached the device"
    );
    // Guessing tokens from one address is throttled like failed logins.
    let statuses: Vec<String> = (0..8)
        .map(|_| open(&relay_path(G1, "sol"), forged)[9..12].to_owned())
        .collect();
    assert!(statuses.iter().any(|s| s == "429"), "{statuses:?}");
}
