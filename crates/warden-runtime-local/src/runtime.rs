//! [`LocalRuntime`]: the `JobRuntime` port on one machine.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use warden_core::InvestigationId;
use warden_core::ports::{Adoption, JobEvents, JobHandle, JobRuntime, JobSpec, RuntimeError};

use crate::cgroup::{CgroupV1, JobCgroups};
use crate::classify::StopReason;
use crate::config::LocalRuntimeConfig;
use crate::error::LocalRuntimeError;
use crate::launch;
use crate::logs;
use crate::procfs::{Liveness, ProcessIdentity};
use crate::record::{JobRecord, MemoryLimit};
use crate::supervise::{self, StopSignal, Supervised};

/// How jobs are isolated on this machine, for status and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IsolationMode {
    /// Memory (and, where writable, pids and CPU) limited by cgroup v1.
    CgroupV1,
    /// No writable memory cgroup: memory and process count are limited by
    /// rlimits, CPU is not limited.
    Rlimits,
}

impl IsolationMode {
    pub fn as_str(self) -> &'static str {
        match self {
            IsolationMode::CgroupV1 => "cgroup_v1",
            IsolationMode::Rlimits => "rlimits",
        }
    }
}

/// Runs each investigation as one isolated OS process.
///
/// Dropping the runtime stops supervision but not the jobs: they keep
/// running, and a new runtime on the same data directory re-adopts them.
pub struct LocalRuntime {
    shared: Arc<Shared>,
}

/// State shared between the runtime and its supervision tasks.
pub(crate) struct Shared {
    pub(crate) config: LocalRuntimeConfig,
    pub(crate) events: Arc<dyn JobEvents>,
    pub(crate) cgroups: CgroupV1,
    jobs: Mutex<HashMap<InvestigationId, JobSlot>>,
}

/// A job this runtime starts or supervises.
struct JobSlot {
    stop: Arc<StopSignal>,
    supervisor: Option<AbortHandle>,
}

impl Shared {
    fn jobs(&self) -> std::sync::MutexGuard<'_, HashMap<InvestigationId, JobSlot>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops a job from the registry once its end is reported.
    pub(crate) fn forget(&self, id: &InvestigationId) {
        self.jobs().remove(id);
    }

    pub(crate) fn job_dir(&self, id: &InvestigationId) -> PathBuf {
        self.config.data_dir.join("jobs").join(id.as_str())
    }

    pub(crate) fn record_path(&self, id: &InvestigationId) -> PathBuf {
        self.job_dir(id).join("job.json")
    }

    pub(crate) fn log_path(&self, id: &InvestigationId) -> PathBuf {
        self.config
            .data_dir
            .join("logs")
            .join(format!("{}.log", id.as_str()))
    }
}

/// Holds an id in the registry while `start` or `adopt` is under way, so a
/// second call for the same id is refused; released unless kept.
struct Reservation<'a> {
    shared: &'a Shared,
    id: InvestigationId,
    stop: Arc<StopSignal>,
    kept: bool,
}

impl<'a> Reservation<'a> {
    fn take(shared: &'a Shared, id: &InvestigationId) -> Option<Self> {
        let mut jobs = shared.jobs();
        if jobs.contains_key(id) {
            return None;
        }
        let stop = Arc::new(StopSignal::default());
        jobs.insert(
            id.clone(),
            JobSlot {
                stop: Arc::clone(&stop),
                supervisor: None,
            },
        );
        Some(Reservation {
            shared,
            id: id.clone(),
            stop,
            kept: false,
        })
    }

