//! The HTTPS front's counters and its JSON access log.
//!
//! Counters are relaxed atomics shared by every core, touched once per request or per
//! connection event. The access log is one JSON object per line, written by one thread from a
//! bounded queue: a core never blocks on the log, and a line that does not fit is counted
//! (`access_log_dropped`) instead.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use tracing::warn;

/// Stages whose timeouts are counted. `send` is the slow-read defence (minimum send rate),
/// `idle` the keep-alive wait between requests.
pub(crate) const STAGES: [&str; 6] = ["handshake", "header", "body", "idle", "send", "upstream"];

/// Why a request or connection was refused. `HeadError::reason` and `BodyError::reason`
/// labels are listed so each is counted on its own; anything else lands in `other`.
pub(crate) const REJECTIONS: &[&str] = &[
    // Connection admission.
    "per_ip_cap",
    "global_cap",
    "shed_idle",
    // Request head (rampart-http-proto).
    "request_line_too_long",
    "field_too_long",
    "too_many_fields",
    "head_too_large",
    "bad_request_line",
    "bad_method",
    "bad_target",
    "bad_version",
    "unsupported_version",
    "bad_field_name",
    "bad_field_value",
    "obs_fold",
    "bare_cr",
    "bare_lf",
    "whitespace_before_colon",
    "bad_content_length",
    "conflicting_content_length",
    "te_and_content_length",
    "bad_transfer_encoding",
    "unsupported_transfer_coding",
    "missing_host",
    "multiple_host",
    "bad_host",
    // Request body (chunked framing).
    "bad_chunk_size",
    "chunk_line_too_long",
    "bad_chunk_extension",
    "missing_chunk_crlf",
    "trailer_too_large",
    "bad_trailer",
    "truncated",
    "body_too_large",
    // Routing.
    "bad_path",
    "method_not_allowed",
    "not_found",
    "ws_handshake",
    "upstream_unavailable",
    "upstream_busy",
    "upstream_error",
    // The redirection relay.
    "relay_unavailable",
    "relay_query",
    "relay_port",
    "relay_mode",
    "relay_token",
    "relay_busy",
    "relay_throttled",
    "amt_password_missing",
    "not_connected",
    "device_timeout",
    "channel_refused",
    "other",
];

/// Counters of the front, shared by every core.
#[derive(Debug)]
pub(crate) struct FrontStats {
    pub(crate) requests: AtomicU64,
    /// Responses by class: 1xx..5xx.
    pub(crate) responses: [AtomicU64; 5],
    pub(crate) timeouts: [AtomicU64; STAGES.len()],
    pub(crate) rejections: Vec<AtomicU64>,
    pub(crate) ws_upgrades: AtomicU64,
    /// Redirection relay sessions started.
    pub(crate) relays: AtomicU64,
    pub(crate) proxied: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) access_log_dropped: AtomicU64,
}

impl Default for FrontStats {
    fn default() -> Self {
        Self {
            requests: AtomicU64::new(0),
            responses: Default::default(),
            timeouts: Default::default(),
            rejections: REJECTIONS.iter().map(|_| AtomicU64::new(0)).collect(),
            ws_upgrades: AtomicU64::new(0),
            relays: AtomicU64::new(0),
            proxied: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            access_log_dropped: AtomicU64::new(0),
        }
    }
}

impl FrontStats {
    pub(crate) fn timeout(&self, stage: &str) {
        if let Some(i) = STAGES.iter().position(|s| *s == stage) {
            self.timeouts[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn reject(&self, reason: &str) {
        let i = REJECTIONS
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(REJECTIONS.len() - 1);
        self.rejections[i].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn response(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.responses[class].fetch_add(1, Ordering::Relaxed);
    }

    /// `(label, value)` of every timeout counter.
    pub(crate) fn timeouts(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        STAGES
            .iter()
            .zip(&self.timeouts)
            .map(|(s, v)| (*s, v.load(Ordering::Relaxed)))
    }

    /// `(label, value)` of every rejection counter.
    pub(crate) fn rejections(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        REJECTIONS
            .iter()
            .zip(&self.rejections)
            .map(|(s, v)| (*s, v.load(Ordering::Relaxed)))
    }
}

/// Where access log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLog {
    /// Not written.
    Off,
    /// Standard error, next to the service log.
    Stderr,
    /// Appended to this file (created 0600).
    File(PathBuf),
}

/// One request, as logged.
#[derive(Debug)]
pub(crate) struct AccessRecord<'a> {
    pub(crate) method: &'a str,
    /// The path without its query (a query may carry tokens).
    pub(crate) path: &'a str,
    pub(crate) status: u16,
    pub(crate) bytes: u64,
    pub(crate) duration: Duration,
    pub(crate) peer: SocketAddr,
    pub(crate) reason: Option<&'a str>,
}

/// The core's end of the access log.
#[derive(Debug, Clone)]
pub(crate) struct AccessLogger {
    tx: Option<Sender<String>>,
    stats: Arc<FrontStats>,
}

impl AccessLogger {
    /// Starts the writer thread (none for `Off`).
    pub(crate) fn start(sink: &AccessLog, stats: Arc<FrontStats>) -> io::Result<Self> {
        let out: Box<dyn Write + Send> = match sink {
            AccessLog::Off => return Ok(Self { tx: None, stats }),
            AccessLog::Stderr => Box::new(io::stderr()),
            AccessLog::File(path) => Box::new(open_log(path)?),
        };
        let (tx, rx) = crossbeam_channel::bounded(16384);
        std::thread::Builder::new()
            .name("rampart-access-log".into())
            .spawn(move || write_lines(rx, out))?;
        Ok(Self {
            tx: Some(tx),
            stats,
        })
    }

    pub(crate) fn log(&self, r: &AccessRecord<'_>) {
        let Some(tx) = &self.tx else { return };
        // A path is cut at 1 KiB (on a character boundary): the queue stays bounded in bytes.
        let mut end = r.path.len().min(1024);
        while !r.path.is_char_boundary(end) {
            end -= 1;
        }
        let path = &r.path[..end];
        let mut line = serde_json::json!({
            "ts": unix_millis(),
            "method": r.method,
            "path": path,
            "status": r.status,
            "bytes": r.bytes,
            "duration_ms": (r.duration.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
            "peer": r.peer.to_string(),
        });
        if let (Some(reason), Some(o)) = (r.reason, line.as_object_mut()) {
            o.insert("reason".into(), reason.into());
        }
        match tx.try_send(line.to_string()) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.stats
                    .access_log_dropped
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn open_log(path: &PathBuf) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Writes lines as they come, flushing whenever the queue runs dry.
fn write_lines(rx: Receiver<String>, out: Box<dyn Write + Send>) {
    let mut out = BufWriter::new(out);
    while let Ok(line) = rx.recv() {
        let mut res = writeln!(out, "{line}");
        while let Ok(line) = rx.try_recv() {
            res = res.and_then(|()| writeln!(out, "{line}"));
        }
        if let Err(error) = res.and_then(|()| out.flush()) {
            warn!(message = "Access log write failed.", %error);
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}
