//! Proptests: round trips in both directions, splitting never changes the outcome, arbitrary
//! bytes never panic and decode the same however they arrive.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;

use super::{client_decode_all, decode_all, decode_chunked, encoded};
use crate::client::ClientDecoder;
use crate::{AuthMethod, DecodeError, GlobalKind, Guid, Limits, Message, decode, encode};

fn name() -> impl Strategy<Value = String> {
    "[a-z0-9.@-]{0,24}"
}

fn data() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..300).prop_map(Bytes::from)
}

fn both_ways() -> impl Strategy<Value = Message> {
    prop_oneof![
        any::<u32>().prop_map(|reason| Message::Disconnect { reason }),
        (
            name(),
            any::<u32>(),
            any::<u32>(),
            name(),
            any::<u32>(),
            name(),
            any::<u32>()
        )
            .prop_map(
                |(kind, sender, window, ca, cp, oa, op)| Message::ChannelOpen {
                    kind,
                    sender,
                    window,
                    connected_address: ca,
                    connected_port: cp,
                    originator_address: oa,
                    originator_port: op,
                }
            ),
        (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(recipient, sender, window)| {
            Message::ChannelOpenConfirmation {
                recipient,
                sender,
                window,
            }
        }),
        (any::<u32>(), any::<u32>())
            .prop_map(|(recipient, reason)| Message::ChannelOpenFailure { recipient, reason }),
        (any::<u32>(), any::<u32>())
            .prop_map(|(recipient, bytes)| Message::WindowAdjust { recipient, bytes }),
        (any::<u32>(), data())
            .prop_map(|(recipient, data)| Message::ChannelData { recipient, data }),
        any::<u32>().prop_map(|recipient| Message::ChannelClose { recipient }),
        any::<u32>().prop_map(|cookie| Message::KeepaliveRequest { cookie }),
        any::<u32>().prop_map(|cookie| Message::KeepaliveReply { cookie }),
    ]
}

fn method() -> impl Strategy<Value = AuthMethod> {
    prop_oneof![
        vec(any::<u8>(), 0..40).prop_map(AuthMethod::Password),
        Just(AuthMethod::None),
        "[a-z-]{0,12}"
            .prop_filter("not a known method", |s| s != "password" && s != "none")
            .prop_map(AuthMethod::Other),
    ]
}

fn global() -> impl Strategy<Value = GlobalKind> {
    prop_oneof![
        (name(), any::<u32>())
            .prop_map(|(address, port)| GlobalKind::TcpipForward { address, port }),
        (name(), any::<u32>())
            .prop_map(|(address, port)| GlobalKind::CancelTcpipForward { address, port }),
        (name(), any::<u32>(), name(), any::<u32>(), data()).prop_map(
            |(address, port, originator, originator_port, data)| GlobalKind::UdpSendTo {
                address,
                port,
                originator,
                originator_port,
                data,
            }
        ),
    ]
}

fn from_device() -> impl Strategy<Value = Message> {
    prop_oneof![
        both_ways(),
        name().prop_map(|service| Message::ServiceRequest { service }),
        (name(), name(), method()).prop_map(|(username, service, method)| {
            Message::UserAuthRequest {
                username,
                service,
                method,
            }
        }),
        (any::<bool>(), global())
            .prop_map(|(want_reply, kind)| Message::GlobalRequest { want_reply, kind }),
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<[u8; 16]>()).prop_map(
            |(major, minor, trigger, g)| Message::ProtocolVersion {
                major,
                minor,
                trigger,
                guid: Guid(g),
            }
        ),
        (any::<u32>(), any::<u32>())
            .prop_map(|(interval, timeout)| Message::KeepaliveOptionsReply { interval, timeout }),
    ]
}

fn from_server() -> impl Strategy<Value = Message> {
    prop_oneof![
        both_ways(),
        name().prop_map(|service| Message::ServiceAccept { service }),
        (name(), any::<bool>())
            .prop_map(|(methods, partial)| Message::UserAuthFailure { methods, partial }),
        Just(Message::UserAuthSuccess),
        proptest::option::of(any::<u32>()).prop_map(|port| Message::RequestSuccess { port }),
        Just(Message::RequestFailure),
        (any::<u32>(), any::<u32>()).prop_map(|(interval, timeout)| {
            Message::KeepaliveOptionsRequest { interval, timeout }
        }),
    ]
}

