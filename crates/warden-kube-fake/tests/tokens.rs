#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

//! Issued service-account tokens are real signed JWTs that the fake's
//! TokenReview accepts and that verify offline with the published key.

mod common;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{api_error, fake, pod};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenReview};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};
use warden_kube_fake::{FakeApiServer, ServiceAccountIdentity};

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn verify_with_pem(pem: &str, token: &str) -> bool {
    let der = STANDARD
        .decode(
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
    let point = &der[der.len() - 65..];
    let (signed, sig) = token.rsplit_once('.').unwrap();
    let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
        .verify(signed.as_bytes(), &sig)
        .is_ok()
}

async fn review(fake: &FakeApiServer, token: &str, aud: &str) -> bool {
    let api: Api<TokenReview> = Api::all(fake.client());
    let tr: TokenReview =
        serde_json::from_value(json!({"spec": {"token": token, "audiences": [aud]}})).unwrap();
    api.create(&PostParams::default(), &tr)
        .await
        .unwrap()
        .status
        .unwrap()
        .authenticated
        .unwrap_or(false)
}

#[tokio::test]
async fn issued_tokens_are_signed_bound_jwts() {
    let fake = fake().await;
    let sas: Api<ServiceAccount> = Api::namespaced(fake.client(), "warden");
    let sa: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "agent"}})).unwrap();
    let sa = sas.create(&PostParams::default(), &sa).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(fake.client(), "warden");
    pods.create(&PostParams::default(), &pod("inv-9", json!({})))
        .await
        .unwrap();

    let token = fake
        .issue_token(
            ServiceAccountIdentity::new("warden", "agent")
                .with_audiences(["openbao"])
                .bound_to_pod("inv-9"),
        )
        .unwrap();
    let c = claims(&token);
    assert_eq!(c["sub"], "system:serviceaccount:warden:agent");
    assert_eq!(c["iss"], fake.service_account_issuer());
    assert_eq!(c["aud"], json!(["openbao"]));
    assert_eq!(c["kubernetes.io"]["namespace"], "warden");
    assert_eq!(
        c["kubernetes.io"]["serviceaccount"]["uid"],
        sa.metadata.uid.unwrap()
    );
    assert_eq!(c["kubernetes.io"]["pod"]["name"], "inv-9");
    let ttl = c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap();
    assert_eq!(ttl, 3600);

    assert!(verify_with_pem(
        &fake.service_account_public_key_pem(),
        &token
    ));
    let mut forged = token.clone();
    forged.replace_range(forged.len() - 4.., "AAAA");
    assert!(!verify_with_pem(
        &fake.service_account_public_key_pem(),
        &forged
    ));

    assert!(review(&fake, &token, "openbao").await);
    assert!(!review(&fake, &token, "other").await);
    pods.delete("inv-9", &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        !review(&fake, &token, "openbao").await,
        "deleting the pod invalidates the token"
    );

    // Issuing for a missing ServiceAccount fails like TokenRequest.
    assert!(
        fake.issue_token(ServiceAccountIdentity::new("warden", "ghost"))
            .is_err()
    );
}

#[tokio::test]
async fn token_request_subresource_issues_api_tokens() {
    let fake = fake().await;
    let sas: Api<ServiceAccount> = Api::namespaced(fake.client(), "warden");
    let tr: TokenRequest = serde_json::from_value(json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"audiences": [], "expirationSeconds": 600}
    }))
    .unwrap();
    let out: TokenRequest = sas
        .create_subresource("token", "default", &PostParams::default(), &tr)
        .await
        .unwrap();
    let token = out.status.unwrap().token;
    // The default audience is the API server: the token works as a bearer
    // token (authenticated; RBAC then decides).
    let pods: Api<Pod> = Api::namespaced(fake.client_with_token(&token), "warden");
    let err = api_error(pods.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(err.code, 403);
    assert!(
        err.message.contains("system:serviceaccount:warden:default"),
        "{}",
        err.message
    );

    let short: TokenRequest =
        serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 60}}))
            .unwrap();
    let err = api_error(
        sas.create_subresource::<TokenRequest, TokenRequest>(
            "token",
            "default",
            &PostParams::default(),
            &short,
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 422);
}

#[tokio::test]
async fn issuer_discovery_documents_are_served() {
    let fake = fake().await;
    let body = reqwest_like_get(&fake, "/openid/v1/jwks").await;
    assert_eq!(body, fake.service_account_jwks());
    let conf = reqwest_like_get(&fake, "/.well-known/openid-configuration").await;
    assert_eq!(conf["issuer"], fake.service_account_issuer());
    assert!(
        conf["jwks_uri"]
            .as_str()
            .unwrap()
            .ends_with("/openid/v1/jwks")
    );
}

/// A raw GET over TCP without credentials.
async fn reqwest_like_get(fake: &FakeApiServer, path: &str) -> Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(fake.addr()).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        fake.addr()
    );
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    conn.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8(buf).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let body = text.split_once("\r\n\r\n").unwrap().1;
    serde_json::from_str(body).unwrap()
}
