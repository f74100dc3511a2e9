//! Command line: one subcommand per load mode, sharing the run limits and the report options.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// The longest run allowed, whatever the options say.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);

/// The run length when neither `--duration` nor `--count` is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// The most concurrent workers (one OS thread each).
pub const MAX_CONNECTIONS: u32 = 1024;

/// `rampart-loadgen`.
#[derive(Debug, Parser)]
#[command(
    name = "rampart-loadgen",
    version,
    about = "Load generator for Rampart; targets on this machine (loopback) only."
)]
pub struct Cli {
    /// The kind of load.
    #[command(subcommand)]
    pub command: Command,
}

/// The load modes.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Full TLS handshakes (no resumption): connect, handshake, close_notify, close, repeat.
    Handshake(HandshakeArgs),
}

/// Options every mode shares: where, how hard, how long, and what to report.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Target `IP:PORT` or `localhost:PORT`; loopback addresses only.
    #[arg(long, value_name = "ADDR", value_parser = parse_loopback_target)]
    pub target: SocketAddr,

    /// Concurrent workers, each with one connection at a time.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 32,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_CONNECTIONS))
    )]
    pub connections: u32,

    /// Run length, e.g. `10s`, `500ms`, `2m` (default 10s, or 1h as a cap with --count).
    #[arg(long, value_name = "TIME", value_parser = parse_run_duration)]
    pub duration: Option<Duration>,

    /// Stop after this many operations (successful or not), or at --duration, whichever first.
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u64).range(1..=1_000_000_000)
    )]
    pub count: Option<u64>,

    /// Timeout of the TCP connect.
    #[arg(long, value_name = "TIME", default_value = "5s", value_parser = parse_timeout)]
    pub connect_timeout: Duration,

    /// Timeout of each operation after the connect (e.g. the whole TLS handshake).
    #[arg(long, value_name = "TIME", default_value = "10s", value_parser = parse_timeout)]
    pub timeout: Duration,

    /// Also write every figure as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Sample VmRSS of this process (the server) every 200 ms; report start, peak and final.
    #[arg(long, value_name = "PID")]
    pub sample_rss_pid: Option<u32>,
}

impl RunArgs {
    /// The time limit of the run.
    pub fn time_limit(&self) -> Duration {
        match (self.duration, self.count) {
            (Some(d), _) => d,
            (None, Some(_)) => MAX_DURATION,
            (None, None) => DEFAULT_DURATION,
        }
    }
}

/// TLS client options.
#[derive(Debug, Args)]
pub struct TlsArgs {
    /// Name sent in SNI and checked against the server's certificate.
    #[arg(long, value_name = "NAME", default_value = "localhost")]
    pub server_name: String,

    /// PEM file with the CA certificate(s) that signed the server's certificate.
    #[arg(long, value_name = "FILE")]
    pub ca: PathBuf,

    /// Offer only TLS 1.2 (default: only TLS 1.3).
    #[arg(long)]
    pub tls12: bool,
}

/// `handshake` mode.
#[derive(Debug, Args)]
pub struct HandshakeArgs {
    /// Run options.
    #[command(flatten)]
    pub run: RunArgs,

    /// TLS options.
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// Parses `IP:PORT` or `localhost:PORT` and refuses anything that is not loopback.
///
/// Names other than `localhost` are refused rather than resolved, so a typo can never send
/// load to another machine through DNS.
pub fn parse_loopback_target(s: &str) -> Result<SocketAddr, String> {
    let addr = match s.parse::<SocketAddr>() {
        Ok(addr) => addr,
        Err(_) => match s.strip_prefix("localhost:").map(str::parse::<u16>) {
            Some(Ok(port)) => SocketAddr::from(([127, 0, 0, 1], port)),
            _ => {
                return Err(format!(
                    "`{s}` is not IP:PORT or localhost:PORT (host names are not resolved)"
                ));
            }
        },
    };
    if !addr.ip().to_canonical().is_loopback() {
        return Err(format!(
            "refusing {addr}: not a loopback address. Load may only be sent to addresses on \
             this machine (127.0.0.0/8, ::1, localhost)"
        ));
    }
    if addr.port() == 0 {
        return Err("port 0 is not a valid target port".to_owned());
    }
    Ok(addr)
}

/// Parses `1.5s`, `500ms`, `2m`, `1h`, `250us` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 10s, 500ms or 2m"))?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{s}` (use us, ms, s, m or h)"
            ));
        }
    };
    Duration::try_from_secs_f64(value * scale).map_err(|_| format!("`{s}` is out of range"))
}

fn parse_run_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() || d > MAX_DURATION {
        return Err(format!(
            "the duration must be above 0 and at most {} s",
            MAX_DURATION.as_secs()
        ));
    }
    Ok(d)
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(1) || d > Duration::from_secs(300) {
        return Err("a timeout must be between 1ms and 300s".to_owned());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            parse_loopback_target("127.0.0.1:8443"),
            Ok("127.0.0.1:8443".parse().unwrap())
        );
        assert_eq!(
            parse_loopback_target("127.9.8.7:1"),
            Ok("127.9.8.7:1".parse().unwrap())
        );
        assert_eq!(
            parse_loopback_target("[::1]:8443"),
            Ok("[::1]:8443".parse().unwrap())
        );
        assert_eq!(
            parse_loopback_target("[::ffff:127.0.0.1]:8443"),
            Ok("[::ffff:127.0.0.1]:8443".parse().unwrap())
        );
        assert_eq!(
            parse_loopback_target("localhost:8443"),
            Ok("127.0.0.1:8443".parse().unwrap())
        );
        for bad in [
            "10.0.0.1:443",
            "0.0.0.0:443",
            "[::]:443",
            "[::ffff:10.0.0.1]:443",
            "example.com:443",
            "localhost",
            "127.0.0.1",
            "127.0.0.1:0",
        ] {
            assert!(parse_loopback_target(bad).is_err(), "{bad}");
        }
        assert!(
            parse_loopback_target("192.0.2.1:443")
                .unwrap_err()
                .contains("not a loopback address")
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        for bad in ["", "s", "10x", "-1s", "1e3s", "ten"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_run_duration("0s").is_err());
        assert!(parse_run_duration("2h").is_err());
        assert!(parse_timeout("0ms").is_err());
    }
}
