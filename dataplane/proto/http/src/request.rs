//! Request heads (RFC 9112 §3).

use crate::error::HeadError;
use crate::framing::{Framing, framing};
use crate::head::{Scanner, StartLine};
use crate::headers::{Headers, Version};
use crate::syntax::{ascii_string, is_token, parse_version};
use crate::{BodyKind, Limits};

/// A parsed and validated request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The method, a token (case-sensitive: `GET`, not `get`).
    pub method: String,
    /// The request target as sent: origin-form (`/path?query`), absolute-form
    /// (`http://host/path`), authority-form (`host:port`, CONNECT only) or `*` (OPTIONS only).
    /// Visible ASCII only; not percent-decoded or normalised.
    pub target: String,
    /// The protocol version.
    pub version: Version,
    /// The header fields in order.
    pub headers: Headers,
    /// How the request body is delimited: `None`, `Length` or `Chunked`, never `UntilClose`.
    pub body: BodyKind,
    /// Whether the client allows another request on the connection after this one: for
    /// HTTP/1.1 unless `Connection: close`, for HTTP/1.0 only with `Connection: keep-alive`.
    pub keep_alive: bool,
}

impl RequestHead {
    /// The target up to (not including) the first `?`.
    pub fn path(&self) -> &str {
        self.target
            .split_once('?')
            .map_or(self.target.as_str(), |(path, _)| path)
    }

    /// The target after the first `?`, if there is one.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, query)| query)
    }

    /// Whether the client waits for `100 Continue` before sending the body: an HTTP/1.1
    /// request with `Expect: 100-continue` (an HTTP/1.0 client cannot expect it, RFC 9110
    /// §10.1.1).
    pub fn expects_continue(&self) -> bool {
        self.version == Version::Http11 && self.headers.has_token("expect", "100-continue")
    }

    /// The Host field value, if present and UTF-8 (it is always ASCII once parsed).
    pub fn host(&self) -> Option<&str> {
        self.headers.get_str("host")
    }
}

/// The request line, parsed.
#[derive(Debug)]
pub(crate) struct RequestLine {
    method: String,
    target: String,
    version: Version,
}

impl StartLine for RequestLine {
    /// RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line.
    const LEADING_EMPTY_LINES: u8 = 2;
    const TOO_LONG: HeadError = HeadError::RequestLineTooLong;

    fn parse(line: &[u8]) -> Result<Self, HeadError> {
        let (Some(first), Some(last)) = (
            line.iter().position(|&b| b == b' '),
            line.iter().rposition(|&b| b == b' '),
        ) else {
            return Err(HeadError::BadRequestLine);
        };
        if first == last {
            return Err(HeadError::BadRequestLine);
        }
        let (method, target, version) = (&line[..first], &line[first + 1..last], &line[last + 1..]);
        if method.is_empty() || version.is_empty() || matches!(target, [] | [b' ', ..] | [.., b' '])
        {
            return Err(HeadError::BadRequestLine);
        }
        if !is_token(method) {
            return Err(HeadError::BadMethod);
        }
        let version = parse_version(version)?;
        check_target(method, target)?;
        Ok(Self {
            method: ascii_string(method),
            target: ascii_string(target),
            version,
        })
    }
}

/// The request-target forms of RFC 9112 §3.2, each only with the methods it belongs to.
fn check_target(method: &[u8], target: &[u8]) -> Result<(), HeadError> {
    // No fragment: a request target never carries one (RFC 9112 §3.2).
    if !target
        .iter()
        .all(|&b| (0x21..=0x7e).contains(&b) && b != b'#')
    {
        return Err(HeadError::BadTarget);
    }
    let ok = if method == b"CONNECT" {
        is_authority_form(target)
    } else if target == b"*" {
        method == b"OPTIONS"
    } else if target.starts_with(b"/") {
        true
    } else {
        is_absolute_form(target)
    };
    if ok {
        Ok(())
    } else {
        Err(HeadError::BadTarget)
    }
}

