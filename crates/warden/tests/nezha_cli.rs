#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `warden eval nezha` as a user runs it, on a few of the shipped cases.

use std::path::PathBuf;

mod common;

fn nezha() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/nezha");
    assert!(
        dir.join("cases_dev.csv").is_file(),
        "the Nezha dataset is missing at {}",
        dir.display()
    );
    dir
}

/// Three OnlineBoutique cases of one day, written to a temp cases file.
fn few_cases(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("warden-nezha-{name}-{}.csv", std::process::id()));
    std::fs::write(
        &path,
        "system,date,inject_time,inject_timestamp,inject_pod,inject_type\n\
         OnlineBoutique,2022-08-22,2022-08-22 04:10:20,1661141420,frontend-579b9bff58-t2dbm,cpu_consumed\n\
         OnlineBoutique,2022-08-22,2022-08-22 04:36:03,1661142963,cartservice-579f59597d-wc2lz,cpu_contention\n\
         OnlineBoutique,2022-08-22,2022-08-22 05:18:09,1661145489,currencyservice-cf787dd48-vpjrd,cpu_contention\n",
    )
    .unwrap();
    path
}

/// `warden eval nezha --data <dataset> --cases <cases> <extra…>`.
fn eval(data: &std::path::Path, cases: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "eval",
        "nezha",
        "--data",
        data.to_str().unwrap(),
        "--cases",
        cases.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    common::run_warden(&args, "")
}

/// [`eval`] with `--json`, which must succeed.
fn json(data: &std::path::Path, cases: &std::path::Path, extra: &[&str]) -> serde_json::Value {
    let out = eval(data, cases, &[&["--json"], extra].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn json_has_systems_average_and_fault_types_and_per_case_adds_the_outcomes() {
    let data = nezha();
    let cases = few_cases("json");
    let v = json(&data, &cases, &[]);
    let ob = &v["systems"]["OnlineBoutique"];
    for key in ["AS@1", "AS@3", "AS@5"] {
        let x = ob[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&x), "{key} = {x}");
        assert!(v["average"][key].is_number(), "{key}");
    }
    assert_eq!(ob["cases"], 3);
    assert_eq!(v["by_fault_type"]["cpu_contention"]["cases"], 2);
    assert!(v.get("outcomes").is_none());

    let v = json(&data, &cases, &["--per-case"]);
    let outcomes = v["outcomes"].as_array().unwrap();
    assert_eq!(outcomes.len(), 3);
    assert_eq!(outcomes[1]["truth"], "cartservice");
    assert_eq!(outcomes[1]["inject_at"], "2022-08-22T04:36:03Z");
    assert!(outcomes[1]["rank"].as_u64().unwrap() >= 1);
    assert_eq!(outcomes[1]["top"].as_array().unwrap().len(), 5);

    // The learned ranking reports in the same shape.
    let v = json(&data, &cases, &["--cross-validate"]);
    assert_eq!(v["systems"]["OnlineBoutique"]["cases"], 3);
    std::fs::remove_file(cases).unwrap();
}

#[test]
fn the_table_lists_each_case_with_its_rank_and_the_top_five() {
    let data = nezha();
    let cases = few_cases("table");
    let out = eval(&data, &cases, &["--per-case"]);
    std::fs::remove_file(cases).unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("OnlineBoutique"), "{text}");
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("2022-08-22 0"))
        .collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert!(rows[2].contains("currencyservice"), "{}", rows[2]);
}

#[test]
fn a_missing_dataset_or_a_bad_cases_file_is_named() {
    let out = eval(
        std::path::Path::new("/no/such/dir"),
        std::path::Path::new("/no/such/cases.csv"),
        &[],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/cases.csv"));
    let data = nezha();
    let bad = std::env::temp_dir().join(format!("warden-nezha-bad-{}.csv", std::process::id()));
    std::fs::write(&bad, "system,date\nOnlineBoutique,2022-08-22\n").unwrap();
    let out = eval(&data, &bad, &["--cross-validate"]);
    std::fs::remove_file(&bad).unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("expected header"), "{err}");
}
