#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The Loki connector against an in-process server replaying answers in
//! Loki's real `query_range` shape (Loki itself cannot be installed here).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeZone, Utc};
use secrecy::SecretString;
use serde_json::{Value, json};
use warden_agent::engines::templates::{MiningConfig, Novelty, mine_activity};
use warden_connectors::{Credentials, LokiSource, ReadDenied, ReadGuard, ReadRequest};
use warden_core::agent_input::LokiSourceConfig;
use warden_core::ports::{DataError, DataSource, Query, QueryResult};
use warden_core::telemetry::{LogLine, TimeRange};

const RECORDED: &str = include_str!("fixtures/loki_query_range.json");

/// What the server answers.
#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

fn ok(body: impl Into<String>) -> Reply {
    Reply {
        status: 200,
        headers: Vec::new(),
        body: body.into(),
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    params: BTreeMap<String, String>,
    headers: BTreeMap<String, String>,
}

type Answer = dyn Fn(&BTreeMap<String, String>) -> Reply + Send + Sync;

struct Replay {
    /// Replies given first, in order; then `then` answers.
    script: Mutex<VecDeque<Reply>>,
    then: Box<Answer>,
    seen: Mutex<Vec<Seen>>,
}

async fn handle(
    State(replay): State<Arc<Replay>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let url = reqwest::Url::parse(&format!("http://x/?{}", query.unwrap_or_default())).unwrap();
    let params: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
    replay.seen.lock().unwrap().push(Seen {
        params: params.clone(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
    });
    let next = replay.script.lock().unwrap().pop_front();
    let reply = next.unwrap_or_else(|| (replay.then)(&params));
    let mut resp = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
    resp.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    for (k, v) in reply.headers {
        resp.headers_mut().insert(k, v.parse().unwrap());
    }
    resp
}

struct Server {
    url: String,
    replay: Arc<Replay>,
}

impl Server {
    async fn start(
        script: Vec<Reply>,
        then: impl Fn(&BTreeMap<String, String>) -> Reply + Send + Sync + 'static,
    ) -> Server {
        let replay = Arc::new(Replay {
            script: Mutex::new(script.into()),
            then: Box::new(then),
            seen: Mutex::new(Vec::new()),
        });
        let router = Router::new()
            .route("/loki/api/v1/query_range", axum::routing::get(handle))
            .with_state(replay.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Server { url, replay }
    }

    fn seen(&self) -> Vec<Seen> {
        self.replay.seen.lock().unwrap().clone()
    }
}

fn config(url: &str, extra: Value) -> LokiSourceConfig {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut v = json!({"url": url, "service_label": "app", "timeout_seconds": 5});
    if let (Some(base), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
        base.extend(extra.clone());
    }
    serde_json::from_value(v).unwrap()
}

fn source(url: &str, extra: Value) -> LokiSource {
    LokiSource::new(&config(url, extra), Credentials::None).unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn logs(
    service: Option<&str>,
    min_level: Option<&str>,
    contains: Option<&str>,
    limit: usize,
) -> Query {
    Query::Logs {
        service: service.map(Into::into),
        min_level: min_level.map(Into::into),
        contains: contains.map(Into::into),
        range: TimeRange {
            start: at("2024-05-01T10:00:00Z"),
            end: at("2024-05-01T10:05:00Z"),
        },
        limit,
    }
}

fn lines(result: QueryResult) -> Vec<LogLine> {
    match result {
        QueryResult::Logs(l) => l,
        other => panic!("not logs: {other:?}"),
    }
}

#[tokio::test]
async fn recorded_streams_become_log_lines_with_service_level_and_time_order() {
    let server = Server::start(vec![], |_| ok(RECORDED)).await;
    let src = source(&server.url, json!({"selector": "namespace=\"prod\""}));
    let got = lines(src.query(&logs(None, None, None, 100)).await.unwrap());
    let summary: Vec<(String, &str, &str)> = got
        .iter()
        .map(|l| (l.ts.to_rfc3339(), l.service.as_str(), l.level.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("2024-05-01T10:00:00+00:00".into(), "checkout", "INFO"),
            ("2024-05-01T10:00:30+00:00".into(), "cart", "WARN"),
            ("2024-05-01T10:01:00+00:00".into(), "checkout", "ERROR"),
            ("2024-05-01T10:01:30+00:00".into(), "checkout", "WARN"),
            ("2024-05-01T10:02:00.500+00:00".into(), "checkout", "ERROR"),
        ]
    );
    assert_eq!(
        got.iter().map(|l| l.line).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert!(got[1].message.contains("redis slow"));

    let sent = &server.seen()[0].params;
    assert_eq!(sent["query"], r#"{app=~".+",namespace="prod"}"#);
    assert_eq!(sent["direction"], "forward");
    assert_eq!(sent["start"], "1714557600000000000");
    assert_eq!(sent["end"], "1714557900000000000");
    assert_eq!(sent["limit"], "100");

    // min_level is applied to the levels found.
    let warn = lines(
        src.query(&logs(None, Some("WARN"), None, 100))
            .await
            .unwrap(),
    );
    assert_eq!(warn.len(), 4);
    assert!(warn.iter().all(|l| l.level != "INFO"));
}

#[tokio::test]
async fn service_and_contains_are_sent_as_logql_with_escaping() {
    let server = Server::start(vec![], |_| ok(RECORDED)).await;
    let src = source(&server.url, json!({}));
    src.query(&logs(Some("checkout"), None, Some("say \"no\""), 10))
        .await
        .unwrap();
    assert_eq!(
        server.seen()[0].params["query"],
        r#"{app="checkout"} |= "say \"no\"""#
    );
}

#[tokio::test]
async fn a_429_is_retried_after_its_retry_after_then_succeeds() {
    let limited = Reply {
        status: 429,
        headers: vec![("retry-after", "1".into())],
        body: "too many outstanding requests".into(),
    };
    let server = Server::start(vec![limited], |_| ok(RECORDED)).await;
    let src = source(&server.url, json!({}));
    let started = Instant::now();
    let got = lines(src.query(&logs(None, None, None, 100)).await.unwrap());
    assert_eq!(got.len(), 5);
    assert_eq!(server.seen().len(), 2);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After not honoured"
    );
}

#[tokio::test]
async fn a_500_storm_becomes_unavailability_after_the_retries() {
    let server = Server::start(vec![], |_| Reply {
        status: 500,
        headers: Vec::new(),
        body: "rpc error: code = Unavailable desc = no healthy ingesters".into(),
    })
    .await;
    let src = source(&server.url, json!({"retries": 3}));
    let started = Instant::now();
    let err = src.query(&logs(None, None, None, 100)).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(err, DataError::Unavailable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with("loki unavailable: HTTP 500: rpc error"),
        "{text}"
    );
    assert!(text.contains("gave up after 4 attempts"), "{text}");
    assert_eq!(server.seen().len(), 4);
}

#[tokio::test]
async fn a_client_error_is_not_retried() {
    let server = Server::start(vec![], |_| Reply {
        status: 400,
        headers: Vec::new(),
        body: r#"{"status":"error","errorType":"bad_data","error":"parse error at line 1, col 2"}"#
            .into(),
    })
    .await;
    let src = source(&server.url, json!({}));
    let err = src
        .query(&logs(None, None, None, 100))
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(server.seen().len(), 1);
    assert!(err.contains("HTTP 400: bad_data: parse error"), "{err}");
}

/// One stream of `n` entries, a second apart from 10:00.
fn many(n: usize, service: &str, text: impl Fn(usize) -> String) -> String {
    let values: Vec<Value> = (0..n)
        .map(|i| {
            json!([
                (1_714_557_600_000_000_000i128 + i as i128 * 1_000_000_000).to_string(),
                text(i)
            ])
        })
        .collect();
    json!({"status": "success", "data": {"resultType": "streams", "result": [
        {"stream": {"app": service}, "values": values}
    ]}})
    .to_string()
}

#[tokio::test]
async fn an_oversized_answer_is_cut_at_complete_lines_and_says_so() {
    let body = many(500, "checkout", |i| {
        format!("level=error msg=\"payment failed\" order={i} reason=timeout")
    });
    assert!(body.len() > 30_000);
    let server = Server::start(vec![], move |_| ok(body.clone())).await;
    let src = source(&server.url, json!({"max_response_bytes": 8000}));
    let got = lines(src.query(&logs(None, None, None, 1000)).await.unwrap());
    let (marker, kept) = got.split_last().unwrap();
    assert!(kept.len() > 50 && kept.len() < 150, "{}", kept.len());
    for (i, l) in kept.iter().enumerate() {
        // Every kept line is whole and in order.
        assert_eq!(
            l.message,
            format!("level=error msg=\"payment failed\" order={i} reason=timeout")
        );
    }
    assert_eq!(marker.service, "loki");
    assert_eq!(marker.level, "WARN");
    assert!(
        marker.message.starts_with(&format!(
            "answer cut at 8000 bytes after {} lines",
            kept.len()
        )),
        "{}",
        marker.message
    );
    // A cut answer ends the paging.
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn long_answers_are_read_page_by_page_without_losing_or_repeating_lines() {
    // Ten entries; 3 and 4 share a timestamp across the first page boundary.
    let stamps: Vec<i128> = vec![0, 1, 2, 3, 3, 4, 5, 6, 7, 8]
        .into_iter()
        .map(|s| 1_714_557_600_000_000_000i128 + s * 1_000_000_000)
        .collect();
    let entries: Vec<(i128, String)> = stamps
        .iter()
        .enumerate()
        .map(|(i, t)| (*t, format!("line {i}")))
        .collect();
    let server = Server::start(vec![], move |p| {
        // Loki's semantics: start inclusive, first `limit` entries forward.
        let start: i128 = p["start"].parse().unwrap();
        let limit: usize = p["limit"].parse().unwrap();
        let values: Vec<Value> = entries
            .iter()
            .filter(|(t, _)| *t >= start)
            .take(limit)
            .map(|(t, l)| json!([t.to_string(), l]))
            .collect();
        ok(
            json!({"status": "success", "data": {"resultType": "streams",
            "result": [{"stream": {"app": "api"}, "values": values}]}})
            .to_string(),
        )
    })
    .await;
    let src = source(&server.url, json!({"page_limit": 4}));
    let got = lines(src.query(&logs(None, None, None, 100)).await.unwrap());
    let texts: Vec<&str> = got.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(
        texts,
        (0..10).map(|i| format!("line {i}")).collect::<Vec<_>>()
    );
    assert!(server.seen().len() >= 3, "{}", server.seen().len());

    // The query's limit is respected across pages.
    let got = lines(src.query(&logs(None, None, None, 6)).await.unwrap());
    assert_eq!(got.len(), 6);
}

#[tokio::test]
async fn credentials_and_tenant_are_sent_as_headers_and_never_shown() {
    let server = Server::start(vec![], |_| Reply {
        status: 401,
        headers: Vec::new(),
        body: "no org id".into(),
    })
    .await;
    let secret = SecretString::from(r#"{"bearer_token":"tok-sentinel-77"}"#.to_string());
    let creds = Credentials::from_secret(&secret).unwrap();
    let src = LokiSource::new(&config(&server.url, json!({"tenant": "team-a"})), creds).unwrap();
    let err = src
        .query(&logs(None, None, None, 10))
        .await
        .unwrap_err()
        .to_string();
    let seen = &server.seen()[0];
    assert_eq!(seen.headers["authorization"], "Bearer tok-sentinel-77");
    assert_eq!(seen.headers["x-scope-orgid"], "team-a");
    assert!(!err.contains("sentinel"), "{err}");
    assert!(!format!("{src:?}").contains("sentinel"));
    assert!(!seen.params.values().any(|v| v.contains("sentinel")));
}

struct DenyAll;

impl ReadGuard for DenyAll {
    fn check(&self, request: &ReadRequest) -> Result<(), ReadDenied> {
        Err(ReadDenied {
            reason: format!("{} may not be read in this phase", request.connector),
        })
    }
}

#[tokio::test]
async fn a_read_the_guard_refuses_is_never_sent() {
    let server = Server::start(vec![], |_| ok(RECORDED)).await;
    let src = source(&server.url, json!({})).with_guard(Arc::new(DenyAll));
    let err = src
        .query(&logs(None, None, None, 10))
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "loki unavailable: read denied: loki may not be read in this phase"
    );
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn logs_read_from_loki_feed_the_agents_template_engine() {
    // 40 minutes of api logs: a steady INFO template, a WARN template that
    // goes from 1 to 10 a minute at minute 35, and an ERROR template that
    // first appears at minute 33.
    let t0 = Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap();
    let mut entries: Vec<(i128, String)> = Vec::new();
    for m in 0..40i64 {
        let minute = |s: i64| {
            let t = t0 + chrono::Duration::seconds(m * 60 + s);
            i128::from(t.timestamp()) * 1_000_000_000
        };
        for i in 0..6 {
            entries.push((
                minute(i * 9),
                format!(
                    "level=info msg=\"served request {}\" took={}ms",
                    m * 10 + i,
                    10 + i
                ),
            ));
        }
        for i in 0..if m >= 35 { 10 } else { 1 } {
            entries.push((
                minute(i * 5 + 1),
                format!(
                    "level=warn msg=\"slow query\" table=orders took={}ms",
                    900 + i
                ),
            ));
        }
        if m >= 33 {
            entries.push((
                minute(2),
                format!("level=error msg=\"connection refused\" addr=10.0.3.{m}:5432"),
            ));
        }
    }
    entries.sort();
    let body = json!({"status": "success", "data": {"resultType": "streams", "result": [
        {"stream": {"app": "api"}, "values": entries.iter().map(|(t, l)| json!([t.to_string(), l])).collect::<Vec<_>>()}
    ]}})
    .to_string();
    let server = Server::start(vec![], move |_| ok(body.clone())).await;
    let src = source(&server.url, json!({"page_limit": 5000}));
    let window = TimeRange {
        start: t0,
        end: t0 + chrono::Duration::minutes(40),
    };
    let got = lines(
        src.query(&Query::Logs {
            service: Some("api".into()),
            min_level: None,
            contains: None,
            range: window,
            limit: 10_000,
        })
        .await
        .unwrap(),
    );
    assert_eq!(got.len(), entries.len());
    let baseline = TimeRange {
        start: t0,
        end: t0 + chrono::Duration::minutes(30),
    };
    let incident = TimeRange {
        start: baseline.end,
        end: window.end,
    };
    let found = mine_activity(&got, baseline, incident, &MiningConfig::default());
    let summary: Vec<(Novelty, &str, &str)> = found
        .iter()
        .map(|a| (a.novelty, a.level.as_str(), a.template.as_str()))
        .collect();
    assert_eq!(summary.len(), 2, "{summary:#?}");
    assert_eq!(summary[0].0, Novelty::New);
    assert_eq!(summary[0].1, "ERROR");
    assert!(summary[0].2.contains("connection refused"), "{summary:?}");
    assert_eq!(found[0].onset, t0 + chrono::Duration::seconds(33 * 60 + 2));
    assert_eq!(summary[1].0, Novelty::Burst);
    assert_eq!(summary[1].1, "WARN");
    assert!(summary[1].2.contains("slow query"), "{summary:?}");
    assert_eq!(found[1].onset, t0 + chrono::Duration::seconds(35 * 60 + 1));
}
