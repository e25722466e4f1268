//! Devices, device profiles and device groups.

use crate::clock::Timestamp;
use crate::ids::{DeviceId, GroupId, ProfileId, TenantId};
use crate::package::{PackageKind, TitleVersion};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A device profile (a device type): every device has exactly one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceProfile {
    /// The profile's id.
    pub id: ProfileId,
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// Name, unique within the tenant.
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
}

/// A device group: devices belong to any number of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceGroup {
    /// The group's id.
    pub id: GroupId,
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// Name, unique within the tenant.
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
}

/// What a device last reported as running, per kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentVersions {
    /// Current firmware (`current_fw_title` / `current_fw_version`).
    pub firmware: Option<TitleVersion>,
    /// Current software (`current_sw_title` / `current_sw_version`).
    pub software: Option<TitleVersion>,
}

impl CurrentVersions {
    /// The current title and version for `kind`.
    pub fn get(&self, kind: PackageKind) -> Option<&TitleVersion> {
        match kind {
            PackageKind::Firmware => self.firmware.as_ref(),
            PackageKind::Software => self.software.as_ref(),
        }
    }

    /// Sets the current title and version for `kind`.
    pub fn set(&mut self, kind: PackageKind, value: Option<TitleVersion>) {
        match kind {
            PackageKind::Firmware => self.firmware = value,
            PackageKind::Software => self.software = value,
        }
    }
}

/// A device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// The device's id.
    pub id: DeviceId,
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// Name, unique within the tenant (the `DeviceName` of CSV imports).
    pub name: String,
    /// Its profile.
    pub profile_id: ProfileId,
    /// The groups it belongs to.
    pub groups: BTreeSet<GroupId>,
    /// The credential the device protocols authenticate it with (unique across tenants).
    pub access_token: String,
    /// What it last reported as running.
    pub current: CurrentVersions,
    /// When it was created.
    pub created_at: Timestamp,
}
