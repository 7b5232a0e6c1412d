//! The alert storm: Alertmanager's webhook format, the size and shape of
//! the fault, re-sends and resolutions, and the unrelated alerts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::Value;
use warden_core::Fingerprint;
use warden_demo::{FIREWALL, MAX_ALERTS_PER_PAYLOAD, Scenario, default_base};

use common::{base, scenario, secs};

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap_or_else(|e| panic!("{v}: {e}"))
        .with_timezone(&Utc)
}

fn alerts(storm: &[Value]) -> impl Iterator<Item = &Value> {
    storm.iter().flat_map(|p| p["alerts"].as_array().unwrap())
}

fn label<'a>(alert: &'a Value, key: &str) -> Option<&'a str> {
    alert["labels"][key].as_str()
}

/// Each distinct alert once (its first appearance), by fingerprint.
fn distinct(storm: &[Value]) -> BTreeMap<String, &Value> {
    let mut out = BTreeMap::new();
    for a in alerts(storm) {
        out.entry(a["fingerprint"].as_str().unwrap().to_string())
            .or_insert(a);
    }
    out
}

fn unrelated_services() -> BTreeSet<String> {
    scenario().expected().unrelated_services
}

fn fault_alerts(storm: &[Value]) -> Vec<&Value> {
    let unrelated = unrelated_services();
    distinct(storm)
        .into_values()
        .filter(|a| !unrelated.contains(label(a, "service").unwrap()))
        .collect()
}

#[test]
fn the_same_seed_and_base_give_a_byte_identical_storm() {
    let a = serde_json::to_string(&scenario().storm()).unwrap();
    let b = serde_json::to_string(&scenario().storm()).unwrap();
    assert_eq!(a, b);
    let other = serde_json::to_string(&Scenario::firewall_cascade(base(), 7).storm()).unwrap();
    assert_ne!(a, other, "the seed changes the storm");
}

#[test]
fn every_payload_is_an_alertmanager_v4_webhook_message() {
    let storm = scenario().storm();
    assert!(storm.len() > 20);
    for p in &storm {
        assert_eq!(p["version"], "4");
        assert_eq!(p["truncatedAlerts"], 0);
        assert_eq!(p["receiver"], "warden");
        assert!(p["externalURL"].as_str().unwrap().starts_with("http://"));
        let list = p["alerts"].as_array().unwrap();
        assert!(!list.is_empty() && list.len() <= MAX_ALERTS_PER_PAYLOAD);
        let name = p["groupLabels"]["alertname"].as_str().unwrap();
        assert_eq!(p["groupKey"], format!("{{}}:{{alertname=\"{name}\"}}"));
        let any_firing = list.iter().any(|a| a["status"] == "firing");
        assert_eq!(p["status"], if any_firing { "firing" } else { "resolved" });
        for (k, v) in p["commonLabels"].as_object().unwrap() {
            assert!(
                list.iter().all(|a| &a["labels"][k] == v),
                "common label {k}"
            );
        }
        for (k, v) in p["commonAnnotations"].as_object().unwrap() {
            assert!(
                list.iter().all(|a| &a["annotations"][k] == v),
                "common annotation {k}"
            );
        }
        for a in list {
            assert_eq!(label(a, "alertname"), Some(name), "grouped by alertname");
            let fp = a["fingerprint"].as_str().unwrap();
            assert!(
                fp.len() == 16 && fp.bytes().all(|b| b.is_ascii_hexdigit()),
                "{fp}"
            );
            let labels: BTreeMap<String, String> =
                serde_json::from_value(a["labels"].clone()).unwrap();
            assert_eq!(Fingerprint::from_labels(&labels).as_str(), fp);
            let starts = time(&a["startsAt"]);
            assert!(
                a["generatorURL"]
                    .as_str()
                    .unwrap()
                    .contains("/graph?g0.expr=")
            );
            match a["status"].as_str().unwrap() {
                "firing" => assert_eq!(a["endsAt"], ZERO_TIME),
                "resolved" => assert!(time(&a["endsAt"]) > starts),
                other => panic!("status {other}"),
            }
        }
    }
}

