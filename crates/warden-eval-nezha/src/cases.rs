//! The labelled fault injections (`cases_dev.csv`).
//!
//! `inject_time` is read as UTC and `inject_timestamp` is ignored: for
//! TrainTicket the latter was written in UTC+8 and lies eight hours away
//! from the metrics' own clock, while `inject_time` agrees with it on both
//! systems.

use std::path::Path;

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::{Error, Result, read_file};

/// One fault injection and its ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub system: String,
    pub date: String,
    pub inject_at: DateTime<Utc>,
    pub inject_pod: String,
    /// The service the fault was injected into (the ground truth).
    pub service: String,
    pub fault_type: String,
    /// The line of the cases file the case came from.
    pub line: usize,
}

const HEADER: [&str; 6] = [
    "system",
    "date",
    "inject_time",
    "inject_timestamp",
    "inject_pod",
    "inject_type",
];

/// Reads and parses a cases file.
pub fn read_cases(path: &Path) -> Result<Vec<Case>> {
    parse_cases(&read_file(path)?, path)
}

/// Parses the cases CSV; `path` only names the file in errors.
pub fn parse_cases(text: &str, path: &Path) -> Result<Vec<Case>> {
    let bad = |line: usize, message: String| Error::BadRow {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
    let header: Vec<&str> = match lines.next() {
        Some((_, h)) => h.split(',').map(str::trim).collect(),
        None => return Err(bad(1, "empty file, expected a header".into())),
    };
    if header != HEADER {
        return Err(bad(1, format!("expected header {}", HEADER.join(","))));
    }
    let mut cases = Vec::new();
    for (line, row) in lines.filter(|(_, l)| !l.is_empty()) {
        let fields: Vec<&str> = row.split(',').map(str::trim).collect();
        let [system, date, inject_time, _stamp, pod, fault] = fields.as_slice() else {
            return Err(bad(
                line,
                format!("expected {} fields, found {}", HEADER.len(), fields.len()),
            ));
        };
        let inject_at = NaiveDateTime::parse_from_str(inject_time, "%Y-%m-%d %H:%M:%S")
            .map_err(|e| bad(line, format!("inject_time {inject_time:?}: {e}")))?
            .and_utc();
        if pod.is_empty() || fault.is_empty() || system.is_empty() {
            return Err(bad(line, "empty system, inject_pod or inject_type".into()));
        }
        cases.push(Case {
            system: (*system).to_string(),
            date: (*date).to_string(),
            inject_at,
            inject_pod: (*pod).to_string(),
            service: service_of_pod(pod).to_string(),
            fault_type: (*fault).to_string(),
            line,
        });
    }
    Ok(cases)
}

/// The service a Kubernetes pod belongs to: the pod name without the
/// ReplicaSet hash and the pod suffix (`cartservice-579f59597d-wc2lz` →
/// `cartservice`). Names without such suffixes are returned unchanged.
pub fn service_of_pod(pod: &str) -> &str {
    let is_hash = |s: &str, lens: std::ops::RangeInclusive<usize>| {
        lens.contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    };
    let Some((rest, suffix)) = pod.rsplit_once('-') else {
        return pod;
    };
    if !is_hash(suffix, 5..=5) {
        return pod;
    }
    match rest.rsplit_once('-') {
        Some((service, rs)) if is_hash(rs, 6..=10) && !service.is_empty() => service,
        _ => rest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "system,date,inject_time,inject_timestamp,inject_pod,inject_type\n";

    #[test]
    fn pod_names_lose_their_replicaset_and_pod_suffixes() {
        assert_eq!(
            service_of_pod("cartservice-579f59597d-wc2lz"),
            "cartservice"
        );
        assert_eq!(
            service_of_pod("ts-ui-dashboard-5477b965f-2chkr"),
            "ts-ui-dashboard"
        );
        assert_eq!(service_of_pod("ts-auth-service"), "ts-auth-service");
        assert_eq!(service_of_pod("redis-cart-0"), "redis-cart-0");
    }

    #[test]
    fn inject_time_is_read_as_utc_and_the_shifted_timestamp_is_ignored() {
        // The TrainTicket timestamp 1674953044 is 00:44:04 UTC, about eight
        // hours before the inject_time the metrics agree with.
        let text = format!(
            "{HEAD}TrainTicket,2023-01-29,2023-01-29 08:43:04,1674953044,ts-contacts-service-866bd68c97-xcqfx,return\n"
        );
        let cases = parse_cases(&text, Path::new("c.csv")).unwrap();
        assert_eq!(cases.len(), 1);
        // 2023-01-29T08:43:04Z
        assert_eq!(cases[0].inject_at.timestamp(), 1_674_981_784);
        assert!((cases[0].inject_at.timestamp() - 1_674_953_044 - 8 * 3600).abs() <= 60);
        assert_eq!(cases[0].service, "ts-contacts-service");
        assert_eq!(cases[0].fault_type, "return");
        assert_eq!(cases[0].line, 2);
    }

    #[test]
    fn a_short_row_is_an_error_naming_file_and_line() {
        let text = format!("{HEAD}OnlineBoutique,2022-08-22,2022-08-22 03:53:54\n");
        let err = parse_cases(&text, Path::new("cases.csv")).unwrap_err();
        assert_eq!(err.to_string(), "cases.csv:2: expected 6 fields, found 3");
    }

    #[test]
    fn a_bad_time_or_header_is_an_error() {
        let text = format!("{HEAD}OB,2022-08-22,yesterday,1,frontend-579b9bff58-t2dbm,return\n");
        let err = parse_cases(&text, Path::new("cases.csv")).unwrap_err();
        assert!(
            err.to_string().starts_with("cases.csv:2: inject_time"),
            "{err}"
        );
        let err = parse_cases("a,b\n", Path::new("cases.csv")).unwrap_err();
        assert!(
            err.to_string().starts_with("cases.csv:1: expected header"),
            "{err}"
        );
    }
}
