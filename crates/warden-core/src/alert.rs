//! Alerts as warden keeps them, independent of the payload they came in.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The identity of an alert across re-sends: Alertmanager's fingerprint, or
/// a hash of the sorted label set when the sender gives none.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(pub String);

impl Fingerprint {
    /// A stable fingerprint from a label set (FNV-1a over `k=v` pairs in order).
    ///
    /// FNV is used because it is stable across releases and platforms, which
    /// `std`'s hasher is not; it needs no cryptographic strength here.
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Self {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for (k, v) in labels {
            for byte in k.bytes().chain([0xff]).chain(v.bytes()).chain([0xfe]) {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        }
        Fingerprint(format!("{hash:016x}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

/// An infrastructure domain an alert or a piece of evidence belongs to
/// (network, application, database, security, ...). Domains are named by
/// configuration, so this is an open set rather than an enum.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Domain(pub String);

impl Domain {
    pub fn new(name: impl Into<String>) -> Self {
        Domain(name.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The domain of an alert: its `domain` label, else a guess from its
    /// name and labels, else `application`.
    pub fn of_labels(labels: &BTreeMap<String, String>) -> Domain {
        if let Some(d) = labels.get("domain").filter(|d| !d.is_empty()) {
            return Domain(d.to_ascii_lowercase());
        }
        let name = labels
            .get("alertname")
            .map(|s| s.to_ascii_lowercase())
            .unwrap_or_default();
        const HINTS: &[(&str, &[&str])] = &[
            (
                "security",
                &["intrusion", "ids", "auth", "login", "scan", "security"],
            ),
            (
                "database",
                &["postgres", "mysql", "db", "database", "replica", "pool"],
            ),
            (
                "network",
                &["firewall", "packet", "network", "bgp", "dns", "link", "tcp"],
            ),
        ];
        for (domain, words) in HINTS {
            if words.iter().any(|w| name.contains(w)) {
                return Domain((*domain).to_string());
            }
        }
        Domain("application".to_string())
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One alert, deduplicated by fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub fingerprint: Fingerprint,
    pub status: AlertStatus,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Event time: when the condition began, as the sender reports it.
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    pub generator_url: Option<String>,
}

impl Alert {
    pub fn name(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }

    pub fn domain(&self) -> Domain {
        Domain::of_labels(&self.labels)
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn fingerprint_is_stable_and_label_sensitive() {
        let a = labels(&[("alertname", "X"), ("service", "a")]);
        let b = labels(&[("alertname", "X"), ("service", "b")]);
        assert_eq!(Fingerprint::from_labels(&a), Fingerprint::from_labels(&a));
        assert_ne!(Fingerprint::from_labels(&a), Fingerprint::from_labels(&b));
        // Concatenation ambiguity must not collide: {ab=c} vs {a=bc}.
        assert_ne!(
            Fingerprint::from_labels(&labels(&[("ab", "c")])),
            Fingerprint::from_labels(&labels(&[("a", "bc")]))
        );
    }

    #[test]
    fn domain_label_wins_over_name_hints() {
        let l = labels(&[("alertname", "FirewallDrops"), ("domain", "Security")]);
        assert_eq!(Domain::of_labels(&l).as_str(), "security");
        let l = labels(&[("alertname", "PostgresPoolExhausted")]);
        assert_eq!(Domain::of_labels(&l).as_str(), "database");
        let l = labels(&[("alertname", "HighLatency")]);
        assert_eq!(Domain::of_labels(&l).as_str(), "application");
    }
}
