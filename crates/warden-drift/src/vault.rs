//! Vault/OpenBao policies as effective (policy, path, capability) sets.
//!
//! Vault does not union the rules of one policy: for a request path it picks
//! the single most specific matching pattern and uses its capabilities
//! (`deny` empties them). Comparing rule lists textually would therefore
//! miss both a broader glob (`agent/data/*` instead of `agent/data/database`)
//! and a more specific rule that quietly grants more. Instead we evaluate
//! both policies on representative paths: every pattern of either side, with
//! `+` and `*` filled by a segment no real path uses. A capability live
//! grants on such a path and desired does not is widening.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use crate::hcl::{PathRule, Policy};

/// Stands for "any segment" in representative paths; `<` and `>` do not
/// occur in Vault paths that warden renders.
pub const ANY: &str = "<any>";

/// Whether `pattern` matches the concrete `path` under Vault's glob rules.
pub fn matches(pattern: &str, path: &str) -> bool {
    let (body, prefix) = match pattern.strip_suffix('*') {
        Some(b) => (b, true),
        None => (pattern, false),
    };
    let pat: Vec<&str> = body.split('/').collect();
    let segs: Vec<&str> = path.split('/').collect();
    if !prefix && pat.len() != segs.len() {
        return false;
    }
    if pat.len() > segs.len() {
        return false;
    }
    let last = pat.len().saturating_sub(1);
    for (i, (p, s)) in pat.iter().zip(segs.iter()).enumerate() {
        let ok = if *p == "+" {
            // `+` is one whole segment; with a trailing `*` the glob
            // continues after it.
            !s.is_empty() || (prefix && i == last)
        } else if prefix && i == last {
            s.starts_with(p)
        } else {
            p == s
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Vault's precedence between two patterns that both match a path
/// (`Ordering::Greater` means `a` wins): the first `+`/`*` later in the
/// path, then not ending in `*`, then fewer `+` segments, then longer, then
/// lexicographically smaller.
pub fn precedence(a: &str, b: &str) -> Ordering {
    let first_wild = |p: &str| p.find(['+', '*']).unwrap_or(usize::MAX);
    let plus = |p: &str| p.split('/').filter(|s| *s == "+").count();
    first_wild(a)
        .cmp(&first_wild(b))
        .then_with(|| b.ends_with('*').cmp(&a.ends_with('*')))
        .then_with(|| plus(b).cmp(&plus(a)))
        .then_with(|| a.len().cmp(&b.len()))
        .then_with(|| a.cmp(b))
}

/// A concrete path that `pattern` matches, standing for all of them.
pub fn representative(pattern: &str) -> String {
    let body = pattern.strip_suffix('*');
    let filled: Vec<&str> = body
        .unwrap_or(pattern)
        .split('/')
        .map(|s| if s == "+" { ANY } else { s })
        .collect();
    let mut out = filled.join("/");
    if body.is_some() {
        out.push_str(ANY);
    }
    out
}

/// The capabilities a policy grants on `path`, and the rule that decides.
pub fn effective<'a>(policy: &'a Policy, path: &str) -> Option<(BTreeSet<String>, &'a PathRule)> {
    let mut best: Option<&PathRule> = None;
    for r in policy.rules.iter().filter(|r| matches(&r.pattern, path)) {
        best = match best {
            Some(b) if precedence(&r.pattern, &b.pattern) != Ordering::Greater => Some(b),
            _ => Some(r),
        };
    }
    let rule = best?;
    // Repeated blocks for the same pattern merge, as in Vault.
    let mut caps: BTreeSet<String> = policy
        .rules
        .iter()
        .filter(|r| r.pattern == rule.pattern)
        .flat_map(|r| r.capabilities.iter().cloned())
        .collect();
    if caps.contains("deny") {
        caps.clear();
    }
    Some((caps, rule))
}

/// One capability that one side grants and the other does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapabilityChange {
    pub policy: String,
    /// The path it is granted on (with [`ANY`] standing for any segment).
    pub path: String,
    pub capability: String,
    /// The pattern of the rule that grants it, and its line.
    pub granted_by: String,
    pub line: usize,
    /// What the other side grants on that path (pattern), if anything matches.
    pub other_rule: Option<String>,
}

/// The capabilities `a` grants beyond `b`, per policy name. A policy
/// missing on one side grants nothing there.
pub fn extra(a: &BTreeMap<String, Policy>, b: &BTreeMap<String, Policy>) -> Vec<CapabilityChange> {
    let empty = Policy::default();
    let mut out = Vec::new();
    for (name, pa) in a {
        let pb = b.get(name).unwrap_or(&empty);
        let paths: BTreeSet<String> = pa
            .rules
            .iter()
            .chain(pb.rules.iter())
            .map(|r| representative(&r.pattern))
            .collect();
        for path in paths {
            let Some((caps_a, rule_a)) = effective(pa, &path) else {
                continue;
            };
            let b_side = effective(pb, &path);
            let caps_b = b_side.as_ref().map(|(c, _)| c.clone()).unwrap_or_default();
            for cap in caps_a.difference(&caps_b) {
                out.push(CapabilityChange {
                    policy: name.clone(),
                    path: path.clone(),
                    capability: cap.clone(),
                    granted_by: rule_a.pattern.clone(),
                    line: rule_a.line,
                    other_rule: b_side.as_ref().map(|(_, r)| r.pattern.clone()),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hcl::parse;

    #[test]
    fn globs_match_like_vault() {
        assert!(matches("agent/data/database", "agent/data/database"));
        assert!(!matches("agent/data/database", "agent/data/database/x"));
        assert!(matches("agent/data/*", "agent/data/database"));
        assert!(matches("agent/data/*", "agent/data/"));
        assert!(matches("agent/data/db*", "agent/data/db-2/x"));
        assert!(!matches("agent/data/db*", "agent/data/x"));
        assert!(matches("agent/+/database", "agent/data/database"));
        assert!(!matches("agent/+/database", "agent/data/x/database"));
        assert!(matches("agent/+/*", "agent/data/x/y"));
        assert!(matches("agent/data/*", &representative("agent/data/+/x")));
    }

    #[test]
    fn the_most_specific_rule_decides() {
        let p = parse(
            r#"path "agent/data/*" { capabilities = ["read", "list"] }
               path "agent/data/secret" { capabilities = ["deny"] }
               path "agent/+/other" { capabilities = ["update"] }"#,
        )
        .unwrap();
        assert!(effective(&p, "agent/data/secret").unwrap().0.is_empty());
        assert_eq!(effective(&p, "agent/data/x").unwrap().0.len(), 2);
        // The first wildcard position wins over the glob.
        let (caps, rule) = effective(&p, "agent/data/other").unwrap();
        assert_eq!(rule.pattern, "agent/data/*");
        assert!(caps.contains("read"));
        assert!(effective(&p, "sys/health").is_none());
    }

    fn policies(src: &str) -> BTreeMap<String, Policy> {
        BTreeMap::from([("p".to_string(), parse(src).unwrap())])
    }

    #[test]
    fn a_broader_glob_is_extra_and_its_narrowing_is_not() {
        let desired = policies(r#"path "agent/data/database" { capabilities = ["read"] }"#);
        let live = policies(r#"path "agent/data/*" { capabilities = ["read"] }"#);
        let wider = extra(&live, &desired);
        assert_eq!(wider.len(), 1, "{wider:?}");
        assert_eq!(wider[0].granted_by, "agent/data/*");
        assert_eq!(wider[0].path, "agent/data/<any>");
        assert!(extra(&desired, &live).is_empty());
    }

    #[test]
    fn removing_a_deny_is_extra() {
        let desired = policies(
            r#"path "agent/*" { capabilities = ["read"] }
               path "agent/data/llm/*" { capabilities = ["deny"] }"#,
        );
        let live = policies(r#"path "agent/*" { capabilities = ["read"] }"#);
        let wider = extra(&live, &desired);
        assert_eq!(wider.len(), 1);
        assert_eq!(wider[0].path, "agent/data/llm/<any>");
        assert_eq!(wider[0].other_rule.as_deref(), Some("agent/data/llm/*"));
    }

    #[test]
    fn rules_written_differently_are_equal() {
        let a = policies(
            r#"path "x/y" { capabilities = ["read", "list"] }
               path "x/z" { capabilities = ["read"] }"#,
        );
        let b = policies(
            r#"path "x/z" { capabilities = ["read"] }
               path "x/y" { capabilities = ["list"] }
               path "x/y" { capabilities = ["read"] }"#,
        );
        assert!(extra(&a, &b).is_empty());
        assert!(extra(&b, &a).is_empty());
    }
}
