//! The reasoning loop: hypothesis → evidence → evaluation → refinement,
//! under a hard budget of cycles.
//!
//! The loop owns everything that must be trustworthy whatever the reasoner
//! is: it runs every query itself (so each one is logged and counted), turns
//! findings into evidence only when they cite a query it ran, numbers
//! hypotheses and evidence, decides when to stop, and writes the report. The
//! reasoner only proposes and judges.
//!
//! One cycle examines one hypothesis: the open hypothesis to look at next is
//! the deepest untested refinement of the line of inquiry in progress, else
//! the most promising untested hypothesis; a hypothesis whose refinements
//! are all settled is looked at again so the reasoner can weigh them. When
//! the cycle count reaches the plan's depth budget the circuit breaker trips
//! and the report hands over to a person with what was found so far.
//!
//! A conclusion is not the end of the reasoning. A responder reading the
//! tree needs the alternatives settled, so once a top-level hypothesis is
//! supported with confidence the loop spends what is left of the budget on
//! a *differential pass*: one cycle for each top-level alternative still
//! open, best first, asked while the context shows the supported
//! hypothesis, so the reasoner judges the alternative against it. The
//! refinements a reasoner proposes then are not followed (that would be a
//! new line of inquiry, not a comparison). The budget, deadline and cost
//! limits still apply; alternatives they leave unweighed stay open and the
//! summary says so.
//!
//! A rejection must rest on evidence: a hypothesis is only recorded as
//! rejected when it, or one of its refinements, holds contradicting
//! evidence that cites a query the loop ran. Otherwise it stays open.
//!
//! Every query passes the read gate ([`crate::gate`]) before it reaches a
//! source: a denied read is logged as `read_denied` and recorded as
//! evidence from the source `gate`; a source that fails to answer is
//! recorded as evidence of unavailability (`prometheus unavailable: timeout
//! after 5s`), once per source and reason, so the report says what could
//! not be seen and why.

use std::collections::BTreeSet;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use warden_core::ports::{
    Assessment, Bearing, DataError, DataSource, Focus, Observation, PlannedQuery,
    ProposedHypothesis, Query, QueryResult, Reasoner, ReasonerError, ReasoningContext, SourceInfo,
};
use warden_core::report::{CostLedger, Hypothesis, HypothesisStatus, Report, RootCause};
use warden_core::telemetry::TimeRange;
use warden_core::{AgentInput, Domain, Evidence, EvidenceSource};
use warden_policy::DecisionRecord;

use crate::events::EventLog;
use crate::gate::{DENIED_PREFIX, ReadGate, ReadVerdict, reasons_of};
use crate::usage;

/// Knobs of the loop itself (the reasoner has its own).
#[derive(Debug, Clone, PartialEq)]
pub struct LoopConfig {
    /// Score a supported hypothesis needs to end the investigation.
    pub confidence_threshold: f64,
    /// How far before the first alert the investigation looks.
    pub lookback: Duration,
    /// How far after the last alert it looks.
    pub lookahead: Duration,
    /// When to stop reasoning; `None` = shortly before the input deadline,
    /// leaving time to deliver the report.
    pub stop_at: Option<DateTime<Utc>>,
}

impl Default for LoopConfig {
    fn default() -> Self {
        LoopConfig {
            confidence_threshold: 0.8,
            lookback: Duration::minutes(60),
            lookahead: Duration::minutes(30),
            stop_at: None,
        }
    }
}

/// Time kept back from the deadline for delivering the report: a tenth of
/// what is left, between 1 and 30 seconds.
pub fn delivery_reserve(now: DateTime<Utc>, deadline: DateTime<Utc>) -> Duration {
    let left = deadline - now;
    (left / 10).clamp(Duration::seconds(1), Duration::seconds(30))
}

/// Runs an investigation with the default loop configuration.
pub async fn investigate(
    input: &AgentInput,
    sources: &[Box<dyn DataSource>],
    reasoner: &mut dyn Reasoner,
    events: &mut EventLog,
) -> Report {
    investigate_with(input, sources, reasoner, events, &LoopConfig::default()).await
}

struct Node {
    hypothesis: Hypothesis,
    tag: String,
    evaluated_in: Option<u32>,
    /// Evidence from the latest evaluation, with its bearing, in the order
    /// the reasoner gave it: the first contradicting item is its reason.
    latest: Vec<(String, Bearing)>,
}

/// Why the loop stopped.
enum Ending {
    Concluded(usize, Vec<String>),
    BreakerTripped,
    Deadline,
    CostBudget,
    Exhausted,
    ReasonerFailed(String),
}

