//! Promotion gates, evaluated purely: outcomes in, per-gate verdicts out.
//!
//! Every threshold is strict, as the article states them ("> 95%", "< 1%"):
//! a value exactly at the threshold does not pass. A gate with fewer samples
//! than its minimum does not pass either, whatever the rate.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use warden_core::TrustPhase;

use crate::config::GatesConfig;
use crate::outcome::{Outcome, OutcomeRecord, RemediationResult, ReviewResult, VerdictKind};

/// Counts over a set of outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub reviews: u32,
    pub correct: u32,
    pub partially_correct: u32,
    pub wrong: u32,
    pub verdicts: u32,
    pub accepted: u32,
    pub modified: u32,
    pub rejected: u32,
    /// Accepted, or modified with an edit no larger than the minimal size.
    pub minimal_edit_accepted: u32,
    pub approvals: u32,
    pub denials: u32,
    pub remediations: u32,
    pub successes: u32,
    pub failures: u32,
    pub rollbacks: u32,
}

impl Tally {
    pub fn of<'a>(
        outcomes: impl IntoIterator<Item = &'a OutcomeRecord>,
        minimal_edit_max: f64,
    ) -> Tally {
        let mut t = Tally::default();
        for o in outcomes {
            match &o.outcome {
                Outcome::ShadowReview { result } => {
                    t.reviews += 1;
                    match result {
                        ReviewResult::Correct => t.correct += 1,
                        ReviewResult::PartiallyCorrect => t.partially_correct += 1,
                        ReviewResult::Wrong => t.wrong += 1,
                    }
                }
                Outcome::Verdict { verdict, edit_size } => {
                    t.verdicts += 1;
                    match verdict {
                        VerdictKind::Accept => {
                            t.accepted += 1;
                            t.minimal_edit_accepted += 1;
                        }
                        VerdictKind::Modify => {
                            t.modified += 1;
                            if *edit_size <= minimal_edit_max {
                                t.minimal_edit_accepted += 1;
                            }
                        }
                        VerdictKind::Reject => t.rejected += 1,
                    }
                }
                Outcome::ApprovalDecision { approved } => {
                    if *approved {
                        t.approvals += 1;
                    } else {
                        t.denials += 1;
                    }
                }
                Outcome::Remediation { result } => {
                    t.remediations += 1;
                    match result {
                        RemediationResult::Success => t.successes += 1,
                        RemediationResult::Failure => t.failures += 1,
                        RemediationResult::RolledBack => t.rollbacks += 1,
                    }
                }
            }
        }
        t
    }

    /// Correct reviews over all reviews. Partially correct counts as not
    /// correct: the gate asks whether the agent named the root cause.
    pub fn accuracy(&self) -> Option<f64> {
        ratio(self.correct, self.reviews)
    }

    /// Verdicts that kept the diagnosis (accept or modify) over all verdicts.
    pub fn agreement(&self) -> Option<f64> {
        ratio(self.accepted + self.modified, self.verdicts)
    }

    pub fn minimal_edit_acceptance(&self) -> Option<f64> {
        ratio(self.minimal_edit_accepted, self.verdicts)
    }

    pub fn success_rate(&self) -> Option<f64> {
        ratio(self.successes, self.remediations)
    }

    pub fn rollback_rate(&self) -> Option<f64> {
        ratio(self.rollbacks, self.remediations)
    }
}

fn ratio(n: u32, d: u32) -> Option<f64> {
    (d > 0).then(|| f64::from(n) / f64::from(d))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// value > threshold
    Above,
    /// value < threshold
    Below,
}

/// One metric of a gate against its threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub metric: String,
    pub comparison: Comparison,
    pub threshold: f64,
    /// None when there are no samples.
    pub value: Option<f64>,
    pub samples: u32,
    pub min_samples: u32,
    pub pass: bool,
    pub why: String,
}

fn check(
    metric: &str,
    comparison: Comparison,
    threshold: f64,
    value: Option<f64>,
    samples: u32,
    min_samples: u32,
) -> Check {
    let (pass, why) = match value {
        None => (false, format!("{metric}: no samples yet")),
        Some(_) if samples < min_samples => (
            false,
            format!("{metric}: too few samples ({samples} of at least {min_samples})"),
        ),
        Some(v) => {
            let (ok, word) = match comparison {
                Comparison::Above => (v > threshold, "above"),
                Comparison::Below => (v < threshold, "below"),
            };
            if ok {
                (
                    true,
                    format!("{metric}: {v:.4} is {word} {threshold} over {samples} samples"),
                )
            } else {
                (
                    false,
                    format!(
                        "{metric}: {v:.4} is not {word} {threshold} over {samples} samples (thresholds are strict)"
                    ),
                )
            }
        }
    };
    Check {
        metric: metric.to_string(),
        comparison,
        threshold,
        value,
        samples,
        min_samples,
        pass,
        why,
    }
}

