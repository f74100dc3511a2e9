//! `/auth`: web sessions. Login with a human account's name and password (Argon2id, verified on
//! the blocking pool, throttled per account and per source), a `Secure; HttpOnly;
//! SameSite=Strict` cookie, and a CSRF token the client must echo in `X-CSRF-Token` on every
//! state-changing request. Only digests of both tokens are stored.
//!
//! [`check_password`] is also how the control link answers the data plane's `AUTH` requests
//! (`crate::link`), so both ways in share one throttle and one Argon2 pool.

use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rampart_credentials::{generate, password};
use rampart_store::{
    Account, AccountKind, AuditEvent, Credential, Outcome, Role, Session, StoreError,
};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::error::ApiError;
use super::extract::{Caller, JsonBody, Principal, SESSION_COOKIE, Source};
use super::{AppState, Res, now_ms, store_err, validate};
use crate::time_fmt::rfc3339;

/// `POST /auth/login`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Login {
    username: String,
    password: Zeroizing<String>,
}

#[derive(Debug, Serialize)]
pub(super) struct LoginOk {
    user: String,
    role: Role,
    csrf_token: Zeroizing<String>,
    expires_at: String,
}

fn invalid() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "wrong user name or password",
    )
}

/// What [`check_password`] decided.
#[derive(Debug)]
pub(crate) enum Checked {
    /// The right password for an enabled human account (the throttle is cleared for it).
    Ok(Box<Account>),
    /// Refused before checking: the account or the source is locked for this long.
    Throttled(std::time::Duration),
    /// Unknown, disabled or service account, or the wrong password.
    Invalid,
}

/// The password check behind every human login, web sessions and the data plane's `AUTH`
/// alike: throttled per account and per source, one Argon2 verification in the bounded pool
/// whatever the account (unknown, disabled and service accounts cost the same, so timing does
/// not tell them apart), and every refusal audited under `action` with its reason. A password
/// that is not UTF-8 cannot match (the API only sets UTF-8 ones) and still costs a
/// verification. The caller audits the success.
///
/// Errors: the store failed, or no Argon2 slot freed up in time (503 `busy`).
pub(crate) async fn check_password(
    st: &AppState,
    action: &str,
    username: &str,
    password: Zeroizing<Vec<u8>>,
    source: Option<String>,
) -> Res<Checked> {
    // A name that is not a valid account name cannot exist; it is still throttled and audited
    // under a placeholder, so a password typed into the name field never reaches the log.
    let name_ok = validate::account_name(username).is_ok();
    let key = if name_ok { username } else { "(invalid name)" };
    // Requests without a source address share one bucket rather than escaping the limit.
    let bucket = source.as_deref().unwrap_or("unknown");
    if let Err(wait) = st.throttle.attempt(key, Some(bucket), Instant::now()) {
        st.audit_failure(action, Some(key.to_owned()), source, "throttled")
            .await;
        return Ok(Checked::Throttled(wait));
    }
    let account = if name_ok {
        let n = username.to_owned();
        st.blocking(move |s| match s.account(&n) {
            Ok(a) => Ok(Some(a)),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e),
        })
        .await
        .map_err(store_err("user"))?
    } else {
        None
    };
    let usable = account
        .as_ref()
        .filter(|a| a.kind == AccountKind::Human && !a.disabled);
    let phc = usable.and_then(|a| match &a.credential {
        Credential::Argon2(p) => Some(p.clone()),
        Credential::Digest(_) => None,
    });
    let ok = st
        .argon2(move || match std::str::from_utf8(&password) {
            Ok(pw) => password::verify_or_dummy(phc.as_deref(), pw),
            Err(_) => password::verify_or_dummy(None, ""),
        })
        .await?;
    let (Some(account), true) = (usable, ok) else {
        let reason = match &account {
            None => "unknown user",
            Some(a) if a.disabled => "disabled",
            Some(a) if a.kind == AccountKind::Service => "service account",
            Some(_) => "bad password",
        };
        st.audit_failure(action, Some(key.to_owned()), source, reason)
            .await;
        return Ok(Checked::Invalid);
    };
    st.throttle.succeed(key, Some(bucket));
    Ok(Checked::Ok(Box::new(account.clone())))
}

pub(super) async fn login(
    State(st): State<AppState>,
    Source(source): Source,
    JsonBody(req): JsonBody<Login>,
) -> Res<Response> {
    let password = Zeroizing::new(req.password.as_bytes().to_vec());
    let account =
        match check_password(&st, "auth.login", &req.username, password, source.clone()).await? {
            Checked::Ok(account) => account,
            Checked::Throttled(wait) => {
                let mut e = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "throttled",
                    "too many failed logins; wait and try again",
                );
                e.retry_after = Some(wait.as_secs().max(1));
                return Err(e);
            }
            Checked::Invalid => return Err(invalid()),
        };
    let Some(role) = account.role else {
        return Err(invalid());
    };
    let (token, token_digest) = generate::session_token().map_err(ApiError::internal)?;
    let (csrf, csrf_digest) = generate::session_token().map_err(ApiError::internal)?;
    let now = now_ms();
    let ttl_ms = i64::try_from(st.session_ttl.as_millis()).unwrap_or(i64::MAX);
    let session = Session {
        token_digest: *token_digest.as_bytes(),
        csrf_digest: *csrf_digest.as_bytes(),
        account: account.name.clone(),
        created_at: now,
        expires_at: now.saturating_add(ttl_ms),
    };
    let expires_at = session.expires_at;
    st.blocking(move |s| {
        // Expired sessions are cleared on every login: no separate janitor is needed.
        s.purge_sessions(now)?;
        s.create_session(&session)
    })
    .await
    .map_err(store_err("session"))?;
    st.audit(AuditEvent {
        id: 0,
        time: now,
        actor: account.name.clone(),
        source,
        action: "auth.login".into(),
        object: Some(account.name.clone()),
        outcome: Outcome::Success,
        detail: None,
    })
    .await;
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
        token.as_str(),
        st.session_ttl.as_secs()
    );
    let mut resp = Json(LoginOk {
        user: account.name.clone(),
        role,
        csrf_token: csrf,
        expires_at: rfc3339(expires_at),
    })
    .into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(ApiError::internal)?,
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

pub(super) async fn logout(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Res<Response> {
    if let Principal::Session { account, .. } = &caller.principal {
        if let Some(token) = super::extract::cookie(&headers, SESSION_COOKIE) {
            let d = *generate::session_token_digest(&token).as_bytes();
            st.blocking(move |s| match s.delete_session(&d) {
                Ok(()) | Err(StoreError::NotFound) => Ok(()),
                Err(e) => Err(e),
            })
            .await
            .map_err(store_err("session"))?;
        }
        st.audit_change(&caller, "auth.logout", account.clone(), None)
            .await;
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "rampart_session=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    Ok(resp)
}

#[derive(Debug, Serialize)]
pub(super) struct Me {
    actor: String,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<Role>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<rampart_store::Scope>,
}

pub(super) async fn me(caller: Caller) -> Res<Json<Me>> {
    let (kind, role, scope) = match &caller.principal {
        Principal::Local { .. } => ("local", Some(Role::Admin), None),
        Principal::Session { role, .. } => ("session", Some(*role), None),
        Principal::ApiKey { scope, .. } => ("apikey", None, Some(*scope)),
    };
    Ok(Json(Me {
        actor: caller.principal.actor(),
        kind,
        role,
        scope,
    }))
}
