//! A lenient client for OpenAI-compatible chat-completions servers.
//!
//! Servers differ (OpenAI, vLLM, Ollama, llama.cpp, LiteLLM): some omit
//! `usage`, some send `content: null` next to tool calls, some send tool
//! arguments as an object instead of a JSON string, some invent finish
//! reasons. The response is therefore read from a `serde_json::Value` field
//! by field, and only a response with no usable message at all is an error.
//!
//! Each request has its own timeout; 429, 5xx, timeouts, connection errors
//! and garbled bodies are retried with exponential backoff and jitter,
//! honouring `Retry-After` (seconds or an HTTP date), and never past the
//! caller's deadline. Every attempt is reported back ([`Attempt`]) so the
//! cost ledger sees retries too.
//!
//! The API key is sent only as `Authorization: Bearer`; it is never part of
//! an error, and a server that echoes it back has it redacted.

use std::time::{Duration, Instant};

use chrono::Utc;
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{Value, json};

use crate::budget::estimate_tokens;

/// One chat message as sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub role: String,
    /// `null` for an assistant message that only calls tools.
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    pub fn system(text: impl Into<String>) -> Self {
        Self::plain("system", text)
    }

    pub fn user(text: impl Into<String>) -> Self {
        Self::plain("user", text)
    }

    fn plain(role: &str, text: impl Into<String>) -> Self {
        Message {
            role: role.to_string(),
            content: Some(text.into()),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
}

/// A chat-completions request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<String>,
    pub max_tokens: u32,
    pub temperature: f64,
}

impl ChatRequest {
    /// The body as sent; its size is what input tokens are estimated from.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Why the model stopped. Unknown reasons are kept, not refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
    Other(String),
    Missing,
}

impl FinishReason {
    fn parse(v: Option<&Value>) -> Self {
        match v.and_then(Value::as_str) {
            None => FinishReason::Missing,
            Some("stop") | Some("eos") => FinishReason::Stop,
            Some("length") => FinishReason::Length,
            // `function_call` is the pre-tools name of the same thing.
            Some("tool_calls") | Some("function_call") => FinishReason::ToolCalls,
            Some("content_filter") => FinishReason::ContentFilter,
            Some(other) => FinishReason::Other(other.to_string()),
        }
    }
}

/// A tool call as the model made it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as an object; `Err` describes arguments that are not
    /// a JSON object (the call is then skipped, never guessed at).
    pub arguments: Result<serde_json::Map<String, Value>, String>,
    /// The call as received, to hand back to the server in a later turn.
    pub raw: Value,
}

/// Token counts as the server reported them, or as estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// True when the server sent no usage and the counts are estimates.
    pub estimated: bool,
}

/// The model's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub content: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    pub finish_reason: FinishReason,
    pub usage: Usage,
}

/// How one HTTP attempt ended, for the cost ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Ok,
    Error,
    Timeout,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Ok => "ok",
            AttemptOutcome::Error => "error",
            AttemptOutcome::Timeout => "timeout",
        }
    }
}

/// One HTTP attempt. Tokens are what the provider plausibly billed: a
/// refused (429, 5xx) or unreachable attempt none, a timed-out one its
/// input (the server may have processed it), a garbled 200 its input and
/// the body it sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub outcome: AttemptOutcome,
    pub latency: Duration,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// What went wrong, for the investigation log; never holds the key.
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LlmError {
    /// The server refused the request itself (4xx other than 408 and 429):
    /// retrying the same request cannot help.
    #[error("the LLM server refused the request with HTTP {status}: {detail}")]
    Rejected { status: u16, detail: String },
    /// Every attempt failed with a retryable error.
    #[error("the LLM server failed {attempts} attempt(s); last: {last}")]
    GaveUp { attempts: u32, last: String },
    /// The deadline left no time for (another) attempt.
    #[error("no time left before the deadline after {attempts} attempt(s); last: {last}")]
    Deadline { attempts: u32, last: String },
    /// The HTTP client could not be built.
    #[error("could not build the HTTP client: {0}")]
    Client(String),
}

impl LlmError {
    /// Whether the failure was a request timing out.
    pub fn is_timeout(&self) -> bool {
        match self {
            LlmError::GaveUp { last, .. } | LlmError::Deadline { last, .. } => {
                last.contains("timed out")
            }
            _ => false,
        }
    }
}

