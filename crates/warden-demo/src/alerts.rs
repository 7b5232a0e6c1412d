//! The alerts the storm carries: about 300 from the one fault, four from
//! unrelated trouble in the same minutes.
//!
//! Alerts are declared as families (one alert rule firing for many pods or
//! label sets) because that is how a real storm looks: a handful of rules,
//! each multiplied by the fleet. `startsAt` follows the cascade: network
//! symptoms first, then application timeouts, then pool exhaustion and 5xx;
//! security sensors fire throughout.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use warden_core::Fingerprint;

use crate::fleet::Fleet;
use crate::rng::Rng;
use crate::topology::{
    self, BASTION, BATCH_HOST, CHECKOUT, FIREWALL, FRONT_END, IDENTITY_GATEWAY, LOG_CLUSTER,
    ORDERS_API, ORDERS_DB, PAYMENTS,
};

/// One alert as Prometheus would send it to Alertmanager.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AlertSpec {
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) annotations: BTreeMap<String, String>,
    pub(crate) starts_at: DateTime<Utc>,
    /// When the condition cleared, if it clears while the storm is replayed.
    pub(crate) ends_at: Option<DateTime<Utc>>,
    /// The rule expression, for `generatorURL`.
    pub(crate) expr: &'static str,
    /// True for the alerts that have nothing to do with the fault.
    pub(crate) unrelated: bool,
}

impl AlertSpec {
    pub(crate) fn alertname(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }

    pub(crate) fn fingerprint(&self) -> Fingerprint {
        Fingerprint::from_labels(&self.labels)
    }
}

type LabelSet = &'static [(&'static str, &'static str)];

enum Targets {
    /// One alert per pod of each service (at most `limit` per service).
    Pods {
        services: &'static [&'static str],
        limit: usize,
    },
    /// One alert per service and label set.
    Labelled {
        services: &'static [&'static str],
        job: &'static str,
        instance: Option<&'static str>,
        variants: &'static [LabelSet],
    },
}

/// One alert rule and everything it fires for.
struct Family {
    alertname: &'static str,
    domain: &'static str,
    severity: &'static str,
    targets: Targets,
    /// Seconds after the firewall change within which its alerts start.
    window: (i64, i64),
    /// `{service}`, `{target}` and `{value}` are filled in per alert.
    summary: &'static str,
    description: &'static str,
    value: (f64, f64),
    expr: &'static str,
    /// How many of its alerts clear again during the storm, and how many
    /// seconds after they started.
    resolves: usize,
    resolve_after: (i64, i64),
}

/// `resolve_after` of families that never resolve.
const NEVER: (i64, i64) = (0, 0);

const APP_DB_CALLERS: &[&str] = &[CHECKOUT, ORDERS_API];
const HTTP_TIERS: &[&str] = &[CHECKOUT, ORDERS_API, FRONT_END];

