//! The HTTP front: path parsing, authentication, RBAC, dispatch to the store,
//! watch streams and log streams.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::SinkExt;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::auth::{self, ServiceAccountIdentity, TokenEntry, UserInfo};
use crate::issuer::Issuer;
use crate::kinds::{self, KindInfo};
use crate::logs::{LogOptions, Logs};
use crate::meta;
use crate::rbac::{self, Attributes};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::{EventType, Part, PatchType, Propagation, Store, StoredEvent};

/// One request as the fake saw it, for assertions in tests.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// HTTP method (`GET`, `POST`, ...).
    pub method: String,
    /// URL path without the query.
    pub path: String,
    /// Raw query string (empty when none).
    pub query: String,
    /// Authenticated user name; `None` when authentication failed.
    pub user: Option<String>,
    /// Kubernetes verb (`get`, `list`, `watch`, `create`, `update`, `patch`,
    /// `delete`, `deletecollection`); `get` for non-resource GETs.
    pub verb: String,
    /// `plural` or `plural/subresource`; `None` for non-resource paths.
    pub resource: Option<String>,
    /// API group of the resource (`""` for core).
    pub group: Option<String>,
    /// Namespace from the URL.
    pub namespace: Option<String>,
    /// Object name from the URL.
    pub name: Option<String>,
    /// HTTP status code of the response (200 for streams that started).
    pub status: u16,
    /// `Content-Type` of the request body, if any.
    pub content_type: Option<String>,
    /// Request body parsed as JSON (YAML for apply patches), if any.
    pub body: Option<Value>,
}

/// State shared by the server task and the test-facing handle.
pub(crate) struct World {
    pub store: Store,
    pub tokens: HashMap<String, TokenEntry>,
    pub logs: Logs,
    pub requests: Vec<RecordedRequest>,
}

pub(crate) struct Shared {
    world: Mutex<World>,
    changes: watch::Sender<u64>,
    pub issuer: Issuer,
    pub admin_token: String,
    pub bookmark_interval: Duration,
    pub enforce_rbac: bool,
}

impl Shared {
    pub fn new(
        world: World,
        issuer: Issuer,
        admin_token: String,
        bookmark_interval: Duration,
        enforce_rbac: bool,
    ) -> Self {
        Shared {
            world: Mutex::new(world),
            changes: watch::channel(0).0,
            issuer,
            admin_token,
            bookmark_interval,
            enforce_rbac,
        }
    }

    /// Locks the world. A poisoned lock only means a test panicked while
    /// holding it; the data is still consistent enough for a fake.
    pub fn lock(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes watches and log followers after a change.
    pub fn notify(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Issues a signed bound service-account token and registers it, as the
    /// TokenRequest API does. Fails like the real API when the
    /// ServiceAccount or the bound pod does not exist.
    pub fn issue_token(
        &self,
        world: &mut World,
        identity: ServiceAccountIdentity,
        expiration_seconds: Option<i64>,
    ) -> Result<(String, chrono::DateTime<chrono::Utc>), ApiError> {
        let sa_kind = kinds::lookup("serviceaccounts")
            .ok_or_else(|| ApiError::no_route("serviceaccounts"))?;
        let sa = world
            .store
            .get(sa_kind, Some(&identity.namespace), &identity.name)?;
        let now = chrono::Utc::now();
        let exp = identity
            .expires_at
            .unwrap_or_else(|| now + chrono::Duration::seconds(expiration_seconds.unwrap_or(3600)));
        let audiences = if identity.audiences.is_empty() {
            vec![auth::API_AUDIENCE.to_string()]
        } else {
            identity.audiences.clone()
        };
        let mut k8s = json!({
            "namespace": identity.namespace,
            "serviceaccount": {"name": identity.name, "uid": meta::uid(&sa)},
        });
        if let Some(pod_name) = &identity.pod_name {
            let pod_kind = kinds::lookup("pods").ok_or_else(|| ApiError::no_route("pods"))?;
            let pod = world
                .store
                .get(pod_kind, Some(&identity.namespace), pod_name)?;
            if let Some(m) = k8s.as_object_mut() {
                m.insert(
                    "pod".into(),
                    json!({"name": pod_name, "uid": meta::uid(&pod)}),
                );
                if let Some(node) = meta::str_at(&pod, "/spec/nodeName") {
                    m.insert("node".into(), json!({"name": node}));
                }
            }
        }
        let claims = json!({
            "aud": audiences,
            "exp": exp.timestamp(),
            "iat": now.timestamp(),
            "nbf": now.timestamp(),
            "iss": self.issuer.issuer,
            "jti": meta::new_uid(),
            "kubernetes.io": k8s,
            "sub": identity.username(),
        });
        let token = self.issuer.sign(&claims).map_err(|e| ApiError {
            code: 500,
            reason: "InternalError".into(),
            message: e,
            details: None,
        })?;
        let registered = ServiceAccountIdentity {
            audiences,
            expires_at: Some(exp),
            ..identity
        };
        world
            .tokens
            .insert(token.clone(), TokenEntry::ServiceAccount(registered));
        Ok((token, exp))
    }
}

fn query_get<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn query_flag(q: &[(String, String)], key: &str) -> bool {
    matches!(query_get(q, key), Some("true") | Some("1"))
}

fn json_response(code: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn error_response(e: &ApiError) -> Response {
    json_response(e.code, &e.to_status())
}

/// What the URL names.
#[derive(Debug, Clone)]
enum Route {
    /// Discovery and other non-resource documents.
    NonResource(Value),
    Resource(ResourceRoute),
}

#[derive(Debug, Clone)]
struct ResourceRoute {
    kind: &'static KindInfo,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

fn parse_route(path: &str) -> Result<Route, ApiError> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest): (&str, &str, &[&str]) = match segs.as_slice() {
        [] => {
            return Ok(Route::NonResource(
                json!({"paths": ["/api", "/api/v1", "/apis", "/version"]}),
            ));
        }
        ["version"] => return Ok(Route::NonResource(version_info())),
        ["healthz"] | ["livez"] | ["readyz"] => return Ok(Route::NonResource(json!("ok"))),
        ["api"] => return Ok(Route::NonResource(api_versions())),
        ["apis"] => return Ok(Route::NonResource(api_group_list())),
        ["apis", g] => {
            return api_group(g)
                .map(Route::NonResource)
                .ok_or_else(|| ApiError::no_route(path));
        }
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(ApiError::no_route(path)),
    };
    if !kinds::KINDS
        .iter()
        .any(|k| k.group == group && k.version == version)
    {
        return Err(ApiError::no_route(path));
    }
    let namespaced_kind =
        |plural: &str| kinds::by_gvr(group, version, plural).filter(|k| k.namespaced);
    let owned = |s: Option<&&str>| s.map(|s| s.to_string());
    match rest {
        [] => Ok(Route::NonResource(resource_list(group, version))),
        ["namespaces", ns, plural, tail @ ..] if namespaced_kind(plural).is_some() => {
            let kind = namespaced_kind(plural).ok_or_else(|| ApiError::no_route(path))?;
            if tail.len() > 2 {
                return Err(ApiError::no_route(path));
            }
            Ok(Route::Resource(ResourceRoute {
                kind,
                namespace: Some(ns.to_string()),
                name: owned(tail.first()),
                sub: owned(tail.get(1)),
            }))
        }
        [plural, tail @ ..] => {
            let kind =
                kinds::by_gvr(group, version, plural).ok_or_else(|| ApiError::no_route(path))?;
            if tail.len() > 2 || (kind.namespaced && !tail.is_empty()) {
                return Err(ApiError::no_route(path));
            }
            Ok(Route::Resource(ResourceRoute {
                kind,
                namespace: None,
                name: owned(tail.first()),
                sub: owned(tail.get(1)),
            }))
        }
    }
}

fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T00:00:00Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

fn api_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]
    })
}

