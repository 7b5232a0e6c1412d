//! The job entrypoint: read the input, investigate, deliver the report.
//!
//! The job is started by a runtime with one JSON document on its standard
//! input ([`JobInput`]); the one-time result credential arrives only there
//! and is only ever used as the bearer token of the delivery request. The
//! report is then POSTed to the control plane, retrying on connection
//! errors and 5xx (the control plane may be restarting: it re-adopts
//! running jobs, and the report must still arrive) until the deadline, and
//! giving up at once on 4xx (a refused credential will not become valid).
//!
//! Exit codes: 0 delivered, 1 not delivered, 2 unusable input.

use std::io::Write;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt};
use warden_core::ports::DataSource;
use warden_core::report::Report;
use warden_core::{DataSourceConfig, JobInput};

use crate::bundle::BundleSource;
use crate::events::EventLog;

/// The largest input document accepted.
pub const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

pub const EXIT_DELIVERED: i32 = 0;
pub const EXIT_NOT_DELIVERED: i32 = 1;
pub const EXIT_BAD_INPUT: i32 = 2;

/// How the report is delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryPolicy {
    pub initial_backoff: StdDuration,
    pub max_backoff: StdDuration,
    /// Per attempt, capped by the time left until the deadline.
    pub request_timeout: StdDuration,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy {
            initial_backoff: StdDuration::from_millis(250),
            max_backoff: StdDuration::from_secs(5),
            request_timeout: StdDuration::from_secs(15),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("could not read the job input: {0}")]
    Read(std::io::Error),
    #[error("the job input is larger than {MAX_INPUT_BYTES} bytes")]
    TooLarge,
    /// The description never quotes values from the input: one of them is
    /// the credential.
    #[error("the job input is not a valid JobInput document: {0}")]
    Parse(String),
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The control plane refused the report (4xx); retrying cannot help.
    #[error("report refused with HTTP {status} after {attempts} attempt(s)")]
    Refused { status: u16, attempts: u32 },
    /// The deadline came before any attempt succeeded.
    #[error("report not delivered by the deadline after {attempts} attempt(s): {last_error}")]
    DeadlineReached { attempts: u32, last_error: String },
    #[error("could not build the HTTP client: {0}")]
    Client(String),
}

/// Reads and parses the job input from `reader`, refusing more than
/// [`MAX_INPUT_BYTES`].
pub async fn read_input(reader: impl AsyncRead + Unpin) -> Result<JobInput, JobError> {
    let mut buf = Vec::new();
    reader
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut buf)
        .await
        .map_err(JobError::Read)?;
    if buf.len() as u64 > MAX_INPUT_BYTES {
        return Err(JobError::TooLarge);
    }
    serde_json::from_slice(&buf).map_err(|e| JobError::Parse(describe_parse_error(&e)))
}

/// serde's message for a type or value mismatch quotes the value; keep only
/// messages that cannot (syntax, missing or unknown fields) and the position.
fn describe_parse_error(e: &serde_json::Error) -> String {
    let message = e.to_string();
    let quotes_no_value = e.is_syntax()
        || e.is_eof()
        || message.starts_with("missing field")
        || message.starts_with("unknown field")
        || message.starts_with("duplicate field");
    if quotes_no_value {
        message
    } else {
        format!(
            "a field has the wrong type or value at line {} column {}",
            e.line(),
            e.column()
        )
    }
}

/// Opens the configured data sources; one that cannot be opened is logged
/// and left out, so the investigation reports on what it could see. The
/// live connectors allow every request themselves: only the loop's gate
/// decides (see [`open_sources_guarded`]).
pub fn open_sources(
    configs: &[DataSourceConfig],
    secrets: &crate::secrets::DomainSecrets,
    events: &mut EventLog,
) -> Vec<Box<dyn DataSource>> {
    open_sources_guarded(
        configs,
        secrets,
        &crate::connectors::default_guard(),
        events,
    )
}

/// [`open_sources`] with the guard every live connector asks before each
/// request it sends (the investigation's read gate in a job).
pub fn open_sources_guarded(
    configs: &[DataSourceConfig],
    secrets: &crate::secrets::DomainSecrets,
    guard: &std::sync::Arc<dyn warden_connectors::ReadGuard>,
    events: &mut EventLog,
) -> Vec<Box<dyn DataSource>> {
    let mut out: Vec<Box<dyn DataSource>> = Vec::new();
    for (i, config) in configs.iter().enumerate() {
        match config {
            DataSourceConfig::Prometheus(_)
            | DataSourceConfig::Loki(_)
            | DataSourceConfig::Kubernetes(_) => {
                out.extend(crate::connectors::open_live(config, secrets, guard, events));
            }
            DataSourceConfig::Bundle { path } => {
                let name = if i == 0 {
                    "bundle".to_string()
                } else {
                    format!("bundle-{}", i + 1)
                };
                match BundleSource::open_named(name.clone(), path) {
                    Ok(source) => out.push(Box::new(source)),
                    Err(e) => events.warn(
                        "source_unavailable",
                        json!({"source": name, "error": e.to_string()}),
                    ),
                }
            }
        }
    }
    out
}