/// The result of one logical call: every attempt and the answer.
#[derive(Debug)]
pub struct Exchange {
    pub attempts: Vec<Attempt>,
    pub result: Result<Completion, LlmError>,
}

/// Timeouts and retries.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub request_timeout: Duration,
    /// Attempts after the first.
    pub max_retries: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            request_timeout: Duration::from_secs(60),
            max_retries: 4,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(20),
        }
    }
}

/// The chat-completions client.
pub struct ChatClient {
    http: reqwest::Client,
    url: String,
    api_key: Option<SecretString>,
    policy: RetryPolicy,
}

impl std::fmt::Debug for ChatClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatClient")
            .field("url", &self.url)
            .field("has_api_key", &self.api_key.is_some())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// A failed attempt, before it is decided whether to retry.
struct Failure {
    retryable: bool,
    status: Option<u16>,
    retry_after: Option<Duration>,
    detail: String,
}

impl ChatClient {
    pub fn new(
        base_url: &str,
        api_key: Option<SecretString>,
        policy: RetryPolicy,
    ) -> Result<Self, LlmError> {
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| LlmError::Client(e.without_url().to_string()))?;
        Ok(ChatClient {
            http,
            url: format!("{}/chat/completions", base_url.trim_end_matches('/')),
            api_key,
            policy,
        })
    }

    /// Sends `request`, retrying as the module docs say, until it succeeds,
    /// fails for good, or `deadline` leaves no time.
    pub async fn complete(&self, request: &ChatRequest, deadline: Instant) -> Exchange {
        let body = request.body();
        let input_estimate = estimate_tokens(body.len());
        let mut attempts = Vec::new();
        let mut retries = 0u32;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let last = last_detail(&attempts);
                return Exchange {
                    attempts,
                    result: Err(LlmError::Deadline {
                        attempts: retries,
                        last,
                    }),
                };
            }
            let started = Instant::now();
            let outcome = self
                .attempt(&body, self.policy.request_timeout.min(left))
                .await;
            let latency = started.elapsed();
            let failure = match outcome {
                Ok(completion) => {
                    attempts.push(Attempt {
                        outcome: AttemptOutcome::Ok,
                        latency,
                        input_tokens: completion.usage.input_tokens,
                        output_tokens: completion.usage.output_tokens,
                        detail: None,
                    });
                    return Exchange {
                        attempts,
                        result: Ok(completion),
                    };
                }
                Err((failure, billed_output)) => {
                    let timed_out = failure.detail.contains("timed out");
                    let garbled = billed_output.is_some();
                    attempts.push(Attempt {
                        outcome: if timed_out {
                            AttemptOutcome::Timeout
                        } else {
                            AttemptOutcome::Error
                        },
                        latency,
                        input_tokens: if timed_out || garbled {
                            input_estimate
                        } else {
                            0
                        },
                        output_tokens: billed_output.unwrap_or(0),
                        detail: Some(failure.detail.clone()),
                    });
                    failure
                }
            };
            retries += 1;
            if !failure.retryable {
                return Exchange {
                    attempts,
                    result: Err(LlmError::Rejected {
                        status: failure.status.unwrap_or(0),
                        detail: failure.detail,
                    }),
                };
            }
            if retries > self.policy.max_retries {
                return Exchange {
                    attempts,
                    result: Err(LlmError::GaveUp {
                        attempts: retries,
                        last: failure.detail,
                    }),
                };
            }
            let wait = match failure.retry_after {
                Some(asked) => asked,
                None => self.backoff(retries),
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if wait >= left {
                let last = match failure.retry_after {
                    Some(asked) => format!(
                        "{} (the server asks to wait {:.1}s, past the deadline)",
                        failure.detail,
                        asked.as_secs_f64()
                    ),
                    None => failure.detail,
                };
                return Exchange {
                    attempts,
                    result: Err(LlmError::Deadline {
                        attempts: retries,
                        last,
                    }),
                };
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Exponential backoff with jitter: a random delay in the upper half of
    /// `initial * 2^(n-1)`, capped, so that clients retrying together spread.
    fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .policy
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
            .min(self.policy.max_backoff);
        let factor = rand::rng().random_range(0.5..=1.0);
        exp.mul_f64(factor)
    }

    /// One HTTP attempt. On failure, also the output tokens a garbled but
    /// successful response plausibly billed.
    async fn attempt(
        &self,
        body: &[u8],
        timeout: Duration,
    ) -> Result<Completion, (Failure, Option<u64>)> {
        let mut req = self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .timeout(timeout)
            .body(body.to_vec());
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key.expose_secret());
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Err((self.transport_failure(&e), None)),
        };
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let text = match resp.text().await {
            Ok(t) => t,
            Err(e) => return Err((self.transport_failure(&e), None)),
        };
        if !status.is_success() {
            let code = status.as_u16();
            let retryable = code == 429 || code == 408 || status.is_server_error();
            return Err((
                Failure {
                    retryable,
                    status: Some(code),
                    retry_after,
                    detail: format!("HTTP {code}: {}", self.excerpt(&text)),
                },
                None,
            ));
        }
        match parse_completion(&text, estimate_tokens(body.len())) {
            Ok(c) => Ok(c),
            Err(why) => Err((
                Failure {
                    retryable: true,
                    status: Some(status.as_u16()),
                    retry_after: None,
                    detail: format!("malformed response: {why}"),
                },
                Some(estimate_tokens(text.len())),
            )),
        }
    }

    fn transport_failure(&self, e: &reqwest::Error) -> Failure {
        let detail = if e.is_timeout() {
            "request timed out".to_string()
        } else if e.is_connect() {
            format!("connection failed: {}", self.redact(&source_chain(e)))
        } else {
            format!("request failed: {}", self.redact(&source_chain(e)))
        };
        Failure {
            retryable: true,
            status: None,
            retry_after: None,
            detail,
        }
    }

    /// The start of a response body, for an error message.
    fn excerpt(&self, text: &str) -> String {
        let cut: String = text.chars().take(200).collect();
        self.redact(cut.trim())
    }

    fn redact(&self, text: &str) -> String {
        match &self.api_key {
            Some(key) if !key.expose_secret().is_empty() => {
                text.replace(key.expose_secret(), "[redacted]")
            }
            _ => text.to_string(),
        }
    }
}

