#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use common::{fake, pod};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher::{self, Event};
use serde_json::json;
use warden_kube_fake::FakeApiServer;

const STEP: Duration = Duration::from_secs(5);

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap()
}

async fn next<S, T>(stream: &mut S) -> T
where
    S: futures::Stream<Item = T> + Unpin,
{
    tokio::time::timeout(STEP, stream.next())
        .await
        .expect("event within 5 s")
        .expect("stream still open")
}

/// The next watch event that is not a bookmark.
async fn next_change<S, K>(stream: &mut S) -> WatchEvent<K>
where
    S: futures::Stream<Item = kube::Result<WatchEvent<K>>> + Unpin,
{
    loop {
        match next(stream).await.unwrap() {
            WatchEvent::Bookmark(_) => continue,
            other => return other,
        }
    }
}

fn name_of<K: kube::Resource>(k: &K) -> String {
    k.meta().name.clone().unwrap_or_default()
}

#[tokio::test]
async fn raw_watch_streams_added_modified_deleted_in_order() {
    let fake = fake().await;
    let cms: Api<ConfigMap> = Api::namespaced(fake.client(), "warden");
    let start = fake.resource_version().to_string();
    let mut stream = cms
        .watch(&WatchParams::default(), &start)
        .await
        .unwrap()
        .boxed();

    cms.create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "v"}})),
    )
    .await
    .unwrap();
    cms.delete("a", &DeleteParams::default()).await.unwrap();

    let mut seen = Vec::new();
    let mut last_rv = 0u64;
    while seen.len() < 3 {
        match next(&mut stream).await.unwrap() {
            WatchEvent::Added(o) => seen.push(("ADDED", o)),
            WatchEvent::Modified(o) => seen.push(("MODIFIED", o)),
            WatchEvent::Deleted(o) => seen.push(("DELETED", o)),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("unexpected error event {e:?}"),
        }
    }
    let kinds: Vec<&str> = seen.iter().map(|(k, _)| *k).collect();
    assert_eq!(kinds, ["ADDED", "MODIFIED", "DELETED"]);
    for (_, o) in &seen {
        let rv: u64 = o
            .metadata
            .resource_version
            .as_deref()
            .unwrap()
            .parse()
            .unwrap();
        assert!(rv > last_rv, "resourceVersions increase");
        last_rv = rv;
    }
    assert_eq!(seen[1].1.data.as_ref().unwrap()["k"], "v");
}

#[tokio::test]
async fn label_filtered_watch_sees_objects_leave_and_enter_the_selection() {
    let fake = fake().await;
    let pods: Api<Pod> = Api::namespaced(fake.client(), "warden");
    pods.create(&PostParams::default(), &pod("p", json!({"watched": "yes"})))
        .await
        .unwrap();
    let rv = fake.resource_version().to_string();
    let mut stream = pods
        .watch(&WatchParams::default().labels("watched=yes"), &rv)
        .await
        .unwrap()
        .boxed();
    pods.create(&PostParams::default(), &pod("other", json!({})))
        .await
        .unwrap();
    pods.patch(
        "p",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"watched": "no"}}})),
    )
    .await
    .unwrap();
    pods.patch(
        "other",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"watched": "yes"}}})),
    )
    .await
    .unwrap();
    match next_change(&mut stream).await {
        WatchEvent::Deleted(p) => assert_eq!(name_of(&p), "p"),
        other => panic!("expected DELETED for p, got {other:?}"),
    }
    match next_change(&mut stream).await {
        WatchEvent::Added(p) => assert_eq!(name_of(&p), "other"),
        other => panic!("expected ADDED for other, got {other:?}"),
    }
}

#[tokio::test]
async fn watch_from_compacted_version_gets_410_expired() {
    let fake = FakeApiServer::builder()
        .history_limit(3)
        .start()
        .await
        .unwrap();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cms: Api<ConfigMap> = Api::namespaced(fake.client(), "default");
    let old = fake.resource_version().to_string();
    for i in 0..5 {
        cms.create(&PostParams::default(), &cm(&format!("c{i}"), json!({})))
            .await
            .unwrap();
    }
    let mut stream = cms
        .watch(&WatchParams::default(), &old)
        .await
        .unwrap()
        .boxed();
    match next_change(&mut stream).await {
        WatchEvent::Error(e) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
            assert!(
                e.message.starts_with("too old resource version"),
                "{}",
                e.message
            );
        }
        other => panic!("expected 410, got {other:?}"),
    }
    // A version inside the retained window still works.
    let recent = (fake.resource_version() - 1).to_string();
    let mut stream = cms
        .watch(&WatchParams::default(), &recent)
        .await
        .unwrap()
        .boxed();
    match next_change(&mut stream).await {
        WatchEvent::Added(c) => assert_eq!(name_of(&c), "c4"),
        other => panic!("expected ADDED c4, got {other:?}"),
    }
}

