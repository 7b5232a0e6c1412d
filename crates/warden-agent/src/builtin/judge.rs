//! Judging one hypothesis on the observations gathered for it.
//!
//! Each function reads the answers to the queries planned for one kind of
//! hypothesis, turns what it sees into findings that cite those answers,
//! and combines the findings into a status and score. Weights are combined
//! with a noisy-OR: one strong, independent piece of evidence suffices;
//! several weak ones add up but never to certainty.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use warden_core::ports::{Bearing, Finding};
use warden_core::telemetry::{SecurityEvent, TopologyGraph};
use warden_core::{Domain, HypothesisStatus};

use super::BuiltinConfig;
use super::picture::{Collected, Picture, Windows};
use super::text::{describe_series_as, domain_of, hms, join, num, quote, series_name, stamp};
use crate::engines::anomaly::{MetricClass, SeriesScore, score_all};
use crate::engines::changes::ChangeCandidate;
use crate::engines::flows::impairments;
use crate::engines::stats::{noisy_or, saturate};
use crate::engines::templates::{TemplateActivity, mine_activity};
use crate::engines::topology::{
    NodeHealth, OriginCandidate, SIMULTANEOUS, explained_by, node_health,
};

/// Support at or above which a mechanism or propagation counts as shown.
pub const SUPPORTED: f64 = 0.6;
/// Share of the symptoms a chain must account for to explain them.
pub const EXPLAINS: f64 = 0.75;

/// The outcome of judging one hypothesis once.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    pub status: Option<HypothesisStatus>,
    pub score: f64,
    pub findings: Vec<Finding>,
    /// Causal steps this hypothesis contributes, in time order.
    pub chain: Vec<String>,
    pub coverage: f64,
    pub explains: bool,
    /// Nodes whose saturation metrics (pools, queues) are anomalous.
    pub saturated: BTreeSet<String>,
}

impl Verdict {
    pub fn status(&self) -> HypothesisStatus {
        self.status.unwrap_or(HypothesisStatus::Open)
    }

    pub fn note(
        &mut self,
        observation: Option<usize>,
        domain: Domain,
        summary: String,
        at: Option<DateTime<Utc>>,
        detail: serde_json::Value,
        bearing: Bearing,
    ) {
        // A finding that cannot cite an observation is not evidence.
        if let Some(observation) = observation {
            self.findings.push(Finding {
                observation,
                domain,
                summary,
                observed_at: at,
                detail,
                bearing,
            });
        }
    }
}

/// Health of the nodes in `collected`, judged against the windows.
pub struct Local {
    pub scores: Vec<SeriesScore>,
    pub templates: Vec<TemplateActivity>,
    pub health: BTreeMap<String, NodeHealth>,
}

impl Local {
    pub fn of(
        collected: &Collected,
        topology: &TopologyGraph,
        windows: &Windows,
        cfg: &BuiltinConfig,
    ) -> Self {
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
        let health = node_health(topology, &scores, &templates);
        Local {
            scores,
            templates,
            health,
        }
    }

    /// Anomalous own-health series of `node`, strongest first.
    fn own_anomalies(&self, node: &str) -> Vec<&SeriesScore> {
        let mut out: Vec<&SeriesScore> = self
            .scores
            .iter()
            .filter(|s| {
                s.node.as_deref() == Some(node) && s.is_anomalous() && s.class.is_own_health()
            })
            .collect();
        out.sort_by(|a, b| b.peak_z.abs().total_cmp(&a.peak_z.abs()));
        out
    }

    fn load_anomalies(&self, node: &str) -> Vec<&SeriesScore> {
        self.scores
            .iter()
            .filter(|s| {
                s.node.as_deref() == Some(node) && s.is_anomalous() && !s.class.is_own_health()
            })
            .collect()
    }

    /// Metric names of `node` whose series all stayed normal. A name with
    /// any anomalous series is left out, so that no metric reads as both.
    pub fn normal_metrics(&self, node: &str) -> Vec<&str> {
        self.normal_where(node, |_| true)
    }

