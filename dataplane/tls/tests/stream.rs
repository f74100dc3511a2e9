//! TlsStream against a real rustls client over loopback TCP, with rcgen P-384 fixtures.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use rampart_deadline::{StageClock, StageLimit, Timeout};
use rampart_tls::{CertPaths, ConnError, IoLimits, ReloadableCert, TlsStream, server_config};
use rustls::pki_types::{CertificateDer, ServerName};

struct Pki {
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
}

impl Pki {
    fn new() -> Self {
        let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "test ca");
        let ca = params.self_signed(&ca_key).unwrap();
        Self { ca, ca_key }
    }

    /// Writes a leaf for `localhost` with the given serial into dir/{name}.pem/.key.
    fn leaf(&self, dir: &Path, name: &str, serial: u64) -> CertPaths {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.serial_number = Some(rcgen::SerialNumber::from(serial));
        let issuer = rcgen::Issuer::from_ca_cert_der(self.ca.der(), &self.ca_key).unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        let paths = CertPaths {
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&paths.cert, cert.pem()).unwrap();
        std::fs::write(&paths.key, key.serialize_pem()).unwrap();
        paths
    }

    fn client(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
        )
    }
}

fn limits(handshake: u64, stall: u64) -> IoLimits {
    IoLimits {
        handshake: StageLimit::fixed(Duration::from_secs(handshake)),
        write_stall: Duration::from_secs(stall),
    }
}

type Outcome = Result<String, String>;

/// Serves `conns` connections on a compio runtime in a thread; each connection is handled by
/// `serve`, whose result string is sent back on the returned channel.
fn server<F, Fut>(
    cert: Arc<ReloadableCert>,
    limits: IoLimits,
    conns: usize,
    serve: F,
) -> (SocketAddr, mpsc::Receiver<Outcome>)
where
    F: Fn(TlsStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Outcome> + 'static,
{
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = std_listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let rt = compio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let listener = compio::net::TcpListener::from_std(std_listener).unwrap();
            let serve = Arc::new(serve);
            for _ in 0..conns {
                let (tcp, _) = listener.accept().await.unwrap();
                let config = server_config(cert.clone(), &[]).unwrap();
                let tx = tx.clone();
                let serve = serve.clone();
                compio::runtime::spawn(async move {
                    let out = match TlsStream::accept(tcp, config, limits).await {
                        Ok(s) => serve(s).await,
                        Err(e) => Err(e.kind().to_owned()),
                    };
                    let _ = tx.send(out);
                })
                .detach();
            }
            // Keep serving spawned connections until the test ends.
            compio::time::sleep(Duration::from_secs(60)).await;
        });
    });
    (addr, rx)
}

/// Echoes one line-free chunk at a time until EOF.
async fn echo(mut s: TlsStream) -> Outcome {
    let mut buf = Vec::new();
    loop {
        let mut clock =
            StageClock::start(StageLimit::fixed(Duration::from_secs(10)), Instant::now());
        buf.clear();
        match s.read(&mut buf, &mut clock, Timeout::Stage("test")).await {
            Ok(0) => return Ok(format!("{:?}", s.protocol_version())),
            Ok(_) => s.write_all(&buf).await.map_err(|e| e.kind().to_owned())?,
            Err(e) => return Err(e.kind().to_owned()),
        }
    }
}

