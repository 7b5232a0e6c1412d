//! `warden eval nezha`: root-cause localisation on the Nezha datasets
//! (AS@1/3/5 per system and fault type), one shadow investigation per
//! labelled fault injection.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use warden_eval_nezha::{
    AccuracyAtK, EvalConfig, LearnConfig, Outcome, Report, cross_validate, evaluate,
};

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
    /// Also list every case: its truth, where it ranked and the top five
    /// (JSON: an `outcomes` array).
    #[arg(long)]
    pub per_case: bool,
    /// Score a ranking learned per system from its other cases
    /// (leave-one-case-out over every metric column) instead of warden's
    /// fixed ranking: how much the metrics can support at all.
    #[arg(long)]
    pub cross_validate: bool,
}

pub fn run(args: NezhaArgs) -> anyhow::Result<ExitCode> {
    let cfg = EvalConfig::default();
    let report = if args.cross_validate {
        cross_validate(&args.data, &args.cases, &cfg, &LearnConfig::default())
    } else {
        evaluate(&args.data, &args.cases, &cfg)
    }
    .context("evaluating on Nezha")?;
    if args.json {
        let mut json = serde_json::to_value(&report)?;
        if args.per_case
            && let Some(object) = json.as_object_mut()
        {
            object.insert("outcomes".into(), serde_json::to_value(&report.outcomes)?);
        }
        println!("{json}");
        return Ok(ExitCode::SUCCESS);
    }
    print_tables(&report);
    if args.per_case {
        println!();
        print_outcomes(&report.outcomes);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_tables(report: &Report) {
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
}

fn print_outcomes(outcomes: &[Outcome]) {
    println!(
        "{:<16} {:<19} {:<15} {:<30} {:>4}  top",
        "system", "injected at", "fault type", "root cause", "rank"
    );
    for o in outcomes {
        let rank = o.rank.map_or_else(|| "-".to_string(), |r| r.to_string());
        println!(
            "{:<16} {:<19} {:<15} {:<30} {:>4}  {}",
            o.system,
            o.inject_at.format("%Y-%m-%d %H:%M:%S"),
            o.fault_type,
            o.truth,
            rank,
            o.top.join(", ")
        );
    }
}
