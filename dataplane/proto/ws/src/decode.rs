//! The streaming frame decoder (§5.2-§5.5).

use bytes::{Buf, Bytes, BytesMut};

use crate::{DecoderLimits, Event, MAX_CONTROL_PAYLOAD, OpCode, WsError, apply_mask};

const FIN: u8 = 0x80;
const RSV: u8 = 0x70;
const OPCODE: u8 = 0x0F;
const MASKED: u8 = 0x80;
const LEN7: u8 = 0x7F;

/// The streaming server-side frame decoder: one per connection.
///
/// State kept between calls is a few words (the position in the current data frame and whether
/// a fragmented message is in progress), never payload bytes: unconsumed input stays in the
/// caller's buffer. After `decode` returns `Ok(None)` the buffer holds at most one incomplete
/// frame header or one incomplete control frame (so fewer than
/// [`crate::MAX_HEADER_LEN`] + [`crate::MAX_CONTROL_PAYLOAD`] bytes).
#[derive(Debug)]
pub struct Decoder {
    limits: DecoderLimits,
    /// The data frame whose payload is being handed out.
    frame: Option<DataFrame>,
    /// `Some(text)` from the header of a fragmented message's first frame to the header of its
    /// final fragment.
    message: Option<bool>,
    /// The first error, returned again by every later call.
    failed: Option<WsError>,
}

#[derive(Debug, Clone, Copy)]
struct DataFrame {
    /// Payload bytes not handed out yet; never 0 while the frame is stored.
    remaining: u64,
    /// The masking key, rotated so that index 0 applies to the next payload byte.
    mask: Option<[u8; 4]>,
    text: bool,
    fin: bool,
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy)]
struct Header {
    fin: bool,
    opcode: OpCode,
    mask: Option<[u8; 4]>,
    len: u64,
    /// Header size in bytes (2 to 14).
    size: usize,
}

impl Decoder {
    /// A decoder at the start of a connection.
    pub fn new(limits: DecoderLimits) -> Self {
        Self {
            limits,
            frame: None,
            message: None,
            failed: None,
        }
    }

    /// The limits this decoder was built with.
    pub fn limits(&self) -> DecoderLimits {
        self.limits
    }

    /// Whether a data message has started and its last bytes have not been handed out yet
    /// (inside a frame, or between the fragments of a fragmented message).
    pub fn in_message(&self) -> bool {
        self.frame.is_some() || self.message.is_some()
    }

    /// Takes what it can from the front of `buf` and returns the next event.
    ///
    /// `Ok(None)` means more bytes are needed; frame headers already checked may have been
    /// consumed (their state is kept in the decoder). Data payload is handed out as it arrives:
    /// the returned bytes are a `split_to` of `buf`, unmasked in place, without a copy. A control
    /// frame is returned only once all of it is in `buf`. A final data frame with an empty
    /// payload yields [`Event::Data`] with empty bytes and `fin = true`; an empty non-final
    /// fragment yields nothing.
    ///
    /// Call it in a loop until `Ok(None)`. After an error, the connection must be closed (see
    /// [`WsError::close_code`]); every later call returns the same error and consumes nothing.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Event>, WsError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.step(buf);
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    fn step(&mut self, buf: &mut BytesMut) -> Result<Option<Event>, WsError> {
        loop {
            if let Some(frame) = &mut self.frame {
                if buf.is_empty() {
                    return Ok(None);
                }
                let n = usize::try_from(frame.remaining).map_or(buf.len(), |r| r.min(buf.len()));
                let mut chunk = buf.split_to(n);
                if let Some(mask) = &mut frame.mask {
                    apply_mask(&mut chunk, *mask);
                    mask.rotate_left(n % 4);
                }
                frame.remaining -= n as u64;
                let fin = frame.fin && frame.remaining == 0;
                let text = frame.text;
                if frame.remaining == 0 {
                    self.frame = None;
                }
                return Ok(Some(Event::Data {
                    text,
                    bytes: chunk.freeze(),
                    fin,
                }));
            }

            let Some(h) = parse_header(buf, &self.limits, self.message)? else {
                return Ok(None);
            };

            if h.opcode.is_control() {
                // The header checks guarantee len <= 125.
                let len = h.len as usize;
                if buf.len() < h.size + len {
                    return Ok(None);
                }
                buf.advance(h.size);
                let mut payload = buf.split_to(len);
                if let Some(mask) = h.mask {
                    apply_mask(&mut payload, mask);
                }
                return control_event(h.opcode, payload.freeze()).map(Some);
            }

            buf.advance(h.size);
            let text = match h.opcode {
                OpCode::Text => true,
                OpCode::Binary => false,
                // parse_header refuses a Continuation without a message in progress.
                _ => self.message.unwrap_or(false),
            };
            self.message = if h.fin { None } else { Some(text) };
            if h.len == 0 {
                if h.fin {
                    return Ok(Some(Event::Data {
                        text,
                        bytes: Bytes::new(),
                        fin: true,
                    }));
                }
                continue;
            }
            self.frame = Some(DataFrame {
                remaining: h.len,
                mask: h.mask,
                text,
                fin: h.fin,
            });
        }
    }
}

