//! The HTTP request parser and body decoder on hostile bytes: never panic, give the same head
//! (or error) and the same body however the stream is split, never use more bytes than they
//! were given or than the head limit, and never return more body than the head declared.
//!
//! Input: one configuration byte, then the stream. Bit 0: default or small limits; bits 1-7:
//! where to cut the stream for the split run, as a fraction (0-127 of 127) of its length.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rampart_http_proto::{
    BodyDecoder, BodyError, BodyEvent, BodyKind, BodyLimits, HeadError, Limits, RequestHead,
    RequestParser,
};

fn limits(small: bool) -> (Limits, BodyLimits) {
    if small {
        let head = Limits {
            max_request_line: 64,
            max_field_size: 48,
            max_fields: 4,
            max_head: 256,
        };
        let body = BodyLimits {
            max_chunk_line: 16,
            max_trailers: 32,
        };
        (head, body)
    } else {
        (Limits::default(), BodyLimits::default())
    }
}

/// What one run over the stream saw.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    head: Result<Option<(RequestHead, usize)>, HeadError>,
    body: Vec<u8>,
    /// `Ok(true)`: the body ended; `Ok(false)`: it needs more bytes.
    end: Result<bool, BodyError>,
}

/// Parses the head from the stream given in two pieces cut at `cut`, then decodes the body from
/// the rest, in two pieces cut at the same place if that falls inside the body.
fn run(stream: &[u8], cut: usize, limits: Limits, body_limits: BodyLimits) -> Outcome {
    let mut parser = RequestParser::new(limits);
    let head = match parser.parse(&stream[..cut]) {
        Ok(None) => parser.parse(stream),
        done => done,
    };
    let (kind, used) = match &head {
        Ok(Some((head, used))) => (head.body, *used),
        Err(e) => {
            assert!([400, 414, 501, 505].contains(&e.status()));
            assert!(!e.reason().is_empty());
            return Outcome {
                head,
                body: Vec::new(),
                end: Ok(false),
            };
        }
        Ok(None) => {
            return Outcome {
                head,
                body: Vec::new(),
                end: Ok(false),
            };
        }
    };
    assert!(used <= stream.len(), "used more bytes than given");
    assert!(used <= limits.max_head, "head over the limit");
    assert_ne!(
        kind,
        BodyKind::UntilClose,
        "a request body never runs until close"
    );

    let rest = &stream[used..];
    let body_cut = cut.saturating_sub(used).min(rest.len());
    let mut decoder = BodyDecoder::new(kind, body_limits);
    let mut buf = BytesMut::new();
    let mut body = Vec::new();
    let mut end = Ok(false);
    'pieces: for piece in [&rest[..body_cut], &rest[body_cut..]] {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(BodyEvent::Data(data))) => {
                    assert!(!data.is_empty(), "empty Data event");
                    body.extend_from_slice(&data);
                    if let BodyKind::Length(n) = kind {
                        assert!(body.len() as u64 <= n, "more body than Content-Length");
                    }
                }
                Ok(Some(BodyEvent::End)) => {
                    end = Ok(true);
                    break 'pieces;
                }
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(e.status(), 400);
                    end = Err(e);
                    break 'pieces;
                }
            }
        }
    }
    match (kind, end) {
        (BodyKind::Length(n), Ok(true)) => assert_eq!(body.len() as u64, n),
        (BodyKind::None, end) => assert_eq!(end, Ok(true)),
        _ => {}
    }
    if end == Ok(false) {
        assert_eq!(decoder.eof(), Err(BodyError::Truncated));
    }
    Outcome { head, body, end }
}

fuzz_target!(|data: &[u8]| {
    let Some((&config, stream)) = data.split_first() else {
        return;
    };
    let (limits, body_limits) = limits(config & 1 != 0);
    let cut = stream.len() * usize::from(config >> 1) / 127;
    let whole = run(stream, stream.len(), limits, body_limits);
    assert_eq!(
        run(stream, cut, limits, body_limits),
        whole,
        "result depends on the split"
    );
});