const FAMILIES: &[Family] = &[
    // --- network: the first symptoms, from about a minute after the change.
    Family {
        alertname: "FirewallSessionDropsHigh",
        domain: "network",
        severity: "critical",
        targets: Targets::Labelled {
            services: &[FIREWALL],
            job: "snmp-firewall",
            instance: Some("fw-core-01.mgmt:161"),
            variants: &[
                &[
                    ("interface", "ae1.210"),
                    ("src_zone", "app-k8s"),
                    ("dst_zone", "db-core"),
                ],
                &[
                    ("interface", "ae1.211"),
                    ("src_zone", "app-k8s"),
                    ("dst_zone", "db-core"),
                ],
                &[
                    ("interface", "ae2.210"),
                    ("src_zone", "app-k8s"),
                    ("dst_zone", "db-core"),
                ],
                &[
                    ("interface", "ae2.211"),
                    ("src_zone", "app-k8s"),
                    ("dst_zone", "db-core"),
                ],
            ],
        },
        window: (60, 120),
        summary: "{service} is dropping out-of-state packets on {target}",
        description: "{service} dropped {value} packets/s without a matching session on {target} over the last 2m (threshold 50/s).",
        value: (180.0, 900.0),
        expr: "rate(fw_session_drops_total[2m]) > 50",
        resolves: 0,
        resolve_after: NEVER,
    },
    Family {
        alertname: "TcpRetransmitsHigh",
        domain: "network",
        severity: "warning",
        targets: Targets::Pods {
            services: APP_DB_CALLERS,
            limit: usize::MAX,
        },
        window: (70, 200),
        summary: "TCP retransmits high on {target}",
        description: "Pod {target} retransmitted {value} segments/s towards 10.20.0.11:5432 over the last 5m (threshold 5/s).",
        value: (20.0, 140.0),
        expr: "rate(pod_netstat_tcp_retrans_segs_total{peer_port=\"5432\"}[5m]) > 5",
        resolves: 0,
        resolve_after: NEVER,
    },
    Family {
        alertname: "TcpStalledSockets",
        domain: "network",
        severity: "warning",
        targets: Targets::Pods {
            services: APP_DB_CALLERS,
            limit: usize::MAX,
        },
        window: (90, 240),
        summary: "Stalled TCP sockets on {target}",
        description: "Pod {target} has {value} sockets with unacknowledged data older than 30s.",
        value: (4.0, 40.0),
        expr: "pod_tcp_sockets_stalled > 3",
        resolves: 4,
        resolve_after: (480, 720),
    },
    Family {
        alertname: "SyntheticSessionProbeFailed",
        domain: "network",
        severity: "warning",
        targets: Targets::Labelled {
            services: &[ORDERS_DB],
            job: "blackbox-session",
            instance: Some("10.20.0.11:5432"),
            variants: &[
                &[("probe", "k8s-node-pool-a")],
                &[("probe", "k8s-node-pool-b")],
                &[("probe", "k8s-node-pool-c")],
                &[("probe", "dc1-probe")],
                &[("probe", "dc2-probe")],
                &[("probe", "dc3-probe")],
            ],
        },
        window: (80, 180),
        summary: "Long-lived session probe to orders-db failing from {target}",
        description: "A persistent TCP session from probe {target} to orders-db:5432 stopped answering after {value}s idle.",
        value: (30.0, 60.0),
        expr: "probe_session_success{job=\"blackbox-session\"} == 0",
        resolves: 0,
        resolve_after: NEVER,
    },
    // --- application: timeouts, then latency and 5xx.
    Family {
        alertname: "DatabaseQueryTimeouts",
        domain: "application",
        severity: "warning",
        targets: Targets::Pods {
            services: APP_DB_CALLERS,
            limit: usize::MAX,
        },
        window: (90, 210),
        summary: "Database query timeouts on {target}",
        description: "{target} saw {value} query timeouts/min against orders-db over the last 2m.",
        value: (5.0, 60.0),
        expr: "rate(db_query_timeouts_total[2m]) * 60 > 2",
        resolves: 0,
        resolve_after: NEVER,
    },
    Family {
        alertname: "HighRequestLatencyP99",
        domain: "application",
        severity: "critical",
        targets: Targets::Pods {
            services: HTTP_TIERS,
            limit: usize::MAX,
        },
        window: (150, 330),
        summary: "p99 latency high on {target}",
        description: "p99 request latency of {target} is {value}s over the last 5m (threshold 2s).",
        value: (4.0, 30.0),
        expr: "histogram_quantile(0.99, sum by (le, pod) (rate(http_server_request_duration_seconds_bucket[5m]))) > 2",
        resolves: 0,
        resolve_after: NEVER,
    },
    Family {
        alertname: "Http5xxRateHigh",
        domain: "application",
        severity: "critical",
        targets: Targets::Pods {
            services: HTTP_TIERS,
            limit: usize::MAX,
        },
        window: (200, 420),
        summary: "5xx responses high on {target}",
        description: "{value}% of requests served by {target} failed with 5xx over the last 5m (threshold 5%).",
        value: (12.0, 70.0),
        expr: "sum by (pod) (rate(http_server_requests_total{code=~\"5..\"}[5m])) / sum by (pod) (rate(http_server_requests_total[5m])) > 0.05",
        resolves: 0,
        resolve_after: NEVER,
    },
    Family {
        alertname: "ReadinessProbeFailing",
        domain: "application",
        severity: "warning",
        targets: Targets::Pods {
            services: APP_DB_CALLERS,
            limit: usize::MAX,
        },
        window: (240, 420),
        summary: "Readiness probe failing for {target}",
        description: "Pod {target} failed {value} consecutive readiness probes (/ready checks the database pool).",
        value: (3.0, 12.0),
        expr: "sum by (pod) (increase(prober_probe_total{probe_type=\"Readiness\",result=\"failed\"}[2m])) > 2",
        resolves: 2,
        resolve_after: (480, 720),
    },
    Family {
        alertname: "ContainerRestarting",
        domain: "application",
        severity: "warning",
        targets: Targets::Pods {
            services: &[CHECKOUT],
            limit: 6,
        },
        window: (420, 600),
        summary: "Container restarting in {target}",
        description: "Pod {target} restarted {value} times in 10m after failing its liveness probe.",
        value: (1.0, 4.0),
        expr: "increase(kube_pod_container_status_restarts_total[10m]) > 0",
        resolves: 0,
        resolve_after: NEVER,
    },
    Family {
        alertname: "SloErrorBudgetBurn",
        domain: "application",
        severity: "critical",
        targets: Targets::Labelled {
            services: HTTP_TIERS,
            job: "slo-recording-rules",
            instance: None,
            variants: &[&[("burn_window", "1h")], &[("burn_window", "6h")]],
        },
        window: (300, 480),
        summary: "{service} is burning its error budget",
        description: "{service} burns its 30-day availability error budget at {value}x over the {target} window.",
        value: (14.5, 60.0),
        expr: "slo:error_budget_burn_rate > 14.4",
        resolves: 0,
        resolve_after: NEVER,
    },
    Family {
        alertname: "UpstreamTimeouts",
        domain: "application",
        severity: "warning",
        targets: Targets::Pods {
            services: &[FRONT_END],
            limit: usize::MAX,
        },
        window: (240, 400),
        summary: "Upstream timeouts from {target}",
        description: "{target} timed out on {value} calls/min to checkout-api and orders-api (timeout 10s).",
        value: (10.0, 120.0),
        expr: "rate(upstream_request_timeouts_total[2m]) * 60 > 5",
        resolves: 0,
        resolve_after: NEVER,
    },
    Family {
        alertname: "RequestRateDrop",
        domain: "application",
        severity: "warning",
        targets: Targets::Pods {
            services: &[PAYMENTS],
            limit: usize::MAX,
        },
        window: (300, 480),
        summary: "Request rate dropped on {target}",
        description: "{target} receives {value}% of its usual request rate (checkout traffic fell).",
        value: (15.0, 45.0),
        expr: "sum by (pod) (rate(http_server_requests_total[5m])) < 0.5 * sum by (pod) (rate(http_server_requests_total[5m] offset 1d))",
        resolves: 0,
        resolve_after: NEVER,
    },
    // --- database: the pools run dry, the server fills with stale sessions.
    Family {
        alertname: "DbConnectionErrors",
        domain: "database",
        severity: "warning",
        targets: Targets::Pods {
            services: APP_DB_CALLERS,
            limit: usize::MAX,
        },
        window: (120, 300),
        summary: "Database connection errors on {target}",
        description: "{target} reports {value} broken connections/min to orders-db (read timed out, connection reset).",
        value: (3.0, 40.0),
        expr: "rate(db_connection_errors_total[2m]) * 60 > 1",
        resolves: 0,
        resolve_after: NEVER,
    },
    Family {
        alertname: "DbConnectionAcquireSlow",
        domain: "database",
        severity: "warning",
        targets: Targets::Pods {
            services: APP_DB_CALLERS,
            limit: usize::MAX,
        },
        window: (150, 300),
        summary: "Slow connection acquisition on {target}",
        description: "p95 time to acquire a pooled connection on {target} is {value}s (threshold 1s).",
        value: (2.0, 30.0),
        expr: "histogram_quantile(0.95, rate(db_pool_acquire_seconds_bucket[5m])) > 1",
        resolves: 0,
        resolve_after: NEVER,
    },
    Family {
        alertname: "DbPoolPendingRequestsHigh",
        domain: "database",
        severity: "warning",
        targets: Targets::Pods {
            services: APP_DB_CALLERS,
            limit: usize::MAX,
        },
        window: (170, 320),
        summary: "Requests queueing for database connections on {target}",
        description: "{value} requests wait for a database connection on {target}.",
        value: (10.0, 80.0),
        expr: "db_pool_pending_requests > 5",
        resolves: 0,
        resolve_after: NEVER,
    },
    Family {
        alertname: "DbConnectionPoolExhausted",
        domain: "database",
        severity: "critical",
        targets: Targets::Pods {
            services: APP_DB_CALLERS,
            limit: usize::MAX,
        },
        window: (180, 330),
        summary: "Database connection pool exhausted on {target}",
        description: "Every pooled connection of {target} is in use for {value}s; new requests wait or fail.",
        value: (60.0, 240.0),
        expr: "db_pool_active_connections >= db_pool_max_connections",
        resolves: 0,
        resolve_after: NEVER,
    },
    Family {
        alertname: "PostgresConnectionsNearMax",
        domain: "database",
        severity: "critical",
        targets: Targets::Labelled {
            services: &[ORDERS_DB],
            job: "postgres-exporter",
            instance: Some("orders-db-01:9187"),
            variants: &[&[("datname", "orders")], &[("datname", "orders_reporting")]],
        },
        window: (360, 480),
        summary: "orders-db is close to max_connections",
        description: "orders-db uses {value}% of max_connections=200 (database {target}).",
        value: (92.0, 99.0),
        expr: "sum(pg_stat_activity_count) / pg_settings_max_connections > 0.9",
        resolves: 0,
        resolve_after: NEVER,
    },
    Family {
        alertname: "PostgresIdleInTransaction",
        domain: "database",
        severity: "warning",
        targets: Targets::Labelled {
            services: &[ORDERS_DB],
            job: "postgres-exporter",
            instance: Some("orders-db-01:9187"),
            variants: &[
                &[("datname", "orders"), ("usename", "checkout_svc")],
                &[("datname", "orders"), ("usename", "orders_svc")],
                &[("datname", "orders_reporting"), ("usename", "checkout_svc")],
                &[("datname", "orders_reporting"), ("usename", "orders_svc")],
            ],
        },
        window: (240, 420),
        summary: "Sessions idle in transaction on orders-db ({target})",
        description: "{value} sessions of {target} have been idle in transaction for more than 60s.",
        value: (20.0, 70.0),
        expr: "pg_stat_activity_count{state=\"idle in transaction\"} > 10",
        resolves: 0,
        resolve_after: NEVER,
    },
    Family {
        alertname: "PostgresLongRunningTransactions",
        domain: "database",
        severity: "warning",
        targets: Targets::Labelled {
            services: &[ORDERS_DB],
            job: "postgres-exporter",
            instance: Some("orders-db-01:9187"),
            variants: &[&[("usename", "checkout_svc")], &[("usename", "orders_svc")]],
        },
        window: (360, 480),
        summary: "Long-running transactions on orders-db ({target})",
        description: "The oldest open transaction of {target} is {value}s old.",
        value: (300.0, 600.0),
        expr: "pg_stat_activity_max_tx_duration > 300",
        resolves: 0,
        resolve_after: NEVER,
    },
    // --- security: sensors see the denies and resets throughout.
    Family {
        alertname: "FirewallDenyRateHigh",
        domain: "security",
        severity: "warning",
        targets: Targets::Labelled {
            services: &[FIREWALL],
            job: "firewall-logs",
            instance: Some("fw-core-01.mgmt:514"),
            variants: &[
                &[
                    ("policy", "APP-DB-PG-5432"),
                    ("src_zone", "app-k8s"),
                    ("reason", "no-session"),
                ],
                &[
                    ("policy", "APP-DB-PG-5432"),
                    ("src_zone", "app-k8s"),
                    ("reason", "tcp-out-of-state"),
                ],
                &[
                    ("policy", "default-deny"),
                    ("src_zone", "app-k8s"),
                    ("reason", "no-session"),
                ],
                &[
                    ("policy", "default-deny"),
                    ("src_zone", "app-k8s"),
                    ("reason", "tcp-out-of-state"),
                ],
            ],
        },
        window: (75, 200),
        summary: "Deny rate high on {service} ({target})",
        description: "{service} denied {value} packets/s from 10.10.0.0/16 to 10.20.0.0/24 ({target}).",
        value: (60.0, 400.0),
        expr: "rate(fw_denied_packets_total[5m]) > 20",
        resolves: 0,
        resolve_after: NEVER,
    },
    Family {
        alertname: "TcpResetStorm",
        domain: "security",
        severity: "warning",
        targets: Targets::Pods {
            services: APP_DB_CALLERS,
            limit: usize::MAX,
        },
        window: (100, 900),
        summary: "Burst of TCP resets for {target}",
        description: "The IDS saw {value} TCP RSTs/min between {target} and 10.20.0.0/24:5432.",
        value: (40.0, 400.0),
        expr: "rate(ids_tcp_resets_total[2m]) * 60 > 30",
        resolves: 0,
        resolve_after: NEVER,
    },
    Family {
        alertname: "IdsUnusualSessionTeardown",
        domain: "security",
        severity: "info",
        targets: Targets::Labelled {
            services: &[ORDERS_DB],
            job: "ids-sensor",
            instance: Some("ids-sensor-02:9100"),
            variants: &[
                &[("listener", "10.20.0.11:5432")],
                &[("listener", "10.20.0.12:5432")],
            ],
        },
        window: (90, 600),
        summary: "Unusual session teardown pattern at {target}",
        description: "{value} sessions to {target} ended without FIN in 5m, far above the baseline.",
        value: (100.0, 900.0),
        expr: "rate(ids_sessions_aborted_total[5m]) * 300 > 50",
        resolves: 0,
        resolve_after: NEVER,
    },
    Family {
        alertname: "WafUpstreamErrorSpike",
        domain: "security",
        severity: "info",
        targets: Targets::Pods {
            services: &[FRONT_END],
            limit: usize::MAX,
        },
        window: (260, 900),
        summary: "WAF sees upstream errors behind {target}",
        description: "The WAF in front of {target} logged {value} upstream errors/min (no attack signature matched).",
        value: (30.0, 300.0),
        expr: "rate(waf_upstream_errors_total[2m]) * 60 > 20",
        resolves: 0,
        resolve_after: NEVER,
    },
];

