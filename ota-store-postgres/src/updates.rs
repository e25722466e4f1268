//! [`UpdateStore`] on PostgreSQL: one row per update with its lease, history rows, and the
//! campaign counters changed in the same statement as every creation and transition.

use crate::codec::{
    db_time, db_time_opt, from_db_time, from_json, name_of, overfetch, page, parse_name, to_i64,
    to_json, to_u64, DbTime,
};
use crate::error::map;
use crate::transition_batch::Item;
use crate::PgStore;
use async_trait::async_trait;
use ota_core::store::{
    AuditedTransition, ClaimRequest, Page, PageRequest, QueueScope, StoreError, Transition,
    UpdateFilter, UpdateStore,
};
use ota_core::update::{HistoryEntry, Update, UpdateState};
use ota_core::{CampaignId, DeviceId, PackageId, PackageKind, TenantId, TitleVersion, UpdateId};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder, Row};
use uuid::Uuid;

/// The columns an update is read from.
pub(crate) const UPDATE_COLUMNS: &str = "id, tenant_id, device_id, kind, package_id,
    target_title, target_version, campaign_id, wave, state, attempt, progress, error,
    created_at, state_changed_at, updated_at, retry_at, wake_at, revision";

/// An update from a row of [`UPDATE_COLUMNS`].
pub(crate) fn decode_update(row: &PgRow) -> Result<Update, StoreError> {
    let kind: String = row.try_get("kind").map_err(map)?;
    let state: String = row.try_get("state").map_err(map)?;
    let progress: Option<i16> = row.try_get("progress").map_err(map)?;
    let wave: i32 = row.try_get("wave").map_err(map)?;
    let attempt: i32 = row.try_get("attempt").map_err(map)?;
    let campaign: Option<Uuid> = row.try_get("campaign_id").map_err(map)?;
    let retry_at: Option<DbTime> = row.try_get("retry_at").map_err(map)?;
    let wake_at: Option<DbTime> = row.try_get("wake_at").map_err(map)?;
    Ok(Update {
        id: UpdateId(row.try_get("id").map_err(map)?),
        tenant_id: TenantId(row.try_get("tenant_id").map_err(map)?),
        device_id: DeviceId(row.try_get("device_id").map_err(map)?),
        kind: parse_name::<PackageKind>("update kind", &kind)?,
        package_id: PackageId(row.try_get("package_id").map_err(map)?),
        target: TitleVersion {
            title: row.try_get("target_title").map_err(map)?,
            version: row.try_get("target_version").map_err(map)?,
        },
        campaign_id: campaign.map(CampaignId),
        wave: u32::try_from(wave).unwrap_or(0),
        state: parse_name::<UpdateState>("update state", &state)?,
        attempt: u32::try_from(attempt).unwrap_or(0),
        progress: progress.and_then(|p| u8::try_from(p).ok()),
        error: row.try_get("error").map_err(map)?,
        created_at: from_db_time(row.try_get("created_at").map_err(map)?),
        state_changed_at: from_db_time(row.try_get("state_changed_at").map_err(map)?),
        updated_at: from_db_time(row.try_get("updated_at").map_err(map)?),
        retry_at: retry_at.map(from_db_time),
        wake_at: wake_at.map(from_db_time),
        revision: to_u64(row.try_get("revision").map_err(map)?),
    })
}

/// Transitions per statement in [`UpdateStore::transition_many`].
const BULK_TRANSITIONS: usize = 1_000;

