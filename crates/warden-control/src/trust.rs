//! The trust service: where reports meet the action gate, operators give
//! verdicts and approvals, approved actions run, and outcomes move the
//! environment's phase.
//!
//! ```text
//! report ──▶ gate (Cedar) ──▶ action: pending_approval | approved (autonomous) | denied | escalated
//!                                   │ approve (approver+, within the TTL)
//!                                   ▼
//!                              approved ──▶ executing ──▶ verify alerts ──▶ succeeded | failed
//!                                   │ approval older than its TTL          (rolled_back: reported later)
//!                                   ▼
//!                                expired (never runs)
//! outcome recorded ──▶ demotion check ──▶ phase for the NEXT investigation
//! ```
//! Every decision is written to the audit log before it takes effect: an
//! action whose approval cannot be audited does not run.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use warden_audit::{AuditEvent, AuditKind, AuditLog};
use warden_core::ports::{Store, StoreError};
use warden_core::{AlertStatus, Investigation, Report, TrustPhase};
use warden_policy::{
    ActionGate, ActionRequest, ActionSpec, Decision, NamespacesPolicy, PolicySource,
};
use warden_trust::outcome::diagnosis_edit_size;
use warden_trust::{
    ActionRecord, ActionState, Authenticator, ExecutionError, ExecutionRequest, Operator, Outcome,
    OutcomeRecord, PhaseState, RemediationExecutor, RemediationResult, Role, TrustStatus,
    TrustStore, VerdictKind, evaluate_demotion, score_root_cause,
};

use crate::config::Config;
use crate::metrics::{EnvironmentLabels, Metrics};

/// What the composition root hands the control plane for trust.
pub struct TrustWiring {
    pub store: Arc<dyn TrustStore>,
    pub audit: Arc<AuditLog>,
    /// Runs approved actions; `None` leaves approvals unexecuted (they expire).
    pub executor: Option<Arc<dyn RemediationExecutor>>,
    pub authenticator: Authenticator,
}

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    /// A proposal or approval outlived its TTL; nothing ran.
    #[error("{0}")]
    Expired(String),
    #[error("{0}")]
    Unavailable(String),
    /// Logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for TrustError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(w) => TrustError::NotFound(format!("{w} not found")),
            StoreError::Conflict(w) => TrustError::Conflict(w),
            other => TrustError::Internal(other.to_string()),
        }
    }
}

impl From<warden_trust::AuthError> for TrustError {
    fn from(e: warden_trust::AuthError) -> Self {
        match e {
            warden_trust::AuthError::Unauthenticated(m) => TrustError::Unauthenticated(m),
            warden_trust::AuthError::Forbidden(m) => TrustError::Forbidden(m),
        }
    }
}

/// A verdict on an investigation's diagnosis.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerdictInput {
    pub verdict: VerdictKind,
    /// For `modify`: the operator's root cause.
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub statement: Option<String>,
}

pub struct TrustService {
    config: Config,
    store: Arc<dyn TrustStore>,
    core: Arc<dyn Store>,
    audit: Arc<AuditLog>,
    gate: ActionGate,
    executor: Option<Arc<dyn RemediationExecutor>>,
    auth: Authenticator,
    metrics: Arc<Metrics>,
    /// How often verification re-reads the incident's alerts.
    verify_poll: Duration,
}

fn phase_value(p: TrustPhase) -> i64 {
    match p {
        TrustPhase::Shadow => 0,
        TrustPhase::Assist => 1,
        TrustPhase::Remediate => 2,
        TrustPhase::Autonomous => 3,
    }
}

fn action_id() -> String {
    format!("act-{}", ulid::Ulid::new().to_string().to_ascii_lowercase())
}

/// Report vocabulary to action kinds (`scale` is `scale_deployment`).
fn canonical_kind(kind: &str) -> &str {
    match kind.trim() {
        "scale" => "scale_deployment",
        "rollback" => "rollback_deployment",
        "restart" => "restart_pod",
        other => other,
    }
}

fn ttl(seconds: u64) -> chrono::Duration {
    chrono::Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX / 1000))
}

