//! The configuration file: one TOML document, parsed once at the edge into typed values.
//!
//! Every struct denies unknown fields, so a typo in security configuration fails closed, and
//! every error names the key (`dataplane.https.request_read_timeout: ...`). Every key and its
//! default is documented here and in `docs/config.md`.

use std::fmt;
use std::marker::PhantomData;
use std::net::{Ipv4Addr, SocketAddr};
use std::num::{NonZeroU16, NonZeroU32, NonZeroU64, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rampart_dataplane::{DataplaneConfig, ListenerConfig, Protocol};
use rampart_deadline::{StageLimit, StagePlan};
use rampart_rt::{DriverChoice, RtConfig};
use rampart_secrets::Layout;
use rampart_tls::CertPaths;
use serde::Deserialize;

/// A configuration error: the key it is about and what is wrong.
#[derive(Debug)]
pub(crate) struct ConfigError {
    /// The file, or `<defaults>`.
    pub(crate) file: String,
    /// Dotted key path, e.g. `dataplane.https.listen`.
    pub(crate) key: String,
    /// What is wrong.
    pub(crate) message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() || self.key == "." {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Config {
    /// Directory for Rampart's state. Default `./var`.
    pub(crate) data_dir: PathBuf,
    /// The secrets directory made by `rampart init`. Default `<data_dir>/secrets`.
    pub(crate) secrets_dir: Option<PathBuf>,
    /// Logging.
    pub(crate) log: LogConfig,
    /// The control plane.
    pub(crate) controlplane: ControlplaneSection,
    /// The data plane.
    pub(crate) dataplane: DataplaneSection,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./var"),
            secrets_dir: None,
            log: LogConfig::default(),
            controlplane: ControlplaneSection::default(),
            dataplane: DataplaneSection::default(),
        }
    }
}

/// `[log]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LogConfig {
    /// `text` (default) or `json` (one object per line, for SIEM ingestion).
    pub(crate) format: LogFormat,
    /// A tracing filter directive, e.g. `info` (default) or `rampart_tls=debug,info`.
    /// The `RUST_LOG` environment variable overrides it.
    pub(crate) level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LogFormat {
    /// Human-readable.
    Text,
    /// JSON lines.
    Json,
}

/// `[controlplane]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ControlplaneSection {
    /// The control link's Unix socket (data plane to control plane). Default
    /// `<data_dir>/run/control.sock`.
    pub(crate) socket: Option<PathBuf>,
    /// The REST API's Unix socket, which the HTTPS front proxies `/api/` to. Default
    /// `<data_dir>/run/api.sock`.
    pub(crate) api_socket: Option<PathBuf>,
    /// The admin socket for the local `rampart` CLI. Default `<data_dir>/run/admin.sock`.
    pub(crate) admin_socket: Option<PathBuf>,
    /// The database: `postgres://user@host/db?sslmode=require` or `sqlite://PATH`. Default
    /// `sqlite://<data_dir>/rampart.db`. A PostgreSQL URL without a password uses the secrets
    /// directory's `dbpass`.
    pub(crate) database_url: Option<String>,
    /// PEM CA that signs the PostgreSQL server's certificate (with `sslmode=require`).
    pub(crate) database_tls_ca: Option<PathBuf>,
    /// PostgreSQL connections in the pool. Default 8.
    pub(crate) database_pool_size: NonZeroU32,
    /// Where audit lines go besides the database: a file path, `-` for standard output, `off`.
    /// Default `<data_dir>/audit.log`.
    pub(crate) audit_log: Option<String>,
    /// Web session lifetime in seconds. Default 28800 (8 hours).
    pub(crate) session_ttl_secs: NonZeroU64,
    /// Keep AMT passwords in HashiCorp Vault (KV v2) instead of sealed in the database.
    pub(crate) vault: Option<VaultSection>,
    /// Limits the data planes enforce.
    pub(crate) limits: LimitsSection,
}

/// `[controlplane.limits]`: sent to every data plane in the policy snapshot.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LimitsSection {
    /// Failed logins one source address may make per minute (per core) before the next are
    /// refused unchecked. Default 10.
    pub(crate) max_auth_failures_per_minute: NonZeroU32,
    /// Concurrent MQTT connections of one account. Default 64.
    pub(crate) max_connections_per_account: NonZeroU32,
    /// Subscriptions one MQTT client may hold. Default 256.
    pub(crate) max_subscriptions_per_client: NonZeroU32,
    /// Largest MQTT PUBLISH payload, bytes. Default 262144 (SceneScape's images: 104857600,
    /// with `[dataplane.broker] max_packet_size` to match).
    pub(crate) max_message_bytes: NonZeroU32,
}

impl Default for LimitsSection {
    fn default() -> Self {
        let d = rampart_policy::snapshot::Limits::default();
        let nz = |v: u32| NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN);
        Self {
            max_auth_failures_per_minute: nz(d.max_auth_failures_per_minute),
            max_connections_per_account: nz(d.max_connections_per_account),
            max_subscriptions_per_client: nz(d.max_subscriptions_per_client),
            max_message_bytes: nz(d.max_message_bytes),
        }
    }
}

impl Default for ControlplaneSection {
    fn default() -> Self {
        ControlplaneSection {
            socket: None,
            api_socket: None,
            admin_socket: None,
            database_url: None,
            database_tls_ca: None,
            database_pool_size: NonZeroU32::new(8).expect("8 is not zero"),
            audit_log: None,
            session_ttl_secs: NonZeroU64::new(8 * 3600).expect("not zero"),
            vault: None,
            limits: LimitsSection::default(),
        }
    }
}

