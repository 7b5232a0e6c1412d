//! warden's control plane: the HTTP API, intake and correlation, the
//! scheduler, the result path and the metrics, wired to whichever store and
//! job runtime the composition root hands it.

pub mod api;
pub mod config;
pub mod error;
pub mod intake;
pub mod metrics;
pub mod scheduler;
pub mod trust;
pub mod trust_api;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use warden_core::ports::{JobBootstrap, JobRuntime, SecretBroker, Store};

pub use config::Config;
pub use scheduler::{EventReceiver, EventSender, SchedulerEvents};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("recovering state from the store failed: {0}")]
    Recover(String),
    #[error("listener: {0}")]
    Listener(std::io::Error),
    #[error("trust: {0}")]
    Trust(String),
}

/// A running control plane.
pub struct ControlPlane {
    pub addr: SocketAddr,
    pub metrics: Arc<metrics::Metrics>,
    /// Present when started with [`trust::TrustWiring`].
    pub trust: Option<Arc<trust::TrustService>>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    scheduler: JoinHandle<()>,
}

impl ControlPlane {
    /// Recovers state, re-adopts running jobs and starts serving on
    /// `listener`. `broker`, when given, issues each investigation's
    /// identity. `events` must be the channel whose sender the runtime was
    /// built with (through [`SchedulerEvents`]).
    pub async fn start(
        config: Config,
        store: Arc<dyn Store>,
        runtime: Arc<dyn JobRuntime>,
        broker: Option<Arc<dyn SecretBroker>>,
        events: (EventSender, EventReceiver),
        listener: TcpListener,
    ) -> Result<ControlPlane, StartError> {
        Self::start_with_bootstrap(config, store, runtime, broker, events, listener, None).await
    }

    /// [`ControlPlane::start`] for a runtime whose jobs fetch their input
    /// over HTTP (`POST /api/v1/jobs/bootstrap`) instead of a pipe.
    pub async fn start_with_bootstrap(
        config: Config,
        store: Arc<dyn Store>,
        runtime: Arc<dyn JobRuntime>,
        broker: Option<Arc<dyn SecretBroker>>,
        events: (EventSender, EventReceiver),
        listener: TcpListener,
        bootstrap: Option<Arc<dyn JobBootstrap>>,
    ) -> Result<ControlPlane, StartError> {
        Self::start_with_trust(
            config, store, runtime, broker, events, listener, bootstrap, None,
        )
        .await
    }

    /// [`ControlPlane::start_with_bootstrap`] with the trust service:
    /// proposals gated into actions, operators, approvals, remediation,
    /// outcomes and demotion, and the phase of new investigations taken
    /// from the persisted phase state.
    #[allow(clippy::too_many_arguments)]
    pub async fn start_with_trust(
        config: Config,
        store: Arc<dyn Store>,
        runtime: Arc<dyn JobRuntime>,
        broker: Option<Arc<dyn SecretBroker>>,
        events: (EventSender, EventReceiver),
        listener: TcpListener,
        bootstrap: Option<Arc<dyn JobBootstrap>>,
        trust: Option<trust::TrustWiring>,
    ) -> Result<ControlPlane, StartError> {
        let addr = listener.local_addr().map_err(StartError::Listener)?;
        let metrics = Arc::new(metrics::Metrics::new());
        let trust = match trust {
            Some(wiring) => Some(Arc::new(
                trust::TrustService::start(
                    config.clone(),
                    Arc::clone(&store),
                    wiring,
                    Arc::clone(&metrics),
                )
                .await
                .map_err(|e| StartError::Trust(e.to_string()))?,
            )),
            None => None,
        };
        let (tx, rx) = events;
        let correlator = intake::rebuild(&config.correlation, store.as_ref())
            .await
            .map_err(StartError::Recover)?;
        let intake = intake::spawn(
            correlator,
            config.correlation.clone(),
            Arc::clone(&store),
            Arc::clone(&metrics),
            tx.clone(),
        );
        let mut scheduler = scheduler::Scheduler::new(
            Arc::clone(&store),
            Arc::clone(&runtime),
            broker.clone(),
            intake.clone(),
            Arc::clone(&metrics),
            config.clone(),
            format!("http://{addr}"),
            tx.clone(),
        );
        scheduler.set_trust(trust.clone());
        scheduler
            .recover()
            .await
            .map_err(|e| StartError::Recover(e.to_string()))?;
        let scheduler = tokio::spawn(scheduler.run(rx));

        let app = api::router(api::AppState {
            store,
            runtime,
            broker,
            bootstrap,
            trust: trust.clone(),
            intake,
            metrics: Arc::clone(&metrics),
            events: tx,
            max_body_bytes: config.server.max_body_bytes,
        });
        let (shutdown, mut stop) = watch::channel(false);
        let server = tokio::spawn(async move {
            let result = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "HTTP server stopped");
            }
        });
        Ok(ControlPlane {
            addr,
            metrics,
            trust,
            shutdown,
            server,
            scheduler,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving. Running jobs are left running: a later start
    /// re-adopts them.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        self.scheduler.abort();
        let _ = self.server.await;
    }
}