#[test]
fn the_fault_raises_about_300_alerts_across_exactly_four_domains() {
    let storm = scenario().storm();
    let fault = fault_alerts(&storm);
    assert!(
        (280..=320).contains(&fault.len()),
        "{} fault alerts",
        fault.len()
    );
    let domains: BTreeSet<&str> = fault.iter().map(|a| label(a, "domain").unwrap()).collect();
    assert_eq!(
        domains,
        BTreeSet::from(["application", "database", "network", "security"])
    );
    for d in &domains {
        let n = fault
            .iter()
            .filter(|a| label(a, "domain") == Some(d))
            .count();
        assert!(n >= 20, "{d} has only {n} alerts");
    }
    assert_eq!(scenario().expected().fault_alerts, fault.len());
}

#[test]
fn every_alert_names_a_topology_node_with_its_namespace_and_a_pod_or_instance() {
    let s = scenario();
    let topology = s.topology();
    for a in distinct(&s.storm()).values() {
        for key in ["alertname", "severity", "domain", "service"] {
            assert!(
                label(a, key).is_some_and(|v| !v.is_empty()),
                "{key} missing: {a}"
            );
        }
        let node = topology
            .node(label(a, "service").unwrap())
            .unwrap_or_else(|| panic!("service is no topology node: {a}"));
        assert_eq!(label(a, "namespace"), node.namespace.as_deref(), "{a}");
        assert!(
            label(a, "pod").is_some()
                || label(a, "instance").is_some()
                || label(a, "job") == Some("slo-recording-rules")
        );
        assert!(!a["annotations"]["summary"].as_str().unwrap().is_empty());
        assert!(!a["annotations"]["description"].as_str().unwrap().is_empty());
    }
}

#[test]
fn start_times_follow_the_cascade_from_network_to_pools() {
    let storm = scenario().storm();
    let fault = fault_alerts(&storm);
    let first = |pred: &dyn Fn(&Value) -> bool| {
        fault
            .iter()
            .filter(|a| pred(a))
            .map(|a| time(&a["startsAt"]))
            .min()
            .unwrap()
    };
    let last = |pred: &dyn Fn(&Value) -> bool| {
        fault
            .iter()
            .filter(|a| pred(a))
            .map(|a| time(&a["startsAt"]))
            .max()
            .unwrap()
    };
    assert!(
        fault.iter().all(|a| time(&a["startsAt"]) > base()),
        "nothing fires before the change"
    );
    let network = first(&|a| label(a, "domain") == Some("network"));
    let timeouts = first(&|a| label(a, "alertname") == Some("DatabaseQueryTimeouts"));
    let exhausted = first(&|a| label(a, "alertname") == Some("DbConnectionPoolExhausted"));
    let errors = first(&|a| label(a, "alertname") == Some("Http5xxRateHigh"));
    assert!(network < timeouts && timeouts < exhausted && timeouts < errors);
    assert!(network < secs(120));
    let security = |a: &Value| label(a, "domain") == Some("security");
    assert!(first(&security) < secs(150), "security fires early");
    assert!(
        last(&security) > last(&|a| label(a, "domain") == Some("database")),
        "and late"
    );
}

#[test]
fn alerts_are_sent_again_with_the_same_fingerprint_and_a_few_resolve() {
    let storm = scenario().storm();
    let mut payloads_per_fp: BTreeMap<&str, usize> = BTreeMap::new();
    let mut last_status: BTreeMap<&str, &str> = BTreeMap::new();
    for a in alerts(&storm) {
        let fp = a["fingerprint"].as_str().unwrap();
        *payloads_per_fp.entry(fp).or_default() += 1;
        let status = a["status"].as_str().unwrap();
        if status == "firing" {
            assert_ne!(
                last_status.get(fp),
                Some(&"resolved"),
                "{fp} fires again after resolving"
            );
        }
        last_status.insert(fp, status);
    }
    let resent = payloads_per_fp.values().filter(|&&n| n > 1).count();
    assert!(resent > 100, "only {resent} alerts were re-sent");
    let resolved = last_status.values().filter(|&&s| s == "resolved").count();
    assert!((3..=10).contains(&resolved), "{resolved} resolved");
    assert!(last_status.len() - resolved > 280, "the rest still fire");
}