fn group_json(group: &str) -> Value {
    let versions: Vec<Value> = kinds::groups()
        .into_iter()
        .filter(|(g, _)| *g == group)
        .map(|(g, v)| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    let preferred = versions.first().cloned().unwrap_or(json!({}));
    json!({"name": group, "versions": versions, "preferredVersion": preferred})
}

fn api_group_list() -> Value {
    let mut names: Vec<&str> = Vec::new();
    for (g, _) in kinds::groups() {
        if !names.contains(&g) {
            names.push(g);
        }
    }
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": names.iter().map(|g| group_json(g)).collect::<Vec<_>>()
    })
}

fn api_group(group: &str) -> Option<Value> {
    if !kinds::groups().iter().any(|(g, _)| *g == group) {
        return None;
    }
    let mut g = group_json(group);
    if let Some(m) = g.as_object_mut() {
        m.insert("kind".into(), json!("APIGroup"));
        m.insert("apiVersion".into(), json!("v1"));
    }
    Some(g)
}

fn resource_list(group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for k in kinds::KINDS
        .iter()
        .filter(|k| k.group == group && k.version == version)
    {
        let verbs: Vec<&str> = if k.virtual_create_only {
            vec!["create"]
        } else {
            vec![
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ]
        };
        resources.push(json!({
            "name": k.plural, "singularName": k.singular, "namespaced": k.namespaced,
            "kind": k.kind, "verbs": verbs
        }));
        let mut subs: Vec<(&str, &str, Vec<&str>)> = Vec::new();
        if k.has_status {
            subs.push(("status", k.kind, vec!["get", "patch", "update"]));
        }
        if k.has_scale {
            subs.push(("scale", "Scale", vec!["get", "patch", "update"]));
        }
        if k.plural == "pods" {
            subs.push(("log", "Pod", vec!["get"]));
            subs.push(("eviction", "Eviction", vec!["create"]));
        }
        for (sub, kind, verbs) in subs {
            resources.push(json!({
                "name": format!("{}/{}", k.plural, sub), "singularName": "", "namespaced": k.namespaced,
                "kind": kind, "verbs": verbs
            }));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

/// The Kubernetes verb for a request.
fn verb_for(method: &Method, route: &ResourceRoute, watch: bool) -> &'static str {
    match *method {
        Method::GET | Method::HEAD => {
            if route.name.is_some() {
                "get"
            } else if watch {
                "watch"
            } else {
                "list"
            }
        }
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => {
            if route.name.is_some() {
                "delete"
            } else {
                "deletecollection"
            }
        }
        _ => "unknown",
    }
}

/// The one axum handler: every request comes through here.
pub(crate) async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let raw_query = parts.uri.query().unwrap_or("").to_string();
    let query: Vec<(String, String)> =
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map(|q| q.0)
            .unwrap_or_default();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let body_value: Option<Value> = if bytes.is_empty() {
        None
    } else {
        serde_json::from_slice(&bytes)
            .ok()
            .or_else(|| serde_yaml::from_slice::<Value>(&bytes).ok())
    };
    let mut record = RecordedRequest {
        method: parts.method.to_string(),
        path: path.clone(),
        query: raw_query,
        user: None,
        verb: String::new(),
        resource: None,
        group: None,
        namespace: None,
        name: None,
        status: 0,
        content_type: content_type.clone(),
        body: body_value.clone(),
    };
    let ctx = RequestCtx {
        shared: shared.clone(),
        method: parts.method.clone(),
        query,
        content_type,
        body: body_value,
        raw_body: bytes,
        headers: parts.headers.clone(),
    };
    let response = ctx.run(&path, &mut record).await;
    record.status = response.status().as_u16();
    shared.lock().requests.push(record);
    response
}

struct RequestCtx {
    shared: Arc<Shared>,
    method: Method,
    query: Vec<(String, String)>,
    content_type: Option<String>,
    body: Option<Value>,
    raw_body: Bytes,
    headers: HeaderMap,
}

impl RequestCtx {
    async fn run(&self, path: &str, record: &mut RecordedRequest) -> Response {
        // Issuer discovery is public, as clusters commonly bind
        // system:service-account-issuer-discovery to unauthenticated users.
        if self.method == Method::GET {
            let issuer = &self.shared.issuer;
            match path {
                "/.well-known/openid-configuration" => {
                    record.verb = "get".into();
                    let host = self
                        .headers
                        .get(header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or("127.0.0.1");
                    return json_response(
                        200,
                        &issuer.openid_configuration(&format!("http://{host}/openid/v1/jwks")),
                    );
                }
                "/openid/v1/jwks" => {
                    record.verb = "get".into();
                    return json_response(200, &issuer.jwks());
                }
                _ => {}
            }
        }
        let token = self
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_string());
        let user = {
            let world = self.shared.lock();
            let entry = token.as_ref().and_then(|t| {
                if *t == self.shared.admin_token {
                    Some(TokenEntry::Admin)
                } else {
                    world.tokens.get(t).cloned()
                }
            });
            entry.and_then(|e| {
                auth::authenticate(&e, &[auth::API_AUDIENCE.to_string()], &world.store)
                    .ok()
                    .map(|(u, _)| u)
            })
        };
        let Some(user) = user else {
            record.verb = self.method.as_str().to_ascii_lowercase();
            return error_response(&ApiError::unauthorized());
        };
        record.user = Some(user.username.clone());
        let route = match parse_route(path) {
            Ok(r) => r,
            Err(e) => {
                record.verb = self.method.as_str().to_ascii_lowercase();
                return error_response(&e);
            }
        };
        match route {
            Route::NonResource(doc) => {
                record.verb = if self.method == Method::GET {
                    "get".into()
                } else {
                    self.method.as_str().to_ascii_lowercase()
                };
                let attrs = Attributes {
                    verb: record.verb.clone(),
                    path: Some(path.to_string()),
                    ..Default::default()
                };
                if self.shared.enforce_rbac
                    && !rbac::authorize(&self.shared.lock().store, &user, &attrs)
                {
                    return error_response(&ApiError {
                        code: 403,
                        reason: "Forbidden".into(),
                        message: format!(
                            "forbidden: User \"{}\" cannot {} path \"{}\"",
                            user.username, record.verb, path
                        ),
                        details: None,
                    });
                }
                if self.method != Method::GET {
                    return error_response(&ApiError::method_not_allowed(format!(
                        "the server does not allow this method on the requested resource ({path})"
                    )));
                }
                json_response(200, &doc)
            }
            Route::Resource(route) => {
                let watch = query_flag(&self.query, "watch");
                let verb = verb_for(&self.method, &route, watch);
                record.verb = verb.to_string();
                record.resource = Some(match &route.sub {
                    Some(s) => format!("{}/{}", route.kind.plural, s),
                    None => route.kind.plural.to_string(),
                });
                record.group = Some(route.kind.group.to_string());
                record.namespace = route.namespace.clone();
                record.name = route.name.clone();
                let attrs = Attributes {
                    verb: verb.to_string(),
                    group: route.kind.group.to_string(),
                    resource: route.kind.plural.to_string(),
                    subresource: route.sub.clone().unwrap_or_default(),
                    namespace: route.namespace.clone().unwrap_or_default(),
                    name: route
                        .name
                        .clone()
                        .or_else(|| self.name_from_field_selector(verb))
                        .unwrap_or_default(),
                    path: None,
                };
                if self.shared.enforce_rbac
                    && !rbac::authorize(&self.shared.lock().store, &user, &attrs)
                {
                    return error_response(&ApiError::forbidden(
                        &user.username,
                        verb,
                        route.kind,
                        route.sub.as_deref(),
                        route.namespace.as_deref(),
                        route.name.as_deref(),
                    ));
                }
                if self.shared.enforce_rbac
                    && route.sub.is_none()
                    && route.kind.group == "rbac.authorization.k8s.io"
                    && matches!(verb, "create" | "update" | "patch")
                    && let Err(e) = self.check_escalation(&route, verb, &user)
                {
                    return error_response(&e);
                }
                match self.dispatch(&route, verb, &user).await {
                    Ok(resp) => resp,
                    Err(e) => error_response(&e),
                }
            }
        }
    }

    /// Computes the object a write would store (on a scratch copy of the
    /// store) and checks it for privilege escalation.
    fn check_escalation(
        &self,
        route: &ResourceRoute,
        verb: &str,
        user: &UserInfo,
    ) -> Result<(), ApiError> {
        let kind = route.kind;
        let ns = route.namespace.as_deref();
        let world = self.shared.lock();
        let mut scratch = world.store.clone();
        let result = match (verb, route.name.as_deref()) {
            ("create", None) => scratch.create(kind, ns, self.body_object()?),
            ("update", Some(name)) => {
                scratch.update(kind, ns, name, self.body_object()?, Part::Main)
            }
            ("patch", Some(name)) => {
                let patch_type =
                    PatchType::from_content_type(self.content_type.as_deref().unwrap_or(""))?;
                let body = self.body.clone().ok_or_else(|| {
                    ApiError::bad_request("the patch body is empty or not JSON/YAML")
                })?;
                scratch.patch(kind, ns, name, patch_type, &body, Part::Main)
            }
            _ => return Ok(()),
        };
        // Invalid writes fail later with their own error.
        let Ok(obj) = result else {
            return Ok(());
        };
        rbac::confirm_no_escalation(&world.store, user, kind.plural, ns.unwrap_or(""), &obj)
    }

    /// Like the real request-info parser: a list or watch narrowed to one
    /// name by `fieldSelector=metadata.name=<x>` is authorized as a request
    /// for that name, so `resourceNames` rules apply to it.
    fn name_from_field_selector(&self, verb: &str) -> Option<String> {
        if verb != "list" && verb != "watch" {
            return None;
        }
        let selector = query_get(&self.query, "fieldSelector")?;
        let mut names = selector.split(',').filter_map(|req| {
            let req = req.trim();
            req.strip_prefix("metadata.name==")
                .or_else(|| req.strip_prefix("metadata.name="))
                .map(str::to_string)
        });
        let name = names.next()?;
        names.next().is_none().then_some(name)
    }

    fn body_object(&self) -> Result<Value, ApiError> {
        match &self.body {
            Some(v @ Value::Object(_)) => Ok(v.clone()),
            Some(_) => Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            )),
            None if self.raw_body.is_empty() => {
                Err(ApiError::bad_request("the request body is empty"))
            }
            None => Err(ApiError::bad_request(format!(
                "the body of the request could not be decoded as JSON or YAML ({} bytes)",
                self.raw_body.len()
            ))),
        }
    }

    fn dry_run(&self) -> bool {
        query_get(&self.query, "dryRun") == Some("All")
    }

    /// Runs a store mutation, on a scratch copy for `dryRun=All`.
    fn mutate<T>(&self, f: impl FnOnce(&mut Store) -> Result<T, ApiError>) -> Result<T, ApiError> {
        let out = {
            let mut world = self.shared.lock();
            if self.dry_run() {
                let mut scratch = world.store.clone();
                f(&mut scratch)
            } else {
                f(&mut world.store)
            }
        };
        if !self.dry_run() {
            self.shared.notify();
        }
        out
    }

    async fn dispatch(
        &self,
        route: &ResourceRoute,
        verb: &str,
        user: &UserInfo,
    ) -> Result<Response, ApiError> {
        let kind = route.kind;
        let ns = route.namespace.as_deref();
        let sub = route.sub.as_deref();
        if kind.virtual_create_only {
            if verb != "create" {
                return Err(ApiError::method_not_allowed(format!(
                    "the server does not allow this method on the requested resource ({})",
                    kind.plural
                )));
            }
            return self.review(kind, user);
        }
        match (verb, route.name.as_deref(), sub) {
            ("list", None, None) => self.list(kind, ns),
            ("watch", None, None) => self.watch(kind, ns),
            ("get", Some(name), None | Some("status")) => {
                let obj = self.shared.lock().store.get(kind, ns, name)?;
                Ok(json_response(200, &obj))
            }
            ("get", Some(name), Some("scale")) if kind.has_scale => {
                let obj = self.shared.lock().store.get(kind, ns, name)?;
                Ok(json_response(200, &to_scale(&obj)))
            }
            ("get", Some(name), Some("log")) if kind.plural == "pods" => {
                self.pod_log(ns.unwrap_or(""), name).await
            }
            ("create", None, None) => {
                let body = self.body_object()?;
                let obj = self.mutate(|s| s.create(kind, ns, body))?;
                Ok(json_response(201, &obj))
            }
            ("create", Some(name), Some("token")) if kind.plural == "serviceaccounts" => {
                self.token_request(ns.unwrap_or(""), name)
            }
            ("create", Some(name), Some("eviction")) if kind.plural == "pods" => {
                self.mutate(|s| s.delete(kind, ns, name, None, None))?;
                Ok(json_response(
                    201,
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
                ))
            }
            ("update", Some(name), None | Some("status")) => {
                let body = self.body_object()?;
                let part = if sub == Some("status") {
                    Part::Status
                } else {
                    Part::Main
                };
                if sub == Some("status") && !kind.has_status {
                    return Err(ApiError::no_route(&format!("{}/status", kind.plural)));
                }
                let obj = self.mutate(|s| s.update(kind, ns, name, body, part))?;
                Ok(json_response(200, &obj))
            }
            ("patch", Some(name), None | Some("status")) => {
                let ct = self.content_type.clone().unwrap_or_default();
                let patch_type = PatchType::from_content_type(&ct)?;
                if patch_type == PatchType::Apply
                    && query_get(&self.query, "fieldManager").is_none_or(str::is_empty)
                {
                    return Err(ApiError::invalid_options(
                        "PatchOptions.meta.k8s.io",
                        "fieldManager",
                        "Required value: is required for apply patch",
                    ));
                }
                let body = self.body.clone().ok_or_else(|| {
                    ApiError::bad_request("the patch body is empty or not JSON/YAML")
                })?;
                let part = if sub == Some("status") {
                    Part::Status
                } else {
                    Part::Main
                };
                let existed = self.shared.lock().store.get(kind, ns, name).is_ok();
                let obj = self.mutate(|s| s.patch(kind, ns, name, patch_type, &body, part))?;
                Ok(json_response(if existed { 200 } else { 201 }, &obj))
            }
            ("update" | "patch", Some(name), Some("scale")) if kind.has_scale => {
                self.scale_write(kind, ns, name, verb)
            }
            ("delete", Some(name), None) => {
                let opts = self.body.clone().unwrap_or(json!({}));
                let propagation = self.propagation(&opts)?;
                let preconditions = opts.get("preconditions").cloned();
                let out =
                    self.mutate(|s| s.delete(kind, ns, name, propagation, preconditions.as_ref()))?;
                // Like the real handler: 202 only when the deprecated
                // `orphanDependents: false` was sent and the object is not
                // gone yet; 200 otherwise.
                let pending = out.get("kind").and_then(Value::as_str) != Some("Status")
                    && self.shared.lock().store.get(kind, ns, name).is_ok()
                    && opts.get("orphanDependents").and_then(Value::as_bool) == Some(false);
                let mut resp = json_response(if pending { 202 } else { 200 }, &out);
                if kind.plural == "jobs" && propagation.is_none() {
                    resp.headers_mut().insert(
                        "warning",
                        HeaderValue::from_static("299 - \"child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this warning\""),
                    );
                }
                Ok(resp)
            }
            ("deletecollection", None, None) => {
                let opts = self.body.clone().unwrap_or(json!({}));
                let propagation = self.propagation(&opts)?;
                let (labels, fields) = self.selectors(kind)?;
                let deleted = self.mutate(|s| {
                    let victims = s.list(kind, ns, &labels, &fields);
                    let mut out = Vec::new();
                    for v in victims {
                        let vns = (!meta::namespace(&v).is_empty())
                            .then(|| meta::namespace(&v).to_string());
                        s.delete(kind, vns.as_deref(), meta::name(&v), propagation, None)?;
                        out.push(v);
                    }
                    Ok(out)
                })?;
                let rv = self.shared.lock().store.rv;
                Ok(json_response(
                    200,
                    &list_body(kind, deleted, rv, None, None),
                ))
            }
            _ => Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({}{})",
                kind.plural,
                sub.map(|s| format!("/{s}")).unwrap_or_default()
            ))),
        }
    }

    fn propagation(&self, opts: &Value) -> Result<Option<Propagation>, ApiError> {
        if let Some(p) = opts.get("propagationPolicy").and_then(Value::as_str) {
            return Propagation::parse(p).map(Some);
        }
        if let Some(p) = query_get(&self.query, "propagationPolicy") {
            return Propagation::parse(p).map(Some);
        }
        let orphan = opts
            .get("orphanDependents")
            .and_then(Value::as_bool)
            .or_else(|| query_get(&self.query, "orphanDependents").map(|v| v == "true"));
        Ok(orphan.map(|o| {
            if o {
                Propagation::Orphan
            } else {
                Propagation::Background
            }
        }))
    }

    fn selectors(&self, kind: &KindInfo) -> Result<(LabelSelector, FieldSelector), ApiError> {
        let labels = LabelSelector::parse(query_get(&self.query, "labelSelector").unwrap_or(""))?;
        let fields = FieldSelector::parse(
            query_get(&self.query, "fieldSelector").unwrap_or(""),
            kind.field_labels,
        )?;
        Ok((labels, fields))
    }

    fn list(&self, kind: &'static KindInfo, ns: Option<&str>) -> Result<Response, ApiError> {
        let (labels, fields) = self.selectors(kind)?;
        let (mut items, rv) = {
            let world = self.shared.lock();
            (world.store.list(kind, ns, &labels, &fields), world.store.rv)
        };
        if let Some(token) = query_get(&self.query, "continue").filter(|t| !t.is_empty()) {
            items.retain(|o| list_key(o).as_str() > token);
        }
        let limit = query_get(&self.query, "limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|l| *l > 0);
        let mut cont = None;
        let mut remaining = None;
        if let Some(limit) = limit
            && items.len() > limit
        {
            remaining = Some(items.len() - limit);
            items.truncate(limit);
            cont = items.last().map(list_key);
        }
        Ok(json_response(
            200,
            &list_body(kind, items, rv, cont, remaining),
        ))
    }

    fn review(&self, kind: &'static KindInfo, user: &UserInfo) -> Result<Response, ApiError> {
        let body = self.body_object()?;
        let world = self.shared.lock();
        let out = match kind.plural {
            "tokenreviews" => {
                let token = body
                    .pointer("/spec/token")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let entry = if token == self.shared.admin_token {
                    Some(TokenEntry::Admin)
                } else {
                    world.tokens.get(token).cloned()
                };
                auth::token_review(&body, entry.as_ref(), &world.store)
            }
            "subjectaccessreviews" | "selfsubjectaccessreviews" => {
                let subject = if kind.plural == "selfsubjectaccessreviews" {
                    user.clone()
                } else {
                    let spec = body.get("spec").cloned().unwrap_or(json!({}));
                    let groups: Vec<String> = spec
                        .get("groups")
                        .and_then(Value::as_array)
                        .map(|g| {
                            g.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default();
                    UserInfo {
                        username: spec
                            .get("user")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        uid: spec
                            .get("uid")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        groups,
                        extra: Default::default(),
                    }
                };
                let attrs = review_attributes(&body);
                let allowed = rbac::authorize(&world.store, &subject, &attrs);
                let mut out = body.clone();
                if let Some(m) = out.as_object_mut() {
                    m.insert("apiVersion".into(), json!("authorization.k8s.io/v1"));
                    m.insert("kind".into(), json!(kind.kind));
                    m.insert("metadata".into(), json!({"creationTimestamp": null}));
                    let status = if allowed {
                        json!({"allowed": true, "reason": "RBAC: allowed by a binding"})
                    } else {
                        json!({"allowed": false})
                    };
                    m.insert("status".into(), status);
                }
                out
            }
            _ => return Err(ApiError::no_route(kind.plural)),
        };
        Ok(json_response(201, &out))
    }

    /// `POST serviceaccounts/<name>/token` (what `kubectl create token` and
    /// the kubelet use).
    fn token_request(&self, ns: &str, name: &str) -> Result<Response, ApiError> {
        let body = self.body_object()?;
        let spec = body.get("spec").cloned().unwrap_or(json!({}));
        let expiration = spec
            .get("expirationSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(3600);
        if expiration < 600 {
            return Err(ApiError::invalid_options(
                "TokenRequest.authentication.k8s.io",
                "spec.expirationSeconds",
                &format!(
                    "Invalid value: {expiration}: may not specify a duration less than 10 minutes"
                ),
            ));
        }
        let audiences: Vec<String> = spec
            .get("audiences")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let bound = spec.get("boundObjectRef");
        let pod_name = match bound {
            Some(b) if b.get("kind").and_then(Value::as_str) == Some("Pod") => {
                b.get("name").and_then(Value::as_str).map(str::to_string)
            }
            Some(b) => {
                return Err(ApiError::bad_request(format!(
                    "cannot bind token to object of kind {:?}: only Pod is supported",
                    b.get("kind").and_then(Value::as_str).unwrap_or("")
                )));
            }
            None => None,
        };
        let identity = ServiceAccountIdentity {
            namespace: ns.to_string(),
            name: name.to_string(),
            audiences,
            pod_name,
            expires_at: None,
        };
        let (token, exp) = {
            let mut world = self.shared.lock();
            if let (Some(b), Some(pod)) = (bound, identity.pod_name.as_deref())
                && let Some(uid) = b.get("uid").and_then(Value::as_str)
            {
                let pod_kind = kinds::lookup("pods").ok_or_else(|| ApiError::no_route("pods"))?;
                let actual = world.store.get(pod_kind, Some(ns), pod)?;
                if meta::uid(&actual) != uid {
                    return Err(ApiError::conflict(pod_kind, pod));
                }
            }
            self.shared
                .issue_token(&mut world, identity, Some(expiration))?
        };
        let mut out = json!({
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": null},
            "spec": spec,
            "status": {
                "token": token,
                "expirationTimestamp": exp.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            }
        });
        if let Some(m) = out.pointer_mut("/spec").and_then(Value::as_object_mut) {
            m.insert("expirationSeconds".into(), json!(expiration));
        }
        Ok(json_response(201, &out))
    }

    fn scale_write(
        &self,
        kind: &'static KindInfo,
        ns: Option<&str>,
        name: &str,
        verb: &str,
    ) -> Result<Response, ApiError> {
        let body = self
            .body
            .clone()
            .ok_or_else(|| ApiError::bad_request("the request body is empty"))?;
        let patch_type = if verb == "patch" {
            Some(PatchType::from_content_type(
                &self.content_type.clone().unwrap_or_default(),
            )?)
        } else {
            None
        };
        let updated = self.mutate(|s| {
            let current = s.get(kind, ns, name)?;
            let mut scale = to_scale(&current);
            match patch_type {
                None => {
                    let want = meta::resource_version(&body);
                    if !want.is_empty() && want != meta::resource_version(&current) {
                        return Err(ApiError::conflict(kind, name));
                    }
                    scale = body.clone();
                }
                Some(PatchType::Json) => crate::patch::json_patch(&mut scale, &body)
                    .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?,
                Some(_) => crate::patch::merge_patch(&mut scale, &body),
            }
            let replicas = scale
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .ok_or_else(|| {
                    ApiError::invalid(
                        kind,
                        name,
                        "spec.replicas",
                        "FieldValueRequired",
                        "Required value",
                    )
                })?;
            if replicas < 0 {
                return Err(ApiError::invalid(
                    kind,
                    name,
                    "spec.replicas",
                    "FieldValueInvalid",
                    &format!("Invalid value: {replicas}: must be greater than or equal to 0"),
                ));
            }
            s.patch(
                kind,
                ns,
                name,
                PatchType::Merge,
                &json!({"spec": {"replicas": replicas}}),
                Part::Main,
            )
        })?;
        Ok(json_response(200, &to_scale(&updated)))
    }

    fn watch(&self, kind: &'static KindInfo, ns: Option<&str>) -> Result<Response, ApiError> {
        let (labels, fields) = self.selectors(kind)?;
        let params = WatchParams {
            kind,
            namespace: ns.map(str::to_string),
            labels,
            fields,
            bookmarks: query_flag(&self.query, "allowWatchBookmarks"),
            send_initial: query_flag(&self.query, "sendInitialEvents"),
            resource_version: query_get(&self.query, "resourceVersion")
                .unwrap_or("")
                .to_string(),
            timeout: query_get(&self.query, "timeoutSeconds")
                .and_then(|t| t.parse::<u64>().ok())
                .map(Duration::from_secs),
        };
        if params.send_initial
            && query_get(&self.query, "resourceVersionMatch") != Some("NotOlderThan")
        {
            return Err(ApiError::invalid_options(
                "ListOptions.meta.k8s.io",
                "resourceVersionMatch",
                "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        let (tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(64);
        tokio::spawn(run_watch(self.shared.clone(), params, tx));
        let mut resp = Response::new(Body::from_stream(rx));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(resp)
    }

    async fn pod_log(&self, ns: &str, pod: &str) -> Result<Response, ApiError> {
        let opts = LogOptions {
            container: query_get(&self.query, "container").map(str::to_string),
            follow: query_flag(&self.query, "follow"),
            previous: query_flag(&self.query, "previous"),
            tail_lines: query_get(&self.query, "tailLines").and_then(|v| v.parse().ok()),
            since_time: query_get(&self.query, "sinceTime")
                .and_then(|v| chrono::DateTime::parse_from_rfc3339(v).ok())
                .map(|t| t.with_timezone(&chrono::Utc)),
            since_seconds: query_get(&self.query, "sinceSeconds").and_then(|v| v.parse().ok()),
            timestamps: query_flag(&self.query, "timestamps"),
            limit_bytes: query_get(&self.query, "limitBytes").and_then(|v| v.parse().ok()),
        };
        let (container, initial, sent, pod_uid) = {
            let world = self.shared.lock();
            let pod_kind = kinds::lookup("pods").ok_or_else(|| ApiError::no_route("pods"))?;
            let pod_obj = world.store.get(pod_kind, Some(ns), pod)?;
            let container = log_container(&pod_obj, opts.container.as_deref())?;
            // Logs are kept per pod uid: a new pod with the same name starts
            // with an empty log, as on a real node.
            let pod_uid = meta::uid(&pod_obj).to_string();
            let logs = world
                .logs
                .get(ns, &pod_uid, &container)
                .cloned()
                .unwrap_or_default();
            if opts.previous {
                let prev = logs.previous.ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "previous terminated container \"{container}\" in pod \"{pod}\" not found"
                    ))
                })?;
                let mut text = opts.render(&prev);
                truncate_bytes(&mut text, opts.limit_bytes);
                return Ok(text_response(text));
            }
            if let Some(reason) = waiting_reason(&pod_obj, &container) {
                return Err(ApiError::bad_request(format!(
                    "container \"{container}\" in pod \"{pod}\" is waiting to start: {reason}"
                )));
            }
            let text = opts.render(&logs.current);
            (container, text, logs.current.len(), pod_uid)
        };
        if !opts.follow {
            let mut text = initial;
            truncate_bytes(&mut text, opts.limit_bytes);
            return Ok(text_response(text));
        }
        let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(64);
        let shared = self.shared.clone();
        let ns = ns.to_string();
        let pod = pod.to_string();
        tokio::spawn(async move {
            let mut changes = shared.subscribe();
            let mut sent = sent;
            if !initial.is_empty() && tx.send(Ok(Bytes::from(initial))).await.is_err() {
                return;
            }
            loop {
                let (chunk, done) = {
                    let world = shared.lock();
                    let lines = world
                        .logs
                        .get(&ns, &pod_uid, &container)
                        .map(|l| l.current.clone())
                        .unwrap_or_default();
                    let mut chunk = String::new();
                    for line in lines.iter().skip(sent) {
                        // A partial last line is sent once it is complete.
                        if !line.text.ends_with('\n') {
                            break;
                        }
                        chunk.push_str(&opts.render_line(line));
                        sent += 1;
                    }
                    let done = follow_done(&world.store, &ns, &pod, &pod_uid, &container);
                    if done {
                        for line in lines.iter().skip(sent) {
                            chunk.push_str(&opts.render_line(line));
                        }
                    }
                    (chunk, done)
                };
                if !chunk.is_empty() && tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                    return;
                }
                if done || changes.changed().await.is_err() {
                    return;
                }
            }
        });
        let mut resp = Response::new(Body::from_stream(rx));
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        Ok(resp)
    }
}

fn text_response(text: String) -> Response {
    let mut resp = (StatusCode::OK, text).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

fn truncate_bytes(text: &mut String, limit: Option<usize>) {
    if let Some(limit) = limit
        && text.len() > limit
    {
        let mut cut = limit;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
}

/// Picks the container a log request means, with the real server's errors.
fn log_container(pod: &Value, asked: Option<&str>) -> Result<String, ApiError> {
    let name = meta::name(pod);
    let containers: Vec<String> = ["/spec/initContainers", "/spec/containers"]
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    let main: Vec<String> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    match asked {
        Some(c) if containers.iter().any(|x| x == c) => Ok(c.to_string()),
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None => {
            if let Some(default) = meta::str_at(
                pod,
                "/metadata/annotations/kubectl.kubernetes.io~1default-container",
            ) && main.iter().any(|x| x == default)
            {
                return Ok(default.to_string());
            }
            match main.as_slice() {
                [only] => Ok(only.clone()),
                _ => Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    main.join(" ")
                ))),
            }
        }
    }
}

