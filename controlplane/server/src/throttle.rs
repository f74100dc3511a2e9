//! Brute-force throttling of logins, per account and per source address.
//!
//! Each key (an account name, a source address) may fail a few times freely; after that every
//! further failure locks it for twice as long as the last time, up to a cap. A success clears
//! the account's record (not the source's: one good password from an address that is guessing
//! others does not wash it clean). Records forget themselves after a quiet period.
//!
//! Lock-outs are temporary by design: a permanent lock would let anyone lock the admin out by
//! failing on purpose.
//!
//! Memory is bounded: at most [`MAX_KEYS`] records per map; when full, records that are neither
//! locked nor recent are dropped first, then the oldest.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Records kept per map.
pub const MAX_KEYS: usize = 100_000;

/// How many failures are free, and how long locks last.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// Failures per account before locking.
    pub account_free: u32,
    /// Failures per source before locking.
    pub source_free: u32,
    /// The first lock.
    pub base: Duration,
    /// The longest lock.
    pub max: Duration,
    /// A record with no failure for this long is forgotten.
    pub forget_after: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            account_free: 5,
            source_free: 20,
            base: Duration::from_secs(1),
            max: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last_failure: Instant,
    locked_until: Option<Instant>,
}

#[derive(Debug, Default)]
struct Maps {
    accounts: HashMap<String, Record>,
    sources: HashMap<String, Record>,
}

/// The throttle. Cheap to share by reference; one lock around two small maps.
#[derive(Debug)]
pub struct Throttle {
    policy: ThrottlePolicy,
    maps: Mutex<Maps>,
}

impl Throttle {
    /// A throttle with `policy`.
    pub fn new(policy: ThrottlePolicy) -> Throttle {
        Throttle {
            policy,
            maps: Mutex::new(Maps::default()),
        }
    }

    /// `Err(wait)` if the account or the source is locked now.
    pub fn check(&self, account: &str, source: Option<&str>, now: Instant) -> Result<(), Duration> {
        let maps = self.maps.lock();
        let wait = |r: Option<&Record>| {
            r.and_then(|r| r.locked_until)
                .and_then(|until| until.checked_duration_since(now))
                .filter(|d| !d.is_zero())
        };
        let a = wait(maps.accounts.get(account));
        let s = source.and_then(|s| wait(maps.sources.get(s)));
        match a.max(s) {
            Some(d) => Err(d),
            None => Ok(()),
        }
    }

    /// Records a failure.
    pub fn fail(&self, account: &str, source: Option<&str>, now: Instant) {
        let p = self.policy;
        let mut maps = self.maps.lock();
        bump(&mut maps.accounts, account, p.account_free, &p, now);
        if let Some(s) = source {
            bump(&mut maps.sources, s, p.source_free, &p, now);
        }
    }

    /// Checks and, if allowed, charges one failure in advance, atomically: concurrent attempts
    /// cannot all pass a check made before any of them failed. Call [`Throttle::succeed`] if the
    /// attempt turns out good.
    pub fn attempt(
        &self,
        account: &str,
        source: Option<&str>,
        now: Instant,
    ) -> Result<(), Duration> {
        let p = self.policy;
        let mut maps = self.maps.lock();
        let wait = |r: Option<&Record>| {
            r.and_then(|r| r.locked_until)
                .and_then(|until| until.checked_duration_since(now))
                .filter(|d| !d.is_zero())
        };
        let a = wait(maps.accounts.get(account));
        let s = source.and_then(|s| wait(maps.sources.get(s)));
        if let Some(d) = a.max(s) {
            return Err(d);
        }
        bump(&mut maps.accounts, account, p.account_free, &p, now);
        if let Some(s) = source {
            bump(&mut maps.sources, s, p.source_free, &p, now);
        }
        Ok(())
    }

    /// Records a success after [`Throttle::attempt`]: the account's record is cleared and the
    /// source's advance charge refunded.
    pub fn succeed(&self, account: &str, source: Option<&str>) {
        let mut maps = self.maps.lock();
        maps.accounts.remove(account);
        if let Some(r) = source.and_then(|s| maps.sources.get_mut(s)) {
            r.failures = r.failures.saturating_sub(1);
            if r.failures <= self.policy.source_free {
                r.locked_until = None;
            }
        }
    }
}

