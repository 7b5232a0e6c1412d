//! warden's local job runtime: one investigation = one isolated OS process.
//!
//! Each job is a process of its own, in its own process group, with a
//! cleared environment, a private working directory, its output appended to
//! its own log file, and limits on memory, processes and CPU — through
//! cgroup v1 where the machine allows it, through rlimits where it does not.
//! A runaway investigation therefore exhausts its own limits, not the
//! machine: it is OOM-killed inside its cgroup, its fork bomb stops at
//! `pids.max`, its busy loop gets its CPU quota, its log stops at
//! `log_max_bytes`, and at its deadline its whole process group is killed.
//!
//! ```text
//! start ─▶ cgroups + spawn ─▶ limits (child waits on stdin) ─▶ job.json
//!        ─▶ input on stdin ─▶ supervise ─▶ exit | deadline | cancel
//!        ─▶ kill leftovers ─▶ classify ─▶ one Finished event ─▶ remove cgroups
//! ```
//!
//! Jobs are not children that die with the control plane
//! (`kill_on_drop(false)`): the runtime's own record, `job.json`, lets the
//! next control plane re-adopt a running job, identified by pid *and* start
//! time so that a reused pid is never mistaken for it.
//!
//! The one-time result credential travels only through the job's stdin:
//! never in argv, the environment, `job.json` or the log.

mod cgroup;
mod classify;
mod config;
mod error;
mod launch;
mod logs;
mod procfs;
mod record;
mod rlimits;
mod runtime;
mod supervise;

pub use config::{
    DEFAULT_CGROUP_PARENT, DEFAULT_CGROUP_ROOT, DEFAULT_KILL_GRACE, DEFAULT_LOG_MAX_BYTES,
    LocalRuntimeConfig,
};
pub use error::LocalRuntimeError;
pub use runtime::{IsolationMode, LocalRuntime};
