//! Reads of a device's latest update from concurrent callers, coalesced (see
//! [`crate::batcher`]): every report starts with one, so under load many of them go to the
//! database as one query.

use crate::batcher::{lost_answer, BatchJob, Batcher};
use crate::codec::name_of;
use crate::error::map;
use crate::updates::{decode_update, UPDATE_COLUMNS};
use ota_core::store::StoreError;
use ota_core::update::Update;
use ota_core::{DeviceId, PackageKind, TenantId};
use sqlx::{PgPool, Row};
use tokio::sync::oneshot;
use uuid::Uuid;

/// One caller's read.
pub(crate) struct LatestJob {
    tenant: TenantId,
    device: DeviceId,
    kind: PackageKind,
    reply: oneshot::Sender<Result<Option<Update>, StoreError>>,
}

impl BatchJob for LatestJob {
    async fn run(pool: PgPool, jobs: Vec<Self>) {
        if jobs.len() == 1 {
            for job in jobs {
                let result = latest_one(&pool, job.tenant, job.device, job.kind).await;
                let _ = job.reply.send(result);
            }
            return;
        }
        match latest_many(&pool, &jobs).await {
            Ok(mut found) => {
                for (i, job) in jobs.into_iter().enumerate() {
                    let _ = job.reply.send(Ok(found[i].take()));
                }
            }
            Err(_) => {
                // Each on its own, so that each gets its own answer.
                for job in jobs {
                    let result = latest_one(&pool, job.tenant, job.device, job.kind).await;
                    let _ = job.reply.send(result);
                }
            }
        }
    }
}

/// The latest update of `device` for `kind`, read together with other callers' reads.
pub(crate) async fn latest(
    batcher: &Batcher<LatestJob>,
    pool: &PgPool,
    tenant: TenantId,
    device: DeviceId,
    kind: PackageKind,
) -> Result<Option<Update>, StoreError> {
    let (reply, answer) = oneshot::channel();
    let job = LatestJob {
        tenant,
        device,
        kind,
        reply,
    };
    if let Err(job) = batcher.submit(pool, job).await {
        return latest_one(pool, job.tenant, job.device, job.kind).await;
    }
    answer
        .await
        .unwrap_or_else(|_| Err(lost_answer("the read did not complete")))
}

/// One read on its own.
pub(crate) async fn latest_one(
    pool: &PgPool,
    tenant: TenantId,
    device: DeviceId,
    kind: PackageKind,
) -> Result<Option<Update>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {UPDATE_COLUMNS} FROM ota_updates
         WHERE device_id = $1 AND kind = $2 AND tenant_id = $3
         ORDER BY seq DESC LIMIT 1"
    ))
    .bind(device.0)
    .bind(name_of(&kind))
    .bind(tenant.0)
    .fetch_optional(pool)
    .await
    .map_err(map)?;
    row.as_ref().map(decode_update).transpose()
}

/// Many reads in one query; the answers in the order of `jobs`.
async fn latest_many(pool: &PgPool, jobs: &[LatestJob]) -> Result<Vec<Option<Update>>, StoreError> {
    let tenants: Vec<Uuid> = jobs.iter().map(|j| j.tenant.0).collect();
    let devices: Vec<Uuid> = jobs.iter().map(|j| j.device.0).collect();
    let kinds: Vec<String> = jobs.iter().map(|j| name_of(&j.kind)).collect();
    let rows = sqlx::query(&format!(
        "SELECT r.n, u.* FROM UNNEST($1::uuid[], $2::uuid[], $3::text[])
             WITH ORDINALITY AS r(tenant_id, device_id, kind, n)
         JOIN LATERAL (
             SELECT {UPDATE_COLUMNS} FROM ota_updates
             WHERE device_id = r.device_id AND kind = r.kind AND tenant_id = r.tenant_id
             ORDER BY seq DESC LIMIT 1
         ) u ON true"
    ))
    .bind(&tenants)
    .bind(&devices)
    .bind(&kinds)
    .fetch_all(pool)
    .await
    .map_err(map)?;
    let mut found: Vec<Option<Update>> = (0..jobs.len()).map(|_| None).collect();
    for row in &rows {
        let n: i64 = row.try_get("n").map_err(map)?;
        let slot = usize::try_from(n - 1)
            .ok()
            .and_then(|i| found.get_mut(i))
            .ok_or_else(|| StoreError::Backend {
                message: format!("latest update read returned row number {n}"),
            })?;
        *slot = Some(decode_update(row)?);
    }
    Ok(found)
}
