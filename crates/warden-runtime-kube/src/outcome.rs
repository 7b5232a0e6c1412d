//! From what the API server says about a Job and its pods to how the
//! investigation's job ended. Pure functions over the watched objects, so
//! every mapping is tested without a server.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerStateTerminated, Pod};
use warden_core::ports::JobOutcome;

use crate::manifest::{CONTAINER, EXIT_SIGKILL};

/// Waiting reasons that mean the image will not run as configured.
const PULL_FAILURES: [&str; 4] = [
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "ErrImageNeverPull",
];
/// Of those, the ones no amount of waiting fixes.
const PULL_FAILURES_FINAL: [&str; 2] = ["InvalidImageName", "ErrImageNeverPull"];

/// The terminal condition of a Job, if it has one: `(type, reason, message)`.
/// `FailureTarget` and `SuccessCriteriaMet` (Kubernetes 1.31+) come before
/// `Failed` and `Complete` while pods are still being stopped; the outcome
/// is already decided then.
fn terminal_condition(job: &Job) -> Option<(bool, String, String)> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    for wanted in ["Complete", "Failed", "SuccessCriteriaMet", "FailureTarget"] {
        if let Some(c) = conditions
            .iter()
            .find(|c| c.type_ == wanted && c.status == "True")
        {
            let succeeded = wanted == "Complete" || wanted == "SuccessCriteriaMet";
            return Some((
                succeeded,
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            ));
        }
    }
    None
}

/// The agent container's last termination in a pod.
fn agent_termination(pod: &Pod) -> Option<&ContainerStateTerminated> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    let status = statuses.iter().find(|s| s.name == CONTAINER)?;
    status
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .or_else(|| {
            status
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
        })
}

/// The pod whose agent container ended last (the one that decided the Job).
fn last_terminated<'a>(
    pods: impl Iterator<Item = &'a Pod>,
) -> Option<(&'a Pod, &'a ContainerStateTerminated)> {
    pods.filter_map(|p| agent_termination(p).map(|t| (p, t)))
        .max_by_key(|(p, t)| {
            (
                t.finished_at.as_ref().map(|f| f.0),
                p.metadata.creation_timestamp.as_ref().map(|c| c.0),
            )
        })
}

fn pod_name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or("?")
}

fn is_oom(t: &ContainerStateTerminated) -> bool {
    t.reason.as_deref() == Some("OOMKilled")
}

fn oom_detail(pod: &Pod, t: &ContainerStateTerminated) -> String {
    format!(
        "OOMKilled: container {CONTAINER} of pod {} exceeded its memory limit (exit code {})",
        pod_name(pod),
        t.exit_code
    )
}

/// Whether the Job has ended (Complete or Failed).
pub fn job_finished(job: &Job) -> bool {
    terminal_condition(job).is_some()
}

/// How the Job ended, or `None` while it runs.
pub fn job_outcome<'a>(job: &Job, pods: impl Iterator<Item = &'a Pod>) -> Option<JobOutcome> {
    let (succeeded, reason, message) = terminal_condition(job)?;
    if succeeded {
        return Some(JobOutcome::Exited { code: 0 });
    }
    let last = last_terminated(pods);
    let failed_pods = job.status.as_ref().and_then(|s| s.failed).unwrap_or(0);
    Some(match reason.as_str() {
        "DeadlineExceeded" => JobOutcome::DeadlineExceeded,
        "PodFailurePolicy" => match last {
            Some((pod, t)) if is_oom(t) => JobOutcome::OutOfMemory {
                detail: oom_detail(pod, t),
            },
            Some((_, t)) if t.exit_code == EXIT_SIGKILL => JobOutcome::Killed {
                detail: format!(
                    "the agent was killed by SIGKILL (exit code {EXIT_SIGKILL}): {message}"
                ),
            },
            Some((_, t)) => JobOutcome::Exited { code: t.exit_code },
            None => JobOutcome::Killed {
                detail: format!("PodFailurePolicy: {message}"),
            },
        },
        "BackoffLimitExceeded" => match last {
            Some((pod, t)) if is_oom(t) => JobOutcome::OutOfMemory {
                detail: oom_detail(pod, t),
            },
            Some((pod, t)) => JobOutcome::Killed {
                detail: format!(
                    "BackoffLimitExceeded: {failed_pods} pod(s) failed; the last, {}, exited with code {}{}",
                    pod_name(pod),
                    t.exit_code,
                    t.reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                ),
            },
            None => JobOutcome::Killed {
                detail: format!("BackoffLimitExceeded: {failed_pods} pod(s) failed: {message}"),
            },
        },
        other => JobOutcome::Killed {
            detail: format!("the Job failed ({other}): {message}"),
        },
    })
}

/// A pod that cannot get its image: `(reason, message, final)`, where
/// `final` means waiting cannot help.
pub fn image_pull_problem(pod: &Pod) -> Option<(String, String, bool)> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    statuses.iter().find_map(|s| {
        let waiting = s.state.as_ref()?.waiting.as_ref()?;
        let reason = waiting.reason.as_deref()?;
        PULL_FAILURES.contains(&reason).then(|| {
            (
                reason.to_string(),
                waiting.message.clone().unwrap_or_default(),
                PULL_FAILURES_FINAL.contains(&reason),
            )
        })
    })
}

