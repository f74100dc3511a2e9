//! The RFC 6455 §5.7 examples, decoded and encoded.

use bytes::{Bytes, BytesMut};

use super::{MASK, client, decode_all, server};
use crate::{
    Event, OpCode, apply_mask, encode_close, encode_close_masked, encode_frame, encode_header,
    encode_masked, header_len,
};

const HELLO_UNMASKED: &[u8] = &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
const HELLO_MASKED: &[u8] = &[
    0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];

fn data(text: bool, bytes: &[u8], fin: bool) -> Event {
    Event::Data {
        text,
        bytes: Bytes::copy_from_slice(bytes),
        fin,
    }
}

#[test]
fn single_frame_unmasked_text() {
    assert_eq!(
        decode_all(&mut client(), HELLO_UNMASKED),
        (vec![data(true, b"Hello", true)], None)
    );
    let mut out = BytesMut::new();
    encode_frame(&mut out, OpCode::Text, b"Hello");
    assert_eq!(&out[..], HELLO_UNMASKED);
}

#[test]
fn single_frame_masked_text() {
    assert_eq!(
        decode_all(&mut server(), HELLO_MASKED),
        (vec![data(true, b"Hello", true)], None)
    );
    // A client-side decoder accepts masked frames too.
    assert_eq!(
        decode_all(&mut client(), HELLO_MASKED),
        (vec![data(true, b"Hello", true)], None)
    );
    let mut out = BytesMut::new();
    encode_masked(&mut out, OpCode::Text, true, b"Hello", MASK);
    assert_eq!(&out[..], HELLO_MASKED);
}

#[test]
fn fragmented_unmasked_text() {
    let wire = [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
    assert_eq!(
        decode_all(&mut client(), &wire),
        (
            vec![data(true, b"Hel", false), data(true, b"lo", true)],
            None
        )
    );
    let mut out = BytesMut::new();
    encode_header(&mut out, OpCode::Text, false, 3);
    out.extend_from_slice(b"Hel");
    encode_header(&mut out, OpCode::Continuation, true, 2);
    out.extend_from_slice(b"lo");
    assert_eq!(&out[..], &wire);
}

#[test]
fn ping_and_masked_pong() {
    let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    assert_eq!(
        decode_all(&mut client(), &ping),
        (vec![Event::Ping(Bytes::from_static(b"Hello"))], None)
    );
    let mut out = BytesMut::new();
    encode_frame(&mut out, OpCode::Ping, b"Hello");
    assert_eq!(&out[..], &ping);

    let pong = [
        0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_eq!(
        decode_all(&mut server(), &pong),
        (vec![Event::Pong(Bytes::from_static(b"Hello"))], None)
    );
    let mut out = BytesMut::new();
    encode_masked(&mut out, OpCode::Pong, true, b"Hello", MASK);
    assert_eq!(&out[..], &pong);
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3) as u8).collect()
}

#[test]
fn binary_256_bytes_16_bit_length() {
    let body = payload(256);
    let mut wire = vec![0x82, 0x7E, 0x01, 0x00];
    wire.extend_from_slice(&body);
    assert_eq!(
        decode_all(&mut client(), &wire),
        (vec![data(false, &body, true)], None)
    );
    let mut out = BytesMut::new();
    encode_frame(&mut out, OpCode::Binary, &body);
    assert_eq!(&out[..], &wire[..]);
    assert_eq!(header_len(256, false), 4);
}

#[test]
fn binary_64k_64_bit_length() {
    let body = payload(65536);
    let mut wire = vec![0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00];
    wire.extend_from_slice(&body);
    assert_eq!(
        decode_all(&mut client(), &wire),
        (vec![data(false, &body, true)], None)
    );
    let mut out = BytesMut::new();
    encode_frame(&mut out, OpCode::Binary, &body);
    assert_eq!(&out[..], &wire[..]);
    assert_eq!(header_len(65536, false), 10);
    assert_eq!(header_len(65536, true), 14);

    // Masked, from a client.
    let mut out = BytesMut::new();
    encode_masked(&mut out, OpCode::Binary, true, &body, [1, 2, 3, 4]);
    assert_eq!(out.len(), 14 + 65536);
    assert_eq!(
        decode_all(&mut server(), &out),
        (vec![data(false, &body, true)], None)
    );
}

