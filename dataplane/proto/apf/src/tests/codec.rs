//! Decoder errors, limits, incomplete input, coalesced input, zero copy.

use bytes::{Bytes, BytesMut};

use super::{decode_all, decode_chunked, encoded, hex};
use crate::{AuthMethod, DecodeError, GlobalKind, Guid, Limits, Message, decode, msg};

fn limits(max_string: usize, max_data: usize) -> Limits {
    Limits {
        max_string,
        max_data,
    }
}

fn err(bytes: &[u8]) -> DecodeError {
    decode_all(bytes, &Limits::default()).1.expect("an error")
}

/// A device session's messages, in order.
pub(super) fn device_stream() -> Vec<Message> {
    vec![
        Message::ProtocolVersion {
            major: 1,
            minor: 0,
            trigger: 4,
            guid: Guid([7; 16]),
        },
        Message::ServiceRequest {
            service: "auth@amt.intel.com".into(),
        },
        Message::UserAuthRequest {
            username: "user1".into(),
            service: "pfwd@amt.intel.com".into(),
            method: AuthMethod::Password(b"P@ss".to_vec()),
        },
        Message::UserAuthRequest {
            username: "u".into(),
            service: "pfwd@amt.intel.com".into(),
            method: AuthMethod::None,
        },
        Message::UserAuthRequest {
            username: "u".into(),
            service: "pfwd@amt.intel.com".into(),
            method: AuthMethod::Other("publickey".into()),
        },
        Message::ServiceRequest {
            service: "pfwd@amt.intel.com".into(),
        },
        Message::GlobalRequest {
            want_reply: true,
            kind: GlobalKind::TcpipForward {
                address: String::new(),
                port: 16992,
            },
        },
        Message::GlobalRequest {
            want_reply: false,
            kind: GlobalKind::CancelTcpipForward {
                address: "a".into(),
                port: 5900,
            },
        },
        Message::GlobalRequest {
            want_reply: true,
            kind: GlobalKind::UdpSendTo {
                address: "10.0.0.1".into(),
                port: 53,
                originator: "10.0.0.2".into(),
                originator_port: 5353,
                data: Bytes::from_static(b"datagram"),
            },
        },
        Message::KeepaliveOptionsReply {
            interval: 30,
            timeout: 90,
        },
        Message::KeepaliveRequest { cookie: 1 },
        Message::KeepaliveReply { cookie: 2 },
        Message::ChannelOpenConfirmation {
            recipient: 4,
            sender: 9,
            window: 4096,
        },
        Message::ChannelData {
            recipient: 4,
            data: Bytes::from_static(b"HTTP/1.1 200 OK\r\n"),
        },
        Message::ChannelData {
            recipient: 4,
            data: Bytes::new(),
        },
        Message::WindowAdjust {
            recipient: 4,
            bytes: 100,
        },
        Message::ChannelOpenFailure {
            recipient: 5,
            reason: 2,
        },
        Message::ChannelOpen {
            kind: "direct-tcpip".into(),
            sender: 1,
            window: 2,
            connected_address: "x".into(),
            connected_port: 3,
            originator_address: "y".into(),
            originator_port: 4,
        },
        Message::ChannelClose { recipient: 4 },
        Message::Disconnect { reason: 11 },
    ]
}

#[test]
fn coalesced_and_split_input() {
    let msgs = device_stream();
    let mut wire = Vec::new();
    for m in &msgs {
        wire.extend(encoded(m));
    }
    let whole = decode_all(&wire, &Limits::default());
    assert_eq!(whole, (msgs.clone(), None, 0));
    for chunk in [1, 2, 3, 5, 7, 13, 64] {
        assert_eq!(
            decode_chunked(&wire, &Limits::default(), chunk),
            whole,
            "chunk {chunk}"
        );
    }
}

#[test]
fn every_prefix_is_incomplete_and_untouched() {
    for m in device_stream() {
        let wire = encoded(&m);
        for cut in 0..wire.len() {
            let mut buf = BytesMut::from(&wire[..cut]);
            assert_eq!(
                decode(&mut buf, &Limits::default()),
                Ok(None),
                "{m:?} cut at {cut}"
            );
            assert_eq!(&buf[..], &wire[..cut], "buffer changed");
        }
    }
}

