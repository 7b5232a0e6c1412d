//! `warden eval ...`: scores warden's engines on public benchmarks, so that
//! accuracy claims are reproducible from the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;
use warden_logmine::MinerConfig;
use warden_logmine::eval::{average, evaluate};

#[derive(Subcommand)]
pub enum EvalCommand {
    /// Log template mining on Loghub-2k (GA, PA, FGA, FTA per system).
    Loghub(LoghubArgs),
    /// Root-cause localisation on Nezha (AS@1/3/5 per system and fault type).
    Nezha(crate::eval_nezha::NezhaArgs),
}

#[derive(Args)]
pub struct LoghubArgs {
    /// The Loghub-2k directory (one sub-directory per system).
    #[arg(long)]
    pub data: PathBuf,
    /// Comma-separated systems to evaluate (default: all nine).
    #[arg(long, value_delimiter = ',')]
    pub systems: Vec<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(command: EvalCommand) -> anyhow::Result<ExitCode> {
    match command {
        EvalCommand::Loghub(args) => loghub(args),
        EvalCommand::Nezha(args) => crate::eval_nezha::run(args),
    }
}

fn loghub(args: LoghubArgs) -> anyhow::Result<ExitCode> {
    let reports = evaluate(&args.data, &args.systems, &MinerConfig::default())
        .context("evaluating on Loghub-2k")?;
    let (avg, avg_lps) = average(&reports);
    if args.json {
        let systems: serde_json::Map<String, serde_json::Value> = reports
            .iter()
            .map(|r| {
                (
                    r.system.clone(),
                    json!({"GA": r.scores.ga, "PA": r.scores.pa, "FGA": r.scores.fga,
                           "FTA": r.scores.fta, "lines_per_sec": r.lines_per_sec}),
                )
            })
            .collect();
        let out = json!({
            "systems": systems,
            "average": {"GA": avg.ga, "PA": avg.pa, "FGA": avg.fga, "FTA": avg.fta,
                        "lines_per_sec": avg_lps},
        });
        println!("{out}");
    } else {
        println!(
            "{:<10} {:>6} {:>6} {:>6} {:>6} {:>12}",
            "system", "GA", "PA", "FGA", "FTA", "lines/s"
        );
        for r in &reports {
            let s = r.scores;
            println!(
                "{:<10} {:>6.3} {:>6.3} {:>6.3} {:>6.3} {:>12.0}",
                r.system, s.ga, s.pa, s.fga, s.fta, r.lines_per_sec
            );
        }
        println!(
            "{:<10} {:>6.3} {:>6.3} {:>6.3} {:>6.3} {:>12.0}",
            "average", avg.ga, avg.pa, avg.fga, avg.fta, avg_lps
        );
    }
    Ok(ExitCode::SUCCESS)
}
