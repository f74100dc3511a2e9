//! Every decoder error, its close code and its label, and that errors are sticky.

use bytes::BytesMut;

use super::{MASK, client, decode_all, server, server_error};
use crate::{Decoder, DecoderLimits, Event, OpCode, WsError, encode_masked, is_valid_close_code};

fn masked(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_masked(&mut out, opcode, fin, payload, MASK);
    out.to_vec()
}

fn concat(frames: &[Vec<u8>]) -> Vec<u8> {
    frames.concat()
}

#[test]
fn reserved_bits() {
    for rsv in [0x40, 0x20, 0x10] {
        let mut f = masked(OpCode::Text, true, b"x");
        f[0] |= rsv;
        assert_eq!(server_error(&f), Some(WsError::ReservedBits));
        // Detected from the first byte alone.
        assert_eq!(server_error(&f[..1]), Some(WsError::ReservedBits));
    }
}

#[test]
fn unknown_opcodes() {
    for op in (3..=7).chain(0xB..=0xF) {
        let f = [0x80 | op, 0x80, 1, 2, 3, 4];
        assert_eq!(server_error(&f), Some(WsError::UnknownOpcode(op)));
    }
}

#[test]
fn unmasked_frame_refused_by_server() {
    let f = [0x82, 0x01, 0xAA];
    assert_eq!(server_error(&f), Some(WsError::UnmaskedFrame));
    // An unmasked control frame too.
    assert_eq!(server_error(&[0x89, 0x00]), Some(WsError::UnmaskedFrame));
    // Accepted when masking is not required.
    assert_eq!(decode_all(&mut client(), &f).1, None);
}

#[test]
fn fragmented_control_frames() {
    for op in [OpCode::Close, OpCode::Ping, OpCode::Pong] {
        let f = masked(op, false, b"");
        assert_eq!(server_error(&f), Some(WsError::FragmentedControl), "{op:?}");
    }
}

#[test]
fn control_frame_too_long() {
    for op in [OpCode::Close, OpCode::Ping, OpCode::Pong] {
        let f = masked(op, true, &[b'a'; 126]);
        assert_eq!(server_error(&f), Some(WsError::ControlTooLong), "{op:?}");
        // 125 is fine for ping and pong.
        if op != OpCode::Close {
            assert_eq!(server_error(&masked(op, true, &[b'a'; 125])), None);
        }
    }
    // The 64-bit form too, checked before the extended length arrives.
    assert_eq!(server_error(&[0x89, 0xFF]), Some(WsError::ControlTooLong));
}