pub(crate) fn i32_of(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Updates as column arrays for `UNNEST`.
#[derive(Default)]
pub(crate) struct UpdateColumns {
    pub id: Vec<Uuid>,
    pub tenant: Vec<Uuid>,
    pub device: Vec<Uuid>,
    pub kind: Vec<String>,
    pub package: Vec<Uuid>,
    pub title: Vec<String>,
    pub version: Vec<String>,
    pub campaign: Vec<Option<Uuid>>,
    pub wave: Vec<i32>,
    pub state: Vec<String>,
    pub attempt: Vec<i32>,
    pub progress: Vec<Option<i16>>,
    pub error: Vec<Option<String>>,
    pub created_at: Vec<DbTime>,
    pub state_changed_at: Vec<DbTime>,
    pub updated_at: Vec<DbTime>,
    pub retry_at: Vec<Option<DbTime>>,
    pub wake_at: Vec<Option<DbTime>>,
    pub revision: Vec<i64>,
}

impl UpdateColumns {
    /// Binds the columns, in order, as the next 19 parameters of `q` (the arrays of an
    /// `UNNEST` over [`UPDATE_COLUMNS`]).
    pub(crate) fn bind<'q>(
        &'q self,
        q: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
        q.bind(&self.id)
            .bind(&self.tenant)
            .bind(&self.device)
            .bind(&self.kind)
            .bind(&self.package)
            .bind(&self.title)
            .bind(&self.version)
            .bind(&self.campaign)
            .bind(&self.wave)
            .bind(&self.state)
            .bind(&self.attempt)
            .bind(&self.progress)
            .bind(&self.error)
            .bind(&self.created_at)
            .bind(&self.state_changed_at)
            .bind(&self.updated_at)
            .bind(&self.retry_at)
            .bind(&self.wake_at)
            .bind(&self.revision)
    }

    pub(crate) fn push(&mut self, u: &Update) {
        self.id.push(u.id.0);
        self.tenant.push(u.tenant_id.0);
        self.device.push(u.device_id.0);
        self.kind.push(name_of(&u.kind));
        self.package.push(u.package_id.0);
        self.title.push(u.target.title.clone());
        self.version.push(u.target.version.clone());
        self.campaign.push(u.campaign_id.map(|c| c.0));
        self.wave.push(i32_of(u.wave));
        self.state.push(u.state.name().to_string());
        self.attempt.push(i32_of(u.attempt));
        self.progress.push(u.progress.map(i16::from));
        self.error.push(u.error.clone());
        self.created_at.push(db_time(u.created_at));
        self.state_changed_at.push(db_time(u.state_changed_at));
        self.updated_at.push(db_time(u.updated_at));
        self.retry_at.push(db_time_opt(u.retry_at));
        self.wake_at.push(db_time_opt(u.wake_at));
        self.revision.push(to_i64(u.revision));
    }
}

/// The CTEs of one compare-and-set transition written alone (after `WITH`): `old` (the row's
/// state and wave before), `upd` (the row rewritten from `$4`..`$20` when its revision is
/// still `$3`; the columns [`COUNT_TRANSITIONED`] reads) and `hist` (its history entry, device
/// `$21`, document `$22`). `$1`/`$2` are the update's id and tenant.
pub(crate) const TRANSITION_ALONE: &str = "old AS (
            SELECT id, state, wave FROM ota_updates WHERE id = $1 AND tenant_id = $2
         ),
         upd AS (
            UPDATE ota_updates u SET
                device_id = $4, kind = $5, package_id = $6, target_title = $7,
                target_version = $8, campaign_id = $9, wave = $10, state = $11, attempt = $12,
                progress = $13, error = $14, created_at = $15, state_changed_at = $16,
                updated_at = $17, retry_at = $18, wake_at = $19, revision = $20,
                lease_owner = NULL, lease_until = NULL
            FROM old WHERE u.id = old.id AND u.revision = $3
            RETURNING u.tenant_id, u.device_id, u.campaign_id, old.wave AS old_wave,
                old.state AS old_state, u.wave AS new_wave, u.state AS new_state
         ),
         hist AS (
            INSERT INTO ota_history (update_id, tenant_id, device_id, doc)
            SELECT $1, $2, $21, $22 FROM upd
         )";

/// Moves a campaign's counters for the rows of the CTE `upd` (columns campaign_id, old_wave,
/// old_state, new_wave, new_state): one less where each update was, one more where it is, in
/// key order like [`COUNT_INSERTED`].
pub(crate) const COUNT_TRANSITIONED: &str =
    "INSERT INTO ota_campaign_counts (campaign_id, wave, state, n)
    SELECT campaign_id, wave, state, sum(d) FROM (
        SELECT campaign_id, old_wave AS wave, old_state AS state, -1 AS d
        FROM upd WHERE campaign_id IS NOT NULL
        UNION ALL
        SELECT campaign_id, new_wave, new_state, 1 FROM upd WHERE campaign_id IS NOT NULL
    ) deltas
    GROUP BY campaign_id, wave, state HAVING sum(d) <> 0
    ORDER BY campaign_id, wave, state
    ON CONFLICT (campaign_id, wave, state) DO UPDATE SET n = ota_campaign_counts.n + excluded.n";

