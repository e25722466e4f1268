//! Devices, profiles and groups: creation, the changes that re-evaluate a device's
//! effective package, renames, deletes and access tokens.

use super::{Ota, OtaError, PackageUse};
use crate::assignment::AssignmentTarget;
use crate::device::{generate_token, CurrentVersions, Device, DeviceGroup, DeviceProfile};
use crate::ids::{DeviceId, GroupId, ProfileId, TenantId};
use crate::package::PackageKind;
use crate::store::{DeviceSelector, PageRequest};
use serde_json::json;
use std::collections::BTreeSet;

fn check_name(what: &str, name: &str) -> Result<(), OtaError> {
    if name.trim().is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
        return Err(OtaError::InvalidRequest {
            message: format!(
                "{what} name {name:?} must be 1-255 characters without control characters"
            ),
        });
    }
    Ok(())
}

impl Ota {
    /// Creates a device profile.
    pub async fn create_profile(
        &self,
        actor: &str,
        tenant: TenantId,
        name: &str,
    ) -> Result<DeviceProfile, OtaError> {
        check_name("profile", name)?;
        let profile = DeviceProfile {
            id: ProfileId::new(),
            tenant_id: tenant,
            name: name.to_string(),
            created_at: self.now(),
        };
        let entry = self.audit_entry(
            tenant,
            actor,
            "profile.create",
            format!("profile {}", profile.id),
            json!({"name": name}),
        );
        self.store.create_profile(&profile, Some(&entry)).await?;
        Ok(profile)
    }

    /// Creates a device group.
    pub async fn create_group(
        &self,
        actor: &str,
        tenant: TenantId,
        name: &str,
    ) -> Result<DeviceGroup, OtaError> {
        check_name("group", name)?;
        let group = DeviceGroup {
            id: GroupId::new(),
            tenant_id: tenant,
            name: name.to_string(),
            created_at: self.now(),
        };
        let entry = self.audit_entry(
            tenant,
            actor,
            "group.create",
            format!("group {}", group.id),
            json!({"name": name}),
        );
        self.store.create_group(&group, Some(&entry)).await?;
        Ok(group)
    }

    /// A device record for [`Ota::create_devices`], with a fresh id. Pass an empty
    /// `access_token` (the recommended default) to have a random one generated when the
    /// device is created; a token chosen by the caller must be unique across tenants.
    pub fn new_device(
        &self,
        tenant: TenantId,
        name: &str,
        profile: ProfileId,
        groups: BTreeSet<GroupId>,
        access_token: &str,
    ) -> Device {
        Device {
            id: DeviceId::new(),
            tenant_id: tenant,
            name: name.to_string(),
            profile_id: profile,
            groups,
            access_token: access_token.to_string(),
            current: CurrentVersions::default(),
            created_at: self.now(),
        }
    }

    /// Creates devices (all or none) and queues the updates their assignments call for.
    /// Devices without an access token get a random one ([`generate_token`]). Returns the
    /// devices as created, with their access tokens: the only time they are known in plain
    /// text (stores keep a digest). A taken name or token is refused with one and the same
    /// conflict, which does not say whether a token exists.
    pub async fn create_devices(
        &self,
        actor: &str,
        devices: &[Device],
    ) -> Result<Vec<Device>, OtaError> {
        let Some(first) = devices.first() else {
            return Ok(Vec::new());
        };
        let devices: Vec<Device> = devices
            .iter()
            .map(|d| {
                let mut d = d.clone();
                if d.access_token.is_empty() {
                    d.access_token = generate_token();
                }
                d
            })
            .collect();
        let devices = devices.as_slice();
        let tenant = first.tenant_id;
        for d in devices {
            check_name("device", &d.name)?;
            if d.tenant_id != tenant {
                return Err(OtaError::InvalidRequest {
                    message: "devices created together must belong to one tenant".into(),
                });
            }
            if d.access_token.trim().is_empty() || d.access_token.chars().any(char::is_control) {
                return Err(OtaError::InvalidRequest {
                    message: format!(
                        "device {:?}: an access token must not be blank or hold control characters (leave it empty to have one generated)",
                        d.name
                    ),
                });
            }
        }
        let entry = self.audit_entry(
            tenant,
            actor,
            "device.create",
            format!("{} devices", devices.len()),
            json!({"names": devices.iter().take(100).map(|d| d.name.as_str()).collect::<Vec<_>>()}),
        );
        self.store.create_devices(devices, Some(&entry)).await?;
        for d in devices {
            for kind in PackageKind::ALL {
                self.reevaluate(d, kind).await?;
            }
        }
        self.join_dynamic_campaigns(devices).await?;
        Ok(devices.to_vec())
    }

