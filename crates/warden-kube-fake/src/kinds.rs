//! The table of resource kinds the fake serves.
//!
//! Everything else in the crate is generic over this table: adding a kind is
//! one line here, not a new handler.

/// What the garbage collector does with dependents when a DELETE request does
/// not name a `propagationPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultPropagation {
    /// Dependents are deleted in the background.
    Background,
    /// Dependents are kept and lose their owner reference. `batch/v1` Jobs
    /// default to this for backward compatibility, which is why the real
    /// server warns that "child pods are preserved by default".
    Orphan,
}

/// One served resource type.
#[derive(Debug, Clone, Copy)]
pub struct KindInfo {
    /// API group, `""` for the core group.
    pub group: &'static str,
    /// API version inside the group.
    pub version: &'static str,
    /// Lower-case plural used in URLs and RBAC rules.
    pub plural: &'static str,
    /// Singular lower-case name, as reported by discovery.
    pub singular: &'static str,
    /// The `kind` field of objects.
    pub kind: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Whether `/status` is a separate subresource (main-resource writes then
    /// leave `.status` alone, and status writes leave everything else alone).
    pub has_status: bool,
    /// Whether `/scale` is served.
    pub has_scale: bool,
    /// Whether `metadata.generation` is tracked (bumped on spec changes).
    pub tracks_generation: bool,
    /// Review-style kinds (TokenReview, SubjectAccessReview) are answered, not
    /// stored.
    pub virtual_create_only: bool,
    /// Propagation used when a DELETE names none.
    pub default_propagation: DefaultPropagation,
    /// Field-selector keys accepted besides `metadata.name` and
    /// `metadata.namespace`.
    pub field_labels: &'static [&'static str],
}

impl KindInfo {
    /// `apiVersion` as written in objects (`v1`, `batch/v1`).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural.group` (or just `plural` for core), as the API server writes
    /// resources in error messages: `jobs.batch "x" not found`.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

const fn kind(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
) -> KindInfo {
    KindInfo {
        group,
        version,
        plural,
        singular,
        kind,
        namespaced,
        has_status: false,
        has_scale: false,
        tracks_generation: false,
        virtual_create_only: false,
        default_propagation: DefaultPropagation::Background,
        field_labels: &[],
    }
}

const fn with_status(mut k: KindInfo) -> KindInfo {
    k.has_status = true;
    k
}

const fn with_generation(mut k: KindInfo) -> KindInfo {
    k.tracks_generation = true;
    k
}

const fn with_fields(mut k: KindInfo, fields: &'static [&'static str]) -> KindInfo {
    k.field_labels = fields;
    k
}

const fn review(mut k: KindInfo) -> KindInfo {
    k.virtual_create_only = true;
    k
}

const POD_FIELDS: &[&str] = &[
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
];

const EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

/// Every kind the fake serves.
pub static KINDS: &[KindInfo] = &[
    with_fields(
        with_status(kind("", "v1", "pods", "pod", "Pod", true)),
        POD_FIELDS,
    ),
    kind(
        "",
        "v1",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
    ),
    kind("", "v1", "configmaps", "configmap", "ConfigMap", true),
    kind("", "v1", "secrets", "secret", "Secret", true),
    kind("", "v1", "services", "service", "Service", true),
    with_fields(
        kind("", "v1", "events", "event", "Event", true),
        EVENT_FIELDS,
    ),
    with_status(kind(
        "",
        "v1",
        "namespaces",
        "namespace",
        "Namespace",
        false,
    )),
    with_status(kind(
        "",
        "v1",
        "resourcequotas",
        "resourcequota",
        "ResourceQuota",
        true,
    )),
    kind("", "v1", "limitranges", "limitrange", "LimitRange", true),
    with_status(kind("", "v1", "nodes", "node", "Node", false)),
    with_status(kind(
        "",
        "v1",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        true,
    )),
    KindInfo {
        default_propagation: DefaultPropagation::Orphan,
        field_labels: &["status.successful"],
        ..with_generation(with_status(kind("batch", "v1", "jobs", "job", "Job", true)))
    },
    with_generation(with_status(kind(
        "batch", "v1", "cronjobs", "cronjob", "CronJob", true,
    ))),
    KindInfo {
        has_scale: true,
        ..with_generation(with_status(kind(
            "apps",
            "v1",
            "deployments",
            "deployment",
            "Deployment",
            true,
        )))
    },
    KindInfo {
        has_scale: true,
        ..with_generation(with_status(kind(
            "apps",
            "v1",
            "replicasets",
            "replicaset",
            "ReplicaSet",
            true,
        )))
    },
    KindInfo {
        has_scale: true,
        ..with_generation(with_status(kind(
            "apps",
            "v1",
            "statefulsets",
            "statefulset",
            "StatefulSet",
            true,
        )))
    },
    with_generation(with_status(kind(
        "apps",
        "v1",
        "daemonsets",
        "daemonset",
        "DaemonSet",
        true,
    ))),
    kind(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "role",
        "Role",
        true,
    ),
    kind(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        true,
    ),
    kind(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "clusterrole",
        "ClusterRole",
        false,
    ),
    kind(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        false,
    ),
    with_generation(kind(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "networkpolicy",
        "NetworkPolicy",
        true,
    )),
    kind(
        "coordination.k8s.io",
        "v1",
        "leases",
        "lease",
        "Lease",
        true,
    ),
    review(kind(
        "authentication.k8s.io",
        "v1",
        "tokenreviews",
        "tokenreview",
        "TokenReview",
        false,
    )),
    review(kind(
        "authorization.k8s.io",
        "v1",
        "subjectaccessreviews",
        "subjectaccessreview",
        "SubjectAccessReview",
        false,
    )),
    review(kind(
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "selfsubjectaccessreview",
        "SelfSubjectAccessReview",
        false,
    )),
];

/// Finds a kind by group, version and plural (the URL form).
pub fn by_gvr(group: &str, version: &str, plural: &str) -> Option<&'static KindInfo> {
    KINDS
        .iter()
        .find(|k| k.group == group && k.version == version && k.plural == plural)
}

/// Finds a kind by the loose names tests use: `Job`, `jobs`, `jobs.batch`,
/// `job`. Case-insensitive.
pub fn lookup(name: &str) -> Option<&'static KindInfo> {
    let lower = name.to_ascii_lowercase();
    KINDS.iter().find(|k| {
        k.kind.eq_ignore_ascii_case(&lower)
            || k.plural == lower
            || k.singular == lower
            || k.qualified_plural() == lower
    })
}

/// Finds a kind by `apiVersion` and `kind` as written inside an object (used
/// for owner references).
pub fn by_api_version_kind(api_version: &str, kind: &str) -> Option<&'static KindInfo> {
    KINDS
        .iter()
        .find(|k| k.api_version() == api_version && k.kind == kind)
}

/// Every group with the versions served in it, in table order.
pub fn groups() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for k in KINDS {
        if !k.group.is_empty() && !out.contains(&(k.group, k.version)) {
            out.push((k.group, k.version));
        }
    }
    out
}

/// Finds a kind by group and plural (the store key form).
pub fn by_gvr_key(group: &str, plural: &str) -> Option<&'static KindInfo> {
    KINDS
        .iter()
        .find(|k| k.group == group && k.plural == plural)
}
