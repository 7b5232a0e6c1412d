use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretString;

use crate::alert::Domain;
use crate::investigation::InvestigationId;
use crate::trust::TrustPhase;

/// The identity an investigation receives: a credential scoped to the domains
/// its phase and plan allow, living no longer than its deadline.
pub struct IssuedIdentity {
    /// An id that is safe to log and store (a token accessor, a lease id).
    pub accessor: String,
    pub expires_at: DateTime<Utc>,
    pub domains: Vec<Domain>,
    /// Handed to the job out of band; never logged, stored or put in argv.
    pub credential: SecretString,
}

impl std::fmt::Debug for IssuedIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedIdentity")
            .field("accessor", &self.accessor)
            .field("expires_at", &self.expires_at)
            .field("domains", &self.domains)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    #[error("secrets backend unavailable: {0}")]
    Unavailable(String),
    #[error("secrets backend refused: {0}")]
    Denied(String),
    /// Nothing is stored where the domain's secret should be.
    #[error("not found: {0}")]
    NotFound(String),
    #[error("secrets backend error: {0}")]
    Backend(String),
}

/// Issues and revokes per-investigation identities.
#[async_trait]
pub trait SecretBroker: Send + Sync {
    fn name(&self) -> &str;
    async fn issue(
        &self,
        investigation: &InvestigationId,
        phase: TrustPhase,
        domains: &[Domain],
        expires_at: DateTime<Utc>,
    ) -> Result<IssuedIdentity, SecretError>;
    /// Revokes the identity and every lease it created. Idempotent.
    /// `accessor` is what `issue` returned, as the caller recorded it: a
    /// restarted control plane revokes by it, since the broker's memory of
    /// earlier issues may be gone.
    async fn revoke(
        &self,
        investigation: &InvestigationId,
        accessor: Option<&str>,
    ) -> Result<(), SecretError>;

    /// Serves a domain secret to a job presenting its credential, for
    /// brokers that deliver secrets through the control plane (the embedded
    /// one). Backends that jobs read from directly refuse.
    async fn read(
        &self,
        credential: &SecretString,
        domain: &str,
    ) -> Result<SecretString, SecretError> {
        let _ = (credential, domain);
        Err(SecretError::Denied(format!(
            "{} does not serve secrets through the control plane",
            self.name()
        )))
    }
}
