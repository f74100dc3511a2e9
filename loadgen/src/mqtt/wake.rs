//! How a publisher held back by `--max-ahead` sleeps until its subscribers make room.
//!
//! It used to poll (sleep 50 µs, doubling to 1 ms, and look again): in the fan-in benchmark
//! each of 16 publishers woke about 2,300 times a second, half of them to find too little room,
//! on the two CPUs the broker needs. Now a held-back publisher says which progress would give it
//! room ([`Wake::wait`]) and parks; the subscriber thread whose progress crosses it last unparks
//! it ([`Wake::crossed`]). The count of subscribers still behind is taken after arming, so a
//! subscriber crossing meanwhile can only wake the publisher early, never leave it asleep; and
//! the publisher parks with a timeout in any case (its hold and stall limits, the run's end).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering, fence};
use std::thread::{self, Thread};
use std::time::Duration;

/// `behind` while the publisher is still counting: far above any subscriber count, so no
/// subscriber's decrement can reach zero before the count is in.
const COUNTING: i64 = 1 << 40;

/// One publisher's wait, on a cache line of its own: subscriber threads read one publisher's
/// while another publisher writes its own.
#[derive(Debug)]
#[repr(align(64))]
pub(crate) struct Wake {
    /// The publisher's thread, set when it starts.
    thread: OnceLock<Thread>,
    /// The progress (one more than the highest sequence number received) that gives the
    /// publisher the room it waits for; `u64::MAX` when it is not waiting.
    want: AtomicU64,
    /// Subscribers still short of `want`; the one taking it to zero unparks the publisher.
    behind: AtomicI64,
}

impl Default for Wake {
    fn default() -> Self {
        Self {
            thread: OnceLock::new(),
            want: AtomicU64::new(u64::MAX),
            behind: AtomicI64::new(0),
        }
    }
}

impl Wake {
    /// Registers the calling thread as the one to unpark.
    pub(crate) fn register(&self) {
        let _ = self.thread.set(thread::current());
    }

    /// What it waits for and how many subscribers are still behind, for tests.
    #[cfg(test)]
    pub(crate) fn state(&self) -> (u64, i64) {
        (
            self.want.load(Ordering::SeqCst),
            self.behind.load(Ordering::SeqCst),
        )
    }

    /// A subscriber's progress for this publisher went from `prev` to `next`.
    pub(crate) fn crossed(&self, prev: u64, next: u64) {
        let want = self.want.load(Ordering::SeqCst);
        if want != u64::MAX
            && prev < want
            && next >= want
            && self.behind.fetch_sub(1, Ordering::SeqCst) == 1
            && let Some(t) = self.thread.get()
        {
            t.unpark();
        }
    }

    /// Waits, at most `timeout`, until every subscriber `below` counts (after arming) has
    /// reached `want`. `below` is called once, after `want` is published. True if it parked
    /// (a park may end early, spuriously: the caller looks again either way).
    pub(crate) fn wait(&self, want: u64, below: impl FnOnce() -> usize, timeout: Duration) -> bool {
        self.behind.store(COUNTING, Ordering::SeqCst);
        self.want.store(want, Ordering::SeqCst);
        // `below` reads the progress with relaxed loads; the fence keeps them after the store
        // above, against the subscribers' swap-then-load in `crossed`'s caller.
        fence(Ordering::SeqCst);
        let below = i64::try_from(below()).unwrap_or(i64::MAX).min(COUNTING);
        // Subscribers that crossed since `want` was published have taken one off already.
        let settle = COUNTING - below;
        let left = self.behind.fetch_sub(settle, Ordering::SeqCst) - settle;
        let park = below > 0 && left > 0;
        if park {
            thread::park_timeout(timeout);
        }
        self.want.store(u64::MAX, Ordering::SeqCst);
        park
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use std::time::Instant;

    /// A timeout no passing run comes near: these tests fail by hanging to it, not by speed.
    const LONG: Duration = Duration::from_secs(30);

    #[test]
    fn the_last_subscriber_to_cross_wakes_the_publisher() {
        let wake = Arc::new(Wake::default());
        let armed = Arc::new(AtomicBool::new(false));
        let publisher = {
            let (wake, armed) = (wake.clone(), armed.clone());
            thread::spawn(move || {
                wake.register();
                let start = Instant::now();
                let parked = wake.wait(
                    10,
                    || {
                        armed.store(true, Ordering::SeqCst);
                        2
                    },
                    LONG,
                );
                assert!(parked, "two subscribers behind: it parks");
                start.elapsed()
            })
        };
        // Until the publisher has counted and settled `behind` (two subscribers short).
        while !armed.load(Ordering::SeqCst) || wake.behind.load(Ordering::SeqCst) != 2 {
            thread::yield_now();
        }
        // Below the mark, and not crossing it: nothing happens.
        wake.crossed(0, 9);
        wake.crossed(9, 9);
        // The first of two subscribers crosses: one is still behind, so nobody unparks the
        // publisher. (Unless its park ended spuriously and it stopped waiting: then `want` is
        // back to none and the crossing counts for nothing, which is checked instead.)
        wake.crossed(0, 12);
        let expected = if wake.want.load(Ordering::SeqCst) == 10 {
            1
        } else {
            2
        };
        assert!(wake.behind.load(Ordering::SeqCst) <= expected);
        // The second crosses: the publisher wakes long before its timeout.
        wake.crossed(9, 10);
        let waited = publisher.join().unwrap();
        assert!(
            waited < LONG / 2,
            "waited {waited:?}: the crossing did not wake it"
        );
        // Not waiting any more: a crossing now counts for nothing.
        wake.crossed(0, 20);
        assert_eq!(wake.want.load(Ordering::SeqCst), u64::MAX);
    }

    #[test]
    fn nobody_behind_means_no_wait() {
        let wake = Wake::default();
        wake.register();
        assert!(!wake.wait(10, || 0, LONG));
    }

    #[test]
    fn a_crossing_while_counting_can_only_wake_early() {
        // The subscriber crosses while the publisher counts, after the count saw it behind:
        // its own decrement settles it, so the publisher does not park.
        let wake = Wake::default();
        wake.register();
        let parked = wake.wait(
            10,
            || {
                wake.crossed(5, 10);
                1
            },
            LONG,
        );
        assert!(!parked);
    }

    #[test]
    fn a_wait_times_out_when_nobody_crosses() {
        let wake = Wake::default();
        wake.register();
        let start = Instant::now();
        assert!(wake.wait(10, || 1, Duration::from_millis(20)));
        assert!(start.elapsed() < LONG / 2);
        assert_eq!(wake.want.load(Ordering::SeqCst), u64::MAX);
    }
}
