//! [`KubeRuntime`]: the `JobRuntime` port on a Kubernetes cluster.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;
use warden_core::ports::{
    Adoption, BootstrapError, JobBootstrap, JobEvent, JobEventKind, JobEvents, JobHandle,
    JobOutcome, JobRuntime, JobSpec, RuntimeError,
};
use warden_core::{AgentInput, DomainGrant, InvestigationId, SecretsBackend};

use crate::bootstrap::{self, Pending};
use crate::error::KubeRuntimeError;
use crate::logs::{self, JobLog};
use crate::manifest::{
    ANNOTATION_INPUT_CLAIMED_BY, JobManifestInput, LABEL_INVESTIGATION, investigation_selector,
    job_manifest, job_name,
};
use crate::outcome;
use crate::settings::KubeRuntimeConfig;

/// A Job still running this long after its deadline is deleted: the Job
/// controller should have ended it at `activeDeadlineSeconds`.
const DEADLINE_BACKSTOP: Duration = Duration::from_secs(60);
/// Between attempts to delete a Job that must end (image pull, deadline).
const DELETE_RETRY: Duration = Duration::from_secs(2);
/// How long the end of a Job waits for its log streams to drain.
const LOG_DRAIN: Duration = Duration::from_secs(2);

/// Runs each investigation as one `batch/v1` Job.
///
/// Dropping the runtime stops watching but leaves the Jobs running; a new
/// runtime re-adopts them (`adopt`).
pub struct KubeRuntime {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) client: Client,
    pub(crate) config: KubeRuntimeConfig,
    events: Arc<dyn JobEvents>,
    jobs: Mutex<HashMap<InvestigationId, Slot>>,
    pending: Mutex<HashMap<InvestigationId, Pending>>,
}

/// A job this runtime watches. `token` tells apart the slots of two
/// consecutive watches of the same investigation.
struct Slot {
    token: Arc<()>,
    task: Option<AbortHandle>,
    /// `cancel` is deleting the Job: its disappearance is the cancel.
    cancelling: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn pending(&self) -> MutexGuard<'_, HashMap<InvestigationId, Pending>> {
        lock(&self.pending)
    }

    pub(crate) fn jobs_api(&self) -> Api<Job> {
        Api::namespaced(self.client.clone(), &self.config.settings.namespace)
    }

    fn pods_api(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.config.settings.namespace)
    }

    fn log_path(&self, id: &InvestigationId) -> PathBuf {
        self.config
            .data_dir
            .join("jobs")
            .join(id.as_str())
            .join("job.log")
    }

    fn open_log(&self, id: &InvestigationId) -> Result<Arc<JobLog>, String> {
        JobLog::open(self.log_path(id), self.config.log_max_bytes)
            .map_err(|e| format!("cannot open the job log: {e}"))
    }

    /// Reports the end of a job exactly once: only the caller that removes
    /// the job's slot emits.
    fn finish(&self, id: &InvestigationId, token: &Arc<()>, outcome: JobOutcome) -> bool {
        {
            let mut jobs = lock(&self.jobs);
            match jobs.get(id) {
                Some(slot) if Arc::ptr_eq(&slot.token, token) => {
                    jobs.remove(id);
                }
                _ => return false,
            }
        }
        self.pending().remove(id);
        tracing::info!(investigation = %id, ?outcome, "job ended");
        self.events.emit(JobEvent {
            investigation_id: id.clone(),
            kind: JobEventKind::Finished {
                outcome,
                cpu_seconds: None,
                peak_memory_bytes: None,
            },
        });
        true
    }

    fn set_cancelling(&self, id: &InvestigationId, token: &Arc<()>, on: bool) {
        if let Some(slot) = lock(&self.jobs).get_mut(id)
            && Arc::ptr_eq(&slot.token, token)
        {
            slot.cancelling = on;
        }
    }

    fn is_cancelling(&self, id: &InvestigationId, token: &Arc<()>) -> bool {
        lock(&self.jobs)
            .get(id)
            .is_some_and(|slot| Arc::ptr_eq(&slot.token, token) && slot.cancelling)
    }

    /// Deletes the Job and lets the garbage collector remove its pods.
    async fn delete_job(&self, id: &InvestigationId) -> Result<(), RuntimeError> {
        match self
            .jobs_api()
            .delete(&job_name(id), &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(RuntimeError::Other(format!(
                "deleting Job {}: {e}",
                job_name(id)
            ))),
        }
    }
}