    /// The device `id`.
    pub async fn device(&self, tenant: TenantId, id: DeviceId) -> Result<Device, OtaError> {
        Ok(self.store.get_device(tenant, id).await?)
    }

    /// Moves a device to another profile; its effective packages are re-evaluated.
    pub async fn set_device_profile(
        &self,
        actor: &str,
        tenant: TenantId,
        id: DeviceId,
        profile: ProfileId,
    ) -> Result<Device, OtaError> {
        self.store.get_profile(tenant, profile).await?;
        let entry = self.audit_entry(
            tenant,
            actor,
            "device.set_profile",
            format!("device {id}"),
            json!({"profile": profile}),
        );
        let device = self
            .store
            .set_device_profile(tenant, id, profile, Some(&entry))
            .await?;
        for kind in PackageKind::ALL {
            self.reevaluate(&device, kind).await?;
        }
        self.join_dynamic_campaigns(std::slice::from_ref(&device))
            .await?;
        Ok(device)
    }

    /// Replaces a device's groups; its effective packages are re-evaluated.
    pub async fn set_device_groups(
        &self,
        actor: &str,
        tenant: TenantId,
        id: DeviceId,
        groups: BTreeSet<GroupId>,
    ) -> Result<Device, OtaError> {
        for g in &groups {
            self.store.get_group(tenant, *g).await?;
        }
        let entry = self.audit_entry(
            tenant,
            actor,
            "device.set_groups",
            format!("device {id}"),
            json!({"groups": groups}),
        );
        let device = self
            .store
            .set_device_groups(tenant, id, &groups, Some(&entry))
            .await?;
        for kind in PackageKind::ALL {
            self.reevaluate(&device, kind).await?;
        }
        self.join_dynamic_campaigns(std::slice::from_ref(&device))
            .await?;
        Ok(device)
    }
}

/// How many users of each sort an [`OtaError::InUse`] lists.
const USES_LISTED: u32 = 10;

impl Ota {
    /// What uses `target` (a profile or group): its first devices and its assignments.
    async fn uses_of(
        &self,
        tenant: TenantId,
        target: AssignmentTarget,
    ) -> Result<Vec<PackageUse>, OtaError> {
        let selector = match target {
            AssignmentTarget::Profile(p) => DeviceSelector::Profile(p),
            AssignmentTarget::Group(g) => DeviceSelector::Group(g),
            AssignmentTarget::Device(_) => return Ok(Vec::new()),
        };
        let devices = self
            .store
            .list_devices(tenant, selector, PageRequest::first(USES_LISTED))
            .await?;
        let mut uses: Vec<PackageUse> = devices
            .items
            .iter()
            .map(|d| PackageUse {
                by: "device".into(),
                id: d.id.to_string(),
            })
            .collect();
        if devices.next.is_some() {
            let all = self.store.count_devices(tenant, selector).await?;
            uses.push(PackageUse {
                by: "devices".into(),
                id: format!("{} in all", all),
            });
        }
        for a in self.store.list_assignments(tenant, None).await? {
            if a.target == target {
                uses.push(PackageUse {
                    by: "assignment".into(),
                    id: format!("{} of {}", a.kind, a.package_id),
                });
            }
        }
        Ok(uses)
    }

    /// Renames a device profile.
    pub async fn rename_profile(
        &self,
        actor: &str,
        tenant: TenantId,
        id: ProfileId,
        name: &str,
    ) -> Result<DeviceProfile, OtaError> {
        check_name("profile", name)?;
        let old = self.store.get_profile(tenant, id).await?;
        let entry = self.audit_entry(
            tenant,
            actor,
            "profile.rename",
            format!("profile {id}"),
            json!({"from": old.name, "to": name}),
        );
        let profile = self
            .store
            .rename_profile(tenant, id, name, Some(&entry))
            .await?;
        Ok(profile)
    }

    /// Deletes a device profile. Refused with [`OtaError::InUse`] (listing them) while
    /// devices have it or assignments target it.
    pub async fn delete_profile(
        &self,
        actor: &str,
        tenant: TenantId,
        id: ProfileId,
    ) -> Result<DeviceProfile, OtaError> {
        let current = self.store.get_profile(tenant, id).await?;
        let uses = self.uses_of(tenant, AssignmentTarget::Profile(id)).await?;
        if !uses.is_empty() {
            return Err(OtaError::InUse {
                what: format!("profile {id}"),
                uses,
            });
        }
        let entry = self.audit_entry(
            tenant,
            actor,
            "profile.delete",
            format!("profile {id}"),
            json!({"name": current.name}),
        );
        let profile = self.store.delete_profile(tenant, id, Some(&entry)).await?;
        Ok(profile)
    }

