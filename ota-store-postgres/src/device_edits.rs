//! Renames and deletes of profiles, groups and devices, and access-token changes, on
//! PostgreSQL (the [`DeviceStore`](ota_core::store::DeviceStore) methods call these).
//!
//! A delete locks the row it removes, then checks what uses it in the same transaction: a
//! device being created with a profile or group that is being deleted waits on the foreign
//! key's lock and is then refused.

use crate::devices::fetch_device;
use crate::error::{conflict_as, map};
use crate::PgStore;
use ota_core::audit::AuditEntry;
use ota_core::device::{token_digest, DEVICE_TAKEN};
use ota_core::store::StoreError;
use ota_core::{Device, DeviceId, TenantId};
use uuid::Uuid;

/// A profile's or group's table, assignment target type and what its users are called.
pub(crate) struct Named {
    pub table: &'static str,
    pub entity: &'static str,
    /// The query counting the devices that use it (`$1` its id).
    pub users: &'static str,
}

pub(crate) const PROFILES: Named = Named {
    table: "ota_profiles",
    entity: "profile",
    users: "SELECT EXISTS (SELECT 1 FROM ota_devices WHERE profile_id = $1)",
};

pub(crate) const GROUPS: Named = Named {
    table: "ota_groups",
    entity: "group",
    users: "SELECT EXISTS (SELECT 1 FROM ota_device_groups WHERE group_id = $1)",
};

impl PgStore {
    /// Renames the profile or group `id`; its row (id, tenant, name, created_at).
    pub(crate) async fn rename_named(
        &self,
        what: &Named,
        tenant: TenantId,
        id: Uuid,
        name: &str,
        audit: Option<&AuditEntry>,
    ) -> Result<sqlx::postgres::PgRow, StoreError> {
        let mut tx = crate::audit::begin(&self.pool, audit).await?;
        let row = sqlx::query(&format!(
            "UPDATE {} SET name = $3 WHERE id = $1 AND tenant_id = $2 RETURNING *",
            what.table
        ))
        .bind(id)
        .bind(tenant.0)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await
        .map_err(conflict_as(
            what.entity,
            format!("a {} named {name:?} exists", what.entity),
        ))?
        .ok_or_else(|| StoreError::not_found(what.entity, id))?;
        tx.commit().await.map_err(map)?;
        Ok(row)
    }

    /// Deletes the profile or group `id` unless devices or assignments use it; its row.
    pub(crate) async fn delete_named(
        &self,
        what: &Named,
        tenant: TenantId,
        id: Uuid,
        audit: Option<&AuditEntry>,
    ) -> Result<sqlx::postgres::PgRow, StoreError> {
        let mut tx = crate::audit::begin(&self.pool, audit).await?;
        let row = sqlx::query(&format!(
            "SELECT * FROM {} WHERE id = $1 AND tenant_id = $2 FOR UPDATE",
            what.table
        ))
        .bind(id)
        .bind(tenant.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?
        .ok_or_else(|| StoreError::not_found(what.entity, id))?;
        let used: bool = sqlx::query_scalar(what.users)
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(map)?;
        let assigned: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM ota_assignments
                            WHERE tenant_id = $1 AND target_type = $2 AND target_id = $3)",
        )
        .bind(tenant.0)
        .bind(what.entity)
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .map_err(map)?;
        if used || assigned {
            return Err(StoreError::conflict(
                what.entity,
                format!("{} {id} is in use by devices or assignments", what.entity),
            ));
        }
        sqlx::query(&format!("DELETE FROM {} WHERE id = $1", what.table))
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        tx.commit().await.map_err(map)?;
        Ok(row)
    }

    pub(crate) async fn rename_device_row(
        &self,
        tenant: TenantId,
        id: DeviceId,
        name: &str,
        audit: Option<&AuditEntry>,
    ) -> Result<Device, StoreError> {
        let mut tx = crate::audit::begin(&self.pool, audit).await?;
        let done = sqlx::query("UPDATE ota_devices SET name = $3 WHERE id = $1 AND tenant_id = $2")
            .bind(id.0)
            .bind(tenant.0)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(conflict_as("device", DEVICE_TAKEN))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("device", id));
        }
        let device = fetch_device(&mut *tx, tenant, id).await?;
        tx.commit().await.map_err(map)?;
        Ok(device)
    }

    pub(crate) async fn delete_device_row(
        &self,
        tenant: TenantId,
        id: DeviceId,
        audit: Option<&AuditEntry>,
    ) -> Result<Device, StoreError> {
        let mut tx = crate::audit::begin(&self.pool, audit).await?;
        let device = fetch_device(&mut *tx, tenant, id).await?;
        sqlx::query(
            "DELETE FROM ota_assignments
             WHERE tenant_id = $1 AND target_type = 'device' AND target_id = $2",
        )
        .bind(tenant.0)
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        // Memberships go with it (ON DELETE CASCADE).
        sqlx::query("DELETE FROM ota_devices WHERE id = $1 AND tenant_id = $2")
            .bind(id.0)
            .bind(tenant.0)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        tx.commit().await.map_err(map)?;
        Ok(device)
    }

    pub(crate) async fn set_device_token_digest(
        &self,
        tenant: TenantId,
        id: DeviceId,
        token: &str,
        audit: Option<&AuditEntry>,
    ) -> Result<Device, StoreError> {
        let mut tx = crate::audit::begin(&self.pool, audit).await?;
        let done = sqlx::query(
            "UPDATE ota_devices SET token_digest = $3 WHERE id = $1 AND tenant_id = $2",
        )
        .bind(id.0)
        .bind(tenant.0)
        .bind(token_digest(token))
        .execute(&mut *tx)
        .await
        .map_err(conflict_as("device", DEVICE_TAKEN))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("device", id));
        }
        let device = fetch_device(&mut *tx, tenant, id).await?;
        tx.commit().await.map_err(map)?;
        Ok(device)
    }
}
