//! The incident warden ships with (`warden-demo`), diagnosed by the
//! built-in reasoner from its telemetry bundle: the firewall change, not the
//! noise around it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use warden_agent::{BuiltinReasoner, BundleSource, EventLog, investigate};
use warden_core::alert::{Alert, AlertStatus, Fingerprint};
use warden_core::ports::DataSource;
use warden_demo::Scenario;

/// The storm's distinct alerts, as correlation would hand them over; with
/// `keep_unrelated` the unrelated alerts are merged in too, as if
/// correlation had failed to separate them.
fn incident_of(scenario: &Scenario, keep_unrelated: bool) -> warden_core::Incident {
    let unrelated = scenario.expected().unrelated_services;
    let mut alerts = BTreeMap::new();
    for payload in scenario.storm() {
        for a in payload["alerts"].as_array().unwrap() {
            let labels: BTreeMap<String, String> =
                serde_json::from_value(a["labels"].clone()).unwrap();
            let is_unrelated = labels.get("service").is_some_and(|s| unrelated.contains(s));
            if is_unrelated && !keep_unrelated {
                continue;
            }
            let starts_at: DateTime<Utc> = serde_json::from_value(a["startsAt"].clone()).unwrap();
            let fingerprint = Fingerprint::from_labels(&labels);
            alerts.entry(fingerprint.clone()).or_insert(Alert {
                fingerprint,
                status: AlertStatus::Firing,
                labels,
                annotations: BTreeMap::new(),
                starts_at,
                ends_at: None,
                generator_url: None,
            });
        }
    }
    common::incident(alerts.into_values().collect())
}

async fn diagnose(seed: u64, keep_unrelated: bool) {
    let base = Utc.with_ymd_and_hms(2025, 3, 4, 2, 0, 0).unwrap();
    let scenario = Scenario::firewall_cascade(base, seed);
    let dir = tempfile::tempdir().unwrap();
    scenario.write_bundle(dir.path()).unwrap();
    let expected = scenario.expected();

    let incident = incident_of(&scenario, keep_unrelated);
    let input = common::agent_input(dir.path(), incident, 15, Utc::now() + Duration::minutes(5));
    let sources: Vec<Box<dyn DataSource>> = vec![Box::new(BundleSource::open(dir.path()).unwrap())];
    let mut reasoner = BuiltinReasoner::default();
    let (mut events, _) = EventLog::capture(input.investigation_id.as_str());
    let report = investigate(&input, &sources, &mut reasoner, &mut events).await;

    let root = report
        .root_cause
        .as_ref()
        .unwrap_or_else(|| panic!("no root cause: {:?}", report.escalation));
    assert_eq!(root.subject, expected.root_cause_subject);
    assert!(
        root.statement.contains(&expected.root_cause_change_id),
        "{}",
        root.statement
    );
    assert!(report.confidence >= 0.8);
    assert!(report.cycles <= 8, "{} cycles", report.cycles);
    assert_eq!(report.remediation[0].action, "revert_change");
    assert_eq!(report.remediation[0].target, expected.root_cause_change_id);
    let chain = root.chain.join("\n");
    assert!(chain.contains("dropped"), "{chain}");
    assert!(chain.contains("pool"), "{chain}");
}

#[tokio::test]
async fn the_demo_incident_is_diagnosed_as_the_firewall_change() {
    diagnose(42, false).await;
}

#[tokio::test]
async fn the_demo_diagnosis_holds_for_other_seeds_and_with_unrelated_alerts_merged_in() {
    diagnose(7, true).await;
    diagnose(1234, false).await;
}
