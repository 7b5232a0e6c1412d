//! Judging an alternative against the explanation already supported.
//!
//! Once one hypothesis explains the incident with confidence, every other
//! top-level hypothesis is weighed against it, the way a careful
//! investigator rules out the other suspects before closing the case:
//!
//! - a **node blamed as the origin** that the supported chain reaches
//!   (where the failure entered, a caller of that, or a dependency that
//!   only reflects it) and that degraded *after* the supported origin is a
//!   consequence, not the origin: rejected, with the onsets that show the
//!   order and the position that shows the path;
//! - a **change** whose target stayed normal, and on which no failing node
//!   depends beyond what the supported chain already explains, broke
//!   nothing: rejected, with the normal metrics and the topology;
//! - a **network device** whose traffic shows no drop or retransmit burst
//!   is impairing nothing: rejected, with the flows.
//!
//! Everything else stays open and says why: a node unwell *before* the
//! supported origin, trouble the supported chain does not reach, or no
//! data to tell. A rejection always rests on at least one contradicting
//! finding that cites an observation of this cycle.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use warden_core::ports::Bearing;
use warden_core::{Domain, HypothesisStatus};

use super::BuiltinConfig;
use super::judge::{Local, Verdict};
use super::picture::{Collected, Picture, Windows};
use super::text::{domain_of, hms, join, join_capped, quote, series_name};
use crate::engines::changes::ChangeCandidate;
use crate::engines::flows::impairments;
use crate::engines::topology::{NodeHealth, transitive_callees, transitive_callers};

/// The supported explanation alternatives are weighed against.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// The supported hypothesis' id.
    pub id: String,
    /// How a sentence names its origin: `change chg-1`, `pricing`.
    pub origin: String,
    /// The node the origin is: the change target, the component, the device.
    pub origin_node: String,
    /// When the origin struck: the change, or the origin's own onset.
    pub origin_at: Option<DateTime<Utc>>,
    /// Where the failure entered the dependency graph.
    pub entry: BTreeSet<String>,
    /// Every node the supported chain accounts for.
    pub reach: BTreeSet<String>,
}

/// What a verdict needs from the cycle's observations.
pub struct Scene<'a> {
    pub pic: &'a Picture,
    pub col: &'a Collected,
    pub local: Local,
    pub windows: &'a Windows,
    pub cfg: &'a BuiltinConfig,
    pub reference: &'a Reference,
    /// The alternative's score before this cycle.
    pub prior: f64,
}

