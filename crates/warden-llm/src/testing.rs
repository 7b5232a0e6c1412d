//! A scripted OpenAI-compatible chat-completions server for tests and the
//! token bench.
//!
//! Each request is recorded (headers, body, arrival time) and answered by
//! the next scripted [`Reply`]; once the script is used up, by the
//! responder, if one is set, which sees the request (so a test can play a
//! model that reacts to what it is sent), else with HTTP 500.

// Indexing a `serde_json::Value` by key yields `Null` for anything
// missing; it cannot panic.
#![allow(clippy::indexing_slicing)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Any status, body and headers.
    Raw {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Wait, then answer with the inner reply (a hang longer than the
    /// client's timeout is a timeout).
    Delay(Duration, Box<Reply>),
}

impl Reply {
    /// 200 with a JSON body.
    pub fn json(body: Value) -> Reply {
        Reply::Raw {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
        }
    }

    /// An assistant message with `content`, finish reason `stop`, usage.
    pub fn content(text: &str) -> Reply {
        Reply::json(json!({
            "id": "chatcmpl-scripted",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
        }))
    }

    /// An assistant message answering a JSON object as its content, with
    /// no usage (so token counts are the client's estimate).
    pub fn answer(value: Value) -> Reply {
        Reply::json(json!({
            "choices": [{"index": 0, "message": {"role": "assistant", "content": value.to_string()}, "finish_reason": "stop"}],
        }))
    }

    /// Tool calls `(name, arguments)`, arguments sent as a JSON string.
    pub fn tool_calls(calls: &[(&str, Value)]) -> Reply {
        let calls: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(i, (name, args))| {
                json!({"id": format!("call_{i}"), "type": "function",
                       "function": {"name": name, "arguments": args.to_string()}})
            })
            .collect();
        Reply::json(json!({
            "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": calls}, "finish_reason": "tool_calls"}],
        }))
    }

    /// A status with a short JSON error body.
    pub fn status(status: u16) -> Reply {
        Reply::Raw {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: json!({"error": {"message": format!("scripted {status}")}}).to_string(),
        }
    }

    /// 429 with `Retry-After: {retry_after}`.
    pub fn rate_limited(retry_after: &str) -> Reply {
        Reply::Raw {
            status: 429,
            headers: vec![("retry-after".into(), retry_after.into())],
            body: json!({"error": {"message": "rate limited"}}).to_string(),
        }
    }

    /// 200 with a body that is not JSON.
    pub fn garbage() -> Reply {
        Reply::Raw {
            status: 200,
            headers: vec![],
            body: "{\"choices\": [{\"message\": ".into(),
        }
    }

    /// Answers `inner` after `wait`.
    pub fn delayed(wait: Duration, inner: Reply) -> Reply {
        Reply::Delay(wait, Box::new(inner))
    }
}

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub at: Instant,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The text of every message's content, joined.
    pub fn prompt_text(&self) -> String {
        self.json()["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["content"].as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The `Step: NAME.` of the last user message.
    pub fn step(&self) -> Option<String> {
        let v = self.json();
        let last = v["messages"]
            .as_array()?
            .iter()
            .rev()
            .find(|m| {
                m["role"] == "user"
                    && m["content"]
                        .as_str()
                        .is_some_and(|c| c.starts_with("Step: "))
            })?
            .clone();
        let text = last["content"]
            .as_str()?
            .strip_prefix("Step: ")?
            .to_string();
        text.split('.').next().map(str::to_string)
    }
}

/// Computes a reply from a request once the script is used up.
pub type Responder = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

#[derive(Default)]
struct Inner {
    script: VecDeque<Reply>,
    responder: Option<Responder>,
    recorded: Vec<Recorded>,
}

type Shared = Arc<Mutex<Inner>>;

/// The server; stops when dropped.
pub struct ScriptedServer {
    addr: SocketAddr,
    inner: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl ScriptedServer {
    /// Starts on 127.0.0.1 with an empty script.
    pub async fn start() -> std::io::Result<Self> {
        let inner: Shared = Arc::default();
        let app = Router::new()
            .route("/v1/chat/completions", post(handle))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(ScriptedServer { addr, inner, task })
    }

    /// The base URL to configure (`…/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Appends replies to the script.
    pub fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.script.extend(replies);
        }
    }

    /// Answers with `responder` once the script is used up.
    pub fn respond_with(&self, responder: Responder) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.responder = Some(responder);
        }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.inner
            .lock()
            .map(|i| i.recorded.clone())
            .unwrap_or_default()
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(State(inner): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let recorded = Recorded {
        at: Instant::now(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let reply = {
        let Ok(mut inner) = inner.lock() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        inner.recorded.push(recorded.clone());
        match inner.script.pop_front() {
            Some(r) => Some(r),
            None => inner.responder.clone().map(|f| f(&recorded)),
        }
    };
    let mut reply = reply.unwrap_or_else(|| Reply::status(500));
    loop {
        match reply {
            Reply::Delay(wait, inner) => {
                tokio::time::sleep(wait).await;
                reply = *inner;
            }
            Reply::Raw {
                status,
                headers,
                body,
            } => {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let mut resp = (status, body).into_response();
                for (k, v) in headers {
                    if let (Ok(k), Ok(v)) = (
                        axum::http::HeaderName::from_bytes(k.as_bytes()),
                        axum::http::HeaderValue::from_str(&v),
                    ) {
                        resp.headers_mut().insert(k, v);
                    }
                }
                return resp;
            }
        }
    }
}

/// The JSON in the data block of the request's last user message.
pub fn data_of(request: &Recorded) -> Value {
    let v = request.json();
    let Some(content) = v["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .rev()
        .filter(|m| m["role"] == "user")
        .find_map(|m| m["content"].as_str().filter(|c| c.contains("<<<DATA ")))
    else {
        return Value::Null;
    };
    content
        .lines()
        .skip_while(|l| !l.starts_with("<<<DATA "))
        .nth(1)
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null)
}

/// A scripted model that plays an investigation by the book from what it
/// is sent: it blames the top changes and candidates the engines rank,
/// tests each with the tools, supports the first hypothesis it evaluates
/// (citing the observations it was given) and rejects the rest, and
/// proposes reverting a change or restarting a component. It reads the
/// prompts the way a model would, so what it is sent is what a real
/// deployment would send; only its judgement is fixed.
pub mod model {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use serde_json::{Value, json};

    use super::{Recorded, Reply, Responder, data_of};

    /// Quirks that exercise the reasoner's fallbacks.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct Quirks {
        /// The first plan's tool call has arguments that are not JSON.
        pub bad_tool_arguments_once: bool,
        /// Plans also search logs for text that looks like an instruction.
        pub search_injection: bool,
    }

    pub fn by_the_book(quirks: Quirks) -> Responder {
        let bad_args_sent = Arc::new(AtomicBool::new(false));
        Arc::new(move |req: &Recorded| {
            let data = data_of(req);
            match req.step().as_deref() {
                Some("hypothesize") => hypothesize(&data),
                Some("plan") => {
                    let last = req.prompt_text();
                    if quirks.bad_tool_arguments_once
                        && !last.contains("None of your tool calls could be run")
                        && !bad_args_sent.swap(true, Ordering::SeqCst)
                    {
                        return Reply::json(json!({"choices": [{"message": {"content": null,
                            "tool_calls": [{"id": "bad", "type": "function",
                                "function": {"name": "query_changes", "arguments": "{\"purpose\": "}}]},
                            "finish_reason": "tool_calls"}]}));
                    }
                    plan(&data, quirks)
                }
                Some("evaluate") => evaluate(&data),
                Some("remediate") => remediate(&data),
                _ => Reply::status(400),
            }
        })
    }

    fn hypothesize(data: &Value) -> Reply {
        // Asked again once everything is settled: nothing new.
        if data.get("engines").is_none() {
            return Reply::answer(json!({"hypotheses": []}));
        }
        let engines = &data["engines"];
        let mut out: Vec<Value> = Vec::new();
        let mut subjects: Vec<String> = Vec::new();
        for c in engines["changes"].as_array().into_iter().flatten().take(2) {
            let (Some(id), Some(target)) = (c["id"].as_str(), c["target"].as_str()) else {
                continue;
            };
            subjects.push(target.to_string());
            out.push(json!({
                "tag": format!("change:{id}"),
                "statement": format!("Change {id} on {target} caused the incident"),
                "subject": target,
                "prior": 0.8 - 0.2 * out.len() as f64,
            }));
        }
        // Ranked candidates first; without a topology to rank on, the
        // unwell nodes, then the most anomalous series' nodes.
        let nodes = engines["candidates"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(engines["node_health"].as_array().into_iter().flatten())
            .chain(engines["anomalies"]["top"].as_array().into_iter().flatten());
        for c in nodes {
            let Some(node) = c["node"].as_str() else {
                continue;
            };
            if subjects.iter().any(|s| s == node) || out.len() >= 4 {
                continue;
            }
            subjects.push(node.to_string());
            out.push(json!({
                "tag": format!("origin:{node}"),
                "statement": format!("The incident originates in {node}"),
                "subject": node,
                "prior": 0.5 - 0.1 * out.len() as f64,
            }));
        }
        Reply::answer(json!({"hypotheses": out}))
    }

    fn plan(data: &Value, quirks: Quirks) -> Reply {
        let h = &data["hypothesis"];
        let subject = h["subject"].as_str().unwrap_or_default();
        let is_change = h["statement"]
            .as_str()
            .is_some_and(|s| s.starts_with("Change "));
        let mut calls: Vec<(&str, Value)> = Vec::new();
        if is_change {
            calls.push((
                "query_changes",
                json!({"purpose": "the change and its timing"}),
            ));
            calls.push((
                "query_flows",
                json!({"purpose": "traffic through the changed node"}),
            ));
            calls.push((
                "query_security_events",
                json!({"purpose": "denied or reset connections"}),
            ));
        } else {
            calls.push((
                "query_metrics",
                json!({"service": subject, "purpose": format!("health of {subject}")}),
            ));
        }
        calls.push((
            "query_logs",
            json!({"service": subject, "min_level": "WARN", "purpose": format!("warnings of {subject}")}),
        ));
        if quirks.search_injection {
            calls.push((
                "query_logs",
                json!({"contains": "ignore previous", "purpose": "instruction-like text in logs"}),
            ));
        }
        calls.push(("query_topology", json!({"purpose": "where it sits"})));
        Reply::tool_calls(&calls)
    }

    fn evaluate(data: &Value) -> Reply {
        let h = &data["hypothesis"];
        let id = h["id"].as_str().unwrap_or_default();
        let observations = data["observations"].as_array().cloned().unwrap_or_default();
        let answered: Vec<usize> = observations
            .iter()
            .filter(|o| !o["summary"].is_null() && o["summary"].get("unavailable").is_none())
            .filter_map(|o| o["obs"].as_u64().map(|i| i as usize))
            .collect();
        let first = answered.first().copied().unwrap_or(0);
        let supported_elsewhere = data["tree"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t["status"] == "supported" && t["id"] != h["id"]);
        if id == "h-1" && !supported_elsewhere {
            let findings: Vec<Value> = answered
                .iter()
                .take(3)
                .map(|i| json!({"observation": i, "summary": format!("observation {i} fits {}", h["subject"].as_str().unwrap_or("?")), "bearing": "supports"}))
                .collect();
            Reply::answer(json!({
                "status": "supported",
                "score": 0.9,
                "findings": findings,
                "chain": [format!("{} changed", h["subject"].as_str().unwrap_or("?")), "dependent services failed", "alerts fired"],
                "explains_symptoms": true,
            }))
        } else {
            Reply::answer(json!({
                "status": "rejected",
                "score": 0.1,
                "findings": [{"observation": first, "summary": "its own health stayed within the baseline", "bearing": "contradicts"}],
            }))
        }
    }

    fn remediate(data: &Value) -> Reply {
        let subject = data["root_cause"]["subject"].as_str().unwrap_or("unknown");
        let statement = data["root_cause"]["statement"].as_str().unwrap_or_default();
        let action = if statement.starts_with("Change ") {
            let id = statement
                .split_whitespace()
                .nth(1)
                .unwrap_or(subject)
                .to_string();
            json!({"action": "revert_change", "target": id, "rationale": "the change started it", "risk": "low"})
        } else {
            json!({"action": "rollout_restart", "target": subject, "rationale": "clear a degraded state", "risk": "medium"})
        };
        Reply::answer(
            json!({"remediation": [action, {"action": "delete_namespace", "target": "prod"}]}),
        )
    }
}
