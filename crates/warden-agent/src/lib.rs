//! warden's investigation agent.
//!
//! One investigation runs as one job; inside it this crate does the work:
//!
//! ```text
//! stdin (JobInput) ──▶ sources (bundle, ...) ──▶ investigate() ──▶ Report ──▶ POST report_url
//!                                  ▲                   │
//!                                  └── queries ◀── Reasoner (built-in or LLM)
//! ```
//!
//! - [`bundle`]: a telemetry bundle directory as a read-only data source.
//! - [`connectors`]: the live sources (Prometheus, Loki, Kubernetes; crate
//!   `warden-connectors`) built from the job input and its domain secrets.
//! - [`engines`]: pure evidence engines (metric anomalies, log templates,
//!   flows, changes, topology propagation).
//! - [`builtin`]: the offline reasoner built on the engines.
//! - [`investigate`]: the loop, which owns every query and the budget.
//! - [`gate`]: the action gate every read passes, at the loop and in the
//!   connectors.
//! - [`job`]: the entrypoint `warden agent run` calls.
//! - [`events`]: the JSON-lines log on standard output.

pub mod bootstrap;
pub mod briefing;
pub mod builtin;
pub mod bundle;
pub mod connectors;
pub mod engines;
pub mod events;
pub mod gate;
pub mod investigate;
pub mod job;
pub mod llm;
pub mod secrets;
pub mod usage;

pub use builtin::{BuiltinConfig, BuiltinReasoner};
pub use bundle::BundleSource;
pub use events::{CapturedLog, EventLog};
pub use investigate::{LoopConfig, investigate, investigate_with};
pub use job::{DeliveryPolicy, deliver, run_job, run_job_with};
