//! The storm as Alertmanager 0.25 delivers it to a webhook receiver.
//!
//! Rather than writing payloads by hand, this replays Alertmanager's own
//! dispatch logic for a route with `group_by: [alertname]`: an aggregation
//! group per alert name, a first flush `group_wait` after the group forms,
//! later flushes every `group_interval` when the group changed (new firing
//! alerts, newly resolved ones) or when `repeat_interval` has passed, every
//! flush carrying the whole group (so earlier alerts are sent again under
//! the same fingerprint), and resolved alerts dropped from the group once
//! they were delivered. That is what makes the re-sends realistic.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::Serialize;

use crate::alerts::AlertSpec;
use crate::rng::Rng;

/// Alertmanager route timing of the demo (`route:` in `alertmanager.yml`).
pub const GROUP_WAIT_SECONDS: i64 = 30;
pub const GROUP_INTERVAL_SECONDS: i64 = 300;
/// Short, so that unchanged groups are re-sent within the replayed window.
pub const REPEAT_INTERVAL_SECONDS: i64 = 600;
/// `max_alerts` of the webhook receiver.
pub const MAX_ALERTS_PER_PAYLOAD: usize = 50;
/// How long after the firewall change the replay ends.
pub const STORM_HORIZON_SECONDS: i64 = 25 * 60;

const RECEIVER: &str = "warden";
const EXTERNAL_URL: &str = "http://alertmanager.monitoring.svc:9093";
const PROMETHEUS_URL: &str = "http://prometheus.monitoring.svc:9090";
/// Go's zero `time.Time`, which Alertmanager sends as `endsAt` while firing.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// One webhook POST, and when Alertmanager sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub at: DateTime<Utc>,
    pub payload: serde_json::Value,
}

/// Alertmanager's webhook message, version 4.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WebhookMessage {
    version: &'static str,
    group_key: String,
    truncated_alerts: u64,
    status: &'static str,
    receiver: &'static str,
    group_labels: BTreeMap<String, String>,
    common_labels: BTreeMap<String, String>,
    common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    external_url: &'static str,
    alerts: Vec<WebhookAlert>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WebhookAlert {
    status: &'static str,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: String,
    fingerprint: String,
}

/// An alert inside its aggregation group: when Prometheus delivered it,
/// and when it delivered the resolution.
struct Member<'a> {
    spec: &'a AlertSpec,
    fingerprint: String,
    arrives: DateTime<Utc>,
    resolution_arrives: Option<DateTime<Utc>>,
}

/// Every notification of the storm, in send order.
pub(crate) fn notifications(
    alerts: &[AlertSpec],
    base: DateTime<Utc>,
    seed: u64,
) -> Result<Vec<Notification>, serde_json::Error> {
    let mut rng = Rng::new(seed, "storm");
    let mut groups: BTreeMap<&str, Vec<Member<'_>>> = BTreeMap::new();
    for spec in alerts {
        // Prometheus evaluates every 15 s and sends shortly after.
        let arrives = spec.starts_at + TimeDelta::seconds(rng.range(2, 16));
        let resolution_arrives = spec
            .ends_at
            .map(|end| end + TimeDelta::seconds(rng.range(2, 16)));
        groups.entry(spec.alertname()).or_default().push(Member {
            spec,
            fingerprint: spec.fingerprint().0,
            arrives,
            resolution_arrives,
        });
    }
    let horizon = base + TimeDelta::seconds(STORM_HORIZON_SECONDS);
    let mut out = Vec::new();
    for (alertname, members) in &groups {
        flush_group(alertname, members, horizon, &mut out)?;
    }
    // Stable: simultaneous flushes stay in alert-name order.
    out.sort_by_key(|n| n.at);
    Ok(out)
}

