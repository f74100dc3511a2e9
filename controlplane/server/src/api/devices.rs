//! `/devices`: the AMT device allowlist, with MPS-compatible paths and payloads (so existing
//! MPS clients work), plus the MPS password (a generated or given secret stored as a keyed
//! digest, verified by the data plane) and the AMT admin password (sealed with envelope
//! encryption in the database, or kept in Vault; never returned by any endpoint).

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use rampart_credentials::generate;
use rampart_policy::cred;
use rampart_store::{Device, DeviceQuery, DeviceUpdate, NewDevice};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::error::ApiError;
use super::extract::{Caller, JsonBody, Level};
use super::{AppState, Res, now_ms, store_err, validate};
use crate::time_fmt::rfc3339;

/// Most devices one list request returns.
pub(super) const MAX_TOP: u32 = 1000;
/// MPS's default page size.
pub(super) const DEFAULT_TOP: u32 = 25;

/// A query string parsed strictly into `T` (unknown parameters refused).
#[derive(Debug)]
pub(super) struct Q<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Q(q.0))
            .map_err(|e| {
                let text = e.body_text();
                let code = if text.contains("unknown field") {
                    "unknown_parameter"
                } else {
                    "invalid_query"
                };
                ApiError::bad_request(code, "bad query string: unknown parameter or wrong type")
            })
    }
}

/// A device as MPS shows it, plus whether its passwords are set.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DeviceView {
    guid: String,
    hostname: Option<String>,
    tags: Vec<String>,
    mps_instance: Option<String>,
    connection_status: bool,
    #[serde(rename = "mpsusername")]
    mps_username: String,
    tenant_id: String,
    friendly_name: Option<String>,
    dns_suffix: Option<String>,
    device_info: Option<serde_json::Value>,
    last_connected: Option<String>,
    last_seen: Option<String>,
    last_disconnected: Option<String>,
    mps_password_set: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    amt_password_set: Option<bool>,
}

impl DeviceView {
    fn new(d: &Device, local_secrets: bool) -> DeviceView {
        DeviceView {
            guid: d.guid.clone(),
            hostname: d.hostname.clone(),
            tags: d.tags.clone(),
            mps_instance: d.connection.node.clone(),
            connection_status: d.connection.connected,
            mps_username: d.mps_username.clone(),
            tenant_id: d.tenant_id.clone(),
            friendly_name: d.friendly_name.clone(),
            dns_suffix: d.dns_suffix.clone(),
            device_info: d
                .device_info
                .as_deref()
                .and_then(|t| serde_json::from_str(t).ok()),
            last_connected: d.connection.last_connected.map(rfc3339),
            last_seen: d.connection.last_seen.map(rfc3339),
            last_disconnected: d.connection.last_disconnected.map(rfc3339),
            mps_password_set: d.mps_digest.is_some(),
            amt_password_set: local_secrets.then_some(d.amt_password.is_some()),
        }
    }
}

/// `GET /devices` query (MPS's parameters).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    #[serde(rename = "$top")]
    top: Option<u32>,
    #[serde(rename = "$skip")]
    skip: Option<u32>,
    #[serde(rename = "$count")]
    count: Option<bool>,
    hostname: Option<String>,
    #[serde(rename = "friendlyName")]
    friendly_name: Option<String>,
    tags: Option<String>,
    method: Option<String>,
    status: Option<u8>,
    #[serde(rename = "tenantId")]
    tenant_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Counted {
    data: Vec<DeviceView>,
    total_count: u64,
}

