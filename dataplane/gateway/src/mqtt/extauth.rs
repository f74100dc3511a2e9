//! The optional external auth backend: mosquitto-go-auth's HTTP protocol, as SceneScape
//! configures it, so Rampart can replace Mosquitto in front of an existing auth server.
//!
//! - **User check** at CONNECT, for a username the policy snapshot does not know:
//!   `POST <getuser_uri>` with `username`, `password`, `clientid`.
//! - **ACL check**: `POST <aclcheck_uri>` with `username`, `clientid`, `topic`, `acc` (1 read,
//!   2 write, 3 read and write, 4 subscribe). Asked once per subscription (acc 4, the filter)
//!   and once per (client, topic) published to (acc 2), then cached; never per delivered
//!   message. A will is checked at CONNECT (acc 2).
//! - **Superuser check** (optional `superuser_uri`): a superuser passes every ACL check.
//! - Parameters as a form (`application/x-www-form-urlencoded`, SceneScape's choice) or JSON;
//!   the answer by status (2xx allows, anything else denies; SceneScape's choice), JSON
//!   (`{"ok": true}`) or text (`ok`).
//! - TLS to the auth server (ring, TLS 1.2+), verified against a configured CA file or the
//!   Mozilla roots; transport errors and 5xx answers are retried `retries` times; every call
//!   has a time limit.
//!
//! The HTTP calls run on a small pool of worker threads, never on a core: a core awaits the
//! answer like any other I/O, so a slow auth server delays only the connection that asked.
//! Answers are cached per core (allow and deny with their own TTLs); errors are not cached and
//! deny.

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_rt::channel;
use sha2::{Digest, Sha256};
use tracing::{info, warn};

/// How parameters are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamsMode {
    /// `application/x-www-form-urlencoded` (go-auth `http_params_mode form`).
    Form,
    /// A JSON object (go-auth's default).
    Json,
}

/// How an answer is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    /// 2xx allows, anything else denies (go-auth's default).
    Status,
    /// 2xx and a body `{"ok": true}`.
    Json,
    /// 2xx and the body `ok`.
    Text,
}

/// Settings of the external backend.
#[derive(Debug, Clone)]
pub struct ExternalAuthConfig {
    /// `https://host:port` (or `http://` on loopback).
    pub base_url: String,
    /// Path of the user check, e.g. `/api/v1/auth`.
    pub getuser_uri: String,
    /// Path of the ACL check, e.g. `/api/v1/aclcheck`.
    pub aclcheck_uri: String,
    /// Path of the superuser check, if any.
    pub superuser_uri: Option<String>,
    /// Parameter encoding.
    pub params: ParamsMode,
    /// Answer decoding.
    pub response: ResponseMode,
    /// CA certificates (PEM) that verify the auth server; the Mozilla roots if none.
    pub ca_file: Option<PathBuf>,
    /// Time limit of one HTTP call.
    pub timeout: Duration,
    /// Further tries after a transport error or a 5xx answer.
    pub retries: u32,
    /// How long an allow is cached.
    pub allow_ttl: Duration,
    /// How long a deny is cached.
    pub deny_ttl: Duration,
    /// Worker threads making the calls.
    pub workers: usize,
}

/// A question for the auth server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Query {
    User {
        username: String,
        password: String,
        client_id: String,
    },
    Acl {
        username: String,
        client_id: String,
        topic: String,
        acc: u8,
    },
    Superuser {
        username: String,
    },
}

/// Its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allow,
    Deny,
    /// No usable answer (unreachable, timed out, 5xx after retries): denies, not cached.
    Error,
}

/// Access codes of the ACL check.
pub(crate) const ACC_WRITE: u8 = 2;
pub(crate) const ACC_SUBSCRIBE: u8 = 4;

struct Job {
    query: Query,
    reply: channel::Sender<Verdict>,
}

