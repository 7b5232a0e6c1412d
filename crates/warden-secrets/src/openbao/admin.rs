//! Setting OpenBao up for warden, and the few operator actions it needs.
//!
//! [`OpenBaoAdmin::configure`] is idempotent: it writes the domain policies,
//! the token role investigations are created through, the KV v2 mount at
//! `agent/`, optionally `jwt` auth with one role per trust phase, and
//! optionally the database secrets engine for PostgreSQL. Running it again
//! rewrites the same objects; a mount that exists with another type is an
//! error rather than something to replace.

use std::time::Duration;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use warden_core::TrustPhase;

use super::DEFAULT_TOKEN_ROLE;
use super::http::{BACKEND, Call, Health, Http, check_name, str_at};
use crate::domain::{self, DATABASE_ROLE, SecretsDomain, check_path};
use crate::error::SecretsError;

/// The mount the domains' KV v2 secrets live under.
pub const KV_MOUNT: &str = "agent";
/// The database secrets engine's connection name.
pub const DATABASE_CONNECTION: &str = "warden-pg";

/// The policy of the control plane's own token.
pub const CONTROL_PLANE_POLICY: &str = "warden-control-plane";

/// What the control plane may do: create investigation tokens through the
/// role, look them up and revoke them by accessor. Nothing else; it cannot
/// read any domain itself.
pub fn control_plane_policy_hcl(token_role: &str) -> String {
    format!(
        "# warden control plane: issue and revoke investigation identities.\n\
         path \"auth/token/create/{token_role}\" {{\n  capabilities = [\"create\", \"update\"]\n}}\n\
         path \"auth/token/lookup-accessor\" {{\n  capabilities = [\"update\"]\n}}\n\
         path \"auth/token/revoke-accessor\" {{\n  capabilities = [\"update\"]\n}}\n"
    )
}

/// The `jwt` auth role for a phase's jobs.
pub fn jwt_role_name(phase: TrustPhase) -> String {
    format!("warden-agent-{}", phase.as_str())
}

/// The `sub` of the service-account token of a phase's jobs.
pub fn service_account_subject(namespace: &str, phase: TrustPhase) -> String {
    format!(
        "system:serviceaccount:{namespace}:warden-agent-{}",
        phase.as_str()
    )
}

/// What [`OpenBaoAdmin::configure`] sets up.
#[derive(Debug, Clone)]
pub struct Setup {
    pub domains: Vec<SecretsDomain>,
    pub token_role: String,
    /// The longest any investigation token may live.
    pub token_max_ttl: Duration,
    pub jwt: Option<JwtSetup>,
    pub database: Option<DatabaseSetup>,
}

impl Setup {
    pub fn new(domains: Vec<SecretsDomain>) -> Self {
        Setup {
            domains,
            token_role: DEFAULT_TOKEN_ROLE.to_string(),
            token_max_ttl: Duration::from_secs(3600),
            jwt: None,
            database: None,
        }
    }
}

/// `jwt` auth validating service-account tokens offline with known keys.
#[derive(Debug, Clone)]
pub struct JwtSetup {
    pub mount: String,
    /// PEM public keys the service-account tokens are signed with.
    pub validation_pubkeys: Vec<String>,
    pub bound_issuer: Option<String>,
    pub audience: String,
    pub namespace: String,
    /// The domains each phase's jobs may read; one role per entry.
    pub phases: Vec<(TrustPhase, Vec<String>)>,
    /// Lifetime of a login token; should not exceed the longest deadline.
    pub token_ttl: Duration,
}

/// The database secrets engine for PostgreSQL.
#[derive(Debug, Clone)]
pub struct DatabaseSetup {
    /// `postgresql://{{username}}:{{password}}@host:port/db?sslmode=...`:
    /// the templates are filled by OpenBao, so no password sits in the URL.
    pub connection_url: String,
    pub username: String,
    pub password: SecretString,
    /// Lifetime of a created user unless its token dies first.
    pub default_ttl: Duration,
    pub max_ttl: Duration,
}

#[derive(Debug)]
pub struct OpenBaoAdmin {
    http: Http,
    token: SecretString,
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs().max(1))
}

impl OpenBaoAdmin {
    pub fn new(address: &str, token: SecretString) -> Result<Self, SecretsError> {
        Ok(OpenBaoAdmin {
            http: Http::new(address)?,
            token,
        })
    }

    async fn call(
        &self,
        method: Method,
        path: String,
        operation: &'static str,
        body: Option<Value>,
    ) -> Result<Value, SecretsError> {
        let mut call = Call::new(method, path, operation).token(&self.token);
        if let Some(body) = body {
            call = call.body(body);
        }
        Ok(self.http.send(&call).await?.unwrap_or(Value::Null))
    }

    pub async fn health(&self) -> Result<Health, SecretsError> {
        self.http.health().await
    }

