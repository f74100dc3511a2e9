//! The CIRA/AMT protocol code: the APF tunnel, the control plane's WS-MAN client and the
//! redirection interceptor.
//!
//! - `apf/decode`: one CHANNEL_DATA with a 1 KiB and a 16 KiB payload, one KEEPALIVE_REQUEST,
//!   and a whole device setup as AMT sends it (PROTOCOLVERSION, `auth@amt.intel.com`, password
//!   USERAUTH_REQUEST, `pfwd@amt.intel.com`, six tcpip-forwards) decoded message by message.
//!   The read buffer is rebuilt outside the measurement for every iteration.
//! - `apf/encode`: CHANNEL_DATA with a 1 KiB and a 16 KiB payload into a reused buffer.
//! - `apf/session`: a [`ServerSession`] in Forwarding with one open channel takes 64 KiB of
//!   channel data as 64 messages of 1 KiB, one `handle_input` per message, and reports each
//!   payload consumed (which sends WINDOW_ADJUSTs, drained with `poll_transmit`).
//! - `wsman/call`: [`Call::on_data`] parses a 200 answer of 4,121 bytes (two of the simulated
//!   device's answers back to back) in AMT's four-hex-digit chunks, 37 bytes each as the
//!   simulator cuts them, fed whole and in 512-byte reads.
//! - `wsman/digest`: one RFC 2617 `response` with `qop=auth` (three MD5s).
//! - `wsman/operation`: [`Operation`] for `power/state` (3 exchanges) and `hardwareInfo` (16)
//!   from the first envelope to the JSON, replaying the simulated device's de-chunked answers
//!   (recorded from `rampart_loadgen::amt::WsmanResponder`, at the end of this file), so only
//!   our side is measured: building each request envelope, parsing each answer as hostile
//!   XML, and the JSON.
//! - `redir/passthrough`: an [`Interceptor`] after authentication relaying 16 KiB chunks each
//!   way.
//! - `redir/handshake`: a fresh interceptor driven from StartRedirectionSession to
//!   `Authenticated` (query, empty digest, challenge, the control plane's response), per
//!   iteration.

#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

use std::hint::black_box;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rampart_apf_proto::{
    AuthMethod, ChannelId, Event, GlobalKind, Guid, Limits, Message, ServerSession, SessionConfig,
    State, decode, encode,
};
use rampart_redir_proto::wire::{self, Challenge, DigestAuth, SessionType};
use rampart_redir_proto::{Cnonce, Interceptor};
use rampart_wsman::amt::{Operation, Request};
use rampart_wsman::{Call, digest};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const GUID: &str = "12345678-9abc-def0-1122-334455667788";
const HOST: &str = "12345678-9abc-def0-1122-334455667788:16992";
const AMT_USER: &str = "admin";
/// The ports AMT forwards (WS-MAN, redirection, each plain and TLS; ASF RMCP).
const PORTS: [u32; 6] = [16992, 16993, 16994, 16995, 623, 664];

fn guid() -> Guid {
    GUID.parse().expect("valid GUID")
}

fn wire(msgs: &[Message]) -> Vec<u8> {
    let mut b = BytesMut::new();
    for m in msgs {
        encode(m, &mut b);
    }
    b.to_vec()
}

fn channel_data(recipient: u32, n: usize) -> Message {
    Message::ChannelData {
        recipient,
        data: Bytes::from(vec![0x5a; n]),
    }
}

/// What a device sends before it forwards: `Device::setup_bytes` in `loadgen/src/amt.rs`.
fn setup_messages() -> Vec<Message> {
    let mut v = vec![
        Message::ProtocolVersion {
            major: 1,
            minor: 0,
            trigger: 1,
            guid: guid(),
        },
        Message::ServiceRequest {
            service: "auth@amt.intel.com".into(),
        },
        Message::UserAuthRequest {
            username: "cira-12345678".into(),
            service: "pfwd@amt.intel.com".into(),
            method: AuthMethod::Password(b"Z4rew0L7uqFKdyUC9em3208dvgq8Wk1D".to_vec()),
        },
        Message::ServiceRequest {
            service: "pfwd@amt.intel.com".into(),
        },
    ];
    for port in PORTS {
        v.push(Message::GlobalRequest {
            want_reply: true,
            kind: GlobalKind::TcpipForward {
                address: String::new(),
                port,
            },
        });
    }
    v
}

// === APF ===

