//! What the LLM reasoner does when the server misbehaves or the budget
//! runs out: malformed answers, 429 storms, 5xx, hangs, an unreachable
//! server, an unpriced model, an exhausted token or cost budget.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use warden_agent::EventLog;
use warden_agent::secrets::DomainSecrets;
use warden_llm::client::{ChatClient, ChatRequest, LlmError, Message};
use warden_llm::testing::model::{Quirks, by_the_book};
use warden_llm::testing::{Reply, ScriptedServer};
use warden_llm::{LlmReasoner, SetupError};

async fn server(quirks: Quirks) -> ScriptedServer {
    let s = ScriptedServer::start().await.unwrap();
    s.respond_with(by_the_book(quirks));
    s
}

fn outcomes(report: &warden_core::Report) -> Vec<&str> {
    report
        .cost
        .llm_calls
        .iter()
        .map(|c| c.outcome.as_str())
        .collect()
}

#[tokio::test]
async fn malformed_answers_cost_retries_and_the_investigation_still_concludes() {
    crypto();
    let demo = demo();
    let server = server(Quirks {
        bad_tool_arguments_once: true,
        ..Quirks::default()
    })
    .await;
    server.push([
        // Not JSON at all: the client retries.
        Reply::garbage(),
        // JSON without choices: retried too.
        Reply::json(json!({"id": "x", "object": "chat.completion"})),
        // A readable response with an unknown finish reason and extra
        // fields, but prose instead of the JSON asked for: one corrective
        // retry of the step.
        Reply::json(json!({
            "id": "x", "system_fingerprint": "fp", "provider_extra": {"a": [1, 2]},
            "choices": [{"index": 0, "logprobs": null, "finish_reason": "end_of_turn_maybe",
                         "message": {"role": "assistant", "content": "Let me think about the firewall.", "refusal": null}}]
        })),
    ]);
    // Room for the retries: garbled answers are billed as sent.
    let mut s = settings(&server);
    s.max_input_tokens = 60_000;
    let mut reasoner = reasoner(s, 4.0, fast_policy(Duration::from_secs(5)));
    let (report, log) = run(&demo, &mut reasoner).await;

    assert_eq!(
        report.root_cause.as_ref().map(|r| r.subject.as_str()),
        Some(demo.scenario.expected().root_cause_subject.as_str()),
        "{}",
        report.summary
    );
    let o = outcomes(&report);
    assert_eq!(&o[..4], ["error", "error", "ok", "ok"], "{o:?}");
    // The garbled 200s are billed as sent; nothing is lost in the totals.
    assert!(report.cost.llm_calls[0].input_tokens > 0);
    let requests = server.requests();
    let steps: Vec<_> = requests.iter().map(|r| r.step()).collect();
    assert_eq!(
        report.cost.llm_calls.len(),
        requests.len(),
        "{o:?} {steps:?}"
    );
    assert!(requests[3].prompt_text().contains("could not be read"));
    // The tool call with unparseable arguments was refused and asked for
    // again, with the reason.
    assert!(requests.iter().any(|r| {
        r.prompt_text()
            .contains("None of your tool calls could be run")
    }),);
    assert!(log.contains("tool call skipped"), "{log}");
    assert!(log.contains("malformed response: not JSON"), "{log}");
    assert!(log.contains("no choices"), "{log}");
}

#[tokio::test]
async fn an_evaluation_that_stays_unreadable_keeps_the_hypothesis_open() {
    crypto();
    let demo = demo();
    let server = server(Quirks::default()).await;
    let mut reasoner = reasoner(settings(&server), 4.0, fast_policy(Duration::from_secs(5)));
    // Let the hypothesize and first plan rounds through, then garble the
    // first evaluation and its retry.
    let model = by_the_book(Quirks::default());
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = counter.clone();
    server.respond_with(std::sync::Arc::new(move |r| {
        if r.step().as_deref() == Some("evaluate")
            && c.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2
        {
            return Reply::content("{\"status\": \"maybe\"}");
        }
        model(r)
    }));
    let (report, log) = run(&demo, &mut reasoner).await;
    let h1 = report.hypotheses.iter().find(|h| h.id == "h-1").unwrap();
    assert!(log.contains("kept open"), "{log}");
    // Looked at again later, it can still conclude; what matters is that
    // the unreadable round ended without evidence and without a panic.
    assert!(report.cycles >= 2, "{}", report.summary);
    assert!(h1.cycle >= 1);
}