    /// [`Local::normal_metrics`] that speak of the node's own health:
    /// errors, latency, saturation and resources (not load, not settings
    /// or other metrics the name says nothing about).
    pub fn normal_health_metrics(&self, node: &str) -> Vec<&str> {
        self.normal_where(node, |class| {
            class.is_own_health() && class != MetricClass::Other
        })
    }

    fn normal_where(&self, node: &str, keep: impl Fn(MetricClass) -> bool) -> Vec<&str> {
        let of_node = || {
            self.scores
                .iter()
                .filter(|s| s.node.as_deref() == Some(node))
        };
        let anomalous: BTreeSet<&str> = of_node()
            .filter(|s| s.is_anomalous())
            .map(|s| s.metric.as_str())
            .collect();
        // Errors and latency first: what a reader looks for.
        let mut out: Vec<(MetricClass, &str)> = of_node()
            .filter(|s| !s.is_anomalous() && keep(s.class))
            .map(|s| (s.class, s.metric.as_str()))
            .filter(|(_, m)| !anomalous.contains(m))
            .collect();
        out.sort();
        out.dedup();
        out.into_iter().map(|(_, m)| m).collect()
    }

    /// A series described under a name that tells it apart from others of
    /// the same metric.
    pub fn describe(&self, s: &SeriesScore) -> String {
        describe_series_as(s, &series_name(s, &self.scores))
    }

    fn problem_templates(&self, node: &str) -> Vec<&TemplateActivity> {
        self.templates
            .iter()
            .filter(|t| t.service == node && t.is_problem())
            .collect()
    }
}

fn after(t: DateTime<Utc>, since: Option<DateTime<Utc>>, tolerance: Duration) -> bool {
    since.is_none_or(|s| t >= s - tolerance)
}

fn template_weight(t: &TemplateActivity) -> f64 {
    if matches!(t.level.as_str(), "ERROR" | "FATAL") {
        0.5
    } else {
        0.3
    }
}

fn template_text(t: &TemplateActivity) -> String {
    let novelty = match t.novelty {
        crate::engines::templates::Novelty::New => "new",
        crate::engines::templates::Novelty::Burst => "bursting",
    };
    format!(
        "{novelty} {} log template \"{}\" ×{} (baseline ×{}) from {}",
        t.level,
        quote(&t.template),
        t.incident_count,
        t.baseline_count,
        hms(t.onset)
    )
}

/// The first pass over a change: when, and where it sits.
pub fn change_first(pic: &Picture, col: &Collected, cand: &ChangeCandidate) -> Verdict {
    let c = &cand.change;
    let mut v = Verdict::default();
    let cite = col
        .changes
        .iter()
        .find(|(_, x)| x.id == c.id)
        .map(|(i, _)| *i)
        .or(col.changes_obs);
    let first = pic.first_symptom();
    let when = match first {
        Some((node, at)) => format!(
            "{} s before the first symptom ({node} at {})",
            cand.lead_seconds,
            hms(at)
        ),
        None => "with no symptom onset to compare against".to_string(),
    };
    let target_domain = domain_of(&pic.topology, &c.target);
    v.note(
        cite,
        target_domain.clone(),
        format!(
            "Change {} ({}) to {} by {} at {}, {when}: \"{}\"",
            c.id,
            c.kind,
            c.target,
            quote(&c.actor),
            hms(c.ts),
            quote(&c.summary)
        ),
        Some(c.ts),
        json!({"change": c.id, "lead_seconds": cand.lead_seconds, "timing_score": cand.timing}),
        Bearing::Supports,
    );
    let edges = cand.edges.iter().map(|(f, t)| format!("{f} → {t}"));
    let relation = if cand.edges.is_empty() {
        cand.relation.describe().to_string()
    } else {
        format!("{} ({})", cand.relation.describe(), join(edges))
    };
    let bearing = match cand.relation.weight() {
        w if w >= 0.7 => Bearing::Supports,
        w if w <= 0.1 => Bearing::Contradicts,
        _ => Bearing::Neutral,
    };
    v.note(
        col.topology_obs,
        target_domain,
        format!("{}: {relation}", c.target),
        None,
        json!({"relation": cand.relation, "affected": pic.scope.affected}),
        bearing,
    );
    // Timing decays over minutes; a change this far ahead of the first
    // symptom is no trigger of it.
    if cand.timing < 0.05 {
        v.note(
            cite,
            domain_of(&pic.topology, &c.target),
            format!(
                "Change {} came {} s before the first symptom: too long before to have triggered it",
                c.id, cand.lead_seconds
            ),
            Some(c.ts),
            json!({"lead_seconds": cand.lead_seconds, "timing_score": cand.timing}),
            Bearing::Contradicts,
        );
    }
    v.score = cand.score;
    v.status = (cand.score < 0.03).then_some(HypothesisStatus::Rejected);
    v
}

