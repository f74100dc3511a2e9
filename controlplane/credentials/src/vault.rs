//! A small synchronous HashiCorp Vault KV v2 client for per-device AMT passwords.
//!
//! It follows Intel MPS's layout (`open-amt-cloud-toolkit/mps` `src/secrets/vault`): the base
//! URL is `${address}/v1/${secrets_path}` with `secrets_path = "secret/data/"` by default, each
//! device's secret lives at `devices/<guid>` with the field `AMT_PASSWORD`, and a permanent
//! delete rewrites `/data/` to `/metadata/`. The HTTP API is documented at
//! <https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2>.
//!
//! - Authentication is the `X-Vault-Token` header, read once from a 0600 file or an environment
//!   variable; Vault Enterprise namespaces go in `X-Vault-Namespace`.
//! - TLS is rustls with the ring provider (TLS 1.2 and 1.3 only), verified against the Mozilla
//!   roots or, if configured, only the CAs in a PEM file. Plain `http://` is refused unless the
//!   server is on a loopback address (a dev server on the same host).
//! - No proxies from the environment and no redirects are followed: the token is only ever sent
//!   to the configured address.
//! - Errors carry the HTTP status and Vault's `errors` array, never the token or a secret.
//!
//! Every call blocks for up to the configured timeouts: use it from control-plane threads.

use std::fmt;
use std::fs::File;
use std::io::{self, Read as _};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use serde::{Deserialize, Serialize};
use tracing::debug;
use ureq::http::HeaderValue;
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
use zeroize::Zeroizing;

use crate::guid::{DeviceGuid, InvalidGuid};

/// The KV v2 secrets path MPS uses by default: mount `secret`, no prefix.
pub const DEFAULT_SECRETS_PATH: &str = "secret/data/";
/// The field holding a device's AMT password, as MPS names it.
pub const AMT_PASSWORD_FIELD: &str = "AMT_PASSWORD";
/// Default time to establish a TCP (and TLS) connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time for a whole request, connection included.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Largest response body read from Vault.
const MAX_RESPONSE_BYTES: u64 = 1 << 20;
/// Largest token or CA file read.
const MAX_FILE_BYTES: u64 = 1 << 20;
/// At most this many of Vault's error messages, each at most this long, go into an error.
const MAX_ERRORS: usize = 8;
const MAX_ERROR_CHARS: usize = 256;

// === config ===

/// Where the client finds its Vault token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaultTokenSource {
    /// A file holding the token (surrounding whitespace ignored). It must not be accessible
    /// by group or others (mode 0600 or stricter).
    File(PathBuf),
    /// The name of an environment variable holding the token (read once, at construction).
    Env(String),
}

/// How to reach Vault. Build with [`VaultConfig::new`] and adjust the fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultConfig {
    /// The server's base URL, e.g. `https://vault.example:8200`. Scheme and host (and port),
    /// nothing else; a trailing `/` is ignored. `http://` is accepted only for loopback
    /// addresses (`127.0.0.0/8`, `::1`, `localhost`).
    pub address: String,
    /// The KV v2 path to the device secrets, MPS-style: the mount, `data/`, and an optional
    /// prefix, e.g. `secret/data/` (the default, [`DEFAULT_SECRETS_PATH`]) or
    /// `kv/data/rampart/`. Devices go under `<secrets_path>devices/<guid>`. A mount whose own
    /// path contains a `data` segment is not supported.
    pub secrets_path: String,
    /// Where the token comes from.
    pub token: VaultTokenSource,
    /// Vault Enterprise namespace sent as `X-Vault-Namespace` (none by default).
    pub namespace: Option<String>,
    /// PEM file with the CA certificate(s) that signed Vault's certificate. If set, only these
    /// are trusted; otherwise the Mozilla root store (webpki-roots) is used.
    pub ca_file: Option<PathBuf>,
    /// Time to connect (TCP and TLS handshake). Default [`DEFAULT_CONNECT_TIMEOUT`].
    pub connect_timeout: Duration,
    /// Time for a whole request. Default [`DEFAULT_REQUEST_TIMEOUT`].
    pub request_timeout: Duration,
}

