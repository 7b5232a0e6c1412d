//! RBAC as effective grants: (subject, verb, group, resource, name, scope).
//!
//! Every rule is expanded to the cartesian product of its lists, so rules
//! split or merged, verbs reordered, duplicates and `resourceNames` spread
//! over several rules all give the same set. Wildcards (`*` verbs, groups,
//! resources, no `resourceNames`) stay wildcards: `*` also grants verbs and
//! resources that do not exist yet, so it is wider than any finite list,
//! and a grant is "covered" when some grant of the other side matches it.
//!
//! Only subjects that matter to warden are followed: the subjects of the
//! desired bindings, the desired ServiceAccounts, and any ServiceAccount in
//! a namespace where warden declares ServiceAccounts. A binding to a group
//! that contains them (`system:serviceaccounts`, `system:authenticated`,
//! ...) grants to them too.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

use crate::object::{Index, ObjectRef, Selector, labels, strings};
use crate::report::{Area, Finding, Report, Source};

/// Who holds a permission.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Subject {
    ServiceAccount { namespace: String, name: String },
    User(String),
    Group(String),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::ServiceAccount { namespace, name } => {
                write!(f, "ServiceAccount {namespace}/{name}")
            }
            Subject::User(u) => write!(f, "User {u}"),
            Subject::Group(g) => write!(f, "Group {g}"),
        }
    }
}

/// What a grant is on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    Resource {
        group: String,
        /// With subresource (`deployments/scale`); may be `*`, `*/x`, `x/*`.
        resource: String,
        /// None: every name.
        name: Option<String>,
    },
    NonResource(String),
}

/// One effective permission.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    pub verb: String,
    pub target: Target,
    /// None: every namespace and cluster-scoped objects.
    pub namespace: Option<String>,
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Target::Resource {
                group,
                resource,
                name,
            } => {
                write!(f, "{} {resource}", self.verb)?;
                if !group.is_empty() {
                    write!(f, " (group {group})")?;
                }
                if let Some(n) = name {
                    write!(f, " named {n:?}")?;
                }
            }
            Target::NonResource(url) => write!(f, "{} non-resource URL {url}", self.verb)?,
        }
        match &self.namespace {
            Some(ns) => write!(f, " in namespace {ns}"),
            None => f.write_str(" cluster-wide"),
        }
    }
}

fn covers_str(a: &str, b: &str) -> bool {
    a == "*" || a == b
}

fn covers_resource(a: &str, b: &str) -> bool {
    if a == "*" || a == b {
        return true;
    }
    let (b_base, b_sub) = match b.split_once('/') {
        Some((base, sub)) => (base, Some(sub)),
        None => (b, None),
    };
    match a.split_once('/') {
        // `*/scale`: that subresource of every resource.
        Some(("*", sub)) => b_sub == Some(sub) || (b_sub == Some("*") && sub == "*"),
        // `pods/*`: every subresource of pods.
        Some((base, "*")) => base == b_base && b_sub.is_some(),
        _ => false,
    }
}

impl Grant {
    /// Whether `self` allows everything `other` allows.
    pub fn covers(&self, other: &Grant) -> bool {
        if !covers_str(&self.verb, &other.verb) {
            return false;
        }
        if let Some(ns) = &self.namespace
            && other.namespace.as_ref() != Some(ns)
        {
            return false;
        }
        match (&self.target, &other.target) {
            (
                Target::Resource {
                    group: ga,
                    resource: ra,
                    name: na,
                },
                Target::Resource {
                    group: gb,
                    resource: rb,
                    name: nb,
                },
            ) => {
                covers_str(ga, gb)
                    && covers_resource(ra, rb)
                    && match (na, nb) {
                        (None, _) => true,
                        (Some(a), Some(b)) => a == b,
                        (Some(_), None) => false,
                    }
            }
            (Target::NonResource(a), Target::NonResource(b)) => {
                a == b || a.strip_suffix('*').is_some_and(|p| b.starts_with(p))
            }
            _ => false,
        }
    }
}

/// Where a grant comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GrantSource {
    pub binding: ObjectRef,
    pub role: ObjectRef,
    /// The labelled ClusterRole whose rules an aggregated role picked up.
    pub aggregated_from: Option<ObjectRef>,
    /// The binding subject that reached the holder, when it is not the
    /// holder itself (a group, a service-account user name).
    pub via: Option<String>,
}

