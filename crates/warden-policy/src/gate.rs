//! The gate: policies loaded and validated once, then one Cedar evaluation
//! per question. Every failure to build or evaluate a request denies (fail
//! closed) with the error as the reason.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Entities, EntityUid, PolicyId, PolicySet, Request, Schema, ValidationMode,
    Validator,
};
use chrono::Utc;
use serde_json::{Value, json};
use warden_core::{ActionKind, Phases, TrustPhase};

use crate::request::{
    ActionRequest, Decision, DecisionRecord, GateRequest, NamespacesPolicy, ReadRequest,
};
use crate::{PolicyError, PolicySource, SCHEMA, SHIPPED_POLICIES};

/// The three questions asked of an action, in order; the first permitted
/// one decides.
const ACT_QUESTIONS: [&str; 3] = ["execute", "propose", "escalate"];

/// Decides reads and actions. Cheap to share (`Arc<ActionGate>`); every
/// method takes `&self`.
#[derive(Debug)]
pub struct ActionGate {
    schema: Schema,
    policies: PolicySet,
    /// Policy id → the file (or inline entry) it came from.
    origins: BTreeMap<String, String>,
    /// Policy id → its `@reason` annotation.
    reasons: BTreeMap<String, String>,
    phases: Phases,
    protected: BTreeSet<String>,
    targets: BTreeSet<String>,
}

fn normalise_ns(ns: &str) -> String {
    ns.trim().to_ascii_lowercase()
}

/// Kubernetes kinds and resource names in one spelling: `Secret`,
/// `secrets` and ` SECRETS ` are all `secret`.
fn normalise_resource_kind(kind: &str) -> String {
    let k = kind.trim().to_ascii_lowercase();
    match k.strip_suffix('s') {
        Some(stem) if !stem.is_empty() && !k.ends_with("ss") => stem.to_string(),
        _ => k,
    }
}

/// A value in 0..=1 as a Cedar decimal with four places; `up` rounds up
/// (thresholds), otherwise down (confidences), so rounding never lets an
/// action through that the exact numbers would not.
fn decimal(value: f64, up: bool) -> Value {
    let v = if value.is_nan() {
        0.0
    } else {
        value.clamp(0.0, 1.0)
    };
    // Round to 1e-6 first so 0.29 (0.28999999...) is not floored to 0.2899.
    let scaled = (v * 1e6).round() / 100.0;
    let bp = if up { scaled.ceil() } else { scaled.floor() } as i64;
    json!({"__extn": {"fn": "decimal", "arg": format!("{}.{:04}", bp / 10_000, bp % 10_000)}})
}

fn uid(ty: &str, id: &str) -> Value {
    json!({"__entity": {"type": ty, "id": id}})
}

fn entity_uid(ty: &str, id: &str) -> Result<EntityUid, String> {
    EntityUid::from_json(json!({"type": ty, "id": id})).map_err(|e| e.to_string())
}