/// Is traffic through `device` impaired, since `since`?
pub fn path_impaired(
    pic: &Picture,
    col: &Collected,
    windows: &Windows,
    cfg: &BuiltinConfig,
    device: &str,
    since: Option<DateTime<Utc>>,
    edges: &[(String, String)],
) -> Verdict {
    let mut v = Verdict::default();
    let tolerance = Duration::seconds(cfg.changes.tolerance_seconds);
    let mut weights = Vec::new();
    let mut shown = false;

    let flows: Vec<_> = col
        .flows
        .iter()
        .filter(|(_, f)| f.device.as_deref() == Some(device))
        .map(|(_, f)| f.clone())
        .collect();
    let impaired: Vec<_> = impairments(&flows, windows.baseline, windows.incident, &cfg.flows)
        .into_iter()
        .filter(|e| after(e.onset, since, tolerance))
        .collect();
    for e in &impaired {
        let lag = since.map(|s| format!(", {} s after the change", (e.onset - s).num_seconds()));
        let rules = if e.rules.is_empty() {
            String::new()
        } else {
            format!("; rule {}", join(&e.rules))
        };
        v.note(
            col.flows_obs,
            Domain::new("network"),
            format!(
                "Flows {} → {}:{} through {device}: {} dropped and {} retransmitted from {}{} ({}% of traffic impaired, {}% before){rules}",
                e.src,
                e.dst,
                e.dst_port,
                e.dropped,
                e.retransmits,
                hms(e.onset),
                lag.unwrap_or_default(),
                num(e.incident_ratio * 100.0),
                num(e.baseline_ratio * 100.0)
            ),
            Some(e.onset),
            json!({"src": e.src, "dst": e.dst, "device": device, "dropped": e.dropped, "retransmits": e.retransmits, "strength": e.strength}),
            Bearing::Supports,
        );
        v.chain.push(format!(
            "{} traffic {} → {} through {device} is dropped or retransmitted ({} dropped, {} retransmits{rules})",
            stamp(e.onset),
            e.src,
            e.dst,
            e.dropped,
            e.retransmits
        ));
        weights.push(e.strength.max(0.5));
        shown = true;
    }
    if impaired.is_empty() {
        if flows.is_empty() {
            v.note(
                col.flows_obs,
                Domain::new("network"),
                format!("No flow records observed through {device}"),
                None,
                json!({}),
                Bearing::Neutral,
            );
        } else {
            v.note(
                col.flows_obs,
                Domain::new("network"),
                format!(
                    "Flows through {device} ({} records) show no drop or retransmit burst",
                    flows.len()
                ),
                None,
                json!({"records": flows.len()}),
                Bearing::Contradicts,
            );
        }
    }

    // Sensors that saw denied or reset connections on the same path.
    let mut on_path: BTreeSet<&str> = BTreeSet::from([device]);
    for (f, t) in edges {
        on_path.insert(f);
        on_path.insert(t);
    }
    let relevant: Vec<&SecurityEvent> = col
        .security
        .iter()
        .map(|(_, e)| e)
        .filter(|e| e.target.as_deref().is_some_and(|t| on_path.contains(t)))
        .collect();
    let mut groups: BTreeMap<(&str, &str), (u64, Vec<&SecurityEvent>)> = BTreeMap::new();
    for e in &relevant {
        let key = (e.rule.as_str(), e.target.as_deref().unwrap_or_default());
        let entry = groups.entry(key).or_default();
        if windows.baseline.contains(e.ts) {
            entry.0 += 1;
        } else if windows.incident.contains(e.ts) && after(e.ts, since, tolerance) {
            entry.1.push(e);
        }
    }
    for ((rule, target), (before, during)) in groups {
        let Some(first) = during.iter().map(|e| e.ts).min() else {
            continue;
        };
        if during.len() < 3 || (during.len() as u64) < 3 * before.max(1) {
            continue;
        }
        let sensors = join(
            during
                .iter()
                .map(|e| e.source.as_str())
                .collect::<BTreeSet<_>>(),
        );
        v.note(
            col.security_obs,
            Domain::new("security"),
            format!(
                "{} security events \"{}\" on {target} from {} ({sensors}; {before} before)",
                during.len(),
                quote(rule),
                hms(first)
            ),
            Some(first),
            json!({"rule": rule, "target": target, "count": during.len(), "baseline": before}),
            Bearing::Supports,
        );
        v.chain.push(format!(
            "{} security sensors report {} \"{}\" events on {target}",
            stamp(first),
            during.len(),
            quote(rule)
        ));
        weights.push(0.5);
        shown = true;
    }

    // The far end of the path is healthy while its callers fail: the
    // trouble lies between them.
    let local = Local::of(col, &pic.topology, windows, cfg);
    let callees: BTreeSet<&str> = edges.iter().map(|(_, t)| t.as_str()).collect();
    for callee in callees {
        let own = local.own_anomalies(callee);
        let observed = !local.normal_metrics(callee).is_empty();
        let callers_unwell = edges
            .iter()
            .any(|(f, t)| t == callee && pic.health.get(f).is_some_and(NodeHealth::is_unwell));
        if own.is_empty() && observed && callers_unwell {
            let healthy = local.normal_health_metrics(callee);
            let load = local.load_anomalies(callee);
            let healthy_text = if healthy.is_empty() {
                String::new()
            } else {
                format!(" ({})", join(&healthy))
            };
            let load_text = if load.is_empty() {
                String::new()
            } else {
                format!(
                    "; only its load metrics moved, reflecting its callers: {}",
                    join(load.iter().map(|s| local.describe(s)))
                )
            };
            v.note(
                col.metrics_obs_for(callee),
                domain_of(&pic.topology, callee),
                format!(
                    "{callee} is a symptom, not the origin: its own health metrics{healthy_text} stayed normal while its callers failed{load_text}"
                ),
                None,
                json!({"normal": healthy}),
                Bearing::Supports,
            );
            weights.push(0.4);
        }
    }

    v.score = noisy_or(weights);
    v.status = Some(if v.score >= SUPPORTED && shown {
        HypothesisStatus::Supported
    } else if !shown && v.findings.iter().any(|f| f.bearing == Bearing::Contradicts) {
        HypothesisStatus::Rejected
    } else {
        HypothesisStatus::Open
    });
    v.chain.sort();
    v
}

