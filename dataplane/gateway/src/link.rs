//! The data plane's end of the control link: a Unix socket to the control plane.
//!
//! A background thread (never a data-plane core) connects, exchanges greetings (ours carries
//! the policy generation we hold), and then runs the session with a second thread:
//!
//! - the **reader** receives policy snapshots and password-check answers (see
//!   [`rampart_policy::link`]). Each snapshot is decoded and fully validated there, swapped into
//!   the [`PolicyHandle`] if valid, and answered with `APPLIED <generation>` or
//!   `REJECTED <generation> <reason>`; a rejected snapshot leaves the last good policy in force;
//!   It also hands each `KICK <guid>` to [`LinkHooks::kick`] (disconnect that CIRA device);
//! - the **link thread** writes everything we send: those acknowledgements, `AUTH` requests
//!   made through [`LinkHandle::check_password`], `AUDIT` batches of the records queued
//!   through [`LinkHandle::audit`] (sent every [`AUDIT_FLUSH_EVERY`] or [`AUDIT_FLUSH_RECORDS`]
//!   records, whichever comes first), and `DEVICES` frames: the CIRA connects and disconnects
//!   queued through [`LinkHandle::device_event`] (sent every [`DEVICE_FLUSH_EVERY`] or
//!   [`DEVICE_FLUSH_EVENTS`] events), and the full list of the devices connected here
//!   ([`LinkHooks::devices`], with everyone's last-seen time) right after every greeting and
//!   then every [`DEVICE_FULL_EVERY`], so the control plane's registry heals after anything
//!   lost.
//!
//! When the control plane goes away the thread reconnects with backoff, and the data plane keeps
//! serving with the policy it has. Meanwhile password checks resolve to
//! [`PasswordVerdict::Unavailable`] at once (and those waiting for an answer when the link
//! dropped resolve to it too), and audit records and device events wait in their bounded
//! queues. Device events dropped because their queue was full are made good by a full list.
//!
//! Cores touch only the [`LinkHandle`]: an atomic flag, three bounded lock-free queues, and a
//! one-slot [`rampart_rt::channel`] per password check that wakes the waiting task on its own
//! core. No lock is shared with a core, and no core ever blocks on the link.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use rampart_policy::link::{
    Ack, AuditBatch, AuditPushError, AuthRequest, DeviceBatch, DeviceEvent, DevicePushError, Frame,
    FrameDecoder, FrameError, Hello, MAX_ACK_LINE, MAX_AUTH_BODY, Reason, Role, read_hello,
    valid_node,
};
use rampart_policy::snapshot;
use tracing::{info, warn};
use zeroize::Zeroizing;

use crate::policy::PolicyHandle;

pub use rampart_policy::link::{AuditRecord, PasswordVerdict};

const GREETING_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often a blocked read wakes up to check that a frame in progress is still moving.
const READ_TICK: Duration = Duration::from_secs(1);
/// A snapshot frame that makes no progress for this long ends the session.
const FRAME_STALL: Duration = Duration::from_secs(30);
/// A write that cannot finish within this long ends the session.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
const READ_CHUNK: usize = 64 * 1024;

/// Password checks queued by cores and not yet taken by the link thread; more are
/// [`PasswordVerdict::Unavailable`] at once.
pub const AUTH_QUEUE: usize = 1024;
/// Password checks sent and not yet answered; more are [`PasswordVerdict::Unavailable`].
pub const MAX_PENDING: usize = 4096;
/// The longest a password check waits for its answer, whatever the caller asks for.
pub const MAX_CHECK_TIMEOUT: Duration = Duration::from_secs(60);
/// Audit records queued and not yet taken by the link thread; more are dropped and counted.
pub const AUDIT_QUEUE: usize = 4096;
/// Queued audit records are sent at least this often while the link is up.
pub const AUDIT_FLUSH_EVERY: Duration = Duration::from_millis(200);
/// ... or as soon as this many are waiting.
pub const AUDIT_FLUSH_RECORDS: usize = 100;
/// Expired password checks are forgotten this often.
const PURGE_EVERY: Duration = Duration::from_secs(1);
/// Device events queued and not yet taken by the link thread; more are dropped, counted, and
/// made good by a full list.
pub const DEVICE_QUEUE: usize = 16 * 1024;
/// Queued device events are sent at least this often while the link is up.
pub const DEVICE_FLUSH_EVERY: Duration = Duration::from_millis(200);
/// ... or as soon as this many are waiting.
pub const DEVICE_FLUSH_EVENTS: usize = 1000;
/// The full list of connected devices goes out this often (and after every greeting).
pub const DEVICE_FULL_EVERY: Duration = Duration::from_secs(60);
/// The node name when none is given or the given one is not valid.
pub const DEFAULT_NODE: &str = "dataplane";

/// The devices connected here now: (canonical GUID, connected since, last seen), ms since the
/// epoch.
pub type DeviceList = Vec<(String, u64, u64)>;

