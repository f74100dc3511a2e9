//! `handshake` mode: full TLS handshakes, one connection after another per worker.
//!
//! Each operation: TCP connect, full handshake (resumption disabled on the client, so the
//! server pays ECDHE and its certificate signature every time), close_notify, TCP shutdown,
//! then wait (briefly) for the server's close so the socket ends with FIN rather than RST.
//! The latency is connect start to handshake complete (client Finished written).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use rustls::client::Resumption;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use serde_json::json;

use crate::cli::HandshakeArgs;
use crate::report::{Latency, Report};
use crate::rss::RssSampler;
use crate::runner::{self, Failure, Limits, Op};

/// The longest wait for the server's close after our close_notify.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Runs the mode and prints the summary.
pub(crate) fn run(args: &HandshakeArgs, command_line: Vec<String>) -> anyhow::Result<()> {
    let target = args.run.target;
    let config = client_config(&args.tls.ca, args.tls.tls12)?;
    let name = ServerName::try_from(args.tls.server_name.clone()).map_err(|_| {
        anyhow::anyhow!(
            "--server-name `{}` is not a valid DNS name or IP address",
            args.tls.server_name
        )
    })?;
    let rss = args.run.sample_rss_pid.map(RssSampler::start).transpose()?;
    // Fail before the run, not after it, if the report cannot be written.
    let json_file = args
        .run
        .json
        .as_deref()
        .map(|path| {
            File::create(path).with_context(|| format!("cannot create --json {}", path.display()))
        })
        .transpose()?;

    let new_op = || HandshakeOp {
        target,
        config: config.clone(),
        name: name.clone(),
        connect_timeout: args.run.connect_timeout,
        timeout: args.run.timeout,
        drain: vec![0; 4096],
        unclean_closes: 0,
    };

    // One handshake first, so a wrong target, CA or name is a clear error, not N thousand.
    let negotiated = match new_op().probe() {
        Ok(negotiated) => negotiated,
        Err(failure) => {
            // Leave no empty report behind.
            if let Some(path) = &args.run.json {
                let _ = std::fs::remove_file(path);
            }
            return Err(explain(target, &args.tls.server_name, failure));
        }
    };
    let limits = Limits {
        time: args.run.time_limit(),
        count: args.run.count,
    };
    let ops = (0..args.run.connections).map(|_| new_op()).collect();
    let started_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let totals = runner::drive(ops, limits, rss.as_ref(), "handshakes")?;
    let server_rss = rss.map(RssSampler::finish);

    let unclean_closes: u64 = totals.ops.iter().map(|op| op.unclean_closes).sum();
    let mut details = BTreeMap::new();
    details.insert("server_name", json!(args.tls.server_name));
    details.insert("ca", json!(args.tls.ca.display().to_string()));
    details.insert("tls_version", json!(negotiated.version));
    details.insert("cipher_suite", json!(negotiated.suite));
    details.insert("key_exchange", json!(negotiated.kx));
    details.insert("unclean_closes", json!(unclean_closes));
    let errors = totals.error_count();
    let report = Report {
        tool: "rampart-loadgen",
        version: env!("CARGO_PKG_VERSION"),
        mode: "handshake",
        command_line,
        target,
        details,
        connections: args.run.connections,
        limit_duration_s: limits.time.as_secs_f64(),
        limit_count: limits.count,
        started_unix_ms,
        elapsed_s: totals.elapsed.as_secs_f64(),
        ok_label: "handshakes",
        ok: totals.ok,
        errors,
        errors_by_kind: Report::errors_from(&totals.errors),
        rate_per_s: totals.ok as f64 / totals.elapsed.as_secs_f64().max(1e-9),
        latency_us: Latency::from_histogram(&totals.latency_us),
        server_rss,
    };
    print!("{}", report.table());
    if let (Some(file), Some(path)) = (json_file, &args.run.json) {
        let mut out = BufWriter::new(file);
        serde_json::to_writer_pretty(&mut out, &report.to_json())
            .map_err(io::Error::from)
            .and_then(|()| writeln!(out))
            .and_then(|()| out.flush())
            .with_context(|| format!("writing --json {}", path.display()))?;
    }
    if totals.ok == 0 {
        bail!("no handshake succeeded ({errors} errors)");
    }
    Ok(())
}

/// A client config trusting the CA file: ring, one TLS version, no resumption.
pub(crate) fn client_config(ca: &Path, tls12: bool) -> anyhow::Result<Arc<ClientConfig>> {
    let certs = CertificateDer::pem_file_iter(ca)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("cannot read CA file --ca {}", ca.display()))?;
    if certs.is_empty() {
        bail!(
            "CA file --ca {}: no PEM CERTIFICATE block in it",
            ca.display()
        );
    }
    let mut roots = RootCertStore::empty();
    for (i, cert) in certs.into_iter().enumerate() {
        roots.add(cert).with_context(|| {
            format!(
                "CA file --ca {}: certificate #{} is not a usable trust anchor",
                ca.display(),
                i + 1
            )
        })?;
    }
    let version = if tls12 {
        &rustls::version::TLS12
    } else {
        &rustls::version::TLS13
    };
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[version])
            .context("building the TLS client config")?
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// What the first handshake negotiated, for the report.
#[derive(Debug)]
struct Negotiated {
    version: String,
    suite: String,
    kx: String,
}

