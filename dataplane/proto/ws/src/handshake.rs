//! Opening-handshake helpers (§4.2): the server's `Sec-WebSocket-Accept`, client key
//! validation and subprotocol selection. HTTP parsing itself is the caller's job.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest, Sha1};

/// The GUID appended to the client's key before hashing (§1.3, §4.2.2).
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

fn is_ows(b: &u8) -> bool {
    matches!(b, b' ' | b'\t')
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)),
/// RFC 6455 §4.2.2. Leading and trailing spaces and tabs of `client_key` are ignored.
pub fn accept_key(client_key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(trim(client_key));
    sha.update(GUID.as_bytes());
    STANDARD.encode(sha.finalize())
}

/// Whether a `Sec-WebSocket-Key` value is valid (§4.1, §11.3.1): after trimming spaces and
/// tabs, the canonical padded base64 of exactly 16 bytes (24 characters).
pub fn valid_key(key: &[u8]) -> bool {
    let key = trim(key);
    if key.len() != 24 {
        return false;
    }
    // 24 characters decode to at most 18 bytes.
    let mut out = [0u8; 18];
    matches!(STANDARD.decode_slice(key, &mut out), Ok(16))
}

/// Whether the client offers the subprotocol `wanted`, given every `Sec-WebSocket-Protocol`
/// header value (each a comma-separated list, §4.1, §11.3.4). Elements are trimmed of spaces and
/// tabs and compared exactly (case-sensitive). An empty `wanted` is never offered.
pub fn offers_subprotocol<'a>(values: impl IntoIterator<Item = &'a [u8]>, wanted: &str) -> bool {
    let wanted = wanted.as_bytes();
    !wanted.is_empty()
        && values
            .into_iter()
            .any(|v| v.split(|&b| b == b',').any(|e| trim(e) == wanted))
}