impl TrustService {
    /// Builds the gate from the configuration and seeds (or adopts) the
    /// environment's persisted phase.
    pub async fn start(
        config: Config,
        core: Arc<dyn Store>,
        wiring: TrustWiring,
        metrics: Arc<Metrics>,
    ) -> Result<TrustService, TrustError> {
        let extra =
            PolicySource::from_config(config.policy.directory.as_deref(), &config.policy.inline)
                .map_err(|e| TrustError::BadRequest(e.to_string()))?;
        let gate = ActionGate::new(
            &config.phases,
            &NamespacesPolicy {
                protected: config.namespaces.protected.clone(),
                targets: config.namespaces.targets.clone(),
            },
            &extra,
        )
        .map_err(|e| TrustError::BadRequest(e.to_string()))?;
        let service = TrustService {
            config,
            store: wiring.store,
            core,
            audit: wiring.audit,
            gate,
            executor: wiring.executor,
            auth: wiring.authenticator,
            metrics,
            verify_poll: Duration::from_millis(250),
        };
        service.seed().await?;
        Ok(service)
    }

    pub fn environment(&self) -> &str {
        &self.config.trust.environment
    }

    fn configured_phase(&self, environment: &str) -> Option<TrustPhase> {
        self.config
            .environments
            .iter()
            .find(|e| e.name == environment)
            .map(|e| e.phase)
    }

    async fn seed(&self) -> Result<(), TrustError> {
        let env = self.environment().to_string();
        let configured = self.configured_phase(&env).ok_or_else(|| {
            TrustError::BadRequest(format!("trust.environment {env:?} is not declared"))
        })?;
        let now = Utc::now();
        let (state, changed) = match self.store.phase_state(&env).await? {
            None => (
                PhaseState {
                    environment: env.clone(),
                    phase: configured,
                    since: now,
                    reason: format!("seeded from environments[{env}].phase"),
                    configured_phase: configured,
                },
                true,
            ),
            Some(s) if s.configured_phase != configured => (
                PhaseState {
                    environment: env.clone(),
                    phase: configured,
                    since: now,
                    reason: format!(
                        "environments[{env}].phase changed from {} to {configured} in the configuration",
                        s.configured_phase
                    ),
                    configured_phase: configured,
                },
                true,
            ),
            Some(s) => (s, false),
        };
        if changed {
            self.audit(
                AuditEvent::new(AuditKind::PhaseChange, "warden", &env)
                    .detail(json!({ "to": state.phase, "reason": state.reason })),
            )
            .await?;
            self.store.set_phase_state(&state).await?;
        }
        self.set_gauge(&env, state.phase);
        Ok(())
    }

    fn set_gauge(&self, env: &str, phase: TrustPhase) {
        self.metrics
            .trust_phase
            .get_or_create(&EnvironmentLabels {
                environment: env.to_string(),
            })
            .set(phase_value(phase));
    }

    async fn audit(&self, event: AuditEvent) -> Result<(), TrustError> {
        let log = Arc::clone(&self.audit);
        tokio::task::spawn_blocking(move || log.append(event))
            .await
            .map_err(|e| TrustError::Internal(format!("audit task: {e}")))?
            .map_err(|e| TrustError::Internal(format!("audit log: {e}")))?;
        Ok(())
    }

    /// The phase a new investigation runs in, from the persisted state.
    pub async fn current_phase(&self) -> Result<TrustPhase, TrustError> {
        let env = self.environment();
        match self.store.phase_state(env).await? {
            Some(s) => Ok(s.phase),
            None => self
                .configured_phase(env)
                .ok_or_else(|| TrustError::Internal(format!("environment {env} vanished"))),
        }
    }

