#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The runtime against the fake API server: how Jobs start, end, are
//! logged, re-adopted and cleaned up.

mod common;

use std::time::Duration;

use secrecy::SecretString;
use serde_json::Value;
use warden_core::ports::{Adoption, JobBootstrap, JobOutcome, JobRuntime};
use warden_core::{Complexity, TrustPhase};
use warden_kube_fake::{ContainerState, FakeApiServer, ServiceAccountIdentity};
use warden_runtime_kube::job_name;

use common::*;

const MINUTES: Duration = Duration::from_secs(600);

fn pod_name(pod: &Value) -> String {
    pod["metadata"]["name"].as_str().unwrap().to_string()
}

fn jobs_in(fake: &FakeApiServer) -> Vec<Value> {
    fake.objects("Job")
}

/// Plays the Job controller: one pod for the Job, running.
fn running_pod(fake: &FakeApiServer, job: &str) -> String {
    let pod = pod_name(&fake.create_pod_for_job(NS, job).unwrap());
    fake.set_container_state(NS, &pod, None, ContainerState::running())
        .unwrap();
    pod
}

#[tokio::test]
async fn a_job_runs_and_succeeds_with_its_log_streamed() {
    let mut h = Harness::new().await;
    let (spec, _) = spec(TrustPhase::Shadow, Complexity::Simple, MINUTES);
    let id = spec.investigation_id.clone();
    let handle = h.runtime.start(spec).await.unwrap();
    let name = job_name(&id);
    assert!(handle.job_ref.contains(&name), "{handle:?}");

    let job = h
        .fake
        .object("Job", Some(NS), &name)
        .expect("the Job exists");
    assert_eq!(
        job["metadata"]["labels"]["warden.dev/investigation"],
        id.as_str()
    );
    assert_eq!(
        job["spec"]["template"]["spec"]["serviceAccountName"],
        "warden-agent-shadow"
    );

    let pod = running_pod(&h.fake, &name);
    h.fake
        .append_pod_log(NS, &pod, "{\"event\":\"started\"}\n")
        .unwrap();
    let log_path = h.log_path(&id);
    // Streamed as written, not after the end.
    eventually("the first log line", || {
        std::fs::read_to_string(&log_path).is_ok_and(|t| t.contains("\"started\""))
    })
    .await;
    h.fake
        .append_pod_log(NS, &pod, "{\"event\":\"report_delivered\"}\n")
        .unwrap();
    h.fake
        .set_container_state(NS, &pod, None, ContainerState::completed())
        .unwrap();
    h.fake.sync_job(NS, &name).unwrap();

    let event = h.next_event().await;
    assert_eq!(event.investigation_id, id);
    assert_eq!(outcome(&event), &JobOutcome::Exited { code: 0 });
    let log = h.runtime.logs(&id).await.unwrap();
    assert!(log.contains("report_delivered"), "{log}");
    assert!(log.contains("job ended: exited with code 0"), "{log}");
    assert_eq!(h.runtime.watching(), 0);
    assert_quiet(&mut h.events).await;
    // Watched (not polled) by label; the log followed.
    let requests = h.fake.requests();
    let selector = format!("warden.dev%2Finvestigation%3D{id}");
    for resource in ["jobs", "pods"] {
        assert!(
            requests.iter().any(|r| r.verb == "watch"
                && r.resource.as_deref() == Some(resource)
                && r.query.contains(&selector)),
            "no watch on {resource} by label: {requests:?}"
        );
    }
    assert!(
        requests
            .iter()
            .any(|r| r.resource.as_deref() == Some("pods/log") && r.query.contains("follow=true"))
    );
}

#[tokio::test]
async fn an_oom_kill_fails_the_job_as_out_of_memory() {
    let mut h = Harness::new().await;
    let (spec, _) = spec(TrustPhase::Assist, Complexity::Moderate, MINUTES);
    let id = spec.investigation_id.clone();
    h.runtime.start(spec).await.unwrap();
    let name = job_name(&id);
    let pod = running_pod(&h.fake, &name);
    h.fake
        .set_container_state(NS, &pod, None, ContainerState::oom_killed())
        .unwrap();
    // The pod failure policy fails the Job at once: no retry of an OOM kill.
    let job = h.fake.sync_job(NS, &name).unwrap();
    assert!(job.to_string().contains("PodFailurePolicy"), "{job}");
    let event = h.next_event().await;
    let JobOutcome::OutOfMemory { detail } = outcome(&event) else {
        panic!("{event:?}")
    };
    assert!(
        detail.contains("OOMKilled") && detail.contains(&pod),
        "{detail}"
    );
}

