//! A telemetry bundle on disk as a read-only [`DataSource`].
//!
//! A bundle is a directory of plain files (`docs/telemetry-bundle.md`):
//! what a demo ships, what an offline replay of a real incident exports, and
//! what the evaluation harness feeds the agent. Files are streamed line by
//! line on every query rather than loaded once, because bundles can be
//! larger than the job's memory limit while each answer is small; the work
//! runs on tokio's blocking pool so a large file never stalls the loop.
//!
//! Every file but the manifest is optional: a missing file is an empty
//! answer, not an error, so a bundle can carry only the domains it has. A
//! malformed line is an error naming the file and line, because silently
//! skipping data would make the agent's conclusions depend on what it did
//! not see.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use warden_core::Domain;
use warden_core::ports::{DataError, DataSource, Query, QueryResult};
use warden_core::telemetry::{
    BundleManifest, ChangeRecord, FlowRecord, LogLine, SecurityEvent, Series, TimeRange,
    TopologyGraph,
};

/// Log levels in increasing severity; a line's level must be one of them.
pub const LOG_LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

/// The rank of a level in [`LOG_LEVELS`] (case-insensitive).
pub fn level_rank(level: &str) -> Option<usize> {
    LOG_LEVELS
        .iter()
        .position(|l| l.eq_ignore_ascii_case(level))
}

/// A telemetry bundle directory.
#[derive(Debug, Clone)]
pub struct BundleSource {
    name: String,
    root: PathBuf,
    manifest: BundleManifest,
    domains: Vec<Domain>,
}

impl BundleSource {
    /// Opens the bundle at `root`, reading its manifest.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, DataError> {
        BundleSource::open_named("bundle", root)
    }

    /// Opens a bundle under a source name of the caller's choosing (to tell
    /// several bundles apart).
    pub fn open_named(
        name: impl Into<String>,
        root: impl Into<PathBuf>,
    ) -> Result<Self, DataError> {
        let name = name.into();
        let root = root.into();
        let meta = std::fs::metadata(&root).map_err(|e| DataError::Unavailable {
            source_name: name.clone(),
            detail: format!("{}: {e}", root.display()),
        })?;
        if !meta.is_dir() {
            return Err(DataError::Unavailable {
                source_name: name,
                detail: format!("{} is not a directory", root.display()),
            });
        }
        let reader = Reader {
            name: &name,
            root: &root,
        };
        let manifest: BundleManifest =
            reader
                .read_json("manifest.json")?
                .ok_or_else(|| DataError::Unavailable {
                    source_name: name.clone(),
                    detail: format!("{} has no manifest.json", root.display()),
                })?;
        let topology: TopologyGraph = reader.read_json("topology.json")?.unwrap_or_default();
        let mut domains: Vec<Domain> = topology
            .nodes
            .iter()
            .map(|n| Domain::new(n.domain.to_ascii_lowercase()))
            .collect();
        if root.join("network/flows.jsonl").is_file() {
            domains.push(Domain::new("network"));
        }
        if root.join("security/events.jsonl").is_file() {
            domains.push(Domain::new("security"));
        }
        domains.sort();
        domains.dedup();
        Ok(BundleSource {
            name,
            root,
            manifest,
            domains,
        })
    }

    pub fn manifest(&self) -> &BundleManifest {
        &self.manifest
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Answers a query synchronously (the async port runs this on the
    /// blocking pool).
    pub fn query_blocking(&self, query: &Query) -> Result<QueryResult, DataError> {
        let reader = Reader {
            name: &self.name,
            root: &self.root,
        };
        if !self.root.is_dir() {
            return Err(DataError::Unavailable {
                source_name: self.name.clone(),
                detail: format!("{} is no longer readable", self.root.display()),
            });
        }
        match query {
            Query::Metrics {
                metric,
                labels,
                range,
            } => reader
                .metrics(metric.as_deref(), labels, *range)
                .map(QueryResult::Metrics),
            Query::Logs {
                service,
                min_level,
                contains,
                range,
                limit,
            } => {
                let filter = LogFilter {
                    min_rank: match min_level {
                        Some(level) => {
                            Some(level_rank(level).ok_or_else(|| DataError::Malformed {
                                source_name: self.name.clone(),
                                detail: format!(
                                    "unknown log level {level:?} in query; expected one of {}",
                                    LOG_LEVELS.join(", ")
                                ),
                            })?)
                        }
                        None => None,
                    },
                    contains: contains.as_deref(),
                    range: *range,
                    limit: *limit,
                };
                reader
                    .logs(service.as_deref(), &filter)
                    .map(QueryResult::Logs)
            }
            Query::Changes { range } => reader
                .jsonl::<ChangeRecord>("changes.jsonl", |c| range.contains(c.ts))
                .map(QueryResult::Changes),
            Query::Flows { service, range } => reader
                .jsonl::<FlowRecord>("network/flows.jsonl", |f| {
                    range.contains(f.ts)
                        && service
                            .as_deref()
                            .is_none_or(|s| f.src_service == s || f.dst_service == s)
                })
                .map(QueryResult::Flows),
            Query::SecurityEvents { range } => reader
                .jsonl::<SecurityEvent>("security/events.jsonl", |e| range.contains(e.ts))
                .map(QueryResult::SecurityEvents),
            Query::Topology => Ok(QueryResult::Topology(
                reader.read_json("topology.json")?.unwrap_or_default(),
            )),
        }
    }
}

#[async_trait]
impl DataSource for BundleSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn domains(&self) -> Vec<Domain> {
        self.domains.clone()
    }

    async fn query(&self, query: &Query) -> Result<QueryResult, DataError> {
        let this = self.clone();
        let query = query.clone();
        tokio::task::spawn_blocking(move || this.query_blocking(&query))
            .await
            .map_err(|e| DataError::Unavailable {
                source_name: self.name.clone(),
                detail: format!("query task failed: {e}"),
            })?
    }
}