struct Run<'a> {
    sources: &'a [Box<dyn DataSource>],
    events: &'a mut EventLog,
    ctx: ReasoningContext,
    nodes: Vec<Node>,
    evidence: Vec<Evidence>,
    queries: u64,
    stop_at: DateTime<Utc>,
    gate: ReadGate,
    /// Denials and unavailabilities already recorded as evidence.
    recorded: BTreeSet<String>,
}

impl Run<'_> {
    fn kind_of(query: &Query) -> &'static str {
        match query {
            Query::Metrics { .. } => "metrics",
            Query::Logs { .. } => "logs",
            Query::Changes { .. } => "changes",
            Query::Flows { .. } => "flows",
            Query::SecurityEvents { .. } => "security_events",
            Query::Topology => "topology",
        }
    }

    fn items(result: &QueryResult) -> usize {
        match result {
            QueryResult::Metrics(v) => v.len(),
            QueryResult::Logs(v) => v.len(),
            QueryResult::Changes(v) => v.len(),
            QueryResult::Flows(v) => v.len(),
            QueryResult::SecurityEvents(v) => v.len(),
            QueryResult::Topology(g) => g.nodes.len() + g.edges.len(),
        }
    }

    /// Runs planned queries against the sources they name (all when none).
    /// This is the single place data is read, where a policy gate belongs.
    async fn run(&mut self, planned: Vec<PlannedQuery>) -> Vec<Observation> {
        let mut out = Vec::new();
        for p in planned {
            if Utc::now() >= self.stop_at {
                break;
            }
            let targets: Vec<&dyn DataSource> = self
                .sources
                .iter()
                .map(|s| s.as_ref())
                .filter(|s| p.source.as_deref().is_none_or(|name| s.name() == name))
                .collect();
            if targets.is_empty() {
                out.push(Observation {
                    source: p.source.clone().unwrap_or_default(),
                    query: p.query.clone(),
                    purpose: p.purpose.clone(),
                    result: None,
                    error: Some("no such data source".to_string()),
                });
                continue;
            }
            for source in targets {
                if let ReadVerdict::Denied(records) = self.gate.decide_query(source, &p.query) {
                    let reasons = reasons_of(&records);
                    self.record_denial(source, &p.query, &reasons, &records);
                    out.push(Observation {
                        source: source.name().to_string(),
                        query: p.query.clone(),
                        purpose: p.purpose.clone(),
                        result: None,
                        error: Some(format!(
                            "read denied by the action gate: {}",
                            reasons.join("; ")
                        )),
                    });
                    continue;
                }
                self.queries += 1;
                let answer = source.query(&p.query).await;
                if let Err(e) = &answer {
                    self.record_failure(source, &p.query, e);
                }
                let (result, error) = match answer {
                    Ok(r) => (Some(r), None),
                    Err(e) => (None, Some(e.to_string())),
                };
                let fields = json!({
                    "source": source.name(),
                    "query": serde_json::to_value(&p.query).unwrap_or_default(),
                    "purpose": p.purpose,
                    "cycle": self.ctx.cycle,
                    "items": result.as_ref().map(Self::items),
                    "error": error,
                });
                if error.is_some() {
                    self.events.warn("query", fields);
                } else {
                    self.events.info("query", fields);
                }
                out.push(Observation {
                    source: source.name().to_string(),
                    query: p.query.clone(),
                    purpose: p.purpose.clone(),
                    result,
                    error,
                });
            }
        }
        out
    }

    /// Evidence for what a read could not see, once per key.
    fn push_gap(
        &mut self,
        key: String,
        domain: Domain,
        cited: EvidenceSource,
        summary: String,
        detail: serde_json::Value,
    ) {
        if !self.recorded.insert(key) {
            return;
        }
        let id = format!("ev-{}", self.evidence.len() + 1);
        self.events.info(
            "evidence",
            json!({"id": id, "summary": summary, "source": cited.source, "bearing": "neutral"}),
        );
        self.evidence.push(Evidence {
            id,
            domain,
            cited,
            summary,
            observed_at: Some(Utc::now()),
            detail,
        });
    }

    /// A read the gate denied (at the loop, or in a connector): a
    /// `read_denied` event every time, evidence once per source and reasons.
    fn record_denial(
        &mut self,
        source: &dyn DataSource,
        query: &Query,
        reasons: &[String],
        records: &[DecisionRecord],
    ) {
        let domains: Vec<String> = records
            .iter()
            .filter_map(|r| match &r.request {
                warden_policy::GateRequest::Read(read) => Some(read.domain.clone()),
                _ => None,
            })
            .filter(|d| !d.is_empty())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let policies: BTreeSet<&String> = records.iter().flat_map(|r| r.policies.iter()).collect();
        self.events.warn(
            "read_denied",
            json!({
                "source": source.name(),
                "query": query.describe(),
                "query_kind": Self::kind_of(query),
                "domains": domains,
                "policies": policies,
                "reasons": reasons,
                "cycle": self.ctx.cycle,
            }),
        );
        let summary = format!(
            "The action gate denied reading {} from {}{}: {}.",
            Self::kind_of(query),
            source.name(),
            if domains.is_empty() {
                String::new()
            } else {
                format!(" (data domain {})", domains.join(", "))
            },
            reasons.join("; ").trim_end_matches('.')
        );
        let key = format!("denied|{}|{}", source.name(), reasons.join("|"));
        let detail = json!({"decisions": records, "reasons": reasons});
        self.push_gap(
            key,
            evidence_domain(source, &domains),
            EvidenceSource {
                source: "gate".to_string(),
                query: query.describe(),
            },
            summary,
            detail,
        );
    }

    /// A query the source could not answer: evidence of unavailability (or,
    /// when a connector's guard refused it, of a denial). A query kind the
    /// source does not serve is not a failure.
    fn record_failure(&mut self, source: &dyn DataSource, query: &Query, error: &DataError) {
        let detail = match error {
            DataError::Unavailable { detail, .. } | DataError::Malformed { detail, .. } => detail,
            _ => return,
        };
        if let Some(reason) = detail.strip_prefix(DENIED_PREFIX) {
            let reasons: Vec<String> = reason.split("; ").map(str::to_string).collect();
            self.record_denial(source, query, &reasons, &[]);
            return;
        }
        let summary = error.to_string();
        let key = format!("unavailable|{}|{summary}", source.name());
        self.push_gap(
            key,
            evidence_domain(source, &[]),
            EvidenceSource {
                source: format!("{}:{}", source.name(), Self::kind_of(query)),
                query: query.describe(),
            },
            summary.clone(),
            json!({"unavailable": true, "error": summary}),
        );
    }

    fn emit_hypothesis(&mut self, index: usize) {
        if let Some(n) = self.nodes.get(index) {
            let h = &n.hypothesis;
            let fields = json!({
                "id": h.id,
                "parent": h.parent,
                "statement": h.statement,
                "subject": h.subject,
                "status": h.status,
                "score": h.score,
            });
            self.events.info("hypothesis", fields);
        }
    }

    fn add_hypotheses(&mut self, proposals: Vec<ProposedHypothesis>, parent: Option<usize>) {
        let parent_id = parent
            .and_then(|p| self.nodes.get(p))
            .map(|n| n.hypothesis.id.clone());
        for p in proposals {
            if self.nodes.iter().any(|n| n.tag == p.tag) {
                continue;
            }
            let id = format!("h-{}", self.nodes.len() + 1);
            self.nodes.push(Node {
                hypothesis: Hypothesis {
                    id,
                    parent: parent_id.clone(),
                    statement: p.statement,
                    subject: p.subject,
                    status: HypothesisStatus::Open,
                    score: p.prior.clamp(0.0, 1.0),
                    supporting: Vec::new(),
                    contradicting: Vec::new(),
                    cycle: self.ctx.cycle,
                },
                tag: p.tag,
                evaluated_in: None,
                latest: Vec::new(),
            });
            self.emit_hypothesis(self.nodes.len() - 1);
        }
        self.sync();
    }

    fn sync(&mut self) {
        self.ctx.hypotheses = self.nodes.iter().map(|n| n.hypothesis.clone()).collect();
        self.ctx.evidence = self.evidence.clone();
    }

    fn children(&self, index: usize) -> Vec<usize> {
        let Some(id) = self.nodes.get(index).map(|n| &n.hypothesis.id) else {
            return Vec::new();
        };
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.hypothesis.parent.as_ref() == Some(id))
            .map(|(i, _)| i)
            .collect()
    }

    /// Whether the hypothesis should be looked at (again).
    fn selectable(&self, index: usize) -> bool {
        let Some(node) = self.nodes.get(index) else {
            return false;
        };
        if node.hypothesis.status != HypothesisStatus::Open {
            return false;
        }
        let Some(last) = node.evaluated_in else {
            return true;
        };
        let children = self.children(index);
        !children.is_empty()
            && children.iter().all(|c| self.settled(*c))
            && children.iter().any(|c| {
                self.nodes
                    .get(*c)
                    .and_then(|n| n.evaluated_in)
                    .is_some_and(|e| e > last)
            })
    }

    fn settled(&self, index: usize) -> bool {
        self.nodes
            .get(index)
            .is_some_and(|n| n.evaluated_in.is_some())
            && !self.selectable(index)
            && self.children(index).iter().all(|c| self.settled(*c))
    }

    fn depth(&self, index: usize) -> usize {
        let mut depth = 0;
        let mut current = self
            .nodes
            .get(index)
            .and_then(|n| n.hypothesis.parent.clone());
        while let Some(parent) = current {
            depth += 1;
            current = self
                .nodes
                .iter()
                .find(|n| n.hypothesis.id == parent)
                .and_then(|n| n.hypothesis.parent.clone());
        }
        depth
    }

    fn root_of(&self, index: usize) -> usize {
        let mut current = index;
        while let Some(parent) = self
            .nodes
            .get(current)
            .and_then(|n| n.hypothesis.parent.clone())
        {
            match self.nodes.iter().position(|n| n.hypothesis.id == parent) {
                Some(p) => current = p,
                None => break,
            }
        }
        current
    }

    /// The next hypothesis to examine: stay with the line of inquiry in
    /// progress (deepest first), else the most promising one.
    fn next(&self, focus_root: Option<usize>) -> Option<usize> {
        let candidates: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.selectable(*i))
            .collect();
        candidates.into_iter().max_by(|a, b| {
            let key = |i: usize| {
                let same_line = focus_root.is_some_and(|r| self.root_of(i) == r);
                (same_line, self.depth(i))
            };
            key(*a)
                .cmp(&key(*b))
                .then_with(|| {
                    let score = |i: usize| self.nodes.get(i).map_or(0.0, |n| n.hypothesis.score);
                    score(*a).total_cmp(&score(*b))
                })
                .then_with(|| b.cmp(a))
        })
    }

    /// Whether the hypothesis or any of its refinements holds evidence
    /// against it.
    fn contradicted(&self, index: usize) -> bool {
        self.nodes
            .get(index)
            .is_some_and(|n| !n.hypothesis.contradicting.is_empty())
            || self
                .children(index)
                .into_iter()
                .any(|c| self.contradicted(c))
    }

    /// Records an assessment: its cited findings become evidence, its
    /// refinements new hypotheses when `follow_refinements`.
    fn apply(
        &mut self,
        index: usize,
        assessment: &Assessment,
        observations: &[Observation],
        follow_refinements: bool,
    ) {
        let mut supporting = Vec::new();
        let mut contradicting = Vec::new();
        let mut latest = Vec::new();
        for f in &assessment.findings {
            let Some(obs) = observations.get(f.observation) else {
                self.events.warn(
                    "finding_dropped",
                    json!({"reason": "cites no query that ran", "summary": f.summary}),
                );
                continue;
            };
            let id = format!("ev-{}", self.evidence.len() + 1);
            let evidence = Evidence {
                id: id.clone(),
                domain: f.domain.clone(),
                cited: EvidenceSource {
                    source: format!("{}:{}", obs.source, Self::kind_of(&obs.query)),
                    query: obs.query.describe(),
                },
                summary: f.summary.clone(),
                observed_at: f.observed_at,
                detail: f.detail.clone(),
            };
            self.events.info(
                "evidence",
                json!({"id": id, "summary": evidence.summary, "source": evidence.cited.source, "bearing": f.bearing}),
            );
            self.evidence.push(evidence);
            latest.push((id.clone(), f.bearing));
            match f.bearing {
                Bearing::Supports => supporting.push(id),
                Bearing::Contradicts => contradicting.push(id),
                Bearing::Neutral => {}
            }
        }
        let cycle = self.ctx.cycle;
        if let Some(node) = self.nodes.get_mut(index) {
            let h = &mut node.hypothesis;
            h.status = assessment.status;
            h.score = assessment.score.clamp(0.0, 1.0);
            h.supporting.extend(supporting);
            h.contradicting.extend(contradicting);
            h.cycle = cycle;
            node.evaluated_in = Some(cycle);
            node.latest = latest;
        }
        let unfounded =
            assessment.status == HypothesisStatus::Rejected && !self.contradicted(index);
        if unfounded && let Some(node) = self.nodes.get_mut(index) {
            node.hypothesis.status = HypothesisStatus::Open;
            let fields = json!({
                "id": node.hypothesis.id,
                "reason": "no contradicting evidence cites a query that ran",
            });
            self.events.warn("rejection_withheld", fields);
        }
        self.emit_hypothesis(index);
        if follow_refinements {
            self.add_hypotheses(assessment.refinements.clone(), Some(index));
            return;
        }
        if !assessment.refinements.is_empty() {
            self.events.info(
                "refinements_not_followed",
                json!({
                    "id": self.nodes.get(index).map(|n| &n.hypothesis.id),
                    "reason": "differential pass",
                    "count": assessment.refinements.len(),
                }),
            );
        }
        self.sync();
    }

    fn focus(&self, index: usize) -> Option<Focus> {
        self.nodes.get(index).map(|n| Focus {
            hypothesis: n.hypothesis.clone(),
            tag: n.tag.clone(),
        })
    }

    /// Which limit, if any, stops the next cycle.
    fn limit_reached(&self, reasoner: &dyn Reasoner, input: &AgentInput) -> Option<Ending> {
        if self.ctx.cycle >= self.ctx.depth_budget {
            return Some(Ending::BreakerTripped);
        }
        if Utc::now() >= self.stop_at {
            return Some(Ending::Deadline);
        }
        let spent: f64 = reasoner.llm_calls().iter().map(|c| c.cost_usd).sum();
        let budget = input.plan.profile.cost_budget_usd;
        if budget > 0.0 && spent >= budget {
            return Some(Ending::CostBudget);
        }
        None
    }

    /// One cycle on `index`: plan, query, evaluate, record.
    async fn examine(
        &mut self,
        reasoner: &mut dyn Reasoner,
        index: usize,
        follow_refinements: bool,
    ) -> Result<Assessment, ReasonerError> {
        let focus = self.focus(index).ok_or_else(|| ReasonerError::Backend {
            reasoner: "loop".to_string(),
            detail: "no such hypothesis".to_string(),
        })?;
        let planned = reasoner.plan(&self.ctx, &focus).await?;
        let observations = self.run(planned).await;
        let assessment = reasoner.evaluate(&self.ctx, &focus, &observations).await?;
        self.apply(index, &assessment, &observations, follow_refinements);
        Ok(assessment)
    }

    /// A reasoner's own budget running out stops the loop as the loop's
    /// cost limit does (escalating with the findings so far); any other
    /// failure is the reasoner failing.
    fn ending_of(&mut self, e: ReasonerError) -> Ending {
        match e {
            ReasonerError::BudgetExhausted { detail, .. } => {
                self.events
                    .warn("reasoner_budget_exhausted", json!({"detail": detail}));
                Ending::CostBudget
            }
            other => Ending::ReasonerFailed(other.to_string()),
        }
    }

    fn start_cycle(&mut self, phase: &str) {
        self.ctx.cycle += 1;
        let fields =
            json!({"cycle": self.ctx.cycle, "budget": self.ctx.depth_budget, "phase": phase});
        self.events.info("cycle_started", fields);
    }

    /// Top-level hypotheses other than `root` still open, best first.
    fn open_alternatives(&self, root: usize) -> Vec<usize> {
        let mut out: Vec<usize> = (0..self.nodes.len())
            .filter(|i| *i != root)
            .filter(|i| {
                self.nodes.get(*i).is_some_and(|n| {
                    n.hypothesis.parent.is_none() && n.hypothesis.status == HypothesisStatus::Open
                })
            })
            .collect();
        let score = |i: &usize| self.nodes.get(*i).map_or(0.0, |n| n.hypothesis.score);
        out.sort_by(|a, b| score(b).total_cmp(&score(a)).then(a.cmp(b)));
        out
    }
}

