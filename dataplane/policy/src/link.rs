//! The control link's wire format.
//!
//! **Greeting.** Each side sends one line, at most [`MAX_LINE`] bytes including the `\n`; the
//! data plane first, then the control plane answers:
//!
//! ```text
//! RAMPART-LINK <version> <role> <generation>\n
//! ```
//!
//! `version` is [`VERSION`]; a peer with another version is refused. `role` is `dataplane` or
//! `controlplane`. `generation` is the policy generation the sender holds (0: none yet). After
//! the greeting the connection stays open: either side sees the other go away as EOF.
//!
//! **Snapshots** (control plane to data plane), right after the greeting and then whenever a
//! newer generation is published:
//!
//! ```text
//! SNAPSHOT <len>\n<len bytes: an encoded snapshot, see crate::snapshot>
//! ```
//!
//! The header line is at most [`MAX_FRAME_HEADER`] bytes and `len` at most
//! [`MAX_SNAPSHOT`](crate::snapshot::MAX_SNAPSHOT). [`FrameDecoder`] parses them.
//!
//! **Acknowledgements** (data plane to control plane), one per snapshot received:
//!
//! ```text
//! APPLIED <generation>\n
//! REJECTED <generation> <reason>\n      reason: [a-z_]{1,64}
//! ```
//!
//! Lines are at most [`MAX_ACK_LINE`] bytes. [`AckDecoder`] parses them.

use std::fmt;
use std::io;

/// The link protocol version this build speaks.
pub const VERSION: u32 = 1;

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

// === Snapshot frames ===

/// The longest `SNAPSHOT <len>` header line accepted, including the newline.
pub const MAX_FRAME_HEADER: usize = 32;

/// The longest `APPLIED`/`REJECTED` line accepted, including the newline.
pub const MAX_ACK_LINE: usize = 128;

/// The longest rejection reason token.
pub const MAX_REASON_LEN: usize = 64;

/// The header line announcing a snapshot of `len` bytes, newline included.
pub fn snapshot_header(len: usize) -> String {
    format!("SNAPSHOT {len}\n")
}

/// A frame from the control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame {
    /// An encoded snapshot (not yet decoded or validated).
    Snapshot(Vec<u8>),
}

/// Why a frame or acknowledgement stream was refused. The decoders stay failed afterwards:
/// the link is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// No newline within the line limit.
    #[error("frame header or line longer than the limit")]
    TooLong,
    /// Not the expected syntax (fields, digits, ASCII).
    #[error("malformed frame header or line")]
    Malformed,
    /// A frame kind or acknowledgement this build does not know.
    #[error("unknown frame kind")]
    Unknown,
    /// A snapshot length over the decoder's limit.
    #[error("snapshot frame larger than the limit")]
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
    Body { len: usize, buf: Vec<u8> },
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
                        Ok(len) => {
                            self.state = FrameState::Body {
                                len,
                                buf: Vec::with_capacity(len.min(INITIAL_BODY_CAPACITY)),
                            };
                        }
                        Err(e) => {
                            self.state = FrameState::Failed(e);
                            return Err(e);
                        }
                    }
                }
                FrameState::Body { len, buf } => {
                    let want = *len - buf.len();
                    let take = want.min(input.len());
                    if take > 0 {
                        if buf.capacity() - buf.len() < take {
                            // Double, but never past the announced length.
                            let target = (buf.capacity() * 2).max(buf.len() + take).min(*len);
                            buf.reserve_exact(target - buf.len());
                        }
                        buf.extend_from_slice(&input[..take]);
                        *input = &input[take..];
                    }
                    if buf.len() < *len {
                        return Ok(None);
                    }
                    let body = std::mem::take(buf);
                    self.state = FrameState::Header(LineBuf::new(MAX_FRAME_HEADER));
                    return Ok(Some(Frame::Snapshot(body)));
                }
            }
        }
    }

    /// Whether no partial frame is buffered (between frames).
    pub fn is_idle(&self) -> bool {
        match &self.state {
            FrameState::Header(line) => line.is_empty(),
            FrameState::Body { .. } | FrameState::Failed(_) => false,
        }
    }

    /// Bytes of the current partial frame held.
    pub fn buffered(&self) -> usize {
        match &self.state {
            FrameState::Header(line) => line.len(),
            FrameState::Body { buf, .. } => buf.len(),
            FrameState::Failed(_) => 0,
        }
    }
}

const INITIAL_BODY_CAPACITY: usize = 64 * 1024;

