//! The scheduler: from a ready incident to a running job, and from a job's
//! end to a recorded outcome.
//!
//! One task owns the queue and the set of running jobs and handles events
//! one at a time, so there is no lock to get wrong. Durable state leads:
//! an investigation is recorded `running` *before* its job is started, so a
//! crash in between leaves a record the next start re-adopts or fails with a
//! reason, and never a second job.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::RngCore;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use warden_core::ports::{
    Adoption, JobEvent, JobEventKind, JobEvents, JobOutcome, JobRuntime, JobSpec, SecretBroker,
    Store, StoreError,
};
use warden_core::{
    AgentInput, Domain, DomainGrant, FailureReason, IncidentId, IncidentStatus, Investigation,
    InvestigationId, InvestigationState, JobIdentity, Planner, Report, SecretsBackend,
};

use crate::config::{Config, SecretsBackendKind};

/// How long issuing an identity may take before the investigation fails.
const ISSUE_TIMEOUT: Duration = Duration::from_secs(10);
use crate::intake::IntakeHandle;
use crate::metrics::{FailureLabels, Metrics, complexity};

pub enum Event {
    IncidentCreated(IncidentId),
    IncidentReady(IncidentId, Instant),
    Job(JobEvent),
    Reported(InvestigationId, Box<Report>),
    Cancel(InvestigationId),
}

pub type EventSender = mpsc::UnboundedSender<Event>;
pub type EventReceiver = mpsc::UnboundedReceiver<Event>;

pub fn channel() -> (EventSender, EventReceiver) {
    mpsc::unbounded_channel()
}

/// Hands a runtime's job events to the scheduler.
pub struct SchedulerEvents(pub EventSender);

impl JobEvents for SchedulerEvents {
    fn emit(&self, event: JobEvent) {
        let _ = self.0.send(Event::Job(event));
    }
}

pub struct Scheduler {
    store: Arc<dyn Store>,
    runtime: Arc<dyn JobRuntime>,
    broker: Option<Arc<dyn SecretBroker>>,
    intake: IntakeHandle,
    metrics: Arc<Metrics>,
    planner: Planner,
    config: Config,
    /// Base URL agents deliver reports to.
    api_base: String,
    events: EventSender,
    queue: VecDeque<(InvestigationId, Instant)>,
    running: HashSet<InvestigationId>,
    /// When wired: the phase of new investigations and the action gate
    /// for delivered reports.
    trust: Option<Arc<crate::trust::TrustService>>,
}

/// The credential and the hash the store keeps of it.
fn new_credential() -> (SecretString, [u8; 32]) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    (SecretString::from(token), hash)
}

pub fn credential_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn deadline_of(inv: &Investigation) -> DateTime<Utc> {
    let start = inv.started_at.unwrap_or(inv.created_at);
    let secs = i64::try_from(inv.plan.profile.deadline_seconds).unwrap_or(i64::MAX / 1000);
    start + chrono::Duration::seconds(secs)
}

/// What the agent builds its read gate from (`docs/policy.md`, "Reads"):
/// the same phases, namespaces and extra policies as the control plane's
/// action gate. The policy directory is read again for each investigation.
fn read_policy(config: &Config) -> Result<warden_core::agent_input::ReadPolicy, String> {
    use warden_core::agent_input::{DataDomain, PolicyText, ReadPolicy};
    let policies = warden_policy::PolicySource::from_config(
        config.policy.directory.as_deref(),
        &config.policy.inline,
    )
    .map_err(|e| format!("could not load the read policies: {e}"))?;
    Ok(ReadPolicy {
        environment: config.trust.environment.clone(),
        phases: config.phases.clone(),
        protected_namespaces: config.namespaces.protected.clone(),
        target_namespaces: config.namespaces.targets.clone(),
        domains: config
            .secrets
            .domains
            .iter()
            .map(|d| DataDomain {
                name: d.name.clone(),
                serves: d.serves.clone(),
                connector: serde_json::to_value(d.connector)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
            })
            .collect(),
        policies: policies
            .into_iter()
            .map(|p| PolicyText {
                origin: p.origin,
                text: p.text,
            })
            .collect(),
    })
}

