//! Deduplication and grouping.
//!
//! An alert joins an open incident when its event time (`startsAt`) falls
//! within `window_seconds` of the incident's event-time span **and** it is
//! linked to the incident: it shares the value of a link label (by default
//! `service` or `namespace`), or its service is within `topology_hops`
//! dependency edges of a service in the incident. Grouping on event time
//! rather than arrival time means a replayed or delayed storm groups the
//! same way it did live.
//!
//! When one alert links several incidents whose investigations have not yet
//! started, they are merged into the oldest; an incident whose
//! investigation is running is never merged away (its job already holds its
//! identity), though it still accepts alerts.
//!
//! An incident stops accepting new alerts once no alert has joined it for
//! `window_seconds` of wall-clock time (it is *retired*); it keeps its
//! fingerprints so that re-sends still deduplicate, for `dedup_horizon_seconds`.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use warden_core::ports::{IncidentSummary, IntakeWrite};
use warden_core::{
    Alert, AlertStatus, Domain, Fingerprint, Incident, IncidentId, IncidentStatus, TopologyHint,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorrelationConfig {
    /// Event-time distance within which linked alerts share an incident.
    pub window_seconds: u64,
    /// Labels whose equal values link two alerts.
    pub link_labels: Vec<String>,
    /// The label that names an alert's node in the topology.
    pub topology_label: String,
    /// Known dependency edges (`from` depends on `to`).
    pub topology: Vec<TopologyHint>,
    /// Dependency hops that still link two nodes (0 disables topology).
    pub topology_hops: u32,
    /// How long an incident collects alerts before its investigation starts
    /// (arrival time), so that the plan sees the storm, not its first alert.
    pub group_wait_ms: u64,
    /// How long fingerprints of a retired incident still deduplicate.
    pub dedup_horizon_seconds: u64,
}

impl Default for CorrelationConfig {
    fn default() -> Self {
        CorrelationConfig {
            window_seconds: 600,
            link_labels: vec!["service".into(), "namespace".into()],
            topology_label: "service".into(),
            topology: Vec::new(),
            topology_hops: 2,
            group_wait_ms: 2000,
            dedup_horizon_seconds: 24 * 3600,
        }
    }
}

impl CorrelationConfig {
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.window_seconds == 0 {
            problems.push("correlation.window_seconds must be positive".to_string());
        }
        if self.link_labels.iter().any(String::is_empty) {
            problems.push("correlation.link_labels must not contain an empty name".to_string());
        }
        if self.topology_hops > 6 {
            problems.push("correlation.topology_hops must be at most 6".to_string());
        }
        for (i, e) in self.topology.iter().enumerate() {
            if e.from.is_empty() || e.to.is_empty() {
                problems.push(format!(
                    "correlation.topology[{i}]: from and to must not be empty"
                ));
            }
        }
        problems
    }
}

/// What one call to [`Correlator::ingest`] did.
#[derive(Debug, Default)]
pub struct IngestOutcome {
    /// To be written in one transaction.
    pub write: IntakeWrite,
    pub received: usize,
    /// Alerts whose fingerprint was already known (updates, not new alerts).
    pub deduplicated: usize,
    pub created: Vec<IncidentId>,
}

type LinkKey = (String, String);

struct IncidentState {
    summary: IncidentSummary,
    seq: u64,
    alerts: HashMap<Fingerprint, (AlertStatus, DateTime<Utc>)>,
    firing: usize,
    domains: BTreeSet<Domain>,
    links: HashSet<LinkKey>,
    dispatched: bool,
    joinable: bool,
    fixed_title: bool,
    earliest_start: DateTime<Utc>,
    last_joined: DateTime<Utc>,
}

impl IncidentState {
    fn status(&self) -> IncidentStatus {
        if self.firing > 0 {
            IncidentStatus::Open
        } else {
            IncidentStatus::Resolved
        }
    }
}

