//! A publisher: one thread, one connection, timestamped PUBLISH packets in batches.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rampart_mqtt_proto::{Ack, Packet, Properties, Publish, QoS};

use super::conn::{Conn, reason_name};
use super::track::{Stamp, now_ns};
use super::{Ctx, Plan, Ready, SETUP_TIMEOUT, count_error};
use crate::handshake::io_failure;
use crate::runner::{ErrorTally, Failure};

/// Publications per write when there is no rate limit (one syscall per batch).
const WRITE_BATCH: u64 = 64;

/// Bytes per write at most, whatever the batch (large payloads).
const WRITE_BYTES: usize = 1 << 20;

/// How long a publisher held back by `--max-ahead` waits for half its window before it goes
/// on with whatever room there is.
const HOLD_LIMIT_NS: u64 = 2_000_000;

/// How long a publisher held back by `--max-ahead` without any progress of its slowest
/// subscribers waits before it leaves them out of the limit until they receive again (a
/// subscription the broker granted but delivers nothing to, such as one without `read`
/// access, would otherwise hold it until the end of the run).
const STALL_LIMIT_NS: u64 = 1_000_000_000;

/// The longest a held-back publisher sleeps before it looks again on its own (the run's end,
/// an abort), however long its hold or stall limit.
const PARK_MAX_NS: u64 = 5_000_000;

/// With a rate, how long after the window's end a publisher held back by the broker may go on
/// writing the messages that were due inside it.
const TAIL_LIMIT_NS: u64 = 10_000_000_000;

/// After the run, how long a QoS 1 or 2 publisher waits for the acknowledgements still
/// outstanding.
const ACK_WAIT: Duration = Duration::from_secs(5);

/// What one publisher did.
#[derive(Debug, Default)]
pub(crate) struct PubResult {
    /// Publications written, warm-up included.
    pub(crate) sent_total: u64,
    /// Publications written with a send time inside the measured window.
    pub(crate) sent_measured: u64,
    /// QoS 1 or 2 publications never acknowledged (PUBACK or PUBCOMP).
    pub(crate) unacked: u64,
    /// The in-flight window actually used (QoS 1 or 2).
    pub(crate) inflight: u16,
    /// With --rate: how far behind its schedule the publisher fell at worst, ns (a client
    /// too slow for the load shows here, and its lateness is in the latency).
    pub(crate) max_lag_ns: u64,
    /// Left a subscriber out of `--max-ahead` after it received nothing from this publisher
    /// for [`STALL_LIMIT_NS`].
    pub(crate) released: bool,
    pub(crate) errors: BTreeMap<&'static str, ErrorTally>,
}

/// The in-flight QoS 1 or 2 packet identifiers.
#[derive(Debug)]
struct Inflight {
    used: Vec<bool>,
    count: u16,
    next_id: u16,
}

impl Inflight {
    fn new() -> Self {
        Self {
            used: vec![false; 65_536],
            count: 0,
            next_id: 0,
        }
    }

    /// A free packet identifier (the caller keeps `count` below 65535).
    fn take(&mut self) -> u16 {
        loop {
            self.next_id = self.next_id.checked_add(1).unwrap_or(1);
            let slot = &mut self.used[usize::from(self.next_id)];
            if !*slot {
                *slot = true;
                self.count += 1;
                return self.next_id;
            }
        }
    }

    /// Releases `id`; false if it was not in flight.
    fn release(&mut self, id: u16) -> bool {
        let slot = &mut self.used[usize::from(id)];
        let was = *slot;
        *slot = false;
        if was {
            self.count -= 1;
        }
        was
    }
}

