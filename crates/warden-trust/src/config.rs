//! The `trust:` section of `warden.yaml`: gate thresholds (the article's
//! defaults), demotion floors and window, approval lifetime, remediation
//! job settings and the operators who may give verdicts and approvals.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::auth::Role;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrustConfig {
    /// The environment this control plane runs in (one of
    /// `environments[].name`). Its phase is persisted, seeded from
    /// `environments[].phase`, and lowered by automatic demotion.
    pub environment: String,
    pub gates: GatesConfig,
    pub demotion: DemotionConfig,
    pub approvals: ApprovalsConfig,
    pub remediation: RemediationConfig,
    pub operators: OperatorsConfig,
}

impl Default for TrustConfig {
    fn default() -> Self {
        TrustConfig {
            environment: "dev".into(),
            gates: GatesConfig::default(),
            demotion: DemotionConfig::default(),
            approvals: ApprovalsConfig::default(),
            remediation: RemediationConfig::default(),
            operators: OperatorsConfig::default(),
        }
    }
}

/// Promotion gates. Every threshold is strict (`>` or `<`): a value exactly
/// at the threshold does not pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatesConfig {
    pub shadow_to_assist: ShadowToAssist,
    pub assist_to_remediate: AssistToRemediate,
    pub remediate_to_autonomous: RemediateToAutonomous,
}

