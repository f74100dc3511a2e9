//! The HTTPS front's parsers.
//!
//! - `http/request_head`: a browser-like GET head (13 fields, 590 bytes) parsed whole, and the
//!   same head fed one byte at a time (a slowloris client's cost to us per byte).
//! - `http/chunked_body`: a 16 KiB body in 1 KiB chunks, decoded.
//! - `ws/decode`: one masked 100-byte binary frame (an MQTT PUBLISH from a browser), and one
//!   masked 16 KiB frame, unmasked in place.

#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rampart_http_proto::{BodyDecoder, BodyEvent, BodyKind, BodyLimits, Limits, RequestParser};
use rampart_ws_proto::{Decoder, DecoderLimits, Event, OpCode, encode_masked};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const HEAD: &[u8] = b"GET /api/v1/devices?limit=50&offset=0 HTTP/1.1\r\n\
Host: gateway.example.com:8443\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36\r\n\
Accept: application/json, text/plain, */*\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Referer: https://gateway.example.com:8443/devices\r\n\
Cookie: rampart_session=Z4rew0L7uqFKdyUC9em3208dvgq8Wk1DCpHjYsyZwfw\r\n\
X-CSRF-Token: kaB70S2oB3G7F6vZ-RFVJVLRk4cTE82JsX1IpKHHoWQ\r\n\
Sec-Fetch-Dest: empty\r\n\
Sec-Fetch-Mode: cors\r\n\
Sec-Fetch-Site: same-origin\r\n\
Connection: keep-alive\r\n\
DNT: 1\r\n\r\n";

fn request_head(c: &mut Criterion) {
    let mut g = c.benchmark_group("http/request_head");
    g.throughput(Throughput::Bytes(HEAD.len() as u64));
    g.bench_function("whole", |b| {
        let mut p = RequestParser::new(Limits::default());
        b.iter(|| {
            p.reset();
            let (head, used) = p.parse(black_box(HEAD)).unwrap().unwrap();
            black_box((head, used))
        });
    });
    g.bench_function("byte_by_byte", |b| {
        let mut p = RequestParser::new(Limits::default());
        b.iter(|| {
            p.reset();
            let mut out = None;
            for end in 1..=HEAD.len() {
                if let Some(h) = p.parse(black_box(&HEAD[..end])).unwrap() {
                    out = Some(h);
                }
            }
            black_box(out)
        });
    });
    g.finish();
}

fn chunked_body(c: &mut Criterion) {
    let mut wire = Vec::new();
    for _ in 0..16 {
        wire.extend_from_slice(b"400\r\n");
        wire.extend_from_slice(&[b'x'; 1024]);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    let mut g = c.benchmark_group("http/chunked_body");
    g.throughput(Throughput::Bytes(16 * 1024));
    g.bench_function("16x1KiB", |b| {
        b.iter_batched(
            || BytesMut::from(&wire[..]),
            |mut buf| {
                let mut d = BodyDecoder::new(BodyKind::Chunked, BodyLimits::default());
                let mut n = 0;
                while let Some(ev) = d.decode(&mut buf).unwrap() {
                    match ev {
                        BodyEvent::Data(b) => n += b.len(),
                        BodyEvent::End => break,
                    }
                }
                black_box(n)
            },
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

fn ws_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("ws/decode");
    for size in [100usize, 16 * 1024] {
        let mut frame = BytesMut::new();
        encode_masked(
            &mut frame,
            OpCode::Binary,
            true,
            &vec![7u8; size],
            [1, 2, 3, 4],
        );
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("masked_{size}B"), |b| {
            let mut dec = Decoder::new(DecoderLimits::default());
            b.iter_batched(
                || frame.clone(),
                |mut buf| match dec.decode(&mut buf).unwrap() {
                    Some(Event::Data { bytes, .. }) => black_box(bytes.len()),
                    other => panic!("{other:?}"),
                },
                BatchSize::SmallInput,
            );
        });
    }
    g.finish();
}

criterion_group!(benches, request_head, chunked_body, ws_decode);
criterion_main!(benches);
