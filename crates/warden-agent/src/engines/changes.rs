//! Change correlation: which change could have started this?
//!
//! Most incidents follow a change. A change is a candidate when it happened
//! shortly *before* the earliest symptom (a change after the onset cannot
//! be its cause, however suspicious it looks). Candidates are ranked by
//! lead time (closer is likelier, decaying over minutes) and by where the
//! changed node sits relative to the affected ones: the affected node
//! itself, or a network device on the path of affected edges, ranks far
//! above a node that merely shares the topology, and far above one that
//! has nothing to do with the symptoms.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use warden_core::telemetry::{ChangeRecord, TopologyGraph};

use super::topology::{NodeHealth, Scope, related, transitive_callees};

#[derive(Debug, Clone, PartialEq)]
pub struct ChangeConfig {
    /// Changes further back than this are not candidates.
    pub max_lead_seconds: i64,
    /// A change this soon after the onset is still a candidate: onsets are
    /// only as precise as the sampling interval.
    pub tolerance_seconds: i64,
    /// Lead time at which the timing score falls to 1/e.
    pub decay_seconds: f64,
}

impl Default for ChangeConfig {
    fn default() -> Self {
        ChangeConfig {
            max_lead_seconds: 3600,
            tolerance_seconds: 30,
            decay_seconds: 600.0,
        }
    }
}

/// Where the changed node sits relative to the affected nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PathRelation {
    /// The changed node is itself unwell.
    Affected,
    /// A network device on the path of edges touching affected nodes.
    OnPath,
    /// Something affected nodes depend on, not observed to be healthy.
    Dependency,
    /// Connected to the affected nodes some other way.
    Related,
    Unrelated,
}

impl PathRelation {
    pub fn weight(self) -> f64 {
        match self {
            PathRelation::Affected | PathRelation::OnPath => 1.0,
            PathRelation::Dependency => 0.7,
            PathRelation::Related => 0.35,
            PathRelation::Unrelated => 0.1,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            PathRelation::Affected => "the changed node is itself unwell",
            PathRelation::OnPath => {
                "the changed device is on the network path of affected dependencies"
            }
            PathRelation::Dependency => "affected nodes depend on the changed node",
            PathRelation::Related => {
                "the changed node is connected to the affected ones but not on their failing paths"
            }
            PathRelation::Unrelated => "the changed node is not connected to the affected ones",
        }
    }
}

/// A change that may have caused the incident.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeCandidate {
    pub change: ChangeRecord,
    /// Seconds from the change to the earliest symptom (negative within
    /// the tolerance).
    pub lead_seconds: i64,
    pub relation: PathRelation,
    /// For [`PathRelation::OnPath`]: the `(from, to)` edges through it whose
    /// endpoints are affected.
    pub edges: Vec<(String, String)>,
    pub timing: f64,
    pub score: f64,
}

/// How `target` relates to the affected nodes.
pub fn relation_of(
    topology: &TopologyGraph,
    health: &BTreeMap<String, NodeHealth>,
    scope: &Scope,
    target: &str,
) -> (PathRelation, Vec<(String, String)>) {
    // A device is judged by the paths through it first: its own drops or
    // denials are how a path failure shows on the device itself.
    let edges: Vec<(String, String)> = topology
        .edges_via(target)
        .filter(|e| scope.affected.contains(&e.from) || scope.affected.contains(&e.to))
        .map(|e| (e.from.clone(), e.to.clone()))
        .collect();
    if !edges.is_empty() {
        return (PathRelation::OnPath, edges);
    }
    if scope.affected.contains(target) && health.get(target).is_some_and(NodeHealth::is_unwell) {
        return (PathRelation::Affected, Vec::new());
    }
    let depended_on = scope
        .affected
        .iter()
        .any(|n| transitive_callees(topology, n).contains(target));
    // A dependency whose own telemetry stayed normal is not where the
    // failing calls fail.
    let observed_healthy = health.get(target).is_some_and(|h| !h.is_anomalous());
    if (depended_on && !observed_healthy) || scope.affected.contains(target) {
        return (PathRelation::Dependency, Vec::new());
    }
    let around: BTreeSet<String> = related(topology, &scope.affected);
    let via_related = topology
        .edges_via(target)
        .any(|e| around.contains(&e.from) || around.contains(&e.to));
    if around.contains(target) || via_related {
        (PathRelation::Related, Vec::new())
    } else {
        (PathRelation::Unrelated, Vec::new())
    }
}

