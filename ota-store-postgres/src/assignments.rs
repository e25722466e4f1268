//! [`AssignmentStore`] on PostgreSQL.

use crate::codec::{from_json, name_of, to_json};
use crate::error::map;
use crate::PgStore;
use async_trait::async_trait;
use ota_core::audit::AuditEntry;
use ota_core::store::{AssignmentStore, AuditOf, StoreError};
use ota_core::{Assignment, AssignmentTarget, Device, PackageId, PackageKind, TenantId};
use sqlx::Row;
use uuid::Uuid;

/// The target as (type, id) columns.
fn target_columns(target: &AssignmentTarget) -> (&'static str, Uuid) {
    match target {
        AssignmentTarget::Device(id) => ("device", id.0),
        AssignmentTarget::Group(id) => ("group", id.0),
        AssignmentTarget::Profile(id) => ("profile", id.0),
    }
}

fn decode_all(rows: Vec<sqlx::postgres::PgRow>) -> Result<Vec<Assignment>, StoreError> {
    rows.iter()
        .map(|r| from_json("assignment", r.try_get("doc").map_err(map)?))
        .collect()
}

#[async_trait]
impl AssignmentStore for PgStore {
    async fn put_assignment(
        &self,
        assignment: &Assignment,
        audit: Option<&AuditEntry>,
    ) -> Result<Option<Assignment>, StoreError> {
        let (target_type, target_id) = target_columns(&assignment.target);
        let mut tx = crate::audit::begin(&self.pool, audit).await?;
        let kind = name_of(&assignment.kind);
        let old: Option<serde_json::Value> = sqlx::query_scalar(
            "SELECT doc FROM ota_assignments
             WHERE tenant_id = $1 AND kind = $2 AND target_type = $3 AND target_id = $4
             FOR UPDATE",
        )
        .bind(assignment.tenant_id.0)
        .bind(&kind)
        .bind(target_type)
        .bind(target_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?;
        sqlx::query(
            "INSERT INTO ota_assignments (tenant_id, kind, target_type, target_id, id, package_id, doc)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (tenant_id, kind, target_type, target_id)
             DO UPDATE SET id = excluded.id, package_id = excluded.package_id, doc = excluded.doc",
        )
        .bind(assignment.tenant_id.0)
        .bind(&kind)
        .bind(target_type)
        .bind(target_id)
        .bind(assignment.id.0)
        .bind(assignment.package_id.0)
        .bind(to_json(assignment)?)
        .execute(&mut *tx)
        .await
        .map_err(|e| match map(e) {
            // The foreign key to the package: deleted meanwhile (or never there).
            StoreError::NotFound { .. } => StoreError::not_found("package", assignment.package_id),
            other => other,
        })?;
        tx.commit().await.map_err(map)?;
        old.map(|doc| from_json("assignment", doc)).transpose()
    }

    async fn remove_assignment(
        &self,
        tenant: TenantId,
        kind: PackageKind,
        target: AssignmentTarget,
        audit: Option<AuditOf<'_, Assignment>>,
    ) -> Result<Option<Assignment>, StoreError> {
        let (target_type, target_id) = target_columns(&target);
        let mut tx = self.pool.begin().await.map_err(map)?;
        let old: Option<serde_json::Value> = sqlx::query_scalar(
            "DELETE FROM ota_assignments
             WHERE tenant_id = $1 AND kind = $2 AND target_type = $3 AND target_id = $4
             RETURNING doc",
        )
        .bind(tenant.0)
        .bind(name_of(&kind))
        .bind(target_type)
        .bind(target_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?;
        let Some(old) = old else {
            return Ok(None);
        };
        let old: Assignment = from_json("assignment", old)?;
        // Built from the row removed, and committed with its removal.
        if let Some(of) = audit {
            crate::audit::insert(&mut tx, &of(&old)).await?;
        }
        tx.commit().await.map_err(map)?;
        Ok(Some(old))
    }

    async fn get_assignment(
        &self,
        tenant: TenantId,
        kind: PackageKind,
        target: AssignmentTarget,
    ) -> Result<Option<Assignment>, StoreError> {
        let (target_type, target_id) = target_columns(&target);
        let doc: Option<serde_json::Value> = sqlx::query_scalar(
            "SELECT doc FROM ota_assignments
             WHERE tenant_id = $1 AND kind = $2 AND target_type = $3 AND target_id = $4",
        )
        .bind(tenant.0)
        .bind(name_of(&kind))
        .bind(target_type)
        .bind(target_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        doc.map(|doc| from_json("assignment", doc)).transpose()
    }

    async fn list_assignments(
        &self,
        tenant: TenantId,
        kind: Option<PackageKind>,
    ) -> Result<Vec<Assignment>, StoreError> {
        let rows = sqlx::query(
            "SELECT doc FROM ota_assignments
             WHERE tenant_id = $1 AND ($2::text IS NULL OR kind = $2) ORDER BY id",
        )
        .bind(tenant.0)
        .bind(kind.map(|k| name_of(&k)))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        decode_all(rows)
    }

    async fn assignments_for_device(
        &self,
        device: &Device,
        kind: PackageKind,
    ) -> Result<Vec<Assignment>, StoreError> {
        let groups: Vec<Uuid> = device.groups.iter().map(|g| g.0).collect();
        let rows = sqlx::query(
            "SELECT doc FROM ota_assignments
             WHERE tenant_id = $1 AND kind = $2 AND (
                 (target_type = 'device' AND target_id = $3)
                 OR (target_type = 'group' AND target_id = ANY($4))
                 OR (target_type = 'profile' AND target_id = $5))
             ORDER BY CASE target_type WHEN 'device' THEN 0 WHEN 'group' THEN 1 ELSE 2 END, target_id",
        )
        .bind(device.tenant_id.0)
        .bind(name_of(&kind))
        .bind(device.id.0)
        .bind(&groups)
        .bind(device.profile_id.0)
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        decode_all(rows)
    }

    async fn assignments_of_package(
        &self,
        tenant: TenantId,
        package: PackageId,
    ) -> Result<Vec<Assignment>, StoreError> {
        let rows = sqlx::query(
            "SELECT doc FROM ota_assignments WHERE tenant_id = $1 AND package_id = $2 ORDER BY id",
        )
        .bind(tenant.0)
        .bind(package.0)
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        decode_all(rows)
    }
}