/// POSTs the report until it is accepted, refused, or the deadline passes.
/// Returns the number of attempts it took.
pub async fn deliver(
    report: &Report,
    url: &str,
    credential: &SecretString,
    deadline: DateTime<Utc>,
    policy: &DeliveryPolicy,
    events: &mut EventLog,
) -> Result<u32, DeliveryError> {
    let client = reqwest::Client::builder()
        .build()
        .map_err(|e| DeliveryError::Client(e.to_string()))?;
    let mut backoff = policy.initial_backoff;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let left = (deadline - Utc::now()).to_std().unwrap_or_default();
        let error = if left.is_zero() {
            "deadline reached".to_string()
        } else {
            let sent = client
                .post(url)
                .bearer_auth(credential.expose_secret())
                .json(report)
                .timeout(policy.request_timeout.min(left))
                .send()
                .await;
            match sent {
                Ok(resp) if resp.status().is_success() => {
                    events.info(
                        "report_delivered",
                        json!({"attempts": attempt, "status": resp.status().as_u16()}),
                    );
                    return Ok(attempt);
                }
                Ok(resp) if resp.status().is_client_error() => {
                    let status = resp.status().as_u16();
                    events.error(
                        "report_delivery_failed",
                        json!({"attempt": attempt, "error": format!("HTTP {status}"), "retrying": false}),
                    );
                    return Err(DeliveryError::Refused {
                        status,
                        attempts: attempt,
                    });
                }
                Ok(resp) => format!("HTTP {}", resp.status().as_u16()),
                Err(e) => format!("request failed: {}", e.without_url()),
            }
        };
        let left = (deadline - Utc::now()).to_std().unwrap_or_default();
        let retrying = left > backoff;
        events.warn(
            "report_delivery_failed",
            json!({"attempt": attempt, "error": error, "retrying": retrying}),
        );
        if !retrying {
            return Err(DeliveryError::DeadlineReached {
                attempts: attempt,
                last_error: error,
            });
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(policy.max_backoff);
    }
}

/// The job: stdin → investigation → report delivery; events to stdout.
pub async fn run_job() -> i32 {
    run_job_with(
        tokio::io::stdin(),
        Box::new(std::io::stdout()),
        &DeliveryPolicy::default(),
    )
    .await
}

/// [`run_job`] with its input, log sink and delivery policy supplied.
pub async fn run_job_with(
    input: impl AsyncRead + Unpin,
    log: Box<dyn Write + Send>,
    policy: &DeliveryPolicy,
) -> i32 {
    let mut events = EventLog::new("", log);
    let job = match read_input(input).await {
        Ok(job) => job,
        Err(e) => {
            events.error("failed", json!({"error": e.to_string()}));
            return EXIT_BAD_INPUT;
        }
    };
    run_input(job, events, policy).await
}

/// The job once its input is in hand, however it arrived (stdin or the
/// bootstrap endpoint).
pub async fn run_input(job: JobInput, mut events: EventLog, policy: &DeliveryPolicy) -> i32 {
    let JobInput {
        input,
        result_credential,
        identity,
    } = job;
    events.set_investigation_id(input.investigation_id.as_str());
    // Held for the connectors that need credentials; the bundle source
    // needs none. Dropped (zeroed) when the job ends.
    let secrets = match &identity {
        Some(identity) => crate::secrets::fetch(identity, &mut events).await,
        None => crate::secrets::DomainSecrets::default(),
    };

    // The same gate the loop asks decides each request of the connectors.
    let guard = std::sync::Arc::new(crate::gate::ReadGate::for_input(&input)).guard();
    let sources = open_sources_guarded(&input.data_sources, &secrets, &guard, &mut events);
    // A stuck query must not eat the time reserved for delivery.
    let reasoning_time = (input.deadline - Utc::now()).to_std().unwrap_or_default();
    let report = match tokio::time::timeout(
        reasoning_time,
        crate::llm::reason(&input, &sources, &secrets, &mut events),
    )
    .await
    {
        Ok(report) => report,
        Err(_) => {
            events.error(
                "failed",
                json!({"error": "investigation did not finish before the deadline"}),
            );
            return EXIT_NOT_DELIVERED;
        }
    };
    match deliver(
        &report,
        &input.report_url,
        &result_credential,
        input.deadline,
        policy,
        &mut events,
    )
    .await
    {
        Ok(_) => EXIT_DELIVERED,
        Err(e) => {
            events.error("failed", json!({"error": e.to_string()}));
            EXIT_NOT_DELIVERED
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_badly_typed_credential_is_not_quoted_in_the_error() {
        // The credential comes first, so it is the field that fails.
        let doc = br#"{"result_credential": 987654321, "input": {}}"#;
        let err = read_input(&doc[..]).await.unwrap_err().to_string();
        assert!(!err.contains("987654321"), "{err}");
        assert!(err.contains("line 1"), "{err}");
    }

    #[tokio::test]
    async fn a_missing_field_is_named() {
        let err = read_input(&br#"{"result_credential": "x"}"#[..])
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field `input`"), "{err}");
    }
}