/// Counts a campaign's new updates: added to `ota_campaign_counts` from the rows of the CTE
/// `ins` (columns campaign_id, wave, state), in key order so that concurrent writers lock
/// counter rows in the same order.
pub(crate) const COUNT_INSERTED: &str =
    "INSERT INTO ota_campaign_counts (campaign_id, wave, state, n)
    SELECT campaign_id, wave, state, count(*) FROM ins WHERE campaign_id IS NOT NULL
    GROUP BY campaign_id, wave, state ORDER BY campaign_id, wave, state
    ON CONFLICT (campaign_id, wave, state) DO UPDATE SET n = ota_campaign_counts.n + excluded.n";

pub(crate) fn conflict_message(e: sqlx::Error) -> StoreError {
    match map(e) {
        StoreError::Conflict { message, .. } => StoreError::conflict(
            "update",
            if message.contains("ota_updates_one_unfinished") {
                "a device would have a second unfinished update of one kind".to_string()
            } else {
                "an update with one of these ids exists".to_string()
            },
        ),
        other => other,
    }
}

/// Appends the WHERE conditions of `filter` (after a first condition).
fn push_filter(q: &mut QueryBuilder<'_, Postgres>, filter: &UpdateFilter) {
    if !filter.states.is_empty() {
        let states: Vec<String> = filter.states.iter().map(|s| s.name().to_string()).collect();
        q.push(" AND state = ANY(").push_bind(states).push(")");
    }
    if let Some(c) = filter.campaign_id {
        q.push(" AND campaign_id = ").push_bind(c.0);
    }
    if let Some(d) = filter.device_id {
        q.push(" AND device_id = ").push_bind(d.0);
    }
    if let Some(k) = filter.kind {
        q.push(" AND kind = ").push_bind(name_of(&k));
    }
    if let Some(p) = filter.package_id {
        q.push(" AND package_id = ").push_bind(p.0);
    }
}

/// The rest of a pick of queued updates (after `WHERE state = 'QUEUED'`): the scope, free of
/// leases, in claim order, at most `request.limit`, locked with `FOR UPDATE SKIP LOCKED`.
pub(crate) fn push_queued_pick(
    q: &mut QueryBuilder<'_, Postgres>,
    request: &ClaimRequest,
    scope: QueueScope,
) {
    let order = match scope {
        QueueScope::Direct => {
            q.push(" AND campaign_id IS NULL");
            " ORDER BY state_changed_at, id"
        }
        QueueScope::Campaign { id, up_to_wave } => {
            q.push(" AND campaign_id = ")
                .push_bind(id.0)
                .push(" AND wave <= ")
                .push_bind(i32_of(up_to_wave));
            " ORDER BY wave, state_changed_at, id"
        }
    };
    q.push(" AND (lease_until IS NULL OR lease_until <= ")
        .push_bind(db_time(request.now))
        .push(")")
        .push(order)
        .push(" LIMIT ")
        .push_bind(i64::from(request.limit))
        .push(" FOR UPDATE SKIP LOCKED");
}

