//! Resource limits through rlimits, applied to the running child.
//!
//! Two limits always apply: `RLIMIT_FSIZE` so that a runaway cannot fill
//! the disk through its log (the kernel stops the write with `SIGXFSZ`), and
//! `RLIMIT_CORE = 0` so that a crash does not dump the job's memory (and
//! whatever credentials it held) to disk. Where cgroups are not writable,
//! memory falls back to `RLIMIT_AS` and process count to `RLIMIT_NPROC`.
//! Both are weaker than cgroups: `RLIMIT_AS` counts address space rather
//! than resident memory, and `RLIMIT_NPROC` counts every process of the
//! user (and does not bind root).
//!
//! The limits are set with `prlimit(2)` on the child's pid while it waits
//! for its input on stdin; processes it starts later inherit them.

use std::io;

use rlimit::Resource;

/// What to limit beyond the two limits every job gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RlimitPlan {
    pub file_size_bytes: u64,
    pub address_space_bytes: Option<u64>,
    pub processes: Option<u64>,
}

pub(crate) fn apply(pid: i32, plan: RlimitPlan) -> io::Result<()> {
    set(pid, Resource::FSIZE, plan.file_size_bytes)?;
    set(pid, Resource::CORE, 0)?;
    if let Some(bytes) = plan.address_space_bytes {
        set(pid, Resource::AS, bytes)?;
    }
    if let Some(count) = plan.processes {
        set(pid, Resource::NPROC, count)?;
    }
    Ok(())
}

fn set(pid: i32, resource: Resource, limit: u64) -> io::Result<()> {
    rlimit::prlimit(pid, resource, Some((limit, limit)), None).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("setting {} of pid {pid}: {e}", resource.as_name()),
        )
    })
}
