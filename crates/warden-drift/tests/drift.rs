#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Drift between a desired state shaped like warden's rendered output and
//! live variants of it: each change must land on the right side (widening
//! or narrowing) and name its source; equivalent rewrites must not drift;
//! the fix must restore the desired state.

use serde_json::{Value, json};
use warden_drift::report::Status;
use warden_drift::{Area, Finding, Options, Report, State, compare, fix};

const NS: &str = "warden-investigations";
const AGENT: &str = "warden-agent-shadow";

fn sa(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ServiceAccount",
           "metadata": {"name": name, "namespace": NS}})
}

fn desired() -> State {
    let objects = vec![
        sa(AGENT),
        sa("warden-remediate"),
        // Read-only access in the target namespace.
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "warden-read", "namespace": "default"},
        "rules": [
          {"apiGroups": [""], "resources": ["pods", "services", "events"], "verbs": ["get", "list", "watch"]},
          {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch"]}
        ]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "warden-read", "namespace": "default"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "warden-read"},
               "subjects": [{"kind": "ServiceAccount", "name": AGENT, "namespace": NS}]}),
        // Remediation on named objects only.
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "warden-remediate", "namespace": "default"},
        "rules": [
          {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"], "resourceNames": ["web", "api"]}
        ]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "warden-remediate", "namespace": "default"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "warden-remediate"},
               "subjects": [{"kind": "ServiceAccount", "name": "warden-remediate", "namespace": NS}]}),
        // An aggregated ClusterRole for node reads.
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": "warden-cluster-read"},
               "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"warden.dev/aggregate-to-read": "true"}}]},
               "rules": []}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": "warden-cluster-read-nodes", "labels": {"warden.dev/aggregate-to-read": "true"}},
               "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "warden-cluster-read"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "warden-cluster-read"},
               "subjects": [{"kind": "ServiceAccount", "name": AGENT, "namespace": NS}]}),
        // Default-deny egress plus DNS and two domains.
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"name": "default-deny-egress", "namespace": NS},
               "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "warden-investigation"}},
                        "policyTypes": ["Egress"], "egress": []}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"name": "allow-dns", "namespace": NS},
               "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "warden-investigation"}},
                        "policyTypes": ["Egress"],
                        "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "allow-domains", "namespace": NS},
        "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "warden-investigation"}},
                 "policyTypes": ["Egress"],
                 "egress": [
                   {"to": [{"ipBlock": {"cidr": "10.20.0.0/24"}}], "ports": [{"protocol": "TCP", "port": 9090}]},
                   {"to": [{"ipBlock": {"cidr": "10.30.0.5/32"}}], "ports": [{"protocol": "TCP", "port": 5432}]}
                 ]}}),
    ];
    let vault_policies = [
        (
            "warden-shadow-database".to_string(),
            "# database domain, shadow phase\npath \"agent/data/database\" {\n  capabilities = [\"read\"]\n}\n".to_string(),
        ),
        (
            "warden-shadow-metrics".to_string(),
            "path \"agent/data/application-metrics\" {\n  capabilities = [\"read\"]\n}\n".to_string(),
        ),
    ]
    .into();
    State {
        objects,
        vault_policies,
        vault_roles: [(
            "auth/jwt/role/warden-shadow".to_string(),
            json!({"token_policies": ["warden-shadow-database", "warden-shadow-metrics"],
                   "bound_subject": format!("system:serviceaccount:{NS}:{AGENT}"),
                   "bound_audiences": ["warden"], "token_ttl": "900s"}),
        )]
        .into(),
    }
}

fn find<'a>(state: &'a mut State, kind: &str, name: &str) -> &'a mut Value {
    state
        .objects
        .iter_mut()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind} {name} in fixture"))
}

fn drift(live: &State) -> Report {
    compare(&desired(), live, Options::default()).unwrap()
}

fn names(f: &Finding) -> Vec<String> {
    f.sources.iter().map(|s| s.object.to_string()).collect()
}

/// Applies the fix and checks that the drift is gone.
fn assert_fix_restores(live: &State) -> warden_drift::Fix {
    assert_fix_restores_against(&desired(), live)
}

fn assert_fix_restores_against(d: &State, live: &State) -> warden_drift::Fix {
    let d = d.clone();
    let report = compare(&d, live, Options::default()).unwrap();
    assert_ne!(report.status(), Status::NoDrift);
    let fix = fix::plan(&d, live, &report, Options::default()).unwrap();
    assert_eq!(fix.remaining, 0, "{fix:?}");
    let after = compare(&d, &fix.applied_to(live), Options::default()).unwrap();
    assert_eq!(after.status(), Status::NoDrift, "{}", after.to_text());
    // The printed form round-trips.
    let yaml = fix.to_yaml().unwrap();
    let back: warden_drift::Fix = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(back, fix);
    fix
}