#[test]
fn length_form_boundaries() {
    for len in [0usize, 1, 125, 126, 127, 0xFFFF, 0x10000] {
        let body = payload(len);
        let mut out = BytesMut::new();
        encode_masked(&mut out, OpCode::Binary, true, &body, [9, 8, 7, 6]);
        assert_eq!(out.len(), header_len(len as u64, true) + len, "len {len}");
        assert_eq!(
            decode_all(&mut server(), &out),
            (vec![data(false, &body, true)], None),
            "len {len}"
        );
    }
}

#[test]
fn close_frames() {
    let mut out = BytesMut::new();
    encode_close(&mut out, 1000, "bye");
    assert_eq!(&out[..], &[0x88, 0x05, 0x03, 0xE8, b'b', b'y', b'e']);
    assert_eq!(
        decode_all(&mut client(), &out),
        (
            vec![Event::Close {
                code: Some(1000),
                reason: "bye".into()
            }],
            None
        )
    );

    let mut out = BytesMut::new();
    encode_close_masked(&mut out, 4000, "", MASK);
    assert_eq!(
        decode_all(&mut server(), &out),
        (
            vec![Event::Close {
                code: Some(4000),
                reason: String::new()
            }],
            None
        )
    );

    // An empty Close has no code.
    let mut out = BytesMut::new();
    encode_masked(&mut out, OpCode::Close, true, b"", MASK);
    assert_eq!(
        decode_all(&mut server(), &out),
        (
            vec![Event::Close {
                code: None,
                reason: String::new()
            }],
            None
        )
    );
}

#[test]
fn close_reason_truncated_at_char_boundary() {
    // 62 two-byte characters: 124 bytes, one over the 123 that fit.
    let reason = "é".repeat(62);
    let mut out = BytesMut::new();
    encode_close(&mut out, 1001, &reason);
    assert_eq!(out[1], 2 + 122);
    let (events, err) = decode_all(&mut client(), &out);
    assert_eq!(err, None);
    assert_eq!(
        events,
        vec![Event::Close {
            code: Some(1001),
            reason: "é".repeat(61)
        }]
    );

    // ASCII: cut at exactly 123 bytes.
    let reason = "x".repeat(200);
    let mut out = BytesMut::new();
    encode_close_masked(&mut out, 1000, &reason, MASK);
    assert_eq!(out[1] & 0x7F, 125);
    let (events, err) = decode_all(&mut server(), &out);
    assert_eq!(err, None);
    assert_eq!(
        events,
        vec![Event::Close {
            code: Some(1000),
            reason: "x".repeat(123)
        }]
    );
}

#[test]
fn mask_continues_across_rotations() {
    let body = payload(37);
    let mut whole = body.clone();
    apply_mask(&mut whole, [1, 2, 3, 4]);
    // Masking in two pieces with the key rotated by the first piece's length.
    let mut split = body.clone();
    let (a, b) = split.split_at_mut(13);
    apply_mask(a, [1, 2, 3, 4]);
    let mut key = [1, 2, 3, 4];
    key.rotate_left(13 % 4);
    apply_mask(b, key);
    assert_eq!(whole, split);
    apply_mask(&mut whole, [1, 2, 3, 4]);
    assert_eq!(whole, body);
}

#[test]
fn opcodes() {
    for v in 0..16u8 {
        match OpCode::from_u8(v) {
            Some(op) => {
                assert_eq!(op.as_u8(), v);
                assert_eq!(op.is_control(), v >= 8);
            }
            None => assert!(matches!(v, 3..=7 | 0xB..=0xF)),
        }
    }
}
