//! The planner: from an incident's shape to the resources, deadline and
//! reasoning budget of its investigation.
//!
//! Investigations vary by an order of magnitude (200 MB for two minutes, or
//! 4 GB for fifteen), so one static limit either starves the large ones or
//! wastes memory on the small ones. The class is decided from what is known
//! before the job starts: how many domains the alerts span and how many there
//! are.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::alert::Domain;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Complexity {
    Simple,
    Moderate,
    MultiDomain,
}

impl Complexity {
    pub const ALL: [Complexity; 3] = [
        Complexity::Simple,
        Complexity::Moderate,
        Complexity::MultiDomain,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Complexity::Simple => "simple",
            Complexity::Moderate => "moderate",
            Complexity::MultiDomain => "multi_domain",
        }
    }
}

impl std::str::FromStr for Complexity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Complexity::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                format!("unknown complexity {s:?}; expected simple, moderate or multi_domain")
            })
    }
}

/// Limits and budgets for one complexity class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceProfile {
    pub memory_bytes: u64,
    /// CPU in millicores (1000 = one core).
    pub cpu_millis: u32,
    pub max_processes: u32,
    pub deadline_seconds: u64,
    /// Reasoning cycles before the circuit breaker trips.
    pub depth_budget: u32,
    /// LLM spend ceiling for the investigation.
    pub cost_budget_usd: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlannerConfig {
    /// At or above this many domains an incident is multi-domain.
    pub multi_domain_min_domains: usize,
    /// At or above this many alerts an incident is at least moderate.
    pub moderate_min_alerts: usize,
    pub simple: ResourceProfile,
    pub moderate: ResourceProfile,
    pub multi_domain: ResourceProfile,
}

const MIB: u64 = 1024 * 1024;

impl Default for PlannerConfig {
    fn default() -> Self {
        PlannerConfig {
            multi_domain_min_domains: 3,
            moderate_min_alerts: 20,
            // The article's numbers: ~200 MB and two minutes for a simple
            // connectivity problem, up to 4 GB and fifteen minutes for a
            // cascading multi-domain failure; 8 and 15 reasoning cycles.
            simple: ResourceProfile {
                memory_bytes: 256 * MIB,
                cpu_millis: 500,
                max_processes: 32,
                deadline_seconds: 180,
                depth_budget: 8,
                cost_budget_usd: 0.50,
            },
            moderate: ResourceProfile {
                memory_bytes: 1024 * MIB,
                cpu_millis: 1000,
                max_processes: 64,
                deadline_seconds: 600,
                depth_budget: 12,
                cost_budget_usd: 2.00,
            },
            multi_domain: ResourceProfile {
                memory_bytes: 4096 * MIB,
                cpu_millis: 2000,
                max_processes: 64,
                deadline_seconds: 900,
                depth_budget: 15,
                cost_budget_usd: 4.00,
            },
        }
    }
}

impl PlannerConfig {
    pub fn profile(&self, class: Complexity) -> &ResourceProfile {
        match class {
            Complexity::Simple => &self.simple,
            Complexity::Moderate => &self.moderate,
            Complexity::MultiDomain => &self.multi_domain,
        }
    }

    /// Problems a user must fix, each naming the field.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for class in Complexity::ALL {
            let p = self.profile(class);
            let name = class.as_str();
            if p.memory_bytes < 16 * MIB {
                problems.push(format!(
                    "planner.{name}.memory_bytes must be at least 16 MiB"
                ));
            }
            if p.cpu_millis == 0 {
                problems.push(format!("planner.{name}.cpu_millis must be positive"));
            }
            if p.max_processes < 4 {
                problems.push(format!("planner.{name}.max_processes must be at least 4"));
            }
            if p.deadline_seconds == 0 {
                problems.push(format!("planner.{name}.deadline_seconds must be positive"));
            }
            if p.depth_budget == 0 {
                problems.push(format!("planner.{name}.depth_budget must be positive"));
            }
            // Written so that NaN is refused too.
            if p.cost_budget_usd.is_nan() || p.cost_budget_usd < 0.0 {
                problems.push(format!(
                    "planner.{name}.cost_budget_usd must be zero or more"
                ));
            }
        }
        if self.multi_domain_min_domains < 2 {
            problems.push("planner.multi_domain_min_domains must be at least 2".to_string());
        }
        problems
    }
}

/// What the planner decided for one investigation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub complexity: Complexity,
    pub domains: Vec<Domain>,
    pub alert_count: usize,
    pub profile: ResourceProfile,
}

#[derive(Debug, Clone, Default)]
pub struct Planner {
    config: PlannerConfig,
}

impl Planner {
    pub fn new(config: PlannerConfig) -> Self {
        Planner { config }
    }

    pub fn classify(&self, domains: usize, alerts: usize) -> Complexity {
        if domains >= self.config.multi_domain_min_domains {
            Complexity::MultiDomain
        } else if domains > 1 || alerts >= self.config.moderate_min_alerts {
            Complexity::Moderate
        } else {
            Complexity::Simple
        }
    }

    pub fn plan(&self, domains: &BTreeSet<Domain>, alert_count: usize) -> Plan {
        let complexity = self.classify(domains.len(), alert_count);
        Plan {
            complexity,
            domains: domains.iter().cloned().collect(),
            alert_count,
            profile: self.config.profile(complexity).clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domains(names: &[&str]) -> BTreeSet<Domain> {
        names.iter().map(|n| Domain::new(*n)).collect()
    }

    #[test]
    fn one_domain_few_alerts_is_simple_with_eight_cycles() {
        let plan = Planner::default().plan(&domains(&["application"]), 3);
        assert_eq!(plan.complexity, Complexity::Simple);
        assert_eq!(plan.profile.depth_budget, 8);
    }

    #[test]
    fn four_domains_is_multi_domain_with_fifteen_cycles() {
        let plan = Planner::default().plan(
            &domains(&["network", "application", "database", "security"]),
            300,
        );
        assert_eq!(plan.complexity, Complexity::MultiDomain);
        assert_eq!(plan.profile.depth_budget, 15);
        assert_eq!(plan.profile.memory_bytes, 4096 * MIB);
    }

    #[test]
    fn many_alerts_in_one_domain_is_moderate() {
        let plan = Planner::default().plan(&domains(&["database"]), 40);
        assert_eq!(plan.complexity, Complexity::Moderate);
    }

    #[test]
    fn validate_names_each_bad_field() {
        let mut c = PlannerConfig::default();
        c.simple.depth_budget = 0;
        c.moderate.memory_bytes = 1;
        let problems = c.validate();
        assert!(
            problems
                .iter()
                .any(|p| p.contains("planner.simple.depth_budget"))
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("planner.moderate.memory_bytes"))
        );
    }
}