#[test]
fn unrelated_alerts_share_no_service_namespace_or_edge_with_the_fault() {
    let s = scenario();
    let storm = s.storm();
    let expected = s.expected();
    assert!((3..=5).contains(&expected.unrelated_alerts));
    let unrelated: Vec<&Value> = distinct(&storm)
        .into_values()
        .filter(|a| {
            expected
                .unrelated_services
                .contains(label(a, "service").unwrap())
        })
        .collect();
    assert_eq!(unrelated.len(), expected.unrelated_alerts);
    let fault = fault_alerts(&storm);
    let fault_services: BTreeSet<&str> = fault.iter().filter_map(|a| label(a, "service")).collect();
    let fault_namespaces: BTreeSet<&str> =
        fault.iter().filter_map(|a| label(a, "namespace")).collect();
    for a in &unrelated {
        let service = label(a, "service").unwrap();
        assert!(!fault_services.contains(service), "{service}");
        if let Some(ns) = label(a, "namespace") {
            assert!(!fault_namespaces.contains(ns), "{ns}");
        }
        let touching = |from: &str, to: &str| from == service || to == service;
        assert!(
            !s.topology().edges.iter().any(|e| touching(&e.from, &e.to)),
            "{service} has an edge"
        );
        assert!(
            !s.topology_hints().iter().any(|h| touching(&h.from, &h.to)),
            "{service} has a hint"
        );
        // Same minutes as the fault.
        let starts = time(&a["startsAt"]);
        assert!(starts > base() && starts < secs(15 * 60));
    }
    assert_eq!(
        s.alert_count(),
        expected.fault_alerts + expected.unrelated_alerts
    );
    assert_eq!(s.alert_count(), distinct(&storm).len());
}

#[test]
fn topology_hints_are_the_bundle_graph_plus_the_firewall_hop() {
    let s = scenario();
    let graph = s.topology();
    let edge = |from: &str, to: &str| {
        graph
            .edges
            .iter()
            .find(|e| e.from == from && e.to == to)
            .unwrap_or_else(|| panic!("missing edge {from} -> {to}"))
    };
    for (from, to) in [("checkout-api", "orders-db"), ("orders-api", "orders-db")] {
        let e = edge(from, to);
        assert_eq!(e.via, vec![FIREWALL.to_string()]);
        assert_eq!(e.port, Some(5432));
    }
    for (from, to) in [
        ("front-end", "checkout-api"),
        ("checkout-api", "payments-api"),
        ("front-end", "recommendations"),
        ("recommendations", "catalog-db"),
    ] {
        assert!(
            edge(from, to).via.is_empty(),
            "{from} -> {to} does not cross the firewall"
        );
    }
    let fw = graph.node(FIREWALL).unwrap();
    assert_eq!(
        (fw.kind.as_str(), fw.domain.as_str()),
        ("firewall", "network")
    );

    let hints = s.topology_hints();
    for e in &graph.edges {
        assert!(hints.iter().any(|h| h.from == e.from && h.to == e.to));
    }
    for h in &hints {
        let is_edge = graph.edges.iter().any(|e| e.from == h.from && e.to == h.to);
        let is_hop = graph
            .edges
            .iter()
            .any(|e| e.from == h.from && e.via.contains(&h.to));
        assert!(is_edge || is_hop, "{h:?} is not in the graph");
    }
    assert!(
        hints
            .iter()
            .any(|h| h.from == "checkout-api" && h.to == FIREWALL)
    );
}

#[test]
fn default_base_is_half_an_hour_ago_on_a_whole_minute() {
    let b = default_base();
    assert_eq!(b.timestamp() % 60, 0);
    assert_eq!(b.timestamp_subsec_nanos(), 0);
    let age = Utc::now() - b;
    assert!(
        age >= chrono::TimeDelta::minutes(30) && age <= chrono::TimeDelta::minutes(32),
        "{age}"
    );
}

#[test]
fn the_expected_root_cause_is_the_firewall_and_its_change() {
    let e = scenario().expected();
    assert_eq!(e.root_cause_subject, FIREWALL);
    assert_eq!(e.change_at, base());
    assert!(e.root_cause_change_id.contains("fw"));
}
