//! The pod's way to its input: `POST /api/v1/jobs/bootstrap` with its
//! projected service-account token.
//!
//! The runtime keeps each started job's document (`{input,
//! result_credential, identity}`, the same document a local job reads on
//! stdin) in memory, as a secret, until the job's pod claims it or the
//! deadline passes. A claim is granted only when:
//!
//! 1. a TokenReview accepts the token for warden's audience;
//! 2. the token is a service account's in the investigations namespace and
//!    bound to a pod (`authentication.kubernetes.io/pod-name`);
//! 3. that pod exists, is owned by the investigation's Job (its
//!    `warden.dev/investigation` label names the investigation and an owner
//!    reference names the Job), and runs as the service account of the
//!    investigation's trust phase;
//! 4. no other live pod holds the document. A pod claims once (a second
//!    claim is refused); a later pod of the same Job — the retry after an
//!    eviction — may claim only after the earlier one has ended.
//!
//! Documents live only in this process: after a control-plane restart a
//! pod that had not claimed its input is refused and its Job fails (the
//! result credential cannot be reissued: the store keeps only its hash).

use chrono::{DateTime, Utc};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use secrecy::{ExposeSecret, SecretString};
use warden_core::InvestigationId;
use warden_core::ports::BootstrapError;

use crate::manifest::{ANNOTATION_INPUT_CLAIMED_BY, LABEL_INVESTIGATION, job_name};
use crate::outcome::has_ended;
use crate::runtime::Shared;

pub(crate) const POD_NAME_EXTRA: &str = "authentication.kubernetes.io/pod-name";
pub(crate) const POD_UID_EXTRA: &str = "authentication.kubernetes.io/pod-uid";

/// A document waiting for its pod.
pub(crate) struct Pending {
    pub document: SecretString,
    pub deadline: DateTime<Utc>,
    pub service_account: String,
    /// The pod that claimed it last.
    pub claimed_by: Option<String>,
}

/// Who the token belongs to, once the API server vouched for it.
struct Claimant {
    service_account: String,
    pod: String,
    pod_uid: Option<String>,
}

async fn review(shared: &Shared, token: &SecretString) -> Result<Claimant, BootstrapError> {
    let audience = &shared.config.settings.token_audience;
    let request = TokenReview {
        spec: TokenReviewSpec {
            token: Some(token.expose_secret().to_string()),
            audiences: Some(vec![audience.clone()]),
        },
        ..TokenReview::default()
    };
    let api: Api<TokenReview> = Api::all(shared.client.clone());
    let reviewed = api
        .create(&PostParams::default(), &request)
        .await
        .map_err(|e| BootstrapError::Unavailable(format!("TokenReview failed: {e}")))?;
    let status = reviewed.status.unwrap_or_default();
    if status.authenticated != Some(true) {
        return Err(BootstrapError::Unauthenticated(
            status
                .error
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| "the API server did not authenticate it".into()),
        ));
    }
    // The API server answers with the audiences the token is valid for
    // among those asked; a token for another audience must not pass.
    if !status
        .audiences
        .as_ref()
        .is_some_and(|a| a.iter().any(|x| x == audience))
    {
        return Err(BootstrapError::Unauthenticated(format!(
            "the token is not valid for audience {audience:?}"
        )));
    }
    let user = status.user.unwrap_or_default();
    let username = user.username.unwrap_or_default();
    let namespace = &shared.config.settings.namespace;
    let Some((ns, sa)) = username
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'))
    else {
        return Err(BootstrapError::Forbidden(format!(
            "{username:?} is not a service account"
        )));
    };
    if ns != namespace {
        return Err(BootstrapError::Forbidden(format!(
            "service account {sa:?} is in namespace {ns:?}, not {namespace:?}"
        )));
    }
    let extra = user.extra.unwrap_or_default();
    let first = |key: &str| extra.get(key).and_then(|v| v.first()).cloned();
    let pod = first(POD_NAME_EXTRA)
        .ok_or_else(|| BootstrapError::Forbidden("the token is not bound to a pod".into()))?;
    Ok(Claimant {
        service_account: sa.to_string(),
        pod,
        pod_uid: first(POD_UID_EXTRA),
    })
}

