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

/// Which secrets backend issued a job's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretsBackend {
    /// The control plane's embedded broker; secrets are read from
    /// `GET {address}/api/v1/secrets/{domain}` with the credential as bearer.
    Embedded,
    /// OpenBao or Vault; the credential is a single-use response-wrapping
    /// token the job unwraps into its own token.
    Openbao,
}

/// A data domain the job may read, and where its secret lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainGrant {
    pub name: String,
    pub path: String,
}

/// The investigation's own identity for reading domain secrets.
#[derive(Deserialize)]
pub struct JobIdentity {
    pub backend: SecretsBackend,
    /// Base URL of the secrets backend.
    pub address: String,
    /// Safe to log: identifies the identity, grants nothing.
    pub accessor: String,
    pub domains: Vec<DomainGrant>,
    pub credential: SecretString,
}

impl std::fmt::Debug for JobIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobIdentity")
            .field("backend", &self.backend)
            .field("address", &self.address)
            .field("accessor", &self.accessor)
            .field("domains", &self.domains)
            .finish_non_exhaustive()
    }
}

/// The document on the job's standard input.
#[derive(Deserialize)]
pub struct JobInput {
    pub input: AgentInput,
    /// Sent as `Authorization: Bearer` when delivering the report.
    pub result_credential: SecretString,
    /// Absent when no secrets backend is configured.
    #[serde(default)]
    pub identity: Option<JobIdentity>,
}

impl std::fmt::Debug for JobInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobInput")
            .field("input", &self.input)
            .finish_non_exhaustive()
    }
}
