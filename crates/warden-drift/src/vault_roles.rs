//! Vault/OpenBao auth roles: who may log in, which policies they get, and
//! for how long.
//!
//! A policy grants nothing until a role attaches it to an identity, so a
//! role that attaches one more policy, accepts one more service account or
//! namespace, or issues longer-lived tokens widens the blast radius as
//! surely as a broader path does. Roles are keyed by their API path
//! (`auth/jwt/role/warden-shadow`); only the fields below are compared, the
//! rest (claim mappings, token type) do not change who gets what.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::report::{Area, Finding, Report, Source};

/// Fields listing the policies a login (or a created token) gets.
const POLICY_FIELDS: [(&str, &str); 3] = [
    ("token_policies", "attaches policy"),
    ("policies", "attaches policy"),
    ("allowed_policies", "allows tokens with policy"),
];

/// Fields saying who may use the role.
const BOUND_FIELDS: [&str; 5] = [
    "bound_service_account_names",
    "bound_service_account_namespaces",
    "bound_subject",
    "bound_audiences",
    "audience",
];

/// Token lifetimes.
const TTL_FIELDS: [&str; 3] = ["token_ttl", "token_max_ttl", "token_explicit_max_ttl"];

/// How a role is named in findings and fixes.
pub fn role_ref(path: &str) -> crate::ObjectRef {
    crate::ObjectRef {
        api_version: "openbao/v1".into(),
        kind: "VaultAuthRole".into(),
        namespace: None,
        name: path.to_string(),
    }
}

/// A string or a list of strings (Vault accepts both, and comma lists).
fn values(v: Option<&Value>) -> BTreeSet<String> {
    match v {
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => BTreeSet::new(),
    }
}

/// The policies a role hands out: `token_policies` and its older alias
/// `policies` are one set (Vault returns both on read).
fn policy_sets(data: &Value) -> BTreeMap<&'static str, BTreeSet<String>> {
    let mut out: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    for (field, what) in POLICY_FIELDS {
        out.entry(what).or_default().extend(values(data.get(field)));
    }
    out
}

/// Seconds of a Vault duration: a number of seconds, or "90s", "15m", "1h".
pub fn seconds(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => {
            let s = s.trim();
            let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
                Some(i) => s.split_at(i),
                None => (s, "s"),
            };
            let n: u64 = num.parse().ok()?;
            let factor = match unit {
                "s" | "" => 1,
                "m" => 60,
                "h" => 3600,
                "d" => 86400,
                _ => return None,
            };
            Some(n * factor)
        }
        _ => None,
    }
}

fn finding(path: &str, permission: String, detail: String) -> Finding {
    Finding {
        area: Area::Vault,
        holder: format!("auth role {path}"),
        permission,
        sources: vec![Source::new(&role_ref(path), "auth role", Some(detail))],
    }
}

/// What `a` lets log in or hand out beyond `b`, for one role.
fn extra(path: &str, a: Option<&Value>, b: Option<&Value>, side: &str) -> Vec<Finding> {
    let Some(a) = a else { return Vec::new() };
    let Some(b) = b else {
        return vec![finding(
            path,
            "the whole role (who may log in and the policies it attaches)".into(),
            format!("exists in {side} only"),
        )];
    };
    let mut out = Vec::new();
    let (pa, pb) = (policy_sets(a), policy_sets(b));
    for (what, set) in &pa {
        let other = pb.get(what).cloned().unwrap_or_default();
        for p in set.difference(&other) {
            out.push(finding(path, format!("{what} {p}"), format!("{side} only")));
        }
    }
    for field in BOUND_FIELDS {
        let (va, vb) = (values(a.get(field)), values(b.get(field)));
        // An empty bound on one side means "unbounded" only where Vault
        // allows it (audiences); a bound that disappears is widening.
        if va.is_empty() && !vb.is_empty() {
            out.push(finding(
                path,
                format!("{field} unrestricted"),
                format!("{side} sets no {field}"),
            ));
        }
        if !vb.is_empty() {
            for v in va.difference(&vb) {
                out.push(finding(
                    path,
                    format!("{field} accepts {v}"),
                    format!("{side} only"),
                ));
            }
        }
    }
    for field in TTL_FIELDS {
        if let (Some(sa), Some(sb)) = (seconds(a.get(field)), seconds(b.get(field)))
            && sa > sb
        {
            out.push(finding(
                path,
                format!("{field} {sa}s (instead of {sb}s)"),
                format!("{side} tokens live longer"),
            ));
        }
    }
    out
}

pub(crate) fn compare(
    desired: &BTreeMap<String, Value>,
    live: &BTreeMap<String, Value>,
    report: &mut Report,
) {
    let paths: BTreeSet<&String> = desired.keys().chain(live.keys()).collect();
    for path in paths {
        report
            .widening
            .extend(extra(path, live.get(path), desired.get(path), "live"));
        report
            .narrowing
            .extend(extra(path, desired.get(path), live.get(path), "desired"));
    }
}

/// Whether two roles agree on every compared field.
pub(crate) fn same(a: &Value, b: &Value) -> bool {
    policy_sets(a) == policy_sets(b)
        && BOUND_FIELDS
            .iter()
            .all(|f| values(a.get(*f)) == values(b.get(*f)))
        && TTL_FIELDS
            .iter()
            .all(|f| seconds(a.get(*f)) == seconds(b.get(*f)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_read_like_vault() {
        assert_eq!(seconds(Some(&json!(900))), Some(900));
        assert_eq!(seconds(Some(&json!("900s"))), Some(900));
        assert_eq!(seconds(Some(&json!("15m"))), Some(900));
        assert_eq!(seconds(Some(&json!("2h"))), Some(7200));
        assert_eq!(seconds(Some(&json!("600"))), Some(600));
        assert_eq!(seconds(Some(&json!("1w"))), None);
    }

    #[test]
    fn an_extra_policy_a_wider_bound_and_a_longer_ttl_are_widening() {
        let desired = BTreeMap::from([(
            "auth/jwt/role/r".to_string(),
            json!({"token_policies": ["a"], "bound_subject": "system:serviceaccount:w:agent",
                   "bound_audiences": ["warden"], "token_ttl": "900s"}),
        )]);
        // As Vault returns it on read: both policy fields, ttl in seconds.
        let same_live = BTreeMap::from([(
            "auth/jwt/role/r".to_string(),
            json!({"token_policies": ["a"], "policies": ["a"], "bound_subject": "system:serviceaccount:w:agent",
                   "bound_audiences": ["warden"], "token_ttl": 900, "token_type": "service"}),
        )]);
        let mut r = Report::default();
        compare(&desired, &same_live, &mut r);
        assert!(r.widening.is_empty() && r.narrowing.is_empty(), "{r:?}");

        let wider = BTreeMap::from([(
            "auth/jwt/role/r".to_string(),
            json!({"token_policies": ["a", "root"], "bound_subject": "system:serviceaccount:w:other",
                   "bound_audiences": ["warden"], "token_ttl": "24h"}),
        )]);
        let mut r = Report::default();
        compare(&desired, &wider, &mut r);
        let w: Vec<&str> = r.widening.iter().map(|f| f.permission.as_str()).collect();
        assert_eq!(
            w,
            vec![
                "attaches policy root",
                "bound_subject accepts system:serviceaccount:w:other",
                "token_ttl 86400s (instead of 900s)"
            ]
        );
        assert_eq!(
            r.narrowing.len(),
            1,
            "the old subject is no longer accepted"
        );
    }
}
