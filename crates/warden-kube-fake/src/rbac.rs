//! The RBAC authorizer, following `k8s.io/kubernetes/plugin/pkg/auth/
//! authorizer/rbac`: a request is allowed when any rule of any role bound to
//! the user (ClusterRoleBindings everywhere, RoleBindings in the request's
//! namespace) matches verb, API group, resource (`resource/subresource`,
//! `*`, `*/subresource`) and resource name. There is no deny.

use serde_json::Value;

use crate::auth::UserInfo;
use crate::kinds;
use crate::selector::LabelSelector;
use crate::store::Store;

/// What a request asks to do, as the authorizer sees it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Attributes {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    /// Set for non-resource requests (`/api`, `/version`).
    pub path: Option<String>,
}

/// Paths every authenticated user may read (system:discovery,
/// system:public-info-viewer).
const DISCOVERY_PATHS: &[&str] = &[
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/version",
    "/version/",
    "/healthz",
    "/livez",
    "/readyz",
    "/openapi/*",
];

pub(crate) fn authorize(store: &Store, user: &UserInfo, attrs: &Attributes) -> bool {
    if user.is_master() {
        return true;
    }
    if let Some(path) = &attrs.path {
        if attrs.verb == "get" && DISCOVERY_PATHS.iter().any(|p| path_matches(p, path)) {
            return true;
        }
    } else if attrs.verb == "create"
        && attrs.group == "authorization.k8s.io"
        && (attrs.resource == "selfsubjectaccessreviews"
            || attrs.resource == "selfsubjectrulesreviews")
    {
        // system:basic-user
        return true;
    }
    rules_for(store, user, &attrs.namespace)
        .iter()
        .any(|rule| rule_allows(rule, attrs))
}

/// Every rule that applies to `user` in `namespace` (empty: cluster scope).
pub(crate) fn rules_for(store: &Store, user: &UserInfo, namespace: &str) -> Vec<Value> {
    let mut rules = Vec::new();
    let (Some(crb), Some(rb), Some(cr), Some(role)) = (
        kinds::lookup("clusterrolebindings"),
        kinds::lookup("rolebindings"),
        kinds::lookup("clusterroles"),
        kinds::lookup("roles"),
    ) else {
        return rules;
    };
    let none = LabelSelector::default();
    let no_fields = crate::selector::FieldSelector::default();
    for binding in store.list(crb, None, &none, &no_fields) {
        if binding_applies(&binding, user, "") {
            let name = crate::meta::str_at(&binding, "/roleRef/name").unwrap_or("");
            rules.extend(cluster_role_rules(store, cr, name));
        }
    }
    if !namespace.is_empty() {
        for binding in store.list(rb, Some(namespace), &none, &no_fields) {
            if !binding_applies(&binding, user, namespace) {
                continue;
            }
            let name = crate::meta::str_at(&binding, "/roleRef/name").unwrap_or("");
            match crate::meta::str_at(&binding, "/roleRef/kind") {
                Some("Role") => {
                    if let Ok(r) = store.get(role, Some(namespace), name) {
                        rules.extend(rules_of(&r));
                    }
                }
                Some("ClusterRole") => rules.extend(cluster_role_rules(store, cr, name)),
                _ => {}
            }
        }
    }
    rules
}

fn rules_of(role: &Value) -> Vec<Value> {
    role.get("rules")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Rules of a ClusterRole, including those aggregated into it by label.
fn cluster_role_rules(store: &Store, cr: &'static kinds::KindInfo, name: &str) -> Vec<Value> {
    let Ok(role) = store.get(cr, None, name) else {
        return Vec::new();
    };
    let mut rules = rules_of(&role);
    if let Some(selectors) = role
        .pointer("/aggregationRule/clusterRoleSelectors")
        .and_then(Value::as_array)
    {
        let all = store.list(
            cr,
            None,
            &LabelSelector::default(),
            &crate::selector::FieldSelector::default(),
        );
        for other in all.iter().filter(|o| crate::meta::name(o) != name) {
            let labels = crate::selector::labels_of(other);
            let selected = selectors.iter().any(|s| {
                s.get("matchLabels")
                    .and_then(Value::as_object)
                    .is_some_and(|ml| {
                        ml.iter()
                            .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str())
                    })
            });
            if selected {
                rules.extend(rules_of(other));
            }
        }
    }
    rules
}

