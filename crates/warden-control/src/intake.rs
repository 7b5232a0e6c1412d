//! The intake actor: one task owns the correlator and the write path.
//!
//! Requests hand their parsed alerts to this task and wait for the answer.
//! The task takes every request that is waiting, correlates them in order,
//! and writes all of it in **one** transaction before answering any of them
//! (group commit): each alert is durably stored before its sender hears
//! 200, and under load one fsync serves many requests.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Utc;
use tokio::sync::{mpsc, oneshot};
use warden_core::ports::{IntakeWrite, Store};
use warden_core::{Alert, IncidentId, TopologyHint};
use warden_correlate::{CorrelationConfig, Correlator};

use crate::metrics::Metrics;
use crate::scheduler::{Event, EventSender};

/// Stop gathering more requests into one commit past this many alerts, to
/// bound the latency of the first request in the group.
const MAX_ALERTS_PER_COMMIT: usize = 20_000;

pub struct Submission {
    pub alerts: Vec<Alert>,
    pub title: Option<String>,
    pub topology: Vec<TopologyHint>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Accepted {
    pub received: usize,
    pub deduplicated: usize,
    /// Incident of each alert, in request order.
    pub incidents: Vec<IncidentId>,
}

pub enum Command {
    Submit(Submission, oneshot::Sender<Result<Accepted, String>>),
    /// Marks an incident as investigated; answers whether it still exists
    /// (it may have been merged into another meanwhile).
    Dispatched(IncidentId, oneshot::Sender<bool>),
}

#[derive(Clone)]
pub struct IntakeHandle {
    tx: mpsc::Sender<Command>,
}

impl IntakeHandle {
    pub async fn submit(&self, s: Submission) -> Result<Accepted, String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Submit(s, tx))
            .await
            .map_err(|_| "intake stopped".to_string())?;
        rx.await.map_err(|_| "intake stopped".to_string())?
    }

    pub async fn mark_dispatched(&self, id: IncidentId) -> bool {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Dispatched(id, tx)).await.is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }
}

pub fn spawn(
    correlator: Correlator,
    config: CorrelationConfig,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    created: EventSender,
) -> IntakeHandle {
    let (tx, rx) = mpsc::channel(1024);
    tokio::spawn(run(correlator, config, store, metrics, created, rx));
    IntakeHandle { tx }
}

/// Appends one request's write to the group's.
fn combine(acc: &mut IntakeWrite, next: IntakeWrite) {
    acc.alerts.extend(next.alerts);
    acc.incidents.extend(next.incidents);
    acc.merged.extend(next.merged);
}

/// Re-points alerts at the incidents theirs were merged into and keeps the
/// last summary of each surviving incident.
fn finish(mut w: IntakeWrite) -> IntakeWrite {
    for (from, into) in &w.merged {
        for (id, _) in w.alerts.iter_mut() {
            if id == from {
                *id = into.clone();
            }
        }
    }
    let merged: HashSet<IncidentId> = w.merged.iter().map(|(f, _)| f.clone()).collect();
    // The last summary of each incident wins.
    let mut seen = HashSet::new();
    let mut incidents = Vec::new();
    for s in w.incidents.into_iter().rev() {
        if !merged.contains(&s.id) && seen.insert(s.id.clone()) {
            incidents.push(s);
        }
    }
    incidents.reverse();
    w.incidents = incidents;
    w
}

async fn run(
    mut correlator: Correlator,
    config: CorrelationConfig,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    created: EventSender,
    mut rx: mpsc::Receiver<Command>,
) {
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        let mut alerts_in_group = 0usize;
        while alerts_in_group < MAX_ALERTS_PER_COMMIT {
            match rx.try_recv() {
                Ok(cmd) => {
                    if let Command::Submit(s, _) = &cmd {
                        alerts_in_group += s.alerts.len();
                    }
                    group.push(cmd);
                }
                Err(_) => break,
            }
        }

        let now = Utc::now();
        let mut write = IntakeWrite::default();
        let mut replies = Vec::new();
        let mut new_incidents: Vec<IncidentId> = Vec::new();
        let mut received = 0u64;
        let mut deduplicated = 0u64;
        for cmd in group {
            match cmd {
                Command::Dispatched(id, reply) => {
                    let exists = correlator.shape(&id).is_some();
                    correlator.mark_dispatched(&id);
                    let _ = reply.send(exists);
                }
                Command::Submit(s, reply) => {
                    let out = correlator.ingest(s.alerts, s.title.as_deref(), &s.topology, now);
                    received += out.received as u64;
                    deduplicated += out.deduplicated as u64;
                    new_incidents.extend(out.created.iter().cloned());
                    let accepted = Accepted {
                        received: out.received,
                        deduplicated: out.deduplicated,
                        incidents: out.write.alerts.iter().map(|(id, _)| id.clone()).collect(),
                    };
                    for (from, _) in &out.write.merged {
                        new_incidents.retain(|i| i != from);
                    }
                    combine(&mut write, out.write);
                    replies.push((reply, accepted));
                }
            }
        }
        if replies.is_empty() {
            continue;
        }
        let merged = write.merged.clone();
        let write = finish(write);
        let alert_rows = write.alerts.len();
        match store.apply_intake(&write).await {
            Ok(()) => {
                metrics.alerts_received.inc_by(received);
                metrics.alerts_deduplicated.inc_by(deduplicated);
                metrics.incidents_created.inc_by(new_incidents.len() as u64);
                metrics.intake_commit_alerts.observe(alert_rows as f64);
                for (reply, mut accepted) in replies {
                    for (from, into) in &merged {
                        for id in accepted.incidents.iter_mut() {
                            if id == from {
                                *id = into.clone();
                            }
                        }
                    }
                    let _ = reply.send(Ok(accepted));
                }
                for id in new_incidents {
                    let _ = created.send(Event::IncidentCreated(id));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "intake write failed; rebuilding correlation from the store");
                for (reply, _) in replies {
                    let _ = reply.send(Err(e.to_string()));
                }
                // The correlator already counted what was not stored: rebuild
                // it from what is, so memory never runs ahead of the store.
                match rebuild(&config, store.as_ref()).await {
                    Ok(c) => correlator = c,
                    Err(e) => tracing::error!(error = %e, "rebuilding correlation failed"),
                }
            }
        }
    }
}

/// Correlation state from the store (start-up and recovery).
pub async fn rebuild(config: &CorrelationConfig, store: &dyn Store) -> Result<Correlator, String> {
    let open = store.open_incidents().await.map_err(|e| e.to_string())?;
    let mut dispatched = HashSet::new();
    for inc in &open {
        if store
            .investigation_for_incident(&inc.id)
            .await
            .map_err(|e| e.to_string())?
            .is_some()
        {
            dispatched.insert(inc.id.clone());
        }
    }
    Ok(Correlator::restore(
        config.clone(),
        open,
        &dispatched,
        Utc::now(),
    ))
}
