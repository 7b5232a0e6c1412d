//! The OpenBao broker and job client against a real OpenBao dev server and
//! a real PostgreSQL: identities, denial, attribution in OpenBao's own audit
//! log, revocation (explicit, by deadline, after a killed job), rotation,
//! outages, and that no secret leaks.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use warden_core::ports::{IssuedIdentity, SecretBroker, SecretError};
use warden_core::{Domain, InvestigationId, TrustPhase};
use warden_secrets::openbao::{DatabaseSetup, JwtSetup, Setup, jwt_role_name};
use warden_secrets::{
    DATABASE_ROLE, DenyReason, JobClient, OpenBaoAdmin, OpenBaoBroker, OpenBaoConfig, SecretsError,
    default_domains,
};

use support::{Bao, JwtIssuer, Postgres, ROOT_TOKEN, random_hex};

const NS: &str = "warden";
const AUDIENCE: &str = "openbao";
const NET: &str = "network-monitoring";
const LLM: &str = "llm-inference";
const DB: &str = "database";

fn secret(s: impl Into<String>) -> SecretString {
    SecretString::from(s.into())
}

fn path_of(domain: &str) -> String {
    default_domains()
        .into_iter()
        .find(|d| d.name == domain)
        .unwrap()
        .path
}

fn domains(names: &[&str]) -> Vec<Domain> {
    names.iter().map(|n| Domain::new(*n)).collect()
}

struct Stack {
    bao: Bao,
    pg: Option<Postgres>,
    admin: OpenBaoAdmin,
    config: OpenBaoConfig,
    broker: OpenBaoBroker,
    job: JobClient,
    jwt: JwtIssuer,
}

