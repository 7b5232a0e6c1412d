#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Guards mining accuracy on the nine Loghub-2k systems: the averages must
//! not fall below what the one global configuration achieves today.

use std::path::PathBuf;

use warden_logmine::eval::{average, evaluate};
use warden_logmine::{LogFormat, MinerConfig};

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

#[test]
fn every_loghub_header_splits_like_the_regex() {
    let dir = dataset();
    let formats = std::fs::read_to_string(dir.join("log_formats.tsv")).unwrap();
    let mut checked = 0;
    for row in formats.lines().skip(1) {
        let (system, format) = row.split_once('\t').unwrap();
        let f = LogFormat::parse(format).unwrap();
        let log =
            std::fs::read_to_string(dir.join(system).join(format!("{system}_2k.log"))).unwrap();
        for line in log.lines() {
            let by_regex = f
                .fields_of(line)
                .and_then(|fields| fields.into_iter().find(|(n, _)| *n == "Content"))
                .map(|(_, v)| v);
            assert_eq!(f.content(line), by_regex, "{system}: {line}");
            checked += 1;
        }
    }
    assert_eq!(checked, 9 * 2000);
}

const GA_FLOOR: f64 = 0.96;
const FGA_FLOOR: f64 = 0.94;
const PA_FLOOR: f64 = 0.59;
const FTA_FLOOR: f64 = 0.69;
