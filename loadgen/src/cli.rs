//! Command line: one subcommand per load mode, sharing the run limits and the report options.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use rampart_mqtt_proto::{TopicFilter, TopicName};

/// The longest run allowed, whatever the options say.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);

/// The run length when neither `--duration` nor `--count` is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// The most concurrent workers (one OS thread each).
pub const MAX_CONNECTIONS: u32 = 1024;

/// The most MQTT subscriber connections of `mqtt`.
pub const MAX_SUBSCRIBERS: u32 = 1024;

/// The most MQTT publisher connections of `mqtt` (one OS thread each: a thousand cameras at
/// 10 messages/s each are a thousand mostly sleeping threads).
pub const MAX_PUBLISHERS: u32 = 1024;

/// The smallest `mqtt` payload: send time (8 bytes), publisher (2) and sequence (6).
pub const MIN_PAYLOAD: usize = 16;

/// The largest `mqtt` payload.
pub const MAX_PAYLOAD: usize = 16 * 1024 * 1024;

/// The most `--filter` options of `mqtt`.
pub const MAX_FILTERS: usize = 64;

/// The longest `mqtt` warm-up.
pub const MAX_WARMUP: Duration = Duration::from_secs(60);

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
    /// MQTT load against any broker: publishers send timestamped messages (QoS 0, 1 or 2, at a
    /// fixed rate or as fast as the broker takes them) that subscribers receive through their
    /// filters; measures sent and delivered messages/s, losses and end-to-end latency.
    #[command(alias = "mqtt-fanout")]
    Mqtt(MqttArgs),
    /// Simulated Intel AMT devices dialling the CIRA port at a given rate, holding their APF
    /// tunnels with keepalives; measures admission latency, tunnels held and the time for all.
    Cira(CiraArgs),
    /// Legitimate HTTPS requests on keep-alive connections, optionally while slow attackers
    /// (slowloris, slow body, slow read) hold connections; measures the legitimate clients'
    /// latency and availability, and how long the server let each attacker live.
    Http(HttpArgs),
}

/// The most simulated devices of `cira`.
pub const MAX_DEVICES: u32 = 100_000;

/// `cira` mode.
#[derive(Debug, Args)]
pub struct CiraArgs {
    /// The CIRA port, `IP:PORT` or `localhost:PORT`; loopback addresses only.
    #[arg(long, value_name = "ADDR", value_parser = parse_loopback_target)]
    pub target: SocketAddr,

    /// TLS options (AMT speaks TLS 1.2: pass --tls12 to mimic it).
    #[command(flatten)]
    pub tls: TlsArgs,

    /// The devices: one `guid,mps_username,mps_password` line each (allowlisted beforehand,
    /// e.g. with `rampart device add --mps-password-stdin`). Secrets are never arguments.
    #[arg(long, value_name = "FILE")]
    pub devices_file: PathBuf,

    /// Use only the first N devices of the file.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_DEVICES)))]
    pub devices: Option<u32>,

    /// New connections per second (the reconnect storm's rate).
    #[arg(long, value_name = "PER_SEC", default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub rate: u32,

    /// How long every tunnel is held, with keepalives, once all are up (or tried).
    #[arg(long, value_name = "TIME", default_value = "10s", value_parser = parse_run_duration)]
    pub hold: Duration,

    /// Seconds between a device's keepalives while holding (AMT: the server's interval, 30).
    #[arg(long, value_name = "TIME", default_value = "5s", value_parser = parse_timeout)]
    pub keepalive: Duration,

    /// Worker threads; devices are spread over them.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub threads: u32,

    /// Timeout of each connect and of the whole APF setup.
    #[arg(long, value_name = "TIME", default_value = "10s", value_parser = parse_timeout)]
    pub timeout: Duration,

    /// Also write every figure as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Sample VmRSS of this process (the server) every 200 ms; report start, peak and final.
    #[arg(long, value_name = "PID")]
    pub sample_rss_pid: Option<u32>,
}

/// The most slow attackers of `http`, all kinds together.
pub const MAX_ATTACKERS: u32 = 10_000;

/// The largest request body of `http --method POST`.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The attackers' interval when `--attack-interval` is not given (slowhttptest's `-i` default).
pub const DEFAULT_ATTACK_INTERVAL: Duration = Duration::from_secs(10);

/// The slow-body Content-Length when `--slow-body-length` is not given.
pub const DEFAULT_SLOW_BODY_LENGTH: u64 = 64 * 1024;

/// The bytes a slow reader takes per interval when `--slow-read-chunk` is not given.
pub const DEFAULT_SLOW_READ_CHUNK: usize = 32;

/// The longest request target `http` sends.
pub const MAX_PATH: usize = 8000;

