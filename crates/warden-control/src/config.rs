//! The control plane's configuration, parsed once from YAML.
//!
//! Unknown keys are errors (a typo must not silently fall back to a
//! default), and each error names the line and the field.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use warden_core::{DataSourceConfig, Environment, LlmSettings, Phases, PlannerConfig, TrustPhase};
use warden_correlate::CorrelationConfig;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub correlation: CorrelationConfig,
    pub planner: PlannerConfig,
    pub runtime: RuntimeConfig,
    pub agent: AgentConfig,
    /// The LLM reasoner's server, model, prices and budget
    /// (used when `agent.reasoner` is `llm`; `docs/llm.md`).
    pub llm: LlmSettings,
    pub secrets: SecretsConfig,
    pub namespaces: NamespacesConfig,
    pub environments: Vec<Environment>,
    /// What each trust phase may read and do.
    pub phases: Phases,
    /// Extra action-gate policies (`docs/policy.md`).
    pub policy: PolicyConfig,
    /// Outcomes, gates, demotion, approvals, operators (`docs/trust.md`).
    pub trust: warden_trust::TrustConfig,
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
            llm: LlmSettings::default(),
            secrets,
            namespaces: NamespacesConfig::default(),
            environments: Environment::defaults(),
            phases: Phases::defaults(&domains),
            policy: PolicyConfig::default(),
            trust: warden_trust::TrustConfig::default(),
        }
    }
}

/// Cedar policies added to the shipped ones. They can forbid more; a
/// permit can never lift a shipped forbid (`docs/policy.md`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// A directory whose `*.cedar` files are loaded, in name order.
    pub directory: Option<PathBuf>,
    /// Policy text, one entry per block of policies.
    pub inline: Vec<String>,
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
    /// One `batch/v1` Job per investigation (`runtime.kubernetes`).
    Kubernetes,
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
    /// How investigations run as Kubernetes Jobs (kind: kubernetes).
    pub kubernetes: KubernetesRuntimeConfig,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            kind: RuntimeKind::Local,
            max_concurrent: 4,
            keep_work_dir_seconds: 0,
            command: Vec::new(),
            kubernetes: KubernetesRuntimeConfig::default(),
        }
    }
}

/// The ServiceAccount an investigation's pod runs as, one per trust phase,
/// so that RBAC in the cluster enforces the phase a second time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PhaseServiceAccounts {
    pub shadow: String,
    pub assist: String,
    pub remediate: String,
    pub autonomous: String,
}

impl Default for PhaseServiceAccounts {
    fn default() -> Self {
        PhaseServiceAccounts {
            shadow: "warden-agent-shadow".into(),
            assist: "warden-agent-assist".into(),
            remediate: "warden-agent-remediate".into(),
            autonomous: "warden-agent-autonomous".into(),
        }
    }
}

impl PhaseServiceAccounts {
    pub fn get(&self, phase: TrustPhase) -> &str {
        match phase {
            TrustPhase::Shadow => &self.shadow,
            TrustPhase::Assist => &self.assist,
            TrustPhase::Remediate => &self.remediate,
            TrustPhase::Autonomous => &self.autonomous,
        }
    }
}

