//! [`CampaignStore`] on PostgreSQL: campaign documents, explicit device lists, set-based
//! materialization and the counters kept by every update write.

use crate::codec::{
    after, db_time, from_json, name_of, overfetch, page, to_i64, to_json, to_u64, DbTime,
};
use crate::error::{conflict_as, map};
use crate::PgStore;
use async_trait::async_trait;
use ota_core::audit::AuditEntry;
use ota_core::campaign::rollout::plan_waves;
use ota_core::campaign::{Campaign, CampaignState, CampaignStats, CampaignTarget, StateCounts};
use ota_core::clock::Timestamp;
use ota_core::store::{skip_reason, CampaignStore, Materialized, Page, PageRequest, StoreError};
use ota_core::update::{Update, UpdateState};
use ota_core::{CampaignId, Compatibility, Device, DeviceId, Package, TenantId};
use sqlx::{Postgres, Row, Transaction};
use std::collections::HashSet;
use uuid::Uuid;

/// Skip reasons in the order of their codes 1, 2, 3 in [`CLASSIFY`].
const REASONS: [&str; 3] = [
    skip_reason::INCOMPATIBLE,
    skip_reason::UP_TO_DATE,
    skip_reason::BUSY,
];

/// Devices of a campaign's target (`cand`), then each with its skip code (`cls`: 0 taken,
/// 1 incompatible, 2 up to date, 3 busy).
///
/// Parameters: $1 tenant, $2 campaign, $3 whether the target is an explicit list, $4 profile
/// (or NULL), $5 groups, $6 source versions, $7 kind, $8 compatible profiles (NULL: any),
/// $9 target title, $10 target version.
const CLASSIFY: &str = "cand AS (
        SELECT d.id, d.profile_id, d.fw_title, d.fw_version, d.sw_title, d.sw_version
        FROM ota_campaign_devices cd JOIN ota_devices d ON d.id = cd.device_id
        WHERE $3 AND cd.campaign_id = $2 AND d.tenant_id = $1
        UNION ALL
        SELECT d.id, d.profile_id, d.fw_title, d.fw_version, d.sw_title, d.sw_version
        FROM ota_devices d
        WHERE NOT $3 AND d.tenant_id = $1
          AND ($4::uuid IS NULL OR d.profile_id = $4)
          AND (cardinality($5::uuid[]) = 0 OR EXISTS (
                SELECT 1 FROM ota_device_groups g WHERE g.device_id = d.id AND g.group_id = ANY($5)))
          AND (cardinality($6::text[]) = 0 OR
               (CASE WHEN $7 = 'FIRMWARE' THEN d.fw_title IS NOT NULL AND d.fw_version = ANY($6)
                     ELSE d.sw_title IS NOT NULL AND d.sw_version = ANY($6) END))
    ),
    cls AS (
        SELECT c.id, CASE
            WHEN $8::uuid[] IS NOT NULL AND NOT (c.profile_id = ANY($8)) THEN 1
            WHEN COALESCE(CASE WHEN $7 = 'FIRMWARE'
                    THEN c.fw_title = $9 AND c.fw_version = $10
                    ELSE c.sw_title = $9 AND c.sw_version = $10 END, false) THEN 2
            WHEN EXISTS (SELECT 1 FROM ota_updates u WHERE u.device_id = c.id AND u.kind = $7
                    AND (u.state NOT IN ('UPDATED', 'FAILED', 'CANCELED')
                         OR (u.state = 'FAILED' AND u.retry_at IS NOT NULL))) THEN 3
            ELSE 0 END AS reason
        FROM cand c
    )";

