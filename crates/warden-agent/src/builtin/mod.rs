//! The built-in reasoner: hypotheses from the evidence engines, no LLM.
//!
//! It works offline and deterministically, which makes it the default, the
//! fallback when an LLM is unavailable, and the baseline an LLM reasoner is
//! measured against. It knows kinds of cause, never particular systems:
//!
//! - **change-caused**: a change shortly before the first symptom, on or
//!   next to the failing paths. Refined into a *mechanism* (traffic through
//!   a changed device is impaired; a changed component degrades by itself)
//!   and a *propagation* (the failure spreads from where it entered to the
//!   symptoms in dependency order).
//! - **component-origin**: a node unwell by itself, upstream of the rest.
//!   Refined into a propagation.
//! - **path-device**: a network device on the paths of the failing
//!   dependencies, with no change recorded. Refined into mechanism and
//!   propagation.
//!
//! A top-level hypothesis is judged in two passes: first on its own
//! evidence (timing, position, own health), then, once its refinements are
//! settled, on theirs. Only then can it be supported, with the causal chain
//! its refinements traced.
//!
//! One suspect, one hypothesis: a change to a device or component already
//! covers that node's impairment (its refinements test exactly that), so
//! the device- or component-origin hypothesis about the same node is held
//! back, and only proposed if the change is not supported.
//!
//! When the context shows another top-level hypothesis supported with
//! confidence, a top-level hypothesis is not explored but weighed against
//! it in one pass (see [`differential`]): the loop's differential pass.

mod differential;
mod judge;
pub(crate) mod picture;
mod text;

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use warden_core::ports::{
    Assessment, Focus, Observation, PlannedQuery, ProposedHypothesis, Query, Reasoner,
    ReasonerError, ReasoningContext, broad_survey,
};
use warden_core::report::{HypothesisStatus, LlmCall, Remediation, RootCause};
use warden_core::telemetry::TimeRange;

use crate::engines::anomaly::AnomalyConfig;
use crate::engines::changes::{ChangeCandidate, ChangeConfig, PathRelation};
use crate::engines::flows::FlowConfig;
use crate::engines::templates::MiningConfig;
use crate::engines::topology::{NodeHealth, OriginCandidate, OriginKind, chain_reach};
use judge::Verdict;
use picture::{Collected, Picture, Windows, alerted_nodes};
use text::{hms, join, stamp};

/// Tuning of the built-in reasoner.
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltinConfig {
    /// How long before the first alert the incident window starts.
    pub baseline_guard: Duration,
    pub anomaly: AnomalyConfig,
    pub mining: MiningConfig,
    pub flows: FlowConfig,
    pub changes: ChangeConfig,
    /// Lines per per-service log query.
    pub log_limit: usize,
    /// Lines for the survey's log query across all services.
    pub survey_log_limit: usize,
    pub max_change_hypotheses: usize,
    pub max_origin_hypotheses: usize,
    /// Nodes a propagation check fetches data for.
    pub max_propagation_nodes: usize,
    /// Score a supported top-level hypothesis needs before alternatives
    /// are weighed against it rather than explored. It matches the loop's
    /// default confidence threshold: only a conclusion the loop accepts is
    /// used to rule out the others.
    pub reference_min_score: f64,
}

impl Default for BuiltinConfig {
    fn default() -> Self {
        BuiltinConfig {
            // Alerts typically fire minutes after their condition starts
            // (`for:` clauses, evaluation intervals); 15 minutes keeps the
            // start of the trouble out of the baseline.
            baseline_guard: Duration::minutes(15),
            anomaly: AnomalyConfig::default(),
            mining: MiningConfig::default(),
            flows: FlowConfig::default(),
            changes: ChangeConfig::default(),
            log_limit: 20_000,
            survey_log_limit: 200_000,
            max_change_hypotheses: 4,
            max_origin_hypotheses: 3,
            max_propagation_nodes: 10,
            reference_min_score: 0.8,
        }
    }
}

