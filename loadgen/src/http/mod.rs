//! `http` mode: legitimate HTTPS load and, at the same time, slow attackers; reports the
//! legitimate clients' availability and latency, and how the server treated the attackers.
//!
//! A run goes: one probe request (a wrong port, CA, name or path is one clear error, and a
//! slow-read path is checked for a response large enough to matter); the attackers connect
//! (every one tried once) before anything is measured; the legitimate connections send through
//! the warm-up (not counted) and the measured window; then the attackers stop.
//!
//! Legitimate load ([`legit`]): `--connections` threads, each with one keep-alive connection
//! and one request at a time, on a fixed schedule (open loop, latency from the scheduled send
//! time) or as fast as answered (closed loop). A request counts when its due time falls in the
//! measured window; it is ok when answered 2xx, else a failure by kind (connect refused, TLS
//! error, timeout, reset, status class). Availability is ok / sent.
//!
//! Attackers ([`attack`]): slowloris, slow body and slow read, held by up to four threads on
//! non-blocking sockets with epoll; each reconnects when the server closes it, and the report
//! gives how many were opened and closed by the server, and how long they lived.
//!
//! With `--html`, the measured window second by second ([`timeline`]: requests ok and failed,
//! p50 and p99 latency) is charted, with the summary, in one self-contained HTML page.
//!
//! What it deliberately does not do: pipeline, speak HTTP/2, follow redirects or retry failed
//! requests (apart from resending once a request whose kept-alive connection turned out to be
//! closed before any answer, as browsers do; those are counted).

mod attack;
mod client;
mod legit;
mod report;
mod timeline;

use std::fs::File;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use bytes::BytesMut;
use rustls::pki_types::ServerName;

use crate::cli::{DEFAULT_SLOW_BODY_LENGTH, DEFAULT_SLOW_READ_CHUNK, HttpArgs, HttpMethod};
use crate::report::fmt_us;
use crate::rss::RssSampler;
use crate::runner::record;
use crate::runner::{Failure, new_histogram};
use attack::Kind;
use client::{Conn, Endpoint};
use legit::{Live, Plan, Tally, Window, Worker};
use report::{AttackReport, HttpReport, KindReport, LegitReport};
use timeline::{Second, Timeline};

/// The most attack threads.
const ATTACK_THREADS: usize = 4;

/// A slow-read response smaller than this drains into socket buffers: warn.
const SLOW_READ_MIN_BODY: u64 = 1024 * 1024;

/// File descriptors kept free for everything else (stdio, epoll sets, the report).
const SPARE_FDS: u64 = 64;

