//! Trust phases: what the agent may do is earned, phase by phase.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustPhase {
    /// Read-only; reports are stored and scored afterwards, not shown.
    Shadow,
    /// Read-only; reports go to the on-call.
    Assist,
    /// Allow-listed actions after explicit approval.
    Remediate,
    /// Allow-listed actions without approval above a confidence threshold.
    Autonomous,
}

impl TrustPhase {
    pub const ALL: [TrustPhase; 4] = [
        TrustPhase::Shadow,
        TrustPhase::Assist,
        TrustPhase::Remediate,
        TrustPhase::Autonomous,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TrustPhase::Shadow => "shadow",
            TrustPhase::Assist => "assist",
            TrustPhase::Remediate => "remediate",
            TrustPhase::Autonomous => "autonomous",
        }
    }
}

impl fmt::Display for TrustPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TrustPhase {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TrustPhase::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown trust phase {s:?}; expected shadow, assist, remediate or autonomous"
                )
            })
    }
}
