//! Every read the agent makes passes the action gate: a denied read never
//! reaches its source and is recorded, with its reasons, in the job log
//! (`read_denied`) and as evidence from the source `gate`; a source that
//! cannot answer is recorded as evidence of unavailability; allowed reads
//! still diagnose the incident.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{Duration, Utc};
use serde_json::{Value, json};
use warden_agent::gate::{ReadGate, ReadVerdict};
use warden_agent::job::open_sources_guarded;
use warden_agent::secrets::DomainSecrets;
use warden_agent::{BuiltinReasoner, BundleSource, EventLog, investigate};
use warden_core::agent_input::{DataDomain, ReadPolicy};
use warden_core::ports::{DataError, DataSource, Query, QueryResult};
use warden_core::report::Report;
use warden_core::telemetry::TimeRange;
use warden_core::{AgentInput, DataSourceConfig, Domain, Phases};

/// A source that counts the queries that reach it.
struct Counting {
    inner: Box<dyn DataSource>,
    hits: Arc<AtomicUsize>,
}

#[async_trait]
impl DataSource for Counting {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn domains(&self) -> Vec<Domain> {
        self.inner.domains()
    }
    async fn query(&self, query: &Query) -> Result<QueryResult, DataError> {
        self.hits.fetch_add(1, Ordering::SeqCst);
        self.inner.query(query).await
    }
}

fn counting(name: &str, bundle: &common::Bundle) -> (Box<dyn DataSource>, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let inner = Box::new(BundleSource::open_named(name.to_string(), bundle.path()).unwrap());
    let source = Counting {
        inner,
        hits: hits.clone(),
    };
    (Box::new(source), hits)
}

/// A Prometheus that never answers in time.
struct TimingOut {
    hits: Arc<AtomicUsize>,
}

#[async_trait]
impl DataSource for TimingOut {
    fn name(&self) -> &str {
        "prometheus"
    }
    fn domains(&self) -> Vec<Domain> {
        vec![Domain::new("application")]
    }
    async fn query(&self, _query: &Query) -> Result<QueryResult, DataError> {
        self.hits.fetch_add(1, Ordering::SeqCst);
        Err(DataError::Unavailable {
            source_name: "prometheus".into(),
            detail: "timeout after 5s".into(),
        })
    }
}

fn domain(name: &str, serves: &[&str], connector: &str) -> DataDomain {
    DataDomain {
        name: name.into(),
        serves: serves.iter().map(|s| s.to_string()).collect(),
        connector: connector.into(),
    }
}

/// The default warden.yaml's domains plus the cluster API; shadow reads
/// `readable`.
fn read_policy(readable: &[&str]) -> ReadPolicy {
    let domains = vec![
        domain("network-monitoring", &["network"], "prometheus"),
        domain("application-metrics", &["application"], "prometheus"),
        domain("log-aggregation", &["*"], "loki"),
        domain("database", &["database"], "postgres"),
        domain("security-events", &["security"], "http"),
        domain("cluster", &["*"], "kubernetes"),
    ];
    let names: Vec<String> = domains.iter().map(|d| d.name.clone()).collect();
    let mut phases = Phases::defaults(&names);
    phases.shadow.readable_domains = readable.iter().map(|s| s.to_string()).collect();
    ReadPolicy {
        environment: "prod".into(),
        phases,
        protected_namespaces: vec!["kube-system".into()],
        target_namespaces: vec!["shop".into()],
        domains,
        policies: Vec::new(),
    }
}

const ALL: [&str; 6] = [
    "network-monitoring",
    "application-metrics",
    "log-aggregation",
    "database",
    "security-events",
    "cluster",
];

fn input(bundle: &common::Bundle, reads: ReadPolicy, extra: Value) -> AgentInput {
    let mut input = common::agent_input(
        bundle.path(),
        common::network_path_incident(),
        8,
        Utc::now() + Duration::minutes(5),
    );
    let extra: Vec<DataSourceConfig> = serde_json::from_value(extra).unwrap();
    input.data_sources.extend(extra);
    input.reads = Some(reads);
    input
}

