//! The composition root: configuration in, a running control plane out.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use secrecy::SecretString;
use tokio::net::TcpListener;
use warden_control::config::{RuntimeKind, SecretsBackendKind, SecretsConfig};
use warden_control::{Config, ControlPlane, SchedulerEvents};
use warden_core::ports::{JobBootstrap, JobRuntime, SecretBroker};
use warden_runtime_kube::{KubeRuntime, KubeRuntimeConfig};
use warden_runtime_local::{LocalRuntime, LocalRuntimeConfig};
use warden_secrets::{EmbeddedBroker, KeySource, OpenBaoBroker, OpenBaoConfig, SecretsDomain};
use warden_store::SqliteStore;

use crate::cli::{RuntimeChoice, ServeArgs, default_data_dir};

/// Creates the data directory (0700: it holds job logs and state).
pub fn prepare_data_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating data directory {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {}", dir.display()))?;
    }
    dir.canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))
}

/// Builds the stack (SQLite store, the configured runtime) and starts it.
pub async fn start(
    config: Config,
    data_dir: &Path,
    listener: TcpListener,
) -> anyhow::Result<ControlPlane> {
    let store = SqliteStore::open(data_dir)
        .await
        .with_context(|| format!("opening the store in {}", data_dir.display()))?;
    let (tx, rx) = warden_control::scheduler::channel();
    let mut kube = None;
    let (runtime, bootstrap) = match config.runtime.kind {
        RuntimeKind::Local => (local_runtime(&config, data_dir, &tx)?, None),
        RuntimeKind::Kubernetes => {
            let runtime = kube_runtime(&config, data_dir, &tx).await?;
            kube = Some(runtime.clone());
            let bootstrap: Arc<dyn JobBootstrap> = runtime.clone();
            (runtime as Arc<dyn JobRuntime>, Some(bootstrap))
        }
    };
    let broker = secrets_broker(&config.secrets, data_dir)?;
    let store = Arc::new(store);
    let store_for_sweep = store.clone();
    let trust = crate::trust::wiring(&config, data_dir, store.clone()).await?;
    let plane = ControlPlane::start_with_trust(
        config,
        store,
        runtime,
        broker,
        (tx, rx),
        listener,
        bootstrap,
        Some(trust),
    )
    .await?;
    if let Some(kube) = kube {
        tokio::spawn(sweep_finished_jobs(kube, store_for_sweep));
    }
    Ok(plane)
}

/// Deletes the Jobs of investigations that ended while no control plane
/// was there to clean up (a crash between the report and the Job's end):
/// the scheduler re-adopts only running investigations. Jobs of unknown
/// investigations are left alone; `ttlSecondsAfterFinished` is the backstop.
async fn sweep_finished_jobs(kube: Arc<KubeRuntime>, store: Arc<SqliteStore>) {
    use warden_core::ports::Store;
    let ids = match kube.list_investigations().await {
        Ok(ids) => ids,
        Err(error) => {
            tracing::warn!(%error, "could not list investigation Jobs to sweep");
            return;
        }
    };
    for id in ids {
        let ended = store
            .get_investigation(&id)
            .await
            .is_ok_and(|inv| inv.state.is_terminal());
        if ended && let Err(error) = kube.cleanup(&id).await {
            tracing::warn!(investigation = %id, %error, "could not delete a finished investigation's Job");
        }
    }
}

fn local_runtime(
    config: &Config,
    data_dir: &Path,
    tx: &warden_control::EventSender,
) -> anyhow::Result<Arc<dyn JobRuntime>> {
    let (program, args) = match config.runtime.command.split_first() {
        Some((program, args)) => (PathBuf::from(program), args.to_vec()),
        None => (
            std::env::current_exe().context("locating the warden binary for agent jobs")?,
            vec!["agent".into(), "run".into()],
        ),
    };
    let runtime = LocalRuntime::new(
        LocalRuntimeConfig::new(data_dir, program, args),
        Arc::new(SchedulerEvents(tx.clone())),
    )
    .context("starting the local job runtime")?;
    tracing::info!(isolation = ?runtime.isolation(), "local runtime ready");
    Ok(Arc::new(runtime))
}