/// Holds an id while `start` or `adopt` is under way; released unless kept.
struct Reservation<'a> {
    shared: &'a Shared,
    id: InvestigationId,
    token: Arc<()>,
    kept: bool,
}

impl<'a> Reservation<'a> {
    fn take(shared: &'a Shared, id: &InvestigationId) -> Option<Self> {
        let mut jobs = lock(&shared.jobs);
        if jobs.contains_key(id) {
            return None;
        }
        let token = Arc::new(());
        jobs.insert(
            id.clone(),
            Slot {
                token: Arc::clone(&token),
                task: None,
                cancelling: false,
            },
        );
        Some(Reservation {
            shared,
            id: id.clone(),
            token,
            kept: false,
        })
    }

    fn keep(mut self, task: AbortHandle) {
        self.kept = true;
        if let Some(slot) = lock(&self.shared.jobs).get_mut(&self.id)
            && Arc::ptr_eq(&slot.token, &self.token)
        {
            slot.task = Some(task);
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.kept {
            let mut jobs = lock(&self.shared.jobs);
            if jobs
                .get(&self.id)
                .is_some_and(|s| Arc::ptr_eq(&s.token, &self.token))
            {
                jobs.remove(&self.id);
            }
        }
    }
}

/// The document a job claims; the same one a local job reads on stdin.
#[derive(Serialize)]
struct Document<'a> {
    input: &'a AgentInput,
    result_credential: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<IdentityDocument<'a>>,
}

#[derive(Serialize)]
struct IdentityDocument<'a> {
    backend: SecretsBackend,
    address: &'a str,
    accessor: &'a str,
    domains: &'a [DomainGrant],
    credential: &'a str,
}

