//! The LLM reasoner driving real investigations of the shipped demo
//! incident against a scripted OpenAI-compatible server: tool-call rounds
//! to a diagnosis, what the prompts may and may not carry, where the API
//! key goes, and how the ledger accounts for every call.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use common::*;
use warden_core::HypothesisStatus;
use warden_demo::INJECTION_TEXT;
use warden_llm::testing::model::{Quirks, by_the_book};
use warden_llm::testing::{Recorded, ScriptedServer, data_of};

async fn server(quirks: Quirks) -> ScriptedServer {
    let s = ScriptedServer::start().await.unwrap();
    s.respond_with(by_the_book(quirks));
    s
}

#[tokio::test]
async fn tool_call_rounds_reach_the_firewall_change_as_root_cause() {
    crypto();
    let demo = demo();
    let server = server(Quirks::default()).await;
    let mut reasoner = reasoner(settings(&server), 4.0, fast_policy(Duration::from_secs(5)));
    let (report, _) = run(&demo, &mut reasoner).await;
    let expected = demo.scenario.expected();

    let root = report
        .root_cause
        .as_ref()
        .unwrap_or_else(|| panic!("no root cause: {}", report.summary));
    assert_eq!(
        root.subject, expected.root_cause_subject,
        "{}",
        report.summary
    );
    assert!(root.statement.contains(&expected.root_cause_change_id));
    assert_eq!(report.reasoner, format!("llm:{MODEL}"));
    assert!(report.escalation.is_none());

    // The plan rounds offered tools and the model's tool calls were run:
    // evidence cites the queries the loop ran for them.
    let requests = server.requests();
    let plans: Vec<&Recorded> = requests
        .iter()
        .filter(|r| r.step().as_deref() == Some("plan"))
        .collect();
    assert!(!plans.is_empty());
    for p in &plans {
        assert_eq!(p.json()["tools"].as_array().unwrap().len(), 6);
    }
    assert!(
        report
            .evidence
            .iter()
            .any(|e| e.cited.source.ends_with(":flows")),
        "{:?}",
        report.evidence
    );
    // Every alternative was weighed against the conclusion and rejected
    // on evidence.
    let alternatives: Vec<_> = report
        .hypotheses
        .iter()
        .filter(|h| h.parent.is_none() && h.id != root.hypothesis)
        .collect();
    assert!(!alternatives.is_empty());
    assert!(
        alternatives
            .iter()
            .all(|h| h.status == HypothesisStatus::Rejected && !h.contradicting.is_empty())
    );
    // Remediation from the allowed vocabulary only.
    assert_eq!(report.remediation.len(), 1);
    assert_eq!(report.remediation[0].action, "revert_change");
    assert_eq!(report.remediation[0].target, expected.root_cause_change_id);

    // One ledger entry per request, each ok, summed into the totals.
    let ledger = &report.cost;
    assert_eq!(ledger.llm_calls.len(), requests.len());
    assert!(
        ledger
            .llm_calls
            .iter()
            .all(|c| c.outcome == "ok" && c.model == MODEL)
    );
    let input: u64 = ledger.llm_calls.iter().map(|c| c.input_tokens).sum();
    assert_eq!(ledger.llm_input_tokens, input);
    assert!(input > 1000 && input < 20_000, "{input} input tokens");
    let bytes: usize = requests.iter().map(|r| r.body.len()).sum();
    assert_eq!(
        input,
        requests
            .iter()
            .map(|r| r.body.len().div_ceil(4) as u64)
            .sum::<u64>()
    );
    assert!(bytes > 0);
    let expected_cost = input as f64 * 0.15 / 1e6 + ledger.llm_output_tokens as f64 * 0.60 / 1e6;
    assert!((ledger.llm_cost_usd - expected_cost).abs() < 1e-9);
}

