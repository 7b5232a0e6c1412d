//! The job's own resource use, for the cost ledger.
//!
//! `getrusage(RUSAGE_SELF)` covers the whole process: the job is one
//! investigation, so the process's CPU time and peak resident memory are
//! the investigation's compute cost.

use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::time::TimeValLike;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ResourceUsage {
    pub cpu_seconds: f64,
    pub peak_memory_bytes: u64,
}

/// CPU seconds (user + system) and peak RSS of this process so far; zeros
/// when the kernel will not say.
pub fn own_usage() -> ResourceUsage {
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let micros = u.user_time().num_microseconds() + u.system_time().num_microseconds();
            ResourceUsage {
                cpu_seconds: micros as f64 / 1e6,
                // Linux reports ru_maxrss in KiB.
                peak_memory_bytes: u64::try_from(u.max_rss()).unwrap_or(0).saturating_mul(1024),
            }
        }
        Err(_) => ResourceUsage::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_process_has_used_memory_and_some_cpu() {
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        assert!(x > 0);
        let u = own_usage();
        assert!(u.peak_memory_bytes > 1024 * 1024);
        assert!(u.cpu_seconds > 0.0);
    }
}
