#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Gate evaluation and automatic demotion on recorded outcomes.

use chrono::{DateTime, Duration, TimeZone, Utc};
use warden_core::TrustPhase;
use warden_trust::config::{DemotionConfig, GatesConfig};
use warden_trust::demotion::window;
use warden_trust::gates::{GateEvaluation, Signoff};
use warden_trust::{
    Outcome, OutcomeRecord, RemediationResult, ReviewResult, VerdictKind, evaluate_demotion,
    evaluate_gates,
};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn rec(i: i64, outcome: Outcome) -> OutcomeRecord {
    OutcomeRecord::new("prod", "test", t0() + Duration::seconds(i), outcome)
}

fn reviews(correct: u32, partial: u32, wrong: u32) -> Vec<OutcomeRecord> {
    let mut out = Vec::new();
    let mut i = 0;
    for (n, result) in [
        (correct, ReviewResult::Correct),
        (partial, ReviewResult::PartiallyCorrect),
        (wrong, ReviewResult::Wrong),
    ] {
        for _ in 0..n {
            out.push(rec(i, Outcome::ShadowReview { result }));
            i += 1;
        }
    }
    out
}

fn remediations(success: u32, failure: u32, rolled_back: u32) -> Vec<OutcomeRecord> {
    let mut out = Vec::new();
    let mut i = 0;
    for (n, result) in [
        (success, RemediationResult::Success),
        (failure, RemediationResult::Failure),
        (rolled_back, RemediationResult::RolledBack),
    ] {
        for _ in 0..n {
            out.push(rec(i, Outcome::Remediation { result }));
            i += 1;
        }
    }
    out
}

fn verdicts(accept: u32, small_modify: u32, big_modify: u32, reject: u32) -> Vec<OutcomeRecord> {
    let mut out = Vec::new();
    let mut i = 0;
    for (n, verdict, edit_size) in [
        (accept, VerdictKind::Accept, 0.0),
        (small_modify, VerdictKind::Modify, 0.05),
        (big_modify, VerdictKind::Modify, 0.6),
        (reject, VerdictKind::Reject, 1.0),
    ] {
        for _ in 0..n {
            out.push(rec(i, Outcome::Verdict { verdict, edit_size }));
            i += 1;
        }
    }
    out
}

fn gate(outcomes: &[OutcomeRecord], from: TrustPhase) -> GateEvaluation {
    gate_with(outcomes, from, &[])
}

fn gate_with(outcomes: &[OutcomeRecord], from: TrustPhase, signoffs: &[Signoff]) -> GateEvaluation {
    evaluate_gates(outcomes, &GatesConfig::default(), signoffs)
        .into_iter()
        .find(|g| g.from == from)
        .unwrap()
}

#[test]
fn shadow_gate_passes_above_95_percent_over_100_reviews() {
    let g = gate(&reviews(96, 2, 2), TrustPhase::Shadow);
    assert!(g.pass, "{}", g.why);
    assert_eq!(g.to, TrustPhase::Assist);
    let c = &g.checks[0];
    assert_eq!(c.metric, "diagnostic_accuracy");
    assert_eq!(c.samples, 100);
    assert_eq!(c.value, Some(0.96));
}

#[test]
fn shadow_gate_exactly_at_95_percent_fails_because_thresholds_are_strict() {
    let g = gate(&reviews(95, 0, 5), TrustPhase::Shadow);
    assert!(!g.pass);
    assert_eq!(g.checks[0].value, Some(0.95));
    assert!(g.why.contains("is not above 0.95"), "{}", g.why);
    assert!(g.why.contains("strict"), "{}", g.why);
}

#[test]
fn shadow_gate_with_too_few_samples_fails_even_at_100_percent() {
    let g = gate(&reviews(99, 0, 0), TrustPhase::Shadow);
    assert!(!g.pass);
    assert_eq!(g.checks[0].value, Some(1.0));
    assert!(
        g.why.contains("too few samples (99 of at least 100)"),
        "{}",
        g.why
    );
    let g = gate(&[], TrustPhase::Shadow);
    assert!(!g.pass);
    assert_eq!(g.checks[0].value, None);
    assert!(g.why.contains("no samples"), "{}", g.why);
}

