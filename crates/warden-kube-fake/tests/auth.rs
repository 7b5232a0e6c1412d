#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use chrono::{Duration, Utc};
use common::{api_error, fake, pod};
use k8s_openapi::api::authentication::v1::TokenReview;
use k8s_openapi::api::authorization::v1::{SelfSubjectAccessReview, SubjectAccessReview};
use k8s_openapi::api::core::v1::{Pod, Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use warden_kube_fake::{API_AUDIENCE, FakeApiServer, ServiceAccountIdentity, UserInfo};

async fn create_sa(fake: &FakeApiServer, ns: &str, name: &str) {
    let sas: Api<ServiceAccount> = Api::namespaced(fake.client(), ns);
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    sas.create(&PostParams::default(), &sa).await.unwrap();
}

fn create(fake: &FakeApiServer, obj: serde_json::Value) {
    fake.create(obj).unwrap();
}

async fn review(fake: &FakeApiServer, token: &str, audiences: &[&str]) -> TokenReview {
    let api: Api<TokenReview> = Api::all(fake.client());
    let tr: TokenReview = serde_json::from_value(json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
        "spec": {"token": token, "audiences": audiences}
    }))
    .unwrap();
    api.create(&PostParams::default(), &tr).await.unwrap()
}

#[tokio::test]
async fn token_review_authenticates_registered_service_account_tokens() {
    let fake = fake().await;
    create_sa(&fake, "warden", "agent").await;
    let pods: Api<Pod> = Api::namespaced(fake.client(), "warden");
    pods.create(&PostParams::default(), &pod("inv-1-abcde", json!({})))
        .await
        .unwrap();
    fake.register_token(
        "tok-good",
        ServiceAccountIdentity::new("warden", "agent")
            .with_audiences(["openbao"])
            .bound_to_pod("inv-1-abcde")
            .expiring_at(Utc::now() + Duration::minutes(10)),
    );

    let r = review(&fake, "tok-good", &["openbao"])
        .await
        .status
        .unwrap();
    assert_eq!(r.authenticated, Some(true), "{r:?}");
    let user = r.user.unwrap();
    assert_eq!(
        user.username.as_deref(),
        Some("system:serviceaccount:warden:agent")
    );
    let sa_uid = fake
        .object("serviceaccounts", Some("warden"), "agent")
        .unwrap()["metadata"]["uid"]
        .clone();
    assert_eq!(user.uid.as_deref(), sa_uid.as_str());
    assert!(
        user.groups
            .unwrap()
            .contains(&"system:serviceaccounts:warden".to_string())
    );
    assert_eq!(
        user.extra.unwrap()["authentication.kubernetes.io/pod-name"],
        ["inv-1-abcde"]
    );
    assert_eq!(r.audiences.unwrap(), ["openbao"]);

    // Audience mismatch (including the default API audience).
    let r = review(&fake, "tok-good", &["vault"]).await.status.unwrap();
    assert_eq!(r.authenticated, Some(false));
    assert!(r.error.unwrap().contains("audience"));
    let r = review(&fake, "tok-good", &[]).await.status.unwrap();
    assert_eq!(
        r.authenticated,
        Some(false),
        "defaults to the API audience {API_AUDIENCE}"
    );

    // Unknown token.
    let r = review(&fake, "tok-unknown", &["openbao"])
        .await
        .status
        .unwrap();
    assert_eq!(r.authenticated, Some(false));

    // Expired token.
    fake.register_token(
        "tok-old",
        ServiceAccountIdentity::new("warden", "agent")
            .with_audiences(["openbao"])
            .expiring_at(Utc::now() - Duration::seconds(1)),
    );
    let r = review(&fake, "tok-old", &["openbao"]).await.status.unwrap();
    assert_eq!(r.authenticated, Some(false));
    assert!(r.error.unwrap().contains("expired"));

    // Deleting the bound pod invalidates the token.
    pods.delete("inv-1-abcde", &DeleteParams::default())
        .await
        .unwrap();
    let r = review(&fake, "tok-good", &["openbao"])
        .await
        .status
        .unwrap();
    assert_eq!(r.authenticated, Some(false));
}

