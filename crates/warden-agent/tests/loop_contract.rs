//! The loop's side of the reasoner contract, with scripted reasoners in
//! place of an LLM: queries run through the loop, findings become evidence
//! only when they cite a query that ran, LLM usage reaches the ledger, the
//! cost budget stops the loop, alternatives are weighed after a conclusion,
//! and nothing is rejected without evidence against it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use async_trait::async_trait;
use chrono::{Duration, Utc};
use warden_agent::{BundleSource, EventLog, investigate};
use warden_core::Domain;
use warden_core::ports::{
    Assessment, Bearing, DataSource, Finding, Focus, Observation, PlannedQuery, ProposedHypothesis,
    Query, Reasoner, ReasonerError, ReasoningContext,
};
use warden_core::report::{HypothesisStatus, LlmCall, Remediation, RootCause};

/// Answers every question the same way and bills each call.
struct Scripted {
    calls: Vec<LlmCall>,
    cost_per_call: f64,
    /// When false it keeps refining and never concludes.
    concludes: bool,
}

impl Scripted {
    fn new(cost_per_call: f64, concludes: bool) -> Self {
        Scripted {
            calls: Vec::new(),
            cost_per_call,
            concludes,
        }
    }

    fn bill(&mut self) {
        self.calls.push(LlmCall {
            model: "scripted-1".into(),
            input_tokens: 100,
            output_tokens: 20,
            latency_ms: 5,
            cost_usd: self.cost_per_call,
            outcome: "ok".into(),
        });
    }
}

#[async_trait]
impl Reasoner for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }

    async fn survey(
        &mut self,
        _ctx: &ReasoningContext,
    ) -> Result<Vec<PlannedQuery>, ReasonerError> {
        self.bill();
        Ok(vec![
            PlannedQuery {
                source: Some("elsewhere".into()),
                query: Query::Topology,
                purpose: "a source that does not exist".into(),
            },
            PlannedQuery {
                source: None,
                query: Query::Topology,
                purpose: "graph".into(),
            },
        ])
    }

    async fn hypothesize(
        &mut self,
        _ctx: &ReasoningContext,
        survey: &[Observation],
    ) -> Result<Vec<ProposedHypothesis>, ReasonerError> {
        self.bill();
        assert_eq!(survey.len(), 2);
        assert_eq!(survey[0].error.as_deref(), Some("no such data source"));
        assert!(survey[1].result.is_some());
        Ok(vec![ProposedHypothesis {
            tag: "t".into(),
            statement: "api is broken".into(),
            subject: "api".into(),
            prior: 0.5,
        }])
    }

    async fn plan(
        &mut self,
        ctx: &ReasoningContext,
        focus: &Focus,
    ) -> Result<Vec<PlannedQuery>, ReasonerError> {
        self.bill();
        assert_eq!(focus.tag, "t");
        Ok(vec![PlannedQuery {
            source: Some("bundle".into()),
            query: Query::Changes { range: ctx.window },
            purpose: "changes".into(),
        }])
    }

    async fn evaluate(
        &mut self,
        _ctx: &ReasoningContext,
        _focus: &Focus,
        observations: &[Observation],
    ) -> Result<Assessment, ReasonerError> {
        self.bill();
        assert_eq!(observations.len(), 1);
        let finding = |observation, summary: &str| Finding {
            observation,
            domain: Domain::new("application"),
            summary: summary.into(),
            observed_at: None,
            detail: serde_json::Value::Null,
            bearing: Bearing::Supports,
        };
        let (status, refinements) = if self.concludes {
            (HypothesisStatus::Supported, Vec::new())
        } else {
            let deeper = ProposedHypothesis {
                tag: format!("t{}", self.calls.len()),
                statement: "deeper".into(),
                subject: "api".into(),
                prior: 0.5,
            };
            (HypothesisStatus::Open, vec![deeper])
        };
        Ok(Assessment {
            status,
            score: 0.9,
            findings: vec![finding(0, "cited"), finding(7, "invented")],
            refinements,
            chain: vec!["api broke".into()],
            explains_symptoms: true,
        })
    }

    async fn remediate(
        &mut self,
        _ctx: &ReasoningContext,
        root: &RootCause,
    ) -> Result<Vec<Remediation>, ReasonerError> {
        Ok(vec![Remediation {
            action: "rollout_restart".into(),
            target: root.subject.clone(),
            rationale: "r".into(),
            risk: "low".into(),
        }])
    }

    fn llm_calls(&self) -> Vec<LlmCall> {
        self.calls.clone()
    }
}