#[test]
fn identical_states_do_not_drift() {
    let r = drift(&desired());
    assert_eq!(r.status(), Status::NoDrift, "{}", r.to_text());
    assert_eq!(r.status().exit_code(), 0);
    assert!(
        fix::plan(&desired(), &desired(), &r, Options::default())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn an_added_wildcard_verb_is_widening_naming_the_role_and_binding() {
    let mut live = desired();
    find(&mut live, "Role", "warden-read")["rules"][1]["verbs"] =
        json!(["get", "list", "watch", "*"]);
    let r = drift(&live);
    assert_eq!(r.status(), Status::Widening, "{}", r.to_text());
    assert_eq!(r.status().exit_code(), 3);
    assert!(r.narrowing.is_empty());
    assert_eq!(r.widening.len(), 1, "{}", r.to_text());
    let f = &r.widening[0];
    assert_eq!(f.area, Area::Rbac);
    assert_eq!(f.holder, format!("ServiceAccount {NS}/{AGENT}"));
    assert_eq!(
        f.permission,
        "* deployments (group apps) in namespace default"
    );
    assert_eq!(
        names(f),
        vec![
            "RoleBinding/default/warden-read",
            "Role/default/warden-read"
        ]
    );
    let fix = assert_fix_restores(&live);
    assert_eq!(fix.apply.len(), 1);
    assert_eq!(fix.apply[0]["kind"], "Role");
    assert!(fix.delete.is_empty());
}

#[test]
fn a_new_cluster_role_binding_to_the_agent_is_widening_and_the_fix_deletes_only_the_binding() {
    let mut live = desired();
    live.objects.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "cluster-admin"},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"nonResourceURLs": ["*"], "verbs": ["*"]}]}));
    live.objects.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "debug-agent"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": AGENT, "namespace": NS}]}));
    let r = drift(&live);
    assert_eq!(r.status(), Status::Widening);
    assert_eq!(r.widening.len(), 2, "{}", r.to_text());
    assert!(r.widening.iter().all(|f| names(f)
        == vec![
            "ClusterRoleBinding/debug-agent",
            "ClusterRole/cluster-admin"
        ]));
    assert!(
        r.widening
            .iter()
            .any(|f| f.permission == "* * (group *) cluster-wide")
    );
    assert!(
        r.widening
            .iter()
            .any(|f| f.permission == "* non-resource URL * cluster-wide")
    );
    let fix = assert_fix_restores(&live);
    assert!(fix.apply.is_empty());
    assert_eq!(
        fix.delete.len(),
        1,
        "cluster-admin itself must stay: {fix:?}"
    );
    assert_eq!(fix.delete[0].to_string(), "ClusterRoleBinding/debug-agent");
}

#[test]
fn a_binding_to_the_service_account_group_reaches_the_agent() {
    let mut live = desired();
    live.objects.push(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "secret-reader"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}),
    );
    live.objects.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "all-sas-read-secrets", "namespace": "default"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "secret-reader"},
        "subjects": [{"kind": "Group", "name": format!("system:serviceaccounts:{NS}"), "apiGroup": "rbac.authorization.k8s.io"}]}));
    let r = drift(&live);
    assert_eq!(r.status(), Status::Widening);
    let holders: Vec<&str> = r.widening.iter().map(|f| f.holder.as_str()).collect();
    assert!(
        holders.contains(&format!("ServiceAccount {NS}/{AGENT}").as_str()),
        "{holders:?}"
    );
    assert!(holders.contains(&format!("ServiceAccount {NS}/warden-remediate").as_str()));
    // A RoleBinding to a ClusterRole grants in its own namespace only.
    assert!(
        r.widening
            .iter()
            .all(|f| f.permission == "get secrets in namespace default")
    );
    assert!(
        r.widening[0].sources[0]
            .detail
            .as_deref()
            .unwrap()
            .contains(&format!("Group system:serviceaccounts:{NS}"))
    );
    assert_fix_restores(&live);
}

#[test]
fn platform_default_bindings_are_not_drift() {
    let mut live = desired();
    live.objects.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "system:basic-user", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
        "rules": [{"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews"], "verbs": ["create"]}]}));
    live.objects.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "system:basic-user", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:basic-user"},
        "subjects": [{"kind": "Group", "name": "system:authenticated", "apiGroup": "rbac.authorization.k8s.io"}]}));
    assert_eq!(drift(&live).status(), Status::NoDrift);
    // The same binding without the platform's label is drift.
    find(&mut live, "ClusterRoleBinding", "system:basic-user")["metadata"]["labels"] = json!({});
    assert_eq!(drift(&live).status(), Status::Widening);
}

