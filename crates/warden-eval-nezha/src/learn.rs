//! How much the metrics can tell at all: a ranking *learned* from the
//! other cases of the same system, scored on the case it never saw
//! (leave-one-case-out).
//!
//! The fixed ranking in [`crate::rank`] uses a handful of weights chosen
//! once for both systems. When it misses, the question is whether better
//! weights would have found the fault or whether the metrics hold no trace
//! of it. This answers the second: every metric column's rise and fall
//! becomes a feature, and a conditional logit (softmax over the services
//! of one injection) is fitted to the system's other labelled cases. It
//! may weight any column of that very system, which the evaluated ranking
//! may not, so its accuracy is a generous estimate of what these metrics
//! can support. A learner that cannot beat chance on held-out cases says
//! the signal is not in the data.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use warden_agent::engines::anomaly::robust_baseline;

use crate::metrics::PodMetrics;
use crate::rank::{EvalConfig, window_of};

/// Settings of the learner; one set for every system.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LearnConfig {
    /// L2 penalty on the weights.
    pub l2: f64,
    /// Gradient steps.
    pub iterations: usize,
    /// Step size.
    pub learning_rate: f64,
}

impl Default for LearnConfig {
    fn default() -> Self {
        LearnConfig {
            l2: 1.0,
            iterations: 600,
            learning_rate: 0.05,
        }
    }
}

/// The services of one injection and their feature vectors, in the
/// column order of the system's [`FeatureSpace`].
#[derive(Debug, Clone, PartialEq)]
pub struct Candidates {
    pub services: Vec<String>,
    pub features: Vec<Vec<f64>>,
}

/// The metric columns of one system; each gives two features (how far it
/// rose, how far it fell, both as `ln(1 + z)`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeatureSpace {
    columns: Vec<String>,
}

impl FeatureSpace {
    pub fn of<'a>(days: impl IntoIterator<Item = &'a [PodMetrics]>) -> FeatureSpace {
        let mut columns = BTreeSet::new();
        for pods in days {
            for pod in pods {
                for series in &pod.series {
                    columns.insert(series.metric.clone());
                }
            }
        }
        FeatureSpace {
            columns: columns.into_iter().collect(),
        }
    }

    pub fn width(&self) -> usize {
        self.columns.len() * 2
    }

    /// Each service's features for an injection at `inject_at`: per column
    /// the strongest rise and fall among the service's pods, as robust
    /// z-scores against the baseline minutes (the anomaly engine's median
    /// and MAD with its floors).
    pub fn candidates(
        &self,
        pods: &[PodMetrics],
        inject_at: DateTime<Utc>,
        cfg: &EvalConfig,
    ) -> Candidates {
        let base_from = (inject_at - Duration::minutes(cfg.baseline_minutes)).timestamp();
        let at = inject_at.timestamp();
        let until = (inject_at + Duration::minutes(cfg.incident_minutes)).timestamp();
        let mut by_service: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for pod in pods {
            let row = by_service
                .entry(pod.service.as_str())
                .or_insert_with(|| vec![0.0; self.width()]);
            for series in &pod.series {
                let Ok(col) = self.columns.binary_search(&series.metric) else {
                    continue;
                };
                let values = |from: i64, to: i64| -> Vec<f64> {
                    window_of(series, from, to)
                        .points
                        .into_iter()
                        .map(|(_, v)| v)
                        .filter(|v| v.is_finite())
                        .collect()
                };
                let Some((up, down)) = extremes(&values(base_from, at), &values(at, until), cfg)
                else {
                    continue;
                };
                if let Some(slot) = row.get_mut(2 * col) {
                    *slot = slot.max(up.max(0.0).ln_1p());
                }
                if let Some(slot) = row.get_mut(2 * col + 1) {
                    *slot = slot.max(down.max(0.0).ln_1p());
                }
            }
        }
        let (services, features) = by_service
            .into_iter()
            .map(|(s, f)| (s.to_string(), f))
            .unzip();
        Candidates { services, features }
    }
}

