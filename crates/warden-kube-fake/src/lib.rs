//! An in-process fake Kubernetes API server for testing kube-rs code.
//!
//! No real API server can run on the machines warden is built and tested on,
//! so code that talks to Kubernetes is tested against this fake instead. It
//! is meant to be honest rather than convenient: it answers with the same
//! status codes, `Status` bodies, resource versions, watch events and RBAC
//! decisions as a real 1.33 API server, so a test that passes here exercises
//! the same code paths it would against a cluster.
//!
//! # Using it in a test
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use k8s_openapi::api::batch::v1::Job;
//! use kube::api::{Api, PostParams};
//! use warden_kube_fake::{ContainerState, FakeApiServer, ServiceAccountIdentity};
//!
//! let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
//! let fake = FakeApiServer::start().await?; // serving on 127.0.0.1:<random>
//! fake.ensure_namespace("warden")?;
//! let client = fake.client(); // admin: sees and may do everything
//! let jobs: Api<Job> = Api::namespaced(client, "warden");
//! # let job: Job = serde_json::from_value(serde_json::json!({}))?;
//! jobs.create(&PostParams::default(), &job).await?;
//!
//! // Play the Job controller and the kubelet:
//! let pod = fake.create_pod_for_job("warden", "inv-1")?;
//! let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default().to_string();
//! fake.set_container_state("warden", &pod_name, None, ContainerState::running())?;
//! fake.append_pod_log("warden", &pod_name, "starting\n")?;
//! fake.set_container_state("warden", &pod_name, None, ContainerState::oom_killed())?;
//! fake.sync_job("warden", "inv-1")?; // counts pods, sets Failed/Complete like the controller
//!
//! // RBAC: a service-account token is checked against stored Roles/Bindings.
//! fake.register_token("tok-abc", ServiceAccountIdentity::new("warden", "agent"));
//! let sa_client = fake.client_with_token("tok-abc");
//! # let _ = sa_client;
//! # Ok(()) }
//! ```
//!
//! [`FakeApiServer::client`] hands kube a tower service that calls the
//! router in-process (nothing can fail while building it).
//! [`FakeApiServer::config`] / [`FakeApiServer::kubeconfig_yaml`] point at the
//! same router over real TCP (`http://127.0.0.1:<port>`), for code that builds
//! its own client from a `kube::Config` or kubeconfig, and for other
//! processes (OpenBao's kubernetes auth calling TokenReview, `kubectl`).
//!
//! # What it does
//! - Resources from [`kinds::KINDS`]: pods (+`log`, `eviction`), jobs,
//!   cronjobs, serviceaccounts, configmaps, secrets, services, events,
//!   namespaces, resourcequotas, limitranges, nodes, persistentvolumeclaims,
//!   deployments/replicasets/statefulsets (+`scale`), daemonsets, RBAC
//!   roles/bindings, networkpolicies, leases; `status` subresources.
//! - create (201, uid, resourceVersion from one global counter,
//!   creationTimestamp, generation, `generateName`), get, list (label and
//!   field selectors, `limit`/`continue`), replace (409 on stale
//!   resourceVersion), merge / strategic (as merge) / JSON / apply (as
//!   create-or-merge) patch, delete with Background / Foreground / Orphan
//!   propagation through ownerReferences (Jobs default to Orphan, like
//!   batch/v1), finalizers, deletecollection, `dryRun=All`.
//! - Defaulting (on every write, as the real server does) and validation
//!   that matter to clients: Job selector and
//!   template labels (`controller-uid`, `job-name`, `batch.kubernetes.io/*`),
//!   Job restartPolicy and immutable template, pod spec immutability,
//!   Deployment selector/template match, RBAC rule and binding checks, names.
//! - Watches with ADDED/MODIFIED/DELETED/BOOKMARK, label-filter transitions,
//!   `sendInitialEvents`, a bounded history and 410 Expired, `timeoutSeconds`.
//! - Namespaces must exist for namespaced creates (`default`, `kube-system`,
//!   `kube-public`, `kube-node-lease` exist at start); each namespace gets a
//!   `default` ServiceAccount; deleting a namespace deletes its contents.
//! - Authentication by bearer token (unknown or missing → 401), TokenReview,
//!   SubjectAccessReview, SelfSubjectAccessReview, RBAC authorization with
//!   the real 403 message (`resourceNames` also apply to lists and watches
//!   narrowed by `fieldSelector=metadata.name=`), and RBAC escalation
//!   prevention: non-admin users can only write Roles they hold the rules
//!   of (or have `escalate`) and only bind roles they hold (or have `bind`).
//! - ServiceAccount admission for every pod create: the ServiceAccount must
//!   exist, `serviceAccountName` is defaulted, and the API token volume is
//!   mounted unless `automountServiceAccountToken` is false.
//! - Pod logs with `container`, `follow`, `previous`, `tailLines`,
//!   `sinceTime`, `sinceSeconds`, `timestamps`, `limitBytes`; a container
//!   that is still waiting (`ImagePullBackOff`, ...) gets the kubelet's 400.
//! - Service-account tokens: [`FakeApiServer::register_token`] for opaque
//!   tokens, or [`FakeApiServer::issue_token`] and the TokenRequest
//!   subresource (`serviceaccounts/<sa>/token`) for ES256-signed JWTs with
//!   bound-token claims, verifiable with
//!   [`FakeApiServer::service_account_public_key_pem`] or the JWKS at
//!   `/openid/v1/jwks`. Tokens stop authenticating when expired, when the
//!   ServiceAccount is deleted, or when the pod they are bound to is deleted.
//! - Controller and kubelet simulation: [`FakeApiServer::create_pod_for_job`],
//!   [`FakeApiServer::set_container_state`] (running, `OOMKilled` 137,
//!   `ImagePullBackOff`, `ErrImagePull`, `CrashLoopBackOff`, ...),
//!   [`FakeApiServer::set_pod_phase`], [`FakeApiServer::evict_pod`]
//!   (`Evicted` + `DisruptionTarget`), [`FakeApiServer::restart_container`],
//!   [`FakeApiServer::sync_job`] (counts pods; `backoffLimit`,
//!   `activeDeadlineSeconds`, `podFailurePolicy`; `SuccessCriteriaMet` /
//!   `FailureTarget` before `Complete` / `Failed`),
//!   [`FakeApiServer::complete_job`], [`FakeApiServer::fail_job`],
//!   [`FakeApiServer::run_ttl_controller`], [`FakeApiServer::record_event`],
//!   [`FakeApiServer::sync_deployment`] (ReplicaSet per template with
//!   `pod-template-hash` and revision annotations, rollback reuse, status).
//! - Every request is recorded ([`FakeApiServer::requests`]) with method,
//!   path, query, user, verb, resource, status code and body.
//!
//! # What it does NOT do
//! - No controllers run on their own: pods are not created for Jobs,
//!   ReplicaSets are not created for Deployments, nothing is scheduled, the
//!   TTL controller only runs when called. Tests drive all of that with the
//!   simulation helpers above. The garbage collector is the exception: it
//!   runs synchronously inside each DELETE.
//! - Pod readiness probes, init containers and Indexed Jobs are not
//!   simulated; `sync_job` never creates replacement pods.
//! - `events.k8s.io/v1` is not served (core `v1` events are).
//! - Pods are deleted at once (no graceful termination), and pods created for
//!   Jobs carry no `batch.kubernetes.io/job-tracking` finalizer.
//! - Strategic merge patch and server-side apply merge like JSON merge patch
//!   (lists are replaced, not merged by key); no managedFields, no field
//!   ownership conflicts.
//! - No admission beyond what is listed above: no quota or limit-range
//!   enforcement, no PodSecurity, no PodDisruptionBudgets on eviction, no
//!   webhooks.
//! - No protobuf, no table output, no aggregated discovery (legacy discovery
//!   documents only), no CRDs, no TLS on the TCP listener.