/// The parameters of [`CLASSIFY`] for `campaign` and `package`, bound in order.
fn bind_classify<'q>(
    q: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    campaign: &Campaign,
    package: &Package,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    let (list, profile, groups, versions) = match &campaign.spec.target {
        CampaignTarget::DeviceList => (true, None, Vec::new(), Vec::new()),
        CampaignTarget::Selection {
            profile,
            groups,
            source_versions,
        } => (
            false,
            profile.map(|p| p.0),
            groups.iter().map(|g| g.0).collect::<Vec<Uuid>>(),
            source_versions.iter().cloned().collect::<Vec<String>>(),
        ),
    };
    let compatible: Option<Vec<Uuid>> = match &package.compatibility {
        Compatibility::AnyProfile => None,
        Compatibility::Profiles(p) => Some(p.iter().map(|p| p.0).collect()),
    };
    q.bind(campaign.tenant_id.0)
        .bind(campaign.id.0)
        .bind(list)
        .bind(profile)
        .bind(groups)
        .bind(versions)
        .bind(name_of(&package.kind))
        .bind(compatible)
        .bind(package.title.clone())
        .bind(package.version.clone())
}

async fn lock_campaign(
    tx: &mut Transaction<'static, Postgres>,
    tenant: TenantId,
    id: CampaignId,
) -> Result<(), StoreError> {
    let found: Option<bool> = sqlx::query_scalar(
        "SELECT true FROM ota_campaigns WHERE id = $1 AND tenant_id = $2 FOR UPDATE",
    )
    .bind(id.0)
    .bind(tenant.0)
    .fetch_optional(&mut **tx)
    .await
    .map_err(map)?;
    found
        .map(|_| ())
        .ok_or_else(|| StoreError::not_found("campaign", id))
}

/// When a fresh QUEUED update of `campaign` created at `now` times out.
fn queued_wake_at(campaign: &Campaign, now: Timestamp) -> Option<DbTime> {
    campaign
        .spec
        .policy
        .timeouts
        .get(UpdateState::Queued)
        .and_then(|d| now.checked_add_signed(d))
        .map(db_time)
}

pub(crate) fn decode_all(docs: Vec<serde_json::Value>) -> Result<Vec<Campaign>, StoreError> {
    docs.into_iter().map(|d| from_json("campaign", d)).collect()
}

/// Materializations of at least this many updates refresh the table's statistics.
const ANALYZE_AFTER: u64 = 10_000;