impl ActionGate {
    /// Loads the schema, the shipped policies and `extra` (from
    /// configuration), and validates every policy strictly against the
    /// schema. Errors name the policy and its origin.
    pub fn new(
        phases: &Phases,
        namespaces: &NamespacesPolicy,
        extra: &[PolicySource],
    ) -> Result<ActionGate, PolicyError> {
        for (phase, caps) in phases.iter() {
            let t = caps.confidence_threshold;
            if !(0.0..=1.0).contains(&t) {
                return Err(PolicyError::Config(format!(
                    "phases.{phase}.confidence_threshold {t} is outside 0..=1"
                )));
            }
        }
        let (schema, _warnings) =
            Schema::from_cedarschema_str(SCHEMA).map_err(|e| PolicyError::Schema(e.to_string()))?;
        let shipped = SHIPPED_POLICIES
            .iter()
            .map(|(name, text)| PolicySource::new(format!("shipped:{name}"), *text));
        let mut policies = PolicySet::new();
        let mut origins = BTreeMap::new();
        let mut reasons = BTreeMap::new();
        for source in shipped.chain(extra.iter().cloned()) {
            let parsed = PolicySet::from_str(&source.text).map_err(|e| PolicyError::Parse {
                origin: source.origin.clone(),
                message: parse_message(&e),
            })?;
            if let Some(t) = parsed.templates().next() {
                return Err(PolicyError::Template {
                    origin: source.origin.clone(),
                    policy: t.annotation("id").unwrap_or(t.id().as_ref()).to_string(),
                });
            }
            for (n, policy) in parsed.policies().enumerate() {
                let id = policy
                    .annotation("id")
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{}#{n}", source.origin));
                if let Some(other) = origins.get(&id) {
                    return Err(PolicyError::DuplicateId {
                        origin: source.origin.clone(),
                        policy: id,
                        other: String::clone(other),
                    });
                }
                let renamed = policy.new_id(PolicyId::new(&id));
                if let Some(r) = renamed.annotation("reason") {
                    reasons.insert(id.clone(), r.to_string());
                }
                policies
                    .add(renamed)
                    .map_err(|e| PolicyError::DuplicateId {
                        origin: source.origin.clone(),
                        policy: id.clone(),
                        other: e.to_string(),
                    })?;
                origins.insert(id, source.origin.clone());
            }
        }
        let result = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
        let mut by_policy: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for e in result.validation_errors() {
            by_policy
                .entry(e.policy_id().to_string())
                .or_default()
                .push(e.to_string());
        }
        if let Some((policy, messages)) = by_policy.into_iter().next() {
            return Err(PolicyError::Invalid {
                origin: origins.get(&policy).cloned().unwrap_or_default(),
                policy,
                message: messages.join("; "),
            });
        }
        Ok(ActionGate {
            schema,
            policies,
            origins,
            reasons,
            phases: phases.clone(),
            protected: namespaces
                .protected
                .iter()
                .map(|n| normalise_ns(n))
                .collect(),
            targets: namespaces.targets.iter().map(|n| normalise_ns(n)).collect(),
        })
    }

