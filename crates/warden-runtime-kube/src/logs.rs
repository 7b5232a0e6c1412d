//! The per-investigation log: the agent container's output, streamed from
//! the API server as it is written (`follow=true`), appended to
//! `<data_dir>/jobs/<id>/job.log`, plus lines from the runtime itself
//! (`[warden-runtime] ...`) saying what happened to the Job and its pods.
//!
//! What the pod writes is data, never instructions: it is only stored and
//! returned as text.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use futures::{AsyncBufReadExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::LogParams;

use crate::manifest::CONTAINER;

/// The most a `logs` call returns; the tail is kept.
pub(crate) const LOG_READ_CAP_BYTES: u64 = 8 * 1024 * 1024;

/// One investigation's log file, size-capped.
pub(crate) struct JobLog {
    path: PathBuf,
    max_bytes: u64,
    state: Mutex<LogState>,
}

struct LogState {
    written: u64,
    cut: bool,
}

fn open_for_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

impl JobLog {
    /// Creates the directory (0700) and notes the current size.
    pub(crate) fn open(path: PathBuf, max_bytes: u64) -> io::Result<Arc<JobLog>> {
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let written = std::fs::metadata(&path).map_or(0, |m| m.len());
        Ok(Arc::new(JobLog {
            path,
            max_bytes,
            state: Mutex::new(LogState {
                written,
                cut: false,
            }),
        }))
    }

    fn write_line(&self, line: &str) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.cut {
            return;
        }
        let len = line.len() as u64 + 1;
        let (text, cut) = if state.written + len > self.max_bytes {
            (
                format!(
                    "[warden-runtime] log cut: it reached its limit of {} bytes",
                    self.max_bytes
                ),
                true,
            )
        } else {
            (line.to_string(), false)
        };
        let written = open_for_append(&self.path).and_then(|mut f| writeln!(f, "{text}"));
        match written {
            Ok(()) => {
                state.written += text.len() as u64 + 1;
                state.cut = cut;
            }
            Err(error) => {
                tracing::warn!(path = %self.path.display(), %error, "cannot append to job log")
            }
        }
    }

    /// A line from the runtime itself.
    pub(crate) fn note(&self, line: &str) {
        self.write_line(&format!("[warden-runtime] {line}"));
    }
}

/// Follows one pod's agent log until the container ends or the stream
/// breaks. Runs as its own task.
pub(crate) async fn follow_pod(pods: Api<Pod>, pod: String, log: Arc<JobLog>) {
    let params = LogParams {
        container: Some(CONTAINER.to_string()),
        follow: true,
        ..LogParams::default()
    };
    let stream = match pods.log_stream(&pod, &params).await {
        Ok(stream) => stream,
        Err(error) => {
            log.note(&format!("cannot read the log of pod {pod}: {error}"));
            return;
        }
    };
    let mut lines = stream.lines();
    loop {
        match lines.try_next().await {
            Ok(Some(line)) => log.write_line(&line),
            Ok(None) => break,
            Err(error) => {
                log.note(&format!("log stream of pod {pod} broke: {error}"));
                break;
            }
        }
    }
}

/// Reads at most `cap` bytes from the end of the file, as lossy UTF-8.
pub(crate) fn read_tail(path: &Path, cap: u64) -> io::Result<String> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(cap)))?;
    let mut bytes = Vec::new();
    file.take(cap).read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_stops_at_its_cap_with_one_note() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs/x/job.log");
        let log = JobLog::open(path.clone(), 100).unwrap();
        for i in 0..20 {
            log.write_line(&format!("line {i:02}"));
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("line 00\n"), "{text}");
        assert_eq!(text.matches("log cut").count(), 1, "{text}");
        assert!(!text.contains("line 19"), "{text}");
        assert_eq!(read_tail(&path, 5).unwrap().len(), 5);
    }
}
