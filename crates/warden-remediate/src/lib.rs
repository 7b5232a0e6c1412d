//! Remediation: one approved action, run once, in its own Kubernetes Job
//! whose service account holds exactly that action's permissions on that
//! one target.
//!
//! - [`objects`] builds the ServiceAccount, Role, RoleBinding and Job
//!   (restricted Pod Security) purely from the action;
//! - [`runner`] is the code the Job runs (`warden remediate run`): the
//!   action itself, through the API, as that service account;
//! - [`executor::KubeExecutor`] is the control plane's side: it creates the
//!   objects, waits for the Job, reads its result line and deletes
//!   everything again. Whether the action *worked* is decided afterwards by
//!   the control plane, from the incident's alerts.

pub mod executor;
#[cfg(feature = "fake-kubelet")]
pub mod fake_kubelet;
pub mod objects;
pub mod runner;

pub use executor::KubeExecutor;
pub use objects::{JobSettings, RemediationObjects, action_args, build, parse_action_args};
pub use runner::{RunError, run_action};

use warden_core::ProposedAction;

/// The job entrypoint: runs `action` with the in-cluster service-account
/// client and prints one result line. Exit code 0 when applied.
pub async fn run_in_cluster(action: &ProposedAction, max_replicas: u32) -> i32 {
    let client = match kube::Client::try_default().await {
        Ok(c) => c,
        Err(e) => {
            println!("remediation failed: no Kubernetes client: {e}");
            return 1;
        }
    };
    match run_action(client, action, max_replicas).await {
        Ok(applied) => {
            println!("{applied}");
            0
        }
        Err(e) => {
            println!("remediation failed: {e}");
            1
        }
    }
}
