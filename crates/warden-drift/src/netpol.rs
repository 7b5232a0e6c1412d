//! NetworkPolicy egress as reachable (destination, protocol, port) sets.
//!
//! Kubernetes semantics: a pod that no egress policy selects may reach
//! anything; a pod that any egress policy selects may reach only the union
//! of the allow rules of the policies that select it. Pods are not known
//! here, so each pod selector of either side stands for a class of pods
//! (a pod carrying exactly the labels the selector requires), and each
//! class's reachable set is computed on both sides.
//!
//! To compare sets of CIDRs and port ranges exactly, the address and port
//! spaces are cut at every boundary either side mentions; each resulting
//! piece is either wholly allowed or wholly denied by every rule, so the
//! sets become finite sets of pieces. In-cluster peers (pod and namespace
//! selectors) are kept as symbols: a selector peer covers only the same
//! selector, and "any destination" covers all of them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde_json::Value;

use crate::object::{Index, ObjectRef, Selector};
use crate::rbac::Scope;
use crate::report::{Area, Finding, Report, Source};
use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Peer {
    Ip {
        v6: bool,
        range: (u128, u128),
        except: Vec<(u128, u128)>,
        text: String,
    },
    Selector(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ports {
    All,
    Range(u32, u32),
    Named(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PortSpec {
    protocol: String,
    ports: Ports,
}

#[derive(Debug, Clone)]
struct Rule {
    /// Empty: any destination.
    to: Vec<Peer>,
    /// Empty: every port of every protocol.
    ports: Vec<PortSpec>,
    policy: ObjectRef,
    index: usize,
}

#[derive(Debug, Clone)]
struct Policy {
    obj: ObjectRef,
    namespace: String,
    selector: Selector,
    rules: Vec<Rule>,
}

fn invalid(obj: &ObjectRef, message: impl Into<String>) -> Error {
    Error::Invalid {
        object: obj.to_string(),
        message: message.into(),
    }
}

fn parse_cidr(obj: &ObjectRef, s: &str) -> Result<(bool, (u128, u128))> {
    let (addr, len) = s
        .split_once('/')
        .ok_or_else(|| invalid(obj, format!("ipBlock {s:?} is not a CIDR")))?;
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| invalid(obj, format!("ipBlock {s:?}: bad address")))?;
    let len: u32 = len
        .parse()
        .map_err(|_| invalid(obj, format!("ipBlock {s:?}: bad prefix length")))?;
    let (v6, bits, value) = match addr {
        IpAddr::V4(a) => (false, 32, u128::from(u32::from(a))),
        IpAddr::V6(a) => (true, 128, u128::from(a)),
    };
    if len > bits {
        return Err(invalid(
            obj,
            format!("ipBlock {s:?}: prefix longer than the address"),
        ));
    }
    let host = bits - len;
    let host_mask = if host == 0 {
        0
    } else {
        u128::MAX >> (128 - host)
    };
    let lo = value & !host_mask;
    Ok((v6, (lo, lo | host_mask)))
}

fn parse_peer(obj: &ObjectRef, namespace: &str, p: &Value) -> Result<Peer> {
    if let Some(ip) = p.get("ipBlock") {
        let cidr = ip
            .get("cidr")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(obj, "ipBlock without cidr"))?;
        let (v6, range) = parse_cidr(obj, cidr)?;
        let mut except = Vec::new();
        let mut text = cidr.to_string();
        let ex = crate::object::strings(ip.get("except"));
        for e in &ex {
            let (ev6, r) = parse_cidr(obj, e)?;
            if ev6 == v6 {
                except.push(r);
            }
        }
        if !ex.is_empty() {
            text.push_str(&format!(" except {}", ex.join(", ")));
        }
        return Ok(Peer::Ip {
            v6,
            range,
            except,
            text,
        });
    }
    let sel = |k: &str| {
        p.get(k)
            .map(|v| Selector::parse(Some(v)).map_err(|m| invalid(obj, format!("{k}: {m}"))))
            .transpose()
    };
    let pods = sel("podSelector")?;
    let namespaces = sel("namespaceSelector")?;
    let pods_text = match &pods {
        Some(s) if !s.is_empty() => format!("pods {s}"),
        _ => "all pods".to_string(),
    };
    let ns_text = match &namespaces {
        None => format!("namespace {namespace}"),
        Some(s) if s.is_empty() => "all namespaces".to_string(),
        Some(s) => format!("namespaces {s}"),
    };
    Ok(Peer::Selector(format!("{pods_text} in {ns_text}")))
}

fn parse_port(obj: &ObjectRef, p: &Value) -> Result<PortSpec> {
    let protocol = p
        .get("protocol")
        .and_then(Value::as_str)
        .unwrap_or("TCP")
        .to_string();
    let ports = match p.get("port") {
        None | Some(Value::Null) => Ports::All,
        Some(Value::String(name)) => match name.parse::<u32>() {
            Ok(n) => Ports::Range(n, n),
            Err(_) => Ports::Named(name.clone()),
        },
        Some(Value::Number(n)) => {
            let n = n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| invalid(obj, format!("port {n} is not a port number")))?;
            Ports::Range(n, n)
        }
        Some(other) => return Err(invalid(obj, format!("port {other} is not a port"))),
    };
    let ports = match (ports, p.get("endPort").and_then(Value::as_u64)) {
        (Ports::Range(lo, _), Some(end)) => {
            Ports::Range(lo, u32::try_from(end).unwrap_or(u32::MAX))
        }
        (ports, _) => ports,
    };
    if let Ports::Range(lo, hi) = ports
        && (lo == 0 || hi > 65535 || lo > hi)
    {
        return Err(invalid(
            obj,
            format!("port range {lo}-{hi} is outside 1-65535"),
        ));
    }
    Ok(PortSpec { protocol, ports })
}

fn parse_policy(obj: &ObjectRef, v: &Value) -> Result<Option<Policy>> {
    let spec = v.get("spec").unwrap_or(&Value::Null);
    let types = crate::object::strings(spec.get("policyTypes"));
    let egress = spec.get("egress");
    let applies = if types.is_empty() {
        egress.is_some()
    } else {
        types.iter().any(|t| t == "Egress")
    };
    if !applies {
        return Ok(None);
    }
    let namespace = obj.namespace.clone().unwrap_or_default();
    let selector = Selector::parse(spec.get("podSelector"))
        .map_err(|m| invalid(obj, format!("podSelector: {m}")))?;
    let mut rules = Vec::new();
    for (index, r) in egress
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let to = r
            .get("to")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| parse_peer(obj, &namespace, p))
            .collect::<Result<Vec<_>>>()?;
        let ports = r
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| parse_port(obj, p))
            .collect::<Result<Vec<_>>>()?;
        rules.push(Rule {
            to,
            ports,
            policy: obj.clone(),
            index,
        });
    }
    Ok(Some(Policy {
        obj: obj.clone(),
        namespace,
        selector,
        rules,
    }))
}