#[async_trait]
impl CampaignStore for PgStore {
    async fn create_campaign(
        &self,
        campaign: &Campaign,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        let mut tx = crate::audit::begin(&self.pool, audit).await?;
        sqlx::query(
            "INSERT INTO ota_campaigns (id, tenant_id, state, revision, doc) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(campaign.id.0)
        .bind(campaign.tenant_id.0)
        .bind(campaign.state.name())
        .bind(to_i64(campaign.revision))
        .bind(to_json(campaign)?)
        .execute(&mut *tx)
        .await
        .map_err(conflict_as("campaign", format!("id {} exists", campaign.id)))?;
        tx.commit().await.map_err(map)
    }

    async fn get_campaign(&self, tenant: TenantId, id: CampaignId) -> Result<Campaign, StoreError> {
        let doc: serde_json::Value =
            sqlx::query_scalar("SELECT doc FROM ota_campaigns WHERE id = $1 AND tenant_id = $2")
                .bind(id.0)
                .bind(tenant.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(map)?
                .ok_or_else(|| StoreError::not_found("campaign", id))?;
        from_json("campaign", doc)
    }

    async fn save_campaign(
        &self,
        campaign: &Campaign,
        expected_revision: u64,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        let mut tx = crate::audit::begin(&self.pool, audit).await?;
        let done = sqlx::query(
            "UPDATE ota_campaigns SET state = $4, revision = $5, doc = $6
             WHERE id = $1 AND tenant_id = $2 AND revision = $3",
        )
        .bind(campaign.id.0)
        .bind(campaign.tenant_id.0)
        .bind(to_i64(expected_revision))
        .bind(campaign.state.name())
        .bind(to_i64(campaign.revision))
        .bind(to_json(campaign)?)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        if done.rows_affected() == 1 {
            return tx.commit().await.map_err(map);
        }
        let stored: Option<i64> = sqlx::query_scalar(
            "SELECT revision FROM ota_campaigns WHERE id = $1 AND tenant_id = $2",
        )
        .bind(campaign.id.0)
        .bind(campaign.tenant_id.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?;
        match stored {
            None => Err(StoreError::not_found("campaign", campaign.id)),
            Some(r) => Err(StoreError::precondition(format!(
                "campaign {} is at revision {r}, not {expected_revision}",
                campaign.id
            ))),
        }
    }

    async fn list_campaigns(
        &self,
        tenant: TenantId,
        states: &[CampaignState],
        request: PageRequest,
    ) -> Result<Page<Campaign>, StoreError> {
        let states: Vec<&str> = states.iter().map(|s| s.name()).collect();
        let docs = sqlx::query_scalar(
            "SELECT doc FROM ota_campaigns
             WHERE tenant_id = $1 AND id > $2 AND (cardinality($3::text[]) = 0 OR state = ANY($3))
             ORDER BY id LIMIT $4",
        )
        .bind(tenant.0)
        .bind(after(&request))
        .bind(&states)
        .bind(overfetch(&request))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        Ok(page(decode_all(docs)?, &request, |c| c.id.0))
    }

    async fn active_campaigns(&self) -> Result<Vec<Campaign>, StoreError> {
        crate::active_batch::active(&self.active, &self.pool).await
    }

    async fn ended_campaigns_with_live_updates(&self) -> Result<Vec<Campaign>, StoreError> {
        let docs = sqlx::query_scalar(
            "SELECT c.doc FROM ota_campaigns c
             WHERE c.state IN ('FINISHED', 'STOPPED', 'FAILED', 'ARCHIVED')
               AND c.id IN (SELECT k.campaign_id FROM ota_campaign_counts k
                            WHERE k.n > 0 AND k.state NOT IN ('UPDATED', 'FAILED', 'CANCELED'))
             ORDER BY c.id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        decode_all(docs)
    }

    async fn copy_campaign_devices(
        &self,
        tenant: TenantId,
        from: CampaignId,
        to: CampaignId,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map)?;
        lock_campaign(&mut tx, tenant, from).await?;
        lock_campaign(&mut tx, tenant, to).await?;
        sqlx::query("DELETE FROM ota_campaign_devices WHERE campaign_id = $1")
            .bind(to.0)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        let copied = sqlx::query(
            "INSERT INTO ota_campaign_devices (campaign_id, device_id)
             SELECT $2, device_id FROM ota_campaign_devices WHERE campaign_id = $1",
        )
        .bind(from.0)
        .bind(to.0)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        tx.commit().await.map_err(map)?;
        Ok(copied.rows_affected())
    }

    async fn set_campaign_devices(
        &self,
        tenant: TenantId,
        campaign: CampaignId,
        devices: &[DeviceId],
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        let mut tx = crate::audit::begin(&self.pool, audit).await?;
        lock_campaign(&mut tx, tenant, campaign).await?;
        let mut seen = HashSet::with_capacity(devices.len());
        let ids: Vec<Uuid> = devices
            .iter()
            .map(|d| d.0)
            .filter(|d| seen.insert(*d))
            .collect();
        for batch in ids.chunks(50_000) {
            let found: Vec<Uuid> = sqlx::query_scalar(
                "SELECT id FROM ota_devices WHERE tenant_id = $1 AND id = ANY($2)",
            )
            .bind(tenant.0)
            .bind(batch)
            .fetch_all(&mut *tx)
            .await
            .map_err(map)?;
            if found.len() != batch.len() {
                let found: HashSet<Uuid> = found.into_iter().collect();
                if let Some(missing) = batch.iter().find(|d| !found.contains(d)) {
                    return Err(StoreError::not_found("device", missing));
                }
            }
        }
        sqlx::query("DELETE FROM ota_campaign_devices WHERE campaign_id = $1")
            .bind(campaign.0)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        for batch in ids.chunks(50_000) {
            sqlx::query(
                "INSERT INTO ota_campaign_devices (campaign_id, device_id)
                 SELECT $1, d FROM UNNEST($2::uuid[]) d",
            )
            .bind(campaign.0)
            .bind(batch)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        }
        tx.commit().await.map_err(map)?;
        Ok(())
    }

    async fn count_campaign_devices(
        &self,
        tenant: TenantId,
        campaign: CampaignId,
    ) -> Result<u64, StoreError> {
        let n: Option<i64> = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM ota_campaign_devices WHERE campaign_id = c.id)
             FROM ota_campaigns c WHERE c.id = $1 AND c.tenant_id = $2",
        )
        .bind(campaign.0)
        .bind(tenant.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        n.map(to_u64)
            .ok_or_else(|| StoreError::not_found("campaign", campaign))
    }

    async fn materialize_campaign(
        &self,
        campaign: &Campaign,
        package: &Package,
        now: Timestamp,
    ) -> Result<Materialized, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map)?;
        // One snapshot for counting and inserting, so that the wave sizes match the rows.
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        lock_campaign(&mut tx, campaign.tenant_id, campaign.id).await?;
        let has_updates: Option<bool> =
            sqlx::query_scalar("SELECT true FROM ota_updates WHERE campaign_id = $1 LIMIT 1")
                .bind(campaign.id.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map)?;
        if has_updates.is_some() {
            return Err(StoreError::conflict(
                "campaign",
                "the campaign already has updates",
            ));
        }
        let count_sql = format!("WITH {CLASSIFY} SELECT reason, count(*) FROM cls GROUP BY reason");
        let rows = bind_classify(sqlx::query(&count_sql), campaign, package)
            .fetch_all(&mut *tx)
            .await
            .map_err(map)?;
        let mut counts = [0u64; 4];
        for row in &rows {
            let reason: i32 = row.try_get(0).map_err(map)?;
            let n: i64 = row.try_get(1).map_err(map)?;
            if let Some(c) = usize::try_from(reason).ok().and_then(|r| counts.get_mut(r)) {
                *c = to_u64(n);
            }
        }
        let eligible = counts[0];
        let wave_sizes = plan_waves(&campaign.spec.waves, eligible);
        if eligible > 0 {
            // The first row number of each wave; width_bucket maps a row number to its wave.
            let mut starts = Vec::with_capacity(wave_sizes.len());
            let mut next = 1i64;
            for size in &wave_sizes {
                starts.push(next);
                next += to_i64(*size);
            }
            let insert_sql = format!(
                "WITH {CLASSIFY},
                 numbered AS (
                    SELECT id, row_number() OVER (ORDER BY id) AS rn FROM cls WHERE reason = 0
                 ),
                 ins AS (
                    INSERT INTO ota_updates (id, tenant_id, device_id, kind, package_id,
                        target_title, target_version, campaign_id, wave, state, attempt,
                        created_at, state_changed_at, updated_at, revision, wake_at)
                    SELECT ota_uuid_v7(), $1, n.id, $7, $11, $9, $10, $2,
                        width_bucket(n.rn, $12::bigint[]) - 1, 'QUEUED', 1, $13, $13, $13, 0,
                        $14::timestamptz
                    FROM numbered n
                    RETURNING campaign_id, wave, state
                 )
                 {}",
                crate::updates::COUNT_INSERTED
            );
            bind_classify(sqlx::query(&insert_sql), campaign, package)
                .bind(package.id.0)
                .bind(&starts)
                .bind(db_time(now))
                .bind(queued_wake_at(campaign, now))
                .execute(&mut *tx)
                .await
                .map_err(map)?;
        }
        // Every wave gets its counters, even with no device, so that statistics list it.
        let waves: Vec<i32> = (0..wave_sizes.len())
            .map(|w| i32::try_from(w).unwrap_or(i32::MAX))
            .collect();
        sqlx::query(
            "INSERT INTO ota_campaign_counts (campaign_id, wave, state, n)
             SELECT $1, w, 'QUEUED', 0 FROM UNNEST($2::int[]) w
             ON CONFLICT DO NOTHING",
        )
        .bind(campaign.id.0)
        .bind(&waves)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        tx.commit().await.map_err(map)?;
        if eligible >= ANALYZE_AFTER {
            // Fresh statistics for the planner: without them it does not know that most of
            // the table is this campaign's, and pages through it (stopping, listing) by
            // sorting what remains instead of walking an index. Best effort.
            let _ = sqlx::query("ANALYZE ota_updates").execute(&self.pool).await;
        }
        Ok(Materialized {
            created: eligible,
            wave_sizes,
            skipped: REASONS
                .iter()
                .zip(&counts[1..])
                .filter(|(_, n)| **n > 0)
                .map(|(r, n)| (r.to_string(), *n))
                .collect(),
        })
    }