/// `http://` or `https://` (scheme case-insensitive) followed by a non-empty authority.
fn is_absolute_form(target: &[u8]) -> bool {
    let rest = [&b"http://"[..], b"https://"]
        .into_iter()
        .find_map(|scheme| {
            target
                .get(..scheme.len())
                .filter(|prefix| prefix.eq_ignore_ascii_case(scheme))
                .map(|_| &target[scheme.len()..])
        });
    matches!(rest, Some([first, ..]) if !matches!(first, b'/' | b'?'))
}

/// `uri-host ":" port` with a non-empty host and a port of 1 to 5 digits up to 65535.
fn is_authority_form(target: &[u8]) -> bool {
    let Some(colon) = target.iter().rposition(|&b| b == b':') else {
        return false;
    };
    let (host, port) = (&target[..colon], &target[colon + 1..]);
    !host.is_empty()
        && !host.iter().any(|b| matches!(b, b'/' | b'?' | b'@'))
        && parse_port(port).is_some()
}

fn parse_port(port: &[u8]) -> Option<u16> {
    if port.is_empty() || port.len() > 5 {
        return None;
    }
    let n = port.iter().try_fold(0u32, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
    })?;
    u16::try_from(n).ok()
}

/// A byte a Host value (`uri-host [ ":" port ]`, RFC 3986 §3.2.2) can hold: unreserved,
/// sub-delims, `%` of a percent-encoding, `:` and the brackets of an IP literal.
fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b'%'
                | b':'
                | b'['
                | b']'
        )
}

/// Exactly one Host in HTTP/1.1, at most one in HTTP/1.0, and a plausible value.
fn check_host(headers: &Headers, version: Version) -> Result<(), HeadError> {
    let mut hosts = headers.get_all("host");
    match (hosts.next(), hosts.next()) {
        (None, _) if version == Version::Http11 => Err(HeadError::MissingHost),
        (Some(_), Some(_)) => Err(HeadError::MultipleHost),
        (Some(host), None) if !host.iter().all(|&b| is_host_byte(b)) => Err(HeadError::BadHost),
        _ => Ok(()),
    }
}

/// Incremental, size-limited request head parser. One per connection; see
/// [`RequestParser::parse`].
#[derive(Debug)]
pub struct RequestParser {
    scanner: Scanner<RequestLine>,
}

impl RequestParser {
    /// A parser enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            scanner: Scanner::new(limits),
        }
    }

    /// Parses the request head at the start of `buf`.
    ///
    /// Incremental: while this returns `Ok(None)` (incomplete, but within the limits so far),
    /// call it again with the same buffer grown by newly read bytes. On success it returns the
    /// head and how many bytes of `buf` it used (the caller advances past them; what follows is
    /// the body or the next request), and the parser is ready for the next head at the start
    /// of the advanced buffer. Each byte is scanned a bounded number of times however the input
    /// is split, and the result does not depend on the split.
    ///
    /// An error is final for the connection: later calls return it again until
    /// [`Self::reset`].
    pub fn parse(&mut self, buf: &[u8]) -> Result<Option<(RequestHead, usize)>, HeadError> {
        let Some((line, headers, used)) = self.scanner.scan(buf)? else {
            return Ok(None);
        };
        match build(line, headers) {
            Ok(head) => Ok(Some((head, used))),
            Err(e) => {
                self.scanner.fail(e);
                Err(e)
            }
        }
    }

    /// Forgets any partial head and error, before the next request on the connection.
    pub fn reset(&mut self) {
        self.scanner.reset();
    }

    /// Bytes examined since the last reset.
    #[cfg(test)]
    pub(crate) fn work(&self) -> usize {
        self.scanner.work
    }
}

/// The head-wide rules: framing, then Host (RFC 9110 §7.2).
fn build(line: RequestLine, headers: Headers) -> Result<RequestHead, HeadError> {
    let RequestLine {
        method,
        target,
        version,
    } = line;
    let body = match framing(&headers, version)? {
        Framing::Chunked => BodyKind::Chunked,
        Framing::Length(n) => BodyKind::Length(n),
        Framing::Unspecified => BodyKind::None,
    };
    check_host(&headers, version)?;
    let close = headers.has_token("connection", "close");
    let keep_alive = match version {
        Version::Http11 => !close,
        Version::Http10 => !close && headers.has_token("connection", "keep-alive"),
    };
    Ok(RequestHead {
        method,
        target,
        version,
        headers,
        body,
        keep_alive,
    })
}