/// `runtime.kubernetes`: the Job warden submits per investigation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesRuntimeConfig {
    /// The warden image the job runs (`warden agent run --bootstrap`).
    /// Pin it by digest in production.
    pub image: String,
    /// Always, IfNotPresent or Never.
    pub image_pull_policy: String,
    /// Where Jobs are created; `None` means `namespaces.investigations`.
    pub namespace: Option<String>,
    pub service_accounts: PhaseServiceAccounts,
    /// Audience of the projected service-account token the pod presents to
    /// the control plane (and to the secrets backend).
    pub token_audience: String,
    /// Backstop cleanup by the TTL controller if warden never deletes a Job.
    pub ttl_seconds_after_finished: u32,
    /// Pod retries for failures the pod failure policy does not decide
    /// (crashes). OOM kills and the agent's own refusals are never retried;
    /// disruptions (eviction, preemption) always are.
    pub backoff_limit: u32,
    /// Keep finished Jobs (for inspection) instead of deleting them once
    /// the outcome is recorded.
    pub keep_finished_jobs: bool,
    /// The control plane's URL as seen from the pods (bootstrap and report).
    pub control_plane_url: String,
    /// Add Vault Agent Injector annotations (role = the phase's
    /// ServiceAccount) as an alternative way to deliver domain secrets.
    pub vault_agent_injector: bool,
    /// The fixed non-root UID (and GID) the pod runs as.
    pub run_as_user: i64,
    /// A pod whose image cannot be pulled for this long fails the job.
    pub image_pull_grace_seconds: u64,
    /// A kubeconfig file; `None` means in-cluster configuration or
    /// `$KUBECONFIG`.
    pub kubeconfig: Option<PathBuf>,
}

impl Default for KubernetesRuntimeConfig {
    fn default() -> Self {
        KubernetesRuntimeConfig {
            image: "ghcr.io/warden-dev/warden:0.1.0".into(),
            image_pull_policy: "Always".into(),
            namespace: None,
            service_accounts: PhaseServiceAccounts::default(),
            token_audience: "warden".into(),
            ttl_seconds_after_finished: 3600,
            backoff_limit: 2,
            keep_finished_jobs: false,
            control_plane_url: "http://warden.warden-system.svc:7878".into(),
            vault_agent_injector: false,
            run_as_user: 65532,
            image_pull_grace_seconds: 120,
            kubeconfig: None,
        }
    }
}

/// A DNS-1123 label: what Kubernetes accepts as a namespace name.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A DNS-1123 subdomain: what Kubernetes accepts as a ServiceAccount name.
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