    async fn join_campaign(
        &self,
        campaign: &Campaign,
        package: &Package,
        device: &Device,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map)?;
        let device = crate::devices::fetch_device(&mut *tx, campaign.tenant_id, device.id).await?;
        let member: Option<bool> = sqlx::query_scalar(
            "SELECT true FROM ota_updates WHERE campaign_id = $1 AND device_id = $2 LIMIT 1",
        )
        .bind(campaign.id.0)
        .bind(device.id.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?;
        if member.is_some() || !campaign.spec.target.selects(&device, package.kind) {
            return Ok(false);
        }
        if !package.compatibility.allows(device.profile_id)
            || device.current.get(package.kind) == Some(&package.title_version())
        {
            return Ok(false);
        }
        let busy: Option<bool> = sqlx::query_scalar(
            "SELECT true FROM ota_updates WHERE device_id = $1 AND kind = $2
             AND (state NOT IN ('UPDATED', 'FAILED', 'CANCELED')
                  OR (state = 'FAILED' AND retry_at IS NOT NULL)) LIMIT 1",
        )
        .bind(device.id.0)
        .bind(name_of(&package.kind))
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?;
        if busy.is_some() {
            return Ok(false);
        }
        let mut update = Update::new(
            campaign.tenant_id,
            device.id,
            package.kind,
            package.id,
            package.title_version(),
            Some(campaign.id),
            now,
        );
        update.wave = campaign.current_wave;
        update.wake_at =
            ota_core::update::timeout_due(&update, now, &campaign.spec.policy.timeouts);
        match crate::updates::insert_batch(&mut tx, std::slice::from_ref(&update)).await {
            Ok(()) => {}
            // Another writer gave the device an unfinished update meanwhile: skipped.
            Err(StoreError::Conflict { .. }) => return Ok(false),
            Err(e) => return Err(e),
        }
        tx.commit().await.map_err(map)?;
        Ok(true)
    }

