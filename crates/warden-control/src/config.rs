//! The control plane's configuration, parsed once from YAML.
//!
//! Unknown keys are errors (a typo must not silently fall back to a
//! default), and each error names the line and the field.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use warden_core::{DataSourceConfig, Environment, Phases, PlannerConfig, TrustPhase};
use warden_correlate::CorrelationConfig;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub correlation: CorrelationConfig,
    pub planner: PlannerConfig,
    pub runtime: RuntimeConfig,
    pub agent: AgentConfig,
    pub secrets: SecretsConfig,
    pub namespaces: NamespacesConfig,
    pub environments: Vec<Environment>,
    /// What each trust phase may read and do.
    pub phases: Phases,
}

impl Default for Config {
    fn default() -> Self {
        let secrets = SecretsConfig::default();
        let domains: Vec<String> = secrets.domains.iter().map(|d| d.name.clone()).collect();
        Config {
            server: ServerConfig::default(),
            correlation: CorrelationConfig::default(),
            planner: PlannerConfig::default(),
            runtime: RuntimeConfig::default(),
            agent: AgentConfig::default(),
            secrets,
            namespaces: NamespacesConfig::default(),
            environments: Environment::defaults(),
            phases: Phases::defaults(&domains),
        }
    }
}

/// The Kubernetes namespaces warden works in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NamespacesConfig {
    /// Where the control plane runs.
    pub control: String,
    /// Where investigation and remediation jobs run.
    pub investigations: String,
    /// Namespaces whose workloads the agent may read and act on.
    pub targets: Vec<String>,
    /// Never read or acted on, whatever a policy says.
    pub protected: Vec<String>,
}