/// Candidate changes before `onset`, best first.
pub fn correlate(
    changes: &[ChangeRecord],
    topology: &TopologyGraph,
    health: &BTreeMap<String, NodeHealth>,
    scope: &Scope,
    onset: DateTime<Utc>,
    cfg: &ChangeConfig,
) -> Vec<ChangeCandidate> {
    let mut out: Vec<ChangeCandidate> = changes
        .iter()
        .filter_map(|c| {
            let lead = (onset - c.ts).num_seconds();
            if lead < -cfg.tolerance_seconds || lead > cfg.max_lead_seconds {
                return None;
            }
            let (relation, edges) = relation_of(topology, health, scope, &c.target);
            let timing = (-(lead.max(0) as f64) / cfg.decay_seconds).exp();
            Some(ChangeCandidate {
                change: c.clone(),
                lead_seconds: lead,
                relation,
                edges,
                timing,
                score: timing * relation.weight(),
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.change.id.cmp(&b.change.id))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use warden_core::telemetry::{TopologyEdge, TopologyNode};

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap()
    }

    fn change(id: &str, s: i64, target: &str) -> ChangeRecord {
        ChangeRecord {
            id: id.into(),
            ts: at(s),
            kind: "config".into(),
            target: target.into(),
            actor: "ops".into(),
            summary: "changed".into(),
            details: serde_json::Value::Null,
        }
    }

    fn topology() -> TopologyGraph {
        let node = |id: &str| TopologyNode {
            id: id.into(),
            kind: "service".into(),
            domain: "application".into(),
            namespace: None,
        };
        let edge = |f: &str, t: &str, via: &[&str]| TopologyEdge {
            from: f.into(),
            to: t.into(),
            via: via.iter().map(|v| v.to_string()).collect(),
            port: None,
        };
        TopologyGraph {
            nodes: ["web", "api", "db", "fw", "search", "batch"]
                .iter()
                .map(|n| node(n))
                .collect(),
            edges: vec![
                edge("web", "api", &[]),
                edge("api", "db", &["fw"]),
                edge("web", "search", &[]),
            ],
        }
    }

    #[test]
    fn a_recent_change_on_the_failing_path_ranks_first_and_later_changes_are_excluded() {
        let g = topology();
        let unwell = |n: &str| NodeHealth {
            node: n.into(),
            strength: 0.8,
            own_onset: Some(at(0)),
            onset: Some(at(0)),
            ..NodeHealth::default()
        };
        // The deployed service was observed and stayed normal.
        let search = NodeHealth {
            node: "search".into(),
            normal_metrics: vec!["latency".into()],
            ..NodeHealth::default()
        };
        let health: BTreeMap<String, NodeHealth> = [unwell("web"), unwell("api"), search]
            .into_iter()
            .map(|h| (h.node.clone(), h))
            .collect();
        let scope = Scope {
            affected: ["web", "api"].iter().map(|s| s.to_string()).collect(),
            symptoms: ["web"].iter().map(|s| s.to_string()).collect(),
            onset: Some(at(0)),
        };
        let changes = vec![
            change("c-deploy", -720, "search"),
            change("c-fw", -60, "fw"),
            change("c-after", 300, "api"),
            change("c-far", -2000, "batch"),
        ];
        let ranked = correlate(
            &changes,
            &g,
            &health,
            &scope,
            at(0),
            &ChangeConfig::default(),
        );
        let ids: Vec<&str> = ranked.iter().map(|c| c.change.id.as_str()).collect();
        assert_eq!(ids, vec!["c-fw", "c-deploy", "c-far"]);
        assert_eq!(ranked[0].relation, PathRelation::OnPath);
        assert_eq!(ranked[0].edges, vec![("api".to_string(), "db".to_string())]);
        assert_eq!(ranked[0].lead_seconds, 60);
        assert!(ranked[0].score > 0.85);
        assert_eq!(ranked[1].relation, PathRelation::Related);
        assert!(ranked[1].score < 0.15);
        assert_eq!(ranked[2].relation, PathRelation::Unrelated);
    }
}