impl VaultConfig {
    /// A configuration with the defaults: MPS secrets path, no namespace, Mozilla roots, 5 s to
    /// connect and 15 s per request.
    pub fn new(address: impl Into<String>, token: VaultTokenSource) -> VaultConfig {
        VaultConfig {
            address: address.into(),
            secrets_path: DEFAULT_SECRETS_PATH.to_owned(),
            token,
            namespace: None,
            ca_file: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

// === errors ===

/// Everything that can go wrong talking to Vault. Messages never contain the token or a
/// secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The configured address is not `scheme://host[:port]`.
    #[error("invalid Vault address: {0}")]
    InvalidAddress(&'static str),
    /// `http://` to a host that is not a loopback address.
    #[error(
        "refusing plain http:// to a Vault server that is not on a loopback address; use https://"
    )]
    InsecureAddress,
    /// The secrets path is not `<mount>/data/[<prefix>/]`.
    #[error("invalid Vault secrets path {path:?}: {reason}")]
    InvalidSecretsPath {
        /// The configured path.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The namespace contains characters that cannot go into a header or path.
    #[error("invalid Vault namespace: {0}")]
    InvalidNamespace(&'static str),
    /// The device GUID is not canonical; no request was made.
    #[error(transparent)]
    InvalidGuid(#[from] InvalidGuid),
    /// The token file could not be read.
    #[error("cannot read the Vault token file {path}: {source}")]
    TokenFile {
        /// The token file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The token file is readable by group or others.
    #[error(
        "the Vault token file {path} has mode {mode:04o}; group and others must have no access (0600)"
    )]
    TokenFileMode {
        /// The token file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The environment variable named for the token is not set.
    #[error("the environment variable {name} (the Vault token) is not set")]
    TokenEnvMissing {
        /// The variable's name.
        name: String,
    },
    /// The token is empty, not text, too long, or has characters a header cannot carry.
    #[error("the Vault token {0}")]
    InvalidToken(&'static str),
    /// The CA file could not be read.
    #[error("cannot read the Vault CA file {path}: {source}")]
    CaFileRead {
        /// The CA file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The CA file holds no usable certificate.
    #[error("the Vault CA file {path} {reason}")]
    CaFile {
        /// The CA file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The request did not complete: connection refused, DNS, TLS, timeout, ...
    #[error("Vault request {method} {path} failed: {source}")]
    Transport {
        /// HTTP method.
        method: &'static str,
        /// URL path (no host, no secrets).
        path: String,
        /// What went wrong.
        #[source]
        source: Box<ureq::Error>,
    },
    /// Vault answered with an unexpected HTTP status.
    #[error("Vault answered {method} {path} with HTTP {status}{}", error_list(.errors))]
    Status {
        /// HTTP method.
        method: &'static str,
        /// URL path.
        path: String,
        /// HTTP status code.
        status: u16,
        /// Vault's `errors` array (possibly empty; truncated to a few short messages).
        errors: Vec<String>,
    },
    /// Vault's answer did not have the expected shape.
    #[error("Vault's answer to {method} {path} (HTTP {status}) {reason}")]
    Response {
        /// HTTP method.
        method: &'static str,
        /// URL path.
        path: String,
        /// HTTP status code.
        status: u16,
        /// What is wrong with it (never the content).
        reason: &'static str,
    },
}

fn error_list(errors: &[String]) -> String {
    if errors.is_empty() {
        String::new()
    } else {
        format!(": {}", errors.join("; "))
    }
}

/// What `GET /v1/sys/health` reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultHealth {
    /// The HTTP status: 200 active, 429 standby, 472 DR secondary, 473 performance standby,
    /// 501 not initialised, 503 sealed.
    pub status: u16,
    /// Whether Vault is initialised.
    pub initialized: bool,
    /// Whether Vault is sealed.
    pub sealed: bool,
    /// Whether this node is a standby.
    pub standby: bool,
    /// Vault's version string, if reported.
    pub version: Option<String>,
}

impl VaultHealth {
    /// Whether Vault can serve secrets: initialised, unsealed, and active or a standby that
    /// forwards requests (200, 429, 473).
    pub fn is_ok(&self) -> bool {
        self.initialized && !self.sealed && matches!(self.status, 200 | 429 | 473)
    }
}

// === impl VaultClient ===

/// The Vault client. Cheap to share by reference; `Debug` leaves the token out.
pub struct VaultClient {
    agent: ureq::Agent,
    /// `scheme://host[:port]`, no trailing slash.
    address: String,
    /// `/v1/<mount>/data/<prefix>devices/`.
    data_path: String,
    /// `/v1/<mount>/metadata/<prefix>devices/`.
    metadata_path: String,
    token: Zeroizing<String>,
    namespace: Option<String>,
}

impl fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultClient")
            .field("address", &self.address)
            .field("data_path", &self.data_path)
            .field("namespace", &self.namespace)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// HTTP methods used.
#[derive(Debug, Clone, Copy)]
enum Method {
    Get,
    Post,
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<String>,
}

#[derive(Deserialize)]
struct ReadBody {
    data: Option<ReadData>,
}

#[derive(Deserialize)]
struct ReadData {
    data: Option<DeviceSecret>,
}

/// Other fields in the secret are skipped, never copied.
#[derive(Deserialize)]
struct DeviceSecret {
    #[serde(rename = "AMT_PASSWORD")]
    amt_password: Option<String>,
}

#[derive(Serialize)]
struct WriteBody<'a> {
    data: WriteData<'a>,
}

#[derive(Serialize)]
struct WriteData<'a> {
    #[serde(rename = "AMT_PASSWORD")]
    amt_password: &'a str,
}

#[derive(Deserialize)]
struct HealthBody {
    initialized: bool,
    sealed: bool,
    #[serde(default)]
    standby: bool,
    #[serde(default)]
    version: Option<String>,
}

impl VaultClient {
    /// Validates the configuration, reads the token and CA file, and builds the HTTP agent.
    /// Makes no request (see [`VaultClient::health`]).
    pub fn new(config: &VaultConfig) -> Result<VaultClient, VaultError> {
        let token = load_token(&config.token)?;
        VaultClient::with_token(config, token)
    }

    /// Like [`VaultClient::new`] with a token obtained elsewhere (e.g. an AppRole login);
    /// `config.token` is ignored.
    pub fn with_token(
        config: &VaultConfig,
        token: Zeroizing<String>,
    ) -> Result<VaultClient, VaultError> {
        let token = validate_token(token)?;
        let address = check_address(&config.address)?;
        let (mount, prefix) = split_secrets_path(&config.secrets_path)?;
        let namespace = match &config.namespace {
            Some(ns) => Some(check_namespace(ns)?),
            None => None,
        };
        let roots = match &config.ca_file {
            Some(path) => load_ca(path)?,
            None => RootCerts::WebPki,
        };
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .root_certs(roots)
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .proxy(None)
            .max_redirects(0)
            .user_agent("rampart-controlplane")
            .timeout_connect(Some(config.connect_timeout))
            .timeout_global(Some(config.request_timeout))
            .build()
            .new_agent();
        Ok(VaultClient {
            agent,
            data_path: format!("/v1/{mount}/data/{prefix}devices/"),
            metadata_path: format!("/v1/{mount}/metadata/{prefix}devices/"),
            address,
            token,
            namespace,
        })
    }

    /// Reads a device's AMT password: `GET <secrets_path>devices/<guid>`, field
    /// `AMT_PASSWORD`. `None` if the secret does not exist (404, including a deleted latest
    /// version) or has no such field.
    pub fn get_amt_password(&self, guid: &str) -> Result<Option<Zeroizing<String>>, VaultError> {
        let guid = DeviceGuid::parse(guid)?;
        let path = format!("{}{guid}", self.data_path);
        let (status, body) = self.send(Method::Get, &path, None, true)?;
        match status {
            200 => {
                let parsed: ReadBody = serde_json::from_slice(&body).map_err(|_| {
                    response_error(
                        Method::Get,
                        &path,
                        status,
                        "is not a KV v2 secret with a string AMT_PASSWORD",
                    )
                })?;
                Ok(parsed
                    .data
                    .and_then(|d| d.data)
                    .and_then(|s| s.amt_password)
                    .map(Zeroizing::new))
            }
            404 => Ok(None),
            _ => Err(status_error(Method::Get, &path, status, &body)),
        }
    }

    /// Stores a device's AMT password as a new version: `POST <secrets_path>devices/<guid>`
    /// with `{"data":{"AMT_PASSWORD":"..."}}`. Like MPS, this replaces every field of that
    /// secret.
    pub fn put_amt_password(&self, guid: &str, password: &str) -> Result<(), VaultError> {
        let guid = DeviceGuid::parse(guid)?;
        let path = format!("{}{guid}", self.data_path);
        // Sized for the worst case (every character escaped as \uXXXX) so the buffer holding
        // the password is never reallocated and left behind unwiped.
        let mut body = Zeroizing::new(Vec::with_capacity(64 + 6 * password.len()));
        serde_json::to_writer(
            &mut *body,
            &WriteBody {
                data: WriteData {
                    amt_password: password,
                },
            },
        )
        .map_err(|_| response_error(Method::Post, &path, 0, "could not be encoded"))?;
        let (status, response) = self.send(Method::Post, &path, Some(&body), true)?;
        match status {
            200 | 204 => Ok(()),
            _ => Err(status_error(Method::Post, &path, status, &response)),
        }
    }

    /// Permanently deletes a device's secret, all versions and metadata:
    /// `DELETE <mount>/metadata/<prefix>devices/<guid>` (MPS rewrites `/data/` to
    /// `/metadata/`). Deleting a secret that does not exist succeeds.
    pub fn delete_device(&self, guid: &str) -> Result<(), VaultError> {
        let guid = DeviceGuid::parse(guid)?;
        let path = format!("{}{guid}", self.metadata_path);
        let (status, response) = self.send(Method::Delete, &path, None, true)?;
        match status {
            200 | 204 | 404 => Ok(()),
            _ => Err(status_error(Method::Delete, &path, status, &response)),
        }
    }

    /// Asks `GET /v1/sys/health`. Sealed (503) and uninitialised (501) servers are reported,
    /// not errors: check [`VaultHealth::is_ok`]. The endpoint is unauthenticated and
    /// root-namespace only, so neither the token nor the namespace is sent.
    pub fn health(&self) -> Result<VaultHealth, VaultError> {
        let path = "/v1/sys/health";
        let (status, body) = self.send(Method::Get, path, None, false)?;
        if !matches!(status, 200 | 429 | 472 | 473 | 501 | 503) {
            return Err(status_error(Method::Get, path, status, &body));
        }
        let parsed: HealthBody = serde_json::from_slice(&body)
            .map_err(|_| response_error(Method::Get, path, status, "is not a sys/health status"))?;
        Ok(VaultHealth {
            status,
            initialized: parsed.initialized,
            sealed: parsed.sealed,
            standby: parsed.standby,
            version: parsed.version,
        })
    }

    /// Sends one request; returns the status and the body (at most 1 MiB, wiped on drop).
    fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        authenticated: bool,
    ) -> Result<(u16, Zeroizing<Vec<u8>>), VaultError> {
        debug!(message = "Vault request.", method = method.as_str(), path);
        let url = format!("{}{path}", self.address);
        let transport = |source| VaultError::Transport {
            method: method.as_str(),
            path: path.to_owned(),
            source: Box::new(source),
        };
        let mut headers: Vec<(&'static str, HeaderValue)> = Vec::with_capacity(3);
        if authenticated {
            let mut token = HeaderValue::from_str(&self.token)
                .map_err(|_| VaultError::InvalidToken("has characters a header cannot carry"))?;
            token.set_sensitive(true);
            headers.push(("X-Vault-Token", token));
            if let Some(ns) = &self.namespace {
                let value = HeaderValue::from_str(ns)
                    .map_err(|_| VaultError::InvalidNamespace("not a header value"))?;
                headers.push(("X-Vault-Namespace", value));
            }
        }
        let result = match (method, body) {
            (Method::Post, body) => {
                let mut request = self.agent.post(&url).content_type("application/json");
                for (name, value) in headers {
                    request = request.header(name, value);
                }
                request.send(body.unwrap_or_default())
            }
            (Method::Get, _) => {
                let mut request = self.agent.get(&url);
                for (name, value) in headers {
                    request = request.header(name, value);
                }
                request.call()
            }
            (Method::Delete, _) => {
                let mut request = self.agent.delete(&url);
                for (name, value) in headers {
                    request = request.header(name, value);
                }
                request.call()
            }
        };
        let mut response = result.map_err(transport)?;
        let status = response.status().as_u16();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .map_err(transport)?;
        Ok((status, Zeroizing::new(bytes)))
    }
}

fn status_error(method: Method, path: &str, status: u16, body: &[u8]) -> VaultError {
    let errors = serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.errors)
        .unwrap_or_default()
        .into_iter()
        .take(MAX_ERRORS)
        .map(|e| {
            e.chars()
                .filter(|c| !c.is_control())
                .take(MAX_ERROR_CHARS)
                .collect()
        })
        .collect();
    VaultError::Status {
        method: method.as_str(),
        path: path.to_owned(),
        status,
        errors,
    }
}

fn response_error(method: Method, path: &str, status: u16, reason: &'static str) -> VaultError {
    VaultError::Response {
        method: method.as_str(),
        path: path.to_owned(),
        status,
        reason,
    }
}

// === configuration checks ===

/// Checks `scheme://host[:port][/]` and returns it without the trailing slash.
fn check_address(address: &str) -> Result<String, VaultError> {
    let address = address.trim();
    let (scheme, rest) = address
        .split_once("://")
        .ok_or(VaultError::InvalidAddress("expected https://host[:port]"))?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() {
        return Err(VaultError::InvalidAddress("no host"));
    }
    if authority.contains(['/', '?', '#']) {
        return Err(VaultError::InvalidAddress(
            "must not contain a path, query or fragment (the secrets path is configured separately)",
        ));
    }
    if authority.contains('@') {
        return Err(VaultError::InvalidAddress(
            "must not contain user information",
        ));
    }
    if !authority
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b))
    {
        return Err(VaultError::InvalidAddress(
            "the host has invalid characters",
        ));
    }
    let host = host_of(authority)?;
    match scheme.to_ascii_lowercase().as_str() {
        "https" => {}
        "http" if is_loopback(host) => {}
        "http" => return Err(VaultError::InsecureAddress),
        _ => return Err(VaultError::InvalidAddress("the scheme must be https")),
    }
    Ok(format!("{}://{authority}", scheme.to_ascii_lowercase()))
}

/// The host of `host[:port]` or `[v6][:port]`.
fn host_of(authority: &str) -> Result<&str, VaultError> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or(VaultError::InvalidAddress("unclosed [ in an IPv6 address"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or(VaultError::InvalidAddress("junk after an IPv6 address"))?,
            ),
        };
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(VaultError::InvalidAddress("invalid IPv6 address"));
        }
        (host, port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(VaultError::InvalidAddress("no host"));
    }
    if let Some(port) = port
        && port.parse::<u16>().map_or(true, |p| p == 0)
    {
        return Err(VaultError::InvalidAddress("invalid port"));
    }
    Ok(host)
}

fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Splits an MPS-style secrets path at its first `data` segment: `(mount, prefix)` where the
/// prefix is empty or ends with `/`.
fn split_secrets_path(path: &str) -> Result<(String, String), VaultError> {
    let invalid = |reason| VaultError::InvalidSecretsPath {
        path: path.to_owned(),
        reason,
    };
    let trimmed = path.trim_matches('/');
    let segments: Vec<&str> = trimmed.split('/').collect();
    for segment in &segments {
        if segment.is_empty() {
            return Err(invalid("has an empty segment"));
        }
        if *segment == "." || *segment == ".." {
            return Err(invalid("has a . or .. segment"));
        }
        if !segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(invalid("segments may hold only letters, digits, - _ ."));
        }
    }
    let at = segments
        .iter()
        .position(|s| *s == "data")
        .ok_or_else(|| invalid("must be <mount>/data/[<prefix>/], e.g. secret/data/"))?;
    if at == 0 {
        return Err(invalid("has no mount before data/"));
    }
    let mount = segments[..at].join("/");
    let prefix: String = segments[at + 1..].iter().map(|s| format!("{s}/")).collect();
    Ok((mount, prefix))
}

fn check_namespace(namespace: &str) -> Result<String, VaultError> {
    let ns = namespace.trim_matches('/');
    if ns.is_empty() || ns.len() > 256 {
        return Err(VaultError::InvalidNamespace(
            "must have 1 to 256 characters",
        ));
    }
    if !ns
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
    {
        return Err(VaultError::InvalidNamespace(
            "may hold only letters, digits, - _ . /",
        ));
    }
    Ok(ns.to_owned())
}

