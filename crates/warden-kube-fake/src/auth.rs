//! Bearer-token authentication and TokenReview, modelled on the real
//! service-account token authenticator: audiences must intersect, expired
//! tokens fail, and a token stops working once its ServiceAccount (or the pod
//! it is bound to) is deleted.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::kinds;
use crate::store::Store;

/// The audience the fake API server itself accepts, like the default
/// `--api-audiences` of a cluster.
pub const API_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";

/// Who a registered service-account token belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceAccountIdentity {
    /// Namespace of the ServiceAccount.
    pub namespace: String,
    /// Name of the ServiceAccount.
    pub name: String,
    /// Audiences the token was issued for; empty means the API server's own
    /// audience ([`API_AUDIENCE`]), as for a TokenRequest without audiences.
    pub audiences: Vec<String>,
    /// Pod the token is bound to; the token stops authenticating when that
    /// pod no longer exists.
    pub pod_name: Option<String>,
    /// Expiry; `None` never expires.
    pub expires_at: Option<DateTime<Utc>>,
}

impl ServiceAccountIdentity {
    /// A token for `namespace/name` with the API audience, unbound, without
    /// expiry.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ServiceAccountIdentity {
            namespace: namespace.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    /// Sets the audiences.
    pub fn with_audiences<I, S>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.audiences = audiences.into_iter().map(Into::into).collect();
        self
    }

    /// Binds the token to a pod.
    pub fn bound_to_pod(mut self, pod: impl Into<String>) -> Self {
        self.pod_name = Some(pod.into());
        self
    }

    /// Sets the expiry.
    pub fn expiring_at(mut self, at: DateTime<Utc>) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// `system:serviceaccount:<namespace>:<name>`.
    pub fn username(&self) -> String {
        format!("system:serviceaccount:{}:{}", self.namespace, self.name)
    }

    fn effective_audiences(&self) -> Vec<String> {
        if self.audiences.is_empty() {
            vec![API_AUDIENCE.to_string()]
        } else {
            self.audiences.clone()
        }
    }
}

/// An authenticated user, as in `TokenReview.status.user`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// User name (`system:serviceaccount:ns:sa` for service accounts).
    pub username: String,
    /// Stable id (the ServiceAccount's uid for service accounts).
    pub uid: String,
    /// Groups, including `system:authenticated`.
    pub groups: Vec<String>,
    /// Extra attributes (`authentication.kubernetes.io/pod-name`, ...).
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// A plain user with the given groups (plus `system:authenticated`).
    pub fn new<I, S>(username: impl Into<String>, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut groups: Vec<String> = groups.into_iter().map(Into::into).collect();
        if !groups.iter().any(|g| g == "system:authenticated") {
            groups.push("system:authenticated".into());
        }
        UserInfo {
            username: username.into(),
            groups,
            ..Default::default()
        }
    }

    /// Whether the user is in `system:masters` (bypasses RBAC).
    pub fn is_master(&self) -> bool {
        self.groups.iter().any(|g| g == "system:masters")
    }

    fn to_json(&self) -> Value {
        let mut v = json!({"username": self.username, "groups": self.groups});
        if let Some(m) = v.as_object_mut() {
            if !self.uid.is_empty() {
                m.insert("uid".into(), json!(self.uid));
            }
            if !self.extra.is_empty() {
                m.insert("extra".into(), json!(self.extra));
            }
        }
        v
    }
}

/// What a registered token stands for.
#[derive(Debug, Clone)]
pub(crate) enum TokenEntry {
    Admin,
    ServiceAccount(ServiceAccountIdentity),
    User(UserInfo),
}

pub(crate) fn admin_user() -> UserInfo {
    UserInfo::new("system:admin", ["system:masters"])
}

/// Authenticates `entry` for `audiences`. Returns the user and the audiences
/// the token is valid for, or the reason it is not.
pub(crate) fn authenticate(
    entry: &TokenEntry,
    audiences: &[String],
    store: &Store,
) -> Result<(UserInfo, Vec<String>), String> {
    match entry {
        TokenEntry::Admin => Ok((admin_user(), audiences.to_vec())),
        TokenEntry::User(u) => Ok((u.clone(), audiences.to_vec())),
        TokenEntry::ServiceAccount(sa) => {
            let token_aud = sa.effective_audiences();
            let matched: Vec<String> = audiences
                .iter()
                .filter(|a| token_aud.contains(a))
                .cloned()
                .collect();
            if matched.is_empty() {
                return Err(format!(
                    "[invalid bearer token, token audiences {:?} is invalid for the target audiences {:?}]",
                    token_aud, audiences
                ));
            }
            if sa.expires_at.is_some_and(|at| at <= Utc::now()) {
                return Err("[invalid bearer token, service account token has expired]".into());
            }
            let sa_kind = kinds::lookup("serviceaccounts").ok_or("serviceaccounts kind missing")?;
            let sa_obj = store
                .get(sa_kind, Some(&sa.namespace), &sa.name)
                .map_err(|_| {
                    "[invalid bearer token, service account token has been invalidated]".to_string()
                })?;
            let mut user = UserInfo {
                username: sa.username(),
                uid: crate::meta::uid(&sa_obj).to_string(),
                groups: vec![
                    "system:serviceaccounts".into(),
                    format!("system:serviceaccounts:{}", sa.namespace),
                    "system:authenticated".into(),
                ],
                extra: BTreeMap::new(),
            };
            if let Some(pod_name) = &sa.pod_name {
                let pod_kind = kinds::lookup("pods").ok_or("pods kind missing")?;
                let pod = store
                    .get(pod_kind, Some(&sa.namespace), pod_name)
                    .map_err(|_| {
                        "[invalid bearer token, service account token has been invalidated]"
                            .to_string()
                    })?;
                user.extra.insert(
                    "authentication.kubernetes.io/pod-name".into(),
                    vec![pod_name.clone()],
                );
                user.extra.insert(
                    "authentication.kubernetes.io/pod-uid".into(),
                    vec![crate::meta::uid(&pod).to_string()],
                );
                if let Some(node) = crate::meta::str_at(&pod, "/spec/nodeName") {
                    user.extra.insert(
                        "authentication.kubernetes.io/node-name".into(),
                        vec![node.to_string()],
                    );
                }
            }
            Ok((user, matched))
        }
    }
}

/// Answers a TokenReview body.
pub(crate) fn token_review(body: &Value, entry: Option<&TokenEntry>, store: &Store) -> Value {
    let requested: Vec<String> = body
        .pointer("/spec/audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .filter(|a: &Vec<String>| !a.is_empty())
        .unwrap_or_else(|| vec![API_AUDIENCE.to_string()]);
    let status = match entry {
        None => {
            json!({"authenticated": false, "error": "[invalid bearer token, token lookup failed]"})
        }
        Some(entry) => match authenticate(entry, &requested, store) {
            Ok((user, audiences)) => json!({
                "authenticated": true,
                "user": user.to_json(),
                "audiences": audiences,
            }),
            Err(e) => json!({"authenticated": false, "error": e}),
        },
    };
    json!({
        "kind": "TokenReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "spec": body.get("spec").cloned().unwrap_or(json!({})),
        "status": status,
    })
}
