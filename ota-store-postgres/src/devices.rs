//! [`DeviceStore`] on PostgreSQL: profiles, groups, devices and their group memberships.

use crate::codec::{after, db_time, from_db_time, overfetch, page, DbTime};
use crate::device_edits::{GROUPS, PROFILES};
use crate::error::{conflict_as, map};
use crate::PgStore;
use async_trait::async_trait;
use ota_core::audit::AuditEntry;
use ota_core::device::{token_digest, DEVICE_TAKEN};
use ota_core::store::{DeviceSelector, DeviceStore, Page, PageRequest, StoreError};
use ota_core::{
    CurrentVersions, Device, DeviceGroup, DeviceId, DeviceProfile, GroupId, PackageKind, ProfileId,
    TenantId, TitleVersion,
};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row};
use std::collections::{BTreeSet, HashSet};
use uuid::Uuid;

/// The columns a device is read from (`d` is `ota_devices`).
/// The access token is not among them: only its digest is stored.
pub(crate) const DEVICE_COLUMNS: &str = "d.id, d.tenant_id, d.name, d.profile_id,
    d.fw_title, d.fw_version, d.sw_title, d.sw_version, d.created_at,
    ARRAY(SELECT g.group_id FROM ota_device_groups g WHERE g.device_id = d.id) AS groups";

fn title_version(title: Option<String>, version: Option<String>) -> Option<TitleVersion> {
    match (title, version) {
        (Some(title), Some(version)) => Some(TitleVersion { title, version }),
        _ => None,
    }
}

/// A device from a row of [`DEVICE_COLUMNS`].
pub(crate) fn decode_device(row: &PgRow) -> Result<Device, StoreError> {
    let groups: Vec<Uuid> = row.try_get("groups").map_err(map)?;
    Ok(Device {
        id: DeviceId(row.try_get("id").map_err(map)?),
        tenant_id: TenantId(row.try_get("tenant_id").map_err(map)?),
        name: row.try_get("name").map_err(map)?,
        profile_id: ProfileId(row.try_get("profile_id").map_err(map)?),
        groups: groups.into_iter().map(GroupId).collect(),
        access_token: String::new(),
        current: CurrentVersions {
            firmware: title_version(
                row.try_get("fw_title").map_err(map)?,
                row.try_get("fw_version").map_err(map)?,
            ),
            software: title_version(
                row.try_get("sw_title").map_err(map)?,
                row.try_get("sw_version").map_err(map)?,
            ),
        },
        created_at: from_db_time(row.try_get("created_at").map_err(map)?),
    })
}

fn decode_named(row: &PgRow) -> Result<(Uuid, TenantId, String, DbTime), StoreError> {
    Ok((
        row.try_get("id").map_err(map)?,
        TenantId(row.try_get("tenant_id").map_err(map)?),
        row.try_get("name").map_err(map)?,
        row.try_get("created_at").map_err(map)?,
    ))
}

fn decode_profile(row: &PgRow) -> Result<DeviceProfile, StoreError> {
    let (id, tenant_id, name, created_at) = decode_named(row)?;
    Ok(DeviceProfile {
        id: ProfileId(id),
        tenant_id,
        name,
        created_at: from_db_time(created_at),
    })
}

fn decode_group(row: &PgRow) -> Result<DeviceGroup, StoreError> {
    let (id, tenant_id, name, created_at) = decode_named(row)?;
    Ok(DeviceGroup {
        id: GroupId(id),
        tenant_id,
        name,
        created_at: from_db_time(created_at),
    })
}

/// Fails with NotFound unless every id of `ids` is a row of `table` in `tenant`.
async fn check_exist(
    exec: impl sqlx::Executor<'_, Database = Postgres>,
    table: &str,
    entity: &'static str,
    tenant: TenantId,
    ids: &[Uuid],
) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let found: Vec<Uuid> = sqlx::query_scalar(&format!(
        "SELECT id FROM {table} WHERE tenant_id = $1 AND id = ANY($2)"
    ))
    .bind(tenant.0)
    .bind(ids)
    .fetch_all(exec)
    .await
    .map_err(map)?;
    let found: HashSet<Uuid> = found.into_iter().collect();
    match ids.iter().find(|id| !found.contains(id)) {
        Some(missing) => Err(StoreError::not_found(entity, missing)),
        None => Ok(()),
    }
}

