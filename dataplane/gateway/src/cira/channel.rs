//! The channel service: the control plane asks for a byte stream to a port a device forwards
//! (WS-MAN on 16992, redirection on 16994), and gets it as a Unix socket.
//!
//! The control plane connects to `channels.sock` (0600, in the 0700 run directory, and only the
//! data plane's own user is served: SO_PEERCRED), writes one line, `OPEN <guid> <port>\n`, and
//! reads one line back: `OK\n`, after which the socket carries the channel's bytes both ways,
//! or `ERR <code> <text>\n` and the socket closes. Codes: `forbidden` (another user),
//! `bad_request`, `not_connected`, `busy`, `not_forwarding`, `port_not_forwarded`,
//! `too_many_channels`, `refused` (the device's OPEN_FAILURE reason follows), `timeout`,
//! `closed`.
//!
//! The service's thread only reads that line and hands the socket to the tunnel, on whatever
//! core the tunnel lives ([`Live::requests`]); the tunnel opens the APF channel and, once the
//! device confirms, runs the channel as two halves:
//!
//! - up (control plane → device): reads the socket only while less than [`UP_CHUNK`] bytes wait
//!   for the device's window, so a device that does not open its window holds the control plane
//!   back instead of filling memory. End of input closes the channel once everything queued has
//!   gone out: APF has no half-close, so a requester reads its whole answer before it shuts its
//!   side (device data arriving after the close is dropped).
//! - down (device → control plane): writes each CHANNEL_DATA to the socket and only then
//!   reports it consumed, so WINDOW_ADJUST goes back to the device at the pace the control plane
//!   reads. The device's CHANNEL_CLOSE ends the socket after the data before it.
//!
//! The bytes never cross a core and are never copied per byte into the control plane's
//! process by anything but the socket itself.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use compio::BufResult;
use compio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use futures_util::future::{Either, select};
use rampart_apf_proto::{ChannelError, ChannelId, Guid};
use tracing::{debug, info, warn};

use super::{CiraShared, Tunnel, bump};

/// How much the up half reads at once, and how much may wait for the device's window before it
/// stops reading.
pub(crate) const UP_CHUNK: usize = 16 * 1024;
/// How long the requester gets to send its `OPEN` line.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest `OPEN` line.
const MAX_LINE: usize = 128;
/// How long the device gets to confirm a channel.
pub(crate) const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the device gets to take our last bytes, and the requester the device's, after the
/// requester's input ended.
const CLOSE_WAIT: Duration = Duration::from_secs(30);
/// Channel requests waiting for one tunnel's core.
pub(crate) const REQUEST_QUEUE: usize = 16;

/// A request handed to the tunnel's core.
#[derive(Debug)]
pub(crate) struct ChannelRequest {
    pub(crate) port: u32,
    pub(crate) sock: UnixStream,
}

/// A wake-up for one waiter on one core: `notify` before `wait` is not lost.
#[derive(Default)]
pub(crate) struct Signal {
    set: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl std::fmt::Debug for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signal")
            .field("set", &self.set.get())
            .finish_non_exhaustive()
    }
}

