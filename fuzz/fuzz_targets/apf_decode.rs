//! The APF decoders on hostile bytes: never panic, give the same messages and error however
//! the stream is split, leave less than one message in the buffer on `Ok(None)`, and whatever
//! decodes re-encodes to bytes that decode the same.
//!
//! Input: one configuration byte, two split bytes, then the stream. Configuration bit 0: small
//! limits (16-byte strings and data) or the defaults; bits 1-7: the replies the client-side
//! decoder is told to expect (set bit: a tcpip-forward, whose REQUEST_SUCCESS carries a port;
//! clear: a cancel). The split bytes pick two cut points (scaled to the stream length), so the
//! stream is fed in two or three pieces, to the server-side decoder and to the client-side one.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rampart_apf_proto::client::ClientDecoder;
use rampart_apf_proto::{DecodeError, GlobalKind, Limits, Message, decode, encode};

type Outcome = (Vec<Message>, Option<DecodeError>);

fn client(limits: Limits, config: u8) -> ClientDecoder {
    let mut dec = ClientDecoder::new(limits);
    for bit in 1..8 {
        let address = String::new();
        let kind = if config & (1 << bit) != 0 {
            GlobalKind::TcpipForward { address, port: 1 }
        } else {
            GlobalKind::CancelTcpipForward { address, port: 1 }
        };
        dec.sent(&Message::GlobalRequest {
            want_reply: true,
            kind,
        });
    }
    dec
}

/// Feeds `pieces` to `next`, a decoder over a shared buffer.
fn run(
    limits: &Limits,
    pieces: &[&[u8]],
    mut next: impl FnMut(&mut BytesMut) -> Result<Option<Message>, DecodeError>,
) -> Outcome {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match next(&mut buf) {
                Ok(Some(m)) => out.push(m),
                Ok(None) => {
                    assert!(buf.len() < limits.max_message_len(), "buffer too long");
                    break;
                }
                Err(e) => {
                    assert!(!e.reason().is_empty());
                    return (out, Some(e));
                }
            }
        }
    }
    (out, None)
}

fuzz_target!(|data: &[u8]| {
    let [config, a, b, stream @ ..] = data else {
        return;
    };
    let limits = if config & 1 != 0 {
        Limits {
            max_string: 16,
            max_data: 16,
        }
    } else {
        Limits::default()
    };
    let cut = |x: u8| usize::from(x) * stream.len() / 255;
    let (c1, c2) = (cut(*a).min(cut(*b)), cut(*a).max(cut(*b)));
    let split = [&stream[..c1], &stream[c1..c2], &stream[c2..]];

    // Server side.
    let whole = run(&limits, &[stream], |buf| decode(buf, &limits));
    let pieces = run(&limits, &split, |buf| decode(buf, &limits));
    assert_eq!(pieces, whole, "server outcome depends on the split");
    for m in &whole.0 {
        let mut buf = BytesMut::new();
        encode(m, &mut buf);
        assert_eq!(decode(&mut buf, &limits), Ok(Some(m.clone())), "round trip");
        assert!(buf.is_empty());
    }

    // Client side.
    let mut dec = client(limits, *config);
    let whole = run(&limits, &[stream], |buf| dec.decode(buf));
    let mut dec = client(limits, *config);
    let pieces = run(&limits, &split, |buf| dec.decode(buf));
    assert_eq!(pieces, whole, "client outcome depends on the split");
    let mut dec = client(limits, *config);
    for m in &whole.0 {
        let mut buf = BytesMut::new();
        encode(m, &mut buf);
        assert_eq!(
            dec.decode(&mut buf),
            Ok(Some(m.clone())),
            "client round trip"
        );
        assert!(buf.is_empty());
    }
});
