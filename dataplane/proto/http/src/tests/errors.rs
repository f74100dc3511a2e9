//! Every head error with a concrete input, its label and its status code; and the limits on
//! incomplete input.

use super::*;

const H: &str = "Host: h\r\n";

/// `GET / HTTP/1.1`, Host, then `fields`, then the empty line.
fn with_fields(fields: &str) -> Vec<u8> {
    format!("GET / HTTP/1.1\r\n{H}{fields}\r\n").into_bytes()
}

/// A POST with Host and `fields`.
fn post(fields: &str) -> Vec<u8> {
    format!("POST / HTTP/1.1\r\n{H}{fields}\r\n").into_bytes()
}

fn check(e: HeadError, reason: &str, status: u16) {
    assert_eq!(e.reason(), reason, "{e:?}");
    assert_eq!(e.status(), status, "{e:?}");
    assert!(!e.to_string().is_empty());
}

#[test]
fn request_line_too_long() {
    let long = format!("GET /{} HTTP/1.1\r\n{H}\r\n", "a".repeat(9000));
    check(req_err(long.as_bytes()), "request_line_too_long", 414);
    // Unterminated: an error as soon as the line passes the limit.
    let partial = format!("GET /{}", "a".repeat(8200));
    let mut parser = RequestParser::new(Limits::default());
    assert_eq!(parser.parse(&partial.as_bytes()[..8192]), Ok(None));
    assert_eq!(
        parser.parse(&partial.as_bytes()[..8193]),
        Err(HeadError::RequestLineTooLong)
    );
}

#[test]
fn field_too_long() {
    let input = with_fields(&format!("X-Long: {}\r\n", "v".repeat(8190)));
    check(req_err(&input), "field_too_long", 400);
    let partial = format!("GET / HTTP/1.1\r\nX: {}", "v".repeat(9000));
    assert_eq!(
        RequestParser::new(Limits::default()).parse(partial.as_bytes()),
        Err(HeadError::FieldTooLong)
    );
}

#[test]
fn too_many_fields() {
    let fields: String = (0..100).map(|i| format!("X-{i}: v\r\n")).collect();
    check(req_err(&with_fields(&fields)), "too_many_fields", 400);
    // 99 + Host = 100 fields is fine.
    let fields: String = (0..99).map(|i| format!("X-{i}: v\r\n")).collect();
    assert_eq!(req(&with_fields(&fields)).headers.len(), 100);
    // Unterminated: the first byte of a 101st field line is enough.
    let fields: String = (0..100).map(|i| format!("X-{i}: v\r\n")).collect();
    let partial = format!("GET / HTTP/1.1\r\n{fields}X");
    assert_eq!(
        RequestParser::new(Limits::default()).parse(partial.as_bytes()),
        Err(HeadError::TooManyFields)
    );
}

#[test]
fn head_too_large() {
    let fields: String = (0..10)
        .map(|i| format!("X-{i}: {}\r\n", "v".repeat(8000)))
        .collect();
    check(req_err(&with_fields(&fields)), "head_too_large", 400);
    let limits = Limits {
        max_head: 30,
        ..Limits::default()
    };
    assert_eq!(
        req_err_with(
            b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
            Limits {
                max_head: 26,
                ..limits
            }
        ),
        HeadError::HeadTooLarge
    );
    // Unterminated.
    assert_eq!(
        RequestParser::new(limits).parse(b"GET / HTTP/1.1\r\nHost: abcdefghijklmn"),
        Err(HeadError::HeadTooLarge)
    );
}

#[test]
fn bad_request_line() {
    for input in [
        &b"GET /\r\n\r\n"[..],
        b"GET\r\n\r\n",
        b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /  HTTP/1.1\r\nHost: h\r\n\r\n",
        b" GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1 \r\nHost: h\r\n\r\n",
        // Only two empty lines are skipped before the request line.
        b"\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"\r\n\r\n\r\n",
    ] {
        let e = req_err(input);
        assert_eq!(
            e,
            HeadError::BadRequestLine,
            "{:?}",
            String::from_utf8_lossy(input)
        );
        check(e, "bad_request_line", 400);
    }
}

