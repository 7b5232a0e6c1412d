//! The OpenBao/Vault broker: one token per investigation.
//!
//! ```text
//! control plane (own token, may use role warden-investigation)
//!   │ POST auth/token/create/warden-investigation      X-Vault-Wrap-TTL: 120s
//!   │   policies = warden-domain-<d> for each allowed domain
//!   │   meta = {investigation_id, phase, namespace}, display_name = id
//!   │   ttl = explicit_max_ttl = seconds until the deadline
//!   │ ◀── wrapping token (single use, 120 s) + accessor of the real token
//!   │ POST auth/token/lookup-accessor   (checks what was created; revokes it if wrong)
//!   ▼
//! job ── POST sys/wrapping/unwrap ──▶ its own token ──▶ agent/data/<domain>,
//!                                                      database/creds/warden-readonly
//! end ── POST auth/token/revoke-accessor ──▶ token gone, its DB users dropped
//! ```
//!
//! Why this shape:
//! - **A token role, not the control plane's own policies.** The role's
//!   `allowed_policies` is the list of domain policies; OpenBao refuses any
//!   other, so a bug in the control plane cannot mint a broader token.
//!   `orphan=true` keeps investigation tokens alive independently of the
//!   control plane's token; `renewable=false` and `explicit_max_ttl` mean no
//!   one can stretch a token past its investigation's deadline.
//! - **Response wrapping.** The control plane never holds the investigation's
//!   token, only a single-use wrapping token it hands to the job. If anyone
//!   else unwrapped it first, the job's unwrap fails loudly.
//! - **Revocation by accessor.** The accessor identifies the token without
//!   granting its power, so it can be kept in memory, logged and stored by the
//!   control plane; revoking it also revokes every lease the token created,
//!   which drops dynamic database users.
//! - **Attribution.** The token's metadata carries the investigation id, and
//!   OpenBao's audit log records it with every request the token makes.
//!
//! Jobs may also log in with their service-account JWT (`jwt` or
//! `kubernetes` auth); [`OpenBaoAdmin::configure`] sets up a role per trust
//! phase for that. See `docs/secrets.md`.
//!
//! Failure: an unreachable server, a sealed one and error answers become
//! [`SecretsError::Unavailable`], [`SecretsError::Sealed`],
//! [`SecretsError::Denied`] or [`SecretsError::Backend`]; requests time out
//! after 5 s, and only connection failures are retried, for at most
//! [`OpenBaoConfig::retry_for`] and never past the investigation's deadline.
//! If a token was created but cannot be confirmed, it is revoked before the
//! error is returned. A request that times out after OpenBao acted on it can
//! still leave a token behind; it dies at its TTL.

mod admin;
mod http;
mod job;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::time::Instant;
use warden_core::ports::{IssuedIdentity, SecretBroker, SecretError};
use warden_core::{Domain, InvestigationId, TrustPhase};

pub use admin::{
    CONTROL_PLANE_POLICY, DATABASE_CONNECTION, DatabaseSetup, JwtSetup, KV_MOUNT, OpenBaoAdmin,
    Setup, control_plane_policy_hcl, jwt_role_name, service_account_subject,
};
pub use http::Health;
pub use job::{DbCredentials, JobClient};

use crate::domain::{self, SecretsDomain};
use crate::error::SecretsError;
use http::{BACKEND, Call, Http, check_name, str_at};

/// The token role investigation tokens are created through.
pub const DEFAULT_TOKEN_ROLE: &str = "warden-investigation";

/// How long the job has to unwrap its token.
pub const DEFAULT_WRAP_TTL: Duration = Duration::from_secs(120);

