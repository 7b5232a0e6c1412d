#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `warden serve --runtime kubernetes` against the fake API server, end to
//! end: an alert storm becomes one Job with the right spec; the pod (played
//! by the test, running the real `warden agent run --bootstrap`) claims its
//! input with its projected token, investigates and delivers its report;
//! the Job completes and is deleted. And `warden job-manifest` prints a Job
//! that passes kubernetes-validate (1.33, strict) and checkov.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use warden_kube_fake::{ContainerState, FakeApiServer, ServiceAccountIdentity};

const NS: &str = "warden-investigations";
const PHASES: [&str; 4] = ["shadow", "assist", "remediate", "autonomous"];

fn start_fake(rt: &tokio::runtime::Runtime) -> FakeApiServer {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let fake = rt.block_on(FakeApiServer::start()).unwrap();
    fake.ensure_namespace(NS).unwrap();
    for phase in PHASES {
        fake.create(json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": format!("warden-agent-{phase}"), "namespace": NS}
        }))
        .unwrap();
    }
    fake
}

/// `warden serve --runtime kubernetes`, up when it says so.
fn serve(data: &std::path::Path, config: &std::path::Path, port: u16) -> Server {
    let mut child = Command::new(WARDEN)
        .args(["serve", "--runtime", "kubernetes", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(data)
        .arg("--config")
        .arg(config)
        .env(
            "WARDEN_LOG",
            "warn,warden_control=info,warden_runtime_kube=info",
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start warden serve");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("warden serving on") {
                let _ = tx.send(());
            }
            eprintln!("[serve] {line}");
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("warden serve did not come up");
    Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

fn storm_payload(batch: usize) -> Value {
    let alerts: Vec<Value> = (0..10)
        .map(|i| {
            json!({
                "status": "firing",
                "labels": {"alertname": format!("CheckoutErrors{}", i % 4), "service": "checkout",
                           "namespace": "shop", "instance": format!("checkout-{batch}-{i}")},
                "annotations": {"summary": "checkout 5xx"},
                "startsAt": chrono::Utc::now().to_rfc3339(),
                "fingerprint": format!("{batch:04x}{i:012x}"),
            })
        })
        .collect();
    json!({"version": "4", "status": "firing", "receiver": "warden", "alerts": alerts})
}

fn until<T>(what: &str, within: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < within, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A control plane's files for `warden serve --runtime kubernetes` on the
/// fake API server: its config (kubeconfig, URL as the pods see it) and
/// data directory, kept across restarts.
struct Setup {
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
    data: std::path::PathBuf,
    port: u16,
    base: String,
}

impl Setup {
    fn new(fake: &FakeApiServer, group_wait_ms: u64) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = write(&dir.path().join("kubeconfig"), &fake.kubeconfig_yaml(None));
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let config = json!({
            "correlation": {"group_wait_ms": group_wait_ms},
            "secrets": {"backend": "none"},
            "runtime": {"kubernetes": {"kubeconfig": kubeconfig, "control_plane_url": base}},
        });
        let config = write(&dir.path().join("warden.yaml"), &config.to_string());
        let data = dir.path().join("data");
        Setup {
            dir,
            config,
            data,
            port,
            base,
        }
    }

    fn serve(&self) -> Server {
        serve(&self.data, &self.config, self.port)
    }

    /// Sends one batch of alerts and waits for the Job it becomes; returns
    /// the Job and its name.
    fn first_job(&self, fake: &FakeApiServer) -> (Value, String) {
        post(&format!("{}/api/v1/alerts", self.base), &storm_payload(0));
        let job = until("the Job", Duration::from_secs(20), || {
            fake.objects("Job").into_iter().next()
        });
        let name = job["metadata"]["name"].as_str().unwrap().to_string();
        (job, name)
    }

    /// Plays the Job controller and the kubelet for Job `job` (a running
    /// pod with its projected token), then runs the real agent as the
    /// image does. Returns the pod's name and the agent's output.
    fn run_pod(&self, fake: &FakeApiServer, job: &str) -> (String, std::process::Output) {
        let pod = fake.create_pod_for_job(NS, job).unwrap();
        let pod = pod["metadata"]["name"].as_str().unwrap().to_string();
        let token = format!("projected-token-{pod}");
        fake.register_token(
            token.clone(),
            ServiceAccountIdentity::new(NS, "warden-agent-shadow")
                .with_audiences(["warden"])
                .bound_to_pod(&pod),
        );
        let token_file = write(&self.dir.path().join("token"), &format!("{token}\n"));
        fake.set_container_state(NS, &pod, None, ContainerState::running())
            .unwrap();
        let agent = Command::new(WARDEN)
            .args(["agent", "run", "--bootstrap"])
            .arg(format!("{}/api/v1/jobs/bootstrap", self.base))
            .arg("--token-file")
            .arg(&token_file)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (pod, agent)
    }
}

#[test]
fn a_storm_becomes_one_job_whose_pod_bootstraps_reports_and_is_cleaned_up() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fake = start_fake(&rt);
    let setup = Setup::new(&fake, 500);
    let base = setup.base.clone();
    let server = setup.serve();

    // The storm: 50 alerts of one service, one batch sent twice.
    for batch in 0..5 {
        post(&format!("{base}/api/v1/alerts"), &storm_payload(batch));
    }
    post(&format!("{base}/api/v1/alerts"), &storm_payload(2));

    let job = until("the Job", Duration::from_secs(20), || {
        fake.objects("Job").into_iter().next()
    });
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(fake.objects("Job").len(), 1, "more than one Job");
    let invs = investigations(&base);
    assert_eq!(invs.len(), 1, "{invs:#?}");
    let inv = &invs[0];
    let id = inv["id"].as_str().unwrap().to_string();
    let name = format!("warden-{id}");

    // The spec follows the plan and the phase.
    assert_eq!(job["metadata"]["name"], name);
    assert_eq!(job["metadata"]["labels"]["warden.dev/investigation"], id);
    assert_eq!(job["metadata"]["annotations"]["warden.dev/phase"], "shadow");
    assert_eq!(
        job["metadata"]["annotations"]["warden.dev/complexity"],
        inv["plan"]["complexity"]
    );
    let pod_spec = &job["spec"]["template"]["spec"];
    assert_eq!(pod_spec["serviceAccountName"], "warden-agent-shadow");
    assert_eq!(pod_spec["automountServiceAccountToken"], false);
    let memory = inv["plan"]["profile"]["memory_bytes"].as_u64().unwrap();
    assert_eq!(
        pod_spec["containers"][0]["resources"]["limits"]["memory"],
        format!("{}Mi", memory / (1024 * 1024))
    );
    assert_eq!(
        job["spec"]["activeDeadlineSeconds"].as_u64().unwrap(),
        inv["plan"]["profile"]["deadline_seconds"].as_u64().unwrap()
    );
    let command: Vec<String> =
        serde_json::from_value(pod_spec["containers"][0]["command"].clone()).unwrap();
    assert_eq!(command[4], format!("{base}/api/v1/jobs/bootstrap"));

    // The pod, and in it the real agent as the image runs it.
    assert_eq!(command[4], format!("{base}/api/v1/jobs/bootstrap"));
    let (pod, agent) = setup.run_pod(&fake, &name);
    let stdout = String::from_utf8_lossy(&agent.stdout).to_string();
    assert_eq!(
        agent.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&agent.stderr)
    );
    assert!(stdout.contains("bootstrap_claimed"), "{stdout}");
    fake.append_pod_log(NS, &pod, &stdout).unwrap();

    // The input was handed out once; strangers get nothing.
    let again = client()
        .post(format!("{base}/api/v1/jobs/bootstrap"))
        .bearer_auth(format!("projected-token-{pod}"))
        .send()
        .unwrap();
    assert_eq!(again.status().as_u16(), 409);
    let stranger = client()
        .post(format!("{base}/api/v1/jobs/bootstrap"))
        .bearer_auth("made-up")
        .send()
        .unwrap();
    assert_eq!(stranger.status().as_u16(), 401);

    let done = wait_for(&base, Duration::from_secs(20), "the report", |l| {
        l.iter().all(terminal)
    });
    assert_eq!(done[0]["state"]["state"], "succeeded", "{done:#?}");
    get(&format!("{base}/api/v1/investigations/{id}/report"));

    // The pod ends; the Job completes and, with the outcome recorded, is
    // deleted with its pod.
    fake.set_container_state(NS, &pod, None, ContainerState::completed())
        .unwrap();
    fake.sync_job(NS, &name).unwrap();
    until("the Job to be deleted", Duration::from_secs(20), || {
        fake.object("Job", Some(NS), &name).is_none().then_some(())
    });
    assert!(fake.object("Pod", Some(NS), &pod).is_none());
    let deleted = fake
        .requests()
        .into_iter()
        .find(|r| r.verb == "delete" && r.resource.as_deref() == Some("jobs"))
        .unwrap();
    assert!(
        deleted
            .body
            .as_ref()
            .is_some_and(|b| b["propagationPolicy"] == "Background")
            || deleted.query.contains("Background"),
        "{deleted:?}"
    );

    // The pod's log, streamed while it ran, is served by the API.
    let logs = get_text(format!("{base}/api/v1/investigations/{id}/logs"));
    assert!(logs.contains("report_delivered"), "{logs}");
    assert!(logs.contains("created Job"), "{logs}");
    drop(server);
}

#[test]
fn a_job_left_behind_by_a_crash_after_the_report_is_deleted_on_restart() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fake = start_fake(&rt);
    let setup = Setup::new(&fake, 200);
    let base = setup.base.clone();
    let server = setup.serve();
    let (_, name) = setup.first_job(&fake);
    let (pod, agent) = setup.run_pod(&fake, &name);
    assert_eq!(agent.status.code(), Some(0));
    wait_for(&base, Duration::from_secs(20), "the report", |l| {
        l.iter().all(terminal)
    });

    // The control plane dies before the pod has ended: nobody deletes the Job.
    server.crash();
    fake.set_container_state(NS, &pod, None, ContainerState::completed())
        .unwrap();
    fake.sync_job(NS, &name).unwrap();
    assert!(fake.object("Job", Some(NS), &name).is_some());

    // The next control plane finds it by label and removes it.
    let _server = setup.serve();
    until("the Job to be deleted", Duration::from_secs(20), || {
        fake.object("Job", Some(NS), &name).is_none().then_some(())
    });
    assert_eq!(investigations(&base)[0]["state"]["state"], "succeeded");
}