#[test]
fn bad_method() {
    for input in [
        &b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n"[..],
        b"G\x00T / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET\t/ HTTP/1.1 x\r\nHost: h\r\n\r\n",
        b"G\xc3\xa9T / HTTP/1.1\r\nHost: h\r\n\r\n",
    ] {
        let e = req_err(input);
        assert_eq!(
            e,
            HeadError::BadMethod,
            "{:?}",
            String::from_utf8_lossy(input)
        );
        check(e, "bad_method", 400);
    }
}

#[test]
fn bad_target() {
    for input in [
        &b"GET a HTTP/1.1\r\nHost: h\r\n\r\n"[..],
        b"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /\xff HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET * HTTP/1.1\r\nHost: h\r\n\r\n",
        b"CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"CONNECT example.com HTTP/1.1\r\nHost: h\r\n\r\n",
        b"CONNECT example.com:99999 HTTP/1.1\r\nHost: h\r\n\r\n",
        b"CONNECT user@example.com:443 HTTP/1.1\r\nHost: h\r\n\r\n",
        b"CONNECT :443 HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET example.com:443 HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET http:// HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET ftp://h/x HTTP/1.1\r\nHost: h\r\n\r\n",
    ] {
        let e = req_err(input);
        assert_eq!(
            e,
            HeadError::BadTarget,
            "{:?}",
            String::from_utf8_lossy(input)
        );
        check(e, "bad_target", 400);
    }
}

#[test]
fn bad_version() {
    for input in [
        &b"GET / HTTP/1.1x\r\nHost: h\r\n\r\n"[..],
        b"GET / http/1.1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/2\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.10\r\nHost: h\r\n\r\n",
        b"GET / HTTP/a.b\r\nHost: h\r\n\r\n",
    ] {
        let e = req_err(input);
        assert_eq!(
            e,
            HeadError::BadVersion,
            "{:?}",
            String::from_utf8_lossy(input)
        );
        check(e, "bad_version", 400);
    }
}

#[test]
fn unsupported_version() {
    for input in [
        &b"GET / HTTP/2.0\r\nHost: h\r\n\r\n"[..],
        b"GET / HTTP/1.2\r\nHost: h\r\n\r\n",
        b"GET / HTTP/0.9\r\n\r\n",
    ] {
        let e = req_err(input);
        assert_eq!(e, HeadError::UnsupportedVersion);
        check(e, "unsupported_version", 505);
    }
}

#[test]
fn bad_field_name() {
    for field in [
        "X Y: z\r\n",
        ": z\r\n",
        "NoColon\r\n",
        "X\x01: y\r\n",
        "X\"Y: z\r\n",
        "X(Y): z\r\n",
        "Caf\u{e9}: z\r\n",
    ] {
        let e = req_err(&with_fields(field));
        assert_eq!(e, HeadError::BadFieldName, "{field:?}");
        check(e, "bad_field_name", 400);
    }
}

#[test]
fn bad_field_value() {
    for field in [
        &b"X: a\x00b\r\n"[..],
        b"X: a\x7fb\r\n",
        b"X: \x0bchunked\r\n",
        b"X: a\x0cb\r\n",
        b"X: \x1b[31m\r\n",
    ] {
        let mut input = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
        input.extend_from_slice(field);
        input.extend_from_slice(b"\r\n");
        let e = req_err(&input);
        assert_eq!(
            e,
            HeadError::BadFieldValue,
            "{:?}",
            String::from_utf8_lossy(field)
        );
        check(e, "bad_field_value", 400);
    }
}

#[test]
fn obs_fold() {
    for input in [
        &b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n",
        b"GET / HTTP/1.1\r\n Host: h\r\n\r\n",
    ] {
        let e = req_err(input);
        assert_eq!(e, HeadError::ObsFold);
        check(e, "obs_fold", 400);
    }
}