/// What the differential pass left undone.
#[derive(Default)]
struct Differential {
    /// Alternatives it had no cycle for.
    unweighed: Vec<usize>,
    /// Why it stopped early.
    stopped: Option<String>,
}

/// The differential pass: see the module docs.
async fn weigh_alternatives(
    run: &mut Run<'_>,
    reasoner: &mut dyn Reasoner,
    root: usize,
    input: &AgentInput,
) -> Differential {
    let mut out = Differential::default();
    let alternatives = run.open_alternatives(root);
    for (n, index) in alternatives.iter().enumerate() {
        if let Some(limit) = run.limit_reached(reasoner, input) {
            out.stopped = Some(
                match limit {
                    Ending::BreakerTripped => "the depth budget is spent",
                    Ending::Deadline => "the deadline is near",
                    Ending::CostBudget => "the cost budget is spent",
                    _ => "a limit was reached",
                }
                .to_string(),
            );
            out.unweighed = alternatives.get(n..).unwrap_or_default().to_vec();
            break;
        }
        run.start_cycle("differential");
        if let Err(e) = run.examine(reasoner, *index, false).await {
            run.events
                .warn("differential_failed", json!({"error": e.to_string()}));
            out.stopped = Some(match e {
                ReasonerError::BudgetExhausted { .. } => "the cost budget is spent".to_string(),
                other => format!("the reasoner failed: {other}"),
            });
            out.unweighed = alternatives.get(n..).unwrap_or_default().to_vec();
            break;
        }
    }
    if let Some(why) = &out.stopped {
        let ids: Vec<&str> = out
            .unweighed
            .iter()
            .filter_map(|i| run.nodes.get(*i))
            .map(|n| n.hypothesis.id.as_str())
            .collect();
        run.events.warn(
            "differential_cut_short",
            json!({"reason": why, "unweighed": ids}),
        );
    }
    out
}