fn policies(idx: &Index, scope: &Scope) -> Result<Vec<Policy>> {
    let mut out = Vec::new();
    for (r, v) in idx.of_kind("NetworkPolicy") {
        if !scope
            .netpol_namespaces
            .contains(r.namespace.as_deref().unwrap_or_default())
        {
            continue;
        }
        if let Some(p) = parse_policy(r, v)? {
            out.push(p);
        }
    }
    Ok(out)
}

/// A piece of the destination space.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Dest {
    Ip {
        v6: bool,
        lo: u128,
        hi: u128,
    },
    Selector(String),
    /// In-cluster destinations no selector of either side names.
    Other,
}

/// A piece of the port space.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Port {
    Range { protocol: String, lo: u32, hi: u32 },
    Named { protocol: String, name: String },
}

/// Cuts `[0, max]` at every start; returns the pieces.
fn pieces(starts: &BTreeSet<u128>, max: u128) -> Vec<(u128, u128)> {
    let s: Vec<u128> = starts.iter().copied().filter(|s| *s <= max).collect();
    s.iter()
        .enumerate()
        .map(|(i, lo)| {
            let hi = s.get(i + 1).map_or(max, |next| next - 1);
            (*lo, hi)
        })
        .collect()
}

struct Universe {
    dests: Vec<Dest>,
    ports: Vec<Port>,
}

const PROTOCOLS: [&str; 3] = ["TCP", "UDP", "SCTP"];

