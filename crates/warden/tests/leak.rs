#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Secrets through the whole embedded stack: stored with `warden secrets`,
//! issued per investigation, read only for the domains its plan allows,
//! revoked when it ends — and never written anywhere in the clear.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::Value;

fn secrets(data: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut argv: Vec<std::ffi::OsString> = vec!["secrets".into()];
    argv.extend(args.iter().map(Into::into));
    argv.extend(["--data-dir".into(), data.as_os_str().to_owned()]);
    let out = run_warden(&argv, stdin);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn scan_files(dir: &Path, needles: &[String], hits: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            scan_files(&path, needles, hits);
        } else if let Ok(bytes) = std::fs::read(&path) {
            let text = String::from_utf8_lossy(&bytes);
            for n in needles {
                if text.contains(n.as_str()) {
                    hits.push(format!("{} contains a sentinel", path.display()));
                }
            }
        }
    }
}

#[test]
fn secrets_are_scoped_per_investigation_revoked_at_the_end_and_never_leak() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let default_domains = [
        ("network-monitoring", "agent/data/network-monitoring"),
        ("application-metrics", "agent/data/application-metrics"),
        ("log-aggregation", "agent/data/log-aggregation"),
        ("database", "agent/data/database"),
        ("security-events", "agent/data/security-events"),
        ("llm-inference", "agent/data/llm/inference"),
    ];
    let run = format!("{:x}", std::process::id() as u64 * 2654435761);
    let mut sentinels = Vec::new();
    for (name, path) in default_domains {
        let sentinel = format!("SENTINEL-{run}-{name}");
        let (ok, _, err) = secrets(&data, &["put", path], &format!("{sentinel}\n"));
        assert!(ok, "put {path}: {err}");
        sentinels.push(sentinel);
    }
    // An empty value is refused and stores nothing.
    let (ok, _, err) = secrets(&data, &["put", "agent/data/empty"], "");
    assert!(!ok && err.contains("empty"), "{err}");
    // Rotation: the next job reads the new value.
    let rotated = format!("SENTINEL-{run}-rotated");
    let (ok, _, err) = secrets(
        &data,
        &["rotate", "agent/data/network-monitoring"],
        &rotated,
    );
    assert!(ok, "{err}");
    sentinels.push(rotated);
    let (ok, listed, _) = secrets(&data, &["list"], "");
    assert!(ok);
    assert!(
        listed.contains("agent/data/network-monitoring\tversion 2"),
        "{listed}"
    );
    assert!(!listed.contains("agent/data/empty"), "{listed}");

    let (scenario, bundle, topology) = demo_bundle(dir.path(), 11);
    let wrapper = write(&dir.path().join("job.sh"), MISBEHAVING_JOB);
    let config = serde_json::json!({
        "correlation": {"topology": topology, "group_wait_ms": 1000},
        "planner": {"simple": {
            "memory_bytes": 128 * 1024 * 1024, "cpu_millis": 500, "max_processes": 32,
            "deadline_seconds": 20, "depth_budget": 8, "cost_budget_usd": 0.5
        }},
        "runtime": {"command": ["/bin/sh", wrapper, WARDEN]},
        "agent": {"data_sources": [{"kind": "bundle", "path": bundle}]},
    });
    let config = write(&dir.path().join("warden.yaml"), &config.to_string());
    let server = Server::start(&data, &config, free_port());
    let base = server.url.clone();

    for payload in scenario.storm() {
        post(&format!("{base}/api/v1/alerts"), &payload);
    }
    // A one-domain incident: its identity must not cover the others.
    post(
        &format!("{base}/api/v1/incidents"),
        &serde_json::json!({"title": "db only", "alerts": [{"labels": {"alertname": "ReplicaLag", "domain": "database", "service": "ledger-db", "namespace": "ledger"}}]}),
    );
    post(
        &format!("{base}/api/v1/incidents"),
        &generic_incident("hog memory"),
    );
    let expected = scenario.expected();
    let list = wait_for(&base, Duration::from_secs(120), "all ended", |l| {
        l.len() == 3 + expected.unrelated_alerts && l.iter().all(terminal)
    });

    // Collect every API response a user could fetch.
    let mut responses = Vec::new();
    for path in [
        "/api/v1/incidents",
        "/api/v1/investigations",
        "/metrics",
        "/healthz",
    ] {
        responses.push(
            client()
                .get(format!("{base}{path}"))
                .send()
                .unwrap()
                .text()
                .unwrap(),
        );
    }
    for inv in &list {
        let id = inv["id"].as_str().unwrap();
        for suffix in ["", "/report", "/logs"] {
            responses.push(
                client()
                    .get(format!("{base}/api/v1/investigations/{id}{suffix}"))
                    .send()
                    .unwrap()
                    .text()
                    .unwrap(),
            );
        }
    }
    let incidents = get(&format!("{base}/api/v1/incidents"))["incidents"]
        .as_array()
        .cloned()
        .unwrap();
    // Revocation follows the end of each investigation within moments.
    let leases = data.join("secrets").join("leases");
    let all_revoked = || {
        std::fs::read_dir(&leases).unwrap().all(|e| {
            let lease: Value =
                serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap();
            lease["revoked"] == true
        })
    };
    for _ in 0..50 {
        if all_revoked() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(server);

    // Zero sentinel hits in any response, log, store row, lease or audit
    // line; the encrypted store holds no plaintext either.
    let mut hits = Vec::new();
    for (i, r) in responses.iter().enumerate() {
        for s in &sentinels {
            if r.contains(s.as_str()) {
                hits.push(format!("API response #{i} contains a sentinel"));
            }
        }
    }
    scan_files(&data, &sentinels, &mut hits);
    assert!(hits.is_empty(), "{hits:#?}");

    // Every identity was revoked once its investigation ended.
    let mut leased = BTreeSet::new();
    for entry in std::fs::read_dir(&leases).unwrap() {
        let lease: Value =
            serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap();
        assert_eq!(lease["revoked"], true, "{lease:#}");
        leased.insert(lease["investigation_id"].as_str().unwrap().to_string());
    }
    assert_eq!(leased.len(), list.len(), "one identity per investigation");

    // The audit log attributes each read to its investigation, and the
    // one-domain investigation read only what its plan allows.
    let audit = std::fs::read_to_string(data.join("secrets").join("audit.log")).unwrap();
    let mut read_by: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in audit.lines() {
        let rec: Value = serde_json::from_str(line).unwrap();
        assert_eq!(rec["granted"], true, "no job asked beyond its grant: {rec}");
        read_by
            .entry(rec["investigation_id"].as_str().unwrap().to_string())
            .or_default()
            .insert(rec["domain"].as_str().unwrap().to_string());
    }
    let inv_of = |title: &str| {
        let inc = incidents.iter().find(|i| i["title"] == title).unwrap();
        list.iter()
            .find(|i| i["incident_id"] == inc["id"])
            .unwrap()
            .clone()
    };
    let db_only = inv_of("db only");
    assert_eq!(db_only["state"]["state"], "succeeded", "{db_only:#}");
    assert_eq!(
        read_by[db_only["id"].as_str().unwrap()],
        BTreeSet::from([
            "database".to_string(),
            "log-aggregation".to_string(),
            "llm-inference".to_string()
        ])
    );
    let storm = list
        .iter()
        .max_by_key(|i| i["plan"]["alert_count"].as_u64())
        .unwrap();
    assert_eq!(read_by[storm["id"].as_str().unwrap()].len(), 6);
    let hog = inv_of("hog memory");
    assert_eq!(hog["state"]["reason"], "out_of_memory", "{hog:#}");
    assert!(
        !read_by.contains_key(hog["id"].as_str().unwrap()),
        "the hog never read a secret"
    );
}
