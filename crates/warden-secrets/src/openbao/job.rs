//! The job's side: turn what the control plane handed over (a wrapping
//! token) or what the pod has (its service-account JWT) into the
//! investigation's own token, then read the domains it allows.
//!
//! Everything that comes back is a [`SecretString`]; nothing here logs.

use std::time::Duration;

use reqwest::Method;
use secrecy::SecretString;
use serde_json::{Value, json};

use super::http::{BACKEND, Call, Http, check_name, str_at};
use crate::domain::check_path;
use crate::error::{DenyReason, SecretsError};

/// A short-lived database user from the database secrets engine. It is
/// dropped when its lease ends or the token that asked for it is revoked.
#[derive(Debug)]
pub struct DbCredentials {
    pub username: String,
    pub password: SecretString,
    pub lease_id: String,
    pub lease_duration: Duration,
}

#[derive(Debug, Clone)]
pub struct JobClient {
    http: Http,
}

impl JobClient {
    pub fn new(address: &str) -> Result<Self, SecretsError> {
        Ok(JobClient {
            http: Http::new(address)?,
        })
    }

    /// Exchanges the single-use wrapping token for the investigation's token.
    /// Fails with `Denied` when the wrapping token was already used (by
    /// anyone), expired, or never existed.
    pub async fn unwrap(
        &self,
        wrapping_token: &SecretString,
    ) -> Result<SecretString, SecretsError> {
        const OP: &str = "unwrap investigation token";
        let call = Call::new(Method::POST, "sys/wrapping/unwrap", OP).token(wrapping_token);
        let answer = match self.http.send(&call).await {
            Ok(a) => a.unwrap_or(Value::Null),
            // OpenBao answers 400 for a used or unknown wrapping token.
            Err(SecretsError::Backend { detail, .. }) if detail.contains("wrapping token") => {
                return Err(SecretsError::denied(
                    "wrapping token",
                    DenyReason::NotAllowed,
                ));
            }
            Err(SecretsError::Denied { .. }) => {
                return Err(SecretsError::denied(
                    "wrapping token",
                    DenyReason::NotAllowed,
                ));
            }
            Err(e) => return Err(e),
        };
        client_token(&answer, OP)
    }

    /// Logs in with the pod's service-account JWT through the `jwt` auth
    /// method mounted at `mount`.
    pub async fn login_jwt(
        &self,
        mount: &str,
        role: &str,
        jwt: &SecretString,
    ) -> Result<SecretString, SecretsError> {
        self.login(mount, role, jwt, "jwt login").await
    }

    /// Logs in through the `kubernetes` auth method mounted at `mount`
    /// (OpenBao checks the JWT with a TokenReview against the API server).
    pub async fn login_kubernetes(
        &self,
        mount: &str,
        role: &str,
        jwt: &SecretString,
    ) -> Result<SecretString, SecretsError> {
        self.login(mount, role, jwt, "kubernetes login").await
    }

    async fn login(
        &self,
        mount: &str,
        role: &str,
        jwt: &SecretString,
        operation: &'static str,
    ) -> Result<SecretString, SecretsError> {
        check_path(mount)?;
        check_name("role", role)?;
        let body = json!({ "role": role, "jwt": secrecy::ExposeSecret::expose_secret(jwt) });
        let call = Call::new(Method::POST, format!("auth/{mount}/login"), operation)
            .body(body)
            .redacting(jwt);
        let answer = match self.http.send(&call).await {
            Ok(a) => a.unwrap_or(Value::Null),
            // A refused JWT is a 400 ("error validating token", "role ... not found").
            Err(SecretsError::Backend { detail, .. }) if detail.starts_with("400") => {
                return Err(SecretsError::denied(
                    format!("login to auth/{mount} as {role} ({detail})"),
                    DenyReason::NotAllowed,
                ));
            }
            Err(e) => return Err(e),
        };
        client_token(&answer, operation)
    }

    /// The secret at KV v2 data path `path` (`agent/data/<...>`): its `value`
    /// field when it has one, else the whole data map as JSON.
    pub async fn read_kv(
        &self,
        token: &SecretString,
        path: &str,
    ) -> Result<SecretString, SecretsError> {
        const OP: &str = "read secret";
        check_path(path)?;
        let call = Call::new(Method::GET, path, OP).token(token);
        let answer = self.http.send(&call).await?.unwrap_or(Value::Null);
        let data = answer
            .pointer("/data/data")
            .ok_or_else(|| SecretsError::Backend {
                backend: BACKEND,
                operation: OP,
                detail: format!("{path} is not a KV v2 secret (no data.data)"),
            })?;
        match data.get("value").and_then(Value::as_str) {
            Some(value) => Ok(SecretString::from(value.to_string())),
            None => Ok(SecretString::from(data.to_string())),
        }
    }

    /// A fresh database user from `database/creds/<role>`.
    pub async fn db_creds(
        &self,
        token: &SecretString,
        role: &str,
    ) -> Result<DbCredentials, SecretsError> {
        const OP: &str = "database credentials";
        check_name("database role", role)?;
        let call = Call::new(Method::GET, format!("database/creds/{role}"), OP).token(token);
        let answer = self.http.send(&call).await?.unwrap_or(Value::Null);
        Ok(DbCredentials {
            username: str_at(&answer, "/data/username", OP)?.to_string(),
            password: SecretString::from(str_at(&answer, "/data/password", OP)?.to_string()),
            lease_id: str_at(&answer, "/lease_id", OP)?.to_string(),
            lease_duration: Duration::from_secs(
                answer
                    .get("lease_duration")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
            ),
        })
    }
}

fn client_token(answer: &Value, operation: &'static str) -> Result<SecretString, SecretsError> {
    Ok(SecretString::from(
        str_at(answer, "/auth/client_token", operation)?.to_string(),
    ))
}
