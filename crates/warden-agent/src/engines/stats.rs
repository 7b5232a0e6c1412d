//! Robust statistics shared by the engines.
//!
//! Median and MAD rather than mean and standard deviation: an incident
//! window is full of outliers by definition, and a baseline often has a
//! few; a mean-based score would let one spike hide the next.

/// The median of `values`; `None` when empty. NaNs are ignored.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    let upper = *sorted.get(mid)?;
    if sorted.len() % 2 == 1 {
        Some(upper)
    } else {
        Some((*sorted.get(mid - 1)? + upper) / 2.0)
    }
}

/// Median absolute deviation around `center`.
pub fn mad(values: &[f64], center: f64) -> Option<f64> {
    let deviations: Vec<f64> = values.iter().map(|v| (v - center).abs()).collect();
    median(&deviations)
}

/// Scales a MAD to be comparable with a standard deviation under a normal
/// distribution.
pub const MAD_TO_SIGMA: f64 = 1.4826;

/// Maps an unbounded positive strength (a z-score, a ratio) onto 0..1 with
/// `half` mapping to one half.
pub fn saturate(x: f64, half: f64) -> f64 {
    // Also catches NaN, which compares false.
    if x.is_nan() || half.is_nan() || x <= 0.0 || half <= 0.0 {
        return 0.0;
    }
    x / (x + half)
}

/// Combines independent pieces of support (each 0..1) the way independent
/// witnesses add up: one strong piece is enough, several weak ones add.
pub fn noisy_or(weights: impl IntoIterator<Item = f64>) -> f64 {
    1.0 - weights
        .into_iter()
        .map(|w| 1.0 - w.clamp(0.0, 1.0))
        .product::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_handles_odd_even_and_empty_inputs() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn mad_ignores_a_single_outlier() {
        let values = [10.0, 11.0, 9.0, 10.0, 1000.0];
        let m = median(&values).unwrap();
        assert_eq!(m, 10.0);
        assert_eq!(mad(&values, m), Some(1.0));
    }

    #[test]
    fn noisy_or_of_one_strong_piece_is_that_piece() {
        assert!((noisy_or([0.9]) - 0.9).abs() < 1e-9);
        assert!((noisy_or([0.5, 0.5]) - 0.75).abs() < 1e-9);
        assert_eq!(noisy_or([]), 0.0);
    }

    #[test]
    fn saturate_is_half_at_half_and_below_one() {
        assert!((saturate(10.0, 10.0) - 0.5).abs() < 1e-9);
        assert!(saturate(1e9, 10.0) < 1.0);
        assert_eq!(saturate(-1.0, 10.0), 0.0);
    }
}
