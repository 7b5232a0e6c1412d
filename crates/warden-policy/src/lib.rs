//! warden's action gate: every data read and every action an investigation
//! proposes is decided here, outside the agent, by Cedar policies.
//!
//! ```text
//! ReadRequest / ActionRequest ──▶ ActionGate ──▶ DecisionRecord
//!                                    │             (request, decision,
//!      schema.cedarschema ───────────┤              policy ids, reasons)
//!      shipped *.cedar (per phase) ──┤
//!      configured extra policies ────┘  (validated strictly at load)
//! ```
//!
//! Why Cedar and not an `if` in the agent: the decision must not depend on
//! anything the agent (or text it read) can influence, must be readable and
//! extendable by operators, and must say which rule decided. Cedar gives
//! deny by default, forbid-beats-permit, a schema the policies are checked
//! against before use, and the ids of the determining policies.
//!
//! The phase capabilities (`phases.*` in warden.yaml) and the namespace
//! lists are rendered into entity attributes per request, so the shipped
//! policies stay static text.
//!
//! Cedar answers allow or deny; the four outcomes come from asking up to
//! three questions in order, each its own Cedar action:
//! `execute` (may it run without a person?) → `propose` (may an operator
//! approve it?) → `escalate` (may a person take it over?). The first
//! permitted one decides: Allowed, NeedsApproval or Escalated; none
//! permitted means Denied.

mod gate;
mod request;
mod sources;

pub use gate::ActionGate;
pub use request::{
    ActionRequest, ActionSpec, Decision, DecisionRecord, GateRequest, NamespacesPolicy, ReadRequest,
};
pub use sources::PolicySource;

/// The schema every policy is validated against.
pub const SCHEMA: &str = include_str!("../policies/schema.cedarschema");

/// The shipped policies, by file name.
pub const SHIPPED_POLICIES: [(&str, &str); 5] = [
    ("forbid.cedar", include_str!("../policies/forbid.cedar")),
    ("shadow.cedar", include_str!("../policies/shadow.cedar")),
    ("assist.cedar", include_str!("../policies/assist.cedar")),
    (
        "remediate.cedar",
        include_str!("../policies/remediate.cedar"),
    ),
    (
        "autonomous.cedar",
        include_str!("../policies/autonomous.cedar"),
    ),
];

/// Why the gate could not be built. Nothing is half-loaded: either every
/// policy parses and validates, or the gate is not created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The schema text does not parse (a defect in the shipped schema).
    #[error("policy schema: {0}")]
    Schema(String),
    /// A policy file does not parse.
    #[error("{origin}: cannot parse policies: {message}")]
    Parse { origin: String, message: String },
    /// A policy is a template (has `?principal` / `?resource` slots).
    #[error("{origin}: policy {policy:?} is a template; only static policies are supported")]
    Template { origin: String, policy: String },
    /// Two policies share an id (from `@id(...)`), possibly across files.
    #[error("{origin}: policy id {policy:?} is already used by {other}")]
    DuplicateId {
        origin: String,
        policy: String,
        other: String,
    },
    /// A policy does not validate against the schema in strict mode.
    #[error("{origin}: policy {policy:?} is invalid: {message}")]
    Invalid {
        origin: String,
        policy: String,
        message: String,
    },
    /// A policy directory or file could not be read.
    #[error("cannot read policies from {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// Phase capabilities or namespaces the gate cannot render.
    #[error("gate configuration: {0}")]
    Config(String),
}
