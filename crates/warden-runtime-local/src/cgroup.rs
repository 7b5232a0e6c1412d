//! Resource limits through cgroup v1.
//!
//! Each job gets its own cgroup in every usable controller
//! (`<root>/<controller>/<parent>/<investigation-id>`): `memory` caps
//! resident memory and makes the kernel OOM-kill inside the job only,
//! `pids` bounds fork bombs, `cpu` caps CPU time with a CFS quota, and
//! `cpuacct` measures the CPU seconds that cost attribution needs. Unlike
//! rlimits, a cgroup covers every process the job starts, even one that
//! leaves the process group, and its counters tell an OOM kill apart from
//! any other `SIGKILL`.
//!
//! Which controllers are usable is detected when the runtime is built: a
//! controller counts only when its hierarchy is mounted (its root holds
//! `cgroup.procs`) and the parent cgroup can be created there. cgroup v2 is
//! not used: on the machines warden targets the memory and pids
//! controllers are bound to v1, and a v2 hierarchy without them cannot
//! isolate anything that matters.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use warden_core::{InvestigationId, ResourceProfile};

/// The CFS period; quota is `cpu_millis` tenths of it (100 ms is the
/// kernel default and long enough to keep scheduling overhead low).
const CFS_PERIOD_MICROS: u64 = 100_000;
/// The kernel refuses quotas below 1 ms.
const CFS_MIN_QUOTA_MICROS: u64 = 1_000;

/// The per-controller parent directories this runtime may create job
/// cgroups in; `None` where the controller is not usable.
#[derive(Debug, Clone, Default)]
pub(crate) struct CgroupV1 {
    memory: Option<PathBuf>,
    pids: Option<PathBuf>,
    cpu: Option<PathBuf>,
    cpuacct: Option<PathBuf>,
}

impl CgroupV1 {
    /// Finds the usable controllers under `root` and creates `parent` in each.
    pub fn detect(root: &Path, parent: &str) -> Self {
        let usable = |controller: &str| -> Option<PathBuf> {
            let hierarchy = root.join(controller);
            if !hierarchy.join("cgroup.procs").is_file() {
                return None;
            }
            let dir = hierarchy.join(parent);
            match std::fs::create_dir_all(&dir) {
                // The kernel populates a real cgroup directory with its
                // control files; a plain directory stays empty.
                Ok(()) if dir.join("cgroup.procs").is_file() => Some(dir),
                Ok(()) => None,
                Err(error) => {
                    tracing::info!(path = %dir.display(), %error, "cgroup controller not writable");
                    None
                }
            }
        };
        let cpu = usable("cpu");
        // With a combined `cpu,cpuacct` mount the accounting files live in
        // the cpu hierarchy itself.
        let cpuacct = usable("cpuacct").or_else(|| {
            cpu.as_ref()
                .filter(|dir| dir.join("cpuacct.usage").is_file())
                .cloned()
        });
        CgroupV1 {
            memory: usable("memory"),
            pids: usable("pids"),
            cpu,
            cpuacct,
        }
    }

    pub fn has_memory(&self) -> bool {
        self.memory.is_some()
    }

    pub fn has_pids(&self) -> bool {
        self.pids.is_some()
    }

    /// Creates the job's cgroups and writes their limits. A controller that
    /// fails is left out (and logged); the caller falls back to rlimits for
    /// what is missing.
    pub fn create_job(&self, id: &InvestigationId, profile: &ResourceProfile) -> JobCgroups {
        let memory = self.memory.as_ref().and_then(|parent| {
            let dir = fresh_dir(parent, id)?;
            // Charge what the job already holds to its own cgroup when it
            // moves in (best effort: newer kernels deprecate the knob).
            let _ = write_control(&dir, "memory.move_charge_at_immigrate", "1");
            let limit = profile.memory_bytes.to_string();
            let written = write_control(&dir, "memory.limit_in_bytes", &limit);
            // Without a swap limit the job could push its excess to swap
            // and never hit the limit.
            let swap = if dir.join("memory.memsw.limit_in_bytes").is_file() {
                write_control(&dir, "memory.memsw.limit_in_bytes", &limit)
            } else {
                Ok(())
            };
            usable_or_removed(dir, written.and(swap))
        });
        let pids = self.pids.as_ref().and_then(|parent| {
            let dir = fresh_dir(parent, id)?;
            let written = write_control(&dir, "pids.max", &profile.max_processes.to_string());
            usable_or_removed(dir, written)
        });
        let cpu = self.cpu.as_ref().and_then(|parent| {
            let dir = fresh_dir(parent, id)?;
            let quota = (u64::from(profile.cpu_millis) * CFS_PERIOD_MICROS / 1000)
                .max(CFS_MIN_QUOTA_MICROS);
            let written = write_control(&dir, "cpu.cfs_period_us", &CFS_PERIOD_MICROS.to_string())
                .and_then(|()| write_control(&dir, "cpu.cfs_quota_us", &quota.to_string()));
            usable_or_removed(dir, written)
        });
        let cpuacct = match &self.cpuacct {
            // Combined `cpu,cpuacct` hierarchy: the cpu cgroup is also the
            // accounting one.
            Some(parent) if Some(parent) == self.cpu.as_ref() => cpu.clone(),
            Some(parent) => fresh_dir(parent, id),
            None => None,
        };
        JobCgroups {
            memory,
            pids,
            cpu,
            cpuacct,
        }
    }
}