#[tokio::test]
async fn unknown_or_missing_tokens_get_401() {
    let fake = fake().await;
    let pods: Api<Pod> = Api::namespaced(fake.client_with_token("nobody"), "warden");
    let err = api_error(pods.list(&ListParams::default()).await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (401, "Unauthorized"));
    // A token for another audience does not authenticate to the API server.
    create_sa(&fake, "warden", "agent").await;
    fake.register_token(
        "tok-bao",
        ServiceAccountIdentity::new("warden", "agent").with_audiences(["openbao"]),
    );
    let pods: Api<Pod> = Api::namespaced(fake.client_with_token("tok-bao"), "warden");
    assert_eq!(
        api_error(pods.list(&ListParams::default()).await.unwrap_err()).code,
        401
    );
}

fn rbac_fixture(fake: &FakeApiServer) {
    fake.ensure_namespace("other").unwrap();
    create(
        fake,
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "delete-web-1", "namespace": "warden"},
            "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete", "get"], "resourceNames": ["web-1"]},
                {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["list", "get"]}
            ]
        }),
    );
    create(
        fake,
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "agent-delete-web-1", "namespace": "warden"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "delete-web-1"},
            "subjects": [{"kind": "ServiceAccount", "name": "agent", "namespace": "warden"}]
        }),
    );
}

#[tokio::test]
async fn rbac_role_with_resource_names_allows_only_that_object() {
    let fake = fake().await;
    create_sa(&fake, "warden", "agent").await;
    rbac_fixture(&fake);
    let admin_pods: Api<Pod> = Api::namespaced(fake.client(), "warden");
    let other_pods: Api<Pod> = Api::namespaced(fake.client(), "other");
    for name in ["web-1", "web-2"] {
        admin_pods
            .create(&PostParams::default(), &pod(name, json!({})))
            .await
            .unwrap();
    }
    other_pods
        .create(&PostParams::default(), &pod("web-1", json!({})))
        .await
        .unwrap();
    fake.register_token("tok-agent", ServiceAccountIdentity::new("warden", "agent"));
    let sa = fake.client_with_token("tok-agent");

    let pods: Api<Pod> = Api::namespaced(sa.clone(), "warden");
    assert_eq!(
        pods.list(&ListParams::default()).await.unwrap().items.len(),
        2
    );
    pods.delete("web-1", &DeleteParams::default())
        .await
        .unwrap();
    assert!(fake.object("pods", Some("warden"), "web-1").is_none());

    let err = api_error(
        pods.delete("web-2", &DeleteParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        err.message,
        "pods \"web-2\" is forbidden: User \"system:serviceaccount:warden:agent\" cannot delete resource \"pods\" in API group \"\" in the namespace \"warden\""
    );
    assert!(
        fake.object("pods", Some("warden"), "web-2").is_some(),
        "nothing deleted"
    );

    let other: Api<Pod> = Api::namespaced(sa.clone(), "other");
    let err = api_error(
        other
            .delete("web-1", &DeleteParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 403);
    assert!(
        err.message.ends_with("in the namespace \"other\""),
        "{}",
        err.message
    );

    let secrets: Api<Secret> = Api::namespaced(sa.clone(), "warden");
    let err = api_error(secrets.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(err.code, 403);
    assert_eq!(
        err.message,
        "secrets is forbidden: User \"system:serviceaccount:warden:agent\" cannot list resource \"secrets\" in API group \"\" in the namespace \"warden\""
    );

    // Subresources are authorized as resource/subresource.
    let logs = pods.logs("web-2", &Default::default()).await;
    assert!(logs.is_ok(), "pods/log granted: {logs:?}");
    let err = api_error(
        pods.create(&PostParams::default(), &pod("new", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 403);

    let denied = fake
        .requests()
        .into_iter()
        .filter(|r| r.status == 403)
        .count();
    assert_eq!(denied, 4);
}

#[tokio::test]
async fn cluster_role_through_role_binding_is_namespace_scoped() {
    let fake = fake().await;
    fake.ensure_namespace("other").unwrap();
    create_sa(&fake, "warden", "reader").await;
    create(
        &fake,
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
        }),
    );
    create(
        &fake,
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "read", "namespace": "warden"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "pod-reader"},
            // Namespace omitted: defaults to the binding's namespace.
            "subjects": [{"kind": "ServiceAccount", "name": "reader"}]
        }),
    );
    fake.register_token(
        "tok-reader",
        ServiceAccountIdentity::new("warden", "reader"),
    );
    let sa = fake.client_with_token("tok-reader");
    Api::<Pod>::namespaced(sa.clone(), "warden")
        .list(&ListParams::default())
        .await
        .unwrap();
    let err = api_error(
        Api::<Pod>::namespaced(sa.clone(), "other")
            .list(&ListParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 403);
    let err = api_error(
        Api::<Pod>::all(sa.clone())
            .list(&ListParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 403);
    assert!(
        err.message.ends_with("at the cluster scope"),
        "{}",
        err.message
    );

    // A ClusterRoleBinding grants it everywhere.
    create(
        &fake,
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "read-all"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "pod-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": "warden"}]
        }),
    );
    Api::<Pod>::all(sa.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    Api::<Pod>::namespaced(sa, "other")
        .list(&ListParams::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn wildcard_verbs_groups_and_resources() {
    let fake = fake().await;
    create_sa(&fake, "warden", "admin").await;
    create(
        &fake,
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "pods-all", "namespace": "warden"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}]
        }),
    );
    create(
        &fake,
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "pods-all", "namespace": "warden"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pods-all"},
            "subjects": [{"kind": "ServiceAccount", "name": "admin", "namespace": "warden"}]
        }),
    );
    fake.register_token(
        "tok-admin-sa",
        ServiceAccountIdentity::new("warden", "admin"),
    );
    let sa = fake.client_with_token("tok-admin-sa");
    let pods: Api<Pod> = Api::namespaced(sa.clone(), "warden");
    pods.create(&PostParams::default(), &pod("x", json!({})))
        .await
        .unwrap();
    pods.delete("x", &DeleteParams::default()).await.unwrap();
    // `pods` does not cover `pods/log`.
    pods.create(&PostParams::default(), &pod("y", json!({})))
        .await
        .unwrap();
    assert_eq!(
        api_error(pods.logs("y", &Default::default()).await.unwrap_err()).code,
        403
    );
    // Nor other resources.
    let sas: Api<ServiceAccount> = Api::namespaced(sa, "warden");
    assert_eq!(
        api_error(sas.list(&ListParams::default()).await.unwrap_err()).code,
        403
    );
}

