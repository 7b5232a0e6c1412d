//! The Kubernetes objects of one state.
//!
//! Least privilege, spelled out:
//! - the investigation ServiceAccount reads named kinds in the target
//!   namespaces (get/list/watch; `pods/log` get) — never Secrets, never
//!   ConfigMaps (they often hold credentials), never a wildcard;
//! - the remediation ServiceAccount exists only in phases with actions and
//!   holds exactly the union of `ActionKind::permissions()` of the phase's
//!   actions, in the target namespaces only;
//! - no Role or RoleBinding is ever rendered in a protected namespace;
//! - the investigations namespace denies all ingress and egress by default;
//!   a phase's investigation pods may reach DNS, the control plane and the
//!   endpoints of the domains the phase reads, nothing else.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use warden_control::config::{Config, ConnectorKind, check_cidr};
use warden_core::{ActionKind, Complexity, ResourceProfile, TrustPhase};

pub const LABEL_NAME: &str = "app.kubernetes.io/name";
const LABEL_PART_OF: &str = "app.kubernetes.io/part-of";
const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const LABEL_ENVIRONMENT: &str = "warden.dev/environment";
/// Investigation and remediation pods carry their phase in this label; the
/// NetworkPolicies select on it.
pub const LABEL_PHASE: &str = "warden.dev/phase";
/// `app.kubernetes.io/name` of investigation pods.
pub const INVESTIGATION_POD_NAME: &str = "warden-investigation";
/// `app.kubernetes.io/name` of remediation pods.
pub const REMEDIATION_POD_NAME: &str = "warden-remediation";
/// `app.kubernetes.io/name` of the control plane's pods (the Helm chart).
const CONTROL_PLANE_POD_NAME: &str = "warden";
pub const DEFAULT_DENY_POLICY: &str = "warden-default-deny";
pub const QUOTA_NAME: &str = "warden-investigations";

const RBAC: &str = "rbac.authorization.k8s.io/v1";
const NETWORKING: &str = "networking.k8s.io/v1";

/// What an investigation may read, per API group: (group, resources, verbs).
pub const READ_ONLY_RULES: &[(&str, &[&str], &[&str])] = &[
    (
        "",
        &["pods", "events", "services", "endpoints"],
        &["get", "list", "watch"],
    ),
    ("", &["pods/log"], &["get"]),
    (
        "apps",
        &["deployments", "replicasets", "statefulsets", "daemonsets"],
        &["get", "list", "watch"],
    ),
    ("batch", &["jobs"], &["get", "list", "watch"]),
];

/// The remediation ServiceAccount of a phase.
pub fn remediation_service_account(phase: TrustPhase) -> String {
    format!("warden-remediate-{}", phase.as_str())
}

/// The investigation ServiceAccount of a phase (configurable).
fn investigation_service_account(config: &Config, phase: TrustPhase) -> String {
    config
        .runtime
        .kubernetes
        .service_accounts
        .get(phase)
        .to_string()
}

/// The RBAC rules of the remediation Role: each allowed action's
/// permissions, merged per (group, resource) with verbs sorted, in a stable
/// order. Exactly `ActionKind::permissions()`, nothing added.
pub fn remediation_rules(actions: &[ActionKind]) -> Vec<Value> {
    let mut merged: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for action in actions {
        for p in action.permissions() {
            let verbs = merged.entry((p.api_group, p.resource)).or_default();
            verbs.extend(p.verbs.iter().copied());
        }
    }
    merged
        .into_iter()
        .map(|((group, resource), mut verbs)| {
            verbs.sort_unstable();
            verbs.dedup();
            json!({ "apiGroups": [group], "resources": [resource], "verbs": verbs })
        })
        .collect()
}

