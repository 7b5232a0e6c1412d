//! Helpers that let a test play the Job controller and the kubelet, writing
//! the same fields, reasons and messages those components write in 1.33.

use serde_json::{Map, Value, json};

use crate::kinds::{self, KindInfo};
use crate::meta::{self, child_mut, ensure_object, metadata_mut};
use crate::server::World;
use crate::status::ApiError;
use crate::store::{Part, PatchType, Propagation};
use crate::{FakeApiServer, FakeError};

/// The state of one container, as the kubelet reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    /// Not running yet (or backing off).
    Waiting {
        /// `ContainerCreating`, `ImagePullBackOff`, `ErrImagePull`,
        /// `CrashLoopBackOff`, ...
        reason: String,
        /// Human-readable detail.
        message: String,
    },
    /// Running.
    Running,
    /// Exited.
    Terminated {
        /// Process exit code (137 for SIGKILL / OOM).
        exit_code: i32,
        /// `Completed`, `Error`, `OOMKilled`, ...
        reason: String,
        /// Termination message, if any.
        message: String,
    },
}

impl ContainerState {
    /// Running.
    pub fn running() -> Self {
        ContainerState::Running
    }

    /// Exited 0 with reason `Completed`.
    pub fn completed() -> Self {
        ContainerState::Terminated {
            exit_code: 0,
            reason: "Completed".into(),
            message: String::new(),
        }
    }

    /// Exited with `exit_code` and reason `Error`.
    pub fn error(exit_code: i32) -> Self {
        ContainerState::Terminated {
            exit_code,
            reason: "Error".into(),
            message: String::new(),
        }
    }

    /// Killed by the kernel OOM killer: exit 137, reason `OOMKilled`.
    pub fn oom_killed() -> Self {
        ContainerState::Terminated {
            exit_code: 137,
            reason: "OOMKilled".into(),
            message: String::new(),
        }
    }

    /// Waiting for the sandbox and image.
    pub fn container_creating() -> Self {
        ContainerState::Waiting {
            reason: "ContainerCreating".into(),
            message: String::new(),
        }
    }

    /// Image pull failed and the kubelet is backing off.
    pub fn image_pull_back_off(image: &str) -> Self {
        ContainerState::Waiting {
            reason: "ImagePullBackOff".into(),
            message: format!("Back-off pulling image \"{image}\""),
        }
    }

    /// The image pull just failed.
    pub fn err_image_pull(image: &str) -> Self {
        ContainerState::Waiting {
            reason: "ErrImagePull".into(),
            message: format!(
                "failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": not found"
            ),
        }
    }

    /// Restarting after repeated failures.
    pub fn crash_loop_back_off(container: &str, pod: &str, namespace: &str) -> Self {
        ContainerState::Waiting {
            reason: "CrashLoopBackOff".into(),
            message: format!(
                "back-off 10s restarting failed container={container} pod={pod}_{namespace}(uid)"
            ),
        }
    }

    fn to_json(&self, started_at: Option<&str>, now: &str, container_id: &str) -> Value {
        match self {
            ContainerState::Waiting { reason, message } => {
                let mut w = json!({"reason": reason});
                if !message.is_empty()
                    && let Some(m) = w.as_object_mut()
                {
                    m.insert("message".into(), json!(message));
                }
                json!({"waiting": w})
            }
            ContainerState::Running => json!({"running": {"startedAt": started_at.unwrap_or(now)}}),
            ContainerState::Terminated {
                exit_code,
                reason,
                message,
            } => {
                let mut t = json!({
                    "exitCode": exit_code,
                    "reason": reason,
                    "startedAt": started_at.unwrap_or(now),
                    "finishedAt": now,
                    "containerID": container_id,
                });
                if !message.is_empty()
                    && let Some(m) = t.as_object_mut()
                {
                    m.insert("message".into(), json!(message));
                }
                json!({"terminated": t})
            }
        }
    }
}

/// Pod phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodPhase {
    /// Accepted, containers not all started.
    Pending,
    /// Bound to a node, at least one container running.
    Running,
    /// All containers exited 0.
    Succeeded,
    /// All containers exited, at least one failed.
    Failed,
    /// State could not be obtained.
    Unknown,
}

impl PodPhase {
    fn as_str(self) -> &'static str {
        match self {
            PodPhase::Pending => "Pending",
            PodPhase::Running => "Running",
            PodPhase::Succeeded => "Succeeded",
            PodPhase::Failed => "Failed",
            PodPhase::Unknown => "Unknown",
        }
    }
}

/// Job condition types set by the 1.33 Job controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobConditionType {
    /// Finished successfully (after `SuccessCriteriaMet`).
    Complete,
    /// Finished unsuccessfully (after `FailureTarget`).
    Failed,
    /// Success criteria met; pods are being terminated.
    SuccessCriteriaMet,
    /// Failure decided; pods are being terminated.
    FailureTarget,
    /// Suspended.
    Suspended,
}

impl JobConditionType {
    fn as_str(self) -> &'static str {
        match self {
            JobConditionType::Complete => "Complete",
            JobConditionType::Failed => "Failed",
            JobConditionType::SuccessCriteriaMet => "SuccessCriteriaMet",
            JobConditionType::FailureTarget => "FailureTarget",
            JobConditionType::Suspended => "Suspended",
        }
    }
}

/// Why a Job failed, with the controller's reason strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobFailureReason {
    /// `activeDeadlineSeconds` passed.
    DeadlineExceeded,
    /// More failed pods than `backoffLimit`.
    BackoffLimitExceeded,
    /// A `podFailurePolicy` rule with action FailJob matched; the message
    /// names the rule, e.g. `Container main for pod ns/p failed with exit
    /// code 137 matching FailJob rule at index 0`.
    PodFailurePolicy(String),
    /// Indexed Job: more failed indexes than `maxFailedIndexes`.
    MaxFailedIndexesExceeded,
}

