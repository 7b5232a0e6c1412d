//! `job.json`: the runtime's own record of a started job.
//!
//! It is written before `start` returns and before the job receives its
//! input, so a control plane that crashed before storing the job reference
//! still finds the job on restart and never starts a second one. It holds
//! no secret.

use std::io;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use warden_core::InvestigationId;

use crate::cgroup::JobCgroups;
use crate::procfs::ProcessIdentity;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct JobRecord {
    pub investigation_id: InvestigationId,
    pub pid: i32,
    /// Clock ticks since boot, from `/proc/<pid>/stat`; guards against pid
    /// reuse.
    pub start_time: u64,
    pub job_ref: String,
    pub started_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub memory_limit_bytes: u64,
    /// How memory is limited: `cgroup_v1` or `rlimit_as`.
    pub memory_limited_by: MemoryLimit,
    pub cgroups: JobCgroups,
    /// Length of the log file before the job started: classification reads
    /// only what this job wrote.
    pub log_offset: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MemoryLimit {
    CgroupV1,
    RlimitAs,
}

impl JobRecord {
    pub fn identity(&self) -> ProcessIdentity {
        ProcessIdentity {
            pid: self.pid,
            start_time: self.start_time,
        }
    }

    /// Writes atomically (temporary file, then rename) so that a crash never
    /// leaves half a record.
    pub fn write(&self, path: &Path) -> io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, json)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, path)
    }

    /// `Ok(None)` when there is no record.
    pub fn read(path: &Path) -> io::Result<Option<Self>> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_survives_a_write_and_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.json");
        assert_eq!(JobRecord::read(&path).unwrap(), None);
        let record = JobRecord {
            investigation_id: InvestigationId::generate(),
            pid: 4242,
            start_time: 99,
            job_ref: "pid:4242:99".into(),
            started_at: Utc::now(),
            deadline: Utc::now(),
            memory_limit_bytes: 1 << 27,
            memory_limited_by: MemoryLimit::RlimitAs,
            cgroups: JobCgroups::default(),
            log_offset: 10,
        };
        record.write(&path).unwrap();
        assert_eq!(JobRecord::read(&path).unwrap(), Some(record));
        assert!(!path.with_extension("json.tmp").exists());
    }

    #[test]
    fn a_corrupt_record_is_an_error_not_an_absent_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.json");
        std::fs::write(&path, b"{not json").unwrap();
        assert!(JobRecord::read(&path).is_err());
    }
}
