#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The Prometheus connector against a real Prometheus (the Debian package),
//! started on a free local port over a data directory backfilled with
//! `promtool tsdb create-blocks-from openmetrics`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use warden_agent::engines::anomaly::{AnomalyConfig, score_all};
use warden_connectors::{Credentials, PrometheusSource};
use warden_core::agent_input::PrometheusSourceConfig;
use warden_core::ports::{DataError, DataSource, Query, QueryResult};
use warden_core::telemetry::TimeRange;

const INSTALL: &str = "run scripts/install-test-deps.sh (apt-get install -y prometheus)";

fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("`{name}` is not installed: {INSTALL}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Prometheus process, killed (by its own handle) when dropped.
struct Prometheus {
    child: Option<Child>,
    url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The timeline the tests use: minute samples from `start` for 80 minutes.
struct Timeline {
    start: i64,
}

impl Timeline {
    fn new() -> Self {
        // Recent enough to be inside the default retention, whole minutes.
        let now = Utc::now().timestamp();
        Timeline {
            start: now / 60 * 60 - 3 * 3600,
        }
    }
    fn at(&self, minute: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(self.start + minute * 60, 0).unwrap()
    }
}

/// Latency of `api` steps from ~0.1 s to ~0.8 s at minute 60; `db` stays
/// flat; `requests_total` counts up.
fn latency(service: &str, minute: i64) -> f64 {
    let wiggle = [0.0, 0.004, -0.003, 0.002, -0.005, 0.001][(minute % 6) as usize];
    match service {
        "api" if minute >= 60 => 0.8 + wiggle,
        _ => 0.1 + wiggle,
    }
}

fn openmetrics(t: &Timeline) -> String {
    let mut s = String::new();
    s.push_str("# HELP app_latency_seconds Request latency.\n");
    s.push_str("# TYPE app_latency_seconds gauge\n");
    for service in ["api", "db"] {
        for m in 0..80 {
            s.push_str(&format!(
                "app_latency_seconds{{service=\"{service}\",env=\"prod\"}} {} {}\n",
                latency(service, m),
                t.start + m * 60
            ));
        }
    }
    s.push_str("# HELP requests Requests served.\n");
    s.push_str("# TYPE requests counter\n");
    for m in 0..80 {
        s.push_str(&format!(
            "requests_total{{service=\"api\"}} {} {}\n",
            m * 10,
            t.start + m * 60
        ));
    }
    s.push_str("# EOF\n");
    s
}

fn start_prometheus(t: &Timeline) -> Prometheus {
    let promtool = tool("promtool");
    let prometheus = tool("prometheus");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let input = dir.path().join("series.om");
    std::fs::write(&input, openmetrics(t)).unwrap();
    let out = Command::new(&promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool backfill failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        "global:\n  scrape_interval: 1h\nscrape_configs: []\n",
    )
    .unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let child = Command::new(&prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg("--storage.tsdb.retention.time=30d")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("could not start prometheus ({e}): {INSTALL}"));
    let mut p = Prometheus {
        child: Some(child),
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let ready = format!("{}/-/ready", p.url);
    let started = Instant::now();
    loop {
        if matches!(probe::get(&ready), Ok(true)) {
            break;
        }
        if started.elapsed() > Duration::from_secs(15) {
            let log =
                std::fs::read_to_string(p._dir.path().join("prometheus.log")).unwrap_or_default();
            p.stop();
            panic!("prometheus did not become ready in 15 s:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    p
}

/// A tiny blocking readiness probe without a second HTTP stack.
mod probe {
    use std::io::{Read, Write};

    pub fn get(url: &str) -> std::io::Result<bool> {
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_once('/').unwrap();
        let mut s = std::net::TcpStream::connect(host)?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(1)))?;
        write!(
            s,
            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )?;
        let mut buf = String::new();
        s.read_to_string(&mut buf)?;
        Ok(buf.starts_with("HTTP/1.1 200"))
    }
}

fn source(url: &str, timeout_seconds: u64) -> PrometheusSource {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let config: PrometheusSourceConfig = serde_json::from_value(serde_json::json!({
        "url": url,
        "domains": ["application"],
        "timeout_seconds": timeout_seconds,
        "selector": "env=\"prod\"",
    }))
    .unwrap();
    PrometheusSource::new(&config, Credentials::None).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfilled_series_come_back_and_the_step_change_is_anomalous() {
    let t = Timeline::new();
    let prom = start_prometheus(&t);
    let src = source(&prom.url, 10);

    // Instant query at a sample time returns that sample.
    let answer = src
        .instant("app_latency_seconds{service=\"db\"}", t.at(42))
        .await
        .unwrap();
    assert_eq!(answer.series.len(), 1, "{answer:?}");
    let db = &answer.series[0];
    assert_eq!(db.metric, "app_latency_seconds");
    assert_eq!(db.label("service"), Some("db"));
    assert_eq!(db.points, vec![(t.at(42).timestamp(), latency("db", 42))]);

    // A range query returns every backfilled minute, in order.
    let range = TimeRange {
        start: t.at(50),
        end: t.at(70),
    };
    let answer = src
        .range("app_latency_seconds{service=\"api\"}", range, 60)
        .await
        .unwrap();
    let api = &answer.series[0];
    let expected: Vec<(i64, f64)> = (50..=70)
        .map(|m| (t.at(m).timestamp(), latency("api", m)))
        .collect();
    assert_eq!(api.points, expected);
    assert!(!answer.truncated);

    // PromQL functions work too: the counter's rate is 10 per minute.
    let answer = src
        .instant("rate(requests_total[10m]) * 60", t.at(40))
        .await
        .unwrap();
    assert!(
        (answer.series[0].points[0].1 - 10.0).abs() < 1e-6,
        "{answer:?}"
    );

    // Through the port: every series of the window, then the agent's
    // anomaly engine finds the step in api's latency and nothing in db's.
    let window = TimeRange {
        start: t.at(0),
        end: t.at(80),
    };
    let result = src
        .query(&Query::Metrics {
            metric: Some("app_latency_seconds".into()),
            labels: BTreeMap::new(),
            range: window,
        })
        .await
        .unwrap();
    let QueryResult::Metrics(series) = result else {
        panic!("not metrics")
    };
    assert_eq!(series.len(), 2);
    assert!(series.iter().all(|s| s.points.len() == 80), "{series:?}");
    let baseline = TimeRange {
        start: t.at(0),
        end: t.at(50),
    };
    let incident = TimeRange {
        start: t.at(50),
        end: t.at(80),
    };
    let scores = score_all(&series, baseline, incident, &AnomalyConfig::default());
    let api = scores
        .iter()
        .find(|s| s.node.as_deref() == Some("api"))
        .unwrap();
    let db = scores
        .iter()
        .find(|s| s.node.as_deref() == Some("db"))
        .unwrap();
    assert!(api.is_anomalous(), "{api:?}");
    assert_eq!(api.onset.as_ref().unwrap().at, t.at(60));
    assert!(!db.is_anomalous(), "{db:?}");

    // The service label filter reaches Prometheus.
    let result = src
        .query(&Query::Metrics {
            metric: None,
            labels: BTreeMap::from([("service".to_string(), "db".to_string())]),
            range: window,
        })
        .await
        .unwrap();
    let QueryResult::Metrics(series) = result else {
        panic!("not metrics")
    };
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].label("service"), Some("db"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_answer_keeps_whole_series_and_says_so() {
    let t = Timeline::new();
    let prom = start_prometheus(&t);
    let mut policy = source(&prom.url, 10).policy().clone();
    policy.max_response_bytes = 2500;
    let src = source(&prom.url, 10).with_policy(policy);
    let result = src
        .query(&Query::Metrics {
            metric: Some("app_latency_seconds".into()),
            labels: BTreeMap::new(),
            range: TimeRange {
                start: t.at(0),
                end: t.at(80),
            },
        })
        .await
        .unwrap();
    let QueryResult::Metrics(series) = result else {
        panic!("not metrics")
    };
    // One complete series of 80 points fits in 2500 bytes, two do not.
    assert_eq!(series.len(), 2, "{series:?}");
    assert_eq!(series[0].points.len(), 80);
    let marker = &series[1];
    assert_eq!(
        marker.metric,
        warden_connectors::prometheus::TRUNCATED_METRIC
    );
    assert_eq!(marker.label("kept_series"), Some("1"));
    assert!(marker.points.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_prometheus_is_reported_unavailable_within_the_timeout() {
    let t = Timeline::new();
    let mut prom = start_prometheus(&t);
    let src = source(&prom.url, 3);
    let query = Query::Metrics {
        metric: Some("app_latency_seconds".into()),
        labels: BTreeMap::new(),
        range: TimeRange {
            start: t.at(0),
            end: t.at(80),
        },
    };
    assert!(src.query(&query).await.is_ok());

    prom.stop();
    let started = Instant::now();
    let err = src.query(&query).await.unwrap_err();
    let elapsed = started.elapsed();
    eprintln!("stopped prometheus reported unavailable after {elapsed:?}: {err}");
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    assert!(matches!(err, DataError::Unavailable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.starts_with("prometheus unavailable: "), "{text}");
    assert!(text.contains("gave up after 3 attempts"), "{text}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_with_the_budget_named() {
    // Accepts connections, never replies: the query's budget ends it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            open.push(s);
        }
    });
    let src = source(&format!("http://{addr}"), 2);
    let started = Instant::now();
    let err = src.instant("up", Utc::now()).await.unwrap_err().to_string();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_millis(2500),
        "took {elapsed:?}"
    );
    assert!(
        err.starts_with("prometheus unavailable: timeout after 2s"),
        "{err}"
    );
    held.abort();
}
