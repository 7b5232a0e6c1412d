//! The HTTP API. Handlers parse, delegate and map errors through
//! [`ApiError`]; they hold no logic of their own.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use warden_core::investigation::StateName;
use warden_core::ports::{
    BootstrapError, JobBootstrap, JobRuntime, NewReport, SecretBroker, SecretError, Store,
};
use warden_core::{InvestigationId, Report};

use crate::error::ApiError;
use crate::intake::{IntakeHandle, Submission};
use crate::metrics::Metrics;
use crate::scheduler::{Event, EventSender, credential_hash};

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub runtime: Arc<dyn JobRuntime>,
    pub broker: Option<Arc<dyn SecretBroker>>,
    /// Present when jobs fetch their input over HTTP (Kubernetes runtime).
    pub bootstrap: Option<Arc<dyn JobBootstrap>>,
    /// Present when trust is wired: operators, approvals, outcomes.
    pub trust: Option<Arc<crate::trust::TrustService>>,
    pub intake: IntakeHandle,
    pub metrics: Arc<Metrics>,
    pub events: EventSender,
    pub max_body_bytes: usize,
}

pub fn router(state: AppState) -> Router {
    let limit = state.max_body_bytes;
    Router::new()
        .route("/api/v1/alerts", post(post_alerts))
        .route("/api/v1/incidents", post(post_incident).get(list_incidents))
        .route("/api/v1/investigations", get(list_investigations))
        .route("/api/v1/investigations/{id}", get(get_investigation))
        .route(
            "/api/v1/investigations/{id}/report",
            get(get_report).post(post_report),
        )
        .route("/api/v1/investigations/{id}/logs", get(get_logs))
        .route("/api/v1/investigations/{id}/cancel", post(cancel))
        .route("/api/v1/secrets/{domain}", get(read_secret))
        .route("/api/v1/jobs/bootstrap", post(job_bootstrap))
        .merge(crate::trust_api::routes())
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

fn body(result: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    match result {
        Ok(b) if b.is_empty() => Err(ApiError::BadRequest("request body is empty".into())),
        Ok(b) => Ok(b),
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::TooLarge(limit)),
        Err(r) => Err(ApiError::BadRequest(format!(
            "could not read request body: {}",
            r.body_text()
        ))),
    }
}

fn investigation_id(raw: &str) -> Result<InvestigationId, ApiError> {
    InvestigationId::parse(raw).map_err(ApiError::BadRequest)
}

fn limit(params: &HashMap<String, String>) -> Result<u32, ApiError> {
    match params.get("limit") {
        None => Ok(100),
        Some(l) => match l.parse::<u32>() {
            Ok(n) if (1..=10_000).contains(&n) => Ok(n),
            _ => Err(ApiError::BadRequest(format!(
                "invalid limit {l:?}: expected an integer from 1 to 10000"
            ))),
        },
    }
}

async fn submit(state: &AppState, s: Submission) -> Result<crate::intake::Accepted, ApiError> {
    state.intake.submit(s).await.map_err(ApiError::Internal)
}

fn unique(ids: &[warden_core::IncidentId]) -> Vec<&warden_core::IncidentId> {
    let mut out: Vec<&warden_core::IncidentId> = Vec::new();
    for id in ids {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

async fn post_alerts(
    State(state): State<AppState>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = body(raw, state.max_body_bytes)?;
    let alerts = warden_correlate::parse_alertmanager(&bytes)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let accepted = submit(
        &state,
        Submission {
            alerts,
            title: None,
            topology: Vec::new(),
        },
    )
    .await?;
    Ok(Json(json!({
        "received": accepted.received,
        "deduplicated": accepted.deduplicated,
        "incidents": unique(&accepted.incidents),
    }))
    .into_response())
}

async fn post_incident(
    State(state): State<AppState>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = body(raw, state.max_body_bytes)?;
    let incident = warden_correlate::parse_generic_incident(&bytes, Utc::now())
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let accepted = submit(
        &state,
        Submission {
            alerts: incident.alerts,
            title: Some(incident.title),
            topology: incident.topology,
        },
    )
    .await?;
    let id = accepted
        .incidents
        .first()
        .ok_or_else(|| ApiError::Internal("incident accepted without alerts".into()))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "incident": id,
            "received": accepted.received,
            "deduplicated": accepted.deduplicated,
        })),
    )
        .into_response())
}

async fn list_incidents(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let incidents = state.store.list_incidents(limit(&params)?).await?;
    Ok(Json(json!({ "incidents": incidents })).into_response())
}

async fn list_investigations(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let filter = params
        .get("state")
        .map(|s| StateName::from_str(s).map_err(ApiError::BadRequest))
        .transpose()?;
    let list = state
        .store
        .list_investigations(filter.map(|s| s.0), limit(&params)?)
        .await?;
    Ok(Json(json!({ "investigations": list })).into_response())
}