/// Waiting reasons for which the kubelet has no log to serve yet.
fn waiting_reason(pod: &Value, container: &str) -> Option<String> {
    const NOT_STARTED: &[&str] = &[
        "ContainerCreating",
        "PodInitializing",
        "ImagePullBackOff",
        "ErrImagePull",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
    ];
    let statuses = ["/status/initContainerStatuses", "/status/containerStatuses"]
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten()
        .find(|s| s.get("name").and_then(Value::as_str) == Some(container))?;
    let reason = statuses
        .pointer("/state/waiting/reason")
        .and_then(Value::as_str)?;
    let never_ran = statuses
        .get("lastState")
        .is_none_or(|l| l.as_object().is_none_or(|m| m.is_empty()));
    (NOT_STARTED.contains(&reason) && never_ran).then(|| reason.to_string())
}

/// A follow stream ends when the container has terminated, the pod has
/// finished, or the pod is gone.
fn follow_done(store: &Store, ns: &str, pod: &str, pod_uid: &str, container: &str) -> bool {
    let Some(pod_kind) = kinds::lookup("pods") else {
        return true;
    };
    let Ok(obj) = store.get(pod_kind, Some(ns), pod) else {
        return true;
    };
    if meta::uid(&obj) != pod_uid {
        return true;
    }
    let phase = meta::str_at(&obj, "/status/phase").unwrap_or("");
    if phase == "Succeeded" || phase == "Failed" {
        return true;
    }
    ["/status/initContainerStatuses", "/status/containerStatuses"]
        .iter()
        .filter_map(|p| obj.pointer(p).and_then(Value::as_array))
        .flatten()
        .filter(|s| s.get("name").and_then(Value::as_str) == Some(container))
        .any(|s| s.pointer("/state/terminated").is_some())
}

