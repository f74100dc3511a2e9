//! Proptests: splitting never changes the outcome, masked frames round-trip, arbitrary bytes
//! never panic.

use bytes::BytesMut;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use super::{Joined, decode_all, decode_chunked, join};
use crate::{Decoder, DecoderLimits, Event, OpCode, encode_frame, encode_masked};

/// A fragment's payload, an optional Ping (true) or Pong (false) sent after it, and its mask.
type Fragment = (Vec<u8>, Option<(bool, Vec<u8>)>, [u8; 4]);

fn fragment() -> impl Strategy<Value = Fragment> {
    (
        vec(any::<u8>(), 0..300),
        option::of((any::<bool>(), vec(any::<u8>(), 0..=125))),
        any::<[u8; 4]>(),
    )
}

fn message() -> impl Strategy<Value = (bool, Vec<Fragment>)> {
    (any::<bool>(), vec(fragment(), 1..4))
}

/// Encodes messages as masked client frames; returns the wire bytes and the joined events a
/// decoder must produce.
fn build(messages: &[(bool, Vec<Fragment>)]) -> (Vec<u8>, Vec<Joined>) {
    let mut wire = BytesMut::new();
    let mut expected = Vec::new();
    for (text, fragments) in messages {
        let mut data = Vec::new();
        let mut after = Vec::new();
        for (i, (payload, control, mask)) in fragments.iter().enumerate() {
            let last = i + 1 == fragments.len();
            let opcode = match (i, text) {
                (0, true) => OpCode::Text,
                (0, false) => OpCode::Binary,
                _ => OpCode::Continuation,
            };
            encode_masked(&mut wire, opcode, last, payload, *mask);
            data.extend_from_slice(payload);
            if let Some((ping, body)) = control {
                let op = if *ping { OpCode::Ping } else { OpCode::Pong };
                encode_masked(&mut wire, op, true, body, *mask);
                let ev = if *ping {
                    Joined::Ping(body.clone())
                } else {
                    Joined::Pong(body.clone())
                };
                if last {
                    after.push(ev);
                } else {
                    expected.push(ev);
                }
            }
        }
        expected.push(Joined::Message { text: *text, data });
        expected.extend(after);
    }
    (wire.to_vec(), expected)
}

fn limits(require_mask: bool, small: bool) -> DecoderLimits {
    DecoderLimits {
        max_frame: if small { 64 } else { 16 << 20 },
        require_mask,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A stream of fragmented messages with control frames between fragments decodes to the same
    /// messages whole, byte by byte, and in any chunk size.
    #[test]
    fn split_does_not_matter(messages in vec(message(), 1..5), chunk in 2usize..64) {
        let (wire, expected) = build(&messages);
        let want = (expected, None, None);
        let l = DecoderLimits::default();
        prop_assert_eq!(decode_chunked(l, &wire, wire.len()), want.clone());
        prop_assert_eq!(decode_chunked(l, &wire, 1), want.clone());
        prop_assert_eq!(decode_chunked(l, &wire, chunk), want);
    }

    /// A masked frame decodes to its payload on the server; an unmasked one on the client side.
    #[test]
    fn masked_round_trip(
        binary: bool,
        fin: bool,
        payload in vec(any::<u8>(), 0..70_000),
        mask: [u8; 4],
    ) {
        let opcode = if binary { OpCode::Binary } else { OpCode::Text };
        let mut wire = BytesMut::new();
        encode_masked(&mut wire, opcode, fin, &payload, mask);
        let (events, err) = decode_all(&mut Decoder::new(DecoderLimits::default()), &wire);
        prop_assert_eq!(err, None);
        let (joined, partial, _) = join(&events, None);
        let text = !binary;
        if fin {
            prop_assert_eq!(joined, vec![Joined::Message { text, data: payload }]);
            prop_assert_eq!(partial, None);
        } else {
            prop_assert!(joined.is_empty());
            let data = if payload.is_empty() { None } else { Some((text, payload)) };
            prop_assert_eq!(partial, data);
        }
    }

    #[test]
    fn control_round_trip(kind in 0u8..3, payload in vec(any::<u8>(), 0..=123), mask: [u8; 4]) {
        let mut wire = BytesMut::new();
        let expected = match kind {
            0 => {
                encode_masked(&mut wire, OpCode::Ping, true, &payload, mask);
                Event::Ping(payload.clone().into())
            }
            1 => {
                encode_masked(&mut wire, OpCode::Pong, true, &payload, mask);
                Event::Pong(payload.clone().into())
            }
            _ => {
                let reason: String = payload.iter().map(|&b| char::from(b'a' + b % 26)).collect();
                crate::encode_close_masked(&mut wire, 3001, &reason, mask);
                Event::Close { code: Some(3001), reason }
            }
        };
        let (events, err) = decode_all(&mut Decoder::new(DecoderLimits::default()), &wire);
        prop_assert_eq!(err, None);
        prop_assert_eq!(events, vec![expected]);
    }

    #[test]
    fn unmasked_round_trip(payload in vec(any::<u8>(), 0..70_000)) {
        let mut wire = BytesMut::new();
        encode_frame(&mut wire, OpCode::Binary, &payload);
        let (events, err) = decode_all(&mut Decoder::new(limits(false, false)), &wire);
        prop_assert_eq!(err, None);
        prop_assert_eq!(
            join(&events, None).0,
            vec![Joined::Message { text: false, data: payload }]
        );
    }

    /// Arbitrary bytes never panic, and the outcome does not depend on how they are split.
    #[test]
    fn arbitrary_bytes(
        bytes in vec(any::<u8>(), 0..256),
        chunk in 1usize..16,
        require_mask: bool,
        small: bool,
    ) {
        let l = limits(require_mask, small);
        let whole = decode_chunked(l, &bytes, bytes.len());
        prop_assert_eq!(decode_chunked(l, &bytes, chunk), whole);
    }

    /// A valid stream with one byte changed: same outcome whole or split.
    #[test]
    fn corrupted_stream(
        messages in vec(message(), 1..4),
        at: prop::sample::Index,
        xor in 1u8..,
        chunk in 1usize..16,
        small: bool,
    ) {
        let (mut wire, _) = build(&messages);
        let i = at.index(wire.len());
        wire[i] ^= xor;
        let l = limits(true, small);
        let whole = decode_chunked(l, &wire, wire.len());
        prop_assert_eq!(decode_chunked(l, &wire, chunk), whole);
    }
}
