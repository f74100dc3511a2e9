//! Interceptor tests: public byte vectors, the whole handshake, split and coalesced input,
//! hostile input, and the browser's credentials never reaching the device.

use bytes::BytesMut;
use proptest::prelude::*;

use crate::wire::{self, Challenge, DigestAuth, SessionType};
use crate::{Cnonce, DigestRequest, Event, Interceptor, Limits, RedirError, Side};

const REALM: &str = "Digest:A3829B3827DE4D33D4449B366831FD01";
const NONCE: &str = "fVNueyEAAAAAAAAAcO8WqJ8s+WdyFUIY";
/// What the browser believes is a password, and the response it computes from it.
const FAKE_USER: &str = "mallory";
const FAKE_RESPONSE: &str = "ffffffffeeeeeeeeddddddddcccccccc";
const FAKE_CNONCE: &str = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";
/// What the control plane answers.
const RESPONSE: &str = "0123456789ABCDEF0123456789abcdef";

fn cnonce() -> Cnonce {
    Cnonce::from_random([0xa5; 16])
}

fn interceptor() -> Interceptor {
    Interceptor::new(Limits::default(), cnonce())
}

fn start_reply() -> Vec<u8> {
    let mut b = BytesMut::new();
    wire::encode_start_reply(wire::STATUS_SUCCESS, (11, 8), &mut b);
    b.to_vec()
}

fn auth_reply(status: u8, auth_type: u8, data: &[u8]) -> Vec<u8> {
    let mut b = BytesMut::new();
    wire::encode_auth_raw(
        wire::AUTHENTICATE_SESSION_REPLY,
        status,
        auth_type,
        data,
        &mut b,
    );
    b.to_vec()
}

fn challenge(nonce: &str) -> Vec<u8> {
    let mut b = BytesMut::new();
    Challenge {
        realm: REALM,
        nonce,
        qop: "auth",
    }
    .encode(wire::AUTH_FAILURE, &mut b)
    .unwrap();
    b.to_vec()
}

/// The digest AuthenticateSession a browser sends, with whatever it believes.
fn browser_digest(realm: &str, nonce: &str, response: &str) -> Vec<u8> {
    let mut b = BytesMut::new();
    DigestAuth {
        user: FAKE_USER,
        realm,
        nonce,
        uri: "",
        cnonce: FAKE_CNONCE,
        nc: "00000002",
        response,
        qop: "auth",
    }
    .encode(&mut b)
    .unwrap();
    b.to_vec()
}

/// MeshCentral / Open AMT UI toolkit: "Query authentication support".
const QUERY: [u8; 9] = [0x13, 0, 0, 0, 0, 0, 0, 0, 0];

fn events(i: &mut Interceptor) -> Vec<Event> {
    std::iter::from_fn(|| i.poll_event()).collect()
}

fn expected_request(nc: &str, nonce: &str) -> DigestRequest {
    DigestRequest {
        user: "admin",
        realm: REALM.into(),
        nonce: nonce.into(),
        qop: "auth",
        cnonce: "a5".repeat(16),
        nc: nc.into(),
        uri: "/RedirectionService",
        method: "POST",
    }
}