#[tokio::test]
async fn the_deadline_ends_the_job_as_deadline_exceeded() {
    let mut h = Harness::new().await;
    let (spec, _) = spec(
        TrustPhase::Shadow,
        Complexity::Simple,
        Duration::from_secs(1),
    );
    let id = spec.investigation_id.clone();
    h.runtime.start(spec).await.unwrap();
    let name = job_name(&id);
    let job = h.fake.object("Job", Some(NS), &name).unwrap();
    assert_eq!(job["spec"]["activeDeadlineSeconds"], 1);
    running_pod(&h.fake, &name);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    // The controller notices activeDeadlineSeconds has passed.
    h.fake.sync_job(NS, &name).unwrap();
    let event = h.next_event().await;
    assert_eq!(outcome(&event), &JobOutcome::DeadlineExceeded);
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled_fails_the_job_after_the_grace() {
    let mut h = Harness::with(|s| s.image_pull_grace = Duration::from_millis(300)).await;
    let (spec, _) = spec(TrustPhase::Shadow, Complexity::Simple, MINUTES);
    let id = spec.investigation_id.clone();
    h.runtime.start(spec).await.unwrap();
    let name = job_name(&id);
    let pod = pod_name(&h.fake.create_pod_for_job(NS, &name).unwrap());
    h.fake
        .set_container_state(
            NS,
            &pod,
            None,
            ContainerState::err_image_pull(&h.settings.image),
        )
        .unwrap();
    h.fake
        .set_container_state(
            NS,
            &pod,
            None,
            ContainerState::image_pull_back_off(&h.settings.image),
        )
        .unwrap();
    let started = std::time::Instant::now();
    let event = h.next_event().await;
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "failed before the grace"
    );
    let JobOutcome::Killed { detail } = outcome(&event) else {
        panic!("{event:?}")
    };
    assert!(detail.contains("ImagePullBackOff"), "{detail}");
    assert!(detail.contains(&h.settings.image), "{detail}");
    assert!(
        h.fake.object("Job", Some(NS), &name).is_none(),
        "the Job was not deleted"
    );
}

#[tokio::test]
async fn an_evicted_pod_is_retried_and_the_retry_succeeds() {
    let mut h = Harness::new().await;
    let (spec, _) = spec(TrustPhase::Shadow, Complexity::Simple, MINUTES);
    let id = spec.investigation_id.clone();
    h.runtime.start(spec).await.unwrap();
    let name = job_name(&id);
    let first = running_pod(&h.fake, &name);
    h.fake.evict_pod(NS, &first).unwrap();
    let job = h.fake.sync_job(NS, &name).unwrap();
    // The disruption is ignored by the pod failure policy: the Job runs on.
    let conditions = job["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        !conditions
            .iter()
            .any(|c| c["type"] == "Failed" || c["type"] == "FailureTarget"),
        "{job}"
    );
    assert_quiet(&mut h.events).await;

    let second = running_pod(&h.fake, &name);
    h.fake
        .append_pod_log(NS, &second, "retry running\n")
        .unwrap();
    h.fake
        .set_container_state(NS, &second, None, ContainerState::completed())
        .unwrap();
    h.fake.sync_job(NS, &name).unwrap();
    let event = h.next_event().await;
    assert_eq!(outcome(&event), &JobOutcome::Exited { code: 0 });
    let log = h.runtime.logs(&id).await.unwrap();
    assert!(
        log.contains(&format!("pod {first} was disrupted (Evicted")),
        "{log}"
    );
    assert!(log.contains("retry running"), "{log}");
}

#[tokio::test]
async fn crashes_beyond_the_backoff_limit_fail_with_the_last_exit_code() {
    let mut h = Harness::with(|s| s.backoff_limit = 1).await;
    let (spec, _) = spec(TrustPhase::Shadow, Complexity::Simple, MINUTES);
    let id = spec.investigation_id.clone();
    h.runtime.start(spec).await.unwrap();
    let name = job_name(&id);
    for _ in 0..2 {
        let pod = running_pod(&h.fake, &name);
        h.fake
            .set_container_state(NS, &pod, None, ContainerState::error(101))
            .unwrap();
        h.fake.sync_job(NS, &name).unwrap();
    }
    let event = h.next_event().await;
    let JobOutcome::Killed { detail } = outcome(&event) else {
        panic!("{event:?}")
    };
    assert!(detail.starts_with("BackoffLimitExceeded"), "{detail}");
    assert!(detail.contains("code 101"), "{detail}");
}

