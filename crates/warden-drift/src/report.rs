//! The drift report: widening apart from narrowing, each finding naming the
//! objects it comes from.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::hcl::Policy;
use crate::object::ObjectRef;
use crate::vault;

/// Which model a finding comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Area {
    Rbac,
    Egress,
    Ingress,
    Vault,
}

/// An object that contributes to a finding, and how.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Source {
    pub object: ObjectRef,
    /// binding, role, aggregated, policy, missing, extra.
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Source {
    pub fn new(object: &ObjectRef, role: &str, detail: Option<String>) -> Source {
        Source {
            object: object.clone(),
            role: role.to_string(),
            detail,
        }
    }
}

/// One permission one side has and the other has not.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Finding {
    pub area: Area,
    /// Who holds it: a subject, a class of pods, a Vault policy.
    pub holder: String,
    /// The permission, in words.
    pub permission: String,
    /// Where it comes from (live objects for widening, desired objects for
    /// narrowing).
    pub sources: Vec<Source>,
}

/// The outcome of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    NoDrift,
    /// Live grants less than desired, nothing more.
    NarrowingOnly,
    /// Live grants something desired does not: the blast radius grew.
    Widening,
}

impl Status {
    /// The process exit code for this status: 0 no drift, 4 narrowing only,
    /// 3 widening (2 is left for errors).
    pub fn exit_code(self) -> u8 {
        match self {
            Status::NoDrift => 0,
            Status::Widening => 3,
            Status::NarrowingOnly => 4,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// What live grants beyond desired.
    pub widening: Vec<Finding>,
    /// What desired grants that live does not.
    pub narrowing: Vec<Finding>,
    /// What was not compared, and why.
    pub notes: Vec<String>,
}

impl Report {
    pub fn status(&self) -> Status {
        if !self.widening.is_empty() {
            Status::Widening
        } else if !self.narrowing.is_empty() {
            Status::NarrowingOnly
        } else {
            Status::NoDrift
        }
    }

    pub(crate) fn sort(&mut self) {
        for list in [&mut self.widening, &mut self.narrowing] {
            // Sources keep their order (binding before role) and lose repeats.
            for f in list.iter_mut() {
                let mut seen = std::collections::BTreeSet::new();
                f.sources.retain(|s| seen.insert(s.clone()));
            }
            list.sort();
            list.dedup();
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "status": self.status(),
            "widening": self.widening,
            "narrowing": self.narrowing,
            "notes": self.notes,
        })
    }

    /// For people: findings grouped by area and holder.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}",
            match self.status() {
                Status::NoDrift => "no drift: live grants exactly what desired grants",
                Status::NarrowingOnly => "drift: narrowing only (live grants less than desired)",
                Status::Widening => "DRIFT: WIDENING (live grants more than desired)",
            }
        );
        for (title, list) in [
            ("widening (blast radius grew)", &self.widening),
            ("narrowing (permissions lost)", &self.narrowing),
        ] {
            if list.is_empty() {
                continue;
            }
            let _ = writeln!(out, "\n{title}: {}", list.len());
            let mut grouped: BTreeMap<(Area, &str), Vec<&Finding>> = BTreeMap::new();
            for f in list {
                grouped
                    .entry((f.area, f.holder.as_str()))
                    .or_default()
                    .push(f);
            }
            for ((area, holder), findings) in grouped {
                let area = match area {
                    Area::Rbac => "rbac",
                    Area::Egress => "egress",
                    Area::Ingress => "ingress",
                    Area::Vault => "vault",
                };
                let _ = writeln!(out, "  [{area}] {holder}");
                // Permissions that come from the same objects are listed
                // under them once.
                let mut by_sources: BTreeMap<&[Source], Vec<&str>> = BTreeMap::new();
                for f in findings {
                    by_sources
                        .entry(f.sources.as_slice())
                        .or_default()
                        .push(f.permission.as_str());
                }
                for (sources, permissions) in by_sources {
                    let from: Vec<String> = sources
                        .iter()
                        .map(|s| match &s.detail {
                            Some(d) => format!("{} {} ({d})", s.role, s.object),
                            None => format!("{} {}", s.role, s.object),
                        })
                        .collect();
                    let _ = writeln!(out, "    from {}:", from.join(", "));
                    for p in permissions {
                        let _ = writeln!(out, "      {p}");
                    }
                }
            }
        }
        for n in &self.notes {
            let _ = writeln!(out, "\nnote: {n}");
        }
        out
    }
}

/// How a Vault policy is named in findings and fixes.
pub fn vault_policy_ref(name: &str) -> ObjectRef {
    ObjectRef {
        api_version: "openbao/v1".into(),
        kind: "VaultPolicy".into(),
        namespace: None,
        name: name.to_string(),
    }
}

pub(crate) fn vault_findings(
    desired: &BTreeMap<String, Policy>,
    live: &BTreeMap<String, Policy>,
    report: &mut Report,
) {
    for (changes, wider) in [
        (vault::extra(live, desired), true),
        (vault::extra(desired, live), false),
    ] {
        for c in changes {
            let other = match &c.other_rule {
                Some(p) => format!(
                    "the {} rule {p:?} decides there",
                    if wider { "desired" } else { "live" }
                ),
                None => format!("no {} rule matches", if wider { "desired" } else { "live" }),
            };
            let finding = Finding {
                area: Area::Vault,
                holder: format!("policy {}", c.policy),
                permission: format!("{} on {}", c.capability, c.path),
                sources: vec![Source::new(
                    &vault_policy_ref(&c.policy),
                    "policy",
                    Some(format!(
                        "path {:?} at line {}; {other}",
                        c.granted_by, c.line
                    )),
                )],
            };
            if wider {
                report.widening.push(finding);
            } else {
                report.narrowing.push(finding);
            }
        }
    }
}
