//! Prometheus HTTP API: PromQL instant and range queries.
//!
//! The port's [`Query::Metrics`] becomes one range query
//! (`/api/v1/query_range`) for the selector
//!
//! ```text
//! {__name__="<metric>", <service_label>="<service>", <label>="<value>", ..., <selector>}
//! ```
//!
//! where `<metric>` is `=~".+"` when the query names none, the `service` key
//! is sent as the configured `service_label` (`job`, `app`, ...) and mapped
//! back to `service` in the answer, and `<selector>` is the configured extra
//! matchers (`namespace="prod"`). Values are escaped; label names are
//! checked. The step is the configured one, widened so that no query asks
//! for more than Prometheus's 11,000 points per series. Prometheus's range
//! end is inclusive, the port's is not: points at the end are dropped.
//!
//! An answer over the size limit keeps the complete series read so far and
//! adds a series named [`TRUNCATED_METRIC`] (no points) saying so. Other
//! query kinds are not answered by Prometheus ([`DataError::Unsupported`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use warden_core::Domain;
use warden_core::agent_input::PrometheusSourceConfig;
use warden_core::ports::{DataError, DataSource, Query, QueryResult};
use warden_core::telemetry::{Series, TimeRange};

use crate::credentials::Credentials;
use crate::guard::{AllowAll, ReadGuard, ReadRequest};
use crate::http::{self, RetryPolicy, malformed, unavailable};
use crate::{ConnectorError, json_cut};

/// Name of the marker series added to an answer cut at the size limit.
pub const TRUNCATED_METRIC: &str = "warden_response_truncated";

/// Prometheus refuses range queries of more points per series than this.
const MAX_POINTS: i64 = 11_000;

/// Depth of the `result` array in `{"data":{"result":[...]}}`: cutting there
/// keeps whole series.
const SERIES_DEPTH: usize = 3;

/// What a PromQL query returned.
#[derive(Debug, Clone, PartialEq)]
pub struct PromAnswer {
    pub series: Vec<Series>,
    /// The answer was cut at the size limit (complete series only).
    pub truncated: bool,
    /// Warnings Prometheus sent with the answer.
    pub warnings: Vec<String>,
}

/// A Prometheus server as a read-only data source.
pub struct PrometheusSource {
    name: String,
    base: reqwest::Url,
    domains: Vec<Domain>,
    client: reqwest::Client,
    credentials: Credentials,
    policy: RetryPolicy,
    service_label: String,
    selector: Option<String>,
    step_seconds: u64,
    guard: Arc<dyn ReadGuard>,
}

impl std::fmt::Debug for PrometheusSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusSource")
            .field("name", &self.name)
            .field("base", &self.base.as_str())
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// `"..."` with PromQL string escapes.
pub(crate) fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether `name` is a valid Prometheus (and Loki) label name.
pub(crate) fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks a configured extra selector: matchers without braces.
pub(crate) fn check_selector(
    source: &str,
    selector: Option<&str>,
) -> Result<Option<String>, ConnectorError> {
    let Some(s) = selector.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if s.contains(['{', '}']) {
        return Err(ConnectorError::Config {
            source_name: source.to_string(),
            field: "selector",
            detail: "give the matchers without braces, e.g. namespace=\"prod\"".to_string(),
        });
    }
    Ok(Some(s.to_string()))
}

fn parse_value(v: &str) -> f64 {
    // Prometheus writes NaN, +Inf and -Inf as strings too.
    match v {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => v.parse().unwrap_or(f64::NAN),
    }
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
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Deserialize)]
struct Data {
    /// Missing only when a cut answer lost it (it follows `result`); a
    /// cut answer is a list of series.
    #[serde(rename = "resultType", default = "matrix")]
    result_type: String,
    result: serde_json::Value,
}

fn matrix() -> String {
    "matrix".to_string()
}

#[derive(Deserialize)]
struct Sample {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<(f64, String)>,
    #[serde(default)]
    value: Option<(f64, String)>,
}

impl PrometheusSource {
    /// A source for `config`, authenticating with `credentials`.
    pub fn new(
        config: &PrometheusSourceConfig,
        credentials: Credentials,
    ) -> Result<Self, ConnectorError> {
        let name = config
            .name
            .clone()
            .unwrap_or_else(|| "prometheus".to_string());
        let base = http::base_url(&name, &config.url)?;
        if !valid_label_name(&config.service_label) {
            return Err(ConnectorError::Config {
                source_name: name,
                field: "service_label",
                detail: format!("{:?} is not a label name", config.service_label),
            });
        }
        let selector = check_selector(&name, config.selector.as_deref())?;
        Ok(PrometheusSource {
            client: http::client(&name)?,
            base,
            domains: config.domains.iter().map(Domain::new).collect(),
            credentials,
            policy: RetryPolicy::new(
                config.timeout_seconds,
                config.retries,
                config.max_response_bytes,
            ),
            service_label: config.service_label.clone(),
            selector,
            step_seconds: config.step_seconds.max(1),
            guard: Arc::new(AllowAll),
            name,
        })
    }

