//! Unit tests: hand-written byte vectors, round trips of every packet and property, streaming
//! (partial, byte-by-byte, coalesced, oversized), every malformation and its reason code, topic
//! rules, and proptests for matching and arbitrary packets.

use bytes::BytesMut;

use crate::{DecodeCtx, DecodeError, Packet, Version, decode};

mod malformed;
mod packets;
mod properties;
mod roundtrip;
mod streaming;
mod topic;
mod vectors;

const MIB: u32 = 1 << 20;

fn ctx(version: Version) -> DecodeCtx {
    DecodeCtx {
        version: Some(version),
        max_packet_size: MIB,
    }
}

/// Before CONNECT.
fn ctx_new() -> DecodeCtx {
    DecodeCtx {
        version: None,
        max_packet_size: MIB,
    }
}

/// Encodes `p` for `v`, checking `encoded_len` agrees.
fn enc(p: &Packet, v: Version) -> BytesMut {
    let mut dst = BytesMut::new();
    p.encode(v, &mut dst).expect("encode");
    assert_eq!(p.encoded_len(v).expect("encoded_len"), dst.len(), "{p:?}");
    dst
}

/// Decodes exactly one packet that fills `bytes`.
fn dec(bytes: &[u8], ctx: DecodeCtx) -> Result<Packet, DecodeError> {
    let mut buf = BytesMut::from(bytes);
    let packet = decode(&mut buf, ctx)?.expect("a whole packet");
    assert!(buf.is_empty(), "bytes left after the packet");
    Ok(packet)
}

/// Decodes, expecting an error, and returns it.
fn err(bytes: &[u8], ctx: DecodeCtx) -> DecodeError {
    let mut buf = BytesMut::from(bytes);
    match decode(&mut buf, ctx) {
        Err(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// Encode for `v`, decode, compare.
fn roundtrip(p: &Packet, v: Version) {
    let wire = enc(p, v);
    let back = dec(&wire, ctx(v)).unwrap_or_else(|e| panic!("{e} decoding {p:?} ({v:?})"));
    assert_eq!(&back, p, "{v:?}");
}

/// Wraps a body in a fixed header (for bodies shorter than 128 bytes).
fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    assert!(body.len() < 128);
    let mut v = vec![first, body.len() as u8];
    v.extend_from_slice(body);
    v
}