/// Replays one aggregation group's flushes up to `horizon`.
fn flush_group(
    alertname: &str,
    members: &[Member<'_>],
    horizon: DateTime<Utc>,
    out: &mut Vec<Notification>,
) -> Result<(), serde_json::Error> {
    let Some(formed) = members.iter().map(|m| m.arrives).min() else {
        return Ok(());
    };
    let mut notified_firing: BTreeSet<&str> = BTreeSet::new();
    let mut notified_resolved: BTreeSet<&str> = BTreeSet::new();
    let mut removed: BTreeSet<&str> = BTreeSet::new();
    let mut last_sent: Option<DateTime<Utc>> = None;
    let mut tick = formed + TimeDelta::seconds(GROUP_WAIT_SECONDS);
    while tick <= horizon {
        let present: Vec<(&Member<'_>, bool)> = members
            .iter()
            .filter(|m| m.arrives <= tick && !removed.contains(m.fingerprint.as_str()))
            .map(|m| (m, m.resolution_arrives.is_some_and(|r| r <= tick)))
            .collect();
        let firing: BTreeSet<&str> = present
            .iter()
            .filter(|(_, resolved)| !resolved)
            .map(|(m, _)| m.fingerprint.as_str())
            .collect();
        let resolved: BTreeSet<&str> = present
            .iter()
            .filter(|(_, resolved)| *resolved)
            .map(|(m, _)| m.fingerprint.as_str())
            .collect();
        let repeat_due =
            last_sent.is_some_and(|t| tick - t >= TimeDelta::seconds(REPEAT_INTERVAL_SECONDS));
        let needs_update = !firing.is_subset(&notified_firing)
            || !resolved.is_subset(&notified_resolved)
            || (!firing.is_empty() && repeat_due);
        if needs_update && !present.is_empty() {
            let mut batch: Vec<(&Member<'_>, bool)> = present;
            batch.sort_by(|a, b| {
                (a.0.spec.starts_at, &a.0.fingerprint).cmp(&(b.0.spec.starts_at, &b.0.fingerprint))
            });
            for chunk in batch.chunks(MAX_ALERTS_PER_PAYLOAD) {
                out.push(Notification {
                    at: tick,
                    payload: serde_json::to_value(message(alertname, chunk))?,
                });
            }
            removed.extend(resolved.iter().copied());
            notified_firing = firing;
            notified_resolved = resolved;
            last_sent = Some(tick);
        }
        tick += TimeDelta::seconds(GROUP_INTERVAL_SECONDS);
    }
    Ok(())
}

fn message(alertname: &str, chunk: &[(&Member<'_>, bool)]) -> WebhookMessage {
    let alerts: Vec<WebhookAlert> = chunk
        .iter()
        .map(|(m, resolved)| WebhookAlert {
            status: if *resolved { "resolved" } else { "firing" },
            labels: m.spec.labels.clone(),
            annotations: m.spec.annotations.clone(),
            starts_at: rfc3339(m.spec.starts_at),
            ends_at: match (resolved, m.spec.ends_at) {
                (true, Some(end)) => rfc3339(end),
                _ => ZERO_TIME.to_string(),
            },
            generator_url: format!(
                "{PROMETHEUS_URL}/graph?g0.expr={}&g0.tab=1",
                query_escape(m.spec.expr)
            ),
            fingerprint: m.fingerprint.clone(),
        })
        .collect();
    let any_firing = alerts.iter().any(|a| a.status == "firing");
    WebhookMessage {
        version: "4",
        group_key: format!("{{}}:{{alertname=\"{alertname}\"}}"),
        truncated_alerts: 0,
        status: if any_firing { "firing" } else { "resolved" },
        receiver: RECEIVER,
        group_labels: BTreeMap::from([("alertname".to_string(), alertname.to_string())]),
        common_labels: common(alerts.iter().map(|a| &a.labels)),
        common_annotations: common(alerts.iter().map(|a| &a.annotations)),
        external_url: EXTERNAL_URL,
        alerts,
    }
}

/// The pairs every map shares, as Alertmanager computes `commonLabels`.
fn common<'a>(
    mut maps: impl Iterator<Item = &'a BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let Some(first) = maps.next() else {
        return BTreeMap::new();
    };
    let mut shared = first.clone();
    for map in maps {
        shared.retain(|k, v| map.get(k) == Some(v));
    }
    shared
}

pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Go's `url.QueryEscape`, which Prometheus uses for `generatorURL`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_escape_matches_go_for_a_promql_expression() {
        assert_eq!(
            query_escape("rate(x{a=\"b\"}[5m]) > 5"),
            "rate%28x%7Ba%3D%22b%22%7D%5B5m%5D%29+%3E+5"
        );
    }

    #[test]
    fn common_keeps_only_pairs_shared_by_every_map() {
        let a = BTreeMap::from([
            ("x".to_string(), "1".to_string()),
            ("y".to_string(), "2".to_string()),
        ]);
        let b = BTreeMap::from([
            ("x".to_string(), "1".to_string()),
            ("y".to_string(), "3".to_string()),
        ]);
        let shared = common([&a, &b].into_iter());
        assert_eq!(shared, BTreeMap::from([("x".to_string(), "1".to_string())]));
    }
}
