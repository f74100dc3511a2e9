//! The audit log: every authentication outcome, ACL denial, admin change and device
//! connect/disconnect, as one JSON object per line.
//!
//! Each event is stored in the database (queryable at `GET /api/v1/audit`) and written to a
//! sink for SIEM ingestion: a file (appended, mode 0600), standard output, or nothing. The line
//! has exactly the fields `id`, `time`, `actor`, `source`, `action`, `object`, `outcome`,
//! `detail`; [`AuditEvent`] has no field for a password, key, token or hash, and callers put
//! only reasons and non-secret attributes in `detail`.
//!
//! A failure to store or write an event never fails the action being audited (that would turn
//! a full disk into a lock-out), but it is logged at error level every time.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use rampart_store::{AuditEvent, Store};
use serde::Serialize;

use crate::time_fmt::rfc3339;

/// Where audit lines go besides the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditSink {
    /// Only the database.
    None,
    /// Standard output (one line per event).
    Stdout,
    /// A file, appended.
    File(PathBuf),
}

impl AuditSink {
    /// `"-"` is stdout, `""` or `"off"` none, anything else a file path.
    pub fn parse(s: &str) -> AuditSink {
        match s {
            "-" => AuditSink::Stdout,
            "" | "off" => AuditSink::None,
            p => AuditSink::File(PathBuf::from(p)),
        }
    }
}

#[derive(Debug)]
enum Out {
    None,
    Stdout,
    File(Mutex<File>),
}

/// The audit log. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Audit {
    out: Arc<Out>,
}

#[derive(Serialize)]
struct Line<'a> {
    id: i64,
    time: String,
    actor: &'a str,
    source: Option<&'a str>,
    action: &'a str,
    object: Option<&'a str>,
    outcome: rampart_store::Outcome,
    detail: Option<&'a str>,
}

impl Audit {
    /// Opens the sink (creating a file 0600 if needed).
    pub fn open(sink: &AuditSink) -> std::io::Result<Audit> {
        let out = match sink {
            AuditSink::None => Out::None,
            AuditSink::Stdout => Out::Stdout,
            AuditSink::File(path) => Out::File(Mutex::new(open_private(path)?)),
        };
        Ok(Audit { out: Arc::new(out) })
    }

    /// Stores `event` and writes its line. Blocking.
    pub fn record(&self, store: &dyn Store, event: AuditEvent) {
        let event = match store.append_audit(&event) {
            Ok(stored) => stored,
            Err(error) => {
                tracing::error!(message = "Cannot store an audit event.", %error, action = %event.action);
                event
            }
        };
        self.write(&event);
    }

    /// Writes one line to the sink.
    pub fn write(&self, e: &AuditEvent) {
        let line = Line {
            id: e.id,
            time: rfc3339(e.time),
            actor: &e.actor,
            source: e.source.as_deref(),
            action: &e.action,
            object: e.object.as_deref(),
            outcome: e.outcome,
            detail: e.detail.as_deref(),
        };
        let Ok(mut text) = serde_json::to_vec(&line) else {
            return;
        };
        text.push(b'\n');
        let result = match &*self.out {
            Out::None => Ok(()),
            Out::Stdout => std::io::stdout().lock().write_all(&text),
            Out::File(f) => f.lock().write_all(&text),
        };
        if let Err(error) = result {
            tracing::error!(message = "Cannot write the audit log.", %error);
        }
    }
}

fn open_private(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}
