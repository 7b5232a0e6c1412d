//! Live connectors that cannot be reached do not stop an investigation:
//! the demo incident is diagnosed from its bundle while the Prometheus,
//! Loki and Kubernetes sources configured next to it answer every query
//! with unavailability, which the loop records.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use chrono::{Duration, TimeZone, Utc};
use serde_json::json;
use warden_agent::job::open_sources;
use warden_agent::secrets::DomainSecrets;
use warden_agent::{BuiltinReasoner, EventLog, investigate};
use warden_core::DataSourceConfig;
use warden_core::agent_input::DataDomain;
use warden_demo::Scenario;

fn incident_of(scenario: &Scenario) -> warden_core::Incident {
    common::incident(scenario.distinct_alerts(false))
}

#[tokio::test]
async fn unreachable_live_sources_become_unavailability_and_the_bundle_still_diagnoses() {
    let base = Utc.with_ymd_and_hms(2025, 3, 4, 2, 0, 0).unwrap();
    let scenario = Scenario::firewall_cascade(base, 7);
    let dir = tempfile::tempdir().unwrap();
    scenario.write_bundle(dir.path()).unwrap();

    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("http://127.0.0.1:{closed}");
    let mut input = common::agent_input(
        dir.path(),
        incident_of(&scenario),
        15,
        Utc::now() + Duration::minutes(5),
    );
    let live: Vec<DataSourceConfig> = serde_json::from_value(json!([
        {"kind": "prometheus", "url": dead, "domains": ["application"], "retries": 0, "timeout_seconds": 2},
        {"kind": "loki", "url": dead, "retries": 0, "timeout_seconds": 2},
        {"kind": "kubernetes", "namespaces": ["shop"], "api_url": dead, "retries": 0, "timeout_seconds": 2}
    ]))
    .unwrap();
    input.data_sources.extend(live);
    // The gate must let these reads through for the test to reach the
    // dead servers: the demo's domains plus the cluster API.
    if let Some(reads) = input.reads.as_mut() {
        reads.domains.push(DataDomain {
            name: "cluster".into(),
            serves: vec!["*".into()],
            connector: "kubernetes".into(),
        });
        reads.phases.shadow.readable_domains.push("cluster".into());
        reads.target_namespaces.push("shop".into());
    }

    let (mut events, log) = EventLog::capture(input.investigation_id.as_str());
    let sources = open_sources(&input.data_sources, &DomainSecrets::default(), &mut events);
    let names: Vec<&str> = sources.iter().map(|s| s.name()).collect();
    assert_eq!(names, ["bundle", "prometheus", "loki", "kubernetes"]);

    let mut reasoner = BuiltinReasoner::default();
    let report = investigate(&input, &sources, &mut reasoner, &mut events).await;

    let root = report
        .root_cause
        .as_ref()
        .unwrap_or_else(|| panic!("no root cause: {:?}", report.escalation));
    assert_eq!(root.subject, scenario.expected().root_cause_subject);

    // Every live source was asked and answered with unavailability.
    let failed: Vec<String> = log
        .events()
        .iter()
        .filter(|e| e["event"] == "query")
        .filter_map(|e| e["error"].as_str().map(str::to_string))
        .collect();
    for source in ["prometheus", "loki", "kubernetes"] {
        assert!(
            failed
                .iter()
                .any(|e| e.starts_with(&format!("{source} unavailable: "))),
            "no unavailability from {source}: {failed:#?}"
        );
    }
}
