//! Defaulting and validation that the real API server applies on write, for
//! the kinds warden creates. Only the rules that change what a client sees
//! or catch real mistakes are modelled; everything else is accepted as sent.

use serde_json::{Map, Value, json};

use crate::kinds::KindInfo;
use crate::meta::{child_mut, ensure_object, is_dns1123_subdomain};
use crate::status::ApiError;

/// Fills defaults on create, after uid/name are assigned.
pub(crate) fn on_create(kind: &KindInfo, obj: &mut Value) {
    let name = crate::meta::name(obj).to_string();
    let uid = crate::meta::uid(obj).to_string();
    let root = ensure_object(obj);
    match (kind.group, kind.plural) {
        ("batch", "jobs") => default_job(root, &name, &uid),
        ("", "pods") => {
            default_pod_spec(child_mut(root, "spec"));
            let qos = qos_class(root.get("spec").unwrap_or(&Value::Null));
            let status = child_mut(root, "status");
            status.entry("phase").or_insert_with(|| json!("Pending"));
            status.insert("qosClass".into(), json!(qos));
        }
        ("apps", "deployments") => {
            let spec = child_mut(root, "spec");
            spec.entry("replicas").or_insert(json!(1));
            spec.entry("revisionHistoryLimit").or_insert(json!(10));
            spec.entry("progressDeadlineSeconds").or_insert(json!(600));
            spec.entry("strategy").or_insert(json!({
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}
            }));
            default_pod_spec(child_mut(child_mut(spec, "template"), "spec"));
            root.entry("status").or_insert(json!({}));
        }
        ("apps", "replicasets") | ("apps", "statefulsets") => {
            let spec = child_mut(root, "spec");
            spec.entry("replicas").or_insert(json!(1));
            default_pod_spec(child_mut(child_mut(spec, "template"), "spec"));
            root.entry("status").or_insert(json!({"replicas": 0}));
        }
        ("", "namespaces") => {
            let labels = child_mut(child_mut(root, "metadata"), "labels");
            labels.insert("kubernetes.io/metadata.name".into(), json!(name));
            child_mut(root, "spec")
                .entry("finalizers")
                .or_insert(json!(["kubernetes"]));
            child_mut(root, "status").insert("phase".into(), json!("Active"));
        }
        ("", "events") => {
            root.entry("count").or_insert(json!(1));
        }
        _ => {}
    }
}

fn default_job(root: &mut Map<String, Value>, name: &str, uid: &str) {
    let spec = child_mut(root, "spec");
    spec.entry("parallelism").or_insert(json!(1));
    spec.entry("completions").or_insert(json!(1));
    spec.entry("backoffLimit").or_insert(json!(6));
    spec.entry("completionMode").or_insert(json!("NonIndexed"));
    spec.entry("suspend").or_insert(json!(false));
    let replacement = if spec.contains_key("podFailurePolicy") {
        "Failed"
    } else {
        "TerminatingOrFailed"
    };
    spec.entry("podReplacementPolicy")
        .or_insert(json!(replacement));
    // onPodConditions patterns default their status to "True".
    if let Some(Value::Array(rules)) = spec
        .get_mut("podFailurePolicy")
        .and_then(|p| p.get_mut("rules"))
    {
        for rule in rules.iter_mut() {
            if let Some(Value::Array(patterns)) = rule.get_mut("onPodConditions") {
                for pattern in patterns.iter_mut() {
                    let p = ensure_object(pattern);
                    if p.get("status")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                    {
                        p.insert("status".into(), json!("True"));
                    }
                }
            }
        }
    }
    let manual = spec
        .get("manualSelector")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !manual {
        spec.insert(
            "selector".into(),
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
        );
    }
    let template = child_mut(spec, "template");
    let labels = child_mut(child_mut(template, "metadata"), "labels");
    if !manual {
        labels.insert("batch.kubernetes.io/controller-uid".into(), json!(uid));
        labels.insert("controller-uid".into(), json!(uid));
    }
    labels.insert("batch.kubernetes.io/job-name".into(), json!(name));
    labels.insert("job-name".into(), json!(name));
    default_pod_spec(child_mut(template, "spec"));
    root.entry("status").or_insert(json!({}));
}