pub(super) async fn list(
    State(st): State<AppState>,
    caller: Caller,
    Q(q): Q<ListQuery>,
) -> Res<Response> {
    caller.principal.require(Level::Viewer)?;
    let top = q.top.unwrap_or(DEFAULT_TOP);
    if top > MAX_TOP {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("`$top` is at most {MAX_TOP}"),
        ));
    }
    let tags_all = match q.method.as_deref() {
        None | Some("OR") | Some("or") => false,
        Some("AND") | Some("and") => true,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "`method` is AND or OR",
            ));
        }
    };
    let connected = match q.status {
        None => None,
        Some(0) => Some(false),
        Some(1) => Some(true),
        Some(_) => {
            return Err(ApiError::bad_request("invalid_query", "`status` is 0 or 1"));
        }
    };
    let tags: Vec<String> = q
        .tags
        .as_deref()
        .map(|t| {
            t.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    validate::tags(&tags)?;
    for (field, v) in [
        ("hostname", &q.hostname),
        ("friendlyName", &q.friendly_name),
        ("tenantId", &q.tenant_id),
    ] {
        if let Some(v) = v {
            validate::text(field, v, validate::MAX_TEXT)?;
        }
    }
    let query = DeviceQuery {
        hostname: q.hostname,
        friendly_name: q.friendly_name,
        tags,
        tags_all,
        tenant_id: q.tenant_id,
        connected,
        skip: q.skip.unwrap_or(0),
        top,
    };
    let (devices, total) = st
        .blocking(move |s| s.list_devices(&query))
        .await
        .map_err(store_err("device"))?;
    let local = st.amt.uses_database();
    let data: Vec<DeviceView> = devices.iter().map(|d| DeviceView::new(d, local)).collect();
    if q.count == Some(true) {
        Ok(Json(Counted {
            data,
            total_count: total,
        })
        .into_response())
    } else {
        Ok(Json(data).into_response())
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Stats {
    total_count: u64,
    connected_count: u64,
    disconnected_count: u64,
}

pub(super) async fn stats(State(st): State<AppState>, caller: Caller) -> Res<Response> {
    caller.principal.require(Level::Viewer)?;
    let (total, connected) = st
        .blocking(|s| {
            let all = s.list_devices(&DeviceQuery::default())?.1;
            let on = s
                .list_devices(&DeviceQuery {
                    connected: Some(true),
                    ..DeviceQuery::default()
                })?
                .1;
            Ok((all, on))
        })
        .await
        .map_err(store_err("device"))?;
    Ok(Json(Stats {
        total_count: total,
        connected_count: connected,
        disconnected_count: total.saturating_sub(connected),
    })
    .into_response())
}

pub(super) async fn tags(State(st): State<AppState>, caller: Caller) -> Res<Json<Vec<String>>> {
    caller.principal.require(Level::Viewer)?;
    Ok(Json(
        st.blocking(|s| s.device_tags())
            .await
            .map_err(store_err("device"))?,
    ))
}

pub(super) async fn get(
    State(st): State<AppState>,
    caller: Caller,
    Path(guid): Path<String>,
) -> Res<Json<DeviceView>> {
    caller.principal.require(Level::Viewer)?;
    let guid = validate::guid(&guid)?;
    let d = st
        .blocking(move |s| s.device(&guid))
        .await
        .map_err(store_err("device"))?;
    Ok(Json(DeviceView::new(&d, st.amt.uses_database())))
}

/// `POST /devices` (create or update, MPS's upsert) and `PATCH /devices`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct DeviceBody {
    guid: String,
    #[serde(default)]
    hostname: Option<String>,
    #[serde(default)]
    friendly_name: Option<String>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default, rename = "mpsusername")]
    mps_username: Option<String>,
    #[serde(default)]
    tenant_id: Option<String>,
    #[serde(default)]
    dns_suffix: Option<String>,
    #[serde(default)]
    device_info: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, rename = "mpspassword")]
    mps_password: Option<Zeroizing<String>>,
}

/// The device, with its MPS password when Rampart generated it (shown once).
#[derive(Debug, Serialize)]
pub(super) struct Saved {
    #[serde(flatten)]
    device: DeviceView,
    #[serde(rename = "mpspassword", skip_serializing_if = "Option::is_none")]
    mps_password: Option<Zeroizing<String>>,
}

/// The shortest and longest MPS password accepted.
const MPS_PASSWORD_LEN: std::ops::RangeInclusive<usize> = 8..=256;

struct Checked {
    guid: String,
    device_info: Option<String>,
    tags: Option<Vec<String>>,
}

fn check(b: &DeviceBody) -> Res<Checked> {
    let guid = validate::guid(&b.guid)?;
    for (field, v, max) in [
        ("hostname", &b.hostname, validate::MAX_TEXT),
        ("friendlyName", &b.friendly_name, validate::MAX_TEXT),
        ("tenantId", &b.tenant_id, validate::MAX_NAME),
        ("dnsSuffix", &b.dns_suffix, validate::MAX_TEXT),
    ] {
        if let Some(v) = v {
            validate::text(field, v, max)?;
        }
    }
    if let Some(u) = &b.mps_username {
        validate::required_text("mpsusername", u, validate::MAX_NAME)?;
        if u.contains(char::is_whitespace) {
            return Err(ApiError::bad_request(
                "invalid_value",
                "`mpsusername` must not contain spaces",
            ));
        }
    }
    if let Some(p) = &b.mps_password
        && (!MPS_PASSWORD_LEN.contains(&p.len()) || p.chars().any(|c| c.is_control()))
    {
        return Err(ApiError::bad_request(
            "invalid_value",
            "`mpspassword` is 8 to 256 bytes without control characters",
        ));
    }
    let device_info = match &b.device_info {
        None => None,
        Some(m) => {
            let text = serde_json::to_string(m).map_err(ApiError::internal)?;
            if text.len() > validate::MAX_DEVICE_INFO {
                return Err(ApiError::bad_request(
                    "invalid_value",
                    format!(
                        "`deviceInfo` is at most {} bytes",
                        validate::MAX_DEVICE_INFO
                    ),
                ));
            }
            Some(text)
        }
    };
    let tags = b.tags.as_deref().map(validate::tags).transpose()?;
    Ok(Checked {
        guid,
        device_info,
        tags,
    })
}

