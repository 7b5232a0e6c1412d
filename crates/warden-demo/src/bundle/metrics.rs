//! `metrics/*.jsonl`: what Prometheus would have recorded, at 30 s steps.
//!
//! The shapes carry the diagnosis and the traps: pools pinned at their
//! maximum and latency at the pool timeout in the two services behind the
//! firewall, `orders-db` full of sessions idle in transaction while its CPU
//! and server-side query latency stay flat, and drops only at the firewall.
//! `recommendations`, deployed just before, stays normal throughout.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use warden_core::telemetry::Series;

use crate::rng::Rng;
use crate::timeline::{
    BATCH_JOB, BUNDLE_AFTER, BUNDLE_BEFORE, FRONT_END_CONFIG_CHANGE, METRIC_STEP, ONSET, SSH_BURST,
    TIMEOUTS, ramp,
};
use crate::topology::{
    BASTION, BATCH_HOST, CATALOG_DB, CHECKOUT, FIREWALL, FIREWALL_RULE, FRONT_END,
    IDENTITY_GATEWAY, LOG_CLUSTER, ORDERS_API, ORDERS_DB, PAYMENTS, RECOMMENDATIONS,
};

/// `(file, series)` for every metrics file of the bundle.
pub(crate) fn files(base: DateTime<Utc>, seed: u64) -> Vec<(&'static str, Vec<Series>)> {
    let mut g = Gen {
        base,
        rng: Rng::new(seed, "metrics"),
    };
    vec![
        ("metrics/http.jsonl", http(&mut g)),
        ("metrics/db_pool.jsonl", db_pool(&mut g)),
        ("metrics/postgres.jsonl", postgres(&mut g)),
        ("metrics/network.jsonl", network(&mut g)),
        ("metrics/node.jsonl", node(&mut g)),
    ]
}

struct Gen {
    base: DateTime<Utc>,
    rng: Rng,
}

