//! `mqtt` mode (alias `mqtt-fanout`): P publishers publish timestamped messages to their topics
//! (`--topic`, by default one each), and S subscribers subscribe to `--filter` (by default every
//! publisher's topic). A message is expected at every subscriber whose filters match its topic.
//!
//! A run goes: one probe connection (a wrong port, CA, name or password is one clear error);
//! every connection opened and subscribed (all SUBACKs in) before anything is published; a
//! warm-up that is published but not counted; the measured window; then a drain while the
//! subscribers receive what is still on its way (until every subscriber has each publisher's
//! last message, nothing arrives for 1 s, or 10 s pass).
//!
//! A message counts when its *send time* falls in the measured window: the publisher counts it
//! as sent, each subscriber that receives it (once) counts a delivery and a latency sample
//! (receive time minus send time, on one monotonic clock shared by the whole process). With
//! `--rate` the send time is the message's scheduled time (open loop: a publisher the broker
//! holds back shows as latency, not as fewer samples; coordinated omission corrected); without
//! it, the time it was written. Expected deliveries are the sum over publishers of sent ×
//! matching subscribers, and lost ones are expected minus delivered. Retained messages a
//! subscriber gets when it subscribes (RETAIN set on delivery) are counted apart, not measured.
//!
//! Threads: one per publisher (blocking socket, batched writes) and `--subscriber-threads`
//! readers, each watching its share of the subscriber sockets with epoll and decoding every
//! packet of each large read at once. No async runtime.

mod conn;
mod publisher;
mod subscriber;
mod summary;
mod timeline;
mod track;
mod wake;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use rampart_mqtt_proto::{QoS, TopicFilter, TopicName, Version};
use rustls::pki_types::ServerName;

use crate::cli::{MqttArgs, MqttTopics, MqttVersion};
use crate::report::{Latency, Report, fmt_us};
use crate::rss::RssSampler;
use crate::runner::{ErrorTally, Failure};
pub(crate) use crate::runner::{new_histogram, record, tally};
use crate::timeline::{Second, Timeline};
use conn::{Conn, Settings};
use summary::{CpuTimes, FanoutReport, Figures, Totals};
use track::{Payload, now_ns};
use wake::Wake;

/// Limit of each connection's setup (TCP, TLS, CONNECT/CONNACK, SUBSCRIBE/SUBACK).
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Limit of the whole setup phase (every connection).
const SETUP_ALL_TIMEOUT: Duration = Duration::from_secs(180);

/// What every thread of a run shares (read-only, apart from [`Shared`]'s atomics).
#[derive(Debug)]
pub(crate) struct Ctx {
    settings: Settings,
    /// `--credentials-file`: connection k (publishers first, then subscribers) uses entry
    /// k mod len; empty: `settings`' own.
    credentials: Vec<(String, Bytes)>,
    /// Publisher i's topic.
    topics: Vec<String>,
    /// What every subscriber subscribes to.
    filters: Vec<TopicFilter>,
    /// Per publisher: whether the filters match its topic (its messages are expected).
    expected: Vec<bool>,
    /// Client identifiers are `<client_prefix>-p<i>` and `<client_prefix>-s<i>`.
    client_prefix: String,
    publishers: usize,
    qos: QoS,
    retain: bool,
    payload: Payload,
    rate: u64,
    /// `--count`: measured messages per publisher.
    count: Option<u64>,
    /// `--ramp-up`: connections opened per second during setup.
    ramp: Option<Ramp>,
    inflight: u16,
    /// `--max-ahead`; 0 = no limit.
    max_ahead: u64,
    shared: Shared,
}

impl Ctx {
    /// The connection settings of connection `k` (publishers first, then subscribers): its own
    /// credentials from `--credentials-file`, if given.
    fn settings_for(&self, k: usize) -> Settings {
        let mut s = self.settings.clone();
        if let Some((user, password)) = self.credentials.get(k % self.credentials.len().max(1)) {
            s.username = Some(user.clone());
            s.password = Some(password.clone());
        }
        s
    }
}

