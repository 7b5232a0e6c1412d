//! Reading the live state from a cluster and applying a fix to it.
//!
//! Objects are handled as untyped JSON (`DynamicObject`) so that what was
//! read is compared exactly as the API server returned it.

use std::path::Path;

pub use kube::Client;
use kube::Config;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;

use crate::fix::Fix;
use crate::object::ObjectRef;
use crate::{Error, Result};

/// (group, version, kind, plural, namespaced) of the kinds drift reads.
const RESOURCES: [(&str, &str, &str, &str, bool); 6] = [
    ("rbac.authorization.k8s.io", "v1", "Role", "roles", true),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        true,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
    ),
    (
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        true,
    ),
    ("", "v1", "ServiceAccount", "serviceaccounts", true),
];

fn kube_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let what = what.into();
    move |e| Error::Kube {
        what,
        message: e.to_string(),
    }
}

/// A client for the cluster of a kubeconfig file's current context.
pub async fn client_from_kubeconfig(path: &Path) -> Result<Client> {
    let kubeconfig = Kubeconfig::read_from(path).map_err(|e| Error::Kube {
        what: format!("reading kubeconfig {}", path.display()),
        message: e.to_string(),
    })?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| Error::Kube {
            what: format!("kubeconfig {}", path.display()),
            message: e.to_string(),
        })?;
    Client::try_from(config).map_err(kube_err("building the client"))
}

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// Every Role, ClusterRole, binding, NetworkPolicy and ServiceAccount.
pub async fn read_live(client: &Client) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for (group, version, kind, plural, _) in RESOURCES {
        let ar = resource(group, version, kind, plural);
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(kube_err(format!("listing {plural}")))?;
        for item in list.items {
            let mut v = serde_json::to_value(&item).map_err(|e| Error::Kube {
                what: format!("reading {plural}"),
                message: e.to_string(),
            })?;
            // List items come without their type; put it back.
            if let Some(obj) = v.as_object_mut() {
                obj.insert("apiVersion".into(), Value::String(ar.api_version.clone()));
                obj.insert("kind".into(), Value::String(kind.into()));
            }
            out.push(v);
        }
    }
    Ok(out)
}

fn api_for(client: &Client, r: &ObjectRef) -> Result<Api<DynamicObject>> {
    let (group, version, kind, plural, namespaced) = RESOURCES
        .iter()
        .find(|(g, _, k, _, _)| *g == r.group() && *k == r.kind)
        .copied()
        .ok_or_else(|| Error::Kube {
            what: format!("applying {r}"),
            message: "drift only manages RBAC, NetworkPolicy and ServiceAccount objects".into(),
        })?;
    let ar = resource(group, version, kind, plural);
    Ok(match (&r.namespace, namespaced) {
        (Some(ns), true) => Api::namespaced_with(client.clone(), ns, &ar),
        (None, false) => Api::all_with(client.clone(), &ar),
        _ => {
            return Err(Error::Kube {
                what: format!("applying {r}"),
                message: if namespaced {
                    "a namespaced kind without metadata.namespace".into()
                } else {
                    "a cluster-scoped kind with metadata.namespace".into()
                },
            });
        }
    })
}

/// What applying a fix did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    pub created: Vec<ObjectRef>,
    pub replaced: Vec<ObjectRef>,
    pub deleted: Vec<ObjectRef>,
}

/// Applies the Kubernetes part of a fix: creates or replaces each object
/// (carrying the live resourceVersion, so a concurrent change fails with a
/// conflict instead of being overwritten) and deletes the others. Every
/// object is checked before the first request, so bad input changes nothing.
pub async fn apply(client: &Client, fix: &Fix) -> Result<Applied> {
    let mut planned = Vec::new();
    for v in &fix.apply {
        let r = ObjectRef::of(v).map_err(|message| Error::Manifest {
            origin: "fix".into(),
            message,
        })?;
        let api = api_for(client, &r)?;
        let obj: DynamicObject =
            serde_json::from_value(v.clone()).map_err(|e| Error::Manifest {
                origin: format!("fix: {r}"),
                message: e.to_string(),
            })?;
        planned.push((r, api, obj));
    }
    let deletes = fix
        .delete
        .iter()
        .map(|r| api_for(client, r).map(|api| (r.clone(), api)))
        .collect::<Result<Vec<_>>>()?;
    let mut applied = Applied::default();
    for (r, api, mut obj) in planned {
        obj.metadata.resource_version = None;
        match api
            .get_opt(&r.name)
            .await
            .map_err(kube_err(format!("reading {r}")))?
        {
            Some(existing) => {
                obj.metadata.resource_version = existing.metadata.resource_version;
                api.replace(&r.name, &PostParams::default(), &obj)
                    .await
                    .map_err(kube_err(format!("replacing {r}")))?;
                applied.replaced.push(r);
            }
            None => {
                api.create(&PostParams::default(), &obj)
                    .await
                    .map_err(kube_err(format!("creating {r}")))?;
                applied.created.push(r);
            }
        }
    }
    for (r, api) in deletes {
        match api.delete(&r.name, &DeleteParams::default()).await {
            Ok(_) => applied.deleted.push(r),
            // Already gone is what we wanted.
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(kube_err(format!("deleting {r}"))(e)),
        }
    }
    Ok(applied)
}