#[test]
fn an_aggregated_role_picking_up_a_new_labelled_role_is_widening() {
    let mut live = desired();
    live.objects.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "innocent-looking", "labels": {"warden.dev/aggregate-to-read": "true"}},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]}));
    let r = drift(&live);
    assert_eq!(r.status(), Status::Widening);
    assert_eq!(r.widening.len(), 1, "{}", r.to_text());
    let f = &r.widening[0];
    assert_eq!(f.permission, "list secrets cluster-wide");
    assert_eq!(
        names(f),
        vec![
            "ClusterRoleBinding/warden-cluster-read",
            "ClusterRole/warden-cluster-read",
            "ClusterRole/innocent-looking"
        ]
    );
    assert_eq!(f.sources[2].role, "aggregated");
    let fix = assert_fix_restores(&live);
    assert_eq!(fix.delete.len(), 1);
    assert_eq!(fix.delete[0].name, "innocent-looking");
}

#[test]
fn a_removed_permission_is_narrowing_only() {
    let mut live = desired();
    find(&mut live, "Role", "warden-read")["rules"][0]["verbs"] = json!(["get", "list"]);
    let r = drift(&live);
    assert_eq!(r.status(), Status::NarrowingOnly, "{}", r.to_text());
    assert_eq!(r.status().exit_code(), 4);
    assert!(r.widening.is_empty());
    let perms: Vec<&str> = r.narrowing.iter().map(|f| f.permission.as_str()).collect();
    assert_eq!(
        perms,
        vec![
            "watch events in namespace default",
            "watch pods in namespace default",
            "watch services in namespace default"
        ]
    );
    assert_fix_restores(&live);
}

#[test]
fn a_deleted_binding_is_narrowing_and_the_fix_recreates_it() {
    let mut live = desired();
    live.objects
        .retain(|o| !(o["kind"] == "RoleBinding" && o["metadata"]["name"] == "warden-remediate"));
    let r = drift(&live);
    assert_eq!(r.status(), Status::NarrowingOnly);
    let fix = assert_fix_restores(&live);
    assert_eq!(fix.apply.len(), 1);
    assert_eq!(fix.apply[0]["kind"], "RoleBinding");
}

#[test]
fn rbac_written_differently_does_not_drift() {
    let mut live = desired();
    // Split, reordered, duplicated, merged.
    find(&mut live, "Role", "warden-read")["rules"] = json!([
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["watch", "list", "get"]},
        {"apiGroups": [""], "resources": ["services", "pods"], "verbs": ["list", "get", "watch"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["watch"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "get"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}
    ]);
    // resourceNames spread over two rules, verbs split differently.
    find(&mut live, "Role", "warden-remediate")["rules"] = json!([
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["patch", "get"], "resourceNames": ["api"]},
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"], "resourceNames": ["web"]},
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["patch"], "resourceNames": ["web"]}
    ]);
    // API-server-owned fields and a different binding subject order.
    let b = find(&mut live, "ClusterRoleBinding", "warden-cluster-read");
    b["metadata"]["uid"] = json!("0b5c");
    b["metadata"]["resourceVersion"] = json!("42");
    // The aggregation controller fills in the aggregated rules.
    find(&mut live, "ClusterRole", "warden-cluster-read")["rules"] =
        json!([{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list", "get"]}]);
    let r = drift(&live);
    assert_eq!(r.status(), Status::NoDrift, "{}", r.to_text());
}

#[test]
fn narrower_but_more_specific_rbac_is_narrowing_not_widening() {
    let mut live = desired();
    // The same verbs on one named pod instead of all pods: a subset.
    find(&mut live, "Role", "warden-read")["rules"][0] = json!(
        {"apiGroups": [""], "resources": ["services", "events"], "verbs": ["get", "list", "watch"]});
    find(&mut live, "Role", "warden-read")["rules"]
        .as_array_mut()
        .unwrap()
        .push(json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"], "resourceNames": ["web-0"]}));
    let r = drift(&live);
    assert_eq!(r.status(), Status::NarrowingOnly, "{}", r.to_text());
}

#[test]
fn an_added_egress_rule_to_anywhere_is_widening_naming_the_policy() {
    let mut live = desired();
    find(&mut live, "NetworkPolicy", "allow-domains")["spec"]["egress"]
        .as_array_mut()
        .unwrap()
        .push(json!({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "TCP", "port": 443}]}));
    let r = drift(&live);
    assert_eq!(r.status(), Status::Widening, "{}", r.to_text());
    assert!(r.narrowing.is_empty());
    assert_eq!(r.widening.len(), 1, "{}", r.to_text());
    let f = &r.widening[0];
    assert_eq!(f.area, Area::Egress);
    assert_eq!(
        f.holder,
        format!("pods {{app.kubernetes.io/name=warden-investigation}} in namespace {NS}")
    );
    assert!(
        f.permission
            .starts_with("egress to 0.0.0.0/0 on TCP/443 (all of it new)"),
        "{}",
        f.permission
    );
    assert_eq!(names(f), vec![format!("NetworkPolicy/{NS}/allow-domains")]);
    assert_eq!(f.sources[0].detail.as_deref(), Some("egress rule #3"));
    assert_fix_restores(&live);
}

#[test]
fn a_new_port_on_an_allowed_address_is_widening() {
    let mut live = desired();
    find(&mut live, "NetworkPolicy", "allow-domains")["spec"]["egress"][1]["ports"]
        .as_array_mut()
        .unwrap()
        .push(json!({"protocol": "TCP", "port": 22}));
    let r = drift(&live);
    assert_eq!(r.widening.len(), 1, "{}", r.to_text());
    assert!(
        r.widening[0]
            .permission
            .contains("newly reachable: 10.30.0.5/32 TCP/22"),
        "{}",
        r.widening[0].permission
    );
}

#[test]
fn a_new_policy_selecting_all_pods_widens_the_investigation_pods() {
    let mut live = desired();
    live.objects.push(
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "allow-all-egress", "namespace": NS},
        "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]}}),
    );
    let r = drift(&live);
    assert_eq!(r.status(), Status::Widening);
    assert!(r.widening.iter().any(|f| {
        f.holder.contains("warden-investigation")
            && f.permission
                .starts_with("egress to any destination on all ports")
    }));
    let fix = assert_fix_restores(&live);
    assert_eq!(fix.delete.len(), 1);
    assert_eq!(fix.delete[0].name, "allow-all-egress");
}

