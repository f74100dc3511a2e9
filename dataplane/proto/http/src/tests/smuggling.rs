//! Request-smuggling classics: every ambiguous framing is refused, never guessed.

use super::*;

fn framing_err(fields: &str) -> HeadError {
    req_err(
        format!("POST / HTTP/1.1\r\nHost: h\r\n{fields}\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n")
            .as_bytes(),
    )
}

#[test]
fn cl_te() {
    assert_eq!(
        framing_err("Content-Length: 6\r\nTransfer-Encoding: chunked\r\n"),
        HeadError::TeAndContentLength
    );
}

#[test]
fn te_cl() {
    assert_eq!(
        framing_err("Transfer-Encoding: chunked\r\nContent-Length: 6\r\n"),
        HeadError::TeAndContentLength
    );
}

#[test]
fn te_te_obfuscations() {
    let cases = [
        (
            "Transfer-Encoding: chunked, identity\r\n",
            HeadError::UnsupportedTransferCoding,
        ),
        (
            "Transfer-Encoding: identity, chunked\r\n",
            HeadError::UnsupportedTransferCoding,
        ),
        (
            "Transfer-Encoding: xchunked\r\n",
            HeadError::UnsupportedTransferCoding,
        ),
        (
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n",
            HeadError::UnsupportedTransferCoding,
        ),
        (
            "Transfer-Encoding: chunked\r\nTransfer-encoding: chunked\r\n",
            HeadError::BadTransferEncoding,
        ),
        (
            "Transfer-Encoding : chunked\r\n",
            HeadError::WhitespaceBeforeColon,
        ),
        (
            "Transfer-Encoding\t: chunked\r\n",
            HeadError::WhitespaceBeforeColon,
        ),
        (" Transfer-Encoding: chunked\r\n", HeadError::ObsFold),
        (
            "X: y\r\n Transfer-Encoding: chunked\r\n",
            HeadError::ObsFold,
        ),
        (
            "Transfer-Encoding:\x0bchunked\r\n",
            HeadError::BadFieldValue,
        ),
        (
            "Transfer-Encoding: \x00chunked\r\n",
            HeadError::BadFieldValue,
        ),
        (
            "Transfer-Encoding: \"chunked\"\r\n",
            HeadError::BadTransferEncoding,
        ),
        ("Transfer-Encoding: chunked\rX: y\r\n", HeadError::BareCr),
        ("Transfer-Encoding: chunked\n", HeadError::BareLf),
    ];
    for (fields, expected) in cases {
        assert_eq!(framing_err(fields), expected, "{fields:?}");
    }
}

#[test]
fn content_length_obfuscations() {
    let cases = [
        ("Content-Length: +5\r\n", HeadError::BadContentLength),
        ("Content-Length: -0\r\n", HeadError::BadContentLength),
        // OWS is trimmed, so this is 5 against 6.
        (
            "Content-Length: 5 \t\r\nContent-Length: 6\r\n",
            HeadError::ConflictingContentLength,
        ),
        (
            "Content-Length: 5, 6\r\n",
            HeadError::ConflictingContentLength,
        ),
        (
            "Content-Length: 5\r\nContent-Length: 6\r\n",
            HeadError::ConflictingContentLength,
        ),
        ("Content-Length: 0x10\r\n", HeadError::BadContentLength),
        ("Content-Length: 1_0\r\n", HeadError::BadContentLength),
        (
            "Content-Length: 18446744073709551616\r\n",
            HeadError::BadContentLength,
        ),
        ("Content-Length: 1 0\r\n", HeadError::BadContentLength),
        ("Content-Length : 5\r\n", HeadError::WhitespaceBeforeColon),
        ("Content-Length:\x0b5\r\n", HeadError::BadFieldValue),
    ];
    for (fields, expected) in cases {
        assert_eq!(framing_err(fields), expected, "{fields:?}");
    }
}

#[test]
fn lookalike_names_are_other_fields() {
    let head = req(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer_Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
    );
    assert_eq!(head.body, BodyKind::Length(5));
}

#[test]
fn te_in_http10() {
    assert_eq!(
        req_err(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        HeadError::BadTransferEncoding
    );
}

#[test]
fn host_ambiguity() {
    assert_eq!(
        req_err(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        HeadError::MultipleHost
    );
    assert_eq!(
        req_err(b"GET / HTTP/1.1\r\nHost: a\r\nHost : b\r\n\r\n"),
        HeadError::WhitespaceBeforeColon
    );
    assert_eq!(
        req_err(b"GET / HTTP/1.1\r\nHost: a@b\r\n\r\n"),
        HeadError::BadHost
    );
}

/// A chunked body whose framing another parser might read differently is refused.
#[test]
fn chunked_body_obfuscations() {
    let cases: &[(&[u8], BodyError)] = &[
        (b"5\nhello\r\n0\r\n\r\n", BodyError::BareLf),
        (b"5;a\nhello\r\n0\r\n\r\n", BodyError::BareLf),
        (b"5\r\nhello\n0\r\n\r\n", BodyError::BareLf),
        (b"5\rhello\r\n0\r\n\r\n", BodyError::BareCr),
        (b"0x5\r\nhello\r\n0\r\n\r\n", BodyError::BadChunkSize),
        (b"+5\r\nhello\r\n0\r\n\r\n", BodyError::BadChunkSize),
        (b" 5\r\nhello\r\n0\r\n\r\n", BodyError::BadChunkSize),
        (b"5 \r\nhello\r\n0\r\n\r\n", BodyError::BadChunkSize),
        (
            b"10000000000000005\r\nhello\r\n0\r\n\r\n",
            BodyError::BadChunkSize,
        ),
        (b"5\r\nhelloXX0\r\n\r\n", BodyError::MissingChunkCrlf),
        (
            b"5;\x00\r\nhello\r\n0\r\n\r\n",
            BodyError::BadChunkExtension,
        ),
        (b"0\r\nX: y\n\r\n", BodyError::BareLf),
    ];
    for (body, expected) in cases {
        assert_eq!(
            decode_whole(BodyKind::Chunked, body).outcome,
            Err(*expected),
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
}
