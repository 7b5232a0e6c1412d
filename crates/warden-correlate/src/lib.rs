//! From alert payloads to incidents.
//!
//! `payload` turns the bytes a sender POSTs into [`warden_core::Alert`]s,
//! refusing anything malformed with a message that names the problem.
//! `correlator` deduplicates alerts by fingerprint and groups them into
//! incidents by event time, shared labels and topology. Both are pure: the
//! control plane owns the I/O.

pub mod correlator;
pub mod payload;

pub use correlator::{CorrelationConfig, Correlator, IngestOutcome};
pub use payload::{GenericIncident, PayloadError, parse_alertmanager, parse_generic_incident};
