//! Unit tests: the derived byte vectors of reference §5 (decode and encode), decoder errors and
//! limits, streaming (split and coalesced input, proptests), the client decoder, and every
//! session rule.

use bytes::BytesMut;

use crate::client::ClientDecoder;
use crate::{DecodeError, Limits, Message, decode, encode};

mod client;
mod codec;
mod props;
mod session;
mod vectors;

/// Bytes from hexadecimal, ignoring whitespace.
fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd hex length");
    digits
        .chunks(2)
        .map(|p| {
            let s = std::str::from_utf8(p).unwrap();
            u8::from_str_radix(s, 16).unwrap()
        })
        .collect()
}

fn encoded(msg: &Message) -> Vec<u8> {
    let mut b = BytesMut::new();
    encode(msg, &mut b);
    b.to_vec()
}

/// Decodes everything in `bytes` at once on the server side: the messages up to the first
/// error, that error, and how many bytes remain.
fn decode_all(bytes: &[u8], limits: &Limits) -> (Vec<Message>, Option<DecodeError>, usize) {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    loop {
        match decode(&mut buf, limits) {
            Ok(Some(m)) => out.push(m),
            Ok(None) => return (out, None, buf.len()),
            Err(e) => return (out, Some(e), buf.len()),
        }
    }
}

/// Like [`decode_all`], feeding `chunk` bytes at a time.
fn decode_chunked(
    bytes: &[u8],
    limits: &Limits,
    chunk: usize,
) -> (Vec<Message>, Option<DecodeError>, usize) {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in bytes.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match decode(&mut buf, limits) {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(e) => return (out, Some(e), buf.len()),
            }
        }
    }
    (out, None, buf.len())
}

/// Decodes everything with a client decoder; panics on an error.
fn client_decode_all(dec: &mut ClientDecoder, bytes: &[u8]) -> Vec<Message> {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(m) = dec.decode(&mut buf).expect("server output decodes") {
        out.push(m);
    }
    assert!(buf.is_empty(), "trailing bytes: {buf:?}");
    out
}