impl Scene<'_> {
    fn tolerance(&self) -> Duration {
        Duration::seconds(self.cfg.changes.tolerance_seconds)
    }

    fn reject(&self, mut v: Verdict) -> Verdict {
        v.status = Some(HypothesisStatus::Rejected);
        v.score = self.prior.min(0.05);
        v
    }

    fn keep_open(&self, mut v: Verdict) -> Verdict {
        v.status = Some(HypothesisStatus::Open);
        v.score = self.prior;
        v
    }

    /// Whether any telemetry of `node` (a series, a log template) came back.
    fn observed(&self, node: &str) -> bool {
        self.local.health.contains_key(node)
    }

    /// The node's health when, on this cycle's observations, it is unwell
    /// in itself.
    fn unwell(&self, node: &str) -> Option<&NodeHealth> {
        self.local.health.get(node).filter(|h| h.is_unwell())
    }

    /// The first sign of trouble at `node`: its earliest own anomaly.
    fn first_sign(&self, node: &str) -> Option<String> {
        let onset = self.unwell(node)?.own_onset?;
        let metric = self
            .local
            .scores
            .iter()
            .filter(|s| s.node.as_deref() == Some(node) && s.class.is_own_health())
            .find(|s| s.onset.as_ref().is_some_and(|o| o.at == onset))
            .map(|s| series_name(s, &self.local.scores));
        let template = self
            .local
            .templates
            .iter()
            .find(|t| t.service == node && t.is_problem() && t.onset == onset)
            .map(|t| format!("{} log \"{}\"", t.level, quote(&t.template)));
        metric.or(template)
    }

    fn lag(&self, at: DateTime<Utc>) -> String {
        match self.reference.origin_at {
            Some(origin) if at >= origin => {
                format!("{} s after", (at - origin).num_seconds())
            }
            _ => "together with".to_string(),
        }
    }

    /// How the supported chain accounts for `node`, as a finding's text.
    fn position(&self, node: &str) -> String {
        let r = self.reference;
        if r.entry.contains(node) {
            let from = if node == r.origin_node {
                String::new()
            } else {
                format!(", from {}", r.origin_node)
            };
            return format!(
                "{} explains {node}: the failure entered the dependency graph there{from}",
                r.id
            );
        }
        let callees = transitive_callees(&self.pic.topology, node);
        let through: Vec<&str> = r
            .entry
            .iter()
            .filter(|e| callees.contains(*e))
            .map(String::as_str)
            .collect();
        if !through.is_empty() {
            return format!(
                "{} explains {node}: it depends on {}, where the failure entered",
                r.id,
                join(through)
            );
        }
        if node == r.origin_node {
            return format!("{} places the origin at {node} itself", r.id);
        }
        let callers = transitive_callers(&self.pic.topology, node);
        let above: Vec<&str> = r
            .entry
            .iter()
            .filter(|e| callers.contains(*e))
            .map(String::as_str)
            .collect();
        format!(
            "{} explains {node}: it is a dependency of {}, where the failure entered, and only reflects them or degraded after them",
            r.id,
            join(above)
        )
    }

    /// `node` is unwell: a consequence of the supported chain, or not?
    fn judge_unwell(&self, mut v: Verdict, node: &str, what: &str) -> Verdict {
        let r = self.reference;
        let Some(onset) = self.unwell(node).and_then(|h| h.own_onset) else {
            return self.keep_open(v);
        };
        let sign = self
            .first_sign(node)
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        let domain = domain_of(&self.pic.topology, node);
        let cite = self
            .col
            .metrics_obs_for(node)
            .or(self.col.logs_obs_for(node));
        let detail =
            json!({"node": node, "onset": onset, "origin_at": r.origin_at, "reference": r.id});
        if !r.reach.contains(node) {
            v.note(
                cite,
                domain,
                format!(
                    "{what} degraded at {}{sign}, but the supported chain ({}) does not reach it: it may be a separate problem",
                    hms(onset),
                    r.id
                ),
                Some(onset),
                detail,
                Bearing::Neutral,
            );
            return self.keep_open(v);
        }
        let Some(origin_at) = r.origin_at else {
            v.note(
                cite,
                domain,
                format!(
                    "{what} degraded at {}{sign}; with no onset for the origin of {} the order cannot be told",
                    hms(onset),
                    r.id
                ),
                Some(onset),
                detail,
                Bearing::Neutral,
            );
            return self.keep_open(v);
        };
        if onset < origin_at - self.tolerance() {
            v.note(
                cite,
                domain,
                format!(
                    "{what} was already unwell at {}{sign}, before {} at {}: {} does not account for that",
                    hms(onset),
                    r.origin,
                    hms(origin_at),
                    r.id
                ),
                Some(onset),
                detail,
                Bearing::Neutral,
            );
            return self.keep_open(v);
        }
        v.note(
            cite,
            domain.clone(),
            format!(
                "{what} first degraded at {}{sign}, {} {} ({}): a consequence, not the origin",
                hms(onset),
                self.lag(onset),
                r.origin,
                hms(origin_at)
            ),
            Some(onset),
            detail,
            Bearing::Contradicts,
        );
        v.note(
            self.col.topology_obs,
            domain,
            self.position(node),
            None,
            json!({"entry": r.entry, "reference": r.id}),
            Bearing::Contradicts,
        );
        self.reject(v)
    }

    /// Traffic through `device`: `Some(true)` impaired since `since`,
    /// `Some(false)` recorded and clean, `None` no flows through it.
    fn path_state(
        &self,
        v: &mut Verdict,
        device: &str,
        since: Option<DateTime<Utc>>,
    ) -> Option<bool> {
        let flows: Vec<_> = self
            .col
            .flows
            .iter()
            .filter(|(_, f)| f.device.as_deref() == Some(device))
            .map(|(_, f)| f.clone())
            .collect();
        if flows.is_empty() {
            return None;
        }
        let tolerance = self.tolerance();
        let impaired: Vec<_> = impairments(
            &flows,
            self.windows.baseline,
            self.windows.incident,
            &self.cfg.flows,
        )
        .into_iter()
        .filter(|e| since.is_none_or(|s| e.onset >= s - tolerance))
        .collect();
        if let Some(first) = impaired.iter().min_by_key(|e| e.onset) {
            v.note(
                self.col.flows_obs,
                Domain::new("network"),
                format!(
                    "Traffic through {device} is impaired too ({} → {} from {}): the data does not say whether as a cause or as a consequence of {}",
                    first.src,
                    first.dst,
                    hms(first.onset),
                    self.reference.id
                ),
                Some(first.onset),
                json!({"device": device, "edges": impaired.len()}),
                Bearing::Neutral,
            );
            return Some(true);
        }
        v.note(
            self.col.flows_obs,
            Domain::new("network"),
            format!(
                "Traffic through {device} ({} flow records) shows no drop or retransmit burst",
                flows.len()
            ),
            None,
            json!({"device": device, "records": flows.len()}),
            Bearing::Contradicts,
        );
        Some(false)
    }

    /// `node` shows nothing wrong: say so, citing what was looked at.
    fn note_normal(&self, v: &mut Verdict, node: &str, lead: String) {
        let mut normal = self.local.normal_health_metrics(node);
        if normal.is_empty() {
            normal = self.local.normal_metrics(node);
        }
        let metrics = if normal.is_empty() {
            String::new()
        } else {
            format!(": {} normal", join_capped(&normal, 4))
        };
        v.note(
            self.col
                .metrics_obs_for(node)
                .or(self.col.logs_obs_for(node)),
            domain_of(&self.pic.topology, node),
            format!("{lead}{metrics}, and no new error log templates"),
            None,
            json!({"normal": normal}),
            Bearing::Contradicts,
        );
    }

    /// "The incident originates in `node`."
    pub fn component(&self, node: &str) -> Verdict {
        let mut v = Verdict::default();
        if self.unwell(node).is_some() {
            return self.judge_unwell(v, node, node);
        }
        if !self.observed(node) {
            v.note(
                self.col
                    .metrics_obs_for(node)
                    .or(self.col.logs_obs_for(node)),
                domain_of(&self.pic.topology, node),
                format!(
                    "No telemetry of {node} came back to weigh it against {}",
                    self.reference.id
                ),
                None,
                json!({}),
                Bearing::Neutral,
            );
            return self.keep_open(v);
        }
        self.note_normal(
            &mut v,
            node,
            format!("{node} shows no degradation of its own"),
        );
        self.reject(v)
    }

    /// "Network device `device` is impairing the traffic through it."
    pub fn device(&self, device: &str) -> Verdict {
        let mut v = Verdict::default();
        match self.path_state(&mut v, device, None) {
            Some(false) => self.reject(v),
            Some(true) => self.keep_open(v),
            None => self.component(device),
        }
    }

    /// "Change `cand` caused the incident."
    pub fn change(&self, cand: &ChangeCandidate) -> Verdict {
        let c = &cand.change;
        let target = c.target.as_str();
        let mut v = Verdict::default();
        let what = format!("{target}, the target of change {},", c.id);
        if self.unwell(target).is_some() {
            return self.judge_unwell(v, target, &what);
        }
        match self.path_state(&mut v, target, Some(c.ts)) {
            Some(true) => return self.keep_open(v),
            Some(false) => return self.judge_position(v, cand),
            None => {}
        }
        if !self.observed(target) {
            v.note(
                self.col
                    .metrics_obs_for(target)
                    .or(self.col.logs_obs_for(target)),
                domain_of(&self.pic.topology, target),
                format!(
                    "No telemetry of {target} came back to tell whether change {} degraded it",
                    c.id
                ),
                None,
                json!({}),
                Bearing::Neutral,
            );
            return self.judge_position(v, cand);
        }
        self.note_normal(
            &mut v,
            target,
            format!(
                "{target} stayed normal after change {} ({})",
                c.id,
                hms(c.ts)
            ),
        );
        self.judge_position(v, cand)
    }

    /// The changed node broke nothing itself: does any failing node depend
    /// on it that the supported chain leaves unexplained?
    fn judge_position(&self, mut v: Verdict, cand: &ChangeCandidate) -> Verdict {
        let target = cand.change.target.as_str();
        let r = self.reference;
        let dependents: BTreeSet<&String> = self
            .pic
            .scope
            .affected
            .iter()
            .filter(|n| n.as_str() != target)
            .filter(|n| {
                transitive_callees(&self.pic.topology, n).contains(target)
                    || self
                        .pic
                        .topology
                        .edges_via(target)
                        .any(|e| &e.from == *n || &e.to == *n)
            })
            .collect();
        let unexplained: Vec<&str> = dependents
            .iter()
            .filter(|n| !r.reach.contains(n.as_str()))
            .map(|n| n.as_str())
            .collect();
        let domain = domain_of(&self.pic.topology, target);
        let detail = json!({"dependents": dependents, "reference": r.id});
        let bearing = if dependents.is_empty() {
            v.note(
                self.col.topology_obs,
                domain,
                format!("No failing node depends on {target}"),
                None,
                detail,
                Bearing::Contradicts,
            );
            Bearing::Contradicts
        } else if unexplained.is_empty() {
            v.note(
                self.col.topology_obs,
                domain,
                format!(
                    "Of the failing nodes only {} {} on {target}, and {} already explains {}",
                    join(dependents.iter().map(|s| s.as_str())),
                    if dependents.len() == 1 {
                        "depends"
                    } else {
                        "depend"
                    },
                    r.id,
                    if dependents.len() == 1 { "it" } else { "them" },
                ),
                None,
                detail,
                Bearing::Contradicts,
            );
            Bearing::Contradicts
        } else {
            v.note(
                self.col.topology_obs,
                domain,
                format!(
                    "{} {} on {target} and {} does not explain {}",
                    join(&unexplained),
                    if unexplained.len() == 1 {
                        "depends"
                    } else {
                        "depend"
                    },
                    r.id,
                    if unexplained.len() == 1 { "it" } else { "them" },
                ),
                None,
                detail,
                Bearing::Neutral,
            );
            Bearing::Neutral
        };
        // Rejected only when nothing in this cycle spoke for the change
        // and both its effect and its position speak against it.
        let silent_target = !v.findings.iter().any(|f| f.bearing == Bearing::Neutral);
        if bearing == Bearing::Contradicts && silent_target {
            self.reject(v)
        } else {
            self.keep_open(v)
        }
    }
}
