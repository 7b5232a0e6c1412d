//! The read gate: every data read of an investigation is decided by the
//! action gate (crate `warden-policy`, Cedar) before it reaches a source.
//!
//! It is asked twice, on purpose:
//!
//! - by the loop ([`crate::investigate`]) for every query it is about to
//!   send to a source, bundle included: a denied read never reaches the
//!   source, is logged as `read_denied` and becomes evidence (source
//!   `gate`);
//! - by the live connectors for each request they make on the way
//!   ([`GateGuard`], a `warden_connectors::ReadGuard`): a Kubernetes query
//!   becomes several API calls, each with its namespace and resource kind.
//!
//! The gate is built in the agent process from its input document
//! ([`AgentInput::reads`]): the phase and environment of the
//! investigation, the phase capabilities, the namespace lists and the
//! configured extra policies. Nothing the agent reads can change them.
//!
//! Which data domain a read is about (the gate decides per domain):
//!
//! 1. a live source with a `credentials_domain` reads that domain: its
//!    credential grants exactly that;
//! 2. otherwise the declared domains (`secrets.domains`) whose `connector`
//!    is the source's kind and that serve one of the source's alert domains
//!    (or `*`);
//! 3. otherwise the declared domains that name one of the source's alert
//!    domains in `serves` (a bundle holds the telemetry of every alert
//!    domain it covers).
//!
//! A read is allowed only when every domain and every namespace it touches
//! is allowed; a read no declared domain covers is denied (fail closed),
//! as is every read when the gate cannot be built.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use warden_connectors::{ReadDenied, ReadGuard};
use warden_core::agent_input::{DataDomain, ReadPolicy};
use warden_core::ports::{DataSource, Query};
use warden_core::{AgentInput, DataSourceConfig, Domain, TrustPhase};
use warden_policy::{
    ActionGate, Decision, DecisionRecord, GateRequest, NamespacesPolicy, PolicySource, ReadRequest,
};

/// Why every read of an input without `reads` is denied.
pub const NO_READ_POLICY: &str =
    "the input document carries no read policy (`reads`), so every read is denied";

/// What the gate knows about a configured source, by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SourceInfo {
    connector: &'static str,
    credentials_domain: Option<String>,
    /// Namespaces a Kubernetes source reads.
    namespaces: Vec<String>,
}

/// The names [`crate::job::open_sources`] gives the configured sources,
/// with what the gate needs of each.
fn configured_sources(configs: &[DataSourceConfig]) -> BTreeMap<String, SourceInfo> {
    let mut out = BTreeMap::new();
    for (i, config) in configs.iter().enumerate() {
        let (name, info) = match config {
            DataSourceConfig::Bundle { .. } => {
                let name = if i == 0 {
                    "bundle".to_string()
                } else {
                    format!("bundle-{}", i + 1)
                };
                let info = SourceInfo {
                    connector: "bundle",
                    credentials_domain: None,
                    namespaces: Vec::new(),
                };
                (name, info)
            }
            DataSourceConfig::Prometheus(c) => (
                c.name.clone().unwrap_or_else(|| "prometheus".into()),
                SourceInfo {
                    connector: "prometheus",
                    credentials_domain: c.credentials_domain.clone(),
                    namespaces: Vec::new(),
                },
            ),
            DataSourceConfig::Loki(c) => (
                c.name.clone().unwrap_or_else(|| "loki".into()),
                SourceInfo {
                    connector: "loki",
                    credentials_domain: c.credentials_domain.clone(),
                    namespaces: Vec::new(),
                },
            ),
            DataSourceConfig::Kubernetes(c) => (
                c.name.clone().unwrap_or_else(|| "kubernetes".into()),
                SourceInfo {
                    connector: "kubernetes",
                    credentials_domain: c.credentials_domain.clone(),
                    namespaces: c.namespaces.clone(),
                },
            ),
        };
        out.insert(name, info);
    }
    out
}

