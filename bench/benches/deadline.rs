//! Deadline arithmetic: parsing `RequestReadTimeout` syntax, and the per-read and per-write
//! clock updates that run on every socket operation of the data plane.

#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rampart_deadline::{StageClock, StageLimit, StagePlan, StageSpec, WriteClock};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The HTTPS stages as the gateway declares them (`dataplane/gateway/src/config.rs`).
const HTTPS_STAGES: &[StageSpec] = &[
    StageSpec {
        name: "handshake",
        default: StageLimit::fixed(Duration::from_secs(10)),
        bounded: true,
    },
    StageSpec {
        name: "header",
        default: StageLimit::fixed(Duration::from_secs(20)),
        bounded: false,
    },
    StageSpec {
        name: "body",
        default: StageLimit::fixed(Duration::from_secs(20)),
        bounded: false,
    },
];

/// The HTTPS default plan (Apache's `mod_reqtimeout` defaults plus our handshake stage).
const HTTPS_PLAN: &str = "handshake=10 header=20-40,MinRate=500 body=20,MinRate=500";

/// A typical TCP payload per read on a 1500-byte MTU path.
const READ_BYTES: usize = 1448;

fn parsing(c: &mut Criterion) {
    let mut group = c.benchmark_group("deadline/parse");
    group.throughput(Throughput::Elements(1));
    group.bench_function("stage_limit", |b| {
        b.iter(|| StageLimit::parse(black_box("20-40,MinRate=500")))
    });
    group.bench_function("https_plan", |b| {
        b.iter(|| StagePlan::parse(black_box(HTTPS_PLAN), black_box(HTTPS_STAGES)))
    });
    group.finish();
}

fn clocks(c: &mut Criterion) {
    let header = StageLimit::parse("20-40,MinRate=500").expect("valid limit");
    let start = Instant::now();
    let mut group = c.benchmark_group("deadline/clock");
    group.throughput(Throughput::Elements(1));
    // The hot path: once per socket read. The clock is long-lived, as in a connection, so the
    // deadline quickly reaches its cap; the arithmetic is the same either way.
    group.bench_function("stage_on_bytes", |b| {
        let mut clock = StageClock::start(header, start);
        b.iter(|| {
            clock.on_bytes(black_box(READ_BYTES));
            black_box(clock.deadline())
        })
    });
    // The same, on a fresh clock each time (start + one read + expiry check).
    group.bench_function("stage_start_read_check", |b| {
        b.iter(|| {
            let mut clock = StageClock::start(black_box(header), black_box(start));
            clock.on_bytes(black_box(READ_BYTES));
            black_box(clock.is_expired(black_box(start)))
        })
    });
    // Once per write that made progress; `now` comes from the runtime's coarse clock.
    group.bench_function("write_on_progress", |b| {
        let mut clock = WriteClock::new(Duration::from_secs(30));
        clock.on_pending(start);
        b.iter(|| {
            clock.on_progress(black_box(start));
            black_box(clock.deadline())
        })
    });
    // The same with a fresh `Instant::now()` per call, to show what reading the clock costs.
    group.bench_function("write_on_progress_now", |b| {
        let mut clock = WriteClock::new(Duration::from_secs(30));
        clock.on_pending(start);
        b.iter(|| {
            clock.on_progress(Instant::now());
            black_box(clock.deadline())
        })
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
    targets = parsing, clocks
}
criterion_main!(benches);
