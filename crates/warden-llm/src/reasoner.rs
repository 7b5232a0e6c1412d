//! The LLM reasoner: the Reasoner port as rounds of a chat-completions
//! conversation.
//!
//! | port step     | what is sent                                   | what comes back            |
//! |---------------|------------------------------------------------|----------------------------|
//! | `survey`      | nothing (no model call, see below)             | the broad survey queries   |
//! | `hypothesize` | incident + the engines' picture of the survey  | hypotheses (JSON)          |
//! | `plan`        | the hypothesis, the tree, evidence so far; tools | tool calls → queries     |
//! | `evaluate`    | the hypothesis + summaries of its observations | an assessment (JSON)       |
//! | `remediate`   | the root cause and its evidence                | proposals (JSON)           |
//!
//! The survey asks for the whole window of every kind of data, always:
//! the evidence engines need all of it to rank anything, so a model call to
//! choose it would spend tokens on no decision. Each later round is a fresh
//! request carrying the state it needs, not a growing transcript: the input
//! per call stays flat instead of growing with the investigation. Tool
//! calls from `plan` are the queries the loop runs; their answers come back
//! to `evaluate` as summaries, cited by index.
//!
//! Summaries, not raw data: observations are turned into what the engines
//! say about them by a [`Briefing`] (the agent supplies one built on its
//! engines), and all of it travels in the delimited data block of
//! [`crate::prompt`].
//!
//! Failure handling: a model answer that cannot be read costs one retry
//! with the reason; after that `evaluate` keeps the hypothesis open (the
//! round ends), `plan` runs no queries, `remediate` proposes nothing, and
//! `hypothesize` fails. A server that cannot be reached fails the step with
//! [`ReasonerError::Backend`]; a call the budget does not allow is not made
//! and fails with [`ReasonerError::BudgetExhausted`]. Every call, made or
//! refused, is an [`LlmCall`] in the ledger.

use std::collections::BTreeMap;
use std::time::Instant;

use async_trait::async_trait;
use secrecy::SecretString;
use serde_json::{Value, json};
use warden_core::ports::{
    Assessment, Focus, Observation, PlannedQuery, ProposedHypothesis, Query, Reasoner,
    ReasonerError, ReasoningContext, broad_survey,
};
use warden_core::report::{HypothesisStatus, LlmCall, Remediation, RootCause};
use warden_core::{Domain, LlmSettings};

use crate::answer;
use crate::budget::{Budget, Price, estimate_tokens};
use crate::client::{ChatClient, ChatRequest, Completion, LlmError, Message, RetryPolicy};
use crate::prompt;
use crate::tools;

/// Turns observations into the summaries a prompt carries.
pub trait Briefing: Send {
    /// What the engines make of the survey: anomaly ranks, new and bursting
    /// templates, changes, impaired paths, ranked candidates.
    fn survey(&mut self, ctx: &ReasoningContext, survey: &[Observation]) -> SurveyBrief;
    /// One observation, summarised; never raw log lines.
    fn observation(&mut self, ctx: &ReasoningContext, observation: &Observation) -> Value;
}

/// The survey as the prompts carry it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SurveyBrief {
    /// For `hypothesize`.
    pub full: Value,
    /// A few lines of it for later steps (the ranked candidates).
    pub headline: Value,
}

/// Why an [`LlmReasoner`] cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The model has no price, so its cost could not be budgeted.
    #[error("model {0:?} has no entry in the llm price table")]
    Unpriced(String),
    #[error(transparent)]
    Client(#[from] LlmError),
}

/// Queries one `plan` round may ask for.
const MAX_TOOL_CALLS: usize = 8;
/// Evidence items a prompt recalls.
const MAX_EVIDENCE: usize = 12;
/// Alert groups a prompt lists.
const MAX_ALERT_GROUPS: usize = 15;
/// Log lines the survey reads; the engines summarise them.
const SURVEY_LOG_LIMIT: usize = 200_000;

