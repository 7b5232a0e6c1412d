#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Every object a remediation creates passes the official Kubernetes 1.33
//! schemas (strict) and checkov's Kubernetes checks. The tools come from
//! scripts/install-test-deps.sh; a missing tool fails the test.

use serde_json::Value;
use warden_core::{ActionKind, ProposedAction, TrustPhase};
use warden_remediate::{JobSettings, build};

const CHECKOV_SKIPS: &[(&str, &str)] = &[
    (
        "CKV_K8S_43",
        "the image is configuration (trust.remediation.image); operators pin it by digest there, \
         the shipped default cannot name a digest of an image built elsewhere",
    ),
    (
        "CKV2_K8S_6",
        "the investigations namespace's NetworkPolicies are rendered by `warden render` and \
         scanned with the policy bundle, not with each Job",
    ),
];

fn objects() -> Vec<Value> {
    let mut out = Vec::new();
    for (i, kind) in ActionKind::ALL.into_iter().enumerate() {
        let action = ProposedAction {
            kind,
            namespace: "shop".into(),
            target: if kind == ActionKind::RestartPod {
                "checkout-7d9f-abcde"
            } else {
                "checkout"
            }
            .into(),
            replicas: (kind == ActionKind::ScaleDeployment).then_some(4),
        };
        let o = build(
            &action,
            &format!("act-01jd{i:022}"),
            "inv-1",
            TrustPhase::Remediate,
            &JobSettings::default(),
        )
        .unwrap();
        out.push(serde_json::to_value(&o.service_account).unwrap());
        out.push(serde_json::to_value(&o.role).unwrap());
        out.push(serde_json::to_value(&o.role_binding).unwrap());
        out.push(serde_json::to_value(&o.job).unwrap());
    }
    out
}

#[test]
fn every_object_validates_against_the_kubernetes_schemas() {
    warden_manifest_check::validate_k8s(&objects()).unwrap();
}

#[test]
fn every_object_passes_checkov() {
    let report = warden_manifest_check::checkov(&objects(), CHECKOV_SKIPS).unwrap();
    report.ensure_clean().unwrap();
    assert!(report.passed > 4 * 20, "too few checks ran: {report:?}");
}