/// The interceptor's AuthenticateSession, laid out by hand as in MPS's test
/// `handleAuthenticateSession DIGEST with user, pass and digestRealm`
/// (`src/utils/redirectInterceptor.test.ts`): 0x13 0 0 0 4, u32 LE total of the eight
/// strings plus their eight length bytes, then user, realm, nonce, URI, cnonce, nc, response,
/// qop.
fn expected_digest(nc: &str, nonce: &str) -> Vec<u8> {
    let cn = "a5".repeat(16);
    let fields: [&str; 8] = [
        "admin",
        REALM,
        nonce,
        "/RedirectionService",
        &cn,
        nc,
        "0123456789abcdef0123456789abcdef",
        "auth",
    ];
    let total: usize = fields.iter().map(|f| f.len()).sum::<usize>() + 8;
    let mut v = vec![0x13, 0, 0, 0, 4];
    v.extend_from_slice(&u32::try_from(total).unwrap().to_le_bytes());
    for f in fields {
        v.push(u8::try_from(f.len()).unwrap());
        v.extend_from_slice(f.as_bytes());
    }
    v
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

// === public byte vectors ===

#[test]
fn start_messages_match_meshcentral() {
    // MeshCentral `amt-redir-ws` / Open AMT UI toolkit `AMTRedirector`: RedirectStartSol,
    // RedirectStartKvm, RedirectStartIder.
    assert_eq!(
        SessionType::Sol.start_message(),
        [0x10, 0x00, 0x00, 0x00, 0x53, 0x4F, 0x4C, 0x20]
    );
    assert_eq!(
        SessionType::Kvm.start_message(),
        [0x10, 0x01, 0x00, 0x00, 0x4b, 0x56, 0x4d, 0x52]
    );
    assert_eq!(
        SessionType::Ider.start_message(),
        [0x10, 0x00, 0x00, 0x00, 0x49, 0x44, 0x45, 0x52]
    );
    for t in [SessionType::Sol, SessionType::Ider, SessionType::Kvm] {
        assert_eq!(SessionType::from_tag(t.tag()), Some(t));
    }
    assert_eq!(SessionType::from_tag(*b"XXXX"), None);
}

#[test]
fn empty_digest_matches_mps() {
    // MPS test `handleAuthenticateSession DIGEST with user, pass and digestRealm 2`:
    // 0x13 0 0 0 4, IntToStrX(user.length + authurl.length + 8), user, 0 0, url, 0 0 0 0.
    let mut b = BytesMut::new();
    wire::encode_empty_digest("admin", "/RedirectionService", &mut b).unwrap();
    let mut want = vec![0x13, 0, 0, 0, 4, 5 + 19 + 8, 0, 0, 0, 5];
    want.extend_from_slice(b"admin");
    want.extend_from_slice(&[0, 0, 19]);
    want.extend_from_slice(b"/RedirectionService");
    want.extend_from_slice(&[0, 0, 0, 0]);
    assert_eq!(&b[..], &want[..]);
}

#[test]
fn challenge_parses_as_in_mps_test() {
    // MPS test `handleAuthenticateSessionReply DIGEST auth FALIURE status`: the data
    // `\x02AA\x05AAAAA\x04AAAA` gives realm `AA`, nonce `AAAAA`, qop `AAAA`.
    let c = Challenge::parse(b"\x02AA\x05AAAAA\x04AAAA").unwrap();
    assert_eq!((c.realm, c.nonce, c.qop), ("AA", "AAAAA", "AAAA"));
    assert!(matches!(
        Challenge::parse(b"\x02AA\x05AAAAA\x04AAAAA"),
        Err(RedirError::Malformed { .. })
    ));
    assert!(matches!(
        Challenge::parse(b"\x02AA\x09AAAAA"),
        Err(RedirError::Malformed { .. })
    ));
}

#[test]
fn start_reply_is_13_bytes() {
    // RedirectionConstants.h: START_REDIRECTION_SESSION_REPLY_LENGTH 13; byte 12 is the OEM
    // data length (MPS `handleStartRedirectionSessionReply`).
    let r = start_reply();
    assert_eq!(r.len(), 13);
    assert_eq!((r[0], r[1], r[12]), (0x11, 0, 0));
}

// === the whole handshake ===

/// The Open AMT UI toolkit's sequence (`AMTRedirector`), one message per call.
#[test]
fn ui_toolkit_sequence() {
    let mut i = interceptor();
    let (mut dev, mut br) = (BytesMut::new(), BytesMut::new());

    i.from_browser(&SessionType::Kvm.start_message(), &mut dev)
        .unwrap();
    assert_eq!(&dev[..], &SessionType::Kvm.start_message());
    assert_eq!(events(&mut i), [Event::StartRequested(SessionType::Kvm)]);
    assert_eq!(i.session_type(), Some(SessionType::Kvm));

    i.from_device(&start_reply(), &mut br).unwrap();
    assert_eq!(&br[..], &start_reply()[..]);
    assert_eq!(events(&mut i), [Event::Started]);

    dev.clear();
    i.from_browser(&QUERY, &mut dev).unwrap();
    assert_eq!(&dev[..], &QUERY);
    br.clear();
    let methods = auth_reply(0, wire::AUTH_QUERY, &[1, 3, 4]);
    i.from_device(&methods, &mut br).unwrap();
    assert_eq!(&br[..], &methods[..]);

    // The browser's empty digest becomes the interceptor's.
    dev.clear();
    i.from_browser(&browser_digest("", "", ""), &mut dev)
        .unwrap();
    let mut empty = BytesMut::new();
    wire::encode_empty_digest("admin", "/RedirectionService", &mut empty).unwrap();
    assert_eq!(dev, empty);

    // The challenge reaches the browser unchanged.
    br.clear();
    i.from_device(&challenge(NONCE), &mut br).unwrap();
    assert_eq!(&br[..], &challenge(NONCE)[..]);
    assert_eq!(events(&mut i), []);

    // The browser's real attempt: nothing goes out, the caller is asked.
    dev.clear();
    i.from_browser(&browser_digest(REALM, NONCE, FAKE_RESPONSE), &mut dev)
        .unwrap();
    assert!(dev.is_empty());
    assert_eq!(
        events(&mut i),
        [Event::NeedDigest(expected_request("00000001", NONCE))]
    );
    // Anything the browser sends now is held.
    i.from_browser(b"\x40early", &mut dev).unwrap();
    assert!(dev.is_empty());

    i.digest_response(RESPONSE, &mut dev).unwrap();
    assert_eq!(&dev[..], &expected_digest("00000001", NONCE)[..]);
    assert!(!i.is_passthrough());

    // Success and the first KVM bytes in one chunk.
    br.clear();
    let mut ok = auth_reply(0, wire::AUTH_DIGEST, &[]);
    ok.extend_from_slice(b"\x41\x01\x02\x03RFB 003.008\n");
    i.from_device(&ok, &mut br).unwrap();
    assert_eq!(&br[..], &ok[..]);
    assert_eq!(events(&mut i), [Event::Authenticated]);
    assert!(i.is_passthrough());

    dev.clear();
    i.flush_to_device(&mut dev).unwrap();
    assert_eq!(&dev[..], b"\x40early");

    // Pass-through: any bytes, both ways.
    dev.clear();
    i.from_browser(b"\x13\xff\xff\xff\xff anything", &mut dev)
        .unwrap();
    assert_eq!(&dev[..], b"\x13\xff\xff\xff\xff anything");
    br.clear();
    i.from_device(b"\x99", &mut br).unwrap();
    assert_eq!(&br[..], b"\x99");
}

/// The whole browser stream and the device's replies, for the chunking tests.
struct Script {
    browser: Vec<u8>,
    /// Device messages, each sent only once the request it answers has gone out; the last one
    /// carries session data after the success reply.
    device: Vec<Vec<u8>>,
    /// Browser bytes after authentication.
    browser_tail: Vec<u8>,
    device_tail: Vec<u8>,
}

fn script() -> Script {
    let browser_tail = b"\x20\x00\x00\x00\x01\x00\x00\x00SOL settings".to_vec();
    let mut browser = SessionType::Sol.start_message().to_vec();
    browser.extend_from_slice(&QUERY);
    browser.extend_from_slice(&browser_digest("", "", ""));
    browser.extend_from_slice(&browser_digest(REALM, NONCE, FAKE_RESPONSE));
    browser.extend_from_slice(&browser_tail);
    let device_tail = b"\x21\x00\x00\x00 serial settings reply".to_vec();
    let mut ok = auth_reply(0, wire::AUTH_DIGEST, &[]);
    ok.extend_from_slice(&device_tail);
    Script {
        browser,
        device: vec![
            start_reply(),
            auth_reply(0, wire::AUTH_QUERY, &[4]),
            challenge(NONCE),
            ok,
        ],
        browser_tail,
        device_tail,
    }
}

/// What the device and the browser must receive, however the script is chunked.
fn expected_outputs(s: &Script) -> (Vec<u8>, Vec<u8>) {
    let mut dev = SessionType::Sol.start_message().to_vec();
    dev.extend_from_slice(&QUERY);
    let mut empty = BytesMut::new();
    wire::encode_empty_digest("admin", "/RedirectionService", &mut empty).unwrap();
    dev.extend_from_slice(&empty);
    dev.extend_from_slice(&expected_digest("00000001", NONCE));
    dev.extend_from_slice(&s.browser_tail);
    let br: Vec<u8> = s.device.concat();
    (dev, br)
}

/// Splits `data` at the given cut sizes (cycled), at least one byte per piece.
fn pieces<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut k = 0;
    while !rest.is_empty() {
        let n = cuts
            .get(k % cuts.len().max(1))
            .copied()
            .unwrap_or(rest.len());
        let n = n.clamp(1, rest.len());
        let (a, b) = rest.split_at(n);
        out.push(a);
        rest = b;
        k += 1;
    }
    out
}