#[test]
fn length_msb_set() {
    let f = [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
    assert_eq!(server_error(&f), Some(WsError::LengthOverflow));
}

#[test]
fn non_minimal_lengths() {
    // 16-bit form for 125 and for 0.
    assert_eq!(
        server_error(&[0x82, 0xFE, 0x00, 0x7D, 1, 2, 3, 4]),
        Some(WsError::NonMinimalLength)
    );
    assert_eq!(
        server_error(&[0x82, 0xFE, 0x00, 0x00]),
        Some(WsError::NonMinimalLength)
    );
    // 64-bit form for 0xFFFF and for 5.
    assert_eq!(
        server_error(&[0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]),
        Some(WsError::NonMinimalLength)
    );
    assert_eq!(
        server_error(&[0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0, 5]),
        Some(WsError::NonMinimalLength)
    );
    // The smallest lengths of each form are fine (header only: payload still to come).
    assert_eq!(server_error(&[0x82, 0xFE, 0x00, 0x7E, 1, 2, 3, 4]), None);
    assert_eq!(
        server_error(&[0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4]),
        None
    );
}

#[test]
fn continuation_without_message() {
    let f = masked(OpCode::Continuation, true, b"x");
    assert_eq!(server_error(&f), Some(WsError::UnexpectedContinuation));
    // Nor after a message has finished.
    let s = concat(&[
        masked(OpCode::Binary, false, b"a"),
        masked(OpCode::Continuation, true, b"b"),
        masked(OpCode::Continuation, true, b"c"),
    ]);
    assert_eq!(server_error(&s), Some(WsError::UnexpectedContinuation));
}

#[test]
fn new_message_while_fragmented() {
    for op in [OpCode::Text, OpCode::Binary] {
        let s = concat(&[
            masked(OpCode::Binary, false, b"a"),
            masked(OpCode::Ping, true, b"p"),
            masked(op, true, b"b"),
        ]);
        let (events, err) = decode_all(&mut server(), &s);
        assert_eq!(err, Some(WsError::InterleavedMessage), "{op:?}");
        assert_eq!(events.len(), 2);
    }
}

#[test]
fn frame_too_big_from_header() {
    let limits = DecoderLimits {
        max_frame: 100,
        require_mask: true,
    };
    let ok = masked(OpCode::Binary, true, &[0; 100]);
    assert_eq!(decode_all(&mut Decoder::new(limits), &ok).1, None);
    let big = masked(OpCode::Binary, true, &[0; 101]);
    // Refused from the header alone, before any payload.
    let err = decode_all(&mut Decoder::new(limits), &big[..2]).1;
    assert_eq!(err, Some(WsError::FrameTooBig { len: 101, max: 100 }));
    // Continuations too.
    let s = concat(&[
        masked(OpCode::Text, false, b""),
        masked(OpCode::Continuation, true, &[0; 200]),
    ]);
    let err = decode_all(&mut Decoder::new(limits), &s).1;
    assert_eq!(err, Some(WsError::FrameTooBig { len: 200, max: 100 }));
    // The default limit is 16 MiB, checked on the 64-bit form.
    let f = [0x82, 0xFF, 0, 0, 0, 0, 0x01, 0x00, 0x00, 0x01];
    assert_eq!(
        server_error(&f),
        Some(WsError::FrameTooBig {
            len: (16 << 20) + 1,
            max: 16 << 20
        })
    );
}

#[test]
fn close_one_byte_payload() {
    let f = masked(OpCode::Close, true, &[0x03]);
    assert_eq!(server_error(&f), Some(WsError::CloseLengthOne));
}

#[test]
fn close_codes() {
    for code in 0..=u16::MAX {
        let f = masked(OpCode::Close, true, &code.to_be_bytes());
        let (events, err) = decode_all(&mut server(), &f);
        if is_valid_close_code(code) {
            assert_eq!(err, None, "{code}");
            assert_eq!(
                events,
                vec![Event::Close {
                    code: Some(code),
                    reason: String::new()
                }]
            );
        } else {
            assert_eq!(err, Some(WsError::InvalidCloseCode(code)), "{code}");
        }
    }
    for code in [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999,
    ] {
        assert!(is_valid_close_code(code), "{code}");
    }
    for code in [0, 999, 1004, 1005, 1006, 1012, 1015, 1016, 2999, 5000] {
        assert!(!is_valid_close_code(code), "{code}");
    }
}

#[test]
fn close_reason_not_utf8() {
    let f = masked(OpCode::Close, true, &[0x03, 0xE8, b'o', 0xFF, b'k']);
    let err = server_error(&f);
    assert_eq!(err, Some(WsError::InvalidCloseReason));
    assert_eq!(err.map(|e| e.close_code()), Some(1007));
    // A truncated multi-byte character.
    let f = masked(OpCode::Close, true, &[0x03, 0xE8, 0xC3]);
    assert_eq!(server_error(&f), Some(WsError::InvalidCloseReason));
}

#[test]
fn text_payload_not_validated() {
    let f = masked(OpCode::Text, true, &[0xFF, 0xFE]);
    assert_eq!(server_error(&f), None);
}

#[test]
fn close_codes_and_labels() {
    let all = [
        (WsError::ReservedBits, 1002),
        (WsError::UnknownOpcode(3), 1002),
        (WsError::UnmaskedFrame, 1002),
        (WsError::FragmentedControl, 1002),
        (WsError::ControlTooLong, 1002),
        (WsError::LengthOverflow, 1002),
        (WsError::NonMinimalLength, 1002),
        (WsError::UnexpectedContinuation, 1002),
        (WsError::InterleavedMessage, 1002),
        (WsError::FrameTooBig { len: 2, max: 1 }, 1009),
        (WsError::CloseLengthOne, 1002),
        (WsError::InvalidCloseCode(1005), 1002),
        (WsError::InvalidCloseReason, 1007),
    ];
    let mut labels = std::collections::HashSet::new();
    for (e, code) in &all {
        assert_eq!(e.close_code(), *code, "{e:?}");
        let label = e.reason();
        assert!(label.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        assert!(labels.insert(label), "duplicate label {label}");
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn errors_are_sticky() {
    let mut dec = server();
    let mut buf = BytesMut::from(&[0x82u8, 0x01, 0xAA][..]);
    assert_eq!(dec.decode(&mut buf), Err(WsError::UnmaskedFrame));
    let mut good = BytesMut::from(&masked(OpCode::Binary, true, b"x")[..]);
    assert_eq!(dec.decode(&mut good), Err(WsError::UnmaskedFrame));
    assert_eq!(good.len(), 7, "consumed bytes after an error");
}
