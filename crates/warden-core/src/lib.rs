//! warden's domain model and the ports its adapters implement.
//!
//! This crate does no I/O: it holds the types every other crate speaks in
//! (alerts, incidents, investigations, reports) and the traits that the
//! backends implement (`JobRuntime`, `SecretBroker`, `Store`, `DataSource`,
//! `Reasoner`). Keeping it free of tokio, HTTP and SQL means the logic that
//! decides things (planning, state transitions) is tested without any of them.

pub mod action;
pub mod agent_input;
pub mod alert;
pub mod capabilities;
pub mod evidence;
pub mod incident;
pub mod investigation;
pub mod plan;
pub mod ports;
pub mod report;
pub mod telemetry;
pub mod trust;

pub use action::{ActionKind, ActionPermission, ProposedAction};
pub use agent_input::{
    AgentInput, DataSourceConfig, DomainGrant, JobIdentity, JobInput, LlmSettings, ModelPrice,
    SecretsBackend,
};
pub use alert::{Alert, AlertStatus, Domain, Fingerprint};
pub use capabilities::{Environment, PerPhase, PhaseCapabilities, Phases};
pub use evidence::{Evidence, EvidenceSource};
pub use incident::{Incident, IncidentId, IncidentStatus, TopologyHint};
pub use investigation::{
    FailureReason, Investigation, InvestigationId, InvestigationState, StateError,
};
pub use plan::{Complexity, Plan, Planner, PlannerConfig, ResourceProfile};
pub use report::{
    CostLedger, Hypothesis, HypothesisStatus, LlmCall, Remediation, Report, RootCause,
};
pub use trust::TrustPhase;
