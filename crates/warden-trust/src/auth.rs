//! Operator authentication: static bearer tokens and OIDC/JWT, verified
//! offline, each mapped to a role.
//!
//! Roles are ordered: viewer < responder < approver < admin; an endpoint
//! names the least role it needs. Static tokens are kept only as SHA-256
//! digests and compared in constant time. A JWT is accepted only from the
//! configured issuer, for the configured audience, signed with RS256 or
//! ES256 by a configured key, unexpired. The agent's own identities (a
//! Kubernetes service account, an investigation) can never be an operator.

use std::fmt;
use std::str::FromStr;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{OidcConfig, OperatorsConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Responder,
    Approver,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Responder => "responder",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "responder" => Ok(Role::Responder),
            "approver" => Ok(Role::Approver),
            "admin" => Ok(Role::Admin),
            _ => Err(format!(
                "unknown role {s:?}; expected viewer, responder, approver or admin"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    Token,
    Oidc,
}

/// An authenticated operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operator {
    pub subject: String,
    pub role: Role,
    pub method: AuthMethod,
    /// Sign-off roles this operator holds (`operations_lead`, ...).
    pub signoff_roles: Vec<String>,
}

impl Operator {
    /// `Ok` when the operator holds at least `role`.
    pub fn require(&self, role: Role) -> Result<(), AuthError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(AuthError::Forbidden(format!(
                "{} has role {}; this needs {} or above",
                self.subject, self.role, role
            )))
        }
    }
}

/// Subjects that belong to the agent or its jobs, never to a person.
pub fn is_agent_subject(subject: &str) -> bool {
    subject.starts_with("system:serviceaccount:")
        || subject.starts_with("system:node:")
        || subject.starts_with("inv-")
        || subject.starts_with("agent:")
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No credential, or one that matches no operator (HTTP 401).
    #[error("{0}")]
    Unauthenticated(String),
    /// Authenticated, but not allowed (HTTP 403).
    #[error("{0}")]
    Forbidden(String),
}

#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error("reading operator token file {path}: {source}")]
    TokenFile {
        path: String,
        source: std::io::Error,
    },
    #[error("operator token file {0} is empty")]
    EmptyTokenFile(String),
    #[error("reading OIDC key {path}: {detail}")]
    Key { path: String, detail: String },
    #[error("{0}")]
    Invalid(String),
}

struct TokenEntry {
    digest: [u8; 32],
    subject: String,
    role: crate::auth::Role,
}

struct Oidc {
    config: OidcConfig,
    algorithms: Vec<Algorithm>,
    /// (kid, key) pairs; PEM keys have no kid.
    keys: Vec<(Option<String>, DecodingKey)>,
}

/// Authenticates operators from the `trust.operators` configuration.
pub struct Authenticator {
    tokens: Vec<TokenEntry>,
    oidc: Option<Oidc>,
    signoffs: std::collections::BTreeMap<String, Vec<String>>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("tokens", &self.tokens.len())
            .field("oidc", &self.oidc.as_ref().map(|o| &o.config.issuer))
            .finish()
    }
}

pub fn sha256(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

fn parse_digest(hex_text: &str) -> Result<[u8; 32], AuthSetupError> {
    let bytes = hex::decode(hex_text)
        .map_err(|e| AuthSetupError::Invalid(format!("operator token sha256: {e}")))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| AuthSetupError::Invalid("operator token sha256: expected 32 bytes".into()))
}

impl Authenticator {
    pub fn from_config(config: &OperatorsConfig) -> Result<Self, AuthSetupError> {
        let mut tokens = Vec::new();
        for t in &config.tokens {
            let digest = match (&t.sha256, &t.token_file) {
                (Some(h), _) => parse_digest(h)?,
                (None, Some(path)) => {
                    let text =
                        SecretString::from(std::fs::read_to_string(path).map_err(|source| {
                            AuthSetupError::TokenFile {
                                path: path.display().to_string(),
                                source,
                            }
                        })?);
                    let token = text.expose_secret().trim();
                    if token.is_empty() {
                        return Err(AuthSetupError::EmptyTokenFile(path.display().to_string()));
                    }
                    sha256(token)
                }
                (None, None) => {
                    return Err(AuthSetupError::Invalid(format!(
                        "operator {}: set sha256 or token_file",
                        t.subject
                    )));
                }
            };
            tokens.push(TokenEntry {
                digest,
                subject: t.subject.clone(),
                role: t.role,
            });
        }
        let oidc = config.oidc.as_ref().map(Oidc::load).transpose()?;
        Ok(Authenticator {
            tokens,
            oidc,
            signoffs: config.signoffs.clone(),
        })
    }