/// `http` mode: legitimate HTTPS load and, at the same time, optional slow attackers.
#[derive(Debug, Args)]
pub struct HttpArgs {
    /// The HTTPS front, `IP:PORT` or `localhost:PORT`; loopback addresses only.
    #[arg(long, value_name = "ADDR", value_parser = parse_loopback_target)]
    pub target: SocketAddr,

    /// TLS options (also sent as the Host header, with the port).
    #[command(flatten)]
    pub tls: TlsArgs,

    /// Request target of the legitimate requests (origin-form: path and query).
    #[arg(long, value_name = "PATH", default_value = "/healthz", value_parser = parse_http_path)]
    pub path: String,

    /// Method of the legitimate requests.
    #[arg(long, value_name = "METHOD", value_enum, ignore_case = true, default_value_t = HttpMethod::Get)]
    pub method: HttpMethod,

    /// With --method POST: the body of each request, in bytes (default 0).
    #[arg(long, value_name = "BYTES", value_parser = parse_body_bytes)]
    pub body_bytes: Option<usize>,

    /// Legitimate keep-alive connections, one thread each, one request at a time.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 4,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_CONNECTIONS))
    )]
    pub connections: u32,

    /// Legitimate requests per second, all connections together, sent on a fixed schedule
    /// (open loop: latency counts from each request's scheduled send time, so a stalled server
    /// is not hidden by requests that were never sent). 0 = closed loop: each connection sends
    /// its next request as soon as the previous one is answered.
    #[arg(
        long,
        value_name = "PER_SEC",
        default_value_t = 100,
        value_parser = clap::value_parser!(u64).range(0..=1_000_000)
    )]
    pub rate: u64,

    /// Measured time, e.g. `10s`, `2m` (after the warm-up; at most 1h).
    #[arg(long, value_name = "TIME", default_value = "10s", value_parser = parse_run_duration)]
    pub duration: Duration,

    /// Legitimate requests before the measured time starts; sent but not counted. The attackers
    /// are connected before it starts.
    #[arg(long, value_name = "TIME", default_value = "1s", value_parser = parse_warmup)]
    pub warmup: Duration,

    /// Timeout of each TCP connect.
    #[arg(long, value_name = "TIME", default_value = "5s", value_parser = parse_timeout)]
    pub connect_timeout: Duration,

    /// Timeout of each legitimate request, from its send (any reconnect and TLS handshake
    /// included) to the end of its response.
    #[arg(long, value_name = "TIME", default_value = "10s", value_parser = parse_timeout)]
    pub timeout: Duration,

    /// Slowloris attackers: each sends a request line and a Host header, then one more header
    /// line every --attack-interval, and never ends the head.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_ATTACKERS))
    )]
    pub slowloris: u32,

    /// Slow-body attackers: each sends a complete POST head with a large Content-Length, then
    /// one byte of the body every --attack-interval.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_ATTACKERS))
    )]
    pub slow_body: u32,

    /// Slow-read attackers: each connects with a tiny receive buffer (SO_RCVBUF), requests
    /// --slow-read-path and takes --slow-read-chunk bytes of it every --attack-interval.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_ATTACKERS))
    )]
    pub slow_read: u32,

    /// Time between an attacker's sends (or slow reads), e.g. `10s`, `500ms` (default 10s).
    /// Attackers reconnect as soon as the server closes them.
    #[arg(long, value_name = "TIME", value_parser = parse_attack_interval)]
    pub attack_interval: Option<Duration>,

    /// Request target of the slow-body POSTs (default --path). Use one whose handler reads the
    /// body (a static file's does not: the server answers 405 at once).
    #[arg(long, value_name = "PATH", value_parser = parse_http_path)]
    pub slow_body_path: Option<String>,

    /// Content-Length of the slow-body POSTs, in bytes (default 65536; keep it under the
    /// server's body limit, or it answers 413 at once).
    #[arg(
        long,
        value_name = "BYTES",
        value_parser = clap::value_parser!(u64).range(1..=1 << 30)
    )]
    pub slow_body_length: Option<u64>,

    /// Request target of the slow readers (default --path): a response much larger than the
    /// socket buffers, or the server is done writing long before the reader is.
    #[arg(long, value_name = "PATH", value_parser = parse_http_path)]
    pub slow_read_path: Option<String>,

    /// Bytes (TLS records as they come off the socket) a slow reader takes per interval
    /// (default 32).
    #[arg(
        long,
        value_name = "BYTES",
        value_parser = clap::value_parser!(u64).range(1..=65_536)
    )]
    pub slow_read_chunk: Option<u64>,

    /// Also write every figure as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Also write a self-contained HTML page to this file: requests ok/failed and p50/p99
    /// latency for each second of the measured window (inline SVG, no scripts), the summary
    /// and the command line.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// Sample VmRSS of this process (the server) every 200 ms; report start, peak and final.
    #[arg(long, value_name = "PID")]
    pub sample_rss_pid: Option<u32>,
}

