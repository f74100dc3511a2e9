//! `/amt/*`: MPS's device actions through the CIRA tunnel (WS-MAN, see [`crate::amt`]), with
//! MPS's paths and payloads so existing MPS clients work.
//!
//! Reads need `viewer`, actions (`power/action`, `power/bootOptions`, `features` POST) need
//! `operator` and are audited with their outcome. The device must be on the allowlist, hold a
//! tunnel and have an AMT password stored; the password is decrypted here, used for the digest,
//! and never leaves the control plane.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rampart_store::AuditEvent;
use rampart_store::Outcome;
use rampart_wsman::CallError;
use rampart_wsman::amt::{AmtError, Request, UserConsent};
use serde::Deserialize;
use serde_json::Value;

use super::devices::Q;
use super::error::ApiError;
use super::extract::{Caller, JsonBody, Level};
use super::{AppState, Res, now_ms, store_err, validate};
use crate::amt::AmtCallError;

/// Time limit of one route, from the request's arrival (MPS bounds only `power/state`, at
/// 10 s); below the front's `upstream_timeout_secs` default (30 s), so the answer says why.
const LIMIT: Duration = Duration::from_secs(25);
/// `power/state`'s limit, as MPS's.
const POWER_STATE_LIMIT: Duration = Duration::from_secs(10);

/// Runs `req` on `guid` for `caller`; actions are audited as `action`.
async fn run(
    st: &AppState,
    caller: &Caller,
    guid: &str,
    req: Request,
    limit: Duration,
    action: Option<&'static str>,
) -> Res<Json<Value>> {
    let deadline = tokio::time::Instant::now() + limit;
    let level = if action.is_some() {
        Level::Operator
    } else {
        Level::Viewer
    };
    caller.principal.require(level)?;
    let guid = validate::guid(guid)?;
    req.validate().map_err(amt_error)?;
    let g = guid.clone();
    let device = st
        .blocking(move |s| s.device(&g))
        .await
        .map_err(store_err("device"))?;
    if !device.connection.connected {
        return Err(not_connected());
    }
    let amt = st.amt.clone();
    let g = guid.clone();
    let blob = device.amt_password.clone();
    let password = tokio::task::spawn_blocking(move || amt.load(&g, blob.as_deref()))
        .await
        .map_err(ApiError::internal)?
        .map_err(super::devices::secret_store_failed)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "amt_password_missing",
                "no AMT password is stored for this device (PUT /devices/{guid}/amt-password)",
            )
        })?;
    let what = format!("{req:?}");
    // The operation and its audit record run on their own task: a client that goes away (or
    // the front giving up) must not leave an action done and unaudited.
    let task_state = st.clone();
    let actor = caller.principal.actor();
    let source = caller.source.clone();
    let g = guid.clone();
    let task = tokio::spawn(async move {
        let st = task_state;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let result = st.amt_client.run(&g, password.as_bytes(), req, left).await;
        drop(password);
        if let Some(action) = action {
            let (outcome, detail) = match &result {
                Ok(_) => (Outcome::Success, what),
                Err(e) => (Outcome::Failure, format!("{what}: {e}")),
            };
            st.audit(AuditEvent {
                id: 0,
                time: now_ms(),
                actor,
                source,
                action: action.to_owned(),
                object: Some(g),
                outcome,
                detail: Some(detail),
            })
            .await;
        }
        result
    });
    match task.await.map_err(ApiError::internal)? {
        Ok(v) => Ok(Json(v)),
        Err(e) => Err(call_error(&guid, e)),
    }
}

fn not_connected() -> ApiError {
    // MPS's words.
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_connected",
        "Device not found/connected. Please connect again using CIRA.",
    )
}

fn amt_error(e: AmtError) -> ApiError {
    match e {
        AmtError::InvalidArgument(why) => ApiError::bad_request("invalid_value", why),
        AmtError::NotSupported(why) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "not_supported",
            format!("not supported by the device: {why}"),
        ),
        other => ApiError::new(StatusCode::BAD_GATEWAY, "amt_error", other.to_string()),
    }
}

/// The HTTP answer for a failed operation; the cause goes to the log.
fn call_error(guid: &str, e: AmtCallError) -> ApiError {
    tracing::info!(message = "AMT operation failed.", guid, error = %e);
    match e {
        AmtCallError::NotConnected => not_connected(),
        AmtCallError::Busy => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "device_busy",
            "too many operations on this device at once; try again",
        ),
        AmtCallError::Timeout => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "device_timeout",
            "the device did not answer in time",
        ),
        AmtCallError::Refused { code, .. } => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "channel_refused",
            format!("the device's tunnel refused the channel ({code})"),
        ),
        AmtCallError::Io(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the data plane's channel service is not reachable",
        ),
        AmtCallError::Call(CallError::Unauthorized) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "amt_unauthorized",
            "the device refused the stored AMT password",
        ),
        AmtCallError::Call(other) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "amt_error", other.to_string())
        }
        AmtCallError::Amt(e) => amt_error(e),
    }
}

pub(super) async fn version(
    State(st): State<AppState>,
    caller: Caller,
    Path(guid): Path<String>,
) -> Res<Json<Value>> {
    run(&st, &caller, &guid, Request::Version, LIMIT, None).await
}

pub(super) async fn general_settings(
    State(st): State<AppState>,
    caller: Caller,
    Path(guid): Path<String>,
) -> Res<Json<Value>> {
    run(&st, &caller, &guid, Request::GeneralSettings, LIMIT, None).await
}

