//! The embedded broker: per-investigation leases over an encrypted store,
//! for the single-machine mode where no OpenBao runs.
//!
//! ```text
//! <dir>/store/<hex(path)>      AES-256-GCM blob per secret path (0600)
//! <dir>/leases/<inv>.json      lease: domains, expiry, accessor, SHA-256 of the credential
//! <dir>/audit.log              one JSON line per read attempt
//! ```
//!
//! It mirrors what OpenBao gives the cluster mode: `issue` hands out a random
//! 256-bit credential bound to one investigation, its allowed domains and its
//! deadline; `read` checks it on every call, so a revoked or expired lease
//! stops working at once and a rotated secret is seen by the next read. The
//! credential is never stored (only its hash), the values are never stored in
//! the clear, and every attempt is audited.
//!
//! The key is 32 random bytes in a file only its owner can read, or bytes
//! the caller read from a mounted Kubernetes Secret. Losing the key loses the
//! store; that is the point of it.

mod audit;
mod key;
mod lease;
mod store;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use warden_core::ports::{IssuedIdentity, SecretBroker, SecretError};
use warden_core::{Domain, InvestigationId, TrustPhase};

pub use audit::AuditRecord;
pub use key::KeySource;
pub use store::SecretMeta;

use crate::domain::{self, SecretsDomain, truncate};
use crate::error::{DenyReason, SecretsError};
use crate::fsutil::{private_dir, random_hex};
use audit::AuditLog;
use lease::{Lease, LeaseBook, credential_hash};
use store::SecretStore;

pub struct EmbeddedBroker {
    store: SecretStore,
    leases: LeaseBook,
    audit: AuditLog,
    domains: Vec<SecretsDomain>,
    /// Serialises lease writes within this process (issue, revoke).
    lease_lock: Mutex<()>,
    dir: PathBuf,
}

impl std::fmt::Debug for EmbeddedBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBroker")
            .field("dir", &self.dir)
            .field("domains", &self.domains)
            .finish_non_exhaustive()
    }
}

impl EmbeddedBroker {
    /// Opens (creating if needed) the store under `dir` with the built-in
    /// domains.
    pub fn open(dir: &Path, key: KeySource) -> Result<Self, SecretsError> {
        // The default key file lives inside the store's directory.
        private_dir(dir)?;
        let key = key.load()?;
        let store_dir = dir.join("store");
        let lease_dir = dir.join("leases");
        private_dir(&store_dir)?;
        private_dir(&lease_dir)?;
        Ok(EmbeddedBroker {
            store: SecretStore::new(store_dir, &key)?,
            leases: LeaseBook::new(lease_dir),
            audit: AuditLog::new(dir.join("audit.log")),
            domains: domain::default_domains(),
            lease_lock: Mutex::new(()),
            dir: dir.to_path_buf(),
        })
    }

    /// Replaces the domains (from configuration).
    pub fn with_domains(mut self, domains: Vec<SecretsDomain>) -> Result<Self, SecretsError> {
        let problems = domain::validate_domains(&domains);
        if !problems.is_empty() {
            return Err(SecretsError::Invalid(problems.join("; ")));
        }
        self.domains = domains;
        Ok(self)
    }

    pub fn domains(&self) -> &[SecretsDomain] {
        &self.domains
    }

    pub fn audit_log_path(&self) -> &Path {
        self.audit.path()
    }

    /// Stores `value` at `path`, creating it or writing its next version.
    pub fn put(&self, path: &str, value: &SecretString) -> Result<SecretMeta, SecretsError> {
        self.store.write(path, value, false)
    }

    /// Replaces the value at `path`, which must exist. The next read by any
    /// lease sees the new value.
    pub fn rotate(&self, path: &str, value: &SecretString) -> Result<SecretMeta, SecretsError> {
        self.store.write(path, value, true)
    }

    /// Every stored path with its version and time of last write; no values.
    pub fn list(&self) -> Result<Vec<SecretMeta>, SecretsError> {
        self.store.list()
    }

