//! `changes.jsonl`, `network/flows.jsonl` and `security/events.jsonl`.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use warden_core::telemetry::{ChangeRecord, FlowRecord, SecurityEvent, TopologyGraph};

use crate::fleet::Fleet;
use crate::rng::Rng;
use crate::timeline::{
    BUNDLE_AFTER, BUNDLE_BEFORE, FLOW_INTERVAL, FRONT_END_CONFIG_CHANGE, ONSET,
    RECOMMENDATIONS_DEPLOY, SSH_BURST, ramp,
};
use crate::topology::{
    APP_CIDR, BASTION, CHECKOUT, DB_CIDR, FIREWALL, FIREWALL_RULE, FRONT_END, IDENTITY_GATEWAY,
    LOG_CLUSTER, ORDERS_API, ORDERS_DB, ORDERS_DB_IP, POSTGRES_PORT, RECOMMENDATIONS,
};

/// The id of the firewall change, the root cause.
pub(crate) fn firewall_change_id(base: DateTime<Utc>) -> String {
    format!("chg-{}-fw-4821", base.format("%Y%m%d"))
}

pub(crate) fn changes(base: DateTime<Utc>) -> Vec<ChangeRecord> {
    let at = |s: i64| base + TimeDelta::seconds(s);
    let day = base.format("%Y%m%d");
    vec![
        ChangeRecord {
            id: format!("chg-{day}-scale-0112"),
            ts: at(-40 * 60),
            kind: "scale".into(),
            target: LOG_CLUSTER.into(),
            actor: "logging-operator".into(),
            summary: "Scale log-cluster ingest workers 6 -> 8".into(),
            details: json!({"namespace": "logging", "from_replicas": 6, "to_replicas": 8}),
        },
        ChangeRecord {
            id: format!("chg-{day}-deploy-0117"),
            ts: at(RECOMMENDATIONS_DEPLOY),
            kind: "deploy".into(),
            target: RECOMMENDATIONS.into(),
            actor: "argocd".into(),
            summary: "Deploy recommendations v2.13.4 -> v2.14.0".into(),
            details: json!({
                "namespace": "shop",
                "image": "registry.example.internal/shop/recommendations:2.14.0",
                "from_version": "v2.13.4",
                "to_version": "v2.14.0",
                "strategy": "RollingUpdate",
            }),
        },
        ChangeRecord {
            id: firewall_change_id(base),
            ts: base,
            kind: "firewall".into(),
            target: FIREWALL.into(),
            actor: "netops-automation".into(),
            summary: format!(
                "Policy cleanup: rule {FIREWALL_RULE} ({APP_CIDR} -> {DB_CIDR} tcp/{POSTGRES_PORT}) session idle timeout 3600s -> 30s"
            ),
            details: json!({
                "rule": FIREWALL_RULE,
                "action": "modify",
                "source_cidr": APP_CIDR,
                "destination_cidr": DB_CIDR,
                "protocol": "tcp",
                "port": POSTGRES_PORT,
                "before": {"session_idle_timeout_seconds": 3600},
                "after": {"session_idle_timeout_seconds": 30},
                "ticket": "NET-4821",
                "commit": 4821,
            }),
        },
        ChangeRecord {
            id: format!("chg-{day}-config-0121"),
            ts: at(FRONT_END_CONFIG_CHANGE),
            kind: "config".into(),
            target: FRONT_END.into(),
            actor: "sre-oncall".into(),
            summary: "front-end: raise upstream timeout 10s -> 15s".into(),
            details: json!({"namespace": "shop", "key": "UPSTREAM_TIMEOUT", "from": "10s", "to": "15s"}),
        },
    ]
}

/// Packets per minute on each edge at baseline.
fn baseline_packets(from: &str, to: &str) -> u64 {
    match (from, to) {
        (CHECKOUT, ORDERS_DB) => 42_000,
        (ORDERS_API, ORDERS_DB) => 65_000,
        (FRONT_END, _) => 18_000,
        (CHECKOUT, _) => 9_000,
        _ => 24_000,
    }
}

/// One record per minute per edge; drops and retransmits only where the
/// path crosses the firewall, and only once idle sessions start expiring.
pub(crate) fn flows(base: DateTime<Utc>, seed: u64, topology: &TopologyGraph) -> Vec<FlowRecord> {
    let mut rng = Rng::new(seed, "flows");
    let mut out = Vec::new();
    for minute in (-BUNDLE_BEFORE..BUNDLE_AFTER).step_by(FLOW_INTERVAL.unsigned_abs() as usize) {
        for edge in &topology.edges {
            let via_firewall = edge.via.iter().any(|d| d == FIREWALL);
            let normal = baseline_packets(&edge.from, &edge.to) as f64 * (1.0 + rng.noise(0.04));
            let retransmits = rng.range(0, 5) as u64;
            let record = if via_firewall && minute >= ONSET {
                let broken = ramp(minute, 0, 180);
                let dropped = (broken * 7000.0 * (1.0 + rng.noise(0.1))).max(1.0) as u64;
                let extra_retransmits = (broken * 2400.0 * (1.0 + rng.noise(0.1))).max(50.0) as u64;
                FlowRecord {
                    allowed: (normal * (1.0 - 0.3 * broken)) as u64,
                    dropped,
                    retransmits: retransmits + extra_retransmits,
                    ..flow(base, minute, edge, via_firewall)
                }
            } else {
                FlowRecord {
                    allowed: normal as u64,
                    dropped: 0,
                    retransmits,
                    ..flow(base, minute, edge, via_firewall)
                }
            };
            out.push(record);
        }
    }
    out
}

