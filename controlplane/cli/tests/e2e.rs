//! The `rampart` binary end to end: init, up, TLS on every port checked with the real `openssl`
//! CLI, deadlines observed by real clients, signals, and refusals.
//!
//! Every test runs its own Rampart on loopback ports of its own, in a temporary data dir.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{BIN, Install, text};

fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    text(&out)
}

fn s_client(port: u16, ca: &Path, extra: &[&str]) -> String {
    let connect = format!("127.0.0.1:{port}");
    let mut args = vec![
        "s_client",
        "-connect",
        &connect,
        "-servername",
        "localhost",
        "-CAfile",
        ca.to_str().unwrap(),
        "-verify_return_error",
        "-showcerts",
    ];
    args.extend_from_slice(extra);
    openssl(&args)
}

#[test]
fn up_serves_tls13_with_p384_chain_on_every_port_and_stops_on_sigterm() {
    let install = Install::new();
    let up = install.start("up");
    for port in install.open_ports() {
        let out = s_client(port, &install.ca(), &["-tls1_3"]);
        assert!(
            out.contains("Protocol  : TLSv1.3") || out.contains("TLSv1.3, Cipher is"),
            "{port}: {out}"
        );
        assert!(out.contains("Verify return code: 0 (ok)"), "{port}: {out}");
        assert!(
            out.contains("Server public key is 384 bit"),
            "{port}: {out}"
        );
        assert!(out.contains("Peer signature type: ECDSA"), "{port}: {out}");
        // TLS 1.2 is offered with ECDHE only; static-RSA suites and TLS 1.1 are refused.
        let out = s_client(port, &install.ca(), &["-tls1_2"]);
        assert!(out.contains("Cipher is ECDHE-ECDSA-"), "{port}: {out}");
        let out = s_client(
            port,
            &install.ca(),
            &["-tls1_2", "-cipher", "AES256-GCM-SHA384"],
        );
        assert!(
            out.contains("Cipher is (NONE)") && out.contains("alert"),
            "{port}: {out}"
        );
        let out = s_client(
            port,
            &install.ca(),
            &["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"],
        );
        assert!(
            out.contains("Cipher is (NONE)") && out.contains("alert"),
            "{port}: {out}"
        );
    }
    // The served certificates chain to the generated CA and carry the guide's parameters.
    for svc in ["https", "mqtt", "cira"] {
        let cert = install.secrets().join(format!("certs/{svc}.pem"));
        let out = openssl(&[
            "verify",
            "-CAfile",
            install.ca().to_str().unwrap(),
            cert.to_str().unwrap(),
        ]);
        assert!(out.contains(": OK"), "{out}");
        let out = openssl(&["x509", "-in", cert.to_str().unwrap(), "-noout", "-text"]);
        assert!(out.contains("ecdsa-with-SHA384"), "{out}");
        assert!(
            out.contains("DNS:localhost") && out.contains("IP Address:127.0.0.1"),
            "{out}"
        );
    }
    let log = up.stop();
    assert!(log.contains("Control link up."), "{log}");
    assert!(log.contains("Data plane connected."), "{log}");
    assert!(log.contains("Data plane stopped."), "{log}");
    assert!(log.contains("Control plane stopped."), "{log}");
    assert!(!install.dir.path().join("var/run/control.sock").exists());
}

fn wait_for_eof(tcp: &mut TcpStream, limit: Duration) -> Duration {
    let start = Instant::now();
    tcp.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) => return start.elapsed(),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return start.elapsed(),
            // A signal for another part of the test process (a child exiting): read again.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("no close within {limit:?}: {e}"),
        }
    }
}

#[test]
fn silent_client_is_closed_by_the_handshake_deadline_on_both_drivers() {
    for driver in ["io_uring", "poll"] {
        let hs = "request_read_timeout = \"handshake=2\"";
        let install = Install::with(&format!("driver = \"{driver}\""), [hs, hs, hs]);
        let dp = install.start("dataplane");
        for port in install.open_ports() {
            let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let took = wait_for_eof(&mut tcp, Duration::from_secs(10));
            assert!(
                took >= Duration::from_millis(1800) && took < Duration::from_secs(4),
                "{driver} port {port}: closed after {took:?}"
            );
        }
        let log = dp.stop();
        assert!(
            log.contains(&format!("driver=\"{driver}\""))
                || log.contains(&format!("driver={driver}")),
            "{log}"
        );
        assert!(log.contains("https.timeout_handshake=1"), "{log}");
        assert!(log.contains("mqtt.timeout_handshake=1"), "{log}");
        assert!(log.contains("cira.timeout_handshake=1"), "{log}");
    }
}

