//! Sans-IO WebSocket codec (RFC 6455): the frame layer for the server side, plus a masked
//! client-side encoder for tests and load generators.
//!
//! What this crate does:
//!
//! - [`Decoder::decode`] takes what it can from the front of a [`bytes::BytesMut`] read buffer
//!   and returns one [`Event`]. Data-frame payload is handed out **as it arrives**: each
//!   [`Event::Data`] is a zero-copy `split_to` of the read buffer, unmasked in place. The decoder
//!   never buffers a whole frame or a whole message, so the caller sees every byte and enforces
//!   its own message-size policy. Control frames (at most 125 bytes of payload) are returned
//!   whole, once every byte of them is in the buffer.
//! - Every frame header is checked against RFC 6455 §5 before its payload is read: reserved bits
//!   (no extension is ever negotiated), known opcodes, client masking ([`DecoderLimits`]),
//!   control-frame rules (§5.5), the strict minimal length encoding, fragmentation order (§5.4)
//!   and the caller's per-frame size limit. A Close payload's status code and UTF-8 reason are
//!   checked too (§5.5.1, §7.4).
//! - [`encode_header`], [`encode_frame`] and [`encode_close`] write server-to-client frames
//!   (unmasked, §5.1); [`encode_masked`] writes client-to-server frames.
//! - [`handshake`] holds the opening-handshake helpers (§4.2): the `Sec-WebSocket-Accept`
//!   computation, `Sec-WebSocket-Key` validation and subprotocol negotiation.
//!
//! Every [`WsError`] maps to the close status to send before closing the connection
//! ([`WsError::close_code`]) and to a stable label for counters ([`WsError::reason`]).
//!
//! What this crate deliberately does not do: touch sockets, read the clock, parse HTTP, or run
//! the closing handshake (who sent Close first, when to drop the connection). It does not
//! validate the UTF-8 of Text message payloads (§8.1): text is handed out in arbitrary pieces
//! that can split a code point, and the gateway's MQTT-over-WebSocket path refuses Text frames
//! altogether, so a caller that accepts text must validate it itself. It does not limit the
//! size of a whole fragmented message, only of each frame ([`DecoderLimits::max_frame`]).

#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]
#![warn(missing_docs)]

mod decode;
mod encode;
mod error;
pub mod handshake;
mod mask;

pub use decode::Decoder;
pub use encode::{encode_close, encode_close_masked, encode_frame, encode_header, encode_masked};
pub use error::WsError;
pub use mask::apply_mask;

/// The longest frame header: 2 bytes, an 8-byte extended length and a 4-byte masking key (§5.2).
pub const MAX_HEADER_LEN: usize = 14;

/// The largest control-frame payload (§5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// The default [`DecoderLimits::max_frame`]: 16 MiB.
pub const DEFAULT_MAX_FRAME: u64 = 16 << 20;

/// A frame opcode (§5.2). Opcodes 0x3-0x7 and 0xB-0xF are reserved and refused by the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0x0: a further fragment of the message in progress.
    Continuation,
    /// 0x1: the first frame of a text message.
    Text,
    /// 0x2: the first frame of a binary message.
    Binary,
    /// 0x8: connection close (§5.5.1).
    Close,
    /// 0x9: ping (§5.5.2).
    Ping,
    /// 0xA: pong (§5.5.3).
    Pong,
}

impl OpCode {
    /// The opcode for a 4-bit wire value; `None` for the reserved values.
    pub fn from_u8(v: u8) -> Option<OpCode> {
        match v {
            0x0 => Some(Self::Continuation),
            0x1 => Some(Self::Text),
            0x2 => Some(Self::Binary),
            0x8 => Some(Self::Close),
            0x9 => Some(Self::Ping),
            0xA => Some(Self::Pong),
            _ => None,
        }
    }

    /// The 4-bit wire value.
    pub fn as_u8(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    /// True for Close, Ping and Pong (opcodes with the most significant bit set, §5.5).
    pub fn is_control(self) -> bool {
        self.as_u8() & 0x8 != 0
    }
}

/// What the decoder accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderLimits {
    /// The largest data-frame payload accepted, in bytes; a larger one is refused from its
    /// header with [`WsError::FrameTooBig`] (close status 1009). Default: 16 MiB
    /// ([`DEFAULT_MAX_FRAME`]). Control frames are limited to 125 bytes by the RFC regardless.
    pub max_frame: u64,
    /// Refuse unmasked frames (§5.1: a server must close the connection on an unmasked client
    /// frame). True on the server, the default. When false, masked and unmasked frames are both
    /// accepted and unmasked as needed (a lenient client side for tests and tools).
    pub require_mask: bool,
}

impl Default for DecoderLimits {
    fn default() -> Self {
        Self {
            max_frame: DEFAULT_MAX_FRAME,
            require_mask: true,
        }
    }
}

/// One thing the decoder took off the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Payload bytes of a data message (Text or Binary). Fragments and partial frames are
    /// delivered as they arrive, already unmasked: the decoder does not buffer whole frames or
    /// whole messages, so one frame may come out as several `Data` events. `text` says the
    /// message's opcode was Text (its UTF-8 is not validated). `fin` is true on the last bytes
    /// of the final fragment of the message; a final frame with an empty payload yields `Data`
    /// with empty `bytes` and `fin = true`, so the caller always sees where a message ends.
    Data {
        /// The message was opened by a Text frame (Binary otherwise).
        text: bool,
        /// The next payload bytes of the message, unmasked.
        bytes: bytes::Bytes,
        /// These are the message's last bytes.
        fin: bool,
    },
    /// A complete Ping frame's payload (at most 125 bytes), unmasked.
    Ping(bytes::Bytes),
    /// A complete Pong frame's payload (at most 125 bytes), unmasked.
    Pong(bytes::Bytes),
    /// A complete Close frame (§5.5.1).
    Close {
        /// The status code; `None` when the Close frame has an empty payload (which a peer then
        /// reports as 1005, §7.1.5). Always a valid code ([`is_valid_close_code`]).
        code: Option<u16>,
        /// The reason, valid UTF-8, at most 123 bytes; empty when absent.
        reason: String,
    },
}

/// Whether a close status code may appear on the wire (§7.4.1, §7.4.2): 1000-1003, 1007-1011
/// and the registered/private range 3000-4999. 1004, 1005, 1006 and 1015 are reserved and
/// never sent; 0-999, 2000-2999 and everything else is invalid.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

/// The size of the frame header [`encode_header`] (unmasked) or [`encode_masked`] (masked) writes
/// for a payload of `payload_len` bytes.
pub fn header_len(payload_len: u64, masked: bool) -> usize {
    let base = match payload_len {
        0..=125 => 2,
        126..=0xFFFF => 4,
        _ => 10,
    };
    if masked { base + 4 } else { base }
}

#[cfg(test)]
mod tests;