/// Why a pod was disrupted (evicted, preempted, its node drained), if it
/// was. The Job retries such pods (pod failure policy `Ignore`).
pub fn disruption(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    if status.reason.as_deref() == Some("Evicted") {
        return Some(format!(
            "Evicted: {}",
            status.message.clone().unwrap_or_default()
        ));
    }
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "DisruptionTarget" && c.status == "True")
        .map(|c| {
            format!(
                "{}: {}",
                c.reason
                    .clone()
                    .unwrap_or_else(|| "DisruptionTarget".into()),
                c.message.clone().unwrap_or_default()
            )
        })
}

/// Whether the pod's agent container has started (its log can be read).
pub fn has_started(pod: &Pod) -> bool {
    let Some(statuses) = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
    else {
        return false;
    };
    statuses.iter().any(|s| {
        s.name == CONTAINER
            && s.state
                .as_ref()
                .is_some_and(|st| st.running.is_some() || st.terminated.is_some())
    })
}

/// Whether the pod is over (its phase is Succeeded or Failed).
pub fn has_ended(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(conditions: serde_json::Value, failed: i32) -> Job {
        serde_json::from_value(json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "j"},
            "status": {"conditions": conditions, "failed": failed}
        }))
        .unwrap()
    }

    fn pod(name: &str, terminated: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "creationTimestamp": "2026-01-01T00:00:00Z"},
            "status": {"phase": "Failed", "containerStatuses": [{
                "name": "agent", "image": "i", "imageID": "", "ready": false,
                "restartCount": 0, "state": {"terminated": terminated}
            }]}
        }))
        .unwrap()
    }

    fn failed(reason: &str) -> serde_json::Value {
        json!([{"type": "Failed", "status": "True", "reason": reason, "message": "m"}])
    }

    #[test]
    fn a_running_job_has_no_outcome_and_a_complete_one_exited_zero() {
        assert_eq!(job_outcome(&job(json!([]), 0), [].iter()), None);
        let done = job(json!([{"type": "Complete", "status": "True"}]), 0);
        assert_eq!(
            job_outcome(&done, [].iter()),
            Some(JobOutcome::Exited { code: 0 })
        );
    }

    #[test]
    fn an_oom_kill_is_out_of_memory_naming_the_pod() {
        let p = pod(
            "p1",
            json!({"exitCode": 137, "reason": "OOMKilled", "finishedAt": "2026-01-01T00:01:00Z"}),
        );
        let outcome = job_outcome(&job(failed("PodFailurePolicy"), 1), [p].iter());
        let Some(JobOutcome::OutOfMemory { detail }) = outcome else {
            panic!("{outcome:?}")
        };
        assert!(
            detail.contains("OOMKilled") && detail.contains("p1"),
            "{detail}"
        );
    }

    #[test]
    fn deadline_and_policy_exit_codes_map_to_their_outcomes() {
        assert_eq!(
            job_outcome(&job(failed("DeadlineExceeded"), 0), [].iter()),
            Some(JobOutcome::DeadlineExceeded)
        );
        let p = pod("p1", json!({"exitCode": 2}));
        assert_eq!(
            job_outcome(&job(failed("PodFailurePolicy"), 1), [p].iter()),
            Some(JobOutcome::Exited { code: 2 })
        );
    }

    #[test]
    fn backoff_limit_names_the_last_pod_and_its_exit_code() {
        let early = pod(
            "p1",
            json!({"exitCode": 3, "finishedAt": "2026-01-01T00:01:00Z"}),
        );
        let late = pod(
            "p2",
            json!({"exitCode": 101, "finishedAt": "2026-01-01T00:02:00Z"}),
        );
        let outcome = job_outcome(
            &job(failed("BackoffLimitExceeded"), 2),
            [early, late].iter(),
        );
        let Some(JobOutcome::Killed { detail }) = outcome else {
            panic!("{outcome:?}")
        };
        assert!(
            detail.starts_with("BackoffLimitExceeded: 2 pod(s)"),
            "{detail}"
        );
        assert!(detail.contains("p2") && detail.contains("101"), "{detail}");
    }

    #[test]
    fn image_pull_failures_and_evictions_are_recognised() {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "status": {"containerStatuses": [{"name": "agent", "image": "i", "imageID": "",
                "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "back-off pulling"}}}]}
        }))
        .unwrap();
        assert_eq!(
            image_pull_problem(&p),
            Some(("ImagePullBackOff".into(), "back-off pulling".into(), false))
        );
        let evicted: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "status": {"phase": "Failed", "reason": "Evicted", "message": "node low on memory"}
        }))
        .unwrap();
        assert_eq!(
            disruption(&evicted).as_deref(),
            Some("Evicted: node low on memory")
        );
        assert!(has_ended(&evicted) && !has_started(&evicted));
    }
}