/// Runs an investigation: see the module docs.
pub async fn investigate_with(
    input: &AgentInput,
    sources: &[Box<dyn DataSource>],
    reasoner: &mut dyn Reasoner,
    events: &mut EventLog,
    cfg: &LoopConfig,
) -> Report {
    let started = Instant::now();
    let now = Utc::now();
    let budget = input.plan.profile.depth_budget;
    let incident = &input.incident;
    let last_event = incident.last_event_at.max(incident.first_event_at);
    let window = TimeRange {
        start: incident.first_event_at - cfg.lookback,
        end: last_event + cfg.lookahead,
    };
    let stop_at = cfg
        .stop_at
        .unwrap_or_else(|| input.deadline - delivery_reserve(now, input.deadline));
    events.info(
        "started",
        json!({
            "incident_id": incident.id,
            "reasoner": reasoner.name(),
            "depth_budget": budget,
            "sources": sources.iter().map(|s| s.name()).collect::<Vec<_>>(),
            "window": window,
        }),
    );
    let gate = ReadGate::for_input(input);
    match gate.load_error() {
        Some(e) => events.error(
            "read_gate_failed",
            json!({"error": e, "effect": "every read is denied"}),
        ),
        None => events.info(
            "read_gate",
            json!({"phase": gate.phase(), "environment": gate.environment()}),
        ),
    }
    let mut run = Run {
        sources,
        events,
        ctx: ReasoningContext {
            investigation_id: input.investigation_id.to_string(),
            incident: incident.clone(),
            window,
            cycle: 0,
            depth_budget: budget,
            sources: sources
                .iter()
                .map(|s| SourceInfo {
                    name: s.name().to_string(),
                    domains: s.domains(),
                })
                .collect(),
            hypotheses: Vec::new(),
            evidence: Vec::new(),
        },
        nodes: Vec::new(),
        evidence: Vec::new(),
        queries: 0,
        stop_at,
        gate,
        recorded: BTreeSet::new(),
    };

    let mut survey: Option<Vec<Observation>> = None;
    let mut focus_root: Option<usize> = None;
    let ending = loop {
        if let Some(limit) = run.limit_reached(reasoner, input) {
            break limit;
        }
        run.start_cycle("inquiry");

        let observations = match &survey {
            Some(o) => o.clone(),
            None => {
                let planned = match reasoner.survey(&run.ctx).await {
                    Ok(p) => p,
                    Err(e) => break run.ending_of(e),
                };
                let o = run.run(planned).await;
                survey = Some(o.clone());
                o
            }
        };
        let index = match run.next(focus_root) {
            Some(i) => i,
            None => {
                let proposals = match reasoner.hypothesize(&run.ctx, &observations).await {
                    Ok(p) => p,
                    Err(e) => break run.ending_of(e),
                };
                run.add_hypotheses(proposals, None);
                match run.next(None) {
                    Some(i) => i,
                    None => break Ending::Exhausted,
                }
            }
        };
        focus_root = Some(run.root_of(index));
        let assessment = match run.examine(reasoner, index, true).await {
            Ok(a) => a,
            Err(e) => break run.ending_of(e),
        };
        if assessment.status == HypothesisStatus::Supported
            && assessment.score >= cfg.confidence_threshold
            && assessment.explains_symptoms
            && run
                .nodes
                .get(index)
                .is_some_and(|n| n.hypothesis.parent.is_none())
        {
            break Ending::Concluded(index, assessment.chain.clone());
        }
    };

    let differential = match &ending {
        Ending::Concluded(root, _) => weigh_alternatives(&mut run, reasoner, *root, input).await,
        _ => Differential::default(),
    };
    finish(run, reasoner, ending, differential, input, started, cfg).await
}