    /// Sets everything up; see the module docs.
    pub async fn configure(&self, setup: &Setup) -> Result<(), SecretsError> {
        let problems = domain::validate_domains(&setup.domains);
        if !problems.is_empty() {
            return Err(SecretsError::Invalid(problems.join("; ")));
        }
        let kv_prefix = format!("{KV_MOUNT}/data/");
        if let Some(d) = setup
            .domains
            .iter()
            .find(|d| !d.path.starts_with(&kv_prefix))
        {
            return Err(SecretsError::Invalid(format!(
                "secrets domain {:?} path {:?} must start with {kv_prefix}",
                d.name, d.path
            )));
        }
        check_name("token role", &setup.token_role)?;

        for d in &setup.domains {
            self.call(
                Method::PUT,
                format!("sys/policies/acl/{}", d.policy_name()),
                "write domain policy",
                Some(json!({ "policy": d.policy_hcl() })),
            )
            .await?;
        }
        self.ensure_mount(
            "sys/mounts",
            KV_MOUNT,
            "kv",
            json!({ "type": "kv", "options": { "version": "2" } }),
        )
        .await?;
        self.call(
            Method::PUT,
            format!("sys/policies/acl/{CONTROL_PLANE_POLICY}"),
            "write control plane policy",
            Some(json!({ "policy": control_plane_policy_hcl(&setup.token_role) })),
        )
        .await?;
        let policies: Vec<String> = setup
            .domains
            .iter()
            .map(SecretsDomain::policy_name)
            .collect();
        self.call(
            Method::POST,
            format!("auth/token/roles/{}", setup.token_role),
            "write token role",
            Some(json!({
                "allowed_policies": policies,
                "orphan": true,
                "renewable": false,
                "token_type": "service",
                "token_explicit_max_ttl": secs(setup.token_max_ttl),
            })),
        )
        .await?;
        if let Some(jwt) = &setup.jwt {
            self.configure_jwt(jwt, &setup.domains).await?;
        }
        if let Some(db) = &setup.database {
            self.configure_database(db).await?;
        }
        Ok(())
    }

    async fn configure_jwt(
        &self,
        jwt: &JwtSetup,
        domains: &[SecretsDomain],
    ) -> Result<(), SecretsError> {
        check_path(&jwt.mount)?;
        self.ensure_mount("sys/auth", &jwt.mount, "jwt", json!({ "type": "jwt" }))
            .await?;
        let config = match &jwt.bound_issuer {
            Some(iss) => {
                json!({ "jwt_validation_pubkeys": jwt.validation_pubkeys, "bound_issuer": iss })
            }
            None => json!({ "jwt_validation_pubkeys": jwt.validation_pubkeys }),
        };
        self.call(
            Method::POST,
            format!("auth/{}/config", jwt.mount),
            "configure jwt auth",
            Some(config),
        )
        .await?;
        for (phase, names) in &jwt.phases {
            let mut policies = Vec::new();
            for n in names {
                policies.push(domain::find(domains, n)?.policy_name());
            }
            let role = json!({
                "role_type": "jwt",
                "user_claim": "sub",
                "bound_subject": service_account_subject(&jwt.namespace, *phase),
                "bound_audiences": [jwt.audience],
                // Nested service-account claims become token metadata, so the
                // audit log names the pod (and through it the investigation).
                "claim_mappings": {
                    "/kubernetes.io/pod/name": "pod",
                    "/kubernetes.io/namespace": "namespace",
                    "/kubernetes.io/serviceaccount/name": "service_account",
                },
                "token_policies": policies,
                "token_ttl": secs(jwt.token_ttl),
                "token_max_ttl": secs(jwt.token_ttl),
                "token_type": "service",
            });
            self.call(
                Method::POST,
                format!("auth/{}/role/{}", jwt.mount, jwt_role_name(*phase)),
                "write jwt role",
                Some(role),
            )
            .await?;
        }
        Ok(())
    }

    async fn configure_database(&self, db: &DatabaseSetup) -> Result<(), SecretsError> {
        self.ensure_mount(
            "sys/mounts",
            "database",
            "database",
            json!({ "type": "database" }),
        )
        .await?;
        let config = json!({
            "plugin_name": "postgresql-database-plugin",
            "connection_url": db.connection_url,
            "username": db.username,
            "password": db.password.expose_secret(),
            "allowed_roles": [DATABASE_ROLE],
            "password_authentication": "scram-sha-256",
            "verify_connection": true,
        });
        let call = Call::new(
            Method::POST,
            format!("database/config/{DATABASE_CONNECTION}"),
            "configure database connection",
        )
        .token(&self.token)
        .body(config)
        .redacting(&db.password);
        self.http.send(&call).await?;
        self.call(
            Method::POST,
            format!("database/roles/{DATABASE_ROLE}"),
            "write database role",
            Some(json!({
                "db_name": DATABASE_CONNECTION,
                "creation_statements": [
                    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
                    "GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{{name}}\";",
                ],
                "default_ttl": secs(db.default_ttl),
                "max_ttl": secs(db.max_ttl),
            })),
        )
        .await?;
        Ok(())
    }