/// `--ramp-up`: connection k may start `k / rate` seconds after the setup began.
#[derive(Debug)]
pub(crate) struct Ramp {
    start: Instant,
    per_sec: u32,
    next: AtomicU64,
}

impl Ramp {
    fn new(per_sec: u32) -> Self {
        Self {
            start: Instant::now(),
            per_sec: per_sec.max(1),
            next: AtomicU64::new(0),
        }
    }

    /// Waits for this connection's turn.
    fn wait(&self) {
        let k = self.next.fetch_add(1, Ordering::Relaxed);
        let at = self.start + Duration::from_secs_f64(k as f64 / f64::from(self.per_sec));
        thread::sleep(at.saturating_duration_since(Instant::now()));
    }
}

/// Waits for a connection's turn under `--ramp-up`, if given.
pub(crate) fn ramp_wait(ctx: &Ctx) {
    if let Some(r) = &ctx.ramp {
        r.wait();
    }
}

/// Counters for the progress line, and the end-of-run signals between threads.
#[derive(Debug)]
pub(crate) struct Shared {
    sent: AtomicU64,
    received: AtomicU64,
    errors: AtomicU64,
    /// Per publisher: how many messages it sent in all, once it has stopped.
    final_seq: Vec<AtomicU64>,
    publishers_done: AtomicUsize,
    /// The latest send time of a measured message (for `--count`'s measured window).
    last_measured_ns: AtomicU64,
    subscriber_threads_running: AtomicUsize,
    abort: AtomicBool,
    /// `[subscriber * publishers + publisher]`: one more than the highest sequence number that
    /// subscriber has received from that publisher; `u64::MAX` once the subscriber is gone.
    progress: Vec<AtomicU64>,
    /// Per publisher: its wait when `--max-ahead` holds it back.
    wakes: Vec<Wake>,
}

impl Shared {
    fn finished(&self, publisher: u16, sent: u64) {
        if let Some(slot) = self.final_seq.get(usize::from(publisher)) {
            slot.store(sent, Ordering::Relaxed);
        }
        self.publishers_done.fetch_add(1, Ordering::Release);
    }

    /// Every publisher's message count, once all have stopped.
    fn final_seqs(&self) -> Option<Vec<u64>> {
        if self.publishers_done.load(Ordering::Acquire) < self.final_seq.len() {
            return None;
        }
        Some(
            self.final_seq
                .iter()
                .map(|s| s.load(Ordering::Relaxed))
                .collect(),
        )
    }

    /// One more than the highest sequence number of `publisher` that every live subscriber has
    /// received, leaving out the subscribers in `given_up` whose progress is still what it was
    /// when they were given up; one that moved on is taken back in.
    fn slowest_live(
        &self,
        publisher: usize,
        publishers: usize,
        given_up: &mut Vec<(usize, u64)>,
    ) -> u64 {
        let mut min = u64::MAX;
        for (sub, at) in self.progress_of(publisher, publishers) {
            if let Some(i) = given_up.iter().position(|(s, _)| *s == sub) {
                if given_up[i].1 == at {
                    continue;
                }
                given_up.swap_remove(i);
            }
            min = min.min(at);
        }
        min
    }

    /// Records a subscriber's progress for `publisher` (`slot` in `progress`), waking the
    /// publisher if it waited for that.
    fn advance(&self, slot: usize, publisher: usize, next: u64) {
        let Some(progress) = self.progress.get(slot) else {
            return;
        };
        // Most publishers' progress did not move in a given read (fan-in: one message each
        // from a few of a thousand): no store, and no crossing to look for.
        if progress.load(Ordering::Relaxed) == next {
            return;
        }
        let prev = progress.swap(next, Ordering::SeqCst);
        if let Some(wake) = self.wakes.get(publisher) {
            wake.crossed(prev, next);
        }
    }

    /// Parks `publisher` until its live subscribers (as in [`Self::slowest_live`]) have all
    /// reached `want`, or `timeout` passes. True if it parked.
    fn wait_for(
        &self,
        publisher: usize,
        publishers: usize,
        want: u64,
        given_up: &[(usize, u64)],
        timeout: Duration,
    ) -> bool {
        let Some(wake) = self.wakes.get(publisher) else {
            thread::sleep(timeout);
            return false;
        };
        let below = || {
            self.progress_of(publisher, publishers)
                .filter(|&(sub, at)| at < want && !given_up.contains(&(sub, at)))
                .count()
        };
        wake.wait(want, below, timeout)
    }

