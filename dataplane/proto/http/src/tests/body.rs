//! The body decoder: every kind, every error, every split point, and the chunk encoder.

use bytes::Bytes;

use super::*;
use crate::{CHUNK_END, LAST_CHUNK, encode_chunk_header};

/// Every two-piece split of `input` gives the same result as the whole, and so does a byte at
/// a time.
fn all_splits(kind: BodyKind, limits: BodyLimits, input: &[u8]) -> Decoded {
    let whole = decode_pieces(kind, limits, input, &[]);
    for cut in 0..=input.len() {
        assert_eq!(
            decode_pieces(kind, limits, input, &[cut]),
            whole,
            "split at {cut} of {:?}",
            String::from_utf8_lossy(input)
        );
    }
    let every: Vec<usize> = (0..=input.len()).collect();
    assert_eq!(
        decode_pieces(kind, limits, input, &every),
        whole,
        "byte at a time"
    );
    whole
}

#[test]
fn none_ends_at_once() {
    let mut decoder = BodyDecoder::new(BodyKind::None, BodyLimits::default());
    assert!(decoder.is_done());
    let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]);
    assert_eq!(decoder.decode(&mut buf), Ok(Some(BodyEvent::End)));
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    assert_eq!(&buf[..], b"GET / HTTP/1.1\r\n");
    assert_eq!(decoder.eof(), Ok(()));
    assert_eq!(decoder.remaining(), None);
    assert_eq!(decoder.kind(), BodyKind::None);
}

#[test]
fn zero_length_ends_at_once() {
    let mut decoder = BodyDecoder::new(BodyKind::Length(0), BodyLimits::default());
    assert_eq!(decoder.remaining(), Some(0));
    assert_eq!(
        decoder.decode(&mut BytesMut::new()),
        Ok(Some(BodyEvent::End))
    );
}

#[test]
fn length() {
    let got = all_splits(
        BodyKind::Length(5),
        BodyLimits::default(),
        b"helloGET /next",
    );
    assert_eq!(
        got,
        Decoded {
            data: b"hello".to_vec(),
            outcome: Ok(true),
            left: b"GET /next".to_vec()
        }
    );
}

#[test]
fn length_events_and_remaining() {
    let mut decoder = BodyDecoder::new(BodyKind::Length(5), BodyLimits::default());
    let mut buf = BytesMut::from(&b"hel"[..]);
    assert_eq!(decoder.remaining(), Some(5));
    assert_eq!(
        decoder.decode(&mut buf),
        Ok(Some(BodyEvent::Data(Bytes::from_static(b"hel"))))
    );
    assert_eq!(decoder.remaining(), Some(2));
    assert!(!decoder.is_done());
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    buf.extend_from_slice(b"lo!");
    assert_eq!(
        decoder.decode(&mut buf),
        Ok(Some(BodyEvent::Data(Bytes::from_static(b"lo"))))
    );
    assert!(decoder.is_done());
    assert_eq!(decoder.decode(&mut buf), Ok(Some(BodyEvent::End)));
    assert_eq!(&buf[..], b"!");
}

#[test]
fn length_truncated() {
    let mut decoder = BodyDecoder::new(BodyKind::Length(5), BodyLimits::default());
    let mut buf = BytesMut::from(&b"abc"[..]);
    assert!(matches!(
        decoder.decode(&mut buf),
        Ok(Some(BodyEvent::Data(_)))
    ));
    assert_eq!(decoder.eof(), Err(BodyError::Truncated));
    assert_eq!(decoder.decode(&mut buf), Err(BodyError::Truncated));
    assert_eq!(BodyError::Truncated.reason(), "truncated");
    assert_eq!(BodyError::Truncated.status(), 400);
}

#[test]
fn until_close() {
    let mut decoder = BodyDecoder::new(BodyKind::UntilClose, BodyLimits::default());
    let mut buf = BytesMut::new();
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    buf.extend_from_slice(b"some");
    assert_eq!(
        decoder.decode(&mut buf),
        Ok(Some(BodyEvent::Data(Bytes::from_static(b"some"))))
    );
    buf.extend_from_slice(b" more");
    assert!(!decoder.is_done());
    assert_eq!(decoder.eof(), Ok(()));
    assert!(decoder.is_done());
    assert_eq!(
        decoder.decode(&mut buf),
        Ok(Some(BodyEvent::Data(Bytes::from_static(b" more"))))
    );
    assert_eq!(decoder.decode(&mut buf), Ok(Some(BodyEvent::End)));
    assert_eq!(decoder.decode(&mut buf), Ok(None));
}

