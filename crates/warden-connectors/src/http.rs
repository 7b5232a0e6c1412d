//! One GET with a time budget, retries and a size limit, for the HTTP
//! connectors.
//!
//! A query has one time budget covering every attempt and every backoff, so
//! that a connector answers (possibly with "unavailable") within its
//! configured timeout whatever the server does. 429, 5xx and connection
//! errors are retried with exponential backoff, or after `Retry-After` when
//! the server sends one (in seconds) that fits in the budget. Other 4xx
//! answers are final: asking again will not change them.
//!
//! Bodies are streamed and cut at the size limit rather than buffered whole,
//! so a runaway answer costs at most the limit in memory.

use std::time::Duration;

use tokio::time::Instant;
use warden_core::ports::DataError;

use crate::credentials::Credentials;

/// Timeouts, retries and size limit of one connector.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Budget for one query: every attempt and backoff included.
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub retries: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Bytes read from one response at most; the rest is cut.
    pub max_response_bytes: u64,
}

impl RetryPolicy {
    pub fn new(timeout_seconds: u64, retries: u32, max_response_bytes: u64) -> Self {
        RetryPolicy {
            timeout: Duration::from_secs(timeout_seconds.max(1)),
            retries,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(2),
            max_response_bytes,
        }
    }
}

/// A response body, possibly cut at the size limit.
#[derive(Debug)]
pub(crate) struct Body {
    pub bytes: Vec<u8>,
    pub truncated: bool,
}

/// Bytes of an error body kept for the message.
const ERROR_EXCERPT_BYTES: usize = 4096;

pub(crate) fn unavailable(source: &str, detail: impl Into<String>) -> DataError {
    DataError::Unavailable {
        source_name: source.to_string(),
        detail: detail.into(),
    }
}

pub(crate) fn malformed(source: &str, detail: impl Into<String>) -> DataError {
    DataError::Malformed {
        source_name: source.to_string(),
        detail: detail.into(),
    }
}

/// `5s`, `1.5s`, `250ms`.
pub(crate) fn seconds(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{}ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

fn attempts(n: u32) -> String {
    if n == 1 {
        "1 attempt".to_string()
    } else {
        format!("{n} attempts")
    }
}

/// An error and its causes on one line, without the URL.
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// A short, single-line rendering of an error body. Prometheus and Loki
/// JSON errors give `errorType: error`.
fn excerpt(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body)
        && let Some(error) = v.get("error").and_then(|e| e.as_str())
    {
        return match v.get("errorType").and_then(|t| t.as_str()) {
            Some(kind) => format!("{kind}: {error}"),
            None => error.to_string(),
        };
    }
    let text = String::from_utf8_lossy(body);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    one_line.chars().take(200).collect()
}

fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let value = resp.headers().get(reqwest::header::RETRY_AFTER)?;
    let secs: u64 = value.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs))
}

/// Reads at most `limit` bytes of the body.
async fn read_limited(mut resp: reqwest::Response, limit: u64) -> Result<Body, reqwest::Error> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut bytes = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = limit.saturating_sub(bytes.len());
        if chunk.len() > room {
            bytes.extend_from_slice(chunk.get(..room).unwrap_or_default());
            return Ok(Body {
                bytes,
                truncated: true,
            });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Body {
        bytes,
        truncated: false,
    })
}