    /// Every subscriber's progress for `publisher`: `(subscriber, progress)`.
    fn progress_of(
        &self,
        publisher: usize,
        publishers: usize,
    ) -> impl Iterator<Item = (usize, u64)> + '_ {
        let slots = self.progress.iter().skip(publisher);
        slots
            .step_by(publishers.max(1))
            .map(|slot| slot.load(Ordering::Relaxed))
            .enumerate()
    }

    /// Adds to `given_up` every subscriber whose progress for `publisher` is `at`.
    fn give_up(
        &self,
        publisher: usize,
        publishers: usize,
        at: u64,
        given_up: &mut Vec<(usize, u64)>,
    ) {
        for (sub, progress) in self.progress_of(publisher, publishers) {
            if progress == at && !given_up.iter().any(|(s, _)| *s == sub) {
                given_up.push((sub, at));
            }
        }
    }

    fn subscribers_done(&self) -> bool {
        self.subscriber_threads_running.load(Ordering::Relaxed) == 0
            || self.abort.load(Ordering::Relaxed)
    }
}

/// The schedule, in [`now_ns`] time: publishing starts at `start_ns`, counts from `warm_ns`,
/// stops at `end_ns`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    start_ns: u64,
    warm_ns: u64,
    end_ns: u64,
}

/// A thread's report at the end of its setup.
#[derive(Debug)]
pub(crate) enum Ready {
    /// Connected (and subscribed, with the lowest granted QoS, for subscribers).
    Ok {
        granted_qos: Option<u8>,
    },
    Failed(Failure),
}

