//! `warden job-manifest`: prints the exact Job the Kubernetes runtime
//! would submit for an investigation, so an operator can review it (or
//! validate and scan it) before pointing warden at a cluster.
//!
//! The output is a pure function of the arguments and the configuration:
//! `activeDeadlineSeconds` is the complexity profile's full deadline (what
//! a Job created the moment its investigation is planned gets).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use warden_control::Config;
use warden_core::{Complexity, DomainGrant, InvestigationId, TrustPhase};
use warden_runtime_kube::{JobManifestInput, KubeSettings, job_manifest, job_yaml};

#[derive(Args)]
pub struct JobManifestArgs {
    /// The investigation (`inv-` followed by 26 lowercase base32 characters).
    #[arg(long)]
    pub investigation_id: String,
    /// Trust phase: shadow, assist, remediate or autonomous.
    #[arg(long)]
    pub phase: String,
    /// Complexity class: simple, moderate or multi_domain.
    #[arg(long, default_value = "simple")]
    pub complexity: String,
    /// Alert domains of the incident (repeatable); they decide which
    /// secrets domains are granted (the Vault injector annotations). Default:
    /// every domain the configuration serves.
    #[arg(long = "domain")]
    pub domains: Vec<String>,
    /// Configuration file (default: the built-in one, equal to examples/warden.yaml).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// The runtime's settings from `runtime.kubernetes` (its namespace falling
/// back to `namespaces.investigations`).
pub fn kube_settings(config: &Config) -> KubeSettings {
    let k = &config.runtime.kubernetes;
    KubeSettings {
        namespace: k
            .namespace
            .clone()
            .unwrap_or_else(|| config.namespaces.investigations.clone()),
        image: k.image.clone(),
        image_pull_policy: k.image_pull_policy.clone(),
        service_accounts: TrustPhase::ALL.map(|p| k.service_accounts.get(p).to_string()),
        token_audience: k.token_audience.clone(),
        ttl_seconds_after_finished: k.ttl_seconds_after_finished,
        backoff_limit: k.backoff_limit,
        keep_finished_jobs: k.keep_finished_jobs,
        control_plane_url: k.control_plane_url.clone(),
        vault_agent_injector: k.vault_agent_injector,
        run_as_user: k.run_as_user,
        image_pull_grace: std::time::Duration::from_secs(k.image_pull_grace_seconds),
    }
}

fn parse_phase(s: &str) -> anyhow::Result<TrustPhase> {
    TrustPhase::ALL
        .into_iter()
        .find(|p| p.as_str() == s)
        .ok_or_else(|| {
            anyhow::anyhow!("unknown phase {s:?}; expected shadow, assist, remediate or autonomous")
        })
}

/// The Job as YAML.
pub fn render(config: &Config, args: &JobManifestArgs) -> anyhow::Result<String> {
    let id = InvestigationId::parse(&args.investigation_id).map_err(anyhow::Error::msg)?;
    let phase = parse_phase(&args.phase)?;
    let complexity: Complexity = args.complexity.parse().map_err(anyhow::Error::msg)?;
    let profile = config.planner.profile(complexity);
    let alert_domains: Vec<warden_core::Domain> = if args.domains.is_empty() {
        let all: BTreeSet<&str> = config
            .secrets
            .domains
            .iter()
            .flat_map(|d| d.serves.iter().map(String::as_str))
            .filter(|s| *s != "*")
            .collect();
        all.into_iter().map(warden_core::Domain::new).collect()
    } else {
        args.domains.iter().map(warden_core::Domain::new).collect()
    };
    let grants: Vec<DomainGrant> = config
        .grants(phase, &alert_domains)
        .into_iter()
        .map(|d| DomainGrant {
            name: d.name.clone(),
            path: d.path.clone(),
        })
        .collect();
    let job = job_manifest(
        &JobManifestInput {
            investigation_id: &id,
            phase,
            complexity,
            profile,
            active_deadline_seconds: profile.deadline_seconds,
            domains: &grants,
        },
        &kube_settings(config),
    );
    job_yaml(&job).context("serialising the Job")
}

pub fn run(args: JobManifestArgs) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    print!("{}", render(&config, &args)?);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use warden_runtime_kube::manifest;

    /// The pod failure policy fails the Job on the agent's own exit codes;
    /// they must be the codes the agent uses.
    #[test]
    fn the_pod_failure_policy_names_the_agent_s_exit_codes() {
        assert_eq!(
            manifest::EXIT_NOT_DELIVERED,
            warden_agent::job::EXIT_NOT_DELIVERED
        );
        assert_eq!(manifest::EXIT_BAD_INPUT, warden_agent::job::EXIT_BAD_INPUT);
    }

    #[test]
    fn the_default_configuration_gives_the_documented_settings() {
        let s = super::kube_settings(&warden_control::Config::default());
        assert_eq!(s.namespace, "warden-investigations");
        assert_eq!(
            s.service_account(warden_core::TrustPhase::Remediate),
            "warden-agent-remediate"
        );
        assert_eq!(s.token_audience, "warden");
        assert_eq!(s.run_as_user, 65532);
    }
}