    /// Every request is first checked by `guard`.
    pub fn with_guard(mut self, guard: Arc<dyn ReadGuard>) -> Self {
        self.guard = guard;
        self
    }

    /// Replaces the timeouts, retries and size limit.
    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The selector a metrics query is sent as (see the module docs).
    pub fn selector(
        &self,
        metric: Option<&str>,
        labels: &BTreeMap<String, String>,
    ) -> Result<String, DataError> {
        let mut matchers = vec![match metric {
            Some(m) => format!("__name__={}", quote(m)),
            None => "__name__=~\".+\"".to_string(),
        }];
        for (key, value) in labels {
            let key = if key == "service" {
                self.service_label.as_str()
            } else {
                key.as_str()
            };
            if !valid_label_name(key) {
                return Err(unavailable(
                    &self.name,
                    format!("query not sent: {key:?} is not a Prometheus label name"),
                ));
            }
            matchers.push(format!("{key}={}", quote(value)));
        }
        if let Some(extra) = &self.selector {
            matchers.push(extra.clone());
        }
        Ok(format!("{{{}}}", matchers.join(",")))
    }

    /// An instant query (`/api/v1/query`) evaluated at `at`.
    pub async fn instant(&self, promql: &str, at: DateTime<Utc>) -> Result<PromAnswer, DataError> {
        let params = [
            ("query", promql.to_string()),
            ("time", at.timestamp().to_string()),
        ];
        self.fetch("/api/v1/query", promql, &params).await
    }

    /// A range query (`/api/v1/query_range`) over `[range.start, range.end]`
    /// every `step_seconds` (widened to stay under 11,000 points).
    pub async fn range(
        &self,
        promql: &str,
        range: TimeRange,
        step_seconds: u64,
    ) -> Result<PromAnswer, DataError> {
        let span = (range.end - range.start).num_seconds().max(0);
        let step = i64::try_from(step_seconds.max(1))
            .unwrap_or(i64::MAX)
            .max((span + MAX_POINTS - 1) / MAX_POINTS);
        let params = [
            ("query", promql.to_string()),
            ("start", range.start.timestamp().to_string()),
            ("end", range.end.timestamp().to_string()),
            ("step", step.to_string()),
        ];
        self.fetch("/api/v1/query_range", promql, &params).await
    }

    async fn fetch(
        &self,
        path: &str,
        promql: &str,
        params: &[(&str, String)],
    ) -> Result<PromAnswer, DataError> {
        self.guard
            .check(&ReadRequest {
                source: self.name.clone(),
                connector: "prometheus",
                domains: self.domains.clone(),
                kind: "promql",
                namespace: None,
                target: promql.to_string(),
            })
            .map_err(|d| unavailable(&self.name, d.to_string()))?;
        let url = http::endpoint(&self.name, &self.base, path, params)?;
        let body = http::get(
            &self.client,
            &self.name,
            url,
            &self.credentials,
            &[],
            &self.policy,
        )
        .await?;
        let bytes = if body.truncated {
            json_cut::close_truncated(&body.bytes, SERIES_DEPTH).ok_or_else(|| {
                unavailable(
                    &self.name,
                    format!(
                        "the answer exceeds {} bytes before one complete series; narrow the query",
                        self.policy.max_response_bytes
                    ),
                )
            })?
        } else {
            body.bytes
        };
        let mut answer = self.parse(&bytes)?;
        if body.truncated {
            answer.truncated = true;
            answer.series.push(Series {
                metric: TRUNCATED_METRIC.to_string(),
                labels: BTreeMap::from([
                    ("source".to_string(), self.name.clone()),
                    (
                        "limit_bytes".to_string(),
                        self.policy.max_response_bytes.to_string(),
                    ),
                    ("kept_series".to_string(), answer.series.len().to_string()),
                ]),
                points: Vec::new(),
            });
        }
        Ok(answer)
    }

