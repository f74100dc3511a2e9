//! MQTT encode/decode round trip: whatever decodes re-encodes (for the connection's version; a
//! CONNECT for its own) to bytes that decode to an equal packet, `encoded_len` is exact, the
//! re-encoding is never longer than the input (the encoder writes the shortest forms), and a
//! PUBLISH written as `encode_head` plus payload is byte-identical to `encode`.
//!
//! Input: the same configuration byte as `mqtt_decode` (bits 0-1 version, bit 2 size limit;
//! the chunk bits are unused), then the stream.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rampart_mqtt_proto::{DecodeCtx, Packet, Version, decode};

fn config(b: u8) -> DecodeCtx {
    let version = match b & 0b11 {
        0 => None,
        1 => Some(Version::V31),
        2 => Some(Version::V311),
        _ => Some(Version::V5),
    };
    let max_packet_size = if b & 0b100 != 0 { 128 } else { 1 << 20 };
    DecodeCtx {
        version,
        max_packet_size,
    }
}

fn check(packet: &Packet, consumed: usize, ctx: DecodeCtx) {
    let version = match (packet, ctx.version) {
        (Packet::Connect(c), _) => c.version,
        (_, Some(v)) => v,
        (_, None) => unreachable!("only CONNECT decodes before CONNECT"),
    };
    let mut wire = BytesMut::new();
    packet
        .encode(version, &mut wire)
        .unwrap_or_else(|e| panic!("{e}: decoded {packet:?} does not encode"));
    assert_eq!(packet.encoded_len(version), Ok(wire.len()));
    assert!(wire.len() <= consumed, "re-encoding grew: {packet:?}");

    let mut again = wire.clone();
    let back = decode(&mut again, ctx)
        .unwrap_or_else(|e| panic!("{e}: re-encoded {packet:?} does not decode"))
        .expect("a whole packet");
    assert!(again.is_empty(), "bytes left after the re-encoded packet");
    assert_eq!(&back, packet);

    if let Packet::Publish(p) = packet {
        let mut head = BytesMut::new();
        p.encode_head(version, &mut head).expect("head encodes");
        assert_eq!(p.head_encoded_len(version), Ok(head.len()));
        head.extend_from_slice(&p.payload);
        assert_eq!(head, wire);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, stream)) = data.split_first() else {
        return;
    };
    let mut ctx = config(first);
    let mut buf = BytesMut::from(stream);
    loop {
        let before = buf.len();
        match decode(&mut buf, ctx) {
            Ok(Some(packet)) => {
                check(&packet, before - buf.len(), ctx);
                if let (None, Packet::Connect(c)) = (ctx.version, &packet) {
                    ctx.version = Some(c.version);
                }
            }
            Ok(None) | Err(_) => return,
        }
    }
});