impl GrantSource {
    pub fn sources(&self) -> Vec<Source> {
        let via = self.via.as_ref().map(|v| format!("via subject {v}"));
        let mut out = vec![
            Source::new(&self.binding, "binding", via),
            Source::new(&self.role, "role", None),
        ];
        if let Some(a) = &self.aggregated_from {
            out.push(Source::new(
                a,
                "aggregated",
                Some(format!("rules aggregated into {}", self.role)),
            ));
        }
        out
    }
}

/// Which identities and namespaces the comparison follows.
#[derive(Debug, Default)]
pub struct Scope {
    subjects: BTreeSet<Subject>,
    /// Namespaces where warden declares ServiceAccounts: every service
    /// account there is followed.
    pub sa_namespaces: BTreeSet<String>,
    /// Namespaces whose NetworkPolicies are compared.
    pub netpol_namespaces: BTreeSet<String>,
}

impl Scope {
    pub fn from_desired(desired: &Index) -> Scope {
        let mut scope = Scope::default();
        for (r, _) in desired.of_kind("ServiceAccount") {
            let ns = r.namespace.clone().unwrap_or_default();
            scope.sa_namespaces.insert(ns.clone());
            scope.subjects.insert(Subject::ServiceAccount {
                namespace: ns,
                name: r.name.clone(),
            });
        }
        for kind in ["RoleBinding", "ClusterRoleBinding"] {
            for (r, v) in desired.of_kind(kind) {
                for s in binding_subjects(r, v) {
                    scope.subjects.insert(s);
                }
            }
        }
        for (r, _) in desired.of_kind("NetworkPolicy") {
            scope
                .netpol_namespaces
                .insert(r.namespace.clone().unwrap_or_default());
        }
        scope
            .netpol_namespaces
            .extend(scope.sa_namespaces.iter().cloned());
        scope
    }

    /// The subjects followed on one side: the declared ones plus every
    /// service account that side shows in a followed namespace.
    fn holders(&self, side: &Index) -> BTreeSet<Subject> {
        let mut out = self.subjects.clone();
        for (r, _) in side.of_kind("ServiceAccount") {
            let ns = r.namespace.clone().unwrap_or_default();
            if self.sa_namespaces.contains(&ns) {
                out.insert(Subject::ServiceAccount {
                    namespace: ns,
                    name: r.name.clone(),
                });
            }
        }
        for kind in ["RoleBinding", "ClusterRoleBinding"] {
            for (r, v) in side.of_kind(kind) {
                for s in binding_subjects(r, v) {
                    if let Subject::ServiceAccount { namespace, .. } = &s
                        && self.sa_namespaces.contains(namespace)
                    {
                        out.insert(s);
                    }
                }
            }
        }
        out
    }
}

/// A binding's subjects as written (service accounts default to the
/// binding's namespace).
fn binding_subjects(r: &ObjectRef, v: &Value) -> Vec<Subject> {
    v.get("subjects")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let name = s.get("name").and_then(Value::as_str)?.to_string();
            match s.get("kind").and_then(Value::as_str)? {
                "ServiceAccount" => Some(Subject::ServiceAccount {
                    namespace: s
                        .get("namespace")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .or_else(|| r.namespace.clone())
                        .unwrap_or_default(),
                    name,
                }),
                "User" => Some(Subject::User(name)),
                "Group" => Some(Subject::Group(name)),
                _ => None,
            }
        })
        .collect()
}

/// Whether a binding subject grants to `holder`.
fn reaches(entry: &Subject, holder: &Subject) -> bool {
    if entry == holder {
        return true;
    }
    match (entry, holder) {
        (Subject::User(u), Subject::ServiceAccount { namespace, name }) => {
            *u == format!("system:serviceaccount:{namespace}:{name}")
        }
        (Subject::Group(g), Subject::ServiceAccount { namespace, .. }) => {
            g == "system:serviceaccounts"
                || g == "system:authenticated"
                || *g == format!("system:serviceaccounts:{namespace}")
        }
        (Subject::Group(g), Subject::User(_)) => g == "system:authenticated",
        _ => false,
    }
}

