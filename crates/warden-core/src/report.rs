//! The diagnosis an investigation returns.

use serde::{Deserialize, Serialize};

use crate::evidence::Evidence;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HypothesisStatus {
    Supported,
    Rejected,
    Open,
}

/// A node of the hypothesis tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hypothesis {
    /// Stable within a report: `h-<n>`.
    pub id: String,
    pub parent: Option<String>,
    pub statement: String,
    /// The component (service, device, change id) the hypothesis blames.
    pub subject: String,
    pub status: HypothesisStatus,
    /// 0.0 ..= 1.0.
    pub score: f64,
    /// Ids of evidence for and against.
    #[serde(default)]
    pub supporting: Vec<String>,
    #[serde(default)]
    pub contradicting: Vec<String>,
    /// Which reasoning cycle last changed it.
    pub cycle: u32,
}

/// A proposed action. Nothing executes in this version: proposals only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Remediation {
    /// Action kind from the allow-list vocabulary (`revert_change`,
    /// `restart_pod`, `rollout_restart`, `scale`, `rollback`, ...).
    pub action: String,
    pub target: String,
    pub rationale: String,
    pub risk: String,
}

/// One call to an LLM, for cost attribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmCall {
    pub model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub latency_ms: u64,
    pub cost_usd: f64,
    pub outcome: String,
}

/// What an investigation cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CostLedger {
    pub llm_calls: Vec<LlmCall>,
    pub llm_input_tokens: u64,
    pub llm_output_tokens: u64,
    pub llm_cost_usd: f64,
    pub cpu_seconds: f64,
    pub peak_memory_bytes: u64,
    pub wall_seconds: f64,
    pub data_queries: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub investigation_id: String,
    pub incident_id: String,
    pub reasoner: String,
    pub summary: String,
    /// The supported hypothesis judged the origin, if any reached confidence.
    pub root_cause: Option<RootCause>,
    pub confidence: f64,
    pub hypotheses: Vec<Hypothesis>,
    pub evidence: Vec<Evidence>,
    pub remediation: Vec<Remediation>,
    pub cycles: u32,
    pub depth_budget: u32,
    /// True when the reasoning-depth circuit breaker stopped the loop.
    pub circuit_breaker_tripped: bool,
    /// Set when the agent hands over to a person before reaching confidence.
    pub escalation: Option<String>,
    pub cost: CostLedger,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootCause {
    pub hypothesis: String,
    pub subject: String,
    pub statement: String,
    /// The causal chain from the origin to the symptoms, one step a line.
    pub chain: Vec<String>,
}