/// `[controlplane.vault]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VaultSection {
    /// `https://vault.example:8200` (`http://` only on loopback).
    pub(crate) address: String,
    /// KV v2 path prefix, MPS's default `secret/data/`.
    #[serde(default = "default_secrets_path")]
    pub(crate) secrets_path: String,
    /// File holding the Vault token (0600).
    pub(crate) token_file: PathBuf,
    /// PEM CA of the Vault server.
    #[serde(default)]
    pub(crate) ca_file: Option<PathBuf>,
    /// Vault Enterprise namespace.
    #[serde(default)]
    pub(crate) namespace: Option<String>,
}

fn default_secrets_path() -> String {
    "secret/data/".into()
}

/// `[dataplane]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct DataplaneSection {
    /// Executors (one per core). Default: every CPU in the process's affinity mask.
    pub(crate) cores: Option<NonZeroUsize>,
    /// I/O driver: `auto` (io_uring, else poll), `io_uring`, or `poll`. Default `auto`.
    pub(crate) driver: DriverSetting,
    /// Pin each executor to one CPU. Default `true`.
    pub(crate) pin_cores: bool,
    /// Connections one core holds at most; more are closed at accept. Default 50000.
    pub(crate) max_connections_per_core: NonZeroUsize,
    /// Accept queue of each per-core socket. Default 1024.
    pub(crate) listen_backlog: NonZeroU16,
    /// Longest a drain (SIGTERM) waits for connections, in seconds. Default 30.
    pub(crate) drain_timeout_secs: NonZeroU64,
    /// The HTTPS front's port.
    pub(crate) https: ListenerSection<HttpsP>,
    /// What the HTTPS front serves and its defences.
    pub(crate) front: FrontSection,
    /// MQTT over TLS.
    pub(crate) mqtt: ListenerSection<MqttP>,
    /// CIRA (Intel AMT).
    pub(crate) cira: ListenerSection<CiraP>,
    /// The CIRA server's tunnels.
    pub(crate) amt: AmtSection,
    /// The MQTT broker.
    pub(crate) broker: BrokerSection,
    /// Prometheus metrics endpoint (`GET /metrics`), loopback addresses only. Default none.
    pub(crate) metrics_listen: Option<SocketAddr>,
}

/// `[dataplane.amt]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct AmtSection {
    /// Keepalive interval asked of devices, seconds. Default 30.
    pub(crate) keepalive_interval_secs: NonZeroU64,
    /// A tunnel silent this long is closed, seconds; more than the interval. Default 90.
    pub(crate) idle_timeout_secs: NonZeroU64,
    /// Our receive window per APF channel, bytes (32768 to 1048576). Default 81920.
    pub(crate) channel_window_bytes: u32,
    /// Publish `CIRA_Connected` / `CIRA_Disconnected` on `mps/events`. Default true.
    pub(crate) events: bool,
}

impl Default for AmtSection {
    fn default() -> Self {
        let d = rampart_dataplane::CiraConfig::default();
        let nz64 = |v: u64| NonZeroU64::new(v).unwrap_or(NonZeroU64::MIN);
        Self {
            keepalive_interval_secs: nz64(d.keepalive_interval.as_secs()),
            idle_timeout_secs: nz64(d.idle_timeout.as_secs()),
            channel_window_bytes: d.window,
            events: d.events,
        }
    }
}

impl AmtSection {
    fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.idle_timeout_secs <= self.keepalive_interval_secs {
            return Err((
                "idle_timeout_secs",
                "must be longer than keepalive_interval_secs (about three intervals)".into(),
            ));
        }
        if !(32_768..=1_048_576).contains(&self.channel_window_bytes) {
            return Err(("channel_window_bytes", "must be 32768 to 1048576".into()));
        }
        Ok(())
    }

    fn config(&self) -> rampart_dataplane::CiraConfig {
        rampart_dataplane::CiraConfig {
            keepalive_interval: Duration::from_secs(self.keepalive_interval_secs.get()),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs.get()),
            window: self.channel_window_bytes,
            events: self.events,
        }
    }
}

/// `[dataplane.front]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct FrontSection {
    /// The web console's directory, read into memory at start. Default none: a built-in page
    /// at `/`.
    pub(crate) web_root: Option<PathBuf>,
    /// Seconds a kept-alive connection may wait for its next request. Default 5.
    pub(crate) keepalive_timeout_secs: NonZeroU64,
    /// How slowly a response may be taken (slow-read defence), `T[,MinRate=R]`: `T` seconds
    /// plus one second per `R` bytes sent. Default `20,MinRate=1024`.
    pub(crate) send_timeout: String,
    /// Seconds to wait on the control plane for a proxied `/api/` request. Default 30.
    pub(crate) upstream_timeout_secs: NonZeroU64,
    /// Requests served on one connection before it closes. Default 100.
    pub(crate) max_requests_per_connection: NonZeroU32,
    /// HTTPS connections held at most, all cores together; idle ones are shed first. Default
    /// 10000.
    pub(crate) max_connections: NonZeroUsize,
    /// HTTPS connections from one source address at most. Default 256.
    pub(crate) max_connections_per_ip: NonZeroU32,
    /// Largest request body proxied to the API, bytes. Default 1048576.
    pub(crate) max_request_body_bytes: NonZeroU64,
    /// Longest request line, bytes (longer: 414). Default 8192.
    pub(crate) max_request_line_bytes: NonZeroUsize,
    /// Longest header field line, bytes. Default 8192.
    pub(crate) max_header_field_bytes: NonZeroUsize,
    /// Most header fields in a request. Default 100.
    pub(crate) max_header_fields: NonZeroUsize,
    /// Largest request head in total, bytes. Default 65536.
    pub(crate) max_head_bytes: NonZeroUsize,
    /// `Strict-Transport-Security: max-age`, seconds. Default 31536000.
    pub(crate) hsts_max_age_secs: u64,
    /// `Content-Security-Policy` of the front's own responses. Default: same origin only, no
    /// framing.
    pub(crate) content_security_policy: String,
    /// `off`, `stderr` or a file path. Default `<data_dir>/access.log`.
    pub(crate) access_log: Option<String>,
}

