//! Topology propagation: which node did the trouble start at?
//!
//! Failures travel against the direction of calls: when a dependency
//! degrades, its callers degrade after it. The engine combines each node's
//! health (metric anomalies and log templates) with the dependency graph
//! and ranks candidate origins:
//!
//! - a node with its own bad health (errors, latency, saturation, resources)
//!   whose dependencies are fine, or degraded later, can be an origin;
//! - a node whose dependency degraded *earlier* is downstream of it;
//! - a node whose only anomaly is load (connections, requests) while its
//!   callers are unwell merely reflects its callers: a symptom;
//! - several callers of one dependency degrading together point below
//!   them, to the dependency or to a network device on the path to it.
//!
//! An origin is only as good as what it explains: its coverage is the share
//! of the incident's symptom nodes that are it or (transitively) call it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use warden_core::telemetry::TopologyGraph;

use super::anomaly::SeriesScore;
use super::stats::{noisy_or, saturate};
use super::templates::TemplateActivity;

/// Onsets closer than this are treated as simultaneous: samples are taken
/// every 15–60 s, so finer ordering is noise.
pub const SIMULTANEOUS: Duration = Duration::seconds(60);

/// What the evidence says about one node.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NodeHealth {
    pub node: String,
    /// 0..1 from anomalies in the node's own health (not load).
    pub strength: f64,
    /// 0..1 from load anomalies.
    pub load_strength: f64,
    /// Earliest own-health anomaly.
    pub own_onset: Option<DateTime<Utc>>,
    /// Earliest anomaly of any kind.
    pub onset: Option<DateTime<Utc>>,
    /// Anomalous metrics, by name.
    pub anomalous_metrics: Vec<String>,
    /// Metrics of the node that stayed normal.
    pub normal_metrics: Vec<String>,
    /// New or bursting WARN+ templates in its log.
    pub problem_templates: usize,
    /// Dependencies named in those templates.
    pub mentions: BTreeSet<String>,
}

impl NodeHealth {
    pub fn is_anomalous(&self) -> bool {
        self.onset.is_some()
    }

    /// Unwell in itself, not only busier.
    pub fn is_unwell(&self) -> bool {
        self.own_onset.is_some()
    }

    pub fn is_load_only(&self) -> bool {
        self.onset.is_some() && self.own_onset.is_none()
    }
}

fn earliest(a: Option<DateTime<Utc>>, b: DateTime<Utc>) -> Option<DateTime<Utc>> {
    Some(a.map_or(b, |a| a.min(b)))
}

/// Whether `text` names `node` as a word (not as part of a longer name).
pub fn mentions(text: &str, node: &str) -> bool {
    if node.is_empty() {
        return false;
    }
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.';
    text.match_indices(node).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + node.len()..].chars().next();
        before.is_none_or(|c| !is_name_char(c))
            && after.is_none_or(|c| !is_name_char(c) || c == '.')
    })
}

/// Per-node health from series scores and log template activity.
pub fn node_health(
    topology: &TopologyGraph,
    scores: &[SeriesScore],
    templates: &[TemplateActivity],
) -> BTreeMap<String, NodeHealth> {
    let mut out: BTreeMap<String, NodeHealth> = BTreeMap::new();
    let mut own_z: BTreeMap<String, f64> = BTreeMap::new();
    let mut load_z: BTreeMap<String, f64> = BTreeMap::new();
    for s in scores {
        let Some(node) = &s.node else { continue };
        let h = out.entry(node.clone()).or_insert_with(|| NodeHealth {
            node: node.clone(),
            ..NodeHealth::default()
        });
        match &s.onset {
            None => h.normal_metrics.push(s.metric.clone()),
            Some(onset) => {
                h.anomalous_metrics.push(s.metric.clone());
                h.onset = earliest(h.onset, onset.at);
                let bucket = if s.class.is_own_health() {
                    h.own_onset = earliest(h.own_onset, onset.at);
                    &mut own_z
                } else {
                    &mut load_z
                };
                let z = bucket.entry(node.clone()).or_default();
                *z = z.max(s.peak_z.abs());
            }
        }
    }
    let mut template_weight: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for t in templates.iter().filter(|t| t.is_problem()) {
        let h = out.entry(t.service.clone()).or_insert_with(|| NodeHealth {
            node: t.service.clone(),
            ..NodeHealth::default()
        });
        h.problem_templates += 1;
        h.onset = earliest(h.onset, t.onset);
        h.own_onset = earliest(h.own_onset, t.onset);
        for edge in topology.callees(&t.service) {
            if mentions(&t.template, &edge.to) || mentions(&t.example, &edge.to) {
                h.mentions.insert(edge.to.clone());
            }
        }
        let weight = if t.level == "ERROR" || t.level == "FATAL" {
            0.5
        } else {
            0.3
        };
        template_weight
            .entry(t.service.clone())
            .or_default()
            .push(weight);
    }
    for (node, h) in &mut out {
        // Several series may share a metric name (one per label set); a
        // name with any anomalous series is not "normal".
        let anomalous = h.anomalous_metrics.clone();
        h.normal_metrics.retain(|m| !anomalous.contains(m));
        let metric = own_z.get(node).map_or(0.0, |z| saturate(*z, 8.0));
        let logs = template_weight
            .get(node)
            .map_or(0.0, |w| noisy_or(w.iter().copied()));
        h.strength = noisy_or([metric, logs]);
        h.load_strength = load_z.get(node).map_or(0.0, |z| saturate(*z, 8.0));
        h.anomalous_metrics.sort();
        h.anomalous_metrics.dedup();
        h.normal_metrics.sort();
        h.normal_metrics.dedup();
    }
    out
}