fn wire(msgs: &[Message]) -> Vec<u8> {
    let mut b = BytesMut::new();
    for m in msgs {
        encode(m, &mut b);
    }
    b.to_vec()
}

/// Feeds `bytes` in pieces cut at `cuts` (scaled to the length).
fn decode_pieces(bytes: &[u8], cuts: &[u16]) -> (Vec<Message>, Option<DecodeError>) {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|&c| usize::from(c) * bytes.len() / usize::from(u16::MAX))
        .collect();
    points.push(bytes.len());
    points.sort_unstable();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut at = 0;
    for p in points {
        buf.extend_from_slice(&bytes[at..p]);
        at = p;
        loop {
            match decode(&mut buf, &Limits::default()) {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

proptest! {
    #[test]
    fn device_messages_round_trip(msgs in vec(from_device(), 0..12)) {
        let bytes = wire(&msgs);
        prop_assert_eq!(decode_all(&bytes, &Limits::default()), (msgs, None, 0));
    }

    #[test]
    fn splitting_never_changes_the_outcome(
        msgs in vec(from_device(), 1..8),
        cuts in vec(any::<u16>(), 0..8),
    ) {
        let bytes = wire(&msgs);
        prop_assert_eq!(decode_pieces(&bytes, &cuts), (msgs.clone(), None));
        prop_assert_eq!(decode_chunked(&bytes, &Limits::default(), 1), (msgs, None, 0));
    }

    #[test]
    fn arbitrary_bytes_decode_the_same_however_split(
        bytes in vec(any::<u8>(), 0..400),
        cuts in vec(any::<u16>(), 0..6),
    ) {
        let (msgs, e, _) = decode_all(&bytes, &Limits::default());
        prop_assert_eq!(decode_pieces(&bytes, &cuts), (msgs.clone(), e.clone()));
        let (m1, e1, _) = decode_chunked(&bytes, &Limits::default(), 1);
        prop_assert_eq!((m1, e1), (msgs.clone(), e));
        // Whatever decodes re-encodes to something that decodes the same.
        for m in msgs {
            prop_assert_eq!(decode_all(&encoded(&m), &Limits::default()).0, vec![m]);
        }
    }

    #[test]
    fn arbitrary_bytes_with_a_valid_type_byte(
        ty in prop::sample::select(vec![1u8, 5, 50, 80, 90, 91, 92, 93, 94, 97, 192, 208, 209, 211]),
        rest in vec(any::<u8>(), 0..120),
    ) {
        let mut bytes = vec![ty];
        bytes.extend(rest);
        let small = Limits { max_string: 16, max_data: 16 };
        let whole = decode_all(&bytes, &small);
        let (m1, e1, _) = decode_chunked(&bytes, &small, 1);
        prop_assert_eq!((m1, e1), (whole.0, whole.1));
    }

    #[test]
    fn server_messages_round_trip_through_the_client(
        msgs in vec(from_server(), 0..12),
        cuts in vec(any::<u16>(), 0..4),
    ) {
        let mut dec = ClientDecoder::new(Limits::default());
        for m in &msgs {
            let asked = match m {
                Message::RequestSuccess { port: Some(_) } => Some(GlobalKind::TcpipForward {
                    address: String::new(),
                    port: 1,
                }),
                Message::RequestSuccess { port: None } | Message::RequestFailure => {
                    Some(GlobalKind::CancelTcpipForward { address: String::new(), port: 1 })
                }
                _ => None,
            };
            if let Some(kind) = asked {
                dec.sent(&Message::GlobalRequest { want_reply: true, kind });
            }
        }
        let bytes = wire(&msgs);
        let mut split = dec.clone();
        prop_assert_eq!(client_decode_all(&mut dec, &bytes), msgs.clone());
        prop_assert_eq!(dec.pending_replies(), 0);
        // The same through a split stream.
        let mut points: Vec<usize> = cuts
            .iter()
            .map(|&c| usize::from(c) * bytes.len() / usize::from(u16::MAX))
            .collect();
        points.push(bytes.len());
        points.sort_unstable();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut at = 0;
        for p in points {
            buf.extend_from_slice(&bytes[at..p]);
            at = p;
            while let Some(m) = split.decode(&mut buf).unwrap() {
                out.push(m);
            }
        }
        prop_assert_eq!(out, msgs);
    }
}