/// Parses and checks the header at the front of `buf` without consuming it; `Ok(None)` when it
/// is incomplete. The checks run in a fixed order, each as soon as its bytes are there, so the
/// error does not depend on how the input was split.
fn parse_header(
    buf: &[u8],
    limits: &DecoderLimits,
    message: Option<bool>,
) -> Result<Option<Header>, WsError> {
    let Some(&b0) = buf.first() else {
        return Ok(None);
    };
    if b0 & RSV != 0 {
        return Err(WsError::ReservedBits);
    }
    let opcode = OpCode::from_u8(b0 & OPCODE).ok_or(WsError::UnknownOpcode(b0 & OPCODE))?;
    let fin = b0 & FIN != 0;
    match opcode {
        OpCode::Close | OpCode::Ping | OpCode::Pong if !fin => {
            return Err(WsError::FragmentedControl);
        }
        OpCode::Continuation if message.is_none() => return Err(WsError::UnexpectedContinuation),
        OpCode::Text | OpCode::Binary if message.is_some() => {
            return Err(WsError::InterleavedMessage);
        }
        _ => {}
    }

    let Some(&b1) = buf.get(1) else {
        return Ok(None);
    };
    let masked = b1 & MASKED != 0;
    if limits.require_mask && !masked {
        return Err(WsError::UnmaskedFrame);
    }
    let len7 = b1 & LEN7;
    if opcode.is_control() && usize::from(len7) > MAX_CONTROL_PAYLOAD {
        return Err(WsError::ControlTooLong);
    }

    let (len, mut size) = match len7 {
        126 => {
            let Some(&[a, b]) = buf.get(2..4) else {
                return Ok(None);
            };
            let len = u16::from_be_bytes([a, b]);
            if len < 126 {
                return Err(WsError::NonMinimalLength);
            }
            (u64::from(len), 4)
        }
        127 => {
            let Some(ext) = buf.get(2..10) else {
                return Ok(None);
            };
            let mut be = [0u8; 8];
            be.copy_from_slice(ext);
            let len = u64::from_be_bytes(be);
            if len >> 63 != 0 {
                return Err(WsError::LengthOverflow);
            }
            if len <= 0xFFFF {
                return Err(WsError::NonMinimalLength);
            }
            (len, 10)
        }
        n => (u64::from(n), 2),
    };
    if !opcode.is_control() && len > limits.max_frame {
        return Err(WsError::FrameTooBig {
            len,
            max: limits.max_frame,
        });
    }

    let mask = if masked {
        let Some(&[a, b, c, d]) = buf.get(size..size + 4) else {
            return Ok(None);
        };
        size += 4;
        Some([a, b, c, d])
    } else {
        None
    };
    Ok(Some(Header {
        fin,
        opcode,
        mask,
        len,
        size,
    }))
}

/// The event for a complete, unmasked control frame payload.
fn control_event(opcode: OpCode, payload: Bytes) -> Result<Event, WsError> {
    match opcode {
        OpCode::Ping => Ok(Event::Ping(payload)),
        OpCode::Pong => Ok(Event::Pong(payload)),
        _ => parse_close(&payload),
    }
}

/// A Close payload: empty, or a valid 2-byte status code and a UTF-8 reason (§5.5.1).
fn parse_close(payload: &[u8]) -> Result<Event, WsError> {
    match payload {
        [] => Ok(Event::Close {
            code: None,
            reason: String::new(),
        }),
        [_] => Err(WsError::CloseLengthOne),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !crate::is_valid_close_code(code) {
                return Err(WsError::InvalidCloseCode(code));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| WsError::InvalidCloseReason)?;
            Ok(Event::Close {
                code: Some(code),
                reason: reason.to_owned(),
            })
        }
    }
}
