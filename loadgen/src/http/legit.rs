//! The legitimate load: one thread per keep-alive connection, each sending its share of a
//! fixed schedule (open loop) or sending as fast as it is answered (closed loop).
//!
//! Open loop: request `k` of the whole run is due at `start + k / rate`, and connection `i` of
//! `n` sends requests `i, i + n, i + 2n, ...`. A request is sent at its due time, or at once if
//! the connection is still busy with an earlier one, and its latency counts from the *due*
//! time: a server that stalls is charged for the requests that waited behind the stall, not
//! only for the one that was stuck (coordinated omission, as in wrk2). The thread's own wake-up
//! delay (tens of µs) is charged too. Requests due before the end but never sent (the
//! connection was still behind when the run ended) are reported as unsent.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use hdrhistogram::Histogram;

use super::client::{Answer, Conn, Endpoint};
use crate::runner::{ErrorTally, Failure, new_histogram, record};

/// How often a worker ships its recent latencies to the progress line.
const SHIP_EVERY: Duration = Duration::from_millis(250);

/// Pause after a failed connect in closed loop, so a server that is down is not hammered.
const CLOSED_LOOP_BACKOFF: Duration = Duration::from_millis(10);

/// Counters for the progress line (measured requests only) and the stop signal.
#[derive(Debug, Default)]
pub(crate) struct Live {
    pub(crate) sent: AtomicU64,
    pub(crate) ok: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) attackers_alive: AtomicU64,
    pub(crate) stop: AtomicBool,
}

/// The run's time line: sending starts at `start`, counts from `warm`, stops at `end`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub(crate) start: Instant,
    pub(crate) warm: Instant,
    pub(crate) end: Instant,
}

/// What every legitimate connection sends.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) endpoint: Endpoint,
    pub(crate) request: Vec<u8>,
    pub(crate) method: &'static str,
    pub(crate) timeout: Duration,
    /// Requests per second, all connections together; 0 = closed loop.
    pub(crate) rate: u64,
    pub(crate) connections: u64,
    pub(crate) window: Window,
}

/// What the legitimate connections measured (one per thread, merged at the end).
#[derive(Debug)]
pub(crate) struct Tally {
    /// Open loop: requests due in the measured window; closed loop: equal to `sent`.
    pub(crate) scheduled: u64,
    /// Requests sent in the measured window.
    pub(crate) sent: u64,
    /// Answered with a 2xx status.
    pub(crate) ok: u64,
    /// Failed requests by kind: transport failures and non-2xx statuses.
    pub(crate) failures: BTreeMap<&'static str, ErrorTally>,
    /// Every status received, 2xx included.
    pub(crate) statuses: BTreeMap<u16, u64>,
    /// Latency of the 2xx answers, µs (open loop: from the scheduled send time).
    pub(crate) latency_us: Histogram<u64>,
    /// Connections opened (the first, and every reconnect).
    pub(crate) connections_opened: u64,
    /// Requests resent once on a new connection because a kept-alive one turned out to be
    /// closed before any byte of the answer came back (as browsers do).
    pub(crate) stale_retries: u64,
    /// Response body bytes received.
    pub(crate) body_bytes: u64,
}

impl Tally {
    pub(crate) fn new() -> Self {
        Self {
            scheduled: 0,
            sent: 0,
            ok: 0,
            failures: BTreeMap::new(),
            statuses: BTreeMap::new(),
            latency_us: new_histogram(),
            connections_opened: 0,
            stale_retries: 0,
            body_bytes: 0,
        }
    }

    /// Failed requests.
    pub(crate) fn failed(&self) -> u64 {
        self.failures.values().map(|t| t.count).sum()
    }

    /// Adds another thread's figures to these.
    pub(crate) fn merge(&mut self, other: Self) -> Result<(), hdrhistogram::errors::AdditionError> {
        self.scheduled += other.scheduled;
        self.sent += other.sent;
        self.ok += other.ok;
        for (kind, tally) in other.failures {
            self.failures
                .entry(kind)
                .and_modify(|t| t.count += tally.count)
                .or_insert(tally);
        }
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.latency_us.add(&other.latency_us)?;
        self.connections_opened += other.connections_opened;
        self.stale_retries += other.stale_retries;
        self.body_bytes += other.body_bytes;
        Ok(())
    }

