//! Broker persistence: retained messages and persistent sessions survive a restart and a crash.
//!
//! Each core writes a snapshot of its persistent sessions (subscriptions, queued and in-flight
//! QoS 1/2 messages, QoS 2 packet ids awaiting PUBREL) to `<dir>/core-<i>.state`, and core 0
//! writes every retained message to `<dir>/retained.state`, whenever something changed and
//! at most once per `persist_interval`, and once more at the end of a drain. The core only
//! serialises (in memory); a writer thread does the file work: write a temporary file, fsync,
//! rename over the old one, fsync the directory. A crash therefore loses at most the changes
//! of the last `persist_interval` (plus the write in progress), never a whole file: the old
//! snapshot stays until the new one is complete.
//!
//! At start every core reads every file and keeps the sessions whose client id is homed on it,
//! so a change in the number of cores moves sessions to their new homes. Sessions that were
//! connected at the crash come back disconnected, with their full expiry.
//!
//! Format (all integers big-endian): `RMQS` `1`, records, then a CRC-32 of everything before
//! it. A message is stored as the MQTT 5 PUBLISH packet that carries it (the codec's own
//! encoding, so every property survives) plus its absolute expiry in Unix milliseconds.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use rampart_mqtt_proto::{
    DecodeCtx, Packet, Publish, QoS, RetainHandling, SubscriptionOptions, TopicFilter, TopicName,
    Version, decode,
};
use tracing::error;

const MAGIC: &[u8; 5] = b"RMQS1";

/// A message as stored.
#[derive(Debug, Clone)]
pub(crate) struct StoredMessage {
    pub(crate) publish: Publish,
    /// Unix milliseconds, 0 for never.
    pub(crate) expires_unix_ms: u64,
}

/// One queued or in-flight delivery as stored.
#[derive(Debug, Clone)]
pub(crate) struct StoredPending {
    pub(crate) msg: StoredMessage,
    pub(crate) qos: QoS,
    pub(crate) retain: bool,
    pub(crate) sub_ids: Vec<u32>,
    /// Some(pid) for in flight, None for queued.
    pub(crate) pid: Option<u16>,
}

/// One session as stored.
#[derive(Debug, Clone)]
pub(crate) struct StoredSession {
    pub(crate) client_id: String,
    pub(crate) username: String,
    pub(crate) expiry: u32,
    /// Unix milliseconds at which a disconnected session expires, 0 if connected at the write.
    pub(crate) expires_unix_ms: u64,
    pub(crate) subs: Vec<(TopicFilter, SubscriptionOptions, Option<u32>)>,
    pub(crate) pending: Vec<StoredPending>,
    /// PUBREL sent, PUBCOMP awaited.
    pub(crate) releasing: Vec<u16>,
    pub(crate) incoming: Vec<u16>,
}

/// Why a snapshot could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum ReadError {
    #[error("not a broker state file")]
    Magic,
    #[error("checksum mismatch (torn or corrupted file)")]
    Checksum,
    #[error("truncated or malformed record: {0}")]
    Malformed(&'static str),
}

pub(crate) fn unix_ms(at: Instant, now: Instant) -> u64 {
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let wall = if at >= now {
        wall + (at - now)
    } else {
        wall.saturating_sub(now - at)
    };
    u64::try_from(wall.as_millis()).unwrap_or(u64::MAX)
}

/// The `Instant` of a stored Unix time (in the past: now).
pub(crate) fn instant_of(unix_ms: u64, now: Instant) -> Instant {
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let at = Duration::from_millis(unix_ms);
    now + at.saturating_sub(wall)
}

// === encoding ===

fn put_str(b: &mut BytesMut, s: &str) {
    put_bytes(b, s.as_bytes());
}

fn put_bytes(b: &mut BytesMut, s: &[u8]) {
    b.put_u32(s.len() as u32);
    b.put_slice(s);
}

fn put_message(b: &mut BytesMut, m: &StoredMessage) {
    let mut p = BytesMut::new();
    // A message we accepted encodes: the codec's limits are the same both ways.
    let _ = Packet::Publish(m.publish.clone()).encode(Version::V5, &mut p);
    put_bytes(b, &p);
    b.put_u64(m.expires_unix_ms);
}

