#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Investigations beyond the concurrency cap wait, and start in the order
//! their incidents were created.

mod common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::*;

#[test]
fn investigations_past_the_cap_queue_and_start_in_creation_order() {
    let dir = tempfile::tempdir().unwrap();
    // Each job holds its slot for a second, then exits without a report.
    let config = serde_json::json!({
        "correlation": {"group_wait_ms": 0},
        "runtime": {"max_concurrent": 2, "command": ["/bin/sh", "-c", "cat > /dev/null; sleep 1"]},
    });
    let config = write(&dir.path().join("warden.yaml"), &config.to_string());
    let server = Server::start(&dir.path().join("data"), &config, free_port());
    let base = server.url.clone();
    for i in 0..5 {
        post(
            &format!("{base}/api/v1/incidents"),
            &generic_incident(&format!("queued {i}")),
        );
    }
    // While the first two run, the rest are queued.
    let mut saw_queue = false;
    for _ in 0..40 {
        let metrics = get_text(format!("{base}/metrics"));
        let running: i64 = gauge(&metrics, "warden_jobs_running");
        let queued: i64 = gauge(&metrics, "warden_jobs_queued");
        assert!(running <= 2, "cap exceeded: {running} running");
        if queued > 0 {
            saw_queue = true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        saw_queue,
        "the investigations past the cap were never queued"
    );
    let list = wait_for(&base, Duration::from_secs(30), "all ended", |l| {
        l.len() == 5 && l.iter().all(terminal)
    });
    let incidents = get(&format!("{base}/api/v1/incidents"))["incidents"]
        .as_array()
        .cloned()
        .unwrap();
    let mut by_order: Vec<(usize, DateTime<Utc>, DateTime<Utc>)> = list
        .iter()
        .map(|inv| {
            let title = incidents
                .iter()
                .find(|i| i["id"] == inv["incident_id"])
                .unwrap()["title"]
                .as_str()
                .unwrap();
            let n: usize = title.trim_start_matches("queued ").parse().unwrap();
            let at = |k: &str| inv[k].as_str().unwrap().parse::<DateTime<Utc>>().unwrap();
            (n, at("started_at"), at("finished_at"))
        })
        .collect();
    by_order.sort();
    for w in by_order.windows(2) {
        assert!(
            w[0].1 <= w[1].1,
            "started out of creation order: {by_order:?}"
        );
    }
    // Never more than two at a time: the third started after the first ended.
    for i in 2..by_order.len() {
        let ended_before = by_order[..i]
            .iter()
            .filter(|(_, _, f)| *f <= by_order[i].1)
            .count();
        assert!(
            ended_before >= i - 1,
            "job {i} started with {} still running: {by_order:?}",
            i - ended_before
        );
    }
    drop(server);
}

fn gauge(metrics: &str, name: &str) -> i64 {
    metrics
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