fn load_token(source: &VaultTokenSource) -> Result<Zeroizing<String>, VaultError> {
    match source {
        VaultTokenSource::File(path) => {
            let bytes = read_token_file(path)?;
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| VaultError::InvalidToken("is not UTF-8 text"))?;
            Ok(Zeroizing::new(text.trim().to_owned()))
        }
        VaultTokenSource::Env(name) => match std::env::var(name) {
            Ok(value) => {
                let value = Zeroizing::new(value);
                Ok(Zeroizing::new(value.trim().to_owned()))
            }
            Err(std::env::VarError::NotPresent) => {
                Err(VaultError::TokenEnvMissing { name: name.clone() })
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(VaultError::InvalidToken("is not UTF-8 text"))
            }
        },
    }
}

fn validate_token(token: Zeroizing<String>) -> Result<Zeroizing<String>, VaultError> {
    if token.is_empty() {
        return Err(VaultError::InvalidToken("is empty"));
    }
    if token.len() > 4096 {
        return Err(VaultError::InvalidToken("is longer than 4096 bytes"));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(VaultError::InvalidToken(
            "may hold only visible ASCII characters",
        ));
    }
    Ok(token)
}

/// Reads the token file, refusing it if group or others have any access. The mode is checked
/// on the opened file, so a swapped path cannot slip past the check.
fn read_token_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let io_err = |source| VaultError::TokenFile {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    if !meta.is_file() {
        return Err(io_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(VaultError::TokenFileMode {
            path: path.to_owned(),
            mode,
        });
    }
    let mut buf = Zeroizing::new(Vec::with_capacity(
        usize::try_from(meta.len().min(MAX_FILE_BYTES)).unwrap_or(0) + 1,
    ));
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(io_err)?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(VaultError::InvalidToken("file is larger than 1 MiB"));
    }
    Ok(buf)
}

