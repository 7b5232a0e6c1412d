//! When things happen, in seconds relative to T0 (the firewall change).
//!
//! Every generator reads its moments from here, so the alerts, metrics,
//! logs, flows and events of one scenario agree with each other.

/// The bundle starts this long before T0: a baseline of 45 minutes, which
/// includes the unrelated deploy 12 minutes before the change.
pub const BUNDLE_BEFORE: i64 = 45 * 60;
/// ... and ends this long after it.
pub const BUNDLE_AFTER: i64 = 30 * 60;
/// Metric resolution.
pub const METRIC_STEP: i64 = 30;
/// Flow records aggregate over one minute.
pub const FLOW_INTERVAL: i64 = 60;

/// Idle pooled sessions start expiring at the firewall: first drops.
pub const ONSET: i64 = 60;
/// Queries on dead sessions start timing out in the applications.
pub const TIMEOUTS: i64 = 90;
/// Application pools are full.
pub const POOL_EXHAUSTED: i64 = 180;
/// The `recommendations` deploy (noise).
pub const RECOMMENDATIONS_DEPLOY: i64 = -12 * 60;
/// An operator raises the front-end's upstream timeout (noise).
pub const FRONT_END_CONFIG_CHANGE: i64 = ONSET + 25 * 60;
/// The nightly report job on the batch host (unrelated).
pub const BATCH_JOB: (i64, i64) = (110, 840);
/// Failed SSH logins on the bastion (unrelated).
pub const SSH_BURST: (i64, i64) = (290, 560);

/// 0 before `from`, 1 after `to`, linear in between.
pub fn ramp(t: i64, from: i64, to: i64) -> f64 {
    if t <= from {
        0.0
    } else if t >= to {
        1.0
    } else {
        (t - from) as f64 / (to - from) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_is_clamped_and_linear() {
        assert_eq!(ramp(0, 10, 20), 0.0);
        assert_eq!(ramp(15, 10, 20), 0.5);
        assert_eq!(ramp(99, 10, 20), 1.0);
    }
}