impl JobFailureReason {
    fn reason(&self) -> &'static str {
        match self {
            JobFailureReason::DeadlineExceeded => "DeadlineExceeded",
            JobFailureReason::BackoffLimitExceeded => "BackoffLimitExceeded",
            JobFailureReason::PodFailurePolicy(_) => "PodFailurePolicy",
            JobFailureReason::MaxFailedIndexesExceeded => "MaxFailedIndexesExceeded",
        }
    }

    fn message(&self) -> String {
        match self {
            JobFailureReason::DeadlineExceeded => {
                "Job was active longer than specified deadline".into()
            }
            JobFailureReason::BackoffLimitExceeded => {
                "Job has reached the specified backoff limit".into()
            }
            JobFailureReason::PodFailurePolicy(m) => m.clone(),
            JobFailureReason::MaxFailedIndexesExceeded => {
                "Job has exceeded the specified maximal number of failed indexes".into()
            }
        }
    }
}

fn kind(name: &str) -> Result<&'static KindInfo, FakeError> {
    kinds::lookup(name).ok_or_else(|| FakeError::Invalid(format!("unknown kind {name:?}")))
}

fn condition(kind: &str, status: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastProbeTime": now,
        "lastTransitionTime": now,
    })
}

/// Replaces (by type) or appends conditions in a status map, keeping the
/// transition time when the status does not change.
fn upsert_conditions(status: &mut Map<String, Value>, new: Vec<Value>) {
    let list = status.entry("conditions").or_insert(json!([]));
    if !list.is_array() {
        *list = json!([]);
    }
    if let Value::Array(items) = list {
        for c in new {
            let t = c.get("type").cloned();
            match items.iter_mut().find(|x| x.get("type") == t.as_ref()) {
                Some(existing) => {
                    let keep_time = existing.get("status") == c.get("status");
                    let old_time = existing.get("lastTransitionTime").cloned();
                    *existing = c;
                    if keep_time && let (Some(t), Some(m)) = (old_time, existing.as_object_mut()) {
                        m.insert("lastTransitionTime".into(), t);
                    }
                }
                None => items.push(c),
            }
        }
    }
}