// `ApiError` carries a JSON `details` value whose size depends on the
// serde_json features the rest of the workspace turns on; boxing it would
// buy nothing in a test server.
#![allow(clippy::result_large_err)]

pub mod auth;
mod defaults;
mod issuer;
pub mod kinds;
mod logs;
mod meta;
mod patch;
mod rbac;
pub mod selector;
mod server;
mod sim;
pub mod status;
mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

pub use auth::{API_AUDIENCE, ServiceAccountIdentity, UserInfo};
pub use server::RecordedRequest;
pub use sim::{ContainerState, JobConditionType, JobFailureReason, PodPhase};
pub use status::ApiError;

use server::{Shared, World};

/// Errors from the test-facing API of the fake.
#[derive(Debug, thiserror::Error)]
pub enum FakeError {
    /// The TCP listener could not be bound.
    #[error("binding the fake API server to 127.0.0.1 failed: {0}")]
    Bind(#[source] std::io::Error),
    /// The API call was refused the way the real server would refuse it.
    #[error("fake API server refused the call: {0}")]
    Api(#[from] ApiError),
    /// A helper was called with an argument it cannot use.
    #[error("invalid argument to the fake API server: {0}")]
    Invalid(String),
}

/// Builder for a [`FakeApiServer`] with non-default settings.
#[derive(Debug, Clone)]
pub struct FakeApiServerBuilder {
    history_limit: usize,
    bookmark_interval: Duration,
    enforce_rbac: bool,
    namespaces: Vec<String>,
    issuer: String,
}

impl Default for FakeApiServerBuilder {
    fn default() -> Self {
        FakeApiServerBuilder {
            history_limit: 1000,
            bookmark_interval: Duration::from_secs(1),
            enforce_rbac: true,
            namespaces: vec![
                "default".into(),
                "kube-system".into(),
                "kube-public".into(),
                "kube-node-lease".into(),
            ],
            issuer: API_AUDIENCE.to_string(),
        }
    }
}

impl FakeApiServerBuilder {
    /// Number of watch events kept; watches from older resourceVersions get
    /// 410 Gone (default 1000).
    pub fn history_limit(mut self, n: usize) -> Self {
        self.history_limit = n;
        self
    }

    /// How often idle watches that asked for bookmarks get one (default 1 s;
    /// the real server sends them about once a minute).
    pub fn bookmark_interval(mut self, d: Duration) -> Self {
        self.bookmark_interval = d;
        self
    }

    /// Whether non-admin tokens are checked against RBAC (default true).
    pub fn enforce_rbac(mut self, on: bool) -> Self {
        self.enforce_rbac = on;
        self
    }

    /// Extra namespaces that exist from the start.
    pub fn namespace(mut self, ns: impl Into<String>) -> Self {
        self.namespaces.push(ns.into());
        self
    }

    /// The `iss` of issued service-account tokens (default
    /// `https://kubernetes.default.svc.cluster.local`, like a cluster's
    /// `--service-account-issuer`).
    pub fn service_account_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self
    }

    /// Starts serving on 127.0.0.1 with a random port.
    pub async fn start(self) -> Result<FakeApiServer, FakeError> {
        let mut store = store::Store::new(self.history_limit);
        for ns in &self.namespaces {
            store.ensure_namespace(ns)?;
        }
        let admin_token = format!("admin-{}", meta::new_uid());
        let world = World {
            store,
            tokens: Default::default(),
            logs: Default::default(),
            requests: Vec::new(),
        };
        let issuer = issuer::Issuer::new(self.issuer).map_err(FakeError::Invalid)?;
        let shared = Arc::new(Shared::new(
            world,
            issuer,
            admin_token,
            self.bookmark_interval,
            self.enforce_rbac,
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(FakeError::Bind)?;
        let addr = listener.local_addr().map_err(FakeError::Bind)?;
        let router = router(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(FakeApiServer {
            shared,
            addr,
            _server: Arc::new(ServerTask(task)),
        })
    }
}

fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new()
        .fallback(server::handle)
        .with_state(shared)
}

struct ServerTask(tokio::task::JoinHandle<()>);

impl Drop for ServerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A running fake API server. Cloning shares the same server; the listener
/// stops when the last clone is dropped.
#[derive(Clone)]
pub struct FakeApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    _server: Arc<ServerTask>,
}

impl std::fmt::Debug for FakeApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeApiServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl FakeApiServer {
    /// Starts a fake with default settings (see [`FakeApiServerBuilder`]).
    pub async fn start() -> Result<Self, FakeError> {
        FakeApiServerBuilder::default().start().await
    }

    /// A builder for non-default settings.
    pub fn builder() -> FakeApiServerBuilder {
        FakeApiServerBuilder::default()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The TCP address the fake listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bearer token of the admin user (`system:admin`, group
    /// `system:masters`), for clients built outside this crate.
    pub fn admin_token(&self) -> &str {
        &self.shared.admin_token
    }

    /// A client authenticated as the admin (bypasses RBAC).
    pub fn client(&self) -> kube::Client {
        self.client_with_token(&self.shared.admin_token.clone())
    }

    /// A client that sends `Authorization: Bearer <token>`. Register the
    /// token first, or every request gets 401.
    pub fn client_with_token(&self, token: &str) -> kube::Client {
        let router = router(self.shared.clone());
        let value = axum::http::HeaderValue::from_str(&format!("Bearer {token}")).ok();
        let svc = tower::ServiceBuilder::new()
            .map_request(move |mut req: axum::http::Request<kube::client::Body>| {
                if let Some(v) = &value {
                    req.headers_mut()
                        .insert(axum::http::header::AUTHORIZATION, v.clone());
                }
                req
            })
            .service(router);
        kube::Client::new(svc, "default")
    }

    /// A `kube::Config` for the TCP listener with the admin token.
    pub fn config(&self) -> kube::Config {
        self.config_with_token(&self.shared.admin_token.clone())
    }

    /// A `kube::Config` for the TCP listener with `token`.
    pub fn config_with_token(&self, token: &str) -> kube::Config {
        let uri = axum::http::Uri::builder()
            .scheme("http")
            .authority(self.addr.to_string())
            .path_and_query("/")
            .build()
            .unwrap_or_default();
        let mut config = kube::Config::new(uri);
        config.auth_info.token = Some(secrecy::SecretString::from(token.to_string()));
        config
    }

    /// A kubeconfig document for the TCP listener (admin token when `token`
    /// is `None`), for `kubectl` or code that reads a kubeconfig file.
    pub fn kubeconfig_yaml(&self, token: Option<&str>) -> String {
        let token = token.unwrap_or(&self.shared.admin_token);
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url()}}],
            "users": [{"name": "fake", "user": {"token": token}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": "default"}}],
            "current-context": "fake"
        })
        .to_string()
    }

    /// Registers a service-account token.
    pub fn register_token(&self, token: impl Into<String>, identity: ServiceAccountIdentity) {
        self.shared
            .lock()
            .tokens
            .insert(token.into(), auth::TokenEntry::ServiceAccount(identity));
    }

    /// Registers a token for a plain user (RBAC subjects of kind User/Group).
    pub fn register_user_token(&self, token: impl Into<String>, user: UserInfo) {
        self.shared
            .lock()
            .tokens
            .insert(token.into(), auth::TokenEntry::User(user));
    }

    /// Issues a signed service-account token (ES256 JWT with the claims of
    /// a 1.33 bound token: `iss`, `sub`, `aud`, `exp`, `kubernetes.io`
    /// namespace / serviceaccount / pod) and registers it, as the
    /// TokenRequest API does. The ServiceAccount (and the pod, when bound)
    /// must exist. Expiry defaults to one hour, audiences to
    /// [`API_AUDIENCE`].
    pub fn issue_token(&self, identity: ServiceAccountIdentity) -> Result<String, FakeError> {
        let mut world = self.shared.lock();
        Ok(self.shared.issue_token(&mut world, identity, None)?.0)
    }

    /// The `iss` claim of issued tokens.
    pub fn service_account_issuer(&self) -> &str {
        &self.shared.issuer.issuer
    }

    /// The token signing public key as PEM (for OpenBao `jwt` auth
    /// `jwt_validation_pubkeys`).
    pub fn service_account_public_key_pem(&self) -> String {
        self.shared.issuer.public_key_pem()
    }

    /// The JWKS document (also served at `/openid/v1/jwks`).
    pub fn service_account_jwks(&self) -> Value {
        self.shared.issuer.jwks()
    }

    /// Forgets a token: later requests with it get 401.
    pub fn revoke_token(&self, token: &str) {
        self.shared.lock().tokens.remove(token);
    }

    fn kind(name: &str) -> Result<&'static kinds::KindInfo, FakeError> {
        kinds::lookup(name).ok_or_else(|| FakeError::Invalid(format!("unknown kind {name:?}")))
    }

