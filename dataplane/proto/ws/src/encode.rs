//! Frame encoders (§5.2): unmasked server-to-client frames and masked client-to-server frames.
//!
//! The encoders do not check the frame rules: control frames must be final and carry at most
//! 125 bytes, and payload lengths must stay below 2^63. Breaking them produces frames a peer
//! refuses.

use bytes::{BufMut, BytesMut};

use crate::{MAX_CONTROL_PAYLOAD, OpCode, apply_mask, header_len};

/// The largest close reason that fits a control frame next to the 2-byte status code.
const MAX_CLOSE_REASON: usize = MAX_CONTROL_PAYLOAD - 2;

fn put_header(dst: &mut BytesMut, opcode: OpCode, fin: bool, len: u64, mask: Option<[u8; 4]>) {
    dst.reserve(header_len(len, mask.is_some()));
    dst.put_u8(if fin { 0x80 } else { 0 } | opcode.as_u8());
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match len {
        0..=125 => dst.put_u8(mask_bit | len as u8),
        126..=0xFFFF => {
            dst.put_u8(mask_bit | 126);
            dst.put_u16(len as u16);
        }
        _ => {
            dst.put_u8(mask_bit | 127);
            dst.put_u64(len);
        }
    }
    if let Some(mask) = mask {
        dst.put_slice(&mask);
    }
}

/// Writes an unmasked (server-to-client) frame header for a payload of `payload_len` bytes, in
/// the minimal length encoding. The caller appends the payload itself, e.g. to wrap a batch of
/// buffered bytes in one Binary frame without copying them.
pub fn encode_header(dst: &mut BytesMut, opcode: OpCode, fin: bool, payload_len: u64) {
    put_header(dst, opcode, fin, payload_len, None);
}

/// Writes a whole unmasked (server-to-client) frame with FIN set.
pub fn encode_frame(dst: &mut BytesMut, opcode: OpCode, payload: &[u8]) {
    put_header(dst, opcode, true, payload.len() as u64, None);
    dst.put_slice(payload);
}

/// The reason cut at a character boundary so that it fits a Close frame.
fn close_reason(reason: &str) -> &str {
    &reason[..reason.floor_char_boundary(MAX_CLOSE_REASON)]
}

/// Writes an unmasked (server-to-client) Close frame with a status code and a reason. The
/// reason is truncated at a character boundary so that the payload stays within 125 bytes. The
/// code is not checked (see [`crate::is_valid_close_code`]).
pub fn encode_close(dst: &mut BytesMut, code: u16, reason: &str) {
    let reason = close_reason(reason);
    put_header(dst, OpCode::Close, true, 2 + reason.len() as u64, None);
    dst.put_u16(code);
    dst.put_slice(reason.as_bytes());
}

/// Writes a masked (client-to-server) frame: header, masking key, then the masked payload. For
/// tests and load generators; `mask` should come from a random source in real clients (§5.3).
pub fn encode_masked(dst: &mut BytesMut, opcode: OpCode, fin: bool, payload: &[u8], mask: [u8; 4]) {
    put_header(dst, opcode, fin, payload.len() as u64, Some(mask));
    let start = dst.len();
    dst.put_slice(payload);
    apply_mask(&mut dst[start..], mask);
}

/// Writes a masked (client-to-server) Close frame; the reason is truncated as in
/// [`encode_close`].
pub fn encode_close_masked(dst: &mut BytesMut, code: u16, reason: &str, mask: [u8; 4]) {
    let reason = close_reason(reason);
    put_header(
        dst,
        OpCode::Close,
        true,
        2 + reason.len() as u64,
        Some(mask),
    );
    let start = dst.len();
    dst.put_u16(code);
    dst.put_slice(reason.as_bytes());
    apply_mask(&mut dst[start..], mask);
}
