//! Every malformation the decoder checks, with the reason code it maps to.

use super::*;
use crate::reason::*;
use crate::{TopicError, v3_connack};

const V3: Version = Version::V311;
const V5: Version = Version::V5;

fn code(bytes: &[u8], c: DecodeCtx) -> u8 {
    err(bytes, c).reason_code()
}

/// A v3.1.1 CONNECT body with the given flags and payload after the keep alive.
fn connect311(flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, flags, 0x00, 0x3c];
    body.extend_from_slice(payload);
    frame(0x10, &body)
}

/// A v5 CONNECT with the given flags, CONNECT properties block and payload.
fn connect5(flags: u8, props: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, flags, 0x00, 0x3c];
    body.extend_from_slice(props);
    body.extend_from_slice(payload);
    frame(0x10, &body)
}

#[test]
fn fixed_header_flags() {
    // Reserved type 0.
    assert_eq!(code(&[0x00, 0x00], ctx(V5)), MALFORMED);
    // AUTH does not exist in 3.1.1.
    assert_eq!(code(&[0xf0, 0x00], ctx(V3)), MALFORMED);
    assert_eq!(code(&[0xf0, 0x00], ctx(Version::V31)), MALFORMED);
    // PUBLISH QoS 3, and DUP at QoS 0.
    assert_eq!(code(&[0x36, 0x05, 0, 1, b't', 0, 1], ctx(V3)), MALFORMED);
    assert_eq!(code(&[0x38, 0x03, 0, 1, b't'], ctx(V3)), MALFORMED);
    // PUBREL, SUBSCRIBE, UNSUBSCRIBE must carry 0010.
    assert_eq!(code(&[0x60, 0x02, 0, 1], ctx(V3)), MALFORMED);
    assert_eq!(dec(&[0x62, 0x02, 0, 1], ctx(V3)).unwrap().kind(), "PUBREL");
    assert_eq!(code(&[0x80, 0x06, 0, 1, 0, 1, b'a', 0], ctx(V3)), MALFORMED);
    assert_eq!(code(&[0xa0, 0x05, 0, 1, 0, 1, b'a'], ctx(V3)), MALFORMED);
    // Every other packet carries 0000.
    for first in [0x21, 0x41, 0x52, 0x74, 0x98, 0xb1, 0xc1, 0xd2, 0xe4] {
        assert_eq!(code(&[first, 0x02, 0, 1], ctx(V3)), MALFORMED, "{first:#x}");
    }
    assert_eq!(code(&[0xf1, 0x00], ctx(V5)), MALFORMED);
    assert_eq!(code(&[0x11, 0x00], ctx_new()), MALFORMED);
}

#[test]
fn first_packet_must_be_connect() {
    for first in [0x20, 0x30, 0x40, 0x62, 0x82, 0xc0, 0xe0, 0xf0] {
        let e = err(&[first, 0x00], ctx_new());
        assert_eq!(e, DecodeError::Protocol("first packet must be CONNECT"));
        assert_eq!(e.reason_code(), PROTOCOL_ERROR);
    }
}

#[test]
fn connect_protocol_name_and_level() {
    let with = |name: &[u8], level: u8| {
        let mut body = vec![0x00, name.len() as u8];
        body.extend_from_slice(name);
        body.extend_from_slice(&[level, 0x02, 0x00, 0x3c, 0x00, 0x00]);
        frame(0x10, &body)
    };
    for (name, level) in [
        (&b"MQTT"[..], 3),
        (b"MQTT", 6),
        (b"MQTT", 0),
        (b"MQIsdp", 4),
        (b"HTTP", 4),
        (b"mqtt", 4),
    ] {
        let e = err(&with(name, level), ctx_new());
        assert_eq!(e, DecodeError::UnsupportedProtocol { level }, "{name:?}");
        assert_eq!(e.reason_code(), UNSUPPORTED_PROTOCOL_VERSION);
        assert_eq!(
            v3_connack::v3_connack_code(e.reason_code()),
            v3_connack::UNACCEPTABLE_PROTOCOL_VERSION
        );
    }
    // Truncated right after a valid protocol name.
    assert_eq!(
        code(&frame(0x10, &[0, 4, b'M', b'Q', b'T', b'T']), ctx_new()),
        MALFORMED
    );
    // A protocol name longer than the packet.
    assert_eq!(
        code(&frame(0x10, &[0, 9, b'M', b'Q']), ctx_new()),
        MALFORMED
    );
}