/// The LLM reasoner; see the module docs.
pub struct LlmReasoner {
    name: String,
    settings: LlmSettings,
    client: ChatClient,
    budget: Budget,
    deadline: Instant,
    briefing: Box<dyn Briefing>,
    nonce: String,
    survey: Option<SurveyBrief>,
    hypothesized: bool,
    /// Things the reasoner skipped or fell back on, for the job's log.
    notes: Vec<String>,
}

impl std::fmt::Debug for LlmReasoner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmReasoner")
            .field("name", &self.name)
            .field("settings", &self.settings)
            .field("client", &self.client)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl LlmReasoner {
    /// `cost_budget_usd` is the plan's; `deadline` is when reasoning must
    /// stop (retries never wait past it).
    pub fn new(
        settings: LlmSettings,
        api_key: Option<SecretString>,
        cost_budget_usd: f64,
        deadline: Instant,
        briefing: Box<dyn Briefing>,
    ) -> Result<Self, SetupError> {
        let price = settings
            .price_of(&settings.model)
            .map(Price::of)
            .ok_or_else(|| SetupError::Unpriced(settings.model.clone()))?;
        let policy = RetryPolicy {
            request_timeout: std::time::Duration::from_secs(settings.request_timeout_seconds),
            max_retries: settings.max_retries,
            ..RetryPolicy::default()
        };
        Self::with_policy(
            settings,
            api_key,
            cost_budget_usd,
            deadline,
            briefing,
            policy,
            price,
        )
    }

    /// [`LlmReasoner::new`] with its retry timing supplied.
    pub fn with_policy(
        settings: LlmSettings,
        api_key: Option<SecretString>,
        cost_budget_usd: f64,
        deadline: Instant,
        briefing: Box<dyn Briefing>,
        policy: RetryPolicy,
        price: Price,
    ) -> Result<Self, SetupError> {
        let client = ChatClient::new(&settings.base_url, api_key, policy)?;
        let budget = Budget::new(
            &settings.model,
            price,
            settings.max_input_tokens,
            cost_budget_usd,
        );
        Ok(LlmReasoner {
            name: format!("llm:{}", settings.model),
            settings,
            client,
            budget,
            deadline,
            briefing,
            nonce: prompt::nonce(),
            survey: None,
            hypothesized: false,
            notes: Vec::new(),
        })
    }

    /// What the reasoner skipped or fell back on so far.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Input tokens sent so far (reported or estimated).
    pub fn input_tokens(&self) -> u64 {
        self.budget.input_tokens()
    }

    fn note(&mut self, text: String) {
        self.notes.push(text);
    }

    /// One model call, checked against the budget and recorded.
    async fn call(
        &mut self,
        step: &str,
        messages: Vec<Message>,
        with_tools: Option<Vec<Value>>,
    ) -> Result<Completion, ReasonerError> {
        let tool_choice = with_tools.as_ref().map(|_| "auto".to_string());
        let request = ChatRequest {
            model: self.settings.model.clone(),
            messages,
            tools: with_tools.unwrap_or_default(),
            tool_choice,
            max_tokens: self.settings.max_output_tokens,
            temperature: 0.0,
        };
        let estimate = estimate_tokens(request.body().len());
        if let Some(why) = self
            .budget
            .refusal(estimate, self.settings.max_output_tokens)
        {
            self.budget.record(0, 0, 0, "budget");
            return Err(ReasonerError::BudgetExhausted {
                reasoner: self.name.clone(),
                detail: format!("{step}: {why}"),
            });
        }
        let exchange = self.client.complete(&request, self.deadline).await;
        for a in &exchange.attempts {
            let latency = u64::try_from(a.latency.as_millis()).unwrap_or(u64::MAX);
            self.budget
                .record(a.input_tokens, a.output_tokens, latency, a.outcome.as_str());
            if let Some(detail) = &a.detail {
                self.notes.push(format!("{step}: attempt failed: {detail}"));
            }
        }
        exchange.result.map_err(|e| ReasonerError::Backend {
            reasoner: self.name.clone(),
            detail: format!("{step}: {e}"),
        })
    }

    /// A call whose answer is a JSON object read by `parse`; an unreadable
    /// answer is asked for once more. `Ok(Err(why))` when it stays
    /// unreadable.
    async fn structured<T>(
        &mut self,
        step: &str,
        instruction: &str,
        data: &Value,
        parse: &(dyn Fn(&Value) -> Result<T, String> + Sync),
    ) -> Result<Result<T, String>, ReasonerError> {
        let mut messages = vec![
            Message::system(prompt::system(&self.nonce)),
            Message::user(prompt::user(&self.nonce, step, instruction, data)),
        ];
        let mut why = String::new();
        for attempt in 0..2 {
            let completion = self.call(step, messages.clone(), None).await?;
            let content = completion.content.unwrap_or_default();
            let parsed = answer::extract_json(&content)
                .ok_or_else(|| "no JSON object in the reply".to_string())
                .and_then(|v| parse(&v));
            match parsed {
                Ok(t) => return Ok(Ok(t)),
                Err(e) => {
                    why = e;
                    self.note(format!("{step}: unreadable answer ({why})"));
                    if attempt == 0 {
                        messages.push(Message {
                            role: "assistant".into(),
                            content: Some(content.chars().take(2000).collect()),
                            tool_calls: Vec::new(),
                            tool_call_id: None,
                        });
                        messages.push(Message::user(prompt::unreadable(&why)));
                    }
                }
            }
        }
        Ok(Err(why))
    }

    fn headline(&self) -> Value {
        self.survey
            .as_ref()
            .map(|s| s.headline.clone())
            .unwrap_or(Value::Null)
    }
}

