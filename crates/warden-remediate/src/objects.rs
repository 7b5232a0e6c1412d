//! The objects one remediation runs with, built purely from the action.
//!
//! ```text
//! investigations namespace          target namespace
//! ┌──────────────────────────┐      ┌───────────────────────────────────┐
//! │ ServiceAccount  ◀────────┼──────┤ RoleBinding ──▶ Role              │
//! │ Job (runs as that SA):   │      │   rules = ActionKind::permissions │
//! │   warden remediate run   │      │   resourceNames = [target]        │
//! └──────────────────────────┘      └───────────────────────────────────┘
//! ```
//! The Role lives in the target's namespace (a Role grants nothing
//! elsewhere) and names the one target wherever the rule can be restricted
//! by name; the Job never retries (backoffLimit 0): an action runs at most
//! once per approval.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use serde::{Deserialize, Serialize};
use serde_json::json;
use warden_core::{ActionKind, ProposedAction, TrustPhase};

/// Settings of remediation jobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSettings {
    /// Where the ServiceAccount and Job are created.
    pub namespace: String,
    pub image: String,
    pub timeout_seconds: u64,
    /// Upper bound of `scale_deployment` replicas.
    pub max_replicas: u32,
    pub run_as_user: i64,
}

impl Default for JobSettings {
    fn default() -> Self {
        JobSettings {
            namespace: "warden-investigations".into(),
            image: "ghcr.io/warden-dev/warden:0.1.0".into(),
            timeout_seconds: 120,
            max_replicas: 20,
            run_as_user: 65532,
        }
    }
}

