//! Renames and deletes of profiles, groups and devices, and access-token changes, on the
//! memory store's tables (the [`DeviceStore`](crate::store::DeviceStore) methods call these
//! under the lock).

use super::tables::Tables;
use crate::assignment::AssignmentTarget;
use crate::device::{token_digest, Device, DeviceGroup, DeviceProfile, DEVICE_TAKEN};
use crate::ids::{DeviceId, GroupId, ProfileId, TenantId};
use crate::package::PackageKind;
use crate::store::StoreError;

impl Tables {
    fn targeted(&self, tenant: TenantId, target: AssignmentTarget) -> bool {
        PackageKind::ALL
            .iter()
            .any(|k| self.assignments.contains_key(&(tenant, *k, target)))
    }

    pub(super) fn rename_profile(
        &mut self,
        tenant: TenantId,
        id: ProfileId,
        name: &str,
    ) -> Result<DeviceProfile, StoreError> {
        let old = match self.profiles.get(&id) {
            Some(p) if p.tenant_id == tenant => p.name.clone(),
            _ => return Err(StoreError::not_found("profile", id)),
        };
        let key = (tenant, name.to_string());
        if self
            .profile_names
            .get(&key)
            .is_some_and(|other| *other != id)
        {
            return Err(StoreError::conflict(
                "profile",
                format!("a profile named {name:?} exists"),
            ));
        }
        self.profile_names.remove(&(tenant, old));
        self.profile_names.insert(key, id);
        let p = self.profiles.get_mut(&id).expect("checked above");
        p.name = name.to_string();
        Ok(p.clone())
    }

    pub(super) fn delete_profile(
        &mut self,
        tenant: TenantId,
        id: ProfileId,
    ) -> Result<DeviceProfile, StoreError> {
        match self.profiles.get(&id) {
            Some(p) if p.tenant_id == tenant => {}
            _ => return Err(StoreError::not_found("profile", id)),
        }
        if self.profile_members.get(&id).is_some_and(|m| !m.is_empty())
            || self.targeted(tenant, AssignmentTarget::Profile(id))
        {
            return Err(StoreError::conflict(
                "profile",
                format!("profile {id} is in use by devices or assignments"),
            ));
        }
        let p = self.profiles.remove(&id).expect("checked above");
        self.profile_names.remove(&(tenant, p.name.clone()));
        self.profile_members.remove(&id);
        if let Some(m) = self.tenant_profiles.get_mut(&tenant) {
            m.remove(&id);
        }
        Ok(p)
    }

    pub(super) fn rename_group(
        &mut self,
        tenant: TenantId,
        id: GroupId,
        name: &str,
    ) -> Result<DeviceGroup, StoreError> {
        let old = match self.groups.get(&id) {
            Some(g) if g.tenant_id == tenant => g.name.clone(),
            _ => return Err(StoreError::not_found("group", id)),
        };
        let key = (tenant, name.to_string());
        if self.group_names.get(&key).is_some_and(|other| *other != id) {
            return Err(StoreError::conflict(
                "group",
                format!("a group named {name:?} exists"),
            ));
        }
        self.group_names.remove(&(tenant, old));
        self.group_names.insert(key, id);
        let g = self.groups.get_mut(&id).expect("checked above");
        g.name = name.to_string();
        Ok(g.clone())
    }

    pub(super) fn delete_group(
        &mut self,
        tenant: TenantId,
        id: GroupId,
    ) -> Result<DeviceGroup, StoreError> {
        match self.groups.get(&id) {
            Some(g) if g.tenant_id == tenant => {}
            _ => return Err(StoreError::not_found("group", id)),
        }
        if self.group_members.get(&id).is_some_and(|m| !m.is_empty())
            || self.targeted(tenant, AssignmentTarget::Group(id))
        {
            return Err(StoreError::conflict(
                "group",
                format!("group {id} is in use by members or assignments"),
            ));
        }
        let g = self.groups.remove(&id).expect("checked above");
        self.group_names.remove(&(tenant, g.name.clone()));
        self.group_members.remove(&id);
        if let Some(m) = self.tenant_groups.get_mut(&tenant) {
            m.remove(&id);
        }
        Ok(g)
    }

    pub(super) fn rename_device(
        &mut self,
        tenant: TenantId,
        id: DeviceId,
        name: &str,
    ) -> Result<Device, StoreError> {
        let old = self.device(tenant, id)?.name.clone();
        let key = (tenant, name.to_string());
        if self
            .device_names
            .get(&key)
            .is_some_and(|other| *other != id)
        {
            return Err(StoreError::conflict("device", DEVICE_TAKEN));
        }
        self.device_names.remove(&(tenant, old));
        self.device_names.insert(key, id);
        let d = self.devices.get_mut(&id).expect("checked above");
        d.name = name.to_string();
        Ok(d.clone())
    }

    pub(super) fn delete_device(
        &mut self,
        tenant: TenantId,
        id: DeviceId,
    ) -> Result<Device, StoreError> {
        self.device(tenant, id)?;
        let d = self.devices.remove(&id).expect("checked above");
        self.device_names.remove(&(tenant, d.name.clone()));
        self.tokens.retain(|_, device| *device != id);
        if let Some(s) = self.tenant_devices.get_mut(&tenant) {
            s.remove(&id);
        }
        if let Some(m) = self.profile_members.get_mut(&d.profile_id) {
            m.remove(&id);
        }
        for g in &d.groups {
            if let Some(m) = self.group_members.get_mut(g) {
                m.remove(&id);
            }
        }
        for kind in PackageKind::ALL {
            self.assignments
                .remove(&(tenant, kind, AssignmentTarget::Device(id)));
        }
        Ok(d)
    }

    pub(super) fn set_device_token(
        &mut self,
        tenant: TenantId,
        id: DeviceId,
        token: &str,
    ) -> Result<Device, StoreError> {
        self.device(tenant, id)?;
        let digest = token_digest(token);
        match self.tokens.get(&digest) {
            Some(other) if *other == id => return self.device(tenant, id).cloned(),
            Some(_) => return Err(StoreError::conflict("device", DEVICE_TAKEN)),
            None => {}
        }
        self.tokens.retain(|_, device| *device != id);
        self.tokens.insert(digest, id);
        self.device(tenant, id).cloned()
    }
}