async fn run(input: &AgentInput, sources: &[Box<dyn DataSource>]) -> (Report, Vec<Value>) {
    let mut reasoner = BuiltinReasoner::default();
    let (mut events, log) = EventLog::capture(input.investigation_id.as_str());
    let report = investigate(input, sources, &mut reasoner, &mut events).await;
    (report, log.events())
}

fn named<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

fn gate_evidence(report: &Report) -> Vec<&warden_core::Evidence> {
    report
        .evidence
        .iter()
        .filter(|e| e.cited.source == "gate")
        .collect()
}

fn assert_firewall_diagnosis(report: &Report) {
    let root = report
        .root_cause
        .as_ref()
        .unwrap_or_else(|| panic!("no root cause: {report:#?}"));
    assert_eq!(root.subject, "fw-core", "{}", report.summary);
    assert!(root.statement.contains("chg-102"), "{}", root.statement);
}

#[tokio::test]
async fn a_domain_the_phase_may_not_read_is_denied_and_never_reaches_the_source() {
    let bundle = common::network_path_bundle();
    // Shadow may read the logs only; the bundle holds application, network
    // and database telemetry.
    let input = input(&bundle, read_policy(&["log-aggregation"]), json!([]));
    let (source, hits) = counting("bundle", &bundle);
    let (report, events) = run(&input, &[source]).await;

    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a denied read reached the source"
    );
    assert_eq!(report.cost.data_queries, 0);
    assert!(report.root_cause.is_none(), "{}", report.summary);

    let denied = named(&events, "read_denied");
    assert!(!denied.is_empty());
    for e in &denied {
        assert_eq!(e["source"], "bundle");
        let reasons = e["reasons"].to_string();
        assert!(
            reasons.contains(r#"domain \"application-metrics\" is not readable in shadow"#),
            "{reasons}"
        );
    }
    assert!(named(&events, "query").is_empty(), "nothing was sent");

    // Recorded once as evidence, however often it was asked.
    let gate = gate_evidence(&report);
    assert_eq!(gate.len(), 1, "{:#?}", report.evidence);
    assert!(
        gate[0].summary.contains("The action gate denied reading"),
        "{}",
        gate[0].summary
    );
    assert!(gate[0].summary.contains("application-metrics"));
    assert_eq!(
        gate[0].detail["decisions"][0]["decision"]["decision"],
        "denied"
    );
}

#[tokio::test]
async fn allowed_reads_diagnose_while_a_protected_namespace_and_an_unavailable_source_become_evidence()
 {
    let bundle = common::network_path_bundle();
    // The Kubernetes source is configured to read kube-system.
    let input = input(
        &bundle,
        read_policy(&ALL),
        json!([
            {"kind": "kubernetes", "namespaces": ["kube-system"]},
            {"kind": "prometheus", "url": "http://127.0.0.1:9", "domains": ["application"]}
        ]),
    );
    let (allowed, allowed_hits) = counting("bundle", &bundle);
    let (cluster, cluster_hits) = counting("kubernetes", &bundle);
    let timing_out_hits = Arc::new(AtomicUsize::new(0));
    let timing_out = Box::new(TimingOut {
        hits: timing_out_hits.clone(),
    });
    let (report, events) = run(&input, &[allowed, cluster, timing_out]).await;

    // The allowed reads went ahead and the diagnosis is the same as
    // without a gate.
    assert!(allowed_hits.load(Ordering::SeqCst) > 0);
    assert!(timing_out_hits.load(Ordering::SeqCst) > 0);
    assert_firewall_diagnosis(&report);

    // The protected namespace was never read.
    assert_eq!(cluster_hits.load(Ordering::SeqCst), 0);
    let denied = named(&events, "read_denied");
    assert!(!denied.is_empty());
    assert!(denied.iter().all(|e| e["source"] == "kubernetes"));
    assert!(
        denied[0]["policies"]
            .to_string()
            .contains("forbid-protected-namespace-read"),
        "{}",
        denied[0]
    );
    let gate = gate_evidence(&report);
    assert_eq!(gate.len(), 1, "{:#?}", report.evidence);
    assert!(
        gate[0]
            .summary
            .contains("protected namespaces (namespaces.protected) are never read"),
        "{}",
        gate[0].summary
    );

    // The source that timed out is in the evidence, once.
    let unavailable: Vec<_> = report
        .evidence
        .iter()
        .filter(|e| e.summary == "prometheus unavailable: timeout after 5s")
        .collect();
    assert_eq!(unavailable.len(), 1, "{:#?}", report.evidence);
    assert!(unavailable[0].cited.source.starts_with("prometheus:"));
    assert_eq!(unavailable[0].domain, Domain::new("application"));
}

