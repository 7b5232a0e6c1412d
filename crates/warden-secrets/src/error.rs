//! One error type for both brokers and the job-side client.
//!
//! Messages carry enough context to act on (which backend, which operation,
//! which domain) and never a secret value, a token or a JWT. A refused read
//! says only *that* it was refused and a coarse reason, so a job probing with
//! a stolen or guessed credential learns nothing it could use.

use std::fmt;
use std::path::PathBuf;

use warden_core::ports::SecretError;

/// Why an access was refused, as far as the caller may know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DenyReason {
    /// The credential is unknown, or does not cover what was asked.
    NotAllowed,
    /// The credential's lease ran out.
    Expired,
    /// The credential was revoked (its investigation ended).
    Revoked,
}

impl DenyReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::NotAllowed => "not allowed",
            DenyReason::Expired => "expired",
            DenyReason::Revoked => "revoked",
        }
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretsError {
    /// The backend could not be reached, or did not answer in time.
    #[error("secrets backend {backend} unavailable during {operation}: {detail}")]
    Unavailable {
        backend: &'static str,
        operation: &'static str,
        detail: String,
    },
    /// OpenBao/Vault is sealed: it answers nothing until an operator unseals it.
    #[error("secrets backend {backend} is sealed (during {operation}); an operator must unseal it")]
    Sealed {
        backend: &'static str,
        operation: &'static str,
    },
    /// Access refused. `target` is the domain, path or operation asked for.
    #[error("access to {target} denied: {reason}")]
    Denied { target: String, reason: DenyReason },
    /// The backend answered with an error.
    #[error("secrets backend {backend} failed during {operation}: {detail}")]
    Backend {
        backend: &'static str,
        operation: &'static str,
        detail: String,
    },
    /// A domain name that no configured [`SecretsDomain`](crate::SecretsDomain) has.
    #[error("unknown secrets domain {0:?}")]
    UnknownDomain(String),
    /// Nothing is stored at the path.
    #[error("no secret stored at {path}")]
    NotFound { path: String },
    /// The request itself is wrong (a past deadline, a malformed path or id).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The embedded store's key file is missing, malformed or too open.
    #[error("key file {path}: {detail}")]
    KeyFile { path: PathBuf, detail: String },
    /// A stored blob failed authentication: tampered with, moved from another
    /// path, or encrypted under another key. Never decrypted into garbage.
    #[error("stored secret for {path} failed authentication (tampered, moved or wrong key)")]
    Corrupt { path: String },
    /// A file operation of the embedded store failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl SecretsError {
    /// Whether trying again later may succeed without anyone changing anything.
    pub fn retryable(&self) -> bool {
        matches!(self, SecretsError::Unavailable { .. })
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        SecretsError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn denied(target: impl Into<String>, reason: DenyReason) -> Self {
        SecretsError::Denied {
            target: target.into(),
            reason,
        }
    }
}

impl From<SecretsError> for SecretError {
    fn from(err: SecretsError) -> Self {
        let text = err.to_string();
        match err {
            SecretsError::Unavailable { .. } | SecretsError::Sealed { .. } => {
                SecretError::Unavailable(text)
            }
            SecretsError::Denied { .. } | SecretsError::UnknownDomain(_) => {
                SecretError::Denied(text)
            }
            SecretsError::NotFound { .. } => SecretError::NotFound(text),
            _ => SecretError::Backend(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_and_unreachable_become_unavailable_at_the_port() {
        let sealed = SecretsError::Sealed {
            backend: "openbao",
            operation: "issue",
        };
        assert!(
            matches!(SecretError::from(sealed), SecretError::Unavailable(m) if m.contains("sealed"))
        );
        let denied = SecretsError::denied("database", DenyReason::Revoked);
        assert!(
            matches!(SecretError::from(denied), SecretError::Denied(m) if m == "access to database denied: revoked")
        );
    }

    #[test]
    fn only_unavailability_is_retryable() {
        let down = SecretsError::Unavailable {
            backend: "openbao",
            operation: "issue",
            detail: "connection refused".into(),
        };
        assert!(down.retryable());
        assert!(!SecretsError::denied("x", DenyReason::NotAllowed).retryable());
    }
}
