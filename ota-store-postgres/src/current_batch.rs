//! Devices' current versions written for concurrent callers together (see
//! [`crate::batcher`]): a device reporting the version it now runs (every completed update)
//! costs a write and a commit; under load, many of them become one statement and one commit.
//! Each caller gets its own answer (done, or unknown device); when the batched statement
//! fails, each is written on its own.

use crate::batcher::{lost_answer, BatchJob, Batcher};
use crate::error::map;
use ota_core::store::StoreError;
use ota_core::{DeviceId, PackageKind, TenantId, TitleVersion};
use sqlx::PgPool;
use std::collections::HashSet;
use tokio::sync::oneshot;
use uuid::Uuid;

/// One caller's write.
pub(crate) struct CurrentJob {
    tenant: TenantId,
    device: DeviceId,
    kind: PackageKind,
    current: Option<TitleVersion>,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

impl BatchJob for CurrentJob {
    async fn run(pool: PgPool, jobs: Vec<Self>) {
        // One write per device in a statement; another for the same device goes after.
        let mut seen = HashSet::new();
        let (mut batch, mut after): (Vec<CurrentJob>, Vec<CurrentJob>) = (Vec::new(), Vec::new());
        for job in jobs {
            if seen.insert(job.device) {
                batch.push(job);
            } else {
                after.push(job);
            }
        }
        // Rows locked in id order, like every other batch of writers.
        batch.sort_by_key(|j| j.device.0);
        if batch.len() > 1 {
            match write_many(&pool, &batch).await {
                Ok(found) => {
                    for (job, found) in batch.into_iter().zip(found) {
                        let answer = if found {
                            Ok(())
                        } else {
                            Err(StoreError::not_found("device", job.device))
                        };
                        let _ = job.reply.send(answer);
                    }
                }
                Err(_) => {
                    after.splice(0..0, batch);
                }
            }
        } else {
            after.splice(0..0, batch);
        }
        for job in after {
            let answer = write_one(&pool, job.tenant, job.device, job.kind, job.current).await;
            let _ = job.reply.send(answer);
        }
    }
}

/// Records what `device` runs for `kind`, written together with other callers' writes.
pub(crate) async fn set_current(
    batcher: &Batcher<CurrentJob>,
    pool: &PgPool,
    tenant: TenantId,
    device: DeviceId,
    kind: PackageKind,
    current: Option<TitleVersion>,
) -> Result<(), StoreError> {
    let (reply, answer) = oneshot::channel();
    let job = CurrentJob {
        tenant,
        device,
        kind,
        current,
        reply,
    };
    if let Err(job) = batcher.submit(pool, job).await {
        return write_one(pool, job.tenant, job.device, job.kind, job.current).await;
    }
    answer.await.unwrap_or_else(|_| {
        Err(lost_answer(
            "the current version may or may not have been written",
        ))
    })
}

fn columns(kind: PackageKind) -> (&'static str, &'static str) {
    match kind {
        PackageKind::Firmware => ("fw_title", "fw_version"),
        PackageKind::Software => ("sw_title", "sw_version"),
    }
}

/// One write on its own. Reports repeat the running version: the row is rewritten only
/// when it changes.
pub(crate) async fn write_one(
    pool: &PgPool,
    tenant: TenantId,
    id: DeviceId,
    kind: PackageKind,
    current: Option<TitleVersion>,
) -> Result<(), StoreError> {
    let (title, version) = match current {
        Some(tv) => (Some(tv.title), Some(tv.version)),
        None => (None, None),
    };
    let (t, v) = columns(kind);
    let sql = format!(
        "WITH d AS (SELECT id FROM ota_devices WHERE id = $1 AND tenant_id = $2),
         u AS (
            UPDATE ota_devices SET {t} = $3, {v} = $4
            WHERE id IN (SELECT id FROM d)
              AND ({t}, {v}) IS DISTINCT FROM ($3::text, $4::text)
         )
         SELECT count(*) FROM d"
    );
    let found: i64 = sqlx::query_scalar(&sql)
        .bind(id.0)
        .bind(tenant.0)
        .bind(title)
        .bind(version)
        .fetch_one(pool)
        .await
        .map_err(map)?;
    if found == 0 {
        return Err(StoreError::not_found("device", id));
    }
    Ok(())
}

/// Many writes (one per device) in one statement; whether each device was found, in order.
async fn write_many(pool: &PgPool, jobs: &[CurrentJob]) -> Result<Vec<bool>, StoreError> {
    let ids: Vec<Uuid> = jobs.iter().map(|j| j.device.0).collect();
    let tenants: Vec<Uuid> = jobs.iter().map(|j| j.tenant.0).collect();
    let firmware: Vec<bool> = jobs
        .iter()
        .map(|j| j.kind == PackageKind::Firmware)
        .collect();
    let titles: Vec<Option<String>> = jobs
        .iter()
        .map(|j| j.current.as_ref().map(|c| c.title.clone()))
        .collect();
    let versions: Vec<Option<String>> = jobs
        .iter()
        .map(|j| j.current.as_ref().map(|c| c.version.clone()))
        .collect();
    let found: Vec<Uuid> = sqlx::query_scalar(
        "WITH i AS (
            SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::bool[], $4::text[], $5::text[])
                AS t(id, tenant_id, fw, title, version)
         ),
         d AS (
            SELECT d.id, i.fw, i.title, i.version,
                CASE WHEN i.fw THEN (d.fw_title, d.fw_version) ELSE (d.sw_title, d.sw_version) END
                    IS DISTINCT FROM (i.title, i.version) AS changed
            FROM ota_devices d JOIN i ON d.id = i.id AND d.tenant_id = i.tenant_id
            WHERE d.id = ANY($1)
         ),
         u AS (
            UPDATE ota_devices t SET
                fw_title = CASE WHEN d.fw THEN d.title ELSE t.fw_title END,
                fw_version = CASE WHEN d.fw THEN d.version ELSE t.fw_version END,
                sw_title = CASE WHEN d.fw THEN t.sw_title ELSE d.title END,
                sw_version = CASE WHEN d.fw THEN t.sw_version ELSE d.version END
            FROM d WHERE t.id = d.id AND d.changed
         )
         SELECT id FROM d",
    )
    .bind(&ids)
    .bind(&tenants)
    .bind(&firmware)
    .bind(&titles)
    .bind(&versions)
    .fetch_all(pool)
    .await
    .map_err(map)?;
    let found: HashSet<Uuid> = found.into_iter().collect();
    Ok(ids.iter().map(|id| found.contains(id)).collect())
}