    /// Every stored object of a kind (`"Job"`, `"jobs"`, `"jobs.batch"`),
    /// across namespaces, ordered by namespace and name.
    pub fn objects(&self, kind: &str) -> Vec<Value> {
        let Ok(k) = Self::kind(kind) else {
            return Vec::new();
        };
        self.shared
            .lock()
            .store
            .list(k, None, &Default::default(), &Default::default())
    }

    /// One stored object, if present.
    pub fn object(&self, kind: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let k = Self::kind(kind).ok()?;
        self.shared.lock().store.get(k, namespace, name).ok()
    }

    fn mutate<T>(
        &self,
        f: impl FnOnce(&mut World) -> Result<T, FakeError>,
    ) -> Result<T, FakeError> {
        let out = {
            let mut world = self.shared.lock();
            f(&mut world)
        };
        self.shared.notify();
        out
    }

    /// Creates an object as the admin would (the kind comes from the
    /// object's `kind`, the namespace from `metadata.namespace`).
    pub fn create(&self, obj: Value) -> Result<Value, FakeError> {
        let kind_name = obj
            .get("kind")
            .and_then(Value::as_str)
            .ok_or_else(|| FakeError::Invalid("object has no \"kind\"".into()))?;
        let kind = Self::kind(kind_name)?;
        let ns = meta::namespace(&obj).to_string();
        let ns = (kind.namespaced).then_some(if ns.is_empty() {
            "default".to_string()
        } else {
            ns
        });
        self.mutate(|w| Ok(w.store.create(kind, ns.as_deref(), obj)?))
    }