#[derive(Debug, Clone)]
pub struct OpenBaoConfig {
    /// `http://127.0.0.1:8200`, `https://openbao.vault.svc:8200`.
    pub address: String,
    /// The control plane's own token, allowed to create tokens through
    /// `token_role`, look them up and revoke them by accessor.
    pub token: SecretString,
    /// The Kubernetes namespace investigations run in; recorded in token
    /// metadata.
    pub namespace: String,
    pub token_role: String,
    pub domains: Vec<SecretsDomain>,
    pub wrap_ttl: Duration,
    /// How long failures to connect are retried within one call.
    pub retry_for: Duration,
}

impl OpenBaoConfig {
    /// Defaults for everything but the address and token.
    pub fn new(address: impl Into<String>, token: SecretString) -> Self {
        OpenBaoConfig {
            address: address.into(),
            token,
            namespace: "warden".to_string(),
            token_role: DEFAULT_TOKEN_ROLE.to_string(),
            domains: domain::default_domains(),
            wrap_ttl: DEFAULT_WRAP_TTL,
            retry_for: Duration::from_secs(1),
        }
    }
}

/// Accessors of what `issue` created for one investigation.
#[derive(Debug, Clone)]
struct Issued {
    accessor: String,
    wrapping_accessor: String,
}

#[derive(Debug)]
pub struct OpenBaoBroker {
    http: Http,
    config: OpenBaoConfig,
    issued: Mutex<HashMap<InvestigationId, Issued>>,
}

