//! The control plane's end of the control link.
//!
//! Each data-plane connection gets two threads. The reader reads the greeting (bounded in size
//! and time), answers it, then reads the data plane's messages until it goes away:
//!
//! - `APPLIED`/`REJECTED` are recorded in the [`Feed`];
//! - `AUTH` (a human account's password) is checked on the API's tokio runtime by
//!   `api::auth::check_password`, the very check web logins use: the
//!   same login throttle (per account and per source address), the same bounded Argon2 pool,
//!   the same cost for unknown, disabled and service accounts, and every outcome audited as
//!   `auth.dataplane`. The answer, `AUTHED <id> <verdict>`, goes to the writer. The reader never
//!   waits for Argon2; it only stops reading once [`MAX_CHECKS_IN_FLIGHT`] checks from its data
//!   plane are running, which pushes back on a flood instead of queueing it;
//! - `AUDIT` batches are checked record by record (the rules of
//!   [`check_audit_record`]) and written through [`Audit`](crate::audit::Audit) (store and
//!   audit log) by one task per link, in order. A malformed batch ends the link;
//! - `DEVICES` reports (CIRA connects and disconnects, and the full list of the devices
//!   connected to the data plane's node) are checked event by event (the rules of
//!   [`check_device_event`]; one node name per link) and applied to the device registry in the
//!   store, one transaction per frame (`Store::record_connections`), by one task per link, in
//!   order: never a write per keepalive. When the link ends, that task marks the node's devices
//!   disconnected, unless another link reports under the same node. A malformed report ends
//!   the link.
//!
//! The writer sends the feed's current snapshot, then every newer one as it is published, and
//! the `AUTHED` answers and `KICK` lines ([`Feed::kick`]) as they come, between snapshot
//! frames. At most [`MAX_LINKS`] links at once; the socket is private to Rampart's user anyway.
//!
//! Without [`Services`] ([`serve`], for tools and tests that only distribute snapshots), `AUTH`
//! is answered `unavailable`, and `AUDIT` records and `DEVICES` reports are checked and
//! dropped.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use rampart_policy::link::{
    Ack, AuditRecord, AuthRequest, DeviceEvent, Hello, PasswordVerdict, Role, Uplink,
    UplinkDecoder, authed_line, check_audit_record, check_device_event, read_hello,
    snapshot_header, valid_node,
};
use rampart_store::{AuditEvent, ConnectionEvent, ConnectionReport, Outcome};
use serde::Deserialize;
use tracing::{info, warn};
use zeroize::Zeroizing;

use crate::api::auth::{Checked, check_password};
use crate::api::{AppState, now_ms};
use crate::feed::{Feed, LinkHandle};

/// Concurrent data-plane links accepted.
pub const MAX_LINKS: usize = 16;
/// Password checks from one link running at once; the reader waits for one to finish before
/// it reads further.
pub const MAX_CHECKS_IN_FLIGHT: usize = 64;
/// Audit batches from one link waiting to be stored; the reader waits beyond that.
const AUDIT_BACKLOG: usize = 16;
/// Device reports from one link waiting to be stored; the reader waits beyond that.
const DEVICES_BACKLOG: usize = 4;
const GREETING_TIMEOUT: Duration = Duration::from_secs(5);
/// A snapshot the data plane does not take within this long ends the link.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// The writer re-checks the feed this often even without a wake-up.
const WRITER_TICK: Duration = Duration::from_secs(5);
/// The audit action of every password check the data plane asks for.
pub const AUTH_ACTION: &str = "auth.dataplane";

/// What the link needs besides the feed to answer `AUTH` and store `AUDIT`: the API's state
/// (store, audit log, login throttle, Argon2 pool) and the runtime it runs on.
#[derive(Debug, Clone)]
pub struct Services {
    state: AppState,
    runtime: tokio::runtime::Handle,
}

impl Services {
    /// Shares `state` with the API; password checks and audit writes run on `runtime`.
    pub fn new(state: AppState, runtime: tokio::runtime::Handle) -> Self {
        Self { state, runtime }
    }
}

/// Accepts links on a background thread and feeds each the snapshots published in `feed`.
/// Password checks are answered `unavailable` and audit records dropped (with a warning); use
/// [`serve_with`] in the control plane.
///
/// After [`Feed::close`], live links end at once and the accept thread stops at its next
/// connection attempt (dropping the listener).
pub fn serve(listener: UnixListener, feed: Arc<Feed>) {
    start(listener, feed, None);
}

