#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The connector configuration as `warden.yaml` (agent.data_sources) and
//! the job input carry it.

use warden_core::DataSourceConfig;

#[test]
fn every_connector_kind_parses_from_yaml_with_its_defaults() {
    let yaml = r#"
- kind: bundle
  path: /var/lib/warden/bundle
- kind: prometheus
  url: http://prometheus.monitoring:9090
  domains: [application, database]
  credentials_domain: application-metrics
  service_label: job
- kind: loki
  url: http://loki.monitoring:3100
  tenant: prod
  timeout_seconds: 20
- kind: kubernetes
  namespaces: [shop, payments]
"#;
    let sources: Vec<DataSourceConfig> = serde_yaml::from_str(yaml).unwrap();
    let [
        DataSourceConfig::Bundle { .. },
        DataSourceConfig::Prometheus(p),
        DataSourceConfig::Loki(l),
        DataSourceConfig::Kubernetes(k),
    ] = sources.as_slice()
    else {
        panic!("{sources:?}")
    };
    assert_eq!(p.service_label, "job");
    assert_eq!(p.credentials_domain.as_deref(), Some("application-metrics"));
    assert_eq!((p.timeout_seconds, p.retries, p.step_seconds), (10, 2, 60));
    assert_eq!(p.max_response_bytes, 16 * 1024 * 1024);
    assert_eq!(l.tenant.as_deref(), Some("prod"));
    assert_eq!((l.timeout_seconds, l.page_limit), (20, 5000));
    assert_eq!(l.service_label, "service");
    assert_eq!(k.namespaces, ["shop", "payments"]);
    assert_eq!(k.service_labels, ["app.kubernetes.io/name", "app"]);
    assert_eq!(k.max_log_bytes, 1024 * 1024);
    // It round-trips through the job input's JSON.
    let json = serde_json::to_string(&sources).unwrap();
    let back: Vec<DataSourceConfig> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, sources);
}

#[test]
fn a_misspelt_field_is_named() {
    let err = serde_yaml::from_str::<DataSourceConfig>(
        "kind: prometheus\nurl: http://p:9090\ntimeout_secs: 5\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("timeout_secs"), "{err}");
}