/// Reacts to events as a caller does.
fn settle(i: &mut Interceptor, dev: &mut BytesMut) -> Vec<Event> {
    let mut seen = Vec::new();
    i.flush_to_device(dev).unwrap();
    while let Some(e) = i.poll_event() {
        if let Event::NeedDigest(_) = &e {
            i.digest_response(RESPONSE, dev).unwrap();
        }
        seen.push(e);
        i.flush_to_device(dev).unwrap();
    }
    seen
}

/// The browser sends everything at once (in pieces), before the device has said anything.
fn run_browser_first(cuts_b: &[usize], cuts_d: &[usize]) -> (Vec<u8>, Vec<u8>, Vec<Event>) {
    let s = script();
    let mut i = interceptor();
    let (mut dev, mut br) = (BytesMut::new(), BytesMut::new());
    let mut seen = Vec::new();
    for p in pieces(&s.browser, cuts_b) {
        i.from_browser(p, &mut dev).unwrap();
        seen.extend(settle(&mut i, &mut dev));
    }
    for m in &s.device {
        for p in pieces(m, cuts_d) {
            i.from_device(p, &mut br).unwrap();
            seen.extend(settle(&mut i, &mut dev));
        }
    }
    (dev.to_vec(), br.to_vec(), seen)
}

/// Lock step: each browser message (in pieces), then its reply (in pieces); the browser's
/// last digest and its first session bytes travel in one chunk.
fn run_lockstep(cuts_b: &[usize], cuts_d: &[usize]) -> (Vec<u8>, Vec<u8>, Vec<Event>) {
    let s = script();
    let mut i = interceptor();
    let (mut dev, mut br) = (BytesMut::new(), BytesMut::new());
    let mut seen = Vec::new();
    let mut last = browser_digest(REALM, NONCE, FAKE_RESPONSE);
    last.extend_from_slice(&s.browser_tail);
    let requests: [Vec<u8>; 4] = [
        SessionType::Sol.start_message().to_vec(),
        QUERY.to_vec(),
        browser_digest("", "", ""),
        last,
    ];
    for (req, reply) in requests.iter().zip(&s.device) {
        for p in pieces(req, cuts_b) {
            i.from_browser(p, &mut dev).unwrap();
            seen.extend(settle(&mut i, &mut dev));
        }
        for p in pieces(reply, cuts_d) {
            i.from_device(p, &mut br).unwrap();
            seen.extend(settle(&mut i, &mut dev));
        }
    }
    (dev.to_vec(), br.to_vec(), seen)
}