#[test]
fn bare_cr() {
    for input in [
        &b"GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n"[..],
        b"GET / HTTP/1.1\rX\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\n\r\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\n\r\r\r\n",
    ] {
        let e = req_err(input);
        assert_eq!(e, HeadError::BareCr, "{:?}", String::from_utf8_lossy(input));
        check(e, "bare_cr", 400);
    }
}

#[test]
fn bare_lf() {
    for input in [
        &b"GET / HTTP/1.1\nHost: h\n\n"[..],
        b"GET / HTTP/1.1\r\nHost: h\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\n\n",
        b"\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nX: a\nb\r\n\r\n",
    ] {
        let e = req_err(input);
        assert_eq!(e, HeadError::BareLf, "{:?}", String::from_utf8_lossy(input));
        check(e, "bare_lf", 400);
    }
}

#[test]
fn whitespace_before_colon() {
    for field in ["Content-Length : 5\r\n", "X\t: y\r\n"] {
        let e = req_err(&post(field));
        assert_eq!(e, HeadError::WhitespaceBeforeColon, "{field:?}");
        check(e, "whitespace_before_colon", 400);
    }
}

#[test]
fn bad_content_length() {
    for value in [
        "+5",
        "-1",
        "5 5",
        "0x5",
        "",
        "5,",
        ",5",
        "5;",
        "1e3",
        "12345678901234567890",
        "99999999999999999999",
        "\u{661}", // ARABIC-INDIC DIGIT ONE
    ] {
        let e = req_err(&post(&format!("Content-Length: {value}\r\n")));
        assert_eq!(e, HeadError::BadContentLength, "{value:?}");
        check(e, "bad_content_length", 400);
    }
}

#[test]
fn conflicting_content_length() {
    for fields in [
        "Content-Length: 5, 6\r\n",
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Content-Length: 5, 5\r\ncontent-length: 05\r\ncontent-length: 6\r\n",
    ] {
        let e = req_err(&post(fields));
        assert_eq!(e, HeadError::ConflictingContentLength, "{fields:?}");
        check(e, "conflicting_content_length", 400);
    }
    // Same value written differently is the same number.
    assert_eq!(
        req(&post("Content-Length: 5, 05\r\n")).body,
        BodyKind::Length(5)
    );
}