    /// Keeps the slot and records the supervisor, unless it has already
    /// finished and removed the slot itself.
    fn keep(mut self, supervisor: AbortHandle) {
        self.kept = true;
        if let Some(slot) = self.shared.jobs().get_mut(&self.id)
            && Arc::ptr_eq(&slot.stop, &self.stop)
        {
            slot.supervisor = Some(supervisor);
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.kept {
            self.shared.forget(&self.id);
        }
    }
}

impl LocalRuntime {
    /// Prepares the data directory and detects which cgroup controllers are
    /// usable. Starts nothing.
    pub fn new(
        config: LocalRuntimeConfig,
        events: Arc<dyn JobEvents>,
    ) -> Result<LocalRuntime, LocalRuntimeError> {
        let problems = config.problems();
        if !problems.is_empty() {
            return Err(LocalRuntimeError::Config { problems });
        }
        for dir in ["jobs", "logs"] {
            let path = config.data_dir.join(dir);
            launch::private_dir(&path)
                .map_err(|source| LocalRuntimeError::DataDir { path, source })?;
        }
        let cgroups = CgroupV1::detect(config.cgroup_root(), &config.cgroup_parent);
        let runtime = LocalRuntime {
            shared: Arc::new(Shared {
                config,
                events,
                cgroups,
                jobs: Mutex::new(HashMap::new()),
            }),
        };
        tracing::info!(
            isolation = runtime.isolation().as_str(),
            pids_cgroup = runtime.shared.cgroups.has_pids(),
            "local job runtime ready"
        );
        Ok(runtime)
    }

    /// Jobs currently supervised by this runtime.
    pub fn running(&self) -> usize {
        self.shared.jobs().len()
    }

