#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Remediation jobs end to end on the fake API server, which enforces RBAC
//! for service-account tokens: the job's account can do its one action on
//! its one target and nothing else, and every object is removed afterwards.

use std::time::Duration;

use serde_json::{Value, json};
use warden_core::{ActionKind, ProposedAction, TrustPhase};
use warden_kube_fake::{FakeApiServer, ServiceAccountIdentity};
use warden_remediate::fake_kubelet::FakeKubelet;
use warden_remediate::objects::role_rules;
use warden_remediate::{JobSettings, KubeExecutor, run_action};
use warden_trust::{ExecutionRequest, RemediationExecutor};

const JOBS: &str = "warden-investigations";

async fn cluster() -> FakeApiServer {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let fake = FakeApiServer::start().await.unwrap();
    fake.ensure_namespace(JOBS).unwrap();
    fake.ensure_namespace("shop").unwrap();
    for name in ["checkout", "payments"] {
        fake.create(deployment(name, 2, "v2")).unwrap();
    }
    fake
}

fn deployment(name: &str, replicas: u32, version: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": name, "namespace": "shop" },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "app", "image": format!("shop/{name}:{version}") }] },
            },
        },
    })
}

fn settings() -> JobSettings {
    JobSettings {
        namespace: JOBS.into(),
        timeout_seconds: 10,
        ..JobSettings::default()
    }
}

fn action(kind: ActionKind, target: &str) -> ProposedAction {
    ProposedAction {
        kind,
        namespace: "shop".into(),
        target: target.into(),
        replicas: (kind == ActionKind::ScaleDeployment).then_some(5),
    }
}

fn leftovers(fake: &FakeApiServer) -> Vec<String> {
    let mut out = Vec::new();
    for kind in ["jobs", "roles", "rolebindings", "serviceaccounts"] {
        for o in fake.objects(kind) {
            let name = o["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if name.starts_with("warden-remediate-") {
                out.push(format!("{kind}/{name}"));
            }
        }
    }
    out
}

#[tokio::test]
async fn a_scale_runs_as_its_own_account_which_cannot_touch_another_deployment() {
    let fake = cluster().await;
    let probe = action(ActionKind::ScaleDeployment, "payments");
    let kubelet = FakeKubelet::start(fake.clone(), JOBS, 20, Some(probe));
    let executor = KubeExecutor::new(fake.client(), settings());
    let request = ExecutionRequest {
        action_id: "act-01scale".into(),
        investigation: "inv-1".into(),
        phase: TrustPhase::Remediate,
        action: action(ActionKind::ScaleDeployment, "checkout"),
    };
    let report = tokio::time::timeout(Duration::from_secs(15), executor.execute(&request))
        .await
        .unwrap()
        .unwrap();
    assert!(report.applied, "{}", report.detail);
    assert!(
        report
            .detail
            .contains("scaled deployment shop/checkout from 2 to 5"),
        "{}",
        report.detail
    );
    assert_eq!(report.record["role"]["rules"], role_rules(&request.action));
    assert_eq!(
        report.record["role"]["rules"],
        json!([
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"], "resourceNames": ["checkout"]},
            {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["get", "patch"], "resourceNames": ["checkout"]},
        ])
    );
    let checkout = fake
        .object("deployments", Some("shop"), "checkout")
        .unwrap();
    assert_eq!(checkout["spec"]["replicas"], 5);
    let payments = fake
        .object("deployments", Some("shop"), "payments")
        .unwrap();
    assert_eq!(
        payments["spec"]["replicas"], 2,
        "the other deployment is untouched"
    );

    let runs = kubelet.runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].service_account, "warden-remediate-01scale");
    let (_, probe_result) = runs[0].probe.clone().unwrap();
    assert_eq!(
        probe_result,
        Err(Some(403)),
        "the job's account is refused on payments"
    );
    assert!(leftovers(&fake).is_empty(), "{:?}", leftovers(&fake));
}

#[tokio::test]
async fn restart_pod_and_rollout_restart_touch_only_their_target() {
    let fake = cluster().await;
    for pod in ["checkout-1", "checkout-2"] {
        fake.create(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": pod, "namespace": "shop", "labels": { "app": "checkout" } },
            "spec": { "containers": [{ "name": "app", "image": "shop/checkout:v2" }] },
        }))
        .unwrap();
    }
    let probe = action(ActionKind::RestartPod, "checkout-2");
    let kubelet = FakeKubelet::start(fake.clone(), JOBS, 20, Some(probe));
    let executor = KubeExecutor::new(fake.client(), settings());
    let report = executor
        .execute(&ExecutionRequest {
            action_id: "act-01pod".into(),
            investigation: "inv-1".into(),
            phase: TrustPhase::Remediate,
            action: action(ActionKind::RestartPod, "checkout-1"),
        })
        .await
        .unwrap();
    assert!(report.applied, "{}", report.detail);
    assert!(fake.object("pods", Some("shop"), "checkout-1").is_none());
    assert!(fake.object("pods", Some("shop"), "checkout-2").is_some());
    assert_eq!(kubelet.runs()[0].probe.clone().unwrap().1, Err(Some(403)));

    let report = executor
        .execute(&ExecutionRequest {
            action_id: "act-01restart".into(),
            investigation: "inv-1".into(),
            phase: TrustPhase::Remediate,
            action: action(ActionKind::RolloutRestart, "checkout"),
        })
        .await
        .unwrap();
    assert!(report.applied, "{}", report.detail);
    let d = fake
        .object("deployments", Some("shop"), "checkout")
        .unwrap();
    assert!(
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string(),
        "{d}"
    );
    assert!(leftovers(&fake).is_empty(), "{:?}", leftovers(&fake));
}

