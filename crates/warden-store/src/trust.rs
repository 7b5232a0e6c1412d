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