fn connect(
    addr: SocketAddr,
    client: Arc<rustls::ClientConfig>,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let conn =
        rustls::ClientConnection::new(client, ServerName::try_from("localhost").unwrap()).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

fn roundtrip(s: &mut rustls::StreamOwned<rustls::ClientConnection, TcpStream>, msg: &[u8]) {
    s.write_all(msg).unwrap();
    let mut got = vec![0; msg.len()];
    s.read_exact(&mut got).unwrap();
    assert_eq!(got, msg);
}

fn peer_serial(s: &rustls::StreamOwned<rustls::ClientConnection, TcpStream>) -> Vec<u8> {
    let certs: &[CertificateDer<'_>] = s.conn.peer_certificates().unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&certs[0]).unwrap();
    cert.raw_serial().to_vec()
}

#[test]
fn tls13_and_tls12_echo() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let cert = Arc::new(ReloadableCert::load(pki.leaf(dir.path(), "svc", 1)).unwrap());
    let (addr, rx) = server(cert, limits(5, 5), 2, echo);

    let mut c13 = connect(addr, pki.client(&[&rustls::version::TLS13]));
    roundtrip(&mut c13, b"hello 1.3");
    assert_eq!(
        c13.conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    c13.conn.send_close_notify();
    c13.flush().unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        Ok("Some(TLSv1_3)".into())
    );

    let mut c12 = connect(addr, pki.client(&[&rustls::version::TLS12]));
    roundtrip(&mut c12, b"hello 1.2");
    let suite = c12.conn.negotiated_cipher_suite().unwrap().suite();
    assert!(format!("{suite:?}").contains("ECDHE"), "{suite:?}");
    drop(c12);
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        Ok("Some(TLSv1_2)".into())
    );
}

#[test]
fn silent_client_hits_the_handshake_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let cert = Arc::new(ReloadableCert::load(pki.leaf(dir.path(), "svc", 1)).unwrap());
    let (addr, rx) = server(cert, limits(1, 5), 1, echo);
    let start = Instant::now();
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The server closes; our read sees EOF well before our own 10 s timeout.
    let mut buf = [0u8; 16];
    assert_eq!(tcp.read(&mut buf).unwrap(), 0);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)).unwrap(),
        Err("timeout_handshake".into())
    );
}

#[test]
fn garbage_instead_of_client_hello_is_a_tls_error() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let cert = Arc::new(ReloadableCert::load(pki.leaf(dir.path(), "svc", 1)).unwrap());
    let (addr, rx) = server(cert, limits(5, 5), 1, echo);
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)).unwrap(),
        Err("tls_error".into())
    );
}

#[test]
fn reload_swaps_the_certificate_for_new_connections_only() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let paths = pki.leaf(dir.path(), "svc", 1111);
    let cert = Arc::new(ReloadableCert::load(paths.clone()).unwrap());
    let (addr, _rx) = server(cert.clone(), limits(5, 5), 3, echo);
    let client = pki.client(&[&rustls::version::TLS13]);

    let mut old = connect(addr, client.clone());
    roundtrip(&mut old, b"before");
    assert_eq!(peer_serial(&old), 1111u16.to_be_bytes());

    // New files in place, then the SIGHUP path.
    let fresh = pki.leaf(dir.path(), "next", 2222);
    std::fs::rename(&fresh.cert, &paths.cert).unwrap();
    std::fs::rename(&fresh.key, &paths.key).unwrap();
    cert.reload().unwrap();

    let mut new = connect(addr, client.clone());
    roundtrip(&mut new, b"after");
    assert_eq!(peer_serial(&new), 2222u16.to_be_bytes());
    // The connection from before the reload is still alive.
    roundtrip(&mut old, b"still here");

    // A broken reload (key of another cert) keeps the current certificate in service.
    let other = pki.leaf(dir.path(), "other", 3333);
    std::fs::copy(&other.key, &paths.key).unwrap();
    let err = cert.reload().unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    let mut third = connect(addr, client);
    roundtrip(&mut third, b"kept");
    assert_eq!(peer_serial(&third), 2222u16.to_be_bytes());
}

#[test]
fn mismatched_key_is_rejected_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let a = pki.leaf(dir.path(), "a", 1);
    let b = pki.leaf(dir.path(), "b", 2);
    let err = ReloadableCert::load(CertPaths {
        cert: a.cert,
        key: b.key,
    })
    .unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    let err = ReloadableCert::load(CertPaths {
        cert: dir.path().join("missing.pem"),
        key: a.key,
    })
    .unwrap_err();
    assert!(err.to_string().contains("missing.pem"), "{err}");
}

