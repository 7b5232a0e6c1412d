//! What the gate is asked, and what it answers.
//!
//! Requests carry only structured fields set by the control plane or the
//! agent loop (phase, environment, confidence come from the investigation
//! record, never from evidence text). An action the agent names that is not
//! one of warden's kinds is still representable ([`ActionSpec::raw`]) so it
//! can be denied with a reason instead of failing to parse.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use warden_core::report::Remediation;
use warden_core::{ActionKind, ProposedAction, TrustPhase};

/// The namespaces the gate protects and acts in (from `namespaces` in
/// warden.yaml).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespacesPolicy {
    /// Never read or acted on, whatever a policy says.
    pub protected: Vec<String>,
    /// Namespaces whose workloads may be read and acted on.
    pub targets: Vec<String>,
}

/// One data read: a tool call of the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadRequest {
    pub investigation: String,
    pub phase: TrustPhase,
    pub environment: String,
    /// The data domain read (a name from `secrets.domains`).
    pub domain: String,
    /// The connector serving it (prometheus, loki, kubernetes, bundle, ...).
    pub connector: String,
    /// The kind of query (metrics, logs, events, get, list, ...).
    pub query_kind: String,
    /// Namespace the read is about, when it is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Kind of Kubernetes object read (Pod, Secret, ...), when it reads objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_kind: Option<String>,
}

/// An action as the gate sees it: one of warden's kinds, or any other name
/// the agent (or a text it read) came up with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionSpec {
    /// The action kind as named (e.g. `restart_pod`, or `delete_namespace`).
    pub kind: String,
    pub namespace: String,
    /// Name of the object acted on.
    pub target: String,
    /// Kind of the object acted on (Pod, Deployment, Namespace, ...).
    pub target_kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
}

impl ActionSpec {
    /// Any action by name. The target kind is inferred for the kinds warden
    /// knows; for others it is `Namespace` or `Secret` when the name says
    /// so, else `Unknown`.
    pub fn raw(
        kind: impl Into<String>,
        namespace: impl Into<String>,
        target: impl Into<String>,
    ) -> ActionSpec {
        let kind = normalise_kind(&kind.into());
        let target_kind = match kind.parse::<ActionKind>() {
            Ok(k) => k.target_kind().to_string(),
            Err(_) if kind.contains("namespace") || kind.ends_with("_ns") => "Namespace".into(),
            Err(_) if kind.contains("secret") => "Secret".into(),
            Err(_) => "Unknown".into(),
        };
        ActionSpec {
            kind,
            namespace: namespace.into(),
            target: target.into(),
            target_kind,
            replicas: None,
        }
    }

    /// A remediation from a report, acting in `namespace` (reports name the
    /// workload, not where it runs).
    pub fn from_remediation(remediation: &Remediation, namespace: &str) -> ActionSpec {
        ActionSpec::raw(&remediation.action, namespace, &remediation.target)
    }

    /// The action as one of warden's kinds, when it is one.
    pub fn known_kind(&self) -> Option<ActionKind> {
        self.kind.parse().ok()
    }

    /// The structured action, when the kind is one of warden's.
    pub fn to_proposed(&self) -> Option<ProposedAction> {
        Some(ProposedAction {
            kind: self.known_kind()?,
            namespace: self.namespace.clone(),
            target: self.target.clone(),
            replicas: self.replicas,
        })
    }
}

impl From<&ProposedAction> for ActionSpec {
    fn from(a: &ProposedAction) -> ActionSpec {
        ActionSpec {
            kind: a.kind.as_str().to_string(),
            namespace: a.namespace.clone(),
            target: a.target.clone(),
            target_kind: a.kind.target_kind().to_string(),
            replicas: a.replicas,
        }
    }
}

/// Lower case, with spaces and '-' as '_', so `Delete-Namespace` and
/// `delete namespace` are the same unknown kind as `delete_namespace`.
pub(crate) fn normalise_kind(kind: &str) -> String {
    kind.trim()
        .chars()
        .map(|c| match c {
            ' ' | '-' | '\t' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// One action the agent proposes (or an operator asks to run) for an
/// investigation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRequest {
    pub investigation: String,
    /// The investigation's phase, from its record (never from evidence).
    pub phase: TrustPhase,
    pub environment: String,
    /// The diagnosis' confidence, 0..=1 (NaN counts as 0).
    pub confidence: f64,
    pub action: ActionSpec,
    /// `agent`, or `operator:<name>`.
    pub requested_by: String,
}

/// What the gate decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Runs (or is read) now, without a person.
    Allowed,
    /// Never runs as asked; the reasons say why.
    Denied { reasons: Vec<String> },
    /// Runs once an authorised operator approves it (remediate).
    NeedsApproval,
    /// Goes to a person with the findings so far (autonomous, when it may
    /// not run on its own).
    Escalated { reason: String },
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed)
    }

    pub fn is_denied(&self) -> bool {
        matches!(self, Decision::Denied { .. })
    }

    /// `allowed`, `denied`, `needs_approval` or `escalated`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Denied { .. } => "denied",
            Decision::NeedsApproval => "needs_approval",
            Decision::Escalated { .. } => "escalated",
        }
    }
}

/// The request the gate was asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum GateRequest {
    Read(ReadRequest),
    Action(ActionRequest),
}

impl GateRequest {
    pub fn investigation(&self) -> &str {
        match self {
            GateRequest::Read(r) => &r.investigation,
            GateRequest::Action(a) => &a.investigation,
        }
    }
}

/// One decision with everything needed to record it with the investigation
/// and in the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub ts: DateTime<Utc>,
    pub request: GateRequest,
    pub decision: Decision,
    /// Ids of the policies that determined the decision (the permit that
    /// allowed it, or the forbids that denied it; empty for deny by default).
    pub policies: Vec<String>,
    /// Human-readable reasons, one per determining policy plus the gate's
    /// explanation where no policy fired.
    pub reasons: Vec<String>,
}

impl DecisionRecord {
    pub fn is_allowed(&self) -> bool {
        self.decision.is_allowed()
    }
}
