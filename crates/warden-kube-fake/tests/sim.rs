#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

//! The simulation helpers write what the Job controller and kubelet write.

mod common;

use common::{api_error, fake, job};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use warden_kube_fake::{ContainerState, FakeError, JobFailureReason, PodPhase};

fn condition<'a>(job: &'a Job, t: &str) -> Option<&'a k8s_openapi::api::batch::v1::JobCondition> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == t)
}

#[tokio::test]
async fn pods_for_jobs_carry_the_controller_labels_and_owner() {
    let fake = fake().await;
    let jobs: Api<Job> = Api::namespaced(fake.client(), "warden");
    let created = jobs
        .create(&PostParams::default(), &job("inv-7", json!({})))
        .await
        .unwrap();
    let uid = created.metadata.uid.clone().unwrap();
    fake.create_pod_for_job("warden", "inv-7").unwrap();

    let pods: Api<Pod> = Api::namespaced(fake.client(), "warden");
    let found = pods
        .list(&ListParams::default().labels("batch.kubernetes.io/job-name=inv-7"))
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1);
    let p = &found.items[0];
    assert!(p.metadata.name.as_deref().unwrap().starts_with("inv-7-"));
    let labels = p.metadata.labels.as_ref().unwrap();
    assert_eq!(labels["job-name"], "inv-7");
    assert_eq!(labels["controller-uid"], uid);
    assert_eq!(labels["batch.kubernetes.io/controller-uid"], uid);
    assert_eq!(labels["app"], "agent", "template labels kept");
    let owner = &p.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("Job", uid.as_str(), Some(true))
    );
    assert_eq!(p.status.as_ref().unwrap().phase.as_deref(), Some("Pending"));

    let j = jobs.get("inv-7").await.unwrap();
    assert_eq!(j.status.as_ref().unwrap().active, Some(1));
    assert!(j.status.unwrap().start_time.is_some());
}

#[tokio::test]
async fn pod_service_account_must_exist() {
    let fake = fake().await;
    let jobs: Api<Job> = Api::namespaced(fake.client(), "warden");
    let mut j = job("sa-missing", json!({}));
    j.spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .service_account_name = Some("warden-agent-shadow".into());
    jobs.create(&PostParams::default(), &j).await.unwrap();
    match fake.create_pod_for_job("warden", "sa-missing").unwrap_err() {
        FakeError::Api(e) => {
            assert_eq!(e.code, 403);
            assert!(
                e.message
                    .contains("serviceaccount \"warden-agent-shadow\" not found"),
                "{}",
                e.message
            );
        }
        other => panic!("expected an API error, got {other}"),
    }
}

#[tokio::test]
async fn oom_killed_pod_fails_the_job_with_backoff_limit_exceeded() {
    let fake = fake().await;
    let jobs: Api<Job> = Api::namespaced(fake.client(), "warden");
    jobs.create(&PostParams::default(), &job("oom", json!({})))
        .await
        .unwrap();
    let pod = fake.create_pod_for_job("warden", "oom").unwrap();
    let name = pod["metadata"]["name"].as_str().unwrap().to_string();

    let running = fake
        .set_container_state("warden", &name, None, ContainerState::running())
        .unwrap();
    assert_eq!(running["status"]["phase"], "Running");
    fake.sync_job("warden", "oom").unwrap();
    assert!(condition(&jobs.get("oom").await.unwrap(), "Failed").is_none());

    let dead = fake
        .set_container_state("warden", &name, None, ContainerState::oom_killed())
        .unwrap();
    assert_eq!(dead["status"]["phase"], "Failed", "restartPolicy Never");
    let term = &dead["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(
        (term["reason"].as_str(), term["exitCode"].as_i64()),
        (Some("OOMKilled"), Some(137))
    );

    fake.sync_job("warden", "oom").unwrap();
    let j = jobs.get("oom").await.unwrap();
    let failed = condition(&j, "Failed").unwrap();
    assert_eq!(
        (failed.status.as_str(), failed.reason.as_deref()),
        ("True", Some("BackoffLimitExceeded"))
    );
    assert_eq!(
        failed.message.as_deref(),
        Some("Job has reached the specified backoff limit")
    );
    assert!(
        condition(&j, "FailureTarget").is_some(),
        "FailureTarget precedes Failed in 1.33"
    );
    assert_eq!(j.status.as_ref().unwrap().failed, Some(1));
    assert_eq!(j.status.as_ref().unwrap().active, Some(0));
    // A finished Job gets no more pods.
    assert!(fake.create_pod_for_job("warden", "oom").is_err());
}

