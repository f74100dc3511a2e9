//! The control plane's end of the control link.
//!
//! Each data-plane connection gets two threads. The reader reads the greeting (bounded in size
//! and time), answers it, then reads the data plane's `APPLIED`/`REJECTED` lines and records
//! them in the [`Feed`] until the data plane goes away. The writer sends the feed's current
//! snapshot, then every newer one as it is published. At most [`MAX_LINKS`] links at once;
//! the socket is private to Rampart's user anyway.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_channel::Receiver;
use rampart_policy::link::{Ack, AckDecoder, Hello, Role, read_hello, snapshot_header};
use tracing::{info, warn};

use crate::feed::{Feed, LinkHandle};

/// Concurrent data-plane links accepted.
pub const MAX_LINKS: usize = 16;
const GREETING_TIMEOUT: Duration = Duration::from_secs(5);
/// A snapshot the data plane does not take within this long ends the link.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// The writer re-checks the feed this often even without a wake-up.
const WRITER_TICK: Duration = Duration::from_secs(5);

/// Accepts links on a background thread and feeds each the snapshots published in `feed`.
///
/// After [`Feed::close`], live links end at once and the accept thread stops at its next
/// connection attempt (dropping the listener).
pub fn serve(listener: UnixListener, feed: Arc<Feed>) {
    let live = Arc::new(AtomicUsize::new(0));
    let spawned = std::thread::Builder::new()
        .name("rampart-cp-link".into())
        .spawn(move || {
            for conn in listener.incoming() {
                if feed.is_closed() {
                    break;
                }
                let Ok(conn) = conn else { continue };
                if live.fetch_add(1, Ordering::AcqRel) >= MAX_LINKS {
                    live.fetch_sub(1, Ordering::AcqRel);
                    warn!(message = "Too many control links; refusing one.");
                    continue;
                }
                let slot = live.clone();
                let feed = feed.clone();
                let spawned = std::thread::Builder::new()
                    .name("rampart-cp-link-conn".into())
                    .spawn(move || {
                        match session(conn, &feed) {
                            Ok(()) => info!(message = "Data plane disconnected."),
                            Err(error) => warn!(message = "Control link closed.", %error),
                        }
                        slot.fetch_sub(1, Ordering::AcqRel);
                    });
                if let Err(error) = spawned {
                    live.fetch_sub(1, Ordering::AcqRel);
                    warn!(message = "Cannot start a control link thread.", %error);
                }
            }
        });
    if let Err(error) = spawned {
        warn!(message = "Cannot start the control link thread.", %error);
    }
}

fn session(mut s: UnixStream, feed: &Arc<Feed>) -> Result<(), String> {
    s.set_read_timeout(Some(GREETING_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let (theirs, rest) =
        read_hello(&mut s, Role::DataPlane).map_err(|e| format!("greeting: {e}"))?;
    let ours = Hello {
        role: Role::ControlPlane,
        generation: feed.generation().unwrap_or(0),
    };
    s.write_all(ours.encode().as_bytes())
        .map_err(|e| e.to_string())?;
    // Registered before the writer first looks at the feed, so no publish is missed.
    let (link, wake) = feed.attach(theirs.generation);
    info!(message = "Data plane connected.", link = link.id(), peer = %theirs);

    // The reader blocks until a line or EOF; the writer ends it by shutting the socket down.
    s.set_read_timeout(None).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(WRITE_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let out = s.try_clone().map_err(|e| e.to_string())?;
    let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(0);
    let writer_feed = feed.clone();
    let link_id = link.id();
    let writer = std::thread::Builder::new()
        .name("rampart-cp-link-tx".into())
        .spawn(move || write_loop(out, &writer_feed, link_id, &wake, &done_rx))
        .map_err(|e| e.to_string())?;

    let read = read_loop(&mut s, &rest, &link);
    // Stop the writer (if it is still running) and wait for it.
    drop(done_tx);
    let written = writer
        .join()
        .unwrap_or_else(|_| Err("link writer panicked".into()));
    read.and(written)
}

/// Reads acknowledgements until EOF.
fn read_loop(s: &mut UnixStream, rest: &[u8], link: &LinkHandle) -> Result<(), String> {
    let mut decoder = AckDecoder::new();
    let mut record = |mut input: &[u8]| -> Result<(), String> {
        while let Some(ack) = decoder.decode(&mut input).map_err(|e| e.to_string())? {
            match ack {
                Ack::Applied { generation } => {
                    info!(
                        message = "Data plane applied the policy.",
                        link = link.id(),
                        generation
                    );
                    link.record_applied(generation);
                }
                Ack::Rejected { generation, reason } => {
                    warn!(
                        message = "Data plane rejected the policy snapshot.",
                        link = link.id(),
                        generation,
                        %reason
                    );
                    link.record_rejected(generation, reason.as_str());
                }
            }
        }
        Ok(())
    };
    record(rest)?;
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => record(&buf[..n])?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // After our own shutdown (feed closed, writer failed) a read may fail instead of
            // returning EOF; either way the link is over.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(()),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Sends the current snapshot, then each newer one, until told to stop; then shuts the
/// socket down so the reader returns.
fn write_loop(
    mut s: UnixStream,
    feed: &Feed,
    link: u64,
    wake: &Receiver<()>,
    done: &Receiver<()>,
) -> Result<(), String> {
    let mut sent: Option<u64> = None;
    let result = loop {
        if feed.is_closed() {
            break Ok(());
        }
        if let Some(p) = feed
            .current()
            .filter(|p| sent.is_none_or(|g| p.generation > g))
        {
            let wrote = s
                .write_all(snapshot_header(p.bytes.len()).as_bytes())
                .and_then(|()| s.write_all(&p.bytes));
            if let Err(e) = wrote {
                break Err(format!("sending generation {}: {e}", p.generation));
            }
            info!(
                message = "Policy snapshot sent.",
                link,
                generation = p.generation,
                bytes = p.bytes.len()
            );
            sent = Some(p.generation);
        }
        crossbeam_channel::select! {
            recv(wake) -> _ => {}
            recv(done) -> _ => break Ok(()),
            default(WRITER_TICK) => {}
        }
    };
    let _ = s.shutdown(Shutdown::Both);
    result
}
