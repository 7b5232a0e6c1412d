//! NetworkPolicy egress and ingress as allowed (peer, protocol, port) sets:
//! the destinations a pod may reach, and the sources it accepts.
//!
//! Kubernetes semantics, the same for both directions: a pod that no policy
//! of that direction selects is unrestricted; a pod that any such policy
//! selects allows only the union of the rules of the policies that select
//! it. A policy is an egress policy when `policyTypes` lists Egress, or, with
//! no `policyTypes`, when it has an `egress` section; it is an ingress policy
//! when `policyTypes` lists Ingress or is absent (ingress is the default).
//! Pods are not known here, so each pod selector of either side stands for a
//! class of pods (a pod carrying exactly the labels the selector requires),
//! and each class's allowed set is computed on both sides.
//!
//! To compare sets of CIDRs and port ranges exactly, the address and port
//! spaces are cut at every boundary either side mentions; each resulting
//! piece is either wholly allowed or wholly denied by every rule, so the
//! sets become finite sets of pieces. In-cluster peers (pod and namespace
//! selectors) are kept as symbols: a selector peer covers only the same
//! selector, and "any destination" (or source) covers all of them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde_json::Value;

use crate::object::{Index, ObjectRef, Selector};
use crate::rbac::Scope;
use crate::report::{Area, Finding, Report, Source};
use crate::{Error, Result};

/// Which traffic a policy governs: from the selected pods, or to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Egress,
    Ingress,
}

impl Direction {
    const ALL: [Direction; 2] = [Direction::Egress, Direction::Ingress];

    /// The `policyTypes` entry.
    fn policy_type(self) -> &'static str {
        match self {
            Direction::Egress => "Egress",
            Direction::Ingress => "Ingress",
        }
    }

    /// The spec section holding the rules, and a rule's peer list.
    fn keys(self) -> (&'static str, &'static str) {
        match self {
            Direction::Egress => ("egress", "to"),
            Direction::Ingress => ("ingress", "from"),
        }
    }

    fn area(self) -> Area {
        match self {
            Direction::Egress => Area::Egress,
            Direction::Ingress => Area::Ingress,
        }
    }

    /// Whether a policy governs this direction.
    fn applies(self, spec: &Value) -> bool {
        let types = crate::object::strings(spec.get("policyTypes"));
        if !types.is_empty() {
            return types.iter().any(|t| t == self.policy_type());
        }
        match self {
            Direction::Egress => spec.get("egress").is_some(),
            // Absent policyTypes always include Ingress, rules or not.
            Direction::Ingress => true,
        }
    }

    /// "egress to" / "ingress from".
    fn lead(self) -> &'static str {
        match self {
            Direction::Egress => "egress to",
            Direction::Ingress => "ingress from",
        }
    }

    /// The peers a rule without any stands for.
    fn any_peer(self) -> &'static str {
        match self {
            Direction::Egress => "any destination",
            Direction::Ingress => "any source",
        }
    }

    fn other_peers(self) -> &'static str {
        match self {
            Direction::Egress => "other in-cluster destinations",
            Direction::Ingress => "other in-cluster sources",
        }
    }

    /// How pieces gained (`true`) or lost are introduced.
    fn change(self, gained: bool) -> &'static str {
        match (self, gained) {
            (Direction::Egress, true) => "newly reachable",
            (Direction::Egress, false) => "no longer reachable",
            (Direction::Ingress, true) => "newly allowed",
            (Direction::Ingress, false) => "no longer allowed",
        }
    }
}

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
    /// Empty: any destination (egress) or source (ingress).
    peers: Vec<Peer>,
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

