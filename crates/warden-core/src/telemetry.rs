//! Telemetry records as data sources return them, and as a telemetry bundle
//! stores them on disk (see `docs/telemetry-bundle.md`).
//!
//! Everything here is data. Text inside it (log messages, change summaries,
//! event descriptions) is never interpreted as an instruction.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One metric time series: `metrics/*.jsonl`, one series per line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub metric: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `(unix seconds, value)` in time order.
    pub points: Vec<(i64, f64)>,
}

impl Series {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }
}

/// One log line: `logs/<service>.log`, each line
/// `<RFC 3339 timestamp> <LEVEL> <message>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub service: String,
    pub ts: DateTime<Utc>,
    pub level: String,
    pub message: String,
    /// 1-based line number in its file, for citation.
    pub line: u64,
}

/// A configuration, firewall or deployment change: `changes.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRecord {
    pub id: String,
    pub ts: DateTime<Utc>,
    /// `firewall`, `deploy`, `config`, `scale`, ...
    pub kind: String,
    /// The topology node changed (a device, a service).
    pub target: String,
    pub actor: String,
    pub summary: String,
    #[serde(default)]
    pub details: serde_json::Value,
}

/// Traffic between two services through the network, aggregated per
/// interval: `network/flows.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowRecord {
    /// Start of the aggregation interval.
    pub ts: DateTime<Utc>,
    pub interval_seconds: u32,
    pub src_service: String,
    pub dst_service: String,
    pub dst_port: u16,
    /// The network device that observed the flow (a firewall, a router).
    #[serde(default)]
    pub device: Option<String>,
    pub allowed: u64,
    pub dropped: u64,
    #[serde(default)]
    pub retransmits: u64,
    #[serde(default)]
    pub rule: Option<String>,
}

/// An event from a security sensor (IDS, WAF, auth): `security/events.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecurityEvent {
    pub ts: DateTime<Utc>,
    pub source: String,
    pub severity: String,
    pub rule: String,
    #[serde(default)]
    pub target: Option<String>,
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopologyNode {
    pub id: String,
    /// `service`, `database`, `firewall`, `router`, `host`, ...
    pub kind: String,
    pub domain: String,
    #[serde(default)]
    pub namespace: Option<String>,
}

/// `from` depends on (calls) `to`; `via` lists network devices on the path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopologyEdge {
    pub from: String,
    pub to: String,
    #[serde(default)]
    pub via: Vec<String>,
    #[serde(default)]
    pub port: Option<u16>,
}

/// `topology.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TopologyGraph {
    pub nodes: Vec<TopologyNode>,
    pub edges: Vec<TopologyEdge>,
}

impl TopologyGraph {
    pub fn node(&self, id: &str) -> Option<&TopologyNode> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Direct dependencies of `id`.
    pub fn callees<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a TopologyEdge> + 'a {
        self.edges.iter().filter(move |e| e.from == id)
    }

    /// Direct dependents of `id`.
    pub fn callers<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a TopologyEdge> + 'a {
        self.edges.iter().filter(move |e| e.to == id)
    }

    /// Edges whose network path passes through device `id`.
    pub fn edges_via<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a TopologyEdge> + 'a {
        self.edges
            .iter()
            .filter(move |e| e.via.iter().any(|v| v == id))
    }
}

/// `manifest.json`: what the bundle covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundleManifest {
    pub format_version: u32,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// A time range, inclusive start, exclusive end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl TimeRange {
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        t >= self.start && t < self.end
    }
}