#[test]
fn connect_flags() {
    let cid = [0x00, 0x01, b'c'];
    let will = [0x00, 0x01, b'w', 0x00, 0x00];
    // Reserved bit 0.
    assert_eq!(code(&connect311(0x03, &cid), ctx_new()), MALFORMED);
    // Will QoS 3.
    let mut p = cid.to_vec();
    p.extend_from_slice(&will);
    assert_eq!(code(&connect311(0b0001_1110, &p), ctx_new()), MALFORMED);
    // Will QoS 2 with the will flag is fine.
    assert!(dec(&connect311(0b0001_0110, &p), ctx_new()).is_ok());
    // Will QoS or will retain without the will flag.
    assert_eq!(code(&connect311(0b0000_1010, &cid), ctx_new()), MALFORMED);
    assert_eq!(code(&connect311(0b0010_0010, &cid), ctx_new()), MALFORMED);
    // Password without user name: malformed in 3.1.1, allowed in 5.0.
    let mut p = cid.to_vec();
    p.extend_from_slice(&[0x00, 0x02, b'p', b'w']);
    assert_eq!(code(&connect311(0x42, &p), ctx_new()), MALFORMED);
    let Packet::Connect(c) = dec(&connect5(0x42, &[0], &p), ctx_new()).unwrap() else {
        panic!("not a CONNECT");
    };
    assert_eq!(
        (c.username, c.password.as_deref()),
        (None, Some(&b"pw"[..]))
    );
}

#[test]
fn connect_length() {
    let cid = [0x00, 0x01, b'c'];
    // Trailing bytes after the payload.
    let mut p = cid.to_vec();
    p.push(0x00);
    assert_eq!(
        err(&connect311(0x02, &p), ctx_new()),
        DecodeError::Malformed("trailing bytes after CONNECT")
    );
    // Missing user name the flags announce.
    assert_eq!(code(&connect311(0x82, &cid), ctx_new()), MALFORMED);
    // Missing client identifier.
    assert_eq!(code(&connect311(0x02, &[]), ctx_new()), MALFORMED);
    // Will topic with a wildcard.
    let mut p = cid.to_vec();
    p.extend_from_slice(&[0x00, 0x01, b'#', 0x00, 0x00]);
    assert_eq!(
        err(&connect311(0x06, &p), ctx_new()),
        DecodeError::InvalidTopic(TopicError::Wildcard)
    );
    assert_eq!(code(&connect311(0x06, &p), ctx_new()), TOPIC_NAME_INVALID);
}

#[test]
fn connack() {
    // Reserved acknowledge flags.
    assert_eq!(code(&[0x20, 2, 0x02, 0], ctx(V3)), MALFORMED);
    // Reserved v3 return code.
    assert_eq!(code(&[0x20, 2, 0, 6], ctx(V3)), MALFORMED);
    // v5 reason not defined for CONNACK.
    assert_eq!(
        code(&[0x20, 3, 0, GRANTED_QOS_1, 0], ctx(V5)),
        PROTOCOL_ERROR
    );
    // v5 CONNACK needs its property length.
    assert_eq!(code(&[0x20, 2, 0, 0], ctx(V5)), MALFORMED);
    // v3 CONNACK is exactly two bytes.
    assert_eq!(code(&[0x20, 3, 0, 0, 0], ctx(V3)), MALFORMED);
}

#[test]
fn publish() {
    // Topic with a wildcard, empty topic (3.1.1, and 5.0 without alias).
    assert_eq!(
        code(&[0x30, 4, 0, 2, b'a', b'+'], ctx(V3)),
        TOPIC_NAME_INVALID
    );
    assert_eq!(
        err(&[0x30, 2, 0, 0], ctx(V3)),
        DecodeError::InvalidTopic(TopicError::Empty)
    );
    assert_eq!(code(&[0x30, 3, 0, 0, 0], ctx(V5)), TOPIC_NAME_INVALID);
    // Empty topic with a topic alias is fine in 5.0.
    let Packet::Publish(p) = dec(&[0x30, 6, 0, 0, 3, 0x23, 0, 9], ctx(V5)).unwrap() else {
        panic!("not a PUBLISH");
    };
    assert_eq!((p.topic.as_str(), p.properties.topic_alias), ("", Some(9)));
    // Packet identifier 0.
    assert_eq!(code(&[0x32, 5, 0, 1, b't', 0, 0], ctx(V3)), PROTOCOL_ERROR);
    // Missing packet identifier.
    assert_eq!(code(&[0x32, 4, 0, 1, b't', 0], ctx(V3)), MALFORMED);
    // Topic length past the packet.
    assert_eq!(code(&[0x30, 3, 0, 5, b't'], ctx(V3)), MALFORMED);
    // Topic alias 0 (MQTT 5.0 §3.3.2.3.4: Topic Alias invalid).
    assert_eq!(
        code(&[0x30, 7, 0, 1, b't', 3, 0x23, 0, 0], ctx(V5)),
        TOPIC_ALIAS_INVALID
    );
}