fn setup(
    budget_usd: f64,
) -> (
    common::Bundle,
    warden_core::AgentInput,
    Vec<Box<dyn DataSource>>,
) {
    let bundle = common::quiet_bundle();
    let mut input = common::agent_input(
        bundle.path(),
        common::incident(vec![common::alert("Errors", "api", 0)]),
        8,
        Utc::now() + Duration::minutes(1),
    );
    input.plan.profile.cost_budget_usd = budget_usd;
    let sources: Vec<Box<dyn DataSource>> =
        vec![Box::new(BundleSource::open(bundle.path()).unwrap())];
    (bundle, input, sources)
}

#[tokio::test]
async fn only_findings_that_cite_a_query_that_ran_become_evidence() {
    let (_bundle, input, sources) = setup(1.0);
    let mut reasoner = Scripted::new(0.01, true);
    let (mut events, captured) = EventLog::capture("x");
    let report = investigate(&input, &sources, &mut reasoner, &mut events).await;

    assert_eq!(report.root_cause.as_ref().unwrap().subject, "api");
    assert_eq!(report.evidence.len(), 1);
    assert_eq!(report.evidence[0].summary, "cited");
    assert_eq!(report.evidence[0].cited.source, "bundle:changes");
    assert!(report.evidence[0].cited.query.contains("changes"));
    assert_eq!(report.hypotheses[0].supporting, vec!["ev-1".to_string()]);
    assert!(
        captured
            .events()
            .iter()
            .any(|e| e["event"] == "finding_dropped" && e["summary"] == "invented")
    );
    // Two survey answers were attempted, one ran: only queries that reached
    // a source are counted.
    assert_eq!(report.cost.data_queries, 2);
    assert_eq!(report.remediation[0].target, "api");
}

#[tokio::test]
async fn llm_usage_reaches_the_cost_ledger() {
    let (_bundle, input, sources) = setup(1.0);
    let mut reasoner = Scripted::new(0.01, true);
    let (mut events, _) = EventLog::capture("x");
    let report = investigate(&input, &sources, &mut reasoner, &mut events).await;

    assert_eq!(report.reasoner, "scripted");
    assert_eq!(report.cost.llm_calls.len(), 4);
    assert_eq!(report.cost.llm_input_tokens, 400);
    assert_eq!(report.cost.llm_output_tokens, 80);
    assert!((report.cost.llm_cost_usd - 0.04).abs() < 1e-9);
}

#[tokio::test]
async fn the_cost_budget_stops_the_loop_before_the_next_cycle() {
    let (_bundle, mut input, sources) = setup(0.01);
    input.plan.profile.depth_budget = 8;
    // It never concludes, so only the budget can stop it.
    let mut stubborn = Scripted::new(0.02, false);
    let (mut events, _) = EventLog::capture("x");
    let report = investigate(&input, &sources, &mut stubborn, &mut events).await;

    assert_eq!(report.cycles, 1);
    assert!(report.root_cause.is_none());
    assert!(!report.circuit_breaker_tripped);
    assert!(
        report
            .escalation
            .as_deref()
            .unwrap()
            .contains("cost budget"),
        "{:?}",
        report.escalation
    );
}

/// Two suspects: the first is supported at once, the second is judged
/// against it, with or without evidence that contradicts it.
struct TwoSuspects {
    contradicts: bool,
    /// Statuses of the first suspect seen while judging the second.
    seen: Vec<HypothesisStatus>,
}

#[async_trait]
impl Reasoner for TwoSuspects {
    fn name(&self) -> &str {
        "two-suspects"
    }

    async fn survey(
        &mut self,
        _ctx: &ReasoningContext,
    ) -> Result<Vec<PlannedQuery>, ReasonerError> {
        Ok(Vec::new())
    }

    async fn hypothesize(
        &mut self,
        _ctx: &ReasoningContext,
        _survey: &[Observation],
    ) -> Result<Vec<ProposedHypothesis>, ReasonerError> {
        let suspect = |tag: &str, subject: &str, prior| ProposedHypothesis {
            tag: tag.into(),
            statement: format!("{subject} broke"),
            subject: subject.into(),
            prior,
        };
        Ok(vec![
            suspect("first", "api", 0.9),
            suspect("second", "db", 0.4),
        ])
    }