#[tokio::test]
async fn a_query_about_a_namespace_is_decided_for_that_namespace() {
    let bundle = common::network_path_bundle();
    let input = input(&bundle, read_policy(&ALL), json!([]));
    let gate = ReadGate::for_input(&input);
    let source = BundleSource::open(bundle.path()).unwrap();
    let metrics = |ns: &str| Query::Metrics {
        metric: None,
        labels: BTreeMap::from([("namespace".to_string(), ns.to_string())]),
        range: TimeRange {
            start: common::at(0),
            end: common::at(600),
        },
    };
    match gate.decide_query(&source, &metrics("kube-system")) {
        ReadVerdict::Denied(records) => {
            assert!(
                records[0]
                    .policies
                    .contains(&"forbid-protected-namespace-read".to_string()),
                "{records:#?}"
            );
        }
        other => panic!("{other:?}"),
    }
    match gate.decide_query(&source, &metrics("billing")) {
        ReadVerdict::Denied(records) => assert!(
            records[0]
                .reasons
                .iter()
                .any(|r| r.contains("not a target namespace")),
            "{records:#?}"
        ),
        other => panic!("{other:?}"),
    }
    match gate.decide_query(&source, &metrics("shop")) {
        ReadVerdict::Allowed { domains } => {
            assert!(
                domains.contains(&"application-metrics".to_string()),
                "{domains:?}"
            );
        }
        other => panic!("{other:?}"),
    }
}

/// A Prometheus stand-in that counts the requests it receives.
async fn counting_prometheus() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
            axum::Json(json!({"status": "success", "data": {"resultType": "matrix", "result": []}}))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, hits)
}

#[tokio::test]
async fn a_live_connector_asks_the_gate_before_each_request() {
    let bundle = common::quiet_bundle();
    let (url, hits) = counting_prometheus().await;
    let configs = json!([
        {"kind": "prometheus", "name": "prom-app", "url": url, "domains": ["application"], "retries": 0},
        {"kind": "prometheus", "name": "prom-net", "url": url, "domains": ["network"], "retries": 0}
    ]);
    // Shadow reads application metrics, not network monitoring.
    let input = input(
        &bundle,
        read_policy(&["application-metrics", "log-aggregation"]),
        configs,
    );
    let gate = Arc::new(ReadGate::for_input(&input));
    let (mut events, _log) = EventLog::capture("inv");
    let sources = open_sources_guarded(
        &input.data_sources,
        &DomainSecrets::default(),
        &gate.guard(),
        &mut events,
    );
    let by_name = |name: &str| sources.iter().find(|s| s.name() == name).unwrap();
    let query = Query::Metrics {
        metric: Some("up".into()),
        labels: BTreeMap::new(),
        range: TimeRange {
            start: common::at(0),
            end: common::at(600),
        },
    };

    // Asked directly, below the loop: the connector's own guard refuses.
    let err = by_name("prom-net").query(&query).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("prom-net unavailable: read denied: "),
        "{text}"
    );
    assert!(
        text.contains(r#"domain "network-monitoring" is not readable"#),
        "{text}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0, "a denied request was sent");

    by_name("prom-app").query(&query).await.unwrap();
    assert!(
        hits.load(Ordering::SeqCst) > 0,
        "an allowed request was not sent"
    );
}

#[tokio::test]
async fn an_input_without_a_read_policy_still_parses_but_every_read_is_denied() {
    let bundle = common::quiet_bundle();
    let mut input = input(&bundle, read_policy(&ALL), json!([]));
    let with: AgentInput = serde_json::from_str(&serde_json::to_string(&input).unwrap()).unwrap();
    assert_eq!(with, input);

    let mut doc = serde_json::to_value(&input).unwrap();
    doc.as_object_mut().unwrap().remove("reads");
    let old: AgentInput = serde_json::from_value(doc).unwrap();
    assert!(old.reads.is_none());

    input.reads = None;
    let (source, hits) = counting("bundle", &bundle);
    let (report, events) = run(&input, &[source]).await;
    assert_eq!(hits.load(Ordering::SeqCst), 0, "a read reached the source");
    let failed = named(&events, "read_gate_failed");
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("no read policy"),
        "{failed:?}"
    );
    assert!(!named(&events, "read_denied").is_empty());
    assert!(
        report.evidence.iter().any(|e| e.cited.source == "gate"),
        "the denials are evidence"
    );
}

