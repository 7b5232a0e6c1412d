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
mod metrics;
mod rank;
mod score;

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::path::{Path, PathBuf};

pub use cases::{Case, parse_cases, read_cases, service_of_pod};
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
    let mut days: BTreeMap<String, (Vec<PodMetrics>, Calibration)> = BTreeMap::new();
    let mut outcomes = Vec::with_capacity(cases.len());
    for case in &cases {
        let (pods, calibration) = match days.entry(case.date.clone()) {
            Entry::Occupied(day) => day.into_mut(),
            Entry::Vacant(slot) => {
                let dir = data_dir.join("rca_data").join(&case.date).join("metric");
                let pods = read_day(&dir)?;
                if pods.is_empty() {
                    return Err(Error::NoMetrics {
                        path: dir,
                        line: case.line,
                    });
                }
                let calibration = if cfg.calibration_step_minutes > 0 {
                    Calibration::of_day(&pods, cfg)
                } else {
                    Calibration::default()
                };
                slot.insert((pods, calibration))
            }
        };
        let ranking = calibration.rank(service_scores(pods, case.inject_at, cfg));
        outcomes.push(Outcome::new(case, ranking));
    }
    Ok(Report::from_outcomes(outcomes))
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
