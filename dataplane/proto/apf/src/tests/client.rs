//! The client-side decoder.

use bytes::BytesMut;

use super::{encoded, hex};
use crate::client::ClientDecoder;
use crate::{DecodeError, GlobalKind, Limits, Message, msg};

fn forward(want_reply: bool) -> Message {
    Message::GlobalRequest {
        want_reply,
        kind: GlobalKind::TcpipForward {
            address: String::new(),
            port: 16992,
        },
    }
}

fn cancel() -> Message {
    Message::GlobalRequest {
        want_reply: true,
        kind: GlobalKind::CancelTcpipForward {
            address: String::new(),
            port: 16992,
        },
    }
}

#[test]
fn replies_are_matched_to_requests_in_order() {
    let mut dec = ClientDecoder::new(Limits::default());
    let mut out = BytesMut::new();
    dec.encode(&forward(true), &mut out);
    dec.sent(&forward(false)); // no reply expected
    dec.sent(&cancel());
    dec.sent(&Message::GlobalRequest {
        want_reply: true,
        kind: GlobalKind::UdpSendTo {
            address: String::new(),
            port: 0,
            originator: String::new(),
            originator_port: 0,
            data: bytes::Bytes::new(),
        },
    });
    assert_eq!(out.to_vec(), encoded(&forward(true)));
    assert_eq!(dec.pending_replies(), 3);
    // 51 00004260 | 51 | 52 | then 51 with nothing pending.
    let mut buf = BytesMut::from(&hex("51 00004260 51 52 51")[..]);
    assert_eq!(
        dec.decode(&mut buf).unwrap(),
        Some(Message::RequestSuccess { port: Some(16992) })
    );
    assert_eq!(
        dec.decode(&mut buf).unwrap(),
        Some(Message::RequestSuccess { port: None })
    );
    assert_eq!(dec.decode(&mut buf).unwrap(), Some(Message::RequestFailure));
    assert_eq!(dec.pending_replies(), 0);
    assert_eq!(dec.decode(&mut buf), Err(DecodeError::UnexpectedReply));
}

#[test]
fn a_split_request_success_waits_and_keeps_the_request() {
    let mut dec = ClientDecoder::new(Limits::default());
    dec.sent(&forward(true));
    let mut buf = BytesMut::from(&hex("51 0000")[..]);
    assert_eq!(dec.decode(&mut buf), Ok(None));
    assert_eq!(dec.pending_replies(), 1);
    buf.extend_from_slice(&hex("4260"));
    assert_eq!(
        dec.decode(&mut buf).unwrap(),
        Some(Message::RequestSuccess { port: Some(16992) })
    );
}

#[test]
fn device_only_types_are_refused() {
    for ty in [
        msg::SERVICE_REQUEST,
        msg::USERAUTH_REQUEST,
        msg::GLOBAL_REQUEST,
        msg::PROTOCOL_VERSION,
        msg::KEEPALIVE_OPTIONS_REPLY,
    ] {
        let mut dec = ClientDecoder::new(Limits::default());
        let mut buf = BytesMut::from(&[ty][..]);
        assert_eq!(dec.decode(&mut buf), Err(DecodeError::WrongDirection(ty)));
    }
}

#[test]
fn the_mps_15_byte_userauth_failure_leaves_a_stray_byte() {
    let mut dec = ClientDecoder::new(Limits::default());
    let mut buf = BytesMut::from(&hex("33 00000008 70617373776f7264 0000")[..]);
    assert_eq!(
        dec.decode(&mut buf).unwrap(),
        Some(Message::UserAuthFailure {
            methods: "password".into(),
            partial: false
        })
    );
    assert_eq!(dec.decode(&mut buf), Err(DecodeError::UnknownType(0)));
}