/// The query kind of a port query, as the gate and the evidence name it.
pub fn query_kind(query: &Query) -> &'static str {
    match query {
        Query::Metrics { .. } => "metrics",
        Query::Logs { .. } => "logs",
        Query::Changes { .. } => "changes",
        Query::Flows { .. } => "flows",
        Query::SecurityEvents { .. } => "security_events",
        Query::Topology => "topology",
    }
}

/// The Kubernetes kind a connector request reads, for the gate's
/// `resource_kind` (so `forbid-secret-read` and operators' policies can
/// name it).
fn resource_kind(request_kind: &str) -> Option<&'static str> {
    Some(match request_kind {
        "events" => "Event",
        "pods" | "pod_logs" => "Pod",
        "replicasets" => "ReplicaSet",
        "deployments" => "Deployment",
        "configmaps" => "ConfigMap",
        "secrets" => "Secret",
        _ => return None,
    })
}

/// One read as the gate is asked about it.
#[derive(Debug, Clone)]
pub struct ReadCheck<'a> {
    pub source: &'a str,
    /// `prometheus`, `loki`, `kubernetes`, `bundle`; `unknown` for a source
    /// that is not in the input's configuration.
    pub connector: &'a str,
    /// The alert domains the source covers.
    pub alert_domains: &'a [Domain],
    pub query_kind: &'a str,
    /// The namespaces the read is about (none: not about a namespace).
    pub namespaces: Vec<String>,
    pub resource_kind: Option<&'a str>,
}

/// What the gate decided for one read.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadVerdict {
    /// Every domain and namespace the read touches is allowed.
    Allowed { domains: Vec<String> },
    /// The decisions that denied it (at least one).
    Denied(Vec<DecisionRecord>),
}

/// The action gate as one investigation's reads see it. Cheap to share
/// (`Arc<ReadGate>`).
#[derive(Debug)]
pub struct ReadGate {
    /// `Err` when the configured policies could not be loaded: then every
    /// read is denied with that error.
    gate: Result<ActionGate, String>,
    investigation: String,
    phase: TrustPhase,
    environment: String,
    domains: Vec<DataDomain>,
    sources: BTreeMap<String, SourceInfo>,
}

impl ReadGate {
    /// The gate for `input`. An input without a read policy gets a gate
    /// that denies every read (fail closed): the control plane always
    /// writes one, so its absence means a document written by hand or by
    /// something else.
    pub fn for_input(input: &AgentInput) -> ReadGate {
        match &input.reads {
            Some(policy) => ReadGate::new(
                input.investigation_id.as_str(),
                input.phase,
                policy,
                &input.data_sources,
            ),
            None => ReadGate {
                gate: Err(NO_READ_POLICY.to_string()),
                investigation: input.investigation_id.to_string(),
                phase: input.phase,
                environment: String::new(),
                domains: Vec::new(),
                sources: configured_sources(&input.data_sources),
            },
        }
    }

    /// Builds the gate; a policy that does not load makes a gate that
    /// denies every read with the reason (see [`ReadGate::load_error`]).
    pub fn new(
        investigation: &str,
        phase: TrustPhase,
        policy: &ReadPolicy,
        data_sources: &[DataSourceConfig],
    ) -> ReadGate {
        let extra: Vec<PolicySource> = policy
            .policies
            .iter()
            .map(|p| PolicySource::new(p.origin.clone(), p.text.clone()))
            .collect();
        let namespaces = NamespacesPolicy {
            protected: policy.protected_namespaces.clone(),
            targets: policy.target_namespaces.clone(),
        };
        let gate = ActionGate::new(&policy.phases, &namespaces, &extra).map_err(|e| e.to_string());
        ReadGate {
            gate,
            investigation: investigation.to_string(),
            phase,
            environment: policy.environment.clone(),
            domains: policy.domains.clone(),
            sources: configured_sources(data_sources),
        }
    }

    /// Why the gate could not be built, when it could not.
    pub fn load_error(&self) -> Option<&str> {
        self.gate.as_ref().err().map(String::as_str)
    }

