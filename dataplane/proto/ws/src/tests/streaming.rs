//! Partial input, empty frames, control frames between fragments, what `Ok(None)` leaves.

use bytes::{Bytes, BytesMut};

use super::{Joined, MASK, decode_all, decode_chunked, server};
use crate::{DecoderLimits, Event, OpCode, encode_masked};

fn masked(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_masked(&mut out, opcode, fin, payload, MASK);
    out.to_vec()
}

#[test]
fn partial_frame_delivered_as_it_arrives() {
    let f = masked(OpCode::Binary, true, b"abcdefgh");
    let mut dec = server();
    let mut buf = BytesMut::new();
    // Header alone (6 bytes) in two steps: nothing yet.
    buf.extend_from_slice(&f[..3]);
    assert_eq!(dec.decode(&mut buf), Ok(None));
    assert_eq!(buf.len(), 3, "an incomplete header stays in the buffer");
    buf.extend_from_slice(&f[3..6]);
    assert_eq!(dec.decode(&mut buf), Ok(None));
    assert!(buf.is_empty(), "a complete data header is consumed");
    assert!(dec.in_message());
    // Payload in pieces, unmasked with the right key phase.
    buf.extend_from_slice(&f[6..9]);
    assert_eq!(
        dec.decode(&mut buf),
        Ok(Some(Event::Data {
            text: false,
            bytes: Bytes::from_static(b"abc"),
            fin: false
        }))
    );
    assert_eq!(dec.decode(&mut buf), Ok(None));
    buf.extend_from_slice(&f[9..]);
    assert_eq!(
        dec.decode(&mut buf),
        Ok(Some(Event::Data {
            text: false,
            bytes: Bytes::from_static(b"defgh"),
            fin: true
        }))
    );
    assert!(!dec.in_message());
    assert_eq!(dec.decode(&mut buf), Ok(None));
}

#[test]
fn control_frame_waits_until_complete() {
    let f = masked(OpCode::Ping, true, &[7; 125]);
    let mut dec = server();
    let mut buf = BytesMut::from(&f[..f.len() - 1]);
    assert_eq!(dec.decode(&mut buf), Ok(None));
    assert_eq!(buf.len(), f.len() - 1, "an incomplete control frame stays");
    buf.extend_from_slice(&f[f.len() - 1..]);
    assert_eq!(
        dec.decode(&mut buf),
        Ok(Some(Event::Ping(Bytes::from(vec![7; 125]))))
    );
    assert!(buf.is_empty());
}

#[test]
fn control_frames_between_fragments() {
    let s = [
        masked(OpCode::Text, false, b"Hel"),
        masked(OpCode::Ping, true, b"p"),
        masked(OpCode::Continuation, false, b""),
        masked(OpCode::Pong, true, b""),
        masked(OpCode::Continuation, true, b"lo"),
        masked(OpCode::Close, true, &[0x03, 0xE8]),
    ]
    .concat();
    let expected = vec![
        Joined::Ping(b"p".to_vec()),
        Joined::Pong(Vec::new()),
        Joined::Message {
            text: true,
            data: b"Hello".to_vec(),
        },
        Joined::Close {
            code: Some(1000),
            reason: String::new(),
        },
    ];
    for chunk in [1, 2, 3, 5, 8, 13, s.len()] {
        assert_eq!(
            decode_chunked(DecoderLimits::default(), &s, chunk),
            (expected.clone(), None, None),
            "chunk {chunk}"
        );
    }
    // Whole: the empty non-final fragment yields nothing.
    let (events, err) = decode_all(&mut server(), &s);
    assert_eq!(err, None);
    assert_eq!(events.len(), 5);
}

#[test]
fn empty_final_frames_mark_message_ends() {
    let s = [
        masked(OpCode::Binary, true, b""),
        masked(OpCode::Text, false, b"ab"),
        masked(OpCode::Continuation, true, b""),
    ]
    .concat();
    let (events, err) = decode_all(&mut server(), &s);
    assert_eq!(err, None);
    assert_eq!(
        events,
        vec![
            Event::Data {
                text: false,
                bytes: Bytes::new(),
                fin: true
            },
            Event::Data {
                text: true,
                bytes: Bytes::from_static(b"ab"),
                fin: false
            },
            Event::Data {
                text: true,
                bytes: Bytes::new(),
                fin: true
            },
        ]
    );
}

#[test]
fn data_is_a_view_of_the_read_buffer() {
    let f = masked(OpCode::Binary, true, &[0x55; 4096]);
    let mut buf = BytesMut::from(&f[..]);
    let base = buf.as_ptr() as usize;
    let Ok(Some(Event::Data { bytes, .. })) = server().decode(&mut buf) else {
        panic!("no data");
    };
    // The payload sits right after the 8-byte header: no copy was made.
    assert_eq!(bytes.as_ptr() as usize, base + 8);
    assert!(bytes.iter().all(|&b| b == 0x55));
}
