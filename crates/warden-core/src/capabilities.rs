//! What each trust phase may do, and which phase each environment is in.
//!
//! These are declared once (in `warden.yaml`) and read by three parts that
//! must agree: the action gate, the GitOps renderer and the scheduler.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::action::ActionKind;
use crate::trust::TrustPhase;

/// The capabilities of one trust phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseCapabilities {
    /// Data domains (names from `secrets.domains`) an investigation in this
    /// phase may read, before its plan narrows them.
    pub readable_domains: Vec<String>,
    /// Remediation actions the phase may run. Empty for read-only phases.
    #[serde(default)]
    pub actions: Vec<ActionKind>,
    /// Whether each action waits for an authorised operator's approval.
    #[serde(default = "yes")]
    pub approval_required: bool,
    /// Without approval, an action runs only when the diagnosis' confidence
    /// is at least this (0..=1).
    #[serde(default = "one")]
    pub confidence_threshold: f64,
}

fn yes() -> bool {
    true
}

fn one() -> f64 {
    1.0
}

/// The capabilities of all four phases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phases {
    pub shadow: PhaseCapabilities,
    pub assist: PhaseCapabilities,
    pub remediate: PhaseCapabilities,
    pub autonomous: PhaseCapabilities,
}

impl Phases {
    pub fn get(&self, phase: TrustPhase) -> &PhaseCapabilities {
        match phase {
            TrustPhase::Shadow => &self.shadow,
            TrustPhase::Assist => &self.assist,
            TrustPhase::Remediate => &self.remediate,
            TrustPhase::Autonomous => &self.autonomous,
        }
    }

    /// The defaults, given every declared domain name: all phases read all
    /// domains; remediate runs every allow-listed action after approval;
    /// autonomous runs the two least disruptive ones on its own at
    /// confidence 0.9 and above.
    pub fn defaults(domains: &[String]) -> Phases {
        let read_only = PhaseCapabilities {
            readable_domains: domains.to_vec(),
            actions: Vec::new(),
            approval_required: true,
            confidence_threshold: 1.0,
        };
        Phases {
            shadow: read_only.clone(),
            assist: read_only,
            remediate: PhaseCapabilities {
                readable_domains: domains.to_vec(),
                actions: ActionKind::ALL.to_vec(),
                approval_required: true,
                confidence_threshold: 0.9,
            },
            autonomous: PhaseCapabilities {
                readable_domains: domains.to_vec(),
                actions: vec![ActionKind::RestartPod, ActionKind::RolloutRestart],
                approval_required: false,
                confidence_threshold: 0.9,
            },
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (TrustPhase, &PhaseCapabilities)> {
        TrustPhase::ALL.into_iter().map(|p| (p, self.get(p)))
    }

    /// Problems with the declaration, each naming its field.
    pub fn validate(&self, known_domains: &[String]) -> Vec<String> {
        let mut problems = Vec::new();
        for (phase, caps) in self.iter() {
            for d in &caps.readable_domains {
                if !known_domains.contains(d) {
                    problems.push(format!(
                        "phases.{phase}.readable_domains: unknown domain {d:?} (declared: {})",
                        known_domains.join(", ")
                    ));
                }
            }
            if !(0.0..=1.0).contains(&caps.confidence_threshold) {
                problems.push(format!(
                    "phases.{phase}.confidence_threshold: {} is outside 0..=1",
                    caps.confidence_threshold
                ));
            }
            if matches!(phase, TrustPhase::Shadow | TrustPhase::Assist) && !caps.actions.is_empty()
            {
                problems.push(format!(
                    "phases.{phase}.actions: a read-only phase cannot run actions"
                ));
            }
        }
        problems
    }
}

/// One environment (dev, staging, prod) and the phase it is in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    pub name: String,
    pub phase: TrustPhase,
}

impl Environment {
    pub fn defaults() -> Vec<Environment> {
        [
            ("dev", TrustPhase::Shadow),
            ("staging", TrustPhase::Shadow),
            ("prod", TrustPhase::Shadow),
        ]
        .into_iter()
        .map(|(name, phase)| Environment {
            name: name.into(),
            phase,
        })
        .collect()
    }
}

/// Per-phase values keyed by phase, for places that need a map.
pub type PerPhase<T> = BTreeMap<TrustPhase, T>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_read_only_phases_run_nothing() {
        let domains = vec!["database".to_string()];
        let phases = Phases::defaults(&domains);
        assert!(phases.validate(&domains).is_empty());
        assert!(phases.shadow.actions.is_empty());
        assert!(phases.assist.actions.is_empty());
        assert!(phases.remediate.approval_required);
        assert!(!phases.autonomous.approval_required);
    }

    #[test]
    fn bad_declarations_are_named() {
        let domains = vec!["database".to_string()];
        let mut phases = Phases::defaults(&domains);
        phases.shadow.actions.push(ActionKind::RestartPod);
        phases.assist.readable_domains.push("nope".into());
        phases.autonomous.confidence_threshold = 1.5;
        let p = phases.validate(&domains).join("\n");
        assert!(p.contains("phases.shadow.actions"), "{p}");
        assert!(p.contains("phases.assist.readable_domains"), "{p}");
        assert!(p.contains("phases.autonomous.confidence_threshold"), "{p}");
    }
}