#[test]
fn deleting_the_default_deny_selection_makes_egress_unrestricted() {
    let mut live = desired();
    live.objects.retain(|o| o["kind"] != "NetworkPolicy");
    let r = drift(&live);
    assert_eq!(r.status(), Status::Widening);
    let f = &r.widening[0];
    assert!(
        f.permission.starts_with("unrestricted egress"),
        "{}",
        f.permission
    );
    assert_eq!(f.sources.len(), 3);
    assert!(f.sources.iter().all(|s| s.role == "missing"));
    let fix = assert_fix_restores(&live);
    assert_eq!(fix.apply.len(), 3);
}

#[test]
fn egress_written_differently_does_not_drift() {
    let mut live = desired();
    // One policy instead of three, the /24 as two /25s, ports as separate rules.
    live.objects.retain(|o| o["kind"] != "NetworkPolicy");
    live.objects.push(json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "investigations", "namespace": NS},
        "spec": {"podSelector": {"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "In", "values": ["warden-investigation"]}]},
                 "policyTypes": ["Egress"],
                 "egress": [
                   {"to": [{"ipBlock": {"cidr": "10.20.0.128/25"}}, {"ipBlock": {"cidr": "10.20.0.0/25"}}], "ports": [{"port": 9090}]},
                   {"to": [{"ipBlock": {"cidr": "10.30.0.5/32"}}], "ports": [{"protocol": "TCP", "port": 5432, "endPort": 5432}]},
                   {"to": [{"podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
                    "ports": [{"protocol": "TCP", "port": 53}]},
                   {"to": [{"podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
                    "ports": [{"protocol": "UDP", "port": 53}]}
                 ]}}));
    let r = drift(&live);
    assert_eq!(r.status(), Status::NoDrift, "{}", r.to_text());
}

#[test]
fn an_except_that_is_removed_widens_exactly_the_excepted_range() {
    let mut d = desired();
    find(&mut d, "NetworkPolicy", "allow-domains")["spec"]["egress"][0]["to"][0]["ipBlock"] =
        json!({"cidr": "10.20.0.0/16", "except": ["10.20.5.0/24"]});
    let mut live = d.clone();
    find(&mut live, "NetworkPolicy", "allow-domains")["spec"]["egress"][0]["to"][0]["ipBlock"] =
        json!({"cidr": "10.20.0.0/16"});
    let r = compare(&d, &live, Options::default()).unwrap();
    assert_eq!(r.widening.len(), 1, "{}", r.to_text());
    assert!(
        r.widening[0]
            .permission
            .ends_with("(newly reachable: 10.20.5.0/24 TCP/9090)"),
        "{}",
        r.widening[0].permission
    );
}

#[test]
fn a_broadened_vault_path_is_widening_naming_the_policy() {
    let mut live = desired();
    live.vault_policies.insert(
        "warden-shadow-database".into(),
        "path \"agent/data/*\" {\n  capabilities = [\"read\"]\n}\n".into(),
    );
    let r = drift(&live);
    assert_eq!(r.status(), Status::Widening, "{}", r.to_text());
    assert_eq!(r.widening.len(), 1);
    let f = &r.widening[0];
    assert_eq!(f.area, Area::Vault);
    assert_eq!(f.holder, "policy warden-shadow-database");
    assert_eq!(f.permission, "read on agent/data/<any>");
    assert_eq!(names(f), vec!["VaultPolicy/warden-shadow-database"]);
    assert!(
        f.sources[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("path \"agent/data/*\"")
    );
    let fix = assert_fix_restores(&live);
    assert_eq!(fix.vault_write.len(), 1);
    assert!(fix.vault_write["warden-shadow-database"].contains("agent/data/database"));
}

#[test]
fn an_extra_vault_policy_and_capability_are_widening_a_missing_one_narrowing() {
    let mut live = desired();
    live.vault_policies.insert(
        "warden-shadow-metrics".into(),
        "path \"agent/data/application-metrics\" { capabilities = [\"read\", \"update\"] }".into(),
    );
    live.vault_policies.remove("warden-shadow-database");
    live.vault_policies.insert(
        "stray".into(),
        "path \"sys/*\" { capabilities = [\"sudo\"] }".into(),
    );
    let r = drift(&live);
    let w: Vec<String> = r
        .widening
        .iter()
        .map(|f| format!("{}: {}", f.holder, f.permission))
        .collect();
    assert_eq!(
        w,
        vec![
            "policy stray: sudo on sys/<any>",
            "policy warden-shadow-metrics: update on agent/data/application-metrics"
        ]
    );
    assert_eq!(r.narrowing.len(), 1);
    assert_eq!(r.narrowing[0].permission, "read on agent/data/database");
    let fix = assert_fix_restores(&live);
    assert_eq!(fix.vault_delete, vec!["stray"]);
    assert_eq!(fix.vault_write.len(), 2);
}

#[test]
fn an_auth_role_attaching_another_policy_is_widening_naming_the_role() {
    let mut live = desired();
    let role = live
        .vault_roles
        .get_mut("auth/jwt/role/warden-shadow")
        .unwrap();
    role["token_policies"]
        .as_array_mut()
        .unwrap()
        .push(json!("root"));
    role["token_ttl"] = json!(86400);
    let r = drift(&live);
    assert_eq!(r.status(), Status::Widening, "{}", r.to_text());
    let w: Vec<&str> = r.widening.iter().map(|f| f.permission.as_str()).collect();
    assert_eq!(
        w,
        vec!["attaches policy root", "token_ttl 86400s (instead of 900s)"]
    );
    assert!(
        r.widening
            .iter()
            .all(|f| names(f) == vec!["VaultAuthRole/auth/jwt/role/warden-shadow"])
    );
    let fix = assert_fix_restores(&live);
    assert_eq!(fix.vault_role_write.len(), 1);
    // A role desired does not know is deleted by the fix.
    let mut live = desired();
    live.vault_roles.insert(
        "auth/jwt/role/debug".into(),
        json!({"token_policies": ["root"]}),
    );
    let r = drift(&live);
    assert_eq!(r.widening.len(), 1);
    assert_eq!(
        assert_fix_restores(&live).vault_role_delete,
        vec!["auth/jwt/role/debug"]
    );
}

#[test]
fn a_vault_policy_that_does_not_parse_is_an_error_naming_it() {
    let mut live = desired();
    live.vault_policies.insert(
        "broken".into(),
        "path \"x\" { capabilities = [\"reed\"] }".into(),
    );
    let e = compare(&desired(), &live, Options::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("Vault policy \"broken\": line 1"), "{e}");
    assert!(e.contains("unknown capability \"reed\""), "{e}");
}

#[test]
fn without_a_live_vault_source_vault_is_not_compared() {
    let mut live = desired();
    live.vault_policies.clear();
    let r = compare(&desired(), &live, Options { vault: false }).unwrap();
    assert_eq!(r.status(), Status::NoDrift);
    assert_eq!(r.notes.len(), 1);
}

#[test]
fn the_json_report_separates_widening_and_narrowing() {
    let mut live = desired();
    find(&mut live, "Role", "warden-read")["rules"][1]["verbs"] =
        json!(["get", "list", "watch", "delete"]);
    find(&mut live, "Role", "warden-read")["rules"][0]["verbs"] = json!(["get", "list"]);
    let j = drift(&live).to_json();
    assert_eq!(j["status"], "widening");
    assert_eq!(j["widening"].as_array().unwrap().len(), 1);
    assert_eq!(j["narrowing"].as_array().unwrap().len(), 3);
    assert_eq!(
        j["widening"][0]["sources"][0]["object"]["kind"],
        "RoleBinding"
    );
    assert_eq!(j["widening"][0]["area"], "rbac");
}

/// Ingress against what `warden render` writes: the dev/shadow state the
/// renderer's snapshot test keeps, whose default-deny policy selects every
/// pod of the investigations namespace for both directions.
mod ingress {
    use super::*;
    use std::path::Path;

    const RENDERED: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../warden-gitops/tests/snapshots/example/dev/shadow"
    );
    const DENY: &str = "warden-default-deny";
    const PODS: &str = "pods {app.kubernetes.io/name=warden-investigation, warden.dev/phase=shadow} in namespace warden-investigations";

    fn rendered() -> State {
        let state = warden_drift::source::load_dir(Path::new(RENDERED))
            .unwrap()
            .state;
        let deny = state
            .objects
            .iter()
            .find(|o| o["metadata"]["name"] == DENY)
            .expect("the rendered default-deny policy");
        assert_eq!(deny["spec"]["podSelector"], json!({}));
        assert_eq!(deny["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        assert!(deny["spec"].get("ingress").is_none());
        state
    }

    /// The investigation pods' selector, as the render writes it.
    fn investigation_pods(state: &State) -> Value {
        state
            .objects
            .iter()
            .find(|o| o["kind"] == "NetworkPolicy" && o["spec"]["egress"].is_array())
            .expect("the rendered egress allow policy")["spec"]["podSelector"]
            .clone()
    }

    fn netpol(name: &str, spec: Value) -> Value {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"name": name, "namespace": NS}, "spec": spec})
    }

    fn prometheus() -> Value {
        json!({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
               "podSelector": {"matchLabels": {"app": "prometheus"}}})
    }

    fn control_plane() -> Value {
        json!({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "warden-system"}},
               "podSelector": {"matchLabels": {"app.kubernetes.io/name": "warden"}}})
    }

    /// The render plus scraping of the investigation pods by Prometheus and
    /// the monitoring subnet, and the control plane on 8080.
    fn with_scrape() -> State {
        let mut state = rendered();
        let pods = investigation_pods(&state);
        state.objects.push(netpol(
            "allow-scrape",
            json!({"podSelector": pods, "policyTypes": ["Ingress"],
            "ingress": [
              {"from": [prometheus(), {"ipBlock": {"cidr": "10.8.0.0/16"}}],
               "ports": [{"protocol": "TCP", "port": 9090}, {"protocol": "TCP", "port": 9100}]},
              {"from": [control_plane()], "ports": [{"protocol": "TCP", "port": 8080}]}
            ]}),
        ));
        state
    }

    #[test]
    fn the_render_against_itself_does_not_drift() {
        for state in [rendered(), with_scrape()] {
            let r = compare(&state, &state, Options::default()).unwrap();
            assert_eq!(r.status(), Status::NoDrift, "{}", r.to_text());
        }
    }

    #[test]
    fn an_ingress_rule_from_all_namespaces_is_widening_naming_the_policy_and_rule() {
        let d = rendered();
        let mut live = d.clone();
        live.objects.push(netpol(
            "debug-ingress",
            json!({"podSelector": investigation_pods(&d), "policyTypes": ["Ingress"],
                   "ingress": [{"from": [{"namespaceSelector": {}}],
                                "ports": [{"protocol": "TCP", "port": 8080}]}]}),
        ));
        let r = compare(&d, &live, Options::default()).unwrap();
        assert_eq!(r.status(), Status::Widening, "{}", r.to_text());
        assert_eq!(r.status().exit_code(), 3);
        assert!(r.narrowing.is_empty(), "{}", r.to_text());
        assert_eq!(r.widening.len(), 1, "{}", r.to_text());
        let f = &r.widening[0];
        assert_eq!(f.area, Area::Ingress);
        assert_eq!(f.holder, PODS);
        assert_eq!(
            f.permission,
            "ingress from all pods in all namespaces on TCP/8080 (all of it new)"
        );
        assert_eq!(names(f), vec![format!("NetworkPolicy/{NS}/debug-ingress")]);
        assert_eq!(f.sources[0].detail.as_deref(), Some("ingress rule #1"));
        // Printed and serialised under its own area.
        assert!(r.to_text().contains(&format!("[ingress] {PODS}")));
        assert_eq!(r.to_json()["widening"][0]["area"], "ingress");
        let fix = assert_fix_restores_against(&d, &live);
        assert!(fix.apply.is_empty());
        assert_eq!(fix.delete.len(), 1);
        assert_eq!(fix.delete[0].name, "debug-ingress");
    }

    #[test]
    fn deleting_the_rendered_default_deny_makes_egress_and_ingress_unrestricted() {
        let d = rendered();
        let mut live = d.clone();
        live.objects.retain(|o| o["metadata"]["name"] != DENY);
        let r = compare(&d, &live, Options::default()).unwrap();
        assert_eq!(r.status(), Status::Widening, "{}", r.to_text());
        assert!(r.narrowing.is_empty(), "{}", r.to_text());
        let found: Vec<(Area, &str, &str)> = r
            .widening
            .iter()
            .map(|f| (f.area, f.holder.as_str(), f.permission.as_str()))
            .collect();
        let every_pod = format!("pods {{}} in namespace {NS}");
        assert_eq!(
            found,
            vec![
                (
                    Area::Egress,
                    every_pod.as_str(),
                    "unrestricted egress (no egress policy selects these pods)"
                ),
                (
                    Area::Ingress,
                    every_pod.as_str(),
                    "unrestricted ingress (no ingress policy selects these pods)"
                ),
            ]
        );
        for f in &r.widening {
            assert_eq!(names(f), vec![format!("NetworkPolicy/{NS}/{DENY}")]);
            assert_eq!(f.sources[0].role, "missing");
        }
        let fix = assert_fix_restores_against(&d, &live);
        assert_eq!(fix.apply.len(), 1);
        assert_eq!(fix.apply[0]["metadata"]["name"], DENY);
        assert!(fix.delete.is_empty());
    }

    #[test]
    fn narrowed_ingress_is_narrowing_only() {
        let d = with_scrape();
        let mut live = d.clone();
        // The node-exporter port is gone for both scrapers.
        find(&mut live, "NetworkPolicy", "allow-scrape")["spec"]["ingress"][0]["ports"] =
            json!([{"protocol": "TCP", "port": 9090}]);
        let r = compare(&d, &live, Options::default()).unwrap();
        assert_eq!(r.status(), Status::NarrowingOnly, "{}", r.to_text());
        assert_eq!(r.status().exit_code(), 4);
        assert!(r.widening.is_empty());
        assert_eq!(r.narrowing.len(), 1, "{}", r.to_text());
        let f = &r.narrowing[0];
        assert_eq!(f.area, Area::Ingress);
        assert_eq!(f.holder, PODS);
        assert_eq!(
            f.permission,
            "ingress from pods {app=prometheus} in namespaces {kubernetes.io/metadata.name=monitoring}, \
             10.8.0.0/16 on TCP/9090, TCP/9100 (no longer allowed: 10.8.0.0/16 TCP/9100; \
             pods {app=prometheus} in namespaces {kubernetes.io/metadata.name=monitoring} TCP/9100)"
        );
        assert_eq!(names(f), vec![format!("NetworkPolicy/{NS}/allow-scrape")]);
        assert_eq!(f.sources[0].detail.as_deref(), Some("ingress rule #1"));
        let fix = assert_fix_restores_against(&d, &live);
        assert_eq!(fix.apply.len(), 1);

        // Without the policy, only the default deny selects the pods.
        let mut live = d.clone();
        live.objects
            .retain(|o| o["metadata"]["name"] != "allow-scrape");
        let r = compare(&d, &live, Options::default()).unwrap();
        assert_eq!(r.status(), Status::NarrowingOnly, "{}", r.to_text());
        let lost: Vec<(&str, Option<&str>)> = r
            .narrowing
            .iter()
            .map(|f| (f.permission.as_str(), f.sources[0].detail.as_deref()))
            .collect();
        assert_eq!(
            lost,
            vec![
                (
                    "ingress from pods {app.kubernetes.io/name=warden} in namespaces \
                     {kubernetes.io/metadata.name=warden-system} on TCP/8080 (all of it lost)",
                    Some("ingress rule #2")
                ),
                (
                    "ingress from pods {app=prometheus} in namespaces {kubernetes.io/metadata.name=monitoring}, \
                     10.8.0.0/16 on TCP/9090, TCP/9100 (all of it lost)",
                    Some("ingress rule #1")
                ),
            ]
        );
        assert_fix_restores_against(&d, &live);
    }

    #[test]
    fn ingress_written_differently_does_not_drift() {
        let d = with_scrape();
        let mut live = d.clone();
        live.objects
            .retain(|o| o["metadata"]["name"] != "allow-scrape" && o["metadata"]["name"] != DENY);
        // Without policyTypes, a policy with an `egress` section governs
        // both directions: the same default deny.
        live.objects
            .push(netpol(DENY, json!({"podSelector": {}, "egress": []})));
        // The merged rule split by peer, ports reordered or defaulted, the
        // /16 as two /17s, the rules spread over two policies, one of them
        // ingress by default and selecting by expression.
        live.objects.push(netpol(
            "scrape",
            json!({"podSelector": {"matchExpressions": [
                       {"key": "warden.dev/phase", "operator": "In", "values": ["shadow"]},
                       {"key": "app.kubernetes.io/name", "operator": "In", "values": ["warden-investigation"]}]},
                   "ingress": [
                     {"from": [{"ipBlock": {"cidr": "10.8.128.0/17"}}, {"ipBlock": {"cidr": "10.8.0.0/17"}}],
                      "ports": [{"port": 9100}, {"protocol": "TCP", "port": 9090}]},
                     {"from": [prometheus()],
                      "ports": [{"protocol": "TCP", "port": 9100}, {"protocol": "TCP", "port": 9090}]}
                   ]}),
        ));
        live.objects.push(netpol(
            "control-plane",
            json!({"podSelector": investigation_pods(&d), "policyTypes": ["Ingress"],
                   "ingress": [{"from": [control_plane()],
                                "ports": [{"protocol": "TCP", "port": 8080, "endPort": 8080}]}]}),
        ));
        let r = compare(&d, &live, Options::default()).unwrap();
        assert_eq!(r.status(), Status::NoDrift, "{}", r.to_text());
    }

    #[test]
    fn an_egress_only_policy_does_not_restrict_ingress() {
        let d = rendered();
        let mut live = d.clone();
        // An `ingress` section would deny everything, but policyTypes leaves
        // ingress out: the pods accept anything.
        let deny = find(&mut live, "NetworkPolicy", DENY);
        deny["spec"]["policyTypes"] = json!(["Egress"]);
        deny["spec"]["ingress"] = json!([]);
        let r = compare(&d, &live, Options::default()).unwrap();
        assert_eq!(r.status(), Status::Widening, "{}", r.to_text());
        assert!(r.narrowing.is_empty(), "{}", r.to_text());
        assert_eq!(r.widening.len(), 1, "{}", r.to_text());
        let f = &r.widening[0];
        assert_eq!(f.area, Area::Ingress);
        assert_eq!(
            f.permission,
            "unrestricted ingress (no ingress policy selects these pods)"
        );
        assert_eq!(names(f), vec![format!("NetworkPolicy/{NS}/{DENY}")]);
        let fix = assert_fix_restores_against(&d, &live);
        assert_eq!(fix.apply.len(), 1);
    }
}

