//! The Kubernetes API through kube-rs, read-only and namespace-scoped.
//!
//! | port query | API reads (per configured namespace) | answer |
//! |---|---|---|
//! | `Logs` | `pods` (list), `pods/log` (`sinceTime`, `tailLines`, `limitBytes`, `timestamps`), `events` (list) | container log lines, events as lines (`Warning` → `WARN`), pod status as lines (a terminated container: `ERROR` for OOMKilled/Error, else `WARN`, at its `finishedAt`) |
//! | `Changes` | `replicasets`, `deployments`, `configmaps` (metadata only) | a `deploy` change per ReplicaSet revision created in the range; a `config` change per ConfigMap field-manager write in the range |
//!
//! Other queries are [`DataError::Unsupported`]. A pod's service is its
//! first present label of `service_labels` (default
//! `app.kubernetes.io/name`, `app`), else its owner's name. Only the
//! configured namespaces are read; ConfigMaps are listed as metadata only,
//! so their data never reaches the agent, and Secrets are never read.
//!
//! Each API call has the query's time budget and is retried with backoff on
//! 429, 5xx and connection errors; 403 and other refusals are final and
//! become unavailability (`kubernetes unavailable: forbidden: ...`). A
//! container log is read with `limitBytes`; a log that fills it is cut at its
//! last complete line and followed by a line saying so.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, ContainerStateTerminated, Event, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta};
use kube::api::{Api, ListParams, LogParams};
use serde::Serialize;
use serde_json::json;
use tokio::time::Instant;
use warden_core::Domain;
use warden_core::agent_input::KubernetesSourceConfig;
use warden_core::ports::{DataError, DataSource, Query, QueryResult};
use warden_core::telemetry::{ChangeRecord, LogLine, TimeRange};

use crate::ConnectorError;
use crate::credentials::Credentials;
use crate::guard::{AllowAll, ReadGuard, ReadRequest};
use crate::http::{RetryPolicy, malformed, seconds, unavailable};
use crate::levels;
use crate::prometheus::kind_of;

/// Pods whose logs one query reads at most; the rest are named in a line.
const MAX_POD_LOGS: usize = 50;

/// Why a container stopped.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Termination {
    pub reason: String,
    pub exit_code: i32,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerSummary {
    pub name: String,
    pub restarts: i32,
    pub ready: bool,
    /// `CrashLoopBackOff`, `ImagePullBackOff`, ...
    pub waiting_reason: Option<String>,
    pub terminated: Option<Termination>,
    pub last_terminated: Option<Termination>,
}

/// A pod's status as the agent needs it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PodSummary {
    pub namespace: String,
    pub pod: String,
    pub service: String,
    pub phase: String,
    /// Pod-level reason (`Evicted`, ...).
    pub reason: Option<String>,
    pub containers: Vec<ContainerSummary>,
    /// Latest condition transition, the best time for a status without one.
    pub changed_at: Option<DateTime<Utc>>,
}

/// The Kubernetes API as a read-only data source.
pub struct KubernetesSource {
    name: String,
    client: kube::Client,
    namespaces: Vec<String>,
    domains: Vec<Domain>,
    service_labels: Vec<String>,
    policy: RetryPolicy,
    guard: Arc<dyn ReadGuard>,
}

impl std::fmt::Debug for KubernetesSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesSource")
            .field("name", &self.name)
            .field("namespaces", &self.namespaces)
            .finish_non_exhaustive()
    }
}

fn to_chrono(t: &k8s_openapi::jiff::Timestamp) -> Option<DateTime<Utc>> {
    let ns = t.as_nanosecond();
    let secs = i64::try_from(ns.div_euclid(1_000_000_000)).ok()?;
    let sub = u32::try_from(ns.rem_euclid(1_000_000_000)).ok()?;
    DateTime::from_timestamp(secs, sub)
}

fn to_jiff(t: DateTime<Utc>) -> Option<k8s_openapi::jiff::Timestamp> {
    k8s_openapi::jiff::Timestamp::new(
        t.timestamp(),
        i32::try_from(t.timestamp_subsec_nanos()).ok()?,
    )
    .ok()
}

fn source_name(config: &KubernetesSourceConfig) -> String {
    config
        .name
        .clone()
        .unwrap_or_else(|| "kubernetes".to_string())
}