/// What a hypothesis is about, in the reasoner's own terms.
#[derive(Debug, Clone)]
enum Subject {
    Change(Box<ChangeCandidate>),
    Component(Box<OriginCandidate>),
    Device(Box<OriginCandidate>),
    /// Mechanism: traffic through a device is impaired.
    PathImpaired {
        device: String,
        since: Option<DateTime<Utc>>,
        edges: Vec<(String, String)>,
    },
    /// Mechanism: a node degraded by itself.
    Degraded {
        node: String,
        since: Option<DateTime<Utc>>,
    },
    Propagation {
        entry: BTreeSet<String>,
        since: Option<DateTime<Utc>>,
        /// The device or change target upstream of `entry`, if any.
        origin: Option<String>,
    },
}

#[derive(Debug, Clone)]
struct Item {
    subject: Subject,
    children: Vec<String>,
    verdicts: Vec<Verdict>,
}

impl Item {
    fn last(&self) -> Option<&Verdict> {
        self.verdicts.last()
    }

    fn is_top_level(&self) -> bool {
        matches!(
            self.subject,
            Subject::Change(_) | Subject::Component(_) | Subject::Device(_)
        )
    }
}

/// A hypothesis held back while a change hypothesis covers its node.
#[derive(Debug, Clone)]
struct Deferred {
    /// Tag of the change hypothesis that covers it.
    covered_by: String,
    proposal: ProposedHypothesis,
}

/// The default, offline reasoner.
pub struct BuiltinReasoner {
    cfg: BuiltinConfig,
    windows: Option<Windows>,
    picture: Option<Picture>,
    items: BTreeMap<String, Item>,
    /// Hypothesis id (assigned by the loop) → tag.
    tags: BTreeMap<String, String>,
    hypothesized: bool,
    deferred: Vec<Deferred>,
}

impl Default for BuiltinReasoner {
    fn default() -> Self {
        BuiltinReasoner::new(BuiltinConfig::default())
    }
}

impl BuiltinReasoner {
    pub fn new(cfg: BuiltinConfig) -> Self {
        BuiltinReasoner {
            cfg,
            windows: None,
            picture: None,
            items: BTreeMap::new(),
            tags: BTreeMap::new(),
            hypothesized: false,
            deferred: Vec::new(),
        }
    }

    fn windows(&mut self, ctx: &ReasoningContext) -> Windows {
        *self.windows.get_or_insert_with(|| {
            Windows::around(
                ctx.window,
                ctx.incident.first_event_at,
                self.cfg.baseline_guard,
            )
        })
    }

    fn add(&mut self, tag: String, subject: Subject) {
        self.items.entry(tag).or_insert(Item {
            subject,
            children: Vec::new(),
            verdicts: Vec::new(),
        });
    }

    /// Top-level hypotheses from the survey's picture, best first.
    fn candidates(&mut self, pic: &Picture) -> Vec<ProposedHypothesis> {
        let mut out = Vec::new();
        // Changed node → the change hypothesis whose refinements test it.
        let mut covered: BTreeMap<String, String> = BTreeMap::new();
        for cand in pic.changes.iter().take(self.cfg.max_change_hypotheses) {
            if cand.score < 0.02 {
                continue;
            }
            let c = &cand.change;
            let tag = format!("change:{}", c.id);
            if matches!(cand.relation, PathRelation::Affected | PathRelation::OnPath) {
                covered.entry(c.target.clone()).or_insert(tag.clone());
            }
            out.push(ProposedHypothesis {
                tag: tag.clone(),
                statement: format!(
                    "Change {} ({} on {} at {}) caused the incident",
                    c.id,
                    c.kind,
                    c.target,
                    hms(c.ts)
                ),
                subject: c.target.clone(),
                prior: 0.7 * cand.score,
            });
            self.add(tag, Subject::Change(Box::new(cand.clone())));
        }
        let origins = pic
            .origins
            .iter()
            .filter(|o| !o.symptom_only && o.score >= 0.15)
            .take(self.cfg.max_origin_hypotheses);
        for cand in origins {
            let (tag, statement, subject) = match cand.kind {
                OriginKind::Component => (
                    format!("component:{}", cand.node),
                    format!("The incident originates in {}", cand.node),
                    Subject::Component(Box::new(cand.clone())),
                ),
                OriginKind::PathDevice => (
                    format!("device:{}", cand.node),
                    format!(
                        "Network device {} is impairing the traffic that passes through it",
                        cand.node
                    ),
                    Subject::Device(Box::new(cand.clone())),
                ),
            };
            let proposal = ProposedHypothesis {
                tag: tag.clone(),
                statement,
                subject: cand.node.clone(),
                prior: 0.6 * cand.score,
            };
            self.add(tag, subject);
            // A change to the same node says more: this is its fallback.
            match covered.get(&cand.node) {
                Some(change) => self.deferred.push(Deferred {
                    covered_by: change.clone(),
                    proposal,
                }),
                None => out.push(proposal),
            }
        }
        out.sort_by(|a, b| b.prior.total_cmp(&a.prior));
        out
    }

