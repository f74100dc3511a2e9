//! The control link's greeting.
//!
//! Each side sends one line, at most [`MAX_LINE`] bytes including the `\n`:
//!
//! ```text
//! RAMPART-LINK <version> <role> <generation>\n
//! ```
//!
//! `version` is [`VERSION`]; a peer with another version is refused. `role` is `dataplane` or
//! `controlplane`. `generation` is the policy generation the sender holds (0: none yet). After
//! the greeting the connection stays open: either side sees the other go away as EOF.

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
/// in. Refuses a greeting from anyone but `expect`. Bytes after the newline are not expected
/// before our answer and are dropped.
///
/// Errors: `UnexpectedEof` if the peer closes first, `InvalidData` (with the [`LinkError`] as
/// source) for a malformed, oversized or wrong-role greeting, or the reader's own error.
pub fn read_hello(r: &mut impl io::Read, expect: Role) -> io::Result<Hello> {
    let mut buf = Vec::with_capacity(MAX_LINE);
    let mut chunk = [0u8; MAX_LINE];
    let hello = loop {
        let n = r.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "peer closed during the greeting",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        match parse_hello(&buf) {
            Ok(Some((hello, _))) => break hello,
            Ok(None) => {}
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    };
    if hello.role != expect {
        return Err(io::Error::new(io::ErrorKind::InvalidData, LinkError::Role));
    }
    Ok(hello)
}

fn parse_decimal<T: std::str::FromStr>(s: &str) -> Result<T, LinkError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LinkError::Malformed);
    }
    s.parse().map_err(|_| LinkError::Malformed)
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
        let hello = read_hello(&mut Trickle(wire), Role::DataPlane).unwrap();
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
}