/// Did `node` degrade by itself (since `since`)?
pub fn degraded(
    pic: &Picture,
    col: &Collected,
    windows: &Windows,
    cfg: &BuiltinConfig,
    node: &str,
    since: Option<DateTime<Utc>>,
) -> Verdict {
    let mut v = Verdict::default();
    let local = Local::of(col, &pic.topology, windows, cfg);
    let tolerance = Duration::seconds(cfg.changes.tolerance_seconds);
    let domain = domain_of(&pic.topology, node);
    let mut weights = Vec::new();
    for s in local.own_anomalies(node).into_iter().take(3) {
        let Some(onset) = &s.onset else { continue };
        if after(onset.at, since, tolerance) {
            v.note(
                col.metrics_obs_for(node),
                domain.clone(),
                format!("{node}: {}", local.describe(s)),
                Some(onset.at),
                json!({"metric": s.metric, "z": s.peak_z, "class": s.class}),
                Bearing::Supports,
            );
            weights.push(saturate(s.peak_z.abs(), 8.0).min(0.9));
            if s.class == MetricClass::Saturation {
                v.saturated.insert(node.to_string());
            }
        } else {
            v.note(
                col.metrics_obs_for(node),
                domain.clone(),
                format!(
                    "{node}: {} — already before {}",
                    local.describe(s),
                    since.map(hms).unwrap_or_default()
                ),
                Some(onset.at),
                json!({"metric": s.metric}),
                Bearing::Contradicts,
            );
        }
    }
    for t in local.problem_templates(node).into_iter().take(3) {
        if !after(t.onset, since, tolerance) {
            continue;
        }
        v.note(
            col.logs_obs_for(node),
            domain.clone(),
            format!("{node}: {}", template_text(t)),
            Some(t.onset),
            json!({"template": t.template, "count": t.incident_count, "first_line": t.first_line}),
            Bearing::Supports,
        );
        weights.push(template_weight(t));
    }
    if weights.is_empty() {
        let mut normal = local.normal_health_metrics(node);
        if normal.is_empty() {
            normal = local.normal_metrics(node);
        }
        v.note(
            col.metrics_obs_for(node).or(col.logs_obs_for(node)),
            domain,
            format!(
                "{node} shows no degradation of its own: metrics ({}) normal and no new error templates",
                if normal.is_empty() { "none recorded".to_string() } else { join(&normal) }
            ),
            None,
            json!({"normal": normal}),
            Bearing::Contradicts,
        );
        v.score = 0.05;
        v.status = Some(HypothesisStatus::Rejected);
        return v;
    }
    v.score = noisy_or(weights);
    v.status = Some(if v.score >= SUPPORTED {
        HypothesisStatus::Supported
    } else {
        HypothesisStatus::Open
    });
    v
}

