//! Runs N workers on OS threads until a time or count limit, with a live progress line.
//!
//! Each worker owns its operation state and a histogram of latencies in microseconds; the
//! histograms and error tallies are merged when the workers end. For the live line, workers
//! also ship their recent latencies to the main thread in small batches over a channel (no
//! shared locks).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hdrhistogram::Histogram;

use crate::report::fmt_us;
use crate::rss::RssSampler;

/// How often a worker ships its recent latencies to the progress line.
const BATCH_EVERY: Duration = Duration::from_millis(250);

/// One unit of load (one connection's life, for handshakes).
pub(crate) trait Op: Send + 'static {
    /// Runs one operation; returns its latency.
    fn once(&mut self) -> Result<Duration, Failure>;
}

/// A failed operation, by kind (the tally key) with one human-readable example.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) kind: &'static str,
    pub(crate) detail: String,
}

/// How the errors of one kind went.
#[derive(Debug, Clone)]
pub(crate) struct ErrorTally {
    pub(crate) count: u64,
    /// The first error of this kind, as text.
    pub(crate) example: String,
}

/// When to stop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) time: Duration,
    pub(crate) count: Option<u64>,
}

/// Everything the workers measured.
#[derive(Debug)]
pub(crate) struct Totals<O> {
    pub(crate) ok: u64,
    pub(crate) errors: BTreeMap<&'static str, ErrorTally>,
    pub(crate) latency_us: Histogram<u64>,
    pub(crate) elapsed: Duration,
    /// The workers' operation state, for mode-specific counters.
    pub(crate) ops: Vec<O>,
}

impl<O> Totals<O> {
    pub(crate) fn error_count(&self) -> u64 {
        self.errors.values().map(|t| t.count).sum()
    }
}

struct Shared {
    deadline: Instant,
    count: Option<u64>,
    issued: AtomicU64,
    ok: AtomicU64,
    errors: AtomicU64,
    stop: AtomicBool,
}

impl Shared {
    /// Claims the next operation, or says the run is over.
    fn next(&self) -> bool {
        if self.stop.load(Ordering::Relaxed) || Instant::now() >= self.deadline {
            return false;
        }
        match self.count {
            Some(n) => self.issued.fetch_add(1, Ordering::Relaxed) < n,
            None => true,
        }
    }
}

struct WorkerResult<O> {
    op: O,
    hist: Histogram<u64>,
    errors: BTreeMap<&'static str, ErrorTally>,
}

pub(crate) fn new_histogram() -> Histogram<u64> {
    // Auto-resizing, 3 significant digits: small for loopback latencies, grows as needed (see
    // `record`).
    Histogram::new(3).expect("3 significant digits is a valid histogram precision")
}

