//! A stand-in for the Job controller and the kubelet on the fake API
//! server: it "runs" each remediation Job by executing the very code the
//! container would ([`crate::run_action`]) with a client authenticated as
//! the Job's service account, so RBAC decides what the action may touch.
//! Test support only (feature `fake-kubelet`).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinHandle;
use warden_core::ProposedAction;
use warden_kube_fake::{ContainerState, FakeApiServer, ServiceAccountIdentity};

use crate::objects::parse_action_args;
use crate::runner::run_action;

/// One Job the stand-in ran.
#[derive(Debug, Clone)]
pub struct KubeletRun {
    pub job: String,
    pub service_account: String,
    pub action: ProposedAction,
    /// The result line, or the error.
    pub result: Result<String, String>,
    /// The probe (another action tried with the same service account), and
    /// the HTTP status it got (`None`: it succeeded or never reached the API).
    pub probe: Option<(ProposedAction, Result<String, Option<u16>>)>,
}

pub struct FakeKubelet {
    task: JoinHandle<()>,
    runs: Arc<Mutex<Vec<KubeletRun>>>,
}

impl Drop for FakeKubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeKubelet {
    /// Watches `namespace` for remediation Jobs. `probe`, when given, is
    /// tried after each Job's action with the same service account (to show
    /// what else that account can do).
    pub fn start(
        fake: FakeApiServer,
        namespace: &str,
        max_replicas: u32,
        probe: Option<ProposedAction>,
    ) -> FakeKubelet {
        let runs = Arc::new(Mutex::new(Vec::new()));
        let out = Arc::clone(&runs);
        let ns = namespace.to_string();
        let task = tokio::spawn(async move {
            let mut seen = BTreeSet::new();
            loop {
                for job in fake.objects("jobs") {
                    let name = str_at(&job, "/metadata/name");
                    if str_at(&job, "/metadata/namespace") != ns || !seen.insert(name.clone()) {
                        continue;
                    }
                    let run = run_job(&fake, &ns, &job, max_replicas, probe.as_ref()).await;
                    if let Ok(mut r) = out.lock() {
                        r.push(run);
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        FakeKubelet { task, runs }
    }

    pub fn runs(&self) -> Vec<KubeletRun> {
        self.runs.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

fn str_at(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

async fn run_job(
    fake: &FakeApiServer,
    ns: &str,
    job: &Value,
    max_replicas: u32,
    probe: Option<&ProposedAction>,
) -> KubeletRun {
    let name = str_at(job, "/metadata/name");
    let sa = str_at(job, "/spec/template/spec/serviceAccountName");
    let args: Vec<String> = job
        .pointer("/spec/template/spec/containers/0/args")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let token = format!("projected-{name}");
    fake.register_token(token.clone(), ServiceAccountIdentity::new(ns, sa.clone()));
    let client = fake.client_with_token(&token);
    let (action, result) = match parse_action_args(&args) {
        Ok(action) => {
            let r = run_action(client.clone(), &action, max_replicas)
                .await
                .map_err(|e| e.to_string());
            (action, r)
        }
        Err(e) => (
            ProposedAction {
                kind: warden_core::ActionKind::RestartPod,
                namespace: String::new(),
                target: String::new(),
                replicas: None,
            },
            Err(e),
        ),
    };
    let probe = match probe {
        Some(p) => Some((
            p.clone(),
            run_action(client, p, max_replicas)
                .await
                .map_err(|e| e.status()),
        )),
        None => None,
    };
    let line = match &result {
        Ok(l) => l.clone(),
        Err(e) => format!("remediation failed: {e}"),
    };
    if let Ok(pod) = fake.create_pod_for_job(ns, &name) {
        let pod_name = str_at(&pod, "/metadata/name");
        let _ = fake.append_pod_log(ns, &pod_name, &format!("{line}\n"));
        let state = if result.is_ok() {
            ContainerState::completed()
        } else {
            ContainerState::error(1)
        };
        let _ = fake.set_container_state(ns, &pod_name, None, state);
        let _ = fake.sync_job(ns, &name);
    }
    KubeletRun {
        job: name,
        service_account: sa,
        action,
        result,
        probe,
    }
}