#[tokio::test]
async fn a_429_storm_is_waited_out_as_retry_after_asks() {
    crypto();
    let demo = demo();
    let server = server(Quirks::default()).await;
    // Whole seconds, and far enough ahead to still be ahead when the third
    // request arrives (after the first two waits).
    let ahead = (chrono::Utc::now() + chrono::Duration::seconds(4))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    server.push([
        Reply::rate_limited("1"),
        Reply::rate_limited("1"),
        Reply::rate_limited(&ahead),
    ]);
    let mut reasoner = reasoner(settings(&server), 4.0, fast_policy(Duration::from_secs(5)));
    let (report, _) = run(&demo, &mut reasoner).await;
    assert!(report.root_cause.is_some(), "{}", report.summary);
    let r = server.requests();
    let gap = |i: usize| r[i + 1].at.duration_since(r[i].at);
    assert!(gap(0) >= Duration::from_millis(950), "{:?}", gap(0));
    assert!(gap(1) >= Duration::from_millis(950), "{:?}", gap(1));
    // The HTTP date (whole seconds) was most of a second ahead or more.
    assert!(gap(2) >= Duration::from_millis(500), "{:?}", gap(2));
    assert!(gap(2) < Duration::from_millis(2600), "{:?}", gap(2));
    assert!(gap(0) < Duration::from_secs(3));
    assert_eq!(&outcomes(&report)[..4], ["error", "error", "error", "ok"]);
    assert_eq!(
        report.cost.llm_calls[0].input_tokens, 0,
        "a 429 is not billed"
    );
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff() {
    crypto();
    let demo = demo();
    let server = server(Quirks::default()).await;
    server.push([Reply::status(500), Reply::status(502), Reply::status(503)]);
    let mut reasoner = reasoner(settings(&server), 4.0, fast_policy(Duration::from_secs(5)));
    let (report, _) = run(&demo, &mut reasoner).await;
    assert!(report.root_cause.is_some(), "{}", report.summary);
    assert_eq!(&outcomes(&report)[..4], ["error", "error", "error", "ok"]);
}

#[tokio::test]
async fn a_client_error_is_not_retried() {
    crypto();
    let server = ScriptedServer::start().await.unwrap();
    server.push([Reply::status(401), Reply::content("never reached")]);
    let client = ChatClient::new(
        &server.base_url(),
        None,
        fast_policy(Duration::from_secs(2)),
    )
    .unwrap();
    let ex = client
        .complete(&request(), Instant::now() + Duration::from_secs(10))
        .await;
    assert!(
        matches!(ex.result, Err(LlmError::Rejected { status: 401, .. })),
        "{:?}",
        ex.result
    );
    assert_eq!(server.requests().len(), 1);
}

fn request() -> ChatRequest {
    ChatRequest {
        model: MODEL.into(),
        messages: vec![Message::user("hello")],
        tools: vec![],
        tool_choice: None,
        max_tokens: 16,
        temperature: 0.0,
    }
}

#[tokio::test]
async fn a_hanging_server_times_out_per_request_and_the_retry_succeeds() {
    crypto();
    let demo = demo();
    let server = server(Quirks::default()).await;
    server.push([
        Reply::delayed(Duration::from_secs(3), Reply::content("too late")),
        Reply::delayed(Duration::from_secs(3), Reply::content("too late")),
    ]);
    let mut reasoner = reasoner(
        settings(&server),
        4.0,
        fast_policy(Duration::from_millis(400)),
    );
    let started = Instant::now();
    let (report, _) = run(&demo, &mut reasoner).await;
    assert!(report.root_cause.is_some(), "{}", report.summary);
    assert_eq!(&outcomes(&report)[..3], ["timeout", "timeout", "ok"]);
    let r = server.requests();
    assert!(r[1].at.duration_since(r[0].at) >= Duration::from_millis(400));
    assert!(r[1].at.duration_since(r[0].at) < Duration::from_millis(1500));
    // A timed-out request may have been processed: its input is billed.
    assert!(report.cost.llm_calls[0].input_tokens > 0);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn retry_after_beyond_the_deadline_gives_up_at_once() {
    crypto();
    let server = ScriptedServer::start().await.unwrap();
    server.push([Reply::rate_limited("3600")]);
    let client = ChatClient::new(
        &server.base_url(),
        None,
        fast_policy(Duration::from_secs(2)),
    )
    .unwrap();
    let started = Instant::now();
    let ex = client
        .complete(&request(), Instant::now() + Duration::from_secs(5))
        .await;
    assert!(started.elapsed() < Duration::from_secs(1));
    match ex.result {
        Err(LlmError::Deadline { last, .. }) => {
            assert!(last.contains("past the deadline"), "{last}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_token_budget_stops_the_loop_and_escalates_with_the_findings_so_far() {
    crypto();
    let demo = demo();
    // Learn what the first round costs, then allow just that.
    let probe = server(Quirks::default()).await;
    let mut r = reasoner(settings(&probe), 4.0, fast_policy(Duration::from_secs(5)));
    let (full, _) = run(&demo, &mut r).await;
    let first = full.cost.llm_calls[0].input_tokens;

    let server = server(Quirks::default()).await;
    let mut s = settings(&server);
    s.max_input_tokens = first + 50;
    let mut reasoner = reasoner(s, 4.0, fast_policy(Duration::from_secs(5)));
    let (report, log) = run(&demo, &mut reasoner).await;

    assert!(report.root_cause.is_none());
    let escalation = report.escalation.as_deref().unwrap();
    assert!(escalation.contains("cost budget"), "{escalation}");
    // The findings so far: the hypotheses the first round produced.
    assert!(
        escalation.contains("Strongest hypotheses: h-1"),
        "{escalation}"
    );
    assert!(!report.hypotheses.is_empty());
    assert_eq!(outcomes(&report), ["ok", "budget"]);
    assert!(report.cost.llm_input_tokens <= first + 50);
    assert_eq!(server.requests().len(), 1, "the refused call was not sent");
    assert!(log.contains("reasoner_budget_exhausted"), "{log}");
}

#[tokio::test]
async fn the_cost_budget_refuses_a_call_that_could_cross_it() {
    crypto();
    let demo = demo();
    // Learn what the first round costs at $1 per thousand input tokens.
    let probe = server(Quirks::default()).await;
    let mut r = reasoner(settings(&probe), 4.0, fast_policy(Duration::from_secs(5)));
    let (full, _) = run(&demo, &mut r).await;
    let first = full.cost.llm_calls[0].input_tokens as f64 / 1000.0
        + full.cost.llm_calls[0].output_tokens as f64 * 0.6 / 1e6;
    // A budget with room for the first round and a cent more.
    let budget = first + 0.01;

    let server = server(Quirks::default()).await;
    let mut s = settings(&server);
    s.prices[0].input_usd_per_mtok = 1000.0;
    let price = warden_llm::Price::of(&s.prices[0]);
    let mut reasoner = LlmReasoner::with_policy(
        s,
        None,
        budget,
        Instant::now() + Duration::from_secs(60),
        Box::new(warden_agent::briefing::EngineBriefing::default()),
        fast_policy(Duration::from_secs(5)),
        price,
    )
    .unwrap();
    let (report, _) = run(&demo, &mut reasoner).await;
    assert!(report.root_cause.is_none());
    assert!(
        report
            .escalation
            .as_deref()
            .unwrap()
            .contains("cost budget")
    );
    assert_eq!(*outcomes(&report).last().unwrap(), "budget");
    assert!(
        report.cost.llm_cost_usd <= budget,
        "{}",
        report.cost.llm_cost_usd
    );
    assert!(report.cost.llm_cost_usd > 0.5);
    assert_eq!(server.requests().len(), 1, "the refused call was not sent");
}

#[tokio::test]
async fn an_unpriced_model_is_refused() {
    let s = warden_core::LlmSettings {
        model: "mystery-70b".into(),
        ..warden_core::LlmSettings::default()
    };
    let err = LlmReasoner::new(
        s,
        None,
        1.0,
        Instant::now() + Duration::from_secs(5),
        Box::new(warden_agent::briefing::EngineBriefing::default()),
    )
    .unwrap_err();
    assert!(
        matches!(err, SetupError::Unpriced(ref m) if m == "mystery-70b"),
        "{err}"
    );
}

#[tokio::test]
async fn a_server_that_is_down_falls_back_to_the_builtin_diagnosis() {
    crypto();
    let demo = demo();
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let s = warden_core::LlmSettings {
        base_url: format!("http://127.0.0.1:{port}/v1"),
        max_retries: 1,
        request_timeout_seconds: 2,
        ..warden_core::LlmSettings::default()
    };
    let mut input = demo.input.clone();
    input.llm = Some(s);
    let (mut events, log) = EventLog::capture(input.investigation_id.as_str());
    let report = warden_agent::llm::reason(
        &input,
        &demo.sources(),
        &DomainSecrets::default(),
        &mut events,
    )
    .await;
    let text = log.text();
    assert_eq!(report.reasoner, "builtin (fallback from llm:gpt-4o-mini)");
    assert!(
        report.summary.starts_with("The LLM reasoner failed ("),
        "{}",
        report.summary
    );
    assert!(
        report.summary.contains("connection failed"),
        "{}",
        report.summary
    );
    assert_eq!(
        report.root_cause.as_ref().map(|r| r.subject.as_str()),
        Some(demo.scenario.expected().root_cause_subject.as_str())
    );
    // The failed attempts are in the ledger; nothing was billed.
    assert_eq!(outcomes(&report), ["error", "error"]);
    assert_eq!(report.cost.llm_input_tokens, 0);
    assert!(text.contains("reasoner_fallback"), "{text}");
    assert!(text.contains("llm_api_key_missing"), "{text}");
}