    /// Creates a namespace unless it exists.
    pub fn ensure_namespace(&self, ns: &str) -> Result<(), FakeError> {
        self.mutate(|w| Ok(w.store.ensure_namespace(ns)?))
    }

    /// Applies a JSON merge patch to an object (main resource).
    pub fn patch(
        &self,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        patch: &Value,
    ) -> Result<Value, FakeError> {
        let kind = Self::kind(kind)?;
        self.mutate(|w| {
            Ok(w.store.patch(
                kind,
                namespace,
                name,
                store::PatchType::Merge,
                patch,
                store::Part::Main,
            )?)
        })
    }

    /// Merges `status` into the object's `.status`, as a controller or the
    /// kubelet would.
    pub fn update_status(
        &self,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        status: Value,
    ) -> Result<Value, FakeError> {
        let kind = Self::kind(kind)?;
        self.mutate(|w| Ok(w.store.merge_status(kind, namespace, name, status)?))
    }

    /// Deletes an object with the kind's default propagation.
    pub fn delete(&self, kind: &str, namespace: Option<&str>, name: &str) -> Result<(), FakeError> {
        let kind = Self::kind(kind)?;
        self.mutate(|w| {
            w.store.delete(kind, namespace, name, None, None)?;
            Ok(())
        })
    }

    /// Every request served so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// Drops the watch history, as etcd compaction does: open watches end
    /// with an ERROR event carrying 410 Expired, and a watch resuming from
    /// any earlier resourceVersion gets the same, so clients must relist.
    pub fn compact_history(&self) {
        self.mutate(|w| {
            w.store.compact();
            Ok(())
        })
        .unwrap_or(());
    }

    /// The newest resourceVersion handed out.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().store.rv
    }
}
