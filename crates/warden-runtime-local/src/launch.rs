//! Bringing a job to life: work directory, cgroups, process, limits,
//! record, input — in the order that keeps each step safe.
//!
//! The cgroups exist (with their limits) before the process does; the
//! process is moved into them and given its rlimits while it still waits
//! for its input on stdin, so nothing it does for the investigation runs
//! unlimited; `job.json` is written before the input (and its credential)
//! is handed over, so every job that holds a credential can be found again.
//! A failure after spawning kills the process: `start` either returns a
//! recorded, limited, supervised job or leaves nothing running.

use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use chrono::Utc;
use nix::sys::signal::Signal;
use secrecy::{ExposeSecret, SecretSlice};
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin, Command};
use warden_core::ports::JobSpec;
use warden_core::{AgentInput, DomainGrant, InvestigationId, ResourceProfile, SecretsBackend};

use crate::cgroup::JobCgroups;
use crate::logs;
use crate::procfs::ProcessIdentity;
use crate::record::{JobRecord, MemoryLimit};
use crate::rlimits::{self, RlimitPlan};
use crate::runtime::Shared;
use crate::supervise;

/// The only environment a job sees besides `HOME` and `TMPDIR`.
const JOB_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
const JOB_LANG: &str = "C.UTF-8";
/// A job that has not read its input by then never will.
const STDIN_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The document a job reads from stdin. The credential is exposed only to
/// build it; the serialised bytes are zeroed when dropped.
#[derive(Serialize)]
struct StdinDocument<'a> {
    input: &'a AgentInput,
    result_credential: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<IdentityDocument<'a>>,
}

#[derive(Serialize)]
struct IdentityDocument<'a> {
    backend: SecretsBackend,
    address: &'a str,
    accessor: &'a str,
    domains: &'a [DomainGrant],
    credential: &'a str,
}

pub(crate) fn private_dir(path: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

/// A spawned job before supervision takes it over.
pub(crate) struct Launched {
    pub child: Child,
    pub stdin: ChildStdin,
    pub record: JobRecord,
}

/// Creates the work directory, limits and process, and records the job.
/// On any failure after spawning, the process is killed again.
pub(crate) async fn launch(
    shared: &Shared,
    spec: &JobSpec,
    id: &InvestigationId,
) -> Result<Launched, String> {
    let config = &shared.config;
    let profile = &spec.plan.profile;
    let job_dir = shared.job_dir(id);
    let work = job_dir.join("work");
    let tmp = work.join("tmp");
    match tokio::fs::remove_dir_all(&work).await {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot clear {}: {e}", work.display())),
    }
    private_dir(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;

    let log_path = shared.log_path(id);
    let log = logs::open_for_append(&log_path)
        .map_err(|e| format!("cannot open log {}: {e}", log_path.display()))?;
    let log_offset = log.metadata().map(|m| m.len()).unwrap_or(0);
    let log_for_stderr = log
        .try_clone()
        .map_err(|e| format!("cannot share log {}: {e}", log_path.display()))?;

    // Created before spawning so the child is limited a moment sooner.
    let mut cgroups = shared.cgroups.create_job(id, profile);

    let spawned = Command::new(&config.program)
        .args(&config.args)
        .env_clear()
        .env("PATH", JOB_PATH)
        .env("HOME", &work)
        .env("TMPDIR", &tmp)
        .env("LANG", JOB_LANG)
        .current_dir(&work)
        .stdin(Stdio::piped())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_for_stderr))
        .process_group(0)
        .kill_on_drop(false)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            cgroups.remove().await;
            return Err(format!("cannot spawn {}: {e}", config.program.display()));
        }
    };

    let prepared = limit_and_record(shared, spec, id, &mut child, &mut cgroups, log_offset);
    match prepared {
        Ok((record, stdin)) => {
            logs::note(&log_path, &describe_start(&record, profile));
            Ok(Launched {
                child,
                stdin,
                record,
            })
        }
        Err(detail) => {
            if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                supervise::signal_group(pid, Signal::SIGKILL);
            }
            let _ = child.wait().await;
            cgroups.kill_all().await;
            cgroups.remove().await;
            let _ = std::fs::remove_file(shared.record_path(id));
            Err(detail)
        }
    }
}

