#![allow(clippy::unwrap_used)]
use std::time::Instant;
use warden_core::{ActionKind, Phases, ProposedAction, TrustPhase};
use warden_policy::*;
#[test]
fn timing() {
    let phases = Phases::defaults(&["database".to_string()]);
    let ns = NamespacesPolicy { protected: vec!["kube-system".into()], targets: vec!["default".into()] };
    let t = Instant::now();
    let gate = ActionGate::new(&phases, &ns, &[]).unwrap();
    eprintln!("load: {:?}", t.elapsed());
    for phase in [TrustPhase::Shadow, TrustPhase::Remediate, TrustPhase::Autonomous] {
        let req = ActionRequest { investigation: "inv".into(), phase, environment: "prod".into(), confidence: 0.5,
            action: ActionSpec::from(&ProposedAction { kind: ActionKind::RestartPod, namespace: "default".into(), target: "w".into(), replicas: None }), requested_by: "agent".into() };
        let t = Instant::now();
        for _ in 0..1000 { gate.decide_action(&req); }
        eprintln!("{phase} action: {:?}/decision", t.elapsed() / 1000);
    }
    let r = ReadRequest { investigation: "inv".into(), phase: TrustPhase::Shadow, environment: "prod".into(), domain: "database".into(), connector: "c".into(), query_kind: "q".into(), namespace: None, resource_kind: None };
    let t = Instant::now();
    for _ in 0..1000 { gate.decide_read(&r); }
    eprintln!("read: {:?}/decision", t.elapsed() / 1000);
}
