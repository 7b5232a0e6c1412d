//! The Kubernetes job's way to its input.
//!
//! A pod has no pipe from the control plane, and its spec must hold no
//! secret, so the job fetches the document a local job reads on stdin: it
//! presents its projected service-account token (a file the kubelet writes
//! and rotates) to `POST {control plane}/api/v1/jobs/bootstrap`, which
//! verifies it with a TokenReview and answers once with `{input,
//! result_credential, identity}`. From there the job runs exactly as the
//! stdin path does.
//!
//! Connection errors and 5xx are retried for a while (the control plane may
//! be restarting); a 4xx is final, since a refused token will not become
//! valid, and the job exits with [`EXIT_BAD_INPUT`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use warden_core::JobInput;

use crate::events::EventLog;
use crate::job::{
    DeliveryPolicy, EXIT_BAD_INPUT, JobError, MAX_INPUT_BYTES, read_input, run_input,
};

/// How the bootstrap request is retried.
#[derive(Debug, Clone, PartialEq)]
pub struct BootstrapPolicy {
    /// Retries stop after this long; the pod then fails and its Job with it.
    pub give_up_after: Duration,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub request_timeout: Duration,
}

impl Default for BootstrapPolicy {
    fn default() -> Self {
        BootstrapPolicy {
            give_up_after: Duration::from_secs(120),
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapFetchError {
    #[error("cannot read the token file {}: {source}", path.display())]
    Token {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the token file {} is empty", .0.display())]
    EmptyToken(PathBuf),
    /// The control plane answered 4xx; its message never holds a secret.
    #[error("the control plane refused the bootstrap with HTTP {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("no answer from the control plane after {attempts} attempt(s): {last_error}")]
    Unreachable { attempts: u32, last_error: String },
    #[error("could not build the HTTP client: {0}")]
    Client(String),
    #[error(transparent)]
    Input(#[from] JobError),
}

fn read_token(path: &Path) -> Result<SecretString, BootstrapFetchError> {
    let raw = std::fs::read_to_string(path).map_err(|source| BootstrapFetchError::Token {
        path: path.to_path_buf(),
        source,
    })?;
    let token = raw.trim();
    if token.is_empty() {
        return Err(BootstrapFetchError::EmptyToken(path.to_path_buf()));
    }
    Ok(SecretString::from(token.to_string()))
}

/// The `message` of the control plane's JSON error, cut short.
fn refusal_message(body: &[u8]) -> String {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.pointer("/error/message")?.as_str().map(str::to_string))
        .unwrap_or_else(|| "no message".to_string());
    message.chars().take(300).collect()
}

/// Reads at most [`MAX_INPUT_BYTES`] of the body.
async fn capped_body(mut resp: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| e.without_url().to_string())?
    {
        body.extend_from_slice(&chunk);
        if body.len() as u64 > MAX_INPUT_BYTES {
            return Err(format!(
                "the document is larger than {MAX_INPUT_BYTES} bytes"
            ));
        }
    }
    Ok(body)
}

/// Claims the job's input document from the control plane.
pub async fn fetch_input(
    url: &str,
    token_file: &Path,
    policy: &BootstrapPolicy,
    events: &mut EventLog,
) -> Result<JobInput, BootstrapFetchError> {
    let client = reqwest::Client::builder()
        .build()
        .map_err(|e| BootstrapFetchError::Client(e.to_string()))?;
    let started = tokio::time::Instant::now();
    let mut backoff = policy.initial_backoff;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        // Read on every attempt: the kubelet rotates the file.
        let token = read_token(token_file)?;
        let sent = client
            .post(url)
            .bearer_auth(token.expose_secret())
            .timeout(policy.request_timeout)
            .send()
            .await;
        let error = match sent {
            Ok(resp) if resp.status().is_success() => {
                let body = capped_body(resp).await;
                match body {
                    Ok(body) => {
                        // Parsed without quoting values; the bytes hold the
                        // credentials and are dropped right after.
                        let job = read_input(&body[..]).await?;
                        events.info("bootstrap_claimed", json!({"attempts": attempt}));
                        return Ok(job);
                    }
                    Err(e) => e,
                }
            }
            Ok(resp) if resp.status().is_client_error() => {
                let status = resp.status().as_u16();
                let body = capped_body(resp).await.unwrap_or_default();
                return Err(BootstrapFetchError::Refused {
                    status,
                    message: refusal_message(&body),
                });
            }
            Ok(resp) => format!("HTTP {}", resp.status().as_u16()),
            Err(e) => format!("request failed: {}", e.without_url()),
        };
        let retrying = started.elapsed() + backoff < policy.give_up_after;
        events.warn(
            "bootstrap_failed",
            json!({"attempt": attempt, "error": error, "retrying": retrying}),
        );
        if !retrying {
            return Err(BootstrapFetchError::Unreachable {
                attempts: attempt,
                last_error: error,
            });
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(policy.max_backoff);
    }
}

/// The Kubernetes job: bootstrap → investigation → report delivery.
pub async fn run_job_bootstrap(url: &str, token_file: &Path) -> i32 {
    run_job_bootstrap_with(
        url,
        token_file,
        Box::new(std::io::stdout()),
        &BootstrapPolicy::default(),
        &DeliveryPolicy::default(),
    )
    .await
}

/// [`run_job_bootstrap`] with its log sink and policies supplied.
pub async fn run_job_bootstrap_with(
    url: &str,
    token_file: &Path,
    log: Box<dyn Write + Send>,
    bootstrap: &BootstrapPolicy,
    delivery: &DeliveryPolicy,
) -> i32 {
    let mut events = EventLog::new("", log);
    match fetch_input(url, token_file, bootstrap, &mut events).await {
        Ok(job) => run_input(job, events, delivery).await,
        Err(e) => {
            events.error("failed", json!({"error": e.to_string()}));
            EXIT_BAD_INPUT
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_token_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "\n").unwrap();
        let err = read_token(&path).unwrap_err().to_string();
        assert!(err.contains("is empty"), "{err}");
    }

    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use axum::http::{HeaderMap, StatusCode};

    fn quick() -> BootstrapPolicy {
        BootstrapPolicy {
            give_up_after: Duration::from_millis(400),
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(20),
            request_timeout: Duration::from_secs(2),
        }
    }

    /// A control plane answering with `answers` in turn (the last one
    /// repeated), recording the bearer tokens it saw.
    async fn control_plane(answers: Vec<(StatusCode, String)>) -> (String, Arc<AtomicU32>) {
        let calls = Arc::new(AtomicU32::new(0));
        let seen = Arc::clone(&calls);
        let app = axum::Router::new().route(
            "/api/v1/jobs/bootstrap",
            axum::routing::post(move |headers: HeaderMap| {
                let n = seen.fetch_add(1, Ordering::SeqCst) as usize;
                let answer = answers.get(n).or(answers.last()).cloned().unwrap();
                async move {
                    assert_eq!(headers["authorization"], "Bearer projected-token");
                    answer
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/api/v1/jobs/bootstrap",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, calls)
    }

    fn token_file(dir: &tempfile::TempDir) -> PathBuf {
        let path = dir.path().join("token");
        std::fs::write(&path, "projected-token\n").unwrap();
        path
    }

    const DOCUMENT: &str = r#"{"result_credential": "one-time", "input": {}}"#;

    #[tokio::test]
    async fn a_restarting_control_plane_is_retried_and_a_refusal_is_final() {
        let dir = tempfile::tempdir().unwrap();
        let token = token_file(&dir);
        let (url, calls) = control_plane(vec![
            (StatusCode::SERVICE_UNAVAILABLE, String::new()),
            (
                StatusCode::CONFLICT,
                r#"{"error":{"message":"already claimed: pod p"}}"#.into(),
            ),
        ])
        .await;
        let (mut events, _log) = EventLog::capture("");
        let err = fetch_input(&url, &token, &quick(), &mut events)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, BootstrapFetchError::Refused { status: 409, message } if message == "already claimed: pod p"),
            "{err}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn the_document_is_read_as_the_stdin_document_is() {
        let dir = tempfile::tempdir().unwrap();
        let token = token_file(&dir);
        let (url, _) = control_plane(vec![(StatusCode::OK, DOCUMENT.into())]).await;
        let (mut events, _log) = EventLog::capture("");
        // The same parser as stdin: a missing field is named, no value quoted.
        let err = fetch_input(&url, &token, &quick(), &mut events)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field"), "{err}");
        assert!(!err.contains("one-time"), "{err}");
    }

    #[tokio::test]
    async fn an_unreachable_control_plane_is_given_up_on_in_time() {
        let dir = tempfile::tempdir().unwrap();
        let token = token_file(&dir);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/api/v1/jobs/bootstrap");
        let (mut events, _log) = EventLog::capture("");
        let started = std::time::Instant::now();
        let err = fetch_input(&url, &token, &quick(), &mut events)
            .await
            .unwrap_err();
        assert!(
            matches!(err, BootstrapFetchError::Unreachable { attempts, .. } if attempts > 1),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(3));
        let missing = fetch_input(&url, &dir.path().join("nope"), &quick(), &mut events)
            .await
            .unwrap_err();
        assert!(
            matches!(missing, BootstrapFetchError::Token { .. }),
            "{missing}"
        );
    }

    #[test]
    fn the_refusal_message_is_taken_from_the_json_error() {
        let body = br#"{"error":{"status":409,"message":"already claimed: x"}}"#;
        assert_eq!(refusal_message(body), "already claimed: x");
        assert_eq!(refusal_message(b"<html>"), "no message");
    }
}
