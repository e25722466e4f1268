//! [`ApiKeyStore`] on PostgreSQL: one row per key, found by its digest.

use crate::codec::{after, db_time, db_time_opt, from_db_time, overfetch, page, DbTime};
use crate::error::{conflict_as, map};
use crate::PgStore;
use async_trait::async_trait;
use ota_core::audit::AuditEntry;
use ota_core::clock::Timestamp;
use ota_core::ids::{ApiKeyId, TenantId};
use ota_core::store::{ApiKeyDigest, ApiKeyRecord, ApiKeyStore, Page, PageRequest, StoreError};
use uuid::Uuid;

const COLUMNS: &str = "id, tenant_id, name, role, digest, created_at, revoked_at";

type Row = (Uuid, Uuid, String, String, Vec<u8>, DbTime, Option<DbTime>);

fn record(row: Row) -> Result<ApiKeyRecord, StoreError> {
    let (id, tenant, name, role, digest, created_at, revoked_at) = row;
    let digest: [u8; 32] = digest.try_into().map_err(|_| StoreError::Backend {
        message: format!("stored api key {id} has a digest that is not 32 bytes"),
    })?;
    Ok(ApiKeyRecord {
        id: ApiKeyId(id),
        tenant_id: TenantId(tenant),
        name,
        role,
        digest: ApiKeyDigest(digest),
        created_at: from_db_time(created_at),
        revoked_at: revoked_at.map(from_db_time),
    })
}

#[async_trait]
impl ApiKeyStore for PgStore {
    async fn create_api_key(
        &self,
        k: &ApiKeyRecord,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        let mut tx = crate::audit::begin(&self.pool, audit).await?;
        sqlx::query(&format!(
            "INSERT INTO ota_api_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(k.id.0)
        .bind(k.tenant_id.0)
        .bind(&k.name)
        .bind(&k.role)
        .bind(&k.digest.0[..])
        .bind(db_time(k.created_at))
        .bind(db_time_opt(k.revoked_at))
        .execute(&mut *tx)
        .await
        .map_err(conflict_as(
            "api key",
            format!(
                "the key exists already, or the name {:?} is taken by another key",
                k.name
            ),
        ))?;
        tx.commit().await.map_err(map)
    }

    async fn list_api_keys(
        &self,
        tenant: TenantId,
        request: PageRequest,
    ) -> Result<Page<ApiKeyRecord>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM ota_api_keys WHERE tenant_id = $1 AND id > $2
             ORDER BY id LIMIT $3"
        ))
        .bind(tenant.0)
        .bind(after(&request))
        .bind(overfetch(&request))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        let items = rows
            .into_iter()
            .map(record)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page(items, &request, |k| k.id.0))
    }

    async fn get_api_key(
        &self,
        tenant: TenantId,
        id: ApiKeyId,
    ) -> Result<ApiKeyRecord, StoreError> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM ota_api_keys WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.0)
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        row.map(record)
            .unwrap_or_else(|| Err(StoreError::not_found("api key", id)))
    }

    async fn api_key_by_digest(&self, digest: &ApiKeyDigest) -> Result<ApiKeyRecord, StoreError> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM ota_api_keys WHERE digest = $1"
        ))
        .bind(&digest.0[..])
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        row.map(record)
            .unwrap_or_else(|| Err(StoreError::not_found("api key", "with this digest")))
    }

    async fn revoke_api_key(
        &self,
        tenant: TenantId,
        id: ApiKeyId,
        at: Timestamp,
        audit: Option<&AuditEntry>,
    ) -> Result<ApiKeyRecord, StoreError> {
        let mut tx = crate::audit::begin(&self.pool, audit).await?;
        let row: Option<Row> = sqlx::query_as(&format!(
            "UPDATE ota_api_keys SET revoked_at = COALESCE(revoked_at, $3)
             WHERE tenant_id = $1 AND id = $2 RETURNING {COLUMNS}"
        ))
        .bind(tenant.0)
        .bind(id.0)
        .bind(db_time(at))
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?;
        let record = row
            .map(record)
            .unwrap_or_else(|| Err(StoreError::not_found("api key", id)))?;
        tx.commit().await.map_err(map)?;
        Ok(record)
    }
}
