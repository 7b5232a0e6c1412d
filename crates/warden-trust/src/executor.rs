//! The remediation executor port: runs one approved action, in its own job
//! with exactly that action's permissions, and reports what it did.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use warden_core::{ProposedAction, TrustPhase};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRequest {
    pub action_id: String,
    pub investigation: String,
    /// The phase the action was decided in: it labels the remediation pod,
    /// which the rendered NetworkPolicies select by phase.
    pub phase: TrustPhase,
    pub action: ProposedAction,
}

/// What the executor did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionReport {
    /// Whether the action was applied to its target.
    pub applied: bool,
    pub detail: String,
    /// The job, service account and role rules it ran with.
    pub record: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecutionError {
    /// The request cannot be run as given (bounds, unknown target).
    #[error("refused: {0}")]
    Refused(String),
    /// The executor could not create, run or observe the job.
    #[error("remediation job failed: {0}")]
    Job(String),
}

#[async_trait]
pub trait RemediationExecutor: Send + Sync {
    async fn execute(&self, request: &ExecutionRequest) -> Result<ExecutionReport, ExecutionError>;
}
