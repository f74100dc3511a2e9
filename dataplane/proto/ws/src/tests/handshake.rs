//! Opening-handshake helpers (§1.3, §4.2).

use crate::handshake::{GUID, accept_key, offers_subprotocol, valid_key};

#[test]
fn accept_key_rfc_example() {
    assert_eq!(GUID, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    assert_eq!(
        accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    // Surrounding whitespace is ignored.
    assert_eq!(
        accept_key(b" dGhlIHNhbXBsZSBub25jZQ==\t"),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

#[test]
fn keys() {
    assert!(valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
    assert!(valid_key(b"  dGhlIHNhbXBsZSBub25jZQ== "));
    assert!(valid_key(b"AAAAAAAAAAAAAAAAAAAAAA=="));
    // Wrong lengths.
    assert!(!valid_key(b""));
    assert!(!valid_key(b"dGhlIHNhbXBsZSBub25jZQ="));
    assert!(!valid_key(b"dGhlIHNhbXBsZSBub25jZQ"));
    assert!(!valid_key(b"dGhlIHNhbXBsZSBub25jZQ==="));
    // 24 characters, but 17 or 18 bytes.
    assert!(!valid_key(b"dGhlIHNhbXBsZSBub25jZQA="));
    assert!(!valid_key(b"dGhlIHNhbXBsZSBub25jZQAA"));
    // Not base64, or non-canonical trailing bits.
    assert!(!valid_key(b"dGhlIHNhbXBsZSBub25jZ!=="));
    assert!(!valid_key(b"dGhlIHNhbXBsZSBub25jZR=="));
    assert!(!valid_key(b"dGhlIHNhbXBsZSBu b25jZQ=="));
    assert!(!valid_key(b"dGhlIHNhbXBsZSBub25jZQ-_"));
}

#[test]
fn subprotocols() {
    let one: [&[u8]; 1] = [b"mqtt"];
    assert!(offers_subprotocol(one, "mqtt"));
    let list: [&[u8]; 2] = [b"chat, superchat", b" wamp ,  mqtt\t"];
    assert!(offers_subprotocol(list, "mqtt"));
    assert!(offers_subprotocol(list, "superchat"));
    assert!(!offers_subprotocol(list, "MQTT"));
    assert!(!offers_subprotocol(list, "mqt"));
    assert!(!offers_subprotocol(list, "chat, superchat"));
    let empty: [&[u8]; 0] = [];
    assert!(!offers_subprotocol(empty, "mqtt"));
    let blanks: [&[u8]; 1] = [b"a,,b"];
    assert!(!offers_subprotocol(blanks, ""));
    assert!(offers_subprotocol(
        Vec::<&[u8]>::from([b"mqttv3.1".as_slice(), b"mqtt"]),
        "mqtt"
    ));
}
