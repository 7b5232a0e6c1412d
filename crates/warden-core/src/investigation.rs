//! Investigations and their lifecycle.
//!
//! ```text
//! pending ──▶ running ──▶ succeeded
//!    │           ├──────▶ failed(reason)
//!    │           ├──────▶ timed_out
//!    └───────────┴──────▶ cancelled
//! ```
//! Terminal states never change again; `transition` enforces that so a late
//! event (a report after a deadline kill, say) cannot resurrect a finished
//! investigation.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

use crate::incident::IncidentId;
use crate::plan::Plan;
use crate::trust::TrustPhase;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InvestigationId(pub String);

impl InvestigationId {
    /// `inv-<ULID>`: lexically sortable by creation time.
    pub fn generate() -> Self {
        InvestigationId(format!(
            "inv-{}",
            Ulid::new().to_string().to_ascii_lowercase()
        ))
    }

    /// Accepts only ids of the form warden generates, so an id taken from a
    /// URL can be used safely as a file or cgroup name.
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = s.len() == 30
            && s.starts_with("inv-")
            && s.bytes()
                .skip(4)
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase());
        if ok {
            Ok(InvestigationId(s.to_string()))
        } else {
            Err(format!(
                "invalid investigation id {s:?}: expected inv- followed by 26 lowercase base32 characters"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InvestigationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why an investigation failed; also a metric label, so the set is small.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    OutOfMemory,
    Killed,
    Crashed,
    NoReport,
    LostWhileDown,
    StartFailed,
    CredentialError,
    InvalidReport,
}

impl FailureReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::OutOfMemory => "out_of_memory",
            FailureReason::Killed => "killed",
            FailureReason::Crashed => "crashed",
            FailureReason::NoReport => "no_report",
            FailureReason::LostWhileDown => "lost_while_down",
            FailureReason::StartFailed => "start_failed",
            FailureReason::CredentialError => "credential_error",
            FailureReason::InvalidReport => "invalid_report",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum InvestigationState {
    Pending,
    Running,
    Succeeded,
    Failed {
        reason: FailureReason,
        detail: String,
    },
    TimedOut,
    Cancelled,
}

impl InvestigationState {
    pub fn name(&self) -> &'static str {
        match self {
            InvestigationState::Pending => "pending",
            InvestigationState::Running => "running",
            InvestigationState::Succeeded => "succeeded",
            InvestigationState::Failed { .. } => "failed",
            InvestigationState::TimedOut => "timed_out",
            InvestigationState::Cancelled => "cancelled",
        }
    }

    pub fn is_terminal(&self) -> bool {
        !matches!(
            self,
            InvestigationState::Pending | InvestigationState::Running
        )
    }

    /// Whether `self → next` is a legal step of the lifecycle.
    pub fn can_become(&self, next: &InvestigationState) -> bool {
        use InvestigationState::*;
        matches!(
            (self, next),
            (Pending, Running | Cancelled | Failed { .. })
                | (Running, Succeeded | Failed { .. } | TimedOut | Cancelled)
        )
    }
}

/// The names accepted by `?state=` filters.
pub const STATE_NAMES: [&str; 6] = [
    "pending",
    "running",
    "succeeded",
    "failed",
    "timed_out",
    "cancelled",
];

/// A state name from a query string, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateName(pub &'static str);

impl FromStr for StateName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        STATE_NAMES
            .iter()
            .find(|n| **n == s)
            .map(|n| StateName(n))
            .ok_or_else(|| {
                format!(
                    "unknown state {s:?}; expected one of {}",
                    STATE_NAMES.join(", ")
                )
            })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("investigation cannot go from {from} to {to}")]
