//! Loki HTTP API: LogQL range queries, streams flattened to log lines.
//!
//! The port's [`Query::Logs`] becomes `/loki/api/v1/query_range` with
//!
//! ```text
//! {<service_label>="<service>", <selector>} |= "<contains>"
//! ```
//!
//! (`=~".+"` for every service), `direction=forward`, and the range in
//! nanoseconds. Each stream entry becomes a [`LogLine`] whose service is the
//! stream's service label and whose level is the stream's `level`,
//! `detected_level` or `severity` label, else the one written in the line
//! ([`crate::levels`]). `min_level` is applied here, after the answer, since
//! the level is often not a label Loki could filter on.
//!
//! Answers are read page by page (`page_limit` lines each, continuing from
//! the last timestamp and dropping the entries already seen there) until the
//! query's `limit`. A page over the size limit keeps its complete entries,
//! ends the paging, and a final line from the source itself (service = the
//! source name, level `WARN`) says the answer was cut and where.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use warden_core::Domain;
use warden_core::agent_input::LokiSourceConfig;
use warden_core::ports::{DataError, DataSource, Query, QueryResult};
use warden_core::telemetry::{LogLine, TimeRange};

use crate::credentials::Credentials;
use crate::guard::{AllowAll, ReadGuard, ReadRequest};
use crate::http::{self, RetryPolicy, malformed, unavailable};
use crate::prometheus::{check_selector, kind_of, quote, valid_label_name};
use crate::{ConnectorError, json_cut, levels};

/// Depth of a stream's `values` array in the answer: cutting there keeps
/// whole entries.
const ENTRY_DEPTH: usize = 5;

/// Stream labels that carry a line's level.
const LEVEL_LABELS: [&str; 3] = ["level", "detected_level", "severity"];

/// One stream entry, in the answer's order.
#[derive(Debug, Clone, PartialEq)]
pub struct LokiEntry {
    pub labels: BTreeMap<String, String>,
    pub ts: DateTime<Utc>,
    pub line: String,
}

/// What a LogQL query returned.
#[derive(Debug, Clone, PartialEq)]
pub struct LokiAnswer {
    /// In time order.
    pub entries: Vec<LokiEntry>,
    /// The answer was cut at the size limit.
    pub truncated: bool,
    /// Requests it took.
    pub pages: u32,
}

fn success() -> String {
    "success".to_string()
}

#[derive(Deserialize)]
struct Envelope {
    /// Absent only from a cut answer whose `status` followed `data`; the
    /// HTTP status was 200 then.
    #[serde(default = "success")]
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    /// Missing only when a cut answer lost it (it follows `result`).
    #[serde(rename = "resultType", default = "streams")]
    result_type: String,
    #[serde(default)]
    result: Vec<Stream>,
}

fn streams() -> String {
    "streams".to_string()
}

#[derive(Deserialize)]
struct Stream {
    #[serde(default)]
    stream: BTreeMap<String, String>,
    /// `[ns, line]`, or `[ns, line, structured metadata]` in Loki 3.
    #[serde(default)]
    values: Vec<Vec<serde_json::Value>>,
}

/// A Loki server as a read-only data source.
pub struct LokiSource {
    name: String,
    base: reqwest::Url,
    domains: Vec<Domain>,
    client: reqwest::Client,
    credentials: Credentials,
    tenant: Option<String>,
    policy: RetryPolicy,
    service_label: String,
    selector: Option<String>,
    page_limit: usize,
    guard: Arc<dyn ReadGuard>,
}

impl std::fmt::Debug for LokiSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LokiSource")
            .field("name", &self.name)
            .field("base", &self.base.as_str())
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

fn nanos(t: DateTime<Utc>) -> i128 {
    i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos())
}

fn from_nanos(ns: i128) -> Option<DateTime<Utc>> {
    let secs = i64::try_from(ns.div_euclid(1_000_000_000)).ok()?;
    let sub = u32::try_from(ns.rem_euclid(1_000_000_000)).ok()?;
    DateTime::from_timestamp(secs, sub)
}

