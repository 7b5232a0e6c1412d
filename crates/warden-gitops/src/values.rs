//! The Helm values of one state, as `deploy/helm/warden` reads them.
//!
//! The chart's own `values.yaml` holds the defaults of everything that is
//! not part of the security state (probes, persistence, the control plane's
//! network policy); these values carry the state itself — the phase
//! objects, verbatim — and the configuration the control plane runs with.

use serde_json::{Value, json};
use warden_control::config::Config;
use warden_core::TrustPhase;

pub fn values(config: &Config, env: &str, phase: TrustPhase, objects: &[Value]) -> Value {
    // The control plane of an environment in `phase` starts new
    // investigations in that phase.
    let mut effective = config.clone();
    effective.agent.phase = phase;
    let config_yaml = serde_yaml::to_string(&effective).unwrap_or_default();
    let k = &config.runtime.kubernetes;
    let ns = &config.namespaces;
    // The control plane creates each remediation's Role, so it must hold
    // every permission it grants (Kubernetes refuses escalation): exactly
    // the phase's allowed actions, in the target namespaces.
    let mut rules: Vec<Value> = Vec::new();
    for action in &config.phases.get(phase).actions {
        for p in action.permissions() {
            let rule =
                json!({ "apiGroups": [p.api_group], "resources": [p.resource], "verbs": p.verbs });
            if !rules.contains(&rule) {
                rules.push(rule);
            }
        }
    }
    json!({
        "environment": env,
        "phase": phase.as_str(),
        "image": { "reference": k.image, "pullPolicy": k.image_pull_policy },
        "runAsUser": k.run_as_user,
        "port": config.server.listen.port(),
        "namespaces": {
            "control": ns.control,
            "investigations": ns.investigations,
            "targets": ns.targets,
            "protected": ns.protected,
        },
        "config": config_yaml,
        "phaseObjects": objects,
        "remediation": { "enabled": !rules.is_empty(), "rules": rules },
    })
}
