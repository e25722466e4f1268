//! Claims released in the same transaction ([`NoticeOutbox::claim_and_release`]): the queued
//! rows are picked and locked (`FOR UPDATE SKIP LOCKED`, no lease written), their packages
//! read, the engine's plan applied, and the releases written with their notices by the
//! statement of [`crate::release`], all before one commit. Compared with a claim (a lease
//! written on every row, and a commit) followed by a release, each released row is written
//! once and the batch commits once. Rows the plan leaves out are leased to the claimer in the
//! same transaction, as a claim would have.
//!
//! [`NoticeOutbox::claim_and_release`]: ota_core::store::NoticeOutbox::claim_and_release

use crate::codec::{db_time, from_json};
use crate::error::map;
use crate::updates::{decode_update, push_queued_pick, UPDATE_COLUMNS};
use crate::PgStore;
use ota_core::package::Package;
use ota_core::store::{
    ClaimRequest, ClaimedReleases, PlanRelease, QueueScope, Release, StoreError,
};
use ota_core::update::Update;
use sqlx::{QueryBuilder, Row};
use std::collections::HashMap;
use uuid::Uuid;

/// Claims and releases in one transaction; see the module documentation.
pub(crate) async fn claim_and_release(
    store: &PgStore,
    request: &ClaimRequest,
    scope: QueueScope,
    plan: &PlanRelease<'_>,
) -> Result<ClaimedReleases, StoreError> {
    let mut tx = store.pool.begin().await.map_err(map)?;
    let mut q = QueryBuilder::new(format!(
        "SELECT {UPDATE_COLUMNS} FROM ota_updates WHERE state = 'QUEUED'"
    ));
    push_queued_pick(&mut q, request, scope);
    let rows = q.build().fetch_all(&mut *tx).await.map_err(map)?;
    let mut claimed = rows
        .iter()
        .map(decode_update)
        .collect::<Result<Vec<_>, _>>()?;
    if claimed.is_empty() {
        tx.rollback().await.map_err(map)?;
        return Ok(ClaimedReleases::default());
    }
    claimed.sort_by_key(|u| (u.wave, u.state_changed_at, u.id));
    let packages = packages_of(&mut tx, &claimed).await?;

    let mut done = ClaimedReleases::default();
    let mut releases: Vec<Release> = Vec::with_capacity(claimed.len());
    let mut by_id: HashMap<Uuid, Update> = HashMap::with_capacity(claimed.len());
    for u in claimed {
        let package = packages
            .get(&u.package_id.0)
            .filter(|p| p.tenant_id == u.tenant_id);
        match plan(&u, package) {
            Some(r)
                if r.transition.update.id == u.id
                    && r.transition.expected_revision == u.revision =>
            {
                by_id.insert(u.id.0, u);
                releases.push(r);
            }
            _ => done.left.push(u),
        }
    }
    if !releases.is_empty() {
        // In id order: the rows are already locked, but the outbox rows are not.
        let mut batch: Vec<&Release> = releases.iter().collect();
        batch.sort_by_key(|r| r.transition.update.id);
        // The statement's generic plan reaches the rows through the primary key and is
        // planned once per connection; a custom plan (the first five runs on a connection)
        // costs more to plan than it saves and, on a small table, scans it.
        sqlx::query("SET LOCAL plan_cache_mode = force_generic_plan")
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        let applied = crate::release::statement(&mut *tx, &batch).await?;
        for r in releases {
            if applied.contains(&r.transition.update.id.0) {
                done.released.push(r);
            } else if let Some(u) = by_id.remove(&r.transition.update.id.0) {
                // Not applied although locked (the plan wrote another tenant): left claimed.
                done.left.push(u);
            }
        }
    }
    if !done.left.is_empty() {
        let until = request
            .now
            .checked_add_signed(request.lease)
            .unwrap_or(request.now);
        let ids: Vec<Uuid> = done.left.iter().map(|u| u.id.0).collect();
        sqlx::query("UPDATE ota_updates SET lease_owner = $2, lease_until = $3 WHERE id = ANY($1)")
            .bind(&ids)
            .bind(&request.owner)
            .bind(db_time(until))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        done.left
            .sort_by_key(|u| (u.wave, u.state_changed_at, u.id));
    }
    tx.commit().await.map_err(map)?;
    for r in &done.released {
        store.hints.written(&r.transition.update);
    }
    Ok(done)
}

/// The packages of `claimed` that exist and are complete, by id.
async fn packages_of(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    claimed: &[Update],
) -> Result<HashMap<Uuid, Package>, StoreError> {
    let mut ids: Vec<Uuid> = claimed.iter().map(|u| u.package_id.0).collect();
    ids.sort_unstable();
    ids.dedup();
    let rows =
        sqlx::query("SELECT id, doc FROM ota_packages WHERE id = ANY($1) AND upload_until IS NULL")
            .bind(&ids)
            .fetch_all(&mut **tx)
            .await
            .map_err(map)?;
    rows.iter()
        .map(|row| {
            let id: Uuid = row.try_get("id").map_err(map)?;
            let package: Package = from_json("package", row.try_get("doc").map_err(map)?)?;
            Ok((id, package))
        })
        .collect()
}
