#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The pod's input over HTTP: handed out once, only to the investigation's
//! own pod, proven by a TokenReview of its projected token.

mod common;

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use warden_core::ports::{Adoption, BootstrapError, JobBootstrap, JobRuntime};
use warden_core::{Complexity, InvestigationId, TrustPhase};
use warden_kube_fake::{API_AUDIENCE, ContainerState, ServiceAccountIdentity};
use warden_runtime_kube::job_name;

use common::*;

const MINUTES: Duration = Duration::from_secs(600);

async fn claim(h: &Harness, token: &str) -> Result<Value, BootstrapError> {
    let doc = h
        .runtime
        .claim(&SecretString::from(token.to_string()))
        .await?;
    Ok(serde_json::from_str(doc.expose_secret()).unwrap())
}

fn new_pod(h: &Harness, id: &InvestigationId) -> String {
    let pod = h.fake.create_pod_for_job(NS, &job_name(id)).unwrap();
    pod["metadata"]["name"].as_str().unwrap().to_string()
}

/// A projected token as the kubelet would mount it into `pod`.
fn pod_token(h: &Harness, name: &str, phase: TrustPhase, pod: &str) -> String {
    h.fake.register_token(
        name,
        ServiceAccountIdentity::new(NS, sa(phase))
            .with_audiences([AUDIENCE])
            .bound_to_pod(pod),
    );
    name.to_string()
}

#[tokio::test]
async fn the_pod_gets_its_document_once() {
    let h = Harness::new().await;
    let (spec, sentinels) = spec(TrustPhase::Shadow, Complexity::Simple, MINUTES);
    let id = spec.investigation_id.clone();
    h.runtime.start(spec).await.unwrap();
    let pod = new_pod(&h, &id);
    let token = pod_token(&h, "tok-a", TrustPhase::Shadow, &pod);

    let doc = claim(&h, &token).await.unwrap();
    assert_eq!(doc["input"]["investigation_id"], id.as_str());
    assert_eq!(
        doc["result_credential"],
        sentinels.result_credential.as_str()
    );
    assert_eq!(
        doc["identity"]["credential"],
        sentinels.identity_credential.as_str()
    );
    // Addresses as the pod reaches the control plane, not its listen address.
    assert_eq!(
        doc["input"]["report_url"],
        format!("{CONTROL_PLANE}/api/v1/investigations/{id}/report")
    );
    assert_eq!(doc["identity"]["address"], CONTROL_PLANE);
    // The document parses as the agent reads it.
    let _: warden_core::JobInput = serde_json::from_value(doc).unwrap();

    let again = claim(&h, &token).await.unwrap_err();
    assert!(
        matches!(again, BootstrapError::AlreadyClaimed(_)),
        "{again}"
    );
    // The TokenReview asked for warden's audience.
    let reviews: Vec<_> = h
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.resource.as_deref() == Some("tokenreviews"))
        .collect();
    assert_eq!(reviews.len(), 2);
    assert_eq!(
        reviews[0].body.as_ref().unwrap()["spec"]["audiences"],
        json!([AUDIENCE])
    );
}

