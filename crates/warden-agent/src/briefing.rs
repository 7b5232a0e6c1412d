//! What the LLM reasoner's prompts carry: the evidence engines' summaries
//! of the observations, never raw data.
//!
//! The survey becomes the built-in reasoner's own picture (metric anomaly
//! ranks, new and bursting log templates, correlated changes, impaired
//! paths, ranked origin candidates); each later observation is summarised
//! by the engine for its kind. Log lines only ever appear as masked
//! templates with counts: variable fields (addresses, ids, numbers) are
//! gone, and so is any one raw line. Lists are capped so a prompt stays
//! small however large the incident.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use warden_core::ports::{Observation, QueryResult, ReasoningContext};
use warden_core::telemetry::{FlowRecord, LogLine, SecurityEvent, Series, TopologyGraph};
use warden_llm::{Briefing, SurveyBrief};

use crate::builtin::BuiltinConfig;
use crate::builtin::picture::{Collected, Picture, Windows, alerted_nodes};
use crate::engines::anomaly::{SeriesScore, score_all};
use crate::engines::flows::{EdgeImpairment, impairments};
use crate::engines::templates::{TemplateActivity, mine_activity};

/// Rows per list in a summary.
const TOP: usize = 8;

/// The agent's [`Briefing`], built on its evidence engines.
#[derive(Debug, Default)]
pub struct EngineBriefing {
    cfg: BuiltinConfig,
}

impl EngineBriefing {
    pub fn new(cfg: BuiltinConfig) -> Self {
        EngineBriefing { cfg }
    }

    fn windows(&self, ctx: &ReasoningContext) -> Windows {
        Windows::around(
            ctx.window,
            ctx.incident.first_event_at,
            self.cfg.baseline_guard,
        )
    }

    fn anomalies(&self, series: &[Series], w: &Windows) -> (usize, Vec<Value>) {
        let mut scores: Vec<SeriesScore> =
            score_all(series, w.baseline, w.incident, &self.cfg.anomaly)
                .into_iter()
                .filter(SeriesScore::is_anomalous)
                .collect();
        scores.sort_by(|a, b| b.peak_z.abs().total_cmp(&a.peak_z.abs()));
        let count = scores.len();
        (count, scores.iter().take(TOP).map(score_row).collect())
    }

    fn templates(&self, lines: &[LogLine], w: &Windows) -> (usize, Vec<Value>) {
        let mut active: Vec<TemplateActivity> =
            mine_activity(lines, w.baseline, w.incident, &self.cfg.mining)
                .into_iter()
                .filter(TemplateActivity::is_problem)
                .collect();
        active.sort_by_key(|a| std::cmp::Reverse(a.incident_count));
        let count = active.len();
        (count, active.iter().take(TOP).map(template_row).collect())
    }

    /// The most frequent templates over the whole answer, changed or not:
    /// what a targeted log query found.
    fn frequent(&self, lines: &[LogLine]) -> Vec<Value> {
        let mut miner = warden_logmine::Miner::new(self.cfg.mining.miner.clone());
        for l in lines {
            miner.add(&l.message);
        }
        let mut ranked: Vec<_> = miner.templates().collect();
        ranked.sort_by(|a, b| b.count.cmp(&a.count).then(a.id.cmp(&b.id)));
        ranked
            .iter()
            .take(5)
            .map(|t| json!({"template": t.text, "count": t.count}))
            .collect()
    }

    fn impaired(&self, flows: &[FlowRecord], w: &Windows) -> Vec<Value> {
        let mut imp = impairments(flows, w.baseline, w.incident, &self.cfg.flows);
        imp.sort_by(|a, b| b.strength.total_cmp(&a.strength));
        imp.iter().take(TOP).map(impairment_row).collect()
    }
}

fn round(x: f64) -> f64 {
    if x.abs() >= 100.0 {
        x.round()
    } else {
        (x * 100.0).round() / 100.0
    }
}