fn walk(topology: &TopologyGraph, start: &str, up: bool) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from([start.to_string()]);
    while let Some(node) = queue.pop_front() {
        let next: Vec<String> = if up {
            topology.callers(&node).map(|e| e.from.clone()).collect()
        } else {
            topology.callees(&node).map(|e| e.to.clone()).collect()
        };
        for n in next {
            if n != start && seen.insert(n.clone()) {
                queue.push_back(n);
            }
        }
    }
    seen
}

/// Everything that calls `node`, directly or not.
pub fn transitive_callers(topology: &TopologyGraph, node: &str) -> BTreeSet<String> {
    walk(topology, node, true)
}

/// Everything `node` depends on, directly or not.
pub fn transitive_callees(topology: &TopologyGraph, node: &str) -> BTreeSet<String> {
    walk(topology, node, false)
}

/// `seeds` with everything upstream and downstream of them, and the
/// network devices on the paths between those.
pub fn related(topology: &TopologyGraph, seeds: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = seeds.clone();
    for s in seeds {
        out.extend(transitive_callers(topology, s));
        out.extend(transitive_callees(topology, s));
    }
    let devices: Vec<String> = topology
        .edges
        .iter()
        .filter(|e| out.contains(&e.from) && out.contains(&e.to))
        .flat_map(|e| e.via.iter().cloned())
        .collect();
    out.extend(devices);
    out
}

/// The nodes an incident is about.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Scope {
    /// Anomalous nodes on a dependency path with the alerted ones (all
    /// anomalous nodes when no alert names a node).
    pub affected: BTreeSet<String>,
    /// The symptoms to explain: the alerted anomalous nodes, or all
    /// affected ones when no alerted node is anomalous.
    pub symptoms: BTreeSet<String>,
    /// The earliest onset among affected nodes.
    pub onset: Option<DateTime<Utc>>,
}

/// Narrows anomalies to those connected to what was alerted on, so that an
/// unrelated host's trouble at the same time is not taken for a symptom.
pub fn scope(
    topology: &TopologyGraph,
    health: &BTreeMap<String, NodeHealth>,
    alerted: &BTreeSet<String>,
) -> Scope {
    let anomalous: BTreeSet<String> = health
        .values()
        .filter(|h| h.is_anomalous())
        .map(|h| h.node.clone())
        .collect();
    let known: BTreeSet<String> = alerted
        .iter()
        .filter(|a| topology.node(a).is_some() || health.contains_key(*a))
        .cloned()
        .collect();
    let affected: BTreeSet<String> = if known.is_empty() {
        anomalous.clone()
    } else {
        let around = related(topology, &known);
        anomalous.intersection(&around).cloned().collect()
    };
    let alerted_anomalous: BTreeSet<String> = affected.intersection(&known).cloned().collect();
    let symptoms = if alerted_anomalous.is_empty() {
        affected.clone()
    } else {
        alerted_anomalous
    };
    let onset = affected.iter().filter_map(|n| health.get(n)?.onset).min();
    Scope {
        affected,
        symptoms,
        onset,
    }
}

