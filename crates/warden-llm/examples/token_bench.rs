//! Measures the input tokens the LLM reasoner sends per investigation.
//!
//! Each investigation runs the real loop, the real evidence engines and the
//! real prompts against the scripted OpenAI-compatible server playing a
//! model by the book (`warden_llm::testing::model`): what is measured is
//! what warden sends. The server records every request; input tokens are
//! counted with the documented estimate, `ceil(bytes / 4)` of each request
//! body, and the prompt bytes are reported next to them.
//!
//! ```sh
//! cargo run -p warden-llm --example token_bench -- \
//!     [--nezha ../shared/datasets/nezha --cases ../shared/datasets/nezha/cases_dev.csv] [--json]
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;
use warden_agent::briefing::EngineBriefing;
use warden_agent::{BundleSource, EventLog, investigate};
use warden_core::alert::{Alert, AlertStatus, Fingerprint};
use warden_core::ports::{DataError, DataSource, Query, QueryResult};
use warden_core::telemetry::{Series, TopologyEdge, TopologyGraph, TopologyNode};
use warden_core::{
    AgentInput, Complexity, DataSourceConfig, Domain, Incident, IncidentId, IncidentStatus,
    InvestigationId, LlmSettings, ModelPrice, Plan, PlannerConfig, TrustPhase,
};
use warden_llm::testing::ScriptedServer;
use warden_llm::testing::model::{Quirks, by_the_book};
use warden_llm::{LlmReasoner, Price, RetryPolicy};

struct Measured {
    name: String,
    group: String,
    calls: usize,
    prompt_bytes: usize,
    input_tokens: u64,
    max_call_tokens: u64,
    root_cause: Option<String>,
    truth: Option<String>,
}

fn alert(name: &str, service: &str, at: DateTime<Utc>) -> Alert {
    let labels: BTreeMap<String, String> = [
        ("alertname".to_string(), name.to_string()),
        ("service".to_string(), service.to_string()),
        ("severity".to_string(), "critical".to_string()),
    ]
    .into();
    Alert {
        fingerprint: Fingerprint::from_labels(&labels),
        status: AlertStatus::Firing,
        labels,
        annotations: BTreeMap::new(),
        starts_at: at,
        ends_at: None,
        generator_url: None,
    }
}

fn input(incident: Incident, complexity: Complexity, domains: &[&str], bundle: &str) -> AgentInput {
    let cfg = PlannerConfig::default();
    AgentInput {
        investigation_id: InvestigationId::generate(),
        phase: TrustPhase::Shadow,
        plan: Plan {
            complexity,
            domains: domains.iter().map(|d| Domain::new(*d)).collect(),
            alert_count: incident.alerts.len(),
            profile: cfg.profile(complexity).clone(),
        },
        deadline: Utc::now() + chrono::Duration::minutes(10),
        incident,
        data_sources: vec![DataSourceConfig::Bundle {
            path: bundle.to_string(),
        }],
        report_url: "http://127.0.0.1:9/unused".into(),
        llm: None,
        reads: Some(warden_demo::read_policy()),
    }
}

async fn measure(
    name: &str,
    group: &str,
    input: &AgentInput,
    sources: &[Box<dyn DataSource>],
    truth: Option<String>,
) -> Measured {
    let server = ScriptedServer::start().await.unwrap();
    server.respond_with(by_the_book(Quirks::default()));
    let settings = LlmSettings {
        base_url: server.base_url(),
        model: "bench-model".into(),
        prices: vec![ModelPrice {
            model: "bench-model".into(),
            input_usd_per_mtok: 0.15,
            output_usd_per_mtok: 0.60,
        }],
        // Measure what an investigation asks for, not where the cap cuts it.
        max_input_tokens: 1_000_000,
        ..LlmSettings::default()
    };
    let price = Price::of(&settings.prices[0]);
    let mut reasoner = LlmReasoner::with_policy(
        settings,
        None,
        input.plan.profile.cost_budget_usd,
        Instant::now() + Duration::from_secs(300),
        Box::new(EngineBriefing::default()),
        RetryPolicy::default(),
        price,
    )
    .unwrap();
    let (mut events, _) = EventLog::capture(input.investigation_id.as_str());
    let report = investigate(input, sources, &mut reasoner, &mut events).await;
    let requests = server.requests();
    if std::env::var_os("TOKEN_BENCH_VERBOSE").is_some() {
        for r in &requests {
            let data = warden_llm::testing::data_of(r);
            let parts: Vec<String> = data
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}={}", v.to_string().len()))
                .collect();
            let tools = r.json()["tools"].to_string().len();
            eprintln!(
                "  {name}: {:?} {} bytes (tools {tools}) {}",
                r.step(),
                r.body.len(),
                parts.join(" ")
            );
        }
    }
    let per_call: Vec<u64> = requests
        .iter()
        .map(|r| warden_llm::estimate_tokens(r.body.len()))
        .collect();
    Measured {
        name: name.to_string(),
        group: group.to_string(),
        calls: requests.len(),
        prompt_bytes: requests.iter().map(|r| r.body.len()).sum(),
        input_tokens: per_call.iter().sum(),
        max_call_tokens: per_call.iter().copied().max().unwrap_or(0),
        root_cause: report.root_cause.map(|r| r.subject),
        truth,
    }
}

