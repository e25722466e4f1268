//! Devices, profiles and groups: creation and the changes that re-evaluate a device's
//! effective package.

use super::{Ota, OtaError};
use crate::device::{generate_token, CurrentVersions, Device, DeviceGroup, DeviceProfile};
use crate::ids::{DeviceId, GroupId, ProfileId, TenantId};
use crate::package::PackageKind;
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
        self.store.create_profile(&profile).await?;
        self.audit(
            tenant,
            actor,
            "profile.create",
            format!("profile {}", profile.id),
            json!({"name": name}),
        )
        .await?;
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
        self.store.create_group(&group).await?;
        self.audit(
            tenant,
            actor,
            "group.create",
            format!("group {}", group.id),
            json!({"name": name}),
        )
        .await?;
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
        self.store.create_devices(devices).await?;
        self.audit(
            tenant,
            actor,
            "device.create",
            format!("{} devices", devices.len()),
            json!({"names": devices.iter().take(100).map(|d| d.name.as_str()).collect::<Vec<_>>()}),
        )
        .await?;
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
        let device = self.store.set_device_profile(tenant, id, profile).await?;
        self.audit(
            tenant,
            actor,
            "device.set_profile",
            format!("device {id}"),
            json!({"profile": profile}),
        )
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
        let device = self.store.set_device_groups(tenant, id, &groups).await?;
        self.audit(
            tenant,
            actor,
            "device.set_groups",
            format!("device {id}"),
            json!({"groups": groups}),
        )
        .await?;
        for kind in PackageKind::ALL {
            self.reevaluate(&device, kind).await?;
        }
        self.join_dynamic_campaigns(std::slice::from_ref(&device))
            .await?;
        Ok(device)
    }
}
