//! The incident warden ships with (`warden-demo`), diagnosed by the
//! built-in reasoner from its telemetry bundle: the firewall change, not the
//! noise around it, with every alternative settled against it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use chrono::{Duration, TimeZone, Utc};
use warden_agent::{BuiltinReasoner, BundleSource, EventLog, investigate};
use warden_core::HypothesisStatus;
use warden_core::ports::DataSource;
use warden_core::report::{Hypothesis, Report};
use warden_demo::{CHECKOUT, FIREWALL, ORDERS_API, RECOMMENDATIONS, Scenario};

/// The storm's distinct alerts, as correlation would hand them over; with
/// `keep_unrelated` the unrelated alerts are merged in too, as if
/// correlation had failed to separate them.
fn incident_of(scenario: &Scenario, keep_unrelated: bool) -> warden_core::Incident {
    common::incident(scenario.distinct_alerts(keep_unrelated))
}

async fn diagnose(seed: u64, keep_unrelated: bool) -> Report {
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
    assert_alternatives_settled(&report);
    report
}

fn top_level<'a>(report: &'a Report, subject: &str) -> Vec<&'a Hypothesis> {
    report
        .hypotheses
        .iter()
        .filter(|h| h.parent.is_none() && h.subject == subject)
        .collect()
}

/// The red herring deploy and the services that merely failed first are
/// rejected, each on evidence against it; the firewall is one hypothesis.
fn assert_alternatives_settled(report: &Report) {
    let root = report.root_cause.as_ref().unwrap();
    assert!(report.cycles <= report.depth_budget);
    assert!(!report.circuit_breaker_tripped);
    let firewall = top_level(report, FIREWALL);
    assert_eq!(firewall.len(), 1, "one hypothesis about the firewall");
    assert_eq!(firewall[0].id, root.hypothesis);
    assert_eq!(firewall[0].status, HypothesisStatus::Supported);

    for h in report.hypotheses.iter().filter(|h| h.parent.is_none()) {
        if h.id != root.hypothesis {
            assert_eq!(h.status, HypothesisStatus::Rejected, "{h:#?}");
        }
    }
    let deploy = top_level(report, RECOMMENDATIONS);
    assert_eq!(deploy.len(), 1, "{:#?}", report.hypotheses);
    assert!(
        deploy[0].statement.contains("deploy"),
        "{}",
        deploy[0].statement
    );
    for h in deploy
        .into_iter()
        .chain(top_level(report, CHECKOUT))
        .chain(top_level(report, ORDERS_API))
    {
        assert_eq!(h.status, HypothesisStatus::Rejected, "{h:#?}");
        assert!(!h.contradicting.is_empty(), "{h:#?}");
        for id in &h.contradicting {
            let e = report.evidence.iter().find(|e| &e.id == id).unwrap();
            assert!(!e.cited.query.is_empty(), "{e:?}");
        }
        assert!(report.summary.contains(&h.id), "{}", report.summary);
    }
    // A service is rejected as the origin because it degraded after the
    // change, on the path the change broke: the evidence shows the order.
    let checkout = top_level(report, CHECKOUT);
    let order = report
        .evidence
        .iter()
        .filter(|e| checkout[0].contradicting.contains(&e.id))
        .find(|e| e.summary.contains("after change"))
        .unwrap_or_else(|| panic!("{:#?}", report.evidence));
    assert!(order.summary.contains(&root.subject) || order.summary.contains("chg-"));
    assert!(
        report.summary.starts_with("Root cause:"),
        "{}",
        report.summary
    );
    assert!(report.summary.contains("rejected"), "{}", report.summary);
}

#[tokio::test]
async fn the_demo_incident_is_diagnosed_as_the_firewall_change() {
    diagnose(42, false).await;
}

#[tokio::test]
async fn no_metric_reads_as_both_normal_and_anomalous_in_the_database_finding() {
    let report = diagnose(42, false).await;
    let finding = report
        .evidence
        .iter()
        .find(|e| e.summary.contains("symptom, not the origin"))
        .unwrap_or_else(|| panic!("{:#?}", report.evidence));
    let (normal, moved) = finding
        .summary
        .split_once("stayed normal")
        .unwrap_or_else(|| panic!("{}", finding.summary));
    let normal_names: Vec<&str> = normal
        .split(['(', ')', ','])
        .map(str::trim)
        .filter(|w| w.contains('_'))
        .collect();
    assert!(!normal_names.is_empty(), "{}", finding.summary);
    for name in normal_names {
        assert!(
            !moved.contains(name),
            "{name} is listed as normal and as moving: {}",
            finding.summary
        );
    }
    assert!(moved.contains("load"), "{}", finding.summary);
}

#[tokio::test]
async fn the_demo_diagnosis_holds_for_other_seeds_and_with_unrelated_alerts_merged_in() {
    diagnose(7, true).await;
    diagnose(1234, false).await;
}
