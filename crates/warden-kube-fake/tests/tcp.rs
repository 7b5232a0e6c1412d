#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

//! The same router over real TCP, for clients built from a `kube::Config`
//! or a kubeconfig, and for other processes.

mod common;

use common::{api_error, fake, pod};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::json;
use warden_kube_fake::ServiceAccountIdentity;

#[tokio::test]
async fn config_client_over_tcp_sees_the_same_store() {
    let fake = fake().await;
    let client = kube::Client::try_from(fake.config()).unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "warden");
    pods.create(&PostParams::default(), &pod("over-tcp", json!({})))
        .await
        .unwrap();
    assert!(fake.object("pods", Some("warden"), "over-tcp").is_some());
    // Discovery works for clients that need it.
    let client = kube::Client::try_from(fake.config()).unwrap();
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "33")
    );
    let discovery = kube::Discovery::new(client).run().await.unwrap();
    assert!(discovery.has_group("batch"));
    assert!(discovery.has_group("rbac.authorization.k8s.io"));
}

#[tokio::test]
async fn kubeconfig_and_tokens_over_tcp() {
    let fake = fake().await;
    let kubeconfig: kube::config::Kubeconfig =
        serde_yaml::from_str(&fake.kubeconfig_yaml(None)).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    Api::<Pod>::namespaced(client, "warden")
        .list(&Default::default())
        .await
        .unwrap();

    // A service-account token with no RBAC is authenticated but forbidden.
    fake.register_token("tok-none", ServiceAccountIdentity::new("warden", "default"));
    let client = kube::Client::try_from(fake.config_with_token("tok-none")).unwrap();
    let err = api_error(
        Api::<Pod>::namespaced(client, "warden")
            .list(&Default::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 403);
}