#[tokio::test]
async fn group_subjects_and_access_reviews() {
    let fake = fake().await;
    create(
        &fake,
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "secret-reader"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
        }),
    );
    create(
        &fake,
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "oncall-secrets"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "secret-reader"},
            "subjects": [{"kind": "Group", "name": "oncall", "apiGroup": "rbac.authorization.k8s.io"}]
        }),
    );
    fake.register_user_token("tok-alice", UserInfo::new("alice", ["oncall"]));
    let sar: Api<SubjectAccessReview> = Api::all(fake.client());
    let ask = |user: &str, groups: &[&str], verb: &str| -> SubjectAccessReview {
        serde_json::from_value(json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": groups,
                     "resourceAttributes": {"namespace": "warden", "verb": verb, "resource": "secrets", "name": "db"}}
        }))
        .unwrap()
    };
    let r = sar
        .create(&PostParams::default(), &ask("alice", &["oncall"], "get"))
        .await
        .unwrap();
    assert!(r.status.unwrap().allowed);
    let r = sar
        .create(&PostParams::default(), &ask("alice", &["oncall"], "delete"))
        .await
        .unwrap();
    assert!(!r.status.unwrap().allowed);
    let r = sar
        .create(&PostParams::default(), &ask("bob", &[], "get"))
        .await
        .unwrap();
    assert!(!r.status.unwrap().allowed);

    // Self review with the user's own token (allowed for everyone).
    let ssar: Api<SelfSubjectAccessReview> = Api::all(fake.client_with_token("tok-alice"));
    let body: SelfSubjectAccessReview = serde_json::from_value(json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"namespace": "warden", "verb": "get", "resource": "secrets"}}
    }))
    .unwrap();
    let r = ssar.create(&PostParams::default(), &body).await.unwrap();
    assert!(r.status.unwrap().allowed);
}

