//! Shared setup: the shipped demo incident as an investigation input, and an
//! LLM reasoner pointed at a scripted server.

#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use secrecy::SecretString;
use tempfile::TempDir;
use warden_agent::briefing::EngineBriefing;
use warden_agent::{BundleSource, EventLog, investigate};
use warden_core::alert::Alert;
use warden_core::ports::DataSource;
use warden_core::report::Report;
use warden_core::{
    AgentInput, Complexity, DataSourceConfig, Domain, Incident, IncidentId, IncidentStatus,
    InvestigationId, LlmSettings, ModelPrice, Plan, PlannerConfig, TrustPhase,
};
use warden_demo::Scenario;
use warden_llm::testing::ScriptedServer;
use warden_llm::{LlmReasoner, Price, RetryPolicy};

pub const MODEL: &str = "test-model";
pub const API_KEY: &str = "sk-test-9f8e7d6c5b4a-NEVER-LOG-ME";

pub fn crypto() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

pub struct Demo {
    pub dir: TempDir,
    pub scenario: Scenario,
    pub input: AgentInput,
}

impl Demo {
    pub fn sources(&self) -> Vec<Box<dyn DataSource>> {
        vec![Box::new(BundleSource::open(self.dir.path()).unwrap())]
    }
}

/// The demo storm's fault alerts as one incident, as correlation hands
/// them over, investigated with a multi-domain plan.
pub fn demo() -> Demo {
    let base = Utc.with_ymd_and_hms(2025, 3, 4, 2, 0, 0).unwrap();
    let scenario = Scenario::firewall_cascade(base, 7);
    let dir = tempfile::tempdir().unwrap();
    scenario.write_bundle(dir.path()).unwrap();
    let alerts: Vec<Alert> = scenario.distinct_alerts(false);
    let input = input_for(dir.path(), incident(alerts, "firewall cascade"));
    Demo {
        dir,
        scenario,
        input,
    }
}

pub fn incident(alerts: Vec<Alert>, title: &str) -> Incident {
    let first = alerts.iter().map(|a| a.starts_at).min().unwrap();
    let last = alerts.iter().map(|a| a.starts_at).max().unwrap();
    Incident {
        id: IncidentId("inc-llm".into()),
        title: title.into(),
        status: IncidentStatus::Open,
        first_event_at: first,
        last_event_at: last,
        created_at: last,
        alerts,
        topology: Vec::new(),
    }
}

pub fn input_for(bundle: &Path, incident: Incident) -> AgentInput {
    let profile = PlannerConfig::default().multi_domain;
    AgentInput {
        investigation_id: InvestigationId::generate(),
        phase: TrustPhase::Shadow,
        plan: Plan {
            complexity: Complexity::MultiDomain,
            domains: vec![
                Domain::new("application"),
                Domain::new("network"),
                Domain::new("database"),
                Domain::new("security"),
            ],
            alert_count: incident.alerts.len(),
            profile,
        },
        deadline: Utc::now() + chrono::Duration::minutes(5),
        incident,
        data_sources: vec![DataSourceConfig::Bundle {
            path: bundle.to_string_lossy().into_owned(),
        }],
        report_url: "http://127.0.0.1:9/unused".into(),
        llm: None,
        reads: Some(warden_demo::read_policy()),
    }
}

pub fn settings(server: &ScriptedServer) -> LlmSettings {
    LlmSettings {
        base_url: server.base_url(),
        model: MODEL.into(),
        request_timeout_seconds: 5,
        max_retries: 4,
        max_input_tokens: 20_000,
        max_output_tokens: 512,
        prices: vec![ModelPrice {
            model: MODEL.into(),
            input_usd_per_mtok: 0.15,
            output_usd_per_mtok: 0.60,
        }],
        api_key_domain: "llm-inference".into(),
    }
}

/// Retries fast enough for tests; `Retry-After` is still honoured as sent.
pub fn fast_policy(timeout: Duration) -> RetryPolicy {
    RetryPolicy {
        request_timeout: timeout,
        max_retries: 4,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
    }
}

pub fn reasoner(settings: LlmSettings, cost_budget: f64, policy: RetryPolicy) -> LlmReasoner {
    let price = Price::of(settings.price_of(MODEL).unwrap());
    LlmReasoner::with_policy(
        settings,
        Some(SecretString::from(API_KEY)),
        cost_budget,
        Instant::now() + Duration::from_secs(60),
        Box::new(EngineBriefing::default()),
        policy,
        price,
    )
    .unwrap()
}

/// Runs the demo investigation with `reasoner`; the report and the log.
pub async fn run(demo: &Demo, reasoner: &mut LlmReasoner) -> (Report, String) {
    let (mut events, log) = EventLog::capture(demo.input.investigation_id.as_str());
    let report = investigate(&demo.input, &demo.sources(), reasoner, &mut events).await;
    for note in reasoner.notes() {
        events.warn("llm_note", serde_json::json!({"note": note}));
    }
    (report, log.text())
}

/// Every raw log line of the bundle: `(service, message)`.
pub fn raw_log_lines(bundle: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(bundle.join("logs")).unwrap() {
        let path = entry.unwrap().path();
        let service = path.file_stem().unwrap().to_string_lossy().into_owned();
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let mut parts = line.splitn(3, ' ');
            let (_, _, message) = (parts.next(), parts.next(), parts.next());
            if let Some(m) = message {
                out.push((service.clone(), m.to_string()));
            }
        }
    }
    out
}

/// Whether `line` is an instance of `template`, `<*>` matching any run of
/// characters (a miner may fold a variable number of tokens into one).
pub fn instance_of(template: &str, line: &str) -> bool {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    glob(&norm(template), &norm(line))
}

fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split("<*>").collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}
