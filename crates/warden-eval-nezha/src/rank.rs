//! One shadow investigation: rank services by how clearly their own health
//! left its baseline when the fault was injected.
//!
//! Every series is scored by the agent's anomaly engine against the
//! minutes before the injection. A service's score is the strongest
//! anomaly among the signals that describe its *own* health (CPU, memory,
//! serving latency, success rate), each on a log scale so that one huge
//! z-score does not drown the ranking. Traffic signals (workload, network
//! bytes, syscalls) mostly echo what callers do and only break ties.
//! Serving latency that is matched by the pod's own client latency is the
//! pod waiting on something downstream, so it is discounted: the callee is
//! the better suspect.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use warden_agent::engines::anomaly::{AnomalyConfig, SeriesScore, score_series};
use warden_core::telemetry::{Series, TimeRange};

use crate::metrics::PodMetrics;

/// The single configuration used for every system and case.
///
/// The weights say how much each kind of signal counts as the pod's own
/// health; they were chosen once over both systems together.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalConfig {
    /// Minutes before the injection that form the baseline.
    pub baseline_minutes: i64,
    /// Minutes after the injection that form the incident window.
    pub incident_minutes: i64,
    pub anomaly: AnomalyConfig,
    /// CPU rising.
    pub cpu_weight: f64,
    /// Memory moving either way (fault injection agents and restarts
    /// both show up here).
    pub memory_weight: f64,
    /// Serving latency rising.
    pub latency_weight: f64,
    /// Success rate falling.
    pub success_weight: f64,
    /// Traffic signals (workload, network bytes, syscalls) moving.
    pub load_weight: f64,
    /// Factor on a serving-latency rise that the pod's own client latency
    /// matches (the pod is waiting on a callee).
    pub waiting_discount: f64,
    /// Share of the sum of all signals added to the strongest one, so a
    /// service unwell in several ways outranks one with a single blip.
    pub breadth_weight: f64,
    /// Minutes between the reference scores that calibrate each service
    /// (0 = rank raw scores).
    pub calibration_step_minutes: i64,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            baseline_minutes: 20,
            incident_minutes: 4,
            anomaly: AnomalyConfig {
                // One-minute samples: a fault lasting a few minutes gives
                // only a few points, so a run of one counts.
                min_run: 1,
                ..AnomalyConfig::default()
            },
            cpu_weight: 1.0,
            memory_weight: 1.5,
            latency_weight: 0.5,
            success_weight: 0.5,
            load_weight: 0.6,
            waiting_discount: 0.5,
            breadth_weight: 0.3,
            calibration_step_minutes: 3,
        }
    }
}

/// What a Nezha metric column says about its pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    Cpu,
    Memory,
    ServerLatency,
    ClientLatency,
    Success,
    Load,
}

fn signal_of(column: &str) -> Signal {
    if column.starts_with("Cpu") {
        Signal::Cpu
    } else if column.starts_with("Memory") {
        Signal::Memory
    } else if column.starts_with("PodServerLatency") {
        Signal::ServerLatency
    } else if column.starts_with("PodClientLatency") {
        Signal::ClientLatency
    } else if column.starts_with("PodSuccessRate") {
        Signal::Success
    } else {
        Signal::Load
    }
}

/// The strongest move of each signal of one pod, log-scaled |z|.
#[derive(Debug, Default, Clone, Copy)]
struct PodSignals {
    cpu: f64,
    memory: f64,
    server_latency: f64,
    client_latency: f64,
    success: f64,
    load: f64,
}

impl PodSignals {
    /// Folds in one scored series. The peak z is used whether or not the
    /// engine calls the series anomalous: with one-minute samples and a
    /// baseline that may hold an earlier fault, the graded strength ranks
    /// better than the yes/no verdict.
    fn add(&mut self, signal: Signal, score: &SeriesScore) {
        let up = score.peak_z.max(0.0).ln_1p();
        let down = (-score.peak_z).max(0.0).ln_1p();
        let either = score.peak_z.abs().ln_1p();
        let (slot, s) = match signal {
            Signal::Cpu => (&mut self.cpu, up),
            Signal::Memory => (&mut self.memory, either),
            Signal::ServerLatency => (&mut self.server_latency, up),
            Signal::ClientLatency => (&mut self.client_latency, up),
            Signal::Success => (&mut self.success, down),
            Signal::Load => (&mut self.load, either),
        };
        *slot = slot.max(s);
    }

