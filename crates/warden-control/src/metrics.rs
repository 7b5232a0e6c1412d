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
    pub alerts_received: Counter,
    pub alerts_deduplicated: Counter,
    pub incidents_created: Counter,
    pub jobs_running: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub jobs_queued: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub dispatch_latency: Histogram,
    pub intake_commit_alerts: Histogram,
    pub llm_input_tokens: Counter<u64, AtomicU64>,
    pub job_cpu_seconds: Counter<f64, AtomicU64>,
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
        let incidents_created = Counter::default();
        let jobs_running = Gauge::default();
        let jobs_queued = Gauge::default();
        let dispatch_latency =
            Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]);
        let intake_commit_alerts = Histogram::new([1.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 5000.0]);
        let llm_input_tokens = Counter::default();
        let job_cpu_seconds = Counter::default();

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
            incidents_created,
            jobs_running,
            jobs_queued,
            dispatch_latency,
            intake_commit_alerts,
            llm_input_tokens,
            job_cpu_seconds,
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