    /// Enables a secrets engine (`sys/mounts`) or auth method (`sys/auth`)
    /// at `path` unless it is already there with the same type.
    async fn ensure_mount(
        &self,
        table: &str,
        path: &str,
        kind: &str,
        body: Value,
    ) -> Result<(), SecretsError> {
        let mounts = self
            .call(Method::GET, table.to_string(), "list mounts", None)
            .await?;
        let key = format!("{path}/");
        let existing = mounts
            .pointer("/data")
            .and_then(|d| d.get(&key))
            .or_else(|| mounts.get(&key));
        match existing.and_then(|m| m.get("type")).and_then(Value::as_str) {
            Some(t) if t == kind => {
                let version = existing
                    .and_then(|m| m.pointer("/options/version"))
                    .and_then(Value::as_str);
                if kind == "kv" && version != Some("2") {
                    return Err(SecretsError::Invalid(format!(
                        "{path}/ is a KV version 1 mount; warden needs version 2"
                    )));
                }
                Ok(())
            }
            Some(other) => Err(SecretsError::Invalid(format!(
                "{path}/ is already a {other} mount; warden needs {kind} there"
            ))),
            None => self
                .call(
                    Method::POST,
                    format!("{table}/{path}"),
                    "enable mount",
                    Some(body),
                )
                .await
                .map(|_| ()),
        }
    }

    /// Writes `value` as the `value` field of the KV v2 secret at `path`
    /// (`agent/data/<...>`); returns the new version. Rotation is writing
    /// again: the next read sees the new version.
    pub async fn put_kv(&self, path: &str, value: &SecretString) -> Result<u64, SecretsError> {
        const OP: &str = "write secret";
        check_path(path)?;
        let call = Call::new(Method::POST, path, OP)
            .token(&self.token)
            .body(json!({ "data": { "value": value.expose_secret() } }))
            .redacting(value);
        let answer = self.http.send(&call).await?.unwrap_or(Value::Null);
        answer
            .pointer("/data/version")
            .and_then(Value::as_u64)
            .ok_or_else(|| SecretsError::Backend {
                backend: BACKEND,
                operation: OP,
                detail: format!("{path} is not a KV v2 path (no version in the answer)"),
            })
    }

    /// A token for the control plane with only [`CONTROL_PLANE_POLICY`],
    /// renewable, not tied to the token creating it.
    pub async fn create_control_plane_token(
        &self,
        ttl: Duration,
    ) -> Result<SecretString, SecretsError> {
        const OP: &str = "create control plane token";
        let answer = self
            .call(
                Method::POST,
                "auth/token/create-orphan".into(),
                OP,
                Some(json!({
                    "policies": [CONTROL_PLANE_POLICY],
                    "no_default_policy": true,
                    "display_name": "warden-control-plane",
                    "ttl": secs(ttl),
                    "renewable": true,
                })),
            )
            .await?;
        Ok(SecretString::from(
            str_at(&answer, "/auth/client_token", OP)?.to_string(),
        ))
    }

    /// Accessors of every token the server holds, to find strays.
    pub async fn list_token_accessors(&self) -> Result<Vec<String>, SecretsError> {
        let method =
            Method::from_bytes(b"LIST").map_err(|_| SecretsError::Invalid("LIST".into()))?;
        let answer = self
            .call(
                method,
                "auth/token/accessors".into(),
                "list token accessors",
                None,
            )
            .await?;
        Ok(answer
            .pointer("/data/keys")
            .and_then(Value::as_array)
            .map(|keys| {
                keys.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Seals the server: every request fails until an operator unseals it.
    pub async fn seal(&self) -> Result<(), SecretsError> {
        self.call(Method::POST, "sys/seal".into(), "seal", None)
            .await
            .map(|_| ())
    }

    /// The HMAC the audit device `device` writes for `input` (a token,
    /// an accessor), to find a token's requests in the audit log.
    pub async fn audit_hash(
        &self,
        device: &str,
        input: &SecretString,
    ) -> Result<String, SecretsError> {
        const OP: &str = "audit hash";
        check_name("audit device", device)?;
        let call = Call::new(Method::POST, format!("sys/audit-hash/{device}"), OP)
            .token(&self.token)
            .body(json!({ "input": input.expose_secret() }))
            .redacting(input);
        let answer = self.http.send(&call).await?.unwrap_or(Value::Null);
        Ok(str_at(&answer, "/hash", OP)?.to_string())
    }
}
