//! The queries the loop may run, offered to the model as tools.
//!
//! One tool per [`Query`] variant, its parameters a JSON schema; the data
//! sources it may name come from the investigation's [`SourceInfo`]. A tool
//! call becomes a [`PlannedQuery`] the loop runs: the model never reads data
//! itself. Time ranges are clamped to the investigation's window, and log
//! queries to a line limit, so a call cannot widen what the investigation
//! reads; a call that does not parse is skipped with the reason.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use warden_core::ports::{PlannedQuery, Query, SourceInfo};
use warden_core::telemetry::TimeRange;

use crate::client::ToolCall;

/// Lines a log query may ask for; the answer is summarised as templates,
/// so more lines cost the prompt nothing but time.
pub const MAX_LOG_LIMIT: usize = 20_000;

/// The tool definitions for `sources`, in the `tools` request field.
pub fn definitions(sources: &[SourceInfo]) -> Vec<Value> {
    let names: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
    let described: Vec<String> = sources
        .iter()
        .map(|s| {
            let domains: Vec<&str> = s.domains.iter().map(|d| d.as_str()).collect();
            format!("{} ({})", s.name, domains.join(", "))
        })
        .collect();
    // Descriptions are kept short: the definitions go out with every plan
    // round, and each byte is paid for on each of them.
    let source = json!({
        "type": "string",
        "enum": names,
        "description": format!("Default: all. {}", described.join("; ")),
    });
    let purpose = json!({"type": "string"});
    let tool = |name: &str, description: &str, mut props: Map<String, Value>| {
        props.insert("source".into(), source.clone());
        props.insert("purpose".into(), purpose.clone());
        json!({
            "type": "function",
            "function": {
                "name": name,
                "description": description,
                "parameters": {"type": "object", "properties": props, "required": ["purpose"]},
            }
        })
    };
    // Every query reads the investigation window; the schema does not
    // offer `start`/`end` (they would cost bytes on every plan round), but
    // a call that sends them (RFC 3339) is read and clamped to the window.
    let ranged = |props: Map<String, Value>| props;
    let string = |d: &str| json!({"type": "string", "description": d});
    let mut metrics = Map::new();
    metrics.insert("metric".into(), string("Default: all"));
    metrics.insert("service".into(), json!({"type": "string"}));
    metrics.insert(
        "labels".into(),
        json!({"type": "object", "additionalProperties": {"type": "string"}}),
    );
    let mut logs = Map::new();
    logs.insert("service".into(), json!({"type": "string"}));
    logs.insert(
        "min_level".into(),
        json!({"type": "string", "enum": ["DEBUG", "INFO", "WARN", "ERROR"]}),
    );
    logs.insert("contains".into(), string("Substring"));
    logs.insert(
        "limit".into(),
        json!({"type": "integer", "minimum": 1, "maximum": MAX_LOG_LIMIT}),
    );
    let mut flows = Map::new();
    flows.insert("service".into(), string("From or to"));
    vec![
        tool(
            "query_metrics",
            "Metric series; answered as anomaly scores vs baseline",
            ranged(metrics),
        ),
        tool(
            "query_logs",
            "Log lines; answered as templates with counts",
            ranged(logs),
        ),
        tool(
            "query_changes",
            "Config, firewall and deploy changes",
            ranged(Map::new()),
        ),
        tool(
            "query_flows",
            "Network flows; answered as impaired paths",
            ranged(flows),
        ),
        tool(
            "query_security_events",
            "Security sensor events; answered as counts",
            ranged(Map::new()),
        ),
        tool("query_topology", "The dependency graph", Map::new()),
    ]
}