impl KubernetesRuntimeConfig {
    fn validate(&self, problems: &mut Vec<String>) {
        let at = "runtime.kubernetes";
        if self.image.trim().is_empty() || self.image.chars().any(char::is_whitespace) {
            problems.push(format!(
                "{at}.image must be an image reference without spaces"
            ));
        }
        if !["Always", "IfNotPresent", "Never"].contains(&self.image_pull_policy.as_str()) {
            problems.push(format!(
                "{at}.image_pull_policy {:?}: expected Always, IfNotPresent or Never",
                self.image_pull_policy
            ));
        }
        if let Some(ns) = &self.namespace
            && !is_dns_label(ns)
        {
            problems.push(format!(
                "{at}.namespace {ns:?} is not a valid namespace name"
            ));
        }
        for phase in TrustPhase::ALL {
            let sa = self.service_accounts.get(phase);
            if !is_dns_subdomain(sa) {
                problems.push(format!(
                    "{at}.service_accounts.{phase} {sa:?} is not a valid ServiceAccount name"
                ));
            }
        }
        if self.token_audience.trim().is_empty() {
            problems.push(format!("{at}.token_audience must not be empty"));
        }
        let url_ok = self.control_plane_url.starts_with("http://")
            || self.control_plane_url.starts_with("https://");
        if !url_ok || self.control_plane_url.chars().any(char::is_whitespace) {
            problems.push(format!(
                "{at}.control_plane_url {:?}: expected an http:// or https:// URL",
                self.control_plane_url
            ));
        }
        if self.run_as_user <= 0 {
            problems.push(format!("{at}.run_as_user must be a non-root UID (above 0)"));
        }
        if self.backoff_limit > 10 {
            problems.push(format!("{at}.backoff_limit must be at most 10"));
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
    /// Which reasoner investigations use.
    pub reasoner: ReasonerKind,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            phase: TrustPhase::Shadow,
            data_sources: Vec::new(),
            reasoner: ReasonerKind::Builtin,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonerKind {
    /// The offline reasoner built on the evidence engines.
    Builtin,
    /// A language model behind an OpenAI-compatible API (`llm:`).
    Llm,
}

impl Config {
    /// What the agent is told about the LLM: the `llm` section when the
    /// reasoner is `llm`, nothing otherwise.
    pub fn llm_settings(&self) -> Option<LlmSettings> {
        (self.agent.reasoner == ReasonerKind::Llm).then(|| self.llm.clone())
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
    /// What kind of service holds the domain's data.
    #[serde(default)]
    pub connector: ConnectorKind,
    /// Where the domain's service listens. `warden render` turns each into
    /// an egress rule for the investigation pods of the phases that read the
    /// domain; none means those pods cannot reach it at all.
    #[serde(default)]
    pub endpoints: Vec<DomainEndpoint>,
}

/// The kind of service a data domain lives in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorKind {
    Prometheus,
    Loki,
    /// The Kubernetes API server (also what remediation jobs reach).
    Kubernetes,
    Postgres,
    /// Telemetry files shipped with the job.
    Bundle,
    #[default]
    Http,
}

/// One address a domain's service listens on (TCP): exactly one of `cidr`
/// and `host`, and a port.
///
/// Only `cidr` can become a NetworkPolicy egress rule: a NetworkPolicy
/// matches IP blocks, not names, so `warden render` refuses a readable
/// domain whose endpoint is a `host` rather than silently dropping it (the
/// job could not reach it) or widening it (to every address). Hosts are
/// accepted for the embedded runtime, which enforces no network policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainEndpoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub port: u16,
}

impl DomainEndpoint {
    /// Problems with the endpoint, each starting with its field path `at`.
    fn validate(&self, at: &str, problems: &mut Vec<String>) {
        match (&self.cidr, &self.host) {
            (Some(_), Some(_)) | (None, None) => problems.push(format!(
                "{at}: give exactly one of cidr (e.g. 10.0.0.0/24) and host (e.g. prometheus.monitoring.svc)"
            )),
            (Some(cidr), None) => {
                if let Err(e) = check_cidr(cidr) {
                    problems.push(format!("{at}.cidr {cidr:?}: {e}"));
                }
            }
            (None, Some(host)) => {
                let ok = !host.is_empty()
                    && host.len() <= 253
                    && host.split('.').all(|l| {
                        !l.is_empty()
                            && l.len() <= 63
                            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                            && !l.starts_with('-')
                            && !l.ends_with('-')
                    });
                if !ok {
                    problems.push(format!(
                        "{at}.host {host:?}: expected a DNS name of letters, digits, '-' and '.'"
                    ));
                }
            }
        }
        if self.port == 0 {
            problems.push(format!("{at}.port 0: expected a TCP port in 1..=65535"));
        }
    }
}

/// Accepts `ADDRESS/PREFIX` whose address is the network's first address
/// (what a NetworkPolicy ipBlock takes) and whose prefix is not 0: a
/// domain reachable at every address would make its egress rule
/// meaningless.
pub fn check_cidr(cidr: &str) -> Result<(std::net::IpAddr, u8), String> {
    use std::net::IpAddr;
    let expected = "expected ADDRESS/PREFIX such as 10.0.0.0/24 or fd00::/64";
    let (addr, prefix) = cidr.split_once('/').ok_or(expected)?;
    let addr: IpAddr = addr.parse().map_err(|_| expected)?;
    let prefix: u8 = prefix.parse().map_err(|_| expected)?;
    let bits: u8 = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > bits {
        return Err(format!("prefix /{prefix} is longer than {bits} bits"));
    }
    if prefix == 0 {
        return Err("a /0 range allows every address; name the service's own range".into());
    }
    let host_bits_clear = match addr {
        IpAddr::V4(a) => u32::from(a).checked_shl(u32::from(prefix)).unwrap_or(0) == 0,
        IpAddr::V6(a) => u128::from(a).checked_shl(u32::from(prefix)).unwrap_or(0) == 0,
    };
    if !host_bits_clear {
        return Err(format!(
            "host bits are set; expected the network address of the /{prefix} range"
        ));
    }
    Ok((addr, prefix))
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

fn domain(
    name: &str,
    path: &str,
    serves: &[&str],
    connector: ConnectorKind,
) -> SecretsDomainConfig {
    SecretsDomainConfig {
        name: name.into(),
        path: path.into(),
        serves: serves.iter().map(|s| s.to_string()).collect(),
        connector,
        endpoints: Vec::new(),
    }
}

impl Default for SecretsConfig {
    fn default() -> Self {
        let domains = vec![
            domain(
                "network-monitoring",
                "agent/data/network-monitoring",
                &["network"],
                ConnectorKind::Prometheus,
            ),
            domain(
                "application-metrics",
                "agent/data/application-metrics",
                &["application"],
                ConnectorKind::Prometheus,
            ),
            domain(
                "log-aggregation",
                "agent/data/log-aggregation",
                &["*"],
                ConnectorKind::Loki,
            ),
            domain(
                "database",
                "agent/data/database",
                &["database"],
                ConnectorKind::Postgres,
            ),
            domain(
                "security-events",
                "agent/data/security-events",
                &["security"],
                ConnectorKind::Http,
            ),
            domain(
                "llm-inference",
                "agent/data/llm/inference",
                &["*"],
                ConnectorKind::Http,
            ),
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
            for (j, e) in d.endpoints.iter().enumerate() {
                e.validate(&format!("secrets.domains[{i}].endpoints[{j}]"), problems);
            }
        }
    }
}

mod locate;
pub use locate::{Locator, Position};

/// Prefixes each problem with `origin:line:column` of its field (or of the
/// nearest enclosing key present in the text when the field was left out).
pub fn locate_problems(text: &str, origin: &str, problems: &[String]) -> Vec<String> {
    let locator = Locator::new(text);
    problems
        .iter()
        .map(|problem| {
            // The problem's own text is kept as is: it starts with the field.
            let Some(field) = locate::split_field(problem).map(|(f, _)| f) else {
                return format!("{origin}:1:1: {problem}");
            };
            match locator.find(field) {
                Some((pos, found)) if found == field => {
                    format!("{origin}:{}:{}: {problem}", pos.line, pos.column)
                }
                Some((pos, found)) => format!(
                    "{origin}:{}:{}: {problem} (not set under {found}, so its default applies)",
                    pos.line, pos.column
                ),
                None => format!(
                    "{origin}:1:1: {problem} (not set in this file, so its default applies)"
                ),
            }
        })
        .collect()
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
    /// Each problem reads `file:line:column: field.path: what is wrong and
    /// what is allowed`.
    #[error("{path}: invalid configuration:\n  {}", problems.join("\n  "))]
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
        let mut config: Config = if text.trim().is_empty() {
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
        // Phases left out read the domains this file declares, not the
        // built-in domain names.
        if Locator::new(text).position("phases").is_none() {
            let names: Vec<String> = config
                .secrets
                .domains
                .iter()
                .map(|d| d.name.clone())
                .collect();
            config.phases = Phases::defaults(&names);
        }
        let problems = config.validate();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid {
                path: origin.to_string(),
                problems: locate_problems(text, origin, &problems),
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
        self.runtime.kubernetes.validate(&mut problems);
        self.secrets.validate(&mut problems);
        if self.agent.reasoner == ReasonerKind::Llm {
            problems.extend(self.llm.validate("llm"));
            if !self
                .secrets
                .domains
                .iter()
                .any(|d| d.name == self.llm.api_key_domain)
            {
                problems.push(format!(
                    "llm.api_key_domain {:?} is not declared in secrets.domains",
                    self.llm.api_key_domain
                ));
            }
        }
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
        let env_names: Vec<String> = self.environments.iter().map(|e| e.name.clone()).collect();
        problems.extend(self.trust.validate(&env_names));
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
    fn an_llm_reasoner_with_an_unpriced_model_is_refused() {
        let err = Config::parse(
            "agent:\n  reasoner: llm\nllm:\n  model: mystery-7b\n",
            "w.yaml",
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("llm.model \"mystery-7b\" has no entry in llm.prices"),
            "{msg}"
        );
        let ok = Config::parse("agent:\n  reasoner: llm\n", "w.yaml").unwrap();
        assert_eq!(ok.llm_settings().unwrap().max_input_tokens, 20_000);
        assert!(Config::default().llm_settings().is_none());
    }

    #[test]
    fn semantic_problems_carry_file_line_column_field_and_what_is_allowed() {
        let text = "runtime:\n  max_concurrent: 0\nsecrets:\n  domains:\n    - name: db\n      path: agent/data/db\n      serves: [\"*\"]\n      endpoints:\n        - {cidr: 10.0.0.1/24, port: 5432}\n        - {host: db.svc, cidr: 10.0.0.0/24, port: 0}\n";
        let ConfigError::Invalid { problems, .. } = Config::parse(text, "w.yaml").unwrap_err()
        else {
            panic!("expected Invalid")
        };
        let all = problems.join("\n") + "\n";
        assert!(
            all.contains("w.yaml:2:3: runtime.max_concurrent must be at least 1"),
            "{all}"
        );
        assert!(
            all.contains("w.yaml:9:12: secrets.domains[0].endpoints[0].cidr \"10.0.0.1/24\": host bits are set; expected the network address"),
            "{all}"
        );
        assert!(
            all.contains("w.yaml:10:11: secrets.domains[0].endpoints[1]: give exactly one of cidr"),
            "{all}"
        );
        assert!(all.contains("w.yaml:10:45: secrets.domains[0].endpoints[1].port 0: expected a TCP port in 1..=65535\n"), "{all}");
        // Left-out phases read the declared domains; an unknown name in a
        // left-out field is located at the top, saying why.
        let text = "llm:\n  api_key_domain: nope\nagent:\n  reasoner: llm\n";
        let err = Config::parse(text, "l.yaml").unwrap_err().to_string();
        assert!(err.contains("l.yaml:2:3: llm.api_key_domain"), "{err}");
        let only_db =
            "secrets:\n  domains:\n    - {name: db, path: agent/data/db, serves: [\"*\"]}\n";
        let config = Config::parse(only_db, "d.yaml").unwrap();
        assert_eq!(config.phases.shadow.readable_domains, ["db"]);
        assert_eq!(config.phases.remediate.actions.len(), 4);
        // A problem in a field the file leaves out is located at the
        // nearest enclosing key present, or at the top, saying so.
        let err = Config::parse(&format!("agent:\n  reasoner: llm\n{only_db}"), "d.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("d.yaml:1:1: llm.api_key_domain \"llm-inference\" is not declared in secrets.domains (not set in this file, so its default applies)"),
            "{err}"
        );
        let err = Config::parse(
            &format!("agent:\n  reasoner: llm\nllm:\n  model: gpt-4o\n{only_db}"),
            "d.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("d.yaml:3:1: llm.api_key_domain \"llm-inference\" is not declared in secrets.domains (not set under llm, so its default applies)"),
            "{err}"
        );
        for p in &problems {
            assert!(p.starts_with("w.yaml:"), "{p}");
        }
    }

    #[test]
    fn cidrs_must_be_network_addresses_of_a_real_range() {
        assert!(check_cidr("10.0.0.0/24").is_ok());
        assert!(check_cidr("10.0.0.7/32").is_ok());
        assert!(check_cidr("fd00::/64").is_ok());
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "0.0.0.0/0",
            "10.0.0.1/24",
            "fd00::1/64",
            "x/8",
        ] {
            assert!(check_cidr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_shipped_example_equals_the_default() {
        let text = include_str!("../../../examples/warden.yaml");
        let parsed = Config::parse(text, "examples/warden.yaml").unwrap();
        assert_eq!(parsed, Config::default());
    }
}