#[tokio::test]
async fn rollback_restores_the_previous_replicasets_template() {
    let fake = cluster().await;
    let uid = fake
        .object("deployments", Some("shop"), "checkout")
        .unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    for (rev, version) in [(1, "v1"), (2, "v2")] {
        fake.create(json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {
                "name": format!("checkout-{version}"), "namespace": "shop",
                "annotations": { "deployment.kubernetes.io/revision": rev.to_string() },
                "labels": { "app": "checkout", "pod-template-hash": version },
                "ownerReferences": [{ "apiVersion": "apps/v1", "kind": "Deployment", "name": "checkout", "uid": uid, "controller": true }],
            },
            "spec": {
                "replicas": 2,
                "selector": { "matchLabels": { "app": "checkout", "pod-template-hash": version } },
                "template": {
                    "metadata": { "labels": { "app": "checkout", "pod-template-hash": version } },
                    "spec": { "containers": [{ "name": "app", "image": format!("shop/checkout:{version}") }] },
                },
            },
        }))
        .unwrap();
    }
    let _kubelet = FakeKubelet::start(fake.clone(), JOBS, 20, None);
    let executor = KubeExecutor::new(fake.client(), settings());
    let report = executor
        .execute(&ExecutionRequest {
            action_id: "act-01rollback".into(),
            investigation: "inv-1".into(),
            phase: TrustPhase::Remediate,
            action: action(ActionKind::RollbackDeployment, "checkout"),
        })
        .await
        .unwrap();
    assert!(report.applied, "{}", report.detail);
    assert!(
        report.detail.contains("from revision 2 to revision 1"),
        "{}",
        report.detail
    );
    let d = fake
        .object("deployments", Some("shop"), "checkout")
        .unwrap();
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "shop/checkout:v1"
    );
    assert!(
        d["spec"]["template"]["metadata"]["labels"]
            .get("pod-template-hash")
            .is_none(),
        "{d}"
    );
}

#[tokio::test]
async fn a_failed_action_is_reported_as_not_applied_and_still_cleaned_up() {
    let fake = cluster().await;
    let _kubelet = FakeKubelet::start(fake.clone(), JOBS, 20, None);
    let executor = KubeExecutor::new(fake.client(), settings());
    let report = executor
        .execute(&ExecutionRequest {
            action_id: "act-01missing".into(),
            investigation: "inv-1".into(),
            phase: TrustPhase::Remediate,
            action: action(ActionKind::RolloutRestart, "no-such-deployment"),
        })
        .await
        .unwrap();
    assert!(!report.applied);
    assert!(report.detail.contains("job failed"), "{}", report.detail);
    assert!(
        report.detail.contains("no-such-deployment"),
        "{}",
        report.detail
    );
    assert!(leftovers(&fake).is_empty(), "{:?}", leftovers(&fake));
}

#[tokio::test]
async fn without_a_binding_the_runner_gets_403_for_every_action() {
    let fake = cluster().await;
    fake.create(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "nobody", "namespace": JOBS}}))
        .unwrap();
    fake.register_token("nobody-token", ServiceAccountIdentity::new(JOBS, "nobody"));
    let client = fake.client_with_token("nobody-token");
    for kind in ActionKind::ALL {
        let target = if kind == ActionKind::RestartPod {
            "checkout-1"
        } else {
            "checkout"
        };
        let e = run_action(client.clone(), &action(kind, target), 20)
            .await
            .unwrap_err();
        assert_eq!(e.status(), Some(403), "{kind}: {e}");
    }
}

#[tokio::test]
async fn an_out_of_bounds_scale_is_refused_before_any_object_exists() {
    let fake = cluster().await;
    let executor = KubeExecutor::new(fake.client(), settings());
    let mut a = action(ActionKind::ScaleDeployment, "checkout");
    a.replicas = Some(1000);
    let e = executor
        .execute(&ExecutionRequest {
            action_id: "act-01big".into(),
            investigation: "inv-1".into(),
            phase: TrustPhase::Remediate,
            action: a,
        })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("replicas"), "{e}");
    assert!(leftovers(&fake).is_empty());
    assert!(fake.objects("jobs").is_empty());
}
