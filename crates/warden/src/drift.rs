//! `warden drift`: the live state against the rendered desired state of one
//! environment, compared as effective permissions.
//!
//! Exit codes: 0 no drift; 3 widening (live grants more than desired);
//! 4 narrowing only (live grants less); 2 an error (nothing was changed).
//! With `--apply`, the code is that of the state after the fix.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use warden_control::config::{Config, locate_problems};
use warden_core::TrustPhase;
use warden_drift::{Options, State, compare, fix};

#[derive(Args)]
pub struct DriftArgs {
    /// Configuration file (default: the built-in one, equal to examples/warden.yaml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Read the live state from the cluster of this kubeconfig's current context.
    #[arg(long, conflicts_with = "from", required_unless_present = "from")]
    pub kubeconfig: Option<PathBuf>,
    /// Read the live state from a directory of exported manifests
    /// (*.yaml, *.yml, *.json; multi-document and `kind: List`), Vault
    /// policies (*.hcl, named after the file) and auth roles (`{path, data}`
    /// documents, as in a render's openbao/auth-roles.yaml).
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// The environment to compare (may be left out when only one is configured).
    #[arg(long)]
    pub env: Option<String>,
    /// Compare with this phase's state instead of the phase the environment is in.
    #[arg(long)]
    pub phase: Option<TrustPhase>,
    /// With --kubeconfig: read the live Vault/OpenBao policies and auth
    /// roles from this server; without it they are not compared.
    #[arg(long, requires = "kubeconfig")]
    pub vault_addr: Option<String>,
    /// File holding the Vault/OpenBao token used with --vault-addr.
    #[arg(long, requires = "vault_addr")]
    pub vault_token_file: Option<PathBuf>,
    /// Print the report as JSON (with --fix, the fix is included).
    #[arg(long)]
    pub json: bool,
    /// Print the smallest change that restores the desired state (YAML on
    /// stdout; the report goes to stderr).
    #[arg(long)]
    pub fix: bool,
    /// Apply that change through the Kubernetes API (and the Vault API with
    /// --vault-addr), then compare again.
    #[arg(long, requires = "fix", requires = "kubeconfig")]
    pub apply: bool,
}

/// The desired state of the chosen environment and phase.
fn desired(args: &DriftArgs) -> anyhow::Result<(String, TrustPhase, State)> {
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
    let env = match &args.env {
        Some(name) => config
            .environments
            .iter()
            .find(|e| e.name == *name)
            .with_context(|| {
                format!(
                    "--env {name}: no such environment (configured: {})",
                    env_names(&config)
                )
            })?,
        None => match config.environments.as_slice() {
            [only] => only,
            _ => bail!(
                "--env is required: the configuration has several environments ({})",
                env_names(&config)
            ),
        },
    };
    let phase = args.phase.unwrap_or(env.phase);
    let rendered = match warden_gitops::render(&config) {
        Ok(r) => r,
        Err(e) => {
            let located = locate_problems(&text, &origin, e.problems());
            bail!("{origin}: cannot render:\n  {}", located.join("\n  "));
        }
    };
    let state = rendered
        .state(&env.name, phase)
        .with_context(|| format!("no rendered state for {} in {phase}", env.name))?;
    Ok((
        env.name.clone(),
        phase,
        State {
            objects: state.objects.clone(),
            vault_policies: state.vault_policies.clone(),
            vault_roles: state
                .vault_roles
                .iter()
                .filter_map(|r| {
                    Some((r.get("path")?.as_str()?.to_string(), r.get("data")?.clone()))
                })
                .collect(),
        },
    ))
}

