//! From what is known about a job's end to a [`JobOutcome`].
//!
//! Kept pure so every rule is tested without starting processes. The order
//! matters: a stop the runtime itself caused (cancel, deadline) explains the
//! end better than the signal it used; memory evidence explains a kill
//! better than the bare signal.

use nix::sys::signal::Signal;
use warden_core::ports::JobOutcome;

use crate::record::MemoryLimit;

/// Why the runtime stopped a job, when it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    Cancelled,
    Deadline,
}

/// How the job's main process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    Code(i32),
    Signal(i32),
    /// An adopted job is not our child: its status cannot be read.
    Unknown,
}

impl Exit {
    fn failed(self) -> bool {
        !matches!(self, Exit::Code(0))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExitFacts {
    pub stop: Option<StopReason>,
    pub exit: Exit,
    pub memory_limited_by: MemoryLimit,
    pub memory_limit_bytes: u64,
    /// `oom_kill` from the job's `memory.oom_control`.
    pub oom_kills: u64,
    /// `memory.failcnt` of the job's memory cgroup.
    pub memory_failures: u64,
    /// The job's own output reports a failed allocation.
    pub log_reports_allocation_failure: bool,
    pub file_size_limit_bytes: u64,
}

pub(crate) fn classify(facts: &ExitFacts) -> JobOutcome {
    match facts.stop {
        Some(StopReason::Cancelled) => return JobOutcome::Cancelled,
        Some(StopReason::Deadline) => return JobOutcome::DeadlineExceeded,
        None => {}
    }
    if let Some(detail) = memory_exhaustion(facts) {
        return JobOutcome::OutOfMemory { detail };
    }
    match facts.exit {
        Exit::Code(code) => JobOutcome::Exited { code },
        Exit::Signal(signal) => JobOutcome::Killed {
            detail: describe_signal(signal, facts.file_size_limit_bytes),
        },
        Exit::Unknown => JobOutcome::Lost {
            detail: "exit status unknown: the job ended while being re-adopted".to_string(),
        },
    }
}

fn memory_exhaustion(facts: &ExitFacts) -> Option<String> {
    let limit = facts.memory_limit_bytes;
    let sigkill = facts.exit == Exit::Signal(Signal::SIGKILL as i32);
    match facts.memory_limited_by {
        MemoryLimit::CgroupV1 => {
            // The kernel OOM killer may pick a child, after which the main
            // process exits with an error: any failed end with an OOM kill
            // in the cgroup counts.
            if facts.oom_kills > 0 && facts.exit.failed() {
                Some(format!(
                    "memory limit of {limit} bytes exceeded: the kernel OOM-killed {} process(es) of the job",
                    facts.oom_kills
                ))
            } else if facts.memory_failures > 0 && sigkill {
                Some(format!(
                    "memory limit of {limit} bytes reached {} time(s) before the job was SIGKILLed",
                    facts.memory_failures
                ))
            } else {
                None
            }
        }
        MemoryLimit::RlimitAs => {
            // Without a cgroup nothing is OOM-killed: allocations fail.
            // Rust aborts (SIGABRT) with "memory allocation of N bytes
            // failed"; other runtimes exit with an error of their own.
            let failed_end = matches!(facts.exit, Exit::Code(c) if c != 0)
                || facts.exit == Exit::Signal(Signal::SIGABRT as i32);
            (failed_end && facts.log_reports_allocation_failure).then(|| {
                format!(
                    "allocation failed under an address-space limit (RLIMIT_AS) of {limit} bytes"
                )
            })
        }
    }
}

fn describe_signal(signal: i32, file_size_limit_bytes: u64) -> String {
    let name = Signal::try_from(signal)
        .map_or_else(|_| format!("signal {signal}"), |s| s.as_str().to_string());
    if signal == Signal::SIGXFSZ as i32 {
        format!(
            "killed by {name}: the job wrote past its file size limit of {file_size_limit_bytes} bytes"
        )
    } else {
        format!("killed by {name}")
    }
}

/// Phrases with which common runtimes report a failed allocation.
const ALLOCATION_FAILURE_MARKERS: [&str; 4] = [
    "memory allocation of ", // Rust's alloc error handler
    "MemoryError",           // Python
    "Cannot allocate memory",
    "out of memory",
];

pub(crate) fn reports_allocation_failure(log_tail: &str) -> bool {
    ALLOCATION_FAILURE_MARKERS
        .iter()
        .any(|marker| log_tail.contains(marker))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(exit: Exit) -> ExitFacts {
        ExitFacts {
            stop: None,
            exit,
            memory_limited_by: MemoryLimit::CgroupV1,
            memory_limit_bytes: 128 << 20,
            oom_kills: 0,
            memory_failures: 0,
            log_reports_allocation_failure: false,
            file_size_limit_bytes: 1 << 20,
        }
    }

    #[test]
    fn a_plain_exit_keeps_its_code() {
        assert_eq!(
            classify(&facts(Exit::Code(0))),
            JobOutcome::Exited { code: 0 }
        );
        assert_eq!(
            classify(&facts(Exit::Code(3))),
            JobOutcome::Exited { code: 3 }
        );
    }

    #[test]
    fn a_sigkill_with_an_oom_kill_in_the_cgroup_is_out_of_memory() {
        let f = ExitFacts {
            oom_kills: 1,
            ..facts(Exit::Signal(9))
        };
        assert!(
            matches!(classify(&f), JobOutcome::OutOfMemory { detail } if detail.contains("134217728"))
        );
    }

    #[test]
    fn a_child_oom_kill_that_fails_the_job_is_out_of_memory() {
        let f = ExitFacts {
            oom_kills: 1,
            ..facts(Exit::Code(137))
        };
        assert!(matches!(classify(&f), JobOutcome::OutOfMemory { .. }));
    }

    #[test]
    fn a_job_that_survived_a_child_oom_kill_and_succeeded_is_a_success() {
        let f = ExitFacts {
            oom_kills: 1,
            ..facts(Exit::Code(0))
        };
        assert_eq!(classify(&f), JobOutcome::Exited { code: 0 });
    }

    #[test]
    fn a_sigkill_after_hitting_the_limit_is_out_of_memory() {
        let f = ExitFacts {
            memory_failures: 4,
            ..facts(Exit::Signal(9))
        };
        assert!(matches!(classify(&f), JobOutcome::OutOfMemory { .. }));
    }

    #[test]
    fn a_sigkill_without_memory_evidence_names_the_signal() {
        assert_eq!(
            classify(&facts(Exit::Signal(9))),
            JobOutcome::Killed {
                detail: "killed by SIGKILL".into()
            }
        );
    }

    #[test]
    fn a_rust_allocation_abort_under_rlimit_is_out_of_memory() {
        let f = ExitFacts {
            memory_limited_by: MemoryLimit::RlimitAs,
            log_reports_allocation_failure: reports_allocation_failure(
                "memory allocation of 1073741824 bytes failed\n",
            ),
            ..facts(Exit::Signal(6))
        };
        assert!(
            matches!(classify(&f), JobOutcome::OutOfMemory { detail } if detail.contains("RLIMIT_AS"))
        );
    }

    #[test]
    fn an_abort_without_an_allocation_message_is_a_kill() {
        let f = ExitFacts {
            memory_limited_by: MemoryLimit::RlimitAs,
            ..facts(Exit::Signal(6))
        };
        assert_eq!(
            classify(&f),
            JobOutcome::Killed {
                detail: "killed by SIGABRT".into()
            }
        );
    }

    #[test]
    fn cancel_and_deadline_win_over_the_signal_used_for_them() {
        let cancelled = ExitFacts {
            stop: Some(StopReason::Cancelled),
            oom_kills: 1,
            ..facts(Exit::Signal(9))
        };
        assert_eq!(classify(&cancelled), JobOutcome::Cancelled);
        let late = ExitFacts {
            stop: Some(StopReason::Deadline),
            ..facts(Exit::Signal(15))
        };
        assert_eq!(classify(&late), JobOutcome::DeadlineExceeded);
    }

    #[test]
    fn a_log_overflow_is_named() {
        let outcome = classify(&facts(Exit::Signal(Signal::SIGXFSZ as i32)));
        assert!(
            matches!(outcome, JobOutcome::Killed { detail } if detail.contains("SIGXFSZ") && detail.contains("1048576"))
        );
    }

    #[test]
    fn an_adopted_job_that_vanished_is_lost_unless_the_cgroup_saw_an_oom_kill() {
        assert!(matches!(
            classify(&facts(Exit::Unknown)),
            JobOutcome::Lost { .. }
        ));
        let f = ExitFacts {
            oom_kills: 1,
            ..facts(Exit::Unknown)
        };
        assert!(matches!(classify(&f), JobOutcome::OutOfMemory { .. }));
    }
}
