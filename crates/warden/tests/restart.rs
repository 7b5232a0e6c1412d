#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Killing the control plane mid-investigation loses nothing: a job still
//! running is re-adopted and completes exactly once; a job that died while
//! the control plane was down is marked failed with a reason.

mod common;

use std::time::Duration;

use common::*;

/// Counts starts per incident title in `$2`, then behaves by title:
/// `slow` sleeps before running the agent; `doomed` sleeps long and is
/// killed by the test while the control plane is down.
const WRAPPER: &str = r#"#!/bin/sh
input=$(cat)
case "$input" in
  *'"title":"slow'*) echo slow >> "$2"; sleep 4; printf '%s' "$input" | exec "$1" agent run ;;
  *'"title":"doomed'*) echo doomed >> "$2"; exec sleep 600 ;;
  *) printf '%s' "$input" | exec "$1" agent run ;;
esac
"#;

#[test]
fn a_control_plane_crash_neither_loses_nor_duplicates_an_investigation() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bundle, _) = demo_bundle(dir.path(), 5);
    let wrapper = write(&dir.path().join("job.sh"), WRAPPER);
    let starts = dir.path().join("starts.txt");
    let config = serde_json::json!({
        "correlation": {"group_wait_ms": 0},
        "runtime": {"command": ["/bin/sh", wrapper, WARDEN, starts]},
        "agent": {"data_sources": [{"kind": "bundle", "path": bundle}]},
    });
    let config = write(&dir.path().join("warden.yaml"), &config.to_string());
    let data = dir.path().join("data");
    let port = free_port();

    let server = Server::start(&data, &config, port);
    let base = server.url.clone();
    post(
        &format!("{base}/api/v1/incidents"),
        &generic_incident("slow one"),
    );
    post(
        &format!("{base}/api/v1/incidents"),
        &generic_incident("doomed one"),
    );
    let running = wait_for(&base, Duration::from_secs(30), "both running", |l| {
        l.len() == 2
            && l.iter()
                .all(|i| i["state"]["state"] == "running" && !i["job_ref"].is_null())
    });
    server.crash();

    // While it is down, the doomed job dies too.
    let incidents_dir = data.join("jobs");
    let doomed_pid = std::fs::read_dir(&incidents_dir)
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path().join("job.json")).ok())
        .filter_map(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .filter_map(|v| v["pid"].as_i64())
        .find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .map(|c| c.contains("sleep") && c.contains("600"))
                .unwrap_or(false)
        })
        .expect("the doomed job's process");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(doomed_pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();

    let server = Server::start(&data, &config, port);
    let base = server.url.clone();
    let list = wait_for(&base, Duration::from_secs(60), "both ended", |l| {
        l.len() == 2 && l.iter().all(terminal)
    });
    assert_eq!(list.len(), 2, "never duplicated");
    let ids: Vec<&str> = running.iter().map(|i| i["id"].as_str().unwrap()).collect();
    for inv in &list {
        assert!(
            ids.contains(&inv["id"].as_str().unwrap()),
            "same investigations as before the crash"
        );
    }
    let incidents = get(&format!("{base}/api/v1/incidents"))["incidents"]
        .as_array()
        .cloned()
        .unwrap();
    let by_title = |title: &str| {
        let inc = incidents.iter().find(|i| i["title"] == title).unwrap();
        list.iter()
            .find(|i| i["incident_id"] == inc["id"])
            .unwrap()
            .clone()
    };
    let slow = by_title("slow one");
    assert_eq!(slow["state"]["state"], "succeeded", "{slow:#}");
    let doomed = by_title("doomed one");
    assert_eq!(doomed["state"]["state"], "failed", "{doomed:#}");
    assert_eq!(doomed["state"]["reason"], "lost_while_down", "{doomed:#}");
    let report = get(&format!(
        "{base}/api/v1/investigations/{}/report",
        slow["id"].as_str().unwrap()
    ));
    assert_eq!(report["investigation_id"], slow["id"]);

    let started = std::fs::read_to_string(&starts).unwrap();
    assert_eq!(
        started.lines().filter(|l| *l == "slow").count(),
        1,
        "the slow job ran once: {started}"
    );
    assert_eq!(
        started.lines().filter(|l| *l == "doomed").count(),
        1,
        "{started}"
    );
    drop(server);
}
