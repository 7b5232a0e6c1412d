//! `metav1.Status` error bodies, shaped exactly like the real API server's so
//! that `kube::Error::Api` carries the same code, reason and message.

use serde_json::{Value, json};

use crate::kinds::KindInfo;

/// A failed API call: becomes a `Status` JSON body with the HTTP code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    /// HTTP status code (also `Status.code`).
    pub code: u16,
    /// Machine-readable `Status.reason` (`NotFound`, `AlreadyExists`, ...).
    pub reason: String,
    /// Human-readable `Status.message`, same wording as the real server.
    pub message: String,
    /// `Status.details`, if any.
    pub details: Option<Value>,
}

impl ApiError {
    fn new(code: u16, reason: &str, message: String, details: Option<Value>) -> Self {
        ApiError {
            code,
            reason: reason.to_string(),
            message,
            details,
        }
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let (Some(details), Some(obj)) = (&self.details, s.as_object_mut()) {
            obj.insert("details".into(), details.clone());
        }
        s
    }

    /// 404 for a named object.
    pub fn not_found(kind: &KindInfo, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{}\" not found", kind.qualified_plural(), name),
            Some(details(kind, name)),
        )
    }

    /// 404 for a path the fake does not serve.
    pub fn no_route(path: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
            Some(json!({})),
        )
    }

    /// 409 on create of an existing name.
    pub fn already_exists(kind: &KindInfo, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{}\" already exists", kind.qualified_plural(), name),
            Some(details(kind, name)),
        )
    }

    /// 409 on a stale `resourceVersion`.
    pub fn conflict(kind: &KindInfo, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                kind.qualified_plural(),
                name
            ),
            Some(details(kind, name)),
        )
    }

    /// 422 with one field cause.
    pub fn invalid(
        kind: &KindInfo,
        name: &str,
        field: &str,
        cause_reason: &str,
        detail: &str,
    ) -> Self {
        let mut d = details(kind, name);
        if let Some(obj) = d.as_object_mut() {
            obj.insert("kind".into(), Value::String(kind.kind.to_string()));
            obj.insert(
                "causes".into(),
                json!([{ "reason": cause_reason, "message": detail, "field": field }]),
            );
        }
        let group_kind = if kind.group.is_empty() {
            kind.kind.to_string()
        } else {
            format!("{}.{}", kind.kind, kind.group)
        };
        Self::new(
            422,
            "Invalid",
            format!("{group_kind} \"{name}\" is invalid: {field}: {detail}"),
            Some(d),
        )
    }

    /// 422 for invalid request options (`PatchOptions`, `ListOptions`).
    pub fn invalid_options(what: &str, field: &str, detail: &str) -> Self {
        Self::new(
            422,
            "Invalid",
            format!("{what} \"\" is invalid: {field}: {detail}"),
            Some(
                json!({"group": "meta.k8s.io", "kind": what.split('.').next().unwrap_or(what), "causes": [{"reason": "FieldValueRequired", "message": detail, "field": field}]}),
            ),
        )
    }

    /// 400 with a free-form message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message.into(), None)
    }

    /// 401 for a missing or unknown bearer token.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized".into(), None)
    }

    /// 403 from the RBAC authorizer, with the real message shape.
    pub fn forbidden(
        user: &str,
        verb: &str,
        kind: &KindInfo,
        subresource: Option<&str>,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> Self {
        let resource = match subresource {
            Some(sub) => format!("{}/{}", kind.plural, sub),
            None => kind.plural.to_string(),
        };
        let scope = match namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_string(),
        };
        let subject = match name {
            Some(n) if !n.is_empty() => format!("{} \"{}\"", kind.qualified_plural(), n),
            _ => kind.qualified_plural(),
        };
        Self::new(
            403,
            "Forbidden",
            format!(
                "{subject} is forbidden: User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"{}\" {scope}",
                kind.group
            ),
            Some(details(kind, name.unwrap_or(""))),
        )
    }

    /// 405 for a verb the resource does not support.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message.into(), None)
    }

    /// 410 for a watch from a compacted `resourceVersion`.
    pub fn expired(requested: u64, oldest: u64) -> Self {
        Self::new(
            410,
            "Expired",
            format!("too old resource version: {requested} ({oldest})"),
            None,
        )
    }

    /// 415 for a patch type the fake does not understand.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {content_type:?})"
            ),
            None,
        )
    }
}

fn details(kind: &KindInfo, name: &str) -> Value {
    let mut d = serde_json::Map::new();
    if !name.is_empty() {
        d.insert("name".into(), Value::String(name.to_string()));
    }
    if !kind.group.is_empty() {
        d.insert("group".into(), Value::String(kind.group.to_string()));
    }
    d.insert("kind".into(), Value::String(kind.plural.to_string()));
    Value::Object(d)
}

/// The `Status` body returned by a DELETE that removed the object at once.
pub fn delete_success(kind: &KindInfo, name: &str, uid: &str) -> Value {
    let mut d = details(kind, name);
    if let Some(obj) = d.as_object_mut() {
        obj.insert("uid".into(), Value::String(uid.to_string()));
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": d,
    })
}
