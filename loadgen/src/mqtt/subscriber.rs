//! Subscribers: a few threads, each watching its share of the subscriber connections with
//! epoll (level-triggered, blocking sockets: a socket is read only when it is readable).

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use hdrhistogram::Histogram;
use rampart_mqtt_proto::{Ack, Packet, Properties, QoS, TopicFilter};
use rustix::buffer::spare_capacity;
use rustix::event::epoll;

use super::conn::{Conn, reason_name};
use super::track::{Seen, SeqTrack, Stamp, now_ns};
use super::{Ctx, Plan, Ready, SETUP_TIMEOUT, count_error, new_histogram, record};
use crate::handshake::io_failure;
use crate::runner::{ErrorTally, Failure};

/// After the publishers stop: stop once no byte arrived for this long...
const QUIET: Duration = Duration::from_secs(1);
/// ... or at the latest this long after they stopped.
const DRAIN_MAX: Duration = Duration::from_secs(10);
/// How often the live figures go to the progress line.
const SHIP_EVERY: Duration = Duration::from_millis(250);
/// How often every subscriber sends PINGREQ (well within the keep alive).
const PING_EVERY: Duration = Duration::from_secs(20);

/// What one subscriber thread measured.
#[derive(Debug)]
pub(crate) struct SubResult {
    /// Latency of every PUBLISH received with a send time in the measured window, µs.
    pub(crate) latency_us: Histogram<u64>,
    /// Every PUBLISH received, warm-up included.
    pub(crate) received_total: u64,
    /// Retained messages delivered at subscription time (RETAIN set); not measured.
    pub(crate) retained: u64,
    /// Distinct messages received per subscriber with a send time in the measured window.
    pub(crate) delivered: u64,
    pub(crate) duplicates: u64,
    pub(crate) out_of_order: u64,
    /// Subscribers that had not received every publisher's last message when they stopped.
    pub(crate) incomplete: u32,
    /// Subscribers whose connection failed during the run.
    pub(crate) failed: u32,
    pub(crate) errors: BTreeMap<&'static str, ErrorTally>,
}

struct Sub {
    /// Index over all subscribers.
    id: usize,
    conn: Conn,
    tracks: Vec<SeqTrack>,
    /// PUBACKs to send after the current read.
    out: BytesMut,
    alive: bool,
}