async fn finish(
    run: Run<'_>,
    reasoner: &mut dyn Reasoner,
    ending: Ending,
    differential: Differential,
    input: &AgentInput,
    started: Instant,
    cfg: &LoopConfig,
) -> Report {
    let budget = input.plan.profile.depth_budget;
    let cycles = run.ctx.cycle;
    let mut root_cause = None;
    let mut remediation = Vec::new();
    let mut escalation = None;
    let mut tripped = false;
    let confidence;
    let summary;

    match ending {
        Ending::Concluded(index, chain) => {
            let h = run
                .nodes
                .get(index)
                .map(|n| n.hypothesis.clone())
                .unwrap_or_else(empty_hypothesis);
            let root = RootCause {
                hypothesis: h.id.clone(),
                subject: h.subject.clone(),
                statement: h.statement.clone(),
                chain,
            };
            remediation = match reasoner.remediate(&run.ctx, &root).await {
                Ok(r) => r,
                Err(e) => {
                    run.events
                        .warn("remediation_failed", json!({"error": e.to_string()}));
                    Vec::new()
                }
            };
            confidence = h.score;
            summary = format!(
                "Root cause: {} (confidence {:.2}, {} of {} reasoning cycles).{}",
                h.statement,
                h.score,
                cycles,
                budget,
                alternatives_summary(&run, index, &differential)
            );
            root_cause = Some(root);
        }
        other => {
            let why = match &other {
                Ending::BreakerTripped => {
                    tripped = true;
                    run.events.warn(
                        "breaker_tripped",
                        json!({"cycles": cycles, "budget": budget}),
                    );
                    format!(
                        "The reasoning-depth circuit breaker tripped after {cycles} of {budget} cycles without a conclusion."
                    )
                }
                Ending::Deadline => format!(
                    "The investigation stopped at its deadline after {cycles} cycles without a conclusion."
                ),
                Ending::CostBudget => format!(
                    "The investigation reached its cost budget after {cycles} cycles without a conclusion."
                ),
                Ending::Exhausted => format!(
                    "Every hypothesis was examined in {cycles} cycles; none reached confidence {:.2} with a chain that explains the symptoms.",
                    cfg.confidence_threshold
                ),
                Ending::ReasonerFailed(e) => {
                    run.events.error("reasoner_failed", json!({"error": e}));
                    format!("The reasoner failed after {cycles} cycles: {e}.")
                }
                Ending::Concluded(..) => String::new(),
            };
            confidence = run
                .nodes
                .iter()
                .filter(|n| {
                    n.hypothesis.parent.is_none()
                        && n.hypothesis.status != HypothesisStatus::Rejected
                })
                .map(|n| n.hypothesis.score)
                .fold(0.0, f64::max);
            escalation = Some(format!("{why} {}", findings_so_far(&run)));
            let open = if matches!(other, Ending::Exhausted) {
                inconclusive_summary(&run)
            } else {
                String::new()
            };
            summary = format!("{why}{open} Handed over to a person.");
        }
    }
    run.events.info(
        "concluded",
        json!({
            "root_cause": root_cause.as_ref().map(|r| &r.statement),
            "subject": root_cause.as_ref().map(|r| &r.subject),
            "confidence": confidence,
            "cycles": cycles,
            "circuit_breaker_tripped": tripped,
        }),
    );

    let llm_calls = reasoner.llm_calls();
    let resources = usage::own_usage();
    let cost = CostLedger {
        llm_input_tokens: llm_calls.iter().map(|c| c.input_tokens).sum(),
        llm_output_tokens: llm_calls.iter().map(|c| c.output_tokens).sum(),
        llm_cost_usd: llm_calls.iter().fold(0.0, |sum, c| sum + c.cost_usd),
        llm_calls,
        cpu_seconds: resources.cpu_seconds,
        peak_memory_bytes: resources.peak_memory_bytes,
        wall_seconds: started.elapsed().as_secs_f64(),
        data_queries: run.queries,
    };
    Report {
        investigation_id: input.investigation_id.to_string(),
        incident_id: input.incident.id.to_string(),
        reasoner: reasoner.name().to_string(),
        summary,
        root_cause,
        confidence,
        hypotheses: run.nodes.into_iter().map(|n| n.hypothesis).collect(),
        evidence: run.evidence,
        remediation,
        cycles,
        depth_budget: budget,
        circuit_breaker_tripped: tripped,
        escalation,
        cost,
    }
}

