//! Credentials for a connector, read from a granted domain secret.
//!
//! A domain secret is one string. For a connector it holds either a bare
//! bearer token, or a JSON object: `{"bearer_token": "..."}` (also `token`)
//! or `{"username": "...", "password": "..."}` for basic auth. Nothing here
//! ever formats the secret: `Debug` prints only the kind, and parse errors
//! name the fields that are missing, never the value.

use secrecy::{ExposeSecret, SecretString};

/// How a connector authenticates.
#[derive(Clone, Default)]
pub enum Credentials {
    /// No authentication (e.g. a Prometheus inside the cluster network).
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(SecretString),
    /// `Authorization: Basic ...`.
    Basic {
        username: String,
        password: SecretString,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credentials::None => "Credentials::None",
            Credentials::Bearer(_) => "Credentials::Bearer(<redacted>)",
            Credentials::Basic { .. } => "Credentials::Basic(<redacted>)",
        })
    }
}

/// The secret is not in a form the connector understands. Never carries
/// any part of the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the domain secret is not usable as connector credentials: {0}")]
pub struct CredentialsError(&'static str);

impl Credentials {
    /// Reads credentials from a domain secret (see the module docs).
    pub fn from_secret(secret: &SecretString) -> Result<Self, CredentialsError> {
        let text = secret.expose_secret().trim();
        if text.is_empty() {
            return Err(CredentialsError("it is empty"));
        }
        if !text.starts_with('{') {
            return Ok(Credentials::Bearer(SecretString::from(text.to_string())));
        }
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|_| CredentialsError("it starts with `{` but is not a JSON object"))?;
        let field = |name: &str| value.get(name).and_then(serde_json::Value::as_str);
        if let Some(token) = field("bearer_token").or_else(|| field("token")) {
            return Ok(Credentials::Bearer(SecretString::from(token.to_string())));
        }
        match (field("username"), field("password")) {
            (Some(username), Some(password)) => Ok(Credentials::Basic {
                username: username.to_string(),
                password: SecretString::from(password.to_string()),
            }),
            (Some(_), None) => Err(CredentialsError("it has `username` but no `password`")),
            _ => Err(CredentialsError(
                "a JSON secret needs `bearer_token` (or `token`), or `username` and `password`",
            )),
        }
    }

    /// Adds the authentication header to a request.
    pub(crate) fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Credentials::None => request,
            Credentials::Bearer(token) => request.bearer_auth(token.expose_secret()),
            Credentials::Basic { username, password } => {
                request.basic_auth(username, Some(password.expose_secret()))
            }
        }
    }

    #[cfg(test)]
    fn bearer(&self) -> Option<&SecretString> {
        match self {
            Credentials::Bearer(token) => Some(token),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Credentials, CredentialsError> {
        Credentials::from_secret(&SecretString::from(s.to_string()))
    }

    #[test]
    fn a_bare_string_is_a_bearer_token() {
        let c = parse("tok-sentinel-123\n").unwrap();
        assert_eq!(c.bearer().unwrap().expose_secret(), "tok-sentinel-123");
        assert!(!format!("{c:?}").contains("sentinel"));
    }

    #[test]
    fn json_forms_are_understood() {
        assert!(matches!(
            parse(r#"{"bearer_token":"a"}"#),
            Ok(Credentials::Bearer(_))
        ));
        assert!(matches!(
            parse(r#"{"token":"a"}"#),
            Ok(Credentials::Bearer(_))
        ));
        match parse(r#"{"username":"reader","password":"pw-sentinel"}"#).unwrap() {
            Credentials::Basic { username, password } => {
                assert_eq!(username, "reader");
                assert_eq!(password.expose_secret(), "pw-sentinel");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_never_quote_the_secret() {
        for bad in [
            "",
            r#"{"username":"u-sentinel"}"#,
            r#"{"nope":"x-sentinel"}"#,
            "{not json sentinel",
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(!e.contains("sentinel"), "{e}");
        }
    }
}