    async fn campaign_stats(
        &self,
        tenant: TenantId,
        campaign: CampaignId,
    ) -> Result<CampaignStats, StoreError> {
        let exists: Option<bool> =
            sqlx::query_scalar("SELECT true FROM ota_campaigns WHERE id = $1 AND tenant_id = $2")
                .bind(campaign.0)
                .bind(tenant.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(map)?;
        if exists.is_none() {
            return Err(StoreError::not_found("campaign", campaign));
        }
        let rows =
            sqlx::query("SELECT wave, state, n FROM ota_campaign_counts WHERE campaign_id = $1")
                .bind(campaign.0)
                .fetch_all(&self.pool)
                .await
                .map_err(map)?;
        let mut waves: Vec<StateCounts> = Vec::new();
        for row in &rows {
            let wave: i32 = row.try_get("wave").map_err(map)?;
            let state: String = row.try_get("state").map_err(map)?;
            let n: i64 = row.try_get("n").map_err(map)?;
            let state: UpdateState = crate::codec::parse_name("update state", &state)?;
            let wave = usize::try_from(wave).unwrap_or(0);
            if waves.len() <= wave {
                waves.resize(wave + 1, StateCounts::default());
            }
            waves[wave].add(state, to_u64(n));
        }
        Ok(CampaignStats::from_waves(waves))
    }
}
