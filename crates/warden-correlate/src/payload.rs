//! Intake payloads: Alertmanager's webhook (version "4") and warden's own
//! generic incident.
//!
//! Parsing goes through `serde_path_to_error` so that a wrong type or a
//! missing field is reported with its path (`alerts[3].startsAt`), which is
//! what a person fixing a sender needs.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use warden_core::{Alert, AlertStatus, Fingerprint, TopologyHint};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("malformed JSON: {0}")]
    Syntax(String),
    #[error("invalid field {path}: {message}")]
    Field { path: String, message: String },
    #[error("unsupported Alertmanager payload version {0:?}; warden accepts version \"4\"")]
    Version(String),
}

fn decode<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, PayloadError> {
    // The fast path; the path-tracking decoder only runs to explain a
    // failure, so messages stay exact while valid bodies parse at full speed.
    if let Ok(v) = serde_json::from_slice::<T>(body) {
        return Ok(v);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            PayloadError::Syntax(inner.to_string())
        } else {
            PayloadError::Field {
                path: if path == "." {
                    "(document)".into()
                } else {
                    path
                },
                message: inner.to_string(),
            }
        }
    })?;
    de.end().map_err(|e| PayloadError::Syntax(e.to_string()))?;
    Ok(value)
}

fn field(path: impl Into<String>, message: impl Into<String>) -> PayloadError {
    PayloadError::Field {
        path: path.into(),
        message: message.into(),
    }
}

/// Alertmanager uses the zero time for "not ended".
fn end_time(t: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    t.filter(|t| t.timestamp() > 0)
}

fn status(s: &str, path: &str) -> Result<AlertStatus, PayloadError> {
    match s {
        "firing" => Ok(AlertStatus::Firing),
        "resolved" => Ok(AlertStatus::Resolved),
        other => Err(field(
            path,
            format!("unknown status {other:?}; expected \"firing\" or \"resolved\""),
        )),
    }
}

fn check_labels(labels: &BTreeMap<String, String>, path: &str) -> Result<(), PayloadError> {
    if labels.is_empty() {
        return Err(field(path, "an alert needs at least one label"));
    }
    if let Some(k) = labels.keys().find(|k| k.is_empty()) {
        return Err(field(path, format!("label name {k:?} is empty")));
    }
    Ok(())
}

fn fingerprint(
    given: Option<String>,
    labels: &BTreeMap<String, String>,
    path: &str,
) -> Result<Fingerprint, PayloadError> {
    match given {
        Some(f) if f.is_empty() => Ok(Fingerprint::from_labels(labels)),
        Some(f) if f.len() <= 64 && f.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            Ok(Fingerprint(f))
        }
        Some(_) => Err(field(
            path,
            "fingerprint must be 1-64 ASCII letters or digits",
        )),
        None => Ok(Fingerprint::from_labels(labels)),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookV4 {
    version: String,
    alerts: Vec<WebhookAlert>,
    // The rest of the envelope (receiver, groupKey, groupLabels, ...) is
    // Alertmanager's routing context; warden groups by its own rules.
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookAlert {
    status: String,
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    starts_at: DateTime<Utc>,
    #[serde(default)]
    ends_at: Option<DateTime<Utc>>,
    #[serde(default, rename = "generatorURL")]
    generator_url: Option<String>,
    #[serde(default)]
    fingerprint: Option<String>,
}

/// Parses an Alertmanager webhook body (version "4").
pub fn parse_alertmanager(body: &[u8]) -> Result<Vec<Alert>, PayloadError> {
    let payload: WebhookV4 = decode(body)?;
    if payload.version != "4" {
        return Err(PayloadError::Version(payload.version));
    }
    payload
        .alerts
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            let path = format!("alerts[{i}]");
            check_labels(&a.labels, &format!("{path}.labels"))?;
            Ok(Alert {
                status: status(&a.status, &format!("{path}.status"))?,
                fingerprint: fingerprint(a.fingerprint, &a.labels, &format!("{path}.fingerprint"))?,
                labels: a.labels,
                annotations: a.annotations,
                starts_at: a.starts_at,
                ends_at: end_time(a.ends_at),
                generator_url: a.generator_url.filter(|u| !u.is_empty()),
            })
        })
        .collect()
}