/// The fault's alerts, in declaration order.
pub(crate) fn fault_alerts(base: DateTime<Utc>, seed: u64, fleet: &Fleet) -> Vec<AlertSpec> {
    build(FAMILIES, base, &mut Rng::new(seed, "alerts"), fleet)
}

fn build(families: &[Family], base: DateTime<Utc>, rng: &mut Rng, fleet: &Fleet) -> Vec<AlertSpec> {
    let mut alerts = Vec::new();
    for family in families {
        let first = alerts.len();
        for target in targets(family, fleet) {
            let value = rng.between(family.value.0, family.value.1);
            let offset = rng.range(family.window.0, family.window.1);
            let starts_at =
                base + TimeDelta::seconds(offset) + TimeDelta::milliseconds(rng.range(0, 1000));
            alerts.push(render(family, &target, value, starts_at));
        }
        // Resolve a few of the family, chosen by the seed.
        let mut resolved = 0;
        let count = alerts.len() - first;
        while resolved < family.resolves.min(count) {
            let i = first + rng.range(0, count as i64) as usize;
            if let Some(alert) = alerts.get_mut(i).filter(|a| a.ends_at.is_none()) {
                let after = rng.range(family.resolve_after.0, family.resolve_after.1);
                alert.ends_at = Some(alert.starts_at + TimeDelta::seconds(after));
                resolved += 1;
            }
        }
    }
    alerts
}

