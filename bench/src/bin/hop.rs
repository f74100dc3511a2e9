//! `rampart-hop`: how long one message takes from a core to another core's task, through
//! the data plane's own runtime and cross-core channel (`rampart_rt`), when the receiving core
//! was asleep. This is the extra step of a delivery whose publisher and subscriber have
//! different home cores; the broker's load tests see it only mixed with everything else.
//!
//! Core 0 sleeps `--gap-us` on its timer, stamps `Instant::now()` and pushes the stamp into
//! core 1's channel; core 1's task records `now - stamp` when it is polled. With `--same-core`
//! both tasks run on core 0 (the receiving task is woken by the local executor, no wake-up of
//! a sleeping thread), for comparison.
//!
//! ```sh
//! cargo run --release -p rampart-bench --bin rampart-hop -- --gap-us 2000 --samples 5000
//! ```

use std::num::NonZeroUsize;
use std::process::ExitCode;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rampart_rt::channel::{self, Receiver, Sender};
use rampart_rt::{CoreCtx, CoreFuture, DriverChoice, RtConfig};

struct Options {
    gap: Duration,
    samples: u32,
    pin: bool,
    same_core: bool,
}

const USAGE: &str = "usage: rampart-hop [--gap-us N (default 2000)] [--samples N (default 5000)] \
                     [--no-pin] [--same-core]";

fn parse() -> Result<Options, String> {
    let mut o = Options {
        gap: Duration::from_micros(2000),
        samples: 5000,
        pin: true,
        same_core: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut number = |max: u64| -> Result<u64, String> {
            let v = args.next().ok_or(format!("{a} needs a value"))?;
            v.parse::<u64>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or(format!("{a} takes a number from 1 to {max}, not `{v}`"))
        };
        match a.as_str() {
            "--gap-us" => o.gap = Duration::from_micros(number(1_000_000)?),
            "--samples" => o.samples = u32::try_from(number(1_000_000)?).unwrap_or(1),
            "--no-pin" => o.pin = false,
            "--same-core" => o.same_core = true,
            "-h" | "--help" => return Err(USAGE.into()),
            _ => return Err(format!("unknown option `{a}`\n{USAGE}")),
        }
    }
    Ok(o)
}

/// What the main thread hands a core through its mailbox.
enum Role {
    Send(Sender<Instant>),
    Receive(Receiver<Instant>, mpsc::Sender<Histogram<u64>>),
}

async fn send(tx: Sender<Instant>, gap: Duration, samples: u32) {
    for _ in 0..samples {
        compio::time::sleep(gap).await;
        if tx.try_send(Instant::now()).is_err() {
            break;
        }
    }
}

async fn receive(mut rx: Receiver<Instant>, out: mpsc::Sender<Histogram<u64>>) {
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds");
    while let Some(stamp) = rx.recv().await {
        let ns = u64::try_from(stamp.elapsed().as_nanos()).unwrap_or(u64::MAX);
        h.saturating_record(ns);
    }
    let _ = out.send(h);
}

fn main() -> ExitCode {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let (gap, samples) = (o.gap, o.samples);
    let main = Arc::new(move |mut ctx: CoreCtx<Role>| -> CoreFuture {
        Box::pin(async move {
            // Core 0 sends; the receiver runs on core 1, or beside the sender with --same-core.
            let mut tasks = Vec::new();
            while let Some(role) = ctx.mailbox.recv().await {
                tasks.push(match role {
                    Role::Send(tx) => compio::runtime::spawn(send(tx, gap, samples)),
                    Role::Receive(rx, out) => compio::runtime::spawn(receive(rx, out)),
                });
            }
            for t in tasks {
                let _ = t.await;
            }
        })
    });
    let config = RtConfig {
        cores: NonZeroUsize::new(2).expect("two"),
        driver: DriverChoice::Auto,
        pin: o.pin,
        mailbox_capacity: 4,
    };
    let cores = match rampart_rt::start(&config, main) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (tx, rx) = channel::bounded::<Instant>(1024);
    let (out, result) = mpsc::channel();
    let mailboxes = cores.mailboxes();
    let receiver = if o.same_core { 0 } else { 1 };
    if mailboxes[0].try_send(Role::Send(tx)).is_err()
        || mailboxes[receiver]
            .try_send(Role::Receive(rx, out))
            .is_err()
    {
        eprintln!("a core did not take its role");
        return ExitCode::FAILURE;
    }
    let driver = cores.drivers().first().map_or("?", |d| d.as_str());
    // The mailboxes close with the join; the cores end when their tasks do.
    cores.join();
    let Ok(h) = result.recv() else {
        eprintln!("the receiving core ended without a result");
        return ExitCode::FAILURE;
    };
    let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{} hop, {} samples every {} us, {}, {driver}: p50 {:.1} us, p90 {:.1}, p99 {:.1}, \
         p99.9 {:.1}, max {:.1}",
        if o.same_core {
            "same-core"
        } else {
            "cross-core"
        },
        h.len(),
        gap.as_micros(),
        if o.pin { "pinned" } else { "not pinned" },
        us(0.5),
        us(0.9),
        us(0.99),
        us(0.999),
        h.max() as f64 / 1000.0,
    );
    if h.len() < u64::from(samples) {
        eprintln!("only {} of {samples} samples arrived", h.len());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
