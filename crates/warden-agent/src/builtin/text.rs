//! Small formatting helpers for findings and chain steps.

use chrono::{DateTime, Utc};
use warden_core::Domain;
use warden_core::telemetry::TopologyGraph;

use crate::engines::anomaly::{Direction, SeriesScore};

/// `10:01:30Z`, for sentences.
pub fn hms(t: DateTime<Utc>) -> String {
    t.format("%H:%M:%SZ").to_string()
}

/// Full RFC 3339 to the second, for chain steps.
pub fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A number as a person writes it: `50`, `0.25`, `1.2e6`.
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x.abs() >= 1e6 {
        return format!("{x:.2e}");
    }
    if (x - x.round()).abs() < 1e-9 {
        return format!("{}", x.round() as i64);
    }
    let text = if x.abs() >= 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    };
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Telemetry text quoted in a finding: one line, bounded, control
/// characters removed. It stays data: it is only ever shown, never acted on.
pub fn quote(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    if text.chars().count() > 200 {
        format!("{clean}…")
    } else {
        clean
    }
}

/// The domain a node belongs to, per the topology.
pub fn domain_of(topology: &TopologyGraph, node: &str) -> Domain {
    topology
        .node(node)
        .map(|n| Domain::new(n.domain.to_ascii_lowercase()))
        .unwrap_or_else(|| Domain::new("application"))
}

/// `db_pool_in_use rose to 50 (baseline 5) from 10:01:30Z`, under the
/// name given (one that tells apart series sharing a metric name: see
/// [`series_name`]).
pub fn describe_series_as(s: &SeriesScore, name: &str) -> String {
    let verb = match s.onset.as_ref().map(|o| o.direction) {
        Some(Direction::Down) => "fell to",
        Some(Direction::Up) => "rose to",
        None => "peaked at",
    };
    let mut text = format!(
        "{name} {verb} {} (baseline {})",
        num(s.peak_value),
        num(s.baseline_median)
    );
    if let Some(onset) = &s.onset {
        text.push_str(&format!(" from {}", hms(onset.at)));
    }
    text
}

/// The name of a series among `all`: its metric name, plus the labels
/// that tell it apart from other series of the same node and metric
/// (`pg_stat_activity_count{state="idle"}`).
pub fn series_name(s: &SeriesScore, all: &[SeriesScore]) -> String {
    let siblings: Vec<&SeriesScore> = all
        .iter()
        .filter(|o| o.node == s.node && o.metric == s.metric)
        .collect();
    if siblings.len() < 2 {
        return s.metric.clone();
    }
    let distinct: Vec<String> = s
        .labels
        .iter()
        .filter(|(k, v)| {
            k.as_str() != "service" && siblings.iter().any(|o| o.labels.get(*k) != Some(*v))
        })
        .map(|(k, v)| format!("{k}=\"{}\"", quote(v)))
        .collect();
    if distinct.is_empty() {
        s.metric.clone()
    } else {
        format!("{}{{{}}}", s.metric, distinct.join(","))
    }
}

/// [`join`] of at most `cap` items, then how many more there are:
/// `a, b, c and 5 more`.
pub fn join_capped<S: AsRef<str>>(items: &[S], cap: usize) -> String {
    match items.len().checked_sub(cap) {
        Some(more) if more > 0 => format!(
            "{} and {more} more",
            join(items.iter().take(cap).map(|s| s.as_ref()))
        ),
        _ => join(items.iter().map(|s| s.as_ref())),
    }
}

pub fn join<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    items
        .into_iter()
        .map(|s| s.as_ref().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_without_noise() {
        assert_eq!(num(50.0), "50");
        assert_eq!(num(0.25), "0.25");
        assert_eq!(num(123.456), "123.5");
        assert_eq!(num(2_500_000.0), "2.50e6");
    }

    #[test]
    fn long_lists_are_capped_with_a_count() {
        assert_eq!(join_capped(&["a", "b"], 3), "a, b");
        assert_eq!(
            join_capped(&["a", "b", "c", "d", "e"], 3),
            "a, b, c and 2 more"
        );
    }

    #[test]
    fn series_sharing_a_metric_name_are_told_apart_by_their_labels() {
        let score = |state: &str| SeriesScore {
            metric: "sessions".into(),
            labels: [
                ("service".to_string(), "db".to_string()),
                ("state".to_string(), state.to_string()),
            ]
            .into(),
            node: Some("db".into()),
            class: crate::engines::anomaly::MetricClass::Load,
            baseline_median: 1.0,
            baseline_scale: 1.0,
            peak_value: 1.0,
            peak_z: 0.0,
            onset: None,
        };
        let all = vec![score("idle"), score("active")];
        assert_eq!(series_name(&all[0], &all), "sessions{state=\"idle\"}");
        assert_eq!(series_name(&all[0], &all[..1]), "sessions");
    }

    #[test]
    fn quoted_text_is_one_bounded_line() {
        let q = quote(&format!("line one\nline two {}", "x".repeat(500)));
        assert!(!q.contains('\n'));
        assert!(q.chars().count() <= 201);
    }
}