impl Default for GatesConfig {
    fn default() -> Self {
        GatesConfig {
            shadow_to_assist: ShadowToAssist {
                accuracy_above: 0.95,
                min_samples: 100,
            },
            assist_to_remediate: AssistToRemediate {
                agreement_above: 0.90,
                minimal_edit_acceptance_above: 0.80,
                minimal_edit_max: 0.10,
                min_samples: 50,
            },
            remediate_to_autonomous: RemediateToAutonomous {
                success_above: 0.99,
                rollbacks_below: 0.01,
                min_samples: 100,
                required_signoffs: vec!["operations_lead".into(), "platform_lead".into()],
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowToAssist {
    /// Share of reviewed shadow reports whose root cause was correct.
    pub accuracy_above: f64,
    pub min_samples: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssistToRemediate {
    /// Share of verdicts that kept the diagnosis (accept or modify).
    pub agreement_above: f64,
    /// Share of verdicts that accepted it as is or with a minimal edit.
    pub minimal_edit_acceptance_above: f64,
    /// Largest edit size (0..=1, normalised edit distance) still "minimal".
    pub minimal_edit_max: f64,
    pub min_samples: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemediateToAutonomous {
    /// Share of remediations that succeeded.
    pub success_above: f64,
    /// Share of remediations that were rolled back.
    pub rollbacks_below: f64,
    pub min_samples: u32,
    /// Sign-off roles (see `operators.signoffs`) that must each sign.
    pub required_signoffs: Vec<String>,
}

/// Demotion: a rolling window of the outcomes recorded since the current
/// phase began (at most `window_outcomes` of them, none older than
/// `window_seconds`). When it falls below a floor, the phase drops one step
/// for the next investigation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemotionConfig {
    pub window_outcomes: u32,
    pub window_seconds: u64,
    /// Demote remediate/autonomous when the window holds this many rollbacks.
    pub max_rollbacks: u32,
    /// Demote assist and above when review accuracy falls below this.
    pub accuracy_floor: f64,
    /// Demote remediate and above when operator agreement falls below this.
    pub agreement_floor: f64,
    /// Demote remediate and above when remediation success falls below this.
    pub success_floor: f64,
    /// A rate floor applies only once the window holds this many samples of it.
    pub min_samples: u32,
}

impl Default for DemotionConfig {
    fn default() -> Self {
        DemotionConfig {
            window_outcomes: 50,
            window_seconds: 7 * 24 * 3600,
            max_rollbacks: 2,
            accuracy_floor: 0.90,
            agreement_floor: 0.80,
            success_floor: 0.95,
            min_samples: 10,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalsConfig {
    /// How long a proposal waits for a decision, and how long an approval
    /// stays valid for starting its execution.
    pub ttl_seconds: u64,
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        ApprovalsConfig { ttl_seconds: 900 }
    }
}

/// The remediation job: one Job per approved action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemediationConfig {
    pub image: String,
    /// How long the remediation job may run.
    pub job_timeout_seconds: u64,
    /// After the action, how long the incident's alerts have to resolve
    /// before the remediation counts as failed.
    pub verify_window_seconds: u64,
    /// Upper bound of `scale_deployment` replicas.
    pub max_replicas: u32,
}

impl Default for RemediationConfig {
    fn default() -> Self {
        RemediationConfig {
            image: "ghcr.io/warden-dev/warden:0.1.0".into(),
            job_timeout_seconds: 120,
            verify_window_seconds: 300,
            max_replicas: 20,
        }
    }
}

/// Who may give verdicts and approvals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OperatorsConfig {
    /// Static bearer tokens: each stored as its SHA-256 or read from a file.
    pub tokens: Vec<TokenOperator>,
    /// OIDC/JWT bearer tokens, verified offline.
    pub oidc: Option<OidcConfig>,
    /// Sign-off roles per subject (e.g. `alice: [operations_lead]`).
    pub signoffs: BTreeMap<String, Vec<String>>,
}

/// One static-token operator. Exactly one of `sha256` and `token_file`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenOperator {
    pub subject: String,
    pub role: Role,
    /// Hex SHA-256 of the token; the token itself is never in the file.
    #[serde(default)]
    pub sha256: Option<String>,
    /// A file holding the token (read once at start, hashed, dropped).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    pub issuer: String,
    pub audience: String,
    /// PEM public keys (RSA or EC P-256).
    #[serde(default)]
    pub pem_keys: Vec<PathBuf>,
    /// A JWKS document on disk (no network fetch).
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// `RS256` and/or `ES256`.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// The claim naming the operator.
    #[serde(default = "default_subject_claim")]
    pub subject_claim: String,
    /// The claim carrying the role (a string or a list of strings).
    #[serde(default = "default_role_claim")]
    pub role_claim: String,
    /// Claim value -> role. A token with no mapped value is rejected.
    pub roles: BTreeMap<String, Role>,
}

fn default_algorithms() -> Vec<String> {
    vec!["RS256".into(), "ES256".into()]
}

fn default_subject_claim() -> String {
    "sub".into()
}

fn default_role_claim() -> String {
    "groups".into()
}

fn rate(problems: &mut Vec<String>, field: &str, v: f64) {
    if !(0.0..=1.0).contains(&v) {
        problems.push(format!("{field}: {v} is outside 0..=1"));
    }
}

impl TrustConfig {
    /// Problems with the section, each naming its field. `environments`
    /// are the declared environment names.
    pub fn validate(&self, environments: &[String]) -> Vec<String> {
        let mut p = Vec::new();
        if !environments.contains(&self.environment) {
            p.push(format!(
                "trust.environment {:?} is not declared in environments ({})",
                self.environment,
                environments.join(", ")
            ));
        }
        let g = &self.gates;
        rate(
            &mut p,
            "trust.gates.shadow_to_assist.accuracy_above",
            g.shadow_to_assist.accuracy_above,
        );
        rate(
            &mut p,
            "trust.gates.assist_to_remediate.agreement_above",
            g.assist_to_remediate.agreement_above,
        );
        rate(
            &mut p,
            "trust.gates.assist_to_remediate.minimal_edit_acceptance_above",
            g.assist_to_remediate.minimal_edit_acceptance_above,
        );
        rate(
            &mut p,
            "trust.gates.assist_to_remediate.minimal_edit_max",
            g.assist_to_remediate.minimal_edit_max,
        );
        rate(
            &mut p,
            "trust.gates.remediate_to_autonomous.success_above",
            g.remediate_to_autonomous.success_above,
        );
        rate(
            &mut p,
            "trust.gates.remediate_to_autonomous.rollbacks_below",
            g.remediate_to_autonomous.rollbacks_below,
        );
        let d = &self.demotion;
        rate(&mut p, "trust.demotion.accuracy_floor", d.accuracy_floor);
        rate(&mut p, "trust.demotion.agreement_floor", d.agreement_floor);
        rate(&mut p, "trust.demotion.success_floor", d.success_floor);
        if d.window_outcomes == 0 || d.window_seconds == 0 {
            p.push("trust.demotion.window_outcomes and window_seconds must be at least 1".into());
        }
        if d.max_rollbacks == 0 {
            p.push("trust.demotion.max_rollbacks must be at least 1".into());
        }
        if self.approvals.ttl_seconds == 0 {
            p.push("trust.approvals.ttl_seconds must be at least 1".into());
        }
        let r = &self.remediation;
        if r.image.is_empty() {
            p.push("trust.remediation.image must not be empty".into());
        }
        if r.job_timeout_seconds == 0 || r.verify_window_seconds == 0 || r.max_replicas == 0 {
            p.push("trust.remediation: job_timeout_seconds, verify_window_seconds and max_replicas must be at least 1".into());
        }
        let mut subjects = std::collections::BTreeSet::new();
        for (i, t) in self.operators.tokens.iter().enumerate() {
            if t.subject.is_empty() || !subjects.insert(t.subject.as_str()) {
                p.push(format!(
                    "trust.operators.tokens[{i}].subject {:?}: empty or declared twice",
                    t.subject
                ));
            }
            if crate::auth::is_agent_subject(&t.subject) {
                p.push(format!(
                    "trust.operators.tokens[{i}].subject {:?}: an agent identity cannot be an operator",
                    t.subject
                ));
            }
            match (&t.sha256, &t.token_file) {
                (Some(h), None) => {
                    if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                        p.push(format!(
                            "trust.operators.tokens[{i}].sha256: expected 64 hex characters"
                        ));
                    }
                }
                (None, Some(_)) => {}
                _ => p.push(format!(
                    "trust.operators.tokens[{i}]: set exactly one of sha256 and token_file"
                )),
            }
        }
        if let Some(o) = &self.operators.oidc {
            if o.issuer.is_empty() || o.audience.is_empty() {
                p.push("trust.operators.oidc: issuer and audience are required".into());
            }
            if o.pem_keys.is_empty() && o.jwks_file.is_none() {
                p.push("trust.operators.oidc: configure pem_keys or jwks_file".into());
            }
            for a in &o.algorithms {
                if a != "RS256" && a != "ES256" {
                    p.push(format!(
                        "trust.operators.oidc.algorithms: {a:?} is not supported (RS256, ES256)"
                    ));
                }
            }
            if o.roles.is_empty() {
                p.push("trust.operators.oidc.roles: map at least one claim value to a role".into());
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_follow_the_article() {
        let c = TrustConfig::default();
        assert!(c.validate(&["dev".into()]).is_empty());
        assert_eq!(c.gates.shadow_to_assist.accuracy_above, 0.95);
        assert_eq!(c.gates.shadow_to_assist.min_samples, 100);
        assert_eq!(c.gates.assist_to_remediate.agreement_above, 0.90);
        assert_eq!(
            c.gates.assist_to_remediate.minimal_edit_acceptance_above,
            0.80
        );
        assert_eq!(c.gates.remediate_to_autonomous.success_above, 0.99);
        assert_eq!(c.gates.remediate_to_autonomous.rollbacks_below, 0.01);
    }

    #[test]
    fn bad_values_are_named() {
        let mut c = TrustConfig {
            environment: "moon".into(),
            ..TrustConfig::default()
        };
        c.gates.shadow_to_assist.accuracy_above = 1.5;
        c.operators.tokens.push(TokenOperator {
            subject: "system:serviceaccount:warden:agent".into(),
            role: Role::Approver,
            sha256: None,
            token_file: None,
        });
        let p = c.validate(&["dev".into()]).join("\n");
        assert!(p.contains("trust.environment"), "{p}");
        assert!(p.contains("accuracy_above"), "{p}");
        assert!(p.contains("agent identity"), "{p}");
        assert!(p.contains("exactly one of sha256 and token_file"), "{p}");
    }
}
