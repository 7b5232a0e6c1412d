//! `warden render`: one `warden.yaml` to the complete security state of every
//! (environment × trust phase), as typed objects and as reviewable files.
//!
//! Four phases across three environments are twelve security states. Each
//! is rendered in full — ServiceAccounts, RBAC, NetworkPolicies, the
//! investigations namespace's ResourceQuota and LimitRange, the OpenBao/Vault
//! policies and auth roles, and the Helm values the chart in
//! `deploy/helm/warden` consumes — so that promoting an environment is a
//! reviewed diff between two directories that already exist, and drift
//! detection (`warden-drift`) compares the live state with one of them.
//!
//! ## Namespacing
//! One cluster (and one OpenBao) per environment: every state uses the same
//! namespaces from `namespaces`, and states are kept apart by directory,
//! `OUT/<environment>/<phase>/`. Every object carries the labels
//! `warden.dev/environment` and `warden.dev/phase`. `OUT/values-<env>.yaml`
//! is the state of the phase the environment is in today.
//!
//! ## Determinism
//! Output depends on the configuration only: no timestamps, maps in sorted
//! order, lists in declaration order. Each file starts with a header naming
//! its generator and the sha256 of the effective configuration (its
//! canonical JSON, so comment-only edits of `warden.yaml` change nothing).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};
use warden_control::config::Config;
use warden_core::TrustPhase;

mod files;
mod kube;
mod openbao;
mod values;

pub use kube::{
    DEFAULT_DENY_POLICY, INVESTIGATION_POD_NAME, LABEL_ENVIRONMENT, LABEL_NAME, LABEL_PHASE,
    QUOTA_NAME, READ_ONLY_RULES, REMEDIATION_POD_NAME, remediation_rules,
    remediation_service_account,
};
pub use openbao::{JWT_MOUNT, KUBERNETES_MOUNT};

/// Everything `render` produced: the states as data, and the files to write
/// (relative paths, sorted).
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub states: Vec<SecurityState>,
    pub files: BTreeMap<PathBuf, String>,
}

/// The complete security state of one environment in one trust phase.
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityState {
    pub environment: String,
    pub phase: TrustPhase,
    /// Kubernetes manifests: ServiceAccounts, Roles, RoleBindings,
    /// NetworkPolicies, the ResourceQuota and the LimitRange.
    pub objects: Vec<Value>,
    /// OpenBao/Vault ACL policy name -> HCL.
    pub vault_policies: BTreeMap<String, String>,
    /// The auth roles binding those policies, each
    /// `{"path": "auth/<mount>/role/<name>", "data": {...}}` as written to
    /// the Vault API.
    pub vault_roles: Vec<Value>,
    /// The values `deploy/helm/warden` takes for this state.
    pub helm_values: Value,
}

impl Rendered {
    /// The state of `environment` in `phase`.
    pub fn state(&self, environment: &str, phase: TrustPhase) -> Option<&SecurityState> {
        self.states
            .iter()
            .find(|s| s.environment == environment && s.phase == phase)
    }
}

/// Why a configuration cannot be rendered. Each problem starts with its
/// field path, like `Config::validate`'s, so that
/// `warden_control::config::locate_problems` can add `file:line:column`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RenderError {
    #[error("cannot render:\n  {}", .0.join("\n  "))]
    Invalid(Vec<String>),
}

impl RenderError {
    pub fn problems(&self) -> &[String] {
        match self {
            RenderError::Invalid(p) => p,
        }
    }
}

/// Renders every (environment × phase) state of `config`, in memory.
pub fn render(config: &Config) -> Result<Rendered, RenderError> {
    let mut problems = config.validate();
    problems.extend(kube::check(config));
    if !problems.is_empty() {
        return Err(RenderError::Invalid(problems));
    }
    let digest = config_digest(config);
    let mut states = Vec::new();
    for env in &config.environments {
        for phase in TrustPhase::ALL {
            let objects = kube::objects(config, &env.name, phase);
            let (vault_policies, vault_roles) = openbao::state(config, phase);
            let helm_values = values::values(config, &env.name, phase, &objects);
            states.push(SecurityState {
                environment: env.name.clone(),
                phase,
                objects,
                vault_policies,
                vault_roles,
                helm_values,
            });
        }
    }
    let files = files::files(config, &states, &digest).map_err(|e| {
        RenderError::Invalid(vec![format!("environments: cannot serialise a state: {e}")])
    })?;
    Ok(Rendered { states, files })
}

/// sha256 of the configuration's canonical JSON (struct fields in
/// declaration order, maps sorted).
pub fn config_digest(config: &Config) -> String {
    let json = serde_json::to_vec(config).unwrap_or_default();
    hex::encode(Sha256::digest(&json))
}

/// Writes the rendered files below `out`, replacing what a previous render
/// left there. Everything is written to a sibling temporary directory first
/// and moved into place with one rename, so a failure leaves `out` as it
/// was. An existing `out` must look like a previous render (every file in it
/// starts with the generator header) — anything else is refused rather than
/// deleted.
pub fn write(rendered: &Rendered, out: &Path) -> io::Result<()> {
    files::write_atomically(&rendered.files, out)
}
