//! Incidents: groups of alerts that share one cause, as far as correlation
//! can tell.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

use crate::alert::{Alert, AlertStatus, Domain};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IncidentId(pub String);

impl IncidentId {
    /// `inc-<ULID>`: sortable by creation time, unique without coordination.
    pub fn generate() -> Self {
        IncidentId(format!(
            "inc-{}",
            Ulid::new().to_string().to_ascii_lowercase()
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IncidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// At least one alert still firing.
    Open,
    /// Every alert resolved.
    Resolved,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Resolved => "resolved",
        }
    }
}

/// A dependency edge the sender knows about: `from` calls or depends on `to`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopologyHint {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: IncidentId,
    pub title: String,
    pub status: IncidentStatus,
    /// Earliest and latest `startsAt` of its alerts (event time).
    pub first_event_at: DateTime<Utc>,
    pub last_event_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub alerts: Vec<Alert>,
    pub topology: Vec<TopologyHint>,
}

impl Incident {
    pub fn domains(&self) -> BTreeSet<Domain> {
        self.alerts.iter().map(Alert::domain).collect()
    }

    pub fn firing_count(&self) -> usize {
        self.alerts
            .iter()
            .filter(|a| a.status == AlertStatus::Firing)
            .count()
    }

    /// Open while any alert fires: a resolved alert never closes an incident
    /// that still has firing ones.
    pub fn derived_status(&self) -> IncidentStatus {
        if self.firing_count() > 0 || self.alerts.is_empty() {
            IncidentStatus::Open
        } else {
            IncidentStatus::Resolved
        }
    }
}