/// The in-memory grouping state. Owned by one task; see the module docs.
pub struct Correlator {
    config: CorrelationConfig,
    window: Duration,
    neighbours: HashMap<String, HashSet<String>>,
    incidents: HashMap<IncidentId, IncidentState>,
    by_fingerprint: HashMap<Fingerprint, IncidentId>,
    by_link: HashMap<LinkKey, Vec<IncidentId>>,
    joinable: VecDeque<IncidentId>,
    next_seq: u64,
}

fn title_of(alert: &Alert) -> String {
    let name = alert.name();
    let name = if name.is_empty() { "alert" } else { name };
    match alert.label("service") {
        Some(s) => format!("{name} on {s}"),
        None => name.to_string(),
    }
}

impl Correlator {
    pub fn new(config: CorrelationConfig) -> Self {
        let window =
            Duration::seconds(i64::try_from(config.window_seconds).unwrap_or(i64::MAX / 1000));
        let mut c = Correlator {
            window,
            neighbours: HashMap::new(),
            incidents: HashMap::new(),
            by_fingerprint: HashMap::new(),
            by_link: HashMap::new(),
            joinable: VecDeque::new(),
            next_seq: 0,
            config,
        };
        let edges = c.config.topology.clone();
        c.add_topology(&edges);
        c
    }

    /// Rebuilds state from the store after a restart. `dispatched` says
    /// which incidents already have an investigation.
    pub fn restore(
        config: CorrelationConfig,
        incidents: Vec<Incident>,
        dispatched: &HashSet<IncidentId>,
        now: DateTime<Utc>,
    ) -> Self {
        let mut c = Correlator::new(config);
        let mut incidents = incidents;
        incidents.sort_by(|a, b| a.id.cmp(&b.id));
        for inc in incidents {
            c.add_topology(&inc.topology);
            let seq = c.bump();
            let mut state = IncidentState {
                summary: IncidentSummary {
                    id: inc.id.clone(),
                    title: inc.title.clone(),
                    status: inc.status,
                    first_event_at: inc.first_event_at,
                    last_event_at: inc.last_event_at,
                    created_at: inc.created_at,
                    topology: inc.topology.clone(),
                },
                seq,
                alerts: HashMap::new(),
                firing: 0,
                domains: BTreeSet::new(),
                links: HashSet::new(),
                dispatched: dispatched.contains(&inc.id),
                joinable: true,
                fixed_title: true,
                earliest_start: inc.first_event_at,
                last_joined: now,
            };
            for a in &inc.alerts {
                state
                    .alerts
                    .insert(a.fingerprint.clone(), (a.status, a.starts_at));
                if a.status == AlertStatus::Firing {
                    state.firing += 1;
                }
                state.domains.insert(a.domain());
                c.by_fingerprint
                    .insert(a.fingerprint.clone(), inc.id.clone());
                for key in c.link_keys(a) {
                    state.links.insert(key);
                }
            }
            for key in &state.links {
                c.by_link
                    .entry(key.clone())
                    .or_default()
                    .push(inc.id.clone());
            }
            c.joinable.push_back(inc.id.clone());
            c.incidents.insert(inc.id, state);
        }
        c
    }

