//! Request extractors: a strict JSON body and the authenticated principal.

use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use rampart_credentials::generate;
use rampart_policy::cred;
use rampart_store::{Millis, Role, Scope, StoreError};
use serde::de::DeserializeOwned;

use super::error::{ApiError, ApiResult};
use super::{AppState, Entry, now_ms};

/// The largest request body accepted, in bytes.
pub const MAX_BODY: usize = 64 * 1024;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "rampart_session";
/// The header carrying the CSRF token on state-changing requests made with a session.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A JSON body, parsed strictly: `Content-Type: application/json`, at most [`MAX_BODY`] bytes,
/// unknown fields refused (every request type denies them), errors naming the field path.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON (Content-Type: application/json)",
            ));
        }
        let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY)
            .await
            .map_err(|_| too_large())?;
        parse_json(&bytes).map(JsonBody)
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the body is larger than {MAX_BODY} bytes"),
    )
}

/// Parses JSON into `T`, mapping errors to stable codes with the field path but never the
/// submitted value.
pub fn parse_json<T: DeserializeOwned>(bytes: &Bytes) -> ApiResult<T> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => Ok(v),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.inner();
            let (code, what) = match inner.classify() {
                serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                    ("invalid_json", "malformed JSON".to_string())
                }
                _ => {
                    let text = inner.to_string();
                    if text.starts_with("unknown field") {
                        ("unknown_field", "unknown field".to_string())
                    } else if text.starts_with("missing field") {
                        ("missing_field", "missing field".to_string())
                    } else if text.starts_with("invalid type") {
                        ("invalid_type", "wrong type".to_string())
                    } else {
                        ("invalid_value", "invalid value".to_string())
                    }
                }
            };
            let message = if path == "." || path.is_empty() {
                format!("{what} at line {} column {}", inner.line(), inner.column())
            } else {
                format!("{what} at `{path}`")
            };
            Err(ApiError::bad_request(code, message))
        }
    }
}

/// What a principal may do, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Reads.
    Viewer,
    /// Reads and devices.
    Operator,
    /// Everything.
    Admin,
}

impl From<Role> for Level {
    fn from(r: Role) -> Level {
        match r {
            Role::Viewer => Level::Viewer,
            Role::Operator => Level::Operator,
            Role::Admin => Level::Admin,
        }
    }
}

impl From<Scope> for Level {
    fn from(s: Scope) -> Level {
        match s {
            Scope::Read => Level::Viewer,
            Scope::Devices => Level::Operator,
            Scope::Admin => Level::Admin,
        }
    }
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The local CLI on the admin socket, by Unix uid.
    Local {
        /// Peer uid.
        uid: u32,
    },
    /// A human with a web session.
    Session {
        /// Account name.
        account: String,
        /// Its role.
        role: Role,
    },
    /// A REST client with an API key.
    ApiKey {
        /// The key's public id.
        key_id: String,
        /// Its scope.
        scope: Scope,
    },
}

impl Principal {
    /// The audit log's actor.
    pub fn actor(&self) -> String {
        match self {
            Principal::Local { uid } => format!("local:{uid}"),
            Principal::Session { account, .. } => account.clone(),
            Principal::ApiKey { key_id, .. } => format!("apikey:{key_id}"),
        }
    }

    /// What it may do.
    pub fn level(&self) -> Level {
        match self {
            Principal::Local { .. } => Level::Admin,
            Principal::Session { role, .. } => Level::from(*role),
            Principal::ApiKey { scope, .. } => Level::from(*scope),
        }
    }

    /// Refuses with 403 unless the principal has at least `need`.
    pub fn require(&self, need: Level) -> ApiResult<()> {
        if self.level() >= need {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this needs the {} role or scope",
                match need {
                    Level::Viewer => "viewer (read)",
                    Level::Operator => "operator (devices)",
                    Level::Admin => "admin",
                }
            )))
        }
    }
}

/// The source address of a request: the client's address as the HTTPS front reports it in
/// `X-Forwarded-For` (the front sets it and drops any the client sent; only the front can reach
/// the API socket), or `local` on the admin socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for Source {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(source_of(parts))
    }
}

fn source_of(parts: &Parts) -> Source {
    if let Some(Entry::Local { .. }) = parts.extensions.get::<Entry>() {
        return Source(Some("local".into()));
    }
    // The front appends the peer it saw; the last value of the last header line is that one.
    let ip = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse::<IpAddr>().ok());
    Source(ip.map(|ip| ip.to_string()))
}

