#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The Kubernetes connector against the in-process fake API server
//! (`warden-kube-fake`), which answers like a real 1.33 API server.

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use warden_connectors::KubernetesSource;
use warden_core::agent_input::KubernetesSourceConfig;
use warden_core::ports::{DataError, DataSource, Query, QueryResult};
use warden_core::telemetry::{LogLine, TimeRange};
use warden_kube_fake::{ContainerState, FakeApiServer, ServiceAccountIdentity};

const NS: &str = "shop";

fn config(extra: Value) -> KubernetesSourceConfig {
    let mut v = json!({"namespaces": [NS], "domains": ["application"], "timeout_seconds": 5});
    if let (Some(base), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
        base.extend(extra.clone());
    }
    serde_json::from_value(v).unwrap()
}

fn window() -> TimeRange {
    TimeRange {
        start: Utc::now() - Duration::hours(1),
        end: Utc::now() + Duration::minutes(5),
    }
}

fn labels() -> Value {
    json!({"app.kubernetes.io/name": "checkout"})
}

/// A Deployment at revision 2 with its ReplicaSet and one pod whose
/// container was OOMKilled once, a BackOff event, a ConfigMap, and a pod
/// of another service in another namespace.
async fn cluster() -> (FakeApiServer, String) {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let fake = FakeApiServer::start().await.unwrap();
    fake.ensure_namespace(NS).unwrap();
    fake.ensure_namespace("other").unwrap();
    let template = json!({
        "metadata": {"labels": labels()},
        "spec": {"containers": [{"name": "app", "image": "shop/checkout:1.4.2"}]}
    });
    let deployment = fake
        .create(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "checkout", "namespace": NS, "labels": labels()},
            "spec": {"selector": {"matchLabels": labels()}, "template": template}
        }))
        .unwrap();
    let rs = fake
        .create(json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {
                "name": "checkout-6d4b9c7f8d", "namespace": NS, "labels": labels(),
                "annotations": {"deployment.kubernetes.io/revision": "2"},
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "Deployment", "name": "checkout",
                    "uid": deployment["metadata"]["uid"], "controller": true
                }]
            },
            "spec": {"replicas": 1, "selector": {"matchLabels": labels()}, "template": template}
        }))
        .unwrap();
    let pod_name = "checkout-6d4b9c7f8d-x2kq9".to_string();
    let pod = fake
        .create(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": pod_name, "namespace": NS, "labels": labels(),
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "checkout-6d4b9c7f8d",
                    "uid": rs["metadata"]["uid"], "controller": true
                }]
            },
            "spec": {"containers": [{"name": "app", "image": "shop/checkout:1.4.2"}]}
        }))
        .unwrap();
    fake.set_container_state(NS, &pod_name, None, ContainerState::running())
        .unwrap();
    fake.append_pod_log(
        NS,
        &pod_name,
        "level=info msg=\"cache warmed\" entries=52000\nlevel=error msg=\"allocating 512MiB for cart snapshot\"\n",
    )
    .unwrap();
    fake.restart_container(NS, &pod_name, None, ContainerState::oom_killed())
        .unwrap();
    fake.append_pod_log(NS, &pod_name, "level=info msg=\"starting\" version=1.4.2\n")
        .unwrap();
    fake.record_event(
        &pod,
        "Warning",
        "BackOff",
        "Back-off restarting failed container app in pod checkout-6d4b9c7f8d-x2kq9",
    )
    .unwrap();
    fake.create(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "checkout-config", "namespace": NS, "labels": labels()},
        "data": {"POOL_SIZE": "4"}
    }))
    .unwrap();
    fake.create(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "ledger-0", "namespace": "other", "labels": {"app": "ledger"}},
        "spec": {"containers": [{"name": "app", "image": "ledger:1"}]}
    }))
    .unwrap();
    (fake, pod_name)
}

fn logs_query(service: Option<&str>, min_level: Option<&str>) -> Query {
    Query::Logs {
        service: service.map(Into::into),
        min_level: min_level.map(Into::into),
        contains: None,
        range: window(),
        limit: 1000,
    }
}

fn lines(result: QueryResult) -> Vec<LogLine> {
    match result {
        QueryResult::Logs(l) => l,
        other => panic!("not logs: {other:?}"),
    }
}