/// Symptom nodes explained by trouble entering at `entry`: see
/// [`chain_reach`].
pub fn explained_by(
    topology: &TopologyGraph,
    health: &BTreeMap<String, NodeHealth>,
    entry: &BTreeSet<String>,
    symptoms: &BTreeSet<String>,
) -> BTreeSet<String> {
    symptoms
        .intersection(&chain_reach(topology, health, entry))
        .cloned()
        .collect()
}

/// Every node trouble entering at `entry` accounts for: the entry nodes
/// themselves, their transitive callers, and dependencies of theirs that
/// only show load or degraded after them (consequences of the entry nodes'
/// behaviour, such as a database filling with abandoned sessions).
pub fn chain_reach(
    topology: &TopologyGraph,
    health: &BTreeMap<String, NodeHealth>,
    entry: &BTreeSet<String>,
) -> BTreeSet<String> {
    let mut reach = entry.clone();
    for e in entry {
        reach.extend(transitive_callers(topology, e));
        let entry_onset = health.get(e).and_then(|h| h.own_onset);
        for edge in topology.callees(e) {
            let Some(callee) = health.get(&edge.to) else {
                continue;
            };
            let after_entry = matches!(
                (entry_onset, callee.own_onset),
                (Some(a), Some(b)) if b > a + SIMULTANEOUS
            );
            if callee.is_load_only() || after_entry {
                reach.insert(edge.to.clone());
            }
        }
    }
    reach
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OriginKind {
    /// A service, database or host.
    Component,
    /// A network device on the path of dependency edges.
    PathDevice,
}

/// A candidate origin of the incident.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OriginCandidate {
    pub node: String,
    pub kind: OriginKind,
    /// 0..1.
    pub score: f64,
    /// Where trouble enters the dependency graph if this is the origin.
    pub entry: BTreeSet<String>,
    pub explains: BTreeSet<String>,
    pub coverage: f64,
    /// Why the score is what it is, one reason a line.
    pub reasons: Vec<String>,
    /// Set when a dependency of this node degraded first.
    pub downstream_of: Option<String>,
    /// Set when the node only reflects its callers.
    pub symptom_only: bool,
    /// The product of the penalties behind `reasons` (1.0 = none).
    pub penalty: f64,
}

