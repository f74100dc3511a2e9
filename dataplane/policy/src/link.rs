//! The control link's wire format.
//!
//! **Greeting.** Each side sends one line, at most [`MAX_LINE`] bytes including the `\n`; the
//! data plane first, then the control plane answers:
//!
//! ```text
//! RAMPART-LINK <version> <role> <generation>\n
//! ```
//!
//! `version` is [`VERSION`]; a peer with another version is refused (version 2 added `AUTH`,
//! `AUTHED` and `AUDIT`, version 3 `DEVICES` and `KICK`, which an older peer would refuse as
//! unknown frames; both planes ship in one binary). `role` is `dataplane` or `controlplane`. `generation` is the policy
//! generation the sender holds (0: none yet). After the greeting the connection stays open:
//! either side sees the other go away as EOF.
//!
//! **Control plane to data plane**, in any order; [`FrameDecoder`] parses them:
//!
//! ```text
//! SNAPSHOT <len>\n<len bytes: an encoded snapshot, see crate::snapshot>
//! AUTHED <id> <verdict>\n        verdict: allowed | denied | throttled | unavailable
//! KICK <guid>\n                   disconnect this device's CIRA tunnel, if held here
//! ```
//!
//! A snapshot comes right after the greeting and then whenever a newer generation is published.
//! `AUTHED` answers the data plane's `AUTH` with the same id ([`PasswordVerdict`]); answers come
//! in any order, between snapshot frames (never inside one). `KICK` carries a GUID in its
//! canonical form ([`valid_guid`]); a data plane that holds no tunnel for it ignores it. Header,
//! `AUTHED` and `KICK` lines are at most [`MAX_FRAME_HEADER`] bytes and `len` at most
//! [`MAX_SNAPSHOT`](crate::snapshot::MAX_SNAPSHOT).
//!
//! **Data plane to control plane**, in any order; [`UplinkDecoder`] parses them:
//!
//! ```text
//! APPLIED <generation>\n                one per snapshot received: now enforced
//! REJECTED <generation> <reason>\n      refused, the last good one stays; reason: [a-z_]{1,64}
//! AUTH <id> <len>\n<len bytes>          body: username NUL password NUL peer-ip
//! AUDIT <len>\n<len bytes of JSON>      one or more audit records
//! DEVICES <len>\n<len bytes of JSON>    CIRA devices connected and disconnected
//! ```
//!
//! Lines and headers are at most [`MAX_ACK_LINE`] bytes.
//!
//! - `AUTH` asks the control plane to check a human account's password (Argon2 never runs on a
//!   data-plane core). `id` is a `u64` the data plane picks, unique among its requests still
//!   outstanding on the link; `len` is at most [`MAX_AUTH_BODY`]. The user name is UTF-8,
//!   non-empty and without NUL; the password is any bytes, NUL included (the body is split at its
//!   first and its last NUL); the peer IP is the client's address as Rust's `IpAddr` writes it
//!   (dotted quad, RFC 5952 for IPv6). [`AuthRequest`] holds one. The control plane answers each
//!   with exactly one `AUTHED` line unless the link drops first. `throttled`: the account or the
//!   address is locked after failures; `unavailable`: it could not check now (too many checks in
//!   progress, store down). The data plane also resolves a request to `unavailable` itself when
//!   the link is down or the answer is late.
//! - `AUDIT` carries one JSON object, at most [`MAX_AUDIT_BODY`] bytes, that [`AuditBatch`]
//!   builds:
//!
//!   ```text
//!   {"dropped":<u64>,"records":[{"action":"mqtt.login","actor":"anonymous","target":"bob",
//!     "outcome":"denied","source":"192.0.2.7","detail":"bad password"}, ...]}
//!   ```
//!
//!   `dropped` counts the records the data plane dropped since the previous batch because its
//!   queue was full. Every record has exactly these six fields (`source` may be `null`), within
//!   the rules of [`check_audit_record`]: the action must lie in a data-plane namespace
//!   ([`AUDIT_ACTION_PREFIXES`]), so a data plane cannot write control-plane events such as
//!   `user.create`. No record carries a password.
//! - `DEVICES` carries one JSON object, at most [`MAX_DEVICES_BODY`] bytes, that
//!   [`DeviceBatch`] builds:
//!
//!   ```text
//!   {"node":"edge-1","full":false,"events":[{"guid":"12345678-9abc-def0-1122-334455667788",
//!     "connected":true,"at_ms":1700000000000,"last_seen_ms":1700000000000}, ...]}
//!   ```
//!
//!   `node` names the data plane ([`valid_node`]; the same in every frame of a link). With
//!   `full: false` the events are connects (`at_ms`: when the tunnel was established) and
//!   disconnects (`at_ms`: when it ended) in the order they happened. With `full: true` the
//!   frame lists every device whose tunnel this node holds now (`connected: true`, `at_ms`: since
//!   when), and every other device last seen on this node is disconnected; a list too long for
//!   one frame continues in `full: false` frames right behind it. `last_seen_ms` is when the
//!   device was last heard from. Every event follows [`check_device_event`].
//!
//! Both decoders are strict and never panic: a length is checked against its limit on the header,
//! before any of the body is buffered; an unknown kind, an oversized line or body, or a malformed
//! field is an error that leaves the decoder failed, and the link is closed.

use std::fmt;
use std::io;
use std::net::IpAddr;

/// The link protocol version this build speaks.
pub const VERSION: u32 = 3;

/// The longest greeting line accepted, including the newline.
pub const MAX_LINE: usize = 128;

const MAGIC: &str = "RAMPART-LINK";

/// Which plane sent a greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The data plane.
    DataPlane,
    /// The control plane.
    ControlPlane,
}

impl Role {
    /// Wire spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::DataPlane => "dataplane",
            Self::ControlPlane => "controlplane",
        }
    }
}

/// A greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// Who sends it.
    pub role: Role,
    /// The policy generation the sender holds.
    pub generation: u64,
}

impl Hello {
    /// The line to send, newline included.
    pub fn encode(&self) -> String {
        format!(
            "{MAGIC} {VERSION} {} {}\n",
            self.role.as_str(),
            self.generation
        )
    }
}

impl fmt::Display for Hello {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} generation {}", self.role.as_str(), self.generation)
    }
}

/// Why a greeting was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// No newline within [`MAX_LINE`] bytes.
    #[error("greeting longer than the limit")]
    TooLong,
    /// Not `RAMPART-LINK` followed by three fields, or not ASCII.
    #[error("malformed greeting")]
    Malformed,
    /// A protocol version other than ours.
    #[error("unsupported link version")]
    Version,
    /// An unknown role.
    #[error("unknown role")]
    Role,
}

/// Parses a greeting from the start of `buf`.
///
/// Returns `Ok(None)` while no newline has arrived (and `buf` is still within the limit), or
/// the greeting and the number of bytes it used.
pub fn parse_hello(buf: &[u8]) -> Result<Option<(Hello, usize)>, LinkError> {
    let window = &buf[..buf.len().min(MAX_LINE)];
    let Some(end) = window.iter().position(|&b| b == b'\n') else {
        return if buf.len() >= MAX_LINE {
            Err(LinkError::TooLong)
        } else {
            Ok(None)
        };
    };
    let line = std::str::from_utf8(&window[..end]).map_err(|_| LinkError::Malformed)?;
    if !line.is_ascii() {
        return Err(LinkError::Malformed);
    }
    let mut fields = line.split(' ');
    let (Some(MAGIC), Some(version), Some(role), Some(generation), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(LinkError::Malformed);
    };
    let version: u32 = parse_decimal(version)?;
    if version != VERSION {
        return Err(LinkError::Version);
    }
    let role = match role {
        "dataplane" => Role::DataPlane,
        "controlplane" => Role::ControlPlane,
        _ => return Err(LinkError::Role),
    };
    let generation = parse_decimal(generation)?;
    Ok(Some((Hello { role, generation }, end + 1)))
}

/// Reads one greeting from `r` (a blocking stream with its own read timeout), both planes' way
/// in. Refuses a greeting from anyone but `expect`. Also returns the bytes read after the
/// greeting's newline (fewer than [`MAX_LINE`]): the control plane may send its first snapshot
/// frame right behind its greeting, and those bytes belong to the [`FrameDecoder`].
///
/// Errors: `UnexpectedEof` if the peer closes first, `InvalidData` (with the [`LinkError`] as
/// source) for a malformed, oversized or wrong-role greeting, or the reader's own error.
pub fn read_hello(r: &mut impl io::Read, expect: Role) -> io::Result<(Hello, Vec<u8>)> {
    let mut buf = Vec::with_capacity(MAX_LINE);
    let mut chunk = [0u8; MAX_LINE];
    let (hello, used) = loop {
        let n = r.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "peer closed during the greeting",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        match parse_hello(&buf) {
            Ok(Some(found)) => break found,
            Ok(None) => {}
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    };
    if hello.role != expect {
        return Err(io::Error::new(io::ErrorKind::InvalidData, LinkError::Role));
    }
    buf.drain(..used);
    Ok((hello, buf))
}

fn parse_decimal<T: std::str::FromStr>(s: &str) -> Result<T, LinkError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LinkError::Malformed);
    }
    s.parse().map_err(|_| LinkError::Malformed)
}

// === Frames from the control plane ===

/// The longest `SNAPSHOT <len>` header, `AUTHED` or `KICK` line accepted, including the newline.
pub const MAX_FRAME_HEADER: usize = 64;

/// The longest line or header from the data plane (`APPLIED`, `REJECTED`, `AUTH`, `AUDIT`,
/// `DEVICES`), including the newline.
pub const MAX_ACK_LINE: usize = 128;

/// The longest rejection reason token.
pub const MAX_REASON_LEN: usize = 64;