impl Signal {
    pub(crate) fn notify(&self) {
        self.set.set(true);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    pub(crate) async fn wait(&self) {
        poll_fn(|cx| {
            if self.set.replace(false) {
                Poll::Ready(())
            } else {
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await;
    }
}

/// One channel as its tunnel's driver and its two halves see it.
#[derive(Debug)]
pub(crate) struct ChanState {
    pub(crate) id: ChannelId,
    /// The device's answer to CHANNEL_OPEN: confirmed, or its OPEN_FAILURE reason.
    pub(crate) opened: Cell<Option<Result<(), u32>>>,
    /// CHANNEL_DATA not yet written to the socket (bounded by our window).
    pub(crate) inbound: RefCell<VecDeque<Bytes>>,
    /// The device closed the channel, or the tunnel ended.
    pub(crate) closed: Cell<bool>,
    /// Wakes the up half (the device's window moved, the channel closed).
    pub(crate) up: Signal,
    /// Wakes the opener and then the down half (answer, data, close).
    pub(crate) down: Signal,
}

impl ChanState {
    pub(crate) fn new(id: ChannelId) -> Self {
        Self {
            id,
            opened: Cell::new(None),
            inbound: RefCell::default(),
            closed: Cell::new(false),
            up: Signal::default(),
            down: Signal::default(),
        }
    }

    /// Ends the channel as seen from the socket side, waking both halves.
    pub(crate) fn end(&self) {
        self.closed.set(true);
        self.up.notify();
        self.down.notify();
    }
}

/// The `ERR` code of a channel the session refused to open.
pub(crate) fn error_code(e: &ChannelError) -> &'static str {
    match e {
        ChannelError::NotForwarding => "not_forwarding",
        ChannelError::PortNotForwarded(_) => "port_not_forwarded",
        ChannelError::TooManyChannels => "too_many_channels",
        _ => "closed",
    }
}

/// Answers `ERR` on a socket that has not been handed to a core (a few bytes into an empty
/// socket buffer: never blocks for long).
pub(crate) fn refuse(mut sock: &UnixStream, code: &str, text: &str) {
    let _ = sock.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = sock.write_all(format!("ERR {code} {text}\n").as_bytes());
}

/// Binds `path` (the directory 0700, created if missing and refused if loose; the socket 0600;
/// a stale socket replaced) and serves it on its own thread.
pub(crate) fn spawn(path: PathBuf, shared: Arc<CiraShared>) -> io::Result<()> {
    let listener = bind(&path)?;
    std::thread::Builder::new()
        .name("rampart-channels".into())
        .spawn(move || {
            info!(message = "CIRA channel service listening.", path = %path.display());
            for conn in listener.incoming() {
                match conn {
                    Ok(sock) => handle(sock, &shared),
                    Err(error) => {
                        warn!(message = "Channel service accept failed.", %error);
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        })?;
    Ok(())
}

fn bind(path: &Path) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} has mode {:o}; it must not be accessible to group or others",
                    dir.display(),
                    mode & 0o7777
                ),
            ));
        }
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{}: another data plane serves it", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Reads the request line and hands the socket to the tunnel.
fn handle(sock: UnixStream, shared: &CiraShared) {
    let ours = rustix::process::geteuid();
    match rustix::net::sockopt::socket_peercred(&sock) {
        Ok(cred) if cred.uid == ours => {}
        _ => {
            refuse(&sock, "forbidden", "not the data plane's user");
            return;
        }
    }
    let (guid, port) = match read_request(&sock) {
        Ok(r) => r,
        Err(text) => {
            refuse(&sock, "bad_request", text);
            return;
        }
    };
    let Some(live) = shared.registry.get(&guid) else {
        refuse(&sock, "not_connected", "no tunnel for this device");
        return;
    };
    debug!(message = "CIRA channel requested.", %guid, port, core = live.core);
    if let Err(e) = live.request(ChannelRequest { port, sock }) {
        bump(&shared.stats.channel_refusals);
        refuse(&e.sock, "busy", "too many channel requests for this device");
    }
}

/// `OPEN <guid> <port>\n`, read whole within [`REQUEST_TIMEOUT`], one byte at a time (what
/// follows the line is the channel's).
fn read_request(mut sock: &UnixStream) -> Result<(Guid, u32), &'static str> {
    let deadline = std::time::Instant::now() + REQUEST_TIMEOUT;
    let mut line = Vec::with_capacity(MAX_LINE);
    let mut byte = [0u8; 1];
    while line.last() != Some(&b'\n') {
        if line.len() >= MAX_LINE {
            return Err("request line too long");
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err("no request line in time");
        }
        sock.set_read_timeout(Some(left))
            .map_err(|_| "socket error")?;
        match sock.read(&mut byte) {
            Ok(1) => line.push(byte[0]),
            Ok(_) => return Err("closed before the request line ended"),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err("no request line in time"),
        }
    }
    sock.set_read_timeout(None).map_err(|_| "socket error")?;
    parse_request(&line)
}

/// Parses `OPEN <guid> <port>\n`.
pub(crate) fn parse_request(line: &[u8]) -> Result<(Guid, u32), &'static str> {
    let line = line
        .strip_suffix(b"\n")
        .ok_or("the request line must end with a newline")?;
    let line = std::str::from_utf8(line).map_err(|_| "not UTF-8")?;
    let mut parts = line.split(' ');
    if parts.next() != Some("OPEN") {
        return Err("expected OPEN <guid> <port>");
    }
    let guid = parts
        .next()
        .and_then(|g| g.parse::<Guid>().ok())
        .ok_or("bad GUID")?;
    let port = parts
        .next()
        .and_then(|p| p.parse::<u32>().ok())
        .filter(|p| (1..=65535).contains(p))
        .ok_or("bad port")?;
    if parts.next().is_some() {
        return Err("expected OPEN <guid> <port>");
    }
    Ok((guid, port))
}

