//! [`DeviceStore`] in memory.

use super::tables::Tables;
use super::MemoryStore;
use crate::audit::AuditEntry;
use crate::device::{token_digest, Device, DeviceGroup, DeviceProfile, DEVICE_TAKEN};
use crate::ids::{DeviceId, GroupId, ProfileId, TenantId};
use crate::package::{PackageKind, TitleVersion};
use crate::store::{DeviceSelector, DeviceStore, Page, PageRequest, StoreError};
use async_trait::async_trait;
use std::collections::{BTreeSet, HashSet};

fn check_profile(t: &Tables, tenant: TenantId, id: ProfileId) -> Result<(), StoreError> {
    match t.profiles.get(&id) {
        Some(p) if p.tenant_id == tenant => Ok(()),
        _ => Err(StoreError::not_found("profile", id)),
    }
}

fn check_groups(
    t: &Tables,
    tenant: TenantId,
    groups: &BTreeSet<GroupId>,
) -> Result<(), StoreError> {
    for g in groups {
        match t.groups.get(g) {
            Some(group) if group.tenant_id == tenant => {}
            _ => return Err(StoreError::not_found("group", g)),
        }
    }
    Ok(())
}

fn page_of<T: Clone>(
    ids: impl Iterator<Item = uuid::Uuid>,
    page: &PageRequest,
    get: impl Fn(uuid::Uuid) -> Option<T>,
    id_of: impl Fn(&T) -> uuid::Uuid,
) -> Page<T> {
    let items = ids
        .filter(|id| page.after.is_none_or(|a| *id > a))
        .filter_map(get)
        .take(page.effective_limit() + 1)
        .collect();
    Page::from_overfetch(items, page, id_of)
}

#[async_trait]
impl DeviceStore for MemoryStore {
    async fn create_profile(
        &self,
        profile: &DeviceProfile,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        self.audited(audit, |t| {
            let name = (profile.tenant_id, profile.name.clone());
            if t.profiles.contains_key(&profile.id) || t.profile_names.contains_key(&name) {
                return Err(StoreError::conflict(
                    "profile",
                    format!("a profile named {:?} exists", profile.name),
                ));
            }
            t.profile_names.insert(name, profile.id);
            t.tenant_profiles
                .entry(profile.tenant_id)
                .or_default()
                .insert(profile.id, ());
            t.profiles.insert(profile.id, profile.clone());
            Ok(())
        })
    }

    async fn get_profile(
        &self,
        tenant: TenantId,
        id: ProfileId,
    ) -> Result<DeviceProfile, StoreError> {
        self.lock()
            .profiles
            .get(&id)
            .filter(|p| p.tenant_id == tenant)
            .cloned()
            .ok_or_else(|| StoreError::not_found("profile", id))
    }

