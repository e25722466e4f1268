//! What operators ask about one device: its latest update per kind and its update history.

use super::{Ota, OtaError};
use crate::ids::{DeviceId, TenantId, UpdateId};
use crate::package::PackageKind;
use crate::store::{Page, PageRequest, UpdateFilter};
use crate::update::{HistoryEntry, Update};
use serde::{Deserialize, Serialize};

/// The most updates one page of [`Ota::device_update_history`] holds, whatever the request
/// says (each update brings its whole history).
pub const MAX_HISTORY_PAGE: u32 = 100;

/// A device's latest update of each kind (in any state, terminal ones included).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LatestUpdates {
    /// The latest firmware update, if the device ever had one.
    pub firmware: Option<Update>,
    /// The latest software update, if the device ever had one.
    pub software: Option<Update>,
}

impl LatestUpdates {
    /// The latest update of `kind`.
    pub fn get(&self, kind: PackageKind) -> Option<&Update> {
        match kind {
            PackageKind::Firmware => self.firmware.as_ref(),
            PackageKind::Software => self.software.as_ref(),
        }
    }
}

/// One update with its history: every event of every attempt, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UpdateHistory {
    /// The update as it is now.
    pub update: Update,
    /// Its history, oldest first (applied, ignored and rejected events alike).
    pub entries: Vec<HistoryEntry>,
}

impl Ota {
    /// The device's latest update of `kind` (in any state), or `None` when it never had one.
    /// [`OtaError::is_not_found`] when the device does not exist in `tenant`.
    pub async fn latest_update(
        &self,
        tenant: TenantId,
        device: DeviceId,
        kind: PackageKind,
    ) -> Result<Option<Update>, OtaError> {
        let latest = self.store.latest_update(tenant, device, kind).await?;
        if latest.is_none() {
            // Tell "no update" from "no such device".
            self.store.get_device(tenant, device).await?;
        }
        Ok(latest)
    }

    /// The device's latest update of each kind. [`OtaError::is_not_found`] when the device
    /// does not exist in `tenant`.
    pub async fn latest_updates(
        &self,
        tenant: TenantId,
        device: DeviceId,
    ) -> Result<LatestUpdates, OtaError> {
        let firmware = self
            .store
            .latest_update(tenant, device, PackageKind::Firmware)
            .await?;
        let software = self
            .store
            .latest_update(tenant, device, PackageKind::Software)
            .await?;
        if firmware.is_none() && software.is_none() {
            self.store.get_device(tenant, device).await?;
        }
        Ok(LatestUpdates { firmware, software })
    }

    /// The history of the update `id` (every attempt), oldest first.
    /// [`OtaError::is_not_found`] when the update does not exist in `tenant`.
    pub async fn update_history(
        &self,
        tenant: TenantId,
        id: UpdateId,
    ) -> Result<Vec<HistoryEntry>, OtaError> {
        self.store.get_update(tenant, id).await?;
        Ok(self.store.update_history(tenant, id).await?)
    }

    /// A device's updates, oldest first, each with its whole history: the device's update
    /// history, a page at a time. `kind` narrows it to firmware or software. Pages hold at
    /// most [`MAX_HISTORY_PAGE`] updates; pass the returned page's `next` to read on.
    /// [`OtaError::is_not_found`] when the device does not exist in `tenant`.
    ///
    /// For the newest events only (a device's recent activity), see
    /// [`Ota::recent_device_history`].
    pub async fn device_update_history(
        &self,
        tenant: TenantId,
        device: DeviceId,
        kind: Option<PackageKind>,
        page: PageRequest,
    ) -> Result<Page<UpdateHistory>, OtaError> {
        self.store.get_device(tenant, device).await?;
        let filter = UpdateFilter {
            device_id: Some(device),
            kind,
            ..UpdateFilter::default()
        };
        let page = PageRequest {
            limit: page.limit.clamp(1, MAX_HISTORY_PAGE),
            ..page
        };
        let updates = self.store.list_updates(tenant, &filter, page).await?;
        let mut items = Vec::with_capacity(updates.items.len());
        for update in updates.items {
            let entries = self.store.update_history(tenant, update.id).await?;
            items.push(UpdateHistory { update, entries });
        }
        Ok(Page {
            items,
            next: updates.next,
        })
    }

    /// The device's most recent `limit` history entries over all its updates, newest first.
    /// [`OtaError::is_not_found`] when the device does not exist in `tenant`.
    pub async fn recent_device_history(
        &self,
        tenant: TenantId,
        device: DeviceId,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>, OtaError> {
        self.store.get_device(tenant, device).await?;
        Ok(self.store.device_history(tenant, device, limit).await?)
    }
}
