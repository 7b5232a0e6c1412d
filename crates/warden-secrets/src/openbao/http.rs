//! The one place that talks HTTP to OpenBao and turns its answers into
//! [`SecretsError`]s.
//!
//! Timeouts are short (connect 2 s, whole request 5 s) because every caller
//! is on a path with a deadline: an investigation waiting to start, a job
//! waiting for its credential. Only failures to *connect* are retried (the
//! request never reached the server, so repeating it cannot create a second
//! token), and never past the deadline the caller gives.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::error::{DenyReason, SecretsError};

pub(crate) const BACKEND: &str = "openbao";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest server error text kept in an error message.
const MAX_DETAIL: usize = 300;

/// One API call. `path` is relative to `/v1/` and never carries a secret;
/// `redact` lists the secrets the request carries, scrubbed from any error
/// text the server echoes back.
pub(crate) struct Call<'a> {
    pub method: Method,
    pub path: String,
    pub token: Option<&'a SecretString>,
    pub body: Option<Value>,
    pub wrap_ttl: Option<Duration>,
    pub operation: &'static str,
    pub redact: Vec<&'a SecretString>,
}

impl<'a> Call<'a> {
    pub(crate) fn new(method: Method, path: impl Into<String>, operation: &'static str) -> Self {
        Call {
            method,
            path: path.into(),
            token: None,
            body: None,
            wrap_ttl: None,
            operation,
            redact: Vec::new(),
        }
    }

    pub(crate) fn token(mut self, token: &'a SecretString) -> Self {
        self.token = Some(token);
        self.redact.push(token);
        self
    }

    pub(crate) fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    pub(crate) fn redacting(mut self, secret: &'a SecretString) -> Self {
        self.redact.push(secret);
        self
    }

    pub(crate) fn wrapped(mut self, ttl: Duration) -> Self {
        self.wrap_ttl = Some(ttl);
        self
    }
}

/// What `sys/health` says.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Health {
    pub initialized: bool,
    pub sealed: bool,
    #[serde(default)]
    pub version: String,
}

#[derive(Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    base: String,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http").field("base", &self.base).finish()
    }
}

impl Http {
    /// A client for the server at `address` (`http://127.0.0.1:8200`).
    pub(crate) fn new(address: &str) -> Result<Self, SecretsError> {
        let address = address.trim_end_matches('/');
        let scheme_ok = address.starts_with("http://") || address.starts_with("https://");
        let parsed = reqwest::Url::parse(address).ok();
        if !scheme_ok || parsed.as_ref().is_none_or(|u| u.host().is_none()) {
            return Err(SecretsError::Invalid(format!(
                "OpenBao address {address:?} must be an http:// or https:// URL with a host"
            )));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SecretsError::Backend {
                backend: BACKEND,
                operation: "build HTTP client",
                detail: error_chain(&e),
            })?;
        Ok(Http {
            client,
            base: format!("{address}/v1/"),
        })
    }