fn has_true_condition(obj: &Value, kind: &str) -> bool {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some(kind)
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

impl World {
    fn write_status(
        &mut self,
        kind: &'static KindInfo,
        ns: &str,
        name: &str,
        status: Value,
    ) -> Result<Value, ApiError> {
        self.store.patch(
            kind,
            Some(ns),
            name,
            PatchType::Merge,
            &json!({"status": status}),
            Part::Status,
        )
    }

    fn owned_pods(&self, ns: &str, owner_uid: &str) -> Result<Vec<Value>, FakeError> {
        let pods = kind("pods")?;
        Ok(self
            .store
            .list(pods, Some(ns), &Default::default(), &Default::default())
            .into_iter()
            .filter(|p| meta::owner_uids(p).iter().any(|u| u == owner_uid))
            .collect())
    }
}

impl FakeApiServer {
    /// Creates a Pod for a Job as the Job controller does: the Job's pod
    /// template, `generateName: <job>-`, the `job-name` /
    /// `batch.kubernetes.io/job-name` / `controller-uid` /
    /// `batch.kubernetes.io/controller-uid` labels, and a controller
    /// ownerReference to the Job. The Job's `status.active` and `startTime`
    /// are updated. Fails like the ServiceAccount admission plugin when the
    /// pod's service account does not exist.
    pub fn create_pod_for_job(&self, namespace: &str, job: &str) -> Result<Value, FakeError> {
        let jobs = kind("jobs")?;
        let pods = kind("pods")?;
        let sas = kind("serviceaccounts")?;
        self.mutate(|w| {
            let job_obj = w.store.get(jobs, Some(namespace), job)?;
            if has_true_condition(&job_obj, "Complete") || has_true_condition(&job_obj, "Failed") {
                return Err(FakeError::Invalid(format!("job {namespace}/{job} has finished; the controller creates no more pods")));
            }
            if job_obj.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
                return Err(FakeError::Invalid(format!(
                    "job {namespace}/{job} is suspended; the controller creates no pods"
                )));
            }
            let uid = meta::uid(&job_obj).to_string();
            let template = job_obj.pointer("/spec/template").cloned().unwrap_or(json!({}));
            let mut pod = json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "generateName": format!("{job}-"),
                    "namespace": namespace,
                    "labels": template.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
                    "annotations": template.pointer("/metadata/annotations").cloned().unwrap_or(json!({})),
                    "ownerReferences": [{
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": job,
                        "uid": uid,
                        "controller": true,
                        "blockOwnerDeletion": true
                    }]
                },
                "spec": template.get("spec").cloned().unwrap_or(json!({})),
            });
            {
                let labels = child_mut(metadata_mut(&mut pod), "labels");
                labels.insert("batch.kubernetes.io/controller-uid".into(), json!(uid));
                labels.insert("controller-uid".into(), json!(uid));
                labels.insert("batch.kubernetes.io/job-name".into(), json!(job));
                labels.insert("job-name".into(), json!(job));
            }
            let sa = pod
                .pointer("/spec/serviceAccountName")
                .and_then(Value::as_str)
                .unwrap_or("default")
                .to_string();
            if w.store.get(sas, Some(namespace), &sa).is_err() {
                return Err(FakeError::Api(ApiError {
                    code: 403,
                    reason: "Forbidden".into(),
                    message: format!(
                        "pods \"{job}-\" is forbidden: error looking up service account {namespace}/{sa}: serviceaccount \"{sa}\" not found"
                    ),
                    details: Some(json!({"name": format!("{job}-"), "kind": "pods"})),
                }));
            }
            if let Some(spec) = pod.get_mut("spec") {
                ensure_object(spec).insert("serviceAccountName".into(), json!(sa));
            }
            let created = w.store.create(pods, Some(namespace), pod)?;
            let now = meta::now_rfc3339();
            let active = w
                .owned_pods(namespace, &uid)?
                .iter()
                .filter(|p| !matches!(meta::str_at(p, "/status/phase"), Some("Succeeded" | "Failed")))
                .count();
            let mut status = json!({"active": active, "ready": 0, "terminating": 0, "uncountedTerminatedPods": {}});
            if job_obj.pointer("/status/startTime").is_none()
                && let Some(m) = status.as_object_mut()
            {
                m.insert("startTime".into(), json!(now));
            }
            w.write_status(jobs, namespace, job, status)?;
            Ok(created)
        })
    }

    /// Sets one container's state (the only container, or the first, when
    /// `container` is `None`) and derives the pod phase and conditions the
    /// kubelet would report. Schedules the pod on `fake-node-1` if needed.
    pub fn set_container_state(
        &self,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
        state: ContainerState,
    ) -> Result<Value, FakeError> {
        let pods = kind("pods")?;
        self.mutate(|w| {
            let current = w.store.get(pods, Some(namespace), pod)?;
            let updated = kubelet_update(&current, container, &state, None)?;
            let updated = w.store.force_replace(pods, Some(namespace), pod, updated)?;
            kubelet_events(w, &updated, container, &state)?;
            Ok(updated)
        })
    }

    /// Sets every container to the state that goes with `phase` (Running →
    /// running, Succeeded → exit 0, Failed → exit 1, Pending → creating).
    pub fn set_pod_phase(
        &self,
        namespace: &str,
        pod: &str,
        phase: PodPhase,
    ) -> Result<Value, FakeError> {
        let pods = kind("pods")?;
        self.mutate(|w| {
            let current = w.store.get(pods, Some(namespace), pod)?;
            let state = match phase {
                PodPhase::Pending => ContainerState::container_creating(),
                PodPhase::Running => ContainerState::running(),
                PodPhase::Succeeded => ContainerState::completed(),
                PodPhase::Failed => ContainerState::error(1),
                PodPhase::Unknown => ContainerState::Waiting {
                    reason: "Unknown".into(),
                    message: String::new(),
                },
            };
            let mut updated = current.clone();
            for name in container_names(&current) {
                updated = kubelet_update(&updated, Some(&name), &state, None)?;
            }
            child_mut(ensure_object(&mut updated), "status")
                .insert("phase".into(), json!(phase.as_str()));
            Ok(w.store.force_replace(pods, Some(namespace), pod, updated)?)
        })
    }

    /// Evicts a pod the way the kubelet does under node memory pressure:
    /// phase Failed, reason Evicted, a `DisruptionTarget` condition with
    /// reason `TerminationByKubelet`, containers killed (exit 137), and a
    /// Warning `Evicted` event.
    pub fn evict_pod(&self, namespace: &str, pod: &str) -> Result<Value, FakeError> {
        let pods = kind("pods")?;
        self.mutate(|w| {
            let current = w.store.get(pods, Some(namespace), pod)?;
            let message = "The node was low on resource: memory. Threshold quantity: 100Mi, available: 51200Ki. ";
            let mut updated = current.clone();
            for name in container_names(&current) {
                updated = kubelet_update(&updated, Some(&name), &ContainerState::error(137), Some(PodPhase::Failed))?;
            }
            let now = meta::now_rfc3339();
            let status = child_mut(ensure_object(&mut updated), "status");
            status.insert("phase".into(), json!("Failed"));
            status.insert("reason".into(), json!("Evicted"));
            status.insert("message".into(), json!(message));
            upsert_conditions(status, vec![condition("DisruptionTarget", "True", "TerminationByKubelet", message, &now)]);
            let updated = w.store.force_replace(pods, Some(namespace), pod, updated)?;
            record_event(w, &updated, "Warning", "Evicted", message, "kubelet")?;
            Ok(updated)
        })
    }

    /// Restarts a container: its current log becomes the `previous=true`
    /// log, `restartCount` goes up, `lastState` records how it ended.
    pub fn restart_container(
        &self,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
        ended: ContainerState,
    ) -> Result<Value, FakeError> {
        let pods = kind("pods")?;
        self.mutate(|w| {
            let current = w.store.get(pods, Some(namespace), pod)?;
            let name = resolve_container(&current, container)?;
            w.logs.restart(namespace, meta::uid(&current), &name);
            let now = meta::now_rfc3339();
            let mut updated =
                kubelet_update(&current, Some(&name), &ContainerState::running(), None)?;
            if let Some(Value::Array(statuses)) = updated.pointer_mut("/status/containerStatuses") {
                for s in statuses.iter_mut() {
                    if s.get("name").and_then(Value::as_str) == Some(name.as_str()) {
                        let count = s.get("restartCount").and_then(Value::as_i64).unwrap_or(0) + 1;
                        let m = ensure_object(s);
                        m.insert("restartCount".into(), json!(count));
                        m.insert(
                            "lastState".into(),
                            ended.to_json(None, &now, "containerd://previous"),
                        );
                        m.insert("state".into(), json!({"running": {"startedAt": now}}));
                    }
                }
            }
            Ok(w.store.force_replace(pods, Some(namespace), pod, updated)?)
        })
    }

    /// Appends to the log of the pod's default container.
    pub fn append_pod_log(&self, namespace: &str, pod: &str, text: &str) -> Result<(), FakeError> {
        self.append_container_log(namespace, pod, None, text)
    }

    /// Appends to the log of one container.
    pub fn append_container_log(
        &self,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
        text: &str,
    ) -> Result<(), FakeError> {
        let pods = kind("pods")?;
        self.mutate(|w| {
            let current = w.store.get(pods, Some(namespace), pod)?;
            let name = resolve_container(&current, container)?;
            w.logs.append(namespace, meta::uid(&current), &name, text);
            Ok(())
        })
    }

    /// Sets (or replaces, by type) one Job condition.
    pub fn set_job_condition(
        &self,
        namespace: &str,
        job: &str,
        condition_type: JobConditionType,
        status: bool,
        reason: &str,
        message: &str,
    ) -> Result<Value, FakeError> {
        let jobs = kind("jobs")?;
        self.mutate(|w| {
            let current = w.store.get(jobs, Some(namespace), job)?;
            let now = meta::now_rfc3339();
            let mut status_obj = current.get("status").cloned().unwrap_or(json!({}));
            upsert_conditions(
                ensure_object(&mut status_obj),
                vec![condition(
                    condition_type.as_str(),
                    if status { "True" } else { "False" },
                    reason,
                    message,
                    &now,
                )],
            );
            Ok(w.write_status(jobs, namespace, job, status_obj)?)
        })
    }

    /// Marks a Job succeeded as the 1.33 controller does:
    /// `SuccessCriteriaMet` then `Complete` (reason `CompletionsReached`),
    /// `succeeded = completions`, `completionTime`.
    pub fn complete_job(&self, namespace: &str, job: &str) -> Result<Value, FakeError> {
        let jobs = kind("jobs")?;
        self.mutate(|w| {
            let current = w.store.get(jobs, Some(namespace), job)?;
            let completions = current
                .pointer("/spec/completions")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            Ok(finish_job(w, jobs, namespace, &current, Ok(completions))?)
        })
    }

    /// Marks a Job failed as the 1.33 controller does: `FailureTarget` then
    /// `Failed` with the reason and message, active pods deleted.
    pub fn fail_job(
        &self,
        namespace: &str,
        job: &str,
        reason: JobFailureReason,
    ) -> Result<Value, FakeError> {
        let jobs = kind("jobs")?;
        self.mutate(|w| {
            let current = w.store.get(jobs, Some(namespace), job)?;
            Ok(finish_job(w, jobs, namespace, &current, Err(reason))?)
        })
    }

    /// One sync of the Job controller: counts the Job's pods into
    /// `active`/`ready`/`succeeded`/`failed`, evaluates `podFailurePolicy`
    /// (FailJob / Ignore / Count on exit codes and pod conditions),
    /// `backoffLimit` and `activeDeadlineSeconds`, and finishes the Job with
    /// the matching conditions. Does not create replacement pods (call
    /// [`FakeApiServer::create_pod_for_job`]).
    pub fn sync_job(&self, namespace: &str, job: &str) -> Result<Value, FakeError> {
        let jobs = kind("jobs")?;
        self.mutate(|w| {
            let current = w.store.get(jobs, Some(namespace), job)?;
            if has_true_condition(&current, "Complete") || has_true_condition(&current, "Failed") {
                return Ok(current);
            }
            let uid = meta::uid(&current).to_string();
            let pods = w.owned_pods(namespace, &uid)?;
            let (mut active, mut ready, mut succeeded, mut failed) = (0i64, 0i64, 0i64, 0i64);
            let mut fail_job: Option<String> = None;
            for pod in &pods {
                match meta::str_at(pod, "/status/phase") {
                    Some("Succeeded") => succeeded += 1,
                    Some("Failed") => match pod_failure_policy_action(&current, pod) {
                        Some((PolicyAction::FailJob, message)) => {
                            failed += 1;
                            fail_job.get_or_insert(message);
                        }
                        Some((PolicyAction::Ignore, _)) => {}
                        Some((PolicyAction::Count, _)) | None => failed += 1,
                    },
                    _ => {
                        if pod.pointer("/metadata/deletionTimestamp").is_none() {
                            active += 1;
                            if has_true_condition(pod, "Ready") {
                                ready += 1;
                            }
                        }
                    }
                }
            }
            let now = chrono::Utc::now();
            let start = current
                .pointer("/status/startTime")
                .and_then(Value::as_str)
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&chrono::Utc));
            let mut status = json!({
                "active": active, "ready": ready, "succeeded": succeeded, "failed": failed,
                "terminating": 0, "uncountedTerminatedPods": {}
            });
            if start.is_none()
                && let Some(m) = status.as_object_mut()
            {
                m.insert("startTime".into(), json!(meta::now_rfc3339()));
            }
            // Counts with zero are omitted by the real controller.
            if let Some(m) = status.as_object_mut() {
                for k in ["succeeded", "failed"] {
                    if m.get(k) == Some(&json!(0)) {
                        m.remove(k);
                    }
                }
            }
            let current = w.write_status(jobs, namespace, job, status)?;
            let backoff_limit = current
                .pointer("/spec/backoffLimit")
                .and_then(Value::as_i64)
                .unwrap_or(6);
            let completions = current
                .pointer("/spec/completions")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let deadline = current
                .pointer("/spec/activeDeadlineSeconds")
                .and_then(Value::as_i64);
            let outcome = if let Some(message) = fail_job {
                Some(Err(JobFailureReason::PodFailurePolicy(message)))
            } else if failed > backoff_limit {
                Some(Err(JobFailureReason::BackoffLimitExceeded))
            } else if succeeded >= completions {
                Some(Ok(succeeded))
            } else if let (Some(d), Some(s)) = (deadline, start)
                && (now - s).num_seconds() >= d
            {
                Some(Err(JobFailureReason::DeadlineExceeded))
            } else {
                None
            };
            match outcome {
                Some(outcome) => Ok(finish_job(w, jobs, namespace, &current, outcome)?),
                None => Ok(current),
            }
        })
    }

    /// One pass of the TTL-after-finished controller: deletes (with
    /// Background propagation, so their pods go too) every finished Job
    /// whose `ttlSecondsAfterFinished` has elapsed since it finished.
    /// Returns the deleted Jobs as `namespace/name`.
    pub fn run_ttl_controller(&self) -> Result<Vec<String>, FakeError> {
        let jobs = kind("jobs")?;
        self.mutate(|w| {
            let now = chrono::Utc::now();
            let mut deleted = Vec::new();
            for job in w
                .store
                .list(jobs, None, &Default::default(), &Default::default())
            {
                let Some(ttl) = job
                    .pointer("/spec/ttlSecondsAfterFinished")
                    .and_then(Value::as_i64)
                else {
                    continue;
                };
                let finished_at = job
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .and_then(|cs| {
                        cs.iter().find(|c| {
                            matches!(
                                c.get("type").and_then(Value::as_str),
                                Some("Complete" | "Failed")
                            ) && c.get("status").and_then(Value::as_str) == Some("True")
                        })
                    })
                    .and_then(|c| c.get("lastTransitionTime").and_then(Value::as_str))
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
                let Some(finished_at) = finished_at else {
                    continue;
                };
                if (now - finished_at.with_timezone(&chrono::Utc)).num_seconds() >= ttl {
                    let (ns, name) = (
                        meta::namespace(&job).to_string(),
                        meta::name(&job).to_string(),
                    );
                    w.store
                        .delete(jobs, Some(&ns), &name, Some(Propagation::Background), None)?;
                    deleted.push(format!("{ns}/{name}"));
                }
            }
            Ok(deleted)
        })
    }

    /// One sync of the Deployment controller, with the rollout finishing at
    /// once: finds or creates the ReplicaSet for the current pod template
    /// (`<name>-<pod-template-hash>`, `pod-template-hash` label, controller
    /// ownerReference, `deployment.kubernetes.io/revision` = highest + 1,
    /// also when an old ReplicaSet is reused by a rollback), gives it all
    /// replicas and scales the others to 0, and writes the Deployment's
    /// revision annotation and status (`observedGeneration`, replica counts,
    /// `Available` and `Progressing` conditions). Pods are not created.
    /// Returns the ReplicaSet now serving the Deployment.
    pub fn sync_deployment(&self, namespace: &str, name: &str) -> Result<Value, FakeError> {
        let deployments = kind("deployments")?;
        let replicasets = kind("replicasets")?;
        self.mutate(|w| {
            let dep = w.store.get(deployments, Some(namespace), name)?;
            let uid = meta::uid(&dep).to_string();
            let replicas = dep.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
            let template = dep.pointer("/spec/template").cloned().unwrap_or(json!({}));
            let owned: Vec<Value> = w
                .store
                .list(replicasets, Some(namespace), &Default::default(), &Default::default())
                .into_iter()
                .filter(|rs| meta::owner_uids(rs).contains(&uid))
                .collect();
            let revision_of = |rs: &Value| {
                meta::str_at(rs, "/metadata/annotations/deployment.kubernetes.io~1revision")
                    .and_then(|r| r.parse::<i64>().ok())
                    .unwrap_or(0)
            };
            let max_revision = owned.iter().map(revision_of).max().unwrap_or(0);
            let without_hash = |rs: &Value| {
                let mut t = rs.pointer("/spec/template").cloned().unwrap_or(json!({}));
                if let Some(Value::Object(labels)) = t.pointer_mut("/metadata/labels") {
                    labels.remove("pod-template-hash");
                }
                t
            };
            let current = owned.iter().find(|rs| without_hash(rs) == template).cloned();
            let now = meta::now_rfc3339();
            let new_rs = match current {
                Some(rs) => {
                    let rs_name = meta::name(&rs).to_string();
                    let mut patch = json!({"spec": {"replicas": replicas}});
                    if revision_of(&rs) < max_revision {
                        ensure_object(&mut patch).insert(
                            "metadata".into(),
                            json!({"annotations": {
                                "deployment.kubernetes.io/revision": (max_revision + 1).to_string()
                            }}),
                        );
                    }
                    w.store
                        .patch(replicasets, Some(namespace), &rs_name, PatchType::Merge, &patch, Part::Main)?
                }
                None => {
                    let hash = pod_template_hash(&template);
                    let mut rs_template = template.clone();
                    child_mut(child_mut(ensure_object(&mut rs_template), "metadata"), "labels")
                        .insert("pod-template-hash".into(), json!(hash));
                    let mut selector = dep.pointer("/spec/selector").cloned().unwrap_or(json!({}));
                    child_mut(ensure_object(&mut selector), "matchLabels")
                        .insert("pod-template-hash".into(), json!(hash));
                    let labels = rs_template.pointer("/metadata/labels").cloned().unwrap_or(json!({}));
                    let rs = json!({
                        "metadata": {
                            "name": format!("{name}-{hash}"),
                            "namespace": namespace,
                            "labels": labels,
                            "annotations": {
                                "deployment.kubernetes.io/revision": (max_revision + 1).to_string(),
                                "deployment.kubernetes.io/desired-replicas": replicas.to_string(),
                                "deployment.kubernetes.io/max-replicas": replicas.to_string(),
                            },
                            "ownerReferences": [{
                                "apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": uid,
                                "controller": true, "blockOwnerDeletion": true
                            }]
                        },
                        "spec": {"replicas": replicas, "selector": selector, "template": rs_template}
                    });
                    w.store.create(replicasets, Some(namespace), rs)?
                }
            };
            let new_name = meta::name(&new_rs).to_string();
            for rs in &owned {
                let rs_name = meta::name(rs);
                if rs_name != new_name {
                    w.store.patch(
                        replicasets,
                        Some(namespace),
                        rs_name,
                        PatchType::Merge,
                        &json!({"spec": {"replicas": 0}}),
                        Part::Main,
                    )?;
                    w.write_status(
                        replicasets,
                        namespace,
                        rs_name,
                        json!({"replicas": 0, "fullyLabeledReplicas": 0, "readyReplicas": null, "availableReplicas": null}),
                    )?;
                }
            }
            let rs_generation = new_rs.pointer("/metadata/generation").cloned().unwrap_or(json!(1));
            w.write_status(
                replicasets,
                namespace,
                &new_name,
                json!({
                    "replicas": replicas, "fullyLabeledReplicas": replicas, "readyReplicas": replicas,
                    "availableReplicas": replicas, "observedGeneration": rs_generation
                }),
            )?;
            let revision = meta::str_at(&new_rs, "/metadata/annotations/deployment.kubernetes.io~1revision")
                .unwrap_or("1")
                .to_string();
            w.store.patch(
                deployments,
                Some(namespace),
                name,
                PatchType::Merge,
                &json!({"metadata": {"annotations": {"deployment.kubernetes.io/revision": revision}}}),
                Part::Main,
            )?;
            let generation = dep.pointer("/metadata/generation").cloned().unwrap_or(json!(1));
            let mut status = dep.get("status").cloned().unwrap_or(json!({}));
            let m = ensure_object(&mut status);
            m.insert("observedGeneration".into(), generation);
            for k in ["replicas", "updatedReplicas", "readyReplicas", "availableReplicas"] {
                m.insert(k.into(), json!(replicas));
            }
            m.remove("unavailableReplicas");
            let mut available = condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                &now,
            );
            let mut progressing = condition(
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                &format!("ReplicaSet \"{new_name}\" has successfully progressed."),
                &now,
            );
            for c in [&mut available, &mut progressing] {
                if let Some(obj) = c.as_object_mut() {
                    // Deployments use lastUpdateTime instead of lastProbeTime.
                    obj.remove("lastProbeTime");
                    obj.insert("lastUpdateTime".into(), json!(now));
                }
            }
            upsert_conditions(m, vec![available, progressing]);
            w.write_status(deployments, namespace, name, status)?;
            Ok(w.store.get(replicasets, Some(namespace), &new_name)?)
        })
    }

    /// Records a core/v1 Event about `involved` (any stored object), as a
    /// controller or the kubelet would.
    pub fn record_event(
        &self,
        involved: &Value,
        event_type: &str,
        reason: &str,
        message: &str,
    ) -> Result<Value, FakeError> {
        self.mutate(|w| {
            Ok(record_event(
                w,
                involved,
                event_type,
                reason,
                message,
                "fake-controller",
            )?)
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PolicyAction {
    FailJob,
    Ignore,
    Count,
}

/// The first `podFailurePolicy` rule matching a failed pod, with the
/// controller's message for FailJob.
fn pod_failure_policy_action(job: &Value, pod: &Value) -> Option<(PolicyAction, String)> {
    let rules = job.pointer("/spec/podFailurePolicy/rules")?.as_array()?;
    let ns = meta::namespace(pod);
    let pod_name = meta::name(pod);
    for (i, rule) in rules.iter().enumerate() {
        let action = match rule.get("action").and_then(Value::as_str) {
            Some("FailJob") => PolicyAction::FailJob,
            Some("Ignore") => PolicyAction::Ignore,
            Some("Count") => PolicyAction::Count,
            _ => continue,
        };
        let action_name = rule.get("action").and_then(Value::as_str).unwrap_or("");
        if let Some(req) = rule.get("onExitCodes") {
            let only = req.get("containerName").and_then(Value::as_str);
            let op = req.get("operator").and_then(Value::as_str).unwrap_or("In");
            let values: Vec<i64> = req
                .get("values")
                .and_then(Value::as_array)
                .map(|v| v.iter().filter_map(Value::as_i64).collect())
                .unwrap_or_default();
            let statuses = pod
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)?;
            for s in statuses {
                let cname = s.get("name").and_then(Value::as_str).unwrap_or("");
                if only.is_some_and(|o| o != cname) {
                    continue;
                }
                let Some(code) = s
                    .pointer("/state/terminated/exitCode")
                    .and_then(Value::as_i64)
                else {
                    continue;
                };
                // Exit code 0 never matches, whatever the operator.
                if code == 0 {
                    continue;
                }
                let hit = match op {
                    "NotIn" => !values.contains(&code),
                    _ => values.contains(&code),
                };
                if hit {
                    return Some((
                        action,
                        format!(
                            "Container {cname} for pod {ns}/{pod_name} failed with exit code {code} matching {action_name} rule at index {i}"
                        ),
                    ));
                }
            }
        }
        if let Some(patterns) = rule.get("onPodConditions").and_then(Value::as_array) {
            for pat in patterns {
                let ctype = pat.get("type").and_then(Value::as_str).unwrap_or("");
                let cstatus = pat
                    .get("status")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .unwrap_or("True");
                let hit = pod
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .is_some_and(|cs| {
                        cs.iter().any(|c| {
                            c.get("type").and_then(Value::as_str) == Some(ctype)
                                && c.get("status").and_then(Value::as_str) == Some(cstatus)
                        })
                    });
                if hit {
                    return Some((
                        action,
                        format!(
                            "Pod {ns}/{pod_name} has condition {ctype} matching {action_name} rule at index {i}"
                        ),
                    ));
                }
            }
        }
    }
    None
}

/// Writes the terminal conditions. `Ok(succeeded)` completes, `Err(reason)`
/// fails (and deletes the Job's active pods, as the controller does).
fn finish_job(
    w: &mut World,
    jobs: &'static KindInfo,
    ns: &str,
    job: &Value,
    outcome: Result<i64, JobFailureReason>,
) -> Result<Value, ApiError> {
    let name = meta::name(job).to_string();
    let now = meta::now_rfc3339();
    let mut status = job.get("status").cloned().unwrap_or(json!({}));
    let m = ensure_object(&mut status);
    match &outcome {
        Ok(succeeded) => {
            let msg = "Reached expected number of succeeded pods";
            upsert_conditions(
                m,
                vec![
                    condition(
                        "SuccessCriteriaMet",
                        "True",
                        "CompletionsReached",
                        msg,
                        &now,
                    ),
                    condition("Complete", "True", "CompletionsReached", msg, &now),
                ],
            );
            m.insert("succeeded".into(), json!(succeeded));
            m.insert("completionTime".into(), json!(now));
        }
        Err(reason) => {
            let msg = reason.message();
            upsert_conditions(
                m,
                vec![
                    condition("FailureTarget", "True", reason.reason(), &msg, &now),
                    condition("Failed", "True", reason.reason(), &msg, &now),
                ],
            );
            let failed = m.get("failed").and_then(Value::as_i64).unwrap_or(0).max(1);
            m.insert("failed".into(), json!(failed));
        }
    }
    m.insert("active".into(), json!(0));
    m.insert("ready".into(), json!(0));
    m.insert("terminating".into(), json!(0));
    m.entry("startTime").or_insert(json!(now));
    if outcome.is_err() {
        let pods = kinds::lookup("pods").ok_or_else(|| ApiError::no_route("pods"))?;
        let uid = meta::uid(job).to_string();
        let active: Vec<String> = w
            .store
            .list(pods, Some(ns), &Default::default(), &Default::default())
            .into_iter()
            .filter(|p| meta::owner_uids(p).contains(&uid))
            .filter(|p| {
                !matches!(
                    meta::str_at(p, "/status/phase"),
                    Some("Succeeded" | "Failed")
                )
            })
            .map(|p| meta::name(&p).to_string())
            .collect();
        for pod in active {
            let _ = w.store.delete(pods, Some(ns), &pod, None, None);
        }
    }
    w.write_status(jobs, ns, &name, status)
}

fn container_names(pod: &Value) -> Vec<String> {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn resolve_container(pod: &Value, container: Option<&str>) -> Result<String, FakeError> {
    let names = container_names(pod);
    match container {
        Some(c) if names.iter().any(|n| n == c) => Ok(c.to_string()),
        Some(c) => Err(FakeError::Invalid(format!(
            "pod {} has no container {c:?}",
            meta::name(pod)
        ))),
        None => names.first().cloned().ok_or_else(|| {
            FakeError::Invalid(format!("pod {} has no containers", meta::name(pod)))
        }),
    }
}

/// The kubelet's view of a pod after one container changed state.
fn kubelet_update(
    pod: &Value,
    container: Option<&str>,
    state: &ContainerState,
    force_phase: Option<PodPhase>,
) -> Result<Value, FakeError> {
    let name = resolve_container(pod, container)?;
    let now = meta::now_rfc3339();
    let mut out = pod.clone();
    let pod_name = meta::name(pod).to_string();
    let restart_policy = meta::str_at(pod, "/spec/restartPolicy")
        .unwrap_or("Always")
        .to_string();
    let specs: Vec<Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    {
        let spec = child_mut(ensure_object(&mut out), "spec");
        spec.entry("nodeName").or_insert(json!("fake-node-1"));
    }
    let status = child_mut(ensure_object(&mut out), "status");
    status.entry("hostIP").or_insert(json!("10.0.0.10"));
    status
        .entry("hostIPs")
        .or_insert(json!([{"ip": "10.0.0.10"}]));
    status.entry("podIP").or_insert(json!("10.244.0.17"));
    status
        .entry("podIPs")
        .or_insert(json!([{"ip": "10.244.0.17"}]));
    status.entry("startTime").or_insert(json!(now));
    let existing: Vec<Value> = status
        .get("containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut statuses = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let cname = spec
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let image = spec
            .get("image")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let prev = existing
            .iter()
            .find(|s| s.get("name").and_then(Value::as_str) == Some(cname.as_str()))
            .cloned();
        let container_id = format!(
            "containerd://{:064x}",
            fxhash(&format!("{pod_name}/{cname}/{i}"))
        );
        if cname != name {
            statuses.push(prev.unwrap_or_else(|| {
                json!({
                    "name": cname, "image": image, "imageID": "", "ready": false, "started": false,
                    "restartCount": 0, "lastState": {},
                    "state": {"waiting": {"reason": "ContainerCreating"}}
                })
            }));
            continue;
        }
        let started_at = prev.as_ref().and_then(|p| {
            p.pointer("/state/running/startedAt")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        let running = matches!(state, ContainerState::Running);
        let ran = !matches!(state, ContainerState::Waiting { .. });
        let mut s = json!({
            "name": cname,
            "image": image,
            "imageID": if ran { format!("{image}@sha256:{:064x}", fxhash(&image)) } else { String::new() },
            "ready": running,
            "started": running,
            "restartCount": prev.as_ref().and_then(|p| p.get("restartCount")).cloned().unwrap_or(json!(0)),
            "lastState": prev.as_ref().and_then(|p| p.get("lastState")).cloned().unwrap_or(json!({})),
            "state": state.to_json(started_at.as_deref(), &now, &container_id),
        });
        if ran && let Some(m) = s.as_object_mut() {
            m.insert("containerID".into(), json!(container_id));
        }
        statuses.push(s);
    }
    // Phase from all container states.
    let state_of = |s: &Value| -> (&'static str, i64) {
        if s.pointer("/state/running").is_some() {
            ("running", 0)
        } else if let Some(code) = s
            .pointer("/state/terminated/exitCode")
            .and_then(Value::as_i64)
        {
            ("terminated", code)
        } else {
            ("waiting", 0)
        }
    };
    let all_terminated =
        !statuses.is_empty() && statuses.iter().all(|s| state_of(s).0 == "terminated");
    let any_running = statuses.iter().any(|s| state_of(s).0 == "running");
    let all_running = !statuses.is_empty() && statuses.iter().all(|s| state_of(s).0 == "running");
    let any_failed = statuses
        .iter()
        .any(|s| state_of(s).0 == "terminated" && state_of(s).1 != 0);
    let ever_started = statuses.iter().any(|s| {
        s.get("restartCount").and_then(Value::as_i64).unwrap_or(0) > 0 || state_of(s).0 != "waiting"
    });
    let phase = force_phase.unwrap_or(
        if all_terminated && !any_failed && restart_policy != "Always" {
            PodPhase::Succeeded
        } else if all_terminated && restart_policy == "Never" {
            PodPhase::Failed
        } else if any_running
            || (ever_started && !all_terminated)
            || (all_terminated && restart_policy != "Never")
        {
            PodPhase::Running
        } else {
            PodPhase::Pending
        },
    );
    let unready: Vec<String> = statuses
        .iter()
        .filter(|s| state_of(s).0 != "running")
        .filter_map(|s| s.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    status.insert("containerStatuses".into(), Value::Array(statuses));
    status.insert("phase".into(), json!(phase.as_str()));
    let finished = matches!(phase, PodPhase::Succeeded | PodPhase::Failed);
    let (ready_status, ready_reason, ready_msg) = if all_running {
        ("True", "", String::new())
    } else if finished {
        ("False", "PodCompleted", String::new())
    } else {
        (
            "False",
            "ContainersNotReady",
            format!("containers with unready status: [{}]", unready.join(" ")),
        )
    };
    let mut conds = vec![
        json!({"type": "PodReadyToStartContainers", "status": if finished { "False" } else { "True" }, "lastProbeTime": null, "lastTransitionTime": now}),
        json!({"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}),
        json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}),
    ];
    for t in ["Ready", "ContainersReady"] {
        let mut c = json!({"type": t, "status": ready_status, "lastProbeTime": null, "lastTransitionTime": now});
        if !ready_reason.is_empty()
            && let Some(m) = c.as_object_mut()
        {
            m.insert("reason".into(), json!(ready_reason));
            if !ready_msg.is_empty() {
                m.insert("message".into(), json!(ready_msg));
            }
        }
        conds.push(c);
    }
    upsert_conditions(status, conds);
    Ok(out)
}

/// A `pod-template-hash`: a hash of the template written with the
/// alphabet the controller uses (no vowels, so no words).
fn pod_template_hash(template: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h = fxhash(&template.to_string());
    let mut out = String::new();
    for _ in 0..10 {
        let i = (h % ALPHABET.len() as u128) as usize;
        out.push(ALPHABET.get(i).map(|c| *c as char).unwrap_or('b'));
        h /= ALPHABET.len() as u128;
    }
    out
}

/// Deterministic hash for fake container and image ids.
fn fxhash(s: &str) -> u128 {
    let mut h: u128 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Events the kubelet emits for the states tests care about.
fn kubelet_events(
    w: &mut World,
    pod: &Value,
    container: Option<&str>,
    state: &ContainerState,
) -> Result<(), FakeError> {
    let name = resolve_container(pod, container)?;
    let image = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("name").and_then(Value::as_str) == Some(name.as_str()))
        })
        .and_then(|c| c.get("image"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if let ContainerState::Waiting { reason, message } = state {
        match reason.as_str() {
            "ImagePullBackOff" => {
                record_event(
                    w,
                    pod,
                    "Warning",
                    "BackOff",
                    &format!("Back-off pulling image \"{image}\""),
                    "kubelet",
                )?;
            }
            "ErrImagePull" => {
                record_event(
                    w,
                    pod,
                    "Warning",
                    "Failed",
                    &format!("Failed to pull image \"{image}\": {message}"),
                    "kubelet",
                )?;
            }
            "CrashLoopBackOff" => {
                record_event(
                    w,
                    pod,
                    "Warning",
                    "BackOff",
                    &format!(
                        "Back-off restarting failed container {name} in pod {}_{}",
                        meta::name(pod),
                        meta::namespace(pod)
                    ),
                    "kubelet",
                )?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn record_event(
    w: &mut World,
    involved: &Value,
    event_type: &str,
    reason: &str,
    message: &str,
    component: &str,
) -> Result<Value, ApiError> {
    let events = kinds::lookup("events").ok_or_else(|| ApiError::no_route("events"))?;
    let ns = match meta::namespace(involved) {
        "" => "default".to_string(),
        ns => ns.to_string(),
    };
    let now = meta::now_rfc3339();
    let event = json!({
        "metadata": {"generateName": format!("{}.", meta::name(involved)), "namespace": ns},
        "involvedObject": {
            "kind": involved.get("kind").cloned().unwrap_or(Value::Null),
            "apiVersion": involved.get("apiVersion").cloned().unwrap_or(Value::Null),
            "namespace": meta::namespace(involved),
            "name": meta::name(involved),
            "uid": meta::uid(involved),
            "resourceVersion": meta::resource_version(involved),
        },
        "reason": reason,
        "message": message,
        "type": event_type,
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": "",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    });
    w.store.create(events, Some(&ns), event)
}