impl Default for FrontSection {
    fn default() -> Self {
        let d = rampart_dataplane::FrontConfig::default();
        let nzu = |v: usize| NonZeroUsize::new(v).unwrap_or(NonZeroUsize::MIN);
        let nz64 = |v: u64| NonZeroU64::new(v).unwrap_or(NonZeroU64::MIN);
        Self {
            web_root: None,
            keepalive_timeout_secs: nz64(d.keepalive_timeout.as_secs()),
            send_timeout: "20,MinRate=1024".into(),
            upstream_timeout_secs: nz64(d.upstream_timeout.as_secs()),
            max_requests_per_connection: NonZeroU32::new(d.max_requests_per_connection)
                .unwrap_or(NonZeroU32::MIN),
            max_connections: nzu(d.max_connections),
            max_connections_per_ip: NonZeroU32::new(d.max_connections_per_ip)
                .unwrap_or(NonZeroU32::MIN),
            max_request_body_bytes: nz64(d.max_request_body),
            max_request_line_bytes: nzu(d.head_limits.max_request_line),
            max_header_field_bytes: nzu(d.head_limits.max_field_size),
            max_header_fields: nzu(d.head_limits.max_fields),
            max_head_bytes: nzu(d.head_limits.max_head),
            hsts_max_age_secs: d.hsts_max_age,
            content_security_policy: d.content_security_policy,
            access_log: None,
        }
    }
}

impl FrontSection {
    fn send_limit(&self) -> Result<StageLimit, String> {
        StageLimit::parse(&self.send_timeout).map_err(|e| e.to_string())
    }

    fn validate(&self) -> Result<(), (&'static str, String)> {
        let send = self.send_limit().map_err(|e| ("send_timeout", e))?;
        if send.is_disabled() {
            return Err((
                "send_timeout",
                "must be bounded: a slow reader could hold a connection forever".into(),
            ));
        }
        if self.content_security_policy.contains(['\r', '\n'])
            || self.content_security_policy.is_empty()
        {
            return Err((
                "content_security_policy",
                "must be one non-empty line".into(),
            ));
        }
        Ok(())
    }

    fn config(
        &self,
        data_dir: &Path,
        api_socket: PathBuf,
        mqtt_connect: StageLimit,
    ) -> rampart_dataplane::FrontConfig {
        let d = rampart_dataplane::FrontConfig::default();
        rampart_dataplane::FrontConfig {
            web_root: self.web_root.clone(),
            api_socket: Some(api_socket),
            relay_socket: Some(data_dir.join("run").join("relay.sock")),
            keepalive_timeout: Duration::from_secs(self.keepalive_timeout_secs.get()),
            // Validated when the file was loaded.
            send_timeout: self.send_limit().unwrap_or(d.send_timeout),
            upstream_timeout: Duration::from_secs(self.upstream_timeout_secs.get()),
            max_requests_per_connection: self.max_requests_per_connection.get(),
            max_connections: self.max_connections.get(),
            max_connections_per_ip: self.max_connections_per_ip.get(),
            max_request_body: self.max_request_body_bytes.get(),
            head_limits: rampart_http_proto::Limits {
                max_request_line: self.max_request_line_bytes.get(),
                max_field_size: self.max_header_field_bytes.get(),
                max_fields: self.max_header_fields.get(),
                max_head: self.max_head_bytes.get(),
            },
            hsts_max_age: self.hsts_max_age_secs,
            content_security_policy: self.content_security_policy.clone(),
            access_log: match self.access_log.as_deref() {
                Some("off") => rampart_dataplane::AccessLog::Off,
                Some("stderr") => rampart_dataplane::AccessLog::Stderr,
                Some(path) => rampart_dataplane::AccessLog::File(PathBuf::from(path)),
                None => rampart_dataplane::AccessLog::File(data_dir.join("access.log")),
            },
            mqtt_connect,
        }
    }
}

