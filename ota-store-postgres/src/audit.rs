//! [`AuditStore`] on PostgreSQL.

use crate::codec::{after, from_json, overfetch, page, to_json};
use crate::error::map;
use crate::PgStore;
use async_trait::async_trait;
use ota_core::audit::AuditEntry;
use ota_core::store::{AuditStore, Page, PageRequest, StoreError};
use ota_core::TenantId;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

/// Starts the transaction of an audited write (see
/// [audited writes](ota_core::store#audited-writes)): `entry` is appended first, so the action
/// the caller writes next in `tx` commits with it or not at all, and an entry whose id exists
/// refuses the action before it starts.
pub(crate) async fn begin(
    pool: &PgPool,
    entry: Option<&AuditEntry>,
) -> Result<Transaction<'static, Postgres>, StoreError> {
    let mut tx = pool.begin().await.map_err(map)?;
    if let Some(entry) = entry {
        insert(&mut tx, entry).await?;
    }
    Ok(tx)
}

/// Appends `entry` in the caller's transaction. Append only: an id that exists (in any
/// tenant) replaces nothing and is refused with [`StoreError::Conflict`].
pub(crate) async fn insert(conn: &mut PgConnection, entry: &AuditEntry) -> Result<(), StoreError> {
    let done = sqlx::query(
        "INSERT INTO ota_audit (id, tenant_id, doc) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(entry.id)
    .bind(entry.tenant_id.0)
    .bind(to_json(entry)?)
    .execute(conn)
    .await
    .map_err(map)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::conflict(
            "audit entry",
            format!("id {} exists; the audit log is append only", entry.id),
        ));
    }
    Ok(())
}

#[async_trait]
impl AuditStore for PgStore {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(map)?;
        insert(&mut conn, entry).await
    }

    async fn list_audit(
        &self,
        tenant: TenantId,
        request: PageRequest,
    ) -> Result<Page<AuditEntry>, StoreError> {
        let docs: Vec<serde_json::Value> = sqlx::query_scalar(
            "SELECT doc FROM ota_audit WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(tenant.0)
        .bind(after(&request))
        .bind(overfetch(&request))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        let items = docs
            .into_iter()
            .map(|d| from_json("audit entry", d))
            .collect::<Result<Vec<AuditEntry>, _>>()?;
        Ok(page(items, &request, |e| e.id))
    }
}