impl KubeRuntime {
    /// Prepares the log directory. Starts nothing and contacts no server.
    pub fn new(
        client: Client,
        config: KubeRuntimeConfig,
        events: Arc<dyn JobEvents>,
    ) -> Result<KubeRuntime, KubeRuntimeError> {
        let jobs_dir = config.data_dir.join("jobs");
        std::fs::create_dir_all(&jobs_dir).map_err(|source| KubeRuntimeError::DataDir {
            path: jobs_dir.display().to_string(),
            source,
        })?;
        Ok(KubeRuntime {
            shared: Arc::new(Shared {
                client,
                config,
                events,
                jobs: Mutex::new(HashMap::new()),
                pending: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// A client from `kubeconfig`, or else from the in-cluster environment
    /// or `$KUBECONFIG` (kube's inference).
    pub async fn client(kubeconfig: Option<&std::path::Path>) -> Result<Client, KubeRuntimeError> {
        let config = match kubeconfig {
            Some(path) => {
                let file = kube::config::Kubeconfig::read_from(path)
                    .map_err(|e| KubeRuntimeError::Client(format!("{}: {e}", path.display())))?;
                kube::Config::from_custom_kubeconfig(
                    file,
                    &kube::config::KubeConfigOptions::default(),
                )
                .await
                .map_err(|e| KubeRuntimeError::Client(format!("{}: {e}", path.display())))?
            }
            None => kube::Config::infer()
                .await
                .map_err(|e| KubeRuntimeError::Client(e.to_string()))?,
        };
        Client::try_from(config).map_err(|e| KubeRuntimeError::Client(e.to_string()))
    }

    /// Jobs currently watched by this runtime.
    pub fn watching(&self) -> usize {
        lock(&self.shared.jobs).len()
    }

    /// Investigations with a warden Job in the namespace (any state), from
    /// a list by label.
    pub async fn list_investigations(&self) -> Result<Vec<InvestigationId>, RuntimeError> {
        let list = self
            .shared
            .jobs_api()
            .list(&ListParams::default().labels(&crate::manifest::managed_selector()))
            .await
            .map_err(|e| RuntimeError::Other(format!("listing Jobs: {e}")))?;
        Ok(list
            .items
            .iter()
            .filter_map(|j| j.metadata.labels.as_ref()?.get(LABEL_INVESTIGATION))
            .filter_map(|l| InvestigationId::parse(l).ok())
            .collect())
    }

    fn document(&self, spec: &JobSpec) -> Result<SecretString, serde_json::Error> {
        let settings = &self.shared.config.settings;
        let mut input = spec.agent_input.clone();
        // The scheduler knows its listen address; pods reach the control
        // plane through its Service.
        input.report_url = settings.report_url(spec.investigation_id.as_str());
        let identity = spec.identity.as_ref().map(|i| IdentityDocument {
            backend: i.backend,
            address: match i.backend {
                SecretsBackend::Embedded => settings.control_plane_url.trim_end_matches('/'),
                SecretsBackend::Openbao => &i.address,
            },
            accessor: &i.accessor,
            domains: &i.domains,
            credential: i.credential.expose_secret(),
        });
        let json = serde_json::to_string(&Document {
            input: &input,
            result_credential: spec.result_credential.expose_secret(),
            identity,
        })?;
        Ok(SecretString::from(json))
    }
}

impl Drop for KubeRuntime {
    /// Stops watching; the Jobs run on.
    fn drop(&mut self) {
        for slot in lock(&self.shared.jobs).values() {
            if let Some(task) = &slot.task {
                task.abort();
            }
        }
    }
}

fn valid_id(id: &InvestigationId) -> Result<InvestigationId, String> {
    InvestigationId::parse(id.as_str())
}

/// Whole seconds from now to the deadline, rounded up, at least 1.
fn seconds_left(deadline: DateTime<Utc>) -> u64 {
    let ms = (deadline - Utc::now()).num_milliseconds().max(0);
    u64::try_from(ms).unwrap_or(0).div_ceil(1000).max(1)
}

/// Whether a pod claimed the Job's input (see
/// [`ANNOTATION_INPUT_CLAIMED_BY`]).
fn input_claimed(job: &Job) -> bool {
    job.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(ANNOTATION_INPUT_CLAIMED_BY))
}

fn has_label(job: &Job, id: &InvestigationId) -> bool {
    job.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_INVESTIGATION))
        .is_some_and(|v| v == id.as_str())
}

#[async_trait]
impl JobRuntime for KubeRuntime {
    fn name(&self) -> &'static str {
        "kubernetes"
    }

    async fn start(&self, spec: JobSpec) -> Result<JobHandle, RuntimeError> {
        let start_error = |detail: String| RuntimeError::Start {
            investigation: spec.investigation_id.clone(),
            detail,
        };
        let id = valid_id(&spec.investigation_id).map_err(start_error)?;
        let reservation = Reservation::take(&self.shared, &id)
            .ok_or_else(|| start_error("a job for this investigation is already watched".into()))?;
        let settings = &self.shared.config.settings;
        let log = self.shared.open_log(&id).map_err(start_error)?;
        let document = self
            .document(&spec)
            .map_err(|e| start_error(format!("cannot encode the job input: {e}")))?;
        let domains = spec
            .identity
            .as_ref()
            .map(|i| i.domains.clone())
            .unwrap_or_default();
        let job = job_manifest(
            &JobManifestInput {
                investigation_id: &id,
                phase: spec.phase,
                complexity: spec.plan.complexity,
                profile: &spec.plan.profile,
                active_deadline_seconds: seconds_left(spec.deadline),
                domains: &domains,
            },
            settings,
        );
        // Waiting before the Job exists: its pod may ask at once.
        self.shared.pending().insert(
            id.clone(),
            Pending {
                document,
                deadline: spec.deadline,
                service_account: settings.service_account(spec.phase).to_string(),
                claimed_by: None,
            },
        );
        let name = job_name(&id);
        let jobs = self.shared.jobs_api();
        let created = match jobs.create(&PostParams::default(), &job).await {
            Ok(created) => {
                log.note(&format!(
                    "created Job {}/{name} (phase {}, complexity {})",
                    settings.namespace,
                    spec.phase,
                    spec.plan.complexity.as_str()
                ));
                created
            }
            // A Job of this name exists: an earlier control plane created
            // it and crashed before recording it. Adopt it, never a second.
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let existing = jobs.get_opt(&name).await.ok().flatten();
                match existing {
                    Some(existing) if has_label(&existing, &id) => {
                        tracing::warn!(investigation = %id, job = %name, "Job already existed; adopted it");
                        log.note(&format!("Job {name} already existed; adopted it"));
                        existing
                    }
                    _ => {
                        self.shared.pending().remove(&id);
                        return Err(start_error(format!(
                            "Job {name} exists but does not belong to this investigation"
                        )));
                    }
                }
            }
            Err(e) => {
                self.shared.pending().remove(&id);
                return Err(start_error(format!("creating Job {name}: {e}")));
            }
        };
        let uid = created.metadata.uid.clone().unwrap_or_default();
        let task = tokio::spawn(supervise(
            Arc::clone(&self.shared),
            id.clone(),
            Arc::clone(&reservation.token),
            spec.deadline,
            log,
            created,
        ));
        reservation.keep(task.abort_handle());
        tracing::info!(investigation = %id, job = %name, "job started");
        Ok(JobHandle {
            job_ref: format!("job/{}/{name}/{uid}", settings.namespace),
        })
    }