/// Serialises sessions.
pub(crate) fn encode_sessions(sessions: &[StoredSession]) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_slice(MAGIC);
    b.put_u32(sessions.len() as u32);
    for s in sessions {
        put_str(&mut b, &s.client_id);
        put_str(&mut b, &s.username);
        b.put_u32(s.expiry);
        b.put_u64(s.expires_unix_ms);
        b.put_u32(s.subs.len() as u32);
        for (f, o, id) in &s.subs {
            put_str(&mut b, f.as_str());
            b.put_u8(o.qos.as_u8());
            b.put_u8(u8::from(o.no_local) | u8::from(o.retain_as_published) << 1);
            b.put_u8(o.retain_handling.as_u8());
            b.put_u32(id.unwrap_or(0));
        }
        b.put_u32(s.pending.len() as u32);
        for p in &s.pending {
            put_message(&mut b, &p.msg);
            b.put_u8(p.qos.as_u8());
            b.put_u8(u8::from(p.retain));
            b.put_u32(p.pid.map_or(0, u32::from));
            b.put_u32(p.sub_ids.len() as u32);
            for id in &p.sub_ids {
                b.put_u32(*id);
            }
        }
        for ids in [&s.releasing, &s.incoming] {
            b.put_u32(ids.len() as u32);
            for id in ids {
                b.put_u16(*id);
            }
        }
    }
    seal(b)
}

/// Serialises retained messages.
pub(crate) fn encode_retained(msgs: &[StoredMessage]) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_slice(MAGIC);
    b.put_u32(msgs.len() as u32);
    for m in msgs {
        put_message(&mut b, m);
    }
    seal(b)
}

fn seal(mut b: BytesMut) -> Vec<u8> {
    let crc = crc32fast::hash(&b);
    b.put_u32(crc);
    b.to_vec()
}

// === decoding ===

struct Cursor {
    b: Bytes,
}