#[tokio::test]
async fn pod_failure_policy_fail_job_on_exit_code() {
    let fake = fake().await;
    let jobs: Api<Job> = Api::namespaced(fake.client(), "warden");
    let mut j = job("pfp", json!({}));
    let spec = j.spec.as_mut().unwrap();
    spec.backoff_limit = Some(3);
    spec.pod_failure_policy = Some(
        serde_json::from_value(json!({"rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}}
        ]}))
        .unwrap(),
    );
    let created = jobs.create(&PostParams::default(), &j).await.unwrap();
    assert_eq!(
        created.spec.unwrap().pod_replacement_policy.as_deref(),
        Some("Failed")
    );

    // An evicted pod matches the Ignore rule: not counted.
    let p1 = fake.create_pod_for_job("warden", "pfp").unwrap();
    let p1 = p1["metadata"]["name"].as_str().unwrap().to_string();
    fake.set_container_state("warden", &p1, None, ContainerState::running())
        .unwrap();
    let evicted = fake.evict_pod("warden", &p1).unwrap();
    assert_eq!(evicted["status"]["reason"], "Evicted");
    assert_eq!(evicted["status"]["phase"], "Failed");
    let disruption = evicted["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "DisruptionTarget")
        .unwrap()
        .clone();
    assert_eq!(
        (disruption["status"].as_str(), disruption["reason"].as_str()),
        (Some("True"), Some("TerminationByKubelet"))
    );
    let after = fake.sync_job("warden", "pfp").unwrap();
    assert!(
        after["status"].get("failed").is_none(),
        "ignored failure is not counted: {after}"
    );

    let p2 = fake.create_pod_for_job("warden", "pfp").unwrap();
    let p2 = p2["metadata"]["name"].as_str().unwrap().to_string();
    fake.set_container_state("warden", &p2, None, ContainerState::error(42))
        .unwrap();
    fake.sync_job("warden", "pfp").unwrap();
    let j = jobs.get("pfp").await.unwrap();
    let failed = condition(&j, "Failed").unwrap();
    assert_eq!(failed.reason.as_deref(), Some("PodFailurePolicy"));
    assert_eq!(
        failed.message.as_deref().unwrap(),
        format!(
            "Container main for pod warden/{p2} failed with exit code 42 matching FailJob rule at index 1"
        )
    );

    let events: Api<Event> = Api::namespaced(fake.client(), "warden");
    let evs = events
        .list(&ListParams::default().fields(&format!("involvedObject.name={p1},reason=Evicted")))
        .await
        .unwrap();
    assert_eq!(evs.items.len(), 1);
    assert_eq!(evs.items[0].type_.as_deref(), Some("Warning"));
}

