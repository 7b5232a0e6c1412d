//! From observations to an analysed picture of the incident.
//!
//! The reasoner receives raw query answers; this module sorts them by kind
//! (remembering which observation each item came from, so findings can cite
//! it) and runs the evidence engines over them.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use warden_core::Incident;
use warden_core::ports::{Observation, QueryResult};
use warden_core::telemetry::{
    ChangeRecord, FlowRecord, LogLine, SecurityEvent, Series, TimeRange, TopologyGraph,
};

use super::BuiltinConfig;
use crate::engines::anomaly::{SeriesScore, score_all};
use crate::engines::changes::{ChangeCandidate, correlate};
use crate::engines::flows::impairments;
use crate::engines::templates::mine_activity;
use crate::engines::topology::{
    NodeHealth, OriginCandidate, Scope, node_health, rank_origins, scope,
};

/// Query answers sorted by kind, each item with the index of the
/// observation it came from.
#[derive(Debug, Default)]
pub struct Collected {
    pub topology: TopologyGraph,
    pub topology_obs: Option<usize>,
    pub series: Vec<(usize, Series)>,
    pub logs: Vec<(usize, LogLine)>,
    pub changes: Vec<(usize, ChangeRecord)>,
    pub changes_obs: Option<usize>,
    pub flows: Vec<(usize, FlowRecord)>,
    pub flows_obs: Option<usize>,
    pub security: Vec<(usize, SecurityEvent)>,
    pub security_obs: Option<usize>,
    /// Metrics observations per `service` label they asked for.
    pub metrics_obs: BTreeMap<String, usize>,
    /// Logs observations per service they asked for.
    pub logs_obs: BTreeMap<String, usize>,
    pub any_metrics_obs: Option<usize>,
    pub any_logs_obs: Option<usize>,
}

impl Collected {
    pub fn from_observations(observations: &[Observation]) -> Self {
        let mut c = Collected::default();
        for (i, o) in observations.iter().enumerate() {
            let Some(result) = &o.result else { continue };
            match result {
                QueryResult::Topology(g) => {
                    merge_topology(&mut c.topology, g);
                    c.topology_obs.get_or_insert(i);
                }
                QueryResult::Metrics(items) => {
                    c.series.extend(items.iter().map(|s| (i, s.clone())));
                    if let warden_core::ports::Query::Metrics { labels, .. } = &o.query
                        && let Some(service) = labels.get("service")
                    {
                        c.metrics_obs.entry(service.clone()).or_insert(i);
                    }
                    c.any_metrics_obs.get_or_insert(i);
                }
                QueryResult::Logs(items) => {
                    c.logs.extend(items.iter().map(|l| (i, l.clone())));
                    if let warden_core::ports::Query::Logs {
                        service: Some(service),
                        ..
                    } = &o.query
                    {
                        c.logs_obs.entry(service.clone()).or_insert(i);
                    }
                    c.any_logs_obs.get_or_insert(i);
                }
                QueryResult::Changes(items) => {
                    c.changes.extend(items.iter().map(|x| (i, x.clone())));
                    c.changes_obs.get_or_insert(i);
                }
                QueryResult::Flows(items) => {
                    c.flows.extend(items.iter().map(|x| (i, x.clone())));
                    c.flows_obs.get_or_insert(i);
                }
                QueryResult::SecurityEvents(items) => {
                    c.security.extend(items.iter().map(|x| (i, x.clone())));
                    c.security_obs.get_or_insert(i);
                }
            }
        }
        c
    }

    pub fn series(&self) -> Vec<Series> {
        self.series.iter().map(|(_, s)| s.clone()).collect()
    }

    pub fn logs(&self) -> Vec<LogLine> {
        self.logs.iter().map(|(_, l)| l.clone()).collect()
    }

    /// The observation that answered for metrics of `node`.
    pub fn metrics_obs_for(&self, node: &str) -> Option<usize> {
        self.metrics_obs
            .get(node)
            .copied()
            .or_else(|| {
                self.series
                    .iter()
                    .find(|(_, s)| s.label("service") == Some(node))
                    .map(|(i, _)| *i)
            })
            .or(self.any_metrics_obs)
    }