/// Creates `<parent>/<id>`, replacing an empty leftover of an earlier run.
fn fresh_dir(parent: &Path, id: &InvestigationId) -> Option<PathBuf> {
    let dir = parent.join(id.as_str());
    // A leftover with processes still in it cannot be removed; then
    // creating fails below and the job falls back to rlimits.
    let _ = std::fs::remove_dir(&dir);
    match std::fs::create_dir(&dir) {
        Ok(()) => Some(dir),
        Err(error) => {
            tracing::warn!(path = %dir.display(), %error, "cannot create job cgroup");
            None
        }
    }
}

fn usable_or_removed(dir: PathBuf, written: io::Result<()>) -> Option<PathBuf> {
    match written {
        Ok(()) => Some(dir),
        Err(error) => {
            tracing::warn!(path = %dir.display(), %error, "cannot write cgroup limit");
            let _ = std::fs::remove_dir(&dir);
            None
        }
    }
}

fn write_control(dir: &Path, file: &str, value: &str) -> io::Result<()> {
    let path = dir.join(file);
    std::fs::write(&path, value)
        .map_err(|e| io::Error::new(e.kind(), format!("writing {}: {e}", path.display())))
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// One job's cgroups, as recorded in its `job.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct JobCgroups {
    pub memory: Option<PathBuf>,
    pub pids: Option<PathBuf>,
    pub cpu: Option<PathBuf>,
    pub cpuacct: Option<PathBuf>,
}

