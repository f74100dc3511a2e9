//! The data plane's end of the control link: a Unix socket to the control plane.
//!
//! A background thread (never a data-plane core) connects, exchanges greetings (ours carries
//! the policy generation we hold), then receives policy snapshots. Each snapshot is decoded and
//! fully validated on this thread, swapped into the [`PolicyHandle`] if valid, and answered
//! with `APPLIED <generation>` or `REJECTED <generation> <reason>` (see
//! [`rampart_policy::link`]). A rejected snapshot leaves the last good policy in force. When
//! the control plane goes away the thread reconnects with backoff, and the data plane keeps
//! serving with the policy it has.

use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rampart_policy::link::{Ack, Frame, FrameDecoder, FrameError, Hello, Reason, Role, read_hello};
use rampart_policy::snapshot;
use tracing::{info, warn};

use crate::policy::PolicyHandle;

const GREETING_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often a blocked read wakes up to check that a frame in progress is still moving.
const READ_TICK: Duration = Duration::from_secs(1);
/// A snapshot frame that makes no progress for this long ends the session.
const FRAME_STALL: Duration = Duration::from_secs(30);
/// An acknowledgement that cannot be written within this long ends the session.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
const READ_CHUNK: usize = 64 * 1024;

/// Starts the link thread, which installs every valid snapshot it receives into `policy`.
pub fn spawn(path: PathBuf, policy: PolicyHandle) {
    let spawned = std::thread::Builder::new()
        .name("rampart-link".into())
        .spawn(move || run(&path, &policy));
    if let Err(error) = spawned {
        warn!(message = "Cannot start the control link thread.", %error);
    }
}

