//! The job entrypoint end to end: JSON on stdin, investigation, delivery to
//! a real in-process HTTP server.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::{Duration, Utc};
use warden_agent::job::{EXIT_BAD_INPUT, EXIT_DELIVERED, EXIT_NOT_DELIVERED};
use warden_agent::{CapturedLog, DeliveryPolicy, run_job_with};
use warden_core::report::Report;

const CREDENTIAL: &str = "one-time-s3cret-7f1c";

/// What the fake control plane saw and how it answers.
#[derive(Default)]
struct Plane {
    calls: AtomicU32,
    /// Answers for the first calls; 200 afterwards.
    script: Vec<StatusCode>,
    reports: Mutex<Vec<Report>>,
    bad_auth: AtomicU32,
}

async fn receive(State(plane): State<Arc<Plane>>, headers: HeaderMap, body: String) -> StatusCode {
    let n = plane.calls.fetch_add(1, Ordering::SeqCst) as usize;
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if auth != format!("Bearer {CREDENTIAL}") {
        plane.bad_auth.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED;
    }
    let status = plane.script.get(n).copied().unwrap_or(StatusCode::OK);
    if status == StatusCode::OK {
        plane
            .reports
            .lock()
            .unwrap()
            .push(serde_json::from_str(&body).unwrap());
    }
    status
}

async fn serve(script: Vec<StatusCode>) -> (String, Arc<Plane>) {
    let plane = Arc::new(Plane {
        script,
        ..Plane::default()
    });
    let app = Router::new()
        .route("/api/v1/investigations/{id}/report", post(receive))
        .with_state(plane.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), plane)
}

fn fast() -> DeliveryPolicy {
    DeliveryPolicy {
        initial_backoff: StdDuration::from_millis(20),
        max_backoff: StdDuration::from_millis(100),
        request_timeout: StdDuration::from_secs(5),
    }
}

fn job_document(
    bundle: &common::Bundle,
    base_url: &str,
    credential: &str,
    deadline_secs: i64,
) -> Vec<u8> {
    let mut input = common::agent_input(
        bundle.path(),
        common::network_path_incident(),
        8,
        Utc::now() + Duration::seconds(deadline_secs),
    );
    input.report_url = format!(
        "{base_url}/api/v1/investigations/{}/report",
        input.investigation_id
    );
    serde_json::to_vec(&serde_json::json!({"input": input, "result_credential": credential}))
        .unwrap()
}

async fn run(document: Vec<u8>) -> (i32, CapturedLog) {
    let captured = CapturedLog::default();
    let code = run_job_with(
        std::io::Cursor::new(document),
        Box::new(captured.clone()),
        &fast(),
    )
    .await;
    (code, captured)
}

#[tokio::test]
async fn the_report_is_delivered_with_the_bearer_credential_after_the_control_plane_recovers() {
    let bundle = common::network_path_bundle();
    let (url, plane) = serve(vec![
        StatusCode::SERVICE_UNAVAILABLE,
        StatusCode::SERVICE_UNAVAILABLE,
    ])
    .await;
    let (code, log) = run(job_document(&bundle, &url, CREDENTIAL, 60)).await;

    assert_eq!(code, EXIT_DELIVERED);
    assert_eq!(plane.calls.load(Ordering::SeqCst), 3);
    assert_eq!(plane.bad_auth.load(Ordering::SeqCst), 0);
    let reports = plane.reports.lock().unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].root_cause.as_ref().unwrap().subject, "fw-core");

    let events = log.events();
    let failures: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "report_delivery_failed")
        .collect();
    assert_eq!(failures.len(), 2);
    assert_eq!(failures[0]["attempt"], 1);
    assert!(failures[0]["error"].as_str().unwrap().contains("503"));
    let delivered = events
        .iter()
        .find(|e| e["event"] == "report_delivered")
        .unwrap();
    assert_eq!(delivered["attempts"], 3);
    assert!(
        events
            .iter()
            .all(|e| e["investigation_id"] == reports[0].investigation_id.as_str())
    );
    assert!(
        !log.text().contains(CREDENTIAL),
        "the credential is never logged"
    );
}

#[tokio::test]
async fn a_refused_credential_stops_delivery_at_once() {
    let bundle = common::network_path_bundle();
    let (url, plane) = serve(Vec::new()).await;
    let (code, log) = run(job_document(&bundle, &url, "wrong-credential", 60)).await;

    assert_eq!(code, EXIT_NOT_DELIVERED);
    assert_eq!(
        plane.calls.load(Ordering::SeqCst),
        1,
        "no retry after a 4xx"
    );
    assert_eq!(plane.bad_auth.load(Ordering::SeqCst), 1);
    let events = log.events();
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "report_delivery_failed" && e["error"] == "HTTP 401")
    );
    assert_eq!(events.last().unwrap()["event"], "failed");
    assert!(!log.text().contains("wrong-credential"));
}

#[tokio::test]
async fn an_unreachable_control_plane_is_retried_until_the_deadline() {
    let bundle = common::network_path_bundle();
    // Bind and drop a listener: nothing accepts on that port any more.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let started = std::time::Instant::now();
    let (code, log) = run(job_document(
        &bundle,
        &format!("http://{addr}"),
        CREDENTIAL,
        3,
    ))
    .await;

    assert_eq!(code, EXIT_NOT_DELIVERED);
    assert!(started.elapsed() < StdDuration::from_secs(10));
    let attempts = log
        .events()
        .iter()
        .filter(|e| e["event"] == "report_delivery_failed")
        .count();
    assert!(
        attempts >= 2,
        "retried on connection errors ({attempts} attempts)"
    );
}

#[tokio::test]
async fn input_that_is_not_a_job_document_exits_with_bad_input() {
    let (code, log) = run(b"{\"input\": 42}".to_vec()).await;
    assert_eq!(code, EXIT_BAD_INPUT);
    assert_eq!(log.events()[0]["event"], "failed");

    let oversized = vec![b' '; (warden_agent::job::MAX_INPUT_BYTES + 1) as usize];
    let (code, log) = run(oversized).await;
    assert_eq!(code, EXIT_BAD_INPUT);
    assert!(log.text().contains("larger than"));
}