    async fn list_profiles(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> Result<Page<DeviceProfile>, StoreError> {
        let t = self.lock();
        let ids = t
            .tenant_profiles
            .get(&tenant)
            .into_iter()
            .flat_map(|m| m.keys());
        Ok(page_of(
            ids.map(|id| id.0),
            &page,
            |id| t.profiles.get(&ProfileId::from_uuid(id)).cloned(),
            |p| p.id.0,
        ))
    }

    async fn create_group(
        &self,
        group: &DeviceGroup,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        self.audited(audit, |t| {
            let name = (group.tenant_id, group.name.clone());
            if t.groups.contains_key(&group.id) || t.group_names.contains_key(&name) {
                return Err(StoreError::conflict(
                    "group",
                    format!("a group named {:?} exists", group.name),
                ));
            }
            t.group_names.insert(name, group.id);
            t.tenant_groups
                .entry(group.tenant_id)
                .or_default()
                .insert(group.id, ());
            t.groups.insert(group.id, group.clone());
            Ok(())
        })
    }

    async fn get_group(&self, tenant: TenantId, id: GroupId) -> Result<DeviceGroup, StoreError> {
        self.lock()
            .groups
            .get(&id)
            .filter(|g| g.tenant_id == tenant)
            .cloned()
            .ok_or_else(|| StoreError::not_found("group", id))
    }

    async fn list_groups(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> Result<Page<DeviceGroup>, StoreError> {
        let t = self.lock();
        let ids = t
            .tenant_groups
            .get(&tenant)
            .into_iter()
            .flat_map(|m| m.keys());
        Ok(page_of(
            ids.map(|id| id.0),
            &page,
            |id| t.groups.get(&GroupId::from_uuid(id)).cloned(),
            |g| g.id.0,
        ))
    }

    async fn create_devices(
        &self,
        devices: &[Device],
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        self.audited(audit, |t| {
            let mut names = HashSet::new();
            let mut tokens = HashSet::new();
            let mut ids = HashSet::new();
            for d in devices {
                check_profile(t, d.tenant_id, d.profile_id)?;
                check_groups(t, d.tenant_id, &d.groups)?;
                if t.devices.contains_key(&d.id) || !ids.insert(d.id) {
                    return Err(StoreError::conflict(
                        "device",
                        format!("id {} exists", d.id),
                    ));
                }
                let name = (d.tenant_id, d.name.clone());
                let digest = token_digest(&d.access_token);
                // One answer for a taken name and a taken token: no token oracle.
                if t.device_names.contains_key(&name)
                    || !names.insert(name)
                    || t.tokens.contains_key(&digest)
                    || !tokens.insert(digest)
                {
                    return Err(StoreError::conflict("device", DEVICE_TAKEN));
                }
            }
            for d in devices {
                t.device_names.insert((d.tenant_id, d.name.clone()), d.id);
                t.tokens.insert(token_digest(&d.access_token), d.id);
                t.tenant_devices
                    .entry(d.tenant_id)
                    .or_default()
                    .insert(d.id);
                t.profile_members
                    .entry(d.profile_id)
                    .or_default()
                    .insert(d.id);
                for g in &d.groups {
                    t.group_members.entry(*g).or_default().insert(d.id);
                }
                // Only the digest is kept.
                let mut stored = d.clone();
                stored.access_token = String::new();
                t.devices.insert(d.id, stored);
            }
            Ok(())
        })
    }

    async fn get_device(&self, tenant: TenantId, id: DeviceId) -> Result<Device, StoreError> {
        self.lock().device(tenant, id).cloned()
    }

    async fn find_devices_by_name(
        &self,
        tenant: TenantId,
        names: &[String],
    ) -> Result<Vec<Device>, StoreError> {
        let t = self.lock();
        let mut seen = HashSet::new();
        Ok(names
            .iter()
            .filter_map(|n| t.device_names.get(&(tenant, n.clone())))
            .filter(|id| seen.insert(**id))
            .filter_map(|id| t.devices.get(id).cloned())
            .collect())
    }

    async fn device_by_token(&self, token: &str) -> Result<Device, StoreError> {
        let t = self.lock();
        t.tokens
            .get(&token_digest(token))
            .and_then(|id| t.devices.get(id))
            .cloned()
            .ok_or_else(|| StoreError::not_found("device", "access token"))
    }

    async fn list_devices(
        &self,
        tenant: TenantId,
        selector: DeviceSelector,
        page: PageRequest,
    ) -> Result<Page<Device>, StoreError> {
        let t = self.lock();
        let set = match selector {
            DeviceSelector::All => t.tenant_devices.get(&tenant),
            DeviceSelector::Profile(p) => t.profile_members.get(&p),
            DeviceSelector::Group(g) => t.group_members.get(&g),
        };
        let Some(set) = set else {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        };
        let start = page.after.map(DeviceId::from_uuid);
        let iter: Box<dyn Iterator<Item = &DeviceId>> = match start {
            Some(s) => {
                Box::new(set.range((std::ops::Bound::Excluded(s), std::ops::Bound::Unbounded)))
            }
            None => Box::new(set.iter()),
        };
        let items = iter
            .filter_map(|id| t.devices.get(id))
            .filter(|d| d.tenant_id == tenant)
            .take(page.effective_limit() + 1)
            .cloned()
            .collect();
        Ok(Page::from_overfetch(items, &page, |d| d.id.0))
    }

    async fn count_devices(
        &self,
        tenant: TenantId,
        selector: DeviceSelector,
    ) -> Result<u64, StoreError> {
        let t = self.lock();
        let n = match selector {
            DeviceSelector::All => t.tenant_devices.get(&tenant).map_or(0, |s| s.len()),
            DeviceSelector::Profile(p) => match t.profiles.get(&p) {
                Some(profile) if profile.tenant_id == tenant => {
                    t.profile_members.get(&p).map_or(0, |s| s.len())
                }
                _ => 0,
            },
            DeviceSelector::Group(g) => match t.groups.get(&g) {
                Some(group) if group.tenant_id == tenant => {
                    t.group_members.get(&g).map_or(0, |s| s.len())
                }
                _ => 0,
            },
        };
        Ok(n as u64)
    }

    async fn set_device_profile(
        &self,
        tenant: TenantId,
        id: DeviceId,
        profile: ProfileId,
        audit: Option<&AuditEntry>,
    ) -> Result<Device, StoreError> {
        self.audited(audit, |t| {
            let old = t.device(tenant, id)?.profile_id;
            check_profile(t, tenant, profile)?;
            if let Some(m) = t.profile_members.get_mut(&old) {
                m.remove(&id);
            }
            t.profile_members.entry(profile).or_default().insert(id);
            let device = t
                .devices
                .get_mut(&id)
                .ok_or_else(|| StoreError::not_found("device", id))?;
            device.profile_id = profile;
            Ok(device.clone())
        })
    }

    async fn set_device_groups(
        &self,
        tenant: TenantId,
        id: DeviceId,
        groups: &BTreeSet<GroupId>,
        audit: Option<&AuditEntry>,
    ) -> Result<Device, StoreError> {
        self.audited(audit, |t| {
            let old = t.device(tenant, id)?.groups.clone();
            check_groups(t, tenant, groups)?;
            for g in &old {
                if let Some(m) = t.group_members.get_mut(g) {
                    m.remove(&id);
                }
            }
            for g in groups {
                t.group_members.entry(*g).or_default().insert(id);
            }
            let device = t
                .devices
                .get_mut(&id)
                .ok_or_else(|| StoreError::not_found("device", id))?;
            device.groups = groups.clone();
            Ok(device.clone())
        })
    }

    async fn set_current_version(
        &self,
        tenant: TenantId,
        id: DeviceId,
        kind: PackageKind,
        current: Option<TitleVersion>,
    ) -> Result<(), StoreError> {
        let mut t = self.lock();
        t.device(tenant, id)?;
        if let Some(device) = t.devices.get_mut(&id) {
            device.current.set(kind, current);
        }
        Ok(())
    }

    async fn rename_profile(
        &self,
        tenant: TenantId,
        id: ProfileId,
        name: &str,
        audit: Option<&AuditEntry>,
    ) -> Result<DeviceProfile, StoreError> {
        self.audited(audit, |t| t.rename_profile(tenant, id, name))
    }

    async fn delete_profile(
        &self,
        tenant: TenantId,
        id: ProfileId,
        audit: Option<&AuditEntry>,
    ) -> Result<DeviceProfile, StoreError> {
        self.audited(audit, |t| t.delete_profile(tenant, id))
    }

    async fn rename_group(
        &self,
        tenant: TenantId,
        id: GroupId,
        name: &str,
        audit: Option<&AuditEntry>,
    ) -> Result<DeviceGroup, StoreError> {
        self.audited(audit, |t| t.rename_group(tenant, id, name))
    }

    async fn delete_group(
        &self,
        tenant: TenantId,
        id: GroupId,
        audit: Option<&AuditEntry>,
    ) -> Result<DeviceGroup, StoreError> {
        self.audited(audit, |t| t.delete_group(tenant, id))
    }

    async fn rename_device(
        &self,
        tenant: TenantId,
        id: DeviceId,
        name: &str,
        audit: Option<&AuditEntry>,
    ) -> Result<Device, StoreError> {
        self.audited(audit, |t| t.rename_device(tenant, id, name))
    }

    async fn delete_device(
        &self,
        tenant: TenantId,
        id: DeviceId,
        audit: Option<&AuditEntry>,
    ) -> Result<Device, StoreError> {
        self.audited(audit, |t| t.delete_device(tenant, id))
    }

    async fn set_device_token(
        &self,
        tenant: TenantId,
        id: DeviceId,
        token: &str,
        audit: Option<&AuditEntry>,
    ) -> Result<Device, StoreError> {
        self.audited(audit, |t| t.set_device_token(tenant, id, token))
    }
}