/// The largest rise and fall of `current` against `base`, in robust
/// z-scores; `None` without enough baseline.
fn extremes(base: &[f64], current: &[f64], cfg: &EvalConfig) -> Option<(f64, f64)> {
    if current.is_empty() {
        return None;
    }
    let (center, scale) = robust_baseline(base, &cfg.anomaly)?;
    let z = current.iter().map(|v| (v - center) / scale);
    let up = z.clone().fold(f64::NEG_INFINITY, f64::max);
    let down = -z.fold(f64::INFINITY, f64::min);
    Some((up, down))
}

/// One labelled injection for training: its candidates and the index of
/// the true service among them.
#[derive(Debug, Clone, PartialEq)]
pub struct Labelled {
    pub candidates: Candidates,
    pub truth: Option<usize>,
}

/// Fits the weights of a conditional logit to `cases` by gradient descent
/// from zero (deterministic). Cases whose true service has no metrics are
/// skipped.
pub fn fit(cases: &[&Labelled], width: usize, cfg: &LearnConfig) -> Vec<f64> {
    let mut w = vec![0.0; width];
    let usable: Vec<(&Candidates, usize)> = cases
        .iter()
        .filter_map(|c| Some((&c.candidates, c.truth?)))
        .collect();
    if usable.is_empty() {
        return w;
    }
    for _ in 0..cfg.iterations {
        let mut grad: Vec<f64> = w.iter().map(|wi| cfg.l2 * wi).collect();
        for (cands, truth) in &usable {
            let probs = softmax(
                &cands
                    .features
                    .iter()
                    .map(|f| dot(f, &w))
                    .collect::<Vec<_>>(),
            );
            for (i, (f, p)) in cands.features.iter().zip(&probs).enumerate() {
                let target = if i == *truth { 1.0 } else { 0.0 };
                for (g, x) in grad.iter_mut().zip(f) {
                    *g -= (target - p) * x;
                }
            }
        }
        let n = usable.len() as f64;
        for (wi, g) in w.iter_mut().zip(&grad) {
            *wi -= cfg.learning_rate * g / n;
        }
    }
    w
}

/// The candidates ranked by the learned weights, best first.
pub fn rank_learned(cands: &Candidates, w: &[f64]) -> Vec<(String, f64)> {
    let mut ranked: Vec<(String, f64)> = cands
        .services
        .iter()
        .zip(&cands.features)
        .map(|(s, f)| (s.clone(), dot(f, w)))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn softmax(scores: &[f64]) -> Vec<f64> {
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
    let total: f64 = exp.iter().sum();
    exp.iter().map(|e| e / total).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ten services with two features each; the true one is the strongest
    /// in `signal` and feature 1 is noise.
    fn case(truth: usize, noise_seed: u64) -> Labelled {
        let mut x = noise_seed;
        let mut noise = || {
            // xorshift: deterministic noise in [0, 1).
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 1000) as f64 / 1000.0
        };
        let features = (0..10)
            .map(|i| {
                let signal = if i == truth { 2.0 } else { 0.5 * noise() };
                vec![signal, 3.0 * noise()]
            })
            .collect();
        Labelled {
            candidates: Candidates {
                services: (0..10).map(|i| format!("s{i}")).collect(),
                features,
            },
            truth: Some(truth),
        }
    }

    #[test]
    fn the_learner_finds_the_column_that_names_the_root_cause() {
        let train: Vec<Labelled> = (0..8).map(|i| case(i % 10, 7 + i as u64)).collect();
        let refs: Vec<&Labelled> = train.iter().collect();
        let w = fit(&refs, 2, &LearnConfig::default());
        assert!(w[0] > 0.5, "signal weight {w:?}");
        assert!(w[0] > 5.0 * w[1].abs(), "noise weight {w:?}");
        let held_out = case(3, 99);
        assert_eq!(rank_learned(&held_out.candidates, &w)[0].0, "s3");
    }

    #[test]
    fn rises_and_falls_are_measured_against_the_baseline_with_the_engines_floors() {
        let cfg = EvalConfig::default();
        let base = [10.0, 10.0, 10.0, 10.0, 10.0];
        // MAD 0 → the relative floor (5 % of 10 = 0.5) is the scale.
        let (up, down) = extremes(&base, &[11.0, 9.0], &cfg).unwrap();
        assert!((up - 2.0).abs() < 1e-9 && (down - 2.0).abs() < 1e-9);
        assert!(extremes(&base[..4], &[11.0], &cfg).is_none());
        assert!(extremes(&base, &[], &cfg).is_none());
    }
}
