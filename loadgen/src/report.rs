//! The end-of-run summary: a table on stdout and, optionally, a JSON file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write as _};
use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::rss::RssStats;
use crate::runner::ErrorTally;

/// Creates the `--json` and `--html` files before a run, so a path that cannot be written
/// fails at once rather than after the run. If the second cannot be created, the first (which
/// this call created) is removed again.
pub(crate) fn create_outputs(
    json: Option<&Path>,
    html: Option<&Path>,
) -> anyhow::Result<(Option<File>, Option<File>)> {
    let json_file = json
        .map(|path| {
            File::create(path).with_context(|| format!("cannot create --json {}", path.display()))
        })
        .transpose()?;
    match html.map(File::create).transpose() {
        Ok(html_file) => Ok((json_file, html_file)),
        Err(e) => {
            // Only the --json file this run created; never a file that was already there.
            if let Some(path) = json {
                let _ = std::fs::remove_file(path);
            }
            let path = html.unwrap_or(Path::new(""));
            Err(e).with_context(|| format!("cannot create --html {}", path.display()))
        }
    }
}

/// Writes `report` as pretty JSON into the `--json` file created before the run.
pub(crate) fn write_json(file: File, path: &Path, report: &impl Serialize) -> anyhow::Result<()> {
    let mut out = BufWriter::new(file);
    serde_json::to_writer_pretty(&mut out, report)
        .map_err(io::Error::from)
        .and_then(|()| writeln!(out))
        .and_then(|()| out.flush())
        .with_context(|| format!("writing --json {}", path.display()))
}

/// Writes `page` into the `--html` file created before the run.
pub(crate) fn write_html(file: File, path: &Path, page: &str) -> anyhow::Result<()> {
    let mut out = BufWriter::new(file);
    out.write_all(page.as_bytes())
        .and_then(|()| out.flush())
        .with_context(|| format!("writing --html {}", path.display()))
}

/// Formats microseconds for humans: `850 µs`, `1.23 ms`, `2.50 s`.
pub(crate) fn fmt_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{:.2} ms", us as f64 / 1e3)
    } else {
        format!("{:.2} s", us as f64 / 1e6)
    }
}

/// Latency figures in microseconds.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Latency {
    pub(crate) min: u64,
    pub(crate) mean: f64,
    pub(crate) stdev: f64,
    pub(crate) p50: u64,
    pub(crate) p90: u64,
    pub(crate) p99: u64,
    pub(crate) p999: u64,
    pub(crate) max: u64,
}

impl Latency {
    pub(crate) fn from_histogram(h: &Histogram<u64>) -> Option<Self> {
        if h.is_empty() {
            return None;
        }
        Some(Self {
            min: h.min(),
            mean: h.mean(),
            stdev: h.stdev(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        })
    }
}

/// An error kind in the report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ErrorReport {
    pub(crate) count: u64,
    pub(crate) example: String,
}

/// Every figure of one run; this is the JSON document.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub(crate) tool: &'static str,
    pub(crate) version: &'static str,
    pub(crate) mode: &'static str,
    pub(crate) command_line: Vec<String>,
    pub(crate) target: SocketAddr,
    /// Mode-specific settings and facts (server name, negotiated TLS parameters, ...).
    pub(crate) details: BTreeMap<&'static str, serde_json::Value>,
    pub(crate) connections: u32,
    pub(crate) limit_duration_s: f64,
    pub(crate) limit_count: Option<u64>,
    pub(crate) started_unix_ms: u128,
    pub(crate) elapsed_s: f64,
    /// What a successful operation is called (`handshakes`); the JSON key of `ok`.
    #[serde(skip)]
    pub(crate) ok_label: &'static str,
    /// Successful operations; written under `ok_label` in JSON.
    pub(crate) ok: u64,
    pub(crate) errors: u64,
    pub(crate) errors_by_kind: BTreeMap<&'static str, ErrorReport>,
    pub(crate) rate_per_s: f64,
    /// `null` when nothing succeeded.
    pub(crate) latency_us: Option<Latency>,
    pub(crate) server_rss: Option<RssStats>,
}

impl Report {
    pub(crate) fn errors_from(
        tallies: &BTreeMap<&'static str, ErrorTally>,
    ) -> BTreeMap<&'static str, ErrorReport> {
        tallies
            .iter()
            .map(|(kind, t)| {
                (
                    *kind,
                    ErrorReport {
                        count: t.count,
                        example: t.example.clone(),
                    },
                )
            })
            .collect()
    }

    /// The JSON document: every field, with `ok` under its mode's name.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(map) = value.as_object_mut()
            && let Some(ok) = map.remove("ok")
        {
            map.insert(self.ok_label.to_owned(), ok);
        }
        value
    }

    /// The human summary.
    pub(crate) fn table(&self) -> String {
        let ok_label = self.ok_label;
        let mut out = String::new();
        let _ = writeln!(out, "rampart-loadgen {} -> {}", self.mode, self.target);
        for (key, value) in &self.details {
            let value = match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let _ = writeln!(out, "  {key:<16} {value}");
        }
        let _ = writeln!(out, "  {:<16} {}", "connections", self.connections);
        let _ = writeln!(out, "  {:<16} {:.2} s", "elapsed", self.elapsed_s);
        let _ = writeln!(out, "  {ok_label:<16} {}", self.ok);
        let _ = writeln!(out, "  {:<16} {}", "errors", self.errors);
        for (kind, e) in &self.errors_by_kind {
            let _ = writeln!(out, "    {kind:<20} {:>8}  e.g. {}", e.count, e.example);
        }
        let _ = writeln!(out, "  {:<16} {:.1} /s", "rate", self.rate_per_s);
        write_latency(&mut out, self.latency_us.as_ref(), "operation");
        if let Some(rss) = &self.server_rss {
            let _ = writeln!(out, "  server RSS       {}", rss.line());
        }
        out
    }
}

/// The summary table's latency rows (p50 to max, and the mean), or a line saying there was no
/// successful `what` to measure.
pub(crate) fn write_latency(out: &mut String, lat: Option<&Latency>, what: &str) {
    match lat {
        Some(l) => {
            let _ = writeln!(
                out,
                "  latency          {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
                "p50", "p90", "p99", "p99.9", "max", "mean"
            );
            let _ = writeln!(
                out,
                "                   {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
                fmt_us(l.p50),
                fmt_us(l.p90),
                fmt_us(l.p99),
                fmt_us(l.p999),
                fmt_us(l.max),
                fmt_us(l.mean.round() as u64),
            );
        }
        None => {
            let _ = writeln!(out, "  latency          (no successful {what})");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_micros() {
        assert_eq!(fmt_us(850), "850 µs");
        assert_eq!(fmt_us(1_234), "1.23 ms");
        assert_eq!(fmt_us(2_500_000), "2.50 s");
    }
}
