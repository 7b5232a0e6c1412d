#![doc = include_str!("../README.md")]

mod alerts;
mod bundle;
mod fleet;
mod rng;
mod storm;
mod timeline;
mod topology;

use std::collections::BTreeSet;
use std::io;
use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use warden_core::TopologyHint;
use warden_core::telemetry::{BundleManifest, TopologyGraph};

use crate::alerts::AlertSpec;
use crate::fleet::Fleet;

pub use bundle::{DENY_RULE, FORMAT_VERSION, INJECTION_TEXT, RESET_RULE};
pub use storm::{
    GROUP_INTERVAL_SECONDS, GROUP_WAIT_SECONDS, MAX_ALERTS_PER_PAYLOAD, Notification,
    REPEAT_INTERVAL_SECONDS, STORM_HORIZON_SECONDS,
};
pub use timeline::{BUNDLE_AFTER, BUNDLE_BEFORE, ONSET};
pub use topology::{
    APP_CIDR, BASTION, BATCH_HOST, CATALOG_DB, CHECKOUT, DB_CIDR, FIREWALL, FIREWALL_RULE,
    FRONT_END, IDENTITY_GATEWAY, LOG_CLUSTER, ORDERS_API, ORDERS_DB, PAYMENTS, RECOMMENDATIONS,
};

/// What a correct diagnosis of the scenario finds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    /// The topology node at fault: the firewall.
    pub root_cause_subject: String,
    /// The change that caused it (`changes.jsonl`).
    pub root_cause_change_id: String,
    /// The moment of the change (T0).
    pub change_at: DateTime<Utc>,
    /// Distinct fingerprints caused by the fault.
    pub fault_alerts: usize,
    /// Distinct fingerprints of the unrelated alerts, each its own incident.
    pub unrelated_alerts: usize,
    /// The `service` labels of the unrelated alerts.
    pub unrelated_services: BTreeSet<String>,
}

/// The firewall-cascade scenario: a seed and a base time in, the same
/// alert storm and telemetry bundle out, every time.
#[derive(Debug, Clone)]
pub struct Scenario {
    base: DateTime<Utc>,
    seed: u64,
    fleet: Fleet,
    alerts: Vec<AlertSpec>,
}

impl Scenario {
    /// The scenario with the firewall change at `base` (T0).
    pub fn firewall_cascade(base: DateTime<Utc>, seed: u64) -> Scenario {
        let fleet = Fleet::new(seed);
        let mut alerts = alerts::fault_alerts(base, seed, &fleet);
        alerts.extend(alerts::unrelated_alerts(base, seed, &fleet));
        Scenario {
            base,
            seed,
            fleet,
            alerts,
        }
    }