impl Scheduler {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Store>,
        runtime: Arc<dyn JobRuntime>,
        broker: Option<Arc<dyn SecretBroker>>,
        intake: IntakeHandle,
        metrics: Arc<Metrics>,
        config: Config,
        api_base: String,
        events: EventSender,
    ) -> Self {
        Scheduler {
            store,
            runtime,
            broker,
            intake,
            metrics,
            planner: Planner::new(config.planner.clone()),
            config,
            api_base,
            events,
            queue: VecDeque::new(),
            running: HashSet::new(),
            trust: None,
        }
    }

    /// Re-adopts running jobs, fails the ones that are gone, re-queues the
    /// pending ones and plans incidents that never got an investigation.
    pub fn set_trust(&mut self, trust: Option<Arc<crate::trust::TrustService>>) {
        self.trust = trust;
    }

    /// The phase a new investigation runs in: the environment's persisted
    /// phase (lowered by demotion) when trust is wired, else `agent.phase`.
    async fn phase_for_new_investigation(&self) -> warden_core::TrustPhase {
        match &self.trust {
            Some(t) => match t.current_phase().await {
                Ok(p) => p,
                Err(e) => {
                    // Fail safe: the least privileged phase.
                    tracing::error!(error = %e, "reading the trust phase failed; using shadow");
                    warden_core::TrustPhase::Shadow
                }
            },
            None => self.config.agent.phase,
        }
    }

    pub async fn recover(&mut self) -> Result<(), StoreError> {
        for mut inv in self
            .store
            .list_investigations(Some("running"), u32::MAX)
            .await?
        {
            let deadline = deadline_of(&inv);
            match self
                .runtime
                .adopt(&inv.id, inv.job_ref.as_deref(), deadline)
                .await
            {
                Ok(Adoption::Adopted) => {
                    tracing::info!(investigation = %inv.id, "re-adopted running job");
                    self.running.insert(inv.id.clone());
                }
                Ok(Adoption::Restart) => {
                    // The job never got its input; the old identity is
                    // revoked and the investigation starts afresh, ahead
                    // of the ones that were still waiting.
                    self.revoke_identity(&inv);
                    if let Err(e) = inv.requeue() {
                        tracing::error!(investigation = %inv.id, error = %e, "could not requeue");
                        continue;
                    }
                    self.store.update_investigation(&inv).await?;
                    tracing::warn!(investigation = %inv.id, "job never received its input before the restart; starting it again");
                    self.metrics.restarted.inc();
                    self.queue.push_back((inv.id.clone(), Instant::now()));
                }
                Ok(Adoption::Gone) => {
                    self.fail(
                        &mut inv,
                        FailureReason::LostWhileDown,
                        "the job was no longer running when the control plane restarted and had not delivered a report".into(),
                    )
                    .await;
                    self.clean_up_later(inv.id.clone());
                }
                Err(e) => {
                    self.fail(
                        &mut inv,
                        FailureReason::LostWhileDown,
                        format!("could not re-adopt the job: {e}"),
                    )
                    .await;
                }
            }
        }
        for inv in self
            .store
            .list_investigations(Some("pending"), u32::MAX)
            .await?
        {
            self.queue.push_back((inv.id, Instant::now()));
        }
        for inc in self.store.open_incidents().await? {
            if self
                .store
                .investigation_for_incident(&inc.id)
                .await?
                .is_none()
            {
                let _ = self
                    .events
                    .send(Event::IncidentReady(inc.id, Instant::now()));
            }
        }
        self.update_gauges();
        Ok(())
    }

    pub async fn run(mut self, mut rx: EventReceiver) {
        self.dispatch().await;
        while let Some(event) = rx.recv().await {
            match event {
                Event::IncidentCreated(id) => self.after_group_wait(id),
                Event::IncidentReady(id, ready_at) => {
                    if let Err(e) = self.plan(&id, ready_at).await {
                        tracing::error!(incident = %id, error = %e, "planning failed");
                    }
                }
                Event::Job(ev) => self.job_event(ev).await,
                Event::Reported(id, report) => self.reported(&id, &report).await,
                Event::Cancel(id) => self.cancel(&id).await,
            }
            self.dispatch().await;
        }
    }

    fn after_group_wait(&self, id: IncidentId) {
        let wait = Duration::from_millis(self.config.correlation.group_wait_ms);
        let tx = self.events.clone();
        if wait.is_zero() {
            let _ = tx.send(Event::IncidentReady(id, Instant::now()));
            return;
        }
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let _ = tx.send(Event::IncidentReady(id, Instant::now()));
        });
    }

    async fn plan(&mut self, id: &IncidentId, ready_at: Instant) -> Result<(), StoreError> {
        if self.store.investigation_for_incident(id).await?.is_some() {
            return Ok(());
        }
        // Fix the incident's membership first: after this it is never
        // merged into another.
        if !self.intake.mark_dispatched(id.clone()).await {
            return Ok(()); // merged into another incident meanwhile
        }
        let incident = match self.store.get_incident(id).await {
            Ok(i) => i,
            Err(StoreError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if incident.status != IncidentStatus::Open {
            return Ok(());
        }
        let plan = self
            .planner
            .plan(&incident.domains(), incident.alerts.len());
        let phase = self.phase_for_new_investigation().await;
        let inv = Investigation::new(id.clone(), phase, plan, Utc::now());
        match self.store.insert_investigation(&inv).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Ok(()),
            Err(e) => return Err(e),
        }
        tracing::info!(investigation = %inv.id, incident = %id, complexity = inv.plan.complexity.as_str(),
            alerts = inv.plan.alert_count, "investigation planned");
        self.queue.push_back((inv.id, ready_at));
        Ok(())
    }

    async fn dispatch(&mut self) {
        while self.running.len() < self.config.runtime.max_concurrent {
            let Some((id, ready_at)) = self.queue.pop_front() else {
                break;
            };
            if let Err(e) = self.start(&id, ready_at).await {
                tracing::error!(investigation = %id, error = %e, "could not start investigation");
            }
        }
        self.update_gauges();
    }

    async fn start(&mut self, id: &InvestigationId, ready_at: Instant) -> Result<(), StoreError> {
        let mut inv = self.store.get_investigation(id).await?;
        if inv.state != InvestigationState::Pending {
            return Ok(());
        }
        let incident = self.store.get_incident(&inv.incident_id).await?;
        let now = Utc::now();
        if inv.transition(InvestigationState::Running, now).is_err() {
            return Ok(());
        }
        // Durable intent first (see the module docs).
        self.store.update_investigation(&inv).await?;
        let (credential, hash) = new_credential();
        self.store.set_result_credential(&inv.id, hash).await?;
        let deadline = deadline_of(&inv);
        let reads = match read_policy(&self.config) {
            Ok(reads) => reads,
            Err(detail) => {
                self.metrics
                    .started
                    .get_or_create(&complexity(inv.plan.complexity))
                    .inc();
                self.fail(&mut inv, FailureReason::StartFailed, detail)
                    .await;
                return Ok(());
            }
        };
        let identity = match self.issue_identity(&mut inv, deadline).await {
            Ok(identity) => identity,
            Err(detail) => {
                self.metrics
                    .started
                    .get_or_create(&complexity(inv.plan.complexity))
                    .inc();
                self.fail(&mut inv, FailureReason::CredentialError, detail)
                    .await;
                return Ok(());
            }
        };
        let spec = JobSpec {
            investigation_id: inv.id.clone(),
            phase: inv.phase,
            plan: inv.plan.clone(),
            deadline,
            agent_input: AgentInput {
                investigation_id: inv.id.clone(),
                phase: inv.phase,
                plan: inv.plan.clone(),
                deadline,
                incident,
                data_sources: self.config.agent.data_sources.clone(),
                report_url: format!("{}/api/v1/investigations/{}/report", self.api_base, inv.id),
                llm: self.config.llm_settings(),
                reads: Some(reads),
            },
            result_credential: credential,
            identity,
        };
        match self.runtime.start(spec).await {
            Ok(handle) => {
                self.metrics
                    .dispatch_latency
                    .observe(ready_at.elapsed().as_secs_f64());
                self.metrics
                    .started
                    .get_or_create(&complexity(inv.plan.complexity))
                    .inc();
                inv.job_ref = Some(handle.job_ref);
                self.running.insert(inv.id.clone());
                self.store.update_investigation(&inv).await?;
                tracing::info!(investigation = %inv.id, job = ?inv.job_ref, "job started");
            }
            Err(e) => {
                self.metrics
                    .started
                    .get_or_create(&complexity(inv.plan.complexity))
                    .inc();
                self.fail(&mut inv, FailureReason::StartFailed, e.to_string())
                    .await;
            }
        }
        Ok(())
    }

    /// Issues the investigation's own identity for the domains its phase and
    /// plan allow, recording its accessor before the job can use it.
    async fn issue_identity(
        &self,
        inv: &mut Investigation,
        deadline: DateTime<Utc>,
    ) -> Result<Option<JobIdentity>, String> {
        let Some(broker) = &self.broker else {
            return Ok(None);
        };
        let grants: Vec<DomainGrant> = self
            .config
            .grants(inv.phase, &inv.plan.domains)
            .into_iter()
            .map(|d| DomainGrant {
                name: d.name.clone(),
                path: d.path.clone(),
            })
            .collect();
        let names: Vec<Domain> = grants.iter().map(|g| Domain::new(g.name.clone())).collect();
        // A broker that hangs must not hold the scheduler past a few seconds.
        let issued = tokio::time::timeout(
            ISSUE_TIMEOUT,
            broker.issue(&inv.id, inv.phase, &names, deadline),
        )
        .await
        .map_err(|_| {
            format!(
                "the {} secrets backend did not answer within {ISSUE_TIMEOUT:?}",
                broker.name()
            )
        })?
        .map_err(|e| format!("could not issue the investigation's identity: {e}"))?;
        inv.identity_accessor = Some(issued.accessor.clone());
        if let Err(e) = self.store.update_investigation(inv).await {
            self.revoke_identity(inv);
            return Err(format!("could not record the identity: {e}"));
        }
        tracing::info!(investigation = %inv.id, accessor = %issued.accessor, domains = ?grants.iter().map(|g| &g.name).collect::<Vec<_>>(),
            expires_at = %issued.expires_at, "identity issued");
        let backend = match self.config.secrets.backend {
            SecretsBackendKind::Openbao => SecretsBackend::Openbao,
            _ => SecretsBackend::Embedded,
        };
        let address = match backend {
            SecretsBackend::Openbao => self.config.secrets.openbao.address.clone(),
            SecretsBackend::Embedded => self.api_base.clone(),
        };
        Ok(Some(JobIdentity {
            backend,
            address,
            accessor: issued.accessor,
            domains: grants,
            credential: issued.credential,
        }))
    }

    /// Revokes the investigation's identity (and every lease it created) in
    /// the background; idempotent, so every path to an end may call it.
    fn revoke_identity(&self, inv: &Investigation) {
        let (Some(broker), Some(accessor)) = (&self.broker, inv.identity_accessor.clone()) else {
            return;
        };
        let broker = Arc::clone(broker);
        let id = inv.id.clone();
        tokio::spawn(async move {
            match broker.revoke(&id, Some(&accessor)).await {
                Ok(()) => tracing::info!(investigation = %id, %accessor, "identity revoked"),
                Err(e) => {
                    tracing::error!(investigation = %id, %accessor, error = %e, "revoking the identity failed")
                }
            }
        });
    }

    async fn fail(&mut self, inv: &mut Investigation, reason: FailureReason, detail: String) {
        let state = InvestigationState::Failed { reason, detail };
        self.finish(inv, state).await;
    }

    /// Records a terminal state without a report, with its metrics.
    async fn finish(&mut self, inv: &mut Investigation, state: InvestigationState) {
        let reason = match &state {
            InvestigationState::Failed { reason, .. } => reason.as_str(),
            InvestigationState::TimedOut => "deadline",
            InvestigationState::Cancelled => "cancelled",
            _ => "other",
        };
        if let Err(e) = inv.transition(state, Utc::now()) {
            tracing::warn!(investigation = %inv.id, error = %e, "ignored late state change");
            return;
        }
        if let Err(e) = self.store.update_investigation(inv).await {
            tracing::error!(investigation = %inv.id, error = %e, "could not record the end of an investigation");
            return;
        }
        tracing::info!(investigation = %inv.id, state = inv.state.name(), reason, "investigation ended");
        self.revoke_identity(inv);
        self.metrics
            .failed
            .get_or_create(&FailureLabels {
                complexity: inv.plan.complexity.as_str().to_string(),
                reason: reason.to_string(),
            })
            .inc();
        self.observe_duration(inv);
    }

    fn observe_duration(&self, inv: &Investigation) {
        if let (Some(s), Some(f)) = (inv.started_at, inv.finished_at) {
            let secs = (f - s).num_milliseconds().max(0) as f64 / 1000.0;
            self.metrics
                .duration
                .get_or_create(&complexity(inv.plan.complexity))
                .observe(secs);
        }
    }

    async fn job_event(&mut self, ev: JobEvent) {
        let JobEventKind::Finished {
            outcome,
            cpu_seconds,
            ..
        } = ev.kind;
        let id = ev.investigation_id;
        self.running.remove(&id);
        if let Some(cpu) = cpu_seconds {
            self.metrics.job_cpu_seconds.inc_by(cpu);
        }
        match self.store.get_investigation(&id).await {
            Ok(mut inv) if !inv.state.is_terminal() => {
                let state = match outcome {
                    JobOutcome::Exited { code: 0 } => InvestigationState::Failed {
                        reason: FailureReason::NoReport,
                        detail: "the job exited successfully without delivering a report".into(),
                    },
                    JobOutcome::Exited { code } => InvestigationState::Failed {
                        reason: FailureReason::Crashed,
                        detail: format!(
                            "the job exited with code {code} without delivering a report"
                        ),
                    },
                    JobOutcome::OutOfMemory { detail } => InvestigationState::Failed {
                        reason: FailureReason::OutOfMemory,
                        detail: format!(
                            "killed for exceeding its memory limit of {} bytes: {detail}",
                            inv.plan.profile.memory_bytes
                        ),
                    },
                    JobOutcome::DeadlineExceeded => InvestigationState::TimedOut,
                    JobOutcome::Killed { detail } => InvestigationState::Failed {
                        reason: FailureReason::Killed,
                        detail,
                    },
                    JobOutcome::Cancelled => InvestigationState::Cancelled,
                    JobOutcome::Lost { detail } => InvestigationState::Failed {
                        reason: FailureReason::LostWhileDown,
                        detail,
                    },
                };
                self.finish(&mut inv, state).await;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(investigation = %id, error = %e, "job ended for an unknown investigation")
            }
        }
        self.clean_up_later(id);
    }

    fn clean_up_later(&self, id: InvestigationId) {
        let runtime = Arc::clone(&self.runtime);
        let keep = Duration::from_secs(self.config.runtime.keep_work_dir_seconds);
        tokio::spawn(async move {
            if !keep.is_zero() {
                tokio::time::sleep(keep).await;
            }
            if let Err(e) = runtime.cleanup(&id).await {
                tracing::warn!(investigation = %id, error = %e, "cleaning up the job's working directory failed");
            }
        });
    }

    async fn reported(&mut self, id: &InvestigationId, report: &Report) {
        let Ok(inv) = self.store.get_investigation(id).await else {
            return;
        };
        // The job has what it needed; its identity ends with its report.
        self.revoke_identity(&inv);
        let labels = complexity(inv.plan.complexity);
        self.metrics.completed.get_or_create(&labels).inc();
        self.metrics
            .cycles
            .get_or_create(&labels)
            .observe(f64::from(report.cycles));
        if report.circuit_breaker_tripped {
            self.metrics.breaker_trips.get_or_create(&labels).inc();
        }
        self.metrics
            .llm_input_tokens
            .inc_by(report.cost.llm_input_tokens);
        self.metrics.observe_report(report);
        self.observe_duration(&inv);
        if let Some(trust) = &self.trust {
            // Gate the proposals off the scheduler's task.
            let trust = Arc::clone(trust);
            let report = report.clone();
            tokio::spawn(async move {
                if let Err(e) = trust.on_report(&inv, &report).await {
                    tracing::error!(investigation = %inv.id, error = %e, "gating the report's proposals failed");
                }
            });
        }
    }

    async fn cancel(&mut self, id: &InvestigationId) {
        if let Some(pos) = self.queue.iter().position(|(q, _)| q == id) {
            self.queue.remove(pos);
            if let Ok(mut inv) = self.store.get_investigation(id).await {
                self.finish(&mut inv, InvestigationState::Cancelled).await;
            }
        } else if self.running.contains(id)
            && let Err(e) = self.runtime.cancel(id).await
        {
            tracing::warn!(investigation = %id, error = %e, "cancel failed");
        }
    }

    fn update_gauges(&self) {
        self.metrics.jobs_running.set(self.running.len() as i64);
        self.metrics.jobs_queued.set(self.queue.len() as i64);
    }
}