/// `--method` of `http`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HttpMethod {
    /// GET, no body.
    #[value(name = "GET")]
    Get,
    /// POST with a `--body-bytes` body.
    #[value(name = "POST")]
    Post,
}

impl HttpMethod {
    /// The method token.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

impl HttpArgs {
    /// Attackers of every kind together.
    pub fn attackers(&self) -> u32 {
        self.slowloris
            .saturating_add(self.slow_body)
            .saturating_add(self.slow_read)
    }

    /// The attackers' interval.
    pub fn attack_interval(&self) -> Duration {
        self.attack_interval.unwrap_or(DEFAULT_ATTACK_INTERVAL)
    }

    /// Checks what clap cannot: options that only make sense together, and the attacker total.
    pub fn validate(&self) -> Result<(), String> {
        if self.body_bytes.is_some() && self.method != HttpMethod::Post {
            return Err("--body-bytes needs --method POST".into());
        }
        if self.attackers() > MAX_ATTACKERS {
            return Err(format!(
                "--slowloris, --slow-body and --slow-read add up to {}; at most {MAX_ATTACKERS} \
                 attackers in all",
                self.attackers()
            ));
        }
        if self.attackers() == 0 && self.attack_interval.is_some() {
            return Err(
                "--attack-interval needs attackers: --slowloris N, --slow-body N or --slow-read N"
                    .into(),
            );
        }
        if self.slow_body == 0 && (self.slow_body_path.is_some() || self.slow_body_length.is_some())
        {
            return Err("--slow-body-path and --slow-body-length need --slow-body N".into());
        }
        if self.slow_read == 0 && (self.slow_read_path.is_some() || self.slow_read_chunk.is_some())
        {
            return Err("--slow-read-path and --slow-read-chunk need --slow-read N".into());
        }
        Ok(())
    }
}

/// A request target in origin-form (RFC 9112 §3.2.1): `/`, then visible ASCII only, so it can
/// go into a request line as it is.
fn parse_http_path(s: &str) -> Result<String, String> {
    if !s.starts_with('/') {
        return Err(format!(
            "`{s}` must start with / (a path, and a query if any)"
        ));
    }
    if s.len() > MAX_PATH || !s.bytes().all(|b| b.is_ascii_graphic()) || s.contains('#') {
        return Err(format!(
            "the path must be at most {MAX_PATH} bytes of visible ASCII, without spaces or a \
             #fragment (percent-encode the rest)"
        ));
    }
    Ok(s.to_owned())
}

fn parse_body_bytes(s: &str) -> Result<usize, String> {
    let n: usize = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of bytes"))?;
    if n > MAX_BODY_BYTES {
        return Err(format!("the body must be at most {MAX_BODY_BYTES} bytes"));
    }
    Ok(n)
}

fn parse_attack_interval(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(10) || d > Duration::from_secs(300) {
        return Err("the attack interval must be between 10ms and 300s".to_owned());
    }
    Ok(d)
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

/// `mqtt` mode (also `mqtt-fanout`). Every option has the same meaning against any broker, so
/// one command line can measure Rampart and a reference broker alike.
#[derive(Debug, Args)]
pub struct MqttArgs {
    /// Broker `IP:PORT` or `localhost:PORT`; loopback addresses only.
    #[arg(long, value_name = "ADDR", value_parser = parse_loopback_target)]
    pub target: SocketAddr,

    /// Connect with TLS (needs --ca); plain TCP without it.
    #[arg(long)]
    pub tls: bool,

    /// With --tls: PEM file with the CA certificate(s) that signed the broker's certificate.
    #[arg(long, value_name = "FILE", requires = "tls")]
    pub ca: Option<PathBuf>,

    /// With --tls: name sent in SNI and checked against the broker's certificate.
    #[arg(long, value_name = "NAME", default_value = "localhost")]
    pub server_name: String,

    /// With --tls: offer only TLS 1.2 (default: only TLS 1.3).
    #[arg(long, requires = "tls")]
    pub tls12: bool,

    /// MQTT user name of every connection (none by default).
    #[arg(long, value_name = "NAME", conflicts_with = "credentials_file")]
    pub username: Option<String>,

    /// Credentials per connection: a file of `username:password` lines (blank lines and `#`
    /// comments skipped). Publisher i takes line i, subscriber j line publishers + j, wrapping
    /// around at the end of the file.
    #[arg(long, value_name = "FILE")]
    pub credentials_file: Option<PathBuf>,

    /// File holding the MQTT password (one line; a trailing newline is ignored). Secrets are
    /// never taken as arguments.
    #[arg(long, value_name = "FILE", requires = "username")]
    pub password_file: Option<PathBuf>,

    /// Publisher connections (one thread each), publisher i publishing to --topic with `{i}`
    /// replaced by i.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_PUBLISHERS))
    )]
    pub publishers: u32,