/// The thread of subscribers `ids`: connect and subscribe each, report ready, then read.
pub(crate) fn run(
    ids: &[u32],
    ctx: &Ctx,
    ready: &Sender<Ready>,
    go: &Receiver<Plan>,
    live: &Sender<Histogram<u64>>,
) -> SubResult {
    let mut result = SubResult {
        latency_us: new_histogram(),
        received_total: 0,
        retained: 0,
        delivered: 0,
        duplicates: 0,
        out_of_order: 0,
        incomplete: 0,
        failed: 0,
        errors: BTreeMap::new(),
    };
    let mut scratch = vec![0u8; 256 * 1024];
    let filters: &[TopicFilter] = &ctx.filters;
    let mut subs = Vec::with_capacity(ids.len());
    let mut granted = u8::MAX;
    for id in ids {
        let deadline = Instant::now() + SETUP_TIMEOUT;
        let client_id = format!("{}-s{id}", ctx.client_prefix);
        super::ramp_wait(ctx);
        let settings = ctx.settings_for(ctx.publishers + *id as usize);
        let opened =
            Conn::open(&settings, &client_id, deadline, &mut scratch).and_then(|(mut conn, _)| {
                conn.subscribe(filters, ctx.qos, deadline, &mut scratch)
                    .map(|g| (conn, g))
            });
        match opened {
            Ok((conn, g)) => {
                granted = granted.min(g);
                subs.push(Sub {
                    id: *id as usize,
                    conn,
                    tracks: vec![SeqTrack::default(); ctx.publishers],
                    out: BytesMut::new(),
                    alive: true,
                });
            }
            Err(failure) => {
                ids.iter().for_each(|id| retire(*id as usize, ctx));
                let _ = ready.send(Ready::Failed(failure));
                return result;
            }
        }
    }
    let epoll_fd = match setup_epoll(&subs) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = ready.send(Ready::Failed(io_failure(e)));
            return result;
        }
    };
    let _ = ready.send(Ready::Ok {
        granted_qos: Some(granted),
    });
    let Ok(plan) = go.recv() else {
        subs.into_iter().for_each(|s| s.conn.close());
        return result;
    };

    let mut interval = new_histogram();
    let mut events = Vec::with_capacity(256);
    let mut last_ship = Instant::now();
    let mut last_ping = Instant::now();
    let mut last_data = Instant::now();
    let mut last_check = Instant::now();
    let mut drain_since: Option<Instant> = None;
    let mut received_unshipped = 0;
    let timeout = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 20_000_000,
    };
    loop {
        events.clear();
        match epoll::wait(&epoll_fd, spare_capacity(&mut events), Some(&timeout)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                count_error(&mut result.errors, &ctx.shared, io_failure(e.into()));
                break;
            }
        }
        for event in &events {
            let Some(sub) = usize::try_from(event.data.u64())
                .ok()
                .and_then(|i| subs.get_mut(i))
            else {
                continue;
            };
            if !sub.alive {
                continue;
            }
            match sub.conn.fill(&mut scratch) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue;
                }
                Err(e) => {
                    fail(sub, &epoll_fd, &mut result, ctx, io_failure(e));
                    continue;
                }
            }
            last_data = Instant::now();
            let now = now_ns();
            let mut got = 0;
            let outcome = loop {
                match sub.conn.next_packet() {
                    Ok(Some(Packet::Publish(p))) => {
                        got += 1;
                        if let Some(id) = p.packet_id {
                            let ack = Ack {
                                packet_id: id,
                                reason_code: 0,
                                properties: Properties::default(),
                            };
                            let ack = if p.qos == QoS::ExactlyOnce {
                                Packet::Pubrec(ack)
                            } else {
                                Packet::Puback(ack)
                            };
                            if let Err(e) = ack.encode(sub.conn.version(), &mut sub.out) {
                                break Err(Failure {
                                    kind: "encode_error",
                                    detail: e.to_string(),
                                });
                            }
                        }
                        if p.retain {
                            // Stored before this subscription: not part of the measurement.
                            result.retained += 1;
                            continue;
                        }
                        let Some(stamp) = Stamp::read_any(&p.payload)
                            .filter(|s| usize::from(s.publisher) < ctx.publishers)
                        else {
                            super::tally(
                                &mut result.errors,
                                Failure {
                                    kind: "foreign_message",
                                    detail: format!(
                                        "a PUBLISH on {} without a valid loadgen stamp",
                                        p.topic
                                    ),
                                },
                            );
                            continue;
                        };
                        let seen = sub.tracks[usize::from(stamp.publisher)].observe(stamp.seq);
                        if stamp.sent_ns >= plan.warm_ns
                            && stamp.sent_ns < plan.end_ns
                            && seen != Seen::Duplicate
                        {
                            let us = now.saturating_sub(stamp.sent_ns) / 1_000;
                            record(&mut result.latency_us, us);
                            record(&mut interval, us);
                            result.delivered += 1;
                        }
                    }
                    Ok(Some(Packet::Pubrel(rel))) => {
                        let comp = Packet::Pubcomp(Ack {
                            packet_id: rel.packet_id,
                            reason_code: 0,
                            properties: Properties::default(),
                        });
                        if let Err(e) = comp.encode(sub.conn.version(), &mut sub.out) {
                            break Err(Failure {
                                kind: "encode_error",
                                detail: e.to_string(),
                            });
                        }
                    }
                    Ok(Some(Packet::Pingresp)) => {}
                    Ok(Some(Packet::Disconnect(d))) => {
                        break Err(Failure {
                            kind: "disconnected_by_broker",
                            detail: format!(
                                "DISCONNECT reason 0x{:02x} ({})",
                                d.reason_code,
                                reason_name(d.reason_code)
                            ),
                        });
                    }
                    Ok(Some(other)) => {
                        break Err(Failure {
                            kind: "unexpected_packet",
                            detail: format!("a subscriber received {}", other.kind()),
                        });
                    }
                    Ok(None) => break Ok(()),
                    Err(failure) => break Err(failure),
                }
            };
            if got > 0 {
                let base = sub.id * ctx.publishers;
                for (p, track) in sub.tracks.iter().enumerate() {
                    if !ctx.expected.get(p).copied().unwrap_or(false) {
                        continue;
                    }
                    ctx.shared.advance(base + p, p, track.next());
                }
            }
            result.received_total += got;
            received_unshipped += got;
            let sent = if sub.out.is_empty() {
                Ok(())
            } else {
                let r = sub.conn.send(&sub.out).map_err(io_failure);
                sub.out.clear();
                r
            };
            if let Err(failure) = outcome.and(sent) {
                fail(sub, &epoll_fd, &mut result, ctx, failure);
            }
        }

        if last_ship.elapsed() >= SHIP_EVERY {
            let _ = live.send(std::mem::replace(&mut interval, new_histogram()));
            ctx.shared
                .received
                .fetch_add(received_unshipped, Ordering::Relaxed);
            received_unshipped = 0;
            last_ship = Instant::now();
        }
        if last_ping.elapsed() >= PING_EVERY {
            for sub in subs.iter_mut().filter(|s| s.alive) {
                if let Err(failure) = sub.conn.send_packet(&Packet::Pingreq) {
                    fail(sub, &epoll_fd, &mut result, ctx, failure);
                }
            }
            last_ping = Instant::now();
        }
        if last_check.elapsed() < Duration::from_millis(10) {
            continue;
        }
        last_check = Instant::now();
        if ctx.shared.abort.load(Ordering::Relaxed) || !subs.iter().any(|s| s.alive) {
            break;
        }
        let Some(finals) = ctx.shared.final_seqs() else {
            continue;
        };
        let since = *drain_since.get_or_insert_with(Instant::now);
        let complete = |s: &Sub| has_all(&finals, &ctx.expected, &s.tracks);
        if subs.iter().filter(|s| s.alive).all(complete)
            || last_data.max(since).elapsed() >= QUIET
            || since.elapsed() >= DRAIN_MAX
        {
            if let Some(finals) = ctx.shared.final_seqs() {
                result.incomplete = subs
                    .iter()
                    .filter(|s| !has_all(&finals, &ctx.expected, &s.tracks))
                    .count()
                    .try_into()
                    .unwrap_or(u32::MAX);
            }
            break;
        }
    }
    for sub in &subs {
        retire(sub.id, ctx);
    }
    let _ = live.send(interval);
    ctx.shared
        .received
        .fetch_add(received_unshipped, Ordering::Relaxed);
    for sub in subs {
        for t in &sub.tracks {
            result.duplicates += t.duplicates;
            result.out_of_order += t.out_of_order;
        }
        if sub.alive {
            sub.conn.close();
        }
    }
    result
}

