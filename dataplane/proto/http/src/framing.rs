//! Transfer-Encoding and Content-Length (RFC 9112 §6), validated the same way for requests and
//! responses.

use crate::Version;
use crate::error::HeadError;
use crate::headers::Headers;
use crate::syntax::{is_token, trim_ows};

/// Most digits accepted in a Content-Length value: any 19-digit number fits in a `u64`.
const MAX_CONTENT_LENGTH_DIGITS: usize = 19;

/// What the framing fields say about the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    Chunked,
    Length(u64),
    /// Neither Transfer-Encoding nor Content-Length.
    Unspecified,
}

/// Checks the framing fields and says how the body is delimited.
pub(crate) fn framing(headers: &Headers, version: Version) -> Result<Framing, HeadError> {
    let te = headers.contains("transfer-encoding");
    let cl = headers.contains("content-length");
    if te && cl {
        return Err(HeadError::TeAndContentLength);
    }
    if te {
        if version == Version::Http10 {
            return Err(HeadError::BadTransferEncoding);
        }
        check_transfer_encoding(headers)?;
        return Ok(Framing::Chunked);
    }
    if cl {
        return content_length(headers).map(Framing::Length);
    }
    Ok(Framing::Unspecified)
}

/// The only accepted coding list is a single `chunked` (empty list elements aside). Malformed
/// lists are 400; a well-formed coding other than `chunked` is 501 (RFC 9112 §6.1).
fn check_transfer_encoding(headers: &Headers) -> Result<(), HeadError> {
    let mut codings = 0usize;
    let mut chunked = 0usize;
    let mut last_is_chunked = false;
    let mut unsupported = false;
    for value in headers.get_all("transfer-encoding") {
        for element in value.split(|&b| b == b',') {
            let element = trim_ows(element);
            if element.is_empty() {
                continue;
            }
            let (name, has_params) = match element.iter().position(|&b| b == b';') {
                Some(semi) => (trim_ows(&element[..semi]), true),
                None => (element, false),
            };
            if !is_token(name) {
                return Err(HeadError::BadTransferEncoding);
            }
            codings += 1;
            last_is_chunked = name.eq_ignore_ascii_case(b"chunked");
            if last_is_chunked {
                if has_params {
                    return Err(HeadError::BadTransferEncoding);
                }
                chunked += 1;
            } else {
                unsupported = true;
            }
        }
    }
    if codings == 0 {
        return Err(HeadError::BadTransferEncoding);
    }
    if unsupported {
        return Err(HeadError::UnsupportedTransferCoding);
    }
    if chunked != 1 || !last_is_chunked {
        return Err(HeadError::BadTransferEncoding);
    }
    Ok(())
}

/// Every Content-Length field, read as a comma-separated list, must hold the same plain
/// decimal number (RFC 9110 §8.6).
fn content_length(headers: &Headers) -> Result<u64, HeadError> {
    let mut length: Option<u64> = None;
    for value in headers.get_all("content-length") {
        for element in value.split(|&b| b == b',') {
            let n = parse_decimal(trim_ows(element)).ok_or(HeadError::BadContentLength)?;
            match length {
                Some(previous) if previous != n => {
                    return Err(HeadError::ConflictingContentLength);
                }
                _ => length = Some(n),
            }
        }
    }
    length.ok_or(HeadError::BadContentLength)
}

/// `1*DIGIT`, at most [`MAX_CONTENT_LENGTH_DIGITS`] digits.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > MAX_CONTENT_LENGTH_DIGITS {
        return None;
    }
    s.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}
