//! AS@k: the share of cases whose true root-cause service is among the
//! top k of the ranking, per system, per fault type and on average
//! (the mean of the per-system values, as the Nezha paper reports it).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::cases::Case;

/// One case and where its true service landed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub system: String,
    pub inject_at: DateTime<Utc>,
    pub fault_type: String,
    pub truth: String,
    /// 1-based rank of the true service; `None` when not ranked at all.
    pub rank: Option<usize>,
    /// The top of the ranking, best first.
    pub top: Vec<String>,
}

impl Outcome {
    pub fn new(case: &Case, ranking: Vec<(String, f64)>) -> Outcome {
        let rank = ranking
            .iter()
            .position(|(s, _)| *s == case.service)
            .map(|i| i + 1);
        Outcome {
            system: case.system.clone(),
            inject_at: case.inject_at,
            fault_type: case.fault_type.clone(),
            truth: case.service.clone(),
            rank,
            top: ranking.into_iter().take(5).map(|(s, _)| s).collect(),
        }
    }
}

/// AS@1, AS@3, AS@5 over a group of cases.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AccuracyAtK {
    #[serde(rename = "AS@1")]
    pub at1: f64,
    #[serde(rename = "AS@3")]
    pub at3: f64,
    #[serde(rename = "AS@5")]
    pub at5: f64,
    pub cases: usize,
}

/// The share of `ranks` that are at most `k`.
pub fn accuracy_at(ranks: &[Option<usize>], k: usize) -> f64 {
    if ranks.is_empty() {
        return 0.0;
    }
    let hits = ranks.iter().filter(|r| r.is_some_and(|r| r <= k)).count();
    hits as f64 / ranks.len() as f64
}

impl AccuracyAtK {
    fn of<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> AccuracyAtK {
        let ranks: Vec<Option<usize>> = outcomes.into_iter().map(|o| o.rank).collect();
        AccuracyAtK {
            at1: accuracy_at(&ranks, 1),
            at3: accuracy_at(&ranks, 3),
            at5: accuracy_at(&ranks, 5),
            cases: ranks.len(),
        }
    }
}

/// The evaluation's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub systems: BTreeMap<String, AccuracyAtK>,
    /// The mean of the per-system values (`cases` is the total).
    pub average: AccuracyAtK,
    pub by_fault_type: BTreeMap<String, AccuracyAtK>,
    #[serde(skip)]
    pub outcomes: Vec<Outcome>,
}

impl Report {
    pub fn from_outcomes(outcomes: Vec<Outcome>) -> Report {
        let group = |key: fn(&Outcome) -> &str| {
            let mut groups: BTreeMap<String, Vec<&Outcome>> = BTreeMap::new();
            for o in &outcomes {
                groups.entry(key(o).to_string()).or_default().push(o);
            }
            groups
                .into_iter()
                .map(|(k, v)| (k, AccuracyAtK::of(v)))
                .collect::<BTreeMap<_, _>>()
        };
        let systems = group(|o| &o.system);
        let by_fault_type = group(|o| &o.fault_type);
        let n = systems.len().max(1) as f64;
        let mean = |f: fn(&AccuracyAtK) -> f64| systems.values().map(f).sum::<f64>() / n;
        let average = AccuracyAtK {
            at1: mean(|a| a.at1),
            at3: mean(|a| a.at3),
            at5: mean(|a| a.at5),
            cases: outcomes.len(),
        };
        Report {
            systems,
            average,
            by_fault_type,
            outcomes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(system: &str, fault: &str, rank: Option<usize>) -> Outcome {
        Outcome {
            system: system.into(),
            inject_at: DateTime::default(),
            fault_type: fault.into(),
            truth: "x".into(),
            rank,
            top: Vec::new(),
        }
    }

    #[test]
    fn accuracy_at_k_counts_ranks_within_k_and_misses_as_failures() {
        let ranks = [Some(1), Some(2), Some(4), None];
        assert_eq!(accuracy_at(&ranks, 1), 0.25);
        assert_eq!(accuracy_at(&ranks, 3), 0.5);
        assert_eq!(accuracy_at(&ranks, 5), 0.75);
        assert_eq!(accuracy_at(&[], 1), 0.0);
    }

    #[test]
    fn the_average_is_the_mean_of_systems_and_fault_types_are_grouped() {
        let report = Report::from_outcomes(vec![
            outcome("A", "cpu", Some(1)),
            outcome("A", "cpu", Some(1)),
            outcome("A", "delay", Some(3)),
            outcome("B", "delay", Some(2)),
        ]);
        assert!((report.systems["A"].at1 - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(report.systems["B"].at1, 0.0);
        assert!((report.average.at1 - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(report.average.cases, 4);
        assert_eq!(report.by_fault_type["cpu"].at1, 1.0);
        assert_eq!(report.by_fault_type["delay"].at3, 1.0);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["systems"]["B"]["AS@3"], 1.0);
        assert!(json.get("outcomes").is_none());
    }
}