/// OpenBao configured as warden needs it, every domain seeded with
/// `<prefix><domain>`, and (with `database`) PostgreSQL behind the database
/// secrets engine with one table to read.
async fn stack(database: bool, prefix: &str) -> Stack {
    let bao = Bao::start().await;
    let pg = database.then(Postgres::start);
    if let Some(pg) = &pg {
        let mut conn = PgConnection::connect(&pg.superuser_url()).await.unwrap();
        sqlx::raw_sql("CREATE TABLE probe (id int); INSERT INTO probe VALUES (1), (2);")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let admin = OpenBaoAdmin::new(&bao.addr, secret(ROOT_TOKEN)).unwrap();
    let jwt = JwtIssuer::new();
    let mut setup = Setup::new(default_domains());
    setup.jwt = Some(JwtSetup {
        mount: "jwt".into(),
        validation_pubkeys: vec![jwt.public_key_pem()],
        bound_issuer: Some(jwt.issuer.clone()),
        audience: AUDIENCE.into(),
        namespace: NS.into(),
        phases: vec![
            (TrustPhase::Shadow, vec![NET.into(), LLM.into()]),
            (TrustPhase::Assist, vec![NET.into(), LLM.into(), DB.into()]),
        ],
        token_ttl: Duration::from_secs(600),
    });
    setup.database = pg.as_ref().map(|pg| DatabaseSetup {
        connection_url: pg.template_url(),
        username: "postgres".into(),
        password: secret(pg.superuser_password.clone()),
        default_ttl: Duration::from_secs(300),
        max_ttl: Duration::from_secs(900),
    });
    admin.configure(&setup).await.unwrap();
    // Configuring twice changes nothing and fails nothing.
    admin.configure(&setup).await.unwrap();
    for d in default_domains() {
        admin
            .put_kv(&d.path, &secret(format!("{prefix}{}", d.name)))
            .await
            .unwrap();
    }
    let cp_token = admin
        .create_control_plane_token(Duration::from_secs(3600))
        .await
        .unwrap();
    let mut config = OpenBaoConfig::new(bao.addr.clone(), cp_token);
    config.namespace = NS.into();
    let broker = OpenBaoBroker::new(config.clone()).unwrap();
    let job = JobClient::new(&bao.addr).unwrap();
    Stack {
        bao,
        pg,
        admin,
        config,
        broker,
        job,
        jwt,
    }
}

impl Stack {
    async fn issue(
        &self,
        names: &[&str],
        ttl: chrono::Duration,
    ) -> (InvestigationId, IssuedIdentity) {
        let inv = InvestigationId::generate();
        let id = self
            .broker
            .issue_identity(&inv, TrustPhase::Assist, &domains(names), Utc::now() + ttl)
            .await
            .unwrap();
        (inv, id)
    }

    /// The request entries of OpenBao's audit log made with `token`.
    async fn audit_requests_of(&self, token: &SecretString) -> Vec<Value> {
        let hashed = self.admin.audit_hash("file", token).await.unwrap();
        self.bao
            .audit_entries()
            .into_iter()
            .filter(|e| e["type"] == "request" && e["auth"]["client_token"] == hashed.as_str())
            .collect()
    }

    fn pg(&self) -> &Postgres {
        self.pg.as_ref().unwrap()
    }

    async fn pg_login(
        &self,
        user: &str,
        password: &SecretString,
    ) -> Result<PgConnection, sqlx::Error> {
        let opts = PgConnectOptions::new()
            .host("127.0.0.1")
            .port(self.pg().port)
            .username(user)
            .password(password.expose_secret())
            .database("postgres");
        PgConnection::connect_with(&opts).await
    }

    async fn role_exists(&self, user: &str) -> bool {
        let mut conn = PgConnection::connect(&self.pg().superuser_url())
            .await
            .unwrap();
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_roles WHERE rolname = $1")
            .bind(user)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        n > 0
    }

    /// Waits up to `within` for the database user to be gone and its login
    /// to fail.
    async fn assert_db_user_gone(&self, user: &str, password: &SecretString, within: Duration) {
        let deadline = Instant::now() + within;
        while self.role_exists(user).await {
            assert!(
                Instant::now() < deadline,
                "database user {user} still exists"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let err = self.pg_login(user, password).await.unwrap_err();
        assert!(
            err.to_string().contains("password authentication failed"),
            "{err}"
        );
    }
}

fn minutes(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
}

fn denied(result: Result<SecretString, SecretsError>) -> DenyReason {
    match result {
        Err(SecretsError::Denied { reason, .. }) => reason,
        Err(e) => panic!("expected a denial, got {e}"),
        Ok(_) => panic!("expected a denial, got a value"),
    }
}

#[tokio::test]
async fn each_job_reads_only_its_plan_and_cannot_use_another_investigations_identity() {
    let s = stack(false, "v1-").await;
    let (inv_a, a) = s.issue(&[NET, LLM], minutes(5)).await;
    let (_, b) = s.issue(&[DB], minutes(5)).await;
    assert_eq!(a.domains, domains(&[LLM, NET]));

    let token_a = s.job.unwrap(&a.credential).await.unwrap();
    assert_eq!(
        s.job
            .read_kv(&token_a, &path_of(NET))
            .await
            .unwrap()
            .expose_secret(),
        "v1-network-monitoring"
    );
    assert_eq!(
        s.job
            .read_kv(&token_a, &path_of(LLM))
            .await
            .unwrap()
            .expose_secret(),
        "v1-llm-inference"
    );
    assert_eq!(
        denied(s.job.read_kv(&token_a, &path_of(DB)).await),
        DenyReason::NotAllowed
    );
    let creds = s.job.db_creds(&token_a, DATABASE_ROLE).await.unwrap_err();
    assert!(matches!(creds, SecretsError::Denied { .. }), "{creds}");

    // B's job unwraps its identity; the wrapping token is then spent.
    let token_b = s.job.unwrap(&b.credential).await.unwrap();
    assert_eq!(
        s.job
            .read_kv(&token_b, &path_of(DB))
            .await
            .unwrap()
            .expose_secret(),
        "v1-database"
    );
    assert_eq!(
        denied(s.job.unwrap(&b.credential).await),
        DenyReason::NotAllowed
    );
    assert_eq!(
        denied(s.job.unwrap(&a.credential).await),
        DenyReason::NotAllowed
    );
    assert_eq!(
        denied(s.job.read_kv(&token_b, &path_of(NET)).await),
        DenyReason::NotAllowed
    );

    // OpenBao's own audit log attributes every request of A's token to A.
    let entries = s.audit_requests_of(&token_a).await;
    let paths: Vec<&str> = entries
        .iter()
        .map(|e| e["request"]["path"].as_str().unwrap())
        .collect();
    for p in [path_of(NET), path_of(LLM), path_of(DB)] {
        assert!(paths.contains(&p.as_str()), "{p} missing from {paths:?}");
    }
    let hashed_accessor = s
        .admin
        .audit_hash("file", &secret(a.accessor.clone()))
        .await
        .unwrap();
    for e in &entries {
        assert_eq!(
            e["auth"]["metadata"]["investigation_id"],
            inv_a.as_str(),
            "{e}"
        );
        assert_eq!(e["auth"]["display_name"], format!("token-{inv_a}"), "{e}");
        assert_eq!(e["auth"]["accessor"], hashed_accessor.as_str(), "{e}");
        assert_eq!(e["auth"]["metadata"]["namespace"], NS);
    }
    let denied_entry = entries
        .iter()
        .find(|e| e["request"]["path"] == path_of(DB).as_str())
        .unwrap();
    assert_eq!(denied_entry["auth"]["policy_results"]["allowed"], false);
}

#[tokio::test]
async fn revoking_an_investigation_removes_its_token_and_its_database_user() {
    let s = stack(true, "v1-").await;
    let (inv, a) = s.issue(&[DB], minutes(5)).await;
    let token = s.job.unwrap(&a.credential).await.unwrap();
    let creds = s.job.db_creds(&token, DATABASE_ROLE).await.unwrap();
    assert!(creds.lease_duration <= Duration::from_secs(300));

    let mut conn = s.pg_login(&creds.username, &creds.password).await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM probe")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows, 2);
    let write = sqlx::query("INSERT INTO probe VALUES (3)")
        .execute(&mut conn)
        .await;
    assert!(write.is_err(), "the database user must be read-only");
    drop(conn);
    // A wrong password is refused, so the check below can fail for the
    // right reason only.
    assert!(s.pg_login(&creds.username, &secret("wrong")).await.is_err());

    let broker: &dyn SecretBroker = &s.broker;
    broker.revoke(&inv, None).await.unwrap();
    broker.revoke(&inv, None).await.unwrap();
    assert_eq!(
        denied(s.job.read_kv(&token, &path_of(DB)).await),
        DenyReason::NotAllowed
    );
    s.assert_db_user_gone(&creds.username, &creds.password, Duration::from_secs(5))
        .await;
}

#[tokio::test]
async fn a_token_past_its_deadline_is_gone_with_its_database_user() {
    let s = stack(true, "v1-").await;
    let expires = Utc::now() + chrono::Duration::seconds(3);
    let inv = InvestigationId::generate();
    let a = s
        .broker
        .issue_identity(&inv, TrustPhase::Assist, &domains(&[DB]), expires)
        .await
        .unwrap();
    assert!(a.expires_at <= expires);
    let token = s.job.unwrap(&a.credential).await.unwrap();
    let creds = s.job.db_creds(&token, DATABASE_ROLE).await.unwrap();
    s.pg_login(&creds.username, &creds.password).await.unwrap();

    let wait = (expires - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(500);
    tokio::time::sleep(wait).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match s.job.read_kv(&token, &path_of(DB)).await {
            Err(SecretsError::Denied { .. }) => break,
            other => {
                assert!(
                    Instant::now() < deadline,
                    "token still works: {:?}",
                    other.map(|_| ())
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    s.assert_db_user_gone(&creds.username, &creds.password, Duration::from_secs(5))
        .await;
}

#[tokio::test]
async fn after_a_killed_job_and_a_restarted_control_plane_revoking_by_accessor_leaves_nothing() {
    let s = stack(true, "v1-").await;
    let (inv, a) = s.issue(&[DB], minutes(5)).await;
    assert_eq!(
        s.broker.accessor_of(&inv).as_deref(),
        Some(a.accessor.as_str())
    );
    let token = s.job.unwrap(&a.credential).await.unwrap();
    let creds = s.job.db_creds(&token, DATABASE_ROLE).await.unwrap();

    // A stand-in job holding the credentials (through its stdin, never argv
    // or env) is killed.
    let mut job = Command::new("sleep")
        .arg("30")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let handed = json!({ "username": creds.username, "password": creds.password.expose_secret() });
    job.stdin
        .as_mut()
        .unwrap()
        .write_all(handed.to_string().as_bytes())
        .unwrap();
    job.kill().unwrap();
    job.wait().unwrap();
    s.pg_login(&creds.username, &creds.password).await.unwrap();

    // The control plane restarted: it only has the accessor it stored.
    let restarted = OpenBaoBroker::new(s.config.clone()).unwrap();
    assert_eq!(restarted.accessor_of(&inv), None);
    restarted.revoke_accessor(&a.accessor).await.unwrap();
    restarted.revoke_accessor(&a.accessor).await.unwrap();
    assert_eq!(
        denied(s.job.read_kv(&token, &path_of(DB)).await),
        DenyReason::NotAllowed
    );
    s.assert_db_user_gone(&creds.username, &creds.password, Duration::from_secs(5))
        .await;
}

#[tokio::test]
async fn a_rotated_secret_is_seen_by_the_next_investigation() {
    let s = stack(false, "v1-").await;
    let (_, a) = s.issue(&[NET], minutes(5)).await;
    let token_a = s.job.unwrap(&a.credential).await.unwrap();
    assert_eq!(
        s.job
            .read_kv(&token_a, &path_of(NET))
            .await
            .unwrap()
            .expose_secret(),
        "v1-network-monitoring"
    );

    let version = s
        .admin
        .put_kv(&path_of(NET), &secret("v2-rotated"))
        .await
        .unwrap();
    assert_eq!(version, 2);
    let (_, b) = s.issue(&[NET], minutes(5)).await;
    let token_b = s.job.unwrap(&b.credential).await.unwrap();
    assert_eq!(
        s.job
            .read_kv(&token_b, &path_of(NET))
            .await
            .unwrap()
            .expose_secret(),
        "v2-rotated"
    );
}

#[tokio::test]
async fn a_sealed_openbao_fails_issue_fast_and_says_so() {
    let s = stack(false, "v1-").await;
    s.admin.seal().await.unwrap();
    assert!(s.broker.health().await.unwrap().sealed);

    let started = Instant::now();
    let err = s
        .broker
        .issue_identity(
            &InvestigationId::generate(),
            TrustPhase::Shadow,
            &domains(&[NET]),
            Utc::now() + minutes(5),
        )
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(err, SecretsError::Sealed { .. }), "{err}");
    assert!(err.to_string().contains("is sealed"), "{err}");

    let broker: &dyn SecretBroker = &s.broker;
    let port_err = broker
        .issue(
            &InvestigationId::generate(),
            TrustPhase::Shadow,
            &domains(&[NET]),
            Utc::now() + minutes(5),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(port_err, SecretError::Unavailable(ref m) if m.contains("sealed")),
        "{port_err}"
    );
}

#[tokio::test]
async fn a_stopped_openbao_fails_issue_fast_and_says_so() {
    let mut s = stack(false, "v1-").await;
    s.bao.stop();
    let started = Instant::now();
    let err = s
        .broker
        .issue_identity(
            &InvestigationId::generate(),
            TrustPhase::Shadow,
            &domains(&[NET]),
            Utc::now() + minutes(5),
        )
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, SecretsError::Unavailable { .. }), "{err}");
    assert!(err.retryable());
    assert!(err.to_string().contains("could not connect"), "{err}");
}

#[tokio::test]
async fn a_token_that_is_not_what_was_asked_for_is_revoked_before_the_error_returns() {
    let s = stack(false, "v1-").await;
    // An operator broke the role: tokens would be children of the control
    // plane's token instead of orphans.
    let role = json!({
        "allowed_policies": default_domains().iter().map(|d| d.policy_name()).collect::<Vec<_>>(),
        "orphan": false,
        "renewable": false,
    });
    let resp = reqwest::Client::new()
        .request(
            Method::POST,
            format!("{}/v1/auth/token/roles/warden-investigation", s.bao.addr),
        )
        .header("X-Vault-Token", ROOT_TOKEN)
        .json(&role)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());

    let before = s.admin.list_token_accessors().await.unwrap();
    let inv = InvestigationId::generate();
    let err = s
        .broker
        .issue_identity(
            &inv,
            TrustPhase::Shadow,
            &domains(&[NET]),
            Utc::now() + minutes(5),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not an orphan"), "{err}");
    let mut after = s.admin.list_token_accessors().await.unwrap();
    let mut before = before;
    before.sort();
    after.sort();
    assert_eq!(before, after, "a token was left behind");
    assert_eq!(s.broker.accessor_of(&inv), None);
}

#[tokio::test]
async fn a_job_logs_in_with_its_service_account_jwt_and_is_attributed_to_its_pod() {
    let s = stack(false, "v1-").await;
    let pod = format!("{}-job-x7k2p", InvestigationId::generate());
    let shadow_sa = "warden-agent-shadow";
    let claims = s
        .jwt
        .service_account_claims(NS, shadow_sa, &pod, AUDIENCE, 300);
    let jwt = secret(s.jwt.sign(&claims));
    let role = jwt_role_name(TrustPhase::Shadow);

    let token = s.job.login_jwt("jwt", &role, &jwt).await.unwrap();
    assert_eq!(
        s.job
            .read_kv(&token, &path_of(NET))
            .await
            .unwrap()
            .expose_secret(),
        "v1-network-monitoring"
    );
    assert_eq!(
        denied(s.job.read_kv(&token, &path_of(DB)).await),
        DenyReason::NotAllowed
    );
    let entries = s.audit_requests_of(&token).await;
    assert!(entries.len() >= 2);
    for e in &entries {
        assert_eq!(e["auth"]["metadata"]["pod"], pod.as_str(), "{e}");
        assert_eq!(e["auth"]["metadata"]["service_account"], shadow_sa, "{e}");
        assert_eq!(e["auth"]["metadata"]["namespace"], NS, "{e}");
    }

    // Another phase's service account, another audience, an expired token
    // and a token signed by a stranger are all refused.
    let assist = s
        .jwt
        .service_account_claims(NS, "warden-agent-assist", &pod, AUDIENCE, 300);
    let wrong_aud = s
        .jwt
        .service_account_claims(NS, shadow_sa, &pod, "someone-else", 300);
    let expired = s
        .jwt
        .service_account_claims(NS, shadow_sa, &pod, AUDIENCE, -120);
    let stranger = JwtIssuer::new().sign(&claims);
    for bad in [
        s.jwt.sign(&assist),
        s.jwt.sign(&wrong_aud),
        s.jwt.sign(&expired),
        stranger,
    ] {
        let bad = secret(bad);
        let err = s.job.login_jwt("jwt", &role, &bad).await.unwrap_err();
        assert!(matches!(err, SecretsError::Denied { .. }), "{err}");
        assert!(!err.to_string().contains(bad.expose_secret()));
    }
}

/// Collects everything traced while it is installed.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_or_token_reaches_an_error_a_log_or_debug_output() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .init();

    let sentinel = format!("SENTINEL-{}", random_hex(8));
    let s = stack(true, &format!("{sentinel}-")).await;
    let mut texts: Vec<String> = Vec::new();
    let mut tokens: Vec<SecretString> = Vec::new();

    let (inv_a, a) = s.issue(&[NET, DB], minutes(5)).await;
    let (_, b) = s.issue(&[LLM], minutes(5)).await;
    texts.extend([
        format!("{a:?}"),
        format!("{b:?}"),
        format!("{:?}", s.broker),
        format!("{:?}", s.config),
    ]);
    texts.extend([format!("{:?}", s.job), format!("{:?}", s.admin)]);
    tokens.extend([a.credential.clone(), b.credential.clone()]);

    let token_a = s.job.unwrap(&a.credential).await.unwrap();
    tokens.push(token_a.clone());
    let value = s.job.read_kv(&token_a, &path_of(NET)).await.unwrap();
    assert!(value.expose_secret().starts_with(&sentinel));
    texts.push(format!("{value:?}"));
    let creds = s.job.db_creds(&token_a, DATABASE_ROLE).await.unwrap();
    texts.push(format!("{creds:?}"));
    tokens.push(creds.password.clone());

    let mut errors: Vec<SecretsError> = vec![
        s.job.read_kv(&token_a, &path_of(LLM)).await.unwrap_err(),
        s.job.unwrap(&a.credential).await.unwrap_err(),
        s.job
            .read_kv(&secret(sentinel.clone()), &path_of(NET))
            .await
            .unwrap_err(),
        s.job
            .login_jwt("jwt", "warden-agent-shadow", &secret(sentinel.clone()))
            .await
            .unwrap_err(),
        s.admin
            .put_kv("agent/data/../x", &secret(sentinel.clone()))
            .await
            .unwrap_err(),
    ];
    s.broker.revoke_investigation(&inv_a).await.unwrap();
    errors.push(s.job.read_kv(&token_a, &path_of(NET)).await.unwrap_err());
    errors.push(s.job.db_creds(&token_a, DATABASE_ROLE).await.unwrap_err());
    for e in &errors {
        texts.push(e.to_string());
        texts.push(format!("{e:?}"));
    }

    let captured = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        captured.contains(&a.accessor),
        "the issue was not traced at all"
    );
    texts.push(captured);
    let audit = std::fs::read_to_string(&s.bao.audit_log).unwrap();
    for text in texts.iter().chain([&audit]) {
        assert!(!text.contains(&sentinel), "sentinel leaked into: {text}");
        for t in &tokens {
            assert!(
                !text.contains(t.expose_secret()),
                "a token leaked into: {text}"
            );
        }
    }
}
