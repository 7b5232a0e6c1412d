//! Choosing the reasoner, and falling back when the LLM fails.
//!
//! The input's `llm` settings select the LLM reasoner; without them the
//! built-in one runs. The API key is the granted secret of the settings'
//! `api_key_domain`, read through the secrets broker like any domain
//! secret; without one the requests carry no `Authorization` (a local
//! server may need none) and the log says so.
//!
//! When the LLM reasoner fails before reaching a conclusion because its
//! server failed (unreachable, refusing, timing out, answering nonsense
//! beyond the retries), the investigation is run again by the built-in
//! reasoner, which needs no network: a responder gets the offline diagnosis
//! rather than nothing. The report says so in its summary and reasoner
//! name, and keeps the failed LLM calls in its cost ledger. An exhausted
//! token or cost budget is not a failure: the loop stops and escalates with
//! the findings so far, as the depth budget does.

use std::time::Instant;

use async_trait::async_trait;
use chrono::Utc;
use serde_json::json;
use warden_core::ports::{
    Assessment, DataSource, Focus, Observation, PlannedQuery, ProposedHypothesis, Reasoner,
    ReasonerError, ReasoningContext,
};
use warden_core::report::{LlmCall, Remediation, Report, RootCause};
use warden_core::{AgentInput, LlmSettings};
use warden_llm::LlmReasoner;

use crate::briefing::EngineBriefing;
use crate::builtin::BuiltinReasoner;
use crate::events::EventLog;
use crate::investigate::{delivery_reserve, investigate};
use crate::secrets::DomainSecrets;

/// Runs the investigation with the reasoner `input` asks for.
pub async fn reason(
    input: &AgentInput,
    sources: &[Box<dyn DataSource>],
    secrets: &DomainSecrets,
    events: &mut EventLog,
) -> Report {
    match &input.llm {
        None => {
            let mut reasoner = BuiltinReasoner::default();
            investigate(input, sources, &mut reasoner, events).await
        }
        Some(settings) => investigate_with_llm(input, sources, settings, secrets, events).await,
    }
}

/// The LLM reasoner with the built-in fallback; see the module docs.
pub async fn investigate_with_llm(
    input: &AgentInput,
    sources: &[Box<dyn DataSource>],
    settings: &LlmSettings,
    secrets: &DomainSecrets,
    events: &mut EventLog,
) -> Report {
    let key = secrets.get(&settings.api_key_domain).cloned();
    if key.is_none() {
        events.warn(
            "llm_api_key_missing",
            json!({"domain": settings.api_key_domain, "effect": "requests carry no Authorization header"}),
        );
    }
    let now = Utc::now();
    let stop_at = input.deadline - delivery_reserve(now, input.deadline);
    let deadline = Instant::now() + (stop_at - now).to_std().unwrap_or_default();
    let reasoner = LlmReasoner::new(
        settings.clone(),
        key,
        input.plan.profile.cost_budget_usd,
        deadline,
        Box::new(EngineBriefing::default()),
    );
    let mut reasoner = match reasoner {
        Ok(r) => r,
        Err(e) => {
            let why = format!("the LLM reasoner could not start: {e}");
            events.error("llm_unavailable", json!({"error": why}));
            return fall_back(input, sources, events, &why, Vec::new(), None).await;
        }
    };
    events.info(
        "llm_reasoner",
        json!({"model": settings.model, "base_url": settings.base_url, "max_input_tokens": settings.max_input_tokens}),
    );
    let mut watched = Watched {
        inner: &mut reasoner,
        failure: None,
    };
    let report = investigate(input, sources, &mut watched, events).await;
    let failure = watched.failure.take();
    for note in reasoner.notes() {
        events.warn("llm_note", json!({"note": note}));
    }
    match failure {
        Some(why) if report.root_cause.is_none() => {
            events.error("llm_failed", json!({"error": why}));
            let name = reasoner.name().to_string();
            fall_back(
                input,
                sources,
                events,
                &why,
                reasoner.llm_calls(),
                Some((name, &report)),
            )
            .await
        }
        _ => report,
    }
}

/// The built-in reasoner's investigation, marked as a fallback and carrying
/// the LLM's calls.
async fn fall_back(
    input: &AgentInput,
    sources: &[Box<dyn DataSource>],
    events: &mut EventLog,
    why: &str,
    llm_calls: Vec<LlmCall>,
    failed: Option<(String, &Report)>,
) -> Report {
    events.warn(
        "reasoner_fallback",
        json!({"to": "builtin", "because": why}),
    );
    let mut builtin = BuiltinReasoner::default();
    let mut report = investigate(input, sources, &mut builtin, events).await;
    let from = failed
        .as_ref()
        .map_or_else(|| "llm".to_string(), |(name, _)| name.clone());
    report.reasoner = format!("builtin (fallback from {from})");
    report.summary = format!(
        "The LLM reasoner failed ({why}); this is the built-in reasoner's diagnosis. {}",
        report.summary
    );
    let cost = &mut report.cost;
    cost.llm_input_tokens = llm_calls.iter().map(|c| c.input_tokens).sum();
    cost.llm_output_tokens = llm_calls.iter().map(|c| c.output_tokens).sum();
    cost.llm_cost_usd = llm_calls.iter().map(|c| c.cost_usd).sum();
    cost.llm_calls = llm_calls;
    if let Some((_, first)) = failed {
        cost.data_queries += first.cost.data_queries;
        cost.wall_seconds += first.cost.wall_seconds;
    }
    report
}

/// Passes every step through, remembering a backend failure.
struct Watched<'a> {
    inner: &'a mut LlmReasoner,
    failure: Option<String>,
}

impl Watched<'_> {
    fn watch<T>(&mut self, r: Result<T, ReasonerError>) -> Result<T, ReasonerError> {
        if let Err(e @ ReasonerError::Backend { .. }) = &r {
            self.failure.get_or_insert_with(|| e.to_string());
        }
        r
    }
}

#[async_trait]
impl Reasoner for Watched<'_> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn survey(&mut self, ctx: &ReasoningContext) -> Result<Vec<PlannedQuery>, ReasonerError> {
        let r = self.inner.survey(ctx).await;
        self.watch(r)
    }

    async fn hypothesize(
        &mut self,
        ctx: &ReasoningContext,
        survey: &[Observation],
    ) -> Result<Vec<ProposedHypothesis>, ReasonerError> {
        let r = self.inner.hypothesize(ctx, survey).await;
        self.watch(r)
    }

    async fn plan(
        &mut self,
        ctx: &ReasoningContext,
        focus: &Focus,
    ) -> Result<Vec<PlannedQuery>, ReasonerError> {
        let r = self.inner.plan(ctx, focus).await;
        self.watch(r)
    }

    async fn evaluate(
        &mut self,
        ctx: &ReasoningContext,
        focus: &Focus,
        observations: &[Observation],
    ) -> Result<Assessment, ReasonerError> {
        let r = self.inner.evaluate(ctx, focus, observations).await;
        self.watch(r)
    }

    async fn remediate(
        &mut self,
        ctx: &ReasoningContext,
        root: &RootCause,
    ) -> Result<Vec<Remediation>, ReasonerError> {
        let r = self.inner.remediate(ctx, root).await;
        self.watch(r)
    }

    fn llm_calls(&self) -> Vec<LlmCall> {
        self.inner.llm_calls()
    }
}
