//! The telemetry bundle as a data source, on real files in a temp dir.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeMap;

use common::at;
use warden_agent::BundleSource;
use warden_core::ports::{DataError, DataSource, Query, QueryResult};
use warden_core::telemetry::TimeRange;

fn range(from: i64, to: i64) -> TimeRange {
    TimeRange {
        start: at(from),
        end: at(to),
    }
}

fn everything() -> TimeRange {
    range(common::START, common::END)
}

fn small_bundle() -> common::Bundle {
    let mut b = common::Bundle::new();
    b.node("api", "service", "application")
        .node("db", "database", "database")
        .node("fw", "firewall", "network")
        .edge("api", "db", &["fw"], 5432)
        .series(
            "a.jsonl",
            "api",
            "errors",
            |s| if s >= 0 { 5.0 } else { 0.0 },
        )
        .series("a.jsonl", "api", "cpu", |_| 10.0)
        .series("b.jsonl", "db", "errors", |_| 0.0)
        .log("api", -60, "INFO", "started")
        .log("api", -30, "WARN", "slow call to db")
        .log("api", 10, "ERROR", "call to db timed out")
        .log("api", 20, "ERROR", "call to db timed out again")
        .log("db", 15, "DEBUG", "checkpoint")
        .change("c1", -100, "firewall", "fw", "tighten rules")
        .change("c2", 500, "deploy", "api", "v2")
        .flow(0, "api", "db", 5432, Some("fw"), 10, 90, 5, Some("deny"))
        .flow(0, "web", "api", 80, None, 100, 0, 0, None)
        .security(30, "ids", "reset", "db", "resets");
    b.write("small");
    b
}

async fn ask(source: &BundleSource, query: Query) -> QueryResult {
    source.query(&query).await.unwrap()
}

#[tokio::test]
async fn metrics_are_filtered_by_name_labels_and_range() {
    let b = small_bundle();
    let source = BundleSource::open(b.path()).unwrap();
    let QueryResult::Metrics(all) = ask(
        &source,
        Query::Metrics {
            metric: None,
            labels: BTreeMap::new(),
            range: everything(),
        },
    )
    .await
    else {
        panic!()
    };
    assert_eq!(all.len(), 3);
    let labels: BTreeMap<String, String> = [("service".to_string(), "api".to_string())].into();
    let QueryResult::Metrics(api_errors) = ask(
        &source,
        Query::Metrics {
            metric: Some("errors".into()),
            labels,
            range: range(0, 60),
        },
    )
    .await
    else {
        panic!()
    };
    assert_eq!(api_errors.len(), 1);
    assert_eq!(api_errors[0].label("service"), Some("api"));
    // Only the points inside [0 s, 60 s): 0, 15, 30, 45.
    assert_eq!(api_errors[0].points.len(), 4);
    assert!(api_errors[0].points.iter().all(|(_, v)| *v == 5.0));
}

#[tokio::test]
async fn logs_are_filtered_by_service_level_text_range_and_limit() {
    let b = small_bundle();
    let source = BundleSource::open(b.path()).unwrap();
    let logs = |service: Option<&str>, min_level: Option<&str>, contains: Option<&str>, limit| {
        Query::Logs {
            service: service.map(str::to_string),
            min_level: min_level.map(str::to_string),
            contains: contains.map(str::to_string),
            range: everything(),
            limit,
        }
    };
    let QueryResult::Logs(all) = ask(&source, logs(None, None, None, 100)).await else {
        panic!()
    };
    assert_eq!(all.len(), 5);
    assert!(
        all.windows(2).all(|w| w[0].ts <= w[1].ts),
        "merged in time order"
    );

    let QueryResult::Logs(errors) = ask(&source, logs(Some("api"), Some("WARN"), None, 100)).await
    else {
        panic!()
    };
    assert_eq!(
        errors.iter().map(|l| l.level.as_str()).collect::<Vec<_>>(),
        ["WARN", "ERROR", "ERROR"]
    );
    assert_eq!(errors[0].line, 2, "line numbers cite the file");
    assert_eq!(errors[0].service, "api");

    let QueryResult::Logs(again) = ask(&source, logs(None, None, Some("again"), 100)).await else {
        panic!()
    };
    assert_eq!(again.len(), 1);

    let QueryResult::Logs(limited) = ask(&source, logs(None, None, None, 2)).await else {
        panic!()
    };
    assert_eq!(limited.len(), 2);
    assert_eq!(limited[0].message, "started");

    let QueryResult::Logs(none) = ask(&source, logs(Some("../manifest"), None, None, 100)).await
    else {
        panic!()
    };
    assert!(none.is_empty(), "a service name cannot reach outside logs/");
}