#[test]
fn partially_correct_reviews_do_not_count_as_accurate() {
    // 94 correct + 6 partially correct: 94% accurate, below the gate.
    let g = gate(&reviews(94, 6, 0), TrustPhase::Shadow);
    assert!(!g.pass);
    assert_eq!(g.checks[0].value, Some(0.94));
}

#[test]
fn assist_gate_needs_agreement_and_minimal_edit_acceptance() {
    // 50 verdicts: 42 accept, 4 small modify, 2 big modify, 2 reject ->
    // agreement 48/50 = 0.96, minimal-edit acceptance 46/50 = 0.92.
    let g = gate(&verdicts(42, 4, 2, 2), TrustPhase::Assist);
    assert!(g.pass, "{}", g.why);
    // Big edits keep agreement but lose minimal-edit acceptance:
    // 30 accept + 17 big modify + 3 reject: agreement 0.94, acceptance 0.60.
    let g = gate(&verdicts(30, 0, 17, 3), TrustPhase::Assist);
    assert!(!g.pass);
    assert!(g.checks[0].pass, "{}", g.checks[0].why);
    assert!(!g.checks[1].pass);
    assert_eq!(g.checks[1].value, Some(0.6));
    // Exactly 90% agreement fails.
    let g = gate(&verdicts(45, 0, 0, 5), TrustPhase::Assist);
    assert_eq!(g.checks[0].value, Some(0.9));
    assert!(!g.checks[0].pass);
    // Too few verdicts.
    let g = gate(&verdicts(49, 0, 0, 0), TrustPhase::Assist);
    assert!(!g.pass);
    assert!(
        g.why.contains("too few samples (49 of at least 50)"),
        "{}",
        g.why
    );
}

fn signoff(role: &str) -> Signoff {
    Signoff {
        environment: "prod".into(),
        to_phase: TrustPhase::Autonomous,
        role: role.into(),
        subject: format!("{role}-person"),
        at: t0(),
    }
}

#[test]
fn remediate_gate_needs_rates_and_both_signoffs() {
    let good = remediations(200, 0, 0);
    let g = gate(&good, TrustPhase::Remediate);
    assert!(g.checks.iter().all(|c| c.pass));
    assert!(!g.pass, "sign-offs are missing");
    assert!(
        g.why
            .contains("missing sign-offs: operations_lead, platform_lead"),
        "{}",
        g.why
    );
    let g = gate_with(&good, TrustPhase::Remediate, &[signoff("operations_lead")]);
    assert!(!g.pass);
    assert_eq!(g.signoffs.as_ref().unwrap().missing, vec!["platform_lead"]);
    let both = [signoff("operations_lead"), signoff("platform_lead")];
    let g = gate_with(&good, TrustPhase::Remediate, &both);
    assert!(g.pass, "{}", g.why);
    // A sign-off for another phase does not count.
    let mut other = signoff("platform_lead");
    other.to_phase = TrustPhase::Remediate;
    let g = gate_with(
        &good,
        TrustPhase::Remediate,
        &[signoff("operations_lead"), other],
    );
    assert!(!g.pass);
}

#[test]
fn remediate_gate_at_the_thresholds_fails() {
    let both = [signoff("operations_lead"), signoff("platform_lead")];
    // 99 of 100 succeed: exactly 99% success, not above it.
    let g = gate_with(&remediations(99, 1, 0), TrustPhase::Remediate, &both);
    assert_eq!(g.checks[0].value, Some(0.99));
    assert!(!g.checks[0].pass);
    assert!(!g.pass);
    // 1 rollback in 100: exactly 1%, not below it.
    let g = gate_with(&remediations(199, 0, 1), TrustPhase::Remediate, &both);
    assert!(g.checks[0].pass);
    assert_eq!(g.checks[1].value, Some(0.005));
    assert!(g.checks[1].pass);
    let g = gate_with(&remediations(99, 0, 1), TrustPhase::Remediate, &both);
    assert_eq!(g.checks[1].value, Some(0.01));
    assert!(!g.checks[1].pass);
}

