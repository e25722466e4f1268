//! [`ScheduleStore`] on PostgreSQL.

use crate::codec::{after, db_time, db_time_opt, from_json, overfetch, page, to_i64, to_json};
use crate::error::{conflict_as, map};
use crate::PgStore;
use async_trait::async_trait;
use ota_core::audit::AuditEntry;
use ota_core::clock::Timestamp;
use ota_core::ids::ScheduleId;
use ota_core::schedule::ScheduledEvent;
use ota_core::store::{Page, PageRequest, ScheduleStore, StoreError};
use ota_core::TenantId;

fn decode_all(docs: Vec<serde_json::Value>) -> Result<Vec<ScheduledEvent>, StoreError> {
    docs.into_iter()
        .map(|d| from_json("scheduled event", d))
        .collect()
}

#[async_trait]
impl ScheduleStore for PgStore {
    async fn create_schedule(
        &self,
        event: &ScheduledEvent,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        let mut tx = crate::audit::begin(&self.pool, audit).await?;
        sqlx::query(
            "INSERT INTO ota_schedules (id, tenant_id, next_run, revision, doc)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(event.id.0)
        .bind(event.tenant_id.0)
        .bind(db_time_opt(event.next_run))
        .bind(to_i64(event.revision))
        .bind(to_json(event)?)
        .execute(&mut *tx)
        .await
        .map_err(conflict_as("schedule", format!("id {} exists", event.id)))?;
        tx.commit().await.map_err(map)
    }

    async fn get_schedule(
        &self,
        tenant: TenantId,
        id: ScheduleId,
    ) -> Result<ScheduledEvent, StoreError> {
        let doc: serde_json::Value =
            sqlx::query_scalar("SELECT doc FROM ota_schedules WHERE id = $1 AND tenant_id = $2")
                .bind(id.0)
                .bind(tenant.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(map)?
                .ok_or_else(|| StoreError::not_found("schedule", id))?;
        from_json("scheduled event", doc)
    }

    async fn save_schedule(
        &self,
        event: &ScheduledEvent,
        expected_revision: u64,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        let mut tx = crate::audit::begin(&self.pool, audit).await?;
        let done = sqlx::query(
            "UPDATE ota_schedules SET next_run = $4, revision = $5, doc = $6
             WHERE id = $1 AND tenant_id = $2 AND revision = $3",
        )
        .bind(event.id.0)
        .bind(event.tenant_id.0)
        .bind(to_i64(expected_revision))
        .bind(db_time_opt(event.next_run))
        .bind(to_i64(event.revision))
        .bind(to_json(event)?)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        if done.rows_affected() == 1 {
            return tx.commit().await.map_err(map);
        }
        let stored: Option<i64> = sqlx::query_scalar(
            "SELECT revision FROM ota_schedules WHERE id = $1 AND tenant_id = $2",
        )
        .bind(event.id.0)
        .bind(event.tenant_id.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?;
        match stored {
            None => Err(StoreError::not_found("schedule", event.id)),
            Some(r) => Err(StoreError::precondition(format!(
                "schedule {} is at revision {r}, not {expected_revision}",
                event.id
            ))),
        }
    }

    async fn delete_schedule(
        &self,
        tenant: TenantId,
        id: ScheduleId,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        let mut tx = crate::audit::begin(&self.pool, audit).await?;
        let done = sqlx::query("DELETE FROM ota_schedules WHERE id = $1 AND tenant_id = $2")
            .bind(id.0)
            .bind(tenant.0)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("schedule", id));
        }
        tx.commit().await.map_err(map)
    }

    async fn list_schedules(
        &self,
        tenant: TenantId,
        request: PageRequest,
    ) -> Result<Page<ScheduledEvent>, StoreError> {
        let docs = sqlx::query_scalar(
            "SELECT doc FROM ota_schedules WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(tenant.0)
        .bind(after(&request))
        .bind(overfetch(&request))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        Ok(page(decode_all(docs)?, &request, |e| e.id.0))
    }

    async fn due_schedules(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<ScheduledEvent>, StoreError> {
        let docs = sqlx::query_scalar(
            "SELECT doc FROM ota_schedules WHERE next_run <= $1 ORDER BY next_run, id LIMIT $2",
        )
        .bind(db_time(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        decode_all(docs)
    }
}