/// Runs the mode and prints the summary.
pub(crate) fn run(args: &HttpArgs, command_line: Vec<String>) -> anyhow::Result<()> {
    args.validate().map_err(anyhow::Error::msg)?;
    check_fd_limit(args)?;
    let config = crate::handshake::client_config(&args.tls.ca, args.tls.tls12)?;
    let name = ServerName::try_from(args.tls.server_name.clone()).map_err(|_| {
        anyhow::anyhow!(
            "--server-name `{}` is not a valid DNS name or IP address",
            args.tls.server_name
        )
    })?;
    let endpoint = Endpoint {
        addr: args.target,
        config,
        name,
        connect_timeout: args.connect_timeout,
    };
    let host = client::host_header(&args.tls.server_name, args.target.port());
    let method = args.method.as_str();
    let body_bytes = match args.method {
        HttpMethod::Get => None,
        HttpMethod::Post => Some(args.body_bytes.unwrap_or(0)),
    };
    let request = client::request(method, &args.path, &host, body_bytes);
    let rss = args.sample_rss_pid.map(RssSampler::start).transpose()?;
    let (json_file, html_file) =
        crate::report::create_outputs(args.json.as_deref(), args.html.as_deref())?;

    // One request first, so a wrong port, CA, name or path is one clear error.
    let (tls_version, tls_cipher_suite) =
        match probe(&endpoint, &request, method, &args.path, args.timeout) {
            Ok(params) => params,
            Err(error) => {
                remove_outputs(args);
                return Err(error);
            }
        };
    let slow_read_path = args
        .slow_read_path
        .clone()
        .unwrap_or_else(|| args.path.clone());
    if args.slow_read > 0 {
        check_slow_read_path(&endpoint, &host, &slow_read_path, args.timeout);
    }

    let attack_cfg = attack::Config {
        endpoint: endpoint.clone(),
        host: host.clone(),
        interval: args.attack_interval(),
        slowloris_path: args.path.clone(),
        slow_body_path: args
            .slow_body_path
            .clone()
            .unwrap_or_else(|| args.path.clone()),
        slow_body_length: args.slow_body_length.unwrap_or(DEFAULT_SLOW_BODY_LENGTH),
        slow_read_path: slow_read_path.clone(),
        slow_read_chunk: args.slow_read_chunk.map_or(DEFAULT_SLOW_READ_CHUNK, |n| {
            usize::try_from(n).unwrap_or(DEFAULT_SLOW_READ_CHUNK)
        }),
    };
    let live = Live::default();
    let started_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let run_start = Instant::now();

    let (legit_tally, attack_tallies, seconds) = thread::scope(|s| -> anyhow::Result<_> {
        // === Attackers: all connected (or tried) before the legitimate load starts ===
        let mut attack_handles = Vec::new();
        let attackers = attacker_kinds(args);
        if !attackers.is_empty() {
            let threads = attackers.len().min(ATTACK_THREADS);
            let (ready_tx, ready_rx) = mpsc::channel();
            for t in 0..threads {
                let mine: Vec<Kind> = attackers.iter().skip(t).step_by(threads).copied().collect();
                let (cfg, live, ready) = (&attack_cfg, &live, ready_tx.clone());
                let spawned = thread::Builder::new()
                    .name(format!("attack-{t}"))
                    .spawn_scoped(s, move || attack::run(cfg, &mine, live, &ready));
                match spawned {
                    Ok(h) => attack_handles.push(h),
                    Err(e) => {
                        live.stop.store(true, Ordering::Relaxed);
                        return Err(e).context("starting an attack thread");
                    }
                }
            }
            drop(ready_tx);
            for _ in 0..threads {
                if ready_rx.recv().is_err() {
                    break;
                }
            }
            eprintln!(
                "{} of {} attackers connected in {:.2} s",
                live.attackers_alive.load(Ordering::Relaxed),
                attackers.len(),
                run_start.elapsed().as_secs_f64()
            );
        }

        // === Legitimate load ===
        let start = Instant::now() + Duration::from_millis(20);
        let warm = start + args.warmup;
        let plan = Plan {
            endpoint: endpoint.clone(),
            request,
            method,
            timeout: args.timeout,
            rate: args.rate,
            connections: u64::from(args.connections),
            window: Window {
                start,
                warm,
                end: warm + args.duration,
            },
        };
        // Scoped inside, so the workers may borrow `plan`.
        let total = thread::scope(|s| -> anyhow::Result<(Tally, Vec<Second>)> {
            let (tx, rx) = mpsc::channel::<Vec<u64>>();
            let mut workers = Vec::new();
            for i in 0..args.connections {
                let (plan, live, tx) = (&plan, &live, tx.clone());
                let spawned = thread::Builder::new()
                    .name(format!("http-{i}"))
                    .stack_size(1024 * 1024)
                    .spawn_scoped(s, move || Worker::new(plan, u64::from(i)).run(live, &tx));
                match spawned {
                    Ok(h) => workers.push(h),
                    Err(e) => {
                        live.stop.store(true, Ordering::Relaxed);
                        return Err(e).context("starting a connection thread");
                    }
                }
            }
            drop(tx);
            let seconds = progress(&plan.window, &live, &rx, rss.as_ref());
            let mut total = Tally::new();
            for h in workers {
                let t = h
                    .join()
                    .map_err(|_| anyhow::anyhow!("a connection thread panicked"))?;
                total.merge(t).context("merging histograms")?;
            }
            Ok((total, seconds))
        });
        // Whatever happened to the legitimate load, the attackers stop now.
        live.stop.store(true, Ordering::Relaxed);
        let (total, seconds) = total?;
        let mut kinds: attack::Tallies = Kind::ALL
            .iter()
            .map(|k| (*k, attack::KindTally::new()))
            .collect();
        for h in attack_handles {
            match h.join() {
                Ok(Ok(tallies)) => {
                    for (kind, t) in tallies {
                        if let Some(total) = kinds.get_mut(&kind) {
                            total.merge(t).context("merging histograms")?;
                        }
                    }
                }
                Ok(Err(e)) => return Err(e).context("an attack thread failed"),
                Err(_) => bail!("an attack thread panicked"),
            }
        }
        Ok((total, kinds, seconds))
    })?;
    let elapsed = run_start.elapsed();
    let server_rss = rss.map(RssSampler::finish);

    let kind_report = |kind: Kind, n: u32, path: &str| {
        let empty = attack::KindTally::new();
        let t = attack_tallies.get(&kind).unwrap_or(&empty);
        KindReport::new(n, (n > 0).then(|| path.to_owned()), t)
    };
    let report = HttpReport {
        tool: "rampart-loadgen",
        version: env!("CARGO_PKG_VERSION"),
        mode: "http",
        command_line,
        target: args.target,
        server_name: args.tls.server_name.clone(),
        tls_version,
        tls_cipher_suite,
        method,
        path: args.path.clone(),
        body_bytes: body_bytes.unwrap_or(0),
        connections: args.connections,
        rate_per_s: args.rate,
        load: if args.rate > 0 { "open" } else { "closed" },
        timeout_s: args.timeout.as_secs_f64(),
        warmup_s: args.warmup.as_secs_f64(),
        duration_s: args.duration.as_secs_f64(),
        elapsed_s: elapsed.as_secs_f64(),
        started_unix_ms,
        legit: LegitReport::new(&legit_tally, args.duration.as_secs_f64()),
        attackers: AttackReport {
            interval_s: (args.attackers() > 0).then(|| args.attack_interval().as_secs_f64()),
            slowloris: kind_report(Kind::Slowloris, args.slowloris, &attack_cfg.slowloris_path),
            slow_body: kind_report(Kind::SlowBody, args.slow_body, &attack_cfg.slow_body_path),
            slow_read: kind_report(Kind::SlowRead, args.slow_read, &slow_read_path),
        },
        server_rss,
    };
    print!("{}", report.table());
    if let (Some(file), Some(path)) = (json_file, &args.json) {
        crate::report::write_json(file, path, &report)?;
    }
    if let (Some(file), Some(path)) = (html_file, &args.html) {
        write_html(file, path, &report, &seconds)?;
    }
    if report.legit.ok == 0 {
        bail!(
            "no legitimate request succeeded ({} failed)",
            report.legit.failed
        );
    }
    Ok(())
}

