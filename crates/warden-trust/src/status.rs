//! The trust status of an environment: its phase, every gate's metrics
//! against their thresholds, and why a promotion is or is not available.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use warden_core::TrustPhase;

use crate::config::TrustConfig;
use crate::demotion::window;
use crate::gates::{GateEvaluation, Signoff, Tally, evaluate_gates, next_phase};
use crate::outcome::OutcomeRecord;
use crate::store::PhaseState;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrustStatus {
    pub environment: String,
    pub phase: TrustPhase,
    pub since: Option<DateTime<Utc>>,
    pub reason: String,
    /// All three gates, on every outcome recorded for the environment.
    pub gates: Vec<GateEvaluation>,
    /// The phase a promotion would move to, if any.
    pub next_phase: Option<TrustPhase>,
    pub promotion_available: bool,
    pub why: String,
    /// The demotion window's counts.
    pub window: Tally,
}

/// Pure: the status of `environment` given its persisted state (or the
/// configured phase when none is persisted yet), outcomes and sign-offs.
pub fn status(
    environment: &str,
    configured: TrustPhase,
    state: Option<&PhaseState>,
    outcomes: &[OutcomeRecord],
    signoffs: &[Signoff],
    config: &TrustConfig,
    now: DateTime<Utc>,
) -> TrustStatus {
    let phase = state.map_or(configured, |s| s.phase);
    let gates = evaluate_gates(outcomes, &config.gates, signoffs);
    let next = next_phase(phase);
    let gate = gates.iter().find(|g| g.from == phase);
    let (available, why) = match (next, gate) {
        (None, _) => (false, format!("{phase} is the highest phase")),
        (Some(_), Some(g)) if g.pass => (
            true,
            format!(
                "{}; run `warden trust propose-promotion --env {environment}` for the configuration change to review",
                g.why
            ),
        ),
        (Some(_), Some(g)) => (false, g.why.clone()),
        (Some(n), None) => (false, format!("no gate leads from {phase} to {n}")),
    };
    let since = state.map(|s| s.since);
    let in_window = window(
        outcomes,
        since.unwrap_or(DateTime::<Utc>::MIN_UTC),
        now,
        &config.demotion,
    );
    TrustStatus {
        environment: environment.to_string(),
        phase,
        since,
        reason: state.map_or_else(
            || "from the configuration (not yet persisted)".to_string(),
            |s| s.reason.clone(),
        ),
        gates,
        next_phase: next,
        promotion_available: available,
        why,
        window: Tally::of(
            in_window.iter().copied(),
            config.gates.assist_to_remediate.minimal_edit_max,
        ),
    }
}

impl TrustStatus {
    /// The human-readable rendering `warden trust status` prints.
    pub fn render(&self) -> String {
        let mut out = format!("environment {}: phase {}", self.environment, self.phase);
        if let Some(s) = self.since {
            out.push_str(&format!(" since {}", s.to_rfc3339()));
        }
        out.push_str(&format!(" ({})\n", self.reason));
        for g in &self.gates {
            out.push_str(&format!(
                "  gate {} -> {}: {}\n",
                g.from,
                g.to,
                if g.pass { "pass" } else { "not met" }
            ));
            for c in &g.checks {
                let value = c
                    .value
                    .map_or_else(|| "-".to_string(), |v| format!("{v:.4}"));
                let op = match c.comparison {
                    crate::gates::Comparison::Above => ">",
                    crate::gates::Comparison::Below => "<",
                };
                out.push_str(&format!(
                    "    {:<24} {value:>8} (needs {op} {}) samples {}/{} {}\n",
                    c.metric,
                    c.threshold,
                    c.samples,
                    c.min_samples,
                    if c.pass { "ok" } else { "no" }
                ));
            }
            if let Some(s) = &g.signoffs {
                out.push_str(&format!(
                    "    sign-offs: {} of {} (missing: {})\n",
                    s.present.len(),
                    s.required.len(),
                    if s.missing.is_empty() {
                        "none".to_string()
                    } else {
                        s.missing.join(", ")
                    }
                ));
            }
        }
        out.push_str(&format!(
            "  promotion: {} - {}\n",
            if self.promotion_available {
                "available"
            } else {
                "not available"
            },
            self.why
        ));
        out
    }
}