    /// Creates the investigation's lease and returns its credential. Issuing
    /// again for a live investigation replaces the old credential; an
    /// investigation whose lease was revoked gets no new one.
    pub fn issue_lease(
        &self,
        investigation: &InvestigationId,
        phase: TrustPhase,
        domains: &[Domain],
        expires_at: DateTime<Utc>,
    ) -> Result<IssuedIdentity, SecretsError> {
        let inv = InvestigationId::parse(investigation.as_str()).map_err(SecretsError::Invalid)?;
        let now = Utc::now();
        if expires_at <= now {
            return Err(SecretsError::Invalid(format!(
                "lease for {inv} would expire at {expires_at}, which has passed"
            )));
        }
        let mut names: Vec<String> = Vec::with_capacity(domains.len());
        for d in domains {
            domain::find(&self.domains, d.as_str())?;
            if !names.iter().any(|n| n == d.as_str()) {
                names.push(d.as_str().to_string());
            }
        }
        names.sort();
        let token = SecretString::from(random_hex(32)?);
        let lease = Lease {
            investigation_id: inv.to_string(),
            phase,
            domains: names.clone(),
            issued_at: now,
            expires_at,
            accessor: random_hex(16)?,
            token_sha256: hex::encode(credential_hash(&token)),
            revoked: false,
            revoked_at: None,
        };
        let _guard = self.lease_lock.lock().unwrap_or_else(|p| p.into_inner());
        if self.leases.load(inv.as_str())?.is_some_and(|l| l.revoked) {
            return Err(SecretsError::denied(
                format!("a new identity for {inv}"),
                DenyReason::Revoked,
            ));
        }
        self.leases.save(&lease)?;
        Ok(IssuedIdentity {
            accessor: lease.accessor,
            expires_at,
            domains: names.into_iter().map(Domain).collect(),
            credential: token,
        })
    }

    /// Marks the investigation's lease revoked. Idempotent; an investigation
    /// that never had a lease is not an error.
    pub fn revoke_lease(&self, investigation: &InvestigationId) -> Result<(), SecretsError> {
        let inv = InvestigationId::parse(investigation.as_str()).map_err(SecretsError::Invalid)?;
        let _guard = self.lease_lock.lock().unwrap_or_else(|p| p.into_inner());
        match self.leases.load(inv.as_str())? {
            Some(mut lease) if !lease.revoked => {
                lease.revoked = true;
                lease.revoked_at = Some(Utc::now());
                self.leases.save(&lease)
            }
            _ => Ok(()),
        }
    }

    /// The current secret of `domain`, if `credential` is a live lease that
    /// covers it. Every attempt is written to the audit log; when that write
    /// fails the read fails too.
    pub fn read(
        &self,
        credential: &SecretString,
        domain: &str,
    ) -> Result<SecretString, SecretsError> {
        let domain = truncate(domain, 64);
        let lease = self.leases.find_by_hash(&credential_hash(credential))?;
        let configured = self.domains.iter().find(|d| d.name == domain);
        let now = Utc::now();

        let refusal = match &lease {
            None => Some((DenyReason::NotAllowed, "unknown credential")),
            Some(l) if l.revoked => Some((DenyReason::Revoked, "revoked")),
            Some(l) if now >= l.expires_at => Some((DenyReason::Expired, "expired")),
            Some(l) if !l.domains.contains(&domain) => {
                Some((DenyReason::NotAllowed, "domain not in lease"))
            }
            Some(_) if configured.is_none() => Some((DenyReason::NotAllowed, "unknown domain")),
            Some(_) => None,
        };
        let outcome = match (refusal, configured) {
            (Some((reason, _)), _) => Err(SecretsError::denied(domain.clone(), reason)),
            (None, Some(d)) => self.store.read(&d.path),
            (None, None) => Err(SecretsError::denied(domain.clone(), DenyReason::NotAllowed)),
        };
        let reason = match (&outcome, refusal) {
            (Ok(_), _) => "granted",
            (Err(_), Some((_, why))) => why,
            (Err(SecretsError::NotFound { .. }), None) => "no secret stored",
            (Err(_), None) => "store error",
        };
        self.audit.append(&AuditRecord {
            ts: now,
            investigation_id: lease.as_ref().map(|l| l.investigation_id.clone()),
            accessor: lease.as_ref().map(|l| l.accessor.clone()),
            domain: domain.clone(),
            path: configured.map(|d| d.path.clone()),
            granted: outcome.is_ok(),
            reason: reason.to_string(),
        })?;
        outcome
    }
}

#[async_trait]
impl SecretBroker for EmbeddedBroker {
    fn name(&self) -> &str {
        "embedded"
    }

    async fn issue(
        &self,
        investigation: &InvestigationId,
        phase: TrustPhase,
        domains: &[Domain],
        expires_at: DateTime<Utc>,
    ) -> Result<IssuedIdentity, SecretError> {
        Ok(self.issue_lease(investigation, phase, domains, expires_at)?)
    }

    async fn revoke(
        &self,
        investigation: &InvestigationId,
        _accessor: Option<&str>,
    ) -> Result<(), SecretError> {
        // Leases are kept on disk by investigation, so the id suffices.
        Ok(self.revoke_lease(investigation)?)
    }

    async fn read(
        &self,
        credential: &SecretString,
        domain: &str,
    ) -> Result<SecretString, SecretError> {
        Ok(EmbeddedBroker::read(self, credential, domain)?)
    }
}
