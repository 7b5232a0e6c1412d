//! `warden render [--config FILE] --out DIR`: every (environment × phase)
//! security state as files (docs/gitops.md).
//!
//! The whole render happens in memory first; only a configuration that
//! renders completely is written, and it replaces DIR in one move, so a bad
//! file leaves DIR exactly as it was.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use warden_control::config::{Config, locate_problems};

#[derive(Args)]
pub struct RenderArgs {
    /// Configuration file (default: the built-in one, equal to examples/warden.yaml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Output directory; replaced as a whole (it must be empty, absent, or a previous render).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: RenderArgs) -> anyhow::Result<ExitCode> {
    let (config, text, origin) = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let origin = path.display().to_string();
            (Config::parse(&text, &origin)?, text, origin)
        }
        None => (
            Config::default(),
            String::new(),
            "the built-in configuration".to_string(),
        ),
    };
    let rendered = match warden_gitops::render(&config) {
        Ok(r) => r,
        Err(e) => {
            let located = locate_problems(&text, &origin, e.problems());
            bail!("{origin}: cannot render:\n  {}", located.join("\n  "));
        }
    };
    warden_gitops::write(&rendered, &args.out)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!(
        "rendered {} states ({} environments x 4 phases) into {} files under {} (configuration sha256 {})",
        rendered.states.len(),
        config.environments.len(),
        rendered.files.len(),
        args.out.display(),
        warden_gitops::config_digest(&config),
    );
    Ok(ExitCode::SUCCESS)
}
