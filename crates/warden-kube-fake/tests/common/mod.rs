#![allow(dead_code)]

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;
use warden_kube_fake::FakeApiServer;

pub async fn fake() -> FakeApiServer {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let fake = FakeApiServer::start().await.expect("fake starts");
    fake.ensure_namespace("warden").expect("namespace");
    fake
}

pub fn job(name: &str, labels: serde_json::Value) -> Job {
    serde_json::from_value(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "ghcr.io/warden/agent:1.0"}]
                }
            }
        }
    }))
    .expect("job fixture")
}

pub fn pod(name: &str, labels: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "main", "image": "nginx:1.27"}]}
    }))
    .expect("pod fixture")
}

pub fn api_error(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}
