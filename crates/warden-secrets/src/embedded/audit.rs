//! The read audit log: one JSON line per read attempt, granted or not.
//!
//! A line names the investigation and accessor (when the credential was
//! recognised), the domain and path asked for, and the outcome. It never
//! holds the value or the credential. Appends go through `O_APPEND` with one
//! `write` per line, so concurrent readers in several processes do not
//! interleave within a line.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::SecretsError;

/// One line of `audit.log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub ts: DateTime<Utc>,
    /// `None` when the credential matched no lease.
    pub investigation_id: Option<String>,
    pub accessor: Option<String>,
    pub domain: String,
    /// `None` when the domain is not configured.
    pub path: Option<String>,
    pub granted: bool,
    /// `granted`, or why not (`unknown credential`, `expired`, `revoked`,
    /// `domain not in lease`, `unknown domain`, `no secret stored`, `store error`).
    pub reason: String,
}

pub(crate) struct AuditLog {
    file: PathBuf,
}

impl AuditLog {
    pub(crate) fn new(file: PathBuf) -> Self {
        AuditLog { file }
    }

    pub(crate) fn path(&self) -> &std::path::Path {
        &self.file
    }

    pub(crate) fn append(&self, record: &AuditRecord) -> Result<(), SecretsError> {
        let mut line = serde_json::to_vec(record).map_err(|e| SecretsError::Backend {
            backend: "embedded",
            operation: "audit",
            detail: e.to_string(),
        })?;
        line.push(b'\n');
        OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.file)
            .and_then(|mut f| f.write_all(&line))
            .map_err(|e| SecretsError::io(format!("appending to {}", self.file.display()), e))
    }
}