fn source_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn last_detail(attempts: &[Attempt]) -> String {
    attempts
        .last()
        .and_then(|a| a.detail.clone())
        .unwrap_or_else(|| "no attempt was made".to_string())
}

/// `Retry-After` as seconds (integer or decimal) or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&Utc) - Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// Reads a chat-completions response leniently (see the module docs).
/// `input_estimate` stands in for a missing `usage.prompt_tokens`.
pub fn parse_completion(text: &str, input_estimate: u64) -> Result<Completion, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
    if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
        let msg = err
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| err.to_string());
        return Err(format!(
            "the server reported an error: {}",
            msg.chars().take(200).collect::<String>()
        ));
    }
    let choice = v
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or("no choices")?;
    let message = choice
        .get("message")
        .or_else(|| choice.get("delta"))
        .ok_or("the first choice has no message")?;
    let content = content_text(message.get("content"));
    let mut tool_calls = Vec::new();
    if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
        for (i, call) in calls.iter().enumerate() {
            tool_calls.push(tool_call(call, i));
        }
    } else if let Some(call) = message.get("function_call").filter(|c| c.is_object()) {
        // The pre-tools form: one call, no id.
        let wrapped = json!({"id": "call_0", "type": "function", "function": call});
        tool_calls.push(tool_call(&wrapped, 0));
    }
    if content.is_none() && tool_calls.is_empty() {
        return Err("the message has neither content nor tool calls".to_string());
    }
    let output_estimate = {
        let args: usize = tool_calls.iter().map(|c| c.raw.to_string().len()).sum();
        estimate_tokens(content.as_deref().map_or(0, str::len) + args)
    };
    let usage = v.get("usage");
    let count = |key: &str, alt: &str| {
        usage
            .and_then(|u| u.get(key).or_else(|| u.get(alt)))
            .and_then(Value::as_u64)
    };
    let reported_in = count("prompt_tokens", "input_tokens");
    let reported_out = count("completion_tokens", "output_tokens");
    let usage = Usage {
        input_tokens: reported_in.unwrap_or(input_estimate),
        output_tokens: reported_out.unwrap_or(output_estimate),
        estimated: reported_in.is_none() || reported_out.is_none(),
    };
    Ok(Completion {
        content,
        tool_calls,
        finish_reason: FinishReason::parse(choice.get("finish_reason")),
        usage,
    })
}

