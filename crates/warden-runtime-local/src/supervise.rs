//! Watching one job from start (or adoption) to its single `Finished` event.
//!
//! One tokio task per job waits for the first of: the job's exit, its
//! deadline, or a cancel. A job this runtime spawned is its child, so its
//! exit status is known; an adopted job belongs to an earlier control plane
//! (now reparented to init), so it is polled through `/proc` and its status
//! is known only as far as the cgroup counters tell.
//!
//! Stopping a job always targets its whole process group (SIGTERM, then
//! SIGKILL after the grace period) and then every process left in its
//! cgroups, so nothing the job forked outlives it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::Child;
use tokio::sync::Notify;
use tokio::time::Instant;
use warden_core::InvestigationId;
use warden_core::ports::{JobEvent, JobEventKind, JobOutcome};

use crate::classify::{Exit, ExitFacts, StopReason, classify, reports_allocation_failure};
use crate::logs;
use crate::procfs::{Liveness, ProcessIdentity, members_of_group};
use crate::record::{JobRecord, MemoryLimit};
use crate::runtime::Shared;

/// How often an adopted job (not our child) is checked for exit.
const ADOPTED_POLL: Duration = Duration::from_millis(200);
/// How long to wait for a SIGKILLed adopted job to disappear.
const KILL_SETTLE: Duration = Duration::from_secs(5);

/// A request to stop a job; the first reason wins.
#[derive(Debug, Default)]
pub(crate) struct StopSignal {
    reason: Mutex<Option<StopReason>>,
    notify: Notify,
}

impl StopSignal {
    pub fn request(&self, reason: StopReason) {
        self.reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(reason);
        // Stores a permit when nobody waits yet, so a request that comes
        // before supervision begins is not lost.
        self.notify.notify_one();
    }

    pub fn reason(&self) -> Option<StopReason> {
        *self.reason.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn requested(&self) -> StopReason {
        loop {
            if let Some(reason) = self.reason() {
                return reason;
            }
            self.notify.notified().await;
        }
    }
}

/// What supervision needs to know about a job.
pub(crate) struct Supervised {
    pub id: InvestigationId,
    pub record: JobRecord,
    pub deadline: Instant,
    pub stop: Arc<StopSignal>,
    pub log_path: PathBuf,
    pub kill_grace: Duration,
    pub file_size_limit_bytes: u64,
}

impl Supervised {
    /// Resolves at the deadline or on a stop request, whichever is first.
    async fn stop_due(&self) -> StopReason {
        tokio::select! {
            () = tokio::time::sleep_until(self.deadline) => StopReason::Deadline,
            reason = self.stop.requested() => reason,
        }
    }
}

/// Supervises a job this runtime spawned.
pub(crate) async fn supervise_child(shared: Arc<Shared>, job: Supervised, mut child: Child) {
    let exit = tokio::select! {
        status = child.wait() => exit_of(status),
        reason = job.stop_due() => {
            job.stop.request(reason);
            terminate_child(&job, &mut child).await
        }
    };
    finish(&shared, job, exit).await;
}

/// Supervises a job an earlier control plane spawned.
pub(crate) async fn supervise_adopted(shared: Arc<Shared>, job: Supervised) {
    let identity = job.record.identity();
    let mut poll = tokio::time::interval(ADOPTED_POLL);
    let stopped = loop {
        tokio::select! {
            _ = poll.tick() => {
                if identity.liveness() == Liveness::Gone {
                    break None;
                }
            }
            reason = job.stop_due() => break Some(reason),
        }
    };
    if let Some(reason) = stopped {
        job.stop.request(reason);
        terminate_adopted(&job, identity).await;
    }
    finish(&shared, job, Exit::Unknown).await;
}

async fn terminate_child(job: &Supervised, child: &mut Child) -> Exit {
    let group = job.record.pid;
    if !job.kill_grace.is_zero() {
        signal_group(group, Signal::SIGTERM);
        if let Ok(status) = tokio::time::timeout(job.kill_grace, child.wait()).await {
            return exit_of(status);
        }
    }
    signal_group(group, Signal::SIGKILL);
    exit_of(child.wait().await)
}

async fn terminate_adopted(job: &Supervised, identity: ProcessIdentity) {
    // Signal only the process recorded, never whoever holds its pid now.
    if identity.liveness() == Liveness::Gone {
        return;
    }
    if !job.kill_grace.is_zero() {
        signal_group(identity.pid, Signal::SIGTERM);
        if wait_gone(identity, job.kill_grace).await {
            return;
        }
    }
    signal_group(identity.pid, Signal::SIGKILL);
    if !wait_gone(identity, KILL_SETTLE).await {
        tracing::warn!(investigation = %job.id, pid = identity.pid, "adopted job survived SIGKILL");
    }
}

async fn wait_gone(identity: ProcessIdentity, within: Duration) -> bool {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if identity.liveness() == Liveness::Gone {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    identity.liveness() == Liveness::Gone
}

/// Sends `signal` to the process group `group`. A pid of 0 or 1 would
/// address our own group or every process, so it is refused outright.
pub(crate) fn signal_group(group: i32, signal: Signal) {
    if group <= 1 {
        return;
    }
    match killpg(Pid::from_raw(group), signal) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(error) => tracing::warn!(group, %signal, %error, "cannot signal job process group"),
    }
}

fn exit_of(status: std::io::Result<std::process::ExitStatus>) -> Exit {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(signal)) => Exit::Signal(signal),
            (None, None) => Exit::Unknown,
        },
        Err(error) => {
            tracing::warn!(%error, "cannot read job exit status");
            Exit::Unknown
        }
    }
}