#[tokio::test]
async fn pod_status_events_and_logs_come_back_as_lines_of_the_service() {
    let (fake, pod) = cluster().await;
    let src = KubernetesSource::with_client(&config(json!({})), fake.client()).unwrap();

    let statuses = src.pod_statuses().await.unwrap();
    assert_eq!(
        statuses.len(),
        1,
        "only the configured namespace: {statuses:?}"
    );
    let status = &statuses[0];
    assert_eq!(status.service, "checkout");
    let container = &status.containers[0];
    assert_eq!(container.restarts, 1);
    let last = container.last_terminated.as_ref().unwrap();
    assert_eq!((last.reason.as_str(), last.exit_code), ("OOMKilled", 137));

    let got = lines(
        src.query(&logs_query(Some("checkout"), None))
            .await
            .unwrap(),
    );
    let find = |needle: &str| {
        got.iter()
            .find(|l| l.message.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in {got:#?}"))
    };
    let oom = find("OOMKilled");
    assert_eq!(oom.level, "ERROR");
    assert_eq!(oom.service, "checkout");
    assert_eq!(
        oom.message,
        format!(
            "pod {pod} container app was terminated: OOMKilled (exit code 137), restart count 1"
        )
    );
    let event = find("BackOff");
    assert_eq!(event.level, "WARN");
    assert!(
        event
            .message
            .starts_with(&format!("event Warning BackOff pod/{pod}: Back-off"))
    );
    // The log of the killed instance and of the current one.
    assert_eq!(find("allocating 512MiB").level, "ERROR");
    assert_eq!(find("cache warmed").level, "INFO");
    assert_eq!(find("msg=\"starting\"").level, "INFO");
    assert!(got.windows(2).all(|w| w[0].ts <= w[1].ts), "time order");
    assert_eq!(
        got.iter().map(|l| l.line).collect::<Vec<_>>(),
        (1..=got.len() as u64).collect::<Vec<_>>()
    );

    // min_level keeps WARN and worse.
    let warn = lines(src.query(&logs_query(None, Some("WARN"))).await.unwrap());
    assert!(
        warn.iter().all(|l| l.level == "WARN" || l.level == "ERROR"),
        "{warn:#?}"
    );
    assert_eq!(warn.len(), 3, "{warn:#?}");

    // Another service's name gets nothing of checkout's.
    assert!(lines(src.query(&logs_query(Some("ledger"), None)).await.unwrap()).is_empty());

    // Nothing outside the namespace, and never a Secret, was read.
    for r in fake.requests() {
        assert!(!r.path.contains("/secrets"), "{r:?}");
        assert!(!r.path.contains("/namespaces/other/"), "{r:?}");
    }
}

#[tokio::test]
async fn a_rollout_and_a_config_change_are_changes() {
    let (fake, _) = cluster().await;
    let src = KubernetesSource::with_client(&config(json!({})), fake.client()).unwrap();
    let QueryResult::Changes(changes) = src
        .query(&Query::Changes { range: window() })
        .await
        .unwrap()
    else {
        panic!("not changes")
    };
    let deploy = changes.iter().find(|c| c.kind == "deploy").unwrap();
    assert_eq!(deploy.target, "checkout");
    assert_eq!(
        deploy.summary,
        "Deployment shop/checkout rolled out revision 2 (ReplicaSet checkout-6d4b9c7f8d; app=shop/checkout:1.4.2)"
    );
    assert_eq!(deploy.details["revision"], "2");
    let config = changes.iter().find(|c| c.kind == "config").unwrap();
    assert_eq!(config.target, "checkout");
    assert!(
        config
            .summary
            .starts_with("ConfigMap shop/checkout-config changed"),
        "{}",
        config.summary
    );
    // ConfigMap data never reaches the agent.
    assert!(
        !serde_json::to_string(&changes)
            .unwrap()
            .contains("POOL_SIZE")
    );

    // A window before they happened has none.
    let earlier = TimeRange {
        start: Utc::now() - Duration::hours(3),
        end: Utc::now() - Duration::hours(2),
    };
    let QueryResult::Changes(none) = src.query(&Query::Changes { range: earlier }).await.unwrap()
    else {
        panic!("not changes")
    };
    assert!(none.is_empty(), "{none:?}");
}

#[tokio::test]
async fn a_denied_read_becomes_unavailability_without_retries() {
    let (fake, _) = cluster().await;
    // A service account with no Role bound: every read is 403.
    fake.create(json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "agent", "namespace": NS}
    }))
    .unwrap();
    fake.register_token("tok-agent", ServiceAccountIdentity::new(NS, "agent"));
    let src =
        KubernetesSource::with_client(&config(json!({})), fake.client_with_token("tok-agent"))
            .unwrap();
    fake.clear_requests();
    let err = src.query(&logs_query(None, None)).await.unwrap_err();
    assert!(matches!(err, DataError::Unavailable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with("kubernetes unavailable: 403 forbidden"),
        "{text}"
    );
    assert!(
        text.contains("\"system:serviceaccount:shop:agent\" cannot list resource \"pods\""),
        "{text}"
    );
    assert_eq!(fake.requests().len(), 1, "a refusal is not retried");
}