#[test]
fn reader_that_stops_reading_hits_the_write_stall_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let cert = Arc::new(ReloadableCert::load(pki.leaf(dir.path(), "svc", 1)).unwrap());
    let (addr, rx) = server(cert, limits(5, 1), 1, |mut s: TlsStream| async move {
        let chunk = vec![0x5a; 1 << 20];
        let start = Instant::now();
        for _ in 0..256 {
            if let Err(e) = s.write_all(&chunk).await {
                return match e {
                    ConnError::Timeout(Timeout::WriteStall) => {
                        Ok(format!("stalled after {:?}", start.elapsed()))
                    }
                    other => Err(other.kind().to_owned()),
                };
            }
        }
        Err("wrote 256 MiB to a client that never reads".to_owned())
    });
    let mut c = connect(addr, pki.client(&[&rustls::version::TLS13]));
    // Finish the handshake, then stop reading.
    c.write_all(b"x").unwrap();
    c.flush().unwrap();
    let out = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(
        out.as_deref().is_ok_and(|s| s.starts_with("stalled")),
        "{out:?}"
    );
    drop(c);
}

#[test]
fn bytes_after_close_notify_do_not_spin_the_core() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let cert = Arc::new(ReloadableCert::load(pki.leaf(dir.path(), "svc", 1)).unwrap());
    let (addr, rx) = server(cert, limits(5, 5), 1, echo);
    let mut c = connect(addr, pki.client(&[&rustls::version::TLS13]));
    roundtrip(&mut c, b"hi");
    // close_notify and trailing garbage in one TCP segment.
    c.conn.send_close_notify();
    let mut wire = Vec::new();
    while c.conn.wants_write() {
        c.conn.write_tls(&mut wire).unwrap();
    }
    // More than one socket read and more than rustls buffers at once.
    wire.extend_from_slice(&[0x17; 64 * 1024]);
    c.sock.write_all(&wire).unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)).unwrap(),
        Ok("Some(TLSv1_3)".into())
    );
}

/// The duplex halves: the writer sends 1 MiB in many small staged chunks while the reader
/// takes what the client sends at the same time; both directions arrive whole and in order.
#[test]
fn duplex_halves_read_and_write_at_once() {
    const OUT: usize = 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let cert = Arc::new(ReloadableCert::load(pki.leaf(dir.path(), "svc", 1)).unwrap());
    let (addr, rx) = server(cert, limits(5, 5), 1, |s: TlsStream| async move {
        let (mut reader, mut writer) = s.into_duplex();
        let write = async move {
            let chunk: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
            let mut sent = 0;
            while sent < OUT {
                let n = chunk.len().min(OUT - sent);
                writer.stage(&chunk[..n]).map_err(|e| e.kind().to_owned())?;
                sent += n;
                if sent % (64 * 1000) == 0 {
                    writer.flush().await.map_err(|e| e.kind().to_owned())?;
                }
            }
            writer.flush().await.map_err(|e| e.kind().to_owned())?;
            Ok::<_, String>(writer)
        };
        let read = async move {
            let mut got = bytes::BytesMut::new();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match reader
                    .read(&mut got, Some(deadline), Timeout::Stage("test"))
                    .await
                {
                    Ok(0) => return Ok::<_, String>(got.len()),
                    Ok(_) => {}
                    Err(e) => return Err(e.kind().to_owned()),
                }
            }
        };
        let (w, r) = futures_util::future::join(write, read).await;
        let writer = w?;
        writer.shutdown(Duration::from_secs(1)).await;
        Ok(format!("read {}", r?))
    });
    let mut c = connect(addr, pki.client(&[&rustls::version::TLS13]));
    let sent = vec![b'x'; 300_000];
    c.write_all(&sent).unwrap();
    c.conn.send_close_notify();
    c.flush().unwrap();
    let mut got = Vec::new();
    let _ = c.read_to_end(&mut got);
    assert_eq!(got.len(), OUT);
    let expect: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    assert!(got.chunks(1000).all(|c| c == &expect[..c.len()]));
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        Ok("read 300000".into())
    );
}