#[test]
fn acks() {
    for first in [0x40, 0x50, 0x62, 0x70] {
        // Packet identifier 0.
        assert_eq!(
            code(&[first, 2, 0, 0], ctx(V3)),
            PROTOCOL_ERROR,
            "{first:#x}"
        );
        // Too short, and too long for 3.1.1.
        assert_eq!(code(&[first, 1, 0], ctx(V3)), MALFORMED, "{first:#x}");
        assert_eq!(code(&[first, 3, 0, 1, 0], ctx(V3)), MALFORMED, "{first:#x}");
        // Property length past the packet.
        assert_eq!(
            code(&[first, 4, 0, 1, 0, 5], ctx(V5)),
            MALFORMED,
            "{first:#x}"
        );
        // Trailing bytes after the properties.
        assert_eq!(
            code(&[first, 5, 0, 1, 0, 0, 0], ctx(V5)),
            MALFORMED,
            "{first:#x}"
        );
    }
    // Reason codes allowed per packet.
    assert_eq!(
        code(&[0x40, 3, 0, 1, PACKET_ID_NOT_FOUND], ctx(V5)),
        PROTOCOL_ERROR
    );
    assert!(dec(&[0x40, 3, 0, 1, NO_MATCHING_SUBSCRIBERS], ctx(V5)).is_ok());
    assert!(dec(&[0x62, 3, 0, 1, PACKET_ID_NOT_FOUND], ctx(V5)).is_ok());
    assert_eq!(
        code(&[0x62, 3, 0, 1, QUOTA_EXCEEDED], ctx(V5)),
        PROTOCOL_ERROR
    );
    assert_eq!(
        code(&[0x70, 3, 0, 1, NOT_AUTHORIZED], ctx(V5)),
        PROTOCOL_ERROR
    );
}

#[test]
fn subscribe() {
    let sub = |v5: bool, filter: &[u8], options: u8| {
        let mut body = vec![0, 1];
        if v5 {
            body.push(0);
        }
        body.extend_from_slice(&[0, filter.len() as u8]);
        body.extend_from_slice(filter);
        body.push(options);
        frame(0x82, &body)
    };
    assert!(dec(&sub(false, b"a/b", 2), ctx(V3)).is_ok());
    assert!(dec(&sub(true, b"a/b", 0b0010_1110), ctx(V5)).is_ok());
    // No filters at all.
    assert_eq!(code(&[0x82, 2, 0, 1], ctx(V3)), PROTOCOL_ERROR);
    assert_eq!(code(&[0x82, 3, 0, 1, 0], ctx(V5)), PROTOCOL_ERROR);
    // Reserved option bits: 2-7 in 3.1.1, 6-7 in 5.0.
    assert_eq!(code(&sub(false, b"a", 0x04), ctx(V3)), MALFORMED);
    assert_eq!(code(&sub(true, b"a", 0x40), ctx(V5)), MALFORMED);
    assert_eq!(code(&sub(true, b"a", 0x80), ctx(V5)), MALFORMED);
    // QoS 3, retain handling 3.
    assert_eq!(code(&sub(false, b"a", 3), ctx(V3)), MALFORMED);
    assert_eq!(code(&sub(true, b"a", 3), ctx(V5)), MALFORMED);
    assert_eq!(code(&sub(true, b"a", 0x30), ctx(V5)), MALFORMED);
    // Filters breaking the wildcard or share rules.
    for f in [
        &b"a/#/b"[..],
        b"a+",
        b"#a",
        b"$share/g",
        b"$share//a",
        b"$share/g+/a",
        b"",
    ] {
        assert_eq!(
            code(&sub(true, f, 0), ctx(V5)),
            TOPIC_FILTER_INVALID,
            "{f:?}"
        );
    }
    // Missing options byte.
    assert_eq!(code(&[0x82, 5, 0, 1, 0, 1, b'a'], ctx(V3)), MALFORMED);
    // No Local on a shared subscription.
    assert_eq!(
        code(&sub(true, b"$share/g/a", 0x04), ctx(V5)),
        PROTOCOL_ERROR
    );
    assert!(dec(&sub(true, b"$share/g/a", 0x00), ctx(V5)).is_ok());
    // Packet identifier 0.
    assert_eq!(
        code(&[0x82, 6, 0, 0, 0, 1, b'a', 0], ctx(V3)),
        PROTOCOL_ERROR
    );
}