fn client_error(config: &KubernetesSourceConfig, detail: String) -> ConnectorError {
    ConnectorError::Client {
        source_name: source_name(config),
        detail,
    }
}

fn explicit_config(
    config: &KubernetesSourceConfig,
    url: &str,
) -> Result<kube::Config, ConnectorError> {
    let uri = url.parse().map_err(|e| ConnectorError::Config {
        source_name: source_name(config),
        field: "api_url",
        detail: format!("{e}"),
    })?;
    Ok(kube::Config::new(uri))
}

/// `web-7d9f8c6b5` → `web`, `web-7d9f8c6b5-x2kq9` → `web`: the workload
/// behind a generated name (ReplicaSet hash, pod suffix).
pub fn workload_name(name: &str) -> &str {
    let mut base = name;
    for _ in 0..2 {
        match base.rsplit_once('-') {
            Some((stem, suffix))
                if !stem.is_empty()
                    && (5..=10).contains(&suffix.len())
                    && suffix
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                    && suffix.bytes().any(|b| b.is_ascii_digit()) =>
            {
                base = stem;
            }
            _ => break,
        }
    }
    base
}

fn termination(t: &ContainerStateTerminated) -> Termination {
    Termination {
        reason: t
            .reason
            .clone()
            .unwrap_or_else(|| format!("exit code {}", t.exit_code)),
        exit_code: t.exit_code,
        finished_at: t.finished_at.as_ref().and_then(|f| to_chrono(&f.0)),
    }
}

/// The latest write to an object and who made it, among field managers
/// that wrote in `range` (controllers' own bookkeeping excluded).
fn writes_in(fields: &[ManagedFieldsEntry], range: TimeRange) -> Vec<(DateTime<Utc>, String)> {
    let mut out: Vec<(DateTime<Utc>, String)> = fields
        .iter()
        .filter_map(|f| {
            let at = to_chrono(&f.time.as_ref()?.0)?;
            let manager = f.manager.clone().unwrap_or_else(|| "unknown".to_string());
            Some((at, manager))
        })
        .filter(|(at, manager)| range.contains(*at) && manager != "kube-controller-manager")
        .collect();
    out.sort();
    out
}

impl KubernetesSource {
    /// A source reading through `client` (in tests, a fake API server's).
    pub fn with_client(
        config: &KubernetesSourceConfig,
        client: kube::Client,
    ) -> Result<Self, ConnectorError> {
        let name = config
            .name
            .clone()
            .unwrap_or_else(|| "kubernetes".to_string());
        if config.namespaces.is_empty() {
            return Err(ConnectorError::Config {
                source_name: name,
                field: "namespaces",
                detail: "name at least one namespace to read".to_string(),
            });
        }
        Ok(KubernetesSource {
            client,
            namespaces: config.namespaces.clone(),
            domains: config.domains.iter().map(Domain::new).collect(),
            service_labels: config.service_labels.clone(),
            policy: RetryPolicy::new(config.timeout_seconds, config.retries, config.max_log_bytes),
            guard: Arc::new(AllowAll),
            name,
        })
    }

    /// Connects to `api_url` (else the in-cluster configuration or
    /// kubeconfig), authenticating with `credentials` when they are a
    /// bearer token, else with what the configuration provides.
    pub async fn connect(
        config: &KubernetesSourceConfig,
        credentials: Credentials,
    ) -> Result<Self, ConnectorError> {
        let kube_config = match &config.api_url {
            Some(url) => explicit_config(config, url)?,
            None => kube::Config::infer()
                .await
                .map_err(|e| client_error(config, e.to_string()))?,
        };
        KubernetesSource::from_kube_config(config, kube_config, credentials)
    }

    /// [`KubernetesSource::connect`] for a job in a pod: `api_url`, else
    /// the in-cluster service account. Needs a tokio runtime.
    pub fn connect_incluster(
        config: &KubernetesSourceConfig,
        credentials: Credentials,
    ) -> Result<Self, ConnectorError> {
        let kube_config = match &config.api_url {
            Some(url) => explicit_config(config, url)?,
            None => kube::Config::incluster().map_err(|e| client_error(config, e.to_string()))?,
        };
        KubernetesSource::from_kube_config(config, kube_config, credentials)
    }

