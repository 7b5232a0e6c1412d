//! The Job warden submits for one investigation: a pure, deterministic
//! function of the investigation and the settings, so that `warden
//! job-manifest` prints exactly what the runtime creates.
//!
//! The spec holds no secret: the pod proves who it is with a projected
//! service-account token (audience-bound, short-lived, rotated by the
//! kubelet) and fetches its input, credentials included, from the control
//! plane (`warden agent run --bootstrap`).

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{
    Job, JobSpec as K8sJobSpec, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement,
    PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, PodSecurityContext, PodSpec,
    PodTemplateSpec, ProjectedVolumeSource, ResourceRequirements, SeccompProfile, SecurityContext,
    ServiceAccountTokenProjection, Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use warden_core::{Complexity, DomainGrant, InvestigationId, ResourceProfile, TrustPhase};

use crate::settings::KubeSettings;

pub const LABEL_NAME: &str = "app.kubernetes.io/name";
pub const LABEL_NAME_VALUE: &str = "warden-investigation";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const LABEL_MANAGED_BY_VALUE: &str = "warden";
pub const LABEL_INVESTIGATION: &str = "warden.dev/investigation";
pub const ANNOTATION_COMPLEXITY: &str = "warden.dev/complexity";
pub const ANNOTATION_PHASE: &str = "warden.dev/phase";
/// Set on the Job when a pod claims its input (the pod's name): after a
/// control-plane restart it tells a Job that is under way from one that
/// never got its input and must be started again.
pub const ANNOTATION_INPUT_CLAIMED_BY: &str = "warden.dev/input-claimed-by";
/// Also a label: the rendered egress NetworkPolicies select pods by phase.
pub const LABEL_PHASE: &str = "warden.dev/phase";
/// The one container of the pod.
pub const CONTAINER: &str = "agent";
/// The warden binary inside the image (see the Dockerfile).
pub const AGENT_BINARY: &str = "/usr/local/bin/warden";
pub const TOKEN_VOLUME: &str = "warden-token";
pub const TOKEN_DIR: &str = "/var/run/secrets/warden";
pub const TOKEN_FILE: &str = "token";

/// The API server refuses projected tokens shorter-lived than this.
pub const MIN_TOKEN_EXPIRATION_SECONDS: i64 = 600;
/// Scratch space: the root filesystem is read-only.
const SCRATCH_SIZE: &str = "64Mi";
/// A pod asked to stop gets this long before SIGKILL; the agent has
/// nothing to flush but its last log line.
const TERMINATION_GRACE_SECONDS: i64 = 10;

/// Exit codes after which another pod would do no better, so the pod
/// failure policy fails the Job at once instead of retrying:
/// 1 = the agent could not deliver its report (refused or out of time),
/// 2 = the agent refused its input (including a refused bootstrap: the
/// document is handed out once), 137 = SIGKILL, which is how an OOM kill
/// ends. These mirror `warden_agent::job::EXIT_*`; a test in the `warden`
/// crate keeps them equal.
pub const EXIT_NOT_DELIVERED: i32 = 1;
pub const EXIT_BAD_INPUT: i32 = 2;
pub const EXIT_SIGKILL: i32 = 137;

/// The Job's name: `warden-<investigation id>`. Investigation ids are 30
/// characters, so the name is 37: within the 63 allowed for label values
/// (the Job controller copies it into the `job-name` label) and leaving
/// room for the 6-character suffix of pod names.
pub fn job_name(id: &InvestigationId) -> String {
    format!("warden-{id}")
}

/// `warden.dev/investigation=<id>`: selects the Job and its pods.
pub fn investigation_selector(id: &InvestigationId) -> String {
    format!("{LABEL_INVESTIGATION}={id}")
}

/// Selects every Job and pod warden manages.
pub fn managed_selector() -> String {
    format!("{LABEL_MANAGED_BY}={LABEL_MANAGED_BY_VALUE},{LABEL_NAME}={LABEL_NAME_VALUE}")
}

/// What varies between investigations.
#[derive(Debug, Clone, Copy)]
pub struct JobManifestInput<'a> {
    pub investigation_id: &'a InvestigationId,
    pub phase: TrustPhase,
    pub complexity: Complexity,
    pub profile: &'a ResourceProfile,
    /// `activeDeadlineSeconds`: the time left until the deadline when the
    /// Job is created.
    pub active_deadline_seconds: u64,
    /// The domains granted to the investigation (only used for the Vault
    /// Agent Injector annotations).
    pub domains: &'a [DomainGrant],
}