#[test]
fn channel_data_is_zero_copy() {
    let wire = encoded(&Message::ChannelData {
        recipient: 1,
        data: Bytes::from_static(b"payload"),
    });
    let mut buf = BytesMut::from(&wire[..]);
    buf.extend_from_slice(&encoded(&Message::KeepaliveRequest { cookie: 3 }));
    let base = buf.as_ptr() as usize;
    let Some(Message::ChannelData { data, .. }) = decode(&mut buf, &Limits::default()).unwrap()
    else {
        panic!("not data");
    };
    assert_eq!(&data[..], b"payload");
    assert_eq!(data.as_ptr() as usize, base + 9, "payload was copied");
    assert_eq!(
        decode(&mut buf, &Limits::default()).unwrap(),
        Some(Message::KeepaliveRequest { cookie: 3 })
    );
}

#[test]
fn string_limit_checked_from_the_length_field() {
    let l = limits(8, 64);
    // SERVICE_REQUEST announcing 9 bytes: refused with only the length field present.
    let (msgs, e, left) = decode_all(&hex("05 00000009"), &l);
    assert!(msgs.is_empty());
    assert_eq!(e, Some(DecodeError::StringTooLong { len: 9, max: 8 }));
    assert_eq!(left, 5, "buffer untouched on error");
    // Exactly the limit is fine.
    let ok = encoded(&Message::ServiceRequest {
        service: "12345678".into(),
    });
    assert_eq!(decode_all(&ok, &l).0.len(), 1);
    assert_eq!(decode_all(&ok[..6], &l), (vec![], None, 6));
    // Every string field is limited: user, service, method, password, addresses (the limit
    // leaves room for the name "tcpip-forward").
    let l = limits(13, 64);
    let long = "x".repeat(14);
    let cases = [
        Message::UserAuthRequest {
            username: long.clone(),
            service: "s".into(),
            method: AuthMethod::None,
        },
        Message::UserAuthRequest {
            username: "u".into(),
            service: "s".into(),
            method: AuthMethod::Password(long.clone().into_bytes()),
        },
        Message::UserAuthRequest {
            username: "u".into(),
            service: "s".into(),
            method: AuthMethod::Other(long.clone()),
        },
        Message::GlobalRequest {
            want_reply: false,
            kind: GlobalKind::TcpipForward {
                address: long.clone(),
                port: 1,
            },
        },
        Message::ChannelOpen {
            kind: "k".into(),
            sender: 0,
            window: 0,
            connected_address: String::new(),
            connected_port: 0,
            originator_address: long.clone(),
            originator_port: 0,
        },
    ];
    for m in cases {
        assert_eq!(
            decode_all(&encoded(&m), &l).1,
            Some(DecodeError::StringTooLong { len: 14, max: 13 }),
            "{m:?}"
        );
    }
    // Default limit 2048.
    let (_, e, _) = decode_all(&hex("05 00000801"), &Limits::default());
    assert_eq!(
        e,
        Some(DecodeError::StringTooLong {
            len: 2049,
            max: 2048
        })
    );
    assert_eq!(decode_all(&hex("05 00000800"), &Limits::default()).1, None);
}

#[test]
fn data_limit_checked_from_the_length_field() {
    let l = limits(64, 16);
    let (_, e, _) = decode_all(&hex("5e 00000001 00000011"), &l);
    assert_eq!(e, Some(DecodeError::DataTooLong { len: 17, max: 16 }));
    assert_eq!(decode_all(&hex("5e 00000001 00000010"), &l).1, None);
    // Default 1 MiB.
    let (_, e, _) = decode_all(&hex("5e 00000001 00100001"), &Limits::default());
    assert_eq!(
        e,
        Some(DecodeError::DataTooLong {
            len: (1 << 20) + 1,
            max: 1 << 20
        })
    );
    assert_eq!(
        decode_all(&hex("5e 00000001 00100000"), &Limits::default()).1,
        None
    );
    // The udp-send-to datagram too.
    let udp = Message::GlobalRequest {
        want_reply: false,
        kind: GlobalKind::UdpSendTo {
            address: String::new(),
            port: 0,
            originator: String::new(),
            originator_port: 0,
            data: Bytes::from(vec![0; 17]),
        },
    };
    assert_eq!(
        decode_all(&encoded(&udp), &l).1,
        Some(DecodeError::DataTooLong { len: 17, max: 16 })
    );
}