fn binding_applies(binding: &Value, user: &UserInfo, binding_ns: &str) -> bool {
    let Some(subjects) = binding.get("subjects").and_then(Value::as_array) else {
        return false;
    };
    subjects.iter().any(|s| {
        let name = s.get("name").and_then(Value::as_str).unwrap_or("");
        match s.get("kind").and_then(Value::as_str) {
            Some("User") => name == user.username,
            Some("Group") => user.groups.iter().any(|g| g == name),
            Some("ServiceAccount") => {
                let ns = s
                    .get("namespace")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty())
                    .unwrap_or(binding_ns);
                !ns.is_empty() && user.username == format!("system:serviceaccount:{ns}:{name}")
            }
            _ => false,
        }
    })
}

fn strings(rule: &Value, field: &str) -> Vec<String> {
    rule.get(field)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn rule_allows(rule: &Value, attrs: &Attributes) -> bool {
    let verbs = strings(rule, "verbs");
    if !verbs.iter().any(|v| v == "*" || *v == attrs.verb) {
        return false;
    }
    if let Some(path) = &attrs.path {
        return strings(rule, "nonResourceURLs")
            .iter()
            .any(|u| path_matches(u, path));
    }
    let groups = strings(rule, "apiGroups");
    if !groups.iter().any(|g| g == "*" || *g == attrs.group) {
        return false;
    }
    let combined = if attrs.subresource.is_empty() {
        attrs.resource.clone()
    } else {
        format!("{}/{}", attrs.resource, attrs.subresource)
    };
    let resources = strings(rule, "resources");
    let resource_ok = resources.iter().any(|r| {
        r == "*"
            || *r == combined
            || (!attrs.subresource.is_empty()
                && r.strip_prefix("*/") == Some(attrs.subresource.as_str()))
    });
    if !resource_ok {
        return false;
    }
    let names = strings(rule, "resourceNames");
    names.is_empty() || names.contains(&attrs.name)
}

/// Non-resource URL match: exact, or a trailing `*` prefix match.
fn path_matches(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => pattern == path,
    }
}

/// RBAC escalation prevention, as the real storage for Roles and bindings
/// does: a user may only write a Role whose rules it already holds (or with
/// the `escalate` verb), and only bind a role whose rules it holds (or with
/// the `bind` verb on that role). `obj` is the object as it would be stored.
pub(crate) fn confirm_no_escalation(
    store: &Store,
    user: &UserInfo,
    plural: &str,
    namespace: &str,
    obj: &Value,
) -> Result<(), crate::status::ApiError> {
    if user.is_master() {
        return Ok(());
    }
    let name = crate::meta::name(obj).to_string();
    let rbac_group = "rbac.authorization.k8s.io";
    let (wanted_rules, shortcut) = match plural {
        "roles" | "clusterroles" => {
            let escalate = Attributes {
                verb: "escalate".into(),
                group: rbac_group.into(),
                resource: plural.into(),
                namespace: namespace.into(),
                name: name.clone(),
                ..Default::default()
            };
            (rules_of(obj), escalate)
        }
        "rolebindings" | "clusterrolebindings" => {
            let ref_kind = crate::meta::str_at(obj, "/roleRef/kind").unwrap_or("");
            let ref_name = crate::meta::str_at(obj, "/roleRef/name")
                .unwrap_or("")
                .to_string();
            let (role_plural, role_ns) = if ref_kind == "Role" {
                ("roles", namespace)
            } else {
                ("clusterroles", "")
            };
            let kind = kinds::lookup(role_plural)
                .ok_or_else(|| crate::status::ApiError::no_route(role_plural))?;
            let role = store.get(kind, (!role_ns.is_empty()).then_some(role_ns), &ref_name)?;
            let rules = if role_plural == "clusterroles" {
                cluster_role_rules(store, kind, &ref_name)
            } else {
                rules_of(&role)
            };
            let bind = Attributes {
                verb: "bind".into(),
                group: rbac_group.into(),
                resource: role_plural.into(),
                namespace: namespace.into(),
                name: ref_name,
                ..Default::default()
            };
            (rules, bind)
        }
        _ => return Ok(()),
    };
    if authorize(store, user, &shortcut) {
        return Ok(());
    }
    let held = rules_for(store, user, namespace);
    let missing: Vec<String> = wanted_rules
        .iter()
        .flat_map(atomic_rules)
        .filter(|atom| !held.iter().any(|owner| covers(owner, atom)))
        .map(|a| describe(&a))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let kind = kinds::by_gvr_key(rbac_group, plural)
        .ok_or_else(|| crate::status::ApiError::no_route(plural))?;
    Err(crate::status::ApiError {
        code: 403,
        reason: "Forbidden".into(),
        message: format!(
            "{} \"{}\" is forbidden: user \"{}\" (groups={:?}) is attempting to grant RBAC permissions not currently held:\n{}",
            kind.qualified_plural(),
            name,
            user.username,
            user.groups,
            missing.join("\n")
        ),
        details: Some(serde_json::json!({"name": name, "group": rbac_group, "kind": plural})),
    })
}