fn check_run((dev, br, seen): (Vec<u8>, Vec<u8>, Vec<Event>)) {
    let s = script();
    let (want_dev, want_br) = expected_outputs(&s);
    assert_eq!(dev, want_dev);
    assert_eq!(br, want_br);
    assert!(br.ends_with(&s.device_tail));
    assert_eq!(
        seen,
        [
            Event::StartRequested(SessionType::Sol),
            Event::Started,
            Event::NeedDigest(expected_request("00000001", NONCE)),
            Event::Authenticated,
        ]
    );
    for secret in [FAKE_USER, FAKE_RESPONSE, FAKE_CNONCE] {
        assert!(
            !contains(&dev, secret.as_bytes()),
            "{secret} reached the device"
        );
    }
}

#[test]
fn whole_messages_byte_by_byte_and_all_at_once() {
    check_run(run_browser_first(&[usize::MAX], &[usize::MAX]));
    check_run(run_browser_first(&[1], &[1]));
    check_run(run_lockstep(&[usize::MAX], &[usize::MAX]));
    check_run(run_lockstep(&[1], &[1]));
    check_run(run_lockstep(&[2, 7, 1], &[3, 1, 9]));
}

proptest! {
    #[test]
    fn any_chunking_gives_the_same_result(
        cuts_b in proptest::collection::vec(1usize..40, 1..12),
        cuts_d in proptest::collection::vec(1usize..40, 1..12),
        lockstep in any::<bool>(),
    ) {
        if lockstep {
            check_run(run_lockstep(&cuts_b, &cuts_d));
        } else {
            check_run(run_browser_first(&cuts_b, &cuts_d));
        }
    }

    #[test]
    fn random_bytes_never_panic(
        ops in proptest::collection::vec(
            (0u8..4, proptest::collection::vec(any::<u8>(), 0..64)),
            0..24,
        ),
    ) {
        let mut i = Interceptor::new(
            Limits { max_handshake: 256, max_held: 128, ..Limits::default() },
            cnonce(),
        );
        let (mut dev, mut br) = (BytesMut::new(), BytesMut::new());
        for (op, bytes) in ops {
            let r = match op {
                0 => i.from_browser(&bytes, &mut dev),
                1 => i.from_device(&bytes, &mut br),
                2 => i.digest_response(RESPONSE, &mut dev),
                _ => i.flush_to_device(&mut dev),
            };
            if let Err(e) = r {
                // Sticky.
                prop_assert_eq!(i.from_browser(b"x", &mut dev), Err(e));
                prop_assert_eq!(i.error(), Some(e));
                break;
            }
            while i.poll_event().is_some() {}
        }
    }
}

