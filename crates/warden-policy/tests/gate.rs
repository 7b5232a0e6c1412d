//! The action gate, phase by phase: every phase × action kind × scope ×
//! confidence, reads, configured overrides, and policies refused at load.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use warden_core::{ActionKind, Phases, ProposedAction, TrustPhase};
use warden_policy::{
    ActionGate, ActionRequest, ActionSpec, Decision, DecisionRecord, NamespacesPolicy, PolicyError,
    PolicySource, ReadRequest,
};

fn domains() -> Vec<String> {
    [
        "network-monitoring",
        "application-metrics",
        "log-aggregation",
        "database",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn namespaces() -> NamespacesPolicy {
    NamespacesPolicy {
        protected: vec![
            "kube-system".into(),
            "kube-public".into(),
            "kube-node-lease".into(),
        ],
        targets: vec!["default".into(), "shop".into()],
    }
}

fn gate_with(phases: &Phases, extra: &[PolicySource]) -> ActionGate {
    ActionGate::new(phases, &namespaces(), extra).unwrap()
}

fn gate() -> ActionGate {
    gate_with(&Phases::defaults(&domains()), &[])
}

fn action(kind: ActionKind, namespace: &str) -> ActionSpec {
    ActionSpec::from(&ProposedAction {
        kind,
        namespace: namespace.into(),
        target: if kind == ActionKind::RestartPod {
            "web-7f9c-x2"
        } else {
            "web"
        }
        .into(),
        replicas: (kind == ActionKind::ScaleDeployment).then_some(4),
    })
}

fn ask(
    gate: &ActionGate,
    phase: TrustPhase,
    env: &str,
    confidence: f64,
    a: ActionSpec,
) -> DecisionRecord {
    gate.decide_action(&ActionRequest {
        investigation: "inv-01".into(),
        phase,
        environment: env.into(),
        confidence,
        action: a,
        requested_by: "agent".into(),
    })
}

fn read(
    phase: TrustPhase,
    domain: &str,
    namespace: Option<&str>,
    kind: Option<&str>,
) -> ReadRequest {
    ReadRequest {
        investigation: "inv-01".into(),
        phase,
        environment: "prod".into(),
        domain: domain.into(),
        connector: "kubernetes".into(),
        query_kind: "list".into(),
        namespace: namespace.map(str::to_string),
        resource_kind: kind.map(str::to_string),
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Scope {
    Targeted,
    Protected,
    NotATarget,
}

/// What the default phases promise, written out independently of the policies.
fn expected(phase: TrustPhase, kind: ActionKind, scope: Scope, confidence: f64) -> &'static str {
    if scope != Scope::Targeted {
        return "denied";
    }
    match phase {
        TrustPhase::Shadow | TrustPhase::Assist => "denied",
        TrustPhase::Remediate => "needs_approval",
        TrustPhase::Autonomous => {
            let autonomous_kind =
                matches!(kind, ActionKind::RestartPod | ActionKind::RolloutRestart);
            if autonomous_kind && confidence >= 0.9 {
                "allowed"
            } else {
                "escalated"
            }
        }
    }
}

#[test]
fn every_phase_times_every_action_kind_scope_and_confidence() {
    let gate = gate();
    let mut seen = std::collections::BTreeMap::new();
    for phase in TrustPhase::ALL {
        for kind in ActionKind::ALL {
            for scope in [Scope::Targeted, Scope::Protected, Scope::NotATarget] {
                for confidence in [0.3, 0.8999, 0.9, 0.97, 1.0] {
                    let ns = match scope {
                        Scope::Targeted => "shop",
                        Scope::Protected => "kube-system",
                        Scope::NotATarget => "payments",
                    };
                    let r = ask(&gate, phase, "prod", confidence, action(kind, ns));
                    let want = expected(phase, kind, scope, confidence);
                    assert_eq!(
                        r.decision.as_str(),
                        want,
                        "{phase} {kind} {scope:?} confidence {confidence}: {:?} {:?}",
                        r.decision,
                        r.reasons
                    );
                    *seen.entry(want).or_insert(0) += 1;
                    // Every decision says which policy decided, except deny by default.
                    match &r.decision {
                        Decision::Allowed => assert_eq!(r.policies, ["autonomous-execute"]),
                        Decision::NeedsApproval => assert_eq!(r.policies, ["remediate-propose"]),
                        Decision::Escalated { reason } => {
                            assert_eq!(r.policies, ["autonomous-escalate"]);
                            assert!(reason.contains("handed to a person"), "{reason}");
                        }
                        Decision::Denied { reasons } => {
                            assert!(!reasons.is_empty());
                            if scope == Scope::Protected {
                                assert!(
                                    r.policies
                                        .contains(&"forbid-protected-namespace-action".to_string()),
                                    "{:?}",
                                    r.policies
                                );
                            }
                        }
                    }
                }
            }
        }
    }
    // All four outcomes occur in the table.
    assert_eq!(seen.len(), 4, "{seen:?}");
}

#[test]
fn denial_reasons_say_why() {
    let gate = gate();
    let r = ask(
        &gate,
        TrustPhase::Assist,
        "prod",
        1.0,
        action(ActionKind::RestartPod, "shop"),
    );
    let text = r.reasons.join("\n");
    assert!(text.contains("assist is read-only"), "{text}");
    assert!(
        text.contains("not on this phase's allow-list (phases.assist.actions)"),
        "{text}"
    );
    assert_eq!(r.policies, ["forbid-outside-allow-list"]);

    let r = ask(
        &gate,
        TrustPhase::Remediate,
        "prod",
        1.0,
        action(ActionKind::RestartPod, "payments"),
    );
    let text = r.reasons.join("\n");
    assert!(
        text.contains("\"payments\" is not a target namespace"),
        "{text}"
    );
    assert!(text.contains("deny by default"), "{text}");
    assert!(r.policies.is_empty());

    let r = ask(
        &gate,
        TrustPhase::Autonomous,
        "prod",
        0.5,
        action(ActionKind::RolloutRestart, "shop"),
    );
    match r.decision {
        Decision::Escalated { reason } => assert!(
            reason.contains("confidence 0.50 is below the autonomous threshold 0.90"),
            "{reason}"
        ),
        d => panic!("{d:?}"),
    }
    let r = ask(
        &gate,
        TrustPhase::Autonomous,
        "prod",
        1.0,
        action(ActionKind::RollbackDeployment, "shop"),
    );
    match r.decision {
        Decision::Escalated { reason } => assert!(
            reason.contains("rollback_deployment is not allow-listed for autonomous"),
            "{reason}"
        ),
        d => panic!("{d:?}"),
    }
}

#[test]
fn confidence_is_compared_without_rounding_in_the_agents_favour() {
    let gate = gate();
    let decide = |c: f64| {
        ask(
            &gate,
            TrustPhase::Autonomous,
            "prod",
            c,
            action(ActionKind::RestartPod, "shop"),
        )
        .decision
        .as_str()
    };
    assert_eq!(decide(0.9), "allowed");
    assert_eq!(decide(0.899_99), "escalated");
    assert_eq!(
        decide(0.899_999_9),
        "allowed",
        "within 1e-6 of the threshold counts as equal"
    );
    assert_eq!(decide(f64::NAN), "escalated");
    assert_eq!(decide(-3.0), "escalated");
    assert_eq!(decide(7.0), "allowed", "clamped to 1");

    let mut phases = Phases::defaults(&domains());
    phases.autonomous.confidence_threshold = 0.29;
    let gate = gate_with(&phases, &[]);
    let r = ask(
        &gate,
        TrustPhase::Autonomous,
        "prod",
        0.29,
        action(ActionKind::RestartPod, "shop"),
    );
    assert_eq!(r.decision, Decision::Allowed);
}

#[test]
fn phase_configuration_shapes_the_decisions() {
    let mut phases = Phases::defaults(&domains());
    phases.remediate.actions = vec![ActionKind::RestartPod, ActionKind::RolloutRestart];
    phases.autonomous.actions = vec![ActionKind::RestartPod];
    let gate = gate_with(&phases, &[]);
    let d = |p, k| {
        ask(&gate, p, "prod", 1.0, action(k, "shop"))
            .decision
            .as_str()
    };
    // Not allow-listed anywhere: denied, not escalated.
    assert_eq!(
        d(TrustPhase::Remediate, ActionKind::ScaleDeployment),
        "denied"
    );
    assert_eq!(
        d(TrustPhase::Autonomous, ActionKind::ScaleDeployment),
        "denied"
    );
    // Allowed in remediate only: escalated in autonomous.
    assert_eq!(
        d(TrustPhase::Autonomous, ActionKind::RolloutRestart),
        "escalated"
    );
    assert_eq!(d(TrustPhase::Autonomous, ActionKind::RestartPod), "allowed");

    // Autonomous configured to require approval never runs on its own.
    phases.autonomous.approval_required = true;
    let gate = gate_with(&phases, &[]);
    let r = ask(
        &gate,
        TrustPhase::Autonomous,
        "prod",
        1.0,
        action(ActionKind::RestartPod, "shop"),
    );
    match r.decision {
        Decision::Escalated { reason } => assert!(
            reason.contains("configured to require approval"),
            "{reason}"
        ),
        d => panic!("{d:?}"),
    }
}

#[test]
fn scaling_needs_a_replica_count_of_at_least_one() {
    let gate = gate();
    for replicas in [None, Some(0)] {
        let mut a = action(ActionKind::ScaleDeployment, "shop");
        a.replicas = replicas;
        let r = ask(&gate, TrustPhase::Remediate, "prod", 1.0, a);
        assert!(r.decision.is_denied(), "{replicas:?}");
        assert_eq!(r.policies, ["forbid-scale-without-replicas"]);
    }
}

#[test]
fn direct_attacks_are_denied_in_every_phase_even_at_full_confidence() {
    let gate = gate();
    let attacks = [
        ActionSpec::raw("delete_namespace", "prod", "prod"),
        ActionSpec::raw("Delete Namespace", "", "prod"),
        ActionSpec::raw("kubectl delete ns", "prod", "prod"),
        ActionSpec::raw("delete-ns", "prod", "prod"),
        ActionSpec::raw("read_secret", "shop", "db-password"),
        ActionSpec::raw("exec", "shop", "web"),
        action(ActionKind::RestartPod, "kube-system"),
        action(ActionKind::RolloutRestart, " Kube-System "),
        action(ActionKind::RolloutRestart, "kube-public"),
        {
            // A known kind aimed at a namespace object.
            let mut a = action(ActionKind::RolloutRestart, "shop");
            a.target_kind = "Namespace".into();
            a.target = "shop".into();
            a
        },
        {
            let mut a = action(ActionKind::RestartPod, "shop");
            a.target_kind = "Secret".into();
            a
        },
    ];
    for phase in TrustPhase::ALL {
        for a in &attacks {
            let r = ask(&gate, phase, "prod", 1.0, a.clone());
            assert!(r.decision.is_denied(), "{phase} {a:?}: {:?}", r.decision);
            assert!(
                !r.policies.is_empty(),
                "a shipped forbid names the reason: {phase} {a:?}"
            );
        }
        let r = ask(
            &gate,
            phase,
            "prod",
            1.0,
            ActionSpec::raw("delete_namespace", "prod", "prod"),
        );
        assert!(
            r.policies.contains(&"forbid-namespace-action".to_string()),
            "{:?}",
            r.policies
        );
        assert!(
            r.policies
                .contains(&"forbid-unknown-action-kind".to_string()),
            "{:?}",
            r.policies
        );
        for kind in ["Secret", "secrets", " SECRETS "] {
            let r = gate.decide_read(&read(phase, "database", Some("shop"), Some(kind)));
            assert!(r.decision.is_denied(), "{phase} {kind}");
            assert_eq!(r.policies, ["forbid-secret-read"]);
        }
        let mut q = read(phase, "database", Some("shop"), None);
        q.query_kind = "get_secret".into();
        assert!(gate.decide_read(&q).decision.is_denied());
        let r = gate.decide_read(&read(phase, "database", Some("kube-system"), Some("Pod")));
        assert_eq!(r.policies, ["forbid-protected-namespace-read"]);
    }
}

#[test]
fn reads_follow_the_phase_readable_domains_and_target_namespaces() {
    let mut phases = Phases::defaults(&domains());
    phases.shadow.readable_domains = vec!["log-aggregation".into()];
    let gate = gate_with(&phases, &[]);
    for phase in TrustPhase::ALL {
        let r = gate.decide_read(&read(phase, "log-aggregation", None, None));
        assert_eq!(r.decision, Decision::Allowed, "{phase}");
        assert_eq!(r.policies, [format!("{phase}-read")]);
        let r = gate.decide_read(&read(phase, "log-aggregation", Some("shop"), Some("pods")));
        assert!(r.is_allowed(), "{phase}");
        let r = gate.decide_read(&read(
            phase,
            "log-aggregation",
            Some("payments"),
            Some("pods"),
        ));
        assert!(r.decision.is_denied(), "{phase}: not a target namespace");
        let r = gate.decide_read(&read(phase, "nonexistent", None, None));
        assert!(r.decision.is_denied(), "{phase}: unknown domain");
    }
    let r = gate.decide_read(&read(TrustPhase::Shadow, "database", None, None));
    let text = r.reasons.join("\n");
    assert!(
        text.contains("\"database\" is not readable in shadow (phases.shadow.readable_domains)"),
        "{text}"
    );
    assert!(
        gate.decide_read(&read(TrustPhase::Assist, "database", None, None))
            .is_allowed()
    );
}

#[test]
fn an_extra_forbid_from_configuration_wins() {
    let extra = PolicySource::new(
        "policy.inline[0]",
        r#"
        @id("no-restarts-in-prod")
        @reason("prod workloads are restarted by people only")
        forbid (principal, action in Action::"act", resource)
        when { principal.environment == "prod" && context.kind == "rollout_restart" };
        "#,
    );
    let gate = gate_with(&Phases::defaults(&domains()), &[extra]);
    let r = ask(
        &gate,
        TrustPhase::Autonomous,
        "prod",
        1.0,
        action(ActionKind::RolloutRestart, "shop"),
    );
    assert!(r.decision.is_denied());
    assert_eq!(r.policies, ["no-restarts-in-prod"]);
    assert!(
        r.reasons[0].contains("restarted by people only"),
        "{:?}",
        r.reasons
    );
    // Other environments and kinds are unaffected.
    assert!(
        ask(
            &gate,
            TrustPhase::Autonomous,
            "staging",
            1.0,
            action(ActionKind::RolloutRestart, "shop")
        )
        .is_allowed()
    );
    assert!(
        ask(
            &gate,
            TrustPhase::Autonomous,
            "prod",
            1.0,
            action(ActionKind::RestartPod, "shop")
        )
        .is_allowed()
    );
    assert_eq!(
        gate.policies()
            .find(|(id, _)| *id == "no-restarts-in-prod")
            .map(|(_, o)| o),
        Some("policy.inline[0]")
    );
}

#[test]
fn an_extra_permit_cannot_beat_a_shipped_forbid() {
    let permit_all = PolicySource::new(
        "policy.inline[0]",
        r#"
        @id("permit-everything")
        permit (principal, action, resource);
        "#,
    );
    let gate = gate_with(&Phases::defaults(&domains()), &[permit_all]);
    for phase in TrustPhase::ALL {
        for a in [
            ActionSpec::raw("delete_namespace", "prod", "prod"),
            ActionSpec::raw("patch_secret", "shop", "db"),
            action(ActionKind::RestartPod, "kube-system"),
        ] {
            let r = ask(&gate, phase, "prod", 1.0, a.clone());
            assert!(r.decision.is_denied(), "{phase} {a:?}: {:?}", r.decision);
        }
        assert!(
            gate.decide_read(&read(phase, "database", Some("shop"), Some("Secret")))
                .decision
                .is_denied()
        );
        assert!(
            gate.decide_read(&read(phase, "database", Some("kube-system"), None))
                .decision
                .is_denied()
        );
        // Read-only phases stay read-only: no kind is on their allow-list.
        if matches!(phase, TrustPhase::Shadow | TrustPhase::Assist) {
            let r = ask(
                &gate,
                phase,
                "prod",
                1.0,
                action(ActionKind::RestartPod, "shop"),
            );
            assert!(r.decision.is_denied(), "{phase}");
        }
    }
}

#[test]
fn extra_policies_load_from_a_directory_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("20-no-scale.cedar"),
        "@id(\"no-scale\")\nforbid (principal, action in Action::\"act\", resource) when { context.kind == \"scale_deployment\" };\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("10-empty.cedar"), "// nothing yet\n").unwrap();
    std::fs::write(dir.path().join("README.md"), "not a policy").unwrap();
    let sources =
        PolicySource::from_config(Some(dir.path()), &["// inline\n".to_string()]).unwrap();
    let origins: Vec<_> = sources
        .iter()
        .map(|s| s.origin.rsplit('/').next().unwrap().to_string())
        .collect();
    assert_eq!(
        origins,
        ["10-empty.cedar", "20-no-scale.cedar", "policy.inline[0]"]
    );
    let gate = gate_with(&Phases::defaults(&domains()), &sources);
    let r = ask(
        &gate,
        TrustPhase::Remediate,
        "prod",
        1.0,
        action(ActionKind::ScaleDeployment, "shop"),
    );
    assert_eq!(r.policies, ["no-scale"]);

    let err = PolicySource::load_dir(&dir.path().join("missing")).unwrap_err();
    assert!(matches!(err, PolicyError::Read { .. }), "{err}");
}

fn load_err(text: &str) -> PolicyError {
    ActionGate::new(
        &Phases::defaults(&domains()),
        &namespaces(),
        &[PolicySource::new("extra/bad.cedar", text)],
    )
    .unwrap_err()
}

#[test]
fn invalid_policies_are_refused_at_load_with_the_policy_named() {
    // Does not parse.
    let err = load_err("permit (principal, action, resource) when { ");
    assert!(
        matches!(&err, PolicyError::Parse { origin, .. } if origin == "extra/bad.cedar"),
        "{err}"
    );

    // An attribute the schema does not have.
    let err = load_err(
        "@id(\"colourful\")\nforbid (principal is Agent, action, resource) when { principal.colour == \"red\" };",
    );
    match &err {
        PolicyError::Invalid {
            origin,
            policy,
            message,
        } => {
            assert_eq!(origin, "extra/bad.cedar");
            assert_eq!(policy, "colourful");
            assert!(message.contains("colour"), "{message}");
        }
        e => panic!("{e}"),
    }
    assert!(
        err.to_string()
            .contains("extra/bad.cedar: policy \"colourful\" is invalid"),
        "{err}"
    );

    // Wrong types (strict mode).
    let err = load_err(
        "@id(\"typed\")\nforbid (principal, action in Action::\"act\", resource) when { context.kind == 3 };",
    );
    assert!(
        matches!(&err, PolicyError::Invalid { policy, .. } if policy == "typed"),
        "{err}"
    );

    // An action the schema does not declare; unnamed policies get a positional id.
    let err = load_err("permit (principal, action == Action::\"delete\", resource);");
    assert!(
        matches!(&err, PolicyError::Invalid { policy, .. } if policy == "extra/bad.cedar#0"),
        "{err}"
    );

    // Reusing a shipped id.
    let err = load_err("@id(\"forbid-secret-read\")\npermit (principal, action, resource);");
    assert!(
        matches!(&err, PolicyError::DuplicateId { policy, other, .. } if policy == "forbid-secret-read" && other == "shipped:forbid.cedar"),
        "{err}"
    );

    // Templates are not supported.
    let err = load_err("@id(\"tmpl\")\npermit (principal == ?principal, action, resource);");
    assert!(
        matches!(&err, PolicyError::Template { policy, .. } if policy == "tmpl"),
        "{err}"
    );
}

#[test]
fn a_threshold_outside_zero_to_one_is_refused() {
    let mut phases = Phases::defaults(&domains());
    phases.autonomous.confidence_threshold = 1.5;
    let err = ActionGate::new(&phases, &namespaces(), &[]).unwrap_err();
    assert!(
        err.to_string()
            .contains("phases.autonomous.confidence_threshold"),
        "{err}"
    );
}

#[test]
fn decision_records_serialise_for_the_investigation_and_the_audit_log() {
    let gate = gate();
    let r = ask(
        &gate,
        TrustPhase::Autonomous,
        "prod",
        0.4,
        action(ActionKind::RestartPod, "shop"),
    );
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["decision"]["decision"], "escalated");
    assert_eq!(v["request"]["type"], "action");
    assert_eq!(v["request"]["action"]["kind"], "restart_pod");
    assert_eq!(v["policies"][0], "autonomous-escalate");
    let back: DecisionRecord = serde_json::from_value(v).unwrap();
    assert_eq!(back, r);
}

#[test]
fn the_gate_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ActionGate>();
}

