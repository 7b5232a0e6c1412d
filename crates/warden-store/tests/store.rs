#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};

use chrono::{TimeZone, Utc};
use warden_core::ports::{IncidentSummary, IntakeWrite, NewReport, Store, StoreError};
use warden_core::{
    Alert, AlertStatus, CostLedger, Domain, Fingerprint, IncidentId, IncidentStatus, Investigation,
    InvestigationState, Planner, Report, TrustPhase,
};
use warden_store::SqliteStore;

fn alert(fp: &str, status: AlertStatus) -> Alert {
    Alert {
        fingerprint: Fingerprint(fp.into()),
        status,
        labels: BTreeMap::from([("alertname".into(), "A".into())]),
        annotations: BTreeMap::new(),
        starts_at: Utc.with_ymd_and_hms(2026, 11, 28, 2, 0, 0).unwrap(),
        ends_at: None,
        generator_url: None,
    }
}

fn summary(id: &IncidentId) -> IncidentSummary {
    let t = Utc.with_ymd_and_hms(2026, 11, 28, 2, 0, 0).unwrap();
    IncidentSummary {
        id: id.clone(),
        title: "A on s".into(),
        status: IncidentStatus::Open,
        first_event_at: t,
        last_event_at: t,
        created_at: t,
        topology: vec![],
    }
}

fn report(inv: &Investigation) -> Report {
    Report {
        investigation_id: inv.id.to_string(),
        incident_id: inv.incident_id.to_string(),
        reasoner: "builtin".into(),
        summary: "s".into(),
        root_cause: None,
        confidence: 0.5,
        hypotheses: vec![],
        evidence: vec![],
        remediation: vec![],
        cycles: 1,
        depth_budget: 8,
        circuit_breaker_tripped: false,
        escalation: None,
        cost: CostLedger::default(),
    }
}

async fn with_incident(store: &SqliteStore) -> IncidentId {
    let id = IncidentId::generate();
    store
        .apply_intake(&IntakeWrite {
            alerts: vec![
                (id.clone(), alert("f1", AlertStatus::Firing)),
                (id.clone(), alert("f2", AlertStatus::Firing)),
            ],
            incidents: vec![summary(&id)],
            merged: vec![],
        })
        .await
        .unwrap();
    id
}

fn investigation(incident: &IncidentId) -> Investigation {
    let plan = Planner::default().plan(&BTreeSet::from([Domain::new("application")]), 2);
    Investigation::new(incident.clone(), TrustPhase::Shadow, plan, Utc::now())
}

#[tokio::test]
async fn a_resent_alert_updates_its_row() {
    let store = SqliteStore::in_memory().await.unwrap();
    let id = with_incident(&store).await;
    let mut resolved = alert("f1", AlertStatus::Resolved);
    resolved.ends_at = Some(Utc::now());
    store
        .apply_intake(&IntakeWrite {
            alerts: vec![(id.clone(), resolved.clone()), (id.clone(), resolved)],
            incidents: vec![],
            merged: vec![],
        })
        .await
        .unwrap();
    let inc = store.get_incident(&id).await.unwrap();
    assert_eq!(inc.alerts.len(), 2);
    assert_eq!(
        inc.alerts
            .iter()
            .filter(|a| a.status == AlertStatus::Resolved)
            .count(),
        1
    );
}

#[tokio::test]
async fn merged_incidents_move_their_alerts() {
    let store = SqliteStore::in_memory().await.unwrap();
    let a = with_incident(&store).await;
    let b = IncidentId::generate();
    store
        .apply_intake(&IntakeWrite {
            alerts: vec![(b.clone(), alert("f3", AlertStatus::Firing))],
            incidents: vec![summary(&b)],
            merged: vec![],
        })
        .await
        .unwrap();
    store
        .apply_intake(&IntakeWrite {
            alerts: vec![],
            incidents: vec![],
            merged: vec![(b.clone(), a.clone())],
        })
        .await
        .unwrap();
    assert_eq!(store.get_incident(&a).await.unwrap().alerts.len(), 3);
    assert!(matches!(
        store.get_incident(&b).await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn an_incident_gets_at_most_one_investigation() {
    let store = SqliteStore::in_memory().await.unwrap();
    let id = with_incident(&store).await;
    store
        .insert_investigation(&investigation(&id))
        .await
        .unwrap();
    let second = store.insert_investigation(&investigation(&id)).await;
    assert!(matches!(second, Err(StoreError::Conflict(_))), "{second:?}");
}

#[tokio::test]
async fn a_report_needs_the_right_credential_and_only_once() {
    let store = SqliteStore::in_memory().await.unwrap();
    let id = with_incident(&store).await;
    let mut inv = investigation(&id);
    store.insert_investigation(&inv).await.unwrap();
    inv.transition(InvestigationState::Running, Utc::now())
        .unwrap();
    store.update_investigation(&inv).await.unwrap();
    store.set_result_credential(&inv.id, [7; 32]).await.unwrap();
    let r = report(&inv);

    let wrong = store
        .deliver_report(NewReport {
            investigation: &inv.id,
            credential_hash: [8; 32],
            report: &r,
            at: Utc::now(),
        })
        .await;
    assert!(matches!(wrong, Err(StoreError::BadCredential)));
    assert!(
        store.get_report(&inv.id).await.is_err(),
        "nothing stored on a bad credential"
    );

    let ok = store
        .deliver_report(NewReport {
            investigation: &inv.id,
            credential_hash: [7; 32],
            report: &r,
            at: Utc::now(),
        })
        .await
        .unwrap();
    assert_eq!(ok.state, InvestigationState::Succeeded);
    assert_eq!(store.get_report(&inv.id).await.unwrap(), r);

    let replay = store
        .deliver_report(NewReport {
            investigation: &inv.id,
            credential_hash: [7; 32],
            report: &r,
            at: Utc::now(),
        })
        .await;
    assert!(
        matches!(replay, Err(StoreError::BadCredential)),
        "one-time: {replay:?}"
    );
}

#[tokio::test]
async fn investigations_filter_by_state_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let (inv_id, incident) = {
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let incident = with_incident(&store).await;
        let mut inv = investigation(&incident);
        store.insert_investigation(&inv).await.unwrap();
        inv.transition(InvestigationState::Running, Utc::now())
            .unwrap();
        inv.transition(
            InvestigationState::Failed {
                reason: warden_core::FailureReason::OutOfMemory,
                detail: "oom".into(),
            },
            Utc::now(),
        )
        .unwrap();
        store.update_investigation(&inv).await.unwrap();
        store.close().await;
        (inv.id, incident)
    };
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let failed = store.list_investigations(Some("failed"), 10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].id, inv_id);
    assert!(matches!(
        failed[0].state,
        InvestigationState::Failed {
            reason: warden_core::FailureReason::OutOfMemory,
            ..
        }
    ));
    assert!(
        store
            .list_investigations(Some("running"), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.investigation_for_incident(&incident).await.unwrap(),
        Some(inv_id)
    );
    assert_eq!(store.open_incidents().await.unwrap().len(), 1);
}
