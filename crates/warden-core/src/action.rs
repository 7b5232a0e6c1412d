//! Remediation actions: the closed set of things an agent may ever propose,
//! and exactly which Kubernetes permissions each one needs.
//!
//! One table serves three places that must agree: the action gate (what a
//! phase may do), the GitOps renderer (the RBAC of the remediation service
//! account) and the remediation job (the one Role it runs with).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Delete one pod so its controller recreates it.
    RestartPod,
    /// `kubectl rollout restart deployment/NAME`.
    RolloutRestart,
    /// Set a deployment's replicas, within configured bounds.
    ScaleDeployment,
    /// Roll a deployment back to its previous ReplicaSet.
    RollbackDeployment,
}

/// One RBAC rule an action needs, scoped to a single named object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionPermission {
    /// API group ("" for the core group).
    pub api_group: &'static str,
    /// Resource, with subresource where one is used ("deployments/scale").
    pub resource: &'static str,
    pub verbs: &'static [&'static str],
    /// Whether the rule can be restricted to the target's name. Rules that
    /// read related objects (a deployment's ReplicaSets) cannot know their
    /// names in advance.
    pub named: bool,
}

impl ActionKind {
    pub const ALL: [ActionKind; 4] = [
        ActionKind::RestartPod,
        ActionKind::RolloutRestart,
        ActionKind::ScaleDeployment,
        ActionKind::RollbackDeployment,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::RestartPod => "restart_pod",
            ActionKind::RolloutRestart => "rollout_restart",
            ActionKind::ScaleDeployment => "scale_deployment",
            ActionKind::RollbackDeployment => "rollback_deployment",
        }
    }

    /// The Kubernetes kind the action targets.
    pub fn target_kind(self) -> &'static str {
        match self {
            ActionKind::RestartPod => "Pod",
            _ => "Deployment",
        }
    }

    /// Exactly the permissions the action needs on its target, nothing more.
    pub fn permissions(self) -> &'static [ActionPermission] {
        const GET: &[&str] = &["get"];
        const GET_PATCH: &[&str] = &["get", "patch"];
        match self {
            ActionKind::RestartPod => &[ActionPermission {
                api_group: "",
                resource: "pods",
                verbs: &["get", "delete"],
                named: true,
            }],
            ActionKind::RolloutRestart => &[ActionPermission {
                api_group: "apps",
                resource: "deployments",
                verbs: GET_PATCH,
                named: true,
            }],
            ActionKind::ScaleDeployment => &[
                ActionPermission {
                    api_group: "apps",
                    resource: "deployments",
                    verbs: GET,
                    named: true,
                },
                ActionPermission {
                    api_group: "apps",
                    resource: "deployments/scale",
                    verbs: GET_PATCH,
                    named: true,
                },
            ],
            ActionKind::RollbackDeployment => &[
                ActionPermission {
                    api_group: "apps",
                    resource: "deployments",
                    verbs: GET_PATCH,
                    named: true,
                },
                ActionPermission {
                    api_group: "apps",
                    resource: "replicasets",
                    verbs: &["list"],
                    named: false,
                },
            ],
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ActionKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ActionKind::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown action {s:?}; expected restart_pod, rollout_restart, scale_deployment or rollback_deployment"
                )
            })
    }
}

/// An action as the agent proposes it: structured fields only. Free text
/// from evidence never becomes a field here without passing the gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposedAction {
    pub kind: ActionKind,
    pub namespace: String,
    /// Name of the pod or deployment.
    pub target: String,
    /// For `scale_deployment`: the desired replica count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in ActionKind::ALL {
            assert_eq!(a.as_str().parse::<ActionKind>().unwrap(), a);
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(json, format!("\"{}\"", a.as_str()));
        }
        assert!("delete_namespace".parse::<ActionKind>().is_err());
    }

    #[test]
    fn no_action_touches_secrets_or_namespaces() {
        for a in ActionKind::ALL {
            for p in a.permissions() {
                assert!(!p.resource.starts_with("secrets"), "{a}");
                assert!(!p.resource.starts_with("namespaces"), "{a}");
                assert!(!p.verbs.contains(&"*"), "{a}");
            }
        }
    }
}