    fn fail(&mut self, failure: Failure) {
        self.failures
            .entry(failure.kind)
            .or_insert_with(|| ErrorTally {
                count: 0,
                example: failure.detail,
            })
            .count += 1;
    }
}

/// The failure kind of a non-2xx status, by class.
pub(crate) fn status_failure(status: u16) -> Failure {
    let kind = match status {
        100..=199 => "status_1xx",
        300..=399 => "status_3xx",
        400..=499 => "status_4xx",
        _ => "status_5xx",
    };
    Failure {
        kind,
        detail: format!(
            "HTTP {status} {}",
            rampart_http_proto::status_reason(status)
        ),
    }
}

/// How many of connection `index`'s requests (every `stride`-th of the run's, from the
/// `index`-th, at `rate` per second) are due in `[from_s, to_s)` seconds after the start.
pub(crate) fn due_between(index: u64, stride: u64, rate: u64, from_s: f64, to_s: f64) -> u64 {
    // Requests with a due time before `t`: k >= 0 with (index + k * stride) / rate < t.
    let before = |t: f64| -> u64 {
        let x = t * rate as f64 - index as f64;
        if x <= 0.0 {
            0
        } else {
            (x / stride.max(1) as f64).ceil() as u64
        }
    };
    before(to_s).saturating_sub(before(from_s))
}

/// One connection's thread.
#[derive(Debug)]
pub(crate) struct Worker<'a> {
    plan: &'a Plan,
    index: u64,
    conn: Option<Conn>,
    buf: BytesMut,
    tally: Tally,
}

impl<'a> Worker<'a> {
    pub(crate) fn new(plan: &'a Plan, index: u64) -> Self {
        Self {
            plan,
            index,
            conn: None,
            buf: BytesMut::with_capacity(16 * 1024),
            tally: Tally::new(),
        }
    }