/// Opens TLS to the HTTPS port and sends `chunk` bytes every `every` until the server closes;
/// returns how long after the handshake the server closed.
fn trickle(install: &Install, port: u16, chunk: usize, every: Duration) -> Duration {
    let conn =
        rustls::ClientConnection::new(install.rustls_client(), "localhost".try_into().unwrap())
            .unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).unwrap();
    }
    tls.sock
        .set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    let start = Instant::now();
    let payload = vec![b'a'; chunk];
    loop {
        assert!(start.elapsed() < Duration::from_secs(30), "never closed");
        if tls.write_all(&payload).and_then(|_| tls.flush()).is_err() {
            return start.elapsed();
        }
        // Large enough for the whole 408 answer in one read: the close is what is timed.
        let mut buf = [0u8; 16384];
        match tls.read(&mut buf) {
            Ok(0) => return start.elapsed(),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return start.elapsed(),
        }
        std::thread::sleep(every);
    }
}

#[test]
fn header_stage_follows_mod_reqtimeout_after_tls() {
    let install = Install::with(
        "",
        [
            "request_read_timeout = \"handshake=5 header=2-4,MinRate=500\"",
            "off",
            "off",
        ],
    );
    let port = install.ports[0];
    let dp = install.start("dataplane");
    // Below MinRate (10 bytes every 200 ms = 50 B/s): each byte buys 2 ms, so the stage ends
    // shortly after T = 2 s, long before the cap.
    let slow = trickle(&install, port, 10, Duration::from_millis(200));
    assert!(
        slow >= Duration::from_millis(1800) && slow < Duration::from_millis(3300),
        "below MinRate closed after {slow:?}"
    );
    // Above MinRate (200 bytes every 100 ms = 2000 B/s, TLS overhead on top): the deadline keeps
    // moving until the hard cap MAX = 4 s.
    let fast = trickle(&install, port, 200, Duration::from_millis(100));
    assert!(
        fast >= Duration::from_millis(3800) && fast < Duration::from_millis(5500),
        "above MinRate closed after {fast:?}"
    );
    let log = dp.stop();
    assert!(log.contains("https.timeout_stage=2"), "{log}");
}

#[test]
fn sighup_reloads_certificates_without_dropping_live_connections() {
    let install = Install::with("", ["request_read_timeout = \"header=60\"", "off", "off"]);
    let port = install.ports[0];
    let up = install.start("up");
    let serial = |out: &str| {
        let pem_start = out.find("-----BEGIN CERTIFICATE-----").unwrap();
        let pem_end = out.find("-----END CERTIFICATE-----").unwrap() + 25;
        let (_, pem) =
            x509_parser::pem::parse_x509_pem(&out.as_bytes()[pem_start..pem_end]).unwrap();
        pem.parse_x509().unwrap().raw_serial().to_vec()
    };
    let before = serial(&s_client(port, &install.ca(), &[]));

    // A live connection from before the reload.
    let conn =
        rustls::ClientConnection::new(install.rustls_client(), "localhost".try_into().unwrap())
            .unwrap();
    let mut live = rustls::StreamOwned::new(conn, TcpStream::connect(("127.0.0.1", port)).unwrap());
    live.write_all(b"GET").unwrap();
    live.flush().unwrap();

    // New certificates (a whole new chain), then SIGHUP to `rampart up`.
    let out = install.run(&["init", "--force", "--ip-san", "127.0.0.1"]);
    assert!(out.status.success(), "{}", text(&out));
    up.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let s = serial(&s_client(port, &install.ca(), &[]));
        if s != before {
            break s;
        }
        assert!(Instant::now() < deadline, "certificate never changed");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_ne!(before, after);
    // The old connection is still open: writing works and the server has not closed it.
    live.write_all(b" / HTTP/1.1\r\n").unwrap();
    live.flush().unwrap();
    live.sock
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 16];
    match live.read(&mut buf) {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        other => panic!("live connection was closed by the reload: {other:?}"),
    }
    let log = up.stop();
    assert!(log.contains("Passing SIGHUP on."), "{log}");
    assert!(log.contains("Certificate reloaded."), "{log}");
}