    async fn adopt(
        &self,
        investigation: &InvestigationId,
        _job_ref: Option<&str>,
        deadline: DateTime<Utc>,
    ) -> Result<Adoption, RuntimeError> {
        let id = valid_id(investigation).map_err(RuntimeError::Other)?;
        let Some(reservation) = Reservation::take(&self.shared, &id) else {
            return Ok(Adoption::Adopted);
        };
        let jobs = self.shared.jobs_api();
        // By name first; then by label, which also finds a Job whose start
        // was never recorded.
        let found = match jobs.get_opt(&job_name(&id)).await {
            Ok(Some(job)) if has_label(&job, &id) => Some(job),
            Ok(_) => jobs
                .list(&ListParams::default().labels(&investigation_selector(&id)))
                .await
                .map_err(|e| RuntimeError::Other(format!("listing Jobs of {id}: {e}")))?
                .items
                .into_iter()
                .next(),
            Err(e) => {
                return Err(RuntimeError::Other(format!(
                    "reading Job {}: {e}",
                    job_name(&id)
                )));
            }
        };
        let Some(found) = found else {
            tracing::info!(investigation = %id, "no Job to adopt");
            return Ok(Adoption::Gone);
        };
        let log = self.shared.open_log(&id).map_err(RuntimeError::Other)?;
        if !outcome::job_finished(&found) && !input_claimed(&found) {
            // Its input lived only in the earlier control plane's memory:
            // the pod would wait for it in vain. Remove the Job; the
            // investigation starts again.
            self.shared.delete_job(&id).await?;
            log.note("the control plane restarted before the job received its input; deleted the Job to start the investigation again");
            tracing::warn!(investigation = %id, "Job never received its input; deleted for a restart");
            return Ok(Adoption::Restart);
        }
        log.note("the control plane restarted; watching the Job again");
        let task = tokio::spawn(supervise(
            Arc::clone(&self.shared),
            id.clone(),
            Arc::clone(&reservation.token),
            deadline,
            log,
            found,
        ));
        reservation.keep(task.abort_handle());
        tracing::info!(investigation = %id, "job re-adopted");
        Ok(Adoption::Adopted)
    }

