//! The command line, parsed once by clap derive.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "warden",
    version,
    about = "Run autonomous diagnostic agents safely: one isolated, budgeted investigation per incident."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane: intake, correlation, investigations, API.
    Serve(ServeArgs),
    /// Replay the shipped incident through an embedded control plane and
    /// print the diagnosis.
    Demo(DemoArgs),
    /// Manage the embedded secrets store. Values are read from stdin or a
    /// file, never from the command line.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Score warden's engines on public benchmarks.
    Eval {
        #[command(subcommand)]
        command: crate::eval::EvalCommand,
    },
    /// Check the hash-chained audit log (`audit verify`).
    Audit {
        #[command(subcommand)]
        command: crate::audit::AuditCommand,
    },
    /// Work with log files (template mining).
    Logs {
        #[command(subcommand)]
        command: crate::logs::LogsCommand,
    },
    /// Render every (environment x trust phase) security state: RBAC,
    /// NetworkPolicies, OpenBao policies, quotas, Helm values.
    Render(crate::render::RenderArgs),
    /// Compare the live state (a cluster or a directory) with the rendered
    /// desired state as effective permissions; exit 3 on widening, 4 on
    /// narrowing only.
    Drift(crate::drift::DriftArgs),
    /// Trust phases: status per environment, promotion proposals.
    Trust {
        #[command(subcommand)]
        command: crate::trust::TrustCommand,
    },
    /// The remediation job's entrypoint (started in a Job, not by hand).
    Remediate {
        #[command(subcommand)]
        command: crate::remediate::RemediateCommand,
    },
    /// Print the exact Kubernetes Job warden would submit for an
    /// investigation, for review.
    JobManifest(crate::job_manifest::JobManifestArgs),
    /// The investigation job's entrypoint (started by a runtime, not by hand).
    Agent {
        #[command(subcommand)]
        command: AgentCommand,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum RuntimeChoice {
    /// One isolated OS process per investigation.
    Local,
    /// One batch/v1 Job per investigation (runtime.kubernetes).
    Kubernetes,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to serve the API on (overrides server.listen).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Where state lives (database, job logs, working directories).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Configuration file (default: the built-in one, equal to examples/warden.yaml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Job runtime (overrides runtime.kind).
    #[arg(long, value_enum)]
    pub runtime: Option<RuntimeChoice>,
}

#[derive(Args)]
pub struct DemoArgs {
    /// Exit after printing the diagnosis (exit 0 on success) instead of serving until Ctrl-C.
    #[arg(long)]
    pub once: bool,
    /// Print the report as JSON on stdout (progress goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Where state lives; each demo run uses a fresh directory below it.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Address to serve the API on (default: 127.0.0.1:7878, or any free port if taken).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

#[derive(Args)]
pub struct StoreArgs {
    /// The data directory whose store to use (as for `warden serve`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Configuration file (for the key file location and the domains).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum SecretsCommand {
    /// Store a new secret at PATH (e.g. agent/data/network-monitoring).
    Put {
        path: String,
        /// Read the value from this file instead of stdin.
        #[arg(long)]
        file: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Replace the value of an existing secret; the next job sees it.
    Rotate {
        path: String,
        /// Read the value from this file instead of stdin.
        #[arg(long)]
        file: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List stored paths with their version and update time (never values).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
enum AgentCommand {
    /// Read the job input on stdin (or claim it with --bootstrap),
    /// investigate, deliver the report.
    Run(AgentRunArgs),
}

#[derive(Args)]
struct AgentRunArgs {
    /// Claim the input from this control-plane URL
    /// (`.../api/v1/jobs/bootstrap`) instead of reading stdin.
    #[arg(long, requires = "token_file")]
    bootstrap: Option<String>,
    /// The projected service-account token presented to --bootstrap.
    #[arg(long, requires = "bootstrap")]
    token_file: Option<PathBuf>,
}

/// The per-user data directory (`$XDG_DATA_HOME/warden` or `~/.local/share/warden`).
pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("warden")
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("WARDEN_LOG")
        .unwrap_or_else(|_| EnvFilter::new("warn,warden=info,warden_control=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

pub fn main() -> ExitCode {
    // One TLS provider for the whole process (kube, reqwest, sqlx agree on it).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Agent {
            command: AgentCommand::Run(run),
        } => {
            // The agent writes its own JSON-lines log on stdout.
            return match runtime() {
                Ok(rt) => {
                    let code = match (&run.bootstrap, &run.token_file) {
                        (Some(url), Some(token_file)) => {
                            rt.block_on(warden_agent::bootstrap::run_job_bootstrap(url, token_file))
                        }
                        _ => rt.block_on(warden_agent::run_job()),
                    };
                    ExitCode::from(u8::try_from(code).unwrap_or(1))
                }
                Err(e) => {
                    eprintln!("warden agent: {e}");
                    ExitCode::from(1)
                }
            };
        }
        Command::Serve(args) => {
            init_tracing();
            runtime().and_then(|rt| rt.block_on(crate::serve::serve(args)))
        }
        Command::Secrets { command } => crate::secrets::run(command),
        Command::Eval { command } => crate::eval::run(command),
        Command::Logs { command } => crate::logs::run(command),
        Command::Render(args) => crate::render::run(args),
        Command::JobManifest(args) => crate::job_manifest::run(args),
        Command::Drift(args) => runtime().and_then(|rt| rt.block_on(crate::drift::run(args))),
        Command::Audit { command } => crate::audit::run(command),
        Command::Trust { command } => crate::trust::run(command),
        Command::Remediate { command } => crate::remediate::run(command),
        Command::Demo(args) => {
            if std::env::var_os("WARDEN_LOG").is_some() {
                init_tracing();
            }
            runtime().and_then(|rt| rt.block_on(crate::demo::demo(args)))
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("warden: {e:#}");
            ExitCode::from(2)
        }
    }
}