impl Cursor {
    fn need(&self, n: usize, what: &'static str) -> Result<(), ReadError> {
        if self.b.remaining() < n {
            Err(ReadError::Malformed(what))
        } else {
            Ok(())
        }
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, ReadError> {
        self.need(1, what)?;
        Ok(self.b.get_u8())
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, ReadError> {
        self.need(2, what)?;
        Ok(self.b.get_u16())
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, ReadError> {
        self.need(4, what)?;
        Ok(self.b.get_u32())
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, ReadError> {
        self.need(8, what)?;
        Ok(self.b.get_u64())
    }
    fn bytes(&mut self, what: &'static str) -> Result<Bytes, ReadError> {
        let n = self.u32(what)? as usize;
        self.need(n, what)?;
        Ok(self.b.split_to(n))
    }
    fn string(&mut self, what: &'static str) -> Result<String, ReadError> {
        String::from_utf8(self.bytes(what)?.to_vec()).map_err(|_| ReadError::Malformed(what))
    }
    /// A count, bounded by what is left (each element takes at least `min` bytes).
    fn count(&mut self, min: usize, what: &'static str) -> Result<usize, ReadError> {
        let n = self.u32(what)? as usize;
        if n.saturating_mul(min) > self.b.remaining() {
            return Err(ReadError::Malformed(what));
        }
        Ok(n)
    }
    fn message(&mut self) -> Result<StoredMessage, ReadError> {
        let raw = self.bytes("message")?;
        let mut buf = BytesMut::from(&raw[..]);
        let ctx = DecodeCtx {
            version: Some(Version::V5),
            max_packet_size: u32::MAX,
        };
        let publish = match decode(&mut buf, ctx) {
            Ok(Some(Packet::Publish(p))) if buf.is_empty() => p,
            _ => return Err(ReadError::Malformed("message")),
        };
        TopicName::new(publish.topic.clone()).map_err(|_| ReadError::Malformed("topic"))?;
        let expires_unix_ms = self.u64("expiry")?;
        Ok(StoredMessage {
            publish,
            expires_unix_ms,
        })
    }
}

fn open(data: Vec<u8>) -> Result<Cursor, ReadError> {
    if data.len() < MAGIC.len() + 4 || &data[..MAGIC.len()] != MAGIC {
        return Err(ReadError::Magic);
    }
    let (body, crc) = data.split_at(data.len() - 4);
    let crc = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32fast::hash(body) != crc {
        return Err(ReadError::Checksum);
    }
    let mut b = Bytes::from(data);
    b.truncate(b.len() - 4);
    b.advance(MAGIC.len());
    Ok(Cursor { b })
}

fn qos(v: u8) -> Result<QoS, ReadError> {
    QoS::from_u8(v).ok_or(ReadError::Malformed("qos"))
}

/// Reads a sessions file.
pub(crate) fn decode_sessions(data: Vec<u8>) -> Result<Vec<StoredSession>, ReadError> {
    let mut c = open(data)?;
    let n = c.count(20, "sessions")?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let client_id = c.string("client id")?;
        let username = c.string("username")?;
        let expiry = c.u32("expiry")?;
        let expires_unix_ms = c.u64("expires")?;
        let nsubs = c.count(11, "subscriptions")?;
        let mut subs = Vec::with_capacity(nsubs);
        for _ in 0..nsubs {
            let f = TopicFilter::new(c.string("filter")?)
                .map_err(|_| ReadError::Malformed("filter"))?;
            let q = qos(c.u8("qos")?)?;
            let flags = c.u8("flags")?;
            let rh = RetainHandling::from_u8(c.u8("retain handling")?)
                .ok_or(ReadError::Malformed("retain handling"))?;
            let id = c.u32("subscription id")?;
            let mut o = SubscriptionOptions::qos(q);
            o.no_local = flags & 1 != 0;
            o.retain_as_published = flags & 2 != 0;
            o.retain_handling = rh;
            subs.push((f, o, (id != 0).then_some(id)));
        }
        let npending = c.count(14, "pending")?;
        let mut pending = Vec::with_capacity(npending);
        for _ in 0..npending {
            let msg = c.message()?;
            let q = qos(c.u8("qos")?)?;
            let retain = c.u8("retain")? != 0;
            let pid = c.u32("pid")?;
            let pid = u16::try_from(pid).map_err(|_| ReadError::Malformed("pid"))?;
            let nids = c.count(4, "subscription ids")?;
            let sub_ids = (0..nids)
                .map(|_| c.u32("subscription id"))
                .collect::<Result<_, _>>()?;
            pending.push(StoredPending {
                msg,
                qos: q,
                retain,
                sub_ids,
                pid: (pid != 0).then_some(pid),
            });
        }
        let mut lists = [Vec::new(), Vec::new()];
        for l in &mut lists {
            let n = c.count(2, "packet ids")?;
            *l = (0..n)
                .map(|_| c.u16("packet id"))
                .collect::<Result<_, _>>()?;
        }
        let [releasing, incoming] = lists;
        out.push(StoredSession {
            client_id,
            username,
            expiry,
            expires_unix_ms,
            subs,
            pending,
            releasing,
            incoming,
        });
    }
    if c.b.has_remaining() {
        return Err(ReadError::Malformed("trailing bytes"));
    }
    Ok(out)
}

/// Reads a retained-messages file.
pub(crate) fn decode_retained(data: Vec<u8>) -> Result<Vec<StoredMessage>, ReadError> {
    let mut c = open(data)?;
    let n = c.count(12, "messages")?;
    let out = (0..n).map(|_| c.message()).collect::<Result<Vec<_>, _>>()?;
    if c.b.has_remaining() {
        return Err(ReadError::Malformed("trailing bytes"));
    }
    Ok(out)
}

// === files ===

pub(crate) fn core_file(dir: &Path, core: usize) -> PathBuf {
    dir.join(format!("core-{core}.state"))
}

pub(crate) fn retained_file(dir: &Path) -> PathBuf {
    dir.join("retained.state")
}

/// Every core file in `dir`.
pub(crate) fn core_files(dir: &Path) -> Vec<(usize, PathBuf)> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n = name.strip_prefix("core-")?.strip_suffix(".state")?;
            Some((n.parse().ok()?, e.path()))
        })
        .collect()
}

/// What the cores of a data plane restore, read before any of them starts.
///
/// Every core's file is read here, once, and its sessions go to their home under the present
/// core count: a core rewrites its own file at its first tick, and a core still to start must
/// not find a file that has already lost the sessions that moved to it (a new core count, or a
/// new `home_core`).
#[derive(Debug, Default)]
pub(crate) struct Restored {
    /// Retained messages, restored on every core.
    pub(crate) retained: Vec<StoredMessage>,
    /// Sessions by home core: `sessions[i]` for core `i`.
    pub(crate) sessions: Vec<Vec<StoredSession>>,
}

