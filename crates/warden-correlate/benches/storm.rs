//! Grouping a 300-alert storm (target: < 50 ms on a 2-core machine).

use std::collections::BTreeMap;
use std::hint::black_box;

use chrono::{Duration, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use warden_core::{Alert, AlertStatus, Fingerprint, TopologyHint};
use warden_correlate::{CorrelationConfig, Correlator};

fn storm() -> Vec<Alert> {
    let base = Utc.with_ymd_and_hms(2026, 11, 28, 2, 0, 0).single().unwrap_or_default();
    let services = [
        ("fw-core-01", None, "network"),
        ("checkout-api", Some("shop"), "application"),
        ("orders-db", Some("shop-data"), "database"),
        ("frontend", Some("shop"), "application"),
        ("ids-sensor", None, "security"),
    ];
    (0..300)
        .map(|i| {
            let (svc, ns, domain) = services[i % services.len()];
            let mut labels = BTreeMap::from([
                ("alertname".to_string(), format!("Alert{}", i / 5)),
                ("service".to_string(), svc.to_string()),
                ("domain".to_string(), domain.to_string()),
                ("pod".to_string(), format!("{svc}-{i}")),
            ]);
            if let Some(ns) = ns {
                labels.insert("namespace".into(), ns.into());
            }
            Alert {
                fingerprint: Fingerprint::from_labels(&labels),
                status: AlertStatus::Firing,
                labels,
                annotations: BTreeMap::new(),
                starts_at: base + Duration::seconds(i as i64),
                ends_at: None,
                generator_url: None,
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let edge = |a: &str, b: &str| TopologyHint { from: a.into(), to: b.into() };
    let config = CorrelationConfig {
        topology: vec![
            edge("frontend", "checkout-api"),
            edge("checkout-api", "fw-core-01"),
            edge("fw-core-01", "orders-db"),
            edge("ids-sensor", "fw-core-01"),
        ],
        ..CorrelationConfig::default()
    };
    let alerts = storm();
    c.bench_function("group_300_alert_storm", |b| {
        b.iter(|| {
            let mut corr = Correlator::new(config.clone());
            let out = corr.ingest(black_box(alerts.clone()), None, &[], Utc::now());
            black_box(out.created.len())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
