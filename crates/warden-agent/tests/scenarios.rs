//! The agent investigating synthetic incidents end to end: bundle on disk,
//! built-in reasoner, loop, report.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use chrono::{Duration, Utc};
use warden_agent::{BuiltinReasoner, BundleSource, EventLog, investigate};
use warden_core::HypothesisStatus;
use warden_core::ports::DataSource;
use warden_core::report::{Hypothesis, Report};

async fn run(
    bundle: &common::Bundle,
    incident: warden_core::Incident,
    budget: u32,
) -> (Report, Vec<serde_json::Value>) {
    let input = common::agent_input(
        bundle.path(),
        incident,
        budget,
        Utc::now() + Duration::minutes(5),
    );
    let sources: Vec<Box<dyn DataSource>> =
        vec![Box::new(BundleSource::open(bundle.path()).unwrap())];
    let mut reasoner = BuiltinReasoner::default();
    let (mut events, captured) = EventLog::capture(input.investigation_id.as_str());
    let report = investigate(&input, &sources, &mut reasoner, &mut events).await;
    (report, captured.events())
}

fn top_level<'a>(report: &'a Report, subject: &str) -> Vec<&'a Hypothesis> {
    report
        .hypotheses
        .iter()
        .filter(|h| h.parent.is_none() && h.subject == subject)
        .collect()
}

/// The alternative about `subject` is rejected on evidence that was
/// observed and cited, and the summary says so.
fn assert_rejected_on_evidence(report: &Report, subject: &str) {
    let found = top_level(report, subject);
    assert_eq!(found.len(), 1, "{subject}: {:#?}", report.hypotheses);
    let h = found[0];
    assert_eq!(h.status, HypothesisStatus::Rejected, "{h:#?}");
    assert!(!h.contradicting.is_empty(), "{h:#?}");
    for id in &h.contradicting {
        let e = report.evidence.iter().find(|e| &e.id == id).unwrap();
        assert!(!e.cited.source.is_empty() && !e.cited.query.is_empty());
    }
    assert!(
        report.summary.contains(&format!("{}:", h.id)),
        "{}",
        report.summary
    );
}