/// The header line announcing a snapshot of `len` bytes, newline included.
pub fn snapshot_header(len: usize) -> String {
    format!("SNAPSHOT {len}\n")
}

/// The line answering the data plane's `AUTH <id>`, newline included.
pub fn authed_line(id: u64, verdict: PasswordVerdict) -> String {
    format!("AUTHED {id} {}\n", verdict.as_str())
}

/// The line telling the data plane to disconnect device `guid`, newline included. `guid` must be
/// canonical ([`valid_guid`]), or this is [`FrameError::Malformed`].
pub fn kick_line(guid: &str) -> Result<String, FrameError> {
    if !valid_guid(guid) {
        return Err(FrameError::Malformed);
    }
    Ok(format!("KICK {guid}\n"))
}

/// Whether `s` is a GUID in canonical form: 32 lower-case hexadecimal digits as 8-4-4-4-12.
pub fn valid_guid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

/// The control plane's answer to a password check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PasswordVerdict {
    /// The password is right and the account may log in.
    Allowed,
    /// Wrong password, or an account that cannot log in with one (unknown, disabled, service).
    Denied,
    /// The account or the source address is locked after too many failures.
    Throttled,
    /// Nobody could check it: the link is down, the answer was late, or the control plane is
    /// overloaded. Treat it as a refusal.
    Unavailable,
}

impl PasswordVerdict {
    /// Wire spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Denied => "denied",
            Self::Throttled => "throttled",
            Self::Unavailable => "unavailable",
        }
    }

    /// Parses the wire spelling.
    pub fn from_wire(s: &str) -> Option<Self> {
        Some(match s {
            "allowed" => Self::Allowed,
            "denied" => Self::Denied,
            "throttled" => Self::Throttled,
            "unavailable" => Self::Unavailable,
            _ => return None,
        })
    }
}

impl fmt::Display for PasswordVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A frame from the control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame {
    /// An encoded snapshot (not yet decoded or validated).
    Snapshot(Vec<u8>),
    /// The answer to the data plane's `AUTH` request `id`.
    Authed {
        /// The request's id.
        id: u64,
        /// The answer.
        verdict: PasswordVerdict,
    },
    /// Disconnect this device's CIRA tunnel if this data plane holds it: a canonical GUID
    /// ([`valid_guid`]).
    Kick(String),
}

/// Why a frame or message stream was refused. The decoders stay failed afterwards: the link is
/// closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// No newline within the line limit.
    #[error("frame header or line longer than the limit")]
    TooLong,
    /// Not the expected syntax (fields, digits, ASCII, an `AUTH` body's parts).
    #[error("malformed frame header, line or body")]
    Malformed,
    /// A frame kind or acknowledgement this build does not know.
    #[error("unknown frame kind")]
    Unknown,
    /// A body length over the limit for its kind.
    #[error("frame larger than the limit")]
    TooLarge,
}

/// Incremental decoder of the control plane's frames (sans-IO).
///
/// Feed it whatever the socket returned with [`FrameDecoder::decode`]; it takes only the bytes
/// of the current frame and leaves the rest in the input, so it never holds more than one
/// header line ([`MAX_FRAME_HEADER`]) or one body (at most the limit). The length is checked
/// against the limit before any of the body is buffered, and the body buffer grows with the
/// bytes that actually arrive, not with the announced length.
#[derive(Debug)]
pub struct FrameDecoder {
    limit: usize,
    state: FrameState,
}

#[derive(Debug)]
enum FrameState {
    Header(LineBuf),
    Body(Body),
    Failed(FrameError),
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// A decoder accepting snapshots up to [`MAX_SNAPSHOT`](crate::snapshot::MAX_SNAPSHOT).
    pub fn new() -> Self {
        Self::with_limit(crate::snapshot::MAX_SNAPSHOT)
    }

    /// A decoder with a lower body limit (capped at `MAX_SNAPSHOT`).
    pub fn with_limit(limit: usize) -> Self {
        Self {
            limit: limit.min(crate::snapshot::MAX_SNAPSHOT),
            state: FrameState::Header(LineBuf::new(MAX_FRAME_HEADER)),
        }
    }

    /// Consumes bytes from the front of `input` and returns a frame once one is complete.
    ///
    /// `Ok(None)`: all of `input` was taken and the frame is still incomplete. `Ok(Some(_))`:
    /// a frame, with `input` advanced past it (call again for the rest). After an error, every
    /// call returns that error.
    pub fn decode(&mut self, input: &mut &[u8]) -> Result<Option<Frame>, FrameError> {
        loop {
            match &mut self.state {
                FrameState::Failed(e) => return Err(*e),
                FrameState::Header(line) => {
                    let parsed = match line.take_line(input) {
                        Ok(None) => return Ok(None),
                        Ok(Some(l)) => parse_frame_header(l, self.limit),
                        Err(e) => Err(e),
                    };
                    match parsed {
                        Ok(FrameHeader::Snapshot(len)) => {
                            self.state = FrameState::Body(Body::new(len, INITIAL_BODY_CAPACITY));
                        }
                        Ok(FrameHeader::Authed { id, verdict }) => {
                            return Ok(Some(Frame::Authed { id, verdict }));
                        }
                        Ok(FrameHeader::Kick(guid)) => return Ok(Some(Frame::Kick(guid))),
                        Err(e) => {
                            self.state = FrameState::Failed(e);
                            return Err(e);
                        }
                    }
                }
                FrameState::Body(body) => {
                    if !body.fill(input) {
                        return Ok(None);
                    }
                    let bytes = std::mem::take(&mut body.buf);
                    self.state = FrameState::Header(LineBuf::new(MAX_FRAME_HEADER));
                    return Ok(Some(Frame::Snapshot(bytes)));
                }
            }
        }
    }

    /// Whether no partial frame is buffered (between frames).
    pub fn is_idle(&self) -> bool {
        match &self.state {
            FrameState::Header(line) => line.is_empty(),
            FrameState::Body(_) | FrameState::Failed(_) => false,
        }
    }

    /// Bytes of the current partial frame held.
    pub fn buffered(&self) -> usize {
        match &self.state {
            FrameState::Header(line) => line.len(),
            FrameState::Body(body) => body.buf.len(),
            FrameState::Failed(_) => 0,
        }
    }
}

const INITIAL_BODY_CAPACITY: usize = 64 * 1024;

enum FrameHeader {
    Snapshot(usize),
    Authed { id: u64, verdict: PasswordVerdict },
    Kick(String),
}

fn parse_frame_header(line: &[u8], limit: usize) -> Result<FrameHeader, FrameError> {
    let (kind, fields) = split_line(line)?;
    match (kind, fields) {
        ("SNAPSHOT", [Some(len), None, None]) => Ok(FrameHeader::Snapshot(parse_len(len, limit)?)),
        ("AUTHED", [Some(id), Some(verdict), None]) => Ok(FrameHeader::Authed {
            id: parse_decimal(id).map_err(|_| FrameError::Malformed)?,
            verdict: PasswordVerdict::from_wire(verdict).ok_or(FrameError::Malformed)?,
        }),
        ("KICK", [Some(guid), None, None]) if valid_guid(guid) => {
            Ok(FrameHeader::Kick(guid.to_owned()))
        }
        (kind, _) => Err(unknown_or_malformed(kind, &["SNAPSHOT", "AUTHED", "KICK"])),
    }
}

/// Splits a line into its kind and up to three more fields (`Some` in the last slot means
/// "three or more").
fn split_line(line: &[u8]) -> Result<(&str, [Option<&str>; 3]), FrameError> {
    let line = std::str::from_utf8(line).map_err(|_| FrameError::Malformed)?;
    let mut fields = line.split(' ');
    let kind = fields.next().unwrap_or_default();
    Ok((kind, [fields.next(), fields.next(), fields.next()]))
}

/// A known kind with the wrong fields is malformed; another upper-case word is a kind this
/// build does not know; anything else is not a line of this protocol at all.
fn unknown_or_malformed(kind: &str, known: &[&str]) -> FrameError {
    if known.contains(&kind) {
        FrameError::Malformed
    } else if !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_uppercase()) {
        FrameError::Unknown
    } else {
        FrameError::Malformed
    }
}

fn parse_len(s: &str, limit: usize) -> Result<usize, FrameError> {
    let len: u64 = parse_decimal(s).map_err(|_| FrameError::Malformed)?;
    match usize::try_from(len) {
        Ok(len) if len <= limit => Ok(len),
        _ => Err(FrameError::TooLarge),
    }
}

/// A body being received: at most `len` bytes, buffered as they arrive.
#[derive(Debug)]
struct Body {
    len: usize,
    buf: Vec<u8>,
}

impl Body {
    /// Capacity starts at `initial` (or `len` if smaller) and doubles as bytes arrive.
    fn new(len: usize, initial: usize) -> Self {
        Self {
            len,
            buf: Vec::with_capacity(len.min(initial)),
        }
    }

    /// Takes body bytes from the front of `input`; true once the body is complete.
    fn fill(&mut self, input: &mut &[u8]) -> bool {
        let want = self.len - self.buf.len();
        let take = want.min(input.len());
        if take > 0 {
            if self.buf.capacity() - self.buf.len() < take {
                // Double, but never past the announced length.
                let target = (self.buf.capacity() * 2)
                    .max(self.buf.len() + take)
                    .min(self.len);
                self.buf.reserve_exact(target - self.buf.len());
            }
            self.buf.extend_from_slice(&input[..take]);
            *input = &input[take..];
        }
        self.buf.len() == self.len
    }
}

// === Messages from the data plane ===

/// A rejection reason: `[a-z_]`, 1 to [`MAX_REASON_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reason(String);

impl Reason {
    /// Checks a reason token.
    pub fn new(s: &str) -> Option<Self> {
        valid_reason(s).then(|| Self(s.to_owned()))
    }