#[tokio::test]
async fn a_restarted_control_plane_re_adopts_the_job_and_never_creates_a_second() {
    let mut h = Harness::new().await;
    let (spec, _) = spec(TrustPhase::Shadow, Complexity::Simple, MINUTES);
    let id = spec.investigation_id.clone();
    let deadline = spec.deadline;
    let handle = h.runtime.start(spec).await.unwrap();
    let name = job_name(&id);
    let pod = running_pod(&h.fake, &name);
    h.fake.register_token(
        "pod-token",
        ServiceAccountIdentity::new(NS, sa(TrustPhase::Shadow))
            .with_audiences([AUDIENCE])
            .bound_to_pod(&pod),
    );
    h.runtime
        .claim(&SecretString::from("pod-token"))
        .await
        .unwrap();
    h.fake
        .append_pod_log(NS, &pod, "before the crash\n")
        .unwrap();

    let mut old_events = h.restart();
    assert_eq!(
        h.runtime
            .adopt(&id, Some(&handle.job_ref), deadline)
            .await
            .unwrap(),
        Adoption::Adopted
    );
    // Adopting twice is harmless.
    assert_eq!(
        h.runtime.adopt(&id, None, deadline).await.unwrap(),
        Adoption::Adopted
    );
    assert_eq!(
        h.runtime.list_investigations().await.unwrap(),
        vec![id.clone()]
    );
    assert_eq!(jobs_in(&h.fake).len(), 1);

    h.fake
        .set_container_state(NS, &pod, None, ContainerState::completed())
        .unwrap();
    h.fake.sync_job(NS, &name).unwrap();
    let event = h.next_event().await;
    assert_eq!(outcome(&event), &JobOutcome::Exited { code: 0 });
    assert_quiet(&mut old_events).await;
    assert_eq!(jobs_in(&h.fake).len(), 1);

    // Nothing to adopt for an investigation that never had a Job.
    let (other, _) = common::spec(TrustPhase::Shadow, Complexity::Simple, MINUTES);
    assert_eq!(
        h.runtime
            .adopt(&other.investigation_id, None, deadline)
            .await
            .unwrap(),
        Adoption::Gone
    );
}

#[tokio::test]
async fn a_job_that_ended_while_no_one_watched_is_reported_on_adoption() {
    let mut h = Harness::new().await;
    let (spec, _) = spec(TrustPhase::Shadow, Complexity::Simple, MINUTES);
    let id = spec.investigation_id.clone();
    let deadline = spec.deadline;
    h.runtime.start(spec).await.unwrap();
    let name = job_name(&id);
    let mut old = h.restart();
    let pod = running_pod(&h.fake, &name);
    h.fake
        .set_container_state(NS, &pod, None, ContainerState::oom_killed())
        .unwrap();
    h.fake.sync_job(NS, &name).unwrap();
    assert_eq!(
        h.runtime.adopt(&id, None, deadline).await.unwrap(),
        Adoption::Adopted
    );
    let event = h.next_event().await;
    assert!(
        matches!(outcome(&event), JobOutcome::OutOfMemory { .. }),
        "{event:?}"
    );
    assert_quiet(&mut old).await;
}

#[tokio::test]
async fn a_create_answered_409_adopts_the_existing_job() {
    let mut h = Harness::new().await;
    let (spec, _) = spec(TrustPhase::Shadow, Complexity::Simple, MINUTES);
    let id = spec.investigation_id.clone();
    let again = common::spec_for(&spec);
    h.runtime.start(spec).await.unwrap();
    let name = job_name(&id);
    let uid = h.fake.object("Job", Some(NS), &name).unwrap()["metadata"]["uid"].clone();

    // A control plane that crashed before recording the start starts again.
    let _old = h.restart();
    h.fake.clear_requests();
    let handle = h.runtime.start(again).await.unwrap();
    let creates: Vec<_> = h
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.verb == "create" && r.resource.as_deref() == Some("jobs"))
        .collect();
    assert_eq!(creates.len(), 1);
    assert_eq!(creates[0].status, 409);
    assert_eq!(jobs_in(&h.fake).len(), 1);
    assert!(
        handle.job_ref.ends_with(uid.as_str().unwrap()),
        "{handle:?}"
    );
    assert!(
        h.runtime
            .logs(&id)
            .await
            .unwrap()
            .contains("already existed; adopted it")
    );

    let pod = running_pod(&h.fake, &name);
    h.fake
        .set_container_state(NS, &pod, None, ContainerState::completed())
        .unwrap();
    h.fake.sync_job(NS, &name).unwrap();
    assert_eq!(
        outcome(&h.next_event().await),
        &JobOutcome::Exited { code: 0 }
    );
}

