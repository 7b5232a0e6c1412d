//! Investigation-level metrics in the Prometheus text format.
//!
//! The unit of work is an investigation, not a request: counts by
//! complexity and failure reason, durations by complexity (histograms with
//! buckets from seconds to the fifteen-minute deadline), reasoning depth,
//! circuit-breaker trips, and the intake's own flow.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ComplexityLabels {
    pub complexity: String,
}

/// Labels of one LLM call as the report's cost ledger records it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LlmCallLabels {
    pub model: String,
    /// `ok`, `error`, `timeout` or `budget`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LlmTokenLabels {
    pub model: String,
    /// `input` or `output`.
    pub direction: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    pub model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub complexity: String,
    pub reason: String,
}

pub struct Metrics {
    registry: Registry,
    pub started: Family<ComplexityLabels, Counter>,
    pub completed: Family<ComplexityLabels, Counter>,
    pub failed: Family<FailureLabels, Counter>,
    pub duration: Family<ComplexityLabels, Histogram>,
    pub cycles: Family<ComplexityLabels, Histogram>,
    pub breaker_trips: Family<ComplexityLabels, Counter>,
    /// Investigations started again after a restart lost their job's input.
    pub restarted: Counter,
    pub alerts_received: Counter,
    pub alerts_deduplicated: Counter,
    pub incidents_created: Counter,
    pub jobs_running: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub jobs_queued: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub dispatch_latency: Histogram,
    pub intake_commit_alerts: Histogram,
    pub llm_input_tokens: Counter<u64, AtomicU64>,
    pub job_cpu_seconds: Counter<f64, AtomicU64>,
    pub llm_calls: Family<LlmCallLabels, Counter>,
    pub llm_tokens: Family<LlmTokenLabels, Counter>,
    pub llm_cost_usd: Family<ModelLabels, Counter<f64, AtomicU64>>,
    pub llm_latency: Family<ModelLabels, Histogram>,
    /// 0 shadow, 1 assist, 2 remediate, 3 autonomous.
    pub trust_phase: Family<EnvironmentLabels, Gauge>,
    pub trust_demotions: Family<EnvironmentLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EnvironmentLabels {
    pub environment: String,
}

fn duration_buckets() -> [f64; 11] {
    [
        1.0, 5.0, 15.0, 30.0, 60.0, 90.0, 120.0, 300.0, 600.0, 900.0, 1800.0,
    ]
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("warden");
        let started = Family::<ComplexityLabels, Counter>::default();
        let completed = Family::<ComplexityLabels, Counter>::default();
        let failed = Family::<FailureLabels, Counter>::default();
        let duration = Family::<ComplexityLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(duration_buckets())
        });
        let cycles = Family::<ComplexityLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0, 12.0, 15.0, 20.0])
        });
        let breaker_trips = Family::<ComplexityLabels, Counter>::default();
        let alerts_received = Counter::default();
        let alerts_deduplicated = Counter::default();
        let restarted = Counter::default();
        let incidents_created = Counter::default();
        let jobs_running = Gauge::default();
        let jobs_queued = Gauge::default();
        let dispatch_latency =
            Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]);
        let intake_commit_alerts = Histogram::new([1.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 5000.0]);
        let llm_input_tokens = Counter::default();
        let job_cpu_seconds = Counter::default();
        let llm_calls = Family::<LlmCallLabels, Counter>::default();
        let llm_tokens = Family::<LlmTokenLabels, Counter>::default();
        let llm_cost_usd = Family::<ModelLabels, Counter<f64, AtomicU64>>::default();
        let llm_latency = Family::<ModelLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0])
        });

        registry.register(
            "investigations_started",
            "Investigations whose job was started",
            started.clone(),
        );
        registry.register(
            "investigations_completed",
            "Investigations that delivered a report",
            completed.clone(),
        );
        registry.register(
            "investigations_failed",
            "Investigations that ended without a report, by reason (deadline and cancelled included)",
            failed.clone(),
        );
        registry.register(
            "investigation_duration_seconds",
            "Wall time from job start to the end of the investigation",
            duration.clone(),
        );
        registry.register(
            "reasoning_cycles",
            "Hypothesis-evaluation cycles per investigation",
            cycles.clone(),
        );
        registry.register(
            "circuit_breaker_trips",
            "Investigations stopped by the reasoning-depth circuit breaker",
            breaker_trips.clone(),
        );
        registry.register(
            "alerts_received",
            "Alerts received at intake",
            alerts_received.clone(),
        );
        registry.register(
            "alerts_deduplicated",
            "Received alerts that updated an already known alert",
            alerts_deduplicated.clone(),
        );
        registry.register(
            "investigations_restarted",
            "Investigations started again because their job had not received its input when the control plane restarted",
            restarted.clone(),
        );
        registry.register(
            "incidents_created",
            "Incidents created by correlation",
            incidents_created.clone(),
        );
        registry.register(
            "jobs_running",
            "Investigation jobs running now",
            jobs_running.clone(),
        );
        registry.register(
            "jobs_queued",
            "Investigations waiting for a job slot",
            jobs_queued.clone(),
        );
        registry.register(
            "dispatch_latency_seconds",
            "From an incident being ready for investigation to its job process running",
            dispatch_latency.clone(),
        );
        registry.register(
            "intake_commit_alerts",
            "Alerts written per intake transaction (group commit size)",
            intake_commit_alerts.clone(),
        );
        registry.register(
            "llm_input_tokens",
            "LLM input tokens used by investigations",
            llm_input_tokens.clone(),
        );
        registry.register(
            "job_cpu_seconds",
            "CPU seconds used by investigation jobs",
            job_cpu_seconds.clone(),
        );
        // Derived from delivered reports: the agent is a separate process,
        // its cost ledger is the one account of its LLM calls.
        registry.register(
            "llm_calls",
            "LLM calls made by investigations, by model and outcome (ok, error, timeout, budget)",
            llm_calls.clone(),
        );
        registry.register(
            "llm_tokens",
            "LLM tokens used by investigations, by model and direction (input, output)",
            llm_tokens.clone(),
        );
        registry.register(
            "llm_cost_usd",
            "LLM spend of investigations in USD, by model, from the configured price table",
            llm_cost_usd.clone(),
        );
        registry.register(
            "llm_call_latency_seconds",
            "Latency of LLM calls, by model",
            llm_latency.clone(),
        );
        let trust_phase = Family::<EnvironmentLabels, Gauge>::default();
        let trust_demotions = Family::<EnvironmentLabels, Counter>::default();
        registry.register(
            "trust_phase",
            "Current trust phase per environment: 0 shadow, 1 assist, 2 remediate, 3 autonomous",
            trust_phase.clone(),
        );
        registry.register(
            "trust_demotions",
            "Automatic demotions per environment",
            trust_demotions.clone(),
        );
        Metrics {
            registry,
            started,
            completed,
            failed,
            duration,
            cycles,
            breaker_trips,
            alerts_received,
            alerts_deduplicated,
            restarted,
            incidents_created,
            jobs_running,
            jobs_queued,
            dispatch_latency,
            intake_commit_alerts,
            llm_input_tokens,
            job_cpu_seconds,
            llm_calls,
            llm_tokens,
            llm_cost_usd,
            llm_latency,
            trust_phase,
            trust_demotions,
        }
    }

    /// Counts the LLM calls in a delivered report's cost ledger.
    pub fn observe_report(&self, report: &warden_core::Report) {
        for call in &report.cost.llm_calls {
            let model = ModelLabels {
                model: call.model.clone(),
            };
            self.llm_calls
                .get_or_create(&LlmCallLabels {
                    model: call.model.clone(),
                    outcome: call.outcome.clone(),
                })
                .inc();
            for (direction, tokens) in
                [("input", call.input_tokens), ("output", call.output_tokens)]
            {
                self.llm_tokens
                    .get_or_create(&LlmTokenLabels {
                        model: call.model.clone(),
                        direction: direction.to_string(),
                    })
                    .inc_by(tokens);
            }
            // A report is data from the job: a negative or NaN cost must not
            // corrupt a counter.
            if call.cost_usd.is_finite() && call.cost_usd > 0.0 {
                self.llm_cost_usd
                    .get_or_create(&model)
                    .inc_by(call.cost_usd);
            }
            // A call refused by the budget never reached a server.
            if call.outcome != "budget" {
                self.llm_latency
                    .get_or_create(&model)
                    .observe(call.latency_ms as f64 / 1000.0);
            }
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

pub fn complexity(c: warden_core::Complexity) -> ComplexityLabels {
    ComplexityLabels {
        complexity: c.as_str().to_string(),
    }
}

#[cfg(test)]
mod llm_tests {
    use super::*;
    use warden_core::{CostLedger, LlmCall, Report};

    fn call(outcome: &str, input: u64, cost: f64) -> LlmCall {
        LlmCall {
            model: "gpt-4o-mini".into(),
            input_tokens: input,
            output_tokens: 10,
            latency_ms: 300,
            cost_usd: cost,
            outcome: outcome.into(),
        }
    }

    #[test]
    fn a_reports_ledger_becomes_llm_calls_tokens_cost_and_latency() {
        let m = Metrics::new();
        let report = Report {
            investigation_id: "i".into(),
            incident_id: "n".into(),
            reasoner: "llm:gpt-4o-mini".into(),
            summary: String::new(),
            root_cause: None,
            confidence: 0.0,
            hypotheses: vec![],
            evidence: vec![],
            remediation: vec![],
            cycles: 1,
            depth_budget: 8,
            circuit_breaker_tripped: false,
            escalation: None,
            cost: CostLedger {
                llm_calls: vec![
                    call("ok", 1000, 0.5),
                    call("error", 0, 0.0),
                    call("budget", 0, 0.0),
                    call("ok", 500, f64::NAN),
                ],
                ..CostLedger::default()
            },
        };
        m.observe_report(&report);
        let text = m.encode();
        assert!(
            text.contains(r#"warden_llm_calls_total{model="gpt-4o-mini",outcome="ok"} 2"#),
            "{text}"
        );
        assert!(text.contains(r#"warden_llm_calls_total{model="gpt-4o-mini",outcome="budget"} 1"#));
        assert!(
            text.contains(r#"warden_llm_tokens_total{model="gpt-4o-mini",direction="input"} 1500"#)
        );
        assert!(text.contains(r#"warden_llm_cost_usd_total{model="gpt-4o-mini"} 0.5"#));
        assert!(text.contains(r#"warden_llm_call_latency_seconds_count{model="gpt-4o-mini"} 3"#));
    }
}
