//! `/apikeys`: REST API keys (MPS's APIKey asset). A key is shown once, when created; only its
//! public id and a keyed digest of its secret are stored. Keys are prefixed `rpk_` and carry a
//! checksum, so a leaked key is recognisable by scanners and a mistyped one is refused offline.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rampart_credentials::generate;
use rampart_policy::cred;
use rampart_store::{ApiKey, NewApiKey, Scope};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::error::ApiError;
use super::extract::{Caller, JsonBody, Level};
use super::{AppState, Res, now_ms, store_err, validate};
use crate::time_fmt::rfc3339;

/// Longest lifetime a key may be given, in days.
pub(super) const MAX_EXPIRES_DAYS: u32 = 3650;

/// A key as the API shows it: never its secret or digest.
#[derive(Debug, Serialize)]
pub(super) struct KeyView {
    id: i64,
    key_id: String,
    name: String,
    scope: Scope,
    created_by: String,
    created_at: String,
    expires_at: Option<String>,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
    state: &'static str,
}

impl KeyView {
    fn new(k: &ApiKey, now: i64) -> KeyView {
        let state = if k.revoked_at.is_some() {
            "revoked"
        } else if k.expires_at.is_some_and(|e| e <= now) {
            "expired"
        } else {
            "active"
        };
        KeyView {
            id: k.id,
            key_id: k.key_id.clone(),
            name: k.name.clone(),
            scope: k.scope,
            created_by: k.created_by.clone(),
            created_at: rfc3339(k.created_at),
            expires_at: k.expires_at.map(rfc3339),
            last_used_at: k.last_used_at.map(rfc3339),
            revoked_at: k.revoked_at.map(rfc3339),
            state,
        }
    }
}

/// `POST /apikeys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateKey {
    name: String,
    scope: Scope,
    #[serde(default)]
    expires_days: Option<u32>,
}

/// A new key, with the key itself (shown once).
#[derive(Debug, Serialize)]
pub(super) struct CreatedKey {
    #[serde(flatten)]
    view: KeyView,
    key: Zeroizing<String>,
}

pub(super) async fn list(State(st): State<AppState>, caller: Caller) -> Res<Json<Vec<KeyView>>> {
    caller.principal.require(Level::Admin)?;
    let now = now_ms();
    let all = st
        .blocking(|s| s.list_api_keys())
        .await
        .map_err(store_err("API key"))?;
    Ok(Json(all.iter().map(|k| KeyView::new(k, now)).collect()))
}

pub(super) async fn create(
    State(st): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreateKey>,
) -> Res<(StatusCode, Json<CreatedKey>)> {
    caller.principal.require(Level::Admin)?;
    validate::required_text("name", &req.name, validate::MAX_NAME)?;
    let now = now_ms();
    let expires_at = match req.expires_days {
        None => None,
        Some(d) if (1..=MAX_EXPIRES_DAYS).contains(&d) => {
            Some(now.saturating_add(i64::from(d) * 86_400_000))
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_value",
                format!("`expires_days` is 1 to {MAX_EXPIRES_DAYS}"),
            ));
        }
    };
    let random = generate::random_bytes::<64>().map_err(ApiError::internal)?;
    let (key_id, secret) = cred::api_key_from_random(&random);
    let secret = Zeroizing::new(secret);
    let token = Zeroizing::new(cred::format_api_key(&key_id, &secret));
    let new = NewApiKey {
        key_id,
        name: req.name,
        scope: req.scope,
        digest: cred::digest(&st.keys.credential, cred::DOMAIN_API_KEY, secret.as_bytes()),
        created_by: caller.principal.actor(),
        expires_at,
    };
    let key = st
        .blocking(move |s| s.create_api_key(&new, now))
        .await
        .map_err(store_err("API key"))?;
    st.audit_change(
        &caller,
        "apikey.create",
        key.key_id.clone(),
        Some(format!("scope={} name={}", key.scope.as_str(), key.name)),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            view: KeyView::new(&key, now),
            key: token,
        }),
    ))
}

pub(super) async fn revoke(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Res<Json<KeyView>> {
    caller.principal.require(Level::Admin)?;
    let id: i64 = id.parse().ok().filter(|i| *i > 0).ok_or_else(|| {
        ApiError::bad_request("invalid_id", "an API key id is a positive integer")
    })?;
    let now = now_ms();
    let key = st
        .blocking(move |s| s.revoke_api_key(id, now))
        .await
        .map_err(store_err("API key"))?;
    st.audit_change(&caller, "apikey.revoke", key.key_id.clone(), None)
        .await;
    Ok(Json(KeyView::new(&key, now)))
}
