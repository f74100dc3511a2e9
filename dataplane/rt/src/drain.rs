//! Per-core graceful drain.
//!
//! A core owns one [`Drain`]. Each connection holds a [`Tracked`] guard, which keeps the core's
//! live-connection count, and can await [`Drain::signaled`] to learn that the core is draining.
//! On drain the core stops accepting, connections finish what they are doing and close, and
//! [`Drain::idle`] resolves when the last guard is dropped. Everything is core-local: `Rc` and
//! `Cell`, no atomics, no locks.

use std::cell::{Cell, RefCell};
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

#[derive(Debug, Default)]
struct Inner {
    draining: Cell<bool>,
    live: Cell<usize>,
    /// One slot per pending [`Signaled`] future; freed when the future is dropped, so the list
    /// holds only connections that are waiting now, never every connection ever served.
    drain_wakers: RefCell<Vec<Option<Waker>>>,
    free_slots: RefCell<Vec<usize>>,
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
        let wakers: Vec<Waker> = self
            .inner
            .drain_wakers
            .borrow_mut()
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        for w in wakers {
            w.wake();
        }
    }

    /// True once draining started.
    pub fn is_draining(&self) -> bool {
        self.inner.draining.get()
    }

    /// Resolves once draining started. Dropping the future releases its waker slot.
    pub fn signaled(&self) -> Signaled<'_> {
        Signaled {
            drain: self,
            slot: None,
        }
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

/// The future of [`Drain::signaled`].
#[derive(Debug)]
pub struct Signaled<'a> {
    drain: &'a Drain,
    slot: Option<usize>,
}

impl Future for Signaled<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let inner = &self.drain.inner;
        if inner.draining.get() {
            return Poll::Ready(());
        }
        let slot = match self.slot {
            Some(slot) => slot,
            None => {
                let mut wakers = inner.drain_wakers.borrow_mut();
                let slot = inner.free_slots.borrow_mut().pop().unwrap_or_else(|| {
                    wakers.push(None);
                    wakers.len() - 1
                });
                drop(wakers);
                self.slot = Some(slot);
                slot
            }
        };
        let mut wakers = self.drain.inner.drain_wakers.borrow_mut();
        match &mut wakers[slot] {
            Some(w) if w.will_wake(cx.waker()) => {}
            entry => *entry = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for Signaled<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            let inner = &self.drain.inner;
            if let Some(entry) = inner.drain_wakers.borrow_mut().get_mut(slot) {
                *entry = None;
            }
            inner.free_slots.borrow_mut().push(slot);
        }
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
    fn dropped_waiters_free_their_slots() {
        let rt = compio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let drain = Drain::new();
            // Many short-lived waiters, as connections that come and go; each is polled once.
            for _ in 0..1000 {
                let fut = drain.signaled();
                futures_util::pin_mut!(fut);
                assert!(futures_util::poll!(fut.as_mut()).is_pending());
            }
            assert_eq!(drain.inner.drain_wakers.borrow().len(), 1);
            let a = drain.signaled();
            let b = drain.signaled();
            futures_util::pin_mut!(a, b);
            assert!(futures_util::poll!(a.as_mut()).is_pending());
            assert!(futures_util::poll!(b.as_mut()).is_pending());
            assert_eq!(drain.inner.drain_wakers.borrow().len(), 2);
            drain.start();
            assert!(futures_util::poll!(a.as_mut()).is_ready());
            assert!(futures_util::poll!(b.as_mut()).is_ready());
        });
    }

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
