//! A configuration whose phases differ: shadow and assist read metrics and
//! logs; remediate and autonomous also read the payments database.
#![allow(dead_code)]

use serde_json::Value;
use warden_control::config::Config;

pub const DIFFERING_PHASES: &str = r#"
secrets:
  backend: openbao
  domains:
    - name: metrics
      path: agent/data/metrics
      serves: ["*"]
      connector: prometheus
      endpoints:
        - {cidr: 10.10.0.0/24, port: 9090}
    - name: logs
      path: agent/data/logs
      serves: ["*"]
      connector: loki
      endpoints:
        - {cidr: 10.10.1.0/24, port: 3100}
    - name: payments-db
      path: agent/data/payments/db
      serves: [database]
      connector: postgres
      endpoints:
        - {cidr: 10.20.0.0/16, port: 5432}
    - name: kube-api
      path: agent/data/kube-api
      serves: [kubernetes]
      connector: kubernetes
      endpoints:
        - {cidr: 172.18.0.2/32, port: 6443}
namespaces:
  targets: [default, shop]
environments:
  - {name: dev, phase: remediate}
  - {name: prod, phase: shadow}
phases:
  shadow:
    readable_domains: [metrics, logs]
  assist:
    readable_domains: [metrics, logs, kube-api]
  remediate:
    readable_domains: [metrics, logs, payments-db, kube-api]
    actions: [restart_pod, scale_deployment]
    confidence_threshold: 0.9
  autonomous:
    readable_domains: [metrics, logs, payments-db, kube-api]
    actions: [restart_pod]
    approval_required: false
    confidence_threshold: 0.95
"#;

pub fn differing() -> Config {
    Config::parse(DIFFERING_PHASES, "differing.yaml").unwrap()
}

pub fn example() -> Config {
    Config::parse(
        include_str!("../../../../examples/warden.yaml"),
        "examples/warden.yaml",
    )
    .unwrap()
}

pub fn kind(o: &Value) -> &str {
    o["kind"].as_str().unwrap()
}

pub fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap()
}

pub fn namespace(o: &Value) -> &str {
    o["metadata"]["namespace"].as_str().unwrap_or("")
}

pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}
