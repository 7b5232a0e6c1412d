//! Every rendered object is valid for Kubernetes 1.33 (strict schema) and
//! clean under checkov. Needs the tools from scripts/install-test-deps.sh.

use crate::support::*;
use serde_json::Value;
use warden_manifest_check::{checkov, validate_k8s};

/// Checks skipped for rendered state, each with the reason.
pub const SKIPS: &[(&str, &str)] = &[(
    // The read-only and remediation Roles must live where the workloads
    // are, and `namespaces.targets` defaults to `default`; warden's own
    // objects are never in it.
    "CKV_K8S_21",
    "Roles and RoleBindings are rendered into the configured target namespaces, which may include default",
)];

fn all_objects(config: &warden_control::config::Config) -> Vec<Value> {
    let rendered = warden_gitops::render(config).unwrap();
    rendered
        .states
        .iter()
        .flat_map(|s| s.objects.iter().cloned())
        .collect()
}

#[test]
fn every_object_of_the_example_validates_against_kubernetes_1_33_strictly() {
    let objects = all_objects(&example());
    assert!(objects.len() >= 12 * 8, "{}", objects.len());
    validate_k8s(&objects).unwrap();
}

#[test]
fn every_object_with_endpoints_and_actions_validates_strictly() {
    validate_k8s(&all_objects(&differing())).unwrap();
}

#[test]
fn checkov_finds_nothing_in_any_state() {
    let mut objects = all_objects(&differing());
    // The example's states too (one state per phase is enough: the
    // environments differ only in a label).
    let rendered = warden_gitops::render(&example()).unwrap();
    objects.extend(
        rendered
            .states
            .iter()
            .filter(|s| s.environment == "prod")
            .flat_map(|s| s.objects.iter().cloned()),
    );
    let report = checkov(&objects, SKIPS).unwrap();
    report.ensure_clean().unwrap();
    assert!(report.passed > 0);
    // The skip is needed (Roles in `default`), and covers only those.
    assert!(!report.skipped.is_empty());
    for (finding, _) in &report.skipped {
        assert!(
            finding.resource.contains(".default."),
            "skip used outside the default namespace: {finding:?}"
        );
    }
}
