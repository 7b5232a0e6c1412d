//! What a job can see and use: its input, its environment, and its limits.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{Harness, MIB, Mode, TEST_CGROUP_PARENT, assert_quiet, outcome, profile, spec};
use warden_core::ports::{JobEventKind, JobOutcome, JobRuntime};

async fn job_receives_its_input_only_on_stdin_with_a_clean_environment(mode: Mode) {
    let mut h = Harness::new(mode);
    let (spec, credential) = spec("echo", profile(), Duration::from_secs(20));
    let id = spec.investigation_id.clone();
    let handle = h.runtime.start(spec).await.unwrap();
    assert!(handle.job_ref.starts_with("pid:"));

    let event = h.next_event().await;
    assert_eq!(event.investigation_id, id);
    assert_eq!(outcome(&event), &JobOutcome::Exited { code: 0 });
    assert_quiet(&mut h.events).await;

    let work = h.work_dir(&id);
    let received: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.join("received.json")).unwrap()).unwrap();
    assert_eq!(received["result_credential"], credential.as_str());
    assert_eq!(received["input"]["investigation_id"], id.as_str());

    let environ = std::fs::read(work.join("environ")).unwrap();
    let mut names: Vec<String> = environ
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| {
            String::from_utf8_lossy(v)
                .split('=')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["HOME", "LANG", "PATH", "TMPDIR"]);
    let environ = String::from_utf8_lossy(&environ);
    assert!(environ.contains(&format!("HOME={}", work.display())));
    assert!(environ.contains(&format!("TMPDIR={}", work.join("tmp").display())));
    assert!(!environ.contains(&credential));

    let cmdline =
        String::from_utf8_lossy(&std::fs::read(work.join("cmdline")).unwrap()).into_owned();
    assert!(cmdline.contains("job.py"));
    assert!(!cmdline.contains(&credential));
    assert_eq!(
        std::fs::read_to_string(work.join("cwd")).unwrap(),
        work.display().to_string()
    );
    for private in [&work, &work.join("tmp")] {
        let mode = std::fs::metadata(private).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{}", private.display());
    }

    // The credential is in neither the runtime's record nor the log.
    let record = std::fs::read_to_string(h.job_record(&id)).unwrap();
    assert!(record.contains(&handle.job_ref));
    assert!(!record.contains(&credential));
    let log = h.runtime.logs(&id).await.unwrap();
    assert!(log.contains("echo done"));
    assert!(!log.contains(&credential));
}

#[tokio::test]
async fn job_receives_its_input_only_on_stdin_with_a_clean_environment_under_rlimits() {
    job_receives_its_input_only_on_stdin_with_a_clean_environment(Mode::Rlimits).await;
}

#[tokio::test]
async fn job_receives_its_input_only_on_stdin_with_a_clean_environment_under_cgroups() {
    job_receives_its_input_only_on_stdin_with_a_clean_environment(Mode::Cgroups).await;
}

async fn memory_hog_is_reported_out_of_memory(mode: Mode) -> Harness {
    let mut h = Harness::new(mode);
    let evidence = if h.has_cgroups() {
        "OOM-killed"
    } else {
        "RLIMIT_AS"
    };
    let limited = warden_core::ResourceProfile {
        memory_bytes: 128 * MIB,
        ..profile()
    };
    let (spec, _) = spec("hog", limited, Duration::from_secs(30));
    let id = spec.investigation_id.clone();
    h.runtime.start(spec).await.unwrap();
    let event = h.next_event().await;
    assert_eq!(event.investigation_id, id);
    assert!(
        matches!(outcome(&event), JobOutcome::OutOfMemory { detail }
            if detail.contains("134217728") && detail.contains(evidence)),
        "{event:?}\nlog:\n{}",
        h.runtime.logs(&id).await.unwrap()
    );
    assert!(!h.runtime.logs(&id).await.unwrap().contains("allocated"));
    assert_quiet(&mut h.events).await;
    h
}

#[tokio::test]
async fn memory_hog_under_a_cgroup_limit_is_oom_killed_and_reported_out_of_memory() {
    let h = memory_hog_is_reported_out_of_memory(Mode::Cgroups).await;
    if !h.has_cgroups() {
        eprintln!("cgroup v1 memory controller not writable here; ran under rlimits");
    }
}

#[tokio::test]
async fn memory_hog_under_the_rlimit_fallback_is_reported_out_of_memory() {
    let h = memory_hog_is_reported_out_of_memory(Mode::Rlimits).await;
    assert!(!h.has_cgroups());
}