    fn score(&self, cfg: &EvalConfig) -> f64 {
        let waiting = self.client_latency > 0.0 && self.client_latency >= 0.8 * self.server_latency;
        let latency = if waiting {
            self.server_latency * cfg.waiting_discount
        } else {
            self.server_latency
        };
        let parts = [
            cfg.cpu_weight * self.cpu,
            cfg.memory_weight * self.memory,
            cfg.latency_weight * latency,
            cfg.success_weight * self.success,
            cfg.load_weight * self.load,
        ];
        let strongest = parts.iter().copied().fold(0.0, f64::max);
        strongest + cfg.breadth_weight * parts.iter().sum::<f64>()
    }
}

/// Each service's score for an injection at `inject_at`. A service with
/// several pods takes its most unwell pod's score.
pub fn service_scores(
    pods: &[PodMetrics],
    inject_at: DateTime<Utc>,
    cfg: &EvalConfig,
) -> BTreeMap<String, f64> {
    let baseline = TimeRange {
        start: inject_at - Duration::minutes(cfg.baseline_minutes),
        end: inject_at,
    };
    let incident = TimeRange {
        start: inject_at,
        end: inject_at + Duration::minutes(cfg.incident_minutes),
    };
    let mut by_service: BTreeMap<String, f64> = BTreeMap::new();
    for pod in pods {
        let mut signals = PodSignals::default();
        for series in &pod.series {
            let window = window_of(series, baseline.start.timestamp(), incident.end.timestamp());
            if let Some(score) = score_series(&window, baseline, incident, &cfg.anomaly) {
                signals.add(signal_of(&series.metric), &score);
            }
        }
        let slot = by_service.entry(pod.service.clone()).or_default();
        *slot = slot.max(signals.score(cfg));
    }
    by_service
}

/// The points of `series` in `[start, end)`, without labels: the engine
/// scans every point it is given, and the calibration asks for hundreds of
/// windows per series.
pub(crate) fn window_of(series: &Series, start: i64, end: i64) -> Series {
    let from = series.points.partition_point(|(t, _)| *t < start);
    let to = series.points.partition_point(|(t, _)| *t < end);
    Series {
        metric: String::new(),
        labels: BTreeMap::new(),
        points: series.points.get(from..to).unwrap_or_default().to_vec(),
    }
}

/// Ranks services, most likely root cause first, with their scores.
pub fn rank_services(
    pods: &[PodMetrics],
    inject_at: DateTime<Utc>,
    cfg: &EvalConfig,
) -> Vec<(String, f64)> {
    sorted(service_scores(pods, inject_at, cfg))
}

fn sorted(scores: BTreeMap<String, f64>) -> Vec<(String, f64)> {
    let mut ranked: Vec<(String, f64)> = scores.into_iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked
}

/// How each service usually scores when nothing in particular happens:
/// some services are noisy (little traffic, spiky latency) and would
/// otherwise top every ranking. Scores are taken every `step_minutes`
/// across the whole day, so the few fault windows among them barely move
/// the median and upper decile.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Calibration {
    /// Per service: (median, upper decile − median).
    usual: BTreeMap<String, (f64, f64)>,
}

impl Calibration {
    pub fn of_day(pods: &[PodMetrics], cfg: &EvalConfig) -> Calibration {
        let (Some(first), Some(last)) = (
            pods.iter()
                .filter_map(|p| p.series.first()?.points.first())
                .map(|p| p.0)
                .min(),
            pods.iter()
                .filter_map(|p| p.series.first()?.points.last())
                .map(|p| p.0)
                .max(),
        ) else {
            return Calibration::default();
        };
        let step = cfg.calibration_step_minutes.max(1) * 60;
        let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut t = first + cfg.baseline_minutes * 60;
        while t + cfg.incident_minutes * 60 <= last {
            if let Some(at) = DateTime::from_timestamp(t, 0) {
                for (service, score) in service_scores(pods, at, cfg) {
                    samples.entry(service).or_default().push(score);
                }
            }
            t += step;
        }
        let usual = samples
            .into_iter()
            .filter_map(|(service, mut v)| {
                v.sort_by(f64::total_cmp);
                let median = *v.get(v.len() / 2)?;
                let upper = *v.get(v.len() * 9 / 10)?;
                Some((service, (median, (upper - median).max(1e-3))))
            })
            .collect();
        Calibration { usual }
    }