    /// Held-back hypotheses whose covering change is settled and not
    /// supported.
    fn release_deferred(&mut self, ctx: &ReasoningContext) -> Vec<ProposedHypothesis> {
        let status_of = |tag: &str| {
            let id = self.tags.iter().find(|(_, t)| t.as_str() == tag)?.0;
            ctx.hypotheses
                .iter()
                .find(|h| &h.id == id)
                .map(|h| h.status)
        };
        let (release, keep): (Vec<Deferred>, Vec<Deferred>) = self
            .deferred
            .clone()
            .into_iter()
            .partition(|d| status_of(&d.covered_by) != Some(HypothesisStatus::Supported));
        self.deferred = keep;
        let mut out: Vec<ProposedHypothesis> = release.into_iter().map(|d| d.proposal).collect();
        out.sort_by(|a, b| b.prior.total_cmp(&a.prior));
        out
    }

    /// The supported explanation `focus` is to be weighed against, when
    /// there is one: see the module docs.
    fn reference(&self, ctx: &ReasoningContext, focus: &Focus) -> Option<differential::Reference> {
        let pic = self.picture.as_ref()?;
        let (h, item) = ctx
            .hypotheses
            .iter()
            .filter(|h| {
                h.parent.is_none()
                    && h.id != focus.hypothesis.id
                    && h.status == HypothesisStatus::Supported
                    && h.score >= self.cfg.reference_min_score
            })
            .filter_map(|h| {
                let item = self.items.get(self.tags.get(&h.id)?)?;
                item.last()?.explains.then_some((h, item))
            })
            .max_by(|a, b| a.0.score.total_cmp(&b.0.score))?;
        let (origin, origin_node, origin_at) = match &item.subject {
            Subject::Change(c) => (
                format!("change {}", c.change.id),
                c.change.target.clone(),
                Some(c.change.ts),
            ),
            Subject::Component(c) => (
                c.node.clone(),
                c.node.clone(),
                pic.health.get(&c.node).and_then(|h| h.own_onset),
            ),
            Subject::Device(c) => (c.node.clone(), c.node.clone(), pic.scope.onset),
            _ => return None,
        };
        let entry: BTreeSet<String> = item
            .children
            .iter()
            .filter_map(|t| match &self.items.get(t)?.subject {
                Subject::Propagation { entry, .. } => Some(entry.clone()),
                _ => None,
            })
            .flatten()
            .filter(|n| pic.health.get(n).is_some_and(NodeHealth::is_unwell))
            .collect();
        let mut reach = chain_reach(&pic.topology, &pic.health, &entry);
        reach.insert(origin_node.clone());
        Some(differential::Reference {
            id: h.id.clone(),
            origin,
            origin_node,
            origin_at,
            entry,
            reach,
        })
    }