/// Kills what is left of the job, classifies its end, releases its
/// cgroups and emits its one `Finished` event.
async fn finish(shared: &Shared, job: Supervised, exit: Exit) {
    let cgroups = &job.record.cgroups;
    kill_leftovers(&job).await;

    let log_reports_allocation_failure = job.record.memory_limited_by == MemoryLimit::RlimitAs
        && exit != Exit::Code(0)
        && reports_allocation_failure(&logs::job_output_tail(&job.log_path, job.record.log_offset));
    let facts = ExitFacts {
        stop: job.stop.reason(),
        exit,
        memory_limited_by: job.record.memory_limited_by,
        memory_limit_bytes: job.record.memory_limit_bytes,
        oom_kills: cgroups.oom_kills(),
        memory_failures: cgroups.memory_failures(),
        log_reports_allocation_failure,
        file_size_limit_bytes: job.file_size_limit_bytes,
    };
    let outcome = classify(&facts);
    let cpu_seconds = cgroups.cpu_seconds();
    let peak_memory_bytes = cgroups.peak_memory_bytes();
    cgroups.remove().await;

    logs::note(&job.log_path, &format!("job ended: {}", describe(&outcome)));
    tracing::info!(investigation = %job.id, ?outcome, ?cpu_seconds, ?peak_memory_bytes, "job finished");
    shared.forget(&job.id);
    shared.events.emit(JobEvent {
        investigation_id: job.id,
        kind: JobEventKind::Finished {
            outcome,
            cpu_seconds,
            peak_memory_bytes,
        },
    });
}

/// SIGKILLs the job's process group and everything in its cgroups. The
/// group is signalled right after its leader ended, while its id cannot yet
/// belong to anyone else if any member is left.
pub(crate) async fn kill_leftovers(job: &Supervised) {
    let group = job.record.pid;
    for _ in 0..50 {
        signal_group(group, Signal::SIGKILL);
        if members_of_group(group).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    job.record.cgroups.kill_all().await;
}

fn describe(outcome: &JobOutcome) -> String {
    match outcome {
        JobOutcome::Exited { code } => format!("exited with code {code}"),
        JobOutcome::OutOfMemory { detail } => format!("out of memory: {detail}"),
        JobOutcome::DeadlineExceeded => "killed at its deadline".to_string(),
        JobOutcome::Killed { detail } => detail.clone(),
        JobOutcome::Cancelled => "cancelled".to_string(),
        JobOutcome::Lost { detail } => format!("lost: {detail}"),
    }
}