    async fn cancel(&self, investigation: &InvestigationId) -> Result<(), RuntimeError> {
        let id = valid_id(investigation).map_err(RuntimeError::Other)?;
        let (token, task) = {
            let jobs = lock(&self.shared.jobs);
            let slot = jobs
                .get(&id)
                .ok_or_else(|| RuntimeError::NotFound(id.clone()))?;
            (Arc::clone(&slot.token), slot.task.clone())
        };
        // The watch may see the deletion before the task is stopped; the
        // flag makes it report the cancel, not a stranger's delete.
        self.shared.set_cancelling(&id, &token, true);
        if let Err(e) = self.shared.delete_job(&id).await {
            self.shared.set_cancelling(&id, &token, false);
            return Err(e);
        }
        if let Some(task) = task {
            task.abort();
        }
        if let Ok(log) = self.shared.open_log(&id) {
            log.note("cancelled: the Job was deleted (background propagation)");
        }
        self.shared.finish(&id, &token, JobOutcome::Cancelled);
        Ok(())
    }

    async fn logs(&self, investigation: &InvestigationId) -> Result<String, RuntimeError> {
        let id = valid_id(investigation).map_err(RuntimeError::Other)?;
        let path = self.shared.log_path(&id);
        tokio::task::spawn_blocking(move || logs::read_tail(&path, logs::LOG_READ_CAP_BYTES))
            .await
            .map_err(|e| RuntimeError::Other(format!("reading log of {id}: {e}")))?
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => RuntimeError::NotFound(id.clone()),
                _ => RuntimeError::Other(format!("reading log of {id}: {e}")),
            })
    }

    async fn cleanup(&self, investigation: &InvestigationId) -> Result<(), RuntimeError> {
        let id = valid_id(investigation).map_err(RuntimeError::Other)?;
        if lock(&self.shared.jobs).contains_key(&id) {
            return Err(RuntimeError::Other(format!(
                "job for {id} is still running; cancel it first"
            )));
        }
        self.shared.pending().remove(&id);
        if self.shared.config.settings.keep_finished_jobs {
            return Ok(());
        }
        self.shared.delete_job(&id).await?;
        if let Ok(log) = self.shared.open_log(&id) {
            log.note("Job deleted after its outcome was recorded");
        }
        Ok(())
    }
}

#[async_trait]
impl JobBootstrap for KubeRuntime {
    async fn claim(&self, token: &SecretString) -> Result<SecretString, BootstrapError> {
        bootstrap::claim(&self.shared, token).await
    }
}

/// Log streams of one job's pods; aborted when dropped, so a stopped
/// watch leaves nothing behind.
#[derive(Default)]
struct Streams(Vec<JoinHandle<()>>);

impl Drop for Streams {
    fn drop(&mut self) {
        for s in &self.0 {
            s.abort();
        }
    }
}

impl Streams {
    /// Waits a little for the streams to drain (the last lines of a pod
    /// that just ended).
    async fn drain(&mut self) {
        let all = futures::future::join_all(self.0.iter_mut());
        let _ = tokio::time::timeout(LOG_DRAIN, all).await;
    }
}

/// What the watch knows about one job.
struct Watched {
    job: Option<Job>,
    /// A Job was seen during the current (re)list.
    job_in_list: bool,
    pods: BTreeMap<String, Pod>,
    streamed: HashSet<String>,
    disrupted: HashSet<String>,
    pulling_since: HashMap<String, Instant>,
}

