//! Permission drift detection: live state against desired state, compared as
//! *effective permissions*, not as text.
//!
//! Two manifests can differ in every byte and grant the same thing (rules
//! split, verbs reordered, duplicates), and a one-word change (`*` in a verb
//! list, a broader Vault glob, a `0.0.0.0/0` egress peer) can grant far more.
//! So each side is reduced to what it lets warden's identities do:
//!
//! - [`rbac`]: (subject, verb, group, resource, name, namespace) grants, with
//!   wildcards kept as wildcards that cover specific values, aggregated
//!   ClusterRoles expanded and bindings resolved to their subjects;
//! - [`netpol`]: per pod class, the (destination, protocol, port) set its
//!   egress policies allow and the (source, protocol, port) set its ingress
//!   policies allow, with default-deny semantics;
//! - [`vault`]: per policy, the capabilities granted on each path, under
//!   Vault's most-specific-rule-wins matching ([`hcl`] parses the policies);
//! - [`vault_roles`]: the policies each auth role attaches, who may use it,
//!   and how long its tokens live.
//!
//! [`compare`] reports what live grants beyond desired (*widening*: the blast
//! radius grew) separately from what it lost (*narrowing*), each finding
//! naming the objects it comes from; [`fix`] computes the smallest set of
//! objects to apply or delete that restores the desired state, and [`kube`]
//! reads a cluster and applies such a fix.
//!
//! The crate knows nothing of how the desired state is produced: it takes a
//! [`State`] (objects plus Vault policies) for each side.

pub mod fix;
pub mod hcl;
pub mod kube;
pub mod netpol;
pub mod object;
pub mod rbac;
pub mod report;
pub mod source;
pub mod vault;
pub mod vault_roles;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

pub use fix::Fix;
pub use object::ObjectRef;
pub use report::{Area, Finding, Report, Source};

/// One side of the comparison: Kubernetes objects and Vault/OpenBao policies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    /// Objects as JSON. Kinds other than Role, ClusterRole, RoleBinding,
    /// ClusterRoleBinding, NetworkPolicy and ServiceAccount are ignored.
    pub objects: Vec<Value>,
    /// ACL policies by name, as HCL text.
    pub vault_policies: BTreeMap<String, String>,
    /// Auth roles by API path (`auth/jwt/role/NAME`), as the data written
    /// to (or read from) that path.
    pub vault_roles: BTreeMap<String, Value>,
}

/// Everything that can go wrong, each naming what it concerns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read.
    #[error("reading {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A manifest is not valid YAML/JSON or lacks apiVersion/kind/name.
    #[error("{origin}: {message}")]
    Manifest { origin: String, message: String },
    /// The same object appears twice on one side.
    #[error("{object} is defined twice ({first} and {second})")]
    Duplicate {
        /// kind/namespace/name
        object: String,
        first: String,
        second: String,
    },
    /// A Vault policy does not parse.
    #[error("Vault policy {policy:?}: {error}")]
    Hcl {
        policy: String,
        error: hcl::ParseError,
    },
    /// A NetworkPolicy holds a value Kubernetes would reject.
    #[error("{object}: {message}")]
    Invalid {
        /// kind/namespace/name
        object: String,
        message: String,
    },
    /// The Kubernetes API refused or failed a request.
    #[error("kubernetes API: {what}: {message}")]
    Kube { what: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What to compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Compare Vault policies. Off when the live side has no source for
    /// them (a cluster read without `--vault-addr`): an absent source must
    /// not read as "every policy was deleted".
    pub vault: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { vault: true }
    }
}

/// Compares `live` with `desired` as effective permissions.
pub fn compare(desired: &State, live: &State, options: Options) -> Result<Report> {
    let desired_idx = object::Index::new(&desired.objects, "desired")?;
    let live_idx = object::Index::new(&live.objects, "live")?;
    let scope = rbac::Scope::from_desired(&desired_idx);
    let mut report = Report::default();
    rbac::compare(&scope, &desired_idx, &live_idx, &mut report);
    netpol::compare(&scope, &desired_idx, &live_idx, &mut report)?;
    if options.vault {
        let d = parse_policies(&desired.vault_policies)?;
        let l = parse_policies(&live.vault_policies)?;
        report::vault_findings(&d, &l, &mut report);
        vault_roles::compare(&desired.vault_roles, &live.vault_roles, &mut report);
    } else {
        report.notes.push(
            "Vault policies and auth roles not compared: no live source (use --vault-addr or --from)"
                .into(),
        );
    }
    report.sort();
    Ok(report)
}

/// Parses every policy, naming the one that fails.
pub fn parse_policies(texts: &BTreeMap<String, String>) -> Result<BTreeMap<String, hcl::Policy>> {
    texts
        .iter()
        .map(|(name, text)| {
            hcl::parse(text)
                .map(|p| (name.clone(), p))
                .map_err(|error| Error::Hcl {
                    policy: name.clone(),
                    error,
                })
        })
        .collect()
}
