//! `StageClock` fed arbitrary reads: the deadline never moves backwards, never passes `MAX`, and
//! a stage without `MinRate` is not extended by bytes.

#![no_main]

use std::num::NonZeroU32;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rampart_deadline::{StageClock, StageLimit};

/// One instant for the whole run, so inputs replay identically.
static START: LazyLock<Instant> = LazyLock::new(Instant::now);

#[derive(Debug, Arbitrary)]
struct Input {
    /// `T`, in seconds.
    timeout_secs: u16,
    /// `MAX`, in seconds.
    max_secs: Option<u16>,
    /// `MinRate`, in bytes per second (0 means none).
    min_rate: Option<u32>,
    /// Raw byte counts of successive reads.
    reads: Vec<usize>,
}

fuzz_target!(|input: Input| {
    let timeout = Duration::from_secs(u64::from(input.timeout_secs));
    let max = input.max_secs.map(|s| Duration::from_secs(u64::from(s)));
    let limit = match input.min_rate.and_then(NonZeroU32::new) {
        Some(rate) => match StageLimit::with_rate(timeout, max, rate) {
            Ok(limit) => limit,
            Err(_) => {
                assert!(
                    max.is_some_and(|m| m <= timeout),
                    "{input:?}: spurious error"
                );
                return;
            }
        },
        None => StageLimit::fixed(timeout),
    };

    let now = *START;
    let mut clock = StageClock::start(limit, now);
    if limit.is_disabled() {
        for &n in &input.reads {
            clock.on_bytes(n);
        }
        assert_eq!(
            clock.deadline(),
            None,
            "{input:?}: disabled stage got a deadline"
        );
        return;
    }

    let cap = limit.max().map(|m| now + m);
    let initial = now + timeout;
    assert_eq!(clock.deadline(), Some(initial), "{input:?}");
    assert!(!clock.is_expired(now), "{input:?}: expired at start");
    let mut last = initial;
    for &n in &input.reads {
        clock.on_bytes(n);
        let deadline = clock
            .deadline()
            .expect("an enabled stage keeps its deadline");
        assert!(
            deadline >= last,
            "{input:?}: deadline moved backwards on {n} bytes"
        );
        if let Some(cap) = cap {
            assert!(
                deadline <= cap,
                "{input:?}: deadline passed MAX on {n} bytes"
            );
        }
        if limit.min_rate().is_none() {
            assert_eq!(
                deadline, initial,
                "{input:?}: fixed stage extended by bytes"
            );
        }
        if let Some(worst) = limit.worst_case() {
            assert!(
                deadline <= now + worst,
                "{input:?}: deadline past worst case"
            );
        }
        assert!(clock.is_expired(deadline), "{input:?}");
        last = deadline;
    }
});