/// Applies the limits to the spawned child (blocked reading stdin) and
/// writes `job.json`.
fn limit_and_record(
    shared: &Shared,
    spec: &JobSpec,
    id: &InvestigationId,
    child: &mut Child,
    cgroups: &mut JobCgroups,
    log_offset: u64,
) -> Result<(JobRecord, ChildStdin), String> {
    let config = &shared.config;
    let profile = &spec.plan.profile;
    let pid = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .ok_or("the job exited before it could be limited")?;
    let identity =
        ProcessIdentity::of(pid).map_err(|e| format!("cannot identify pid {pid}: {e}"))?;
    cgroups.attach(pid);
    let file_size_bytes = log_offset.saturating_add(config.log_max_bytes);
    rlimits::apply(
        pid,
        RlimitPlan {
            file_size_bytes,
            address_space_bytes: (!cgroups.limits_memory()).then_some(profile.memory_bytes),
            processes: (!cgroups.limits_processes()).then_some(u64::from(profile.max_processes)),
        },
    )
    .map_err(|e| format!("cannot limit the job: {e}"))?;

    let record = JobRecord {
        investigation_id: id.clone(),
        pid,
        start_time: identity.start_time,
        job_ref: identity.job_ref(),
        started_at: Utc::now(),
        deadline: spec.deadline,
        memory_limit_bytes: profile.memory_bytes,
        memory_limited_by: if cgroups.limits_memory() {
            MemoryLimit::CgroupV1
        } else {
            MemoryLimit::RlimitAs
        },
        cgroups: cgroups.clone(),
        log_offset,
    };
    let record_path = shared.record_path(id);
    record
        .write(&record_path)
        .map_err(|e| format!("cannot write {}: {e}", record_path.display()))?;
    let stdin = child.stdin.take().ok_or("the job has no stdin pipe")?;
    Ok((record, stdin))
}

fn describe_start(record: &JobRecord, profile: &ResourceProfile) -> String {
    let via = |cgroup: bool, fallback: &str| {
        if cgroup {
            "cgroup v1".to_string()
        } else {
            fallback.to_string()
        }
    };
    let cg = &record.cgroups;
    format!(
        "job started: pid {}; memory {} bytes via {}; at most {} processes via {}; cpu {} millicores via {}",
        record.pid,
        profile.memory_bytes,
        via(cg.memory.is_some(), "RLIMIT_AS"),
        profile.max_processes,
        via(cg.pids.is_some(), "RLIMIT_NPROC"),
        profile.cpu_millis,
        via(cg.cpu.is_some(), "nothing (no cpu cgroup)"),
    )
}

/// Hands the job its input and closes stdin. Runs on its own task so that
/// a job slow to read cannot hold up `start`.
pub(crate) fn deliver_input(id: InvestigationId, mut stdin: ChildStdin, document: SecretSlice<u8>) {
    tokio::spawn(async move {
        let written = tokio::time::timeout(STDIN_WRITE_TIMEOUT, async {
            stdin.write_all(document.expose_secret()).await?;
            stdin.shutdown().await
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(investigation = %id, %error, "job did not take its input");
            }
            Err(_) => tracing::warn!(investigation = %id, "job did not read its input in time"),
        }
    });
}

/// Serialises the job's stdin document; the only place the credential is
/// exposed.
pub(crate) fn stdin_document(spec: &JobSpec) -> serde_json::Result<SecretSlice<u8>> {
    serde_json::to_vec(&StdinDocument {
        input: &spec.agent_input,
        result_credential: spec.result_credential.expose_secret(),
        identity: spec.identity.as_ref().map(|i| IdentityDocument {
            backend: i.backend,
            address: &i.address,
            accessor: &i.accessor,
            domains: &i.domains,
            credential: i.credential.expose_secret(),
        }),
    })
    .map(SecretSlice::from)
}
