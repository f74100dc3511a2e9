//! The derived vectors of reference §5 (GUID `12345678-9abc-def0-1122-334455667788`, user
//! `user1`, password `P@ss`, host `host1`), each decoded and encoded.

use bytes::{Bytes, BytesMut};

use super::{encoded, hex};
use crate::client::ClientDecoder;
use crate::{AuthMethod, GlobalKind, Guid, Limits, Message, decode};

const GUID: &str = "12345678-9abc-def0-1122-334455667788";

fn guid() -> Guid {
    GUID.parse().unwrap()
}

/// Decodes `wire` on the server side: exactly one message, all bytes taken.
fn server_decodes(wire: &[u8], expected: &Message) {
    let mut buf = BytesMut::from(wire);
    let got = decode(&mut buf, &Limits::default()).unwrap().unwrap();
    assert_eq!(&got, expected);
    assert!(buf.is_empty(), "left {} bytes", buf.len());
}

/// Decodes `wire` on the client side, after the client sent `asked` (if any).
fn client_decodes(wire: &[u8], asked: Option<&Message>, expected: &Message) {
    let mut dec = ClientDecoder::new(Limits::default());
    if let Some(m) = asked {
        dec.sent(m);
    }
    let mut buf = BytesMut::from(wire);
    let got = dec.decode(&mut buf).unwrap().unwrap();
    assert_eq!(&got, expected);
    assert!(buf.is_empty(), "left {} bytes", buf.len());
}

/// Checks the length, the encoding, and decoding on the sides that may receive it.
fn check(wire: &str, len: usize, msg: &Message, server: bool, client: bool) {
    let wire = hex(wire);
    assert_eq!(wire.len(), len, "vector length");
    assert_eq!(encoded(msg), wire, "encoding of {msg:?}");
    if server {
        server_decodes(&wire, msg);
    }
    if client {
        client_decodes(&wire, None, msg);
    }
}

fn forward(port: u32) -> Message {
    Message::GlobalRequest {
        want_reply: true,
        kind: GlobalKind::TcpipForward {
            address: "host1".into(),
            port,
        },
    }
}

fn cancel(port: u32) -> Message {
    Message::GlobalRequest {
        want_reply: true,
        kind: GlobalKind::CancelTcpipForward {
            address: "host1".into(),
            port,
        },
    }
}

#[test]
fn protocol_version() {
    let wire = format!(
        "c0 00000001 00000000 00000000 78563412bc9af0de1122334455667788 {}",
        "00".repeat(64)
    );
    let msg = Message::ProtocolVersion {
        major: 1,
        minor: 0,
        trigger: 0,
        guid: guid(),
    };
    check(&wire, 93, &msg, true, false);
}

#[test]
fn service_request_and_accept() {
    check(
        "05 00000012 6175746840616d742e696e74656c2e636f6d",
        23,
        &Message::ServiceRequest {
            service: "auth@amt.intel.com".into(),
        },
        true,
        false,
    );
    check(
        "06 00000012 6175746840616d742e696e74656c2e636f6d",
        23,
        &Message::ServiceAccept {
            service: "auth@amt.intel.com".into(),
        },
        false,
        true,
    );
}

#[test]
fn userauth_request() {
    check(
        "32 00000005 7573657231 00000012 7066776440616d742e696e74656c2e636f6d
         00000008 70617373776f7264 00 00000004 50407373",
        53,
        &Message::UserAuthRequest {
            username: "user1".into(),
            service: "pfwd@amt.intel.com".into(),
            method: AuthMethod::Password(b"P@ss".to_vec()),
        },
        true,
        false,
    );
}

#[test]
fn userauth_success() {
    check("34", 1, &Message::UserAuthSuccess, false, true);
}

#[test]
fn userauth_failure_is_the_14_byte_form() {
    let msg = Message::UserAuthFailure {
        methods: "password".into(),
        partial: false,
    };
    check("33 00000008 70617373776f7264 00", 14, &msg, false, true);
    // The 15-byte form MPS sends is not what we write.
    assert_ne!(encoded(&msg), hex("33 00000008 70617373776f7264 0000"));
}

#[test]
fn global_request_tcpip_forward() {
    check(
        "50 0000000d 74637069702d666f7277617264 01 00000005 686f737431 00004260",
        32,
        &forward(16992),
        true,
        false,
    );
}