    /// Refinements of a top-level hypothesis after its first pass.
    fn refine(&mut self, tag: &str, pic: &Picture) -> Vec<ProposedHypothesis> {
        let Some(item) = self.items.get(tag) else {
            return Vec::new();
        };
        let unwell = |n: &String| pic.health.get(n).is_some_and(NodeHealth::is_unwell);
        let mut children: Vec<(String, String, String, Subject)> = Vec::new();
        match &item.subject {
            Subject::Change(cand) => {
                let c = &cand.change;
                let trigger = format!("change {} at {}", c.id, hms(c.ts));
                if cand.relation == PathRelation::OnPath {
                    let entry: BTreeSet<String> = cand
                        .edges
                        .iter()
                        .map(|(f, _)| f.clone())
                        .filter(|f| unwell(f))
                        .collect();
                    children.push((
                        format!("{tag}/path"),
                        format!(
                            "Traffic through {} ({}) is dropped or retransmitted since {trigger}",
                            c.target,
                            join(cand.edges.iter().map(|(f, t)| format!("{f} → {t}")))
                        ),
                        c.target.clone(),
                        Subject::PathImpaired {
                            device: c.target.clone(),
                            since: Some(c.ts),
                            edges: cand.edges.clone(),
                        },
                    ));
                    children.push(propagation_child(tag, &entry, Some(c.ts), Some(&c.target)));
                } else {
                    children.push((
                        format!("{tag}/degraded"),
                        format!("{} degraded by itself after {trigger}", c.target),
                        c.target.clone(),
                        Subject::Degraded {
                            node: c.target.clone(),
                            since: Some(c.ts),
                        },
                    ));
                    children.push(propagation_child(
                        tag,
                        &BTreeSet::from([c.target.clone()]),
                        Some(c.ts),
                        None,
                    ));
                }
            }
            Subject::Component(cand) => {
                let since = pic.health.get(&cand.node).and_then(|h| h.own_onset);
                children.push(propagation_child(tag, &cand.entry, since, None));
            }
            Subject::Device(cand) => {
                let edges: Vec<(String, String)> = pic
                    .topology
                    .edges_via(&cand.node)
                    .filter(|e| cand.entry.contains(&e.from))
                    .map(|e| (e.from.clone(), e.to.clone()))
                    .collect();
                children.push((
                    format!("{tag}/path"),
                    format!(
                        "Traffic through {} ({}) is dropped or retransmitted",
                        cand.node,
                        join(edges.iter().map(|(f, t)| format!("{f} → {t}")))
                    ),
                    cand.node.clone(),
                    Subject::PathImpaired {
                        device: cand.node.clone(),
                        since: None,
                        edges,
                    },
                ));
                children.push(propagation_child(tag, &cand.entry, None, Some(&cand.node)));
            }
            _ => {}
        }
        let mut out = Vec::new();
        let mut child_tags = Vec::new();
        for (child_tag, statement, subject_name, subject) in children {
            let prior = self
                .items
                .get(tag)
                .and_then(Item::last)
                .map_or(0.3, |v| v.score);
            out.push(ProposedHypothesis {
                tag: child_tag.clone(),
                statement,
                subject: subject_name,
                prior,
            });
            child_tags.push(child_tag.clone());
            self.add(child_tag, subject);
        }
        if let Some(item) = self.items.get_mut(tag) {
            item.children = child_tags;
        }
        out
    }

    /// The second pass: combine a top-level hypothesis with its settled
    /// refinements.
    fn conclude(&self, item: &Item) -> Verdict {
        let first = item.verdicts.first().cloned().unwrap_or_default();
        let kids: Vec<&Verdict> = item
            .children
            .iter()
            .filter_map(|t| self.items.get(t)?.last())
            .collect();
        let status_of = |i: usize| kids.get(i).map(|v| v.status());
        let score_of = |i: usize| kids.get(i).map_or(0.0, |v| v.score);
        let mut v = Verdict::default();
        let (score, parts): (f64, usize) = match &item.subject {
            Subject::Change(_) => (
                0.3 * first.score + 0.45 * score_of(0) + 0.25 * score_of(1),
                2,
            ),
            Subject::Component(_) => (0.5 * first.score + 0.5 * score_of(0), 1),
            Subject::Device(_) => (
                (0.2 * first.score + 0.5 * score_of(0) + 0.3 * score_of(1)).min(0.85),
                2,
            ),
            _ => (first.score, 0),
        };
        let statuses: Vec<Option<HypothesisStatus>> = (0..parts).map(status_of).collect();
        let all_supported = statuses
            .iter()
            .all(|s| *s == Some(HypothesisStatus::Supported));
        let any_rejected = statuses.contains(&Some(HypothesisStatus::Rejected));
        v.status = Some(if any_rejected {
            HypothesisStatus::Rejected
        } else if all_supported {
            HypothesisStatus::Supported
        } else {
            HypothesisStatus::Open
        });
        v.score = if any_rejected { score.min(0.2) } else { score };
        if let Subject::Change(cand) = &item.subject {
            let c = &cand.change;
            v.chain.push(format!(
                "{} change {} ({}) to {} by {}: \"{}\"",
                stamp(c.ts),
                c.id,
                c.kind,
                c.target,
                text::quote(&c.actor),
                text::quote(&c.summary)
            ));
        }
        for k in &kids {
            v.chain.extend(k.chain.iter().cloned());
            v.saturated.extend(k.saturated.iter().cloned());
        }
        // Every step starts with its timestamp: sorting puts them in time order.
        v.chain.sort();
        v.chain.dedup();
        let propagation = kids.last();
        v.coverage = propagation.map_or(0.0, |p| p.coverage);
        v.explains = propagation.is_some_and(|p| p.explains);
        v
    }
}