    /// Who presents `credential`. The agent's own result credential is
    /// recognised and refused with 403: the agent can never act as an
    /// operator.
    pub async fn authenticate(
        &self,
        credential: &secrecy::SecretString,
    ) -> Result<Operator, TrustError> {
        match self.auth.authenticate(credential) {
            Ok(op) => Ok(op),
            Err(warden_trust::AuthError::Unauthenticated(m)) => {
                use secrecy::ExposeSecret;
                let hash = warden_trust::auth::sha256(credential.expose_secret());
                if self.store.is_agent_credential(hash).await? {
                    Err(TrustError::Forbidden(
                        "this is an investigation's own credential; the agent can never act as an operator".into(),
                    ))
                } else {
                    Err(TrustError::Unauthenticated(m))
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Every proposal of a delivered report goes through the gate and
    /// becomes an action record.
    pub async fn on_report(
        self: &Arc<Self>,
        inv: &Investigation,
        report: &Report,
    ) -> Result<Vec<ActionRecord>, TrustError> {
        let env = self.environment().to_string();
        let default_ns = self
            .config
            .namespaces
            .targets
            .first()
            .cloned()
            .unwrap_or_else(|| "default".into());
        let mut out = Vec::new();
        for proposal in &report.remediation {
            let (namespace, target) = match proposal.target.split_once('/') {
                Some((ns, name)) => (ns.to_string(), name.to_string()),
                None => (default_ns.clone(), proposal.target.clone()),
            };
            let spec = ActionSpec::raw(canonical_kind(&proposal.action), namespace, target);
            let request = ActionRequest {
                investigation: inv.id.to_string(),
                phase: inv.phase,
                environment: env.clone(),
                confidence: report.confidence,
                action: spec.clone(),
                requested_by: "agent".into(),
            };
            let record = self.gate.decide_action(&request);
            let now = Utc::now();
            let (state, detail) = match &record.decision {
                Decision::Allowed => (ActionState::Approved, None),
                Decision::NeedsApproval => (ActionState::PendingApproval, None),
                Decision::Denied { reasons } => (ActionState::Denied, Some(reasons.join("; "))),
                Decision::Escalated { reason } => (ActionState::Escalated, Some(reason.clone())),
            };
            let ttl = ttl(self.config.trust.approvals.ttl_seconds);
            let action = ActionRecord {
                id: action_id(),
                investigation: inv.id.to_string(),
                incident: inv.incident_id.to_string(),
                environment: env.clone(),
                phase: inv.phase,
                kind: spec.kind.clone(),
                namespace: spec.namespace.clone(),
                target: spec.target.clone(),
                replicas: spec.replicas,
                confidence: report.confidence,
                state,
                decision: serde_json::to_value(&record)
                    .map_err(|e| TrustError::Internal(e.to_string()))?,
                created_at: now,
                updated_at: now,
                expires_at: now + ttl,
                decided_by: (state == ActionState::Approved).then(|| "policy".to_string()),
                decided_at: (state == ActionState::Approved).then_some(now),
                approval_expires_at: (state == ActionState::Approved).then_some(now + ttl),
                detail,
                execution: None,
            };
            self.audit(
                AuditEvent::new(
                    AuditKind::GateDecision,
                    format!("agent:{}", inv.id),
                    &action.id,
                )
                .investigation(inv.id.to_string())
                .detail(action.decision.clone()),
            )
            .await?;
            self.store.insert_action(&action).await?;
            tracing::info!(investigation = %inv.id, action = %action.id, kind = %action.kind,
                decision = record.decision.as_str(), "proposal gated");
            out.push(action);
        }
        // Autonomous: allowed actions run without a person.
        for a in &out {
            if a.state == ActionState::Approved {
                let me = Arc::clone(self);
                let id = a.id.clone();
                tokio::spawn(async move {
                    if let Err(e) = me.execute(&id, Utc::now()).await {
                        tracing::warn!(action = %id, error = %e, "autonomous action did not run");
                    }
                });
            }
        }
        Ok(out)
    }

    /// The actions, with every proposal or approval past its TTL marked
    /// expired first, so a list never shows a stale one as waiting.
    pub async fn actions(
        &self,
        investigation: Option<&str>,
    ) -> Result<Vec<ActionRecord>, TrustError> {
        let now = Utc::now();
        for a in self.store.list_actions(investigation).await? {
            let stale = match a.state {
                ActionState::PendingApproval => now > a.expires_at,
                ActionState::Approved => a.approval_expires_at.is_none_or(|t| now > t),
                _ => false,
            };
            if stale {
                let why = format!(
                    "not acted on within {} s",
                    self.config.trust.approvals.ttl_seconds
                );
                // A concurrent change wins; the list shows whatever it left.
                if let Err(e) = self.expire(&a, now, why).await {
                    tracing::debug!(action = %a.id, error = %e, "expiring a stale action");
                }
            }
        }
        Ok(self.store.list_actions(investigation).await?)
    }

    pub async fn action(&self, id: &str) -> Result<ActionRecord, TrustError> {
        Ok(self.store.get_action(id).await?)
    }

    async fn transition(&self, next: &ActionRecord, from: ActionState) -> Result<(), TrustError> {
        if self.store.update_action(next, from).await? {
            Ok(())
        } else {
            let now = self.store.get_action(&next.id).await?;
            Err(TrustError::Conflict(format!(
                "action {} is {}, not {}",
                next.id,
                now.state.as_str(),
                from.as_str()
            )))
        }
    }

    async fn expire(
        &self,
        action: &ActionRecord,
        now: DateTime<Utc>,
        why: String,
    ) -> Result<(), TrustError> {
        let mut next = action.clone();
        next.state = ActionState::Expired;
        next.updated_at = now;
        next.detail = Some(why.clone());
        self.transition(&next, action.state).await?;
        self.audit(
            AuditEvent::new(AuditKind::Execution, "warden", &action.id)
                .investigation(action.investigation.clone())
                .detail(json!({ "result": "expired", "why": why })),
        )
        .await
    }

    /// The action `id` if `op` may decide it and it still awaits a decision.
    async fn pending(
        &self,
        op: &Operator,
        id: &str,
        verb: &str,
    ) -> Result<ActionRecord, TrustError> {
        op.require(Role::Approver)?;
        let action = self.store.get_action(id).await?;
        if action.state != ActionState::PendingApproval {
            return Err(TrustError::Conflict(format!(
                "action {id} is {}; only a pending_approval action can be {verb}",
                action.state.as_str()
            )));
        }
        Ok(action)
    }

    /// Stores an operator's decision on a pending action and records it as
    /// an approval outcome.
    async fn decided(
        &self,
        op: &Operator,
        next: &ActionRecord,
        now: DateTime<Utc>,
        approved: bool,
    ) -> Result<(), TrustError> {
        self.transition(next, ActionState::PendingApproval).await?;
        self.record(
            OutcomeRecord::new(
                self.environment(),
                &op.subject,
                now,
                Outcome::ApprovalDecision { approved },
            )
            .investigation(&next.investigation)
            .action(&next.id),
        )
        .await
    }

    /// An operator (approver or above) approves a pending action. The
    /// approval is audited before it is stored; execution is separate.
    pub async fn approve(
        &self,
        op: &Operator,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<ActionRecord, TrustError> {
        let action = self.pending(op, id, "approved").await?;
        if now > action.expires_at {
            let why = format!(
                "the proposal expired at {} before it was approved",
                action.expires_at.to_rfc3339()
            );
            self.expire(&action, now, why.clone()).await?;
            return Err(TrustError::Expired(format!(
                "action {id}: {why}; nothing runs"
            )));
        }
        let mut next = action.clone();
        next.state = ActionState::Approved;
        next.decided_by = Some(op.subject.clone());
        next.decided_at = Some(now);
        next.approval_expires_at = Some(now + ttl(self.config.trust.approvals.ttl_seconds));
        next.updated_at = now;
        self.audit(
            AuditEvent::new(AuditKind::Approval, format!("operator:{}", op.subject), id)
                .investigation(action.investigation.clone())
                .detail(json!({
                    "role": op.role, "method": op.method,
                    "action": { "kind": action.kind, "namespace": action.namespace, "target": action.target, "replicas": action.replicas },
                    "approval_expires_at": next.approval_expires_at,
                })),
        )
        .await?;
        self.decided(op, &next, now, true).await?;
        Ok(next)
    }

    /// An operator (approver or above) denies a pending action; it never runs.
    pub async fn deny(
        &self,
        op: &Operator,
        id: &str,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<ActionRecord, TrustError> {
        let action = self.pending(op, id, "denied").await?;
        let mut next = action.clone();
        next.state = ActionState::Denied;
        next.decided_by = Some(op.subject.clone());
        next.decided_at = Some(now);
        next.updated_at = now;
        next.detail = Some(
            reason
                .clone()
                .unwrap_or_else(|| format!("denied by {}", op.subject)),
        );
        self.audit(
            AuditEvent::new(AuditKind::Denial, format!("operator:{}", op.subject), id)
                .investigation(action.investigation.clone())
                .detail(json!({ "role": op.role, "reason": reason })),
        )
        .await?;
        self.decided(op, &next, now, false).await?;
        Ok(next)
    }

    /// Runs an approved action whose approval is still valid at `now`,
    /// verifies it against the incident's alerts and records the result.
    pub async fn execute(&self, id: &str, now: DateTime<Utc>) -> Result<ActionRecord, TrustError> {
        let action = self.store.get_action(id).await?;
        if action.state != ActionState::Approved {
            return Err(TrustError::Conflict(format!(
                "action {id} is {}; only an approved action runs",
                action.state.as_str()
            )));
        }
        match action.approval_expires_at {
            Some(until) if now <= until => {}
            other => {
                let why = match other {
                    Some(until) => format!("the approval expired at {}", until.to_rfc3339()),
                    None => "the action has no approval".to_string(),
                };
                self.expire(&action, now, why.clone()).await?;
                return Err(TrustError::Expired(format!(
                    "action {id}: {why}; it did not run"
                )));
            }
        }
        let Some(executor) = self.executor.clone() else {
            return Err(TrustError::Unavailable(
                "no remediation executor is configured (runtime.kind kubernetes)".into(),
            ));
        };
        let Some(proposed) = action.proposed() else {
            return Err(TrustError::Conflict(format!(
                "action {id} has no known kind"
            )));
        };
        let mut running = action.clone();
        running.state = ActionState::Executing;
        running.updated_at = Utc::now();
        self.audit(
            AuditEvent::new(AuditKind::Execution, "warden", id)
                .investigation(action.investigation.clone())
                .detail(json!({ "stage": "started", "approved_by": action.decided_by, "action": proposed })),
        )
        .await?;
        self.transition(&running, ActionState::Approved).await?;
        let request = ExecutionRequest {
            action_id: id.to_string(),
            investigation: action.investigation.clone(),
            phase: action.phase,
            action: proposed,
        };
        let executed = executor.execute(&request).await;
        let (result, detail, record) = match executed {
            Ok(report) if report.applied => {
                let verified = self.verify(&action.incident).await?;
                let result = if verified {
                    RemediationResult::Success
                } else {
                    RemediationResult::Failure
                };
                let detail = if verified {
                    format!("{}; the incident's alerts resolved", report.detail)
                } else {
                    format!(
                        "{}; the incident's alerts still fire {} s after the action",
                        report.detail, self.config.trust.remediation.verify_window_seconds
                    )
                };
                (Some(result), detail, Some(report.record))
            }
            Ok(report) => (
                Some(RemediationResult::Failure),
                report.detail,
                Some(report.record),
            ),
            // Refused before anything ran: not a remediation outcome.
            Err(ExecutionError::Refused(why)) => (None, format!("refused: {why}"), None),
            Err(e) => (Some(RemediationResult::Failure), e.to_string(), None),
        };
        let mut done = running.clone();
        done.state = match result {
            Some(RemediationResult::Success) => ActionState::Succeeded,
            Some(RemediationResult::RolledBack) => ActionState::RolledBack,
            _ => ActionState::Failed,
        };
        done.updated_at = Utc::now();
        done.detail = Some(detail.clone());
        done.execution = record.clone();
        self.audit(
            AuditEvent::new(AuditKind::Execution, "warden", id)
                .investigation(action.investigation.clone())
                .detail(json!({
                    "stage": "finished",
                    "result": result.map(RemediationResult::as_str),
                    "detail": detail,
                    "record": record,
                })),
        )
        .await?;
        self.transition(&done, ActionState::Executing).await?;
        if let Some(result) = result {
            self.record(
                OutcomeRecord::new(
                    self.environment(),
                    "warden",
                    Utc::now(),
                    Outcome::Remediation { result },
                )
                .investigation(&action.investigation)
                .action(id),
            )
            .await?;
        }
        Ok(done)
    }

    /// Whether every alert of the incident resolves within the window.
    async fn verify(&self, incident: &str) -> Result<bool, TrustError> {
        let window = Duration::from_secs(self.config.trust.remediation.verify_window_seconds);
        let started = std::time::Instant::now();
        let id = warden_core::IncidentId(incident.to_string());
        loop {
            let inc = self.core.get_incident(&id).await?;
            if !inc.alerts.is_empty()
                && inc.alerts.iter().all(|a| a.status == AlertStatus::Resolved)
            {
                return Ok(true);
            }
            if started.elapsed() >= window {
                return Ok(false);
            }
            tokio::time::sleep(self.verify_poll).await;
        }
    }

    /// An operator reports that an executed action was rolled back.
    pub async fn report_rollback(
        &self,
        op: &Operator,
        id: &str,
        detail: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<ActionRecord, TrustError> {
        op.require(Role::Approver)?;
        let action = self.store.get_action(id).await?;
        if !matches!(action.state, ActionState::Succeeded | ActionState::Failed) {
            return Err(TrustError::Conflict(format!(
                "action {id} is {}; only an executed action can be rolled back",
                action.state.as_str()
            )));
        }
        let mut next = action.clone();
        next.state = ActionState::RolledBack;
        next.updated_at = now;
        next.detail = Some(
            detail
                .clone()
                .unwrap_or_else(|| format!("rolled back, reported by {}", op.subject)),
        );
        self.audit(
            AuditEvent::new(AuditKind::Execution, format!("operator:{}", op.subject), id)
                .investigation(action.investigation.clone())
                .detail(json!({ "result": "rolled_back", "detail": detail })),
        )
        .await?;
        self.transition(&next, action.state).await?;
        self.record(
            OutcomeRecord::new(
                self.environment(),
                &op.subject,
                now,
                Outcome::Remediation {
                    result: RemediationResult::RolledBack,
                },
            )
            .investigation(&action.investigation)
            .action(id),
        )
        .await?;
        Ok(next)
    }

    /// An operator's verdict (responder or above) on a diagnosis.
    pub async fn verdict(
        &self,
        op: &Operator,
        investigation: &warden_core::InvestigationId,
        input: &VerdictInput,
    ) -> Result<OutcomeRecord, TrustError> {
        op.require(Role::Responder)?;
        let report = self.report_to(investigation, "judge").await?;
        let (old_subject, old_statement) = report
            .root_cause
            .as_ref()
            .map(|r| (r.subject.as_str(), r.statement.as_str()))
            .unwrap_or(("", ""));
        let edit_size = match input.verdict {
            VerdictKind::Accept => 0.0,
            VerdictKind::Reject => 1.0,
            VerdictKind::Modify => {
                let (Some(subject), Some(statement)) = (&input.subject, &input.statement) else {
                    return Err(TrustError::BadRequest(
                        "a modify verdict needs the corrected subject and statement".into(),
                    ));
                };
                diagnosis_edit_size(old_subject, old_statement, subject, statement)
            }
        };
        let outcome = OutcomeRecord::new(
            self.environment(),
            &op.subject,
            Utc::now(),
            Outcome::Verdict {
                verdict: input.verdict,
                edit_size,
            },
        )
        .investigation(investigation.as_str());
        let detail = json!({
            "verdict": input.verdict, "edit_size": edit_size,
            "subject": input.subject, "statement": input.statement,
        });
        self.record_judgement(op, investigation, detail, outcome)
            .await
    }

    /// Scores a stored (shadow) report against the root cause found
    /// afterwards (responder or above).
    pub async fn review(
        &self,
        op: &Operator,
        investigation: &warden_core::InvestigationId,
        known_root_cause: &str,
    ) -> Result<OutcomeRecord, TrustError> {
        op.require(Role::Responder)?;
        if known_root_cause.trim().is_empty() {
            return Err(TrustError::BadRequest(
                "known_root_cause must not be empty".into(),
            ));
        }
        let report = self.report_to(investigation, "score").await?;
        let result = score_root_cause(report.root_cause.as_ref(), known_root_cause);
        let outcome = OutcomeRecord::new(
            self.environment(),
            &op.subject,
            Utc::now(),
            Outcome::ShadowReview { result },
        )
        .investigation(investigation.as_str());
        let detail = json!({
            "review": result, "known_root_cause": known_root_cause,
            "reported": report.root_cause.as_ref().map(|r| &r.subject),
        });
        self.record_judgement(op, investigation, detail, outcome)
            .await
    }

    /// The report an operator judges or scores; none yet is a conflict.
    async fn report_to(
        &self,
        investigation: &warden_core::InvestigationId,
        purpose: &str,
    ) -> Result<warden_core::Report, TrustError> {
        self.core
            .get_report(investigation)
            .await
            .map_err(|e| match e {
                StoreError::NotFound(_) => TrustError::Conflict(format!(
                    "investigation {investigation} has no report to {purpose}"
                )),
                other => other.into(),
            })
    }

    /// Audits an operator's judgement of a diagnosis, then records its
    /// outcome (audit first: an outcome never exists without its entry).
    async fn record_judgement(
        &self,
        op: &Operator,
        investigation: &warden_core::InvestigationId,
        detail: serde_json::Value,
        outcome: OutcomeRecord,
    ) -> Result<OutcomeRecord, TrustError> {
        self.audit(
            AuditEvent::new(
                AuditKind::Verdict,
                format!("operator:{}", op.subject),
                investigation.as_str(),
            )
            .investigation(investigation.to_string())
            .detail(detail),
        )
        .await?;
        self.record(outcome.clone()).await?;
        Ok(outcome)
    }

    /// A sign-off for promoting this environment to `to_phase`, in one of
    /// the sign-off roles the operator holds.
    pub async fn sign_off(
        &self,
        op: &Operator,
        to_phase: TrustPhase,
        role: &str,
    ) -> Result<warden_trust::Signoff, TrustError> {
        if !op.signoff_roles.iter().any(|r| r == role) {
            return Err(TrustError::Forbidden(format!(
                "{} does not hold the sign-off role {role:?}",
                op.subject
            )));
        }
        let signoff = warden_trust::Signoff {
            environment: self.environment().to_string(),
            to_phase,
            role: role.to_string(),
            subject: op.subject.clone(),
            at: Utc::now(),
        };
        self.audit(
            AuditEvent::new(
                AuditKind::Approval,
                format!("operator:{}", op.subject),
                format!("promotion:{}:{to_phase}", self.environment()),
            )
            .detail(json!({ "signoff_role": role })),
        )
        .await?;
        self.store.add_signoff(&signoff).await?;
        Ok(signoff)
    }

    /// Records an outcome and applies automatic demotion.
    pub async fn record(&self, outcome: OutcomeRecord) -> Result<(), TrustError> {
        self.store.record_outcome(&outcome).await?;
        self.check_demotion(outcome.at.max(Utc::now())).await
    }

    /// Drops the phase one step when the window is below a floor. Takes
    /// effect for the next investigation (the scheduler reads the phase
    /// when it creates one).
    pub async fn check_demotion(&self, now: DateTime<Utc>) -> Result<(), TrustError> {
        let env = self.environment().to_string();
        let Some(state) = self.store.phase_state(&env).await? else {
            return Ok(());
        };
        let outcomes = self.store.outcomes(&env).await?;
        let Some(d) = evaluate_demotion(
            state.phase,
            &outcomes,
            state.since,
            now,
            &self.config.trust.demotion,
            self.config.trust.gates.assist_to_remediate.minimal_edit_max,
        ) else {
            return Ok(());
        };
        let reason = format!(
            "demoted from {} to {}: {}",
            d.from,
            d.to,
            d.reasons.join("; ")
        );
        self.audit(
            AuditEvent::new(AuditKind::Demotion, "warden", &env).detail(json!({
                "from": d.from, "to": d.to, "reasons": d.reasons, "window": d.window,
            })),
        )
        .await?;
        self.audit(
            AuditEvent::new(AuditKind::PhaseChange, "warden", &env)
                .detail(json!({ "from": d.from, "to": d.to, "reason": reason })),
        )
        .await?;
        self.store
            .set_phase_state(&PhaseState {
                environment: env.clone(),
                phase: d.to,
                since: now,
                reason: reason.clone(),
                configured_phase: state.configured_phase,
            })
            .await?;
        self.metrics
            .trust_demotions
            .get_or_create(&EnvironmentLabels {
                environment: env.clone(),
            })
            .inc();
        self.set_gauge(&env, d.to);
        tracing::warn!(environment = %env, from = %d.from, to = %d.to, %reason, "trust phase demoted");
        Ok(())
    }

    /// The status of every declared environment (or one).
    pub async fn status(&self, environment: Option<&str>) -> Result<Vec<TrustStatus>, TrustError> {
        let mut out = Vec::new();
        for e in &self.config.environments {
            if environment.is_some_and(|want| want != e.name) {
                continue;
            }
            let state = self.store.phase_state(&e.name).await?;
            let outcomes = self.store.outcomes(&e.name).await?;
            let signoffs = self.store.signoffs(&e.name).await?;
            out.push(warden_trust::status(
                &e.name,
                e.phase,
                state.as_ref(),
                &outcomes,
                &signoffs,
                &self.config.trust,
                Utc::now(),
            ));
        }
        if out.is_empty() {
            return Err(TrustError::NotFound(format!(
                "environment {:?} is not declared",
                environment.unwrap_or_default()
            )));
        }
        Ok(out)
    }
}