/// Watches one job's Job and pods (by label, through kube-runtime's
/// watcher) until it ends, then reports how.
async fn supervise(
    shared: Arc<Shared>,
    id: InvestigationId,
    token: Arc<()>,
    deadline: DateTime<Utc>,
    log: Arc<JobLog>,
    known: Job,
) {
    let selector = investigation_selector(&id);
    let config = watcher::Config::default().labels(&selector);
    let mut jobs = watcher::watcher(shared.jobs_api(), config.clone())
        .default_backoff()
        .boxed();
    let mut pods = watcher::watcher(shared.pods_api(), config)
        .default_backoff()
        .boxed();
    let name = job_name(&id);
    let grace = shared.config.settings.image_pull_grace;
    let backstop =
        Instant::now() + (deadline - Utc::now()).to_std().unwrap_or_default() + DEADLINE_BACKSTOP;
    let mut w = Watched {
        job: Some(known),
        job_in_list: false,
        pods: BTreeMap::new(),
        streamed: HashSet::new(),
        disrupted: HashSet::new(),
        pulling_since: HashMap::new(),
    };
    let mut streams = Streams::default();

    let outcome = loop {
        let next_timer = w
            .pulling_since
            .values()
            .map(|since| *since + grace)
            .min()
            .unwrap_or(backstop)
            .min(backstop);
        tokio::select! {
            event = jobs.next() => match event {
                Some(Ok(Event::Init)) => w.job_in_list = false,
                Some(Ok(Event::Apply(job) | Event::InitApply(job))) => {
                    if job.metadata.name.as_deref() == Some(name.as_str()) {
                        w.job = Some(job);
                        w.job_in_list = true;
                    }
                }
                Some(Ok(Event::InitDone)) => {
                    if !w.job_in_list {
                        break gone(&shared, &id, &token, &w, "the Job was deleted outside warden before it ended");
                    }
                }
                Some(Ok(Event::Delete(job))) => {
                    if job.metadata.name.as_deref() == Some(name.as_str()) {
                        let ended = outcome::job_outcome(&job, w.pods.values());
                        break ended.unwrap_or_else(|| gone(&shared, &id, &token, &w, "the Job was deleted outside warden before it ended"));
                    }
                }
                Some(Err(error)) => tracing::warn!(investigation = %id, %error, "watching the Job failed; retrying"),
                None => break JobOutcome::Lost { detail: "the watch of the Job ended".into() },
            },
            event = pods.next() => match event {
                Some(Ok(Event::Apply(pod) | Event::InitApply(pod))) => {
                    observe_pod(&shared, &mut w, &mut streams, &log, pod);
                }
                Some(Ok(Event::Delete(pod))) => {
                    if let Some(pod_name) = pod.metadata.name.as_deref() {
                        w.pulling_since.remove(pod_name);
                    }
                }
                Some(Ok(Event::Init | Event::InitDone)) => {}
                Some(Err(error)) => tracing::warn!(investigation = %id, %error, "watching the pods failed; retrying"),
                None => break JobOutcome::Lost { detail: "the watch of the pods ended".into() },
            },
            _ = tokio::time::sleep_until(next_timer) => {
                if let Some(outcome) = timer_fired(&shared, &id, &w, &log, backstop).await {
                    break outcome;
                }
            }
        }
        let ended = w
            .job
            .as_ref()
            .is_some_and(|job| outcome::job_outcome(job, w.pods.values()).is_some());
        if ended {
            // The pod watch may lag the Job's: read the pods as they are
            // now, so the outcome names the pod that decided it.
            refresh_pods(&shared, &selector, &mut w, &mut streams, &log).await;
            if let Some(outcome) = w
                .job
                .as_ref()
                .and_then(|job| outcome::job_outcome(job, w.pods.values()))
            {
                break outcome;
            }
        }
    };
    streams.drain().await;
    log.note(&format!("job ended: {}", describe(&outcome)));
    shared.finish(&id, &token, outcome);
}

/// Also starts following the log of a pod the watch has not shown yet
/// (its log is read in full: it has ended).
async fn refresh_pods(
    shared: &Arc<Shared>,
    selector: &str,
    w: &mut Watched,
    streams: &mut Streams,
    log: &Arc<JobLog>,
) {
    match shared
        .pods_api()
        .list(&ListParams::default().labels(selector))
        .await
    {
        Ok(list) => {
            for pod in list.items {
                observe_pod(shared, w, streams, log, pod);
            }
        }
        Err(error) => tracing::warn!(%error, "listing the pods of a finished Job failed"),
    }
}

