//! Follows another process's resident memory (`VmRSS` in `/proc/PID/status`, Linux).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::Serialize;

/// How often VmRSS is read.
const EVERY: Duration = Duration::from_millis(200);

/// What the sampler saw, in KiB.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RssStats {
    pub(crate) pid: u32,
    pub(crate) start_kib: u64,
    pub(crate) peak_kib: u64,
    /// The last reading; `None` if the process was gone at the end.
    pub(crate) final_kib: Option<u64>,
    pub(crate) samples: u64,
    /// True if the process exited (or became unreadable) during the run.
    pub(crate) exited: bool,
}

impl RssStats {
    /// The summary line, e.g. `pid 42: start 40.1 MiB, peak 47.0 MiB, final 46.2 MiB (50
    /// samples)`.
    pub(crate) fn line(&self) -> String {
        let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
        format!(
            "pid {}: start {}, peak {}, final {}{} ({} samples)",
            self.pid,
            mib(self.start_kib),
            mib(self.peak_kib),
            self.final_kib.map_or_else(|| "n/a".to_owned(), mib),
            if self.exited { ", process exited" } else { "" },
            self.samples,
        )
    }
}

/// A thread sampling one process's VmRSS every 200 ms.
#[derive(Debug)]
pub(crate) struct RssSampler {
    pid: u32,
    start_kib: u64,
    current: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<RssStats>,
}

impl RssSampler {
    /// Starts sampling; fails at once if the process cannot be read.
    pub(crate) fn start(pid: u32) -> anyhow::Result<Self> {
        let start_kib = match read_vm_rss(pid) {
            Ok(Some(kib)) => kib,
            Ok(None) => bail!("--sample-rss-pid {pid}: /proc/{pid}/status has no VmRSS line"),
            Err(error) => {
                return Err(error).context(format!(
                    "--sample-rss-pid {pid}: cannot read /proc/{pid}/status (is the process \
                     running?)"
                ));
            }
        };
        let current = Arc::new(AtomicU64::new(start_kib));
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let current = current.clone();
            let stop = stop.clone();
            thread::Builder::new()
                .name("rss-sampler".to_owned())
                .spawn(move || sample(pid, start_kib, &current, &stop))
                .context("starting the RSS sampler thread")?
        };
        Ok(Self {
            pid,
            start_kib,
            current,
            stop,
            handle,
        })
    }

    /// The latest reading, if the process is still there.
    pub(crate) fn current_kib(&self) -> Option<u64> {
        match self.current.load(Ordering::Relaxed) {
            0 => None,
            kib => Some(kib),
        }
    }

    /// Stops sampling (taking one last reading) and returns the figures.
    pub(crate) fn finish(self) -> RssStats {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.thread().unpark();
        self.handle.join().unwrap_or(RssStats {
            pid: self.pid,
            start_kib: self.start_kib,
            peak_kib: self.start_kib,
            final_kib: None,
            samples: 1,
            exited: false,
        })
    }
}

fn sample(pid: u32, start_kib: u64, current: &AtomicU64, stop: &AtomicBool) -> RssStats {
    let mut stats = RssStats {
        pid,
        start_kib,
        peak_kib: start_kib,
        final_kib: Some(start_kib),
        samples: 1,
        exited: false,
    };
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        if !stopping {
            thread::park_timeout(EVERY);
        }
        match read_vm_rss(pid) {
            Ok(Some(kib)) => {
                stats.samples += 1;
                stats.peak_kib = stats.peak_kib.max(kib);
                stats.final_kib = Some(kib);
                current.store(kib, Ordering::Relaxed);
            }
            // Gone (or a zombie, which has no VmRSS): keep the peak, report no final figure.
            Ok(None) | Err(_) => {
                stats.exited = true;
                stats.final_kib = None;
                current.store(0, Ordering::Relaxed);
                return stats;
            }
        }
        if stopping {
            return stats;
        }
    }
}

/// VmRSS of `pid` in KiB; `Ok(None)` when the status file has no VmRSS line.
fn read_vm_rss(pid: u32) -> std::io::Result<Option<u64>> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    Ok(parse_vm_rss(&status))
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let rest = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let mut fields = rest.split_whitespace();
    let value: u64 = fields.next()?.parse().ok()?;
    match fields.next() {
        Some("kB") | None => Some(value),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status() {
        let status = "Name:\tx\nVmPeak:\t  9000 kB\nVmRSS:\t   12345 kB\nThreads:\t1\n";
        assert_eq!(parse_vm_rss(status), Some(12345));
        assert_eq!(parse_vm_rss("Name:\tkthreadd\n"), None);
    }

    #[test]
    fn samples_own_process() {
        let sampler = RssSampler::start(std::process::id()).unwrap();
        assert!(sampler.current_kib().unwrap() > 0);
        let stats = sampler.finish();
        assert!(stats.peak_kib >= stats.start_kib && stats.start_kib > 0);
        assert!(stats.final_kib.is_some() && !stats.exited && stats.samples >= 2);
    }
}
