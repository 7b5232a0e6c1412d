//! Leases: who may read which domains until when.
//!
//! One JSON file per investigation under `leases/`. The credential itself is
//! never stored, only its SHA-256: a copy of the directory does not let
//! anyone read a secret. Lookups hash the presented credential and compare
//! in constant time.

use std::fs;
use std::io::ErrorKind;
use std::path::PathBuf;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{SHA256, digest};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use warden_core::TrustPhase;

use crate::error::SecretsError;
use crate::fsutil::write_atomic;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Lease {
    pub investigation_id: String,
    pub phase: TrustPhase,
    /// Domain names the credential may read.
    pub domains: Vec<String>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// A public id for logs and audit lines.
    pub accessor: String,
    /// Hex SHA-256 of the credential.
    pub token_sha256: String,
    pub revoked: bool,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub(crate) fn credential_hash(credential: &SecretString) -> [u8; 32] {
    let d = digest(&SHA256, credential.expose_secret().as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

pub(crate) struct LeaseBook {
    dir: PathBuf,
}

impl LeaseBook {
    pub(crate) fn new(dir: PathBuf) -> Self {
        LeaseBook { dir }
    }

    fn file_for(&self, investigation_id: &str) -> PathBuf {
        // Ids are validated by the caller (`inv-` + base32), so they are safe
        // file names.
        self.dir.join(format!("{investigation_id}.json"))
    }

    pub(crate) fn save(&self, lease: &Lease) -> Result<(), SecretsError> {
        let json = serde_json::to_vec_pretty(lease).map_err(|e| SecretsError::Backend {
            backend: "embedded",
            operation: "save lease",
            detail: e.to_string(),
        })?;
        write_atomic(&self.file_for(&lease.investigation_id), &json)
    }

    pub(crate) fn load(&self, investigation_id: &str) -> Result<Option<Lease>, SecretsError> {
        let file = self.file_for(investigation_id);
        match fs::read(&file) {
            Ok(bytes) => parse(&file, &bytes).map(Some),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SecretsError::io(format!("reading {}", file.display()), e)),
        }
    }

    /// The lease whose credential hashes to `hash`, if any.
    pub(crate) fn find_by_hash(&self, hash: &[u8; 32]) -> Result<Option<Lease>, SecretsError> {
        let entries = fs::read_dir(&self.dir)
            .map_err(|e| SecretsError::io(format!("listing {}", self.dir.display()), e))?;
        for entry in entries {
            let entry = entry
                .map_err(|e| SecretsError::io(format!("listing {}", self.dir.display()), e))?;
            let path = entry.path();
            let is_lease = path.extension().is_some_and(|x| x == "json")
                && !entry.file_name().to_string_lossy().starts_with('.');
            if !is_lease {
                continue;
            }
            let bytes = match fs::read(&path) {
                Ok(b) => b,
                // Renamed away between listing and reading.
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(SecretsError::io(format!("reading {}", path.display()), e)),
            };
            let lease = parse(&path, &bytes)?;
            let stored = hex::decode(&lease.token_sha256).unwrap_or_default();
            if verify_slices_are_equal(&stored, hash).is_ok() {
                return Ok(Some(lease));
            }
        }
        Ok(None)
    }
}

fn parse(file: &std::path::Path, bytes: &[u8]) -> Result<Lease, SecretsError> {
    serde_json::from_slice(bytes).map_err(|e| SecretsError::Backend {
        backend: "embedded",
        operation: "read lease",
        detail: format!("{} is malformed: {e}", file.display()),
    })
}
