//! Mining throughput on one Loghub-2k system (HDFS contents, mining only).

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use warden_logmine::{Miner, MinerConfig};

fn contents() -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/loghub2k");
    warden_logmine::eval::load_system(&dir, "HDFS")
        .map(|rows| rows.into_iter().map(|(_, l)| l.content).collect())
        .unwrap_or_default()
}

fn bench_miner(c: &mut Criterion) {
    let lines = contents();
    let mut group = c.benchmark_group("miner");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("hdfs_2k", |b| {
        b.iter(|| {
            let mut miner = Miner::new(MinerConfig::default());
            for line in &lines {
                black_box(miner.add(line));
            }
            miner.templates().count()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_miner);
criterion_main!(benches);