#[test]
fn chunked_every_split() {
    let body = b"5\r\nhello\r\n1;name=value;x=\"q s\"\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\nY: \r\n\r\nNEXT";
    let got = all_splits(BodyKind::Chunked, BodyLimits::default(), body);
    assert_eq!(
        got,
        Decoded {
            data: b"hello 0123456789".to_vec(),
            outcome: Ok(true),
            left: b"NEXT".to_vec()
        }
    );
}

#[test]
fn chunked_hex_sizes() {
    let mut body = b"1a\r\n".to_vec();
    body.extend_from_slice(&[b'x'; 26]);
    body.extend_from_slice(b"\r\n00000000000000A\r\n");
    body.extend_from_slice(&[b'y'; 10]);
    body.extend_from_slice(b"\r\n000\r\n\r\n");
    let got = all_splits(BodyKind::Chunked, BodyLimits::default(), &body);
    assert_eq!(got.data.len(), 36);
    assert_eq!(got.outcome, Ok(true));
}

#[test]
fn chunked_data_events_stay_within_the_chunk() {
    let mut decoder = BodyDecoder::new(BodyKind::Chunked, BodyLimits::default());
    let mut buf = BytesMut::from(&b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"[..]);
    let mut events = Vec::new();
    while let Some(event) = decoder.decode(&mut buf).unwrap() {
        events.push(event);
    }
    assert_eq!(
        events,
        [
            BodyEvent::Data(Bytes::from_static(b"abc")),
            BodyEvent::Data(Bytes::from_static(b"de")),
            BodyEvent::End,
        ]
    );
    assert!(buf.is_empty());
    assert_eq!(decoder.eof(), Ok(()));
    assert_eq!(decoder.remaining(), None);
}

#[test]
fn chunked_truncated() {
    for body in [
        &b""[..],
        b"5",
        b"5\r\nhel",
        b"5\r\nhello",
        b"5\r\nhello\r\n",
        b"0\r\n",
        b"0\r\nX: y\r\n",
    ] {
        let mut decoder = BodyDecoder::new(BodyKind::Chunked, BodyLimits::default());
        let mut buf = BytesMut::from(body);
        while let Some(event) = decoder.decode(&mut buf).unwrap() {
            assert!(matches!(event, BodyEvent::Data(_)));
        }
        assert!(!decoder.is_done());
        assert_eq!(decoder.eof(), Err(BodyError::Truncated), "{body:?}");
    }
}

fn chunked_err(body: &[u8], limits: BodyLimits) -> BodyError {
    match all_splits(BodyKind::Chunked, limits, body).outcome {
        Err(e) => e,
        other => panic!(
            "expected an error for {:?}, got {other:?}",
            String::from_utf8_lossy(body)
        ),
    }
}

#[test]
fn every_body_error() {
    let d = BodyLimits::default();
    let cases: &[(&[u8], BodyLimits, BodyError, &str)] = &[
        (b"x\r\n", d, BodyError::BadChunkSize, "bad_chunk_size"),
        (b"\r\n", d, BodyError::BadChunkSize, "bad_chunk_size"),
        (b";ext\r\n", d, BodyError::BadChunkSize, "bad_chunk_size"),
        (b"5x\r\n", d, BodyError::BadChunkSize, "bad_chunk_size"),
        (b"5 x\r\n", d, BodyError::BadChunkSize, "bad_chunk_size"),
        (b"5 \r\n", d, BodyError::BadChunkSize, "bad_chunk_size"),
        (
            b"00000000000000001\r\n",
            d,
            BodyError::BadChunkSize,
            "bad_chunk_size",
        ),
        (
            b"ffffffffffffffff0\r\n",
            d,
            BodyError::BadChunkSize,
            "bad_chunk_size",
        ),
        (
            b"5;aaaaaaaaaa\r\n",
            BodyLimits {
                max_chunk_line: 8,
                ..d
            },
            BodyError::ChunkLineTooLong,
            "chunk_line_too_long",
        ),
        (
            b"123456789\r\n",
            BodyLimits {
                max_chunk_line: 8,
                ..d
            },
            BodyError::ChunkLineTooLong,
            "chunk_line_too_long",
        ),
        (
            b"5;a=\x01\r\n",
            d,
            BodyError::BadChunkExtension,
            "bad_chunk_extension",
        ),
        (
            b"5;a=\x7f\r\n",
            d,
            BodyError::BadChunkExtension,
            "bad_chunk_extension",
        ),
        (
            b"2\r\nabc\r\n",
            d,
            BodyError::MissingChunkCrlf,
            "missing_chunk_crlf",
        ),
        (
            b"2\r\nab\x00",
            d,
            BodyError::MissingChunkCrlf,
            "missing_chunk_crlf",
        ),
        (b"5\nhello", d, BodyError::BareLf, "bare_lf"),
        (b"5;e\n", d, BodyError::BareLf, "bare_lf"),
        (b"2\r\nab\n", d, BodyError::BareLf, "bare_lf"),
        (b"0\r\n\n", d, BodyError::BareLf, "bare_lf"),
        (b"5\rx", d, BodyError::BareCr, "bare_cr"),
        (b"2\r\nab\rx", d, BodyError::BareCr, "bare_cr"),
        (b"0\r\nX: y\rz\r\n\r\n", d, BodyError::BareCr, "bare_cr"),
        (
            b"0\r\nX: 0123456789\r\n\r\n",
            BodyLimits {
                max_trailers: 10,
                ..d
            },
            BodyError::TrailerTooLarge,
            "trailer_too_large",
        ),
        (
            b"0\r\nX: 01234\r\nY: 0\r\n\r\n",
            BodyLimits {
                max_trailers: 12,
                ..d
            },
            BodyError::TrailerTooLarge,
            "trailer_too_large",
        ),
        (
            b"0\r\nno colon\r\n\r\n",
            d,
            BodyError::BadTrailer,
            "bad_trailer",
        ),
        (
            b"0\r\nX: y\r\n folded\r\n\r\n",
            d,
            BodyError::BadTrailer,
            "bad_trailer",
        ),
        (
            b"0\r\nX : y\r\n\r\n",
            d,
            BodyError::BadTrailer,
            "bad_trailer",
        ),
        (
            b"0\r\nX: \x00\r\n\r\n",
            d,
            BodyError::BadTrailer,
            "bad_trailer",
        ),
    ];
    for (body, limits, expected, reason) in cases {
        let e = chunked_err(body, *limits);
        assert_eq!(e, *expected, "{:?}", String::from_utf8_lossy(body));
        assert_eq!(e.reason(), *reason);
        assert_eq!(e.status(), 400);
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn limits_fire_on_incomplete_input() {
    let limits = BodyLimits {
        max_chunk_line: 16,
        max_trailers: 16,
    };
    let mut decoder = BodyDecoder::new(BodyKind::Chunked, limits);
    let mut buf = BytesMut::from(&b"5;aaaaaaaaaaaaaa"[..]);
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    buf.extend_from_slice(b"a");
    assert_eq!(decoder.decode(&mut buf), Err(BodyError::ChunkLineTooLong));

    let mut decoder = BodyDecoder::new(BodyKind::Chunked, limits);
    let mut buf = BytesMut::from(&b"0\r\nX: 0123456789abc"[..]);
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    buf.extend_from_slice(b"d");
    assert_eq!(decoder.decode(&mut buf), Err(BodyError::TrailerTooLarge));
}

#[test]
fn trailer_limit_is_inclusive() {
    let limits = BodyLimits {
        max_trailers: "X: 01\r\n".len(),
        ..BodyLimits::default()
    };
    let got = all_splits(BodyKind::Chunked, limits, b"0\r\nX: 01\r\n\r\n");
    assert_eq!(got.outcome, Ok(true));
}

#[test]
fn encode_chunk_header_writes_hex() {
    let mut dst = BytesMut::new();
    for (len, expected) in [
        (1, &b"1\r\n"[..]),
        (10, b"a\r\n"),
        (255, b"ff\r\n"),
        (4096, b"1000\r\n"),
        (0x1234_5678, b"12345678\r\n"),
    ] {
        dst.clear();
        encode_chunk_header(len, &mut dst);
        assert_eq!(&dst[..], expected);
    }
    dst.clear();
    encode_chunk_header(usize::MAX, &mut dst);
    assert_eq!(dst.len(), 2 * std::mem::size_of::<usize>() + 2);
    assert_eq!(CHUNK_END, b"\r\n");
    assert_eq!(LAST_CHUNK, b"0\r\n\r\n");
}

#[test]
fn encoded_body_decodes() {
    let chunks: [&[u8]; 3] = [b"first", &[0u8; 300], b"\r\n0\r\n\r\n"];
    let wire = chunked(&chunks, b"Checksum: abc\r\n");
    let got = all_splits(BodyKind::Chunked, BodyLimits::default(), &wire);
    assert_eq!(got.data, chunks.concat());
    assert_eq!(got.outcome, Ok(true));
    assert!(got.left.is_empty());
}

/// The payload comes out as slices of the read buffer, not copies.
#[test]
fn data_is_zero_copy() {
    let mut buf = BytesMut::with_capacity(64);
    buf.extend_from_slice(b"5\r\nhello\r\n0\r\n\r\n");
    let payload_at = buf.as_ptr() as usize + 3;
    let mut decoder = BodyDecoder::new(BodyKind::Chunked, BodyLimits::default());
    let Ok(Some(BodyEvent::Data(data))) = decoder.decode(&mut buf) else {
        panic!("expected data");
    };
    assert_eq!(data.as_ptr() as usize, payload_at);
}
