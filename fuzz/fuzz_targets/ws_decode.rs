//! The WebSocket frame decoder on hostile bytes: never panics, leaves at most one incomplete
//! header or control frame in the buffer on `Ok(None)`, maps every error to a close status, and
//! gives the same messages, control frames and error however the stream is split.
//!
//! Input: one configuration byte, two split bytes, then the stream. Configuration bit 0:
//! require masking (the server side) or not; bit 1: a small (64 byte) or the default (16 MiB)
//! frame size limit. The split bytes pick two cut points (scaled to the stream length), so the
//! stream is fed in two or three pieces.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rampart_ws_proto::{
    Decoder, DecoderLimits, Event, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, WsError,
};

/// Events with each message's data joined, plus the data of an unfinished message and the error.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    events: Vec<Event>,
    partial: Option<(bool, Vec<u8>)>,
    error: Option<WsError>,
}

fn run(limits: DecoderLimits, pieces: &[&[u8]]) -> Outcome {
    let mut dec = Decoder::new(limits);
    let mut buf = BytesMut::new();
    let mut out = Outcome {
        events: Vec::new(),
        partial: None,
        error: None,
    };
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(Event::Data { text, bytes, fin })) => {
                    assert!(fin || !bytes.is_empty(), "empty non-final Data");
                    let (t, data) = out.partial.get_or_insert_with(|| (text, Vec::new()));
                    assert_eq!(*t, text, "text flag changed inside a message");
                    data.extend_from_slice(&bytes);
                    if fin {
                        let (text, data) = out.partial.take().unwrap_or_default();
                        out.events.push(Event::Data {
                            text,
                            bytes: data.into(),
                            fin,
                        });
                    }
                }
                Ok(Some(ev)) => {
                    if let Event::Ping(p) | Event::Pong(p) = &ev {
                        assert!(p.len() <= MAX_CONTROL_PAYLOAD);
                    }
                    out.events.push(ev);
                }
                Ok(None) => {
                    assert!(buf.len() < MAX_HEADER_LEN + MAX_CONTROL_PAYLOAD);
                    break;
                }
                Err(e) => {
                    assert!(matches!(e.close_code(), 1002 | 1007 | 1009));
                    assert!(!e.reason().is_empty());
                    // Sticky, and consumes nothing.
                    let len = buf.len();
                    assert_eq!(dec.decode(&mut buf), Err(e.clone()));
                    assert_eq!(buf.len(), len);
                    out.error = Some(e);
                    return out;
                }
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let [config, a, b, stream @ ..] = data else {
        return;
    };
    let limits = DecoderLimits {
        max_frame: if config & 0b10 != 0 { 64 } else { 16 << 20 },
        require_mask: config & 0b1 != 0,
    };
    let cut = |x: u8| usize::from(x) * stream.len() / 255;
    let (c1, c2) = (cut(*a).min(cut(*b)), cut(*a).max(cut(*b)));
    let whole = run(limits, &[stream]);
    let split = run(limits, &[&stream[..c1], &stream[c1..c2], &stream[c2..]]);
    assert_eq!(split, whole, "outcome depends on the split");
});