// === failures ===

/// Drives a session up to the point where the interceptor asks for the digest.
fn up_to_need_digest(i: &mut Interceptor, dev: &mut BytesMut, br: &mut BytesMut) {
    i.from_browser(&SessionType::Sol.start_message(), dev)
        .unwrap();
    i.from_device(&start_reply(), br).unwrap();
    i.from_browser(&browser_digest("", "", ""), dev).unwrap();
    i.from_device(&challenge(NONCE), br).unwrap();
    i.from_browser(&browser_digest(REALM, NONCE, FAKE_RESPONSE), dev)
        .unwrap();
}

#[test]
fn wrong_password_fails_then_attempts_run_out() {
    let mut i = interceptor();
    let (mut dev, mut br) = (BytesMut::new(), BytesMut::new());
    up_to_need_digest(&mut i, &mut dev, &mut br);
    let mut nonces = vec![NONCE.to_string()];
    for attempt in 1..=3u8 {
        let nonce = nonces.last().unwrap().clone();
        let ev = events(&mut i);
        assert_eq!(
            ev.last(),
            Some(&Event::NeedDigest(expected_request("00000001", &nonce)))
        );
        dev.clear();
        i.digest_response(RESPONSE, &mut dev).unwrap();
        assert_eq!(&dev[..], &expected_digest("00000001", &nonce)[..]);
        // AMT answers a wrong digest with a failure carrying a fresh challenge.
        let fresh = format!("nonce{attempt}");
        br.clear();
        i.from_device(&challenge(&fresh), &mut br).unwrap();
        assert_eq!(&br[..], &challenge(&fresh)[..]);
        assert_eq!(events(&mut i), [Event::AuthFailed { status: 1 }]);
        assert!(!i.is_passthrough());
        nonces.push(fresh.clone());
        let r = i.from_browser(&browser_digest(REALM, &fresh, FAKE_RESPONSE), &mut dev);
        if attempt < 3 {
            r.unwrap();
        } else {
            assert_eq!(r, Err(RedirError::TooManyAuthAttempts));
        }
    }
    assert_eq!(
        i.from_device(b"\x14", &mut br),
        Err(RedirError::TooManyAuthAttempts)
    );
}