fn apf_decode(c: &mut Criterion) {
    let limits = Limits::default();
    let mut g = c.benchmark_group("apf/decode");
    for size in [1024usize, 16 * 1024] {
        let bytes = wire(&[channel_data(4, size)]);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("channel_data_{}KiB", size / 1024), |b| {
            b.iter_batched(
                || BytesMut::from(&bytes[..]),
                |mut buf| match decode(&mut buf, &limits).unwrap() {
                    Some(Message::ChannelData { data, .. }) => black_box(data.len()),
                    other => panic!("{other:?}"),
                },
                BatchSize::SmallInput,
            );
        });
    }
    let bytes = wire(&[Message::KeepaliveRequest {
        cookie: 0x1234_5678,
    }]);
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("keepalive_request", |b| {
        b.iter_batched(
            || BytesMut::from(&bytes[..]),
            |mut buf| black_box(decode(&mut buf, &limits).unwrap()),
            BatchSize::SmallInput,
        );
    });
    let msgs = setup_messages();
    let bytes = wire(&msgs);
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("device_setup", |b| {
        b.iter_batched(
            || BytesMut::from(&bytes[..]),
            |mut buf| {
                let mut n = 0;
                while let Some(m) = decode(&mut buf, &limits).unwrap() {
                    black_box(&m);
                    n += 1;
                }
                assert_eq!(n, msgs.len());
                n
            },
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

fn apf_encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("apf/encode");
    for size in [1024usize, 16 * 1024] {
        let msg = channel_data(4, size);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("channel_data_{}KiB", size / 1024), |b| {
            let mut buf = BytesMut::with_capacity(size + 64);
            b.iter(|| {
                buf.clear();
                encode(black_box(&msg), &mut buf);
                black_box(buf.len())
            });
        });
    }
    g.finish();
}

/// A session driven to Forwarding as `dataplane/proto/apf/src/tests/session.rs` does, with
/// one channel to 16992 open; all output drained.
fn forwarding_session(now: Instant) -> (ServerSession, ChannelId) {
    let mut s = ServerSession::new(SessionConfig::default(), now);
    let setup = setup_messages();
    let mut out = BytesMut::new();
    s.handle_input(&wire(&setup[..1]), now);
    s.accept_device(now);
    s.handle_input(&wire(&setup[1..3]), now);
    s.auth_result(true, now);
    s.handle_input(&wire(&setup[3..]), now);
    assert_eq!(s.state(), State::Forwarding);
    let id = s.open_channel(16992, now).unwrap();
    s.handle_input(
        &wire(&[Message::ChannelOpenConfirmation {
            recipient: id.0,
            sender: 7,
            window: 4096,
        }]),
        now,
    );
    while let Some(ev) = s.poll_event() {
        if let Event::Closed { reason } = ev {
            panic!("closed: {reason:?}");
        }
    }
    s.poll_transmit(&mut out);
    (s, id)
}

fn apf_session(c: &mut Criterion) {
    const MESSAGES: usize = 64;
    const SIZE: usize = 1024;
    let now = Instant::now();
    let (mut s, id) = forwarding_session(now);
    let msg = wire(&[channel_data(id.0, SIZE)]);
    let mut g = c.benchmark_group("apf/session");
    g.throughput(Throughput::Bytes((MESSAGES * SIZE) as u64));
    g.bench_function("forwarding_64KiB_in_1KiB_messages", |b| {
        let mut tx = BytesMut::new();
        b.iter(|| {
            let mut got = 0;
            for _ in 0..MESSAGES {
                s.handle_input(black_box(&msg), now);
                while let Some(ev) = s.poll_event() {
                    match ev {
                        Event::ChannelData { id, data } => {
                            got += data.len();
                            s.consumed(id, data.len());
                        }
                        other => panic!("{other:?}"),
                    }
                }
            }
            tx.clear();
            s.poll_transmit(&mut tx);
            assert_eq!(got, MESSAGES * SIZE);
            black_box(tx.len())
        });
    });
    g.finish();
    assert_eq!(s.state(), State::Forwarding);
}

// === WS-MAN ===

/// Replays recorded answers through a fresh operation; returns the route's JSON.
fn replay(req: &Request, answers: &[&str]) -> serde_json::Value {
    let mut op = Operation::new(req.clone(), HOST);
    let mut n = 0;
    while let Some(envelope) = op.next_request(&format!("uuid:{n}")) {
        black_box(envelope);
        op.on_response(200, answers[n].as_bytes()).unwrap();
        n += 1;
    }
    assert_eq!(n, answers.len());
    op.finish().unwrap()
}

/// A 200 answer framed as the simulated device frames it (`WsmanResponder::answer` in
/// `loadgen/src/amt.rs`): AMT's four-hex-digit chunks, the XML cut every 37 bytes.
fn chunked_answer(xml: &[u8]) -> Vec<u8> {
    let mut out = b"HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml; charset=UTF-8\r\n\
Transfer-Encoding: chunked\r\n\r\n"
        .to_vec();
    for piece in xml.chunks(37) {
        out.extend_from_slice(format!("{:04x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn wsman(c: &mut Criterion) {
    // No single simulated answer reaches 4 KiB: two of them back to back (the call does not
    // parse the XML).
    let body = [HARDWARE_INFO[7], HARDWARE_INFO[9]].concat();
    let raw = chunked_answer(body.as_bytes());
    let mut g = c.benchmark_group("wsman/call");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("on_data_chunked_4KiB_whole", |b| {
        b.iter_batched(
            || (Call::new(HOST, Vec::new()), BytesMut::from(&raw[..])),
            |(mut call, mut buf)| {
                let r = call.on_data(&mut buf).unwrap().expect("whole response");
                assert_eq!(r.body.len(), body.len());
                r
            },
            BatchSize::SmallInput,
        );
    });
    g.bench_function("on_data_chunked_4KiB_512B_reads", |b| {
        b.iter_batched(
            || (Call::new(HOST, Vec::new()), BytesMut::new()),
            |(mut call, mut buf)| {
                let mut out = None;
                for piece in raw.chunks(512) {
                    buf.extend_from_slice(piece);
                    if let Some(r) = call.on_data(&mut buf).unwrap() {
                        out = Some(r);
                    }
                }
                out.expect("whole response")
            },
            BatchSize::SmallInput,
        );
    });
    g.finish();

    let mut g = c.benchmark_group("wsman/digest");
    g.bench_function("response_qop_auth", |b| {
        b.iter(|| {
            digest::response(
                black_box(AMT_USER),
                black_box("Digest:A3829B3827DE4D33D4449B366831FD01"),
                black_box(b"P@ssw0rd".as_slice()),
                "POST",
                "/wsman",
                black_box("fVNueyEAAAAAAAAAcO8WqJ8s+WdyFUIY"),
                Some(("00000001", black_box("a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5"))),
            )
        });
    });
    g.finish();

    assert_eq!(replay(&Request::PowerState, &POWER_STATE)["powerstate"], 2);
    assert_eq!(
        replay(&Request::HardwareInfo, &HARDWARE_INFO)["CIM_Chassis"]["response"]["SerialNumber"],
        "SIM0001"
    );
    let mut g = c.benchmark_group("wsman/operation");
    for (name, req, answers) in [
        ("power_state", Request::PowerState, &POWER_STATE[..]),
        ("hardware_info", Request::HardwareInfo, &HARDWARE_INFO[..]),
    ] {
        let bytes: usize = answers.iter().map(|a| a.len()).sum();
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_function(name, |b| b.iter(|| replay(&req, answers)));
    }
    g.finish();
}

// === Redirection ===

const REALM: &str = "Digest:A3829B3827DE4D33D4449B366831FD01";
const NONCE: &str = "fVNueyEAAAAAAAAAcO8WqJ8s+WdyFUIY";
/// What the control plane answers to `NeedDigest`.
const RESPONSE: &str = "0123456789abcdef0123456789abcdef";

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

fn browser_digest(realm: &str, nonce: &str, response: &str) -> Vec<u8> {
    let mut b = BytesMut::new();
    DigestAuth {
        user: "admin",
        realm,
        nonce,
        uri: "",
        cnonce: "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0",
        nc: "00000002",
        response,
        qop: "auth",
    }
    .encode(&mut b)
    .unwrap();
    b.to_vec()
}

/// The Open AMT UI toolkit's KVM sequence (`dataplane/proto/redir/src/tests.rs`
/// `ui_toolkit_sequence`): browser and device messages in the order they alternate.
struct Handshake {
    start: Vec<u8>,
    start_reply: Vec<u8>,
    query: Vec<u8>,
    methods: Vec<u8>,
    empty_digest: Vec<u8>,
    challenge: Vec<u8>,
    digest: Vec<u8>,
    success: Vec<u8>,
}

impl Handshake {
    fn new() -> Self {
        let mut start_reply = BytesMut::new();
        wire::encode_start_reply(wire::STATUS_SUCCESS, (11, 8), &mut start_reply);
        let mut challenge = BytesMut::new();
        Challenge {
            realm: REALM,
            nonce: NONCE,
            qop: "auth",
        }
        .encode(wire::AUTH_FAILURE, &mut challenge)
        .unwrap();
        Self {
            start: SessionType::Kvm.start_message().to_vec(),
            start_reply: start_reply.to_vec(),
            query: vec![wire::AUTHENTICATE_SESSION, 0, 0, 0, 0, 0, 0, 0, 0],
            methods: auth_reply(wire::STATUS_SUCCESS, wire::AUTH_QUERY, &[1, 3, 4]),
            empty_digest: browser_digest("", "", ""),
            challenge: challenge.to_vec(),
            digest: browser_digest(REALM, NONCE, "ffffffffeeeeeeeeddddddddcccccccc"),
            success: auth_reply(wire::AUTH_SUCCESS, wire::AUTH_DIGEST, &[]),
        }
    }

    /// A fresh interceptor taken to pass-through; `dev` and `br` collect what it relays.
    fn run(&self, dev: &mut BytesMut, br: &mut BytesMut) -> Interceptor {
        let mut i = Interceptor::new(
            rampart_redir_proto::Limits::default(),
            Cnonce::from_random([0xa5; 16]),
        );
        i.from_browser(&self.start, dev).unwrap();
        i.from_device(&self.start_reply, br).unwrap();
        i.from_browser(&self.query, dev).unwrap();
        i.from_device(&self.methods, br).unwrap();
        i.from_browser(&self.empty_digest, dev).unwrap();
        i.from_device(&self.challenge, br).unwrap();
        i.from_browser(&self.digest, dev).unwrap();
        let mut asked = false;
        while let Some(ev) = i.poll_event() {
            asked |= matches!(ev, rampart_redir_proto::Event::NeedDigest(_));
        }
        assert!(asked, "the interceptor asks for the digest");
        i.digest_response(RESPONSE, dev).unwrap();
        i.from_device(&self.success, br).unwrap();
        assert!(i.is_passthrough());
        i
    }
}

fn redir(c: &mut Criterion) {
    let hs = Handshake::new();
    let mut g = c.benchmark_group("redir/handshake");
    g.bench_function("start_to_authenticated", |b| {
        let (mut dev, mut br) = (BytesMut::new(), BytesMut::new());
        b.iter(|| {
            dev.clear();
            br.clear();
            black_box(hs.run(&mut dev, &mut br))
        });
    });
    g.finish();

    let (mut dev, mut br) = (BytesMut::new(), BytesMut::new());
    let mut i = hs.run(&mut dev, &mut br);
    let chunk = vec![0x41u8; 16 * 1024];
    let mut g = c.benchmark_group("redir/passthrough");
    g.throughput(Throughput::Bytes(chunk.len() as u64));
    g.bench_function("from_browser_16KiB", |b| {
        b.iter(|| {
            dev.clear();
            i.from_browser(black_box(&chunk), &mut dev).unwrap();
            black_box(dev.len())
        });
    });
    g.bench_function("from_device_16KiB", |b| {
        b.iter(|| {
            br.clear();
            i.from_device(black_box(&chunk), &mut br).unwrap();
            black_box(br.len())
        });
    });
    g.finish();
}

criterion_group!(benches, apf_decode, apf_encode, apf_session, wsman, redir);
criterion_main!(benches);

// === Recorded answers ===
//
// The de-chunked bodies `rampart_loadgen::amt::WsmanResponder` (with `loadgen/src/amt_sim.rs`)
// answered on 2026-11-29 (commit 5d3236d) to `Operation`'s requests with message ids `uuid:0`,
// `uuid:1`, ..., after digest authentication as `admin`. Copied rather than generated so this
// bench depends only on the protocol crates.

/// The simulated device's answers to `power/state`, in exchange order (`uuid:0`, `uuid:1`,
/// ...).
const POWER_STATE: [&str; 3] = [
    // IPS_PowerManagementService GetResponse
    r#"<?xml version="1.0" encoding="UTF-8"?><a:Envelope xmlns:a="http://www.w3.org/2003/05/soap-envelope" xmlns:b="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:c="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:d="http://schemas.xmlsoap.org/ws/2005/02/trust" xmlns:e="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:f="http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd" xmlns:g="http://intel.com/wbem/wscim/1/ips-schema/1/IPS_PowerManagementService" xmlns:h="urn:none" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><a:Header><b:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:To><b:RelatesTo>uuid:0</b:RelatesTo><b:Action a:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/transfer/GetResponse</b:Action><b:MessageID>uuid:00000000-8086-8086-8086-000000002001</b:MessageID><c:ResourceURI>http://intel.com/wbem/wscim/1/ips-schema/1/IPS_PowerManagementService</c:ResourceURI></a:Header><a:Body><g:IPS_PowerManagementService><g:CreationClassName>IPS_PowerManagementService</g:CreationClassName><g:ElementName>Intel(r) AMT Power Management Service</g:ElementName><g:EnabledState>5</g:EnabledState><g:Name>Intel(r) AMT Power Management Service</g:Name><g:OSPowerSavingState>2</g:OSPowerSavingState><g:RequestedState>12</g:RequestedState><g:SystemCreationClassName>CIM_ComputerSystem</g:SystemCreationClassName><g:SystemName>Intel(r) AMT</g:SystemName></g:IPS_PowerManagementService></a:Body></a:Envelope>"#,
    // CIM_ServiceAvailableToElement EnumerateResponse
    r#"<?xml version="1.0" encoding="UTF-8"?><a:Envelope xmlns:a="http://www.w3.org/2003/05/soap-envelope" xmlns:b="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:c="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:d="http://schemas.xmlsoap.org/ws/2005/02/trust" xmlns:e="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:f="http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd" xmlns:g="http://schemas.xmlsoap.org/ws/2004/09/enumeration" xmlns:h="urn:none" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><a:Header><b:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:To><b:RelatesTo>uuid:1</b:RelatesTo><b:Action a:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/enumeration/EnumerateResponse</b:Action><b:MessageID>uuid:00000000-8086-8086-8086-000000002003</b:MessageID><c:ResourceURI>http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ServiceAvailableToElement</c:ResourceURI></a:Header><a:Body><g:EnumerateResponse><g:EnumerationContext>00002002-0000-0000-0000-000000000000</g:EnumerationContext></g:EnumerateResponse></a:Body></a:Envelope>"#,
    // CIM_ServiceAvailableToElement PullResponse
    r#"<?xml version="1.0" encoding="UTF-8"?><a:Envelope xmlns:a="http://www.w3.org/2003/05/soap-envelope" xmlns:b="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:c="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:d="http://schemas.xmlsoap.org/ws/2005/02/trust" xmlns:e="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:f="http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd" xmlns:g="http://schemas.xmlsoap.org/ws/2004/09/enumeration" xmlns:h="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ServiceAvailableToElement" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><a:Header><b:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:To><b:RelatesTo>uuid:2</b:RelatesTo><b:Action a:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/enumeration/PullResponse</b:Action><b:MessageID>uuid:00000000-8086-8086-8086-000000002004</b:MessageID><c:ResourceURI>http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ServiceAvailableToElement</c:ResourceURI></a:Header><a:Body><g:PullResponse><g:Items><h:CIM_AssociatedPowerManagementService><h:AvailableRequestedPowerStates>10</h:AvailableRequestedPowerStates><h:AvailableRequestedPowerStates>8</h:AvailableRequestedPowerStates><h:AvailableRequestedPowerStates>5</h:AvailableRequestedPowerStates><h:AvailableRequestedPowerStates>11</h:AvailableRequestedPowerStates><h:AvailableRequestedPowerStates>4</h:AvailableRequestedPowerStates><h:AvailableRequestedPowerStates>7</h:AvailableRequestedPowerStates><h:AvailableRequestedPowerStates>14</h:AvailableRequestedPowerStates><h:AvailableRequestedPowerStates>12</h:AvailableRequestedPowerStates><h:PowerState>2</h:PowerState><h:ServiceProvided><b:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:Address><b:ReferenceParameters><c:ResourceURI>http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_PowerManagementService</c:ResourceURI><c:SelectorSet><c:Selector Name="CreationClassName">CIM_PowerManagementService</c:Selector></c:SelectorSet></b:ReferenceParameters></h:ServiceProvided></h:CIM_AssociatedPowerManagementService></g:Items><g:EndOfSequence></g:EndOfSequence></g:PullResponse></a:Body></a:Envelope>"#,
];

/// The simulated device's answers to `hardwareInfo`, in exchange order (`uuid:0`, `uuid:1`,
/// ...).
const HARDWARE_INFO: [&str; 16] = [
    // CIM_ComputerSystemPackage GetResponse
    r#"<?xml version="1.0" encoding="UTF-8"?><a:Envelope xmlns:a="http://www.w3.org/2003/05/soap-envelope" xmlns:b="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:c="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:d="http://schemas.xmlsoap.org/ws/2005/02/trust" xmlns:e="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:f="http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd" xmlns:g="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ComputerSystemPackage" xmlns:h="urn:none" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><a:Header><b:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:To><b:RelatesTo>uuid:0</b:RelatesTo><b:Action a:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/transfer/GetResponse</b:Action><b:MessageID>uuid:00000000-8086-8086-8086-000000002005</b:MessageID><c:ResourceURI>http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ComputerSystemPackage</c:ResourceURI></a:Header><a:Body><g:CIM_ComputerSystemPackage><g:PlatformGUID>4C4C4544004D4410804C3CC04F345732</g:PlatformGUID></g:CIM_ComputerSystemPackage></a:Body></a:Envelope>"#,
    // CIM_Chassis GetResponse
    r#"<?xml version="1.0" encoding="UTF-8"?><a:Envelope xmlns:a="http://www.w3.org/2003/05/soap-envelope" xmlns:b="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:c="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:d="http://schemas.xmlsoap.org/ws/2005/02/trust" xmlns:e="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:f="http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd" xmlns:g="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_Chassis" xmlns:h="urn:none" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><a:Header><b:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:To><b:RelatesTo>uuid:1</b:RelatesTo><b:Action a:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/transfer/GetResponse</b:Action><b:MessageID>uuid:00000000-8086-8086-8086-000000002006</b:MessageID><c:ResourceURI>http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_Chassis</c:ResourceURI></a:Header><a:Body><g:CIM_Chassis><g:ChassisPackageType>0</g:ChassisPackageType><g:CreationClassName>CIM_Chassis</g:CreationClassName><g:ElementName>Managed System Chassis</g:ElementName><g:Manufacturer>Rampart Simulated</g:Manufacturer><g:Model>SIM-1</g:Model><g:OperationalStatus>0</g:OperationalStatus><g:PackageType>3</g:PackageType><g:SerialNumber>SIM0001</g:SerialNumber><g:Tag>CIM_Chassis</g:Tag><g:Version>1.0</g:Version></g:CIM_Chassis></a:Body></a:Envelope>"#,
    // CIM_Card GetResponse
    r#"<?xml version="1.0" encoding="UTF-8"?><a:Envelope xmlns:a="http://www.w3.org/2003/05/soap-envelope" xmlns:b="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:c="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:d="http://schemas.xmlsoap.org/ws/2005/02/trust" xmlns:e="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:f="http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd" xmlns:g="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_Card" xmlns:h="urn:none" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><a:Header><b:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:To><b:RelatesTo>uuid:2</b:RelatesTo><b:Action a:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/transfer/GetResponse</b:Action><b:MessageID>uuid:00000000-8086-8086-8086-000000002007</b:MessageID><c:ResourceURI>http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_Card</c:ResourceURI></a:Header><a:Body><g:CIM_Card><g:CanBeFRUed>true</g:CanBeFRUed><g:CreationClassName>CIM_Card</g:CreationClassName><g:ElementName>Managed System Base Board</g:ElementName><g:Manufacturer>Rampart Simulated</g:Manufacturer><g:Model>SIM-BOARD</g:Model><g:OperationalStatus>0</g:OperationalStatus><g:PackageType>9</g:PackageType><g:SerialNumber>BOARD0001</g:SerialNumber><g:Tag>CIM_Card</g:Tag><g:Version>A1</g:Version></g:CIM_Card></a:Body></a:Envelope>"#,
    // CIM_BIOSElement GetResponse
    r#"<?xml version="1.0" encoding="UTF-8"?><a:Envelope xmlns:a="http://www.w3.org/2003/05/soap-envelope" xmlns:b="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:c="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:d="http://schemas.xmlsoap.org/ws/2005/02/trust" xmlns:e="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:f="http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd" xmlns:g="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_BIOSElement" xmlns:h="urn:none" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><a:Header><b:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:To><b:RelatesTo>uuid:3</b:RelatesTo><b:Action a:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/transfer/GetResponse</b:Action><b:MessageID>uuid:00000000-8086-8086-8086-000000002008</b:MessageID><c:ResourceURI>http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_BIOSElement</c:ResourceURI></a:Header><a:Body><g:CIM_BIOSElement><g:ElementName>Primary BIOS</g:ElementName><g:Manufacturer>Rampart Simulated</g:Manufacturer><g:Name>Primary BIOS</g:Name><g:OperationalStatus>0</g:OperationalStatus><g:PrimaryBIOS>true</g:PrimaryBIOS><g:SoftwareElementID>SIM.1.2.3</g:SoftwareElementID><g:SoftwareElementState>2</g:SoftwareElementState><g:TargetOperatingSystem>66</g:TargetOperatingSystem><g:Version>1.2.3</g:Version></g:CIM_BIOSElement></a:Body></a:Envelope>"#,
    // CIM_Processor EnumerateResponse
    r#"<?xml version="1.0" encoding="UTF-8"?><a:Envelope xmlns:a="http://www.w3.org/2003/05/soap-envelope" xmlns:b="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:c="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:d="http://schemas.xmlsoap.org/ws/2005/02/trust" xmlns:e="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:f="http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd" xmlns:g="http://schemas.xmlsoap.org/ws/2004/09/enumeration" xmlns:h="urn:none" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><a:Header><b:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:To><b:RelatesTo>uuid:4</b:RelatesTo><b:Action a:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/enumeration/EnumerateResponse</b:Action><b:MessageID>uuid:00000000-8086-8086-8086-00000000200A</b:MessageID><c:ResourceURI>http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_Processor</c:ResourceURI></a:Header><a:Body><g:EnumerateResponse><g:EnumerationContext>00002009-0000-0000-0000-000000000000</g:EnumerationContext></g:EnumerateResponse></a:Body></a:Envelope>"#,
    // CIM_Processor PullResponse
    r#"<?xml version="1.0" encoding="UTF-8"?><a:Envelope xmlns:a="http://www.w3.org/2003/05/soap-envelope" xmlns:b="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:c="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:d="http://schemas.xmlsoap.org/ws/2005/02/trust" xmlns:e="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:f="http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd" xmlns:g="http://schemas.xmlsoap.org/ws/2004/09/enumeration" xmlns:h="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_Processor" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><a:Header><b:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:To><b:RelatesTo>uuid:5</b:RelatesTo><b:Action a:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/enumeration/PullResponse</b:Action><b:MessageID>uuid:00000000-8086-8086-8086-00000000200B</b:MessageID><c:ResourceURI>http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_Processor</c:ResourceURI></a:Header><a:Body><g:PullResponse><g:Items><h:CIM_Processor><h:CPUStatus>1</h:CPUStatus><h:CreationClassName>CIM_Processor</h:CreationClassName><h:CurrentClockSpeed>2600</h:CurrentClockSpeed><h:DeviceID>CPU 0</h:DeviceID><h:ElementName>Managed System CPU</h:ElementName><h:EnabledState>2</h:EnabledState><h:ExternalBusClockSpeed>100</h:ExternalBusClockSpeed><h:Family>198</h:Family><h:HealthState>0</h:HealthState><h:MaxClockSpeed>8300</h:MaxClockSpeed><h:OperationalStatus>0</h:OperationalStatus><h:Role>Central Processor</h:Role><h:Stepping>3</h:Stepping><h:UpgradeMethod>1</h:UpgradeMethod></h:CIM_Processor></g:Items><g:EndOfSequence></g:EndOfSequence></g:PullResponse></a:Body></a:Envelope>"#,
    // CIM_PhysicalMemory EnumerateResponse
    r#"<?xml version="1.0" encoding="UTF-8"?><a:Envelope xmlns:a="http://www.w3.org/2003/05/soap-envelope" xmlns:b="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:c="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:d="http://schemas.xmlsoap.org/ws/2005/02/trust" xmlns:e="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:f="http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd" xmlns:g="http://schemas.xmlsoap.org/ws/2004/09/enumeration" xmlns:h="urn:none" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><a:Header><b:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:To><b:RelatesTo>uuid:6</b:RelatesTo><b:Action a:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/enumeration/EnumerateResponse</b:Action><b:MessageID>uuid:00000000-8086-8086-8086-00000000200D</b:MessageID><c:ResourceURI>http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_PhysicalMemory</c:ResourceURI></a:Header><a:Body><g:EnumerateResponse><g:EnumerationContext>0000200C-0000-0000-0000-000000000000</g:EnumerationContext></g:EnumerateResponse></a:Body></a:Envelope>"#,
    // CIM_PhysicalMemory PullResponse
    r#"<?xml version="1.0" encoding="UTF-8"?><a:Envelope xmlns:a="http://www.w3.org/2003/05/soap-envelope" xmlns:b="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:c="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:d="http://schemas.xmlsoap.org/ws/2005/02/trust" xmlns:e="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:f="http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd" xmlns:g="http://schemas.xmlsoap.org/ws/2004/09/enumeration" xmlns:h="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_PhysicalMemory" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><a:Header><b:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:To><b:RelatesTo>uuid:7</b:RelatesTo><b:Action a:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/enumeration/PullResponse</b:Action><b:MessageID>uuid:00000000-8086-8086-8086-00000000200E</b:MessageID><c:ResourceURI>http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_PhysicalMemory</c:ResourceURI></a:Header><a:Body><g:PullResponse><g:Items><h:CIM_PhysicalMemory><h:BankLabel>BANK 0</h:BankLabel><h:Capacity>17179869184</h:Capacity><h:ConfiguredMemoryClockSpeed>3200</h:ConfiguredMemoryClockSpeed><h:CreationClassName>CIM_PhysicalMemory</h:CreationClassName><h:ElementName>Managed System Memory Chip</h:ElementName><h:FormFactor>13</h:FormFactor><h:IsSpeedInMhz>true</h:IsSpeedInMhz><h:Manufacturer>Simulated</h:Manufacturer><h:MaxMemorySpeed>3200</h:MaxMemorySpeed><h:MemoryType>26</h:MemoryType><h:PartNumber>SIM-DIMM-16G</h:PartNumber><h:SerialNumber>DIMM0000</h:SerialNumber><h:Speed>0</h:Speed><h:Tag>9876543210-0</h:Tag></h:CIM_PhysicalMemory><h:CIM_PhysicalMemory><h:BankLabel>BANK 1</h:BankLabel><h:Capacity>17179869184</h:Capacity><h:ConfiguredMemoryClockSpeed>3200</h:ConfiguredMemoryClockSpeed><h:CreationClassName>CIM_PhysicalMemory</h:CreationClassName><h:ElementName>Managed System Memory Chip</h:ElementName><h:FormFactor>13</h:FormFactor><h:IsSpeedInMhz>true</h:IsSpeedInMhz><h:Manufacturer>Simulated</h:Manufacturer><h:MaxMemorySpeed>3200</h:MaxMemorySpeed><h:MemoryType>26</h:MemoryType><h:PartNumber>SIM-DIMM-16G</h:PartNumber><h:SerialNumber>DIMM0001</h:SerialNumber><h:Speed>0</h:Speed><h:Tag>9876543210-1</h:Tag></h:CIM_PhysicalMemory></g:Items><g:EndOfSequence></g:EndOfSequence></g:PullResponse></a:Body></a:Envelope>"#,
    // CIM_MediaAccessDevice EnumerateResponse
    r#"<?xml version="1.0" encoding="UTF-8"?><a:Envelope xmlns:a="http://www.w3.org/2003/05/soap-envelope" xmlns:b="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:c="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:d="http://schemas.xmlsoap.org/ws/2005/02/trust" xmlns:e="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:f="http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd" xmlns:g="http://schemas.xmlsoap.org/ws/2004/09/enumeration" xmlns:h="urn:none" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><a:Header><b:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:To><b:RelatesTo>uuid:8</b:RelatesTo><b:Action a:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/enumeration/EnumerateResponse</b:Action><b:MessageID>uuid:00000000-8086-8086-8086-000000002010</b:MessageID><c:ResourceURI>http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_MediaAccessDevice</c:ResourceURI></a:Header><a:Body><g:EnumerateResponse><g:EnumerationContext>0000200F-0000-0000-0000-000000000000</g:EnumerationContext></g:EnumerateResponse></a:Body></a:Envelope>"#,
    // CIM_MediaAccessDevice PullResponse
    r#"<?xml version="1.0" encoding="UTF-8"?><a:Envelope xmlns:a="http://www.w3.org/2003/05/soap-envelope" xmlns:b="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:c="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:d="http://schemas.xmlsoap.org/ws/2005/02/trust" xmlns:e="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:f="http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd" xmlns:g="http://schemas.xmlsoap.org/ws/2004/09/enumeration" xmlns:h="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_MediaAccessDevice" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><a:Header><b:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:To><b:RelatesTo>uuid:9</b:RelatesTo><b:Action a:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/enumeration/PullResponse</b:Action><b:MessageID>uuid:00000000-8086-8086-8086-000000002011</b:MessageID><c:ResourceURI>http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_MediaAccessDevice</c:ResourceURI></a:Header><a:Body><g:PullResponse><g:Items><h:CIM_MediaAccessDevice><h:Capabilities>4</h:Capabilities><h:Capabilities>10</h:Capabilities><h:CreationClassName>CIM_MediaAccessDevice</h:CreationClassName><h:DeviceID>MEDIA DEV 0</h:DeviceID><h:ElementName>Managed System Media Access Device</h:ElementName><h:EnabledDefault>2</h:EnabledDefault><h:EnabledState>0</h:EnabledState><h:MaxMediaSize>500107608</h:MaxMediaSize><h:OperationalStatus>0</h:OperationalStatus><h:RequestedState>12</h:RequestedState><h:Security>2</h:Security><h:SystemCreationClassName>CIM_ComputerSystem</h:SystemCreationClassName><h:SystemName>ManagedSystem</h:SystemName></h:CIM_MediaAccessDevice></g:Items><g:EndOfSequence></g:EndOfSequence></g:PullResponse></a:Body></a:Envelope>"#,
    // CIM_PhysicalPackage EnumerateResponse
    r#"<?xml version="1.0" encoding="UTF-8"?><a:Envelope xmlns:a="http://www.w3.org/2003/05/soap-envelope" xmlns:b="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:c="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:d="http://schemas.xmlsoap.org/ws/2005/02/trust" xmlns:e="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:f="http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd" xmlns:g="http://schemas.xmlsoap.org/ws/2004/09/enumeration" xmlns:h="urn:none" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><a:Header><b:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:To><b:RelatesTo>uuid:10</b:RelatesTo><b:Action a:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/enumeration/EnumerateResponse</b:Action><b:MessageID>uuid:00000000-8086-8086-8086-000000002013</b:MessageID><c:ResourceURI>http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_PhysicalPackage</c:ResourceURI></a:Header><a:Body><g:EnumerateResponse><g:EnumerationContext>00002012-0000-0000-0000-000000000000</g:EnumerationContext></g:EnumerateResponse></a:Body></a:Envelope>"#,
    // CIM_PhysicalPackage PullResponse
    r#"<?xml version="1.0" encoding="UTF-8"?><a:Envelope xmlns:a="http://www.w3.org/2003/05/soap-envelope" xmlns:b="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:c="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:d="http://schemas.xmlsoap.org/ws/2005/02/trust" xmlns:e="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:f="http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd" xmlns:g="http://schemas.xmlsoap.org/ws/2004/09/enumeration" xmlns:h="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_PhysicalPackage" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><a:Header><b:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:To><b:RelatesTo>uuid:11</b:RelatesTo><b:Action a:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/enumeration/PullResponse</b:Action><b:MessageID>uuid:00000000-8086-8086-8086-000000002014</b:MessageID><c:ResourceURI>http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_PhysicalPackage</c:ResourceURI></a:Header><a:Body><g:PullResponse><g:Items><h:CIM_Card><h:CanBeFRUed>true</h:CanBeFRUed><h:CreationClassName>CIM_Card</h:CreationClassName><h:ElementName>Managed System Base Board</h:ElementName><h:Manufacturer>Rampart Simulated</h:Manufacturer><h:Model>SIM-BOARD</h:Model><h:OperationalStatus>0</h:OperationalStatus><h:PackageType>9</h:PackageType><h:SerialNumber>BOARD0001</h:SerialNumber><h:Tag>CIM_Card</h:Tag><h:Version>A1</h:Version></h:CIM_Card></g:Items><g:EndOfSequence></g:EndOfSequence></g:PullResponse></a:Body></a:Envelope>"#,
    // CIM_SystemPackaging EnumerateResponse
    r#"<?xml version="1.0" encoding="UTF-8"?><a:Envelope xmlns:a="http://www.w3.org/2003/05/soap-envelope" xmlns:b="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:c="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:d="http://schemas.xmlsoap.org/ws/2005/02/trust" xmlns:e="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:f="http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd" xmlns:g="http://schemas.xmlsoap.org/ws/2004/09/enumeration" xmlns:h="urn:none" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><a:Header><b:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:To><b:RelatesTo>uuid:12</b:RelatesTo><b:Action a:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/enumeration/EnumerateResponse</b:Action><b:MessageID>uuid:00000000-8086-8086-8086-000000002016</b:MessageID><c:ResourceURI>http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_SystemPackaging</c:ResourceURI></a:Header><a:Body><g:EnumerateResponse><g:EnumerationContext>00002015-0000-0000-0000-000000000000</g:EnumerationContext></g:EnumerateResponse></a:Body></a:Envelope>"#,
    // CIM_SystemPackaging PullResponse
    r#"<?xml version="1.0" encoding="UTF-8"?><a:Envelope xmlns:a="http://www.w3.org/2003/05/soap-envelope" xmlns:b="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:c="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:d="http://schemas.xmlsoap.org/ws/2005/02/trust" xmlns:e="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:f="http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd" xmlns:g="http://schemas.xmlsoap.org/ws/2004/09/enumeration" xmlns:h="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_SystemPackaging" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><a:Header><b:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:To><b:RelatesTo>uuid:13</b:RelatesTo><b:Action a:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/enumeration/PullResponse</b:Action><b:MessageID>uuid:00000000-8086-8086-8086-000000002017</b:MessageID><c:ResourceURI>http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_SystemPackaging</c:ResourceURI></a:Header><a:Body><g:PullResponse><g:Items><h:CIM_ComputerSystemPackage><h:PlatformGUID>4C4C4544004D4410804C3CC04F345732</h:PlatformGUID></h:CIM_ComputerSystemPackage></g:Items><g:EndOfSequence></g:EndOfSequence></g:PullResponse></a:Body></a:Envelope>"#,
    // CIM_Chip EnumerateResponse
    r#"<?xml version="1.0" encoding="UTF-8"?><a:Envelope xmlns:a="http://www.w3.org/2003/05/soap-envelope" xmlns:b="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:c="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:d="http://schemas.xmlsoap.org/ws/2005/02/trust" xmlns:e="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:f="http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd" xmlns:g="http://schemas.xmlsoap.org/ws/2004/09/enumeration" xmlns:h="urn:none" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><a:Header><b:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:To><b:RelatesTo>uuid:14</b:RelatesTo><b:Action a:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/enumeration/EnumerateResponse</b:Action><b:MessageID>uuid:00000000-8086-8086-8086-000000002019</b:MessageID><c:ResourceURI>http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_Chip</c:ResourceURI></a:Header><a:Body><g:EnumerateResponse><g:EnumerationContext>00002018-0000-0000-0000-000000000000</g:EnumerationContext></g:EnumerateResponse></a:Body></a:Envelope>"#,
    // CIM_Chip PullResponse
    r#"<?xml version="1.0" encoding="UTF-8"?><a:Envelope xmlns:a="http://www.w3.org/2003/05/soap-envelope" xmlns:b="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:c="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:d="http://schemas.xmlsoap.org/ws/2005/02/trust" xmlns:e="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:f="http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd" xmlns:g="http://schemas.xmlsoap.org/ws/2004/09/enumeration" xmlns:h="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_Chip" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><a:Header><b:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:To><b:RelatesTo>uuid:15</b:RelatesTo><b:Action a:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/enumeration/PullResponse</b:Action><b:MessageID>uuid:00000000-8086-8086-8086-00000000201A</b:MessageID><c:ResourceURI>http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_Chip</c:ResourceURI></a:Header><a:Body><g:PullResponse><g:Items><h:CIM_Chip><h:CanBeFRUed>true</h:CanBeFRUed><h:CreationClassName>CIM_Chip</h:CreationClassName><h:ElementName>Managed System Processor Chip</h:ElementName><h:Manufacturer>Intel(R) Corporation</h:Manufacturer><h:OperationalStatus>0</h:OperationalStatus><h:Tag>CPU 0</h:Tag><h:Version>Simulated CPU</h:Version></h:CIM_Chip></g:Items><g:EndOfSequence></g:EndOfSequence></g:PullResponse></a:Body></a:Envelope>"#,
];
