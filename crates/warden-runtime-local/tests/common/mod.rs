//! Shared test fixtures: a job program with one behaviour per role, a
//! runtime on a temporary data directory, and an event collector.
//!
//! The job program reads its input from stdin like the real agent does and
//! picks its behaviour from the incident title, so one runtime can run a
//! memory hog, a busy loop and a well-behaved job side by side.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use secrecy::SecretString;
use tempfile::TempDir;
use tokio::sync::mpsc;
use warden_core::incident::{Incident, IncidentStatus};
use warden_core::ports::{JobEvent, JobEventKind, JobEvents, JobOutcome, JobSpec};
use warden_core::{
    AgentInput, Complexity, IncidentId, InvestigationId, Plan, ResourceProfile, TrustPhase,
};
use warden_runtime_local::{IsolationMode, LocalRuntime, LocalRuntimeConfig};

pub const MIB: u64 = 1024 * 1024;
/// Job cgroups of the tests stay apart from a real control plane's.
pub const TEST_CGROUP_PARENT: &str = "warden-test";

const JOB_PROGRAM: &str = r#"#!/usr/bin/env python3
import json, os, signal, sys, time

raw = sys.stdin.read()
doc = json.loads(raw)
role = doc["input"]["incident"]["title"]
home = os.environ.get("HOME", ".")

def keep(name, data):
    with open(os.path.join(home, name), "wb") as f:
        f.write(data)

def busy():
    while True:
        pass

if role == "echo":
    keep("received.json", raw.encode())
    keep("environ", open("/proc/self/environ", "rb").read())
    keep("cmdline", open("/proc/self/cmdline", "rb").read())
    keep("cwd", os.getcwd().encode())
    print("echo done", flush=True)
elif role == "hog":
    print("allocating", flush=True)
    block = b"\x01" * (1536 << 20)
    print("allocated", len(block), flush=True)
elif role == "loop":
    # Ignores SIGTERM, so only the SIGKILL after the grace period ends it.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = os.fork()
    if child == 0:
        busy()
    keep("child.pid", str(child).encode())
    busy()
elif role == "forkbomb":
    while True:
        try:
            os.fork()
        except OSError:
            pass
elif role == "leave-behind":
    # One child stays in the job's process group; one starts a session of
    # its own, out of the group's reach. The job itself exits at once.
    stays = os.fork()
    if stays == 0:
        time.sleep(60)
        os._exit(0)
    ready, told = os.pipe()
    escapes = os.fork()
    if escapes == 0:
        os.setsid()
        os.write(told, b"x")
        time.sleep(60)
        os._exit(0)
    os.read(ready, 1)
    keep("left-behind", f"{stays} {escapes}".encode())
elif role.startswith("sleep:"):
    print("sleeping", flush=True)
    time.sleep(float(role[len("sleep:"):]))
elif role.startswith("exit:"):
    sys.exit(int(role[len("exit:"):]))
elif role == "normal":
    ballast = b"\x01" * (8 << 20)
    print("normal done", sum(i * i for i in range(200000)), len(ballast), flush=True)
else:
    sys.exit(99)
"#;

/// Which isolation the runtime under test should use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The machine's cgroup v1 hierarchies (falls back if not writable).
    Cgroups,
    /// A `cgroup_root` without controllers forces the rlimit fallback.
    Rlimits,
}

pub struct Collector(mpsc::UnboundedSender<JobEvent>);

impl JobEvents for Collector {
    fn emit(&self, event: JobEvent) {
        let _ = self.0.send(event);
    }
}

pub struct Harness {
    pub dir: TempDir,
    pub program: PathBuf,
    pub mode: Mode,
    empty_cgroup_root: TempDir,
    pub runtime: LocalRuntime,
    pub events: mpsc::UnboundedReceiver<JobEvent>,
}

impl Harness {
    pub fn new(mode: Mode) -> Self {
        Self::with(mode, |_| {})
    }

    /// A harness whose configuration `adjust` may change.
    pub fn with(mode: Mode, adjust: impl Fn(&mut LocalRuntimeConfig)) -> Self {
        Self::with_program(mode, JOB_PROGRAM, adjust)
    }

