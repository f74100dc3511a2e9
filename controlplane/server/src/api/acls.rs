//! `/acls`: MQTT topic rules per user or per role (Mosquitto's semantics, default deny; the data
//! plane evaluates them from the snapshot).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rampart_store::{Access, AclRule, AclSubject, NewAclRule, Role};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{Caller, JsonBody, Level};
use super::{AppState, Res, now_ms, store_err, validate};
use crate::time_fmt::rfc3339;

/// A rule as the API shows it: exactly one of `user` and `role` is set.
#[derive(Debug, Serialize)]
pub(super) struct AclView {
    id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<Role>,
    topic: String,
    access: Access,
    created_at: String,
}

impl From<&AclRule> for AclView {
    fn from(r: &AclRule) -> AclView {
        let (user, role) = match &r.subject {
            AclSubject::User(u) => (Some(u.clone()), None),
            AclSubject::Role(r) => (None, Some(*r)),
        };
        AclView {
            id: r.id,
            user,
            role,
            topic: r.topic.clone(),
            access: r.access,
            created_at: rfc3339(r.created_at),
        }
    }
}

/// `POST /acls`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateAcl {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    role: Option<Role>,
    topic: String,
    access: Access,
}

pub(super) async fn list(State(st): State<AppState>, caller: Caller) -> Res<Json<Vec<AclView>>> {
    caller.principal.require(Level::Viewer)?;
    let all = st
        .blocking(|s| s.list_acls())
        .await
        .map_err(store_err("ACL rule"))?;
    Ok(Json(all.iter().map(AclView::from).collect()))
}

pub(super) async fn create(
    State(st): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreateAcl>,
) -> Res<(StatusCode, Json<AclView>)> {
    caller.principal.require(Level::Admin)?;
    let subject = match (req.user, req.role) {
        (Some(u), None) => {
            validate::account_name(&u)?;
            AclSubject::User(u)
        }
        (None, Some(r)) => AclSubject::Role(r),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_value",
                "give exactly one of `user` and `role`",
            ));
        }
    };
    validate::topic_filter(&req.topic)?;
    let new = NewAclRule {
        subject,
        topic: req.topic,
        access: req.access,
    };
    let now = now_ms();
    let rule = st
        .blocking(move |s| s.add_acl(&new, now))
        .await
        .map_err(|e| match e {
            rampart_store::StoreError::NotFound => {
                ApiError::bad_request("unknown_user", "no account has that name")
            }
            e => ApiError::store("ACL rule", e),
        })?;
    let subject = match &rule.subject {
        AclSubject::User(u) => format!("user={u}"),
        AclSubject::Role(r) => format!("role={}", r.as_str()),
    };
    st.audit_change(
        &caller,
        "acl.create",
        rule.id.to_string(),
        Some(format!(
            "{subject} access={} topic={}",
            rule.access.as_str(),
            rule.topic
        )),
    )
    .await;
    Ok((StatusCode::CREATED, Json(AclView::from(&rule))))
}

pub(super) async fn remove(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Res<StatusCode> {
    caller.principal.require(Level::Admin)?;
    let id: i64 = id.parse().ok().filter(|i| *i > 0).ok_or_else(|| {
        ApiError::bad_request("invalid_id", "an ACL rule id is a positive integer")
    })?;
    st.blocking(move |s| s.delete_acl(id))
        .await
        .map_err(store_err("ACL rule"))?;
    st.audit_change(&caller, "acl.delete", id.to_string(), None)
        .await;
    Ok(StatusCode::NO_CONTENT)
}