/// `[dataplane.broker]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct BrokerSection {
    /// Plain-TCP MQTT listeners (no TLS). Default none. Loopback addresses only, unless
    /// `danger_plain_listen_public = true`.
    pub(crate) plain_listen: Vec<SocketAddr>,
    /// Allow `plain_listen` on non-loopback addresses: credentials then cross the network in
    /// clear text. Default `false`.
    pub(crate) danger_plain_listen_public: bool,
    /// Largest MQTT packet accepted or sent, bytes (at most 268435455). Default 1048576.
    pub(crate) max_packet_size: NonZeroU32,
    /// QoS 1/2 messages in flight to one client. Default 20.
    pub(crate) max_inflight: NonZeroU16,
    /// QoS 2 messages from one client awaiting PUBREL (v5 receive maximum). Default 64.
    pub(crate) receive_maximum: NonZeroU16,
    /// Topic aliases a v5 client may set. Default 16.
    pub(crate) topic_alias_maximum: u16,
    /// Topic aliases the broker sets towards v5 clients that accept them; 0: none. Default 16.
    pub(crate) topic_alias_maximum_out: u16,
    /// Longest keepalive allowed, seconds. Default 600.
    pub(crate) max_keepalive_secs: NonZeroU16,
    /// Longest a disconnected session is kept, seconds. Default 604800 (7 days).
    pub(crate) max_session_expiry_secs: u32,
    /// Deliveries queued per client. Default 1000.
    pub(crate) max_queued_messages: NonZeroUsize,
    /// Bytes queued in one client's outbox. Default 16777216.
    pub(crate) max_queued_bytes: NonZeroUsize,
    /// Bytes queued to all clients together. Default 1073741824.
    pub(crate) memory_budget_bytes: NonZeroUsize,
    /// `drop_qos0` or `disconnect`: what a full outbox means. Default `drop_qos0`.
    pub(crate) slow_subscriber: SlowSetting,
    /// Each core's queue of messages from other cores. Default 65536.
    pub(crate) cross_core_queue: NonZeroUsize,
    /// Seconds between `$SYS/broker/...` updates; 0 disables them. Default 10.
    pub(crate) sys_interval_secs: u64,
    /// Keep retained messages and persistent sessions in `<data_dir>/mqtt` across restarts
    /// and crashes. Default `true`.
    pub(crate) persistence: bool,
    /// Longest a change waits before it is written, in milliseconds: the window of loss on a
    /// crash (`kill -9`, power loss). Default 1000.
    pub(crate) persist_interval_ms: NonZeroU64,
    /// An external auth server speaking mosquitto-go-auth's HTTP protocol (SceneScape's),
    /// asked about usernames the control plane does not know. Default none.
    pub(crate) external_auth: Option<ExternalAuthSection>,
}

/// `[dataplane.broker.external_auth]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExternalAuthSection {
    /// `https://host:port` of the auth server (`http://` only on a loopback address).
    pub(crate) url: String,
    /// User check path. Default `/api/v1/auth` (SceneScape's).
    #[serde(default = "default_getuser_uri")]
    pub(crate) getuser_uri: String,
    /// ACL check path. Default `/api/v1/aclcheck` (SceneScape's).
    #[serde(default = "default_aclcheck_uri")]
    pub(crate) aclcheck_uri: String,
    /// Superuser check path. Default none.
    #[serde(default)]
    pub(crate) superuser_uri: Option<String>,
    /// `form` (SceneScape's) or `json`. Default `form`.
    #[serde(default = "default_params_mode")]
    pub(crate) params_mode: String,
    /// `status` (SceneScape's), `json` or `text`. Default `status`.
    #[serde(default = "default_response_mode")]
    pub(crate) response_mode: String,
    /// CA certificates (PEM) that verify the auth server. Default: the Mozilla roots.
    #[serde(default)]
    pub(crate) ca_file: Option<PathBuf>,
    /// Time limit of one call, seconds. Default 5.
    #[serde(default = "default_ext_timeout")]
    pub(crate) timeout_secs: NonZeroU64,
    /// Further tries after a transport error or 5xx. Default 3.
    #[serde(default = "default_ext_retries")]
    pub(crate) retry_count: u32,
    /// Seconds an allow is cached. Default 3600 (SceneScape's `acl_cache_seconds`).
    #[serde(default = "default_allow_cache")]
    pub(crate) allow_cache_secs: u64,
    /// Seconds a deny is cached. Default 30.
    #[serde(default = "default_deny_cache")]
    pub(crate) deny_cache_secs: u64,
    /// Threads making the calls. Default 2.
    #[serde(default = "default_ext_workers")]
    pub(crate) workers: NonZeroUsize,
}

fn default_getuser_uri() -> String {
    "/api/v1/auth".into()
}
fn default_aclcheck_uri() -> String {
    "/api/v1/aclcheck".into()
}
fn default_params_mode() -> String {
    "form".into()
}
fn default_response_mode() -> String {
    "status".into()
}
fn default_ext_timeout() -> NonZeroU64 {
    NonZeroU64::new(5).unwrap_or(NonZeroU64::MIN)
}
fn default_ext_retries() -> u32 {
    3
}
fn default_allow_cache() -> u64 {
    3600
}
fn default_deny_cache() -> u64 {
    30
}
fn default_ext_workers() -> NonZeroUsize {
    NonZeroUsize::new(2).unwrap_or(NonZeroUsize::MIN)
}