    async fn plan(
        &mut self,
        ctx: &ReasoningContext,
        _focus: &Focus,
    ) -> Result<Vec<PlannedQuery>, ReasonerError> {
        Ok(vec![PlannedQuery {
            source: None,
            query: Query::Changes { range: ctx.window },
            purpose: "changes".into(),
        }])
    }

    async fn evaluate(
        &mut self,
        ctx: &ReasoningContext,
        focus: &Focus,
        _observations: &[Observation],
    ) -> Result<Assessment, ReasonerError> {
        let finding = |summary: &str, bearing| Finding {
            observation: 0,
            domain: Domain::new("application"),
            summary: summary.into(),
            observed_at: None,
            detail: serde_json::Value::Null,
            bearing,
        };
        if focus.tag == "first" {
            return Ok(Assessment {
                status: HypothesisStatus::Supported,
                score: 0.9,
                findings: vec![finding("api errors", Bearing::Supports)],
                refinements: Vec::new(),
                chain: vec!["api broke".into()],
                explains_symptoms: true,
            });
        }
        self.seen.extend(
            ctx.hypotheses
                .iter()
                .filter(|h| h.id == "h-1")
                .map(|h| h.status),
        );
        let finding = if self.contradicts {
            finding("db stayed healthy", Bearing::Contradicts)
        } else {
            finding("db looked at", Bearing::Supports)
        };
        Ok(Assessment {
            status: HypothesisStatus::Rejected,
            score: 0.05,
            findings: vec![finding],
            refinements: vec![ProposedHypothesis {
                tag: "second/deeper".into(),
                statement: "db is subtly broken".into(),
                subject: "db".into(),
                prior: 0.3,
            }],
            chain: Vec::new(),
            explains_symptoms: false,
        })
    }

    async fn remediate(
        &mut self,
        _ctx: &ReasoningContext,
        _root: &RootCause,
    ) -> Result<Vec<Remediation>, ReasonerError> {
        Ok(Vec::new())
    }

    fn llm_calls(&self) -> Vec<LlmCall> {
        Vec::new()
    }
}

#[tokio::test]
async fn after_a_conclusion_each_alternative_gets_one_cycle_against_it() {
    let (_bundle, input, sources) = setup(1.0);
    let mut reasoner = TwoSuspects {
        contradicts: true,
        seen: Vec::new(),
    };
    let (mut events, captured) = EventLog::capture("x");
    let report = investigate(&input, &sources, &mut reasoner, &mut events).await;

    assert_eq!(report.root_cause.as_ref().unwrap().subject, "api");
    assert_eq!(report.cycles, 2);
    // The alternative was judged while the conclusion was in view.
    assert_eq!(reasoner.seen, vec![HypothesisStatus::Supported]);
    let second = &report.hypotheses[1];
    assert_eq!(second.status, HypothesisStatus::Rejected);
    assert_eq!(second.contradicting, vec!["ev-2".to_string()]);
    // Its refinement would be a new line of inquiry: not followed.
    assert_eq!(report.hypotheses.len(), 2);
    assert!(
        captured
            .events()
            .iter()
            .any(|e| e["event"] == "refinements_not_followed")
    );
    assert!(
        report
            .summary
            .contains("Alternatives rejected: h-2: db stayed healthy."),
        "{}",
        report.summary
    );
}

#[tokio::test]
async fn a_rejection_without_contradicting_evidence_stays_open() {
    let (_bundle, input, sources) = setup(1.0);
    let mut reasoner = TwoSuspects {
        contradicts: false,
        seen: Vec::new(),
    };
    let (mut events, captured) = EventLog::capture("x");
    let report = investigate(&input, &sources, &mut reasoner, &mut events).await;

    let second = &report.hypotheses[1];
    assert_eq!(second.status, HypothesisStatus::Open);
    assert!(second.contradicting.is_empty());
    assert!(
        captured
            .events()
            .iter()
            .any(|e| e["event"] == "rejection_withheld" && e["id"] == "h-2")
    );
    assert!(
        report.summary.contains("Left open") && report.summary.contains("h-2"),
        "{}",
        report.summary
    );
    assert!(!report.summary.contains("rejected"), "{}", report.summary);
}
