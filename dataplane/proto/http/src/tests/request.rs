//! Valid requests: the parsed fields, accessors, keep-alive, pipelining and streaming.

use super::*;
use crate::{Header, Headers, Version};

#[test]
fn simple_get() {
    let head = req(b"GET /index.html?a=1&b=2 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n");
    assert_eq!(head.method, "GET");
    assert_eq!(head.target, "/index.html?a=1&b=2");
    assert_eq!(head.path(), "/index.html");
    assert_eq!(head.query(), Some("a=1&b=2"));
    assert_eq!(head.version, Version::Http11);
    assert_eq!(head.host(), Some("example.com"));
    assert_eq!(head.body, BodyKind::None);
    assert!(head.keep_alive);
    assert!(!head.expects_continue());
    assert_eq!(head.headers.len(), 2);
    assert_eq!(
        head.headers.0[1],
        Header {
            name: "Accept".into(),
            value: b"*/*".to_vec()
        }
    );
}

#[test]
fn no_query() {
    let head = req(b"GET /a/b HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(head.path(), "/a/b");
    assert_eq!(head.query(), None);
    let head = req(b"GET /a? HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(head.path(), "/a");
    assert_eq!(head.query(), Some(""));
}

#[test]
fn field_values_are_trimmed_and_names_kept() {
    let head = req(b"GET / HTTP/1.1\r\nHost:h\r\nX-Mixed-Case: \t a  b \t\r\nX-Empty:\r\nX-Obs: caf\xc3\xa9 \xff\r\n\r\n");
    assert_eq!(head.headers.0[1].name, "X-Mixed-Case");
    assert_eq!(head.headers.get("x-mixed-case"), Some(&b"a  b"[..]));
    assert_eq!(head.headers.get("X-EMPTY"), Some(&b""[..]));
    assert_eq!(head.headers.get("x-obs"), Some(&b"caf\xc3\xa9 \xff"[..]));
    assert_eq!(head.headers.get_str("x-obs"), None, "not UTF-8");
    assert_eq!(head.host(), Some("h"));
}

#[test]
fn headers_accessors() {
    let headers = Headers(vec![
        Header {
            name: "Connection".into(),
            value: b"keep-alive, Upgrade".to_vec(),
        },
        Header {
            name: "x-a".into(),
            value: b"1".to_vec(),
        },
        Header {
            name: "X-A".into(),
            value: b"2".to_vec(),
        },
        Header {
            name: "connection".into(),
            value: b" ,te ,".to_vec(),
        },
    ]);
    assert_eq!(headers.get("X-a"), Some(&b"1"[..]));
    assert_eq!(headers.get_str("x-a"), Some("1"));
    assert_eq!(
        headers.get_all("x-A").collect::<Vec<_>>(),
        [&b"1"[..], b"2"]
    );
    assert_eq!(headers.count("X-A"), 2);
    assert_eq!(headers.count("missing"), 0);
    assert_eq!(headers.get("missing"), None);
    assert!(headers.has_token("connection", "upgrade"));
    assert!(headers.has_token("CONNECTION", "Keep-Alive"));
    assert!(headers.has_token("connection", "TE"));
    assert!(!headers.has_token("connection", "close"));
    assert!(!headers.has_token("connection", "keep"));
    assert_eq!(headers.iter().count(), 4);
    assert_eq!((&headers).into_iter().count(), 4);
    assert_eq!(headers.len(), 4);
    assert!(!headers.is_empty());
    assert!(Headers::default().is_empty());
}

#[test]
fn keep_alive_rules() {
    let cases: &[(&[u8], bool)] = &[
        (b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", true),
        (
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
            false,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, CLOSE\r\n\r\n",
            false,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n",
            true,
        ),
        (b"GET / HTTP/1.0\r\n\r\n", false),
        (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true),
        (
            b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
            false,
        ),
    ];
    for (input, keep_alive) in cases {
        assert_eq!(
            req(input).keep_alive,
            *keep_alive,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn http10_needs_no_host() {
    let head = req(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(head.version, Version::Http10);
    assert_eq!(head.host(), None);
    assert!(head.headers.is_empty());
}

#[test]
fn expect_continue() {
    assert!(
        req(b"PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n")
            .expects_continue()
    );
    assert!(
        !req(b"PUT /x HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
            .expects_continue()
    );
}

#[test]
fn body_kinds() {
    let head = req(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 42\r\n\r\n");
    assert_eq!(head.body, BodyKind::Length(42));
    let head = req(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(head.body, BodyKind::Length(0));
    let head =
        req(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 7, 7\r\nContent-Length: 7\r\n\r\n");
    assert_eq!(head.body, BodyKind::Length(7));
    let head = req(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9999999999999999999\r\n\r\n");
    assert_eq!(head.body, BodyKind::Length(9_999_999_999_999_999_999));
    let head = req(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n");
    assert_eq!(head.body, BodyKind::Chunked);
    let head = req(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: , chunked ,\r\n\r\n");
    assert_eq!(head.body, BodyKind::Chunked);
}

#[test]
fn target_forms() {
    let head = req(b"GET http://example.com/x?y HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_eq!(head.target, "http://example.com/x?y");
    req(b"GET HTTPS://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n");
    let head = req(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    assert_eq!(head.target, "example.com:443");
    req(b"CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n");
    let head = req(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(head.target, "*");
    assert_eq!(head.path(), "*");
    req(b"OPTIONS /x HTTP/1.1\r\nHost: h\r\n\r\n");
    req(b"GET //double/%2F/~user HTTP/1.1\r\nHost: h\r\n\r\n");
    req(b"M-SEARCH! /x HTTP/1.1\r\nHost: h\r\n\r\n");
}

#[test]
fn empty_host_is_allowed() {
    assert_eq!(req(b"GET / HTTP/1.1\r\nHost:\r\n\r\n").host(), Some(""));
}

#[test]
fn leading_empty_lines_are_skipped() {
    let input = b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
    let head = req(input);
    assert_eq!(head.method, "GET");
}

#[test]
fn incomplete_is_none() {
    let input = b"GET / HTTP/1.1\r\nHost: h\r\n\r";
    let mut parser = RequestParser::new(Limits::default());
    for end in 0..=input.len() {
        assert_eq!(parser.parse(&input[..end]), Ok(None), "{end}");
    }
}

#[test]
fn byte_by_byte_matches_whole() {
    let input =
        b"POST /submit HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\nX: y\r\n\r\nhello";
    let whole = RequestParser::new(Limits::default()).parse(input);
    let (head, used) = whole.clone().unwrap().unwrap();
    assert_eq!(used, input.len() - 5);
    assert_eq!(head.body, BodyKind::Length(5));
    assert_eq!(bytewise_request(input, Limits::default()), whole);
}

#[test]
fn pipelined_requests() {
    let stream: &[u8] = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n\
POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\
PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n\
GET /d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let mut buf = BytesMut::from(stream);
    let mut parser = RequestParser::new(Limits::default());
    let mut seen = Vec::new();
    while !buf.is_empty() {
        let (head, used) = parser.parse(&buf).unwrap().unwrap();
        let _ = buf.split_to(used);
        parser.reset();
        let mut decoder = BodyDecoder::new(head.body, BodyLimits::default());
        let mut body = Vec::new();
        loop {
            match decoder.decode(&mut buf).unwrap() {
                Some(BodyEvent::Data(d)) => body.extend_from_slice(&d),
                Some(BodyEvent::End) => break,
                None => panic!("stream ended inside a body"),
            }
        }
        seen.push((head.target, body, head.keep_alive));
    }
    assert_eq!(
        seen,
        [
            ("/a".to_string(), b"".to_vec(), true),
            ("/b".to_string(), b"abc".to_vec(), true),
            ("/c".to_string(), b"hi".to_vec(), true),
            ("/d".to_string(), b"".to_vec(), false),
        ]
    );
}

#[test]
fn parser_is_ready_after_a_head_without_reset() {
    let stream = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut parser = RequestParser::new(Limits::default());
    let (a, used) = parser.parse(stream).unwrap().unwrap();
    let (b, rest) = parser.parse(&stream[used..]).unwrap().unwrap();
    assert_eq!((a.target.as_str(), b.target.as_str()), ("/a", "/b"));
    assert_eq!(used + rest, stream.len());
}

#[test]
fn errors_are_sticky_until_reset() {
    let mut parser = RequestParser::new(Limits::default());
    assert_eq!(parser.parse(b"GET / HTTP/1.1\n"), Err(HeadError::BareLf));
    assert_eq!(
        parser.parse(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"),
        Err(HeadError::BareLf)
    );
    parser.reset();
    assert!(
        parser
            .parse(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            .unwrap()
            .is_some()
    );
}

#[test]
fn head_level_errors_are_sticky_too() {
    let mut parser = RequestParser::new(Limits::default());
    let input = b"GET / HTTP/1.1\r\n\r\n";
    assert_eq!(parser.parse(input), Err(HeadError::MissingHost));
    assert_eq!(parser.parse(input), Err(HeadError::MissingHost));
}

#[test]
fn shrinking_buffer_does_not_panic() {
    let mut parser = RequestParser::new(Limits::default());
    assert_eq!(parser.parse(b"GET / HTTP/1.1\r\nHost: abc"), Ok(None));
    assert_eq!(parser.parse(b"GET"), Ok(None));
    assert!(
        parser
            .parse(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            .unwrap()
            .is_some()
    );
}

#[test]
fn limits_are_inclusive() {
    // Exactly at every limit is accepted.
    let limits = Limits {
        max_request_line: "GET / HTTP/1.1".len(),
        max_field_size: "Host: h".len(),
        max_fields: 1,
        max_head: "GET / HTTP/1.1\r\nHost: h\r\n\r\n".len(),
    };
    let input = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    let got = RequestParser::new(limits).parse(input).unwrap().unwrap();
    assert_eq!(got.1, input.len());
    assert_eq!(bytewise_request(input, limits), Ok(Some(got)));
}

/// The scan is linear: feeding a large head a byte at a time examines each byte a bounded
/// number of times.
#[test]
fn byte_at_a_time_is_linear() {
    let mut input = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
    for i in 0..50 {
        input.extend_from_slice(format!("X-Field-{i}: ").as_bytes());
        input.extend_from_slice(&[b'v'; 1000]);
        input.extend_from_slice(b"\r\n");
    }
    input.extend_from_slice(&[b'z'; 4000]); // an unterminated field line
    assert!(input.len() < Limits::default().max_head);
    let mut parser = RequestParser::new(Limits::default());
    for end in 0..=input.len() {
        assert_eq!(parser.parse(&input[..end]), Ok(None));
    }
    assert!(
        parser.work() <= 3 * input.len(),
        "examined {} bytes for a {}-byte head",
        parser.work(),
        input.len()
    );
    input.extend_from_slice(b": x\r\n\r\n");
    let (head, used) = parser.parse(&input).unwrap().unwrap();
    assert_eq!(used, input.len());
    assert_eq!(head.headers.len(), 52);
}
