//! What an `mqtt` payload carries, and per (publisher, subscriber) sequence tracking.
//!
//! Payload layout (big-endian), then filler up to `--payload` bytes or the `--payload-file`:
//!
//! | bytes  | field                                                         |
//! |--------|---------------------------------------------------------------|
//! | 0..8   | send time, nanoseconds since the process-wide [`now_ns`] epoch |
//! | 8..10  | publisher index                                               |
//! | 10..16 | sequence number of that publisher (48 bits), from 0           |
//!
//! A `--payload-file` holding a JSON object stays a JSON object: the same 16 bytes go in as
//! 32 lowercase hex digits in a first member, `{"lg":"<hex>",` followed by the file's members.
//!
//! Publishers and subscribers live in one process, so one monotonic clock serves both ends:
//! the latency is receive time minus send time, without any clock synchronisation.

use std::sync::OnceLock;
use std::time::Instant;

/// Bytes of the stamp at the start of every payload.
pub(crate) const STAMP_LEN: usize = 16;

/// Largest sequence number (48 bits).
const MAX_SEQ: u64 = (1 << 48) - 1;

/// Nanoseconds since the process's first call: the clock of every send and receive time.
pub(crate) fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    // 2^64 ns is 584 years: the conversion cannot fail within a run.
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The head of a payload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) sent_ns: u64,
    pub(crate) publisher: u16,
    pub(crate) seq: u64,
}

impl Stamp {
    /// Writes the stamp over the first [`STAMP_LEN`] bytes of `dst`.
    pub(crate) fn write(self, dst: &mut [u8; STAMP_LEN]) {
        dst[..8].copy_from_slice(&self.sent_ns.to_be_bytes());
        dst[8..10].copy_from_slice(&self.publisher.to_be_bytes());
        dst[10..].copy_from_slice(&(self.seq & MAX_SEQ).to_be_bytes()[2..]);
    }

    /// Reads the stamp of a payload; `None` if it is shorter than [`STAMP_LEN`].
    pub(crate) fn read(payload: &[u8]) -> Option<Self> {
        let head: &[u8; STAMP_LEN] = payload.get(..STAMP_LEN)?.try_into().ok()?;
        let (time, rest) = head.split_at(8);
        let (publisher, seq) = rest.split_at(2);
        let mut seq8 = [0u8; 8];
        seq8[2..].copy_from_slice(seq);
        Some(Self {
            sent_ns: u64::from_be_bytes(time.try_into().ok()?),
            publisher: u16::from_be_bytes(publisher.try_into().ok()?),
            seq: u64::from_be_bytes(seq8),
        })
    }
}

/// What starts a JSON payload: the stamp member's name and opening quote.
const JSON_HEAD: &[u8] = b"{\"lg\":\"";

/// Hex digits of the JSON stamp.
const JSON_HEX: usize = 2 * STAMP_LEN;

/// A payload with room for the stamp, written afresh for every message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Payload {
    bytes: Vec<u8>,
    json: bool,
}

impl Payload {
    /// `len` bytes of filler after the binary stamp (`len` ≥ [`STAMP_LEN`]).
    pub(crate) fn filler(len: usize) -> Self {
        Self {
            bytes: vec![0x5a; len.max(STAMP_LEN)],
            json: false,
        }
    }

    /// The stamp, then `content`: inside it as its first member if it is a JSON object (it
    /// starts with `{`, after any byte order mark and whitespace, which are dropped), in front
    /// of it otherwise.
    pub(crate) fn around(content: &[u8]) -> Self {
        // A JSON text may start with a byte order mark and whitespace.
        let text = content.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(content);
        let start = text
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(text.len());
        match text[start..].strip_prefix(b"{") {
            Some(rest) => {
                let mut bytes = JSON_HEAD.to_vec();
                bytes.extend_from_slice(&[b'0'; JSON_HEX]);
                bytes.push(b'"');
                let empty = rest.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
                if !empty {
                    bytes.push(b',');
                }
                bytes.extend_from_slice(rest);
                Self { bytes, json: true }
            }
            None => {
                let mut bytes = vec![0u8; STAMP_LEN];
                bytes.extend_from_slice(content);
                Self { bytes, json: false }
            }
        }
    }