#[tokio::test]
async fn changes_flows_security_and_topology_are_answered() {
    let b = small_bundle();
    let source = BundleSource::open(b.path()).unwrap();
    let QueryResult::Changes(changes) = ask(
        &source,
        Query::Changes {
            range: range(-200, 0),
        },
    )
    .await
    else {
        panic!()
    };
    assert_eq!(
        changes.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["c1"]
    );

    let QueryResult::Flows(flows) = ask(
        &source,
        Query::Flows {
            service: Some("db".into()),
            range: everything(),
        },
    )
    .await
    else {
        panic!()
    };
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0].dropped, 90);
    let QueryResult::Flows(flows) = ask(
        &source,
        Query::Flows {
            service: None,
            range: everything(),
        },
    )
    .await
    else {
        panic!()
    };
    assert_eq!(flows.len(), 2);

    let QueryResult::SecurityEvents(events) = ask(
        &source,
        Query::SecurityEvents {
            range: everything(),
        },
    )
    .await
    else {
        panic!()
    };
    assert_eq!(events[0].target.as_deref(), Some("db"));

    let QueryResult::Topology(g) = ask(&source, Query::Topology).await else {
        panic!()
    };
    assert_eq!(g.edges_via("fw").count(), 1);
    let mut domains: Vec<String> = source.domains().into_iter().map(|d| d.0).collect();
    domains.sort();
    assert_eq!(domains, ["application", "database", "network", "security"]);
    assert_eq!(source.manifest().name, "small");
}

#[tokio::test]
async fn missing_optional_files_give_empty_answers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("manifest.json"),
        r#"{"format_version":1,"name":"bare","start":"2024-05-01T09:00:00Z","end":"2024-05-01T11:00:00Z"}"#,
    )
    .unwrap();
    let source = BundleSource::open(dir.path()).unwrap();
    for q in [
        Query::Metrics {
            metric: None,
            labels: BTreeMap::new(),
            range: everything(),
        },
        Query::Logs {
            service: None,
            min_level: None,
            contains: None,
            range: everything(),
            limit: 10,
        },
        Query::Changes {
            range: everything(),
        },
        Query::Flows {
            service: None,
            range: everything(),
        },
        Query::SecurityEvents {
            range: everything(),
        },
    ] {
        let answer = source.query(&q).await.unwrap();
        let empty = match answer {
            QueryResult::Metrics(v) => v.is_empty(),
            QueryResult::Logs(v) => v.is_empty(),
            QueryResult::Changes(v) => v.is_empty(),
            QueryResult::Flows(v) => v.is_empty(),
            QueryResult::SecurityEvents(v) => v.is_empty(),
            QueryResult::Topology(_) => false,
        };
        assert!(empty, "{q:?}");
    }
    let QueryResult::Topology(g) = source.query(&Query::Topology).await.unwrap() else {
        panic!()
    };
    assert!(g.nodes.is_empty());
}

#[tokio::test]
async fn a_malformed_line_is_an_error_naming_file_and_line() {
    let b = small_bundle();
    let path = b.path().join("changes.jsonl");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{not json\n");
    std::fs::write(&path, text).unwrap();
    let source = BundleSource::open(b.path()).unwrap();
    let err = source
        .query(&Query::Changes {
            range: everything(),
        })
        .await
        .unwrap_err();
    match err {
        DataError::Malformed { detail, .. } => {
            assert!(detail.contains("changes.jsonl line 3"), "{detail}")
        }
        other => panic!("{other:?}"),
    }

    std::fs::write(
        b.path().join("logs/api.log"),
        "2024-05-01T10:00:00Z INFO fine\nnot a log line\n",
    )
    .unwrap();
    let err = source
        .query(&Query::Logs {
            service: Some("api".into()),
            min_level: None,
            contains: None,
            range: everything(),
            limit: 10,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DataError::Malformed { detail, .. } if detail.contains("logs/api.log line 2")),
        "{err}"
    );
}

#[tokio::test]
async fn a_bundle_that_cannot_be_read_is_unavailable() {
    let missing = tempfile::tempdir().unwrap().path().join("nope");
    assert!(matches!(
        BundleSource::open(&missing),
        Err(DataError::Unavailable { .. })
    ));

    let empty = tempfile::tempdir().unwrap();
    assert!(
        matches!(
            BundleSource::open(empty.path()),
            Err(DataError::Unavailable { .. })
        ),
        "no manifest"
    );

    let b = small_bundle();
    let source = BundleSource::open(b.path()).unwrap();
    let root = b.path().to_path_buf();
    drop(b);
    assert!(!root.exists());
    let err = source.query(&Query::Topology).await.unwrap_err();
    assert!(matches!(err, DataError::Unavailable { .. }), "{err}");
}

#[tokio::test]
async fn an_unknown_level_in_a_query_is_refused() {
    let b = small_bundle();
    let source = BundleSource::open(b.path()).unwrap();
    let err = source
        .query(&Query::Logs {
            service: None,
            min_level: Some("LOUD".into()),
            contains: None,
            range: everything(),
            limit: 10,
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("LOUD"));
}