#[test]
fn bad_config_exits_2_and_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (toml, key) in [
        ("[dataplane]\ncorez = 4\n", "corez"),
        (
            "[dataplane.https]\nrequest_read_timeout = \"handshake=0\"\n",
            "dataplane.https.request_read_timeout",
        ),
        (
            "[dataplane.mqtt]\nrequest_read_timeout = \"connect=5-3,MinRate=10\"\n",
            "dataplane.mqtt.request_read_timeout",
        ),
        ("[dataplane]\ndriver = \"epoll\"\n", "dataplane.driver"),
        (
            "[dataplane.cira]\nlisten = \"4433\"\n",
            "dataplane.cira.listen",
        ),
        (
            "[dataplane]\nmax_connections_per_core = 0\n",
            "dataplane.max_connections_per_core",
        ),
        ("this is not toml", "rampart.toml"),
    ] {
        let path = dir.path().join("rampart.toml");
        std::fs::write(&path, toml).unwrap();
        for cmd in ["up", "dataplane", "controlplane"] {
            let out = Command::new(BIN)
                .args([cmd, "--config"])
                .arg(&path)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let msg = text(&out);
            assert_eq!(out.status.code(), Some(2), "{cmd} {toml:?}: {msg}");
            assert!(msg.contains(key), "{cmd} {toml:?}: {msg}");
        }
    }
}