impl LokiSource {
    pub fn new(
        config: &LokiSourceConfig,
        credentials: Credentials,
    ) -> Result<Self, ConnectorError> {
        let name = config.name.clone().unwrap_or_else(|| "loki".to_string());
        let base = http::base_url(&name, &config.url)?;
        if !valid_label_name(&config.service_label) {
            return Err(ConnectorError::Config {
                source_name: name,
                field: "service_label",
                detail: format!("{:?} is not a label name", config.service_label),
            });
        }
        let selector = check_selector(&name, config.selector.as_deref())?;
        Ok(LokiSource {
            client: http::client(&name)?,
            base,
            domains: config.domains.iter().map(Domain::new).collect(),
            credentials,
            tenant: config.tenant.clone(),
            policy: RetryPolicy::new(
                config.timeout_seconds,
                config.retries,
                config.max_response_bytes,
            ),
            service_label: config.service_label.clone(),
            selector,
            page_limit: config.page_limit.max(1),
            guard: Arc::new(AllowAll),
            name,
        })
    }

    pub fn with_guard(mut self, guard: Arc<dyn ReadGuard>) -> Self {
        self.guard = guard;
        self
    }

    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The LogQL a logs query is sent as (see the module docs).
    pub fn logql(&self, service: Option<&str>, contains: Option<&str>) -> String {
        let mut matchers = vec![match service {
            Some(s) => format!("{}={}", self.service_label, quote(s)),
            None => format!("{}=~\".+\"", self.service_label),
        }];
        if let Some(extra) = &self.selector {
            matchers.push(extra.clone());
        }
        let mut q = format!("{{{}}}", matchers.join(","));
        if let Some(c) = contains.filter(|c| !c.is_empty()) {
            q.push_str(" |= ");
            q.push_str(&quote(c));
        }
        q
    }

    /// Runs `logql` over `range`, reading at most `limit` entries.
    pub async fn query_range(
        &self,
        logql: &str,
        range: TimeRange,
        limit: usize,
    ) -> Result<LokiAnswer, DataError> {
        let mut answer = LokiAnswer {
            entries: Vec::new(),
            truncated: false,
            pages: 0,
        };
        let end = nanos(range.end);
        let mut start = nanos(range.start);
        // Entries at the page boundary timestamp already kept.
        let mut at_boundary: HashSet<(BTreeMap<String, String>, String)> = HashSet::new();
        while answer.entries.len() < limit {
            let want = self.page_limit.min(limit - answer.entries.len());
            // Ask for the boundary entries again, plus a full page.
            let ask = want + at_boundary.len();
            let (page, truncated) = self.page(logql, start, end, ask).await?;
            answer.pages += 1;
            let got = page.len();
            let mut last_ts = None;
            for entry in page {
                let ns = nanos(entry.ts);
                if ns == start && at_boundary.contains(&(entry.labels.clone(), entry.line.clone()))
                {
                    continue;
                }
                if answer.entries.len() >= limit {
                    break;
                }
                if last_ts != Some(ns) {
                    if last_ts.is_some() {
                        at_boundary.clear();
                    }
                    last_ts = Some(ns);
                }
                at_boundary.insert((entry.labels.clone(), entry.line.clone()));
                answer.entries.push(entry);
            }
            if truncated {
                answer.truncated = true;
                break;
            }
            match last_ts {
                // A short page is the last one.
                Some(ns) if got >= ask => start = ns,
                _ => break,
            }
        }
        answer.entries.sort_by_key(|e| e.ts);
        Ok(answer)
    }

