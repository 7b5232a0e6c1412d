//! Object identity, the per-side index, and label selectors.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Error, Result};

/// Which object a finding or a fix concerns.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    /// Reads apiVersion, kind, metadata.namespace and metadata.name.
    pub fn of(v: &Value) -> Result<ObjectRef, String> {
        let s = |p: &str| v.pointer(p).and_then(Value::as_str);
        let api_version = s("/apiVersion").ok_or("missing apiVersion")?.to_string();
        let kind = s("/kind").ok_or("missing kind")?.to_string();
        let name = s("/metadata/name")
            .filter(|n| !n.is_empty())
            .ok_or_else(|| format!("{kind} without metadata.name"))?
            .to_string();
        let namespace = s("/metadata/namespace")
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        Ok(ObjectRef {
            api_version,
            kind,
            namespace,
            name,
        })
    }

    /// The API group ("" for core), which with kind, namespace and name
    /// identifies an object whatever version it was read in.
    pub fn group(&self) -> &str {
        self.api_version
            .rsplit_once('/')
            .map_or("", |(group, _)| group)
    }

    pub fn key(&self) -> Key {
        (
            self.group().to_string(),
            self.kind.clone(),
            self.namespace.clone().unwrap_or_default(),
            self.name.clone(),
        )
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// (group, kind, namespace, name).
pub type Key = (String, String, String, String);

/// The kinds drift looks at.
pub const KINDS: [(&str, &str); 6] = [
    ("rbac.authorization.k8s.io", "Role"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("", "ServiceAccount"),
];

/// The objects of one side, by identity.
#[derive(Debug, Default)]
pub struct Index {
    pub objects: BTreeMap<Key, (ObjectRef, Value)>,
}

impl Index {
    /// Indexes the objects of the kinds drift looks at; a duplicate is an
    /// error (two definitions of one object cannot both be true).
    pub fn new(objects: &[Value], side: &str) -> Result<Index> {
        let mut idx = Index::default();
        for (i, v) in objects.iter().enumerate() {
            let r = ObjectRef::of(v).map_err(|message| Error::Manifest {
                origin: format!("{side} object #{}", i + 1),
                message,
            })?;
            if !KINDS.contains(&(r.group(), r.kind.as_str())) {
                continue;
            }
            let key = r.key();
            if idx.objects.contains_key(&key) {
                return Err(Error::Manifest {
                    origin: format!("{side} state"),
                    message: format!("{r} is defined twice"),
                });
            }
            idx.objects.insert(key, (r, v.clone()));
        }
        Ok(idx)
    }

    pub fn of_kind<'a>(
        &'a self,
        kind: &'a str,
    ) -> impl Iterator<Item = (&'a ObjectRef, &'a Value)> {
        self.objects
            .values()
            .filter(move |(r, _)| r.kind == kind)
            .map(|(r, v)| (r, v))
    }

    pub fn get(
        &self,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<(&ObjectRef, &Value)> {
        let group = KINDS
            .iter()
            .find(|(_, k)| *k == kind)
            .map_or("", |(g, _)| g);
        self.objects
            .get(&(
                group.to_string(),
                kind.to_string(),
                namespace.unwrap_or_default().to_string(),
                name.to_string(),
            ))
            .map(|(r, v)| (r, v))
    }
}

/// metadata.labels as a map.
pub fn labels(v: &Value) -> BTreeMap<String, String> {
    string_map(v.pointer("/metadata/labels"))
}

pub fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Strings of a JSON array (absent: empty).
pub fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A Kubernetes label selector (matchLabels + matchExpressions).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Selector {
    pub match_labels: BTreeMap<String, String>,
    /// (key, operator, sorted values)
    pub expressions: Vec<(String, String, Vec<String>)>,
}

impl Selector {
    pub fn parse(v: Option<&Value>) -> Result<Selector, String> {
        let match_labels = string_map(v.and_then(|v| v.get("matchLabels")));
        let mut expressions = Vec::new();
        for e in v
            .and_then(|v| v.get("matchExpressions"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = e
                .get("key")
                .and_then(Value::as_str)
                .ok_or("matchExpressions entry without key")?;
            let op = e
                .get("operator")
                .and_then(Value::as_str)
                .ok_or("matchExpressions entry without operator")?;
            if !["In", "NotIn", "Exists", "DoesNotExist"].contains(&op) {
                return Err(format!("unknown selector operator {op:?}"));
            }
            let mut values = strings(e.get("values"));
            values.sort();
            values.dedup();
            expressions.push((key.to_string(), op.to_string(), values));
        }
        expressions.sort();
        expressions.dedup();
        Ok(Selector {
            match_labels,
            expressions,
        })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.expressions.iter().all(|(k, op, values)| {
                let got = labels.get(k);
                match op.as_str() {
                    "In" => got.is_some_and(|g| values.contains(g)),
                    "NotIn" => got.is_none_or(|g| !values.contains(g)),
                    "Exists" => got.is_some(),
                    _ => got.is_none(),
                }
            })
    }

    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.expressions.is_empty()
    }

    /// Labels of a pod this selector selects, standing for its class.
    pub fn representative(&self) -> BTreeMap<String, String> {
        let mut labels = self.match_labels.clone();
        for (k, op, values) in &self.expressions {
            match op.as_str() {
                "In" => {
                    if let Some(v) = values.first() {
                        labels.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
                "Exists" => {
                    labels.entry(k.clone()).or_default();
                }
                _ => {}
            }
        }
        labels
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self
            .match_labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        for (k, op, values) in &self.expressions {
            parts.push(match op.as_str() {
                "Exists" => k.clone(),
                "DoesNotExist" => format!("!{k}"),
                "In" => format!("{k} in ({})", values.join(",")),
                _ => format!("{k} notin ({})", values.join(",")),
            });
        }
        if parts.is_empty() {
            f.write_str("{}")
        } else {
            write!(f, "{{{}}}", parts.join(", "))
        }
    }
}

/// The object with the fields the API server owns removed, for "has this
/// object changed" comparisons.
pub fn normalized(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(obj) = v.as_object_mut() {
        obj.remove("status");
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.retain(|k, _| ["name", "namespace", "labels"].contains(&k.as_str()));
            if meta
                .get("labels")
                .and_then(Value::as_object)
                .is_some_and(|l| l.is_empty())
            {
                meta.remove("labels");
            }
        }
        // The version the object was read in is not a change.
        obj.remove("apiVersion");
    }
    v
}
