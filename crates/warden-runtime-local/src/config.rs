//! How the local runtime is set up.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where cgroup v1 hierarchies are mounted on most Linux systems.
pub const DEFAULT_CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// Parent cgroup of all job cgroups, so an operator finds them in one place.
pub const DEFAULT_CGROUP_PARENT: &str = "warden";
/// A job's log may grow to this size. Large enough for a verbose agent's
/// run, small enough that a runaway writer cannot fill a disk.
pub const DEFAULT_LOG_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Between SIGTERM and SIGKILL at a deadline or cancel: long enough to
/// flush a line of log, short enough not to stretch the deadline.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq)]
pub struct LocalRuntimeConfig {
    /// Jobs live in `<data_dir>/jobs/<investigation-id>/`, logs in
    /// `<data_dir>/logs/<investigation-id>.log`.
    pub data_dir: PathBuf,
    /// The job command, an absolute path (the job's `PATH` is not the
    /// control plane's). The warden binary passes itself with
    /// `["agent", "run"]`.
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Where cgroup v1 controllers are mounted; `None` means
    /// [`DEFAULT_CGROUP_ROOT`]. A directory without controllers makes the
    /// runtime fall back to rlimits.
    pub cgroup_root: Option<PathBuf>,
    /// One path component; job cgroups are created beneath it in every
    /// controller.
    pub cgroup_parent: String,
    /// Largest log (and any other file) a job may write.
    pub log_max_bytes: u64,
    /// How long a job may take to exit after SIGTERM before its process
    /// group is SIGKILLed. Zero sends SIGKILL at once.
    pub kill_grace: Duration,
}

impl LocalRuntimeConfig {
    /// A configuration with the defaults for everything but what has none.
    pub fn new(
        data_dir: impl Into<PathBuf>,
        program: impl Into<PathBuf>,
        args: Vec<String>,
    ) -> Self {
        LocalRuntimeConfig {
            data_dir: data_dir.into(),
            program: program.into(),
            args,
            cgroup_root: None,
            cgroup_parent: DEFAULT_CGROUP_PARENT.to_string(),
            log_max_bytes: DEFAULT_LOG_MAX_BYTES,
            kill_grace: DEFAULT_KILL_GRACE,
        }
    }

    pub fn cgroup_root(&self) -> &Path {
        self.cgroup_root
            .as_deref()
            .unwrap_or(Path::new(DEFAULT_CGROUP_ROOT))
    }

    /// Problems that make the configuration unusable, each naming its field.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.program.is_absolute() {
            problems.push(format!(
                "program {} must be an absolute path",
                self.program.display()
            ));
        } else if !self.program.is_file() {
            problems.push(format!("program {} is not a file", self.program.display()));
        }
        let parent_ok = !self.cgroup_parent.is_empty()
            && self.cgroup_parent != "."
            && self.cgroup_parent != ".."
            && self
                .cgroup_parent
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !parent_ok {
            problems.push(format!(
                "cgroup_parent {:?} must be one path component of letters, digits, '-', '_' or '.'",
                self.cgroup_parent
            ));
        }
        if self.log_max_bytes < 4096 {
            problems.push("log_max_bytes must be at least 4096".to_string());
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_usable_for_an_existing_absolute_program() {
        let config = LocalRuntimeConfig::new("/tmp/x", "/bin/sh", vec![]);
        assert!(config.problems().is_empty(), "{:?}", config.problems());
        assert_eq!(config.cgroup_root(), Path::new("/sys/fs/cgroup"));
    }

    #[test]
    fn each_bad_field_is_named() {
        let mut config = LocalRuntimeConfig::new("/tmp/x", "sh", vec![]);
        config.cgroup_parent = "../escape".into();
        config.log_max_bytes = 1;
        let problems = config.problems().join("\n");
        assert!(problems.contains("program sh"));
        assert!(problems.contains("cgroup_parent"));
        assert!(problems.contains("log_max_bytes"));
    }
}