/// Whom one family's alerts are about.
struct Target {
    service: &'static str,
    /// Pod name, or the variant's label values joined by `/`.
    name: String,
    labels: Vec<(String, String)>,
}

fn targets(family: &Family, fleet: &Fleet) -> Vec<Target> {
    match &family.targets {
        Targets::Pods { services, limit } => services
            .iter()
            .flat_map(|&service| {
                fleet.pods_of(service).take(*limit).map(move |pod| Target {
                    service,
                    name: pod.name.clone(),
                    labels: vec![
                        ("job".into(), service.to_string()),
                        ("pod".into(), pod.name.clone()),
                        (
                            "instance".into(),
                            format!("{}:{}", pod.ip, topology::HTTP_PORT),
                        ),
                    ],
                })
            })
            .collect(),
        Targets::Labelled {
            services,
            job,
            instance,
            variants,
        } => services
            .iter()
            .flat_map(|&service| {
                variants.iter().map(move |variant| {
                    let mut labels: Vec<(String, String)> = variant
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    labels.push(("job".into(), job.to_string()));
                    if let Some(instance) = instance {
                        labels.push(("instance".into(), instance.to_string()));
                    }
                    Target {
                        service,
                        name: variant
                            .iter()
                            .map(|(_, v)| *v)
                            .collect::<Vec<_>>()
                            .join("/"),
                        labels,
                    }
                })
            })
            .collect(),
    }
}