impl Gen {
    /// A series over the bundle window; `value` gets the seconds since T0
    /// and the generator for noise. Values are rounded to keep files small
    /// and never go below zero.
    fn series(
        &mut self,
        metric: &str,
        labels: &[(&str, &str)],
        mut value: impl FnMut(i64, &mut Rng) -> f64,
    ) -> Series {
        let t0 = self.base.timestamp();
        let points = (-BUNDLE_BEFORE..BUNDLE_AFTER)
            .step_by(METRIC_STEP.unsigned_abs() as usize)
            .map(|t| {
                let v = value(t, &mut self.rng).max(0.0);
                (t0 + t, (v * 10_000.0).round() / 10_000.0)
            })
            .collect();
        Series {
            metric: metric.to_string(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            points,
        }
    }
}

/// `(service, requests/s, p99 seconds)` at baseline.
const HTTP_BASELINE: &[(&str, f64, f64)] = &[
    (FRONT_END, 220.0, 0.18),
    (CHECKOUT, 45.0, 0.26),
    (ORDERS_API, 80.0, 0.12),
    (PAYMENTS, 40.0, 0.31),
    (RECOMMENDATIONS, 150.0, 0.09),
    (IDENTITY_GATEWAY, 60.0, 0.05),
];

fn http(g: &mut Gen) -> Vec<Series> {
    let mut out = Vec::new();
    for &(service, rps, p99) in HTTP_BASELINE {
        let behind_firewall = service == CHECKOUT || service == ORDERS_API;
        let labels = [("service", service)];
        out.push(
            g.series("http_request_duration_p99_seconds", &labels, |t, r| {
                let normal = p99 * (1.0 + r.noise(0.06));
                if behind_firewall {
                    // Requests wait for a pooled connection up to the 30 s pool timeout.
                    normal + 29.5 * ramp(t, TIMEOUTS, 240) + r.noise(0.4) * ramp(t, TIMEOUTS, 240)
                } else if service == FRONT_END {
                    // Capped by the front-end's upstream timeout, raised at the config change.
                    let cap = if t >= FRONT_END_CONFIG_CHANGE {
                        15.0
                    } else {
                        10.0
                    };
                    normal + (cap - p99) * ramp(t, 120, 300)
                } else {
                    normal
                }
            }),
        );
        out.push(g.series("http_requests_per_second", &labels, |t, r| {
            let normal = rps * (1.0 + r.noise(0.04));
            if service == PAYMENTS {
                // Fewer checkouts get as far as payment.
                normal * (1.0 - 0.7 * ramp(t, 150, 400))
            } else {
                normal
            }
        }));
        out.push(g.series("http_server_error_ratio", &labels, |t, r| {
            let normal = 0.002 + r.noise(0.0008);
            if behind_firewall {
                normal + 0.55 * ramp(t, POOL_START, 360) + r.noise(0.02) * ramp(t, POOL_START, 360)
            } else if service == FRONT_END {
                normal + 0.4 * ramp(t, 200, 400) + r.noise(0.015) * ramp(t, 200, 400)
            } else {
                normal
            }
        }));
        out.push(g.series("container_cpu_usage_cores", &labels, |_, r| {
            rps / 200.0 + r.noise(0.02)
        }));
    }
    out
}

/// Pool exhaustion shows in metrics from here (slightly before the first
/// "pool exhausted" log line, as gauges lead).
const POOL_START: i64 = 150;

/// `(service, pool max)`.
const POOLS: &[(&str, f64)] = &[
    (CHECKOUT, 50.0),
    (ORDERS_API, 40.0),
    (RECOMMENDATIONS, 20.0),
];

fn db_pool(g: &mut Gen) -> Vec<Series> {
    let mut out = Vec::new();
    for &(service, max) in POOLS {
        let behind_firewall = service != RECOMMENDATIONS;
        let target_db = if behind_firewall {
            ORDERS_DB
        } else {
            CATALOG_DB
        };
        let labels = [("service", service), ("pool", target_db)];
        out.push(g.series("db_pool_max_connections", &labels, |_, _| max));
        out.push(g.series("db_pool_active_connections", &labels, |t, r| {
            let normal = (max * 0.2 + r.noise(1.5)).round().clamp(1.0, max);
            if behind_firewall {
                let filled = normal + (max - normal) * ramp(t, 120, 240);
                filled.round().min(max)
            } else {
                normal
            }
        }));
        out.push(g.series("db_pool_pending_requests", &labels, |t, r| {
            let normal = (r.noise(0.4)).round().max(0.0);
            if behind_firewall {
                (normal + 60.0 * ramp(t, POOL_START, 300) + r.noise(6.0) * ramp(t, POOL_START, 300))
                    .round()
            } else {
                normal
            }
        }));
        out.push(g.series("db_pool_acquire_p95_seconds", &labels, |t, r| {
            let normal = 0.002 + r.noise(0.0004);
            if behind_firewall {
                normal + 30.0 * ramp(t, TIMEOUTS, 240)
            } else {
                normal
            }
        }));
    }
    out
}

fn postgres(g: &mut Gen) -> Vec<Series> {
    let mut out = Vec::new();
    for (db, max, active, idle, commits, p99) in [
        (ORDERS_DB, 200.0, 8.0, 62.0, 420.0, 0.011),
        (CATALOG_DB, 100.0, 5.0, 22.0, 35.0, 0.008),
    ] {
        let affected = db == ORDERS_DB;
        let service = [("service", db)];
        out.push(g.series("pg_settings_max_connections", &service, |_, _| max));
        out.push(g.series(
            "pg_stat_activity_count",
            &[("service", db), ("state", "active")],
            |_, r| (active + r.noise(1.5)).round(),
        ));
        out.push(g.series(
            "pg_stat_activity_count",
            &[("service", db), ("state", "idle")],
            |t, r| {
                let normal = idle + r.noise(2.0);
                if affected {
                    (normal - 17.0 * ramp(t, 120, 360)).round()
                } else {
                    normal.round()
                }
            },
        ));
        out.push(g.series(
            "pg_stat_activity_count",
            &[("service", db), ("state", "idle in transaction")],
            |t, r| {
                // Server-side halves of sessions the firewall silently expired:
                // the server never hears that the client gave up.
                let normal = (1.0 + r.noise(0.6)).round();
                if affected {
                    (normal + 140.0 * ramp(t, 120, 360) + r.noise(2.0) * ramp(t, 120, 360)).round()
                } else {
                    normal
                }
            },
        ));
        out.push(g.series("pg_xact_commit_per_second", &service, |t, r| {
            let normal = commits * (1.0 + r.noise(0.05));
            if affected {
                normal * (1.0 - 0.6 * ramp(t, TIMEOUTS, 300))
            } else {
                normal
            }
        }));
        // Server-side latency is flat: queries that reach the server are fast.
        out.push(g.series("pg_query_duration_p99_seconds", &service, |_, r| {
            p99 * (1.0 + r.noise(0.07))
        }));
    }
    out
}

fn network(g: &mut Gen) -> Vec<Series> {
    let mut out = Vec::new();
    for (src, per_second) in [(CHECKOUT, 120.0), (ORDERS_API, 85.0)] {
        let labels = [
            ("service", FIREWALL),
            ("src_service", src),
            ("dst_service", ORDERS_DB),
            ("rule", FIREWALL_RULE),
        ];
        out.push(
            g.series("firewall_dropped_packets_per_second", &labels, |t, r| {
                if t < ONSET {
                    0.0
                } else {
                    per_second * ramp(t, ONSET - METRIC_STEP, 180) * (1.0 + r.noise(0.1))
                }
            }),
        );
    }
    out.push(g.series(
        "firewall_sessions_active",
        &[("service", FIREWALL)],
        |t, r| {
            // The 30 s idle timeout expires pooled sessions at the change.
            let normal = 5200.0 + r.noise(60.0);
            if t >= 0 {
                (normal - 2100.0 * ramp(t, 0, 90)).round()
            } else {
                normal.round()
            }
        },
    ));
    for (service, _, _) in HTTP_BASELINE {
        let behind_firewall = *service == CHECKOUT || *service == ORDERS_API;
        out.push(g.series(
            "pod_tcp_retransmits_per_second",
            &[("service", service)],
            |t, r| {
                let normal = 0.3 + r.noise(0.15);
                if behind_firewall && t >= ONSET {
                    normal + 45.0 * ramp(t, ONSET - METRIC_STEP, 180) * (1.0 + r.noise(0.1))
                } else {
                    normal
                }
            },
        ));
    }
    out
}

fn node(g: &mut Gen) -> Vec<Series> {
    let mut out = Vec::new();
    for (service, cpu) in [
        (ORDERS_DB, 0.22),
        (CATALOG_DB, 0.15),
        (FIREWALL, 0.31),
        (BATCH_HOST, 0.18),
        (LOG_CLUSTER, 0.35),
        (BASTION, 0.04),
    ] {
        out.push(g.series(
            "node_cpu_utilization_ratio",
            &[("service", service)],
            |t, r| {
                let normal = cpu + r.noise(0.012);
                if service == BATCH_HOST && (BATCH_JOB.0..BATCH_JOB.1).contains(&t) {
                    0.97 + r.noise(0.008)
                } else if service == BASTION && (SSH_BURST.0..SSH_BURST.1).contains(&t) {
                    normal + 0.05
                } else {
                    normal
                }
            },
        ));
    }
    out.push(g.series(
        "node_filesystem_used_ratio",
        &[("service", LOG_CLUSTER), ("mountpoint", "/data")],
        |t, r| 0.84 + 0.06 * ramp(t, -BUNDLE_BEFORE, BUNDLE_AFTER) + r.noise(0.001),
    ));
    out.push(g.series(
        "tls_certificate_expiry_days",
        &[("service", IDENTITY_GATEWAY)],
        |t, _| 6.4 - t as f64 / 86_400.0,
    ));
    out
}
