//! The HTTP response parser on hostile bytes: never panics, gives the same head (or error)
//! however the stream is split, never uses more bytes than it was given or than the head
//! limit, and frames bodies by RFC 9112 §6.3: nothing after HEAD, 1xx, 204 and 304, and a body
//! delimited by close never leaves the connection open.
//!
//! Input: one configuration byte, then the stream. Configuration bits 0-1: the request method
//! (GET, HEAD, CONNECT, POST); bit 2: default or small limits; bits 3-7: where to cut the
//! stream for the split run, as a fraction (0-31 of 31) of its length. Successive responses
//! are parsed while each has a body of known length (1xx responses are followed by more).

#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_http_proto::{BodyKind, HeadError, Limits, ResponseHead, ResponseParser};

const METHODS: [&str; 4] = ["GET", "HEAD", "CONNECT", "POST"];

fn check(head: &ResponseHead, method: &str) {
    assert!((100..=599).contains(&head.status));
    if method == "HEAD" || matches!(head.status, 100..=199 | 204 | 304) {
        assert_eq!(head.body, BodyKind::None);
    }
    if head.body == BodyKind::UntilClose {
        assert!(!head.keep_alive);
    }
}

/// Parses responses one after another, the first from two pieces cut at `cut`.
fn run(
    stream: &[u8],
    cut: usize,
    method: &str,
    limits: Limits,
) -> (Vec<(ResponseHead, usize)>, Option<HeadError>) {
    let mut parser = ResponseParser::new(limits);
    let mut heads = Vec::new();
    let mut offset = 0;
    let mut first = Some(cut);
    loop {
        let input = &stream[offset..];
        let result = match first.take() {
            Some(cut) => match parser.parse(&input[..cut], method) {
                Ok(None) => parser.parse(input, method),
                done => done,
            },
            None => parser.parse(input, method),
        };
        match result {
            Ok(Some((head, used))) => {
                assert!(used <= input.len() && used <= limits.max_head);
                check(&head, method);
                let body = match head.body {
                    BodyKind::None => 0,
                    BodyKind::Length(n) => usize::try_from(n).unwrap_or(usize::MAX),
                    BodyKind::Chunked | BodyKind::UntilClose => {
                        heads.push((head, used));
                        return (heads, None);
                    }
                };
                heads.push((head, used));
                match used.checked_add(body) {
                    Some(next) if next < input.len() => offset += next,
                    _ => return (heads, None),
                }
            }
            Ok(None) => return (heads, None),
            Err(e) => return (heads, Some(e)),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&config, stream)) = data.split_first() else {
        return;
    };
    let method = METHODS[usize::from(config & 0b11)];
    let limits = if config & 0b100 != 0 {
        Limits {
            max_request_line: 48,
            max_field_size: 48,
            max_fields: 4,
            max_head: 256,
        }
    } else {
        Limits::default()
    };
    let cut = stream.len() * usize::from(config >> 3) / 31;
    let whole = run(stream, stream.len(), method, limits);
    assert_eq!(
        run(stream, cut, method, limits),
        whole,
        "result depends on the split"
    );
});
