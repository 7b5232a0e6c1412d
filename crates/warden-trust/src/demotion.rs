//! Automatic demotion: when the rolling window of recent outcomes falls
//! below a floor, the environment drops one phase.
//!
//! The window holds only outcomes recorded since the current phase began:
//! the rollbacks that caused a demotion must not demote the lower phase
//! again. Promotion is never automatic (see `promotion`).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use warden_core::TrustPhase;

use crate::config::DemotionConfig;
use crate::gates::{Tally, previous_phase};
use crate::outcome::OutcomeRecord;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Demotion {
    pub from: TrustPhase,
    pub to: TrustPhase,
    pub reasons: Vec<String>,
    /// The counts over the window that decided it.
    pub window: Tally,
}

/// The outcomes in the rolling window, oldest first: recorded at or after
/// `phase_since`, within `window_seconds` of `now`, the last
/// `window_outcomes` of them.
pub fn window<'a>(
    outcomes: &'a [OutcomeRecord],
    phase_since: DateTime<Utc>,
    now: DateTime<Utc>,
    config: &DemotionConfig,
) -> Vec<&'a OutcomeRecord> {
    let oldest = now - Duration::seconds(i64::try_from(config.window_seconds).unwrap_or(i64::MAX));
    let mut inside: Vec<&OutcomeRecord> = outcomes
        .iter()
        .filter(|o| o.at >= phase_since && o.at >= oldest && o.at <= now)
        .collect();
    inside.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.id.cmp(&b.id)));
    let keep = usize::try_from(config.window_outcomes).unwrap_or(usize::MAX);
    let skip = inside.len().saturating_sub(keep);
    inside.split_off(skip)
}

/// Whether the environment, now in `phase` since `phase_since`, must drop
/// a phase. Floors apply to the phases the corresponding gate admitted:
/// accuracy to assist and above, agreement and remediation results to
/// remediate and above.
pub fn evaluate_demotion(
    phase: TrustPhase,
    outcomes: &[OutcomeRecord],
    phase_since: DateTime<Utc>,
    now: DateTime<Utc>,
    config: &DemotionConfig,
    minimal_edit_max: f64,
) -> Option<Demotion> {
    let to = previous_phase(phase)?;
    let inside = window(outcomes, phase_since, now, config);
    let t = Tally::of(inside.iter().copied(), minimal_edit_max);
    let mut reasons = Vec::new();
    let enough = |n: u32| n >= config.min_samples;
    if phase >= TrustPhase::Assist
        && enough(t.reviews)
        && let Some(a) = t.accuracy()
        && a < config.accuracy_floor
    {
        reasons.push(format!(
            "diagnostic accuracy {a:.3} over the last {} reviews is below the floor {}",
            t.reviews, config.accuracy_floor
        ));
    }
    if phase >= TrustPhase::Remediate {
        if t.rollbacks >= config.max_rollbacks {
            reasons.push(format!(
                "{} rollbacks in the window (limit {})",
                t.rollbacks, config.max_rollbacks
            ));
        }
        if enough(t.verdicts)
            && let Some(a) = t.agreement()
            && a < config.agreement_floor
        {
            reasons.push(format!(
                "operator agreement {a:.3} over the last {} verdicts is below the floor {}",
                t.verdicts, config.agreement_floor
            ));
        }
        if enough(t.remediations)
            && let Some(s) = t.success_rate()
            && s < config.success_floor
        {
            reasons.push(format!(
                "remediation success {s:.3} over the last {} remediations is below the floor {}",
                t.remediations, config.success_floor
            ));
        }
    }
    (!reasons.is_empty()).then_some(Demotion {
        from: phase,
        to,
        reasons,
        window: t,
    })
}