/// Writes the `--html` page into the file created before the run.
fn write_html(
    file: File,
    path: &Path,
    report: &HttpReport,
    seconds: &[Second],
) -> anyhow::Result<()> {
    crate::report::write_html(file, path, &timeline::page(report, seconds))
}

/// Removes the report files created before a run that did not happen.
fn remove_outputs(args: &HttpArgs) {
    for path in [&args.json, &args.html].into_iter().flatten() {
        let _ = std::fs::remove_file(path);
    }
}

/// Every attacker, kinds interleaved so each thread gets its share of each.
fn attacker_kinds(args: &HttpArgs) -> Vec<Kind> {
    let mut out = Vec::new();
    let counts = [
        (Kind::Slowloris, args.slowloris),
        (Kind::SlowBody, args.slow_body),
        (Kind::SlowRead, args.slow_read),
    ];
    let most = counts.iter().map(|c| c.1).max().unwrap_or(0);
    for i in 0..most {
        for (kind, n) in counts {
            if i < n {
                out.push(kind);
            }
        }
    }
    out
}

/// Refuses a run that would run out of file descriptors half-way.
fn check_fd_limit(args: &HttpArgs) -> anyhow::Result<()> {
    let need = u64::from(args.connections) + u64::from(args.attackers()) + SPARE_FDS;
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    if let Some(limit) = limit
        && limit < need
    {
        bail!(
            "{} connections and {} attackers need about {need} file descriptors, but the limit \
             is {limit}: raise it (`ulimit -n {need}`) or ask for fewer",
            args.connections,
            args.attackers()
        );
    }
    Ok(())
}

