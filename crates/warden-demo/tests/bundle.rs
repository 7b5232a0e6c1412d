//! The telemetry bundle: format, determinism, and that the evidence of the
//! cascade (and the noise around it) is really in the data.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::OnceLock;

use chrono::TimeDelta;
use tempfile::TempDir;
use warden_core::telemetry::Series;
use warden_demo::{
    APP_CIDR, CHECKOUT, DB_CIDR, DENY_RULE, FIREWALL, FIREWALL_RULE, FRONT_END, INJECTION_TEXT,
    ORDERS_API, ORDERS_DB, PAYMENTS, RECOMMENDATIONS, RESET_RULE, Scenario,
};

use common::{Bundle, base, read_bundle, scenario, secs, tree};

/// Written and parsed once for all tests; parsing is itself a test.
fn bundle() -> &'static Bundle {
    static BUNDLE: OnceLock<Bundle> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let dir = TempDir::new().unwrap();
        scenario().write_bundle(dir.path()).unwrap();
        read_bundle(dir.path())
    })
}

/// Values of a series at or after `from` (seconds since T0) and before `to`.
fn values(s: &Series, from: i64, to: i64) -> Vec<f64> {
    let (from, to) = (base().timestamp() + from, base().timestamp() + to);
    s.points
        .iter()
        .filter(|(t, _)| *t >= from && *t < to)
        .map(|(_, v)| *v)
        .collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::MIN, f64::max)
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::MAX, f64::min)
}

const BEFORE: (i64, i64) = (-30 * 60, 0);
const DURING: (i64, i64) = (5 * 60, 20 * 60);

#[test]
fn the_same_seed_and_base_give_byte_identical_bundle_files() {
    let (a, b, c) = (
        TempDir::new().unwrap(),
        TempDir::new().unwrap(),
        TempDir::new().unwrap(),
    );
    scenario().write_bundle(a.path()).unwrap();
    scenario().write_bundle(b.path()).unwrap();
    Scenario::firewall_cascade(base(), 7)
        .write_bundle(c.path())
        .unwrap();
    let (ta, tb, tc) = (tree(a.path()), tree(b.path()), tree(c.path()));
    assert!(ta.len() >= 20, "{} files", ta.len());
    assert_eq!(ta, tb);
    assert_eq!(ta.keys().collect::<Vec<_>>(), tc.keys().collect::<Vec<_>>());
    assert_ne!(ta, tc, "the seed changes the data");
}

#[test]
fn the_bundle_stays_under_five_megabytes() {
    let dir = TempDir::new().unwrap();
    scenario().write_bundle(dir.path()).unwrap();
    let bytes: usize = tree(dir.path()).values().map(Vec::len).sum();
    assert!(bytes < 5 * 1024 * 1024, "{bytes} bytes");
}

#[test]
fn every_file_parses_back_into_the_core_types_and_fits_the_manifest() {
    let b = bundle();
    let s = scenario();
    assert_eq!(b.manifest.format_version, 1);
    assert!(b.manifest.start <= base() - TimeDelta::minutes(30));
    assert!(b.manifest.end >= base() + TimeDelta::minutes(20));
    assert_eq!(b.topology, s.topology());
    let in_range = |t| t >= b.manifest.start && t < b.manifest.end;

    assert!(b.metrics.len() >= 3);
    for series in b.metrics.values().flatten() {
        let service = series.label("service").unwrap();
        assert!(b.topology.node(service).is_some(), "{service}");
        assert!(series.points.len() >= 100);
        for w in series.points.windows(2) {
            assert!(
                matches!(w[1].0 - w[0].0, 15 | 30),
                "step of {}",
                series.metric
            );
        }
        for (t, v) in &series.points {
            assert!(in_range(chrono::DateTime::from_timestamp(*t, 0).unwrap()));
            assert!(v.is_finite());
        }
    }
    for (service, lines) in &b.logs {
        assert!(b.topology.node(service).is_some(), "{service}");
        assert!(lines.len() > 50, "{service} has {} lines", lines.len());
        for w in lines.windows(2) {
            assert!(w[0].ts <= w[1].ts, "{service}:{} out of order", w[1].line);
        }
        for l in lines {
            assert!(in_range(l.ts), "{service}:{}", l.line);
            assert!(["DEBUG", "INFO", "WARN", "ERROR"].contains(&l.level.as_str()));
        }
    }
    assert!(b.changes.iter().all(|c| in_range(c.ts)));
    assert!(b.flows.iter().all(|f| in_range(f.ts)));
    assert!(b.events.iter().all(|e| in_range(e.ts)));
    assert!(
        b.logs
            .values()
            .flatten()
            .filter(|l| l.level == "INFO")
            .count()
            > 5000,
        "lots of normal traffic"
    );
}