impl ExternalAuthSection {
    fn config(&self) -> rampart_dataplane::mqtt::extauth::ExternalAuthConfig {
        use rampart_dataplane::mqtt::extauth::{ExternalAuthConfig, ParamsMode, ResponseMode};
        ExternalAuthConfig {
            base_url: self.url.trim_end_matches('/').to_string(),
            getuser_uri: self.getuser_uri.clone(),
            aclcheck_uri: self.aclcheck_uri.clone(),
            superuser_uri: self.superuser_uri.clone(),
            params: if self.params_mode == "json" {
                ParamsMode::Json
            } else {
                ParamsMode::Form
            },
            response: match self.response_mode.as_str() {
                "json" => ResponseMode::Json,
                "text" => ResponseMode::Text,
                _ => ResponseMode::Status,
            },
            ca_file: self.ca_file.clone(),
            timeout: Duration::from_secs(self.timeout_secs.get()),
            retries: self.retry_count,
            allow_ttl: Duration::from_secs(self.allow_cache_secs),
            deny_ttl: Duration::from_secs(self.deny_cache_secs),
            workers: self.workers.get(),
        }
    }

    fn validate(&self) -> Result<(), (&'static str, String)> {
        if !matches!(self.params_mode.as_str(), "form" | "json") {
            return Err(("params_mode", "must be `form` or `json`".into()));
        }
        if !matches!(self.response_mode.as_str(), "status" | "json" | "text") {
            return Err(("response_mode", "must be `status`, `json` or `text`".into()));
        }
        for (key, uri) in [
            ("getuser_uri", Some(&self.getuser_uri)),
            ("aclcheck_uri", Some(&self.aclcheck_uri)),
            ("superuser_uri", self.superuser_uri.as_ref()),
        ] {
            if uri.is_some_and(|u| !u.starts_with('/')) {
                return Err((key, "must be a path starting with `/`".into()));
            }
        }
        if let Some(rest) = self.url.strip_prefix("http://") {
            let host = rest.split(['/', ':']).next().unwrap_or("");
            let loopback = host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if !loopback {
                return Err((
                    "url",
                    "passwords go to the auth server: use https:// (http:// only on loopback)"
                        .into(),
                ));
            }
        } else if !self.url.starts_with("https://") {
            return Err(("url", "must start with https://".into()));
        }
        Ok(())
    }
}

impl Default for BrokerSection {
    fn default() -> Self {
        let d = rampart_dataplane::BrokerConfig::default();
        let nz16 = |v: u16| NonZeroU16::new(v).unwrap_or(NonZeroU16::MIN);
        let nzu = |v: usize| NonZeroUsize::new(v).unwrap_or(NonZeroUsize::MIN);
        Self {
            plain_listen: Vec::new(),
            danger_plain_listen_public: false,
            max_packet_size: NonZeroU32::new(d.max_packet_size).unwrap_or(NonZeroU32::MIN),
            max_inflight: nz16(d.max_inflight),
            receive_maximum: nz16(d.receive_maximum),
            topic_alias_maximum: d.topic_alias_maximum,
            topic_alias_maximum_out: d.topic_alias_maximum_out,
            max_keepalive_secs: nz16(d.max_keepalive_secs),
            max_session_expiry_secs: d.max_session_expiry_secs,
            max_queued_messages: nzu(d.max_queued_messages),
            max_queued_bytes: nzu(d.max_queued_bytes),
            memory_budget_bytes: nzu(d.memory_budget_bytes),
            slow_subscriber: SlowSetting::DropQos0,
            cross_core_queue: nzu(d.cross_core_queue),
            sys_interval_secs: d.sys_interval.as_secs(),
            persistence: true,
            persist_interval_ms: NonZeroU64::new(1000).unwrap_or(NonZeroU64::MIN),
            external_auth: None,
        }
    }
}

impl BrokerSection {
    fn config(&self, data_dir: &Path) -> rampart_dataplane::BrokerConfig {
        rampart_dataplane::BrokerConfig {
            persist_dir: self.persistence.then(|| data_dir.join("mqtt")),
            persist_interval: Duration::from_millis(self.persist_interval_ms.get()),
            external_auth: self.external_auth.as_ref().map(ExternalAuthSection::config),
            max_packet_size: self.max_packet_size.get(),
            max_inflight: self.max_inflight.get(),
            receive_maximum: self.receive_maximum.get(),
            topic_alias_maximum: self.topic_alias_maximum,
            topic_alias_maximum_out: self.topic_alias_maximum_out,
            max_keepalive_secs: self.max_keepalive_secs.get(),
            max_session_expiry_secs: self.max_session_expiry_secs,
            max_queued_messages: self.max_queued_messages.get(),
            max_queued_bytes: self.max_queued_bytes.get(),
            memory_budget_bytes: self.memory_budget_bytes.get(),
            slow_policy: match self.slow_subscriber {
                SlowSetting::DropQos0 => rampart_dataplane::SlowPolicy::DropQos0,
                SlowSetting::Disconnect => rampart_dataplane::SlowPolicy::Disconnect,
            },
            cross_core_queue: self.cross_core_queue.get(),
            sys_interval: Duration::from_secs(self.sys_interval_secs),
        }
    }
}

/// `slow_subscriber = "drop_qos0" | "disconnect"`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SlowSetting {
    /// Drop QoS 0 deliveries to a subscriber whose outbox is full.
    DropQos0,
    /// Disconnect it.
    Disconnect,
}

impl Default for DataplaneSection {
    fn default() -> Self {
        Self {
            cores: None,
            driver: DriverSetting::Auto,
            pin_cores: true,
            max_connections_per_core: NonZeroUsize::new(50_000).unwrap_or(NonZeroUsize::MIN),
            listen_backlog: NonZeroU16::new(1024).unwrap_or(NonZeroU16::MIN),
            drain_timeout_secs: NonZeroU64::new(30).unwrap_or(NonZeroU64::MIN),
            https: ListenerSection::default(),
            front: FrontSection::default(),
            mqtt: ListenerSection::default(),
            cira: ListenerSection::default(),
            amt: AmtSection::default(),
            broker: BrokerSection::default(),
            metrics_listen: None,
        }
    }
}

