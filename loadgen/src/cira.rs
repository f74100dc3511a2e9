//! `cira` mode: simulated Intel AMT devices ([`crate::amt::Device`]) dial the CIRA port at a
//! fixed rate, set up their APF tunnels and hold them with keepalives.
//!
//! Every device's admission latency (TCP connect to the last forward accepted) goes into a
//! histogram; the run reports how many tunnels came up, how many were refused and why, how long
//! the whole fleet took to come up (the reconnect storm), how many tunnels were still alive at
//! the end (a keepalive answered), and the server's memory with `--sample-rss-pid`.
//!
//! Devices are spread over `--threads` worker threads with blocking sockets; each thread starts
//! its devices on the shared schedule (device `i` at `i / rate` seconds), then walks them in
//! turn sending keepalives. A device costs the client one socket and a small buffer, not a
//! thread.

use std::fs::File;
use std::io::BufWriter;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use hdrhistogram::Histogram;
use serde_json::json;

use crate::amt::{Device, DeviceSpec, Setup};
use crate::cli::CiraArgs;
use crate::report::{Latency, fmt_us};
use crate::rss::RssSampler;

/// The devices of the file.
fn read_devices(args: &CiraArgs) -> anyhow::Result<Vec<DeviceSpec>> {
    let text = std::fs::read_to_string(&args.devices_file)
        .with_context(|| format!("cannot read --devices-file {}", args.devices_file.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut f = line.splitn(3, ',');
        let (Some(guid), Some(user), Some(pw)) = (f.next(), f.next(), f.next()) else {
            bail!(
                "--devices-file line {}: want guid,mps_username,mps_password",
                n + 1
            );
        };
        let guid = guid
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("--devices-file line {}: bad GUID", n + 1))?;
        out.push(DeviceSpec {
            guid,
            username: user.trim().to_string(),
            password: pw.to_string(),
            ports: vec![16992, 16994],
        });
        if args.devices.is_some_and(|max| out.len() >= max as usize) {
            break;
        }
    }
    if out.is_empty() {
        bail!(
            "--devices-file {}: no device in it",
            args.devices_file.display()
        );
    }
    Ok(out)
}

/// What one worker saw.
#[derive(Debug)]
struct Tally {
    admission: Histogram<u64>,
    established: u64,
    refused: std::collections::BTreeMap<String, u64>,
    alive_at_end: u64,
    keepalives: u64,
    last_up: Option<Instant>,
}

impl Tally {
    fn new() -> Self {
        Self {
            admission: crate::runner::new_histogram(),
            established: 0,
            refused: Default::default(),
            alive_at_end: 0,
            keepalives: 0,
            last_up: None,
        }
    }

    fn refused(&mut self, why: String) {
        *self.refused.entry(why).or_default() += 1;
    }
}