fn parse_policy(obj: &ObjectRef, v: &Value, direction: Direction) -> Result<Option<Policy>> {
    let spec = v.get("spec").unwrap_or(&Value::Null);
    if !direction.applies(spec) {
        return Ok(None);
    }
    let (rules_key, peers_key) = direction.keys();
    let namespace = obj.namespace.clone().unwrap_or_default();
    let selector = Selector::parse(spec.get("podSelector"))
        .map_err(|m| invalid(obj, format!("podSelector: {m}")))?;
    let mut rules = Vec::new();
    for (index, r) in spec
        .get(rules_key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let peers = r
            .get(peers_key)
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
            peers,
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

fn policies(idx: &Index, scope: &Scope, direction: Direction) -> Result<Vec<Policy>> {
    let mut out = Vec::new();
    for (r, v) in idx.of_kind("NetworkPolicy") {
        if !scope
            .netpol_namespaces
            .contains(r.namespace.as_deref().unwrap_or_default())
        {
            continue;
        }
        if let Some(p) = parse_policy(r, v, direction)? {
            out.push(p);
        }
    }
    Ok(out)
}

/// A piece of the peer space (destinations or sources).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Place {
    Ip {
        v6: bool,
        lo: u128,
        hi: u128,
    },
    Selector(String),
    /// In-cluster peers no selector of either side names.
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
    places: Vec<Place>,
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
            for peer in &rule.peers {
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
        let mut places: Vec<Place> = pieces(&v4, u128::from(u32::MAX))
            .into_iter()
            .map(|(lo, hi)| Place::Ip { v6: false, lo, hi })
            .collect();
        places.extend(
            pieces(&v6, u128::MAX)
                .into_iter()
                .map(|(lo, hi)| Place::Ip { v6: true, lo, hi }),
        );
        places.extend(selectors.into_iter().map(Place::Selector));
        places.push(Place::Other);
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
        Universe { places, ports }
    }

    fn place_in(d: &Place, peer: &Peer) -> bool {
        match (d, peer) {
            (
                Place::Ip { v6, lo, hi },
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
            (Place::Selector(a), Peer::Selector(b)) => a == b,
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
        let places: Vec<usize> = (0..self.places.len())
            .filter(|i| {
                rule.peers.is_empty()
                    || self
                        .places
                        .get(*i)
                        .is_some_and(|d| rule.peers.iter().any(|p| Self::place_in(d, p)))
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
        places
            .iter()
            .flat_map(|d| ports.iter().map(move |p| (*d, *p)))
            .collect()
    }

    fn everything(&self) -> BTreeSet<(usize, usize)> {
        (0..self.places.len())
            .flat_map(|d| (0..self.ports.len()).map(move |p| (d, p)))
            .collect()
    }

    /// The pieces in words, adjacent address ranges on the same port merged.
    fn describe(&self, pieces: &BTreeSet<(usize, usize)>, direction: Direction) -> Vec<String> {
        let mut by_port: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (d, p) in pieces {
            by_port.entry(*p).or_default().push(*d);
        }
        let mut out = Vec::new();
        for (p, mut places) in by_port {
            let port = match self.ports.get(p) {
                Some(Port::Range { protocol, lo, hi }) if lo == hi => format!("{protocol}/{lo}"),
                Some(Port::Range { protocol, lo, hi }) => format!("{protocol}/{lo}-{hi}"),
                Some(Port::Named { protocol, name }) => format!("{protocol}/{name}"),
                None => String::new(),
            };
            places.sort_unstable();
            // (family, lo, hi) of the current run of adjacent address pieces.
            let mut run: Option<(bool, u128, u128)> = None;
            let flush = |run: &mut Option<(bool, u128, u128)>, out: &mut Vec<String>| {
                if let Some((v6, lo, hi)) = run.take() {
                    out.push(format!("{} {port}", ip_range_text(v6, lo, hi)));
                }
            };
            for d in places {
                match self.places.get(d) {
                    Some(Place::Ip { v6, lo, hi }) => match &mut run {
                        Some((rv6, _, rhi)) if rv6 == v6 && rhi.checked_add(1) == Some(*lo) => {
                            *rhi = *hi;
                        }
                        _ => {
                            flush(&mut run, &mut out);
                            run = Some((*v6, *lo, *hi));
                        }
                    },
                    Some(Place::Selector(s)) => {
                        flush(&mut run, &mut out);
                        out.push(format!("{s} {port}"));
                    }
                    Some(Place::Other) | None => {
                        flush(&mut run, &mut out);
                        out.push(format!("{} {port}", direction.other_peers()));
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

fn rule_text(rule: &Rule, direction: Direction) -> String {
    let peers = if rule.peers.is_empty() {
        direction.any_peer().to_string()
    } else {
        rule.peers
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
    format!("{} {peers} on {ports}", direction.lead())
}

/// The policies of one side that select a pod class (none: unrestricted).
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

/// Compares egress and ingress, each on its own.
pub fn compare(scope: &Scope, desired: &Index, live: &Index, report: &mut Report) -> Result<()> {
    for direction in Direction::ALL {
        compare_direction(scope, desired, live, direction, report)?;
    }
    Ok(())
}

fn compare_direction(
    scope: &Scope,
    desired: &Index,
    live: &Index,
    direction: Direction,
    report: &mut Report,
) -> Result<()> {
    let d = policies(desired, scope, direction)?;
    let l = policies(live, scope, direction)?;
    let area = direction.area();
    let word = direction.policy_type().to_lowercase();
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
            for (gained, side, other, wider) in [(&lr, &ls, &ds, true), (&dr, &ds, &ls, false)] {
                let lost_or_gained: BTreeSet<(usize, usize)> = if wider {
                    gained.difference(&dr).copied().collect()
                } else {
                    gained.difference(&lr).copied().collect()
                };
                if lost_or_gained.is_empty() {
                    continue;
                }
                let mut findings = Vec::new();
                if side.is_empty() {
                    // Unrestricted on this side: the policies that restrict
                    // the other side are what is missing.
                    findings.push(Finding {
                        area,
                        holder: holder.clone(),
                        permission: format!(
                            "unrestricted {word} (no {word} policy selects these pods)"
                        ),
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
                    for rule in side.iter().flat_map(|p| p.rules.iter()) {
                        let allowed = universe.allowed(rule);
                        let pieces: BTreeSet<(usize, usize)> =
                            allowed.intersection(&lost_or_gained).copied().collect();
                        if pieces.is_empty() {
                            continue;
                        }
                        let source = vec![Source::new(
                            &rule.policy,
                            "policy",
                            Some(format!("{word} rule #{}", rule.index + 1)),
                        )];
                        if pieces == allowed {
                            findings.push(Finding {
                                area,
                                holder: holder.clone(),
                                permission: format!(
                                    "{} ({})",
                                    rule_text(rule, direction),
                                    if wider {
                                        "all of it new"
                                    } else {
                                        "all of it lost"
                                    }
                                ),
                                sources: source,
                            });
                            continue;
                        }
                        let described = universe.describe(&pieces, direction);
                        let mut shown: Vec<String> =
                            described.iter().take(SHOWN).cloned().collect();
                        if described.len() > SHOWN {
                            shown.push(format!("and {} more", described.len() - SHOWN));
                        }
                        findings.push(Finding {
                            area,
                            holder: holder.clone(),
                            permission: format!(
                                "{} ({}: {})",
                                rule_text(rule, direction),
                                direction.change(wider),
                                shown.join("; ")
                            ),
                            sources: source,
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

    #[test]
    fn policy_types_decide_which_directions_a_policy_governs() {
        use Direction::{Egress, Ingress};
        let governs = |spec: Value| {
            Direction::ALL
                .into_iter()
                .filter(|d| d.applies(&spec))
                .collect::<Vec<_>>()
        };
        // Without policyTypes ingress always applies, egress only with rules.
        assert_eq!(governs(serde_json::json!({"podSelector": {}})), [Ingress]);
        assert_eq!(
            governs(serde_json::json!({"podSelector": {}, "ingress": [{}]})),
            [Ingress]
        );
        assert_eq!(
            governs(serde_json::json!({"podSelector": {}, "egress": []})),
            [Egress, Ingress]
        );
        // Listed types are taken as they are, whatever sections exist.
        assert_eq!(
            governs(serde_json::json!({"policyTypes": ["Egress"], "ingress": []})),
            [Egress]
        );
        assert_eq!(
            governs(serde_json::json!({"policyTypes": ["Ingress"], "egress": []})),
            [Ingress]
        );
        assert_eq!(
            governs(serde_json::json!({"policyTypes": ["Ingress", "Egress"]})),
            [Egress, Ingress]
        );
    }

    #[test]
    fn ingress_rules_read_from_peers_and_print_as_sources() {
        let o = ObjectRef {
            api_version: "networking.k8s.io/v1".into(),
            kind: "NetworkPolicy".into(),
            namespace: Some("n".into()),
            name: "p".into(),
        };
        let v = serde_json::json!({"spec": {
        "podSelector": {},
        "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}],
        "ingress": [
            {"from": [{"podSelector": {"matchLabels": {"app": "web"}}}],
             "ports": [{"port": 8080}]},
            {}
        ]}});
        let p = parse_policy(&o, &v, Direction::Ingress).unwrap().unwrap();
        let texts: Vec<String> = p
            .rules
            .iter()
            .map(|r| rule_text(r, Direction::Ingress))
            .collect();
        assert_eq!(
            texts,
            [
                "ingress from pods {app=web} in namespace n on TCP/8080",
                "ingress from any source on all ports"
            ]
        );
        let p = parse_policy(&o, &v, Direction::Egress).unwrap().unwrap();
        assert_eq!(
            rule_text(&p.rules[0], Direction::Egress),
            "egress to 10.0.0.0/8 on all ports"
        );
    }
}