fn propagation_child(
    parent: &str,
    entry: &BTreeSet<String>,
    since: Option<DateTime<Utc>>,
    origin: Option<&str>,
) -> (String, String, String, Subject) {
    let names = join(entry.iter().map(String::as_str));
    (
        format!("{parent}/propagation"),
        format!("The failure entered at {names} and spread to its callers in dependency order"),
        names,
        Subject::Propagation {
            entry: entry.clone(),
            since,
            origin: origin.map(str::to_string),
        },
    )
}

fn metrics_of(node: &str, range: TimeRange) -> PlannedQuery {
    PlannedQuery {
        source: None,
        query: Query::Metrics {
            metric: None,
            labels: [("service".to_string(), node.to_string())].into(),
            range,
        },
        purpose: format!("metrics of {node}"),
    }
}

fn logs_of(node: &str, range: TimeRange, limit: usize) -> PlannedQuery {
    PlannedQuery {
        source: None,
        query: Query::Logs {
            service: Some(node.to_string()),
            min_level: Some("WARN".to_string()),
            contains: None,
            range,
            limit,
        },
        purpose: format!("warnings and errors logged by {node}"),
    }
}

/// The queries that weigh a top-level alternative against a supported
/// explanation: where it sits, and the health of the node it blames (and
/// the traffic through it, for a device).
fn differential_plan(subject: &Subject, range: TimeRange, limit: usize) -> Vec<PlannedQuery> {
    let flows = |purpose: &str| {
        planned(
            Query::Flows {
                service: None,
                range,
            },
            purpose,
        )
    };
    let mut q = vec![planned(Query::Topology, "where the alternative sits")];
    let node = match subject {
        Subject::Change(c) => {
            q.push(planned(
                Query::Changes { range },
                "the change and its timing",
            ));
            if c.relation == PathRelation::OnPath {
                q.push(flows("traffic through the changed device"));
            }
            &c.change.target
        }
        Subject::Component(c) => &c.node,
        Subject::Device(c) => {
            q.push(flows("traffic through the device"));
            &c.node
        }
        _ => return q,
    };
    q.push(metrics_of(node, range));
    q.push(logs_of(node, range, limit));
    q
}

fn planned(query: Query, purpose: &str) -> PlannedQuery {
    PlannedQuery::everywhere(query, purpose)
}

#[async_trait]
impl Reasoner for BuiltinReasoner {
    fn name(&self) -> &str {
        "builtin"
    }

    async fn survey(&mut self, ctx: &ReasoningContext) -> Result<Vec<PlannedQuery>, ReasonerError> {
        Ok(broad_survey(ctx.window, self.cfg.survey_log_limit))
    }

    async fn hypothesize(
        &mut self,
        ctx: &ReasoningContext,
        survey: &[Observation],
    ) -> Result<Vec<ProposedHypothesis>, ReasonerError> {
        // Every candidate is proposed at once; asked again, only the
        // fallbacks of changes that were not supported are left to offer.
        if self.hypothesized {
            return Ok(self.release_deferred(ctx));
        }
        self.hypothesized = true;
        let windows = self.windows(ctx);
        let collected = Collected::from_observations(survey);
        let alerted = alerted_nodes(&ctx.incident);
        let pic = Picture::analyse(&collected, &windows, &alerted, &self.cfg);
        let proposals = self.candidates(&pic);
        self.picture = Some(pic);
        Ok(proposals)
    }