/// The query a tool call asks for.
pub fn planned_query(
    call: &ToolCall,
    sources: &[SourceInfo],
    window: TimeRange,
) -> Result<PlannedQuery, String> {
    let args = call.arguments.as_ref().map_err(Clone::clone)?;
    let text = |key: &str| -> Result<Option<String>, String> {
        match args.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!("{key} must be a string, not {other}")),
        }
    };
    let source = text("source")?;
    if let Some(name) = &source
        && !sources.iter().any(|s| &s.name == name)
    {
        return Err(format!("no data source named {name:?}"));
    }
    let purpose = text("purpose")?.unwrap_or_else(|| call.name.clone());
    let range = || -> Result<TimeRange, String> {
        let at = |key: &str| -> Result<Option<DateTime<Utc>>, String> {
            text(key)?
                .map(|s| {
                    DateTime::parse_from_rfc3339(&s)
                        .map(|t| t.with_timezone(&Utc))
                        .map_err(|e| format!("{key} {s:?} is not an RFC 3339 time ({e})"))
                })
                .transpose()
        };
        let start = at("start")?.unwrap_or(window.start).max(window.start);
        let end = at("end")?.unwrap_or(window.end).min(window.end);
        if start >= end {
            return Err("the time range is empty or outside the investigation window".to_string());
        }
        Ok(TimeRange { start, end })
    };
    let query = match call.name.as_str() {
        "query_metrics" => {
            let mut labels = BTreeMap::new();
            match args.get("labels") {
                None | Some(Value::Null) => {}
                Some(Value::Object(map)) => {
                    for (k, v) in map {
                        let v = match v {
                            Value::String(s) => s.clone(),
                            Value::Number(n) => n.to_string(),
                            other => {
                                return Err(format!("label {k} must be a string, not {other}"));
                            }
                        };
                        labels.insert(k.clone(), v);
                    }
                }
                Some(other) => return Err(format!("labels must be an object, not {other}")),
            }
            if let Some(service) = text("service")? {
                labels.insert("service".to_string(), service);
            }
            Query::Metrics {
                metric: text("metric")?,
                labels,
                range: range()?,
            }
        }
        "query_logs" => {
            let limit = match args.get("limit") {
                None | Some(Value::Null) => MAX_LOG_LIMIT,
                Some(v) => v
                    .as_u64()
                    .or_else(|| v.as_f64().filter(|f| *f >= 1.0).map(|f| f as u64))
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                    .ok_or_else(|| format!("limit must be a positive integer, not {v}"))?
                    .clamp(1, MAX_LOG_LIMIT as u64) as usize,
            };
            let min_level = text("min_level")?.map(|l| l.to_ascii_uppercase());
            Query::Logs {
                service: text("service")?,
                min_level,
                contains: text("contains")?,
                range: range()?,
                limit,
            }
        }
        "query_changes" => Query::Changes { range: range()? },
        "query_flows" => Query::Flows {
            service: text("service")?,
            range: range()?,
        },
        "query_security_events" => Query::SecurityEvents { range: range()? },
        "query_topology" => Query::Topology,
        "" => return Err("the tool call names no tool".to_string()),
        other => return Err(format!("no tool named {other:?}")),
    };
    Ok(PlannedQuery {
        source,
        query,
        purpose,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_core::Domain;

    fn call(name: &str, args: Value) -> ToolCall {
        ToolCall {
            id: "c".into(),
            name: name.into(),
            arguments: match args {
                Value::Object(m) => Ok(m),
                _ => Err("bad".into()),
            },
            raw: Value::Null,
        }
    }

    fn window() -> TimeRange {
        TimeRange {
            start: "2026-01-01T10:00:00Z".parse().unwrap(),
            end: "2026-01-01T12:00:00Z".parse().unwrap(),
        }
    }

    fn sources() -> Vec<SourceInfo> {
        vec![SourceInfo {
            name: "bundle".into(),
            domains: vec![Domain::new("application")],
        }]
    }

    #[test]
    fn every_query_kind_has_a_tool_naming_the_sources() {
        let defs = definitions(&sources());
        assert_eq!(defs.len(), 6);
        let text = serde_json::to_string(&defs).unwrap();
        assert!(text.contains("bundle (application)"), "{text}");
    }

    #[test]
    fn a_metrics_call_becomes_a_query_clamped_to_the_window() {
        let q = planned_query(
            &call(
                "query_metrics",
                json!({"service": "orders-api", "start": "2026-01-01T08:00:00Z", "purpose": "p"}),
            ),
            &sources(),
            window(),
        )
        .unwrap();
        match q.query {
            Query::Metrics { labels, range, .. } => {
                assert_eq!(labels["service"], "orders-api");
                assert_eq!(range, window());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_calls_are_refused_with_the_reason() {
        let w = window();
        let s = sources();
        let err = |name: &str, args: Value| planned_query(&call(name, args), &s, w).unwrap_err();
        assert!(err("query_nukes", json!({})).contains("no tool named"));
        assert!(err("query_logs", json!({"source": "prod-db"})).contains("no data source"));
        assert!(err("query_logs", json!({"limit": "lots"})).contains("limit"));
        assert!(err("query_changes", json!({"start": "yesterday"})).contains("RFC 3339"));
        assert!(err("query_changes", json!({"start": "2027-01-01T00:00:00Z"})).contains("empty"));
        assert!(err("query_topology", Value::Null).contains("bad"));
    }

    #[test]
    fn log_limits_are_capped() {
        let q = planned_query(
            &call(
                "query_logs",
                json!({"limit": 10_000_000, "min_level": "warn"}),
            ),
            &sources(),
            window(),
        )
        .unwrap();
        match q.query {
            Query::Logs {
                limit, min_level, ..
            } => {
                assert_eq!(limit, MAX_LOG_LIMIT);
                assert_eq!(min_level.as_deref(), Some("WARN"));
            }
            other => panic!("{other:?}"),
        }
    }
}