#[test]
fn global_request_cancel() {
    check(
        "50 00000014 63616e63656c2d74637069702d666f7277617264 01 00000005 686f737431 00004260",
        39,
        &cancel(16992),
        true,
        false,
    );
}

#[test]
fn request_success_with_and_without_port() {
    let with = Message::RequestSuccess { port: Some(16992) };
    let wire = hex("51 00004260");
    assert_eq!(encoded(&with), wire);
    client_decodes(&wire, Some(&forward(16992)), &with);

    let without = Message::RequestSuccess { port: None };
    let wire = hex("51");
    assert_eq!(encoded(&without), wire);
    client_decodes(&wire, Some(&cancel(16992)), &without);
}

#[test]
fn keepalive_options() {
    check(
        "d2 0000001e 00000000",
        9,
        &Message::KeepaliveOptionsRequest {
            interval: 30,
            timeout: 0,
        },
        false,
        true,
    );
    check(
        "d3 0000001e 00000000",
        9,
        &Message::KeepaliveOptionsReply {
            interval: 30,
            timeout: 0,
        },
        true,
        false,
    );
}

#[test]
fn keepalive_request_and_reply() {
    check(
        "d0 000000ff",
        5,
        &Message::KeepaliveRequest { cookie: 255 },
        true,
        true,
    );
    check(
        "d1 000000ff",
        5,
        &Message::KeepaliveReply { cookie: 255 },
        true,
        true,
    );
}

#[test]
fn channel_open() {
    let spaced = "5a 0000000f 666f727761726465642d7463706970 00000004 00008000 ffffffff
                  00000000 00004260 00000007 312e322e332e34 00000400";
    let contiguous = "5a0000000f666f727761726465642d74637069700000000400008000ffffffff\
                      000000000000426000000007312e322e332e3400000400";
    assert_eq!(hex(spaced), hex(contiguous));
    check(
        spaced,
        55,
        &Message::ChannelOpen {
            kind: "forwarded-tcpip".into(),
            sender: 4,
            window: 32768,
            connected_address: String::new(),
            connected_port: 16992,
            originator_address: "1.2.3.4".into(),
            originator_port: 1024,
        },
        true,
        true,
    );
}

#[test]
fn channel_open_confirmation_and_failure() {
    check(
        "5b 00000004 00001234 00001000 ffffffff",
        17,
        &Message::ChannelOpenConfirmation {
            recipient: 4,
            sender: 0x1234,
            window: 4096,
        },
        true,
        true,
    );
    check(
        "5c 00000004 00000002 00000000 00000000",
        17,
        &Message::ChannelOpenFailure {
            recipient: 4,
            reason: 2,
        },
        true,
        true,
    );
}

#[test]
fn window_adjust_data_close() {
    check(
        "5d 00001234 00004000",
        9,
        &Message::WindowAdjust {
            recipient: 0x1234,
            bytes: 16384,
        },
        true,
        true,
    );
    check(
        "5e 00001234 00000005 68656c6c6f",
        14,
        &Message::ChannelData {
            recipient: 0x1234,
            data: Bytes::from_static(b"hello"),
        },
        true,
        true,
    );
    check(
        "61 00001234",
        5,
        &Message::ChannelClose { recipient: 0x1234 },
        true,
        true,
    );
}

#[test]
fn disconnect() {
    check(
        "01 0000000b 0000",
        7,
        &Message::Disconnect { reason: 11 },
        true,
        true,
    );
}

#[test]
fn guid_byte_order() {
    let g = guid();
    assert_eq!(g.0, hex("12345678 9abc def0 1122 334455667788").as_slice());
    let wire = hex("78563412bc9af0de1122334455667788");
    assert_eq!(g.to_wire().as_slice(), wire.as_slice());
    assert_eq!(Guid::from_wire(g.to_wire()), g);
    assert_eq!(g.to_string(), GUID);
    assert_eq!(format!("{g:?}"), GUID);
    assert_eq!(
        "12345678-9ABC-DEF0-1122-334455667788".parse::<Guid>(),
        Ok(g)
    );
    for bad in [
        "",
        "12345678-9abc-def0-1122-33445566778",
        "12345678-9abc-def0-1122-3344556677888",
        "12345678x9abc-def0-1122-334455667788",
        "1234567g-9abc-def0-1122-334455667788",
        "{2345678-9abc-def0-1122-334455667788}",
        "123456789abcdef0112233445566778899aa",
    ] {
        assert!(bad.parse::<Guid>().is_err(), "{bad:?}");
    }
}