#[tokio::test]
async fn other_queries_are_unsupported() {
    let (fake, _) = cluster().await;
    let src = KubernetesSource::with_client(&config(json!({})), fake.client()).unwrap();
    let err = src.query(&Query::Topology).await.unwrap_err();
    assert!(
        matches!(
            err,
            DataError::Unsupported {
                query_kind: "topology",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_source_without_namespaces_is_refused() {
    let config: Result<KubernetesSourceConfig, _> = serde_json::from_value(json!({"domains": []}));
    assert!(config.unwrap_err().to_string().contains("namespaces"));
}

#[tokio::test]
async fn a_service_account_with_the_documented_read_only_role_can_read_everything_it_needs() {
    let (fake, _) = cluster().await;
    fake.create(json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "agent", "namespace": NS}
    }))
    .unwrap();
    // The rules docs/connectors.md lists for the Kubernetes connector.
    fake.create(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "warden-reader", "namespace": NS},
        "rules": [
            {"apiGroups": [""], "resources": ["pods", "pods/log", "events", "configmaps"], "verbs": ["get", "list"]},
            {"apiGroups": ["apps"], "resources": ["replicasets", "deployments"], "verbs": ["get", "list"]}
        ]
    }))
    .unwrap();
    fake.create(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "warden-reader", "namespace": NS},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "warden-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "agent", "namespace": NS}]
    }))
    .unwrap();
    fake.register_token("tok-agent", ServiceAccountIdentity::new(NS, "agent"));
    let guard = std::sync::Arc::new(Recorder::default());
    let src =
        KubernetesSource::with_client(&config(json!({})), fake.client_with_token("tok-agent"))
            .unwrap()
            .with_guard(guard.clone());
    fake.clear_requests();
    let got = lines(src.query(&logs_query(None, None)).await.unwrap());
    assert!(got.iter().any(|l| l.message.contains("OOMKilled")));
    let QueryResult::Changes(changes) = src
        .query(&Query::Changes { range: window() })
        .await
        .unwrap()
    else {
        panic!("not changes")
    };
    assert_eq!(changes.len(), 2, "{changes:?}");
    // Every request passed the guard first, naming what it reads.
    let seen = guard.0.lock().unwrap().clone();
    let kinds: std::collections::BTreeSet<&str> = seen.iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        [
            "configmaps",
            "deployments",
            "events",
            "pod_logs",
            "pods",
            "replicasets"
        ]
    );
    assert!(
        seen.iter()
            .all(|r| r.connector == "kubernetes" && r.namespace.as_deref() == Some(NS))
    );
    let requests = fake.requests();
    assert!(requests.iter().all(|r| r.status == 200), "{requests:?}");
    assert_eq!(seen.len(), requests.len());
}

#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<warden_connectors::ReadRequest>>);

impl warden_connectors::ReadGuard for Recorder {
    fn check(
        &self,
        request: &warden_connectors::ReadRequest,
    ) -> Result<(), warden_connectors::ReadDenied> {
        self.0.lock().unwrap().push(request.clone());
        Ok(())
    }
}