/// The first pass over a component: is it unwell by itself, and does the
/// topology make it an origin rather than a victim?
pub fn component_first(
    pic: &Picture,
    col: &Collected,
    windows: &Windows,
    cfg: &BuiltinConfig,
    cand: &OriginCandidate,
) -> Verdict {
    let mut v = degraded(pic, col, windows, cfg, &cand.node, None);
    for reason in &cand.reasons {
        v.note(
            col.topology_obs,
            domain_of(&pic.topology, &cand.node),
            reason.clone(),
            None,
            json!({}),
            Bearing::Contradicts,
        );
    }
    v.score = (v.score * cand.penalty).clamp(0.0, 1.0);
    v.status = Some(if v.score < 0.3 {
        HypothesisStatus::Rejected
    } else {
        HypothesisStatus::Open
    });
    v
}

/// The first pass over a network device: is it on the failing paths?
pub fn device_first(pic: &Picture, col: &Collected, cand: &OriginCandidate) -> Verdict {
    let mut v = Verdict::default();
    for reason in &cand.reasons {
        v.note(
            col.topology_obs,
            Domain::new("network"),
            format!(
                "{reason} (covers {} of {} symptom nodes)",
                cand.explains.len(),
                pic.scope.symptoms.len()
            ),
            None,
            json!({"entry": cand.entry, "explains": cand.explains}),
            Bearing::Supports,
        );
    }
    v.score = cand.score;
    v.status = (cand.score < 0.2).then_some(HypothesisStatus::Rejected);
    v
}