#[tokio::test]
async fn rbac_objects_are_validated() {
    let fake = fake().await;
    let err = fake
        .create(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "r", "namespace": "warden"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": []}]
        }))
        .unwrap_err();
    assert!(
        err.to_string().contains("rules[0].verbs: Required value"),
        "{err}"
    );
    let err = fake
        .create(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "b"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
            "subjects": []
        }))
        .unwrap_err();
    assert!(
        err.to_string().contains("roleRef.kind: Unsupported value"),
        "{err}"
    );
}

#[tokio::test]
async fn resource_names_apply_to_single_name_watches() {
    use kube::runtime::wait::await_condition;
    let fake = fake().await;
    create_sa(&fake, "warden", "watcher").await;
    create(
        &fake,
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "watch-one", "namespace": "warden"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"], "resourceNames": ["one"]}]
        }),
    );
    create(
        &fake,
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "watch-one", "namespace": "warden"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "watch-one"},
            "subjects": [{"kind": "ServiceAccount", "name": "watcher"}]
        }),
    );
    Api::<Pod>::namespaced(fake.client(), "warden")
        .create(&PostParams::default(), &pod("one", json!({})))
        .await
        .unwrap();
    fake.register_token(
        "tok-watch",
        ServiceAccountIdentity::new("warden", "watcher"),
    );
    let pods: Api<Pod> = Api::namespaced(fake.client_with_token("tok-watch"), "warden");
    // A plain list is not narrowed to the allowed name.
    assert_eq!(
        api_error(pods.list(&ListParams::default()).await.unwrap_err()).code,
        403
    );
    let one = pods
        .list(&ListParams::default().fields("metadata.name=one"))
        .await
        .unwrap();
    assert_eq!(one.items.len(), 1);
    assert_eq!(
        api_error(
            pods.list(&ListParams::default().fields("metadata.name=two"))
                .await
                .unwrap_err()
        )
        .code,
        403
    );
    // await_condition lists and watches with that field selector.
    let seen = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        await_condition(pods, "one", |p: Option<&Pod>| p.is_some()),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(seen.is_some());
}

#[tokio::test]
async fn rbac_writes_cannot_grant_more_than_the_writer_holds() {
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    let fake = fake().await;
    create_sa(&fake, "warden", "manager").await;
    create(
        &fake,
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "manager", "namespace": "warden"},
            "rules": [
                {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": ["create"]},
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}
            ]
        }),
    );
    create(
        &fake,
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "manager", "namespace": "warden"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "manager"},
            "subjects": [{"kind": "ServiceAccount", "name": "manager"}]
        }),
    );
    create(
        &fake,
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "secret-deleter", "namespace": "warden"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["delete"]}]
        }),
    );
    fake.register_token(
        "tok-manager",
        ServiceAccountIdentity::new("warden", "manager"),
    );
    let sa = fake.client_with_token("tok-manager");
    let roles: Api<Role> = Api::namespaced(sa.clone(), "warden");
    let bindings: Api<RoleBinding> = Api::namespaced(sa, "warden");
    let role = |name: &str, verb: &str| -> Role {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": [verb]}]
        }))
        .unwrap()
    };
    roles
        .create(&PostParams::default(), &role("getter", "get"))
        .await
        .unwrap();
    let err = api_error(
        roles
            .create(&PostParams::default(), &role("deleter", "delete"))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 403);
    assert!(
        err.message
            .contains("is attempting to grant RBAC permissions not currently held"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("Verbs:[\"delete\"]"),
        "{}",
        err.message
    );
    assert!(fake.object("roles", Some("warden"), "deleter").is_none());

    let binding = |name: &str, role: &str| -> RoleBinding {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": "default"}]
        }))
        .unwrap()
    };
    bindings
        .create(&PostParams::default(), &binding("b1", "getter"))
        .await
        .unwrap();
    let err = api_error(
        bindings
            .create(&PostParams::default(), &binding("b2", "secret-deleter"))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 403);
    // `bind` on exactly that role lifts the restriction.
    fake.patch(
        "roles",
        Some("warden"),
        "manager",
        &json!({"rules": [
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": ["create"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["bind"], "resourceNames": ["secret-deleter"]}
        ]}),
    )
    .unwrap();
    bindings
        .create(&PostParams::default(), &binding("b2", "secret-deleter"))
        .await
        .unwrap();
}
