//! Devices, profiles, groups, memberships and access tokens.

use super::{Page, PageRequest, StoreError};
use crate::audit::AuditEntry;
use crate::device::{Device, DeviceGroup, DeviceProfile};
use crate::ids::{DeviceId, GroupId, ProfileId, TenantId};
use crate::package::{PackageKind, TitleVersion};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Which devices a listing walks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceSelector {
    /// Every device of the tenant.
    All,
    /// The devices of one profile.
    Profile(ProfileId),
    /// The members of one group.
    Group(GroupId),
}

/// Stores devices, profiles and groups.
///
/// Writes that are management actions take their audit entry: see
/// [audited writes](crate::store#audited-writes).
#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// Stores a new profile; [`StoreError::Conflict`] when the name is taken in the tenant.
    async fn create_profile(
        &self,
        profile: &DeviceProfile,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError>;
    /// The profile `id`.
    async fn get_profile(
        &self,
        tenant: TenantId,
        id: ProfileId,
    ) -> Result<DeviceProfile, StoreError>;
    /// The tenant's profiles, ordered by id.
    async fn list_profiles(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> Result<Page<DeviceProfile>, StoreError>;

    /// Stores a new group; [`StoreError::Conflict`] when the name is taken in the tenant.
    async fn create_group(
        &self,
        group: &DeviceGroup,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError>;
    /// The group `id`.
    async fn get_group(&self, tenant: TenantId, id: GroupId) -> Result<DeviceGroup, StoreError>;
    /// The tenant's groups, ordered by id.
    async fn list_groups(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> Result<Page<DeviceGroup>, StoreError>;

    /// Stores new devices, all or none. [`StoreError::Conflict`] when a name is taken in the
    /// tenant or an access token anywhere; [`StoreError::NotFound`] for an unknown profile or
    /// group.
    async fn create_devices(
        &self,
        devices: &[Device],
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError>;
    /// The device `id`.
    async fn get_device(&self, tenant: TenantId, id: DeviceId) -> Result<Device, StoreError>;
    /// The devices with these names (unknown names are left out), in no particular order.
    async fn find_devices_by_name(
        &self,
        tenant: TenantId,
        names: &[String],
    ) -> Result<Vec<Device>, StoreError>;
    /// The device whose access token this is, in whatever tenant.
    async fn device_by_token(&self, token: &str) -> Result<Device, StoreError>;
    /// Devices selected by `selector`, ordered by id.
    async fn list_devices(
        &self,
        tenant: TenantId,
        selector: DeviceSelector,
        page: PageRequest,
    ) -> Result<Page<Device>, StoreError>;
    /// How many devices `selector` selects.
    async fn count_devices(
        &self,
        tenant: TenantId,
        selector: DeviceSelector,
    ) -> Result<u64, StoreError>;
    /// Moves a device to another profile.
    async fn set_device_profile(
        &self,
        tenant: TenantId,
        id: DeviceId,
        profile: ProfileId,
        audit: Option<&AuditEntry>,
    ) -> Result<Device, StoreError>;
    /// Replaces a device's group memberships.
    async fn set_device_groups(
        &self,
        tenant: TenantId,
        id: DeviceId,
        groups: &BTreeSet<GroupId>,
        audit: Option<&AuditEntry>,
    ) -> Result<Device, StoreError>;
    /// Records what a device reports as running for `kind`; [`StoreError::NotFound`] for an
    /// unknown device. Devices repeat their running version in many reports: writing the
    /// version a device already has should cost no more than reading it.
    async fn set_current_version(
        &self,
        tenant: TenantId,
        id: DeviceId,
        kind: PackageKind,
        current: Option<TitleVersion>,
    ) -> Result<(), StoreError>;

    /// Renames a profile; [`StoreError::Conflict`] when the name is taken in the tenant.
    async fn rename_profile(
        &self,
        tenant: TenantId,
        id: ProfileId,
        name: &str,
        audit: Option<&AuditEntry>,
    ) -> Result<DeviceProfile, StoreError>;
    /// Deletes a profile and returns it. [`StoreError::Conflict`] while a device has it or
    /// an assignment targets it, checked atomically with the delete.
    async fn delete_profile(
        &self,
        tenant: TenantId,
        id: ProfileId,
        audit: Option<&AuditEntry>,
    ) -> Result<DeviceProfile, StoreError>;
    /// Renames a group; [`StoreError::Conflict`] when the name is taken in the tenant.
    async fn rename_group(
        &self,
        tenant: TenantId,
        id: GroupId,
        name: &str,
        audit: Option<&AuditEntry>,
    ) -> Result<DeviceGroup, StoreError>;
    /// Deletes a group and returns it. [`StoreError::Conflict`] while it has members or an
    /// assignment targets it, checked atomically with the delete.
    async fn delete_group(
        &self,
        tenant: TenantId,
        id: GroupId,
        audit: Option<&AuditEntry>,
    ) -> Result<DeviceGroup, StoreError>;
    /// Renames a device; [`StoreError::Conflict`] when the name is taken in the tenant.
    async fn rename_device(
        &self,
        tenant: TenantId,
        id: DeviceId,
        name: &str,
        audit: Option<&AuditEntry>,
    ) -> Result<Device, StoreError>;
    /// Deletes a device with its group memberships and the assignments made to it, and
    /// returns it. Its updates and their history stay (the engine cancels live ones first).
    async fn delete_device(
        &self,
        tenant: TenantId,
        id: DeviceId,
        audit: Option<&AuditEntry>,
    ) -> Result<Device, StoreError>;
    /// Replaces a device's access token (the store keeps only its
    /// [`token_digest`](crate::device::token_digest)); the old one no longer finds it.
    /// [`StoreError::Conflict`] with [`DEVICE_TAKEN`](crate::device::DEVICE_TAKEN) when the
    /// token is another device's.
    async fn set_device_token(
        &self,
        tenant: TenantId,
        id: DeviceId,
        token: &str,
        audit: Option<&AuditEntry>,
    ) -> Result<Device, StoreError>;
}