/// One rule's lists.
struct Rule {
    verbs: Vec<String>,
    groups: Vec<String>,
    resources: Vec<String>,
    names: Vec<String>,
    urls: Vec<String>,
}

fn rules_of(v: &Value) -> Vec<Rule> {
    v.get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| Rule {
            verbs: strings(r.get("verbs")),
            groups: strings(r.get("apiGroups")),
            resources: strings(r.get("resources")),
            names: strings(r.get("resourceNames")),
            urls: strings(r.get("nonResourceURLs")),
        })
        .collect()
}

/// The rules of a role, with aggregated ClusterRoles followed (the labelled
/// role each rule came from is returned alongside).
fn role_rules<'a>(
    idx: &'a Index,
    role: &'a ObjectRef,
    v: &'a Value,
    seen: &mut BTreeSet<ObjectRef>,
) -> Vec<(Rule, Option<ObjectRef>)> {
    let mut out: Vec<(Rule, Option<ObjectRef>)> =
        rules_of(v).into_iter().map(|r| (r, None)).collect();
    seen.insert(role.clone());
    if role.kind != "ClusterRole" {
        return out;
    }
    let selectors: Vec<Selector> = v
        .pointer("/aggregationRule/clusterRoleSelectors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| Selector::parse(Some(s)).ok())
        .collect();
    if selectors.is_empty() {
        return out;
    }
    for (other, ov) in idx.of_kind("ClusterRole") {
        if seen.contains(other) {
            continue;
        }
        let l = labels(ov);
        if selectors.iter().any(|s| s.matches(&l)) {
            for (rule, from) in role_rules(idx, other, ov, seen) {
                out.push((rule, Some(from.unwrap_or_else(|| other.clone()))));
            }
        }
    }
    out
}

/// Default bindings the API server creates for every cluster (labelled
/// `kubernetes.io/bootstrapping=rbac-defaults`, named `system:...`): they give
/// every authenticated identity discovery and self-review rights and are the
/// platform's baseline, not drift.
fn is_platform_default(r: &ObjectRef, v: &Value) -> bool {
    r.name.starts_with("system:")
        && labels(v)
            .get("kubernetes.io/bootstrapping")
            .map(String::as_str)
            == Some("rbac-defaults")
}

pub type Grants = BTreeMap<Subject, BTreeMap<Grant, BTreeSet<GrantSource>>>;

/// Every grant the followed subjects hold on one side.
pub fn grants(idx: &Index, holders: &BTreeSet<Subject>, skip_defaults: bool) -> Grants {
    let mut out: Grants = BTreeMap::new();
    for kind in ["RoleBinding", "ClusterRoleBinding"] {
        for (binding, bv) in idx.of_kind(kind) {
            if skip_defaults && is_platform_default(binding, bv) {
                continue;
            }
            let role_kind = bv.pointer("/roleRef/kind").and_then(Value::as_str);
            let role_name = bv.pointer("/roleRef/name").and_then(Value::as_str);
            let (Some(role_kind), Some(role_name)) = (role_kind, role_name) else {
                continue;
            };
            let role = match (kind, role_kind) {
                ("RoleBinding", "Role") => idx.get("Role", binding.namespace.as_deref(), role_name),
                (_, "ClusterRole") => idx.get("ClusterRole", None, role_name),
                // A ClusterRoleBinding cannot reference a Role.
                _ => None,
            };
            // A binding to a missing role grants nothing (as in Kubernetes).
            let Some((role, rv)) = role else { continue };
            let namespace = if kind == "RoleBinding" {
                Some(binding.namespace.clone().unwrap_or_default())
            } else {
                None
            };
            let rules = role_rules(idx, role, rv, &mut BTreeSet::new());
            for entry in binding_subjects(binding, bv) {
                for holder in holders.iter().filter(|h| reaches(&entry, h)) {
                    let via = (entry != *holder).then(|| entry.to_string());
                    let held = out.entry(holder.clone()).or_default();
                    for (rule, from) in &rules {
                        let source = GrantSource {
                            binding: binding.clone(),
                            role: role.clone(),
                            aggregated_from: from.clone(),
                            via: via.clone(),
                        };
                        for g in expand(rule, namespace.as_deref()) {
                            held.entry(g).or_default().insert(source.clone());
                        }
                    }
                }
            }
        }
    }
    out
}

fn expand(rule: &Rule, namespace: Option<&str>) -> Vec<Grant> {
    let mut out = Vec::new();
    for verb in &rule.verbs {
        for group in &rule.groups {
            for resource in &rule.resources {
                let names: Vec<Option<String>> = if rule.names.is_empty() {
                    vec![None]
                } else {
                    rule.names.iter().cloned().map(Some).collect()
                };
                for name in names {
                    out.push(Grant {
                        verb: verb.clone(),
                        target: Target::Resource {
                            group: group.clone(),
                            resource: resource.clone(),
                            name,
                        },
                        namespace: namespace.map(str::to_string),
                    });
                }
            }
        }
        // Non-resource URLs only mean something cluster-wide.
        if namespace.is_none() {
            for url in &rule.urls {
                out.push(Grant {
                    verb: verb.clone(),
                    target: Target::NonResource(url.clone()),
                    namespace: None,
                });
            }
        }
    }
    out
}

/// The grants of `a` that no grant of `b` covers, per holder.
fn uncovered<'a>(
    a: &'a Grants,
    b: &'a Grants,
) -> Vec<(&'a Subject, &'a Grant, &'a BTreeSet<GrantSource>)> {
    let empty = BTreeMap::new();
    let mut out = Vec::new();
    for (holder, held) in a {
        let other = b.get(holder).unwrap_or(&empty);
        for (grant, sources) in held {
            if !other.keys().any(|g| g.covers(grant)) {
                out.push((holder, grant, sources));
            }
        }
    }
    out
}