    pub fn logs_obs_for(&self, node: &str) -> Option<usize> {
        self.logs_obs.get(node).copied().or(self.any_logs_obs)
    }
}

fn merge_topology(into: &mut TopologyGraph, from: &TopologyGraph) {
    for n in &from.nodes {
        if into.node(&n.id).is_none() {
            into.nodes.push(n.clone());
        }
    }
    for e in &from.edges {
        if !into.edges.contains(e) {
            into.edges.push(e.clone());
        }
    }
}

/// The windows an investigation compares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Windows {
    pub all: TimeRange,
    /// Before the incident: what normal looked like.
    pub baseline: TimeRange,
    /// From shortly before the first alert on.
    pub incident: TimeRange,
}

impl Windows {
    /// Splits `all` at the first alert less `guard`: alerts fire after
    /// their condition has held for a while, so the trouble starts earlier
    /// than the alert says.
    pub fn around(all: TimeRange, first_alert: DateTime<Utc>, guard: Duration) -> Self {
        let split = (first_alert - guard).clamp(all.start, all.end);
        Windows {
            all,
            baseline: TimeRange {
                start: all.start,
                end: split,
            },
            incident: TimeRange {
                start: split,
                end: all.end,
            },
        }
    }
}

/// Topology node ids (or metric/log subjects) the incident's alerts name.
pub fn alerted_nodes(incident: &Incident) -> BTreeSet<String> {
    incident
        .alerts
        .iter()
        .flat_map(|a| {
            a.labels
                .iter()
                .filter(|(k, _)| k.as_str() != "alertname" && k.as_str() != "severity")
                .map(|(_, v)| v.clone())
        })
        .collect()
}

/// Everything the engines say about a set of observations.
#[derive(Debug, Clone, Default)]
pub struct Picture {
    pub topology: TopologyGraph,
    pub scores: Vec<SeriesScore>,
    pub health: BTreeMap<String, NodeHealth>,
    pub scope: Scope,
    pub origins: Vec<OriginCandidate>,
    pub changes: Vec<ChangeCandidate>,
}

impl Picture {
    pub fn analyse(
        collected: &Collected,
        windows: &Windows,
        alerted: &BTreeSet<String>,
        cfg: &BuiltinConfig,
    ) -> Self {
        let topology = collected.topology.clone();
        let scores = score_all(
            &collected.series(),
            windows.baseline,
            windows.incident,
            &cfg.anomaly,
        );
        let templates = mine_activity(
            &collected.logs(),
            windows.baseline,
            windows.incident,
            &cfg.mining,
        );
        let health = node_health(&topology, &scores, &templates);
        let alerted: BTreeSet<String> = alerted
            .iter()
            .filter(|a| topology.node(a).is_some() || health.contains_key(*a))
            .cloned()
            .collect();
        let scope = scope(&topology, &health, &alerted);
        let flows: Vec<FlowRecord> = collected.flows.iter().map(|(_, f)| f.clone()).collect();
        let impairments = impairments(&flows, windows.baseline, windows.incident, &cfg.flows);
        let mut device_impairment: BTreeMap<String, f64> = BTreeMap::new();
        for imp in &impairments {
            if let Some(device) = &imp.device {
                let v = device_impairment.entry(device.clone()).or_default();
                *v = v.max(imp.strength);
            }
        }
        let origins = rank_origins(&topology, &health, &scope, &device_impairment);
        let records: Vec<ChangeRecord> = collected.changes.iter().map(|(_, c)| c.clone()).collect();
        let changes = match scope.onset {
            Some(onset) => correlate(&records, &topology, &health, &scope, onset, &cfg.changes),
            None => Vec::new(),
        };
        Picture {
            topology,
            scores,
            health,
            scope,
            origins,
            changes,
        }
    }

    /// The affected node that degraded first.
    pub fn first_symptom(&self) -> Option<(&str, DateTime<Utc>)> {
        self.scope
            .affected
            .iter()
            .filter_map(|n| Some((n.as_str(), self.health.get(n)?.onset?)))
            .min_by_key(|(_, t)| *t)
    }
}