impl Default for NamespacesConfig {
    fn default() -> Self {
        NamespacesConfig {
            control: "warden-system".into(),
            investigations: "warden-investigations".into(),
            targets: vec!["default".into()],
            protected: vec![
                "kube-system".into(),
                "kube-public".into(),
                "kube-node-lease".into(),
            ],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            max_body_bytes: 4 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeKind {
    Local,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    pub kind: RuntimeKind,
    /// Investigations running at once; the rest queue in creation order.
    pub max_concurrent: usize,
    /// How long a finished job's working directory is kept (0: removed as
    /// soon as the job ends). Logs are kept regardless.
    pub keep_work_dir_seconds: u64,
    /// The job command (program and arguments). Empty: this binary's own
    /// `warden agent run`. Set it to wrap jobs, e.g. in a sandbox launcher.
    pub command: Vec<String>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            kind: RuntimeKind::Local,
            max_concurrent: 4,
            keep_work_dir_seconds: 0,
            command: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// The trust phase new investigations run in.
    pub phase: TrustPhase,
    /// Where agents find evidence.
    pub data_sources: Vec<DataSourceConfig>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            phase: TrustPhase::Shadow,
            data_sources: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretsBackendKind {
    /// No identities: jobs get no domain credentials.
    None,
    /// The encrypted store in the data directory, served to jobs by the
    /// control plane.
    Embedded,
    /// OpenBao or Vault: one wrapped token per investigation.
    Openbao,
}

/// A data domain whose credential jobs may be granted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsDomainConfig {
    pub name: String,
    /// Where its secret lives (KV v2 path under the `agent/` mount).
    pub path: String,
    /// The alert domains it serves: an investigation is granted it only
    /// when its plan spans one of them. `"*"` serves every investigation.
    pub serves: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpenBaoSettings {
    pub address: String,
    /// File holding the control plane's own token (read once at start).
    pub token_file: PathBuf,
    pub token_role: String,
    /// Namespace recorded in each token's metadata.
    pub namespace: String,
}

impl Default for OpenBaoSettings {
    fn default() -> Self {
        OpenBaoSettings {
            address: "http://127.0.0.1:8200".into(),
            token_file: PathBuf::from("/var/run/secrets/warden/openbao-token"),
            token_role: "warden-investigation".into(),
            namespace: "warden-investigations".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    pub backend: SecretsBackendKind,
    /// Embedded backend: the 32-byte key file (mode 0600). Empty: in the
    /// data directory, created on first use.
    pub key_file: Option<PathBuf>,
    pub openbao: OpenBaoSettings,
    pub domains: Vec<SecretsDomainConfig>,
}

fn domain(name: &str, path: &str, serves: &[&str]) -> SecretsDomainConfig {
    SecretsDomainConfig {
        name: name.into(),
        path: path.into(),
        serves: serves.iter().map(|s| s.to_string()).collect(),
    }
}

impl Default for SecretsConfig {
    fn default() -> Self {
        let domains = vec![
            domain(
                "network-monitoring",
                "agent/data/network-monitoring",
                &["network"],
            ),
            domain(
                "application-metrics",
                "agent/data/application-metrics",
                &["application"],
            ),
            domain("log-aggregation", "agent/data/log-aggregation", &["*"]),
            domain("database", "agent/data/database", &["database"]),
            domain(
                "security-events",
                "agent/data/security-events",
                &["security"],
            ),
            domain("llm-inference", "agent/data/llm/inference", &["*"]),
        ];
        SecretsConfig {
            backend: SecretsBackendKind::Embedded,
            key_file: None,
            openbao: OpenBaoSettings::default(),
            domains,
        }
    }
}

impl Config {
    /// The domains an investigation in `phase` spanning `plan_domains` is
    /// granted: those its phase allows that serve one of its domains.
    pub fn grants(
        &self,
        phase: TrustPhase,
        plan_domains: &[warden_core::Domain],
    ) -> Vec<&SecretsDomainConfig> {
        let allowed = &self.phases.get(phase).readable_domains;
        self.secrets
            .domains
            .iter()
            .filter(|d| allowed.contains(&d.name))
            .filter(|d| {
                d.serves
                    .iter()
                    .any(|s| s == "*" || plan_domains.iter().any(|p| p.as_str() == s))
            })
            .collect()
    }
}

impl SecretsConfig {
    fn validate(&self, problems: &mut Vec<String>) {
        let mut names = std::collections::BTreeSet::new();
        for (i, d) in self.domains.iter().enumerate() {
            let ok = !d.name.is_empty()
                && d.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok {
                problems.push(format!(
                    "secrets.domains[{i}].name {:?}: use lowercase letters, digits and '-'",
                    d.name
                ));
            }
            if !names.insert(d.name.clone()) {
                problems.push(format!(
                    "secrets.domains[{i}].name {:?} is declared twice",
                    d.name
                ));
            }
            if d.path.is_empty()
                || d.path.starts_with('/')
                || d.path.split('/').any(|c| c.is_empty() || c == "..")
            {
                problems.push(format!(
                    "secrets.domains[{i}].path {:?}: a relative path without empty or '..' parts",
                    d.path
                ));
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: invalid configuration:\n  - {}", problems.join("\n  - "))]
    Invalid { path: String, problems: Vec<String> },
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Parses and validates; `origin` names the file in messages.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            serde_yaml::from_str(text).map_err(|e| ConfigError::Parse {
                path: match e.location() {
                    Some(l) => format!("{origin}:{}:{}", l.line(), l.column()),
                    None => origin.to_string(),
                },
                message: e.to_string(),
            })?
        };
        let problems = config.validate();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid {
                path: origin.to_string(),
                problems,
            })
        }
    }

    pub fn validate(&self) -> Vec<String> {
        let mut problems = self.planner.validate();
        problems.extend(self.correlation.validate());
        if self.runtime.max_concurrent == 0 {
            problems.push("runtime.max_concurrent must be at least 1".into());
        }
        if self.runtime.command.first().is_some_and(|p| p.is_empty()) {
            problems.push("runtime.command: the program must not be empty".into());
        }
        self.secrets.validate(&mut problems);
        let domains: Vec<String> = self
            .secrets
            .domains
            .iter()
            .map(|d| d.name.clone())
            .collect();
        problems.extend(self.phases.validate(&domains));
        let mut envs = std::collections::BTreeSet::new();
        for (i, e) in self.environments.iter().enumerate() {
            if e.name.is_empty() || !envs.insert(e.name.as_str()) {
                problems.push(format!(
                    "environments[{i}].name {:?}: empty or declared twice",
                    e.name
                ));
            }
        }
        if self.environments.is_empty() {
            problems.push("environments: declare at least one environment".into());
        }
        if self.server.max_body_bytes < 1024 {
            problems.push("server.max_body_bytes must be at least 1024".into());
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_key_is_an_error_with_its_line() {
        let err = Config::parse("runtime:\n  max_concurent: 3\n", "w.yaml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("w.yaml:2"), "{msg}");
        assert!(msg.contains("max_concurent"), "{msg}");
    }

    #[test]
    fn invalid_values_are_all_named() {
        let err = Config::parse(
            "runtime:\n  max_concurrent: 0\ncorrelation:\n  window_seconds: 0\n",
            "w.yaml",
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("runtime.max_concurrent"), "{msg}");
        assert!(msg.contains("correlation.window_seconds"), "{msg}");
    }

    #[test]
    fn the_shipped_example_equals_the_default() {
        let text = include_str!("../../../examples/warden.yaml");
        let parsed = Config::parse(text, "examples/warden.yaml").unwrap();
        assert_eq!(parsed, Config::default());
    }
}