    pub fn phase(&self) -> TrustPhase {
        self.phase
    }

    pub fn environment(&self) -> &str {
        &self.environment
    }

    /// The connector kind of a configured source (`unknown` otherwise).
    pub fn connector_of(&self, source: &str) -> &'static str {
        self.sources.get(source).map_or("unknown", |s| s.connector)
    }

    /// The data domains a read from `source` (covering `alert_domains`) is
    /// about; see the module docs. Empty when no declared domain covers it.
    pub fn data_domains(&self, source: &str, alert_domains: &[Domain]) -> Vec<String> {
        let info = self.sources.get(source);
        if let Some(d) = info.and_then(|i| i.credentials_domain.clone()) {
            return vec![d];
        }
        let serves = |d: &DataDomain, star: bool| {
            d.serves
                .iter()
                .any(|s| (star && s == "*") || alert_domains.iter().any(|a| a.as_str() == s))
        };
        let names = |pick: &dyn Fn(&DataDomain) -> bool| -> Vec<String> {
            self.domains
                .iter()
                .filter(|d| pick(d))
                .map(|d| d.name.clone())
                .collect()
        };
        if let Some(info) = info {
            let by_kind = names(&|d| d.connector == info.connector && serves(d, true));
            if !by_kind.is_empty() {
                return by_kind;
            }
        }
        names(&|d| serves(d, false))
    }

    /// Decides one query the loop is about to send to `source`.
    pub fn decide_query(&self, source: &dyn DataSource, query: &Query) -> ReadVerdict {
        let alert_domains = source.domains();
        let mut namespaces: Vec<String> = self
            .sources
            .get(source.name())
            .map(|s| s.namespaces.clone())
            .unwrap_or_default();
        if let Query::Metrics { labels, .. } = query
            && let Some(ns) = labels.get("namespace")
            && !namespaces.contains(ns)
        {
            namespaces.push(ns.clone());
        }
        self.decide(&ReadCheck {
            source: source.name(),
            connector: self.connector_of(source.name()),
            alert_domains: &alert_domains,
            query_kind: query_kind(query),
            namespaces,
            resource_kind: None,
        })
    }

    /// Decides one read: one gate decision per (data domain, namespace).
    pub fn decide(&self, check: &ReadCheck<'_>) -> ReadVerdict {
        let domains = self.data_domains(check.source, check.alert_domains);
        let request = |domain: &str, namespace: Option<&String>| ReadRequest {
            investigation: self.investigation.clone(),
            phase: self.phase,
            environment: self.environment.clone(),
            domain: domain.to_string(),
            connector: check.connector.to_string(),
            query_kind: check.query_kind.to_string(),
            namespace: namespace.cloned(),
            resource_kind: check.resource_kind.map(str::to_string),
        };
        let gate = match &self.gate {
            Ok(gate) => gate,
            Err(e) => {
                let domain = domains.first().map_or("", String::as_str);
                return ReadVerdict::Denied(vec![denied(
                    request(domain, check.namespaces.first()),
                    format!("the read gate could not be built, so nothing is read: {e}"),
                )]);
            }
        };
        if domains.is_empty() {
            let alert: Vec<&str> = check.alert_domains.iter().map(Domain::as_str).collect();
            return ReadVerdict::Denied(vec![denied(
                request("", check.namespaces.first()),
                format!(
                    "no declared data domain (secrets.domains) covers source {:?} (connector {}, alert domains [{}]): declare one whose connector or serves names it",
                    check.source,
                    check.connector,
                    alert.join(", ")
                ),
            )]);
        }
        let namespaces: Vec<Option<&String>> = if check.namespaces.is_empty() {
            vec![None]
        } else {
            check.namespaces.iter().map(Some).collect()
        };
        let mut denials = Vec::new();
        for domain in &domains {
            for ns in &namespaces {
                let record = gate.decide_read(&request(domain, *ns));
                if !record.is_allowed() {
                    denials.push(record);
                }
            }
        }
        if denials.is_empty() {
            ReadVerdict::Allowed { domains }
        } else {
            ReadVerdict::Denied(denials)
        }
    }

    /// The guard the live connectors call before each request.
    pub fn guard(self: &Arc<Self>) -> Arc<dyn ReadGuard> {
        Arc::new(GateGuard(self.clone()))
    }
}

