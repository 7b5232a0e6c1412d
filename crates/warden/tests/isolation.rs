#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! A runaway investigation cannot starve or crash another one or the
//! control plane: a memory hog and an endless loop are killed and recorded
//! with the right reason while a normal investigation beside them succeeds.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

#[test]
fn a_memory_hog_and_a_runaway_loop_are_killed_while_a_normal_investigation_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bundle, _) = demo_bundle(dir.path(), 3);
    let wrapper = write(&dir.path().join("job.sh"), MISBEHAVING_JOB);
    let config = serde_json::json!({
        "correlation": {"group_wait_ms": 0},
        "planner": {"simple": {
            "memory_bytes": 128 * 1024 * 1024, "cpu_millis": 500, "max_processes": 32,
            "deadline_seconds": 6, "depth_budget": 8, "cost_budget_usd": 0.5
        }},
        "runtime": {"max_concurrent": 4, "command": ["/bin/sh", wrapper, WARDEN]},
        "agent": {"data_sources": [{"kind": "bundle", "path": bundle}]},
    });
    let config = write(&dir.path().join("warden.yaml"), &config.to_string());
    let server = Server::start(&dir.path().join("data"), &config, free_port());
    let base = server.url.clone();

    for title in ["hog memory", "spin forever", "normal check"] {
        post(
            &format!("{base}/api/v1/incidents"),
            &generic_incident(title),
        );
    }

    // The control plane answers throughout.
    let start = Instant::now();
    let mut list;
    loop {
        let health = client().get(format!("{base}/healthz")).send().unwrap();
        assert!(health.status().is_success());
        list = investigations(&base);
        if list.len() == 3 && list.iter().all(terminal) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{list:#?}");
        std::thread::sleep(Duration::from_millis(200));
    }

    let incidents = get(&format!("{base}/api/v1/incidents"))["incidents"]
        .as_array()
        .cloned()
        .unwrap();
    let state_of = |title: &str| -> Value {
        let inc = incidents.iter().find(|i| i["title"] == title).unwrap();
        list.iter().find(|i| i["incident_id"] == inc["id"]).unwrap()["state"].clone()
    };
    let hog = state_of("hog memory");
    assert_eq!(hog["state"], "failed", "{hog}");
    assert_eq!(hog["reason"], "out_of_memory", "{hog}");
    let spin = state_of("spin forever");
    assert_eq!(spin["state"], "timed_out", "{spin}");
    let normal = state_of("normal check");
    assert_eq!(normal["state"], "succeeded", "{normal}");

    let metrics = get_text(format!("{base}/metrics"));
    assert!(
        metrics.contains(
            r#"warden_investigations_failed_total{complexity="simple",reason="out_of_memory"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"warden_investigations_failed_total{complexity="simple",reason="deadline"} 1"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains("warden_jobs_running 0"), "{metrics}");
    drop(server);
}