impl JobCgroups {
    /// Each distinct job cgroup directory.
    fn dirs(&self) -> Vec<&PathBuf> {
        let mut dirs: Vec<&PathBuf> = Vec::new();
        for dir in [&self.memory, &self.pids, &self.cpu, &self.cpuacct]
            .into_iter()
            .flatten()
        {
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        dirs
    }

    /// Keeps only directories named after `id`, so that a damaged record can
    /// never make the runtime kill or remove anything but this job's cgroups.
    pub fn belonging_to(self, id: &InvestigationId) -> Self {
        let own = |dir: Option<PathBuf>| {
            dir.filter(|d| d.file_name().and_then(|n| n.to_str()) == Some(id.as_str()))
        };
        JobCgroups {
            memory: own(self.memory),
            pids: own(self.pids),
            cpu: own(self.cpu),
            cpuacct: own(self.cpuacct),
        }
    }

    /// Moves the process into every job cgroup. A controller that refuses is
    /// dropped from the record (and its cgroup removed), so the caller can
    /// fall back to rlimits for it.
    pub fn attach(&mut self, pid: i32) {
        let value = pid.to_string();
        for slot in [
            &mut self.memory,
            &mut self.pids,
            &mut self.cpu,
            &mut self.cpuacct,
        ] {
            if let Some(dir) = slot.as_ref()
                && let Err(error) = write_control(dir, "cgroup.procs", &value)
            {
                tracing::warn!(%error, "cannot move job into its cgroup");
                let _ = std::fs::remove_dir(dir);
                *slot = None;
            }
        }
    }

    pub fn limits_memory(&self) -> bool {
        self.memory.is_some()
    }

    pub fn limits_processes(&self) -> bool {
        self.pids.is_some()
    }

    /// Processes the kernel OOM-killed in the memory cgroup.
    pub fn oom_kills(&self) -> u64 {
        let Some(dir) = &self.memory else { return 0 };
        std::fs::read_to_string(dir.join("memory.oom_control"))
            .ok()
            .and_then(|text| {
                text.lines().find_map(|line| {
                    line.strip_prefix("oom_kill ")
                        .and_then(|n| n.trim().parse().ok())
                })
            })
            .unwrap_or(0)
    }

    /// How often an allocation hit the memory limit.
    pub fn memory_failures(&self) -> u64 {
        self.memory
            .as_ref()
            .and_then(|dir| read_u64(&dir.join("memory.failcnt")))
            .unwrap_or(0)
    }

    pub fn peak_memory_bytes(&self) -> Option<u64> {
        read_u64(&self.memory.as_ref()?.join("memory.max_usage_in_bytes"))
    }

    pub fn cpu_seconds(&self) -> Option<f64> {
        let nanos = read_u64(&self.cpuacct.as_ref()?.join("cpuacct.usage"))?;
        // f64 is exact up to 2^53 ns (104 days of CPU); enough for cost.
        Some(nanos as f64 / 1e9)
    }

    /// Pids currently in any of the job's cgroups.
    pub fn processes(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = self
            .dirs()
            .into_iter()
            .filter_map(|dir| std::fs::read_to_string(dir.join("cgroup.procs")).ok())
            .flat_map(|text| {
                text.lines()
                    .filter_map(|l| l.trim().parse::<i32>().ok())
                    .collect::<Vec<_>>()
            })
            .filter(|pid| *pid > 1)
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// SIGKILLs every process in the job's cgroups until none is left, which
    /// also catches processes that left the job's process group. Bounded, so
    /// a process the kernel cannot kill does not hang supervision.
    pub async fn kill_all(&self) {
        for _ in 0..200 {
            let pids = self.processes();
            if pids.is_empty() {
                return;
            }
            for pid in pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tracing::warn!("processes remain in job cgroups after repeated SIGKILL");
    }

    /// Removes the job's cgroups; retries while the kernel still tears down
    /// the last processes.
    pub async fn remove(&self) {
        for dir in self.dirs() {
            for attempt in 0..100 {
                match std::fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(error) if attempt == 99 => {
                        tracing::warn!(path = %dir.display(), %error, "cannot remove job cgroup");
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> InvestigationId {
        InvestigationId::generate()
    }

    #[test]
    fn a_directory_without_cgroup_files_is_not_a_controller() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("memory")).unwrap();
        let found = CgroupV1::detect(root.path(), "warden");
        assert!(!found.has_memory());
        assert!(!found.has_pids());
        assert!(!root.path().join("memory/warden").exists());
    }

    #[test]
    fn a_record_cannot_point_outside_the_jobs_own_cgroups() {
        let job = id();
        let record = JobCgroups {
            memory: Some(PathBuf::from("/sys/fs/cgroup/memory/warden").join(job.as_str())),
            pids: Some(PathBuf::from("/sys/fs/cgroup/pids")),
            cpu: Some(PathBuf::from("/sys/fs/cgroup/cpu/warden/inv-other")),
            cpuacct: None,
        };
        let kept = record.belonging_to(&job);
        assert!(kept.memory.is_some());
        assert_eq!(kept.pids, None);
        assert_eq!(kept.cpu, None);
    }

    #[test]
    fn counters_are_read_from_the_memory_cgroup_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("memory.failcnt"), "17\n").unwrap();
        std::fs::write(dir.path().join("memory.max_usage_in_bytes"), "134217728\n").unwrap();
        std::fs::write(dir.path().join("cpuacct.usage"), "1500000000\n").unwrap();
        let cgroups = JobCgroups {
            memory: Some(dir.path().to_path_buf()),
            cpuacct: Some(dir.path().to_path_buf()),
            ..JobCgroups::default()
        };
        assert_eq!(cgroups.oom_kills(), 2);
        assert_eq!(cgroups.memory_failures(), 17);
        assert_eq!(cgroups.peak_memory_bytes(), Some(134_217_728));
        assert_eq!(cgroups.cpu_seconds(), Some(1.5));
        assert_eq!(JobCgroups::default().oom_kills(), 0);
        assert_eq!(JobCgroups::default().cpu_seconds(), None);
    }
}
