//! Starting the real `warden` binary as a control plane, and talking to it.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const WARDEN: &str = env!("CARGO_BIN_EXE_warden");

/// A port that was free a moment ago, so a restarted control plane can
/// come back on the same address its running jobs report to.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Server {
    pub fn start(data_dir: &Path, config: &Path, port: u16) -> Server {
        let mut child = Command::new(WARDEN)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--config")
            .arg(config)
            .env("WARDEN_LOG", "warn,warden_control=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start warden serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && line.contains("warden serving on") {
                    let _ = tx.send(());
                    sent = true;
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

    /// SIGKILL: no chance to clean up, as in a crash.
    pub fn crash(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

pub fn get(url: &str) -> Value {
    let r = client().get(url).send().expect("GET");
    assert!(r.status().is_success(), "GET {url}: {}", r.status());
    r.json().expect("JSON")
}

/// The body of a GET as text (logs, metrics), whatever the status.
pub fn get_text(url: impl reqwest::IntoUrl) -> String {
    client()
        .get(url)
        .send()
        .expect("GET")
        .text()
        .expect("text body")
}

pub fn post(url: &str, body: &Value) -> Value {
    let r = client().post(url).json(body).send().expect("POST");
    let status = r.status();
    let v: Value = r.json().unwrap_or(Value::Null);
    assert!(status.is_success(), "POST {url}: {status} {v}");
    v
}

pub fn investigations(base: &str) -> Vec<Value> {
    get(&format!("{base}/api/v1/investigations"))["investigations"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Polls until `pred` holds on the investigation list, or panics.
pub fn wait_for(
    base: &str,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let list = investigations(base);
        if pred(&list) {
            return list;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out waiting for {what}: {list:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn terminal(v: &Value) -> bool {
    matches!(
        v["state"]["state"].as_str(),
        Some("succeeded" | "failed" | "timed_out" | "cancelled")
    )
}

pub fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).expect("write");
    path.to_path_buf()
}

/// Alerts labelled so that each title becomes its own incident.
pub fn generic_incident(title: &str) -> Value {
    serde_json::json!({
        "title": title,
        "alerts": [{"labels": {"alertname": "Synthetic", "service": title.replace(' ', "-"), "namespace": title.replace(' ', "-")}}]
    })
}

/// The demo scenario's telemetry bundle written under `dir`, and its
/// dependency edges as configuration JSON.
pub fn demo_bundle(dir: &Path, seed: u64) -> (warden_demo::Scenario, PathBuf, Value) {
    let scenario = warden_demo::Scenario::firewall_cascade(warden_demo::default_base(), seed);
    let bundle = dir.join("telemetry");
    scenario.write_bundle(&bundle).expect("write the bundle");
    let topology: Vec<Value> = scenario
        .topology_hints()
        .iter()
        .map(|e| serde_json::json!({"from": e.from, "to": e.to}))
        .collect();
    (scenario, bundle, Value::Array(topology))
}

/// A job command that misbehaves on purpose by incident title — `hog…`
/// allocates without bound, `spin…` loops forever — and otherwise runs the
/// real agent (`$1`) with the same input.
pub const MISBEHAVING_JOB: &str = r#"#!/bin/sh
input=$(cat)
case "$input" in
  *'"title":"hog'*) exec python3 -c 'x = []
while True: x.append(bytearray(32 * 1024 * 1024))' ;;
  *'"title":"spin'*) exec sh -c 'while :; do :; done' ;;
  *) printf '%s' "$input" | exec "$1" agent run ;;
esac
"#;

/// Runs the `warden` binary with `args`, feeding `stdin`, and waits.
pub fn run_warden<S: AsRef<std::ffi::OsStr>>(args: &[S], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(WARDEN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start warden");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait for warden")
}