    /// Ranks services by how far above their usual score they are.
    pub fn rank(&self, scores: BTreeMap<String, f64>) -> Vec<(String, f64)> {
        sorted(
            scores
                .into_iter()
                .map(|(service, score)| {
                    let surprise = match self.usual.get(&service) {
                        Some((median, spread)) => (score - median) / spread,
                        None => score,
                    };
                    (service, surprise)
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    const T0: i64 = 1_661_140_000;

    /// One pod with one-minute series over 30 minutes; `incident` gives the
    /// values from minute 20 on.
    fn pod(pod: &str, columns: &[(&str, f64, f64)]) -> PodMetrics {
        let series = columns
            .iter()
            .map(|&(metric, normal, incident)| Series {
                metric: metric.into(),
                labels: Default::default(),
                points: (0..30)
                    .map(|m| {
                        let wobble = (m % 3) as f64 * 0.02 * normal;
                        let v = if m >= 20 { incident } else { normal + wobble };
                        (T0 + 60 * m, v)
                    })
                    .collect(),
            })
            .collect();
        PodMetrics {
            pod: pod.into(),
            service: crate::service_of_pod(pod).into(),
            series,
        }
    }

    fn inject() -> DateTime<Utc> {
        Utc.timestamp_opt(T0 + 60 * 20 - 30, 0).unwrap()
    }

    #[test]
    fn a_pod_whose_cpu_jumps_outranks_one_that_only_sees_more_traffic() {
        let pods = [
            pod(
                "checkoutservice-578fcf4766-9csqn",
                &[
                    ("CpuUsageRate(%)", 10.0, 11.0),
                    ("PodWorkload(Ops)", 9.0, 12.0),
                ],
            ),
            pod(
                "cartservice-579f59597d-wc2lz",
                &[
                    ("CpuUsageRate(%)", 10.0, 90.0),
                    ("PodWorkload(Ops)", 9.0, 9.0),
                ],
            ),
        ];
        let ranked = rank_services(&pods, inject(), &EvalConfig::default());
        assert_eq!(ranked[0].0, "cartservice");
        assert_eq!(ranked[1].0, "checkoutservice");
        assert!(ranked[0].1 > ranked[1].1);
    }

    #[test]
    fn serving_latency_explained_by_client_latency_points_past_the_caller() {
        let pods = [
            // The caller waits on its callee: both its latencies rise.
            pod(
                "frontend-579b9bff58-t2dbm",
                &[
                    ("PodServerLatencyP90(s)", 0.1, 2.0),
                    ("PodClientLatencyP90(s)", 0.1, 2.0),
                ],
            ),
            // The callee is slow itself.
            pod(
                "currencyservice-cf787dd48-vpjrd",
                &[
                    ("PodServerLatencyP90(s)", 0.1, 1.0),
                    ("PodClientLatencyP90(s)", 0.1, 0.1),
                ],
            ),
        ];
        let ranked = rank_services(&pods, inject(), &EvalConfig::default());
        assert_eq!(ranked[0].0, "currencyservice");
    }

    #[test]
    fn node_level_and_unknown_columns_count_only_as_traffic() {
        assert_eq!(signal_of("CpuUsage(m)"), Signal::Cpu);
        assert_eq!(signal_of("MemoryUsageRate(%)"), Signal::Memory);
        assert_eq!(signal_of("PodServerLatencyP99(s)"), Signal::ServerLatency);
        assert_eq!(signal_of("PodSuccessRate(%)"), Signal::Success);
        assert_eq!(signal_of("SyscallRead"), Signal::Load);
    }
}
