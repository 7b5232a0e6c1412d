#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use common::{api_error, fake, pod};
use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams, PostParams};
use serde_json::json;
use warden_kube_fake::ContainerState;

async fn next(
    lines: &mut futures::stream::BoxStream<'static, std::io::Result<String>>,
) -> Option<std::io::Result<String>> {
    tokio::time::timeout(Duration::from_secs(5), lines.next())
        .await
        .expect("line within 5 s")
}

#[tokio::test]
async fn logs_with_tail_and_container_selection() {
    let fake = fake().await;
    let pods: Api<Pod> = Api::namespaced(fake.client(), "warden");
    pods.create(&PostParams::default(), &pod("p", json!({})))
        .await
        .unwrap();
    fake.set_container_state("warden", "p", None, ContainerState::running())
        .unwrap();
    fake.append_pod_log("warden", "p", "one\ntwo\n").unwrap();
    fake.append_pod_log("warden", "p", "three\n").unwrap();

    assert_eq!(
        pods.logs("p", &LogParams::default()).await.unwrap(),
        "one\ntwo\nthree\n"
    );
    let tail = LogParams {
        tail_lines: Some(2),
        ..Default::default()
    };
    assert_eq!(pods.logs("p", &tail).await.unwrap(), "two\nthree\n");
    let stamped = LogParams {
        timestamps: true,
        tail_lines: Some(1),
        ..Default::default()
    };
    let line = pods.logs("p", &stamped).await.unwrap();
    let (ts, text) = line.split_once(' ').unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(ts).is_ok(),
        "timestamp prefix {ts}"
    );
    assert_eq!(text, "three\n");
    let future = LogParams {
        since_seconds: Some(1),
        ..Default::default()
    };
    assert_eq!(pods.logs("p", &future).await.unwrap().lines().count(), 3);

    let err = api_error(
        pods.logs(
            "p",
            &LogParams {
                container: Some("sidecar".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 400);
    assert_eq!(err.message, "container sidecar is not valid for pod p");
    assert_eq!(
        api_error(
            pods.logs("missing", &LogParams::default())
                .await
                .unwrap_err()
        )
        .code,
        404
    );
}

#[tokio::test]
async fn waiting_containers_have_no_logs_yet() {
    let fake = fake().await;
    let pods: Api<Pod> = Api::namespaced(fake.client(), "warden");
    pods.create(&PostParams::default(), &pod("p", json!({})))
        .await
        .unwrap();
    fake.set_container_state(
        "warden",
        "p",
        None,
        ContainerState::image_pull_back_off("nginx:1.27"),
    )
    .unwrap();
    let err = api_error(pods.logs("p", &LogParams::default()).await.unwrap_err());
    assert_eq!(err.code, 400);
    assert_eq!(
        err.message,
        "container \"main\" in pod \"p\" is waiting to start: ImagePullBackOff"
    );
}

#[tokio::test]
async fn multi_container_pods_need_a_container_name() {
    let fake = fake().await;
    let pods: Api<Pod> = Api::namespaced(fake.client(), "warden");
    let two: Pod = serde_json::from_value(json!({
        "metadata": {"name": "two"},
        "spec": {"containers": [{"name": "a", "image": "i:1"}, {"name": "b", "image": "i:1"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &two).await.unwrap();
    fake.append_container_log("warden", "two", Some("b"), "from b\n")
        .unwrap();
    let err = api_error(pods.logs("two", &LogParams::default()).await.unwrap_err());
    assert_eq!(
        err.message,
        "a container name must be specified for pod two, choose one of: [a b]"
    );
    let b = LogParams {
        container: Some("b".into()),
        ..Default::default()
    };
    assert_eq!(pods.logs("two", &b).await.unwrap(), "from b\n");
}

#[tokio::test]
async fn previous_logs_after_a_restart() {
    let fake = fake().await;
    let pods: Api<Pod> = Api::namespaced(fake.client(), "warden");
    pods.create(&PostParams::default(), &pod("p", json!({})))
        .await
        .unwrap();
    fake.set_container_state("warden", "p", None, ContainerState::running())
        .unwrap();
    let prev = LogParams {
        previous: true,
        ..Default::default()
    };
    assert_eq!(
        api_error(pods.logs("p", &prev).await.unwrap_err()).code,
        400
    );
    fake.append_pod_log("warden", "p", "fatal: out of memory\n")
        .unwrap();
    let restarted = fake
        .restart_container("warden", "p", None, ContainerState::oom_killed())
        .unwrap();
    assert_eq!(
        restarted["status"]["containerStatuses"][0]["restartCount"],
        1
    );
    assert_eq!(
        restarted["status"]["containerStatuses"][0]["lastState"]["terminated"]["reason"],
        "OOMKilled"
    );
    fake.append_pod_log("warden", "p", "booting again\n")
        .unwrap();
    assert_eq!(
        pods.logs("p", &prev).await.unwrap(),
        "fatal: out of memory\n"
    );
    assert_eq!(
        pods.logs("p", &LogParams::default()).await.unwrap(),
        "booting again\n"
    );
}

#[tokio::test]
async fn follow_streams_new_lines_until_the_container_terminates() {
    let fake = fake().await;
    let pods: Api<Pod> = Api::namespaced(fake.client(), "warden");
    pods.create(&PostParams::default(), &pod("p", json!({})))
        .await
        .unwrap();
    fake.set_container_state("warden", "p", None, ContainerState::running())
        .unwrap();
    fake.append_pod_log("warden", "p", "before\n").unwrap();

    let follow = LogParams {
        follow: true,
        ..Default::default()
    };
    let mut lines = pods.log_stream("p", &follow).await.unwrap().lines().boxed();
    assert_eq!(next(&mut lines).await.unwrap().unwrap(), "before");

    fake.append_pod_log("warden", "p", "during 1\n").unwrap();
    assert_eq!(next(&mut lines).await.unwrap().unwrap(), "during 1");
    fake.append_pod_log("warden", "p", "during ").unwrap();
    fake.append_pod_log("warden", "p", "2\n").unwrap();
    assert_eq!(next(&mut lines).await.unwrap().unwrap(), "during 2");

    fake.append_pod_log("warden", "p", "last words\n").unwrap();
    fake.set_container_state("warden", "p", None, ContainerState::oom_killed())
        .unwrap();
    assert_eq!(next(&mut lines).await.unwrap().unwrap(), "last words");
    assert!(
        next(&mut lines).await.is_none(),
        "stream ends when the container terminates"
    );
}

#[tokio::test]
async fn a_recreated_pod_starts_with_an_empty_log() {
    let fake = fake().await;
    let pods: Api<Pod> = Api::namespaced(fake.client(), "warden");
    pods.create(&PostParams::default(), &pod("p", json!({})))
        .await
        .unwrap();
    fake.append_pod_log("warden", "p", "old life\n").unwrap();
    pods.delete("p", &Default::default()).await.unwrap();
    pods.create(&PostParams::default(), &pod("p", json!({})))
        .await
        .unwrap();
    assert_eq!(pods.logs("p", &LogParams::default()).await.unwrap(), "");
}