    /// A harness running the job program `body` instead of the role-based one.
    pub fn with_program(mode: Mode, body: &str, adjust: impl Fn(&mut LocalRuntimeConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let program = write_program(dir.path(), "job.py", body);
        let empty_cgroup_root = tempfile::tempdir().unwrap();
        let mut config = config_for(dir.path(), &program, mode, empty_cgroup_root.path());
        adjust(&mut config);
        let (runtime, events) = runtime(config);
        Harness {
            dir,
            program,
            mode,
            empty_cgroup_root,
            runtime,
            events,
        }
    }

    /// Another runtime on the same data directory, as after a restart.
    pub fn restart(&self) -> (LocalRuntime, mpsc::UnboundedReceiver<JobEvent>) {
        runtime(config_for(
            &self.data_dir(),
            &self.program,
            self.mode,
            self.empty_cgroup_root.path(),
        ))
    }

    /// Drops the runtime as a control-plane crash would (its jobs keep
    /// running) and puts a new one on the same data directory in its
    /// place. Returns the old runtime's events.
    pub fn crash_and_restart(&mut self) -> mpsc::UnboundedReceiver<JobEvent> {
        let (runtime, events) = self.restart();
        drop(std::mem::replace(&mut self.runtime, runtime));
        std::mem::replace(&mut self.events, events)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    pub fn work_dir(&self, id: &InvestigationId) -> PathBuf {
        self.dir.path().join("jobs").join(id.as_str()).join("work")
    }

    pub fn job_record(&self, id: &InvestigationId) -> PathBuf {
        self.dir
            .path()
            .join("jobs")
            .join(id.as_str())
            .join("job.json")
    }

    pub fn log_path(&self, id: &InvestigationId) -> PathBuf {
        self.dir.path().join("logs").join(format!("{id}.log"))
    }

    pub fn has_cgroups(&self) -> bool {
        self.runtime.isolation() == IsolationMode::CgroupV1
    }

    pub async fn next_event(&mut self) -> JobEvent {
        next_event(&mut self.events, Duration::from_secs(30)).await
    }
}

fn config_for(
    data_dir: &Path,
    program: &Path,
    mode: Mode,
    empty_root: &Path,
) -> LocalRuntimeConfig {
    let mut config = LocalRuntimeConfig::new(data_dir, program, vec![]);
    config.cgroup_parent = TEST_CGROUP_PARENT.to_string();
    config.kill_grace = Duration::from_millis(300);
    if mode == Mode::Rlimits {
        config.cgroup_root = Some(empty_root.to_path_buf());
    }
    config
}

pub fn runtime(config: LocalRuntimeConfig) -> (LocalRuntime, mpsc::UnboundedReceiver<JobEvent>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let runtime = LocalRuntime::new(config, Arc::new(Collector(tx))).unwrap();
    (runtime, rx)
}

pub fn write_program(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

pub fn profile() -> ResourceProfile {
    ResourceProfile {
        memory_bytes: 256 * MIB,
        cpu_millis: 500,
        max_processes: 32,
        deadline_seconds: 30,
        depth_budget: 8,
        cost_budget_usd: 0.5,
    }
}

/// A job spec whose job behaves as `role`, and the credential it carries.
pub fn spec(role: &str, profile: ResourceProfile, deadline_in: Duration) -> (JobSpec, String) {
    let id = InvestigationId::generate();
    let now = Utc::now();
    let deadline = now + chrono::Duration::from_std(deadline_in).unwrap();
    let credential = format!("one-time-{}", id.as_str().trim_start_matches("inv-"));
    let plan = Plan {
        complexity: Complexity::Simple,
        domains: vec![],
        alert_count: 0,
        profile,
    };
    let incident = Incident {
        id: IncidentId::generate(),
        title: role.to_string(),
        status: IncidentStatus::Open,
        first_event_at: now,
        last_event_at: now,
        created_at: now,
        alerts: vec![],
        topology: vec![],
    };
    let agent_input = AgentInput {
        investigation_id: id.clone(),
        phase: TrustPhase::Shadow,
        plan: plan.clone(),
        deadline,
        incident,
        data_sources: vec![],
        report_url: format!("http://127.0.0.1:9/api/v1/investigations/{id}/report"),
        llm: None,
        reads: None,
    };
    let spec = JobSpec {
        investigation_id: id,
        phase: TrustPhase::Shadow,
        plan,
        deadline,
        agent_input,
        result_credential: SecretString::from(credential.clone()),
        identity: None,
    };
    (spec, credential)
}

pub async fn next_event(rx: &mut mpsc::UnboundedReceiver<JobEvent>, within: Duration) -> JobEvent {
    tokio::time::timeout(within, rx.recv())
        .await
        .expect("no job event in time")
        .expect("event channel closed")
}

/// Asserts that no further event arrives for a while.
pub async fn assert_quiet(rx: &mut mpsc::UnboundedReceiver<JobEvent>) {
    if let Ok(Some(event)) = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
        panic!("unexpected second event: {event:?}");
    }
}

pub fn outcome(event: &JobEvent) -> &JobOutcome {
    let JobEventKind::Finished { outcome, .. } = &event.kind;
    outcome
}

/// `(pid, process group, state)` of every process.
fn processes() -> Vec<(i32, i32, char)> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let rest = stat.get(stat.rfind(')')? + 1..)?;
            let mut fields = rest.split_whitespace();
            let state = fields.next()?.chars().next()?;
            let pgrp = fields.nth(1)?.parse().ok()?;
            Some((pid, pgrp, state))
        })
        .collect()
}

/// Live (non-zombie) members of the process group.
pub fn live_group_members(group: i32) -> Vec<i32> {
    processes()
        .into_iter()
        .filter(|(_, pgrp, state)| *pgrp == group && *state != 'Z')
        .map(|(pid, _, _)| pid)
        .collect()
}

pub fn is_alive(pid: i32) -> bool {
    processes()
        .into_iter()
        .any(|(p, _, state)| p == pid && state != 'Z')
}

/// The pid in a `pid:<pid>:<starttime>` job reference.
pub fn pid_of(job_ref: &str) -> i32 {
    job_ref.split(':').nth(1).unwrap().parse().unwrap()
}

/// Waits until `check` holds, polling.
pub async fn eventually(within: Duration, check: impl Fn() -> bool) -> bool {
    let until = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < until {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}
