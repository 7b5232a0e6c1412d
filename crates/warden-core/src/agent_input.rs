//! What the control plane hands an investigation's job when it starts.
//!
//! The job reads one JSON document, [`JobInput`], from its standard input
//! and then sees end-of-file. The one-time result credential travels only
//! through that pipe: never in argv, never in an environment variable, never
//! in a file.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::capabilities::Phases;
use crate::incident::Incident;
use crate::investigation::InvestigationId;
use crate::plan::Plan;
use crate::trust::TrustPhase;

/// Where the agent finds evidence. Each variant is a read-only connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DataSourceConfig {
    /// A telemetry bundle directory (`docs/telemetry-bundle.md`).
    Bundle { path: String },
    /// A Prometheus HTTP API (`docs/connectors.md`).
    Prometheus(PrometheusSourceConfig),
    /// A Loki HTTP API (`docs/connectors.md`).
    Loki(LokiSourceConfig),
    /// The Kubernetes API: events, pod status and logs, rollouts and
    /// config changes (`docs/connectors.md`).
    Kubernetes(KubernetesSourceConfig),
}

fn default_timeout_seconds() -> u64 {
    10
}
fn default_retries() -> u32 {
    2
}
fn default_max_response_bytes() -> u64 {
    16 * 1024 * 1024
}
fn default_service_label() -> String {
    "service".to_string()
}
fn default_step_seconds() -> u64 {
    60
}
fn default_page_limit() -> usize {
    5000
}
fn default_max_log_bytes() -> u64 {
    1024 * 1024
}
fn default_service_labels() -> Vec<String> {
    vec!["app.kubernetes.io/name".to_string(), "app".to_string()]
}

/// A Prometheus server. Holds no secret: `credentials_domain` names the
/// granted secrets domain whose value is the bearer token or basic-auth pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSourceConfig {
    /// The source name in evidence; default `prometheus`.
    #[serde(default)]
    pub name: Option<String>,
    /// Base URL, e.g. `http://prometheus.monitoring:9090`.
    pub url: String,
    /// The alert domains this source covers.
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub credentials_domain: Option<String>,
    /// For one query, retries included.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    /// Retries on 429, 5xx and connection errors.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Responses are cut at this size (and the cut is reported).
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u64,
    /// The Prometheus label holding the service (node) name.
    #[serde(default = "default_service_label")]
    pub service_label: String,
    /// Extra label matchers added to every selector, e.g. `namespace="prod"`.
    #[serde(default)]
    pub selector: Option<String>,
    /// Resolution of range queries.
    #[serde(default = "default_step_seconds")]
    pub step_seconds: u64,
}

/// A Loki server; credentials as for [`PrometheusSourceConfig`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LokiSourceConfig {
    /// The source name in evidence; default `loki`.
    #[serde(default)]
    pub name: Option<String>,
    pub url: String,
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub credentials_domain: Option<String>,
    /// Sent as `X-Scope-OrgID` (multi-tenant Loki).
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    #[serde(default = "default_retries")]
    pub retries: u32,
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u64,
    /// The stream label holding the service name.
    #[serde(default = "default_service_label")]
    pub service_label: String,
    /// Extra stream matchers, e.g. `namespace="prod"`.
    #[serde(default)]
    pub selector: Option<String>,
    /// Lines per request; longer answers are read page by page.
    #[serde(default = "default_page_limit")]
    pub page_limit: usize,
}

/// The Kubernetes API, read with the job's own service account (or the
/// bearer token of `credentials_domain`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSourceConfig {
    /// The source name in evidence; default `kubernetes`.
    #[serde(default)]
    pub name: Option<String>,
    /// The namespaces read; nothing outside them is.
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub domains: Vec<String>,
    /// API server URL; default: in-cluster configuration (or kubeconfig).
    #[serde(default)]
    pub api_url: Option<String>,
    #[serde(default)]
    pub credentials_domain: Option<String>,
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Per container log read; longer logs are cut (and say so).
    #[serde(default = "default_max_log_bytes")]
    pub max_log_bytes: u64,
    /// Pod labels naming the service, first present wins.
    #[serde(default = "default_service_labels")]
    pub service_labels: Vec<String>,
}