#[test]
fn up_refuses_a_secrets_dir_readable_by_others_and_a_missing_init() {
    let install = Install::new();
    std::fs::set_permissions(install.secrets(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = install.run(&["up"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("refusing to start"), "{}", text(&out));
    assert!(text(&out).contains("755"), "{}", text(&out));
    std::fs::set_permissions(install.secrets(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let key = install.secrets().join("certs/https.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = install.run(&["up"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("https.key"), "{}", text(&out));

    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("up")
        .current_dir(empty.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("rampart init") || text(&out).contains("missing"),
        "{}",
        text(&out)
    );
}

#[test]
fn init_prints_the_admin_password_once_and_keeps_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .current_dir(dir.path())
            .env("DBPASS", "from-the-environment")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let first = run(&["init"]);
    assert!(first.status.success(), "{}", text(&first));
    let out = text(&first);
    let line = out.lines().find(|l| l.starts_with("Password")).expect(&out);
    let password = line.rsplit(' ').next().unwrap();
    assert!(password.len() >= 20, "{line}");
    let secrets = dir.path().join("var/secrets");
    let hash = std::fs::read_to_string(secrets.join("admin.argon2")).unwrap();
    assert!(hash.starts_with("$argon2id$") && !hash.contains(password));
    assert_eq!(
        std::fs::read_to_string(secrets.join("dbpass"))
            .unwrap()
            .trim(),
        "from-the-environment"
    );
    let ca_before = std::fs::read(secrets.join("ca/ca.pem")).unwrap();

    let second = run(&["init"]);
    assert!(second.status.success(), "{}", text(&second));
    let out = text(&second);
    assert!(
        !out.contains(password) && !out.lines().any(|l| l.starts_with("Password")),
        "{out}"
    );
    assert!(out.contains("kept"), "{out}");
    assert_eq!(std::fs::read(secrets.join("ca/ca.pem")).unwrap(), ca_before);

    // Secrets never go to the command line; the admin password is not in any file.
    for entry in walk(&secrets) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(password),
            "{}",
            entry.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn csr_mode_then_certs_install_serves_the_external_chain() {
    let install = Install::new();
    // Start over in CSR mode.
    let out = install.run(&["init", "--force", "--csr", "--ip-san", "127.0.0.1"]);
    assert!(out.status.success(), "{}", text(&out));
    let certs = install.secrets().join("certs");
    let ext = install.dir.path().join("external");
    std::fs::create_dir(&ext).unwrap();
    let e = |p: &str| ext.join(p).to_str().unwrap().to_owned();
    // A real external CA made with openssl.
    let out = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-384",
        "-nodes",
        "-keyout",
        &e("ca.key"),
        "-out",
        &e("ca.pem"),
        "-days",
        "30",
        "-subj",
        "/CN=External CA",
    ]);
    assert!(std::path::Path::new(&e("ca.pem")).exists(), "{out}");
    std::fs::write(ext.join("ext.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n").unwrap();
    let mut signed = Vec::new();
    for svc in ["https", "mqtt", "cira", "controlplane"] {
        let csr = certs.join(format!("{svc}.csr"));
        let verify = openssl(&["req", "-verify", "-noout", "-in", csr.to_str().unwrap()]);
        assert!(
            verify.contains("verify OK")
                || verify.contains("Certificate request self-signature verify OK"),
            "{verify}"
        );
        let out_path = e(&format!("{svc}-signed.pem"));
        let out = openssl(&[
            "x509",
            "-req",
            "-in",
            csr.to_str().unwrap(),
            "-CA",
            &e("ca.pem"),
            "-CAkey",
            &e("ca.key"),
            "-CAcreateserial",
            "-days",
            "30",
            "-sha384",
            "-extfile",
            &e("ext.cnf"),
            "-out",
            &out_path,
        ]);
        assert!(Path::new(&out_path).exists(), "{out}");
        signed.push(out_path);
    }
    let mut args = vec!["certs", "install", "--ca"];
    let ca = e("ca.pem");
    args.push(&ca);
    args.extend(signed.iter().map(String::as_str));
    let out = install.run(&args);
    assert!(out.status.success(), "{}", text(&out));
    let up = install.start("up");
    for port in install.open_ports() {
        let out = s_client(port, &ext.join("ca.pem"), &["-tls1_3"]);
        assert!(out.contains("Verify return code: 0 (ok)"), "{port}: {out}");
        assert!(out.contains("External CA"), "{port}: {out}");
    }
    up.stop();
}

#[test]
fn planes_die_with_a_killed_supervisor() {
    let install = Install::new();
    let up = install.start("up");
    let log = up.log_text();
    let pid_of = |key: &str| -> u32 {
        let at = log
            .find(key)
            .unwrap_or_else(|| panic!("{key} not in log:\n{log}"))
            + key.len();
        log[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (data, control) = (pid_of("dataplane_pid="), pid_of("controlplane_pid="));
    // SIGKILL leaves no chance to clean up; the planes must notice on their own.
    up.signal("KILL");
    let deadline = Instant::now() + Duration::from_secs(15);
    for pid in [data, control] {
        while Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z "))
        {
            assert!(
                Instant::now() < deadline,
                "pid {pid} outlived its supervisor"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    for port in install.open_ports() {
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still open"
        );
    }
}

#[test]
fn per_core_connection_cap_closes_new_connections_at_accept() {
    // Two cores, one connection each: of three connections, SO_REUSEPORT puts at least two on
    // one core (pigeonhole), so at least one is over the cap.
    let install = Install::with(
        "max_connections_per_core = 1",
        ["request_read_timeout = \"handshake=30\"", "off", "off"],
    );
    let port = install.ports[0];
    let dp = install.start("dataplane");
    // `start` probed the port; let those probe connections finish their handshake stage first.
    std::thread::sleep(Duration::from_millis(200));
    let held: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let mut closed = 0;
    for mut tcp in held.iter() {
        tcp.set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        let mut buf = [0u8; 8];
        match tcp.read(&mut buf) {
            Ok(0) => closed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => closed += 1,
            Ok(n) => panic!("unexpected {n} bytes"),
            Err(_) => {} // still open: within the cap, waiting in its handshake stage
        }
    }
    assert!((1..=2).contains(&closed), "closed at accept: {closed}");
    drop(held);
    let log = dp.stop();
    assert!(log.contains("https.rejected_at_cap="), "{log}");
}
