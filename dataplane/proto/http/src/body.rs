//! Message bodies: the decoder for every [`BodyKind`] and the chunked encoding helpers
//! (RFC 9112 §6, §7.1).

use bytes::{Buf, Bytes, BytesMut};

use crate::BodyKind;
use crate::error::BodyError;
use crate::syntax::{is_field_byte, parse_field_line};

/// Most hexadecimal digits accepted in a chunk size (leading zeros included): 16 digits hold
/// any `u64`.
pub const MAX_CHUNK_SIZE_DIGITS: usize = 16;

/// Written after each chunk's data.
pub const CHUNK_END: &[u8] = b"\r\n";

/// The last chunk and the empty trailer section that end a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Writes the chunk-size line `{len in hex}\r\n` that precedes `len` bytes of chunk data
/// (followed by [`CHUNK_END`]). `len` must not be 0: a zero-size chunk is the last chunk, which
/// is [`LAST_CHUNK`].
pub fn encode_chunk_header(len: usize, dst: &mut BytesMut) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 2 * std::mem::size_of::<usize>()];
    let mut start = digits.len();
    let mut n = len;
    loop {
        start -= 1;
        digits[start] = HEX[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    dst.reserve(digits.len() - start + 2);
    dst.extend_from_slice(&digits[start..]);
    dst.extend_from_slice(b"\r\n");
}

/// Size bounds on the chunked framing, enforced while it arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BodyLimits {
    /// Longest chunk-size line, extensions included, CRLF excluded. Default 4096.
    pub max_chunk_line: usize,
    /// Largest trailer section: the trailer field lines with their CRLFs, not counting the
    /// final empty line. Default 8192.
    pub max_trailers: usize,
}

impl Default for BodyLimits {
    fn default() -> Self {
        Self {
            max_chunk_line: 4096,
            max_trailers: 8192,
        }
    }
}

/// What [`BodyDecoder::decode`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyEvent {
    /// Body payload, never empty; a zero-copy slice of the read buffer.
    Data(Bytes),
    /// The body is complete. Returned once.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `BodyDecoder::length_remaining` (non-zero) bytes to go.
    Length,
    UntilClose {
        closed: bool,
    },
    /// Reading the hex digits of a chunk size.
    ChunkSize {
        value: u64,
        digits: usize,
    },
    /// After the digits: whitespace and extensions up to the CR. `line` counts the line so far.
    ChunkExt {
        value: u64,
        line: usize,
        semicolon: bool,
    },
    /// After the CR of a chunk-size line.
    ChunkSizeLf {
        value: u64,
    },
    ChunkData {
        remaining: u64,
    },
    /// Expecting the CR after chunk data.
    ChunkDataCr,
    /// Expecting the LF after chunk data.
    ChunkDataLf,
    /// Reading a trailer line into `BodyDecoder::trailer`.
    Trailer,
    /// After the CR of a trailer line.
    TrailerLf,
    /// Complete; `End` not yet returned.
    Complete,
    /// `End` returned.
    Finished,
    Failed(BodyError),
}

/// Takes one message body off the front of a read buffer, for any [`BodyKind`].
///
/// The chunked framing is checked byte by byte as it arrives, so the work is linear and the
/// result does not depend on how the input is split; framing bytes are consumed as they are
/// read, payload bytes only when they are returned.
#[derive(Debug)]
pub struct BodyDecoder {
    kind: BodyKind,
    limits: BodyLimits,
    state: State,
    length_remaining: u64,
    /// The trailer line being read (bounded by `max_trailers`).
    trailer: Vec<u8>,
    /// Trailer section bytes so far.
    trailer_total: usize,
}

impl BodyDecoder {
    /// A decoder for a body delimited as `kind`.
    pub fn new(kind: BodyKind, limits: BodyLimits) -> Self {
        let (state, length_remaining) = match kind {
            BodyKind::None | BodyKind::Length(0) => (State::Complete, 0),
            BodyKind::Length(n) => (State::Length, n),
            BodyKind::Chunked => (
                State::ChunkSize {
                    value: 0,
                    digits: 0,
                },
                0,
            ),
            BodyKind::UntilClose => (State::UntilClose { closed: false }, 0),
        };
        Self {
            kind,
            limits,
            state,
            length_remaining,
            trailer: Vec::new(),
            trailer_total: 0,
        }
    }