#[tokio::test]
async fn cleanup_deletes_the_job_with_background_propagation() {
    let mut h = Harness::new().await;
    let (spec, _) = spec(TrustPhase::Shadow, Complexity::Simple, MINUTES);
    let id = spec.investigation_id.clone();
    h.runtime.start(spec).await.unwrap();
    let name = job_name(&id);
    let pod = running_pod(&h.fake, &name);
    // Not while it runs.
    assert!(h.runtime.cleanup(&id).await.is_err());
    h.fake
        .set_container_state(NS, &pod, None, ContainerState::completed())
        .unwrap();
    h.fake.sync_job(NS, &name).unwrap();
    h.next_event().await;

    h.fake.clear_requests();
    h.runtime.cleanup(&id).await.unwrap();
    let deletes: Vec<_> = h
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.verb == "delete")
        .collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert_eq!(deletes[0].resource.as_deref(), Some("jobs"));
    assert_eq!(deletes[0].name.as_deref(), Some(name.as_str()));
    let policy = deletes[0]
        .body
        .as_ref()
        .and_then(|b| b["propagationPolicy"].as_str().map(str::to_string))
        .unwrap_or_else(|| deletes[0].query.clone());
    assert!(policy.contains("Background"), "{deletes:?}");
    assert!(h.fake.object("Job", Some(NS), &name).is_none());
    // The pod went with it (background propagation), the log stayed.
    assert!(h.fake.object("Pod", Some(NS), &pod).is_none());
    assert!(h.runtime.logs(&id).await.is_ok());
    // Idempotent.
    h.runtime.cleanup(&id).await.unwrap();
}

#[tokio::test]
async fn a_kept_job_is_not_deleted_on_cleanup() {
    let mut h = Harness::with(|s| s.keep_finished_jobs = true).await;
    let (spec, _) = spec(TrustPhase::Shadow, Complexity::Simple, MINUTES);
    let id = spec.investigation_id.clone();
    h.runtime.start(spec).await.unwrap();
    let name = job_name(&id);
    h.fake.complete_job(NS, &name).unwrap();
    h.next_event().await;
    h.runtime.cleanup(&id).await.unwrap();
    assert!(h.fake.object("Job", Some(NS), &name).is_some());
}

#[tokio::test]
async fn cancel_deletes_the_job_and_reports_cancelled_once() {
    let mut h = Harness::new().await;
    let (spec, _) = spec(TrustPhase::Shadow, Complexity::Simple, MINUTES);
    let id = spec.investigation_id.clone();
    h.runtime.start(spec).await.unwrap();
    let name = job_name(&id);
    running_pod(&h.fake, &name);
    h.runtime.cancel(&id).await.unwrap();
    assert_eq!(outcome(&h.next_event().await), &JobOutcome::Cancelled);
    assert!(h.fake.object("Job", Some(NS), &name).is_none());
    assert_quiet(&mut h.events).await;
    assert!(h.runtime.cancel(&id).await.is_err());
}

#[tokio::test]
async fn a_job_deleted_behind_warden_s_back_is_reported() {
    let mut h = Harness::new().await;
    let (spec, _) = spec(TrustPhase::Shadow, Complexity::Simple, MINUTES);
    let id = spec.investigation_id.clone();
    h.runtime.start(spec).await.unwrap();
    h.fake.delete("Job", Some(NS), &job_name(&id)).unwrap();
    let event = h.next_event().await;
    let JobOutcome::Killed { detail } = outcome(&event) else {
        panic!("{event:?}")
    };
    assert!(detail.contains("deleted outside warden"), "{detail}");
}

#[tokio::test]
async fn no_secret_reaches_the_job_spec() {
    let mut h = Harness::with(|s| s.vault_agent_injector = true).await;
    let (spec, sentinels) = spec(TrustPhase::Remediate, Complexity::MultiDomain, MINUTES);
    let id = spec.investigation_id.clone();
    h.runtime.start(spec).await.unwrap();
    let name = job_name(&id);
    let pod = pod_name(&h.fake.create_pod_for_job(NS, &name).unwrap());
    let job = h.fake.object("Job", Some(NS), &name).unwrap();
    let pod = h.fake.object("Pod", Some(NS), &pod).unwrap();
    let mut everything = String::new();
    for object in [&job, &pod] {
        everything.push_str(&serde_yaml::to_string(object).unwrap());
    }
    // Everything the runtime sent to the API server, too.
    for r in h.fake.requests() {
        if let Some(body) = &r.body {
            everything.push_str(&body.to_string());
        }
        everything.push_str(&r.query);
    }
    for secret in [&sentinels.result_credential, &sentinels.identity_credential] {
        assert!(
            !everything.contains(secret.as_str()),
            "a secret reached the API server"
        );
    }
    assert!(
        !everything.contains("SENTINEL"),
        "a secret reached the API server"
    );
    assert!(!everything.contains("secretKeyRef") && !everything.contains("envFrom"));
    h.runtime.cancel(&id).await.unwrap();
    h.next_event().await;
}
