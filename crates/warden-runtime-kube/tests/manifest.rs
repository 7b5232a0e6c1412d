#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The Job warden submits: every variant (phase × complexity × Vault
//! injector) validated against the Kubernetes 1.33 schemas (strict) and
//! scanned by checkov, and no secret in it.

mod common;

use serde_json::Value;
use warden_core::{Complexity, InvestigationId, TrustPhase};
use warden_runtime_kube::manifest::MIN_TOKEN_EXPIRATION_SECONDS;
use warden_runtime_kube::{JobManifestInput, job_manifest, job_name, job_yaml};

use common::*;

/// checkov checks that do not apply to an investigation Job, each with why.
pub const CHECKOV_SKIPS: &[(&str, &str)] = &[
    (
        "CKV_K8S_43",
        "the image is configuration (runtime.kubernetes.image); operators pin it by digest there, \
         the shipped default cannot name a digest of an image built elsewhere",
    ),
    (
        "CKV2_K8S_6",
        "the investigations namespace's NetworkPolicies (default deny, egress per domain) are \
         rendered by `warden render` and scanned with the policy bundle, not with each Job",
    ),
];

fn variants() -> Vec<Value> {
    let domains = grants();
    let mut out = Vec::new();
    for injector in [false, true] {
        let mut s = settings();
        s.vault_agent_injector = injector;
        for phase in TrustPhase::ALL {
            for complexity in Complexity::ALL {
                // Distinct names, so checkov reports each variant.
                let id = InvestigationId::parse(&format!("inv-01jd{:022}", out.len())).unwrap();
                let plan = plan(complexity);
                let job = job_manifest(
                    &JobManifestInput {
                        investigation_id: &id,
                        phase,
                        complexity,
                        profile: &plan.profile,
                        active_deadline_seconds: plan.profile.deadline_seconds,
                        domains: &domains,
                    },
                    &s,
                );
                out.push(serde_json::to_value(job).unwrap());
            }
        }
    }
    out
}

#[test]
fn every_variant_passes_kubernetes_validate_strict() {
    let jobs = variants();
    assert_eq!(jobs.len(), 24);
    warden_manifest_check::validate_k8s(&jobs).unwrap();
}

#[test]
fn every_variant_passes_checkov() {
    let report = warden_manifest_check::checkov(&variants(), CHECKOV_SKIPS).unwrap();
    report.ensure_clean().unwrap();
    assert!(report.passed > 24 * 20, "too few checks ran: {report:?}");
}

#[test]
fn the_job_is_named_after_the_investigation_within_the_label_limit() {
    let id = InvestigationId::generate();
    let name = job_name(&id);
    assert_eq!(name, format!("warden-{id}"));
    // Label values and pod names (name + "-" + 5 characters) stay within 63.
    assert!(name.len() + 6 <= 63, "{name}");
}