#[test]
fn the_documented_override_examples_validate() {
    let examples = [
        // examples/warden.yaml
        r#"@id("no-scaling-in-prod")
           @reason("prod is never scaled by warden")
           forbid (principal, action in Action::"act", resource)
           when { principal.environment == "prod" && context.kind == "scale_deployment" };"#,
        // docs/policy.md
        r#"@id("no-restarts-in-prod")
           @reason("prod workloads are restarted by people only")
           forbid (principal, action in Action::"act", resource)
           when { principal.environment == "prod" && context.kind == "rollout_restart" };"#,
        r#"@id("confident-only")
           forbid (principal is Agent, action == Action::"execute", resource)
           when { principal.confidence.lessThan(decimal("0.95")) };"#,
        r#"@id("small-scale-only")
           forbid (principal, action in Action::"act", resource)
           when { context has replicas && context.replicas > 10 };"#,
        r#"@id("not-the-db")
           forbid (principal, action in Action::"act", resource is Workload)
           when { resource.name == "orders-db" && resource.namespace.name == "shop" };"#,
    ];
    let sources: Vec<_> = examples
        .iter()
        .enumerate()
        .map(|(i, t)| PolicySource::new(format!("policy.inline[{i}]"), *t))
        .collect();
    let gate = gate_with(&Phases::defaults(&domains()), &sources);
    let r = ask(
        &gate,
        TrustPhase::Autonomous,
        "dev",
        0.92,
        action(ActionKind::RestartPod, "shop"),
    );
    // Not executing on its own means a person takes it over.
    match &r.decision {
        Decision::Escalated { reason } => assert!(
            reason.contains("a configured policy denies running it without a person"),
            "{reason}"
        ),
        d => panic!("{d:?}"),
    }
    let r = ask(
        &gate,
        TrustPhase::Autonomous,
        "dev",
        0.96,
        action(ActionKind::RestartPod, "shop"),
    );
    assert!(r.is_allowed(), "{:?}", r.decision);
    let mut a = action(ActionKind::ScaleDeployment, "shop");
    a.replicas = Some(11);
    assert_eq!(
        ask(&gate, TrustPhase::Remediate, "dev", 1.0, a).policies,
        ["small-scale-only"]
    );
}
