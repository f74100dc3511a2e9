//! Partial input, byte-by-byte feeding, coalesced packets and the size limit.

use super::vectors::{V5_CONNECT, V311_CONNECT, V311_PUBLISH};
use super::*;
use crate::peek_header;

#[test]
fn empty_buffer_is_none() {
    let mut buf = BytesMut::new();
    assert_eq!(decode(&mut buf, ctx(Version::V5)), Ok(None));
    assert_eq!(peek_header(&[], 10), Ok(None));
}

#[test]
fn byte_by_byte() {
    for (wire, c) in [
        (V311_CONNECT, ctx_new()),
        (V5_CONNECT, ctx_new()),
        (V311_PUBLISH, ctx(Version::V311)),
    ] {
        let whole = dec(wire, c).unwrap();
        let mut buf = BytesMut::new();
        for (i, &b) in wire.iter().enumerate() {
            buf.extend_from_slice(&[b]);
            let before = buf.clone();
            let got = decode(&mut buf, c).unwrap();
            if i + 1 < wire.len() {
                assert_eq!(got, None, "byte {i}");
                assert_eq!(buf, before, "buffer touched on Ok(None)");
            } else {
                assert_eq!(got, Some(whole.clone()));
                assert!(buf.is_empty());
            }
        }
    }
}

#[test]
fn coalesced_packets() {
    let mut buf = BytesMut::new();
    buf.extend_from_slice(V311_PUBLISH);
    buf.extend_from_slice(&[0xc0, 0x00]); // PINGREQ
    buf.extend_from_slice(V311_PUBLISH);
    buf.extend_from_slice(&V311_PUBLISH[..4]); // a partial fourth packet
    let c = ctx(Version::V311);
    assert_eq!(decode(&mut buf, c).unwrap().unwrap().kind(), "PUBLISH");
    assert_eq!(decode(&mut buf, c).unwrap(), Some(Packet::Pingreq));
    assert_eq!(decode(&mut buf, c).unwrap().unwrap().kind(), "PUBLISH");
    assert_eq!(decode(&mut buf, c).unwrap(), None);
    assert_eq!(&buf[..], &V311_PUBLISH[..4]);
    buf.extend_from_slice(&V311_PUBLISH[4..]);
    assert_eq!(decode(&mut buf, c).unwrap().unwrap().kind(), "PUBLISH");
    assert!(buf.is_empty());
}

#[test]
fn payload_shares_the_read_buffer() {
    let mut buf = BytesMut::from(V311_PUBLISH);
    let base = buf.as_ptr() as usize;
    let Some(Packet::Publish(p)) = decode(&mut buf, ctx(Version::V311)).unwrap() else {
        panic!("not a PUBLISH");
    };
    // The payload is the last two bytes of the original allocation: no copy was made.
    assert_eq!(p.payload.as_ptr() as usize, base + V311_PUBLISH.len() - 2);
}

#[test]
fn size_checked_before_buffering() {
    // A PUBLISH announcing 268 435 455 bytes (the largest remaining length), limit 1 MiB: the
    // error comes with the fifth byte, long before any body.
    let header = [0x30, 0xff, 0xff, 0xff, 0x7f];
    let mut buf = BytesMut::new();
    for (i, &b) in header.iter().enumerate() {
        buf.extend_from_slice(&[b]);
        let got = decode(&mut buf, ctx(Version::V5));
        if i < 4 {
            assert_eq!(got, Ok(None));
        } else {
            let e = got.unwrap_err();
            assert_eq!(
                e,
                DecodeError::PacketTooLarge {
                    size: 268_435_455 + 5,
                    max: MIB
                }
            );
            assert_eq!(e.reason_code(), crate::reason::PACKET_TOO_LARGE);
        }
    }
    assert_eq!(
        peek_header(&header, MIB),
        Err(DecodeError::PacketTooLarge {
            size: 268_435_460,
            max: MIB
        })
    );
}

#[test]
fn size_limit_is_inclusive() {
    // PINGREQ is 2 bytes: accepted with a limit of 2, refused with 1.
    let c = |max| DecodeCtx {
        version: Some(Version::V311),
        max_packet_size: max,
    };
    assert_eq!(dec(&[0xc0, 0], c(2)), Ok(Packet::Pingreq));
    assert_eq!(
        err(&[0xc0, 0], c(1)),
        DecodeError::PacketTooLarge { size: 2, max: 1 }
    );
    assert_eq!(peek_header(V311_PUBLISH, 9), Ok(Some((0x30, 9))));
    assert!(peek_header(V311_PUBLISH, 8).is_err());
}

#[test]
fn remaining_length_encodings() {
    // Boundaries of one to four bytes (MQTT 5.0 §1.5.5 table), as PUBLISH remaining lengths
    // (3 bytes of topic "t" plus payload).
    for (len, header_len) in [
        (3usize, 2usize),
        (127, 2),
        (128, 3),
        (16_383, 3),
        (16_384, 4),
        (2_097_151, 4),
        (2_097_152, 5),
    ] {
        let p = Packet::Publish(crate::Publish {
            dup: false,
            qos: crate::QoS::AtMostOnce,
            retain: false,
            topic: "t".into(),
            packet_id: None,
            properties: Default::default(),
            payload: bytes::Bytes::from(vec![0u8; len - 3]),
        });
        let v = Version::V311;
        let wire = enc(&p, v);
        assert_eq!(wire.len(), header_len + len, "{len}");
        let c = DecodeCtx {
            version: Some(v),
            max_packet_size: u32::MAX,
        };
        assert_eq!(dec(&wire, c).unwrap(), p);
        assert_eq!(
            peek_header(&wire, u32::MAX),
            Ok(Some((0x30, header_len + len)))
        );
    }
    assert_eq!(peek_header(&[0x30, 0x00], 10), Ok(Some((0x30, 2))));
    assert_eq!(peek_header(&[0x30, 0x7f], 1000), Ok(Some((0x30, 129))));
}

#[test]
fn remaining_length_too_long_or_not_minimal() {
    assert_eq!(
        err(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01], ctx(Version::V5)),
        DecodeError::MalformedRemainingLength
    );
    assert_eq!(
        DecodeError::MalformedRemainingLength.reason_code(),
        crate::reason::MALFORMED
    );
    // Four continuation bytes are enough to know.
    assert_eq!(
        peek_header(&[0x30, 0x80, 0x80, 0x80, 0x80], u32::MAX),
        Err(DecodeError::MalformedRemainingLength)
    );
    assert_eq!(
        err(&[0xc0, 0x80, 0x00], ctx(Version::V5)).reason_code(),
        crate::reason::MALFORMED
    );
}

#[test]
fn first_byte_checked_before_the_rest() {
    // Before CONNECT, anything else is refused from its first byte.
    let mut buf = BytesMut::from(&[0x30][..]);
    assert_eq!(
        decode(&mut buf, ctx_new()),
        Err(DecodeError::Protocol("first packet must be CONNECT"))
    );
    // A reserved type is refused before its length arrives.
    let mut buf = BytesMut::from(&[0x00][..]);
    assert!(decode(&mut buf, ctx(Version::V5)).is_err());
}