pub struct StateError {
    pub from: &'static str,
    pub to: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Investigation {
    pub id: InvestigationId,
    pub incident_id: IncidentId,
    pub phase: TrustPhase,
    pub plan: Plan,
    pub state: InvestigationState,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Runtime-specific handle to find the job again after a restart
    /// (`pid:starttime` locally, the Job name in Kubernetes).
    pub job_ref: Option<String>,
    /// The accessor of its secrets identity (never the credential), kept so
    /// that the identity is revoked even after a control-plane restart.
    #[serde(default)]
    pub identity_accessor: Option<String>,
}

impl Investigation {
    pub fn new(incident_id: IncidentId, phase: TrustPhase, plan: Plan, now: DateTime<Utc>) -> Self {
        Investigation {
            id: InvestigationId::generate(),
            incident_id,
            phase,
            plan,
            state: InvestigationState::Pending,
            created_at: now,
            started_at: None,
            finished_at: None,
            job_ref: None,
            identity_accessor: None,
        }
    }

    pub fn transition(
        &mut self,
        next: InvestigationState,
        now: DateTime<Utc>,
    ) -> Result<(), StateError> {
        if !self.state.can_become(&next) {
            return Err(StateError {
                from: self.state.name(),
                to: next.name(),
            });
        }
        if next == InvestigationState::Running {
            self.started_at = Some(now);
        }
        if next.is_terminal() {
            self.finished_at = Some(now);
        }
        self.state = next;
        Ok(())
    }

    /// Back from running to pending, for a job that never received its
    /// input (see `ports::Adoption::Restart`): it will be started afresh,
    /// with a new job, credential and identity.
    pub fn requeue(&mut self) -> Result<(), StateError> {
        if self.state != InvestigationState::Running {
            return Err(StateError {
                from: self.state.name(),
                to: InvestigationState::Pending.name(),
            });
        }
        self.state = InvestigationState::Pending;
        self.started_at = None;
        self.job_ref = None;
        self.identity_accessor = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_sort_by_time() {
        let a = InvestigationId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = InvestigationId::generate();
        assert!(InvestigationId::parse(a.as_str()).is_ok());
        assert!(a < b);
    }

    #[test]
    fn only_a_running_investigation_is_requeued_and_it_forgets_its_job() {
        let domains = std::collections::BTreeSet::from([crate::Domain::new("application")]);
        let plan = crate::Planner::new(crate::PlannerConfig::default()).plan(&domains, 1);
        let mut inv = Investigation::new(
            IncidentId::generate(),
            crate::TrustPhase::Shadow,
            plan,
            Utc::now(),
        );
        assert!(inv.requeue().is_err(), "pending");
        inv.transition(InvestigationState::Running, Utc::now())
            .unwrap();
        inv.job_ref = Some("job/ns/warden-x/uid".into());
        inv.identity_accessor = Some("acc".into());
        inv.requeue().unwrap();
        assert_eq!(inv.state, InvestigationState::Pending);
        assert_eq!((inv.started_at, inv.job_ref.as_deref()), (None, None));
        assert!(inv.identity_accessor.is_none());
        inv.transition(InvestigationState::Running, Utc::now())
            .unwrap();
        inv.transition(InvestigationState::Cancelled, Utc::now())
            .unwrap();
        assert!(inv.requeue().is_err(), "terminal");
    }

    #[test]
    fn ids_with_path_characters_are_refused() {
        assert!(InvestigationId::parse("inv-../../etc/passwd").is_err());
        assert!(InvestigationId::parse("inv-01ARZ3NDEKTSV4RRFFQ69G5FAV").is_err());
        assert!(InvestigationId::parse("").is_err());
    }

    #[test]
    fn terminal_states_never_change() {
        use InvestigationState::*;
        for terminal in [Succeeded, TimedOut, Cancelled] {
            for next in [Pending, Running, Succeeded, TimedOut, Cancelled] {
                assert!(!terminal.can_become(&next), "{terminal:?} -> {next:?}");
            }
        }
        assert!(Pending.can_become(&Running));
        assert!(Running.can_become(&TimedOut));
        assert!(!Pending.can_become(&Succeeded));
    }
}