fn default_pod_spec(spec: &mut Map<String, Value>) {
    spec.entry("restartPolicy").or_insert(json!("Always"));
    spec.entry("terminationGracePeriodSeconds")
        .or_insert(json!(30));
    spec.entry("dnsPolicy").or_insert(json!("ClusterFirst"));
    spec.entry("schedulerName")
        .or_insert(json!("default-scheduler"));
    spec.entry("securityContext").or_insert(json!({}));
    for list in ["initContainers", "containers"] {
        if let Some(Value::Array(containers)) = spec.get_mut(list) {
            for c in containers.iter_mut() {
                let c = ensure_object(c);
                c.entry("terminationMessagePath")
                    .or_insert(json!("/dev/termination-log"));
                c.entry("terminationMessagePolicy").or_insert(json!("File"));
                let image = c.get("image").and_then(Value::as_str).unwrap_or("");
                let tag_is_latest = match image
                    .rsplit_once('/')
                    .map_or(image, |(_, last)| last)
                    .split_once(':')
                {
                    _ if image.contains('@') => false,
                    Some((_, tag)) => tag == "latest",
                    None => true,
                };
                let policy = if tag_is_latest {
                    "Always"
                } else {
                    "IfNotPresent"
                };
                c.entry("imagePullPolicy").or_insert(json!(policy));
                // Requests default to limits when only limits are given.
                if let Some(Value::Object(res)) = c.get_mut("resources")
                    && let Some(limits) = res.get("limits").cloned()
                {
                    let requests = child_mut(res, "requests");
                    if let Value::Object(l) = limits {
                        for (k, v) in l {
                            requests.entry(k).or_insert(v);
                        }
                    }
                }
            }
        }
    }
}

fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = spec
        .get("containers")
        .and_then(Value::as_array)
        .map(|c| c.iter().collect())
        .unwrap_or_default();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in &containers {
        let req = c.pointer("/resources/requests").and_then(Value::as_object);
        let lim = c.pointer("/resources/limits").and_then(Value::as_object);
        if req.is_some_and(|r| !r.is_empty()) || lim.is_some_and(|l| !l.is_empty()) {
            any = true;
        }
        for res in ["cpu", "memory"] {
            let r = req.and_then(|r| r.get(res));
            let l = lim.and_then(|l| l.get(res));
            if l.is_none() || r != l {
                guaranteed = false;
            }
        }
    }
    if guaranteed {
        "Guaranteed"
    } else if any {
        "Burstable"
    } else {
        "BestEffort"
    }
}

