#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The control plane's Role is enough: the whole lifecycle runs as its
//! ServiceAccount against the fake API server with RBAC enforced, and no
//! request is refused. Without the TokenReview grant, bootstrap fails
//! closed.

mod common;

use std::time::Duration;

use secrecy::SecretString;
use serde_json::json;
use warden_core::ports::{Adoption, BootstrapError, JobBootstrap, JobOutcome, JobRuntime};
use warden_core::{Complexity, TrustPhase};
use warden_kube_fake::{ContainerState, FakeApiServer, ServiceAccountIdentity};
use warden_runtime_kube::job_name;

use common::*;

const CONTROL_NS: &str = "warden-system";
const USER: &str = "system:serviceaccount:warden-system:warden";
const MINUTES: Duration = Duration::from_secs(600);

/// The objects of `deploy/helm/warden/templates/rbac.yaml` (and
/// docs/kubernetes.md), nothing more.
fn grant_control_plane(fake: &FakeApiServer) {
    fake.ensure_namespace(CONTROL_NS).unwrap();
    fake.create(json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "warden", "namespace": CONTROL_NS}}))
        .unwrap();
    fake.create(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "warden-jobs", "namespace": NS},
        "rules": [
            {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get", "list", "watch", "patch", "delete"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}
        ]
    }))
    .unwrap();
    fake.create(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "warden-jobs", "namespace": NS},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "warden-jobs"},
        "subjects": [{"kind": "ServiceAccount", "name": "warden", "namespace": CONTROL_NS}]
    }))
    .unwrap();
    fake.create(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "warden-tokenreview"},
        "rules": [{"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]}]
    }))
    .unwrap();
    fake.create(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "warden-tokenreview"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "warden-tokenreview"},
        "subjects": [{"kind": "ServiceAccount", "name": "warden", "namespace": CONTROL_NS}]
    }))
    .unwrap();
    fake.register_token(
        "control-plane",
        ServiceAccountIdentity::new(CONTROL_NS, "warden"),
    );
}

fn running_pod(fake: &FakeApiServer, job: &str) -> String {
    let pod = fake.create_pod_for_job(NS, job).unwrap();
    let pod = pod["metadata"]["name"].as_str().unwrap().to_string();
    fake.set_container_state(NS, &pod, None, ContainerState::running())
        .unwrap();
    pod
}

