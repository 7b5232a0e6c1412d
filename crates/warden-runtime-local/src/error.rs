//! Errors of building the runtime; job operations speak
//! [`warden_core::ports::RuntimeError`].

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalRuntimeError {
    /// The configuration cannot work; each problem names its field.
    #[error("invalid local runtime configuration: {}", problems.join("; "))]
    Config { problems: Vec<String> },
    /// A directory under the data directory could not be created.
    #[error("cannot prepare {}: {source}", path.display())]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
}
