//! `warden remediate run`: the entrypoint of a remediation Job. It runs
//! one action as the Job's own service account and prints one result line.

use std::process::ExitCode;

use clap::Subcommand;
use warden_core::{ActionKind, ProposedAction};

#[derive(Subcommand)]
pub enum RemediateCommand {
    /// Run one action (started by the control plane in a Job, not by hand).
    Run {
        #[arg(long)]
        kind: ActionKind,
        #[arg(long)]
        namespace: String,
        #[arg(long)]
        target: String,
        /// For scale_deployment.
        #[arg(long)]
        replicas: Option<u32>,
        /// Upper bound for --replicas.
        #[arg(long, default_value_t = 20)]
        max_replicas: u32,
    },
}

pub fn run(command: RemediateCommand) -> anyhow::Result<ExitCode> {
    let RemediateCommand::Run {
        kind,
        namespace,
        target,
        replicas,
        max_replicas,
    } = command;
    let action = ProposedAction {
        kind,
        namespace,
        target,
        replicas,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let code = rt.block_on(warden_remediate::run_in_cluster(&action, max_replicas));
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
