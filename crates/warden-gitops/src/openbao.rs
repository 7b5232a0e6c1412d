//! The OpenBao/Vault side of one state: ACL policies and the auth roles that
//! bind them.
//!
//! Policies are per domain, `warden-domain-<name>`, with exactly the HCL
//! `warden-secrets` writes (`SecretsDomain::policy_hcl`), so a rendered
//! state and `OpenBaoAdmin::configure` never disagree. The phase decides
//! which of them exist in a state and which each role may hand out:
//! - the token role investigations are issued through allows only the
//!   phase's domain policies;
//! - one `jwt` and one `kubernetes` auth role per phase bind the phase's
//!   investigation ServiceAccount to the same policies.
//!
//! A token of a phase therefore cannot read a domain the phase does not
//! read: no policy granting it is attached, and none can be requested.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use warden_control::config::Config;
use warden_core::{Complexity, TrustPhase};
use warden_secrets::SecretsDomain;
use warden_secrets::openbao::{CONTROL_PLANE_POLICY, control_plane_policy_hcl, jwt_role_name};

/// Mount of the `jwt` auth method validating service-account tokens offline.
pub const JWT_MOUNT: &str = "jwt";
/// Mount of the `kubernetes` auth method (TokenReview against the cluster).
pub const KUBERNETES_MOUNT: &str = "kubernetes";

/// Policies (name -> HCL) and auth roles of `phase`.
pub fn state(config: &Config, phase: TrustPhase) -> (BTreeMap<String, String>, Vec<Value>) {
    let readable = &config.phases.get(phase).readable_domains;
    let domains: Vec<SecretsDomain> = config
        .secrets
        .domains
        .iter()
        .filter(|d| readable.contains(&d.name))
        .map(|d| SecretsDomain::new(d.name.clone(), d.path.clone()))
        .collect();

    let mut policies = BTreeMap::new();
    for d in &domains {
        policies.insert(d.policy_name(), d.policy_hcl());
    }
    let token_role = &config.secrets.openbao.token_role;
    policies.insert(
        CONTROL_PLANE_POLICY.to_string(),
        control_plane_policy_hcl(token_role),
    );

    let names: Vec<String> = domains.iter().map(SecretsDomain::policy_name).collect();
    // An investigation's token lives no longer than the longest deadline.
    let ttl = format!(
        "{}s",
        Complexity::ALL
            .iter()
            .map(|c| config.planner.profile(*c).deadline_seconds)
            .max()
            .unwrap_or(0)
    );
    let ns = &config.namespaces.investigations;
    let sa = config.runtime.kubernetes.service_accounts.get(phase);
    let audience = &config.runtime.kubernetes.token_audience;
    let role = jwt_role_name(phase);
    let roles = vec![
        json!({
            "path": format!("auth/token/roles/{token_role}"),
            "data": {
                "allowed_policies": names,
                "orphan": true,
                "renewable": false,
                "token_type": "service",
                "token_explicit_max_ttl": ttl,
            },
        }),
        json!({
            "path": format!("auth/{JWT_MOUNT}/role/{role}"),
            "data": {
                "role_type": "jwt",
                "user_claim": "sub",
                "bound_subject": format!("system:serviceaccount:{ns}:{sa}"),
                "bound_audiences": [audience],
                "claim_mappings": {
                    "/kubernetes.io/pod/name": "pod",
                    "/kubernetes.io/namespace": "namespace",
                    "/kubernetes.io/serviceaccount/name": "service_account",
                },
                "token_policies": names,
                "token_ttl": ttl,
                "token_max_ttl": ttl,
                "token_type": "service",
            },
        }),
        json!({
            "path": format!("auth/{KUBERNETES_MOUNT}/role/{role}"),
            "data": {
                "bound_service_account_names": [sa],
                "bound_service_account_namespaces": [ns],
                "audience": audience,
                "token_policies": names,
                "token_ttl": ttl,
                "token_max_ttl": ttl,
                "token_type": "service",
            },
        }),
    ];
    (policies, roles)
}