/// Runs the mode and prints the summary.
pub(crate) fn run(args: &MqttArgs, command_line: Vec<String>) -> anyhow::Result<()> {
    let topics = args.validate().map_err(anyhow::Error::msg)?;
    let credentials = args
        .credentials_file
        .as_deref()
        .map(read_credentials)
        .transpose()?
        .unwrap_or_default();
    let payload = match &args.payload_file {
        Some(path) => {
            let content = std::fs::read(path)
                .with_context(|| format!("cannot read --payload-file {}", path.display()))?;
            let payload = Payload::around(&content);
            if payload.len() > crate::cli::MAX_PAYLOAD {
                bail!(
                    "--payload-file {} is larger than {} bytes",
                    path.display(),
                    crate::cli::MAX_PAYLOAD
                );
            }
            payload
        }
        None => Payload::filler(args.payload),
    };
    let _ = now_ns(); // starts the clock
    let version = match args.mqtt_version {
        MqttVersion::V311 => Version::V311,
        MqttVersion::V5 => Version::V5,
    };
    let password = args
        .password_file
        .as_deref()
        .map(|path| {
            std::fs::read(path)
                .with_context(|| format!("cannot read --password-file {}", path.display()))
                .map(|raw| {
                    let end = raw
                        .iter()
                        .rposition(|b| !matches!(b, b'\n' | b'\r'))
                        .map_or(0, |i| i + 1);
                    Bytes::from(raw[..end].to_vec())
                })
        })
        .transpose()?;
    let tls = match (&args.ca, args.tls) {
        (Some(ca), true) => {
            let config = crate::handshake::client_config(ca, args.tls12)?;
            let name = ServerName::try_from(args.server_name.clone()).map_err(|_| {
                anyhow::anyhow!(
                    "--server-name `{}` is not a valid DNS name or IP address",
                    args.server_name
                )
            })?;
            Some((config, name))
        }
        _ => None,
    };
    let settings = Settings {
        target: args.target,
        connect_timeout: args.connect_timeout,
        tls,
        version,
        username: args.username.clone(),
        password,
    };
    let probe_settings = match credentials.first() {
        Some((user, password)) => Settings {
            username: Some(user.clone()),
            password: Some(password.clone()),
            ..settings.clone()
        },
        None => settings.clone(),
    };
    let rss = args.sample_rss_pid.map(RssSampler::start).transpose()?;
    let (json_file, html_file) =
        crate::report::create_outputs(args.json.as_deref(), args.html.as_deref())?;
    let remove_json = || {
        for path in [&args.json, &args.html].into_iter().flatten() {
            let _ = std::fs::remove_file(path);
        }
    };
    let client_prefix = args
        .client_id_prefix
        .clone()
        .unwrap_or_else(|| format!("lg{}", std::process::id()));

    // One connection first, so a wrong port, CA, name or password is one clear error.
    let mut scratch = vec![0u8; 64 * 1024];
    let probe = Conn::open(
        &probe_settings,
        &format!("{client_prefix}-probe"),
        Instant::now() + SETUP_TIMEOUT,
        &mut scratch,
    );
    let tls_params = match probe {
        Ok((conn, _)) => {
            let params = conn.tls_params();
            conn.close();
            params
        }
        Err(failure) => {
            remove_json();
            return Err(explain(args.target, args, failure));
        }
    };

    let sub_threads = args.subscriber_threads.min(args.subscribers) as usize;
    let publisher_topics: Vec<String> = (0..args.publishers)
        .map(|i| MqttTopics::topic_of(&topics.template, i))
        .collect();
    let filters: Vec<TopicFilter> = topics
        .subscriber_filters(args.publishers)
        .into_iter()
        .filter_map(|f| TopicFilter::new(f).ok())
        .collect();
    let expected: Vec<bool> = publisher_topics
        .iter()
        .map(|t| {
            TopicName::new(t.as_str()).is_ok_and(|name| filters.iter().any(|f| f.matches(&name)))
        })
        .collect();
    if !expected.iter().any(|e| *e) {
        remove_json();
        bail!(
            "no --filter matches any publisher's topic (e.g. `{}`): the subscribers would \
             receive nothing",
            publisher_topics.first().map_or("", String::as_str)
        );
    }
    let ctx = Arc::new(Ctx {
        settings,
        credentials,
        topics: publisher_topics,
        filters,
        expected: expected.clone(),
        client_prefix,
        publishers: args.publishers as usize,
        qos: match args.qos {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            _ => QoS::ExactlyOnce,
        },
        retain: args.retain,
        payload,
        rate: args.rate,
        count: args.count,
        ramp: args.ramp_up.map(Ramp::new),
        inflight: args.inflight,
        max_ahead: args.max_ahead,
        shared: Shared {
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            final_seq: (0..args.publishers).map(|_| AtomicU64::new(0)).collect(),
            publishers_done: AtomicUsize::new(0),
            last_measured_ns: AtomicU64::new(0),
            subscriber_threads_running: AtomicUsize::new(sub_threads),
            abort: AtomicBool::new(false),
            // A publisher no filter matches never holds anyone back (`--max-ahead`).
            progress: (0..args.subscribers)
                .flat_map(|_| expected.iter())
                .map(|e| AtomicU64::new(if *e { 0 } else { u64::MAX }))
                .collect(),
            wakes: (0..args.publishers).map(|_| Wake::default()).collect(),
        },
    });

    // === Setup: every thread connects its connections and reports ===
    let setup_start = Instant::now();
    let (ready_tx, ready_rx) = mpsc::channel::<Ready>();
    let (live_tx, live_rx) = mpsc::channel::<Histogram<u64>>();
    let mut go = Vec::new();
    let mut sub_handles = Vec::new();
    let mut pub_handles = Vec::new();
    let mut spawn_error = None;
    for t in 0..sub_threads {
        let ids: Vec<u32> = (0..args.subscribers)
            .filter(|i| *i as usize % sub_threads == t)
            .collect();
        let (go_tx, go_rx) = mpsc::channel::<Plan>();
        go.push(go_tx);
        let (ctx, ready, live) = (ctx.clone(), ready_tx.clone(), live_tx.clone());
        let spawned = thread::Builder::new()
            .name(format!("subscribers-{t}"))
            .spawn(move || {
                let result = subscriber::run(&ids, &ctx, &ready, &go_rx, &live);
                ctx.shared
                    .subscriber_threads_running
                    .fetch_sub(1, Ordering::Relaxed);
                result
            });
        match spawned {
            Ok(h) => sub_handles.push(h),
            Err(e) => {
                spawn_error = Some(e);
                break;
            }
        }
    }
    for p in 0..args.publishers {
        if spawn_error.is_some() {
            break;
        }
        // p < MAX_PUBLISHERS (1024), so it fits the stamp's 16 bits.
        let index = u16::try_from(p).unwrap_or(u16::MAX);
        let (go_tx, go_rx) = mpsc::channel::<Plan>();
        go.push(go_tx);
        let (ctx, ready) = (ctx.clone(), ready_tx.clone());
        let spawned = thread::Builder::new()
            .name(format!("publisher-{p}"))
            .spawn(move || publisher::run(index, &ctx, &ready, &go_rx));
        match spawned {
            Ok(h) => pub_handles.push(h),
            Err(e) => {
                spawn_error = Some(e);
                break;
            }
        }
    }
    drop((ready_tx, live_tx));
    let expected_ready = sub_handles.len() + pub_handles.len();
    let mut granted_qos: Option<u8> = None;
    let mut setup_failure = spawn_error.map(|e| Failure {
        kind: "thread_spawn",
        detail: format!("cannot start a thread: {e}"),
    });
    let setup_deadline = setup_start + SETUP_ALL_TIMEOUT;
    let mut readied = 0;
    while setup_failure.is_none() && readied < expected_ready {
        let left = setup_deadline.saturating_duration_since(Instant::now());
        match ready_rx.recv_timeout(left) {
            Ok(Ready::Ok { granted_qos: g }) => {
                readied += 1;
                if let Some(g) = g {
                    granted_qos = Some(granted_qos.map_or(g, |q| q.min(g)));
                }
            }
            Ok(Ready::Failed(failure)) => setup_failure = Some(failure),
            Err(_) => {
                setup_failure = Some(Failure {
                    kind: "setup_timeout",
                    detail: format!(
                        "connections not all set up within {} s",
                        SETUP_ALL_TIMEOUT.as_secs()
                    ),
                });
            }
        }
    }
    if let Some(failure) = setup_failure {
        ctx.shared.abort.store(true, Ordering::Relaxed);
        drop(go);
        for h in sub_handles {
            let _ = h.join();
        }
        for h in pub_handles {
            let _ = h.join();
        }
        remove_json();
        return Err(explain(args.target, args, failure)
            .context("setting up the publishers and subscribers"));
    }
    let setup_s = setup_start.elapsed().as_secs_f64();
    eprintln!(
        "{} subscribers and {} publishers connected and subscribed in {setup_s:.2} s",
        args.subscribers, args.publishers
    );

    // === Run ===
    let cpu_before = CpuTimes::read();
    let started_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let run_start = Instant::now();
    let start_ns = now_ns() + 20_000_000;
    // With --count the publishers stop by themselves; the hour is the run's outer limit.
    let window = if args.count.is_some() {
        crate::cli::MAX_DURATION
    } else {
        args.duration
    };
    let plan = Plan {
        start_ns,
        warm_ns: start_ns + nanos(args.warmup),
        end_ns: start_ns + nanos(args.warmup) + nanos(window),
    };
    for tx in &go {
        let _ = tx.send(plan);
    }
    let seconds = progress(&ctx, plan, &live_rx, rss.as_ref());

    let mut subs = Vec::new();
    for h in sub_handles {
        subs.push(
            h.join()
                .map_err(|_| anyhow::anyhow!("a subscriber thread panicked"))?,
        );
    }
    let mut pubs = Vec::new();
    for h in pub_handles {
        pubs.push(
            h.join()
                .map_err(|_| anyhow::anyhow!("a publisher thread panicked"))?,
        );
    }
    let elapsed = run_start.elapsed();
    let cpu = CpuTimes::read()
        .zip(cpu_before)
        .map(|(after, before)| after.since(&before, elapsed));
    let server_rss = rss.map(RssSampler::finish);

    // === Report ===
    let mut totals = Totals::new();
    for s in subs {
        totals.add_subscriber(s)?;
    }
    for (i, p) in pubs.into_iter().enumerate() {
        let matched = expected.get(i).copied().unwrap_or(false);
        totals.add_publisher(p, matched, u64::from(args.subscribers), ctx.qos);
    }
    // The measured window: --duration, or with --count from the warm-up's end to the last
    // measured send.
    let window_s = if let Some(count) = args.count {
        if args.rate > 0 {
            // Open loop: the schedule is the window (count messages at the rate).
            count as f64 / args.rate as f64
        } else {
            let last = ctx.shared.last_measured_ns.load(Ordering::Relaxed);
            last.saturating_sub(plan.warm_ns) as f64 / 1e9
        }
    } else {
        args.duration.as_secs_f64()
    };
    let figures = Figures::with_expected(totals.sent, totals.expected, totals.delivered, window_s);
    let error_count = totals.errors.values().map(|t| t.count).sum();
    let report = FanoutReport {
        tool: "rampart-loadgen",
        version: env!("CARGO_PKG_VERSION"),
        mode: "mqtt",
        command_line,
        target: args.target,
        transport: if args.tls { "tls" } else { "tcp" },
        server_name: args.tls.then(|| args.server_name.clone()),
        tls_version: tls_params.as_ref().map(|p| p.0.clone()),
        tls_cipher_suite: tls_params.map(|p| p.1),
        mqtt_version: match version {
            Version::V5 => "5.0",
            _ => "3.1.1",
        },
        qos: args.qos,
        granted_qos,
        publishers: args.publishers,
        subscribers: args.subscribers,
        subscriber_threads: sub_threads,
        payload_bytes: ctx.payload.len(),
        rate_per_publisher: args.rate,
        inflight: totals.inflight,
        max_ahead: args.max_ahead,
        publisher_max_lag_us: (args.rate > 0).then_some(totals.max_lag_ns / 1_000),
        publishers_released: totals.released,
        topic_prefix: topics.prefix.clone(),
        topic: topics.template.clone(),
        filters: ctx.filters.iter().map(|f| f.as_str().to_owned()).collect(),
        publishers_matched: u32::try_from(expected.iter().filter(|e| **e).count())
            .unwrap_or(u32::MAX),
        retain: args.retain,
        count: args.count,
        ramp_up_per_s: args.ramp_up,
        payload_file: args.payload_file.as_ref().map(|p| p.display().to_string()),
        credentials: args
            .credentials_file
            .as_ref()
            .map(|_| ctx.credentials.len()),
        setup_s,
        warmup_s: args.warmup.as_secs_f64(),
        duration_s: window_s,
        elapsed_s: elapsed.as_secs_f64(),
        started_unix_ms,
        sent_total: totals.sent_total,
        received_total: totals.received_total,
        retained_received: totals.retained,
        figures,
        duplicates: totals.duplicates,
        out_of_order: totals.out_of_order,
        subscribers_incomplete: totals.incomplete,
        subscribers_failed: totals.failed,
        unacked: totals.unacked,
        errors: error_count,
        errors_by_kind: Report::errors_from(&totals.errors),
        latency_us: Latency::from_histogram(&totals.latency),
        client_cpu: cpu,
        server_rss,
    };
    print!("{}", report.table());
    if let (Some(file), Some(path)) = (json_file, &args.json) {
        crate::report::write_json(file, path, &report)?;
    }
    if let (Some(file), Some(path)) = (html_file, &args.html) {
        crate::report::write_html(file, path, &timeline::page(&report, &seconds))?;
    }
    if report.figures.delivered == 0 {
        bail!("no message was delivered ({error_count} errors)");
    }
    Ok(())
}