/// The hypothesis tree, compactly.
fn tree(ctx: &ReasoningContext) -> Value {
    Value::Array(
        ctx.hypotheses
            .iter()
            .map(|h| {
                json!({
                    "id": h.id,
                    "parent": h.parent,
                    "statement": h.statement,
                    "subject": h.subject,
                    "status": h.status,
                    "score": round2(h.score),
                })
            })
            .collect(),
    )
}

/// The latest evidence, compactly.
fn evidence(ctx: &ReasoningContext, only: Option<&[String]>) -> Value {
    let items: Vec<Value> = ctx
        .evidence
        .iter()
        .filter(|e| only.is_none_or(|ids| ids.contains(&e.id)))
        .rev()
        .take(MAX_EVIDENCE)
        .map(|e| json!({"id": e.id, "domain": e.domain, "summary": e.summary}))
        .collect();
    Value::Array(items.into_iter().rev().collect())
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The incident's alerts grouped by name: a storm of hundreds becomes a
/// few lines.
fn incident(ctx: &ReasoningContext) -> Value {
    let mut groups: BTreeMap<String, (usize, std::collections::BTreeSet<String>, String)> =
        BTreeMap::new();
    for a in &ctx.incident.alerts {
        let name = a
            .labels
            .get("alertname")
            .cloned()
            .unwrap_or_else(|| "unnamed".to_string());
        let g = groups.entry(name).or_default();
        g.0 += 1;
        if let Some(s) = a
            .labels
            .get("service")
            .or_else(|| a.labels.get("instance"))
            .or_else(|| a.labels.get("device"))
        {
            g.1.insert(s.clone());
        }
        if let Some(sev) = a.labels.get("severity") {
            g.2 = sev.clone();
        }
    }
    let mut groups: Vec<_> = groups.into_iter().collect();
    groups.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(&b.0)));
    let listed: Vec<Value> = groups
        .iter()
        .take(MAX_ALERT_GROUPS)
        .map(|(name, (count, on, severity))| {
            let on: Vec<&String> = on.iter().take(8).collect();
            json!({"alert": name, "count": count, "on": on, "severity": severity})
        })
        .collect();
    json!({
        "title": ctx.incident.title,
        "first_event_at": ctx.incident.first_event_at,
        "last_event_at": ctx.incident.last_event_at,
        "alerts": ctx.incident.alerts.len(),
        "alert_groups": listed,
        "more_groups": groups.len().saturating_sub(MAX_ALERT_GROUPS),
    })
}