    async fn plan(
        &mut self,
        ctx: &ReasoningContext,
        focus: &Focus,
    ) -> Result<Vec<PlannedQuery>, ReasonerError> {
        let range = ctx.window;
        let Some(item) = self.items.get(&focus.tag) else {
            return Ok(Vec::new());
        };
        let limit = self.cfg.log_limit;
        if item.is_top_level() && self.reference(ctx, focus).is_some() {
            return Ok(differential_plan(&item.subject, range, limit));
        }
        let second_pass = !item.verdicts.is_empty() && !item.children.is_empty();
        if second_pass {
            return Ok(Vec::new());
        }
        Ok(match &item.subject {
            Subject::Change(_) => vec![
                planned(Query::Changes { range }, "the change and its timing"),
                planned(Query::Topology, "where the changed node sits"),
            ],
            Subject::Component(c) => vec![
                planned(Query::Topology, "the node's dependencies"),
                metrics_of(&c.node, range),
                logs_of(&c.node, range, limit),
            ],
            Subject::Device(_) => vec![planned(Query::Topology, "the paths through the device")],
            Subject::PathImpaired { edges, .. } => {
                let mut q = vec![
                    planned(
                        Query::Flows {
                            service: None,
                            range,
                        },
                        "traffic through the device",
                    ),
                    planned(
                        Query::SecurityEvents { range },
                        "denied or reset connections on the path",
                    ),
                ];
                let callees: BTreeSet<&String> = edges.iter().map(|(_, t)| t).collect();
                q.extend(callees.into_iter().map(|t| metrics_of(t, range)));
                q
            }
            Subject::Degraded { node, .. } => {
                vec![metrics_of(node, range), logs_of(node, range, limit)]
            }
            Subject::Propagation { entry, .. } => {
                let nodes = match &self.picture {
                    Some(pic) => {
                        judge::propagation_nodes(pic, entry, self.cfg.max_propagation_nodes)
                    }
                    None => entry.iter().cloned().collect(),
                };
                let mut q = vec![planned(Query::Topology, "the dependency graph")];
                for n in &nodes {
                    q.push(metrics_of(n, range));
                    q.push(logs_of(n, range, limit));
                }
                q
            }
        })
    }

    async fn evaluate(
        &mut self,
        ctx: &ReasoningContext,
        focus: &Focus,
        observations: &[Observation],
    ) -> Result<Assessment, ReasonerError> {
        self.tags
            .insert(focus.hypothesis.id.clone(), focus.tag.clone());
        let windows = self.windows(ctx);
        let pic = self.picture.clone().unwrap_or_default();
        let Some(item) = self.items.get(&focus.tag).cloned() else {
            return Ok(Assessment {
                status: HypothesisStatus::Rejected,
                score: 0.0,
                findings: Vec::new(),
                refinements: Vec::new(),
                chain: Vec::new(),
                explains_symptoms: false,
            });
        };
        let col = Collected::from_observations(observations);
        if item.is_top_level()
            && let Some(reference) = self.reference(ctx, focus)
        {
            let scene = differential::Scene {
                pic: &pic,
                col: &col,
                local: judge::Local::of(&col, &pic.topology, &windows, &self.cfg),
                windows: &windows,
                cfg: &self.cfg,
                reference: &reference,
                prior: focus.hypothesis.score,
            };
            let verdict = match &item.subject {
                Subject::Change(c) => scene.change(c),
                Subject::Component(c) => scene.component(&c.node),
                Subject::Device(c) => scene.device(&c.node),
                _ => Verdict::default(),
            };
            if let Some(stored) = self.items.get_mut(&focus.tag) {
                stored.verdicts.push(verdict.clone());
            }
            return Ok(Assessment {
                status: verdict.status(),
                score: verdict.score,
                findings: verdict.findings,
                refinements: Vec::new(),
                chain: Vec::new(),
                explains_symptoms: false,
            });
        }
        let second_pass = !item.verdicts.is_empty() && !item.children.is_empty();
        let verdict = if second_pass {
            self.conclude(&item)
        } else {
            match &item.subject {
                Subject::Change(c) => judge::change_first(&pic, &col, c),
                Subject::Component(c) => judge::component_first(&pic, &col, &windows, &self.cfg, c),
                Subject::Device(c) => judge::device_first(&pic, &col, c),
                Subject::PathImpaired {
                    device,
                    since,
                    edges,
                } => judge::path_impaired(&pic, &col, &windows, &self.cfg, device, *since, edges),
                Subject::Degraded { node, since } => {
                    judge::degraded(&pic, &col, &windows, &self.cfg, node, *since)
                }
                Subject::Propagation {
                    entry,
                    since,
                    origin,
                } => judge::propagation(
                    &pic,
                    &col,
                    &windows,
                    &self.cfg,
                    entry,
                    *since,
                    origin.as_deref(),
                ),
            }
        };
        let top_level = item.is_top_level();
        let status = verdict.status();
        if let Some(stored) = self.items.get_mut(&focus.tag) {
            stored.verdicts.push(verdict.clone());
        }
        let refinements = if top_level && !second_pass && status != HypothesisStatus::Rejected {
            self.refine(&focus.tag, &pic)
        } else {
            Vec::new()
        };
        let supported = status == HypothesisStatus::Supported;
        Ok(Assessment {
            status,
            score: verdict.score,
            findings: verdict.findings,
            refinements,
            chain: if supported || second_pass {
                verdict.chain
            } else {
                Vec::new()
            },
            explains_symptoms: verdict.explains,
        })
    }