#[test]
fn te_and_content_length() {
    let e = req_err(&post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"));
    check(e, "te_and_content_length", 400);
}

#[test]
fn bad_transfer_encoding() {
    for (version, fields) in [
        ("HTTP/1.0", "Transfer-Encoding: chunked\r\n"),
        ("HTTP/1.1", "Transfer-Encoding: chunked, chunked\r\n"),
        (
            "HTTP/1.1",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        ),
        ("HTTP/1.1", "Transfer-Encoding: chunked;foo=bar\r\n"),
        ("HTTP/1.1", "Transfer-Encoding:\r\n"),
        ("HTTP/1.1", "Transfer-Encoding: ,\r\n"),
        ("HTTP/1.1", "Transfer-Encoding: chun ked\r\n"),
        ("HTTP/1.1", "Transfer-Encoding: \"chunked\"\r\n"),
    ] {
        let input = format!("POST / {version}\r\n{H}{fields}\r\n");
        let e = req_err(input.as_bytes());
        assert_eq!(e, HeadError::BadTransferEncoding, "{fields:?}");
        check(e, "bad_transfer_encoding", 400);
    }
}

#[test]
fn unsupported_transfer_coding() {
    for fields in [
        "Transfer-Encoding: gzip\r\n",
        "Transfer-Encoding: gzip, chunked\r\n",
        "Transfer-Encoding: identity\r\n",
        "Transfer-Encoding: xchunked\r\n",
        "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: deflate;q=1, chunked\r\n",
    ] {
        let e = req_err(&post(fields));
        assert_eq!(e, HeadError::UnsupportedTransferCoding, "{fields:?}");
        check(e, "unsupported_transfer_coding", 501);
    }
}

#[test]
fn missing_host() {
    let e = req_err(b"GET / HTTP/1.1\r\nX: y\r\n\r\n");
    check(e, "missing_host", 400);
}

#[test]
fn multiple_host() {
    for input in [
        &b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
    ] {
        let e = req_err(input);
        assert_eq!(e, HeadError::MultipleHost);
        check(e, "multiple_host", 400);
    }
}

#[test]
fn bad_host() {
    for host in ["a b", "a/b", "user@a", "a?b", "a#b", "caf\u{e9}", "a\\b"] {
        let input = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let e = req_err(input.as_bytes());
        assert_eq!(e, HeadError::BadHost, "{host:?}");
        check(e, "bad_host", 400);
    }
}

#[test]
fn bad_status_line() {
    for input in [
        &b"HTTP/1.1 20 OK\r\n\r\n"[..],
        b"HTTP/1.1 200OK\r\n\r\n",
        b"HTTP/1.1 099 Odd\r\n\r\n",
        b"HTTP/1.1 600 Odd\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1  200 OK\r\n\r\n",
        b"HTTP/1.1 200 O\x01K\r\n\r\n",
        b"HTTP/1.1\r\n\r\n",
        b"\r\nHTTP/1.1 200 OK\r\n\r\n",
    ] {
        let e = resp_err(input, "GET");
        assert_eq!(
            e,
            HeadError::BadStatusLine,
            "{:?}",
            String::from_utf8_lossy(input)
        );
        check(e, "bad_status_line", 400);
    }
    assert_eq!(
        resp_err(b"HTTP/2.0 200 OK\r\n\r\n", "GET"),
        HeadError::UnsupportedVersion
    );
    assert_eq!(
        resp_err(b"HTTP/x 200 OK\r\n\r\n", "GET"),
        HeadError::BadVersion
    );
    assert_eq!(
        resp_err(b"ICY 200 OK\r\n\r\n", "GET"),
        HeadError::BadVersion
    );
}

#[test]
fn status_line_too_long() {
    let input = format!("HTTP/1.1 200 {}\r\n\r\n", "x".repeat(9000));
    let e = resp_err(input.as_bytes(), "GET");
    check(e, "status_line_too_long", 400);
}

/// When several limits would be passed, the one passed by the earliest byte wins, whether
/// the input arrives whole or byte by byte.
#[test]
fn earliest_limit_wins() {
    let limits = Limits {
        max_request_line: 100,
        max_field_size: 10,
        max_fields: 1,
        max_head: 40,
    };
    // Field line passes 10 bytes at byte 26, the head passes 40 bytes at byte 40.
    assert_eq!(
        req_err_with(
            b"GET / HTTP/1.1\r\nX: 0123456789abcdefghijklmnop\r\n\r\n",
            limits
        ),
        HeadError::FieldTooLong
    );
    // The head passes 40 bytes before the line passes 100.
    let limits = Limits {
        max_field_size: 100,
        ..limits
    };
    assert_eq!(
        req_err_with(
            b"GET / HTTP/1.1\r\nX: 0123456789abcdefghijklmnopqrstuvwxyz\r\n\r\n",
            limits
        ),
        HeadError::HeadTooLarge
    );
    // A second field line starts before anything else is passed.
    assert_eq!(
        req_err_with(
            b"GET / HTTP/1.1\r\nHost: h\r\nX: 0123456789abcdefghijklmnop\r\n\r\n",
            limits
        ),
        HeadError::TooManyFields
    );
    // A limit passed on a line is reported before that line's syntax error.
    let limits = Limits {
        max_field_size: 5,
        ..Limits::default()
    };
    assert_eq!(
        req_err_with(b"GET / HTTP/1.1\r\nX Y Z: a\r\n\r\n", limits),
        HeadError::FieldTooLong
    );
    assert_eq!(
        req_err_with(b"GET / HTTP/1.1\r\nX: a\rbcdef\r\n\r\n", limits),
        HeadError::FieldTooLong
    );
    // A CR exactly at the limit may be half a CRLF: not a breach.
    assert!(
        RequestParser::new(Limits {
            max_field_size: 7,
            ..Limits::default()
        })
        .parse(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap()
        .is_some()
    );
}