/// The device `id` of `tenant`, read with `exec`.
pub(crate) async fn fetch_device(
    exec: impl sqlx::Executor<'_, Database = Postgres>,
    tenant: TenantId,
    id: DeviceId,
) -> Result<Device, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {DEVICE_COLUMNS} FROM ota_devices d WHERE d.id = $1 AND d.tenant_id = $2"
    ))
    .bind(id.0)
    .bind(tenant.0)
    .fetch_optional(exec)
    .await
    .map_err(map)?
    .ok_or_else(|| StoreError::not_found("device", id))?;
    decode_device(&row)
}

#[async_trait]
impl DeviceStore for PgStore {
    async fn create_profile(
        &self,
        profile: &DeviceProfile,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        let mut tx = crate::audit::begin(&self.pool, audit).await?;
        sqlx::query(
            "INSERT INTO ota_profiles (id, tenant_id, name, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(profile.id.0)
        .bind(profile.tenant_id.0)
        .bind(&profile.name)
        .bind(db_time(profile.created_at))
        .execute(&mut *tx)
        .await
        .map_err(conflict_as(
            "profile",
            format!("a profile named {:?} exists", profile.name),
        ))?;
        tx.commit().await.map_err(map)?;
        Ok(())
    }

    async fn get_profile(
        &self,
        tenant: TenantId,
        id: ProfileId,
    ) -> Result<DeviceProfile, StoreError> {
        let row = sqlx::query("SELECT * FROM ota_profiles WHERE id = $1 AND tenant_id = $2")
            .bind(id.0)
            .bind(tenant.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?
            .ok_or_else(|| StoreError::not_found("profile", id))?;
        decode_profile(&row)
    }

    async fn list_profiles(
        &self,
        tenant: TenantId,
        request: PageRequest,
    ) -> Result<Page<DeviceProfile>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM ota_profiles WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(tenant.0)
        .bind(after(&request))
        .bind(overfetch(&request))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        let items = rows.iter().map(decode_profile).collect::<Result<_, _>>()?;
        Ok(page(items, &request, |p: &DeviceProfile| p.id.0))
    }

    async fn create_group(
        &self,
        group: &DeviceGroup,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        let mut tx = crate::audit::begin(&self.pool, audit).await?;
        sqlx::query(
            "INSERT INTO ota_groups (id, tenant_id, name, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(group.id.0)
        .bind(group.tenant_id.0)
        .bind(&group.name)
        .bind(db_time(group.created_at))
        .execute(&mut *tx)
        .await
        .map_err(conflict_as(
            "group",
            format!("a group named {:?} exists", group.name),
        ))?;
        tx.commit().await.map_err(map)?;
        Ok(())
    }

    async fn get_group(&self, tenant: TenantId, id: GroupId) -> Result<DeviceGroup, StoreError> {
        let row = sqlx::query("SELECT * FROM ota_groups WHERE id = $1 AND tenant_id = $2")
            .bind(id.0)
            .bind(tenant.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?
            .ok_or_else(|| StoreError::not_found("group", id))?;
        decode_group(&row)
    }

    async fn list_groups(
        &self,
        tenant: TenantId,
        request: PageRequest,
    ) -> Result<Page<DeviceGroup>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM ota_groups WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(tenant.0)
        .bind(after(&request))
        .bind(overfetch(&request))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        let items = rows.iter().map(decode_group).collect::<Result<_, _>>()?;
        Ok(page(items, &request, |g: &DeviceGroup| g.id.0))
    }

    async fn create_devices(
        &self,
        devices: &[Device],
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        if devices.is_empty() && audit.is_none() {
            return Ok(());
        }
        let mut tx = crate::audit::begin(&self.pool, audit).await?;
        // Profiles and groups must exist in each device's tenant.
        let mut by_tenant: std::collections::BTreeMap<TenantId, (BTreeSet<Uuid>, BTreeSet<Uuid>)> =
            Default::default();
        for d in devices {
            let entry = by_tenant.entry(d.tenant_id).or_default();
            entry.0.insert(d.profile_id.0);
            entry.1.extend(d.groups.iter().map(|g| g.0));
        }
        for (tenant, (profiles, groups)) in &by_tenant {
            let profiles: Vec<Uuid> = profiles.iter().copied().collect();
            let groups: Vec<Uuid> = groups.iter().copied().collect();
            check_exist(&mut *tx, "ota_profiles", "profile", *tenant, &profiles).await?;
            check_exist(&mut *tx, "ota_groups", "group", *tenant, &groups).await?;
        }
        // Duplicates within the batch are conflicts too.
        let mut names = HashSet::new();
        let mut tokens = HashSet::new();
        for d in devices {
            // One answer for a taken name and a taken token: no token oracle.
            if !names.insert((d.tenant_id, d.name.as_str()))
                || !tokens.insert(d.access_token.as_str())
            {
                return Err(StoreError::conflict("device", DEVICE_TAKEN));
            }
        }
        for batch in devices.chunks(10_000) {
            let mut cols: DeviceColumns = DeviceColumns::default();
            for d in batch {
                cols.push(d);
            }
            sqlx::query(
                "INSERT INTO ota_devices (id, tenant_id, name, profile_id, token_digest,
                     fw_title, fw_version, sw_title, sw_version, created_at)
                 SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::text[],
                     $6::text[], $7::text[], $8::text[], $9::text[], $10::timestamptz[])",
            )
            .bind(&cols.id)
            .bind(&cols.tenant)
            .bind(&cols.name)
            .bind(&cols.profile)
            .bind(&cols.token)
            .bind(&cols.fw_title)
            .bind(&cols.fw_version)
            .bind(&cols.sw_title)
            .bind(&cols.sw_version)
            .bind(&cols.created_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| match map(e) {
                StoreError::Conflict { message, .. } => StoreError::conflict(
                    "device",
                    if message.contains("ota_devices_token") || message.contains("ota_devices_name")
                    {
                        DEVICE_TAKEN.to_string()
                    } else {
                        "a device with one of these ids exists".to_string()
                    },
                ),
                other => other,
            })?;
            let (member, group): (Vec<Uuid>, Vec<Uuid>) = batch
                .iter()
                .flat_map(|d| d.groups.iter().map(move |g| (d.id.0, g.0)))
                .unzip();
            if !member.is_empty() {
                sqlx::query(
                    "INSERT INTO ota_device_groups (device_id, group_id)
                     SELECT * FROM UNNEST($1::uuid[], $2::uuid[])",
                )
                .bind(&member)
                .bind(&group)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
            }
        }
        tx.commit().await.map_err(map)?;
        Ok(())
    }