#[test]
fn the_spec_follows_the_plan_the_phase_and_the_restricted_profile() {
    let jobs = variants();
    for job in &jobs {
        let phase = job["metadata"]["annotations"]["warden.dev/phase"]
            .as_str()
            .unwrap();
        let complexity: Complexity = job["metadata"]["annotations"]["warden.dev/complexity"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let profile = plan(complexity).profile;
        let spec = &job["spec"];
        let pod = &spec["template"]["spec"];
        let c = &pod["containers"][0];
        assert_eq!(pod["serviceAccountName"], format!("warden-agent-{phase}"));
        assert_eq!(pod["automountServiceAccountToken"], false);
        assert_eq!(pod["restartPolicy"], "Never");
        assert_eq!(spec["activeDeadlineSeconds"], profile.deadline_seconds);
        assert_eq!(spec["backoffLimit"], 2);
        assert_eq!(spec["ttlSecondsAfterFinished"], 3600);
        assert_eq!(c["resources"]["requests"], c["resources"]["limits"]);
        assert_eq!(
            c["resources"]["limits"]["cpu"],
            format!("{}m", profile.cpu_millis)
        );
        assert_eq!(
            c["resources"]["limits"]["memory"],
            format!("{}Mi", profile.memory_bytes / (1024 * 1024))
        );
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(pod["securityContext"]["runAsUser"], 65532);
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        let token = &pod["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"];
        assert_eq!(token["audience"], AUDIENCE);
        let expiry = token["expirationSeconds"].as_i64().unwrap();
        assert!(expiry >= MIN_TOKEN_EXPIRATION_SECONDS);
        assert_eq!(
            expiry,
            (profile.deadline_seconds as i64).max(MIN_TOKEN_EXPIRATION_SECONDS)
        );
        assert_eq!(pod["volumes"][1]["emptyDir"]["sizeLimit"], "64Mi");
        // The pod failure policy: disruptions retried, OOM and the agent's
        // refusals not.
        let rules = &spec["podFailurePolicy"]["rules"];
        assert_eq!(rules[0]["action"], "Ignore");
        assert_eq!(rules[0]["onPodConditions"][0]["type"], "DisruptionTarget");
        assert_eq!(rules[1]["action"], "FailJob");
        assert_eq!(
            rules[1]["onExitCodes"]["values"],
            serde_json::json!([1, 2, 137])
        );
        for forbidden in [
            "hostPath",
            "hostNetwork\":true",
            "privileged\":true",
            "envFrom",
            "secretKeyRef",
        ] {
            assert!(!job.to_string().contains(forbidden), "{forbidden} in {job}");
        }
        assert_eq!(
            c["command"],
            serde_json::json!([
                "/usr/local/bin/warden",
                "agent",
                "run",
                "--bootstrap",
                format!("{CONTROL_PLANE}/api/v1/jobs/bootstrap"),
                "--token-file",
                "/var/run/secrets/warden/token"
            ])
        );
    }
}

#[test]
fn the_injector_annotations_name_the_phase_role_and_each_granted_path() {
    let jobs = variants();
    let with: Vec<&Value> = jobs
        .iter()
        .filter(|j| {
            j["spec"]["template"]["metadata"]["annotations"]["vault.hashicorp.com/agent-inject"]
                == "true"
        })
        .collect();
    assert_eq!(with.len(), 12);
    for job in with {
        let a = &job["spec"]["template"]["metadata"]["annotations"];
        let phase = job["metadata"]["annotations"]["warden.dev/phase"]
            .as_str()
            .unwrap();
        assert_eq!(
            a["vault.hashicorp.com/role"],
            format!("warden-agent-{phase}")
        );
        assert_eq!(a["vault.hashicorp.com/agent-pre-populate-only"], "true");
        assert_eq!(
            a["vault.hashicorp.com/agent-inject-secret-database"],
            "agent/data/database"
        );
    }
}

#[test]
fn the_manifest_is_deterministic() {
    let a: Vec<String> = variants().iter().map(Value::to_string).collect();
    let b: Vec<String> = variants().iter().map(Value::to_string).collect();
    assert_eq!(a, b);
}

#[test]
fn a_short_deadline_still_gets_the_minimum_token_lifetime() {
    let id = InvestigationId::generate();
    let plan = plan(Complexity::Simple);
    let job = job_manifest(
        &JobManifestInput {
            investigation_id: &id,
            phase: TrustPhase::Shadow,
            complexity: Complexity::Simple,
            profile: &plan.profile,
            active_deadline_seconds: 30,
            domains: &[],
        },
        &settings(),
    );
    let yaml = job_yaml(&job).unwrap();
    assert!(yaml.contains("expirationSeconds: 600"), "{yaml}");
    assert!(yaml.contains("activeDeadlineSeconds: 30"), "{yaml}");
}

/// Nothing that looks like a credential: no long run of letters and digits
/// (the scheduler's result credentials are 64 hex characters, OpenBao
/// tokens are longer still), no `password`/`token:` values, no Secret
/// references.
#[test]
fn no_variant_contains_anything_secret_like() {
    for job in variants() {
        let yaml = serde_yaml::to_string(&job).unwrap();
        let longest_run = yaml
            .split(|c: char| !c.is_ascii_alphanumeric())
            .map(str::len)
            .max()
            .unwrap();
        assert!(longest_run < 40, "a credential-like value in:\n{yaml}");
        for word in ["secretKeyRef", "secretRef", "envFrom", "password", "Bearer"] {
            assert!(!yaml.contains(word), "{word} in:\n{yaml}");
        }
        // The only token is the projected one, named by its path.
        assert!(!yaml.contains("token: "), "{yaml}");
    }
}
