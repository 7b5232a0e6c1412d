//! The ports: traits the backends implement and the composition root wires.
//!
//! Every port is object-safe (`async_trait`) so the composition root can pick
//! an implementation from configuration at run time.

mod bootstrap;
mod data;
mod reasoner;
mod runtime;
mod secrets;
mod store;

pub use bootstrap::{BootstrapError, JobBootstrap};
pub use data::{DataError, DataSource, Query, QueryResult};
pub use reasoner::{
    Assessment, Bearing, Finding, Focus, Observation, PlannedQuery, ProposedHypothesis, Reasoner,
    ReasonerError, ReasoningContext, SourceInfo, broad_survey,
};
pub use runtime::{
    Adoption, JobEvent, JobEventKind, JobEvents, JobHandle, JobOutcome, JobRuntime, JobSpec,
    RuntimeError,
};
pub use secrets::{IssuedIdentity, SecretBroker, SecretError};
pub use store::{IncidentSummary, IntakeWrite, NewReport, Store, StoreError};