/// The domain a finding on `query` is about when the model names none.
fn domain_of(query: Option<&Query>) -> Domain {
    Domain::new(match query {
        Some(Query::Flows { .. }) => "network",
        Some(Query::SecurityEvents { .. }) => "security",
        _ => "application",
    })
}

#[async_trait]
impl Reasoner for LlmReasoner {
    fn name(&self) -> &str {
        &self.name
    }

    async fn survey(&mut self, ctx: &ReasoningContext) -> Result<Vec<PlannedQuery>, ReasonerError> {
        Ok(broad_survey(ctx.window, SURVEY_LOG_LIMIT))
    }

    async fn hypothesize(
        &mut self,
        ctx: &ReasoningContext,
        survey: &[Observation],
    ) -> Result<Vec<ProposedHypothesis>, ReasonerError> {
        if self.survey.is_none() {
            let brief = self.briefing.survey(ctx, survey);
            self.survey = Some(brief);
        }
        let again = self.hypothesized;
        self.hypothesized = true;
        let errors: Vec<Value> = survey
            .iter()
            .filter_map(|o| {
                o.error
                    .as_ref()
                    .map(|e| json!({"source": o.source, "purpose": o.purpose, "error": e}))
            })
            .collect();
        let data = if again {
            json!({
                "candidates": self.headline(),
                "tree": tree(ctx),
                "evidence": evidence(ctx, None),
            })
        } else {
            json!({
                "incident": incident(ctx),
                "window": ctx.window,
                "engines": self.survey.as_ref().map(|s| s.full.clone()),
                "unavailable": errors,
            })
        };
        let instruction = if again {
            prompt::HYPOTHESIZE_AGAIN
        } else {
            prompt::HYPOTHESIZE
        };
        let parse = |v: &Value| answer::hypotheses(v, "hypotheses");
        match self
            .structured("hypothesize", instruction, &data, &parse)
            .await?
        {
            Ok(h) => Ok(h),
            Err(why) => Err(ReasonerError::Backend {
                reasoner: self.name.clone(),
                detail: format!("hypothesize: the model's answer could not be read: {why}"),
            }),
        }
    }

    async fn plan(
        &mut self,
        ctx: &ReasoningContext,
        focus: &Focus,
    ) -> Result<Vec<PlannedQuery>, ReasonerError> {
        let h = &focus.hypothesis;
        let data = json!({
            "hypothesis": {"id": h.id, "parent": h.parent, "statement": h.statement, "subject": h.subject, "score": round2(h.score)},
            "cycle": ctx.cycle,
            "depth_budget": ctx.depth_budget,
            "window": ctx.window,
            "candidates": self.headline(),
            "tree": tree(ctx),
            "evidence": evidence(ctx, None),
        });
        let mut messages = vec![
            Message::system(prompt::system(&self.nonce)),
            Message::user(prompt::user(
                &self.nonce,
                "plan",
                &prompt::plan(&h.id, MAX_TOOL_CALLS),
                &data,
            )),
        ];
        let definitions = tools::definitions(&ctx.sources);
        for attempt in 0..2 {
            let completion = self
                .call("plan", messages.clone(), Some(definitions.clone()))
                .await?;
            if completion.tool_calls.is_empty() {
                return Ok(Vec::new());
            }
            let mut queries = Vec::new();
            let mut errors = Vec::new();
            for call in completion.tool_calls.iter().take(MAX_TOOL_CALLS) {
                match tools::planned_query(call, &ctx.sources, ctx.window) {
                    Ok(q) => queries.push(q),
                    Err(e) => errors.push(format!("{} ({}): {e}", call.name, call.id)),
                }
            }
            for e in &errors {
                self.note(format!("plan: tool call skipped: {e}"));
            }
            if !queries.is_empty() || attempt == 1 {
                return Ok(queries);
            }
            messages.push(Message {
                role: "assistant".into(),
                content: completion.content.clone(),
                tool_calls: completion
                    .tool_calls
                    .iter()
                    .map(|c| c.raw.clone())
                    .collect(),
                tool_call_id: None,
            });
            for call in &completion.tool_calls {
                messages.push(Message {
                    role: "tool".into(),
                    content: Some("not run: invalid arguments".into()),
                    tool_calls: Vec::new(),
                    tool_call_id: Some(call.id.clone()),
                });
            }
            messages.push(Message::user(prompt::bad_tool_calls(&errors)));
        }
        Ok(Vec::new())
    }