    fn operator(&self, subject: String, role: Role, method: AuthMethod) -> Operator {
        let signoff_roles = self.signoffs.get(&subject).cloned().unwrap_or_default();
        Operator {
            subject,
            role,
            method,
            signoff_roles,
        }
    }

    /// Who presented `credential` (the bearer token, without `Bearer `).
    pub fn authenticate(&self, credential: &SecretString) -> Result<Operator, AuthError> {
        let token = credential.expose_secret();
        let digest = sha256(token);
        // Check every entry so timing does not reveal which one matched.
        let mut found: Option<&TokenEntry> = None;
        for t in &self.tokens {
            if same(&t.digest, &digest) {
                found = Some(t);
            }
        }
        if let Some(t) = found {
            return Ok(self.operator(t.subject.clone(), t.role, AuthMethod::Token));
        }
        if token.split('.').count() == 3
            && let Some(oidc) = &self.oidc
        {
            let (subject, role) = oidc.verify(token)?;
            return Ok(self.operator(subject, role, AuthMethod::Oidc));
        }
        Err(AuthError::Unauthenticated(
            "the bearer credential matches no operator".into(),
        ))
    }
}

fn algorithm(name: &str) -> Result<Algorithm, AuthSetupError> {
    match name {
        "RS256" => Ok(Algorithm::RS256),
        "ES256" => Ok(Algorithm::ES256),
        other => Err(AuthSetupError::Invalid(format!(
            "trust.operators.oidc.algorithms: {other:?} is not supported (RS256, ES256)"
        ))),
    }
}

impl Oidc {
    fn load(config: &OidcConfig) -> Result<Oidc, AuthSetupError> {
        let algorithms = config
            .algorithms
            .iter()
            .map(|a| algorithm(a))
            .collect::<Result<Vec<_>, _>>()?;
        let mut keys = Vec::new();
        for path in &config.pem_keys {
            let err = |detail: String| AuthSetupError::Key {
                path: path.display().to_string(),
                detail,
            };
            let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
            let key = DecodingKey::from_rsa_pem(&pem)
                .or_else(|_| DecodingKey::from_ec_pem(&pem))
                .map_err(|e| err(format!("not an RSA or EC public key in PEM: {e}")))?;
            keys.push((None, key));
        }
        if let Some(path) = &config.jwks_file {
            let err = |detail: String| AuthSetupError::Key {
                path: path.display().to_string(),
                detail,
            };
            let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
            let set: JwkSet =
                serde_json::from_str(&text).map_err(|e| err(format!("not a JWKS: {e}")))?;
            for jwk in &set.keys {
                let key = DecodingKey::from_jwk(jwk).map_err(|e| err(e.to_string()))?;
                keys.push((jwk.common.key_id.clone(), key));
            }
        }
        if keys.is_empty() {
            return Err(AuthSetupError::Invalid(
                "trust.operators.oidc: no verification keys".into(),
            ));
        }
        Ok(Oidc {
            config: config.clone(),
            algorithms,
            keys,
        })
    }

    fn verify(&self, token: &str) -> Result<(String, Role), AuthError> {
        let bad = |why: String| AuthError::Unauthenticated(format!("bearer JWT rejected: {why}"));
        let header = jsonwebtoken::decode_header(token).map_err(|e| bad(e.to_string()))?;
        if !self.algorithms.contains(&header.alg) {
            return Err(bad(format!("algorithm {:?} is not accepted", header.alg)));
        }
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = 30;
        let candidates = self
            .keys
            .iter()
            .filter(|(kid, _)| match (&header.kid, kid) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            });
        let mut last = String::from("no key matches the token");
        let mut claims: Option<serde_json::Value> = None;
        for (_, key) in candidates {
            if key.family() != header.alg.family() {
                continue;
            }
            match jsonwebtoken::decode::<serde_json::Value>(token, key, &validation) {
                Ok(data) => {
                    claims = Some(data.claims);
                    break;
                }
                Err(e) => last = e.to_string(),
            }
        }
        let claims = claims.ok_or_else(|| bad(last))?;
        let subject = claims
            .get(&self.config.subject_claim)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad(format!("no {:?} claim", self.config.subject_claim)))?
            .to_string();
        if is_agent_subject(&subject) {
            return Err(AuthError::Forbidden(format!(
                "{subject} is an agent identity; agents can never act as operators"
            )));
        }
        let values: Vec<String> = match claims.get(&self.config.role_claim) {
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        };
        let role = values
            .iter()
            .filter_map(|v| self.config.roles.get(v).copied())
            .max()
            .ok_or_else(|| {
                AuthError::Forbidden(format!(
                    "{subject} holds no {:?} value mapped to a warden role",
                    self.config.role_claim
                ))
            })?;
        Ok((subject, role))
    }
}