pub(super) async fn upsert(
    State(st): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<DeviceBody>,
) -> Res<(StatusCode, Json<Saved>)> {
    caller.principal.require(Level::Operator)?;
    let c = check(&b)?;
    let g = c.guid.clone();
    let exists = st
        .blocking(move |s| match s.device(&g) {
            Ok(_) => Ok(true),
            Err(rampart_store::StoreError::NotFound) => Ok(false),
            Err(e) => Err(e),
        })
        .await
        .map_err(store_err("device"))?;
    if exists {
        let device = apply_update(&st, &caller, b, c).await?;
        return Ok((StatusCode::OK, Json(device)));
    }
    let Some(mps_username) = b.mps_username else {
        return Err(ApiError::bad_request(
            "missing_field",
            "`mpsusername` is required for a new device",
        ));
    };
    let (secret, generated) = match b.mps_password {
        Some(p) => (p, false),
        None => (
            generate::machine_secret().map_err(ApiError::internal)?,
            true,
        ),
    };
    let new = NewDevice {
        guid: c.guid,
        hostname: b.hostname,
        friendly_name: b.friendly_name,
        tags: c.tags.unwrap_or_default(),
        tenant_id: b.tenant_id.unwrap_or_default(),
        dns_suffix: b.dns_suffix,
        mps_username,
        mps_digest: Some(cred::digest(
            &st.keys.credential,
            cred::DOMAIN_DEVICE,
            secret.as_bytes(),
        )),
        device_info: c.device_info,
    };
    let now = now_ms();
    let d = st
        .blocking(move |s| s.create_device(&new, now))
        .await
        .map_err(store_err("device"))?;
    st.audit_change(&caller, "device.create", d.guid.clone(), None)
        .await;
    Ok((
        StatusCode::CREATED,
        Json(Saved {
            device: DeviceView::new(&d, st.amt.uses_database()),
            mps_password: generated.then_some(secret),
        }),
    ))
}

async fn apply_update(st: &AppState, caller: &Caller, b: DeviceBody, c: Checked) -> Res<Saved> {
    let mut changed = Vec::new();
    let mut u = DeviceUpdate::default();
    if let Some(v) = b.hostname {
        u.hostname = Some(Some(v));
        changed.push("hostname");
    }
    if let Some(v) = b.friendly_name {
        u.friendly_name = Some(Some(v));
        changed.push("friendlyName");
    }
    if let Some(v) = c.tags {
        u.tags = Some(v);
        changed.push("tags");
    }
    if let Some(v) = b.mps_username {
        u.mps_username = Some(v);
        changed.push("mpsusername");
    }
    if let Some(v) = b.tenant_id {
        u.tenant_id = Some(v);
        changed.push("tenantId");
    }
    if let Some(v) = b.dns_suffix {
        u.dns_suffix = Some(Some(v));
        changed.push("dnsSuffix");
    }
    if let Some(v) = c.device_info {
        u.device_info = Some(Some(v));
        changed.push("deviceInfo");
    }
    if let Some(p) = &b.mps_password {
        u.mps_digest = Some(Some(cred::digest(
            &st.keys.credential,
            cred::DOMAIN_DEVICE,
            p.as_bytes(),
        )));
        changed.push("mpspassword");
    }
    let now = now_ms();
    let guid = c.guid;
    let d = st
        .blocking(move |s| s.update_device(&guid, &u, now))
        .await
        .map_err(store_err("device"))?;
    st.audit_change(
        caller,
        "device.update",
        d.guid.clone(),
        Some(format!("fields={}", changed.join(","))),
    )
    .await;
    Ok(Saved {
        device: DeviceView::new(&d, st.amt.uses_database()),
        mps_password: None,
    })
}

pub(super) async fn patch(
    State(st): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<DeviceBody>,
) -> Res<Json<Saved>> {
    caller.principal.require(Level::Operator)?;
    let c = check(&b)?;
    Ok(Json(apply_update(&st, &caller, b, c).await?))
}

/// `DELETE /devices/{guid}` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeleteQuery {
    #[serde(rename = "isSecretToBeDeleted")]
    delete_secret: Option<bool>,
}

