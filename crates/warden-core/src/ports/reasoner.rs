//! The reasoner port: the part of an investigation that decides.
//!
//! The loop that drives an investigation owns everything observable: which
//! queries run, against which source, how many, in which cycle, and what
//! becomes evidence. A reasoner only decides: which hypotheses to hold, which
//! queries would test one, and what the answers mean. Keeping data access in
//! the loop means every query is counted and can pass a policy gate whether
//! the reasoner is the built-in one or a language model calling tools, and a
//! reasoner cannot reach data the investigation was not given.
//!
//! The shape follows a tool-calling conversation, so an LLM reasoner maps
//! onto it directly:
//!
//! ```text
//! survey()      → queries to orient        (tool calls)
//! hypothesize() → hypotheses with priors   (structured answer)
//! plan(h)       → queries that test h      (tool calls)
//! evaluate(h)   → verdict, findings citing observations, refinements
//! remediate()   → proposals for the root cause
//! ```
//!
//! Everything handed to a reasoner is plain serialisable data; text inside
//! observations (log lines, change summaries) is data, never instructions.
//! A finding must cite the observation it rests on; the loop drops findings
//! that cite nothing it ran.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alert::Domain;
use crate::evidence::Evidence;
use crate::incident::Incident;
use crate::ports::data::{Query, QueryResult};
use crate::report::{Hypothesis, HypothesisStatus, LlmCall, Remediation, RootCause};
use crate::telemetry::TimeRange;

/// A data source as a reasoner may address it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    pub name: String,
    pub domains: Vec<Domain>,
}

/// What a reasoner knows of the investigation at the moment it is asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReasoningContext {
    pub investigation_id: String,
    pub incident: Incident,
    /// The time range the investigation looks at (around the incident).
    pub window: TimeRange,
    /// The current reasoning cycle, 1-based.
    pub cycle: u32,
    /// Cycles allowed before the circuit breaker trips.
    pub depth_budget: u32,
    pub sources: Vec<SourceInfo>,
    /// The hypothesis tree so far.
    pub hypotheses: Vec<Hypothesis>,
    /// The evidence chain so far.
    pub evidence: Vec<Evidence>,
}

/// A query a reasoner wants run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedQuery {
    /// The source to ask; `None` asks every source.
    pub source: Option<String>,
    pub query: Query,
    /// Why the query is wanted, for the investigation log.
    pub purpose: String,
}

impl PlannedQuery {
    /// A query for every source.
    pub fn everywhere(query: Query, purpose: &str) -> PlannedQuery {
        PlannedQuery {
            source: None,
            query,
            purpose: purpose.to_string(),
        }
    }
}

/// The broad first look every reasoner starts with: the engines need all of
/// it (topology, every series, warnings and errors, changes, flows, security
/// events) before any hypothesis can be ranked.
pub fn broad_survey(range: TimeRange, log_limit: usize) -> Vec<PlannedQuery> {
    vec![
        PlannedQuery::everywhere(Query::Topology, "the dependency graph"),
        PlannedQuery::everywhere(
            Query::Metrics {
                metric: None,
                labels: std::collections::BTreeMap::new(),
                range,
            },
            "every series, to score anomalies",
        ),
        PlannedQuery::everywhere(
            Query::Logs {
                service: None,
                min_level: Some("WARN".to_string()),
                contains: None,
                range,
                limit: log_limit,
            },
            "warnings and errors of every service, to mine templates",
        ),
        PlannedQuery::everywhere(Query::Changes { range }, "changes around the incident"),
        PlannedQuery::everywhere(
            Query::Flows {
                service: None,
                range,
            },
            "network flows, to find impaired paths",
        ),
        PlannedQuery::everywhere(Query::SecurityEvents { range }, "security sensor events"),
    ]
}

/// One answer to a planned query from one source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub source: String,
    pub query: Query,
    pub purpose: String,
    /// The answer, when the source gave one.
    pub result: Option<QueryResult>,
    /// Why there is no answer (unavailable, unsupported, malformed, denied).
    pub error: Option<String>,
}

/// A hypothesis a reasoner proposes; the loop assigns its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProposedHypothesis {
    /// The reasoner's own handle for the hypothesis, handed back with it
    /// in [`Focus`]. Opaque to the loop.
    pub tag: String,
    pub statement: String,
    /// The component (service, device, change id) the hypothesis blames.
    pub subject: String,
    /// Initial score, 0.0 ..= 1.0; the loop tests higher priors first.
    pub prior: f64,
}

/// The hypothesis a reasoner is asked about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Focus {
    pub hypothesis: Hypothesis,
    pub tag: String,
}

/// How a finding bears on the hypothesis under evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bearing {
    Supports,
    Contradicts,
    Neutral,
}

/// Something a reasoner read in an observation; becomes evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Index of the cited observation in the slice passed to `evaluate`.
    pub observation: usize,
    pub domain: Domain,
    /// One sentence a responder can read.
    pub summary: String,
    pub observed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub detail: serde_json::Value,
    pub bearing: Bearing,
}

/// A reasoner's verdict on one hypothesis after seeing its observations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    pub status: HypothesisStatus,
    /// 0.0 ..= 1.0.
    pub score: f64,
    pub findings: Vec<Finding>,
    /// Child hypotheses that would explain the causal chain; the loop tests
    /// them and then asks about this hypothesis again.
    #[serde(default)]
    pub refinements: Vec<ProposedHypothesis>,
    /// The causal chain from the origin to the symptoms, one step a line,
    /// when the hypothesis is supported.
    #[serde(default)]
    pub chain: Vec<String>,
    /// Whether the chain accounts for the incident's symptoms.
    #[serde(default)]
    pub explains_symptoms: bool,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReasonerError {
    /// The reasoner's backend (an LLM endpoint) failed or answered nonsense.
    #[error("reasoner {reasoner} failed: {detail}")]
    Backend { reasoner: String, detail: String },
    /// The reasoner's own spending limit is reached.
    #[error("reasoner {reasoner} exhausted its cost budget: {detail}")]
    BudgetExhausted { reasoner: String, detail: String },
}

/// Decides what an investigation believes; see the module docs.
#[async_trait]
pub trait Reasoner: Send {
    /// Recorded in the report (`builtin`, `openai:<model>`, ...).
    fn name(&self) -> &str;

    /// Broad queries to orient before any hypothesis exists.
    async fn survey(&mut self, ctx: &ReasoningContext) -> Result<Vec<PlannedQuery>, ReasonerError>;

    /// Hypotheses worth testing, given the survey. Called again when every
    /// hypothesis so far is settled; an empty answer ends the investigation.
    async fn hypothesize(
        &mut self,
        ctx: &ReasoningContext,
        survey: &[Observation],
    ) -> Result<Vec<ProposedHypothesis>, ReasonerError>;

    /// The queries that would test `focus`.
    async fn plan(
        &mut self,
        ctx: &ReasoningContext,
        focus: &Focus,
    ) -> Result<Vec<PlannedQuery>, ReasonerError>;

    /// Judges `focus` on the answers to its planned queries.
    async fn evaluate(
        &mut self,
        ctx: &ReasoningContext,
        focus: &Focus,
        observations: &[Observation],
    ) -> Result<Assessment, ReasonerError>;

    /// Proposed remediation for a root cause. Proposals only.
    async fn remediate(
        &mut self,
        ctx: &ReasoningContext,
        root: &RootCause,
    ) -> Result<Vec<Remediation>, ReasonerError>;

    /// Every LLM call made so far, for the cost ledger; empty for a
    /// reasoner that calls none.
    fn llm_calls(&self) -> Vec<LlmCall>;
}