/// The investigation as the agent sees it. Contains no secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentInput {
    pub investigation_id: InvestigationId,
    pub phase: TrustPhase,
    pub plan: Plan,
    pub deadline: DateTime<Utc>,
    pub incident: Incident,
    pub data_sources: Vec<DataSourceConfig>,
    /// Where to POST the report (`.../api/v1/investigations/{id}/report`).
    pub report_url: String,
    /// Set when the investigation reasons with a language model
    /// (`agent.reasoner: llm`); absent means the built-in reasoner. Holds
    /// no secret: the API key is the granted `api_key_domain` secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<LlmSettings>,
    /// What the action gate needs to decide every read the agent makes
    /// (`docs/policy.md`, "Reads"). Always set by the control plane; when
    /// absent the agent denies every read (fail closed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reads: Option<ReadPolicy>,
}

/// The configuration the agent builds its read gate from. Holds no secret:
/// phase capabilities, namespace lists, the declared data domains and the
/// text of the configured extra Cedar policies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadPolicy {
    /// The environment the control plane runs in (`trust.environment`).
    pub environment: String,
    /// What each phase may read and do (`phases`).
    pub phases: Phases,
    /// Never read, whatever a policy says (`namespaces.protected`).
    #[serde(default)]
    pub protected_namespaces: Vec<String>,
    /// Namespaces whose workloads may be read (`namespaces.targets`).
    #[serde(default)]
    pub target_namespaces: Vec<String>,
    /// The declared data domains (`secrets.domains`), to tell which data
    /// domain a read is about.
    #[serde(default)]
    pub domains: Vec<DataDomain>,
    /// The configured extra policies (`policy.directory`, `policy.inline`).
    #[serde(default)]
    pub policies: Vec<PolicyText>,
}

/// A data domain as the read gate sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataDomain {
    pub name: String,
    /// The alert domains it serves; `"*"` serves every investigation.
    #[serde(default)]
    pub serves: Vec<String>,
    /// The kind of service holding its data (`prometheus`, `loki`,
    /// `kubernetes`, `bundle`, `postgres`, `http`).
    pub connector: String,
}

/// Cedar policy text and where it came from (a file path or
/// `policy.inline[<n>]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyText {
    pub origin: String,
    pub text: String,
}

/// Which secrets backend issued a job's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretsBackend {
    /// The control plane's embedded broker; secrets are read from
    /// `GET {address}/api/v1/secrets/{domain}` with the credential as bearer.
    Embedded,
    /// OpenBao or Vault; the credential is a single-use response-wrapping
    /// token the job unwraps into its own token.
    Openbao,
}

/// A data domain the job may read, and where its secret lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainGrant {
    pub name: String,
    pub path: String,
}

/// The investigation's own identity for reading domain secrets.
#[derive(Deserialize)]
pub struct JobIdentity {
    pub backend: SecretsBackend,
    /// Base URL of the secrets backend.
    pub address: String,
    /// Safe to log: identifies the identity, grants nothing.
    pub accessor: String,
    pub domains: Vec<DomainGrant>,
    pub credential: SecretString,
}

impl std::fmt::Debug for JobIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobIdentity")
            .field("backend", &self.backend)
            .field("address", &self.address)
            .field("accessor", &self.accessor)
            .field("domains", &self.domains)
            .finish_non_exhaustive()
    }
}

/// The document on the job's standard input.
#[derive(Deserialize)]
pub struct JobInput {
    pub input: AgentInput,
    /// Sent as `Authorization: Bearer` when delivering the report.
    pub result_credential: SecretString,
    /// Absent when no secrets backend is configured.
    #[serde(default)]
    pub identity: Option<JobIdentity>,
}