    /// The catch-all reason, for a token that is not valid.
    pub fn other() -> Self {
        Self("other".to_owned())
    }

    /// The token.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `s` is a valid rejection reason token: `[a-z_]`, 1 to [`MAX_REASON_LEN`] bytes.
pub fn valid_reason(s: &str) -> bool {
    (1..=MAX_REASON_LEN).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

/// The data plane's answer to a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    /// The snapshot was valid and is now enforced.
    Applied {
        /// Its generation.
        generation: u64,
    },
    /// The snapshot was refused; the data plane keeps its last good one.
    Rejected {
        /// Its generation (from its header; 0 if it had none).
        generation: u64,
        /// Why.
        reason: Reason,
    },
}

impl Ack {
    /// The line to send, newline included.
    pub fn encode(&self) -> String {
        match self {
            Self::Applied { generation } => format!("APPLIED {generation}\n"),
            Self::Rejected { generation, reason } => format!("REJECTED {generation} {reason}\n"),
        }
    }
}

/// The largest `AUTH` body: user name, password, peer address and two NULs.
pub const MAX_AUTH_BODY: usize = 2048;

/// A request to check a human account's password (`AUTH`).
///
/// Its `Debug` does not show the password, and dropping it overwrites the password (best
/// effort: copies the caller made are the caller's).
#[derive(Clone, PartialEq, Eq)]
pub struct AuthRequest {
    id: u64,
    username: String,
    password: Vec<u8>,
    peer: IpAddr,
}

impl AuthRequest {
    /// Checks the parts: the user name must be non-empty and without NUL, and the whole body
    /// at most [`MAX_AUTH_BODY`] bytes ([`FrameError::TooLarge`] otherwise).
    pub fn new(id: u64, username: &str, password: &[u8], peer: IpAddr) -> Result<Self, FrameError> {
        if username.is_empty() || username.contains('\0') {
            return Err(FrameError::Malformed);
        }
        // The longest address text is an IPv4-mapped IPv6 address, well under 64 bytes.
        if username.len() + password.len() + 2 + peer.to_string().len() > MAX_AUTH_BODY {
            return Err(FrameError::TooLarge);
        }
        Ok(Self {
            id,
            username: username.to_owned(),
            password: password.to_vec(),
            peer,
        })
    }

    /// The data plane's request id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The user name (non-empty, no NUL).
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The password as the client sent it (any bytes).
    pub fn password(&self) -> &[u8] {
        &self.password
    }

    /// The client's address.
    pub fn peer(&self) -> IpAddr {
        self.peer
    }

    /// Appends the frame (header and body) to `out`. The body holds the password: the caller
    /// should overwrite `out` once it is sent.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let peer = self.peer.to_string();
        let len = self.username.len() + self.password.len() + 2 + peer.len();
        out.extend_from_slice(format!("AUTH {} {len}\n", self.id).as_bytes());
        out.extend_from_slice(self.username.as_bytes());
        out.push(0);
        out.extend_from_slice(&self.password);
        out.push(0);
        out.extend_from_slice(peer.as_bytes());
    }

    fn parse(id: u64, body: &[u8]) -> Result<Self, FrameError> {
        let first = body.iter().position(|&b| b == 0);
        let last = body.iter().rposition(|&b| b == 0);
        let (Some(first), Some(last)) = (first, last) else {
            return Err(FrameError::Malformed);
        };
        if first == last {
            return Err(FrameError::Malformed);
        }
        let username = body.get(..first).ok_or(FrameError::Malformed)?;
        let password = body.get(first + 1..last).ok_or(FrameError::Malformed)?;
        let peer = body.get(last + 1..).ok_or(FrameError::Malformed)?;
        let username = std::str::from_utf8(username).map_err(|_| FrameError::Malformed)?;
        let peer = std::str::from_utf8(peer).map_err(|_| FrameError::Malformed)?;
        // `IpAddr`'s parser takes no sign, space or zone, only the two text forms.
        let peer: IpAddr = peer.parse().map_err(|_| FrameError::Malformed)?;
        Self::new(id, username, password, peer)
    }
}

impl fmt::Debug for AuthRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthRequest")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("peer", &self.peer)
            .finish()
    }
}

impl Drop for AuthRequest {
    fn drop(&mut self) {
        self.password.fill(0);
        std::hint::black_box(&mut self.password);
    }
}

/// A message from the data plane.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Uplink {
    /// `APPLIED` or `REJECTED`.
    Ack(Ack),
    /// `AUTH`: check a password, answer with [`authed_line`].
    Auth(AuthRequest),
    /// `AUDIT`: the JSON body, at most [`MAX_AUDIT_BODY`] bytes, not yet parsed.
    Audit(Vec<u8>),
    /// `DEVICES`: the JSON body, at most [`MAX_DEVICES_BODY`] bytes, not yet parsed.
    Devices(Vec<u8>),
}

/// Incremental decoder of the data plane's messages (sans-IO), like [`FrameDecoder`]: it
/// takes one line or one body at a time from the input and holds at most [`MAX_ACK_LINE`]
/// bytes of a line, [`MAX_AUTH_BODY`] of an `AUTH` body, [`MAX_AUDIT_BODY`] of an `AUDIT`
/// body, or [`MAX_DEVICES_BODY`] of a `DEVICES` body (grown as its bytes arrive).
#[derive(Debug)]
pub struct UplinkDecoder {
    state: UplinkState,
}

#[derive(Debug)]
enum UplinkState {
    Line(LineBuf),
    Auth { id: u64, body: Body },
    Audit(Body),
    Devices(Body),
    Failed(FrameError),
}

impl Default for UplinkDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl UplinkDecoder {
    /// A fresh decoder.
    pub fn new() -> Self {
        Self {
            state: UplinkState::Line(LineBuf::new(MAX_ACK_LINE)),
        }
    }

    /// Consumes bytes from the front of `input`; returns a message once one is complete (see
    /// [`FrameDecoder::decode`] for the contract).
    pub fn decode(&mut self, input: &mut &[u8]) -> Result<Option<Uplink>, FrameError> {
        let result = self.step(input);
        if let Err(e) = result {
            self.state = UplinkState::Failed(e);
        }
        result
    }

    fn step(&mut self, input: &mut &[u8]) -> Result<Option<Uplink>, FrameError> {
        loop {
            match &mut self.state {
                UplinkState::Failed(e) => return Err(*e),
                UplinkState::Line(line) => {
                    let Some(l) = line.take_line(input)? else {
                        return Ok(None);
                    };
                    match parse_uplink_line(l)? {
                        UplinkLine::Ack(ack) => return Ok(Some(Uplink::Ack(ack))),
                        UplinkLine::Auth { id, len } => {
                            // Allocated whole (at most MAX_AUTH_BODY): growing it would leave
                            // copies of the password in freed memory.
                            self.state = UplinkState::Auth {
                                id,
                                body: Body::new(len, len),
                            };
                        }
                        UplinkLine::Audit { len } => {
                            self.state = UplinkState::Audit(Body::new(len, len));
                        }
                        UplinkLine::Devices { len } => {
                            self.state =
                                UplinkState::Devices(Body::new(len, INITIAL_BODY_CAPACITY));
                        }
                    }
                }
                UplinkState::Auth { id, body } => {
                    if !body.fill(input) {
                        return Ok(None);
                    }
                    let request = AuthRequest::parse(*id, &body.buf);
                    body.buf.fill(0);
                    self.state = UplinkState::Line(LineBuf::new(MAX_ACK_LINE));
                    return request.map(|r| Some(Uplink::Auth(r)));
                }
                UplinkState::Audit(body) => {
                    if !body.fill(input) {
                        return Ok(None);
                    }
                    let bytes = std::mem::take(&mut body.buf);
                    self.state = UplinkState::Line(LineBuf::new(MAX_ACK_LINE));
                    return Ok(Some(Uplink::Audit(bytes)));
                }
                UplinkState::Devices(body) => {
                    if !body.fill(input) {
                        return Ok(None);
                    }
                    let bytes = std::mem::take(&mut body.buf);
                    self.state = UplinkState::Line(LineBuf::new(MAX_ACK_LINE));
                    return Ok(Some(Uplink::Devices(bytes)));
                }
            }
        }
    }

    /// Whether no partial message is buffered (between messages).
    pub fn is_idle(&self) -> bool {
        match &self.state {
            UplinkState::Line(line) => line.is_empty(),
            _ => false,
        }
    }

    /// Bytes of the current partial message held.
    pub fn buffered(&self) -> usize {
        match &self.state {
            UplinkState::Line(line) => line.len(),
            UplinkState::Auth { body, .. }
            | UplinkState::Audit(body)
            | UplinkState::Devices(body) => body.buf.len(),
            UplinkState::Failed(_) => 0,
        }
    }
}

enum UplinkLine {
    Ack(Ack),
    Auth { id: u64, len: usize },
    Audit { len: usize },
    Devices { len: usize },
}

fn parse_uplink_line(line: &[u8]) -> Result<UplinkLine, FrameError> {
    let malformed = |_| FrameError::Malformed;
    let (kind, fields) = split_line(line)?;
    Ok(match (kind, fields) {
        ("APPLIED", [Some(generation), None, None]) => UplinkLine::Ack(Ack::Applied {
            generation: parse_decimal(generation).map_err(malformed)?,
        }),
        ("REJECTED", [Some(generation), Some(reason), None]) => UplinkLine::Ack(Ack::Rejected {
            generation: parse_decimal(generation).map_err(malformed)?,
            reason: Reason::new(reason).ok_or(FrameError::Malformed)?,
        }),
        ("AUTH", [Some(id), Some(len), None]) => UplinkLine::Auth {
            id: parse_decimal(id).map_err(malformed)?,
            len: parse_len(len, MAX_AUTH_BODY)?,
        },
        ("AUDIT", [Some(len), None, None]) => UplinkLine::Audit {
            len: parse_len(len, MAX_AUDIT_BODY)?,
        },
        ("DEVICES", [Some(len), None, None]) => UplinkLine::Devices {
            len: parse_len(len, MAX_DEVICES_BODY)?,
        },
        (kind, _) => {
            return Err(unknown_or_malformed(
                kind,
                &["APPLIED", "REJECTED", "AUTH", "AUDIT", "DEVICES"],
            ));
        }
    })
}