/// Problems that make a configuration unrenderable (beyond
/// `Config::validate`), each starting with its field path.
pub fn check(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    let ns = &config.namespaces;
    let protected = &ns.protected;
    for (i, t) in ns.targets.iter().enumerate() {
        if protected.contains(t) {
            problems.push(format!(
                "namespaces.targets[{i}] {t:?} is also in namespaces.protected; a protected namespace is never read or acted on, remove it from one list"
            ));
        }
        if !is_dns_label(t) {
            problems.push(format!(
                "namespaces.targets[{i}] {t:?}: expected a namespace name (lowercase letters, digits, '-')"
            ));
        }
    }
    for (field, name) in [
        ("namespaces.control", &ns.control),
        ("namespaces.investigations", &ns.investigations),
    ] {
        if protected.contains(name) {
            problems.push(format!(
                "{field} {name:?} is in namespaces.protected; warden's own namespaces cannot be protected ones"
            ));
        }
        if !is_dns_label(name) {
            problems.push(format!(
                "{field} {name:?}: expected a namespace name (lowercase letters, digits, '-')"
            ));
        }
    }
    if ns.targets.is_empty() {
        problems.push(
            "namespaces.targets: name at least one namespace whose workloads investigations read"
                .into(),
        );
    }
    for (i, e) in config.environments.iter().enumerate() {
        if !is_dns_label(&e.name) {
            problems.push(format!(
                "environments[{i}].name {:?}: expected lowercase letters, digits and '-' (it names a directory and a label)",
                e.name
            ));
        }
    }
    // A host endpoint of a domain some phase reads cannot become an egress
    // rule (NetworkPolicies match addresses, not names).
    for (i, d) in config.secrets.domains.iter().enumerate() {
        let read = config
            .phases
            .iter()
            .any(|(_, caps)| caps.readable_domains.contains(&d.name));
        let reached = read || d.connector == ConnectorKind::Kubernetes;
        for (j, e) in d.endpoints.iter().enumerate() {
            if reached && let Some(host) = &e.host {
                problems.push(format!(
                    "secrets.domains[{i}].endpoints[{j}].host {host:?}: a NetworkPolicy cannot allow a host name; give the service's address range as cidr (e.g. its Service or Pod CIDR)"
                ));
            }
        }
    }
    problems
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn labels(env: &str, phase: TrustPhase) -> Value {
    json!({
        LABEL_PART_OF: "warden",
        LABEL_MANAGED_BY: "warden-render",
        LABEL_ENVIRONMENT: env,
        LABEL_PHASE: phase.as_str(),
    })
}

fn meta(name: &str, namespace: &str, env: &str, phase: TrustPhase) -> Value {
    json!({ "name": name, "namespace": namespace, "labels": labels(env, phase) })
}

/// Every Kubernetes object of `env` in `phase`, in a stable order.
pub fn objects(config: &Config, env: &str, phase: TrustPhase) -> Vec<Value> {
    let ns = &config.namespaces;
    let caps = config.phases.get(phase);
    let agent_sa = investigation_service_account(config, phase);
    let remediate_sa = remediation_service_account(phase);
    let acts = !caps.actions.is_empty();
    // Never in a protected namespace, whatever the lists say (render
    // refuses the overlap; this keeps the guarantee local).
    let targets: Vec<&String> = ns
        .targets
        .iter()
        .filter(|t| !ns.protected.contains(t))
        .collect();

    let mut out = Vec::new();
    out.push(service_account(&agent_sa, &ns.investigations, env, phase));
    if acts {
        out.push(service_account(
            &remediate_sa,
            &ns.investigations,
            env,
            phase,
        ));
    }

    let read_rules: Vec<Value> = READ_ONLY_RULES
        .iter()
        .map(|(group, resources, verbs)| {
            json!({ "apiGroups": [group], "resources": resources, "verbs": verbs })
        })
        .collect();
    let read_role = format!("{agent_sa}-read");
    for t in &targets {
        out.push(role(&read_role, t, env, phase, read_rules.clone()));
        out.push(role_binding(
            &read_role,
            t,
            env,
            phase,
            &agent_sa,
            &ns.investigations,
        ));
    }
    if acts {
        let rules = remediation_rules(&caps.actions);
        for t in &targets {
            out.push(role(&remediate_sa, t, env, phase, rules.clone()));
            out.push(role_binding(
                &remediate_sa,
                t,
                env,
                phase,
                &remediate_sa,
                &ns.investigations,
            ));
        }
    }

    out.push(default_deny(&ns.investigations, env, phase));
    out.push(investigation_egress(config, env, phase, &agent_sa));
    if acts {
        out.push(remediation_egress(config, env, phase, &remediate_sa));
    }
    out.push(resource_quota(config, env, phase, acts));
    out.push(limit_range(config, env, phase));
    out
}

fn service_account(name: &str, namespace: &str, env: &str, phase: TrustPhase) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": meta(name, namespace, env, phase),
        // Jobs mount a projected, audience-bound token explicitly.
        "automountServiceAccountToken": false,
    })
}