#[test]
fn the_firewall_change_is_recorded_at_t0_with_rule_networks_and_port() {
    let b = bundle();
    let change = b.changes.iter().find(|c| c.kind == "firewall").unwrap();
    assert_eq!(change.id, scenario().expected().root_cause_change_id);
    assert_eq!(change.ts, base());
    assert_eq!(change.target, FIREWALL);
    let details = change.details.to_string();
    for needle in [FIREWALL_RULE, APP_CIDR, DB_CIDR, "5432"] {
        assert!(details.contains(needle), "details lack {needle}: {details}");
    }
}

#[test]
fn drops_appear_only_on_edges_through_the_firewall_and_only_after_the_change() {
    let b = bundle();
    let onset = secs(60);
    for f in &b.flows {
        let via = b
            .topology
            .edges
            .iter()
            .find(|e| e.from == f.src_service && e.to == f.dst_service)
            .unwrap()
            .via
            .contains(&FIREWALL.to_string());
        assert_eq!(f.device.as_deref() == Some(FIREWALL), via);
        if f.dropped > 0 {
            assert!(via && f.ts >= base(), "{f:?}");
        }
        if via && f.ts >= onset {
            assert!(f.dropped > 0 && f.retransmits > 100, "{f:?}");
        }
    }
    let quiet_max = b
        .flows
        .iter()
        .filter(|f| f.device.is_none() || f.ts < base())
        .map(|f| f.retransmits)
        .max()
        .unwrap();
    assert!(quiet_max < 10, "retransmits elsewhere stay at noise level");
    let drops = b.one_series(
        "firewall_dropped_packets_per_second",
        &[("src_service", CHECKOUT)],
    );
    assert_eq!(max(&values(drops, -45 * 60, 60)), 0.0);
    assert!(min(&values(drops, 180, 30 * 60)) > 50.0);
}

#[test]
fn applications_behind_the_firewall_time_out_then_exhaust_their_pools() {
    let b = bundle();
    for (service, pool_max) in [(CHECKOUT, 50.0), (ORDERS_API, 40.0)] {
        let log = b.log(service);
        let first = |needle: &str| log.iter().find(|l| l.message.contains(needle)).unwrap().ts;
        let timeout = first("timed out");
        let exhausted = first("pool exhausted");
        assert!(timeout >= secs(60) && timeout < exhausted, "{service}");
        let n = pool_max as u32;
        assert!(
            log.iter()
                .filter(|l| l.message.contains("pool exhausted"))
                .all(|l| l.message.contains(&format!("active={n}/{n}")))
        );

        let active = b.one_series("db_pool_active_connections", &[("service", service)]);
        assert!(max(&values(active, BEFORE.0, BEFORE.1)) < pool_max * 0.5);
        assert!(
            values(active, 240, 30 * 60).iter().all(|v| *v == pool_max),
            "{service} pinned at max"
        );
    }
    for healthy in [PAYMENTS, RECOMMENDATIONS, FRONT_END, ORDERS_DB] {
        assert!(
            !b.log(healthy)
                .iter()
                .any(|l| l.message.contains("pool exhausted")),
            "{healthy}"
        );
    }
    let reco = b.one_series(
        "db_pool_active_connections",
        &[("service", RECOMMENDATIONS)],
    );
    assert!(
        max(&values(reco, -45 * 60, 30 * 60)) < 20.0,
        "recommendations' pool is fine"
    );
}

