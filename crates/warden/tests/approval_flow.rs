#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The approval flow end to end through the API: a real control plane in
//! process, the fake Kubernetes API server holding the Deployments, and a
//! stand-in kubelet that runs each remediation Job's code with the Job's
//! own service-account token (so the fake's RBAC decides what it may do).
//! The investigation job itself is played by the test: it captures the job
//! spec (with its one-time credential) and delivers the report.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use warden_audit::AuditLog;
use warden_control::config::Config;
use warden_control::trust::TrustWiring;
use warden_control::{ControlPlane, SchedulerEvents};
use warden_core::ports::{Adoption, JobHandle, JobRuntime, JobSpec, RuntimeError};
use warden_core::{
    ActionKind, CostLedger, Environment, InvestigationId, ProposedAction, Remediation, Report,
    RootCause, TrustPhase,
};
use warden_kube_fake::FakeApiServer;
use warden_remediate::fake_kubelet::FakeKubelet;
use warden_remediate::{JobSettings, KubeExecutor};
use warden_store::SqliteStore;
use warden_trust::auth::sha256;
use warden_trust::config::TokenOperator;
use warden_trust::{Authenticator, Outcome, OutcomeRecord, RemediationResult, Role};

const JOBS: &str = "warden-investigations";

/// Plays the investigation runtime: records each job's spec, never runs.
#[derive(Default)]
struct CapturingRuntime {
    started: Mutex<Vec<(InvestigationId, TrustPhase, String, SecretString)>>,
}

#[async_trait]
impl JobRuntime for CapturingRuntime {
    fn name(&self) -> &'static str {
        "capturing"
    }
    async fn start(&self, spec: JobSpec) -> Result<JobHandle, RuntimeError> {
        self.started.lock().unwrap().push((
            spec.investigation_id.clone(),
            spec.phase,
            spec.agent_input.incident.id.to_string(),
            spec.result_credential,
        ));
        Ok(JobHandle {
            job_ref: format!("captured-{}", spec.investigation_id),
        })
    }
    async fn adopt(
        &self,
        _: &InvestigationId,
        _: Option<&str>,
        _: DateTime<Utc>,
    ) -> Result<Adoption, RuntimeError> {
        Ok(Adoption::Gone)
    }
    async fn cancel(&self, _: &InvestigationId) -> Result<(), RuntimeError> {
        Ok(())
    }
    async fn logs(&self, _: &InvestigationId) -> Result<String, RuntimeError> {
        Ok(String::new())
    }
    async fn cleanup(&self, _: &InvestigationId) -> Result<(), RuntimeError> {
        Ok(())
    }
}

struct Job {
    id: InvestigationId,
    phase: TrustPhase,
    incident: String,
    credential: SecretString,
}

struct Harness {
    plane: ControlPlane,
    http: reqwest::Client,
    runtime: Arc<CapturingRuntime>,
    fake: FakeApiServer,
    kubelet: FakeKubelet,
    config: Config,
    dir: tempfile::TempDir,
}

const VIEWER: &str = "viewer-token-1111";
const RESPONDER: &str = "responder-token-2222";
const APPROVER: &str = "approver-token-3333";

fn operator(subject: &str, role: Role, token: &str) -> TokenOperator {
    TokenOperator {
        subject: subject.into(),
        role,
        sha256: Some(hex::encode(sha256(token))),
        token_file: None,
    }
}

fn deployment(name: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": name, "namespace": "shop" },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "app", "image": format!("shop/{name}:v2") }] },
            },
        },
    })
}

