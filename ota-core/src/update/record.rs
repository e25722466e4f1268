//! [`Update`]: one device's update of one kind to one package, with its current attempt.

use super::UpdateState;
use crate::clock::Timestamp;
use crate::ids::{CampaignId, DeviceId, PackageId, TenantId, UpdateId};
use crate::package::{PackageKind, TitleVersion};
use serde::{Deserialize, Serialize};

/// One device's update of one kind to one package. Retries are further attempts of the same
/// update (`attempt` counts them from 1); the history keeps every attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Update {
    /// Identifier.
    pub id: UpdateId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The device being updated.
    pub device_id: DeviceId,
    /// Firmware or software.
    pub kind: PackageKind,
    /// The package the device is updated to.
    pub package_id: PackageId,
    /// The package's title and version: what the device must report as current when done.
    pub target: TitleVersion,
    /// The campaign this update belongs to, if any.
    pub campaign_id: Option<CampaignId>,
    /// The campaign wave it belongs to (0 for updates of no campaign).
    #[serde(default)]
    pub wave: u32,
    /// Current state.
    pub state: UpdateState,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// Progress percentage reported in DOWNLOADING or UPDATING.
    pub progress: Option<u8>,
    /// Why the update failed or was canceled.
    pub error: Option<String>,
    /// When the update was created.
    pub created_at: Timestamp,
    /// When the state last changed (timeouts count from here).
    pub state_changed_at: Timestamp,
    /// When the record last changed.
    pub updated_at: Timestamp,
    /// When an automatic retry is due (only for a failed attempt that will be retried).
    pub retry_at: Option<Timestamp>,
    /// When the engine must look at the update again (a timeout or a retry); kept by the
    /// engine so that stores can find due work with an index.
    pub wake_at: Option<Timestamp>,
    /// Incremented by every stored change; the compare-and-set token of the store.
    pub revision: u64,
}

impl Update {
    /// A new QUEUED update (attempt 1, revision 0).
    pub fn new(
        tenant_id: TenantId,
        device_id: DeviceId,
        kind: PackageKind,
        package_id: PackageId,
        target: TitleVersion,
        campaign_id: Option<CampaignId>,
        now: Timestamp,
    ) -> Self {
        Self {
            id: UpdateId::new(),
            tenant_id,
            device_id,
            kind,
            package_id,
            target,
            campaign_id,
            wave: 0,
            state: UpdateState::Queued,
            attempt: 1,
            progress: None,
            error: None,
            created_at: now,
            state_changed_at: now,
            updated_at: now,
            retry_at: None,
            wake_at: None,
            revision: 0,
        }
    }

    /// Whether the update is finished for good: updated, canceled, or failed without a
    /// pending automatic retry.
    pub fn is_settled(&self) -> bool {
        self.state.is_terminal() && self.retry_at.is_none()
    }
}