#[tokio::test]
async fn deadline_exceeded_and_explicit_conditions() {
    let fake = fake().await;
    let jobs: Api<Job> = Api::namespaced(fake.client(), "warden");
    let mut j = job("slow", json!({}));
    j.spec.as_mut().unwrap().active_deadline_seconds = Some(1);
    jobs.create(&PostParams::default(), &j).await.unwrap();
    let pod = fake.create_pod_for_job("warden", "slow").unwrap();
    let pod_name = pod["metadata"]["name"].as_str().unwrap().to_string();
    fake.set_pod_phase("warden", &pod_name, PodPhase::Running)
        .unwrap();
    // Backdate the start so the deadline has passed.
    fake.update_status(
        "jobs",
        Some("warden"),
        "slow",
        json!({"startTime": "2020-01-01T00:00:00Z"}),
    )
    .unwrap();
    fake.sync_job("warden", "slow").unwrap();
    let j = jobs.get("slow").await.unwrap();
    let failed = condition(&j, "Failed").unwrap();
    assert_eq!(failed.reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(
        failed.message.as_deref(),
        Some("Job was active longer than specified deadline")
    );
    assert!(
        fake.object("pods", Some("warden"), &pod_name).is_none(),
        "active pods are deleted"
    );

    jobs.create(&PostParams::default(), &job("fast", json!({})))
        .await
        .unwrap();
    fake.fail_job("warden", "fast", JobFailureReason::BackoffLimitExceeded)
        .unwrap();
    assert_eq!(
        condition(&jobs.get("fast").await.unwrap(), "Failed")
            .unwrap()
            .reason
            .as_deref(),
        Some("BackoffLimitExceeded")
    );
}

#[tokio::test]
async fn successful_pod_completes_the_job() {
    let fake = fake().await;
    let jobs: Api<Job> = Api::namespaced(fake.client(), "warden");
    jobs.create(&PostParams::default(), &job("ok", json!({})))
        .await
        .unwrap();
    let pod = fake.create_pod_for_job("warden", "ok").unwrap();
    let name = pod["metadata"]["name"].as_str().unwrap().to_string();
    fake.set_container_state("warden", &name, None, ContainerState::running())
        .unwrap();
    let done = fake
        .set_container_state("warden", &name, None, ContainerState::completed())
        .unwrap();
    assert_eq!(done["status"]["phase"], "Succeeded");
    fake.sync_job("warden", "ok").unwrap();
    let j = jobs.get("ok").await.unwrap();
    let complete = condition(&j, "Complete").unwrap();
    assert_eq!(
        (complete.status.as_str(), complete.reason.as_deref()),
        ("True", Some("CompletionsReached"))
    );
    assert!(condition(&j, "SuccessCriteriaMet").is_some());
    let status = j.status.unwrap();
    assert_eq!(status.succeeded, Some(1));
    assert!(status.completion_time.is_some());
}

#[tokio::test]
async fn image_pull_back_off_is_reported_like_the_kubelet() {
    let fake = fake().await;
    let jobs: Api<Job> = Api::namespaced(fake.client(), "warden");
    jobs.create(&PostParams::default(), &job("pull", json!({})))
        .await
        .unwrap();
    let pod = fake.create_pod_for_job("warden", "pull").unwrap();
    let name = pod["metadata"]["name"].as_str().unwrap().to_string();
    let p = fake
        .set_container_state(
            "warden",
            &name,
            None,
            ContainerState::image_pull_back_off("ghcr.io/warden/agent:1.0"),
        )
        .unwrap();
    assert_eq!(p["status"]["phase"], "Pending");
    assert_eq!(
        p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
        "ImagePullBackOff"
    );
    let ready = p["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap()
        .clone();
    assert_eq!(ready["reason"], "ContainersNotReady");
    let events: Api<Event> = Api::namespaced(fake.client(), "warden");
    let evs = events
        .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
        .await
        .unwrap();
    assert_eq!(evs.items[0].reason.as_deref(), Some("BackOff"));
    assert_eq!(
        evs.items[0].message.as_deref(),
        Some("Back-off pulling image \"ghcr.io/warden/agent:1.0\"")
    );
    // The pod spec stays immutable for clients even though the kubelet
    // bound it to a node.
    let pods: Api<Pod> = Api::namespaced(fake.client(), "warden");
    let err = api_error(
        pods.patch(
            &name,
            &Default::default(),
            &kube::api::Patch::Merge(json!({"spec": {"restartPolicy": "Always"}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 422);
}

#[tokio::test]
async fn ttl_controller_deletes_finished_jobs_and_their_pods() {
    let fake = fake().await;
    let jobs: Api<Job> = Api::namespaced(fake.client(), "warden");
    let mut j = job("ttl", json!({}));
    j.spec.as_mut().unwrap().ttl_seconds_after_finished = Some(0);
    jobs.create(&PostParams::default(), &j).await.unwrap();
    let mut keep = job("keep", json!({}));
    keep.spec.as_mut().unwrap().ttl_seconds_after_finished = Some(3600);
    jobs.create(&PostParams::default(), &keep).await.unwrap();
    let pod = fake.create_pod_for_job("warden", "ttl").unwrap();
    let pod_name = pod["metadata"]["name"].as_str().unwrap().to_string();
    fake.create_pod_for_job("warden", "keep").unwrap();

    assert!(
        fake.run_ttl_controller().unwrap().is_empty(),
        "running jobs are kept"
    );
    fake.set_pod_phase("warden", &pod_name, PodPhase::Succeeded)
        .unwrap();
    fake.sync_job("warden", "ttl").unwrap();
    fake.complete_job("warden", "keep").unwrap();
    assert_eq!(fake.run_ttl_controller().unwrap(), ["warden/ttl"]);
    assert!(fake.object("jobs", Some("warden"), "ttl").is_none());
    assert!(
        fake.object("pods", Some("warden"), &pod_name).is_none(),
        "pods go with the job"
    );
    assert!(fake.object("jobs", Some("warden"), "keep").is_some());
}

#[tokio::test]
async fn await_condition_sees_the_job_complete() {
    use kube::runtime::wait::{await_condition, conditions};
    let fake = fake().await;
    let jobs: Api<Job> = Api::namespaced(fake.client(), "warden");
    jobs.create(&PostParams::default(), &job("wait", json!({})))
        .await
        .unwrap();
    let waiter = tokio::spawn(await_condition(
        jobs.clone(),
        "wait",
        conditions::is_job_completed(),
    ));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(!waiter.is_finished());
    fake.complete_job("warden", "wait").unwrap();
    let done = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
        .await
        .expect("completion seen within 5 s")
        .unwrap()
        .unwrap();
    assert!(condition(done.as_ref().unwrap(), "Complete").is_some());
}

#[tokio::test]
async fn deployment_controller_rolls_out_and_back_with_revisions() {
    use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
    let fake = fake().await;
    let deps: Api<Deployment> = Api::namespaced(fake.client(), "warden");
    let rss: Api<ReplicaSet> = Api::namespaced(fake.client(), "warden");
    let dep: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.26"}]}}
        }
    }))
    .unwrap();
    deps.create(&PostParams::default(), &dep).await.unwrap();
    let rs1 = fake.sync_deployment("warden", "web").unwrap();
    let rs1_name = rs1["metadata"]["name"].as_str().unwrap().to_string();
    let hash = rs1["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(rs1_name, format!("web-{hash}"));
    assert_eq!(
        rs1["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    assert_eq!(
        rs1["spec"]["selector"]["matchLabels"]["pod-template-hash"],
        hash.as_str()
    );
    assert_eq!(rs1["status"]["readyReplicas"], 3);
    let d = deps.get("web").await.unwrap();
    let status = d.status.unwrap();
    assert_eq!(
        (status.observed_generation, status.available_replicas),
        (Some(1), Some(3))
    );
    let available = status
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Available")
        .unwrap();
    assert_eq!(
        available.reason.as_deref(),
        Some("MinimumReplicasAvailable")
    );
    assert_eq!(
        fake.sync_deployment("warden", "web").unwrap()["metadata"]["name"],
        rs1_name.as_str(),
        "idempotent"
    );

    // A new image makes revision 2 and scales revision 1 down.
    deps.patch(
        "web",
        &Default::default(),
        &kube::api::Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}})),
    )
    .await
    .unwrap();
    let rs2 = fake.sync_deployment("warden", "web").unwrap();
    assert_ne!(rs2["metadata"]["name"], rs1_name.as_str());
    assert_eq!(
        rs2["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    assert_eq!(
        rss.get(&rs1_name).await.unwrap().spec.unwrap().replicas,
        Some(0)
    );

    // Rolling back to revision 1's template reuses its ReplicaSet as revision 3.
    let mut template = rss
        .get(&rs1_name)
        .await
        .unwrap()
        .spec
        .unwrap()
        .template
        .unwrap();
    template
        .metadata
        .as_mut()
        .unwrap()
        .labels
        .as_mut()
        .unwrap()
        .remove("pod-template-hash");
    deps.patch(
        "web",
        &Default::default(),
        &kube::api::Patch::Merge(json!({"spec": {"template": template}})),
    )
    .await
    .unwrap();
    let back = fake.sync_deployment("warden", "web").unwrap();
    assert_eq!(back["metadata"]["name"], rs1_name.as_str());
    assert_eq!(
        back["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
    assert_eq!(back["spec"]["replicas"], 3);
    let d = deps.get("web").await.unwrap();
    assert_eq!(
        d.metadata.annotations.unwrap()["deployment.kubernetes.io/revision"],
        "3"
    );
    assert_eq!(d.status.unwrap().observed_generation, d.metadata.generation);
}