fn labels(id: &InvestigationId, phase: TrustPhase) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_PHASE.to_string(), phase.as_str().to_string()),
        (LABEL_NAME.to_string(), LABEL_NAME_VALUE.to_string()),
        (
            LABEL_MANAGED_BY.to_string(),
            LABEL_MANAGED_BY_VALUE.to_string(),
        ),
        (LABEL_INVESTIGATION.to_string(), id.to_string()),
    ])
}

fn annotations(input: &JobManifestInput<'_>) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            ANNOTATION_COMPLEXITY.to_string(),
            input.complexity.as_str().to_string(),
        ),
        (
            ANNOTATION_PHASE.to_string(),
            input.phase.as_str().to_string(),
        ),
    ])
}

/// Vault Agent Injector annotations: an init container (no sidecar, which
/// would keep the Job's pod from completing) logs in with the pod's
/// projected token under the phase's role and writes each granted domain's
/// secret to `/vault/secrets/<domain>`.
fn injector_annotations(
    input: &JobManifestInput<'_>,
    settings: &KubeSettings,
) -> BTreeMap<String, String> {
    let mut a = BTreeMap::from([
        (
            "vault.hashicorp.com/agent-inject".to_string(),
            "true".to_string(),
        ),
        (
            "vault.hashicorp.com/agent-pre-populate-only".to_string(),
            "true".to_string(),
        ),
        (
            "vault.hashicorp.com/role".to_string(),
            settings.service_account(input.phase).to_string(),
        ),
        (
            "vault.hashicorp.com/agent-service-account-token-volume-name".to_string(),
            TOKEN_VOLUME.to_string(),
        ),
        (
            "vault.hashicorp.com/agent-run-as-user".to_string(),
            settings.run_as_user.to_string(),
        ),
        (
            "vault.hashicorp.com/agent-run-as-group".to_string(),
            settings.run_as_user.to_string(),
        ),
    ]);
    for d in input.domains {
        a.insert(
            format!("vault.hashicorp.com/agent-inject-secret-{}", d.name),
            d.path.clone(),
        );
    }
    a
}

const MIB: u64 = 1024 * 1024;

fn memory_quantity(bytes: u64) -> Quantity {
    if bytes % MIB == 0 {
        Quantity(format!("{}Mi", bytes / MIB))
    } else {
        Quantity(bytes.to_string())
    }
}

fn resources(profile: &ResourceProfile) -> ResourceRequirements {
    // Requests equal limits: the pod gets the Guaranteed QoS class, so the
    // kubelet evicts it last, and the planner's profile is what it gets.
    let both = BTreeMap::from([
        (
            "cpu".to_string(),
            Quantity(format!("{}m", profile.cpu_millis)),
        ),
        ("memory".to_string(), memory_quantity(profile.memory_bytes)),
    ]);
    ResourceRequirements {
        requests: Some(both.clone()),
        limits: Some(both),
        ..ResourceRequirements::default()
    }
}

fn clamp_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn clamp_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// The projected token lives no longer than the investigation, but at
/// least as long as the API server allows.
pub fn token_expiration_seconds(active_deadline_seconds: u64) -> i64 {
    clamp_i64(active_deadline_seconds).max(MIN_TOKEN_EXPIRATION_SECONDS)
}

fn runtime_default_seccomp() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".to_string(),
        ..SeccompProfile::default()
    }
}

fn pod_failure_policy() -> PodFailurePolicy {
    PodFailurePolicy {
        rules: vec![
            // Evictions, preemptions and node drains are not the job's
            // fault: retry them without counting against backoffLimit.
            PodFailurePolicyRule {
                action: "Ignore".to_string(),
                on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                    type_: "DisruptionTarget".to_string(),
                    status: "True".to_string(),
                }]),
                on_exit_codes: None,
            },
            PodFailurePolicyRule {
                action: "FailJob".to_string(),
                on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                    container_name: Some(CONTAINER.to_string()),
                    operator: "In".to_string(),
                    values: vec![EXIT_NOT_DELIVERED, EXIT_BAD_INPUT, EXIT_SIGKILL],
                }),
                on_pod_conditions: None,
            },
        ],
    }
}