fn review_attributes(body: &Value) -> Attributes {
    let s = |p: &str| meta::str_at(body, p).unwrap_or("").to_string();
    if body.pointer("/spec/nonResourceAttributes").is_some() {
        return Attributes {
            verb: s("/spec/nonResourceAttributes/verb"),
            path: Some(s("/spec/nonResourceAttributes/path")),
            ..Default::default()
        };
    }
    Attributes {
        verb: s("/spec/resourceAttributes/verb"),
        group: s("/spec/resourceAttributes/group"),
        resource: s("/spec/resourceAttributes/resource"),
        subresource: s("/spec/resourceAttributes/subresource"),
        namespace: s("/spec/resourceAttributes/namespace"),
        name: s("/spec/resourceAttributes/name"),
        path: None,
    }
}

/// Sort key used as the opaque `continue` token.
fn list_key(obj: &Value) -> String {
    format!("{}/{}", meta::namespace(obj), meta::name(obj))
}

fn list_body(
    kind: &KindInfo,
    items: Vec<Value>,
    rv: u64,
    cont: Option<String>,
    remaining: Option<usize>,
) -> Value {
    // The real server omits kind/apiVersion on list items.
    let items: Vec<Value> = items
        .into_iter()
        .map(|mut o| {
            if let Some(m) = o.as_object_mut() {
                m.remove("kind");
                m.remove("apiVersion");
            }
            o
        })
        .collect();
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if let Some(m) = metadata.as_object_mut() {
        if let Some(c) = cont {
            m.insert("continue".into(), json!(c));
        }
        if let Some(r) = remaining {
            m.insert("remainingItemCount".into(), json!(r));
        }
    }
    json!({
        "kind": format!("{}List", kind.kind),
        "apiVersion": kind.api_version(),
        "metadata": metadata,
        "items": items,
    })
}