    fn from_kube_config(
        config: &KubernetesSourceConfig,
        mut kube_config: kube::Config,
        credentials: Credentials,
    ) -> Result<Self, ConnectorError> {
        match &credentials {
            Credentials::None => {}
            Credentials::Bearer(token) => kube_config.auth_info.token = Some(token.clone()),
            Credentials::Basic { .. } => {
                return Err(ConnectorError::Config {
                    source_name: source_name(config),
                    field: "credentials_domain",
                    detail: "the Kubernetes API takes a bearer token, not a username and password"
                        .to_string(),
                });
            }
        }
        let timeout = Duration::from_secs(config.timeout_seconds.max(1));
        kube_config.connect_timeout = Some(timeout);
        kube_config.read_timeout = Some(timeout);
        kube_config.write_timeout = Some(timeout);
        let client =
            kube::Client::try_from(kube_config).map_err(|e| client_error(config, e.to_string()))?;
        KubernetesSource::with_client(config, client)
    }

    pub fn with_guard(mut self, guard: Arc<dyn ReadGuard>) -> Self {
        self.guard = guard;
        self
    }

    /// Replaces the timeouts and retries; `max_response_bytes` is the
    /// per-container log limit.
    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// One API call under the guard, the time budget and the retry rules.
    async fn call<T, F, Fut>(
        &self,
        kind: &'static str,
        namespace: &str,
        target: String,
        f: F,
    ) -> Result<T, DataError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        self.guard
            .check(&ReadRequest {
                source: self.name.clone(),
                connector: "kubernetes",
                domains: self.domains.clone(),
                kind,
                namespace: Some(namespace.to_string()),
                target: target.clone(),
            })
            .map_err(|d| unavailable(&self.name, d.to_string()))?;
        let deadline = Instant::now() + self.policy.timeout;
        let mut backoff = self.policy.initial_backoff;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            let timed_out = || {
                unavailable(
                    &self.name,
                    format!(
                        "timeout after {} reading {target} in {namespace}",
                        seconds(self.policy.timeout)
                    ),
                )
            };
            if left.is_zero() {
                return Err(timed_out());
            }
            let error = match tokio::time::timeout(left, f()).await {
                Err(_) => return Err(timed_out()),
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(kube::Error::Api(status))) => {
                    let text = format!(
                        "{} {} reading {target} in {namespace}: {}",
                        status.code,
                        if status.reason.is_empty() {
                            "error".to_string()
                        } else {
                            status.reason.to_ascii_lowercase()
                        },
                        status.message
                    );
                    if !(status.code == 429 || status.code >= 500) {
                        return Err(unavailable(&self.name, text));
                    }
                    text
                }
                Ok(Err(kube::Error::SerdeError(e))) => {
                    return Err(malformed(&self.name, format!("{target}: {e}")));
                }
                Ok(Err(e @ (kube::Error::HyperError(_) | kube::Error::Service(_)))) => {
                    format!("reading {target} in {namespace}: {e}")
                }
                Ok(Err(e)) => {
                    return Err(unavailable(
                        &self.name,
                        format!("reading {target} in {namespace}: {e}"),
                    ));
                }
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if attempt > self.policy.retries || backoff >= left {
                return Err(unavailable(
                    &self.name,
                    format!("{error} (gave up after {attempt} attempt(s))"),
                ));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.policy.max_backoff);
        }
    }

    fn service_of(&self, meta: &ObjectMeta) -> String {
        let labels = meta.labels.as_ref();
        self.service_labels
            .iter()
            .find_map(|key| labels.and_then(|l| l.get(key)).cloned())
            .or_else(|| {
                meta.owner_references
                    .as_ref()
                    .and_then(|o| o.first())
                    .map(|o| workload_name(&o.name).to_string())
            })
            .unwrap_or_else(|| workload_name(meta.name.as_deref().unwrap_or("unknown")).to_string())
    }

    async fn pods(&self, namespace: &str) -> Result<Vec<Pod>, DataError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let lp = ListParams::default();
        let list = self
            .call("pods", namespace, "pods".to_string(), || api.list(&lp))
            .await?;
        Ok(list.items)
    }

    fn summarise(&self, namespace: &str, pod: &Pod) -> PodSummary {
        let status = pod.status.as_ref();
        let containers = status
            .and_then(|s| s.container_statuses.as_ref())
            .map(|cs| {
                cs.iter()
                    .map(|c| ContainerSummary {
                        name: c.name.clone(),
                        restarts: c.restart_count,
                        ready: c.ready,
                        waiting_reason: c
                            .state
                            .as_ref()
                            .and_then(|s| s.waiting.as_ref())
                            .and_then(|w| w.reason.clone()),
                        terminated: c
                            .state
                            .as_ref()
                            .and_then(|s| s.terminated.as_ref())
                            .map(termination),
                        last_terminated: c
                            .last_state
                            .as_ref()
                            .and_then(|s| s.terminated.as_ref())
                            .map(termination),
                    })
                    .collect()
            })
            .unwrap_or_default();
        PodSummary {
            namespace: namespace.to_string(),
            pod: pod.metadata.name.clone().unwrap_or_default(),
            service: self.service_of(&pod.metadata),
            phase: status
                .and_then(|s| s.phase.clone())
                .unwrap_or_else(|| "Unknown".to_string()),
            reason: status.and_then(|s| s.reason.clone()),
            containers,
            changed_at: status.and_then(|s| s.conditions.as_ref()).and_then(|cs| {
                cs.iter()
                    .filter_map(|c| c.last_transition_time.as_ref())
                    .filter_map(|t| to_chrono(&t.0))
                    .max()
            }),
        }
    }

    /// Status of every pod in the configured namespaces.
    pub async fn pod_statuses(&self) -> Result<Vec<PodSummary>, DataError> {
        let mut out = Vec::new();
        for ns in &self.namespaces {
            for pod in self.pods(ns).await? {
                out.push(self.summarise(ns, &pod));
            }
        }
        Ok(out)
    }

    /// Pod status as log lines (see the module docs).
    pub fn status_lines(summary: &PodSummary) -> Vec<(DateTime<Utc>, &'static str, String)> {
        let mut out = Vec::new();
        let pod = &summary.pod;
        for c in &summary.containers {
            for (t, word) in [
                (&c.terminated, "terminated"),
                (&c.last_terminated, "was terminated"),
            ] {
                if let Some(t) = t
                    && let Some(at) = t.finished_at
                {
                    let level = if matches!(t.reason.as_str(), "OOMKilled" | "Error") {
                        "ERROR"
                    } else {
                        "WARN"
                    };
                    out.push((
                        at,
                        level,
                        format!(
                            "pod {pod} container {} {word}: {} (exit code {}), restart count {}",
                            c.name, t.reason, t.exit_code, c.restarts
                        ),
                    ));
                }
            }
            if let (Some(reason), Some(at)) = (&c.waiting_reason, summary.changed_at) {
                out.push((
                    at,
                    "WARN",
                    format!(
                        "pod {pod} container {} waiting: {reason}, restart count {}",
                        c.name, c.restarts
                    ),
                ));
            }
        }
        if matches!(summary.phase.as_str(), "Failed" | "Unknown")
            && let Some(at) = summary.changed_at
        {
            out.push((
                at,
                "ERROR",
                format!(
                    "pod {pod} phase {}{}",
                    summary.phase,
                    summary
                        .reason
                        .as_ref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ),
            ));
        }
        out
    }

    /// Events in `range` as log lines of the involved object's service.
    pub async fn events(
        &self,
        namespace: &str,
        range: TimeRange,
        pods: &BTreeMap<String, String>,
    ) -> Result<Vec<LogLine>, DataError> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        let lp = ListParams::default();
        let list = self
            .call("events", namespace, "events".to_string(), || api.list(&lp))
            .await?;
        let mut out = Vec::new();
        for e in list.items {
            let ts = e
                .last_timestamp
                .as_ref()
                .map(|t| &t.0)
                .or(e.event_time.as_ref().map(|t| &t.0))
                .or(e.first_timestamp.as_ref().map(|t| &t.0))
                .or(e.metadata.creation_timestamp.as_ref().map(|t| &t.0))
                .and_then(to_chrono);
            let Some(ts) = ts.filter(|t| range.contains(*t)) else {
                continue;
            };
            let object = &e.involved_object;
            let kind = object.kind.clone().unwrap_or_default();
            let name = object.name.clone().unwrap_or_default();
            let service = match pods.get(&name) {
                Some(service) if kind == "Pod" => service.clone(),
                _ => workload_name(&name).to_string(),
            };
            let warning = e.type_.as_deref() == Some("Warning");
            out.push(LogLine {
                service,
                ts,
                level: if warning { "WARN" } else { "INFO" }.to_string(),
                message: format!(
                    "event {} {} {}/{name}: {}",
                    e.type_.as_deref().unwrap_or("Normal"),
                    e.reason.as_deref().unwrap_or(""),
                    kind.to_ascii_lowercase(),
                    e.message.as_deref().unwrap_or("").trim()
                ),
                line: 0,
            });
        }
        Ok(out)
    }

    /// Logs of one container since `range.start`, at most `tail` lines and
    /// the log byte limit; timestamps come from the kubelet. `previous`: the
    /// log of the container instance before its last restart.
    async fn container_log(
        &self,
        summary: &PodSummary,
        container: &str,
        range: TimeRange,
        tail: usize,
        previous: bool,
    ) -> Result<(Vec<LogLine>, Option<LogLine>), DataError> {
        let (namespace, pod, service) = (
            summary.namespace.as_str(),
            summary.pod.as_str(),
            summary.service.as_str(),
        );
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let limit = self.policy.max_response_bytes;
        let params = LogParams {
            container: Some(container.to_string()),
            since_time: to_jiff(range.start),
            tail_lines: i64::try_from(tail).ok(),
            limit_bytes: i64::try_from(limit).ok(),
            timestamps: true,
            previous,
            ..LogParams::default()
        };
        let which = if previous { " (previous)" } else { "" };
        let text = self
            .call(
                "pod_logs",
                namespace,
                format!("pods/log {pod} container {container}{which}"),
                || api.logs(pod, &params),
            )
            .await?;
        let cut = text.len() as u64 >= limit;
        let mut body = text.as_str();
        if cut {
            // The last line may be partial: drop it.
            body = body.rsplit_once('\n').map_or("", |(whole, _)| whole);
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            if body.len() > limit {
                // A server that ignored limitBytes: cut here.
                let mut end = limit;
                while !body.is_char_boundary(end) {
                    end -= 1;
                }
                body = body.get(..end).unwrap_or_default();
                body = body.rsplit_once('\n').map_or("", |(whole, _)| whole);
            }
        }
        let mut out = Vec::new();
        let mut last = range.start;
        for raw in body.lines() {
            let (ts, message) = match raw.split_once(' ') {
                Some((stamp, rest)) => match DateTime::parse_from_rfc3339(stamp) {
                    Ok(t) => (t.with_timezone(&Utc), rest),
                    Err(_) => (last, raw),
                },
                None => (last, raw),
            };
            last = ts;
            if !range.contains(ts) {
                continue;
            }
            out.push(LogLine {
                service: service.to_string(),
                ts,
                level: levels::detect(message).to_string(),
                message: message.to_string(),
                line: 0,
            });
        }
        let note = cut.then(|| LogLine {
            service: self.name.clone(),
            ts: last,
            level: "WARN".to_string(),
            message: format!(
                "log of pod {pod} container {container} cut at {limit} bytes; later lines were not read"
            ),
            line: 0,
        });
        Ok((out, note))
    }

    /// Container logs, events and pod status lines of `service` (every
    /// service when `None`) in `range` that pass `keep`, the first `limit`
    /// in time order (plus lines from the source saying what it cut).
    pub async fn logs(
        &self,
        service: Option<&str>,
        range: TimeRange,
        limit: usize,
        keep: impl Fn(&LogLine) -> bool,
    ) -> Result<Vec<LogLine>, DataError> {
        let mut lines = Vec::new();
        let mut skipped: Vec<String> = Vec::new();
        // What the source itself says about cuts; kept whatever the filter.
        let mut notes: Vec<LogLine> = Vec::new();
        let mut read = 0usize;
        for ns in &self.namespaces {
            let pods = self.pods(ns).await?;
            let mut services: BTreeMap<String, String> = BTreeMap::new();
            for pod in &pods {
                let summary = self.summarise(ns, pod);
                services.insert(summary.pod.clone(), summary.service.clone());
                if service.is_some_and(|s| s != summary.service) {
                    continue;
                }
                for (ts, level, message) in Self::status_lines(&summary) {
                    if range.contains(ts) {
                        lines.push(LogLine {
                            service: summary.service.clone(),
                            ts,
                            level: level.to_string(),
                            message,
                            line: 0,
                        });
                    }
                }
                if read >= MAX_POD_LOGS {
                    skipped.push(format!("{ns}/{}", summary.pod));
                    continue;
                }
                read += 1;
                for c in &summary.containers {
                    // What a container wrote before it was killed is in
                    // the previous instance's log.
                    if c.last_terminated.is_some()
                        && let Ok((log, note)) = self
                            .container_log(&summary, &c.name, range, limit, true)
                            .await
                    {
                        lines.extend(log);
                        notes.extend(note);
                    }
                    let (log, note) = self
                        .container_log(&summary, &c.name, range, limit, false)
                        .await?;
                    lines.extend(log);
                    notes.extend(note);
                }
            }
            let events = self.events(ns, range, &services).await?;
            lines.extend(
                events
                    .into_iter()
                    .filter(|l| service.is_none_or(|s| s == l.service)),
            );
        }
        lines.retain(|l| keep(l));
        lines.sort_by_key(|l| l.ts);
        lines.truncate(limit);
        lines.extend(notes);
        if !skipped.is_empty() {
            lines.push(LogLine {
                service: self.name.clone(),
                ts: range.start,
                level: "WARN".to_string(),
                message: format!(
                    "logs of {} pods not read (at most {MAX_POD_LOGS} per query): {}",
                    skipped.len(),
                    skipped.join(", ")
                ),
                line: 0,
            });
        }
        for (i, l) in lines.iter_mut().enumerate() {
            l.line = i as u64 + 1;
        }
        Ok(lines)
    }

    /// Rollouts (ReplicaSet revisions) and ConfigMap writes in `range`.
    pub async fn changes(&self, range: TimeRange) -> Result<Vec<ChangeRecord>, DataError> {
        let mut out = Vec::new();
        for ns in &self.namespaces {
            out.extend(self.rollouts(ns, range).await?);
            out.extend(self.config_changes(ns, range).await?);
        }
        out.sort_by(|a, b| (a.ts, &a.id).cmp(&(b.ts, &b.id)));
        Ok(out)
    }

    async fn rollouts(&self, ns: &str, range: TimeRange) -> Result<Vec<ChangeRecord>, DataError> {
        let lp = ListParams::default();
        let rs_api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), ns);
        let replicasets = self
            .call("replicasets", ns, "replicasets".to_string(), || {
                rs_api.list(&lp)
            })
            .await?
            .items;
        let dep_api: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
        let deployments = self
            .call("deployments", ns, "deployments".to_string(), || {
                dep_api.list(&lp)
            })
            .await?
            .items;
        let mut out = Vec::new();
        for rs in replicasets {
            let meta = &rs.metadata;
            let Some(created) = meta
                .creation_timestamp
                .as_ref()
                .and_then(|t| to_chrono(&t.0))
                .filter(|t| range.contains(*t))
            else {
                continue;
            };
            let Some(owner) = meta
                .owner_references
                .as_ref()
                .and_then(|o| o.iter().find(|o| o.kind == "Deployment"))
            else {
                continue;
            };
            let revision = meta
                .annotations
                .as_ref()
                .and_then(|a| a.get("deployment.kubernetes.io/revision"))
                .cloned()
                .unwrap_or_else(|| "?".to_string());
            let rs_name = meta.name.clone().unwrap_or_default();
            let template = rs.spec.as_ref().and_then(|s| s.template.as_ref());
            let images: Vec<String> = template
                .and_then(|t| t.spec.as_ref())
                .map(|s| {
                    s.containers
                        .iter()
                        .map(|c| format!("{}={}", c.name, c.image.clone().unwrap_or_default()))
                        .collect()
                })
                .unwrap_or_default();
            let target = template
                .and_then(|t| t.metadata.as_ref())
                .map(|m| self.service_of(m))
                .filter(|s| s != "unknown")
                .unwrap_or_else(|| owner.name.clone());
            // Who changed the Deployment: the last writer before the new
            // revision appeared.
            let actor = deployments
                .iter()
                .find(|d| d.metadata.name.as_deref() == Some(owner.name.as_str()))
                .and_then(|d| d.metadata.managed_fields.as_ref())
                .map(|f| {
                    writes_in(
                        f,
                        TimeRange {
                            start: range.start,
                            end: created + chrono::Duration::seconds(5),
                        },
                    )
                })
                .and_then(|w| w.last().map(|(_, m)| m.clone()))
                .unwrap_or_else(|| "unknown".to_string());
            out.push(ChangeRecord {
                id: format!("k8s:{ns}/replicaset/{rs_name}"),
                ts: created,
                kind: "deploy".to_string(),
                target,
                actor,
                summary: format!(
                    "Deployment {ns}/{} rolled out revision {revision} (ReplicaSet {rs_name}; {})",
                    owner.name,
                    images.join(", ")
                ),
                details: json!({
                    "namespace": ns,
                    "deployment": owner.name,
                    "replicaset": rs_name,
                    "revision": revision,
                    "images": images,
                }),
            });
        }
        Ok(out)
    }

    async fn config_changes(
        &self,
        ns: &str,
        range: TimeRange,
    ) -> Result<Vec<ChangeRecord>, DataError> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
        let lp = ListParams::default();
        // Metadata only: a ConfigMap's data never reaches the agent.
        let list = self
            .call(
                "configmaps",
                ns,
                "configmaps (metadata)".to_string(),
                || api.list_metadata(&lp),
            )
            .await?;
        let mut out = Vec::new();
        for cm in list.items {
            let meta = &cm.metadata;
            let name = meta.name.clone().unwrap_or_default();
            if name == "kube-root-ca.crt" {
                continue;
            }
            let mut writes = writes_in(meta.managed_fields.as_deref().unwrap_or_default(), range);
            if writes.is_empty()
                && let Some(created) = meta
                    .creation_timestamp
                    .as_ref()
                    .and_then(|t| to_chrono(&t.0))
                    .filter(|t| range.contains(*t))
            {
                writes.push((created, "unknown".to_string()));
            }
            let target = meta
                .labels
                .as_ref()
                .and_then(|l| self.service_labels.iter().find_map(|k| l.get(k)))
                .cloned()
                .unwrap_or_else(|| name.clone());
            let rv = meta.resource_version.clone().unwrap_or_default();
            for (at, manager) in writes {
                out.push(ChangeRecord {
                    id: format!("k8s:{ns}/configmap/{name}@{manager}"),
                    ts: at,
                    kind: "config".to_string(),
                    target: target.clone(),
                    actor: manager.clone(),
                    summary: format!("ConfigMap {ns}/{name} changed by {manager}"),
                    details: json!({
                        "namespace": ns,
                        "configmap": name,
                        "resource_version": rv,
                    }),
                });
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl DataSource for KubernetesSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn domains(&self) -> Vec<Domain> {
        self.domains.clone()
    }

    async fn query(&self, query: &Query) -> Result<QueryResult, DataError> {
        match query {
            Query::Logs {
                service,
                min_level,
                contains,
                range,
                limit,
            } => {
                let floor = min_level.as_deref().map_or(0, crate::levels::rank);
                let keep = |l: &LogLine| {
                    crate::levels::rank(&l.level) >= floor
                        && contains.as_deref().is_none_or(|c| l.message.contains(c))
                };
                let lines = self.logs(service.as_deref(), *range, *limit, keep).await?;
                Ok(QueryResult::Logs(lines))
            }
            Query::Changes { range } => Ok(QueryResult::Changes(self.changes(*range).await?)),
            other => Err(DataError::Unsupported {
                source_name: self.name.clone(),
                query_kind: kind_of(other),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_lead_back_to_the_workload() {
        assert_eq!(workload_name("web-7d9f8c6b5-x2kq9"), "web");
        assert_eq!(workload_name("web-7d9f8c6b5"), "web");
        assert_eq!(workload_name("orders-db"), "orders-db");
        assert_eq!(workload_name("payments-api-0"), "payments-api-0");
    }
}
