//! The operator endpoints: verdicts, reviews, approvals, denials, the
//! action list and the trust status. Every request carries an operator's
//! bearer credential; the least role each endpoint needs is named on it.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;
use warden_core::{InvestigationId, TrustPhase};
use warden_trust::{Operator, Role};

use crate::api::AppState;
use crate::error::ApiError;
use crate::trust::{TrustError, TrustService, VerdictInput};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/investigations/{id}/verdict", post(verdict))
        .route("/api/v1/investigations/{id}/review", post(review))
        .route("/api/v1/actions", get(list_actions))
        .route("/api/v1/actions/{id}", get(get_action))
        .route("/api/v1/actions/{id}/approve", post(approve))
        .route("/api/v1/actions/{id}/deny", post(deny))
        .route("/api/v1/actions/{id}/rollback", post(rollback))
        .route("/api/v1/trust/status", get(status))
        .route("/api/v1/trust/signoffs", post(sign_off))
}

impl From<TrustError> for ApiError {
    fn from(e: TrustError) -> Self {
        match e {
            TrustError::NotFound(m) => ApiError::NotFound(m),
            TrustError::Conflict(m) | TrustError::Expired(m) => ApiError::Conflict(m),
            TrustError::BadRequest(m) => ApiError::BadRequest(m),
            TrustError::Unauthenticated(m) => ApiError::Unauthorized(m),
            TrustError::Forbidden(m) => ApiError::Forbidden(m),
            TrustError::Unavailable(m) => ApiError::Unavailable(m),
            TrustError::Internal(m) => ApiError::Internal(m),
        }
    }
}

fn service(state: &AppState) -> Result<&Arc<TrustService>, ApiError> {
    state
        .trust
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("trust is not configured on this control plane".into()))
}

/// The operator presenting the request, holding at least `role`.
async fn operator(
    state: &AppState,
    headers: &HeaderMap,
    role: Role,
) -> Result<(Arc<TrustService>, Operator), ApiError> {
    let svc = Arc::clone(service(state)?);
    let credential = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|t| !t.is_empty())
        .map(|t| SecretString::from(t.to_string()))
        .ok_or_else(|| {
            ApiError::Unauthorized("an operator's bearer credential is required".into())
        })?;
    let op = svc.authenticate(&credential).await?;
    op.require(role).map_err(TrustError::from)?;
    Ok((svc, op))
}

fn json_body<T: serde::de::DeserializeOwned>(bytes: &Bytes, what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest(format!("invalid {what}: {e}")))
}

/// An optional JSON body: empty means all defaults.
fn optional_body<T: serde::de::DeserializeOwned + Default>(
    bytes: &Bytes,
    what: &str,
) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        json_body(bytes, what)
    }
}

fn investigation_id(raw: &str) -> Result<InvestigationId, ApiError> {
    InvestigationId::parse(raw).map_err(ApiError::BadRequest)
}

fn action_id(raw: &str) -> Result<&str, ApiError> {
    let ok = raw.len() <= 64
        && raw.starts_with("act-")
        && raw
            .bytes()
            .skip(4)
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(raw)
    } else {
        Err(ApiError::BadRequest(format!(
            "invalid action id {raw:?}: expected act- followed by lowercase letters and digits"
        )))
    }
}

/// `POST /api/v1/investigations/{id}/verdict` (responder+):
/// `{"verdict": "accept"|"reject"|"modify", "subject"?, "statement"?}`.
async fn verdict(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = investigation_id(&id)?;
    let (svc, op) = operator(&state, &headers, Role::Responder).await?;
    let input: VerdictInput = json_body(&body, "verdict")?;
    let outcome = svc.verdict(&op, &id, &input).await?;
    Ok(Json(outcome).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewInput {
    known_root_cause: String,
}

/// `POST /api/v1/investigations/{id}/review` (responder+): scores a
/// shadow report against `{"known_root_cause": "<subject>"}`.
async fn review(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = investigation_id(&id)?;
    let (svc, op) = operator(&state, &headers, Role::Responder).await?;
    let input: ReviewInput = json_body(&body, "review")?;
    let outcome = svc.review(&op, &id, &input.known_root_cause).await?;
    Ok(Json(outcome).into_response())
}

/// `GET /api/v1/actions?investigation=ID` (viewer+).
async fn list_actions(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (svc, _) = operator(&state, &headers, Role::Viewer).await?;
    let filter = params
        .get("investigation")
        .map(|i| investigation_id(i))
        .transpose()?;
    let actions = svc
        .actions(filter.as_ref().map(InvestigationId::as_str))
        .await?;
    Ok(Json(json!({ "actions": actions })).into_response())
}

/// `GET /api/v1/actions/{id}` (viewer+).
async fn get_action(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = action_id(&id)?;
    let (svc, _) = operator(&state, &headers, Role::Viewer).await?;
    Ok(Json(svc.action(id).await?).into_response())
}

/// `POST /api/v1/actions/{id}/approve` (approver+). The action then runs
/// in the background; poll the action for its result.
async fn approve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = action_id(&id)?.to_string();
    let (svc, op) = operator(&state, &headers, Role::Approver).await?;
    let approved = svc.approve(&op, &id, Utc::now()).await?;
    let runner = Arc::clone(&svc);
    tokio::spawn(async move {
        if let Err(e) = runner.execute(&id, Utc::now()).await {
            tracing::warn!(action = %id, error = %e, "approved action did not run");
        }
    });
    Ok(Json(approved).into_response())
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DenyInput {
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /api/v1/actions/{id}/deny` (approver+), optional `{"reason": ".."}`.
async fn deny(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = action_id(&id)?;
    let (svc, op) = operator(&state, &headers, Role::Approver).await?;
    let input: DenyInput = optional_body(&body, "denial")?;
    Ok(Json(svc.deny(&op, id, input.reason, Utc::now()).await?).into_response())
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackInput {
    #[serde(default)]
    detail: Option<String>,
}

/// `POST /api/v1/actions/{id}/rollback` (approver+): the executed action
/// was rolled back; recorded as a rolled_back remediation outcome.
async fn rollback(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = action_id(&id)?;
    let (svc, op) = operator(&state, &headers, Role::Approver).await?;
    let input: RollbackInput = optional_body(&body, "rollback report")?;
    Ok(Json(
        svc.report_rollback(&op, id, input.detail, Utc::now())
            .await?,
    )
    .into_response())
}

/// `GET /api/v1/trust/status[?environment=ENV]` (viewer+).
async fn status(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (svc, _) = operator(&state, &headers, Role::Viewer).await?;
    let status = svc
        .status(params.get("environment").map(String::as_str))
        .await?;
    Ok(Json(json!({ "environment": svc.environment(), "environments": status })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignoffInput {
    to_phase: TrustPhase,
    role: String,
}

/// `POST /api/v1/trust/signoffs` (approver+, holding the sign-off role):
/// `{"to_phase": "autonomous", "role": "operations_lead"}`.
async fn sign_off(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (svc, op) = operator(&state, &headers, Role::Approver).await?;
    let input: SignoffInput = json_body(&body, "sign-off")?;
    Ok(Json(svc.sign_off(&op, input.to_phase, &input.role).await?).into_response())
}
