//! The job's domain secrets, read once at start with the investigation's
//! own identity.
//!
//! Each read is logged with the domain and the identity's accessor — never
//! the value. A domain whose secret cannot be read is logged and left out:
//! the connectors that would need it report unavailability as evidence
//! rather than the job failing.

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde_json::json;
use warden_core::{JobIdentity, SecretsBackend};
use warden_secrets::JobClient;

use crate::events::EventLog;

/// Secret per granted domain name; dropped (and zeroed) with the job.
#[derive(Default)]
pub struct DomainSecrets {
    values: BTreeMap<String, SecretString>,
}

impl DomainSecrets {
    pub fn get(&self, domain: &str) -> Option<&SecretString> {
        self.values.get(domain)
    }

    pub fn domains(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl std::fmt::Debug for DomainSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DomainSecrets")
            .field("domains", &self.values.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Reads every granted domain's secret.
pub async fn fetch(identity: &JobIdentity, events: &mut EventLog) -> DomainSecrets {
    let mut out = DomainSecrets::default();
    let accessor = identity.accessor.as_str();
    let read = match identity.backend {
        SecretsBackend::Embedded => read_embedded(identity, &mut out, events).await,
        SecretsBackend::Openbao => read_openbao(identity, &mut out, events).await,
    };
    // Only a failure before any domain could be tried lands here; a
    // domain that cannot be read is logged on its own.
    if let Err(error) = read {
        events.error(
            "secrets_unavailable",
            json!({"accessor": accessor, "error": error}),
        );
    }
    out
}

/// One domain's answer: kept and logged, or logged as unavailable.
fn record(
    out: &mut DomainSecrets,
    events: &mut EventLog,
    domain: &str,
    accessor: &str,
    value: Result<SecretString, String>,
) {
    match value {
        Ok(v) => {
            out.values.insert(domain.to_string(), v);
            events.info(
                "secret_read",
                json!({"domain": domain, "accessor": accessor}),
            );
        }
        Err(error) => unavailable(events, domain, accessor, &error),
    }
}

async fn read_embedded(
    identity: &JobIdentity,
    out: &mut DomainSecrets,
    events: &mut EventLog,
) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    for grant in &identity.domains {
        let url = format!(
            "{}/api/v1/secrets/{}",
            identity.address.trim_end_matches('/'),
            grant.name
        );
        let value = match client
            .get(url)
            .bearer_auth(secrecy::ExposeSecret::expose_secret(&identity.credential))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => r
                .text()
                .await
                .map(SecretString::from)
                .map_err(|e| e.to_string()),
            Ok(r) => Err(format!("HTTP {}", r.status().as_u16())),
            Err(e) => Err(e.to_string()),
        };
        record(out, events, &grant.name, &identity.accessor, value);
    }
    Ok(())
}

async fn read_openbao(
    identity: &JobIdentity,
    out: &mut DomainSecrets,
    events: &mut EventLog,
) -> Result<(), String> {
    let client = JobClient::new(&identity.address).map_err(|e| e.to_string())?;
    // The wrapping token works once: whoever unwraps it first owns the
    // identity, and a second unwrap (by anyone) fails loudly.
    let token = client
        .unwrap(&identity.credential)
        .await
        .map_err(|e| e.to_string())?;
    for grant in &identity.domains {
        let value = client
            .read_kv(&token, &grant.path)
            .await
            .map_err(|e| e.to_string());
        record(out, events, &grant.name, &identity.accessor, value);
    }
    Ok(())
}

fn unavailable(events: &mut EventLog, domain: &str, accessor: &str, error: &str) {
    events.warn(
        "secret_unavailable",
        json!({"domain": domain, "accessor": accessor, "error": error}),
    );
}