    /// Sends until the end of the window; returns what was measured.
    pub(crate) fn run(mut self, live: &Live, tx: &mpsc::Sender<Vec<u64>>) -> Tally {
        let plan = self.plan;
        let w = plan.window;
        let mut batch = Vec::new();
        let mut last_ship = Instant::now();
        let mut k = 0u64;
        while !live.stop.load(Ordering::Relaxed) {
            let due = if plan.rate > 0 {
                let n = self.index + k * plan.connections;
                k += 1;
                let at = w.start + Duration::from_secs_f64(n as f64 / plan.rate as f64);
                if at >= w.end {
                    break;
                }
                if let Some(wait) = at.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                at
            } else {
                Instant::now()
            };
            if Instant::now() >= w.end {
                break;
            }
            let measured = due >= w.warm;
            let outcome = self.once();
            let latency = due.elapsed();
            let connect_failed = matches!(&outcome, Err(f) if f.kind.starts_with("connect_"));
            if measured {
                self.tally.sent += 1;
                live.sent.fetch_add(1, Ordering::Relaxed);
                match outcome {
                    Ok(answer) => {
                        *self.tally.statuses.entry(answer.status).or_default() += 1;
                        self.tally.body_bytes += answer.body_bytes;
                        if (200..300).contains(&answer.status) {
                            let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                            record(&mut self.tally.latency_us, us);
                            batch.push(us);
                            self.tally.ok += 1;
                            live.ok.fetch_add(1, Ordering::Relaxed);
                        } else {
                            self.tally.fail(status_failure(answer.status));
                            live.failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(failure) => {
                        self.tally.fail(failure);
                        live.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            if last_ship.elapsed() >= SHIP_EVERY && !batch.is_empty() {
                // The receiver only goes away after every worker has ended.
                let _ = tx.send(std::mem::take(&mut batch));
                last_ship = Instant::now();
            }
            if plan.rate == 0 && connect_failed {
                std::thread::sleep(CLOSED_LOOP_BACKOFF);
            }
        }
        if !batch.is_empty() {
            let _ = tx.send(batch);
        }
        self.tally.scheduled = if plan.rate > 0 {
            due_between(
                self.index,
                plan.connections,
                plan.rate,
                (w.warm - w.start).as_secs_f64(),
                (w.end - w.start).as_secs_f64(),
            )
        } else {
            self.tally.sent
        };
        self.tally
    }

    /// One request, on the kept-alive connection or a new one.
    pub(crate) fn once(&mut self) -> Result<Answer, Failure> {
        let plan = self.plan;
        let deadline = Instant::now() + plan.timeout;
        let mut retried = false;
        loop {
            let reused = self.conn.is_some();
            let conn = match &mut self.conn {
                Some(conn) => conn,
                None => {
                    self.tally.connections_opened += 1;
                    self.conn.insert(Conn::open(&plan.endpoint, deadline)?)
                }
            };
            match conn.exchange(&plan.request, plan.method, deadline, &mut self.buf) {
                Ok(answer) => {
                    if !answer.keep_alive {
                        self.conn = None;
                    }
                    return Ok(answer);
                }
                Err(e) => {
                    self.conn = None;
                    let stale = reused
                        && !retried
                        && e.nothing_received
                        && matches!(e.failure.kind, "closed_by_server" | "reset_by_server");
                    if !stale {
                        return Err(e.failure);
                    }
                    retried = true;
                    self.tally.stale_retries += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_shares_add_up_to_rate_times_duration() {
        // 200/s over 4 connections, warm-up 0.5 s, measured 3 s: 600 due in the window.
        let total: u64 = (0..4).map(|i| due_between(i, 4, 200, 0.5, 3.5)).sum();
        assert_eq!(total, 600);
        // Uneven split: 7 connections, 1000/s, 1 s.
        let shares: Vec<u64> = (0..7).map(|i| due_between(i, 7, 1000, 0.0, 1.0)).collect();
        assert_eq!(shares.iter().sum::<u64>(), 1000);
        assert!(shares.iter().all(|&s| s == 142 || s == 143), "{shares:?}");
        // Fewer requests than connections.
        let total: u64 = (0..10).map(|i| due_between(i, 10, 3, 0.0, 1.0)).sum();
        assert_eq!(total, 3);
        assert_eq!(due_between(0, 1, 100, 1.0, 1.0), 0);
    }

    fn tally(ok: u64, lat: &[u64], fail: &[(&'static str, u64)]) -> Tally {
        let mut t = Tally::new();
        t.sent = ok + fail.iter().map(|f| f.1).sum::<u64>();
        t.scheduled = t.sent + 1;
        t.ok = ok;
        *t.statuses.entry(200).or_default() += ok;
        for &v in lat {
            record(&mut t.latency_us, v);
        }
        for &(kind, n) in fail {
            for i in 0..n {
                t.fail(Failure {
                    kind,
                    detail: format!("{kind} #{i}"),
                });
            }
        }
        t.connections_opened = 1;
        t
    }

    #[test]
    fn threads_merge() {
        let mut a = tally(3, &[100, 200, 300], &[("timeout", 1)]);
        let b = tally(
            2,
            &[1_000, 5_000_000],
            &[("timeout", 2), ("connect_refused", 1)],
        );
        a.merge(b).unwrap();
        assert_eq!((a.sent, a.scheduled, a.ok, a.failed()), (9, 11, 5, 4));
        assert_eq!(a.failures["timeout"].count, 3);
        // The first example of a kind is kept.
        assert_eq!(a.failures["timeout"].example, "timeout #0");
        assert_eq!(a.failures["connect_refused"].count, 1);
        assert_eq!(a.statuses[&200], 5);
        assert_eq!(a.connections_opened, 2);
        let h = &a.latency_us;
        assert_eq!(h.len(), 5);
        assert_eq!(h.min(), 100);
        // 5 s recorded in a histogram that started small: it grew rather than clamped.
        assert!(h.max() >= 5_000_000 && h.max() < 5_010_000, "{}", h.max());
        assert!((299..=301).contains(&h.value_at_quantile(0.5)));
    }

    #[test]
    fn statuses_classify() {
        assert_eq!(status_failure(404).kind, "status_4xx");
        assert_eq!(status_failure(503).kind, "status_5xx");
        assert_eq!(status_failure(301).kind, "status_3xx");
        assert_eq!(status_failure(408).detail, "HTTP 408 Request Timeout");
    }
}