fn bump(map: &mut HashMap<String, Record>, key: &str, free: u32, p: &ThrottlePolicy, now: Instant) {
    if !map.contains_key(key) && map.len() >= MAX_KEYS {
        make_room(map, p, now);
    }
    let r = map.entry(key.to_owned()).or_insert(Record {
        failures: 0,
        last_failure: now,
        locked_until: None,
    });
    if now.saturating_duration_since(r.last_failure) >= p.forget_after {
        r.failures = 0;
    }
    r.failures = r.failures.saturating_add(1);
    r.last_failure = now;
    if r.failures > free {
        let doublings = (r.failures - free - 1).min(20);
        let lock = p.base.saturating_mul(1u32 << doublings).min(p.max);
        r.locked_until = Some(now + lock);
    }
}

fn make_room(map: &mut HashMap<String, Record>, p: &ThrottlePolicy, now: Instant) {
    map.retain(|_, r| {
        r.locked_until.is_some_and(|u| u > now)
            || now.saturating_duration_since(r.last_failure) < p.forget_after
    });
    if map.len() >= MAX_KEYS {
        // Still full of live records: drop the oldest half.
        let mut times: Vec<Instant> = map.values().map(|r| r.last_failure).collect();
        times.sort_unstable();
        let cut = times[times.len() / 2];
        map.retain(|_, r| r.last_failure > cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_free_failures_and_doubles() {
        let t = Throttle::new(ThrottlePolicy::default());
        let t0 = Instant::now();
        for _ in 0..5 {
            t.check("admin", Some("10.0.0.1"), t0).unwrap();
            t.fail("admin", Some("10.0.0.1"), t0);
        }
        t.check("admin", Some("10.0.0.1"), t0).unwrap();
        t.fail("admin", Some("10.0.0.1"), t0);
        assert_eq!(t.check("admin", None, t0), Err(Duration::from_secs(1)));
        // Another account from the same source is not locked yet (source allows 20).
        t.check("bob", Some("10.0.0.1"), t0).unwrap();
        let t1 = t0 + Duration::from_secs(1);
        t.check("admin", None, t1).unwrap();
        t.fail("admin", None, t1);
        assert_eq!(t.check("admin", None, t1), Err(Duration::from_secs(2)));
        t.succeed("admin", None);
        t.check("admin", None, t1).unwrap();
    }

    #[test]
    fn source_locks_across_accounts_and_caps() {
        let p = ThrottlePolicy::default();
        let t = Throttle::new(p);
        let t0 = Instant::now();
        for i in 0..60 {
            t.fail(&format!("user{i}"), Some("203.0.113.9"), t0);
        }
        let wait = t.check("fresh", Some("203.0.113.9"), t0).unwrap_err();
        assert_eq!(wait, p.max);
        t.check("fresh", Some("203.0.113.10"), t0).unwrap();
        // Forgotten after the quiet period.
        let later = t0 + p.max + p.forget_after;
        t.check("fresh", Some("203.0.113.9"), later).unwrap();
    }

    #[test]
    fn concurrent_attempts_are_charged_before_they_are_judged() {
        let t = Throttle::new(ThrottlePolicy::default());
        let t0 = Instant::now();
        // Six attempts in flight at once: the sixth charge locks, the seventh is refused
        // before any of them has finished.
        for _ in 0..6 {
            t.attempt("admin", Some("10.0.0.1"), t0).unwrap();
        }
        assert!(t.attempt("admin", Some("10.0.0.1"), t0).is_err());
        // A success clears the account and refunds the source's charge.
        t.succeed("admin", Some("10.0.0.1"));
        t.attempt("admin", Some("10.0.0.1"), t0).unwrap();
        assert_eq!(t.maps.lock().sources["10.0.0.1"].failures, 6);
    }

    #[test]
    fn memory_is_bounded() {
        let t = Throttle::new(ThrottlePolicy::default());
        let t0 = Instant::now();
        for i in 0..(MAX_KEYS + 10) {
            t.fail(&i.to_string(), None, t0 + Duration::from_millis(i as u64));
        }
        assert!(t.maps.lock().accounts.len() <= MAX_KEYS);
    }
}