/// Leases the rows picked by `picked` (a query selecting `id`s with `FOR UPDATE SKIP
/// LOCKED`) to the claimer and returns them in `order`.
async fn lease(
    store: &PgStore,
    mut q: QueryBuilder<'_, Postgres>,
    request: &ClaimRequest,
) -> Result<Vec<Update>, StoreError> {
    let until = request
        .now
        .checked_add_signed(request.lease)
        .unwrap_or(request.now);
    q.push(") UPDATE ota_updates u SET lease_owner = ")
        .push_bind(request.owner.clone())
        .push(", lease_until = ")
        .push_bind(db_time(until))
        .push(" FROM picked WHERE u.id = picked.id RETURNING ");
    q.push(
        UPDATE_COLUMNS
            .split(',')
            .map(|c| format!("u.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let rows = q.build().fetch_all(&store.pool).await.map_err(map)?;
    rows.iter().map(decode_update).collect()
}

/// Inserts `batch` (at most a few thousand) and counts the campaign updates among them.
pub(crate) async fn insert_batch(
    tx: &mut sqlx::Transaction<'static, Postgres>,
    batch: &[Update],
) -> Result<(), StoreError> {
    let mut c = UpdateColumns::default();
    for u in batch {
        c.push(u);
    }
    let sql = format!(
        "WITH ins AS (
            INSERT INTO ota_updates (id, tenant_id, device_id, kind, package_id,
                target_title, target_version, campaign_id, wave, state, attempt, progress,
                error, created_at, state_changed_at, updated_at, retry_at, wake_at, revision)
            SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::uuid[],
                $6::text[], $7::text[], $8::uuid[], $9::int[], $10::text[], $11::int[],
                $12::smallint[], $13::text[], $14::timestamptz[], $15::timestamptz[], $16::timestamptz[],
                $17::timestamptz[], $18::timestamptz[], $19::bigint[])
            RETURNING campaign_id, wave, state)
         {COUNT_INSERTED}"
    );
    c.bind(sqlx::query(&sql))
        .execute(&mut **tx)
        .await
        .map_err(conflict_message)?;
    Ok(())
}

impl PgStore {
    /// A transition (with the device's current version when given), batched with other
    /// callers', and the hint it leaves.
    async fn write_transition(
        &self,
        update: &Update,
        expected_revision: u64,
        history: &HistoryEntry,
        current: Option<&TitleVersion>,
    ) -> Result<(), StoreError> {
        let written = crate::transition_batch::transition(
            &self.transitions,
            &self.pool,
            update,
            expected_revision,
            history,
            current,
        )
        .await;
        match &written {
            Ok(()) => self.hints.written(update),
            Err(_) => self.hints.forget(update),
        }
        written
    }
}

#[async_trait]
impl UpdateStore for PgStore {
    async fn create_updates(&self, updates: &[Update]) -> Result<(), StoreError> {
        if updates.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(map)?;
        for batch in updates.chunks(10_000) {
            insert_batch(&mut tx, batch).await?;
        }
        tx.commit().await.map_err(map)?;
        Ok(())
    }

    async fn transition(
        &self,
        update: &Update,
        expected_revision: u64,
        history: &HistoryEntry,
    ) -> Result<(), StoreError> {
        self.write_transition(update, expected_revision, history, None)
            .await
    }

    async fn transition_with_current(
        &self,
        update: &Update,
        expected_revision: u64,
        history: &HistoryEntry,
        current: &TitleVersion,
    ) -> Option<Result<(), StoreError>> {
        Some(
            self.write_transition(update, expected_revision, history, Some(current))
                .await,
        )
    }

    async fn transition_audited(
        &self,
        write: &AuditedTransition,
    ) -> Option<Result<(), StoreError>> {
        let written = crate::audited_transition::write(&self.pool, write).await;
        match &written {
            Ok(()) => self.hints.written(&write.transition.update),
            Err(_) => self.hints.forget(&write.transition.update),
        }
        Some(written)
    }

    async fn transition_many(&self, batch: &[Transition]) -> Vec<Result<(), StoreError>> {
        let mut answers = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(BULK_TRANSITIONS) {
            let items: Vec<Item<'_>> = chunk.iter().map(Item::plain).collect();
            answers.extend(crate::transition_batch::write(&self.pool, &items).await);
        }
        answers
    }

    async fn append_history(&self, entry: &HistoryEntry) -> Result<(), StoreError> {
        let done = sqlx::query(
            "INSERT INTO ota_history (update_id, tenant_id, device_id, doc)
             SELECT $1, $2, $3, $4 WHERE EXISTS (
                 SELECT 1 FROM ota_updates WHERE id = $1 AND tenant_id = $2)",
        )
        .bind(entry.update_id.0)
        .bind(entry.tenant_id.0)
        .bind(entry.device_id.0)
        .bind(to_json(entry)?)
        .execute(&self.pool)
        .await
        .map_err(map)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("update", entry.update_id));
        }
        Ok(())
    }

    async fn get_update(&self, tenant: TenantId, id: UpdateId) -> Result<Update, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {UPDATE_COLUMNS} FROM ota_updates WHERE id = $1 AND tenant_id = $2"
        ))
        .bind(id.0)
        .bind(tenant.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?
        .ok_or_else(|| StoreError::not_found("update", id))?;
        decode_update(&row)
    }

    async fn latest_update(
        &self,
        tenant: TenantId,
        device: DeviceId,
        kind: PackageKind,
    ) -> Result<Option<Update>, StoreError> {
        crate::latest_batch::latest(&self.latest, &self.pool, tenant, device, kind).await
    }

    async fn latest_update_hint(
        &self,
        tenant: TenantId,
        device: DeviceId,
        kind: PackageKind,
    ) -> Result<Option<Update>, StoreError> {
        match self.hints.take(tenant, device, kind) {
            Some(hint) => Ok(Some(hint)),
            None => self.latest_update(tenant, device, kind).await,
        }
    }

    async fn list_updates(
        &self,
        tenant: TenantId,
        filter: &UpdateFilter,
        request: PageRequest,
    ) -> Result<Page<Update>, StoreError> {
        let mut q = QueryBuilder::new(format!(
            "SELECT {UPDATE_COLUMNS} FROM ota_updates WHERE tenant_id = "
        ));
        q.push_bind(tenant.0);
        if let Some(a) = request.after {
            q.push(" AND id > ").push_bind(a);
        }
        push_filter(&mut q, filter);
        q.push(" ORDER BY id LIMIT ").push_bind(overfetch(&request));
        let rows = q.build().fetch_all(&self.pool).await.map_err(map)?;
        let items = rows.iter().map(decode_update).collect::<Result<_, _>>()?;
        Ok(page(items, &request, |u: &Update| u.id.0))
    }

    async fn count_updates(
        &self,
        tenant: Option<TenantId>,
        filter: &UpdateFilter,
    ) -> Result<u64, StoreError> {
        let mut q = QueryBuilder::new("SELECT count(*) FROM ota_updates WHERE true");
        if let Some(t) = tenant {
            q.push(" AND tenant_id = ").push_bind(t.0);
        }
        push_filter(&mut q, filter);
        let n: i64 = q
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await
            .map_err(map)?;
        Ok(to_u64(n))
    }

    async fn claim_queued(
        &self,
        request: &ClaimRequest,
        scope: QueueScope,
    ) -> Result<Vec<Update>, StoreError> {
        let mut q =
            QueryBuilder::new("WITH picked AS (SELECT id FROM ota_updates WHERE state = 'QUEUED'");
        push_queued_pick(&mut q, request, scope);
        let mut claimed = lease(self, q, request).await?;
        claimed.sort_by_key(|u| (u.wave, u.state_changed_at, u.id));
        Ok(claimed)
    }

    async fn claim_due(&self, request: &ClaimRequest) -> Result<Vec<Update>, StoreError> {
        let mut q =
            QueryBuilder::new("WITH picked AS (SELECT id FROM ota_updates WHERE wake_at <= ");
        q.push_bind(db_time(request.now))
            .push(" AND (lease_until IS NULL OR lease_until <= ")
            .push_bind(db_time(request.now))
            .push(") ORDER BY wake_at, id LIMIT ")
            .push_bind(i64::from(request.limit))
            .push(" FOR UPDATE SKIP LOCKED");
        let mut claimed = lease(self, q, request).await?;
        claimed.sort_by_key(|u| (u.wake_at, u.id));
        Ok(claimed)
    }

    async fn release_claim(
        &self,
        tenant: TenantId,
        id: UpdateId,
        owner: &str,
    ) -> Result<(), StoreError> {
        let found: Option<bool> = sqlx::query_scalar(
            "WITH rel AS (
                UPDATE ota_updates SET lease_owner = NULL, lease_until = NULL
                WHERE id = $1 AND tenant_id = $2 AND lease_owner = $3 RETURNING id)
             SELECT true FROM ota_updates WHERE id = $1 AND tenant_id = $2",
        )
        .bind(id.0)
        .bind(tenant.0)
        .bind(owner)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        match found {
            Some(_) => Ok(()),
            None => Err(StoreError::not_found("update", id)),
        }
    }

    async fn update_history(
        &self,
        tenant: TenantId,
        id: UpdateId,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let exists: Option<bool> =
            sqlx::query_scalar("SELECT true FROM ota_updates WHERE id = $1 AND tenant_id = $2")
                .bind(id.0)
                .bind(tenant.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(map)?;
        if exists.is_none() {
            return Err(StoreError::not_found("update", id));
        }
        let docs: Vec<serde_json::Value> = sqlx::query_scalar(
            "SELECT doc FROM ota_history WHERE update_id = $1 AND tenant_id = $2 ORDER BY seq",
        )
        .bind(id.0)
        .bind(tenant.0)
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        docs.into_iter()
            .map(|d| from_json("history entry", d))
            .collect()
    }

    async fn device_history(
        &self,
        tenant: TenantId,
        device: DeviceId,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let docs: Vec<serde_json::Value> = sqlx::query_scalar(
            "SELECT doc FROM ota_history WHERE device_id = $1 AND tenant_id = $2
             ORDER BY seq DESC LIMIT $3",
        )
        .bind(device.0)
        .bind(tenant.0)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        docs.into_iter()
            .map(|d| from_json("history entry", d))
            .collect()
    }
}