/// A recorded sign-off for promoting an environment to a phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signoff {
    pub environment: String,
    pub to_phase: TrustPhase,
    /// The sign-off role (`operations_lead`, `platform_lead`, ...).
    pub role: String,
    pub subject: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignoffCheck {
    pub required: Vec<String>,
    pub present: Vec<String>,
    pub missing: Vec<String>,
    pub pass: bool,
}

/// The verdict of one gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateEvaluation {
    pub from: TrustPhase,
    pub to: TrustPhase,
    pub checks: Vec<Check>,
    pub signoffs: Option<SignoffCheck>,
    pub pass: bool,
    pub why: String,
}

fn gate(
    from: TrustPhase,
    to: TrustPhase,
    checks: Vec<Check>,
    signoffs: Option<SignoffCheck>,
) -> GateEvaluation {
    let mut reasons: Vec<String> = checks
        .iter()
        .filter(|c| !c.pass)
        .map(|c| c.why.clone())
        .collect();
    if let Some(s) = &signoffs
        && !s.pass
    {
        reasons.push(format!("missing sign-offs: {}", s.missing.join(", ")));
    }
    let pass = reasons.is_empty();
    let why = if pass {
        format!("{from} -> {to}: every check passes")
    } else {
        format!("{from} -> {to} is not available: {}", reasons.join("; "))
    };
    GateEvaluation {
        from,
        to,
        checks,
        signoffs,
        pass,
        why,
    }
}

/// Evaluates all three gates on `outcomes` (those of one environment) and
/// the sign-offs recorded for it.
pub fn evaluate_gates(
    outcomes: &[OutcomeRecord],
    config: &GatesConfig,
    signoffs: &[Signoff],
) -> Vec<GateEvaluation> {
    let g1 = &config.shadow_to_assist;
    let g2 = &config.assist_to_remediate;
    let g3 = &config.remediate_to_autonomous;
    let t = Tally::of(outcomes, g2.minimal_edit_max);

    let shadow = gate(
        TrustPhase::Shadow,
        TrustPhase::Assist,
        vec![check(
            "diagnostic_accuracy",
            Comparison::Above,
            g1.accuracy_above,
            t.accuracy(),
            t.reviews,
            g1.min_samples,
        )],
        None,
    );
    let assist = gate(
        TrustPhase::Assist,
        TrustPhase::Remediate,
        vec![
            check(
                "operator_agreement",
                Comparison::Above,
                g2.agreement_above,
                t.agreement(),
                t.verdicts,
                g2.min_samples,
            ),
            check(
                "minimal_edit_acceptance",
                Comparison::Above,
                g2.minimal_edit_acceptance_above,
                t.minimal_edit_acceptance(),
                t.verdicts,
                g2.min_samples,
            ),
        ],
        None,
    );
    let present: Vec<String> = g3
        .required_signoffs
        .iter()
        .filter(|r| {
            signoffs
                .iter()
                .any(|s| &s.role == *r && s.to_phase == TrustPhase::Autonomous)
        })
        .cloned()
        .collect();
    let missing: Vec<String> = g3
        .required_signoffs
        .iter()
        .filter(|r| !present.contains(r))
        .cloned()
        .collect();
    let remediate = gate(
        TrustPhase::Remediate,
        TrustPhase::Autonomous,
        vec![
            check(
                "remediation_success",
                Comparison::Above,
                g3.success_above,
                t.success_rate(),
                t.remediations,
                g3.min_samples,
            ),
            check(
                "rollback_rate",
                Comparison::Below,
                g3.rollbacks_below,
                t.rollback_rate(),
                t.remediations,
                g3.min_samples,
            ),
        ],
        Some(SignoffCheck {
            required: g3.required_signoffs.clone(),
            pass: missing.is_empty(),
            present,
            missing,
        }),
    );
    vec![shadow, assist, remediate]
}

/// The phase after `phase`, if any.
pub fn next_phase(phase: TrustPhase) -> Option<TrustPhase> {
    match phase {
        TrustPhase::Shadow => Some(TrustPhase::Assist),
        TrustPhase::Assist => Some(TrustPhase::Remediate),
        TrustPhase::Remediate => Some(TrustPhase::Autonomous),
        TrustPhase::Autonomous => None,
    }
}

/// The phase before `phase`, if any.
pub fn previous_phase(phase: TrustPhase) -> Option<TrustPhase> {
    match phase {
        TrustPhase::Shadow => None,
        TrustPhase::Assist => Some(TrustPhase::Shadow),
        TrustPhase::Remediate => Some(TrustPhase::Assist),
        TrustPhase::Autonomous => Some(TrustPhase::Remediate),
    }
}
