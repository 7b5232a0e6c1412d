#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Every endpoint answers bad input with a 4xx naming the problem, and
//! nothing is stored or started.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use warden_control::{Config, ControlPlane, SchedulerEvents};
use warden_runtime_local::{LocalRuntime, LocalRuntimeConfig};
use warden_store::SqliteStore;

struct Harness {
    plane: ControlPlane,
    client: reqwest::Client,
    store: Arc<SqliteStore>,
    _dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    let (tx, rx) = warden_control::scheduler::channel();
    let runtime = LocalRuntime::new(
        LocalRuntimeConfig::new(dir.path(), "/bin/true", vec![]),
        Arc::new(SchedulerEvents(tx.clone())),
    )
    .unwrap();
    let mut config = Config::default();
    config.server.max_body_bytes = 64 * 1024;
    config.correlation.group_wait_ms = 0;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plane = ControlPlane::start(
        config,
        store.clone(),
        Arc::new(runtime),
        None,
        (tx, rx),
        listener,
    )
    .await
    .unwrap();
    Harness {
        plane,
        client: reqwest::Client::new(),
        store,
        _dir: dir,
    }
}

impl Harness {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.plane.url())
    }

    async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
        let r = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self.client.get(self.url(path)).send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn assert_nothing_stored(&self) {
        let (s, v) = self.get("/api/v1/incidents").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["incidents"].as_array().unwrap().len(), 0, "{v}");
        let (_, v) = self.get("/api/v1/investigations").await;
        assert_eq!(v["investigations"].as_array().unwrap().len(), 0, "{v}");
    }
}