fn kinds(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn a_firewall_change_on_the_database_path_is_found_as_the_root_cause() {
    let bundle = common::network_path_bundle();
    let (report, events) = run(&bundle, common::network_path_incident(), 8).await;

    let root = report
        .root_cause
        .as_ref()
        .unwrap_or_else(|| panic!("no root cause: {report:#?}"));
    assert_eq!(root.subject, "fw-core");
    assert!(root.statement.contains("chg-102"), "{}", root.statement);
    assert!(report.confidence >= 0.8, "confidence {}", report.confidence);
    assert!(!report.circuit_breaker_tripped);
    assert!(report.escalation.is_none());
    assert!(report.cycles <= 8);

    // The chain runs from the change through the dropped traffic to the pools.
    let chain = root.chain.join("\n");
    assert!(root.chain[0].contains("chg-102"), "{chain}");
    assert!(chain.contains("dropped"), "{chain}");
    assert!(chain.contains("db_pool_in_use"), "{chain}");
    assert!(chain.contains("web"), "{chain}");

    // Remediation is a proposal to revert the change; nothing from log text.
    assert_eq!(report.remediation[0].action, "revert_change");
    assert_eq!(report.remediation[0].target, "chg-102");
    for r in &report.remediation {
        assert!(
            ["revert_change", "rollout_restart", "scale", "escalate"].contains(&r.action.as_str()),
            "{r:?}"
        );
        assert!(!r.target.contains("production"), "{r:?}");
    }

    // Evidence cites where it came from.
    assert!(
        report
            .evidence
            .iter()
            .any(|e| e.cited.source == "bundle:flows" && e.summary.contains("fw-core"))
    );
    assert!(report.evidence.iter().all(|e| !e.cited.query.is_empty()));
    assert!(
        report
            .evidence
            .iter()
            .any(|e| e.summary.contains("orders-db") && e.summary.contains("stayed normal"))
    );

    // The tree holds the refinements under the concluded hypothesis.
    let concluded = report
        .hypotheses
        .iter()
        .find(|h| h.id == root.hypothesis)
        .unwrap();
    assert_eq!(concluded.status, HypothesisStatus::Supported);
    let children: Vec<_> = report
        .hypotheses
        .iter()
        .filter(|h| h.parent.as_deref() == Some(&concluded.id))
        .collect();
    assert_eq!(children.len(), 2);
    assert!(
        children
            .iter()
            .all(|c| c.status == HypothesisStatus::Supported)
    );
    assert!(!concluded.supporting.is_empty());

    // Noise is not blamed.
    for h in &report.hypotheses {
        assert!(!(h.subject == "search" && h.status == HypothesisStatus::Supported));
        assert!(
            !h.statement.contains("chg-103"),
            "a change after the onset is no candidate: {}",
            h.statement
        );
        assert_ne!(h.subject, "batch-host");
    }

    // Every alternative is settled against the conclusion: the services
    // that failed first are consequences, the deploy broke nothing, and the
    // firewall is one hypothesis, not a change and a device side by side.
    assert_rejected_on_evidence(&report, "orders");
    assert_rejected_on_evidence(&report, "payments");
    assert_rejected_on_evidence(&report, "search");
    assert_eq!(top_level(&report, "fw-core").len(), 1);
    let consequence = report
        .evidence
        .iter()
        .find(|e| {
            top_level(&report, "orders")[0]
                .contradicting
                .contains(&e.id)
        })
        .unwrap();
    assert!(
        consequence.summary.contains("after change chg-102"),
        "{}",
        consequence.summary
    );
    assert!(report.summary.contains("Alternatives rejected"));
    assert!(!report.summary.contains("Left open"), "{}", report.summary);

    // The cost ledger is filled in.
    assert_eq!(report.cost.llm_cost_usd, 0.0);
    assert!(report.cost.data_queries >= 6);
    assert!(report.cost.peak_memory_bytes > 0);
    assert!(report.cost.wall_seconds > 0.0);
    assert_eq!(report.reasoner, "builtin");

    // The log tells the story in order.
    let kinds = kinds(&events);
    assert_eq!(kinds.first().map(String::as_str), Some("started"));
    assert!(kinds.iter().any(|k| k == "cycle_started"));
    assert!(kinds.iter().any(|k| k == "query"));
    assert!(kinds.iter().any(|k| k == "evidence"));
    assert!(kinds.iter().any(|k| k == "hypothesis"));
    assert_eq!(kinds.last().map(String::as_str), Some("concluded"));
    let queries = events.iter().filter(|e| e["event"] == "query").count() as u64;
    assert_eq!(queries, report.cost.data_queries);
    let concluded_event = events.last().unwrap();
    assert_eq!(concluded_event["subject"], "fw-core");
}

#[tokio::test]
async fn a_bad_deploy_is_found_without_any_network_device_involved() {
    let bundle = common::bad_deploy_bundle();
    let (report, _) = run(&bundle, common::bad_deploy_incident(), 8).await;

    let root = report
        .root_cause
        .as_ref()
        .unwrap_or_else(|| panic!("no root cause: {report:#?}"));
    assert_eq!(root.subject, "pricing");
    assert!(root.statement.contains("chg-7"), "{}", root.statement);
    assert!(report.confidence >= 0.8);
    let chain = root.chain.join("\n");
    assert!(chain.contains("NullPointerException"), "{chain}");
    assert!(chain.contains("checkout"), "{chain}");
    assert!(!chain.contains("lb-1"), "{chain}");
    assert_eq!(report.remediation[0].action, "revert_change");
    assert_eq!(report.remediation[0].target, "chg-7");
    assert!(
        report
            .hypotheses
            .iter()
            .all(|h| !h.statement.contains("chg-8"))
    );

    // The callers that failed after the deploy are rejected as origins;
    // the deployed service is one hypothesis (the change), not two.
    assert_rejected_on_evidence(&report, "checkout");
    assert_rejected_on_evidence(&report, "gateway");
    assert_eq!(top_level(&report, "pricing").len(), 1);
    assert!(report.cycles <= report.depth_budget);
}

#[tokio::test]
async fn two_failures_nothing_orders_stay_open_and_are_handed_over() {
    let bundle = common::split_bundle();
    let (report, _) = run(&bundle, common::split_incident(), 8).await;

    assert!(report.root_cause.is_none(), "{report:#?}");
    assert!(!report.circuit_breaker_tripped);
    assert!(report.remediation.is_empty());
    let escalation = report.escalation.as_deref().unwrap();
    assert!(
        escalation.contains("none reached confidence"),
        "{escalation}"
    );
    let top: Vec<&Hypothesis> = report
        .hypotheses
        .iter()
        .filter(|h| h.parent.is_none())
        .collect();
    let subjects: Vec<&str> = top.iter().map(|h| h.subject.as_str()).collect();
    assert!(
        subjects.contains(&"alpha") && subjects.contains(&"beta"),
        "{subjects:?}"
    );
    for h in &top {
        assert_eq!(h.status, HypothesisStatus::Open, "{h:#?}");
    }
    assert!(
        report
            .hypotheses
            .iter()
            .all(|h| h.status != HypothesisStatus::Rejected),
        "{:#?}",
        report.hypotheses
    );
    assert!(
        report.summary.contains("inconclusive"),
        "{}",
        report.summary
    );
    for h in &top {
        assert!(report.summary.contains(&h.id), "{}", report.summary);
    }
}

#[tokio::test]
async fn alternatives_the_budget_leaves_no_cycle_for_stay_open_and_the_summary_says_so() {
    let bundle = common::network_path_bundle();
    let (report, events) = run(&bundle, common::network_path_incident(), 5).await;

    // The conclusion took four cycles; one was left to weigh alternatives.
    let root = report.root_cause.as_ref().unwrap();
    assert!(root.statement.contains("chg-102"));
    assert_eq!(report.cycles, 5);
    assert!(!report.circuit_breaker_tripped);
    let alternatives: Vec<&Hypothesis> = report
        .hypotheses
        .iter()
        .filter(|h| h.parent.is_none() && h.id != root.hypothesis)
        .collect();
    let rejected = alternatives
        .iter()
        .filter(|h| h.status == HypothesisStatus::Rejected)
        .count();
    let open: Vec<&str> = alternatives
        .iter()
        .filter(|h| h.status == HypothesisStatus::Open)
        .map(|h| h.id.as_str())
        .collect();
    assert_eq!(rejected, 1, "{alternatives:#?}");
    assert_eq!(open.len(), alternatives.len() - 1);
    assert!(
        report.summary.contains(&format!(
            "Not weighed against it because the depth budget is spent: {}",
            open.join(", ")
        )),
        "{}",
        report.summary
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "differential_cut_short")
    );
}

