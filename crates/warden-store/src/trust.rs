//! The trust store: outcomes, phase state, proposed actions and sign-offs
//! in the same SQLite database as the investigations (migration 0003).

use async_trait::async_trait;
use sqlx::Row;
use warden_core::ports::StoreError;
use warden_trust::gates::Signoff;
use warden_trust::{ActionRecord, ActionState, OutcomeRecord, PhaseState, TrustStore};

use crate::{SqliteStore, backend, from_json, json, parse_ts, ts};

fn outcome_kind(o: &OutcomeRecord) -> &'static str {
    match o.outcome {
        warden_trust::Outcome::ShadowReview { .. } => "shadow_review",
        warden_trust::Outcome::Verdict { .. } => "verdict",
        warden_trust::Outcome::ApprovalDecision { .. } => "approval_decision",
        warden_trust::Outcome::Remediation { .. } => "remediation",
    }
}

#[async_trait]
impl TrustStore for SqliteStore {
    async fn record_outcome(&self, o: &OutcomeRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO trust_outcomes (id, environment, investigation_id, action_id, kind, recorded_at, record)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&o.id)
        .bind(&o.environment)
        .bind(o.investigation.as_deref())
        .bind(o.action.as_deref())
        .bind(outcome_kind(o))
        .bind(ts(o.at))
        .bind(json(o)?)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn outcomes(&self, environment: &str) -> Result<Vec<OutcomeRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT record FROM trust_outcomes WHERE environment = ? ORDER BY recorded_at, id",
        )
        .bind(environment)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(|r| from_json(r.get("record"))).collect()
    }

    async fn phase_state(&self, environment: &str) -> Result<Option<PhaseState>, StoreError> {
        let row = sqlx::query(
            "SELECT phase, since, reason, configured_phase FROM trust_phase WHERE environment = ?",
        )
        .bind(environment)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        let Some(r) = row else {
            return Ok(None);
        };
        let phase: String = r.get("phase");
        let configured: String = r.get("configured_phase");
        Ok(Some(PhaseState {
            environment: environment.to_string(),
            phase: phase.parse().map_err(backend)?,
            since: parse_ts(r.get("since"))?,
            reason: r.get("reason"),
            configured_phase: configured.parse().map_err(backend)?,
        }))
    }

    async fn set_phase_state(&self, s: &PhaseState) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO trust_phase (environment, phase, since, reason, configured_phase) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (environment) DO UPDATE SET phase = excluded.phase, since = excluded.since,
               reason = excluded.reason, configured_phase = excluded.configured_phase",
        )
        .bind(&s.environment)
        .bind(s.phase.as_str())
        .bind(ts(s.since))
        .bind(&s.reason)
        .bind(s.configured_phase.as_str())
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn insert_action(&self, a: &ActionRecord) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO trust_actions (id, investigation_id, state, created_at, record) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&a.id)
        .bind(&a.investigation)
        .bind(a.state.as_str())
        .bind(ts(a.created_at))
        .bind(json(a)?)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict(
                format!("action {} already exists", a.id),
            )),
            Err(e) => Err(backend(e)),
        }
    }

    async fn get_action(&self, id: &str) -> Result<ActionRecord, StoreError> {
        let row = sqlx::query("SELECT record FROM trust_actions WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .ok_or_else(|| StoreError::NotFound(format!("action {id}")))?;
        from_json(row.get("record"))
    }

    async fn list_actions(
        &self,
        investigation: Option<&str>,
    ) -> Result<Vec<ActionRecord>, StoreError> {
        let rows = match investigation {
            Some(i) => sqlx::query(
                "SELECT record FROM trust_actions WHERE investigation_id = ? ORDER BY created_at, id",
            )
            .bind(i)
            .fetch_all(&self.pool)
            .await,
            None => {
                sqlx::query("SELECT record FROM trust_actions ORDER BY created_at, id")
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(backend)?;
        rows.iter().map(|r| from_json(r.get("record"))).collect()
    }

    async fn update_action(
        &self,
        a: &ActionRecord,
        expected: ActionState,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE trust_actions SET state = ?, record = ? WHERE id = ? AND state = ?",
        )
        .bind(a.state.as_str())
        .bind(json(a)?)
        .bind(&a.id)
        .bind(expected.as_str())
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn add_signoff(&self, s: &Signoff) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO trust_signoffs (environment, to_phase, role, subject, signed_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT DO NOTHING",
        )
        .bind(&s.environment)
        .bind(s.to_phase.as_str())
        .bind(&s.role)
        .bind(&s.subject)
        .bind(ts(s.at))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn signoffs(&self, environment: &str) -> Result<Vec<Signoff>, StoreError> {
        let rows = sqlx::query(
            "SELECT to_phase, role, subject, signed_at FROM trust_signoffs WHERE environment = ? ORDER BY signed_at",
        )
        .bind(environment)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|r| {
                let phase: String = r.get("to_phase");
                Ok(Signoff {
                    environment: environment.to_string(),
                    to_phase: phase.parse().map_err(backend)?,
                    role: r.get("role"),
                    subject: r.get("subject"),
                    at: parse_ts(r.get("signed_at"))?,
                })
            })
            .collect()
    }

    async fn is_agent_credential(&self, hash: [u8; 32]) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM investigations WHERE credential_hash = ? LIMIT 1")
            .bind(&hash[..])
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        Ok(row.is_some())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};
    use warden_core::TrustPhase;
    use warden_trust::{Outcome, RemediationResult, ReviewResult};

    use super::*;

    fn action(id: &str, state: ActionState) -> ActionRecord {
        let now = Utc::now();
        ActionRecord {
            id: id.into(),
            investigation: "inv-1".into(),
            incident: "inc-1".into(),
            environment: "dev".into(),
            phase: TrustPhase::Remediate,
            kind: "rollout_restart".into(),
            namespace: "shop".into(),
            target: "checkout".into(),
            replicas: None,
            confidence: 0.9,
            state,
            decision: serde_json::json!({"decision": "needs_approval"}),
            created_at: now,
            updated_at: now,
            expires_at: now + Duration::minutes(15),
            decided_by: None,
            decided_at: None,
            approval_expires_at: None,
            detail: None,
            execution: None,
        }
    }

    #[tokio::test]
    async fn an_action_changes_state_only_from_the_expected_one() {
        let store = SqliteStore::in_memory().await.unwrap();
        let pending = action("act-1", ActionState::PendingApproval);
        store.insert_action(&pending).await.unwrap();
        assert!(matches!(
            store.insert_action(&pending).await,
            Err(StoreError::Conflict(_))
        ));
        let mut approved = pending.clone();
        approved.state = ActionState::Approved;
        approved.decided_by = Some("alice".into());
        assert!(
            store
                .update_action(&approved, ActionState::PendingApproval)
                .await
                .unwrap()
        );
        // A second approval racing the first finds the state changed.
        assert!(
            !store
                .update_action(&approved, ActionState::PendingApproval)
                .await
                .unwrap()
        );
        assert_eq!(store.get_action("act-1").await.unwrap(), approved);
        assert_eq!(store.list_actions(Some("inv-1")).await.unwrap().len(), 1);
        assert!(store.list_actions(Some("inv-2")).await.unwrap().is_empty());
        assert!(matches!(
            store.get_action("act-404").await,
            Err(StoreError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn outcomes_phase_state_and_signoffs_round_trip_per_environment() {
        let store = SqliteStore::in_memory().await.unwrap();
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let later = OutcomeRecord::new(
            "dev",
            "warden",
            t0 + Duration::seconds(5),
            Outcome::Remediation {
                result: RemediationResult::RolledBack,
            },
        );
        let earlier = OutcomeRecord::new(
            "dev",
            "rick",
            t0,
            Outcome::ShadowReview {
                result: ReviewResult::Correct,
            },
        )
        .investigation("inv-1");
        let other = OutcomeRecord::new(
            "prod",
            "rick",
            t0,
            Outcome::ShadowReview {
                result: ReviewResult::Wrong,
            },
        );
        for o in [&later, &earlier, &other] {
            store.record_outcome(o).await.unwrap();
        }
        assert_eq!(store.outcomes("dev").await.unwrap(), vec![earlier, later]);

        assert_eq!(store.phase_state("dev").await.unwrap(), None);
        let state = PhaseState {
            environment: "dev".into(),
            phase: TrustPhase::Assist,
            since: t0,
            reason: "demoted".into(),
            configured_phase: TrustPhase::Remediate,
        };
        store.set_phase_state(&state).await.unwrap();
        assert_eq!(store.phase_state("dev").await.unwrap(), Some(state));

        let s = Signoff {
            environment: "dev".into(),
            to_phase: TrustPhase::Autonomous,
            role: "platform_lead".into(),
            subject: "carol".into(),
            at: t0,
        };
        store.add_signoff(&s).await.unwrap();
        store.add_signoff(&s).await.unwrap();
        assert_eq!(store.signoffs("dev").await.unwrap(), vec![s]);
        assert!(store.signoffs("prod").await.unwrap().is_empty());
        assert!(!store.is_agent_credential([7u8; 32]).await.unwrap());
    }
}
