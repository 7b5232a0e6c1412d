//! The embedded broker against a real directory: leases, the encrypted
//! store, the audit log, and what must never reach a file.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use warden_core::ports::{IssuedIdentity, SecretBroker};
use warden_core::{Domain, InvestigationId, TrustPhase};
use warden_secrets::embedded::AuditRecord;
use warden_secrets::{DenyReason, EmbeddedBroker, KeySource, SecretsError};

const NET: &str = "network-monitoring";
const LLM: &str = "llm-inference";
const DB: &str = "database";

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    key: PathBuf,
    broker: EmbeddedBroker,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("secrets");
    let key = tmp.path().join("master.key");
    let broker = EmbeddedBroker::open(&dir, KeySource::File(key.clone())).unwrap();
    Fixture {
        _tmp: tmp,
        dir,
        key,
        broker,
    }
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_string())
}

fn domains(names: &[&str]) -> Vec<Domain> {
    names.iter().map(|n| Domain::new(*n)).collect()
}

fn issue(
    broker: &EmbeddedBroker,
    names: &[&str],
    ttl: chrono::Duration,
) -> (InvestigationId, IssuedIdentity) {
    let inv = InvestigationId::generate();
    let id = broker
        .issue_lease(&inv, TrustPhase::Shadow, &domains(names), Utc::now() + ttl)
        .unwrap();
    (inv, id)
}

fn minutes(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
}

fn path_of(broker: &EmbeddedBroker, domain: &str) -> String {
    broker
        .domains()
        .iter()
        .find(|d| d.name == domain)
        .unwrap()
        .path
        .clone()
}

fn seed(broker: &EmbeddedBroker) {
    for (d, v) in [(NET, "net-v1"), (LLM, "llm-v1"), (DB, "db-v1")] {
        broker.put(&path_of(broker, d), &secret(v)).unwrap();
    }
}

fn denied_reason(result: Result<SecretString, SecretsError>) -> DenyReason {
    match result {
        Err(SecretsError::Denied { reason, .. }) => reason,
        Err(other) => panic!("expected a denial, got {other}"),
        Ok(_) => panic!("expected a denial, got a value"),
    }
}