/// One request on a new connection; the negotiated TLS version and suite.
fn probe(
    endpoint: &Endpoint,
    request: &[u8],
    method: &str,
    path: &str,
    timeout: Duration,
) -> anyhow::Result<(String, String)> {
    let deadline = Instant::now() + timeout;
    let target = endpoint.addr;
    let mut conn = Conn::open(endpoint, deadline).map_err(|f| explain(endpoint, f))?;
    let params = conn.tls_params();
    let answer = conn
        .exchange(request, method, deadline, &mut BytesMut::new())
        .map_err(|e| explain(endpoint, e.failure))?;
    if !(200..300).contains(&answer.status) {
        bail!(
            "{method} {path} on {target} was answered {} {}: every request would count as \
             failed (check --path and --method)",
            answer.status,
            rampart_http_proto::status_reason(answer.status)
        );
    }
    Ok(params)
}

/// Warns (and goes on) when the slow readers' path cannot hold a slow reader for long.
fn check_slow_read_path(endpoint: &Endpoint, host: &str, path: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let request = client::request("GET", path, host, None);
    let answer = Conn::open(endpoint, deadline).and_then(|mut conn| {
        conn.exchange(&request, "GET", deadline, &mut BytesMut::new())
            .map_err(|e| e.failure)
    });
    match answer {
        Ok(a) if !(200..300).contains(&a.status) => eprintln!(
            "warning: --slow-read-path {path} is answered {} {}; slow readers read an error page",
            a.status,
            rampart_http_proto::status_reason(a.status)
        ),
        Ok(a) if a.body_bytes < SLOW_READ_MIN_BODY => eprintln!(
            "warning: --slow-read-path {path} is only {} bytes: it fits in socket buffers, so \
             the server is done writing long before a slow reader is (use a path of several MiB)",
            a.body_bytes
        ),
        Ok(_) => {}
        Err(f) => eprintln!(
            "warning: GET --slow-read-path {path} failed ({}): {}",
            f.kind, f.detail
        ),
    }
}