/// Runs one channel on its tunnel's core: waits for the device's answer, tells the requester,
/// then moves bytes both ways until either side ends.
pub(crate) async fn run(t: Rc<Tunnel>, ch: Rc<ChanState>, sock: UnixStream) {
    let Ok(sock) = compio::net::UnixStream::from_std(sock) else {
        close(&t, &ch);
        return;
    };
    let answer = compio::time::timeout(OPEN_TIMEOUT, async {
        loop {
            if let Some(r) = ch.opened.get() {
                return Some(r);
            }
            if ch.closed.get() {
                return None;
            }
            ch.down.wait().await;
        }
    })
    .await;
    let (rd, mut wr) = sock.into_split();
    let line = match answer {
        Ok(Some(Ok(()))) => "OK\n".to_owned(),
        Ok(Some(Err(reason))) => format!("ERR refused {reason}\n"),
        Ok(None) => "ERR closed the tunnel ended\n".to_owned(),
        Err(_) => "ERR timeout the device did not answer\n".to_owned(),
    };
    let ok = line == "OK\n";
    let sent = compio::time::timeout(t.write_stall, wr.write_all(line.into_bytes())).await;
    if !ok || !matches!(sent, Ok(BufResult(Ok(()), _))) {
        close(&t, &ch);
        return;
    }
    let stats = &t.shared.stats;
    stats.channels.fetch_add(1, Ordering::Relaxed);
    bump(&stats.channels_opened);
    {
        let up = pin!(up(&t, &ch, rd));
        let down = pin!(down(&t, &ch, wr));
        if let Either::Left(((), down)) = select(up, down).await {
            // The requester's input ended. APF has no half-close: the channel closes, and
            // only what the device sent before goes on to the requester.
            t.session.borrow_mut().close_channel(ch.id);
            t.wake.notify();
            ch.end();
            let _ = compio::time::timeout(CLOSE_WAIT, down).await;
        }
    }
    stats.channels.fetch_sub(1, Ordering::Relaxed);
    close(&t, &ch);
}

/// Closes the channel from our side (a no-op once the device has closed it).
fn close(t: &Tunnel, ch: &ChanState) {
    t.session.borrow_mut().close_channel(ch.id);
    t.channels.borrow_mut().remove(&ch.id);
    t.wake.notify();
}

/// Control plane → device.
async fn up(t: &Tunnel, ch: &ChanState, mut rd: compio::net::UnixStream) {
    let mut buf = Vec::with_capacity(UP_CHUNK);
    loop {
        if !wait_pending(t, ch, UP_CHUNK).await {
            return;
        }
        buf.clear();
        let BufResult(res, b) = rd.read(buf).await;
        buf = b;
        match res {
            Ok(n) if n > 0 => {
                if t.session.borrow_mut().send(ch.id, &buf[..n]).is_err() {
                    return;
                }
                t.wake.notify();
            }
            // End of input (or a broken socket): done once everything queued went out, or
            // when the device has not taken it in time.
            _ => {
                let _ = compio::time::timeout(CLOSE_WAIT, wait_pending(t, ch, 1)).await;
                return;
            }
        }
        if buf.capacity() > UP_CHUNK * 4 {
            buf = Vec::with_capacity(UP_CHUNK);
        }
    }
}

/// Waits until fewer than `below` bytes wait for the device's window; false if the channel
/// ended meanwhile.
async fn wait_pending(t: &Tunnel, ch: &ChanState, below: usize) -> bool {
    loop {
        if ch.closed.get() {
            return false;
        }
        match t.session.borrow().pending(ch.id) {
            None => return false,
            Some(p) if p < below => return true,
            Some(_) => {}
        }
        ch.up.wait().await;
    }
}

/// Device → control plane.
async fn down(t: &Tunnel, ch: &ChanState, mut wr: compio::net::UnixStream) {
    loop {
        let next = loop {
            if let Some(b) = ch.inbound.borrow_mut().pop_front() {
                break Some(b);
            }
            if ch.closed.get() {
                break None;
            }
            ch.down.wait().await;
        };
        let Some(data) = next else {
            let _ = wr.shutdown().await;
            return;
        };
        let n = data.len();
        let sent = compio::time::timeout(t.write_stall, wr.write_all(data)).await;
        if !matches!(sent, Ok(BufResult(Ok(()), _))) {
            return;
        }
        t.session.borrow_mut().consumed(ch.id, n);
        t.wake.notify();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        let g = "12345678-9abc-def0-1122-334455667788";
        let ok = parse_request(format!("OPEN {g} 16992\n").as_bytes()).unwrap();
        assert_eq!(ok.0.to_string(), g);
        assert_eq!(ok.1, 16992);
        for bad in [
            format!("OPEN {g} 16992"),
            format!("OPEN {g} 0\n"),
            format!("OPEN {g} 65536\n"),
            format!("OPEN {g} 16992 x\n"),
            format!("OPEN {g}  16992\n"),
            format!("open {g} 16992\n"),
            "OPEN not-a-guid 16992\n".to_owned(),
            "\n".to_owned(),
            format!("OPEN {g} 16992\r\n"),
        ] {
            assert!(parse_request(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(parse_request(b"OPEN \xff 1\n").is_err());
    }

    #[test]
    fn a_notify_before_the_wait_is_kept() {
        let s = Signal::default();
        s.notify();
        let mut f = pin!(s.wait());
        let waker = Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        assert!(f.as_mut().poll(&mut cx).is_ready());
        let mut g = pin!(s.wait());
        assert!(g.as_mut().poll(&mut cx).is_pending());
        s.notify();
        assert!(g.as_mut().poll(&mut cx).is_ready());
    }
}