impl OpenBaoBroker {
    pub fn new(config: OpenBaoConfig) -> Result<Self, SecretsError> {
        let problems = domain::validate_domains(&config.domains);
        if !problems.is_empty() {
            return Err(SecretsError::Invalid(problems.join("; ")));
        }
        check_name("token role", &config.token_role)?;
        Ok(OpenBaoBroker {
            http: Http::new(&config.address)?,
            config,
            issued: Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &OpenBaoConfig {
        &self.config
    }

    /// Whether the server is reachable, initialised and unsealed.
    pub async fn health(&self) -> Result<Health, SecretsError> {
        self.http.health().await
    }

    /// The accessor recorded for `investigation` by this process, if any.
    pub fn accessor_of(&self, investigation: &InvestigationId) -> Option<String> {
        self.lock().get(investigation).map(|i| i.accessor.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<InvestigationId, Issued>> {
        self.issued.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates the investigation's token; see the module docs. The returned
    /// credential is the single-use wrapping token.
    pub async fn issue_identity(
        &self,
        investigation: &InvestigationId,
        phase: TrustPhase,
        domains: &[Domain],
        expires_at: DateTime<Utc>,
    ) -> Result<IssuedIdentity, SecretsError> {
        let inv = InvestigationId::parse(investigation.as_str()).map_err(SecretsError::Invalid)?;
        let now = Utc::now();
        let ttl = (expires_at - now).num_seconds();
        if ttl < 1 {
            return Err(SecretsError::Invalid(format!(
                "identity for {inv} would expire at {expires_at}, less than a second from now"
            )));
        }
        let mut names: Vec<String> = Vec::new();
        for d in domains {
            domain::find(&self.config.domains, d.as_str())?;
            if !names.iter().any(|n| n == d.as_str()) {
                names.push(d.as_str().to_string());
            }
        }
        names.sort();
        let policies: Vec<String> = names
            .iter()
            .filter_map(|n| domain::find(&self.config.domains, n).ok())
            .map(SecretsDomain::policy_name)
            .collect();

        let body = json!({
            "policies": policies,
            "meta": {
                "investigation_id": inv.as_str(),
                "phase": phase.as_str(),
                "namespace": self.config.namespace,
            },
            "display_name": inv.as_str(),
            "ttl": format!("{ttl}s"),
            "explicit_max_ttl": format!("{ttl}s"),
            "renewable": false,
        });
        let call = Call::new(
            Method::POST,
            format!("auth/token/create/{}", self.config.token_role),
            "create investigation token",
        )
        .token(&self.config.token)
        .body(body)
        .wrapped(self.config.wrap_ttl);
        let until = retry_deadline(self.config.retry_for, expires_at);
        let answer = self
            .http
            .send_until(&call, until)
            .await?
            .unwrap_or(Value::Null);

        let (wrapping_token, wrapping_accessor, accessor) = match unwrap_info(&answer) {
            Ok(info) => info,
            Err(e) => {
                // Created but not wrapped (a proxy dropped the header?): the
                // token was exposed to us; it must not survive.
                if let Some(acc) = answer.pointer("/auth/accessor").and_then(Value::as_str) {
                    self.revoke_quietly(acc).await;
                }
                return Err(e);
            }
        };
        let confirmed = self.confirm(&accessor, &inv, &policies, ttl, until).await;
        let expires_at = match confirmed {
            Ok(at) => at.min(expires_at),
            Err(e) => {
                self.revoke_quietly(&accessor).await;
                self.revoke_quietly(&wrapping_accessor).await;
                return Err(e);
            }
        };
        self.lock().insert(
            inv.clone(),
            Issued {
                accessor: accessor.clone(),
                wrapping_accessor,
            },
        );
        tracing::info!(investigation = %inv, accessor = %accessor, domains = ?names, %expires_at, "issued investigation token");
        Ok(IssuedIdentity {
            accessor,
            expires_at,
            domains: names.into_iter().map(Domain).collect(),
            credential: wrapping_token,
        })
    }

    /// Checks that the token behind `accessor` is exactly what was asked
    /// for: a role misconfiguration (a period, extra policies, a longer TTL)
    /// must not hand out more than the investigation's plan allows.
    async fn confirm(
        &self,
        accessor: &str,
        inv: &InvestigationId,
        policies: &[String],
        ttl: i64,
        until: Instant,
    ) -> Result<DateTime<Utc>, SecretsError> {
        const OP: &str = "confirm investigation token";
        let call = Call::new(Method::POST, "auth/token/lookup-accessor", OP)
            .token(&self.config.token)
            .body(json!({ "accessor": accessor }));
        let answer = self
            .http
            .send_until(&call, until)
            .await?
            .unwrap_or(Value::Null);
        let data = answer.get("data").unwrap_or(&Value::Null);
        let wrong = |what: String| SecretsError::Backend {
            backend: BACKEND,
            operation: OP,
            detail: format!("token created for {inv} {what}; it was revoked"),
        };
        let granted: Vec<&str> = data
            .get("policies")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let extra: Vec<&&str> = granted
            .iter()
            .filter(|p| **p != "default" && !policies.iter().any(|q| q == *p))
            .collect();
        if !extra.is_empty() {
            return Err(wrong(format!(
                "carries policies it was not asked for: {extra:?}"
            )));
        }
        if let Some(missing) = policies.iter().find(|p| !granted.contains(&p.as_str())) {
            return Err(wrong(format!("lacks policy {missing}")));
        }
        if data
            .pointer("/meta/investigation_id")
            .and_then(Value::as_str)
            != Some(inv.as_str())
        {
            return Err(wrong("does not carry its investigation id".into()));
        }
        if data.get("renewable").and_then(Value::as_bool) != Some(false) {
            return Err(wrong("is renewable".into()));
        }
        // A child of the control plane's token would die with it, taking
        // every running investigation's access along: the role must create
        // orphans.
        if data.get("orphan").and_then(Value::as_bool) != Some(true) {
            return Err(wrong(format!(
                "is not an orphan (set orphan=true on token role {})",
                self.config.token_role
            )));
        }
        let max_ttl = data
            .get("explicit_max_ttl")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let left = data.get("ttl").and_then(Value::as_i64).unwrap_or(i64::MAX);
        if max_ttl == 0 || max_ttl > ttl || left > ttl {
            return Err(wrong(format!(
                "lives longer than the investigation (ttl {left}s, max {max_ttl}s, wanted {ttl}s)"
            )));
        }
        let expire_time = data
            .get("expire_time")
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        Ok(expire_time.unwrap_or_else(|| Utc::now() + chrono::Duration::seconds(left)))
    }

    /// Revokes the investigation's token (and with it every lease it
    /// created) and its wrapping token. Idempotent. An investigation this
    /// process issued nothing for is logged and accepted: after a restart
    /// use [`revoke_accessor`](Self::revoke_accessor) with the stored accessor.
    pub async fn revoke_investigation(
        &self,
        investigation: &InvestigationId,
    ) -> Result<(), SecretsError> {
        let issued = self.lock().get(investigation).cloned();
        let Some(issued) = issued else {
            tracing::warn!(investigation = %investigation, "no token recorded for investigation; revoke it by accessor");
            return Ok(());
        };
        self.revoke_accessor(&issued.accessor).await?;
        // The wrapping token only yields a revoked token now; removing it is
        // tidiness, not safety.
        self.revoke_quietly(&issued.wrapping_accessor).await;
        self.lock().remove(investigation);
        tracing::info!(investigation = %investigation, accessor = %issued.accessor, "revoked investigation token");
        Ok(())
    }

    /// Revokes the token with `accessor` and every lease it created.
    /// Revoking a token that is already gone succeeds.
    pub async fn revoke_accessor(&self, accessor: &str) -> Result<(), SecretsError> {
        check_name("token accessor", accessor)?;
        let call = Call::new(
            Method::POST,
            "auth/token/revoke-accessor",
            "revoke investigation token",
        )
        .token(&self.config.token)
        .body(json!({ "accessor": accessor }));
        let until = Instant::now() + self.config.retry_for;
        self.http.send_until(&call, until).await.map(|_| ())
    }

    async fn revoke_quietly(&self, accessor: &str) {
        if let Err(e) = self.revoke_accessor(accessor).await {
            tracing::warn!(accessor, error = %e, "could not revoke token");
        }
    }
}

/// `(wrapping token, wrapping token accessor, wrapped token accessor)`.
fn unwrap_info(answer: &Value) -> Result<(SecretString, String, String), SecretsError> {
    const OP: &str = "create investigation token";
    if answer.get("wrap_info").is_none_or(Value::is_null) {
        return Err(SecretsError::Backend {
            backend: BACKEND,
            operation: OP,
            detail: "the answer was not response-wrapped; the token was revoked".into(),
        });
    }
    let token = SecretString::from(str_at(answer, "/wrap_info/token", OP)?.to_string());
    let wrapping_accessor = str_at(answer, "/wrap_info/accessor", OP)?.to_string();
    let accessor = str_at(answer, "/wrap_info/wrapped_accessor", OP)?.to_string();
    Ok((token, wrapping_accessor, accessor))
}

/// Retries end after `retry_for`, or at the deadline if that comes first.
fn retry_deadline(retry_for: Duration, deadline: DateTime<Utc>) -> Instant {
    let to_deadline = (deadline - Utc::now()).to_std().unwrap_or_default();
    Instant::now() + retry_for.min(to_deadline)
}

#[async_trait]
impl SecretBroker for OpenBaoBroker {
    fn name(&self) -> &str {
        "openbao"
    }

    async fn issue(
        &self,
        investigation: &InvestigationId,
        phase: TrustPhase,
        domains: &[Domain],
        expires_at: DateTime<Utc>,
    ) -> Result<IssuedIdentity, SecretError> {
        Ok(self
            .issue_identity(investigation, phase, domains, expires_at)
            .await?)
    }

    async fn revoke(
        &self,
        investigation: &InvestigationId,
        accessor: Option<&str>,
    ) -> Result<(), SecretError> {
        match accessor {
            // Recorded by the caller: works across control-plane restarts.
            Some(accessor) if self.accessor_of(investigation).is_none() => {
                Ok(self.revoke_accessor(accessor).await?)
            }
            _ => Ok(self.revoke_investigation(investigation).await?),
        }
    }
}