    /// Subscriber connections, each subscribed to the --filter options (by default to every
    /// publisher's topic).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 100,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_SUBSCRIBERS))
    )]
    pub subscribers: u32,

    /// QoS of the publications and subscriptions: 0, 1 or 2.
    #[arg(
        long,
        value_name = "0|1|2",
        default_value_t = 0,
        value_parser = clap::value_parser!(u8).range(0..=2)
    )]
    pub qos: u8,

    /// Payload size in bytes (at least 16: send time, publisher and sequence number).
    #[arg(long, value_name = "BYTES", default_value_t = 100, value_parser = parse_payload)]
    pub payload: usize,

    /// The payload from a file, e.g. a real scene update. A JSON object keeps being one: the
    /// stamp goes in as its first member, `"lg":"<32 hex digits>"`; anything else gets the
    /// 16-byte binary stamp in front.
    #[arg(long, value_name = "FILE", conflicts_with = "payload")]
    pub payload_file: Option<PathBuf>,

    /// Set the RETAIN flag on every publication.
    #[arg(long)]
    pub retain: bool,

    /// Messages per second of each publisher, on a fixed schedule (open loop: latency counts
    /// from each message's scheduled send time, so a publisher held back by the broker shows as
    /// latency instead of hiding it). 0 = as fast as the broker takes them (closed loop,
    /// latency from the actual send).
    #[arg(
        long,
        value_name = "MSGS_PER_SEC",
        default_value_t = 0,
        value_parser = clap::value_parser!(u64).range(0..=10_000_000)
    )]
    pub rate: u64,

    /// With --qos 1 or 2: unacknowledged publications per publisher (also capped by the broker's
    /// Receive Maximum in MQTT 5).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 64,
        value_parser = clap::value_parser!(u16).range(1..=16_384)
    )]
    pub inflight: u16,

    /// Most messages a publisher may be ahead of its slowest subscriber (by sequence number);
    /// it waits when it is that far ahead (until half of it is free), so a broker slower than
    /// the publisher is measured at its sustainable rate instead of filling socket buffers for
    /// seconds. 0 = no limit (open loop: latency then includes all the queueing).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1000,
        value_parser = clap::value_parser!(u64).range(0..=100_000_000)
    )]
    pub max_ahead: u64,

    /// Measured time, e.g. `10s`, `2m` (after the warm-up; at most 1h).
    #[arg(long, value_name = "TIME", default_value = "10s", value_parser = parse_run_duration)]
    pub duration: Duration,

    /// Instead of --duration: each publisher sends N measured messages (after the warm-up),
    /// then stops; the run still ends after an hour.
    #[arg(
        long,
        value_name = "N",
        conflicts_with = "duration",
        value_parser = clap::value_parser!(u64).range(1..=1_000_000_000_000)
    )]
    pub count: Option<u64>,

    /// Publishing before the measured time starts; not counted.
    #[arg(long, value_name = "TIME", default_value = "1s", value_parser = parse_warmup)]
    pub warmup: Duration,

    /// New connections per second while setting up (default: all at once, as fast as the
    /// broker accepts them).
    #[arg(
        long,
        value_name = "PER_SEC",
        value_parser = clap::value_parser!(u32).range(1..=1_000_000)
    )]
    pub ramp_up: Option<u32>,

    /// Topic prefix (default `loadgen/<pid>`), the default --topic's start.
    #[arg(long, value_name = "TOPIC")]
    pub topic_prefix: Option<String>,

    /// Client identifiers are `<PREFIX>-p<i>`, `<PREFIX>-s<i>` and `<PREFIX>-probe` (default
    /// `lg<pid>`; letters, digits, `-`, `_`, `.`, `:`, at most 64). A broker that places clients
    /// by their identifier (Rampart's home core) places the same prefix the same way every run.
    #[arg(long, value_name = "PREFIX")]
    pub client_id_prefix: Option<String>,

    /// Publisher i's topic: `{i}` is replaced by i (default `<prefix>/pub/{i}`). Without `{i}`
    /// every publisher publishes to the same topic (fan-in).
    #[arg(long, value_name = "TEMPLATE")]
    pub topic: Option<String>,

    /// A filter every subscriber subscribes to (repeat for more; `{prefix}` is replaced by the
    /// topic prefix). Default: every publisher's topic. A message counts as expected at a
    /// subscriber if one of its filters matches the publisher's topic.
    #[arg(long = "filter", value_name = "FILTER")]
    pub filters: Vec<String>,

    /// MQTT protocol version.
    #[arg(long, value_name = "VERSION", value_enum, default_value_t = MqttVersion::V311)]
    pub mqtt_version: MqttVersion,

    /// Threads reading the subscriber connections (each watches its share with epoll).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 2,
        value_parser = clap::value_parser!(u32).range(1..=64)
    )]
    pub subscriber_threads: u32,

    /// Timeout of each TCP connect.
    #[arg(long, value_name = "TIME", default_value = "5s", value_parser = parse_timeout)]
    pub connect_timeout: Duration,

    /// Also write every figure as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Also write a self-contained HTML page charting deliveries, errors and the p50/p99
    /// latency second by second (inline SVG, no scripts), with the summary and command line.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// Sample VmRSS of this process (the broker) every 200 ms; report start, peak and final.
    #[arg(long, value_name = "PID")]
    pub sample_rss_pid: Option<u32>,
}