fn env_names(config: &Config) -> String {
    config
        .environments
        .iter()
        .map(|e| e.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

struct Vault {
    addr: String,
    token: SecretString,
    http: reqwest::Client,
}

impl Vault {
    fn new(addr: &str, token_file: Option<&PathBuf>) -> anyhow::Result<Vault> {
        let Some(file) = token_file else {
            bail!("--vault-addr needs --vault-token-file (the token is never taken from argv)");
        };
        let token =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        Ok(Vault {
            addr: addr.trim_end_matches('/').to_string(),
            token: SecretString::from(token.trim().to_string()),
            http: reqwest::Client::new(),
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", self.token.expose_secret())
    }

    /// The live text of each named policy (absent ones are left out).
    async fn policies(
        &self,
        names: impl Iterator<Item = &String>,
    ) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
        let mut out = std::collections::BTreeMap::new();
        for name in names {
            let resp = self
                .request(reqwest::Method::GET, &format!("sys/policies/acl/{name}"))
                .send()
                .await
                .with_context(|| format!("reading Vault policy {name}"))?;
            if resp.status() == reqwest::StatusCode::NOT_FOUND {
                continue;
            }
            if !resp.status().is_success() {
                bail!("reading Vault policy {name}: HTTP {}", resp.status());
            }
            let body: Value = resp.json().await?;
            let text = body
                .pointer("/data/policy")
                .and_then(Value::as_str)
                .with_context(|| format!("Vault policy {name}: no data.policy in the answer"))?;
            out.insert(name.clone(), text.to_string());
        }
        Ok(out)
    }

    /// The live data of each auth role path (absent ones are left out).
    async fn roles(
        &self,
        paths: impl Iterator<Item = &String>,
    ) -> anyhow::Result<std::collections::BTreeMap<String, Value>> {
        let mut out = std::collections::BTreeMap::new();
        for path in paths {
            let resp = self
                .request(reqwest::Method::GET, path)
                .send()
                .await
                .with_context(|| format!("reading Vault auth role {path}"))?;
            // A missing role, or a missing auth mount, is an absent role.
            if matches!(resp.status().as_u16(), 404 | 400) {
                continue;
            }
            if !resp.status().is_success() {
                bail!("reading Vault auth role {path}: HTTP {}", resp.status());
            }
            let body: Value = resp.json().await?;
            let data = body
                .get("data")
                .filter(|d| d.is_object())
                .with_context(|| format!("Vault auth role {path}: no data in the answer"))?;
            out.insert(path.clone(), data.clone());
        }
        Ok(out)
    }

    async fn apply(&self, fix: &warden_drift::Fix) -> anyhow::Result<()> {
        for (name, text) in &fix.vault_write {
            let resp = self
                .request(reqwest::Method::PUT, &format!("sys/policies/acl/{name}"))
                .json(&json!({ "policy": text }))
                .send()
                .await?;
            if !resp.status().is_success() {
                bail!("writing Vault policy {name}: HTTP {}", resp.status());
            }
        }
        for (path, data) in &fix.vault_role_write {
            let resp = self
                .request(reqwest::Method::POST, path)
                .json(data)
                .send()
                .await?;
            if !resp.status().is_success() {
                bail!("writing Vault auth role {path}: HTTP {}", resp.status());
            }
        }
        for path in &fix.vault_role_delete {
            let resp = self.request(reqwest::Method::DELETE, path).send().await?;
            if !resp.status().is_success() {
                bail!("deleting Vault auth role {path}: HTTP {}", resp.status());
            }
        }
        for name in &fix.vault_delete {
            let resp = self
                .request(reqwest::Method::DELETE, &format!("sys/policies/acl/{name}"))
                .send()
                .await?;
            if !resp.status().is_success() {
                bail!("deleting Vault policy {name}: HTTP {}", resp.status());
            }
        }
        Ok(())
    }
}

/// Reads the live state; the options say what could be compared.
async fn live(
    args: &DriftArgs,
    desired: &State,
    client: Option<&warden_drift::kube::Client>,
    vault: Option<&Vault>,
) -> anyhow::Result<(State, Options)> {
    if let Some(dir) = &args.from {
        let loaded = warden_drift::source::load_dir(dir)?;
        return Ok((loaded.state, Options { vault: true }));
    }
    let Some(client) = client else {
        bail!("one of --kubeconfig or --from is required");
    };
    let objects = warden_drift::kube::read_live(client).await?;
    let (vault_policies, vault_roles, compare_vault) = match vault {
        // Only warden's own policies and roles: a server holds others
        // (default, root) that are not warden's to judge.
        Some(v) => (
            v.policies(desired.vault_policies.keys()).await?,
            v.roles(desired.vault_roles.keys()).await?,
            true,
        ),
        None => (Default::default(), Default::default(), false),
    };
    Ok((
        State {
            objects,
            vault_policies,
            vault_roles,
        },
        Options {
            vault: compare_vault,
        },
    ))
}

pub async fn run(args: DriftArgs) -> anyhow::Result<ExitCode> {
    if args.apply && args.kubeconfig.is_none() {
        bail!("--apply needs --kubeconfig: a directory export cannot be changed through an API");
    }
    let (environment, phase, desired) = desired(&args)?;
    let client = match &args.kubeconfig {
        Some(path) => Some(warden_drift::kube::client_from_kubeconfig(path).await?),
        None => None,
    };
    let vault = args
        .vault_addr
        .as_deref()
        .map(|addr| Vault::new(addr, args.vault_token_file.as_ref()))
        .transpose()?;
    let (live_state, options) = live(&args, &desired, client.as_ref(), vault.as_ref()).await?;
    let report = compare(&desired, &live_state, options)?;
    let fix = if args.fix {
        Some(fix::plan(&desired, &live_state, &report, options)?)
    } else {
        None
    };

    let mut after = None;
    if let (true, Some(fix), Some(client)) = (args.apply, &fix, &client) {
        let applied = warden_drift::kube::apply(client, fix).await?;
        if let Some(v) = &vault {
            v.apply(fix).await?;
        }
        let (policies, roles, vault_deleted) = match &vault {
            Some(_) => (
                fix.vault_write.len(),
                fix.vault_role_write.len(),
                fix.vault_delete.len() + fix.vault_role_delete.len(),
            ),
            None => (0, 0, 0),
        };
        eprintln!(
            "applied: {} created, {} replaced, {} deleted; {policies} Vault policies and {roles} auth roles written, {vault_deleted} deleted",
            applied.created.len(),
            applied.replaced.len(),
            applied.deleted.len(),
        );
        let (again, options) = live(&args, &desired, Some(client), vault.as_ref()).await?;
        after = Some(compare(&desired, &again, options)?);
    }

    if args.json {
        let mut out = report.to_json();
        if let Some(obj) = out.as_object_mut() {
            obj.insert("environment".into(), json!(environment));
            obj.insert("phase".into(), json!(phase));
            if let Some(fix) = &fix {
                obj.insert("fix".into(), serde_json::to_value(fix)?);
            }
            if let Some(after) = &after {
                obj.insert("after_apply".into(), after.to_json());
            }
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let header = format!("warden drift: environment {environment}, phase {phase}\n");
        let text = header + &report.to_text();
        match &fix {
            Some(fix) => {
                eprint!("{text}");
                print!("{}", fix.to_yaml()?);
                if fix.remaining > 0 {
                    eprintln!(
                        "note: {} findings would remain after this fix; see the report",
                        fix.remaining
                    );
                }
            }
            None => print!("{text}"),
        }
        if let Some(after) = &after {
            eprint!("after applying the fix: {}", after.to_text());
        }
    }
    let status = after.as_ref().unwrap_or(&report).status();
    Ok(ExitCode::from(status.exit_code()))
}
