//! Campaigns: definitions, explicit device lists, materialization of their updates, and
//! statistics kept with every transition.

use super::{Page, PageRequest, StoreError};
use crate::audit::AuditEntry;
use crate::campaign::{Campaign, CampaignState, CampaignStats};
use crate::clock::Timestamp;
use crate::device::Device;
use crate::ids::{CampaignId, DeviceId, TenantId};
use crate::package::Package;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Why a device of a campaign's target got no update.
pub mod skip_reason {
    /// The package is not compatible with the device's profile.
    pub const INCOMPATIBLE: &str = "incompatible with the device's profile";
    /// The device already runs the package's title and version.
    pub const UP_TO_DATE: &str = "already runs the target version";
    /// The device has an unfinished update of the same kind, or a failed one waiting for its
    /// automatic retry.
    pub const BUSY: &str = "another update of this kind is in progress";
}

/// What materializing a campaign did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Materialized {
    /// Updates created (QUEUED).
    pub created: u64,
    /// Devices per wave.
    pub wave_sizes: Vec<u64>,
    /// Devices of the target not taken, per reason (see [`skip_reason`]), only reasons with
    /// a count above zero, in the order of [`skip_reason`].
    pub skipped: Vec<(String, u64)>,
}

/// Stores campaigns and keeps their statistics.
///
/// Statistics are counts per (campaign, wave, update state), changed by the store in the same
/// atomic step as every update creation and [`transition`](super::UpdateStore::transition),
/// so reading them never walks the campaign's updates.
///
/// Writes that are management actions take their audit entry: see
/// [audited writes](crate::store#audited-writes).
#[async_trait]
pub trait CampaignStore: Send + Sync {
    /// Stores a new campaign. [`StoreError::Conflict`] when the id exists.
    async fn create_campaign(
        &self,
        campaign: &Campaign,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError>;

    /// The campaign `id` of `tenant`.
    async fn get_campaign(&self, tenant: TenantId, id: CampaignId) -> Result<Campaign, StoreError>;

    /// Writes `campaign` if the stored revision is still `expected_revision`;
    /// [`StoreError::PreconditionFailed`] otherwise.
    async fn save_campaign(
        &self,
        campaign: &Campaign,
        expected_revision: u64,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError>;

    /// The tenant's campaigns in these states (empty: every state), ordered by id.
    async fn list_campaigns(
        &self,
        tenant: TenantId,
        states: &[CampaignState],
        page: PageRequest,
    ) -> Result<Page<Campaign>, StoreError>;

    /// Campaigns of every tenant that the engine drives (SCHEDULED, RUNNING, PAUSED).
    async fn active_campaigns(&self) -> Result<Vec<Campaign>, StoreError>;

    /// Ended campaigns (FINISHED, STOPPED, FAILED, ARCHIVED) of every tenant that still hold
    /// unfinished (non-terminal) updates: the engine finishes canceling them on its tick, so
    /// that ending a campaign resumes after a crash or an error half-way. Read from the
    /// statistics, so it costs the same at any fleet size.
    async fn ended_campaigns_with_live_updates(&self) -> Result<Vec<Campaign>, StoreError>;

    /// Copies the explicit device list of campaign `from` into campaign `to` (replacing it),
    /// both of `tenant`. Returns how many devices were copied.
    async fn copy_campaign_devices(
        &self,
        tenant: TenantId,
        from: CampaignId,
        to: CampaignId,
    ) -> Result<u64, StoreError>;

    /// Replaces the explicit device list of a campaign. Devices must belong to the tenant
    /// ([`StoreError::NotFound`] otherwise, nothing changed).
    async fn set_campaign_devices(
        &self,
        tenant: TenantId,
        campaign: CampaignId,
        devices: &[DeviceId],
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError>;

    /// How many devices the explicit list of a campaign holds.
    async fn count_campaign_devices(
        &self,
        tenant: TenantId,
        campaign: CampaignId,
    ) -> Result<u64, StoreError>;

    /// Creates the QUEUED updates of a campaign that starts, in one step: the devices its
    /// target selects (or its explicit list), minus those skipped (see [`skip_reason`]),
    /// split into waves by [`crate::campaign::rollout::plan_waves`] in device id order.
    /// [`StoreError::Conflict`] when the campaign already has updates.
    async fn materialize_campaign(
        &self,
        campaign: &Campaign,
        package: &Package,
        now: Timestamp,
    ) -> Result<Materialized, StoreError>;

    /// Adds one device to a running dynamic campaign, in its current wave. `Ok(false)` when
    /// the device is skipped or already has an update of this campaign.
    async fn join_campaign(
        &self,
        campaign: &Campaign,
        package: &Package,
        device: &Device,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// The campaign's statistics.
    async fn campaign_stats(
        &self,
        tenant: TenantId,
        campaign: CampaignId,
    ) -> Result<CampaignStats, StoreError>;
}