impl Universe {
    fn new<'a>(rules: impl Iterator<Item = &'a Rule>) -> Universe {
        let mut v4: BTreeSet<u128> = BTreeSet::from([0]);
        let mut v6: BTreeSet<u128> = BTreeSet::from([0]);
        let mut selectors = BTreeSet::new();
        let mut protocols: BTreeSet<String> = PROTOCOLS.iter().map(|p| p.to_string()).collect();
        let mut port_starts: BTreeMap<String, BTreeSet<u128>> = BTreeMap::new();
        let mut named = BTreeSet::new();
        let cut = |set: &mut BTreeSet<u128>, (lo, hi): (u128, u128)| {
            set.insert(lo);
            if let Some(next) = hi.checked_add(1) {
                set.insert(next);
            }
        };
        for rule in rules {
            for peer in &rule.to {
                match peer {
                    Peer::Ip {
                        v6: is6,
                        range,
                        except,
                        ..
                    } => {
                        let set = if *is6 { &mut v6 } else { &mut v4 };
                        cut(set, *range);
                        for e in except {
                            cut(set, *e);
                        }
                    }
                    Peer::Selector(s) => {
                        selectors.insert(s.clone());
                    }
                }
            }
            for p in &rule.ports {
                protocols.insert(p.protocol.clone());
                match &p.ports {
                    Ports::Range(lo, hi) => cut(
                        port_starts.entry(p.protocol.clone()).or_default(),
                        (u128::from(*lo), u128::from(*hi)),
                    ),
                    Ports::Named(n) => {
                        named.insert((p.protocol.clone(), n.clone()));
                    }
                    Ports::All => {}
                }
            }
        }
        let mut dests: Vec<Dest> = pieces(&v4, u128::from(u32::MAX))
            .into_iter()
            .map(|(lo, hi)| Dest::Ip { v6: false, lo, hi })
            .collect();
        dests.extend(pieces(&v6, u128::MAX).into_iter().map(|(lo, hi)| Dest::Ip {
            v6: true,
            lo,
            hi,
        }));
        dests.extend(selectors.into_iter().map(Dest::Selector));
        dests.push(Dest::Other);
        let mut ports = Vec::new();
        for protocol in protocols {
            let mut starts = port_starts.remove(&protocol).unwrap_or_default();
            starts.insert(1);
            for (lo, hi) in pieces(&starts, 65535) {
                if lo == 0 {
                    continue;
                }
                ports.push(Port::Range {
                    protocol: protocol.clone(),
                    lo: u32::try_from(lo).unwrap_or(0),
                    hi: u32::try_from(hi).unwrap_or(0),
                });
            }
        }
        ports.extend(
            named
                .into_iter()
                .map(|(protocol, name)| Port::Named { protocol, name }),
        );
        Universe { dests, ports }
    }

    fn dest_in(d: &Dest, peer: &Peer) -> bool {
        match (d, peer) {
            (
                Dest::Ip { v6, lo, hi },
                Peer::Ip {
                    v6: pv6,
                    range,
                    except,
                    ..
                },
            ) => {
                v6 == pv6
                    && range.0 <= *lo
                    && *hi <= range.1
                    && !except.iter().any(|e| e.0 <= *lo && *hi <= e.1)
            }
            (Dest::Selector(a), Peer::Selector(b)) => a == b,
            _ => false,
        }
    }

    fn port_in(p: &Port, spec: &PortSpec) -> bool {
        match (p, &spec.ports) {
            (Port::Range { protocol, .. } | Port::Named { protocol, .. }, Ports::All) => {
                *protocol == spec.protocol
            }
            (Port::Range { protocol, lo, hi }, Ports::Range(a, b)) => {
                *protocol == spec.protocol && a <= lo && hi <= b
            }
            (Port::Named { protocol, name }, Ports::Named(n)) => {
                *protocol == spec.protocol && name == n
            }
            _ => false,
        }
    }

    /// The pieces a rule allows.
    fn allowed(&self, rule: &Rule) -> BTreeSet<(usize, usize)> {
        let dests: Vec<usize> = (0..self.dests.len())
            .filter(|i| {
                rule.to.is_empty()
                    || self
                        .dests
                        .get(*i)
                        .is_some_and(|d| rule.to.iter().any(|p| Self::dest_in(d, p)))
            })
            .collect();
        let ports: Vec<usize> = (0..self.ports.len())
            .filter(|i| {
                rule.ports.is_empty()
                    || self
                        .ports
                        .get(*i)
                        .is_some_and(|p| rule.ports.iter().any(|s| Self::port_in(p, s)))
            })
            .collect();
        dests
            .iter()
            .flat_map(|d| ports.iter().map(move |p| (*d, *p)))
            .collect()
    }

    fn everything(&self) -> BTreeSet<(usize, usize)> {
        (0..self.dests.len())
            .flat_map(|d| (0..self.ports.len()).map(move |p| (d, p)))
            .collect()
    }

    /// The pieces in words, adjacent address ranges on the same port merged.
    fn describe(&self, pieces: &BTreeSet<(usize, usize)>) -> Vec<String> {
        let mut by_port: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (d, p) in pieces {
            by_port.entry(*p).or_default().push(*d);
        }
        let mut out = Vec::new();
        for (p, mut dests) in by_port {
            let port = match self.ports.get(p) {
                Some(Port::Range { protocol, lo, hi }) if lo == hi => format!("{protocol}/{lo}"),
                Some(Port::Range { protocol, lo, hi }) => format!("{protocol}/{lo}-{hi}"),
                Some(Port::Named { protocol, name }) => format!("{protocol}/{name}"),
                None => String::new(),
            };
            dests.sort_unstable();
            // (family, lo, hi) of the current run of adjacent address pieces.
            let mut run: Option<(bool, u128, u128)> = None;
            let flush = |run: &mut Option<(bool, u128, u128)>, out: &mut Vec<String>| {
                if let Some((v6, lo, hi)) = run.take() {
                    out.push(format!("{} {port}", ip_range_text(v6, lo, hi)));
                }
            };
            for d in dests {
                match self.dests.get(d) {
                    Some(Dest::Ip { v6, lo, hi }) => match &mut run {
                        Some((rv6, _, rhi)) if rv6 == v6 && rhi.checked_add(1) == Some(*lo) => {
                            *rhi = *hi;
                        }
                        _ => {
                            flush(&mut run, &mut out);
                            run = Some((*v6, *lo, *hi));
                        }
                    },
                    Some(Dest::Selector(s)) => {
                        flush(&mut run, &mut out);
                        out.push(format!("{s} {port}"));
                    }
                    Some(Dest::Other) | None => {
                        flush(&mut run, &mut out);
                        out.push(format!("other in-cluster destinations {port}"));
                    }
                }
            }
            flush(&mut run, &mut out);
        }
        out
    }
}