    /// T0: the moment of the firewall change.
    pub fn base(&self) -> DateTime<Utc> {
        self.base
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The webhook payloads in the order Alertmanager sends them.
    pub fn storm(&self) -> Vec<serde_json::Value> {
        self.notifications()
            .into_iter()
            .map(|n| n.payload)
            .collect()
    }

    /// The storm's distinct alerts (first sighting of each fingerprint, in
    /// fingerprint order), firing, as correlation hands them to an
    /// investigation. Without `keep_unrelated` the alerts of the unrelated
    /// services are left out, as correlation separates them.
    pub fn distinct_alerts(&self, keep_unrelated: bool) -> Vec<warden_core::Alert> {
        let unrelated = self.expected().unrelated_services;
        let mut alerts = std::collections::BTreeMap::new();
        for payload in self.storm() {
            let Some(list) = payload.get("alerts").and_then(|a| a.as_array()) else {
                continue;
            };
            for a in list {
                let (Ok(labels), Ok(starts_at)) = (
                    serde_json::from_value::<std::collections::BTreeMap<String, String>>(
                        a.get("labels").cloned().unwrap_or_default(),
                    ),
                    serde_json::from_value::<DateTime<Utc>>(
                        a.get("startsAt").cloned().unwrap_or_default(),
                    ),
                ) else {
                    continue;
                };
                if !keep_unrelated && labels.get("service").is_some_and(|s| unrelated.contains(s)) {
                    continue;
                }
                let fingerprint = warden_core::Fingerprint::from_labels(&labels);
                alerts
                    .entry(fingerprint.clone())
                    .or_insert(warden_core::Alert {
                        fingerprint,
                        status: warden_core::AlertStatus::Firing,
                        labels,
                        annotations: std::collections::BTreeMap::new(),
                        starts_at,
                        ends_at: None,
                        generator_url: None,
                    });
            }
        }
        alerts.into_values().collect()
    }

    /// The webhook payloads with the time Alertmanager sends each, for a
    /// replay that keeps the original pacing.
    pub fn notifications(&self) -> Vec<Notification> {
        // Serialising these plain structs to a `Value` cannot fail (string
        // keys, no non-finite floats); an empty storm is the safe fallback.
        storm::notifications(&self.alerts, self.base, self.seed).unwrap_or_default()
    }

    /// Distinct alerts (fingerprints) in the storm, fault and unrelated.
    pub fn alert_count(&self) -> usize {
        self.alerts
            .iter()
            .map(AlertSpec::fingerprint)
            .collect::<BTreeSet<_>>()
            .len()
    }

    pub fn expected(&self) -> Expected {
        let distinct = |unrelated: bool| {
            self.alerts
                .iter()
                .filter(|a| a.unrelated == unrelated)
                .map(AlertSpec::fingerprint)
                .collect::<BTreeSet<_>>()
                .len()
        };
        Expected {
            root_cause_subject: FIREWALL.to_string(),
            root_cause_change_id: bundle::firewall_change_id(self.base),
            change_at: self.base,
            fault_alerts: distinct(false),
            unrelated_alerts: distinct(true),
            unrelated_services: self
                .alerts
                .iter()
                .filter(|a| a.unrelated)
                .filter_map(|a| a.labels.get("service").cloned())
                .collect(),
        }
    }

    /// Dependency edges for correlation (see [`topology_hints`](Self::topology_hints)).
    pub fn topology_hints(&self) -> Vec<TopologyHint> {
        topology::hints()
    }

    /// The graph written to the bundle's `topology.json`.
    pub fn topology(&self) -> TopologyGraph {
        topology::graph()
    }

    /// The bundle's `manifest.json`.
    pub fn manifest(&self) -> BundleManifest {
        bundle::manifest(self.base)
    }

    /// Writes the telemetry bundle into `dir` (created if missing).
    pub fn write_bundle(&self, dir: &Path) -> io::Result<()> {
        bundle::write(dir, self.base, self.seed, &self.fleet, &topology::graph())
    }
}

/// "Now minus 30 minutes", truncated to the minute: a T0 that makes the
/// replayed alerts look recent while the whole storm is already in the past.
pub fn default_base() -> DateTime<Utc> {
    let now = Utc::now();
    let t = (now - TimeDelta::minutes(30)).timestamp();
    DateTime::from_timestamp(t - t.rem_euclid(60), 0).unwrap_or(now)
}

/// The read policy a control plane with the built-in configuration
/// (`examples/warden.yaml`) writes into each investigation's input
/// document, for running the agent on the demo bundle by hand or in tests.
/// A test in `warden-control` holds it equal to what the scheduler writes.
pub fn read_policy() -> warden_core::agent_input::ReadPolicy {
    use warden_core::agent_input::{DataDomain, ReadPolicy};
    let domain = |name: &str, serves: &str, connector: &str| DataDomain {
        name: name.into(),
        serves: vec![serves.into()],
        connector: connector.into(),
    };
    let domains = vec![
        domain("network-monitoring", "network", "prometheus"),
        domain("application-metrics", "application", "prometheus"),
        domain("log-aggregation", "*", "loki"),
        domain("database", "database", "postgres"),
        domain("security-events", "security", "http"),
        domain("llm-inference", "*", "http"),
    ];
    let names: Vec<String> = domains.iter().map(|d| d.name.clone()).collect();
    ReadPolicy {
        environment: "dev".into(),
        phases: warden_core::Phases::defaults(&names),
        protected_namespaces: vec![
            "kube-system".into(),
            "kube-public".into(),
            "kube-node-lease".into(),
        ],
        target_namespaces: vec!["default".into()],
        domains,
        policies: Vec::new(),
    }
}
