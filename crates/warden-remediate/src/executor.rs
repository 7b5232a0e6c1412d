//! The control plane's side: create the objects, wait for the Job, read
//! its result, remove everything again.

use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams};
use serde_json::json;
use warden_trust::{ExecutionError, ExecutionReport, ExecutionRequest, RemediationExecutor};

use crate::objects::{JobSettings, RemediationObjects, build, role_rules};

/// How often the Job's status is read while waiting.
const POLL: Duration = Duration::from_millis(200);

/// Runs each approved action as its own Job (see the crate docs).
pub struct KubeExecutor {
    client: kube::Client,
    settings: JobSettings,
}

impl KubeExecutor {
    /// `client` is the control plane's own (it creates Roles, so it needs
    /// the `escalate`/`bind`-free permission to grant what it holds).
    pub fn new(client: kube::Client, settings: JobSettings) -> Self {
        KubeExecutor { client, settings }
    }

    async fn create(&self, o: &RemediationObjects) -> Result<(), ExecutionError> {
        let pp = PostParams::default();
        let job_ns = &self.settings.namespace;
        let target_ns = o.role.metadata.namespace.clone().unwrap_or_default();
        let err = |what: &str| {
            let what = what.to_string();
            move |e: kube::Error| ExecutionError::Job(format!("creating the {what}: {e}"))
        };
        Api::<ServiceAccount>::namespaced(self.client.clone(), job_ns)
            .create(&pp, &o.service_account)
            .await
            .map_err(err("service account"))?;
        Api::<Role>::namespaced(self.client.clone(), &target_ns)
            .create(&pp, &o.role)
            .await
            .map_err(err("role"))?;
        Api::<RoleBinding>::namespaced(self.client.clone(), &target_ns)
            .create(&pp, &o.role_binding)
            .await
            .map_err(err("role binding"))?;
        Api::<Job>::namespaced(self.client.clone(), job_ns)
            .create(&pp, &o.job)
            .await
            .map_err(err("job"))?;
        Ok(())
    }

    /// `Some(true)` complete, `Some(false)` failed, `None` still running.
    fn finished(job: &Job) -> Option<(bool, String)> {
        let conditions = job.status.as_ref()?.conditions.as_ref()?;
        for c in conditions {
            if c.status != "True" {
                continue;
            }
            match c.type_.as_str() {
                "Complete" => return Some((true, "job complete".into())),
                "Failed" => {
                    return Some((
                        false,
                        format!(
                            "job failed: {}",
                            c.reason.clone().unwrap_or_else(|| "no reason".into())
                        ),
                    ));
                }
                _ => {}
            }
        }
        None
    }

    async fn wait(&self, name: &str) -> Result<(bool, String), ExecutionError> {
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &self.settings.namespace);
        // The Job's own activeDeadlineSeconds ends it; allow a little more
        // for the controller to say so.
        let limit = Duration::from_secs(self.settings.timeout_seconds + 30);
        let started = std::time::Instant::now();
        loop {
            let job = jobs
                .get(name)
                .await
                .map_err(|e| ExecutionError::Job(format!("reading job {name}: {e}")))?;
            if let Some(done) = Self::finished(&job) {
                return Ok(done);
            }
            if started.elapsed() > limit {
                return Ok((false, format!("job {name} did not finish within {limit:?}")));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The last line the job's pod wrote: the runner's one-line result.
    async fn result_line(&self, name: &str) -> Option<String> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.settings.namespace);
        let list = pods
            .list(&ListParams::default().labels(&format!("job-name={name}")))
            .await
            .ok()?;
        let pod = list.items.first()?.metadata.name.clone()?;
        let log = pods.logs(&pod, &LogParams::default()).await.ok()?;
        log.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(String::from)
    }

    /// Removes everything created for the action. Each deletion is tried
    /// even when another fails; a leftover is logged, never fatal.
    async fn cleanup(&self, o: &RemediationObjects) {
        let job_ns = &self.settings.namespace;
        let target_ns = o.role.metadata.namespace.clone().unwrap_or_default();
        let dp = DeleteParams::background();
        let name = &o.name;
        let results = [
            Api::<Job>::namespaced(self.client.clone(), job_ns)
                .delete(name, &dp)
                .await
                .map(|_| ()),
            Api::<RoleBinding>::namespaced(self.client.clone(), &target_ns)
                .delete(name, &dp)
                .await
                .map(|_| ()),
            Api::<Role>::namespaced(self.client.clone(), &target_ns)
                .delete(name, &dp)
                .await
                .map(|_| ()),
            Api::<ServiceAccount>::namespaced(self.client.clone(), job_ns)
                .delete(name, &dp)
                .await
                .map(|_| ()),
        ];
        for r in results {
            if let Err(e) = r
                && !matches!(&e, kube::Error::Api(s) if s.code == 404)
            {
                tracing::warn!(remediation = %name, error = %e, "cleaning up a remediation object failed");
            }
        }
    }
}

#[async_trait]
impl RemediationExecutor for KubeExecutor {
    async fn execute(&self, request: &ExecutionRequest) -> Result<ExecutionReport, ExecutionError> {
        let objects = build(
            &request.action,
            &request.action_id,
            &request.investigation,
            request.phase,
            &self.settings,
        )
        .map_err(|e| ExecutionError::Refused(e.to_string()))?;
        let record = json!({
            "job": objects.name,
            "namespace": self.settings.namespace,
            "service_account": objects.name,
            "role": {
                "namespace": request.action.namespace,
                "name": objects.name,
                "rules": role_rules(&request.action),
            },
        });
        let created = self.create(&objects).await;
        let outcome = match created {
            Ok(()) => self.wait(&objects.name).await,
            Err(e) => Err(e),
        };
        let line = match &outcome {
            Ok(_) => self.result_line(&objects.name).await,
            Err(_) => None,
        };
        self.cleanup(&objects).await;
        let (applied, status) = outcome?;
        Ok(ExecutionReport {
            applied,
            detail: match line {
                Some(l) => format!("{status}: {l}"),
                None => status,
            },
            record,
        })
    }
}
