//! The HTTP body decoder on hostile bytes: never panics, gives the same payload, end and error
//! however the stream is split, never returns more than the declared length, and returns
//! exactly the declared length when a length-delimited body ends.
//!
//! Input: one configuration byte, then (for a length-delimited body) a two-byte big-endian
//! length, then the stream. Configuration bit 0: Content-Length or chunked; bit 1: default or
//! small limits; bits 2-7: the piece size (1 to 64) for the split run.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rampart_http_proto::{BodyDecoder, BodyError, BodyEvent, BodyKind, BodyLimits};

/// Payload, then `Ok(true)` once the body ended, `Ok(false)` if it needs more, or the error.
type Outcome = (Vec<u8>, Result<bool, BodyError>);

fn run(kind: BodyKind, limits: BodyLimits, stream: &[u8], piece: usize) -> Outcome {
    let mut decoder = BodyDecoder::new(kind, limits);
    let mut buf = BytesMut::new();
    let mut body = Vec::new();
    for part in stream.chunks(piece.max(1)) {
        buf.extend_from_slice(part);
        loop {
            let remaining = decoder.remaining();
            match decoder.decode(&mut buf) {
                Ok(Some(BodyEvent::Data(data))) => {
                    assert!(!data.is_empty(), "empty Data event");
                    if let Some(r) = remaining {
                        assert!(data.len() as u64 <= r, "more than the declared length");
                    }
                    body.extend_from_slice(&data);
                }
                Ok(Some(BodyEvent::End)) => {
                    assert!(decoder.is_done());
                    assert_eq!(decoder.decode(&mut buf), Ok(None), "End twice");
                    if let BodyKind::Length(n) = kind {
                        assert_eq!(body.len() as u64, n, "length body ended short or long");
                    }
                    return (body, Ok(true));
                }
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(decoder.decode(&mut buf), Err(e), "error not sticky");
                    return (body, Err(e));
                }
            }
        }
    }
    assert!(!decoder.is_done() || (stream.is_empty() && kind == BodyKind::Length(0)));
    (body, Ok(false))
}

fuzz_target!(|data: &[u8]| {
    let Some((&config, rest)) = data.split_first() else {
        return;
    };
    let (kind, stream) = if config & 1 == 0 {
        let Some((len, stream)) = rest.split_first_chunk::<2>() else {
            return;
        };
        (
            BodyKind::Length(u64::from(u16::from_be_bytes(*len))),
            stream,
        )
    } else {
        (BodyKind::Chunked, rest)
    };
    let limits = if config & 2 != 0 {
        BodyLimits {
            max_chunk_line: 12,
            max_trailers: 24,
        }
    } else {
        BodyLimits::default()
    };
    let piece = usize::from(config >> 2) + 1;
    let whole = run(kind, limits, stream, stream.len().max(1));
    assert_eq!(
        run(kind, limits, stream, piece),
        whole,
        "result depends on the split"
    );
});
