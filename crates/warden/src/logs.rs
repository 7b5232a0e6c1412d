//! `warden logs mine FILE`: the templates of a log file, streamed with
//! bounded memory (lines are not kept), with counts and first/last lines.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;
use warden_logmine::{LogFormat, Miner, MinerConfig, mine_reader};

#[derive(Subcommand)]
pub enum LogsCommand {
    /// Mine the templates of FILE (`-` for stdin).
    Mine(MineArgs),
}

#[derive(Args)]
pub struct MineArgs {
    /// The log file, or `-` for stdin.
    pub file: PathBuf,
    /// Header format in Loghub notation, e.g. `<Date> <Time> <Level> <Component>: <Content>`;
    /// without it the whole line is mined.
    #[arg(long)]
    pub format: Option<String>,
    /// Print one JSON object per template instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(command: LogsCommand) -> anyhow::Result<ExitCode> {
    match command {
        LogsCommand::Mine(args) => mine(args),
    }
}

fn mine(args: MineArgs) -> anyhow::Result<ExitCode> {
    let format = args
        .format
        .as_deref()
        .map(LogFormat::parse)
        .transpose()
        .context("bad --format")?;
    let input: Box<dyn BufRead> = if args.file.as_os_str() == "-" {
        Box::new(BufReader::with_capacity(1 << 16, std::io::stdin().lock()))
    } else {
        let file =
            File::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?;
        Box::new(BufReader::with_capacity(1 << 16, file))
    };
    let mut miner = Miner::new(MinerConfig::default());
    mine_reader(input, format.as_ref(), &mut miner, |_, _| {})
        .with_context(|| format!("reading {}", args.file.display()))?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    if args.json {
        for t in miner.templates() {
            let line = json!({"id": t.id, "template": t.text, "count": t.count,
                              "first_line": t.first_line, "last_line": t.last_line});
            writeln!(out, "{line}")?;
        }
    } else {
        writeln!(
            out,
            "{:>10} {:>10} {:>10}  template",
            "count", "first", "last"
        )?;
        for t in miner.templates() {
            writeln!(
                out,
                "{:>10} {:>10} {:>10}  {}",
                t.count, t.first_line, t.last_line, t.text
            )?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
