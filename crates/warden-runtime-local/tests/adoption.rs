//! Jobs outlive the control plane and are re-adopted by the next one,
//! never confused with an unrelated process that reuses their pid.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::{Duration, Instant};

use chrono::Utc;
use common::{
    Harness, Mode, assert_quiet, eventually, live_group_members, outcome, pid_of, profile, spec,
};
use warden_core::InvestigationId;
use warden_core::ports::{Adoption, JobOutcome, JobRuntime, RuntimeError};

async fn a_job_outlives_its_runtime_and_is_supervised_by_the_next(mode: Mode) {
    let mut h = Harness::new(mode);
    let (job, _) = spec("sleep:60", profile(), Duration::from_secs(3));
    let id = job.investigation_id.clone();
    let deadline = job.deadline;
    let handle = h.runtime.start(job).await.unwrap();
    let pid = pid_of(&handle.job_ref);

    let mut first_events = h.crash_and_restart();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(common::is_alive(pid), "the job died with its runtime");

    // The crash came before the control plane stored the job reference.
    assert_eq!(
        h.runtime.adopt(&id, None, deadline).await.unwrap(),
        Adoption::Adopted
    );
    // Adopting twice does not supervise twice.
    assert_eq!(
        h.runtime
            .adopt(&id, Some(&handle.job_ref), deadline)
            .await
            .unwrap(),
        Adoption::Adopted
    );
    assert_eq!(h.runtime.running(), 1);
    // Nor may a second job start beside it.
    let (mut again, _) = spec("echo", profile(), Duration::from_secs(5));
    again.investigation_id = id.clone();
    assert!(matches!(
        h.runtime.start(again).await,
        Err(RuntimeError::Start { .. })
    ));

    let event = h.next_event().await;
    assert_eq!(event.investigation_id, id);
    assert_eq!(outcome(&event), &JobOutcome::DeadlineExceeded);
    assert!(Utc::now() >= deadline);
    assert!(live_group_members(pid).is_empty());
    assert_quiet(&mut h.events).await;
    assert!(
        first_events.try_recv().is_err(),
        "the dropped runtime still reported"
    );
}

#[tokio::test]
async fn a_job_outlives_its_runtime_and_is_supervised_by_the_next_under_cgroups() {
    a_job_outlives_its_runtime_and_is_supervised_by_the_next(Mode::Cgroups).await;
}

#[tokio::test]
async fn a_job_outlives_its_runtime_and_is_supervised_by_the_next_under_rlimits() {
    a_job_outlives_its_runtime_and_is_supervised_by_the_next(Mode::Rlimits).await;
}

#[tokio::test]
async fn an_adopted_job_can_be_cancelled() {
    let mut h = Harness::new(Mode::Cgroups);
    let (spec, _) = spec("sleep:60", profile(), Duration::from_secs(60));
    let id = spec.investigation_id.clone();
    let deadline = spec.deadline;
    let handle = h.runtime.start(spec).await.unwrap();
    h.crash_and_restart();

    assert_eq!(
        h.runtime
            .adopt(&id, Some(&handle.job_ref), deadline)
            .await
            .unwrap(),
        Adoption::Adopted
    );
    let asked = Instant::now();
    h.runtime.cancel(&id).await.unwrap();
    let event = h.next_event().await;
    assert_eq!(outcome(&event), &JobOutcome::Cancelled);
    assert!(asked.elapsed() < Duration::from_secs(3));
    assert!(live_group_members(pid_of(&handle.job_ref)).is_empty());
    assert_eq!(h.runtime.running(), 0);
}

#[tokio::test]
async fn a_job_that_ended_while_no_one_watched_cannot_be_adopted() {
    let mut h = Harness::new(Mode::Cgroups);
    let (spec, _) = spec("exit:0", profile(), Duration::from_secs(20));
    let id = spec.investigation_id.clone();
    let deadline = spec.deadline;
    let handle = h.runtime.start(spec).await.unwrap();
    h.next_event().await;

    h.crash_and_restart();
    assert_eq!(
        h.runtime
            .adopt(&id, Some(&handle.job_ref), deadline)
            .await
            .unwrap(),
        Adoption::Gone
    );
    assert_eq!(
        h.runtime.adopt(&id, None, deadline).await.unwrap(),
        Adoption::Gone
    );
    assert_eq!(h.runtime.running(), 0);
    assert_quiet(&mut h.events).await;
}

#[tokio::test]
async fn an_investigation_without_any_job_cannot_be_adopted() {
    let h = Harness::new(Mode::Rlimits);
    let id = InvestigationId::generate();
    assert_eq!(
        h.runtime.adopt(&id, None, Utc::now()).await.unwrap(),
        Adoption::Gone
    );
}

#[tokio::test]
async fn a_live_process_with_another_start_time_is_not_taken_for_the_job() {
    let mut h = Harness::new(Mode::Rlimits);
    let (spec, _) = spec("sleep:60", profile(), Duration::from_secs(60));
    let id = spec.investigation_id.clone();
    let deadline = spec.deadline;
    let handle = h.runtime.start(spec).await.unwrap();
    let pid = pid_of(&handle.job_ref);
    h.crash_and_restart();

    // The record now names the same pid but a different process.
    let record_path = h.job_record(&id);
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record_path).unwrap()).unwrap();
    let start_time = record["start_time"].as_u64().unwrap();
    record["start_time"] = (start_time + 1).into();
    std::fs::write(&record_path, serde_json::to_vec(&record).unwrap()).unwrap();
    let wrong_ref = format!("pid:{pid}:{}", start_time + 1);

    assert_eq!(
        h.runtime
            .adopt(&id, Some(&wrong_ref), deadline)
            .await
            .unwrap(),
        Adoption::Gone
    );
    // The process that holds the pid is left alone.
    assert!(common::is_alive(pid));
    assert_quiet(&mut h.events).await;

    // So is this very process when a stale reference names its pid.
    let me = i32::try_from(std::process::id()).unwrap();
    let other = InvestigationId::generate();
    assert_eq!(
        h.runtime
            .adopt(&other, Some(&format!("pid:{me}:1")), deadline)
            .await
            .unwrap(),
        Adoption::Gone
    );

    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(eventually(Duration::from_secs(2), || !common::is_alive(pid)).await);
}
