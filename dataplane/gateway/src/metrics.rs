//! Counters of connection outcomes, and the rate limiter for logs a peer can trigger.
//!
//! Counters are relaxed atomics shared by all cores: they are touched once per connection
//! event, never per byte, and are not locks. Each outcome is logged through [`LogLimiter`] and
//! counted in the same call ([`Counters::record`]), so logs and numbers cannot drift apart.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::config::Protocol;

/// A connection outcome worth counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// A TCP connection was accepted.
    Accepted,
    /// Closed at accept: the core's connection cap was reached.
    RejectedAtCap,
    /// The TLS handshake completed.
    HandshakeOk,
    /// The handshake stage timed out.
    TimeoutHandshake,
    /// The protocol's first stage timed out.
    TimeoutStage,
    /// A write made no progress in time.
    TimeoutWriteStall,
    /// The peer closed before the handshake finished.
    ClosedInHandshake,
    /// rustls refused the peer's input.
    TlsError,
    /// Socket error.
    IoError,
    /// Closed by a drain.
    Drained,
    /// The peer closed cleanly.
    PeerClosed,
}

impl Event {
    /// Every event, in counter order.
    pub const ALL: [Self; 11] = [
        Self::Accepted,
        Self::RejectedAtCap,
        Self::HandshakeOk,
        Self::TimeoutHandshake,
        Self::TimeoutStage,
        Self::TimeoutWriteStall,
        Self::ClosedInHandshake,
        Self::TlsError,
        Self::IoError,
        Self::Drained,
        Self::PeerClosed,
    ];

    /// Stable label.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::RejectedAtCap => "rejected_at_cap",
            Self::HandshakeOk => "handshake_ok",
            Self::TimeoutHandshake => "timeout_handshake",
            Self::TimeoutStage => "timeout_stage",
            Self::TimeoutWriteStall => "timeout_write_stall",
            Self::ClosedInHandshake => "closed_in_handshake",
            Self::TlsError => "tls_error",
            Self::IoError => "io_error",
            Self::Drained => "drained",
            Self::PeerClosed => "peer_closed",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Per protocol, per event counters.
#[derive(Debug, Default)]
pub struct Counters {
    counts: [[AtomicU64; Event::ALL.len()]; Protocol::ALL.len()],
}

impl Counters {
    /// Adds one.
    pub fn record(&self, protocol: Protocol, event: Event) {
        self.counts[protocol as usize][event.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self, protocol: Protocol, event: Event) -> u64 {
        self.counts[protocol as usize][event.index()].load(Ordering::Relaxed)
    }

    /// Every non-zero counter as `protocol.event=value`, for the shutdown log line.
    pub fn summary(&self) -> String {
        let mut out = Vec::new();
        for p in Protocol::ALL {
            for e in Event::ALL {
                let v = self.get(p, e);
                if v > 0 {
                    out.push(format!("{}.{}={v}", p.as_str(), e.as_str()));
                }
            }
        }
        out.join(" ")
    }
}

/// Allows at most `burst` log lines per `window` on one core and counts the rest.
#[derive(Debug)]
pub struct LogLimiter {
    window: Duration,
    burst: u32,
    start: Cell<Option<Instant>>,
    used: Cell<u32>,
    suppressed: Cell<u64>,
}

impl LogLimiter {
    /// A limiter of `burst` lines per `window`.
    pub fn new(burst: u32, window: Duration) -> Self {
        Self {
            window,
            burst,
            start: Cell::new(None),
            used: Cell::new(0),
            suppressed: Cell::new(0),
        }
    }

    /// May a line be logged at `now`? If so, also returns how many were suppressed before it.
    pub fn allow(&self, now: Instant) -> Option<u64> {
        let fresh = self
            .start
            .get()
            .is_none_or(|s| now.duration_since(s) >= self.window);
        if fresh {
            self.start.set(Some(now));
            self.used.set(0);
        }
        if self.used.get() >= self.burst {
            self.suppressed.set(self.suppressed.get() + 1);
            return None;
        }
        self.used.set(self.used.get() + 1);
        Some(self.suppressed.replace(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_caps_per_window_and_reports_suppressed() {
        let l = LogLimiter::new(2, Duration::from_secs(1));
        let t = Instant::now();
        assert_eq!(l.allow(t), Some(0));
        assert_eq!(l.allow(t), Some(0));
        assert_eq!(l.allow(t), None);
        assert_eq!(l.allow(t + Duration::from_millis(500)), None);
        assert_eq!(l.allow(t + Duration::from_secs(1)), Some(2));
    }

    #[test]
    fn counters_are_per_protocol() {
        let c = Counters::default();
        c.record(Protocol::Mqtt, Event::TimeoutHandshake);
        c.record(Protocol::Mqtt, Event::TimeoutHandshake);
        c.record(Protocol::Https, Event::Accepted);
        assert_eq!(c.get(Protocol::Mqtt, Event::TimeoutHandshake), 2);
        assert_eq!(c.get(Protocol::Https, Event::TimeoutHandshake), 0);
        assert_eq!(c.summary(), "https.accepted=1 mqtt.timeout_handshake=2");
    }
}