/// A denial the gate itself decided (no policy could be asked).
fn denied(request: ReadRequest, reason: String) -> DecisionRecord {
    DecisionRecord {
        ts: Utc::now(),
        request: GateRequest::Read(request),
        decision: Decision::Denied {
            reasons: vec![reason.clone()],
        },
        policies: Vec::new(),
        reasons: vec![reason],
    }
}

/// The reasons of a set of denials, each once, in order.
pub fn reasons_of(records: &[DecisionRecord]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in records.iter().flat_map(|r| r.reasons.iter()) {
        if !out.contains(r) {
            out.push(r.clone());
        }
    }
    out
}

/// The action gate as the connectors' [`ReadGuard`]: each request a live
/// connector makes (a PromQL or LogQL query, one Kubernetes API call per
/// namespace and kind) is decided before it is sent.
#[derive(Debug, Clone)]
pub struct GateGuard(pub Arc<ReadGate>);

/// What a connector-level denial says: the loop recognises it in the
/// source's error by this prefix (see `warden_connectors::ReadDenied`).
pub const DENIED_PREFIX: &str = "read denied: ";

impl ReadGuard for GateGuard {
    fn check(&self, request: &warden_connectors::ReadRequest) -> Result<(), ReadDenied> {
        let verdict = self.0.decide(&ReadCheck {
            source: &request.source,
            connector: request.connector,
            alert_domains: &request.domains,
            query_kind: request.kind,
            namespaces: request.namespace.iter().cloned().collect(),
            resource_kind: resource_kind(request.kind),
        });
        match verdict {
            ReadVerdict::Allowed { .. } => Ok(()),
            ReadVerdict::Denied(records) => Err(ReadDenied {
                reason: reasons_of(&records).join("; "),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_core::Phases;
    use warden_core::agent_input::PolicyText;

    fn policy(readable: &[&str]) -> ReadPolicy {
        let mut phases = Phases::defaults(&["metrics".into(), "logs".into(), "cluster".into()]);
        phases.shadow.readable_domains = readable.iter().map(|s| s.to_string()).collect();
        let domain = |name: &str, serves: &[&str], connector: &str| DataDomain {
            name: name.into(),
            serves: serves.iter().map(|s| s.to_string()).collect(),
            connector: connector.into(),
        };
        ReadPolicy {
            environment: "prod".into(),
            phases,
            protected_namespaces: vec!["kube-system".into()],
            target_namespaces: vec!["shop".into()],
            domains: vec![
                domain("metrics", &["application"], "prometheus"),
                domain("logs", &["*"], "loki"),
                domain("cluster", &["*"], "kubernetes"),
            ],
            policies: Vec::new(),
        }
    }

    fn sources() -> Vec<DataSourceConfig> {
        serde_json::from_str(
            r#"[
            {"kind": "prometheus", "url": "http://127.0.0.1:9", "domains": ["application"]},
            {"kind": "loki", "name": "loki-prod", "url": "http://127.0.0.1:9", "credentials_domain": "logs"},
            {"kind": "kubernetes", "namespaces": ["shop"]},
            {"kind": "bundle", "path": "/nowhere"}
        ]"#,
        )
        .unwrap()
    }

    fn gate(readable: &[&str]) -> Arc<ReadGate> {
        Arc::new(ReadGate::new(
            "inv-1",
            TrustPhase::Shadow,
            &policy(readable),
            &sources(),
        ))
    }

    fn request(
        source: &str,
        connector: &'static str,
        kind: &'static str,
        ns: Option<&str>,
    ) -> warden_connectors::ReadRequest {
        warden_connectors::ReadRequest {
            source: source.into(),
            connector,
            domains: vec![Domain::new("application")],
            kind,
            namespace: ns.map(str::to_string),
            target: "x".into(),
        }
    }

    #[test]
    fn data_domains_come_from_the_credential_then_the_connector_then_the_alert_domains() {
        let g = gate(&["metrics"]);
        let app = [Domain::new("application")];
        assert_eq!(g.data_domains("loki-prod", &app), ["logs"]);
        assert_eq!(g.data_domains("prometheus", &app), ["metrics"]);
        assert_eq!(g.data_domains("kubernetes", &[]), ["cluster"]);
        // The bundle has no domain of its own: the ones naming its alert domains.
        assert_eq!(g.data_domains("bundle", &app), ["metrics"]);
        assert!(
            g.data_domains("bundle", &[Domain::new("network")])
                .is_empty()
        );
    }

    #[test]
    fn the_guard_denies_an_unreadable_domain_and_a_protected_namespace() {
        let g = gate(&["metrics", "cluster"]);
        let guard = g.guard();
        assert!(
            guard
                .check(&request("prometheus", "prometheus", "promql", None))
                .is_ok()
        );
        let err = guard
            .check(&request("loki-prod", "loki", "logql", None))
            .unwrap_err();
        assert!(
            err.reason.contains(r#"domain "logs" is not readable"#),
            "{err}"
        );
        assert!(
            guard
                .check(&request("kubernetes", "kubernetes", "pods", Some("shop")))
                .is_ok()
        );
        let err = guard
            .check(&request(
                "kubernetes",
                "kubernetes",
                "events",
                Some("kube-system"),
            ))
            .unwrap_err();
        assert!(
            err.reason.contains("forbid-protected-namespace-read"),
            "{err}"
        );
        assert!(err.to_string().starts_with(DENIED_PREFIX));
    }

    #[test]
    fn a_source_no_domain_covers_is_denied() {
        let g = gate(&["metrics", "logs", "cluster"]);
        let mut req = request("elsewhere", "prometheus", "promql", None);
        req.domains = vec![Domain::new("network")];
        let err = g.guard().check(&req).unwrap_err();
        assert!(err.reason.contains("no declared data domain"), "{err}");
    }

    #[test]
    fn an_extra_forbid_applies_and_a_broken_policy_denies_every_read() {
        let mut p = policy(&["metrics", "cluster"]);
        p.policies.push(PolicyText {
            origin: "policy.inline[0]".into(),
            text: r#"@id("no-pod-logs") @reason("pod logs are not read in prod")
                forbid (principal, action == Action::"read", resource)
                when { principal.environment == "prod" && context.query_kind == "pod_logs" };"#
                .into(),
        });
        let g = Arc::new(ReadGate::new("inv-1", TrustPhase::Shadow, &p, &sources()));
        assert!(g.load_error().is_none(), "{:?}", g.load_error());
        let guard = g.guard();
        let err = guard
            .check(&request(
                "kubernetes",
                "kubernetes",
                "pod_logs",
                Some("shop"),
            ))
            .unwrap_err();
        assert!(
            err.reason.contains("pod logs are not read in prod"),
            "{err}"
        );
        assert!(
            guard
                .check(&request("kubernetes", "kubernetes", "pods", Some("shop")))
                .is_ok()
        );

        p.policies[0].text = "forbid (principal, action, resource) when { nonsense };".into();
        let g = Arc::new(ReadGate::new("inv-1", TrustPhase::Shadow, &p, &sources()));
        assert!(g.load_error().is_some());
        let err = g
            .guard()
            .check(&request("prometheus", "prometheus", "promql", None))
            .unwrap_err();
        assert!(err.reason.contains("could not be built"), "{err}");
    }

    #[test]
    fn a_secret_is_never_read() {
        let g = gate(&["metrics", "cluster"]);
        let err = g
            .guard()
            .check(&request(
                "kubernetes",
                "kubernetes",
                "secrets",
                Some("shop"),
            ))
            .unwrap_err();
        assert!(err.reason.contains("forbid-secret-read"), "{err}");
    }
}
