//! The object store: one map keyed by (group, plural, namespace, name)
//! holding JSON, a global resourceVersion counter, a bounded event history for
//! watches, and the garbage collector for owner references.
//!
//! All operations run under one lock and never await, so every write is
//! atomic and watch events come out in resourceVersion order.

use std::collections::{BTreeMap, VecDeque};

use serde_json::{Value, json};

use crate::defaults;
use crate::kinds::{self, DefaultPropagation, KindInfo};
use crate::meta::{self, ensure_object, metadata_mut, set_str};
use crate::patch;
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::{self, ApiError};

/// Identity of a stored object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ObjKey {
    pub group: &'static str,
    pub plural: &'static str,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    pub name: String,
}

impl ObjKey {
    pub fn new(kind: &KindInfo, namespace: Option<&str>, name: &str) -> Self {
        ObjKey {
            group: kind.group,
            plural: kind.plural,
            namespace: namespace.unwrap_or("").to_string(),
            name: name.to_string(),
        }
    }
}

/// Watch event types as they appear on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, kept in the bounded history that watches read from.
#[derive(Debug, Clone)]
pub(crate) struct StoredEvent {
    pub rv: u64,
    pub kind: EventType,
    pub group: &'static str,
    pub plural: &'static str,
    pub namespace: String,
    pub object: Value,
    /// The object before a MODIFIED change, so a label-filtered watch can turn
    /// "stopped matching" into DELETED and "started matching" into ADDED, as
    /// the real watch cache does.
    pub previous: Option<Value>,
}

/// How a DELETE treats dependents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Propagation {
    Background,
    Foreground,
    Orphan,
}

impl Propagation {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        match s {
            "Background" => Ok(Propagation::Background),
            "Foreground" => Ok(Propagation::Foreground),
            "Orphan" => Ok(Propagation::Orphan),
            other => Err(ApiError::bad_request(format!(
                "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
            ))),
        }
    }
}

/// Which part of an object a write targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Main,
    Status,
}

/// The patch flavours the API server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchType {
    Merge,
    Strategic,
    Json,
    Apply,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Result<Self, ApiError> {
        let base = ct.split(';').next().unwrap_or("").trim();
        match base {
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(PatchType::Apply),
            _ => Err(ApiError::unsupported_media_type(ct)),
        }
    }
}

/// The mutable state behind the lock.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    pub objects: BTreeMap<ObjKey, Value>,
    pub rv: u64,
    pub history: VecDeque<StoredEvent>,
    pub history_limit: usize,
    /// Every event with `rv > floor` is still in `history`.
    pub floor: u64,
    /// Bumped by [`Store::compact`]; open watches started in an earlier
    /// epoch end with 410 Gone.
    pub epoch: u64,
}

impl Store {
    pub fn new(history_limit: usize) -> Self {
        Store {
            objects: BTreeMap::new(),
            rv: 0,
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            floor: 0,
            epoch: 0,
        }
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn record(&mut self, kind: EventType, key: &ObjKey, object: Value, previous: Option<Value>) {
        let rv = meta::resource_version(&object).parse().unwrap_or(self.rv);
        self.history.push_back(StoredEvent {
            rv,
            kind,
            group: key.group,
            plural: key.plural,
            namespace: key.namespace.clone(),
            object,
            previous,
        });
        while self.history.len() > self.history_limit {
            if let Some(old) = self.history.pop_front() {
                self.floor = old.rv;
            }
        }
    }

    /// Drops all retained history: the next watch from an older
    /// resourceVersion gets 410 Gone.
    pub fn compact(&mut self) {
        self.history.clear();
        self.floor = self.rv;
        self.epoch += 1;
    }

    pub fn get(&self, kind: &KindInfo, ns: Option<&str>, name: &str) -> Result<Value, ApiError> {
        self.objects
            .get(&ObjKey::new(kind, ns, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(kind, name))
    }

    /// Lists objects of a kind, optionally in one namespace, filtered.
    pub fn list(
        &self,
        kind: &KindInfo,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|(k, _)| k.group == kind.group && k.plural == kind.plural)
            .filter(|(k, _)| ns.is_none_or(|ns| k.namespace == ns))
            .map(|(_, v)| v)
            .filter(|v| labels.matches_object(v) && fields.matches_object(v))
            .cloned()
            .collect()
    }

    fn namespace_usable(&self, ns: &str) -> Result<(), ApiError> {
        let ns_kind =
            kinds::lookup("namespaces").ok_or_else(|| ApiError::no_route("namespaces"))?;
        let nsobj = self
            .objects
            .get(&ObjKey::new(ns_kind, None, ns))
            .ok_or_else(|| ApiError::not_found(ns_kind, ns))?;
        if nsobj.pointer("/metadata/deletionTimestamp").is_some() {
            return Err(ApiError {
                code: 403,
                reason: "Forbidden".into(),
                message: format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                ),
                details: None,
            });
        }
        Ok(())
    }

