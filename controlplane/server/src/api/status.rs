//! `/health`, `/version`, `/status` and `/audit`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rampart_store::{AuditEvent, AuditQuery};
use serde::{Deserialize, Serialize};

use super::devices::Q;
use super::error::ApiError;
use super::extract::{Caller, Level};
use super::{AppState, Res, store_err};
use crate::time_fmt::rfc3339;

#[derive(Debug, Serialize)]
pub(super) struct Component {
    name: String,
    status: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Health {
    db: Component,
    secret_store: Component,
}

/// MPS-shaped health: 200 when the database and the secret store answer, 503 otherwise. Open
/// to any authenticated caller.
pub(super) async fn health(State(st): State<AppState>, caller: Caller) -> Res<Response> {
    caller.principal.require(Level::Viewer)?;
    let db_ok = st.blocking(|s| s.ping()).await.is_ok();
    let amt = st.amt.clone();
    let secrets_ok = tokio::task::spawn_blocking(move || amt.health())
        .await
        .map_err(ApiError::internal)?
        .is_ok();
    let body = Health {
        db: Component {
            name: st.store.backend().to_owned(),
            status: if db_ok { "OK" } else { "unavailable" },
        },
        secret_store: Component {
            name: st.amt.name().to_owned(),
            status: if secrets_ok { "OK" } else { "unavailable" },
        },
    };
    let code = if db_ok && secrets_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((code, Json(body)).into_response())
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Version {
    service_version: &'static str,
    protocol_version: &'static str,
}

/// Service and API version.
/// `GET /ciracert`: the PEM of the CA that signed the CIRA port's certificate, which AMT
/// devices are provisioned to trust (MPS's route; RPS fetches it). Public data, but like every
/// route it needs a caller.
pub(super) async fn ciracert(State(st): State<AppState>, caller: Caller) -> Res<Response> {
    caller.principal.require(Level::Viewer)?;
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no CA certificate (externally signed certificates: use your CA's)",
        )
    };
    let path = st.cira_ca.clone().ok_or_else(not_found)?;
    let pem = tokio::task::spawn_blocking(move || std::fs::read_to_string(path))
        .await
        .map_err(ApiError::internal)?
        .map_err(|_| not_found())?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-pem-file")],
        pem,
    )
        .into_response())
}

pub(super) async fn version(caller: Caller) -> Res<Response> {
    caller.principal.require(Level::Viewer)?;
    Ok(Json(Version {
        service_version: env!("CARGO_PKG_VERSION"),
        protocol_version: "v1",
    })
    .into_response())
}

#[derive(Debug, Serialize)]
pub(super) struct LinkView {
    id: u64,
    connected_at: String,
    applied_generation: Option<u64>,
    applied_at: Option<String>,
    last_rejection: Option<String>,
}

#[derive(Debug, Serialize)]
pub(super) struct Status {
    backend: &'static str,
    generation: u64,
    snapshot_generation: Option<u64>,
    dataplanes: Vec<LinkView>,
}

/// The policy generation in the database, the one compiled into the current snapshot, and
/// which generation each connected data plane has applied.
pub(super) async fn status(State(st): State<AppState>, caller: Caller) -> Res<Json<Status>> {
    caller.principal.require(Level::Viewer)?;
    let generation = st
        .blocking(|s| s.generation())
        .await
        .map_err(store_err("generation"))?;
    let dataplanes = st
        .feed
        .links()
        .into_iter()
        .map(|l| LinkView {
            id: l.id,
            connected_at: rfc3339(l.connected_at_ms),
            applied_generation: l.applied_generation,
            applied_at: l.applied_at_ms.map(rfc3339),
            last_rejection: l
                .last_rejection
                .map(|(g, why)| format!("generation {g}: {why}")),
        })
        .collect();
    Ok(Json(Status {
        backend: st.store.backend(),
        generation,
        snapshot_generation: st.feed.generation(),
        dataplanes,
    }))
}

/// `GET /audit` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditParams {
    limit: Option<u32>,
    before: Option<i64>,
    actor: Option<String>,
    action: Option<String>,
}

/// Most audit records per request.
pub(super) const MAX_AUDIT: u32 = 1000;

#[derive(Debug, Serialize)]
pub(super) struct AuditView {
    id: i64,
    time: String,
    actor: String,
    source: Option<String>,
    action: String,
    object: Option<String>,
    outcome: rampart_store::Outcome,
    detail: Option<String>,
}

impl From<AuditEvent> for AuditView {
    fn from(e: AuditEvent) -> AuditView {
        AuditView {
            id: e.id,
            time: rfc3339(e.time),
            actor: e.actor,
            source: e.source,
            action: e.action,
            object: e.object,
            outcome: e.outcome,
            detail: e.detail,
        }
    }
}

/// The audit log, newest first (admins only).
pub(super) async fn audit(
    State(st): State<AppState>,
    caller: Caller,
    Q(p): Q<AuditParams>,
) -> Res<Json<Vec<AuditView>>> {
    caller.principal.require(Level::Admin)?;
    let limit = p.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_AUDIT {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("`limit` is 1 to {MAX_AUDIT}"),
        ));
    }
    for (f, v) in [("actor", &p.actor), ("action", &p.action)] {
        if let Some(v) = v {
            super::validate::text(f, v, 256)?;
        }
    }
    let q = AuditQuery {
        before_id: p.before,
        actor: p.actor,
        action: p.action,
        limit,
    };
    let rows = st
        .blocking(move |s| s.list_audit(&q))
        .await
        .map_err(store_err("audit"))?;
    Ok(Json(rows.into_iter().map(AuditView::from).collect()))
}