// === Audit records ===

/// The largest `AUDIT` body.
pub const MAX_AUDIT_BODY: usize = 64 * 1024;

/// The longest audit action, in bytes.
pub const MAX_AUDIT_ACTION: usize = 64;

/// The longest audit outcome token, in bytes.
pub const MAX_AUDIT_OUTCOME: usize = 32;

/// The longest audit actor or target, in bytes.
pub const MAX_AUDIT_FIELD: usize = 256;

/// The longest audit detail, in bytes.
pub const MAX_AUDIT_DETAIL: usize = 1024;

/// The namespaces a data plane may write audit actions in. Everything else (`auth.`, `user.`,
/// `apikey.`, ...) belongs to the control plane.
pub const AUDIT_ACTION_PREFIXES: [&str; 4] = ["mqtt.", "https.", "cira.", "dataplane."];

/// One audit record from the data plane: a login or ACL denial, say. Never put a password,
/// key or token in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditRecord {
    /// What, dotted, in a data-plane namespace ([`AUDIT_ACTION_PREFIXES`]): `mqtt.login`,
    /// `mqtt.acl`. `[a-z0-9_.]`, at most [`MAX_AUDIT_ACTION`] bytes.
    pub action: String,
    /// Who acted, if known (an account name); `anonymous` for a failed login, whose attempted
    /// name goes in `target`. Empty is sent as `anonymous`.
    pub actor: String,
    /// On what (attempted account, topic); may be empty.
    pub target: String,
    /// `[a-z_]`, at most [`MAX_AUDIT_OUTCOME`] bytes: `success`, `failure`, `denied`, ...
    pub outcome: String,
    /// The client's address.
    pub source: Option<IpAddr>,
    /// A short non-secret reason; may be empty.
    pub detail: String,
}

/// Why an audit record is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditRecordError {
    /// The action is not `[a-z0-9_.]{1,64}` in a data-plane namespace.
    #[error("audit action outside the data plane's namespaces")]
    Action,
    /// The outcome is not `[a-z_]{1,32}`.
    #[error("malformed audit outcome")]
    Outcome,
    /// The actor is empty.
    #[error("audit actor missing")]
    Actor,
    /// The actor, target or detail is over its limit.
    #[error("audit field longer than the limit")]
    TooLong,
}

/// The rules every audit record on the link follows; the control plane applies the same.
pub fn check_audit_record(r: &AuditRecord) -> Result<(), AuditRecordError> {
    let action_ok = (1..=MAX_AUDIT_ACTION).contains(&r.action.len())
        && r.action
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
        && AUDIT_ACTION_PREFIXES
            .iter()
            .any(|p| r.action.len() > p.len() && r.action.starts_with(p));
    if !action_ok {
        return Err(AuditRecordError::Action);
    }
    if !(1..=MAX_AUDIT_OUTCOME).contains(&r.outcome.len())
        || !r
            .outcome
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_')
    {
        return Err(AuditRecordError::Outcome);
    }
    if r.actor.is_empty() {
        return Err(AuditRecordError::Actor);
    }
    if r.actor.len() > MAX_AUDIT_FIELD
        || r.target.len() > MAX_AUDIT_FIELD
        || r.detail.len() > MAX_AUDIT_DETAIL
    {
        return Err(AuditRecordError::TooLong);
    }
    Ok(())
}

/// The header line announcing an `AUDIT` body of `len` bytes, newline included.
pub fn audit_header(len: usize) -> String {
    format!("AUDIT {len}\n")
}

/// Why [`AuditBatch::push`] did not take a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditPushError {
    /// The record breaks [`check_audit_record`] (after truncation).
    #[error("{0}")]
    Invalid(AuditRecordError),
    /// It would take the body over [`MAX_AUDIT_BODY`]: send this batch and start another. A
    /// valid record always fits in an empty batch.
    #[error("audit batch full")]
    Full,
}

/// An `AUDIT` frame being built.
#[derive(Debug, Clone)]
pub struct AuditBatch {
    /// `{"dropped":N,"records":[` and the records so far, without the closing `]}`.
    body: Vec<u8>,
    records: usize,
    dropped: u64,
}

impl AuditBatch {
    /// An empty batch reporting `dropped` records lost since the previous one.
    pub fn new(dropped: u64) -> Self {
        Self {
            body: format!("{{\"dropped\":{dropped},\"records\":[").into_bytes(),
            records: 0,
            dropped,
        }
    }

    /// Adds a record: the actor, target and detail are cut to their limits (at a character
    /// boundary) and an empty actor becomes `anonymous`, then the record is checked.
    pub fn push(&mut self, record: &AuditRecord) -> Result<(), AuditPushError> {
        let actor = match truncate(&record.actor, MAX_AUDIT_FIELD) {
            "" => "anonymous",
            a => a,
        };
        let r = AuditRecord {
            action: record.action.clone(),
            actor: actor.to_owned(),
            target: truncate(&record.target, MAX_AUDIT_FIELD).to_owned(),
            outcome: record.outcome.clone(),
            source: record.source,
            detail: truncate(&record.detail, MAX_AUDIT_DETAIL).to_owned(),
        };
        check_audit_record(&r).map_err(AuditPushError::Invalid)?;
        let mut json = Vec::with_capacity(128);
        if self.records > 0 {
            json.push(b',');
        }
        json.extend_from_slice(b"{\"action\":");
        json_str(&mut json, &r.action);
        json.extend_from_slice(b",\"actor\":");
        json_str(&mut json, &r.actor);
        json.extend_from_slice(b",\"target\":");
        json_str(&mut json, &r.target);
        json.extend_from_slice(b",\"outcome\":");
        json_str(&mut json, &r.outcome);
        json.extend_from_slice(b",\"source\":");
        match r.source {
            Some(ip) => json_str(&mut json, &ip.to_string()),
            None => json.extend_from_slice(b"null"),
        }
        json.extend_from_slice(b",\"detail\":");
        json_str(&mut json, &r.detail);
        json.push(b'}');
        // Two bytes for the closing `]}`.
        if self.body.len() + json.len() + 2 > MAX_AUDIT_BODY {
            return Err(AuditPushError::Full);
        }
        self.body.extend_from_slice(&json);
        self.records += 1;
        Ok(())
    }

    /// Records in the batch.
    pub fn len(&self) -> usize {
        self.records
    }

    /// Whether it holds no record.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// The dropped count it reports.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The whole frame: header and JSON body.
    pub fn encode(&self) -> Vec<u8> {
        json_list_frame(audit_header, &self.body)
    }
}

// === Device reports ===

/// The largest `DEVICES` body: a full list of about 72 000 devices (some 116 bytes each).
pub const MAX_DEVICES_BODY: usize = 8 * 1024 * 1024;

/// The longest node name, in bytes (a host name's label limit).
pub const MAX_NODE_LEN: usize = 64;

/// The latest time a device event may carry, in ms since the epoch (the store keeps `i64`).
pub const MAX_DEVICE_MS: u64 = i64::MAX as u64;

/// Whether `s` is a valid node name: 1 to [`MAX_NODE_LEN`] bytes of `[A-Za-z0-9._-]` (a host
/// name, say).
pub fn valid_node(s: &str) -> bool {
    (1..=MAX_NODE_LEN).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// One device's connect, disconnect or presence in a full list (`DEVICES`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceEvent {
    /// The device, canonical ([`valid_guid`]).
    pub guid: String,
    /// Connected (a connect, or listed in a full list) or disconnected.
    pub connected: bool,
    /// When it connected or disconnected, ms since the epoch.
    pub at_ms: u64,
    /// When it was last heard from, ms since the epoch.
    pub last_seen_ms: u64,
}

/// Why a device event is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceEventError {
    /// The GUID is not canonical (lower-case 8-4-4-4-12).
    #[error("device GUID not in canonical form")]
    Guid,
    /// A time past [`MAX_DEVICE_MS`].
    #[error("device event time out of range")]
    Time,
}

/// The rules every device event on the link follows; the control plane applies the same.
pub fn check_device_event(e: &DeviceEvent) -> Result<(), DeviceEventError> {
    if !valid_guid(&e.guid) {
        return Err(DeviceEventError::Guid);
    }
    if e.at_ms > MAX_DEVICE_MS || e.last_seen_ms > MAX_DEVICE_MS {
        return Err(DeviceEventError::Time);
    }
    Ok(())
}

/// The header line announcing a `DEVICES` body of `len` bytes, newline included.
pub fn devices_header(len: usize) -> String {
    format!("DEVICES {len}\n")
}

/// Why [`DeviceBatch::push`] did not take an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DevicePushError {
    /// The event breaks [`check_device_event`].
    #[error("{0}")]
    Invalid(DeviceEventError),
    /// It would take the body over [`MAX_DEVICES_BODY`]: send this batch and start another. A
    /// valid event always fits in an empty batch.
    #[error("device batch full")]
    Full,
}

/// A `DEVICES` frame being built.
#[derive(Debug, Clone)]
pub struct DeviceBatch {
    /// `{"node":..,"full":..,"events":[` and the events so far, without the closing `]}`.
    body: Vec<u8>,
    events: usize,
    full: bool,
    limit: usize,
}

