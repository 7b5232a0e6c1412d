//! Root-cause evaluation on the Nezha datasets (OnlineBoutique and
//! TrainTicket, FSE 2023).
//!
//! Each labelled fault injection becomes one shadow investigation: the
//! per-pod one-minute metrics around the injection are scored by the
//! agent's own anomaly engine ([`warden_agent::engines::anomaly`]) against
//! the minutes just before it, and services are ranked by how clearly
//! their own health departed from that baseline, relative to how far it
//! usually departs on that day (a [`Calibration`]). Ranking services rather
//! than pods keeps the answer stable across pod restarts, which is also
//! what an operator acts on.
//!
//! The layout is read as shipped (`rca_data/<date>/metric/*_metric.csv`,
//! `cases_dev.csv`); nothing is tuned per system or per case: one
//! [`EvalConfig`] serves both.

mod cases;
pub mod learn;
mod metrics;
mod rank;
mod score;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub use cases::{Case, parse_cases, read_cases, service_of_pod};
pub use learn::{FeatureSpace, Labelled, LearnConfig, rank_learned};
pub use metrics::{PodMetrics, parse_pod_metrics, read_day};
pub use rank::{Calibration, EvalConfig, rank_services, service_scores};
pub use score::{AccuracyAtK, Outcome, Report, accuracy_at};

/// What can go wrong reading the dataset. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A row did not have the expected shape.
    #[error("{path}:{line}: {message}")]
    BadRow {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// A case refers to a day with no metrics.
    #[error("{path}: no pod metrics found (needed by the case on line {line})")]
    NoMetrics { path: PathBuf, line: usize },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn read_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Runs one investigation per case in `cases_file` over the dataset in
/// `data_dir` and scores the rankings.
pub fn evaluate(data_dir: &Path, cases_file: &Path, cfg: &EvalConfig) -> Result<Report> {
    let cases = read_cases(cases_file)?;
    let days = Days::read(data_dir, &cases)?;
    let mut calibrations: BTreeMap<&str, Calibration> = BTreeMap::new();
    let mut outcomes = Vec::with_capacity(cases.len());
    for case in &cases {
        let pods = days.of(case);
        let calibration = calibrations.entry(&case.date).or_insert_with(|| {
            if cfg.calibration_step_minutes > 0 {
                Calibration::of_day(pods, cfg)
            } else {
                Calibration::default()
            }
        });
        let ranking = calibration.rank(service_scores(pods, case.inject_at, cfg));
        outcomes.push(Outcome::new(case, ranking));
    }
    Ok(Report::from_outcomes(outcomes))
}

/// Scores a ranking learned per system from its other cases on each held
/// out case (see [`learn`]): a generous estimate of what the metrics in
/// `data_dir` can support, to set beside [`evaluate`].
pub fn cross_validate(
    data_dir: &Path,
    cases_file: &Path,
    cfg: &EvalConfig,
    learner: &LearnConfig,
) -> Result<Report> {
    let cases = read_cases(cases_file)?;
    let days = Days::read(data_dir, &cases)?;
    let mut by_system: BTreeMap<&str, Vec<&Case>> = BTreeMap::new();
    for case in &cases {
        by_system.entry(&case.system).or_default().push(case);
    }
    let mut outcomes = Vec::with_capacity(cases.len());
    for system_cases in by_system.values() {
        let dates: BTreeSet<&str> = system_cases.iter().map(|c| c.date.as_str()).collect();
        let space = FeatureSpace::of(dates.iter().map(|d| days.on(d)));
        let labelled: Vec<Labelled> = system_cases
            .iter()
            .map(|case| {
                let candidates = space.candidates(days.of(case), case.inject_at, cfg);
                let truth = candidates.services.iter().position(|s| *s == case.service);
                Labelled { candidates, truth }
            })
            .collect();
        for (held_out, case) in system_cases.iter().enumerate() {
            let train: Vec<&Labelled> = labelled
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != held_out)
                .map(|(_, l)| l)
                .collect();
            let weights = learn::fit(&train, space.width(), learner);
            let ranking = labelled
                .get(held_out)
                .map(|l| rank_learned(&l.candidates, &weights))
                .unwrap_or_default();
            outcomes.push(Outcome::new(case, ranking));
        }
    }
    Ok(Report::from_outcomes(outcomes))
}

/// The pod metrics of every day the cases refer to, read once.
struct Days {
    by_date: BTreeMap<String, Vec<PodMetrics>>,
}

impl Days {
    fn read(data_dir: &Path, cases: &[Case]) -> Result<Days> {
        let mut by_date = BTreeMap::new();
        for case in cases {
            if by_date.contains_key(&case.date) {
                continue;
            }
            let dir = data_dir.join("rca_data").join(&case.date).join("metric");
            let pods = read_day(&dir)?;
            if pods.is_empty() {
                return Err(Error::NoMetrics {
                    path: dir,
                    line: case.line,
                });
            }
            by_date.insert(case.date.clone(), pods);
        }
        Ok(Days { by_date })
    }

    fn on(&self, date: &str) -> &[PodMetrics] {
        self.by_date
            .get(date)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    fn of(&self, case: &Case) -> &[PodMetrics] {
        self.on(&case.date)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_cases_file_is_an_error_naming_it() {
        let err = evaluate(
            Path::new("/nonexistent"),
            Path::new("/nonexistent/cases.csv"),
            &EvalConfig::default(),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "cannot read /nonexistent/cases.csv");
    }

    #[test]
    fn a_case_on_a_day_without_metrics_is_an_error_naming_the_directory() {
        let dir = std::env::temp_dir().join(format!("nezha-eval-{}", std::process::id()));
        let metric = dir.join("rca_data/2022-08-22/metric");
        std::fs::create_dir_all(&metric).unwrap();
        let cases = dir.join("cases.csv");
        std::fs::write(
            &cases,
            "system,date,inject_time,inject_timestamp,inject_pod,inject_type\n\
             OnlineBoutique,2022-08-22,2022-08-22 03:53:54,1,frontend-579b9bff58-t2dbm,return\n",
        )
        .unwrap();
        let err = evaluate(&dir, &cases, &EvalConfig::default()).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(err, Error::NoMetrics { line: 2, .. }), "{err}");
    }
}