#[test]
fn huge_length_fields_never_overflow() {
    let l = Limits {
        max_string: usize::MAX,
        max_data: usize::MAX,
    };
    assert_eq!(decode_all(&hex("05 ffffffff 00"), &l), (vec![], None, 6));
    assert_eq!(
        decode_all(&hex("5e 00000000 ffffffff"), &l),
        (vec![], None, 9)
    );
}

#[test]
fn unknown_types() {
    for ty in [
        0u8, 2, 3, 4, 7, 49, 53, 79, 83, 89, 95, 96, 98, 191, 193, 207, 212, 250, 255,
    ] {
        assert_eq!(err(&[ty, 0, 0, 0, 0]), DecodeError::UnknownType(ty), "{ty}");
    }
}

#[test]
fn server_only_types_are_refused_by_the_server() {
    for ty in [
        msg::SERVICE_ACCEPT,
        msg::USERAUTH_FAILURE,
        msg::USERAUTH_SUCCESS,
        msg::REQUEST_SUCCESS,
        msg::REQUEST_FAILURE,
        msg::KEEPALIVE_OPTIONS_REQUEST,
    ] {
        // Refused from the type byte alone.
        assert_eq!(err(&[ty]), DecodeError::WrongDirection(ty), "{ty}");
    }
}

#[test]
fn unknown_global_request_cannot_be_framed() {
    let wire = hex("50 00000004 61626364 01 00000000 00000001");
    assert_eq!(err(&wire), DecodeError::UnknownGlobalRequest);
    // Refused as soon as the name is complete.
    assert_eq!(err(&wire[..9]), DecodeError::UnknownGlobalRequest);
}

#[test]
fn bools_must_be_zero_or_one() {
    let mut wire = encoded(&Message::GlobalRequest {
        want_reply: true,
        kind: GlobalKind::TcpipForward {
            address: String::new(),
            port: 1,
        },
    });
    wire[18] = 2;
    assert_eq!(err(&wire), DecodeError::InvalidBool(2));
}

#[test]
fn password_flag_must_be_zero() {
    let mut wire = hex(
        "32 00000005 7573657231 00000012 7066776440616d742e696e74656c2e636f6d
         00000008 70617373776f7264 00 00000004 50407373",
    );
    wire[44] = 1;
    assert_eq!(err(&wire), DecodeError::PasswordFlag(1));
}

#[test]
fn names_must_be_utf8() {
    assert_eq!(err(&hex("05 00000002 c328")), DecodeError::InvalidUtf8);
    // A password is bytes, not text.
    let m = Message::UserAuthRequest {
        username: "u".into(),
        service: "s".into(),
        method: AuthMethod::Password(vec![0xff, 0xfe, 0]),
    };
    assert_eq!(decode_all(&encoded(&m), &Limits::default()).0, vec![m]);
}

#[test]
fn reserved_fields_are_ignored() {
    let m = decode_all(&hex("01 0000000b ffff"), &Limits::default()).0;
    assert_eq!(m, vec![Message::Disconnect { reason: 11 }]);
    let m = decode_all(
        &hex("5b 00000004 00001234 00001000 00000000"),
        &Limits::default(),
    )
    .0;
    assert_eq!(
        m,
        vec![Message::ChannelOpenConfirmation {
            recipient: 4,
            sender: 0x1234,
            window: 4096
        }]
    );
}

#[test]
fn error_labels_are_distinct_snake_case() {
    let all = [
        DecodeError::UnknownType(0),
        DecodeError::WrongDirection(0),
        DecodeError::StringTooLong { len: 0, max: 0 },
        DecodeError::DataTooLong { len: 0, max: 0 },
        DecodeError::InvalidUtf8,
        DecodeError::UnknownGlobalRequest,
        DecodeError::InvalidBool(2),
        DecodeError::PasswordFlag(1),
        DecodeError::UnexpectedReply,
    ];
    let mut labels: Vec<_> = all.iter().map(DecodeError::reason).collect();
    for l in &labels {
        assert!(
            l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{l}"
        );
    }
    labels.sort_unstable();
    labels.dedup();
    assert_eq!(labels.len(), all.len());
}

#[test]
fn auth_method_debug_redacts_the_password() {
    let m = AuthMethod::Password(b"secret".to_vec());
    assert_eq!(format!("{m:?}"), "Password(<redacted>)");
}
