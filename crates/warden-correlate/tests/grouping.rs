#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use warden_core::{Alert, AlertStatus, Fingerprint, IncidentStatus, TopologyHint};
use warden_correlate::{CorrelationConfig, Correlator};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 2, 0, 0).unwrap()
}

fn alert(name: &str, service: &str, ns: Option<&str>, offset_s: i64) -> Alert {
    let mut labels = BTreeMap::from([
        ("alertname".to_string(), name.to_string()),
        ("service".to_string(), service.to_string()),
    ]);
    if let Some(ns) = ns {
        labels.insert("namespace".into(), ns.into());
    }
    Alert {
        fingerprint: Fingerprint::from_labels(&labels),
        status: AlertStatus::Firing,
        labels,
        annotations: BTreeMap::new(),
        starts_at: t0() + Duration::seconds(offset_s),
        ends_at: None,
        generator_url: None,
    }
}

fn edge(from: &str, to: &str) -> TopologyHint {
    TopologyHint {
        from: from.into(),
        to: to.into(),
    }
}

fn config() -> CorrelationConfig {
    CorrelationConfig {
        topology: vec![
            edge("frontend", "checkout-api"),
            edge("checkout-api", "fw-core-01"),
            edge("fw-core-01", "orders-db"),
            edge("orders-api", "fw-core-01"),
        ],
        ..CorrelationConfig::default()
    }
}

/// Alerts from one fault spread over services linked only through topology,
/// plus two unrelated ones.
fn storm() -> Vec<Alert> {
    let mut v = Vec::new();
    for i in 0..60 {
        v.push(alert(
            &format!("FirewallDrops{i}"),
            "fw-core-01",
            None,
            60 + i,
        ));
        v.push(alert(
            &format!("HighLatency{i}"),
            "checkout-api",
            Some("shop"),
            120 + i,
        ));
        v.push(alert(
            &format!("PoolExhausted{i}"),
            "orders-db",
            Some("shop-data"),
            150 + i,
        ));
        v.push(alert(
            &format!("Http5xx{i}"),
            "frontend",
            Some("shop"),
            180 + i,
        ));
        v.push(alert(
            &format!("OrdersSlow{i}"),
            "orders-api",
            Some("shop"),
            200 + i,
        ));
    }
    v
}

fn unrelated() -> Vec<Alert> {
    vec![
        alert("CPUHigh", "batch-reporting", Some("analytics"), 100),
        alert("CertExpiring", "id-gateway", Some("identity"), 130),
    ]
}

fn partition(
    c: &Correlator,
    alerts: &[Alert],
    placed: &[(warden_core::IncidentId, Alert)],
) -> Vec<usize> {
    let _ = c;
    let mut by_incident: BTreeMap<String, usize> = BTreeMap::new();
    for (id, _) in placed {
        *by_incident.entry(id.0.clone()).or_default() += 1;
    }
    let mut sizes: Vec<usize> = by_incident.into_values().collect();
    sizes.sort_unstable();
    assert_eq!(sizes.iter().sum::<usize>(), alerts.len());
    sizes
}

#[test]
fn one_fault_across_domains_is_one_incident_and_unrelated_alerts_are_their_own() {
    let mut c = Correlator::new(config());
    let mut alerts = storm();
    alerts.extend(unrelated());
    let out = c.ingest(alerts.clone(), None, &[], Utc::now());
    // Follow merges to find each alert's final incident.
    let mut placed = out.write.alerts.clone();
    for (from, into) in &out.write.merged {
        for (id, _) in placed.iter_mut() {
            if id == from {
                *id = into.clone();
            }
        }
    }
    assert_eq!(partition(&c, &alerts, &placed), vec![1, 1, 300]);
    assert_eq!(out.received, 302);
    assert_eq!(out.deduplicated, 0);
}

#[test]
fn a_resent_alert_updates_instead_of_duplicating() {
    let mut c = Correlator::new(config());
    let a = alert("HighLatency", "checkout-api", Some("shop"), 0);
    let first = c.ingest(vec![a.clone()], None, &[], Utc::now());
    let again = c.ingest(vec![a.clone()], None, &[], Utc::now());
    assert_eq!(first.created.len(), 1);
    assert!(again.created.is_empty());
    assert_eq!(again.deduplicated, 1);
    assert_eq!(again.write.alerts[0].0, first.created[0]);
    let (_, count, _) = c.shape(&first.created[0]).unwrap();
    assert_eq!(count, 1);
}

#[test]
fn a_resolved_alert_does_not_close_an_incident_with_firing_alerts() {
    let mut c = Correlator::new(config());
    let a = alert("HighLatency", "checkout-api", Some("shop"), 0);
    let b = alert("Http5xx", "checkout-api", Some("shop"), 5);
    let out = c.ingest(vec![a.clone(), b.clone()], None, &[], Utc::now());
    let id = out.created[0].clone();
    let mut resolved = a.clone();
    resolved.status = AlertStatus::Resolved;
    resolved.ends_at = Some(t0() + Duration::seconds(90));
    let out = c.ingest(vec![resolved], None, &[], Utc::now());
    assert_eq!(out.write.incidents[0].status, IncidentStatus::Open);
    let mut b_resolved = b;
    b_resolved.status = AlertStatus::Resolved;
    let out = c.ingest(vec![b_resolved], None, &[], Utc::now());
    assert_eq!(out.write.incidents[0].id, id);
    assert_eq!(out.write.incidents[0].status, IncidentStatus::Resolved);
}