    /// The kind of body being decoded.
    pub fn kind(&self) -> BodyKind {
        self.kind
    }

    /// Takes what it can from the front of `buf`. `Ok(None)`: more bytes are needed (framing
    /// bytes may have been consumed).
    ///
    /// A `Data` event carries as much payload as `buf` holds, never more than the rest of the
    /// declared length or of the current chunk. Once the body is complete `End` is returned,
    /// once, leaving whatever follows (a pipelined next message) in `buf`; later calls return
    /// `Ok(None)` without touching `buf`. For [`BodyKind::None`] and `Length(0)` the first call
    /// returns `End`. For [`BodyKind::UntilClose`] every non-empty `buf` is returned as `Data`,
    /// and `End` comes after [`Self::eof`] once `buf` is drained.
    ///
    /// An error is final: later calls return it again.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<BodyEvent>, BodyError> {
        match self.state {
            State::Failed(e) => Err(e),
            State::Finished => Ok(None),
            State::Complete => {
                self.state = State::Finished;
                Ok(Some(BodyEvent::End))
            }
            State::Length => {
                if buf.is_empty() {
                    return Ok(None);
                }
                let data = take(buf, self.length_remaining);
                self.length_remaining -= data.len() as u64;
                if self.length_remaining == 0 {
                    self.state = State::Complete;
                }
                Ok(Some(BodyEvent::Data(data)))
            }
            State::UntilClose { closed } => {
                if !buf.is_empty() {
                    Ok(Some(BodyEvent::Data(buf.split().freeze())))
                } else if closed {
                    self.state = State::Finished;
                    Ok(Some(BodyEvent::End))
                } else {
                    Ok(None)
                }
            }
            _ => self.decode_chunked(buf).inspect_err(|&e| {
                self.state = State::Failed(e);
            }),
        }
    }

    /// The peer closed the connection. `Ok` if the body is complete or runs until close;
    /// otherwise [`BodyError::Truncated`] (or the error already returned by `decode`).
    pub fn eof(&mut self) -> Result<(), BodyError> {
        match self.state {
            State::UntilClose { .. } => {
                self.state = State::UntilClose { closed: true };
                Ok(())
            }
            State::Complete | State::Finished => Ok(()),
            State::Failed(e) => Err(e),
            _ => {
                self.state = State::Failed(BodyError::Truncated);
                Err(BodyError::Truncated)
            }
        }
    }

    /// Whether the whole body has been read (for [`BodyKind::UntilClose`]: whether
    /// [`Self::eof`] was called; data still in the buffer then remains to be taken).
    pub fn is_done(&self) -> bool {
        matches!(
            self.state,
            State::Complete | State::Finished | State::UntilClose { closed: true }
        )
    }

    /// For a [`BodyKind::Length`] body, the bytes still to come; `None` for other kinds.
    pub fn remaining(&self) -> Option<u64> {
        match self.kind {
            BodyKind::Length(_) => Some(self.length_remaining),
            _ => None,
        }
    }

    fn decode_chunked(&mut self, buf: &mut BytesMut) -> Result<Option<BodyEvent>, BodyError> {
        loop {
            match self.state {
                State::ChunkData { remaining } => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let data = take(buf, remaining);
                    let left = remaining - data.len() as u64;
                    self.state = if left == 0 {
                        State::ChunkDataCr
                    } else {
                        State::ChunkData { remaining: left }
                    };
                    return Ok(Some(BodyEvent::Data(data)));
                }
                State::Complete => {
                    self.state = State::Finished;
                    return Ok(Some(BodyEvent::End));
                }
                _ => {}
            }
            if buf.is_empty() {
                return Ok(None);
            }
            let used = self.framing_bytes(buf)?;
            buf.advance(used);
        }
    }

    /// Runs the framing state machine over `bytes` until chunk data starts, the body is
    /// complete, or the bytes run out. Returns how many bytes it consumed.
    fn framing_bytes(&mut self, bytes: &[u8]) -> Result<usize, BodyError> {
        for (i, &b) in bytes.iter().enumerate() {
            self.step(b)?;
            if matches!(self.state, State::ChunkData { .. } | State::Complete) {
                return Ok(i + 1);
            }
        }
        Ok(bytes.len())
    }

    fn step(&mut self, b: u8) -> Result<(), BodyError> {
        let max_line = self.limits.max_chunk_line;
        self.state = match self.state {
            State::ChunkSize { value, digits } => match (hex_digit(b), b) {
                (Some(_), _) if digits == MAX_CHUNK_SIZE_DIGITS => {
                    return Err(BodyError::BadChunkSize);
                }
                (Some(_), _) if digits + 1 > max_line => return Err(BodyError::ChunkLineTooLong),
                (Some(d), _) => State::ChunkSize {
                    value: value << 4 | u64::from(d),
                    digits: digits + 1,
                },
                _ if digits == 0 => return Err(BodyError::BadChunkSize),
                (None, b'\r') => State::ChunkSizeLf { value },
                (None, b'\n') => return Err(BodyError::BareLf),
                (None, b';' | b' ' | b'\t') if digits + 1 > max_line => {
                    return Err(BodyError::ChunkLineTooLong);
                }
                (None, b';' | b' ' | b'\t') => State::ChunkExt {
                    value,
                    line: digits + 1,
                    semicolon: b == b';',
                },
                (None, _) => return Err(BodyError::BadChunkSize),
            },
            State::ChunkExt {
                value,
                line,
                semicolon,
            } => match b {
                // Whitespace after the size with no extension is not `chunk-ext`.
                b'\r' if !semicolon => return Err(BodyError::BadChunkSize),
                b'\r' => State::ChunkSizeLf { value },
                b'\n' => return Err(BodyError::BareLf),
                _ if !semicolon && !matches!(b, b';' | b' ' | b'\t') => {
                    return Err(BodyError::BadChunkSize);
                }
                _ if !is_field_byte(b) => return Err(BodyError::BadChunkExtension),
                _ if line + 1 > max_line => return Err(BodyError::ChunkLineTooLong),
                _ => State::ChunkExt {
                    value,
                    line: line + 1,
                    semicolon: semicolon || b == b';',
                },
            },
            State::ChunkSizeLf { value } => match b {
                b'\n' if value == 0 => {
                    self.trailer.clear();
                    self.trailer_total = 0;
                    State::Trailer
                }
                b'\n' => State::ChunkData { remaining: value },
                _ => return Err(BodyError::BareCr),
            },
            State::ChunkDataCr => match b {
                b'\r' => State::ChunkDataLf,
                b'\n' => return Err(BodyError::BareLf),
                _ => return Err(BodyError::MissingChunkCrlf),
            },
            State::ChunkDataLf => match b {
                b'\n' => State::ChunkSize {
                    value: 0,
                    digits: 0,
                },
                _ => return Err(BodyError::BareCr),
            },
            State::Trailer => match b {
                b'\r' => State::TrailerLf,
                b'\n' => return Err(BodyError::BareLf),
                _ => {
                    self.add_trailer_bytes(1)?;
                    self.trailer.push(b);
                    State::Trailer
                }
            },
            State::TrailerLf => match b {
                b'\n' if self.trailer.is_empty() => State::Complete,
                b'\n' => {
                    self.add_trailer_bytes(2)?;
                    parse_field_line(&self.trailer).map_err(|_| BodyError::BadTrailer)?;
                    self.trailer.clear();
                    State::Trailer
                }
                _ => return Err(BodyError::BareCr),
            },
            // Not framing states: `framing_bytes` is never called in them.
            other @ (State::Length
            | State::UntilClose { .. }
            | State::ChunkData { .. }
            | State::Complete
            | State::Finished
            | State::Failed(_)) => other,
        };
        Ok(())
    }

    fn add_trailer_bytes(&mut self, n: usize) -> Result<(), BodyError> {
        self.trailer_total += n;
        if self.trailer_total > self.limits.max_trailers {
            return Err(BodyError::TrailerTooLarge);
        }
        Ok(())
    }
}

/// Up to `max` bytes off the front of `buf`.
fn take(buf: &mut BytesMut, max: u64) -> Bytes {
    let n = usize::try_from(max).map_or(buf.len(), |max| max.min(buf.len()));
    buf.split_to(n).freeze()
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