async fn harness(phase: TrustPhase, configure: impl FnOnce(&mut Config)) -> Harness {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let fake = FakeApiServer::start().await.unwrap();
    fake.ensure_namespace(JOBS).unwrap();
    fake.ensure_namespace("shop").unwrap();
    fake.create(deployment("checkout")).unwrap();
    fake.create(deployment("payments")).unwrap();

    let mut config = Config::default();
    config.correlation.group_wait_ms = 0;
    config.environments = vec![Environment {
        name: "dev".into(),
        phase,
    }];
    config.trust.environment = "dev".into();
    config.namespaces.targets = vec!["shop".into()];
    config.namespaces.investigations = JOBS.into();
    config.trust.remediation.verify_window_seconds = 10;
    config.trust.operators.tokens = vec![
        operator("vera", Role::Viewer, VIEWER),
        operator("rick", Role::Responder, RESPONDER),
        operator("alice", Role::Approver, APPROVER),
    ];
    configure(&mut config);
    assert!(config.validate().is_empty(), "{:?}", config.validate());

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    let (tx, rx) = warden_control::scheduler::channel();
    let _ = SchedulerEvents(tx.clone());
    let runtime = Arc::new(CapturingRuntime::default());
    let settings = JobSettings {
        namespace: JOBS.into(),
        timeout_seconds: 10,
        ..JobSettings::default()
    };
    let wiring = TrustWiring {
        store: store.clone(),
        audit: Arc::new(AuditLog::open_in(dir.path()).unwrap()),
        executor: Some(Arc::new(KubeExecutor::new(fake.client(), settings))),
        authenticator: Authenticator::from_config(&config.trust.operators).unwrap(),
    };
    // After each remediation, the same service account tries the same
    // action on the other deployment.
    let probe = ProposedAction {
        kind: ActionKind::RolloutRestart,
        namespace: "shop".into(),
        target: "payments".into(),
        replicas: None,
    };
    let kubelet = FakeKubelet::start(fake.clone(), JOBS, 20, Some(probe));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plane = ControlPlane::start_with_trust(
        config.clone(),
        store,
        runtime.clone(),
        None,
        (tx, rx),
        listener,
        None,
        Some(wiring),
    )
    .await
    .unwrap();
    Harness {
        plane,
        http: reqwest::Client::new(),
        runtime,
        fake,
        kubelet,
        config,
        dir,
    }
}

async fn eventually<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..200 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn namespace_label(service: &str) -> String {
    if service == "checkout" {
        "shop".into()
    } else {
        format!("{service}-team")
    }
}

fn alert(service: &str, status: &str) -> Value {
    json!({
        "status": status,
        "labels": { "alertname": "HighErrorRate", "service": service, "namespace": namespace_label(service) },
        "startsAt": "2026-01-01T00:00:00Z",
    })
}