#[tokio::test]
async fn tokens_that_are_not_the_pod_s_own_get_nothing() {
    let h = Harness::new().await;
    let (spec, sentinels) = spec(TrustPhase::Shadow, Complexity::Simple, MINUTES);
    let id = spec.investigation_id.clone();
    h.runtime.start(spec).await.unwrap();
    let pod = new_pod(&h, &id);

    // Unknown to the API server.
    let e = claim(&h, "not-a-token").await.unwrap_err();
    assert!(matches!(e, BootstrapError::Unauthenticated(_)), "{e}");

    // The pod's service account, but a token for the API server's audience.
    h.fake.register_token(
        "tok-api-audience",
        ServiceAccountIdentity::new(NS, sa(TrustPhase::Shadow))
            .with_audiences([API_AUDIENCE])
            .bound_to_pod(&pod),
    );
    let e = claim(&h, "tok-api-audience").await.unwrap_err();
    assert!(matches!(e, BootstrapError::Unauthenticated(_)), "{e}");
    assert!(
        !e.to_string().contains("tok-api-audience"),
        "the token is quoted: {e}"
    );

    // A service account of another phase, bound to the pod.
    let other_phase = pod_token(&h, "tok-remediate", TrustPhase::Remediate, &pod);
    let e = claim(&h, &other_phase).await.unwrap_err();
    assert!(matches!(e, BootstrapError::Forbidden(_)), "{e}");
    assert!(e.to_string().contains("runs as"), "{e}");

    // A token not bound to any pod.
    h.fake.register_token(
        "tok-unbound",
        ServiceAccountIdentity::new(NS, sa(TrustPhase::Shadow)).with_audiences([AUDIENCE]),
    );
    let e = claim(&h, "tok-unbound").await.unwrap_err();
    assert!(matches!(e, BootstrapError::Forbidden(_)), "{e}");
    assert!(e.to_string().contains("not bound to a pod"), "{e}");

    // A pod someone made to look like the investigation's, not the Job's.
    h.fake
        .create(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "forged", "namespace": NS,
                "labels": {"warden.dev/investigation": id.as_str()}},
            "spec": {"serviceAccountName": sa(TrustPhase::Shadow),
                "containers": [{"name": "agent", "image": "x"}]}
        }))
        .unwrap();
    let forged = pod_token(&h, "tok-forged", TrustPhase::Shadow, "forged");
    let e = claim(&h, &forged).await.unwrap_err();
    assert!(matches!(e, BootstrapError::Forbidden(_)), "{e}");
    assert!(
        e.to_string().contains("not owned by the current Job"),
        "{e}"
    );

    // A pod in another namespace.
    h.fake
        .create(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "elsewhere", "namespace": "default",
                "labels": {"warden.dev/investigation": id.as_str()}},
            "spec": {"containers": [{"name": "agent", "image": "x"}]}
        }))
        .unwrap();
    h.fake.register_token(
        "tok-default-ns",
        ServiceAccountIdentity::new("default", "default")
            .with_audiences([AUDIENCE])
            .bound_to_pod("elsewhere"),
    );
    let e = claim(&h, "tok-default-ns").await.unwrap_err();
    assert!(matches!(e, BootstrapError::Forbidden(_)), "{e}");
    assert!(e.to_string().contains("namespace"), "{e}");

    // The pod of another investigation gets that investigation's document.
    let (other, other_sentinels) = common::spec(TrustPhase::Assist, Complexity::Simple, MINUTES);
    let other_id = other.investigation_id.clone();
    h.runtime.start(other).await.unwrap();
    let other_pod = new_pod(&h, &other_id);
    let other_token = pod_token(&h, "tok-other", TrustPhase::Assist, &other_pod);
    let doc = claim(&h, &other_token).await.unwrap();
    assert_eq!(doc["input"]["investigation_id"], other_id.as_str());
    assert_eq!(
        doc["result_credential"],
        other_sentinels.result_credential.as_str()
    );
    assert!(!doc.to_string().contains(&sentinels.result_credential));

    // None of that handed out or used up the first investigation's input.
    let token = pod_token(&h, "tok-a", TrustPhase::Shadow, &pod);
    let doc = claim(&h, &token).await.unwrap();
    assert_eq!(
        doc["result_credential"],
        sentinels.result_credential.as_str()
    );
}

#[tokio::test]
async fn a_retry_pod_claims_only_after_the_evicted_one_is_gone() {
    let h = Harness::new().await;
    let (spec, sentinels) = spec(TrustPhase::Shadow, Complexity::Simple, MINUTES);
    let id = spec.investigation_id.clone();
    h.runtime.start(spec).await.unwrap();
    let first = new_pod(&h, &id);
    h.fake
        .set_container_state(NS, &first, None, ContainerState::running())
        .unwrap();
    let first_token = pod_token(&h, "tok-1", TrustPhase::Shadow, &first);
    claim(&h, &first_token).await.unwrap();

    // A second pod while the first still runs gets nothing.
    let second = new_pod(&h, &id);
    let second_token = pod_token(&h, "tok-2", TrustPhase::Shadow, &second);
    let e = claim(&h, &second_token).await.unwrap_err();
    assert!(matches!(e, BootstrapError::AlreadyClaimed(_)), "{e}");

    // Once the first is evicted, its replacement may start the work again.
    h.fake.evict_pod(NS, &first).unwrap();
    let doc = claim(&h, &second_token).await.unwrap();
    assert_eq!(
        doc["result_credential"],
        sentinels.result_credential.as_str()
    );
    let e = claim(&h, &second_token).await.unwrap_err();
    assert!(matches!(e, BootstrapError::AlreadyClaimed(_)), "{e}");
}