/// [`serve`], answering password checks and storing audit records with `services`.
pub fn serve_with(listener: UnixListener, feed: Arc<Feed>, services: Services) {
    start(listener, feed, Some(services));
}

fn start(listener: UnixListener, feed: Arc<Feed>, services: Option<Services>) {
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
                let services = services.clone();
                let spawned = std::thread::Builder::new()
                    .name("rampart-cp-link-conn".into())
                    .spawn(move || {
                        match session(conn, &feed, services.as_ref()) {
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

fn session(mut s: UnixStream, feed: &Arc<Feed>, services: Option<&Services>) -> Result<(), String> {
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
    // AUTHED and KICK lines for the writer. Unbounded, but AUTHED lines never number more than
    // MAX_CHECKS_IN_FLIGHT (a check holds its slot until its answer is queued), and KICK lines
    // come one per API request.
    let (lines_tx, lines_rx) = crossbeam_channel::unbounded::<String>();
    // Registered before the writer first looks at the feed, so no publish is missed.
    let (link, wake) = feed.attach(theirs.generation, lines_tx.clone());
    info!(message = "Data plane connected.", link = link.id(), peer = %theirs);

    // The reader blocks until a message or EOF; the writer ends it by shutting the socket down.
    s.set_read_timeout(None).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(WRITE_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let out = s.try_clone().map_err(|e| e.to_string())?;
    let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(0);
    let writer_feed = feed.clone();
    let link_id = link.id();
    let writer = std::thread::Builder::new()
        .name("rampart-cp-link-tx".into())
        .spawn(move || write_loop(out, &writer_feed, link_id, &wake, &done_rx, &lines_rx))
        .map_err(|e| e.to_string())?;

    let mut reader = Reader::new(&link, services, lines_tx);
    let read = reader.run(&mut s, &rest);
    // Audit batches and device reports already read are still stored: their tasks end once
    // they are (and the device task then marks the node's devices disconnected).
    drop(reader);
    // Stop the writer (if it is still running) and wait for it.
    drop(done_tx);
    let written = writer
        .join()
        .unwrap_or_else(|_| Err("link writer panicked".into()));
    read.and(written)
}

/// The reading half of one link.
struct Reader<'a> {
    link: &'a LinkHandle,
    services: Option<&'a Services>,
    lines: Sender<String>,
    /// One token per password check running; sending blocks at [`MAX_CHECKS_IN_FLIGHT`].
    slots: (Sender<()>, Receiver<()>),
    /// To this link's audit task, started with the first batch.
    audit: Option<tokio::sync::mpsc::Sender<Vec<AuditEvent>>>,
    /// To this link's device task, started with the first report.
    devices: Option<tokio::sync::mpsc::Sender<ConnectionReport>>,
}

impl<'a> Reader<'a> {
    fn new(link: &'a LinkHandle, services: Option<&'a Services>, lines: Sender<String>) -> Self {
        Self {
            link,
            services,
            lines,
            slots: crossbeam_channel::bounded(MAX_CHECKS_IN_FLIGHT),
            audit: None,
            devices: None,
        }
    }

    /// Reads messages until EOF.
    fn run(&mut self, s: &mut UnixStream, rest: &[u8]) -> Result<(), String> {
        let mut decoder = UplinkDecoder::new();
        self.feed(&mut decoder, rest)?;
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => self.feed(&mut decoder, &buf[..n])?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // After our own shutdown (feed closed, writer failed) a read may fail instead
                // of returning EOF; either way the link is over.
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(()),
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    fn feed(&mut self, decoder: &mut UplinkDecoder, mut input: &[u8]) -> Result<(), String> {
        while let Some(msg) = decoder.decode(&mut input).map_err(|e| e.to_string())? {
            match msg {
                Uplink::Ack(ack) => self.ack(ack),
                Uplink::Auth(request) => self.auth(request)?,
                Uplink::Audit(body) => self.audit(&body)?,
                Uplink::Devices(body) => self.devices(&body)?,
                _ => return Err("unexpected message".into()),
            }
        }
        Ok(())
    }

    fn ack(&self, ack: Ack) {
        match ack {
            Ack::Applied { generation } => {
                info!(
                    message = "Data plane applied the policy.",
                    link = self.link.id(),
                    generation
                );
                self.link.record_applied(generation);
            }
            Ack::Rejected { generation, reason } => {
                warn!(
                    message = "Data plane rejected the policy snapshot.",
                    link = self.link.id(),
                    generation,
                    %reason
                );
                self.link.record_rejected(generation, reason.as_str());
            }
        }
    }

    /// Starts a password check; its answer goes to the writer when it is done.
    fn auth(&self, request: AuthRequest) -> Result<(), String> {
        let Some(services) = self.services else {
            let _ = self
                .lines
                .send(authed_line(request.id(), PasswordVerdict::Unavailable));
            return Ok(());
        };
        // Blocks only while MAX_CHECKS_IN_FLIGHT checks run: back-pressure, not Argon2.
        self.slots
            .0
            .send(())
            .map_err(|_| "password check slots closed".to_owned())?;
        let answer = Answer {
            id: request.id(),
            lines: self.lines.clone(),
            slot: self.slots.1.clone(),
            sent: false,
        };
        let state = services.state.clone();
        // If the runtime has shut down the future is dropped unrun, and `Answer` still says
        // `unavailable`.
        services.runtime.spawn(async move {
            let mut answer = answer;
            let verdict = verdict(&state, &request).await;
            answer.send(verdict);
        });
        Ok(())
    }

    /// Checks a batch and hands its records to this link's audit task.
    fn audit(&mut self, body: &[u8]) -> Result<(), String> {
        let events = parse_audit(body, self.link.id())?;
        let Some(services) = self.services else {
            warn!(
                message = "Audit records from the data plane lost: this control link stores none.",
                link = self.link.id(),
                records = events.len()
            );
            return Ok(());
        };
        if events.is_empty() {
            return Ok(());
        }
        let tx = self.audit.get_or_insert_with(|| {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<AuditEvent>>(AUDIT_BACKLOG);
            let state = services.state.clone();
            services.runtime.spawn(async move {
                while let Some(batch) = rx.recv().await {
                    for event in batch {
                        state.audit(event).await;
                    }
                }
            });
            tx
        });
        // Waits only while AUDIT_BACKLOG batches are queued (a slow store).
        if tx.blocking_send(events).is_err() {
            tracing::error!(
                message = "Audit records from the data plane lost: the control plane is stopping.",
                link = self.link.id()
            );
        }
        Ok(())
    }

    /// Checks a device report and hands it to this link's device task.
    fn devices(&mut self, body: &[u8]) -> Result<(), String> {
        let report = parse_devices(body)?;
        if !self.link.set_node(&report.node) {
            return Err(format!(
                "device report under node {:?}, after reports under {:?}",
                report.node,
                self.link.node().unwrap_or_default()
            ));
        }
        let Some(services) = self.services else {
            tracing::debug!(
                message =
                    "Device report from the data plane not stored: this control link stores none.",
                link = self.link.id(),
                events = report.events.len()
            );
            return Ok(());
        };
        let link = self.link.id();
        let node = report.node.clone();
        let tx = self.devices.get_or_insert_with(|| {
            let (tx, rx) = tokio::sync::mpsc::channel::<ConnectionReport>(DEVICES_BACKLOG);
            services
                .runtime
                .spawn(record_devices(services.state.clone(), rx, link, node));
            tx
        });
        // Waits only while DEVICES_BACKLOG reports are queued (a slow store).
        if tx.blocking_send(report).is_err() {
            warn!(
                message = "Device report from the data plane lost: the control plane is stopping.",
                link
            );
        }
        Ok(())
    }
}

/// One link's device task: applies its reports in order, one transaction each; when the link
/// has ended (the channel closed), marks its node's devices disconnected unless another link
/// reports under that node.
async fn record_devices(
    state: AppState,
    mut reports: tokio::sync::mpsc::Receiver<ConnectionReport>,
    link: u64,
    node: String,
) {
    while let Some(report) = reports.recv().await {
        let (full, events) = (report.full, report.events.len());
        let now = now_ms();
        match state
            .blocking(move |s| s.record_connections(&report, now))
            .await
        {
            Ok(done) => tracing::debug!(
                message = "Device report recorded.",
                link,
                full,
                events,
                updated = done.updated,
                reconciled = done.reconciled
            ),
            // The next full list (at most a minute away) makes good.
            Err(error) => warn!(message = "Cannot record a device report.", link, %error),
        }
    }
    if state.feed.node_linked(&node, link) {
        return;
    }
    let now = now_ms();
    let n = node.clone();
    match state
        .blocking(move |s| s.disconnect_devices(Some(&n), now))
        .await
    {
        Ok(0) => {}
        Ok(devices) => info!(
            message = "Data plane gone: its CIRA devices are marked disconnected.",
            link, node, devices
        ),
        Err(error) => warn!(
            message = "Cannot mark a gone data plane's devices disconnected.",
            link,
            node,
            %error
        ),
    }
}

/// A `DEVICES` body (see [`rampart_policy::link`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireDevices {
    node: String,
    full: bool,
    events: Vec<WireDeviceEvent>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireDeviceEvent {
    guid: String,
    connected: bool,
    at_ms: u64,
    last_seen_ms: u64,
}

/// Parses and checks a device report; any malformed event refuses the whole report.
fn parse_devices(body: &[u8]) -> Result<ConnectionReport, String> {
    // serde_json's message may quote the data plane's bytes: only the position is reported.
    let wire: WireDevices = serde_json::from_slice(body).map_err(|e| {
        format!(
            "malformed device report (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    if !valid_node(&wire.node) {
        return Err("device report: malformed node name".into());
    }
    let mut events = Vec::with_capacity(wire.events.len());
    for e in wire.events {
        let event = DeviceEvent {
            guid: e.guid,
            connected: e.connected,
            at_ms: e.at_ms,
            last_seen_ms: e.last_seen_ms,
        };
        check_device_event(&event).map_err(|e| format!("device report: {e}"))?;
        let ms = |v: u64| i64::try_from(v).map_err(|_| "device report: time out of range");
        events.push(ConnectionEvent {
            at: ms(event.at_ms)?,
            last_seen: ms(event.last_seen_ms)?,
            guid: event.guid,
            connected: event.connected,
        });
    }
    Ok(ConnectionReport {
        node: wire.node,
        full: wire.full,
        events,
    })
}

/// A password check's answer, owed to the writer. Dropped unsent (the task never ran, or
/// panicked), it answers `unavailable`; either way it frees its slot.
struct Answer {
    id: u64,
    lines: Sender<String>,
    slot: Receiver<()>,
    sent: bool,
}

impl Answer {
    fn send(&mut self, verdict: PasswordVerdict) {
        self.sent = true;
        let _ = self.lines.send(authed_line(self.id, verdict));
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        if !self.sent {
            let _ = self
                .lines
                .send(authed_line(self.id, PasswordVerdict::Unavailable));
        }
        let _ = self.slot.try_recv();
    }
}

/// Checks one `AUTH` exactly as a web login is checked, and audits the outcome.
async fn verdict(st: &AppState, request: &AuthRequest) -> PasswordVerdict {
    let source = Some(request.peer().to_string());
    let password = Zeroizing::new(request.password().to_vec());
    match check_password(
        st,
        AUTH_ACTION,
        request.username(),
        password,
        source.clone(),
    )
    .await
    {
        Ok(Checked::Ok(account)) => {
            st.audit(AuditEvent {
                id: 0,
                time: now_ms(),
                actor: account.name.clone(),
                source,
                action: AUTH_ACTION.to_owned(),
                object: Some(account.name.clone()),
                outcome: Outcome::Success,
                detail: None,
            })
            .await;
            PasswordVerdict::Allowed
        }
        Ok(Checked::Throttled(_)) => PasswordVerdict::Throttled,
        Ok(Checked::Invalid) => PasswordVerdict::Denied,
        Err(error) => {
            warn!(
                message = "Cannot check a data plane login.",
                error = %error.message,
                code = error.code
            );
            PasswordVerdict::Unavailable
        }
    }
}

/// An `AUDIT` body (see [`rampart_policy::link`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireBatch {
    dropped: u64,
    records: Vec<WireRecord>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireRecord {
    action: String,
    actor: String,
    target: String,
    outcome: String,
    source: Option<IpAddr>,
    detail: String,
}

/// Parses and checks a batch into audit events; a batch the data plane reports drops in adds
/// one `audit.dropped` event. Any malformed record refuses the whole batch.
fn parse_audit(body: &[u8], link: u64) -> Result<Vec<AuditEvent>, String> {
    // serde_json's message may quote the data plane's bytes: only the position is reported.
    let batch: WireBatch = serde_json::from_slice(body).map_err(|e| {
        format!(
            "malformed audit batch (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    let now = now_ms();
    let mut events = Vec::with_capacity(batch.records.len() + 1);
    if batch.dropped > 0 {
        warn!(
            message = "The data plane dropped audit records: its queue was full.",
            link,
            dropped = batch.dropped
        );
        events.push(AuditEvent {
            id: 0,
            time: now,
            actor: "dataplane".to_owned(),
            source: None,
            action: "audit.dropped".to_owned(),
            object: None,
            outcome: Outcome::Failure,
            detail: Some(format!(
                "{} audit records dropped by the data plane (queue full)",
                batch.dropped
            )),
        });
    }
    for r in batch.records {
        let record = AuditRecord {
            action: r.action,
            actor: r.actor,
            target: r.target,
            outcome: r.outcome,
            source: r.source,
            detail: r.detail,
        };
        check_audit_record(&record).map_err(|e| format!("audit batch: {e}"))?;
        events.push(event_of(record, now));
    }
    Ok(events)
}

/// The store has two outcomes; any other token is kept at the front of the detail.
fn event_of(r: AuditRecord, now: i64) -> AuditEvent {
    let (outcome, token) = match r.outcome.as_str() {
        "success" => (Outcome::Success, None),
        "allowed" => (Outcome::Success, Some(r.outcome)),
        "failure" => (Outcome::Failure, None),
        _ => (Outcome::Failure, Some(r.outcome)),
    };
    let detail = match (token, r.detail.is_empty()) {
        (None, true) => None,
        (None, false) => Some(r.detail),
        (Some(t), true) => Some(t),
        (Some(t), false) => Some(format!("{t}: {}", r.detail)),
    };
    AuditEvent {
        id: 0,
        time: now,
        actor: r.actor,
        source: r.source.map(|ip| ip.to_string()),
        action: r.action,
        object: (!r.target.is_empty()).then_some(r.target),
        outcome,
        detail,
    }
}

/// Sends the current snapshot, then each newer one, and every `AUTHED` and `KICK` line, until
/// told to stop; then shuts the socket down so the reader returns.
fn write_loop(
    mut s: UnixStream,
    feed: &Feed,
    link: u64,
    wake: &Receiver<()>,
    done: &Receiver<()>,
    lines: &Receiver<String>,
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
            recv(lines) -> line => {
                if let Ok(line) = line {
                    // Whatever else is ready goes in the same write.
                    let mut out = line;
                    while let Ok(more) = lines.try_recv() {
                        out.push_str(&more);
                    }
                    if let Err(e) = s.write_all(out.as_bytes()) {
                        break Err(format!("writing AUTHED or KICK lines: {e}"));
                    }
                }
            }
            default(WRITER_TICK) => {}
        }
    };
    let _ = s.shutdown(Shutdown::Both);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_batches_are_checked() {
        let body = br#"{"dropped":2,"records":[
            {"action":"mqtt.login","actor":"anonymous","target":"bob","outcome":"denied",
             "source":"192.0.2.7","detail":"bad password"},
            {"action":"mqtt.acl","actor":"bob","target":"","outcome":"failure","source":null,
             "detail":""},
            {"action":"cira.connect","actor":"device:x","target":"t","outcome":"allowed",
             "source":"2001:db8::1","detail":""}]}"#;
        let events = parse_audit(body, 1).unwrap();
        let brief: Vec<_> = events
            .iter()
            .map(|e| {
                (
                    e.action.as_str(),
                    e.actor.as_str(),
                    e.object.as_deref(),
                    e.outcome,
                    e.source.as_deref(),
                    e.detail.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            brief,
            vec![
                (
                    "audit.dropped",
                    "dataplane",
                    None,
                    Outcome::Failure,
                    None,
                    Some("2 audit records dropped by the data plane (queue full)")
                ),
                (
                    "mqtt.login",
                    "anonymous",
                    Some("bob"),
                    Outcome::Failure,
                    Some("192.0.2.7"),
                    Some("denied: bad password")
                ),
                ("mqtt.acl", "bob", None, Outcome::Failure, None, None),
                (
                    "cira.connect",
                    "device:x",
                    Some("t"),
                    Outcome::Success,
                    Some("2001:db8::1"),
                    Some("allowed")
                ),
            ]
        );
        assert!(
            parse_audit(br#"{"dropped":0,"records":[]}"#, 1)
                .unwrap()
                .is_empty()
        );
        let record = |action: &str, extra: &str| {
            format!(
                r#"{{"dropped":0,"records":[{{"action":"{action}","actor":"a","target":"",
                "outcome":"denied","source":null,"detail":""{extra}}}]}}"#
            )
        };
        for bad in [
            // Control-plane namespaces are not the data plane's to write.
            record("auth.login", ""),
            record("user.create", ""),
            record("mqtt.login", r#","password":"x""#),
            r#"{"dropped":0,"records":[{"action":"mqtt.login"}]}"#.to_owned(),
            r#"{"dropped":-1,"records":[]}"#.to_owned(),
            r#"{"records":[]}"#.to_owned(),
            r#"{"dropped":0,"records":[]} trailing"#.to_owned(),
            record("mqtt.login", "").replace("null", r#""not an ip""#),
            record("mqtt.login", "").replace(r#""a""#, r#""""#),
            "\u{0}".to_owned(),
        ] {
            let err = parse_audit(bad.as_bytes(), 1).unwrap_err();
            assert!(!err.contains("password"), "{err}");
        }
    }

    #[test]
    fn device_reports_are_checked() {
        let body = br#"{"node":"edge-1","full":true,"events":[
            {"guid":"12345678-9abc-def0-1122-334455667788","connected":true,"at_ms":5,
             "last_seen_ms":9223372036854775807},
            {"guid":"00000000-0000-0000-0000-000000000000","connected":false,"at_ms":0,
             "last_seen_ms":0}]}"#;
        let r = parse_devices(body).unwrap();
        assert_eq!(
            r,
            ConnectionReport {
                node: "edge-1".into(),
                full: true,
                events: vec![
                    ConnectionEvent {
                        guid: "12345678-9abc-def0-1122-334455667788".into(),
                        connected: true,
                        at: 5,
                        last_seen: i64::MAX,
                    },
                    ConnectionEvent {
                        guid: "00000000-0000-0000-0000-000000000000".into(),
                        connected: false,
                        at: 0,
                        last_seen: 0,
                    },
                ],
            }
        );
        assert!(
            parse_devices(br#"{"node":"n","full":false,"events":[]}"#)
                .unwrap()
                .events
                .is_empty()
        );
        let event = |guid: &str, extra: &str| {
            format!(
                r#"{{"node":"n","full":false,"events":[{{"guid":"{guid}","connected":true,
                "at_ms":1,"last_seen_ms":2{extra}}}]}}"#
            )
        };
        let good = "12345678-9abc-def0-1122-334455667788";
        for bad in [
            event("12345678-9ABC-DEF0-1122-334455667788", ""),
            event("12345678-9abc-def0-1122-33445566778", ""),
            event("", ""),
            event(good, r#","secret":"x""#),
            event(good, "").replace(r#""at_ms":1"#, r#""at_ms":-1"#),
            event(good, "").replace(r#""at_ms":1"#, r#""at_ms":9223372036854775808"#),
            event(good, "").replace(r#""at_ms":1"#, r#""at_ms":"1""#),
            event(good, "").replace(r#""connected":true"#, r#""connected":1"#),
            event(good, "").replace(r#""node":"n""#, r#""node":"a b""#),
            event(good, "").replace(r#""node":"n""#, r#""node":"""#),
            event(good, "").replace(r#","full":false"#, ""),
            r#"{"node":"n","full":false}"#.to_owned(),
            r#"{"node":"n","full":false,"events":[]} trailing"#.to_owned(),
            "\u{0}".to_owned(),
        ] {
            let err = parse_devices(bad.as_bytes()).unwrap_err();
            assert!(!err.contains("secret"), "{err}");
        }
    }

    /// A scripted data plane against the real link server with the API's services on a SQLite
    /// store: reports reach the device registry, kicks reach the data plane, and the link's end
    /// disconnects its node's devices.
    #[test]
    fn device_reports_reach_the_store_and_kicks_the_data_plane() {
        use std::io::BufRead;

        use rampart_policy::link::DeviceBatch;
        use rampart_store::{DeviceConnection, NewDevice, OpenOptions};

        const G: [&str; 4] = [
            "00000000-0000-0000-0000-000000000001",
            "00000000-0000-0000-0000-000000000002",
            "00000000-0000-0000-0000-000000000003",
            "00000000-0000-0000-0000-000000000004",
        ];
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("db/rampart.db").display());
        let store = rampart_store::open(&url, &OpenOptions::default()).unwrap();
        for g in G {
            let new = NewDevice {
                guid: g.into(),
                hostname: None,
                friendly_name: None,
                tags: vec![],
                tenant_id: String::new(),
                dns_suffix: None,
                mps_username: "admin".into(),
                mps_digest: None,
                device_info: None,
            };
            store.create_device(&new, 1).unwrap();
        }
        // Left over: g3 on this node (no longer connected), g4 on another node.
        for (g, node) in [(G[2], "edge-1"), (G[3], "other")] {
            let c = DeviceConnection {
                connected: true,
                node: Some(node.into()),
                ..DeviceConnection::default()
            };
            store.set_device_connection(g, &c).unwrap();
        }
        let feed = Arc::new(Feed::new());
        let run = dir.path().join("run");
        let api = crate::service::build_api(
            crate::service::ApiSettings {
                api_socket: run.join("api.sock"),
                admin_socket: run.join("admin.sock"),
                session_ttl: Duration::from_secs(60),
                cira_ca: None,
                channel_socket: run.join("channels.sock"),
                relay_socket: run.join("relay.sock"),
            },
            store.clone(),
            Zeroizing::new([1; 32]),
            rampart_credentials::AmtSecretStore::Local(rampart_credentials::Kek::from_bytes(
                &[2; 32],
            )),
            crate::audit::Audit::open(&crate::AuditSink::File(dir.path().join("audit.log")))
                .unwrap(),
            feed.clone(),
        )
        .unwrap();
        let path = run.join("control.sock");
        serve_with(
            crate::bind_socket(&path).unwrap(),
            feed.clone(),
            api.link_services(),
        );

        let mut s = UnixStream::connect(&path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let hello = Hello {
            role: Role::DataPlane,
            generation: 0,
        };
        s.write_all(hello.encode().as_bytes()).unwrap();
        let (_, rest) = read_hello(&mut s, Role::ControlPlane).unwrap();
        assert!(rest.is_empty());
        let send = |s: &mut UnixStream, node: &str, full: bool, events: &[(&str, bool, u64)]| {
            let mut b = DeviceBatch::new(node, full).unwrap();
            for &(guid, connected, at_ms) in events {
                b.push(&DeviceEvent {
                    guid: guid.into(),
                    connected,
                    at_ms,
                    last_seen_ms: at_ms + 5,
                })
                .unwrap();
            }
            s.write_all(&b.encode()).unwrap();
        };
        let conn = |g: &str| store.device(g).unwrap().connection;
        let wait = |what: &str, cond: &dyn Fn() -> bool| {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while !cond() {
                assert!(std::time::Instant::now() < deadline, "waiting for {what}");
                std::thread::sleep(Duration::from_millis(10));
            }
        };

        send(&mut s, "edge-1", true, &[(G[0], true, 100)]);
        wait("the full list", &|| {
            conn(G[0]).connected && !conn(G[2]).connected
        });
        assert_eq!(
            conn(G[0]),
            DeviceConnection {
                connected: true,
                node: Some("edge-1".into()),
                last_connected: Some(100),
                last_seen: Some(105),
                last_disconnected: None,
            }
        );
        assert!(conn(G[3]).connected, "another node's device");
        assert_eq!(feed.links()[0].node.as_deref(), Some("edge-1"));
        send(&mut s, "edge-1", false, &[(G[1], true, 200)]);
        wait("a connect", &|| conn(G[1]).connected);

        // A kick reaches the data plane.
        assert_eq!(feed.kick(G[0]), 1);
        let mut r = io::BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert_eq!(line, format!("KICK {}\n", G[0]));

        // A report under another node name ends the link; its node's devices are disconnected.
        send(&mut s, "edge-2", false, &[]);
        let mut tail = Vec::new();
        let _ = r.read_to_end(&mut tail);
        wait("the link's end", &|| {
            !conn(G[0]).connected && !conn(G[1]).connected
        });
        assert!(conn(G[0]).last_disconnected.is_some());
        assert!(conn(G[3]).connected, "another node's device");
        drop(api);
    }
}