fn ip_text(v6: bool, a: u128) -> String {
    if v6 {
        std::net::Ipv6Addr::from(a).to_string()
    } else {
        std::net::Ipv4Addr::from(u32::try_from(a).unwrap_or(u32::MAX)).to_string()
    }
}

fn ip_range_text(v6: bool, lo: u128, hi: u128) -> String {
    let size = hi - lo;
    // A CIDR when the piece is one.
    if size.checked_add(1).is_none_or(|n| n.is_power_of_two()) && lo & size == 0 {
        let host_bits = if size == u128::MAX {
            128
        } else {
            (size + 1).trailing_zeros()
        };
        let bits = if v6 { 128 } else { 32 };
        return format!("{}/{}", ip_text(v6, lo), bits - host_bits);
    }
    format!("{}-{}", ip_text(v6, lo), ip_text(v6, hi))
}

fn rule_text(rule: &Rule) -> String {
    let to = if rule.to.is_empty() {
        "any destination".to_string()
    } else {
        rule.to
            .iter()
            .map(|p| match p {
                Peer::Ip { text, .. } => text.clone(),
                Peer::Selector(s) => s.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let ports = if rule.ports.is_empty() {
        "all ports".to_string()
    } else {
        rule.ports
            .iter()
            .map(|p| match &p.ports {
                Ports::All => format!("{}/all", p.protocol),
                Ports::Range(a, b) if a == b => format!("{}/{a}", p.protocol),
                Ports::Range(a, b) => format!("{}/{a}-{b}", p.protocol),
                Ports::Named(n) => format!("{}/{n}", p.protocol),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("egress to {to} on {ports}")
}

/// What one side lets a pod class reach: None when no policy selects it
/// (unrestricted), else the selecting policies' rules.
fn selecting<'a>(
    policies: &'a [Policy],
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> Vec<&'a Policy> {
    policies
        .iter()
        .filter(|p| p.namespace == namespace && p.selector.matches(labels))
        .collect()
}

/// The most pieces named in one finding before "and N more".
const SHOWN: usize = 4;

pub fn compare(scope: &Scope, desired: &Index, live: &Index, report: &mut Report) -> Result<()> {
    let d = policies(desired, scope)?;
    let l = policies(live, scope)?;
    for namespace in &scope.netpol_namespaces {
        let in_ns = |ps: &[Policy]| -> Vec<Policy> {
            ps.iter()
                .filter(|p| p.namespace == *namespace)
                .cloned()
                .collect()
        };
        let (dn, ln) = (in_ns(&d), in_ns(&l));
        if dn.is_empty() && ln.is_empty() {
            continue;
        }
        let universe = Universe::new(dn.iter().chain(ln.iter()).flat_map(|p| p.rules.iter()));
        let classes: BTreeSet<BTreeMap<String, String>> = dn
            .iter()
            .chain(ln.iter())
            .map(|p| p.selector.representative())
            .collect();
        for labels in classes {
            let holder = format!(
                "pods {} in namespace {namespace}",
                Selector {
                    match_labels: labels.clone(),
                    expressions: Vec::new(),
                }
            );
            let ds = selecting(&dn, namespace, &labels);
            let ls = selecting(&ln, namespace, &labels);
            let reach = |ps: &[&Policy]| {
                if ps.is_empty() {
                    universe.everything()
                } else {
                    ps.iter()
                        .flat_map(|p| p.rules.iter())
                        .flat_map(|r| universe.allowed(r))
                        .collect()
                }
            };
            let (dr, lr) = (reach(&ds), reach(&ls));
            for (gained, from, other, wider) in [(&lr, &ls, &ds, true), (&dr, &ds, &ls, false)] {
                let lost_or_gained: BTreeSet<(usize, usize)> = if wider {
                    gained.difference(&dr).copied().collect()
                } else {
                    gained.difference(&lr).copied().collect()
                };
                if lost_or_gained.is_empty() {
                    continue;
                }
                let mut findings = Vec::new();
                if from.is_empty() {
                    // Unrestricted on this side: the policies that restrict
                    // the other side are what is missing.
                    findings.push(Finding {
                        area: Area::Egress,
                        holder: holder.clone(),
                        permission: "unrestricted egress (no egress policy selects these pods)"
                            .into(),
                        sources: other
                            .iter()
                            .map(|p| {
                                Source::new(
                                    &p.obj,
                                    if wider { "missing" } else { "extra" },
                                    Some(format!(
                                        "selects these pods {}",
                                        if wider {
                                            "in desired only"
                                        } else {
                                            "in live only"
                                        }
                                    )),
                                )
                            })
                            .collect(),
                    });
                } else {
                    for rule in from.iter().flat_map(|p| p.rules.iter()) {
                        let pieces: BTreeSet<(usize, usize)> = universe
                            .allowed(rule)
                            .intersection(&lost_or_gained)
                            .copied()
                            .collect();
                        if pieces.is_empty() {
                            continue;
                        }
                        if pieces == universe.allowed(rule) {
                            findings.push(Finding {
                                area: Area::Egress,
                                holder: holder.clone(),
                                permission: format!(
                                    "{} ({})",
                                    rule_text(rule),
                                    if wider {
                                        "all of it new"
                                    } else {
                                        "all of it lost"
                                    }
                                ),
                                sources: vec![Source::new(
                                    &rule.policy,
                                    "policy",
                                    Some(format!("egress rule #{}", rule.index + 1)),
                                )],
                            });
                            continue;
                        }
                        let described = universe.describe(&pieces);
                        let mut shown: Vec<String> =
                            described.iter().take(SHOWN).cloned().collect();
                        if described.len() > SHOWN {
                            shown.push(format!("and {} more", described.len() - SHOWN));
                        }
                        findings.push(Finding {
                            area: Area::Egress,
                            holder: holder.clone(),
                            permission: format!(
                                "{} ({}: {})",
                                rule_text(rule),
                                if wider {
                                    "newly reachable"
                                } else {
                                    "no longer reachable"
                                },
                                shown.join("; ")
                            ),
                            sources: vec![Source::new(
                                &rule.policy,
                                "policy",
                                Some(format!("egress rule #{}", rule.index + 1)),
                            )],
                        });
                    }
                }
                if wider {
                    report.widening.extend(findings);
                } else {
                    report.narrowing.extend(findings);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_to_ranges_and_print_back() {
        let o = ObjectRef {
            api_version: "networking.k8s.io/v1".into(),
            kind: "NetworkPolicy".into(),
            namespace: Some("n".into()),
            name: "p".into(),
        };
        let (v6, (lo, hi)) = parse_cidr(&o, "10.1.2.3/16").unwrap();
        assert!(!v6);
        assert_eq!(ip_range_text(false, lo, hi), "10.1.0.0/16");
        let (_, (lo, hi)) = parse_cidr(&o, "0.0.0.0/0").unwrap();
        assert_eq!(ip_range_text(false, lo, hi), "0.0.0.0/0");
        let (v6, (lo, hi)) = parse_cidr(&o, "::/0").unwrap();
        assert!(v6);
        assert_eq!(ip_range_text(true, lo, hi), "::/0");
        assert_eq!(ip_range_text(false, 1, 2), "0.0.0.1-0.0.0.2");
        assert!(parse_cidr(&o, "10.0.0.0/33").is_err());
        assert!(parse_cidr(&o, "10.0.0/8").is_err());
        assert!(parse_cidr(&o, "10.0.0.0").is_err());
    }
}