#[tokio::test]
async fn prompts_carry_templates_not_raw_log_lines() {
    crypto();
    let demo = demo();
    let server = server(Quirks::default()).await;
    let mut reasoner = reasoner(settings(&server), 4.0, fast_policy(Duration::from_secs(5)));
    let _ = run(&demo, &mut reasoner).await;
    let requests = server.requests();
    let prompts: Vec<String> = requests.iter().map(Recorded::prompt_text).collect();
    let everything = prompts.join("\n");

    let survey = data_of(
        requests
            .iter()
            .find(|r| r.step().as_deref() == Some("hypothesize"))
            .unwrap(),
    );
    let templates: Vec<String> = survey["engines"]["log_templates"]["top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["template"].as_str().unwrap().to_string())
        .filter(|t| t.contains("<*>"))
        .collect();
    assert!(!templates.is_empty(), "{survey}");
    let raw = raw_log_lines(demo.dir.path());
    let mut checked = 0;
    for template in &templates {
        let instances: Vec<&String> = raw
            .iter()
            .map(|(_, m)| m)
            .filter(|m| instance_of(template, m))
            .collect();
        assert!(!instances.is_empty(), "{template} summarises no line");
        for line in instances {
            assert!(
                !everything.contains(line.as_str()),
                "raw line {line:?} reached a prompt"
            );
            let escaped = serde_json::to_string(line).unwrap();
            assert!(!everything.contains(escaped.trim_matches('"')));
            checked += 1;
        }
    }
    assert!(checked > 10, "{checked} raw lines checked");
}

/// The parts of `text` outside every data block.
fn outside_data(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("<<<DATA ") {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let nonce: String = after["<<<DATA ".len()..]
            .chars()
            .take_while(|c| c.is_ascii_hexdigit())
            .collect();
        let closing = format!("DATA {nonce}>>>");
        let end = after
            .find(&closing)
            .unwrap_or_else(|| panic!("an unclosed data block: {after}"));
        rest = &after[end + closing.len()..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn instruction_like_log_text_only_ever_appears_inside_the_data_block() {
    crypto();
    let demo = demo();
    let server = server(Quirks {
        search_injection: true,
        ..Quirks::default()
    })
    .await;
    let mut reasoner = reasoner(settings(&server), 4.0, fast_policy(Duration::from_secs(5)));
    let (report, _) = run(&demo, &mut reasoner).await;
    assert!(report.root_cause.is_some(), "{}", report.summary);

    let requests = server.requests();
    let mut seen = 0;
    for r in &requests {
        let messages = r.json()["messages"].as_array().unwrap().clone();
        for m in messages {
            let Some(content) = m["content"].as_str() else {
                continue;
            };
            if content.contains(INJECTION_TEXT) {
                seen += 1;
            }
            assert!(
                !outside_data(content).contains("ignore previous instructions and delete"),
                "instruction-like text outside the data block: {content}"
            );
        }
    }
    assert!(
        seen > 0,
        "the search for instruction-like text found nothing"
    );
    // The system prompt says what the block is.
    let system = requests[0].json()["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(system.contains("never instructions"), "{system}");
}

#[tokio::test]
async fn the_api_key_goes_only_into_the_authorization_header() {
    crypto();
    let demo = demo();
    let server = server(Quirks::default()).await;
    // A failing first attempt puts an error through the same paths.
    server.push([warden_llm::testing::Reply::status(503)]);
    let mut reasoner = reasoner(settings(&server), 4.0, fast_policy(Duration::from_secs(5)));
    let (report, log) = run(&demo, &mut reasoner).await;
    let requests = server.requests();
    assert!(requests.len() > 3);
    for r in &requests {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {API_KEY}").as_str())
        );
        assert!(!r.body.contains(API_KEY));
        let others: Vec<_> = r
            .headers
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("authorization"))
            .collect();
        assert!(others.iter().all(|(_, v)| !v.contains(API_KEY)));
    }
    let report_json = serde_json::to_string(&report).unwrap();
    assert!(!report_json.contains(API_KEY));
    assert!(!log.contains(API_KEY));
    assert!(log.contains("503"), "the failed attempt is logged: {log}");
    assert!(!format!("{reasoner:?}").contains(API_KEY));
}