async fn get_investigation(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = investigation_id(&id)?;
    Ok(Json(state.store.get_investigation(&id).await?).into_response())
}

async fn get_report(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = investigation_id(&id)?;
    let inv = state.store.get_investigation(&id).await?;
    match state.store.get_report(&id).await {
        Ok(report) => Ok(Json(report).into_response()),
        Err(warden_core::ports::StoreError::NotFound(_)) => Err(ApiError::NotFound(format!(
            "investigation {id} has no report (state: {})",
            inv.state.name()
        ))),
        Err(e) => Err(e.into()),
    }
}

fn bearer(headers: &HeaderMap) -> Result<SecretString, ApiError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|t| !t.is_empty())
        .map(|t| SecretString::from(t.to_string()))
        .ok_or_else(|| ApiError::Unauthorized("a bearer credential is required".into()))
}

/// The embedded broker's channel to jobs: a job presents its identity's
/// credential and gets the secret of a domain it was granted. This is the
/// one response that carries a secret value; it is never logged.
async fn read_secret(
    State(state): State<AppState>,
    Path(domain): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let credential = bearer(&headers)?;
    let broker = state
        .broker
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("no secrets backend is configured".into()))?;
    match broker.read(&credential, &domain).await {
        Ok(value) => Ok((
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            value.expose_secret().to_string(),
        )
            .into_response()),
        Err(SecretError::Denied(why)) => Err(ApiError::Forbidden(why)),
        Err(SecretError::NotFound(what)) => Err(ApiError::NotFound(what)),
        Err(SecretError::Unavailable(why)) => Err(ApiError::Unavailable(why)),
        Err(e) => Err(ApiError::Internal(e.to_string())),
    }
}

/// A Kubernetes job's input: the pod presents its projected service-account
/// token and gets, once, the document a local job reads on stdin. Like
/// `read_secret`, the response carries secrets and is never logged.
async fn job_bootstrap(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = bearer(&headers)?;
    let bootstrap = state
        .bootstrap
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("this control plane does not bootstrap jobs".into()))?;
    match bootstrap.claim(&token).await {
        Ok(document) => Ok((
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            document.expose_secret().to_string(),
        )
            .into_response()),
        Err(e @ BootstrapError::Unauthenticated(_)) => Err(ApiError::Unauthorized(e.to_string())),
        Err(e @ BootstrapError::Forbidden(_)) => Err(ApiError::Forbidden(e.to_string())),
        Err(e @ BootstrapError::AlreadyClaimed(_)) => Err(ApiError::Conflict(e.to_string())),
        Err(e @ BootstrapError::Gone(_)) => Err(ApiError::NotFound(e.to_string())),
        Err(e @ BootstrapError::Unavailable(_)) => Err(ApiError::Unavailable(e.to_string())),
        Err(e) => Err(ApiError::Internal(e.to_string())),
    }
}

/// The result path: the job presents its one-time credential.
async fn post_report(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let id = investigation_id(&id)?;
    let hash = credential_hash(bearer(&headers)?.expose_secret());
    let bytes = body(raw, state.max_body_bytes)?;
    let report: Report = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid report: {e}")))?;
    if report.investigation_id != id.as_str() {
        return Err(ApiError::BadRequest(format!(
            "report is for investigation {:?}, not {id}",
            report.investigation_id
        )));
    }
    let inv = state
        .store
        .deliver_report(NewReport {
            investigation: &id,
            credential_hash: hash,
            report: &report,
            at: Utc::now(),
        })
        .await?;
    let _ = state
        .events
        .send(Event::Reported(inv.id.clone(), Box::new(report)));
    Ok((
        StatusCode::OK,
        Json(json!({ "investigation": inv.id, "state": inv.state.name() })),
    )
        .into_response())
}

async fn get_logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = investigation_id(&id)?;
    state.store.get_investigation(&id).await?;
    let text = state
        .runtime
        .logs(&id)
        .await
        .map_err(|e| ApiError::NotFound(format!("no logs for {id}: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = investigation_id(&id)?;
    let inv = state.store.get_investigation(&id).await?;
    if inv.state.is_terminal() {
        return Err(ApiError::Conflict(format!(
            "investigation {id} already ended ({})",
            inv.state.name()
        )));
    }
    let _ = state.events.send(Event::Cancel(id.clone()));
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "investigation": id, "cancelling": true })),
    )
        .into_response())
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

async fn healthz(State(state): State<AppState>) -> Result<Response, ApiError> {
    state
        .store
        .list_investigations(Some("running"), 1)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "health check: store unavailable");
            ApiError::Unavailable("store unavailable".into())
        })?;
    Ok(Json(json!({ "status": "ok" })).into_response())
}