impl Restored {
    /// Reads `dir` for `cores` cores (damaged files are logged and skipped, see `load`).
    ///
    /// A session found in two files (after a crash right after a restart that moved it) is
    /// taken from its home core's file, which only its home core rewrites; otherwise from the
    /// lowest-numbered file. When sessions moved, each home file is first rewritten with its
    /// old sessions plus those that moved in, so that a crash before every core has written its
    /// file once loses none of them; then the files of cores that no longer exist are removed.
    pub(crate) fn load(dir: &Path, cores: usize) -> Self {
        let cores = cores.max(1);
        let mut files = core_files(dir);
        files.sort();
        let read: Vec<(usize, Vec<StoredSession>)> = files
            .iter()
            .map(|(i, path)| (*i, load(path, decode_sessions).unwrap_or_default()))
            .collect();
        // Client id -> (file index, its session there), preferring the home core's file.
        let mut chosen: HashMap<&str, (usize, &StoredSession)> = HashMap::new();
        for (file, sessions) in &read {
            for st in sessions {
                let home = super::broker::home_core(&st.client_id, cores);
                match chosen.get(st.client_id.as_str()) {
                    Some((kept, _)) if *kept == home || *file != home => {}
                    _ => {
                        chosen.insert(&st.client_id, (*file, st));
                    }
                }
            }
        }
        let mut sessions: Vec<Vec<StoredSession>> = (0..cores).map(|_| Vec::new()).collect();
        let mut moved_in: Vec<Vec<&StoredSession>> = (0..cores).map(|_| Vec::new()).collect();
        let mut chosen: Vec<_> = chosen.into_values().collect();
        chosen.sort_by(|a, b| a.1.client_id.cmp(&b.1.client_id));
        for (file, st) in chosen {
            let home = super::broker::home_core(&st.client_id, cores);
            if file != home {
                moved_in[home].push(st);
            }
            sessions[home].push(st.clone());
        }
        let mut unsafe_to_remove = false;
        for (home, moved) in moved_in.into_iter().enumerate() {
            if moved.is_empty() {
                continue;
            }
            let own = read.iter().find(|(i, _)| *i == home).map(|(_, s)| s);
            let union: Vec<StoredSession> =
                own.into_iter().flatten().chain(moved).cloned().collect();
            let path = core_file(dir, home);
            if let Err(error) = write_atomic(&path, &encode_sessions(&union)) {
                error!(message = "Cannot write broker state.", path = %path.display(), %error);
                unsafe_to_remove = true;
            }
        }
        // The files of cores that no longer exist: every session in them is in its home's
        // file now.
        if !unsafe_to_remove {
            for (i, path) in &files {
                if *i >= cores {
                    let _ = fs::remove_file(path);
                }
            }
        }
        Self {
            retained: load(&retained_file(dir), decode_retained).unwrap_or_default(),
            sessions,
        }
    }

    /// Core `core`'s share: the retained messages and the sessions homed there.
    pub(crate) fn take(&mut self, core: usize) -> (Vec<StoredMessage>, Vec<StoredSession>) {
        let sessions = self.sessions.get_mut(core).map(std::mem::take);
        (self.retained.clone(), sessions.unwrap_or_default())
    }
}

/// Reads a file, logging (not failing) on a bad one: a broker with a damaged state file still
/// starts, without that state, and says so.
pub(crate) fn load<T>(path: &Path, parse: fn(Vec<u8>) -> Result<T, ReadError>) -> Option<T> {
    match fs::read(path) {
        Ok(data) => match parse(data) {
            Ok(v) => Some(v),
            Err(error) => {
                error!(message = "Ignoring unreadable broker state file.", path = %path.display(), %error);
                None
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(error) => {
            error!(message = "Cannot read broker state file.", path = %path.display(), %error);
            None
        }
    }
}

/// Writes `data` to `path` atomically and durably.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode_0600()
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    fs::File::open(dir)?.sync_all()
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.mode(0o600)
    }
}

/// One write for the writer thread; `done` hears the outcome.
type Job = (
    PathBuf,
    Vec<u8>,
    Option<crossbeam_channel::Sender<io::Result<()>>>,
);

/// The writer thread: takes `(path, bytes)` and writes them, in order; of several queued
/// writes of one path only the newest is written.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    tx: crossbeam_channel::Sender<Job>,
}

