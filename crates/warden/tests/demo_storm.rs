#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The demo storm through the real webhook of a real `warden serve`: one
//! incident for the fault, the unrelated alerts on their own, the right
//! root cause, and report, logs and metrics retrievable.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use common::*;
use serde_json::Value;

#[test]
fn the_demo_storm_becomes_one_incident_diagnosed_as_the_firewall_change() {
    let dir = tempfile::tempdir().unwrap();
    let (scenario, bundle, topology) = demo_bundle(dir.path(), 7);
    let config = serde_json::json!({
        "correlation": {"topology": topology, "group_wait_ms": 1500},
        "agent": {"data_sources": [{"kind": "bundle", "path": bundle}]},
    });
    // JSON is YAML.
    let config = write(&dir.path().join("warden.yaml"), &config.to_string());
    let data = dir.path().join("data");
    let server = Server::start(&data, &config, free_port());
    let base = server.url.clone();

    for payload in scenario.storm() {
        post(&format!("{base}/api/v1/alerts"), &payload);
    }
    let expected = scenario.expected();

    let list = wait_for(
        &base,
        Duration::from_secs(180),
        "all investigations to end",
        |l| l.len() == 1 + expected.unrelated_alerts && l.iter().all(terminal),
    );

    // Correlation: one incident holds every fault alert, each unrelated alert
    // is alone.
    let incidents = get(&format!("{base}/api/v1/incidents"))["incidents"]
        .as_array()
        .cloned()
        .unwrap();
    assert_eq!(
        incidents.len(),
        1 + expected.unrelated_alerts,
        "{incidents:#?}"
    );
    let biggest = incidents
        .iter()
        .max_by_key(|i| i["alerts"].as_array().map_or(0, Vec::len))
        .unwrap();
    let fault_alerts = biggest["alerts"].as_array().unwrap();
    assert_eq!(fault_alerts.len(), expected.fault_alerts);
    let fingerprints: HashSet<&str> = fault_alerts
        .iter()
        .map(|a| a["fingerprint"].as_str().unwrap())
        .collect();
    assert_eq!(
        fingerprints.len(),
        expected.fault_alerts,
        "no duplicate alerts"
    );
    let domains: BTreeSet<&str> = fault_alerts
        .iter()
        .map(|a| a["labels"]["domain"].as_str().unwrap())
        .collect();
    assert_eq!(
        domains,
        BTreeSet::from(["application", "database", "network", "security"])
    );
    for a in fault_alerts {
        let svc = a["labels"]["service"].as_str().unwrap_or("");
        assert!(
            !expected.unrelated_services.contains(svc),
            "unrelated {svc} grouped with the fault"
        );
    }

    // The storm's investigation: multi-domain, succeeded, right root cause.
    let inv = list
        .iter()
        .find(|i| i["incident_id"] == biggest["id"])
        .unwrap();
    assert_eq!(inv["state"]["state"], "succeeded", "{inv:#}");
    assert_eq!(inv["plan"]["complexity"], "multi_domain");
    assert_eq!(inv["plan"]["profile"]["depth_budget"], 15);
    let id = inv["id"].as_str().unwrap();
    assert!(id.starts_with("inv-"));

    let report = get(&format!("{base}/api/v1/investigations/{id}/report"));
    let subject = report["root_cause"]["subject"].as_str().unwrap_or_default();
    assert!(
        subject == expected.root_cause_subject || subject == expected.root_cause_change_id,
        "root cause {subject:?}, expected {:?}: {report:#}",
        expected.root_cause_subject
    );
    assert!(report["confidence"].as_f64().unwrap() >= 0.5);
    let chain = report["root_cause"]["chain"].as_array().unwrap();
    assert!(
        chain.len() >= 3,
        "the chain reaches the pool exhaustion: {chain:#?}"
    );
    let chain_text = chain
        .iter()
        .map(|c| c.as_str().unwrap().to_lowercase())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(chain_text.contains("pool"), "{chain_text}");
    let evidence = report["evidence"].as_array().unwrap();
    assert!(!evidence.is_empty());
    for e in evidence {
        assert!(!e["cited"]["source"].as_str().unwrap().is_empty());
        assert!(!e["cited"]["query"].as_str().unwrap().is_empty());
    }
    let statuses: HashSet<&str> = report["hypotheses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert!(
        statuses.contains("supported") && statuses.contains("rejected"),
        "{statuses:?}"
    );
    assert_eq!(report["cost"]["llm_cost_usd"].as_f64(), Some(0.0));
    assert!(report["cost"]["peak_memory_bytes"].as_u64().unwrap() > 0);

    // Logs: the agent's JSON-lines, for this investigation only.
    let logs = get_text(format!("{base}/api/v1/investigations/{id}/logs"));
    let events: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        events.iter().any(|e| e["event"] == "cycle_started"),
        "{logs}"
    );
    assert!(events.iter().all(|e| e["investigation_id"] == id), "{logs}");

    // Metrics.
    let metrics = get_text(format!("{base}/metrics"));
    assert!(
        metrics.contains(r#"warden_investigations_completed_total{complexity="multi_domain"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "warden_incidents_created_total {}",
            1 + expected.unrelated_alerts
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("warden_reasoning_cycles_bucket"),
        "{metrics}"
    );
    drop(server);
}
