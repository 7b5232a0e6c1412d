//! The trust store port: outcomes, phase state, proposed actions and
//! sign-offs, kept in the same database as the investigations.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use warden_core::ports::StoreError;
use warden_core::{ActionKind, ProposedAction, TrustPhase};

use crate::gates::Signoff;
use crate::outcome::OutcomeRecord;

/// The persisted phase of one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseState {
    pub environment: String,
    pub phase: TrustPhase,
    pub since: DateTime<Utc>,
    /// Why it is in this phase (seeded, demoted, configuration changed).
    pub reason: String,
    /// The phase `environments[]` declared when this state was last
    /// seeded: a changed declaration (a merged promotion) is adopted on the
    /// next start, an unchanged one leaves a demotion in force.
    pub configured_phase: TrustPhase,
}

/// Where a proposed action stands.
///
/// ```text
/// pending_approval ──approve──▶ approved ──▶ executing ──▶ succeeded | failed | rolled_back
///        │ deny / ttl               │ ttl
///        ▼                          ▼
///     denied | expired           expired
/// denied | escalated | approved  (straight from the gate)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionState {
    PendingApproval,
    Approved,
    Executing,
    Succeeded,
    Failed,
    RolledBack,
    Denied,
    Escalated,
    Expired,
}

impl ActionState {
    pub const ALL: [ActionState; 9] = [
        ActionState::PendingApproval,
        ActionState::Approved,
        ActionState::Executing,
        ActionState::Succeeded,
        ActionState::Failed,
        ActionState::RolledBack,
        ActionState::Denied,
        ActionState::Escalated,
        ActionState::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionState::PendingApproval => "pending_approval",
            ActionState::Approved => "approved",
            ActionState::Executing => "executing",
            ActionState::Succeeded => "succeeded",
            ActionState::Failed => "failed",
            ActionState::RolledBack => "rolled_back",
            ActionState::Denied => "denied",
            ActionState::Escalated => "escalated",
            ActionState::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<ActionState> {
        ActionState::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// One action an investigation proposed, and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    pub id: String,
    pub investigation: String,
    pub incident: String,
    pub environment: String,
    pub phase: TrustPhase,
    /// The action kind as proposed; may name no known kind (then denied).
    pub kind: String,
    pub namespace: String,
    pub target: String,
    pub replicas: Option<u32>,
    pub confidence: f64,
    pub state: ActionState,
    /// The gate's decision record, as recorded.
    pub decision: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// A pending proposal expires at this time.
    pub expires_at: DateTime<Utc>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    /// An approval is valid for starting execution until this time.
    pub approval_expires_at: Option<DateTime<Utc>>,
    /// What happened (denial reason, execution result and its detail).
    pub detail: Option<String>,
    /// The execution's record: job, service account, role rules.
    pub execution: Option<serde_json::Value>,
}

impl ActionRecord {
    /// The typed action, when the kind is a known one.
    pub fn proposed(&self) -> Option<ProposedAction> {
        let kind: ActionKind = self.kind.parse().ok()?;
        Some(ProposedAction {
            kind,
            namespace: self.namespace.clone(),
            target: self.target.clone(),
            replicas: self.replicas,
        })
    }
}

#[async_trait]
pub trait TrustStore: Send + Sync {
    async fn record_outcome(&self, outcome: &OutcomeRecord) -> Result<(), StoreError>;
    /// Oldest first.
    async fn outcomes(&self, environment: &str) -> Result<Vec<OutcomeRecord>, StoreError>;

    async fn phase_state(&self, environment: &str) -> Result<Option<PhaseState>, StoreError>;
    async fn set_phase_state(&self, state: &PhaseState) -> Result<(), StoreError>;

    async fn insert_action(&self, action: &ActionRecord) -> Result<(), StoreError>;
    async fn get_action(&self, id: &str) -> Result<ActionRecord, StoreError>;
    /// Oldest first; `investigation` filters.
    async fn list_actions(
        &self,
        investigation: Option<&str>,
    ) -> Result<Vec<ActionRecord>, StoreError>;
    /// Writes `action` only if the stored state is still `expected`, so two
    /// approvals racing cannot both execute. Returns whether it was written.
    async fn update_action(
        &self,
        action: &ActionRecord,
        expected: ActionState,
    ) -> Result<bool, StoreError>;

    async fn add_signoff(&self, signoff: &Signoff) -> Result<(), StoreError>;
    async fn signoffs(&self, environment: &str) -> Result<Vec<Signoff>, StoreError>;

    /// Whether `hash` is the SHA-256 of a live investigation's result
    /// credential: such a bearer is the agent, never an operator.
    async fn is_agent_credential(&self, hash: [u8; 32]) -> Result<bool, StoreError>;
}
