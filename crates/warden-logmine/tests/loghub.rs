#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Guards mining accuracy on the nine Loghub-2k systems: the averages must
//! not fall below what the one global configuration achieves today.

use std::path::PathBuf;

use warden_logmine::MinerConfig;
use warden_logmine::eval::{average, evaluate};

fn dataset() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/loghub2k")
}

#[test]
fn loghub_averages_stay_at_or_above_their_floor() {
    let dir = dataset();
    let reports = evaluate(&dir, &[], &MinerConfig::default()).unwrap();
    assert_eq!(reports.len(), 9);
    assert!(
        reports.iter().all(|r| r.lines == 2000),
        "every system has 2k lines"
    );
    let (avg, _) = average(&reports);
    assert!(avg.ga >= GA_FLOOR, "average GA {:.3} < {GA_FLOOR}", avg.ga);
    assert!(
        avg.fga >= FGA_FLOOR,
        "average FGA {:.3} < {FGA_FLOOR}",
        avg.fga
    );
    assert!(avg.pa >= PA_FLOOR, "average PA {:.3} < {PA_FLOOR}", avg.pa);
    assert!(
        avg.fta >= FTA_FLOOR,
        "average FTA {:.3} < {FTA_FLOOR}",
        avg.fta
    );
}

const GA_FLOOR: f64 = 0.80;
const FGA_FLOOR: f64 = 0.84;
const PA_FLOOR: f64 = 0.50;
const FTA_FLOOR: f64 = 0.55;