/// Did trouble entering at `entry` spread to the symptoms, in dependency
/// order?
pub fn propagation(
    pic: &Picture,
    col: &Collected,
    windows: &Windows,
    cfg: &BuiltinConfig,
    entry: &BTreeSet<String>,
    since: Option<DateTime<Utc>>,
    origin: Option<&str>,
) -> Verdict {
    let mut v = Verdict::default();
    let local = Local::of(col, &pic.topology, windows, cfg);
    let tolerance = Duration::seconds(cfg.changes.tolerance_seconds);
    let nodes = propagation_nodes(pic, entry, cfg.max_propagation_nodes);
    let mut contradictions = 0u32;
    let mut steps: Vec<(DateTime<Utc>, String)> = Vec::new();

    for node in &nodes {
        let domain = domain_of(&pic.topology, node);
        let Some(h) = local.health.get(node) else {
            if pic.scope.symptoms.contains(node) {
                v.note(
                    col.metrics_obs_for(node).or(col.logs_obs_for(node)),
                    domain,
                    format!("{node} shows no anomaly in the data gathered for it"),
                    None,
                    json!({}),
                    Bearing::Neutral,
                );
            }
            continue;
        };
        let own = local.own_anomalies(node);
        let templates = local.problem_templates(node);
        if h.is_unwell() {
            let mut parts: Vec<(Option<DateTime<Utc>>, String)> = Vec::new();
            if let Some(s) = own.first() {
                v.note(
                    col.metrics_obs_for(node),
                    domain.clone(),
                    format!("{node}: {}", local.describe(s)),
                    s.onset.as_ref().map(|o| o.at),
                    json!({"metric": s.metric, "z": s.peak_z, "class": s.class}),
                    Bearing::Supports,
                );
                parts.push((s.onset.as_ref().map(|o| o.at), local.describe(s)));
            }
            // Also the first sign and any saturation: the chain shows
            // when the node went wrong and whether its pools filled up.
            let earliest = own
                .iter()
                .filter_map(|s| Some((s.onset.as_ref()?.at, *s)))
                .min_by_key(|(at, _)| *at)
                .map(|(_, s)| s);
            let saturated = own.iter().filter(|s| s.class == MetricClass::Saturation);
            for s in earliest.into_iter().chain(saturated.copied()) {
                if s.class == MetricClass::Saturation {
                    v.saturated.insert(node.clone());
                }
                let text = local.describe(s);
                if !parts.iter().any(|(_, p)| *p == text) {
                    parts.push((s.onset.as_ref().map(|o| o.at), text));
                }
            }
            if let Some(t) = templates.first() {
                v.note(
                    col.logs_obs_for(node),
                    domain.clone(),
                    format!("{node}: {}", template_text(t)),
                    Some(t.onset),
                    json!({"template": t.template, "count": t.incident_count, "first_line": t.first_line}),
                    Bearing::Supports,
                );
                parts.push((
                    Some(t.onset),
                    format!(
                        "{} log \"{}\" ×{} from {}",
                        t.level,
                        quote(&t.template),
                        t.incident_count,
                        hms(t.onset)
                    ),
                ));
            }
            parts.sort_by_key(|(at, _)| *at);
            if let Some(at) = h.own_onset {
                let text: Vec<&str> = parts.iter().map(|(_, p)| p.as_str()).collect();
                steps.push((at, format!("{node}: {}", text.join("; "))));
            }
        } else if h.is_load_only() {
            let load = local.load_anomalies(node);
            let normal = local.normal_health_metrics(node);
            let text = format!(
                "{node} only reflects its callers: its own health metrics{} stayed normal and only its load moved — {}",
                if normal.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", join(&normal))
                },
                join(load.iter().map(|s| local.describe(s)))
            );
            v.note(
                col.metrics_obs_for(node),
                domain,
                text.clone(),
                h.onset,
                json!({"normal": normal}),
                Bearing::Neutral,
            );
            if let Some(at) = h.onset {
                steps.push((at, text));
            }
        }
    }

    // Order along the path of propagation (the entry nodes and everything
    // calling them): a caller must not fail before what it calls. Callees
    // of the entry nodes may well fail later, as a consequence.
    let mut upstream: BTreeSet<String> = entry.clone();
    for e in entry {
        upstream.extend(crate::engines::topology::transitive_callers(
            &pic.topology,
            e,
        ));
    }
    for edge in &pic.topology.edges {
        let (Some(caller), Some(callee)) =
            (local.health.get(&edge.from), local.health.get(&edge.to))
        else {
            continue;
        };
        if let (Some(a), Some(b)) = (caller.own_onset, callee.own_onset)
            && upstream.contains(&edge.from)
            && upstream.contains(&edge.to)
            && a + SIMULTANEOUS < b
        {
            contradictions += 1;
            v.note(
                col.topology_obs,
                domain_of(&pic.topology, &edge.from),
                format!(
                    "{} degraded at {}, before its dependency {} ({}): the order runs against this path",
                    edge.from,
                    hms(a),
                    edge.to,
                    hms(b)
                ),
                Some(a),
                json!({}),
                Bearing::Contradicts,
            );
        }
    }
    let entry_unwell: BTreeSet<String> = entry
        .iter()
        .filter(|n| local.health.get(*n).is_some_and(NodeHealth::is_unwell))
        .cloned()
        .collect();
    if let Some(since) = since {
        for n in &entry_unwell {
            if let Some(at) = local.health.get(n).and_then(|h| h.own_onset)
                && at < since - tolerance
            {
                contradictions += 1;
                v.note(
                    col.metrics_obs_for(n),
                    domain_of(&pic.topology, n),
                    format!(
                        "{n} was already unwell at {}, before {}",
                        hms(at),
                        hms(since)
                    ),
                    Some(at),
                    json!({}),
                    Bearing::Contradicts,
                );
            }
        }
    }
    let mut explained = explained_by(
        &pic.topology,
        &local.health,
        &entry_unwell,
        &pic.scope.symptoms,
    );
    // The origin upstream of the entry points accounts for its own alerts.
    if let Some(origin) = origin
        && pic.scope.symptoms.contains(origin)
        && !entry_unwell.is_empty()
    {
        explained.insert(origin.to_string());
    }
    v.coverage = if pic.scope.symptoms.is_empty() {
        0.0
    } else {
        explained.len() as f64 / pic.scope.symptoms.len() as f64
    };
    let unexplained: Vec<&String> = pic.scope.symptoms.difference(&explained).collect();
    if !unexplained.is_empty() {
        v.note(
            col.topology_obs.or(col.any_metrics_obs),
            Domain::new("application"),
            format!(
                "Not explained by this path: {}",
                join(unexplained.iter().map(|s| s.as_str()))
            ),
            None,
            json!({"unexplained": unexplained}),
            Bearing::Neutral,
        );
    }
    let entry_share = if entry.is_empty() {
        0.0
    } else {
        entry_unwell.len() as f64 / entry.len() as f64
    };
    v.score = ((0.6 * v.coverage + 0.4 * entry_share) * 0.7f64.powi(contradictions as i32))
        .clamp(0.0, 1.0);
    v.explains = v.coverage >= EXPLAINS;
    if entry_unwell.is_empty() {
        let first = entry.iter().next().map(String::as_str).unwrap_or_default();
        v.note(
            col.metrics_obs_for(first).or(col.logs_obs_for(first)),
            domain_of(&pic.topology, first),
            format!(
                "None of {} shows a degradation of its own in the data gathered for it: the failure did not enter there",
                join(entry.iter().map(String::as_str))
            ),
            None,
            json!({"entry": entry}),
            Bearing::Contradicts,
        );
    }
    v.status = Some(if entry_unwell.is_empty() {
        HypothesisStatus::Rejected
    } else if v.explains && v.score >= SUPPORTED {
        HypothesisStatus::Supported
    } else {
        HypothesisStatus::Open
    });
    steps.sort_by_key(|(at, _)| *at);
    v.chain = steps
        .into_iter()
        .map(|(at, text)| format!("{} {text}", stamp(at)))
        .collect();
    v
}

/// The nodes a propagation check looks at: the entry nodes, everything
/// affected that calls them, the symptoms, and affected dependencies of
/// the entry nodes (which may merely reflect them).
pub fn propagation_nodes(pic: &Picture, entry: &BTreeSet<String>, cap: usize) -> Vec<String> {
    let mut nodes: Vec<String> = entry.iter().cloned().collect();
    let push = |n: &String, nodes: &mut Vec<String>| {
        if !nodes.contains(n) {
            nodes.push(n.clone());
        }
    };
    for e in entry {
        for edge in pic.topology.callees(e) {
            if pic.scope.affected.contains(&edge.to) {
                push(&edge.to, &mut nodes);
            }
        }
        for caller in crate::engines::topology::transitive_callers(&pic.topology, e) {
            if pic.scope.affected.contains(&caller) {
                push(&caller, &mut nodes);
            }
        }
    }
    for s in &pic.scope.symptoms {
        push(s, &mut nodes);
    }
    nodes.truncate(cap);
    nodes
}
