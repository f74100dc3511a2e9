//! The data plane's end of the control link: a Unix socket to the control plane.
//!
//! A background thread (never a data-plane core) connects, exchanges greetings and then waits
//! for the connection to end, reconnecting with backoff. The data plane keeps serving with what
//! it has while the control plane is away.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use rampart_policy::link::{Hello, Role, read_hello};
use tracing::{info, warn};

const GREETING_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Starts the link thread.
pub fn spawn(path: PathBuf) {
    let spawned = std::thread::Builder::new()
        .name("rampart-link".into())
        .spawn(move || run(&path));
    if let Err(error) = spawned {
        warn!(message = "Cannot start the control link thread.", %error);
    }
}

fn run(path: &PathBuf) {
    let mut backoff = Duration::from_millis(100);
    let mut was_up = false;
    loop {
        match session(path) {
            Ok(hello) => {
                // The session ran and ended: the control plane went away.
                warn!(message = "Control link lost; reconnecting.", peer = %hello);
                backoff = Duration::from_millis(100);
                was_up = true;
            }
            Err(error) => {
                if !was_up || backoff >= MAX_BACKOFF {
                    warn!(message = "Control link unavailable.", path = %path.display(), %error);
                }
                was_up = false;
            }
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection: greet, read the greeting, then wait for EOF.
fn session(path: &PathBuf) -> Result<Hello, String> {
    let mut s = UnixStream::connect(path).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(GREETING_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let ours = Hello {
        role: Role::DataPlane,
        generation: 0,
    };
    s.write_all(ours.encode().as_bytes())
        .map_err(|e| e.to_string())?;
    let theirs = read_hello(&mut s, Role::ControlPlane).map_err(|e| format!("greeting: {e}"))?;
    info!(message = "Control link up.", peer = %theirs);
    s.set_read_timeout(None).map_err(|e| e.to_string())?;
    let mut sink = [0u8; 256];
    // Nothing else is sent yet; the read returns when the control plane closes.
    while s.read(&mut sink).map_err(|e| e.to_string())? > 0 {}
    Ok(theirs)
}
