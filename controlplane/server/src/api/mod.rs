//! The admin REST API, JSON under `/api/v1`, served on two Unix sockets:
//!
//! - the **API socket**, which only the data plane's HTTPS front reaches (it proxies `/api/...`
//!   to it): every request authenticates with an API key (`Authorization: Bearer rpk_...` or
//!   `X-Api-Key`) or a web session (cookie plus `X-CSRF-Token` on state-changing requests);
//! - the **admin socket**, for the `rampart` CLI on this machine: the peer's uid must be ours or
//!   root (checked with `SO_PEERCRED`), and it acts as the superuser, audited as `local:<uid>`.
//!
//! Both sockets serve the same routes and handlers. Handlers check roles (viewer < operator <
//! admin; API key scopes read < devices < admin map onto them), validate every input before it
//! reaches the store, run blocking store calls and Argon2 on tokio's blocking pool, and audit
//! every change and every authentication outcome.
//!
//! What it does not do: listen on a network port, or trust a forwarding header from anyone but
//! the front (only the front can connect to the API socket).

mod acls;
mod amt;
mod apikeys;
pub(crate) mod auth;
mod devices;
pub mod error;
pub mod extract;
mod openapi;
mod status;
mod users;
mod validate;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::serve::IncomingStream;
use rampart_credentials::AmtSecretStore;
use rampart_store::{AuditEvent, Outcome, Store, StoreError};
use tokio::net::UnixListener;
use zeroize::Zeroizing;

use crate::audit::Audit;
use crate::feed::Feed;
use crate::throttle::Throttle;
use error::{ApiError, ApiResult};

/// Keys the API needs.
#[derive(Debug)]
pub struct Keys {
    /// HMAC key for machine-credential, API-key and session digests.
    pub credential: Zeroizing<[u8; 32]>,
}

/// Everything handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub struct Inner {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Digest keys.
    pub keys: Keys,
    /// Where AMT passwords go.
    pub amt: Arc<AmtSecretStore>,
    /// The audit log.
    pub audit: Audit,
    /// Login throttling.
    pub throttle: Throttle,
    /// The snapshot feed (for status).
    pub feed: Arc<Feed>,
    /// Web session lifetime.
    pub session_ttl: Duration,
    /// The CA certificate `/ciracert` serves.
    pub cira_ca: Option<std::path::PathBuf>,
    /// WS-MAN to devices through their tunnels.
    pub amt_client: Arc<crate::amt::AmtClient>,
    /// Redirection tokens and sessions.
    pub relay: Arc<crate::relay::Relay>,
    /// Argon2 runs at most this many at once, so a login flood cannot take every blocking
    /// thread from the store calls (and the local CLI).
    pub argon2_slots: tokio::sync::Semaphore,
}

/// Concurrent Argon2 computations.
pub const ARGON2_SLOTS: usize = 4;

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl AppState {
    /// Shares `inner` with every handler.
    pub fn new(inner: Inner) -> AppState {
        AppState {
            inner: Arc::new(inner),
        }
    }

    /// Runs a blocking store call on tokio's blocking pool.
    pub async fn blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || f(&*store)).await {
            Ok(r) => r,
            Err(e) => Err(StoreError::Backend(format!("blocking task failed: {e}"))),
        }
    }

    /// Runs an Argon2 computation on the blocking pool, in one of [`ARGON2_SLOTS`]; answers 503
    /// if no slot frees up within 10 s.
    pub async fn argon2<T, F>(&self, f: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit =
            tokio::time::timeout(Duration::from_secs(10), self.argon2_slots.acquire()).await;
        let Ok(Ok(_permit)) = permit else {
            return Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "too many password checks in progress; try again",
            ));
        };
        tokio::task::spawn_blocking(f)
            .await
            .map_err(ApiError::internal)
    }

    /// Records an audit event (database and sink). Never fails the request: a failure to
    /// record is logged loudly.
    pub async fn audit(&self, event: AuditEvent) {
        let audit = self.audit.clone();
        let store = self.store.clone();
        let _ = tokio::task::spawn_blocking(move || audit.record(&*store, event)).await;
    }

    /// Records a failed authentication or refused action.
    pub async fn audit_failure(
        &self,
        action: &str,
        object: Option<String>,
        source: Option<String>,
        detail: &str,
    ) {
        self.audit(AuditEvent {
            id: 0,
            time: now_ms(),
            // The attempted name is the object, never the actor: filtering the log by an
            // account's name must not show someone else's attempts as that account's actions.
            actor: "anonymous".to_owned(),
            source,
            action: action.to_owned(),
            object,
            outcome: Outcome::Failure,
            detail: Some(detail.to_owned()),
        })
        .await;
    }

    /// Records a successful change by `caller`.
    pub async fn audit_change(
        &self,
        caller: &extract::Caller,
        action: &str,
        object: impl Into<String>,
        detail: Option<String>,
    ) {
        self.audit(AuditEvent {
            id: 0,
            time: now_ms(),
            actor: caller.principal.actor(),
            source: caller.source.clone(),
            action: action.to_owned(),
            object: Some(object.into()),
            outcome: Outcome::Success,
            detail,
        })
        .await;
    }
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Which socket a request came in on (a request extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// The admin socket, with the peer's uid.
    Local {
        /// Peer uid.
        uid: u32,
    },
    /// The API socket.
    Api,
}