/// GETs `url` under `policy`; see the module docs.
pub(crate) async fn get(
    client: &reqwest::Client,
    source: &str,
    url: reqwest::Url,
    credentials: &Credentials,
    headers: &[(&'static str, String)],
    policy: &RetryPolicy,
) -> Result<Body, DataError> {
    let started = Instant::now();
    let deadline = started + policy.timeout;
    let timed_out = |n: u32| {
        unavailable(
            source,
            format!(
                "timeout after {} ({})",
                seconds(policy.timeout),
                attempts(n)
            ),
        )
    };
    let mut backoff = policy.initial_backoff;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out(attempt - 1));
        }
        let mut request = client.get(url.clone()).timeout(left);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let sent = credentials.apply(request).send().await;
        let (error, wait) = match sent {
            Ok(resp) if resp.status().is_success() => {
                match read_limited(resp, policy.max_response_bytes).await {
                    Ok(body) => return Ok(body),
                    Err(e) if e.is_timeout() => return Err(timed_out(attempt)),
                    Err(e) => (format!("reading the answer failed: {}", describe(e)), None),
                }
            }
            Ok(resp) => {
                let status = resp.status();
                let wait = retry_after(&resp);
                let body = read_limited(resp, ERROR_EXCERPT_BYTES as u64)
                    .await
                    .map(|b| excerpt(&b.bytes))
                    .unwrap_or_default();
                let text = if body.is_empty() {
                    format!("HTTP {}", status.as_u16())
                } else {
                    format!("HTTP {}: {body}", status.as_u16())
                };
                if !(status.as_u16() == 429 || status.is_server_error()) {
                    return Err(unavailable(source, text));
                }
                (text, wait)
            }
            Err(e) if e.is_timeout() => return Err(timed_out(attempt)),
            Err(e) => (describe(e), None),
        };
        if attempt > policy.retries {
            return Err(unavailable(
                source,
                format!("{error} (gave up after {})", attempts(attempt)),
            ));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let pause = wait.unwrap_or(backoff);
        if pause >= left {
            let why = match wait {
                Some(w) => format!(
                    "{error}; Retry-After {} exceeds the time left of the {} budget",
                    seconds(w),
                    seconds(policy.timeout)
                ),
                None => format!(
                    "{error}; no time left for a retry within {}",
                    seconds(policy.timeout)
                ),
            };
            return Err(unavailable(
                source,
                format!("{why} (gave up after {})", attempts(attempt)),
            ));
        }
        tokio::time::sleep(pause).await;
        backoff = (backoff * 2).min(policy.max_backoff);
    }
}

/// Builds the HTTP client a connector uses.
pub(crate) fn client(source: &str) -> Result<reqwest::Client, crate::ConnectorError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| crate::ConnectorError::Client {
            source_name: source.to_string(),
            detail: describe(e),
        })
}

/// Parses a base URL and appends `path` to whatever path it has (a
/// Prometheus behind `/prometheus/` keeps that prefix).
pub(crate) fn endpoint(
    source: &str,
    base: &reqwest::Url,
    path: &str,
    params: &[(&str, String)],
) -> Result<reqwest::Url, DataError> {
    let joined = format!("{}{}", base.as_str().trim_end_matches('/'), path);
    reqwest::Url::parse_with_params(&joined, params)
        .map_err(|e| unavailable(source, format!("bad URL {joined}: {e}")))
}

pub(crate) fn base_url(source: &str, url: &str) -> Result<reqwest::Url, crate::ConnectorError> {
    // A URL with `@` may carry credentials: never echo it.
    let shown = if url.contains('@') {
        "the URL".to_string()
    } else {
        format!("{url:?}")
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| crate::ConnectorError::Config {
        source_name: source.to_string(),
        field: "url",
        detail: format!("{shown}: {e}"),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(crate::ConnectorError::Config {
            source_name: source.to_string(),
            field: "url",
            detail: format!("{shown}: only http and https are supported"),
        });
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        // Credentials belong in the domain secret, not in configuration.
        return Err(crate::ConnectorError::Config {
            source_name: source.to_string(),
            field: "url",
            detail: "must not carry credentials; use credentials_domain".to_string(),
        });
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(seconds(Duration::from_secs(5)), "5s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5s");
        assert_eq!(seconds(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn json_errors_are_summarised() {
        assert_eq!(
            excerpt(br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#),
            "bad_data: parse error"
        );
        assert_eq!(excerpt(b"upstream\n  down"), "upstream down");
    }

    #[test]
    fn urls_with_credentials_are_refused() {
        let e = base_url("p", "http://u:pw@host:9090")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("pw"), "{e}");
        assert!(base_url("p", "ftp://host").is_err());
        let base = base_url("p", "http://host:9090/prom/").unwrap();
        let url = endpoint(
            "p",
            &base,
            "/api/v1/query",
            &[("query", "up{a=\"b\"}".into())],
        )
        .unwrap();
        assert_eq!(url.path(), "/prom/api/v1/query");
        assert_eq!(url.query_pairs().next().unwrap().1, "up{a=\"b\"}");
    }
}