impl DeviceBatch {
    /// An empty batch from `node` ([`valid_node`], or `None`); `full`: it starts a full list.
    pub fn new(node: &str, full: bool) -> Option<Self> {
        Self::with_limit(node, full, MAX_DEVICES_BODY)
    }

    /// [`DeviceBatch::new`] with a smaller body limit (capped at [`MAX_DEVICES_BODY`]), for
    /// tests.
    pub fn with_limit(node: &str, full: bool, limit: usize) -> Option<Self> {
        if !valid_node(node) {
            return None;
        }
        let mut body = Vec::with_capacity(128);
        body.extend_from_slice(b"{\"node\":");
        json_str(&mut body, node);
        body.extend_from_slice(if full {
            b",\"full\":true,\"events\":["
        } else {
            b",\"full\":false,\"events\":["
        });
        Some(Self {
            body,
            events: 0,
            full,
            limit: limit.min(MAX_DEVICES_BODY),
        })
    }

    /// Adds an event, checked.
    pub fn push(&mut self, e: &DeviceEvent) -> Result<(), DevicePushError> {
        check_device_event(e).map_err(DevicePushError::Invalid)?;
        let json = format!(
            "{}{{\"guid\":\"{}\",\"connected\":{},\"at_ms\":{},\"last_seen_ms\":{}}}",
            if self.events > 0 { "," } else { "" },
            e.guid,
            e.connected,
            e.at_ms,
            e.last_seen_ms
        );
        // Two bytes for the closing `]}`.
        if self.body.len() + json.len() + 2 > self.limit {
            return Err(DevicePushError::Full);
        }
        self.body.extend_from_slice(json.as_bytes());
        self.events += 1;
        Ok(())
    }

    /// Events in the batch.
    pub fn len(&self) -> usize {
        self.events
    }

    /// Whether it holds no event.
    pub fn is_empty(&self) -> bool {
        self.events == 0
    }

    /// Whether it starts a full list.
    pub fn is_full_list(&self) -> bool {
        self.full
    }

    /// The whole frame: header and JSON body.
    pub fn encode(&self) -> Vec<u8> {
        json_list_frame(devices_header, &self.body)
    }
}

/// A frame whose body is `body` (an open JSON object ending in an open list) closed with `]}`,
/// behind the header `header` makes for that length.
fn json_list_frame(header: fn(usize) -> String, body: &[u8]) -> Vec<u8> {
    let len = body.len() + 2;
    let mut out = header(len).into_bytes();
    out.reserve(len);
    out.extend_from_slice(body);
    out.extend_from_slice(b"]}");
    out
}

/// The longest prefix of `s` of at most `max` bytes that ends at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// Appends `s` as a JSON string (RFC 8259 section 7).
fn json_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..0x20 => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// A line being assembled, up to `max` bytes including the newline.
#[derive(Debug)]
struct LineBuf {
    buf: Vec<u8>,
    max: usize,
    /// A complete line was returned and is still in `buf`; cleared on the next call.
    done: bool,
}

impl LineBuf {
    fn new(max: usize) -> Self {
        Self {
            buf: Vec::new(),
            max,
            done: false,
        }
    }

    fn is_empty(&self) -> bool {
        self.done || self.buf.is_empty()
    }

    fn len(&self) -> usize {
        if self.done { 0 } else { self.buf.len() }
    }

