//! The hook through which every read passes before it is sent.
//!
//! The action gate (a policy engine outside the agent) decides whether an
//! investigation may read a domain with a given connector. Connectors do not
//! depend on it: they call a [`ReadGuard`] trait object before each request,
//! and the composition root hands them the gate. A denial is not an error of
//! the connector; it is reported like unavailability, with the reason, so the
//! investigation records that it was not allowed to look.

use serde::Serialize;
use warden_core::Domain;

/// One read a connector is about to make.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReadRequest {
    /// The source name (`prometheus`, `loki-prod`, ...).
    pub source: String,
    /// `prometheus`, `loki` or `kubernetes`.
    pub connector: &'static str,
    /// The domains the source serves.
    pub domains: Vec<Domain>,
    /// What is read: `promql`, `logql`, `events`, `pods`, `pod_logs`,
    /// `replicasets`, `deployments`, `configmaps`.
    pub kind: &'static str,
    /// The namespace read, for Kubernetes.
    pub namespace: Option<String>,
    /// The query or resource as sent (PromQL, LogQL, `pods/log web-1`).
    pub target: String,
}

/// Why a read was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("read denied: {reason}")]
pub struct ReadDenied {
    pub reason: String,
}

/// Decides whether a read may be sent. Implemented by the action gate.
pub trait ReadGuard: Send + Sync {
    fn check(&self, request: &ReadRequest) -> Result<(), ReadDenied>;
}

/// Allows every read: the guard used until the action gate is wired in.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl ReadGuard for AllowAll {
    fn check(&self, _request: &ReadRequest) -> Result<(), ReadDenied> {
        Ok(())
    }
}
