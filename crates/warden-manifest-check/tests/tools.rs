#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The checks run the real tools and catch what they are meant to catch.

use serde_json::{Value, json};
use warden_manifest_check::{checkov, helm, validate_k8s};

fn service_account() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "reader", "namespace": "team"},
        "automountServiceAccountToken": false
    })
}

fn read_only_role() -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "reader", "namespace": "team"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
    })
}

#[test]
fn valid_objects_pass_strict_validation() {
    validate_k8s(&[service_account(), read_only_role()]).unwrap();
}

#[test]
fn every_invalid_object_is_listed() {
    let mut sa = service_account();
    sa["metadata"]["bogus"] = json!(1);
    let mut role = read_only_role();
    role["rules"][0]["extra"] = json!(true);
    let err = validate_k8s(&[sa, read_only_role(), role]).unwrap_err();
    assert!(err.contains("'bogus' was unexpected"), "{err}");
    assert!(err.contains("'extra' was unexpected"), "{err}");
    assert!(err.contains("1 of 3 objects passed"), "{err}");
}

#[test]
fn a_kind_without_a_schema_is_not_a_pass() {
    let unknown =
        json!({"apiVersion": "example.io/v1", "kind": "Widget", "metadata": {"name": "w"}});
    let err = validate_k8s(&[unknown]).unwrap_err();
    assert!(err.contains("Widget"), "{err}");
}

#[test]
fn checkov_passes_a_read_only_role_and_fails_a_wildcard_one() {
    let report = checkov(&[read_only_role()], &[]).unwrap();
    report.ensure_clean().unwrap();
    assert!(report.passed > 0);

    let wild = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "everything"},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
    });
    let report = checkov(std::slice::from_ref(&wild), &[]).unwrap();
    let err = report.ensure_clean().unwrap_err();
    assert!(
        err.contains("ClusterRole.default.everything") || err.contains("everything"),
        "{err}"
    );

    // A skipped check is reported as skipped, with its reason.
    let ids: Vec<String> = report.failed.iter().map(|f| f.check_id.clone()).collect();
    let skips: Vec<(&str, &str)> = ids
        .iter()
        .map(|i| (i.as_str(), "accepted in this test"))
        .collect();
    let report = checkov(&[wild], &skips).unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.skipped.len(), ids.len());
    assert!(
        report
            .skipped
            .iter()
            .all(|(_, why)| why == "accepted in this test")
    );
}

#[test]
fn a_skip_without_a_reason_is_refused() {
    let err = checkov(&[read_only_role()], &[("CKV_K8S_21", " ")]).unwrap_err();
    assert!(err.contains("why it does not apply"), "{err}");
}

#[test]
fn helm_is_installed_and_runs() {
    let helm = helm().unwrap();
    let out = std::process::Command::new(&helm)
        .args(["version", "--short"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with('v'));
}