/// The publisher thread: connect, report ready, wait for the plan, publish until its end.
pub(crate) fn run(index: u16, ctx: &Ctx, ready: &Sender<Ready>, go: &Receiver<Plan>) -> PubResult {
    let mut result = PubResult::default();
    if let Some(wake) = ctx.shared.wakes.get(usize::from(index)) {
        wake.register();
    }
    let mut scratch = vec![0u8; 64 * 1024];
    let client_id = format!("{}-p{index}", ctx.client_prefix);
    super::ramp_wait(ctx);
    let setup = Conn::open(
        &ctx.settings_for(usize::from(index)),
        &client_id,
        Instant::now() + SETUP_TIMEOUT,
        &mut scratch,
    );
    let (mut conn, connack) = match setup {
        Ok(ok) => ok,
        Err(failure) => {
            let _ = ready.send(Ready::Failed(failure));
            return result;
        }
    };
    let acked = ctx.qos != QoS::AtMostOnce;
    if let Some(max) = connack.properties.maximum_qos
        && max < ctx.qos as u8
    {
        let _ = ready.send(Ready::Failed(Failure {
            kind: "qos_not_supported",
            detail: format!(
                "the broker's CONNACK says Maximum QoS {max}; --qos {} is not possible",
                ctx.qos as u8
            ),
        }));
        return result;
    }
    let cap = ctx
        .inflight
        .min(connack.properties.receive_maximum.unwrap_or(u16::MAX))
        .max(1);
    result.inflight = cap;
    let topic = ctx
        .topics
        .get(usize::from(index))
        .cloned()
        .unwrap_or_default();
    let mut payload = ctx.payload.clone();
    let mut publish = Publish {
        dup: false,
        qos: ctx.qos,
        retain: ctx.retain,
        topic,
        packet_id: acked.then_some(1),
        properties: Default::default(),
        payload: Bytes::from(payload.stamped(Stamp::default()).to_vec()),
    };
    if let Err(e) = publish.head_encoded_len(conn.version()) {
        let _ = ready.send(Ready::Failed(Failure {
            kind: "encode_error",
            detail: format!("cannot encode the PUBLISH: {e}"),
        }));
        return result;
    }
    // No read timeout while publishing: reads happen only when PUBACKs are awaited, with their
    // own timeout; writes block on the broker's backpressure, within limits.
    let _ = conn.set_write_timeout(Some(Duration::from_secs(30)));
    let _ = ready.send(Ready::Ok { granted_qos: None });
    let Ok(plan) = go.recv() else {
        conn.close();
        return result;
    };
    // Publishers at a rate are spread evenly over one interval, as independent cameras are:
    // a thousand publishers waking at the same instant would measure their own burst.
    let start = plan.start_ns + phase_ns(ctx.rate, index, ctx.publishers);
    let wait = start.saturating_sub(now_ns());
    thread::sleep(Duration::from_nanos(wait));

    let mut inflight = Inflight::new();
    let mut out = BytesMut::with_capacity(64 * 1024);
    let mut seq: u64 = 0;
    let mut ack_timeout: Option<Duration> = None;
    let mut slowest: u64 = 0;
    let mut backoff = Backoff::default();
    // Since when `--max-ahead` has held this publisher back, in `now_ns` time.
    let mut held_since: Option<u64> = None;
    // Subscribers left out of `--max-ahead` after a stall, with their progress then.
    let mut given_up: Vec<(usize, u64)> = Vec::new();
    'run: loop {
        let now = now_ns();
        // With a rate the run ends on the schedule, not the clock: messages due inside the
        // window are written even if the broker held the publisher back past its end.
        let over = if ctx.rate == 0 {
            now >= plan.end_ns
        } else {
            start.saturating_add(scheduled_ns(ctx.rate, seq)) >= plan.end_ns
                || now >= plan.end_ns.saturating_add(TAIL_LIMIT_NS)
        };
        if over
            || ctx.shared.abort.load(Ordering::Relaxed)
            || ctx.count.is_some_and(|c| result.sent_measured >= c)
        {
            break;
        }
        let mut n = if ctx.rate == 0 {
            WRITE_BATCH
        } else {
            due(ctx.rate, now.saturating_sub(start))
                .saturating_sub(seq)
                .min(WRITE_BATCH.max(ctx.rate / 100))
        };
        if acked {
            n = n.min(u64::from(cap - inflight.count));
        }
        if ctx.max_ahead > 0 && n > 0 {
            let limit = slowest.saturating_add(ctx.max_ahead);
            if seq + n > limit {
                slowest =
                    ctx.shared
                        .slowest_live(usize::from(index), ctx.publishers, &mut given_up);
                let room = slowest.saturating_add(ctx.max_ahead).saturating_sub(seq);
                let now = now_ns();
                let held = *held_since.get_or_insert(now);
                // Some room, long enough held back: go on with what there is. Progress is the
                // highest sequence seen, so messages the broker dropped at the end of a burst
                // are never made up for, and waiting for half the window could last forever.
                let resume = room > 0 && now.saturating_sub(held) >= HOLD_LIMIT_NS;
                // No room for this long: the slowest subscribers received nothing from this
                // publisher meanwhile. Leave them out until they do; what they miss is lost.
                if room == 0 && now.saturating_sub(held) >= STALL_LIMIT_NS {
                    ctx.shared
                        .give_up(usize::from(index), ctx.publishers, slowest, &mut given_up);
                    result.released = true;
                    held_since = None;
                    backoff.reset();
                    continue;
                }
                if room < resume_room(ctx.max_ahead, n) && !resume {
                    if acked && inflight.count > 0 {
                        // Acknowledgements may be what the subscribers wait for (a QoS 2
                        // message goes out after our PUBREL): read them meanwhile.
                        let wait = Duration::from_millis(1);
                        if ack_timeout != Some(wait) {
                            let _ = conn.set_read_timeout(Some(wait));
                            ack_timeout = Some(wait);
                        }
                        if let Err(failure) =
                            read_acks(&mut conn, &mut inflight, &mut scratch, &mut result)
                        {
                            count_error(&mut result.errors, &ctx.shared, failure);
                            break;
                        }
                    } else {
                        // The slowest subscribers are far behind: sleep until they have made
                        // the room waited for (the last of them wakes this thread), or until
                        // the hold or stall limit. Polling cost a context switch per few
                        // messages on the CPUs the broker needs (see `wake.rs`).
                        let want =
                            (seq + resume_room(ctx.max_ahead, n)).saturating_sub(ctx.max_ahead);
                        let limit = if room > 0 {
                            HOLD_LIMIT_NS
                        } else {
                            STALL_LIMIT_NS
                        };
                        let left = held.saturating_add(limit).saturating_sub(now);
                        ctx.shared.wait_for(
                            usize::from(index),
                            ctx.publishers,
                            want,
                            &given_up,
                            Duration::from_nanos(left.clamp(50_000, PARK_MAX_NS)),
                        );
                    }
                    continue;
                }
                backoff.reset();
                held_since = None;
                n = n.min(room);
            }
        }
        if n > 0 {
            out.clear();
            let mut written = 0;
            let mut last_measured = None;
            if ctx.rate > 0 {
                let lag =
                    now_ns().saturating_sub(start.saturating_add(scheduled_ns(ctx.rate, seq)));
                result.max_lag_ns = result.max_lag_ns.max(lag);
            }
            for _ in 0..n {
                // Open loop: the scheduled time, so falling behind counts as latency.
                let sent_ns = if ctx.rate == 0 {
                    now_ns()
                } else {
                    start.saturating_add(scheduled_ns(ctx.rate, seq))
                };
                // Past the window's end nothing counts: such a message would be expected but
                // never measured at the subscribers.
                if sent_ns >= plan.end_ns || out.len() >= WRITE_BYTES {
                    break;
                }
                if acked {
                    publish.packet_id = Some(inflight.take());
                }
                // Checked above with the same lengths: the head always encodes.
                if publish.encode_head(conn.version(), &mut out).is_err() {
                    break 'run;
                }
                out.extend_from_slice(payload.stamped(Stamp {
                    sent_ns,
                    publisher: index,
                    seq,
                }));
                seq += 1;
                written += 1;
                if sent_ns >= plan.warm_ns {
                    result.sent_measured += 1;
                    last_measured = Some(sent_ns);
                    if ctx.count.is_some_and(|c| result.sent_measured >= c) {
                        break;
                    }
                }
            }
            if let Err(e) = conn.send(&out) {
                count_error(&mut result.errors, &ctx.shared, io_failure(e));
                break;
            }
            if let Some(t) = last_measured {
                ctx.shared.last_measured_ns.fetch_max(t, Ordering::Relaxed);
            }
            ctx.shared.sent.fetch_add(written, Ordering::Relaxed);
        }
        if acked && inflight.count > 0 && (inflight.count == cap || n == 0) {
            // Wait for PUBACKs, at most until the next message is due.
            let until_due = if ctx.rate == 0 {
                Duration::from_millis(100)
            } else {
                Duration::from_nanos(next_due_in(ctx.rate, now_ns().saturating_sub(start), seq))
                    .clamp(Duration::from_micros(100), Duration::from_millis(100))
            };
            if ack_timeout != Some(until_due) {
                let _ = conn.set_read_timeout(Some(until_due));
                ack_timeout = Some(until_due);
            }
            if let Err(failure) = read_acks(&mut conn, &mut inflight, &mut scratch, &mut result) {
                count_error(&mut result.errors, &ctx.shared, failure);
                break;
            }
        } else if n == 0 {
            if ctx.rate == 0 {
                // Held back with nothing in flight: checked again shortly.
                backoff.wait();
                continue;
            }
            let left = plan.end_ns.saturating_sub(now_ns());
            let next = next_due_in(ctx.rate, now_ns().saturating_sub(start), seq);
            thread::sleep(Duration::from_nanos(next.min(left)));
        }
    }
    result.sent_total = seq;
    ctx.shared.finished(index, seq);

    if acked {
        let deadline = Instant::now() + ACK_WAIT;
        let _ = conn.set_read_timeout(Some(Duration::from_millis(100)));
        while inflight.count > 0 && Instant::now() < deadline {
            if let Err(failure) = read_acks(&mut conn, &mut inflight, &mut scratch, &mut result) {
                count_error(&mut result.errors, &ctx.shared, failure);
                break;
            }
        }
        result.unacked = u64::from(inflight.count);
    }
    // Stay connected until the subscribers are done, so no broker-side cleanup runs meanwhile.
    while !ctx.shared.subscribers_done() {
        thread::sleep(Duration::from_millis(20));
    }
    conn.close();
    result
}