#[tokio::test]
async fn a_long_container_log_is_cut_at_the_byte_limit_and_says_so() {
    let (fake, pod) = cluster().await;
    let mut text = String::new();
    for i in 0..400 {
        text.push_str(&format!(
            "level=warn msg=\"retrying payment\" attempt={i}\n"
        ));
    }
    fake.append_pod_log(NS, &pod, &text).unwrap();
    let src = KubernetesSource::with_client(&config(json!({"max_log_bytes": 4096})), fake.client())
        .unwrap();
    let got = lines(
        src.query(&logs_query(Some("checkout"), None))
            .await
            .unwrap(),
    );
    let retries: Vec<&LogLine> = got
        .iter()
        .filter(|l| l.message.starts_with("level=warn msg=\"retrying payment\""))
        .collect();
    assert!(
        !retries.is_empty() && retries.len() < 400,
        "{}",
        retries.len()
    );
    // Kept lines are whole.
    assert!(retries.iter().all(|l| l.message.contains(" attempt=")));
    let note = got
        .iter()
        .find(|l| l.service == "kubernetes")
        .unwrap_or_else(|| panic!("no cut note in {got:#?}"));
    assert_eq!(
        note.message,
        format!("log of pod {pod} container app cut at 4096 bytes; later lines were not read")
    );
}

#[tokio::test]
async fn an_unreachable_api_server_is_unavailable_within_the_timeout() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config =
        config(json!({"api_url": format!("http://127.0.0.1:{port}"), "timeout_seconds": 3}));
    let src = KubernetesSource::connect(&config, warden_connectors::Credentials::None)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let err = src
        .query(&logs_query(None, None))
        .await
        .unwrap_err()
        .to_string();
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    assert!(
        err.starts_with("kubernetes unavailable: reading pods in shop"),
        "{err}"
    );
    assert!(err.ends_with("(gave up after 3 attempt(s))"), "{err}");
}

/// An API server that answers `status` to the first `failures` pod lists,
/// then an empty list; events are always an empty list.
fn flaky_api(
    failures: usize,
    status: u16,
) -> (kube::Client, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use axum::response::IntoResponse;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let calls = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let pods = move || {
        let counter = counter.clone();
        async move {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            if n < failures {
                let code = axum::http::StatusCode::from_u16(status).unwrap();
                let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "message": "the server is currently unable to handle the request",
                    "reason": "ServiceUnavailable", "code": status});
                (code, axum::Json(body)).into_response()
            } else {
                axum::Json(json!({"kind": "PodList", "apiVersion": "v1",
                    "metadata": {"resourceVersion": "1"}, "items": []}))
                .into_response()
            }
        }
    };
    let events = || async {
        axum::Json(json!({"kind": "EventList", "apiVersion": "v1",
            "metadata": {"resourceVersion": "1"}, "items": []}))
    };
    let router = axum::Router::new()
        .route("/api/v1/namespaces/shop/pods", axum::routing::get(pods))
        .route("/api/v1/namespaces/shop/events", axum::routing::get(events));
    (kube::Client::new(router, NS), calls)
}

#[tokio::test]
async fn a_503_is_retried_and_then_answers() {
    let (client, calls) = flaky_api(2, 503);
    let src = KubernetesSource::with_client(&config(json!({})), client).unwrap();
    let got = lines(src.query(&logs_query(None, None)).await.unwrap());
    assert!(got.is_empty());
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_429_storm_becomes_unavailability_after_the_retries() {
    let (client, calls) = flaky_api(usize::MAX, 429);
    let src = KubernetesSource::with_client(&config(json!({"retries": 3})), client).unwrap();
    let err = src
        .query(&logs_query(None, None))
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 4);
    assert!(err.starts_with("kubernetes unavailable: 429 "), "{err}");
    assert!(err.ends_with("(gave up after 4 attempt(s))"), "{err}");
}

#[tokio::test]
async fn basic_auth_credentials_are_refused_for_kubernetes() {
    let secret =
        secrecy::SecretString::from(r#"{"username":"u","password":"p-sentinel"}"#.to_string());
    let creds = warden_connectors::Credentials::from_secret(&secret).unwrap();
    let config = config(json!({"api_url": "http://127.0.0.1:9"}));
    let err = KubernetesSource::connect(&config, creds)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("credentials_domain"), "{err}");
    assert!(!err.contains("sentinel"), "{err}");
}
