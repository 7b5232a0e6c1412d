//! What the runtime and the manifest builder are configured with.

use std::path::PathBuf;
use std::time::Duration;

use warden_core::TrustPhase;

/// A job's log may grow to this size; what comes after is dropped (and the
/// cut noted), so a runaway writer cannot fill the control plane's disk.
pub const DEFAULT_LOG_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// How investigations become Jobs. The composition root fills it from
/// `runtime.kubernetes` in `warden.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeSettings {
    /// Where Jobs are created.
    pub namespace: String,
    pub image: String,
    pub image_pull_policy: String,
    /// ServiceAccount per trust phase, in [`TrustPhase::ALL`] order.
    pub service_accounts: [String; 4],
    /// Audience of the projected token (TokenReview checks it).
    pub token_audience: String,
    pub ttl_seconds_after_finished: u32,
    pub backoff_limit: u32,
    pub keep_finished_jobs: bool,
    /// The control plane as pods reach it; the bootstrap and report URLs
    /// are built on it.
    pub control_plane_url: String,
    pub vault_agent_injector: bool,
    pub run_as_user: i64,
    /// A pod stuck pulling its image this long fails its job.
    pub image_pull_grace: Duration,
}

impl KubeSettings {
    pub fn service_account(&self, phase: TrustPhase) -> &str {
        let index = TrustPhase::ALL
            .iter()
            .position(|p| *p == phase)
            .unwrap_or_default();
        self.service_accounts
            .get(index)
            .map_or("default", String::as_str)
    }

    /// `POST` here with the projected token to claim the job's input.
    pub fn bootstrap_url(&self) -> String {
        format!(
            "{}/api/v1/jobs/bootstrap",
            self.control_plane_url.trim_end_matches('/')
        )
    }

    pub fn report_url(&self, investigation: &str) -> String {
        format!(
            "{}/api/v1/investigations/{investigation}/report",
            self.control_plane_url.trim_end_matches('/')
        )
    }
}

/// Where the runtime keeps what it writes on the control plane's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeRuntimeConfig {
    pub settings: KubeSettings,
    /// Job logs go to `<data_dir>/jobs/<investigation-id>/job.log`.
    pub data_dir: PathBuf,
    pub log_max_bytes: u64,
}

impl KubeRuntimeConfig {
    pub fn new(settings: KubeSettings, data_dir: impl Into<PathBuf>) -> Self {
        KubeRuntimeConfig {
            settings,
            data_dir: data_dir.into(),
            log_max_bytes: DEFAULT_LOG_MAX_BYTES,
        }
    }
}