#[test]
fn same_nonce_counts_up() {
    let mut i = interceptor();
    let (mut dev, mut br) = (BytesMut::new(), BytesMut::new());
    up_to_need_digest(&mut i, &mut dev, &mut br);
    i.digest_response(RESPONSE, &mut dev).unwrap();
    // A failure that repeats the nonce: the next response uses nc 2.
    i.from_device(&challenge(NONCE), &mut br).unwrap();
    events(&mut i);
    i.from_browser(&browser_digest(REALM, NONCE, FAKE_RESPONSE), &mut dev)
        .unwrap();
    assert_eq!(
        events(&mut i),
        [Event::NeedDigest(expected_request("00000002", NONCE))]
    );
}

#[test]
fn refusal_is_relayed_and_closes() {
    // A 4-byte refusal (MPS and MeshCentral read the status after 4 bytes).
    let mut i = interceptor();
    let (mut dev, mut br) = (BytesMut::new(), BytesMut::new());
    i.from_browser(&SessionType::Ider.start_message(), &mut dev)
        .unwrap();
    i.from_device(&[0x11, 2], &mut br).unwrap();
    i.from_device(&[0, 0], &mut br).unwrap();
    assert_eq!(&br[..], &[0x11, 2, 0, 0]);
    assert_eq!(
        events(&mut i),
        [
            Event::StartRequested(SessionType::Ider),
            Event::Refused { status: 2 }
        ]
    );
    assert_eq!(i.from_browser(&QUERY, &mut dev), Err(RedirError::Closed));
}

#[test]
fn end_session_is_relayed() {
    let mut i = interceptor();
    let (mut dev, mut br) = (BytesMut::new(), BytesMut::new());
    i.from_browser(&SessionType::Sol.start_message(), &mut dev)
        .unwrap();
    i.from_device(&start_reply(), &mut br).unwrap();
    dev.clear();
    i.from_browser(&[0x12, 0, 0, 0], &mut dev).unwrap();
    assert_eq!(&dev[..], &[0x12, 0, 0, 0]);
    assert_eq!(events(&mut i).last(), Some(&Event::Ended));
    i.from_device(b"late", &mut br).unwrap();
    assert_eq!(i.from_browser(b"\x10", &mut dev), Err(RedirError::Closed));
}

#[test]
fn other_auth_types_are_refused_and_never_forwarded() {
    // User/password (type 1) as the UI toolkit would send it: user, password in the clear.
    let mut i = interceptor();
    let (mut dev, mut br) = (BytesMut::new(), BytesMut::new());
    i.from_browser(&SessionType::Sol.start_message(), &mut dev)
        .unwrap();
    i.from_device(&start_reply(), &mut br).unwrap();
    dev.clear();
    let mut up = vec![0x13, 0, 0, 0, 1, 16, 0, 0, 0, 7];
    up.extend_from_slice(b"mallory\x07hunter2");
    assert_eq!(
        i.from_browser(&up, &mut dev),
        Err(RedirError::UnsupportedAuthType(1))
    );
    assert!(dev.is_empty());
    for t in [2u8, 3, 5, 255] {
        let mut i = interceptor();
        i.from_browser(&SessionType::Sol.start_message(), &mut dev)
            .unwrap();
        i.from_device(&start_reply(), &mut br).unwrap();
        assert_eq!(
            i.from_browser(&[0x13, 0, 0, 0, t, 0, 0, 0, 0], &mut dev),
            Err(RedirError::UnsupportedAuthType(t))
        );
    }
}

