//! The job entrypoint with `agent.reasoner: llm`: the input names the LLM
//! settings but holds no key; the key is the investigation's granted
//! `llm-inference` secret, read from the (embedded) secrets broker with the
//! job's own identity, and reaches the LLM server only as its bearer token.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use common::*;
use serde_json::{Value, json};
use warden_agent::DeliveryPolicy;
use warden_llm::testing::ScriptedServer;
use warden_llm::testing::model::{Quirks, by_the_book};

const IDENTITY: &str = "job-identity-credential-77";
const RESULT: &str = "result-credential-31";

#[derive(Clone, Default)]
struct ControlPlane {
    reports: Arc<Mutex<Vec<Value>>>,
    secret_reads: Arc<Mutex<Vec<String>>>,
}

async fn secret(
    State(cp): State<ControlPlane>,
    Path(domain): Path<String>,
    headers: HeaderMap,
) -> Result<String, StatusCode> {
    cp.secret_reads.lock().unwrap().push(domain.clone());
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {IDENTITY}")) {
        return Err(StatusCode::FORBIDDEN);
    }
    match domain.as_str() {
        "llm-inference" => Ok(API_KEY.to_string()),
        _ => Err(StatusCode::NOT_FOUND),
    }
}

async fn report(
    State(cp): State<ControlPlane>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {RESULT}")) {
        return StatusCode::FORBIDDEN;
    }
    cp.reports
        .lock()
        .unwrap()
        .push(serde_json::from_slice(&body).unwrap());
    StatusCode::OK
}

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_job_reads_the_key_from_the_broker_and_reasons_with_the_llm() {
    crypto();
    let demo = demo();
    let llm = ScriptedServer::start().await.unwrap();
    llm.respond_with(by_the_book(Quirks::default()));

    let cp = ControlPlane::default();
    let app = Router::new()
        .route("/api/v1/secrets/{domain}", get(secret))
        .route("/report", post(report))
        .with_state(cp.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let mut input = demo.input.clone();
    input.report_url = format!("http://{addr}/report");
    input.llm = Some(settings(&llm));
    let doc = json!({
        "input": input,
        "result_credential": RESULT,
        "identity": {
            "backend": "embedded",
            "address": format!("http://{addr}"),
            "accessor": "acc-1",
            "domains": [{"name": "llm-inference", "path": "agent/data/llm/inference"}],
            "credential": IDENTITY,
        },
    })
    .to_string();
    assert!(
        !doc.contains(API_KEY),
        "the key is not part of the job input"
    );

    let sink = Sink::default();
    let code = warden_agent::run_job_with(
        doc.as_bytes(),
        Box::new(sink.clone()),
        &DeliveryPolicy::default(),
    )
    .await;
    server.abort();
    let log = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    assert_eq!(code, 0, "{log}");

    assert_eq!(*cp.secret_reads.lock().unwrap(), ["llm-inference"]);
    let reports = cp.reports.lock().unwrap().clone();
    assert_eq!(reports.len(), 1);
    let report = &reports[0];
    assert_eq!(report["reasoner"], format!("llm:{MODEL}"));
    assert_eq!(
        report["root_cause"]["subject"],
        demo.scenario.expected().root_cause_subject
    );
    assert!(!report["cost"]["llm_calls"].as_array().unwrap().is_empty());

    let requests = llm.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {API_KEY}").as_str())
        );
        assert!(!r.body.contains(API_KEY));
    }
    assert!(!report.to_string().contains(API_KEY));
    assert!(!log.contains(API_KEY), "{log}");
    assert!(log.contains("secret_read"), "{log}");
}
