//! [`PackageStore`] on PostgreSQL: metadata rows; content in [`crate::content`].

use crate::codec::{after, from_json, name_of, overfetch, page, to_json};
use crate::error::{conflict_as, map};
use crate::PgStore;
use async_trait::async_trait;
use ota_core::audit::AuditEntry;
use ota_core::checksum::Checksum;
use ota_core::store::{
    AuditOf, ByteRange, ByteStream, PackageStore, Page, PageRequest, StoreError,
};
use ota_core::{Package, PackageId, PackageKind, TenantId};
use sqlx::{Postgres, Row};

/// The conflict message for a package that collides with a stored one.
pub(crate) fn duplicate(p: &Package) -> String {
    format!(
        "{} {} {} exists (or its id does)",
        p.kind, p.title, p.version
    )
}

/// Inserts the metadata row of `package`.
pub(crate) async fn insert(
    exec: impl sqlx::Executor<'_, Database = Postgres>,
    package: &Package,
    chunk_size: Option<i32>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO ota_packages (id, tenant_id, kind, title, version, chunk_size, doc)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(package.id.0)
    .bind(package.tenant_id.0)
    .bind(name_of(&package.kind))
    .bind(&package.title)
    .bind(&package.version)
    .bind(chunk_size)
    .bind(to_json(package)?)
    .execute(exec)
    .await
    .map_err(conflict_as("package", duplicate(package)))?;
    Ok(())
}

fn decode(row: &sqlx::postgres::PgRow) -> Result<Package, StoreError> {
    from_json("package", row.try_get("doc").map_err(map)?)
}

#[async_trait]
impl PackageStore for PgStore {
    async fn create_package(
        &self,
        package: &Package,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        let mut tx = crate::audit::begin(&self.pool, audit).await?;
        insert(&mut *tx, package, None).await?;
        tx.commit().await.map_err(map)
    }

    async fn create_package_with_content(
        &self,
        package: Package,
        expected: Option<Checksum>,
        max_size: Option<u64>,
        content: ByteStream,
        audit: Option<AuditOf<'_, Package>>,
    ) -> Result<Package, StoreError> {
        crate::upload::upload(self, package, expected, max_size, content, audit).await
    }

    async fn get_package(&self, tenant: TenantId, id: PackageId) -> Result<Package, StoreError> {
        let row = sqlx::query("SELECT doc FROM ota_packages WHERE id = $1 AND tenant_id = $2 AND upload_until IS NULL")
            .bind(id.0)
            .bind(tenant.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?
            .ok_or_else(|| StoreError::not_found("package", id))?;
        decode(&row)
    }

    async fn find_package(
        &self,
        tenant: TenantId,
        kind: PackageKind,
        title: &str,
        version: &str,
    ) -> Result<Option<Package>, StoreError> {
        let row = sqlx::query(
            "SELECT doc FROM ota_packages
             WHERE tenant_id = $1 AND kind = $2 AND title = $3 AND version = $4
                 AND upload_until IS NULL",
        )
        .bind(tenant.0)
        .bind(name_of(&kind))
        .bind(title)
        .bind(version)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        row.as_ref().map(decode).transpose()
    }

    async fn list_packages(
        &self,
        tenant: TenantId,
        kind: Option<PackageKind>,
        request: PageRequest,
    ) -> Result<Page<Package>, StoreError> {
        let rows = sqlx::query(
            "SELECT doc FROM ota_packages
             WHERE tenant_id = $1 AND id > $2 AND ($3::text IS NULL OR kind = $3)
                 AND upload_until IS NULL
             ORDER BY id LIMIT $4",
        )
        .bind(tenant.0)
        .bind(after(&request))
        .bind(kind.map(|k| name_of(&k)))
        .bind(overfetch(&request))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        let items = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        Ok(page(items, &request, |p| p.id.0))
    }

    async fn delete_package(
        &self,
        tenant: TenantId,
        id: PackageId,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        // Assignments refer to packages through a foreign key (ON DELETE RESTRICT): a
        // package assigned by a concurrent caller refuses the delete.
        let mut tx = crate::audit::begin(&self.pool, audit).await?;
        let done = sqlx::query(
            "DELETE FROM ota_packages WHERE id = $1 AND tenant_id = $2 AND upload_until IS NULL",
        )
        .bind(id.0)
        .bind(tenant.0)
        .execute(&mut *tx)
        .await
        .map_err(|e| match map(e) {
            StoreError::NotFound { .. } => {
                StoreError::conflict("package", format!("package {id} is assigned"))
            }
            other => other,
        })?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("package", id));
        }
        tx.commit().await.map_err(map)
    }

    async fn read_content(
        &self,
        tenant: TenantId,
        id: PackageId,
        range: ByteRange,
    ) -> Result<ByteStream, StoreError> {
        crate::content::download(self, tenant, id, range).await
    }
}