fn flow(
    base: DateTime<Utc>,
    minute: i64,
    edge: &warden_core::telemetry::TopologyEdge,
    via_firewall: bool,
) -> FlowRecord {
    FlowRecord {
        ts: base + TimeDelta::seconds(minute),
        interval_seconds: FLOW_INTERVAL.unsigned_abs() as u32,
        src_service: edge.from.clone(),
        dst_service: edge.to.clone(),
        dst_port: edge.port.unwrap_or(0),
        device: via_firewall.then(|| FIREWALL.to_string()),
        allowed: 0,
        dropped: 0,
        retransmits: 0,
        rule: via_firewall.then(|| FIREWALL_RULE.to_string()),
    }
}

/// The sensor rule names of the fault's security events.
pub const DENY_RULE: &str = "deny-out-of-state";
pub const RESET_RULE: &str = "tcp-reset-burst";

pub(crate) fn security_events(base: DateTime<Utc>, seed: u64, fleet: &Fleet) -> Vec<SecurityEvent> {
    let mut r = Rng::new(seed, "security");
    let at = |ms: i64| base + TimeDelta::milliseconds(ms);
    let mut out = Vec::new();
    // Background: WAF probes against the shop, accepted SSH logins, a TLS check.
    for ms in r.ticks(-BUNDLE_BEFORE, BUNDLE_AFTER, (180_000, 480_000)) {
        out.push(SecurityEvent {
            ts: at(ms),
            source: "waf-edge".into(),
            severity: "low".into(),
            rule: "sqli-probe".into(),
            target: Some(FRONT_END.into()),
            summary: format!(
                "blocked request with SQL keywords in query string from 192.0.2.{}",
                r.range(2, 250)
            ),
        });
    }
    for ms in r.ticks(-BUNDLE_BEFORE, BUNDLE_AFTER, (300_000, 600_000)) {
        out.push(SecurityEvent {
            ts: at(ms),
            source: "auth-bastion".into(),
            severity: "info".into(),
            rule: "ssh-login-accepted".into(),
            target: Some(BASTION.into()),
            summary: format!(
                "publickey login accepted for deploy from 10.0.5.{}",
                r.range(10, 30)
            ),
        });
    }
    out.push(SecurityEvent {
        ts: at(240_000),
        source: "tls-monitor".into(),
        severity: "medium".into(),
        rule: "tls-cert-expiry".into(),
        target: Some(IDENTITY_GATEWAY.into()),
        summary: "certificate for sso.example.internal expires in 6 days".into(),
    });
    // Unrelated: a password-guessing burst on the bastion.
    for ms in r.ticks(SSH_BURST.0, SSH_BURST.1, (1500, 4000)) {
        out.push(SecurityEvent {
            ts: at(ms),
            source: "auth-bastion".into(),
            severity: "high".into(),
            rule: "ssh-bruteforce".into(),
            target: Some(BASTION.into()),
            summary: format!(
                "failed password for invalid user {} from 198.51.100.23",
                r.pick(&["admin", "oracle", "test", "ubuntu"], "admin")
            ),
        });
    }
    // The fault: out-of-state denies and resets between app and db subnets.
    let pods: Vec<(&str, &str)> = fleet
        .pods_of(CHECKOUT)
        .chain(fleet.pods_of(ORDERS_API))
        .map(|p| (p.service, p.ip.as_str()))
        .collect();
    let pick_pod = |r: &mut Rng| {
        pods.get(r.range(0, pods.len() as i64) as usize)
            .copied()
            .unwrap_or((CHECKOUT, "10.10.64.2"))
    };
    for ms in r.ticks(ONSET, BUNDLE_AFTER, (4000, 20000)) {
        let (service, ip) = pick_pod(&mut r);
        out.push(SecurityEvent {
            ts: at(ms),
            source: FIREWALL.into(),
            severity: "medium".into(),
            rule: DENY_RULE.into(),
            target: Some(ORDERS_DB.into()),
            summary: format!(
                "denied tcp {ip}:{} -> {ORDERS_DB_IP}:{POSTGRES_PORT} ({service} -> {ORDERS_DB}): no session, rule {FIREWALL_RULE}",
                r.range(32768, 60999)
            ),
        });
    }
    for ms in r.ticks(ONSET + 30, BUNDLE_AFTER, (45_000, 90_000)) {
        let (service, ip) = pick_pod(&mut r);
        out.push(SecurityEvent {
            ts: at(ms),
            source: "ids-sensor-02".into(),
            severity: "medium".into(),
            rule: RESET_RULE.into(),
            target: Some(service.into()),
            summary: format!(
                "{} TCP resets/min between {ip} ({APP_CIDR}) and {DB_CIDR}:{POSTGRES_PORT}",
                r.range(80, 420)
            ),
        });
    }
    out.sort_by_key(|e| e.ts);
    out
}
