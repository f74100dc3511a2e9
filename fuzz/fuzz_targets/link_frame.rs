//! The control link's incremental decoders (`FrameDecoder` for `SNAPSHOT`, `AUTHED` and `KICK`,
//! `UplinkDecoder` for `APPLIED`, `REJECTED`, `AUTH`, `AUDIT` and `DEVICES`) on hostile bytes: never panic,
//! never hold more than one header line or one body, give the same result however the stream is
//! split, and whatever they accept re-encodes to bytes that decode the same.
//!
//! Input: one byte choosing the chunk size (1 to 256), then the stream.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_policy::link::{
    Frame, FrameDecoder, FrameError, MAX_ACK_LINE, MAX_AUDIT_BODY, MAX_AUTH_BODY, MAX_DEVICES_BODY,
    MAX_FRAME_HEADER, Uplink, UplinkDecoder, audit_header, authed_line, devices_header, kick_line,
    snapshot_header,
};

/// A small body limit, so that `TooLarge` is reachable within -max_len.
const LIMIT: usize = 1024;

fn frames(stream: &[u8], chunk: usize) -> (Vec<Frame>, Option<FrameError>) {
    let mut dec = FrameDecoder::with_limit(LIMIT);
    let mut out = Vec::new();
    for piece in stream.chunks(chunk) {
        let mut input = piece;
        loop {
            match dec.decode(&mut input) {
                Ok(Some(f)) => out.push(f),
                Ok(None) => {
                    assert!(input.is_empty(), "Ok(None) with input left");
                    break;
                }
                Err(e) => return (out, Some(e)),
            }
            assert!(dec.buffered() <= LIMIT.max(MAX_FRAME_HEADER));
        }
        assert!(dec.buffered() <= LIMIT.max(MAX_FRAME_HEADER));
    }
    (out, None)
}

fn uplinks(stream: &[u8], chunk: usize) -> (Vec<Uplink>, Option<FrameError>) {
    let mut dec = UplinkDecoder::new();
    let mut out = Vec::new();
    for piece in stream.chunks(chunk) {
        let mut input = piece;
        loop {
            match dec.decode(&mut input) {
                Ok(Some(m)) => out.push(m),
                Ok(None) => {
                    assert!(input.is_empty(), "Ok(None) with input left");
                    break;
                }
                Err(e) => return (out, Some(e)),
            }
            assert!(dec.buffered() <= MAX_DEVICES_BODY.max(MAX_AUDIT_BODY).max(MAX_ACK_LINE));
        }
    }
    (out, None)
}

fn encode_uplink(msg: &Uplink) -> Vec<u8> {
    match msg {
        Uplink::Ack(ack) => {
            let wire = ack.encode();
            assert!(wire.len() <= MAX_ACK_LINE, "{wire:?}");
            wire.into_bytes()
        }
        Uplink::Auth(req) => {
            let mut wire = Vec::new();
            req.encode_into(&mut wire);
            let header = wire.iter().position(|&b| b == b'\n').unwrap_or(0) + 1;
            assert!(header <= MAX_ACK_LINE);
            assert!(wire.len() - header <= MAX_AUTH_BODY);
            wire
        }
        Uplink::Audit(body) => {
            assert!(body.len() <= MAX_AUDIT_BODY);
            let mut wire = audit_header(body.len()).into_bytes();
            wire.extend_from_slice(body);
            wire
        }
        Uplink::Devices(body) => {
            assert!(body.len() <= MAX_DEVICES_BODY);
            let mut wire = devices_header(body.len()).into_bytes();
            wire.extend_from_slice(body);
            wire
        }
        _ => unreachable!("a message kind this target does not know"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(first) + 1;

    let whole = frames(stream, stream.len().max(1));
    assert_eq!(frames(stream, chunk), whole, "frames depend on the split");
    assert_eq!(frames(stream, 1), whole, "frames depend on the split");
    for frame in &whole.0 {
        let wire = match frame {
            Frame::Snapshot(body) => {
                assert!(body.len() <= LIMIT);
                let mut wire = snapshot_header(body.len()).into_bytes();
                assert!(wire.len() <= MAX_FRAME_HEADER);
                wire.extend_from_slice(body);
                wire
            }
            Frame::Authed { id, verdict } => {
                let wire = authed_line(*id, *verdict);
                assert!(wire.len() <= MAX_FRAME_HEADER, "{wire:?}");
                wire.into_bytes()
            }
            Frame::Kick(guid) => {
                let wire = kick_line(guid).expect("a decoded KICK carries a canonical GUID");
                assert!(wire.len() <= MAX_FRAME_HEADER, "{wire:?}");
                wire.into_bytes()
            }
            _ => unreachable!("a frame kind this target does not know"),
        };
        assert_eq!(frames(&wire, wire.len()), (vec![frame.clone()], None));
    }

    let whole = uplinks(stream, stream.len().max(1));
    assert_eq!(
        uplinks(stream, chunk),
        whole,
        "messages depend on the split"
    );
    assert_eq!(uplinks(stream, 1), whole, "messages depend on the split");
    for msg in &whole.0 {
        let wire = encode_uplink(msg);
        assert_eq!(uplinks(&wire, wire.len()), (vec![msg.clone()], None));
    }
});