    async fn get_device(&self, tenant: TenantId, id: DeviceId) -> Result<Device, StoreError> {
        fetch_device(&self.pool, tenant, id).await
    }

    async fn find_devices_by_name(
        &self,
        tenant: TenantId,
        names: &[String],
    ) -> Result<Vec<Device>, StoreError> {
        let mut found = Vec::new();
        for batch in names.chunks(10_000) {
            let rows = sqlx::query(&format!(
                "SELECT {DEVICE_COLUMNS} FROM ota_devices d
                 WHERE d.tenant_id = $1 AND d.name = ANY($2)"
            ))
            .bind(tenant.0)
            .bind(batch)
            .fetch_all(&self.pool)
            .await
            .map_err(map)?;
            for row in &rows {
                found.push(decode_device(row)?);
            }
        }
        let mut seen = HashSet::new();
        found.retain(|d| seen.insert(d.id));
        Ok(found)
    }

    async fn device_by_token(&self, token: &str) -> Result<Device, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM ota_devices d WHERE d.token_digest = $1"
        ))
        .bind(token_digest(token))
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?
        .ok_or_else(|| StoreError::not_found("device", "access token"))?;
        decode_device(&row)
    }

    async fn list_devices(
        &self,
        tenant: TenantId,
        selector: DeviceSelector,
        request: PageRequest,
    ) -> Result<Page<Device>, StoreError> {
        let query = match selector {
            DeviceSelector::All => format!(
                "SELECT {DEVICE_COLUMNS} FROM ota_devices d
                 WHERE d.tenant_id = $1 AND d.id > $2 AND $3::uuid IS NULL ORDER BY d.id LIMIT $4"
            ),
            DeviceSelector::Profile(_) => format!(
                "SELECT {DEVICE_COLUMNS} FROM ota_devices d
                 WHERE d.tenant_id = $1 AND d.id > $2 AND d.profile_id = $3 ORDER BY d.id LIMIT $4"
            ),
            DeviceSelector::Group(_) => format!(
                "SELECT {DEVICE_COLUMNS} FROM ota_device_groups m JOIN ota_devices d ON d.id = m.device_id
                 WHERE d.tenant_id = $1 AND m.device_id > $2 AND m.group_id = $3
                 ORDER BY m.device_id LIMIT $4"
            ),
        };
        let key = match selector {
            DeviceSelector::All => None,
            DeviceSelector::Profile(p) => Some(p.0),
            DeviceSelector::Group(g) => Some(g.0),
        };
        let rows = sqlx::query(&query)
            .bind(tenant.0)
            .bind(after(&request))
            .bind(key)
            .bind(overfetch(&request))
            .fetch_all(&self.pool)
            .await
            .map_err(map)?;
        let items = rows.iter().map(decode_device).collect::<Result<_, _>>()?;
        Ok(page(items, &request, |d: &Device| d.id.0))
    }

    async fn count_devices(
        &self,
        tenant: TenantId,
        selector: DeviceSelector,
    ) -> Result<u64, StoreError> {
        let n: i64 = match selector {
            DeviceSelector::All => {
                sqlx::query_scalar("SELECT count(*) FROM ota_devices WHERE tenant_id = $1")
                    .bind(tenant.0)
                    .fetch_one(&self.pool)
                    .await
            }
            DeviceSelector::Profile(p) => {
                sqlx::query_scalar(
                    "SELECT count(*) FROM ota_devices WHERE tenant_id = $1 AND profile_id = $2",
                )
                .bind(tenant.0)
                .bind(p.0)
                .fetch_one(&self.pool)
                .await
            }
            DeviceSelector::Group(g) => sqlx::query_scalar(
                "SELECT count(*) FROM ota_device_groups m JOIN ota_groups g ON g.id = m.group_id
                 WHERE g.tenant_id = $1 AND m.group_id = $2",
            )
            .bind(tenant.0)
            .bind(g.0)
            .fetch_one(&self.pool)
            .await,
        }
        .map_err(map)?;
        Ok(crate::codec::to_u64(n))
    }

    async fn set_device_profile(
        &self,
        tenant: TenantId,
        id: DeviceId,
        profile: ProfileId,
        audit: Option<&AuditEntry>,
    ) -> Result<Device, StoreError> {
        let mut tx = crate::audit::begin(&self.pool, audit).await?;
        fetch_device(&mut *tx, tenant, id).await?;
        check_exist(&mut *tx, "ota_profiles", "profile", tenant, &[profile.0]).await?;
        sqlx::query("UPDATE ota_devices SET profile_id = $3 WHERE id = $1 AND tenant_id = $2")
            .bind(id.0)
            .bind(tenant.0)
            .bind(profile.0)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        let device = fetch_device(&mut *tx, tenant, id).await?;
        tx.commit().await.map_err(map)?;
        Ok(device)
    }

    async fn set_device_groups(
        &self,
        tenant: TenantId,
        id: DeviceId,
        groups: &BTreeSet<GroupId>,
        audit: Option<&AuditEntry>,
    ) -> Result<Device, StoreError> {
        let mut tx = crate::audit::begin(&self.pool, audit).await?;
        // Lock the device so that concurrent membership changes apply one after the other.
        let exists: Option<Uuid> = sqlx::query_scalar(
            "SELECT id FROM ota_devices WHERE id = $1 AND tenant_id = $2 FOR UPDATE",
        )
        .bind(id.0)
        .bind(tenant.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?;
        if exists.is_none() {
            return Err(StoreError::not_found("device", id));
        }
        let ids: Vec<Uuid> = groups.iter().map(|g| g.0).collect();
        check_exist(&mut *tx, "ota_groups", "group", tenant, &ids).await?;
        sqlx::query("DELETE FROM ota_device_groups WHERE device_id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        sqlx::query(
            "INSERT INTO ota_device_groups (device_id, group_id) SELECT $1, g FROM UNNEST($2::uuid[]) g",
        )
        .bind(id.0)
        .bind(&ids)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        let device = fetch_device(&mut *tx, tenant, id).await?;
        tx.commit().await.map_err(map)?;
        Ok(device)
    }

    async fn set_current_version(
        &self,
        tenant: TenantId,
        id: DeviceId,
        kind: PackageKind,
        current: Option<TitleVersion>,
    ) -> Result<(), StoreError> {
        crate::current_batch::set_current(&self.current, &self.pool, tenant, id, kind, current)
            .await
    }

    async fn rename_profile(
        &self,
        tenant: TenantId,
        id: ProfileId,
        name: &str,
        audit: Option<&AuditEntry>,
    ) -> Result<DeviceProfile, StoreError> {
        decode_profile(
            &self
                .rename_named(&PROFILES, tenant, id.0, name, audit)
                .await?,
        )
    }

    async fn delete_profile(
        &self,
        tenant: TenantId,
        id: ProfileId,
        audit: Option<&AuditEntry>,
    ) -> Result<DeviceProfile, StoreError> {
        decode_profile(&self.delete_named(&PROFILES, tenant, id.0, audit).await?)
    }

    async fn rename_group(
        &self,
        tenant: TenantId,
        id: GroupId,
        name: &str,
        audit: Option<&AuditEntry>,
    ) -> Result<DeviceGroup, StoreError> {
        decode_group(
            &self
                .rename_named(&GROUPS, tenant, id.0, name, audit)
                .await?,
        )
    }

    async fn delete_group(
        &self,
        tenant: TenantId,
        id: GroupId,
        audit: Option<&AuditEntry>,
    ) -> Result<DeviceGroup, StoreError> {
        decode_group(&self.delete_named(&GROUPS, tenant, id.0, audit).await?)
    }

    async fn rename_device(
        &self,
        tenant: TenantId,
        id: DeviceId,
        name: &str,
        audit: Option<&AuditEntry>,
    ) -> Result<Device, StoreError> {
        self.rename_device_row(tenant, id, name, audit).await
    }

    async fn delete_device(
        &self,
        tenant: TenantId,
        id: DeviceId,
        audit: Option<&AuditEntry>,
    ) -> Result<Device, StoreError> {
        self.delete_device_row(tenant, id, audit).await
    }

    async fn set_device_token(
        &self,
        tenant: TenantId,
        id: DeviceId,
        token: &str,
        audit: Option<&AuditEntry>,
    ) -> Result<Device, StoreError> {
        self.set_device_token_digest(tenant, id, token, audit).await
    }
}

/// Devices as column arrays for `UNNEST`.
#[derive(Default)]
struct DeviceColumns {
    id: Vec<Uuid>,
    tenant: Vec<Uuid>,
    name: Vec<String>,
    profile: Vec<Uuid>,
    token: Vec<String>,
    fw_title: Vec<Option<String>>,
    fw_version: Vec<Option<String>>,
    sw_title: Vec<Option<String>>,
    sw_version: Vec<Option<String>>,
    created_at: Vec<DbTime>,
}

impl DeviceColumns {
    fn push(&mut self, d: &Device) {
        self.id.push(d.id.0);
        self.tenant.push(d.tenant_id.0);
        self.name.push(d.name.clone());
        self.profile.push(d.profile_id.0);
        self.token.push(token_digest(&d.access_token));
        let fw = d.current.firmware.as_ref();
        let sw = d.current.software.as_ref();
        self.fw_title.push(fw.map(|t| t.title.clone()));
        self.fw_version.push(fw.map(|t| t.version.clone()));
        self.sw_title.push(sw.map(|t| t.title.clone()));
        self.sw_version.push(sw.map(|t| t.version.clone()));
        self.created_at.push(db_time(d.created_at));
    }
}
