//! Fan-out of policy generations to every [`crate::Store::changes`] receiver.
//!
//! One thread per store owns the list of subscribers, so there is no shared lock (the
//! workspace bans `std::sync::Mutex`): subscriptions and publications travel to it over one
//! FIFO channel. A receiver subscribed before a write commits therefore always sees that
//! write's generation. Each receiver has a bounded queue; when it is full the message is
//! dropped, which is fine because receivers re-read the policy rather than count messages (and
//! a full queue means the receiver has a wake-up pending anyway). Closed receivers are pruned.
//! The thread ends when the store and its listener (PostgreSQL) are gone.

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::{Result, StoreError};

/// Messages queued per receiver before new ones are dropped.
const PER_RECEIVER: usize = 64;

#[derive(Debug)]
enum Msg {
    Subscribe(Sender<u64>),
    Publish(u64),
}

/// A handle to the fan-out thread.
#[derive(Debug, Clone)]
pub(crate) struct Events {
    tx: Sender<Msg>,
}

impl Events {
    /// Starts the fan-out thread.
    pub(crate) fn start() -> Result<Events> {
        let (tx, rx) = crossbeam_channel::unbounded();
        std::thread::Builder::new()
            .name("rampart-store-events".into())
            .spawn(move || run(&rx))
            .map_err(|e| StoreError::Backend(format!("starting the change-event thread: {e}")))?;
        Ok(Events { tx })
    }

    /// A new receiver of every generation published from now on.
    pub(crate) fn subscribe(&self) -> Receiver<u64> {
        let (tx, rx) = crossbeam_channel::bounded(PER_RECEIVER);
        // If the thread is gone the receiver is simply disconnected.
        let _ = self.tx.send(Msg::Subscribe(tx));
        rx
    }

    /// Sends `generation` to every receiver. `false` if the fan-out thread is gone.
    pub(crate) fn publish(&self, generation: u64) -> bool {
        self.tx.send(Msg::Publish(generation)).is_ok()
    }
}

fn run(rx: &Receiver<Msg>) {
    let mut subscribers: Vec<Sender<u64>> = Vec::new();
    for msg in rx {
        match msg {
            Msg::Subscribe(s) => subscribers.push(s),
            Msg::Publish(generation) => subscribers.retain(|s| match s.try_send(generation) {
                Ok(()) | Err(TrySendError::Full(_)) => true,
                Err(TrySendError::Disconnected(_)) => false,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn fans_out_and_prunes() {
        let events = Events::start().unwrap();
        let a = events.subscribe();
        let b = events.subscribe();
        drop(events.subscribe());
        assert!(events.publish(7));
        assert_eq!(a.recv_timeout(Duration::from_secs(1)), Ok(7));
        assert_eq!(b.recv_timeout(Duration::from_secs(1)), Ok(7));
        drop(a);
        assert!(events.publish(8));
        assert_eq!(b.recv_timeout(Duration::from_secs(1)), Ok(8));
    }

    #[test]
    fn full_receiver_drops_instead_of_blocking() {
        let events = Events::start().unwrap();
        let a = events.subscribe();
        for g in 0..(PER_RECEIVER as u64 + 10) {
            events.publish(g);
        }
        let late = events.subscribe();
        events.publish(1000);
        assert_eq!(late.recv_timeout(Duration::from_secs(1)), Ok(1000));
        assert_eq!(a.len(), PER_RECEIVER);
        drop(events);
        // Thread gone: the receiver is disconnected once drained.
        let got: Vec<u64> = a.iter().collect();
        assert_eq!(got.len(), PER_RECEIVER);
    }
}