    /// Creates an object (POST). `ns` is the namespace from the URL.
    pub fn create(
        &mut self,
        kind: &'static KindInfo,
        ns: Option<&str>,
        mut obj: Value,
    ) -> Result<Value, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        if let Some(body_kind) = obj.get("kind").and_then(Value::as_str)
            && body_kind != kind.kind
        {
            return Err(ApiError::bad_request(format!(
                "the kind of the object ({body_kind}) does not match the resource ({})",
                kind.kind
            )));
        }
        let body_ns = meta::namespace(&obj).to_string();
        let ns = if kind.namespaced {
            let ns = ns.unwrap_or("");
            if !body_ns.is_empty() && body_ns != ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            self.namespace_usable(ns)?;
            Some(ns.to_string())
        } else {
            None
        };
        let mut name = meta::name(&obj).to_string();
        if name.is_empty() {
            let prefix = meta::str_at(&obj, "/metadata/generateName")
                .unwrap_or("")
                .to_string();
            if prefix.is_empty() {
                return Err(ApiError::invalid(
                    kind,
                    "",
                    "metadata.name",
                    "FieldValueRequired",
                    "Required value: name or generateName is required",
                ));
            }
            for _ in 0..8 {
                name = format!("{prefix}{}", meta::random_suffix());
                if !self
                    .objects
                    .contains_key(&ObjKey::new(kind, ns.as_deref(), &name))
                {
                    break;
                }
            }
        }
        let key = ObjKey::new(kind, ns.as_deref(), &name);
        if self.objects.contains_key(&key) {
            return Err(ApiError::already_exists(kind, &name));
        }
        {
            let root = ensure_object(&mut obj);
            set_str(root, "apiVersion", kind.api_version());
            set_str(root, "kind", kind.kind);
        }
        let uid = meta::new_uid();
        {
            let m = metadata_mut(&mut obj);
            set_str(m, "name", name.clone());
            if let Some(ns) = &ns {
                set_str(m, "namespace", ns.clone());
            } else {
                m.remove("namespace");
            }
            set_str(m, "uid", uid);
            set_str(m, "creationTimestamp", meta::now_rfc3339());
            for field in [
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "resourceVersion",
                "managedFields",
            ] {
                m.remove(field);
            }
            if kind.tracks_generation {
                m.insert("generation".into(), json!(1));
            } else {
                m.remove("generation");
            }
        }
        if kind.plural == "pods" {
            self.admit_pod_service_account(&mut obj, ns.as_deref().unwrap_or(""), &name)?;
        }
        defaults::on_create(kind, &mut obj);
        defaults::validate(kind, &obj, None)?;
        let rv = self.next_rv();
        set_str(metadata_mut(&mut obj), "resourceVersion", rv.to_string());
        self.objects.insert(key.clone(), obj.clone());
        self.record(EventType::Added, &key, obj.clone(), None);
        if kind.plural == "namespaces" {
            self.on_namespace_created(&name);
        }
        Ok(obj)
    }

    /// The ServiceAccount admission plugin: the pod's ServiceAccount must
    /// exist, `serviceAccountName` is filled in, and unless automounting is
    /// off (on the pod, else on the ServiceAccount) the API token is
    /// mounted at `/var/run/secrets/kubernetes.io/serviceaccount`.
    fn admit_pod_service_account(
        &self,
        pod: &mut Value,
        ns: &str,
        name: &str,
    ) -> Result<(), ApiError> {
        let sa_name = meta::str_at(pod, "/spec/serviceAccountName")
            .or_else(|| meta::str_at(pod, "/spec/serviceAccount"))
            .filter(|s| !s.is_empty())
            .unwrap_or("default")
            .to_string();
        let sa_kind = kinds::lookup("serviceaccounts")
            .ok_or_else(|| ApiError::no_route("serviceaccounts"))?;
        let Some(sa) = self.objects.get(&ObjKey::new(sa_kind, Some(ns), &sa_name)) else {
            return Err(ApiError {
                code: 403,
                reason: "Forbidden".into(),
                message: format!(
                    "pods \"{name}\" is forbidden: error looking up service account {ns}/{sa_name}: serviceaccount \"{sa_name}\" not found"
                ),
                details: Some(json!({"name": name, "kind": "pods"})),
            });
        };
        let automount = pod
            .pointer("/spec/automountServiceAccountToken")
            .and_then(Value::as_bool)
            .or_else(|| {
                sa.get("automountServiceAccountToken")
                    .and_then(Value::as_bool)
            })
            .unwrap_or(true);
        let spec = crate::meta::child_mut(ensure_object(pod), "spec");
        set_str(spec, "serviceAccountName", sa_name.clone());
        set_str(spec, "serviceAccount", sa_name);
        if !automount {
            return Ok(());
        }
        const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
        let volume = format!("kube-api-access-{}", meta::random_suffix());
        let mut mounted = false;
        for list in ["initContainers", "containers"] {
            if let Some(Value::Array(containers)) = spec.get_mut(list) {
                for c in containers.iter_mut() {
                    let mounts = ensure_object(c).entry("volumeMounts").or_insert(json!([]));
                    if let Value::Array(mounts) = mounts {
                        if mounts
                            .iter()
                            .any(|m| m.get("mountPath").and_then(Value::as_str) == Some(MOUNT_PATH))
                        {
                            continue;
                        }
                        mounts.push(
                            json!({"name": volume, "readOnly": true, "mountPath": MOUNT_PATH}),
                        );
                        mounted = true;
                    }
                }
            }
        }
        if mounted {
            let volumes = spec.entry("volumes").or_insert(json!([]));
            if let Value::Array(volumes) = volumes {
                volumes.push(json!({
                    "name": volume,
                    "projected": {
                        "defaultMode": 420,
                        "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
                        ]
                    }
                }));
            }
        }
        Ok(())
    }

    /// The service-account controller creates `default` in every namespace.
    fn on_namespace_created(&mut self, ns: &str) {
        if let Some(sa) = kinds::lookup("serviceaccounts") {
            let _ = self.create(sa, Some(ns), json!({"metadata": {"name": "default"}}));
        }
    }

    /// Stores `new` as the next version of the object at `key`, enforcing the
    /// rules every write shares. Returns the stored object.
    fn write(
        &mut self,
        kind: &'static KindInfo,
        key: &ObjKey,
        old: &Value,
        mut new: Value,
        part: Part,
    ) -> Result<Value, ApiError> {
        let name = key.name.clone();
        // Fields a client cannot change through a write.
        {
            let root = ensure_object(&mut new);
            set_str(root, "apiVersion", kind.api_version());
            set_str(root, "kind", kind.kind);
        }
        {
            let old_meta = old.get("metadata").cloned().unwrap_or(json!({}));
            let m = metadata_mut(&mut new);
            set_str(m, "name", name.clone());
            for field in [
                "namespace",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ] {
                match old_meta.get(field) {
                    Some(v) => m.insert(field.to_string(), v.clone()),
                    None => m.remove(field),
                };
            }
        }
        if kind.has_status {
            match part {
                Part::Main => {
                    let root = ensure_object(&mut new);
                    match old.get("status") {
                        Some(s) => root.insert("status".into(), s.clone()),
                        None => root.remove("status"),
                    };
                }
                Part::Status => {
                    // A status write changes only `.status`.
                    let status = new.get("status").cloned();
                    let mut merged = old.clone();
                    let root = ensure_object(&mut merged);
                    match status {
                        Some(s) => root.insert("status".into(), s),
                        None => root.remove("status"),
                    };
                    new = merged;
                }
            }
        }
        // The real server defaults on every write, not only on create.
        defaults::on_create(kind, &mut new);
        defaults::validate(kind, &new, Some(old))?;
        if kind.tracks_generation && new.get("spec") != old.get("spec") {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            metadata_mut(&mut new).insert("generation".into(), json!(generation + 1));
        }
        // A write that changes nothing keeps the resourceVersion and sends
        // no watch event, like the real server.
        let mut comparable = new.clone();
        set_str(
            metadata_mut(&mut comparable),
            "resourceVersion",
            meta::resource_version(old),
        );
        if &comparable == old {
            return Ok(old.clone());
        }
        let rv = self.next_rv();
        set_str(metadata_mut(&mut new), "resourceVersion", rv.to_string());
        // Removing the last finalizer of an object being deleted completes
        // the deletion.
        if new.pointer("/metadata/deletionTimestamp").is_some() && meta::finalizers(&new).is_empty()
        {
            self.objects.remove(key);
            self.record(EventType::Deleted, key, new.clone(), None);
            self.collect_garbage(meta::uid(&new).to_string(), Propagation::Background);
            return Ok(new);
        }
        self.objects.insert(key.clone(), new.clone());
        self.record(EventType::Modified, key, new.clone(), Some(old.clone()));
        Ok(new)
    }

    /// Replaces an object (PUT), with optimistic concurrency on
    /// `metadata.resourceVersion` when the body carries one.
    pub fn update(
        &mut self,
        kind: &'static KindInfo,
        ns: Option<&str>,
        name: &str,
        body: Value,
        part: Part,
    ) -> Result<Value, ApiError> {
        let key = ObjKey::new(kind, ns, name);
        let body_name = meta::name(&body);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let body_ns = meta::namespace(&body);
        if kind.namespaced && !body_ns.is_empty() && Some(body_ns) != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let old = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(kind, name))?;
        let want_rv = meta::resource_version(&body);
        if !want_rv.is_empty() && want_rv != meta::resource_version(&old) {
            return Err(ApiError::conflict(kind, name));
        }
        self.write(kind, &key, &old, body, part)
    }

    /// Patches an object. Apply patches create the object when it is absent.
    pub fn patch(
        &mut self,
        kind: &'static KindInfo,
        ns: Option<&str>,
        name: &str,
        patch_type: PatchType,
        body: &Value,
        part: Part,
    ) -> Result<Value, ApiError> {
        let key = ObjKey::new(kind, ns, name);
        let Some(old) = self.objects.get(&key).cloned() else {
            if patch_type == PatchType::Apply && part == Part::Main {
                let mut obj = body.clone();
                set_str(metadata_mut(&mut obj), "name", name);
                return self.create(kind, ns, obj);
            }
            return Err(ApiError::not_found(kind, name));
        };
        let mut new = old.clone();
        match patch_type {
            PatchType::Merge | PatchType::Strategic | PatchType::Apply => {
                if !body.is_object() {
                    return Err(ApiError::bad_request("the patch must be a JSON object"));
                }
                patch::merge_patch(&mut new, body);
            }
            PatchType::Json => {
                patch::json_patch(&mut new, body).map_err(|e| {
                    ApiError::invalid(
                        kind,
                        name,
                        "patch",
                        "FieldValueInvalid",
                        &format!("Invalid value: {e}"),
                    )
                })?;
            }
        }
        // A patch that names a resourceVersion is a precondition.
        let want_rv = meta::resource_version(&new);
        if !want_rv.is_empty() && want_rv != meta::resource_version(&old) {
            return Err(ApiError::conflict(kind, name));
        }
        self.write(kind, &key, &old, new, part)
    }

    /// Deletes an object. Returns the response body: the object when deletion
    /// is pending (finalizers, Foreground, Orphan) or for pods, a success
    /// `Status` otherwise.
    pub fn delete(
        &mut self,
        kind: &'static KindInfo,
        ns: Option<&str>,
        name: &str,
        propagation: Option<Propagation>,
        preconditions: Option<&Value>,
    ) -> Result<Value, ApiError> {
        let key = ObjKey::new(kind, ns, name);
        let old = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(kind, name))?;
        if let Some(pre) = preconditions {
            if let Some(uid) = pre.get("uid").and_then(Value::as_str)
                && uid != meta::uid(&old)
            {
                return Err(ApiError {
                    code: 409,
                    reason: "Conflict".into(),
                    message: format!(
                        "Operation cannot be fulfilled on {} \"{}\": Precondition failed: UID in precondition: {}, UID in object meta: {}",
                        kind.qualified_plural(),
                        name,
                        uid,
                        meta::uid(&old)
                    ),
                    details: None,
                });
            }
            if let Some(rv) = pre.get("resourceVersion").and_then(Value::as_str)
                && rv != meta::resource_version(&old)
            {
                return Err(ApiError::conflict(kind, name));
            }
        }
        let propagation = propagation.unwrap_or(match kind.default_propagation {
            DefaultPropagation::Background => Propagation::Background,
            DefaultPropagation::Orphan => Propagation::Orphan,
        });
        let uid = meta::uid(&old).to_string();
        let user_finalizers = meta::finalizers(&old);
        let gc_finalizer = match propagation {
            Propagation::Foreground => Some("foregroundDeletion"),
            // The real server adds the GC finalizer whether or not there
            // are dependents, so the response is the object being deleted.
            Propagation::Orphan => Some("orphan"),
            _ => None,
        };
        if old.pointer("/metadata/deletionTimestamp").is_some() {
            // Already being deleted: nothing more to do until finalizers go.
            return Ok(old);
        }
        if user_finalizers.is_empty() && gc_finalizer.is_none() {
            let rv = self.next_rv();
            let mut gone = old.clone();
            set_str(metadata_mut(&mut gone), "resourceVersion", rv.to_string());
            self.objects.remove(&key);
            self.record(EventType::Deleted, &key, gone.clone(), None);
            if kind.plural == "namespaces" {
                self.delete_namespace_contents(name);
            }
            self.collect_garbage(uid.clone(), Propagation::Background);
            if kind.plural == "pods" {
                return Ok(gone);
            }
            return Ok(status::delete_success(kind, name, &uid));
        }
        // Mark the object as being deleted, then let the garbage collector
        // (which runs synchronously here) finish its part.
        let rv = self.next_rv();
        let mut marked = old.clone();
        {
            let m = metadata_mut(&mut marked);
            set_str(m, "deletionTimestamp", meta::now_rfc3339());
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
            set_str(m, "resourceVersion", rv.to_string());
            if let Some(f) = gc_finalizer {
                let list = m.entry("finalizers").or_insert(json!([]));
                if let Value::Array(items) = list {
                    items.push(json!(f));
                }
            }
        }
        self.objects.insert(key.clone(), marked.clone());
        self.record(EventType::Modified, &key, marked.clone(), Some(old));
        if kind.plural == "namespaces" {
            self.delete_namespace_contents(name);
        }
        if let Some(f) = gc_finalizer {
            self.collect_garbage(uid, propagation);
            // The collector is done with its finalizer.
            let current = self.objects.get(&key).cloned();
            if let Some(current) = current {
                let mut next = current.clone();
                let m = metadata_mut(&mut next);
                if let Some(Value::Array(items)) = m.get_mut("finalizers") {
                    items.retain(|x| x.as_str() != Some(f));
                    if items.is_empty() {
                        m.remove("finalizers");
                    }
                }
                let _ = self.write(kind, &key, &current, next, Part::Main);
            }
        }
        Ok(marked)
    }

    /// Deletes (Background/Foreground) or orphans the dependents of `uid`.
    fn collect_garbage(&mut self, uid: String, propagation: Propagation) {
        let dependents: Vec<ObjKey> = self
            .objects
            .iter()
            .filter(|(_, o)| meta::owner_uids(o).contains(&uid))
            .map(|(k, _)| k.clone())
            .collect();
        for key in dependents {
            let Some(kind) = kinds::by_gvr_key(key.group, key.plural) else {
                continue;
            };
            let ns = (!key.namespace.is_empty()).then_some(key.namespace.clone());
            match propagation {
                Propagation::Orphan => {
                    let Some(old) = self.objects.get(&key).cloned() else {
                        continue;
                    };
                    let mut next = old.clone();
                    let m = metadata_mut(&mut next);
                    if let Some(Value::Array(refs)) = m.get_mut("ownerReferences") {
                        refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid.as_str()));
                        if refs.is_empty() {
                            m.remove("ownerReferences");
                        }
                    }
                    let _ = self.write(kind, &key, &old, next, Part::Main);
                }
                Propagation::Background | Propagation::Foreground => {
                    let _ = self.delete(kind, ns.as_deref(), &key.name, Some(propagation), None);
                }
            }
        }
    }

    fn delete_namespace_contents(&mut self, ns: &str) {
        let keys: Vec<ObjKey> = self
            .objects
            .keys()
            .filter(|k| k.namespace == ns)
            .cloned()
            .collect();
        for key in keys {
            if let Some(kind) = kinds::by_gvr_key(key.group, key.plural) {
                let _ = self.delete(
                    kind,
                    Some(ns),
                    &key.name,
                    Some(Propagation::Background),
                    None,
                );
            }
        }
        // The namespace controller removes its finalizer once empty.
        if let Some(ns_kind) = kinds::lookup("namespaces") {
            let key = ObjKey::new(ns_kind, None, ns);
            if let Some(obj) = self.objects.get(&key).cloned()
                && obj.pointer("/metadata/deletionTimestamp").is_some()
                && meta::finalizers(&obj).is_empty()
            {
                let rv = self.next_rv();
                let mut gone = obj;
                set_str(metadata_mut(&mut gone), "resourceVersion", rv.to_string());
                self.objects.remove(&key);
                self.record(EventType::Deleted, &key, gone, None);
            }
        }
    }

    /// Writes `.status` of an object by merge patch, bypassing
    /// authorization: what a controller or the kubelet does.
    pub fn merge_status(
        &mut self,
        kind: &'static KindInfo,
        ns: Option<&str>,
        name: &str,
        status_patch: Value,
    ) -> Result<Value, ApiError> {
        self.patch(
            kind,
            ns,
            name,
            PatchType::Merge,
            &json!({ "status": status_patch }),
            Part::Status,
        )
    }

    /// Replaces an object wholesale without validation (for simulation
    /// helpers that must change fields clients may not, like
    /// `spec.nodeName`).
    pub fn force_replace(
        &mut self,
        kind: &'static KindInfo,
        ns: Option<&str>,
        name: &str,
        new: Value,
    ) -> Result<Value, ApiError> {
        let key = ObjKey::new(kind, ns, name);
        let old = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(kind, name))?;
        let mut new = new;
        if new == old {
            return Ok(old);
        }
        let rv = self.next_rv();
        set_str(metadata_mut(&mut new), "resourceVersion", rv.to_string());
        self.objects.insert(key.clone(), new.clone());
        self.record(EventType::Modified, &key, new.clone(), Some(old));
        Ok(new)
    }

    /// Makes sure a namespace exists (used at start-up).
    pub fn ensure_namespace(&mut self, ns: &str) -> Result<(), ApiError> {
        let ns_kind =
            kinds::lookup("namespaces").ok_or_else(|| ApiError::no_route("namespaces"))?;
        if self.objects.contains_key(&ObjKey::new(ns_kind, None, ns)) {
            return Ok(());
        }
        self.create(ns_kind, None, json!({"metadata": {"name": ns}}))
            .map(|_| ())
    }

    /// Events after `rv` for one kind, or `Err(floor)` when `rv` is older
    /// than the retained history.
    pub fn events_after(&self, rv: u64, kind: &KindInfo) -> Result<Vec<StoredEvent>, u64> {
        if rv < self.floor {
            return Err(self.floor);
        }
        Ok(self
            .history
            .iter()
            .filter(|e| e.rv > rv && e.group == kind.group && e.plural == kind.plural)
            .cloned()
            .collect())
    }
}