/// The client: shared by every core.
#[derive(Debug)]
pub(crate) struct ExtAuth {
    tx: crossbeam_channel::Sender<Job>,
    cfg: ExternalAuthConfig,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl ExtAuth {
    /// Starts the worker threads.
    pub(crate) fn start(cfg: ExternalAuthConfig) -> Result<Arc<Self>, String> {
        let agent = agent(&cfg)?;
        let (tx, rx) = crossbeam_channel::bounded::<Job>(4096);
        for i in 0..cfg.workers.max(1) {
            let rx = rx.clone();
            let agent = agent.clone();
            let cfg = cfg.clone();
            std::thread::Builder::new()
                .name(format!("rampart-extauth-{i}"))
                .spawn(move || {
                    for job in rx {
                        let verdict = call(&agent, &cfg, &job.query);
                        let _ = job.reply.try_send(verdict);
                    }
                })
                .map_err(|e| e.to_string())?;
        }
        // Credentials in the URL (`https://user:pass@host`) stay out of the log.
        let shown = match cfg.base_url.split_once("://") {
            Some((scheme, rest)) => {
                let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
                format!("{scheme}://{host}")
            }
            None => String::from("<invalid url>"),
        };
        info!(message = "External auth backend configured.", url = shown);
        Ok(Arc::new(Self { tx, cfg }))
    }

    /// Asks, off the core; resolves to `Error` if no answer comes in time.
    pub(crate) async fn ask(&self, query: Query) -> Verdict {
        let (reply, mut answer) = channel::bounded(1);
        if self.tx.try_send(Job { query, reply }).is_err() {
            return Verdict::Error;
        }
        let limit = self.cfg.timeout * (self.cfg.retries + 1) + Duration::from_secs(1);
        match compio::time::timeout(limit, answer.recv()).await {
            Ok(Some(v)) => v,
            _ => Verdict::Error,
        }
    }

    pub(crate) fn config(&self) -> &ExternalAuthConfig {
        &self.cfg
    }
}

fn agent(cfg: &ExternalAuthConfig) -> Result<ureq::Agent, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

    let roots = match &cfg.ca_file {
        Some(path) => {
            let pem = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let certs: Vec<Certificate<'static>> = CertificateDer::pem_slice_iter(&pem)
                .filter_map(Result::ok)
                .map(|c| Certificate::from_der(c.as_ref()).to_owned())
                .collect();
            if certs.is_empty() {
                return Err(format!("{}: no certificate", path.display()));
            }
            RootCerts::new_with_certs(&certs)
        }
        None => RootCerts::WebPki,
    };
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(rampart_tls::provider())
        .root_certs(roots)
        .build();
    Ok(ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .proxy(None)
        .max_redirects(0)
        .user_agent("rampart-broker")
        .timeout_global(Some(cfg.timeout))
        .build()
        .new_agent())
}

fn params(q: &Query) -> (&'static str, Vec<(&'static str, String)>) {
    match q {
        Query::User {
            username,
            password,
            client_id,
        } => (
            "user",
            vec![
                ("username", username.clone()),
                ("password", password.clone()),
                ("clientid", client_id.clone()),
            ],
        ),
        Query::Acl {
            username,
            client_id,
            topic,
            acc,
        } => (
            "acl",
            vec![
                ("username", username.clone()),
                ("clientid", client_id.clone()),
                ("topic", topic.clone()),
                ("acc", acc.to_string()),
            ],
        ),
        Query::Superuser { username } => ("superuser", vec![("username", username.clone())]),
    }
}

/// One question, with retries.
fn call(agent: &ureq::Agent, cfg: &ExternalAuthConfig, q: &Query) -> Verdict {
    let (kind, fields) = params(q);
    let uri = match q {
        Query::User { .. } => &cfg.getuser_uri,
        Query::Acl { .. } => &cfg.aclcheck_uri,
        Query::Superuser { .. } => match &cfg.superuser_uri {
            Some(u) => u,
            None => return Verdict::Deny,
        },
    };
    let url = format!("{}{}", cfg.base_url.trim_end_matches('/'), uri);
    for attempt in 0..=cfg.retries {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(100 * u64::from(attempt.min(10))));
        }
        let sent = match cfg.params {
            ParamsMode::Form => agent
                .post(&url)
                .send_form(fields.iter().map(|(k, v)| (*k, v.as_str()))),
            ParamsMode::Json => {
                let mut obj = serde_json::Map::new();
                for (k, v) in &fields {
                    let v = match (*k, v.parse::<u8>()) {
                        ("acc", Ok(n)) => serde_json::Value::from(n),
                        _ => serde_json::Value::from(v.as_str()),
                    };
                    obj.insert((*k).to_string(), v);
                }
                agent.post(&url).send_json(serde_json::Value::Object(obj))
            }
        };
        let mut resp = match sent {
            Ok(r) => r,
            Err(error) => {
                // Never log the fields: one of them may be a password.
                warn!(message = "External auth call failed.", kind, %error, attempt);
                continue;
            }
        };
        let status = resp.status().as_u16();
        if status >= 500 {
            warn!(
                message = "External auth server error.",
                kind, status, attempt
            );
            continue;
        }
        if !(200..300).contains(&status) {
            return Verdict::Deny;
        }
        let ok = match cfg.response {
            ResponseMode::Status => true,
            ResponseMode::Text => resp
                .body_mut()
                .with_config()
                .limit(4096)
                .read_to_string()
                .is_ok_and(|b| b == "ok"),
            ResponseMode::Json => resp
                .body_mut()
                .with_config()
                .limit(4096)
                .read_json::<serde_json::Value>()
                .is_ok_and(|v| v.get("ok") == Some(&serde_json::Value::Bool(true))),
        };
        return if ok { Verdict::Allow } else { Verdict::Deny };
    }
    Verdict::Error
}

