//! Unit tests: the RFC 6455 §5.7 examples and §1.3 handshake example, encoders, every decoder
//! error and its close code, streaming (partial input, empty frames, interleaved control
//! frames), and proptests for splitting, round trips and arbitrary bytes.

use bytes::BytesMut;

use crate::{Decoder, DecoderLimits, Event, WsError};

mod errors;
mod handshake;
mod props;
mod streaming;
mod vectors;

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn server() -> Decoder {
    Decoder::new(DecoderLimits::default())
}

fn client() -> Decoder {
    Decoder::new(DecoderLimits {
        require_mask: false,
        ..DecoderLimits::default()
    })
}

/// Decodes everything in `bytes` at once: the events up to the first error, and that error.
fn decode_all(dec: &mut Decoder, bytes: &[u8]) -> (Vec<Event>, Option<WsError>) {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    loop {
        match dec.decode(&mut buf) {
            Ok(Some(ev)) => out.push(ev),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

/// The first error decoding `bytes` on a server decoder.
fn server_error(bytes: &[u8]) -> Option<WsError> {
    decode_all(&mut server(), bytes).1
}

/// Events with the data of each message joined: splitting the input changes how data is cut
/// into `Data` events, but not this.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Joined {
    Message { text: bool, data: Vec<u8> },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close { code: Option<u16>, reason: String },
}

/// The joined events, the data of an unfinished message, and the error.
type Outcome = (Vec<Joined>, Option<(bool, Vec<u8>)>, Option<WsError>);

fn join(events: &[Event], error: Option<WsError>) -> Outcome {
    let mut out = Vec::new();
    let mut partial: Option<(bool, Vec<u8>)> = None;
    for ev in events {
        match ev {
            Event::Data { text, bytes, fin } => {
                let p = partial.get_or_insert_with(|| (*text, Vec::new()));
                assert_eq!(p.0, *text, "text flag changed inside a message");
                assert!(*fin || !bytes.is_empty(), "empty non-final Data event");
                p.1.extend_from_slice(bytes);
                if *fin {
                    let (text, data) = partial.take().unwrap_or_default();
                    out.push(Joined::Message { text, data });
                }
            }
            Event::Ping(p) => out.push(Joined::Ping(p.to_vec())),
            Event::Pong(p) => out.push(Joined::Pong(p.to_vec())),
            Event::Close { code, reason } => out.push(Joined::Close {
                code: *code,
                reason: reason.clone(),
            }),
        }
    }
    (out, partial, error)
}

/// Feeds `bytes` in pieces of `chunk` bytes, decoding until `Ok(None)` after each piece, and
/// checks that `Ok(None)` leaves at most one incomplete header or control frame behind.
fn decode_chunked(limits: DecoderLimits, bytes: &[u8], chunk: usize) -> Outcome {
    let mut dec = Decoder::new(limits);
    let mut buf = BytesMut::new();
    let mut events = Vec::new();
    for piece in bytes.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(ev)) => events.push(ev),
                Ok(None) => {
                    assert!(buf.len() < crate::MAX_HEADER_LEN + crate::MAX_CONTROL_PAYLOAD);
                    break;
                }
                Err(e) => return join(&events, Some(e)),
            }
        }
    }
    join(&events, None)
}
