//! Trust is earned from measured outcomes and lost automatically.
//!
//! This crate holds the logic that decides a trust phase, free of I/O so
//! every rule is tested on recorded outcomes alone:
//! - outcome records and how they are scored ([`outcome`]);
//! - the promotion gates with the article's thresholds ([`gates`]);
//! - automatic demotion over a rolling window ([`demotion`]);
//! - the reviewable configuration change a promotion is ([`promotion`]);
//! - an environment's trust status ([`status`]);
//! - operator authentication by bearer token or OIDC/JWT ([`auth`]);
//! - the ports the control plane wires: [`store::TrustStore`] and
//!   [`executor::RemediationExecutor`].

pub mod auth;
pub mod config;
pub mod demotion;
pub mod executor;
pub mod gates;
pub mod outcome;
pub mod promotion;
pub mod status;
pub mod store;

pub use auth::{AuthError, Authenticator, Operator, Role};
pub use config::TrustConfig;
pub use demotion::{Demotion, evaluate_demotion};
pub use executor::{ExecutionError, ExecutionReport, ExecutionRequest, RemediationExecutor};
pub use gates::{GateEvaluation, Signoff, Tally, evaluate_gates};
pub use outcome::{
    Outcome, OutcomeRecord, RemediationResult, ReviewResult, VerdictKind, edit_size,
    score_root_cause,
};
pub use status::{TrustStatus, status};
pub use store::{ActionRecord, ActionState, PhaseState, TrustStore};
