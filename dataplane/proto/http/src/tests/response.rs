//! Response heads and response framing (RFC 9112 §6.3).

use super::*;
use crate::Version;

#[test]
fn simple_ok() {
    let head = resp(
        b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nServer: up\r\n\r\n",
        "GET",
    );
    assert_eq!(head.version, Version::Http11);
    assert_eq!(head.status, 200);
    assert_eq!(head.reason, "OK");
    assert_eq!(head.body, BodyKind::Length(12));
    assert!(head.keep_alive);
    assert_eq!(head.headers.get_str("server"), Some("up"));
    assert!(!head.is_informational());
}

#[test]
fn reason_phrases() {
    assert_eq!(
        resp(b"HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", "GET").reason,
        ""
    );
    assert_eq!(
        resp(b"HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", "GET").reason,
        ""
    );
    assert_eq!(
        resp(
            b"HTTP/1.1 404 Not  Found \t\r\nContent-Length: 0\r\n\r\n",
            "GET"
        )
        .reason,
        "Not  Found \t"
    );
    assert_eq!(
        resp(
            b"HTTP/1.0 200 caf\xc3\xa9\r\nContent-Length: 0\r\n\r\n",
            "GET"
        )
        .reason,
        "caf\u{e9}"
    );
    assert_eq!(
        resp(b"HTTP/1.0 200 \xff\r\nContent-Length: 0\r\n\r\n", "GET").reason,
        "\u{fffd}"
    );
}

#[test]
fn head_request_has_no_body() {
    let head = resp(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", "HEAD");
    assert_eq!(head.body, BodyKind::None);
    assert!(head.keep_alive);
    let head = resp(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HEAD",
    );
    assert_eq!(head.body, BodyKind::None);
    let head = resp(b"HTTP/1.1 200 OK\r\n\r\n", "HEAD");
    assert_eq!(head.body, BodyKind::None);
    assert!(head.keep_alive);
}

#[test]
fn no_content_and_not_modified() {
    for status in [204, 304] {
        let input = format!("HTTP/1.1 {status} X\r\nContent-Length: 10\r\n\r\n");
        let head = resp(input.as_bytes(), "GET");
        assert_eq!(head.body, BodyKind::None, "{status}");
        assert!(head.keep_alive);
        let input = format!("HTTP/1.1 {status} X\r\n\r\n");
        assert_eq!(resp(input.as_bytes(), "GET").body, BodyKind::None);
    }
}

#[test]
fn informational_then_final() {
    let stream = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
    let mut parser = ResponseParser::new(Limits::default());
    let mut offset = 0;
    let mut statuses = Vec::new();
    loop {
        let (head, used) = parser.parse(&stream[offset..], "POST").unwrap().unwrap();
        offset += used;
        statuses.push(head.status);
        if !head.is_informational() {
            assert_eq!(head.body, BodyKind::Length(2));
            break;
        }
        assert_eq!(head.body, BodyKind::None);
    }
    assert_eq!(statuses, [100, 103, 201]);
    assert_eq!(&stream[offset..], b"ok");
}

#[test]
fn switching_protocols_has_no_body() {
    let head = resp(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        "GET",
    );
    assert_eq!(head.body, BodyKind::None);
    assert!(head.headers.has_token("connection", "upgrade"));
}

#[test]
fn connect_success_has_no_body() {
    assert_eq!(
        resp(b"HTTP/1.1 200 Connection established\r\n\r\n", "CONNECT").body,
        BodyKind::None
    );
    assert_eq!(
        resp(b"HTTP/1.1 407 Auth\r\nContent-Length: 3\r\n\r\n", "CONNECT").body,
        BodyKind::Length(3)
    );
}

#[test]
fn until_close() {
    let head = resp(b"HTTP/1.1 200 OK\r\n\r\n", "GET");
    assert_eq!(head.body, BodyKind::UntilClose);
    assert!(
        !head.keep_alive,
        "a body delimited by close ends the connection"
    );
    let head = resp(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", "GET");
    assert_eq!(head.body, BodyKind::UntilClose);
    assert!(!head.keep_alive);
}

#[test]
fn chunked_and_length() {
    let head = resp(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET",
    );
    assert_eq!(head.body, BodyKind::Chunked);
    let head = resp(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n", "POST");
    assert_eq!(head.body, BodyKind::Length(0));
}

#[test]
fn keep_alive_rules() {
    assert!(
        !resp(
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            "GET"
        )
        .keep_alive
    );
    assert!(!resp(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", "GET").keep_alive);
    assert!(
        resp(
            b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n",
            "GET"
        )
        .keep_alive
    );
}

#[test]
fn strict_framing_with_upstream() {
    let cases: &[(&[u8], HeadError)] = &[
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            HeadError::TeAndContentLength,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            HeadError::UnsupportedTransferCoding,
        ),
        (
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            HeadError::BadTransferEncoding,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
            HeadError::ConflictingContentLength,
        ),
        (
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: x\r\n\r\n",
            HeadError::BadContentLength,
        ),
        (b"HTTP/1.1 200 OK\nContent-Length: 0\n\n", HeadError::BareLf),
        (b"HTTP/1.1 200 OK\r\n Folded: x\r\n\r\n", HeadError::ObsFold),
        (
            b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            HeadError::BadFieldName,
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(
            resp_err(input, "GET"),
            *expected,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn no_host_rules_for_responses() {
    let head = resp(
        b"HTTP/1.1 200 OK\r\nHost: a\r\nHost: b\r\nContent-Length: 0\r\n\r\n",
        "GET",
    );
    assert_eq!(head.headers.count("host"), 2);
}

#[test]
fn pipelined_responses_and_reset() {
    let stream = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 204 No Content\r\n\r\n";
    let mut parser = ResponseParser::new(Limits::default());
    let (first, used) = parser.parse(stream, "GET").unwrap().unwrap();
    assert_eq!(first.body, BodyKind::Length(1));
    parser.reset();
    let (second, rest) = parser
        .parse(&stream[used + 1..], "DELETE")
        .unwrap()
        .unwrap();
    assert_eq!(second.status, 204);
    assert_eq!(used + 1 + rest, stream.len());
}

#[test]
fn reason_phrase_table() {
    assert_eq!(crate::status_reason(200), "OK");
    assert_eq!(crate::status_reason(404), "Not Found");
    assert_eq!(crate::status_reason(414), "URI Too Long");
    assert_eq!(crate::status_reason(502), "Bad Gateway");
    assert_eq!(crate::status_reason(505), "HTTP Version Not Supported");
    assert_eq!(crate::status_reason(299), "");
    // Every HeadError's status has a phrase.
    for e in [
        HeadError::RequestLineTooLong,
        HeadError::UnsupportedTransferCoding,
        HeadError::UnsupportedVersion,
        HeadError::BareLf,
    ] {
        assert!(!crate::status_reason(e.status()).is_empty());
    }
}