/// The alert domain evidence about `source` is filed under: the source's
/// first, else the data domain read, else `unknown`.
fn evidence_domain(source: &dyn DataSource, data_domains: &[String]) -> Domain {
    source
        .domains()
        .into_iter()
        .next()
        .or_else(|| data_domains.first().map(Domain::new))
        .unwrap_or_else(|| Domain::new("unknown"))
}

/// The reason the reasoner gave for a verdict on `node`: the first
/// evidence of `bearing` from its latest evaluation (for a rejection, else
/// the first evidence against it at all).
fn reason_of(run: &Run<'_>, node: &Node, bearing: Bearing) -> Option<String> {
    let latest = node
        .latest
        .iter()
        .find(|(_, b)| *b == bearing)
        .map(|(id, _)| id);
    let id = match bearing {
        Bearing::Contradicts => latest.or(node.hypothesis.contradicting.first()),
        _ => latest,
    }?;
    run.evidence
        .iter()
        .find(|e| &e.id == id)
        .map(|e| e.summary.trim_end_matches('.').to_string())
}

/// What became of the alternatives to the root cause, in a sentence or
/// two: rejected ones with the evidence against them, the ones left open
/// and why.
fn alternatives_summary(run: &Run<'_>, root: usize, differential: &Differential) -> String {
    let top: Vec<(usize, &Node)> = run
        .nodes
        .iter()
        .enumerate()
        .filter(|(i, n)| *i != root && n.hypothesis.parent.is_none())
        .collect();
    let with = |status: HypothesisStatus| {
        top.iter()
            .filter(move |(_, n)| n.hypothesis.status == status)
    };
    let mut text = String::new();
    let rejected: Vec<String> = with(HypothesisStatus::Rejected)
        .map(|(_, n)| match reason_of(run, n, Bearing::Contradicts) {
            Some(reason) => format!("{}: {reason}", n.hypothesis.id),
            None => n.hypothesis.id.clone(),
        })
        .collect();
    if !rejected.is_empty() {
        text.push_str(&format!(" Alternatives rejected: {}.", rejected.join("; ")));
    }
    let supported: Vec<&str> = with(HypothesisStatus::Supported)
        .map(|(_, n)| n.hypothesis.id.as_str())
        .collect();
    if !supported.is_empty() {
        text.push_str(&format!(" Also supported: {}.", supported.join(", ")));
    }
    let inconclusive: Vec<String> = with(HypothesisStatus::Open)
        .filter(|(i, _)| !differential.unweighed.contains(i))
        .map(|(_, n)| match reason_of(run, n, Bearing::Neutral) {
            Some(reason) => format!("{}: {reason}", n.hypothesis.id),
            None => n.hypothesis.id.clone(),
        })
        .collect();
    if !inconclusive.is_empty() {
        text.push_str(&format!(
            " Left open, the evidence being inconclusive: {}.",
            inconclusive.join("; ")
        ));
    }
    if let Some(why) = &differential.stopped {
        let ids: Vec<&str> = differential
            .unweighed
            .iter()
            .filter_map(|i| run.nodes.get(*i))
            .map(|n| n.hypothesis.id.as_str())
            .collect();
        text.push_str(&format!(
            " Not weighed against it because {why}: {}.",
            ids.join(", ")
        ));
    }
    text
}

