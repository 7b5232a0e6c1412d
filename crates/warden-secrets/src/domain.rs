//! Secrets domains: the unit of access.
//!
//! A domain is a named slice of data an investigation may read
//! (`network-monitoring`, `database`, ...) and the one path its secret lives
//! at. Access is granted per domain, never per path, so the question "what can
//! this investigation read" always has a short answer that a reviewer can
//! compare with its trust phase and plan. In OpenBao each domain is one ACL
//! policy, `warden-domain-<name>`; the embedded store checks the same names.

use serde::{Deserialize, Serialize};

use crate::error::SecretsError;

/// The domain whose identity also grants short-lived database users.
pub const DATABASE_DOMAIN: &str = "database";

/// The database secrets engine role that creates read-only users.
pub const DATABASE_ROLE: &str = "warden-readonly";

/// Prefix of every domain's OpenBao policy name.
const POLICY_PREFIX: &str = "warden-domain-";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsDomain {
    /// Lowercase letters, digits and `-`.
    pub name: String,
    /// The KV v2 data path of the domain's secret, e.g. `agent/data/llm/inference`.
    pub path: String,
}

impl SecretsDomain {
    pub fn new(name: impl Into<String>, path: impl Into<String>) -> Self {
        SecretsDomain {
            name: name.into(),
            path: path.into(),
        }
    }

    /// The OpenBao ACL policy that grants this domain.
    pub fn policy_name(&self) -> String {
        format!("{POLICY_PREFIX}{}", self.name)
    }

    /// The policy's HCL: `read` on the domain's path and, for the database
    /// domain, on the dynamic credentials of the read-only role.
    pub fn policy_hcl(&self) -> String {
        let mut hcl = format!(
            "# warden: read access to the {name} domain.\npath \"{path}\" {{\n  capabilities = [\"read\"]\n}}\n",
            name = self.name,
            path = self.path,
        );
        if self.name == DATABASE_DOMAIN {
            hcl.push_str(&format!(
                "path \"database/creds/{DATABASE_ROLE}\" {{\n  capabilities = [\"read\"]\n}}\n"
            ));
        }
        hcl
    }

    /// Problems with this domain, each naming the field.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok {
            problems.push(format!(
                "secrets domain name {:?} must be 1-64 characters of a-z, 0-9 and -",
                self.name
            ));
        }
        if let Err(e) = check_path(&self.path) {
            problems.push(format!("secrets domain {:?} path: {e}", self.name));
        }
        problems
    }
}

/// The built-in domains; configuration may replace them.
pub fn default_domains() -> Vec<SecretsDomain> {
    [
        ("network-monitoring", "agent/data/network-monitoring"),
        ("llm-inference", "agent/data/llm/inference"),
        ("log-aggregation", "agent/data/log-aggregation"),
        (DATABASE_DOMAIN, "agent/data/database"),
        ("application-metrics", "agent/data/application-metrics"),
        ("security-events", "agent/data/security-events"),
    ]
    .into_iter()
    .map(|(name, path)| SecretsDomain::new(name, path))
    .collect()
}

/// Problems with a set of domains (each domain's, plus duplicates).
pub fn validate_domains(domains: &[SecretsDomain]) -> Vec<String> {
    let mut problems: Vec<String> = domains.iter().flat_map(SecretsDomain::validate).collect();
    for (i, d) in domains.iter().enumerate() {
        if domains.iter().skip(i + 1).any(|o| o.name == d.name) {
            problems.push(format!("secrets domain {:?} is defined twice", d.name));
        }
    }
    problems
}

/// The domain named `name` among `domains`.
pub fn find<'a>(
    domains: &'a [SecretsDomain],
    name: &str,
) -> Result<&'a SecretsDomain, SecretsError> {
    domains
        .iter()
        .find(|d| d.name == name)
        .ok_or_else(|| SecretsError::UnknownDomain(truncate(name, 64)))
}

/// Accepts the relative, plain paths warden uses (`agent/data/x/y`), so that
/// a path can be put into a URL or an HCL string without escaping.
pub(crate) fn check_path(path: &str) -> Result<(), SecretsError> {
    let ok = !path.is_empty()
        && path.len() <= 120
        && !path.starts_with('/')
        && !path.ends_with('/')
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'))
        && path
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
    if ok {
        Ok(())
    } else {
        Err(SecretsError::Invalid(format!(
            "secret path {:?} must be 1-120 characters of A-Z, a-z, 0-9, /, -, _ and . without empty, . or .. segments",
            truncate(path, 120)
        )))
    }
}

/// At most `max` characters of `s`, for echoing caller input in messages.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_domains_are_valid_and_include_the_llm_path() {
        let domains = default_domains();
        assert!(validate_domains(&domains).is_empty());
        let llm = find(&domains, "llm-inference").unwrap();
        assert_eq!(llm.path, "agent/data/llm/inference");
        assert_eq!(domains.len(), 6);
    }

    #[test]
    fn only_the_database_policy_grants_dynamic_credentials() {
        let domains = default_domains();
        let db = find(&domains, DATABASE_DOMAIN).unwrap();
        assert_eq!(db.policy_name(), "warden-domain-database");
        assert!(db.policy_hcl().contains("database/creds/warden-readonly"));
        assert!(db.policy_hcl().contains("path \"agent/data/database\""));
        let net = find(&domains, "network-monitoring").unwrap();
        assert!(!net.policy_hcl().contains("database/creds"));
    }

    #[test]
    fn traversal_and_odd_characters_in_paths_are_refused() {
        for bad in [
            "",
            "/agent/data/x",
            "agent/../sys",
            "agent//x",
            "agent/data/x\"",
            "a/b/",
        ] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
        assert!(check_path("agent/data/llm/inference").is_ok());
    }

    #[test]
    fn duplicate_and_malformed_domain_names_are_reported() {
        let domains = vec![
            SecretsDomain::new("a", "agent/data/a"),
            SecretsDomain::new("a", "agent/data/b"),
            SecretsDomain::new("Bad Name", "agent/data/c"),
        ];
        let problems = validate_domains(&domains);
        assert!(problems.iter().any(|p| p.contains("defined twice")));
        assert!(problems.iter().any(|p| p.contains("\"Bad Name\"")));
    }

    #[test]
    fn unknown_domain_is_an_error_naming_it() {
        let err = find(&default_domains(), "payroll").unwrap_err();
        assert_eq!(err.to_string(), "unknown secrets domain \"payroll\"");
    }
}