    fn parse(&self, bytes: &[u8]) -> Result<PromAnswer, DataError> {
        let envelope: Envelope = serde_json::from_slice(bytes)
            .map_err(|e| malformed(&self.name, format!("not a Prometheus answer: {e}")))?;
        if envelope.status != "success" {
            return Err(unavailable(
                &self.name,
                format!(
                    "{}: {}",
                    envelope.error_type.unwrap_or_else(|| "error".to_string()),
                    envelope.error.unwrap_or_default()
                ),
            ));
        }
        let data = envelope
            .data
            .ok_or_else(|| malformed(&self.name, "a successful answer without data"))?;
        let bad =
            |e: serde_json::Error| malformed(&self.name, format!("{}: {e}", data.result_type));
        let series = match data.result_type.as_str() {
            "matrix" | "vector" => {
                let samples: Vec<Sample> =
                    serde_json::from_value(data.result.clone()).map_err(bad)?;
                samples.into_iter().map(|s| self.series(s)).collect()
            }
            "scalar" | "string" => {
                let (t, v): (f64, String) =
                    serde_json::from_value(data.result.clone()).map_err(bad)?;
                vec![Series {
                    metric: data.result_type.clone(),
                    labels: BTreeMap::new(),
                    points: vec![(t as i64, parse_value(&v))],
                }]
            }
            other => {
                return Err(malformed(
                    &self.name,
                    format!("unknown resultType {other:?}"),
                ));
            }
        };
        Ok(PromAnswer {
            series,
            truncated: false,
            warnings: envelope.warnings,
        })
    }

    fn series(&self, sample: Sample) -> Series {
        let mut labels = sample.metric;
        let metric = labels.remove("__name__").unwrap_or_default();
        if self.service_label != "service"
            && let Some(service) = labels.remove(&self.service_label)
        {
            // Keep a `service` label the target itself had, under
            // Prometheus's own convention for clashing labels.
            if let Some(own) = labels.insert("service".to_string(), service) {
                labels.insert("exported_service".to_string(), own);
            }
        }
        let points = match sample.value {
            Some(v) => vec![v],
            None => sample.values,
        };
        Series {
            metric,
            labels,
            points: points
                .into_iter()
                .map(|(t, v)| (t as i64, parse_value(&v)))
                .collect(),
        }
    }
}

#[async_trait]
impl DataSource for PrometheusSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn domains(&self) -> Vec<Domain> {
        self.domains.clone()
    }

    async fn query(&self, query: &Query) -> Result<QueryResult, DataError> {
        let Query::Metrics {
            metric,
            labels,
            range,
        } = query
        else {
            return Err(DataError::Unsupported {
                source_name: self.name.clone(),
                query_kind: kind_of(query),
            });
        };
        let selector = self.selector(metric.as_deref(), labels)?;
        let mut answer = self.range(&selector, *range, self.step_seconds).await?;
        let (start, end) = (range.start.timestamp(), range.end.timestamp());
        for s in &mut answer.series {
            s.points.retain(|(t, _)| *t >= start && *t < end);
        }
        Ok(QueryResult::Metrics(answer.series))
    }
}

pub(crate) fn kind_of(query: &Query) -> &'static str {
    match query {
        Query::Metrics { .. } => "metrics",
        Query::Logs { .. } => "logs",
        Query::Changes { .. } => "changes",
        Query::Flows { .. } => "flows",
        Query::SecurityEvents { .. } => "security_events",
        Query::Topology => "topology",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(service_label: &str, selector: Option<&str>) -> PrometheusSource {
        let config: PrometheusSourceConfig = serde_json::from_value(serde_json::json!({
            "url": "http://127.0.0.1:9",
            "service_label": service_label,
            "selector": selector,
        }))
        .unwrap();
        PrometheusSource::new(&config, Credentials::None).unwrap()
    }

    #[test]
    fn metric_queries_become_escaped_selectors() {
        let s = source("job", Some("namespace=\"prod\""));
        let labels = BTreeMap::from([
            ("service".to_string(), "api".to_string()),
            ("path".to_string(), "/a\"b\\".to_string()),
        ]);
        assert_eq!(
            s.selector(Some("http_errors_total"), &labels).unwrap(),
            r#"{__name__="http_errors_total",path="/a\"b\\",job="api",namespace="prod"}"#
        );
        assert_eq!(
            s.selector(None, &BTreeMap::new()).unwrap(),
            r#"{__name__=~".+",namespace="prod"}"#
        );
        let bad = BTreeMap::from([("a-b".to_string(), "x".to_string())]);
        assert!(s.selector(None, &bad).is_err());
    }

    #[test]
    fn the_service_label_is_mapped_back() {
        let s = source("job", None);
        let answer = s
            .parse(
                br#"{"status":"success","data":{"resultType":"vector","result":[
                {"metric":{"__name__":"up","job":"api","service":"own"},"value":[1700000000.5,"NaN"]}]}}"#,
            )
            .unwrap();
        let series = &answer.series[0];
        assert_eq!(series.metric, "up");
        assert_eq!(series.label("service"), Some("api"));
        assert_eq!(series.label("exported_service"), Some("own"));
        assert_eq!(series.points[0].0, 1_700_000_000);
        assert!(series.points[0].1.is_nan());
    }

    #[test]
    fn bad_configuration_is_named() {
        let config: PrometheusSourceConfig = serde_json::from_value(serde_json::json!({
            "url": "http://x", "selector": "{a=\"b\"}"
        }))
        .unwrap();
        let e = PrometheusSource::new(&config, Credentials::None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("selector"), "{e}");
    }
}
