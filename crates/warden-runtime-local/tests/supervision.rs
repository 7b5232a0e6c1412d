//! How jobs end: deadlines, cancels, exit codes, and what is left after.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::{Duration, Instant};

use common::{
    Harness, Mode, assert_quiet, eventually, live_group_members, outcome, pid_of, profile, spec,
};
use warden_core::InvestigationId;
use warden_core::ports::{JobOutcome, JobRuntime, RuntimeError};

async fn busy_job_is_killed_at_its_deadline_with_its_whole_process_group(mode: Mode) {
    let mut h = Harness::new(mode);
    let (spec, _) = spec("loop", profile(), Duration::from_secs(2));
    let id = spec.investigation_id.clone();
    let started = Instant::now();
    let handle = h.runtime.start(spec).await.unwrap();
    let group = pid_of(&handle.job_ref);
    let child_pid_file = h.work_dir(&id).join("child.pid");
    assert!(eventually(Duration::from_secs(5), || child_pid_file.exists()).await);
    let child: i32 = std::fs::read_to_string(&child_pid_file)
        .unwrap()
        .parse()
        .unwrap();
    assert!(common::is_alive(child));

    let event = h.next_event().await;
    let took = started.elapsed();
    assert_eq!(outcome(&event), &JobOutcome::DeadlineExceeded);
    // The loop ignores SIGTERM, so the SIGKILL after the grace ended it.
    assert!(took >= Duration::from_secs(2), "killed early: {took:?}");
    assert!(took < Duration::from_secs(6), "killed late: {took:?}");
    assert!(live_group_members(group).is_empty());
    assert!(
        eventually(Duration::from_secs(2), || !common::is_alive(child)).await,
        "forked child {child} survived"
    );
    assert_eq!(h.runtime.running(), 0);
    assert_quiet(&mut h.events).await;
}

#[tokio::test]
async fn busy_job_is_killed_at_its_deadline_with_its_whole_process_group_under_cgroups() {
    busy_job_is_killed_at_its_deadline_with_its_whole_process_group(Mode::Cgroups).await;
}

#[tokio::test]
async fn busy_job_is_killed_at_its_deadline_with_its_whole_process_group_under_rlimits() {
    busy_job_is_killed_at_its_deadline_with_its_whole_process_group(Mode::Rlimits).await;
}

#[tokio::test]
async fn cancelled_job_is_stopped_and_reported_cancelled() {
    let mut h = Harness::new(Mode::Cgroups);
    let (spec, _) = spec("sleep:60", profile(), Duration::from_secs(60));
    let id = spec.investigation_id.clone();
    let handle = h.runtime.start(spec).await.unwrap();
    let log = h.log_path(&id);
    assert!(
        eventually(Duration::from_secs(5), || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("sleeping")
        })
        .await
    );
    let asked = Instant::now();
    h.runtime.cancel(&id).await.unwrap();
    let event = h.next_event().await;
    assert_eq!(outcome(&event), &JobOutcome::Cancelled);
    assert!(asked.elapsed() < Duration::from_secs(3));
    assert!(live_group_members(pid_of(&handle.job_ref)).is_empty());
    assert_quiet(&mut h.events).await;
    // Once ended, there is nothing left to cancel.
    assert!(matches!(
        h.runtime.cancel(&id).await,
        Err(RuntimeError::NotFound(_))
    ));
}

#[tokio::test]
async fn exit_codes_are_reported_as_they_are() {
    let mut h = Harness::new(Mode::Rlimits);
    let (spec, _) = spec("exit:3", profile(), Duration::from_secs(20));
    h.runtime.start(spec).await.unwrap();
    assert_eq!(
        outcome(&h.next_event().await),
        &JobOutcome::Exited { code: 3 }
    );
}

#[tokio::test]
async fn a_second_start_for_a_running_investigation_is_refused() {
    let mut h = Harness::new(Mode::Rlimits);
    let (spec1, _) = spec("sleep:60", profile(), Duration::from_secs(60));
    let id = spec1.investigation_id.clone();
    let (mut spec2, _) = spec("echo", profile(), Duration::from_secs(60));
    spec2.investigation_id = id.clone();
    h.runtime.start(spec1).await.unwrap();
    let err = h.runtime.start(spec2).await.unwrap_err();
    assert!(
        matches!(&err, RuntimeError::Start { detail, .. } if detail.contains("already running")),
        "{err}"
    );
    assert_eq!(h.runtime.running(), 1);
    h.runtime.cancel(&id).await.unwrap();
    assert_eq!(outcome(&h.next_event().await), &JobOutcome::Cancelled);
    assert_quiet(&mut h.events).await;
}

