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
    async fn revoke(&self, investigation: &InvestigationId) -> Result<(), SecretError>;
}
