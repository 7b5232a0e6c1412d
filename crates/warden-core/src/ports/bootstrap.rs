use async_trait::async_trait;
use secrecy::SecretString;

/// Hands a job that cannot receive its input on a pipe (a Kubernetes pod)
/// the document the local runtime writes to stdin: `{input,
/// result_credential, identity}`, exactly once, to the one pod that proves
/// it is the investigation's job.
///
/// The pod proves it with its projected service-account token; an
/// implementation verifies the token (a TokenReview) and that the pod it
/// names belongs to an investigation with a pending document.
#[async_trait]
pub trait JobBootstrap: Send + Sync {
    /// The JSON document, as a secret: it carries the credentials.
    async fn claim(&self, token: &SecretString) -> Result<SecretString, BootstrapError>;
}

/// Why a claim was refused. Each message is safe to return to the caller:
/// none quotes the token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BootstrapError {
    /// The token is not valid (unknown, expired, wrong audience).
    #[error("token not accepted: {0}")]
    Unauthenticated(String),
    /// A valid token, but not of a pod entitled to any document.
    #[error("not allowed: {0}")]
    Forbidden(String),
    /// The document was already handed out.
    #[error("already claimed: {0}")]
    AlreadyClaimed(String),
    /// No document is waiting (never was, or past its deadline).
    #[error("nothing to claim: {0}")]
    Gone(String),
    /// The verification could not be done (API server unreachable).
    #[error("cannot verify the token now: {0}")]
    Unavailable(String),
}
