//! Sans-IO HTTP/1.x message framing (RFC 9112, RFC 9110), strict enough to stand in front of
//! other HTTP implementations without opening request-smuggling gaps.
//!
//! What this crate does:
//!
//! - [`RequestParser`] and [`ResponseParser`] read a message head (start line and header
//!   fields) incrementally: call `parse` again with the grown read buffer until it returns the
//!   head and the number of bytes it used. The work is linear in the input however it is split
//!   (the parser remembers how far it has scanned), and every [`Limits`] bound is enforced on
//!   partial input too, so a peer cannot make the caller buffer more than the limits allow.
//! - The head's [`BodyKind`] is decided here, once, by the message framing rules of RFC 9112
//!   §6: [`BodyDecoder`] then takes the body off the front of a [`bytes::BytesMut`] without
//!   copying the payload, for a fixed length, chunked coding (extensions and trailers checked
//!   and discarded) or a response delimited by the connection closing.
//! - [`encode_chunk_header`], [`CHUNK_END`] and [`LAST_CHUNK`] write a chunked body, and
//!   [`status_reason`] gives the canonical reason phrase for a status code.
//!
//! Every rejection is a [`HeadError`] or [`BodyError`] with a stable snake-case label
//! ([`HeadError::reason`], [`BodyError::reason`]) for counters, and for heads the status code to
//! answer with ([`HeadError::status`]). Errors carry static context only, never peer bytes.
//!
//! Strictness, deliberately beyond what a lenient server accepts (each rule closes a known
//! desynchronisation between two HTTP parsers):
//!
//! - Lines end with CRLF only; a bare LF or a CR not followed by LF is an error anywhere in a
//!   head, a chunk-size line or the trailers. Obsolete line folding is refused.
//! - The request line has exactly single spaces, a token method, a visible-ASCII target in one
//!   of the four request-target forms (authority-form only for CONNECT, `*` only for OPTIONS)
//!   and exactly `HTTP/1.0` or `HTTP/1.1`.
//! - A field name is a token with no whitespace before the colon; a field value holds no
//!   control characters other than horizontal tab.
//! - Transfer-Encoding and Content-Length together are refused (RFC 9112 §6.1 allows a
//!   recipient to do so, and it is the only safe choice for an intermediary), as is
//!   Transfer-Encoding in an HTTP/1.0 message, any transfer coding but a single final `chunked`,
//!   and Content-Length values that are not plain digits or disagree with each other.
//! - HTTP/1.1 requests carry exactly one Host field, and no request carries more than one.
//!
//! What this crate deliberately does not do: touch sockets, read the clock, decode content
//! codings, normalise or percent-decode targets, or route. It does not keep connection state
//! beyond one message: the caller decides when a connection may carry another request
//! ([`RequestHead::keep_alive`], [`ResponseHead::keep_alive`]) and handles `100-continue`,
//! upgrades and CONNECT tunnels.

#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]
#![warn(missing_docs)]

mod body;
mod error;
mod framing;
mod head;
mod headers;
mod request;
mod response;
mod status;
mod syntax;

pub use body::{
    BodyDecoder, BodyEvent, BodyLimits, CHUNK_END, LAST_CHUNK, MAX_CHUNK_SIZE_DIGITS,
    encode_chunk_header,
};
pub use error::{BodyError, HeadError};
pub use headers::{Header, Headers, Version};
pub use request::{RequestHead, RequestParser};
pub use response::{ResponseHead, ResponseParser};
pub use status::status_reason;

/// Size bounds on a message head, enforced while it arrives.
///
/// Line lengths exclude the line's CRLF. The head size counts every byte from the start of the
/// buffer up to and including the empty line that ends the head (with any empty lines skipped
/// before a request line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Longest request line (or response status line). Default 8192.
    pub max_request_line: usize,
    /// Longest field line, name, colon and value together. Default 8192.
    pub max_field_size: usize,
    /// Most header fields in one head. Default 100.
    pub max_fields: usize,
    /// Largest whole head, start line included. Default 64 KiB.
    pub max_head: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_line: 8192,
            max_field_size: 8192,
            max_fields: 100,
            max_head: 64 * 1024,
        }
    }
}

/// How the body of a message is delimited (RFC 9112 §6.3), decided from its head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BodyKind {
    /// No body: the next message starts right after the head.
    None,
    /// Exactly this many bytes (Content-Length). `Length(0)` is an empty body.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the peer closes the connection. Responses only.
    UntilClose,
}

#[cfg(test)]
mod tests;