    /// Renames a device group.
    pub async fn rename_group(
        &self,
        actor: &str,
        tenant: TenantId,
        id: GroupId,
        name: &str,
    ) -> Result<DeviceGroup, OtaError> {
        check_name("group", name)?;
        let old = self.store.get_group(tenant, id).await?;
        let entry = self.audit_entry(
            tenant,
            actor,
            "group.rename",
            format!("group {id}"),
            json!({"from": old.name, "to": name}),
        );
        let group = self
            .store
            .rename_group(tenant, id, name, Some(&entry))
            .await?;
        Ok(group)
    }

    /// Deletes a device group. Refused with [`OtaError::InUse`] (listing them) while it has
    /// members or assignments target it.
    pub async fn delete_group(
        &self,
        actor: &str,
        tenant: TenantId,
        id: GroupId,
    ) -> Result<DeviceGroup, OtaError> {
        let current = self.store.get_group(tenant, id).await?;
        let uses = self.uses_of(tenant, AssignmentTarget::Group(id)).await?;
        if !uses.is_empty() {
            return Err(OtaError::InUse {
                what: format!("group {id}"),
                uses,
            });
        }
        let entry = self.audit_entry(
            tenant,
            actor,
            "group.delete",
            format!("group {id}"),
            json!({"name": current.name}),
        );
        let group = self.store.delete_group(tenant, id, Some(&entry)).await?;
        Ok(group)
    }

    /// Renames a device.
    pub async fn rename_device(
        &self,
        actor: &str,
        tenant: TenantId,
        id: DeviceId,
        name: &str,
    ) -> Result<Device, OtaError> {
        check_name("device", name)?;
        let old = self.store.get_device(tenant, id).await?;
        let entry = self.audit_entry(
            tenant,
            actor,
            "device.rename",
            format!("device {id}"),
            json!({"from": old.name, "to": name}),
        );
        let device = self
            .store
            .rename_device(tenant, id, name, Some(&entry))
            .await?;
        Ok(device)
    }

    /// Deletes a device: its unfinished updates are canceled first (their notices withdrawn,
    /// each canceling audited as `update.cancel`), then the device goes with its group
    /// memberships and the assignments made to it. Its past updates and their history stay.
    pub async fn delete_device(
        &self,
        actor: &str,
        tenant: TenantId,
        id: DeviceId,
    ) -> Result<Device, OtaError> {
        let device = self.store.get_device(tenant, id).await?;
        let mut canceled = Vec::new();
        for kind in PackageKind::ALL {
            let live = self
                .store
                .latest_update(tenant, id, kind)
                .await?
                .filter(|u| !u.state.is_terminal());
            if live.is_some() {
                let update = self
                    .cancel_update(actor, tenant, id, kind, "the device is deleted")
                    .await?;
                canceled.push(update.id);
            }
        }
        let mut assignments = Vec::new();
        for kind in PackageKind::ALL {
            let target = AssignmentTarget::Device(id);
            if let Some(a) = self.store.get_assignment(tenant, kind, target).await? {
                assignments.push(a.id);
            }
        }
        let entry = self.audit_entry(
            tenant,
            actor,
            "device.delete",
            format!("device {id}"),
            json!({"name": device.name, "canceled_updates": canceled, "removed_assignments": assignments}),
        );
        self.store.delete_device(tenant, id, Some(&entry)).await?;
        Ok(device)
    }

    /// Sets a device's access token (`None`: a random one is generated, see
    /// [`generate_token`]) and returns the device with it: the only time it is known in plain
    /// text (stores keep a digest). The old token stops working. A token taken by another
    /// device is refused with the same conflict as at creation, which does not say whether a
    /// token exists.
    pub async fn set_device_token(
        &self,
        actor: &str,
        tenant: TenantId,
        id: DeviceId,
        token: Option<&str>,
    ) -> Result<Device, OtaError> {
        let generated = token.is_none();
        let token = match token {
            Some(t) if t.trim().is_empty() || t.len() > 255 || t.chars().any(char::is_control) => {
                return Err(OtaError::InvalidRequest {
                    message: "an access token must be 1-255 characters, not blank, without control characters (leave it out to have one generated)".into(),
                });
            }
            Some(t) => t.to_string(),
            None => generate_token(),
        };
        let entry = self.audit_entry(
            tenant,
            actor,
            "device.set_token",
            format!("device {id}"),
            json!({"generated": generated}),
        );
        let mut device = self
            .store
            .set_device_token(tenant, id, &token, Some(&entry))
            .await?;
        device.access_token = token;
        Ok(device)
    }
}