/// One Job per investigation in `runtime.kubernetes.namespace`; the pods
/// claim their input from the bootstrap endpoint.
async fn kube_runtime(
    config: &Config,
    data_dir: &Path,
    tx: &warden_control::EventSender,
) -> anyhow::Result<Arc<KubeRuntime>> {
    let k = &config.runtime.kubernetes;
    let client = KubeRuntime::client(k.kubeconfig.as_deref())
        .await
        .context("connecting to the Kubernetes API")?;
    let settings = crate::job_manifest::kube_settings(config);
    tracing::info!(namespace = %settings.namespace, image = %settings.image, "kubernetes runtime ready");
    let runtime = KubeRuntime::new(
        client,
        KubeRuntimeConfig::new(settings, data_dir),
        Arc::new(SchedulerEvents(tx.clone())),
    )
    .context("starting the kubernetes job runtime")?;
    Ok(Arc::new(runtime))
}

fn domains(config: &SecretsConfig) -> Vec<SecretsDomain> {
    config
        .domains
        .iter()
        .map(|d| SecretsDomain::new(d.name.clone(), d.path.clone()))
        .collect()
}

/// The embedded store lives in the data directory, its key beside it
/// unless configured elsewhere.
pub fn embedded_broker(config: &SecretsConfig, data_dir: &Path) -> anyhow::Result<EmbeddedBroker> {
    let dir = data_dir.join("secrets");
    let key = config.key_file.clone().unwrap_or_else(|| dir.join("key"));
    Ok(EmbeddedBroker::open(&dir, KeySource::File(key))
        .with_context(|| format!("opening the embedded secrets store in {}", dir.display()))?
        .with_domains(domains(config))?)
}

fn secrets_broker(
    config: &SecretsConfig,
    data_dir: &Path,
) -> anyhow::Result<Option<Arc<dyn SecretBroker>>> {
    Ok(match config.backend {
        SecretsBackendKind::None => None,
        SecretsBackendKind::Embedded => Some(Arc::new(embedded_broker(config, data_dir)?)),
        SecretsBackendKind::Openbao => {
            let o = &config.openbao;
            let token = std::fs::read_to_string(&o.token_file).with_context(|| {
                format!("reading the OpenBao token from {}", o.token_file.display())
            })?;
            let mut bao = OpenBaoConfig::new(
                o.address.clone(),
                SecretString::from(token.trim().to_string()),
            );
            bao.namespace = o.namespace.clone();
            bao.token_role = o.token_role.clone();
            bao.domains = domains(config);
            Some(Arc::new(OpenBaoBroker::new(bao)?))
        }
    })
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let ServeArgs {
        listen,
        data_dir,
        config,
        runtime,
    } = args;
    let mut config = match &config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(listen) = listen {
        config.server.listen = listen;
    }
    match runtime {
        Some(RuntimeChoice::Local) => config.runtime.kind = RuntimeKind::Local,
        Some(RuntimeChoice::Kubernetes) => config.runtime.kind = RuntimeKind::Kubernetes,
        None => {}
    }
    let data_dir = prepare_data_dir(&data_dir.unwrap_or_else(default_data_dir))?;
    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("binding {}", config.server.listen))?;
    let plane = start(config, &data_dir, listener).await?;
    tracing::info!(url = %plane.url(), data_dir = %data_dir.display(), "warden serving");
    eprintln!(
        "warden serving on {} (data: {})",
        plane.url(),
        data_dir.display()
    );
    shutdown_signal().await;
    eprintln!("stopping; running investigations keep running and are re-adopted on the next start");
    plane.stop().await;
    Ok(ExitCode::SUCCESS)
}

pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
