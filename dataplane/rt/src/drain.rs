//! Per-core graceful drain.
//!
//! A core owns one [`Drain`]. Each connection holds a [`Tracked`] guard, which keeps the core's
//! live-connection count, and can await [`Drain::signaled`] to learn that the core is draining.
//! On drain the core stops accepting, connections finish what they are doing and close, and
//! [`Drain::idle`] resolves when the last guard is dropped. Everything is core-local: `Rc` and
//! `Cell`, no atomics, no locks.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

#[derive(Debug, Default)]
struct Inner {
    draining: Cell<bool>,
    live: Cell<usize>,
    drain_wakers: RefCell<Vec<Waker>>,
    idle_wakers: RefCell<Vec<Waker>>,
}

/// The drain state of one core. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Drain {
    inner: Rc<Inner>,
}

impl Drain {
    /// A core that is not draining and has no connections.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts draining: wakes everything awaiting [`Drain::signaled`]. Idempotent.
    pub fn start(&self) {
        if self.inner.draining.replace(true) {
            return;
        }
        for w in self.inner.drain_wakers.take() {
            w.wake();
        }
    }

    /// True once draining started.
    pub fn is_draining(&self) -> bool {
        self.inner.draining.get()
    }

    /// Resolves once draining started.
    pub async fn signaled(&self) {
        poll_fn(|cx| {
            if self.inner.draining.get() {
                return Poll::Ready(());
            }
            let mut wakers = self.inner.drain_wakers.borrow_mut();
            if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                wakers.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }

    /// Counts a live connection until the guard is dropped.
    pub fn track(&self) -> Tracked {
        self.inner.live.set(self.inner.live.get() + 1);
        Tracked {
            inner: self.inner.clone(),
        }
    }

    /// Live connections on this core.
    pub fn live(&self) -> usize {
        self.inner.live.get()
    }

    /// Resolves when no connection is live.
    pub async fn idle(&self) {
        poll_fn(|cx| {
            if self.inner.live.get() == 0 {
                return Poll::Ready(());
            }
            self.inner.idle_wakers.borrow_mut().push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

/// A live connection; dropping it decrements the count.
#[derive(Debug)]
pub struct Tracked {
    inner: Rc<Inner>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let live = self.inner.live.get().saturating_sub(1);
        self.inner.live.set(live);
        if live == 0 {
            for w in self.inner.idle_wakers.take() {
                w.wake();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_signals_and_waits_for_live_connections() {
        let rt = compio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let drain = Drain::new();
            let a = drain.track();
            let b = drain.track();
            assert_eq!(drain.live(), 2);
            let d2 = drain.clone();
            let waiter = compio::runtime::spawn(async move {
                d2.signaled().await;
                drop(a);
                drop(b);
            });
            assert!(!drain.is_draining());
            drain.start();
            drain.idle().await;
            assert_eq!(drain.live(), 0);
            waiter.await.unwrap();
        });
    }
}