/// The authenticated caller and its source address. Rejects with 401 (no or bad credentials)
/// or 403 (missing CSRF token on a state-changing session request).
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who.
    pub principal: Principal,
    /// From where.
    pub source: Option<String>,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let source = source_of(parts).0;
        if let Some(Entry::Local { uid }) = parts.extensions.get::<Entry>() {
            return Ok(Caller {
                principal: Principal::Local { uid: *uid },
                source,
            });
        }
        if let Some(token) = api_key_of(parts) {
            let principal = authenticate_api_key(state, token, source.clone()).await?;
            return Ok(Caller { principal, source });
        }
        if let Some(token) = cookie(&parts.headers, SESSION_COOKIE) {
            let csrf = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let unsafe_method = !matches!(parts.method, Method::GET | Method::HEAD);
            let principal =
                authenticate_session(state, token, csrf.filter(|_| unsafe_method), unsafe_method)
                    .await?;
            return Ok(Caller { principal, source });
        }
        Err(ApiError::unauthorized())
    }
}

fn api_key_of(parts: &Parts) -> Option<String> {
    if let Some(v) = parts.headers.get(header::AUTHORIZATION) {
        let v = v.to_str().ok()?;
        let (scheme, rest) = v.split_once(' ')?;
        if scheme.eq_ignore_ascii_case("bearer") {
            return Some(rest.trim().to_owned());
        }
        return None;
    }
    parts
        .headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
}

/// The value of cookie `name`, if the request carries exactly one.
pub fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    let mut found = None;
    for v in headers.get_all(header::COOKIE) {
        let Ok(v) = v.to_str() else { continue };
        for pair in v.split(';') {
            if let Some((k, val)) = pair.trim().split_once('=')
                && k == name
            {
                if found.is_some() {
                    // Two cookies of the same name: refuse to guess which one counts.
                    return None;
                }
                found = Some(val.to_owned());
            }
        }
    }
    found
}

/// How long a key's last use may lag before it is written again (coalesces writes).
const TOUCH_EVERY_MS: Millis = 60_000;

async fn authenticate_api_key(
    state: &AppState,
    token: String,
    source: Option<String>,
) -> ApiResult<Principal> {
    let parts = match cred::parse_api_key(&token) {
        Ok(p) => p,
        Err(_) => {
            state
                .audit_failure("auth.apikey", None, source, "malformed key")
                .await;
            return Err(ApiError::unauthorized());
        }
    };
    let key_id = parts.key_id.to_owned();
    let secret = parts.secret.to_owned();
    let st = state.clone();
    let now = now_ms();
    let lookup = state
        .blocking(move |store| match store.api_key(&key_id) {
            Ok(k) => Ok(Some(k)),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e),
        })
        .await
        .map_err(|e| ApiError::store("API key", e))?;
    let reason = match &lookup {
        None => Some("unknown key"),
        Some(k)
            if !cred::verify(
                &st.keys.credential,
                cred::DOMAIN_API_KEY,
                secret.as_bytes(),
                &k.digest,
            ) =>
        {
            Some("bad secret")
        }
        Some(k) if k.revoked_at.is_some() => Some("revoked"),
        Some(k) if k.expires_at.is_some_and(|e| e <= now) => Some("expired"),
        Some(_) => None,
    };
    let object = parts.key_id.to_owned();
    if let Some(reason) = reason {
        state
            .audit_failure("auth.apikey", Some(object), source, reason)
            .await;
        return Err(ApiError::unauthorized());
    }
    let Some(key) = lookup else {
        return Err(ApiError::unauthorized());
    };
    if key.last_used_at.is_none_or(|t| now - t >= TOUCH_EVERY_MS) {
        let id = key.key_id.clone();
        // Last use is advisory; a failure to record it does not fail the request.
        let _ = state.blocking(move |s| s.touch_api_key(&id, now)).await;
    }
    Ok(Principal::ApiKey {
        key_id: key.key_id,
        scope: key.scope,
    })
}

async fn authenticate_session(
    state: &AppState,
    token: String,
    csrf: Option<String>,
    need_csrf: bool,
) -> ApiResult<Principal> {
    let digest = *generate::session_token_digest(&token).as_bytes();
    let now = now_ms();
    let found = state
        .blocking(move |store| {
            let session = match store.session(&digest) {
                Ok(s) => s,
                Err(StoreError::NotFound) => return Ok(None),
                Err(e) => return Err(e),
            };
            match store.account(&session.account) {
                Ok(a) => Ok(Some((session, a))),
                Err(StoreError::NotFound) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await
        .map_err(|e| ApiError::store("session", e))?;
    let Some((session, account)) = found else {
        return Err(ApiError::unauthorized());
    };
    // Any change to the account after the session began (password, role, disabled) ends it: a
    // stolen cookie does not outlive a password reset.
    if session.expires_at <= now || account.disabled || account.updated_at > session.created_at {
        return Err(ApiError::unauthorized());
    }
    let Some(role) = account.role else {
        return Err(ApiError::unauthorized());
    };
    if need_csrf {
        let ok = csrf.is_some_and(|c| {
            generate::session_token_digest(&c).ct_eq(&generate::SessionTokenDigest::from_bytes(
                session.csrf_digest,
            ))
        });
        if !ok {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf_failed",
                "state-changing requests with a session need the X-CSRF-Token header from login",
            ));
        }
    }
    Ok(Principal::Session {
        account: account.name,
        role,
    })
}