#[tokio::test]
async fn logs_hold_the_jobs_output_and_survive_cleanup() {
    let mut h = Harness::new(Mode::Rlimits);
    let (spec, _) = spec("normal", profile(), Duration::from_secs(20));
    let id = spec.investigation_id.clone();
    h.runtime.start(spec).await.unwrap();
    // Cleanup waits for the job to end.
    assert!(h.runtime.cleanup(&id).await.is_err());
    assert_eq!(
        outcome(&h.next_event().await),
        &JobOutcome::Exited { code: 0 }
    );

    let log = h.runtime.logs(&id).await.unwrap();
    assert!(log.contains("normal done"), "{log}");
    assert!(
        log.contains("[warden-runtime] job ended: exited with code 0"),
        "{log}"
    );

    h.runtime.cleanup(&id).await.unwrap();
    assert!(!h.dir.path().join("jobs").join(id.as_str()).exists());
    assert_eq!(h.runtime.logs(&id).await.unwrap(), log);
    // Idempotent.
    h.runtime.cleanup(&id).await.unwrap();
}

#[tokio::test]
async fn logs_of_an_unknown_investigation_are_not_found() {
    let h = Harness::new(Mode::Rlimits);
    let err = h
        .runtime
        .logs(&InvestigationId::generate())
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::NotFound(_)));
}

#[tokio::test]
async fn ids_that_are_not_investigation_ids_touch_no_path() {
    let h = Harness::new(Mode::Rlimits);
    let evil = InvestigationId("../../etc".to_string());
    assert!(h.runtime.logs(&evil).await.is_err());
    assert!(h.runtime.cleanup(&evil).await.is_err());
    assert!(h.runtime.cancel(&evil).await.is_err());
    assert!(
        h.runtime
            .adopt(&evil, None, chrono::Utc::now())
            .await
            .is_err()
    );
    let (mut spec, _) = spec("echo", profile(), Duration::from_secs(5));
    spec.investigation_id = evil;
    assert!(matches!(
        h.runtime.start(spec).await,
        Err(RuntimeError::Start { .. })
    ));
    assert!(std::path::Path::new("/etc/passwd").exists());
    assert_eq!(h.runtime.running(), 0);
}

#[tokio::test]
async fn a_program_that_cannot_run_fails_the_start_and_leaves_nothing_running() {
    let h = Harness::with_program(Mode::Cgroups, "#!/nonexistent/interpreter\n", |_| {});
    let (spec, _) = spec("echo", profile(), Duration::from_secs(5));
    let id = spec.investigation_id.clone();
    let err = h.runtime.start(spec).await.unwrap_err();
    assert!(
        matches!(&err, RuntimeError::Start { detail, .. } if detail.contains("cannot spawn")),
        "{err}"
    );
    assert_eq!(h.runtime.running(), 0);
    assert!(!h.job_record(&id).exists());
}

/// The pids the `leave-behind` job left: one in its group, one outside.
fn left_behind(h: &Harness, id: &InvestigationId) -> (i32, i32) {
    let text = std::fs::read_to_string(h.work_dir(id).join("left-behind")).unwrap();
    let mut pids = text.split(' ').map(|p| p.parse().unwrap());
    (pids.next().unwrap(), pids.next().unwrap())
}

#[tokio::test]
async fn processes_a_finished_job_left_behind_are_killed_even_outside_its_group() {
    let mut h = Harness::new(Mode::Cgroups);
    if !h.has_cgroups() {
        eprintln!("skipped: no writable cgroup v1 here");
        return;
    }
    let (spec, _) = spec("leave-behind", profile(), Duration::from_secs(30));
    let id = spec.investigation_id.clone();
    h.runtime.start(spec).await.unwrap();
    assert_eq!(
        outcome(&h.next_event().await),
        &JobOutcome::Exited { code: 0 }
    );
    let (in_group, own_session) = left_behind(&h, &id);
    assert!(eventually(Duration::from_secs(2), || !common::is_alive(in_group)).await);
    assert!(eventually(Duration::from_secs(2), || !common::is_alive(own_session)).await);
}

#[tokio::test]
async fn processes_a_finished_job_left_in_its_group_are_killed_under_rlimits() {
    let mut h = Harness::new(Mode::Rlimits);
    let (spec, _) = spec("leave-behind", profile(), Duration::from_secs(30));
    let id = spec.investigation_id.clone();
    h.runtime.start(spec).await.unwrap();
    assert_eq!(
        outcome(&h.next_event().await),
        &JobOutcome::Exited { code: 0 }
    );
    let (in_group, own_session) = left_behind(&h, &id);
    assert!(eventually(Duration::from_secs(2), || !common::is_alive(in_group)).await);
    // Without a cgroup, a process that left the group is out of reach.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(own_session),
        nix::sys::signal::Signal::SIGKILL,
    );
}