/// Ranks candidate origins, best first. `device_impairment` gives, per
/// network device, how clearly traffic through it is impaired (0..1).
pub fn rank_origins(
    topology: &TopologyGraph,
    health: &BTreeMap<String, NodeHealth>,
    scope: &Scope,
    device_impairment: &BTreeMap<String, f64>,
) -> Vec<OriginCandidate> {
    let coverage = |explains: &BTreeSet<String>| {
        if scope.symptoms.is_empty() {
            0.0
        } else {
            explains.len() as f64 / scope.symptoms.len() as f64
        }
    };
    let mut out = Vec::new();
    for node in &scope.affected {
        let Some(h) = health.get(node) else { continue };
        let entry = BTreeSet::from([node.clone()]);
        let explains = explained_by(topology, health, &entry, &scope.symptoms);
        let cov = coverage(&explains);
        let mut reasons = Vec::new();
        let mut factor = 1.0;
        let mut downstream_of = None;
        let symptom_only = h.is_load_only()
            && topology
                .callers(node)
                .any(|e| health.get(&e.from).is_some_and(NodeHealth::is_unwell));
        if symptom_only {
            factor *= 0.2;
            reasons.push(format!(
                "{node} shows only load anomalies ({}) while its own health metrics ({}) are normal and its callers are unwell: it reflects its callers",
                h.anomalous_metrics.join(", "),
                if h.normal_metrics.is_empty() { "none recorded".to_string() } else { h.normal_metrics.join(", ") }
            ));
        }
        if let Some(own) = h.own_onset {
            for edge in topology.callees(node) {
                let Some(dep) = health.get(&edge.to) else {
                    continue;
                };
                if let Some(dep_onset) = dep.own_onset
                    && dep_onset < own
                {
                    factor *= 0.3;
                    downstream_of = Some(edge.to.clone());
                    reasons.push(format!(
                        "its dependency {} degraded first ({}), before {node} ({})",
                        edge.to,
                        dep_onset.format("%H:%M:%S"),
                        own.format("%H:%M:%S")
                    ));
                }
                let siblings: Vec<&str> = topology
                    .callers(&edge.to)
                    .filter(|e| e.from != *node)
                    .filter(|e| {
                        health
                            .get(&e.from)
                            .and_then(|s| s.own_onset)
                            .is_some_and(|t| (t - own).abs() <= SIMULTANEOUS * 2)
                    })
                    .map(|e| e.from.as_str())
                    .collect();
                if !siblings.is_empty() && !dep.is_unwell() {
                    factor *= 0.6;
                    reasons.push(format!(
                        "{} also {} {} and degraded at the same time: a cause shared below them (the dependency or the path to it) is likelier",
                        siblings.join(", "),
                        if siblings.len() == 1 { "calls" } else { "call" },
                        edge.to
                    ));
                }
            }
            let healthy_named: Vec<&String> = h
                .mentions
                .iter()
                .filter(|d| health.get(*d).is_none_or(|dh| !dh.is_unwell()))
                .collect();
            if !healthy_named.is_empty() {
                factor *= 0.5;
                reasons.push(format!(
                    "its errors name its dependency {}, whose own health is normal: the failure is in reaching it",
                    healthy_named.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                ));
            }
        }
        let strength = if symptom_only {
            h.load_strength * 0.5
        } else {
            h.strength.max(h.load_strength * 0.5)
        };
        let score = ((0.4 * strength + 0.6 * cov) * factor).clamp(0.0, 1.0);
        out.push(OriginCandidate {
            node: node.clone(),
            kind: OriginKind::Component,
            score,
            entry,
            explains,
            coverage: cov,
            reasons,
            downstream_of,
            symptom_only,
            penalty: factor,
        });
    }

    let devices: BTreeSet<&String> = topology.edges.iter().flat_map(|e| e.via.iter()).collect();
    for device in devices {
        let entry: BTreeSet<String> = topology
            .edges_via(device)
            .filter(|e| {
                health.get(&e.from).is_some_and(NodeHealth::is_unwell)
                    && scope.affected.contains(&e.from)
            })
            .map(|e| e.from.clone())
            .collect();
        if entry.is_empty() {
            continue;
        }
        let mut explains = explained_by(topology, health, &entry, &scope.symptoms);
        if scope.symptoms.contains(device) {
            explains.insert(device.clone());
        }
        let cov = coverage(&explains);
        let impairment = device_impairment.get(device).copied().unwrap_or(0.0);
        let mut reasons = vec![format!(
            "{device} is on the path of {} whose callers degraded",
            topology
                .edges_via(device)
                .filter(|e| entry.contains(&e.from))
                .map(|e| format!("{} → {}", e.from, e.to))
                .collect::<Vec<_>>()
                .join(", ")
        )];
        if impairment > 0.0 {
            reasons.push(format!(
                "traffic through {device} is impaired (strength {impairment:.2})"
            ));
        }
        let factor = if impairment > 0.0 { 1.0 } else { 0.5 };
        let score = ((0.4 * impairment + 0.6 * cov) * factor).clamp(0.0, 1.0);
        out.push(OriginCandidate {
            node: device.clone(),
            kind: OriginKind::PathDevice,
            score,
            entry,
            explains,
            coverage: cov,
            reasons,
            downstream_of: None,
            symptom_only: false,
            penalty: factor,
        });
    }
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.node.cmp(&b.node)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use warden_core::telemetry::{TopologyEdge, TopologyNode};

    fn graph(edges: &[(&str, &str, &[&str])]) -> TopologyGraph {
        let mut nodes: BTreeSet<&str> = BTreeSet::new();
        for (f, t, via) in edges {
            nodes.insert(f);
            nodes.insert(t);
            nodes.extend(via.iter());
        }
        TopologyGraph {
            nodes: nodes
                .into_iter()
                .map(|n| TopologyNode {
                    id: n.into(),
                    kind: "service".into(),
                    domain: "application".into(),
                    namespace: None,
                })
                .collect(),
            edges: edges
                .iter()
                .map(|(f, t, via)| TopologyEdge {
                    from: (*f).into(),
                    to: (*t).into(),
                    via: via.iter().map(|v| (*v).to_string()).collect(),
                    port: None,
                })
                .collect(),
        }
    }

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap()
    }

    fn unwell(node: &str, onset: i64, strength: f64) -> NodeHealth {
        NodeHealth {
            node: node.into(),
            strength,
            own_onset: Some(at(onset)),
            onset: Some(at(onset)),
            anomalous_metrics: vec!["errors".into()],
            ..NodeHealth::default()
        }
    }

    fn health(items: Vec<NodeHealth>) -> BTreeMap<String, NodeHealth> {
        items.into_iter().map(|h| (h.node.clone(), h)).collect()
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_dependency_that_degrades_first_outranks_its_callers() {
        let g = graph(&[("web", "api", &[]), ("api", "store", &[])]);
        let h = health(vec![
            unwell("store", 0, 0.9),
            unwell("api", 120, 0.8),
            unwell("web", 180, 0.7),
        ]);
        let sc = scope(&g, &h, &set(&["web"]));
        assert_eq!(sc.onset, Some(at(0)));
        let ranked = rank_origins(&g, &h, &sc, &BTreeMap::new());
        assert_eq!(ranked[0].node, "store");
        let api = ranked.iter().find(|c| c.node == "api").unwrap();
        assert_eq!(api.downstream_of.as_deref(), Some("store"));
    }

    #[test]
    fn a_node_showing_only_load_is_a_symptom_of_its_callers() {
        let g = graph(&[
            ("a", "db", &["fw"]),
            ("b", "db", &["fw"]),
            ("web", "a", &[]),
            ("web", "b", &[]),
        ]);
        let mut db = NodeHealth {
            node: "db".into(),
            load_strength: 0.9,
            onset: Some(at(30)),
            anomalous_metrics: vec!["db_connections".into()],
            normal_metrics: vec!["db_cpu".into(), "query_latency".into()],
            ..NodeHealth::default()
        };
        db.mentions.clear();
        let h = health(vec![
            db,
            unwell("a", 30, 0.9),
            unwell("b", 40, 0.9),
            unwell("web", 90, 0.8),
        ]);
        let sc = scope(&g, &h, &set(&["web", "a", "b"]));
        let ranked = rank_origins(&g, &h, &sc, &BTreeMap::from([("fw".to_string(), 0.9)]));
        assert_eq!(ranked[0].node, "fw");
        assert_eq!(ranked[0].kind, OriginKind::PathDevice);
        assert_eq!(ranked[0].coverage, 1.0);
        let db = ranked.iter().find(|c| c.node == "db").unwrap();
        assert!(db.symptom_only);
        assert!(db.score < 0.3);
        let a = ranked.iter().find(|c| c.node == "a").unwrap();
        assert!(
            a.reasons.iter().any(|r| r.contains("same time")),
            "{:?}",
            a.reasons
        );
    }

    #[test]
    fn anomalies_off_the_alerted_paths_are_out_of_scope() {
        let g = graph(&[("web", "api", &[]), ("batch", "host-9", &[])]);
        let h = health(vec![unwell("api", 100, 0.8), unwell("host-9", 0, 0.9)]);
        let sc = scope(&g, &h, &set(&["web"]));
        assert_eq!(sc.affected, set(&["api"]));
        assert_eq!(sc.onset, Some(at(100)));
    }

    #[test]
    fn a_metric_name_with_an_anomalous_series_is_not_listed_as_normal() {
        use crate::engines::anomaly::{Direction, MetricClass, Onset};
        let series = |state: &str, anomalous: bool| SeriesScore {
            metric: "sessions".into(),
            labels: [("state".to_string(), state.to_string())].into(),
            node: Some("db".into()),
            class: MetricClass::Load,
            baseline_median: 1.0,
            baseline_scale: 1.0,
            peak_value: 1.0,
            peak_z: if anomalous { 9.0 } else { 0.0 },
            onset: anomalous.then(|| Onset {
                at: at(0),
                value: 9.0,
                z: 9.0,
                direction: Direction::Up,
            }),
        };
        let scores = vec![series("active", false), series("idle", true)];
        let h = node_health(&graph(&[("api", "db", &[])]), &scores, &[]);
        let db = &h["db"];
        assert_eq!(db.anomalous_metrics, vec!["sessions".to_string()]);
        assert!(db.normal_metrics.is_empty(), "{:?}", db.normal_metrics);
    }

    #[test]
    fn names_are_matched_as_whole_words() {
        assert!(mentions(
            "timeout connecting to orders-db:5432",
            "orders-db"
        ));
        assert!(!mentions(
            "timeout connecting to orders-db-replica",
            "orders-db"
        ));
        assert!(mentions("call to db. failed", "db"));
        assert!(!mentions("dbx failed", "db"));
    }
}
