//! Flow impairment: which network paths started dropping or retransmitting?
//!
//! Flow records count allowed, dropped and retransmitted traffic per
//! interval and per `src → dst` edge as seen by a device. A healthy path
//! drops little; an impaired one shows a burst of drops or retransmits
//! against its own baseline. The onset of that burst, set against the time
//! of a change to the observing device, is among the strongest evidence an
//! investigation gets: it ties a change to the traffic it broke.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use warden_core::telemetry::{FlowRecord, TimeRange};

#[derive(Debug, Clone, PartialEq)]
pub struct FlowConfig {
    /// Impaired share of an interval's traffic at or above which the
    /// interval counts, before comparing with the baseline.
    pub min_impaired_ratio: f64,
    /// How many times the baseline ratio an interval must reach.
    pub baseline_factor: f64,
    /// Impaired packets/connections an interval needs to count at all.
    pub min_impaired: u64,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            min_impaired_ratio: 0.02,
            baseline_factor: 5.0,
            min_impaired: 5,
        }
    }
}

/// One edge whose traffic is impaired in the incident window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EdgeImpairment {
    pub src: String,
    pub dst: String,
    pub dst_port: u16,
    pub device: Option<String>,
    /// Share of traffic dropped or retransmitted in the baseline.
    pub baseline_ratio: f64,
    /// The same share over the impaired intervals.
    pub incident_ratio: f64,
    pub dropped: u64,
    pub retransmits: u64,
    pub allowed: u64,
    /// Start of the first impaired interval.
    pub onset: DateTime<Utc>,
    /// The rule that dropped traffic, when the device names one.
    pub rules: Vec<String>,
    /// 0..1: how clearly impaired.
    pub strength: f64,
}

fn impaired(f: &FlowRecord) -> u64 {
    f.dropped.saturating_add(f.retransmits)
}

fn ratio(impaired: u64, allowed: u64, dropped: u64) -> f64 {
    let total = allowed.saturating_add(dropped);
    if total == 0 {
        0.0
    } else {
        impaired as f64 / total as f64
    }
}

/// Edges impaired in `incident` compared with `baseline`, strongest first.
pub fn impairments(
    flows: &[FlowRecord],
    baseline: TimeRange,
    incident: TimeRange,
    cfg: &FlowConfig,
) -> Vec<EdgeImpairment> {
    type Key = (String, String, u16, Option<String>);
    let mut edges: BTreeMap<Key, Vec<&FlowRecord>> = BTreeMap::new();
    for f in flows {
        edges
            .entry((
                f.src_service.clone(),
                f.dst_service.clone(),
                f.dst_port,
                f.device.clone(),
            ))
            .or_default()
            .push(f);
    }
    let mut out = Vec::new();
    for ((src, dst, dst_port, device), mut records) in edges {
        records.sort_by_key(|f| f.ts);
        let (mut b_imp, mut b_allowed, mut b_dropped) = (0u64, 0u64, 0u64);
        for f in records.iter().filter(|f| baseline.contains(f.ts)) {
            b_imp += impaired(f);
            b_allowed += f.allowed;
            b_dropped += f.dropped;
        }
        let baseline_ratio = ratio(b_imp, b_allowed, b_dropped);
        let threshold = (baseline_ratio * cfg.baseline_factor).max(cfg.min_impaired_ratio);
        let bad: Vec<&&FlowRecord> = records
            .iter()
            .filter(|f| incident.contains(f.ts))
            .filter(|f| {
                impaired(f) >= cfg.min_impaired
                    && ratio(impaired(f), f.allowed, f.dropped) >= threshold
            })
            .collect();
        let Some(first) = bad.first() else { continue };
        let dropped: u64 = bad.iter().map(|f| f.dropped).sum();
        let retransmits: u64 = bad.iter().map(|f| f.retransmits).sum();
        let allowed: u64 = bad.iter().map(|f| f.allowed).sum();
        let incident_ratio = ratio(dropped + retransmits, allowed, dropped);
        let mut rules: Vec<String> = bad.iter().filter_map(|f| f.rule.clone()).collect();
        rules.sort();
        rules.dedup();
        // Strength grows with how much of the traffic is hit and how far
        // above its baseline that is.
        let lift = incident_ratio / baseline_ratio.max(0.001);
        let strength =
            (incident_ratio.min(1.0) * 0.5 + (lift / (lift + 20.0)) * 0.5).clamp(0.0, 1.0);
        out.push(EdgeImpairment {
            src,
            dst,
            dst_port,
            device,
            baseline_ratio,
            incident_ratio,
            dropped,
            retransmits,
            allowed,
            onset: first.ts,
            rules,
            strength,
        });
    }
    out.sort_by(|a, b| {
        b.strength
            .total_cmp(&a.strength)
            .then(a.onset.cmp(&b.onset))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(minute: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + minute * 60, 0).unwrap()
    }

    fn flow(minute: i64, src: &str, dropped: u64, retransmits: u64) -> FlowRecord {
        FlowRecord {
            ts: at(minute),
            interval_seconds: 60,
            src_service: src.into(),
            dst_service: "db".into(),
            dst_port: 5432,
            device: Some("fw".into()),
            allowed: 1000 - dropped,
            dropped,
            retransmits,
            rule: (dropped > 0).then(|| "deny-42".to_string()),
        }
    }

    #[test]
    fn a_drop_burst_is_found_with_its_onset_and_rule() {
        let mut flows = Vec::new();
        for m in 0..30 {
            flows.push(flow(
                m,
                "api",
                if m >= 21 { 400 } else { 0 },
                if m >= 21 { 150 } else { 1 },
            ));
            flows.push(flow(m, "web", 0, 1));
        }
        let base = TimeRange {
            start: at(0),
            end: at(15),
        };
        let inc = TimeRange {
            start: at(15),
            end: at(30),
        };
        let found = impairments(&flows, base, inc, &FlowConfig::default());
        assert_eq!(found.len(), 1);
        let edge = &found[0];
        assert_eq!(
            (edge.src.as_str(), edge.device.as_deref()),
            ("api", Some("fw"))
        );
        assert_eq!(edge.onset, at(21));
        assert_eq!(edge.dropped, 400 * 9);
        assert_eq!(edge.rules, vec!["deny-42".to_string()]);
        assert!(edge.strength > 0.6, "{}", edge.strength);
    }

    #[test]
    fn steady_background_loss_is_not_an_impairment() {
        let flows: Vec<FlowRecord> = (0..30).map(|m| flow(m, "api", 20, 10)).collect();
        let base = TimeRange {
            start: at(0),
            end: at(15),
        };
        let inc = TimeRange {
            start: at(15),
            end: at(30),
        };
        assert!(impairments(&flows, base, inc, &FlowConfig::default()).is_empty());
    }
}
