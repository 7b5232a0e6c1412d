//! The per-investigation log file: the job's stdout and stderr, appended
//! to one file, plus a line from the runtime when the job starts and ends.
//!
//! What a job writes is data about the job, never instructions: it is only
//! ever returned as text, and the runtime reads it for one thing — whether
//! an allocation failed — to classify the end.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The most a `logs` call returns; the tail is kept, since the end of a
/// log usually says how the job ended.
pub(crate) const LOG_READ_CAP_BYTES: u64 = 8 * 1024 * 1024;

/// How much of the job's own output is searched for allocation failures.
const CLASSIFY_TAIL_BYTES: u64 = 64 * 1024;

/// Opens (creating, mode 0600) the log for appending.
pub(crate) fn open_for_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Reads at most `cap` bytes from the end of the file starting at `from`,
/// as lossy UTF-8 (a cut through a character becomes U+FFFD).
pub(crate) fn read_tail(path: &Path, from: u64, cap: u64) -> io::Result<String> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let start = from.max(len.saturating_sub(cap));
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(cap).read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The end of what the job wrote after `offset`, for classification.
pub(crate) fn job_output_tail(path: &Path, offset: u64) -> String {
    read_tail(path, offset, CLASSIFY_TAIL_BYTES).unwrap_or_default()
}

/// Appends one line from the runtime itself.
pub(crate) fn note(path: &Path, line: &str) {
    let written = open_for_append(path).and_then(|mut f| writeln!(f, "[warden-runtime] {line}"));
    if let Err(error) = written {
        tracing::warn!(path = %path.display(), %error, "cannot append to job log");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_log_is_cut_to_its_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        std::fs::write(&path, "0123456789").unwrap();
        assert_eq!(read_tail(&path, 0, 4).unwrap(), "6789");
        assert_eq!(read_tail(&path, 0, 100).unwrap(), "0123456789");
        assert_eq!(read_tail(&path, 8, 100).unwrap(), "89");
    }

    #[test]
    fn a_cut_through_a_character_is_replaced_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        std::fs::write(&path, "aé").unwrap();
        assert_eq!(read_tail(&path, 0, 1).unwrap(), "\u{fffd}");
    }

    #[test]
    fn runtime_notes_are_appended_after_job_output() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        std::fs::write(&path, "job says hi\n").unwrap();
        note(&path, "job finished");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "job says hi\n[warden-runtime] job finished\n"
        );
    }
}
