//! The AMT redirection interceptor driven by a hostile browser, a hostile device and a random
//! caller, in any interleaving and chunking: never panics, errors are sticky, every digest
//! request is well-formed, and everything sent to the device before pass-through is a console
//! message the interceptor may send (StartRedirectionSession, EndRedirectionSession, an empty
//! query, or a digest AuthenticateSession for `admin` on `/RedirectionService`): none of the
//! browser's own credentials.
//!
//! Operations are either raw bytes for one side or well-formed messages (so the fuzzer reaches
//! the later states quickly), each optionally split in two reads.

#![no_main]

use arbitrary::Arbitrary;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rampart_redir_proto::wire::{self, Challenge, DigestAuth, SessionType};
use rampart_redir_proto::{Cnonce, Event, Interceptor, Limits};

#[derive(Debug, Arbitrary)]
enum Msg {
    /// Raw bytes.
    Raw(Vec<u8>),
    /// StartRedirectionSession for session type `n % 3`.
    Start(u8),
    /// EndRedirectionSession.
    End,
    /// AuthenticateSession of the given type and data.
    Auth(u8, Vec<u8>),
    /// A browser's digest AuthenticateSession.
    Digest { user: String, response: String },
    /// StartRedirectionSessionReply with this status.
    StartReply(u8),
    /// AuthenticateSessionReply with status, type and data.
    AuthReply(u8, u8, Vec<u8>),
    /// A digest challenge with this status (qop `auth` when `None`).
    Challenge {
        status: u8,
        realm: String,
        nonce: String,
        qop: Option<String>,
    },
}

#[derive(Debug, Arbitrary)]
enum Op {
    Browser {
        msg: Msg,
        split: u8,
    },
    Device {
        msg: Msg,
        split: u8,
    },
    /// A digest response: 16 bytes as hex, or any string.
    Response(Result<[u8; 16], String>),
    Flush,
}

#[derive(Debug, Arbitrary)]
struct Input {
    small: bool,
    ops: Vec<Op>,
}

fn encode(msg: &Msg) -> Vec<u8> {
    let mut b = BytesMut::new();
    match msg {
        Msg::Raw(v) => return v.clone(),
        Msg::Start(n) => {
            let t = [SessionType::Sol, SessionType::Ider, SessionType::Kvm][usize::from(n % 3)];
            return t.start_message().to_vec();
        }
        Msg::End => return vec![wire::END_REDIRECTION_SESSION, 0, 0, 0],
        Msg::Auth(t, data) => {
            wire::encode_auth_raw(wire::AUTHENTICATE_SESSION, 0, *t, data, &mut b);
        }
        Msg::Digest { user, response } => {
            let _ = DigestAuth {
                user,
                realm: "Digest:0",
                nonce: "n",
                uri: "/x",
                cnonce: "c",
                nc: "00000001",
                response,
                qop: "auth",
            }
            .encode(&mut b);
        }
        Msg::StartReply(status) => wire::encode_start_reply(*status, (1, 0), &mut b),
        Msg::AuthReply(status, t, data) => {
            wire::encode_auth_raw(wire::AUTHENTICATE_SESSION_REPLY, *status, *t, data, &mut b);
        }
        Msg::Challenge {
            status,
            realm,
            nonce,
            qop,
        } => {
            let qop = qop.as_deref().unwrap_or("auth");
            let _ = Challenge { realm, nonce, qop }.encode(*status, &mut b);
        }
    }
    b.to_vec()
}

fn hex(bytes: [u8; 16]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks that `out` is a sequence of whole console messages the interceptor may send.
fn check_handshake_out(mut out: &[u8], cnonce: &str) {
    while let Some(&kind) = out.first() {
        let len = match kind {
            wire::START_REDIRECTION_SESSION => {
                let tag: [u8; 4] = out[4..8].try_into().unwrap();
                assert!(SessionType::from_tag(tag).is_some());
                wire::START_SESSION_LEN
            }
            wire::END_REDIRECTION_SESSION => wire::END_SESSION_LEN,
            wire::AUTHENTICATE_SESSION => {
                let n = u32::from_le_bytes(out[5..9].try_into().unwrap()) as usize;
                let data = &out[9..9 + n];
                match out[4] {
                    wire::AUTH_QUERY => assert!(data.is_empty()),
                    wire::AUTH_DIGEST => {
                        let d = DigestAuth::parse(data).expect("own digest parses");
                        assert_eq!(d.user, "admin");
                        assert_eq!(d.uri, "/RedirectionService");
                        assert!(d.cnonce.is_empty() || d.cnonce == cnonce);
                        assert!(d.response.is_empty() || d.response.len() == 32);
                    }
                    t => panic!("auth type {t} sent to the device"),
                }
                9 + n
            }
            k => panic!("message {k:#x} sent to the device during the handshake"),
        };
        out = &out[len..];
    }
}

fuzz_target!(|input: Input| {
    let limits = if input.small {
        Limits {
            max_handshake: 128,
            max_held: 64,
            max_field: 16,
            max_auth_attempts: 2,
        }
    } else {
        Limits::default()
    };
    let cnonce = Cnonce::from_random([7; 16]);
    let mut i = Interceptor::new(limits, cnonce.clone());
    let (mut dev, mut br) = (BytesMut::new(), BytesMut::new());
    let mut handshake_out = Vec::new();
    let mut failed = None;
    for op in &input.ops {
        let was_passthrough = i.is_passthrough();
        let before = dev.len();
        let r = match op {
            Op::Browser { msg, split } => {
                let bytes = encode(msg);
                let at = usize::from(*split).min(bytes.len());
                i.from_browser(&bytes[..at], &mut dev)
                    .and_then(|()| i.from_browser(&bytes[at..], &mut dev))
            }
            Op::Device { msg, split } => {
                let bytes = encode(msg);
                let at = usize::from(*split).min(bytes.len());
                i.from_device(&bytes[..at], &mut br)
                    .and_then(|()| i.from_device(&bytes[at..], &mut br))
            }
            Op::Response(Ok(b)) => i.digest_response(&hex(*b), &mut dev),
            Op::Response(Err(s)) => i.digest_response(s, &mut dev),
            Op::Flush => i.flush_to_device(&mut dev),
        };
        if let Err(e) = r {
            if let Some(old) = failed {
                assert_eq!(e, old, "errors are sticky");
            }
            failed = Some(e);
            assert_eq!(i.error(), Some(e));
            // Output of a failing call is never sent.
            dev.truncate(before);
        } else {
            assert!(failed.is_none(), "a call succeeded after an error");
        }
        if !was_passthrough {
            handshake_out.extend_from_slice(&dev[before..]);
        }
        while let Some(ev) = i.poll_event() {
            if let Event::NeedDigest(req) = ev {
                assert_eq!(req.user, "admin");
                assert_eq!(req.uri, "/RedirectionService");
                assert_eq!(req.method, "POST");
                assert_eq!(req.qop, "auth");
                assert_eq!(req.cnonce, cnonce.as_str());
                assert_eq!(req.nc.len(), 8);
                assert!(!req.realm.is_empty() && req.realm.len() <= usize::from(limits.max_field));
                assert!(!req.nonce.is_empty() && req.nonce.len() <= usize::from(limits.max_field));
            }
        }
    }
    check_handshake_out(&handshake_out, cnonce.as_str());
});