/// One verb on one resource (or URL) of one group, optionally one name.
#[derive(Debug, Clone)]
struct Atom {
    verb: String,
    group: String,
    resource: String,
    name: String,
    url: String,
}

fn atomic_rules(rule: &Value) -> Vec<Atom> {
    let mut out = Vec::new();
    let verbs = strings(rule, "verbs");
    for url in strings(rule, "nonResourceURLs") {
        for verb in &verbs {
            out.push(Atom {
                verb: verb.clone(),
                group: String::new(),
                resource: String::new(),
                name: String::new(),
                url: url.clone(),
            });
        }
    }
    let names = strings(rule, "resourceNames");
    let names = if names.is_empty() {
        vec![String::new()]
    } else {
        names
    };
    for group in strings(rule, "apiGroups") {
        for resource in strings(rule, "resources") {
            for verb in &verbs {
                for name in &names {
                    out.push(Atom {
                        verb: verb.clone(),
                        group: group.clone(),
                        resource: resource.clone(),
                        name: name.clone(),
                        url: String::new(),
                    });
                }
            }
        }
    }
    out
}

/// Whether an owner rule covers an atomic rule; a `*` in the atom is only
/// covered by a `*` in the owner rule.
fn covers(owner: &Value, atom: &Atom) -> bool {
    let has = |field: &str, want: &str| strings(owner, field).iter().any(|x| x == "*" || x == want);
    if !has("verbs", &atom.verb) {
        return false;
    }
    if !atom.url.is_empty() {
        return strings(owner, "nonResourceURLs")
            .iter()
            .any(|u| u == "*" || path_matches(u, &atom.url));
    }
    if !has("apiGroups", &atom.group) {
        return false;
    }
    let resource_ok = strings(owner, "resources").iter().any(|r| {
        r == "*"
            || *r == atom.resource
            || atom
                .resource
                .split_once('/')
                .is_some_and(|(_, sub)| r.strip_prefix("*/") == Some(sub))
    });
    if !resource_ok {
        return false;
    }
    let names = strings(owner, "resourceNames");
    names.is_empty() || (!atom.name.is_empty() && names.contains(&atom.name))
}

fn describe(a: &Atom) -> String {
    if !a.url.is_empty() {
        return format!("{{NonResourceURLs:[{:?}], Verbs:[{:?}]}}", a.url, a.verb);
    }
    let names = if a.name.is_empty() {
        String::new()
    } else {
        format!(", ResourceNames:[{:?}]", a.name)
    };
    format!(
        "{{APIGroups:[{:?}], Resources:[{:?}]{names}, Verbs:[{:?}]}}",
        a.group, a.resource, a.verb
    )
}