/// Peer credentials of a Unix-socket connection.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    uid: Option<u32>,
}

impl Connected<IncomingStream<'_, UnixListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, UnixListener>) -> Self {
        Peer {
            uid: stream.io().peer_cred().ok().map(|c| c.uid()),
        }
    }
}

/// The routes, shared by both sockets.
pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/openapi.json", get(openapi::document))
        .route("/health", get(status::health))
        .route("/version", get(status::version))
        .route("/ciracert", get(status::ciracert))
        .route("/status", get(status::status))
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/me", get(auth::me))
        .route("/users", get(users::list).post(users::create))
        .route(
            "/users/{name}",
            get(users::get).patch(users::update).delete(users::remove),
        )
        .route("/users/{name}/password", put(users::set_password))
        .route("/acls", get(acls::list).post(acls::create))
        .route("/acls/{id}", delete(acls::remove))
        .route("/apikeys", get(apikeys::list).post(apikeys::create))
        .route("/apikeys/{id}", delete(apikeys::revoke))
        .route(
            "/devices",
            get(devices::list)
                .post(devices::upsert)
                .patch(devices::patch),
        )
        .route("/devices/stats", get(devices::stats))
        .route("/devices/tags", get(devices::tags))
        .route("/devices/{guid}", get(devices::get).delete(devices::remove))
        .route("/devices/disconnect/{guid}", delete(devices::disconnect))
        .route(
            "/devices/{guid}/amt-password",
            put(devices::set_amt_password),
        )
        .route("/audit", get(status::audit))
        .route("/devices/redirectstatus/{guid}", get(amt::redirect_status))
        .route(
            "/authorize/redirection/{guid}",
            get(amt::authorize_redirection),
        )
        .route("/amt/version/{guid}", get(amt::version))
        .route("/amt/generalSettings/{guid}", get(amt::general_settings))
        .route("/amt/hardwareInfo/{guid}", get(amt::hardware_info))
        .route("/amt/power/state/{guid}", get(amt::power_state))
        .route(
            "/amt/power/capabilities/{guid}",
            get(amt::power_capabilities),
        )
        .route("/amt/power/action/{guid}", post(amt::power_action))
        .route("/amt/power/bootOptions/{guid}", post(amt::boot_options))
        .route(
            "/amt/features/{guid}",
            get(amt::features_get).post(amt::features_set),
        )
        .route("/amt/log/audit/{guid}", get(amt::audit_log))
        .route("/amt/log/event/{guid}", get(amt::event_log));
    Router::new()
        .nest("/api/v1", v1)
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this route",
            )
        })
        .with_state(state)
}

async fn mark_api(mut req: Request, next: Next) -> Response {
    req.extensions_mut().insert(Entry::Api);
    next.run(req).await
}

async fn mark_local(
    ConnectInfo(peer): ConnectInfo<Peer>,
    mut req: Request,
    next: Next,
) -> Response {
    let me = rustix::process::geteuid().as_raw();
    match peer.uid {
        Some(uid) if uid == me || uid == 0 => {
            req.extensions_mut().insert(Entry::Local { uid });
            next.run(req).await
        }
        _ => ApiError::forbidden("the admin socket serves only Rampart's own user and root")
            .into_response(),
    }
}

/// Serves the API socket (authenticated by key or session) until `shutdown` resolves.
pub async fn serve_api(
    listener: UnixListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).layer(axum::middleware::from_fn(mark_api));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serves the admin socket (local superuser by peer uid) until `shutdown` resolves.
pub async fn serve_admin(
    listener: UnixListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).layer(axum::middleware::from_fn(mark_local));
    axum::serve(listener, app.into_make_service_with_connect_info::<Peer>())
        .with_graceful_shutdown(shutdown)
        .await
}

/// Maps a store error for `what` (use with `map_err`).
pub(crate) fn store_err(what: &'static str) -> impl FnOnce(StoreError) -> ApiError {
    move |e| ApiError::store(what, e)
}

/// Shorthand used by handlers.
pub(crate) type Res<T> = ApiResult<T>;
