//! Response heads (RFC 9112 §4) and response framing (RFC 9112 §6.3).

use crate::error::HeadError;
use crate::framing::{Framing, framing};
use crate::head::{Scanner, StartLine};
use crate::headers::{Headers, Version};
use crate::syntax::{is_field_byte, parse_version};
use crate::{BodyKind, Limits};

/// A parsed and validated response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The protocol version.
    pub version: Version,
    /// The status code, 100..=599.
    pub status: u16,
    /// The reason phrase, possibly empty (obs-text bytes that are not UTF-8 are replaced).
    pub reason: String,
    /// The header fields in order.
    pub headers: Headers,
    /// How the response body is delimited, given the request method.
    pub body: BodyKind,
    /// Whether the server allows another request on the connection: for HTTP/1.1 unless
    /// `Connection: close`, for HTTP/1.0 only with `Connection: keep-alive`, and never when
    /// the body runs until the connection closes.
    pub keep_alive: bool,
}

impl ResponseHead {
    /// Whether this is an interim (1xx) response, after which the final response follows.
    pub fn is_informational(&self) -> bool {
        (100..200).contains(&self.status)
    }
}

/// The status line, parsed.
#[derive(Debug)]
pub(crate) struct StatusLine {
    version: Version,
    status: u16,
    reason: String,
}

impl StartLine for StatusLine {
    const LEADING_EMPTY_LINES: u8 = 0;
    const TOO_LONG: HeadError = HeadError::StatusLineTooLong;

    fn parse(line: &[u8]) -> Result<Self, HeadError> {
        let Some(space) = line.iter().position(|&b| b == b' ') else {
            return Err(HeadError::BadStatusLine);
        };
        let version = parse_version(&line[..space])?;
        let rest = &line[space + 1..];
        let (status, reason) = match rest {
            [a, b, c, tail @ ..] if [a, b, c].iter().all(|d| d.is_ascii_digit()) => {
                let status = [a, b, c]
                    .iter()
                    .fold(0u16, |n, &&d| n * 10 + u16::from(d - b'0'));
                let reason = match tail {
                    [] => &[][..],
                    [b' ', reason @ ..] => reason,
                    _ => return Err(HeadError::BadStatusLine),
                };
                (status, reason)
            }
            _ => return Err(HeadError::BadStatusLine),
        };
        if !(100..=599).contains(&status) || !reason.iter().all(|&b| is_field_byte(b)) {
            return Err(HeadError::BadStatusLine);
        }
        Ok(Self {
            version,
            status,
            reason: String::from_utf8_lossy(reason).into_owned(),
        })
    }
}

/// Incremental, size-limited response head parser, for reading an upstream's responses. The
/// same field and framing rules as [`crate::RequestParser`], without the Host rules;
/// `Limits::max_request_line` bounds the status line.
#[derive(Debug)]
pub struct ResponseParser {
    scanner: Scanner<StatusLine>,
}

impl ResponseParser {
    /// A parser enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            scanner: Scanner::new(limits),
        }
    }

    /// Parses the response head at the start of `buf`, incrementally like
    /// [`crate::RequestParser::parse`]. `request_method` is the method of the request this
    /// responds to; it decides the framing (RFC 9112 §6.3): no body after a HEAD request, a
    /// 1xx, 204 or 304 status, or a 2xx answer to CONNECT (the tunnel starts instead);
    /// otherwise chunked if Transfer-Encoding says so, else Content-Length, else until close.
    ///
    /// Interim 1xx responses are returned like any other: the caller loops for the final one.
    pub fn parse(
        &mut self,
        buf: &[u8],
        request_method: &str,
    ) -> Result<Option<(ResponseHead, usize)>, HeadError> {
        let Some((line, headers, used)) = self.scanner.scan(buf)? else {
            return Ok(None);
        };
        match build(line, headers, request_method) {
            Ok(head) => Ok(Some((head, used))),
            Err(e) => {
                self.scanner.fail(e);
                Err(e)
            }
        }
    }

    /// Forgets any partial head and error, before the next response on the connection.
    pub fn reset(&mut self) {
        self.scanner.reset();
    }
}

fn build(line: StatusLine, headers: Headers, method: &str) -> Result<ResponseHead, HeadError> {
    let StatusLine {
        version,
        status,
        reason,
    } = line;
    // Validated even when the status or method rules out a body: a response with malformed
    // framing fields is not trusted.
    let framing = framing(&headers, version)?;
    let no_body = method == "HEAD"
        || (100..200).contains(&status)
        || status == 204
        || status == 304
        || (method == "CONNECT" && (200..300).contains(&status));
    let body = if no_body {
        BodyKind::None
    } else {
        match framing {
            Framing::Chunked => BodyKind::Chunked,
            Framing::Length(n) => BodyKind::Length(n),
            Framing::Unspecified => BodyKind::UntilClose,
        }
    };
    let close = headers.has_token("connection", "close");
    let keep_alive = body != BodyKind::UntilClose
        && match version {
            Version::Http11 => !close,
            Version::Http10 => !close && headers.has_token("connection", "keep-alive"),
        };
    Ok(ResponseHead {
        version,
        status,
        reason,
        headers,
        body,
        keep_alive,
    })
}