/// Whether a subscriber has every expected publisher's last message (`finals`: how many each
/// publisher sent).
fn has_all(finals: &[u64], expected: &[bool], tracks: &[SeqTrack]) -> bool {
    finals
        .iter()
        .zip(expected)
        .zip(tracks)
        .all(|((last, e), t)| !*e || *last == 0 || t.has_reached(last - 1))
}

fn setup_epoll(subs: &[Sub]) -> io::Result<rustix::fd::OwnedFd> {
    let fd = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    for (i, sub) in subs.iter().enumerate() {
        // A socket is only read when epoll says it is readable; the timeout is a safety net.
        sub.conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        sub.conn.set_write_timeout(Some(Duration::from_secs(10)))?;
        epoll::add(
            &fd,
            sub.conn.socket(),
            epoll::EventData::new_u64(i as u64),
            epoll::EventFlags::IN | epoll::EventFlags::RDHUP,
        )?;
    }
    Ok(fd)
}

/// Takes a subscriber out of the publishers' `--max-ahead` reckoning.
fn retire(id: usize, ctx: &Ctx) {
    let base = id * ctx.publishers;
    for p in 0..ctx.publishers {
        ctx.shared.advance(base + p, p, u64::MAX);
    }
}

fn fail(
    sub: &mut Sub,
    epoll_fd: &rustix::fd::OwnedFd,
    result: &mut SubResult,
    ctx: &Ctx,
    failure: Failure,
) {
    sub.alive = false;
    result.failed += 1;
    retire(sub.id, ctx);
    let _ = epoll::delete(epoll_fd, sub.conn.socket());
    count_error(&mut result.errors, &ctx.shared, failure);
}