#[test]
fn hostile_lengths_are_refused_before_buffering() {
    // A browser AuthenticateSession announcing 4 GiB.
    let mut i = interceptor();
    let (mut dev, mut br) = (BytesMut::new(), BytesMut::new());
    i.from_browser(&SessionType::Sol.start_message(), &mut dev)
        .unwrap();
    i.from_device(&start_reply(), &mut br).unwrap();
    i.from_browser(&[0x13, 0, 0, 0, 4], &mut dev).unwrap();
    assert_eq!(
        i.from_browser(&[0xff, 0xff, 0xff, 0xff], &mut dev),
        Err(RedirError::HandshakeTooLarge {
            side: Side::Browser
        })
    );

    // A device reply announcing 5000 bytes.
    let mut i = interceptor();
    i.from_browser(&SessionType::Sol.start_message(), &mut dev)
        .unwrap();
    i.from_device(&start_reply(), &mut br).unwrap();
    i.from_browser(&QUERY, &mut dev).unwrap();
    let e = i.from_device(&[0x14, 0, 0, 0, 0, 0x88, 0x13, 0, 0], &mut br);
    assert_eq!(e, Err(RedirError::HandshakeTooLarge { side: Side::Device }));
    assert_eq!(e.unwrap_err().side(), Side::Device);

    // Many small browser messages add up too.
    let mut i = Interceptor::new(
        Limits {
            max_handshake: 64,
            ..Limits::default()
        },
        cnonce(),
    );
    i.from_browser(&SessionType::Sol.start_message(), &mut dev)
        .unwrap();
    i.from_device(&start_reply(), &mut br).unwrap();
    let mut r = Ok(());
    for _ in 0..10 {
        r = i.from_browser(&QUERY, &mut dev);
        if r.is_err() {
            break;
        }
        r = i.from_device(&auth_reply(0, 0, &[4]), &mut br);
        if r.is_err() {
            break;
        }
    }
    assert!(matches!(r, Err(RedirError::HandshakeTooLarge { .. })));
}

#[test]
fn hostile_challenges_are_refused() {
    let long = "r".repeat(200);
    let cases: [(Vec<u8>, RedirError); 5] = [
        (
            {
                let mut b = BytesMut::new();
                Challenge {
                    realm: &long,
                    nonce: "n",
                    qop: "auth",
                }
                .encode(1, &mut b)
                .unwrap();
                b.to_vec()
            },
            RedirError::FieldTooLong,
        ),
        (
            auth_reply(1, 4, b"\x01r\x01n\x08auth-int"),
            RedirError::Malformed {
                side: Side::Device,
                context: "challenge offers no qop=auth",
            },
        ),
        (
            auth_reply(1, 4, b"\x00\x01n\x04auth"),
            RedirError::Malformed {
                side: Side::Device,
                context: "challenge without realm or nonce",
            },
        ),
        (
            auth_reply(1, 4, b"\x01r\x01\n\x04auth"),
            RedirError::Malformed {
                side: Side::Device,
                context: "challenge field is not printable ASCII",
            },
        ),
        (
            auth_reply(1, 4, b"\x01r\x01n\x10auth"),
            RedirError::Malformed {
                side: Side::Device,
                context: "truncated challenge",
            },
        ),
    ];
    for (reply, want) in cases {
        let mut i = interceptor();
        let (mut dev, mut br) = (BytesMut::new(), BytesMut::new());
        i.from_browser(&SessionType::Sol.start_message(), &mut dev)
            .unwrap();
        i.from_device(&start_reply(), &mut br).unwrap();
        i.from_browser(&browser_digest("", "", ""), &mut dev)
            .unwrap();
        br.clear();
        assert_eq!(i.from_device(&reply, &mut br), Err(want));
    }
}

