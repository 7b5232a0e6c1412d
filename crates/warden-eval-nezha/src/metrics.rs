//! Per-pod one-minute metrics (`<pod>_metric.csv`).
//!
//! Row times come from the human-readable `Time` column (UTC), with the
//! numeric `TimeStamp` column only as a fallback: in the shipped data one
//! OnlineBoutique pod's `TimeStamp` column is off by 2·10⁸ s while its
//! `Time` column is right. A first data row that has no usable time at all
//! is skipped, as collectors often write a partial row when they start;
//! any later such row is an error. Empty values are missing points.
//!
//! Node-level columns (`Node*`) are dropped: they describe the machine the
//! pod shares with others, so they would blame every neighbour alike.

use std::path::Path;

use chrono::NaiveDateTime;
use warden_core::telemetry::Series;

use crate::cases::service_of_pod;
use crate::{Error, Result, read_file};

/// The metric series of one pod.
#[derive(Debug, Clone, PartialEq)]
pub struct PodMetrics {
    pub pod: String,
    pub service: String,
    /// One series per metric column, labelled `service` and `pod`.
    pub series: Vec<Series>,
}

/// Reads every `*_metric.csv` in a day's metric directory, in name order.
pub fn read_day(dir: &Path) -> Result<Vec<PodMetrics>> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with("_metric.csv"))
        })
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| parse_pod_metrics(&read_file(p)?, p))
        .collect()
}

/// Parses one pod's metric CSV; `path` names the file in errors.
pub fn parse_pod_metrics(text: &str, path: &Path) -> Result<PodMetrics> {
    let bad = |line: usize, message: String| Error::BadRow {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim_end()));
    let header: Vec<&str> = match lines.next() {
        Some((_, h)) => h.split(',').collect(),
        None => return Err(bad(1, "empty file, expected a header".into())),
    };
    let [time_col, stamp_col, pod_col, metric_cols @ ..] = header.as_slice() else {
        return Err(bad(1, "expected Time,TimeStamp,PodName,<metrics…>".into()));
    };
    if (*time_col, *stamp_col, *pod_col) != ("Time", "TimeStamp", "PodName") {
        return Err(bad(1, "expected Time,TimeStamp,PodName,<metrics…>".into()));
    }
    let kept: Vec<(usize, &str)> = metric_cols
        .iter()
        .enumerate()
        .filter(|(_, name)| !name.starts_with("Node"))
        .map(|(i, name)| (i, *name))
        .collect();
    let mut points: Vec<Vec<(i64, f64)>> = vec![Vec::new(); kept.len()];
    let mut pod = String::new();
    let mut first = true;
    for (line, row) in lines.filter(|(_, l)| !l.is_empty()) {
        let fields: Vec<&str> = row.split(',').collect();
        let is_first = std::mem::replace(&mut first, false);
        let [time, stamp, name, values @ ..] = fields.as_slice() else {
            return Err(bad(line, format!("expected {} fields", header.len())));
        };
        let Some(at) = row_time(time, stamp) else {
            if is_first {
                continue;
            }
            return Err(bad(line, format!("no usable time in {time:?} / {stamp:?}")));
        };
        if values.len() != metric_cols.len() {
            return Err(bad(
                line,
                format!("expected {} fields, found {}", header.len(), fields.len()),
            ));
        }
        if pod.is_empty() {
            pod = (*name).to_string();
        }
        for (slot, (col, _)) in points.iter_mut().zip(&kept) {
            if let Some(v) = values.get(*col).and_then(|v| v.trim().parse::<f64>().ok())
                && v.is_finite()
            {
                slot.push((at, v));
            }
        }
    }
    if pod.is_empty() {
        pod = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix("_metric.csv"))
            .unwrap_or_default()
            .to_string();
    }
    let service = service_of_pod(&pod).to_string();
    let series = kept
        .iter()
        .zip(points)
        .map(|((_, metric), mut pts)| {
            pts.sort_by_key(|(t, _)| *t);
            Series {
                metric: (*metric).to_string(),
                labels: [
                    ("service".to_string(), service.clone()),
                    ("pod".to_string(), pod.clone()),
                ]
                .into(),
                points: pts,
            }
        })
        .collect();
    Ok(PodMetrics {
        pod,
        service,
        series,
    })
}

/// Unix seconds of a row: the `Time` column's leading
/// `YYYY-MM-DD HH:MM:SS` as UTC, else the `TimeStamp` column.
fn row_time(time: &str, stamp: &str) -> Option<i64> {
    time.get(..19)
        .and_then(|t| NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").ok())
        .map(|t| t.and_utc().timestamp())
        .or_else(|| stamp.trim().parse::<i64>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str =
        "Time,TimeStamp,PodName,CpuUsageRate(%),PodServerLatencyP90(s),NodeCpuUsageRate(%)\n";

    fn parse(body: &str) -> Result<PodMetrics> {
        parse_pod_metrics(&format!("{HEAD}{body}"), Path::new("x_metric.csv"))
    }

    #[test]
    fn the_time_column_wins_over_a_shifted_timestamp_column() {
        let m = parse(
            "2022-08-22 03:51:19.607 +0000 UTC m=+0.11,1861140279,adservice-5f6585d649-fnmft,5.8,0.1,3\n",
        )
        .unwrap();
        assert_eq!(m.service, "adservice");
        assert_eq!(m.series.len(), 2, "node columns are dropped");
        assert_eq!(m.series[0].metric, "CpuUsageRate(%)");
        assert_eq!(m.series[0].points, vec![(1_661_140_279, 5.8)]);
        assert_eq!(m.series[0].label("pod"), Some("adservice-5f6585d649-fnmft"));
    }

    #[test]
    fn a_malformed_first_row_is_skipped_but_a_later_one_is_an_error() {
        let m = parse(
            "garbage,??,frontend-579b9bff58-t2dbm,1,1,1\n\
             2022-08-22 03:52:19.5 +0000 UTC,1661140339,frontend-579b9bff58-t2dbm,2,0.5,1\n",
        )
        .unwrap();
        assert_eq!(m.series[0].points, vec![(1_661_140_339, 2.0)]);
        let err = parse(
            "2022-08-22 03:52:19.5 +0000 UTC,1661140339,frontend-579b9bff58-t2dbm,2,0.5,1\n\
             garbage,??,frontend-579b9bff58-t2dbm,1,1,1\n",
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("x_metric.csv:3: no usable time"),
            "{err}"
        );
    }

    #[test]
    fn a_row_with_missing_columns_is_an_error_and_empty_values_are_gaps() {
        let err = parse("2022-08-22 03:52:19.5 +0000 UTC,1661140339,p,2\n").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("x_metric.csv:2: expected 6 fields"),
            "{err}"
        );
        let m =
            parse("2022-08-22 03:52:19.5 +0000 UTC,1661140339,p-abcdef12-abcde,,0.5,1\n").unwrap();
        assert!(m.series[0].points.is_empty());
        assert_eq!(m.series[1].points.len(), 1);
    }
}