fn score_row(s: &SeriesScore) -> Value {
    let labels: BTreeMap<&String, &String> = s
        .labels
        .iter()
        .filter(|(k, _)| k.as_str() != "service")
        .collect();
    json!({
        "metric": s.metric,
        "node": s.node,
        "labels": labels,
        "class": s.class.as_str(),
        "baseline": round(s.baseline_median),
        "peak": round(s.peak_value),
        "z": round(s.peak_z),
        "onset": s.onset.as_ref().map(|o| o.at),
    })
}

fn template_row(t: &TemplateActivity) -> Value {
    // The template only: `example` is a raw line and stays out.
    json!({
        "service": t.service,
        "template": t.template,
        "novelty": t.novelty,
        "level": t.level,
        "baseline_count": t.baseline_count,
        "incident_count": t.incident_count,
        "onset": t.onset,
    })
}

fn impairment_row(i: &EdgeImpairment) -> Value {
    json!({
        "path": format!("{}>{}:{}", i.src, i.dst, i.dst_port),
        "device": i.device,
        "baseline_ratio": round(i.baseline_ratio),
        "incident_ratio": round(i.incident_ratio),
        "dropped": i.dropped,
        "retransmits": i.retransmits,
        "onset": i.onset,
        "rules": i.rules,
    })
}

fn security_rows(events: &[SecurityEvent]) -> Value {
    let mut counts: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for e in events {
        let key = (
            e.rule.clone(),
            e.severity.clone(),
            e.target.clone().unwrap_or_default(),
        );
        *counts.entry(key).or_default() += 1;
    }
    let mut rows: Vec<_> = counts.into_iter().collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1));
    let first = |rule: &str| events.iter().find(|e| e.rule == rule).map(|e| e.ts);
    json!({
        "events": events.len(),
        "by_rule": rows.iter().take(TOP).map(|((rule, severity, target), n)| json!({
            "rule": rule, "severity": severity, "target": target, "count": n, "first": first(rule),
        })).collect::<Vec<_>>(),
    })
}

fn edge_line(e: &warden_core::telemetry::TopologyEdge) -> String {
    if e.via.is_empty() {
        format!("{}>{}", e.from, e.to)
    } else {
        format!("{}>{} via {}", e.from, e.to, e.via.join(","))
    }
}

fn topology_edges(g: &TopologyGraph) -> Value {
    let edges: Vec<String> = g.edges.iter().take(60).map(edge_line).collect();
    json!({"edges": edges, "more_edges": g.edges.len().saturating_sub(60)})
}

fn topology_rows(g: &TopologyGraph) -> Value {
    let edges: Vec<String> = g.edges.iter().take(60).map(edge_line).collect();
    let nodes: Vec<String> = g
        .nodes
        .iter()
        .take(60)
        .map(|n| format!("{} ({}, {})", n.id, n.kind, n.domain))
        .collect();
    json!({"nodes": nodes, "edges": edges, "more_edges": g.edges.len().saturating_sub(60)})
}

