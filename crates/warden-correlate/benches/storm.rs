//! Grouping the demo's alert storm: ~300 distinct alerts across four
//! domains, 79 webhook payloads with Alertmanager's re-sends, plus the
//! unrelated alerts (target: < 50 ms on a 2-core machine).

use std::hint::black_box;

use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use warden_core::Alert;
use warden_correlate::{CorrelationConfig, Correlator, parse_alertmanager};
use warden_demo::Scenario;

fn bench(c: &mut Criterion) {
    let scenario = Scenario::firewall_cascade(warden_demo::default_base(), 42);
    let payloads: Vec<Vec<u8>> = scenario
        .storm()
        .iter()
        .map(|p| serde_json::to_vec(p).unwrap_or_default())
        .collect();
    let config = CorrelationConfig {
        topology: scenario.topology_hints(),
        ..CorrelationConfig::default()
    };
    let parsed: Vec<Vec<Alert>> = payloads
        .iter()
        .map(|p| parse_alertmanager(p).unwrap_or_default())
        .collect();

    c.bench_function("group_demo_storm", |b| {
        b.iter(|| {
            let mut corr = Correlator::new(config.clone());
            let now = Utc::now();
            for batch in &parsed {
                black_box(corr.ingest(batch.clone(), None, &[], now));
            }
            corr.tracked()
        })
    });
    c.bench_function("parse_and_group_demo_storm", |b| {
        b.iter(|| {
            let mut corr = Correlator::new(config.clone());
            let now = Utc::now();
            for p in &payloads {
                let alerts = parse_alertmanager(black_box(p)).unwrap_or_default();
                black_box(corr.ingest(alerts, None, &[], now));
            }
            corr.tracked()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