impl Writer {
    /// Starts the thread. Creates `dir` (0700) if needed.
    pub(crate) fn start(dir: &Path) -> io::Result<Arc<Self>> {
        {
            use std::os::unix::fs::DirBuilderExt;
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let (tx, rx) = crossbeam_channel::bounded::<Job>(16);
        std::thread::Builder::new()
            .name("rampart-persist".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter());
                    // Newest first: the first job seen for a path is the one written.
                    let mut results: HashMap<PathBuf, io::ErrorKind> = HashMap::new();
                    let mut written: std::collections::HashSet<PathBuf> = Default::default();
                    for (path, data, _) in batch.iter().rev() {
                        if written.insert(path.clone())
                            && let Err(error) = write_atomic(path, data)
                        {
                            error!(message = "Cannot write broker state.", path = %path.display(), %error);
                            results.insert(path.clone(), error.kind());
                        }
                    }
                    for (path, _, done) in batch {
                        if let Some(done) = done {
                            let r = results.get(&path).map_or(Ok(()), |k| Err((*k).into()));
                            let _ = done.send(r);
                        }
                    }
                }
            })?;
        Ok(Arc::new(Self { tx }))
    }

    /// Queues a write without waiting. False if the writer is far behind (the caller keeps its
    /// state dirty and tries again later).
    pub(crate) fn submit(&self, path: PathBuf, data: Vec<u8>) -> bool {
        self.tx.try_send((path, data, None)).is_ok()
    }

    /// Writes after everything queued before it, and waits (at most `limit`) for the outcome.
    pub(crate) fn write_now(
        &self,
        path: PathBuf,
        data: Vec<u8>,
        limit: Duration,
    ) -> io::Result<()> {
        let (done, outcome) = crossbeam_channel::bounded(1);
        self.tx
            .send_timeout((path, data, Some(done)), limit)
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?;
        outcome
            .recv_timeout(limit)
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_mqtt_proto::Properties;

    fn msg(topic: &str, payload: &[u8]) -> StoredMessage {
        let mut properties = Properties::default();
        properties.user_properties.push(("k".into(), "v".into()));
        properties.correlation_data = Some(Bytes::from_static(b"corr"));
        StoredMessage {
            publish: Publish {
                dup: false,
                qos: QoS::AtLeastOnce,
                retain: true,
                topic: topic.into(),
                packet_id: Some(1),
                properties: properties.into(),
                payload: Bytes::copy_from_slice(payload),
            },
            expires_unix_ms: 1_234,
        }
    }

    #[test]
    fn sessions_round_trip() {
        let mut o = SubscriptionOptions::qos(QoS::ExactlyOnce);
        o.no_local = true;
        o.retain_handling = RetainHandling::DoNotSend;
        let s = StoredSession {
            client_id: "cam-1".into(),
            username: "scenectrl".into(),
            expiry: 3600,
            expires_unix_ms: 99,
            subs: vec![(TopicFilter::new("a/+/#").unwrap(), o, Some(7))],
            pending: vec![StoredPending {
                msg: msg("a/b", b"payload"),
                qos: QoS::AtLeastOnce,
                retain: false,
                sub_ids: vec![7, 8],
                pid: Some(3),
            }],
            releasing: vec![4],
            incoming: vec![5, 6],
        };
        let data = encode_sessions(std::slice::from_ref(&s));
        let back = decode_sessions(data).unwrap();
        assert_eq!(back.len(), 1);
        let b = &back[0];
        assert_eq!(b.client_id, s.client_id);
        assert_eq!(b.subs[0].0, s.subs[0].0);
        assert_eq!(b.subs[0].1, s.subs[0].1);
        assert_eq!(b.subs[0].2, Some(7));
        assert_eq!(b.pending[0].msg.publish, s.pending[0].msg.publish);
        assert_eq!(b.pending[0].pid, Some(3));
        assert_eq!(b.pending[0].sub_ids, vec![7, 8]);
        assert_eq!(
            (b.releasing.clone(), b.incoming.clone()),
            (vec![4], vec![5, 6])
        );
    }

    fn session(id: &str) -> StoredSession {
        StoredSession {
            client_id: id.into(),
            username: "u".into(),
            expiry: 60,
            expires_unix_ms: 0,
            subs: Vec::new(),
            pending: Vec::new(),
            releasing: Vec::new(),
            incoming: Vec::new(),
        }
    }

    #[test]
    fn every_session_is_handed_to_its_home_under_the_new_core_count() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<String> = (0..40).map(|i| format!("cam-{i}")).collect();
        // Written by three cores, the last of which is gone, read for two.
        for (core, chunk) in ids.chunks(15).enumerate() {
            let sessions: Vec<_> = chunk.iter().map(|id| session(id)).collect();
            write_atomic(&core_file(dir.path(), core), &encode_sessions(&sessions)).unwrap();
        }
        write_atomic(
            &retained_file(dir.path()),
            &encode_retained(&[msg("r", b"kept")]),
        )
        .unwrap();
        let mut r = Restored::load(dir.path(), 2);
        // Every session is in its home core's file already (with what that file held): a crash
        // after one core's first write, which drops the sessions that moved away, loses none.
        for core in 0..2 {
            let on_disk = load(&core_file(dir.path(), core), decode_sessions).unwrap();
            for id in &ids {
                if super::super::broker::home_core(id, 2) == core {
                    assert!(on_disk.iter().any(|s| &s.client_id == id), "{id}");
                }
            }
        }
        // Reading is done: rewriting a file now (a core's first tick) loses nothing.
        write_atomic(&core_file(dir.path(), 0), &encode_sessions(&[])).unwrap();
        let mut seen = Vec::new();
        for core in 0..2 {
            let (retained, sessions) = r.take(core);
            assert_eq!(retained.len(), 1);
            assert!(!sessions.is_empty(), "core {core} got no session");
            for s in sessions {
                assert_eq!(super::super::broker::home_core(&s.client_id, 2), core);
                seen.push(s.client_id);
            }
        }
        seen.sort();
        let mut want = ids.clone();
        want.sort();
        assert_eq!(seen, want);
        // A core past the count takes nothing, and a share is taken once.
        assert!(r.take(5).1.is_empty() && r.take(0).1.is_empty());
        // The removed core's file is gone; its sessions are in their homes' files.
        assert!(!core_file(dir.path(), 2).exists());
    }

    #[test]
    fn a_session_in_two_files_is_taken_from_its_home_file() {
        let dir = tempfile::tempdir().unwrap();
        // An id homed on core 1 of 2, in core 0's file (stale) and core 1's (fresh).
        let id = (0..)
            .map(|i| format!("cam-{i}"))
            .find(|id| super::super::broker::home_core(id, 2) == 1)
            .unwrap();
        let mut stale = session(&id);
        stale.expiry = 1;
        let mut fresh = session(&id);
        fresh.expiry = 2;
        write_atomic(&core_file(dir.path(), 0), &encode_sessions(&[stale])).unwrap();
        write_atomic(&core_file(dir.path(), 1), &encode_sessions(&[fresh])).unwrap();
        let mut r = Restored::load(dir.path(), 2);
        assert!(r.take(0).1.is_empty());
        let got = r.take(1).1;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].expiry, 2, "the home file's copy");
        // Nothing moved: no file was rewritten.
        let one = load(&core_file(dir.path(), 0), decode_sessions).unwrap();
        assert_eq!(one[0].expiry, 1);
    }

    #[test]
    fn retained_round_trip_and_damage_is_detected() {
        let data = encode_retained(&[msg("x/y", b"1"), msg("z", b"")]);
        let back = decode_retained(data.clone()).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].publish.topic, "z");
        // Every truncation and every flipped byte is refused, never a panic.
        for cut in 0..data.len() {
            assert!(decode_retained(data[..cut].to_vec()).is_err());
        }
        for i in 0..data.len() {
            let mut d = data.clone();
            d[i] ^= 0x40;
            assert!(decode_retained(d).is_err());
        }
    }

    #[test]
    fn hostile_counts_are_refused_without_allocating() {
        let mut b = BytesMut::new();
        b.put_slice(MAGIC);
        b.put_u32(u32::MAX);
        let data = seal(b);
        assert_eq!(
            decode_sessions(data.clone()).unwrap_err(),
            ReadError::Malformed("sessions")
        );
        assert!(decode_retained(data).is_err());
    }

    #[test]
    fn writes_are_atomic_files_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("core-0.state");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!p.with_extension("tmp").exists());
        assert_eq!(core_files(dir.path()), vec![(0, p)]);
    }
}
