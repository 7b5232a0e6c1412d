//! The chart in deploy/helm/warden with the real Helm CLI: `helm lint` and
//! `helm template` pass for every environment's rendered values, the output
//! contains the rendered state verbatim, and it validates and scans clean.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;
use serde::Deserialize;
use serde_json::Value;
use warden_manifest_check::{checkov, helm, validate_k8s};

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/helm/warden")
}

fn run_helm(args: &[&str]) -> String {
    let out = Command::new(helm().unwrap()).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "helm {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn docs(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// Checks skipped on the chart's own objects, each with the reason.
const CHART_SKIPS: &[(&str, &str)] = &[
    (
        "CKV_K8S_43",
        "the image is a value (image.reference); operators pin it by digest, the chart cannot know the digest",
    ),
    (
        "CKV_K8S_21",
        "rendered Roles live in the target namespaces, which may include default",
    ),
];

/// `helm lint` and `helm template` with `values`: the objects produced,
/// checked to contain `state` and to configure its phase.
fn template(values: &Path, state: &warden_gitops::SecurityState) -> Vec<Value> {
    let chart = chart();
    let chart = chart.to_str().unwrap();
    let values = values.to_str().unwrap();
    run_helm(&["lint", chart, "--strict", "-f", values]);
    let out = run_helm(&[
        "template",
        "warden",
        chart,
        "-n",
        "warden-system",
        "-f",
        values,
    ]);
    let objects = docs(&out);
    for o in &state.objects {
        assert!(objects.contains(o), "helm template lost {o}");
    }
    let kinds: Vec<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    for k in [
        "Deployment",
        "Service",
        "ConfigMap",
        "ServiceAccount",
        "Role",
        "ClusterRole",
        "ClusterRoleBinding",
        "NetworkPolicy",
        "Namespace",
        "PersistentVolumeClaim",
    ] {
        assert!(kinds.contains(&k), "no {k} in {kinds:?}");
    }
    // The control plane is configured for this state's phase.
    let cm = objects.iter().find(|o| o["kind"] == "ConfigMap").unwrap();
    let config_text = cm["data"]["warden.yaml"].as_str().unwrap();
    let config = warden_control::config::Config::parse(config_text, "configmap").unwrap();
    assert_eq!(config.agent.phase, state.phase);
    objects
}

/// Schema validation and checkov, once for all the objects (each tool
/// start costs seconds).
fn check(objects: &[Value]) {
    validate_k8s(objects).unwrap();
    checkov(objects, CHART_SKIPS)
        .unwrap()
        .ensure_clean()
        .unwrap();
}

#[test]
fn the_chart_lints_with_its_defaults() {
    let chart = chart();
    run_helm(&["lint", chart.to_str().unwrap(), "--strict"]);
    let out = run_helm(&[
        "template",
        "warden",
        chart.to_str().unwrap(),
        "-n",
        "warden-system",
    ]);
    validate_k8s(&docs(&out)).unwrap();
}

#[test]
fn helm_template_of_each_example_environment_yields_its_state() {
    let config = example();
    let rendered = warden_gitops::render(&config).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    warden_gitops::write(&rendered, &out).unwrap();
    let mut objects = Vec::new();
    for env in &config.environments {
        let state = rendered.state(&env.name, env.phase).unwrap();
        objects.extend(template(
            &out.join(format!("values-{}.yaml", env.name)),
            state,
        ));
    }
    check(&objects);
}

#[test]
fn helm_template_of_a_remediating_environment_yields_its_state() {
    let config = differing();
    let rendered = warden_gitops::render(&config).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    warden_gitops::write(&rendered, &out).unwrap();
    let state = rendered
        .state("dev", warden_core::TrustPhase::Remediate)
        .unwrap();
    assert!(
        state
            .objects
            .iter()
            .any(|o| o["metadata"]["name"] == "warden-remediate-remediate")
    );
    let objects = template(&out.join("values-dev.yaml"), state);
    // The control plane may create each remediation's Role only if it holds
    // what it grants: exactly the phase's actions' permissions, per target.
    let mut expected: Vec<Value> = vec![serde_json::json!({
        "apiGroups": ["rbac.authorization.k8s.io"],
        "resources": ["roles", "rolebindings"],
        "verbs": ["create", "get", "delete"],
    })];
    for action in &config.phases.remediate.actions {
        for p in action.permissions() {
            let rule = serde_json::json!({
                "apiGroups": [p.api_group], "resources": [p.resource], "verbs": p.verbs,
            });
            if !expected.contains(&rule) {
                expected.push(rule);
            }
        }
    }
    for ns in &config.namespaces.targets {
        let role = objects
            .iter()
            .find(|o| {
                o["kind"] == "Role"
                    && o["metadata"]["name"] == "warden-remediation"
                    && o["metadata"]["namespace"] == ns.as_str()
            })
            .unwrap_or_else(|| panic!("no remediation Role for the control plane in {ns}"));
        assert_eq!(role["rules"], Value::Array(expected.clone()), "{ns}");
    }
    check(&objects);
}