/// Reads `--credentials-file`: `username:password` lines; blank lines and `#` comments are
/// skipped. The file's content never appears in an error.
fn read_credentials(path: &std::path::Path) -> anyhow::Result<Vec<(String, Bytes)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --credentials-file {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        match line.split_once(':') {
            Some((user, password)) if !user.is_empty() => {
                out.push((user.to_owned(), Bytes::from(password.as_bytes().to_vec())));
            }
            _ => bail!(
                "--credentials-file {} line {}: expected `username:password`",
                path.display(),
                n + 1
            ),
        }
    }
    if out.is_empty() {
        bail!("--credentials-file {} has no credentials", path.display());
    }
    Ok(out)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Prints a line per second until every subscriber thread has ended; returns the seconds of
/// the measured window and the drain (deliveries, errors, latency) for `--html`.
fn progress(
    ctx: &Ctx,
    plan: Plan,
    live: &mpsc::Receiver<Histogram<u64>>,
    rss: Option<&RssSampler>,
) -> Vec<Second> {
    let start = Instant::now();
    let mut second = new_histogram();
    let mut timeline = Timeline::new();
    let since_warm = || now_ns().saturating_sub(plan.warm_ns) as f64 / 1e9;
    let mut next_tick = start + Duration::from_secs(1);
    let (mut last_sent, mut last_received) = (0, 0);
    loop {
        let wait = next_tick.saturating_duration_since(Instant::now());
        match live.recv_timeout(wait) {
            Ok(h) => {
                let _ = second.add(&h);
                if now_ns() >= plan.warm_ns {
                    timeline.add(&h);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if Instant::now() < next_tick {
            continue;
        }
        let now = now_ns();
        let phase = if now < plan.warm_ns {
            "warmup"
        } else if now < plan.end_ns {
            "run"
        } else {
            "drain"
        };
        let sent = ctx.shared.sent.load(Ordering::Relaxed);
        let received = ctx.shared.received.load(Ordering::Relaxed);
        let mut line = format!(
            "[{:6.1}s] {phase:<6} sent {}/s  delivered {}/s  errors {}",
            start.elapsed().as_secs_f64(),
            sent - last_sent,
            received - last_received,
            ctx.shared.errors.load(Ordering::Relaxed),
        );
        if !second.is_empty() {
            line.push_str(&format!(
                "  p50 {}  p99 {}",
                fmt_us(second.value_at_quantile(0.5)),
                fmt_us(second.value_at_quantile(0.99)),
            ));
        }
        if let Some(kib) = rss.and_then(RssSampler::current_kib) {
            line.push_str(&format!("  server RSS {:.1} MiB", kib as f64 / 1024.0));
        }
        eprintln!("{line}");
        (last_sent, last_received) = (sent, received);
        let errors = ctx.shared.errors.load(Ordering::Relaxed);
        if now >= plan.warm_ns {
            timeline.tick(since_warm(), received, errors);
        } else {
            // The warm-up's totals are the baseline of the first measured second.
            timeline = Timeline::starting_at(received, errors);
        }
        second.reset();
        next_tick += Duration::from_secs(1);
    }
    timeline.finish(
        since_warm(),
        ctx.shared.received.load(Ordering::Relaxed),
        ctx.shared.errors.load(Ordering::Relaxed),
    )
}

/// Adds a failure to a tally and to the live error count.
pub(crate) fn count_error(
    errors: &mut BTreeMap<&'static str, ErrorTally>,
    shared: &Shared,
    failure: Failure,
) {
    shared.errors.fetch_add(1, Ordering::Relaxed);
    tally(errors, failure);
}

/// Turns a setup failure into an error that says what to check.
fn explain(target: SocketAddr, args: &MqttArgs, failure: Failure) -> anyhow::Error {
    let Failure { kind, detail } = failure;
    let tls_hint = if args.tls {
        "is this a TLS port? (drop --tls for plain TCP)"
    } else {
        "is this a plain-TCP MQTT port? (add --tls --ca FILE for TLS)"
    };
    match kind {
        "tls_alert_received" | "tls_incompatible" | "tls_protocol_error" | "tls_error"
        | "handshake_timeout" => {
            anyhow::anyhow!("TLS handshake with {target} failed: {detail} ({tls_hint})")
        }
        "closed_by_server" | "reset_by_server" | "protocol_error" | "setup_timeout" => {
            anyhow::anyhow!("MQTT session with {target} failed ({kind}): {detail} ({tls_hint})")
        }
        "connack_refused" => anyhow::anyhow!(
            "{target}: {detail} (check --username and --password-file or --credentials-file, \
             and the broker's connection limits)"
        ),
        "suback_refused" => anyhow::anyhow!(
            "{target}: {detail} (may this user subscribe to the --filter options? see also \
             --topic-prefix)"
        ),
        // Connecting and certificates: explained as in every mode.
        _ => crate::runner::explain_connect(target, &args.server_name, kind, &detail)
            .unwrap_or_else(|| {
                anyhow::anyhow!("MQTT session with {target} failed ({kind}): {detail}")
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(progress: &[u64]) -> Shared {
        Shared {
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            final_seq: Vec::new(),
            publishers_done: AtomicUsize::new(0),
            last_measured_ns: AtomicU64::new(0),
            subscriber_threads_running: AtomicUsize::new(0),
            abort: AtomicBool::new(false),
            progress: progress.iter().map(|p| AtomicU64::new(*p)).collect(),
            wakes: Vec::new(),
        }
    }

    #[test]
    fn a_held_back_publisher_is_woken_by_the_subscriber_that_frees_its_room() {
        // A timeout no passing run comes near: the test fails by hanging to it.
        const LONG: Duration = Duration::from_secs(30);
        // One publisher, three subscribers: [s0p0, s1p0, s2p0]; subscriber 2, at 1, is given up.
        let mut s = shared(&[5, 7, 1]);
        s.wakes = vec![Wake::default()];
        let s = Arc::new(s);
        let given_up = [(2, 1)];
        // At 5 only the given-up subscriber is behind: no wait.
        assert!(!s.wait_for(0, 1, 5, &given_up, LONG));
        let waiter = {
            let s = s.clone();
            thread::spawn(move || {
                s.wakes[0].register();
                let start = Instant::now();
                let parked = s.wait_for(0, 1, 10, &given_up, LONG);
                (parked, start.elapsed())
            })
        };
        // Armed for 10 with two subscribers behind: 0 and 1, not the given-up one.
        while s.wakes[0].state() != (10, 2) {
            thread::yield_now();
        }
        s.advance(0, 0, 9); // not there yet
        s.advance(1, 0, 12); // there
        s.advance(1, 0, 12); // no move: not counted twice
        // Checked only while it still waits (a park may end early, spuriously).
        let (want, behind) = s.wakes[0].state();
        assert!(want != 10 || behind == 1, "want {want}, behind {behind}");
        // The last one behind leaves (retired: u64::MAX), which releases the publisher.
        s.advance(0, 0, u64::MAX);
        let (parked, waited) = waiter.join().unwrap();
        assert!(parked);
        assert!(waited < LONG / 2, "waited {waited:?}");
    }

    #[test]
    fn a_stalled_subscriber_is_left_out_until_it_receives_again() {
        // Two publishers, three subscribers: [s0p0, s0p1, s1p0, s1p1, s2p0, s2p1].
        let s = shared(&[40, 9, 3, 9, 3, 9]);
        let mut given_up = Vec::new();
        assert_eq!(s.slowest_live(0, 2, &mut given_up), 3);
        // Publisher 0 gives up subscribers 1 and 2 (both at 3), not 0.
        s.give_up(0, 2, 3, &mut given_up);
        assert_eq!(given_up, vec![(1, 3), (2, 3)]);
        assert_eq!(s.slowest_live(0, 2, &mut given_up), 40);
        // Publisher 1 is not affected.
        assert_eq!(s.slowest_live(1, 2, &mut Vec::new()), 9);
        // Subscriber 2 receives again: it is back in the reckoning.
        s.progress[4].store(4, Ordering::Relaxed);
        assert_eq!(s.slowest_live(0, 2, &mut given_up), 4);
        assert_eq!(given_up, vec![(1, 3)]);
        // A subscriber that is gone (u64::MAX) never holds anyone back.
        let gone = shared(&[u64::MAX]);
        assert_eq!(gone.slowest_live(0, 1, &mut Vec::new()), u64::MAX);
    }
}