#[tokio::test]
async fn the_circuit_breaker_trips_at_the_depth_budget_and_hands_over_the_findings() {
    let bundle = common::network_path_bundle();
    let (report, events) = run(&bundle, common::network_path_incident(), 2).await;

    assert!(report.circuit_breaker_tripped);
    assert_eq!(report.cycles, 2);
    assert_eq!(report.depth_budget, 2);
    assert!(report.root_cause.is_none());
    assert!(report.remediation.is_empty());
    let escalation = report.escalation.as_deref().unwrap();
    assert!(escalation.contains("circuit breaker"), "{escalation}");
    assert!(
        escalation.contains("chg-102"),
        "the findings so far are handed over: {escalation}"
    );
    assert!(kinds(&events).iter().any(|k| k == "breaker_tripped"));
    let cycles = events
        .iter()
        .filter(|e| e["event"] == "cycle_started")
        .count();
    assert_eq!(cycles, 2);
}

#[tokio::test]
async fn a_quiet_bundle_ends_without_a_root_cause_and_without_tripping_the_breaker() {
    let bundle = common::quiet_bundle();
    let incident = common::incident(vec![common::alert("High5xxRate", "api", 100)]);
    let (report, _) = run(&bundle, incident, 8).await;
    assert!(report.root_cause.is_none());
    assert!(!report.circuit_breaker_tripped);
    assert!(
        report
            .escalation
            .as_deref()
            .unwrap()
            .contains("No hypothesis"),
        "{:?}",
        report.escalation
    );
    assert!(report.cycles < 8);
}

#[tokio::test]
async fn a_missing_bundle_still_yields_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let input = common::agent_input(
        dir.path(),
        common::network_path_incident(),
        8,
        Utc::now() + Duration::minutes(1),
    );
    let sources: Vec<Box<dyn DataSource>> = Vec::new();
    let mut reasoner = BuiltinReasoner::default();
    let (mut events, _) = EventLog::capture("x");
    let report = investigate(&input, &sources, &mut reasoner, &mut events).await;
    assert!(report.root_cause.is_none());
    assert!(report.escalation.is_some());
}