pub fn compare(scope: &Scope, desired: &Index, live: &Index, report: &mut Report) {
    let mut holders = scope.holders(desired);
    holders.extend(scope.holders(live));
    let d = grants(desired, &holders, false);
    let l = grants(live, &holders, true);
    for (list, wider) in [(uncovered(&l, &d), true), (uncovered(&d, &l), false)] {
        for (holder, grant, sources) in list {
            let finding = Finding {
                area: Area::Rbac,
                holder: holder.to_string(),
                permission: grant.to_string(),
                sources: sources.iter().flat_map(GrantSource::sources).collect(),
            };
            if wider {
                report.widening.push(finding);
            } else {
                report.narrowing.push(finding);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(verb: &str, group: &str, resource: &str, name: Option<&str>, ns: Option<&str>) -> Grant {
        Grant {
            verb: verb.into(),
            target: Target::Resource {
                group: group.into(),
                resource: resource.into(),
                name: name.map(str::to_string),
            },
            namespace: ns.map(str::to_string),
        }
    }

    #[test]
    fn wildcards_cover_specific_grants_and_not_the_reverse() {
        let any = g("*", "*", "*", None, None);
        let one = g("get", "", "pods", Some("web"), Some("default"));
        assert!(any.covers(&one));
        assert!(!one.covers(&any));
        assert!(g("get", "", "pods", None, Some("default")).covers(&one));
        assert!(!g("get", "", "pods", None, Some("other")).covers(&one));
        assert!(!g("list", "", "pods", None, None).covers(&one));
        assert!(g("get", "", "pods/*", None, None).covers(&g("get", "", "pods/log", None, None)));
        assert!(!g("get", "", "pods/*", None, None).covers(&g("get", "", "pods", None, None)));
        assert!(g("patch", "apps", "*/scale", None, None).covers(&g(
            "patch",
            "apps",
            "deployments/scale",
            None,
            None
        )));
        assert!(!g("get", "", "pods", None, None).covers(&g("get", "", "pods/log", None, None)));
    }

    #[test]
    fn groups_reach_service_accounts() {
        let sa = Subject::ServiceAccount {
            namespace: "w".into(),
            name: "agent".into(),
        };
        assert!(reaches(
            &Subject::Group("system:serviceaccounts:w".into()),
            &sa
        ));
        assert!(reaches(&Subject::Group("system:authenticated".into()), &sa));
        assert!(!reaches(
            &Subject::Group("system:serviceaccounts:x".into()),
            &sa
        ));
        assert!(reaches(
            &Subject::User("system:serviceaccount:w:agent".into()),
            &sa
        ));
        assert!(!reaches(&Subject::User("agent".into()), &sa));
    }
}