/// Messages due at `elapsed_ns` after the start at `rate` per second (the first at once).
pub(crate) fn due(rate: u64, elapsed_ns: u64) -> u64 {
    let n = u128::from(rate) * u128::from(elapsed_ns) / 1_000_000_000 + 1;
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// How much room under `--max-ahead` a held-back publisher waits for before it writes again:
/// half the window, or the `wanted` messages if fewer. Resuming at the first free slot cost a
/// context switch per few messages: in the fan-in benchmark (`--max-ahead 50`) each publisher
/// switched 3,600 times a second at about 37,000 messages a second, ten messages per system
/// call and TLS record, on the client and the broker alike.
fn resume_room(max_ahead: u64, wanted: u64) -> u64 {
    (max_ahead / 2).clamp(1, wanted.max(1))
}

/// Publisher `index`'s offset within the first interval at `rate` messages/s, so `publishers`
/// publishers are spread evenly over it (0 without a rate).
fn phase_ns(rate: u64, index: u16, publishers: usize) -> u64 {
    if rate == 0 || publishers == 0 {
        return 0;
    }
    let interval = 1_000_000_000 / u128::from(rate);
    let at = interval * u128::from(index) / publishers as u128;
    u64::try_from(at).unwrap_or(0)
}

/// Waits between checks of a publisher with nothing it may send: 50 µs, doubling up to 1 ms.
/// (One held back by `--max-ahead` with room to wait for parks instead: `wake.rs`.)
#[derive(Debug, Default)]
struct Backoff {
    next_us: u64,
}

impl Backoff {
    fn wait(&mut self) {
        thread::sleep(self.next());
    }

    /// The next wait: the last one doubled, within 50 µs and 1 ms.
    fn next(&mut self) -> Duration {
        self.next_us = (self.next_us * 2).clamp(50, 1_000);
        Duration::from_micros(self.next_us)
    }

    fn reset(&mut self) {
        self.next_us = 0;
    }
}

/// When message number `seq` (0-based) is due at `rate` per second, ns after the start.
fn scheduled_ns(rate: u64, seq: u64) -> u64 {
    if rate == 0 {
        return 0;
    }
    let at = u128::from(seq) * 1_000_000_000 / u128::from(rate);
    u64::try_from(at).unwrap_or(u64::MAX)
}

/// Nanoseconds from `elapsed_ns` until message number `seq` (0-based) is due.
fn next_due_in(rate: u64, elapsed_ns: u64, seq: u64) -> u64 {
    if rate == 0 {
        return 0;
    }
    scheduled_ns(rate, seq).saturating_sub(elapsed_ns)
}

/// One read; releases the acknowledged packet identifiers (PUBACK; PUBCOMP after the PUBREL
/// that answers a PUBREC).
fn read_acks(
    conn: &mut Conn,
    inflight: &mut Inflight,
    scratch: &mut [u8],
    result: &mut PubResult,
) -> Result<(), Failure> {
    match conn.fill(scratch) {
        Ok(_) => {}
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
            ) =>
        {
            return Ok(());
        }
        Err(e) => return Err(io_failure(e)),
    }
    let mut rel = BytesMut::new();
    while let Some(packet) = conn.next_packet()? {
        match packet {
            Packet::Pubrec(ack) if ack.reason_code < 0x80 => {
                let pubrel = Packet::Pubrel(Ack {
                    packet_id: ack.packet_id,
                    reason_code: 0,
                    properties: Properties::default(),
                });
                pubrel
                    .encode(conn.version(), &mut rel)
                    .map_err(|e| Failure {
                        kind: "encode_error",
                        detail: e.to_string(),
                    })?;
            }
            // A refused PUBREC ends the exchange like a PUBACK does.
            packet @ (Packet::Puback(_) | Packet::Pubcomp(_) | Packet::Pubrec(_)) => {
                let kind = packet.kind();
                let (Packet::Puback(ack) | Packet::Pubcomp(ack) | Packet::Pubrec(ack)) = packet
                else {
                    continue;
                };
                if !inflight.release(ack.packet_id) {
                    super::tally(
                        &mut result.errors,
                        Failure {
                            kind: "ack_unknown_id",
                            detail: format!("{kind} for packet id {} not in flight", ack.packet_id),
                        },
                    );
                }
                if ack.reason_code >= 0x80 {
                    super::tally(
                        &mut result.errors,
                        Failure {
                            kind: "publish_refused",
                            detail: format!(
                                "{kind} reason 0x{:02x} ({})",
                                ack.reason_code,
                                reason_name(ack.reason_code)
                            ),
                        },
                    );
                }
            }
            Packet::Pingresp => {}
            Packet::Disconnect(d) => {
                return Err(Failure {
                    kind: "disconnected_by_broker",
                    detail: format!(
                        "DISCONNECT reason 0x{:02x} ({})",
                        d.reason_code,
                        reason_name(d.reason_code)
                    ),
                });
            }
            other => {
                return Err(Failure {
                    kind: "unexpected_packet",
                    detail: format!("a publisher received {}", other.kind()),
                });
            }
        }
    }
    if !rel.is_empty() {
        conn.send(&rel).map_err(io_failure)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing() {
        assert_eq!(due(1000, 0), 1);
        assert_eq!(due(1000, 999_999), 1);
        assert_eq!(due(1000, 1_000_000), 2);
        assert_eq!(due(1000, 1_000_000_000), 1001);
        assert_eq!(next_due_in(1000, 0, 1), 1_000_000);
        assert_eq!(next_due_in(1000, 1_500_000, 1), 0);
        assert_eq!(next_due_in(0, 5, 9), 0);
    }

    #[test]
    fn publishers_are_spread_over_one_interval() {
        // 4 publishers at 10/s: 0, 25, 50 and 75 ms into each 100 ms.
        let phases: Vec<u64> = (0..4).map(|i| phase_ns(10, i, 4)).collect();
        assert_eq!(phases, [0, 25_000_000, 50_000_000, 75_000_000]);
        assert_eq!(phase_ns(0, 3, 4), 0);
        assert!(phase_ns(1, 1023, 1024) < 1_000_000_000);
        let mut b = Backoff::default();
        let waits: Vec<u128> = (0..7).map(|_| b.next().as_micros()).collect();
        assert_eq!(waits, [50, 100, 200, 400, 800, 1_000, 1_000]);
        b.reset();
        assert_eq!(b.next().as_micros(), 50);
    }

    #[test]
    fn a_held_back_publisher_waits_for_half_its_window() {
        // Or for what it wants, if less; never for nothing.
        assert_eq!(resume_room(50, 64), 25);
        assert_eq!(resume_room(50, 3), 3);
        assert_eq!(resume_room(1, 64), 1);
        assert_eq!(resume_room(1000, 0), 1);
    }

    #[test]
    fn packet_ids() {
        let mut f = Inflight::new();
        let a = f.take();
        let b = f.take();
        assert_ne!(a, b);
        assert_ne!(a, 0);
        assert_eq!(f.count, 2);
        assert!(f.release(a));
        assert!(!f.release(a));
        assert_eq!(f.count, 1);
        f.next_id = u16::MAX - 1;
        assert_eq!(f.take(), u16::MAX);
        assert_eq!(f.take(), 1);
    }
}
