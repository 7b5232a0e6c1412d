use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::alert::Alert;
use crate::incident::{Incident, IncidentId, IncidentStatus, TopologyHint};
use crate::investigation::{Investigation, InvestigationId};
use crate::report::Report;

/// What one round of correlation changed, written in one transaction so a
/// crash leaves either all of it or none.
#[derive(Debug, Clone, Default)]
pub struct IntakeWrite {
    /// Alerts inserted or updated (by fingerprint), with their incident.
    pub alerts: Vec<(IncidentId, Alert)>,
    /// Incidents created or whose summary changed.
    pub incidents: Vec<IncidentSummary>,
    /// `(from, into)`: incidents merged into another before any
    /// investigation started; their alerts move to `into`.
    pub merged: Vec<(IncidentId, IncidentId)>,
}

/// An incident's own row, without its alerts.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentSummary {
    pub id: IncidentId,
    pub title: String,
    pub status: IncidentStatus,
    pub first_event_at: DateTime<Utc>,
    pub last_event_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub topology: Vec<TopologyHint>,
}

/// A report delivered by a job, with the credential it presented.
pub struct NewReport<'a> {
    pub investigation: &'a InvestigationId,
    /// SHA-256 of the presented one-time credential.
    pub credential_hash: [u8; 32],
    pub report: &'a Report,
    pub at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("not found: {0}")]
    NotFound(String),
    /// The write conflicts with the current state (a finished
    /// investigation, a used credential).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("credential rejected")]
    BadCredential,
    #[error("storage failure: {0}")]
    Backend(String),
}

/// Durable state of the control plane.
#[async_trait]
pub trait Store: Send + Sync {
    async fn apply_intake(&self, write: &IntakeWrite) -> Result<(), StoreError>;
    /// Open incidents with their alerts, to rebuild correlation after a restart.
    async fn open_incidents(&self) -> Result<Vec<Incident>, StoreError>;
    /// Most recent first.
    async fn list_incidents(&self, limit: u32) -> Result<Vec<Incident>, StoreError>;
    async fn get_incident(&self, id: &IncidentId) -> Result<Incident, StoreError>;

    async fn insert_investigation(&self, inv: &Investigation) -> Result<(), StoreError>;
    /// Persists state, timestamps and job reference.
    async fn update_investigation(&self, inv: &Investigation) -> Result<(), StoreError>;
    async fn get_investigation(&self, id: &InvestigationId) -> Result<Investigation, StoreError>;
    /// Oldest first; `state` filters by state name.
    async fn list_investigations(
        &self,
        state: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Investigation>, StoreError>;
    /// Whether an incident already has an investigation.
    async fn investigation_for_incident(
        &self,
        incident: &IncidentId,
    ) -> Result<Option<InvestigationId>, StoreError>;

    /// Records the hash of the job's one-time result credential.
    async fn set_result_credential(
        &self,
        id: &InvestigationId,
        hash: [u8; 32],
    ) -> Result<(), StoreError>;
    /// Checks and consumes the credential, stores the report and marks the
    /// investigation succeeded, atomically. `BadCredential` when the hash
    /// does not match or was used; `Conflict` when already finished.
    async fn deliver_report(&self, report: NewReport<'_>) -> Result<Investigation, StoreError>;
    async fn get_report(&self, id: &InvestigationId) -> Result<Report, StoreError>;
}