/// `--mqtt-version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MqttVersion {
    /// MQTT 3.1.1.
    #[value(name = "311")]
    V311,
    /// MQTT 5.0.
    #[value(name = "5")]
    V5,
}

impl MqttArgs {
    /// Checks what clap cannot: TLS needs a CA; the topic prefix, the topic template and the
    /// filters must be valid. Returns the topics to use.
    pub fn validate(&self) -> Result<MqttTopics, String> {
        if self.tls && self.ca.is_none() {
            return Err(
                "--tls needs --ca FILE (the CA that signed the broker's certificate)".into(),
            );
        }
        let prefix = self
            .topic_prefix
            .clone()
            .unwrap_or_else(|| format!("loadgen/{}", std::process::id()));
        let prefix = prefix.trim_end_matches('/').to_owned();
        if prefix.is_empty()
            || prefix.starts_with('$')
            || prefix.contains(['+', '#', '\0'])
            || prefix.len() > 1024
        {
            return Err(format!(
                "--topic-prefix `{prefix}` must be a non-empty topic name without wildcards \
                 (+, #) and not starting with $"
            ));
        }
        let template = self
            .topic
            .clone()
            .unwrap_or_else(|| format!("{prefix}/pub/{{i}}"));
        let last = MqttTopics::topic_of(&template, self.publishers.saturating_sub(1));
        if template.starts_with('$') || TopicName::new(last.as_str()).is_err() {
            return Err(format!(
                "--topic `{template}` must make a valid topic name (no wildcards, no NUL, not \
                 starting with $), e.g. `cameras/{{i}}/data`"
            ));
        }
        if let Some(p) = &self.client_id_prefix
            && (p.is_empty()
                || p.len() > 64
                || !p
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)))
        {
            return Err(format!(
                "--client-id-prefix `{p}` must be 1 to 64 letters, digits, `-`, `_`, `.` or `:`"
            ));
        }
        if self.filters.len() > MAX_FILTERS {
            return Err(format!("at most {MAX_FILTERS} --filter options"));
        }
        let mut filters = Vec::with_capacity(self.filters.len());
        for f in &self.filters {
            let f = f.replace("{prefix}", &prefix);
            if let Err(e) = TopicFilter::new(f.as_str()) {
                return Err(format!("--filter `{f}` is not a valid topic filter: {e}"));
            }
            if f.starts_with("$share/") {
                // Each message goes to one member of a group: every subscriber expecting every
                // message would count the others' deliveries as lost.
                return Err(format!(
                    "--filter `{f}`: shared subscriptions are not supported (each subscriber \
                     is expected to receive every matching message)"
                ));
            }
            filters.push(f);
        }
        Ok(MqttTopics {
            prefix,
            template,
            filters,
        })
    }
}

/// The topics of an `mqtt` run, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttTopics {
    /// `--topic-prefix` (or its default).
    pub prefix: String,
    /// `--topic` (or its default): `{i}` stands for the publisher index.
    pub template: String,
    /// `--filter`s with `{prefix}` replaced; empty: every publisher's topic.
    pub filters: Vec<String>,
}

impl MqttTopics {
    /// Publisher `i`'s topic under `template`.
    pub fn topic_of(template: &str, i: u32) -> String {
        template.replace("{i}", &i.to_string())
    }

    /// The filters a subscriber subscribes to, for `publishers` publishers.
    pub fn subscriber_filters(&self, publishers: u32) -> Vec<String> {
        if self.filters.is_empty() {
            let mut all: Vec<String> = (0..publishers)
                .map(|i| Self::topic_of(&self.template, i))
                .collect();
            all.dedup();
            all
        } else {
            self.filters.clone()
        }
    }
}

fn parse_payload(s: &str) -> Result<usize, String> {
    let n: usize = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of bytes"))?;
    if !(MIN_PAYLOAD..=MAX_PAYLOAD).contains(&n) {
        return Err(format!(
            "the payload must be {MIN_PAYLOAD} to {MAX_PAYLOAD} bytes (it carries an 8-byte send \
             time, a 2-byte publisher and a 6-byte sequence number)"
        ));
    }
    Ok(n)
}