fn parse_frame_header(line: &[u8], limit: usize) -> Result<usize, FrameError> {
    let line = std::str::from_utf8(line).map_err(|_| FrameError::Malformed)?;
    let Some((kind, len)) = line.split_once(' ') else {
        return Err(
            if line.bytes().all(|b| b.is_ascii_uppercase()) && !line.is_empty() {
                FrameError::Unknown
            } else {
                FrameError::Malformed
            },
        );
    };
    if kind != "SNAPSHOT" {
        return Err(
            if !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_uppercase()) {
                FrameError::Unknown
            } else {
                FrameError::Malformed
            },
        );
    }
    let len: u64 = parse_decimal(len).map_err(|_| FrameError::Malformed)?;
    match usize::try_from(len) {
        Ok(len) if len <= limit => Ok(len),
        _ => Err(FrameError::TooLarge),
    }
}

// === Acknowledgements ===

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

/// Incremental decoder of the data plane's acknowledgement lines (sans-IO), like
/// [`FrameDecoder`]: it takes one line at a time from the input and holds at most
/// [`MAX_ACK_LINE`] bytes.
#[derive(Debug)]
pub struct AckDecoder {
    line: LineBuf,
    failed: Option<FrameError>,
}

impl Default for AckDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl AckDecoder {
    /// A fresh decoder.
    pub fn new() -> Self {
        Self {
            line: LineBuf::new(MAX_ACK_LINE),
            failed: None,
        }
    }

    /// Consumes bytes from the front of `input`; returns an acknowledgement once a line is
    /// complete (see [`FrameDecoder::decode`] for the contract).
    pub fn decode(&mut self, input: &mut &[u8]) -> Result<Option<Ack>, FrameError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let parsed = match self.line.take_line(input) {
            Ok(None) => return Ok(None),
            Ok(Some(line)) => parse_ack(line),
            Err(e) => Err(e),
        };
        if let Err(e) = parsed {
            self.failed = Some(e);
        }
        parsed.map(Some)
    }
}

fn parse_ack(line: &[u8]) -> Result<Ack, FrameError> {
    let line = std::str::from_utf8(line).map_err(|_| FrameError::Malformed)?;
    let mut fields = line.split(' ');
    match (fields.next(), fields.next(), fields.next(), fields.next()) {
        (Some("APPLIED"), Some(generation), None, None) => Ok(Ack::Applied {
            generation: parse_decimal(generation).map_err(|_| FrameError::Malformed)?,
        }),
        (Some("REJECTED"), Some(generation), Some(reason), None) => Ok(Ack::Rejected {
            generation: parse_decimal(generation).map_err(|_| FrameError::Malformed)?,
            reason: Reason::new(reason).ok_or(FrameError::Malformed)?,
        }),
        (Some("APPLIED" | "REJECTED"), ..) => Err(FrameError::Malformed),
        (Some(kind), ..) if !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_uppercase()) => {
            Err(FrameError::Unknown)
        }
        _ => Err(FrameError::Malformed),
    }
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
        assert_eq!(wire, "RAMPART-LINK 1 controlplane 42\n");
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
        let wire = b"RAMPART-LINK 1 dataplane 7\n";
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
        assert_eq!(
            parse_hello(b"RAMPART-LINK 2 dataplane 0\n"),
            Err(LinkError::Version)
        );
        assert_eq!(
            parse_hello(b"RAMPART-LINK 1 browser 0\n"),
            Err(LinkError::Role)
        );
        for bad in [
            &b"HELLO 1 dataplane 0\n"[..],
            b"RAMPART-LINK 1 dataplane\n",
            b"RAMPART-LINK 1 dataplane 0 0\n",
            b"RAMPART-LINK 1 dataplane -1\n",
            b"RAMPART-LINK 1 dataplane 99999999999999999999999\n",
            b"RAMPART-LINK +1 dataplane 0\n",
            b"RAMPART-LINK 1 dataplane \xff\n",
            b"\n",
        ] {
            assert_eq!(parse_hello(bad), Err(LinkError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn hello_rest_keeps_what_follows() {
        let mut wire = b"RAMPART-LINK 1 controlplane 3\n".to_vec();
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
            (b"SNAPSHOT\n", FrameError::Unknown),
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
            let mut dec = AckDecoder::new();
            let mut got = Vec::new();
            for piece in wire.chunks(chunk) {
                let mut input = piece;
                while let Some(ack) = dec.decode(&mut input).unwrap() {
                    got.push(ack);
                }
                assert!(input.is_empty());
            }
            assert_eq!(got, vec![applied.clone(), rejected.clone()]);
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
            let mut dec = AckDecoder::new();
            assert_eq!(dec.decode(&mut &bad[..]), Err(err), "{bad:?}");
            assert_eq!(dec.decode(&mut &b"APPLIED 1\n"[..]), Err(err));
        }
        let long = format!("REJECTED 1 {}\n", "a".repeat(65));
        assert_eq!(
            AckDecoder::new().decode(&mut long.as_bytes()),
            Err(FrameError::Malformed)
        );
        let endless = [b'A'; 500];
        assert_eq!(
            AckDecoder::new().decode(&mut &endless[..]),
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
}