    async fn page(
        &self,
        logql: &str,
        start: i128,
        end: i128,
        limit: usize,
    ) -> Result<(Vec<LokiEntry>, bool), DataError> {
        self.guard
            .check(&ReadRequest {
                source: self.name.clone(),
                connector: "loki",
                domains: self.domains.clone(),
                kind: "logql",
                namespace: None,
                target: logql.to_string(),
            })
            .map_err(|d| unavailable(&self.name, d.to_string()))?;
        let params = [
            ("query", logql.to_string()),
            ("start", start.to_string()),
            ("end", end.to_string()),
            ("limit", limit.to_string()),
            ("direction", "forward".to_string()),
        ];
        let url = http::endpoint(&self.name, &self.base, "/loki/api/v1/query_range", &params)?;
        let headers: Vec<(&'static str, String)> = self
            .tenant
            .iter()
            .map(|t| ("X-Scope-OrgID", t.clone()))
            .collect();
        let body = http::get(
            &self.client,
            &self.name,
            url,
            &self.credentials,
            &headers,
            &self.policy,
        )
        .await?;
        let bytes = if body.truncated {
            json_cut::close_truncated(&body.bytes, ENTRY_DEPTH).ok_or_else(|| {
                unavailable(
                    &self.name,
                    format!(
                        "the answer exceeds {} bytes before one complete entry; narrow the query",
                        self.policy.max_response_bytes
                    ),
                )
            })?
        } else {
            body.bytes
        };
        Ok((self.parse(&bytes)?, body.truncated))
    }

    fn parse(&self, bytes: &[u8]) -> Result<Vec<LokiEntry>, DataError> {
        let envelope: Envelope = serde_json::from_slice(bytes)
            .map_err(|e| malformed(&self.name, format!("not a Loki answer: {e}")))?;
        if envelope.status != "success" {
            return Err(unavailable(
                &self.name,
                envelope.error.unwrap_or_else(|| envelope.status.clone()),
            ));
        }
        let data = envelope
            .data
            .ok_or_else(|| malformed(&self.name, "a successful answer without data"))?;
        if data.result_type != "streams" {
            return Err(malformed(
                &self.name,
                format!(
                    "expected streams, got {:?} (a metric query?)",
                    data.result_type
                ),
            ));
        }
        let mut out = Vec::new();
        for stream in data.result {
            for value in stream.values {
                let ts = value
                    .first()
                    .and_then(|v| v.as_str())
                    .and_then(|s| s.parse::<i128>().ok())
                    .and_then(from_nanos);
                let line = value.get(1).and_then(|v| v.as_str());
                let (Some(ts), Some(line)) = (ts, line) else {
                    return Err(malformed(
                        &self.name,
                        "a stream entry is not [\"<nanoseconds>\", \"<line>\"]",
                    ));
                };
                out.push(LokiEntry {
                    labels: stream.stream.clone(),
                    ts,
                    line: line.to_string(),
                });
            }
        }
        out.sort_by_key(|e| e.ts);
        Ok(out)
    }

    fn log_line(&self, entry: LokiEntry, n: u64) -> LogLine {
        let level = LEVEL_LABELS
            .iter()
            .find_map(|l| entry.labels.get(*l).and_then(|v| levels::normalise(v)))
            .unwrap_or_else(|| levels::detect(&entry.line));
        LogLine {
            service: entry
                .labels
                .get(&self.service_label)
                .cloned()
                .unwrap_or_else(|| "unknown".to_string()),
            ts: entry.ts,
            level: level.to_string(),
            message: entry.line,
            line: n,
        }
    }
}

#[async_trait]
impl DataSource for LokiSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn domains(&self) -> Vec<Domain> {
        self.domains.clone()
    }

    async fn query(&self, query: &Query) -> Result<QueryResult, DataError> {
        let Query::Logs {
            service,
            min_level,
            contains,
            range,
            limit,
        } = query
        else {
            return Err(DataError::Unsupported {
                source_name: self.name.clone(),
                query_kind: kind_of(query),
            });
        };
        let logql = self.logql(service.as_deref(), contains.as_deref());
        let answer = self.query_range(&logql, *range, *limit).await?;
        let floor = min_level.as_deref().map_or(0, crate::levels::rank);
        let last_ts = answer.entries.last().map(|e| e.ts);
        let kept = answer.entries.len();
        let mut lines: Vec<LogLine> = answer
            .entries
            .into_iter()
            .enumerate()
            .map(|(i, e)| self.log_line(e, i as u64 + 1))
            .filter(|l| crate::levels::rank(&l.level) >= floor)
            .collect();
        if answer.truncated {
            lines.push(LogLine {
                service: self.name.clone(),
                ts: last_ts.unwrap_or(range.start),
                level: "WARN".to_string(),
                message: format!(
                    "answer cut at {} bytes after {kept} lines (page {}); later lines of this query were not read",
                    self.policy.max_response_bytes, answer.pages
                ),
                line: kept as u64 + 1,
            });
        }
        Ok(QueryResult::Logs(lines))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_queries_become_logql() {
        let config: LokiSourceConfig = serde_json::from_value(serde_json::json!({
            "url": "http://127.0.0.1:9", "service_label": "app", "selector": "namespace=\"prod\""
        }))
        .unwrap();
        let s = LokiSource::new(&config, Credentials::None).unwrap();
        assert_eq!(
            s.logql(Some("api"), Some("say \"hi\"")),
            r#"{app="api",namespace="prod"} |= "say \"hi\"""#
        );
        assert_eq!(s.logql(None, None), r#"{app=~".+",namespace="prod"}"#);
    }

    #[test]
    fn nanosecond_timestamps_round_trip() {
        let t = from_nanos(1_700_000_000_123_456_789).unwrap();
        assert_eq!(nanos(t), 1_700_000_000_123_456_789);
    }
}