/// `driver = "auto" | "io_uring" | "poll"`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DriverSetting {
    /// io_uring where the kernel allows it, poll otherwise.
    Auto,
    /// io_uring or fail to start.
    IoUring,
    /// Always poll.
    Poll,
}

/// Ties a listener section to its protocol, for defaults and stage names.
pub(crate) trait ProtocolKind {
    /// The protocol.
    const PROTOCOL: Protocol;
}

/// Marker for `[dataplane.https]`.
#[derive(Debug)]
pub(crate) struct HttpsP;
/// Marker for `[dataplane.mqtt]`.
#[derive(Debug)]
pub(crate) struct MqttP;
/// Marker for `[dataplane.cira]`.
#[derive(Debug)]
pub(crate) struct CiraP;

impl ProtocolKind for HttpsP {
    const PROTOCOL: Protocol = Protocol::Https;
}
impl ProtocolKind for MqttP {
    const PROTOCOL: Protocol = Protocol::Mqtt;
}
impl ProtocolKind for CiraP {
    const PROTOCOL: Protocol = Protocol::Cira;
}

/// `[dataplane.https]`, `[dataplane.mqtt]`, `[dataplane.cira]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default, bound = "P: ProtocolKind")]
pub(crate) struct ListenerSection<P: ProtocolKind> {
    /// Addresses to listen on. Default `["0.0.0.0:<port>"]` (8443, 8883, 4433). `[]` disables
    /// the port.
    pub(crate) listen: Vec<SocketAddr>,
    /// Stage limits in Apache `RequestReadTimeout` syntax, e.g.
    /// `handshake=10 header=20-40,MinRate=500 body=20,MinRate=500`.
    pub(crate) request_read_timeout: Stages<P>,
    /// Longest a pending write may make no progress, in seconds. Default 30.
    pub(crate) write_stall_secs: NonZeroU64,
    /// Certificate chain (PEM). Default `<secrets_dir>/certs/<protocol>.pem`.
    pub(crate) cert: Option<PathBuf>,
    /// Private key (PEM). Default `<secrets_dir>/certs/<protocol>.key`.
    pub(crate) key: Option<PathBuf>,
}

impl<P: ProtocolKind> ListenerSection<P> {
    /// The typed listener, or `None` when `listen = []` disables the port.
    fn listener(&self, layout: &Layout) -> Option<ListenerConfig> {
        if self.listen.is_empty() {
            return None;
        }
        Some(self.listener_on(layout, self.listen.clone()))
    }

    /// The typed listener on `addrs`.
    fn listener_on(&self, layout: &Layout, addrs: Vec<SocketAddr>) -> ListenerConfig {
        let service = match P::PROTOCOL {
            Protocol::Https => rampart_ca::Service::Https,
            Protocol::Mqtt => rampart_ca::Service::Mqtt,
            Protocol::Cira => rampart_ca::Service::Cira,
        };
        ListenerConfig {
            protocol: P::PROTOCOL,
            addrs,
            cert: CertPaths {
                cert: self
                    .cert
                    .clone()
                    .unwrap_or_else(|| layout.service_cert(service)),
                key: self
                    .key
                    .clone()
                    .unwrap_or_else(|| layout.service_key(service)),
            },
            stages: self.request_read_timeout.plan.clone(),
            write_stall: Duration::from_secs(self.write_stall_secs.get()),
            plaintext: false,
        }
    }
}

impl<P: ProtocolKind> Default for ListenerSection<P> {
    fn default() -> Self {
        Self {
            listen: vec![SocketAddr::from((
                Ipv4Addr::UNSPECIFIED,
                P::PROTOCOL.default_port(),
            ))],
            request_read_timeout: Stages::default(),
            write_stall_secs: NonZeroU64::new(30).unwrap_or(NonZeroU64::MIN),
            cert: None,
            key: None,
        }
    }
}

/// A stage plan validated against the protocol's stages while deserializing, so errors carry
/// the key path.
pub(crate) struct Stages<P> {
    /// The plan.
    pub(crate) plan: StagePlan,
    _protocol: PhantomData<P>,
}

impl<P: ProtocolKind> Default for Stages<P> {
    fn default() -> Self {
        Self {
            plan: P::PROTOCOL.default_plan(),
            _protocol: PhantomData,
        }
    }
}

impl<P> fmt::Debug for Stages<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.plan)
    }
}

impl<'de, P: ProtocolKind> Deserialize<'de> for Stages<P> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let specs = P::PROTOCOL.stage_specs();
        // Stages not mentioned keep the protocol's defaults.
        let plan = StagePlan::parse_over(&s, specs, P::PROTOCOL.default_plan()).map_err(|e| {
            let names: Vec<&str> = specs.iter().map(|s| s.name).collect();
            serde::de::Error::custom(format!("{e} (stages: {})", names.join(", ")))
        })?;
        Ok(Self {
            plan,
            _protocol: PhantomData,
        })
    }
}