#[tokio::test]
async fn nothing_is_handed_out_after_the_deadline_or_the_end() {
    let mut h = Harness::new().await;
    let (spec, _) = spec(
        TrustPhase::Shadow,
        Complexity::Simple,
        Duration::from_millis(800),
    );
    let id = spec.investigation_id.clone();
    h.runtime.start(spec).await.unwrap();
    let pod = new_pod(&h, &id);
    let token = pod_token(&h, "tok-late", TrustPhase::Shadow, &pod);
    tokio::time::sleep(Duration::from_millis(900)).await;
    let e = claim(&h, &token).await.unwrap_err();
    assert!(matches!(e, BootstrapError::Gone(_)), "{e}");

    let (spec, _) = common::spec(TrustPhase::Shadow, Complexity::Simple, MINUTES);
    let id = spec.investigation_id.clone();
    h.runtime.start(spec).await.unwrap();
    let pod = new_pod(&h, &id);
    let token = pod_token(&h, "tok-ended", TrustPhase::Shadow, &pod);
    h.runtime.cancel(&id).await.unwrap();
    h.next_event().await;
    // The pod went with its Job, and so did the input.
    let e = claim(&h, &token).await.unwrap_err();
    assert!(
        matches!(
            e,
            BootstrapError::Unauthenticated(_)
                | BootstrapError::Forbidden(_)
                | BootstrapError::Gone(_)
        ),
        "{e}"
    );
}

#[tokio::test]
async fn a_job_whose_input_was_lost_in_a_restart_is_started_again_and_a_stale_pod_gets_nothing() {
    let mut h = Harness::new().await;
    let (spec, sentinels) = spec(TrustPhase::Shadow, Complexity::Simple, MINUTES);
    let id = spec.investigation_id.clone();
    let deadline = spec.deadline;
    let again = common::spec_for(&spec);
    h.runtime.start(spec).await.unwrap();
    let name = job_name(&id);
    let old_pod = new_pod(&h, &id);
    let old_pod_obj = h.fake.object("Pod", Some(NS), &old_pod).unwrap();
    let first_uid = h.fake.object("Job", Some(NS), &name).unwrap()["metadata"]["uid"].clone();

    // The control plane restarts before the pod asked: the input is gone
    // with the old process, so the Job is removed, not watched in vain.
    let _old_events = h.restart();
    assert_eq!(
        h.runtime.adopt(&id, None, deadline).await.unwrap(),
        Adoption::Restart
    );
    assert!(h.fake.object("Job", Some(NS), &name).is_none());
    let log = std::fs::read_to_string(h.dir.path().join("jobs").join(id.as_str()).join("job.log"))
        .unwrap();
    assert!(log.contains("before the job received its input"), "{log}");

    // Started again: a new Job of the same name.
    h.runtime.start(again).await.unwrap();
    let second_uid = h.fake.object("Job", Some(NS), &name).unwrap()["metadata"]["uid"].clone();
    assert_ne!(first_uid, second_uid);

    // A pod of the deleted Job that the garbage collector has not removed
    // yet carries the right name and labels but the old owner uid.
    let mut stale = old_pod_obj;
    for field in ["uid", "resourceVersion", "creationTimestamp"] {
        stale["metadata"].as_object_mut().unwrap().remove(field);
    }
    stale["metadata"]["name"] = json!("stale-pod");
    h.fake.create(stale).unwrap();
    let stale_token = pod_token(&h, "tok-stale", TrustPhase::Shadow, "stale-pod");
    let refused = claim(&h, &stale_token).await.unwrap_err();
    assert!(
        matches!(&refused, BootstrapError::Forbidden(m) if m.contains("not owned by the current Job")),
        "{refused}"
    );

    // The new Job's own pod gets the input, and the claim is on the Job.
    let pod = new_pod(&h, &id);
    let token = pod_token(&h, "tok-new", TrustPhase::Shadow, &pod);
    let doc = claim(&h, &token).await.unwrap();
    // The second start's document, with its own credential.
    assert_ne!(
        doc["result_credential"],
        sentinels.result_credential.as_str()
    );
    assert!(
        doc["result_credential"]
            .as_str()
            .unwrap()
            .starts_with("SENTINEL-RETRY")
    );
    let job = h.fake.object("Job", Some(NS), &name).unwrap();
    assert_eq!(
        job["metadata"]["annotations"]["warden.dev/input-claimed-by"],
        pod.as_str()
    );

    // Restarting now re-adopts: the pod has its input.
    let _old_events = h.restart();
    assert_eq!(
        h.runtime.adopt(&id, None, deadline).await.unwrap(),
        Adoption::Adopted
    );
    assert!(h.fake.object("Job", Some(NS), &name).is_some());
}