/// What `docs/architecture.md` says of the send path: staged writes are sealed into full 16 KiB
/// TLS records, not one record per write. The client completes the handshake, then reads the
/// raw TCP bytes and counts the records by their headers.
#[test]
fn staged_writes_are_sealed_one_record_per_16_kib() {
    const PIECES: usize = 100;
    const PIECE: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let cert = Arc::new(ReloadableCert::load(pki.leaf(dir.path(), "svc", 1)).unwrap());
    let (addr, rx) = server(cert, limits(5, 5), 1, |s: TlsStream| async move {
        let (mut reader, mut writer) = s.into_duplex();
        // Wait for the client's go (it has finished the handshake by then).
        let mut go = bytes::BytesMut::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        reader
            .read(&mut go, Some(deadline), Timeout::Stage("test"))
            .await
            .map_err(|e| e.kind().to_owned())?;
        let piece = vec![b'r'; PIECE];
        for _ in 0..PIECES {
            writer.stage(&piece).map_err(|e| e.kind().to_owned())?;
        }
        writer.flush().await.map_err(|e| e.kind().to_owned())?;
        writer.shutdown(Duration::from_secs(1)).await;
        Ok("sent".to_owned())
    });
    let mut c = connect(addr, pki.client(&[&rustls::version::TLS13]));
    c.write_all(b"go").unwrap();
    c.flush().unwrap();
    // From here on the raw socket: rustls has nothing buffered that matters to the count
    // (session tickets, if any, are small records and counted apart below).
    let mut raw = Vec::new();
    let _ = c.sock.read_to_end(&mut raw);
    let mut lengths = Vec::new();
    let mut at = 0;
    while at + 5 <= raw.len() {
        assert_eq!(raw[at], 0x17, "not an application_data record at {at}");
        let len = usize::from(u16::from_be_bytes([raw[at + 3], raw[at + 4]]));
        lengths.push(len);
        at += 5 + len;
    }
    // 16 KiB of plaintext, its content type byte and the 16-byte AEAD tag.
    let full = 16 * 1024 + 1 + 16;
    let data = PIECES * PIECE;
    let full_records = lengths.iter().filter(|l| **l == full).count();
    assert_eq!(full_records, data / (16 * 1024), "{lengths:?}");
    // The rest: one short record with the remainder, close_notify and any session tickets;
    // never one record per staged write.
    assert!(lengths.len() - full_records <= 5, "{lengths:?}");
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        Ok("sent".into())
    );
}

/// A client may send its Finished, its first data and close_notify in one flight (a
/// fire-and-forget publisher, `echo ... | openssl s_client`). That is a finished handshake:
/// the data is read, then the end.
#[test]
fn finished_data_and_close_notify_in_one_write() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let cert = Arc::new(ReloadableCert::load(pki.leaf(dir.path(), "svc", 1)).unwrap());
    let (addr, rx) = server(cert, limits(5, 5), 1, |mut s: TlsStream| async move {
        let mut got = Vec::new();
        loop {
            let mut clock =
                StageClock::start(StageLimit::fixed(Duration::from_secs(5)), Instant::now());
            match s.read(&mut got, &mut clock, Timeout::Stage("test")).await {
                Ok(0) => return Ok(String::from_utf8_lossy(&got).into_owned()),
                Ok(_) => {}
                Err(e) => return Err(e.kind().to_owned()),
            }
        }
    });
    let name = ServerName::try_from("localhost").unwrap();
    let mut conn =
        rustls::ClientConnection::new(pki.client(&[&rustls::version::TLS13]), name).unwrap();
    let mut sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    while conn.wants_write() {
        conn.write_tls(&mut sock).unwrap();
    }
    while conn.is_handshaking() {
        conn.read_tls(&mut sock).unwrap();
        conn.process_new_packets().unwrap();
    }
    conn.writer().write_all(b"early words").unwrap();
    conn.send_close_notify();
    let mut wire = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut wire).unwrap();
    }
    sock.write_all(&wire).unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        Ok("early words".into())
    );
}
