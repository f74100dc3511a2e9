//! The control plane's end of the control link.
//!
//! Each data-plane connection gets a thread: read the greeting (bounded in size and time),
//! answer, then hold the connection until the data plane goes away. At most
//! [`MAX_LINKS`] links at once; the socket is private to Rampart's user anyway.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rampart_policy::link::{Hello, Role, read_hello};
use tracing::{info, warn};

/// Concurrent data-plane links accepted.
pub const MAX_LINKS: usize = 16;
const GREETING_TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts links on a background thread.
pub fn serve(listener: UnixListener) {
    let live = Arc::new(AtomicUsize::new(0));
    let spawned = std::thread::Builder::new()
        .name("rampart-cp-link".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                if live.fetch_add(1, Ordering::AcqRel) >= MAX_LINKS {
                    live.fetch_sub(1, Ordering::AcqRel);
                    warn!(message = "Too many control links; refusing one.");
                    continue;
                }
                let slot = live.clone();
                let spawned = std::thread::Builder::new()
                    .name("rampart-cp-link-conn".into())
                    .spawn(move || {
                        match session(conn) {
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

fn session(mut s: UnixStream) -> Result<(), String> {
    s.set_read_timeout(Some(GREETING_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let theirs = read_hello(&mut s, Role::DataPlane).map_err(|e| format!("greeting: {e}"))?;
    let ours = Hello {
        role: Role::ControlPlane,
        generation: 0,
    };
    s.write_all(ours.encode().as_bytes())
        .map_err(|e| e.to_string())?;
    info!(message = "Data plane connected.", peer = %theirs);
    s.set_read_timeout(None).map_err(|e| e.to_string())?;
    let mut sink = [0u8; 256];
    while s.read(&mut sink).map_err(|e| e.to_string())? > 0 {}
    Ok(())
}