fn role(name: &str, namespace: &str, env: &str, phase: TrustPhase, rules: Vec<Value>) -> Value {
    json!({
        "apiVersion": RBAC,
        "kind": "Role",
        "metadata": meta(name, namespace, env, phase),
        "rules": rules,
    })
}

fn role_binding(
    name: &str,
    namespace: &str,
    env: &str,
    phase: TrustPhase,
    service_account: &str,
    sa_namespace: &str,
) -> Value {
    json!({
        "apiVersion": RBAC,
        "kind": "RoleBinding",
        "metadata": meta(name, namespace, env, phase),
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name },
        "subjects": [{ "kind": "ServiceAccount", "name": service_account, "namespace": sa_namespace }],
    })
}

fn default_deny(namespace: &str, env: &str, phase: TrustPhase) -> Value {
    json!({
        "apiVersion": NETWORKING,
        "kind": "NetworkPolicy",
        "metadata": meta(DEFAULT_DENY_POLICY, namespace, env, phase),
        "spec": { "podSelector": {}, "policyTypes": ["Ingress", "Egress"] },
    })
}

fn dns_rule() -> Value {
    json!({
        "to": [{
            "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": "kube-system" } },
            "podSelector": { "matchLabels": { "k8s-app": "kube-dns" } },
        }],
        "ports": [ { "protocol": "UDP", "port": 53 }, { "protocol": "TCP", "port": 53 } ],
    })
}

fn control_plane_rule(config: &Config) -> Value {
    json!({
        "to": [{
            "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": config.namespaces.control } },
            "podSelector": { "matchLabels": { LABEL_NAME: CONTROL_PLANE_POD_NAME } },
        }],
        "ports": [ { "protocol": "TCP", "port": config.server.listen.port() } ],
    })
}

/// One egress rule per distinct (cidr, port) of the given domains, in
/// declaration order, with the domains each serves (for the annotation).
fn endpoint_rules<'c>(
    config: &'c Config,
    include: impl Fn(&'c warden_control::config::SecretsDomainConfig) -> bool,
) -> (Vec<Value>, Vec<String>) {
    let mut seen: Vec<(String, u16)> = Vec::new();
    let mut served: BTreeMap<(String, u16), Vec<&str>> = BTreeMap::new();
    for d in config.secrets.domains.iter().filter(|d| include(d)) {
        for e in &d.endpoints {
            // Hosts were refused by `check`; invalid CIDRs by validation.
            let Some(cidr) = &e.cidr else { continue };
            if check_cidr(cidr).is_err() {
                continue;
            }
            let key = (cidr.clone(), e.port);
            if !seen.contains(&key) {
                seen.push(key.clone());
            }
            served.entry(key).or_default().push(&d.name);
        }
    }
    let rules = seen
        .iter()
        .map(|(cidr, port)| {
            json!({
                "to": [{ "ipBlock": { "cidr": cidr } }],
                "ports": [{ "protocol": "TCP", "port": port }],
            })
        })
        .collect();
    let notes = seen
        .iter()
        .map(|k| {
            let names = served.get(k).map(|v| v.join("+")).unwrap_or_default();
            format!("{}:{}={names}", k.0, k.1)
        })
        .collect();
    (rules, notes)
}

fn egress_policy(
    config: &Config,
    name: &str,
    pod_name: &str,
    env: &str,
    phase: TrustPhase,
    endpoint_rules: Vec<Value>,
    notes: Vec<String>,
) -> Value {
    let mut egress = vec![dns_rule(), control_plane_rule(config)];
    egress.extend(endpoint_rules);
    let mut metadata = meta(name, &config.namespaces.investigations, env, phase);
    if !notes.is_empty()
        && let Some(m) = metadata.as_object_mut()
    {
        // Which domain each address rule is for, for reviewers.
        m.insert(
            "annotations".into(),
            json!({ "warden.dev/egress-endpoints": notes.join(", ") }),
        );
    }
    json!({
        "apiVersion": NETWORKING,
        "kind": "NetworkPolicy",
        "metadata": metadata,
        "spec": {
            "podSelector": { "matchLabels": { LABEL_NAME: pod_name, LABEL_PHASE: phase.as_str() } },
            "policyTypes": ["Egress"],
            "egress": egress,
        },
    })
}

