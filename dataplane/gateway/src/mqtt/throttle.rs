//! Failed-login throttling per source address, per core.
//!
//! After `limit` failures from one address within a minute, further CONNECTs from it are
//! refused without checking the password until the minute is over. Each core counts on its
//! own (no shared state), so an address spread over `n` cores by `SO_REUSEPORT` gets at most
//! `n × limit` attempts a minute.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at most; the oldest windows are forgotten first.
const MAX_TRACKED: usize = 65_536;

#[derive(Debug, Default)]
pub(crate) struct Throttle {
    failures: HashMap<IpAddr, (Instant, u32)>,
}

impl Throttle {
    /// Whether `ip` may try now.
    pub(crate) fn allowed(&mut self, ip: IpAddr, limit: u32, now: Instant) -> bool {
        match self.failures.get(&ip) {
            Some(&(start, n)) if now.duration_since(start) < WINDOW => n < limit,
            Some(_) => {
                self.failures.remove(&ip);
                true
            }
            None => true,
        }
    }

    /// Records a failure of `ip`.
    pub(crate) fn failed(&mut self, ip: IpAddr, now: Instant) {
        if self.failures.len() >= MAX_TRACKED {
            self.failures
                .retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let e = self.failures.entry(ip).or_insert((now, 0));
        if now.duration_since(e.0) >= WINDOW {
            *e = (now, 0);
        }
        e.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_for_a_minute() {
        let mut t = Throttle::default();
        let ip: IpAddr = [127, 0, 0, 9].into();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(t.allowed(ip, 3, t0));
            t.failed(ip, t0);
        }
        assert!(!t.allowed(ip, 3, t0 + Duration::from_secs(59)));
        assert!(t.allowed([127, 0, 0, 8].into(), 3, t0));
        assert!(t.allowed(ip, 3, t0 + Duration::from_secs(61)));
    }
}
