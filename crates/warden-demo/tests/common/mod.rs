//! Shared fixtures: one fixed scenario, and a bundle reader that parses
//! every file back into the core types (failing loudly on any bad line).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use warden_core::telemetry::{
    BundleManifest, ChangeRecord, FlowRecord, LogLine, SecurityEvent, Series, TopologyGraph,
};
use warden_demo::Scenario;

pub const SEED: u64 = 42;

pub fn base() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-03-04T02:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub fn scenario() -> Scenario {
    Scenario::firewall_cascade(base(), SEED)
}

pub fn secs(s: i64) -> DateTime<Utc> {
    base() + chrono::TimeDelta::seconds(s)
}

pub struct Bundle {
    pub manifest: BundleManifest,
    pub topology: TopologyGraph,
    /// File name → series.
    pub metrics: BTreeMap<String, Vec<Series>>,
    /// Service → lines.
    pub logs: BTreeMap<String, Vec<LogLine>>,
    pub changes: Vec<ChangeRecord>,
    pub flows: Vec<FlowRecord>,
    pub events: Vec<SecurityEvent>,
}

impl Bundle {
    pub fn series(&self, metric: &str, labels: &[(&str, &str)]) -> Vec<&Series> {
        self.metrics
            .values()
            .flatten()
            .filter(|s| s.metric == metric)
            .filter(|s| labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
            .collect()
    }

    pub fn one_series(&self, metric: &str, labels: &[(&str, &str)]) -> &Series {
        let found = self.series(metric, labels);
        assert_eq!(
            found.len(),
            1,
            "{metric} {labels:?}: {} series",
            found.len()
        );
        found[0]
    }

    pub fn log(&self, service: &str) -> &[LogLine] {
        self.logs
            .get(service)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

pub fn read_bundle(dir: &Path) -> Bundle {
    let manifest =
        serde_json::from_str(&fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let topology =
        serde_json::from_str(&fs::read_to_string(dir.join("topology.json")).unwrap()).unwrap();
    let mut metrics = BTreeMap::new();
    for path in files_in(&dir.join("metrics")) {
        assert_eq!(path.extension().unwrap(), "jsonl");
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        metrics.insert(name, jsonl(&path));
    }
    let mut logs = BTreeMap::new();
    for path in files_in(&dir.join("logs")) {
        assert_eq!(path.extension().unwrap(), "log");
        let service = path.file_stem().unwrap().to_string_lossy().to_string();
        let lines = fs::read_to_string(&path)
            .unwrap()
            .lines()
            .enumerate()
            .map(|(i, line)| parse_log_line(&service, i as u64 + 1, line))
            .collect();
        logs.insert(service, lines);
    }
    Bundle {
        manifest,
        topology,
        metrics,
        logs,
        changes: jsonl(&dir.join("changes.jsonl")),
        flows: jsonl(&dir.join("network/flows.jsonl")),
        events: jsonl(&dir.join("security/events.jsonl")),
    }
}

/// `<RFC 3339> <LEVEL> <message>`.
pub fn parse_log_line(service: &str, line: u64, text: &str) -> LogLine {
    let mut parts = text.splitn(3, ' ');
    let (ts, level, message) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    LogLine {
        service: service.to_string(),
        ts: DateTime::parse_from_rfc3339(ts)
            .unwrap_or_else(|e| panic!("{service}:{line}: {e}: {text}"))
            .with_timezone(&Utc),
        level: level.to_string(),
        message: message.to_string(),
        line,
    }
}

fn jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> Vec<T> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1))
        })
        .collect()
}

pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// Every file under `dir`, relative path → bytes.
pub fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for path in files_in(&d) {
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(
                    path.strip_prefix(dir).unwrap().to_path_buf(),
                    fs::read(&path).unwrap(),
                );
            }
        }
    }
    out
}
