//! Shared helpers: settings, job specs with sentinel secrets, a runtime on
//! the fake API server, and event collection.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use secrecy::SecretString;
use serde_json::json;
use tokio::sync::mpsc;
use warden_core::ports::{JobEvent, JobEventKind, JobEvents, JobOutcome, JobSpec};
use warden_core::{
    AgentInput, Complexity, DomainGrant, InvestigationId, JobIdentity, Plan, PlannerConfig,
    SecretsBackend, TrustPhase,
};
use warden_kube_fake::FakeApiServer;
use warden_runtime_kube::{KubeRuntime, KubeRuntimeConfig, KubeSettings};

pub const NS: &str = "warden-investigations";
pub const AUDIENCE: &str = "warden";
pub const CONTROL_PLANE: &str = "http://warden.warden-system.svc:7878";

pub fn settings() -> KubeSettings {
    KubeSettings {
        namespace: NS.into(),
        image: "ghcr.io/warden-dev/warden:0.1.0".into(),
        image_pull_policy: "Always".into(),
        service_accounts: TrustPhase::ALL.map(|p| format!("warden-agent-{p}")),
        token_audience: AUDIENCE.into(),
        ttl_seconds_after_finished: 3600,
        backoff_limit: 2,
        keep_finished_jobs: false,
        control_plane_url: CONTROL_PLANE.into(),
        vault_agent_injector: false,
        run_as_user: 65532,
        image_pull_grace: Duration::from_secs(120),
    }
}

pub fn sa(phase: TrustPhase) -> String {
    format!("warden-agent-{phase}")
}

pub fn plan(complexity: Complexity) -> Plan {
    Plan {
        complexity,
        domains: vec![],
        alert_count: 3,
        profile: PlannerConfig::default().profile(complexity).clone(),
    }
}

pub fn grants() -> Vec<DomainGrant> {
    vec![
        DomainGrant {
            name: "database".into(),
            path: "agent/data/database".into(),
        },
        DomainGrant {
            name: "log-aggregation".into(),
            path: "agent/data/log-aggregation".into(),
        },
    ]
}

/// Secrets a spec carries; none may ever appear in a Job.
pub struct Sentinels {
    pub result_credential: String,
    pub identity_credential: String,
}

/// A spec whose credentials are recognisable sentinels.
pub fn spec(
    phase: TrustPhase,
    complexity: Complexity,
    deadline_in: Duration,
) -> (JobSpec, Sentinels) {
    let id = InvestigationId::generate();
    let now = Utc::now();
    let deadline = now + chrono::Duration::from_std(deadline_in).unwrap();
    let sentinels = Sentinels {
        result_credential: format!("SENTINEL-RESULT-{}", id.as_str()),
        identity_credential: format!("SENTINEL-IDENTITY-{}", id.as_str()),
    };
    let plan = plan(complexity);
    let agent_input: AgentInput = serde_json::from_value(json!({
        "investigation_id": id,
        "phase": phase,
        "plan": plan,
        "deadline": deadline,
        "incident": {
            "id": "inc-01hzzzzzzzzzzzzzzzzzzzzzzz",
            "title": "database connections time out",
            "status": "open",
            "first_event_at": now, "last_event_at": now, "created_at": now,
            "alerts": [], "topology": []
        },
        "data_sources": [],
        "report_url": format!("http://127.0.0.1:7878/api/v1/investigations/{id}/report"),
    }))
    .unwrap();
    let spec = JobSpec {
        investigation_id: id,
        phase,
        plan,
        deadline,
        agent_input,
        result_credential: SecretString::from(sentinels.result_credential.clone()),
        identity: Some(JobIdentity {
            backend: SecretsBackend::Embedded,
            address: "http://127.0.0.1:7878".into(),
            accessor: "acc-1".into(),
            domains: grants(),
            credential: SecretString::from(sentinels.identity_credential.clone()),
        }),
    };
    (spec, sentinels)
}

pub struct Collector(pub mpsc::UnboundedSender<JobEvent>);