/// The `autoscaling/v1 Scale` view of a scalable object.
fn to_scale(obj: &Value) -> Value {
    let selector = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta::name(obj),
            "namespace": meta::namespace(obj),
            "uid": meta::uid(obj),
            "resourceVersion": meta::resource_version(obj),
            "creationTimestamp": obj.pointer("/metadata/creationTimestamp").cloned().unwrap_or(Value::Null),
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0)},
        "status": {
            "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector,
        }
    })
}

struct WatchParams {
    kind: &'static KindInfo,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    bookmarks: bool,
    send_initial: bool,
    resource_version: String,
    timeout: Option<Duration>,
}

impl WatchParams {
    fn matches(&self, ns: &str, obj: &Value) -> bool {
        self.namespace.as_deref().is_none_or(|want| want == ns)
            && self.labels.matches_object(obj)
            && self.fields.matches_object(obj)
    }

    /// Turns a stored event into what this watch sees, if anything.
    fn translate(&self, ev: &StoredEvent) -> Option<(&'static str, Value)> {
        let now = self.matches(&ev.namespace, &ev.object);
        match ev.kind {
            EventType::Added | EventType::Deleted => {
                now.then(|| (ev.kind.as_str(), ev.object.clone()))
            }
            EventType::Modified => {
                let before = ev
                    .previous
                    .as_ref()
                    .is_some_and(|p| self.matches(&ev.namespace, p));
                match (before, now) {
                    (true, true) => Some(("MODIFIED", ev.object.clone())),
                    (false, true) => Some(("ADDED", ev.object.clone())),
                    (true, false) => Some(("DELETED", ev.object.clone())),
                    (false, false) => None,
                }
            }
        }
    }
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

fn bookmark(kind: &KindInfo, rv: u64, initial_end: bool) -> Value {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_end && let Some(m) = metadata.as_object_mut() {
        m.insert(
            "annotations".into(),
            json!({"k8s.io/initial-events-end": "true"}),
        );
    }
    json!({"kind": kind.kind, "apiVersion": kind.api_version(), "metadata": metadata})
}

type Sink = futures::channel::mpsc::Sender<Result<Bytes, std::io::Error>>;

/// Streams one watch until the client leaves, the timeout passes, or the
/// history no longer covers the client's position (410 Gone).
async fn run_watch(shared: Arc<Shared>, p: WatchParams, mut tx: Sink) {
    let mut changes = shared.subscribe();
    let kind = p.kind;
    // Initial position and synthetic events.
    let (mut cursor, initial, expired, epoch) = {
        let world = shared.lock();
        let store = &world.store;
        let rv_param = p
            .resource_version
            .parse::<u64>()
            .ok()
            .filter(|_| !p.resource_version.is_empty());
        let mut initial = Vec::new();
        let mut expired = None;
        let cursor;
        if p.send_initial || rv_param.is_none() || rv_param == Some(0) {
            let ns = p.namespace.as_deref();
            for obj in store.list(kind, ns, &p.labels, &p.fields) {
                initial.push(event_line("ADDED", &obj));
            }
            if p.send_initial {
                initial.push(event_line("BOOKMARK", &bookmark(kind, store.rv, true)));
            }
            cursor = store.rv;
        } else {
            let rv = rv_param.unwrap_or(0);
            match store.events_after(rv, kind) {
                Ok(events) => {
                    for ev in &events {
                        if let Some((t, obj)) = p.translate(ev) {
                            initial.push(event_line(t, &obj));
                        }
                    }
                    cursor = store.rv.max(rv);
                }
                Err(floor) => {
                    expired = Some(ApiError::expired(rv, floor));
                    cursor = store.rv;
                }
            }
        }
        (cursor, initial, expired, store.epoch)
    };
    if let Some(e) = expired {
        let _ = tx.send(Ok(event_line("ERROR", &e.to_status()))).await;
        return;
    }
    for line in initial {
        if tx.send(Ok(line)).await.is_err() {
            return;
        }
    }
    let deadline = p.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut ticker = tokio::time::interval(shared.bookmark_interval);
    ticker.tick().await;
    loop {
        let sleep_until =
            deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
                let (lines, expired, now_rv) = {
                    let world = shared.lock();
                    if world.store.epoch != epoch {
                        // Compacted under an open watch: the real server
                        // ends such watches with 410 and clients relist.
                        (Vec::new(), Some(ApiError::expired(cursor, world.store.floor)), world.store.rv)
                    } else {
                        match world.store.events_after(cursor, kind) {
                        Ok(events) => {
                            let lines: Vec<Bytes> = events
                                .iter()
                                .filter_map(|ev| p.translate(ev))
                                .map(|(t, obj)| event_line(t, &obj))
                                .collect();
                            (lines, None, world.store.rv)
                        }
                        Err(floor) => (Vec::new(), Some(ApiError::expired(cursor, floor)), world.store.rv),
                        }
                    }
                };
                if let Some(e) = expired {
                    let _ = tx.send(Ok(event_line("ERROR", &e.to_status()))).await;
                    return;
                }
                cursor = now_rv;
                for line in lines {
                    if tx.send(Ok(line)).await.is_err() {
                        return;
                    }
                }
            }
            _ = ticker.tick() => {
                if p.bookmarks {
                    // The cursor, not the store's newest version: events up
                    // to the store's version may not have been sent yet.
                    if tx.send(Ok(event_line("BOOKMARK", &bookmark(kind, cursor, false)))).await.is_err() {
                        return;
                    }
                } else if tx.is_closed() {
                    return;
                }
            }
            _ = tokio::time::sleep_until(sleep_until) => {
                if deadline.is_some() {
                    return;
                }
            }
        }
    }
}