/// `content` as a string, from a string or an array of text parts.
fn content_text(v: Option<&Value>) -> Option<String> {
    let text = match v? {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| {
                p.as_str()
                    .map(str::to_string)
                    .or_else(|| p.get("text").and_then(Value::as_str).map(str::to_string))
            })
            .collect::<Vec<_>>()
            .join(""),
        _ => return None,
    };
    (!text.trim().is_empty()).then_some(text)
}

fn tool_call(call: &Value, index: usize) -> ToolCall {
    let id = call
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| format!("call_{index}"));
    let function = call.get("function").unwrap_or(call);
    let name = function
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let arguments = match function
        .get("arguments")
        .or_else(|| function.get("parameters"))
    {
        None | Some(Value::Null) => Ok(serde_json::Map::new()),
        Some(Value::Object(map)) => Ok(map.clone()),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(serde_json::Map::new()),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err("the arguments are not a JSON object".to_string()),
            Err(e) => Err(format!("the arguments are not valid JSON ({e})")),
        },
        Some(_) => Err("the arguments are neither an object nor a string".to_string()),
    };
    let mut raw = call.clone();
    if let Some(obj) = raw.as_object_mut() {
        obj.insert("id".to_string(), Value::String(id.clone()));
    }
    ToolCall {
        id,
        name,
        arguments,
        raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_content_with_string_arguments_is_a_tool_call() {
        let text = r#"{"choices":[{"message":{"role":"assistant","content":null,
            "tool_calls":[{"id":"c1","type":"function","function":{"name":"query_topology","arguments":"{\"purpose\":\"x\"}"}}]},
            "finish_reason":"tool_calls"}],"usage":{"prompt_tokens":12,"completion_tokens":3}}"#;
        let c = parse_completion(text, 99).unwrap();
        assert_eq!(c.content, None);
        assert_eq!(c.tool_calls.len(), 1);
        assert_eq!(c.tool_calls[0].name, "query_topology");
        assert_eq!(
            c.tool_calls[0].arguments.as_ref().unwrap()["purpose"],
            json!("x")
        );
        assert_eq!(c.usage.input_tokens, 12);
        assert!(!c.usage.estimated);
    }

    #[test]
    fn object_arguments_unknown_finish_reason_extra_fields_and_no_usage_are_accepted() {
        let text = r#"{"id":"x","weird":[1,2],"choices":[{"index":0,"extra":true,"message":{"content":"hi",
            "tool_calls":[{"function":{"name":"query_changes","arguments":{"purpose":"p"}}}]},
            "finish_reason":"because_i_felt_like_it"}]}"#;
        let c = parse_completion(text, 40).unwrap();
        assert_eq!(c.content.as_deref(), Some("hi"));
        assert_eq!(c.tool_calls[0].id, "call_0");
        assert!(c.tool_calls[0].arguments.is_ok());
        assert_eq!(
            c.finish_reason,
            FinishReason::Other("because_i_felt_like_it".into())
        );
        assert_eq!(c.usage.input_tokens, 40);
        assert!(c.usage.estimated);
        assert!(c.usage.output_tokens > 0);
    }

    #[test]
    fn bad_arguments_are_reported_not_guessed() {
        let text = r#"{"choices":[{"message":{"tool_calls":[{"id":"a","function":{"name":"query_logs","arguments":"{not json"}}]}}]}"#;
        let c = parse_completion(text, 1).unwrap();
        assert!(c.tool_calls[0].arguments.is_err());
    }

    #[test]
    fn missing_choices_and_non_json_are_errors_naming_the_problem() {
        assert!(
            parse_completion("{}", 1)
                .unwrap_err()
                .contains("no choices")
        );
        assert!(
            parse_completion("<html>", 1)
                .unwrap_err()
                .contains("not JSON")
        );
        assert!(
            parse_completion(r#"{"choices":[{"message":{"content":null}}]}"#, 1)
                .unwrap_err()
                .contains("neither content nor tool calls")
        );
        assert!(
            parse_completion(r#"{"error":{"message":"overloaded"}}"#, 1)
                .unwrap_err()
                .contains("overloaded")
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
        let soon = (Utc::now() + chrono::Duration::seconds(30))
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let wait = parse_retry_after(&soon).unwrap();
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        let past = "Wed, 21 Oct 2015 07:28:00 GMT";
        assert_eq!(parse_retry_after(past), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-3"), None);
    }
}