/// A progress line on stderr every second until every worker has ended; returns the measured
/// window second by second (see [`timeline`]).
fn progress(
    window: &Window,
    live: &Live,
    rx: &mpsc::Receiver<Vec<u64>>,
    rss: Option<&RssSampler>,
) -> Vec<Second> {
    let mut hist = new_histogram();
    let mut timeline = Timeline::new();
    let mut next_tick = window.start + Duration::from_secs(1);
    let mut last_ok = 0;
    loop {
        let wait = next_tick.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(batch) => {
                for v in batch {
                    record(&mut hist, v);
                    timeline.record(v);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        let now = Instant::now();
        if now < next_tick {
            continue;
        }
        let tick = next_tick;
        next_tick += Duration::from_secs(1);
        let ok = live.ok.load(Ordering::Relaxed);
        let failed = live.failed.load(Ordering::Relaxed);
        if tick > window.warm {
            timeline.tick((tick - window.warm).as_secs_f64(), ok, failed);
        }
        let phase = if now < window.warm {
            "warm-up"
        } else {
            "measured"
        };
        let (p50, p99) = if hist.is_empty() {
            ("-".to_owned(), "-".to_owned())
        } else {
            (
                fmt_us(hist.value_at_quantile(0.5)),
                fmt_us(hist.value_at_quantile(0.99)),
            )
        };
        let mut line = format!(
            "[{:6.1}s] {phase:<8} sent {}  ok {ok} ({}/s)  failed {}  p50 {p50}  p99 {p99}  \
             attackers alive {}",
            now.saturating_duration_since(window.start).as_secs_f64(),
            live.sent.load(Ordering::Relaxed),
            ok.saturating_sub(last_ok),
            failed,
            live.attackers_alive.load(Ordering::Relaxed),
        );
        if let Some(kib) = rss.and_then(RssSampler::current_kib) {
            line.push_str(&format!("  server RSS {:.1} MiB", kib as f64 / 1024.0));
        }
        eprintln!("{line}");
        last_ok = ok;
    }
    timeline.finish(
        Instant::now()
            .saturating_duration_since(window.warm)
            .as_secs_f64(),
        live.ok.load(Ordering::Relaxed),
        live.failed.load(Ordering::Relaxed),
    )
}

/// Turns the probe's failure into an error that says what to check.
fn explain(endpoint: &Endpoint, failure: Failure) -> anyhow::Error {
    let target: SocketAddr = endpoint.addr;
    let name = endpoint.name.to_str();
    let Failure { kind, detail } = failure;
    if let Some(e) = crate::runner::explain_connect(target, &name, kind, &detail) {
        return e;
    }
    match kind {
        "closed_by_server" | "reset_by_server" | "tls_protocol_error" | "tls_error" => {
            anyhow::anyhow!(
                "the first request to {target} failed ({kind}): {detail} (is this an HTTPS \
                 port?)"
            )
        }
        "bad_response" => anyhow::anyhow!(
            "the first request to {target} failed: {detail} (is this an HTTP/1.1 server?)"
        ),
        "timeout" => anyhow::anyhow!(
            "the first request to {target} got no complete answer within --timeout ({detail})"
        ),
        _ => anyhow::anyhow!("the first request to {target} failed ({kind}): {detail}"),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::cli::{Cli, Command};

    fn args(extra: &[&str]) -> HttpArgs {
        let argv = [
            "rampart-loadgen",
            "http",
            "--target",
            "127.0.0.1:8443",
            "--ca",
            "ca.pem",
        ];
        match Cli::try_parse_from(argv.iter().chain(extra))
            .unwrap()
            .command
        {
            Command::Http(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn attackers_interleave() {
        let a = args(&["--slowloris", "3", "--slow-read", "1", "--slow-body", "2"]);
        assert_eq!(
            attacker_kinds(&a),
            [
                Kind::Slowloris,
                Kind::SlowBody,
                Kind::SlowRead,
                Kind::Slowloris,
                Kind::SlowBody,
                Kind::Slowloris
            ]
        );
        assert!(attacker_kinds(&args(&[])).is_empty());
    }

    #[test]
    fn unreachable_target_is_one_clear_error() {
        // A port nobody listens on (bound, then released).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        std::fs::write(&ca, cert.cert.pem()).unwrap();
        let json = dir.path().join("r.json");
        let html = dir.path().join("r.html");
        let cli = Cli::try_parse_from([
            "rampart-loadgen",
            "http",
            "--target",
            &format!("127.0.0.1:{port}"),
            "--ca",
            ca.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ])
        .unwrap();
        let Command::Http(mut a) = cli.command else {
            panic!("not http");
        };
        let err = format!("{:#}", run(&a, Vec::new()).unwrap_err());
        assert!(
            err.contains("cannot connect") && err.contains("is the server running"),
            "{err}"
        );
        // No empty report left behind.
        assert!(!json.exists());
        assert!(!html.exists());

        // An --html file that cannot be created fails before any request, and takes the
        // --json file it created with it.
        a.html = Some(dir.path().join("no-such-dir").join("r.html"));
        let err = format!("{:#}", run(&a, Vec::new()).unwrap_err());
        assert!(err.contains("cannot create --html"), "{err}");
        assert!(!json.exists());
    }

    #[test]
    fn html_page_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.html");
        let mut t = Timeline::new();
        t.record(900);
        t.tick(1.0, 100, 0);
        let seconds = t.finish(1.0, 100, 0);
        let report = report::tests::sample();
        write_html(File::create(&path).unwrap(), &path, &report, &seconds).unwrap();
        let doc = std::fs::read_to_string(&path).unwrap();
        assert!(doc.starts_with("<!DOCTYPE html>") && doc.ends_with("</html>\n"));
        assert_eq!(doc.matches("<svg").count(), 2);
        assert!(doc.contains(&report.table().lines().next().unwrap().replace('>', "&gt;")));
    }
}