async fn demo() -> Measured {
    let base = Utc.with_ymd_and_hms(2025, 3, 4, 2, 0, 0).unwrap();
    let scenario = warden_demo::Scenario::firewall_cascade(base, 7);
    let dir = tempfile::tempdir().unwrap();
    scenario.write_bundle(dir.path()).unwrap();
    let alerts: Vec<Alert> = scenario.distinct_alerts(false);
    let incident = incident_of(alerts, "demo: firewall cascade");
    let path = dir.path().to_string_lossy().into_owned();
    let input = input(
        incident,
        Complexity::MultiDomain,
        &["application", "network", "database", "security"],
        &path,
    );
    let sources: Vec<Box<dyn DataSource>> = vec![Box::new(BundleSource::open(dir.path()).unwrap())];
    let truth = Some(scenario.expected().root_cause_subject);
    measure("demo firewall cascade", "demo", &input, &sources, truth).await
}

fn incident_of(alerts: Vec<Alert>, title: &str) -> Incident {
    let first = alerts.iter().map(|a| a.starts_at).min().unwrap();
    let last = alerts.iter().map(|a| a.starts_at).max().unwrap();
    Incident {
        id: IncidentId("inc-bench".into()),
        title: title.into(),
        status: IncidentStatus::Open,
        first_event_at: first,
        last_event_at: last,
        created_at: last,
        alerts,
        topology: Vec::new(),
    }
}

/// One Nezha day's pod metrics (and its service graph, where shipped) as a
/// read-only data source.
struct NezhaSource {
    series: Vec<Series>,
    topology: TopologyGraph,
}

#[async_trait]
impl DataSource for NezhaSource {
    fn name(&self) -> &str {
        "nezha"
    }

    fn domains(&self) -> Vec<Domain> {
        vec![Domain::new("application")]
    }

    async fn query(&self, query: &Query) -> Result<QueryResult, DataError> {
        Ok(match query {
            Query::Metrics {
                metric,
                labels,
                range,
            } => QueryResult::Metrics(
                self.series
                    .iter()
                    .filter(|s| metric.as_ref().is_none_or(|m| &s.metric == m))
                    .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
                    .map(|s| Series {
                        metric: s.metric.clone(),
                        labels: s.labels.clone(),
                        points: s
                            .points
                            .iter()
                            .copied()
                            .filter(|(t, _)| {
                                let t = Utc.timestamp_opt(*t, 0).single();
                                t.is_some_and(|t| range.contains(t))
                            })
                            .collect(),
                    })
                    .filter(|s| !s.points.is_empty())
                    .collect(),
            ),
            Query::Logs { .. } => QueryResult::Logs(Vec::new()),
            Query::Changes { .. } => QueryResult::Changes(Vec::new()),
            Query::Flows { .. } => QueryResult::Flows(Vec::new()),
            Query::SecurityEvents { .. } => QueryResult::SecurityEvents(Vec::new()),
            Query::Topology => QueryResult::Topology(self.topology.clone()),
        })
    }
}

fn topology(dir: &Path) -> TopologyGraph {
    let Ok(text) = std::fs::read_to_string(dir.join("dependency.csv")) else {
        return TopologyGraph::default();
    };
    let mut g = TopologyGraph::default();
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split(',').collect();
        if cols.len() < 2 {
            continue;
        }
        for id in &cols[..2] {
            if g.node(id).is_none() {
                g.nodes.push(TopologyNode {
                    id: id.to_string(),
                    kind: "service".into(),
                    domain: "application".into(),
                    namespace: None,
                });
            }
        }
        g.edges.push(TopologyEdge {
            from: cols[0].to_string(),
            to: cols[1].to_string(),
            via: Vec::new(),
            port: None,
        });
    }
    g
}