fn load_ca(path: &Path) -> Result<RootCerts, VaultError> {
    let read_err = |source| VaultError::CaFileRead {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(read_err)?;
    let mut pem = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut pem)
        .map_err(read_err)?;
    let ca_err = |reason| VaultError::CaFile {
        path: path.to_owned(),
        reason,
    };
    if pem.len() as u64 > MAX_FILE_BYTES {
        return Err(ca_err("is larger than 1 MiB"));
    }
    let mut certs = Vec::new();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|_| ca_err("is not valid PEM"))?;
        certs.push(Certificate::from_der(cert.as_ref()).to_owned());
    }
    if certs.is_empty() {
        return Err(ca_err("holds no CERTIFICATE block"));
    }
    Ok(RootCerts::new_with_certs(&certs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        for (given, normalised) in [
            ("https://vault.example:8200", "https://vault.example:8200"),
            ("https://vault.example:8200/", "https://vault.example:8200"),
            ("HTTPS://vault.example", "https://vault.example"),
            ("http://127.0.0.1:8200", "http://127.0.0.1:8200"),
            ("http://127.8.9.10:8200", "http://127.8.9.10:8200"),
            ("http://localhost:8200", "http://localhost:8200"),
            ("http://[::1]:8200", "http://[::1]:8200"),
            ("https://[2001:db8::1]:8200", "https://[2001:db8::1]:8200"),
        ] {
            assert_eq!(check_address(given).unwrap(), normalised, "{given}");
        }
        for insecure in [
            "http://vault.example:8200",
            "http://10.0.0.1:8200",
            "http://[2001:db8::1]:8200",
            "http://localhost.evil.example",
            "http://127.0.0.1.nip.io",
        ] {
            assert!(
                matches!(check_address(insecure), Err(VaultError::InsecureAddress)),
                "{insecure}"
            );
        }
        for invalid in [
            "vault.example:8200",
            "ftp://vault.example",
            "https://",
            "https://vault.example/v1/secret",
            "https://user:pw@vault.example",
            "https://vault.example:99999",
            "https://vault.example:0",
            "https://vault.example:",
            "https://[::1",
            "https://[zz]:1",
            "https://vault example",
            "https://vault.example?x",
        ] {
            assert!(
                matches!(check_address(invalid), Err(VaultError::InvalidAddress(_))),
                "{invalid}"
            );
        }
        assert!(VaultError::InsecureAddress.to_string().contains("loopback"));
    }

    #[test]
    fn secrets_paths() {
        let split = |p| split_secrets_path(p).unwrap();
        assert_eq!(split("secret/data/"), ("secret".into(), String::new()));
        assert_eq!(split("/secret/data"), ("secret".into(), String::new()));
        assert_eq!(
            split("kv/data/rampart/edge/"),
            ("kv".into(), "rampart/edge/".into())
        );
        assert_eq!(split("team/kv/data/"), ("team/kv".into(), String::new()));
        for bad in [
            "",
            "secret/",
            "data/",
            "secret//data/",
            "secret/data/../x/",
            "se cret/data/",
            "secret/data/%2e%2e/",
        ] {
            assert!(
                matches!(
                    split_secrets_path(bad),
                    Err(VaultError::InvalidSecretsPath { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn namespaces_and_tokens() {
        assert_eq!(check_namespace("team-a/sub").unwrap(), "team-a/sub");
        assert_eq!(check_namespace("/admin/").unwrap(), "admin");
        assert!(check_namespace("").is_err());
        assert!(check_namespace("a\r\nX-Evil: 1").is_err());

        assert!(validate_token(Zeroizing::new("hvs.CAES".into())).is_ok());
        for bad in ["", "two words", "line\nbreak", "tökén"] {
            assert!(
                matches!(
                    validate_token(Zeroizing::new(bad.into())),
                    Err(VaultError::InvalidToken(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn health_is_ok_only_when_serving() {
        let health = |status, initialized, sealed| VaultHealth {
            status,
            initialized,
            sealed,
            standby: false,
            version: None,
        };
        assert!(health(200, true, false).is_ok());
        assert!(health(429, true, false).is_ok());
        assert!(!health(503, true, true).is_ok());
        assert!(!health(501, false, true).is_ok());
        assert!(!health(472, true, false).is_ok());
    }
}
