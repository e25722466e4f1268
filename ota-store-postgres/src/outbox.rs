//! [`NoticeOutbox`] and [`ClaimRecovery`] on PostgreSQL.
//!
//! Notices live in `ota_outbox` until delivered (then the row is deleted). Claims lease rows
//! with `FOR UPDATE SKIP LOCKED`, as update claims do. Every insert into the outbox is
//! announced with `NOTIFY` on the channel [`PgStore::outbox_channel`] (a statement trigger;
//! the payload is the notices' device ids, comma-separated, at most 100 per notification), so
//! that the instance holding a device's connection can take its notice at once.

use crate::codec::{db_time, from_db_time, from_json, name_of, to_json, to_u64};
use crate::error::map;
use crate::PgStore;
use async_trait::async_trait;
use ota_core::store::{
    ClaimRecovery, ClaimRequest, ClaimedReleases, NoticeClaim, NoticeId, NoticeLease, NoticeOutbox,
    OutboxEntry, PlanRelease, QueueScope, Release, StoreError,
};
use ota_core::TenantId;
use sqlx::{QueryBuilder, Row};
use uuid::Uuid;

impl PgStore {
    /// The channel on which writes to the notice outbox are announced (`NOTIFY`):
    /// `ota_outbox:<schema>`, for the schema the store's tables live in. Each notification's
    /// payload is the device ids of the notices written, comma-separated (at most 100 per
    /// notification; a statement that writes more sends several). Listen with
    /// `sqlx::postgres::PgListener::listen` and pass the ids of the devices connected to this
    /// instance to `Ota::deliver_notices_for`.
    pub async fn outbox_channel(&self) -> Result<String, StoreError> {
        sqlx::query_scalar("SELECT 'ota_outbox:' || current_schema()")
            .fetch_one(&self.pool)
            .await
            .map_err(map)
    }
}

#[async_trait]
impl NoticeOutbox for PgStore {
    async fn release_with_notices(&self, releases: &[Release]) -> Vec<Result<(), StoreError>> {
        let answers = crate::release::write(&self.pool, releases).await;
        // What was released is the device's latest update as written: its first report is
        // judged against it without a read.
        for (r, answer) in releases.iter().zip(&answers) {
            if answer.is_ok() {
                self.hints.written(&r.transition.update);
            }
        }
        answers
    }

    async fn claim_and_release(
        &self,
        request: &ClaimRequest,
        scope: QueueScope,
        plan: &PlanRelease<'_>,
    ) -> Option<Result<ClaimedReleases, StoreError>> {
        Some(crate::claim_release::claim_and_release(self, request, scope, plan).await)
    }

    async fn enqueue_notice(
        &self,
        entry: &OutboxEntry,
        lease: Option<&NoticeLease>,
    ) -> Result<(), StoreError> {
        let notice = &entry.notice;
        sqlx::query(
            "WITH superseded AS (
                DELETE FROM ota_outbox WHERE device_id = $3 AND kind = $4
             )
             INSERT INTO ota_outbox (id, tenant_id, device_id, kind, doc, created_at,
                lease_owner, lease_until)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(entry.id.0)
        .bind(entry.tenant_id().0)
        .bind(notice.device_id().0)
        .bind(name_of(&notice.kind()))
        .bind(to_json(notice)?)
        .bind(db_time(entry.created_at))
        .bind(lease.map(|l| l.owner.clone()))
        .bind(lease.map(|l| db_time(l.until)))
        .execute(&self.pool)
        .await
        .map_err(map)?;
        Ok(())
    }

    async fn claim_notices(&self, request: &NoticeClaim) -> Result<Vec<OutboxEntry>, StoreError> {
        let until = request
            .now
            .checked_add_signed(request.lease)
            .unwrap_or(request.now);
        let mut q = QueryBuilder::new(
            "WITH picked AS (SELECT id FROM ota_outbox
             WHERE (lease_until IS NULL OR lease_until <= ",
        );
        q.push_bind(db_time(request.now)).push(")");
        if let Some(devices) = &request.devices {
            let ids: Vec<Uuid> = devices.iter().map(|d| d.0).collect();
            q.push(" AND device_id = ANY(").push_bind(ids).push(")");
        }
        q.push(" ORDER BY id LIMIT ")
            .push_bind(i64::from(request.limit))
            .push(" FOR UPDATE SKIP LOCKED) UPDATE ota_outbox b SET lease_owner = ")
            .push_bind(request.owner.clone())
            .push(", lease_until = ")
            .push_bind(db_time(until))
            .push(" FROM picked WHERE b.id = picked.id RETURNING b.id, b.doc, b.created_at");
        let rows = q.build().fetch_all(&self.pool).await.map_err(map)?;
        let mut claimed = rows
            .iter()
            .map(|row| {
                Ok(OutboxEntry {
                    id: NoticeId(row.try_get("id").map_err(map)?),
                    notice: from_json("notice", row.try_get("doc").map_err(map)?)?,
                    created_at: from_db_time(row.try_get("created_at").map_err(map)?),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        claimed.sort_by_key(|e| e.id);
        Ok(claimed)
    }

    async fn mark_delivered(&self, ids: &[NoticeId]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = ids.iter().map(|i| i.0).collect();
        sqlx::query("DELETE FROM ota_outbox WHERE id = ANY($1)")
            .bind(&ids)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(())
    }

    async fn count_undelivered(&self, tenant: Option<TenantId>) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM ota_outbox WHERE $1::uuid IS NULL OR tenant_id = $1",
        )
        .bind(tenant.map(|t| t.0))
        .fetch_one(&self.pool)
        .await
        .map_err(map)?;
        Ok(to_u64(n))
    }
}

#[async_trait]
impl ClaimRecovery for PgStore {
    /// One statement over both tables. The lease columns carry no index (so that claims stay
    /// heap-only updates); a claim is only ever taken on a queued row or on a row with a wake
    /// time, and every transition drops it, so the rows to look at are those of the three
    /// partial indexes on queued and waking rows (live work), not the whole table. A lease
    /// outside them (none is known) would run out by itself.
    async fn release_claims_of(&self, owner: &str) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "WITH u AS (
                UPDATE ota_updates SET lease_owner = NULL, lease_until = NULL
                WHERE lease_owner = $1
                  AND ((state = 'QUEUED' AND campaign_id IS NULL)
                    OR (state = 'QUEUED' AND campaign_id IS NOT NULL)
                    OR wake_at IS NOT NULL)
                RETURNING 1
             ),
             b AS (
                UPDATE ota_outbox SET lease_owner = NULL, lease_until = NULL
                WHERE lease_owner = $1 RETURNING 1
             )
             SELECT (SELECT count(*) FROM u) + (SELECT count(*) FROM b)",
        )
        .bind(owner)
        .fetch_one(&self.pool)
        .await
        .map_err(map)?;
        Ok(to_u64(n))
    }
}