#[test]
fn suback_unsubscribe_unsuback() {
    // SUBACK: no codes, a code not allowed.
    assert_eq!(code(&[0x90, 2, 0, 1], ctx(V3)), PROTOCOL_ERROR);
    assert_eq!(code(&[0x90, 3, 0, 1, 0x87], ctx(V3)), PROTOCOL_ERROR);
    assert!(dec(&[0x90, 4, 0, 1, 0, 0x87], ctx(V5)).is_ok());
    assert_eq!(code(&[0x90, 4, 0, 1, 0, 0x11], ctx(V5)), PROTOCOL_ERROR);
    // UNSUBSCRIBE: no filters, bad filter.
    assert_eq!(code(&[0xa2, 2, 0, 1], ctx(V3)), PROTOCOL_ERROR);
    assert!(dec(&[0xa2, 5, 0, 1, 0, 1, b'+'], ctx(V3)).is_ok());
    assert_eq!(
        code(&[0xa2, 6, 0, 1, 0, 2, b'a', b'#'], ctx(V3)),
        TOPIC_FILTER_INVALID
    );
    // UNSUBACK: exactly 2 bytes in 3.1.1; codes required in 5.0.
    assert!(dec(&[0xb0, 2, 0, 1], ctx(V3)).is_ok());
    assert_eq!(code(&[0xb0, 3, 0, 1, 0], ctx(V3)), MALFORMED);
    assert_eq!(code(&[0xb0, 3, 0, 1, 0], ctx(V5)), PROTOCOL_ERROR);
    assert_eq!(code(&[0xb0, 4, 0, 1, 0, 0x04], ctx(V5)), PROTOCOL_ERROR);
}

#[test]
fn disconnect_auth_ping() {
    assert_eq!(code(&[0xe0, 1, 0], ctx(V3)), MALFORMED);
    assert_eq!(code(&[0xe0, 1, 0x18], ctx(V5)), PROTOCOL_ERROR);
    assert_eq!(code(&[0xe0, 3, 0, 0, 0], ctx(V5)), MALFORMED);
    // AUTH may leave out both, not the property length alone.
    assert_eq!(code(&[0xf0, 1, 0x18], ctx(V5)), MALFORMED);
    assert_eq!(code(&[0xf0, 2, 0x04, 0], ctx(V5)), PROTOCOL_ERROR);
    assert_eq!(code(&[0xc0, 1, 0], ctx(V3)), MALFORMED);
    assert_eq!(code(&[0xd0, 1, 0], ctx(V5)), MALFORMED);
}

#[test]
fn utf8_strings() {
    // PUBLISH topics: invalid byte, U+0000, overlong NUL, overlong '/', surrogate, > U+10FFFF.
    for bad in [
        &[0xff][..],
        &[b'a', 0x00],
        &[0xc0, 0x80],
        &[0xc0, 0xaf],
        &[0xe0, 0x80, 0xaf],
        &[0xed, 0xa0, 0x80],
        &[0xf4, 0x90, 0x80, 0x80],
        &[0xe2, 0x82], // truncated sequence
    ] {
        let mut body = vec![0, bad.len() as u8];
        body.extend_from_slice(bad);
        assert_eq!(code(&frame(0x30, &body), ctx(V3)), MALFORMED, "{bad:x?}");
    }
    // A user property value with U+0000 in a PUBACK.
    let e = err(&[0x40, 10, 0, 1, 0, 6, 0x26, 0, 1, b'k', 0, 1, 0], ctx(V5));
    assert_eq!(e.reason_code(), MALFORMED);
    // Control characters and non-characters are only "SHOULD NOT": accepted.
    let Packet::Publish(p) = dec(&frame(0x30, &[0, 4, 0x01, 0xef, 0xbf, 0xbf]), ctx(V3)).unwrap()
    else {
        panic!("not a PUBLISH");
    };
    assert_eq!(p.topic, "\u{1}\u{ffff}");
    // Client identifier with invalid UTF-8.
    assert_eq!(code(&connect311(0x02, &[0, 1, 0x80]), ctx_new()), MALFORMED);
}

#[test]
fn error_reason_codes() {
    assert_eq!(
        DecodeError::ClientIdInvalid.reason_code(),
        CLIENT_ID_NOT_VALID
    );
    assert_eq!(
        DecodeError::InvalidTopicFilter(TopicError::BadShare).reason_code(),
        TOPIC_FILTER_INVALID
    );
    assert_eq!(DecodeError::Protocol("x").to_string(), "protocol error: x");
}
