//! The MQTT decoder on hostile bytes: never panics, never consumes bytes on `Ok(None)`, never
//! accepts a packet above the size limit, agrees with `peek_header`, and gives the same packets
//! and error however the stream is split.
//!
//! Input: one configuration byte, then the stream. Configuration bits 0-1: the connection's
//! version (0: before CONNECT, 1: MQTT 3.1, 2: 3.1.1, 3: 5.0); bit 2: a small (128 byte) or
//! large (1 MiB) packet size limit; bits 3-7: the chunk size (1 to 32) for the split run.
//! Before CONNECT, a decoded CONNECT switches the connection to the version it names, as the
//! broker does.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rampart_mqtt_proto::{DecodeCtx, DecodeError, Packet, Version, decode, peek_header};

fn config(b: u8) -> (DecodeCtx, usize) {
    let version = match b & 0b11 {
        0 => None,
        1 => Some(Version::V31),
        2 => Some(Version::V311),
        _ => Some(Version::V5),
    };
    let max_packet_size = if b & 0b100 != 0 { 128 } else { 1 << 20 };
    let ctx = DecodeCtx {
        version,
        max_packet_size,
    };
    (ctx, usize::from(b >> 3) + 1)
}

fn run(stream: &[u8], chunk: usize, mut ctx: DecodeCtx) -> (Vec<Packet>, Option<DecodeError>) {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in stream.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            let before = buf.clone();
            let peeked = peek_header(&before, ctx.max_packet_size);
            match decode(&mut buf, ctx) {
                Ok(Some(packet)) => {
                    let consumed = before.len() - buf.len();
                    assert!(consumed <= ctx.max_packet_size as usize);
                    assert_eq!(peeked, Ok(Some((before[0], consumed))));
                    if let (None, Packet::Connect(c)) = (ctx.version, &packet) {
                        ctx.version = Some(c.version);
                    }
                    out.push(packet);
                }
                Ok(None) => {
                    assert_eq!(buf, before, "Ok(None) consumed bytes");
                    break;
                }
                Err(e) => {
                    // Every error maps to a failure reason code.
                    assert!(e.reason_code() >= 0x80);
                    return (out, Some(e));
                }
            }
        }
    }
    (out, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, stream)) = data.split_first() else {
        return;
    };
    let (ctx, chunk) = config(first);
    let whole = run(stream, stream.len().max(1), ctx);
    assert_eq!(
        run(stream, chunk, ctx),
        whole,
        "packets depend on the split"
    );
});
