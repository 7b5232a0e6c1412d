//! Errors of building the runtime; job operations speak
//! [`warden_core::ports::RuntimeError`].

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KubeRuntimeError {
    /// A directory under the data directory could not be created.
    #[error("cannot prepare {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    /// No usable connection to a cluster (kubeconfig or in-cluster).
    #[error("cannot configure the Kubernetes client: {0}")]
    Client(String),
}
