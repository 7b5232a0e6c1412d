//! What the control plane hands an investigation's job when it starts.
//!
//! The job reads one JSON document, [`JobInput`], from its standard input
//! and then sees end-of-file. The one-time result credential travels only
//! through that pipe: never in argv, never in an environment variable, never
//! in a file.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::incident::Incident;
use crate::investigation::InvestigationId;
use crate::plan::Plan;
use crate::trust::TrustPhase;

/// Where the agent finds evidence. Each variant is a read-only connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DataSourceConfig {
    /// A telemetry bundle directory (`docs/telemetry-bundle.md`).
    Bundle { path: String },
}

/// The investigation as the agent sees it. Contains no secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentInput {
    pub investigation_id: InvestigationId,
    pub phase: TrustPhase,
    pub plan: Plan,
    pub deadline: DateTime<Utc>,
    pub incident: Incident,
    pub data_sources: Vec<DataSourceConfig>,
    /// Where to POST the report (`.../api/v1/investigations/{id}/report`).
    pub report_url: String,
}

/// The document on the job's standard input.
#[derive(Deserialize)]
pub struct JobInput {
    pub input: AgentInput,
    /// Sent as `Authorization: Bearer` when delivering the report.
    pub result_credential: SecretString,
}

impl std::fmt::Debug for JobInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobInput")
            .field("input", &self.input)
            .finish_non_exhaustive()
    }
}