impl Harness {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.plane.url())
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        let mut req = self.http.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// An incident for `service`; returns its investigation's job.
    async fn incident(&self, service: &str) -> Job {
        let before = self.runtime.started.lock().unwrap().len();
        let (status, body) = self
            .post(
                "/api/v1/incidents",
                None,
                // Each incident in its own namespace label, so correlation
                // keeps them apart.
                json!({ "title": format!("{service} errors"), "alerts": [
                    { "labels": { "alertname": "HighErrorRate", "service": service, "namespace": namespace_label(service) },
                      "startsAt": "2026-01-01T00:00:00Z" }
                ]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let job = eventually("the investigation job", async || {
            let started = self.runtime.started.lock().unwrap();
            started
                .get(before)
                .map(|(id, phase, incident, credential)| Job {
                    id: id.clone(),
                    phase: *phase,
                    incident: incident.clone(),
                    credential: credential.clone(),
                })
        })
        .await;
        // A real job reports long after the scheduler recorded its start.
        eventually("the job's start to be recorded", async || {
            let resp = self
                .http
                .get(self.url(&format!("/api/v1/investigations/{}", job.id)))
                .send()
                .await
                .unwrap();
            let inv: Value = resp.json().await.unwrap();
            inv["job_ref"].is_string().then_some(())
        })
        .await;
        job
    }

    async fn deliver(&self, job: &Job, proposals: &[(&str, &str)]) {
        let report = Report {
            investigation_id: job.id.to_string(),
            incident_id: job.incident.clone(),
            reasoner: "test".into(),
            summary: "checkout is degraded".into(),
            root_cause: Some(RootCause {
                hypothesis: "h-1".into(),
                subject: "checkout".into(),
                statement: "checkout leaks connections".into(),
                chain: vec!["checkout".into()],
            }),
            confidence: 0.95,
            hypotheses: Vec::new(),
            evidence: Vec::new(),
            remediation: proposals
                .iter()
                .map(|(action, target)| Remediation {
                    action: action.to_string(),
                    target: target.to_string(),
                    rationale: "restart clears the leak".into(),
                    risk: "low".into(),
                })
                .collect(),
            cycles: 1,
            depth_budget: 8,
            circuit_breaker_tripped: false,
            escalation: None,
            cost: CostLedger::default(),
        };
        let (status, body) = self
            .post(
                &format!("/api/v1/investigations/{}/report", job.id),
                Some(job.credential.expose_secret()),
                serde_json::to_value(&report).unwrap(),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    async fn actions(&self, job: &Job, count: usize) -> Vec<Value> {
        eventually("the gated actions", async || {
            let (status, body) = self
                .get(&format!("/api/v1/actions?investigation={}", job.id), VIEWER)
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let list = body["actions"].as_array().cloned().unwrap_or_default();
            (list.len() == count).then_some(list)
        })
        .await
    }

    async fn action_in(&self, id: &str, states: &[&str]) -> Value {
        eventually(&format!("action {id} in {states:?}"), async || {
            let (_, a) = self.get(&format!("/api/v1/actions/{id}"), VIEWER).await;
            states
                .contains(&a["state"].as_str().unwrap_or(""))
                .then_some(a)
        })
        .await
    }

    fn audit_kinds(&self) -> Vec<(String, String)> {
        let path = warden_audit::log_path(self.dir.path());
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (
                    v["kind"].as_str().unwrap().to_string(),
                    v["subject"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }
}

#[tokio::test]
async fn an_approved_action_runs_as_a_job_with_only_its_permissions_and_is_verified() {
    let h = harness(TrustPhase::Remediate, |_| {}).await;
    let job = h.incident("checkout").await;
    assert_eq!(
        job.phase,
        TrustPhase::Remediate,
        "the phase comes from the persisted state"
    );

    // A live agent credential (of another investigation, whose job has not
    // reported yet) is kept for later.
    let other = h.incident("cart").await;

    h.deliver(&job, &[("rollout_restart", "shop/checkout")])
        .await;
    let actions = h.actions(&job, 1).await;
    let action = &actions[0];
    assert_eq!(action["state"], "pending_approval", "{action}");
    assert_eq!(
        action["decision"]["decision"]["decision"], "needs_approval",
        "{action}"
    );
    let id = action["id"].as_str().unwrap().to_string();
    let approve = format!("/api/v1/actions/{id}/approve");

    // Nobody but an approver can approve; the agent never can.
    let (s, _) = h.post(&approve, None, json!({})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, body) = h.post(&approve, Some(VIEWER), json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    let (s, body) = h.post(&approve, Some(RESPONDER), json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    let (s, body) = h
        .post(&approve, Some(other.credential.expose_secret()), json!({}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert!(body.to_string().contains("agent can never"), "{body}");
    // The consumed credential of the reporting job is no operator either.
    let (s, _) = h
        .post(&approve, Some(job.credential.expose_secret()), json!({}))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(
        h.fake.objects("jobs").is_empty(),
        "nothing ran before approval"
    );

    let (s, body) = h.post(&approve, Some(APPROVER), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "approved");
    assert_eq!(body["decided_by"], "alice");

    // The stand-in kubelet runs the Job as its service account.
    let run = eventually("the remediation job to run", async || {
        h.kubelet.runs().into_iter().next()
    })
    .await;
    assert!(run.result.is_ok(), "{:?}", run.result);
    assert_eq!(run.action.target, "checkout");
    assert_eq!(
        run.probe.clone().unwrap().1,
        Err(Some(403)),
        "the same account is refused on another deployment"
    );

    // The incident's alert resolves: the remediation is verified.
    let (s, body) = h
        .post(
            "/api/v1/alerts",
            None,
            json!({ "version": "4", "alerts": [alert("checkout", "resolved")] }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let done = h.action_in(&id, &["succeeded", "failed"]).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(
        done["execution"]["role"]["rules"],
        json!([{
            "apiGroups": ["apps"], "resources": ["deployments"],
            "verbs": ["get", "patch"], "resourceNames": ["checkout"],
        }]),
        "exactly ActionKind::permissions(rollout_restart) on the one target"
    );
    let expected: Vec<Value> = ActionKind::RolloutRestart
        .permissions()
        .iter()
        .map(|p| json!({"apiGroups": [p.api_group], "resources": [p.resource], "verbs": p.verbs, "resourceNames": ["checkout"]}))
        .collect();
    assert_eq!(done["execution"]["role"]["rules"], json!(expected));

    let checkout = h
        .fake
        .object("deployments", Some("shop"), "checkout")
        .unwrap();
    assert!(
        checkout["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string()
    );
    let payments = h
        .fake
        .object("deployments", Some("shop"), "payments")
        .unwrap();
    assert!(
        payments["spec"]["template"]["metadata"]
            .get("annotations")
            .is_none()
    );
    for kind in ["jobs", "roles", "rolebindings", "serviceaccounts"] {
        assert!(
            h.fake.objects(kind).iter().all(|o| !o["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("warden-remediate-")),
            "{kind} left behind"
        );
    }

    // The audit chain verifies and holds the decision, the approval and
    // the execution of this action.
    let report = warden_audit::verify(&warden_audit::log_path(h.dir.path())).unwrap();
    assert!(report.entries >= 4, "{report:?}");
    let kinds = h.audit_kinds();
    for kind in ["gate_decision", "approval", "execution"] {
        assert!(
            kinds.iter().any(|(k, s)| k == kind && *s == id),
            "no {kind} entry for {id}: {kinds:?}"
        );
    }

    // The trust status shows the recorded outcomes.
    let (s, status) = h.get("/api/v1/trust/status", VIEWER).await;
    assert_eq!(s, StatusCode::OK, "{status}");
    let gate = &status["environments"][0]["gates"][2];
    assert_eq!(gate["from"], "remediate");
    assert_eq!(gate["checks"][0]["samples"], 1);
    assert_eq!(gate["pass"], false);
}

#[tokio::test]
async fn a_denied_action_never_runs_and_an_expired_approval_does_not_execute() {
    let h = harness(TrustPhase::Remediate, |_| {}).await;
    let job = h.incident("checkout").await;
    h.deliver(
        &job,
        &[
            ("rollout_restart", "shop/checkout"),
            ("rollout_restart", "shop/payments"),
            ("delete_namespace", "shop/shop"),
        ],
    )
    .await;
    let actions = h.actions(&job, 3).await;
    let (first, second) = (
        actions[0]["id"].as_str().unwrap().to_string(),
        actions[1]["id"].as_str().unwrap().to_string(),
    );
    // The gate denies what is not allow-listed, with its reasons.
    assert_eq!(actions[2]["state"], "denied", "{}", actions[2]);
    let (s, _) = h
        .post(
            &format!(
                "/api/v1/actions/{}/approve",
                actions[2]["id"].as_str().unwrap()
            ),
            Some(APPROVER),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "a gate denial cannot be approved");

    // An operator denies the first: it never runs, and cannot be approved.
    let (s, body) = h
        .post(
            &format!("/api/v1/actions/{first}/deny"),
            Some(APPROVER),
            json!({ "reason": "maintenance window" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "denied");
    let (s, _) = h
        .post(
            &format!("/api/v1/actions/{first}/approve"),
            Some(APPROVER),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);

    // The second is approved, but its approval has expired by the time it
    // would start: it does not run.
    let trust = h.plane.trust.clone().unwrap();
    let alice = trust
        .authenticate(&SecretString::from(APPROVER.to_string()))
        .await
        .unwrap();
    let now = Utc::now();
    let approved = trust.approve(&alice, &second, now).await.unwrap();
    let expiry = approved.approval_expires_at.unwrap();
    assert_eq!((expiry - now).num_seconds(), 900);
    let e = trust
        .execute(&second, expiry + chrono::Duration::seconds(1))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("approval expired"), "{e}");
    let (_, a) = h.get(&format!("/api/v1/actions/{second}"), VIEWER).await;
    assert_eq!(a["state"], "expired", "{a}");
    // An expired action cannot be executed later either.
    assert!(trust.execute(&second, now).await.is_err());

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        h.fake.objects("jobs").is_empty(),
        "no remediation job was created"
    );
    assert!(h.kubelet.runs().is_empty());
    let payments = h
        .fake
        .object("deployments", Some("shop"), "payments")
        .unwrap();
    assert!(
        payments["spec"]["template"]["metadata"]
            .get("annotations")
            .is_none()
    );
    let kinds = h.audit_kinds();
    assert!(
        kinds.iter().any(|(k, s)| k == "denial" && *s == first),
        "{kinds:?}"
    );
    assert!(
        kinds.iter().any(|(k, s)| k == "execution" && *s == second),
        "{kinds:?}"
    );
    assert!(
        !kinds.iter().any(|(k, s)| k == "execution" && *s == first),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn a_proposal_not_approved_within_its_ttl_expires() {
    let h = harness(TrustPhase::Remediate, |c| c.trust.approvals.ttl_seconds = 1).await;
    let job = h.incident("checkout").await;
    h.deliver(&job, &[("rollout_restart", "shop/checkout")])
        .await;
    let id = h.actions(&job, 1).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // The list shows it expired, not waiting.
    assert_eq!(h.actions(&job, 1).await[0]["state"], "expired");
    let (s, body) = h
        .post(
            &format!("/api/v1/actions/{id}/approve"),
            Some(APPROVER),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert!(body.to_string().contains("expired"), "{body}");
    let (_, a) = h.get(&format!("/api/v1/actions/{id}"), VIEWER).await;
    assert_eq!(a["state"], "expired");
    assert!(h.fake.objects("jobs").is_empty());
}

#[tokio::test]
async fn two_rollbacks_demote_the_next_investigation_with_a_metric_and_an_audit_entry() {
    let h = harness(TrustPhase::Remediate, |_| {}).await;
    let first = h.incident("checkout").await;
    assert_eq!(first.phase, TrustPhase::Remediate);
    let trust = h.plane.trust.clone().unwrap();
    let metrics = || async {
        h.http
            .get(h.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert!(
        metrics()
            .await
            .contains("warden_trust_phase{environment=\"dev\"} 2")
    );

    // Injected outcomes: successes, then two rollbacks.
    for result in [
        RemediationResult::Success,
        RemediationResult::Success,
        RemediationResult::RolledBack,
    ] {
        trust
            .record(OutcomeRecord::new(
                "dev",
                "test",
                Utc::now(),
                Outcome::Remediation { result },
            ))
            .await
            .unwrap();
    }
    assert_eq!(
        trust.current_phase().await.unwrap(),
        TrustPhase::Remediate,
        "one rollback is within the limit"
    );
    trust
        .record(OutcomeRecord::new(
            "dev",
            "test",
            Utc::now(),
            Outcome::Remediation {
                result: RemediationResult::RolledBack,
            },
        ))
        .await
        .unwrap();
    assert_eq!(trust.current_phase().await.unwrap(), TrustPhase::Assist);

    let text = metrics().await;
    assert!(
        text.contains("warden_trust_phase{environment=\"dev\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("warden_trust_demotions_total{environment=\"dev\"} 1"),
        "{text}"
    );
    let kinds = h.audit_kinds();
    assert!(
        kinds.iter().any(|(k, s)| k == "demotion" && s == "dev"),
        "{kinds:?}"
    );
    assert!(
        kinds.iter().any(|(k, s)| k == "phase_change" && s == "dev"),
        "{kinds:?}"
    );

    // The running investigation keeps its phase; the next one is assist.
    let (_, inv) = h
        .get(&format!("/api/v1/investigations/{}", first.id), VIEWER)
        .await;
    assert_eq!(inv["phase"], "remediate");
    let next = h.incident("payments").await;
    assert_eq!(next.phase, TrustPhase::Assist);

    // In assist the gate denies every action: a proposal never waits for approval.
    h.deliver(&next, &[("rollout_restart", "shop/payments")])
        .await;
    let actions = h.actions(&next, 1).await;
    assert_eq!(actions[0]["state"], "denied", "{}", actions[0]);

    let (_, status) = h.get("/api/v1/trust/status?environment=dev", VIEWER).await;
    let env = &status["environments"][0];
    assert_eq!(env["phase"], "assist");
    assert!(
        env["reason"].as_str().unwrap().contains("2 rollbacks"),
        "{env}"
    );
}

#[tokio::test]
async fn verdicts_and_reviews_need_a_responder_and_record_the_edit_size() {
    let h = harness(TrustPhase::Assist, |_| {}).await;
    let job = h.incident("checkout").await;
    h.deliver(&job, &[]).await;
    let verdict = format!("/api/v1/investigations/{}/verdict", job.id);
    let (s, _) = h
        .post(&verdict, Some(VIEWER), json!({"verdict": "accept"}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, body) = h
        .post(
            &verdict,
            Some(RESPONDER),
            json!({"verdict": "modify", "subject": "checkout", "statement": "checkout leaks connections!"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let size = body["outcome"]["edit_size"].as_f64().unwrap();
    assert!(size > 0.0 && size < 0.05, "{body}");
    let (s, body) = h
        .post(&verdict, Some(RESPONDER), json!({"verdict": "modify"}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let (s, body) = h
        .post(
            &format!("/api/v1/investigations/{}/review", job.id),
            Some(RESPONDER),
            json!({"known_root_cause": "Checkout"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["outcome"]["result"], "correct");
    let kinds = h.audit_kinds();
    assert_eq!(
        kinds.iter().filter(|(k, _)| k == "verdict").count(),
        2,
        "{kinds:?}"
    );
}

#[tokio::test]
async fn an_action_whose_alerts_keep_firing_is_recorded_as_failed() {
    let h = harness(TrustPhase::Remediate, |c| {
        c.trust.remediation.verify_window_seconds = 1
    })
    .await;
    let job = h.incident("checkout").await;
    h.deliver(&job, &[("rollout_restart", "shop/checkout")])
        .await;
    let id = h.actions(&job, 1).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, body) = h
        .post(
            &format!("/api/v1/actions/{id}/approve"),
            Some(APPROVER),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let done = h.action_in(&id, &["succeeded", "failed"]).await;
    assert_eq!(done["state"], "failed", "{done}");
    assert!(
        done["detail"].as_str().unwrap().contains("still fire"),
        "{done}"
    );
    assert!(
        h.kubelet.runs()[0].result.is_ok(),
        "the action itself was applied"
    );
    let (_, status) = h.get("/api/v1/trust/status", VIEWER).await;
    let check = &status["environments"][0]["gates"][2]["checks"][0];
    assert_eq!(check["metric"], "remediation_success");
    assert_eq!(check["value"], 0.0, "{check}");
    // An operator who undid it reports the rollback.
    let (s, body) = h
        .post(
            &format!("/api/v1/actions/{id}/rollback"),
            Some(RESPONDER),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    let (s, body) = h
        .post(
            &format!("/api/v1/actions/{id}/rollback"),
            Some(APPROVER),
            json!({"detail": "reverted by hand"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "rolled_back");
}

fn warden(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test]
async fn trust_status_and_the_promotion_proposal_on_the_command_line() {
    let h = harness(TrustPhase::Shadow, |_| {}).await;
    let file = h.dir.path().join("warden.yaml");
    std::fs::write(&file, serde_yaml::to_string(&h.config).unwrap()).unwrap();
    let data = h.dir.path().to_str().unwrap();
    let config = file.to_str().unwrap();
    let trust = h.plane.trust.clone().unwrap();
    let review =
        |result| OutcomeRecord::new("dev", "test", Utc::now(), Outcome::ShadowReview { result });

    // 99 correct reviews: too few samples.
    for _ in 0..99 {
        trust
            .record(review(warden_trust::ReviewResult::Correct))
            .await
            .unwrap();
    }
    let (code, out, err) = warden(&[
        "trust",
        "status",
        "--data-dir",
        data,
        "--config",
        config,
        "--env",
        "dev",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("environment dev: phase shadow"), "{out}");
    assert!(out.contains("diagnostic_accuracy"), "{out}");
    assert!(out.contains("samples 99/100"), "{out}");
    assert!(out.contains("promotion: not available"), "{out}");
    let (code, out, err) = warden(&[
        "trust",
        "propose-promotion",
        "--env",
        "dev",
        "--config",
        config,
        "--data-dir",
        data,
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("too few samples (99 of at least 100)"),
        "{err}"
    );
    assert!(out.is_empty(), "no diff without a passing gate: {out}");

    // The 100th: 100% over 100 reviews passes; the proposal is a diff of
    // the environment's phase that applies to the file.
    trust
        .record(review(warden_trust::ReviewResult::Correct))
        .await
        .unwrap();
    let (code, out, err) = warden(&[
        "trust",
        "status",
        "--data-dir",
        data,
        "--config",
        config,
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json[0]["promotion_available"], true, "{out}");
    assert_eq!(json[0]["gates"][0]["checks"][0]["samples"], 100);
    let (code, diff, err) = warden(&[
        "trust",
        "propose-promotion",
        "--env",
        "dev",
        "--config",
        config,
        "--data-dir",
        data,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        diff.contains("-  phase: shadow\n+  phase: assist\n"),
        "{diff}"
    );
    let patch = h.dir.path().join("promote.diff");
    std::fs::write(&patch, &diff).unwrap();
    let applied = std::process::Command::new("patch")
        .arg(&file)
        .arg(&patch)
        .output()
        .expect("patch(1) is needed (Debian package patch)");
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stdout)
    );
    let promoted = Config::load(&file).unwrap();
    assert_eq!(promoted.environments[0].phase, TrustPhase::Assist);
    // Nothing but the phase changed.
    let mut expected = h.config.clone();
    expected.environments[0].phase = TrustPhase::Assist;
    assert_eq!(promoted, expected);

    let (code, _, err) = warden(&[
        "trust",
        "status",
        "--data-dir",
        data,
        "--config",
        config,
        "--env",
        "staging",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("\"staging\" is not declared"), "{err}");
}

#[tokio::test]
async fn in_autonomous_an_allow_listed_confident_action_runs_without_approval() {
    let h = harness(TrustPhase::Autonomous, |_| {}).await;
    let job = h.incident("checkout").await;
    assert_eq!(job.phase, TrustPhase::Autonomous);
    // rollout_restart is allow-listed for autonomous at confidence 0.9;
    // rollback_deployment is not: it goes to a person.
    h.deliver(
        &job,
        &[
            ("rollout_restart", "shop/checkout"),
            ("rollback", "shop/checkout"),
        ],
    )
    .await;
    let actions = h.actions(&job, 2).await;
    assert_eq!(actions[1]["state"], "escalated", "{}", actions[1]);
    let id = actions[0]["id"].as_str().unwrap().to_string();
    let run = eventually("the autonomous remediation job", async || {
        h.kubelet.runs().into_iter().next()
    })
    .await;
    assert!(run.result.is_ok(), "{:?}", run.result);
    let (s, _) = h
        .post(
            "/api/v1/alerts",
            None,
            json!({ "version": "4", "alerts": [alert("checkout", "resolved")] }),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let done = h.action_in(&id, &["succeeded", "failed"]).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["decided_by"], "policy");
    assert_eq!(
        h.kubelet.runs().len(),
        1,
        "the escalated action did not run"
    );
}

#[test]
fn the_remediation_job_command_line_is_the_one_the_job_is_built_with() {
    let action = ProposedAction {
        kind: ActionKind::ScaleDeployment,
        namespace: "shop".into(),
        target: "checkout".into(),
        replicas: Some(3),
    };
    let args = warden_remediate::action_args(&action);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(&args)
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Parsed, then refused for want of a cluster: no usage error.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("remediation failed"), "{stdout}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args([
            "remediate",
            "run",
            "--kind",
            "delete_namespace",
            "--namespace",
            "shop",
            "--target",
            "shop",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown action"));
}
