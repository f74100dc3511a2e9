//! The bounds-checked cursor every decoder reads peer bytes through (house style rule 9), and
//! the primitive writers of the encoder. Data representations are MQTT 5.0 §1.5 (identical in
//! 3.1.1 §1.5 for the types it has).

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError};

/// Largest value of a variable byte integer (§1.5.5).
pub(crate) const MAX_VARINT: u32 = 268_435_455;

/// A cursor over one packet's bytes. Every read checks the length first; slicing out payloads
/// and binary fields shares the underlying buffer.
#[derive(Debug)]
pub(crate) struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    pub(crate) fn new(buf: Bytes) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The next `n` bytes, or `Malformed(ctx)` if fewer remain.
    pub(crate) fn take(&mut self, n: usize, ctx: &'static str) -> Result<&[u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Malformed(ctx))?;
        let out = self
            .buf
            .get(self.pos..end)
            .ok_or(DecodeError::Malformed(ctx))?;
        self.pos = end;
        Ok(out)
    }

    /// Like [`Self::take`], but as a shared slice of the buffer.
    pub(crate) fn take_bytes(&mut self, n: usize, ctx: &'static str) -> Result<Bytes, DecodeError> {
        let start = self.pos;
        self.take(n, ctx)?;
        // `take` succeeded, so `start..start + n` lies within the buffer.
        Ok(self.buf.slice(start..start + n))
    }

    pub(crate) fn take_array<const N: usize>(
        &mut self,
        ctx: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let s = self.take(N, ctx)?;
        <[u8; N]>::try_from(s).map_err(|_| DecodeError::Malformed(ctx))
    }

    pub(crate) fn u8(&mut self, ctx: &'static str) -> Result<u8, DecodeError> {
        let [b] = self.take_array::<1>(ctx)?;
        Ok(b)
    }

    /// Two byte integer, big-endian (§1.5.2).
    pub(crate) fn u16(&mut self, ctx: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.take_array(ctx)?))
    }

    /// Four byte integer, big-endian (§1.5.3).
    pub(crate) fn u32(&mut self, ctx: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.take_array(ctx)?))
    }

    /// Variable byte integer (§1.5.5): at most four bytes, minimal encoding.
    pub(crate) fn varint(&mut self, ctx: &'static str) -> Result<u32, DecodeError> {
        let mut value: u32 = 0;
        for i in 0..4 {
            let b = self.u8(ctx)?;
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if i > 0 && b == 0 {
                    return Err(DecodeError::Malformed("non-minimal variable byte integer"));
                }
                return Ok(value);
            }
        }
        Err(DecodeError::Malformed(
            "variable byte integer longer than 4 bytes",
        ))
    }

    /// UTF-8 encoded string (§1.5.4): two-byte length, well-formed UTF-8 (no surrogates, no
    /// overlong forms: what `str::from_utf8` checks), and no U+0000 [MQTT-1.5.4-2]. The other
    /// code points the spec says SHOULD NOT appear are accepted.
    pub(crate) fn string(&mut self, ctx: &'static str) -> Result<String, DecodeError> {
        let len = self.u16(ctx)?;
        let raw = self.take(usize::from(len), ctx)?;
        let s = std::str::from_utf8(raw).map_err(|_| DecodeError::Malformed("invalid UTF-8"))?;
        if s.contains('\0') {
            return Err(DecodeError::Malformed("U+0000 in a UTF-8 string"));
        }
        Ok(s.to_owned())
    }

    /// Binary data (§1.5.6): two-byte length and that many bytes.
    pub(crate) fn binary(&mut self, ctx: &'static str) -> Result<Bytes, DecodeError> {
        let len = self.u16(ctx)?;
        self.take_bytes(usize::from(len), ctx)
    }

    /// A cursor over the next `len` bytes, consumed from this one.
    pub(crate) fn sub(&mut self, len: usize, ctx: &'static str) -> Result<Reader, DecodeError> {
        Ok(Reader::new(self.take_bytes(len, ctx)?))
    }

    /// Everything left (a PUBLISH payload).
    pub(crate) fn rest(&mut self) -> Bytes {
        let start = self.pos.min(self.buf.len());
        self.pos = self.buf.len();
        self.buf.slice(start..)
    }

    /// Rejects trailing bytes: the declared length must be consumed exactly.
    pub(crate) fn finish(&self, ctx: &'static str) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Malformed(ctx))
        }
    }
}

// === Writers ===

/// Encoded size of a variable byte integer; values above [`MAX_VARINT`] do not fit.
pub(crate) fn varint_len(v: usize) -> Result<usize, EncodeError> {
    match v {
        0..=127 => Ok(1),
        128..=16_383 => Ok(2),
        16_384..=2_097_151 => Ok(3),
        2_097_152..=268_435_455 => Ok(4),
        _ => Err(EncodeError::TooLarge),
    }
}

pub(crate) fn put_varint(dst: &mut BytesMut, v: usize) -> Result<(), EncodeError> {
    varint_len(v)?;
    let mut v = v;
    loop {
        // Masked to seven bits, so the cast is lossless.
        let mut b = (v & 0x7f) as u8;
        v >>= 7;
        if v > 0 {
            b |= 0x80;
        }
        dst.put_u8(b);
        if v == 0 {
            return Ok(());
        }
    }
}

/// Encoded size of a string or binary field: two-byte length plus the bytes.
pub(crate) fn field_len(len: usize) -> Result<usize, EncodeError> {
    if len > usize::from(u16::MAX) {
        return Err(EncodeError::StringTooLong);
    }
    Ok(2 + len)
}

/// A UTF-8 string or binary data field (§1.5.4, §1.5.6).
pub(crate) fn put_field(dst: &mut BytesMut, data: &[u8]) -> Result<(), EncodeError> {
    let len = u16::try_from(data.len()).map_err(|_| EncodeError::StringTooLong)?;
    dst.put_u16(len);
    dst.put_slice(data);
    Ok(())
}