/// Investigation pods of the phase: DNS, the control plane, and the
/// endpoints of the domains the phase reads.
fn investigation_egress(config: &Config, env: &str, phase: TrustPhase, sa: &str) -> Value {
    let readable = &config.phases.get(phase).readable_domains;
    let (rules, notes) = endpoint_rules(config, |d| readable.contains(&d.name));
    egress_policy(
        config,
        &format!("{sa}-egress"),
        INVESTIGATION_POD_NAME,
        env,
        phase,
        rules,
        notes,
    )
}

/// Remediation pods act through the Kubernetes API: DNS, the control plane
/// and the endpoints of `kubernetes` domains (the API server) only.
fn remediation_egress(config: &Config, env: &str, phase: TrustPhase, sa: &str) -> Value {
    let (rules, notes) = endpoint_rules(config, |d| d.connector == ConnectorKind::Kubernetes);
    egress_policy(
        config,
        &format!("{sa}-egress"),
        REMEDIATION_POD_NAME,
        env,
        phase,
        rules,
        notes,
    )
}

fn largest_profile(config: &Config) -> (u64, u32) {
    Complexity::ALL
        .iter()
        .map(|c| config.planner.profile(*c))
        .fold((0, 0), |(m, c), p: &ResourceProfile| {
            (m.max(p.memory_bytes), c.max(p.cpu_millis))
        })
}

fn memory_quantity(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes % MIB == 0 {
        format!("{}Mi", bytes / MIB)
    } else {
        bytes.to_string()
    }
}

fn cpu_quantity(millis: u64) -> String {
    if millis % 1000 == 0 {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

/// The investigations namespace's ceiling: `runtime.max_concurrent`
/// investigations at the largest planner profile, plus — in phases with
/// actions — one remediation job each at the smallest (simple) profile,
/// which is also the LimitRange default.
fn resource_quota(config: &Config, env: &str, phase: TrustPhase, acts: bool) -> Value {
    let n = u64::try_from(config.runtime.max_concurrent).unwrap_or(u64::MAX);
    let (max_mem, max_cpu) = largest_profile(config);
    let simple = &config.planner.simple;
    let extra = u64::from(acts);
    let pods = n.saturating_mul(1 + extra);
    let memory = n
        .saturating_mul(max_mem)
        .saturating_add(n.saturating_mul(extra).saturating_mul(simple.memory_bytes));
    let cpu = n.saturating_mul(u64::from(max_cpu)).saturating_add(
        n.saturating_mul(extra)
            .saturating_mul(u64::from(simple.cpu_millis)),
    );
    let (memory, cpu) = (memory_quantity(memory), cpu_quantity(cpu));
    json!({
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": meta(QUOTA_NAME, &config.namespaces.investigations, env, phase),
        "spec": { "hard": {
            "pods": pods.to_string(),
            "requests.cpu": cpu,
            "limits.cpu": cpu,
            "requests.memory": memory,
            "limits.memory": memory,
        } },
    })
}

/// Containers without resources get the simple profile; none may exceed the
/// largest.
fn limit_range(config: &Config, env: &str, phase: TrustPhase) -> Value {
    let (max_mem, max_cpu) = largest_profile(config);
    let simple = &config.planner.simple;
    let default = json!({
        "cpu": cpu_quantity(u64::from(simple.cpu_millis)),
        "memory": memory_quantity(simple.memory_bytes),
    });
    json!({
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": meta(QUOTA_NAME, &config.namespaces.investigations, env, phase),
        "spec": { "limits": [{
            "type": "Container",
            "default": default,
            "defaultRequest": default,
            "max": { "cpu": cpu_quantity(u64::from(max_cpu)), "memory": memory_quantity(max_mem) },
        }] },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remediation_rules_merge_verbs_per_resource() {
        let rules = remediation_rules(&[ActionKind::RolloutRestart, ActionKind::ScaleDeployment]);
        assert_eq!(
            rules,
            vec![
                json!({"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"]}),
                json!({"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["get", "patch"]}),
            ]
        );
        assert!(remediation_rules(&[]).is_empty());
    }

    #[test]
    fn quantities_are_written_the_way_people_read_them() {
        assert_eq!(memory_quantity(4096 * 1024 * 1024), "4096Mi");
        assert_eq!(memory_quantity(1000), "1000");
        assert_eq!(cpu_quantity(2000), "2");
        assert_eq!(cpu_quantity(500), "500m");
    }
}
