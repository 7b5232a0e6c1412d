//! `warden audit verify`: checks the hash chain of the audit log and its
//! head; prints OK with the entry count and head hash, or the first problem.
//! Exit 0 when the log verifies, 1 when it does not.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Verify the audit log: every entry's hash, the chain, and the head.
    Verify(VerifyArgs),
}

#[derive(Args)]
pub struct VerifyArgs {
    /// The data directory whose `audit/trust.log` to verify (as for `warden serve`).
    #[arg(long, conflicts_with = "file")]
    pub data_dir: Option<PathBuf>,
    /// The log file itself (its head is the `.head` file beside it).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// An anchor (`<seq>:<hash>`) printed by an earlier verify and kept
    /// elsewhere: the entry it names must still be there, unchanged.
    #[arg(long)]
    pub anchor: Option<String>,
}

pub fn run(command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify(args) => Ok(verify(args)),
    }
}

fn verify(args: VerifyArgs) -> ExitCode {
    let path = match args.file {
        Some(f) => f,
        None => warden_audit::log_path(&args.data_dir.unwrap_or_else(crate::cli::default_data_dir)),
    };
    if !path.is_file() {
        // A mistyped path must not read as an intact, empty log.
        println!("FAILED {}: no audit log there", path.display());
        return ExitCode::from(1);
    }
    let result = match &args.anchor {
        Some(anchor) => warden_audit::verify_with_anchor(&path, anchor),
        None => warden_audit::verify(&path),
    };
    match result {
        Ok(report) => {
            println!(
                "OK {}: {} entries, head {}",
                path.display(),
                report.entries,
                report.head.hash
            );
            println!(
                "anchor (keep it elsewhere; check with --anchor): {}",
                report.anchor()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("FAILED {}: {e}", path.display());
            ExitCode::from(1)
        }
    }
}
