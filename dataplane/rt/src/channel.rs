//! Bounded cross-core channels: a lock-free array queue plus one atomic waker.
//!
//! Many senders on any thread, one receiver on its core. `try_send` never blocks and never takes
//! a lock: when the queue is full the message comes back in [`TrySendError::Full`] and the sender
//! applies its own policy (drop and count, or disconnect). This is the only cross-core path of the
//! data plane; there is no shared lock to contend on.

use std::fmt;
use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::Poll;

use atomic_waker::AtomicWaker;
use crossbeam_queue::ArrayQueue;

struct Shared<T> {
    queue: ArrayQueue<T>,
    waker: AtomicWaker,
    senders: AtomicUsize,
    receiver_alive: AtomicBool,
}

/// Creates a channel holding at most `capacity` messages (at least one).
pub fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        queue: ArrayQueue::new(capacity.max(1)),
        waker: AtomicWaker::new(),
        senders: AtomicUsize::new(1),
        receiver_alive: AtomicBool::new(true),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

/// The sending side; clone it for more senders.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// Why a message was not queued; the message comes back.
#[derive(PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The queue is full.
    Full(T),
    /// The receiver is gone.
    Closed(T),
}

impl<T> TrySendError<T> {
    /// The message that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(t) | Self::Closed(t) => t,
        }
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full(_) => "Full(..)",
            Self::Closed(_) => "Closed(..)",
        })
    }
}

impl<T> Sender<T> {
    /// Queues `msg` without blocking and wakes the receiver.
    pub fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
        if !self.shared.receiver_alive.load(Ordering::Acquire) {
            return Err(TrySendError::Closed(msg));
        }
        self.shared.queue.push(msg).map_err(TrySendError::Full)?;
        self.shared.waker.wake();
        Ok(())
    }

    /// Messages waiting in the queue now.
    pub fn len(&self) -> usize {
        self.shared.queue.len()
    }

    /// True when no message is waiting.
    pub fn is_empty(&self) -> bool {
        self.shared.queue.is_empty()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.waker.wake();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("queued", &self.shared.queue.len())
            .finish()
    }
}

/// The receiving side, owned by one core.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Receiver<T> {
    /// Waits for the next message; `None` once every sender is gone and the queue is empty.
    pub async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| {
            if let Some(msg) = self.shared.queue.pop() {
                return Poll::Ready(Some(msg));
            }
            self.shared.waker.register(cx.waker());
            // Re-check after registering, so a push between pop and register is not missed.
            if let Some(msg) = self.shared.queue.pop() {
                return Poll::Ready(Some(msg));
            }
            if self.shared.senders.load(Ordering::Acquire) == 0 {
                return Poll::Ready(self.shared.queue.pop());
            }
            Poll::Pending
        })
        .await
    }

    /// Takes a message if one is waiting.
    pub fn try_recv(&mut self) -> Option<T> {
        self.shared.queue.pop()
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.shared.receiver_alive.store(false, Ordering::Release);
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("queued", &self.shared.queue.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_and_closed_return_the_message() {
        let (tx, rx) = bounded::<u32>(2);
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
        drop(rx);
        assert_eq!(tx.try_send(4), Err(TrySendError::Closed(4)));
    }

    #[test]
    fn wakes_a_receiver_on_another_thread_and_ends_when_senders_drop() {
        let (tx, mut rx) = bounded::<u32>(4);
        let rt = compio::runtime::Runtime::new().unwrap();
        let producer = std::thread::spawn(move || {
            for i in 0..1000 {
                let mut msg = i;
                loop {
                    match tx.try_send(msg) {
                        Ok(()) => break,
                        Err(TrySendError::Full(m)) => {
                            msg = m;
                            std::thread::yield_now();
                        }
                        Err(TrySendError::Closed(_)) => panic!("receiver closed"),
                    }
                }
            }
        });
        let got = rt.block_on(async {
            let mut got = Vec::new();
            while let Some(v) = rx.recv().await {
                got.push(v);
            }
            got
        });
        producer.join().unwrap();
        assert_eq!(got, (0..1000).collect::<Vec<_>>());
    }
}
