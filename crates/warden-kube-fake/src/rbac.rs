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