/// One core's cache of answers.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    map: HashMap<CacheKey, (bool, Instant)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum CacheKey {
    /// Username, client id and a digest of the password (never the password itself).
    User(String, String, [u8; 32]),
    Acl(String, String, String, u8),
    Superuser(String),
}

/// Entries kept per core at most; the cache is cleared of expired entries when full.
const MAX_ENTRIES: usize = 100_000;

impl Cache {
    fn key(q: &Query) -> CacheKey {
        match q {
            Query::User {
                username,
                password,
                client_id,
            } => CacheKey::User(
                username.clone(),
                client_id.clone(),
                Sha256::digest(password.as_bytes()).into(),
            ),
            Query::Acl {
                username,
                client_id,
                topic,
                acc,
            } => CacheKey::Acl(username.clone(), client_id.clone(), topic.clone(), *acc),
            Query::Superuser { username } => CacheKey::Superuser(username.clone()),
        }
    }

    /// The cached answer, if fresh.
    pub(crate) fn get(&self, q: &Query, now: Instant) -> Option<bool> {
        self.map
            .get(&Self::key(q))
            .filter(|(_, until)| now < *until)
            .map(|(v, _)| *v)
    }

    fn put(&mut self, q: &Query, allow: bool, cfg: &ExternalAuthConfig, now: Instant) {
        if self.map.len() >= MAX_ENTRIES {
            self.map.retain(|_, (_, until)| now < *until);
            if self.map.len() >= MAX_ENTRIES {
                self.map.clear();
            }
        }
        let ttl = if allow { cfg.allow_ttl } else { cfg.deny_ttl };
        self.map.insert(Self::key(q), (allow, now + ttl));
    }
}

/// Answers `q` from `cache` or the auth server, caching the answer.
pub(crate) async fn check(ext: &ExtAuth, cache: &std::cell::RefCell<Cache>, q: Query) -> bool {
    let now = Instant::now();
    if let Some(v) = cache.borrow().get(&q, now) {
        return v;
    }
    let verdict = ext.ask(q.clone()).await;
    match verdict {
        Verdict::Allow | Verdict::Deny => {
            let allow = verdict == Verdict::Allow;
            cache
                .borrow_mut()
                .put(&q, allow, ext.config(), Instant::now());
            allow
        }
        Verdict::Error => false,
    }
}

/// An ACL check, passing superusers.
pub(crate) async fn check_acl(
    ext: &ExtAuth,
    cache: &std::cell::RefCell<Cache>,
    username: &str,
    client_id: &str,
    topic: &str,
    acc: u8,
) -> bool {
    if ext.config().superuser_uri.is_some() {
        let q = Query::Superuser {
            username: username.to_string(),
        };
        if check(ext, cache, q).await {
            return true;
        }
    }
    let q = Query::Acl {
        username: username.to_string(),
        client_id: client_id.to_string(),
        topic: topic.to_string(),
        acc,
    };
    check(ext, cache, q).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ExternalAuthConfig {
        ExternalAuthConfig {
            base_url: "http://127.0.0.1:1".into(),
            getuser_uri: "/u".into(),
            aclcheck_uri: "/a".into(),
            superuser_uri: None,
            params: ParamsMode::Form,
            response: ResponseMode::Status,
            ca_file: None,
            timeout: Duration::from_secs(1),
            retries: 0,
            allow_ttl: Duration::from_secs(60),
            deny_ttl: Duration::from_secs(5),
            workers: 1,
        }
    }

    #[test]
    fn cache_keeps_allow_and_deny_for_their_own_ttls_and_keys_passwords_by_digest() {
        let cfg = cfg();
        let mut c = Cache::default();
        let t = Instant::now();
        let q = |p: &str| Query::User {
            username: "u".into(),
            password: p.into(),
            client_id: "c".into(),
        };
        c.put(&q("right"), true, &cfg, t);
        c.put(&q("wrong"), false, &cfg, t);
        assert_eq!(c.get(&q("right"), t), Some(true));
        assert_eq!(c.get(&q("wrong"), t), Some(false));
        assert_eq!(c.get(&q("other"), t), None);
        assert_eq!(c.get(&q("wrong"), t + Duration::from_secs(6)), None);
        assert_eq!(c.get(&q("right"), t + Duration::from_secs(59)), Some(true));
        assert!(!format!("{:?}", c).contains("right"));
    }
}
