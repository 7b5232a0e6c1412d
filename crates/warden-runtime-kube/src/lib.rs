//! warden's Kubernetes job runtime: one investigation = one `batch/v1` Job.
//!
//! ```text
//! start ─▶ document kept in memory ─▶ create Job (409: adopt it) ─▶ watch Job + pods by label
//!   pod ─▶ POST /api/v1/jobs/bootstrap (projected token) ─▶ TokenReview ─▶ document, once
//!   watch ─▶ log streams (follow) ─▶ job.log
//!         ─▶ Complete | DeadlineExceeded | PodFailurePolicy (OOM, exit codes) | BackoffLimitExceeded
//!          | image pull stuck past a grace | deleted ─▶ one Finished event
//! cleanup ─▶ delete Job (background propagation) unless kept
//! ```
//!
//! - [`manifest`]: the Job as a pure function of the investigation and the
//!   settings (what `warden job-manifest` prints). No secret in it.
//! - [`outcome`]: from Job and pod status to a [`warden_core::ports::JobOutcome`].
//! - [`KubeRuntime`]: the [`warden_core::ports::JobRuntime`] port over a
//!   `kube::Client`, and the [`warden_core::ports::JobBootstrap`] the
//!   control plane's bootstrap endpoint calls.
//!
//! The runtime watches with kube-runtime's watcher (list, then watch from
//! the list's resource version), never by polling. Dropping it leaves the
//! Jobs running; the next control plane lists them by label and re-adopts
//! them, so an investigation never gets a second Job: the Job name is
//! derived from the investigation id, and a `409 AlreadyExists` on create
//! is answered by adopting the Job that exists.

mod bootstrap;
mod error;
mod logs;
pub mod manifest;
pub mod outcome;
mod runtime;
mod settings;

pub use error::KubeRuntimeError;
pub use manifest::{JobManifestInput, job_manifest, job_name, job_yaml};
pub use runtime::KubeRuntime;
pub use settings::{DEFAULT_LOG_MAX_BYTES, KubeRuntimeConfig, KubeSettings};
