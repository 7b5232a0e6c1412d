#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

//! Keeps the fake fast enough that tests built on it stay quick.

mod common;

use std::time::Instant;

use common::fake;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

#[tokio::test]
async fn five_hundred_creates_and_a_filtered_list_take_well_under_ten_seconds() {
    let fake = fake().await;
    let cms: Api<ConfigMap> = Api::namespaced(fake.client(), "warden");
    let start = Instant::now();
    for i in 0..500 {
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": format!("cm-{i}"), "labels": {"parity": if i % 2 == 0 { "even" } else { "odd" }}},
            "data": {"i": i.to_string()}
        }))
        .unwrap();
        cms.create(&PostParams::default(), &cm).await.unwrap();
    }
    let created = start.elapsed();
    let even = cms
        .list(&ListParams::default().labels("parity=even"))
        .await
        .unwrap();
    let total = start.elapsed();
    assert_eq!(even.items.len(), 250);
    eprintln!(
        "500 creates in {:?} ({:.0} req/s); filtered list of 250 in {:?}",
        created,
        500.0 / created.as_secs_f64(),
        total - created
    );
    assert!(total.as_secs() < 10, "took {total:?}");
}