    pub fn isolation(&self) -> IsolationMode {
        if self.shared.cgroups.has_memory() {
            IsolationMode::CgroupV1
        } else {
            IsolationMode::Rlimits
        }
    }
}

impl Drop for LocalRuntime {
    /// Stops watching; the jobs themselves run on (`kill_on_drop(false)`).
    fn drop(&mut self) {
        for slot in self.shared.jobs().values() {
            if let Some(task) = &slot.supervisor {
                task.abort();
            }
        }
    }
}

fn valid_id(id: &InvestigationId) -> Result<InvestigationId, String> {
    InvestigationId::parse(id.as_str())
}

fn deadline_instant(deadline: DateTime<Utc>) -> Instant {
    let remaining = (deadline - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    Instant::now() + remaining
}

impl LocalRuntime {
    fn supervised(
        &self,
        id: &InvestigationId,
        record: JobRecord,
        deadline: DateTime<Utc>,
        stop: Arc<StopSignal>,
    ) -> Supervised {
        let config = &self.shared.config;
        Supervised {
            id: id.clone(),
            deadline: deadline_instant(deadline),
            stop,
            log_path: self.shared.log_path(id),
            kill_grace: config.kill_grace,
            file_size_limit_bytes: record.log_offset.saturating_add(config.log_max_bytes),
            record,
        }
    }
}

#[async_trait]
impl JobRuntime for LocalRuntime {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn start(&self, spec: JobSpec) -> Result<JobHandle, RuntimeError> {
        let start_error = |detail: String| RuntimeError::Start {
            investigation: spec.investigation_id.clone(),
            detail,
        };
        let id = valid_id(&spec.investigation_id).map_err(start_error)?;
        let reservation = Reservation::take(&self.shared, &id)
            .ok_or_else(|| start_error("a job for this investigation is already running".into()))?;
        let earlier = JobRecord::read(&self.shared.record_path(&id))
            .map_err(|e| start_error(format!("cannot read the earlier job record: {e}")))?;
        if let Some(earlier) = earlier.filter(|r| r.identity().liveness() == Liveness::Alive) {
            return Err(start_error(format!(
                "a job for this investigation is still running as pid {}; adopt it instead",
                earlier.pid
            )));
        }

        let document = launch::stdin_document(&spec)
            .map_err(|e| start_error(format!("cannot encode the job input: {e}")))?;

        let launched = launch::launch(&self.shared, &spec, &id)
            .await
            .map_err(start_error)?;
        let handle = JobHandle {
            job_ref: launched.record.job_ref.clone(),
        };
        launch::deliver_input(id.clone(), launched.stdin, document);
        let job = self.supervised(
            &id,
            launched.record,
            spec.deadline,
            Arc::clone(&reservation.stop),
        );
        let task = tokio::spawn(supervise::supervise_child(
            Arc::clone(&self.shared),
            job,
            launched.child,
        ));
        reservation.keep(task.abort_handle());
        tracing::info!(investigation = %id, job_ref = %handle.job_ref, "job started");
        Ok(handle)
    }

    async fn adopt(
        &self,
        investigation: &InvestigationId,
        job_ref: Option<&str>,
        deadline: DateTime<Utc>,
    ) -> Result<Adoption, RuntimeError> {
        let id = valid_id(investigation).map_err(RuntimeError::Other)?;
        let Some(reservation) = Reservation::take(&self.shared, &id) else {
            // Already supervised here.
            return Ok(Adoption::Adopted);
        };
        let record_path = self.shared.record_path(&id);
        let recorded = JobRecord::read(&record_path).map_err(|e| {
            RuntimeError::Other(format!("cannot read {}: {e}", record_path.display()))
        })?;
        let claimed = job_ref.and_then(ProcessIdentity::from_job_ref);
        let record = match (recorded, claimed) {
            (Some(record), claimed) => {
                if claimed.is_some_and(|c| c != record.identity()) {
                    tracing::warn!(investigation = %id, ?job_ref, recorded = %record.job_ref,
                        "job reference differs from the runtime's record; trusting the record");
                }
                JobRecord {
                    cgroups: record.cgroups.belonging_to(&id),
                    ..record
                }
            }
            // No record of our own: only the pid and start time are known,
            // and only output from now on is this job's to classify.
            (None, Some(identity)) => JobRecord {
                investigation_id: id.clone(),
                pid: identity.pid,
                start_time: identity.start_time,
                job_ref: identity.job_ref(),
                started_at: Utc::now(),
                deadline,
                memory_limit_bytes: 0,
                memory_limited_by: MemoryLimit::RlimitAs,
                cgroups: JobCgroups::default(),
                log_offset: std::fs::metadata(self.shared.log_path(&id)).map_or(0, |m| m.len()),
            },
            (None, None) => return Ok(Adoption::Gone),
        };

        if record.identity().liveness() == Liveness::Gone {
            // Ended while no control plane watched. Its process group may
            // be reused by now, so only its own cgroups are swept.
            record.cgroups.kill_all().await;
            record.cgroups.remove().await;
            tracing::info!(investigation = %id, "job to adopt has ended");
            return Ok(Adoption::Gone);
        }

        let job = self.supervised(&id, record, deadline, Arc::clone(&reservation.stop));
        let task = tokio::spawn(supervise::supervise_adopted(Arc::clone(&self.shared), job));
        reservation.keep(task.abort_handle());
        tracing::info!(investigation = %id, "job re-adopted");
        Ok(Adoption::Adopted)
    }

    async fn cancel(&self, investigation: &InvestigationId) -> Result<(), RuntimeError> {
        let id = valid_id(investigation).map_err(RuntimeError::Other)?;
        let jobs = self.shared.jobs();
        let slot = jobs
            .get(&id)
            .ok_or_else(|| RuntimeError::NotFound(id.clone()))?;
        slot.stop.request(StopReason::Cancelled);
        Ok(())
    }

    async fn logs(&self, investigation: &InvestigationId) -> Result<String, RuntimeError> {
        let id = valid_id(investigation).map_err(RuntimeError::Other)?;
        let path = self.shared.log_path(&id);
        tokio::task::spawn_blocking(move || logs::read_tail(&path, 0, logs::LOG_READ_CAP_BYTES))
            .await
            .map_err(|e| RuntimeError::Other(format!("reading log of {id}: {e}")))?
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => RuntimeError::NotFound(id.clone()),
                _ => RuntimeError::Other(format!("reading log of {id}: {e}")),
            })
    }

    async fn cleanup(&self, investigation: &InvestigationId) -> Result<(), RuntimeError> {
        let id = valid_id(investigation).map_err(RuntimeError::Other)?;
        if self.shared.jobs().contains_key(&id) {
            return Err(RuntimeError::Other(format!(
                "job for {id} is still running; cancel it first"
            )));
        }
        let dir = self.shared.job_dir(&id);
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(RuntimeError::Other(format!(
                "cannot remove {}: {e}",
                dir.display()
            ))),
        }
    }
}