pub(super) async fn remove(
    State(st): State<AppState>,
    caller: Caller,
    Path(guid): Path<String>,
    Q(q): Q<DeleteQuery>,
) -> Res<StatusCode> {
    caller.principal.require(Level::Operator)?;
    let guid = validate::guid(&guid)?;
    let g = guid.clone();
    st.blocking(move |s| s.device(&g))
        .await
        .map_err(store_err("device"))?;
    // The secret goes first: if the secret store fails, the device is still listed and the
    // request can be retried, instead of leaving an orphaned secret behind.
    if q.delete_secret == Some(true) {
        let amt = st.amt.clone();
        let g = guid.clone();
        tokio::task::spawn_blocking(move || amt.delete(&g))
            .await
            .map_err(ApiError::internal)?
            .map_err(secret_store_failed)?;
    }
    let g = guid.clone();
    st.blocking(move |s| s.delete_device(&g))
        .await
        .map_err(store_err("device"))?;
    st.amt_client.forget(&guid);
    st.audit_change(&caller, "device.delete", guid, None).await;
    Ok(StatusCode::NO_CONTENT)
}

/// MPS's answer to a disconnect.
#[derive(Debug, Serialize)]
pub(super) struct Disconnected {
    success: u16,
    description: String,
}

/// `DELETE /devices/disconnect/{guid}`: closes the device's CIRA tunnel. Every connected data
/// plane is told (`KICK`); the one holding the tunnel sends DISCONNECT and closes it, and its
/// disconnect reaches the device registry within a moment. A device recorded as connected
/// while no data plane is linked is stale, and is marked disconnected here.
pub(super) async fn disconnect(
    State(st): State<AppState>,
    caller: Caller,
    Path(guid): Path<String>,
) -> Res<Json<Disconnected>> {
    caller.principal.require(Level::Operator)?;
    let guid = validate::guid(&guid)?;
    let g = guid.clone();
    let d = st
        .blocking(move |s| s.device(&g))
        .await
        .map_err(store_err("device"))?;
    if !d.connection.connected {
        // MPS's words.
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_connected",
            "Device not found/connected. Please connect again using CIRA.",
        ));
    }
    let node = d.connection.node.clone().unwrap_or_default();
    let dataplanes = st.feed.kick(&guid);
    if dataplanes == 0 {
        let mut stale = d.connection;
        stale.connected = false;
        stale.last_disconnected = Some(now_ms());
        let g = guid.clone();
        st.blocking(move |s| s.set_device_connection(&g, &stale))
            .await
            .map_err(store_err("device"))?;
    }
    st.audit_change(
        &caller,
        "device.disconnect",
        guid.clone(),
        Some(format!("node={node} dataplanes={dataplanes}")),
    )
    .await;
    Ok(Json(Disconnected {
        success: 200,
        description: format!("CIRA connection disconnected : {guid}"),
    }))
}

/// 502 for a failing secret store; the detail goes to the log, not to the client.
pub(super) fn secret_store_failed(e: rampart_credentials::AmtSecretError) -> ApiError {
    tracing::error!(message = "Secret store failed.", error = %e);
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "secret_store_failed",
        "the secret store failed; see the control plane's log",
    )
}

/// `PUT /devices/{guid}/amt-password`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AmtPassword {
    password: Zeroizing<String>,
}

pub(super) async fn set_amt_password(
    State(st): State<AppState>,
    caller: Caller,
    Path(guid): Path<String>,
    JsonBody(b): JsonBody<AmtPassword>,
) -> Res<StatusCode> {
    caller.principal.require(Level::Operator)?;
    let guid = validate::guid(&guid)?;
    // AMT's own rule: 8 to 32 characters (it checks complexity itself when the password is set).
    if !(8..=32).contains(&b.password.chars().count()) || b.password.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_value",
            "an AMT password is 8 to 32 characters without control characters",
        ));
    }
    let g = guid.clone();
    st.blocking(move |s| s.device(&g))
        .await
        .map_err(store_err("device"))?;
    let amt = st.amt.clone();
    let g = guid.clone();
    let blob = tokio::task::spawn_blocking(move || amt.store(&g, &b.password))
        .await
        .map_err(ApiError::internal)?
        .map_err(secret_store_failed)?;
    let u = DeviceUpdate {
        amt_password: Some(blob),
        ..DeviceUpdate::default()
    };
    let now = now_ms();
    let g = guid.clone();
    st.blocking(move |s| s.update_device(&g, &u, now))
        .await
        .map_err(store_err("device"))?;
    // The digest state was for the old password.
    st.amt_client.forget(&guid);
    st.audit_change(&caller, "device.amt_password", guid, None)
        .await;
    Ok(StatusCode::NO_CONTENT)
}
