//! Evidence: what a data source answered, cited with the source and query
//! that produced it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alert::Domain;

/// Where a piece of evidence came from, precisely enough to re-run it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceSource {
    /// The data source (connector) name, e.g. `bundle:metrics`.
    pub source: String,
    /// The query as the source understands it (PromQL, a file filter, ...).
    pub query: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Stable within a report: `ev-<n>`.
    pub id: String,
    pub domain: Domain,
    pub cited: EvidenceSource,
    /// One sentence a responder can read.
    pub summary: String,
    /// When the observed thing happened (not when it was queried).
    pub observed_at: Option<DateTime<Utc>>,
    /// Small structured detail (numbers, matched lines); never secrets.
    #[serde(default)]
    pub detail: serde_json::Value,
}
