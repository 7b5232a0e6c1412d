//! `warden trust status` and `warden trust propose-promotion`, and the
//! trust wiring `warden serve` hands the control plane.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Subcommand;
use warden_audit::AuditLog;
use warden_control::Config;
use warden_control::config::RuntimeKind;
use warden_control::trust::TrustWiring;
use warden_core::TrustPhase;
use warden_remediate::{JobSettings, KubeExecutor};
use warden_store::SqliteStore;
use warden_trust::gates::next_phase;
use warden_trust::promotion::config_diff;
use warden_trust::{Authenticator, RemediationExecutor, TrustStatus, TrustStore};

use crate::cli::default_data_dir;

#[derive(Subcommand)]
pub enum TrustCommand {
    /// The phase of each environment, every gate's metrics against their
    /// thresholds with sample counts, and why a promotion is or is not
    /// available.
    Status {
        /// Only this environment.
        #[arg(long)]
        env: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// The data directory whose store to read (as for `warden serve`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Configuration file (default: the built-in one).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the change to warden.yaml that promotes ENV one phase, as a
    /// unified diff for a GitOps pull request. Exit 1 when the gate is not
    /// met (the reasons go to stderr). Nothing is changed.
    ProposePromotion {
        #[arg(long)]
        env: String,
        /// The warden.yaml under version control.
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

fn load(config: Option<&Path>) -> anyhow::Result<Config> {
    Ok(match config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    })
}

async fn statuses(
    config: &Config,
    data_dir: &Path,
    env: Option<&str>,
) -> anyhow::Result<Vec<TrustStatus>> {
    if !data_dir.join("warden.db").exists() {
        bail!(
            "no warden store in {} (start `warden serve --data-dir {}` first)",
            data_dir.display(),
            data_dir.display()
        );
    }
    let store = SqliteStore::open(data_dir)
        .await
        .with_context(|| format!("opening the store in {}", data_dir.display()))?;
    let mut out = Vec::new();
    for e in &config.environments {
        if env.is_some_and(|want| want != e.name) {
            continue;
        }
        let state = store.phase_state(&e.name).await?;
        let outcomes = store.outcomes(&e.name).await?;
        let signoffs = store.signoffs(&e.name).await?;
        out.push(warden_trust::status(
            &e.name,
            e.phase,
            state.as_ref(),
            &outcomes,
            &signoffs,
            &config.trust,
            chrono::Utc::now(),
        ));
    }
    store.close().await;
    if out.is_empty() {
        let names: Vec<&str> = config
            .environments
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        bail!(
            "environment {:?} is not declared (declared: {})",
            env.unwrap_or_default(),
            names.join(", ")
        );
    }
    Ok(out)
}

pub fn run(command: TrustCommand) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match command {
            TrustCommand::Status {
                env,
                json,
                data_dir,
                config,
            } => {
                let config = load(config.as_deref())?;
                let dir = data_dir.unwrap_or_else(default_data_dir);
                let list = statuses(&config, &dir, env.as_deref()).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&list)?);
                } else {
                    for s in &list {
                        print!("{}", s.render());
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            TrustCommand::ProposePromotion {
                env,
                config,
                data_dir,
            } => propose(&env, &config, &data_dir.unwrap_or_else(default_data_dir)).await,
        }
    })
}

/// The name the diff headers use: the path as given when relative (so
/// `git apply` from the repository root finds it), else the file name.
fn diff_name(path: &Path) -> String {
    if path.is_relative() {
        path.to_string_lossy().trim_start_matches("./").to_string()
    } else {
        path.file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "warden.yaml".into())
    }
}

async fn propose(env: &str, path: &Path, data_dir: &Path) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let config = Config::parse(&text, &path.display().to_string())?;
    let status = statuses(&config, data_dir, Some(env))
        .await?
        .pop()
        .context("no status")?;
    let declared = config
        .environments
        .iter()
        .find(|e| e.name == env)
        .map(|e| e.phase)
        .context("environment vanished")?;
    let name = diff_name(path);
    if declared > status.phase {
        // Demoted below the declaration: the reviewable change is first to
        // record the demotion, so that a later promotion is a real change.
        eprintln!(
            "{env} runs in {} ({}) but the configuration declares {declared}; record the demotion first (diff below), then propose the promotion again",
            status.phase, status.reason
        );
        print!("{}", config_diff(&name, &text, env, status.phase)?);
        return Ok(ExitCode::from(1));
    }
    let Some(to) = next_phase(status.phase) else {
        eprintln!("{env} is already {}: the highest phase", status.phase);
        return Ok(ExitCode::from(1));
    };
    if !status.promotion_available {
        eprintln!(
            "promotion of {env} to {to} is not available: {}",
            status.why
        );
        return Ok(ExitCode::from(1));
    }
    let diff = config_diff(&name, &text, env, to)?;
    // The changed file must still be a valid configuration.
    let changed = apply_phase(&config, env, to);
    let problems = changed.validate();
    if !problems.is_empty() {
        bail!(
            "the promoted configuration would be invalid: {}",
            problems.join("; ")
        );
    }
    eprintln!(
        "{env}: {} -> {to}. {} Review and merge this change; the control plane adopts it on its next start.",
        status.phase, status.why
    );
    if to == TrustPhase::Autonomous
        && let Some(g) = status.gates.iter().find(|g| g.to == to)
        && let Some(s) = &g.signoffs
    {
        eprintln!("sign-offs recorded: {}", s.present.join(", "));
    }
    print!("{diff}");
    Ok(ExitCode::SUCCESS)
}

fn apply_phase(config: &Config, env: &str, to: TrustPhase) -> Config {
    let mut c = config.clone();
    for e in &mut c.environments {
        if e.name == env {
            e.phase = to;
        }
    }
    c
}

/// The trust wiring for `warden serve`: the store, the audit log in the
/// data directory, operators from `trust.operators`, and (with the
/// Kubernetes runtime) the remediation executor.
pub async fn wiring(
    config: &Config,
    data_dir: &Path,
    store: Arc<dyn TrustStore>,
) -> anyhow::Result<TrustWiring> {
    let audit = AuditLog::open_in(data_dir)
        .with_context(|| format!("opening the audit log in {}", data_dir.display()))?;
    let authenticator =
        Authenticator::from_config(&config.trust.operators).context("loading trust.operators")?;
    let executor: Option<Arc<dyn RemediationExecutor>> = match config.runtime.kind {
        RuntimeKind::Kubernetes => {
            let client = warden_runtime_kube::KubeRuntime::client(
                config.runtime.kubernetes.kubeconfig.as_deref(),
            )
            .await
            .context("connecting to the Kubernetes API for remediation jobs")?;
            Some(Arc::new(KubeExecutor::new(
                client,
                remediation_settings(config),
            )))
        }
        _ => None,
    };
    Ok(TrustWiring {
        store,
        audit: Arc::new(audit),
        executor,
        authenticator,
    })
}

/// Remediation jobs run beside investigation jobs.
pub fn remediation_settings(config: &Config) -> JobSettings {
    let r = &config.trust.remediation;
    JobSettings {
        namespace: config.namespaces.investigations.clone(),
        image: r.image.clone(),
        timeout_seconds: r.job_timeout_seconds,
        max_replicas: r.max_replicas,
        run_as_user: 65532,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_are_repository_relative() {
        assert_eq!(
            diff_name(Path::new("./deploy/warden.yaml")),
            "deploy/warden.yaml"
        );
        assert_eq!(
            diff_name(Path::new("/etc/warden/warden.yaml")),
            "warden.yaml"
        );
    }
}