#[test]
fn a_job_that_never_got_its_input_before_a_restart_is_started_again_and_succeeds() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fake = start_fake(&rt);
    let setup = Setup::new(&fake, 200);
    let base = setup.base.clone();
    let server = setup.serve();
    let (job, name) = setup.first_job(&fake);
    let first_uid = job["metadata"]["uid"].as_str().unwrap().to_string();
    let id = investigations(&base)[0]["id"].as_str().unwrap().to_string();
    // Its pod is still pulling the image when the control plane dies: the
    // input, which only that process held, is lost.
    let old_pod = fake.create_pod_for_job(NS, &name).unwrap();
    let old_pod = old_pod["metadata"]["name"].as_str().unwrap().to_string();
    server.crash();

    let _server = setup.serve();
    let job = until("a new Job", Duration::from_secs(20), || {
        fake.object("Job", Some(NS), &name)
            .filter(|j| j["metadata"]["uid"] != first_uid.as_str())
    });
    assert_eq!(fake.objects("Job").len(), 1);
    assert!(fake.object("Pod", Some(NS), &old_pod).is_none());
    let invs = investigations(&base);
    assert_eq!(invs.len(), 1, "{invs:#?}");
    assert_eq!(invs[0]["id"], id.as_str());
    assert_eq!(invs[0]["state"]["state"], "running");

    // The new Job's pod claims its input and the real agent reports.
    let (pod, agent) = setup.run_pod(&fake, &name);
    assert_eq!(
        agent.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&agent.stdout)
    );
    let claimed = fake.object("Job", Some(NS), &name).unwrap();
    assert_eq!(claimed["metadata"]["uid"], job["metadata"]["uid"]);
    assert_eq!(
        claimed["metadata"]["annotations"]["warden.dev/input-claimed-by"],
        pod.as_str()
    );
    let done = wait_for(&base, Duration::from_secs(20), "the report", |l| {
        l.iter().all(terminal)
    });
    assert_eq!(done[0]["state"]["state"], "succeeded", "{done:#?}");
    let metrics = get_text(format!("{base}/metrics"));
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("investigations_restarted") && l.ends_with(" 1")),
        "{metrics}"
    );
    let logs = get_text(format!("{base}/api/v1/investigations/{id}/logs"));
    assert!(logs.contains("before the job received its input"), "{logs}");
}

