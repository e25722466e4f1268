//! [`AuditStore`] on PostgreSQL.

use crate::codec::{after, from_json, overfetch, page, to_json};
use crate::error::map;
use crate::PgStore;
use async_trait::async_trait;
use ota_core::audit::AuditEntry;
use ota_core::store::{AuditStore, Page, PageRequest, StoreError};
use ota_core::TenantId;

#[async_trait]
impl AuditStore for PgStore {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        // Append only: an id that exists (in any tenant) replaces nothing.
        let done = sqlx::query(
            "INSERT INTO ota_audit (id, tenant_id, doc) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(entry.id)
        .bind(entry.tenant_id.0)
        .bind(to_json(entry)?)
        .execute(&self.pool)
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
