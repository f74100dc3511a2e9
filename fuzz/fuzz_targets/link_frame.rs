//! The control link's incremental decoders (`FrameDecoder`, `AckDecoder`) on hostile bytes:
//! never panic, never hold more than one header line or one body, give the same result however
//! the stream is split, and whatever they accept re-encodes to bytes that decode the same.
//!
//! Input: one byte choosing the chunk size (1 to 256), then the stream.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_policy::link::{
    Ack, AckDecoder, Frame, FrameDecoder, FrameError, MAX_ACK_LINE, MAX_FRAME_HEADER,
    snapshot_header,
};

/// A small body limit, so that `TooLarge` is reachable within -max_len.
const LIMIT: usize = 1024;

fn frames(stream: &[u8], chunk: usize) -> (Vec<Frame>, Option<FrameError>) {
    let mut dec = FrameDecoder::with_limit(LIMIT);
    let mut out = Vec::new();
    for piece in stream.chunks(chunk) {
        let mut input = piece;
        loop {
            match dec.decode(&mut input) {
                Ok(Some(f)) => out.push(f),
                Ok(None) => {
                    assert!(input.is_empty(), "Ok(None) with input left");
                    break;
                }
                Err(e) => return (out, Some(e)),
            }
            assert!(dec.buffered() <= LIMIT.max(MAX_FRAME_HEADER));
        }
        assert!(dec.buffered() <= LIMIT.max(MAX_FRAME_HEADER));
    }
    (out, None)
}

fn acks(stream: &[u8], chunk: usize) -> (Vec<Ack>, Option<FrameError>) {
    let mut dec = AckDecoder::new();
    let mut out = Vec::new();
    for piece in stream.chunks(chunk) {
        let mut input = piece;
        loop {
            match dec.decode(&mut input) {
                Ok(Some(a)) => out.push(a),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(first) + 1;

    let whole = frames(stream, stream.len().max(1));
    assert_eq!(frames(stream, chunk), whole, "frames depend on the split");
    assert_eq!(frames(stream, 1), whole, "frames depend on the split");
    for frame in &whole.0 {
        let Frame::Snapshot(body) = frame else {
            continue;
        };
        assert!(body.len() <= LIMIT);
        let mut wire = snapshot_header(body.len()).into_bytes();
        assert!(wire.len() <= MAX_FRAME_HEADER);
        wire.extend_from_slice(body);
        assert_eq!(frames(&wire, wire.len()), (vec![frame.clone()], None));
    }

    let whole = acks(stream, stream.len().max(1));
    assert_eq!(acks(stream, chunk), whole, "acks depend on the split");
    for ack in &whole.0 {
        let wire = ack.encode();
        assert!(wire.len() <= MAX_ACK_LINE, "{wire:?}");
        assert_eq!(acks(wire.as_bytes(), wire.len()), (vec![ack.clone()], None));
    }
});