#[test]
fn out_of_order_messages_are_refused() {
    let (mut dev, mut br) = (BytesMut::new(), BytesMut::new());
    // Device speaks first.
    let mut i = interceptor();
    assert_eq!(
        i.from_device(&start_reply(), &mut br),
        Err(RedirError::UnexpectedMessage {
            side: Side::Device,
            kind: 0x11
        })
    );
    // Unknown browser command.
    let mut i = interceptor();
    assert_eq!(
        i.from_browser(&[0x99], &mut dev),
        Err(RedirError::UnexpectedMessage {
            side: Side::Browser,
            kind: 0x99
        })
    );
    // Authentication before the session starts.
    let mut i = interceptor();
    assert_eq!(
        i.from_browser(&QUERY, &mut dev),
        Err(RedirError::UnexpectedMessage {
            side: Side::Browser,
            kind: 0x13
        })
    );
    // Unknown session type.
    let mut i = interceptor();
    assert_eq!(
        i.from_browser(b"\x10\x00\x00\x00ABCD", &mut dev),
        Err(RedirError::UnknownSessionType)
    );
    // A success the interceptor did not ask for.
    let mut i = interceptor();
    i.from_browser(&SessionType::Sol.start_message(), &mut dev)
        .unwrap();
    i.from_device(&start_reply(), &mut br).unwrap();
    assert!(matches!(
        i.from_device(&auth_reply(0, 4, &[]), &mut br),
        Err(RedirError::UnexpectedMessage { .. })
    ));
    // The device talks while the digest is pending.
    let mut i = interceptor();
    up_to_need_digest(&mut i, &mut dev, &mut br);
    assert!(matches!(
        i.from_device(&auth_reply(0, 4, &[]), &mut br),
        Err(RedirError::UnexpectedMessage { .. })
    ));
}

#[test]
fn caller_mistakes_are_errors() {
    let (mut dev, mut br) = (BytesMut::new(), BytesMut::new());
    let mut i = interceptor();
    assert_eq!(
        i.digest_response(RESPONSE, &mut dev),
        Err(RedirError::NoDigestPending)
    );
    assert_eq!(RedirError::NoDigestPending.side(), Side::Caller);
    for bad in [
        "",
        "0123",
        "0123456789abcdef0123456789abcdeg",
        &"a".repeat(33),
    ] {
        let mut i = interceptor();
        up_to_need_digest(&mut i, &mut dev, &mut br);
        dev.clear();
        assert_eq!(
            i.digest_response(bad, &mut dev),
            Err(RedirError::InvalidDigestResponse)
        );
        assert!(dev.is_empty());
    }
}

#[test]
fn held_bytes_are_bounded() {
    let mut i = Interceptor::new(
        Limits {
            max_held: 100,
            ..Limits::default()
        },
        cnonce(),
    );
    let mut dev = BytesMut::new();
    let mut first = SessionType::Sol.start_message().to_vec();
    first.extend_from_slice(&[0u8; 100]);
    i.from_browser(&first, &mut dev).unwrap();
    assert_eq!(
        i.from_browser(&[0], &mut dev),
        Err(RedirError::HeldTooLarge)
    );
}

#[test]
fn a_query_with_data_is_refused() {
    let (mut dev, mut br) = (BytesMut::new(), BytesMut::new());
    let mut i = interceptor();
    i.from_browser(&SessionType::Sol.start_message(), &mut dev)
        .unwrap();
    i.from_device(&start_reply(), &mut br).unwrap();
    assert!(matches!(
        i.from_browser(&[0x13, 0, 0, 0, 0, 1, 0, 0, 0, 9], &mut dev),
        Err(RedirError::Malformed { .. })
    ));
}