/// A control plane stand-in that keeps the delivered reports.
async fn report_sink() -> (String, Arc<std::sync::Mutex<Vec<Report>>>) {
    let reports = Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = reports.clone();
    let app = axum::Router::new().fallback(move |body: String| {
        let kept = kept.clone();
        async move {
            kept.lock()
                .unwrap()
                .push(serde_json::from_str::<Report>(&body).unwrap());
            axum::http::StatusCode::OK
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, reports)
}

#[tokio::test]
async fn a_job_builds_its_gate_from_the_input_document() {
    let bundle = common::network_path_bundle();
    let (prometheus, prometheus_hits) = counting_prometheus().await;
    let (sink, reports) = report_sink().await;
    // Network monitoring is not readable in shadow here; the Prometheus
    // serving it must never be asked, while the bundle still diagnoses.
    let readable: Vec<&str> = ALL
        .iter()
        .copied()
        .filter(|d| *d != "network-monitoring")
        .collect();
    let mut input = input(
        &bundle,
        read_policy(&readable),
        json!([{"kind": "prometheus", "name": "prom-net", "url": prometheus, "domains": ["network"], "retries": 0}]),
    );
    // The bundle covers the network domain too: give it a domain of its own.
    input
        .reads
        .as_mut()
        .unwrap()
        .domains
        .push(domain("telemetry-bundle", &["*"], "bundle"));
    let reads = input.reads.as_mut().unwrap();
    reads
        .phases
        .shadow
        .readable_domains
        .push("telemetry-bundle".into());
    input.report_url = format!("{sink}/report");
    let document =
        serde_json::to_vec(&json!({"input": input, "result_credential": "c-1"})).unwrap();

    let log = warden_agent::CapturedLog::default();
    let policy = warden_agent::DeliveryPolicy::default();
    let code = warden_agent::run_job_with(
        std::io::Cursor::new(document),
        Box::new(log.clone()),
        &policy,
    )
    .await;
    assert_eq!(code, warden_agent::job::EXIT_DELIVERED, "{}", log.text());
    assert_eq!(prometheus_hits.load(Ordering::SeqCst), 0);

    let events = log.events();
    assert_eq!(named(&events, "read_gate").len(), 1);
    let denied = named(&events, "read_denied");
    assert!(!denied.is_empty());
    assert!(
        denied.iter().all(|e| e["source"] == "prom-net"),
        "{denied:#?}"
    );

    let reports = reports.lock().unwrap();
    assert_eq!(reports.len(), 1);
    assert_firewall_diagnosis(&reports[0]);
    let gate = gate_evidence(&reports[0]);
    assert_eq!(gate.len(), 1, "{:#?}", reports[0].evidence);
    assert!(
        gate[0].summary.contains("network-monitoring"),
        "{}",
        gate[0].summary
    );
}