/// The investigation the claimant's pod belongs to, checked against the
/// pod object itself.
async fn investigation_of(
    shared: &Shared,
    who: &Claimant,
) -> Result<InvestigationId, BootstrapError> {
    let pods: Api<Pod> = Api::namespaced(shared.client.clone(), &shared.config.settings.namespace);
    let pod = pods
        .get_opt(&who.pod)
        .await
        .map_err(|e| BootstrapError::Unavailable(format!("reading pod {}: {e}", who.pod)))?
        .ok_or_else(|| BootstrapError::Forbidden(format!("pod {} does not exist", who.pod)))?;
    if let (Some(claimed), Some(actual)) = (&who.pod_uid, &pod.metadata.uid)
        && claimed != actual
    {
        return Err(BootstrapError::Forbidden(format!(
            "the token was issued to an earlier pod named {}",
            who.pod
        )));
    }
    let label = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_INVESTIGATION))
        .ok_or_else(|| {
            BootstrapError::Forbidden(format!("pod {} is not an investigation's pod", who.pod))
        })?;
    let id = InvestigationId::parse(label).map_err(BootstrapError::Forbidden)?;
    let job = job_name(&id);
    // The Job by name *and* uid: a pod left over from a deleted Job of the
    // same name (an investigation started again) gets nothing.
    let live_job = shared
        .jobs_api()
        .get_opt(&job)
        .await
        .map_err(|e| BootstrapError::Unavailable(format!("reading Job {job}: {e}")))?
        .filter(|j| j.metadata.deletion_timestamp.is_none());
    let owned = live_job.as_ref().is_some_and(|j| {
        pod.metadata.owner_references.as_ref().is_some_and(|refs| {
            refs.iter().any(|r| {
                r.kind == "Job" && r.name == job && Some(&r.uid) == j.metadata.uid.as_ref()
            })
        })
    });
    if !owned {
        return Err(BootstrapError::Forbidden(format!(
            "pod {} is not owned by the current Job {job}",
            who.pod
        )));
    }
    let runs_as = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.as_deref())
        .unwrap_or("default");
    if runs_as != who.service_account {
        return Err(BootstrapError::Forbidden(format!(
            "pod {} runs as {runs_as:?}, the token is {:?}'s",
            who.pod, who.service_account
        )));
    }
    Ok(id)
}

/// Records on the Job that `pod` claimed the input, before the pod gets
/// it: a control plane that restarts later re-adopts the Job instead of
/// starting the investigation again. Unrecorded, the pod gets nothing (it
/// retries).
async fn mark_claimed(
    shared: &Shared,
    id: &InvestigationId,
    pod: &str,
) -> Result<(), BootstrapError> {
    let patch = serde_json::json!({
        "metadata": {"annotations": {ANNOTATION_INPUT_CLAIMED_BY: pod}}
    });
    let jobs: Api<Job> = shared.jobs_api();
    jobs.patch(
        &job_name(id),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map(|_| ())
    .map_err(|e| {
        BootstrapError::Unavailable(format!("recording the claim on Job {}: {e}", job_name(id)))
    })
}

/// Whether `pod` still exists and has not ended.
async fn is_live(shared: &Shared, pod: &str) -> Result<bool, BootstrapError> {
    let pods: Api<Pod> = Api::namespaced(shared.client.clone(), &shared.config.settings.namespace);
    let found = pods
        .get_opt(pod)
        .await
        .map_err(|e| BootstrapError::Unavailable(format!("reading pod {pod}: {e}")))?;
    Ok(found.is_some_and(|p| !has_ended(&p) && p.metadata.deletion_timestamp.is_none()))
}

pub(crate) async fn claim(
    shared: &Shared,
    token: &SecretString,
) -> Result<SecretString, BootstrapError> {
    let who = review(shared, token).await?;
    let id = investigation_of(shared, &who).await?;
    let holder = {
        let mut pending = shared.pending();
        let Some(p) = pending.get(&id) else {
            return Err(BootstrapError::Gone(format!(
                "no input is waiting for investigation {id}"
            )));
        };
        if p.deadline <= Utc::now() {
            pending.remove(&id);
            return Err(BootstrapError::Gone(format!(
                "investigation {id} is past its deadline"
            )));
        }
        if p.service_account != who.service_account {
            return Err(BootstrapError::Forbidden(format!(
                "investigation {id} runs as {:?}, not {:?}",
                p.service_account, who.service_account
            )));
        }
        if p.claimed_by.as_deref() == Some(who.pod.as_str()) {
            return Err(BootstrapError::AlreadyClaimed(format!(
                "pod {} already claimed its input",
                who.pod
            )));
        }
        p.claimed_by.clone()
    };
    if let Some(earlier) = &holder
        && is_live(shared, earlier).await?
    {
        return Err(BootstrapError::AlreadyClaimed(format!(
            "pod {earlier} of investigation {id} holds the input"
        )));
    }
    mark_claimed(shared, &id, &who.pod).await?;
    let mut pending = shared.pending();
    match pending.get_mut(&id) {
        // Unchanged since the check above: no other pod got in between.
        Some(p) if p.claimed_by == holder => {
            p.claimed_by = Some(who.pod.clone());
            tracing::info!(investigation = %id, pod = %who.pod, "job input claimed");
            Ok(p.document.clone())
        }
        Some(_) => Err(BootstrapError::AlreadyClaimed(format!(
            "another pod of investigation {id} claimed the input"
        ))),
        None => Err(BootstrapError::Gone(format!(
            "no input is waiting for investigation {id}"
        ))),
    }
}
