//! Metric anomaly scoring: is a series in the incident window unlike its
//! own baseline, and since when?
//!
//! Each series is compared with itself only (baseline window before the
//! incident vs the incident window), with robust z-scores
//! `(x - median) / (1.4826 · MAD)`. A point counts when |z| passes the
//! threshold; a series is anomalous when at least `min_run` consecutive
//! points do so in the same direction, which ignores single-sample blips.
//! A point must also lie outside the range the baseline itself spanned: a
//! value the series took while all was well is not abnormal, which keeps
//! small integer gauges (a pool's pending requests going 0 → 1) from
//! looking like incidents. The onset is the first point of the first run in
//! the direction of the strongest run, ignoring runs far weaker than it
//! (blips): onsets are what the propagation and change engines order
//! events by.
//!
//! A flat baseline has a MAD of zero; the scale then falls back to a small
//! fraction of the median (or an absolute floor for a baseline of zero), so
//! a steady gauge that moves a little is not an infinite anomaly while an
//! error counter leaving zero is a large one.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use warden_core::telemetry::{Series, TimeRange};

use super::stats::{MAD_TO_SIGMA, mad, median};

/// What a metric says about the node it belongs to, guessed from its name.
///
/// The distinction that matters most is [`MetricClass::Load`]: a node
/// whose only anomalies are load (connections, requests) reflects what its
/// callers do, while errors, latency, saturation and resource anomalies are
/// the node's own health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricClass {
    Errors,
    Latency,
    Saturation,
    Resource,
    Load,
    Other,
}

impl MetricClass {
    /// Whether an anomaly in this class is a sign of the node's own health
    /// rather than of the traffic it receives.
    pub fn is_own_health(self) -> bool {
        self != MetricClass::Load
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MetricClass::Errors => "errors",
            MetricClass::Latency => "latency",
            MetricClass::Saturation => "saturation",
            MetricClass::Resource => "resource",
            MetricClass::Load => "load",
            MetricClass::Other => "other",
        }
    }
}

/// Classifies a metric by the words in its name (split on `_ . : -`).
/// Earlier classes win: `db_pool_connections` is saturation, not load.
pub fn classify_metric(name: &str) -> MetricClass {
    const CLASSES: &[(MetricClass, &str)] = &[
        (
            MetricClass::Errors,
            "error errors err 5xx 4xx failure failures failed fail timeout timeouts exception \
             exceptions refused reset resets dropped drops denied retransmit retransmits",
        ),
        (
            MetricClass::Latency,
            "latency duration p50 p90 p95 p99 rtt response lag elapsed",
        ),
        (
            MetricClass::Saturation,
            "pool queue saturation waiting waiters pending backlog exhausted inflight \
             utilization utilisation throttled",
        ),
        (
            MetricClass::Resource,
            "cpu memory mem rss heap disk filesystem io iops gc swap fd fds oom load1 load5 threads",
        ),
        (
            MetricClass::Load,
            "connections connection conns conn sessions clients requests request rps qps \
             throughput ops calls traffic bytes packets activity commit commits xact \
             transactions tps",
        ),
    ];
    let lower = name.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(['_', '.', ':', '-', '/'])
        .filter(|w| !w.is_empty())
        .collect();
    CLASSES
        .iter()
        .find(|(_, keys)| keys.split_whitespace().any(|k| words.contains(&k)))
        .map_or(MetricClass::Other, |(class, _)| *class)
}

#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyConfig {
    /// |robust z| at or above which a point is abnormal.
    pub threshold: f64,
    /// Consecutive abnormal points (same direction) that make an anomaly.
    pub min_run: usize,
    /// Fewer baseline points than this and the series is not scored.
    pub min_baseline_points: usize,
    /// Scale floor as a fraction of |median| for flat baselines.
    pub relative_floor: f64,
    /// Scale floor for baselines at zero.
    pub absolute_floor: f64,
    /// Runs whose peak |z| is below this share of the strongest run's are
    /// blips and do not set the onset.
    pub min_run_share: f64,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        AnomalyConfig {
            // 3.5 is the usual cut for modified z-scores (Iglewicz and
            // Hoaglin); 4 trades a little sensitivity for fewer false
            // alarms across hundreds of series.
            threshold: 4.0,
            min_run: 2,
            min_baseline_points: 5,
            relative_floor: 0.05,
            absolute_floor: 1e-3,
            min_run_share: 0.2,
        }
    }
}