/// Runs the mode and prints the summary.
pub(crate) fn run(args: &CiraArgs, command_line: Vec<String>) -> anyhow::Result<()> {
    let devices = read_devices(args)?;
    let tls = crate::handshake::client_config(&args.tls.ca, args.tls.tls12)?;
    let rss = args.sample_rss_pid.map(RssSampler::start).transpose()?;
    let json_file = args
        .json
        .as_deref()
        .map(|p| File::create(p).with_context(|| format!("cannot create --json {}", p.display())))
        .transpose()?;
    let n = devices.len();
    let threads = (args.threads as usize).min(n);
    let start = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / f64::from(args.rate));
    let up_now = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for t in 0..threads {
        let mine: Vec<(usize, DeviceSpec)> = devices
            .iter()
            .enumerate()
            .filter(|(i, _)| i % threads == t)
            .map(|(i, d)| (i, d.clone()))
            .collect();
        let tls = tls.clone();
        let name = args.tls.server_name.clone();
        let (target, timeout, keepalive, hold) =
            (args.target, args.timeout, args.keepalive, args.hold);
        let up_now = up_now.clone();
        let span = interval * n as u32;
        handles.push(
            std::thread::Builder::new()
                .name(format!("cira-{t}"))
                .spawn(move || {
                    let mut tally = Tally::new();
                    let mut held: Vec<Device> = Vec::new();
                    for (i, spec) in mine {
                        let at = start + interval * i as u32;
                        if let Some(wait) = at.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                        let began = Instant::now();
                        let guid = spec.guid;
                        let outcome = Device::connect(target, tls.clone(), &name, spec, timeout)
                            .and_then(|mut d| d.setup(0, timeout).map(|s| (d, s)));
                        match outcome {
                            Ok((d, Setup::Forwarding { .. })) => {
                                let us =
                                    u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
                                let _ = tally.admission.record(us.max(1));
                                tally.established += 1;
                                tally.last_up = Some(Instant::now());
                                up_now.fetch_add(1, Ordering::Relaxed);
                                held.push(d);
                            }
                            Ok((_, Setup::Disconnected(r))) => {
                                tally.refused(format!("disconnect_{r}"))
                            }
                            Ok((_, Setup::AuthFailed)) => tally.refused("auth_failed".into()),
                            Ok((_, Setup::Closed)) => tally.refused("closed".into()),
                            Err(e) => tally.refused(format!("error: {}", first_line(&e, &guid))),
                        }
                    }
                    // Hold: keepalives in turn until every device's schedule plus the hold is over.
                    let end = start + span + hold;
                    let mut cookie = 0u32;
                    while Instant::now() < end && !held.is_empty() {
                        let round = Instant::now();
                        held.retain_mut(|d| {
                            cookie = cookie.wrapping_add(1);
                            let ok = d.keepalive(cookie, timeout).is_ok_and(|c| c == cookie);
                            if ok {
                                tally.keepalives += 1;
                            } else {
                                up_now.fetch_sub(1, Ordering::Relaxed);
                            }
                            ok
                        });
                        if let Some(rest) = keepalive.checked_sub(round.elapsed()) {
                            std::thread::sleep(
                                rest.min(end.saturating_duration_since(Instant::now())),
                            );
                        }
                    }
                    tally.alive_at_end = held.len() as u64;
                    tally
                })?,
        );
    }
    // Progress once a second.
    let mut last = Instant::now();
    while handles.iter().any(|h| !h.is_finished()) {
        std::thread::sleep(Duration::from_millis(100));
        if last.elapsed() >= Duration::from_secs(1) {
            last = Instant::now();
            eprintln!(
                "cira: {:>6.1}s  tunnels up {}",
                start.elapsed().as_secs_f64(),
                up_now.load(Ordering::Relaxed)
            );
        }
    }
    let mut total = Tally::new();
    for h in handles {
        let t = h
            .join()
            .map_err(|_| anyhow::anyhow!("a worker thread panicked"))?;
        let _ = total.admission.add(&t.admission);
        total.established += t.established;
        total.alive_at_end += t.alive_at_end;
        total.keepalives += t.keepalives;
        for (k, v) in t.refused {
            *total.refused.entry(k).or_default() += v;
        }
        total.last_up = total.last_up.max(t.last_up);
    }
    let rss = rss.map(RssSampler::finish);
    let all_up_s = total.last_up.map(|t| t.duration_since(start).as_secs_f64());
    let latency = Latency::from_histogram(&total.admission);

    println!(
        "devices            {n} at {} connections/s, {threads} threads",
        args.rate
    );
    println!("established        {}", total.established);
    for (why, count) in &total.refused {
        println!("refused            {count} ({why})");
    }
    if let Some(s) = all_up_s {
        println!("all up after       {s:.2} s (last tunnel established)");
    }
    println!(
        "alive at the end   {} (keepalive answered)",
        total.alive_at_end
    );
    println!("keepalives         {}", total.keepalives);
    if let Some(l) = &latency {
        println!(
            "admission latency  p50 {}  p90 {}  p99 {}  max {}",
            fmt_us(l.p50),
            fmt_us(l.p90),
            fmt_us(l.p99),
            fmt_us(l.max)
        );
    }
    if let Some(r) = &rss {
        println!("{}", r.line());
    }
    if let Some(f) = json_file {
        let doc = json!({
            "tool": "rampart-loadgen",
            "mode": "cira",
            "command_line": command_line,
            "target": args.target.to_string(),
            "devices": n,
            "rate_per_s": args.rate,
            "threads": threads,
            "established": total.established,
            "refused": total.refused,
            "all_up_s": all_up_s,
            "alive_at_end": total.alive_at_end,
            "keepalives": total.keepalives,
            "admission_latency_us": latency,
            "server_rss": rss,
        });
        serde_json::to_writer_pretty(BufWriter::new(f), &doc).context("writing --json")?;
    }
    if total.established == 0 {
        bail!("no tunnel came up: {:?}", total.refused);
    }
    Ok(())
}

fn first_line(e: &anyhow::Error, guid: &rampart_apf_proto::Guid) -> String {
    let text = format!("{e:#}");
    let line = text.lines().next().unwrap_or("");
    // One error kind per cause, not per device.
    line.replace(&guid.to_string(), "<guid>")
}