/// Validates an object about to be stored; `old` is the stored version on
/// update.
pub(crate) fn validate(kind: &KindInfo, obj: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let name = crate::meta::name(obj);
    let invalid = |field: &str, reason: &str, detail: &str| {
        ApiError::invalid(kind, name, field, reason, detail)
    };
    let name_ok = match kind.group {
        // RBAC names are path segments (`system:aggregate-to-view`).
        "rbac.authorization.k8s.io" => {
            !name.contains('/') && !name.contains('%') && name != "." && name != ".."
        }
        _ => is_dns1123_subdomain(name),
    };
    if !name_ok {
        return Err(invalid(
            "metadata.name",
            "FieldValueInvalid",
            &format!(
                "Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            ),
        ));
    }
    if kind.plural == "namespaces" && (name.len() > 63 || name.contains('.')) {
        return Err(invalid(
            "metadata.name",
            "FieldValueInvalid",
            &format!(
                "Invalid value: {name:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"
            ),
        ));
    }
    for (k, v) in crate::selector::labels_of(obj) {
        if v.len() > 63
            || !v
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return Err(invalid(
                "metadata.labels",
                "FieldValueInvalid",
                &format!(
                    "Invalid value: {v:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must be no more than 63 characters (label {k:?})"
                ),
            ));
        }
    }
    match (kind.group, kind.plural) {
        ("batch", "jobs") => {
            if name.len() > 63 {
                return Err(invalid(
                    "metadata.name",
                    "FieldValueInvalid",
                    &format!("Invalid value: {name:?}: must be no more than 63 characters"),
                ));
            }
            let rp = obj
                .pointer("/spec/template/spec/restartPolicy")
                .and_then(Value::as_str)
                .unwrap_or("");
            if rp != "Never" && rp != "OnFailure" {
                return Err(invalid(
                    "spec.template.spec.restartPolicy",
                    "FieldValueNotSupported",
                    &format!(
                        "Unsupported value: {rp:?}: supported values: \"OnFailure\", \"Never\""
                    ),
                ));
            }
            validate_containers(
                obj.pointer("/spec/template/spec"),
                "spec.template.spec",
                &invalid,
            )?;
            if let Some(old) = old {
                for field in ["template", "selector", "completionMode"] {
                    let p = format!("/spec/{field}");
                    if obj.pointer(&p) != old.pointer(&p) {
                        return Err(invalid(
                            &format!("spec.{field}"),
                            "FieldValueInvalid",
                            "Invalid value: field is immutable",
                        ));
                    }
                }
            }
        }
        ("", "pods") => {
            validate_containers(obj.get("spec"), "spec", &invalid)?;
            if let Some(old) = old {
                let strip = |v: &Value| {
                    let mut s = v.get("spec").cloned().unwrap_or(Value::Null);
                    for list in ["containers", "initContainers"] {
                        if let Some(Value::Array(cs)) = s.get_mut(list) {
                            for c in cs {
                                ensure_object(c).remove("image");
                            }
                        }
                    }
                    if let Value::Object(m) = &mut s {
                        m.remove("activeDeadlineSeconds");
                        m.remove("tolerations");
                        m.remove("nodeName");
                    }
                    s
                };
                if strip(obj) != strip(old) {
                    return Err(invalid(
                        "spec",
                        "FieldValueForbidden",
                        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
                    ));
                }
            }
        }
        ("apps", "deployments")
        | ("apps", "replicasets")
        | ("apps", "statefulsets")
        | ("apps", "daemonsets") => {
            let selector = obj
                .pointer("/spec/selector/matchLabels")
                .and_then(Value::as_object);
            let Some(selector) = selector.filter(|s| !s.is_empty()) else {
                return Err(invalid(
                    "spec.selector",
                    "FieldValueRequired",
                    "Required value",
                ));
            };
            let labels = obj
                .pointer("/spec/template/metadata/labels")
                .and_then(Value::as_object);
            let matches = selector
                .iter()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
            if !matches {
                return Err(invalid(
                    "spec.template.metadata.labels",
                    "FieldValueInvalid",
                    "Invalid value: `selector` does not match template `labels`",
                ));
            }
            validate_containers(
                obj.pointer("/spec/template/spec"),
                "spec.template.spec",
                &invalid,
            )?;
            if let Some(old) = old
                && obj.pointer("/spec/selector") != old.pointer("/spec/selector")
            {
                return Err(invalid(
                    "spec.selector",
                    "FieldValueInvalid",
                    "Invalid value: field is immutable",
                ));
            }
        }
        ("rbac.authorization.k8s.io", "roles") | ("rbac.authorization.k8s.io", "clusterroles") => {
            let rules = obj
                .get("rules")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for (i, rule) in rules.iter().enumerate() {
                let verbs = rule.get("verbs").and_then(Value::as_array);
                if verbs.is_none_or(|v| v.is_empty()) {
                    return Err(invalid(
                        &format!("rules[{i}].verbs"),
                        "FieldValueRequired",
                        "Required value: verbs must contain at least one value",
                    ));
                }
                let has_urls = rule
                    .get("nonResourceURLs")
                    .and_then(Value::as_array)
                    .is_some_and(|u| !u.is_empty());
                if has_urls && kind.plural == "roles" {
                    return Err(invalid(
                        &format!("rules[{i}].nonResourceURLs"),
                        "FieldValueInvalid",
                        "Invalid value: namespaced rules cannot apply to non-resource URLs",
                    ));
                }
                if !has_urls
                    && rule
                        .get("apiGroups")
                        .and_then(Value::as_array)
                        .is_none_or(|g| g.is_empty())
                {
                    return Err(invalid(
                        &format!("rules[{i}].apiGroups"),
                        "FieldValueRequired",
                        "Required value: resource rules must supply at least one api group",
                    ));
                }
            }
        }
        ("rbac.authorization.k8s.io", "rolebindings")
        | ("rbac.authorization.k8s.io", "clusterrolebindings") => {
            let role_ref = obj.get("roleRef");
            let ref_kind = role_ref
                .and_then(|r| r.get("kind"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let allowed: &[&str] = if kind.plural == "rolebindings" {
                &["Role", "ClusterRole"]
            } else {
                &["ClusterRole"]
            };
            if !allowed.contains(&ref_kind) {
                return Err(invalid(
                    "roleRef.kind",
                    "FieldValueNotSupported",
                    &format!(
                        "Unsupported value: {ref_kind:?}: supported values: {}",
                        allowed
                            .iter()
                            .map(|a| format!("{a:?}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            if role_ref
                .and_then(|r| r.get("name"))
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(invalid(
                    "roleRef.name",
                    "FieldValueRequired",
                    "Required value",
                ));
            }
            if let Some(old) = old
                && old.get("roleRef") != role_ref
            {
                return Err(invalid(
                    "roleRef",
                    "FieldValueInvalid",
                    "Invalid value: cannot change roleRef",
                ));
            }
            let subjects = obj
                .get("subjects")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for (i, s) in subjects.iter().enumerate() {
                let skind = s.get("kind").and_then(Value::as_str).unwrap_or("");
                if !["ServiceAccount", "User", "Group"].contains(&skind) {
                    return Err(invalid(
                        &format!("subjects[{i}].kind"),
                        "FieldValueNotSupported",
                        &format!(
                            "Unsupported value: {skind:?}: supported values: \"ServiceAccount\", \"User\", \"Group\""
                        ),
                    ));
                }
                if skind == "ServiceAccount"
                    && kind.plural == "clusterrolebindings"
                    && s.get("namespace")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                {
                    return Err(invalid(
                        &format!("subjects[{i}].namespace"),
                        "FieldValueRequired",
                        "Required value",
                    ));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn validate_containers(
    spec: Option<&Value>,
    at: &str,
    invalid: &dyn Fn(&str, &str, &str) -> ApiError,
) -> Result<(), ApiError> {
    let containers = spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array);
    let Some(containers) = containers.filter(|c| !c.is_empty()) else {
        return Err(invalid(
            &format!("{at}.containers"),
            "FieldValueRequired",
            "Required value",
        ));
    };
    for (i, c) in containers.iter().enumerate() {
        for field in ["name", "image"] {
            if c.get(field)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(invalid(
                    &format!("{at}.containers[{i}].{field}"),
                    "FieldValueRequired",
                    "Required value",
                ));
            }
        }
    }
    let rp = spec
        .and_then(|s| s.get("restartPolicy"))
        .and_then(Value::as_str)
        .unwrap_or("Always");
    if !["Always", "OnFailure", "Never"].contains(&rp) {
        return Err(invalid(
            &format!("{at}.restartPolicy"),
            "FieldValueNotSupported",
            &format!(
                "Unsupported value: {rp:?}: supported values: \"Always\", \"OnFailure\", \"Never\""
            ),
        ));
    }
    Ok(())
}