    async fn evaluate(
        &mut self,
        ctx: &ReasoningContext,
        focus: &Focus,
        observations: &[Observation],
    ) -> Result<Assessment, ReasonerError> {
        let h = &focus.hypothesis;
        let mut obs = Vec::new();
        for (i, o) in observations.iter().enumerate() {
            let summary = match (&o.result, &o.error) {
                (Some(_), _) => self.briefing.observation(ctx, o),
                (None, Some(e)) => json!({"unavailable": e}),
                (None, None) => Value::Null,
            };
            obs.push(json!({
                "obs": i,
                "source": o.source,
                "purpose": o.purpose,
                "query": query_line(&o.query),
                "summary": summary,
            }));
        }
        let data = json!({
            "hypothesis": {"id": h.id, "parent": h.parent, "statement": h.statement, "subject": h.subject, "score": round2(h.score)},
            "tree": tree(ctx),
            "observations": obs,
        });
        let prior = h.score;
        let queries: Vec<Query> = observations.iter().map(|o| o.query.clone()).collect();
        let parse = move |v: &Value| answer::assessment(v, prior, &|i| domain_of(queries.get(i)));
        match self
            .structured("evaluate", &prompt::evaluate(&h.id), &data, &parse)
            .await?
        {
            Ok(a) => Ok(a),
            Err(why) => {
                self.note(format!(
                    "evaluate: {} kept open, the answer could not be read: {why}",
                    h.id
                ));
                Ok(Assessment {
                    status: HypothesisStatus::Open,
                    score: prior,
                    findings: Vec::new(),
                    refinements: Vec::new(),
                    chain: Vec::new(),
                    explains_symptoms: false,
                })
            }
        }
    }

    async fn remediate(
        &mut self,
        ctx: &ReasoningContext,
        root: &RootCause,
    ) -> Result<Vec<Remediation>, ReasonerError> {
        let supporting: Vec<String> = ctx
            .hypotheses
            .iter()
            .filter(|h| h.id == root.hypothesis || h.parent.as_deref() == Some(&root.hypothesis))
            .flat_map(|h| h.supporting.iter().cloned())
            .collect();
        let data = json!({
            "root_cause": {"subject": root.subject, "statement": root.statement, "chain": root.chain},
            "evidence": evidence(ctx, Some(&supporting)),
        });
        let parse = |v: &Value| answer::remediation(v);
        match self
            .structured(
                "remediate",
                &prompt::remediate(&answer::ACTIONS),
                &data,
                &parse,
            )
            .await?
        {
            Ok(r) => Ok(r),
            Err(why) => {
                self.note(format!(
                    "remediate: nothing proposed, the answer could not be read: {why}"
                ));
                Ok(Vec::new())
            }
        }
    }

    fn llm_calls(&self) -> Vec<LlmCall> {
        self.budget.calls().to_vec()
    }
}

/// A query as one short line for a prompt (no time range: the window is
/// stated once).
fn query_line(q: &Query) -> String {
    match q {
        Query::Metrics { metric, labels, .. } => {
            let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(
                "metrics {} {{{}}}",
                metric.as_deref().unwrap_or("*"),
                labels.join(",")
            )
        }
        Query::Logs {
            service,
            min_level,
            contains,
            ..
        } => format!(
            "logs service={} level>={} contains={}",
            service.as_deref().unwrap_or("*"),
            min_level.as_deref().unwrap_or("any"),
            contains.as_deref().unwrap_or("-")
        ),
        Query::Changes { .. } => "changes".to_string(),
        Query::Flows { service, .. } => {
            format!("flows service={}", service.as_deref().unwrap_or("*"))
        }
        Query::SecurityEvents { .. } => "security_events".to_string(),
        Query::Topology => "topology".to_string(),
    }
}
