//! `warden demo`: the incident from the source article, end to end.
//!
//! A firewall rule change causes application timeouts that exhaust database
//! connection pools: about 300 alerts across network, application, database
//! and security. The demo starts the embedded control plane, replays the
//! storm through the real webhook, lets the local runtime run the
//! investigations, shows their progress and prints the diagnosis.

use std::collections::HashSet;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;
use tokio::net::TcpListener;
use warden_control::Config;
use warden_core::{DataSourceConfig, Investigation, Report};
use warden_demo::Scenario;

use crate::cli::{DemoArgs, default_data_dir};
use crate::secrets::put_if_missing;
use crate::serve::{embedded_broker, prepare_data_dir, shutdown_signal, start};
use rand::RngCore;
use secrecy::SecretString;

/// A fixed seed: the demo shows the same storm every time.
const SEED: u64 = 20261128;

/// Where progress goes: stderr when stdout carries JSON.
struct Out {
    json: bool,
}

impl Out {
    fn say(&self, line: impl AsRef<str>) {
        if self.json {
            eprintln!("{}", line.as_ref());
        } else {
            println!("{}", line.as_ref());
        }
    }
}

async fn bind(listen: Option<SocketAddr>) -> anyhow::Result<TcpListener> {
    if let Some(addr) = listen {
        return TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"));
    }
    match TcpListener::bind(("127.0.0.1", 7878)).await {
        Ok(l) => Ok(l),
        Err(_) => Ok(TcpListener::bind(("127.0.0.1", 0)).await?),
    }
}

pub async fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let DemoArgs {
        once,
        json,
        data_dir,
        listen,
    } = args;
    let out = Out { json };
    let root = data_dir.unwrap_or_else(default_data_dir);
    let run = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let data_dir = prepare_data_dir(&root.join("demo").join(&run))?;

    let scenario = Scenario::firewall_cascade(warden_demo::default_base(), SEED);
    let bundle = data_dir.join("telemetry");
    scenario
        .write_bundle(&bundle)
        .with_context(|| format!("writing the telemetry bundle to {}", bundle.display()))?;

    let mut config = Config::default();
    config.correlation.topology = scenario.topology_hints();
    config.agent.data_sources = vec![DataSourceConfig::Bundle {
        path: bundle.display().to_string(),
    }];
    // Each data domain gets a credential in the embedded store, so the
    // investigations show the per-investigation identity flow. The values
    // are random and never printed.
    let store = embedded_broker(&config.secrets, &data_dir)?;
    for domain in &config.secrets.domains {
        let mut bytes = [0u8; 24];
        rand::rng().fill_bytes(&mut bytes);
        let value = SecretString::from(format!("demo-{}", hex::encode(bytes)));
        put_if_missing(&store, &domain.path, &value)?;
    }
    drop(store);

    let listener = bind(listen).await?;
    let plane = start(config, &data_dir, listener).await?;
    let base = plane.url();
    out.say("warden demo: a firewall rule change → application timeouts → database connection pools exhausted");
    out.say(format!("  control plane  {base}"));
    out.say(format!("  state          {}", data_dir.display()));

    let client = reqwest::Client::new();
    let storm = scenario.storm();
    let alerts: usize = storm
        .iter()
        .map(|p| {
            p.get("alerts")
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
        })
        .sum();
    let started = Instant::now();
    for payload in &storm {
        let resp = client
            .post(format!("{base}/api/v1/alerts"))
            .json(payload)
            .send()
            .await
            .context("posting to the webhook")?;
        if !resp.status().is_success() {
            bail!(
                "webhook refused a payload: {} {}",
                resp.status(),
                resp.text().await.unwrap_or_default()
            );
        }
    }
    out.say(format!(
        "  replayed       {} webhook payloads, {alerts} alert notifications ({} distinct alerts) in {} ms",
        storm.len(),
        scenario.alert_count(),
        started.elapsed().as_millis()
    ));

    let main = wait_for_investigations(&client, &base, &out).await?;
    let report: Report = client
        .get(format!("{base}/api/v1/investigations/{}/report", main.id))
        .send()
        .await?
        .error_for_status()
        .context("fetching the report")?
        .json()
        .await?;
    let expected = scenario.expected();
    let found = report.root_cause.as_ref().is_some_and(|rc| {
        rc.subject == expected.root_cause_subject || rc.subject == expected.root_cause_change_id
    });

    if json {
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut stdout, &report)?;
        writeln!(stdout)?;
    } else {
        print_report(&report);
        println!(
            "\n  {} (known cause: {} on {})",
            if found {
                "matches the scenario's known root cause"
            } else {
                "DOES NOT match the scenario's known root cause"
            },
            expected.root_cause_change_id,
            expected.root_cause_subject
        );
        println!("  report   {base}/api/v1/investigations/{}/report", main.id);
        println!("  logs     {base}/api/v1/investigations/{}/logs", main.id);
        println!("  metrics  {base}/metrics");
    }
    let ok =
        main.state == warden_core::InvestigationState::Succeeded && report.root_cause.is_some();
    if !once {
        out.say(format!("\nserving on {base}; Ctrl-C to stop"));
        shutdown_signal().await;
    }
    plane.stop().await;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[derive(serde::Deserialize)]
struct IncidentList {
    incidents: Vec<warden_core::Incident>,
}

#[derive(serde::Deserialize)]
struct InvestigationList {
    investigations: Vec<Investigation>,
}