async fn nezha(data: &Path, cases: &Path) -> Vec<Measured> {
    let cases = warden_eval_nezha::read_cases(cases).unwrap();
    let mut days: BTreeMap<String, std::sync::Arc<NezhaSource>> = BTreeMap::new();
    let mut out = Vec::new();
    for case in &cases {
        let source = days
            .entry(case.date.clone())
            .or_insert_with(|| {
                let dir = data.join("rca_data").join(&case.date).join("metric");
                let pods = warden_eval_nezha::read_day(&dir).unwrap();
                std::sync::Arc::new(NezhaSource {
                    series: pods.into_iter().flat_map(|p| p.series).collect(),
                    topology: topology(&dir),
                })
            })
            .clone();
        // The symptom an operator is paged for: the entry service degrades
        // a couple of minutes after the fault.
        let entry = if case.system == "TrainTicket" {
            "ts-ui-dashboard"
        } else {
            "frontend"
        };
        let at = case.inject_at + chrono::Duration::minutes(2);
        let incident = incident_of(
            vec![
                alert("HighLatency", entry, at),
                alert("ErrorRateHigh", entry, at + chrono::Duration::minutes(1)),
            ],
            &format!("{} {}", case.system, case.fault_type),
        );
        let input = input(incident, Complexity::Simple, &["application"], "nezha");
        let sources: Vec<Box<dyn DataSource>> = vec![Box::new(Shared(source))];
        let name = format!("{} {} {}", case.system, case.inject_at, case.fault_type);
        out.push(
            measure(
                &name,
                &case.system,
                &input,
                &sources,
                Some(case.service.clone()),
            )
            .await,
        );
    }
    out
}

struct Shared(std::sync::Arc<NezhaSource>);

#[async_trait]
impl DataSource for Shared {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn domains(&self) -> Vec<Domain> {
        self.0.domains()
    }
    async fn query(&self, query: &Query) -> Result<QueryResult, DataError> {
        self.0.query(query).await
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map(PathBuf::from)
    };
    let json_out = args.iter().any(|a| a == "--json");
    let mut all = vec![demo().await];
    if let (Some(data), Some(cases)) = (arg("--nezha"), arg("--cases")) {
        all.extend(nezha(&data, &cases).await);
    }
    let mut groups: BTreeMap<&str, Vec<&Measured>> = BTreeMap::new();
    for m in &all {
        groups.entry(m.group.as_str()).or_default().push(m);
    }
    let summary: BTreeMap<&str, serde_json::Value> = groups
        .iter()
        .map(|(g, ms)| {
            let n = ms.len() as f64;
            let tokens: Vec<u64> = ms.iter().map(|m| m.input_tokens).collect();
            let mut sorted = tokens.clone();
            sorted.sort_unstable();
            (
                *g,
                json!({
                    "investigations": ms.len(),
                    "mean_input_tokens": (tokens.iter().sum::<u64>() as f64 / n).round(),
                    "median_input_tokens": sorted[sorted.len() / 2],
                    "max_input_tokens": sorted.last(),
                    "mean_prompt_bytes": (ms.iter().map(|m| m.prompt_bytes).sum::<usize>() as f64 / n).round(),
                    "mean_calls": ms.iter().map(|m| m.calls).sum::<usize>() as f64 / n,
                    "max_single_call_tokens": ms.iter().map(|m| m.max_call_tokens).max(),
                    "under_20000": ms.iter().filter(|m| m.input_tokens < 20_000).count(),
                }),
            )
        })
        .collect();
    if json_out {
        println!("{}", serde_json::to_string_pretty(&summary).unwrap());
        return;
    }
    println!(
        "{:<52} {:>5} {:>12} {:>12} {:>10}  root cause (truth)",
        "investigation", "calls", "prompt bytes", "input tokens", "max/call"
    );
    for m in &all {
        println!(
            "{:<52} {:>5} {:>12} {:>12} {:>10}  {} ({})",
            m.name,
            m.calls,
            m.prompt_bytes,
            m.input_tokens,
            m.max_call_tokens,
            m.root_cause.as_deref().unwrap_or("-"),
            m.truth.as_deref().unwrap_or("-"),
        );
    }
    println!();
    for (g, s) in &summary {
        println!("{g}: {s}");
    }
    println!(
        "\ninput tokens = sum over requests of ceil(request body bytes / 4); the scripted model's judgement is fixed, its prompts are warden's own."
    );
}
