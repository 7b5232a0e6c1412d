use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::alert::Domain;
use crate::telemetry::{
    ChangeRecord, FlowRecord, LogLine, SecurityEvent, Series, TimeRange, TopologyGraph,
};

/// A read-only question to a data source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Query {
    /// Series whose name equals `metric` (any when `None`) and whose labels
    /// include every pair in `labels`.
    Metrics {
        metric: Option<String>,
        #[serde(default)]
        labels: std::collections::BTreeMap<String, String>,
        range: TimeRange,
    },
    /// Log lines of `service` (all when `None`), optionally at or above a
    /// level, optionally containing `contains`.
    Logs {
        service: Option<String>,
        min_level: Option<String>,
        contains: Option<String>,
        range: TimeRange,
        limit: usize,
    },
    Changes {
        range: TimeRange,
    },
    Flows {
        service: Option<String>,
        range: TimeRange,
    },
    SecurityEvents {
        range: TimeRange,
    },
    Topology,
}

impl Query {
    /// A one-line rendering used to cite the query in evidence.
    pub fn describe(&self) -> String {
        match serde_json::to_string(self) {
            Ok(s) => s,
            Err(_) => format!("{self:?}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "items", rename_all = "snake_case")]
pub enum QueryResult {
    Metrics(Vec<Series>),
    Logs(Vec<LogLine>),
    Changes(Vec<ChangeRecord>),
    Flows(Vec<FlowRecord>),
    SecurityEvents(Vec<SecurityEvent>),
    Topology(TopologyGraph),
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The source does not answer this kind of query.
    #[error("{source_name} does not support {query_kind} queries")]
    Unsupported {
        source_name: String,
        query_kind: &'static str,
    },
    /// The source could not be reached or read; becomes evidence of
    /// unavailability, never a crash.
    #[error("{source_name} unavailable: {detail}")]
    Unavailable { source_name: String, detail: String },
    /// The source answered with something it should not have.
    #[error("{source_name} returned malformed data: {detail}")]
    Malformed { source_name: String, detail: String },
}

/// A read-only connector to one or more domains' telemetry.
#[async_trait]
pub trait DataSource: Send + Sync {
    fn name(&self) -> &str;
    fn domains(&self) -> Vec<Domain>;
    async fn query(&self, query: &Query) -> Result<QueryResult, DataError>;
}