impl Briefing for EngineBriefing {
    fn survey(&mut self, ctx: &ReasoningContext, survey: &[Observation]) -> SurveyBrief {
        let w = self.windows(ctx);
        let col = Collected::from_observations(survey);
        let pic = Picture::analyse(&col, &w, &alerted_nodes(&ctx.incident), &self.cfg);
        let (anomalous, anomalies) = self.anomalies(&col.series(), &w);
        let (problem_templates, templates) = self.templates(&col.logs(), &w);
        let flows: Vec<FlowRecord> = col.flows.iter().map(|(_, f)| f.clone()).collect();
        let security: Vec<SecurityEvent> = col.security.iter().map(|(_, s)| s.clone()).collect();
        let candidates: Vec<Value> = pic
            .origins
            .iter()
            .take(6)
            .map(|o| {
                json!({
                    "node": o.node,
                    "kind": o.kind,
                    "score": round(o.score),
                    "explains": o.explains.len(),
                    "downstream_of": o.downstream_of,
                    "symptom_only": o.symptom_only,
                    "reasons": o.reasons.iter().take(3).collect::<Vec<_>>(),
                })
            })
            .collect();
        let changes: Vec<Value> = pic
            .changes
            .iter()
            .take(6)
            .map(|c| {
                json!({
                    "id": c.change.id,
                    "at": c.change.ts,
                    "kind": c.change.kind,
                    "target": c.change.target,
                    "actor": c.change.actor,
                    "summary": c.change.summary,
                    "lead_seconds": c.lead_seconds,
                    "relation": c.relation,
                    "score": round(c.score),
                })
            })
            .collect();
        let mut unwell: Vec<_> = pic.health.values().filter(|h| h.is_unwell()).collect();
        unwell.sort_by(|a, b| b.strength.total_cmp(&a.strength));
        let health: Vec<Value> = unwell
            .iter()
            .take(10)
            .map(|h| {
                json!({
                    "node": h.node,
                    "strength": round(h.strength),
                    "onset": h.onset,
                    "own_onset": h.own_onset,
                    "anomalous_metrics": h.anomalous_metrics.iter().take(4).collect::<Vec<_>>(),
                    "problem_templates": h.problem_templates,
                })
            })
            .collect();
        let full = json!({
            "scope": {
                "affected": pic.scope.affected,
                "symptoms": pic.scope.symptoms,
                "onset": pic.scope.onset,
                "first_symptom": pic.first_symptom().map(|(n, t)| json!({"node": n, "at": t})),
            },
            "candidates": candidates,
            "changes": changes,
            "changes_total": col.changes.len(),
            "node_health": health,
            "anomalies": {"anomalous_series": anomalous, "series": col.series.len(), "top": anomalies},
            "log_templates": {"problem_templates": problem_templates, "lines": col.logs.len(), "top": templates},
            "impaired_paths": self.impaired(&flows, &w),
            "security": security_rows(&security),
            "topology": topology_rows(&pic.topology),
        });
        let headline = json!({
            "candidates": pic.origins.iter().take(4).map(|o| json!([o.node, o.kind, round(o.score)])).collect::<Vec<_>>(),
            "changes": pic.changes.iter().take(3).map(|c| json!([c.change.id, c.change.target, round(c.score)])).collect::<Vec<_>>(),
            "affected": pic.scope.affected,
        });
        SurveyBrief { full, headline }
    }

    fn observation(&mut self, ctx: &ReasoningContext, o: &Observation) -> Value {
        let w = self.windows(ctx);
        match &o.result {
            None => Value::Null,
            Some(QueryResult::Metrics(series)) => {
                let (anomalous, top) = self.anomalies(series, &w);
                json!({"series": series.len(), "anomalous": anomalous, "top": top})
            }
            Some(QueryResult::Logs(lines)) => {
                let (problems, top) = self.templates(lines, &w);
                json!({
                    "lines": lines.len(),
                    "problem_templates": problems,
                    "top": top,
                    "frequent": self.frequent(lines),
                })
            }
            Some(QueryResult::Changes(changes)) => {
                let mut sorted: Vec<_> = changes.iter().collect();
                sorted.sort_by_key(|c| c.ts);
                json!({
                    "changes": changes.len(),
                    "list": sorted.iter().take(12).map(|c| json!({
                        "id": c.id, "at": c.ts, "kind": c.kind, "target": c.target,
                        "actor": c.actor, "summary": c.summary,
                    })).collect::<Vec<_>>(),
                })
            }
            Some(QueryResult::Flows(flows)) => {
                json!({"records": flows.len(), "impaired": self.impaired(flows, &w)})
            }
            Some(QueryResult::SecurityEvents(events)) => security_rows(events),
            // The survey listed the nodes; edges are what a test needs.
            Some(QueryResult::Topology(g)) => topology_edges(g),
        }
    }
}