    /// The payload's length.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// The payload carrying `stamp`.
    pub(crate) fn stamped(&mut self, stamp: Stamp) -> &[u8] {
        let mut raw = [0u8; STAMP_LEN];
        stamp.write(&mut raw);
        if self.json {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let at = JSON_HEAD.len();
            for (i, b) in raw.iter().enumerate() {
                self.bytes[at + 2 * i] = HEX[usize::from(b >> 4)];
                self.bytes[at + 2 * i + 1] = HEX[usize::from(b & 15)];
            }
        } else {
            self.bytes[..STAMP_LEN].copy_from_slice(&raw);
        }
        &self.bytes
    }
}

impl Stamp {
    /// Reads the stamp of a payload in either form: the JSON member if the payload starts with
    /// a well-formed one, the binary stamp otherwise.
    pub(crate) fn read_any(payload: &[u8]) -> Option<Self> {
        if let Some(hex) = payload.strip_prefix(JSON_HEAD) {
            let hex = hex.get(..JSON_HEX)?;
            let mut raw = [0u8; STAMP_LEN];
            let digit = |c: u8| match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                _ => None,
            };
            let mut ok = true;
            for (i, pair) in hex.chunks_exact(2).enumerate() {
                match (digit(pair[0]), digit(pair[1])) {
                    (Some(h), Some(l)) => raw[i] = h << 4 | l,
                    _ => ok = false,
                }
            }
            if ok && hex.len() == JSON_HEX && payload.get(JSON_HEAD.len() + JSON_HEX) == Some(&b'"')
            {
                return Self::read(&raw);
            }
        }
        Self::read(payload)
    }
}

/// How a received sequence number relates to the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Higher than any before (possibly after a gap).
    New,
    /// Lower than the highest so far and not seen before (fills a gap): out of order.
    Late,
    /// Seen before.
    Duplicate,
}

/// Sequence numbers to remember below the highest seen, to tell a late arrival from a
/// duplicate. Anything older counts as late.
const WINDOW: u64 = 1024;
const WORDS: usize = (WINDOW / 64) as usize;

/// The sequence numbers one subscriber has received from one publisher.
#[derive(Debug, Clone)]
pub(crate) struct SeqTrack {
    /// One more than the highest sequence number received; 0 before the first.
    next: u64,
    /// Bit `s % WINDOW` is set if `s` (within `next - WINDOW .. next`) was received.
    seen: [u64; WORDS],
    pub(crate) out_of_order: u64,
    pub(crate) duplicates: u64,
}

impl Default for SeqTrack {
    fn default() -> Self {
        Self {
            next: 0,
            seen: [0; WORDS],
            out_of_order: 0,
            duplicates: 0,
        }
    }
}

impl SeqTrack {
    /// Records one arrival.
    pub(crate) fn observe(&mut self, seq: u64) -> Seen {
        if seq >= self.next {
            if seq - self.next >= WINDOW {
                self.seen = [0; WORDS];
            } else {
                for s in self.next..seq {
                    self.clear(s);
                }
            }
            self.set(seq);
            self.next = seq + 1;
            Seen::New
        } else if self.next - seq <= WINDOW && self.is_set(seq) {
            self.duplicates += 1;
            Seen::Duplicate
        } else {
            if self.next - seq <= WINDOW {
                self.set(seq);
            }
            self.out_of_order += 1;
            Seen::Late
        }
    }

    /// One more than the highest sequence number received; 0 before the first.
    pub(crate) fn next(&self) -> u64 {
        self.next
    }

    /// True once the message with sequence number `last` (or a later one) has arrived.
    pub(crate) fn has_reached(&self, last: u64) -> bool {
        self.next > last
    }

    fn bit(seq: u64) -> (usize, u64) {
        let i = seq % WINDOW;
        // i < WINDOW, so the word index is below WORDS.
        ((i / 64) as usize, 1 << (i % 64))
    }

    fn set(&mut self, seq: u64) {
        let (w, b) = Self::bit(seq);
        if let Some(word) = self.seen.get_mut(w) {
            *word |= b;
        }
    }

    fn clear(&mut self, seq: u64) {
        let (w, b) = Self::bit(seq);
        if let Some(word) = self.seen.get_mut(w) {
            *word &= !b;
        }
    }