/// What the link needs from the rest of the data plane: the CIRA registry (the devices
/// connected here, and a way to disconnect one) and the name it reports them under.
#[derive(Clone)]
pub struct LinkHooks {
    /// The devices whose tunnel this data plane holds now. Called on the link thread.
    pub devices: Arc<dyn Fn() -> DeviceList + Send + Sync>,
    /// Disconnects the device with this canonical GUID if it is connected here. Called on the
    /// link's reader thread; must not block.
    pub kick: Arc<dyn Fn(&str) + Send + Sync>,
    /// This data plane's name (`mpsInstance`): `[A-Za-z0-9._-]`, at most 64 bytes; anything
    /// else becomes [`DEFAULT_NODE`].
    pub node: String,
}

impl Default for LinkHooks {
    /// No devices, nothing to kick, node [`DEFAULT_NODE`].
    fn default() -> Self {
        Self {
            devices: Arc::new(Vec::new),
            kick: Arc::new(|_| {}),
            node: DEFAULT_NODE.to_owned(),
        }
    }
}

impl fmt::Debug for LinkHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkHooks")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// The data plane's way to the control plane: password checks and audit records. Cheap to
/// clone; every core may hold one.
#[derive(Debug, Clone)]
pub struct LinkHandle {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// Greeted and not yet lost.
    up: AtomicBool,
    next_id: AtomicU64,
    auth: Sender<AuthJob>,
    audit: Sender<AuditRecord>,
    /// Records dropped because the queue was full, not yet reported.
    audit_dropped: AtomicU64,
    devices: Sender<DeviceEvent>,
    /// Device events dropped because the queue was full since the last full list.
    devices_dropped: AtomicU64,
}

/// A password check on its way to the link thread.
#[derive(Debug)]
struct AuthJob {
    request: AuthRequest,
    deadline: Instant,
    reply: rampart_rt::channel::Sender<PasswordVerdict>,
}

impl LinkHandle {
    /// Whether the link is up now (greeted, not yet lost).
    pub fn is_up(&self) -> bool {
        self.shared.up.load(Ordering::Acquire)
    }

    /// Asks the control plane to check a human account's password. Never blocks the caller's
    /// thread: returns a future that resolves when the answer arrives, or to
    /// [`PasswordVerdict::Unavailable`] after `timeout` (at most [`MAX_CHECK_TIMEOUT`]) or when
    /// the link is down. Call it on a compio runtime (the timeout is compio's timer).
    ///
    /// Use it for [`AuthDecision::AskControlPlane`](rampart_policy::snapshot::AuthDecision)
    /// only. A user name that is empty or contains NUL, or a password too long for any
    /// account, is [`PasswordVerdict::Denied`] without asking. The control plane audits every
    /// answer it gives (`auth.dataplane`, with the reason), so the caller need not send an
    /// audit record for it. The password is never logged.
    pub async fn check_password(
        &self,
        username: &str,
        password: &[u8],
        peer: IpAddr,
        timeout: Duration,
    ) -> PasswordVerdict {
        let shared = &self.shared;
        if !shared.up.load(Ordering::Acquire) {
            return PasswordVerdict::Unavailable;
        }
        let timeout = timeout.min(MAX_CHECK_TIMEOUT);
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let Ok(request) = AuthRequest::new(id, username, password, peer) else {
            return PasswordVerdict::Denied;
        };
        let (reply, mut answer) = rampart_rt::channel::bounded(1);
        let job = AuthJob {
            request,
            deadline: Instant::now() + timeout,
            reply,
        };
        if shared.auth.try_send(job).is_err() {
            return PasswordVerdict::Unavailable;
        }
        // A reply sender dropped without an answer (refused, link lost) ends the wait too.
        match compio::time::timeout(timeout, answer.recv()).await {
            Ok(Some(verdict)) => verdict,
            Ok(None) | Err(_) => PasswordVerdict::Unavailable,
        }
    }

