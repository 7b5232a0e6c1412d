//! warden's durable state: SQLite through sqlx, migrations embedded in the
//! binary so a fresh data directory needs no setup.
//!
//! Write-ahead logging with `synchronous = FULL`: a committed intake batch
//! survives a crash of the process or the machine. Throughput comes from the
//! control plane committing many requests' alerts in one transaction (group
//! commit), not from relaxing durability.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, Transaction};
use warden_core::ports::{IncidentSummary, IntakeWrite, NewReport, Store, StoreError};
use warden_core::{
    Alert, AlertStatus, Fingerprint, Incident, IncidentId, IncidentStatus, Investigation,
    InvestigationId, InvestigationState, Report, TrustPhase,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The trust store (outcomes, phase state, actions, sign-offs).
mod trust;

/// Rows per multi-row INSERT: 9 bound values each stays far below SQLite's
/// 32766-variable limit.
const ALERT_ROWS_PER_STATEMENT: usize = 400;

pub struct SqliteStore {
    pool: SqlitePool,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn parse_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| backend(format!("bad timestamp {s:?} in store: {e}")))
}

fn parse_opt_ts(s: Option<String>) -> Result<Option<DateTime<Utc>>, StoreError> {
    s.as_deref().map(parse_ts).transpose()
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(backend)
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| backend(format!("bad JSON in store: {e}")))
}

