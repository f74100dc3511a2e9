//! Character classes and the field-line grammar shared by heads and trailers (RFC 9110 §5,
//! RFC 9112 §5).

use crate::error::HeadError;
use crate::headers::Header;

/// `tchar` (RFC 9110 §5.6.2).
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// `token = 1*tchar`.
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// A byte allowed inside a field value (VCHAR, obs-text, SP, HTAB).
pub(crate) fn is_field_byte(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | 0x21..=0x7e | 0x80..=0xff)
}

/// Optional whitespace (SP, HTAB) trimmed from both ends.
pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// ASCII bytes (already validated) as a `String`.
pub(crate) fn ascii_string(s: &[u8]) -> String {
    s.iter().copied().map(char::from).collect()
}

/// Why a field line (without its CRLF) is not `field-name ":" OWS field-value OWS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldError {
    ObsFold,
    BadName,
    WhitespaceBeforeColon,
    BadValue,
}

impl From<FieldError> for HeadError {
    fn from(e: FieldError) -> Self {
        match e {
            FieldError::ObsFold => Self::ObsFold,
            FieldError::BadName => Self::BadFieldName,
            FieldError::WhitespaceBeforeColon => Self::WhitespaceBeforeColon,
            FieldError::BadValue => Self::BadFieldValue,
        }
    }
}

/// Parses one field line, CRLF already removed and checked free of CR and LF.
pub(crate) fn parse_field_line(line: &[u8]) -> Result<Header, FieldError> {
    if let [b' ' | b'\t', ..] = line {
        return Err(FieldError::ObsFold);
    }
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return Err(FieldError::BadName);
    };
    let name = &line[..colon];
    if let [.., b' ' | b'\t'] = name {
        return Err(FieldError::WhitespaceBeforeColon);
    }
    if !is_token(name) {
        return Err(FieldError::BadName);
    }
    let value = trim_ows(&line[colon + 1..]);
    if !value.iter().all(|&b| is_field_byte(b)) {
        return Err(FieldError::BadValue);
    }
    Ok(Header {
        name: ascii_string(name),
        value: value.to_vec(),
    })
}

/// `HTTP/1.0` or `HTTP/1.1`; another `HTTP/DIGIT.DIGIT` is unsupported, anything else bad.
pub(crate) fn parse_version(v: &[u8]) -> Result<crate::Version, HeadError> {
    match v {
        b"HTTP/1.1" => Ok(crate::Version::Http11),
        b"HTTP/1.0" => Ok(crate::Version::Http10),
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Err(HeadError::UnsupportedVersion)
        }
        _ => Err(HeadError::BadVersion),
    }
}