/// Up or down from the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Up,
    Down,
}

/// The start of an anomaly.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Onset {
    pub at: DateTime<Utc>,
    pub value: f64,
    pub z: f64,
    pub direction: Direction,
}

/// One series compared with its baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesScore {
    pub metric: String,
    pub labels: BTreeMap<String, String>,
    /// The topology node (`service` label), when labelled.
    pub node: Option<String>,
    pub class: MetricClass,
    pub baseline_median: f64,
    pub baseline_scale: f64,
    /// The most extreme incident-window value within an abnormal run
    /// (or overall, when there is none) and its z-score.
    pub peak_value: f64,
    pub peak_z: f64,
    /// Set when the series is anomalous.
    pub onset: Option<Onset>,
}

impl SeriesScore {
    pub fn is_anomalous(&self) -> bool {
        self.onset.is_some()
    }
}

/// The baseline's center (median) and the scale z-scores are measured in
/// (MAD as sigma, floored relative to the center and absolutely);
/// `None` with fewer than `min_baseline_points` values.
pub fn robust_baseline(base: &[f64], cfg: &AnomalyConfig) -> Option<(f64, f64)> {
    if base.len() < cfg.min_baseline_points {
        return None;
    }
    let center = median(base)?;
    let scale = (mad(base, center)? * MAD_TO_SIGMA)
        .max(center.abs() * cfg.relative_floor)
        .max(cfg.absolute_floor);
    Some((center, scale))
}

/// Scores one series; `None` when it has too few baseline points or no
/// point in the incident window.
pub fn score_series(
    series: &Series,
    baseline: TimeRange,
    incident: TimeRange,
    cfg: &AnomalyConfig,
) -> Option<SeriesScore> {
    let in_range = |range: TimeRange| {
        let (start, end) = (range.start.timestamp(), range.end.timestamp());
        series
            .points
            .iter()
            .filter(move |(t, v)| *t >= start && *t < end && v.is_finite())
            .copied()
    };
    let base: Vec<f64> = in_range(baseline).map(|(_, v)| v).collect();
    let current: Vec<(i64, f64)> = in_range(incident).collect();
    if current.is_empty() {
        return None;
    }
    let (center, scale) = robust_baseline(&base, cfg)?;
    let z = |v: f64| (v - center) / scale;

    let (base_min, base_max) = base
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    let runs = abnormal_runs(&current, |v| {
        let zz = z(v);
        let outside = v > base_max || v < base_min;
        (zz.abs() >= cfg.threshold && outside).then_some(zz)
    });
    let runs: Vec<Run> = runs.into_iter().filter(|r| r.len >= cfg.min_run).collect();
    let strongest = runs
        .iter()
        .max_by(|a, b| a.peak_z.abs().total_cmp(&b.peak_z.abs()));
    let onset = strongest.and_then(|best| {
        runs.iter()
            .find(|r| {
                r.first_z.signum() == best.first_z.signum()
                    && r.peak_z.abs() >= cfg.min_run_share * best.peak_z.abs()
            })
            .map(|r| Onset {
                at: Utc.timestamp_opt(r.first_t, 0).single().unwrap_or_default(),
                value: r.first_value,
                z: r.first_z,
                direction: if r.first_z > 0.0 {
                    Direction::Up
                } else {
                    Direction::Down
                },
            })
    });
    let peak = strongest.map(|r| (r.peak_value, r.peak_z));

    let (peak_value, peak_z) = match peak {
        Some(p) => p,
        None => current
            .iter()
            .map(|&(_, v)| (v, z(v)))
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .unwrap_or((center, 0.0)),
    };
    Some(SeriesScore {
        metric: series.metric.clone(),
        labels: series.labels.clone(),
        node: series.label("service").map(str::to_string),
        class: classify_metric(&series.metric),
        baseline_median: center,
        baseline_scale: scale,
        peak_value,
        peak_z,
        onset,
    })
}