/// Waits until every investigation has ended, showing progress, and
/// returns the one with the most alerts: the storm's.
async fn wait_for_investigations(
    client: &reqwest::Client,
    base: &str,
    out: &Out,
) -> anyhow::Result<Investigation> {
    let deadline = Instant::now() + Duration::from_secs(20 * 60);
    let mut announced: HashSet<String> = HashSet::new();
    let mut log_lines: usize = 0;
    let mut main_id: Option<String> = None;
    loop {
        if Instant::now() > deadline {
            bail!("investigations did not finish within 20 minutes");
        }
        let incidents: IncidentList = client
            .get(format!("{base}/api/v1/incidents"))
            .send()
            .await?
            .json()
            .await?;
        let list: InvestigationList = client
            .get(format!("{base}/api/v1/investigations"))
            .send()
            .await?
            .json()
            .await?;
        let invs = list.investigations;
        // An incident that resolved before it was planned never gets an
        // investigation; every open one does.
        let open = incidents
            .incidents
            .iter()
            .filter(|i| i.status == warden_core::IncidentStatus::Open)
            .count();
        if invs.is_empty() || invs.len() < open {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        for inv in &invs {
            if announced.insert(inv.id.to_string()) {
                let p = &inv.plan;
                out.say(format!(
                    "  investigation  {} for {} alerts in {} domain(s) [{}]: {} MiB, {} mCPU, deadline {} s, depth budget {}",
                    inv.id,
                    p.alert_count,
                    p.domains.len(),
                    p.complexity.as_str(),
                    p.profile.memory_bytes / (1024 * 1024),
                    p.profile.cpu_millis,
                    p.profile.deadline_seconds,
                    p.profile.depth_budget
                ));
            }
        }
        let main = invs
            .iter()
            .max_by_key(|i| i.plan.alert_count)
            .map(|i| i.id.to_string());
        if main_id.is_none() {
            main_id = main;
        }
        if let Some(id) = &main_id {
            let text = client
                .get(format!("{base}/api/v1/investigations/{id}/logs"))
                .send()
                .await?
                .text()
                .await
                .unwrap_or_default();
            for line in text.lines().skip(log_lines) {
                if let Some(p) = progress_line(line) {
                    out.say(format!("    {p}"));
                }
            }
            log_lines = text.lines().count();
        }
        if invs.iter().all(|i| i.state.is_terminal()) {
            for inv in &invs {
                out.say(format!(
                    "  ended          {} {}",
                    inv.id,
                    describe_state(inv)
                ));
            }
            let id = main_id.unwrap_or_default();
            return invs
                .into_iter()
                .find(|i| i.id.as_str() == id)
                .context("the storm's investigation disappeared");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn describe_state(inv: &Investigation) -> String {
    match &inv.state {
        warden_core::InvestigationState::Failed { reason, detail } => {
            format!("failed ({}): {detail}", reason.as_str())
        }
        s => s.name().to_string(),
    }
}

/// One readable line from the agent's JSON-lines log, for the events worth
/// showing live.
fn progress_line(line: &str) -> Option<String> {
    let v: Value = serde_json::from_str(line).ok()?;
    let event = v.get("event")?.as_str()?;
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    match event {
        "cycle_started" => Some(format!("cycle {}/{}", n("cycle"), n("budget"))),
        "hypothesis" => Some(format!(
            "  hypothesis {} [{} {:.2}] {}",
            s("id"),
            s("status"),
            v.get("score").and_then(Value::as_f64).unwrap_or(0.0),
            s("statement")
        )),
        "secret_read" => Some(format!(
            "read the {} credential with its own identity {}",
            s("domain"),
            s("accessor")
        )),
        "breaker_tripped" => {
            Some("circuit breaker tripped: escalating with the findings so far".into())
        }
        "concluded" => Some(format!(
            "concluded (confidence {:.2})",
            v.get("confidence").and_then(Value::as_f64).unwrap_or(0.0)
        )),
        "report_delivered" => Some("report delivered".into()),
        _ => None,
    }
}

fn print_report(r: &Report) {
    println!(
        "\nDiagnosis ({} reasoner, {} of {} cycles{})",
        r.reasoner,
        r.cycles,
        r.depth_budget,
        if r.circuit_breaker_tripped {
            ", circuit breaker tripped"
        } else {
            ""
        }
    );
    match &r.root_cause {
        Some(rc) => {
            println!(
                "\n  root cause: {} (confidence {:.2})",
                rc.statement, r.confidence
            );
            println!("  subject:    {}", rc.subject);
            println!("  chain:");
            for (i, step) in rc.chain.iter().enumerate() {
                println!("    {}. {step}", i + 1);
            }
        }
        None => println!("\n  no root cause reached confidence ({:.2})", r.confidence),
    }
    if let Some(e) = &r.escalation {
        println!("  escalation: {e}");
    }
    println!("\n  hypotheses:");
    for h in &r.hypotheses {
        let indent = if h.parent.is_some() { "      " } else { "    " };
        println!(
            "{indent}{} [{:?} {:.2}] {}",
            h.id, h.status, h.score, h.statement
        );
    }
    println!("\n  evidence chain:");
    for e in &r.evidence {
        println!("    {} [{}] {}", e.id, e.domain, e.summary);
        println!(
            "         source: {} query: {}",
            e.cited.source, e.cited.query
        );
    }
    if !r.remediation.is_empty() {
        println!("\n  proposed remediation (proposals only; nothing was executed):");
        for a in &r.remediation {
            println!(
                "    - {} {}: {} (risk: {})",
                a.action, a.target, a.rationale, a.risk
            );
        }
    }
    let c = &r.cost;
    println!(
        "\n  cost: {} LLM calls, {} input / {} output tokens, ${:.2} LLM; {:.2} CPU-s, {} MiB peak, {:.1} s wall, {} data queries",
        c.llm_calls.len(),
        c.llm_input_tokens,
        c.llm_output_tokens,
        c.llm_cost_usd,
        c.cpu_seconds,
        c.peak_memory_bytes / (1024 * 1024),
        c.wall_seconds,
        c.data_queries
    );
}