    /// Queues an audit record (never blocks). The queue holds [`AUDIT_QUEUE`] records; when it
    /// is full the record is dropped and counted, and the count goes to the control plane in
    /// the next batch (and to the log). Records wait in the queue while the link is down.
    ///
    /// Fields over their limits are cut; a record whose action is outside the data plane's
    /// namespaces ([`AUDIT_ACTION_PREFIXES`](rampart_policy::link::AUDIT_ACTION_PREFIXES)) or
    /// whose outcome is not a `[a-z_]` token is dropped with a warning when the batch is built.
    pub fn audit(&self, record: AuditRecord) {
        if self.shared.audit.try_send(record).is_err() {
            self.shared.audit_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues a CIRA device's connect (`connected`, `at_ms`: when its tunnel was established)
    /// or disconnect (`at_ms`: when it ended) for the control plane's device registry; never
    /// blocks. `guid` is canonical (lower-case 8-4-4-4-12); times are ms since the epoch. The
    /// queue holds [`DEVICE_QUEUE`] events; when it is full the event is dropped and counted,
    /// and the next flush sends the full list instead, which carries the same truth. Events
    /// wait in the queue while the link is down.
    pub fn device_event(&self, guid: String, connected: bool, at_ms: u64, last_seen_ms: u64) {
        let event = DeviceEvent {
            guid,
            connected,
            at_ms,
            last_seen_ms,
        };
        if self.shared.devices.try_send(event).is_err() {
            self.shared.devices_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Starts the link thread, which installs every valid snapshot it receives into `policy` and
/// reports the devices `hooks` knows of, and returns the handle for password checks, audit
/// records and device events.
pub fn spawn(path: PathBuf, policy: PolicyHandle, mut hooks: LinkHooks) -> LinkHandle {
    if !valid_node(&hooks.node) {
        warn!(
            message = "Node name not usable on the control link; using the default.",
            node = %hooks.node.escape_debug(),
            default = DEFAULT_NODE
        );
        DEFAULT_NODE.clone_into(&mut hooks.node);
    }
    let (auth, auth_rx) = crossbeam_channel::bounded(AUTH_QUEUE);
    let (audit, audit_rx) = crossbeam_channel::bounded(AUDIT_QUEUE);
    let (devices, devices_rx) = crossbeam_channel::bounded(DEVICE_QUEUE);
    let shared = Arc::new(Shared {
        up: AtomicBool::new(false),
        next_id: AtomicU64::new(1),
        auth,
        audit,
        audit_dropped: AtomicU64::new(0),
        devices,
        devices_dropped: AtomicU64::new(0),
    });
    let mut link = Link {
        path,
        policy,
        shared: shared.clone(),
        auth_rx,
        audit_rx,
        audit_waiting: Vec::new(),
        audit_since: None,
        hooks,
        devices_rx,
        devices_waiting: Vec::new(),
        devices_since: None,
    };
    let spawned = std::thread::Builder::new()
        .name("rampart-link".into())
        .spawn(move || link.run());
    if let Err(error) = spawned {
        warn!(message = "Cannot start the control link thread.", %error);
    }
    LinkHandle { shared }
}

/// The link thread's state, kept across sessions.
struct Link {
    path: PathBuf,
    policy: PolicyHandle,
    shared: Arc<Shared>,
    auth_rx: Receiver<AuthJob>,
    audit_rx: Receiver<AuditRecord>,
    /// Records taken from the queue and not yet sent (at most [`AUDIT_FLUSH_RECORDS`]).
    audit_waiting: Vec<AuditRecord>,
    /// When the oldest of them was taken.
    audit_since: Option<Instant>,
    hooks: LinkHooks,
    devices_rx: Receiver<DeviceEvent>,
    /// Device events taken from the queue and not yet sent (at most [`DEVICE_FLUSH_EVENTS`]).
    devices_waiting: Vec<DeviceEvent>,
    /// When the oldest of them was taken.
    devices_since: Option<Instant>,
}

/// Something the reader hands the link thread.
enum Event {
    Ack(Ack),
    Authed {
        id: u64,
        verdict: PasswordVerdict,
    },
    /// The reader stopped: `Ok` on EOF.
    Closed(Result<(), SessionError>),
}

/// A password check sent and not yet answered.
struct Pending {
    reply: rampart_rt::channel::Sender<PasswordVerdict>,
    deadline: Instant,
}

impl Link {
    fn run(&mut self) {
        let mut backoff = Duration::from_millis(100);
        let mut was_up = false;
        loop {
            match self.session() {
                Ok(hello) => {
                    // The session ran and ended: the control plane went away.
                    warn!(
                        message = "Control link lost; reconnecting, keeping the current policy.",
                        peer = %hello,
                        generation = self.policy.generation()
                    );
                    backoff = Duration::from_millis(100);
                    was_up = true;
                }
                Err(error) => {
                    if !was_up || backoff >= MAX_BACKOFF {
                        warn!(
                            message = "Control link unavailable.",
                            path = %self.path.display(),
                            %error
                        );
                    }
                    was_up = false;
                }
            }
            self.idle(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Waits `how_long`, refusing password checks that raced with the link going down.
    fn idle(&self, how_long: Duration) {
        let until = Instant::now() + how_long;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match self.auth_rx.recv_timeout(left) {
                Ok(job) => refuse(job),
                Err(RecvTimeoutError::Timeout) => return,
                Err(RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(left);
                    return;
                }
            }
        }
    }

    /// One connection: greet, then serve until the control plane closes the link.
    fn session(&mut self) -> Result<Hello, SessionError> {
        let mut s = UnixStream::connect(&self.path).map_err(io_err("connect"))?;
        s.set_read_timeout(Some(GREETING_TIMEOUT))
            .map_err(io_err("set timeout"))?;
        s.set_write_timeout(Some(WRITE_TIMEOUT))
            .map_err(io_err("set timeout"))?;
        let ours = Hello {
            role: Role::DataPlane,
            generation: self.policy.generation(),
        };
        s.write_all(ours.encode().as_bytes())
            .map_err(io_err("greeting"))?;
        let (theirs, rest) = read_hello(&mut s, Role::ControlPlane).map_err(io_err("greeting"))?;
        s.set_read_timeout(Some(READ_TICK))
            .map_err(io_err("set timeout"))?;

        let input = s.try_clone().map_err(io_err("clone socket"))?;
        let (events_tx, events) = crossbeam_channel::unbounded();
        let policy = self.policy.clone();
        let kick = self.hooks.kick.clone();
        let reader = std::thread::Builder::new()
            .name("rampart-link-rx".into())
            .spawn(move || {
                let result = read_loop(input, &rest, &policy, &*kick, &events_tx);
                let _ = events_tx.send(Event::Closed(result));
            })
            .map_err(io_err("start the reader"))?;
        self.shared.up.store(true, Ordering::Release);
        info!(message = "Control link up.", peer = %theirs, generation = ours.generation);

        let mut pending = HashMap::new();
        let result = self.serve(&mut s, &events, &mut pending);
        self.shared.up.store(false, Ordering::Release);
        // Wakes the reader (EOF) if it is still reading.
        let _ = s.shutdown(Shutdown::Both);
        let _ = reader.join();
        // Nobody will answer the checks in flight, or those queued meanwhile.
        for (_, p) in pending.drain() {
            let _ = p.reply.try_send(PasswordVerdict::Unavailable);
        }
        while let Ok(job) = self.auth_rx.try_recv() {
            refuse(job);
        }
        result.map(|()| theirs)
    }

    /// Writes acknowledgements, password checks and audit batches until the reader stops or a
    /// write fails.
    fn serve(
        &mut self,
        s: &mut UnixStream,
        events: &Receiver<Event>,
        pending: &mut HashMap<u64, Pending>,
    ) -> Result<(), SessionError> {
        let auth_rx = self.auth_rx.clone();
        let audit_rx = self.audit_rx.clone();
        let devices_rx = self.devices_rx.clone();
        let mut next_purge = Instant::now() + PURGE_EVERY;
        // What happened while the link was down, then where things stand now.
        self.devices_waiting.extend(self.devices_rx.try_iter());
        self.take_device_drops();
        self.send_device_events(s)?;
        self.send_full_list(s)?;
        let mut next_full = Instant::now() + DEVICE_FULL_EVERY;
        loop {
            let now = Instant::now();
            if self
                .audit_since
                .is_some_and(|t| now >= t + AUDIT_FLUSH_EVERY)
            {
                self.flush_audit(s)?;
            }
            if self
                .devices_since
                .is_some_and(|t| now >= t + DEVICE_FLUSH_EVERY)
                && self.flush_devices(s)?
            {
                next_full = now + DEVICE_FULL_EVERY;
            }
            if now >= next_full {
                self.send_full_list(s)?;
                next_full = now + DEVICE_FULL_EVERY;
            }
            if now >= next_purge {
                // Their callers gave up already; the answer, if it ever comes, is dropped.
                pending.retain(|_, p| p.deadline > now);
                next_purge = now + PURGE_EVERY;
            }
            let wake = [
                self.audit_since.map(|t| t + AUDIT_FLUSH_EVERY),
                self.devices_since.map(|t| t + DEVICE_FLUSH_EVERY),
                Some(next_full),
            ]
            .into_iter()
            .flatten()
            .fold(next_purge, Instant::min);
            crossbeam_channel::select! {
                recv(events) -> event => match event {
                    Ok(Event::Ack(ack)) => {
                        s.write_all(ack.encode().as_bytes())
                            .map_err(io_err("acknowledge"))?;
                    }
                    Ok(Event::Authed { id, verdict }) => {
                        // An unknown id was purged after its caller's timeout.
                        if let Some(p) = pending.remove(&id) {
                            let _ = p.reply.try_send(verdict);
                        }
                    }
                    Ok(Event::Closed(result)) => return result,
                    Err(_) => return Ok(()),
                },
                recv(auth_rx) -> job => {
                    if let Ok(job) = job {
                        send_auth(s, job, pending)?;
                    }
                }
                recv(audit_rx) -> record => {
                    if let Ok(record) = record {
                        self.audit_since.get_or_insert(now);
                        self.audit_waiting.push(record);
                        if self.audit_waiting.len() >= AUDIT_FLUSH_RECORDS {
                            self.flush_audit(s)?;
                        }
                    }
                }
                recv(devices_rx) -> event => {
                    if let Ok(event) = event {
                        self.devices_since.get_or_insert(now);
                        self.devices_waiting.push(event);
                        if self.devices_waiting.len() >= DEVICE_FLUSH_EVENTS
                            && self.flush_devices(s)?
                        {
                            next_full = now + DEVICE_FULL_EVERY;
                        }
                    }
                }
                default(wake.saturating_duration_since(now)) => {}
            }
        }
    }

    /// Sends the waiting audit records in as few `AUDIT` frames as fit.
    fn flush_audit(&mut self, s: &mut UnixStream) -> Result<(), SessionError> {
        self.audit_since = None;
        let dropped = self.shared.audit_dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            warn!(
                message = "Audit records dropped: the queue to the control plane was full.",
                dropped
            );
        }
        let mut batch = AuditBatch::new(dropped);
        let mut invalid = 0u64;
        for record in std::mem::take(&mut self.audit_waiting) {
            match batch.push(&record) {
                Ok(()) => {}
                Err(AuditPushError::Full) => {
                    send_batch(s, &batch, &self.shared)?;
                    batch = AuditBatch::new(0);
                    if batch.push(&record).is_err() {
                        invalid += 1;
                    }
                }
                Err(_) => invalid += 1,
            }
        }
        if invalid > 0 {
            // Our own code made them: a bug, not something a peer can trigger.
            warn!(
                message = "Audit records dropped: action outside the data plane's namespaces or malformed outcome.",
                dropped = invalid
            );
        }
        if !batch.is_empty() || batch.dropped() > 0 {
            send_batch(s, &batch, &self.shared)?;
        }
        Ok(())
    }

    /// Sends the waiting device events, and the full list if events were dropped meanwhile.
    /// Returns whether it sent the full list.
    fn flush_devices(&mut self, s: &mut UnixStream) -> Result<bool, SessionError> {
        self.send_device_events(s)?;
        if self.take_device_drops() {
            self.send_full_list(s)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Whether device events were dropped since the last call (logged).
    fn take_device_drops(&self) -> bool {
        let dropped = self.shared.devices_dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            warn!(
                message = "Device events dropped: the queue to the control plane was full; sending the full list.",
                dropped
            );
        }
        dropped > 0
    }

    /// Sends the waiting device events, in order, in as few `DEVICES` frames as fit. If the
    /// write fails they are lost; the full list after the reconnect makes good.
    fn send_device_events(&mut self, s: &mut UnixStream) -> Result<(), SessionError> {
        self.devices_since = None;
        let events = std::mem::take(&mut self.devices_waiting);
        if events.is_empty() {
            return Ok(());
        }
        let mut batches = Batches::new(&self.hooks.node, false);
        for e in &events {
            batches.push(s, e)?;
        }
        batches.finish(s)
    }

    /// Sends the list of every device connected here now, in one `DEVICES` frame with `full`
    /// set (sent even when empty: then nothing is connected here), continued in plain frames
    /// if it does not fit in one.
    fn send_full_list(&mut self, s: &mut UnixStream) -> Result<(), SessionError> {
        let list = (self.hooks.devices)();
        let mut batches = Batches::new(&self.hooks.node, true);
        for (guid, since_ms, last_seen_ms) in list {
            let e = DeviceEvent {
                guid,
                connected: true,
                at_ms: since_ms,
                last_seen_ms,
            };
            batches.push(s, &e)?;
        }
        batches.finish(s)
    }
}

/// `DEVICES` frames being written: the first may start a full list, the rest continue.
struct Batches {
    node: String,
    full: bool,
    batch: Option<DeviceBatch>,
    sent: usize,
    invalid: u64,
}

impl Batches {
    fn new(node: &str, full: bool) -> Self {
        Self {
            node: node.to_owned(),
            full,
            // The node name was checked at spawn.
            batch: DeviceBatch::new(node, full),
            sent: 0,
            invalid: 0,
        }
    }

    fn push(&mut self, s: &mut UnixStream, e: &DeviceEvent) -> Result<(), SessionError> {
        let Some(batch) = &mut self.batch else {
            return Ok(());
        };
        match batch.push(e) {
            Ok(()) => {}
            Err(DevicePushError::Full) => {
                send_devices(s, batch)?;
                self.sent += 1;
                let mut next = DeviceBatch::new(&self.node, false);
                if let Some(next) = &mut next
                    && next.push(e).is_err()
                {
                    self.invalid += 1;
                }
                self.batch = next;
            }
            Err(_) => self.invalid += 1,
        }
        Ok(())
    }

    /// Sends what is left; a full list's first frame goes even when it is empty.
    fn finish(self, s: &mut UnixStream) -> Result<(), SessionError> {
        if self.invalid > 0 {
            // Our own code made them: a bug, not something a peer can trigger.
            warn!(
                message = "Device events dropped: not a canonical GUID or a time out of range.",
                dropped = self.invalid
            );
        }
        match &self.batch {
            Some(b) if !b.is_empty() || (self.full && self.sent == 0) => send_devices(s, b),
            _ => Ok(()),
        }
    }
}

fn send_devices(s: &mut UnixStream, batch: &DeviceBatch) -> Result<(), SessionError> {
    s.write_all(&batch.encode()).map_err(io_err("devices"))
}

/// Answers a password check that cannot be sent.
fn refuse(job: AuthJob) {
    let _ = job.reply.try_send(PasswordVerdict::Unavailable);
}

/// Sends one `AUTH` frame and remembers whom to answer.
fn send_auth(
    s: &mut UnixStream,
    job: AuthJob,
    pending: &mut HashMap<u64, Pending>,
) -> Result<(), SessionError> {
    if Instant::now() >= job.deadline || pending.len() >= MAX_PENDING {
        refuse(job);
        return Ok(());
    }
    // Sized for the largest frame, so the password is never left behind by a reallocation.
    let mut frame = Zeroizing::new(Vec::with_capacity(MAX_ACK_LINE + MAX_AUTH_BODY));
    job.request.encode_into(&mut frame);
    // Registered first: if the write fails, the session's end answers it.
    pending.insert(
        job.request.id(),
        Pending {
            reply: job.reply,
            deadline: job.deadline,
        },
    );
    s.write_all(&frame).map_err(io_err("password check"))
}

fn send_batch(s: &mut UnixStream, batch: &AuditBatch, shared: &Shared) -> Result<(), SessionError> {
    s.write_all(&batch.encode()).map_err(|e| {
        // Whether the control plane got them is unknown: report them as dropped next time.
        let lost = batch.dropped() + batch.len() as u64;
        shared.audit_dropped.fetch_add(lost, Ordering::Relaxed);
        SessionError::Io("audit", e)
    })
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

/// The reader: decodes frames until EOF, applying snapshots, kicking devices and passing on
/// the rest.
fn read_loop(
    mut s: UnixStream,
    rest: &[u8],
    policy: &PolicyHandle,
    kick: &(dyn Fn(&str) + Send + Sync),
    events: &Sender<Event>,
) -> Result<(), SessionError> {
    let mut decoder = FrameDecoder::new();
    receive(&mut decoder, rest, policy, kick, events)?;
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
                return Ok(());
            }
            Ok(n) => {
                last_progress = Instant::now();
                receive(&mut decoder, &buf[..n], policy, kick, events)?;
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

/// Feeds `input` to the decoder, applying every complete snapshot and passing its
/// acknowledgement and every password answer to the link thread; kicks go to `kick` at once.
fn receive(
    decoder: &mut FrameDecoder,
    mut input: &[u8],
    policy: &PolicyHandle,
    kick: &(dyn Fn(&str) + Send + Sync),
    events: &Sender<Event>,
) -> Result<(), SessionError> {
    while let Some(frame) = decoder.decode(&mut input).map_err(SessionError::Frame)? {
        let event = match frame {
            Frame::Snapshot(bytes) => Event::Ack(apply(&bytes, policy)),
            Frame::Authed { id, verdict } => Event::Authed { id, verdict },
            Frame::Kick(guid) => {
                info!(message = "The control plane asks to disconnect a device.", guid = %guid);
                kick(&guid);
                continue;
            }
            _ => continue,
        };
        if events.send(event).is_err() {
            // The link thread is ending the session.
            return Ok(());
        }
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

    use rampart_policy::link::{AUDIT_ACTION_PREFIXES, authed_line};

    use rampart_policy::cred::{self, DOMAIN_ACCOUNT};
    use rampart_policy::link::{parse_hello, snapshot_header};
    use rampart_policy::snapshot::{
        AccountEntry, AccountKind, AuthDecision, Limits, Snapshot, Verifier,
    };

    use super::*;

    const KEY: [u8; 32] = [5; 32];

    #[test]
    fn a_repeated_generation_is_a_new_installation() {
        // A restored store sends generation 1 again, with other accounts: what the data plane
        // remembers per installation (`Installed::serial`) must not carry over.
        let handle = PolicyHandle::new();
        assert!(matches!(
            apply(&snapshot(1, &["alice"]), &handle),
            Ack::Applied { generation: 1 }
        ));
        let first = handle.current().unwrap();
        assert!(matches!(
            apply(&snapshot(1, &["bob"]), &handle),
            Ack::Applied { generation: 1 }
        ));
        let second = handle.current().unwrap();
        assert_eq!(first.generation(), second.generation());
        assert_ne!(first.serial(), second.serial());
        assert!(matches!(
            second.authenticate("alice", b"alice"),
            AuthDecision::Denied(_)
        ));
    }

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

    /// The next line or frame header, past any `DEVICES` frame (sent after every greeting).
    fn ack(r: &mut impl BufRead) -> String {
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            match line.strip_prefix("DEVICES ") {
                Some(len) => {
                    let mut body = vec![0; len.trim_end().parse().unwrap()];
                    r.read_exact(&mut body).unwrap();
                }
                None => return line,
            }
        }
    }

    /// The next `DEVICES` frame's body, parsed, past any other line.
    fn read_devices(r: &mut impl BufRead) -> serde_json::Value {
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            assert!(!line.is_empty(), "EOF");
            if let Some(len) = line.strip_prefix("DEVICES ") {
                let mut body = vec![0; len.trim_end().parse().unwrap()];
                r.read_exact(&mut body).unwrap();
                return serde_json::from_slice(&body).unwrap();
            }
        }
    }

    #[test]
    fn applies_rejects_and_keeps_the_last_good_policy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let l = UnixListener::bind(&path).unwrap();
        let handle = PolicyHandle::new();
        spawn(path, handle.clone(), LinkHooks::default());

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
        spawn(path, handle.clone(), LinkHooks::default());
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

    fn greet(w: &mut UnixStream, generation: u64) {
        w.write_all(
            Hello {
                role: Role::ControlPlane,
                generation,
            }
            .encode()
            .as_bytes(),
        )
        .unwrap();
    }

    /// Reads one `AUTH` frame: its id and body parts.
    fn read_auth(r: &mut impl BufRead) -> (u64, String, Vec<u8>, String) {
        let header = ack(r);
        let mut fields = header.trim_end().split(' ');
        assert_eq!(fields.next(), Some("AUTH"), "{header:?}");
        let id: u64 = fields.next().unwrap().parse().unwrap();
        let len: usize = fields.next().unwrap().parse().unwrap();
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        let first = body.iter().position(|&b| b == 0).unwrap();
        let last = body.iter().rposition(|&b| b == 0).unwrap();
        (
            id,
            String::from_utf8(body[..first].to_vec()).unwrap(),
            body[first + 1..last].to_vec(),
            String::from_utf8(body[last + 1..].to_vec()).unwrap(),
        )
    }

    /// Reads one `AUDIT` frame's body.
    fn read_audit(r: &mut impl BufRead) -> String {
        let header = ack(r);
        let len: usize = header
            .strip_prefix("AUDIT ")
            .unwrap_or_else(|| panic!("{header:?}"))
            .trim_end()
            .parse()
            .unwrap();
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        String::from_utf8(body).unwrap()
    }

    /// Runs `check_password` on a compio runtime on its own thread, as a core would.
    fn check(
        link: &LinkHandle,
        user: &'static str,
        password: &'static [u8],
        timeout: Duration,
    ) -> std::thread::JoinHandle<(PasswordVerdict, Duration)> {
        let link = link.clone();
        std::thread::spawn(move || {
            let rt = compio::runtime::Runtime::new().unwrap();
            let started = Instant::now();
            let v = rt.block_on(link.check_password(
                user,
                password,
                "192.0.2.7".parse().unwrap(),
                timeout,
            ));
            (v, started.elapsed())
        })
    }

    fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
        let start = Instant::now();
        while !cond() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn password_checks_are_answered_between_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let l = UnixListener::bind(&path).unwrap();
        let handle = PolicyHandle::new();
        let link = spawn(path, handle.clone(), LinkHooks::default());
        // Down: refused at once.
        let (v, took) = check(&link, "alice", b"pw", Duration::from_secs(5))
            .join()
            .unwrap();
        assert_eq!(v, PasswordVerdict::Unavailable);
        assert!(took < Duration::from_secs(1), "{took:?}");

        let (mut r, mut w, _) = accept(&l);
        greet(&mut w, 1);
        send(&mut w, &snapshot(1, &["svc"]));
        assert_eq!(ack(&mut r), "APPLIED 1\n");
        assert!(link.is_up());

        let a = check(&link, "alice", b"s3cret\0with nul", Duration::from_secs(10));
        let (id_a, user, password, peer) = read_auth(&mut r);
        assert_eq!(
            (user.as_str(), &password[..], peer.as_str()),
            ("alice", &b"s3cret\0with nul"[..], "192.0.2.7")
        );
        let b = check(&link, "bob", b"guess", Duration::from_secs(10));
        let (id_b, user, ..) = read_auth(&mut r);
        assert_eq!(user, "bob");
        assert_ne!(id_a, id_b);
        // Answered out of order, with a snapshot in between.
        w.write_all(authed_line(id_b, PasswordVerdict::Throttled).as_bytes())
            .unwrap();
        send(&mut w, &snapshot(2, &["svc"]));
        w.write_all(authed_line(id_a, PasswordVerdict::Allowed).as_bytes())
            .unwrap();
        // An answer nobody waits for is ignored.
        w.write_all(authed_line(999_999, PasswordVerdict::Allowed).as_bytes())
            .unwrap();
        assert_eq!(ack(&mut r), "APPLIED 2\n");
        assert_eq!(b.join().unwrap().0, PasswordVerdict::Throttled);
        assert_eq!(a.join().unwrap().0, PasswordVerdict::Allowed);

        // No answer within the caller's timeout.
        let c = check(&link, "carol", b"pw", Duration::from_millis(200));
        let _ = read_auth(&mut r);
        let (v, took) = c.join().unwrap();
        assert_eq!(v, PasswordVerdict::Unavailable);
        assert!(took >= Duration::from_millis(200) && took < Duration::from_secs(5));

        // Not worth asking: an empty name, a password longer than any account can have.
        let long: &'static [u8] = Box::leak(vec![b'x'; MAX_AUTH_BODY].into_boxed_slice());
        for (user, pw) in [("", &b"pw"[..]), ("dave", long)] {
            let v = check(&link, user, pw, Duration::from_secs(1))
                .join()
                .unwrap()
                .0;
            assert_eq!(v, PasswordVerdict::Denied);
        }

        // The link drops with a check in flight: it resolves at once, not at its timeout.
        let d = check(&link, "dave", b"pw", Duration::from_secs(30));
        let _ = read_auth(&mut r);
        drop((r, w));
        let (v, took) = d.join().unwrap();
        assert_eq!(v, PasswordVerdict::Unavailable);
        assert!(took < Duration::from_secs(5), "{took:?}");
        wait_until("the link to be down", || !link.is_up());
        let (v, took) = check(&link, "dave", b"pw", Duration::from_secs(30))
            .join()
            .unwrap();
        assert_eq!(v, PasswordVerdict::Unavailable);
        assert!(took < Duration::from_secs(1), "{took:?}");
        // It comes back, and so do password checks.
        let (mut r, mut w, _) = accept(&l);
        greet(&mut w, 2);
        wait_until("the link to be up", || link.is_up());
        let e = check(&link, "erin", b"pw", Duration::from_secs(10));
        let (id, user, ..) = read_auth(&mut r);
        assert_eq!(user, "erin");
        w.write_all(authed_line(id, PasswordVerdict::Denied).as_bytes())
            .unwrap();
        assert_eq!(e.join().unwrap().0, PasswordVerdict::Denied);
    }

    #[test]
    fn audit_records_are_batched_and_drops_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let handle = PolicyHandle::new();
        // Nobody listens yet: records wait in the queue, and the overflow is counted.
        let link = spawn(path.clone(), handle, LinkHooks::default());
        let record = |i: usize| AuditRecord {
            action: "mqtt.login".into(),
            actor: "anonymous".into(),
            target: format!("user{i}"),
            outcome: "denied".into(),
            source: Some("192.0.2.7".parse().unwrap()),
            detail: "bad password".into(),
        };
        for i in 0..AUDIT_QUEUE + 5 {
            link.audit(record(i));
        }
        let l = UnixListener::bind(&path).unwrap();
        let (mut r, mut w, _) = accept(&l);
        greet(&mut w, 0);
        // Full batches go out at once, the first reporting the drops.
        let first = read_audit(&mut r);
        assert!(
            first.starts_with(r#"{"dropped":5,"records":[{"action":"mqtt.login","#),
            "{first}"
        );
        assert!(first.contains(r#""target":"user0","#), "{first}");
        assert_eq!(first.matches("\"action\"").count(), AUDIT_FLUSH_RECORDS);
        let mut seen = AUDIT_FLUSH_RECORDS;
        while seen < AUDIT_QUEUE {
            let body = read_audit(&mut r);
            assert!(body.starts_with(r#"{"dropped":0,"#), "{body}");
            seen += body.matches("\"action\"").count();
        }
        assert_eq!(seen, AUDIT_QUEUE);

        // A few records go out within the flush interval; a record outside the data plane's
        // namespaces never does.
        let started = Instant::now();
        link.audit(AuditRecord {
            action: "user.create".into(),
            ..record(0)
        });
        link.audit(record(7));
        link.audit(AuditRecord {
            action: format!("{}acl", AUDIT_ACTION_PREFIXES[0]),
            actor: "bob".into(),
            target: "a/b".into(),
            outcome: "denied".into(),
            source: None,
            detail: String::new(),
        });
        let body = read_audit(&mut r);
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(
            body,
            concat!(
                r#"{"dropped":0,"records":[{"action":"mqtt.login","actor":"anonymous","#,
                r#""target":"user7","outcome":"denied","source":"192.0.2.7","#,
                r#""detail":"bad password"},{"action":"mqtt.acl","actor":"bob","#,
                r#""target":"a/b","outcome":"denied","source":null,"detail":""}]}"#
            )
        );
    }

    #[test]
    fn device_events_full_lists_and_kicks() {
        const A: &str = "12345678-9abc-def0-1122-334455667788";
        const B: &str = "00000000-0000-0000-0000-0000000000bb";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let connected: Arc<arc_swap::ArcSwap<DeviceList>> = Arc::new(
            arc_swap::ArcSwap::from_pointee(vec![(A.to_owned(), 100, 150)]),
        );
        let (kicked_tx, kicked) = crossbeam_channel::unbounded::<String>();
        let list = connected.clone();
        let hooks = LinkHooks {
            devices: Arc::new(move || list.load().to_vec()),
            kick: Arc::new(move |g| {
                let _ = kicked_tx.send(g.to_owned());
            }),
            node: "edge-7".into(),
        };
        assert_eq!(format!("{hooks:?}"), r#"LinkHooks { node: "edge-7", .. }"#);
        let link = spawn(path.clone(), PolicyHandle::new(), hooks);
        // Queued while the link is down: sent first, then the full list.
        link.device_event(B.into(), true, 90, 90);
        link.device_event(B.into(), false, 95, 94);
        let l = UnixListener::bind(&path).unwrap();
        let (mut r, mut w, _) = accept(&l);
        greet(&mut w, 0);
        let events = read_devices(&mut r);
        assert_eq!(
            events,
            serde_json::json!({"node": "edge-7", "full": false, "events": [
                {"guid": B, "connected": true, "at_ms": 90, "last_seen_ms": 90},
                {"guid": B, "connected": false, "at_ms": 95, "last_seen_ms": 94},
            ]})
        );
        let full = read_devices(&mut r);
        assert_eq!(
            full,
            serde_json::json!({"node": "edge-7", "full": true, "events": [
                {"guid": A, "connected": true, "at_ms": 100, "last_seen_ms": 150},
            ]})
        );

        // A kick reaches the hook; an event goes out within the flush interval.
        w.write_all(rampart_policy::link::kick_line(A).unwrap().as_bytes())
            .unwrap();
        assert_eq!(kicked.recv_timeout(Duration::from_secs(5)).unwrap(), A);
        let started = Instant::now();
        link.device_event(A.into(), false, 200, 180);
        let events = read_devices(&mut r);
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(events["full"], false);
        assert_eq!(events["events"][0]["guid"], A);
        assert_eq!(events["events"][0]["connected"], false);

        // A full queue: the overflow is made good by a full list at the next flush.
        connected.store(Arc::new(vec![]));
        drop((r, w));
        wait_until("the link to be down", || !link.is_up());
        for i in 0..DEVICE_QUEUE + 3 {
            link.device_event(B.into(), i % 2 == 0, i as u64, 0);
        }
        let (mut r, mut w, _) = accept(&l);
        greet(&mut w, 0);
        let mut seen = 0;
        let full = loop {
            let frame = read_devices(&mut r);
            if frame["full"] == true {
                break frame;
            }
            seen += frame["events"].as_array().unwrap().len();
        };
        assert_eq!(seen, DEVICE_QUEUE);
        // Nothing connected here now: an empty full list.
        assert_eq!(full["events"], serde_json::json!([]));
        assert_eq!(full["node"], "edge-7");
    }

    #[test]
    fn a_bad_node_name_falls_back_to_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let l = UnixListener::bind(&path).unwrap();
        let hooks = LinkHooks {
            node: "no spaces/please".into(),
            ..LinkHooks::default()
        };
        let _link = spawn(path, PolicyHandle::new(), hooks);
        let (mut r, mut w, _) = accept(&l);
        greet(&mut w, 0);
        let full = read_devices(&mut r);
        assert_eq!(
            full,
            serde_json::json!({"node": DEFAULT_NODE, "full": true, "events": []})
        );
    }
}
