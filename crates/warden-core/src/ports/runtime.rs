use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretString;

use crate::agent_input::{AgentInput, JobIdentity};
use crate::investigation::InvestigationId;
use crate::plan::Plan;
use crate::trust::TrustPhase;

/// Everything a runtime needs to start one investigation's job.
pub struct JobSpec {
    pub investigation_id: InvestigationId,
    pub phase: TrustPhase,
    pub plan: Plan,
    pub deadline: DateTime<Utc>,
    /// The agent's input document. Not secret; handed to the job on start.
    pub agent_input: AgentInput,
    /// One-time credential for delivering the report. Handed over out of
    /// band (a pipe, a projected volume), never in argv or a persisted env.
    pub result_credential: SecretString,
    /// The investigation's identity for domain secrets, handed over the
    /// same way as the result credential.
    pub identity: Option<JobIdentity>,
}

impl std::fmt::Debug for JobSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobSpec")
            .field("investigation_id", &self.investigation_id)
            .field("phase", &self.phase)
            .field("plan", &self.plan)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// How to find a started job again (after a control-plane restart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobHandle {
    pub job_ref: String,
}

/// How a job ended, as far as the runtime can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Exited on its own with this code (0 = success).
    Exited { code: i32 },
    /// Killed for exceeding its memory limit.
    OutOfMemory { detail: String },
    /// Killed at its wall-clock deadline.
    DeadlineExceeded,
    /// Killed by a signal not sent for a deadline or memory.
    Killed { detail: String },
    /// Cancelled on request.
    Cancelled,
    /// Gone, and how it ended cannot be known (it ended while no control
    /// plane was watching).
    Lost { detail: String },
}

#[derive(Debug, Clone, PartialEq)]
pub enum JobEventKind {
    Finished {
        outcome: JobOutcome,
        cpu_seconds: Option<f64>,
        peak_memory_bytes: Option<u64>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct JobEvent {
    pub investigation_id: InvestigationId,
    pub kind: JobEventKind,
}

/// Where a runtime reports what happens to its jobs.
pub trait JobEvents: Send + Sync {
    fn emit(&self, event: JobEvent);
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    #[error("could not start job for {investigation}: {detail}")]
    Start {
        investigation: InvestigationId,
        detail: String,
    },
    #[error("no job for {0}")]
    NotFound(InvestigationId),
    #[error("runtime error: {0}")]
    Other(String),
}

/// What [`JobRuntime::adopt`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adoption {
    /// The job is watched again; its end is reported as usual.
    Adopted,
    /// No such job.
    Gone,
    /// The job existed but had not yet received its input, which lived
    /// only in the earlier control plane's memory (it holds secrets, so it
    /// is never stored). The runtime removed the job; the investigation is
    /// to be started again with a fresh credential.
    Restart,
}

/// Runs one isolated job per investigation.
#[async_trait]
pub trait JobRuntime: Send + Sync {
    fn name(&self) -> &'static str;

    /// Starts the job; returns once it exists. Its end is reported through
    /// the `JobEvents` the runtime was built with.
    async fn start(&self, spec: JobSpec) -> Result<JobHandle, RuntimeError>;

    /// Re-attaches to a job an earlier control plane started.
    /// `job_ref` is what `start` returned, when it was recorded; a runtime
    /// must also find a job whose start was not yet recorded (a crash
    /// between the two), so that no investigation ever runs twice.
    async fn adopt(
        &self,
        investigation: &InvestigationId,
        job_ref: Option<&str>,
        deadline: DateTime<Utc>,
    ) -> Result<Adoption, RuntimeError>;

    /// Stops the job; its end is reported as `JobOutcome::Cancelled`.
    async fn cancel(&self, investigation: &InvestigationId) -> Result<(), RuntimeError>;

    /// The job's log as written so far.
    async fn logs(&self, investigation: &InvestigationId) -> Result<String, RuntimeError>;

    /// Removes the job's working state (not its log) once it is finished.
    async fn cleanup(&self, investigation: &InvestigationId) -> Result<(), RuntimeError>;
}
