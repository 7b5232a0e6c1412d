#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `warden logs mine` and `warden eval loghub` as a user runs them.

use std::path::PathBuf;
use std::process::Output;

mod common;

fn warden(args: &[&str], stdin: &str) -> Output {
    common::run_warden(args, stdin)
}

fn loghub() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/loghub2k")
}

const LOG: &str = "\
2024-01-01 10:00:00 INFO api: served request 17 in 12 ms
2024-01-01 10:00:01 WARN db: slow query took 950 ms
2024-01-01 10:00:02 INFO api: served request 18 in 9 ms
2024-01-01 10:00:03 INFO api: served request 19 in 31 ms
";

#[test]
fn mine_from_stdin_prints_templates_with_counts_and_line_numbers_as_json() {
    let out = warden(
        &[
            "logs",
            "mine",
            "-",
            "--format",
            "<Date> <Time> <Level> <Component>: <Content>",
            "--json",
        ],
        LOG,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["template"], "served request <*> in <*> ms");
    assert_eq!(rows[0]["count"], 3);
    assert_eq!(rows[0]["first_line"], 1);
    assert_eq!(rows[0]["last_line"], 4);
    assert_eq!(rows[1]["template"], "slow query took <*> ms");
    assert_eq!(rows[1]["first_line"], 2);
}

#[test]
fn mine_a_file_prints_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    std::fs::write(&path, LOG).unwrap();
    let out = warden(&["logs", "mine", path.to_str().unwrap()], "");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().next().unwrap().contains("template"));
    // Without a format the header's values are masked too.
    assert!(
        text.contains("<*> <*>:<*>:<*> INFO api: served request <*> in <*> ms"),
        "{text}"
    );
}

#[test]
fn an_unreadable_file_is_named_in_the_error() {
    let out = warden(&["logs", "mine", "/no/such/file.log"], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/file.log"));
}

#[test]
fn a_format_without_content_is_rejected() {
    let out = warden(&["logs", "mine", "-", "--format", "<Date> <Time>"], LOG);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("<Date> <Time>") && err.contains("Content"),
        "{err}"
    );
}

#[test]
fn eval_loghub_reports_each_requested_system_and_the_average_as_json() {
    let data = loghub();
    let out = warden(
        &[
            "eval",
            "loghub",
            "--data",
            data.to_str().unwrap(),
            "--systems",
            "HDFS,OpenSSH",
            "--json",
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["systems"].as_object().unwrap().len(), 2);
    assert!(v["systems"]["HDFS"]["GA"].as_f64().unwrap() > 0.9);
    for metric in ["GA", "PA", "FGA", "FTA", "lines_per_sec"] {
        assert!(v["average"][metric].is_number(), "{metric}");
    }
}

#[test]
fn eval_names_a_missing_directory_and_an_unknown_system() {
    let out = warden(&["eval", "loghub", "--data", "/no/such/dir"], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/dir"));
    let data = loghub();
    let out = warden(
        &[
            "eval",
            "loghub",
            "--data",
            data.to_str().unwrap(),
            "--systems",
            "Nope",
        ],
        "",
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"Nope\""));
}