struct LogFilter<'a> {
    min_rank: Option<usize>,
    contains: Option<&'a str>,
    range: TimeRange,
    limit: usize,
}

/// File access relative to the bundle root, with errors that name the file.
struct Reader<'a> {
    name: &'a str,
    root: &'a Path,
}

impl Reader<'_> {
    fn unavailable(&self, rel: &str, e: &std::io::Error) -> DataError {
        DataError::Unavailable {
            source_name: self.name.to_string(),
            detail: format!("{rel}: {e}"),
        }
    }

    fn malformed(&self, rel: &str, line: Option<u64>, detail: impl std::fmt::Display) -> DataError {
        let at = match line {
            Some(n) => format!("{rel} line {n}"),
            None => rel.to_string(),
        };
        DataError::Malformed {
            source_name: self.name.to_string(),
            detail: format!("{at}: {detail}"),
        }
    }

    /// Opens `rel`; `None` when it does not exist.
    fn open(&self, rel: &str) -> Result<Option<BufReader<File>>, DataError> {
        match File::open(self.root.join(rel)) {
            Ok(f) => Ok(Some(BufReader::new(f))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.unavailable(rel, &e)),
        }
    }

    fn read_json<T: DeserializeOwned>(&self, rel: &str) -> Result<Option<T>, DataError> {
        let Some(reader) = self.open(rel)? else {
            return Ok(None);
        };
        serde_json::from_reader(reader)
            .map(Some)
            .map_err(|e| self.malformed(rel, None, e))
    }

    /// Streams `rel` line by line, calling `each(line_number, text)` for
    /// every non-blank line until it returns `false`.
    fn for_each_line(
        &self,
        rel: &str,
        mut each: impl FnMut(u64, &str) -> Result<bool, DataError>,
    ) -> Result<(), DataError> {
        let Some(mut reader) = self.open(rel)? else {
            return Ok(());
        };
        let mut buf = String::new();
        let mut number = 0u64;
        loop {
            buf.clear();
            let read = reader
                .read_line(&mut buf)
                .map_err(|e| self.malformed(rel, Some(number + 1), e))?;
            if read == 0 {
                return Ok(());
            }
            number += 1;
            let text = buf.trim_end_matches(['\n', '\r']);
            if text.trim().is_empty() {
                continue;
            }
            if !each(number, text)? {
                return Ok(());
            }
        }
    }

    fn jsonl<T: DeserializeOwned>(
        &self,
        rel: &str,
        keep: impl Fn(&T) -> bool,
    ) -> Result<Vec<T>, DataError> {
        let mut out = Vec::new();
        self.for_each_line(rel, |n, text| {
            let item: T =
                serde_json::from_str(text).map_err(|e| self.malformed(rel, Some(n), e))?;
            if keep(&item) {
                out.push(item);
            }
            Ok(true)
        })?;
        Ok(out)
    }

    /// Files in `dir` with `extension`, sorted by name; empty when `dir`
    /// does not exist.
    fn files_in(&self, dir: &str, extension: &str) -> Result<Vec<String>, DataError> {
        let entries = match std::fs::read_dir(self.root.join(dir)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.unavailable(dir, &e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| self.unavailable(dir, &e))?;
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                continue;
            };
            let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
            if is_file && file_name.ends_with(extension) && !file_name.starts_with('.') {
                names.push(file_name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    fn metrics(
        &self,
        metric: Option<&str>,
        labels: &BTreeMap<String, String>,
        range: TimeRange,
    ) -> Result<Vec<Series>, DataError> {
        let (start, end) = (range.start.timestamp(), range.end.timestamp());
        let mut out = Vec::new();
        for file in self.files_in("metrics", ".jsonl")? {
            let rel = format!("metrics/{file}");
            self.for_each_line(&rel, |n, text| {
                let mut series: Series =
                    serde_json::from_str(text).map_err(|e| self.malformed(&rel, Some(n), e))?;
                let wanted = metric.is_none_or(|m| series.metric == m)
                    && labels
                        .iter()
                        .all(|(k, v)| series.labels.get(k).is_some_and(|have| have == v));
                if wanted {
                    series.points.retain(|(t, _)| *t >= start && *t < end);
                    if !series.points.is_empty() {
                        out.push(series);
                    }
                }
                Ok(true)
            })?;
        }
        Ok(out)
    }

    fn logs(
        &self,
        service: Option<&str>,
        filter: &LogFilter<'_>,
    ) -> Result<Vec<LogLine>, DataError> {
        if filter.limit == 0 {
            return Ok(Vec::new());
        }
        // Services are matched against the files that exist, never joined
        // into a path, so a query cannot name a file outside `logs/`.
        let files: Vec<String> = self
            .files_in("logs", ".log")?
            .into_iter()
            .filter(|f| service.is_none_or(|s| f.strip_suffix(".log") == Some(s)))
            .collect();
        let mut out: Vec<LogLine> = Vec::new();
        for file in files {
            let service_name = file.trim_end_matches(".log").to_string();
            let rel = format!("logs/{file}");
            let mut taken = 0usize;
            self.for_each_line(&rel, |n, text| {
                let line = parse_log_line(&service_name, n, text)
                    .map_err(|detail| self.malformed(&rel, Some(n), detail))?;
                let keep = filter.range.contains(line.ts)
                    && filter
                        .min_rank
                        .is_none_or(|min| level_rank(&line.level).is_some_and(|r| r >= min))
                    && filter.contains.is_none_or(|c| line.message.contains(c));
                if keep {
                    out.push(line);
                    taken += 1;
                }
                // Each file contributes at most `limit` lines; the merge
                // below keeps the earliest `limit` overall.
                Ok(taken < filter.limit)
            })?;
        }
        out.sort_by(|a, b| (a.ts, &a.service, a.line).cmp(&(b.ts, &b.service, b.line)));
        out.truncate(filter.limit);
        Ok(out)
    }
}

/// Parses `<RFC 3339 timestamp> <LEVEL> <message>`.
pub fn parse_log_line(service: &str, line: u64, text: &str) -> Result<LogLine, String> {
    let mut parts = text.splitn(3, ' ');
    let ts_text = parts.next().unwrap_or_default();
    let level = parts
        .next()
        .ok_or("expected `<timestamp> <LEVEL> <message>`")?;
    let message = parts.next().unwrap_or_default();
    let ts: DateTime<Utc> = DateTime::parse_from_rfc3339(ts_text)
        .map_err(|e| format!("bad timestamp {ts_text:?}: {e}"))?
        .with_timezone(&Utc);
    if !LOG_LEVELS.contains(&level) {
        return Err(format!(
            "bad level {level:?}; expected one of {}",
            LOG_LEVELS.join(", ")
        ));
    }
    Ok(LogLine {
        service: service.to_string(),
        ts,
        level: level.to_string(),
        message: message.to_string(),
        line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_line_splits_into_timestamp_level_and_message() {
        let l =
            parse_log_line("api", 3, "2024-05-01T10:00:00Z ERROR pool exhausted: 50/50").unwrap();
        assert_eq!(l.level, "ERROR");
        assert_eq!(l.message, "pool exhausted: 50/50");
        assert_eq!(l.line, 3);
        assert_eq!(l.service, "api");
    }

    #[test]
    fn a_log_line_with_an_unknown_level_or_time_is_refused() {
        assert!(parse_log_line("a", 1, "2024-05-01T10:00:00Z NOTICE hi").is_err());
        assert!(parse_log_line("a", 1, "yesterday ERROR hi").is_err());
        assert!(parse_log_line("a", 1, "2024-05-01T10:00:00Z").is_err());
    }

    #[test]
    fn levels_rank_in_severity_order() {
        assert!(level_rank("warn") < level_rank("ERROR"));
        assert_eq!(level_rank("NOTICE"), None);
    }
}