impl std::fmt::Debug for JobInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobInput")
            .field("input", &self.input)
            .finish_non_exhaustive()
    }
}

/// USD per million tokens for one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    pub model: String,
    pub input_usd_per_mtok: f64,
    pub output_usd_per_mtok: f64,
}

/// How an investigation talks to an OpenAI-compatible chat-completions
/// server (`docs/llm.md`). Contains no secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmSettings {
    /// Base URL; requests go to `{base_url}/chat/completions`.
    pub base_url: String,
    pub model: String,
    /// Per request; retries are further capped by the deadline.
    pub request_timeout_seconds: u64,
    /// Retries on 429, 5xx, timeouts, connection errors and garbled answers.
    pub max_retries: u32,
    /// Input tokens one investigation may send, all calls together.
    pub max_input_tokens: u64,
    /// `max_tokens` of each request; also what a call is assumed to cost
    /// in output when checking the cost budget before it.
    pub max_output_tokens: u32,
    /// The price table. A model missing from it is refused: without a price
    /// the cost budget cannot be enforced.
    pub prices: Vec<ModelPrice>,
    /// The secrets domain whose granted secret is the API key.
    pub api_key_domain: String,
}

impl Default for LlmSettings {
    fn default() -> Self {
        let price = |model: &str, input: f64, output: f64| ModelPrice {
            model: model.to_string(),
            input_usd_per_mtok: input,
            output_usd_per_mtok: output,
        };
        LlmSettings {
            base_url: "https://api.openai.com/v1".to_string(),
            model: "gpt-4o-mini".to_string(),
            request_timeout_seconds: 60,
            max_retries: 4,
            max_input_tokens: 20_000,
            max_output_tokens: 1024,
            prices: vec![
                price("gpt-4o-mini", 0.15, 0.60),
                price("gpt-4o", 2.50, 10.00),
                price("gpt-4.1-mini", 0.40, 1.60),
                price("gpt-4.1", 2.00, 8.00),
            ],
            api_key_domain: "llm-inference".to_string(),
        }
    }
}

impl LlmSettings {
    /// The configured price of `model`.
    pub fn price_of(&self, model: &str) -> Option<&ModelPrice> {
        self.prices.iter().find(|p| p.model == model)
    }

    /// Problems a user must fix, each naming the field under `at`.
    pub fn validate(&self, at: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if !(self.base_url.starts_with("http://") || self.base_url.starts_with("https://")) {
            problems.push(format!(
                "{at}.base_url {:?} must start with http:// or https://",
                self.base_url
            ));
        }
        if self.model.trim().is_empty() {
            problems.push(format!("{at}.model must not be empty"));
        } else if self.price_of(&self.model).is_none() {
            problems.push(format!(
                "{at}.model {:?} has no entry in {at}.prices (its cost could not be budgeted)",
                self.model
            ));
        }
        if self.request_timeout_seconds == 0 {
            problems.push(format!("{at}.request_timeout_seconds must be positive"));
        }
        if self.max_retries > 20 {
            problems.push(format!("{at}.max_retries must be at most 20"));
        }
        if self.max_input_tokens == 0 {
            problems.push(format!("{at}.max_input_tokens must be positive"));
        }
        if self.max_output_tokens == 0 {
            problems.push(format!("{at}.max_output_tokens must be positive"));
        }
        for (i, p) in self.prices.iter().enumerate() {
            // Written so that NaN is refused too.
            let ok = |v: f64| v.is_finite() && v >= 0.0;
            if !ok(p.input_usd_per_mtok) || !ok(p.output_usd_per_mtok) {
                problems.push(format!(
                    "{at}.prices[{i}] ({:?}): prices must be finite and zero or more",
                    p.model
                ));
            }
        }
        if self.api_key_domain.trim().is_empty() {
            problems.push(format!("{at}.api_key_domain must not be empty"));
        }
        problems
    }
}
