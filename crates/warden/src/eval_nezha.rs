//! `warden eval nezha`: root-cause localisation on the Nezha datasets
//! (AS@1/3/5 per system and fault type), one shadow investigation per
//! labelled fault injection.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use warden_eval_nezha::{AccuracyAtK, EvalConfig, evaluate};

#[derive(Args)]
pub struct NezhaArgs {
    /// The Nezha dataset directory (holding `rca_data/<date>/metric`).
    #[arg(long)]
    pub data: PathBuf,
    /// The labelled cases (system,date,inject_time,inject_timestamp,inject_pod,inject_type).
    #[arg(long)]
    pub cases: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: NezhaArgs) -> anyhow::Result<ExitCode> {
    let report =
        evaluate(&args.data, &args.cases, &EvalConfig::default()).context("evaluating on Nezha")?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let row = |name: &str, a: &AccuracyAtK| {
        println!(
            "{name:<16} {:>6.3} {:>6.3} {:>6.3} {:>6}",
            a.at1, a.at3, a.at5, a.cases
        );
    };
    println!(
        "{:<16} {:>6} {:>6} {:>6} {:>6}",
        "system", "AS@1", "AS@3", "AS@5", "cases"
    );
    for (name, a) in &report.systems {
        row(name, a);
    }
    row("average", &report.average);
    println!();
    println!(
        "{:<16} {:>6} {:>6} {:>6} {:>6}",
        "fault type", "AS@1", "AS@3", "AS@5", "cases"
    );
    for (name, a) in &report.by_fault_type {
        row(name, a);
    }
    Ok(ExitCode::SUCCESS)
}