/// Everything created for one action, in creation order.
#[derive(Debug, Clone, PartialEq)]
pub struct RemediationObjects {
    pub name: String,
    pub service_account: ServiceAccount,
    pub role: Role,
    pub role_binding: RoleBinding,
    pub job: Job,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ObjectsError {
    #[error("invalid action id {0:?}: expected act- followed by lowercase letters and digits")]
    ActionId(String),
    #[error("invalid {field} {value:?}: not a Kubernetes object name")]
    Name { field: &'static str, value: String },
    #[error("scale_deployment needs replicas between 0 and {max}, got {got:?}")]
    Replicas { max: u32, got: Option<u32> },
    #[error("building the {0} object: {1}")]
    Build(&'static str, String),
}

/// RFC 1123 label (namespaces) or subdomain (object names).
fn valid_name(s: &str, subdomain: bool) -> bool {
    let max = if subdomain { 253 } else { 63 };
    !s.is_empty()
        && s.len() <= max
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || (subdomain && b == b'.')
        })
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
}

/// Checks what the job will be told to do, before anything is created.
pub fn validate_action(action: &ProposedAction, max_replicas: u32) -> Result<(), ObjectsError> {
    if !valid_name(&action.namespace, false) {
        return Err(ObjectsError::Name {
            field: "namespace",
            value: action.namespace.clone(),
        });
    }
    if !valid_name(&action.target, true) {
        return Err(ObjectsError::Name {
            field: "target",
            value: action.target.clone(),
        });
    }
    if action.kind == ActionKind::ScaleDeployment
        && action.replicas.is_none_or(|r| r > max_replicas)
    {
        return Err(ObjectsError::Replicas {
            max: max_replicas,
            got: action.replicas,
        });
    }
    Ok(())
}

/// The arguments of `warden remediate run` for `action`.
pub fn action_args(action: &ProposedAction) -> Vec<String> {
    let mut args = vec![
        "remediate".to_string(),
        "run".into(),
        "--kind".into(),
        action.kind.as_str().into(),
        "--namespace".into(),
        action.namespace.clone(),
        "--target".into(),
        action.target.clone(),
    ];
    if let Some(r) = action.replicas {
        args.push("--replicas".into());
        args.push(r.to_string());
    }
    args
}

/// The inverse of [`action_args`] (what a test playing the kubelet reads
/// back from the Job).
pub fn parse_action_args(args: &[String]) -> Result<ProposedAction, String> {
    let mut kind = None;
    let mut namespace = None;
    let mut target = None;
    let mut replicas = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "remediate" | "run" => {}
            "--kind" => kind = Some(value()?.parse::<ActionKind>()?),
            "--namespace" => namespace = Some(value()?),
            "--target" => target = Some(value()?),
            "--replicas" => {
                replicas = Some(
                    value()?
                        .parse::<u32>()
                        .map_err(|e| format!("--replicas: {e}"))?,
                )
            }
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    Ok(ProposedAction {
        kind: kind.ok_or("--kind is required")?,
        namespace: namespace.ok_or("--namespace is required")?,
        target: target.ok_or("--target is required")?,
        replicas,
    })
}

/// The Role's rules: exactly [`ActionKind::permissions`], each restricted
/// to the target's name where the rule allows it.
pub fn role_rules(action: &ProposedAction) -> serde_json::Value {
    let rules: Vec<serde_json::Value> = action
        .kind
        .permissions()
        .iter()
        .map(|p| {
            if p.named {
                json!({
                    "apiGroups": [p.api_group],
                    "resources": [p.resource],
                    "verbs": p.verbs,
                    "resourceNames": [action.target],
                })
            } else {
                json!({
                    "apiGroups": [p.api_group],
                    "resources": [p.resource],
                    "verbs": p.verbs,
                })
            }
        })
        .collect();
    json!(rules)
}

fn object_name(action_id: &str) -> Result<String, ObjectsError> {
    let suffix = action_id
        .strip_prefix("act-")
        .filter(|s| {
            !s.is_empty()
                && s.len() <= 40
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        .ok_or_else(|| ObjectsError::ActionId(action_id.to_string()))?;
    Ok(format!("warden-remediate-{suffix}"))
}

fn typed<T: serde::de::DeserializeOwned>(
    what: &'static str,
    v: serde_json::Value,
) -> Result<T, ObjectsError> {
    serde_json::from_value(v).map_err(|e| ObjectsError::Build(what, e.to_string()))
}

/// Builds the four objects for `action` (approved as `action_id`, for
/// `investigation`).
pub fn build(
    action: &ProposedAction,
    action_id: &str,
    investigation: &str,
    phase: TrustPhase,
    settings: &JobSettings,
) -> Result<RemediationObjects, ObjectsError> {
    validate_action(action, settings.max_replicas)?;
    let name = object_name(action_id)?;
    let labels = json!({
        "app.kubernetes.io/name": "warden-remediation",
        "app.kubernetes.io/managed-by": "warden",
        "warden.dev/action": action_id,
        "warden.dev/investigation": investigation,
        // Selected by the phase's rendered egress NetworkPolicy.
        "warden.dev/phase": phase.as_str(),
    });
    let annotations = json!({
        "warden.dev/action-kind": action.kind.as_str(),
        "warden.dev/target": format!("{}/{}", action.namespace, action.target),
    });
    let meta = |ns: &str| json!({ "name": name, "namespace": ns, "labels": labels, "annotations": annotations });
    let service_account: ServiceAccount = typed(
        "ServiceAccount",
        json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": meta(&settings.namespace),
            "automountServiceAccountToken": false,
        }),
    )?;
    let role: Role = typed(
        "Role",
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": meta(&action.namespace),
            "rules": role_rules(action),
        }),
    )?;
    let role_binding: RoleBinding = typed(
        "RoleBinding",
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": meta(&action.namespace),
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name },
            "subjects": [{ "kind": "ServiceAccount", "name": name, "namespace": settings.namespace }],
        }),
    )?;
    let job: Job = typed(
        "Job",
        json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": meta(&settings.namespace),
            "spec": {
                "backoffLimit": 0,
                "activeDeadlineSeconds": settings.timeout_seconds,
                "ttlSecondsAfterFinished": 600,
                "template": {
                    "metadata": { "labels": labels, "annotations": annotations },
                    "spec": {
                        "serviceAccountName": name,
                        // The job talks to the API as its own service
                        // account; the token is projected with a short life.
                        "automountServiceAccountToken": false,
                        "restartPolicy": "Never",
                        "enableServiceLinks": false,
                        "securityContext": {
                            "runAsNonRoot": true,
                            "runAsUser": settings.run_as_user,
                            "runAsGroup": settings.run_as_user,
                            "fsGroup": settings.run_as_user,
                            "seccompProfile": { "type": "RuntimeDefault" },
                        },
                        "containers": [{
                            "name": "remediate",
                            "image": settings.image,
                            "imagePullPolicy": "Always",
                            "command": ["warden"],
                            "args": action_args(action),
                            "securityContext": {
                                "allowPrivilegeEscalation": false,
                                "privileged": false,
                                "readOnlyRootFilesystem": true,
                                "runAsNonRoot": true,
                                "capabilities": { "drop": ["ALL"] },
                                "seccompProfile": { "type": "RuntimeDefault" },
                            },
                            "resources": {
                                "requests": { "cpu": "50m", "memory": "64Mi" },
                                "limits": { "cpu": "200m", "memory": "128Mi" },
                            },
                            "volumeMounts": [{
                                "name": "kube-api-access",
                                "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                                "readOnly": true,
                            }],
                        }],
                        "volumes": [{
                            "name": "kube-api-access",
                            "projected": {
                                "defaultMode": 0o444,
                                "sources": [
                                    { "serviceAccountToken": { "path": "token", "expirationSeconds": 600 } },
                                    { "configMap": { "name": "kube-root-ca.crt", "items": [{ "key": "ca.crt", "path": "ca.crt" }] } },
                                    { "downwardAPI": { "items": [{ "path": "namespace", "fieldRef": { "fieldPath": "metadata.namespace" } }] } },
                                ],
                            },
                        }],
                    },
                },
            },
        }),
    )?;
    Ok(RemediationObjects {
        name,
        service_account,
        role,
        role_binding,
        job,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(kind: ActionKind) -> ProposedAction {
        ProposedAction {
            kind,
            namespace: "shop".into(),
            target: "checkout".into(),
            replicas: (kind == ActionKind::ScaleDeployment).then_some(3),
        }
    }

    #[test]
    fn args_round_trip() {
        for k in ActionKind::ALL {
            let a = action(k);
            assert_eq!(parse_action_args(&action_args(&a)).unwrap(), a);
        }
        assert!(parse_action_args(&["--kind".into(), "delete_namespace".into()]).is_err());
    }

    #[test]
    fn bad_input_is_refused_before_anything_is_built() {
        let s = JobSettings::default();
        let mut a = action(ActionKind::ScaleDeployment);
        a.replicas = Some(500);
        assert!(matches!(
            build(&a, "act-1", "inv-1", TrustPhase::Remediate, &s),
            Err(ObjectsError::Replicas { .. })
        ));
        let mut a = action(ActionKind::RestartPod);
        a.target = "../etc".into();
        assert!(matches!(
            build(&a, "act-1", "inv-1", TrustPhase::Remediate, &s),
            Err(ObjectsError::Name { .. })
        ));
        let a = action(ActionKind::RestartPod);
        assert!(matches!(
            build(&a, "act-X/", "inv-1", TrustPhase::Remediate, &s),
            Err(ObjectsError::ActionId(_))
        ));
    }

    #[test]
    fn the_role_grants_exactly_the_actions_permissions_on_the_target() {
        let s = JobSettings::default();
        for k in ActionKind::ALL {
            let o = build(&action(k), "act-01abc", "inv-1", TrustPhase::Remediate, &s).unwrap();
            assert_eq!(o.role.metadata.namespace.as_deref(), Some("shop"));
            let rules = o.role.rules.unwrap_or_default();
            assert_eq!(rules.len(), k.permissions().len());
            for (r, p) in rules.iter().zip(k.permissions()) {
                assert_eq!(r.verbs, p.verbs.to_vec());
                assert_eq!(r.resources.as_deref(), Some(&[p.resource.to_string()][..]));
                let names = r.resource_names.clone().unwrap_or_default();
                if p.named {
                    assert_eq!(names, vec!["checkout".to_string()]);
                } else {
                    assert!(names.is_empty());
                }
            }
            let spec = o.job.spec.unwrap();
            assert_eq!(spec.backoff_limit, Some(0));
            let pod = spec.template.spec.unwrap();
            assert_eq!(pod.service_account_name.as_deref(), Some(o.name.as_str()));
        }
    }
}