fn message(v: &Value) -> String {
    v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn webhook(alerts: Value) -> Value {
    json!({
        "version": "4", "groupKey": "{}:{alertname=\"A\"}", "truncatedAlerts": 0, "status": "firing",
        "receiver": "warden", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://alertmanager", "alerts": alerts
    })
}

fn alert(name: &str) -> Value {
    json!({
        "status": "firing", "labels": {"alertname": name, "service": "checkout"},
        "annotations": {}, "startsAt": "2026-11-28T02:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "", "fingerprint": format!("{:016x}", name.len())
    })
}

#[tokio::test]
async fn malformed_webhook_bodies_are_refused_with_the_problem_named_and_nothing_stored() {
    let h = harness().await;
    let cases: Vec<(String, StatusCode, &str)> = vec![
        ("{\"version\":\"4\",".into(), StatusCode::BAD_REQUEST, "malformed JSON"),
        ("".into(), StatusCode::BAD_REQUEST, "empty"),
        (
            webhook(json!([{"status": "firing", "labels": {"alertname": "A"}, "startsAt": 17}])).to_string(),
            StatusCode::BAD_REQUEST,
            "alerts[0].startsAt",
        ),
        (
            json!({"version": "4"}).to_string(),
            StatusCode::BAD_REQUEST,
            "alerts",
        ),
        (
            json!({"version": "3", "alerts": [alert("A")]}).to_string(),
            StatusCode::BAD_REQUEST,
            "version",
        ),
        (
            webhook(json!([{"labels": {"alertname": "A"}, "startsAt": "2026-11-28T02:00:00Z"}])).to_string(),
            StatusCode::BAD_REQUEST,
            "status",
        ),
        (
            webhook(json!([{"status": "on fire", "labels": {"alertname": "A"}, "startsAt": "2026-11-28T02:00:00Z"}]))
                .to_string(),
            StatusCode::BAD_REQUEST,
            "alerts[0].status",
        ),
        (
            webhook(json!([{"status": "firing", "labels": {}, "startsAt": "2026-11-28T02:00:00Z"}])).to_string(),
            StatusCode::BAD_REQUEST,
            "alerts[0].labels",
        ),
        (
            webhook(json!([{"status": "firing", "labels": {"alertname": "A"}, "startsAt": "yesterday"}])).to_string(),
            StatusCode::BAD_REQUEST,
            "alerts[0].startsAt",
        ),
        (
            json!([1, 2, 3]).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
    ];
    for (body, status, needle) in cases {
        let (s, v) = h.post_raw("/api/v1/alerts", body.clone()).await;
        assert_eq!(s, status, "{body} -> {v}");
        assert!(
            message(&v).contains(needle),
            "{body}: message {:?} should name {needle:?}",
            message(&v)
        );
    }
    let huge = webhook(json!(
        (0..2000)
            .map(|i| alert(&format!("A{i}")))
            .collect::<Vec<_>>()
    ))
    .to_string();
    assert!(huge.len() > 64 * 1024);
    let (s, v) = h.post_raw("/api/v1/alerts", huge).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(message(&v).contains("65536"), "{v}");
    h.assert_nothing_stored().await;
}

#[tokio::test]
async fn a_duplicate_webhook_updates_the_same_alerts() {
    let h = harness().await;
    let body = webhook(json!([alert("A"), alert("BB")])).to_string();
    let (s, first) = h.post_raw("/api/v1/alerts", body.clone()).await;
    assert_eq!(s, StatusCode::OK, "{first}");
    assert_eq!(first["deduplicated"], 0);
    let (s, second) = h.post_raw("/api/v1/alerts", body).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(second["deduplicated"], 2);
    assert_eq!(first["incidents"], second["incidents"]);
    let (_, v) = h.get("/api/v1/incidents").await;
    let incidents = v["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["alerts"].as_array().unwrap().len(), 2);
    let metrics = h
        .client
        .get(h.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("warden_alerts_received_total 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("warden_alerts_deduplicated_total 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn malformed_generic_incidents_are_refused() {
    let h = harness().await;
    let cases = vec![
        (json!({"alerts": [{"labels": {"a": "b"}}]}), "title"),
        (json!({"title": "t", "alerts": []}), "alerts"),
        (
            json!({"title": "t", "alerts": [{"labels": {"a": "b"}}], "priority": 1}),
            "priority",
        ),
        (
            json!({"title": 5, "alerts": [{"labels": {"a": "b"}}]}),
            "title",
        ),
        (
            json!({"title": "t", "alerts": [{"labels": {"a": 1}}]}),
            "alerts[0].labels",
        ),
        (
            json!({"title": "t", "alerts": [{"labels": {"a": "b"}}], "topology": [{"from": "x"}]}),
            "topology[0]",
        ),
    ];
    for (body, needle) in cases {
        let (s, v) = h.post_raw("/api/v1/incidents", body.to_string()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body} -> {v}");
        assert!(
            message(&v).contains(needle),
            "{body}: {:?} should name {needle:?}",
            message(&v)
        );
    }
    let (s, _) = h.post_raw("/api/v1/incidents", "x".repeat(70 * 1024)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    h.assert_nothing_stored().await;
}

#[tokio::test]
async fn bad_queries_and_ids_are_named() {
    let h = harness().await;
    let (s, v) = h.get("/api/v1/investigations?state=exploded").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        message(&v).contains("exploded") && message(&v).contains("timed_out"),
        "{v}"
    );
    let (s, v) = h.get("/api/v1/investigations?limit=lots").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(message(&v).contains("limit"), "{v}");
    let (s, v) = h.get("/api/v1/incidents?limit=0").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    for path in ["", "/report", "/logs"] {
        let (s, v) = h
            .get(&format!("/api/v1/investigations/inv-..%2F..%2Fetc{path}"))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {v}");
        let (s, v) = h
            .get(&format!(
                "/api/v1/investigations/inv-00000000000000000000000000{path}"
            ))
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}: {v}");
    }
    let (s, v) = h.get("/api/v1/nothing-here").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(message(&v).contains("no such endpoint"));
}

#[tokio::test]
async fn a_report_without_the_right_credential_is_refused() {
    let h = harness().await;
    let (s, v) = h
        .post_raw(
            "/api/v1/incidents",
            json!({"title": "t", "alerts": [{"labels": {"alertname": "A"}}]}).to_string(),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // Wait for the investigation (its job, /bin/true, exits without a report).
    let mut id = String::new();
    for _ in 0..100 {
        let (_, v) = h.get("/api/v1/investigations").await;
        if let Some(i) = v["investigations"][0]["id"].as_str() {
            id = i.to_string();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(!id.is_empty());
    let path = format!("/api/v1/investigations/{id}/report");
    let report = json!({"investigation_id": id});
    let r = h
        .client
        .post(h.url(&path))
        .json(&report)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = h
        .client
        .post(h.url(&path))
        .bearer_auth("guess")
        .json(&report)
        .send()
        .await
        .unwrap();
    assert!(r.status() == StatusCode::BAD_REQUEST || r.status() == StatusCode::UNAUTHORIZED);
    let r = h
        .client
        .post(h.url(&path))
        .bearer_auth("guess")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (s, v) = h.get(&path).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert!(message(&v).contains("no report"), "{v}");
}

#[tokio::test]
async fn an_internal_failure_is_a_500_that_leaks_nothing() {
    let h = harness().await;
    h.store.close().await;
    let (s, v) = h.get("/api/v1/incidents").await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(message(&v), "internal error");
    let (s, _) = h.get("/healthz").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
}
