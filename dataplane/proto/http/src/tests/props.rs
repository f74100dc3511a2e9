//! Proptests: no input panics a parser or the body decoder, and no split of the input changes
//! what they return.

use proptest::prelude::*;

use super::*;

/// Pieces that make up plausible (and implausible) heads.
const HEAD_PIECES: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\n",
    b"POST /upload?x=1 HTTP/1.1\r\n",
    b"OPTIONS * HTTP/1.0\r\n",
    b"CONNECT example.com:443 HTTP/1.1\r\n",
    b"HTTP/1.1 200 OK\r\n",
    b"HTTP/1.0 204 \r\n",
    b"HTTP/1.1 100 Continue\r\n",
    b"Host: example.com\r\n",
    b"Content-Length: 5\r\n",
    b"Content-Length: 5, 5\r\n",
    b"Content-Length: 6\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: gzip\r\n",
    b"Connection: close\r\n",
    b"Expect: 100-continue\r\n",
    b"X-A: b\r\n",
    b"X-Long: 0123456789abcdef0123456789abcdef\r\n",
    b"\r\n",
    b"\r\n",
    b"\r\n",
    b"\n",
    b"\r",
    b" ",
    b"\t",
    b":",
    b"\x00",
    b"\xff",
    b"HTTP/1.1",
    b"HTTP/2.0",
    b"GET",
    b"/",
    b"X",
    b"hello",
];

const START_LINES: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\n",
    b"POST /upload?x=1 HTTP/1.1\r\n",
    b"GET / HTTP/1.0\r\n",
    b"HTTP/1.1 200 OK\r\n",
    b"HTTP/1.0 304 Not Modified\r\n",
];

const FIELD_LINES: &[&[u8]] = &[
    b"Host: example.com\r\n",
    b"Content-Length: 5\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Connection: keep-alive\r\n",
    b"X-A: b\r\n",
    b"X-B:\t c d \r\n",
];

fn head_like() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => (
            prop::sample::select(START_LINES),
            prop::collection::vec(prop::sample::select(FIELD_LINES), 0..6),
            prop::collection::vec(any::<u8>(), 0..8),
        )
            .prop_map(|(start, fields, tail)| [start, &fields.concat(), b"\r\n", &tail].concat()),
        4 => prop::collection::vec(prop::sample::select(HEAD_PIECES), 0..16).prop_map(|v| v.concat()),
        1 => prop::collection::vec(any::<u8>(), 0..256),
    ]
}

fn limits() -> impl Strategy<Value = Limits> {
    prop_oneof![
        Just(Limits::default()),
        (0usize..40, 0usize..40, 0usize..4, 0usize..120).prop_map(|(l, f, n, h)| Limits {
            max_request_line: l,
            max_field_size: f,
            max_fields: n,
            max_head: h,
        }),
    ]
}

fn body_limits() -> impl Strategy<Value = BodyLimits> {
    prop_oneof![
        Just(BodyLimits::default()),
        (0usize..12, 0usize..24).prop_map(|(l, t)| BodyLimits {
            max_chunk_line: l,
            max_trailers: t,
        }),
    ]
}

/// Pieces of chunked bodies, good and bad.
const BODY_PIECES: &[&[u8]] = &[
    b"5\r\nhello\r\n",
    b"1;a=b\r\nx\r\n",
    b"a\r\n0123456789\r\n",
    b"0\r\n",
    b"0\r\n\r\n",
    b"X-T: v\r\n",
    b"\r\n",
    b"\r",
    b"\n",
    b";",
    b" ",
    b"f",
    b"0",
    b"z",
    b"abc",
];

fn body_like() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(prop::sample::select(BODY_PIECES), 0..12).prop_map(|v| v.concat()),
        1 => prop::collection::vec(any::<u8>(), 0..128),
    ]
}

const TRAILERS: &[&[u8]] = &[b"", b"X: y\r\n", b"A: 1\r\nB:\r\n"];

fn kind() -> impl Strategy<Value = BodyKind> {
    prop_oneof![
        Just(BodyKind::None),
        (0u64..64).prop_map(BodyKind::Length),
        Just(BodyKind::Chunked),
        Just(BodyKind::UntilClose),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn parsers_never_panic(input in prop::collection::vec(any::<u8>(), 0..2048), limits in limits()) {
        let _ = RequestParser::new(limits).parse(&input);
        for method in ["GET", "HEAD", "CONNECT"] {
            let _ = ResponseParser::new(limits).parse(&input, method);
        }
    }

    #[test]
    fn request_split_invariant(input in head_like(), limits in limits(), cut in any::<prop::sample::Index>()) {
        let whole = RequestParser::new(limits).parse(&input);
        if let Ok(Some((_, used))) = &whole {
            prop_assert!(*used <= input.len());
            prop_assert!(*used <= limits.max_head);
        }
        prop_assert_eq!(&bytewise_request(&input, limits), &whole);
        // Two pieces.
        let cut = cut.index(input.len() + 1);
        let mut parser = RequestParser::new(limits);
        let first = parser.parse(&input[..cut]);
        let two = match first {
            Ok(None) => parser.parse(&input),
            done => done,
        };
        prop_assert_eq!(&two, &whole);
        if let Err(e) = whole {
            prop_assert!([400, 414, 501, 505].contains(&e.status()));
        }
    }

    #[test]
    fn response_split_invariant(input in head_like(), limits in limits(), head_method in any::<bool>()) {
        let method = if head_method { "HEAD" } else { "GET" };
        let whole = ResponseParser::new(limits).parse(&input, method);
        prop_assert_eq!(&bytewise_response(&input, method, limits), &whole);
        if let Ok(Some((head, _))) = whole {
            if head_method || matches!(head.status, 100..=199 | 204 | 304) {
                prop_assert_eq!(head.body, BodyKind::None);
            }
            if head.body == BodyKind::UntilClose {
                prop_assert!(!head.keep_alive);
            }
        }
    }

    #[test]
    fn body_split_invariant(
        input in body_like(),
        kind in kind(),
        limits in body_limits(),
        cuts in prop::collection::vec(0usize..160, 0..6),
    ) {
        let mut cuts = cuts;
        cuts.sort_unstable();
        let whole = decode_pieces(kind, limits, &input, &[]);
        prop_assert_eq!(&decode_pieces(kind, limits, &input, &cuts), &whole);
        if let (BodyKind::Length(n), Ok(true)) = (kind, &whole.outcome) {
            prop_assert_eq!(whole.data.len() as u64, n);
        }
    }

    #[test]
    fn chunked_round_trip(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..64), 0..8),
        trailers in prop::sample::select(TRAILERS),
        cuts in prop::collection::vec(0usize..600, 0..8),
    ) {
        let slices: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
        let mut wire = chunked(&slices, trailers);
        wire.extend_from_slice(b"GET");
        let mut cuts = cuts;
        cuts.sort_unstable();
        let got = decode_pieces(BodyKind::Chunked, BodyLimits::default(), &wire, &cuts);
        prop_assert_eq!(got, Decoded { data: chunks.concat(), outcome: Ok(true), left: b"GET".to_vec() });
    }
}