/// Consecutive abnormal points with z-scores of one sign.
#[derive(Debug, Clone, Copy)]
struct Run {
    first_t: i64,
    first_value: f64,
    first_z: f64,
    peak_value: f64,
    peak_z: f64,
    len: usize,
}

/// Splits `points` into runs of abnormal points; `abnormal(v)` gives the
/// z-score of an abnormal value and `None` for a normal one.
fn abnormal_runs(points: &[(i64, f64)], abnormal: impl Fn(f64) -> Option<f64>) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    let mut open: Option<Run> = None;
    for &(t, v) in points {
        let Some(zz) = abnormal(v) else {
            runs.extend(open.take());
            continue;
        };
        match open.as_mut() {
            Some(run) if run.first_z.signum() == zz.signum() => {
                run.len += 1;
                if zz.abs() > run.peak_z.abs() {
                    run.peak_value = v;
                    run.peak_z = zz;
                }
            }
            _ => {
                runs.extend(open.take());
                open = Some(Run {
                    first_t: t,
                    first_value: v,
                    first_z: zz,
                    peak_value: v,
                    peak_z: zz,
                    len: 1,
                });
            }
        }
    }
    runs.extend(open);
    runs
}

/// Scores every series that can be scored.
pub fn score_all(
    series: &[Series],
    baseline: TimeRange,
    incident: TimeRange,
    cfg: &AnomalyConfig,
) -> Vec<SeriesScore> {
    series
        .iter()
        .filter_map(|s| score_series(s, baseline, incident, cfg))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000;

    fn range(from: i64, to: i64) -> TimeRange {
        TimeRange {
            start: Utc.timestamp_opt(T0 + from, 0).unwrap(),
            end: Utc.timestamp_opt(T0 + to, 0).unwrap(),
        }
    }

    /// 20 baseline points, then 20 incident points, 15 s apart.
    fn series(metric: &str, f: impl Fn(usize) -> f64) -> Series {
        Series {
            metric: metric.into(),
            labels: [("service".to_string(), "api".to_string())].into(),
            points: (0..40).map(|i| (T0 + 15 * i as i64, f(i))).collect(),
        }
    }

    fn windows() -> (TimeRange, TimeRange) {
        (range(0, 300), range(300, 600))
    }

    #[test]
    fn a_step_up_is_anomalous_from_its_first_point() {
        let s = series("http_errors_total", |i| {
            if i >= 26 {
                40.0
            } else {
                1.0 + (i % 3) as f64 * 0.1
            }
        });
        let (b, c) = windows();
        let score = score_series(&s, b, c, &AnomalyConfig::default()).unwrap();
        let onset = score.onset.unwrap();
        assert_eq!(onset.at.timestamp(), T0 + 15 * 26);
        assert_eq!(onset.direction, Direction::Up);
        assert_eq!(score.node.as_deref(), Some("api"));
        assert_eq!(score.class, MetricClass::Errors);
        assert!(score.peak_z > 50.0);
    }

    #[test]
    fn noise_and_a_single_blip_are_not_anomalous() {
        let s = series("cpu_usage", |i| {
            if i == 30 {
                95.0
            } else {
                40.0 + ((i * 7) % 5) as f64
            }
        });
        let (b, c) = windows();
        let score = score_series(&s, b, c, &AnomalyConfig::default()).unwrap();
        assert!(!score.is_anomalous());
    }

    #[test]
    fn a_drop_is_anomalous_downwards() {
        let s = series("requests_per_second", |i| {
            if i >= 22 { 5.0 } else { 200.0 + (i % 4) as f64 }
        });
        let (b, c) = windows();
        let onset = score_series(&s, b, c, &AnomalyConfig::default())
            .unwrap()
            .onset
            .unwrap();
        assert_eq!(onset.direction, Direction::Down);
        assert_eq!(onset.at.timestamp(), T0 + 15 * 22);
    }

    #[test]
    fn a_flat_baseline_tolerates_small_moves_but_not_large_ones() {
        let (b, c) = windows();
        let small = series("queue_depth", |i| if i >= 25 { 10.3 } else { 10.0 });
        assert!(
            !score_series(&small, b, c, &AnomalyConfig::default())
                .unwrap()
                .is_anomalous()
        );
        let large = series("queue_depth", |i| if i >= 25 { 50.0 } else { 10.0 });
        assert!(
            score_series(&large, b, c, &AnomalyConfig::default())
                .unwrap()
                .is_anomalous()
        );
    }

    #[test]
    fn values_the_baseline_already_took_are_not_abnormal() {
        // A small integer gauge: mostly 0, sometimes 1 or 2.
        let gauge = |i: usize| {
            if i % 7 == 3 {
                1.0
            } else if i == 11 {
                2.0
            } else {
                0.0
            }
        };
        let (b, c) = windows();
        let s = series("pending_requests", |i| {
            if i >= 20 { gauge(i % 9) } else { gauge(i) }
        });
        assert!(
            !score_series(&s, b, c, &AnomalyConfig::default())
                .unwrap()
                .is_anomalous()
        );
        let s = series(
            "pending_requests",
            |i| if i >= 30 { 60.0 } else { gauge(i) },
        );
        let onset = score_series(&s, b, c, &AnomalyConfig::default())
            .unwrap()
            .onset
            .unwrap();
        assert_eq!(onset.at.timestamp(), T0 + 15 * 30);
    }

    #[test]
    fn a_weak_blip_before_the_real_anomaly_does_not_set_the_onset() {
        let s = series("latency_ms", |i| match i {
            22 | 23 => 14.0,
            i if i >= 30 => 400.0,
            i => 10.0 + (i % 3) as f64 * 0.2,
        });
        let (b, c) = windows();
        let score = score_series(&s, b, c, &AnomalyConfig::default()).unwrap();
        assert_eq!(score.onset.unwrap().at.timestamp(), T0 + 15 * 30);
        assert_eq!(score.peak_value, 400.0);
    }

    #[test]
    fn the_onset_follows_the_direction_of_the_strongest_move() {
        // A modest dip, then a large rise: the rise is the anomaly.
        let s = series("sessions_idle", |i| match i {
            21..=24 => 40.0,
            i if i >= 28 => 400.0,
            i => 60.0 + (i % 4) as f64,
        });
        let (b, c) = windows();
        let onset = score_series(&s, b, c, &AnomalyConfig::default())
            .unwrap()
            .onset
            .unwrap();
        assert_eq!(onset.direction, Direction::Up);
        assert_eq!(onset.at.timestamp(), T0 + 15 * 28);
    }

    #[test]
    fn too_little_baseline_is_not_scored() {
        let s = series("x", |_| 1.0);
        assert!(
            score_series(&s, range(0, 30), range(300, 600), &AnomalyConfig::default()).is_none()
        );
    }

    #[test]
    fn metric_names_classify_by_their_words() {
        assert_eq!(
            classify_metric("db_pool_connections_in_use"),
            MetricClass::Saturation
        );
        assert_eq!(classify_metric("pg_connections"), MetricClass::Load);
        assert_eq!(
            classify_metric("http_request_duration_seconds_p99"),
            MetricClass::Latency
        );
        assert_eq!(classify_metric("http_5xx_rate"), MetricClass::Errors);
        assert_eq!(
            classify_metric("container_cpu_usage"),
            MetricClass::Resource
        );
        assert_eq!(classify_metric("temperature"), MetricClass::Other);
        assert!(!MetricClass::Load.is_own_health());
    }
}