#[tokio::test]
async fn watch_bookmarks_carry_the_resource_version() {
    let fake = FakeApiServer::builder()
        .bookmark_interval(Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(fake.client(), "default");
    let rv = fake.resource_version();
    let mut stream = cms
        .watch(&WatchParams::default(), &rv.to_string())
        .await
        .unwrap()
        .boxed();
    match next(&mut stream).await.unwrap() {
        WatchEvent::Bookmark(b) => assert_eq!(b.metadata.resource_version, rv.to_string()),
        other => panic!("expected a bookmark, got {other:?}"),
    }
}

#[tokio::test]
async fn runtime_watcher_sees_changes_in_order_and_relists_after_410() {
    let fake = fake().await;
    let cms: Api<ConfigMap> = Api::namespaced(fake.client(), "warden");
    cms.create(&PostParams::default(), &cm("pre", json!({"w": "1"})))
        .await
        .unwrap();
    let mut events =
        watcher::watcher(cms.clone(), watcher::Config::default().labels("w=1")).boxed();

    // Initial list.
    assert!(matches!(next(&mut events).await.unwrap(), Event::Init));
    match next(&mut events).await.unwrap() {
        Event::InitApply(c) => assert_eq!(name_of(&c), "pre"),
        other => panic!("expected InitApply(pre), got {other:?}"),
    }
    assert!(matches!(next(&mut events).await.unwrap(), Event::InitDone));

    // Give the watcher a moment to open its watch, then change things.
    tokio::time::sleep(Duration::from_millis(100)).await;
    cms.create(&PostParams::default(), &cm("a", json!({"w": "1"})))
        .await
        .unwrap();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"x": "1"}})),
    )
    .await
    .unwrap();
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    match next(&mut events).await.unwrap() {
        Event::Apply(c) => assert!(name_of(&c) == "a" && c.data.is_none()),
        other => panic!("expected Apply(a), got {other:?}"),
    }
    match next(&mut events).await.unwrap() {
        Event::Apply(c) => assert_eq!(c.data.unwrap()["x"], "1"),
        other => panic!("expected Apply(a modified), got {other:?}"),
    }
    match next(&mut events).await.unwrap() {
        Event::Delete(c) => assert_eq!(name_of(&c), "a"),
        other => panic!("expected Delete(a), got {other:?}"),
    }

    // Compaction ends the open watch with 410; the watcher relists.
    cms.create(&PostParams::default(), &cm("during", json!({"w": "1"})))
        .await
        .unwrap();
    match next(&mut events).await.unwrap() {
        Event::Apply(c) => assert_eq!(name_of(&c), "during"),
        other => panic!("expected Apply(during), got {other:?}"),
    }
    fake.compact_history();
    let err = next(&mut events).await.unwrap_err();
    assert!(
        err.to_string().contains("410") || format!("{err:?}").contains("Expired"),
        "{err:?}"
    );
    assert!(matches!(next(&mut events).await.unwrap(), Event::Init));
    let mut relisted = Vec::new();
    loop {
        match next(&mut events).await.unwrap() {
            Event::InitApply(c) => relisted.push(name_of(&c)),
            Event::InitDone => break,
            other => panic!("unexpected {other:?} during relist"),
        }
    }
    relisted.sort();
    assert_eq!(relisted, ["during", "pre"]);
    // And it keeps watching after the relist.
    tokio::time::sleep(Duration::from_millis(100)).await;
    cms.create(&PostParams::default(), &cm("after", json!({"w": "1"})))
        .await
        .unwrap();
    match next(&mut events).await.unwrap() {
        Event::Apply(c) => assert_eq!(name_of(&c), "after"),
        other => panic!("expected Apply(after), got {other:?}"),
    }
}

#[tokio::test]
async fn runtime_watcher_works_with_streaming_lists() {
    let fake = fake().await;
    let cms: Api<ConfigMap> = Api::namespaced(fake.client(), "warden");
    cms.create(&PostParams::default(), &cm("one", json!({})))
        .await
        .unwrap();
    let stream = watcher::watcher(cms.clone(), watcher::Config::default().streaming_lists());
    let mut objects = stream.boxed();
    assert!(matches!(next(&mut objects).await.unwrap(), Event::Init));
    match next(&mut objects).await.unwrap() {
        Event::InitApply(c) => assert_eq!(name_of(&c), "one"),
        other => panic!("expected InitApply(one), got {other:?}"),
    }
    assert!(matches!(next(&mut objects).await.unwrap(), Event::InitDone));
    cms.create(&PostParams::default(), &cm("two", json!({})))
        .await
        .unwrap();
    match next(&mut objects).await.unwrap() {
        Event::Apply(c) => assert_eq!(name_of(&c), "two"),
        other => panic!("expected Apply(two), got {other:?}"),
    }
}
