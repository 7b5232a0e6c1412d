//! What each state grants, checked as effective permissions rather than as
//! text: read-only phases never write or see secrets, remediation holds
//! exactly `ActionKind::permissions()`, protected namespaces hold nothing,
//! and a phase's pods reach only the domains the phase reads.

use std::collections::BTreeSet;

use crate::support::*;
use warden_control::config::Config;
use warden_core::{ActionKind, TrustPhase};
use warden_gitops::{SecurityState, render};

/// (verb, group, resource) granted to `subject` (a ServiceAccount name) by
/// the state's Roles through its RoleBindings, with the namespace.
fn grants(state: &SecurityState, subject: &str) -> BTreeSet<(String, String, String, String)> {
    let mut out = BTreeSet::new();
    for b in state.objects.iter().filter(|o| kind(o) == "RoleBinding") {
        let bound = b["subjects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["kind"] == "ServiceAccount" && s["name"] == subject);
        if !bound {
            continue;
        }
        let role_name = b["roleRef"]["name"].as_str().unwrap();
        let role = state
            .objects
            .iter()
            .find(|o| kind(o) == "Role" && name(o) == role_name && namespace(o) == namespace(b))
            .unwrap_or_else(|| panic!("binding {role_name} without its Role"));
        for rule in role["rules"].as_array().unwrap() {
            for g in strings(&rule["apiGroups"]) {
                for r in strings(&rule["resources"]) {
                    for v in strings(&rule["verbs"]) {
                        out.insert((namespace(b).to_string(), v, g.clone(), r.clone()));
                    }
                }
            }
        }
    }
    out
}

fn check_invariants(config: &Config) {
    let rendered = render(config).unwrap();
    assert_eq!(rendered.states.len(), config.environments.len() * 4);
    let protected = &config.namespaces.protected;
    for state in &rendered.states {
        let caps = config.phases.get(state.phase);
        let agent = config.runtime.kubernetes.service_accounts.get(state.phase);
        let at = format!("{}/{}", state.environment, state.phase);

        // No ClusterRole or ClusterRoleBinding: everything is namespaced.
        for o in &state.objects {
            assert!(!kind(o).starts_with("Cluster"), "{at}: {o}");
            if matches!(kind(o), "Role" | "RoleBinding") {
                assert!(!protected.contains(&namespace(o).to_string()), "{at}: {o}");
            }
        }

        // Investigation: read-only, named kinds, never secrets.
        let read = grants(state, agent);
        assert!(!read.is_empty(), "{at}");
        for (ns, verb, _, resource) in &read {
            assert!(config.namespaces.targets.contains(ns), "{at}: {ns}");
            assert!(
                ["get", "list", "watch"].contains(&verb.as_str()),
                "{at}: {verb}"
            );
            assert!(!resource.starts_with("secrets"), "{at}");
            assert!(!resource.starts_with("configmaps"), "{at}");
            assert_ne!(resource, "*", "{at}");
        }

        // Remediation: exactly the union of the actions' permissions, in
        // every target namespace, and only to the remediation account.
        let remediator = warden_gitops::remediation_service_account(state.phase);
        let acted = grants(state, &remediator);
        let mut expected = BTreeSet::new();
        for ns in &config.namespaces.targets {
            for a in &caps.actions {
                for p in a.permissions() {
                    for v in p.verbs {
                        expected.insert((
                            ns.clone(),
                            v.to_string(),
                            p.api_group.to_string(),
                            p.resource.to_string(),
                        ));
                    }
                }
            }
        }
        assert_eq!(acted, expected, "{at}");
        let has_sa = state
            .objects
            .iter()
            .any(|o| kind(o) == "ServiceAccount" && name(o) == remediator);
        assert_eq!(has_sa, !caps.actions.is_empty(), "{at}");
        if matches!(state.phase, TrustPhase::Shadow | TrustPhase::Assist) {
            assert!(acted.is_empty(), "{at}: a read-only phase acts");
        }
        // Every write verb anywhere belongs to the remediation account.
        for o in state.objects.iter().filter(|o| kind(o) == "Role") {
            for rule in o["rules"].as_array().unwrap() {
                let writes = strings(&rule["verbs"])
                    .iter()
                    .any(|v| !["get", "list", "watch"].contains(&v.as_str()));
                if writes {
                    assert_eq!(name(o), remediator, "{at}: {o}");
                }
            }
        }

        // Vault: the phase's domain policies and nothing else to hand out.
        let expected_policies: Vec<String> = config
            .secrets
            .domains
            .iter()
            .filter(|d| caps.readable_domains.contains(&d.name))
            .map(|d| format!("warden-domain-{}", d.name))
            .collect();
        for role in &state.vault_roles {
            let data = &role["data"];
            let handed = if data.get("allowed_policies").is_some() {
                strings(&data["allowed_policies"])
            } else {
                strings(&data["token_policies"])
            };
            assert_eq!(handed, expected_policies, "{at}: {role}");
        }
        for name in state.vault_policies.keys() {
            assert!(
                name == "warden-control-plane" || expected_policies.contains(name),
                "{at}: {name}"
            );
        }
    }
}

#[test]
fn the_example_grants_least_privilege_in_every_state() {
    check_invariants(&example());
}

#[test]
fn differing_phases_grant_least_privilege_in_every_state() {
    check_invariants(&differing());
}

#[test]
fn remediation_rules_are_the_action_table_merged() {
    let rules = warden_gitops::remediation_rules(&ActionKind::ALL);
    let mut tuples = BTreeSet::new();
    for r in &rules {
        for v in strings(&r["verbs"]) {
            tuples.insert((
                strings(&r["apiGroups"]).concat(),
                strings(&r["resources"]).concat(),
                v,
            ));
        }
    }
    let mut expected = BTreeSet::new();
    for a in ActionKind::ALL {
        for p in a.permissions() {
            for v in p.verbs {
                expected.insert((
                    p.api_group.to_string(),
                    p.resource.to_string(),
                    v.to_string(),
                ));
            }
        }
    }
    assert_eq!(tuples, expected);
}

/// Egress CIDRs of the investigation pods' policy in a state.
fn egress_cidrs(state: &SecurityState, policy: &str) -> BTreeSet<(String, u64)> {
    let np = state
        .objects
        .iter()
        .find(|o| kind(o) == "NetworkPolicy" && name(o) == policy)
        .unwrap_or_else(|| panic!("no NetworkPolicy {policy}"));
    let mut out = BTreeSet::new();
    for rule in np["spec"]["egress"].as_array().unwrap() {
        for to in rule["to"].as_array().unwrap() {
            if let Some(cidr) = to["ipBlock"]["cidr"].as_str() {
                for p in rule["ports"].as_array().unwrap() {
                    out.insert((cidr.to_string(), p["port"].as_u64().unwrap()));
                }
            }
        }
    }
    out
}

#[test]
fn a_phase_reaches_only_the_domains_it_reads() {
    let rendered = render(&differing()).unwrap();
    let shadow = rendered.state("prod", TrustPhase::Shadow).unwrap();
    let remediate = rendered.state("prod", TrustPhase::Remediate).unwrap();
    let metrics_logs: BTreeSet<_> = [
        ("10.10.0.0/24".to_string(), 9090),
        ("10.10.1.0/24".to_string(), 3100),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        egress_cidrs(shadow, "warden-agent-shadow-egress"),
        metrics_logs
    );
    let mut all = metrics_logs.clone();
    all.insert(("10.20.0.0/16".into(), 5432));
    all.insert(("172.18.0.2/32".into(), 6443));
    assert_eq!(
        egress_cidrs(remediate, "warden-agent-remediate-egress"),
        all
    );
    // Remediation pods reach the API server only.
    assert_eq!(
        egress_cidrs(remediate, "warden-remediate-remediate-egress"),
        [("172.18.0.2/32".to_string(), 6443)].into_iter().collect()
    );
    // Everything else in the namespace is denied both ways.
    let deny = shadow
        .objects
        .iter()
        .find(|o| name(o) == warden_gitops::DEFAULT_DENY_POLICY)
        .unwrap();
    assert_eq!(deny["spec"]["podSelector"], serde_json::json!({}));
    assert_eq!(strings(&deny["spec"]["policyTypes"]), ["Ingress", "Egress"]);
    assert!(deny["spec"].get("egress").is_none() && deny["spec"].get("ingress").is_none());
    // The egress policies select only pods of their own phase.
    let np = shadow
        .objects
        .iter()
        .find(|o| name(o) == "warden-agent-shadow-egress")
        .unwrap();
    assert_eq!(
        np["spec"]["podSelector"]["matchLabels"][warden_gitops::LABEL_PHASE],
        "shadow"
    );
}

#[test]
fn protected_targets_and_host_endpoints_are_refused_with_their_field() {
    let text = crate::support::DIFFERING_PHASES.replace(
        "targets: [default, shop]",
        "targets: [default, kube-system]",
    );
    let config = Config::parse(&text, "t.yaml").unwrap();
    let err = render(&config).unwrap_err();
    let p = err.problems().join("\n");
    assert!(
        p.contains("namespaces.targets[1] \"kube-system\" is also in namespaces.protected"),
        "{p}"
    );

    let text = crate::support::DIFFERING_PHASES.replace(
        "{cidr: 10.20.0.0/16, port: 5432}",
        "{host: payments.db.internal, port: 5432}",
    );
    let config = Config::parse(&text, "t.yaml").unwrap();
    let err = render(&config).unwrap_err();
    let p = err.problems().join("\n");
    assert!(p.contains("secrets.domains[2].endpoints[0].host \"payments.db.internal\": a NetworkPolicy cannot allow a host name"), "{p}");
    // Located in the file like any configuration problem.
    let located = warden_control::config::locate_problems(&text, "t.yaml", err.problems());
    assert!(
        located[0].starts_with("t.yaml:22:12: secrets.domains[2].endpoints[0].host"),
        "{located:?}"
    );

    // A host endpoint of a domain no phase reads is not an egress rule, so
    // it renders.
    let text = text.replace(
        "readable_domains: [metrics, logs, payments-db, kube-api]",
        "readable_domains: [metrics, logs, kube-api]",
    );
    let config = Config::parse(&text, "t.yaml").unwrap();
    render(&config).unwrap();
}

mod properties {
    use std::collections::BTreeSet;

    use proptest::prelude::*;
    use warden_control::config::{Config, DomainEndpoint};
    use warden_core::{ActionKind, TrustPhase};

    use super::{check_invariants, egress_cidrs};

    /// A configuration with `n` domains, each on its own /24, phases reading
    /// the given subsets and running the given actions.
    fn config(reads: [Vec<bool>; 4], actions: [Vec<bool>; 2]) -> Config {
        let mut c = Config::default();
        let n = reads[0].len();
        c.secrets.domains.truncate(n);
        for (i, d) in c.secrets.domains.iter_mut().enumerate() {
            d.endpoints = vec![DomainEndpoint {
                cidr: Some(format!("10.{i}.0.0/24")),
                host: None,
                port: 9000 + i as u16,
            }];
        }
        for (p, read) in TrustPhase::ALL.into_iter().zip(reads) {
            let caps = match p {
                TrustPhase::Shadow => &mut c.phases.shadow,
                TrustPhase::Assist => &mut c.phases.assist,
                TrustPhase::Remediate => &mut c.phases.remediate,
                TrustPhase::Autonomous => &mut c.phases.autonomous,
            };
            caps.readable_domains = c
                .secrets
                .domains
                .iter()
                .zip(read)
                .filter(|(_, r)| *r)
                .map(|(d, _)| d.name.clone())
                .collect();
        }
        c.phases.remediate.actions = ActionKind::ALL
            .into_iter()
            .zip(&actions[0])
            .filter(|(_, on)| **on)
            .map(|(a, _)| a)
            .collect();
        c.phases.autonomous.actions = ActionKind::ALL
            .into_iter()
            .zip(&actions[1])
            .filter(|(_, on)| **on)
            .map(|(a, _)| a)
            .collect();
        c.agent.reasoner = warden_control::config::ReasonerKind::Builtin;
        c
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

        #[test]
        fn any_capabilities_render_least_privilege_deterministically(
            reads in prop::array::uniform4(prop::collection::vec(any::<bool>(), 6)),
            actions in prop::array::uniform2(prop::collection::vec(any::<bool>(), 4)),
        ) {
            let c = config(reads.clone(), actions);
            check_invariants(&c);
            let a = warden_gitops::render(&c).unwrap();
            prop_assert_eq!(&a, &warden_gitops::render(&c).unwrap());
            for (p, read) in TrustPhase::ALL.into_iter().zip(&reads) {
                let state = a.state("prod", p).unwrap();
                let sa = c.runtime.kubernetes.service_accounts.get(p);
                let expected: BTreeSet<(String, u64)> = read
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| **r)
                    .map(|(i, _)| (format!("10.{i}.0.0/24"), 9000 + i as u64))
                    .collect();
                prop_assert_eq!(egress_cidrs(state, &format!("{sa}-egress")), expected);
            }
        }
    }
}