/// warden's generic incident: a sender that already knows these alerts
/// belong together (and perhaps how its services depend on each other).
#[derive(Debug, Clone, PartialEq)]
pub struct GenericIncident {
    pub title: String,
    pub alerts: Vec<Alert>,
    pub topology: Vec<TopologyHint>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GenericBody {
    title: String,
    alerts: Vec<GenericAlert>,
    #[serde(default)]
    topology: Vec<GenericEdge>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GenericAlert {
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    starts_at: Option<DateTime<Utc>>,
    #[serde(default)]
    ends_at: Option<DateTime<Utc>>,
    #[serde(default)]
    fingerprint: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenericEdge {
    from: String,
    to: String,
}

/// Parses `POST /api/v1/incidents`. `now` stands in for a missing `startsAt`.
pub fn parse_generic_incident(
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<GenericIncident, PayloadError> {
    let body: GenericBody = decode(body)?;
    let title = body.title.trim().to_string();
    if title.is_empty() {
        return Err(field("title", "must not be empty"));
    }
    if title.len() > 512 {
        return Err(field("title", "must be at most 512 bytes"));
    }
    if body.alerts.is_empty() {
        return Err(field("alerts", "an incident needs at least one alert"));
    }
    let alerts = body
        .alerts
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            let path = format!("alerts[{i}]");
            check_labels(&a.labels, &format!("{path}.labels"))?;
            Ok(Alert {
                status: match a.status.as_deref() {
                    None => AlertStatus::Firing,
                    Some(s) => status(s, &format!("{path}.status"))?,
                },
                fingerprint: fingerprint(a.fingerprint, &a.labels, &format!("{path}.fingerprint"))?,
                labels: a.labels,
                annotations: a.annotations,
                starts_at: a.starts_at.unwrap_or(now),
                ends_at: end_time(a.ends_at),
                generator_url: None,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let topology = body
        .topology
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            if e.from.is_empty() || e.to.is_empty() {
                return Err(field(
                    format!("topology[{i}]"),
                    "from and to must not be empty",
                ));
            }
            Ok(TopologyHint {
                from: e.from,
                to: e.to,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(GenericIncident {
        title,
        alerts,
        topology,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = r#"{"version":"4","groupKey":"{}:{alertname=\"A\"}","truncatedAlerts":0,
        "status":"firing","receiver":"warden","groupLabels":{"alertname":"A"},
        "commonLabels":{"alertname":"A"},"commonAnnotations":{},"externalURL":"http://am",
        "alerts":[{"status":"firing","labels":{"alertname":"A","service":"s"},
        "annotations":{"summary":"x"},"startsAt":"2026-11-28T02:00:00Z",
        "endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prom/graph",
        "fingerprint":"0123456789abcdef"}]}"#;

    #[test]
    fn alertmanager_payload_parses_with_zero_end_time_as_none() {
        let alerts = parse_alertmanager(ONE.as_bytes()).unwrap();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].fingerprint.as_str(), "0123456789abcdef");
        assert_eq!(alerts[0].ends_at, None);
        assert_eq!(alerts[0].status, AlertStatus::Firing);
    }

    #[test]
    fn wrong_version_is_named() {
        let body = ONE.replace(r#""version":"4""#, r#""version":"3""#);
        let err = parse_alertmanager(body.as_bytes()).unwrap_err();
        assert_eq!(err, PayloadError::Version("3".into()));
    }

    #[test]
    fn wrong_type_names_the_path() {
        let body = ONE.replace(r#""startsAt":"2026-11-28T02:00:00Z""#, r#""startsAt":17"#);
        let err = parse_alertmanager(body.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("alerts[0].startsAt"), "{err}");
    }

    #[test]
    fn missing_field_names_it() {
        let body = ONE.replace(r#""status":"firing","labels""#, r#""labels""#);
        let err = parse_alertmanager(body.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("status"), "{err}");
    }

    #[test]
    fn truncated_json_is_a_syntax_error() {
        let err = parse_alertmanager(&ONE.as_bytes()[..40]).unwrap_err();
        assert!(matches!(err, PayloadError::Syntax(_)), "{err}");
    }

    #[test]
    fn trailing_garbage_is_refused() {
        let body = format!("{ONE} xx");
        assert!(matches!(
            parse_alertmanager(body.as_bytes()),
            Err(PayloadError::Syntax(_))
        ));
    }

    #[test]
    fn unknown_status_is_refused() {
        let body = ONE.replace(
            r#"{"status":"firing","labels""#,
            r#"{"status":"burning","labels""#,
        );
        let err = parse_alertmanager(body.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("alerts[0].status"), "{err}");
    }

    #[test]
    fn missing_fingerprint_is_derived_from_labels() {
        let body = ONE.replace(
            r#""fingerprint":"0123456789abcdef""#,
            r#""note":"no fingerprint""#,
        );
        let a = parse_alertmanager(body.as_bytes()).unwrap();
        assert_eq!(a[0].fingerprint, Fingerprint::from_labels(&a[0].labels));
    }

    #[test]
    fn generic_incident_needs_a_title_and_alerts() {
        let now = Utc::now();
        let err = parse_generic_incident(br#"{"title":" ","alerts":[]}"#, now).unwrap_err();
        assert!(err.to_string().contains("title"));
        let err = parse_generic_incident(br#"{"title":"t","alerts":[]}"#, now).unwrap_err();
        assert!(err.to_string().contains("alerts"));
        let err = parse_generic_incident(
            br#"{"title":"t","alerts":[{"labels":{"a":"b"}}],"extra":1}"#,
            now,
        )
        .unwrap_err();
        assert!(err.to_string().contains("extra"), "{err}");
        let ok = parse_generic_incident(
            br#"{"title":"t","alerts":[{"labels":{"a":"b"}}],"topology":[{"from":"a","to":"b"}]}"#,
            now,
        )
        .unwrap();
        assert_eq!(ok.alerts[0].starts_at, now);
        assert_eq!(ok.topology.len(), 1);
    }
}