fn parse_warmup(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d > MAX_WARMUP {
        return Err(format!(
            "the warm-up must be at most {} s",
            MAX_WARMUP.as_secs()
        ));
    }
    Ok(d)
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

    fn fanout(args: &[&str]) -> Result<MqttArgs, String> {
        mqtt_as("mqtt-fanout", args)
    }

    fn mqtt_as(mode: &str, args: &[&str]) -> Result<MqttArgs, String> {
        let argv = ["rampart-loadgen", mode]
            .into_iter()
            .chain(args.iter().copied());
        match Cli::try_parse_from(argv) {
            Ok(Cli {
                command: Command::Mqtt(a),
            }) => Ok(a),
            Ok(other) => Err(format!("parsed as {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn mqtt_fanout_defaults() {
        let a = fanout(&["--target", "127.0.0.1:1883"]).unwrap();
        assert_eq!((a.publishers, a.subscribers, a.qos), (1, 100, 0));
        assert_eq!((a.payload, a.rate, a.inflight), (100, 0, 64));
        assert_eq!(a.duration, Duration::from_secs(10));
        assert_eq!(a.warmup, Duration::from_secs(1));
        assert_eq!(a.mqtt_version, MqttVersion::V311);
        assert!(!a.tls && a.ca.is_none() && a.username.is_none());
        let prefix = format!("loadgen/{}", std::process::id());
        let topics = a.validate().unwrap();
        assert_eq!(topics.prefix, prefix);
        assert_eq!(topics.template, format!("{prefix}/pub/{{i}}"));
        assert_eq!(
            topics.subscriber_filters(2),
            [format!("{prefix}/pub/0"), format!("{prefix}/pub/1")]
        );
        assert!(a.count.is_none() && a.ramp_up.is_none() && !a.retain);
        let a = fanout(&[
            "--target",
            "localhost:8883",
            "--tls",
            "--ca",
            "ca.pem",
            "--username",
            "u",
            "--password-file",
            "pw",
            "--publishers",
            "4",
            "--subscribers",
            "1024",
            "--qos",
            "1",
            "--payload",
            "16",
            "--rate",
            "1000",
            "--duration",
            "2s",
            "--warmup",
            "0s",
            "--topic-prefix",
            "scenescape/loadgen/",
            "--mqtt-version",
            "5",
        ])
        .unwrap();
        assert_eq!(a.target, "127.0.0.1:8883".parse().unwrap());
        assert_eq!(
            (a.publishers, a.subscribers, a.qos, a.payload),
            (4, 1024, 1, 16)
        );
        assert_eq!(a.mqtt_version, MqttVersion::V5);
        assert_eq!(a.validate().unwrap().prefix, "scenescape/loadgen");
    }

    #[test]
    fn mqtt_general_options() {
        let a = mqtt_as(
            "mqtt",
            &[
                "--target",
                "127.0.0.1:1883",
                "--publishers",
                "1000",
                "--qos",
                "2",
                "--topic",
                "scenescape/data/camera/{i}",
                "--filter",
                "scenescape/data/camera/+",
                "--filter",
                "{prefix}/other/#",
                "--topic-prefix",
                "lg",
                "--count",
                "500",
                "--ramp-up",
                "200",
                "--retain",
                "--credentials-file",
                "creds",
                "--payload-file",
                "scene.json",
            ],
        )
        .unwrap();
        assert_eq!(
            (a.publishers, a.qos, a.count, a.ramp_up),
            (1000, 2, Some(500), Some(200))
        );
        let topics = a.validate().unwrap();
        assert_eq!(
            topics.filters,
            ["scenescape/data/camera/+", "lg/other/#"].map(String::from)
        );
        assert_eq!(
            MqttTopics::topic_of(&topics.template, 999),
            "scenescape/data/camera/999"
        );
        // One topic for all (fan-in to a single topic): one default filter.
        let a = mqtt_as(
            "mqtt",
            &[
                "--target",
                "127.0.0.1:1883",
                "--publishers",
                "3",
                "--topic",
                "all/cams",
            ],
        )
        .unwrap();
        assert_eq!(a.validate().unwrap().subscriber_filters(3), ["all/cams"]);
    }

    #[test]
    fn mqtt_fanout_refusals() {
        let t = ["--target", "127.0.0.1:1883"];
        let with = |extra: &[&str]| fanout(&[&t[..], extra].concat());
        for (extra, why) in [
            (&["--payload", "15"][..], "payload"),
            (&["--payload", "0"], "payload"),
            (&["--subscribers", "0"], "subscribers"),
            (&["--subscribers", "1025"], "subscribers"),
            (&["--publishers", "0"], "publishers"),
            (&["--publishers", "1025"], "publishers"),
            (&["--qos", "3"], "qos"),
            (&["--count", "0"], "count"),
            (&["--count", "5", "--duration", "5s"], "duration"),
            (&["--ramp-up", "0"], "ramp-up"),
            (&["--payload", "100", "--payload-file", "f"], "payload"),
            (
                &["--username", "u", "--credentials-file", "f"],
                "credentials-file",
            ),
            (&["--duration", "0s"], "duration"),
            (&["--duration", "2h"], "duration"),
            (&["--warmup", "2m"], "warmup"),
            (&["--mqtt-version", "4"], "mqtt-version"),
            (&["--ca", "ca.pem"], "tls"),
            (&["--password-file", "pw"], "username"),
            (&["--password", "secret"], "password"),
        ] {
            let err = with(extra).unwrap_err();
            assert!(err.contains(why), "{extra:?}: {err}");
        }
        let err = fanout(&["--target", "10.1.2.3:1883"]).unwrap_err();
        assert!(err.contains("not a loopback address"), "{err}");
        assert!(fanout(&["--target", "broker.example:1883"]).is_err());
        assert!(fanout(&[]).is_err());

        // What clap cannot check.
        let a = with(&["--tls"]).unwrap();
        assert!(a.validate().unwrap_err().contains("--ca"));
        for bad in ["a/+/b", "#", "$SYS/x", "/", ""] {
            let a = with(&["--topic-prefix", bad]).unwrap();
            assert!(a.validate().is_err(), "{bad}");
        }
        let long = "x".repeat(65);
        for bad in ["", "cam 1", "cam/1", "ça", "a\0b", long.as_str()] {
            let a = with(&["--client-id-prefix", bad]).unwrap();
            let err = a.validate().unwrap_err();
            assert!(err.contains("--client-id-prefix"), "{bad}: {err}");
        }
        for good in ["cam-1", "site_2.gw:a", &long[1..]] {
            assert!(
                with(&["--client-id-prefix", good])
                    .unwrap()
                    .validate()
                    .is_ok()
            );
        }
        for bad in ["a/+/{i}", "cams/#", "$SYS/{i}", ""] {
            let a = with(&["--topic", bad]).unwrap();
            let err = a.validate().unwrap_err();
            assert!(err.contains("--topic"), "{bad}: {err}");
        }
        for bad in ["a/#/b", "a+/b", "", "$share//x", "$share/g/a/+"] {
            let a = with(&["--filter", bad]).unwrap();
            let err = a.validate().unwrap_err();
            assert!(err.contains("--filter"), "{bad}: {err}");
        }
        let many: Vec<&str> = std::iter::repeat_n(["--filter", "a/b"], MAX_FILTERS + 1)
            .flatten()
            .collect();
        assert!(
            with(&many)
                .unwrap()
                .validate()
                .unwrap_err()
                .contains("at most")
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

    fn cira(args: &[&str]) -> Result<CiraArgs, String> {
        let argv = ["rampart-loadgen", "cira"].iter().chain(args);
        match Cli::try_parse_from(argv) {
            Ok(Cli {
                command: Command::Cira(a),
            }) => Ok(a),
            Ok(_) => Err("wrong mode".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn cira_arguments() {
        let a = cira(&[
            "--target",
            "127.0.0.1:4433",
            "--ca",
            "ca.pem",
            "--devices-file",
            "d.csv",
        ])
        .unwrap();
        assert_eq!(
            (a.rate, a.threads, a.hold),
            (200, 8, Duration::from_secs(10))
        );
        assert!(a.devices.is_none() && !a.tls.tls12);
        for bad in [
            &[
                "--target",
                "10.0.0.1:4433",
                "--ca",
                "c",
                "--devices-file",
                "d",
            ][..],
            &["--target", "127.0.0.1:4433", "--devices-file", "d"],
            &["--target", "127.0.0.1:4433", "--ca", "c"],
            &[
                "--target",
                "127.0.0.1:4433",
                "--ca",
                "c",
                "--devices-file",
                "d",
                "--rate",
                "0",
            ],
            &[
                "--target",
                "127.0.0.1:4433",
                "--ca",
                "c",
                "--devices-file",
                "d",
                "--devices",
                "0",
            ],
            &[
                "--target",
                "127.0.0.1:4433",
                "--ca",
                "c",
                "--devices-file",
                "d",
                "--threads",
                "999",
            ],
        ] {
            assert!(cira(bad).is_err(), "{bad:?}");
        }
    }

    fn http(args: &[&str]) -> Result<HttpArgs, String> {
        let argv = ["rampart-loadgen", "http"].iter().chain(args);
        match Cli::try_parse_from(argv) {
            Ok(Cli {
                command: Command::Http(a),
            }) => Ok(a),
            Ok(other) => Err(format!("parsed as {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn http_defaults() {
        let a = http(&["--target", "127.0.0.1:8443", "--ca", "ca.pem"]).unwrap();
        assert_eq!(a.path, "/healthz");
        assert_eq!(a.method, HttpMethod::Get);
        assert_eq!((a.connections, a.rate), (4, 100));
        assert_eq!(a.duration, Duration::from_secs(10));
        assert_eq!(a.warmup, Duration::from_secs(1));
        assert_eq!((a.slowloris, a.slow_body, a.slow_read), (0, 0, 0));
        assert_eq!(a.attack_interval(), DEFAULT_ATTACK_INTERVAL);
        assert_eq!(a.tls.server_name, "localhost");
        assert_eq!(a.validate(), Ok(()));

        let a = http(&[
            "--target",
            "localhost:8443",
            "--ca",
            "ca.pem",
            "--tls12",
            "--path",
            "/api/v1/x?y=1",
            "--method",
            "post",
            "--body-bytes",
            "1024",
            "--connections",
            "1024",
            "--rate",
            "0",
            "--duration",
            "3s",
            "--warmup",
            "0s",
            "--slowloris",
            "20",
            "--slow-body",
            "3",
            "--slow-body-path",
            "/api/v1/auth/login",
            "--slow-body-length",
            "8192",
            "--slow-read",
            "5",
            "--slow-read-path",
            "/big.bin",
            "--slow-read-chunk",
            "8",
            "--attack-interval",
            "500ms",
        ])
        .unwrap();
        assert_eq!(a.target, "127.0.0.1:8443".parse().unwrap());
        assert_eq!((a.method, a.body_bytes), (HttpMethod::Post, Some(1024)));
        assert_eq!(a.attackers(), 28);
        assert_eq!(a.attack_interval(), Duration::from_millis(500));
        assert_eq!(a.slow_read_path.as_deref(), Some("/big.bin"));
        assert!(a.tls.tls12);
        assert_eq!(a.validate(), Ok(()));
    }

    #[test]
    fn http_refusals() {
        let base = ["--target", "127.0.0.1:8443", "--ca", "ca.pem"];
        let with = |extra: &[&str]| http(&[&base[..], extra].concat());
        // What clap refuses.
        for (extra, why) in [
            (&["--connections", "0"][..], "connections"),
            (&["--connections", "1025"], "connections"),
            (&["--rate", "1000001"], "rate"),
            (&["--duration", "0s"], "duration"),
            (&["--duration", "2h"], "duration"),
            (&["--warmup", "2m"], "warmup"),
            (&["--timeout", "0s"], "timeout"),
            (&["--slowloris", "10001"], "slowloris"),
            (&["--slow-read", "many"], "slow-read"),
            (&["--attack-interval", "0s"], "attack-interval"),
            (&["--attack-interval", "5ms"], "attack-interval"),
            (&["--attack-interval", "301s"], "attack-interval"),
            (&["--body-bytes", "16777217"], "body-bytes"),
            (&["--slow-body-length", "0"], "slow-body-length"),
            (&["--slow-read-chunk", "0"], "slow-read-chunk"),
            (&["--slow-read-chunk", "65537"], "slow-read-chunk"),
            (&["--method", "DELETE"], "method"),
            (&["--path", "healthz"], "path"),
            (&["--path", "/a b"], "path"),
            (&["--path", "/a\r\nX: y"], "path"),
            (&["--path", "/a#frag"], "path"),
            (&["--slow-read-path", "big.bin"], "slow-read-path"),
        ] {
            let err = with(extra).unwrap_err();
            assert!(err.contains(why), "{extra:?}: {err}");
        }
        let long = format!("/{}", "a".repeat(MAX_PATH));
        assert!(with(&["--path", &long]).is_err());
        let err = http(&["--target", "192.0.2.1:443", "--ca", "c"]).unwrap_err();
        assert!(err.contains("not a loopback address"), "{err}");
        assert!(http(&["--target", "example.com:443", "--ca", "c"]).is_err());
        assert!(
            http(&["--target", "127.0.0.1:8443"])
                .unwrap_err()
                .contains("--ca")
        );

        // What only validate() sees.
        for (extra, why) in [
            (&["--body-bytes", "10"][..], "--method POST"),
            (&["--attack-interval", "1s"], "needs attackers"),
            (&["--slow-read-path", "/big.bin"], "need --slow-read"),
            (&["--slow-read-chunk", "8"], "need --slow-read"),
            (
                &["--slow-read", "0", "--slow-read-path", "/b"],
                "need --slow-read",
            ),
            (&["--slow-body-path", "/api"], "need --slow-body"),
            (&["--slow-body-length", "10"], "need --slow-body"),
            (
                &[
                    "--slowloris",
                    "5000",
                    "--slow-read",
                    "5000",
                    "--slow-body",
                    "1",
                ],
                "at most 10000",
            ),
        ] {
            let err = with(extra).unwrap().validate().unwrap_err();
            assert!(err.contains(why), "{extra:?}: {err}");
        }
        // The limits themselves are fine.
        let a = with(&["--slowloris", "5000", "--slow-read", "5000"]).unwrap();
        assert_eq!(a.validate(), Ok(()));
    }
}