    /// Ids of every loaded policy with its origin.
    pub fn policies(&self) -> impl Iterator<Item = (&str, &str)> {
        self.origins.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Decides one data read: Allowed or Denied.
    pub fn decide_read(&self, req: &ReadRequest) -> DecisionRecord {
        let (decision, policies, reasons) = match self.eval_read(req) {
            Ok(v) => v,
            Err(e) => fail_closed(e),
        };
        DecisionRecord {
            ts: Utc::now(),
            request: GateRequest::Read(req.clone()),
            decision,
            policies,
            reasons,
        }
    }

    /// Decides one action: Allowed, NeedsApproval, Escalated or Denied.
    pub fn decide_action(&self, req: &ActionRequest) -> DecisionRecord {
        let (decision, policies, reasons) = match self.eval_action(req) {
            Ok(v) => v,
            Err(e) => fail_closed(e),
        };
        DecisionRecord {
            ts: Utc::now(),
            request: GateRequest::Action(req.clone()),
            decision,
            policies,
            reasons,
        }
    }

    fn phase_entities(&self) -> Vec<Value> {
        let autonomous_escalation: Vec<&str> = self
            .phases
            .remediate
            .actions
            .iter()
            .map(|a| a.as_str())
            .collect();
        self.phases
            .iter()
            .map(|(phase, caps)| {
                let escalation = if phase == TrustPhase::Autonomous {
                    autonomous_escalation.clone()
                } else {
                    Vec::new()
                };
                json!({
                    "uid": {"type": "Phase", "id": phase.as_str()},
                    "attrs": {
                        "name": phase.as_str(),
                        "actions": caps.actions.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
                        "escalation_actions": escalation,
                        "readable_domains": caps.readable_domains,
                        "approval_required": caps.approval_required,
                        "confidence_threshold": decimal(caps.confidence_threshold, true),
                    },
                    "parents": []
                })
            })
            .collect()
    }

    fn agent_entity(&self, investigation: &str, phase: TrustPhase, env: &str, conf: f64) -> Value {
        json!({
            "uid": {"type": "Agent", "id": investigation},
            "attrs": {
                "investigation": investigation,
                "phase": uid("Phase", phase.as_str()),
                "environment": env,
                "confidence": decimal(conf, false),
            },
            "parents": [{"type": "Phase", "id": phase.as_str()}]
        })
    }

    fn namespace_entity(&self, ns: &str) -> Value {
        json!({
            "uid": {"type": "Namespace", "id": ns},
            "attrs": {
                "name": ns,
                "protected": self.protected.contains(ns),
                "target": self.targets.contains(ns),
            },
            "parents": []
        })
    }

    fn authorize(
        &self,
        principal: &EntityUid,
        action: &str,
        resource: &EntityUid,
        context: Value,
        entities: &Entities,
    ) -> Result<(bool, Vec<String>), String> {
        let action = entity_uid("Action", action)?;
        let context = Context::from_json_value(context, Some((&self.schema, &action)))
            .map_err(|e| format!("context: {e}"))?;
        let request = Request::new(
            principal.clone(),
            action,
            resource.clone(),
            context,
            Some(&self.schema),
        )
        .map_err(|e| format!("request: {e}"))?;
        let response = Authorizer::new().is_authorized(&request, &self.policies, entities);
        let errors: Vec<String> = response
            .diagnostics()
            .errors()
            .map(|e| e.to_string())
            .collect();
        if !errors.is_empty() {
            // A policy that fails to evaluate is skipped by Cedar; for a
            // forbid that would fail open, so any error denies.
            return Err(format!("policy evaluation failed: {}", errors.join("; ")));
        }
        let ids = response
            .diagnostics()
            .reason()
            .map(|p| p.to_string())
            .collect();
        Ok((response.decision() == cedar_policy::Decision::Allow, ids))
    }

    /// The `@reason` of each policy, with `<phase>` filled in.
    fn reasons_of(&self, ids: &[String], phase: TrustPhase) -> Vec<String> {
        ids.iter()
            .map(|id| {
                self.reasons
                    .get(id)
                    .map(|r| format!("{} [{id}]", r.replace("<phase>", phase.as_str())))
                    .unwrap_or_else(|| format!("policy {id}"))
            })
            .collect()
    }

    fn eval_read(&self, req: &ReadRequest) -> Result<(Decision, Vec<String>, Vec<String>), String> {
        let ns = req.namespace.as_deref().map(normalise_ns);
        let mut entities = self.phase_entities();
        entities.push(self.agent_entity(&req.investigation, req.phase, &req.environment, 0.0));
        entities.push(json!({
            "uid": {"type": "Domain", "id": req.domain},
            "attrs": {"name": req.domain},
            "parents": []
        }));
        let mut context = json!({
            "connector": req.connector,
            "query_kind": req.query_kind.trim().to_ascii_lowercase(),
            "resource_kind": req.resource_kind.as_deref().map(normalise_resource_kind).unwrap_or_default(),
        });
        if let (Some(ns), Value::Object(map)) = (&ns, &mut context) {
            entities.push(self.namespace_entity(ns));
            map.insert("namespace".into(), uid("Namespace", ns));
        }
        let entities = Entities::from_json_value(Value::Array(entities), Some(&self.schema))
            .map_err(|e| format!("entities: {e}"))?;
        let principal = entity_uid("Agent", &req.investigation)?;
        let resource = entity_uid("Domain", &req.domain)?;
        let (allowed, mut ids) =
            self.authorize(&principal, "read", &resource, context, &entities)?;
        ids.sort();
        if allowed {
            let reasons = self.reasons_of(&ids, req.phase);
            return Ok((Decision::Allowed, ids, reasons));
        }
        let mut reasons = self.reasons_of(&ids, req.phase);
        if ids.is_empty() {
            let caps = self.phases.get(req.phase);
            if !caps.readable_domains.contains(&req.domain) {
                reasons.push(format!(
                    "domain {:?} is not readable in {} (phases.{}.readable_domains)",
                    req.domain, req.phase, req.phase
                ));
            }
            if let Some(ns) = ns.as_ref().filter(|n| !self.targets.contains(*n)) {
                reasons.push(format!(
                    "namespace {ns:?} is not a target namespace (namespaces.targets)"
                ));
            }
            reasons.push("no policy permits this read (deny by default)".into());
        }
        Ok((
            Decision::Denied {
                reasons: reasons.clone(),
            },
            ids,
            reasons,
        ))
    }

    fn eval_action(
        &self,
        req: &ActionRequest,
    ) -> Result<(Decision, Vec<String>, Vec<String>), String> {
        let a = &req.action;
        let ns = normalise_ns(&a.namespace);
        let kind = crate::request::normalise_kind(&a.kind);
        let known = kind.parse::<ActionKind>().is_ok();
        let workload_id = format!("{ns}/{}/{}", a.target_kind, a.target);
        let mut entities = self.phase_entities();
        entities.push(self.agent_entity(
            &req.investigation,
            req.phase,
            &req.environment,
            req.confidence,
        ));
        entities.push(self.namespace_entity(&ns));
        entities.push(json!({
            "uid": {"type": "Workload", "id": workload_id},
            "attrs": {
                "kind": a.target_kind,
                "name": a.target,
                "namespace": uid("Namespace", &ns),
            },
            "parents": [{"type": "Namespace", "id": ns}]
        }));
        let mut context = json!({
            "kind": kind,
            "known_kind": known,
            "requested_by": req.requested_by,
        });
        if let (Some(r), Value::Object(map)) = (a.replicas, &mut context) {
            map.insert("replicas".into(), json!(r));
        }
        let entities = Entities::from_json_value(Value::Array(entities), Some(&self.schema))
            .map_err(|e| format!("entities: {e}"))?;
        let principal = entity_uid("Agent", &req.investigation)?;
        let resource = entity_uid("Workload", &workload_id)?;

        let mut forbids: Vec<String> = Vec::new();
        for question in ACT_QUESTIONS {
            let (allowed, mut ids) =
                self.authorize(&principal, question, &resource, context.clone(), &entities)?;
            ids.sort();
            if allowed {
                let mut reasons = self.reasons_of(&ids, req.phase);
                let decision = match question {
                    "execute" => Decision::Allowed,
                    "propose" => Decision::NeedsApproval,
                    _ => {
                        let why = self.escalation_reason(req, &kind);
                        reasons.insert(0, why.clone());
                        Decision::Escalated { reason: why }
                    }
                };
                return Ok((decision, ids, reasons));
            }
            for id in ids {
                if !forbids.contains(&id) {
                    forbids.push(id);
                }
            }
        }
        forbids.sort();
        let mut reasons = self.reasons_of(&forbids, req.phase);
        let caps = self.phases.get(req.phase);
        if caps.actions.is_empty() {
            reasons.push(format!(
                "{} is read-only: the proposal stays in the report for the on-call and is never executed",
                req.phase
            ));
        }
        if forbids.is_empty() {
            if !self.targets.contains(&ns) {
                reasons.push(format!(
                    "namespace {ns:?} is not a target namespace (namespaces.targets)"
                ));
            }
            reasons.push(format!(
                "no policy permits {kind} in {} (deny by default)",
                req.phase
            ));
        }
        Ok((
            Decision::Denied {
                reasons: reasons.clone(),
            },
            forbids,
            reasons,
        ))
    }

    /// Why an action a policy lets escalate did not run on its own.
    fn escalation_reason(&self, req: &ActionRequest, kind: &str) -> String {
        let caps = self.phases.get(req.phase);
        let why = if caps.approval_required {
            format!("{} is configured to require approval", req.phase)
        } else if !caps.actions.iter().any(|a| a.as_str() == kind) {
            format!(
                "{kind} is not allow-listed for {} execution (phases.{}.actions)",
                req.phase, req.phase
            )
        } else if req.confidence.is_nan() || req.confidence < caps.confidence_threshold {
            format!(
                "confidence {:.2} is below the {} threshold {:.2}",
                if req.confidence.is_nan() {
                    0.0
                } else {
                    req.confidence
                },
                req.phase,
                caps.confidence_threshold
            )
        } else {
            "a configured policy denies running it without a person".to_string()
        };
        format!("{why}: handed to a person with the findings so far")
    }
}

fn fail_closed(error: String) -> (Decision, Vec<String>, Vec<String>) {
    let reasons = vec![format!("gate error, denied: {error}")];
    (
        Decision::Denied {
            reasons: reasons.clone(),
        },
        Vec::new(),
        reasons,
    )
}

/// Every parse error, not just the first, with the text it is about.
fn parse_message(e: &cedar_policy::ParseErrors) -> String {
    e.iter()
        .map(|err| err.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}