fn job_manifest(args: &[&str]) -> std::process::Output {
    Command::new(WARDEN)
        .arg("job-manifest")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn job_manifest_prints_a_job_that_validates_and_scans_clean() {
    let mut jobs = Vec::new();
    for (i, phase) in PHASES.iter().enumerate() {
        for complexity in ["simple", "moderate", "multi_domain"] {
            let id = format!("inv-01jd{:022}", jobs.len() + i * 100);
            let out = job_manifest(&[
                "--investigation-id",
                &id,
                "--phase",
                phase,
                "--complexity",
                complexity,
            ]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let yaml = String::from_utf8(out.stdout).unwrap();
            // Deterministic: the same arguments print the same Job.
            let again = job_manifest(&[
                "--investigation-id",
                &id,
                "--phase",
                phase,
                "--complexity",
                complexity,
            ]);
            assert_eq!(yaml, String::from_utf8(again.stdout).unwrap());
            let job: Value = serde_yaml::from_str(&yaml).unwrap();
            assert_eq!(job["kind"], "Job");
            assert_eq!(job["metadata"]["annotations"]["warden.dev/phase"], *phase);
            jobs.push(job);
        }
    }
    warden_manifest_check::validate_k8s(&jobs).unwrap();
    let report = warden_manifest_check::checkov(
        &jobs,
        &[
            (
                "CKV_K8S_43",
                "the image is configuration (runtime.kubernetes.image), pinned by digest there",
            ),
            (
                "CKV2_K8S_6",
                "the namespace's NetworkPolicies come from `warden render`, scanned with that bundle",
            ),
        ],
    )
    .unwrap();
    report.ensure_clean().unwrap();
}

#[test]
fn job_manifest_names_what_is_wrong_with_its_arguments() {
    let out = job_manifest(&["--investigation-id", "nope", "--phase", "shadow"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid investigation id"));
    let out = job_manifest(&[
        "--investigation-id",
        "inv-01jd0000000000000000000000",
        "--phase",
        "boss",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown phase \"boss\""));
}