pub(super) async fn hardware_info(
    State(st): State<AppState>,
    caller: Caller,
    Path(guid): Path<String>,
) -> Res<Json<Value>> {
    run(&st, &caller, &guid, Request::HardwareInfo, LIMIT, None).await
}

pub(super) async fn power_state(
    State(st): State<AppState>,
    caller: Caller,
    Path(guid): Path<String>,
) -> Res<Json<Value>> {
    let req = Request::PowerState;
    run(&st, &caller, &guid, req, POWER_STATE_LIMIT, None).await
}

pub(super) async fn power_capabilities(
    State(st): State<AppState>,
    caller: Caller,
    Path(guid): Path<String>,
) -> Res<Json<Value>> {
    run(&st, &caller, &guid, Request::PowerCapabilities, LIMIT, None).await
}

/// `POST power/action`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PowerAction {
    action: u16,
}

pub(super) async fn power_action(
    State(st): State<AppState>,
    caller: Caller,
    Path(guid): Path<String>,
    JsonBody(b): JsonBody<PowerAction>,
) -> Res<Json<Value>> {
    let req = Request::PowerAction { action: b.action };
    run(&st, &caller, &guid, req, LIMIT, Some("amt.power_action")).await
}

/// `POST power/bootOptions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct BootOptions {
    action: u16,
    #[serde(rename = "useSOL", default)]
    use_sol: bool,
}

pub(super) async fn boot_options(
    State(st): State<AppState>,
    caller: Caller,
    Path(guid): Path<String>,
    JsonBody(b): JsonBody<BootOptions>,
) -> Res<Json<Value>> {
    let req = Request::BootOptions {
        action: b.action,
        use_sol: b.use_sol,
    };
    run(&st, &caller, &guid, req, LIMIT, Some("amt.boot_options")).await
}

pub(super) async fn features_get(
    State(st): State<AppState>,
    caller: Caller,
    Path(guid): Path<String>,
) -> Res<Json<Value>> {
    run(&st, &caller, &guid, Request::FeaturesGet, LIMIT, None).await
}

/// `POST features`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct Features {
    user_consent: String,
    #[serde(rename = "enableSOL")]
    enable_sol: bool,
    #[serde(rename = "enableIDER")]
    enable_ider: bool,
    #[serde(rename = "enableKVM")]
    enable_kvm: bool,
    #[serde(default)]
    ocr: Option<bool>,
}

pub(super) async fn features_set(
    State(st): State<AppState>,
    caller: Caller,
    Path(guid): Path<String>,
    JsonBody(b): JsonBody<Features>,
) -> Res<Json<Value>> {
    let user_consent = b.user_consent.parse::<UserConsent>().map_err(amt_error)?;
    // No consent prompt means an operator could take over a desktop unseen: admins only.
    if user_consent == UserConsent::None {
        caller.principal.require(Level::Admin)?;
    }
    let req = Request::FeaturesSet {
        user_consent,
        enable_sol: b.enable_sol,
        enable_ider: b.enable_ider,
        enable_kvm: b.enable_kvm,
        ocr: b.ocr,
    };
    run(&st, &caller, &guid, req, LIMIT, Some("amt.features")).await
}

/// `GET log/audit?startIndex=`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct AuditQuery {
    #[serde(default)]
    start_index: Option<u32>,
}

pub(super) async fn audit_log(
    State(st): State<AppState>,
    caller: Caller,
    Path(guid): Path<String>,
    Q(q): Q<AuditQuery>,
) -> Res<Json<Value>> {
    let req = Request::AuditLog {
        start_index: q.start_index.unwrap_or(0),
    };
    run(&st, &caller, &guid, req, LIMIT, None).await
}

pub(super) async fn event_log(
    State(st): State<AppState>,
    caller: Caller,
    Path(guid): Path<String>,
) -> Res<Json<Value>> {
    run(&st, &caller, &guid, Request::EventLog, LIMIT, None).await
}

/// `GET /authorize/redirection/{guid}`: MPS's `{token}` for one redirection session (KVM, SOL
/// or IDER) on this device, valid for five minutes and for one session.
pub(super) async fn authorize_redirection(
    State(st): State<AppState>,
    caller: Caller,
    Path(guid): Path<String>,
) -> Res<Json<Value>> {
    caller.principal.require(Level::Operator)?;
    let guid = validate::guid(&guid)?;
    let g = guid.clone();
    st.blocking(move |s| s.device(&g))
        .await
        .map_err(store_err("device"))?;
    let actor = caller.principal.actor();
    let Some(token) = st.relay.issue(&guid, &actor, now_ms()) else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many redirection tokens outstanding; try again later",
        ));
    };
    st.audit_change(&caller, "relay.authorize", guid, None)
        .await;
    Ok(Json(serde_json::json!({ "token": token })))
}

/// `GET /devices/redirectstatus/{guid}`: which redirection sessions are open (MPS's shape).
pub(super) async fn redirect_status(
    State(st): State<AppState>,
    caller: Caller,
    Path(guid): Path<String>,
) -> Res<Json<Value>> {
    use crate::relay::Mode;
    caller.principal.require(Level::Viewer)?;
    let guid = validate::guid(&guid)?;
    let g = guid.clone();
    st.blocking(move |s| s.device(&g))
        .await
        .map_err(store_err("device"))?;
    let open = |m| st.relay.is_open(&guid, m);
    Ok(Json(serde_json::json!({
        "isKVMConnected": open(Mode::Kvm),
        "isSOLConnected": open(Mode::Sol),
        "isIDERConnected": open(Mode::Ider),
    })))
}