#[derive(Debug)]
struct HandshakeOp {
    target: SocketAddr,
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    connect_timeout: Duration,
    timeout: Duration,
    drain: Vec<u8>,
    /// Connections the server did not close within [`CLOSE_WAIT`] of our close_notify.
    unclean_closes: u64,
}

impl Op for HandshakeOp {
    fn once(&mut self) -> Result<Duration, Failure> {
        self.handshake(|_| ())
    }
}

impl HandshakeOp {
    fn probe(&mut self) -> Result<Negotiated, Failure> {
        let mut negotiated = None;
        self.handshake(|conn| {
            negotiated = Some(Negotiated {
                version: conn
                    .protocol_version()
                    .map_or_else(|| "?".to_owned(), |v| format!("{v:?}")),
                suite: conn
                    .negotiated_cipher_suite()
                    .map_or_else(|| "?".to_owned(), |s| format!("{:?}", s.suite())),
                kx: conn
                    .negotiated_key_exchange_group()
                    .map_or_else(|| "?".to_owned(), |g| format!("{:?}", g.name())),
            });
        })?;
        negotiated.ok_or_else(|| Failure {
            kind: "internal",
            detail: "handshake finished without parameters".to_owned(),
        })
    }

    /// One connection's life; `inspect` sees the connection once the handshake is complete.
    fn handshake(&mut self, inspect: impl FnOnce(&ClientConnection)) -> Result<Duration, Failure> {
        let start = Instant::now();
        let deadline = start + self.timeout;
        let mut tcp = TcpStream::connect_timeout(&self.target, self.connect_timeout)
            .map_err(connect_failure)?;
        tcp.set_nodelay(true).map_err(io_failure)?;
        let mut conn =
            ClientConnection::new(self.config.clone(), self.name.clone()).map_err(|error| {
                Failure {
                    kind: "tls_client",
                    detail: error.to_string(),
                }
            })?;
        // complete_io returns once the handshake is done and the client's last flight written.
        while conn.is_handshaking() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timeout_failure(self.timeout));
            }
            tcp.set_read_timeout(Some(left)).map_err(io_failure)?;
            tcp.set_write_timeout(Some(left)).map_err(io_failure)?;
            conn.complete_io(&mut tcp).map_err(|e| match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    timeout_failure(self.timeout)
                }
                _ => io_failure(e),
            })?;
        }
        let latency = start.elapsed();
        inspect(&conn);

        // Close politely: close_notify, FIN, then wait for the server's FIN so that unread
        // bytes (TLS 1.3 session tickets, the server's close_notify) don't turn our close into
        // an RST. Failures here do not undo the handshake; they are only counted.
        conn.send_close_notify();
        let mut clean = true;
        while clean && conn.wants_write() {
            clean = conn.write_tls(&mut tcp).is_ok();
        }
        clean = clean && tcp.shutdown(Shutdown::Write).is_ok();
        if clean {
            clean = tcp.set_read_timeout(Some(CLOSE_WAIT)).is_ok()
                && loop {
                    match tcp.read(&mut self.drain) {
                        Ok(0) => break true,
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => break false,
                    }
                };
        }
        if !clean {
            self.unclean_closes += 1;
        }
        Ok(latency)
    }
}

fn timeout_failure(limit: Duration) -> Failure {
    Failure {
        kind: "handshake_timeout",
        detail: format!("handshake not complete within {limit:?}"),
    }
}

pub(crate) fn connect_failure(error: io::Error) -> Failure {
    let kind = match error.kind() {
        io::ErrorKind::ConnectionRefused => "connect_refused",
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "connect_timeout",
        io::ErrorKind::AddrNotAvailable | io::ErrorKind::AddrInUse => "connect_no_local_port",
        _ => "connect_error",
    };
    Failure {
        kind,
        detail: error.to_string(),
    }
}

pub(crate) fn io_failure(error: io::Error) -> Failure {
    let kind = if let Some(tls) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        match tls {
            rustls::Error::InvalidCertificate(_) => "tls_bad_certificate",
            rustls::Error::AlertReceived(_) => "tls_alert_received",
            rustls::Error::PeerIncompatible(_) => "tls_incompatible",
            rustls::Error::PeerMisbehaved(_) | rustls::Error::InvalidMessage(_) => {
                "tls_protocol_error"
            }
            _ => "tls_error",
        }
    } else {
        match error.kind() {
            io::ErrorKind::UnexpectedEof => "closed_by_server",
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => "reset_by_server",
            _ => "io_error",
        }
    };
    Failure {
        kind,
        detail: error.to_string(),
    }
}

/// Turns the first handshake's failure into an error that says what to check.
fn explain(target: SocketAddr, server_name: &str, failure: Failure) -> anyhow::Error {
    let Failure { kind, detail } = failure;
    if let Some(e) = crate::runner::explain_connect(target, server_name, kind, &detail) {
        return e;
    }
    match kind {
        "closed_by_server" | "reset_by_server" => anyhow::anyhow!(
            "TLS handshake with {target} failed: the server closed the connection ({detail}); \
             is this a TLS port?"
        ),
        _ => anyhow::anyhow!("TLS handshake with {target} failed ({kind}): {detail}"),
    }
}