impl JobEvents for Collector {
    fn emit(&self, event: JobEvent) {
        let _ = self.0.send(event);
    }
}

/// A fake API server with the investigations namespace and one
/// ServiceAccount per phase.
pub async fn fake() -> FakeApiServer {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let fake = FakeApiServer::start().await.unwrap();
    fake.ensure_namespace(NS).unwrap();
    for phase in TrustPhase::ALL {
        fake.create(json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": sa(phase), "namespace": NS}
        }))
        .unwrap();
    }
    fake
}

pub struct Harness {
    pub fake: FakeApiServer,
    pub dir: tempfile::TempDir,
    pub runtime: KubeRuntime,
    pub events: mpsc::UnboundedReceiver<JobEvent>,
    pub settings: KubeSettings,
}

impl Harness {
    pub async fn new() -> Self {
        Self::with(|_| {}).await
    }

    pub async fn with(adjust: impl Fn(&mut KubeSettings)) -> Self {
        let fake = fake().await;
        let dir = tempfile::tempdir().unwrap();
        let mut settings = settings();
        adjust(&mut settings);
        let (runtime, events) = runtime_on(&fake, dir.path(), &settings);
        Harness {
            fake,
            dir,
            runtime,
            events,
            settings,
        }
    }

    /// Drops the runtime (a control-plane crash) and builds a new one on
    /// the same data directory; returns the old event receiver.
    pub fn restart(&mut self) -> mpsc::UnboundedReceiver<JobEvent> {
        let (runtime, events) = runtime_on(&self.fake, self.dir.path(), &self.settings);
        drop(std::mem::replace(&mut self.runtime, runtime));
        std::mem::replace(&mut self.events, events)
    }

    pub async fn next_event(&mut self) -> JobEvent {
        next_event(&mut self.events, Duration::from_secs(15)).await
    }

    pub fn log_path(&self, id: &InvestigationId) -> std::path::PathBuf {
        self.dir
            .path()
            .join("jobs")
            .join(id.as_str())
            .join("job.log")
    }
}

pub fn runtime_on(
    fake: &FakeApiServer,
    data_dir: &std::path::Path,
    settings: &KubeSettings,
) -> (KubeRuntime, mpsc::UnboundedReceiver<JobEvent>) {
    runtime_with(fake.client(), data_dir, settings)
}

pub fn runtime_with(
    client: kube::Client,
    data_dir: &std::path::Path,
    settings: &KubeSettings,
) -> (KubeRuntime, mpsc::UnboundedReceiver<JobEvent>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let runtime = KubeRuntime::new(
        client,
        KubeRuntimeConfig::new(settings.clone(), data_dir),
        Arc::new(Collector(tx)),
    )
    .unwrap();
    (runtime, rx)
}

pub async fn next_event(rx: &mut mpsc::UnboundedReceiver<JobEvent>, within: Duration) -> JobEvent {
    tokio::time::timeout(within, rx.recv())
        .await
        .expect("no job event in time")
        .expect("event channel closed")
}

pub async fn assert_quiet(rx: &mut mpsc::UnboundedReceiver<JobEvent>) {
    if let Ok(Some(event)) = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
        panic!("unexpected event: {event:?}");
    }
}

pub fn outcome(event: &JobEvent) -> &JobOutcome {
    let JobEventKind::Finished { outcome, .. } = &event.kind;
    outcome
}

/// Waits until `f` holds, checking every 20 ms, for at most 10 s.
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(
            tokio::time::Instant::now() < until,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A second spec for the same investigation (a restarted control plane's
/// retry), with fresh credentials.
pub fn spec_for(spec: &JobSpec) -> JobSpec {
    JobSpec {
        investigation_id: spec.investigation_id.clone(),
        phase: spec.phase,
        plan: spec.plan.clone(),
        deadline: spec.deadline,
        agent_input: spec.agent_input.clone(),
        result_credential: SecretString::from(format!("SENTINEL-RETRY-{}", spec.investigation_id)),
        identity: None,
    }
}
