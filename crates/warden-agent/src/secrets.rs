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
    match identity.backend {
        SecretsBackend::Embedded => {
            let client = match reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
            {
                Ok(c) => c,
                Err(e) => {
                    events.warn(
                        "secrets_unavailable",
                        json!({"accessor": accessor, "error": e.to_string()}),
                    );
                    return out;
                }
            };
            for grant in &identity.domains {
                let url = format!(
                    "{}/api/v1/secrets/{}",
                    identity.address.trim_end_matches('/'),
                    grant.name
                );
                let answer = client
                    .get(url)
                    .bearer_auth(secrecy::ExposeSecret::expose_secret(&identity.credential))
                    .send()
                    .await;
                match answer {
                    Ok(r) if r.status().is_success() => match r.text().await {
                        Ok(value) => {
                            out.values
                                .insert(grant.name.clone(), SecretString::from(value));
                            events.info(
                                "secret_read",
                                json!({"domain": grant.name, "accessor": accessor}),
                            );
                        }
                        Err(e) => unavailable(events, &grant.name, accessor, &e.to_string()),
                    },
                    Ok(r) => unavailable(
                        events,
                        &grant.name,
                        accessor,
                        &format!("HTTP {}", r.status().as_u16()),
                    ),
                    Err(e) => unavailable(events, &grant.name, accessor, &e.to_string()),
                }
            }
        }
        SecretsBackend::Openbao => {
            let client = match JobClient::new(&identity.address) {
                Ok(c) => c,
                Err(e) => {
                    events.warn(
                        "secrets_unavailable",
                        json!({"accessor": accessor, "error": e.to_string()}),
                    );
                    return out;
                }
            };
            // The wrapping token works once: whoever unwraps it first owns
            // the identity, and a second unwrap (by anyone) fails loudly.
            let token = match client.unwrap(&identity.credential).await {
                Ok(t) => t,
                Err(e) => {
                    events.error(
                        "secrets_unavailable",
                        json!({"accessor": accessor, "error": e.to_string()}),
                    );
                    return out;
                }
            };
            for grant in &identity.domains {
                match client.read_kv(&token, &grant.path).await {
                    Ok(value) => {
                        out.values.insert(grant.name.clone(), value);
                        events.info(
                            "secret_read",
                            json!({"domain": grant.name, "accessor": accessor}),
                        );
                    }
                    Err(e) => unavailable(events, &grant.name, accessor, &e.to_string()),
                }
            }
        }
    }
    out
}

fn unavailable(events: &mut EventLog, domain: &str, accessor: &str, error: &str) {
    events.warn(
        "secret_unavailable",
        json!({"domain": domain, "accessor": accessor, "error": error}),
    );
}