#[test]
fn two_rollbacks_in_the_window_demote_remediate_to_assist() {
    let config = DemotionConfig::default();
    let mut outcomes = remediations(50, 0, 0);
    let one = vec![rec(
        100,
        Outcome::Remediation {
            result: RemediationResult::RolledBack,
        },
    )];
    let with_one: Vec<_> = outcomes.iter().cloned().chain(one).collect();
    assert_eq!(
        evaluate_demotion(
            TrustPhase::Remediate,
            &with_one,
            t0(),
            t0() + Duration::hours(1),
            &config,
            0.1
        ),
        None,
        "one rollback stays within the limit"
    );
    for i in [100, 101] {
        outcomes.push(rec(
            i,
            Outcome::Remediation {
                result: RemediationResult::RolledBack,
            },
        ));
    }
    let d = evaluate_demotion(
        TrustPhase::Remediate,
        &outcomes,
        t0(),
        t0() + Duration::hours(1),
        &config,
        0.1,
    )
    .expect("demoted");
    assert_eq!(d.from, TrustPhase::Remediate);
    assert_eq!(d.to, TrustPhase::Assist);
    assert_eq!(d.window.rollbacks, 2);
    assert_eq!(d.reasons.len(), 1, "{:?}", d.reasons);
    assert!(d.reasons[0].contains("2 rollbacks"), "{:?}", d.reasons);
    // The same rollbacks do not count against the phase that follows.
    let after = t0() + Duration::seconds(102);
    assert_eq!(
        evaluate_demotion(TrustPhase::Assist, &outcomes, after, after, &config, 0.1),
        None
    );
    // Nor once they have left the time window.
    let later = t0() + Duration::days(8);
    assert_eq!(
        evaluate_demotion(TrustPhase::Remediate, &outcomes, t0(), later, &config, 0.1),
        None
    );
}

#[test]
fn the_window_is_bounded_by_count_and_time() {
    let config = DemotionConfig {
        window_outcomes: 5,
        window_seconds: 60,
        ..DemotionConfig::default()
    };
    let outcomes = reviews(20, 0, 0);
    let w = window(&outcomes, t0(), t0() + Duration::seconds(19), &config);
    assert_eq!(w.len(), 5);
    assert_eq!(w[0].at, t0() + Duration::seconds(15));
    let w = window(&outcomes, t0(), t0() + Duration::seconds(75), &config);
    // Only those at 15..=19 s are within 60 s of 75 s.
    assert_eq!(w.len(), 5);
    let w = window(&outcomes, t0(), t0() + Duration::seconds(78), &config);
    assert_eq!(w.len(), 2);
}

#[test]
fn accuracy_below_its_floor_demotes_assist_to_shadow_but_not_on_few_samples() {
    let config = DemotionConfig::default();
    let now = t0() + Duration::hours(1);
    // 8 of 12 correct = 0.67 < 0.90, with 12 >= 10 samples.
    let d = evaluate_demotion(
        TrustPhase::Assist,
        &reviews(8, 0, 4),
        t0(),
        now,
        &config,
        0.1,
    )
    .expect("demoted");
    assert_eq!(d.to, TrustPhase::Shadow);
    assert!(d.reasons[0].contains("accuracy"), "{:?}", d.reasons);
    // 5 of 9: below the floor, but under the minimum sample count.
    assert_eq!(
        evaluate_demotion(
            TrustPhase::Assist,
            &reviews(5, 0, 4),
            t0(),
            now,
            &config,
            0.1
        ),
        None
    );
    // Shadow cannot drop further.
    assert_eq!(
        evaluate_demotion(
            TrustPhase::Shadow,
            &reviews(0, 0, 20),
            t0(),
            now,
            &config,
            0.1
        ),
        None
    );
}

#[test]
fn autonomous_drops_to_remediate_on_low_success() {
    let config = DemotionConfig::default();
    let d = evaluate_demotion(
        TrustPhase::Autonomous,
        &remediations(8, 3, 0),
        t0(),
        t0() + Duration::hours(1),
        &config,
        0.1,
    )
    .expect("demoted");
    assert_eq!(d.to, TrustPhase::Remediate);
    assert!(d.reasons.iter().any(|r| r.contains("remediation success")));
}