#[test]
fn alerts_far_apart_in_event_time_are_separate_incidents() {
    let mut c = Correlator::new(config());
    let a = alert("HighLatency", "checkout-api", Some("shop"), 0);
    let b = alert("Http5xx", "checkout-api", Some("shop"), 3 * 3600);
    let out = c.ingest(vec![a, b], None, &[], Utc::now());
    assert_eq!(out.created.len(), 2);
}

#[test]
fn a_delayed_storm_groups_by_event_time_not_arrival() {
    // Arriving an hour late changes nothing: grouping uses startsAt.
    let mut live = Correlator::new(config());
    let mut late = Correlator::new(config());
    let now = Utc::now();
    let a = live.ingest(storm(), None, &[], now);
    let b = late.ingest(storm(), None, &[], now + Duration::hours(1));
    assert_eq!(a.created.len(), b.created.len());
}

#[test]
fn an_incident_with_an_investigation_is_not_merged_away() {
    let mut c = Correlator::new(CorrelationConfig {
        topology_hops: 1,
        ..config()
    });
    let now = Utc::now();
    let x = c.ingest(
        vec![alert("A", "checkout-api", Some("shop"), 0)],
        None,
        &[],
        now,
    );
    let y = c.ingest(
        vec![alert("B", "orders-db", Some("shop-data"), 0)],
        None,
        &[],
        now,
    );
    assert_eq!(
        x.created.len() + y.created.len(),
        2,
        "not yet linked: no fw alert"
    );
    c.mark_dispatched(&y.created[0]);
    // fw-core-01 links both; y is dispatched, so it survives.
    let z = c.ingest(vec![alert("C", "fw-core-01", None, 10)], None, &[], now);
    assert!(z.write.merged.iter().all(|(from, _)| from != &y.created[0]));
}

#[test]
fn a_generic_incident_keeps_its_alerts_and_title_together() {
    let mut c = Correlator::new(CorrelationConfig::default());
    let alerts = vec![
        alert("A", "svc-a", Some("ns-a"), 0),
        alert("B", "svc-b", Some("ns-b"), 0),
    ];
    let out = c.ingest(
        alerts,
        Some("checkout is down"),
        &[edge("svc-a", "svc-b")],
        Utc::now(),
    );
    assert_eq!(out.created.len(), 1);
    assert_eq!(out.write.incidents[0].title, "checkout is down");
    assert_eq!(out.write.incidents[0].topology.len(), 1);
}

#[test]
fn idle_incidents_stop_accepting_alerts_after_a_window_of_wall_time() {
    let mut c = Correlator::new(config());
    let now = Utc::now();
    let first = c.ingest(
        vec![alert("A", "checkout-api", Some("shop"), 0)],
        None,
        &[],
        now,
    );
    let later = c.ingest(
        vec![alert("B", "checkout-api", Some("shop"), 30)],
        None,
        &[],
        now + Duration::seconds(601),
    );
    assert_eq!(later.created.len(), 1);
    assert_ne!(later.created[0], first.created[0]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// The same storm in any arrival order yields the same partition.
    #[test]
    fn grouping_does_not_depend_on_arrival_order(seed in any::<u64>()) {
        let mut alerts = storm();
        alerts.extend(unrelated());
        // Fisher-Yates with a tiny LCG so the order is a function of the seed.
        let mut s = seed | 1;
        for i in (1..alerts.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let j = (s >> 33) as usize % (i + 1);
            alerts.swap(i, j);
        }
        let mut c = Correlator::new(config());
        let out = c.ingest(alerts.clone(), None, &[], Utc::now());
        let mut placed = out.write.alerts.clone();
        for (from, into) in &out.write.merged {
            for (id, _) in placed.iter_mut() {
                if id == from { *id = into.clone(); }
            }
        }
        prop_assert_eq!(partition(&c, &alerts, &placed), vec![1, 1, 300]);
        let ids: HashSet<_> = placed.iter().map(|(id, _)| id.clone()).collect();
        prop_assert_eq!(ids.len(), 3);
    }
}

fn demo_partition(reverse: bool) -> (Vec<usize>, warden_demo::Expected) {
    let scenario = warden_demo::Scenario::firewall_cascade(warden_demo::default_base(), 42);
    let mut c = Correlator::new(CorrelationConfig {
        topology: scenario.topology_hints(),
        ..CorrelationConfig::default()
    });
    let mut payloads = scenario.storm();
    if reverse {
        payloads.reverse();
    }
    let mut placed: BTreeMap<String, String> = BTreeMap::new();
    let now = Utc::now();
    for p in payloads {
        let alerts =
            warden_correlate::parse_alertmanager(&serde_json::to_vec(&p).unwrap()).unwrap();
        let out = c.ingest(alerts, None, &[], now);
        for (from, into) in &out.write.merged {
            for v in placed.values_mut() {
                if v == &from.0 {
                    *v = into.0.clone();
                }
            }
        }
        for (id, a) in out.write.alerts {
            placed.insert(a.fingerprint.0.clone(), id.0);
        }
    }
    let mut sizes: BTreeMap<String, usize> = BTreeMap::new();
    for id in placed.values() {
        *sizes.entry(id.clone()).or_default() += 1;
    }
    let mut sizes: Vec<usize> = sizes.into_values().collect();
    sizes.sort_unstable();
    (sizes, scenario.expected())
}

#[test]
fn the_demo_storm_is_one_incident_for_the_fault_and_one_per_unrelated_alert() {
    for reverse in [false, true] {
        let (sizes, expected) = demo_partition(reverse);
        let mut want = vec![1; expected.unrelated_alerts];
        want.push(expected.fault_alerts);
        assert_eq!(sizes, want, "reverse arrival order: {reverse}");
    }
}