/// The Job for one investigation.
pub fn job_manifest(input: &JobManifestInput<'_>, settings: &KubeSettings) -> Job {
    let id = input.investigation_id;
    let uid = settings.run_as_user;
    let mut pod_annotations = annotations(input);
    if settings.vault_agent_injector {
        pod_annotations.extend(injector_annotations(input, settings));
    }
    let container = Container {
        name: CONTAINER.to_string(),
        image: Some(settings.image.clone()),
        image_pull_policy: Some(settings.image_pull_policy.clone()),
        command: Some(vec![
            AGENT_BINARY.to_string(),
            "agent".to_string(),
            "run".to_string(),
            "--bootstrap".to_string(),
            settings.bootstrap_url(),
            "--token-file".to_string(),
            format!("{TOKEN_DIR}/{TOKEN_FILE}"),
        ]),
        // Only where to write scratch files; never anything secret.
        env: Some(vec![
            EnvVar {
                name: "HOME".to_string(),
                value: Some("/tmp".to_string()),
                value_from: None,
            },
            EnvVar {
                name: "TMPDIR".to_string(),
                value: Some("/tmp".to_string()),
                value_from: None,
            },
        ]),
        resources: Some(resources(input.profile)),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            privileged: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            run_as_user: Some(uid),
            run_as_group: Some(uid),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_string()]),
                add: None,
            }),
            seccomp_profile: Some(runtime_default_seccomp()),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![
            VolumeMount {
                name: TOKEN_VOLUME.to_string(),
                mount_path: TOKEN_DIR.to_string(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "tmp".to_string(),
                mount_path: "/tmp".to_string(),
                ..VolumeMount::default()
            },
        ]),
        termination_message_policy: Some("FallbackToLogsOnError".to_string()),
        ..Container::default()
    };
    let pod = PodSpec {
        service_account_name: Some(settings.service_account(input.phase).to_string()),
        // The only token the pod holds is the projected one below, bound
        // to warden's audience: it cannot call the Kubernetes API.
        automount_service_account_token: Some(false),
        restart_policy: Some("Never".to_string()),
        enable_service_links: Some(false),
        host_network: Some(false),
        host_pid: Some(false),
        host_ipc: Some(false),
        termination_grace_period_seconds: Some(TERMINATION_GRACE_SECONDS),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(uid),
            run_as_group: Some(uid),
            fs_group: Some(uid),
            seccomp_profile: Some(runtime_default_seccomp()),
            ..PodSecurityContext::default()
        }),
        containers: vec![container],
        volumes: Some(vec![
            Volume {
                name: TOKEN_VOLUME.to_string(),
                projected: Some(ProjectedVolumeSource {
                    default_mode: Some(0o440),
                    sources: Some(vec![VolumeProjection {
                        service_account_token: Some(ServiceAccountTokenProjection {
                            audience: Some(settings.token_audience.clone()),
                            expiration_seconds: Some(token_expiration_seconds(
                                input.active_deadline_seconds,
                            )),
                            path: TOKEN_FILE.to_string(),
                        }),
                        ..VolumeProjection::default()
                    }]),
                }),
                ..Volume::default()
            },
            Volume {
                name: "tmp".to_string(),
                empty_dir: Some(EmptyDirVolumeSource {
                    medium: None,
                    size_limit: Some(Quantity(SCRATCH_SIZE.to_string())),
                }),
                ..Volume::default()
            },
        ]),
        ..PodSpec::default()
    };
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(id)),
            namespace: Some(settings.namespace.clone()),
            labels: Some(labels(id, input.phase)),
            annotations: Some(annotations(input)),
            ..ObjectMeta::default()
        },
        spec: Some(K8sJobSpec {
            active_deadline_seconds: Some(clamp_i64(input.active_deadline_seconds.max(1))),
            backoff_limit: Some(clamp_i32(settings.backoff_limit)),
            ttl_seconds_after_finished: Some(clamp_i32(settings.ttl_seconds_after_finished)),
            completions: Some(1),
            parallelism: Some(1),
            pod_failure_policy: Some(pod_failure_policy()),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(id, input.phase)),
                    annotations: Some(pod_annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..K8sJobSpec::default()
        }),
        status: None,
    }
}

/// The Job as YAML, the form operators review.
pub fn job_yaml(job: &Job) -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(job)
}