fn render(family: &Family, target: &Target, value: f64, starts_at: DateTime<Utc>) -> AlertSpec {
    let fill = |template: &str| {
        template
            .replace("{service}", target.service)
            .replace("{target}", &target.name)
            .replace("{value}", &format!("{value:.1}"))
    };
    let mut labels = BTreeMap::from([
        ("alertname".to_string(), family.alertname.to_string()),
        ("severity".to_string(), family.severity.to_string()),
        ("domain".to_string(), family.domain.to_string()),
        ("service".to_string(), target.service.to_string()),
    ]);
    if let Some(ns) = topology::namespace_of(target.service) {
        labels.insert("namespace".into(), ns.to_string());
    }
    labels.extend(target.labels.iter().cloned());
    AlertSpec {
        labels,
        annotations: BTreeMap::from([
            ("summary".to_string(), fill(family.summary)),
            ("description".to_string(), fill(family.description)),
        ]),
        starts_at,
        ends_at: None,
        expr: family.expr,
        unrelated: false,
    }
}

/// Four alerts from trouble that has nothing to do with the fault, raised
/// in the same minutes on islands of the topology.
const UNRELATED: &[Family] = &[
    Family {
        alertname: "HostCpuSaturated",
        domain: "application",
        severity: "warning",
        targets: Targets::Labelled {
            services: &[BATCH_HOST],
            job: "node-exporter",
            instance: Some("batch-report-01:9100"),
            variants: &[&[]],
        },
        window: (150, 151),
        summary: "CPU saturated on batch-report-01",
        description: "batch-report-01 has run at {value}% CPU for 5m (the nightly revenue report job is running).",
        value: (96.0, 98.0),
        expr: "1 - avg by (instance) (rate(node_cpu_seconds_total{mode=\"idle\"}[5m])) > 0.9",
        // The report job finishes and the alert clears.
        resolves: 1,
        resolve_after: (690, 691),
    },
    Family {
        alertname: "TlsCertificateExpiringSoon",
        domain: "security",
        severity: "warning",
        targets: Targets::Labelled {
            services: &[IDENTITY_GATEWAY],
            job: "blackbox-tls",
            instance: Some("sso.example.internal:443"),
            variants: &[&[("pod", "identity-gateway-6c9b7d8f4-q2xkz")]],
        },
        window: (240, 241),
        summary: "TLS certificate of sso.example.internal expires in 6 days",
        description: "The certificate served by identity-gateway for sso.example.internal expires in {value} days (threshold 7 days).",
        value: (6.3, 6.5),
        expr: "probe_ssl_earliest_cert_expiry - time() < 7 * 86400",
        resolves: 0,
        resolve_after: NEVER,
    },
    Family {
        alertname: "SshLoginFailuresBurst",
        domain: "security",
        severity: "warning",
        targets: Targets::Labelled {
            services: &[BASTION],
            job: "auth-logs",
            instance: Some("bastion-01:22"),
            variants: &[&[]],
        },
        window: (300, 301),
        summary: "Burst of failed SSH logins on bastion-01",
        description: "bastion-01 logged {value} failed SSH logins from 198.51.100.23 in 5m for users admin, oracle, test.",
        value: (180.0, 240.0),
        expr: "sum by (instance) (increase(sshd_failed_logins_total[5m])) > 50",
        resolves: 0,
        resolve_after: NEVER,
    },
    Family {
        alertname: "DiskWillFillSoon",
        domain: "application",
        severity: "warning",
        targets: Targets::Labelled {
            services: &[LOG_CLUSTER],
            job: "node-exporter",
            instance: Some("log-cluster-data-2:9100"),
            variants: &[&[("pod", "log-cluster-data-2"), ("mountpoint", "/data")]],
        },
        window: (420, 421),
        summary: "Disk /data on log-cluster-data-2 will fill within 4 hours",
        description: "/data on log-cluster-data-2 is {value}% full; at its current growth it fills in about 3.5 hours.",
        value: (87.0, 89.0),
        expr: "predict_linear(node_filesystem_avail_bytes{mountpoint=\"/data\"}[1h], 4 * 3600) < 0",
        resolves: 0,
        resolve_after: NEVER,
    },
];

pub(crate) fn unrelated_alerts(base: DateTime<Utc>, seed: u64, fleet: &Fleet) -> Vec<AlertSpec> {
    let mut alerts = build(UNRELATED, base, &mut Rng::new(seed, "unrelated"), fleet);
    for alert in &mut alerts {
        alert.unrelated = true;
    }
    alerts
}