#[tokio::test]
async fn the_whole_lifecycle_runs_with_the_control_plane_role_alone() {
    let fake = fake().await;
    grant_control_plane(&fake);
    let dir = tempfile::tempdir().unwrap();
    let settings = settings();
    let client = fake.client_with_token("control-plane");
    let (runtime, mut events) = runtime_with(client.clone(), dir.path(), &settings);

    // Start, logs, bootstrap, success, cleanup.
    let (a, _) = spec(TrustPhase::Shadow, Complexity::Simple, MINUTES);
    let a_id = a.investigation_id.clone();
    runtime.start(a).await.unwrap();
    let pod = running_pod(&fake, &job_name(&a_id));
    fake.append_pod_log(NS, &pod, "working\n").unwrap();
    fake.register_token(
        "pod-a",
        ServiceAccountIdentity::new(NS, sa(TrustPhase::Shadow))
            .with_audiences([AUDIENCE])
            .bound_to_pod(&pod),
    );
    runtime.claim(&SecretString::from("pod-a")).await.unwrap();
    let log = dir.path().join("jobs").join(a_id.as_str()).join("job.log");
    eventually("the log line", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("working"))
    })
    .await;
    fake.set_container_state(NS, &pod, None, ContainerState::completed())
        .unwrap();
    fake.sync_job(NS, &job_name(&a_id)).unwrap();
    let event = next_event(&mut events, Duration::from_secs(15)).await;
    assert_eq!(outcome(&event), &JobOutcome::Exited { code: 0 });
    runtime.cleanup(&a_id).await.unwrap();

    // Cancel.
    let (b, _) = spec(TrustPhase::Assist, Complexity::Moderate, MINUTES);
    let b_id = b.investigation_id.clone();
    runtime.start(b).await.unwrap();
    runtime.cancel(&b_id).await.unwrap();
    next_event(&mut events, Duration::from_secs(15)).await;

    // Restart: the Job whose input was claimed is re-adopted; the one
    // whose input was not (it lived only in the old process) is deleted
    // for a fresh start.
    let (c, _) = spec(TrustPhase::Remediate, Complexity::MultiDomain, MINUTES);
    let c_id = c.investigation_id.clone();
    let deadline = c.deadline;
    runtime.start(c).await.unwrap();
    let c_pod = running_pod(&fake, &job_name(&c_id));
    fake.register_token(
        "pod-c",
        ServiceAccountIdentity::new(NS, sa(TrustPhase::Remediate))
            .with_audiences([AUDIENCE])
            .bound_to_pod(&c_pod),
    );
    runtime.claim(&SecretString::from("pod-c")).await.unwrap();
    let (d, _) = spec(TrustPhase::Shadow, Complexity::Simple, MINUTES);
    let d_id = d.investigation_id.clone();
    runtime.start(d).await.unwrap();
    drop(runtime);
    let (runtime, mut events) = runtime_with(client, dir.path(), &settings);
    assert_eq!(
        runtime.adopt(&c_id, None, deadline).await.unwrap(),
        Adoption::Adopted
    );
    assert_eq!(
        runtime.adopt(&d_id, None, deadline).await.unwrap(),
        Adoption::Restart
    );
    assert!(fake.object("Job", Some(NS), &job_name(&d_id)).is_none());
    assert_eq!(
        runtime.list_investigations().await.unwrap(),
        vec![c_id.clone()]
    );
    fake.complete_job(NS, &job_name(&c_id)).unwrap();
    next_event(&mut events, Duration::from_secs(15)).await;

    let mine: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.user.as_deref() == Some(USER))
        .collect();
    assert!(mine.len() > 10, "{mine:?}");
    let refused: Vec<_> = mine
        .iter()
        .filter(|r| r.status == 403 || r.status == 401)
        .collect();
    assert!(refused.is_empty(), "refused: {refused:?}");
    // And it used each grant.
    for verb in ["create", "get", "list", "watch", "patch", "delete"] {
        assert!(
            mine.iter()
                .any(|r| r.verb == verb && r.resource.as_deref() == Some("jobs")),
            "{verb} jobs"
        );
    }
    assert!(
        mine.iter()
            .any(|r| r.resource.as_deref() == Some("pods/log"))
    );
    assert!(
        mine.iter()
            .any(|r| r.resource.as_deref() == Some("tokenreviews"))
    );
}

#[tokio::test]
async fn without_the_token_review_grant_nothing_is_handed_out() {
    let fake = fake().await;
    grant_control_plane(&fake);
    fake.delete("ClusterRoleBinding", None, "warden-tokenreview")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (runtime, _events) = runtime_with(
        fake.client_with_token("control-plane"),
        dir.path(),
        &settings(),
    );
    let (a, _) = spec(TrustPhase::Shadow, Complexity::Simple, MINUTES);
    let a_id = a.investigation_id.clone();
    runtime.start(a).await.unwrap();
    let pod = running_pod(&fake, &job_name(&a_id));
    fake.register_token(
        "pod-a",
        ServiceAccountIdentity::new(NS, sa(TrustPhase::Shadow))
            .with_audiences([AUDIENCE])
            .bound_to_pod(&pod),
    );
    let e = runtime
        .claim(&SecretString::from("pod-a"))
        .await
        .unwrap_err();
    assert!(matches!(e, BootstrapError::Unavailable(_)), "{e}");
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.resource.as_deref() == Some("tokenreviews") && r.status == 403)
    );
    runtime.cancel(&a_id).await.unwrap();
}