    /// Takes bytes up to and including a newline from `input`; returns the line without it.
    fn take_line(&mut self, input: &mut &[u8]) -> Result<Option<&[u8]>, FrameError> {
        if self.done {
            self.buf.clear();
            self.done = false;
        }
        // Room for the rest of the line, newline included.
        let room = self.max - self.buf.len();
        let window = &input[..input.len().min(room)];
        match window.iter().position(|&b| b == b'\n') {
            Some(end) => {
                self.buf.extend_from_slice(&window[..end]);
                *input = &input[end + 1..];
                self.done = true;
                Ok(Some(&self.buf))
            }
            None if input.len() >= room => Err(FrameError::TooLong),
            None => {
                self.buf.extend_from_slice(input);
                *input = &[];
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_partial() {
        let hello = Hello {
            role: Role::ControlPlane,
            generation: 42,
        };
        let wire = hello.encode();
        assert_eq!(wire, "RAMPART-LINK 3 controlplane 42\n");
        assert_eq!(parse_hello(wire.as_bytes()), Ok(Some((hello, wire.len()))));
        assert_eq!(parse_hello(&wire.as_bytes()[..10]), Ok(None));
        let mut two = wire.clone().into_bytes();
        two.extend_from_slice(b"extra");
        assert_eq!(parse_hello(&two).unwrap().unwrap().1, wire.len());
    }

    #[test]
    fn read_hello_from_a_stream_in_pieces() {
        struct Trickle<'a>(&'a [u8]);
        impl io::Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                // One byte per call, the worst split a stream can make.
                let n = self.0.len().min(1).min(out.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let wire = b"RAMPART-LINK 3 dataplane 7\n";
        let (hello, rest) = read_hello(&mut Trickle(wire), Role::DataPlane).unwrap();
        assert!(rest.is_empty());
        assert_eq!(hello.generation, 7);
        let err = read_hello(&mut Trickle(wire), Role::ControlPlane).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let err = read_hello(&mut Trickle(&wire[..10]), Role::DataPlane).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let err = read_hello(&mut Trickle(&[b'x'; 300]), Role::DataPlane).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn rejects_hostile_input() {
        assert_eq!(parse_hello(&[b'A'; 200]), Err(LinkError::TooLong));
        for old in [
            &b"RAMPART-LINK 1 dataplane 0\n"[..],
            b"RAMPART-LINK 2 dataplane 0\n",
        ] {
            assert_eq!(parse_hello(old), Err(LinkError::Version));
        }
        assert_eq!(
            parse_hello(b"RAMPART-LINK 3 browser 0\n"),
            Err(LinkError::Role)
        );
        for bad in [
            &b"HELLO 1 dataplane 0\n"[..],
            b"RAMPART-LINK 3 dataplane\n",
            b"RAMPART-LINK 3 dataplane 0 0\n",
            b"RAMPART-LINK 3 dataplane -1\n",
            b"RAMPART-LINK 3 dataplane 99999999999999999999999\n",
            b"RAMPART-LINK +3 dataplane 0\n",
            b"RAMPART-LINK 3 dataplane \xff\n",
            b"\n",
        ] {
            assert_eq!(parse_hello(bad), Err(LinkError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn hello_rest_keeps_what_follows() {
        let mut wire = b"RAMPART-LINK 3 controlplane 3\n".to_vec();
        wire.extend_from_slice(b"SNAPSHOT 2\nab");
        let (hello, rest) = read_hello(&mut &wire[..], Role::ControlPlane).unwrap();
        assert_eq!(hello.generation, 3);
        assert_eq!(rest, b"SNAPSHOT 2\nab");
    }

    fn frames(dec: &mut FrameDecoder, mut input: &[u8]) -> Result<Vec<Frame>, FrameError> {
        let mut out = Vec::new();
        while !input.is_empty() {
            match dec.decode(&mut input)? {
                Some(f) => out.push(f),
                None => assert!(input.is_empty()),
            }
        }
        Ok(out)
    }

    fn wire_of(bodies: &[&[u8]]) -> Vec<u8> {
        let mut wire = Vec::new();
        for b in bodies {
            wire.extend_from_slice(snapshot_header(b.len()).as_bytes());
            wire.extend_from_slice(b);
        }
        wire
    }

    #[test]
    fn frames_split_and_coalesced() {
        let bodies: [&[u8]; 4] = [b"hello", b"", b"SNAPSHOT 3\nxyz", &[0u8; 1000]];
        let wire = wire_of(&bodies);
        let expect: Vec<Frame> = bodies.iter().map(|b| Frame::Snapshot(b.to_vec())).collect();
        // All at once.
        assert_eq!(frames(&mut FrameDecoder::new(), &wire).unwrap(), expect);
        // Every chunk size, including one byte at a time.
        for chunk in [1, 2, 3, 7, 13, 64, 999, 1001] {
            let mut dec = FrameDecoder::new();
            let mut got = Vec::new();
            for piece in wire.chunks(chunk) {
                got.extend(frames(&mut dec, piece).unwrap());
                assert!(dec.buffered() <= MAX_FRAME_HEADER.max(1000));
            }
            assert_eq!(got, expect, "chunk {chunk}");
            assert!(dec.is_idle());
        }
        // The decoder leaves the next frame's bytes in the input.
        let mut dec = FrameDecoder::new();
        let mut input = &wire[..];
        assert_eq!(
            dec.decode(&mut input).unwrap(),
            Some(Frame::Snapshot(b"hello".to_vec()))
        );
        assert_eq!(input, &wire[b"SNAPSHOT 5\nhello".len()..]);
    }

    #[test]
    fn frames_hostile_input() {
        let cases: [(&[u8], FrameError); 10] = [
            (b"SNAPSHOT 11\nhello world", FrameError::TooLarge),
            (b"SNAPSHOT 999999999999999999999\n", FrameError::Malformed),
            (b"SNAPSHOT 18446744073709551615\n", FrameError::TooLarge),
            (b"SNAPSHOT -1\n", FrameError::Malformed),
            (b"SNAPSHOT +1\n", FrameError::Malformed),
            (b"SNAPSHOT\n", FrameError::Malformed),
            (b"SNAPSHOT  1\n", FrameError::Malformed),
            (b"POLICY 1\n", FrameError::Unknown),
            (b"snapshot 1\n", FrameError::Malformed),
            (b"SNAPSHOT 1\xff\n", FrameError::Malformed),
        ];
        for (wire, err) in cases {
            let mut dec = FrameDecoder::with_limit(10);
            assert_eq!(
                frames(&mut dec, wire),
                Err(err),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
            // Failed for good.
            assert_eq!(dec.decode(&mut &b"SNAPSHOT 1\nx"[..]), Err(err));
        }
        // A header without a newline is refused at the limit, not buffered on.
        let mut dec = FrameDecoder::new();
        let junk = [b'7'; 100];
        assert_eq!(frames(&mut dec, &junk), Err(FrameError::TooLong));
        let mut dec = FrameDecoder::new();
        let mut input = &junk[..MAX_FRAME_HEADER - 1];
        assert_eq!(dec.decode(&mut input), Ok(None));
        assert_eq!(dec.buffered(), MAX_FRAME_HEADER - 1);
        assert_eq!(dec.decode(&mut &b"7"[..]), Err(FrameError::TooLong));
        // The limit is MAX_SNAPSHOT at most, and checked before the body arrives.
        let mut dec = FrameDecoder::with_limit(usize::MAX);
        let over = snapshot_header(crate::snapshot::MAX_SNAPSHOT + 1);
        assert_eq!(frames(&mut dec, over.as_bytes()), Err(FrameError::TooLarge));
        let mut dec = FrameDecoder::new();
        let max = snapshot_header(crate::snapshot::MAX_SNAPSHOT);
        assert_eq!(frames(&mut dec, max.as_bytes()), Ok(vec![]));
        // A huge announced length does not allocate it up front.
        assert_eq!(dec.buffered(), 0);
        let mut input = &[1u8; 10][..];
        assert_eq!(dec.decode(&mut input), Ok(None));
        assert_eq!(dec.buffered(), 10);
    }

    #[test]
    fn acks() {
        let applied = Ack::Applied { generation: 9 };
        let rejected = Ack::Rejected {
            generation: 10,
            reason: Reason::new("checksum_mismatch").unwrap(),
        };
        let mut wire = applied.encode().into_bytes();
        wire.extend_from_slice(rejected.encode().as_bytes());
        assert_eq!(
            String::from_utf8_lossy(&wire),
            "APPLIED 9\nREJECTED 10 checksum_mismatch\n"
        );
        for chunk in [1, 5, wire.len()] {
            let mut dec = UplinkDecoder::new();
            let mut got = Vec::new();
            for piece in wire.chunks(chunk) {
                let mut input = piece;
                while let Some(msg) = dec.decode(&mut input).unwrap() {
                    got.push(msg);
                }
                assert!(input.is_empty());
            }
            assert_eq!(
                got,
                vec![Uplink::Ack(applied.clone()), Uplink::Ack(rejected.clone())]
            );
        }
        for (bad, err) in [
            (&b"APPLIED\n"[..], FrameError::Malformed),
            (b"APPLIED x\n", FrameError::Malformed),
            (b"APPLIED 1 2\n", FrameError::Malformed),
            (b"REJECTED 1\n", FrameError::Malformed),
            (b"REJECTED 1 Bad\n", FrameError::Malformed),
            (b"REJECTED 1 a b\n", FrameError::Malformed),
            (b"HELLO 1\n", FrameError::Unknown),
            (b"\n", FrameError::Malformed),
        ] {
            let mut dec = UplinkDecoder::new();
            assert_eq!(dec.decode(&mut &bad[..]), Err(err), "{bad:?}");
            assert_eq!(dec.decode(&mut &b"APPLIED 1\n"[..]), Err(err));
        }
        let long = format!("REJECTED 1 {}\n", "a".repeat(65));
        assert_eq!(
            UplinkDecoder::new().decode(&mut long.as_bytes()),
            Err(FrameError::Malformed)
        );
        let endless = [b'A'; 500];
        assert_eq!(
            UplinkDecoder::new().decode(&mut &endless[..]),
            Err(FrameError::TooLong)
        );
        assert!(valid_reason("invalid_archive"));
        assert!(valid_reason(&"a".repeat(64)));
        for bad in ["", "A", "a-b", "a b", "é"] {
            assert!(!valid_reason(bad), "{bad:?}");
            assert!(Reason::new(bad).is_none());
        }
        assert_eq!(Reason::other().as_str(), "other");
    }

    fn uplinks(dec: &mut UplinkDecoder, mut input: &[u8]) -> Result<Vec<Uplink>, FrameError> {
        let mut out = Vec::new();
        while !input.is_empty() {
            match dec.decode(&mut input)? {
                Some(m) => out.push(m),
                None => assert!(input.is_empty()),
            }
        }
        Ok(out)
    }

    #[test]
    fn authed_lines_between_snapshot_frames() {
        let mut wire = wire_of(&[b"hello"]);
        wire.extend_from_slice(authed_line(1, PasswordVerdict::Allowed).as_bytes());
        wire.extend_from_slice(authed_line(u64::MAX, PasswordVerdict::Unavailable).as_bytes());
        wire.extend_from_slice(&wire_of(&[b"", b"AUTHED 9 denied\n"]));
        wire.extend_from_slice(authed_line(7, PasswordVerdict::Throttled).as_bytes());
        wire.extend_from_slice(authed_line(2, PasswordVerdict::Denied).as_bytes());
        let expect = vec![
            Frame::Snapshot(b"hello".to_vec()),
            Frame::Authed {
                id: 1,
                verdict: PasswordVerdict::Allowed,
            },
            Frame::Authed {
                id: u64::MAX,
                verdict: PasswordVerdict::Unavailable,
            },
            Frame::Snapshot(vec![]),
            // An AUTHED line inside a snapshot body is body, not a frame.
            Frame::Snapshot(b"AUTHED 9 denied\n".to_vec()),
            Frame::Authed {
                id: 7,
                verdict: PasswordVerdict::Throttled,
            },
            Frame::Authed {
                id: 2,
                verdict: PasswordVerdict::Denied,
            },
        ];
        for chunk in [1, 2, 3, 5, 8, 17, wire.len()] {
            let mut dec = FrameDecoder::new();
            let mut got = Vec::new();
            for piece in wire.chunks(chunk) {
                got.extend(frames(&mut dec, piece).unwrap());
            }
            assert_eq!(got, expect, "chunk {chunk}");
            assert!(dec.is_idle());
        }
        let longest = authed_line(u64::MAX, PasswordVerdict::Unavailable);
        assert!(longest.len() <= MAX_FRAME_HEADER, "{longest:?}");
        for v in [
            PasswordVerdict::Allowed,
            PasswordVerdict::Denied,
            PasswordVerdict::Throttled,
            PasswordVerdict::Unavailable,
        ] {
            assert_eq!(PasswordVerdict::from_wire(v.as_str()), Some(v));
            assert_eq!(v.to_string(), v.as_str());
        }
    }

    #[test]
    fn authed_hostile_input() {
        for bad in [
            &b"AUTHED\n"[..],
            b"AUTHED 1\n",
            b"AUTHED 1 maybe\n",
            b"AUTHED 1 Allowed\n",
            b"AUTHED 1 allowed extra\n",
            b"AUTHED 1  allowed\n",
            b"AUTHED x allowed\n",
            b"AUTHED -1 denied\n",
            b"AUTHED +1 denied\n",
            b"AUTHED 18446744073709551616 denied\n",
            b"AUTHED 1 denied\r\n",
            b"authed 1 denied\n",
        ] {
            let mut dec = FrameDecoder::new();
            assert_eq!(
                frames(&mut dec, bad),
                Err(FrameError::Malformed),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
            assert_eq!(
                dec.decode(&mut &b"AUTHED 1 denied\n"[..]),
                Err(FrameError::Malformed)
            );
        }
        assert_eq!(
            frames(&mut FrameDecoder::new(), b"AUTH 1 denied\n"),
            Err(FrameError::Unknown)
        );
        let long = format!("AUTHED {} denied\n", "1".repeat(MAX_FRAME_HEADER));
        assert_eq!(
            frames(&mut FrameDecoder::new(), long.as_bytes()),
            Err(FrameError::TooLong)
        );
    }

    fn auth_wire(req: &AuthRequest) -> Vec<u8> {
        let mut wire = Vec::new();
        req.encode_into(&mut wire);
        wire
    }

    #[test]
    fn auth_requests_round_trip() {
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let requests = [
            AuthRequest::new(1, "alice", b"correct horse", v4).unwrap(),
            // NULs and non-UTF-8 bytes in the password; the body is split at its first and
            // last NUL.
            AuthRequest::new(2, "bob", b"\0p\0w\xff\0", v6).unwrap(),
            AuthRequest::new(u64::MAX, "\u{e9}l\u{e8}ve", b"", v4).unwrap(),
        ];
        let wire = auth_wire(&requests[0]);
        assert_eq!(wire, b"AUTH 1 29\nalice\0correct horse\x00192.0.2.7");
        let mut wire = Vec::new();
        let mut expect = Vec::new();
        for (i, r) in requests.iter().enumerate() {
            r.encode_into(&mut wire);
            expect.push(Uplink::Auth(r.clone()));
            // Interleaved with acknowledgements.
            let ack = Ack::Applied {
                generation: i as u64,
            };
            wire.extend_from_slice(ack.encode().as_bytes());
            expect.push(Uplink::Ack(ack));
        }
        for chunk in [1, 2, 3, 7, 64, wire.len()] {
            let mut dec = UplinkDecoder::new();
            let mut got = Vec::new();
            for piece in wire.chunks(chunk) {
                got.extend(uplinks(&mut dec, piece).unwrap());
                assert!(dec.buffered() <= MAX_AUTH_BODY);
            }
            assert_eq!(got, expect, "chunk {chunk}");
            assert!(dec.is_idle());
        }
        let Uplink::Auth(r) = &expect[2] else {
            unreachable!()
        };
        assert_eq!(r.id(), 2);
        assert_eq!(r.username(), "bob");
        assert_eq!(r.password(), b"\0p\0w\xff\0");
        assert_eq!(r.peer(), v6);
        // Debug never shows the password.
        let shown = format!("{:?}", requests[0]);
        assert!(!shown.contains("horse"), "{shown}");
        assert!(shown.contains("alice"), "{shown}");
    }

    #[test]
    fn auth_hostile_input() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        // Refused on the way out.
        assert_eq!(
            AuthRequest::new(1, "", b"pw", ip),
            Err(FrameError::Malformed)
        );
        assert_eq!(
            AuthRequest::new(1, "a\0b", b"pw", ip),
            Err(FrameError::Malformed)
        );
        let big = vec![b'x'; MAX_AUTH_BODY];
        assert_eq!(
            AuthRequest::new(1, "alice", &big, ip),
            Err(FrameError::TooLarge)
        );
        let fits = vec![b'x'; MAX_AUTH_BODY - "alice".len() - 2 - "10.0.0.1".len()];
        let max = AuthRequest::new(1, "alice", &fits, ip).unwrap();
        let wire = auth_wire(&max);
        assert_eq!(
            uplinks(&mut UplinkDecoder::new(), &wire),
            Ok(vec![Uplink::Auth(max)])
        );

        let headers: [(&[u8], FrameError); 9] = [
            (b"AUTH 1 2049\n", FrameError::TooLarge),
            (b"AUTH 1 18446744073709551616\n", FrameError::Malformed),
            (b"AUTH 1\n", FrameError::Malformed),
            (b"AUTH x 3\n", FrameError::Malformed),
            (b"AUTH 1 3 4\n", FrameError::Malformed),
            (b"AUTH 1 0\n", FrameError::Malformed),
            (b"AUDIT 65537\n", FrameError::TooLarge),
            (b"AUDIT\n", FrameError::Malformed),
            (b"AUDITS 1\n", FrameError::Unknown),
        ];
        let bodies: [&[u8]; 9] = [
            b"alice-pw!",
            b"alice\0pw",
            b"\0pw\x0010.0.0.1",
            b"a\0pw\x00bogus",
            b"a\0\0",
            b"a\0pw\x00 10.0.0.1",
            b"a\0pw\x0010.0.0.1 ",
            b"a\0pw\x00fe80::1%1",
            b"\xff\0pw\x0010.0.0.1",
        ];
        let cases =
            headers
                .into_iter()
                .map(|(w, e)| (w.to_vec(), e))
                .chain(bodies.into_iter().map(|b| {
                    let mut wire = format!("AUTH 1 {}\n", b.len()).into_bytes();
                    wire.extend_from_slice(b);
                    (wire, FrameError::Malformed)
                }));
        for (wire, err) in cases {
            let mut dec = UplinkDecoder::new();
            assert_eq!(
                uplinks(&mut dec, &wire),
                Err(err),
                "{:?}",
                String::from_utf8_lossy(&wire)
            );
            // Failed for good.
            assert_eq!(dec.decode(&mut &b"APPLIED 1\n"[..]), Err(err));
        }
        // The length is refused on the header, before any body byte is buffered.
        let mut dec = UplinkDecoder::new();
        let mut input = &b"AUTH 1 99999\nxxxx"[..];
        assert_eq!(dec.decode(&mut input), Err(FrameError::TooLarge));
        assert_eq!(input, b"xxxx");
        assert_eq!(dec.buffered(), 0);
    }

    fn record(action: &str, outcome: &str) -> AuditRecord {
        AuditRecord {
            action: action.into(),
            actor: "anonymous".into(),
            target: "bob".into(),
            outcome: outcome.into(),
            source: Some("192.0.2.7".parse().unwrap()),
            detail: "bad password".into(),
        }
    }

    #[test]
    fn audit_batches() {
        let mut batch = AuditBatch::new(3);
        assert!(batch.is_empty());
        batch.push(&record("mqtt.login", "denied")).unwrap();
        batch
            .push(&AuditRecord {
                action: "mqtt.acl".into(),
                actor: String::new(),
                target: "a\"b\\c\n\u{1}\u{e9}".into(),
                outcome: "failure".into(),
                source: None,
                detail: String::new(),
            })
            .unwrap();
        assert_eq!((batch.len(), batch.dropped()), (2, 3));
        let frame = batch.encode();
        let body = concat!(
            r#"{"dropped":3,"records":["#,
            r#"{"action":"mqtt.login","actor":"anonymous","target":"bob","outcome":"denied","#,
            r#""source":"192.0.2.7","detail":"bad password"},"#,
            r#"{"action":"mqtt.acl","actor":"anonymous","target":"a\"b\\c\n\u0001é","#,
            r#""outcome":"failure","source":null,"detail":""}]}"#
        );
        assert_eq!(
            String::from_utf8(frame.clone()).unwrap(),
            format!("AUDIT {}\n{body}", body.len())
        );
        // Decoded, split any way, between other messages.
        let mut wire = Ack::Applied { generation: 4 }.encode().into_bytes();
        wire.extend_from_slice(&frame);
        wire.extend_from_slice(&AuditBatch::new(0).encode());
        for chunk in [1, 3, 10, wire.len()] {
            let mut dec = UplinkDecoder::new();
            let mut got = Vec::new();
            for piece in wire.chunks(chunk) {
                got.extend(uplinks(&mut dec, piece).unwrap());
            }
            assert_eq!(
                got,
                vec![
                    Uplink::Ack(Ack::Applied { generation: 4 }),
                    Uplink::Audit(body.as_bytes().to_vec()),
                    Uplink::Audit(br#"{"dropped":0,"records":[]}"#.to_vec()),
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn audit_records_are_checked_and_bounded() {
        let mut batch = AuditBatch::new(0);
        for (action, outcome, err) in [
            ("auth.login", "denied", AuditRecordError::Action),
            ("user.create", "success", AuditRecordError::Action),
            ("mqtt.", "denied", AuditRecordError::Action),
            ("mqtt", "denied", AuditRecordError::Action),
            ("MQTT.login", "denied", AuditRecordError::Action),
            ("mqtt.log in", "denied", AuditRecordError::Action),
            ("", "denied", AuditRecordError::Action),
            ("mqtt.login", "", AuditRecordError::Outcome),
            ("mqtt.login", "Denied", AuditRecordError::Outcome),
            ("mqtt.login", "no way", AuditRecordError::Outcome),
        ] {
            let r = record(action, outcome);
            assert_eq!(check_audit_record(&r), Err(err), "{action} {outcome}");
            assert_eq!(batch.push(&r), Err(AuditPushError::Invalid(err)));
        }
        let long_action = format!("mqtt.{}", "a".repeat(MAX_AUDIT_ACTION));
        assert_eq!(
            check_audit_record(&record(&long_action, "denied")),
            Err(AuditRecordError::Action)
        );
        for ok in ["mqtt.login", "https.auth", "cira.device_2", "dataplane.x.y"] {
            check_audit_record(&record(ok, "denied")).unwrap();
        }
        let mut r = record("mqtt.login", "denied");
        r.actor = String::new();
        assert_eq!(check_audit_record(&r), Err(AuditRecordError::Actor));
        r.actor = "x".repeat(MAX_AUDIT_FIELD + 1);
        assert_eq!(check_audit_record(&r), Err(AuditRecordError::TooLong));
        assert!(batch.is_empty());

        // Long fields are cut at a character boundary; the worst case (every byte escaped)
        // still fits in an empty batch.
        let worst = AuditRecord {
            action: format!("mqtt.{}", "a".repeat(MAX_AUDIT_ACTION - 5)),
            actor: "\u{1}".repeat(10_000),
            target: "\u{e9}".repeat(10_000),
            outcome: "a".repeat(MAX_AUDIT_OUTCOME),
            source: Some(
                "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
                    .parse()
                    .unwrap(),
            ),
            detail: "\"".repeat(10_000),
        };
        let mut one = AuditBatch::new(u64::MAX);
        one.push(&worst).unwrap();
        let frame = one.encode();
        let mut dec = UplinkDecoder::new();
        let got = uplinks(&mut dec, &frame).unwrap();
        let [Uplink::Audit(body)] = &got[..] else {
            panic!("{got:?}")
        };
        let text = std::str::from_utf8(body).unwrap();
        assert!(text.contains(&format!("\"target\":\"{}\"", "\u{e9}".repeat(128))));
        assert!(!text.contains(&"\u{e9}".repeat(129)));
        // Full batches say so; the frame never exceeds the limit.
        let mut batch = AuditBatch::new(0);
        let mut n = 0;
        loop {
            match batch.push(&worst) {
                Ok(()) => n += 1,
                Err(AuditPushError::Full) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(n >= 2);
        let frame = batch.encode();
        let header = audit_header(MAX_AUDIT_BODY);
        assert!(frame.len() <= header.len() + MAX_AUDIT_BODY);
        assert_eq!(uplinks(&mut UplinkDecoder::new(), &frame).unwrap().len(), 1);
    }

    const GUID: &str = "12345678-9abc-def0-1122-334455667788";

    #[test]
    fn kick_lines_between_other_frames() {
        let kick = kick_line(GUID).unwrap();
        assert_eq!(kick, format!("KICK {GUID}\n"));
        assert!(kick.len() <= MAX_FRAME_HEADER);
        let mut wire = kick.clone().into_bytes();
        wire.extend_from_slice(&wire_of(&[b"KICK x\n"]));
        wire.extend_from_slice(authed_line(3, PasswordVerdict::Denied).as_bytes());
        wire.extend_from_slice(
            kick_line("00000000-0000-0000-0000-00000000000f")
                .unwrap()
                .as_bytes(),
        );
        let expect = vec![
            Frame::Kick(GUID.to_owned()),
            // A KICK inside a snapshot body is body.
            Frame::Snapshot(b"KICK x\n".to_vec()),
            Frame::Authed {
                id: 3,
                verdict: PasswordVerdict::Denied,
            },
            Frame::Kick("00000000-0000-0000-0000-00000000000f".to_owned()),
        ];
        for chunk in [1, 2, 5, 41, wire.len()] {
            let mut dec = FrameDecoder::new();
            let mut got = Vec::new();
            for piece in wire.chunks(chunk) {
                got.extend(frames(&mut dec, piece).unwrap());
                assert!(dec.buffered() <= MAX_FRAME_HEADER);
            }
            assert_eq!(got, expect, "chunk {chunk}");
            assert!(dec.is_idle());
        }
    }

    #[test]
    fn kick_hostile_input() {
        for bad in [
            "",
            "12345678-9ABC-DEF0-1122-334455667788",
            "12345678-9abc-def0-1122-33445566778",
            "12345678-9abc-def0-1122-3344556677889",
            "123456789abc-def0-1122-334455667788-",
            "{12345678-9abc-def0-1122-33445566778}",
            "12345678_9abc_def0_1122_334455667788",
            "g2345678-9abc-def0-1122-334455667788",
            "12345678-9abc-def0-1122-33445566778\u{e9}",
        ] {
            assert!(!valid_guid(bad), "{bad:?}");
            assert_eq!(kick_line(bad), Err(FrameError::Malformed), "{bad:?}");
            let wire = format!("KICK {bad}\n");
            let mut dec = FrameDecoder::new();
            assert_eq!(
                frames(&mut dec, wire.as_bytes()),
                Err(FrameError::Malformed),
                "{bad:?}"
            );
            // Failed for good.
            assert_eq!(
                dec.decode(&mut kick_line(GUID).unwrap().as_bytes()),
                Err(FrameError::Malformed)
            );
        }
        for bad in [
            "KICK\n".to_owned(),
            format!("KICK {GUID} x\n"),
            format!("KICK  {GUID}\n"),
            format!("KICK {GUID}\r\n"),
            format!("KICK {GUID} \n"),
            format!("kick {GUID}\n"),
        ] {
            assert_eq!(
                frames(&mut FrameDecoder::new(), bad.as_bytes()),
                Err(FrameError::Malformed),
                "{bad:?}"
            );
        }
        let long = format!("KICK {}\n", "a".repeat(MAX_FRAME_HEADER));
        assert_eq!(
            frames(&mut FrameDecoder::new(), long.as_bytes()),
            Err(FrameError::TooLong)
        );
        assert!(valid_guid(GUID));
        // Not something the data plane sends.
        assert_eq!(
            uplinks(
                &mut UplinkDecoder::new(),
                kick_line(GUID).unwrap().as_bytes()
            ),
            Err(FrameError::Unknown)
        );
    }

    fn device(guid: &str, connected: bool, at_ms: u64, last_seen_ms: u64) -> DeviceEvent {
        DeviceEvent {
            guid: guid.into(),
            connected,
            at_ms,
            last_seen_ms,
        }
    }

    #[test]
    fn device_batches() {
        let mut batch = DeviceBatch::new("edge-1.example", false).unwrap();
        assert!(batch.is_empty() && !batch.is_full_list());
        batch.push(&device(GUID, true, 1000, 1001)).unwrap();
        batch
            .push(&device(
                "00000000-0000-0000-0000-000000000000",
                false,
                MAX_DEVICE_MS,
                0,
            ))
            .unwrap();
        assert_eq!(batch.len(), 2);
        let frame = batch.encode();
        let body = format!(
            concat!(
                r#"{{"node":"edge-1.example","full":false,"events":["#,
                r#"{{"guid":"{}","connected":true,"at_ms":1000,"last_seen_ms":1001}},"#,
                r#"{{"guid":"00000000-0000-0000-0000-000000000000","connected":false,"#,
                r#""at_ms":9223372036854775807,"last_seen_ms":0}}]}}"#
            ),
            GUID
        );
        assert_eq!(
            String::from_utf8(frame.clone()).unwrap(),
            format!("DEVICES {}\n{body}", body.len())
        );
        let empty_full = DeviceBatch::new("n", true).unwrap();
        assert!(empty_full.is_full_list());
        // Decoded, split any way, between other messages.
        let mut wire = Ack::Applied { generation: 4 }.encode().into_bytes();
        wire.extend_from_slice(&frame);
        wire.extend_from_slice(&empty_full.encode());
        wire.extend_from_slice(&AuditBatch::new(0).encode());
        for chunk in [1, 3, 10, 100, wire.len()] {
            let mut dec = UplinkDecoder::new();
            let mut got = Vec::new();
            for piece in wire.chunks(chunk) {
                got.extend(uplinks(&mut dec, piece).unwrap());
            }
            assert_eq!(
                got,
                vec![
                    Uplink::Ack(Ack::Applied { generation: 4 }),
                    Uplink::Devices(body.as_bytes().to_vec()),
                    Uplink::Devices(br#"{"node":"n","full":true,"events":[]}"#.to_vec()),
                    Uplink::Audit(br#"{"dropped":0,"records":[]}"#.to_vec()),
                ],
                "chunk {chunk}"
            );
            assert!(dec.is_idle());
        }
    }

    #[test]
    fn device_events_are_checked_and_batches_bounded() {
        for bad in ["", "a b", "a/b", "host:1", "\u{e9}t\u{e9}", &"a".repeat(65)] {
            assert!(!valid_node(bad), "{bad:?}");
            assert!(DeviceBatch::new(bad, false).is_none(), "{bad:?}");
        }
        for good in ["a", "edge-1", "node_2.example.com", &"a".repeat(64)] {
            assert!(valid_node(good), "{good:?}");
        }
        let mut batch = DeviceBatch::new("n", false).unwrap();
        for (e, err) in [
            (device("", true, 0, 0), DeviceEventError::Guid),
            (
                device(&GUID.to_uppercase(), true, 0, 0),
                DeviceEventError::Guid,
            ),
            (
                device(GUID, true, MAX_DEVICE_MS + 1, 0),
                DeviceEventError::Time,
            ),
            (device(GUID, false, 0, u64::MAX), DeviceEventError::Time),
        ] {
            assert_eq!(check_device_event(&e), Err(err), "{e:?}");
            assert_eq!(batch.push(&e), Err(DevicePushError::Invalid(err)));
        }
        assert!(batch.is_empty());

        // The worst case event still fits in an empty batch; a full batch says so and never
        // exceeds its limit.
        let worst = device(GUID, false, MAX_DEVICE_MS, MAX_DEVICE_MS);
        let mut one = DeviceBatch::new(&"n".repeat(MAX_NODE_LEN), true).unwrap();
        one.push(&worst).unwrap();
        let mut small = DeviceBatch::with_limit("n", true, 400).unwrap();
        let mut n = 0;
        loop {
            match small.push(&worst) {
                Ok(()) => n += 1,
                Err(DevicePushError::Full) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(n, 2);
        let frame = small.encode();
        assert!(frame.len() <= devices_header(400).len() + 400);
        assert_eq!(uplinks(&mut UplinkDecoder::new(), &frame).unwrap().len(), 1);
        // About 36 000 typical events fit the real limit.
        let typical = device(GUID, true, 1_700_000_000_000, 1_700_000_000_000);
        let mut big = DeviceBatch::new("edge-1", true).unwrap();
        while big.push(&typical).is_ok() {}
        assert!(big.len() > 36_000, "{}", big.len());
        let frame = big.encode();
        assert!(frame.len() <= devices_header(MAX_DEVICES_BODY).len() + MAX_DEVICES_BODY);
        assert_eq!(uplinks(&mut UplinkDecoder::new(), &frame).unwrap().len(), 1);
    }

    #[test]
    fn devices_hostile_headers() {
        for (wire, err) in [
            (
                format!("DEVICES {}\n", MAX_DEVICES_BODY + 1),
                FrameError::TooLarge,
            ),
            (
                "DEVICES 18446744073709551616\n".to_owned(),
                FrameError::Malformed,
            ),
            ("DEVICES\n".to_owned(), FrameError::Malformed),
            ("DEVICES 1 2\n".to_owned(), FrameError::Malformed),
            ("DEVICES -1\n".to_owned(), FrameError::Malformed),
            ("DEVICES x\n".to_owned(), FrameError::Malformed),
            ("devices 1\n".to_owned(), FrameError::Malformed),
            ("DEVICE 1\n".to_owned(), FrameError::Unknown),
        ] {
            let mut dec = UplinkDecoder::new();
            assert_eq!(uplinks(&mut dec, wire.as_bytes()), Err(err), "{wire:?}");
            assert_eq!(dec.decode(&mut &b"APPLIED 1\n"[..]), Err(err));
        }
        // The length is refused on the header, before any body byte is buffered.
        let mut dec = UplinkDecoder::new();
        let over = format!("DEVICES {}\nxxxx", MAX_DEVICES_BODY + 1);
        let mut input = over.as_bytes();
        assert_eq!(dec.decode(&mut input), Err(FrameError::TooLarge));
        assert_eq!(input, b"xxxx");
        assert_eq!(dec.buffered(), 0);
        // The largest body is accepted, and its buffer grows with what arrives.
        let mut dec = UplinkDecoder::new();
        let max = devices_header(MAX_DEVICES_BODY);
        assert_eq!(dec.decode(&mut max.as_bytes()), Ok(None));
        assert_eq!(dec.buffered(), 0);
        let mut input = &[b' '; 100][..];
        assert_eq!(dec.decode(&mut input), Ok(None));
        assert_eq!(dec.buffered(), 100);
        assert!(!dec.is_idle());
        // Not something the control plane sends.
        assert_eq!(
            frames(&mut FrameDecoder::new(), devices_header(2).as_bytes()),
            Err(FrameError::Unknown)
        );
    }
}
