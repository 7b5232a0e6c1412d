//! The code a remediation job runs (`warden remediate run`): the action
//! itself, through the Kubernetes API, as the job's own service account.
//!
//! Every request names the one target; the Role allows nothing else, so a
//! bug here that reached for another object would get a 403, not a change.

use chrono::{SecondsFormat, Utc};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;
use warden_core::{ActionKind, ProposedAction};

use crate::objects::validate_action;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Invalid(String),
    /// The API refused (403 from RBAC, 404 for a missing target, ...).
    #[error("{what}: {source}")]
    Kube {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("{0}")]
    Precondition(String),
}

impl RunError {
    /// The HTTP status the API answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            RunError::Kube {
                source: kube::Error::Api(s),
                ..
            } => Some(s.code),
            _ => None,
        }
    }
}

fn kube_err(what: String) -> impl FnOnce(kube::Error) -> RunError {
    move |source| RunError::Kube { what, source }
}

/// What the action did, in one line.
pub type Applied = String;

/// Runs `action` with `client` (the job's service-account client).
pub async fn run_action(
    client: kube::Client,
    action: &ProposedAction,
    max_replicas: u32,
) -> Result<Applied, RunError> {
    validate_action(action, max_replicas).map_err(|e| RunError::Invalid(e.to_string()))?;
    let ns = action.namespace.as_str();
    let target = action.target.as_str();
    match action.kind {
        ActionKind::RestartPod => {
            let pods: Api<Pod> = Api::namespaced(client, ns);
            pods.get(target)
                .await
                .map_err(kube_err(format!("reading pod {ns}/{target}")))?;
            pods.delete(target, &DeleteParams::background())
                .await
                .map_err(kube_err(format!("deleting pod {ns}/{target}")))?;
            Ok(format!(
                "deleted pod {ns}/{target}; its controller recreates it"
            ))
        }
        ActionKind::RolloutRestart => {
            let deployments: Api<Deployment> = Api::namespaced(client, ns);
            deployments
                .get(target)
                .await
                .map_err(kube_err(format!("reading deployment {ns}/{target}")))?;
            let at = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
            let patch = json!({ "spec": { "template": { "metadata": { "annotations": {
                "kubectl.kubernetes.io/restartedAt": at,
            } } } } });
            deployments
                .patch(target, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(kube_err(format!("restarting deployment {ns}/{target}")))?;
            Ok(format!(
                "rollout restart of deployment {ns}/{target} at {at}"
            ))
        }
        ActionKind::ScaleDeployment => {
            let replicas = action
                .replicas
                .ok_or_else(|| RunError::Invalid("scale_deployment needs replicas".into()))?;
            let deployments: Api<Deployment> = Api::namespaced(client, ns);
            let current = deployments
                .get(target)
                .await
                .map_err(kube_err(format!("reading deployment {ns}/{target}")))?
                .spec
                .and_then(|s| s.replicas)
                .unwrap_or(1);
            let patch = json!({ "spec": { "replicas": replicas } });
            deployments
                .patch_scale(target, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(kube_err(format!("scaling deployment {ns}/{target}")))?;
            Ok(format!(
                "scaled deployment {ns}/{target} from {current} to {replicas} replicas"
            ))
        }
        ActionKind::RollbackDeployment => rollback(client, ns, target).await,
    }
}

fn revision(rs: &ReplicaSet) -> Option<u64> {
    rs.metadata
        .annotations
        .as_ref()?
        .get("deployment.kubernetes.io/revision")?
        .parse()
        .ok()
}

/// Rolls a deployment back to the pod template of its previous ReplicaSet,
/// as `kubectl rollout undo` does.
async fn rollback(client: kube::Client, ns: &str, target: &str) -> Result<Applied, RunError> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let deployment = deployments
        .get(target)
        .await
        .map_err(kube_err(format!("reading deployment {ns}/{target}")))?;
    let uid = deployment.metadata.uid.clone().unwrap_or_default();
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client, ns);
    let mut owned: Vec<(u64, ReplicaSet)> = replica_sets
        .list(&ListParams::default())
        .await
        .map_err(kube_err(format!("listing replicasets in {ns}")))?
        .items
        .into_iter()
        .filter(|rs| {
            rs.metadata
                .owner_references
                .as_ref()
                .is_some_and(|o| o.iter().any(|r| r.uid == uid && r.kind == "Deployment"))
        })
        .filter_map(|rs| revision(&rs).map(|r| (r, rs)))
        .collect();
    owned.sort_by_key(|(r, _)| std::cmp::Reverse(*r));
    let mut revisions = owned.into_iter();
    let (current, _) = revisions.next().ok_or_else(|| {
        RunError::Precondition(format!("deployment {ns}/{target} has no ReplicaSets"))
    })?;
    let (previous, rs) = revisions.next().ok_or_else(|| {
        RunError::Precondition(format!(
            "deployment {ns}/{target} has no previous revision to roll back to"
        ))
    })?;
    let mut template = rs.spec.and_then(|s| s.template).ok_or_else(|| {
        RunError::Precondition(format!("revision {previous} has no pod template"))
    })?;
    // The hash label belongs to the ReplicaSet, not the deployment's template.
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove("pod-template-hash");
    }
    let patch = json!({ "spec": { "template": template } });
    deployments
        .patch(target, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(kube_err(format!("rolling back deployment {ns}/{target}")))?;
    Ok(format!(
        "rolled deployment {ns}/{target} back from revision {current} to revision {previous}"
    ))
}