    /// Sends `call` once. `Ok(None)` for an empty (204) answer.
    pub(crate) async fn send(&self, call: &Call<'_>) -> Result<Option<Value>, SecretsError> {
        let mut headers = HeaderMap::new();
        if let Some(token) = call.token {
            let mut value = HeaderValue::from_str(token.expose_secret()).map_err(|_| {
                SecretsError::Invalid(format!(
                    "{}: the token is not a valid header value",
                    call.operation
                ))
            })?;
            value.set_sensitive(true);
            headers.insert("X-Vault-Token", value);
        }
        if let Some(ttl) = call.wrap_ttl {
            let value = HeaderValue::from_str(&format!("{}s", ttl.as_secs().max(1)))
                .map_err(|_| SecretsError::Invalid("wrap TTL".into()))?;
            headers.insert("X-Vault-Wrap-TTL", value);
        }
        headers.insert("X-Vault-Request", HeaderValue::from_static("true"));
        let mut request = self
            .client
            .request(call.method.clone(), format!("{}{}", self.base, call.path))
            .headers(headers);
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            let detail = redact(&error_chain(&e), &call.redact);
            SecretsError::Unavailable {
                backend: BACKEND,
                operation: call.operation,
                detail,
            }
        })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| SecretsError::Unavailable {
                backend: BACKEND,
                operation: call.operation,
                detail: redact(&error_chain(&e), &call.redact),
            })?;
        if status.is_success() {
            if bytes.is_empty() || status == StatusCode::NO_CONTENT {
                return Ok(None);
            }
            return serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| SecretsError::Backend {
                    backend: BACKEND,
                    operation: call.operation,
                    detail: format!("answered {status} with malformed JSON: {e}"),
                });
        }
        let detail = redact(&server_errors(&bytes), &call.redact);
        Err(status_error(status, &call.path, call.operation, detail))
    }

    /// Sends `call`, retrying failures to connect until `until`.
    pub(crate) async fn send_until(
        &self,
        call: &Call<'_>,
        until: Instant,
    ) -> Result<Option<Value>, SecretsError> {
        let mut pause = Duration::from_millis(100);
        loop {
            match self.send(call).await {
                Err(e @ SecretsError::Unavailable { .. }) if is_connect_failure(&e) => {
                    if Instant::now() + pause >= until {
                        return Err(e);
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                other => return other,
            }
        }
    }

    /// `sys/health`, which answers even when sealed.
    pub(crate) async fn health(&self) -> Result<Health, SecretsError> {
        let call = Call::new(
            Method::GET,
            "sys/health?standbyok=true&sealedcode=200&uninitcode=200&perfstandbyok=true",
            "health check",
        );
        let value = self.send(&call).await?.unwrap_or(Value::Null);
        serde_json::from_value(value).map_err(|e| SecretsError::Backend {
            backend: BACKEND,
            operation: "health check",
            detail: format!("malformed answer: {e}"),
        })
    }
}

/// Marker put in front of connect failures so `send_until` can tell them
/// from timeouts (where the server may have acted on the request).
const CONNECT_MARK: &str = "could not connect: ";

fn is_connect_failure(err: &SecretsError) -> bool {
    matches!(err, SecretsError::Unavailable { detail, .. } if detail.starts_with(CONNECT_MARK))
}

/// A reqwest error and its causes in one line. The URL it names holds no
/// secret: tokens travel only in headers and bodies.
fn error_chain(err: &reqwest::Error) -> String {
    let prefix = if err.is_connect() {
        CONNECT_MARK
    } else if err.is_timeout() {
        "timed out: "
    } else {
        ""
    };
    let mut text = format!("{prefix}{err}");
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The `errors` array of an error answer, joined; or the start of the body.
fn server_errors(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<String>,
    }
    let text = match serde_json::from_slice::<Errors>(body) {
        Ok(e) if !e.errors.is_empty() => e.errors.join("; "),
        Ok(_) => "no error message".to_string(),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    text.chars().take(MAX_DETAIL).collect()
}

fn status_error(
    status: StatusCode,
    path: &str,
    operation: &'static str,
    detail: String,
) -> SecretsError {
    match status {
        StatusCode::SERVICE_UNAVAILABLE if detail.to_ascii_lowercase().contains("sealed") => {
            SecretsError::Sealed {
                backend: BACKEND,
                operation,
            }
        }
        StatusCode::SERVICE_UNAVAILABLE
        | StatusCode::BAD_GATEWAY
        | StatusCode::GATEWAY_TIMEOUT
        | StatusCode::TOO_MANY_REQUESTS => SecretsError::Unavailable {
            backend: BACKEND,
            operation,
            detail: format!("{status}: {detail}"),
        },
        StatusCode::FORBIDDEN => {
            SecretsError::denied(path_without_query(path), DenyReason::NotAllowed)
        }
        StatusCode::NOT_FOUND => SecretsError::NotFound {
            path: path_without_query(path),
        },
        _ => SecretsError::Backend {
            backend: BACKEND,
            operation,
            detail: format!("{status}: {detail}"),
        },
    }
}

fn path_without_query(path: &str) -> String {
    path.split('?').next().unwrap_or(path).to_string()
}

/// `text` with every occurrence of each secret replaced.
fn redact(text: &str, secrets: &[&SecretString]) -> String {
    let mut out = text.to_string();
    for secret in secrets {
        let s = secret.expose_secret();
        if s.len() >= 4 {
            out = out.replace(s, "[redacted]");
        }
    }
    out
}

/// Rejects names that would change the meaning of a URL path.
pub(crate) fn check_name(kind: &str, name: &str) -> Result<(), SecretsError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        Err(SecretsError::Invalid(format!(
            "{kind} {:?} must be 1-128 characters of A-Z, a-z, 0-9, -, _ and .",
            crate::domain::truncate(name, 128)
        )))
    }
}

/// `value` at a JSON pointer as a string, or a `Backend` error naming it.
pub(crate) fn str_at<'v>(
    value: &'v Value,
    pointer: &str,
    operation: &'static str,
) -> Result<&'v str, SecretsError> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .ok_or_else(|| SecretsError::Backend {
            backend: BACKEND,
            operation,
            detail: format!("answer lacks {pointer}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_answers_are_told_apart_from_other_unavailability() {
        let sealed = status_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "x",
            "op",
            "Vault is sealed".into(),
        );
        assert!(matches!(sealed, SecretsError::Sealed { .. }));
        let standby = status_error(StatusCode::SERVICE_UNAVAILABLE, "x", "op", "standby".into());
        assert!(matches!(standby, SecretsError::Unavailable { .. }));
        let denied = status_error(
            StatusCode::FORBIDDEN,
            "agent/data/x?y",
            "op",
            "permission denied".into(),
        );
        assert_eq!(
            denied.to_string(),
            "access to agent/data/x denied: not allowed"
        );
    }

    #[test]
    fn echoed_secrets_are_redacted_from_error_text() {
        let token = SecretString::from("s.abcdefgh".to_string());
        assert_eq!(
            redact("bad token s.abcdefgh here", &[&token]),
            "bad token [redacted] here"
        );
    }

    #[test]
    fn server_error_text_is_bounded() {
        let body = serde_json::json!({ "errors": ["x".repeat(1000)] }).to_string();
        assert_eq!(server_errors(body.as_bytes()).len(), MAX_DETAIL);
    }

    #[test]
    fn names_that_would_escape_a_url_path_are_refused() {
        for bad in ["", "..", "a/b", "a?b", "a b"] {
            assert!(check_name("role", bad).is_err(), "{bad:?}");
        }
        assert!(check_name("role", "warden-agent-shadow").is_ok());
    }

    #[test]
    fn addresses_without_a_scheme_or_host_are_refused() {
        assert!(Http::new("127.0.0.1:8200").is_err());
        assert!(Http::new("http://").is_err());
        assert!(Http::new("http://127.0.0.1:8200/").is_ok());
    }
}