#[test]
fn latency_and_errors_rise_only_where_the_cascade_reaches() {
    let b = bundle();
    for service in [CHECKOUT, ORDERS_API, FRONT_END] {
        let p99 = b.one_series("http_request_duration_p99_seconds", &[("service", service)]);
        assert!(
            mean(&values(p99, DURING.0, DURING.1)) > 10.0 * mean(&values(p99, BEFORE.0, BEFORE.1)),
            "{service}"
        );
        let errors = b.one_series("http_server_error_ratio", &[("service", service)]);
        assert!(mean(&values(errors, DURING.0, DURING.1)) > 0.2, "{service}");
        assert!(max(&values(errors, BEFORE.0, BEFORE.1)) < 0.02, "{service}");
    }
    // The recent deploy is a red herring: its service stays normal.
    for service in [RECOMMENDATIONS, PAYMENTS] {
        let p99 = b.one_series("http_request_duration_p99_seconds", &[("service", service)]);
        assert!(
            mean(&values(p99, DURING.0, DURING.1)) < 1.3 * mean(&values(p99, BEFORE.0, BEFORE.1)),
            "{service}"
        );
        let errors = b.one_series("http_server_error_ratio", &[("service", service)]);
        assert!(max(&values(errors, -45 * 60, 30 * 60)) < 0.02, "{service}");
    }
}

#[test]
fn orders_db_fills_with_idle_transactions_while_its_cpu_and_query_latency_stay_flat() {
    let b = bundle();
    let db = [("service", ORDERS_DB)];
    let max_conn = b.one_series("pg_settings_max_connections", &db).points[0].1;
    let states = b.series("pg_stat_activity_count", &db);
    assert_eq!(states.len(), 3);
    let total_at = |t: i64| states.iter().map(|s| values(s, t, t + 30)[0]).sum::<f64>();
    assert!(total_at(-10 * 60) < 0.5 * max_conn);
    assert!(total_at(10 * 60) > 0.9 * max_conn && total_at(10 * 60) <= max_conn);
    let idle_tx = b.one_series(
        "pg_stat_activity_count",
        &[("service", ORDERS_DB), ("state", "idle in transaction")],
    );
    assert!(min(&values(idle_tx, 8 * 60, 30 * 60)) > 100.0);
    for metric in [
        "node_cpu_utilization_ratio",
        "pg_query_duration_p99_seconds",
    ] {
        let s = b.one_series(metric, &db);
        let before = mean(&values(s, BEFORE.0, BEFORE.1));
        assert!(
            max(&values(s, 0, 30 * 60)) < 1.3 * before,
            "{metric} stays flat"
        );
    }
}

#[test]
fn security_sensors_see_denies_and_resets_between_app_and_db_subnets_after_onset() {
    let b = bundle();
    let fault: Vec<_> = b
        .events
        .iter()
        .filter(|e| e.rule == DENY_RULE || e.rule == RESET_RULE)
        .collect();
    assert!(fault.iter().filter(|e| e.rule == DENY_RULE).count() > 50);
    assert!(fault.iter().filter(|e| e.rule == RESET_RULE).count() > 5);
    for e in &fault {
        assert!(e.ts >= secs(60), "{e:?}");
        assert!(
            e.summary.contains("10.10.") && e.summary.contains("10.20.0."),
            "{e:?}"
        );
    }
    assert!(b.log(FIREWALL).iter().any(|l| l.ts >= secs(60)
        && l.message.contains("deny tcp")
        && l.message.contains(":5432")));
}

#[test]
fn the_noise_is_there_to_mislead() {
    let b = bundle();
    let deploy = b.changes.iter().find(|c| c.kind == "deploy").unwrap();
    assert_eq!(
        (deploy.target.as_str(), deploy.ts),
        (RECOMMENDATIONS, secs(-12 * 60))
    );
    let config = b.changes.iter().find(|c| c.kind == "config").unwrap();
    assert!(config.ts >= secs(60 + 24 * 60) && config.ts <= secs(60 + 26 * 60));
    assert!(
        b.events
            .iter()
            .filter(|e| e.rule == "ssh-bruteforce" && e.target.as_deref() == Some("bastion"))
            .count()
            > 20
    );
    let batch_cpu = b.one_series(
        "node_cpu_utilization_ratio",
        &[("service", "batch-reporting")],
    );
    assert!(
        max(&values(batch_cpu, 0, 15 * 60)) > 0.9
            && max(&values(batch_cpu, BEFORE.0, BEFORE.1)) < 0.4
    );
    for healthy in [PAYMENTS, RECOMMENDATIONS, "identity-gateway"] {
        assert!(
            b.log(healthy).iter().any(|l| l.level == "WARN"),
            "{healthy} logs ordinary warnings"
        );
    }
    let injected: Vec<_> = b
        .logs
        .values()
        .flatten()
        .filter(|l| l.message.contains(INJECTION_TEXT))
        .collect();
    assert!(
        !injected.is_empty(),
        "the instruction-like line is present as data"
    );
}
