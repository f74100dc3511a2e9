//! Unit tests: valid requests and responses, every head and body error with its label and
//! status, request-smuggling classics, response framing, streaming (byte by byte, every split
//! point, pipelining), the linear-work bound, and proptests for panics and split invariance.

use bytes::BytesMut;

use crate::{
    BodyDecoder, BodyError, BodyEvent, BodyKind, BodyLimits, HeadError, Limits, RequestHead,
    RequestParser, ResponseHead, ResponseParser,
};

mod body;
mod errors;
mod props;
mod request;
mod response;
mod smuggling;

/// Parses one whole request head that fills `input` exactly.
fn req(input: &[u8]) -> RequestHead {
    let (head, used) = RequestParser::new(Limits::default())
        .parse(input)
        .unwrap_or_else(|e| panic!("{e} parsing {:?}", String::from_utf8_lossy(input)))
        .expect("a whole head");
    assert_eq!(used, input.len(), "head length");
    head
}

/// Parses `input` with `limits`, expecting an error, and checks that feeding it byte by byte
/// gives the same error.
fn req_err_with(input: &[u8], limits: Limits) -> HeadError {
    let whole = RequestParser::new(limits).parse(input);
    assert_eq!(
        bytewise_request(input, limits),
        whole,
        "split changed the result"
    );
    match whole {
        Err(e) => e,
        other => panic!(
            "expected an error for {:?}, got {other:?}",
            String::from_utf8_lossy(input)
        ),
    }
}

fn req_err(input: &[u8]) -> HeadError {
    req_err_with(input, Limits::default())
}

/// Feeds every prefix of `input` to one parser, as a connection receiving a byte at a time.
fn bytewise_request(
    input: &[u8],
    limits: Limits,
) -> Result<Option<(RequestHead, usize)>, HeadError> {
    let mut parser = RequestParser::new(limits);
    for end in 0..=input.len() {
        match parser.parse(&input[..end]) {
            Ok(None) => {}
            done => return done,
        }
    }
    Ok(None)
}

fn bytewise_response(
    input: &[u8],
    method: &str,
    limits: Limits,
) -> Result<Option<(ResponseHead, usize)>, HeadError> {
    let mut parser = ResponseParser::new(limits);
    for end in 0..=input.len() {
        match parser.parse(&input[..end], method) {
            Ok(None) => {}
            done => return done,
        }
    }
    Ok(None)
}

/// Parses one whole response head that fills `input` exactly.
fn resp(input: &[u8], method: &str) -> ResponseHead {
    let (head, used) = ResponseParser::new(Limits::default())
        .parse(input, method)
        .unwrap_or_else(|e| panic!("{e} parsing {:?}", String::from_utf8_lossy(input)))
        .expect("a whole head");
    assert_eq!(used, input.len(), "head length");
    assert_eq!(
        bytewise_response(input, method, Limits::default()),
        Ok(Some((head.clone(), used)))
    );
    head
}

fn resp_err(input: &[u8], method: &str) -> HeadError {
    let whole = ResponseParser::new(Limits::default()).parse(input, method);
    assert_eq!(
        bytewise_response(input, method, Limits::default()),
        whole,
        "split changed the result"
    );
    match whole {
        Err(e) => e,
        other => panic!(
            "expected an error for {:?}, got {other:?}",
            String::from_utf8_lossy(input)
        ),
    }
}

/// What decoding a body from a stream gave: the payload, then `Ok(true)` if `End` came,
/// `Ok(false)` if more bytes were needed, or the error; and after `End`, the bytes that follow
/// the body (those left in the buffer and those not yet fed).
#[derive(Debug, PartialEq, Eq)]
struct Decoded {
    data: Vec<u8>,
    outcome: Result<bool, BodyError>,
    left: Vec<u8>,
}

/// Decodes a body of `kind` from `input` fed in pieces cut at `cuts` (sorted offsets).
fn decode_pieces(kind: BodyKind, limits: BodyLimits, input: &[u8], cuts: &[usize]) -> Decoded {
    let mut decoder = BodyDecoder::new(kind, limits);
    let mut buf = BytesMut::new();
    let mut data = Vec::new();
    let mut fed = 0;
    let ends = cuts
        .iter()
        .copied()
        .filter(|&c| c <= input.len())
        .chain([input.len()]);
    for end in ends {
        if end < fed {
            continue;
        }
        buf.extend_from_slice(&input[fed..end]);
        fed = end;
        loop {
            let remaining_before = decoder.remaining();
            match decoder.decode(&mut buf) {
                Ok(Some(BodyEvent::Data(d))) => {
                    assert!(!d.is_empty(), "empty Data event");
                    if let Some(r) = remaining_before {
                        assert!(d.len() as u64 <= r, "more data than declared");
                    }
                    data.extend_from_slice(&d);
                }
                Ok(Some(BodyEvent::End)) => {
                    assert!(decoder.is_done());
                    assert_eq!(decoder.decode(&mut buf), Ok(None), "End returned twice");
                    let mut left = buf.to_vec();
                    left.extend_from_slice(&input[fed..]);
                    return Decoded {
                        data,
                        outcome: Ok(true),
                        left,
                    };
                }
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(decoder.decode(&mut buf), Err(e), "error not sticky");
                    return Decoded {
                        data,
                        outcome: Err(e),
                        left: Vec::new(),
                    };
                }
            }
        }
    }
    Decoded {
        data,
        outcome: Ok(false),
        left: Vec::new(),
    }
}

fn decode_whole(kind: BodyKind, input: &[u8]) -> Decoded {
    decode_pieces(kind, BodyLimits::default(), input, &[])
}

/// Encodes `chunks` as a chunked body with `trailers` (each a whole field line with CRLF).
fn chunked(chunks: &[&[u8]], trailers: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for chunk in chunks {
        crate::encode_chunk_header(chunk.len(), &mut out);
        out.extend_from_slice(chunk);
        out.extend_from_slice(crate::CHUNK_END);
    }
    out.extend_from_slice(b"0\r\n");
    out.extend_from_slice(trailers);
    out.extend_from_slice(b"\r\n");
    out.to_vec()
}