mod against_the_fake_api_server {
    use super::*;
    use warden_kube_fake::FakeApiServer;

    async fn loaded() -> FakeApiServer {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let fake = FakeApiServer::start().await.unwrap();
        fake.ensure_namespace(NS).unwrap();
        for o in desired().objects {
            fake.create(o).unwrap();
        }
        fake
    }

    fn live_state(objects: Vec<Value>) -> State {
        State {
            objects,
            ..desired()
        }
    }

    #[tokio::test]
    async fn a_cluster_loaded_with_the_desired_state_does_not_drift() {
        let fake = loaded().await;
        let live = warden_drift::kube::read_live(&fake.client()).await.unwrap();
        // The fake adds uid, resourceVersion, creationTimestamp and `default`
        // service accounts; none of it is a permission.
        assert!(live.iter().any(|o| o["metadata"]["uid"].is_string()));
        let r = compare(&desired(), &live_state(live), Options::default()).unwrap();
        assert_eq!(r.status(), Status::NoDrift, "{}", r.to_text());
    }

    #[tokio::test]
    async fn apply_restores_the_desired_state_through_the_api() {
        let fake = loaded().await;
        // Widen three ways and narrow one.
        fake.create(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "debug"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}),
        )
        .unwrap();
        fake.create(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "debug-agent"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "debug"},
            "subjects": [{"kind": "ServiceAccount", "name": AGENT, "namespace": NS}]}))
            .unwrap();
        fake.patch("Role", Some("default"), "warden-read", &json!({"rules": [
            {"apiGroups": ["*"], "resources": ["pods", "services", "events"], "verbs": ["get", "list", "watch"]}]}))
            .unwrap();
        fake.patch("NetworkPolicy", Some(NS), "allow-domains", &json!({"spec": {"egress": [
            {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "TCP", "port": 9090}]}]}}))
            .unwrap();
        fake.delete("RoleBinding", Some("default"), "warden-remediate")
            .unwrap();

        let client = fake.client();
        let live = live_state(warden_drift::kube::read_live(&client).await.unwrap());
        let d = desired();
        let r = compare(&d, &live, Options::default()).unwrap();
        assert_eq!(r.status(), Status::Widening, "{}", r.to_text());
        let sources: Vec<String> = r.widening.iter().flat_map(names).collect();
        for s in [
            "ClusterRoleBinding/debug-agent",
            "Role/default/warden-read",
            "NetworkPolicy/warden-investigations/allow-domains",
        ] {
            assert!(sources.iter().any(|x| x == s), "{s} in {sources:?}");
        }
        assert!(!r.narrowing.is_empty());

        let fix = fix::plan(&d, &live, &r, Options::default()).unwrap();
        assert_eq!(fix.remaining, 0);
        let applied = warden_drift::kube::apply(&client, &fix).await.unwrap();
        assert_eq!(applied.created.len(), 1, "{applied:?}");
        assert_eq!(applied.replaced.len(), 2, "{applied:?}");
        assert_eq!(applied.deleted.len(), 1, "{applied:?}");
        assert!(
            fake.object("ClusterRoleBinding", None, "debug-agent")
                .is_none()
        );

        let again = live_state(warden_drift::kube::read_live(&client).await.unwrap());
        let r = compare(&d, &again, Options::default()).unwrap();
        assert_eq!(r.status(), Status::NoDrift, "{}", r.to_text());
    }

    #[tokio::test]
    async fn an_unmanaged_kind_in_a_fix_is_refused_before_any_change() {
        let fake = loaded().await;
        let fix = warden_drift::Fix {
            apply: vec![
                find(&mut desired(), "Role", "warden-read").clone(),
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": NS}}),
            ],
            ..Default::default()
        };
        let before = fake.resource_version();
        let e = warden_drift::kube::apply(&fake.client(), &fix)
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("Secret/warden-investigations/s"),
            "{e}"
        );
        assert_eq!(fake.resource_version(), before);
    }
}