impl SqliteStore {
    /// Opens (creating if needed) `<dir>/warden.db` and migrates it.
    pub async fn open(dir: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(dir.join("warden.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-65536");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| backend(format!("opening {}: {e}", dir.display())))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| backend(format!("migrating {}: {e}", dir.display())))?;
        Ok(SqliteStore { pool })
    }

    /// An in-memory store for tests.
    pub async fn in_memory() -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(backend)?
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(backend)?;
        MIGRATOR.run(&pool).await.map_err(backend)?;
        Ok(SqliteStore { pool })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn upsert_incident(
        tx: &mut Transaction<'_, Sqlite>,
        s: &IncidentSummary,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO incidents (id, title, status, first_event_at, last_event_at, created_at, topology)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET title = excluded.title, status = excluded.status,
               first_event_at = excluded.first_event_at, last_event_at = excluded.last_event_at,
               topology = excluded.topology",
        )
        .bind(s.id.as_str())
        .bind(&s.title)
        .bind(s.status.as_str())
        .bind(ts(s.first_event_at))
        .bind(ts(s.last_event_at))
        .bind(ts(s.created_at))
        .bind(json(&s.topology)?)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn upsert_alerts(
        tx: &mut Transaction<'_, Sqlite>,
        alerts: &[(IncidentId, Alert)],
        now: &str,
    ) -> Result<(), StoreError> {
        // Within one batch a fingerprint may appear twice (a re-send in the
        // same commit group); SQLite refuses to upsert one row twice in one
        // statement, so keep the last of each.
        let mut last: HashMap<(&str, &str), usize> = HashMap::new();
        for (i, (id, a)) in alerts.iter().enumerate() {
            last.insert((id.as_str(), a.fingerprint.as_str()), i);
        }
        let mut rows: Vec<&(IncidentId, Alert)> = alerts
            .iter()
            .enumerate()
            .filter(|(i, (id, a))| last.get(&(id.as_str(), a.fingerprint.as_str())) == Some(i))
            .map(|(_, r)| r)
            .collect();
        rows.sort_by(|a, b| (&a.0, &a.1.fingerprint).cmp(&(&b.0, &b.1.fingerprint)));
        for chunk in rows.chunks(ALERT_ROWS_PER_STATEMENT) {
            let mut encoded = Vec::with_capacity(chunk.len());
            for (id, a) in chunk {
                encoded.push((id, a, json(&a.labels)?, json(&a.annotations)?));
            }
            let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO alerts (incident_id, fingerprint, status, starts_at, ends_at, labels, annotations, generator_url, updated_at) ",
            );
            q.push_values(encoded, |mut b, (id, a, labels, annotations)| {
                b.push_bind(id.as_str())
                    .push_bind(a.fingerprint.as_str())
                    .push_bind(a.status.as_str())
                    .push_bind(ts(a.starts_at))
                    .push_bind(a.ends_at.map(ts))
                    .push_bind(labels)
                    .push_bind(annotations)
                    .push_bind(a.generator_url.as_deref())
                    .push_bind(now);
            });
            // A re-send that changes nothing is not written again: most of
            // a storm's traffic is Alertmanager repeating itself, and
            // rewriting identical rows dominated the cost of a commit.
            q.push(
                " ON CONFLICT (incident_id, fingerprint) DO UPDATE SET status = excluded.status,
                  starts_at = excluded.starts_at, ends_at = excluded.ends_at, labels = excluded.labels,
                  annotations = excluded.annotations, generator_url = excluded.generator_url,
                  updated_at = excluded.updated_at
                WHERE alerts.status IS NOT excluded.status OR alerts.starts_at IS NOT excluded.starts_at
                  OR alerts.ends_at IS NOT excluded.ends_at OR alerts.labels IS NOT excluded.labels
                  OR alerts.annotations IS NOT excluded.annotations
                  OR alerts.generator_url IS NOT excluded.generator_url",
            );
            q.build().execute(&mut **tx).await.map_err(backend)?;
        }
        Ok(())
    }

    async fn load_incidents(
        &self,
        where_clause: &str,
        bind: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Incident>, StoreError> {
        let sql = format!(
            "SELECT id, title, status, first_event_at, last_event_at, created_at, topology
             FROM incidents {where_clause} ORDER BY id DESC LIMIT ?"
        );
        let mut q = sqlx::query(&sql);
        if let Some(b) = bind {
            q = q.bind(b);
        }
        let rows = q
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        let mut incidents = Vec::with_capacity(rows.len());
        for r in rows {
            let status: String = r.get("status");
            incidents.push(Incident {
                id: IncidentId(r.get("id")),
                title: r.get("title"),
                status: if status == "open" {
                    IncidentStatus::Open
                } else {
                    IncidentStatus::Resolved
                },
                first_event_at: parse_ts(r.get("first_event_at"))?,
                last_event_at: parse_ts(r.get("last_event_at"))?,
                created_at: parse_ts(r.get("created_at"))?,
                alerts: Vec::new(),
                topology: from_json(r.get("topology"))?,
            });
        }
        for inc in &mut incidents {
            inc.alerts = self.alerts_of(&inc.id).await?;
        }
        Ok(incidents)
    }

    async fn alerts_of(&self, id: &IncidentId) -> Result<Vec<Alert>, StoreError> {
        let rows = sqlx::query(
            "SELECT fingerprint, status, starts_at, ends_at, labels, annotations, generator_url
             FROM alerts WHERE incident_id = ? ORDER BY starts_at, fingerprint",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.into_iter()
            .map(|r| {
                let status: String = r.get("status");
                Ok(Alert {
                    fingerprint: Fingerprint(r.get("fingerprint")),
                    status: if status == "firing" {
                        AlertStatus::Firing
                    } else {
                        AlertStatus::Resolved
                    },
                    starts_at: parse_ts(r.get("starts_at"))?,
                    ends_at: parse_opt_ts(r.get("ends_at"))?,
                    labels: from_json(r.get("labels"))?,
                    annotations: from_json(r.get("annotations"))?,
                    generator_url: r.get("generator_url"),
                })
            })
            .collect()
    }

    fn investigation_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<Investigation, StoreError> {
        let state_name: String = r.get("state");
        let state = match state_name.as_str() {
            "pending" => InvestigationState::Pending,
            "running" => InvestigationState::Running,
            "succeeded" => InvestigationState::Succeeded,
            "timed_out" => InvestigationState::TimedOut,
            "cancelled" => InvestigationState::Cancelled,
            "failed" => {
                let reason: Option<String> = r.get("failure_reason");
                let reason = reason.unwrap_or_default();
                InvestigationState::Failed {
                    reason: serde_json::from_value(serde_json::Value::String(reason.clone()))
                        .map_err(|_| {
                            backend(format!("unknown failure reason {reason:?} in store"))
                        })?,
                    detail: r
                        .get::<Option<String>, _>("failure_detail")
                        .unwrap_or_default(),
                }
            }
            other => return Err(backend(format!("unknown state {other:?} in store"))),
        };
        let phase: String = r.get("phase");
        Ok(Investigation {
            id: InvestigationId(r.get("id")),
            incident_id: IncidentId(r.get("incident_id")),
            phase: TrustPhase::from_str(&phase).map_err(backend)?,
            plan: from_json(r.get("plan"))?,
            state,
            created_at: parse_ts(r.get("created_at"))?,
            started_at: parse_opt_ts(r.get("started_at"))?,
            finished_at: parse_opt_ts(r.get("finished_at"))?,
            job_ref: r.get("job_ref"),
            identity_accessor: r.get("identity_accessor"),
        })
    }
}

fn failure_columns(state: &InvestigationState) -> (Option<&'static str>, Option<&str>) {
    match state {
        InvestigationState::Failed { reason, detail } => {
            (Some(reason.as_str()), Some(detail.as_str()))
        }
        _ => (None, None),
    }
}

const INVESTIGATION_COLUMNS: &str = "id, incident_id, phase, plan, state, failure_reason, failure_detail, created_at, started_at, finished_at, job_ref, identity_accessor";

#[async_trait]
impl Store for SqliteStore {
    async fn apply_intake(&self, write: &IntakeWrite) -> Result<(), StoreError> {
        let now = ts(Utc::now());
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        for s in &write.incidents {
            Self::upsert_incident(&mut tx, s).await?;
        }
        for (from, into) in &write.merged {
            sqlx::query("UPDATE alerts SET incident_id = ? WHERE incident_id = ?")
                .bind(into.as_str())
                .bind(from.as_str())
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            sqlx::query("DELETE FROM incidents WHERE id = ? AND NOT EXISTS (SELECT 1 FROM investigations WHERE incident_id = ?)")
                .bind(from.as_str())
                .bind(from.as_str())
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        Self::upsert_alerts(&mut tx, &write.alerts, &now).await?;
        tx.commit().await.map_err(backend)
    }

    async fn open_incidents(&self) -> Result<Vec<Incident>, StoreError> {
        self.load_incidents("WHERE status = ?", Some("open"), u32::MAX)
            .await
    }

    async fn list_incidents(&self, limit: u32) -> Result<Vec<Incident>, StoreError> {
        self.load_incidents("", None, limit).await
    }

    async fn get_incident(&self, id: &IncidentId) -> Result<Incident, StoreError> {
        self.load_incidents("WHERE id = ?", Some(id.as_str()), 1)
            .await?
            .pop()
            .ok_or_else(|| StoreError::NotFound(format!("incident {id}")))
    }

    async fn insert_investigation(&self, inv: &Investigation) -> Result<(), StoreError> {
        let (reason, detail) = failure_columns(&inv.state);
        let result = sqlx::query(
            "INSERT INTO investigations (id, incident_id, phase, plan, state, failure_reason, failure_detail, created_at, started_at, finished_at, job_ref, identity_accessor)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(inv.id.as_str())
        .bind(inv.incident_id.as_str())
        .bind(inv.phase.as_str())
        .bind(json(&inv.plan)?)
        .bind(inv.state.name())
        .bind(reason)
        .bind(detail)
        .bind(ts(inv.created_at))
        .bind(inv.started_at.map(ts))
        .bind(inv.finished_at.map(ts))
        .bind(inv.job_ref.as_deref())
        .bind(inv.identity_accessor.as_deref())
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict(
                format!("incident {} already has an investigation", inv.incident_id),
            )),
            Err(e) => Err(backend(e)),
        }
    }

    async fn update_investigation(&self, inv: &Investigation) -> Result<(), StoreError> {
        let (reason, detail) = failure_columns(&inv.state);
        let done = sqlx::query(
            "UPDATE investigations SET state = ?, failure_reason = ?, failure_detail = ?, started_at = ?,
               finished_at = ?, job_ref = ?, identity_accessor = ?,
               credential_hash = CASE WHEN ? THEN NULL ELSE credential_hash END
             WHERE id = ?",
        )
        .bind(inv.state.name())
        .bind(reason)
        .bind(detail)
        .bind(inv.started_at.map(ts))
        .bind(inv.finished_at.map(ts))
        .bind(inv.job_ref.as_deref())
        .bind(inv.identity_accessor.as_deref())
        .bind(inv.state.is_terminal())
        .bind(inv.id.as_str())
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("investigation {}", inv.id)));
        }
        Ok(())
    }

    async fn get_investigation(&self, id: &InvestigationId) -> Result<Investigation, StoreError> {
        let sql = format!("SELECT {INVESTIGATION_COLUMNS} FROM investigations WHERE id = ?");
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .ok_or_else(|| StoreError::NotFound(format!("investigation {id}")))?;
        Self::investigation_from_row(&row)
    }

    async fn list_investigations(
        &self,
        state: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Investigation>, StoreError> {
        let sql = match state {
            Some(_) => format!(
                "SELECT {INVESTIGATION_COLUMNS} FROM investigations WHERE state = ? ORDER BY id LIMIT ?"
            ),
            None => {
                format!("SELECT {INVESTIGATION_COLUMNS} FROM investigations ORDER BY id LIMIT ?")
            }
        };
        let mut q = sqlx::query(&sql);
        if let Some(s) = state {
            q = q.bind(s);
        }
        let rows = q
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(Self::investigation_from_row).collect()
    }

    async fn investigation_for_incident(
        &self,
        incident: &IncidentId,
    ) -> Result<Option<InvestigationId>, StoreError> {
        let row = sqlx::query("SELECT id FROM investigations WHERE incident_id = ?")
            .bind(incident.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        Ok(row.map(|r| InvestigationId(r.get("id"))))
    }

    async fn set_result_credential(
        &self,
        id: &InvestigationId,
        hash: [u8; 32],
    ) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE investigations SET credential_hash = ? WHERE id = ?")
            .bind(&hash[..])
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("investigation {id}")));
        }
        Ok(())
    }

    async fn deliver_report(&self, new: NewReport<'_>) -> Result<Investigation, StoreError> {
        // IMMEDIATE: this transaction reads then writes; a deferred one would
        // fail with BUSY instead of waiting when another writer is active.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        let sql = format!(
            "SELECT {INVESTIGATION_COLUMNS}, credential_hash FROM investigations WHERE id = ?"
        );
        let row = sqlx::query(&sql)
            .bind(new.investigation.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?
            .ok_or_else(|| StoreError::NotFound(format!("investigation {}", new.investigation)))?;
        let stored: Option<Vec<u8>> = row.get("credential_hash");
        // Compare without early exit so timing does not reveal a prefix.
        let matches = stored.as_deref().is_some_and(|s| {
            s.len() == 32
                && s.iter()
                    .zip(new.credential_hash.iter())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        });
        if !matches {
            return Err(StoreError::BadCredential);
        }
        let mut inv = Self::investigation_from_row(&row)?;
        inv.transition(InvestigationState::Succeeded, new.at)
            .map_err(|e| StoreError::Conflict(e.to_string()))?;
        sqlx::query("INSERT INTO reports (investigation_id, report, stored_at) VALUES (?, ?, ?)")
            .bind(new.investigation.as_str())
            .bind(json(new.report)?)
            .bind(ts(new.at))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        sqlx::query("UPDATE investigations SET state = ?, finished_at = ?, credential_hash = NULL WHERE id = ?")
            .bind(inv.state.name())
            .bind(inv.finished_at.map(ts))
            .bind(inv.id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(inv)
    }

    async fn get_report(&self, id: &InvestigationId) -> Result<Report, StoreError> {
        let row = sqlx::query("SELECT report FROM reports WHERE investigation_id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .ok_or_else(|| StoreError::NotFound(format!("report of {id}")))?;
        from_json(row.get("report"))
    }
}