fn audit_lines(broker: &EmbeddedBroker) -> Vec<AuditRecord> {
    fs::read_to_string(broker.audit_log_path())
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn a_job_reads_its_domains_and_is_denied_any_other() {
    let f = fixture();
    seed(&f.broker);
    let (_, a) = issue(&f.broker, &[NET, LLM], minutes(5));

    assert_eq!(
        f.broker.read(&a.credential, NET).unwrap().expose_secret(),
        "net-v1"
    );
    assert_eq!(
        f.broker.read(&a.credential, LLM).unwrap().expose_secret(),
        "llm-v1"
    );
    let err = f.broker.read(&a.credential, DB).unwrap_err();
    assert_eq!(err.to_string(), "access to database denied: not allowed");
    assert_eq!(
        denied_reason(f.broker.read(&a.credential, "payroll")),
        DenyReason::NotAllowed
    );
}

#[test]
fn another_investigations_credential_opens_only_its_own_domains() {
    let f = fixture();
    seed(&f.broker);
    let (_, a) = issue(&f.broker, &[NET], minutes(5));
    let (_, b) = issue(&f.broker, &[DB], minutes(5));

    assert_eq!(
        f.broker.read(&b.credential, DB).unwrap().expose_secret(),
        "db-v1"
    );
    assert_eq!(
        denied_reason(f.broker.read(&a.credential, DB)),
        DenyReason::NotAllowed
    );
    assert_eq!(
        denied_reason(f.broker.read(&b.credential, NET)),
        DenyReason::NotAllowed
    );
    // A made-up credential of the right shape opens nothing.
    let forged = secret(&"0".repeat(64));
    assert_eq!(
        denied_reason(f.broker.read(&forged, NET)),
        DenyReason::NotAllowed
    );
    assert_ne!(a.accessor, b.accessor);
}

#[test]
fn an_expired_lease_is_refused() {
    let f = fixture();
    seed(&f.broker);
    let (_, a) = issue(&f.broker, &[NET], chrono::Duration::milliseconds(700));
    assert!(f.broker.read(&a.credential, NET).is_ok());
    std::thread::sleep(Duration::from_millis(900));
    assert_eq!(
        denied_reason(f.broker.read(&a.credential, NET)),
        DenyReason::Expired
    );
}

#[test]
fn a_revoked_lease_is_refused_and_revoking_is_idempotent() {
    let f = fixture();
    seed(&f.broker);
    let (inv, a) = issue(&f.broker, &[NET], minutes(5));
    f.broker.revoke_lease(&inv).unwrap();
    assert_eq!(
        denied_reason(f.broker.read(&a.credential, NET)),
        DenyReason::Revoked
    );
    f.broker.revoke_lease(&inv).unwrap();
    // An ended investigation gets no fresh credential.
    let again = f.broker.issue_lease(
        &inv,
        TrustPhase::Shadow,
        &domains(&[NET]),
        Utc::now() + minutes(5),
    );
    assert!(matches!(
        again,
        Err(SecretsError::Denied {
            reason: DenyReason::Revoked,
            ..
        })
    ));
    // Revoking an investigation that never had a lease is not an error.
    f.broker.revoke_lease(&InvestigationId::generate()).unwrap();
}

#[tokio::test]
async fn the_port_issues_and_revokes() {
    let f = fixture();
    seed(&f.broker);
    let broker: &dyn SecretBroker = &f.broker;
    let inv = InvestigationId::generate();
    let id = broker
        .issue(
            &inv,
            TrustPhase::Assist,
            &domains(&[LLM]),
            Utc::now() + minutes(1),
        )
        .await
        .unwrap();
    assert_eq!(id.domains, domains(&[LLM]));
    assert_eq!(
        f.broker.read(&id.credential, LLM).unwrap().expose_secret(),
        "llm-v1"
    );
    broker.revoke(&inv, None).await.unwrap();
    assert_eq!(
        denied_reason(f.broker.read(&id.credential, LLM)),
        DenyReason::Revoked
    );
    let unknown = broker
        .issue(
            &inv,
            TrustPhase::Assist,
            &domains(&["payroll"]),
            Utc::now() + minutes(1),
        )
        .await
        .unwrap_err();
    assert!(matches!(unknown, warden_core::ports::SecretError::Denied(m) if m.contains("payroll")));
}

#[test]
fn a_rotated_secret_is_seen_by_the_next_read_and_the_next_investigation() {
    let f = fixture();
    seed(&f.broker);
    let net = path_of(&f.broker, NET);
    let (_, a) = issue(&f.broker, &[NET], minutes(5));
    assert_eq!(
        f.broker.read(&a.credential, NET).unwrap().expose_secret(),
        "net-v1"
    );

    let meta = f.broker.rotate(&net, &secret("net-v2")).unwrap();
    assert_eq!(meta.version, 2);
    assert_eq!(
        f.broker.read(&a.credential, NET).unwrap().expose_secret(),
        "net-v2"
    );
    let (_, c) = issue(&f.broker, &[NET], minutes(5));
    assert_eq!(
        f.broker.read(&c.credential, NET).unwrap().expose_secret(),
        "net-v2"
    );

    let listed = f.broker.list().unwrap();
    assert_eq!(listed.iter().find(|m| m.path == net).unwrap().version, 2);
    assert_eq!(listed.len(), 3);
    let missing = f
        .broker
        .rotate("agent/data/typo", &secret("x"))
        .unwrap_err();
    assert!(matches!(missing, SecretsError::NotFound { ref path } if path == "agent/data/typo"));
}

#[test]
fn every_read_attempt_leaves_one_audit_line_without_value_or_credential() {
    let f = fixture();
    seed(&f.broker);
    let (inv, a) = issue(&f.broker, &[NET], minutes(5));
    f.broker.read(&a.credential, NET).unwrap();
    f.broker.read(&a.credential, DB).unwrap_err();
    f.broker.read(&secret("not-a-credential"), NET).unwrap_err();
    f.broker.revoke_lease(&inv).unwrap();
    f.broker.read(&a.credential, NET).unwrap_err();

    let lines = audit_lines(&f.broker);
    assert_eq!(lines.len(), 4);
    let reasons: Vec<(&str, bool)> = lines
        .iter()
        .map(|l| (l.reason.as_str(), l.granted))
        .collect();
    assert_eq!(
        reasons,
        [
            ("granted", true),
            ("domain not in lease", false),
            ("unknown credential", false),
            ("revoked", false)
        ]
    );
    assert_eq!(lines[0].investigation_id.as_deref(), Some(inv.as_str()));
    assert_eq!(lines[0].accessor.as_deref(), Some(a.accessor.as_str()));
    assert_eq!(
        lines[0].path.as_deref(),
        Some("agent/data/network-monitoring")
    );
    assert_eq!(lines[2].investigation_id, None);

    let raw = fs::read(f.broker.audit_log_path()).unwrap();
    assert!(!contains(&raw, "net-v1"));
    assert!(!contains(&raw, a.credential.expose_secret()));
    let mode = fs::metadata(f.broker.audit_log_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_key_file_readable_by_others_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("master.key");
    fs::write(&key, [7u8; 32]).unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let err =
        EmbeddedBroker::open(&tmp.path().join("s"), KeySource::File(key.clone())).unwrap_err();
    assert!(matches!(err, SecretsError::KeyFile { .. }), "{err}");
    assert!(err.to_string().contains("chmod 600"), "{err}");

    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(EmbeddedBroker::open(&tmp.path().join("s"), KeySource::File(key.clone())).is_ok());

    fs::write(&key, [7u8; 31]).unwrap();
    let short = EmbeddedBroker::open(&tmp.path().join("s"), KeySource::File(key)).unwrap_err();
    assert!(
        short.to_string().contains("shorter than 32 bytes"),
        "{short}"
    );
}

#[test]
fn a_new_key_file_is_created_private_and_reused() {
    let f = fixture();
    let mode = fs::metadata(&f.key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(fs::read(&f.key).unwrap().len(), 32);
    f.broker.put("agent/data/x", &secret("kept")).unwrap();
    drop(f.broker);
    let reopened = EmbeddedBroker::open(&f.dir, KeySource::File(f.key.clone())).unwrap();
    let (_, id) = {
        let r = reopened
            .with_domains(vec![warden_secrets::SecretsDomain::new(
                "x",
                "agent/data/x",
            )])
            .unwrap();
        let inv = InvestigationId::generate();
        let id = r
            .issue_lease(
                &inv,
                TrustPhase::Shadow,
                &domains(&["x"]),
                Utc::now() + minutes(1),
            )
            .unwrap();
        let value = r.read(&id.credential, "x").unwrap();
        assert_eq!(value.expose_secret(), "kept");
        (inv, id)
    };
    assert!(!id.accessor.is_empty());
}

#[test]
fn a_store_opened_with_another_key_refuses_to_decrypt() {
    let f = fixture();
    seed(&f.broker);
    let other = EmbeddedBroker::open(
        &f.dir,
        KeySource::Bytes(SecretBox::new(Box::new([9u8; 32]))),
    )
    .unwrap();
    let (_, id) = issue(&other, &[NET], minutes(1));
    let err = other.read(&id.credential, NET).unwrap_err();
    assert!(matches!(err, SecretsError::Corrupt { .. }), "{err}");
    assert_eq!(audit_lines(&other).last().unwrap().reason, "store error");
}

fn store_file(dir: &Path, path: &str) -> PathBuf {
    dir.join("store").join(hex::encode(path))
}

#[test]
fn a_tampered_blob_is_an_error_not_garbage() {
    let f = fixture();
    seed(&f.broker);
    let (_, id) = issue(&f.broker, &[NET, LLM], minutes(5));
    let file = store_file(&f.dir, &path_of(&f.broker, NET));

    // One flipped bit in the ciphertext.
    let original = fs::read_to_string(&file).unwrap();
    let mut blob: serde_json::Value = serde_json::from_str(&original).unwrap();
    let ct = blob["ciphertext"].as_str().unwrap().to_string();
    let flipped = format!("{}{}", if &ct[..1] == "0" { "1" } else { "0" }, &ct[1..]);
    blob["ciphertext"] = flipped.into();
    fs::write(&file, blob.to_string()).unwrap();
    assert!(matches!(
        f.broker.read(&id.credential, NET),
        Err(SecretsError::Corrupt { .. })
    ));

    // An edited version number.
    let mut blob: serde_json::Value = serde_json::from_str(&original).unwrap();
    blob["version"] = 7.into();
    fs::write(&file, blob.to_string()).unwrap();
    assert!(matches!(
        f.broker.read(&id.credential, NET),
        Err(SecretsError::Corrupt { .. })
    ));

    // Another path's blob copied over this one, with its path field edited.
    let llm = fs::read_to_string(store_file(&f.dir, &path_of(&f.broker, LLM))).unwrap();
    let mut moved: serde_json::Value = serde_json::from_str(&llm).unwrap();
    moved["path"] = path_of(&f.broker, NET).into();
    fs::write(&file, moved.to_string()).unwrap();
    assert!(matches!(
        f.broker.read(&id.credential, NET),
        Err(SecretsError::Corrupt { .. })
    ));

    // Not JSON at all.
    fs::write(&file, b"garbage").unwrap();
    assert!(matches!(
        f.broker.read(&id.credential, NET),
        Err(SecretsError::Corrupt { .. })
    ));

    fs::write(&file, original).unwrap();
    assert_eq!(
        f.broker.read(&id.credential, NET).unwrap().expose_secret(),
        "net-v1"
    );
}

#[test]
fn bad_requests_are_refused_and_change_nothing() {
    let f = fixture();
    let past = f.broker.issue_lease(
        &InvestigationId::generate(),
        TrustPhase::Shadow,
        &domains(&[NET]),
        Utc::now(),
    );
    assert!(matches!(past, Err(SecretsError::Invalid(_))));
    let bad_id = InvestigationId("inv-../../etc".to_string());
    let traversal = f.broker.issue_lease(
        &bad_id,
        TrustPhase::Shadow,
        &domains(&[NET]),
        Utc::now() + minutes(1),
    );
    assert!(matches!(traversal, Err(SecretsError::Invalid(_))));
    let unknown = f.broker.issue_lease(
        &InvestigationId::generate(),
        TrustPhase::Shadow,
        &domains(&["payroll"]),
        Utc::now() + minutes(1),
    );
    assert!(matches!(unknown, Err(SecretsError::UnknownDomain(ref d)) if d == "payroll"));
    assert!(f.broker.put("../escape", &secret("x")).is_err());
    assert!(files_under(&f.dir.join("leases")).is_empty());
    assert!(files_under(&f.dir.join("store")).is_empty());
}

#[test]
fn no_secret_or_credential_reaches_a_file_an_error_or_debug_output() {
    let f = fixture();
    let sentinel = format!("SENTINEL-{}", hex::encode(rand_bytes()));
    for d in [NET, LLM, DB] {
        f.broker
            .put(&path_of(&f.broker, d), &secret(&format!("{sentinel}-{d}")))
            .unwrap();
    }
    let (inv_a, a) = issue(&f.broker, &[NET, LLM], minutes(5));
    let (_, b) = issue(&f.broker, &[DB], chrono::Duration::milliseconds(300));
    let mut texts: Vec<String> = vec![
        format!("{a:?}"),
        format!("{b:?}"),
        format!("{:?}", f.broker),
    ];
    texts.push(format!("{:?}", f.broker.list().unwrap()));
    let value = f.broker.read(&a.credential, NET).unwrap();
    texts.push(format!("{value:?}"));
    f.broker
        .rotate(
            &path_of(&f.broker, NET),
            &secret(&format!("{sentinel}-rotated")),
        )
        .unwrap();
    f.broker.read(&a.credential, NET).unwrap();
    for result in [
        f.broker.read(&a.credential, DB),
        f.broker.read(&b.credential, NET),
        f.broker.read(&secret(&sentinel), NET),
    ] {
        let err = result.unwrap_err();
        texts.push(err.to_string());
        texts.push(format!("{err:?}"));
    }
    std::thread::sleep(Duration::from_millis(400));
    texts.push(f.broker.read(&b.credential, DB).unwrap_err().to_string());
    f.broker.revoke_lease(&inv_a).unwrap();
    let err = f.broker.read(&a.credential, NET).unwrap_err();
    texts.push(err.to_string());
    texts.push(format!("{err:?}"));
    texts.push(format!(
        "{:?}",
        KeySource::Bytes(SecretBox::new(Box::new([1u8; 32])))
    ));

    let credentials = [a.credential.expose_secret(), b.credential.expose_secret()];
    for text in &texts {
        assert!(!text.contains(&sentinel), "sentinel in {text}");
        for c in credentials {
            assert!(!text.contains(c), "credential in {text}");
        }
    }
    let files = files_under(&f.dir);
    assert!(files.len() >= 6, "{files:?}");
    for file in files {
        let bytes = fs::read(&file).unwrap();
        assert!(
            !contains(&bytes, &sentinel),
            "sentinel in {}",
            file.display()
        );
        for c in credentials {
            assert!(!contains(&bytes, c), "credential in {}", file.display());
        }
        let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
}

fn rand_bytes() -> [u8; 8] {
    let mut b = [0u8; 8];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    b
}