/// For an investigation that found no root cause: which hypotheses the
/// evidence left open.
fn inconclusive_summary(run: &Run<'_>) -> String {
    let open: Vec<&str> = run
        .nodes
        .iter()
        .filter(|n| n.hypothesis.parent.is_none() && n.hypothesis.status == HypothesisStatus::Open)
        .map(|n| n.hypothesis.id.as_str())
        .collect();
    if open.is_empty() {
        String::new()
    } else {
        format!(
            " The evidence is inconclusive: {} remain open.",
            open.join(", ")
        )
    }
}

fn empty_hypothesis() -> Hypothesis {
    Hypothesis {
        id: String::new(),
        parent: None,
        statement: String::new(),
        subject: String::new(),
        status: HypothesisStatus::Open,
        score: 0.0,
        supporting: Vec::new(),
        contradicting: Vec::new(),
        cycle: 0,
    }
}

/// The strongest hypotheses and the evidence behind them, for a person
/// taking over.
fn findings_so_far(run: &Run<'_>) -> String {
    let mut ranked: Vec<&Hypothesis> = run
        .nodes
        .iter()
        .map(|n| &n.hypothesis)
        .filter(|h| h.status != HypothesisStatus::Rejected)
        .collect();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
    if ranked.is_empty() && run.evidence.is_empty() {
        return "No hypothesis could be formed from the available data.".to_string();
    }
    let mut text = String::from("Strongest hypotheses:");
    for h in ranked.iter().take(3) {
        let status = match h.status {
            HypothesisStatus::Supported => "supported",
            HypothesisStatus::Rejected => "rejected",
            HypothesisStatus::Open => "open",
        };
        text.push_str(&format!(
            " {} \"{}\" ({status}, {:.2});",
            h.id, h.statement, h.score
        ));
    }
    let rejected: Vec<&str> = run
        .nodes
        .iter()
        .filter(|n| n.hypothesis.status == HypothesisStatus::Rejected)
        .map(|n| n.hypothesis.id.as_str())
        .collect();
    if !rejected.is_empty() {
        text.push_str(&format!(" Rejected: {}.", rejected.join(", ")));
    }
    let cited: BTreeSet<&String> = ranked
        .iter()
        .take(3)
        .flat_map(|h| h.supporting.iter())
        .collect();
    let key: Vec<&Evidence> = run
        .evidence
        .iter()
        .filter(|e| cited.contains(&e.id))
        .take(5)
        .collect();
    if !key.is_empty() {
        text.push_str(" Key evidence:");
        for e in key {
            text.push_str(&format!(" {}: {};", e.id, e.summary));
        }
    }
    text
}
