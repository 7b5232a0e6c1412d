//! Builds the live connectors (Prometheus, Loki, Kubernetes) from the job's
//! data source configuration and its domain secrets.
//!
//! A connector that names a `credentials_domain` gets that domain's secret
//! as its credentials; a domain that was not granted (or whose secret could
//! not be read) leaves the connector out, logged, rather than letting it run
//! unauthenticated against a server that expects credentials. Every
//! connector is given the read guard: in a job, the investigation's read
//! gate ([`crate::gate::GateGuard`]); [`AllowAll`] only where the input
//! carries no read policy.

use std::sync::Arc;

use serde_json::json;
use warden_connectors::{
    AllowAll, Credentials, KubernetesSource, LokiSource, PrometheusSource, ReadGuard,
};
use warden_core::DataSourceConfig;
use warden_core::ports::DataSource;

use crate::events::EventLog;
use crate::secrets::DomainSecrets;

fn credentials(
    source: &str,
    domain: Option<&str>,
    secrets: &DomainSecrets,
) -> Result<Credentials, String> {
    let Some(domain) = domain else {
        return Ok(Credentials::None);
    };
    let secret = secrets
        .get(domain)
        .ok_or_else(|| format!("{source}: the credentials domain {domain:?} was not granted"))?;
    Credentials::from_secret(secret).map_err(|e| format!("{source}: {e}"))
}

/// The connector for one live source configuration; `None` for a bundle
/// (opened elsewhere). Failures are logged and leave the source out.
pub fn open_live(
    config: &DataSourceConfig,
    secrets: &DomainSecrets,
    guard: &Arc<dyn ReadGuard>,
    events: &mut EventLog,
) -> Option<Box<dyn DataSource>> {
    let built: Result<Box<dyn DataSource>, (String, String)> = match config {
        DataSourceConfig::Bundle { .. } => return None,
        DataSourceConfig::Prometheus(c) => {
            let name = c.name.clone().unwrap_or_else(|| "prometheus".into());
            credentials(&name, c.credentials_domain.as_deref(), secrets)
                .and_then(|creds| PrometheusSource::new(c, creds).map_err(|e| e.to_string()))
                .map(|s| Box::new(s.with_guard(guard.clone())) as Box<dyn DataSource>)
                .map_err(|e| (name, e))
        }
        DataSourceConfig::Loki(c) => {
            let name = c.name.clone().unwrap_or_else(|| "loki".into());
            credentials(&name, c.credentials_domain.as_deref(), secrets)
                .and_then(|creds| LokiSource::new(c, creds).map_err(|e| e.to_string()))
                .map(|s| Box::new(s.with_guard(guard.clone())) as Box<dyn DataSource>)
                .map_err(|e| (name, e))
        }
        DataSourceConfig::Kubernetes(c) => {
            let name = c.name.clone().unwrap_or_else(|| "kubernetes".into());
            credentials(&name, c.credentials_domain.as_deref(), secrets)
                .and_then(|creds| {
                    KubernetesSource::connect_incluster(c, creds).map_err(|e| e.to_string())
                })
                .map(|s| Box::new(s.with_guard(guard.clone())) as Box<dyn DataSource>)
                .map_err(|e| (name, e))
        }
    };
    match built {
        Ok(source) => Some(source),
        Err((name, error)) => {
            events.warn(
                "source_unavailable",
                json!({"source": name, "error": error}),
            );
            None
        }
    }
}

/// The guard connectors get outside a job (tests and tools that open
/// sources directly); a job always guards them with its read gate.
pub fn default_guard() -> Arc<dyn ReadGuard> {
    Arc::new(AllowAll)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::open_sources;

    /// The job input carries the configuration as JSON.
    fn parse(json: &str) -> Vec<DataSourceConfig> {
        serde_json::from_str(json).unwrap()
    }

    #[tokio::test]
    async fn live_sources_are_opened_by_kind_and_name() {
        let configs = parse(
            r#"[
            {"kind": "prometheus", "url": "http://127.0.0.1:9", "domains": ["application"]},
            {"kind": "loki", "name": "loki-prod", "url": "http://127.0.0.1:9"},
            {"kind": "kubernetes", "namespaces": ["shop"], "api_url": "http://127.0.0.1:9"}
        ]"#,
        );
        let (mut events, log) = EventLog::capture("inv-1");
        let sources = open_sources(&configs, &DomainSecrets::default(), &mut events);
        let names: Vec<&str> = sources.iter().map(|s| s.name()).collect();
        assert_eq!(names, ["prometheus", "loki-prod", "kubernetes"]);
        assert_eq!(
            sources[0].domains(),
            vec![warden_core::Domain::new("application")]
        );
        assert!(log.events().is_empty(), "{}", log.text());
    }

    #[tokio::test]
    async fn a_source_whose_credentials_domain_was_not_granted_is_left_out() {
        let configs = parse(
            r#"[
            {"kind": "loki", "url": "http://127.0.0.1:9", "credentials_domain": "log-aggregation"},
            {"kind": "prometheus", "url": "ftp://nowhere"}
        ]"#,
        );
        let (mut events, log) = EventLog::capture("inv-1");
        let sources = open_sources(&configs, &DomainSecrets::default(), &mut events);
        assert!(sources.is_empty());
        let text = log.text();
        assert!(
            text.contains(r#"loki: the credentials domain \"log-aggregation\" was not granted"#),
            "{text}"
        );
        assert!(text.contains("only http and https are supported"), "{text}");
        assert_eq!(log.events().len(), 2);
    }
}