fn gone(
    shared: &Shared,
    id: &InvestigationId,
    token: &Arc<()>,
    w: &Watched,
    why: &str,
) -> JobOutcome {
    if shared.is_cancelling(id, token) {
        JobOutcome::Cancelled
    } else if w.job.is_some() {
        JobOutcome::Killed {
            detail: why.to_string(),
        }
    } else {
        JobOutcome::Lost {
            detail: why.to_string(),
        }
    }
}

fn describe(outcome: &JobOutcome) -> String {
    match outcome {
        JobOutcome::Exited { code } => format!("exited with code {code}"),
        JobOutcome::OutOfMemory { detail } => format!("out of memory: {detail}"),
        JobOutcome::DeadlineExceeded => "deadline exceeded".into(),
        JobOutcome::Killed { detail } => format!("killed: {detail}"),
        JobOutcome::Cancelled => "cancelled".into(),
        JobOutcome::Lost { detail } => format!("lost: {detail}"),
    }
}

fn observe_pod(
    shared: &Arc<Shared>,
    w: &mut Watched,
    streams: &mut Streams,
    log: &Arc<JobLog>,
    pod: Pod,
) {
    let Some(pod_name) = pod.metadata.name.clone() else {
        return;
    };
    if let Some(why) = outcome::disruption(&pod)
        && w.disrupted.insert(pod_name.clone())
    {
        log.note(&format!(
            "pod {pod_name} was disrupted ({why}); the Job retries it without counting a failure"
        ));
    }
    match outcome::image_pull_problem(&pod) {
        Some(_) => {
            w.pulling_since
                .entry(pod_name.clone())
                .or_insert_with(Instant::now);
        }
        None => {
            w.pulling_since.remove(&pod_name);
        }
    }
    if outcome::has_started(&pod) && w.streamed.insert(pod_name.clone()) {
        log.note(&format!("following the log of pod {pod_name}"));
        streams.0.push(tokio::spawn(logs::follow_pod(
            shared.pods_api(),
            pod_name.clone(),
            Arc::clone(log),
        )));
    }
    w.pods.insert(pod_name, pod);
}

/// A pod stuck on its image past the grace (or at once when waiting cannot
/// help), or a Job alive past its deadline: delete the Job and say why.
async fn timer_fired(
    shared: &Shared,
    id: &InvestigationId,
    w: &Watched,
    log: &JobLog,
    backstop: Instant,
) -> Option<JobOutcome> {
    let grace = shared.config.settings.image_pull_grace;
    let now = Instant::now();
    let stuck = w.pulling_since.iter().find_map(|(pod_name, since)| {
        let pod = w.pods.get(pod_name)?;
        let (reason, message, final_) = outcome::image_pull_problem(pod)?;
        (final_ || now.duration_since(*since) >= grace)
            .then(|| (pod_name, reason, message, now.duration_since(*since)))
    });
    let outcome = if let Some((pod_name, reason, message, waited)) = stuck {
        JobOutcome::Killed {
            detail: format!(
                "{reason}: pod {pod_name} could not get image {} for {} s ({message}); the Job was deleted",
                shared.config.settings.image,
                waited.as_secs()
            ),
        }
    } else if now >= backstop {
        JobOutcome::DeadlineExceeded
    } else {
        return None;
    };
    if let Err(error) = shared.delete_job(id).await {
        tracing::warn!(investigation = %id, %error, "could not delete the failed Job; retrying");
        log.note(&format!("could not delete the Job: {error}"));
        // The timer is still due: pace the retries.
        tokio::time::sleep(DELETE_RETRY).await;
        return None;
    }
    Some(outcome)
}