impl Config {
    /// Reads and validates `path`, or returns the embedded defaults when `path` is `None`.
    pub(crate) fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            key: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, &file)
    }

    /// Parses TOML text; `file` names it in errors.
    pub(crate) fn parse(text: &str, file: &str) -> Result<Self, ConfigError> {
        let de = toml::Deserializer::parse(text).map_err(|e| ConfigError {
            file: file.to_owned(),
            key: String::new(),
            message: e.to_string(),
        })?;
        let config: Self = serde_path_to_error::deserialize(de).map_err(|e| ConfigError {
            file: file.to_owned(),
            key: e.path().to_string(),
            message: e.inner().message().to_owned(),
        })?;
        config.validate(file)?;
        Ok(config)
    }

    fn validate(&self, file: &str) -> Result<(), ConfigError> {
        let err = |key: &str, message: &str| ConfigError {
            file: file.to_owned(),
            key: key.to_owned(),
            message: message.to_owned(),
        };
        if self.data_dir.as_os_str().is_empty() {
            return Err(err("data_dir", "must not be empty"));
        }
        for (name, cert, key) in [
            (
                "https",
                &self.dataplane.https.cert,
                &self.dataplane.https.key,
            ),
            ("mqtt", &self.dataplane.mqtt.cert, &self.dataplane.mqtt.key),
            ("cira", &self.dataplane.cira.cert, &self.dataplane.cira.key),
        ] {
            if cert.is_some() != key.is_some() {
                return Err(err(
                    &format!("dataplane.{name}.cert"),
                    "set both `cert` and `key`, or neither",
                ));
            }
        }
        if self
            .dataplane
            .metrics_listen
            .is_some_and(|a| !a.ip().is_loopback())
        {
            return Err(err(
                "dataplane.metrics_listen",
                "the metrics endpoint is internal: use a loopback address",
            ));
        }
        let b = &self.dataplane.broker;
        if !b.danger_plain_listen_public && b.plain_listen.iter().any(|a| !a.ip().is_loopback()) {
            return Err(err(
                "dataplane.broker.plain_listen",
                "plain-text MQTT is allowed on loopback addresses only (set \
                 `danger_plain_listen_public = true` to expose credentials in clear text)",
            ));
        }
        if let Some(e) = &b.external_auth
            && let Err((key, message)) = e.validate()
        {
            return Err(err(
                &format!("dataplane.broker.external_auth.{key}"),
                &message,
            ));
        }
        if let Err((key, message)) = self.dataplane.amt.validate() {
            return Err(err(&format!("dataplane.amt.{key}"), &message));
        }
        if let Err((key, message)) = self.dataplane.front.validate() {
            return Err(err(&format!("dataplane.front.{key}"), &message));
        }
        if b.max_packet_size.get() > 268_435_455 + 5 {
            return Err(err(
                "dataplane.broker.max_packet_size",
                "MQTT packets are at most 268435460 bytes",
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(err("log.level", "not a valid filter directive"));
        }
        Ok(())
    }

    /// The secrets directory.
    pub(crate) fn secrets_dir(&self) -> PathBuf {
        self.secrets_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("secrets"))
    }

    /// The control plane's Unix socket.
    pub(crate) fn control_socket(&self) -> PathBuf {
        self.controlplane
            .socket
            .clone()
            .unwrap_or_else(|| self.data_dir.join("run").join("control.sock"))
    }

    /// The data plane's CIRA channel service (the control plane opens APF channels through
    /// it): `<data_dir>/run/channels.sock`.
    pub(crate) fn channel_socket(&self) -> PathBuf {
        self.data_dir.join("run").join("channels.sock")
    }

    /// The control plane's relay socket (the data plane asks it about redirection sessions):
    /// `<data_dir>/run/relay.sock`.
    pub(crate) fn relay_socket(&self) -> PathBuf {
        self.data_dir.join("run").join("relay.sock")
    }

    /// The admin socket the CLI talks to.
    pub(crate) fn admin_socket(&self) -> PathBuf {
        self.controlplane
            .admin_socket
            .clone()
            .unwrap_or_else(|| self.data_dir.join("run").join("admin.sock"))
    }

    /// The control plane's typed configuration.
    pub(crate) fn controlplane(&self) -> rampart_controlplane::ControlplaneConfig {
        let c = &self.controlplane;
        let run = self.data_dir.join("run");
        rampart_controlplane::ControlplaneConfig {
            secrets_dir: self.secrets_dir(),
            socket: self.control_socket(),
            api_socket: c.api_socket.clone().unwrap_or_else(|| run.join("api.sock")),
            admin_socket: self.admin_socket(),
            channel_socket: self.channel_socket(),
            relay_socket: self.relay_socket(),
            database_url: c.database_url.clone().unwrap_or_else(|| {
                format!("sqlite://{}", self.data_dir.join("rampart.db").display())
            }),
            database_tls_ca: c.database_tls_ca.clone(),
            database_pool_size: c.database_pool_size.get(),
            audit: rampart_controlplane::AuditSink::parse(
                c.audit_log
                    .as_deref()
                    .unwrap_or(&self.data_dir.join("audit.log").display().to_string()),
            ),
            session_ttl: Duration::from_secs(c.session_ttl_secs.get()),
            vault: c
                .vault
                .as_ref()
                .map(|v| rampart_controlplane::VaultSettings {
                    address: v.address.clone(),
                    secrets_path: v.secrets_path.clone(),
                    token_file: v.token_file.clone(),
                    ca_file: v.ca_file.clone(),
                    namespace: v.namespace.clone(),
                }),
            limits: rampart_policy::snapshot::Limits {
                max_auth_failures_per_minute: c.limits.max_auth_failures_per_minute.get(),
                max_connections_per_account: c.limits.max_connections_per_account.get(),
                max_subscriptions_per_client: c.limits.max_subscriptions_per_client.get(),
                max_message_bytes: c.limits.max_message_bytes.get(),
            },
        }
    }

    /// The data plane's typed configuration. It names only the listeners' own certificates and
    /// keys: never the CA key or the database password.
    pub(crate) fn dataplane(&self, with_control_link: bool) -> DataplaneConfig {
        let d = &self.dataplane;
        let layout = Layout::new(self.secrets_dir());
        let plain_mqtt = (!d.broker.plain_listen.is_empty()).then(|| {
            let mut l = d.mqtt.listener_on(&layout, d.broker.plain_listen.clone());
            l.plaintext = true;
            l
        });
        let listeners = [
            d.https.listener(&layout),
            d.mqtt.listener(&layout),
            plain_mqtt,
            d.cira.listener(&layout),
        ]
        .into_iter()
        .flatten()
        .collect();
        DataplaneConfig {
            rt: RtConfig {
                cores: d.cores.unwrap_or_else(rampart_rt::available_cores),
                driver: match d.driver {
                    DriverSetting::Auto => DriverChoice::Auto,
                    DriverSetting::IoUring => DriverChoice::IoUring,
                    DriverSetting::Poll => DriverChoice::Poll,
                },
                pin: d.pin_cores,
                mailbox_capacity: 64,
            },
            listeners,
            max_connections_per_core: d.max_connections_per_core.get(),
            listen_backlog: i32::from(d.listen_backlog.get()),
            drain_timeout: Duration::from_secs(d.drain_timeout_secs.get()),
            control_socket: with_control_link.then(|| self.control_socket()),
            channel_socket: Some(self.channel_socket()),
            broker: d.broker.config(&self.data_dir),
            front: d.front.config(
                &self.data_dir,
                self.controlplane().api_socket,
                d.mqtt
                    .request_read_timeout
                    .plan
                    .get("connect")
                    .unwrap_or(StageLimit::fixed(Duration::from_secs(10))),
            ),
            cira: d.amt.config(),
            metrics_listen: d.metrics_listen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::parse(text, "t.toml").unwrap_err().to_string()
    }

    #[test]
    fn empty_file_is_the_embedded_defaults() {
        let c = Config::parse("", "t.toml").unwrap();
        let d = c.dataplane(false);
        let ports: Vec<u16> = d.listeners.iter().map(|l| l.addrs[0].port()).collect();
        assert_eq!(ports, vec![8443, 8883, 4433]);
        assert_eq!(c.secrets_dir(), PathBuf::from("./var/secrets"));
        assert_eq!(c.control_socket(), PathBuf::from("./var/run/control.sock"));
        assert_eq!(
            d.listeners[0].stages.to_string(),
            "handshake=10 header=20-40,MinRate=500 body=20,MinRate=500"
        );
        assert!(d.listeners[0].cert.key.ends_with("secrets/certs/https.key"));
    }

    #[test]
    fn the_documented_example_is_exactly_the_defaults() {
        let example = include_str!("../../../deploy/rampart.toml");
        let parsed = Config::parse(example, "deploy/rampart.toml").unwrap();
        let defaults = Config::default();
        assert_eq!(
            format!("{:?}", parsed.dataplane(true)),
            format!("{:?}", defaults.dataplane(true))
        );
        assert_eq!(format!("{parsed:?}"), format!("{defaults:?}"));
    }

    #[test]
    fn partial_stage_plans_keep_protocol_defaults() {
        let c = Config::parse(
            "[dataplane.https]\nrequest_read_timeout = \"handshake=5\"\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(
            c.dataplane.https.request_read_timeout.plan.to_string(),
            "handshake=5 header=20-40,MinRate=500 body=20,MinRate=500"
        );
    }

    #[test]
    fn errors_name_the_key() {
        let e = err("[dataplane]\ncorez = 2\n");
        assert!(
            e.contains("dataplane") && e.contains("unknown field `corez`"),
            "{e}"
        );
        let e = err("[dataplane.https]\nrequest_read_timeout = \"handshake=0\"\n");
        assert!(
            e.contains("dataplane.https.request_read_timeout") && e.contains("bounded"),
            "{e}"
        );
        let e = err("[dataplane.mqtt]\nrequest_read_timeout = \"header=5\"\n");
        assert!(
            e.contains("dataplane.mqtt.request_read_timeout") && e.contains("unknown stage"),
            "{e}"
        );
        let e = err("[dataplane]\ndriver = \"uring\"\n");
        assert!(e.contains("dataplane.driver"), "{e}");
        let e = err("[dataplane]\ncores = 0\n");
        assert!(e.contains("dataplane.cores"), "{e}");
        let e = err("[dataplane.cira]\nlisten = [\"nope\"]\n");
        assert!(e.contains("dataplane.cira.listen"), "{e}");
        let e = err("[dataplane.https]\ncert = \"/x.pem\"\n");
        assert!(e.contains("dataplane.https.cert"), "{e}");
        let e = err("[log]\nformat = \"xml\"\n");
        assert!(e.contains("log.format"), "{e}");
        let e = err("data_dir = ");
        assert!(e.contains("t.toml"), "{e}");
    }
}