    fn is_set(&self, seq: u64) -> bool {
        let (w, b) = Self::bit(seq);
        self.seen.get(w).is_some_and(|word| word & b != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_roundtrip() {
        let stamp = Stamp {
            sent_ns: 0x0102_0304_0506_0708,
            publisher: 513,
            seq: MAX_SEQ,
        };
        let mut buf = [0u8; STAMP_LEN];
        stamp.write(&mut buf);
        let mut payload = buf.to_vec();
        payload.extend_from_slice(&[0xAA; 84]);
        assert_eq!(Stamp::read(&payload), Some(stamp));
        assert_eq!(Stamp::read(&payload[..15]), None);
        assert!(now_ns() <= now_ns());
    }

    #[test]
    fn json_payloads_stay_json() {
        let stamp = Stamp {
            sent_ns: 123_456_789,
            publisher: 7,
            seq: 42,
        };
        let mut p = Payload::around(br#"{"id":"cam-1","objects":[]}"#);
        let bytes = p.stamped(stamp).to_vec();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["id"], "cam-1");
        assert_eq!(v["lg"].as_str().unwrap().len(), 32);
        assert_eq!(Stamp::read_any(&bytes), Some(stamp));
        // An empty object gets no dangling comma.
        let mut e = Payload::around(b"{ }");
        let bytes = e.stamped(stamp).to_vec();
        serde_json::from_slice::<serde_json::Value>(&bytes).unwrap();
        assert_eq!(Stamp::read_any(&bytes), Some(stamp));
        // Anything else: the binary stamp in front.
        let mut b = Payload::around(b"[1,2]");
        assert_eq!(b.len(), STAMP_LEN + 5);
        let bytes = b.stamped(stamp).to_vec();
        assert_eq!(&bytes[STAMP_LEN..], b"[1,2]");
        assert_eq!(Stamp::read_any(&bytes), Some(stamp));
        let mut f = Payload::filler(100);
        assert_eq!(f.stamped(stamp).len(), 100);
        assert_eq!(Stamp::read_any(f.stamped(stamp)), Some(stamp));
        // A byte order mark and leading whitespace do not hide a JSON object.
        let mut w = Payload::around(b"\xEF\xBB\xBF \n{\"a\":1}");
        let bytes = w.stamped(stamp).to_vec();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()["a"],
            1
        );
        // A broken JSON stamp is not read as one.
        let mut bad = bytes.clone();
        bad.splice(0..0, b"{\"lg\":\"zz".iter().copied());
        assert_ne!(Stamp::read_any(&bad), Some(stamp));
    }

    #[test]
    fn in_order() {
        let mut t = SeqTrack::default();
        for s in 0..5000 {
            assert_eq!(t.observe(s), Seen::New);
        }
        assert!(t.has_reached(4999) && !t.has_reached(5000));
        assert_eq!((t.out_of_order, t.duplicates), (0, 0));
    }

    #[test]
    fn gaps_late_and_duplicates() {
        let mut t = SeqTrack::default();
        assert_eq!(t.observe(0), Seen::New);
        assert_eq!(t.observe(3), Seen::New); // 1 and 2 missing
        assert_eq!(t.observe(3), Seen::Duplicate);
        assert_eq!(t.observe(0), Seen::Duplicate);
        assert_eq!(t.observe(2), Seen::Late);
        assert_eq!(t.observe(2), Seen::Duplicate);
        assert_eq!(t.observe(1), Seen::Late);
        assert_eq!(t.observe(4), Seen::New);
        assert_eq!((t.out_of_order, t.duplicates), (2, 3));
        // A jump beyond the window forgets it: old numbers count as late, not duplicates.
        assert_eq!(t.observe(10_000), Seen::New);
        assert_eq!(t.observe(4), Seen::Late);
        assert_eq!(t.observe(9_990), Seen::Late);
        assert_eq!(t.observe(9_990), Seen::Duplicate);
        // Bits reused after the window moves on are cleared.
        assert_eq!(t.observe(10_000 + WINDOW - 10), Seen::New);
        assert_eq!(t.observe(10_000 + WINDOW - 11), Seen::Late);
    }
}