    fn bump(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Adds dependency edges and recomputes who is linked to whom.
    pub fn add_topology(&mut self, edges: &[TopologyHint]) {
        let mut new = false;
        for e in edges {
            if !self.config.topology.contains(e) {
                self.config.topology.push(e.clone());
                new = true;
            }
        }
        if new || self.neighbours.is_empty() {
            self.neighbours = neighbourhoods(&self.config.topology, self.config.topology_hops);
        }
    }

    fn link_keys(&self, alert: &Alert) -> Vec<LinkKey> {
        self.config
            .link_labels
            .iter()
            .filter_map(|k| {
                alert
                    .labels
                    .get(k)
                    .filter(|v| !v.is_empty())
                    .map(|v| (k.clone(), v.clone()))
            })
            .collect()
    }

    /// Incidents the alert is linked to and within the event-time window of.
    fn candidates(&self, alert: &Alert) -> Vec<IncidentId> {
        let mut ids: HashSet<&IncidentId> = HashSet::new();
        for key in self.link_keys(alert) {
            if let Some(list) = self.by_link.get(&key) {
                ids.extend(list);
            }
        }
        let topo = &self.config.topology_label;
        if let Some(near) = alert
            .labels
            .get(topo)
            .and_then(|node| self.neighbours.get(node))
        {
            for n in near {
                if let Some(list) = self.by_link.get(&(topo.clone(), n.clone())) {
                    ids.extend(list);
                }
            }
        }
        let mut out: Vec<&IncidentState> = ids
            .into_iter()
            .filter_map(|id| self.incidents.get(id))
            .filter(|s| {
                s.joinable
                    && s.status() == IncidentStatus::Open
                    && alert.starts_at >= s.summary.first_event_at - self.window
                    && alert.starts_at <= s.summary.last_event_at + self.window
            })
            .collect();
        out.sort_by_key(|s| s.seq);
        out.into_iter().map(|s| s.summary.id.clone()).collect()
    }

    /// Deduplicates and groups one batch. `title` and `topology` come from
    /// a generic incident, whose alerts are kept together.
    pub fn ingest(
        &mut self,
        alerts: Vec<Alert>,
        title: Option<&str>,
        topology: &[TopologyHint],
        now: DateTime<Utc>,
    ) -> IngestOutcome {
        self.retire(now);
        if !topology.is_empty() {
            self.add_topology(topology);
        }
        let mut out = IngestOutcome {
            received: alerts.len(),
            ..IngestOutcome::default()
        };
        let mut touched: Vec<IncidentId> = Vec::new();
        // A generic incident's alerts stay together: the first placement
        // decides where the rest go.
        let mut group_target: Option<IncidentId> = None;

        for alert in alerts {
            if let Some(id) = self.known_occurrence(&alert) {
                out.deduplicated += 1;
                self.update_alert(&id, &alert);
                touched.push(id.clone());
                out.write.alerts.push((id, alert));
                continue;
            }
            let target = match (&group_target, title) {
                (Some(t), Some(_)) => t.clone(),
                _ => {
                    let candidates = self.candidates(&alert);
                    let target = match candidates.first() {
                        Some(first) => first.clone(),
                        None => {
                            let id = self.create(&alert, title, topology, now);
                            out.created.push(id.clone());
                            id
                        }
                    };
                    for other in candidates.iter().skip(1) {
                        if self.merge(other, &target) {
                            out.write.merged.push((other.clone(), target.clone()));
                            out.created.retain(|c| c != other);
                        }
                    }
                    target
                }
            };
            if title.is_some() {
                group_target = Some(target.clone());
            }
            self.add_alert(&target, &alert, now);
            touched.push(target.clone());
            out.write.alerts.push((target, alert));
        }

        // Alerts placed before a merge in this same batch follow it.
        for (from, into) in &out.write.merged {
            for (id, _) in out.write.alerts.iter_mut() {
                if id == from {
                    *id = into.clone();
                }
            }
            for id in touched.iter_mut() {
                if id == from {
                    *id = into.clone();
                }
            }
        }
        touched.sort();
        touched.dedup();
        for id in touched {
            if let Some(s) = self.incidents.get(&id) {
                out.write.incidents.push(s.summary.clone());
            }
        }
        let merged_from: HashSet<&IncidentId> = out.write.merged.iter().map(|(f, _)| f).collect();
        out.write.incidents.retain(|s| !merged_from.contains(&s.id));
        out
    }

    /// The incident holding this occurrence of the alert, if it is a re-send.
    /// A firing alert whose earlier occurrence resolved, in an incident that
    /// has resolved, is a new occurrence.
    fn known_occurrence(&self, alert: &Alert) -> Option<IncidentId> {
        let id = self.by_fingerprint.get(&alert.fingerprint)?;
        let state = self.incidents.get(id)?;
        let (status, starts_at) = state.alerts.get(&alert.fingerprint)?;
        let refired = *status == AlertStatus::Resolved
            && alert.status == AlertStatus::Firing
            && alert.starts_at > *starts_at
            && state.status() == IncidentStatus::Resolved;
        (!refired).then(|| id.clone())
    }

    fn create(
        &mut self,
        alert: &Alert,
        title: Option<&str>,
        topology: &[TopologyHint],
        now: DateTime<Utc>,
    ) -> IncidentId {
        let id = IncidentId::generate();
        let seq = self.bump();
        let state = IncidentState {
            summary: IncidentSummary {
                id: id.clone(),
                title: title.map_or_else(|| title_of(alert), str::to_string),
                status: IncidentStatus::Open,
                first_event_at: alert.starts_at,
                last_event_at: alert.starts_at,
                created_at: now,
                topology: topology.to_vec(),
            },
            seq,
            alerts: HashMap::new(),
            firing: 0,
            domains: BTreeSet::new(),
            links: HashSet::new(),
            dispatched: false,
            joinable: true,
            fixed_title: title.is_some(),
            earliest_start: alert.starts_at,
            last_joined: now,
        };
        self.incidents.insert(id.clone(), state);
        self.joinable.push_back(id.clone());
        id
    }

    fn add_alert(&mut self, id: &IncidentId, alert: &Alert, now: DateTime<Utc>) {
        let keys = self.link_keys(alert);
        let Some(state) = self.incidents.get_mut(id) else {
            return;
        };
        let previous = state
            .alerts
            .insert(alert.fingerprint.clone(), (alert.status, alert.starts_at));
        if previous.is_some_and(|(old, _)| old == AlertStatus::Firing) {
            state.firing -= 1;
        }
        if alert.status == AlertStatus::Firing {
            state.firing += 1;
        }
        state.domains.insert(alert.domain());
        state.summary.first_event_at = state.summary.first_event_at.min(alert.starts_at);
        state.summary.last_event_at = state.summary.last_event_at.max(alert.starts_at);
        if alert.starts_at < state.earliest_start {
            state.earliest_start = alert.starts_at;
            if !state.fixed_title {
                state.summary.title = title_of(alert);
            }
        }
        state.summary.status = state.status();
        state.last_joined = now;
        for key in keys {
            if state.links.insert(key.clone()) {
                self.by_link.entry(key).or_default().push(id.clone());
            }
        }
        self.by_fingerprint
            .insert(alert.fingerprint.clone(), id.clone());
    }

    fn update_alert(&mut self, id: &IncidentId, alert: &Alert) {
        let Some(state) = self.incidents.get_mut(id) else {
            return;
        };
        if let Some((old, starts)) = state.alerts.get_mut(&alert.fingerprint) {
            match (*old, alert.status) {
                (AlertStatus::Firing, AlertStatus::Resolved) => state.firing -= 1,
                (AlertStatus::Resolved, AlertStatus::Firing) => state.firing += 1,
                _ => {}
            }
            *old = alert.status;
            *starts = alert.starts_at;
        }
        state.summary.status = state.status();
    }

    /// Moves `from` into `into` unless `from` already has an investigation.
    fn merge(&mut self, from: &IncidentId, into: &IncidentId) -> bool {
        if from == into || self.incidents.get(from).is_none_or(|s| s.dispatched) {
            return false;
        }
        let Some(src) = self.incidents.remove(from) else {
            return false;
        };
        self.joinable.retain(|j| j != from);
        for list in self.by_link.values_mut() {
            list.retain(|i| i != from);
        }
        for fp in src.alerts.keys() {
            self.by_fingerprint.insert(fp.clone(), into.clone());
        }
        let Some(dst) = self.incidents.get_mut(into) else {
            return false;
        };
        for (fp, (status, starts)) in src.alerts {
            if status == AlertStatus::Firing {
                dst.firing += 1;
            }
            dst.alerts.insert(fp, (status, starts));
        }
        dst.domains.extend(src.domains);
        dst.summary.first_event_at = dst.summary.first_event_at.min(src.summary.first_event_at);
        dst.summary.last_event_at = dst.summary.last_event_at.max(src.summary.last_event_at);
        if src.earliest_start < dst.earliest_start && !dst.fixed_title {
            dst.earliest_start = src.earliest_start;
            dst.summary.title = src.summary.title;
        }
        for t in src.summary.topology {
            if !dst.summary.topology.contains(&t) {
                dst.summary.topology.push(t);
            }
        }
        dst.summary.status = dst.status();
        let new_links: Vec<LinkKey> = src
            .links
            .into_iter()
            .filter(|k| dst.links.insert(k.clone()))
            .collect();
        for key in new_links {
            self.by_link.entry(key).or_default().push(into.clone());
        }
        true
    }

    /// Stops incidents idle for a window from accepting alerts, and forgets
    /// those past the dedup horizon.
    fn retire(&mut self, now: DateTime<Utc>) {
        let window = self.window;
        while let Some(id) = self.joinable.front() {
            let idle = match self.incidents.get(id) {
                Some(s) => now - s.last_joined > window,
                None => true,
            };
            if !idle {
                // Queue order is creation order, not last-join order, so a
                // busy incident at the front can shield idle ones behind it;
                // they are caught when it goes idle. That bounds staleness by
                // the busiest incident's activity, which is acceptable here.
                break;
            }
            let Some(id) = self.joinable.pop_front() else {
                break;
            };
            if let Some(state) = self.incidents.get_mut(&id) {
                state.joinable = false;
                for key in &state.links {
                    if let Some(list) = self.by_link.get_mut(key) {
                        list.retain(|i| i != &id);
                        if list.is_empty() {
                            self.by_link.remove(key);
                        }
                    }
                }
            }
        }
        let horizon = Duration::seconds(
            i64::try_from(self.config.dedup_horizon_seconds).unwrap_or(i64::MAX / 1000),
        );
        let expired: Vec<IncidentId> = self
            .incidents
            .iter()
            .filter(|(_, s)| {
                !s.joinable
                    && (s.status() == IncidentStatus::Resolved || now - s.last_joined > horizon)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if let Some(state) = self.incidents.remove(&id) {
                for fp in state.alerts.keys() {
                    if self.by_fingerprint.get(fp) == Some(&id) {
                        self.by_fingerprint.remove(fp);
                    }
                }
            }
        }
    }

    /// Marks an incident as having an investigation: never merged away again.
    pub fn mark_dispatched(&mut self, id: &IncidentId) {
        if let Some(s) = self.incidents.get_mut(id) {
            s.dispatched = true;
        }
    }

    /// Domains and alert count, for the planner.
    pub fn shape(&self, id: &IncidentId) -> Option<(BTreeSet<Domain>, usize, IncidentStatus)> {
        self.incidents
            .get(id)
            .map(|s| (s.domains.clone(), s.alerts.len(), s.status()))
    }

    /// Incidents in memory (joinable or kept for deduplication).
    pub fn tracked(&self) -> usize {
        self.incidents.len()
    }
}

/// For each node, the nodes within `hops` edges, ignoring direction: a
/// caller and its callee are linked whichever of them alerts first.
fn neighbourhoods(edges: &[TopologyHint], hops: u32) -> HashMap<String, HashSet<String>> {
    let mut adj: HashMap<&str, Vec<&str>> = HashMap::new();
    for e in edges {
        adj.entry(e.from.as_str()).or_default().push(e.to.as_str());
        adj.entry(e.to.as_str()).or_default().push(e.from.as_str());
    }
    let mut out = HashMap::new();
    for start in adj.keys() {
        let mut seen: HashSet<&str> = HashSet::from([*start]);
        let mut frontier = vec![*start];
        for _ in 0..hops {
            let mut next = Vec::new();
            for n in frontier {
                for m in adj.get(n).into_iter().flatten() {
                    if seen.insert(m) {
                        next.push(*m);
                    }
                }
            }
            frontier = next;
        }
        seen.remove(start);
        out.insert(
            (*start).to_string(),
            seen.into_iter().map(str::to_string).collect(),
        );
    }
    out
}