fn run(path: &Path, policy: &PolicyHandle) {
    let mut backoff = Duration::from_millis(100);
    let mut was_up = false;
    loop {
        match session(path, policy) {
            Ok(hello) => {
                // The session ran and ended: the control plane went away.
                warn!(
                    message = "Control link lost; reconnecting, keeping the current policy.",
                    peer = %hello,
                    generation = policy.generation()
                );
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

/// Why a session ended other than by the control plane closing it.
#[derive(Debug)]
enum SessionError {
    /// A system call failed.
    Io(&'static str, io::Error),
    /// The control plane broke the frame syntax.
    Frame(FrameError),
    /// A frame started but stopped arriving.
    Stalled,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(context, e) => write!(f, "{context}: {e}"),
            Self::Frame(e) => write!(f, "protocol error: {e}"),
            Self::Stalled => write!(f, "snapshot frame stalled for {FRAME_STALL:?}"),
        }
    }
}

fn io_err(context: &'static str) -> impl FnOnce(io::Error) -> SessionError {
    move |e| SessionError::Io(context, e)
}

/// One connection: greet, then apply snapshots until the control plane closes the link.
fn session(path: &Path, policy: &PolicyHandle) -> Result<Hello, SessionError> {
    let mut s = UnixStream::connect(path).map_err(io_err("connect"))?;
    s.set_read_timeout(Some(GREETING_TIMEOUT))
        .map_err(io_err("set timeout"))?;
    s.set_write_timeout(Some(WRITE_TIMEOUT))
        .map_err(io_err("set timeout"))?;
    let ours = Hello {
        role: Role::DataPlane,
        generation: policy.generation(),
    };
    s.write_all(ours.encode().as_bytes())
        .map_err(io_err("greeting"))?;
    let (theirs, rest) = read_hello(&mut s, Role::ControlPlane).map_err(io_err("greeting"))?;
    info!(message = "Control link up.", peer = %theirs, generation = ours.generation);
    s.set_read_timeout(Some(READ_TICK))
        .map_err(io_err("set timeout"))?;

    let mut decoder = FrameDecoder::new();
    receive(&mut decoder, &rest, policy, &mut s)?;
    let mut buf = vec![0u8; READ_CHUNK];
    let mut last_progress = Instant::now();
    loop {
        match s.read(&mut buf) {
            Ok(0) => {
                if !decoder.is_idle() {
                    warn!(
                        message = "Control link closed in the middle of a snapshot.",
                        received = decoder.buffered()
                    );
                }
                return Ok(theirs);
            }
            Ok(n) => {
                last_progress = Instant::now();
                receive(&mut decoder, &buf[..n], policy, &mut s)?;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                // Idle between frames is normal; a frame must keep moving.
                if decoder.is_idle() {
                    last_progress = Instant::now();
                } else if last_progress.elapsed() > FRAME_STALL {
                    return Err(SessionError::Stalled);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(SessionError::Io("read", e)),
        }
    }
}

/// Feeds `input` to the decoder, applying and acknowledging every complete snapshot.
fn receive(
    decoder: &mut FrameDecoder,
    mut input: &[u8],
    policy: &PolicyHandle,
    out: &mut impl Write,
) -> Result<(), SessionError> {
    while let Some(frame) = decoder.decode(&mut input).map_err(SessionError::Frame)? {
        let Frame::Snapshot(bytes) = frame else {
            continue;
        };
        let ack = apply(&bytes, policy);
        out.write_all(ack.encode().as_bytes())
            .map_err(io_err("acknowledge"))?;
    }
    Ok(())
}

/// Decodes and validates one encoded snapshot and installs it if valid.
fn apply(bytes: &[u8], policy: &PolicyHandle) -> Ack {
    let started = Instant::now();
    match snapshot::decode(bytes) {
        Ok(new) => {
            let generation = new.generation();
            let counts = new.counts();
            let previous = policy.replace(new).map_or(0, |p| p.generation());
            info!(
                message = "Policy snapshot applied.",
                generation,
                previous,
                accounts = counts.accounts,
                acls = counts.acls,
                api_keys = counts.api_keys,
                devices = counts.devices,
                bytes = bytes.len(),
                decode_ms = started.elapsed().as_millis() as u64
            );
            if generation < previous {
                warn!(
                    message = "Policy generation went backwards; the control plane's store was probably restored.",
                    generation, previous
                );
            }
            Ack::Applied { generation }
        }
        Err(error) => {
            let generation = snapshot::peek_generation(bytes).unwrap_or(0);
            warn!(
                message = "Policy snapshot rejected; keeping the last good one.",
                generation,
                kept = policy.generation(),
                %error
            );
            Ack::Rejected {
                generation,
                reason: Reason::new(error.reason()).unwrap_or_else(Reason::other),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::BufRead;
    use std::os::unix::net::UnixListener;

    use rampart_policy::cred::{self, DOMAIN_ACCOUNT};
    use rampart_policy::link::{parse_hello, snapshot_header};
    use rampart_policy::snapshot::{
        AccountEntry, AccountKind, AuthDecision, Limits, Snapshot, Verifier,
    };

    use super::*;

    const KEY: [u8; 32] = [5; 32];

    fn snapshot(generation: u64, users: &[&str]) -> Vec<u8> {
        let accounts = users
            .iter()
            .map(|u| AccountEntry {
                name: (*u).into(),
                kind: AccountKind::Service,
                role: None,
                disabled: false,
                verifier: Verifier::Digest(cred::digest(&KEY, DOMAIN_ACCOUNT, u.as_bytes())),
            })
            .collect();
        snapshot::encode(&Snapshot {
            generation,
            created_at_ms: 0,
            credential_key: KEY,
            accounts,
            acls: vec![],
            api_keys: vec![],
            devices: vec![],
            limits: Limits::default(),
        })
        .unwrap()
    }

    /// A scripted control plane: accepts one link, returns its reader and writer.
    fn accept(l: &UnixListener) -> (io::BufReader<UnixStream>, UnixStream, Hello) {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = io::BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let (hello, _) = parse_hello(line.as_bytes()).unwrap().unwrap();
        (r, s, hello)
    }

    fn send(w: &mut UnixStream, bytes: &[u8]) {
        w.write_all(snapshot_header(bytes.len()).as_bytes())
            .unwrap();
        w.write_all(bytes).unwrap();
    }

    fn ack(r: &mut impl BufRead) -> String {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        line
    }

    #[test]
    fn applies_rejects_and_keeps_the_last_good_policy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let l = UnixListener::bind(&path).unwrap();
        let handle = PolicyHandle::new();
        spawn(path, handle.clone());

        let (mut r, mut w, hello) = accept(&l);
        assert_eq!(hello.role, Role::DataPlane);
        assert_eq!(hello.generation, 0);
        // The greeting and the first frame in one write: the frame must not be lost.
        let mut first = Hello {
            role: Role::ControlPlane,
            generation: 1,
        }
        .encode()
        .into_bytes();
        let gen1 = snapshot(1, &["alice"]);
        first.extend_from_slice(snapshot_header(gen1.len()).as_bytes());
        first.extend_from_slice(&gen1);
        w.write_all(&first).unwrap();
        assert_eq!(ack(&mut r), "APPLIED 1\n");
        assert_eq!(handle.generation(), 1);
        let p = handle.current().unwrap();
        assert_eq!(p.authenticate("alice", b"alice"), AuthDecision::Allowed);

        // A corrupt generation 2: refused, generation 1 stays.
        let mut bad = snapshot(2, &[]);
        let last = bad.len() - 1;
        bad[last] ^= 1;
        send(&mut w, &bad);
        assert_eq!(ack(&mut r), "REJECTED 2 checksum_mismatch\n");
        // Not a snapshot at all.
        send(&mut w, b"garbage");
        assert_eq!(ack(&mut r), "REJECTED 0 truncated\n");
        assert_eq!(handle.generation(), 1);

        // The control plane goes away: the policy stays, and the reconnect reports it.
        drop((r, w));
        let (_r, _w, hello) = accept(&l);
        assert_eq!(hello.generation, 1);
        assert_eq!(
            handle.current().unwrap().authenticate("alice", b"alice"),
            AuthDecision::Allowed
        );
    }

    #[test]
    fn protocol_error_ends_the_session_but_not_the_policy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let l = UnixListener::bind(&path).unwrap();
        let handle = PolicyHandle::new();
        spawn(path, handle.clone());
        let (mut r, mut w, _) = accept(&l);
        w.write_all(
            Hello {
                role: Role::ControlPlane,
                generation: 3,
            }
            .encode()
            .as_bytes(),
        )
        .unwrap();
        send(&mut w, &snapshot(3, &["bob"]));
        assert_eq!(ack(&mut r), "APPLIED 3\n");
        // A frame longer than the limit: the data plane hangs up without buffering it.
        w.write_all(snapshot_header(snapshot::MAX_SNAPSHOT + 1).as_bytes())
            .unwrap();
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
        assert_eq!(handle.generation(), 3);
        // It comes back, holding generation 3.
        let (_r, _w, hello) = accept(&l);
        assert_eq!(hello.generation, 3);
    }
}