#[tokio::test]
async fn fork_bomb_stops_at_pids_max_and_dies_with_its_deadline() {
    let mut h = Harness::with(Mode::Cgroups, |c| c.kill_grace = Duration::ZERO);
    if !h.has_cgroups() {
        eprintln!("skipped: no writable cgroup v1 here");
        return;
    }
    let bounded = warden_core::ResourceProfile {
        max_processes: 16,
        ..profile()
    };
    let (spec, _) = spec("forkbomb", bounded, Duration::from_secs(3));
    let id = spec.investigation_id.clone();
    let pids_cgroup = std::path::Path::new("/sys/fs/cgroup/pids")
        .join(TEST_CGROUP_PARENT)
        .join(id.as_str());
    let handle = h.runtime.start(spec).await.unwrap();

    let mut most = 0u64;
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2500) {
        if let Ok(current) = std::fs::read_to_string(pids_cgroup.join("pids.current")) {
            most = most.max(current.trim().parse().unwrap());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(most >= 8, "the bomb never took off (peak {most} processes)");
    assert!(most <= 16, "pids.max exceeded: {most}");
    // The control plane can still start processes.
    assert!(
        std::process::Command::new("true")
            .status()
            .unwrap()
            .success()
    );

    let event = h.next_event().await;
    assert_eq!(outcome(&event), &JobOutcome::DeadlineExceeded);
    assert!(common::live_group_members(common::pid_of(&handle.job_ref)).is_empty());
    assert!(!pids_cgroup.exists(), "job cgroup was not removed");
}

#[tokio::test]
async fn a_runaway_log_stops_at_its_size_limit() {
    // A shell job, since Python ignores SIGXFSZ.
    let mut h = Harness::with_program(
        Mode::Rlimits,
        "#!/bin/sh\ncat >/dev/null\nexec yes warden-log-flood\n",
        |c| c.log_max_bytes = MIB,
    );
    let (spec, _) = spec("flood", profile(), Duration::from_secs(20));
    let id = spec.investigation_id.clone();
    h.runtime.start(spec).await.unwrap();
    let event = h.next_event().await;
    assert!(
        matches!(outcome(&event), JobOutcome::Killed { detail } if detail.contains("SIGXFSZ")),
        "{event:?}"
    );
    let size = std::fs::metadata(h.log_path(&id)).unwrap().len();
    // The limit plus the runtime's own two lines.
    assert!(size <= MIB + 1024, "log grew to {size} bytes");
    assert!(size >= MIB / 2, "log stopped early at {size} bytes");
}

#[tokio::test]
async fn a_normal_job_finishes_on_time_beside_a_hog_and_a_busy_loop() {
    let mut h = Harness::new(Mode::Cgroups);
    let hog_profile = warden_core::ResourceProfile {
        memory_bytes: 128 * MIB,
        ..profile()
    };
    let (hog, _) = spec("hog", hog_profile, Duration::from_secs(30));
    let (looper, _) = spec("loop", profile(), Duration::from_secs(6));
    let (normal, _) = spec("normal", profile(), Duration::from_secs(30));
    let (hog_id, looper_id, normal_id) = (
        hog.investigation_id.clone(),
        looper.investigation_id.clone(),
        normal.investigation_id.clone(),
    );

    h.runtime.start(looper).await.unwrap();
    h.runtime.start(hog).await.unwrap();
    let started = Instant::now();
    h.runtime.start(normal).await.unwrap();
    assert_eq!(h.runtime.running(), 3);

    let mut outcomes = std::collections::HashMap::new();
    let mut normal_took = None;
    while outcomes.len() < 3 {
        let event = h.next_event().await;
        if event.investigation_id == normal_id {
            normal_took = Some(started.elapsed());
        }
        let JobEventKind::Finished { outcome, .. } = event.kind;
        assert!(outcomes.insert(event.investigation_id, outcome).is_none());
    }
    assert_eq!(outcomes[&normal_id], JobOutcome::Exited { code: 0 });
    let normal_took = normal_took.unwrap();
    assert!(
        normal_took < Duration::from_secs(5),
        "normal job took {normal_took:?}"
    );
    assert!(
        matches!(outcomes[&hog_id], JobOutcome::OutOfMemory { .. }),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[&looper_id], JobOutcome::DeadlineExceeded);
    assert_eq!(h.runtime.running(), 0);
}

#[tokio::test]
async fn cgroup_jobs_report_cpu_seconds_and_peak_memory() {
    let mut h = Harness::new(Mode::Cgroups);
    if !h.has_cgroups() {
        eprintln!("skipped: no writable cgroup v1 here");
        return;
    }
    let (spec, _) = spec("normal", profile(), Duration::from_secs(20));
    h.runtime.start(spec).await.unwrap();
    let event = h.next_event().await;
    let JobEventKind::Finished {
        outcome,
        cpu_seconds,
        peak_memory_bytes,
    } = event.kind;
    assert_eq!(outcome, JobOutcome::Exited { code: 0 });
    assert!(cpu_seconds.unwrap() > 0.0);
    // The job touches 8 MiB of ballast.
    assert!(peak_memory_bytes.unwrap() >= 8 * MIB);
}

#[tokio::test]
async fn rlimit_jobs_report_no_usage_they_cannot_measure() {
    let mut h = Harness::new(Mode::Rlimits);
    let (spec, _) = spec("exit:0", profile(), Duration::from_secs(20));
    h.runtime.start(spec).await.unwrap();
    let event = h.next_event().await;
    assert_eq!(
        event.kind,
        JobEventKind::Finished {
            outcome: JobOutcome::Exited { code: 0 },
            cpu_seconds: None,
            peak_memory_bytes: None
        }
    );
}