/// Records one value; the histogram grows to fit it (`saturating_record` would clamp instead).
pub(crate) fn record(hist: &mut Histogram<u64>, value: u64) {
    if hist.record(value).is_err() {
        // Only when growing failed (values near u64::MAX): clamp rather than lose the sample.
        hist.saturating_record(value);
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Runs one worker per op until the limits; prints a progress line to stderr every second.
pub(crate) fn drive<O: Op>(
    ops: Vec<O>,
    limits: Limits,
    rss: Option<&RssSampler>,
    label: &str,
) -> anyhow::Result<Totals<O>> {
    let start = Instant::now();
    let shared = Arc::new(Shared {
        deadline: start + limits.time,
        count: limits.count,
        issued: AtomicU64::new(0),
        ok: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let (tx, rx) = mpsc::channel::<Vec<u64>>();
    let mut handles = Vec::with_capacity(ops.len());
    for (i, op) in ops.into_iter().enumerate() {
        let worker_shared = shared.clone();
        let tx = tx.clone();
        let spawned = thread::Builder::new()
            .name(format!("loadgen-{i}"))
            .stack_size(1024 * 1024)
            .spawn(move || worker(op, &worker_shared, &tx));
        match spawned {
            Ok(handle) => handles.push(handle),
            Err(error) => {
                shared.stop.store(true, Ordering::Relaxed);
                for handle in handles {
                    let _ = handle.join();
                }
                return Err(error).context(format!("starting worker thread {i}"));
            }
        }
    }
    drop(tx);

    // Progress until every worker has dropped its sender.
    let mut live = new_histogram();
    let mut next_tick = start + Duration::from_secs(1);
    let mut last_ok = 0;
    loop {
        let wait = next_tick.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(batch) => {
                for v in batch {
                    record(&mut live, v);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if Instant::now() >= next_tick {
            let ok = shared.ok.load(Ordering::Relaxed);
            let errors = shared.errors.load(Ordering::Relaxed);
            let secs = start.elapsed().as_secs_f64();
            let mut line = format!(
                "[{secs:6.1}s] {label} {ok} ({:.0}/s, avg {:.0}/s)  errors {errors}  p50 {}  p99 {}",
                (ok - last_ok) as f64,
                ok as f64 / secs,
                fmt_us(live.value_at_quantile(0.5)),
                fmt_us(live.value_at_quantile(0.99)),
            );
            if let Some(kib) = rss.and_then(RssSampler::current_kib) {
                line.push_str(&format!("  server RSS {:.1} MiB", kib as f64 / 1024.0));
            }
            eprintln!("{line}");
            last_ok = ok;
            next_tick += Duration::from_secs(1);
        }
    }

    let mut totals = Totals {
        ok: 0,
        errors: BTreeMap::new(),
        latency_us: new_histogram(),
        elapsed: Duration::ZERO,
        ops: Vec::with_capacity(handles.len()),
    };
    for handle in handles {
        let result = handle
            .join()
            .map_err(|_| anyhow::anyhow!("a worker thread panicked"))?;
        totals.ok += result.hist.len();
        totals
            .latency_us
            .add(&result.hist)
            .context("merging histograms")?;
        for (kind, tally) in result.errors {
            totals
                .errors
                .entry(kind)
                .and_modify(|t| t.count += tally.count)
                .or_insert(tally);
        }
        totals.ops.push(result.op);
    }
    totals.elapsed = start.elapsed();
    Ok(totals)
}

fn worker<O: Op>(mut op: O, shared: &Shared, tx: &mpsc::Sender<Vec<u64>>) -> WorkerResult<O> {
    let mut hist = new_histogram();
    let mut errors: BTreeMap<&'static str, ErrorTally> = BTreeMap::new();
    let mut batch = Vec::new();
    let mut last_sent = Instant::now();
    while shared.next() {
        match op.once() {
            Ok(latency) => {
                let us = micros(latency);
                record(&mut hist, us);
                batch.push(us);
                shared.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(failure) => {
                tally(&mut errors, failure);
                shared.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        if last_sent.elapsed() >= BATCH_EVERY {
            // The receiver only goes away after every worker has ended.
            let _ = tx.send(std::mem::take(&mut batch));
            last_sent = Instant::now();
        }
    }
    if !batch.is_empty() {
        let _ = tx.send(batch);
    }
    WorkerResult { op, hist, errors }
}

/// Adds a failure to a tally.
pub(crate) fn tally(errors: &mut BTreeMap<&'static str, ErrorTally>, failure: Failure) {
    errors
        .entry(failure.kind)
        .or_insert_with(|| ErrorTally {
            count: 0,
            example: failure.detail,
        })
        .count += 1;
}

/// What to check when the first connection fails to connect or to complete TLS; None for
/// failures after that (each mode explains its own).
pub(crate) fn explain_connect(
    target: SocketAddr,
    server_name: &str,
    kind: &str,
    detail: &str,
) -> Option<anyhow::Error> {
    Some(match kind {
        "connect_refused" => anyhow::anyhow!(
            "cannot connect to {target}: {detail} (is the server running and listening there?)"
        ),
        "connect_timeout" | "connect_no_local_port" | "connect_error" => {
            anyhow::anyhow!("cannot connect to {target}: {detail}")
        }
        "tls_bad_certificate" => anyhow::anyhow!(
            "TLS handshake with {target} failed: {detail} (does --ca hold the CA that signed \
             the server's certificate, and is `{server_name}` (--server-name) one of its names?)"
        ),
        "tls_alert_received" | "tls_incompatible" => anyhow::anyhow!(
            "TLS handshake with {target} failed: {detail} (does the server accept this TLS \
             version, see --tls12, and our cipher suites?)"
        ),
        "handshake_timeout" | "tls_handshake_timeout" => anyhow::anyhow!(
            "TLS handshake with {target} failed: {detail} (the server accepted the connection \
             but did not complete TLS; is this a TLS port?)"
        ),
        _ => return None,
    })
}
