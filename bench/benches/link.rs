//! The control link's greeting parser, on a valid line and on hostile garbage.

#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rampart_policy::link::{Hello, MAX_LINE, Role, parse_hello};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn parse(c: &mut Criterion) {
    let valid = Hello {
        role: Role::DataPlane,
        generation: 1_234_567,
    }
    .encode()
    .into_bytes();
    assert!(matches!(parse_hello(&valid), Ok(Some(_))));
    // Hostile input of the full line length: printable ASCII, so the parser runs UTF-8
    // validation, the ASCII check and the field split before refusing it.
    let mut garbage_line: Vec<u8> = b"GET /?q=RAMPART-LINK%201 HTTP/1.1 x"
        .iter()
        .copied()
        .cycle()
        .take(MAX_LINE - 1)
        .collect();
    garbage_line.push(b'\n');
    assert_eq!(garbage_line.len(), 128);
    assert!(parse_hello(&garbage_line).is_err());
    // The same length without a newline: scanned to the limit and refused as too long.
    let no_newline: Vec<u8> = (32..=255u8).cycle().take(MAX_LINE).collect();
    assert!(!no_newline.contains(&b'\n'));
    assert!(parse_hello(&no_newline).is_err());

    let mut group = c.benchmark_group("link/parse_hello");
    group.throughput(Throughput::Elements(1));
    group.bench_function("valid", |b| b.iter(|| parse_hello(black_box(&valid))));
    group.bench_function("garbage_line_128", |b| {
        b.iter(|| parse_hello(black_box(&garbage_line)))
    });
    group.bench_function("garbage_128_no_newline", |b| {
        b.iter(|| parse_hello(black_box(&no_newline)))
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = parse
}
criterion_main!(benches);
