//! Evidence engines: pure functions from telemetry to findings.
//!
//! Each engine answers one question a responder would ask and knows
//! nothing about hypotheses or reasoning; the reasoner combines them. They
//! take plain records and return plain results, so they are tested on
//! small synthetic data without any I/O.

pub mod anomaly;
pub mod changes;
pub mod flows;
pub mod stats;
pub mod templates;
pub mod topology;