    async fn remediate(
        &mut self,
        _ctx: &ReasoningContext,
        root: &RootCause,
    ) -> Result<Vec<Remediation>, ReasonerError> {
        let Some(item) = self
            .tags
            .get(&root.hypothesis)
            .and_then(|t| self.items.get(t))
        else {
            return Ok(Vec::new());
        };
        let saturated: BTreeSet<String> = item
            .children
            .iter()
            .filter_map(|t| self.items.get(t)?.last())
            .flat_map(|v| v.saturated.iter().cloned())
            .chain(
                item.last()
                    .into_iter()
                    .flat_map(|v| v.saturated.iter().cloned()),
            )
            .collect();
        let mut out = Vec::new();
        match &item.subject {
            Subject::Change(cand) => {
                let c = &cand.change;
                out.push(Remediation {
                    action: "revert_change".into(),
                    target: c.id.clone(),
                    rationale: format!(
                        "Change {} ({}) to {} at {} started the failure; reverting it restores the previous state of {}",
                        c.id,
                        c.kind,
                        c.target,
                        hms(c.ts),
                        c.target
                    ),
                    risk: "low: returns to the configuration that ran before the incident; review what the change was meant to achieve first".into(),
                });
            }
            Subject::Component(cand) => {
                out.push(Remediation {
                    action: "rollout_restart".into(),
                    target: cand.node.clone(),
                    rationale: format!("{} is the origin of the failure; a restart clears a stuck or degraded state", cand.node),
                    risk: "medium: brief capacity loss while instances restart".into(),
                });
                let resource_bound = self.picture.as_ref().is_some_and(|p| {
                    p.scores.iter().any(|s| {
                        s.node.as_deref() == Some(cand.node.as_str())
                            && s.is_anomalous()
                            && matches!(
                                s.class,
                                crate::engines::anomaly::MetricClass::Resource
                                    | crate::engines::anomaly::MetricClass::Saturation
                            )
                    })
                });
                if resource_bound {
                    out.push(Remediation {
                        action: "scale".into(),
                        target: cand.node.clone(),
                        rationale: format!("{} is short of resources or capacity", cand.node),
                        risk: "low: adds capacity; costs more while scaled".into(),
                    });
                }
            }
            Subject::Device(cand) => {
                out.push(Remediation {
                    action: "escalate".into(),
                    target: cand.node.clone(),
                    rationale: format!(
                        "Traffic through {} is impaired with no recorded change; its rules and health need a network engineer",
                        cand.node
                    ),
                    risk: "none: no change is made".into(),
                });
            }
            _ => {}
        }
        for node in saturated {
            out.push(Remediation {
                action: "rollout_restart".into(),
                target: node.clone(),
                rationale: format!(
                    "Pools or queues of {node} saturated during the incident; restart it if they have not drained once the cause is removed"
                ),
                risk: "medium: brief capacity loss while instances restart".into(),
            });
        }
        Ok(out)
    }

    fn llm_calls(&self) -> Vec<LlmCall> {
        Vec::new()
    }
}
