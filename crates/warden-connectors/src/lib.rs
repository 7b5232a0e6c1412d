//! Read-only connectors: the agent's [`DataSource`]s for live systems.
//!
//! - [`PrometheusSource`]: PromQL over the Prometheus HTTP API (instant and
//!   range queries); the port's metric queries become label selectors.
//! - [`LokiSource`]: LogQL over the Loki HTTP API; streams become log lines.
//! - [`KubernetesSource`]: the Kubernetes API through kube-rs: events, pod
//!   status (restarts, OOMKilled, phase) and pod logs as log lines, recent
//!   rollouts (ReplicaSet revisions) and ConfigMap changes as changes.
//!
//! Every connector is built to fail soft. Each request has a timeout (one
//! budget per query, retries included), is retried with exponential backoff
//! on 429, 5xx and connection errors (honouring `Retry-After`), and reads at
//! most a configured number of bytes: a longer answer is cut at the last
//! complete record and the cut is reported inside the answer. Whatever goes
//! wrong comes back as [`DataError::Unavailable`] naming the source and the
//! reason (`prometheus unavailable: timeout after 5s`), which the agent
//! records as evidence of unavailability; nothing here panics.
//!
//! Credentials come only from the investigation's granted domain secret, as
//! [`secrecy::SecretString`] inside [`Credentials`]; they are sent as HTTP
//! headers and never logged, formatted or put in a URL.
//!
//! Before each request a connector asks its [`ReadGuard`] whether the read
//! is allowed. The action gate implements that trait; until it is wired in,
//! [`AllowAll`] stands in. A denial becomes unavailability evidence too.
//!
//! The mapping from port queries to PromQL, LogQL and API calls is written
//! down in `docs/connectors.md`.
//!
//! [`DataSource`]: warden_core::ports::DataSource
//! [`DataError::Unavailable`]: warden_core::ports::DataError::Unavailable

pub mod credentials;
pub mod guard;
mod http;
pub mod json_cut;
pub mod kubernetes;
pub mod levels;
pub mod loki;
pub mod prometheus;

pub use credentials::{Credentials, CredentialsError};
pub use guard::{AllowAll, ReadDenied, ReadGuard, ReadRequest};
pub use http::RetryPolicy;
pub use kubernetes::KubernetesSource;
pub use loki::LokiSource;
pub use prometheus::PrometheusSource;

/// A connector that cannot be built from its configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectorError {
    /// A configuration value is unusable; names the field.
    #[error("{source_name}: invalid {field}: {detail}")]
    Config {
        source_name: String,
        field: &'static str,
        detail: String,
    },
    /// The HTTP or Kubernetes client could not be built.
    #[error("{source_name}: could not build the client: {detail}")]
    Client { source_name: String, detail: String },
}