#[cfg(test)]
mod read_policy_tests {
    use super::*;

    #[test]
    fn the_demo_read_policy_is_what_the_built_in_configuration_writes() {
        assert_eq!(
            read_policy(&Config::default()).unwrap(),
            warden_demo::read_policy()
        );
    }

    #[test]
    fn the_read_policy_carries_the_gate_configuration_and_the_policy_texts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.cedar"),
            "@id(\"from-file\") forbid (principal, action == Action::\"read\", resource) when { false };",
        )
        .unwrap();
        let mut config = Config::default();
        config.policy.directory = Some(dir.path().to_path_buf());
        config.policy.inline =
            vec!["@id(\"inline\") forbid (principal, action, resource) when { false };".into()];
        let reads = read_policy(&config).unwrap();
        assert_eq!(reads.environment, config.trust.environment);
        assert_eq!(reads.phases, config.phases);
        assert_eq!(reads.protected_namespaces, config.namespaces.protected);
        assert_eq!(reads.target_namespaces, config.namespaces.targets);
        let logs = reads
            .domains
            .iter()
            .find(|d| d.name == "log-aggregation")
            .unwrap();
        assert_eq!(logs.connector, "loki");
        assert_eq!(logs.serves, ["*"]);
        let origins: Vec<&str> = reads.policies.iter().map(|p| p.origin.as_str()).collect();
        assert_eq!(origins.len(), 2);
        assert!(origins[0].ends_with("a.cedar"), "{origins:?}");
        assert_eq!(origins[1], "policy.inline[0]");

        config.policy.directory = Some(dir.path().join("missing"));
        let err = read_policy(&config).unwrap_err();
        assert!(err.contains("could not load the read policies"), "{err}");
    }
}
